//! Integration tests of `Pool`, each under both start methods: every method, the order of
//! results, laziness, tasks that fail, workers that die, `maxtasksperchild`, `terminate`, and
//! that no worker outlives its pool. Every wait is bounded by `LIMIT`: a hang fails the test.

use std::collections::HashSet;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use shared::{Pool, PoolError, Queue, StartMethod};

shared::enable_test_support!();

#[macro_use]
mod common;
use common::blocking::{blocks_forever, blocks_on_zero, remember_started};
use common::{LIMIT, within};

under_both_start_methods!(
    map_gives_results_in_input_order_from_the_workers,
    chunk_sizes_and_starmap_keep_the_order,
    apply_and_async_results,
    imap_is_ordered_and_imap_unordered_gives_every_result,
    imap_reads_an_endless_input_lazily,
    a_task_error_or_panic_fails_only_that_call,
    a_task_that_kills_its_worker_fails_alone_and_the_pool_goes_on,
    a_worker_killed_mid_task_fails_its_task_within_the_limit,
    chunks_sent_with_a_killed_workers_task_run_elsewhere,
    maxtasksperchild_replaces_each_worker_after_its_tasks,
    terminate_fails_the_work_in_flight,
    no_worker_outlives_a_dropped_pool,
    close_refuses_new_work_and_join_needs_close,
    an_imap_goes_on_after_close_and_join_ends_its_input,
    the_initializer_runs_in_every_worker,
    a_failing_initializer_stops_the_pool_with_its_message,
    a_worker_that_dies_in_its_initializer_stops_the_pool,
    bad_options_and_arguments_are_errors,
);

/// A forked child that inherits a pool, a result and an iterator (a closure captures them) has
/// no supervisor: each use is an error there, at once, and dropping them harms nothing.
#[test]
fn a_forked_child_gets_errors_from_an_inherited_pool_and_its_results() {
    let (pool, started) = pool_telling_starts(StartMethod::Fork, 1);
    let blocked = pool.apply_async(blocks_forever, (0,)).expect("apply_async");
    started.get_timeout(LIMIT).expect("the task starts");
    let mut lazy = pool.imap(square, 0..3).expect("imap");
    let checks = Queue::new().expect("queue");
    let report = checks.clone();
    let mut child = common::Child::started(
        shared::Process::new(
            move || {
                let seen = [
                    matches!(blocked.get(), Err(PoolError::Broken(_))),
                    matches!(
                        blocked.get_timeout(Duration::from_secs(60)),
                        Err(PoolError::Broken(_))
                    ),
                    !blocked.ready(),
                    matches!(pool.map(square, 0..2), Err(PoolError::Broken(_))),
                    matches!(lazy.next(), Some(Err(PoolError::Broken(_)))),
                    lazy.next().is_none(),
                ];
                drop((blocked, lazy, pool));
                let _ = report.put(seen.to_vec());
            },
            (),
        )
        .start_method(StartMethod::Fork),
    );
    let seen: Vec<bool> = checks.get_timeout(LIMIT).expect("the child reports");
    assert_eq!(seen, [true; 6]);
    child.expect_success();
}

// ---------------------------------------------------------------------------------------------
// Tasks. A worker finds a task from its type, so all of them are plain functions.

fn square(x: u64) -> u64 {
    x * x
}

fn square_and_pid(x: u64) -> (u64, u64, u32) {
    (x, x * x, std::process::id())
}

fn pid(_: u64) -> u32 {
    std::process::id()
}

fn add(a: i64, b: i64) -> i64 {
    a + b
}

fn checked_half(x: i64) -> Result<i64, String> {
    if x % 2 == 0 {
        Ok(x / 2)
    } else {
        Err(format!("{x} é ímpar"))
    }
}

fn panics_on_three(x: u64) -> u64 {
    assert_ne!(x, 3, "três não");
    x
}

