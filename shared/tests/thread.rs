//! What `shared::Thread` and `shared::ThreadQueue` guarantee, after CPython's documented
//! behaviour of `threading.Thread` and `queue.Queue`: a thread shares its process's memory and
//! PID and has its own native id; misuse is an error, never a panic or a hang; at the end of a
//! process the non-daemonic threads are joined and the daemonic ones left.
//!
//! Blocking calls run under [`within`], and every child process is bounded by [`LIMIT`]: a hang
//! fails the test instead of stalling it.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::sleep;
use std::time::Duration;

use shared::{Queue, StartMethod, Thread, ThreadError, ThreadQueue};

shared::enable_test_support!();

#[macro_use]
mod common;
use common::{Child, LIMIT, within};

under_every_start_method!(
    a_child_joins_its_non_daemonic_threads_when_its_target_returns,
    exit_joins_non_daemonic_threads,
    a_child_leaves_its_daemonic_threads,
    a_thread_that_exits_does_not_wait_for_itself,
);

/// Long enough for a thread to be really waiting, short enough to keep the suite fast.
const SHORT: Duration = Duration::from_millis(200);

#[test]
fn smoke_a_thread_runs_its_target_in_this_process() {
    static SEEN: AtomicUsize = AtomicUsize::new(0);
    let ids = ThreadQueue::new();
    let sender = ids.clone();
    let target = move |n: usize| -> Result<(), Box<dyn std::error::Error>> {
        SEEN.fetch_add(n, Ordering::Relaxed);
        sender.put((std::process::id(), shared::get_native_id()))?;
        Ok(())
    };
    let mut thread = Thread::new(target, (3,));
    assert_eq!((thread.native_id(), thread.is_alive()), (None, false));
    thread.start().unwrap();
    let native_id = thread.native_id().expect("known once started");
    within(LIMIT, move || thread.join()).unwrap();
    // The same memory, the same process, another kernel thread.
    assert_eq!(SEEN.load(Ordering::Relaxed), 3);
    let (pid, tid) = ids.get_nowait().unwrap();
    assert_eq!(pid, std::process::id());
    assert_eq!(tid, native_id);
    assert_ne!(tid, shared::get_native_id());
}

#[test]
fn names_count_up_and_become_the_rust_thread_name() {
    let names = ThreadQueue::new();
    let sender = names.clone();
    let mut thread = Thread::new(
        move || sender.put(std::thread::current().name().map(str::to_owned)),
        (),
    );
    let name = thread.name().to_owned();
    let number: u32 = name.strip_prefix("Thread-").unwrap().parse().unwrap();
    let other = Thread::new(|| (), ());
    let next: u32 = other
        .name()
        .strip_prefix("Thread-")
        .unwrap()
        .parse()
        .unwrap();
    assert!(next > number, "{name} then {}", other.name());
    thread.start().unwrap();
    within(LIMIT, move || thread.join()).unwrap();
    assert_eq!(names.get_nowait().unwrap(), Some(name));
}

#[test]
fn misuse_is_an_error_with_cpythons_message() {
    let mut thread = Thread::new(|| (), ());
    let error = thread.join().unwrap_err();
    assert!(matches!(error, ThreadError::NotStarted));
    assert_eq!(error.to_string(), "cannot join thread before it is started");
    assert!(thread.join_timeout(SHORT).is_err());
    thread.start().unwrap();
    let error = thread.start().unwrap_err();
    assert_eq!(error.to_string(), "threads can only be started once");
    assert!(matches!(
        thread.set_daemon(true),
        Err(ThreadError::AlreadyStarted)
    ));
    let mut thread = within(LIMIT, move || thread.join().map(|()| thread)).unwrap();
    thread.join().unwrap(); // joining twice returns at once
    assert!(!thread.is_alive());
}

#[test]
fn a_thread_cannot_join_itself() {
    let own: Arc<Mutex<Option<Thread>>> = Arc::default();
    let go = ThreadQueue::new();
    let answers = ThreadQueue::new();
    let (inside, go_inside, answers_inside) = (Arc::clone(&own), go.clone(), answers.clone());
    let mut thread = Thread::new(
        move || -> Result<(), Box<dyn std::error::Error>> {
            go_inside.get()?;
            let mut me = inside.lock().unwrap().take().expect("handed over");
            let error = me.join().unwrap_err();
            answers_inside.put((matches!(error, ThreadError::JoinCurrent), error.to_string()))?;
            Ok(())
        },
        (),
    );
    thread.start().unwrap();
    let native_id = thread.native_id();
    *own.lock().unwrap() = Some(thread);
    go.put(()).unwrap();
    let answer = within(LIMIT, move || answers.get()).unwrap();
    assert_eq!(answer, (true, "cannot join current thread".to_owned()));
    assert!(native_id.is_some());
}

