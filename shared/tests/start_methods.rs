//! How a child's start method carries over, and what spawn needs of the parent's descriptors,
//! under every start method.
//!
//! - A child's default start method is the one that started it, so its own children start the
//!   same way (CPython: `TestStartMethod.test_context`, `test_set_get`).
//! - A parent whose descriptor 0, 1 or 2 is closed (a daemon, a service, `prog >&-`) still
//!   starts children, whose handles and payload then take the lowest free numbers.

use std::os::fd::AsRawFd;

use shared::{Process, Queue, StartMethod};

shared::enable_test_support!();

#[macro_use]
mod common;
use common::{Child, LIMIT};

under_every_start_method!(
    a_child_starts_its_children_the_way_it_was_started,
    a_parent_without_stdin_starts_children,
    a_parent_without_stdout_starts_children,
    a_parent_without_stderr_starts_children,
);

fn parse(method: &str) -> Result<StartMethod, String> {
    method.parse().map_err(|error| format!("{error}"))
}

/// Reports this process's start method.
fn report_method(out: Queue<String>) -> Result<(), String> {
    let method = shared::get_start_method().to_string();
    out.put(method).map_err(|error| error.to_string())
}

/// Reports its start method, then starts a grandchild with the default one, which reports its
/// own, and joins it.
fn report_then_start_a_reporter(out: Queue<String>) -> Result<(), String> {
    report_method(out.clone())?;
    let mut grandchild = Process::new(report_method, (out,));
    grandchild.start().map_err(|error| error.to_string())?;
    grandchild.join().map_err(|error| error.to_string())?;
    match grandchild.exitcode() {
        Some(0) => Ok(()),
        code => Err(format!("the grandchild ended with {code:?}")),
    }
}

fn a_child_starts_its_children_the_way_it_was_started(method: StartMethod) {
    // The test process's own default stays fork: only the child's process is told.
    assert_eq!(shared::get_start_method(), StartMethod::Fork);
    let out = Queue::new().unwrap();
    Child::start(method, report_then_start_a_reporter, (out.clone(),)).expect_success();
    let child = out.get_timeout(LIMIT).expect("the child's report");
    let grandchild = out.get_timeout(LIMIT).expect("the grandchild's report");
    assert_eq!(
        (child.as_str(), grandchild.as_str()),
        (method.to_string().as_str(), method.to_string().as_str()),
        "the start method of a child started by {method}, and of its child"
    );
}

/// Puts 42 on `out`.
fn puts_42(out: Queue<u32>) -> Result<(), String> {
    out.put(42).map_err(|error| error.to_string())
}

/// With descriptor `closed` closed, makes a queue (which takes the lowest free descriptors,
/// `closed` first) and starts a child under `method` that puts 42 on it; reads it back and
/// joins the child. Exits 0 if all went well, else with a code that says which step failed
/// (its stderr may be the closed descriptor).
fn starts_a_child_without(closed: i32, method: String) {
    let step = |code: i32, ok: bool| {
        if !ok {
            std::process::exit(code)
        }
    };
    let method = parse(&method).unwrap_or_else(|_| std::process::exit(10));
    // SAFETY: `closed` is 0, 1 or 2, a standard stream no Rust value of this process owns;
    // what writes to it afterwards (print!, eprint!) treats a closed stream as a sink.
    step(11, unsafe { nix::libc::close(closed) } == 0);
    let queue = Queue::<u32>::new().unwrap_or_else(|_| std::process::exit(12));
    let mut child = Process::new(puts_42, (queue.clone(),)).start_method(method);
    step(13, child.start().is_ok());
    step(14, child.join().is_ok());
    let code = child.exitcode().unwrap_or(99);
    step(20 + code, code == 0);
    step(15, queue.get_timeout(LIMIT).ok() == Some(42));
}

fn a_parent_without(closed: i32, method: StartMethod) {
    // A program of its own (a forked child): this test process's descriptors stay open.
    let mut program = Child::start(
        StartMethod::Fork,
        starts_a_child_without,
        (closed, method.to_string()),
    );
    let code = program.exit_code_within(LIMIT);
    assert_eq!(
        code, 0,
        "with descriptor {closed} closed, {method}: 11 close, 12 queue, 13 start, 14 join, \
         20+N the child's exit code N, 15 get"
    );
}

fn a_parent_without_stdin_starts_children(method: StartMethod) {
    a_parent_without(std::io::stdin().as_raw_fd(), method);
}

fn a_parent_without_stdout_starts_children(method: StartMethod) {
    a_parent_without(std::io::stdout().as_raw_fd(), method);
}

fn a_parent_without_stderr_starts_children(method: StartMethod) {
    a_parent_without(std::io::stderr().as_raw_fd(), method);
}
