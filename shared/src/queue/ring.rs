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

use std::cell::UnsafeCell;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering, fence};
use std::time::{Duration, Instant};

use super::layout::{self, FRAME_HEADER, FrameHeader, Placement, frame_size};
use crate::sys::shm::{self, Mapping};
use crate::sys::sync::{self, RobustGuard, RobustMutex};

const MAGIC: u64 = u64::from_le_bytes(*b"shq-v004");
/// The header's share of the file; the ring starts after it. 64 KiB, so that the ring's
/// offset is a whole number of pages whatever the page size (4, 16 or 64 KiB); only the first
/// page is ever touched.
const HEADER_BYTES: u64 = 64 * 1024;
/// A new ring's size (a power of two, as every capacity is); it doubles as needed.
const INITIAL_CAPACITY: u64 = 64 * 1024;
/// When an emptied ring is larger than this, its pages past [`KEPT_WHEN_EMPTY`] go back to the
/// system, so one burst of huge items does not pin that memory for the queue's lifetime.
const RELEASE_ABOVE: u64 = 256 << 20;
const KEPT_WHEN_EMPTY: u64 = 32 << 20;

/// How often [`Ring::len`] re-reads the two ends before it settles for a possible count.
const LEN_RETRIES: u32 = 64;

/// How long a waiter spins, watching for a change, before it sleeps. Short: a producer on the
/// other core usually puts within a microsecond or two, and a wake-up syscall costs more.
const SPIN: Duration = Duration::from_micros(20);

/// The longest a waiter sleeps before it re-checks its condition. A waker wakes sleepers after
/// its commit; if it is killed between the two, nobody else may ever come to wake them, so a
/// sleeper never trusts a wake-up to arrive: this bounds what such a death can cost.
const LONGEST_SLEEP: Duration = Duration::from_millis(100);

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

