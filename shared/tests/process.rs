//! Integration tests of [`shared::Process`], each run under every start method.
//!
//! A child reports back through its exit code (and, where a number does not fit, through a file
//! whose path it receives as an argument). Every wait is bounded: a child that hangs makes its
//! test fail instead of hanging the run, and a failing test kills the children it started.

use std::fmt::Display;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::sys::signal::{self, Signal};
use nix::unistd::Pid;
use serde::de::Error as _;
use serde::ser::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use shared::{Process, ProcessError, StartMethod};

shared::enable_test_support!();

#[macro_use]
mod common;
use common::{Child, LIMIT};

/// How long a process that must die may take to disappear from the process table.
const DEATH_LIMIT: Duration = Duration::from_secs(10);

under_every_start_method!(
    exit_code_is_zero_when_the_target_returns,
    exit_code_is_one_when_the_target_panics,
    exit_code_is_the_status_given_to_exit,
    exit_code_is_one_when_the_target_returns_err,
    exit_code_is_minus_the_signal_that_ended_the_child,
    kill_gives_minus_nine,
    terminate_gives_minus_fifteen,
    is_alive_and_exitcode_follow_the_child,
    is_alive_turns_false_without_join_once_the_child_ends,
    join_timeout_returns_while_the_child_still_runs,
    join_again_and_signals_after_the_end_change_nothing,
    join_works_from_another_thread,
    start_twice_is_an_error,
    operations_before_start_are_errors,
    set_daemon_after_start_is_an_error,
    arguments_are_delivered,
    six_arguments_of_several_types_are_delivered,
    pid_is_the_childs,
    names_are_process_n,
    a_childs_children_are_named_after_it,
    daemon_is_terminated_when_its_parent_ends,
    daemon_dies_when_its_parent_is_killed,
    non_daemonic_children_are_joined_when_their_parent_ends,
    daemonic_process_cannot_start_children,
    a_daemon_started_from_a_thread_outlives_the_thread,
    non_daemonic_process_can_start_children,
    many_threads_start_processes_at_once,
);

// ---------------------------------------------------------------------------------------------
// Targets. Spawn recreates a target from its type, so all of them are plain functions.

fn returns() {}

fn returns_ok() -> Result<(), String> {
    Ok(())
}

fn returns_err() -> Result<(), String> {
    Err("deliberate error returned by the target (the test expects it)".to_owned())
}

fn panics() {
    silence_panic_messages();
    panic!("deliberate panic in the target (the test expects it)");
}

/// Keeps a deliberate panic in a child off the test run's stderr: a spawned child writes to it
/// directly, past libtest's capture, and a green run should print no panic or backtrace. Only
/// the child's message is lost; its exit code, which the tests check, is the same.
fn silence_panic_messages() {
    std::panic::set_hook(Box::new(|_| {}));
}

fn exits_with(code: i32) {
    std::process::exit(code);
}

fn raises(signal: i32) {
    let signal = Signal::try_from(signal).expect("a valid signal number");
    signal::raise(signal).expect("raise");
    block_forever();
}

fn block_forever() {
    loop {
        thread::park();
    }
}

fn exit_with_sum(a: i32, b: String) {
    std::process::exit(a + b.len() as i32);
}

#[derive(Serialize, Deserialize, PartialEq, Debug)]
struct Point {
    x: i32,
    label: String,
    tags: Vec<u8>,
}

fn sample_point() -> Point {
    Point {
        x: -7,
        label: "ponto".to_owned(),
        tags: vec![0, 255, 3],
    }
}

fn check_six(a: u8, b: i64, c: String, d: Vec<u32>, e: Option<Point>, f: (char, bool)) {
    let code = if a != 200 {
        10
    } else if b != -(1 << 40) {
        11
    } else if c != "olá, mundo" {
        12
    } else if d != [1, 2, 3] {
        13
    } else if e != Some(sample_point()) {
        14
    } else if f != ('ç', true) {
        15
    } else {
        0
    };
    std::process::exit(code);
}

/// Writes the names of two processes it creates (without starting them) into `path`.
fn write_child_names(path: String) {
    let first = Process::new(returns, ());
    let second = Process::new(returns, ());
    write_atomically(&path, &format!("{}\n{}", first.name(), second.name()));
}

