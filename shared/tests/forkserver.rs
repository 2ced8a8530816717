//! What is particular to the forkserver start method: one server per program, started on
//! first use and reused; no server left once its program has ended, normally or by SIGKILL,
//! even when a forked child of the program still runs; and a request the program itself
//! forges (a `Tamper`) is refused by the child or dropped by the server, which serves on.
//! What forkserved children share with the other start methods (exit codes, join, signals,
//! daemons, introspection) is tested in the other files, under every start method.

use std::fs;
use std::time::Duration;

use shared::__private::{Tamper, forkserver_pid, tamper_with_next_spawn};
use shared::{Process, Queue, StartMethod};

shared::enable_test_support!();

#[allow(unused_macros, reason = "these tests are about forkserver alone")]
mod common;
use common::{Child, LIMIT, exited_within, pidfd_of};

const FORKSERVER: StartMethod = StartMethod::Forkserver;

fn returns() {}

fn uses_a_queue(queue: Queue<u32>) -> Result<(), String> {
    queue.put(1).map_err(|error| error.to_string())
}

fn wait_for(gate: Queue<()>) -> Result<(), String> {
    gate.get().map_err(|error| error.to_string())
}

/// The PIDs of the forkservers whose parent is `parent`, from /proc.
fn forkservers_of(parent: u32) -> Vec<u32> {
    let entries = fs::read_dir("/proc").expect("/proc is readable");
    let pids = entries.filter_map(|entry| entry.ok()?.file_name().to_str()?.parse().ok());
    pids.filter(|&pid: &u32| {
        let stat = fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        let parent_field = stat
            .rfind(')')
            .and_then(|close| stat[close + 1..].split_whitespace().nth(1))
            .and_then(|field| field.parse::<u32>().ok());
        let cmdline = fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        parent_field == Some(parent)
            && cmdline
                .split(|&byte| byte == 0)
                .any(|arg| arg == b"--shared-forkserver")
    })
    .collect()
}

/// Starts a forkserved child that returns, and joins it: the server is running after this.
fn start_and_join_one() -> Result<(), String> {
    let mut child = Process::new(returns, ()).start_method(FORKSERVER);
    child.start().map_err(|error| error.to_string())?;
    child.join().map_err(|error| error.to_string())?;
    match child.exitcode() {
        Some(0) => Ok(()),
        other => Err(format!("the forkserved child ended with {other:?}")),
    }
}

#[test]
fn the_server_starts_once_and_serves_every_child() {
    Child::start(FORKSERVER, returns, ()).expect_success();
    let server = forkserver_pid().expect("a server runs after a forkserved start");
    for _ in 0..3 {
        Child::start(FORKSERVER, returns, ()).expect_success();
        assert_eq!(forkserver_pid(), Some(server), "the same server");
    }
    // Tests of this binary run in parallel, and all of them share this one server.
    assert_eq!(forkservers_of(std::process::id()), [server]);
}

// ---------------------------------------------------------------------------------------------
// The server ends with its program. Each "program" here is a forked child of the test process,
// which starts a server of its own: a forked child does not use its parent's.

/// Starts a server, reports its PID, waits for `gate`, and returns.
fn start_server_then_return(out: Queue<u32>, gate: Queue<()>) -> Result<(), String> {
    start_and_join_one()?;
    let server = forkserver_pid().ok_or("no server after a forkserved start")?;
    out.put(server).map_err(|error| error.to_string())?;
    gate.get().map_err(|error| error.to_string())
}

/// Starts a server, reports its PID and blocks, to be killed.
fn start_server_then_block(out: Queue<u32>) -> Result<(), String> {
    start_and_join_one()?;
    let server = forkserver_pid().ok_or("no server after a forkserved start")?;
    out.put(server).map_err(|error| error.to_string())?;
    loop {
        std::thread::park();
    }
}

/// Starts a server, then a forked child that inherits the program's control socket and outlives
/// the program until `gate` opens; reports both PIDs and blocks, to be killed.
fn start_server_and_a_forked_child_then_block(
    out: Queue<u32>,
    gate: Queue<()>,
) -> Result<(), String> {
    start_and_join_one()?;
    let server = forkserver_pid().ok_or("no server after a forkserved start")?;
    let mut forked = Process::new(wait_for, (gate,)).start_method(StartMethod::Fork);
    forked.start().map_err(|error| error.to_string())?;
    let forked = forked.pid().ok_or("a started process has a PID")?;
    out.put(server).map_err(|error| error.to_string())?;
    out.put(forked).map_err(|error| error.to_string())?;
    loop {
        std::thread::park();
    }
}