/// Kills its own worker on 3, as the OOM killer would.
fn dies_on_three(x: u64) -> u64 {
    if x == 3 {
        let _ = kill(Pid::this(), Signal::SIGKILL);
    }
    x
}

static GREETING: OnceLock<String> = OnceLock::new();

fn set_greeting(greeting: String) {
    let _ = GREETING.set(greeting);
}

fn greeting(_: u64) -> String {
    GREETING.get().cloned().unwrap_or_default()
}

fn refuses_to_start(why: String) -> Result<(), String> {
    Err(why)
}

/// Dies in the initializer, as a worker the OOM killer picks while it loads its data.
fn dies_while_starting() {
    let _ = kill(Pid::this(), Signal::SIGKILL);
}

fn pool(method: StartMethod, processes: usize) -> Pool {
    Pool::builder()
        .processes(processes)
        .start_method(method)
        .build()
        .expect("pool")
}

/// Whether `pid` is still there for the pool to deal with: running, or a zombie of ours that
/// the pool never reaped. A zombie of another parent has ended and is not the pool's to reap:
/// a forkserved worker stays one in its server for a moment after the pool collected its end,
/// and `kill(pid, 0)` alone still finds it.
/// A pool whose workers put their PID on the returned queue when a task of theirs that calls
/// `blocks_forever` starts.
fn pool_telling_starts(method: StartMethod, processes: usize) -> (Pool, Queue<u32>) {
    let started = Queue::new().expect("queue");
    let pool = Pool::builder()
        .processes(processes)
        .initializer(remember_started, (started.clone(),))
        .start_method(method)
        .build()
        .expect("pool");
    (pool, started)
}

fn is_running(pid: u32) -> bool {
    let ended_elsewhere = std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        // After the command, which is in parentheses and may hold anything: state, parent.
        let mut fields = stat
            .rsplit_once(')')
            .map_or("", |(_, rest)| rest)
            .split_whitespace();
        let (state, parent) = (fields.next(), fields.next());
        state == Some("Z") && parent != Some(&std::process::id().to_string())
    });
    kill(Pid::from_raw(pid as i32), None).is_ok() && !ended_elsewhere
}

// ---------------------------------------------------------------------------------------------

fn map_gives_results_in_input_order_from_the_workers(method: StartMethod) {
    let pool = pool(method, 2);
    let results = pool.map(square_and_pid, 0..100).expect("map");
    let numbers: Vec<u64> = results.iter().map(|&(x, _, _)| x).collect();
    assert_eq!(numbers, (0..100).collect::<Vec<_>>());
    assert!(results.iter().all(|&(x, sq, _)| sq == x * x));
    let pids: HashSet<u32> = results.iter().map(|&(_, _, pid)| pid).collect();
    assert!(pids.len() <= 2, "{pids:?}: more PIDs than workers");
    assert!(
        !pids.contains(&std::process::id()),
        "the main process ran a task"
    );
    let workers: HashSet<u32> = pool.worker_pids().into_iter().collect();
    assert!(pids.is_subset(&workers), "{pids:?} not among {workers:?}");
    // The element type is spelled out: with serde_json in the graph, `u64 == _` has two
    // candidate impls and `[]` alone no longer infers.
    let empty: [u64; 0] = [];
    assert_eq!(pool.map(square, Vec::new()).expect("empty map"), empty);
}

fn chunk_sizes_and_starmap_keep_the_order(method: StartMethod) {
    let pool = pool(method, 2);
    let expected: Vec<u64> = (0..50).map(|x| x * x).collect();
    for chunksize in [1, 7, 50, 1000] {
        let results = pool.chunked(chunksize).map(square, 0..50).expect("map");
        assert_eq!(results, expected, "chunksize {chunksize}");
    }
    let pairs: Vec<(i64, i64)> = (0..20).map(|i| (i, 10 * i)).collect();
    let sums = pool.starmap(add, pairs.clone()).expect("starmap");
    assert_eq!(sums, (0..20).map(|i| 11 * i).collect::<Vec<_>>());
    let sums = pool
        .chunked(3)
        .starmap_async(add, pairs)
        .expect("starmap_async");
    assert_eq!(sums.get().expect("get").len(), 20);
    let later = pool.map_async(square, 0..10).expect("map_async");
    assert_eq!(later.get().expect("get"), expected[..10]);
    assert_eq!(later.get().expect("a second get"), expected[..10]);
}