/// How a child that started children of its own ends, and the exit code that gives.
#[derive(Serialize, Deserialize, Clone, Copy, Debug)]
enum Ending {
    Return,
    Exit,
    Panic,
    Err,
}

impl Ending {
    const ALL: [Ending; 4] = [Ending::Return, Ending::Exit, Ending::Panic, Ending::Err];

    fn exitcode(self) -> i32 {
        match self {
            Ending::Return => 0,
            Ending::Exit => 3,
            Ending::Panic | Ending::Err => 1,
        }
    }

    fn end(self) -> Result<(), String> {
        match self {
            Ending::Return => Ok(()),
            Ending::Exit => std::process::exit(3),
            Ending::Panic => {
                silence_panic_messages();
                panic!("deliberate panic after starting a child (expected)")
            }
            Ending::Err => Err("deliberate error after starting a child (expected)".to_owned()),
        }
    }
}

/// Starts a daemonic grandchild that blocks forever, writes its PID to `pid_file`, and ends.
fn start_daemon_then_end(pid_file: String, method: String, ending: Ending) -> Result<(), String> {
    let grandchild = start_blocked_daemon(&method);
    write_atomically(&pid_file, &grandchild.to_string());
    ending.end()
}

/// Starts a daemonic grandchild that blocks forever, writes its PID to `pid_file`, and blocks.
fn start_daemon_then_block(pid_file: String, method: String) {
    let grandchild = start_blocked_daemon(&method);
    write_atomically(&pid_file, &grandchild.to_string());
    block_forever();
}

fn start_blocked_daemon(method: &str) -> u32 {
    let mut daemon = Process::new(block_forever, ())
        .daemon(true)
        .start_method(parse(method));
    if let Err(error) = daemon.start() {
        fail(
            90,
            format_args!("cannot start the daemonic grandchild: {error}"),
        );
    }
    daemon
        .pid()
        .unwrap_or_else(|| fail(91, "a started process has no PID"))
}

/// Starts a non-daemonic grandchild that writes `marker` a little later, and ends without
/// joining it.
fn start_writer_then_end(marker: String, method: String, ending: Ending) -> Result<(), String> {
    let mut writer = Process::new(write_marker_later, (marker,)).start_method(parse(&method));
    if let Err(error) = writer.start() {
        fail(90, format_args!("cannot start the grandchild: {error}"));
    }
    ending.end()
}

fn write_marker_later(marker: String) {
    thread::sleep(Duration::from_millis(200));
    write_atomically(&marker, "written by the grandchild");
}

/// Tries to start a child; the exit code tells what happened.
fn try_to_start_a_child(method: String) {
    let mut child = Process::new(returns, ()).start_method(parse(&method));
    let code = match child.start() {
        Err(ProcessError::DaemonWithChildren) => {
            let message = ProcessError::DaemonWithChildren.to_string();
            if message == "daemonic processes are not allowed to have children" {
                20
            } else {
                21
            }
        }
        Err(_) => 22,
        Ok(()) => match child.join() {
            Ok(()) if child.exitcode() == Some(0) => 30,
            _ => 31,
        },
    };
    std::process::exit(code);
}

/// A child's way of saying its set-up failed, with a code no target above returns.
fn fail(code: i32, why: impl Display) -> ! {
    eprintln!("child set-up failed: {why}");
    std::process::exit(code);
}

fn parse(method: &str) -> StartMethod {
    method.parse().unwrap_or_else(|error| fail(92, error))
}

/// Writes `text` so that whoever polls for `path` never sees it half-written.
fn write_atomically(path: &str, text: &str) {
    let partial = format!("{path}.partial");
    fs::write(&partial, text).unwrap_or_else(|error| fail(93, error));
    fs::rename(&partial, path).unwrap_or_else(|error| fail(94, error));
}

/// An argument that cannot be serialized.
#[derive(Deserialize)]
struct Unserializable;

impl Serialize for Unserializable {
    fn serialize<S: Serializer>(&self, _: S) -> Result<S::Ok, S::Error> {
        Err(S::Error::custom("this value refuses to be serialized"))
    }
}

