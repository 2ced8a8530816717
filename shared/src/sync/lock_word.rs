//! The lock word under [`Lock`](super::Lock): one `u32` in shared memory, taken with a single
//! compare-and-swap when free, that still tells the next acquirer when its holder died.
//!
//! # The word
//!
//! ```text
//! 0                      free
//! bit 31 | owner's TID   held by the thread whose kernel id is in bits 0..30; bit 31
//!                        ("waiters") set when a thread may sleep on the word
//! ```
//!
//! - Acquire: `0 → my TID` (Acquire), one compare-and-swap. The TID comes from a thread-local
//!   cache that is refreshed after `fork` ([`cached_id`]).
//! - Release: `my TID → 0` (Release), one compare-and-swap; when the waiters bit is set, swap
//!   to 0 and wake one sleeper (a shared futex: sleepers are in other processes). A thread
//!   that is not the owner changes nothing and is told ([`Unlocked::NotHeld`]).
//! - Contended: spin briefly, then set the waiters bit and sleep on the word, at most
//!   [`LONGEST_SLEEP`] at a time. A thread that has slept takes the word with the waiters bit
//!   set, since others may still sleep; a release that finds it wakes one of them.
//!
//! # A dead owner
//!
//! Nothing in the kernel releases the word when its owner dies (glibc's robust list does
//! that for a pthread mutex, at the cost of list bookkeeping on every lock and unlock). So a
//! waiter asks `/proc` instead: before it first sleeps on an owner, and again whenever it
//! wakes to find the same owner (a timeout, most likely, since a release changes the word).
//! An owner whose `/proc/<tid>/stat` is missing, or says zombie (`Z`, `X`), is dead: a thread
//! that exited (its process may live on), or a process that was killed and not yet reaped
//! (its parent may be the very waiter, blocked here, so a zombie must count as dead). The
//! waiter then takes the word with a compare-and-swap from the value it observed to its own
//! TID, so that of several waiters exactly one wins, and is told ([`Taken::OwnerDied`]). A
//! dead owner is therefore noticed at once by a thread that starts to wait, and within
//! [`LONGEST_SLEEP`] by one that already sleeps.
//!
//! # Limits
//!
//! - **TID reuse.** If the owner dies and the kernel gives its TID to a new thread before a
//!   waiter looks, the waiter sees a live owner and keeps waiting (until that thread exits, or
//!   its own deadline). The PID space (`pid_max`, 32768 by default, up to 2^22) has to wrap
//!   around to the dead TID for that, while the lock is held by nobody alive. We accept it:
//!   it usually costs a wait. In one narrower case it costs more: between a waiter's check
//!   that the owner T is dead and its compare-and-swap from T, another waiter may take the
//!   lock over and release it, and a new thread that was given T may acquire it, so the swap
//!   succeeds and the lock has two owners. That needs the PID space to wrap within that
//!   window; a `Value`'s or `Array`'s guard then refuses to dereference on the thread that
//!   does not hold the word, so the shared bytes are not aliased. Detecting reuse would need
//!   the owner's start time beside the word, written after the compare-and-swap, so readable
//!   stale, and a stale start time would make a waiter steal the lock of a live owner.
//! - **One PID namespace.** The TID in the word is read in the waiter's namespace: processes
//!   that share a lock must share it (spawned and forked children do).
//! - **`/proc` hidden** (`hidepid`): an owner `/proc` does not show is asked with `kill(tid,
//!   0)`; "no such process" is dead, anything else alive.
//! - **A corrupted word.** Any value another process writes is handled: a TID that names no
//!   thread is a dead owner (taken, `OwnerDied`), a word with no TID in it is free, and the
//!   owner's own TID makes the owner believe it holds the lock (the word is shared memory
//!   that every holder of the block is trusted with, as glibc's mutex words are).
//!
//! [`cached_id`]: crate::sys::thread::cached_id

use std::io;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use crate::sys::process::{Liveness, liveness};
use crate::sys::sync::{Taken, futex_wait, futex_wake_one};
use crate::sys::thread::cached_id;

/// The longest a waiter sleeps before it looks at the owner again.
pub(crate) const LONGEST_SLEEP: Duration = Duration::from_millis(100);

/// Set when a thread may sleep on the word.
const WAITERS: u32 = 1 << 31;
/// The owner's TID. Linux TIDs are below 2^22 (`PID_MAX_LIMIT`); the kernel's own futex
/// protocol keeps them in the same 30 bits (`FUTEX_TID_MASK`).
const TID: u32 = 0x3fff_ffff;

/// How many times a contended acquire looks at the word before it sleeps.
const SPINS: u32 = 100;

/// Why [`LockWord::unlock`] changed nothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Unlocked {
    /// The calling thread is not the owner.
    NotHeld,
}

/// The word. Every `u32` is a valid state (see the module's docs), so it may live in a block
/// that other processes write.
#[repr(C)]
pub(crate) struct LockWord(AtomicU32);

