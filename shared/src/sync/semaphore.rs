//! [`Semaphore`] and [`BoundedSemaphore`]: counters of units that processes and threads
//! acquire and release. Python: `multiprocessing.Semaphore` and `BoundedSemaphore`.
//!
//! # Design: slots, and credits
//!
//! A count in shared memory cannot tell who holds a unit, so it cannot give back the unit of a
//! process that died holding it: CPython's semaphore (a POSIX `sem_t`) loses that unit for
//! ever, and a `Semaphore(1)` used as a lock stays taken. Here a semaphore of `value` units
//! starts as `value` **slots** (at most [`MAX_SLOTS`]), each a robust mutex in the block.
//! `acquire` takes any free slot and returns a guard that unlocks it on drop; when a slot's
//! holder dies, the kernel marks its mutex, and the next `acquire` gets that slot with
//! [`AcquireError::OwnerDied`]. Every acquirer scans the slots with `try_lock` (no system
//! call), then sleeps on a futex ([`Waiters`]), re-scanning at least every
//! [`LONGEST_SLEEP`](super::event::LONGEST_SLEEP), so that a slot freed by a death (which wakes
//!
//! Python's plain `Semaphore` is also a signalling counter: `release()` by a process that
//! never acquired raises the count above its start, and `acquire()` without a `release()`
//! consumes a unit. Slots cannot represent that, so:
//!
//! - [`SemaphoreGuard::forget`] consumes the unit: its slot is **retired** (unlocked, and
//!   skipped by acquirers);
//! - [`Semaphore::release`] (no guard) first brings a retired slot back, and otherwise adds a
//!   **credit**, a plain count that `acquire` takes when no slot is free. A guard holding a
//!   credit gives it back on drop.
//!
//! What is safe when a holder dies: a slot, always (the next acquirer is told). A credit is a
//! count, as in CPython: a process killed holding one loses it. A unit consumed with `forget`
//! belongs to nobody until someone calls `release`, as in CPython.
//!
//! [`BoundedSemaphore`] never has credits: its `release` only brings back a retired slot, and
//! fails with [`ReleaseError::TooManyReleases`] when none is retired (the count is back at its
//! bound). Python: `ValueError: Semaphore released too many times`.
//!
//! # Checked at the boundary
//!
//! The number of slots and the kind (bounded or not) are read once, when a handle is made or
//! received, and checked; the handle keeps them, so a rewritten header cannot send it past the
//! slots. The other words (bitmaps of held and retired slots, the credit count, the sleepers)
//! mean something whatever their bits, and bits past the slots are ignored.

use std::fmt;
use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::AcquireError;
use super::ReleaseError;
use super::event::LONGEST_SLEEP;
use super::guard::{Guard, Site, Taker, with_death};
use crate::block::{Block, BlockState};
use crate::sys::sync::{RobustMutex, Waiters};

/// The most units a semaphore can start with: one robust mutex per unit, and one bit each in
/// the bitmaps of held and retired slots.
pub const MAX_SLOTS: usize = 64;

/// The most credits a plain [`Semaphore`] counts, as Linux's `SEM_VALUE_MAX`: CPython's
/// `release` fails with `OverflowError` there.
const MAX_CREDITS: u32 = i32::MAX as u32;

/// A robust mutex on a cache line of its own.
#[repr(C, align(64))]
struct Slot(RobustMutex);

/// The shared state.
#[repr(C)]
struct SemaphoreState {
    /// How many slots there are; read once per handle and checked.
    slots: AtomicU32,
    /// 1 for a [`BoundedSemaphore`], 0 for a [`Semaphore`]; read once per handle and checked.
    bounded: AtomicU32,
    /// Units released beyond the slots (a plain `Semaphore` only).
    credits: AtomicU32,
    /// Bit `i`: slot `i` is held (set after its lock, cleared before its unlock). A holder that
    /// died leaves its bit set until the next acquirer takes the slot over.
    held: AtomicU64,
    /// Bit `i`: slot `i` was consumed by [`SemaphoreGuard::forget`] and is skipped.
    retired: AtomicU64,
    waiters: Waiters,
    mutexes: [Slot; MAX_SLOTS],
}

