//! Integration tests of `current_process()`, `parent_process()`, `active_children()` and the
//! CPU counts, each involving a child run under every start method.
//!
//! A child reports what it sees of itself and its parent through a queue; the test process
//! compares that with what it knows (the handle's name and PID, its own PID). Every wait is
//! bounded. Tests of this binary run in parallel, so `active_children()` may list children of
//! other tests too: only the presence or absence of a test's own PIDs is asserted.

use nix::errno::Errno;
use nix::sys::wait::{Id, WaitPidFlag, waitid};
use nix::unistd::Pid;
use shared::{
    Process, Queue, StartMethod, active_children, cpu_count, current_process, parent_process,
    process_cpu_count,
};

shared::enable_test_support!();

#[macro_use]
mod common;
use common::{Child, LIMIT, exited_within, leaves_the_process_table_within, within};

under_every_start_method!(
    current_process_in_a_child_is_that_child,
    parent_process_in_a_child_is_the_parent,
    a_grandchild_is_named_after_its_parent,
    a_parent_that_died_is_not_alive,
    active_children_lists_running_children_and_reaps_finished_ones,
    active_children_reaps_a_child_whose_handle_was_dropped,
);

/// What a process sees: its name, PID, daemon flag and identity, and its parent's name, PID
/// and liveness.
type Seen = (String, u32, bool, Vec<u32>, Option<(String, u32, bool)>);

fn seen() -> Seen {
    let me = current_process();
    let parent = parent_process().map(|p| (p.name().to_owned(), p.pid(), p.is_alive()));
    (
        me.name().to_owned(),
        me.pid(),
        me.is_daemon(),
        me.identity().to_vec(),
        parent,
    )
}

// ---------------------------------------------------------------------------------------------
// Targets. Spawn recreates a target from its type, so all of them are plain functions.

fn report(out: Queue<Seen>) -> Result<(), String> {
    out.put(seen()).map_err(|error| error.to_string())
}

/// Reports, then starts a grandchild that reports too, and joins it.
fn report_then_start_reporter(out: Queue<Seen>, method: String) -> Result<(), String> {
    report(out.clone())?;
    let mut grandchild = Process::new(report, (out,)).start_method(parse(&method)?);
    grandchild.start().map_err(|error| error.to_string())?;
    grandchild.join().map_err(|error| error.to_string())?;
    match grandchild.exitcode() {
        Some(0) => Ok(()),
        code => Err(format!("the grandchild ended with {code:?}")),
    }
}

/// Starts a grandchild that reports twice, the second time once `go` says so; then blocks
/// until killed.
fn start_double_reporter_then_block(
    out: Queue<Seen>,
    go: Queue<()>,
    method: String,
) -> Result<(), String> {
    let mut grandchild = Process::new(report_twice, (out, go)).start_method(parse(&method)?);
    grandchild.start().map_err(|error| error.to_string())?;
    loop {
        std::thread::park();
    }
}

fn report_twice(out: Queue<Seen>, go: Queue<()>) -> Result<(), String> {
    report(out.clone())?;
    go.get_timeout(LIMIT).map_err(|error| error.to_string())?;
    report(out)
}

fn wait_for(gate: Queue<()>) -> Result<(), String> {
    gate.get_timeout(LIMIT).map_err(|error| error.to_string())
}

fn exits_with(code: i32) {
    std::process::exit(code);
}

fn parse(method: &str) -> Result<StartMethod, String> {
    method.parse().map_err(|error| format!("{error}"))
}

// ---------------------------------------------------------------------------------------------
// Helpers of the test process.

