//! `SharedMemory` create + attach + unlink: what a program pays to hand a fresh block of bytes
//! to another process by name (the attach is done here, in the same process, so that only the
//! segment's own costs are timed, not a child's start).

use std::error::Error;
use std::time::Instant;

use shared::SharedMemory;

use super::{Outcome, check};
use crate::measurement::Measurement;

/// One segment of `size` bytes: created, attached by name, closed twice, unlinked. Whether the
/// attached handle saw the creator's size and bytes.
fn cycle(size: usize) -> Result<bool, Box<dyn Error>> {
    let created = SharedMemory::create(size)?;
    created.write_at(0, b"ok")?;
    let attached = SharedMemory::attach(created.name())?;
    let seen = attached.size() == size && attached.read(0..2)? == b"ok";
    attached.close();
    created.unlink()?;
    created.close();
    Ok(seen)
}

/// `count` cycles (after one warm-up, which also starts the process's watchdog).
pub fn create_attach_unlink(size: usize, count: u64) -> Outcome {
    let mut seen = cycle(size)?;
    let start = Instant::now();
    for _ in 0..count {
        seen &= cycle(size)?;
    }
    let elapsed = start.elapsed();
    check(seen, "every attach saw the creator's size and bytes")?;
    Ok(Measurement::of_this_process(elapsed, count))
}
