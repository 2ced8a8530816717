//! The shared-memory ring behind [`Queue`](crate::Queue) and
//! [`JoinableQueue`](crate::JoinableQueue): a memfd whose first page is a [`Header`] and whose
//! rest holds the frames laid out by [`layout`](super::layout).
//!
//! # Two ends, two locks
//!
//! Producers and consumers each have their own robust mutex and their own committed
//! [`Position`]: the tail (bytes and items put) and the head (bytes and items taken). A
//! producer writes only free space and the tail; a consumer reads only `[head, tail)` and
//! writes the head. So one producer and one consumer never wait for each other's lock, and
//! each operation moves about two cache lines between them: the other end's position and the
//! frame.
//!
//! # Crash consistency
//!
//! Each position is kept twice, and one version word says which copy is current: an operation
//! writes the spare copy, then a single store of the version commits it. A process killed at
//! any instruction therefore leaves whole positions; the next locker is told that the owner
//! died and carries on. Item bytes are written to free space before the tail commit and read
//! before the head commit that frees them, so a dead producer's half-written item is never
//! seen and a dead consumer's half-read one is not lost to the others.
//!
//! Either end reads the other's position without its lock, as a seqlock: it retries when the
//! version moved while it read.
//!
//! Growing the ring (a producer that finds no room) takes both locks, always the put lock
//! first, and copies only into the new space above the old ring; the single store of the new
//! capacity commits it.
//!
//! Locks are [`RobustMutex`]es taken through guards: [`TailGuard`] and [`HeadGuard`] hold one
//! and unlock it on drop, then wake sleepers. Every lock is taken with the caller's deadline,
//! including the get lock a growing producer takes; only a consumer releasing pages takes the
//! put lock out of order, and then only with `try_lock`.
//!
//! # Waiting
//!
//! A waiter spins briefly before it sleeps only when this process may run on more than one
//! CPU: on one CPU the process it waits for cannot run while it spins, so it sleeps at once.
//! How long it spins adapts ([`SpinBudget`]): spins in vain shorten it, as for a consumer
//! whose producer takes longer than a spin per item. Yielding the CPU instead of sleeping was
//! measured and dropped: it handed a busy process on the same CPU a whole time slice at every
//! yield, 0.4 ms to 2 ms per queue round trip where a sleep and a wake-up cost 15 us. A
//! sleeper sets a bit in the futex word, so that one commit only makes the wake-up system
//! call ([`Waiters`]). A full ring that a consumer is draining waits for it to make room
//! before it doubles ([`TailGuard::wait_for_room`]), so that a consumer that cannot run
//! meanwhile (one CPU, a busy neighbour) drains it instead.
//!
//! # Checked at the boundary
//!
//! The memfd is sealed against shrinking when created, and [`Ring::open`] refuses one that is
//! not, so a mapping never runs past the file's end. Each number the header holds is parsed
//! once per operation, under the lock that keeps it stable: the capacity into a
//! [`Capacity`] that the mapping covers (checked against the file's length only when the
//! mapping must grow, so the hot path makes no system call), the two ends into a [`Span`].
//! Frame headers are checked against the span before a slice is made. Seqlock reads retry a
//! bounded number of times. What fails is a corruption error ([`is_corruption`]).
//!
//! # Memory
//!
//! A ring larger than [`RELEASE_ABOVE`] and at most a quarter full gives the pages of its
//! free space back once the head has passed [`RELEASE_EVERY`] bytes since the last release:
//! whoever holds the put lock (a producer after its commit, or a consumer that got it with
//! `try_lock`) punches whole blocks between the last release and the head (never
//! `[head, tail)`), except the [`KEEP_FRAMES_AHEAD`] largest recent frames' worth just ahead of
//! the tail, which the next puts write. So under steady traffic only those pages, the live
//! frames and the pages passed since the last release stay resident, whatever the ring's size,
//! and items as large as the ring's quarter do not fault the ring in again on every lap. When
//! a large ring grows, the pages its frames were copied from go back at once.

use std::cell::UnsafeCell;
use std::fmt;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering, fence};
use std::time::{Duration, Instant};

use super::counters::{Counter, Counters};
pub(crate) use super::layout::Position;
use super::layout::{
    self, Capacity, FRAME_HEADER, FrameHeader, MAX_CAPACITY, Placement, Span, frame_size,
};
use crate::sys::fd::{self, Kind};
use crate::sys::shm::{self, Mapping, Seal};
use crate::sys::sync::{self, RobustGuard, RobustMutex, Waiters};

const MAGIC: u64 = u64::from_le_bytes(*b"shq-v008");
/// The seals of every queue's memfd: it cannot shrink under a mapping (no SIGBUS), and nobody
/// can add a seal that would stop it growing. [`Ring::open`] refuses a file without them.
const SEALS: [Seal; 2] = [Seal::Shrink, Seal::Sealing];
/// The header's share of the file; the ring starts after it. 64 KiB, so that the ring's
/// offset is a whole number of pages whatever the page size (4, 16 or 64 KiB); only the first
/// page is ever touched.
const HEADER_BYTES: u64 = 64 * 1024;
/// A new ring's size (a power of two, as every capacity is); it doubles as needed.
const INITIAL_CAPACITY: u64 = 64 * 1024;
/// A ring larger than this gives the pages of the free space behind its head back to the
/// system ([`HeadGuard::release_behind`]), so that one burst of huge items does not leave the
/// whole ring resident under the steady traffic that follows. Smaller rings keep their pages:
/// the check costs them one comparison per `get`, and nothing else.
const RELEASE_ABOVE: u64 = 32 << 20;
/// How far the head passes between two releases: each costs a system call, and the pages the
/// head passed since the last one stay resident, so this bounds their memory.
const RELEASE_EVERY: u64 = 4 << 20;
/// A release keeps the free ring just ahead of the tail resident, as many bytes as this many
/// of the largest frames put lately: the producer writes there next, and pages given back there
/// would only be faulted in again (zero-filled) at once. With 16 MiB items a ring grows to
/// 64 MiB, and giving back 8 MiB behind every item cost a `fallocate` of 4.5 ms plus the
/// faults, half the time of a one-CPU run (bench/README.md, "Under load").
const KEEP_FRAMES_AHEAD: u64 = 4;
/// Released ranges are whole blocks of this size, a multiple of every page size (4, 16 or
/// 64 KiB): a partial page would only be zeroed, not given back.
const RELEASE_BLOCK: u64 = 64 * 1024;

/// How often [`Ring::len`] re-reads the two ends before it settles for a possible count.
const LEN_RETRIES: u32 = 64;

/// How often a lock-free read ([`Committed::read`], [`Ring::task_done`]) is retried when
/// another process changes the word under it: spinning for the first [`READ_SPINS`], then
/// yielding the CPU (a writer preempted mid-commit may need it). A commit takes nanoseconds,
/// so failing this often means a process rewrites the word without end: corruption.
const READ_ATTEMPTS: u32 = 10_000;
const READ_SPINS: u32 = 64;

/// How long a waiter spins, watching for a change, before it sleeps. Short: a producer on the
/// other core usually puts within a microsecond or two, and a wake-up syscall costs more.
/// The most a [`SpinBudget`] allows.
const SPIN: Duration = Duration::from_micros(20);
/// The least a [`SpinBudget`] allows: about one round of polls.
const SPIN_FLOOR: Duration = Duration::from_nanos(1250);
/// Every this many waits spin the whole [`SPIN`], whatever the budget says.
const PROBE_EVERY: u32 = 8;

/// The longest a waiter sleeps before it re-checks its condition. A waker wakes sleepers after
/// its commit; if it is killed between the two, nobody else may ever come to wake them, so a
/// sleeper never trusts a wake-up to arrive: this bounds what such a death can cost.
const LONGEST_SLEEP: Duration = Duration::from_millis(100);

/// The longest a producer that found the ring full waits for a consumer to make room before
/// it grows the ring ([`TailGuard::wait_for_room`]): a few of the scheduler's time slices, for
/// a consumer that waits for a CPU. With no consumer taking items it does not wait at all.
const ROOM_WAIT: Duration = Duration::from_millis(5);
/// A ring waits for room only once it holds this many of the frames being put: half of it
/// then frees several frames at a time. In a smaller ring, a wait would free a frame or two,
/// and on one CPU each would cost a sleep and a wake-up of each process (2,852 waits in one
/// run of `queue_64k`, in a ring of 128 KiB); growing such a ring costs little.
const ROOM_FRAMES: u64 = 8;
/// The longest one sleep of that wait lasts before the head is read again.
const ROOM_SLICE: Duration = Duration::from_millis(1);

/// How long this process's waiters of one event spin before they sleep. A spin in vain
/// halves it, down to [`SPIN_FLOOR`]; a spin that saw the change restores [`SPIN`]; and
/// every [`PROBE_EVERY`]th wait spins the whole [`SPIN`] whatever the budget, so that a
/// budget shrunk by a slow patch grows back once waits are short again.
///
/// Why: a consumer of 64 KiB items waits longer than 20 us for each (its producer makes two
/// copies of 64 KiB to its one), so nearly every spin was in vain (1 won of 2,000), and it
/// spent as much CPU spinning as copying. Beside a busy process, three processes share two
/// CPUs, and that CPU came out of the producer's share (bench/README.md, "Under load").
/// Process-local: threads race on it harmlessly (a budget is a hint).
struct SpinBudget {
    nanos: AtomicU32,
    waits: AtomicU32,
}

impl SpinBudget {
    const fn new() -> SpinBudget {
        SpinBudget {
            nanos: AtomicU32::new(SPIN.as_nanos() as u32),
            waits: AtomicU32::new(0),
        }
    }