fn apply_and_async_results(method: StartMethod) {
    let pool = pool(method, 2);
    assert_eq!(pool.apply(add, (2, 3)).expect("apply"), 5);
    let result = pool.apply_async(square, (9,)).expect("apply_async");
    assert!(result.wait_timeout(LIMIT), "no result within {LIMIT:?}");
    assert!(result.ready());
    assert!(result.successful().expect("ready"));
    assert_eq!(result.get_timeout(LIMIT).expect("get_timeout"), 81);

    let failing = pool.apply_async(checked_half, (3,)).expect("apply_async");
    failing.wait();
    assert!(!failing.successful().expect("ready"));
    assert!(matches!(failing.get(), Err(PoolError::Task(m)) if m == "3 é ímpar"));

    // A result that is not there yet: `successful` says so, `get_timeout` gives up.
    let started = Queue::new().expect("queue");
    let pool_with_start = Pool::builder()
        .processes(1)
        .initializer(remember_started, (started.clone(),))
        .start_method(method)
        .build()
        .expect("pool");
    let blocked = pool_with_start
        .apply_async(blocks_forever, (0,))
        .expect("apply_async");
    started.get_timeout(LIMIT).expect("the task starts");
    assert!(matches!(blocked.successful(), Err(PoolError::NotReady)));
    assert!(matches!(
        blocked.get_timeout(Duration::from_millis(50)),
        Err(PoolError::Timeout)
    ));
    assert!(!blocked.ready());
}

fn imap_is_ordered_and_imap_unordered_gives_every_result(method: StartMethod) {
    let pool = pool(method, 2);
    let ordered: Vec<u64> = pool
        .imap(square, 0..40)
        .expect("imap")
        .collect::<Result<_, _>>()
        .expect("results");
    assert_eq!(ordered, (0..40).map(|x| x * x).collect::<Vec<_>>());
    let chunked: Vec<u64> = pool
        .chunked(6)
        .imap(square, 0..40)
        .expect("imap")
        .collect::<Result<_, _>>()
        .expect("results");
    assert_eq!(chunked, ordered);
    let mut unordered: Vec<u64> = pool
        .imap_unordered(square, 0..40)
        .expect("imap_unordered")
        .collect::<Result<_, _>>()
        .expect("results");
    unordered.sort_unstable();
    assert_eq!(unordered, ordered);
}

fn imap_reads_an_endless_input_lazily(method: StartMethod) {
    let pool = pool(method, 2);
    let read = AtomicUsize::new(0);
    let endless = (0u64..).inspect(|_| {
        read.fetch_add(1, Ordering::Relaxed);
    });
    let first: Vec<u64> = pool
        .imap(square, endless)
        .expect("imap")
        .take(5)
        .collect::<Result<_, _>>()
        .expect("results");
    assert_eq!(first, [0, 1, 4, 9, 16]);
    // At most 64 chunks of one item per worker are in flight beyond what was consumed.
    let read = read.load(Ordering::Relaxed);
    assert!(read <= 5 + 128, "imap read {read} items ahead of 5 results");
    // The pool goes on after an iterator was dropped with chunks in flight.
    assert_eq!(pool.apply(square, (4,)).expect("apply"), 16);
}

