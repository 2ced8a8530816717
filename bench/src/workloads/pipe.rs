//! Pipe ping-pong latency: the main process sends a short message, a child sends it back.

use std::error::Error;
use std::time::Instant;

use shared::{Connection, Pipe, Process};

use super::{Outcome, check};
use crate::measurement::Measurement;

type TargetResult = Result<(), Box<dyn Error>>;

const MESSAGE: &str = "ping";

fn echo_objects(connection: Connection, count: u64) -> TargetResult {
    for _ in 0..=count {
        let message: String = connection.recv()?;
        connection.send(&message)?;
    }
    Ok(())
}

fn echo_bytes(connection: Connection, count: u64) -> TargetResult {
    for _ in 0..=count {
        connection.send_bytes(&connection.recv_bytes()?)?;
    }
    Ok(())
}

fn ping_objects(connection: &Connection) -> Result<bool, Box<dyn Error>> {
    connection.send(MESSAGE)?;
    Ok(connection.recv::<String>()? == MESSAGE)
}

fn ping_bytes(connection: &Connection) -> Result<bool, Box<dyn Error>> {
    connection.send_bytes(MESSAGE.as_bytes())?;
    Ok(connection.recv_bytes()? == MESSAGE.as_bytes())
}

/// `count` round trips (after one warm-up) of a short message; `mode` is `objects`
/// (`send`/`recv`) or `bytes` (`send_bytes`/`recv_bytes`).
pub fn ping_pong(mode: String, count: u64) -> Outcome {
    let (mine, theirs) = Pipe::new()?;
    let (mut process, ping): (Process, fn(&Connection) -> _) = match mode.as_str() {
        "objects" => (Process::new(echo_objects, (theirs, count)), ping_objects),
        "bytes" => (Process::new(echo_bytes, (theirs, count)), ping_bytes),
        other => return Err(format!("unknown mode `{other}`").into()),
    };
    process.start()?;
    ping(&mine)?;
    let start = Instant::now();
    let mut echoed = true;
    for _ in 0..count {
        echoed &= ping(&mine)?;
    }
    let elapsed = start.elapsed();
    process.join()?;
    check(echoed, "every message came back unchanged")?;
    check(
        process.exitcode() == Some(0),
        "the echo child exited with 0",
    )?;
    Ok(Measurement::of_this_process(elapsed, count))
}
