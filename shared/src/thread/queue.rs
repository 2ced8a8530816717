//! [`ThreadQueue`]: a FIFO queue between the threads of one process, the counterpart of
//! Python's `queue.Queue`, with the methods of [`Queue`](crate::Queue) and
//! [`JoinableQueue`](crate::JoinableQueue).
//!
//! CPython's `queue.Queue` is a `deque` under one mutex with three conditions (`not_empty`,
//! `not_full`, `all_tasks_done`); this is the same design over std's `Mutex` and `Condvar`.
//! An item is moved in and out, never serialized or copied: nothing crosses a process.

use std::collections::VecDeque;
use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use crate::timeline::{self, Kind};
use crate::{GetError, PutError, TaskDoneError};

/// A FIFO queue of `T` between threads of one process, with task accounting.
/// Python: `queue.Queue`.
///
/// It has every method of [`JoinableQueue`](crate::JoinableQueue), with the same errors, so
/// a program moves between threads and processes by changing the type (and
/// [`Thread`](crate::Thread) for [`Process`](crate::Process)). `T` needs only `Send` to cross
/// threads: items are moved, not serialized. Clone it to use it from another thread.
///
/// ```
/// use shared::{Thread, ThreadQueue};
///
/// fn trabalhador(fila: ThreadQueue<String>) -> Result<(), Box<dyn std::error::Error>> {
///     let tarefa = fila.get()?;
///     assert_eq!(tarefa, "Tarefa 1");
///     fila.task_done()?;
///     Ok(())
/// }
///
/// let fila = ThreadQueue::with_maxsize(3);
/// fila.put("Tarefa 1".to_string())?;
/// let mut thread = Thread::new(trabalhador, (fila.clone(),));
/// thread.start()?;
/// fila.join(); // every task put has been marked done
/// assert!(fila.empty());
/// # thread.join()?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct ThreadQueue<T> {
    shared: Arc<Shared<T>>,
    closed: AtomicBool,
}

struct Shared<T> {
    state: Mutex<State<T>>,
    maxsize: usize,
    not_empty: Condvar,
    not_full: Condvar,
    all_tasks_done: Condvar,
}

struct State<T> {
    items: VecDeque<T>,
    /// Items put and not yet marked done with `task_done`.
    unfinished: usize,
    /// Threads asleep on each condition: a notification (a system call with std's `Condvar`)
    /// is made only when someone sleeps.
    getters: usize,
    putters: usize,
    joiners: usize,
    /// Items ever put and ever taken: an item's number from 1, for the timeline's arrows.
    placed: u64,
    taken: u64,
}

impl<T> ThreadQueue<T> {
    /// An empty, unbounded queue. Python: `queue.Queue()`.
    ///
    /// ```
    /// let fila = shared::ThreadQueue::<u8>::new();
    /// assert!(fila.empty() && !fila.full());
    /// ```
    pub fn new() -> ThreadQueue<T> {
        ThreadQueue::with_maxsize(0)
    }