#[test]
fn join_timeout_returns_while_the_thread_runs() {
    let go = ThreadQueue::<()>::new();
    let waiting = go.clone();
    let mut thread = Thread::new(move || waiting.get().map(drop), ());
    thread.start().unwrap();
    thread.join_timeout(SHORT).unwrap();
    assert!(thread.is_alive());
    go.put(()).unwrap();
    let thread = within(LIMIT, move || thread.join().map(|()| thread)).unwrap();
    assert!(!thread.is_alive());
}

fn panics() {
    panic!("de propósito");
}

#[test]
fn an_err_or_a_panic_ends_only_the_thread() {
    // Both print to stderr (the Err as `Error: ...`, the panic through the panic hook), as an
    // uncaught exception in a Python thread prints its traceback.
    let mut failing = Thread::new(|| Err::<(), _>("falhou"), ());
    let mut panicking = Thread::new(panics, ());
    failing.start().unwrap();
    panicking.start().unwrap();
    let (failing, panicking) = within(LIMIT, move || {
        failing.join().unwrap();
        panicking.join().unwrap();
        (failing, panicking)
    });
    assert!(!failing.is_alive() && !panicking.is_alive());
}

#[test]
fn in_a_forked_child_a_thread_of_the_parent_is_not_alive_and_join_returns() {
    let blocked = ThreadQueue::<()>::new();
    let waiting = blocked.clone();
    let mut thread = Thread::new(move || waiting.get().map(drop), ()).daemon(true);
    thread.start().unwrap();
    let shared_handle = Arc::new(Mutex::new(thread));
    let in_child = Arc::clone(&shared_handle);
    let mut child = Child::start(
        StartMethod::Fork,
        move || {
            let mut thread = in_child.lock().unwrap();
            assert!(!thread.is_alive());
            thread.join().unwrap();
        },
        (),
    );
    child.expect_success();
    assert!(
        shared_handle.lock().unwrap().is_alive(),
        "alive in the parent"
    );
    blocked.put(()).unwrap();
}

/// Starts a non-daemonic thread that puts `"feito"` on `results` after a while, and returns:
/// the child must wait for the thread before it exits.
fn start_slow_thread_and_return(results: Queue<String>) {
    let mut thread = Thread::new(
        move || {
            sleep(SHORT);
            results.put("feito".to_owned())
        },
        (),
    );
    thread.start().unwrap();
}

fn a_child_joins_its_non_daemonic_threads_when_its_target_returns(method: StartMethod) {
    let results = Queue::new().unwrap();
    let mut child = Child::start(method, start_slow_thread_and_return, (results.clone(),));
    child.expect_success();
    // The child exited only after its thread had put.
    assert_eq!(results.get_nowait().unwrap(), "feito");
}

/// As [`start_slow_thread_and_return`], then `std::process::exit`: the exit hook joins.
fn start_slow_thread_and_exit(results: Queue<String>) {
    start_slow_thread_and_return(results);
    std::process::exit(0);
}

fn exit_joins_non_daemonic_threads(method: StartMethod) {
    let results = Queue::new().unwrap();
    let mut child = Child::start(method, start_slow_thread_and_exit, (results.clone(),));
    child.expect_success();
    assert_eq!(results.get_nowait().unwrap(), "feito");
}

/// Starts a daemonic thread that waits forever, and returns.
fn start_stuck_daemon_and_return() {
    let fila = ThreadQueue::<()>::new();
    let mut thread = Thread::new(move || fila.get().map(drop), ()).daemon(true);
    thread.start().unwrap();
}

fn a_child_leaves_its_daemonic_threads(method: StartMethod) {
    let mut child = Child::start(method, start_stuck_daemon_and_return, ());
    child.expect_success();
}

fn exit_seven() {
    std::process::exit(7);
}

/// A non-daemonic thread calls `std::process::exit(7)` while this thread joins it: the exit
/// hook, running on that thread, must not wait for it.
fn join_a_thread_that_exits() {
    let mut thread = Thread::new(exit_seven, ());
    thread.start().unwrap();
    let _ = thread.join();
}

