//! [`Condition`]: Python's `multiprocessing.Condition`, a [`Lock`] or [`RLock`] plus a block of
//! waiter slots that waiters sleep on.
//!
//! # Design
//!
//! A waiter takes a *ticket* (its place in the order of arrival) and a slot, while it holds the
//! lock, marks the slot waiting, releases the lock (every level of an `RLock`, as CPython
//! does), and sleeps on the futex word `sequence` until its slot says notified. `notify(n)`
//! marks the `n` waiting slots with the lowest tickets notified, bumps `sequence` and wakes
//! the sleepers. So a notify wakes only waiters that were waiting when it was made, oldest
//! first, as Python's does: a thread that notifies and then waits itself cannot take its own
//! notification (anonymous wake-up tokens would let it, and leave the waiter it meant asleep).
//!
//! A slot is one word, the ticket and the state together, changed only by compare-and-swap:
//! a waiter that times out takes its slot back only if no notify marked it first. A sleeper
//! never trusts a wake-up to arrive: it re-checks its slot at least every [`LONGEST_SLEEP`],
//! so a notifier killed between its mark and its wake-up costs a delay, never a hang. A notify
//! skips (and frees) the slot of a waiter whose process is gone, so a waiter killed in its wait
//! does not swallow a notification meant for the living. Words written by a hostile process
//! can cause spurious or missed wake-ups, never a hang past a deadline or a crash.

use std::fmt;
use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::error::{AcquireError, ReleaseError};
use super::guard::{deadline_after, held};
use super::lock::{ConditionLock, Handle, RLock, Received};
use crate::block::{Block, BlockState};
use crate::sys::process::{Liveness, liveness};
use crate::sys::sync;

/// The longest a waiter sleeps before it re-checks its slot (see the module's docs).
const LONGEST_SLEEP: Duration = Duration::from_millis(100);

/// How many threads, in all processes together, can wait on one condition at once. A waiter
/// beyond them still waits, by re-checking every [`LONGEST_SLEEP`] (a spurious wake-up each
/// time), so it cannot miss a notification, only be late for it.
const MAX_WAITERS: usize = 64;

/// A slot word: `ticket << 2 | state`; 0 is a free slot.
const WAITING: u64 = 1;
const NOTIFIED: u64 = 2;
const STATE_BITS: u64 = 0b11;

#[repr(C)]
struct Slot {
    /// The ticket and the state, changed only by compare-and-swap.
    word: AtomicU64,
    /// The waiter's process, so that a notify can skip a waiter that died.
    pid: AtomicU32,
}

#[repr(C)]
pub(crate) struct ConditionState {
    /// The futex word: bumped by every notify that marked a slot.
    sequence: AtomicU32,
    /// The next ticket (tickets start at 1, so a slot word is never 0 while taken).
    next_ticket: AtomicU64,
    slots: [Slot; MAX_WAITERS],
}

// SAFETY: atomics only: every bit pattern is valid, zero is the start (every slot free),
// align 8.
unsafe impl BlockState for ConditionState {
    const KIND: [u8; 8] = *b"cond---2";

    unsafe fn init(&self) -> io::Result<()> {
        Ok(())
    }
}

/// A waiter's slot, once it has one.
struct Waiting<'a> {
    slot: &'a Slot,
    /// The slot's word while waiting: the ticket and [`WAITING`].
    word: u64,
}

