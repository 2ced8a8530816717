//! [`Barrier`]: `parties` processes or threads wait until all have arrived. Python:
//! `multiprocessing.Barrier` (which is `threading.Barrier` over shared state).
//!
//! # Design
//!
//! Under one robust mutex the block holds the number of arrivals in the current generation,
//! the generation, whether the barrier is broken (and why), and a table of the parties that
//! wait: for each, its PID, its start time, its arrival index, and its outcome. The last party
//! to arrive marks every waiting entry *tripped* and starts the next generation; `abort`, a
//! timed-out wait or a dead party marks them *broken*. Each waiter sleeps on a futex word that
//! every such change bumps, wakes, reads its own entry's outcome and frees the entry. Because
//! the outcome is written into the waiter's own entry, a waiter that wakes late still learns
//! how its generation ended, however many generations have passed since (CPython's barrier
//! gets the same effect by making new arrivals wait until the last generation has drained).
//!
//! # A party that dies
//!
//! CPython's barrier waits for ever for a party killed while the others wait. Here every
//! waiter wakes at least every [`LONGEST_SLEEP`](super::event::LONGEST_SLEEP) and checks the
//! PIDs in the table: if a waiting party's process is gone, it breaks the barrier with
//! [`BrokenBarrierError::PartyDied`], for itself and every other waiter. A PID alone could
//! name a new process that the kernel gave the dead one's PID, so each entry also records the
//! start time that `/proc/PID/stat` gives (clock ticks since boot): a process is gone when
//! `/proc` no longer lists it, lists it as a zombie (a parent blocked at the barrier reaps
//! nothing), or lists a different start time (its PID was reused). When `/proc` hides other
//! users' processes (`hidepid`), `kill(pid, 0)` still tells a PID that is free.
//!
//! What cannot be detected: a party that dies *before* it arrives is, to the others, a party
//! that has not arrived yet; CPython cannot tell either, and a `wait_timeout` is the remedy.
//! A *thread* that dies while its process lives is not detected either: the check is per
//! process. A process that dies holding the barrier's mutex (inside a call, for microseconds)
//! breaks it with `PartyDied` for everyone, since what it was changing may be half-done;
//! `reset` makes it usable again.
//!
//! # Checked at the boundary
//!
//! `parties` is read once per handle and checked; the arrival count must be below it, each
//! entry must hold a known state, and a waiter's entry must still name it, or the call fails
//! with an `InvalidData` error ([`BrokenBarrierError::Os`]). Nothing read from the block is
//! used as an index without such a check, and every loop is bounded by the table's size or by
//! a futex sleep.

use std::fmt;
use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::BrokenBarrierError;
use super::event::LONGEST_SLEEP;
use super::guard::{Guard, Site, with_death};
use crate::block::{Block, BlockState};
use crate::sys::process::{Liveness, liveness};
use crate::sys::sync::{self, RobustMutex};

/// The most parties a barrier can have.
pub const MAX_PARTIES: usize = 64;

/// Entries in the table of waiters: room for every waiter of one generation, and for as many
/// woken ones that have not yet collected their outcome.
const TABLE: usize = 2 * MAX_PARTIES;

/// The states of an entry of the table.
const FREE: u32 = 0;
const WAITING: u32 = 1;
const TRIPPED: u32 = 2;
const BROKEN: u32 = 3;
const PARTY_DIED: u32 = 4;

/// One waiting party, or the outcome it has yet to collect.
#[repr(C)]
struct Waiter {
    /// [`FREE`], [`WAITING`], or the outcome: [`TRIPPED`], [`BROKEN`], [`PARTY_DIED`].
    state: AtomicU32,
    pid: AtomicU32,
    /// The arrival index, returned by `wait`.
    index: AtomicU32,
    _reserved: AtomicU32,
    /// The process's start time (`/proc/PID/stat`), 0 if unknown.
    start_time: AtomicU64,
}

/// The shared state; every field but the mutex is read and written under it.
#[repr(C)]
struct BarrierState {
    lock: RobustMutex,
    parties: AtomicU32,
    /// Arrivals in the current generation, below `parties`.
    count: AtomicU32,
    /// 0, or why it is broken: [`BROKEN`] or [`PARTY_DIED`].
    broken: AtomicU32,
    /// The futex word: bumped by every change a waiter may be waiting for.
    sequence: AtomicU32,
    waiters: [Waiter; TABLE],
}

