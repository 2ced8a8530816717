//! `ProcessPoolExecutor`, `Future`, `as_completed` and `wait` (issue 22), each under every
//! start method: the `concurrent.futures` API, a worker's death failing exactly its future
//! while the executor goes on, a task timeout, cancellation and shutdown. Every wait is
//! bounded: a hang fails the test instead of blocking it.

use std::sync::mpsc;
use std::time::Duration;

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use shared::futures::{ReturnWhen, as_completed, wait};
use shared::{Future, PoolError, ProcessPoolExecutor, Queue, StartMethod};

shared::enable_test_support!();

#[macro_use]
mod common;
use common::blocking::{blocks_forever, blocks_on_zero, remember_started};
use common::{LIMIT, within};

under_every_start_method!(
    submit_gives_futures_with_the_python_api,
    a_killed_worker_fails_one_future_and_the_next_submit_works,
    a_task_past_its_timeout_fails_and_the_next_runs,
    a_queued_future_can_be_cancelled_a_running_one_cannot,
    done_callbacks_run_once_each,
    map_is_ordered_and_its_timeout_ends_it,
    as_completed_yields_each_future_once_then_times_out,
    wait_returns_when_asked,
    shutdown_cancels_what_waits_and_refuses_new_work,
    bad_options_are_errors,
);

/// Long enough that a quick task never reaches it; the blocking ones always do.
const TIMEOUT: Duration = Duration::from_secs(3);

fn square(x: u64) -> u64 {
    x * x
}

fn checked_half(x: u64) -> Result<u64, String> {
    if x % 2 == 0 {
        Ok(x / 2)
    } else {
        Err(format!("{x} é ímpar"))
    }
}

/// An executor of `workers` whose blocking tasks say when they start; a task timeout keeps
/// a blocked task from holding up the executor's end.
fn start_executor(method: StartMethod, workers: usize) -> (ProcessPoolExecutor, Queue<u32>) {
    let started = Queue::new().expect("queue");
    let executor = ProcessPoolExecutor::builder()
        .max_workers(workers)
        .initializer(remember_started, (started.clone(),))
        .mp_context(method)
        .task_timeout(TIMEOUT)
        .build()
        .expect("executor");
    (executor, started)
}

fn submit_gives_futures_with_the_python_api(method: StartMethod) {
    let (executor, started) = start_executor(method, 2);
    within(LIMIT, move || {
        assert_eq!(executor.max_workers(), 2);
        let four = executor.submit(square, (2,)).expect("submit");
        assert_eq!(four.result().expect("result"), 4);
        assert_eq!(four.result().expect("read again"), 4);
        assert!(four.done() && !four.running() && !four.cancelled());
        assert!(four.exception().is_none());
        let odd = executor.submit(checked_half, (3,)).expect("submit");
        match odd.exception() {
            Some(PoolError::Task(message)) => assert_eq!(message, "3 é ímpar"),
            other => panic!("expected the task's error, got {other:?}"),
        }
        // A call that runs: `running`, not `done`; `result_timeout` gives up.
        let blocked = executor.submit(blocks_forever, (0,)).expect("submit");
        started.get_timeout(LIMIT).expect("it starts");
        assert!(blocked.running() && !blocked.done());
        assert!(matches!(
            blocked.result_timeout(Duration::from_millis(10)),
            Err(PoolError::Timeout)
        ));
        assert!(!blocked.cancel(), "a running call cannot be cancelled");
        // The task timeout ends it.
        assert!(matches!(
            blocked.result(),
            Err(PoolError::TaskTimeout { .. })
        ));
        assert!(blocked.done() && !blocked.running() && !blocked.cancelled());
        // A clone is the same call.
        let again = four.clone();
        assert_eq!(again.result().expect("clone"), 4);
    });
}

