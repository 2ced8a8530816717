//! `Pool` under faults, each under every start method (issue 22): workers stopped (SIGSTOP)
//! with work queued, kill storms during a large map, workers killed while they start,
//! `maxtasksperchild` under uneven work, results that cannot be sent back. Every wait is
//! bounded: a hang fails the test instead of blocking it.

use std::collections::HashMap;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use shared::{Pool, PoolError, Queue, StartMethod};

shared::enable_test_support!();

#[macro_use]
mod common;
use common::{LIMIT, within};

under_every_start_method!(
    two_stopped_workers_with_work_queued_hang_nothing,
    kill_storms_lose_duplicate_and_hang_nothing,
    a_worker_killed_as_the_pool_starts_is_replaced,
    a_replacement_killed_as_it_starts_is_replaced,
    a_worker_killed_in_its_initializer_is_replaced,
    no_worker_runs_more_than_maxtasksperchild,
    a_result_that_cannot_be_sent_fails_that_call_only,
);

// ---------------------------------------------------------------------------------------------
// Tasks.

fn square(x: u64) -> u64 {
    x * x
}

/// Where a worker tells the test which items it ran: set by `remember_runs`.
static RUNS: OnceLock<Queue<u64>> = OnceLock::new();

fn remember_runs(runs: Queue<u64>) {
    let _ = RUNS.set(runs);
}

/// Says that it ran `x`, then squares it.
fn recorded_square(x: u64) -> u64 {
    if let Some(runs) = RUNS.get() {
        let _ = runs.put(x);
    }
    x * x
}

/// Takes 2 ms on every 9th item, so that workers fall behind one another; says which
/// worker ran it.
fn uneven_pid(x: u64) -> u32 {
    if x % 9 == 0 {
        std::thread::sleep(Duration::from_millis(2));
    }
    std::process::id()
}

/// Where a starting worker says its PID, and the gate it then waits on: set by
/// `announce_and_wait`.
fn announce_and_wait(announce: Queue<u32>, gate: Queue<()>) -> Result<(), String> {
    announce
        .put(std::process::id())
        .map_err(|e| e.to_string())?;
    gate.get().map_err(|e| e.to_string())
}

/// A value whose serialization always fails, as a type holding a handle would.
struct Unsendable;

impl serde::Serialize for Unsendable {
    fn serialize<S: serde::Serializer>(&self, _: S) -> Result<S::Ok, S::Error> {
        Err(serde::ser::Error::custom("an Unsendable cannot cross"))
    }
}

impl<'de> serde::Deserialize<'de> for Unsendable {
    fn deserialize<D: serde::Deserializer<'de>>(_: D) -> Result<Self, D::Error> {
        Ok(Unsendable)
    }
}

shared::task_result!(Unsendable);

fn unsendable(_: u64) -> Unsendable {
    Unsendable
}

fn pool(method: StartMethod, processes: usize) -> Pool {
    Pool::builder()
        .processes(processes)
        .start_method(method)
        .build()
        .expect("pool")
}

// ---------------------------------------------------------------------------------------------

/// Kills (SIGKILL, which also ends a stopped process) the processes it names when the test
/// ends, however it ends: a stopped worker must not outlive a failed test.
struct KillOnDrop(Vec<u32>);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        for &pid in &self.0 {
            let _ = kill(Pid::from_raw(pid as i32), Signal::SIGKILL);
        }
    }
}

