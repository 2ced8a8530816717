//! [`Queue`] and [`JoinableQueue`]: multi-producer, multi-consumer FIFO queues between
//! processes, with the API of Python's `multiprocessing.Queue` and `JoinableQueue`.
//!
//! # Design
//!
//! CPython's queue is a pipe plus a feeder thread in each producer. That design is why a
//! producer cannot exit while its data sits in a full pipe (join-before-get deadlocks past
//! 64 KiB), why `empty()` is `True` right after `put()` returns (the feeder has not written
//! yet), and why a process killed mid-`put` hangs or tears the queue (it dies holding a
//! semaphore, or halfway through a frame in the pipe).
//!
//! Here a queue is one shared-memory file (a memfd) that every process holding the queue maps:
//!
//! - **Storage**: a ring buffer of frames (`layout`), grown by doubling when an item does not
//!   fit, so on an unbounded queue `put` never waits for a reader (but for at most 5 ms, for
//!   one that is taking items, to make room before the ring doubles): memory, not a kernel
//!   buffer, is the limit. A producer can put 256 MiB and exit before anyone reads. A ring
//!   grown past 32 MiB gives the pages behind its head back to the system as consumers pass
//!   them, so after a burst the queue's memory follows what it holds.
//! - **Exclusion**: two process-shared *robust* mutexes, one for producers (the tail) and one
//!   for consumers (the head), so a producer and a consumer never wait for each other. When a
//!   process dies holding one, the kernel hands it to the next locker with `EOWNERDEAD`
//!   instead of leaving it locked. They are taken through a guard that unlocks on drop. A
//!   holder that is stopped rather than dead keeps its lock: `get_nowait` and `put_nowait`
//!   wait at most 100 ms for it, timed calls until their deadline, for every lock they take.
//! - **Crash consistency**: each end's position (bytes and items passed) is kept twice and one
//!   aligned word says which copy is current. A `put` writes the item into free space, then
//!   the new tail into the spare copy, then flips the word: one store commits; a `get` does
//!   the same with the head. A process killed anywhere leaves whole positions, so no item is
//!   torn or duplicated; the only item lost is the one inside the killed `put` or `get`.
//! - **Exact state**: `put` returns after its commit, so the item is visible to `get_nowait`,
//!   `qsize`, `empty` and `full` in every process at once. `qsize` reads both positions
//!   without a lock.
//! - **Waiting**: a waiter spins briefly on the other end's version word (only if another
//!   CPU can run the process it waits for), then sleeps on a futex in the shared header,
//!   whose lowest bit says that someone sleeps, so that no syscall is made when nobody does,
//!   and one waker only per sleep. Everybody sleeping on an event is woken, so a sleeper
//!   killed after its wake-up cannot swallow it.
//! - **Shutdown** (Python 3.13's `queue.Queue.shutdown`, which `multiprocessing.Queue` lacks):
//!   a state word in the header, so it holds in every process. It is written under the put
//!   lock, so once a `get` reads it no `put` can commit any more and an empty queue stays
//!   empty; an immediate shutdown is written under both locks and drains the queue with one
//!   head commit, as a `get` does. Every waiter is woken, and re-checks the state anyway.
//! - **Copies**: an item is encoded (rmp-serde) straight into the ring and decoded straight
//!   from it. A first encoding pass only counts bytes.
//! - **Distrust**: any process holding the memfd can write the header or the frames. The memfd
//!   is sealed against shrinking (a spawned child refuses one that is not), so no mapping
//!   faults; every number read from the header is parsed into a checked capacity and span
//!   before anything divides, indexes or subtracts with it, and lock-free reads give up after
//!   a bounded number of retries. What fails a check is a `Corrupt` error, never a panic.
//!   (The mutexes' own words are glibc's and are trusted: see `sys::sync`.)
//!
//! Sockets were weighed and rejected: a socket buffer holds ~278 small messages before a writer
//! blocks (the CPython deadlock again), a killed writer can leave half a message in a stream,
//! and every item costs two syscalls.

mod codec;
mod counters;
mod joinable;
mod layout;
mod ring;

use std::fmt;
use std::io;
use std::marker::PhantomData;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::timeline::{self, Kind};
pub use joinable::{JoinableQueue, TaskDoneError};
use ring::{Event, PushError, Ring, State, is_corruption};