fn takes_unserializable(_: Unserializable) {}

/// An argument that serializes but cannot be decoded.
#[derive(Serialize)]
struct Undecodable;

impl<'de> Deserialize<'de> for Undecodable {
    fn deserialize<D: Deserializer<'de>>(_: D) -> Result<Self, D::Error> {
        Err(D::Error::custom("this value refuses to be decoded"))
    }
}

fn takes_undecodable(_: Undecodable) {}

// ---------------------------------------------------------------------------------------------
// Helpers of the test process.

fn process<F, A>(target: F, args: A, method: StartMethod) -> Process
where
    F: shared::Target<A>,
    A: Serialize + serde::de::DeserializeOwned + Send + 'static,
{
    Process::new(target, args).start_method(method)
}

/// Joins with a bound; returns the exit code.
fn finish(process: &mut Process) -> i32 {
    process.join_timeout(LIMIT).expect("join_timeout");
    if process.is_alive() {
        let _ = process.kill();
        let _ = process.join();
        panic!("{} did not end within {LIMIT:?}", process.name());
    }
    process
        .exitcode()
        .expect("a process that ended has an exit code")
}

fn run(process: Process) -> i32 {
    finish(&mut Child::started(process))
}

/// A fresh directory for the files of one test, removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> TempDir {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let path =
            std::env::temp_dir().join(format!("shared-process-test-{}-{n}", std::process::id()));
        let _ = fs::remove_dir_all(&path);
        fs::create_dir_all(&path).expect("create the test directory");
        TempDir(path)
    }

    fn file(&self, name: &str) -> String {
        self.0
            .join(name)
            .to_str()
            .expect("a UTF-8 temporary path")
            .to_owned()
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// Waits (bounded) for `path`, which `writer` writes while it runs; returns its contents.
fn wait_for_file(path: &str, writer: &Process) -> String {
    let deadline = Instant::now() + LIMIT;
    loop {
        if let Ok(text) = fs::read_to_string(path) {
            return text;
        }
        if let Some(code) = writer.exitcode() {
            if let Ok(text) = fs::read_to_string(path) {
                return text;
            }
            panic!(
                "{} ended with exit code {code} without writing {path}",
                writer.name()
            );
        }
        assert!(
            Instant::now() < deadline,
            "{} did not write {path} within {LIMIT:?}",
            writer.name()
        );
        thread::sleep(Duration::from_millis(10));
    }
}

fn read_pid(path: &str) -> u32 {
    let text = fs::read_to_string(path).unwrap_or_else(|error| panic!("read {path}: {error}"));
    text.trim()
        .parse()
        .unwrap_or_else(|error| panic!("{path} holds {text:?}: {error}"))
}

/// The state letter and parent PID of `pid` from `/proc/PID/stat`, if it exists.
fn proc_stat(pid: u32) -> Option<(char, u32)> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // "PID (COMM) STATE PPID ...": COMM may hold spaces and parentheses, so go from the last ')'.
    let mut fields = stat[stat.rfind(')')? + 1..].split_whitespace();
    let state = fields.next()?.chars().next()?;
    let parent = fields.next()?.parse().ok()?;
    Some((state, parent))
}

/// Checks that `starter` started process `pid`: it is `pid`'s parent, or under forkserver the
/// parent of `pid`'s parent, the server that forked it.
fn assert_started_by(pid: u32, starter: u32, method: StartMethod) {
    let (_, parent) = proc_stat(pid).expect("the child is in /proc");
    if method == StartMethod::Forkserver {
        assert_ne!(parent, starter, "a forkserved child's parent is the server");
        let (_, servers_parent) = proc_stat(parent).expect("the server is in /proc");
        assert_eq!(servers_parent, starter, "the server's parent");
    } else {
        assert_eq!(parent, starter);
    }
}

/// Whether `pid` is gone: no such process, or a zombie waiting for someone to reap it.
fn is_gone(pid: u32) -> bool {
    match signal::kill(Pid::from_raw(pid as i32), None) {
        Err(Errno::ESRCH) => true,
        _ => matches!(proc_stat(pid), None | Some(('Z' | 'X', _))),
    }
}

