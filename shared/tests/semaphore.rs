//! What `shared::Semaphore` and `shared::BoundedSemaphore` guarantee across real processes:
//! a semaphore of one excludes (a read-modify-write of a file under it loses no update), a
//! bounded one of two admits at most two at once, a `release` from a process that never
//! acquired reaches an acquirer in another, a bounded one refuses a release past its bound,
//! and a holder killed with a unit never hangs the others: the next acquirer gets the unit and
//! is told (`AcquireError::OwnerDied`).
//!
//! Every child is bounded: one that does not exit within [`LIMIT`] is killed and the test
//! fails. Blocking calls in the test process have a timeout or run under [`within`].

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use shared::{
    AcquireError, BoundedSemaphore, Queue, ReleaseError, Semaphore, SemaphoreGuard, StartMethod,
};

shared::enable_test_support!();

#[macro_use]
mod common;
use common::{Child, LIMIT, within};

/// Fork only: a spawned child is a new program, which inherits no guard.
mod fork_only {
    #[test]
    fn guards_inherited_by_a_forked_child_give_nothing_back() {
        super::guards_inherited_by_a_forked_child_give_nothing_back();
    }
}

under_every_start_method!(
    a_semaphore_of_one_loses_no_update,
    a_bounded_semaphore_of_two_admits_at_most_two,
    a_release_in_one_process_wakes_an_acquire_in_another,
    a_killed_holder_is_reported_to_the_next_acquirer,
    a_killed_holder_is_reported_to_an_acquirer_already_waiting,
);

type TargetResult = Result<(), String>;