// SAFETY: a robust mutex (see `RobustMutex`) and atomics: every bit pattern is valid; all
// zeros, once `init` has set up the mutex, is a barrier nobody waits at; align 8.
unsafe impl BlockState for BarrierState {
    const KIND: [u8; 8] = *b"barrier1";
    unsafe fn init(&self) -> io::Result<()> {
        // SAFETY: the state is fresh, and nothing else can reach it (the caller's promise).
        unsafe { self.lock.init() }
    }
}

/// A corruption of the block, found by a check.
fn corrupt(what: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("another process corrupted the barrier's memory: {what}"),
    )
}

/// Who the calling thread is, as the table records it.
struct Me {
    pid: u32,
    start_time: u64,
}

impl Me {
    fn now() -> Me {
        let pid = std::process::id();
        let start_time = match liveness(pid) {
            Liveness::Running { start_time } => start_time,
            Liveness::Gone | Liveness::Unknown => 0,
        };
        Me { pid, start_time }
    }
}

/// The site of the barrier's mutex, and whether its holder changed something the waiters
/// wait for: then the release bumps the futex word before the unlock, and wakes them after it.
struct Changes {
    changed: bool,
}

impl Site<BarrierState> for Changes {
    type Raw = RobustMutex;

    fn raw<'s>(&self, state: &'s BarrierState) -> &'s RobustMutex {
        &state.lock
    }

    fn before_unlock(&self, state: &BarrierState) {
        if self.changed {
            state.sequence.fetch_add(1, Ordering::Release);
        }
    }

    fn after_unlock(&self, state: &BarrierState) {
        if self.changed {
            sync::futex_wake_all(&state.sequence);
        }
    }
}

/// The barrier's state, locked.
struct Locked<'a> {
    state: &'a BarrierState,
    parties: usize,
    guard: Guard<'a, BarrierState, Changes>,
}

impl Locked<'_> {
    /// Marks a change the waiters wait for: the release wakes them.
    fn changed(&mut self) {
        self.guard.site_mut().changed = true;
    }

    /// The arrivals so far, checked.
    fn count(&self) -> io::Result<usize> {
        let count = self.state.count.load(Ordering::Relaxed) as usize;
        if count >= self.parties {
            return Err(corrupt(&format!("{count} arrivals of {}", self.parties)));
        }
        Ok(count)
    }

    /// Gives every waiting party `outcome` and empties the generation.
    fn end_generation(&mut self, outcome: u32) {
        for waiter in &self.state.waiters {
            if waiter.state.load(Ordering::Relaxed) == WAITING {
                waiter.state.store(outcome, Ordering::Relaxed);
            }
        }
        self.state.count.store(0, Ordering::Relaxed);
        self.changed();
    }

    /// Breaks the barrier: waiting parties and later waits fail with `why` until a reset.
    fn break_with(&mut self, why: u32) {
        self.end_generation(why);
        self.state.broken.store(why, Ordering::Relaxed);
    }

    /// The outcome of a broken barrier, if it is.
    fn broken(&self) -> Option<BrokenBarrierError> {
        match self.state.broken.load(Ordering::Relaxed) {
            0 => None,
            PARTY_DIED => Some(BrokenBarrierError::PartyDied),
            _ => Some(BrokenBarrierError::Broken),
        }
    }

    /// Takes an entry for the caller, arriving with `index`: a free one, or one whose owner
    /// left without collecting its outcome (it died) or that holds no known state.
    fn claim(&mut self, me: &Me, index: usize) -> Option<usize> {
        let reclaimable = |waiter: &Waiter| match waiter.state.load(Ordering::Relaxed) {
            FREE => true,
            WAITING => false,
            TRIPPED | BROKEN | PARTY_DIED => is_gone(waiter),
            _ => true,
        };
        let entry = self.state.waiters.iter().position(reclaimable)?;
        let waiter = &self.state.waiters[entry];
        waiter.pid.store(me.pid, Ordering::Relaxed);
        waiter.start_time.store(me.start_time, Ordering::Relaxed);
        waiter.index.store(index as u32, Ordering::Relaxed);
        waiter.state.store(WAITING, Ordering::Relaxed);
        Some(entry)
    }

    /// Whether a waiting party other than `entry` belongs to a process that is gone.
    fn a_party_died(&self, entry: usize) -> bool {
        self.state
            .waiters
            .iter()
            .enumerate()
            .any(|(other, waiter)| {
                other != entry && waiter.state.load(Ordering::Relaxed) == WAITING && is_gone(waiter)
            })
    }

    fn free(&mut self, entry: usize) {
        self.state.waiters[entry]
            .state
            .store(FREE, Ordering::Relaxed);
        self.changed();
    }
}