/// Waits (bounded) until `pid` is gone; if it never goes, kills it so nothing is left behind.
fn assert_gone_soon(pid: u32, what: &str) {
    let deadline = Instant::now() + DEATH_LIMIT;
    while !is_gone(pid) {
        if Instant::now() >= deadline {
            let _ = signal::kill(Pid::from_raw(pid as i32), Signal::SIGKILL);
            panic!(
                "{what} (PID {pid}) still exists {DEATH_LIMIT:?} later: {:?}",
                proc_stat(pid)
            );
        }
        thread::sleep(Duration::from_millis(10));
    }
}

fn number_in(name: &str) -> u32 {
    name.strip_prefix("Process-")
        .and_then(|n| n.parse().ok())
        .filter(|&n| n > 0)
        .unwrap_or_else(|| panic!("{name:?} does not have the shape Process-N"))
}

// ---------------------------------------------------------------------------------------------
// Exit codes.

fn exit_code_is_zero_when_the_target_returns(method: StartMethod) {
    assert_eq!(run(process(returns, (), method)), 0);
    assert_eq!(run(process(returns_ok, (), method)), 0);
}

fn exit_code_is_one_when_the_target_panics(method: StartMethod) {
    assert_eq!(run(process(panics, (), method)), 1);
    // The panic stayed in the child: this thread goes on, and can start another process.
    assert!(!thread::panicking());
    assert_eq!(run(process(returns, (), method)), 0);
}

fn exit_code_is_the_status_given_to_exit(method: StartMethod) {
    assert_eq!(run(process(exits_with, (7,), method)), 7);
    assert_eq!(run(process(exits_with, (0,), method)), 0);
    assert_eq!(run(process(exits_with, (255,), method)), 255);
}

fn exit_code_is_one_when_the_target_returns_err(method: StartMethod) {
    assert_eq!(run(process(returns_err, (), method)), 1);
}

fn exit_code_is_minus_the_signal_that_ended_the_child(method: StartMethod) {
    assert_eq!(
        run(process(raises, (Signal::SIGUSR1 as i32,), method)),
        -(Signal::SIGUSR1 as i32)
    );
}

fn kill_gives_minus_nine(method: StartMethod) {
    let mut child = Child::started(process(block_forever, (), method));
    assert!(child.is_alive());
    child.kill().expect("kill");
    assert_eq!(finish(&mut child), -9);
}

fn terminate_gives_minus_fifteen(method: StartMethod) {
    let mut child = Child::started(process(block_forever, (), method));
    assert!(child.is_alive());
    child.terminate().expect("terminate");
    assert_eq!(finish(&mut child), -15);
}

// ---------------------------------------------------------------------------------------------
// State: is_alive, exitcode, join_timeout.

fn is_alive_and_exitcode_follow_the_child(method: StartMethod) {
    let child = process(block_forever, (), method);
    assert!(!child.is_alive());
    assert_eq!(child.exitcode(), None);

    let mut child = Child::started(child);
    assert!(child.is_alive());
    assert_eq!(child.exitcode(), None);

    child.terminate().expect("terminate");
    assert_eq!(finish(&mut child), -15);
    assert!(!child.is_alive());
    assert_eq!(child.exitcode(), Some(-15));
}