/// Blocks (bounded) until child `pid` has exited, without reaping it. A forkserved child is
/// its server's, which keeps it (a zombie) until its end is collected, so its PID is its own
/// until then and a pidfd of it says when it ends.
fn wait_until_exited(pid: u32, method: StartMethod) {
    if method == StartMethod::Forkserver {
        // A PID that names no process any more: another test's `active_children()` collected
        // the child already, and its server reaped it.
        // SAFETY: plain syscall with integer arguments.
        let fd = unsafe { nix::libc::syscall(nix::libc::SYS_pidfd_open, pid as i32, 0) };
        if fd < 0 && Errno::last() == Errno::ESRCH {
            return;
        }
        assert!(fd >= 0, "pidfd_open({pid}): {}", Errno::last());
        // SAFETY: the kernel just returned this new descriptor; nothing else owns it.
        let pidfd =
            unsafe { <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd as i32) };
        assert!(exited_within(&pidfd, LIMIT), "{pid} still runs");
        return;
    }
    within(LIMIT, move || {
        loop {
            let flags = WaitPidFlag::WEXITED | WaitPidFlag::WNOWAIT;
            match waitid(Id::Pid(Pid::from_raw(pid as i32)), flags) {
                // ECHILD: another test's `active_children()` reaped it already.
                Ok(_) | Err(Errno::ECHILD) => return,
                Err(Errno::EINTR) => continue,
                Err(errno) => panic!("waitid({pid}): {errno}"),
            }
        }
    });
}

/// Whether child `pid` has been reaped: it is no longer a child of this process, or, started
/// by the forkserver, its server reaps it soon after its end was collected.
fn is_reaped(pid: u32, method: StartMethod) -> bool {
    if method == StartMethod::Forkserver {
        return leaves_the_process_table_within(pid, LIMIT);
    }
    let flags = WaitPidFlag::WEXITED | WaitPidFlag::WNOHANG | WaitPidFlag::WNOWAIT;
    matches!(
        waitid(Id::Pid(Pid::from_raw(pid as i32)), flags),
        Err(Errno::ECHILD)
    )
}

fn active_pids() -> Vec<u32> {
    active_children().iter().map(|child| child.pid()).collect()
}

fn number_in(name: &str) -> u32 {
    name.strip_prefix("Process-")
        .and_then(|n| n.parse().ok())
        .filter(|&n| n > 0)
        .unwrap_or_else(|| panic!("{name:?} does not have the shape Process-N"))
}

// ---------------------------------------------------------------------------------------------
// The main process and the machine.

#[test]
fn the_main_process_is_main_process_and_has_no_parent() {
    let me = current_process();
    assert_eq!(me.name(), "MainProcess");
    assert_eq!(me.pid(), std::process::id());
    assert_eq!(me.ident(), me.pid());
    assert!(!me.is_daemon());
    assert!(me.identity().is_empty());
    assert_eq!(parent_process(), None);
}

#[test]
fn there_is_at_least_one_cpu_and_no_more_usable_than_online() {
    let online = cpu_count().expect("cpu_count");
    let usable = process_cpu_count().expect("process_cpu_count");
    assert!(online >= 1);
    assert!((1..=online).contains(&usable), "{usable} of {online}");
}

// ---------------------------------------------------------------------------------------------
// A child, a grandchild.

fn current_process_in_a_child_is_that_child(method: StartMethod) {
    for (daemon, rename) in [(false, None), (true, None), (false, Some("trabalhador"))] {
        let out = Queue::new().unwrap();
        let mut process = Process::new(report, (out.clone(),))
            .start_method(method)
            .daemon(daemon);
        if let Some(name) = rename {
            process.set_name(name);
        }
        let mut child = Child::started(process);
        let (name, pid, is_daemon, identity, _) = out.get_timeout(LIMIT).expect("the report");
        child.expect_success();
        assert_eq!(name, child.name());
        assert_eq!(Some(pid), child.pid());
        assert_eq!(is_daemon, daemon);
        if rename.is_none() {
            assert_eq!(identity, [number_in(&name)], "{name}");
        }
    }
}

fn parent_process_in_a_child_is_the_parent(method: StartMethod) {
    let out = Queue::new().unwrap();
    let mut child = Child::start(method, report, (out.clone(),));
    let (.., parent) = out.get_timeout(LIMIT).expect("the report");
    child.expect_success();
    assert_eq!(
        parent,
        Some(("MainProcess".to_owned(), std::process::id(), true))
    );
}

