//! What `shared::Lock`, `RLock` and `Condition` guarantee across real processes and threads,
//! each guarantee checked by a test that fails when it is broken: the methods' semantics
//! (timeouts, non-blocking acquires, release errors), mutual exclusion under contention (a
//! count that a lost update would break), waits and notifications, and a holder killed by
//! SIGKILL: the next acquirer gets the lock within a bound and is told, and the acquire after
//! it is an ordinary one.
//!
//! Every child is bounded ([`Child`]); blocking calls in the test process run under
//! [`within`] or with a timeout, so a deadlock fails the test instead of hanging it.

use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use shared::{
    AcquireError, Condition, Lock, LockGuard, Queue, RLock, RLockGuard, RawValue, StartMethod,
};

shared::enable_test_support!();

#[macro_use]
mod common;
use common::{Child, LIMIT, within};

under_every_start_method!(
    a_lock_excludes_processes,
    an_rlock_excludes_processes,
    a_lock_held_by_a_child_times_out_and_refuses_try,
    a_killed_lock_holder_is_reported_to_the_next_acquirer,
    a_killed_rlock_holder_is_reported_to_the_next_acquirer,
    a_killed_condition_holder_is_reported_to_the_next_acquirer,
    a_condition_wakes_a_waiting_process,
    a_killed_holder_not_yet_reaped_is_a_dead_owner_to_a_waiter,
);

/// Fork only: a spawned child is a new program, which inherits no thread id to be wrong about.
mod fork_only {
    #[test]
    fn a_forked_child_does_not_inherit_the_lock() {
        super::a_forked_child_does_not_inherit_the_lock();
    }

    #[test]
    fn guards_inherited_by_a_forked_child_release_nothing() {
        super::guards_inherited_by_a_forked_child_release_nothing();
    }
}

const PROCESSES: usize = 4;
const ROUNDS: u64 = 2000;

/// Adds one to `count` `ROUNDS` times, as two steps (a read, then a write) under `lock`: only
/// mutual exclusion keeps every update.
fn add_under_lock(lock: Lock, count: RawValue<u64>) -> Result<(), String> {
    for _ in 0..ROUNDS {
        let _guard = lock.acquire().map_err(|error| error.to_string())?;
        count.set_value(count.value() + 1);
    }
    Ok(())
}

/// As [`add_under_lock`], two levels deep in an `RLock`.
fn add_under_rlock(lock: RLock, count: RawValue<u64>) -> Result<(), String> {
    for _ in 0..ROUNDS {
        let _outer = lock.acquire().map_err(|error| error.to_string())?;
        let _inner = lock.acquire().map_err(|error| error.to_string())?;
        count.set_value(count.value() + 1);
    }
    Ok(())
}

fn a_lock_excludes_processes(method: StartMethod) {
    let lock = Lock::new().unwrap();
    let count = RawValue::new(0_u64).unwrap();
    let mut children: Vec<Child> = (0..PROCESSES)
        .map(|_| Child::start(method, add_under_lock, (lock.clone(), count.clone())))
        .collect();
    children.iter_mut().for_each(Child::expect_success);
    assert_eq!(
        count.value(),
        PROCESSES as u64 * ROUNDS,
        "an update was lost"
    );
}

fn an_rlock_excludes_processes(method: StartMethod) {
    let lock = RLock::new().unwrap();
    let count = RawValue::new(0_u64).unwrap();
    let mut children: Vec<Child> = (0..PROCESSES)
        .map(|_| Child::start(method, add_under_rlock, (lock.clone(), count.clone())))
        .collect();
    children.iter_mut().for_each(Child::expect_success);
    assert_eq!(
        count.value(),
        PROCESSES as u64 * ROUNDS,
        "an update was lost"
    );
}

/// Acquires `lock` (twice, for an `RLock`), says so on `ready`, then holds it until killed.
fn hold_lock(lock: Lock, ready: Queue<()>, never: Queue<()>) -> Result<(), String> {
    let _guard = lock.acquire().map_err(|error| error.to_string())?;
    ready.put(()).map_err(|error| error.to_string())?;
    let _ = never.get_timeout(LIMIT);
    Err("not killed".to_owned())
}

fn hold_rlock(lock: RLock, ready: Queue<()>, never: Queue<()>) -> Result<(), String> {
    let _outer = lock.acquire().map_err(|error| error.to_string())?;
    let _inner = lock.acquire().map_err(|error| error.to_string())?;
    ready.put(()).map_err(|error| error.to_string())?;
    let _ = never.get_timeout(LIMIT);
    Err("not killed".to_owned())
}

