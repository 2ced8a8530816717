//! Integration tests of [`shared::Pipe`] and [`shared::Connection`]: in one process, and across
//! processes under every start method.
//!
//! Every wait on a child is bounded: a child that hangs makes its test fail instead of hanging
//! the run, and a failing test kills the children it started.
//!
//! Tests run one at a time (see [`serial`]): a fork in one test copies every descriptor of the
//! test process into its child, including the pipe ends of tests running alongside, and a copy
//! held by someone else's child hides or delays the end of file those tests check for.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::collections::BTreeMap;
use std::ffi::c_void;
use std::fmt::Debug;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::num::NonZeroUsize;
use std::ptr::NonNull;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant};

use nix::sys::mman::{MapFlags, ProtFlags, mmap_anonymous, munmap};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use shared::{Connection, DEFAULT_MAX_MESSAGE_SIZE, Pipe, RecvError, SendError, StartMethod};

shared::enable_test_support!();

#[macro_use]
mod common;
use common::{Child, LIMIT};

/// A message far larger than any pipe or socket buffer: its sender blocks until it is read.
const HUGE: usize = 256 << 20;

under_every_start_method!(
    child_answers_requests_transformed,
    large_message_crosses_whole,
    child_that_exits_after_two_messages_gives_both_then_closed,
    killed_peer_counts_as_closed,
    peer_killed_mid_message_gives_truncated_then_unreadable,
    poll_without_timeout_wakes_when_a_child_sends,
    direction_and_message_limit_cross_to_the_child,
    messages_read_ahead_cross_with_the_end,
);

// ---------------------------------------------------------------------------------------------
// Values sent in the tests.

#[derive(Serialize, Deserialize, PartialEq, Debug, Clone)]
struct Point {
    x: i32,
    label: String,
    tags: Vec<u8>,
}

#[derive(Serialize, Deserialize, PartialEq, Debug, Clone)]
enum Shape {
    Dot,
    Circle(f64),
    Rect { width: u32, height: u32 },
    Path(Vec<Point>),
}

/// What the parent asks of [`serve_requests`].
#[derive(Serialize, Deserialize, Debug)]
enum Request {
    Upper(String),
    Sum(Vec<i64>),
    Mirror(Point),
    Stop,
}

/// What [`serve_requests`] answers.
#[derive(Serialize, Deserialize, PartialEq, Debug)]
enum Reply {
    Text(String),
    Number(i64),
    Point(Point),
}

fn sample_point() -> Point {
    Point {
        x: -7,
        label: "ponto ✓".to_owned(),
        tags: vec![0, 255, 3],
    }
}

fn sample_shapes() -> Vec<Shape> {
    vec![
        Shape::Dot,
        Shape::Circle(-1.5),
        Shape::Rect {
            width: 3,
            height: u32::MAX,
        },
        Shape::Path(vec![sample_point(), sample_point()]),
    ]
}

/// Bytes that differ from one position to the next, so a lost or repeated chunk shows.
fn patterned(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i % 251) as u8).collect()
}

// ---------------------------------------------------------------------------------------------
// Targets. Spawn recreates a target from its type, so all of them are plain functions.

type ChildResult = Result<(), Box<dyn std::error::Error>>;

/// Answers each request, transformed so the parent can tell the child did the work.
fn serve_requests(conn: Connection) -> ChildResult {
    loop {
        let reply = match conn.recv::<Request>()? {
            Request::Upper(text) => Reply::Text(text.to_uppercase()),
            Request::Sum(numbers) => Reply::Number(numbers.iter().sum()),
            Request::Mirror(point) => Reply::Point(Point {
                x: -point.x,
                ..point
            }),
            Request::Stop => return Ok(()),
        };
        conn.send(&reply)?;
    }
}

/// Receives one message's bytes and answers with their length and whether they are intact.
fn digest_bytes(conn: Connection) -> ChildResult {
    let bytes = conn.recv_bytes()?;
    conn.send(&(bytes.len(), bytes == patterned(bytes.len())))?;
    Ok(())
}

fn send_two_then_return(conn: Connection) -> ChildResult {
    conn.send("first")?;
    conn.send(&2_u32)?;
    Ok(())
}

/// Sends two messages on `conn`, says so on `sent`, and never ends on its own.
fn send_two_then_block(conn: Connection, sent: Connection) -> ChildResult {
    conn.send("first")?;
    conn.send(&2_u32)?;
    sent.send(&())?;
    loop {
        thread::park();
    }
}

