//! Per-task timeouts of `Pool` (issue 22), each under every start method: a task that
//! overruns its timeout fails with `PoolError::TaskTimeout` naming its worker, that worker is
//! killed and replaced, and the other tasks run on. Every wait is bounded: a hang fails the
//! test instead of blocking it.

use std::time::Duration;

use nix::sys::signal::kill;
use nix::unistd::Pid;
use shared::{Pool, PoolError, Queue, StartMethod};

shared::enable_test_support!();

#[macro_use]
mod common;
use common::blocking::{blocks_forever, blocks_on_zero, remember_started};
use common::{LIMIT, within};

under_every_start_method!(
    an_overdue_task_kills_its_worker_and_the_next_task_runs,
    the_tasks_beside_an_overdue_one_run_on,
    a_call_s_own_timeout_overrides_the_pool_s,
    an_apply_async_of_its_own_timeout_fails_alone_and_the_next_call_runs,
    tasks_within_their_timeout_are_untouched,
);

/// Long enough that a quick task never reaches it, even on a loaded machine in a debug
/// build; the blocking tasks always do.
const TIMEOUT: Duration = Duration::from_secs(1);

fn square(x: u64) -> u64 {
    x * x
}

/// A pool of `processes` workers whose blocking tasks say when they start, with `timeout`
/// for each task if given.
fn pool(method: StartMethod, processes: usize, timeout: Option<Duration>) -> (Pool, Queue<u32>) {
    let started = Queue::new().expect("queue");
    let mut builder = Pool::builder()
        .processes(processes)
        .initializer(remember_started, (started.clone(),))
        .start_method(method);
    if let Some(timeout) = timeout {
        builder = builder.task_timeout(timeout);
    }
    (builder.build().expect("pool"), started)
}

/// Whether `pid` still runs (or is a zombie nobody reaped).
fn is_there(pid: u32) -> bool {
    kill(Pid::from_raw(pid as i32), None).is_ok()
        && std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
            !stat
                .rsplit_once(')')
                .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z'))
        })
}

fn an_overdue_task_kills_its_worker_and_the_next_task_runs(method: StartMethod) {
    let (pool, started) = pool(method, 1, Some(TIMEOUT));
    within(LIMIT, move || {
        let overdue = pool.apply_async(blocks_forever, (0,)).expect("apply_async");
        let worker = started.get_timeout(LIMIT).expect("the task starts");
        match overdue.get() {
            Err(PoolError::TaskTimeout { pid, timeout }) => {
                assert_eq!(pid, worker, "the error names the worker that ran it");
                assert_eq!(timeout, TIMEOUT);
            }
            other => panic!("expected TaskTimeout, got {other:?}"),
        }
        let message = overdue
            .get()
            .map(|_| ())
            .expect_err("still failed")
            .to_string();
        assert_eq!(
            message,
            format!("the task ran longer than its timeout of 1s: its worker {worker} was killed")
        );
        // The next task runs, on the worker that replaced the killed one.
        assert_eq!(pool.apply(square, (7,)).expect("the pool goes on"), 49);
        let now = pool.worker_pids();
        assert_eq!(now.len(), 1);
        assert!(!now.contains(&worker), "{now:?} still holds {worker}");
        while is_there(worker) {
            std::thread::yield_now();
        }
        pool.close();
        pool.join().expect("join");
    });
}

