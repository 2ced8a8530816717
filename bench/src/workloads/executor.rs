//! `ProcessPoolExecutor` workloads: one call at a time (`submit` then `result`), the latency
//! of a round trip through the executor, and `map` over many items, one per task.

use std::time::Instant;

use shared::ProcessPoolExecutor;

use super::{Outcome, check};
use crate::measurement::Measurement;

/// The trivial task: what is measured is the executor, not the work.
fn double(x: u64) -> u64 {
    2 * x
}

/// `count` times, on a 2-worker executor: `submit(double, x)` and wait for its `result()`.
/// Timed: the calls, after a warm-up call on each worker, as on the Python side.
pub fn submit_result(count: u64) -> Outcome {
    let executor = ProcessPoolExecutor::new(2)?;
    for x in 0..4 {
        executor.submit(double, (x,))?.result()?;
    }
    let start = Instant::now();
    let mut answered = true;
    for x in 0..count {
        answered &= executor.submit(double, (x,))?.result()? == 2 * x;
    }
    let elapsed = start.elapsed();
    check(answered, "every call came back with its result")?;
    executor.shutdown(true, false)?;
    Ok(Measurement::of_this_process(elapsed, count))
}

/// `map(double, range(count))` on a 2-worker executor, one item per task (Python's default
/// chunksize). Timed: the map and the reading of its results.
pub fn map(count: u64) -> Outcome {
    let executor = ProcessPoolExecutor::new(2)?;
    executor.map(double, 0..4)?.collect::<Result<Vec<_>, _>>()?;
    let start = Instant::now();
    let results = executor
        .map(double, 0..count)?
        .collect::<Result<Vec<_>, _>>()?;
    let elapsed = start.elapsed();
    check(results.len() as u64 == count, "one result per item")?;
    check(
        results.iter().zip(0..).all(|(&r, x)| r == 2 * x),
        "results in input order",
    )?;
    executor.shutdown(true, false)?;
    Ok(Measurement::of_this_process(elapsed, count))
}