/// Whether the process an entry names has exited, or its PID now names another process.
fn is_gone(waiter: &Waiter) -> bool {
    let recorded = waiter.start_time.load(Ordering::Relaxed);
    match liveness(waiter.pid.load(Ordering::Relaxed)) {
        Liveness::Gone => true,
        Liveness::Running { start_time } => recorded != 0 && start_time != recorded,
        Liveness::Unknown => false,
    }
}

/// A meeting point for `parties` processes or threads: each [`wait`](Self::wait) returns once
/// all have arrived. Python: `multiprocessing.Barrier(parties)`.
///
/// Clone it, or pass it in a [`Process`](crate::Process)'s arguments (fork or spawn), to use it
/// from another thread or process. A party that dies while the others wait breaks it
/// ([`BrokenBarrierError::PartyDied`]) instead of leaving them waiting for ever.
///
/// ```
/// use shared::{Barrier, Process};
///
/// fn chegar(barreira: Barrier) -> Result<(), shared::BrokenBarrierError> {
///     barreira.wait()?;
///     Ok(())
/// }
///
/// let barreira = Barrier::new(2)?;
/// let mut processo = Process::new(chegar, (barreira.clone(),));
/// processo.start()?;
/// let indice = barreira.wait()?; // returns once the child has arrived too
/// assert!(indice < 2);
/// processo.join()?;
/// assert_eq!(processo.exitcode(), Some(0));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct Barrier {
    block: Arc<Block<BarrierState>>,
    parties: usize,
}