/// One end of the queue: a position in bytes and a count of items, both only growing.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Position {
    /// Bytes of frames (and skips) the end has passed.
    pub(crate) bytes: u64,
    /// Items the end has passed: put at the tail, taken at the head.
    pub(crate) items: u64,
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
    fn read(&self) -> (u64, Position) {
        loop {
            let version = self.version.load(Ordering::Acquire);
            let [bytes, items] = &self.copies[(version & 1) as usize];
            let position = Position {
                bytes: bytes.load(Ordering::Relaxed),
                items: items.load(Ordering::Relaxed),
            };
            // Pairs with the release fence in `commit`: if a later commit's write was read
            // above, the version load below sees that commit's predecessor at least.
            fence(Ordering::Acquire);
            if self.version.load(Ordering::Relaxed) == version {
                return (version, position);
            }
        }
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

/// Who sleeps on an event. The sleeper count spares a fence-protected syscall on every
/// operation when nobody sleeps; a sleeper killed in its sleep leaves it too high, which costs
/// wake-ups, never correctness.
#[repr(C)]
struct Waiters {
    /// The futex word: bumped by a waker that saw sleepers.
    sequence: AtomicU32,
    sleeping: AtomicU32,
}

impl Waiters {
    /// Called after a commit that may end the wait: whether sleepers must be woken (after the
    /// caller's unlock, with [`wake`](Self::wake)).
    fn announce(&self) -> bool {
        // Pairs with the fence in `Ring::wait`: either this load sees the sleeper, or the
        // sleeper's re-check sees the commit made before this fence.
        fence(Ordering::SeqCst);
        if self.sleeping.load(Ordering::Relaxed) == 0 {
            return false;
        }
        self.sequence.fetch_add(1, Ordering::Release);
        true
    }

    fn wake(&self) {
        sync::futex_wake_all(&self.sequence);
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
}

impl Drop for Wake<'_> {
    fn drop(&mut self) {
        if self.pending {
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
}

/// The JoinableQueue count of items marked done, and who waits for it to reach the tail.
#[repr(C, align(64))]
struct Tasks {
    done: AtomicU64,
    waiters: Waiters,
}

#[repr(C)]
struct Header {
    magic: u64,
    maxsize: u64,
    /// Bytes in the ring; changed only under both locks, so either lock makes it stable.
    capacity: AtomicU64,
    put_lock: Lock,
    get_lock: Lock,
    /// The producers' end; its waiters wait for items (`NotEmpty`).
    tail: End,
    /// The consumers' end; its waiters wait for room (`NotFull`).
    head: End,
    tasks: Tasks,
    /// The tail's byte position when the ring's pages were last released (under both locks).
    released_at: AtomicU64,
}

const _: () = assert!(size_of::<Header>() <= 4096);

/// What this process's producers keep, under the put lock.
struct ProducerView {
    /// Their mapping of the frames.
    data: Mapping,
    /// A head committed earlier: a lower bound of the real one, which only grows, so room and
    /// item counts computed from it are safe, and it is re-read only when they look short.
    head: Position,
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
        let header = Mapping::new(&file, 0, HEADER_BYTES as usize)?;
        let ptr = header.as_ptr().cast::<Header>();
        // SAFETY: the mapping is fresh, zeroed (all positions 0, all counts 0), page-aligned
        // and large enough for a Header; no other process has the memfd yet.
        unsafe {
            (*ptr).magic = MAGIC;
            (*ptr).maxsize = maxsize;
            (*ptr).capacity = AtomicU64::new(INITIAL_CAPACITY);
            (*ptr).put_lock.0.init()?;
            (*ptr).get_lock.0.init()?;
        }
        Ring::with_header(file, header)
    }

    /// Opens a ring created by another process, from a descriptor of its memfd.
    pub(crate) fn open(file: OwnedFd) -> io::Result<Ring> {
        let not_a_queue = || io::Error::new(io::ErrorKind::InvalidData, "not a queue's memory");
        if shm::file_len(&file)? < HEADER_BYTES + INITIAL_CAPACITY {
            return Err(not_a_queue());
        }
        let header = Mapping::new(&file, 0, HEADER_BYTES as usize)?;
        // SAFETY: the mapping holds at least a Header's bytes.
        if unsafe { (*header.as_ptr().cast::<Header>()).magic } != MAGIC {
            return Err(not_a_queue());
        }
        Ring::with_header(file, header)
    }

    fn with_header(file: OwnedFd, header: Mapping) -> io::Result<Ring> {
        let map_frames = || Mapping::new(&file, HEADER_BYTES, INITIAL_CAPACITY as usize);
        let producer = ProducerView {
            data: map_frames()?,
            head: Position::default(),
        };
        let consumer = map_frames()?;
        Ok(Ring {
            producer: UnsafeCell::new(producer),
            consumer: UnsafeCell::new(consumer),
            file,
            header,
        })
    }

    /// The memfd, for handing the ring to a spawned child.
    pub(crate) fn file(&self) -> BorrowedFd<'_> {
        self.file.as_fd()
    }

    fn header(&self) -> &Header {
        // SAFETY: the header mapping lives as long as `self` and never moves.
        unsafe { &*self.header.as_ptr().cast::<Header>() }
    }

    /// The bound given at creation; 0 means unbounded.
    pub(crate) fn maxsize(&self) -> u64 {
        self.header().maxsize
    }

    /// Items in the queue: a count it really held at some moment during the call.
    pub(crate) fn len(&self) -> u64 {
        let head = &self.header().head.position;
        for _ in 0..LEN_RETRIES {
            // Head first: the tail read after it is at least as far, so this never underflows.
            let (version, taken) = head.read();
            let (_, put) = self.header().tail.position.read();
            // If the head did not move while the tail was read, both held at that read.
            fence(Ordering::Acquire);
            if head.version.load(Ordering::Relaxed) == version {
                return put.items - taken.items;
            }
        }
        // Consumers kept moving the head: give a count that may be stale but is possible.
        let (_, taken) = head.read();
        let (_, put) = self.header().tail.position.read();
        let count = put.items.saturating_sub(taken.items);
        match self.maxsize() {
            0 => count,
            maxsize => count.min(maxsize),
        }
    }

    /// Items put and not yet marked done (JoinableQueue).
    pub(crate) fn unfinished(&self) -> u64 {
        let done = self.header().tasks.done.load(Ordering::Acquire);
        let (_, tail) = self.header().tail.position.read();
        tail.items.saturating_sub(done)
    }

    /// Marks one item done. Returns `false`, changing nothing, when no item is unfinished.
    /// One atomic update, so it needs no lock and a kill cannot tear it.
    pub(crate) fn task_done(&self) -> bool {
        let tasks = &self.header().tasks;
        let mut done = tasks.done.load(Ordering::Relaxed);
        loop {
            let (_, tail) = self.header().tail.position.read();
            if done >= tail.items {
                return false;
            }
            match tasks.done.compare_exchange_weak(
                done,
                done + 1,
                Ordering::AcqRel,
                Ordering::Relaxed,
            ) {
                Ok(_) => break,
                Err(now) => done = now,
            }
        }
        if self.unfinished() == 0 && tasks.waiters.announce() {
            tasks.waiters.wake();
        }
        true
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
        if self.spin(event, seen, deadline) {
            return;
        }
        let waiters = self.waiters(event);
        waiters.sleeping.fetch_add(1, Ordering::Relaxed);
        // Pairs with the fence in `Waiters::announce`: a commit this check misses sees the
        // sleeper and wakes it.
        fence(Ordering::SeqCst);
        let sequence = waiters.sequence.load(Ordering::Acquire);
        if still_waiting() {
            let left = deadline.map_or(LONGEST_SLEEP, |d| {
                d.saturating_duration_since(Instant::now())
            });
            if !left.is_zero() {
                sync::futex_wait(&waiters.sequence, sequence, Some(left.min(LONGEST_SLEEP)));
            }
        }
        waiters.sleeping.fetch_sub(1, Ordering::Relaxed);
    }

    /// Spins briefly while the word `event` watches still reads `seen`; returns whether it
    /// moved, so the caller can skip the sleep.
    fn spin(&self, event: Event, seen: u64, deadline: Option<Instant>) -> bool {
        let watched = self.watched(event);
        let start = Instant::now();
        let limit = deadline.map_or(start + SPIN, |d| d.min(start + SPIN));
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

    fn capacity(&self) -> u64 {
        self.header().capacity.load(Ordering::Acquire)
    }

    /// Locks the producers' end, waiting at most until `deadline`; `None` on timeout.
    pub(crate) fn lock_tail(&self, deadline: Option<Instant>) -> io::Result<Option<TailGuard<'_>>> {
        let Some(lock) = self.header().put_lock.0.lock(deadline)? else {
            return Ok(None);
        };
        let mut guard = TailGuard {
            ring: self,
            tail: self.header().tail.position.read().1,
            _lock: lock,
            wake: Wake {
                waiters: &self.header().tail.waiters,
                pending: false,
            },
        };
        let capacity = self.capacity();
        self.map_frames(&mut guard.view().data, capacity)?;
        Ok(Some(guard))
    }

    /// Locks the consumers' end, waiting at most until `deadline`; `None` on timeout.
    pub(crate) fn lock_head(&self, deadline: Option<Instant>) -> io::Result<Option<HeadGuard<'_>>> {
        let Some(lock) = self.header().get_lock.0.lock(deadline)? else {
            return Ok(None);
        };
        let (tail_version, tail) = self.header().tail.position.read();
        let mut guard = HeadGuard {
            ring: self,
            head: self.header().head.position.read().1,
            tail,
            tail_version,
            front: None,
            capacity: self.capacity(),
            _lock: lock,
            wake: Wake {
                waiters: &self.header().head.waiters,
                pending: false,
            },
        };
        let capacity = guard.capacity;
        self.map_frames(guard.data_mut(), capacity)?;
        Ok(Some(guard))
    }

    /// Another process may have grown the ring since `data` was mapped.
    fn map_frames(&self, data: &mut Mapping, capacity: u64) -> io::Result<()> {
        if capacity as usize <= data.len() {
            return Ok(());
        }
        if shm::file_len(&self.file)? < HEADER_BYTES + capacity {
            return Err(corrupt());
        }
        data.grow(capacity as usize)
    }
}

