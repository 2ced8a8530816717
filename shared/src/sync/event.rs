//! [`Event`]: a flag that processes set, clear and wait for. Python: `multiprocessing.Event`.
//!
//! # Design
//!
//! The whole state is one 32-bit word, `generation << 1 | flag`, in a block of its own:
//! `set` raises the flag and counts a new generation in one compare-and-swap, `clear` lowers
//! it, and a waiter returns when the flag is up or the generation moved since it started. So a
//! waiter woken by a `set` that another process undid at once with `clear` still returns
//! `true`, as `threading.Event.wait` does (CPython's `multiprocessing.Event.wait` re-reads the
//! flag after waking and would return `False` there).
//!
//! Waiting is a futex on a word whose lowest bit says someone sleeps ([`Waiters`]), as in the
//! queue: `set` makes a system call only when someone sleeps, and only the first `set` after
//! a sleeper registered does. Every bit pattern of the block
//! is a state an event can be in, so there is nothing another process can corrupt into an
//! error: the worst it can do is raise or lower the flag.
//!
//! A setter killed between its store and its wake-up leaves sleepers asleep; they re-check
//! every [`LONGEST_SLEEP`], so such a death costs at most that long.

use std::fmt;
use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::block::{Block, BlockState};
use crate::sys::sync::Waiters;

/// The longest a waiter of an event or a semaphore sleeps before it re-checks: a waker killed
/// between its change and its wake-up cannot keep a waiter asleep longer than this, and a
/// semaphore slot whose holder died is found within it.
pub(super) const LONGEST_SLEEP: Duration = Duration::from_millis(100);

/// The shared state: the flag and its generation, and who sleeps on them.
#[repr(C)]
struct EventState {
    /// `generation << 1 | flag`.
    word: AtomicU32,
    waiters: Waiters,
}

// SAFETY: atomics only: every bit pattern is valid, all zeros is a clear event, align 4.
unsafe impl BlockState for EventState {
    const KIND: [u8; 8] = *b"event--2";
    unsafe fn init(&self) -> io::Result<()> {
        Ok(())
    }
}

const FLAG: u32 = 1;

/// A flag shared by processes and threads, initially clear. Python: `multiprocessing.Event`.
///
/// Clone it, or pass it in a [`Process`](crate::Process)'s arguments (fork or spawn), to use it
/// from another thread or process.
///
/// ```
/// use shared::{Event, Process};
///
/// fn sinalizar(evento: Event) {
///     evento.set();
/// }
///
/// let evento = Event::new()?;
/// let mut processo = Process::new(sinalizar, (evento.clone(),));
/// processo.start()?;
/// assert!(evento.wait()); // returns once the child has set it
/// assert!(evento.is_set());
/// processo.join()?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct Event {
    block: Arc<Block<EventState>>,
}

impl Event {
    /// A new event, clear. Python: `multiprocessing.Event()`.
    ///
    /// # Errors
    /// The system refused the shared memory.
    pub fn new() -> io::Result<Event> {
        Ok(Event {
            block: Arc::new(Block::create(c"shared-event", 0)?),
        })
    }

    fn state(&self) -> &EventState {
        self.block.state()
    }