#[test]
fn the_server_is_gone_when_its_program_returns() {
    let out = Queue::new().unwrap();
    let gate = Queue::new().unwrap();
    let args = (out.clone(), gate.clone());
    let mut program = Child::start(StartMethod::Fork, start_server_then_return, args);
    let server = out.get_timeout(LIMIT).expect("the server's PID");
    assert_ne!(Some(server), forkserver_pid(), "the program's own server");
    let server_exited = pidfd_of(server);
    assert!(!exited_within(&server_exited, Duration::ZERO));
    gate.put(()).unwrap();
    program.expect_success();
    // The program waits for its server before it exits: gone already, not merely going.
    assert!(exited_within(&server_exited, Duration::ZERO));
}

#[test]
fn the_server_is_gone_when_its_program_is_killed() {
    let out = Queue::new().unwrap();
    let mut program = Child::start(StartMethod::Fork, start_server_then_block, (out.clone(),));
    let server = out.get_timeout(LIMIT).expect("the server's PID");
    // Opened while the program, the server's parent, still runs: the PID is the server's.
    let server_exited = pidfd_of(server);
    assert_eq!(program.kill_and_reap(), -9);
    assert!(
        exited_within(&server_exited, LIMIT),
        "the server of a killed program is still running"
    );
}

#[test]
fn a_forked_child_of_a_killed_program_does_not_keep_its_server_alive() {
    let out = Queue::new().unwrap();
    let gate = Queue::new().unwrap();
    let args = (out.clone(), gate.clone());
    let mut program = Child::start(
        StartMethod::Fork,
        start_server_and_a_forked_child_then_block,
        args,
    );
    let server = out.get_timeout(LIMIT).expect("the server's PID");
    let forked = out.get_timeout(LIMIT).expect("the forked child's PID");
    let (server_exited, forked_exited) = (pidfd_of(server), pidfd_of(forked));
    assert_eq!(program.kill_and_reap(), -9);
    assert!(
        exited_within(&server_exited, LIMIT),
        "the server outlived its killed program"
    );
    assert!(
        !exited_within(&forked_exited, Duration::ZERO),
        "the forked child (not daemonic) runs on, as under fork"
    );
    gate.put(()).unwrap();
    assert!(exited_within(&forked_exited, LIMIT));
}

// ---------------------------------------------------------------------------------------------
// Forgeries from the program's side.

/// The exit code of a forkserved child whose payload was changed by `tamper`.
fn exit_code<F, A>(tamper: Tamper, target: F, args: A) -> i32
where
    F: shared::Target<A>,
    A: serde::Serialize + serde::de::DeserializeOwned + Send + 'static,
{
    tamper_with_next_spawn(tamper);
    let mut child = Child::start(FORKSERVER, target, args);
    child.exit_code_within(LIMIT)
}

#[test]
fn a_forged_payload_is_refused_by_the_forked_child() {
    assert_eq!(exit_code(Tamper::Token, returns, ()), 2, "another token");
    assert_eq!(exit_code(Tamper::Magic, returns, ()), 2, "another magic");
    assert_eq!(exit_code(Tamper::Version(1), returns, ()), 2, "version 1");
    for offset in [u64::MAX, 1 << 40, 1 << 20] {
        assert_eq!(
            exit_code(Tamper::Entry(offset), returns, ()),
            2,
            "entry {offset:#x}"
        );
    }
}

#[test]
fn handles_are_counted_and_checked_as_under_spawn() {
    let queue = Queue::<u32>::new().unwrap();
    assert_eq!(
        exit_code(
            Tamper::RequestExtraDescriptor,
            uses_a_queue,
            (queue.clone(),)
        ),
        2,
        "a request that carries more handles than its payload names"
    );
    let file = fs::File::open("/proc/self/exe").unwrap();
    let fd = std::os::fd::AsRawFd::as_raw_fd(&file);
    assert_eq!(
        exit_code(Tamper::Fds(vec![fd]), uses_a_queue, (queue.clone(),)),
        1,
        "a regular file is not a queue"
    );
    assert!(queue.empty(), "nothing was put through the file");
}