/// A FIFO queue of `T` shared by processes. Python: `multiprocessing.Queue`.
///
/// Clone it, or pass it in a [`Process`](crate::Process)'s arguments, to use it from another
/// thread or process (fork or spawn). Items cross as MessagePack, so `T` is anything serde
/// can serialize and deserialize.
///
/// ```
/// use shared::{Process, Queue};
///
/// fn produtor(queue: Queue<String>) -> Result<(), Box<dyn std::error::Error>> {
///     queue.put(format!("olá do processo {}", std::process::id()))?;
///     Ok(())
/// }
///
/// let queue = Queue::new()?;
/// let mut processo = Process::new(produtor, (queue.clone(),));
/// processo.start()?;
/// processo.join()?; // joining before reading never deadlocks here
/// let pid = processo.pid().unwrap();
/// assert_eq!(queue.get()?, format!("olá do processo {pid}"));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Queue<T> {
    ring: Arc<Ring>,
    closed: AtomicBool,
    items: PhantomData<fn(T) -> T>,
}

/// How long `get_nowait` and `put_nowait` wait for a lock another process holds before they
/// report `Empty` or `Full`. A holder keeps a lock only while it copies one item (a growing
/// producer: while it copies the live items), so a longer wait means it is stopped (SIGSTOP,
/// a debugger) or hung; 100 ms spares a caller a false `Empty` behind a large copy without
/// letting such a holder block it. CPython's `get(block=False)` raises `Empty` whenever the
/// lock is taken at all.
const NOWAIT_GRACE: Duration = Duration::from_millis(100);

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

    /// The deadline for taking a lock. A lock is only ever held for one operation's copy, so
    /// an operation that does not wait for items still waits for the lock, but at most
    /// [`NOWAIT_GRACE`]: past that its holder is stopped or hung, and `get_nowait` and
    /// `put_nowait` must not block. Call once per operation.
    fn lock_deadline(self) -> Option<Instant> {
        match self {
            Wait::Forever => None,
            Wait::Until(deadline) => Some(deadline),
            Wait::No => Instant::now().checked_add(NOWAIT_GRACE),
        }
    }

    /// The deadline for waiting for an event (`None` without one).
    fn deadline(self) -> Option<Instant> {
        match self {
            Wait::Until(deadline) => Some(deadline),
            Wait::Forever | Wait::No => None,
        }
    }

    fn expired(self) -> bool {
        match self {
            Wait::Forever => false,
            Wait::Until(deadline) => Instant::now() >= deadline,
            Wait::No => true,
        }
    }
}

impl<T: Serialize + DeserializeOwned> Queue<T> {
    /// An empty, unbounded queue. Python: `multiprocessing.Queue()`.
    ///
    /// # Errors
    /// The system refused the shared memory (`memfd_create`, `mmap`).
    pub fn new() -> io::Result<Queue<T>> {
        Ok(Queue::from_ring(Ring::create(0)?))
    }

    /// An empty queue that holds at most `maxsize` items; `0` means unbounded, as in Python.
    /// Python: `multiprocessing.Queue(maxsize)`.
    ///
    /// ```
    /// let fila = shared::Queue::with_maxsize(1)?;
    /// fila.put_nowait(1)?;
    /// assert!(fila.full());
    /// assert!(fila.put_nowait(2).unwrap_err().is_full());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// As [`new`](Self::new).
    pub fn with_maxsize(maxsize: usize) -> io::Result<Queue<T>> {
        Ok(Queue::from_ring(Ring::create(maxsize as u64)?))
    }

    fn from_ring(ring: Ring) -> Queue<T> {
        Queue {
            ring: Arc::new(ring),
            closed: AtomicBool::new(false),
            items: PhantomData,
        }
    }

    /// Adds `item` at the back, waiting while a bounded queue is full. Python: `put(item)`.
    ///
    /// When it returns, every process sees the item.
    ///
    /// ```
    /// let fila = shared::Queue::new()?;
    /// fila.put(7_u32)?;
    /// assert_eq!(fila.qsize(), 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// [`PutError::Closed`], [`PutError::ShutDown`] (also when the queue is shut down while
    /// this call waits for room), [`PutError::Encode`], [`PutError::Os`],
    /// [`PutError::Corrupt`]; each hands `item` back.
    pub fn put(&self, item: T) -> Result<(), PutError<T>> {
        self.put_waiting(item, Wait::Forever)
    }