/// Issue 22, bug 0: two of three workers stopped, four chunks queued. The supervisor once
/// moved a batch between the two stopped workers for ever, holding the pool's lock, so that
/// `get_timeout`, `terminate` and `drop` all blocked. Now each returns: the chunks a stopped
/// worker holds wait for it, the others run on the live worker.
fn two_stopped_workers_with_work_queued_hang_nothing(method: StartMethod) {
    let pool = Pool::builder()
        .processes(3)
        .start_method(method)
        .build()
        .expect("pool");
    let workers = pool.worker_pids();
    let _reaper = KillOnDrop(workers.clone());
    for &stopped in &workers[..2] {
        kill(Pid::from_raw(stopped as i32), Signal::SIGSTOP).expect("SIGSTOP");
    }
    within(LIMIT, move || {
        let squares = pool.chunked(1).map_async(square, 0..4).expect("map_async");
        for _ in 0..5 {
            match squares.get_timeout(Duration::from_millis(100)) {
                Ok(values) => assert_eq!(values, [0, 1, 4, 9]),
                Err(PoolError::Timeout) => {}
                Err(other) => panic!("expected the squares or a timeout, got {other:?}"),
            }
        }
        // `worker_pids` and `Debug` take the same lock: they answer too.
        assert_eq!(pool.worker_pids().len(), 3);
        pool.terminate();
        match squares.get_timeout(LIMIT) {
            Ok(values) => assert_eq!(values, [0, 1, 4, 9]),
            Err(PoolError::Terminated) => {}
            Err(other) => panic!("expected the squares or Terminated, got {other:?}"),
        }
        pool.join().expect("join");
        drop(pool);
    });
}

/// Issue 22, bug 0 again: SIGKILLs during a large map once hung 4 storms in 40. Each storm
/// kills a worker every few results (running, idle or starting): every item then has exactly
/// one outcome, its square or the death of the worker that ran it, and no item runs twice.
fn kill_storms_lose_duplicate_and_hang_nothing(method: StartMethod) {
    // Fork is cheap enough for many storms; the others start a program per worker.
    let (storms, items, every) = match method {
        StartMethod::Fork => (40, 1500, 20),
        _ => (20, 1000, 25),
    };
    let started = Instant::now();
    let mut kills = 0;
    for storm in 0..storms {
        kills += within(LIMIT, move || one_kill_storm(method, items, every))
            .unwrap_or_else(|why| panic!("storm {storm}: {why}"));
    }
    eprintln!(
        "{method:?}: {storms} storms, {kills} kills in {:?}",
        started.elapsed()
    );
}

/// One map of `items` items in chunks of 4 over three workers, a worker killed after every
/// `every` results; returns how many kills, or what went wrong.
fn one_kill_storm(method: StartMethod, items: u64, every: u64) -> Result<usize, String> {
    let runs = Queue::new().expect("queue");
    let pool = Pool::builder()
        .processes(3)
        .initializer(remember_runs, (runs.clone(),))
        .start_method(method)
        .build()
        .expect("pool");
    let mut kills = 0;
    let mut outcomes = Vec::new();
    for (index, result) in pool
        .chunked(4)
        .imap(recorded_square, 0..items)
        .expect("imap")
        .enumerate()
    {
        outcomes.push(result);
        if index as u64 % every == every - 1 {
            let workers = pool.worker_pids();
            if let Some(&victim) = workers.get(kills % workers.len().max(1)) {
                let _ = kill(Pid::from_raw(victim as i32), Signal::SIGKILL);
                kills += 1;
            }
        }
    }
    if outcomes.len() as u64 != items {
        return Err(format!("{} outcomes for {items} items", outcomes.len()));
    }
    for (x, outcome) in (0..).zip(&outcomes) {
        match outcome {
            Ok(value) if *value == x * x => {}
            Err(PoolError::WorkerDied { exitcode: -9, .. }) => {}
            other => return Err(format!("item {x}: {other:?}")),
        }
    }
    pool.close();
    pool.join().expect("join");
    drop(pool);
    // Every worker has ended, so every run it recorded is in the queue.
    let mut times_run: HashMap<u64, usize> = HashMap::new();
    while let Ok(x) = runs.get_nowait() {
        *times_run.entry(x).or_default() += 1;
    }
    for (x, outcome) in (0..).zip(&outcomes) {
        let runs = times_run.get(&x).copied().unwrap_or(0);
        let expected = if outcome.is_ok() { 1..=1 } else { 0..=1 };
        if !expected.contains(&runs) {
            return Err(format!("item {x} ran {runs} times: {outcome:?}"));
        }
    }
    Ok(kills)
}