/// Blocks inside `send_bytes`: nobody reads, and the message is larger than any buffer.
fn send_huge(conn: Connection) -> ChildResult {
    conn.send_bytes(&vec![0; HUGE])?;
    Ok(())
}

/// Reports on `report` what the inherited one-way ends say and refuse.
fn report_on_one_way_ends(read_end: Connection, report: Connection) -> ChildResult {
    let observed = vec![
        format!("{} {}", read_end.readable(), read_end.writable()),
        format!("{} {}", report.readable(), report.writable()),
        read_end.send(&0).unwrap_err().to_string(),
        report.recv_bytes().unwrap_err().to_string(),
        read_end.recv_bytes().unwrap_err().to_string(),
    ];
    report.send(&observed)?;
    Ok(())
}

/// Receives three numbers and sends them back together.
fn gather_three(conn: Connection) -> ChildResult {
    let three: [u32; 3] = [conn.recv()?, conn.recv()?, conn.recv()?];
    conn.send(&three)?;
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Helpers of the test process.

/// Makes the tests of this file run one at a time; see the module documentation.
fn serial() -> MutexGuard<'static, ()> {
    static SERIAL: Mutex<()> = Mutex::new(());
    // A test that failed while holding the lock leaves nothing half-done behind it.
    SERIAL
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// `recv`, failing the test instead of waiting forever when nothing (not even end of file)
/// arrives in time.
fn recv_within<T: DeserializeOwned>(conn: &Connection) -> Result<T, RecvError> {
    assert!(
        conn.poll(Some(LIMIT)).expect("poll"),
        "nothing arrived within {LIMIT:?}"
    );
    conn.recv()
}

fn assert_nothing_to_read(conn: &Connection) {
    assert!(!conn.poll(Some(Duration::ZERO)).expect("poll"));
}

fn assert_closed<T: Debug>(result: Result<T, RecvError>) {
    match result {
        Err(error @ RecvError::Closed) => {
            assert!(error.is_closed());
            assert_eq!(
                error.to_string(),
                "the other end of the pipe is closed (EOF)"
            );
        }
        other => panic!("expected RecvError::Closed, got {other:?}"),
    }
}

fn assert_unreadable<T: Debug>(result: Result<T, RecvError>) {
    match result {
        Err(error @ RecvError::Unreadable) => {
            let message = error.to_string();
            assert!(message.contains("no longer readable"), "{message}");
        }
        other => panic!("expected RecvError::Unreadable, got {other:?}"),
    }
}

/// Every later use of an end that lost its framing is refused, not misread.
fn assert_stays_unreadable(conn: &Connection) {
    assert_unreadable(conn.recv_bytes());
    assert_unreadable(conn.recv::<u32>());
    assert_unreadable(conn.poll(Some(Duration::ZERO)));
}

/// A call running on its own thread, whose result is awaited at most [`LIMIT`]: for a read
/// that no `poll` can bound (the rest of a message that has begun), and for receiving while
/// this thread sends more than a pipe buffer holds.
struct Background<R>(mpsc::Receiver<R>);

impl<R: Send + 'static> Background<R> {
    fn run(call: impl FnOnce() -> R + Send + 'static) -> Background<R> {
        let (result_sender, result) = mpsc::channel();
        thread::spawn(move || {
            let _ = result_sender.send(call());
        });
        Background(result)
    }

    fn result(self) -> R {
        match self.0.recv_timeout(LIMIT) {
            Ok(result) => result,
            Err(RecvTimeoutError::Timeout) => panic!("the call did not return within {LIMIT:?}"),
            Err(RecvTimeoutError::Disconnected) => panic!("the call panicked"),
        }
    }
}

/// Runs `receive` on its own thread while `send` sends, so nothing has to fit in the pipe's
/// buffer. The sender is closed before waiting, so a receiver that expects more than was sent
/// fails instead of waiting.
fn send_while_a_thread_receives<R: Send + 'static>(
    (sender, receiver): (Connection, Connection),
    send: impl FnOnce(&Connection),
    receive: impl FnOnce(&Connection) -> R + Send + 'static,
) -> R {
    let received = Background::run(move || receive(&receiver));
    send(&sender);
    sender.close();
    received.result()
}