fn a_thread_that_exits_does_not_wait_for_itself(method: StartMethod) {
    let mut child = Child::start(method, join_a_thread_that_exits, ());
    assert_eq!(child.exit_code_within(LIMIT), 7);
}

#[test]
fn queue_smoke_fifo_and_exact_state() {
    let fila = ThreadQueue::with_maxsize(3);
    for i in 1..=3 {
        fila.put(format!("Tarefa {i}")).unwrap();
    }
    assert_eq!((fila.qsize(), fila.empty(), fila.full()), (3, false, true));
    assert!(fila.put_nowait("a mais".to_owned()).unwrap_err().is_full());
    for i in 1..=3 {
        assert_eq!(fila.get().unwrap(), format!("Tarefa {i}"));
    }
    assert_eq!((fila.qsize(), fila.empty(), fila.full()), (0, true, false));
    assert!(fila.get_timeout(SHORT).unwrap_err().is_empty());
}

#[test]
fn queue_a_full_put_waits_for_a_get_in_another_thread() {
    let fila = ThreadQueue::with_maxsize(1);
    fila.put(1).unwrap();
    let produtor = fila.clone();
    let mut thread = Thread::new(move || produtor.put(2), ());
    thread.start().unwrap();
    thread.join_timeout(SHORT).unwrap();
    assert!(thread.is_alive(), "the put waits while the queue is full");
    assert_eq!(fila.get().unwrap(), 1);
    within(LIMIT, move || thread.join()).unwrap();
    assert_eq!(fila.get_nowait().unwrap(), 2);
}

#[test]
fn queue_join_returns_only_after_every_task_done() {
    let fila = ThreadQueue::new();
    for i in 0..100 {
        fila.put(i).unwrap();
    }
    let done = Arc::new(AtomicUsize::new(0));
    let mut workers: Vec<Thread> = (0..4)
        .map(|_| {
            let (fila, done) = (fila.clone(), Arc::clone(&done));
            let worker = move || -> Result<(), Box<dyn std::error::Error>> {
                loop {
                    let item: i32 = fila.get()?;
                    done.fetch_add(1, Ordering::Relaxed);
                    fila.task_done()?;
                    if item < 0 {
                        return Ok(());
                    }
                }
            };
            Thread::new(worker, ())
        })
        .collect();
    workers.iter_mut().for_each(|w| w.start().unwrap());
    let joined = fila.clone();
    within(LIMIT, move || joined.join());
    assert_eq!(done.load(Ordering::Relaxed), 100, "join returned early");
    assert!(fila.task_done().is_err(), "one too many");
    for _ in 0..4 {
        fila.put(-1).unwrap();
    }
    within(LIMIT, move || {
        workers.iter_mut().for_each(|w| w.join().unwrap());
    });
    assert!(fila.join_timeout(SHORT));
}

#[test]
fn queue_every_item_is_got_exactly_once_by_many_threads() {
    const PER_PRODUCER: u64 = 2_000;
    let fila = ThreadQueue::with_maxsize(16);
    let results = ThreadQueue::new();
    let mut threads = Vec::new();
    for p in 0..2 {
        let fila = fila.clone();
        threads.push(Thread::new(
            move || -> Result<(), Box<dyn std::error::Error>> {
                for i in 0..PER_PRODUCER {
                    fila.put(p * PER_PRODUCER + i)?;
                }
                Ok(())
            },
            (),
        ));
    }
    for _ in 0..2 {
        let (fila, results) = (fila.clone(), results.clone());
        threads.push(Thread::new(
            move || -> Result<(), Box<dyn std::error::Error>> {
                while let Ok(item) = fila.get_timeout(SHORT) {
                    results.put(item)?;
                }
                Ok(())
            },
            (),
        ));
    }
    threads.iter_mut().for_each(|t| t.start().unwrap());
    within(LIMIT, move || {
        threads.iter_mut().for_each(|t| t.join().unwrap())
    });
    let mut got: Vec<u64> = std::iter::from_fn(|| results.get_nowait().ok()).collect();
    got.sort_unstable();
    assert_eq!(got, (0..2 * PER_PRODUCER).collect::<Vec<_>>());
}

#[test]
fn queue_close_fails_only_that_handle() {
    let fila = ThreadQueue::new();
    let outra = fila.clone();
    fila.put('a').unwrap();
    fila.close();
    assert_eq!(fila.put('b').unwrap_err().into_inner(), 'b');
    assert!(fila.get().unwrap_err().is_closed());
    assert_eq!(outra.get().unwrap(), 'a');
}
