//! Synchronisation: a `Lock` acquired and released by one process, and a `Value` incremented
//! under its lock by two processes at once.

use std::error::Error;
use std::time::Instant;

use shared::{Lock, Process, Value};

use super::{Outcome, check};
use crate::measurement::Measurement;

/// `count` acquire+release pairs of a lock nobody else uses (after one warm-up pair).
pub fn lock_uncontended(count: u64) -> Outcome {
    let lock = Lock::new()?;
    drop(lock.acquire()?);
    let start = Instant::now();
    for _ in 0..count {
        drop(lock.acquire()?);
    }
    let elapsed = start.elapsed();
    check(lock.try_acquire()?.is_some(), "the lock is free at the end")?;
    Ok(Measurement::of_this_process(elapsed, count))
}

const PROCESSES: u64 = 2;

fn increment(counter: Value<u64>, count: u64) -> Result<(), Box<dyn Error>> {
    for _ in 0..count {
        *counter.get_lock()? += 1;
    }
    Ok(())
}

/// Two processes each add 1 `count` times to one `Value` under `get_lock()`; timed from the
/// first `start` to the last `join`, per increment.
pub fn value_contended(count: u64) -> Outcome {
    let counter = Value::new(0_u64)?;
    let mut processes: Vec<Process> = (0..PROCESSES)
        .map(|_| Process::new(increment, (counter.clone(), count)))
        .collect();
    let start = Instant::now();
    for process in &mut processes {
        process.start()?;
    }
    for process in &mut processes {
        process.join()?;
    }
    let elapsed = start.elapsed();
    let ops = PROCESSES * count;
    check(counter.value()? == ops, "no increment was lost")?;
    Ok(Measurement::of_this_process(elapsed, ops))
}
