//! A caller waiting for its result reads the workers' reports itself when the supervisor does
//! not (issue 22: `submit` + `result` one at a time), each under every start method. What
//! the supervisor guaranteed holds whoever reads: a worker killed between or during calls
//! fails at most the call it ran and is replaced, nothing is lost or run twice, threads
//! calling at once each get their own results, and a call nobody waits for still completes,
//! runs its callbacks and has its timeout enforced. Every wait is bounded: a hang fails the
//! test instead of blocking it.

use std::collections::HashMap;
use std::sync::OnceLock;
use std::sync::mpsc;
use std::time::Duration;

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use shared::{Pool, PoolError, ProcessPoolExecutor, Queue, StartMethod};

shared::enable_test_support!();

#[macro_use]
mod common;
use common::blocking::{blocks_forever, remember_started};
use common::{LIMIT, within};

under_every_start_method!(
    one_call_at_a_time_through_a_kill_storm_loses_and_repeats_nothing,
    threads_calling_at_once_each_get_their_own_results,
    a_call_nobody_waits_for_completes_and_says_so,
    a_caller_that_stops_waiting_leaves_the_timeout_and_callbacks_to_the_supervisor,
);

fn square(x: u64) -> u64 {
    x * x
}

/// Where a worker tells the test which items it ran: set by `remember_runs`.
static RUNS: OnceLock<Queue<u64>> = OnceLock::new();

/// How often a call blocks until its worker is killed, in the kill storm.
const EVERY: u64 = 20;

/// The pool's initializer for the kill storm: where its tasks say what they ran and when
/// they block.
fn remember_runs_and_starts(runs: Queue<u64>, started: Queue<u32>) {
    let _ = RUNS.set(runs);
    remember_started(started);
}

/// Says that it ran `x`; then blocks for ever (after saying so) on every [`EVERY`]th item,
/// squares the others.
fn recorded_square_or_block(x: u64) -> u64 {
    if let Some(runs) = RUNS.get() {
        let _ = runs.put(x);
    }
    if x % EVERY == EVERY - 1 {
        blocks_forever(x)
    } else {
        x * x
    }
}

/// `submit` then `result`, one call at a time; every [`EVERY`]th call blocks and its worker
/// is killed (SIGKILL) while it runs it, and an idle worker is killed between two other
/// calls as often: the blocked calls fail with `WorkerDied` naming their worker, every other
/// call has its square (or, at most, fails with a worker killed as it was handed the call),
/// and no call ran twice (one that has its result ran exactly once).
fn one_call_at_a_time_through_a_kill_storm_loses_and_repeats_nothing(method: StartMethod) {
    let calls = match method {
        StartMethod::Fork => 400,
        _ => 200,
    };
    let runs = Queue::new().expect("queue");
    let started = Queue::new().expect("queue");
    let executor = ProcessPoolExecutor::builder()
        .max_workers(2)
        .initializer(remember_runs_and_starts, (runs.clone(), started.clone()))
        .mp_context(method)
        .build()
        .expect("executor");
    let outcomes = within(LIMIT, move || {
        let mut outcomes = Vec::new();
        for x in 0..calls {
            let future = executor
                .submit(recorded_square_or_block, (x,))
                .expect("submit");
            if x % EVERY == EVERY - 1 {
                let worker = started.get_timeout(LIMIT).expect("the call blocks");
                kill(Pid::from_raw(worker as i32), Signal::SIGKILL).expect("kill");
                outcomes.push((Some(worker), future.result()));
                continue;
            }
            outcomes.push((None, future.result()));
            if x % EVERY == EVERY / 2 {
                let workers = executor.worker_pids();
                if let Some(&idle) = workers.get(x as usize % workers.len().max(1)) {
                    let _ = kill(Pid::from_raw(idle as i32), Signal::SIGKILL);
                }
            }
        }
        executor.shutdown(true, false).expect("shutdown");
        outcomes
    });
    assert_eq!(outcomes.len() as u64, calls);
    // Every worker has ended, so every run it recorded is in the queue.
    let mut times_run: HashMap<u64, usize> = HashMap::new();
    while let Ok(x) = runs.get_nowait() {
        *times_run.entry(x).or_default() += 1;
    }
    let mut lost_at_hand_out = 0;
    for (x, (killed, outcome)) in (0..).zip(&outcomes) {
        let ran = times_run.get(&x).copied().unwrap_or(0);
        match (killed, outcome) {
            (Some(worker), Err(PoolError::WorkerDied { pid, exitcode: -9 })) => {
                assert_eq!(pid, worker, "call {x}");
                assert_eq!(ran, 1, "call {x} ran {ran} times");
            }
            (None, Ok(value)) => {
                assert_eq!(*value, x * x, "call {x}");
                assert_eq!(ran, 1, "call {x} has its result and ran {ran} times");
            }
            (None, Err(PoolError::WorkerDied { exitcode: -9, .. })) => {
                lost_at_hand_out += 1;
                assert!(ran <= 1, "call {x} failed and ran {ran} times");
            }
            other => panic!("call {x}: {other:?}"),
        }
    }
    eprintln!("{method:?}: {calls} calls, {lost_at_hand_out} failed as handed to a killed worker");
}