// SAFETY: atomics and robust mutexes only (see `RobustMutex`: any bytes are a mutex glibc
// reads, or refuses); all zeros is no slot and no credit, to which `init` adds the slots;
// align 64.
unsafe impl BlockState for SemaphoreState {
    const KIND: [u8; 8] = *b"semaph-2";
    unsafe fn init(&self) -> io::Result<()> {
        for slot in &self.mutexes {
            // SAFETY: the state is fresh, and nothing else can reach it (the caller's promise).
            unsafe { slot.0.init()? };
        }
        Ok(())
    }
}

/// What both kinds of semaphore hold: the block, and the slot count checked once.
#[derive(Clone)]
struct Core {
    block: Arc<Block<SemaphoreState>>,
    slots: usize,
    bounded: bool,
}

impl Core {
    fn create(value: usize, bounded: bool) -> io::Result<Core> {
        if value > MAX_SLOTS {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("a semaphore starts with at most {MAX_SLOTS} units, not {value}"),
            ));
        }
        let block = Block::<SemaphoreState>::create(c"shared-semaphore", 0)?;
        let state = block.state();
        state.slots.store(value as u32, Ordering::Relaxed);
        state.bounded.store(u32::from(bounded), Ordering::Relaxed);
        Ok(Core {
            block: Arc::new(block),
            slots: value,
            bounded,
        })
    }

    /// A block another process made, as a semaphore of the kind asked for.
    fn open(block: Block<SemaphoreState>, bounded: bool) -> io::Result<Core> {
        let state = block.state();
        let slots = state.slots.load(Ordering::Relaxed) as usize;
        let kind = state.bounded.load(Ordering::Relaxed);
        if slots > MAX_SLOTS || kind != u32::from(bounded) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "not a semaphore of this kind made by shared",
            ));
        }
        Ok(Core {
            block: Arc::new(block),
            slots,
            bounded,
        })
    }

    fn state(&self) -> &SemaphoreState {
        self.block.state()
    }

    /// The bits of the slots that exist.
    fn mask(&self) -> u64 {
        match self.slots {
            MAX_SLOTS => u64::MAX,
            slots => (1 << slots) - 1,
        }
    }

    /// Takes a free slot, or else a credit, without waiting; also whether the slot's previous
    /// holder died holding it.
    fn try_take(&self) -> io::Result<Option<(Unit, bool)>> {
        let state = self.state();
        for index in 0..self.slots {
            let bit = 1 << index;
            if state.retired.load(Ordering::Acquire) & bit != 0 {
                continue;
            }
            let slot = Held {
                index,
                retire: false,
            };
            let Some((guard, died)) = with_death(Guard::try_lock(&self.block, slot))? else {
                continue;
            };
            // Retired between the check and the lock (by the holder before, which sets the bit
            // before it unlocks): not a unit to take. Dropping the guard gives the slot back.
            if state.retired.load(Ordering::Acquire) & bit != 0 {
                continue;
            }
            state.held.fetch_or(bit, Ordering::Relaxed);
            return Ok(Some((Unit::Slot(guard.into_owned()), died)));
        }
        if self.bounded {
            return Ok(None);
        }
        let credit = state
            .credits
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |c| c.checked_sub(1));
        let unit = || Unit::Credit(Arc::clone(&self.block), Taker::here());
        Ok(credit.is_ok().then(|| (unit(), false)))
    }

    fn acquire_until(&self, deadline: Option<Instant>) -> Acquired {
        let _acquire = crate::timeline::span(crate::timeline::Kind::Acquire, || {
            (0, crate::timeline::primitive::SEMAPHORE)
        });
        let taken = self
            .state()
            .waiters
            .wait_for(deadline, LONGEST_SLEEP, || self.try_take())?;
        Ok(taken.map(|(unit, died)| (self.guard(unit), died)))
    }

    fn guard(&self, unit: Unit) -> SemaphoreGuard {
        SemaphoreGuard { unit }
    }

    /// Python's `release()`: brings back a retired slot, or else (unbounded only) adds a
    /// credit.
    fn release(&self) -> Result<(), ReleaseError> {
        crate::timeline::record(crate::timeline::Kind::Release, || {
            (0, crate::timeline::primitive::SEMAPHORE)
        });
        let state = self.state();
        let mask = self.mask();
        let revived = state
            .retired
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |retired| {
                let retired = retired & mask;
                // Clear the lowest retired slot's bit.
                (retired != 0).then(|| retired & (retired - 1))
            });
        if revived.is_err() {
            if self.bounded {
                return Err(ReleaseError::TooManyReleases);
            }
            state
                .credits
                .fetch_update(Ordering::AcqRel, Ordering::Acquire, |c| {
                    (c < MAX_CREDITS).then(|| c + 1)
                })
                .map_err(|_| io::Error::from_raw_os_error(nix::libc::EOVERFLOW))?;
        }
        state.waiters.wake_sleepers();
        Ok(())
    }

    fn value(&self) -> usize {
        let state = self.state();
        let taken = (state.held.load(Ordering::Relaxed) | state.retired.load(Ordering::Relaxed))
            & self.mask();
        let credits = match self.bounded {
            true => 0,
            false => state.credits.load(Ordering::Relaxed).min(MAX_CREDITS) as usize,
        };
        self.slots - taken.count_ones() as usize + credits
    }
}