/// Issue 22, bug 3: a pool with no initializer whose first worker is killed at once (before
/// it is ready, under spawn) stopped with "the pool's initializer failed". It is replaced.
fn a_worker_killed_as_the_pool_starts_is_replaced(method: StartMethod) {
    let pool = pool(method, 2);
    let first = pool.worker_pids()[0];
    kill(Pid::from_raw(first as i32), Signal::SIGKILL).expect("kill");
    within(LIMIT, move || {
        let squares = pool.map(square, 0..20).expect("the pool goes on");
        assert_eq!(squares, (0..20).map(|x| x * x).collect::<Vec<_>>());
        wait_until_replaced(&pool, first);
        assert_eq!(pool.worker_pids().len(), 2);
    });
}

/// Waits until `pid` is no longer among the pool's workers: the map may have returned
/// before the supervisor handled the worker's end (the caller bounds the wait).
fn wait_until_replaced(pool: &Pool, pid: u32) {
    while pool.worker_pids().contains(&pid) {
        std::thread::yield_now();
    }
}

/// Issue 22, bug 3: a replacement killed as it starts is replaced in turn.
fn a_replacement_killed_as_it_starts_is_replaced(method: StartMethod) {
    let pool = pool(method, 1);
    let first = pool.worker_pids()[0];
    kill(Pid::from_raw(first as i32), Signal::SIGKILL).expect("kill");
    within(LIMIT, move || {
        // The pool replaces it as soon as it sees the death: kill the replacement at once.
        let replacement = loop {
            match pool.worker_pids()[..] {
                [pid] if pid != first => break pid,
                _ => std::thread::yield_now(),
            }
        };
        kill(Pid::from_raw(replacement as i32), Signal::SIGKILL).expect("kill");
        let squares = pool.map(square, 0..10).expect("the pool goes on");
        assert_eq!(squares, (0..10).map(|x| x * x).collect::<Vec<_>>());
        let now = pool.worker_pids();
        assert!(
            !now.contains(&first) && !now.contains(&replacement),
            "{now:?}"
        );
    });
}

/// Issue 22, bug 3, with an initializer: a worker killed by a signal while its initializer
/// runs (an OOM kill) is replaced; only deaths that go on, no worker becoming ready, stop the
/// pool (`a_worker_that_dies_in_its_initializer_stops_the_pool` in pool.rs).
fn a_worker_killed_in_its_initializer_is_replaced(method: StartMethod) {
    let announce = Queue::new().expect("queue");
    let gate = Queue::new().expect("queue");
    let pool = Pool::builder()
        .processes(1)
        .initializer(announce_and_wait, (announce.clone(), gate.clone()))
        .start_method(method)
        .build()
        .expect("pool");
    let first = announce.get_timeout(LIMIT).expect("the initializer runs");
    kill(Pid::from_raw(first as i32), Signal::SIGKILL).expect("kill");
    let replacement = announce.get_timeout(LIMIT).expect("a replacement starts");
    assert_ne!(replacement, first);
    gate.put(()).expect("open the gate");
    within(LIMIT, move || {
        let pids = pool.map(pid_of, 0..4).expect("the pool goes on");
        assert_eq!(pids, [replacement; 4]);
    });
}

fn pid_of(_: u64) -> u32 {
    std::process::id()
}

/// Issue 22, bug 1: with `maxtasksperchild(10)`, a worker could be handed more chunks than
/// its budget left (a debug build's supervisor then panicked, a release build's worker ran
/// 17). Uneven work makes the pool move chunks between workers; no worker runs more than 10.
fn no_worker_runs_more_than_maxtasksperchild(method: StartMethod) {
    let pool = Pool::builder()
        .processes(3)
        .maxtasksperchild(10)
        .start_method(method)
        .build()
        .expect("pool");
    within(LIMIT, move || {
        for round in 0..3 {
            let pids = pool.chunked(1).map(uneven_pid, 0..120).expect("map");
            assert_eq!(pids.len(), 120);
            let mut per_worker: HashMap<u32, usize> = HashMap::new();
            for pid in pids {
                *per_worker.entry(pid).or_default() += 1;
            }
            for (pid, ran) in per_worker {
                assert!(ran <= 10, "round {round}: worker {pid} ran {ran} tasks");
            }
        }
    });
}