    /// As [`put`](Self::put), but gives up with [`PutError::Full`] after `timeout`.
    /// Python: `put(item, timeout=...)`.
    ///
    /// ```
    /// use std::time::Duration;
    /// let fila = shared::Queue::with_maxsize(1)?;
    /// fila.put(1)?;
    /// let error = fila.put_timeout(2, Duration::from_millis(10)).unwrap_err();
    /// assert!(error.is_full());
    /// assert_eq!(error.into_inner(), 2);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// On an unbounded queue it gives [`PutError::Full`] only when another process holds the
    /// queue's lock past `timeout` (stopped, or copying a huge item).
    ///
    /// # Errors
    /// As [`put`](Self::put), plus [`PutError::Full`].
    pub fn put_timeout(&self, item: T, timeout: Duration) -> Result<(), PutError<T>> {
        self.put_waiting(item, Wait::after(timeout))
    }

    /// As [`put`](Self::put), but fails with [`PutError::Full`] at once when the queue is
    /// full. Python: `put_nowait(item)`.
    ///
    /// ```
    /// let fila = shared::Queue::with_maxsize(1)?;
    /// fila.put_nowait('a')?;
    /// assert!(fila.put_nowait('b').unwrap_err().is_full());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// It waits for no room, but it waits up to 100 ms for the queue's lock, which another
    /// process holds only while it copies one item; past that (the holder is stopped or hung)
    /// it gives [`PutError::Full`], even on an unbounded queue. CPython's `put(block=False)`
    /// fails at once when the queue's semaphore is taken.
    ///
    /// # Errors
    /// As [`put_timeout`](Self::put_timeout).
    pub fn put_nowait(&self, item: T) -> Result<(), PutError<T>> {
        self.put_waiting(item, Wait::No)
    }

    /// Removes and returns the item at the front, waiting until there is one.
    /// Python: `get()`.
    ///
    /// ```
    /// let fila = shared::Queue::new()?;
    /// fila.put("primeiro".to_string())?;
    /// fila.put("segundo".to_string())?;
    /// assert_eq!(fila.get()?, "primeiro");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// [`GetError::Closed`]; [`GetError::ShutDown`] once the queue is shut down and empty
    /// (also when that happens while this call waits), or shut down immediately;
    /// [`GetError::Decode`] when the item is not a `T` (the item is
    /// consumed and the queue stays usable); [`GetError::Corrupt`] when another process
    /// corrupted the queue's memory; [`GetError::Os`].
    pub fn get(&self) -> Result<T, GetError> {
        self.get_waiting(Wait::Forever)
    }

    /// As [`get`](Self::get), but gives up with [`GetError::Empty`] after `timeout`.
    /// Python: `get(timeout=...)`.
    ///
    /// ```
    /// use std::time::Duration;
    /// let fila = shared::Queue::<u8>::new()?;
    /// assert!(fila.get_timeout(Duration::from_millis(10)).unwrap_err().is_empty());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// As [`get`](Self::get), plus [`GetError::Empty`].
    pub fn get_timeout(&self, timeout: Duration) -> Result<T, GetError> {
        self.get_waiting(Wait::after(timeout))
    }

    /// As [`get`](Self::get), but fails with [`GetError::Empty`] at once when the queue is
    /// empty. Python: `get_nowait()`.
    ///
    /// ```
    /// let fila = shared::Queue::new()?;
    /// assert!(fila.get_nowait().unwrap_err().is_empty());
    /// fila.put(1.5_f64)?;
    /// assert_eq!(fila.get_nowait()?, 1.5); // visible as soon as put returns
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// It waits for no item, but it waits up to 100 ms for the queue's lock, which another
    /// process holds only while it copies one item; past that (the holder is stopped or hung)
    /// it gives [`GetError::Empty`]. CPython's `get(block=False)` raises `Empty` whenever the
    /// lock is taken.
    ///
    /// # Errors
    /// As [`get_timeout`](Self::get_timeout).
    pub fn get_nowait(&self) -> Result<T, GetError> {
        self.get_waiting(Wait::No)
    }