fn hold_condition(cond: Condition, ready: Queue<()>, never: Queue<()>) -> Result<(), String> {
    let _guard = cond.acquire().map_err(|error| error.to_string())?;
    ready.put(()).map_err(|error| error.to_string())?;
    let _ = never.get_timeout(LIMIT);
    Err("not killed".to_owned())
}

/// Starts a holder under `method` and kills it once it holds its lock.
macro_rules! kill_holder {
    ($method:expr, $target:path, $handle:expr) => {{
        let (ready, never) = (Queue::new().unwrap(), Queue::new().unwrap());
        let mut child = Child::start($method, $target, ($handle, ready.clone(), never));
        ready.get_timeout(LIMIT).expect("the holder said it holds");
        assert_eq!(child.kill_and_reap(), -9);
    }};
}

fn a_killed_lock_holder_is_reported_to_the_next_acquirer(method: StartMethod) {
    let lock = Lock::new().unwrap();
    kill_holder!(method, hold_lock, lock.clone());
    let (died, repaired, next_normal) = within(LIMIT, move || {
        let died = match lock.acquire() {
            Err(AcquireError::OwnerDied(guard)) => {
                drop(guard); // nothing to repair: a bare lock
                true
            }
            Ok(_) | Err(_) => false,
        };
        let repaired = lock.try_acquire().is_ok_and(|guard| guard.is_some());
        (died, repaired, lock.acquire().is_ok())
    });
    assert!(died, "the next acquirer was not told that the holder died");
    assert!(
        repaired && next_normal,
        "the acquire after it was not ordinary"
    );
}

fn a_killed_rlock_holder_is_reported_to_the_next_acquirer(method: StartMethod) {
    let lock = RLock::new().unwrap();
    kill_holder!(method, hold_rlock, lock.clone());
    let (died, one_level, next_normal) = within(LIMIT, move || {
        let died = match lock.acquire() {
            Err(AcquireError::OwnerDied(guard)) => {
                drop(guard);
                true
            }
            Ok(_) | Err(_) => false,
        };
        // The dead owner's two levels are gone: one release after the OwnerDied guard's
        // drop finds nothing to release.
        let one_level = lock.release().is_err_and(|error| error.is_not_held());
        (died, one_level, lock.acquire().is_ok())
    });
    assert!(died, "the next acquirer was not told that the holder died");
    assert!(one_level, "the dead owner's count was kept");
    assert!(next_normal);
}

fn a_killed_condition_holder_is_reported_to_the_next_acquirer(method: StartMethod) {
    let cond = Condition::new().unwrap();
    kill_holder!(method, hold_condition, cond.clone());
    let (died, next_normal) = within(LIMIT, move || {
        let died = cond.acquire().is_err_and(|error| error.is_owner_died());
        (died, cond.acquire().is_ok())
    });
    assert!(died, "the next acquirer was not told that the holder died");
    assert!(next_normal);
}

fn a_lock_held_by_a_child_times_out_and_refuses_try(method: StartMethod) {
    let lock = Lock::new().unwrap();
    let (ready, never) = (Queue::new().unwrap(), Queue::<()>::new().unwrap());
    let mut child = Child::start(method, hold_lock, (lock.clone(), ready.clone(), never));
    ready.get_timeout(LIMIT).unwrap();
    assert!(lock.try_acquire().unwrap().is_none());
    let timed_out = lock.acquire_timeout(Duration::from_millis(20)).unwrap();
    assert!(timed_out.is_none());
    drop(timed_out);
    assert!(
        lock.release().unwrap_err().is_not_held(),
        "a lock another process holds is not ours to release"
    );
    assert_eq!(child.kill_and_reap(), -9);
}

/// Waits on `cond` until `flag` is 1, then sets it to 2 and notifies.
fn wait_for_flag(cond: Condition, flag: RawValue<u8>) -> Result<(), String> {
    let guard = cond.acquire().map_err(|error| error.to_string())?;
    let (guard, done) = cond
        .wait_for_timeout(guard, LIMIT, || flag.value() >= 1)
        .map_err(|error| error.to_string())?;
    if !done {
        return Err("never notified".to_owned());
    }
    flag.set_value(2);
    cond.notify_all();
    drop(guard);
    Ok(())
}