    /// How long the next wait may spin.
    fn next(&self) -> Duration {
        if self.waits.fetch_add(1, Ordering::Relaxed) % PROBE_EVERY == 0 {
            return SPIN;
        }
        Duration::from_nanos(self.nanos.load(Ordering::Relaxed).into())
    }

    fn won(&self) {
        self.nanos.store(SPIN.as_nanos() as u32, Ordering::Relaxed);
    }

    fn lost(&self) {
        let halved = self.nanos.load(Ordering::Relaxed) / 2;
        self.nanos
            .store(halved.max(SPIN_FLOOR.as_nanos() as u32), Ordering::Relaxed);
    }
}

/// The events a process can wait for.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Event {
    /// An item was put.
    NotEmpty,
    /// An item was taken from a bounded queue.
    NotFull,
    /// Every item put was marked done.
    AllDone,
}

/// A [`Position`] committed by one store and readable without the lock (a seqlock over two
/// copies): `version` names the current copy and changes on every commit.
#[repr(C)]
struct Committed {
    version: AtomicU64,
    copies: [[AtomicU64; 2]; 2],
}

impl Committed {
    /// A consistent snapshot, and the version it belongs to.
    ///
    /// # Errors
    /// Corruption, when the version changed under every one of [`READ_ATTEMPTS`] reads.
    fn read(&self) -> io::Result<(u64, Position)> {
        retry(|| self.try_read())
    }

    fn try_read(&self) -> Option<(u64, Position)> {
        let version = self.version.load(Ordering::Acquire);
        let [bytes, items] = &self.copies[(version & 1) as usize];
        let position = Position {
            bytes: bytes.load(Ordering::Relaxed),
            items: items.load(Ordering::Relaxed),
        };
        // Pairs with the release fence in `commit`: if a later commit's write was read
        // above, the version load below sees that commit's predecessor at least.
        fence(Ordering::Acquire);
        (self.version.load(Ordering::Relaxed) == version).then_some((version, position))
    }

    /// Writes `next` to the spare copy, then moves `version` to it: the single store a killed
    /// process either made or did not. Only the holder of this end's lock may commit.
    fn commit(&self, next: Position) {
        let version = self.version.load(Ordering::Relaxed);
        let [bytes, items] = &self.copies[((version + 1) & 1) as usize];
        fence(Ordering::Release);
        bytes.store(next.bytes, Ordering::Relaxed);
        items.store(next.items, Ordering::Relaxed);
        self.version.store(version + 1, Ordering::Release);
    }
}

/// Whether a queue was shut down, and how: the value of [`Header`]'s `state` word, parsed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum State {
    /// Puts and gets work.
    Open,
    /// Puts fail; gets take what is left, then fail.
    ShutDown,
    /// Puts and gets fail; what was left was discarded.
    Immediate,
}

const OPEN: u64 = 0;
const SHUT_DOWN: u64 = 1;
const IMMEDIATE: u64 = 2;

impl State {
    /// Any word other than the three a queue writes reads as [`State::ShutDown`]: it is not an
    /// open queue's (0), and discarding items on a word no process wrote would lose data,
    /// whereas a shut-down queue still hands out what it holds. No other field depends on it,
    /// so it needs no `Corrupt` error.
    fn parse(word: u64) -> State {
        match word {
            OPEN => State::Open,
            IMMEDIATE => State::Immediate,
            _ => State::ShutDown,
        }
    }
}

/// A robust process-shared mutex, on a cache line of its own.
#[repr(C, align(64))]
struct Lock(RobustMutex);

/// Wakes the sleepers of one end when dropped, if a commit asked for it. Guards declare it
/// after their lock, so it runs after the unlock: a woken process finds the lock free.
struct Wake<'a> {
    waiters: &'a Waiters,
    pending: bool,
    counters: &'a Counters,
}

impl Drop for Wake<'_> {
    fn drop(&mut self) {
        if self.pending {
            self.counters.add(Counter::Wake);
            self.waiters.wake();
        }
    }
}

/// One end's committed position and the processes waiting for it to move, on one cache line:
/// the other end reads both on every operation.
#[repr(C, align(64))]
struct End {
    position: Committed,
    waiters: Waiters,
    /// The head's only: the position a producer waiting for room ([`TailGuard::wait_for_room`])
    /// wants the head to reach before it is woken, `u64::MAX` when none waits. Written under
    /// the put lock; a hint, whose corruption costs wake-ups or a bounded wait, never safety.
    room_at: AtomicU64,
}

/// The JoinableQueue count of items marked done, and who waits for it to reach the tail.
#[repr(C, align(64))]
struct Tasks {
    done: AtomicU64,
    waiters: Waiters,
}

/// The first page of the memfd. Every field may be rewritten by any process holding the memfd,
/// so all are atomics, and every number read from one is checked before it is used.
#[repr(C)]
struct Header {
    magic: AtomicU64,
    maxsize: AtomicU64,
    /// Bytes in the ring; changed only under both locks, so either lock makes it stable.
    capacity: AtomicU64,
    put_lock: Lock,
    get_lock: Lock,
    /// The producers' end; its waiters wait for items (`NotEmpty`).
    tail: End,
    /// The consumers' end; its waiters wait for room (`NotFull`).
    head: End,
    tasks: Tasks,
    /// The position up to which the free ring behind the head was given back to the system
    /// (written under the put lock; a hint, whose corruption costs memory, never safety).
    released_to: AtomicU64,
    /// The largest frame put since the last release, and in the span before it: what
    /// [`KEEP_FRAMES_AHEAD`] multiplies (written under the put lock; a hint, like
    /// `released_to`).
    frame_peaks: [AtomicU64; 2],
    /// A [`State`] word. Written under the put lock, so that once a process reads a shutdown
    /// no put can commit any more; an immediate shutdown is written under both locks, so that
    /// no get commits after it either.
    state: AtomicU64,
    /// The head's item count when an immediate shutdown drained the queue, plus one; 0 until
    /// then. Written once, under both locks, before the drain's head commit: items put past it
    /// were discarded, not taken, so they are not unfinished tasks.
    drained_from: AtomicU64,
}

const _: () = assert!(size_of::<Header>() <= 4096);

/// What this process's producers keep, under the put lock.
struct ProducerView {
    /// Their mapping of the frames.
    data: Mapping,
    /// A head committed earlier: a lower bound of the real one, which only grows, so room and
    /// item counts computed from it are safe, and it is re-read only when they look short.
    head: Position,
    /// The head's item count when a producer of this process last found the ring full: if the
    /// head has moved since, a consumer is taking items, and is worth waiting for.
    full_at: u64,
}

/// One process's view of a queue's shared memory.
pub(crate) struct Ring {
    file: OwnedFd,
    header: Mapping,
    /// Touched only while holding the put lock, which also excludes this process's threads.
    producer: UnsafeCell<ProducerView>,
    /// This process's consumers' mapping of the frames; touched only under the get lock.
    /// Remapped when another process grew the ring.
    consumer: UnsafeCell<Mapping>,
    /// What this process's waits and memory management did (feature `queue-counters`).
    counters: Counters,
    /// How long this process's waiters spin, per [`Event`] (in its order).
    spin_budgets: [SpinBudget; 3],
}

// SAFETY: the header is accessed through atomics and the process-shared mutexes; `producer`
// only under the put lock and `consumer` only under the get lock.
unsafe impl Send for Ring {}
// SAFETY: as above.
unsafe impl Sync for Ring {}

impl Ring {
    /// A new, empty ring; `maxsize` 0 means unbounded.
    pub(crate) fn create(maxsize: u64) -> io::Result<Ring> {
        let file = shm::create(c"shared-queue", HEADER_BYTES + INITIAL_CAPACITY)?;
        shm::seal(&file, &SEALS)?;
        let header = Mapping::new(&file, 0, HEADER_BYTES as usize)?;
        let ptr = header.as_ptr().cast::<Header>();
        // SAFETY: the mapping is fresh, zeroed (all positions 0, all counts 0), page-aligned
        // and large enough for a Header; no other process has the memfd yet.
        unsafe {
            (*ptr).magic = AtomicU64::new(MAGIC);
            (*ptr).maxsize = AtomicU64::new(maxsize);
            (*ptr).capacity = AtomicU64::new(INITIAL_CAPACITY);
            (*ptr).head.room_at = AtomicU64::new(u64::MAX);
            (*ptr).put_lock.0.init()?;
            (*ptr).get_lock.0.init()?;
        }
        Ring::with_header(file, header)
    }

    /// Opens a ring created by another process, from a descriptor of its memfd.
    ///
    /// # Errors
    /// `InvalidData` ("not a queue made by shared") for anything but a memfd sealed as
    /// [`create`](Self::create) seals it, at least as long as an empty ring, with the magic.
    pub(crate) fn open(file: OwnedFd) -> io::Result<Ring> {
        let not_a_queue =
            || io::Error::new(io::ErrorKind::InvalidData, "not a queue made by shared");
        // Sealed first: a file that cannot shrink stays as long as checked below, so no mapping
        // within that length can ever fault (SIGBUS).
        if fd::kind(file.as_fd())? != Kind::Regular || !shm::is_sealed(&file, &SEALS) {
            return Err(not_a_queue());
        }
        if shm::file_len(&file)? < HEADER_BYTES + INITIAL_CAPACITY {
            return Err(not_a_queue());
        }
        let header = Mapping::new(&file, 0, HEADER_BYTES as usize)?;
        // SAFETY: the mapping holds at least a Header's bytes, page-aligned, and every field
        // of a Header is an atomic or a mutex, so any bytes are a valid Header to read.
        let magic = unsafe { &(*header.as_ptr().cast::<Header>()).magic };
        if magic.load(Ordering::Relaxed) != MAGIC {
            return Err(not_a_queue());
        }
        Ring::with_header(file, header)
    }