/// `(sender, receiver)` pairs covering both directions of a duplex pipe and a one-way pipe.
fn senders_and_receivers() -> Vec<(Connection, Connection)> {
    let (a, b) = Pipe::new().expect("Pipe::new");
    let (c, d) = Pipe::new().expect("Pipe::new");
    let (read_end, write_end) = Pipe::with_duplex(false).expect("Pipe::with_duplex");
    vec![(a, b), (d, c), (write_end, read_end)]
}

fn assert_round_trips<T>(value: T)
where
    T: Serialize + DeserializeOwned + PartialEq + Debug,
{
    for (sender, receiver) in senders_and_receivers() {
        sender.send(&value).expect("send");
        assert_eq!(receiver.recv::<T>().expect("recv"), value);
        assert_nothing_to_read(&receiver);
    }
}

/// A second handle on the write end of a one-way pipe, to write what no `Connection` would
/// (a crafted length header). `Debug` is the only public way to learn the descriptor number;
/// reopening through /proc gives a new handle on the same pipe without unsafe code.
fn raw_writer(write_end: &Connection) -> File {
    let debug = format!("{write_end:?}");
    let fd: u32 = debug
        .split("fd: ")
        .nth(1)
        .and_then(|rest| rest.split(',').next())
        .and_then(|number| number.parse().ok())
        .unwrap_or_else(|| panic!("no descriptor number in {debug}"));
    OpenOptions::new()
        .write(true)
        .open(format!("/proc/self/fd/{fd}"))
        .expect("reopen the write end of the pipe")
}

/// A one-way pipe whose read end has received exactly `bytes` and then end of file, so that an
/// implementation that reads further fails instead of hanging.
fn read_end_holding(bytes: &[u8]) -> Connection {
    let (read_end, write_end) = Pipe::with_duplex(false).expect("Pipe::with_duplex");
    raw_writer(&write_end).write_all(bytes).expect("write");
    read_end
}

// ---------------------------------------------------------------------------------------------
// Allocation probe: lets a test check that a refused length header allocated nothing.

/// Records, per thread, the largest block asked of the allocator.
struct LargestAllocation;

thread_local! {
    static LARGEST: Cell<usize> = const { Cell::new(0) };
}

fn note_allocation(size: usize) {
    // `try_with`: the allocator may be called while this thread's locals are torn down.
    let _ = LARGEST.try_with(|largest| largest.set(largest.get().max(size)));
}

// SAFETY: every call is forwarded unchanged to the system allocator; only sizes are noted.
unsafe impl GlobalAlloc for LargestAllocation {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note_allocation(layout.size());
        // SAFETY: the caller's guarantees for `alloc` are passed on as they are.
        unsafe { System.alloc(layout) }
    }

    // Forwarded rather than left to the default (alloc, then write zeros) so that a large
    // zeroed buffer (`vec![0; HUGE]`) stays lazily mapped instead of being touched.
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note_allocation(layout.size());
        // SAFETY: the caller's guarantees for `alloc_zeroed` are passed on as they are.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: the caller's guarantees for `dealloc` are passed on as they are.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note_allocation(new_size);
        // SAFETY: the caller's guarantees for `realloc` are passed on as they are.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: LargestAllocation = LargestAllocation;

/// Runs `f`; returns its result and the largest allocation it made on this thread.
fn largest_allocation_in<R>(f: impl FnOnce() -> R) -> (R, usize) {
    LARGEST.with(|largest| largest.set(0));
    let result = f();
    (result, LARGEST.with(Cell::get))
}

/// `len` bytes of address space that read as zeros and use no memory unless touched
/// (`MAP_NORESERVE`): a slice longer than a frame can say, without 4 GiB of RAM.
struct ZeroMapping {
    start: NonNull<c_void>,
    len: NonZeroUsize,
}

impl ZeroMapping {
    fn new(len: usize) -> ZeroMapping {
        let len = NonZeroUsize::new(len).expect("a non-empty mapping");
        let flags = MapFlags::MAP_PRIVATE | MapFlags::MAP_NORESERVE;
        // SAFETY: a new anonymous mapping at an address the kernel picks aliases nothing.
        let start = unsafe { mmap_anonymous(None, len, ProtFlags::PROT_READ, flags) }
            .expect("mmap of address space");
        ZeroMapping { start, len }
    }

    fn as_slice(&self) -> &[u8] {
        // SAFETY: the mapping is readable, `len` bytes long, zero-filled, and lives as long as
        // `self`, which the returned slice borrows.
        unsafe { std::slice::from_raw_parts(self.start.as_ptr().cast(), self.len.get()) }
    }
}

