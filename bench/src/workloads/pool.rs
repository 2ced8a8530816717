//! `Pool` workloads: `map` with Python's default chunking and with one item per chunk, a
//! pool's whole life (start, a two-item `map`, close, join), and the `Queue` round trip that
//! the one-item-per-chunk cost is compared with.

use std::error::Error;
use std::time::Instant;

use shared::{Pool, Process, Queue};

use super::{Outcome, check};
use crate::measurement::Measurement;

/// The trivial task: what is measured is the pool, not the work.
fn double(x: u64) -> u64 {
    2 * x
}

/// `map(double, range(count))` on a 2-worker pool, in chunks of `chunksize` items (0: Python's
/// default, about four chunks per worker). Timed: the `map` call alone.
pub fn map(chunksize: usize, count: u64) -> Outcome {
    let pool = Pool::new(2)?;
    // Warm-up: both workers have run something before the timer starts, as on the Python side.
    pool.chunked(1).map(double, 0..4)?;
    let start = Instant::now();
    let results = if chunksize == 0 {
        pool.map(double, 0..count)?
    } else {
        pool.chunked(chunksize).map(double, 0..count)?
    };
    let elapsed = start.elapsed();
    check(results.len() as u64 == count, "one result per item")?;
    check(
        results.iter().zip(0..).all(|(&r, x)| r == 2 * x),
        "results in input order",
    )?;
    pool.close();
    pool.join()?;
    Ok(Measurement::of_this_process(elapsed, count))
}

/// `count` times: a 2-worker pool starts, maps `double` over two items, is closed and joined.
pub fn startup(count: u64) -> Outcome {
    let start = Instant::now();
    for _ in 0..count {
        let pool = Pool::new(2)?;
        let results = pool.map(double, 0..2)?;
        check(results == [0, 2], "the two results")?;
        pool.close();
        pool.join()?;
    }
    Ok(Measurement::of_this_process(start.elapsed(), count))
}

/// Sends back each of `count + 1` items (one is the warm-up).
fn echo(requests: Queue<u64>, replies: Queue<u64>, count: u64) -> Result<(), Box<dyn Error>> {
    for _ in 0..=count {
        replies.put(requests.get()?)?;
    }
    Ok(())
}

/// `count` round trips (after one warm-up): the main process puts an integer on one queue, a
/// child gets it and puts it on another, the main process gets it.
pub fn queue_ping_pong(count: u64) -> Outcome {
    let (requests, replies) = (Queue::new()?, Queue::new()?);
    let mut child = Process::new(echo, (requests.clone(), replies.clone(), count));
    child.start()?;
    requests.put(0)?;
    replies.get()?;
    let start = Instant::now();
    let mut answered = true;
    for i in 0..count {
        requests.put(i)?;
        answered &= replies.get()? == i;
    }
    let elapsed = start.elapsed();
    child.join()?;
    check(answered, "every item came back")?;
    check(child.exitcode() == Some(0), "the echo child exited with 0")?;
    Ok(Measurement::of_this_process(elapsed, count))
}