fn a_task_error_or_panic_fails_only_that_call(method: StartMethod) {
    let pool = pool(method, 2);
    let halves: Vec<_> = pool.imap(checked_half, 0..6).expect("imap").collect();
    assert_eq!(halves.len(), 6);
    for (x, half) in (0..6).zip(&halves) {
        match half {
            Ok(h) if x % 2 == 0 => assert_eq!(x, 2 * h),
            Err(PoolError::Task(m)) if x % 2 == 1 => assert_eq!(*m, format!("{x} é ímpar")),
            other => panic!("{x}: {other:?}"),
        }
    }
    assert!(
        matches!(pool.map(checked_half, [2, 4, 5, 7]), Err(PoolError::Task(m)) if m == "5 é ímpar")
    );
    let results: Vec<_> = pool.imap(panics_on_three, 0..6).expect("imap").collect();
    assert_eq!(results.len(), 6);
    for (x, result) in (0..6).zip(results) {
        match result {
            Ok(y) if x != 3 => assert_eq!(x, y),
            Err(PoolError::Task(m)) if x == 3 => {
                assert!(m.contains("três não"), "{m}");
                assert!(m.contains("pool.rs"), "no location in {m}");
            }
            other => panic!("{x}: {other:?}"),
        }
    }
    // Nobody died of it: the same workers carry on.
    let before: HashSet<u32> = pool.worker_pids().into_iter().collect();
    assert_eq!(pool.map(square, 0..4).expect("map"), [0, 1, 4, 9]);
    let after: HashSet<u32> = pool.worker_pids().into_iter().collect();
    assert_eq!(before, after);
}

fn a_task_that_kills_its_worker_fails_alone_and_the_pool_goes_on(method: StartMethod) {
    let pool = pool(method, 2);
    let results: Vec<_> = within(LIMIT, {
        let results = pool.imap(dies_on_three, 0..8).expect("imap");
        move || results.collect::<Vec<_>>()
    });
    assert_eq!(results.len(), 8);
    for (x, result) in (0..8).zip(&results) {
        match result {
            Ok(y) if x != 3 => assert_eq!(x, *y),
            Err(PoolError::WorkerDied { exitcode: -9, .. }) if x == 3 => {}
            other => panic!("item {x}: {other:?}"),
        }
    }
    let error = pool.map(dies_on_three, 0..8).expect_err("a worker dies");
    assert!(error.to_string().contains("SIGKILL"), "{error}");
    // The dead workers were replaced: the pool has its two workers and works.
    assert_eq!(
        pool.map(square, 0..10).expect("map after a death").len(),
        10
    );
    assert_eq!(pool.worker_pids().len(), 2);
}

fn a_worker_killed_mid_task_fails_its_task_within_the_limit(method: StartMethod) {
    let (pool, started) = pool_telling_starts(method, 1);
    let blocked = pool.apply_async(blocks_forever, (0,)).expect("apply_async");
    let queued = pool.apply_async(square, (5,)).expect("apply_async");
    let worker = started.get_timeout(LIMIT).expect("the task starts");
    kill(Pid::from_raw(worker as i32), Signal::SIGKILL).expect("kill");
    match blocked.get_timeout(LIMIT) {
        Err(PoolError::WorkerDied { pid, exitcode }) => {
            assert_eq!((pid, exitcode), (worker, -9));
        }
        other => panic!("expected WorkerDied, got {other:?}"),
    }
    // The call queued behind it ran on the replacement.
    assert_eq!(queued.get_timeout(LIMIT).expect("queued call"), 25);
    assert!(!pool.worker_pids().contains(&worker));
}

/// A worker is sent several chunks at once; killed while it runs the first, only that one
/// fails: the others, taken with it but never started, run on its replacement, once each.
fn chunks_sent_with_a_killed_workers_task_run_elsewhere(method: StartMethod) {
    let (pool, started) = pool_telling_starts(method, 1);
    let results = pool.imap(blocks_on_zero, 0..6).expect("imap");
    let worker = started.get_timeout(LIMIT).expect("the first task starts");
    kill(Pid::from_raw(worker as i32), Signal::SIGKILL).expect("kill");
    let results: Vec<_> = within(LIMIT, move || results.collect());
    assert_eq!(results.len(), 6);
    for (x, result) in (0..6).zip(&results) {
        match result {
            Err(PoolError::WorkerDied { pid, exitcode: -9 }) if x == 0 => assert_eq!(*pid, worker),
            Ok(y) if x > 0 => assert_eq!(*y, x * x),
            other => panic!("item {x}: {other:?}"),
        }
    }
}