    /// Whether the flag is set. Python: `is_set()`.
    ///
    /// ```
    /// let evento = shared::Event::new()?;
    /// assert!(!evento.is_set());
    /// evento.set();
    /// assert!(evento.is_set());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn is_set(&self) -> bool {
        self.state().word.load(Ordering::Acquire) & FLAG != 0
    }

    /// Sets the flag and wakes every waiter, in every process. Python: `set()`.
    ///
    /// ```
    /// let evento = shared::Event::new()?;
    /// evento.set();
    /// evento.set(); // setting a set event changes nothing
    /// assert!(evento.wait());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn set(&self) {
        crate::timeline::record(crate::timeline::Kind::Notify, || {
            (0, crate::timeline::primitive::EVENT)
        });
        let state = self.state();
        let raised = state
            .word
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |word| {
                (word & FLAG == 0).then_some((word.wrapping_add(2)) | FLAG)
            });
        if raised.is_ok() {
            state.waiters.wake_sleepers();
        }
    }

    /// Clears the flag: later waits block until the next `set`. Python: `clear()`.
    ///
    /// ```
    /// let evento = shared::Event::new()?;
    /// evento.set();
    /// evento.clear();
    /// assert!(!evento.is_set());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn clear(&self) {
        self.state().word.fetch_and(!FLAG, Ordering::AcqRel);
    }

    /// Waits until the flag is set, and returns `true` (Python's `wait()` returns `True`).
    ///
    /// It returns as soon as the flag is set, or was set at any moment since the call began
    /// (even if cleared again at once).
    ///
    /// ```
    /// let evento = shared::Event::new()?;
    /// let outro = evento.clone();
    /// let thread = std::thread::spawn(move || outro.set());
    /// assert!(evento.wait());
    /// thread.join().unwrap();
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn wait(&self) -> bool {
        self.waiting(None)
    }

    /// As [`wait`](Self::wait), but gives up after `timeout`; returns whether the flag was
    /// set. Python: `wait(timeout)`.
    ///
    /// ```
    /// use std::time::Duration;
    /// let evento = shared::Event::new()?;
    /// assert!(!evento.wait_timeout(Duration::from_millis(10)));
    /// evento.set();
    /// assert!(evento.wait_timeout(Duration::ZERO));
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn wait_timeout(&self, timeout: Duration) -> bool {
        // A timeout too long for the clock is no timeout.
        self.waiting(Instant::now().checked_add(timeout))
    }

    fn waiting(&self, deadline: Option<Instant>) -> bool {
        let _wait = crate::timeline::span(crate::timeline::Kind::Wait, || {
            (0, crate::timeline::primitive::EVENT)
        });
        let state = self.state();
        let start = state.word.load(Ordering::Acquire);
        let attempt = || {
            let word = state.word.load(Ordering::Acquire);
            // Set now, or set (and perhaps cleared) since the wait began.
            let set = word & FLAG != 0 || word >> 1 != start >> 1;
            Ok::<_, std::convert::Infallible>(set.then_some(()))
        };
        matches!(
            state.waiters.wait_for(deadline, LONGEST_SLEEP, attempt),
            Ok(Some(()))
        )
    }
}

impl fmt::Debug for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Event")
            .field("is_set", &self.is_set())
            .finish()
    }
}

/// Under spawn, an event crosses as its memfd; see [`Process::new`](crate::Process::new).
impl Serialize for Event {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.block.serialize(serializer, "Event")
    }
}

impl<'de> Deserialize<'de> for Event {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Ok(Event {
            block: Arc::new(Block::deserialize(deserializer)?),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn any_word_another_process_writes_is_a_flag_and_a_generation() {
        let event = Event::new().unwrap();
        for word in [u32::MAX, u32::MAX - 1, 0, 2] {
            event.state().word.store(word, Ordering::Relaxed);
            assert_eq!(event.is_set(), word & 1 != 0);
            event.set();
            assert!(event.is_set() && event.wait());
            event.clear();
            assert!(!event.wait_timeout(Duration::from_millis(1)));
        }
    }

    #[test]
    fn a_set_then_clear_during_a_wait_still_ends_it() {
        let event = Event::new().unwrap();
        let other = event.clone();
        let waiter = std::thread::spawn(move || other.wait_timeout(Duration::from_secs(30)));
        // Whether the waiter began before or after this pair, the generation moved past the
        // one it saw, or the flag is down and it waits: only the first can end it early, so
        // repeat until it has ended (bounded by the waiter's own timeout).
        while !waiter.is_finished() {
            event.set();
            event.clear();
            std::thread::yield_now();
        }
        assert!(waiter.join().unwrap());
    }
}