fn a_condition_wakes_a_waiting_process(method: StartMethod) {
    let cond = Condition::new().unwrap();
    let flag = RawValue::new(0_u8).unwrap();
    let mut child = Child::start(method, wait_for_flag, (cond.clone(), flag.clone()));
    let (set, answered) = within(LIMIT, move || {
        let guard = cond.acquire().unwrap();
        flag.set_value(1);
        cond.notify(1);
        let (guard, answered) = cond
            .wait_for_timeout(guard, LIMIT, || flag.value() == 2)
            .unwrap();
        drop(guard);
        (flag.value(), answered)
    });
    assert_eq!((set, answered), (2, true));
    child.expect_success();
}

#[test]
fn lock_smoke() {
    let lock = Lock::new().unwrap();
    let guard = lock.acquire().unwrap();
    assert!(lock.try_acquire().unwrap().is_none());
    assert!(
        lock.acquire_timeout(Duration::from_millis(10))
            .unwrap()
            .is_none()
    );
    drop(guard);
    lock.acquire().unwrap().forget();
    lock.release().unwrap();
    assert!(lock.release().unwrap_err().is_not_held());
    assert_eq!(
        lock.release().unwrap_err().to_string(),
        "cannot release un-acquired lock"
    );
}

#[test]
fn a_lock_is_released_only_by_the_thread_that_holds_it() {
    let lock = Lock::new().unwrap();
    lock.acquire().unwrap().forget();
    let other = lock.clone();
    let refused = thread::spawn(move || other.release().unwrap_err().is_not_held());
    assert!(refused.join().unwrap());
    lock.release().unwrap();
}

#[test]
fn an_rlock_counts_its_owners_levels() {
    let lock = RLock::new().unwrap();
    lock.acquire().unwrap().forget();
    lock.acquire().unwrap().forget();
    let other = lock.clone();
    let (blocked, refused) = thread::spawn(move || {
        let blocked = other.try_acquire().unwrap().is_none();
        (blocked, other.release().unwrap_err().is_not_held())
    })
    .join()
    .unwrap();
    assert!(
        blocked && refused,
        "another thread neither takes nor releases it"
    );
    lock.release().unwrap();
    let other = lock.clone();
    let still_held = thread::spawn(move || other.try_acquire().unwrap().is_none());
    assert!(still_held.join().unwrap(), "one level is left");
    lock.release().unwrap();
    assert!(lock.release().unwrap_err().is_not_held());
    let other = lock.clone();
    let free = thread::spawn(move || other.try_acquire().unwrap().is_some());
    assert!(free.join().unwrap());
}

#[test]
fn a_killed_thread_holding_a_lock_is_a_dead_owner() {
    let lock = Lock::new().unwrap();
    let other = lock.clone();
    // A thread that ends holding a lock is an owner that died, though its process lives on:
    // `/proc` no longer lists its thread id.
    thread::spawn(move || other.acquire().unwrap().forget())
        .join()
        .unwrap();
    assert!(lock.acquire().is_err_and(|error| error.is_owner_died()));
    assert!(lock.acquire().is_ok());
}

/// The waiter sleeps on the lock (or is about to) when its holder is killed; the holder is
/// reaped only after the waiter got the lock, so the waiter sees a zombie: as the parent of a
/// killed process, blocked in `acquire`, would.
fn a_killed_holder_not_yet_reaped_is_a_dead_owner_to_a_waiter(method: StartMethod) {
    let lock = Lock::new().unwrap();
    let (ready, never) = (Queue::new().unwrap(), Queue::<()>::new().unwrap());
    let mut child = Child::start(method, hold_lock, (lock.clone(), ready.clone(), never));
    ready.get_timeout(LIMIT).expect("the holder said it holds");
    let (sender, result) = mpsc::channel();
    let waiter = thread::spawn(move || {
        let died = lock.acquire().is_err_and(|error| error.is_owner_died());
        sender.send(died).unwrap();
    });
    child.kill().unwrap();
    let died = result
        .recv_timeout(LIMIT)
        .expect("the waiter never got the lock");
    waiter.join().unwrap();
    assert!(died, "the waiter was not told that the holder died");
    assert_eq!(child.kill_and_reap(), -9);
}

/// The child is a copy of the parent's thread, holding a copy of its guard, but not the lock:
/// its thread has another id. It neither releases nor takes it.
fn a_forked_child_does_not_inherit_the_lock() {
    fn child_side(lock: Lock) -> Result<(), String> {
        if !lock.release().is_err_and(|error| error.is_not_held()) {
            return Err("the child released its parent's lock".to_owned());
        }
        match lock.try_acquire() {
            Ok(None) => Ok(()),
            Ok(Some(guard)) => {
                guard.forget();
                Err("the child took a lock its parent holds".to_owned())
            }
            Err(error) => Err(format!("try_acquire: {error}")),
        }
    }
    let lock = Lock::new().unwrap();
    let guard = lock.acquire().unwrap();
    let mut child = Child::start(StartMethod::Fork, child_side, (lock.clone(),));
    child.expect_success();
    drop(guard);
    assert!(
        lock.try_acquire().unwrap().is_some(),
        "the parent released it"
    );
}