impl Drop for ZeroMapping {
    fn drop(&mut self) {
        // SAFETY: mapped by `new` with this length; no slice of it outlives `self`.
        let _ = unsafe { munmap(self.start, self.len.get()) };
    }
}

// ---------------------------------------------------------------------------------------------
// In one process: values, bytes, order.

#[test]
fn values_of_several_types_round_trip() {
    let _serial = serial();
    assert_round_trips("olá, mundo ✓".to_owned());
    assert_round_trips(String::new());
    assert_round_trips(i8::MIN);
    assert_round_trips(u64::MAX);
    assert_round_trips(-1.5_f64);
    assert_round_trips(('ç', true, ()));
    assert_round_trips(None::<u8>);
    assert_round_trips(sample_point());
    assert_round_trips(sample_shapes());
    assert_round_trips(serde_bytes::ByteBuf::from(patterned(300)));
    let nested: BTreeMap<String, Vec<Option<Shape>>> = BTreeMap::from([
        ("vazio".to_owned(), vec![]),
        (
            "formas".to_owned(),
            sample_shapes().into_iter().map(Some).collect(),
        ),
        ("nada".to_owned(), vec![None]),
    ]);
    assert_round_trips(nested);
}

#[test]
fn bytes_round_trip_including_empty() {
    let _serial = serial();
    for (sender, receiver) in senders_and_receivers() {
        for len in [0, 1, 1000] {
            sender.send_bytes(&patterned(len)).expect("send_bytes");
            assert_eq!(receiver.recv_bytes().expect("recv_bytes"), patterned(len));
        }
        assert_nothing_to_read(&receiver);
    }
}

#[test]
fn send_and_send_bytes_share_one_framing() {
    let _serial = serial();
    let (a, b) = Pipe::new().expect("Pipe::new");
    let encoded = rmp_serde::to_vec(&sample_point()).expect("encode");
    a.send(&sample_point()).expect("send");
    assert_eq!(b.recv_bytes().expect("recv_bytes"), encoded);
    a.send_bytes(&encoded).expect("send_bytes");
    assert_eq!(b.recv::<Point>().expect("recv"), sample_point());
}

/// The `i`th message of [`messages_arrive_in_the_order_sent`]: `send` and `send_bytes` alternate.
fn nth_message(i: u32) -> Vec<u8> {
    if i % 2 == 0 {
        rmp_serde::to_vec(&(i, "x".repeat(i as usize % 17))).expect("encode")
    } else {
        i.to_le_bytes().to_vec()
    }
}

#[test]
fn messages_arrive_in_the_order_sent() {
    let _serial = serial();
    for pair in senders_and_receivers() {
        let send_all = |sender: &Connection| {
            for i in 0..1000_u32 {
                if i % 2 == 0 {
                    sender
                        .send(&(i, "x".repeat(i as usize % 17)))
                        .expect("send");
                } else {
                    sender.send_bytes(&i.to_le_bytes()).expect("send_bytes");
                }
            }
        };
        let receive_all = |receiver: &Connection| {
            (0..1000).find(|&i| receiver.recv_bytes().ok() != Some(nth_message(i)))
        };
        let first_wrong = send_while_a_thread_receives(pair, send_all, receive_all);
        assert_eq!(
            first_wrong, None,
            "message {first_wrong:?} is not the one sent"
        );
    }
}

#[test]
fn large_messages_round_trip_while_a_thread_reads() {
    let _serial = serial();
    // Around the 64 KiB switch from one write to two, and beyond any pipe buffer.
    let sizes = [64 * 1024 - 1, 64 * 1024, 64 * 1024 + 1, 4 << 20];
    for pair in senders_and_receivers() {
        let send_all = |sender: &Connection| {
            for len in sizes {
                sender.send_bytes(&patterned(len)).expect("send_bytes");
            }
        };
        let receive_all = move |receiver: &Connection| {
            sizes.map(|len| receiver.recv_bytes().map(|bytes| bytes == patterned(len)))
        };
        let intact = send_while_a_thread_receives(pair, send_all, receive_all);
        assert!(intact.iter().all(|r| matches!(r, Ok(true))), "{intact:?}");
    }
}

// ---------------------------------------------------------------------------------------------
// In one process: direction, end of file, errors.