impl LockWord {
    /// Takes the word if it is free now, or if its owner is dead; never sleeps. `None` when a
    /// live thread holds it, this one included.
    pub(crate) fn try_lock(&self) -> Option<Taken> {
        let me = cached_id();
        if self.take_free(0, me) {
            return Some(Taken::Free);
        }
        let seen = self.0.load(Ordering::Relaxed);
        match owner(seen) {
            None => self.take_free(seen, me).then_some(Taken::Free),
            Some(owner) if owner == me => None,
            Some(owner) => (is_dead(owner) && self.take(seen, me | (seen & WAITERS)))
                .then_some(Taken::OwnerDied),
        }
    }

    /// Takes the word, waiting at most until `deadline` (`None`: no limit); `Ok(None)` at the
    /// deadline.
    ///
    /// # Errors
    /// `EDEADLK` when the calling thread holds it and `deadline` is `None`: it would wait for
    /// itself for ever. With a deadline, the owner gets `Ok(None)` at once, since nobody else
    /// can release the word in the meantime.
    #[inline]
    pub(crate) fn lock(&self, deadline: Option<Instant>) -> io::Result<Option<Taken>> {
        let me = cached_id();
        if self.take_free(0, me) {
            return Ok(Some(Taken::Free));
        }
        self.lock_contended(me, deadline)
    }

    #[cold]
    fn lock_contended(&self, me: u32, deadline: Option<Instant>) -> io::Result<Option<Taken>> {
        for _ in 0..SPINS {
            let seen = self.0.load(Ordering::Relaxed);
            match owner(seen) {
                None if self.take_free(seen, me) => return Ok(Some(Taken::Free)),
                None => {}
                Some(owner) if owner == me => break,
                Some(_) => std::hint::spin_loop(),
            }
        }
        // Once set, kept: this thread may have taken another sleeper's wake-up.
        let mut mark = 0;
        // The owner last found alive, not to be asked again until a sleep on it ends with
        // the word unchanged.
        let mut alive = None;
        loop {
            let seen = self.0.load(Ordering::Relaxed);
            let Some(owner) = owner(seen) else {
                if self.take_free(seen, me | mark) {
                    return Ok(Some(Taken::Free));
                }
                continue;
            };
            if owner == me {
                return match deadline {
                    None => Err(io::Error::from_raw_os_error(nix::libc::EDEADLK)),
                    Some(_) => Ok(None),
                };
            }
            if alive != Some(owner) {
                if is_dead(owner) {
                    if self.take(seen, me | mark | (seen & WAITERS)) {
                        return Ok(Some(Taken::OwnerDied));
                    }
                    continue;
                }
                alive = Some(owner);
            }
            let left = match deadline {
                None => LONGEST_SLEEP,
                Some(deadline) => match deadline.checked_duration_since(Instant::now()) {
                    Some(left) if !left.is_zero() => left.min(LONGEST_SLEEP),
                    _ => return Ok(None),
                },
            };
            if seen & WAITERS == 0 && !self.take(seen, seen | WAITERS) {
                continue;
            }
            mark = WAITERS;
            futex_wait(&self.0, seen | WAITERS, Some(left));
            if self.0.load(Ordering::Relaxed) == seen | WAITERS {
                // Nobody released it while this thread slept: ask about the owner again.
                alive = None;
            }
        }
    }

    /// Releases the word if the calling thread owns it.
    #[inline]
    pub(crate) fn unlock(&self) -> Result<(), Unlocked> {
        let me = cached_id();
        if self
            .0
            .compare_exchange(me, 0, Ordering::Release, Ordering::Relaxed)
            .is_ok()
        {
            return Ok(());
        }
        self.unlock_contended(me)
    }

    #[cold]
    fn unlock_contended(&self, me: u32) -> Result<(), Unlocked> {
        let mut seen = self.0.load(Ordering::Relaxed);
        loop {
            if owner(seen) != Some(me) {
                return Err(Unlocked::NotHeld);
            }
            // A compare-and-swap, not a store: a waiter may set the waiters bit meanwhile.
            match self
                .0
                .compare_exchange(seen, 0, Ordering::Release, Ordering::Relaxed)
            {
                Ok(_) => break,
                Err(now) => seen = now,
            }
        }
        if seen & WAITERS != 0 {
            futex_wake_one(&self.0);
        }
        Ok(())
    }

    /// Whether the calling thread owns the word. Only this thread can make that change.
    #[inline]
    pub(crate) fn held_by_me(&self) -> bool {
        owner(self.0.load(Ordering::Relaxed)) == Some(cached_id())
    }

    /// The owner's TID, for tests; `None` when free.
    #[cfg(test)]
    pub(crate) fn owner(&self) -> Option<u32> {
        owner(self.0.load(Ordering::Relaxed))
    }

    /// Overwrites the word, as another process could.
    #[cfg(test)]
    pub(crate) fn store(&self, word: u32) {
        self.0.store(word, Ordering::Relaxed);
    }