fn a_grandchild_is_named_after_its_parent(method: StartMethod) {
    let out = Queue::new().unwrap();
    let args = (out.clone(), method.to_string());
    let mut child = Child::start(method, report_then_start_reporter, args);
    let from_child = out.get_timeout(LIMIT).expect("the child's report");
    let from_grandchild = out.get_timeout(LIMIT).expect("the grandchild's report");
    child.expect_success();

    let n = number_in(child.name());
    assert_eq!(from_child.3, [n]);
    let (name, _, daemon, identity, parent) = from_grandchild;
    assert_eq!(name, format!("Process-{n}:1"));
    assert_eq!(identity, [n, 1]);
    assert!(!daemon);
    let parent = parent.expect("a grandchild has a parent");
    assert_eq!(parent, (child.name().to_owned(), from_child.1, true));
    assert_eq!(child.pid(), Some(parent.1));
}

fn a_parent_that_died_is_not_alive(method: StartMethod) {
    let out = Queue::new().unwrap();
    let go = Queue::new().unwrap();
    let args = (out.clone(), go.clone(), method.to_string());
    let mut child = Child::start(method, start_double_reporter_then_block, args);
    let (.., before) = out
        .get_timeout(LIMIT)
        .expect("the grandchild's first report");
    let before = before.expect("a grandchild has a parent");
    assert_eq!((Some(before.1), before.2), (child.pid(), true));

    assert_eq!(child.kill_and_reap(), -9);
    go.put(()).unwrap();
    // The grandchild (not daemonic) outlives its killed parent, reports, and ends.
    let (.., after) = out
        .get_timeout(LIMIT)
        .expect("the grandchild's second report");
    let after = after.expect("a grandchild still has the parent it was started by");
    assert_eq!((after.0, after.1), (before.0, before.1));
    assert!(!after.2, "a killed parent is not alive");
}

// ---------------------------------------------------------------------------------------------
// active_children().

fn active_children_lists_running_children_and_reaps_finished_ones(method: StartMethod) {
    let gate = Queue::new().unwrap();
    let mut running = Child::start(method, wait_for, (gate.clone(),));
    let mut daemon = Child::started(
        Process::new(wait_for, (gate.clone(),))
            .start_method(method)
            .daemon(true),
    );
    let mut finished = Child::start(method, exits_with, (7,));
    let finished_pid = finished.pid().unwrap();
    wait_until_exited(finished_pid, method);

    let children = active_children();
    for (child, is_daemon) in [(&running, false), (&daemon, true)] {
        let info = children
            .iter()
            .find(|info| Some(info.pid()) == child.pid())
            .unwrap_or_else(|| panic!("{} is running but not listed", child.name()));
        assert_eq!(info.name(), child.name());
        assert_eq!(info.is_daemon(), is_daemon);
        assert_eq!(info.identity(), [number_in(child.name())]);
    }
    assert!(!active_pids().contains(&finished_pid));
    assert!(
        is_reaped(finished_pid, method),
        "active_children reaps what ended"
    );

    // The handle still learns how its child ended, and never signals the reaped PID.
    assert!(!finished.is_alive());
    assert_eq!(finished.exit_code_within(LIMIT), 7);
    finished.kill().expect("kill after the end changes nothing");
    assert_eq!(finished.exitcode(), Some(7));

    gate.put(()).unwrap();
    gate.put(()).unwrap();
    running.expect_success();
    daemon.expect_success();
    let pids = active_pids();
    assert!(!pids.contains(&running.pid().unwrap()));
    assert!(!pids.contains(&daemon.pid().unwrap()));
}

fn active_children_reaps_a_child_whose_handle_was_dropped(method: StartMethod) {
    let mut process = Process::new(exits_with, (0,)).start_method(method);
    process.start().expect("start");
    let pid = process.pid().unwrap();
    drop(process);
    wait_until_exited(pid, method);
    assert!(!active_pids().contains(&pid));
    assert!(is_reaped(pid, method), "no zombie is left behind");
}