impl Barrier {
    /// A barrier for `parties` parties. Python: `multiprocessing.Barrier(parties)`; its
    /// `action` and default `timeout` have no counterpart here (the party whose `wait`
    /// returns 0 can run the action after the wait; use [`wait_timeout`](Self::wait_timeout)).
    ///
    /// # Errors
    /// `InvalidInput` when `parties` is 0 (Python's barrier would wait for ever) or above
    /// [`MAX_PARTIES`]; the system's error if it refused the shared memory.
    pub fn new(parties: usize) -> io::Result<Barrier> {
        if parties == 0 || parties > MAX_PARTIES {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("a barrier has from 1 to {MAX_PARTIES} parties, not {parties}"),
            ));
        }
        let block = Block::<BarrierState>::create(c"shared-barrier", 0)?;
        block
            .state()
            .parties
            .store(parties as u32, Ordering::Relaxed);
        Ok(Barrier {
            block: Arc::new(block),
            parties,
        })
    }

    fn state(&self) -> &BarrierState {
        self.block.state()
    }

    /// Locks the state, waiting at most until `deadline`. If the previous holder died inside a
    /// call, what it changed may be half-done: the barrier breaks with `PartyDied`.
    fn lock(&self, deadline: Option<Instant>) -> io::Result<Option<Locked<'_>>> {
        let changes = Changes { changed: false };
        let Some((guard, died)) = with_death(Guard::lock(&self.block, changes, deadline))? else {
            return Ok(None);
        };
        let mut locked = Locked {
            state: self.state(),
            parties: self.parties,
            guard,
        };
        if died {
            locked.break_with(PARTY_DIED);
        }
        Ok(Some(locked))
    }

    fn lock_now(&self) -> io::Result<Locked<'_>> {
        self.lock(None)?
            .ok_or_else(|| io::Error::other("a lock without deadline timed out"))
    }

    /// Waits until all `parties` have called `wait`, and returns this party's arrival index:
    /// from 0 for the first to arrive to `parties - 1` for the last, a different one for each.
    /// Python: `wait()`.
    ///
    /// ```
    /// let barreira = shared::Barrier::new(1)?;
    /// assert_eq!(barreira.wait()?, 0); // one party: it is the last to arrive
    /// assert_eq!(barreira.wait()?, 0); // and the barrier can be used again
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// [`BrokenBarrierError::Broken`] when the barrier is or becomes broken (by
    /// [`abort`](Self::abort), [`reset`](Self::reset) or a timed-out wait) while waiting;
    /// [`BrokenBarrierError::PartyDied`] when a waiting party's process died;
    /// [`BrokenBarrierError::Os`] when the shared state is corrupt.
    pub fn wait(&self) -> Result<usize, BrokenBarrierError> {
        self.wait_until(None)
    }

    /// As [`wait`](Self::wait), but if not every party has arrived after `timeout`, breaks
    /// the barrier (for every party) and fails with [`BrokenBarrierError::Broken`], as
    /// Python's `wait(timeout)` does.
    ///
    /// ```
    /// use std::time::Duration;
    /// let barreira = shared::Barrier::new(2)?;
    /// let error = barreira.wait_timeout(Duration::from_millis(10)).unwrap_err();
    /// assert!(matches!(error, shared::BrokenBarrierError::Broken));
    /// assert!(barreira.broken());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// As [`wait`](Self::wait).
    pub fn wait_timeout(&self, timeout: Duration) -> Result<usize, BrokenBarrierError> {
        self.wait_until(Instant::now().checked_add(timeout))
    }

    fn wait_until(&self, deadline: Option<Instant>) -> Result<usize, BrokenBarrierError> {
        let _wait = crate::timeline::span(crate::timeline::Kind::Wait, || {
            (0, crate::timeline::primitive::BARRIER)
        });
        let me = Me::now();
        let state = self.state();
        let expired = || deadline.is_some_and(|deadline| Instant::now() >= deadline);
        // Arrive: take an index, and an entry unless this arrival trips the barrier.
        let (mut locked, entry, index) = loop {
            // A holder stopped past the deadline: give up (the barrier cannot be broken
            // without its lock).
            let Some(mut locked) = self.lock(deadline)? else {
                return Err(BrokenBarrierError::Broken);
            };
            if let Some(broken) = locked.broken() {
                return Err(broken);
            }
            let index = locked.count()?;
            if index + 1 == self.parties {
                locked.end_generation(TRIPPED);
                return Ok(index);
            }
            if let Some(entry) = locked.claim(&me, index) {
                state.count.store(index as u32 + 1, Ordering::Relaxed);
                break (locked, entry, index);
            }
            // The table is full of outcomes not yet collected: wait for one to be freed.
            let sequence = state.sequence.load(Ordering::Acquire);
            drop(locked);
            if expired() {
                return Err(BrokenBarrierError::Broken);
            }
            sleep(&state.sequence, sequence, deadline);
        };
        // Wait for the outcome, checking on the other waiting parties at every wake-up.
        loop {
            let sequence = state.sequence.load(Ordering::Acquire);
            drop(locked);
            sleep(&state.sequence, sequence, deadline);
            // The deadline holds for the lock too: a holder stopped (SIGSTOP, a debugger) must
            // not keep `wait_timeout` past it. The entry stays behind; `reset` clears it.
            let Some(relocked) = self.lock(deadline)? else {
                return Err(BrokenBarrierError::Broken);
            };
            locked = relocked;
            let waiter = &state.waiters[entry];
            if waiter.pid.load(Ordering::Relaxed) != me.pid
                || waiter.index.load(Ordering::Relaxed) as usize != index
            {
                return Err(corrupt("a waiter's entry was rewritten").into());
            }
            let outcome = match waiter.state.load(Ordering::Relaxed) {
                WAITING if expired() => {
                    locked.break_with(BROKEN);
                    Err(BrokenBarrierError::Broken)
                }
                WAITING if locked.a_party_died(entry) => {
                    locked.break_with(PARTY_DIED);
                    Err(BrokenBarrierError::PartyDied)
                }
                WAITING => continue,
                TRIPPED => Ok(index),
                BROKEN => Err(BrokenBarrierError::Broken),
                PARTY_DIED => Err(BrokenBarrierError::PartyDied),
                other => Err(corrupt(&format!("a waiter's state {other}")).into()),
            };
            locked.free(entry);
            return outcome;
        }
    }

    /// Breaks the barrier: parties waiting now, and every later `wait`, fail with
    /// [`BrokenBarrierError::Broken`] until [`reset`](Self::reset). Python: `abort()`.
    ///
    /// ```
    /// let barreira = shared::Barrier::new(2)?;
    /// barreira.abort()?;
    /// assert!(barreira.broken());
    /// assert!(barreira.wait().is_err());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// The system refused the barrier's mutex (another process overwrote it).
    pub fn abort(&self) -> io::Result<()> {
        self.lock_now()?.break_with(BROKEN);
        Ok(())
    }

    /// Returns the barrier to its first state: not broken, nobody arrived. Parties waiting now
    /// fail with [`BrokenBarrierError::Broken`]. Python: `reset()`.
    ///
    /// ```
    /// let barreira = shared::Barrier::new(1)?;
    /// barreira.abort()?;
    /// barreira.reset()?;
    /// assert!(!barreira.broken());
    /// assert_eq!(barreira.wait()?, 0);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// As [`abort`](Self::abort).
    pub fn reset(&self) -> io::Result<()> {
        let mut locked = self.lock_now()?;
        locked.end_generation(BROKEN);
        self.state().broken.store(0, Ordering::Relaxed);
        Ok(())
    }

    /// The number of parties. Python: `parties`.
    ///
    /// ```
    /// assert_eq!(shared::Barrier::new(3)?.parties(), 3);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn parties(&self) -> usize {
        self.parties
    }

    /// The number of parties waiting now. Python: `n_waiting`.
    ///
    /// ```
    /// let barreira = shared::Barrier::new(2)?;
    /// assert_eq!(barreira.n_waiting(), 0);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    ///
    /// Read without the lock; a count no barrier of this size can have (another process
    /// corrupted it) reads as 0.
    pub fn n_waiting(&self) -> usize {
        let count = self.state().count.load(Ordering::Relaxed) as usize;
        if count < self.parties { count } else { 0 }
    }

    /// Whether the barrier is broken. Python: `broken`.
    ///
    /// ```
    /// let barreira = shared::Barrier::new(2)?;
    /// assert!(!barreira.broken());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn broken(&self) -> bool {
        self.state().broken.load(Ordering::Relaxed) != 0
    }
}

