//! What `shared::Barrier` guarantees across real processes: each party's `wait` returns once
//! all have arrived, with a distinct arrival index, generation after generation; `abort`,
//! `reset` and a timed-out wait break it for the parties waiting; and a party killed while
//! the others wait breaks it for them (`PartyDied`) instead of leaving them waiting for ever,
//! even while nobody has reaped the dead one (a zombie).
//!
//! Every child is bounded: one that does not exit within [`LIMIT`] is killed and the test
//! fails. Blocking calls in the test process have a timeout or run under [`within`].

use std::collections::BTreeSet;
use std::time::Duration;

use shared::{Barrier, BrokenBarrierError, Queue, StartMethod};

shared::enable_test_support!();

#[macro_use]
mod common;
use common::{Child, LIMIT, within};

under_every_start_method!(
    every_party_gets_a_distinct_index_in_every_generation,
    a_killed_waiting_party_breaks_it_for_the_others,
    abort_breaks_it_for_a_waiting_child,
);

/// What a child's wait ended with, as it reports it.
fn outcome(result: Result<usize, BrokenBarrierError>) -> String {
    match result {
        Ok(index) => format!("index {index}"),
        Err(BrokenBarrierError::Broken) => "broken".to_owned(),
        Err(BrokenBarrierError::PartyDied) => "party died".to_owned(),
        Err(error) => format!("error {error}"),
    }
}

/// Waits `generations` times, reporting each outcome.
fn wait_and_report(barrier: Barrier, outcomes: Queue<String>, generations: u32) {
    for _ in 0..generations {
        let result = outcome(barrier.wait_timeout(LIMIT));
        let _ = outcomes.put(result);
    }
}

/// Waits until `n` parties wait at the barrier: the only way to know that a child is inside
/// `wait` (bounded by [`within`]).
fn until_waiting(barrier: &Barrier, n: usize) {
    let barrier = barrier.clone();
    within(LIMIT, move || {
        while barrier.n_waiting() < n {
            std::thread::yield_now();
        }
    });
}

fn every_party_gets_a_distinct_index_in_every_generation(method: StartMethod) {
    let barrier = Barrier::new(4).unwrap();
    let outcomes = Queue::new().unwrap();
    let mut children: Vec<_> = (0..3)
        .map(|_| {
            Child::start(
                method,
                wait_and_report,
                (barrier.clone(), outcomes.clone(), 3),
            )
        })
        .collect();
    let mut reported = Vec::new();
    for _ in 0..3 {
        let mine = barrier.wait_timeout(LIMIT).unwrap();
        reported.push(format!("index {mine}"));
    }
    for child in &mut children {
        child.expect_success();
    }
    while let Ok(outcome) = outcomes.get_nowait() {
        reported.push(outcome);
    }
    let indices: Vec<usize> = reported
        .iter()
        .map(|r| {
            r.strip_prefix("index ")
                .unwrap_or_else(|| panic!("{r}"))
                .parse()
                .unwrap()
        })
        .collect();
    assert_eq!(indices.len(), 12);
    // Each index 0..4 once per generation: three of each in all.
    for index in 0..4 {
        assert_eq!(
            indices.iter().filter(|&&i| i == index).count(),
            3,
            "{indices:?}"
        );
    }
    assert!(!barrier.broken());
    assert_eq!(barrier.n_waiting(), 0);
}

fn a_killed_waiting_party_breaks_it_for_the_others(method: StartMethod) {
    let barrier = Barrier::new(4).unwrap();
    let outcomes = Queue::new().unwrap();
    let mut victim = Child::start(
        method,
        wait_and_report,
        (barrier.clone(), outcomes.clone(), 1),
    );
    until_waiting(&barrier, 1);
    let mut survivor = Child::start(
        method,
        wait_and_report,
        (barrier.clone(), outcomes.clone(), 1),
    );
    until_waiting(&barrier, 2);
    // Killed, and not reaped while this process waits: a zombie, to the others.
    victim.kill().unwrap();
    let mine = {
        let barrier = barrier.clone();
        within(LIMIT, move || outcome(barrier.wait()))
    };
    assert_eq!(mine, "party died");
    survivor.expect_success();
    assert_eq!(outcomes.get_timeout(LIMIT).unwrap(), "party died");
    assert_eq!(victim.kill_and_reap(), -9);
    assert!(barrier.broken());
    // Broken until reset; then usable by the parties left.
    assert_eq!(outcome(barrier.wait_timeout(LIMIT)), "party died");
    barrier.reset().unwrap();
    assert!(!barrier.broken());
}

fn abort_breaks_it_for_a_waiting_child(method: StartMethod) {
    let barrier = Barrier::new(2).unwrap();
    let outcomes = Queue::new().unwrap();
    let mut child = Child::start(
        method,
        wait_and_report,
        (barrier.clone(), outcomes.clone(), 1),
    );
    until_waiting(&barrier, 1);
    barrier.abort().unwrap();
    child.expect_success();
    assert_eq!(outcomes.get_timeout(LIMIT).unwrap(), "broken");
    assert_eq!(outcome(barrier.wait()), "broken");
    barrier.reset().unwrap();
    let mut child = Child::start(
        method,
        wait_and_report,
        (barrier.clone(), outcomes.clone(), 1),
    );
    let mine = barrier.wait_timeout(LIMIT).unwrap();
    child.expect_success();
    let theirs = outcomes.get_timeout(LIMIT).unwrap();
    let both: BTreeSet<_> = [format!("index {mine}"), theirs].into();
    assert_eq!(both, ["index 0".to_owned(), "index 1".to_owned()].into());
}

#[test]
fn a_timed_out_wait_breaks_it_for_every_waiter() {
    let barrier = Barrier::new(3).unwrap();
    let other = barrier.clone();
    let waiter = std::thread::spawn(move || outcome(other.wait()));
    until_waiting(&barrier, 1);
    assert!(matches!(
        barrier.wait_timeout(Duration::from_millis(20)),
        Err(BrokenBarrierError::Broken)
    ));
    assert_eq!(within(LIMIT, move || waiter.join().unwrap()), "broken");
    assert!(barrier.broken());
}

#[test]
fn reset_breaks_it_for_the_waiters_and_leaves_it_usable() {
    let barrier = Barrier::new(2).unwrap();
    let other = barrier.clone();
    let waiter = std::thread::spawn(move || outcome(other.wait()));
    until_waiting(&barrier, 1);
    barrier.reset().unwrap();
    assert_eq!(within(LIMIT, move || waiter.join().unwrap()), "broken");
    assert!(!barrier.broken());
    assert_eq!(barrier.n_waiting(), 0);
    let other = barrier.clone();
    let waiter = std::thread::spawn(move || other.wait().unwrap());
    let mine = barrier.wait_timeout(LIMIT).unwrap();
    let theirs = within(LIMIT, move || waiter.join().unwrap());
    assert_eq!(BTreeSet::from([mine, theirs]), BTreeSet::from([0, 1]));
}

#[test]
fn parties_and_their_limits() {
    assert_eq!(Barrier::new(5).unwrap().parties(), 5);
    assert!(Barrier::new(0).is_err());
    assert!(Barrier::new(shared::MAX_PARTIES + 1).is_err());
    let one = Barrier::new(1).unwrap();
    assert_eq!((one.wait().unwrap(), one.wait().unwrap()), (0, 0));
}