impl ConditionState {
    /// Takes a slot for a waiter of this process; `None` when every slot is taken. Called
    /// holding the condition's lock, so any notify made after it sees the slot.
    fn register(&self) -> Option<Waiting<'_>> {
        let ticket = self
            .next_ticket
            .fetch_add(1, Ordering::AcqRel)
            .wrapping_add(1);
        let word = (ticket << 2) | WAITING;
        let pid = std::process::id();
        for _ in 0..2 {
            for slot in &self.slots {
                if slot
                    .word
                    .compare_exchange(0, word, Ordering::AcqRel, Ordering::Acquire)
                    .is_ok()
                {
                    slot.pid.store(pid, Ordering::Release);
                    return Some(Waiting { slot, word });
                }
            }
            // Full: free the slots of waiters whose process died, then look once more.
            self.free_dead_slots();
        }
        None
    }

    fn free_dead_slots(&self) {
        for slot in &self.slots {
            let word = slot.word.load(Ordering::Acquire);
            if word & STATE_BITS == WAITING && is_gone(slot.pid.load(Ordering::Acquire)) {
                free(slot, word);
            }
        }
    }

    /// Waits until `waiting`'s slot is notified or `deadline` passes; frees the slot. `true`
    /// if notified (or if another process rewrote the slot: a spurious wake-up).
    fn wait(&self, waiting: Waiting<'_>, deadline: Option<Instant>) -> bool {
        let Waiting { slot, word } = waiting;
        loop {
            let sequence = self.sequence.load(Ordering::Acquire);
            let now = slot.word.load(Ordering::Acquire);
            if now != word {
                // Notified (or rewritten): the slot is ours to free either way.
                free(slot, now);
                return true;
            }
            let left = deadline.map(|d| d.saturating_duration_since(Instant::now()));
            if left.is_some_and(|left| left.is_zero()) {
                // Take the slot back, unless a notify marked it first: then we were notified.
                slot.pid.store(0, Ordering::Release);
                return match slot.word.compare_exchange(
                    word,
                    0,
                    Ordering::AcqRel,
                    Ordering::Acquire,
                ) {
                    Ok(_) => false,
                    Err(marked) => {
                        free(slot, marked);
                        true
                    }
                };
            }
            let sleep = left.map_or(LONGEST_SLEEP, |left| left.min(LONGEST_SLEEP));
            sync::futex_wait(&self.sequence, sequence, Some(sleep));
        }
    }

    /// Marks up to `n` waiting slots notified, lowest tickets first, skipping (and freeing)
    /// the slots of waiters whose process is gone; wakes the sleepers if it marked any.
    fn notify(&self, n: u32) {
        if n == 0 {
            return;
        }
        let mut waiting: Vec<(u64, &Slot)> = self
            .slots
            .iter()
            .map(|slot| (slot.word.load(Ordering::Acquire), slot))
            .filter(|(word, _)| word & STATE_BITS == WAITING)
            .collect();
        waiting.sort_unstable_by_key(|&(word, _)| word >> 2);
        let mut marked = 0;
        for (word, slot) in waiting {
            if marked == n {
                break;
            }
            if is_gone(slot.pid.load(Ordering::Acquire)) {
                free(slot, word);
                continue;
            }
            let notified = (word & !STATE_BITS) | NOTIFIED;
            if slot
                .word
                .compare_exchange(word, notified, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
            {
                marked += 1;
            }
        }
        if marked > 0 {
            self.sequence.fetch_add(1, Ordering::Release);
            sync::futex_wake_all(&self.sequence);
        }
    }

    /// A waiter beyond [`MAX_WAITERS`]: sleeps at most [`LONGEST_SLEEP`] (or to `deadline`),
    /// and reports a spurious wake-up.
    fn wait_without_slot(&self, deadline: Option<Instant>) -> bool {
        let sequence = self.sequence.load(Ordering::Acquire);
        let left = deadline.map_or(LONGEST_SLEEP, |d| {
            d.saturating_duration_since(Instant::now())
                .min(LONGEST_SLEEP)
        });
        if !left.is_zero() {
            sync::futex_wait(&self.sequence, sequence, Some(left));
        }
        deadline.is_none_or(|d| Instant::now() < d)
    }
}

/// Frees `slot` if its word is still `word`. The pid is cleared first, so a waiter that claims
/// the slot next is never judged by its previous occupant's pid (0 reads as alive) before it
/// stores its own; clearing the pid of a slot that the exchange then does not free only makes
/// its waiter look alive, the safe side.
fn free(slot: &Slot, word: u64) {
    slot.pid.store(0, Ordering::Release);
    let _ = slot
        .word
        .compare_exchange(word, 0, Ordering::AcqRel, Ordering::Acquire);
}

/// Whether the process `pid` is known to be gone. A PID of our own process is not: its
/// threads that wait are alive, or the process would not be asking.
fn is_gone(pid: u32) -> bool {
    pid != std::process::id() && matches!(liveness(pid), Liveness::Gone)
}

/// A condition variable shared by processes and threads, over a [`Lock`](crate::Lock) or an
/// [`RLock`] (the default, as in Python). Python: `multiprocessing.Condition`.
///
/// The waits take the guard of the condition's lock and give it back, re-acquired, as std's
/// `Condvar` does; Python's `with cond: cond.wait()` is `cond.wait(cond.acquire()?)`.
/// Wake-ups may be spurious, as in Python: wait in a loop, or with
/// [`wait_for`](Self::wait_for).
///
/// ```
/// use shared::{Condition, Process, RawValue};
///
/// fn avisar(cond: Condition, pronto: RawValue<u8>) -> Result<(), Box<dyn std::error::Error>> {
///     let _guarda = cond.acquire()?;
///     pronto.set_value(1);
///     cond.notify_all();
///     Ok(())
/// }
///
/// let cond = Condition::new()?;
/// let pronto = RawValue::new(0_u8)?;
/// let mut processo = Process::new(avisar, (cond.clone(), pronto.clone()));
/// let guarda = cond.acquire()?;
/// processo.start()?;
/// let guarda = cond.wait_for(guarda, || pronto.value() == 1)?;
/// assert_eq!(pronto.value(), 1);
/// drop(guarda);
/// processo.join()?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Condition<L: ConditionLock = RLock> {
    lock: L,
    block: Arc<Block<ConditionState>>,
}