    fn with_header(file: OwnedFd, header: Mapping) -> io::Result<Ring> {
        let map_frames = || Mapping::new(&file, HEADER_BYTES, INITIAL_CAPACITY as usize);
        let producer = ProducerView {
            data: map_frames()?,
            head: Position::default(),
            full_at: 0,
        };
        let consumer = map_frames()?;
        Ok(Ring {
            producer: UnsafeCell::new(producer),
            consumer: UnsafeCell::new(consumer),
            file,
            header,
            counters: Counters::default(),
            spin_budgets: [const { SpinBudget::new() }; 3],
        })
    }

    /// The memfd, for handing the ring to a spawned child.
    pub(crate) fn file(&self) -> BorrowedFd<'_> {
        self.file.as_fd()
    }

    fn header(&self) -> &Header {
        // SAFETY: the header mapping lives as long as `self` and never moves; `open` checked
        // that the file covers it and cannot shrink. Any bytes make a valid Header (atomics
        // and mutexes), so what other processes write there is read, never trusted.
        unsafe { &*self.header.as_ptr().cast::<Header>() }
    }

    /// The bound given at creation; 0 means unbounded.
    /// The queue's identity in every process that maps it: its memfd's inode number (0 if
    /// the system cannot tell), for the timeline.
    pub(crate) fn id(&self) -> u64 {
        crate::sys::fd::inode(self.file()).unwrap_or(0)
    }

    pub(crate) fn maxsize(&self) -> u64 {
        self.header().maxsize.load(Ordering::Relaxed)
    }

    /// Items in the queue: a count it really held at some moment during the call. On memory
    /// another process corrupted: 0 when the ends are not a span of the ring (the head past the
    /// tail, more items than bytes, a capacity that is not one, positions that never settle),
    /// otherwise a count no larger than the ring could hold.
    pub(crate) fn len(&self) -> u64 {
        let header = self.header();
        let head = &header.head.position;
        for _ in 0..LEN_RETRIES {
            // Head first: the tail read after it is at least as far.
            let (Ok((version, taken)), Ok((_, put))) = (head.read(), header.tail.position.read())
            else {
                return 0;
            };
            // If the head did not move while the tail was read, both held at that read.
            fence(Ordering::Acquire);
            if head.version.load(Ordering::Relaxed) == version {
                // Read after the tail: at least the capacity that tail was committed in.
                let span = self.read_capacity().and_then(|c| Span::new(taken, put, c));
                return span.map_or(0, Span::items);
            }
        }
        self.stale_len()
    }

    /// When consumers kept moving the head: a count that may be stale but is possible.
    fn stale_len(&self) -> u64 {
        let header = self.header();
        let (Ok((_, taken)), Ok((_, put)), Some(capacity)) = (
            header.head.position.read(),
            header.tail.position.read(),
            self.read_capacity(),
        ) else {
            return 0;
        };
        let count = put
            .items
            .saturating_sub(taken.items)
            .min(capacity.bytes() / FRAME_HEADER);
        match self.maxsize() {
            0 => count,
            maxsize => count.min(maxsize),
        }
    }

    /// Items put and not yet marked done (JoinableQueue).
    ///
    /// # Errors
    /// Corruption, when the tail never settles ([`Committed::read`]).
    pub(crate) fn unfinished(&self) -> io::Result<u64> {
        let done = self.header().tasks.done.load(Ordering::Acquire);
        Ok(self.tasks()?.saturating_sub(done))
    }

    /// How many items can be marked done: every item put, or once an immediate shutdown
    /// discarded the rest, every item taken with `get` (Python counts each discarded item
    /// done). From the moment the state word says so, whether or not the drain has run (or its
    /// process was killed before it ended), so a waiting `join` is released by that one store.
    ///
    /// # Errors
    /// Corruption, when an end never settles.
    fn tasks(&self) -> io::Result<u64> {
        let header = self.header();
        if self.state() != State::Immediate {
            return Ok(header.tail.position.read()?.1.items);
        }
        // The head first: if it shows the drain's commit, the mark written before it shows
        // too. Read before the drain, the head is where it will drain from (no get commits
        // once the state says immediate: both were done under the get lock).
        let (_, head) = header.head.position.read()?;
        let mark = header.drained_from.load(Ordering::Acquire);
        Ok(mark
            .checked_sub(1)
            .map_or(head.items, |at| at.min(head.items)))
    }

    /// Whether, and how, the queue was shut down, in any process.
    pub(crate) fn state(&self) -> State {
        State::parse(self.header().state.load(Ordering::Acquire))
    }

    /// Shuts the queue down for every process holding it; `immediate` also discards what it
    /// holds. Then wakes every waiter, so that blocked puts and gets fail and a `join` that
    /// was waiting only for discarded items returns.
    ///
    /// It waits for the put lock, and for an immediate shutdown the get lock too, as long as
    /// their holders keep them (one item's copy; for ever if a holder is stopped).
    ///
    /// # Errors
    /// The system's errors from the locks; corruption of the ends or the capacity, found by
    /// the drain. The state word is written all the same (gets then fail at once, and join
    /// counts no discarded item), unless locking itself failed.
    pub(crate) fn shut_down(&self, immediate: bool) -> io::Result<()> {
        let header = self.header();
        let never = || io::Error::other("a lock without deadline timed out");
        let result = (|| {
            let _producers = header.put_lock.0.lock(None)?.ok_or_else(never)?;
            if !immediate {
                // Idempotent, and never undoes an immediate shutdown.
                if self.state() == State::Open {
                    header.state.store(SHUT_DOWN, Ordering::Release);
                }
                return Ok(());
            }
            let _consumers = header.get_lock.0.lock(None)?.ok_or_else(never)?;
            header.state.store(IMMEDIATE, Ordering::Release);
            self.drain_holding_both_locks()
        })();
        for waiters in [
            &header.tail.waiters,
            &header.head.waiters,
            &header.tasks.waiters,
        ] {
            waiters.wake_sleepers();
        }
        result
    }

    /// Moves the head to the tail: one commit, as a `get` makes, so a process killed here
    /// leaves either the items or none (and [`tasks`](Self::tasks) the same count either
    /// way). Then gives the free ring's pages back if it is large.
    fn drain_holding_both_locks(&self) -> io::Result<()> {
        let header = self.header();
        let (_, tail) = header.tail.position.read()?;
        let (_, head) = header.head.position.read()?;
        let capacity = self.read_capacity().ok_or_else(|| {
            corrupt(format!(
                "capacity {} is not one a ring can have",
                header.capacity.load(Ordering::Relaxed)
            ))
        })?;
        checked_span(head, tail, capacity)?;
        // Only the first drain marks: a second one (after a kill, or a repeated call) finds
        // the head already moved, or not, but the items taken unchanged. A mark past the head
        // no drain wrote (corruption) is replaced: it would count discarded items unfinished.
        let mark = header.drained_from.load(Ordering::Relaxed);
        if mark.checked_sub(1).is_none_or(|at| at > head.items) {
            header.drained_from.store(head.items + 1, Ordering::Relaxed);
        }
        header.head.position.commit(tail);
        let drained = checked_span(tail, tail, capacity)?;
        if capacity.bytes() > RELEASE_ABOVE {
            self.release_free(drained, false);
        }
        Ok(())
    }

    /// Marks one item done. Returns `false`, changing nothing, when no item is unfinished.
    /// One atomic update, so it needs no lock and a kill cannot tear it.
    ///
    /// # Errors
    /// Corruption, when the tail or the count never settle.
    pub(crate) fn task_done(&self) -> io::Result<bool> {
        let tasks = &self.header().tasks;
        let marked = retry(|| {
            let done = tasks.done.load(Ordering::Relaxed);
            let tasks_put = match self.tasks() {
                Ok(count) => count,
                Err(error) => return Some(Err(error)),
            };
            if done >= tasks_put {
                return Some(Ok(false));
            }
            let next = Ordering::AcqRel;
            let marked = tasks
                .done
                .compare_exchange_weak(done, done + 1, next, Ordering::Relaxed);
            marked.is_ok().then_some(Ok(true))
        })??;
        if marked && matches!(self.unfinished(), Ok(0)) {
            tasks.waiters.wake_sleepers();
        }
        Ok(marked)
    }

    /// The word that changes when `event` may have happened, to pass to [`wait`](Self::wait)
    /// as what was seen before checking the condition.
    pub(crate) fn watch(&self, event: Event) -> u64 {
        self.watched(event).load(Ordering::Acquire)
    }

    fn watched(&self, event: Event) -> &AtomicU64 {
        let header = self.header();
        match event {
            Event::NotEmpty => &header.tail.position.version,
            Event::NotFull => &header.head.position.version,
            Event::AllDone => &header.tasks.done,
        }
    }

    fn waiters(&self, event: Event) -> &Waiters {
        let header = self.header();
        match event {
            Event::NotEmpty => &header.tail.waiters,
            Event::NotFull => &header.head.waiters,
            Event::AllDone => &header.tasks.waiters,
        }
    }

    /// Waits until `event` may have happened since its [`watch`](Self::watch) word read
    /// `seen`, or `deadline` passes: first spinning briefly, then, if `still_waiting` holds,
    /// sleeping. Callers hold no lock, and re-check their condition afterwards.
    pub(crate) fn wait(
        &self,
        event: Event,
        seen: u64,
        deadline: Option<Instant>,
        still_waiting: impl Fn() -> bool,
    ) {
        // On one CPU the process we wait for cannot run while we spin: sleep at once.
        let budget = &self.spin_budgets[event as usize];
        if !sync::several_cpus() {
            self.counters.add(Counter::SpinSkipped);
        } else if self.spin(event, seen, deadline, budget.next()) {
            self.counters.add(Counter::SpinWon);
            budget.won();
            return;
        } else {
            self.counters.add(Counter::SpinLost);
            budget.lost();
        }
        let waiters = self.waiters(event);
        let sequence = waiters.register();
        // Pairs with the fence in `Waiters::announce`: a commit this check misses sees the
        // sleeper and wakes it.
        fence(Ordering::SeqCst);
        if still_waiting() {
            let left = deadline.map_or(LONGEST_SLEEP, |d| {
                d.saturating_duration_since(Instant::now())
            });
            if !left.is_zero() {
                self.counters.add(Counter::Sleep);
                if !waiters.sleep(sequence, left.min(LONGEST_SLEEP)) {
                    self.counters.add(Counter::SleepUnwoken);
                }
            }
        }
    }

    /// Spins for at most `budget` while the word `event` watches still reads `seen`; returns
    /// whether it moved, so the caller can skip the sleep.
    fn spin(&self, event: Event, seen: u64, deadline: Option<Instant>, budget: Duration) -> bool {
        let watched = self.watched(event);
        let start = Instant::now();
        let limit = deadline.map_or(start + budget, |d| d.min(start + budget));
        loop {
            for _ in 0..64 {
                if watched.load(Ordering::Relaxed) != seen {
                    return true;
                }
                std::hint::spin_loop();
            }
            if Instant::now() >= limit {
                return false;
            }
        }
    }

    /// The capacity in the header, if it is one this ring could have.
    fn read_capacity(&self) -> Option<Capacity> {
        let bytes = self.header().capacity.load(Ordering::Acquire);
        Capacity::new(bytes).filter(|capacity| capacity.bytes() >= INITIAL_CAPACITY)
    }

    /// The capacity in the header, checked, with `data` mapped over all of it. Call with either
    /// lock held: it keeps the capacity stable (growth takes both).
    ///
    /// # Errors
    /// Corruption, when the capacity is not one or the file does not cover it; the system's
    /// error when the mapping cannot grow.
    fn mapped_capacity(&self, data: &mut Mapping) -> io::Result<Capacity> {
        let capacity = self.read_capacity().ok_or_else(|| {
            let bytes = self.header().capacity.load(Ordering::Relaxed);
            corrupt(format!(
                "capacity {bytes} is not a power of two from {INITIAL_CAPACITY} to {MAX_CAPACITY}"
            ))
        })?;
        let bytes = capacity.bytes();
        if bytes as usize <= data.len() {
            return Ok(capacity);
        }
        // Another process grew the ring since `data` was mapped, or claims it did. The file
        // cannot shrink (sealed), so once it covers the ring it always will.
        let len = shm::file_len(&self.file)?;
        if len < HEADER_BYTES + bytes {
            return Err(corrupt(format!(
                "capacity {bytes} is larger than the file ({len} bytes with the header)"
            )));
        }
        data.grow(bytes as usize)?;
        Ok(capacity)
    }

    /// Locks the producers' end, waiting at most until `deadline`; `None` on timeout.
    ///
    /// # Errors
    /// Corruption ([`is_corruption`]) of the tail or the capacity; the system's errors.
    pub(crate) fn lock_tail(&self, deadline: Option<Instant>) -> io::Result<Option<TailGuard<'_>>> {
        let Some(lock) = self.header().put_lock.0.lock(deadline)? else {
            return Ok(None);
        };
        // Under the put lock, which every shutdown takes to write the state.
        let state = self.state();
        let (_, tail) = self.header().tail.position.read()?;
        // SAFETY: we hold the put lock (`lock`), which excludes every other user of the view.
        let view = unsafe { &mut *self.producer.get() };
        let capacity = self.mapped_capacity(&mut view.data)?;
        Ok(Some(TailGuard {
            ring: self,
            state,
            tail,
            capacity,
            deadline,
            _lock: lock,
            wake: Wake {
                waiters: &self.header().tail.waiters,
                pending: false,
                counters: &self.counters,
            },
        }))
    }

    /// Locks the consumers' end, waiting at most until `deadline`; `None` on timeout.
    ///
    /// # Errors
    /// Corruption ([`is_corruption`]) of either end or the capacity; the system's errors.
    pub(crate) fn lock_head(&self, deadline: Option<Instant>) -> io::Result<Option<HeadGuard<'_>>> {
        let Some(lock) = self.header().get_lock.0.lock(deadline)? else {
            return Ok(None);
        };
        // Before the tail: a shutdown is written under the put lock, after the last put's
        // commit, so a tail read after it is final. Under the get lock: an immediate one is
        // written under it too, so no get that read "open" commits after it.
        let state = self.state();
        let (tail_version, tail) = self.header().tail.position.read()?;
        let (_, head) = self.header().head.position.read()?;
        // SAFETY: we hold the get lock (`lock`), which excludes every other user of the
        // consumer mapping.
        let data = unsafe { &mut *self.consumer.get() };
        let capacity = self.mapped_capacity(data)?;
        Ok(Some(HeadGuard {
            ring: self,
            state,
            span: checked_span(head, tail, capacity)?,
            tail_version,
            front: None,
            _lock: lock,
            wake: Wake {
                waiters: &self.header().head.waiters,
                pending: false,
                counters: &self.counters,
            },
        }))
    }
}

