//! Integration tests of [`shared::wait`] over connections, listeners and process sentinels.
//!
//! Tests run one at a time (see [`serial`]): a forked child copies every descriptor of the
//! test process, and a copy of another test's pipe end would hide the end of file it waits
//! for.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use shared::{Client, Connection, Listener, Pipe, Process, StartMethod, Waitable, wait};

shared::enable_test_support!();

#[macro_use]
mod common;
use common::{Child, LIMIT};

under_both_start_methods!(
    a_sentinel_is_ready_once_its_process_ends,
    wait_returns_whichever_child_answered,
);

fn serial() -> std::sync::MutexGuard<'static, ()> {
    static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());
    SERIAL
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn unique_abstract() -> String {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    format!("@shared-wait-test-{}-{n}", std::process::id())
}

/// Which of `all` are in `ready`, by address.
fn positions<W: ?Sized>(all: &[&W], ready: &[&W]) -> Vec<usize> {
    (0..all.len())
        .filter(|&i| ready.iter().any(|r| std::ptr::addr_eq(*r, all[i])))
        .collect()
}

#[test]
fn nothing_ready_waits_out_the_timeout_and_returns_none() {
    let _serial = serial();
    let (_a, b) = Pipe::new().unwrap();
    let (_c, d) = Pipe::new().unwrap();
    assert!(wait([&b, &d], Some(Duration::ZERO)).unwrap().is_empty());
    let began = Instant::now();
    let timeout = Duration::from_millis(30);
    assert!(wait([&b, &d], Some(timeout)).unwrap().is_empty());
    assert!(began.elapsed() >= timeout, "{:?}", began.elapsed());
}

#[test]
fn the_ready_connections_are_returned_in_the_order_given() {
    let _serial = serial();
    let pairs: Vec<(Connection, Connection)> = (0..4).map(|_| Pipe::new().unwrap()).collect();
    let receivers: Vec<&Connection> = pairs.iter().map(|(_, receiver)| receiver).collect();
    pairs[3].0.send(&3).unwrap();
    pairs[1].0.send(&1).unwrap();
    let ready = wait(receivers.iter().copied(), None).unwrap();
    assert_eq!(positions(&receivers, &ready), [1, 3]);
    for receiver in ready {
        receiver.recv::<i32>().unwrap();
    }
    // End of file is ready too: a receiver learns that way that its sender is gone.
    let (sender, receiver) = pairs.into_iter().next().unwrap();
    drop(sender);
    assert_eq!(wait([&receiver], Some(Duration::ZERO)).unwrap().len(), 1);
    assert!(receiver.recv::<i32>().unwrap_err().is_closed());
}

#[test]
fn a_message_already_read_ahead_is_ready_though_its_pipe_is_empty() {
    let _serial = serial();
    let (a, b) = Pipe::new().unwrap();
    let (_c, d) = Pipe::new().unwrap();
    a.send(&1).unwrap();
    a.send(&2).unwrap();
    // One read takes both messages out of the pipe; the second waits in `b`'s buffer.
    assert_eq!(b.recv::<i32>().unwrap(), 1);
    let all = [&b, &d];
    let ready = wait(all, Some(Duration::from_secs(5))).unwrap();
    assert_eq!(positions(&all, &ready), [0]);
    assert_eq!(b.recv::<i32>().unwrap(), 2);
}

#[test]
fn a_listener_is_ready_when_a_connection_waits() {
    let _serial = serial();
    let address = unique_abstract();
    let listener = Listener::bind(address.as_str(), 1, None).unwrap();
    assert!(wait([&listener], Some(Duration::ZERO)).unwrap().is_empty());
    let client = Client::connect(address.as_str(), None).unwrap();
    assert_eq!(wait([&listener], Some(LIMIT)).unwrap().len(), 1);
    let server = listener.accept().unwrap();
    client.send("oi").unwrap();
    assert_eq!(wait([&server], Some(LIMIT)).unwrap().len(), 1);
    assert_eq!(server.recv::<String>().unwrap(), "oi");
}

#[test]
fn a_write_only_end_cannot_be_waited_for() {
    let _serial = serial();
    let (_read_end, write_end) = Pipe::with_duplex(false).unwrap();
    let error = wait([&write_end], Some(Duration::ZERO)).unwrap_err();
    assert_eq!(error.kind(), std::io::ErrorKind::InvalidInput);
    assert!(error.to_string().contains("write-only"), "{error}");
}

#[test]
fn a_process_that_has_not_started_has_no_sentinel() {
    let _serial = serial();
    let process = Process::new(|| (), ());
    let error = process.sentinel().unwrap_err();
    assert_eq!(error.to_string(), "can only wait for a started process");
}

/// Waits for one message on `go`, then returns.
fn wait_for_go(go: Connection) -> Result<(), shared::RecvError> {
    go.recv::<()>()
}

fn a_sentinel_is_ready_once_its_process_ends(method: StartMethod) {
    let _serial = serial();
    let (go, go_read_end) = Pipe::new().unwrap();
    let mut child = Child::start(method, wait_for_go, (go_read_end,));
    let sentinel = child.sentinel().unwrap();
    assert!(wait([&sentinel], Some(Duration::ZERO)).unwrap().is_empty());
    go.send(&()).unwrap();
    assert_eq!(wait([&sentinel], Some(LIMIT)).unwrap().len(), 1);
    // Ready means ended: the exit code is there without waiting.
    assert_eq!(child.exitcode(), Some(0));
    assert_eq!(child.exit_code_within(LIMIT), 0);
    // Still ready after the join: the process stays ended.
    assert_eq!(
        wait([&child.sentinel().unwrap()], Some(Duration::ZERO))
            .unwrap()
            .len(),
        1
    );
}

/// Sends its number on `report` once told to on `go`.
fn answer_when_told(
    number: u32,
    go: Connection,
    report: Connection,
) -> Result<(), Box<dyn std::error::Error>> {
    go.recv::<()>()?;
    report.send(&number)?;
    Ok(())
}

fn wait_returns_whichever_child_answered(method: StartMethod) {
    let _serial = serial();
    let mut children = Vec::new();
    let mut reports = Vec::new();
    let mut gos = Vec::new();
    for number in 0..3_u32 {
        let (go, go_child) = Pipe::new().unwrap();
        let (report, report_child) = Pipe::new().unwrap();
        children.push(Child::start(
            method,
            answer_when_told,
            (number, go_child, report_child),
        ));
        reports.push(report);
        gos.push(go);
    }
    gos[2].send(&()).unwrap();
    // A mix: the reports, and the sentinel of child 0, which has not ended.
    let sentinel = children[0].sentinel().unwrap();
    let mut objects: Vec<&dyn Waitable> = reports.iter().map(|r| r as &dyn Waitable).collect();
    objects.push(&sentinel);
    let ready = wait(objects.iter().copied(), Some(LIMIT)).unwrap();
    assert_eq!(positions(&objects, &ready), [2]);
    assert_eq!(reports[2].recv::<u32>().unwrap(), 2);
    for go in &gos[..2] {
        go.send(&()).unwrap();
    }
    for child in &mut children {
        assert_eq!(child.exit_code_within(LIMIT), 0);
    }
    for (number, report) in reports.iter().enumerate().take(2) {
        assert_eq!(report.recv::<u32>().unwrap(), number as u32);
    }
}