impl Condition<RLock> {
    /// A condition over a new [`RLock`]. Python: `multiprocessing.Condition()`.
    ///
    /// # Errors
    /// The system refused the shared memory (`memfd_create`, `mmap`).
    pub fn new() -> io::Result<Condition<RLock>> {
        Condition::with_lock(RLock::new()?)
    }
}

impl<L: ConditionLock> Condition<L> {
    /// A condition over `lock`, which other handles may acquire too. Python:
    /// `multiprocessing.Condition(lock)`.
    ///
    /// ```
    /// let trava = shared::Lock::new()?;
    /// let cond = shared::Condition::with_lock(trava.clone())?;
    /// let guarda = cond.acquire()?;
    /// assert!(trava.try_acquire()?.is_none(), "the same lock");
    /// drop(guarda);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// As [`new`](Condition::new).
    pub fn with_lock(lock: L) -> io::Result<Condition<L>> {
        Ok(Condition {
            lock,
            block: Arc::new(Block::create(c"shared-condition", 0)?),
        })
    }

    /// The lock under the condition.
    pub fn lock(&self) -> &L {
        &self.lock
    }

    /// Acquires the condition's lock. Python: `cond.acquire()`, `with cond:`.
    ///
    /// # Errors
    /// As the lock's `acquire`: [`AcquireError::OwnerDied`] carries the guard when the
    /// previous holder died.
    pub fn acquire(&self) -> Result<L::Guard<'_>, AcquireError<L::Guard<'static>>> {
        held(self.lock.acquire_until(None))
    }

    /// As [`acquire`](Self::acquire), giving up after `timeout` with `Ok(None)`. Python:
    /// `cond.acquire(timeout=t)`.
    ///
    /// # Errors
    /// As [`acquire`](Self::acquire).
    pub fn acquire_timeout(
        &self,
        timeout: Duration,
    ) -> Result<Option<L::Guard<'_>>, AcquireError<L::Guard<'static>>> {
        self.lock.acquire_until(deadline_after(timeout))
    }

    /// Releases one level of the lock held without a guard (see
    /// [`LockGuard::forget`](crate::LockGuard::forget)). Python: `cond.release()`.
    ///
    /// # Errors
    /// [`ReleaseError::NotHeld`] when this thread does not hold it.
    pub fn release(&self) -> Result<(), ReleaseError> {
        self.lock.release_one()
    }