/// What an acquire found: a guard and whether the slot's previous holder died, or nothing
/// before the deadline.
type Acquired = io::Result<Option<(SemaphoreGuard, bool)>>;

/// As the public API reports it: a dead previous holder is an error that carries the guard.
fn reported(acquired: Acquired) -> Result<Option<SemaphoreGuard>, AcquireError<SemaphoreGuard>> {
    match acquired? {
        Some((guard, true)) => Err(AcquireError::OwnerDied(guard)),
        Some((guard, false)) => Ok(Some(guard)),
        None => Ok(None),
    }
}

/// For `acquire`, which has no deadline.
fn waited(acquired: Acquired) -> Result<SemaphoreGuard, AcquireError<SemaphoreGuard>> {
    reported(acquired)?.ok_or_else(|| AcquireError::Os(io::Error::other("no deadline passed")))
}

/// A slot held by a guard, and whether its release retires it.
struct Held {
    /// Below the number of slots, so below [`MAX_SLOTS`].
    index: usize,
    /// Set by [`SemaphoreGuard::forget`].
    retire: bool,
}

impl Site<SemaphoreState> for Held {
    type Raw = RobustMutex;
    const RECORDED: Option<u64> = Some(crate::timeline::primitive::SEMAPHORE);

    fn raw<'s>(&self, state: &'s SemaphoreState) -> &'s RobustMutex {
        &state.mutexes[self.index].0
    }

    /// The bit of a slot is cleared while it is still held: once unlocked, its next holder
    /// sets it. A retired slot is marked before its unlock, so that an acquirer that locks it
    /// next sees the mark.
    fn before_unlock(&self, state: &SemaphoreState) {
        let bit = 1 << self.index;
        if self.retire {
            state.retired.fetch_or(bit, Ordering::Release);
        }
        state.held.fetch_and(!bit, Ordering::Relaxed);
    }

    /// A slot given back is one more unit for the waiters; a retired one is not.
    fn after_unlock(&self, state: &SemaphoreState) {
        if !self.retire {
            state.waiters.wake_sleepers();
        }
    }
}

/// What a guard holds.
enum Unit {
    /// A slot, locked by this thread.
    Slot(Guard<'static, SemaphoreState, Held>),
    /// A credit, taken from the count of this block by this thread.
    Credit(Arc<Block<SemaphoreState>>, Taker),
    /// Nothing any more: given up by `forget`.
    Spent,
}

/// One unit of a [`Semaphore`] or [`BoundedSemaphore`], held by this thread; given back when
/// dropped (Python: `release()` after `acquire()`, or leaving `with sem:`). Not `Send`: a slot
/// is a mutex, which the thread that locked it unlocks.
///
/// A guard that a forked child inherited (through a thread-local, say) gives nothing back
/// there: the unit is its parent's to give back, or it would be returned twice.
///
/// ```compile_fail
/// fn send<T: Send>(_: T) {}
/// let semaforo = shared::Semaphore::new(1).unwrap();
/// send(semaforo.acquire().unwrap()); // not `Send`: the thread that acquired it releases it
/// ```
#[must_use = "the unit is given back as soon as the guard is dropped"]
pub struct SemaphoreGuard {
    unit: Unit,
}

impl SemaphoreGuard {
    /// Keeps the unit taken after the guard is gone: Python's `acquire()` with no `release()`
    /// to follow (a consumer of a signalling semaphore), or with a `release()` that another
    /// process or thread will make ([`Semaphore::release`]). The count stays one lower until
    /// then.
    ///
    /// A slot given up this way is retired: no process holds it, so none can die holding it.
    ///
    /// ```
    /// let semaforo = shared::BoundedSemaphore::new(1)?;
    /// semaforo.acquire()?.forget();
    /// assert_eq!(semaforo.get_value(), 0);
    /// semaforo.release()?; // from any thread or process
    /// assert_eq!(semaforo.get_value(), 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn forget(mut self) {
        match std::mem::replace(&mut self.unit, Unit::Spent) {
            // Dropped at once: retired, then unlocked (by the thread that took it only).
            Unit::Slot(mut guard) => guard.site_mut().retire = true,
            // Consumed: the count stays as it is.
            Unit::Credit(..) | Unit::Spent => {}
        }
    }
}

