//! A `Manager`'s round trips: a dict's write and read through a proxy, a batched update, and
//! the start and stop of a manager's server (issue 25's figures for CPython: 42 µs, 36 µs and
//! 7.2 ms).

use std::time::Instant;

use shared::Manager;

use super::{Outcome, check};
use crate::measurement::Measurement;

/// How many distinct keys the dict workloads cycle through.
const KEYS: u64 = 100;

/// How many pairs one `update` carries.
pub const BATCH: u64 = 100;

/// Runs `what` (`set`, `get`, `update` or `start_stop`) `count` times.
pub fn run(what: &str, count: u64) -> Outcome {
    match what {
        "start_stop" => start_stop(count),
        "set" | "get" | "update" => dict(what, count),
        other => Err(format!("unknown manager workload `{other}`").into()),
    }
}

fn keys() -> Vec<String> {
    (0..KEYS).map(|k| k.to_string()).collect()
}

/// `count` writes (`set`), reads (`get`), or batches of [`BATCH`] writes (`update`, counted
/// per pair) of a manager's dict, after one warm-up pass over every key.
fn dict(what: &str, count: u64) -> Outcome {
    let manager = Manager::new()?;
    let dict = manager.dict::<String, u64>()?;
    let keys = keys();
    dict.update(keys.iter().cloned().zip(0..))?;
    let start = Instant::now();
    let ops = match what {
        "set" => {
            for i in 0..count {
                dict.set(&keys[(i % KEYS) as usize], &i)?;
            }
            count
        }
        "get" => {
            let mut found = 0;
            for i in 0..count {
                found += u64::from(dict.get(&keys[(i % KEYS) as usize])?.is_some());
            }
            check(found == count, "every key was found")?;
            count
        }
        _ => {
            for i in 0..count {
                dict.update(keys.iter().cloned().map(|key| (key, i)))?;
            }
            count * BATCH
        }
    };
    let elapsed = start.elapsed();
    check(dict.len()? == KEYS as usize, "the dict holds every key")?;
    manager.shutdown()?;
    Ok(Measurement::of_this_process(elapsed, ops))
}

/// `count` managers started (the server listening) and shut down (the server joined).
fn start_stop(count: u64) -> Outcome {
    let start = Instant::now();
    for _ in 0..count {
        let manager = Manager::new()?;
        manager.shutdown()?;
    }
    Ok(Measurement::of_this_process(start.elapsed(), count))
}
