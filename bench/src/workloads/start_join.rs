//! Start and join processes one after the other: process creation is the workload.

use std::time::Instant;

use shared::{Process, StartMethod};

use super::{Outcome, check};
use crate::measurement::Measurement;

fn noop() {}

/// Starts and joins `count` processes running [`noop`] under `method`.
pub fn run(method: StartMethod, count: u64) -> Outcome {
    let start = Instant::now();
    for _ in 0..count {
        let mut process = Process::new(noop, ()).start_method(method);
        process.start()?;
        process.join()?;
        check(process.exitcode() == Some(0), "the child exited with 0")?;
    }
    Ok(Measurement::of_this_process(start.elapsed(), count))
}