fn maxtasksperchild_replaces_each_worker_after_its_tasks(method: StartMethod) {
    let pool = Pool::builder()
        .processes(1)
        .maxtasksperchild(2)
        .start_method(method)
        .build()
        .expect("pool");
    let pids = pool.chunked(1).map(pid, 0..6).expect("map");
    let distinct: HashSet<u32> = pids.iter().copied().collect();
    assert_eq!(distinct.len(), 3, "{pids:?}");
    for pair in pids.chunks(2) {
        assert_eq!(pair[0], pair[1], "{pids:?}");
    }
}

fn terminate_fails_the_work_in_flight(method: StartMethod) {
    let (pool, started) = pool_telling_starts(method, 2);
    let workers = pool.worker_pids();
    let blocked: Vec<_> = (0..4)
        .map(|i| pool.apply_async(blocks_forever, (i,)).expect("apply_async"))
        .collect();
    started.get_timeout(LIMIT).expect("a task starts");
    pool.terminate();
    for result in &blocked {
        assert!(matches!(
            result.get_timeout(LIMIT),
            Err(PoolError::Terminated)
        ));
    }
    within(LIMIT, move || {
        pool.join().expect("join");
        for worker in workers {
            assert!(!is_running(worker), "worker {worker} survived terminate");
        }
        assert!(matches!(pool.map(square, 0..2), Err(PoolError::NotRunning)));
    });
}

fn no_worker_outlives_a_dropped_pool(method: StartMethod) {
    let (pool, started) = pool_telling_starts(method, 2);
    let workers = pool.worker_pids();
    let _busy = pool.apply_async(blocks_forever, (0,)).expect("apply_async");
    started.get_timeout(LIMIT).expect("the task starts");
    within(LIMIT, move || drop(pool));
    for worker in workers {
        assert!(!is_running(worker), "worker {worker} outlived its pool");
    }
}

fn close_refuses_new_work_and_join_needs_close(method: StartMethod) {
    let pool = pool(method, 2);
    assert!(matches!(pool.join(), Err(PoolError::StillRunning)));
    let pending = pool.map_async(square, 0..20).expect("map_async");
    pool.close();
    assert!(matches!(
        pool.apply(square, (1,)),
        Err(PoolError::NotRunning)
    ));
    let workers = pool.worker_pids();
    within(LIMIT, move || {
        pool.join().expect("join");
        // Closing let the submitted work finish.
        assert_eq!(pending.get().expect("get").len(), 20);
        for worker in workers {
            assert!(!is_running(worker), "worker {worker} survived close+join");
        }
    });
}