#[test]
fn one_way_ends_refuse_the_other_direction() {
    let _serial = serial();
    let (read_end, write_end) = Pipe::with_duplex(false).expect("Pipe::with_duplex");
    assert!(read_end.readable() && !read_end.writable());
    assert!(!write_end.readable() && write_end.writable());

    let refused = read_end.send(&1).unwrap_err();
    assert!(matches!(refused, SendError::WrongDirection), "{refused:?}");
    assert_eq!(refused.to_string(), "connection is read-only");
    let refused = read_end.send_bytes(b"x").unwrap_err();
    assert!(matches!(refused, SendError::WrongDirection), "{refused:?}");

    let refused = write_end.recv::<i32>().unwrap_err();
    assert!(matches!(refused, RecvError::WrongDirection), "{refused:?}");
    assert_eq!(refused.to_string(), "connection is write-only");
    let refused = write_end.recv_bytes().unwrap_err();
    assert!(matches!(refused, RecvError::WrongDirection), "{refused:?}");
    let refused = write_end.poll(Some(Duration::ZERO)).unwrap_err();
    assert!(matches!(refused, RecvError::WrongDirection), "{refused:?}");

    // The refusals changed nothing: the pipe still works in its own direction.
    write_end.send(&7_u8).expect("send");
    assert_eq!(read_end.recv::<u8>().expect("recv"), 7);
}

#[test]
fn duplex_ends_are_readable_and_writable() {
    let _serial = serial();
    let (a, b) = Pipe::new().expect("Pipe::new");
    assert!(a.readable() && a.writable() && b.readable() && b.writable());
}

#[test]
fn queued_messages_come_before_closed_whether_closed_or_dropped() {
    let _serial = serial();
    for close_explicitly in [true, false] {
        for (sender, receiver) in senders_and_receivers() {
            sender.send("first").expect("send");
            sender.send_bytes(b"second").expect("send_bytes");
            if close_explicitly {
                sender.close();
            } else {
                drop(sender);
            }
            assert_eq!(receiver.recv::<String>().expect("recv"), "first");
            assert_eq!(receiver.recv_bytes().expect("recv_bytes"), b"second");
            // End of file counts as readable, so a poller wakes up to see it.
            assert!(receiver.poll(Some(Duration::ZERO)).expect("poll"));
            assert_closed(receiver.recv::<String>());
            // Still closed, not unreadable: end of file between messages loses no framing.
            assert_closed(receiver.recv_bytes());
        }
    }
}

#[test]
fn send_to_a_closed_end_is_closed() {
    let _serial = serial();
    for (sender, receiver) in senders_and_receivers() {
        receiver.close();
        let refused = sender.send(&1).unwrap_err();
        assert!(matches!(refused, SendError::Closed), "{refused:?}");
        assert_eq!(refused.to_string(), "the other end of the pipe is closed");
        let refused = sender.send_bytes(&patterned(100_000)).unwrap_err();
        assert!(matches!(refused, SendError::Closed), "{refused:?}");
    }
}

#[test]
fn message_of_the_wrong_type_is_a_decode_error_and_is_consumed() {
    let _serial = serial();
    let (a, b) = Pipe::new().expect("Pipe::new");
    a.send("not a number").expect("send");
    a.send(&7_u32).expect("send");
    match b.recv::<u32>() {
        Err(error @ RecvError::Decode { expected, .. }) => {
            assert_eq!(expected, "u32");
            let message = error.to_string();
            assert!(
                message.starts_with("cannot decode the message as `u32`: "),
                "{message}"
            );
        }
        other => panic!("expected RecvError::Decode, got {other:?}"),
    }
    // The bad message was consumed whole: the next one decodes, the connection stays usable.
    assert_eq!(b.recv::<u32>().expect("recv"), 7);
    a.send(&sample_point()).expect("send");
    assert_eq!(b.recv::<Point>().expect("recv"), sample_point());
}

#[test]
fn message_over_the_limit_is_refused_without_allocating_it() {
    let _serial = serial();
    let (mut receiver, sender) = Pipe::new().expect("Pipe::new");
    receiver.set_max_message_size(1024);
    sender.send_bytes(&[1; 1024]).expect("send_bytes");
    assert_eq!(
        receiver.recv_bytes().expect("a message at the limit").len(),
        1024
    );

    sender.send_bytes(&[2; 4096]).expect("send_bytes");
    let (result, largest) = largest_allocation_in(|| receiver.recv_bytes());
    match result {
        Err(
            error @ RecvError::TooLarge {
                len: 4096,
                max: 1024,
            },
        ) => {
            let message = error.to_string();
            assert!(
                message.contains("4096") && message.contains("1024"),
                "{message}"
            );
            assert!(message.contains("exceeds the limit"), "{message}");
        }
        other => panic!("expected RecvError::TooLarge {{ 4096, 1024 }}, got {other:?}"),
    }
    assert!(largest < 4096, "recv_bytes allocated {largest} bytes");
    // The refused body is still in the stream, so nothing after it can be framed.
    sender.send(&1).expect("send");
    assert_stays_unreadable(&receiver);
}