/// A fresh directory for one test's files.
fn scratch(test: &str) -> PathBuf {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!(
        "shared-semaphore-{test}-{}-{n}",
        std::process::id()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Reads the number in `file`, yields the CPU, and writes it back plus one: two processes
/// doing this at once lose an update.
fn increment(file: &Path) -> Result<(), String> {
    let text = std::fs::read_to_string(file).map_err(|e| e.to_string())?;
    let n: u64 = text
        .trim()
        .parse()
        .map_err(|_| format!("not a number: {text:?}"))?;
    std::thread::yield_now();
    std::fs::write(file, (n + 1).to_string()).map_err(|e| e.to_string())
}

fn increment_under(semaphore: Semaphore, file: PathBuf, times: u32) -> TargetResult {
    for _ in 0..times {
        let _guard = semaphore.acquire().map_err(|e| e.to_string())?;
        increment(&file)?;
    }
    Ok(())
}

fn a_semaphore_of_one_loses_no_update(method: StartMethod) {
    let semaphore = Semaphore::new(1).unwrap();
    let file = scratch("count").join("count");
    std::fs::write(&file, "0").unwrap();
    let mut children: Vec<_> = (0..3)
        .map(|_| {
            Child::start(
                method,
                increment_under,
                (semaphore.clone(), file.clone(), 100),
            )
        })
        .collect();
    for child in &mut children {
        child.expect_success();
    }
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "300");
    assert_eq!(semaphore.get_value(), 1);
    std::fs::remove_dir_all(file.parent().unwrap()).unwrap();
}

/// Under the semaphore, adds a file of its own to `dir`, counts the files there (the holders
/// inside now), and removes its file; fails if it ever counts more than `most`.
fn count_holders(semaphore: BoundedSemaphore, dir: PathBuf, most: usize) -> TargetResult {
    let mine = dir.join(std::process::id().to_string());
    for _ in 0..50 {
        let _guard = semaphore.acquire().map_err(|e| e.to_string())?;
        std::fs::write(&mine, "").map_err(|e| e.to_string())?;
        std::thread::yield_now();
        let inside = std::fs::read_dir(&dir).map_err(|e| e.to_string())?.count();
        std::fs::remove_file(&mine).map_err(|e| e.to_string())?;
        if inside > most {
            return Err(format!("{inside} holders of a semaphore of {most}"));
        }
    }
    Ok(())
}

fn a_bounded_semaphore_of_two_admits_at_most_two(method: StartMethod) {
    let semaphore = BoundedSemaphore::new(2).unwrap();
    let dir = scratch("holders");
    let mut children: Vec<_> = (0..4)
        .map(|_| Child::start(method, count_holders, (semaphore.clone(), dir.clone(), 2)))
        .collect();
    for child in &mut children {
        child.expect_success();
    }
    assert_eq!(semaphore.get_value(), 2);
    assert!(matches!(
        semaphore.release(),
        Err(ReleaseError::TooManyReleases)
    ));
    std::fs::remove_dir_all(dir).unwrap();
}

fn release_times(semaphore: Semaphore, times: u32) -> TargetResult {
    for _ in 0..times {
        semaphore.release().map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// The signalling use: a `Semaphore(0)` that a producer releases and a consumer acquires for
/// good, in another process.
fn a_release_in_one_process_wakes_an_acquire_in_another(method: StartMethod) {
    let semaphore = Semaphore::new(0).unwrap();
    let mut child = Child::start(method, release_times, (semaphore.clone(), 3));
    for _ in 0..3 {
        let guard = semaphore.acquire_timeout(LIMIT).unwrap().expect("released");
        guard.forget();
    }
    child.expect_success();
    assert_eq!(semaphore.get_value(), 0);
}

/// Acquires a unit, says so with its PID, and holds it until killed.
fn hold_until_killed(semaphore: BoundedSemaphore, holding: Queue<u32>) -> TargetResult {
    let _guard = semaphore.acquire().map_err(|e| e.to_string())?;
    holding.put(std::process::id()).map_err(|e| e.to_string())?;
    loop {
        std::thread::park();
    }
}

fn a_killed_holder_is_reported_to_the_next_acquirer(method: StartMethod) {
    let semaphore = BoundedSemaphore::new(1).unwrap();
    let holding = Queue::new().unwrap();
    let mut child = Child::start(
        method,
        hold_until_killed,
        (semaphore.clone(), holding.clone()),
    );
    assert_eq!(holding.get_timeout(LIMIT).unwrap(), child.pid().unwrap());
    assert_eq!(semaphore.get_value(), 0);
    assert_eq!(child.kill_and_reap(), -9);
    let (died, value_after, again) = within(LIMIT, move || {
        let died = match semaphore.acquire_timeout(LIMIT) {
            Err(AcquireError::OwnerDied(guard)) => {
                drop(guard);
                true
            }
            _ => false,
        };
        let again = semaphore.acquire().map(drop).is_ok();
        (died, semaphore.get_value(), again)
    });
    assert!(died, "the next acquirer is told that the holder died");
    assert!(again, "and only the next one");
    assert_eq!(value_after, 1);
}

fn a_killed_holder_is_reported_to_an_acquirer_already_waiting(method: StartMethod) {
    let semaphore = BoundedSemaphore::new(1).unwrap();
    let holding = Queue::new().unwrap();
    let mut child = Child::start(
        method,
        hold_until_killed,
        (semaphore.clone(), holding.clone()),
    );
    holding.get_timeout(LIMIT).unwrap();
    let waiter = {
        let semaphore = semaphore.clone();
        std::thread::spawn(move || {
            // Sleeping in acquire when the holder dies: its death wakes nobody, and the
            // waiter must find the slot on its own.
            matches!(
                semaphore.acquire_timeout(LIMIT),
                Err(AcquireError::OwnerDied(_))
            )
        })
    };
    child.kill().unwrap();
    let died = within(LIMIT, move || waiter.join().unwrap());
    assert!(died);
    assert_eq!(child.kill_and_reap(), -9);
}

#[test]
fn values_releases_and_timeouts() {
    let semaphore = Semaphore::new(2).unwrap();
    assert_eq!(semaphore.get_value(), 2);
    let a = semaphore.acquire().unwrap();
    let b = semaphore.try_acquire().unwrap().expect("a second unit");
    assert_eq!(semaphore.get_value(), 0);
    assert!(semaphore.try_acquire().unwrap().is_none());
    let short = Duration::from_millis(20);
    assert!(semaphore.acquire_timeout(short).unwrap().is_none());
    // A release without a guard raises the count above its start, as Python's does.
    semaphore.release().unwrap();
    assert_eq!(semaphore.get_value(), 1);
    let credit = semaphore.acquire().unwrap();
    drop((a, b));
    assert_eq!(semaphore.get_value(), 2);
    drop(credit);
    assert_eq!(
        semaphore.get_value(),
        3,
        "a released unit, given back, is still there"
    );

    let bounded = BoundedSemaphore::new(1).unwrap();
    assert!(matches!(
        bounded.release(),
        Err(ReleaseError::TooManyReleases)
    ));
    bounded.acquire().unwrap().forget();
    assert_eq!(bounded.get_value(), 0);
    assert!(bounded.acquire_timeout(short).unwrap().is_none());
    bounded.release().unwrap();
    assert_eq!(bounded.get_value(), 1);
    assert!(matches!(
        bounded.release(),
        Err(ReleaseError::TooManyReleases)
    ));
    assert!(Semaphore::new(shared::MAX_SLOTS + 1).is_err());
}

#[test]
fn threads_share_a_semaphore_too() {
    let semaphore = Semaphore::new(1).unwrap();
    let guard = semaphore.acquire().unwrap();
    let other = semaphore.clone();
    let waiter = std::thread::spawn(move || other.acquire().map(drop).is_ok());
    drop(guard);
    assert!(within(LIMIT, move || waiter.join().unwrap()));
}

thread_local! {
    /// Guards kept where a forked child's copy of this thread can reach them.
    static KEPT: std::cell::RefCell<Vec<SemaphoreGuard>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// The parent holds both kinds of unit, a slot and a credit, in guards that a forked child
/// copies (through a thread-local). The child's drop of its copies gives nothing back: the
/// units are the parent's, and would otherwise be counted twice.
fn guards_inherited_by_a_forked_child_give_nothing_back() {
    fn child_side(semaphore: Semaphore) -> TargetResult {
        let guards = KEPT.with(|kept| std::mem::take(&mut *kept.borrow_mut()));
        if guards.len() != 2 {
            return Err(format!("{} guards inherited, not 2", guards.len()));
        }
        drop(guards);
        match semaphore.get_value() {
            0 => Ok(()),
            value => Err(format!("{value} units free after the child's drop, not 0")),
        }
    }
    let semaphore = Semaphore::new(1).unwrap();
    let slot = semaphore.acquire().unwrap();
    semaphore.release().unwrap();
    let credit = semaphore.acquire().unwrap();
    assert_eq!(
        format!("{slot:?} {credit:?}"),
        r#"SemaphoreGuard { unit: "slot 0" } SemaphoreGuard { unit: "credit" }"#
    );
    KEPT.with(|kept| *kept.borrow_mut() = vec![slot, credit]);
    let mut child = Child::start(StartMethod::Fork, child_side, (semaphore.clone(),));
    child.expect_success();
    assert_eq!(semaphore.get_value(), 0, "still the parent's");
    drop(KEPT.with(|kept| std::mem::take(&mut *kept.borrow_mut())));
    assert_eq!(
        semaphore.get_value(),
        2,
        "given back by the parent, once each"
    );
}