fn the_tasks_beside_an_overdue_one_run_on(method: StartMethod) {
    let (pool, started) = pool(method, 2, Some(TIMEOUT));
    within(LIMIT, move || {
        let results: Vec<_> = pool
            .chunked(1)
            .imap(blocks_on_zero, [1, 2, 0, 3, 4, 5, 6])
            .expect("imap")
            .collect();
        let worker = started
            .get_timeout(LIMIT)
            .expect("the blocking task started");
        for (x, result) in [1, 2, 0, 3, 4, 5, 6].into_iter().zip(results) {
            match (x, result) {
                (0, Err(PoolError::TaskTimeout { pid, .. })) => assert_eq!(pid, worker),
                (0, other) => panic!("expected TaskTimeout for 0, got {other:?}"),
                (x, Ok(value)) => assert_eq!(value, x * x),
                (x, Err(error)) => panic!("item {x} failed: {error:?}"),
            }
        }
        // A map with the same items: only the overdue call fails.
        let error = pool
            .chunked(1)
            .map(blocks_on_zero, [1, 0, 2])
            .expect_err("the overdue call fails the map");
        assert!(matches!(error, PoolError::TaskTimeout { .. }), "{error:?}");
        assert_eq!(pool.map(square, 0..10).expect("map").len(), 10);
    });
}

fn a_call_s_own_timeout_overrides_the_pool_s(method: StartMethod) {
    // No timeout for the pool: only the call that asks for one has it.
    let (pool, started) = pool(method, 2, None);
    within(LIMIT, move || {
        let results: Vec<_> = pool
            .task_timeout(TIMEOUT)
            .chunked(1)
            .imap(blocks_on_zero, [0, 7])
            .expect("imap")
            .collect();
        let worker = started
            .get_timeout(LIMIT)
            .expect("the blocking task started");
        assert!(
            matches!(results[0], Err(PoolError::TaskTimeout { pid, .. }) if pid == worker),
            "{:?}",
            results[0]
        );
        assert_eq!(results[1].as_ref().ok(), Some(&49));
        let halves = pool
            .task_timeout(TIMEOUT)
            .map_async(square, 0..4)
            .expect("map_async");
        assert_eq!(halves.get().expect("in time"), [0, 1, 4, 9]);
    });
}

/// `pool.task_timeout(d).apply_async(...)`: the one call has the timeout, the pool's other
/// calls have none, and a callback hears of the timeout as the call's error.
fn an_apply_async_of_its_own_timeout_fails_alone_and_the_next_call_runs(method: StartMethod) {
    let (pool, started) = pool(method, 1, None);
    within(LIMIT, move || {
        let (told, heard) = std::sync::mpsc::channel();
        let callbacks = shared::Callbacks::new().error_callback(move |error: PoolError| {
            let _ = told.send(error.to_string());
        });
        let overdue = pool
            .task_timeout(TIMEOUT)
            .apply_async_with(blocks_forever, (0,), callbacks)
            .expect("apply_async");
        let worker = started.get_timeout(LIMIT).expect("the task starts");
        match overdue.get() {
            Err(PoolError::TaskTimeout { pid, timeout }) => {
                assert_eq!((pid, timeout), (worker, TIMEOUT));
            }
            other => panic!("expected TaskTimeout, got {other:?}"),
        }
        let error = heard.recv_timeout(LIMIT).expect("the error callback ran");
        assert!(error.contains(&worker.to_string()), "{error}");
        // The next call runs on the worker that replaced the killed one; a call without a
        // timeout of its own has the pool's, none.
        assert_eq!(pool.apply(square, (7,)).expect("the pool goes on"), 49);
        assert_eq!(
            pool.task_timeout(TIMEOUT)
                .apply(square, (8,))
                .expect("within its timeout"),
            64
        );
        assert!(!pool.worker_pids().contains(&worker));
        assert!(
            !is_there(worker),
            "the overdue worker was killed and reaped"
        );
    });
}

/// A pool with a timeout runs a large map of quick tasks exactly as one without.
fn tasks_within_their_timeout_are_untouched(method: StartMethod) {
    let (pool, _) = pool(method, 2, Some(Duration::from_secs(20)));
    within(LIMIT, move || {
        let pids = pool.worker_pids();
        for chunksize in [1, 7, 1000] {
            let squares = pool.chunked(chunksize).map(square, 0..3000).expect("map");
            assert_eq!(squares, (0..3000).map(|x| x * x).collect::<Vec<_>>());
        }
        assert_eq!(pool.worker_pids(), pids, "no worker was killed");
    });
}