/// Calls `attempt` until it gives a value: spinning at first, then yielding the CPU.
///
/// # Errors
/// Corruption after [`READ_ATTEMPTS`] failures: another process keeps changing the word.
fn retry<T>(mut attempt: impl FnMut() -> Option<T>) -> io::Result<T> {
    for tries in 0..READ_ATTEMPTS {
        if let Some(value) = attempt() {
            return Ok(value);
        }
        if tries < READ_SPINS {
            std::hint::spin_loop();
        } else {
            std::thread::yield_now();
        }
    }
    Err(corrupt("a position kept changing while it was read"))
}

/// `head` to `tail` as a span of a ring of `capacity`.
///
/// # Errors
/// Corruption when they are not one.
fn checked_span(head: Position, tail: Position, capacity: Capacity) -> io::Result<Span> {
    Span::new(head, tail, capacity).ok_or_else(|| {
        corrupt(format!(
            "head {head:?} and tail {tail:?} are not the ends of a ring of {} bytes",
            capacity.bytes()
        ))
    })
}

/// What another process did to the queue's memory, as found by a check; carried inside an
/// `io::Error` of kind `InvalidData` so that [`is_corruption`] can tell it from the system's
/// errors.
#[derive(Debug)]
struct Corruption(String);

impl fmt::Display for Corruption {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Corruption {}

fn corrupt(what: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, Corruption(what.into()))
}

/// Whether `error` reports memory another process corrupted (rather than a system error).
pub(crate) fn is_corruption(error: &io::Error) -> bool {
    error
        .get_ref()
        .is_some_and(|inner| inner.is::<Corruption>())
}

/// Why a frame could not be added.
pub(crate) enum PushError<E> {
    /// The frame is larger than any ring can be.
    TooLarge,
    /// Growing needed the consumers' lock, and it stayed taken until the deadline.
    Busy,
    /// The memory could not grow, or is corrupt ([`is_corruption`]).
    Os(io::Error),
    /// The caller's `fill` failed; nothing was added.
    Fill(E),
}

/// Proof that this thread holds the put lock; unlocks on drop, then wakes the consumers that
/// sleep, if any.
pub(crate) struct TailGuard<'a> {
    ring: &'a Ring,
    /// The queue's state when the lock was taken; stable while the put lock is held.
    state: State,
    /// The committed tail.
    tail: Position,
    /// The ring's size, checked and mapped; stable while the put lock is held.
    capacity: Capacity,
    /// How long this operation may wait for the get lock, should it have to grow the ring.
    deadline: Option<Instant>,
    /// Dropped before `wake`: fields drop in declaration order.
    _lock: RobustGuard<'a>,
    wake: Wake<'a>,
}

