//! A pool that replaces its workers thousands of times (`maxtasksperchild(1)`) leaves no
//! descriptor, thread or child process behind once dropped. Alone in its binary, so that no
//! other test opens descriptors or threads while it counts them.

use std::time::{Duration, Instant};

use shared::{Pool, StartMethod};

shared::enable_test_support!();

// Its one test runs both start methods in turn (not `under_both_start_methods!`, whose two
// tests would run at once and count each other's descriptors).
#[allow(unused_macros)]
mod common;
use common::{LIMIT, within};

fn square(x: u64) -> u64 {
    x * x
}

/// What this process holds: descriptors, threads, and children not yet reaped.
#[derive(Debug, PartialEq)]
struct Held {
    fds: usize,
    threads: usize,
    children: Vec<String>,
}

fn held() -> Held {
    let count = |dir| std::fs::read_dir(dir).expect(dir).count();
    let mut children = Vec::new();
    for task in std::fs::read_dir("/proc/self/task").expect("tasks") {
        let path = task.expect("task").path().join("children");
        let list = std::fs::read_to_string(path).unwrap_or_default();
        children.extend(list.split_whitespace().map(str::to_owned));
    }
    Held {
        fds: count("/proc/self/fd"),
        threads: count("/proc/self/task"),
        children,
    }
}

/// Waits (at most `LIMIT`) until the process holds what it held `before`: a watcher thread
/// that has reported its worker's end may take a moment more to exit.
fn back_to(before: &Held) {
    let deadline = Instant::now() + LIMIT;
    loop {
        let now = held();
        if now == *before {
            return;
        }
        assert!(Instant::now() < deadline, "leaked: {before:?} -> {now:?}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn thousands_of_worker_replacements_leave_nothing_behind() {
    for (method, tasks) in [(StartMethod::Fork, 2000), (StartMethod::Spawn, 300)] {
        let before = held();
        let pool = Pool::builder()
            .processes(2)
            .maxtasksperchild(1)
            .start_method(method)
            .build()
            .expect("pool");
        let squares = within(4 * LIMIT, {
            let squares = pool.chunked(1).map_async(square, 0..tasks).expect("map");
            move || squares.get()
        });
        assert_eq!(squares.expect("map").len(), tasks as usize, "{method:?}");
        within(LIMIT, move || drop(pool));
        back_to(&before);
    }
}