#[test]
fn crafted_header_near_4_gib_is_refused_by_the_default_limit() {
    let _serial = serial();
    let receiver = read_end_holding(&0xFFFF_FFF0_u32.to_le_bytes());
    let (result, largest) = largest_allocation_in(|| receiver.recv_bytes());
    match result {
        Err(RecvError::TooLarge { len, max }) => {
            assert_eq!((len, max), (0xFFFF_FFF0, DEFAULT_MAX_MESSAGE_SIZE));
        }
        other => panic!("expected RecvError::TooLarge, got {other:?}"),
    }
    assert!(largest < 1 << 20, "recv_bytes allocated {largest} bytes");
    assert_stays_unreadable(&receiver);
    // Just above the default limit is refused too.
    let header = (DEFAULT_MAX_MESSAGE_SIZE as u32 + 1).to_le_bytes();
    let refused = read_end_holding(&header).recv_bytes().unwrap_err();
    assert!(matches!(refused, RecvError::TooLarge { .. }), "{refused:?}");
}

#[test]
fn end_of_file_inside_a_frame_is_truncated_then_unreadable() {
    let _serial = serial();
    let receiver = read_end_holding(&[10, 0]);
    match receiver.recv_bytes() {
        Err(RecvError::Truncated { expected, got }) => assert_eq!((expected, got), (4, 2)),
        other => panic!("expected a truncated header, got {other:?}"),
    }
    assert_stays_unreadable(&receiver);

    let receiver = read_end_holding(&[10, 0, 0, 0, b'a', b'b', b'c']);
    match receiver.recv_bytes() {
        Err(error @ RecvError::Truncated { .. }) => assert_eq!(
            error.to_string(),
            "the other end closed in the middle of a message: got 3 of 10 bytes"
        ),
        other => panic!("expected a truncated body, got {other:?}"),
    }
    assert_stays_unreadable(&receiver);
}

#[test]
fn message_longer_than_a_frame_can_say_is_refused_before_writing() {
    let _serial = serial();
    let too_long = ZeroMapping::new(u32::MAX as usize + 1);
    let (read_end, write_end) = Pipe::with_duplex(false).expect("Pipe::with_duplex");
    // Without a reader, writing anything fails with Closed instead of blocking: a send that
    // started writing before checking the length shows up as the wrong error, not a hang.
    read_end.close();
    match write_end.send_bytes(too_long.as_slice()) {
        Err(error @ SendError::TooLarge { len }) => {
            assert_eq!(len, u32::MAX as usize + 1);
            let message = error.to_string();
            assert!(
                message.contains("too large") && message.contains("4 GiB"),
                "{message}"
            );
        }
        other => panic!("expected SendError::TooLarge, got {other:?}"),
    }
}

#[test]
fn connection_cannot_be_serialized_outside_process_arguments() {
    let _serial = serial();
    let (a, b) = Pipe::new().expect("Pipe::new");
    let message = rmp_serde::to_vec(&a).unwrap_err().to_string();
    assert!(
        message.contains(
            "a Connection can cross to another process only as an argument of Process::new"
        ),
        "{message}"
    );

    // Nor sent through another connection; and the failed send writes nothing.
    let (c, _d) = Pipe::new().expect("Pipe::new");
    match a.send(&c) {
        Err(error @ SendError::Encode { .. }) => {
            let message = error.to_string();
            assert!(
                message.starts_with("cannot encode the item of type `"),
                "{message}"
            );
            assert!(
                message.contains("only as an argument of Process::new"),
                "{message}"
            );
        }
        other => panic!("expected SendError::Encode, got {other:?}"),
    }
    assert_nothing_to_read(&b);
}