    /// The number of items in the queue, exact in every process. Python: `qsize()`.
    ///
    /// ```
    /// let fila = shared::Queue::new()?;
    /// fila.put(())?;
    /// fila.put(())?;
    /// assert_eq!(fila.qsize(), 2);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// It takes no lock. While other processes put and get, the answer is a count the queue
    /// really held at some moment during the call (should consumers move 64 times while it
    /// reads, it settles for a count that may be a moment stale, never above `maxsize`).
    ///
    /// It cannot fail. If another process corrupted the queue's memory it returns 0 when the
    /// two ends do not make sense (the head past the tail, more items than bytes, a capacity
    /// that is not one), and never more items than the ring could hold; `get` and `put` then
    /// report [`GetError::Corrupt`] and [`PutError::Corrupt`].
    pub fn qsize(&self) -> usize {
        self.ring.len() as usize
    }

    /// Whether the queue is empty: `qsize() == 0`. Python: `empty()`.
    ///
    /// ```
    /// let fila = shared::Queue::new()?;
    /// assert!(fila.empty());
    /// fila.put('x')?;
    /// assert!(!fila.empty()); // exact right after put, unlike CPython
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn empty(&self) -> bool {
        self.qsize() == 0
    }

    /// Whether a bounded queue holds `maxsize` items; always `false` when unbounded.
    /// Python: `full()`.
    ///
    /// ```
    /// let fila = shared::Queue::with_maxsize(2)?;
    /// fila.put(1)?;
    /// assert!(!fila.full());
    /// fila.put(2)?;
    /// assert!(fila.full());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn full(&self) -> bool {
        let maxsize = self.ring.maxsize();
        maxsize > 0 && self.qsize() as u64 >= maxsize
    }

    /// Closes this handle: its later `put`s and `get`s fail with `Closed`. Other handles, in
    /// this process or others, are unaffected, and the items stay. Python: `close()`.
    ///
    /// ```
    /// let fila = shared::Queue::new()?;
    /// let outra = fila.clone();
    /// fila.close();
    /// assert!(fila.put(1).unwrap_err().is_closed());
    /// outra.put(1)?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn close(&self) {
        self.closed.store(true, Ordering::Relaxed);
    }

    /// Shuts the queue down, for every handle in every process: from now on `put` fails with
    /// [`PutError::ShutDown`], which hands the item back, and `get` returns what is left, then
    /// fails with [`GetError::ShutDown`]. With `immediate`, what is left is discarded at once
    /// and every `get` fails; on a [`JoinableQueue`] each discarded item counts as done, so a
    /// waiting [`join`](JoinableQueue::join) returns once the items already taken are done.
    /// Python (3.13): `queue.Queue.shutdown(immediate=False)`, which CPython's
    /// `multiprocessing.Queue` lacks.
    ///
    /// ```
    /// let fila = shared::Queue::new()?;
    /// fila.put(1)?;
    /// fila.put(2)?;
    /// fila.shutdown(false)?;
    /// assert!(fila.is_shutdown());
    /// assert_eq!(fila.put(3).unwrap_err().into_inner(), 3);
    /// assert_eq!(fila.get()?, 1); // what was put before is still handed out
    /// assert_eq!(fila.get()?, 2);
    /// assert!(fila.get().unwrap_err().is_shut_down()); // empty: it will never fill again
    ///
    /// let outra = shared::Queue::new()?;
    /// outra.put('a')?;
    /// outra.shutdown(true)?;
    /// assert_eq!(outra.qsize(), 0); // discarded
    /// assert!(outra.get_nowait().unwrap_err().is_shut_down());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// Every process blocked in `put`, `get` or `join` on the queue is woken. It is permanent
    /// and idempotent; `shutdown(false)` then `shutdown(true)` discards what is left, as in
    /// Python. It works on a closed handle too. It takes `true` or `false` as Python's keyword
    /// does, so that `q.shutdown(immediate=True)` reads `q.shutdown(true)`.
    ///
    /// It waits for the queue's put lock, and when `immediate` for its get lock too, which
    /// another process holds only while it copies one item (for ever if it is stopped), as
    /// Python's `shutdown` waits for the queue's mutex. A process killed in the middle of an
    /// immediate shutdown leaves the queue shut down and consistent: gets fail, no item left
    /// counts as unfinished, and another `shutdown(true)` discards the items.
    ///
    /// # Errors
    /// The system's errors from the locks ([`io::Error`]); when `immediate`, corruption of the
    /// queue's memory found while discarding (kind `InvalidData`), after which the queue is
    /// shut down all the same but may still hold the items.
    pub fn shutdown(&self, immediate: bool) -> io::Result<()> {
        self.ring.shut_down(immediate)
    }

    /// Whether the queue was shut down, by any handle in any process. Python (3.13):
    /// `queue.Queue.is_shutdown`.
    ///
    /// ```
    /// let fila = shared::Queue::<u8>::new()?;
    /// let outra = fila.clone();
    /// assert!(!outra.is_shutdown());
    /// fila.shutdown(false)?;
    /// assert!(outra.is_shutdown()); // the state is the queue's, not the handle's
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// A state word another process corrupted reads as shut down (not immediately: no item
    /// is discarded because of it).
    pub fn is_shutdown(&self) -> bool {
        self.ring.state() != State::Open
    }

    /// Another handle to the same queue that puts and gets items as `U`. Python's queues are
    /// untyped; this is how a Rust program reads what a producer put as another type (an item
    /// that does not decode as `U` gives [`GetError::Decode`]).
    ///
    /// ```
    /// let textos = shared::Queue::new()?;
    /// textos.put("não é um número".to_string())?;
    /// let numeros = textos.retyped::<u32>();
    /// let error = numeros.get().unwrap_err();
    /// assert!(error.to_string().contains("u32"));
    /// numeros.put(7)?;
    /// assert_eq!(numeros.get()?, 7); // the queue is still usable
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn retyped<U>(&self) -> Queue<U> {
        Queue {
            ring: Arc::clone(&self.ring),
            closed: AtomicBool::new(false),
            items: PhantomData,
        }
    }

    fn put_waiting(&self, item: T, wait: Wait) -> Result<(), PutError<T>> {
        let mut span = timeline::span(Kind::Put, || (self.ring.id(), 0));
        if self.closed.load(Ordering::Relaxed) {
            return Err(PutError::Closed(item));
        }
        let len = match codec::encoded_len(&item) {
            Ok(len) => len,
            Err(error) => return Err(PutError::Encode { item, error }),
        };
        let maxsize = self.ring.maxsize();
        let lock_deadline = wait.lock_deadline();
        loop {
            let mut guard = match self.ring.lock_tail(lock_deadline) {
                Ok(Some(guard)) => guard,
                Ok(None) => return Err(PutError::Full(item)),
                Err(error) => return Err(PutError::from_ring(item, error)),
            };
            if guard.shut_down() {
                return Err(PutError::ShutDown(item));
            }
            let seen = match guard.full(maxsize) {
                Ok(Some(seen)) => seen,
                Ok(None) => {
                    // Recorded before the push: once placed, the item is another process's
                    // to take, and this process may be killed before the put returns.
                    span.item_recorded(|| (self.ring.id(), guard.next_item()));
                    let pushed = guard.push(len, |out| codec::encode_into(&item, out));
                    if pushed.is_err() {
                        span.item(|| (self.ring.id(), 0)); // nothing was placed after all
                    }
                    return PutError::from_push(item, pushed);
                }
                Err(error) => return Err(PutError::from_ring(item, error)),
            };
            drop(guard);
            if wait.expired() {
                return Err(PutError::Full(item));
            }
            self.ring.wait(Event::NotFull, seen, wait.deadline(), || {
                self.ring.len() >= maxsize && self.ring.state() == State::Open
            });
        }
    }

    fn get_waiting(&self, wait: Wait) -> Result<T, GetError> {
        let mut span = timeline::span(Kind::Get, || (self.ring.id(), 0));
        if self.closed.load(Ordering::Relaxed) {
            return Err(GetError::Closed);
        }
        let lock_deadline = wait.lock_deadline();
        loop {
            let Some(mut guard) = self
                .ring
                .lock_head(lock_deadline)
                .map_err(GetError::from_ring)?
            else {
                return Err(GetError::Empty);
            };
            if guard.state() == State::Immediate {
                return Err(GetError::ShutDown);
            }
            if let Some(payload) = guard.front().map_err(GetError::from_ring)? {
                let item = codec::decode::<T>(payload);
                span.item(|| (self.ring.id(), guard.first_item()));
                guard.pop_front().map_err(GetError::from_ring)?;
                return item.map_err(|error| GetError::Decode {
                    expected: std::any::type_name::<T>(),
                    error: error.to_string(),
                });
            }
            if guard.state() == State::ShutDown {
                return Err(GetError::ShutDown); // drained: no put can commit any more
            }
            let seen = guard.tail_version();
            drop(guard);
            if wait.expired() {
                return Err(GetError::Empty);
            }
            self.ring.wait(Event::NotEmpty, seen, wait.deadline(), || {
                self.ring.len() == 0 && self.ring.state() == State::Open
            });
        }
    }
}