fn is_alive_turns_false_without_join_once_the_child_ends(method: StartMethod) {
    let child = Child::started(process(exits_with, (5,), method));
    let deadline = Instant::now() + LIMIT;
    while child.is_alive() {
        assert!(
            Instant::now() < deadline,
            "the child did not end within {LIMIT:?}"
        );
        thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(child.exitcode(), Some(5));
}

fn join_timeout_returns_while_the_child_still_runs(method: StartMethod) {
    let mut child = Child::started(process(block_forever, (), method));
    child
        .join_timeout(Duration::from_millis(50))
        .expect("join_timeout");
    assert!(child.is_alive());
    assert_eq!(child.exitcode(), None);
    child.join_timeout(Duration::ZERO).expect("join_timeout");
    assert!(child.is_alive());

    child.kill().expect("kill");
    assert_eq!(finish(&mut child), -9);
}

fn join_again_and_signals_after_the_end_change_nothing(method: StartMethod) {
    let mut child = Child::started(process(exits_with, (3,), method));
    assert_eq!(finish(&mut child), 3);
    child.join().expect("a second join");
    child
        .join_timeout(Duration::ZERO)
        .expect("a join with timeout after the end");
    child.terminate().expect("terminate after the end");
    child.kill().expect("kill after the end");
    assert_eq!(child.exitcode(), Some(3));
    assert!(!child.is_alive());
}

fn join_works_from_another_thread(method: StartMethod) {
    let mut child = Child::started(process(exits_with, (4,), method));
    let code = thread::spawn(move || finish(&mut child))
        .join()
        .expect("the joining thread");
    assert_eq!(code, 4);
}

// ---------------------------------------------------------------------------------------------
// Errors.

fn start_twice_is_an_error(method: StartMethod) {
    let mut child = Child::started(process(block_forever, (), method));
    let pid = child.pid();

    let error = child.start().expect_err("a second start");
    assert!(matches!(error, ProcessError::AlreadyStarted), "{error}");
    assert_eq!(error.to_string(), "cannot start a process twice");
    assert_eq!(
        child.pid(),
        pid,
        "the second start must not start another child"
    );

    child.kill().expect("kill");
    assert_eq!(finish(&mut child), -9);
    let error = child.start().expect_err("a start after the end");
    assert!(matches!(error, ProcessError::AlreadyStarted), "{error}");
}

fn operations_before_start_are_errors(method: StartMethod) {
    let mut child = process(returns, (), method);

    let error = child.join().expect_err("join before start");
    assert!(
        matches!(error, ProcessError::NotStarted { operation: "join" }),
        "{error}"
    );
    assert_eq!(error.to_string(), "can only join a started process");

    let error = child
        .join_timeout(Duration::ZERO)
        .expect_err("join_timeout before start");
    assert_eq!(error.to_string(), "can only join a started process");

    let error = child.terminate().expect_err("terminate before start");
    assert!(
        matches!(
            error,
            ProcessError::NotStarted {
                operation: "terminate"
            }
        ),
        "{error}"
    );
    assert_eq!(error.to_string(), "can only terminate a started process");

    let error = child.kill().expect_err("kill before start");
    assert!(
        matches!(error, ProcessError::NotStarted { operation: "kill" }),
        "{error}"
    );
    assert_eq!(error.to_string(), "can only kill a started process");

    // None of that spoiled the process.
    assert_eq!(child.pid(), None);
    assert_eq!(run(child), 0);
}

fn set_daemon_after_start_is_an_error(method: StartMethod) {
    let mut child = process(block_forever, (), method);
    child.set_daemon(false).expect("set_daemon before start");
    assert!(!child.is_daemon());
    let mut child = Child::started(child);
    let error = child.set_daemon(true).expect_err("set_daemon after start");
    assert!(matches!(error, ProcessError::AlreadyStarted), "{error}");
    assert!(!child.is_daemon());
    child.kill().expect("kill");
    assert_eq!(finish(&mut child), -9);
}

#[test]
fn spawn_refuses_a_closure_that_captures() {
    let code = 5;
    let mut child = Process::new(move || exits_with(code), ()).start_method(StartMethod::Spawn);
    let error = child.start().expect_err("spawn with a capturing closure");
    assert!(matches!(error, ProcessError::SpawnNeedsFunction), "{error}");
    assert!(
        error
            .to_string()
            .starts_with("the spawn and forkserver start methods need a function"),
        "{error}"
    );
    assert_eq!(child.pid(), None);
    assert!(!child.is_alive());
    assert_eq!(child.exitcode(), None);
    let error = child.join().expect_err("join after a failed start");
    assert_eq!(error.to_string(), "can only join a started process");
}

#[test]
fn spawn_refuses_a_function_pointer() {
    let target: fn() = returns;
    let mut child = Process::new(target, ()).start_method(StartMethod::Spawn);
    let error = child.start().expect_err("spawn with a function pointer");
    assert!(matches!(error, ProcessError::SpawnNeedsFunction), "{error}");
}

#[test]
fn fork_accepts_a_closure_that_captures_and_a_function_pointer() {
    let code = 5;
    let closure = move || exits_with(code);
    assert_eq!(
        run(Process::new(closure, ()).start_method(StartMethod::Fork)),
        5
    );
    let target: fn(i32) = exits_with;
    assert_eq!(
        run(Process::new(target, (6,)).start_method(StartMethod::Fork)),
        6
    );
}

#[test]
fn spawn_reports_arguments_that_cannot_be_serialized() {
    let mut child = process(takes_unserializable, (Unserializable,), StartMethod::Spawn);
    let error = child
        .start()
        .expect_err("spawn with an unserializable argument");
    assert!(matches!(error, ProcessError::Arguments(_)), "{error}");
    let message = error.to_string();
    assert!(
        message.starts_with("cannot send the arguments to the spawned child"),
        "{message}"
    );
    assert!(
        message.contains("this value refuses to be serialized"),
        "{message}"
    );
    assert_eq!(child.pid(), None);
    // Fork does not serialize the arguments.
    assert_eq!(
        run(process(
            takes_unserializable,
            (Unserializable,),
            StartMethod::Fork
        )),
        0
    );
}

#[test]
fn spawned_child_that_cannot_decode_its_arguments_exits_with_one() {
    assert_eq!(
        run(process(
            takes_undecodable,
            (Undecodable,),
            StartMethod::Spawn
        )),
        1
    );
    assert_eq!(
        run(process(
            takes_undecodable,
            (Undecodable,),
            StartMethod::Fork
        )),
        0
    );
}

// ---------------------------------------------------------------------------------------------
// Arguments, PID, names.

fn arguments_are_delivered(method: StartMethod) {
    assert_eq!(
        run(process(exit_with_sum, (30, "hello".to_owned()), method)),
        35
    );
    assert_eq!(run(process(exit_with_sum, (1, String::new()), method)), 1);
}

fn six_arguments_of_several_types_are_delivered(method: StartMethod) {
    let args = (
        200u8,
        -(1i64 << 40),
        "olá, mundo".to_owned(),
        vec![1u32, 2, 3],
        Some(sample_point()),
        ('ç', true),
    );
    assert_eq!(run(process(check_six, args, method)), 0);
}

fn pid_is_the_childs(method: StartMethod) {
    let child = process(block_forever, (), method);
    assert_eq!(child.pid(), None);

    let mut child = Child::started(child);
    let pid = child.pid().expect("a started process has a PID");
    assert_ne!(pid, std::process::id());
    // Unreaped, the child is in the process table, and we are its parent (or, under
    // forkserver, our server is).
    assert_started_by(pid, std::process::id(), method);
    if method == StartMethod::Forkserver {
        let server = shared::__private::forkserver_pid().expect("a server runs");
        assert_eq!(proc_stat(pid).map(|(_, parent)| parent), Some(server));
    }

    child.kill().expect("kill");
    assert_eq!(finish(&mut child), -9);
    assert_eq!(child.pid(), Some(pid), "the PID stays known after the end");
}

fn names_are_process_n(method: StartMethod) {
    let first = process(returns, (), method);
    let second = process(returns, (), method);
    let (n1, n2) = (number_in(first.name()), number_in(second.name()));
    assert!(
        n2 > n1,
        "{} was created after {}",
        second.name(),
        first.name()
    );

    let name = first.name().to_owned();
    let mut first = Child::started(first);
    assert_eq!(first.name(), name, "starting keeps the name");
    assert_eq!(finish(&mut first), 0);

    let mut renamed = second;
    renamed.set_name("worker");
    assert_eq!(renamed.name(), "worker");
    assert_eq!(run(renamed), 0);
}

fn a_childs_children_are_named_after_it(method: StartMethod) {
    let dir = TempDir::new();
    let path = dir.file("names");
    let child = process(write_child_names, (path.clone(),), method);
    let expected = format!("{0}:1\n{0}:2", child.name());
    assert_eq!(run(child), 0);
    assert_eq!(fs::read_to_string(&path).expect("the names file"), expected);
}

// ---------------------------------------------------------------------------------------------
// Daemonic and non-daemonic children when their parent ends.

fn daemon_is_terminated_when_its_parent_ends(method: StartMethod) {
    for ending in Ending::ALL {
        let dir = TempDir::new();
        let pid_file = dir.file("daemon.pid");
        let args = (pid_file.clone(), method.to_string(), ending);
        let code = run(process(start_daemon_then_end, args, method));
        assert!(
            Path::new(&pid_file).exists(),
            "the child ended ({code}) without a grandchild"
        );
        assert_eq!(code, ending.exitcode(), "{ending:?}");
        assert_gone_soon(
            read_pid(&pid_file),
            &format!("the daemon of a child that ended by {ending:?}"),
        );
    }
}

fn daemon_dies_when_its_parent_is_killed(method: StartMethod) {
    let dir = TempDir::new();
    let pid_file = dir.file("daemon.pid");
    let mut child = Child::started(process(
        start_daemon_then_block,
        (pid_file.clone(), method.to_string()),
        method,
    ));
    let daemon: u32 = wait_for_file(&pid_file, &child)
        .trim()
        .parse()
        .expect("a PID");
    // The PID is the daemon's: alive, and our child's child (or its server's).
    assert_started_by(daemon, child.pid().unwrap(), method);
    assert!(!is_gone(daemon));

    child.kill().expect("kill");
    assert_eq!(finish(&mut child), -9);
    assert_gone_soon(daemon, "the daemon of a killed child");
}

fn non_daemonic_children_are_joined_when_their_parent_ends(method: StartMethod) {
    for ending in Ending::ALL {
        let dir = TempDir::new();
        let marker = dir.file("marker");
        let args = (marker.clone(), method.to_string(), ending);
        assert_eq!(
            run(process(start_writer_then_end, args, method)),
            ending.exitcode(),
            "{ending:?}"
        );
        assert!(
            Path::new(&marker).exists(),
            "a child that ended by {ending:?} did not wait for its non-daemonic child"
        );
    }
}

fn echo_once(requests: shared::Queue<u32>, replies: shared::Queue<u32>) -> Result<(), String> {
    let request = requests.get().map_err(|error| error.to_string())?;
    replies.put(request).map_err(|error| error.to_string())
}

/// Linux's parent-death signal fires when the parent *thread* exits; a daemon must live until
/// its parent *process* ends, whichever thread started it.
fn a_daemon_started_from_a_thread_outlives_the_thread(method: StartMethod) {
    let requests = shared::Queue::new().unwrap();
    let replies = shared::Queue::new().unwrap();
    let args = (requests.clone(), replies.clone());
    let starter =
        thread::spawn(move || Child::started(process(echo_once, args, method).daemon(true)));
    let mut daemon = starter.join().expect("the starting thread");
    // The thread that started the daemon has ended; the daemon must still answer.
    requests.put(7).unwrap();
    assert_eq!(replies.get_timeout(LIMIT).expect("the daemon's reply"), 7);
    daemon.expect_success();
}

fn daemonic_process_cannot_start_children(method: StartMethod) {
    let child = process(try_to_start_a_child, (method.to_string(),), method).daemon(true);
    assert!(child.is_daemon());
    assert_eq!(run(child), 20);
}

fn non_daemonic_process_can_start_children(method: StartMethod) {
    assert_eq!(
        run(process(try_to_start_a_child, (method.to_string(),), method)),
        30
    );
}

// ---------------------------------------------------------------------------------------------
// Concurrency.

fn many_threads_start_processes_at_once(method: StartMethod) {
    let threads: Vec<_> = (0..8)
        .map(|i| {
            thread::spawn(move || {
                let children: Vec<_> = (0..5)
                    .map(|j| Child::started(process(exits_with, (i * 10 + j,), method)))
                    .collect();
                // Join in the reverse order of start.
                children
                    .into_iter()
                    .rev()
                    .map(|mut child| finish(&mut child))
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    for (i, thread) in threads.into_iter().enumerate() {
        let i = i as i32;
        let codes = thread.join().expect("a starting thread");
        assert_eq!(codes, (0..5).rev().map(|j| i * 10 + j).collect::<Vec<_>>());
    }
}