#[test]
fn connection_is_not_made_from_a_descriptor_number_outside_a_spawned_child() {
    let _serial = serial();
    // What a Connection looks like on the wire: its descriptors (here a socket at descriptor
    // index 0), its limit, whether it is unreadable, the bytes it read ahead. Decoding it
    // anywhere but in a spawned child must not take ownership of descriptor 0.
    #[derive(Serialize)]
    enum WireChannel {
        Socket(u32),
    }
    let wire = (
        WireChannel::Socket(0),
        1024_u64,
        false,
        serde_bytes::ByteBuf::new(),
    );
    let forged = rmp_serde::to_vec(&wire).expect("encode");
    let message = rmp_serde::from_slice::<Connection>(&forged)
        .unwrap_err()
        .to_string();
    assert!(
        message.contains("only as an argument of a spawned process"),
        "{message}"
    );

    let (a, b) = Pipe::new().expect("Pipe::new");
    a.send_bytes(&forged).expect("send_bytes");
    let refused = b.recv::<Connection>().unwrap_err();
    assert!(matches!(refused, RecvError::Decode { .. }), "{refused:?}");
}

#[test]
fn poll_reports_whether_a_message_is_waiting() {
    let _serial = serial();
    for (sender, receiver) in senders_and_receivers() {
        assert!(!receiver.poll(Some(Duration::ZERO)).expect("poll"));
        let wait = Duration::from_millis(30);
        let began = Instant::now();
        assert!(!receiver.poll(Some(wait)).expect("poll"));
        assert!(
            began.elapsed() >= wait,
            "poll gave up after {:?}",
            began.elapsed()
        );

        sender.send(&1).expect("send");
        assert!(receiver.poll(Some(Duration::ZERO)).expect("poll"));
        // Polling consumes nothing.
        assert!(receiver.poll(None).expect("poll"));
        assert_eq!(receiver.recv::<i32>().expect("recv"), 1);
        assert!(!receiver.poll(Some(Duration::ZERO)).expect("poll"));
    }
}

// ---------------------------------------------------------------------------------------------
// Across processes, under each start method.

fn child_answers_requests_transformed(method: StartMethod) {
    let _serial = serial();
    let (parent_end, child_end) = Pipe::new().expect("Pipe::new");
    let mut child = Child::start(method, serve_requests, (child_end,));
    let exchanges = [
        (
            Request::Upper("olá".to_owned()),
            Reply::Text("OLÁ".to_owned()),
        ),
        (Request::Sum(vec![1, -2, 40]), Reply::Number(39)),
        (
            Request::Mirror(sample_point()),
            Reply::Point(Point {
                x: 7,
                ..sample_point()
            }),
        ),
    ];
    for (request, expected) in exchanges {
        parent_end.send(&request).expect("send");
        assert_eq!(recv_within::<Reply>(&parent_end).expect("recv"), expected);
    }
    parent_end.send(&Request::Stop).expect("send");
    assert_eq!(child.exit_code_within(LIMIT), 0);
}

fn large_message_crosses_whole(method: StartMethod) {
    let _serial = serial();
    let (parent_end, child_end) = Pipe::new().expect("Pipe::new");
    let mut child = Child::start(method, digest_bytes, (child_end,));
    let len = 8 << 20;
    parent_end.send_bytes(&patterned(len)).expect("send_bytes");
    assert_eq!(
        recv_within::<(usize, bool)>(&parent_end).expect("recv"),
        (len, true)
    );
    assert_eq!(child.exit_code_within(LIMIT), 0);
}

fn child_that_exits_after_two_messages_gives_both_then_closed(method: StartMethod) {
    let _serial = serial();
    for duplex in [true, false] {
        // The child's end is moved into the Process arguments, so `start` closes the parent's
        // copy: once the child exits, no process holds it and the parent sees end of file.
        let (parent_end, child_end) = Pipe::with_duplex(duplex).expect("Pipe::with_duplex");
        let mut child = Child::start(method, send_two_then_return, (child_end,));
        assert_eq!(recv_within::<String>(&parent_end).expect("recv"), "first");
        assert_eq!(recv_within::<u32>(&parent_end).expect("recv"), 2);
        assert_closed(recv_within::<u32>(&parent_end));
        assert_eq!(child.exit_code_within(LIMIT), 0);
    }
}