impl<T> Clone for Queue<T> {
    /// Another handle to the same queue (open, whatever the state of this one).
    fn clone(&self) -> Self {
        Queue {
            ring: Arc::clone(&self.ring),
            closed: AtomicBool::new(false),
            items: PhantomData,
        }
    }
}

impl<T> fmt::Debug for Queue<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Queue")
            .field("item", &std::any::type_name::<T>())
            .field("maxsize", &self.ring.maxsize())
            .field("closed", &self.closed.load(Ordering::Relaxed))
            .finish()
    }
}

/// Under spawn, a queue crosses as its memfd; see [`Process::new`](crate::Process::new).
impl<T> Serialize for Queue<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        crate::handoff::Exported {
            fd: self.ring.file(),
            what: "Queue",
        }
        .serialize(serializer)
    }
}

impl<'de, T> Deserialize<'de> for Queue<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let crate::handoff::Inherited(file) = Deserialize::deserialize(deserializer)?;
        let ring = Ring::open(file).map_err(serde::de::Error::custom)?;
        Ok(Queue {
            ring: Arc::new(ring),
            closed: AtomicBool::new(false),
            items: PhantomData,
        })
    }
}

/// Why a `put` failed; every variant hands the item back ([`into_inner`](Self::into_inner)).
#[non_exhaustive]
pub enum PutError<T> {
    /// The bounded queue stayed full (`put_nowait`, `put_timeout`). Python: `queue.Full`.
    Full(T),
    /// This handle was closed. Python: `ValueError: Queue is closed`.
    Closed(T),
    /// The queue was shut down ([`Queue::shutdown`]), by any process. Python (3.13):
    /// `queue.ShutDown`.
    ShutDown(T),
    /// The item could not be encoded as MessagePack.
    Encode {
        /// The item.
        item: T,
        /// What the encoder said.
        error: String,
    },
    /// The queue's memory could not grow to hold the item.
    Os {
        /// The item.
        item: T,
        /// What the system said.
        error: io::Error,
    },
    /// Another process corrupted the queue's shared memory (a header field no queue can
    /// hold, or a file that does not cover the ring); nothing was put.
    Corrupt {
        /// The item.
        item: T,
        /// What was found.
        error: io::Error,
    },
}