    /// Releases the lock, sleeps until notified, and re-acquires the lock. Python:
    /// `cond.wait()`. It may return without a notify (a spurious wake-up).
    ///
    /// # Errors
    /// [`AcquireError::OwnerDied`] when a holder of the lock died while this thread waited:
    /// the guard inside holds the lock again. [`AcquireError::Os`] (`InvalidInput`) when
    /// `guard` is not a guard of this condition's lock (the lock is then released), or if the
    /// system refused.
    pub fn wait<'a>(
        &'a self,
        guard: L::Guard<'a>,
    ) -> Result<L::Guard<'a>, AcquireError<L::Guard<'static>>> {
        self.wait_until(guard, None).map(|(guard, _)| guard)
    }

    /// As [`wait`](Self::wait), but for at most `timeout`; the flag is `false` when it timed
    /// out. Python: `cond.wait(timeout)`, which returns that flag.
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let cond = shared::Condition::new()?;
    /// let (guarda, notificado) = cond.wait_timeout(cond.acquire()?, Duration::from_millis(10))?;
    /// assert!(!notificado, "nobody notified");
    /// drop(guarda);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// As [`wait`](Self::wait).
    pub fn wait_timeout<'a>(
        &'a self,
        guard: L::Guard<'a>,
        timeout: Duration,
    ) -> Result<(L::Guard<'a>, bool), AcquireError<L::Guard<'static>>> {
        self.wait_until(guard, deadline_after(timeout))
    }

    /// Waits until `predicate` returns `true`, calling it with the lock held, first before any
    /// wait. Python: `cond.wait_for(predicate)`.
    ///
    /// # Errors
    /// As [`wait`](Self::wait).
    pub fn wait_for<'a>(
        &'a self,
        guard: L::Guard<'a>,
        mut predicate: impl FnMut() -> bool,
    ) -> Result<L::Guard<'a>, AcquireError<L::Guard<'static>>> {
        let mut guard = guard;
        while !predicate() {
            guard = self.wait(guard)?;
        }
        Ok(guard)
    }

    /// As [`wait_for`](Self::wait_for), but for at most `timeout`; the flag is the predicate's
    /// last result. Python: `cond.wait_for(predicate, timeout)`.
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let cond = shared::Condition::new()?;
    /// let (guarda, feito) =
    ///     cond.wait_for_timeout(cond.acquire()?, Duration::from_millis(10), || false)?;
    /// assert!(!feito);
    /// drop(guarda);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// As [`wait`](Self::wait).
    pub fn wait_for_timeout<'a>(
        &'a self,
        guard: L::Guard<'a>,
        timeout: Duration,
        mut predicate: impl FnMut() -> bool,
    ) -> Result<(L::Guard<'a>, bool), AcquireError<L::Guard<'static>>> {
        let deadline = deadline_after(timeout);
        let mut guard = guard;
        loop {
            if predicate() {
                return Ok((guard, true));
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                return Ok((guard, false));
            }
            guard = self.wait_until(guard, deadline)?.0;
        }
    }

    /// Wakes at most `n` of the waiters. Python: `cond.notify(n)`. Call it holding the lock,
    /// as Python requires (it raises `RuntimeError` otherwise; this is not checked here).
    ///
    /// ```
    /// let cond = shared::Condition::new()?;
    /// let _guarda = cond.acquire()?;
    /// cond.notify(1); // nobody waits: nothing happens
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn notify(&self, n: u32) {
        crate::timeline::record(crate::timeline::Kind::Notify, || {
            (0, crate::timeline::primitive::CONDITION)
        });
        self.block.state().notify(n);
    }

    /// Wakes every waiter. Python: `cond.notify_all()`.
    pub fn notify_all(&self) {
        crate::timeline::record(crate::timeline::Kind::Notify, || {
            (0, crate::timeline::primitive::CONDITION)
        });
        self.block.state().notify(u32::MAX);
    }

    fn wait_until<'a>(
        &'a self,
        guard: L::Guard<'a>,
        deadline: Option<Instant>,
    ) -> Result<(L::Guard<'a>, bool), AcquireError<L::Guard<'static>>> {
        let _wait = crate::timeline::span(crate::timeline::Kind::Wait, || {
            (0, crate::timeline::primitive::CONDITION)
        });
        if !self.lock.owns(&guard) {
            return Err(AcquireError::Os(io::Error::new(
                io::ErrorKind::InvalidInput,
                "the guard is not of this condition's lock",
            )));
        }
        let state = self.block.state();
        // Registered while the lock is held, so a notify made after this wait began sees it.
        let waiting = state.register();
        let levels = L::release_all(guard);
        let notified = match waiting {
            Some(waiting) => state.wait(waiting, deadline),
            None => state.wait_without_slot(deadline),
        };
        match held(self.lock.acquire_until(None)) {
            Ok(guard) => {
                L::restore(&guard, levels)?;
                Ok((guard, notified))
            }
            Err(AcquireError::OwnerDied(guard)) => {
                L::restore(&guard, levels)?;
                Err(AcquireError::OwnerDied(guard))
            }
            Err(error) => Err(error),
        }
    }
}

impl<L: ConditionLock> Clone for Condition<L> {
    fn clone(&self) -> Self {
        Condition {
            lock: self.lock.clone(),
            block: Arc::clone(&self.block),
        }
    }
}

impl<L: ConditionLock + fmt::Debug> fmt::Debug for Condition<L> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Condition")
            .field("lock", &self.lock)
            .finish_non_exhaustive()
    }
}

impl<L: ConditionLock + Serialize> Serialize for Condition<L> {
    fn serialize<Z: Serializer>(&self, serializer: Z) -> Result<Z::Ok, Z::Error> {
        let block = Handle {
            block: &*self.block,
            what: "Condition",
        };
        (&self.lock, block).serialize(serializer)
    }
}

impl<'de, L: ConditionLock + Deserialize<'de>> Deserialize<'de> for Condition<L> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let (lock, Received(block)) = Deserialize::deserialize(deserializer)?;
        Ok(Condition {
            lock,
            block: Arc::new(block),
        })
    }
}