impl Drop for SemaphoreGuard {
    fn drop(&mut self) {
        // A slot's guard gives it back itself; a credit is a count to raise again, by the
        // thread that took it only (not a forked child's copy of the guard).
        let Unit::Credit(block, taker) = &self.unit else {
            return;
        };
        if !taker.is_here() {
            return;
        }
        let state = block.state();
        let _ = state
            .credits
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |c| {
                Some(c.saturating_add(1))
            });
        state.waiters.wake_sleepers();
    }
}

impl fmt::Debug for SemaphoreGuard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let unit = match &self.unit {
            Unit::Slot(guard) => format!("slot {}", guard.site().index),
            Unit::Credit(..) => "credit".to_owned(),
            Unit::Spent => "none".to_owned(),
        };
        f.debug_struct("SemaphoreGuard")
            .field("unit", &unit)
            .finish()
    }
}

/// A counter of units shared by processes and threads. Python: `multiprocessing.Semaphore`.
///
/// It starts with `value` units (at most [`MAX_SLOTS`]); [`acquire`](Self::acquire) takes
/// one and returns a guard that gives it back on drop, waiting while there is none. If a
/// process dies holding a unit it started with, the next acquirer gets that unit and is told
/// ([`AcquireError::OwnerDied`]); CPython's semaphore loses it for ever. [`release`](
/// Self::release) without a guard raises the count, as Python's does; units it adds are plain
/// counts, lost if their holder dies (see the module's design notes in the source).
///
/// ```
/// use shared::{Process, Semaphore};
///
/// fn trabalhar(semaforo: Semaphore) -> Result<(), Box<dyn std::error::Error>> {
///     let _vaga = semaforo.acquire()?; // at most 2 processes in here at once
///     Ok(())
/// }
///
/// let semaforo = Semaphore::new(2)?;
/// let mut processos: Vec<_> =
///     (0..4).map(|_| Process::new(trabalhar, (semaforo.clone(),))).collect();
/// for processo in &mut processos {
///     processo.start()?;
/// }
/// for processo in &mut processos {
///     processo.join()?;
///     assert_eq!(processo.exitcode(), Some(0));
/// }
/// assert_eq!(semaforo.get_value(), 2);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct Semaphore {
    core: Core,
}

/// A [`Semaphore`] whose count never exceeds its start: a `release` beyond it is an error.
/// Python: `multiprocessing.BoundedSemaphore`.
///
/// Every unit is a slot, so every holder that dies is reported to the next acquirer
/// ([`AcquireError::OwnerDied`]).
///
/// ```
/// let semaforo = shared::BoundedSemaphore::new(2)?;
/// let vaga = semaforo.acquire()?;
/// assert_eq!(semaforo.get_value(), 1);
/// drop(vaga); // given back
/// assert!(semaforo.release().unwrap_err().to_string().contains("too many"));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct BoundedSemaphore {
    core: Core,
}

