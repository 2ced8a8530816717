//! [`JoinableQueue`]: a [`Queue`] that also counts unfinished tasks.

use std::fmt;
use std::io;
use std::ops::Deref;
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::ring::Event;
use super::{Queue, Wait};
use crate::timeline::Kind;

/// A [`Queue`] whose consumers report each item done with [`task_done`](Self::task_done), so
/// that a producer can [`join`](Self::join) until all work is finished.
/// Python: `multiprocessing.JoinableQueue`.
///
/// Every [`Queue`] method is available through `Deref`, [`shutdown`](Queue::shutdown)
/// included. The unfinished count is the number of
/// items put (committed with each `put`) minus a shared count of `task_done` calls (one atomic
/// update each), so it is exact in every process and a process killed mid-operation cannot
/// tear it.
///
/// A worker killed between its `get` and its `task_done` leaves that task unfinished forever:
/// `join()` then never returns early, and never returns at all (as in CPython). Use
/// [`join_timeout`](Self::join_timeout) where workers may die, and put the task again.
///
/// ```
/// use shared::JoinableQueue;
///
/// let fila = JoinableQueue::with_maxsize(3)?;
/// fila.put("Tarefa 1".to_string())?;
/// let tarefa = fila.get()?;
/// assert_eq!(tarefa, "Tarefa 1");
/// fila.task_done()?;
/// fila.join(); // every task put has been marked done
/// assert!(fila.task_done().is_err()); // one too many
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct JoinableQueue<T> {
    queue: Queue<T>,
}

impl<T: Serialize + DeserializeOwned> JoinableQueue<T> {
    /// An empty, unbounded joinable queue. Python: `multiprocessing.JoinableQueue()`.
    ///
    /// # Errors
    /// The system refused the shared memory.
    pub fn new() -> io::Result<JoinableQueue<T>> {
        Ok(JoinableQueue {
            queue: Queue::new()?,
        })
    }

    /// An empty joinable queue of at most `maxsize` items (`0`: unbounded).
    /// Python: `multiprocessing.JoinableQueue(maxsize)`.
    ///
    /// # Errors
    /// The system refused the shared memory.
    pub fn with_maxsize(maxsize: usize) -> io::Result<JoinableQueue<T>> {
        Ok(JoinableQueue {
            queue: Queue::with_maxsize(maxsize)?,
        })
    }

    /// Marks one item taken with `get` as done. Python: `task_done()`.
    ///
    /// ```
    /// let fila = shared::JoinableQueue::new()?;
    /// fila.put(1)?;
    /// fila.get()?;
    /// fila.task_done()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// [`TaskDoneError::TooManyCalls`] when every item put is already done (Python's
    /// `ValueError`). It is one atomic update of the shared count: no lock, no system call.
    /// [`TaskDoneError::Corrupt`] when another process keeps rewriting the counts; counts it
    /// merely changed give `TooManyCalls` or mark one more task done, never a panic.
    pub fn task_done(&self) -> Result<(), TaskDoneError> {
        crate::timeline::record(Kind::TaskDone, || (self.queue.ring.id(), 0));
        match self.queue.ring.task_done() {
            Ok(true) => Ok(()),
            Ok(false) => Err(TaskDoneError::TooManyCalls),
            Err(error) => Err(TaskDoneError::Corrupt(error)),
        }
    }

    /// Waits until every item ever put has been marked done with `task_done`, by any process.
    /// Python: `JoinableQueue.join()`.
    ///
    /// It re-checks the count after every wake-up, so it cannot return while work remains.
    ///
    /// ```
    /// let fila = shared::JoinableQueue::<u8>::new()?;
    /// fila.join(); // nothing was put: returns at once
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// An immediate [`shutdown`](Queue::shutdown) counts every item it discards as done, as
    /// Python's does, so a `join` waiting in any process returns once the items taken before
    /// it are done:
    ///
    /// ```
    /// let fila = shared::JoinableQueue::new()?;
    /// fila.put("nunca lida".to_string())?;
    /// let outra = fila.clone();
    /// let espera = std::thread::spawn(move || outra.join());
    /// fila.shutdown(true)?;
    /// espera.join().unwrap(); // released: the discarded item counts as done
    /// assert!(fila.task_done().is_err());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// It cannot fail: it only reads the shared counts, without a lock. Counts it cannot read
    /// (another process keeps rewriting them) are never taken for "all done".
    pub fn join(&self) {
        self.join_waiting(Wait::Forever);
    }

    /// As [`join`](Self::join), but gives up after `timeout`; returns whether all work is done.
    ///
    /// ```
    /// use std::time::Duration;
    /// let fila = shared::JoinableQueue::new()?;
    /// fila.put(1)?;
    /// assert!(!fila.join_timeout(Duration::from_millis(10)));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// It cannot fail, as [`join`](Self::join). Counts another process rewrote are taken as
    /// they read (a done count past the items put reads as all done); counts it keeps
    /// rewriting read as unfinished, so the call returns `false` at its deadline.
    pub fn join_timeout(&self, timeout: Duration) -> bool {
        self.join_waiting(Wait::after(timeout))
    }

    fn join_waiting(&self, wait: Wait) -> bool {
        let ring = &self.queue.ring;
        let _join = crate::timeline::span(Kind::QueueJoin, || (ring.id(), 0));
        loop {
            // Read before the check, so a task_done in between ends the wait at once.
            let seen = ring.watch(Event::AllDone);
            if matches!(ring.unfinished(), Ok(0)) {
                return true;
            }
            if wait.expired() {
                return false;
            }
            ring.wait(Event::AllDone, seen, wait.deadline(), || {
                !matches!(ring.unfinished(), Ok(0))
            });
        }
    }
}

impl<T> Deref for JoinableQueue<T> {
    type Target = Queue<T>;

    /// A `JoinableQueue` is a `Queue` (Python: a subclass of it).
    fn deref(&self) -> &Queue<T> {
        &self.queue
    }
}

impl<T> Clone for JoinableQueue<T> {
    fn clone(&self) -> Self {
        JoinableQueue {
            queue: self.queue.clone(),
        }
    }
}

impl<T> fmt::Debug for JoinableQueue<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("JoinableQueue").field(&self.queue).finish()
    }
}

impl<T> Serialize for JoinableQueue<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.queue.serialize(serializer)
    }
}

impl<'de, T> Deserialize<'de> for JoinableQueue<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Ok(JoinableQueue {
            queue: Queue::deserialize(deserializer)?,
        })
    }
}

/// Why `task_done` failed.
#[non_exhaustive]
pub enum TaskDoneError {
    /// `task_done` was called more times than items were put. Python: `ValueError`.
    TooManyCalls,
    /// Another process keeps rewriting the queue's shared counts, so none could be updated.
    Corrupt(io::Error),
}

impl TaskDoneError {
    /// Whether another process corrupted the queue's memory.
    pub fn is_corrupt(&self) -> bool {
        matches!(self, TaskDoneError::Corrupt(_))
    }
}

impl fmt::Display for TaskDoneError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TaskDoneError::TooManyCalls => f.write_str("task_done() called too many times"),
            TaskDoneError::Corrupt(_) => {
                f.write_str("another process corrupted the queue's memory")
            }
        }
    }
}

impl std::error::Error for TaskDoneError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            TaskDoneError::Corrupt(error) => Some(error),
            TaskDoneError::TooManyCalls => None,
        }
    }
}

crate::debug_as_display!(TaskDoneError);
