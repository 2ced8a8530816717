//! `JoinableQueue`: two daemonic workers take tasks and mark them done; the main process puts
//! them all and joins the queue.

use std::error::Error;
use std::time::Instant;

use shared::{JoinableQueue, Process};

use super::Outcome;
use crate::measurement::Measurement;

const WORKERS: usize = 2;

fn worker(tasks: JoinableQueue<String>) -> Result<(), Box<dyn Error>> {
    loop {
        tasks.get()?;
        tasks.task_done()?;
    }
}

/// Puts `count` small tasks, then waits in `join` until the workers marked them all done.
/// The workers are started before the timer and left to end with the main process.
pub fn run(count: u64) -> Outcome {
    let tasks = JoinableQueue::new()?;
    let mut workers = Vec::with_capacity(WORKERS);
    for _ in 0..WORKERS {
        let mut process = Process::new(worker, (tasks.clone(),)).daemon(true);
        process.start()?;
        workers.push(process);
    }
    let start = Instant::now();
    for i in 0..count {
        tasks.put(format!("tarefa {i}"))?;
    }
    tasks.join();
    Ok(Measurement::of_this_process(start.elapsed(), count))
}