fn a_killed_worker_fails_one_future_and_the_next_submit_works(method: StartMethod) {
    let (executor, started) = start_executor(method, 2);
    within(LIMIT, move || {
        let victim_future = executor.submit(blocks_forever, (0,)).expect("submit");
        let victim = started.get_timeout(LIMIT).expect("it starts");
        let others: Vec<Future<u64>> = (1..9)
            .map(|x| executor.submit(square, (x,)).expect("submit"))
            .collect();
        kill(Pid::from_raw(victim as i32), Signal::SIGKILL).expect("kill");
        match victim_future.result() {
            Err(PoolError::WorkerDied { pid, exitcode }) => {
                assert_eq!((pid, exitcode), (victim, -9));
            }
            other => panic!("expected WorkerDied, got {other:?}"),
        }
        for (x, future) in (1..).zip(&others) {
            assert_eq!(future.result().expect("the others run"), x * x);
        }
        // Unlike CPython's BrokenProcessPool, the executor goes on.
        let next = executor
            .submit(square, (12,))
            .expect("submit after the death");
        assert_eq!(next.result().expect("result"), 144);
        assert!(!executor.worker_pids().contains(&victim));
    });
}

fn a_task_past_its_timeout_fails_and_the_next_runs(method: StartMethod) {
    let (executor, started) = start_executor(method, 1);
    within(LIMIT, move || {
        let overdue = executor.submit(blocks_forever, (0,)).expect("submit");
        let queued = executor.submit(square, (5,)).expect("submit");
        let worker = started.get_timeout(LIMIT).expect("it starts");
        match overdue.result() {
            Err(PoolError::TaskTimeout { pid, timeout }) => {
                assert_eq!((pid, timeout), (worker, TIMEOUT));
            }
            other => panic!("expected TaskTimeout, got {other:?}"),
        }
        assert_eq!(queued.result().expect("the next task runs"), 25);
        let pids = executor.worker_pids();
        assert_eq!(pids.len(), 1);
        assert!(!pids.contains(&worker));
    });
}

fn a_queued_future_can_be_cancelled_a_running_one_cannot(method: StartMethod) {
    let (executor, started) = start_executor(method, 1);
    within(LIMIT, move || {
        let running = executor.submit(blocks_forever, (0,)).expect("submit");
        started.get_timeout(LIMIT).expect("it starts");
        // The one worker holds the blocked call: the next waits in the executor.
        let queued = executor.submit(square, (3,)).expect("submit");
        assert!(!queued.running() && !queued.done());
        assert!(queued.cancel());
        assert!(queued.cancel(), "cancelling twice is still cancelled");
        assert!(queued.cancelled() && queued.done() && !queued.running());
        assert!(matches!(queued.result(), Err(PoolError::Cancelled)));
        assert!(!running.cancel() && !running.cancelled());
        // Once it has finished, a call cannot be cancelled either.
        assert!(matches!(
            running.result(),
            Err(PoolError::TaskTimeout { .. })
        ));
        assert!(!running.cancel());
        let done = executor.submit(square, (4,)).expect("submit");
        assert_eq!(done.result().expect("result"), 16);
        assert!(!done.cancel() && !done.cancelled());
    });
}

fn done_callbacks_run_once_each(method: StartMethod) {
    let (executor, _) = start_executor(method, 2);
    let (sender, receiver) = mpsc::channel();
    within(LIMIT, move || {
        let futures: Vec<Future<u64>> = (0..10)
            .map(|x| executor.submit(square, (x,)).expect("submit"))
            .collect();
        for (x, future) in (0..).zip(&futures) {
            let sender = sender.clone();
            future.add_done_callback(move |future| {
                // The future is done when its callback runs.
                sender
                    .send((x, future.done(), future.result().ok()))
                    .unwrap();
            });
        }
        // Added to a finished future, a callback runs at once, on this thread.
        futures[0].result().expect("result");
        let here = std::thread::current().id();
        let (ran_here, on_thread) = mpsc::channel();
        futures[0].add_done_callback(move |_| ran_here.send(std::thread::current().id()).unwrap());
        assert_eq!(on_thread.try_recv(), Ok(here));
        drop(executor);
    });
    // The executor has ended: every callback that will run has run.
    let mut seen: Vec<_> = receiver.try_iter().collect();
    seen.sort_unstable();
    let expected: Vec<_> = (0..10).map(|x| (x, true, Some(x * x))).collect();
    assert_eq!(seen, expected);
}

