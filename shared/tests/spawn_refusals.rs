//! A spawned child runs its target only from a payload its parent made for it. Each test here
//! starts a real spawned child whose payload was changed in one way (`Tamper`), and checks
//! that the child refuses it: exit code 2 for a payload it cannot trust, 1 for a trusted
//! payload whose handle descriptor is not the kind its handle needs. The refusals of a forged
//! command line, without any parent, are tested on a lesson binary in `tests/tests/`.

use std::fs::File;
use std::os::fd::AsRawFd;

use shared::__private::{Tamper, tamper_with_next_spawn};
use shared::{Pipe, Process, Queue, StartMethod};

shared::enable_test_support!();

#[allow(unused_macros, reason = "these tests are about spawn alone")]
mod common;
use common::Child;

fn returns() {}

fn uses_a_queue(queue: Queue<u32>) -> Result<(), String> {
    queue.put(1).map_err(|error| error.to_string())
}

fn uses_a_connection(end: shared::Connection) -> Result<(), String> {
    end.send(&1).map_err(|error| error.to_string())
}

fn holds_a_connection(_end: shared::Connection) {}

/// The exit code of a spawned child whose payload was changed by `tamper`.
fn exit_code<F, A>(tamper: Tamper, target: F, args: A) -> i32
where
    F: shared::Target<A>,
    A: serde::Serialize + serde::de::DeserializeOwned + Send + 'static,
{
    tamper_with_next_spawn(tamper);
    let mut child = Child::start(StartMethod::Spawn, target, args);
    child.exit_code_within(common::LIMIT)
}

#[test]
fn an_untampered_payload_runs_the_target() {
    let queue = Queue::new().unwrap();
    let mut child = Child::start(StartMethod::Spawn, uses_a_queue, (queue.clone(),));
    child.expect_success();
    assert_eq!(queue.get_nowait().unwrap(), 1);
}

#[test]
fn a_payload_with_another_token_is_refused() {
    assert_eq!(exit_code(Tamper::Token, returns, ()), 2);
}

#[test]
fn a_payload_with_another_magic_or_version_is_refused() {
    assert_eq!(exit_code(Tamper::Magic, returns, ()), 2);
    // 1 is the format before the parent's name was sent; the others never existed.
    for version in [0, 1, u32::MAX] {
        assert_eq!(
            exit_code(Tamper::Version(version), returns, ()),
            2,
            "{version}"
        );
    }
}

#[test]
fn an_entry_outside_the_spawn_entries_is_refused() {
    for offset in [u64::MAX, 1 << 40, 1 << 20] {
        assert_eq!(
            exit_code(Tamper::Entry(offset), returns, ()),
            2,
            "{offset:#x}"
        );
    }
}

#[test]
fn standard_streams_and_duplicates_are_refused_as_handles() {
    let file = File::open("/proc/self/exe").unwrap();
    let fd = file.as_raw_fd();
    for fds in [vec![1], vec![0], vec![2], vec![1, 1], vec![fd, fd]] {
        let queue = Queue::<u32>::new().unwrap();
        assert_eq!(
            exit_code(Tamper::Fds(fds.clone()), uses_a_queue, (queue,)),
            2,
            "{fds:?}"
        );
    }
}

#[test]
fn a_regular_file_is_refused_as_a_queue_or_a_pipe_end() {
    let file = File::open("/proc/self/exe").unwrap();
    let fd = file.as_raw_fd();
    let queue = Queue::<u32>::new().unwrap();
    assert_eq!(
        exit_code(Tamper::Fds(vec![fd]), uses_a_queue, (queue.clone(),)),
        1
    );
    assert!(queue.empty(), "nothing was put through the file");
    let (mine, theirs) = Pipe::new().unwrap();
    assert_eq!(
        exit_code(Tamper::Fds(vec![fd]), uses_a_connection, (theirs,)),
        1
    );
    drop(mine);
}

#[test]
fn a_closure_is_refused_under_spawn_even_if_it_captures_nothing() {
    let mut child = Process::new(|| (), ()).start_method(StartMethod::Spawn);
    let error = child.start().expect_err("spawn with a closure");
    assert!(
        matches!(error, shared::ProcessError::SpawnNeedsFunction),
        "{error}"
    );
    let token = std::marker::PhantomData::<String>;
    let capturing = move || {
        let _ = token;
    };
    assert_eq!(size_of_val(&capturing), 0);
    let mut child = Process::new(capturing, ()).start_method(StartMethod::Spawn);
    assert!(matches!(
        child.start().expect_err("spawn with a zero-sized capture"),
        shared::ProcessError::SpawnNeedsFunction
    ));
}

/// A target that opens a descriptor without close-on-exec, as C code and `dup` do, then calls
/// the entry again: only the first call may act, so the descriptor stays its own.
fn opens_a_descriptor_then_calls_init_again() -> Result<(), String> {
    let copy = nix::unistd::dup(std::io::stderr()).map_err(|error| error.to_string())?;
    shared::run_if_spawned_child();
    shared::init().map_err(|error| error.to_string())?;
    nix::unistd::write(&copy, b"").map_err(|error| format!("the descriptor was taken: {error}"))?;
    Ok(())
}

#[test]
fn a_second_call_of_the_entry_in_a_spawned_child_does_nothing() {
    let mut child = Child::start(
        StartMethod::Spawn,
        opens_a_descriptor_then_calls_init_again,
        (),
    );
    child.expect_success();
}

/// The descriptors of a duplex pipe end, `(read, write)`, from its `Debug`, the only public
/// place that shows them.
fn pipe_descriptors(end: &shared::Connection) -> (i32, i32) {
    let debug = format!("{end:?}");
    let numbers: Vec<i32> = debug
        .split("fds: (")
        .nth(1)
        .and_then(|rest| rest.split(')').next())
        .map(|pair| pair.split(", ").filter_map(|n| n.parse().ok()).collect())
        .unwrap_or_default();
    match numbers[..] {
        [read, write] => (read, write),
        _ => panic!("no descriptor pair in {debug}"),
    }
}

#[test]
fn a_pipe_end_given_for_the_other_direction_is_refused() {
    let (mine, theirs) = Pipe::new().unwrap();
    let (read, write) = pipe_descriptors(&theirs);
    // Swapped: the read end where the write end should be, and the other way round. The
    // target does not touch its end, so only the check on arrival can make the child fail.
    assert_eq!(
        exit_code(
            Tamper::Fds(vec![write, read]),
            holds_a_connection,
            (theirs,)
        ),
        1
    );
    // The child refused before sending anything: the parent's end has only end of file.
    let received = mine.recv::<u32>();
    assert!(
        matches!(received, Err(shared::RecvError::Closed)),
        "{received:?}"
    );
}

#[test]
fn a_pipe_is_refused_where_a_socket_end_should_be() {
    let address = format!("@shared-refusal-{}", std::process::id());
    let listener = shared::Listener::bind(address.as_str(), 1, None).unwrap();
    let client = shared::Client::connect(address.as_str(), None).unwrap();
    let accepted = listener.accept().unwrap();
    let (pipe_end, _other_end) = Pipe::new().unwrap();
    let (read_fd, _) = pipe_descriptors(&pipe_end);
    // The target does not touch its end: only the check on arrival can make it fail.
    assert_eq!(
        exit_code(Tamper::Fds(vec![read_fd]), holds_a_connection, (accepted,)),
        1
    );
    drop((client, pipe_end));
}