impl TailGuard<'_> {
    /// The number, from 1, that the next item put will have in this queue: the `get` that
    /// takes it sees the same number as [`HeadGuard::first_item`] (for the timeline).
    pub(crate) fn next_item(&self) -> u64 {
        self.tail.items.wrapping_add(1)
    }

    /// Whether the queue was shut down (in any way) before this lock was taken: if so, no
    /// put may commit.
    pub(crate) fn shut_down(&self) -> bool {
        self.state != State::Open
    }

    fn view(&mut self) -> &mut ProducerView {
        // SAFETY: we hold the put lock, which excludes every other user of the view, and
        // `&mut self` excludes every reference this guard handed out.
        unsafe { &mut *self.ring.producer.get() }
    }

    /// Re-reads the head: the [`watch`](Ring::watch) value of [`Event::NotFull`] it belongs
    /// to, and the span from it to the tail.
    ///
    /// # Errors
    /// Corruption when the head never settles or is not behind the tail within the ring.
    fn refresh_head(&mut self) -> io::Result<(u64, Span)> {
        let (version, head) = self.ring.header().head.position.read()?;
        let span = checked_span(head, self.tail, self.capacity)?;
        self.view().head = head;
        Ok((version, span))
    }

    /// Whether the queue holds `maxsize` (non-zero) items: if so, the [`watch`](Ring::watch)
    /// value of [`Event::NotFull`] that saw it full, to wait for room.
    ///
    /// # Errors
    /// As [`refresh_head`](Self::refresh_head).
    pub(crate) fn full(&mut self, maxsize: u64) -> io::Result<Option<u64>> {
        if maxsize == 0 {
            return Ok(None);
        }
        // The head seen last is a lower bound of the real one, so a count below `maxsize`
        // from it is safe. One that is not (or a tail another process moved behind it)
        // sends us to re-read.
        let cached = self.view().head;
        let counted = self.tail.items.checked_sub(cached.items);
        if counted.is_some_and(|items| items < maxsize) {
            return Ok(None);
        }
        let (version, span) = self.refresh_head()?;
        Ok((span.items() >= maxsize).then_some(version))
    }

    /// Adds a frame of `len` payload bytes written by `fill`, growing the ring if needed
    /// (commits). If `fill` fails nothing is added.
    pub(crate) fn push<E>(
        &mut self,
        len: u64,
        fill: impl FnOnce(&mut [u8]) -> Result<(), E>,
    ) -> Result<(), PushError<E>> {
        let size = frame_size(len).ok_or(PushError::TooLarge)?;
        let placement = self.place(size)?;
        let (capacity, tail) = (self.capacity, self.tail);
        let data = &mut self.view().data;
        if placement.skip > 0 {
            let skip = FrameHeader::Skip(placement.skip);
            write_header(data, capacity.offset(tail.bytes), skip);
        }
        let offset = capacity.offset(placement.at);
        write_header(data, offset, FrameHeader::Payload(len));
        // SAFETY: `place` found `[offset, offset + size)` free and inside the ring, checked
        // against a span of this capacity, and the mapping covers the capacity; the put lock
        // and `&mut self` exclude every other writer, and consumers read only committed
        // frames.
        let payload = unsafe {
            std::slice::from_raw_parts_mut(
                data.as_ptr().add((offset + FRAME_HEADER) as usize),
                len as usize,
            )
        };
        fill(payload).map_err(PushError::Fill)?;
        self.tail = Position {
            bytes: placement.end,
            // The span checked in `place` keeps the tail's items below its bytes / 8.
            items: tail.items + 1,
        };
        let end = &self.ring.header().tail;
        end.position.commit(self.tail);
        self.wake.pending |= end.waiters.announce();
        self.ring.counters.add(Counter::Put);
        let peak = &self.ring.header().frame_peaks[0];
        if size > peak.load(Ordering::Relaxed) {
            peak.store(size, Ordering::Relaxed);
        }
        if capacity.bytes() > RELEASE_ABOVE {
            self.release_behind();
        }
        Ok(())
    }

    /// Gives back the pages of the free ring the head passed since the last release, as
    /// [`HeadGuard::release_behind`] does, from the producers' side: under steady traffic a
    /// producer holds the put lock most of the time (it copies the item under it), so the
    /// consumer's `try_lock` kept failing and the whole ring became resident again (498 MiB
    /// for 0.5 MiB live, issue 23). The put lock alone suffices: no consumer reads behind the
    /// committed head, and no other producer writes.
    fn release_behind(&mut self) {
        let from = self.ring.header().released_to.load(Ordering::Relaxed);
        // The head is behind the tail: if the tail has not passed RELEASE_EVERY since the last
        // release, neither has the head, and it need not be read (a cache miss).
        if self
            .tail
            .bytes
            .checked_sub(from)
            .is_some_and(|d| d < RELEASE_EVERY)
        {
            return;
        }
        let Ok((_, span)) = self.refresh_head() else {
            return;
        };
        if release_due(span, from) {
            self.ring.release_free(span, true);
        }
    }

    /// Where a frame of `size` bytes goes: after the tail, growing the ring if the head, even
    /// re-read, leaves no room.
    fn place<E>(&mut self, size: u64) -> Result<Placement, PushError<E>> {
        // The head seen last first: a span from it, if it makes one, under-states the room.
        let cached = Span::new(self.view().head, self.tail, self.capacity);
        if let Some(placement) = cached.and_then(|span| layout::place(span, size)) {
            return Ok(placement);
        }
        let (_, span) = self.refresh_head().map_err(PushError::Os)?;
        if let Some(placement) = layout::place(span, size) {
            return Ok(placement);
        }
        // Full, with items a consumer is taking: before doubling the ring, wait a little for
        // it to make room. A consumer that cannot run meanwhile (one CPU, or a busy process
        // on the other) would otherwise let a producer running ahead double the ring to
        // 64 MiB for 64 KiB items (issue 23), and every later lap walk all of it.
        let consumer_active = span.head().items != self.view().full_at;
        self.view().full_at = span.head().items;
        if consumer_active && span.items() > 0 && size <= self.capacity.bytes() / ROOM_FRAMES {
            self.wait_for_room(span, size);
            let (_, span) = self.refresh_head().map_err(PushError::Os)?;
            if let Some(placement) = layout::place(span, size) {
                return Ok(placement);
            }
        }
        self.grow(size)
    }

    /// Sleeps until consumers have freed half the ring (or room for `size` bytes, if more),
    /// at most [`ROOM_WAIT`] (and this operation's deadline); the caller then re-reads the
    /// head. Holding the put lock: no other producer could place anything either.
    ///
    /// Why not yield the CPU once, as before: beside busy processes a `sched_yield` handed
    /// the CPU away for a whole time slice or more: 384 yields took 1.5 s of a 4 s run of
    /// `queue_64k` (bench/README.md, "Under load"). A sleep ends as soon as the consumer has
    /// made the room.
    fn wait_for_room(&mut self, span: Span, size: u64) {
        self.ring.counters.add(Counter::WaitForRoom);
        let capacity = self.capacity.bytes();
        let wanted = size.max(capacity / 2);
        let at = span
            .tail()
            .bytes
            .saturating_add(wanted)
            .saturating_sub(capacity);
        let end = &self.ring.header().head;
        let give_up = Instant::now() + ROOM_WAIT;
        let give_up = self.deadline.map_or(give_up, |d| d.min(give_up));
        end.room_at.store(at, Ordering::Relaxed);
        loop {
            let sequence = end.waiters.register();
            // Pairs with the fence in `Waiters::announce`, which a consumer calls after its
            // head commit when it sees `room_at` passed. Its load of `room_at` is not fenced
            // (a fence on every get would cost more), so it may miss this wait: hence sleeps
            // of at most ROOM_SLICE, after which the head is read again.
            fence(Ordering::SeqCst);
            let head = end.position.read().map_or(u64::MAX, |(_, head)| head.bytes);
            let left = give_up.saturating_duration_since(Instant::now());
            if head >= at || left.is_zero() {
                break;
            }
            end.waiters.sleep(sequence, left.min(ROOM_SLICE));
        }
        end.room_at.store(u64::MAX, Ordering::Relaxed);
    }

    /// Grows the ring so that a frame of `size` bytes fits, and places it.
    fn grow<E>(&mut self, size: u64) -> Result<Placement, PushError<E>> {
        // Consumers must not read while frames move: take their lock too (put lock first,
        // always), within this operation's deadline. Consumers wait for the copy, as long as
        // one pass over the live frames.
        let lock = &self.ring.header().get_lock.0;
        let Some(_consumers) = lock.lock(self.deadline).map_err(PushError::Os)? else {
            return Err(PushError::Busy);
        };
        self.grow_holding_both_locks(size)
    }

    fn grow_holding_both_locks<E>(&mut self, size: u64) -> Result<Placement, PushError<E>> {
        let (_, span) = self.refresh_head().map_err(PushError::Os)?;
        if let Some(placement) = layout::place(span, size) {
            return Ok(placement); // a consumer made room while we waited for its lock
        }
        let new =
            layout::grown_capacity(self.capacity, span.bytes(), size).ok_or(PushError::TooLarge)?;
        self.ring.counters.add(Counter::Grow);
        shm::grow_file(&self.ring.file, HEADER_BYTES + new.bytes()).map_err(PushError::Os)?;
        let data = &mut self.view().data;
        data.grow(new.bytes() as usize).map_err(PushError::Os)?;
        let moves = layout::relocations(span, new);
        for step in &moves {
            // SAFETY: both ranges lie inside the mapping grown above (`relocations` keeps
            // them within the old and new capacities, for a checked span); the destination
            // lies at or above the old capacity, so it overlaps neither the source nor any
            // frame the committed capacity can reach.
            unsafe {
                std::ptr::copy_nonoverlapping(
                    data.as_ptr().add(step.from as usize),
                    data.as_ptr().add(step.to as usize),
                    step.len as usize,
                );
            }
        }
        self.ring
            .header()
            .capacity
            .store(new.bytes(), Ordering::Release);
        self.capacity = new;
        if new.bytes() > RELEASE_ABOVE {
            self.release_moved_from(&moves, new);
        }
        let grown = checked_span(span.head(), span.tail(), new).map_err(PushError::Os)?;
        layout::place(grown, size).ok_or(PushError::TooLarge)
    }
}

impl TailGuard<'_> {
    /// Gives back the pages the frames were copied from when the ring grew to `new`: those
    /// copies are free space of the grown ring (every live position now maps to its
    /// destination), but stayed resident until the tail came round to them, a lap later. Call
    /// holding both locks, after the new capacity's commit.
    fn release_moved_from(&self, moves: &[layout::Move], new: Capacity) {
        for step in moves {
            // Offsets inside the old ring, which are positions of the new one's first lap.
            let end = step.from + step.len;
            for range in layout::whole_blocks(step.from, end, new, RELEASE_BLOCK) {
                self.ring.counters.add(Counter::Release);
                let _ = shm::release(&self.ring.file, HEADER_BYTES + range.offset, range.len);
            }
        }
    }
}

fn write_header(data: &mut Mapping, offset: u64, header: FrameHeader) {
    // SAFETY: callers pass an offset whose 8 bytes are free space inside the mapped ring,
    // 8-aligned like every frame; the put lock excludes every other writer.
    unsafe {
        data.as_ptr()
            .add(offset as usize)
            .cast::<u64>()
            .write(header.to_word().to_le());
    }
}