/// The methods both kinds share, documented once on [`Semaphore`].
macro_rules! semaphore_methods {
    ($type:ident, $bounded:expr) => {
        impl $type {
            /// Acquires a unit, waiting while there is none. Python: `acquire()`, or
            /// `with sem:`.
            ///
            /// ```
            #[doc = concat!("let semaforo = shared::", stringify!($type), "::new(1)?;")]
            /// let vaga = semaforo.acquire()?;
            /// assert!(semaforo.try_acquire()?.is_none());
            /// drop(vaga);
            /// assert!(semaforo.try_acquire()?.is_some());
            /// # Ok::<(), Box<dyn std::error::Error>>(())
            /// ```
            ///
            /// # Errors
            /// [`AcquireError::OwnerDied`] when the unit is a slot whose previous holder died
            /// holding it: the guard inside holds it now. [`AcquireError::Os`] if glibc refused
            /// a slot's mutex (another process overwrote it).
            pub fn acquire(&self) -> Result<SemaphoreGuard, AcquireError<SemaphoreGuard>> {
                waited(self.core.acquire_until(None))
            }

            /// As [`acquire`](Self::acquire), but gives up after `timeout`: `Ok(None)`.
            /// Python: `acquire(timeout=t)`, which returns `False` then.
            ///
            /// ```
            /// use std::time::Duration;
            #[doc = concat!("let semaforo = shared::", stringify!($type), "::new(1)?;")]
            /// let _vaga = semaforo.acquire()?;
            /// assert!(semaforo.acquire_timeout(Duration::from_millis(10))?.is_none());
            /// # Ok::<(), Box<dyn std::error::Error>>(())
            /// ```
            ///
            /// # Errors
            /// As [`acquire`](Self::acquire).
            pub fn acquire_timeout(
                &self,
                timeout: Duration,
            ) -> Result<Option<SemaphoreGuard>, AcquireError<SemaphoreGuard>> {
                reported(self.core.acquire_until(Instant::now().checked_add(timeout)))
            }

            /// Acquires a unit only if one is free now: `Ok(None)` otherwise. Python:
            /// `acquire(False)` (`block=False`).
            ///
            /// ```
            #[doc = concat!("let semaforo = shared::", stringify!($type), "::new(0)?;")]
            /// assert!(semaforo.try_acquire()?.is_none());
            /// # Ok::<(), Box<dyn std::error::Error>>(())
            /// ```
            ///
            /// # Errors
            /// As [`acquire`](Self::acquire).
            pub fn try_acquire(
                &self,
            ) -> Result<Option<SemaphoreGuard>, AcquireError<SemaphoreGuard>> {
                let taken = self
                    .core
                    .try_take()
                    .map(|taken| taken.map(|(unit, died)| (self.core.guard(unit), died)));
                reported(taken)
            }

            /// The number of units free now. Python: `get_value()`.
            ///
            /// A unit whose holder died counts as taken until the next acquirer takes it over.
            ///
            /// ```
            #[doc = concat!("let semaforo = shared::", stringify!($type), "::new(3)?;")]
            /// let _vaga = semaforo.acquire()?;
            /// assert_eq!(semaforo.get_value(), 2);
            /// # Ok::<(), Box<dyn std::error::Error>>(())
            /// ```
            pub fn get_value(&self) -> usize {
                self.core.value()
            }

            fn from_core(core: Core) -> Self {
                $type { core }
            }
        }

        impl fmt::Debug for $type {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_struct(stringify!($type))
                    .field("value", &self.get_value())
                    .finish()
            }
        }

        /// Under spawn, a semaphore crosses as its memfd; see
        /// [`Process::new`](crate::Process::new).
        impl Serialize for $type {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                self.core.block.serialize(serializer, stringify!($type))
            }
        }

        impl<'de> Deserialize<'de> for $type {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let block = Block::deserialize(deserializer)?;
                let core = Core::open(block, $bounded).map_err(serde::de::Error::custom)?;
                Ok($type::from_core(core))
            }
        }
    };
}

semaphore_methods!(Semaphore, false);
semaphore_methods!(BoundedSemaphore, true);

impl Semaphore {
    /// A semaphore with `value` units. Python: `multiprocessing.Semaphore(value)`.
    ///
    /// # Errors
    /// `InvalidInput` when `value` is above [`MAX_SLOTS`] (start lower and [`release`](
    /// Self::release) more: released units are not limited); the system's error if it refused
    /// the shared memory.
    pub fn new(value: usize) -> io::Result<Semaphore> {
        Core::create(value, false).map(Semaphore::from_core)
    }