/// Issue 22, bug 4: a result that cannot be serialized failed as `Broken` ("the pool cannot
/// go on") while the pool went on. It fails that call only, as CPython's
/// `MaybeEncodingError`.
fn a_result_that_cannot_be_sent_fails_that_call_only(method: StartMethod) {
    let pool = pool(method, 2);
    within(LIMIT, move || {
        for _ in 0..5 {
            match pool.apply(unsendable, (1,)) {
                Err(PoolError::Encoding(cause)) => {
                    assert_eq!(cause.message(), "an Unsendable cannot cross");
                }
                other => panic!("expected Encoding, got {:?}", other.map(|_| ())),
            }
            assert_eq!(pool.apply(square, (7,)).expect("the pool goes on"), 49);
        }
        let error = pool
            .map(unsendable, 0..8)
            .map(|_| ())
            .expect_err("encoding");
        assert!(matches!(error, PoolError::Encoding(_)), "{error:?}");
        assert_eq!(
            pool.map(square, 0..4).expect("the pool goes on"),
            [0, 1, 4, 9]
        );
    });
}

/// The rare kill-storm hang: the pool forked a replacement worker while another thread of
/// the parent was inside `dl_iterate_phdr` (then called on every submit), so the child began
/// with a copy of the loader's lock held by a thread it does not have, and glibc does not
/// reset that lock in a child. The worker read the loader's tables to check its first order's
/// function, and waited for ever. Here a thread holds that lock on purpose while the pool
/// forks its workers: they must run without it.
#[test]
fn workers_forked_while_another_thread_holds_the_loader_lock_run() {
    // The parent reads what it needs from the loader with the lock free, as any program that
    // forked once has done: a first pool.
    let warm_up = Pool::builder()
        .processes(1)
        .start_method(StartMethod::Fork)
        .build()
        .expect("pool");
    assert_eq!(warm_up.map(square, 0..2).expect("map"), [0, 1]);
    drop(warm_up);

    let held = LoaderLockHeld::take();
    let (done, finished) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let pool = Pool::builder()
            .processes(2)
            .start_method(StartMethod::Fork)
            .build()
            .expect("pool");
        let squares = pool.map(square, 0..20);
        pool.terminate();
        let _ = done.send(squares);
    });
    let outcome = finished.recv_timeout(LIMIT);
    // Released before any assertion: a panic's backtrace reads the loader's tables too.
    drop(held);
    let squares = outcome
        .unwrap_or_else(|_| panic!("still blocked after {LIMIT:?}: the forked workers hung"));
    assert_eq!(
        squares.expect("the workers run"),
        (0..20).map(|x| x * x).collect::<Vec<_>>()
    );
}

/// A thread that sits inside `dl_iterate_phdr`'s callback, holding the loader's lock, until
/// dropped.
struct LoaderLockHeld {
    release: std::sync::mpsc::Sender<()>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl LoaderLockHeld {
    fn take() -> LoaderLockHeld {
        use std::sync::mpsc::{Receiver, channel};

        struct Hold {
            inside: std::sync::mpsc::Sender<()>,
            release: Receiver<()>,
        }

        unsafe extern "C" fn hold(
            _info: *mut nix::libc::dl_phdr_info,
            _size: nix::libc::size_t,
            data: *mut nix::libc::c_void,
        ) -> nix::libc::c_int {
            // SAFETY: `data` is the `Hold` the thread below lent to `dl_iterate_phdr`, alive
            // for the whole call.
            let hold = unsafe { &*data.cast::<Hold>() };
            let _ = hold.inside.send(());
            let _ = hold.release.recv();
            1
        }

        let (inside, is_inside) = channel();
        let (release, released) = channel();
        let thread = std::thread::spawn(move || {
            let mut state = Hold {
                inside,
                release: released,
            };
            // SAFETY: `hold` matches the callback type and only reads `state`, which outlives
            // the call.
            unsafe { nix::libc::dl_iterate_phdr(Some(hold), (&raw mut state).cast()) };
        });
        is_inside
            .recv()
            .expect("the thread holds the loader's lock");
        LoaderLockHeld {
            release,
            thread: Some(thread),
        }
    }
}

impl Drop for LoaderLockHeld {
    fn drop(&mut self) {
        let _ = self.release.send(());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
