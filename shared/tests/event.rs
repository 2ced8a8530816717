//! What `shared::Event` guarantees across real processes: a `set` in one process wakes the
//! waiters in others, a waiter sees the flag that another process set or cleared, and
//! `wait_timeout` returns the flag.
//!
//! Every child is bounded: one that does not exit within [`LIMIT`] is killed and the test
//! fails. Blocking calls in the test process have a timeout or run under [`within`].

use std::time::Duration;

use shared::{Event, Queue, StartMethod};

shared::enable_test_support!();

#[macro_use]
mod common;
use common::{Child, LIMIT, within};

under_every_start_method!(
    a_set_wakes_waiters_in_other_processes,
    a_child_sets_what_the_parent_waits_for,
    a_ping_pong_of_two_events,
);

/// Says it is about to wait, then waits for `event` (failing after [`LIMIT`]).
fn wait_for(event: Event, waiting: Queue<u32>) -> Result<(), String> {
    waiting.put(std::process::id()).map_err(|e| e.to_string())?;
    if event.wait_timeout(LIMIT) {
        Ok(())
    } else {
        Err("never set".to_owned())
    }
}

fn a_set_wakes_waiters_in_other_processes(method: StartMethod) {
    let event = Event::new().unwrap();
    let waiting = Queue::new().unwrap();
    let mut children: Vec<_> = (0..3)
        .map(|_| Child::start(method, wait_for, (event.clone(), waiting.clone())))
        .collect();
    for _ in &children {
        waiting.get_timeout(LIMIT).unwrap();
    }
    event.set();
    for child in &mut children {
        child.expect_success();
    }
    assert!(event.is_set());
}

fn set_it(event: Event) {
    event.set();
}

fn a_child_sets_what_the_parent_waits_for(method: StartMethod) {
    let event = Event::new().unwrap();
    let mut child = Child::start(method, set_it, (event.clone(),));
    let waited = {
        let event = event.clone();
        within(LIMIT, move || event.wait())
    };
    assert!(waited && event.is_set());
    child.expect_success();
    event.clear();
    assert!(!event.is_set());
    assert!(!event.wait_timeout(Duration::from_millis(20)));
}

/// Answers each `ping` with a `pong`, `rounds` times, clearing what it waited for.
fn pong(ping: Event, pong: Event, rounds: u32) -> Result<(), String> {
    for _ in 0..rounds {
        if !ping.wait_timeout(LIMIT) {
            return Err("no ping".to_owned());
        }
        ping.clear();
        pong.set();
    }
    Ok(())
}

/// The bench's workload, checked: every round trip completes, none is lost to a clear.
fn a_ping_pong_of_two_events(method: StartMethod) {
    let (ping, pong_event) = (Event::new().unwrap(), Event::new().unwrap());
    let mut child = Child::start(method, pong, (ping.clone(), pong_event.clone(), 500));
    for round in 0..500 {
        ping.set();
        assert!(pong_event.wait_timeout(LIMIT), "round {round}");
        pong_event.clear();
    }
    child.expect_success();
}

#[test]
fn set_clear_is_set_and_timeouts() {
    let event = Event::new().unwrap();
    assert!(!event.is_set());
    assert!(!event.wait_timeout(Duration::ZERO));
    assert!(!event.wait_timeout(Duration::from_millis(20)));
    event.set();
    event.set();
    assert!(event.is_set());
    assert!(event.wait());
    assert!(event.wait_timeout(Duration::ZERO));
    event.clear();
    event.clear();
    assert!(!event.is_set());
    assert!(format!("{event:?}").contains("is_set: false"));
}

#[test]
fn a_set_wakes_every_waiting_thread() {
    let event = Event::new().unwrap();
    let waiters: Vec<_> = (0..4)
        .map(|_| {
            let event = event.clone();
            std::thread::spawn(move || event.wait_timeout(LIMIT))
        })
        .collect();
    event.set();
    for waiter in waiters {
        assert!(within(LIMIT, move || waiter.join().unwrap()));
    }
}