impl<T> PutError<T> {
    /// The item that was not put.
    pub fn into_inner(self) -> T {
        match self {
            PutError::Full(item) | PutError::Closed(item) | PutError::ShutDown(item) => item,
            PutError::Encode { item, .. }
            | PutError::Os { item, .. }
            | PutError::Corrupt { item, .. } => item,
        }
    }

    /// Whether another process corrupted the queue's memory.
    pub fn is_corrupt(&self) -> bool {
        matches!(self, PutError::Corrupt { .. })
    }

    /// An error of the ring, as a `Corrupt` or an `Os` error.
    fn from_ring(item: T, error: io::Error) -> PutError<T> {
        if is_corruption(&error) {
            PutError::Corrupt { item, error }
        } else {
            PutError::Os { item, error }
        }
    }

    /// The outcome of a push of `item`.
    fn from_push(item: T, pushed: Result<(), PushError<String>>) -> Result<(), PutError<T>> {
        match pushed {
            Ok(()) => Ok(()),
            Err(PushError::Fill(error)) => Err(PutError::Encode { item, error }),
            Err(PushError::TooLarge) => Err(PutError::Os {
                item,
                error: io::Error::new(io::ErrorKind::OutOfMemory, "item too large"),
            }),
            // The consumers' lock, needed to grow, stayed taken until the deadline.
            Err(PushError::Busy) => Err(PutError::Full(item)),
            Err(PushError::Os(error)) => Err(PutError::from_ring(item, error)),
        }
    }