/// Sleeps until `word` moves past `seen`, `deadline`, or [`LONGEST_SLEEP`].
fn sleep(word: &AtomicU32, seen: u32, deadline: Option<Instant>) {
    let left = deadline.map_or(LONGEST_SLEEP, |deadline| {
        deadline.saturating_duration_since(Instant::now())
    });
    if !left.is_zero() {
        sync::futex_wait(word, seen, Some(left.min(LONGEST_SLEEP)));
    }
}

impl fmt::Debug for Barrier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Barrier")
            .field("parties", &self.parties)
            .field("n_waiting", &self.n_waiting())
            .field("broken", &self.broken())
            .finish()
    }
}

/// Under spawn, a barrier crosses as its memfd; see [`Process::new`](crate::Process::new).
impl Serialize for Barrier {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.block.serialize(serializer, "Barrier")
    }
}

impl<'de> Deserialize<'de> for Barrier {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let block = Block::<BarrierState>::deserialize(deserializer)?;
        let parties = block.state().parties.load(Ordering::Relaxed) as usize;
        if parties == 0 || parties > MAX_PARTIES {
            return Err(serde::de::Error::custom(
                "not a barrier made by shared: no valid number of parties",
            ));
        }
        Ok(Barrier {
            block: Arc::new(block),
            parties,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_count_or_an_entry_another_process_rewrote_is_an_error_not_a_hang() {
        let barrier = Barrier::new(2).unwrap();
        barrier.state().count.store(7, Ordering::Relaxed);
        assert_eq!(barrier.n_waiting(), 0);
        assert!(matches!(barrier.wait(), Err(BrokenBarrierError::Os(_))));
        barrier.reset().unwrap();
        // Fill the table with outcomes that a live process (this one) has yet to collect: a
        // waiter finds no entry, and gives up at its deadline.
        for waiter in &barrier.state().waiters {
            waiter.pid.store(std::process::id(), Ordering::Relaxed);
            waiter.state.store(TRIPPED, Ordering::Relaxed);
        }
        let timed = barrier.wait_timeout(Duration::from_millis(10));
        assert!(matches!(timed, Err(BrokenBarrierError::Broken)));
        // Entries holding no known state are taken over.
        for waiter in &barrier.state().waiters {
            waiter.state.store(99, Ordering::Relaxed);
        }
        let timed = barrier.wait_timeout(Duration::from_millis(10));
        assert!(matches!(timed, Err(BrokenBarrierError::Broken)));
        assert!(
            barrier.broken(),
            "a wait that began and timed out breaks it"
        );
    }

    #[test]
    fn a_waiting_entry_of_a_pid_that_is_gone_breaks_the_barrier() {
        let barrier = Barrier::new(3).unwrap();
        // A party "waits" with a PID no process has (above the kernel's limit of 2^22).
        {
            let mut locked = barrier.lock_now().unwrap();
            let ghost = Me {
                pid: (1 << 22) + 1,
                start_time: 1,
            };
            locked.claim(&ghost, 0).unwrap();
            barrier.state().count.store(1, Ordering::Relaxed);
        }
        assert!(matches!(
            barrier.wait_timeout(Duration::from_secs(30)),
            Err(BrokenBarrierError::PartyDied)
        ));
        assert!(barrier.broken());
    }
}