    /// An empty queue of at most `maxsize` items (`0`: unbounded).
    /// Python: `queue.Queue(maxsize)`.
    ///
    /// ```
    /// let fila = shared::ThreadQueue::with_maxsize(1);
    /// fila.put('a')?;
    /// assert!(fila.full());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn with_maxsize(maxsize: usize) -> ThreadQueue<T> {
        ThreadQueue {
            shared: Arc::new(Shared {
                state: Mutex::new(State {
                    items: VecDeque::new(),
                    unfinished: 0,
                    getters: 0,
                    putters: 0,
                    joiners: 0,
                    placed: 0,
                    taken: 0,
                }),
                maxsize,
                not_empty: Condvar::new(),
                not_full: Condvar::new(),
                all_tasks_done: Condvar::new(),
            }),
            closed: AtomicBool::new(false),
        }
    }

    /// Adds `item` at the back, waiting while a bounded queue is full. Python: `put(item)`.
    ///
    /// ```
    /// let fila = shared::ThreadQueue::new();
    /// fila.put(7_u32)?;
    /// assert_eq!(fila.qsize(), 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// [`PutError::Closed`] when this handle was closed; it hands `item` back.
    pub fn put(&self, item: T) -> Result<(), PutError<T>> {
        self.put_until(item, Wait::Forever)
    }

    /// As [`put`](Self::put), but gives up with [`PutError::Full`] after `timeout`.
    /// Python: `put(item, timeout=...)`.
    ///
    /// ```
    /// use std::time::Duration;
    /// let fila = shared::ThreadQueue::with_maxsize(1);
    /// fila.put(1)?;
    /// let error = fila.put_timeout(2, Duration::from_millis(10)).unwrap_err();
    /// assert!(error.is_full());
    /// assert_eq!(error.into_inner(), 2);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// As [`put`](Self::put), plus [`PutError::Full`].
    pub fn put_timeout(&self, item: T, timeout: Duration) -> Result<(), PutError<T>> {
        self.put_until(item, Wait::after(timeout))
    }

    /// As [`put`](Self::put), but fails with [`PutError::Full`] at once when the queue is
    /// full. Python: `put_nowait(item)`.
    ///
    /// ```
    /// let fila = shared::ThreadQueue::with_maxsize(1);
    /// fila.put_nowait('a')?;
    /// assert!(fila.put_nowait('b').unwrap_err().is_full());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// As [`put_timeout`](Self::put_timeout).
    pub fn put_nowait(&self, item: T) -> Result<(), PutError<T>> {
        self.put_until(item, Wait::No)
    }

    /// Removes and returns the item at the front, waiting until there is one.
    /// Python: `get()`.
    ///
    /// ```
    /// let fila = shared::ThreadQueue::new();
    /// fila.put("primeiro")?;
    /// fila.put("segundo")?;
    /// assert_eq!(fila.get()?, "primeiro");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// [`GetError::Closed`] when this handle was closed.
    pub fn get(&self) -> Result<T, GetError> {
        self.get_until(Wait::Forever)
    }

    /// As [`get`](Self::get), but gives up with [`GetError::Empty`] after `timeout`.
    /// Python: `get(timeout=...)`.
    ///
    /// ```
    /// use std::time::Duration;
    /// let fila = shared::ThreadQueue::<u8>::new();
    /// assert!(fila.get_timeout(Duration::from_millis(10)).unwrap_err().is_empty());
    /// ```
    ///
    /// # Errors
    /// As [`get`](Self::get), plus [`GetError::Empty`].
    pub fn get_timeout(&self, timeout: Duration) -> Result<T, GetError> {
        self.get_until(Wait::after(timeout))
    }

    /// As [`get`](Self::get), but fails with [`GetError::Empty`] at once when the queue is
    /// empty. Python: `get_nowait()`.
    ///
    /// ```
    /// let fila = shared::ThreadQueue::new();
    /// assert!(fila.get_nowait().unwrap_err().is_empty());
    /// fila.put(1.5_f64)?;
    /// assert_eq!(fila.get_nowait()?, 1.5);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// As [`get_timeout`](Self::get_timeout).
    pub fn get_nowait(&self) -> Result<T, GetError> {
        self.get_until(Wait::No)
    }

    /// The number of items in the queue. Python: `qsize()`.
    ///
    /// ```
    /// let fila = shared::ThreadQueue::new();
    /// fila.put(())?;
    /// fila.put(())?;
    /// assert_eq!(fila.qsize(), 2);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn qsize(&self) -> usize {
        self.state().items.len()
    }

    /// Whether the queue is empty: `qsize() == 0`. Python: `empty()`.
    ///
    /// ```
    /// let fila = shared::ThreadQueue::new();
    /// assert!(fila.empty());
    /// fila.put('x')?;
    /// assert!(!fila.empty());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn empty(&self) -> bool {
        self.qsize() == 0
    }

    /// Whether a bounded queue holds `maxsize` items; always `false` when unbounded.
    /// Python: `full()`.
    ///
    /// ```
    /// let fila = shared::ThreadQueue::with_maxsize(2);
    /// fila.put(1)?;
    /// assert!(!fila.full());
    /// fila.put(2)?;
    /// assert!(fila.full());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn full(&self) -> bool {
        self.shared.maxsize > 0 && self.qsize() >= self.shared.maxsize
    }

    /// Closes this handle: its later `put`s and `get`s fail with `Closed`. Other handles are
    /// unaffected, and the items stay. As [`Queue::close`](crate::Queue::close); Python's
    /// `queue.Queue` has no `close()` (3.13 added `shutdown()`, which acts on every handle).
    ///
    /// ```
    /// let fila = shared::ThreadQueue::new();
    /// let outra = fila.clone();
    /// fila.close();
    /// assert!(fila.put(1).unwrap_err().is_closed());
    /// outra.put(1)?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn close(&self) {
        self.closed.store(true, Ordering::Relaxed);
    }

    /// Marks one item taken with `get` as done. Python: `task_done()`.
    ///
    /// ```
    /// let fila = shared::ThreadQueue::new();
    /// fila.put(1)?;
    /// fila.get()?;
    /// fila.task_done()?;
    /// assert!(fila.task_done().is_err()); // one too many
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// [`TaskDoneError::TooManyCalls`] when every item put is already done (Python's
    /// `ValueError`).
    pub fn task_done(&self) -> Result<(), TaskDoneError> {
        timeline::record(Kind::TaskDone, || (self.timeline_id(), 0));
        let mut state = self.state();
        if state.unfinished == 0 {
            return Err(TaskDoneError::TooManyCalls);
        }
        state.unfinished -= 1;
        if state.unfinished == 0 && state.joiners > 0 {
            self.shared.all_tasks_done.notify_all();
        }
        Ok(())
    }

    /// Waits until every item ever put has been marked done with `task_done`, by any thread.
    /// Python: `Queue.join()`.
    ///
    /// ```
    /// let fila = shared::ThreadQueue::<u8>::new();
    /// fila.join(); // nothing was put: returns at once
    /// ```
    pub fn join(&self) {
        self.join_until(Wait::Forever);
    }

    /// As [`join`](Self::join), but gives up after `timeout`; returns whether all work is done.
    ///
    /// ```
    /// use std::time::Duration;
    /// let fila = shared::ThreadQueue::new();
    /// fila.put(1)?;
    /// assert!(!fila.join_timeout(Duration::from_millis(10)));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn join_timeout(&self, timeout: Duration) -> bool {
        self.join_until(Wait::after(timeout))
    }

    /// This queue in the timeline: its shared part's address, with the top bit set so that it
    /// is never the id of a process-shared [`Queue`](crate::Queue) (an inode number).
    fn timeline_id(&self) -> u64 {
        1 << 63 | Arc::as_ptr(&self.shared) as usize as u64
    }

    fn state(&self) -> MutexGuard<'_, State<T>> {
        self.shared
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn put_until(&self, item: T, wait: Wait) -> Result<(), PutError<T>> {
        let mut span = timeline::span(Kind::Put, || (self.timeline_id(), 0));
        if self.closed.load(Ordering::Relaxed) {
            return Err(PutError::Closed(item));
        }
        let shared = &*self.shared;
        let full = |state: &mut State<T>| shared.maxsize > 0 && state.items.len() >= shared.maxsize;
        let Some(mut state) = wait.until(self.state(), &shared.not_full, full, |state| {
            &mut state.putters
        }) else {
            return Err(PutError::Full(item));
        };
        state.items.push_back(item);
        state.unfinished += 1;
        state.placed += 1;
        span.item(|| (self.timeline_id(), state.placed));
        if state.getters > 0 {
            shared.not_empty.notify_one();
        }
        Ok(())
    }

    fn get_until(&self, wait: Wait) -> Result<T, GetError> {
        let mut span = timeline::span(Kind::Get, || (self.timeline_id(), 0));
        if self.closed.load(Ordering::Relaxed) {
            return Err(GetError::Closed);
        }
        let shared = &*self.shared;
        let empty = |state: &mut State<T>| state.items.is_empty();
        let mut state = wait
            .until(self.state(), &shared.not_empty, empty, |state| {
                &mut state.getters
            })
            .ok_or(GetError::Empty)?;
        let item = state.items.pop_front().ok_or(GetError::Empty)?;
        state.taken += 1;
        span.item(|| (self.timeline_id(), state.taken));
        if state.putters > 0 {
            shared.not_full.notify_one();
        }
        Ok(item)
    }

    fn join_until(&self, wait: Wait) -> bool {
        let _join = timeline::span(Kind::QueueJoin, || (self.timeline_id(), 0));
        let unfinished = |state: &mut State<T>| state.unfinished > 0;
        let condvar = &self.shared.all_tasks_done;
        wait.until(self.state(), condvar, unfinished, |state| {
            &mut state.joiners
        })
        .is_some()
    }
}