    /// `seen → mine`, Acquire on success: this thread now owns the word.
    fn take(&self, seen: u32, mine: u32) -> bool {
        self.0
            .compare_exchange(seen, mine, Ordering::Acquire, Ordering::Relaxed)
            .is_ok()
    }

    /// As [`take`](Self::take), from a word with no owner (0, or bits without a TID).
    #[inline]
    fn take_free(&self, seen: u32, me: u32) -> bool {
        self.take(seen, me | (seen & WAITERS))
    }
}

/// The owner a word names, `None` when it names none (free, or bits without a TID).
fn owner(word: u32) -> Option<u32> {
    match word & TID {
        0 => None,
        tid => Some(tid),
    }
}

/// Whether thread `tid` is gone: `/proc` does not list it, or lists a zombie.
fn is_dead(tid: u32) -> bool {
    liveness(tid) == Liveness::Gone
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;

    fn word() -> &'static LockWord {
        Box::leak(Box::new(LockWord(AtomicU32::new(0))))
    }

    #[test]
    fn taken_by_one_compare_and_swap_and_released_by_the_owner_only() {
        let word = word();
        assert_eq!(word.lock(None).unwrap(), Some(Taken::Free));
        assert_eq!(word.owner(), Some(crate::sys::thread::current_id()));
        assert_eq!(word.try_lock(), None, "held by this thread");
        let other = std::thread::spawn(|| (word.try_lock(), word.unlock())).join();
        assert_eq!(other.unwrap(), (None, Err(Unlocked::NotHeld)));
        assert_eq!(word.unlock(), Ok(()));
        assert_eq!(word.unlock(), Err(Unlocked::NotHeld));
    }

    #[test]
    fn the_owner_relocking_is_an_error_or_a_timeout_never_a_hang() {
        let word = word();
        word.lock(None).unwrap();
        let error = word.lock(None).unwrap_err();
        assert_eq!(error.raw_os_error(), Some(nix::libc::EDEADLK));
        let deadline = Instant::now() + Duration::from_secs(60);
        assert_eq!(word.lock(Some(deadline)).unwrap(), None);
        word.unlock().unwrap();
    }

    #[test]
    fn a_word_without_a_tid_is_free_and_a_tid_of_nobody_is_a_dead_owner() {
        let word = word();
        word.store(WAITERS | (1 << 30));
        assert_eq!(word.try_lock(), Some(Taken::Free));
        word.unlock().unwrap();
        word.store(TID); // above any pid_max
        assert_eq!(word.lock(None).unwrap(), Some(Taken::OwnerDied));
        word.unlock().unwrap();
        assert_eq!(word.try_lock(), Some(Taken::Free));
        word.unlock().unwrap();
        word.store(WAITERS | TID);
        let deadline = Instant::now() + Duration::from_secs(60);
        assert_eq!(word.lock(Some(deadline)).unwrap(), Some(Taken::OwnerDied));
        word.unlock().unwrap();
    }

    /// The holder ends only once the waiter has set the waiters bit, which it does just before
    /// it sleeps: the death is found by a waiter that already sleeps on a live owner.
    #[test]
    fn a_waiter_that_sleeps_notices_that_the_owner_ended() {
        let word = word();
        let (locked, end) = (mpsc::channel(), mpsc::channel::<()>());
        let holder = std::thread::spawn(move || {
            word.lock(None).unwrap();
            locked.0.send(()).unwrap();
            // Ends holding the word, once told (or after a minute: the test has failed).
            let _ = end.1.recv_timeout(Duration::from_secs(60));
        });
        locked.1.recv().unwrap();
        let waiter = std::thread::spawn(move || {
            let deadline = Instant::now() + Duration::from_secs(60);
            word.lock(Some(deadline))
        });
        let started = Instant::now();
        while word.0.load(Ordering::Relaxed) & WAITERS == 0 {
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "the waiter never slept"
            );
            std::thread::yield_now();
        }
        end.0.send(()).unwrap();
        holder.join().unwrap();
        let ended = Instant::now();
        assert_eq!(waiter.join().unwrap().unwrap(), Some(Taken::OwnerDied));
        assert!(
            ended.elapsed() < Duration::from_secs(30),
            "not noticed in bounded time"
        );
    }

    /// Contended threads, one of them sleeping on the word at a time at least: every
    /// increment done in two steps survives.
    #[test]
    fn contended_threads_exclude_each_other() {
        let word = word();
        let count: &'static AtomicU32 = Box::leak(Box::new(AtomicU32::new(0)));
        let threads: Vec<_> = (0..4)
            .map(|_| {
                std::thread::spawn(move || {
                    for _ in 0..2000 {
                        assert_eq!(word.lock(None).unwrap(), Some(Taken::Free));
                        let n = count.load(Ordering::Relaxed);
                        std::hint::spin_loop();
                        count.store(n + 1, Ordering::Relaxed);
                        word.unlock().unwrap();
                    }
                })
            })
            .collect();
        threads.into_iter().for_each(|t| t.join().unwrap());
        assert_eq!(count.load(Ordering::Relaxed), 8000);
        assert_eq!(word.owner(), None);
    }
}
