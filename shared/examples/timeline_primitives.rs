//! Every primitive the timeline records, in one run, for `tests/tests/timeline.rs`: an
//! `RLock`, a `Semaphore` and a `Barrier` across two processes, a `Condition`, an `Event` and
//! a `ThreadQueue` between two threads.
//!
//! ```text
//! cargo run -q -p shared --example timeline_primitives -- run.json
//! ```

use std::error::Error;

use shared::{Barrier, Condition, Event, Process, RLock, Semaphore, Thread, ThreadQueue};

fn main() -> Result<(), Box<dyn Error>> {
    shared::init()?;
    // The last argument (the tests' runner puts `--start-method` first, which changes nothing
    // here: every process is started with the default method).
    let path = std::env::args()
        .skip(1)
        .last()
        .ok_or("usage: timeline_primitives FILE.json")?;
    shared::record_timeline(shared::TimelineOutput::Json(path.into()))?;

    // Each process records its first two lock events: here, an RLock's.
    let rlock = RLock::new()?;
    drop(rlock.acquire()?);

    // A child takes a semaphore's unit, and meets this process at a barrier.
    let semaphore = Semaphore::new(1)?;
    let barrier = Barrier::new(2)?;
    let mut child = Process::new(child_side, (semaphore, barrier.clone()));
    child.start()?;
    barrier.wait()?;
    child.join()?;

    // A thread waits on a condition; the event says it holds the condition's lock, so this
    // thread's acquire returns only once the other waits (which releases it).
    let condition = Condition::new()?;
    let holding = Event::new()?;
    let queue = ThreadQueue::new();
    let mut thread = Thread::new(
        thread_side,
        (condition.clone(), holding.clone(), queue.clone()),
    );
    thread.start()?;
    holding.wait();
    {
        let _guard = condition.acquire()?;
        queue.put(1_u32)?;
        condition.notify_all();
    }
    thread.join()?;
    Ok(())
}

fn child_side(semaphore: Semaphore, barrier: Barrier) -> Result<(), Box<dyn Error>> {
    drop(semaphore.acquire()?);
    barrier.wait()?;
    Ok(())
}

fn thread_side(
    condition: Condition<RLock>,
    holding: Event,
    queue: ThreadQueue<u32>,
) -> Result<(), Box<dyn Error>> {
    let guard = condition.acquire()?;
    holding.set();
    let _guard = condition.wait_for(guard, || !queue.empty())?;
    queue.get()?;
    Ok(())
}