thread_local! {
    /// Guards kept where a forked child's copy of this thread can reach them.
    static KEPT: std::cell::RefCell<Option<(LockGuard<'static>, RLockGuard)>> =
        const { std::cell::RefCell::new(None) };
}

/// The child drops its copies of the parent's guards (reached through a thread-local): the
/// locks stay the parent's, which the child sees as held, and so does the parent after the
/// child has exited, until it drops its own guards.
fn guards_inherited_by_a_forked_child_release_nothing() {
    fn child_side(lock: Lock, rlock: RLock) -> Result<(), String> {
        let guards = KEPT.with(|kept| kept.borrow_mut().take());
        drop(guards.ok_or("no guards inherited")?);
        let lock_free = lock.try_acquire().map_err(|error| error.to_string())?;
        let rlock_free = rlock.try_acquire().map_err(|error| error.to_string())?;
        match (lock_free, rlock_free) {
            (None, None) => Ok(()),
            _ => Err("a dropped inherited guard released its parent's lock".to_owned()),
        }
    }
    let (lock, rlock) = (Lock::new().unwrap(), RLock::new().unwrap());
    let guards = (
        lock.acquire().unwrap().into_owned(),
        rlock.acquire().unwrap(),
    );
    KEPT.with(|kept| *kept.borrow_mut() = Some(guards));
    let mut child = Child::start(StartMethod::Fork, child_side, (lock.clone(), rlock.clone()));
    child.expect_success();
    let held_elsewhere = |lock: Lock, rlock: RLock| {
        within(LIMIT, move || {
            (
                lock.try_acquire().unwrap().is_none(),
                rlock.try_acquire().unwrap().is_none(),
            )
        })
    };
    assert_eq!(held_elsewhere(lock.clone(), rlock.clone()), (true, true));
    drop(KEPT.with(|kept| kept.borrow_mut().take()));
    assert_eq!(
        held_elsewhere(lock, rlock),
        (false, false),
        "the parent released them"
    );
}

/// A thread that acquires the `Lock` it holds is told (`EDEADLK`): Python's would wait for
/// itself for ever. Without waiting, the answer is "held".
#[test]
fn a_lock_relocked_by_its_owner_is_an_error_not_a_hang() {
    let lock = Lock::new().unwrap();
    let (error, tried, timed) = within(LIMIT, move || {
        let _guard = lock.acquire().unwrap();
        let error = match lock.acquire() {
            Err(AcquireError::Os(error)) => Some(error.to_string()),
            Ok(_) | Err(_) => None,
        };
        let tried = lock.try_acquire().unwrap().is_none();
        let timed = lock.acquire_timeout(LIMIT).unwrap().is_none();
        (error, tried, timed)
    });
    let error = error.expect("an OS error");
    assert!(error.contains("deadlock"), "EDEADLK expected: {error}");
    assert!(tried && timed, "held by this thread");
}

#[test]
fn condition_wait_timeout_without_notify_times_out() {
    let cond = Condition::new().unwrap();
    let (guard, notified) = cond
        .wait_timeout(cond.acquire().unwrap(), Duration::from_millis(10))
        .unwrap();
    assert!(!notified);
    drop(guard);
    let (guard, done) = cond
        .wait_for_timeout(cond.acquire().unwrap(), Duration::from_millis(10), || false)
        .unwrap();
    assert!(!done);
    let guard = cond.wait_for(guard, || true).unwrap();
    drop(guard);
}

#[test]
fn condition_refuses_another_locks_guard() {
    let cond = Condition::with_lock(Lock::new().unwrap()).unwrap();
    let other = Lock::new().unwrap();
    let error = cond.wait(other.acquire().unwrap()).unwrap_err();
    assert!(
        matches!(error, AcquireError::Os(ref e) if e.kind() == std::io::ErrorKind::InvalidInput)
    );
    drop(error);
    assert!(
        other.try_acquire().unwrap().is_some(),
        "the guard was dropped"
    );
}

/// A waiter on an `RLock` held two levels deep releases both while it waits (another thread
/// gets the lock) and holds both again afterwards.
#[test]
fn condition_wait_releases_every_rlock_level() {
    let cond = Condition::new().unwrap();
    let flag = RawValue::new(0_u8).unwrap();
    let (waiter_cond, waiter_flag) = (cond.clone(), flag.clone());
    let (sender, levels) = mpsc::channel();
    let waiter = thread::spawn(move || {
        let outer = waiter_cond.acquire().unwrap();
        let inner = waiter_cond.acquire().unwrap();
        let inner = waiter_cond
            .wait_for(inner, || waiter_flag.value() == 1)
            .unwrap();
        drop(inner);
        // Still one level held: the outer guard's.
        sender.send(waiter_cond.lock().release().is_ok()).unwrap();
        waiter_cond.lock().acquire().unwrap().forget();
        drop(outer);
        let none_left = waiter_cond.lock().release().is_err();
        sender.send(none_left).unwrap();
    });
    within(LIMIT, move || {
        let guard = cond.acquire().unwrap();
        flag.set_value(1);
        cond.notify_all();
        drop(guard);
    });
    assert!(
        levels.recv_timeout(LIMIT).unwrap(),
        "the outer level was lost"
    );
    assert!(levels.recv_timeout(LIMIT).unwrap(), "a level was left over");
    waiter.join().unwrap();
}

/// `notify(1)` three times lets three waiters out, one each time; `notify_all` lets out all.
#[test]
fn condition_notify_and_notify_all_wake_waiting_threads() {
    let cond = Condition::with_lock(Lock::new().unwrap()).unwrap();
    let registered = RawValue::new(0_u32).unwrap();
    for notify_all in [false, true] {
        registered.set_value(0);
        let (sender, woken) = mpsc::channel();
        let waiters: Vec<_> = (0..3)
            .map(|_| {
                let (cond, registered, sender) = (cond.clone(), registered.clone(), sender.clone());
                thread::spawn(move || {
                    let guard = cond.acquire().unwrap();
                    registered.set_value(registered.value() + 1);
                    // Registered under the lock: once the notifier holds the lock and counts
                    // three, all three wait.
                    let (_guard, notified) = cond.wait_timeout(guard, LIMIT).unwrap();
                    sender.send(notified).unwrap();
                })
            })
            .collect();
        let all_waiting = || {
            let guard = cond.acquire().unwrap();
            let (_guard, three) = cond
                .wait_for_timeout(guard, Duration::from_millis(1), || registered.value() == 3)
                .unwrap();
            three
        };
        while !all_waiting() {}
        if notify_all {
            let _guard = cond.acquire().unwrap();
            cond.notify_all();
        }
        for _ in 0..3 {
            if !notify_all {
                let _guard = cond.acquire().unwrap();
                cond.notify(1);
            }
            assert!(woken.recv_timeout(LIMIT).unwrap(), "a waiter timed out");
        }
        waiters.into_iter().for_each(|w| w.join().unwrap());
    }
}

/// A notify wakes only waiters that were waiting when it was made: the notifier that waits
/// next cannot take its own notification, which would leave the waiter it meant asleep.
#[test]
fn a_notifier_that_waits_next_does_not_take_its_own_notification() {
    let cond = Condition::new().unwrap();
    let about_to_wait = RawValue::new(0_u8).unwrap();
    let (waiter_cond, waiter_flag) = (cond.clone(), about_to_wait.clone());
    let waiter = thread::spawn(move || {
        let guard = waiter_cond.acquire().unwrap();
        // Set under the lock, then the wait registers before it lets the lock go.
        waiter_flag.set_value(1);
        let (guard, notified) = waiter_cond.wait_timeout(guard, LIMIT).unwrap();
        drop(guard);
        notified
    });
    // Until the flag is seen under the lock, the waiter has not registered.
    let guard = loop {
        let guard = cond.acquire().unwrap();
        if about_to_wait.value() == 1 {
            break guard;
        }
        drop(guard);
        thread::yield_now();
    };
    cond.notify(1);
    let (guard, notified) = cond
        .wait_timeout(guard, Duration::from_millis(200))
        .unwrap();
    drop(guard);
    assert!(
        !notified,
        "the notifier took the notification meant for the waiter"
    );
    assert!(
        within(LIMIT, move || waiter.join().unwrap()),
        "the waiter was not notified"
    );
}

/// Every notify before a waiter arrives is spent: the later waiter times out.
#[test]
fn a_notify_made_before_a_wait_does_not_wake_it() {
    let cond = Condition::new().unwrap();
    let guard = cond.acquire().unwrap();
    cond.notify(1);
    cond.notify_all();
    let (guard, notified) = cond.wait_timeout(guard, Duration::from_millis(50)).unwrap();
    drop(guard);
    assert!(!notified);
}