fn corrupt() -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, "queue memory is corrupt")
}

/// Why a frame could not be added.
pub(crate) enum PushError<E> {
    /// The frame is larger than any ring can be.
    TooLarge,
    /// The memory could not grow.
    Os(io::Error),
    /// The caller's `fill` failed; nothing was added.
    Fill(E),
}

/// Proof that this thread holds the put lock; unlocks on drop, then wakes the consumers that
/// sleep, if any.
pub(crate) struct TailGuard<'a> {
    ring: &'a Ring,
    /// The committed tail.
    tail: Position,
    /// Dropped before `wake`: fields drop in declaration order.
    _lock: RobustGuard<'a>,
    wake: Wake<'a>,
}

impl TailGuard<'_> {
    fn view(&mut self) -> &mut ProducerView {
        // SAFETY: we hold the put lock, which excludes every other user of the view, and
        // `&mut self` excludes every reference this guard handed out.
        unsafe { &mut *self.ring.producer.get() }
    }

    fn refresh_head(&mut self) -> u64 {
        let (version, head) = self.ring.header().head.position.read();
        self.view().head = head;
        version
    }

    /// Whether the queue holds `maxsize` (non-zero) items: if so, the [`watch`](Ring::watch)
    /// value of [`Event::NotFull`] that saw it full, to wait for room.
    pub(crate) fn full(&mut self, maxsize: u64) -> Option<u64> {
        if maxsize == 0 || self.tail.items - self.view().head.items < maxsize {
            return None;
        }
        let version = self.refresh_head();
        (self.tail.items - self.view().head.items >= maxsize).then_some(version)
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
        let capacity = self.ring.capacity();
        let tail = self.tail;
        let data = &mut self.view().data;
        if placement.skip > 0 {
            write_header(
                data,
                tail.bytes % capacity,
                FrameHeader::Skip(placement.skip),
            );
        }
        let offset = placement.at % capacity;
        write_header(data, offset, FrameHeader::Payload(len));
        // SAFETY: `place` found `[offset, offset + size)` free and inside the ring, which the
        // mapping covers; the put lock and `&mut self` exclude every other writer, and
        // consumers read only committed frames.
        let payload = unsafe {
            std::slice::from_raw_parts_mut(
                data.as_ptr().add((offset + FRAME_HEADER) as usize),
                len as usize,
            )
        };
        fill(payload).map_err(PushError::Fill)?;
        self.tail = Position {
            bytes: placement.end,
            items: tail.items + 1,
        };
        let end = &self.ring.header().tail;
        end.position.commit(self.tail);
        self.wake.pending |= end.waiters.announce();
        Ok(())
    }

    /// Where a frame of `size` bytes goes: after the tail, growing the ring if the head, even
    /// re-read, leaves no room.
    fn place<E>(&mut self, size: u64) -> Result<Placement, PushError<E>> {
        let capacity = self.ring.capacity();
        let fits = |this: &mut Self| {
            layout::place(this.view().head.bytes, this.tail.bytes, capacity, size)
        };
        if let Some(placement) = fits(self) {
            return Ok(placement);
        }
        self.refresh_head();
        match fits(self) {
            Some(placement) => Ok(placement),
            None => self.grow(size),
        }
    }

    /// Grows the ring so that a frame of `size` bytes fits, and places it.
    fn grow<E>(&mut self, size: u64) -> Result<Placement, PushError<E>> {
        let ring = self.ring;
        // Consumers must not read while frames move: take their lock too (put lock first,
        // always). Consumers wait for the copy, as long as one pass over the live frames.
        let consumers = ring.header().get_lock.0.lock(None).map_err(PushError::Os)?;
        let grown = self.grow_holding_both_locks(size);
        drop(consumers);
        grown
    }

    fn grow_holding_both_locks<E>(&mut self, size: u64) -> Result<Placement, PushError<E>> {
        self.refresh_head();
        let (head, tail) = (self.view().head.bytes, self.tail.bytes);
        let old = self.ring.capacity();
        if let Some(placement) = layout::place(head, tail, old, size) {
            return Ok(placement); // a consumer made room while we waited for its lock
        }
        let new = layout::grown_capacity(old, tail - head, size).ok_or(PushError::TooLarge)?;
        shm::grow_file(&self.ring.file, HEADER_BYTES + new).map_err(PushError::Os)?;
        let data = &mut self.view().data;
        data.grow(new as usize).map_err(PushError::Os)?;
        for step in layout::relocations(head, tail, old, new) {
            // SAFETY: both ranges lie inside the mapping grown above; the destination lies at
            // or above `old`, so it overlaps neither the source nor any frame the committed
            // capacity can reach.
            unsafe {
                std::ptr::copy_nonoverlapping(
                    data.as_ptr().add(step.from as usize),
                    data.as_ptr().add(step.to as usize),
                    step.len as usize,
                );
            }
        }
        self.ring.header().capacity.store(new, Ordering::Release);
        layout::place(head, tail, new, size).ok_or(PushError::TooLarge)
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
    /// The committed head.
    head: Position,
    /// The tail when the lock was taken, and its version.
    tail: Position,
    tail_version: u64,
    /// The first frame, once [`front`](Self::front) found it: its position and size.
    front: Option<(u64, u64)>,
    capacity: u64,
    /// Dropped before `wake`: fields drop in declaration order.
    _lock: RobustGuard<'a>,
    wake: Wake<'a>,
}

