//! Cross-process synchronisation in shared memory: a robust mutex and futex waits.
//!
//! The mutex is glibc's process-shared *robust* pthread mutex. When its holder dies, the kernel
//! marks it, and the next locker is told (`EOWNERDEAD`) instead of waiting forever. That is what
//! lets a queue survive a process killed in the middle of an operation.

use std::io;
use std::sync::atomic::AtomicU32;
use std::time::{Duration, Instant};

use nix::libc;

/// The storage of a robust mutex; it lives inside a shared mapping.
pub(crate) type RawMutex = libc::pthread_mutex_t;

/// How a lock was acquired.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Acquired {
    /// The previous holder unlocked it.
    Normally,
    /// The previous holder died while holding it; the caller must repair what it guards, if
    /// anything, before it unlocks.
    FromDeadOwner,
}

/// Initialises a process-shared robust mutex at `mutex`.
///
/// # Safety
/// `mutex` must point to writable memory that no process uses as a mutex yet.
pub(crate) unsafe fn init_mutex(mutex: *mut RawMutex) -> io::Result<()> {
    // SAFETY: standard attribute set-up on local storage, then init at a valid address.
    unsafe {
        let mut attr = std::mem::MaybeUninit::<libc::pthread_mutexattr_t>::uninit();
        check(libc::pthread_mutexattr_init(attr.as_mut_ptr()))?;
        let attr = attr.as_mut_ptr();
        let result = check(libc::pthread_mutexattr_setpshared(
            attr,
            libc::PTHREAD_PROCESS_SHARED,
        ))
        .and_then(|()| {
            check(libc::pthread_mutexattr_setrobust(
                attr,
                libc::PTHREAD_MUTEX_ROBUST,
            ))
        })
        .and_then(|()| check(libc::pthread_mutex_init(mutex, attr)));
        libc::pthread_mutexattr_destroy(attr);
        result
    }
}

/// Locks `mutex`, waiting at most until `deadline` (`None`: no limit). Returns `None` on timeout.
///
/// # Safety
/// `mutex` must point to a mutex initialised by [`init_mutex`] that stays mapped until unlocked.
pub(crate) unsafe fn lock(
    mutex: *mut RawMutex,
    deadline: Option<Instant>,
) -> io::Result<Option<Acquired>> {
    // glibc's robust mutex never spins: a contended lock costs a futex wait, and its unlock a
    // futex wake. Queue critical sections last a few hundred nanoseconds, so try briefly first.
    for _ in 0..LOCK_SPINS {
        // SAFETY: forwarded to the caller.
        match unsafe { libc::pthread_mutex_trylock(mutex) } {
            libc::EBUSY => std::hint::spin_loop(),
            // SAFETY: forwarded to the caller.
            code => return unsafe { acquired(mutex, code) },
        }
    }
    let code = match deadline {
        // SAFETY: forwarded to the caller.
        None => unsafe { libc::pthread_mutex_lock(mutex) },
        Some(deadline) => {
            let wall = wall_clock_deadline(deadline);
            // SAFETY: forwarded to the caller; `wall` is a valid timespec.
            unsafe { libc::pthread_mutex_timedlock(mutex, &wall) }
        }
    };
    // SAFETY: forwarded to the caller.
    unsafe { acquired(mutex, code) }
}

/// Locks `mutex` only if it is free now; `None` when another thread holds it.
///
/// # Safety
/// As [`lock`].
pub(crate) unsafe fn try_lock(mutex: *mut RawMutex) -> io::Result<Option<Acquired>> {
    // SAFETY: forwarded to the caller.
    match unsafe { libc::pthread_mutex_trylock(mutex) } {
        libc::EBUSY => Ok(None),
        // SAFETY: forwarded to the caller.
        code => unsafe { acquired(mutex, code) },
    }
}

/// How many times [`lock`] tries before it blocks.
const LOCK_SPINS: u32 = 100;

/// Interprets the result of a lock call on `mutex`.
///
/// # Safety
/// As [`lock`].
unsafe fn acquired(mutex: *mut RawMutex, code: libc::c_int) -> io::Result<Option<Acquired>> {
    match code {
        0 => Ok(Some(Acquired::Normally)),
        libc::EOWNERDEAD => {
            // SAFETY: we hold the mutex; the callers keep what it guards consistent at every
            // step (see `queue::ring`), so it can be declared consistent straight away.
            check(unsafe { libc::pthread_mutex_consistent(mutex) })?;
            Ok(Some(Acquired::FromDeadOwner))
        }
        libc::ETIMEDOUT => Ok(None),
        other => Err(io::Error::from_raw_os_error(other)),
    }
}

/// Unlocks `mutex`.
///
/// # Safety
/// The calling thread must hold `mutex`.
pub(crate) unsafe fn unlock(mutex: *mut RawMutex) {
    // SAFETY: forwarded to the caller. Unlocking a held mutex cannot fail.
    unsafe { libc::pthread_mutex_unlock(mutex) };
}

/// Sleeps while `word` still holds `expected`, at most `timeout` (`None`: no limit). Returns on
/// a wake-up, a timeout, a signal, or at once if the word already changed: callers re-check.
pub(crate) fn futex_wait(word: &AtomicU32, expected: u32, timeout: Option<Duration>) {
    let spec = timeout.map(|t| libc::timespec {
        tv_sec: t.as_secs().min(i64::MAX as u64) as libc::time_t,
        tv_nsec: t.subsec_nanos() as libc::c_long,
    });
    let spec_ptr = spec
        .as_ref()
        .map_or(std::ptr::null(), |s| s as *const libc::timespec);
    // SAFETY: `word` is a live, aligned u32. Not FUTEX_PRIVATE: waiters are in other processes.
    unsafe {
        libc::syscall(
            libc::SYS_futex,
            word.as_ptr(),
            libc::FUTEX_WAIT,
            expected,
            spec_ptr,
        );
    }
}

/// Wakes every process sleeping in [`futex_wait`] on `word`.
pub(crate) fn futex_wake_all(word: &AtomicU32) {
    // SAFETY: as in `futex_wait`.
    unsafe {
        libc::syscall(libc::SYS_futex, word.as_ptr(), libc::FUTEX_WAKE, i32::MAX);
    }
}

fn check(code: libc::c_int) -> io::Result<()> {
    if code == 0 {
        Ok(())
    } else {
        Err(io::Error::from_raw_os_error(code))
    }
}

/// `pthread_mutex_timedlock` takes a wall-clock deadline; convert from a monotonic one. (A jump
/// of the wall clock while waiting shortens or lengthens the wait; glibc's monotonic
/// `pthread_mutex_clocklock` is not in the `libc` crate.)
fn wall_clock_deadline(deadline: Instant) -> libc::timespec {
    let left = deadline.saturating_duration_since(Instant::now());
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `now` is valid writable storage.
    unsafe { libc::clock_gettime(libc::CLOCK_REALTIME, &mut now) };
    let total_nanos = now.tv_nsec as u128 + left.subsec_nanos() as u128;
    let seconds = libc::time_t::try_from(left.as_secs()).unwrap_or(libc::time_t::MAX);
    libc::timespec {
        tv_sec: now
            .tv_sec
            .saturating_add(seconds)
            .saturating_add((total_nanos / 1_000_000_000) as libc::time_t),
        tv_nsec: (total_nanos % 1_000_000_000) as libc::c_long,
    }
}
