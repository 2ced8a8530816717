//! [`Condition`]: Python's `multiprocessing.Condition`, a [`Lock`] or [`RLock`] plus a block of
//! three words that waiters sleep on.
//!
//! # Design
//!
//! A waiter registers (`waiting += 1`) while it holds the lock, releases the lock (every level
//! of an `RLock`, as CPython does), and waits for a *token*. `notify(n)`, called with the lock
//! held, turns at most `n` registered waiters into tokens (`waiting -= t`, `tokens += t`), bumps
//! the futex word `sequence` and wakes the sleepers. A waiter leaves with a token (notified)
//! or, at its deadline, by taking back its registration (timed out); if a notify already turned
//! it into a token, it takes the token instead. Waiters are anonymous: any waiter may take any
//! token, which is what "wake at most `n` of them" needs.
//!
//! A sleeper never trusts a wake-up to arrive: it re-checks at least every
//! [`LONGEST_SLEEP`], so a notifier killed between its token and its wake-up costs a delay,
//! never a hang. A waiter killed in its wait leaves one registration or token behind: a later
//! waiter may then wake once without a notify, a spurious wake-up, which Python allows too.
//! Counters written by a hostile process can cause spurious or missed wake-ups, never a hang
//! past a deadline or a crash.

use std::fmt;
use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::error::{AcquireError, ReleaseError};
use super::lock::{ConditionLock, Handle, RLock, Received, deadline_after, held};
use crate::block::{Block, BlockState};
use crate::sys::sync;

/// The longest a waiter sleeps before it re-checks for a token (see the module's docs).
const LONGEST_SLEEP: Duration = Duration::from_millis(100);

#[repr(C)]
pub(crate) struct ConditionState {
    /// The futex word: bumped by every notify that made tokens.
    sequence: AtomicU32,
    /// Waiters registered and neither notified nor timed out.
    waiting: AtomicU32,
    /// Notifications made and not yet taken by a waiter.
    tokens: AtomicU32,
}

// SAFETY: three atomics: every bit pattern is valid, zero is the start, align 4.
unsafe impl BlockState for ConditionState {
    const KIND: [u8; 8] = *b"cond---1";

    unsafe fn init(&self) -> io::Result<()> {
        Ok(())
    }
}

/// Takes one from `counter` if it is above zero.
fn take(counter: &AtomicU32) -> bool {
    counter
        .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1))
        .is_ok()
}

impl ConditionState {
    /// Waits for a token until `deadline`: `true` if it took one (notified), `false` if it
    /// took its registration back (timed out).
    fn wait_for_token(&self, deadline: Option<Instant>) -> bool {
        loop {
            if take(&self.tokens) {
                return true;
            }
            let sequence = self.sequence.load(Ordering::Acquire);
            // A notify between the check above and the load made its token before its bump:
            // look again, now that a later bump would make the sleep return at once.
            if take(&self.tokens) {
                return true;
            }
            let left = deadline.map(|d| d.saturating_duration_since(Instant::now()));
            if left.is_some_and(|left| left.is_zero()) {
                // Registered still, or a notify made a token of us; either is ours to take.
                // Neither is there only if another process rewrote the counters.
                return !take(&self.waiting) && take(&self.tokens);
            }
            let sleep = left.map_or(LONGEST_SLEEP, |left| left.min(LONGEST_SLEEP));
            sync::futex_wait(&self.sequence, sequence, Some(sleep));
        }
    }

    /// Makes up to `n` tokens of registered waiters, and wakes the sleepers if it made any.
    fn notify(&self, n: u32) {
        let Ok(waiting) =
            self.waiting
                .fetch_update(Ordering::AcqRel, Ordering::Acquire, |waiting| {
                    (waiting > 0 && n > 0).then(|| waiting - waiting.min(n))
                })
        else {
            return;
        };
        self.tokens.fetch_add(waiting.min(n), Ordering::AcqRel);
        self.sequence.fetch_add(1, Ordering::Release);
        sync::futex_wake_all(&self.sequence);
    }
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
    pub fn acquire(&self) -> Result<L::Guard, AcquireError<L::Guard>> {
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
    ) -> Result<Option<L::Guard>, AcquireError<L::Guard>> {
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
    pub fn wait(&self, guard: L::Guard) -> Result<L::Guard, AcquireError<L::Guard>> {
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
    pub fn wait_timeout(
        &self,
        guard: L::Guard,
        timeout: Duration,
    ) -> Result<(L::Guard, bool), AcquireError<L::Guard>> {
        self.wait_until(guard, deadline_after(timeout))
    }

    /// Waits until `predicate` returns `true`, calling it with the lock held, first before any
    /// wait. Python: `cond.wait_for(predicate)`.
    ///
    /// # Errors
    /// As [`wait`](Self::wait).
    pub fn wait_for(
        &self,
        guard: L::Guard,
        mut predicate: impl FnMut() -> bool,
    ) -> Result<L::Guard, AcquireError<L::Guard>> {
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
    pub fn wait_for_timeout(
        &self,
        guard: L::Guard,
        timeout: Duration,
        mut predicate: impl FnMut() -> bool,
    ) -> Result<(L::Guard, bool), AcquireError<L::Guard>> {
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
        self.block.state().notify(n);
    }

    /// Wakes every waiter. Python: `cond.notify_all()`.
    pub fn notify_all(&self) {
        self.block.state().notify(u32::MAX);
    }

    fn wait_until(
        &self,
        guard: L::Guard,
        deadline: Option<Instant>,
    ) -> Result<(L::Guard, bool), AcquireError<L::Guard>> {
        if !self.lock.owns(&guard) {
            return Err(AcquireError::Os(io::Error::new(
                io::ErrorKind::InvalidInput,
                "the guard is not of this condition's lock",
            )));
        }
        let state = self.block.state();
        // Registered while the lock is held, so a notify made after this wait began sees it.
        state.waiting.fetch_add(1, Ordering::AcqRel);
        let levels = L::release_all(guard);
        let notified = state.wait_for_token(deadline);
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