    /// Whether the queue was full (Python's `queue.Full`).
    pub fn is_full(&self) -> bool {
        matches!(self, PutError::Full(_))
    }

    /// Whether this handle was closed.
    pub fn is_closed(&self) -> bool {
        matches!(self, PutError::Closed(_))
    }

    /// Whether the queue was shut down (Python's `queue.ShutDown`).
    pub fn is_shut_down(&self) -> bool {
        matches!(self, PutError::ShutDown(_))
    }
}

impl<T> fmt::Display for PutError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PutError::Full(_) => f.write_str("queue is full"),
            PutError::Closed(_) => f.write_str("queue is closed"),
            PutError::ShutDown(_) => f.write_str("queue is shut down"),
            PutError::Encode { error, .. } => {
                write!(
                    f,
                    "cannot encode the item of type `{}`: {error}",
                    std::any::type_name::<T>()
                )
            }
            PutError::Os { .. } => f.write_str("the queue cannot hold the item"),
            PutError::Corrupt { .. } => f.write_str("another process corrupted the queue's memory"),
        }
    }
}

impl<T> std::error::Error for PutError<T> {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            PutError::Os { error, .. } | PutError::Corrupt { error, .. } => Some(error),
            _ => None,
        }
    }
}

crate::debug_as_display!(PutError<T>);

/// Why a `get` failed.
#[non_exhaustive]
pub enum GetError {
    /// Nothing arrived in time (`get_nowait`, `get_timeout`). Python: `queue.Empty`.
    Empty,
    /// This handle was closed. Python: `ValueError: Queue is closed`.
    Closed,
    /// The queue was shut down ([`Queue::shutdown`]) and is empty, or was shut down
    /// immediately. Python (3.13): `queue.ShutDown`.
    ShutDown,
    /// The item at the front was not a `T`. It was removed; the next `get` reads the next one.
    Decode {
        /// The type asked for.
        expected: &'static str,
        /// What the decoder said.
        error: String,
    },
    /// The queue's memory is unusable.
    Os(io::Error),
    /// Another process corrupted the queue's shared memory (a header field no queue can hold,
    /// a frame that points outside the frames, a position that never stops changing).
    Corrupt(io::Error),
}

impl GetError {
    /// Whether nothing arrived in time (Python's `queue.Empty`).
    pub fn is_empty(&self) -> bool {
        matches!(self, GetError::Empty)
    }

    /// Whether this handle was closed.
    pub fn is_closed(&self) -> bool {
        matches!(self, GetError::Closed)
    }

    /// Whether the queue was shut down and holds nothing more to get (Python's
    /// `queue.ShutDown`).
    pub fn is_shut_down(&self) -> bool {
        matches!(self, GetError::ShutDown)
    }

    /// Whether another process corrupted the queue's memory.
    pub fn is_corrupt(&self) -> bool {
        matches!(self, GetError::Corrupt(_))
    }

    /// An error of the ring, as a `Corrupt` or an `Os` error.
    fn from_ring(error: io::Error) -> GetError {
        if is_corruption(&error) {
            GetError::Corrupt(error)
        } else {
            GetError::Os(error)
        }
    }
}

impl fmt::Display for GetError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GetError::Empty => f.write_str("queue is empty"),
            GetError::Closed => f.write_str("queue is closed"),
            GetError::ShutDown => f.write_str("queue is shut down"),
            GetError::Decode { expected, error } => {
                write!(f, "cannot decode the item as `{expected}`: {error}")
            }
            GetError::Os(_) => f.write_str("queue memory is unusable"),
            GetError::Corrupt(_) => f.write_str("another process corrupted the queue's memory"),
        }
    }
}

impl std::error::Error for GetError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            GetError::Os(error) | GetError::Corrupt(error) => Some(error),
            _ => None,
        }
    }
}

crate::debug_as_display!(GetError);

impl From<io::Error> for GetError {
    fn from(error: io::Error) -> Self {
        GetError::Os(error)
    }
}