#[test]
fn a_request_without_its_socket_is_dropped_and_the_server_serves_on() {
    Child::start(FORKSERVER, returns, ()).expect_success();
    let server = forkserver_pid().expect("a server runs");
    for tamper in [Tamper::RequestOutOfOrder, Tamper::RequestWithoutDescriptors] {
        let name = format!("{tamper:?}");
        tamper_with_next_spawn(tamper);
        let mut child = Process::new(returns, ()).start_method(FORKSERVER);
        let error = child.start().expect_err(&name);
        assert!(error.to_string().contains("refused"), "{name}: {error}");
        assert_eq!(child.pid(), None, "{name}");
        Child::start(FORKSERVER, returns, ()).expect_success();
        assert_eq!(forkserver_pid(), Some(server), "{name}: the same server");
    }
}

#[test]
fn a_forkserved_child_can_use_the_forkserver_itself() {
    fn starts_its_own() -> Result<(), String> {
        start_and_join_one()?;
        let mine = forkserver_pid().ok_or("no server")?;
        let parent = shared::parent_process().ok_or("no parent")?;
        if mine == parent.pid() || forkservers_of(std::process::id()) != [mine] {
            return Err(format!("server {mine} is not this child's own"));
        }
        Ok(())
    }
    Child::start(FORKSERVER, starts_its_own, ()).expect_success();
}

#[test]
fn a_closure_is_refused_as_under_spawn() {
    let code = 5;
    let exits = move || -> () { std::process::exit(code) };
    let mut child = Process::new(exits, ()).start_method(FORKSERVER);
    let error = child
        .start()
        .expect_err("forkserver with a capturing closure");
    assert!(
        matches!(error, shared::ProcessError::SpawnNeedsFunction),
        "{error}"
    );
    assert_eq!(child.pid(), None);
}

// ---------------------------------------------------------------------------------------------
// A killed server. CPython (`test_forkserver_sigkill`, bpo-31308): the children it had started
// are still joined and their exit codes reported; a new server serves the next start.

/// Waits for `gate`, then exits with `code`.
fn exits_after(gate: Queue<()>, code: i32) {
    let _ = gate.get();
    std::process::exit(code)
}

/// Says whether `child` ended with `expected`, by `join`, `exitcode` and `is_alive`.
fn check_ended(child: &mut Process, expected: i32) -> Result<(), String> {
    let name = child.name().to_owned();
    child
        .join()
        .map_err(|error| format!("{name}: join: {error}"))?;
    match (child.exitcode(), child.is_alive()) {
        (Some(code), false) if code == expected => Ok(()),
        other => Err(format!(
            "{name}: (exitcode, is_alive) is {other:?}, expected (Some({expected}), false)"
        )),
    }
}

/// Starts two forkserved children, reports the server's PID, and waits until the test has
/// killed the server (`gate` opens): then lets one child exit with 7, kills the other, and
/// checks that both are joined with their exit codes; then that a new server serves.
fn loses_its_server(out: Queue<u32>, killed: Queue<()>) -> Result<(), String> {
    let gate = Queue::new().map_err(|error| error.to_string())?;
    // Daemonic, so that they die with this program if a check fails.
    let child = |code| {
        Process::new(exits_after, (gate.clone(), code))
            .start_method(FORKSERVER)
            .daemon(true)
    };
    let (mut exiting, mut killed_later) = (child(7), child(0));
    for child in [&mut exiting, &mut killed_later] {
        child.start().map_err(|error| error.to_string())?;
    }
    let server = forkserver_pid().ok_or("no server after a forkserved start")?;
    out.put(server).map_err(|error| error.to_string())?;
    killed.get().map_err(|error| error.to_string())?;
    killed_later.kill().map_err(|error| error.to_string())?;
    check_ended(&mut killed_later, -9)?;
    gate.put(()).map_err(|error| error.to_string())?;
    check_ended(&mut exiting, 7)?;
    start_and_join_one()?;
    match forkserver_pid() {
        Some(new) if new != server => Ok(()),
        other => Err(format!("the server after the killed {server} is {other:?}")),
    }
}

#[test]
fn the_children_of_a_killed_server_are_joined_with_their_exit_codes() {
    let out = Queue::new().unwrap();
    let killed = Queue::new().unwrap();
    let args = (out.clone(), killed.clone());
    // A program of its own (a forked child), whose server this test may kill: the test
    // process's server is shared by the other tests of this file.
    let mut program = Child::start(StartMethod::Fork, loses_its_server, args);
    let server = out.get_timeout(LIMIT).expect("the server's PID");
    let server_exited = pidfd_of(server);
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(server as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .expect("kill the server");
    assert!(
        exited_within(&server_exited, LIMIT),
        "the server survived SIGKILL"
    );
    killed.put(()).unwrap();
    program.expect_success();
}