fn an_imap_goes_on_after_close_and_join_ends_its_input(method: StartMethod) {
    let pool = pool(method, 2);
    // Python's `imap` reads its input before close: every result comes, before or after join.
    let read_later = pool.imap(square, 0..40).expect("imap");
    let read_after_join = pool.imap_unordered(square, 0..10).expect("imap_unordered");
    let endless = pool.imap(square, 0u64..).expect("imap");
    pool.close();
    let (pool, squares) = within(LIMIT, move || {
        let squares: Vec<u64> = read_later.collect::<Result<_, _>>().expect("after close");
        (pool, squares)
    });
    assert_eq!(squares, (0..40).map(|x| x * x).collect::<Vec<_>>());
    // `join` ends the reading of an input: an endless one does not keep the pool alive.
    let (pool, endless) = within(LIMIT, move || {
        pool.join().expect("join");
        (pool, endless)
    });
    let mut unordered: Vec<u64> = read_after_join
        .collect::<Result<_, _>>()
        .expect("sent before join");
    unordered.sort_unstable();
    assert_eq!(unordered, (0..10).map(|x| x * x).collect::<Vec<_>>());
    // What `endless` sent before `join` ran; what it read after fails.
    // (More than it can have in flight: 64 chunks of one item per worker.)
    let results: Vec<_> = endless.take(1000).collect();
    let sent = results.iter().take_while(|result| result.is_ok()).count();
    assert!((1..1000).contains(&sent), "{results:?}");
    for (x, result) in (0..).zip(&results) {
        match result {
            Ok(y) => assert!(x < sent as u64 && *y == x * x, "{x}: {y}"),
            Err(PoolError::NotRunning) => assert!(x >= sent as u64),
            Err(other) => panic!("{x}: {other}"),
        }
    }
    drop(pool);
}

fn the_initializer_runs_in_every_worker(method: StartMethod) {
    let pool = Pool::builder()
        .processes(2)
        .initializer(set_greeting, ("olá".to_owned(),))
        .start_method(method)
        .build()
        .expect("pool");
    let greetings = pool.chunked(1).map(greeting, 0..8).expect("map");
    assert!(greetings.iter().all(|g| g == "olá"), "{greetings:?}");
}

fn a_failing_initializer_stops_the_pool_with_its_message(method: StartMethod) {
    let pool = Pool::builder()
        .processes(2)
        .initializer(refuses_to_start, ("sem configuração".to_owned(),))
        .start_method(method)
        .build()
        .expect("pool");
    let result = within(LIMIT, {
        let result = pool.map_async(square, 0..4);
        move || result.and_then(|r| r.get())
    });
    assert!(
        matches!(&result, Err(PoolError::Initializer(m)) if m == "sem configuração"),
        "{result:?}"
    );
    assert!(matches!(
        pool.apply(square, (1,)),
        Err(PoolError::Initializer(_))
    ));
}

fn a_worker_that_dies_in_its_initializer_stops_the_pool(method: StartMethod) {
    // Replacing it would start workers that die the same way for ever, and `get` would wait
    // for ever; this is the initializer failing, so the pool stops with how the worker died.
    let pool = Pool::builder()
        .processes(2)
        .initializer(dies_while_starting, ())
        .start_method(method)
        .build()
        .expect("pool");
    let result = pool
        .map_async(square, 0..4)
        .and_then(|r| r.get_timeout(LIMIT));
    match &result {
        Err(PoolError::Initializer(m)) => assert!(m.contains("SIGKILL"), "{m}"),
        other => panic!("expected Initializer, got {other:?}"),
    }
    assert!(matches!(
        pool.apply(square, (1,)),
        Err(PoolError::Initializer(_))
    ));
    within(LIMIT, move || drop(pool));
}

fn bad_options_and_arguments_are_errors(method: StartMethod) {
    let build = |processes, maxtasks| {
        Pool::builder()
            .processes(processes)
            .maxtasksperchild(maxtasks)
            .start_method(method)
            .build()
    };
    assert!(matches!(build(0, 1), Err(PoolError::NoProcesses)));
    assert!(matches!(build(1, 0), Err(PoolError::NoTasksPerChild)));
    let pool = pool(method, 1);
    assert!(matches!(
        pool.chunked(0).map(square, 0..3),
        Err(PoolError::NoChunksize)
    ));
    let closure = |x: u64| x + 1;
    assert!(matches!(
        pool.map(closure, 0..3),
        Err(PoolError::NeedsFunction)
    ));
    let queue: Queue<u32> = Queue::new().expect("queue");
    fn len(queue: Queue<u32>) -> usize {
        queue.qsize()
    }
    assert!(matches!(
        pool.apply(len, (queue,)),
        Err(PoolError::Arguments(_))
    ));
}
