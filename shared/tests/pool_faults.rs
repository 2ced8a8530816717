//! `Pool` under faults from outside, each under every start method: workers stopped
//! (SIGSTOP) with work queued, kill storms during a large map, workers killed while they
//! start. Every wait is bounded: a hang fails the test instead of blocking it.

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