fn map_is_ordered_and_its_timeout_ends_it(method: StartMethod) {
    let (executor, started) = start_executor(method, 2);
    within(LIMIT, move || {
        let squares: Vec<u64> = executor
            .map(square, 0..500)
            .expect("map")
            .collect::<Result<_, _>>()
            .expect("squares");
        assert_eq!(squares, (0..500).map(|x| x * x).collect::<Vec<_>>());
        let chunked: Vec<u64> = executor
            .map_with(square, 0..500, 37, None)
            .expect("map_with")
            .collect::<Result<_, _>>()
            .expect("squares");
        assert_eq!(chunked, squares);
        // The results before the blocked call come, then the timeout, then the end.
        let mut results = executor
            .map_with(
                blocks_on_zero,
                [1, 2, 0, 3],
                1,
                Some(Duration::from_millis(300)),
            )
            .expect("map_with");
        assert_eq!(results.next().map(|r| r.ok()), Some(Some(1)));
        assert_eq!(results.next().map(|r| r.ok()), Some(Some(4)));
        started
            .get_timeout(LIMIT)
            .expect("the blocked call started");
        assert!(matches!(results.next(), Some(Err(PoolError::Timeout))));
        assert!(results.next().is_none());
        assert!(matches!(
            executor.map_with(square, 0..3, 0, None).map(|_| ()),
            Err(PoolError::NoChunksize)
        ));
    });
}

fn as_completed_yields_each_future_once_then_times_out(method: StartMethod) {
    let (executor, started) = start_executor(method, 2);
    within(LIMIT, move || {
        let futures: Vec<Future<u64>> = (0..8)
            .map(|x| executor.submit(square, (x,)).expect("submit"))
            .collect();
        let mut squares: Vec<u64> = as_completed(&futures, None)
            .map(|future| future.expect("no timeout").result().expect("square"))
            .collect();
        squares.sort_unstable();
        assert_eq!(squares, (0..8).map(|x| x * x).collect::<Vec<_>>());
        // Finished futures first; the blocked one makes the timeout pass.
        let mixed = vec![
            executor.submit(square, (3,)).expect("submit"),
            executor.submit(blocks_forever, (0,)).expect("submit"),
        ];
        started
            .get_timeout(LIMIT)
            .expect("the blocked call started");
        mixed[0].result().expect("the quick one is done");
        let mut completed = as_completed(&mixed, Some(Duration::from_millis(100)));
        let first = completed.next().expect("one").expect("done in time");
        assert!(std::ptr::eq(first, &mixed[0]));
        assert!(matches!(completed.next(), Some(Err(PoolError::Timeout))));
        assert!(completed.next().is_none());
    });
}

fn wait_returns_when_asked(method: StartMethod) {
    let (executor, started) = start_executor(method, 2);
    within(LIMIT, move || {
        let futures = vec![
            executor.submit(blocks_forever, (0,)).expect("submit"),
            executor.submit(checked_half, (4,)).expect("submit"),
        ];
        let _ = futures[1].result();
        started
            .get_timeout(LIMIT)
            .expect("the blocked call started");
        let first = wait(&futures, None, ReturnWhen::FirstCompleted);
        assert_eq!(first.done.len(), 1);
        assert!(std::ptr::eq(first.done[0], &futures[1]));
        assert!(std::ptr::eq(first.not_done[0], &futures[0]));
        // No exception yet, and not all done: the timeout ends the wait.
        let timed = wait(
            &futures,
            Some(Duration::from_millis(100)),
            ReturnWhen::FirstException,
        );
        assert_eq!((timed.done.len(), timed.not_done.len()), (1, 1));
        let all = wait(
            &futures,
            Some(Duration::from_millis(100)),
            ReturnWhen::AllCompleted,
        );
        assert_eq!((all.done.len(), all.not_done.len()), (1, 1));
        // An exception ends a FIRST_EXCEPTION wait while the blocked call still runs.
        let failing = vec![
            futures[0].clone(),
            executor.submit(checked_half, (5,)).expect("submit"),
        ];
        let first_failure = wait(&failing, None, ReturnWhen::FirstException);
        assert_eq!(first_failure.done.len(), 1);
        assert!(std::ptr::eq(first_failure.done[0], &failing[1]));
        // Without a timeout, ALL_COMPLETED waits for the task timeout to end the blocked call.
        let all = wait(&futures, None, ReturnWhen::AllCompleted);
        assert_eq!((all.done.len(), all.not_done.len()), (2, 0));
        assert!(
            wait::<Future<u64>>(&[], None, ReturnWhen::FirstCompleted)
                .done
                .is_empty()
        );
    });
}