/// Proof that this thread holds the get lock; unlocks on drop, then wakes the producers that
/// sleep on a full queue, if any.
pub(crate) struct HeadGuard<'a> {
    ring: &'a Ring,
    /// The queue's state, read after the lock was taken and before the tail.
    state: State,
    /// The committed head, the tail when the lock was taken and the ring's size (stable under
    /// the get lock), checked.
    span: Span,
    /// The tail's version when the lock was taken.
    tail_version: u64,
    /// The first frame, once [`front`](Self::front) found it: its position and size.
    front: Option<(u64, u64)>,
    /// Dropped before `wake`: fields drop in declaration order.
    _lock: RobustGuard<'a>,
    wake: Wake<'a>,
}

impl HeadGuard<'_> {
    /// The number, from 1, of the item at the front (see [`TailGuard::next_item`]).
    pub(crate) fn first_item(&self) -> u64 {
        self.span.head().items.wrapping_add(1)
    }

    fn data(&self) -> &Mapping {
        // SAFETY: we hold the get lock, which excludes every writer of the consumer mapping.
        unsafe { &*self.ring.consumer.get() }
    }

    /// The queue's state when this guard saw the tail: with [`State::ShutDown`], an empty
    /// queue stays empty for ever.
    pub(crate) fn state(&self) -> State {
        self.state
    }

    /// The [`watch`](Ring::watch) value of [`Event::NotEmpty`] when this guard saw the tail.
    pub(crate) fn tail_version(&self) -> u64 {
        self.tail_version
    }

    /// `len` bytes of the ring at `position`, if they lie within the frames and do not wrap.
    fn frame_bytes(&self, position: u64, len: u64) -> io::Result<&[u8]> {
        let capacity = self.span.capacity();
        let offset = capacity.offset(position);
        let within_frames = position
            .checked_add(len)
            .is_some_and(|end| end <= self.span.tail().bytes);
        let within_ring = offset
            .checked_add(len)
            .is_some_and(|end| end <= capacity.bytes());
        if !(within_frames && within_ring) {
            return Err(corrupt("a frame header points outside the frames"));
        }
        // SAFETY: the range is inside the ring, which the mapping covers (`lock_head` mapped
        // the capacity), and inside the committed frames, which no producer writes; the get
        // lock excludes other consumers.
        Ok(unsafe {
            std::slice::from_raw_parts(self.data().as_ptr().add(offset as usize), len as usize)
        })
    }

    fn header_at(&self, position: u64) -> io::Result<FrameHeader> {
        let bytes = self.frame_bytes(position, FRAME_HEADER)?;
        let word = u64::from_le_bytes(bytes.try_into().map_err(|_| corrupt("short header"))?);
        Ok(FrameHeader::from_word(word))
    }

    /// The payload of the first frame, `None` when the queue is empty.
    ///
    /// # Errors
    /// Corruption if a header points outside the frames, which only memory corruption
    /// from outside this crate can cause.
    pub(crate) fn front(&mut self) -> io::Result<Option<&[u8]>> {
        if self.span.items() == 0 {
            return Ok(None);
        }
        let mut at = self.span.head().bytes;
        if let FrameHeader::Skip(skip) = self.header_at(at)? {
            // It reached the end of the ring it was written in; the ring may have grown
            // since, so only check that it stays inside the ring and the frames.
            if skip % FRAME_HEADER != 0 || skip == 0 {
                return Err(corrupt("a skip of a length no producer writes"));
            }
            self.frame_bytes(at, skip)?;
            // `frame_bytes` checked that `at + skip` is at most the tail; checked anyway.
            at = at
                .checked_add(skip)
                .ok_or_else(|| corrupt("a skip past the end"))?;
        }
        let FrameHeader::Payload(len) = self.header_at(at)? else {
            return Err(corrupt("a skip after a skip"));
        };
        let size = frame_size(len).ok_or_else(|| corrupt("a frame larger than any ring"))?;
        self.frame_bytes(at, size)?;
        self.front = Some((at, size));
        // Within the frame checked above, so no overflow.
        self.frame_bytes(at + FRAME_HEADER, len).map(Some)
    }

    /// Removes the first frame (commits); call after [`front`](Self::front) returned one.
    ///
    /// # Errors
    /// Corruption when there is no such frame.
    pub(crate) fn pop_front(&mut self) -> io::Result<()> {
        let (at, size) = self
            .front
            .take()
            .ok_or_else(|| corrupt("no frame to remove"))?;
        // `front` checked `at + size <= tail`, and a non-empty span has items left.
        let head = Position {
            bytes: at + size,
            items: self.span.head().items + 1,
        };
        self.span = checked_span(head, self.span.tail(), self.span.capacity())?;
        let end = &self.ring.header().head;
        end.position.commit(head);
        self.ring.counters.add(Counter::Get);
        // Producers wait for room in a bounded queue, and in an unbounded one before it grows.
        if self.ring.maxsize() > 0 || head.bytes >= end.room_at.load(Ordering::Relaxed) {
            self.wake.pending |= end.waiters.announce();
        }
        if self.span.capacity().bytes() > RELEASE_ABOVE {
            self.release_behind();
        }
        Ok(())
    }

    /// Gives back to the system the pages of the free ring the head passed since the last
    /// release, once that is [`RELEASE_EVERY`] bytes and the ring is at most a quarter full
    /// (a fuller ring would soon fault the pages back in). Best effort: only if no producer
    /// holds the put lock (taking it here would invert the lock order), and on failure the
    /// pages simply stay in use.
    fn release_behind(&self) {
        let header = self.ring.header();
        let (span, from) = (self.span, header.released_to.load(Ordering::Relaxed));
        if !release_due(span, from) {
            return;
        }
        let Ok(Some(_producers)) = header.put_lock.0.try_lock() else {
            self.ring.counters.add(Counter::ReleaseSkipped);
            return;
        };
        let Ok((_, tail)) = header.tail.position.read() else {
            return;
        };
        if let Some(now) = Span::new(span.head(), tail, span.capacity()) {
            self.ring.release_free(now, true);
        }
    }
}

/// Whether the head of `span` passed [`RELEASE_EVERY`] bytes since the last release (at
/// `released_to`) in a ring at most a quarter full (a fuller ring would soon fault the pages
/// back in). A mark past the head is corrupt: then yes, which releases nothing and resets it.
fn release_due(span: Span, released_to: u64) -> bool {
    let passed = span
        .head()
        .bytes
        .checked_sub(released_to)
        .unwrap_or(u64::MAX);
    passed >= RELEASE_EVERY && span.bytes() <= span.capacity().bytes() / 4
}