    /// Adds a unit. Python: `release()`, which any process or thread may call, whether or not
    /// it acquired.
    ///
    /// A unit given up with [`SemaphoreGuard::forget`] comes back first; otherwise the count
    /// rises above its start, as a signalling counter does.
    ///
    /// ```
    /// let sinal = shared::Semaphore::new(0)?;
    /// sinal.release()?; // a producer signals
    /// assert_eq!(sinal.get_value(), 1);
    /// sinal.acquire()?.forget(); // a consumer takes the signal for good
    /// assert_eq!(sinal.get_value(), 0);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// [`ReleaseError::Os`] (`EOVERFLOW`) past 2³¹ − 1 units, where CPython raises
    /// `OverflowError`.
    pub fn release(&self) -> Result<(), ReleaseError> {
        self.core.release()
    }
}

impl BoundedSemaphore {
    /// A bounded semaphore with `value` units, which is also its bound. Python:
    /// `multiprocessing.BoundedSemaphore(value)`.
    ///
    /// # Errors
    /// `InvalidInput` when `value` is above [`MAX_SLOTS`]; the system's error if it refused
    /// the shared memory.
    pub fn new(value: usize) -> io::Result<BoundedSemaphore> {
        Core::create(value, true).map(BoundedSemaphore::from_core)
    }

    /// Gives back a unit taken with [`SemaphoreGuard::forget`], from any thread or process.
    /// Python: `release()`.
    ///
    /// ```
    /// let semaforo = shared::BoundedSemaphore::new(1)?;
    /// semaforo.acquire()?.forget();
    /// semaforo.release()?;
    /// assert!(matches!(semaforo.release(), Err(shared::ReleaseError::TooManyReleases)));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// [`ReleaseError::TooManyReleases`] when no unit is out that way: the count would pass
    /// its bound. Python: `ValueError: Semaphore released too many times`.
    pub fn release(&self) -> Result<(), ReleaseError> {
        self.core.release()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn more_than_max_slots_is_refused() {
        let error = Semaphore::new(MAX_SLOTS + 1).unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::InvalidInput);
        assert!(BoundedSemaphore::new(MAX_SLOTS + 1).is_err());
        let full = Semaphore::new(MAX_SLOTS).unwrap();
        let guards: Vec<_> = (0..MAX_SLOTS).map(|_| full.acquire().unwrap()).collect();
        assert_eq!(full.get_value(), 0);
        assert!(full.try_acquire().unwrap().is_none());
        drop(guards);
        assert_eq!(full.get_value(), MAX_SLOTS);
    }

    #[test]
    fn a_thread_that_dies_holding_a_slot_is_reported_to_the_next_acquirer() {
        let semaphore = Semaphore::new(1).unwrap();
        std::thread::scope(|scope| {
            // A thread that exits holding a robust mutex is, to the kernel, an owner that died.
            scope.spawn(|| std::mem::forget(semaphore.acquire().unwrap()));
        });
        assert_eq!(
            semaphore.get_value(),
            0,
            "a dead holder's slot counts as taken"
        );
        let guard = semaphore.acquire().unwrap_err().into_guard().unwrap();
        drop(guard);
        assert_eq!(semaphore.get_value(), 1);
        assert!(semaphore.acquire().is_ok(), "reported once");
    }

    #[test]
    fn words_another_process_rewrote_give_plain_answers() {
        let semaphore = BoundedSemaphore::new(2).unwrap();
        let state = semaphore.core.state();
        state.held.store(u64::MAX, Ordering::Relaxed);
        state.retired.store(u64::MAX, Ordering::Relaxed);
        state.credits.store(u32::MAX, Ordering::Relaxed);
        state.slots.store(u32::MAX, Ordering::Relaxed);
        assert_eq!(semaphore.get_value(), 0);
        // Every slot looks retired, and a bounded semaphore has no credits to take.
        assert!(semaphore.try_acquire().unwrap().is_none());
        semaphore.release().unwrap();
        state.retired.store(0, Ordering::Relaxed);
        state.held.store(0, Ordering::Relaxed);
        state.credits.store(0, Ordering::Relaxed);
        let (a, b) = (semaphore.acquire().unwrap(), semaphore.acquire().unwrap());
        assert!(semaphore.try_acquire().unwrap().is_none());
        drop((a, b));
        // A handle received by another process reads the slot count once, and checks it.
        let block = Block::open(semaphore.core.block.file().try_clone_to_owned().unwrap());
        assert!(Core::open(block.unwrap(), true).is_err());
    }
}