fn killed_peer_counts_as_closed(method: StartMethod) {
    let _serial = serial();
    for duplex in [true, false] {
        let (parent_end, child_end) = Pipe::with_duplex(duplex).expect("Pipe::with_duplex");
        let (sent, sent_write_end) = Pipe::with_duplex(false).expect("Pipe::with_duplex");
        if duplex {
            // Left unread by the child: a socket closed with unread data makes its peer's next
            // read fail with ECONNRESET, which must still read as end of file.
            parent_end.send("never read").expect("send");
        }
        let mut child = Child::start(method, send_two_then_block, (child_end, sent_write_end));
        assert_eq!(
            recv_within::<()>(&sent).ok(),
            Some(()),
            "the child did not send"
        );
        assert_eq!(
            child.kill_and_reap(),
            -9,
            "the child should have died of SIGKILL"
        );
        // What the child sent before it died is still delivered, then end of file.
        assert_eq!(recv_within::<String>(&parent_end).expect("recv"), "first");
        assert_eq!(recv_within::<u32>(&parent_end).expect("recv"), 2);
        assert_closed(recv_within::<u32>(&parent_end));
        assert_closed(recv_within::<u32>(&parent_end));
        if duplex {
            let refused = parent_end.send(&1).unwrap_err();
            assert!(matches!(refused, SendError::Closed), "{refused:?}");
        }
    }
}

fn peer_killed_mid_message_gives_truncated_then_unreadable(method: StartMethod) {
    let _serial = serial();
    for duplex in [true, false] {
        let (parent_end, child_end) = Pipe::with_duplex(duplex).expect("Pipe::with_duplex");
        let mut child = Child::start(method, send_huge, (child_end,));
        // Readable means the header is here: the child is inside its send, which cannot finish
        // while nobody reads, so the kill lands in the middle of the message.
        assert!(
            parent_end.poll(Some(LIMIT)).expect("poll"),
            "nothing arrived"
        );
        assert_eq!(
            child.kill_and_reap(),
            -9,
            "the child should have died of SIGKILL"
        );
        let (parent_end, received) = Background::run(move || {
            let received = parent_end.recv_bytes();
            (parent_end, received)
        })
        .result();
        match received {
            Err(
                error @ RecvError::Truncated {
                    expected: HUGE,
                    got,
                },
            ) => {
                assert!(got < HUGE);
                let message = error.to_string();
                assert!(message.contains("in the middle of a message"), "{message}");
                assert!(
                    message.contains(&format!("got {got} of {HUGE} bytes")),
                    "{message}"
                );
            }
            other => panic!("expected RecvError::Truncated of {HUGE} bytes, got {other:?}"),
        }
        assert_stays_unreadable(&parent_end);
    }
}

fn poll_without_timeout_wakes_when_a_child_sends(method: StartMethod) {
    let _serial = serial();
    let (parent_end, child_end) = Pipe::new().expect("Pipe::new");
    let mut child = Child::start(method, send_two_then_return, (child_end,));
    assert!(parent_end.poll(None).expect("poll"));
    assert_eq!(parent_end.recv::<String>().expect("recv"), "first");
    assert_eq!(child.exit_code_within(LIMIT), 0);
}

fn direction_and_message_limit_cross_to_the_child(method: StartMethod) {
    let _serial = serial();
    let (mut read_end, write_end) = Pipe::with_duplex(false).expect("Pipe::with_duplex");
    read_end.set_max_message_size(1024);
    write_end.send_bytes(&[0; 4096]).expect("send_bytes");
    let (report, report_write_end) = Pipe::with_duplex(false).expect("Pipe::with_duplex");
    let mut child = Child::start(method, report_on_one_way_ends, (read_end, report_write_end));
    let observed: Vec<String> = recv_within(&report).expect("recv");
    assert_eq!(child.exit_code_within(LIMIT), 0);
    assert_eq!(
        observed,
        [
            "true false",
            "false true",
            "connection is read-only",
            "connection is write-only",
            "message of 4096 bytes exceeds the limit of 1024 bytes; \
             the connection is no longer readable",
        ]
    );
}

fn messages_read_ahead_cross_with_the_end(method: StartMethod) {
    let _serial = serial();
    let (parent_end, child_end) = Pipe::new().expect("Pipe::new");
    for n in 1..=3_u32 {
        parent_end.send(&n).expect("send");
    }
    // One read takes everything the pipe holds: 2 and 3 now wait in the end's own buffer,
    // where neither the pipe nor `poll` of the descriptor would show them.
    assert_eq!(child_end.recv::<u32>().expect("recv"), 1);
    assert!(child_end.poll(Some(Duration::ZERO)).expect("poll"));
    let mut child = Child::start(method, gather_three, (child_end,));
    parent_end.send(&4_u32).expect("send");
    assert_eq!(
        recv_within::<[u32; 3]>(&parent_end).expect("recv"),
        [2, 3, 4]
    );
    assert_eq!(child.exit_code_within(LIMIT), 0);
}