impl Ring {
    /// Gives back the pages of the free ring from the last release up to the head of `now`,
    /// a span whose tail was read under the put lock, which the caller holds, and whose head
    /// was committed: no consumer reads behind a committed head, and no producer writes
    /// without the put lock, so every position from a whole ring behind the tail up to the
    /// head is free. With `keep_ahead`, the pages the producer writes next stay: the free ring
    /// from the tail on, [`KEEP_FRAMES_AHEAD`] of the largest frames lately (a wrapped ring's
    /// pages behind the head are the last ones the tail reaches).
    fn release_free(&self, now: Span, keep_ahead: bool) {
        let header = self.header();
        let head = now.head().bytes;
        let capacity = now.capacity().bytes();
        let [peak, previous_peak] = &header.frame_peaks;
        let keep = if keep_ahead {
            let largest = peak
                .load(Ordering::Relaxed)
                .max(previous_peak.load(Ordering::Relaxed));
            largest.saturating_mul(KEEP_FRAMES_AHEAD)
        } else {
            0
        };
        previous_peak.store(peak.load(Ordering::Relaxed), Ordering::Relaxed);
        peak.store(0, Ordering::Relaxed);
        let from = header.released_to.load(Ordering::Relaxed);
        let from = from.max(
            now.tail()
                .bytes
                .saturating_add(keep)
                .saturating_sub(capacity),
        );
        for range in layout::whole_blocks(from, head, now.capacity(), RELEASE_BLOCK) {
            self.counters.add(Counter::Release);
            let _ = shm::release(&self.file, HEADER_BYTES + range.offset, range.len);
        }
        // The block holding the head was kept: the next release starts with it.
        header
            .released_to
            .store(head - head % RELEASE_BLOCK, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    //! Corruption as another process could cause it: these tests write the header and the
    //! frames of a live queue directly, then check that every call gives an error or its
    //! documented value, and never panics, faults or hangs.

    use super::*;
    use crate::{GetError, JoinableQueue, PutError, Queue, TaskDoneError};
    use serde_bytes::ByteBuf;
    use std::sync::atomic::AtomicBool;
    use std::sync::mpsc;
    use std::thread;

    /// Bounds every wait of these tests; reached only by a bug.
    const LIMIT: Duration = Duration::from_secs(30);

    fn header<T>(queue: &Queue<T>) -> &Header {
        queue.ring.header()
    }

    /// Writes `position` into both copies of an end, as a corrupting process could.
    fn overwrite(end: &Committed, position: Position) {
        for [bytes, items] in &end.copies {
            bytes.store(position.bytes, Ordering::Relaxed);
            items.store(position.items, Ordering::Relaxed);
        }
    }

    /// Asserts that every get and a bounded put report corruption, and `qsize` says 0.
    fn assert_corrupt(queue: &Queue<u32>, what: &str) {
        assert!(queue.get().unwrap_err().is_corrupt(), "get: {what}");
        assert!(
            queue.get_nowait().unwrap_err().is_corrupt(),
            "get_nowait: {what}"
        );
        let timed = queue.get_timeout(Duration::from_millis(10));
        assert!(timed.unwrap_err().is_corrupt(), "get_timeout: {what}");
        assert_eq!(queue.qsize(), 0, "qsize: {what}");
        assert!(queue.empty() && !queue.full(), "{what}");
        let error = queue.put_nowait(7).unwrap_err();
        assert!(error.is_corrupt(), "put_nowait: {what}: {error}");
        assert_eq!(error.into_inner(), 7);
    }

    #[test]
    fn a_spin_budget_halves_on_spins_in_vain_and_probes_every_eighth_wait() {
        let budget = SpinBudget::new();
        assert_eq!(budget.next(), SPIN, "a first wait spins the whole spin");
        for _ in 0..10 {
            budget.lost();
        }
        let spins: Vec<Duration> = (0..2 * PROBE_EVERY).map(|_| budget.next()).collect();
        for (wait, spin) in (1..).zip(&spins) {
            let expected = if wait % PROBE_EVERY == 0 {
                SPIN
            } else {
                SPIN_FLOOR
            };
            assert_eq!(*spin, expected, "wait {wait}");
        }
        budget.lost();
        assert_eq!(
            budget.nanos.load(Ordering::Relaxed),
            SPIN_FLOOR.as_nanos() as u32
        );
        budget.won();
        assert_eq!(
            budget.next(),
            SPIN,
            "a spin that saw the change restores it"
        );
        budget.lost();
        assert_eq!(budget.next(), SPIN / 2);
    }

    #[test]
    fn a_capacity_no_queue_can_have_is_corruption() {
        for bytes in [0, 3, INITIAL_CAPACITY / 2, 3 << 20, u64::MAX] {
            let queue = Queue::<u32>::with_maxsize(4).unwrap();
            queue.put(1).unwrap();
            header(&queue).capacity.store(bytes, Ordering::Relaxed);
            assert_corrupt(&queue, &format!("capacity {bytes}"));
            assert!(queue.put(2).unwrap_err().is_corrupt());
        }
    }

    #[test]
    fn a_capacity_beyond_the_file_is_corruption_not_sigbus() {
        let queue = Queue::<u32>::with_maxsize(4).unwrap();
        queue.put(1).unwrap();
        header(&queue).capacity.store(1 << 30, Ordering::Relaxed);
        assert!(queue.get().unwrap_err().is_corrupt());
        assert!(queue.put(2).unwrap_err().is_corrupt());
        // A power of two the ring could have: qsize counts within it.
        assert_eq!(queue.qsize(), 1);
    }

    #[test]
    fn a_head_past_the_tail_is_corruption() {
        let queue = Queue::<u32>::with_maxsize(1).unwrap();
        queue.put(1).unwrap();
        let past = Position {
            bytes: 1 << 20,
            items: 5,
        };
        overwrite(&header(&queue).head.position, past);
        assert_corrupt(&queue, "head past tail");
        // An unbounded queue's put need not read the head (it remembers an older one): it
        // may succeed or report the corruption, but never panics.
        let unbounded = queue.retyped::<u32>();
        header(&queue).maxsize.store(0, Ordering::Relaxed);
        let put = unbounded.put(2);
        assert!(
            put.as_ref().map_or_else(PutError::is_corrupt, |()| true),
            "{put:?}"
        );
    }

    #[test]
    fn more_items_than_bytes_or_ends_further_apart_than_the_ring_are_corruption() {
        for tail in [
            Position {
                bytes: 16,
                items: 100,
            },
            Position {
                bytes: 1 << 40,
                items: 1,
            },
            Position {
                bytes: u64::MAX,
                items: 1,
            },
        ] {
            let queue = Queue::<u32>::with_maxsize(1).unwrap();
            queue.put(1).unwrap();
            overwrite(&header(&queue).tail.position, tail);
            assert_corrupt(&queue, &format!("tail {tail:?}"));
        }
    }

    #[test]
    fn a_frame_header_that_points_outside_the_frames_is_corruption() {
        for word in [u64::MAX >> 1, 1 << 20, FrameHeader::Skip(4096).to_word(), 0] {
            let queue = Queue::<u32>::new().unwrap();
            queue.put(1).unwrap();
            let frames = Mapping::new(&queue.ring.file, HEADER_BYTES, 4096).unwrap();
            // SAFETY: the mapping covers the first frame's 8-byte, 8-aligned header; writing it
            // is what a corrupting process would do (the queue's own mapping is untouched).
            unsafe { frames.as_ptr().cast::<u64>().write(word.to_le()) };
            let got = queue.get_nowait();
            // 0 is a valid empty payload: not a u32, so a decode error, and the queue goes on.
            match word {
                0 => assert!(matches!(got, Err(GetError::Decode { .. })), "{got:?}"),
                _ => assert!(got.unwrap_err().is_corrupt(), "header word {word:#x}"),
            }
        }
    }

    #[test]
    fn a_position_that_never_settles_is_corruption_not_a_hang() {
        let mut calls = 0;
        let error = retry(|| {
            calls += 1;
            None::<()>
        })
        .unwrap_err();
        assert!(is_corruption(&error), "{error}");
        assert_eq!(calls, READ_ATTEMPTS);
        // A thread keeps moving the head's version, as a rogue process could: every call
        // returns, with its answer or a corruption error.
        let queue = Queue::<u32>::new().unwrap();
        queue.put(1).unwrap();
        let stop = AtomicBool::new(false);
        thread::scope(|scope| {
            let version = &header(&queue).head.position.version;
            let stop = &stop;
            scope.spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    version.fetch_add(2, Ordering::Relaxed); // same copy, new version
                }
            });
            assert!(queue.qsize() <= 1);
            let got = queue.get_nowait();
            assert!(matches!(got, Ok(1)) || got.unwrap_err().is_corrupt());
            stop.store(true, Ordering::Relaxed);
        });
    }

    #[test]
    fn joinable_counts_another_process_rewrote_give_errors_or_plain_answers() {
        let queue = JoinableQueue::<u32>::new().unwrap();
        queue.put(1).unwrap();
        let header = queue.ring.header();
        header.tasks.done.store(u64::MAX, Ordering::Relaxed);
        assert!(matches!(
            queue.task_done(),
            Err(TaskDoneError::TooManyCalls)
        ));
        assert!(queue.join_timeout(Duration::from_millis(10)));
        header.tasks.done.store(0, Ordering::Relaxed);
        let tail = Position {
            bytes: 16,
            items: u64::MAX,
        };
        overwrite(&header.tail.position, tail);
        assert!(queue.task_done().is_ok());
        assert!(!queue.join_timeout(Duration::from_millis(10)));
        assert!(queue.get_nowait().unwrap_err().is_corrupt());
    }

    #[test]
    fn the_memfd_cannot_shrink_and_the_queue_keeps_working() {
        let queue = Queue::<u32>::new().unwrap();
        queue.put(1).unwrap();
        let file = std::fs::File::from(queue.ring.file().try_clone_to_owned().unwrap());
        let error = file.set_len(HEADER_BYTES).unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::PermissionDenied, "{error}"); // EPERM: sealed
        assert_eq!(
            file.metadata().unwrap().len(),
            HEADER_BYTES + INITIAL_CAPACITY
        );
        queue.put(2).unwrap();
        assert_eq!((queue.get().unwrap(), queue.get().unwrap()), (1, 2));
    }

    /// Runs `body` while another thread holds `lock` and does nothing, as a stopped process
    /// would. The holder lets go after `body` returns, or after [`LIMIT`]: a call that waited
    /// for it would then see a free lock and fail the test's assertions, not hang it.
    fn while_held<R>(lock: &RobustMutex, body: impl FnOnce() -> R) -> R {
        thread::scope(|scope| {
            let (locked, release) = (mpsc::channel(), mpsc::channel::<()>());
            scope.spawn(move || {
                let _guard = lock.lock(None).unwrap();
                locked.0.send(()).unwrap();
                let _ = release.1.recv_timeout(LIMIT);
            });
            locked
                .1
                .recv_timeout(LIMIT)
                .expect("the holder took the lock");
            let result = body();
            release.0.send(()).unwrap();
            result
        })
    }

    #[test]
    fn nowait_and_timed_calls_give_up_on_a_stopped_holder_of_the_lock() {
        let short = Duration::from_millis(20);
        for maxsize in [0, 5] {
            let queue = Queue::<u32>::with_maxsize(maxsize).unwrap();
            queue.put(1).unwrap();
            let (nowait, timed) = while_held(&header(&queue).get_lock.0, || {
                (queue.get_nowait(), queue.get_timeout(short))
            });
            assert!(nowait.unwrap_err().is_empty() && timed.unwrap_err().is_empty());
            let (nowait, timed) = while_held(&header(&queue).put_lock.0, || {
                (queue.put_nowait(2), queue.put_timeout(3, short))
            });
            assert_eq!(nowait.unwrap_err().into_inner(), 2, "maxsize {maxsize}");
            assert!(timed.unwrap_err().is_full(), "maxsize {maxsize}");
            assert_eq!(
                queue.get_nowait().unwrap(),
                1,
                "the queue works once released"
            );
        }
    }

    #[test]
    fn a_producer_that_must_grow_gives_up_on_a_stopped_consumer() {
        let queue = Queue::<ByteBuf>::new().unwrap();
        let large = || ByteBuf::from(vec![7; 2 * INITIAL_CAPACITY as usize]);
        let (nowait, timed) = while_held(&header(&queue).get_lock.0, || {
            let timed = queue.put_timeout(large(), Duration::from_millis(20));
            (queue.put_nowait(large()), timed)
        });
        assert!(nowait.unwrap_err().is_full() && timed.unwrap_err().is_full());
        queue.put(large()).unwrap();
        assert_eq!(queue.get().unwrap(), large());
    }

    /// The bytes of the queue's memfd that the system holds: its allocated pages, shared by
    /// every mapping (`st_blocks`), whoever touched them.
    fn resident<T>(queue: &Queue<T>) -> u64 {
        use std::os::unix::fs::MetadataExt;
        let file = std::fs::File::from(queue.ring.file().try_clone_to_owned().unwrap());
        file.metadata().unwrap().blocks() * 512
    }

    /// A burst of 300 items of 1 MiB grows an unbounded queue to 512 MiB. Drained to a few
    /// items, steady traffic (put one, get one) then walks the whole ring, more than once: the
    /// pages it leaves behind must go back, or the whole ring ends up resident again.
    #[test]
    fn after_a_burst_steady_traffic_keeps_little_of_the_ring_resident() {
        let queue = Queue::<ByteBuf>::new().unwrap();
        for _ in 0..300 {
            queue.put(ByteBuf::from(vec![1; 1 << 20])).unwrap();
        }
        while queue.qsize() > 4 {
            queue.get().unwrap();
        }
        let header = header(&queue);
        let capacity = header.capacity.load(Ordering::Relaxed);
        assert!(
            capacity > 256 << 20,
            "the burst grew the ring to {capacity}"
        );
        let ends = || {
            let (_, head) = header.head.position.read().unwrap();
            let (_, tail) = header.tail.position.read().unwrap();
            (head.bytes, tail.bytes)
        };
        let lap = ends().0 + capacity + capacity / 8;
        let item = ByteBuf::from(vec![2; 64 << 10]);
        while ends().0 < lap {
            queue.put(item.clone()).unwrap();
            queue.get().unwrap();
        }
        let (head, tail) = ends();
        let live = tail - head;
        // What the consumer has passed since its last release (under RELEASE_EVERY), the
        // partial blocks at either end of each release, and the header.
        let allowed = 4 * live + RELEASE_EVERY + 2 * RELEASE_BLOCK + HEADER_BYTES;
        let resident = resident(&queue);
        assert!(
            resident <= allowed && resident < capacity / 16,
            "{resident} bytes resident for {live} live bytes in a ring of {capacity}"
        );
    }

    /// Steady traffic in which the consumer never gets the put lock, as when a producer in
    /// another process copies items under it most of the time: the consumer's best-effort
    /// release always fails its `try_lock`, and before issue 23 nothing else gave the pages
    /// back, so the whole ring became resident again. Now the producer releases under the
    /// lock it holds anyway. Checked after every `get`.
    #[test]
    fn a_consumer_that_never_gets_the_put_lock_does_not_keep_the_ring_resident() {
        let queue = Queue::<ByteBuf>::new().unwrap();
        for _ in 0..40 {
            queue.put(ByteBuf::from(vec![1; 1 << 20])).unwrap();
        }
        while queue.qsize() > 0 {
            queue.get().unwrap();
        }
        let header = header(&queue);
        let capacity = header.capacity.load(Ordering::Relaxed);
        assert!(
            capacity > RELEASE_ABOVE,
            "the burst grew the ring to {capacity}"
        );
        let item = ByteBuf::from(vec![2; 64 << 10]);
        let (_, start) = header.head.position.read().unwrap();
        loop {
            queue.put(item.clone()).unwrap();
            queue.put(item.clone()).unwrap();
            while_held(&header.put_lock.0, || queue.get().unwrap());
            while_held(&header.put_lock.0, || queue.get().unwrap());
            let (_, head) = header.head.position.read().unwrap();
            let resident = resident(&queue);
            // What the head passed since the last release, the pages kept ahead of the tail
            // for the next frames, the partial blocks at either end, and the header.
            let allowed = RELEASE_EVERY + 4 * (64 << 10) + 2 * RELEASE_BLOCK + HEADER_BYTES;
            assert!(
                resident <= allowed,
                "{resident} bytes resident, nothing live, in a ring of {capacity}"
            );
            if head.bytes > start.bytes + capacity + capacity / 8 {
                break;
            }
        }
    }

    #[test]
    fn a_state_word_no_queue_writes_reads_as_shut_down_and_discards_nothing() {
        for word in [3, 7, u64::MAX] {
            let queue = Queue::<u32>::new().unwrap();
            queue.put(1).unwrap();
            header(&queue).state.store(word, Ordering::Relaxed);
            assert!(queue.is_shutdown(), "word {word}");
            let error = queue.put(2).unwrap_err();
            assert!(error.is_shut_down(), "word {word}: {error}");
            assert_eq!(error.into_inner(), 2);
            assert_eq!(queue.get().unwrap(), 1, "word {word}");
            assert!(queue.get().unwrap_err().is_shut_down(), "word {word}");
            // A plain shutdown leaves it; an immediate one overwrites it.
            queue.shutdown(false).unwrap();
            assert_eq!(header(&queue).state.load(Ordering::Relaxed), word);
            queue.shutdown(true).unwrap();
            assert_eq!(header(&queue).state.load(Ordering::Relaxed), IMMEDIATE);
        }
    }

    /// An immediate shutdown writes the state, then the mark, then commits the head. A process
    /// killed after any of these leaves this queue: 3 put, 1 taken and not done. Whatever
    /// it left, gets and puts fail, only the taken task is unfinished, and another immediate
    /// shutdown discards what is left.
    #[test]
    fn an_immediate_shutdown_killed_at_any_point_leaves_a_consistent_queue() {
        type Kill = fn(&Header);
        let kills: [(&str, Kill); 4] = [
            ("after the state", |h| {
                h.state.store(IMMEDIATE, Ordering::Relaxed)
            }),
            ("after the mark", |h| {
                h.state.store(IMMEDIATE, Ordering::Relaxed);
                h.drained_from.store(2, Ordering::Relaxed);
            }),
            ("with a corrupt mark", |h| {
                h.state.store(IMMEDIATE, Ordering::Relaxed);
                h.drained_from.store(u64::MAX, Ordering::Relaxed);
            }),
            ("after the plain shutdown", |h| {
                h.state.store(SHUT_DOWN, Ordering::Relaxed);
            }),
        ];
        for (when, kill) in kills {
            let queue = JoinableQueue::<u32>::new().unwrap();
            for n in 0..3 {
                queue.put(n).unwrap();
            }
            assert_eq!(queue.get().unwrap(), 0);
            kill(queue.ring.header());
            let plain = when == "after the plain shutdown";
            assert_eq!(queue.qsize(), 2, "{when}");
            assert!(queue.put(9).unwrap_err().is_shut_down(), "{when}");
            if !plain {
                assert!(queue.get_nowait().unwrap_err().is_shut_down(), "{when}");
            }
            let unfinished = if plain { 3 } else { 1 };
            assert_eq!(queue.ring.unfinished().unwrap(), unfinished, "{when}");
            queue.shutdown(true).unwrap();
            assert_eq!(queue.qsize(), 0, "{when}");
            assert!(queue.get_nowait().unwrap_err().is_shut_down(), "{when}");
            assert_eq!(queue.ring.unfinished().unwrap(), 1, "{when}");
            assert!(!queue.join_timeout(Duration::ZERO), "{when}");
            queue.task_done().unwrap();
            assert!(queue.join_timeout(Duration::ZERO), "{when}");
            assert!(matches!(
                queue.task_done(),
                Err(TaskDoneError::TooManyCalls)
            ));
        }
    }

    #[test]
    fn an_immediate_shutdown_gives_a_large_rings_pages_back() {
        let queue = Queue::<ByteBuf>::new().unwrap();
        for _ in 0..40 {
            queue.put(ByteBuf::from(vec![1; 1 << 20])).unwrap();
        }
        let capacity = header(&queue).capacity.load(Ordering::Relaxed);
        assert!(capacity > RELEASE_ABOVE, "the ring grew to {capacity}");
        assert!(resident(&queue) > 32 << 20);
        queue.shutdown(true).unwrap();
        let resident = resident(&queue);
        assert!(
            resident <= 2 * RELEASE_BLOCK + HEADER_BYTES,
            "{resident} bytes resident after the drain of a ring of {capacity}"
        );
    }

    #[test]
    fn an_immediate_shutdown_of_a_corrupt_queue_reports_it_and_still_shuts_down() {
        let queue = JoinableQueue::<u32>::new().unwrap();
        queue.put(1).unwrap();
        header(&queue).capacity.store(3, Ordering::Relaxed);
        let error = queue.shutdown(true).unwrap_err();
        assert!(is_corruption(&error), "{error}");
        assert!(queue.is_shutdown());
        // Both locks check the capacity before the state is looked at.
        assert!(queue.get().unwrap_err().is_corrupt());
        assert!(queue.put(2).unwrap_err().is_corrupt());
        assert!(
            queue.join_timeout(Duration::ZERO),
            "the item left is not a task"
        );
    }

    #[test]
    fn open_refuses_what_create_did_not_make() {
        let refused = |file: OwnedFd, what: &str| {
            let error = Ring::open(file)
                .err()
                .unwrap_or_else(|| panic!("{what} opened"));
            assert_eq!(error.kind(), io::ErrorKind::InvalidData, "{what}");
            assert_eq!(error.to_string(), "not a queue made by shared", "{what}");
        };
        let program = std::fs::File::open("/proc/self/exe").unwrap();
        refused(program.into(), "a regular file");
        let len = HEADER_BYTES + INITIAL_CAPACITY;
        let unsealed = shm::create(c"test", len).unwrap();
        let header = Mapping::new(&unsealed, 0, HEADER_BYTES as usize).unwrap();
        // SAFETY: the mapping covers the header's first word, 8-aligned.
        unsafe { header.as_ptr().cast::<u64>().write(MAGIC) };
        refused(unsealed, "an unsealed memfd with the magic");
        let sealed = shm::create(c"test", len).unwrap();
        shm::seal(&sealed, &SEALS).unwrap();
        refused(sealed, "a sealed memfd without the magic");
        let ring = Ring::create(0).unwrap();
        assert!(Ring::open(ring.file().try_clone_to_owned().unwrap()).is_ok());
    }
}
