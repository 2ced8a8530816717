//! Event ping-pong latency: the main process sets one event, a child waits for it, clears it
//! and sets another, which the main process waits for and clears.

use std::error::Error;
use std::time::Instant;

use shared::{Event, Process};

use super::{Outcome, check};
use crate::measurement::Measurement;

/// Answers `count + 1` pings (one is the warm-up) with a pong.
fn pong(ping: Event, pong: Event, count: u64) -> Result<(), Box<dyn Error>> {
    for _ in 0..=count {
        ping.wait();
        ping.clear();
        pong.set();
    }
    Ok(())
}

fn round_trip(ping: &Event, pong: &Event) -> bool {
    ping.set();
    let answered = pong.wait();
    pong.clear();
    answered
}

/// `count` round trips (after one warm-up) of a set and a wait each way.
pub fn ping_pong(count: u64) -> Outcome {
    let (ping, pong_event) = (Event::new()?, Event::new()?);
    let mut process = Process::new(pong, (ping.clone(), pong_event.clone(), count));
    process.start()?;
    round_trip(&ping, &pong_event);
    let start = Instant::now();
    let mut answered = true;
    for _ in 0..count {
        answered &= round_trip(&ping, &pong_event);
    }
    let elapsed = start.elapsed();
    process.join()?;
    check(answered, "every ping was answered")?;
    check(
        process.exitcode() == Some(0),
        "the pong child exited with 0",
    )?;
    Ok(Measurement::of_this_process(elapsed, count))
}