impl<T> Default for ThreadQueue<T> {
    /// An empty, unbounded queue, as [`ThreadQueue::new`].
    fn default() -> Self {
        ThreadQueue::new()
    }
}

impl<T> Clone for ThreadQueue<T> {
    /// Another handle to the same queue (open, whatever the state of this one).
    fn clone(&self) -> Self {
        ThreadQueue {
            shared: Arc::clone(&self.shared),
            closed: AtomicBool::new(false),
        }
    }
}

impl<T> fmt::Debug for ThreadQueue<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.state();
        f.debug_struct("ThreadQueue")
            .field("qsize", &state.items.len())
            .field("maxsize", &self.shared.maxsize)
            .field("unfinished", &state.unfinished)
            .finish()
    }
}

/// How long a blocking operation may wait.
#[derive(Clone, Copy)]
enum Wait {
    Forever,
    Until(Instant),
    No,
}

impl Wait {
    fn after(timeout: Duration) -> Wait {
        Instant::now()
            .checked_add(timeout)
            .map_or(Wait::Forever, Wait::Until)
    }

    /// Waits on `condvar` while `blocked(state)`, counted among its `sleepers(state)`; the
    /// guard once it is not blocked, or `None` when the wait is over first.
    fn until<'a, S>(
        self,
        mut state: MutexGuard<'a, S>,
        condvar: &Condvar,
        mut blocked: impl FnMut(&mut S) -> bool,
        sleepers: fn(&mut S) -> &mut usize,
    ) -> Option<MutexGuard<'a, S>> {
        while blocked(&mut state) {
            let left = match self {
                Wait::No => return None,
                Wait::Forever => None,
                Wait::Until(deadline) => {
                    let left = deadline.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        return None;
                    }
                    Some(left)
                }
            };
            *sleepers(&mut state) += 1;
            state = match left {
                None => condvar.wait(state).unwrap_or_else(PoisonError::into_inner),
                Some(left) => {
                    let waited = condvar.wait_timeout(state, left);
                    waited.unwrap_or_else(PoisonError::into_inner).0
                }
            };
            *sleepers(&mut state) -= 1;
        }
        Some(state)
    }
}