impl HeadGuard<'_> {
    fn data(&self) -> &Mapping {
        // SAFETY: we hold the get lock, which excludes every writer of the consumer mapping.
        unsafe { &*self.ring.consumer.get() }
    }

    fn data_mut(&mut self) -> &mut Mapping {
        // SAFETY: we hold the get lock, and `&mut self` excludes every reference this guard
        // handed out.
        unsafe { &mut *self.ring.consumer.get() }
    }

    /// The [`watch`](Ring::watch) value of [`Event::NotEmpty`] when this guard saw the tail.
    pub(crate) fn tail_version(&self) -> u64 {
        self.tail_version
    }

    /// `len` bytes of the ring at `position`, if they lie within the frames and do not wrap.
    fn frame_bytes(&self, position: u64, len: u64) -> io::Result<&[u8]> {
        let offset = position % self.capacity;
        let inside = position
            .checked_add(len)
            .is_some_and(|end| end <= self.tail.bytes && offset + len <= self.capacity);
        if !inside {
            return Err(corrupt());
        }
        // SAFETY: the range is inside the ring, which the mapping covers, and inside the
        // committed frames, which no producer writes; the get lock excludes other consumers.
        Ok(unsafe {
            std::slice::from_raw_parts(self.data().as_ptr().add(offset as usize), len as usize)
        })
    }

    fn header_at(&self, position: u64) -> io::Result<FrameHeader> {
        let bytes = self.frame_bytes(position, FRAME_HEADER)?;
        let word = u64::from_le_bytes(bytes.try_into().map_err(|_| corrupt())?);
        Ok(FrameHeader::from_word(word))
    }

    /// The payload of the first frame, `None` when the queue is empty.
    ///
    /// # Errors
    /// `InvalidData` if a header points outside the frames, which only memory corruption
    /// from outside this crate can cause.
    pub(crate) fn front(&mut self) -> io::Result<Option<&[u8]>> {
        if self.head.items == self.tail.items {
            return Ok(None);
        }
        let mut at = self.head.bytes;
        if let FrameHeader::Skip(skip) = self.header_at(at)? {
            // It reached the end of the ring it was written in; the ring may have grown
            // since, so only check that it stays inside the ring and the frames.
            if skip % FRAME_HEADER != 0 || skip == 0 {
                return Err(corrupt());
            }
            self.frame_bytes(at, skip)?;
            at += skip;
        }
        let FrameHeader::Payload(len) = self.header_at(at)? else {
            return Err(corrupt());
        };
        let size = frame_size(len).ok_or_else(corrupt)?;
        self.frame_bytes(at, size)?;
        self.front = Some((at, size));
        self.frame_bytes(at + FRAME_HEADER, len).map(Some)
    }

    /// Removes the first frame (commits); call after [`front`](Self::front) returned one.
    pub(crate) fn pop_front(&mut self) -> io::Result<()> {
        let (at, size) = self.front.take().ok_or_else(corrupt)?;
        self.head = Position {
            bytes: at + size,
            items: self.head.items + 1,
        };
        let end = &self.ring.header().head;
        end.position.commit(self.head);
        if self.ring.maxsize() > 0 {
            self.wake.pending |= end.waiters.announce();
        }
        if self.head.items == self.tail.items && self.capacity > RELEASE_ABOVE {
            self.release_memory();
        }
        Ok(())
    }

    /// Gives the pages of a large, empty ring back to the system. Best effort: only if no
    /// producer holds the put lock (taking it here would invert the lock order), and on
    /// failure the pages simply stay in use.
    fn release_memory(&self) {
        let Ok(Some(_producers)) = self.ring.header().put_lock.0.try_lock() else {
            return;
        };
        // With both locks held nobody writes or reads frames: if the queue is still empty,
        // no byte of the ring is live.
        let (_, tail) = self.ring.header().tail.position.read();
        let released_at = &self.ring.header().released_at;
        // Frames since the last release touched at most this many bytes of pages: below
        // KEPT_WHEN_EMPTY, a release would cost a system call for little memory.
        let touched = tail.bytes - released_at.load(Ordering::Relaxed);
        if tail.items == self.head.items && touched >= KEPT_WHEN_EMPTY {
            let _ = shm::release(
                &self.ring.file,
                HEADER_BYTES + KEPT_WHEN_EMPTY,
                self.capacity - KEPT_WHEN_EMPTY,
            );
            released_at.store(tail.bytes, Ordering::Relaxed);
        }
    }
}