fn shutdown_cancels_what_waits_and_refuses_new_work(method: StartMethod) {
    let (executor, started) = start_executor(method, 1);
    within(LIMIT, move || {
        let blocked = executor.submit(blocks_forever, (0,)).expect("submit");
        started.get_timeout(LIMIT).expect("it starts");
        let waiting: Vec<Future<u64>> = (0..5)
            .map(|x| executor.submit(square, (x,)).expect("submit"))
            .collect();
        // Waits for the blocked call (ended by the task timeout). The calls no worker was
        // given are cancelled; those queued behind the blocked one on its worker (a worker
        // may hold a few) run on its replacement.
        executor.shutdown(true, true).expect("shutdown");
        assert!(matches!(
            blocked.result(),
            Err(PoolError::TaskTimeout { .. })
        ));
        let mut cancelled = 0;
        for (x, future) in (0..).zip(&waiting) {
            match future.result() {
                Err(PoolError::Cancelled) => {
                    assert!(future.cancelled());
                    cancelled += 1;
                }
                Ok(value) => assert_eq!(value, x * x),
                Err(other) => panic!("call {x}: {other:?}"),
            }
        }
        // The pool never gives a busy worker the last call waiting: it waits for a free one.
        assert!(cancelled >= 1);
        assert!(matches!(
            executor.submit(square, (1,)).map(|_| ()),
            Err(PoolError::NotRunning)
        ));
        executor
            .shutdown(true, false)
            .expect("a second shutdown is harmless");
        assert!(executor.worker_pids().is_empty());
    });
    // Without cancel_futures, shutdown runs what was submitted, and dropping waits.
    let (executor, _) = start_executor(method, 2);
    within(LIMIT, move || {
        let futures: Vec<Future<u64>> = (0..20)
            .map(|x| executor.submit(square, (x,)).expect("submit"))
            .collect();
        executor.shutdown(false, false).expect("shutdown");
        drop(executor);
        for (x, future) in (0..).zip(&futures) {
            assert!(future.done());
            assert_eq!(future.result().expect("ran"), x * x);
        }
    });
}

fn bad_options_are_errors(method: StartMethod) {
    let error = ProcessPoolExecutor::builder()
        .max_workers(0)
        .mp_context(method)
        .build()
        .map(|_| ())
        .expect_err("no workers");
    assert!(matches!(error, PoolError::NoProcesses), "{error:?}");
    let error = ProcessPoolExecutor::builder()
        .max_workers(1)
        .max_tasks_per_child(0)
        .mp_context(method)
        .build()
        .map(|_| ())
        .expect_err("no tasks per child");
    assert!(matches!(error, PoolError::NoTasksPerChild), "{error:?}");
    let executor = ProcessPoolExecutor::builder()
        .max_workers(1)
        .mp_context(method)
        .build()
        .expect("executor");
    within(LIMIT, move || {
        let closure = |x: u64| x;
        assert!(matches!(
            executor.submit(closure, (1,)).map(|_| ()),
            Err(PoolError::NeedsFunction)
        ));
        drop(executor);
    });
}
