//! `ThreadQueue` between threads: the `joinable` workload with two daemonic worker threads
//! instead of processes, the counterpart of CPython's `queue.Queue` with `threading`.

use std::error::Error;
use std::time::Instant;

use shared::{Thread, ThreadQueue};

use super::Outcome;
use crate::measurement::Measurement;

const WORKERS: usize = 2;

fn worker(tasks: ThreadQueue<String>) -> Result<(), Box<dyn Error>> {
    loop {
        tasks.get()?;
        tasks.task_done()?;
    }
}

/// Puts `count` small tasks, then waits in `join` until the worker threads marked them all
/// done. The workers are started before the timer and left to end with the process.
pub fn run(count: u64) -> Outcome {
    let tasks = ThreadQueue::new();
    for _ in 0..WORKERS {
        Thread::new(worker, (tasks.clone(),)).daemon(true).start()?;
    }
    let start = Instant::now();
    for i in 0..count {
        tasks.put(format!("tarefa {i}"))?;
    }
    tasks.join();
    Ok(Measurement::of_this_process(start.elapsed(), count))
}
