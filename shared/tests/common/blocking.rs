//! Pool tasks that block for ever and say so first, for the tests of killing, timing out and
//! cancelling a worker's task. A pool's initializer `remember_started` gives its workers the
//! queue they say it on.

use std::sync::OnceLock;
use std::time::Duration;

use shared::Queue;

/// Where a worker tells the test that it started a blocking task: set by `remember_started`.
static STARTED: OnceLock<Queue<u32>> = OnceLock::new();

/// A pool initializer: blocking tasks of this worker say their start (the worker's PID) on
/// `started`.
pub fn remember_started(started: Queue<u32>) {
    let _ = STARTED.set(started);
}

/// Says it started (its worker's PID), then never finishes.
pub fn blocks_forever(_: u64) -> u64 {
    if let Some(started) = STARTED.get() {
        let _ = started.put(std::process::id());
    }
    loop {
        std::thread::sleep(Duration::from_secs(3600));
    }
}

/// Blocks for ever on 0 (after saying so); squares anything else.
pub fn blocks_on_zero(x: u64) -> u64 {
    if x == 0 { blocks_forever(x) } else { x * x }
}