/// Four threads call one pool at once, one call at a time each (through `apply`, and
/// through `apply_async` and `get_timeout`): each gets the results of its own calls, in order.
fn threads_calling_at_once_each_get_their_own_results(method: StartMethod) {
    let pool = std::sync::Arc::new(
        Pool::builder()
            .processes(2)
            .start_method(method)
            .build()
            .expect("pool"),
    );
    let threads: Vec<_> = (0..4u64)
        .map(|thread| {
            let pool = std::sync::Arc::clone(&pool);
            std::thread::spawn(move || {
                (0..150u64)
                    .map(|i| {
                        let x = thread * 1000 + i;
                        if thread % 2 == 0 {
                            pool.apply(square, (x,))
                        } else {
                            let result = pool.apply_async(square, (x,))?;
                            result.get_timeout(LIMIT)
                        }
                    })
                    .collect::<Result<Vec<u64>, PoolError>>()
            })
        })
        .collect();
    within(LIMIT, move || {
        for (thread, handle) in (0..4u64).zip(threads) {
            let squares = handle.join().expect("thread").expect("calls");
            let expected: Vec<u64> = (0..150).map(|i| square(thread * 1000 + i)).collect();
            assert_eq!(squares, expected, "thread {thread}");
        }
    });
}

/// A call whose result nobody waits for: `done()` turns true by itself, a pool's callback
/// runs, and a result dropped unread keeps nothing from the next calls.
fn a_call_nobody_waits_for_completes_and_says_so(method: StartMethod) {
    let executor = ProcessPoolExecutor::builder()
        .max_workers(1)
        .mp_context(method)
        .build()
        .expect("executor");
    let pool = Pool::builder()
        .processes(1)
        .start_method(method)
        .build()
        .expect("pool");
    within(LIMIT, move || {
        let future = executor.submit(square, (9,)).expect("submit");
        while !future.done() {
            std::thread::yield_now();
        }
        assert_eq!(future.result().expect("done"), 81);

        let (told, heard) = mpsc::channel();
        let callbacks = shared::Callbacks::new().callback(move |value: u64| {
            let _ = told.send(value);
        });
        drop(
            pool.apply_async_with(square, (5,), callbacks)
                .expect("apply_async"),
        );
        assert_eq!(heard.recv_timeout(LIMIT).expect("the callback ran"), 25);

        drop(executor.submit(square, (2,)).expect("submit"));
        drop(pool.apply_async(square, (3,)).expect("apply_async"));
        let next = executor.submit(square, (4,)).expect("submit");
        assert_eq!(next.result().expect("result"), 16);
        assert_eq!(pool.apply(square, (6,)).expect("apply"), 36);
    });
}

/// A caller that stops waiting (`result_timeout`) while its call still runs hands the reading
/// over: the call's task timeout still kills its worker, and a done callback added afterwards
/// still hears of it, with no thread waiting for the result.
fn a_caller_that_stops_waiting_leaves_the_timeout_and_callbacks_to_the_supervisor(
    method: StartMethod,
) {
    let started = Queue::new().expect("queue");
    let executor = ProcessPoolExecutor::builder()
        .max_workers(1)
        .initializer(remember_started, (started.clone(),))
        .mp_context(method)
        .task_timeout(Duration::from_secs(1))
        .build()
        .expect("executor");
    within(LIMIT, move || {
        let blocked = executor.submit(blocks_forever, (0,)).expect("submit");
        let worker = started.get_timeout(LIMIT).expect("it starts");
        assert!(matches!(
            blocked.result_timeout(Duration::from_millis(50)),
            Err(PoolError::Timeout)
        ));
        let (told, heard) = mpsc::channel();
        blocked.add_done_callback(move |future| {
            let _ = told.send(future.result());
        });
        match heard.recv_timeout(LIMIT).expect("the callback ran") {
            Err(PoolError::TaskTimeout { pid, .. }) => assert_eq!(pid, worker),
            other => panic!("expected TaskTimeout, got {other:?}"),
        }
        let next = executor.submit(square, (7,)).expect("submit");
        assert_eq!(next.result().expect("the next call runs"), 49);
    });
}
