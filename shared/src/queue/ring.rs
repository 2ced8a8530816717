//! The shared-memory ring behind [`Queue`](crate::Queue) and
//! [`JoinableQueue`](crate::JoinableQueue): a memfd whose first page is a [`Header`] and whose
//! rest holds the frames laid out by [`Layout`].
//!
//! Every operation runs under the header's robust mutex and ends with one commit: the new
//! layout is written to the spare copy, then a single aligned store flips `live` to it. A
//! process killed at any instruction therefore leaves either the old or the new layout, both
//! whole; the next locker is told the owner died and carries on. Item bytes are written to
//! free space before the commit and read before the commit that frees them, so a dead
//! process's half-written item is never seen and a half-read one is never lost by the others.

use std::cell::UnsafeCell;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Instant;

use super::layout::{FRAME_HEADER, Layout, frame_size};
use crate::sys::shm::{self, Mapping};
use crate::sys::sync::{self, RawMutex};

const MAGIC: u64 = u64::from_le_bytes(*b"shq-v002");
/// The header takes the first page; the ring starts at the second.
const HEADER_BYTES: u64 = 4096;
/// A new ring's size; it doubles as needed.
const INITIAL_CAPACITY: u64 = 64 * 1024;
/// When an emptied ring is larger than this, its pages past [`KEPT_WHEN_EMPTY`] go back to the
/// system, so one burst of huge items does not pin that memory for the queue's lifetime.
const RELEASE_ABOVE: u64 = 256 << 20;
const KEPT_WHEN_EMPTY: u64 = 32 << 20;

/// The events a process can sleep on.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Event {
    /// An item was put.
    NotEmpty,
    /// An item was taken from a bounded queue.
    NotFull,
    /// `unfinished` reached zero.
    AllDone,
}

/// A futex word processes sleep on, bumped by whoever changes the condition while someone
/// sleeps. The sleeper count spares a syscall on every operation when nobody waits; a sleeper
/// killed in its sleep leaves it too high, which costs wake-ups, never correctness.
#[repr(C)]
struct Waiters {
    sequence: AtomicU32,
    sleeping: AtomicU32,
    /// Bumped on every signal, sleepers or not: what a waiter watches while it spins.
    changes: AtomicU32,
}

/// How long a waiter spins, watching for a change, before it sleeps. Short: a producer on the
/// other core usually puts within a microsecond or two, and a wake-up syscall costs more.
const SPIN: std::time::Duration = std::time::Duration::from_micros(20);

/// The longest a waiter sleeps before it re-checks its condition. A waker wakes sleepers after
/// its commit; if it is killed between the two, nobody else may ever come to wake them, so a
/// sleeper never trusts a wake-up to arrive: this bounds what such a death can cost.
const LONGEST_SLEEP: std::time::Duration = std::time::Duration::from_millis(100);

/// Keeps what it holds on a cache line of its own: the producer writes the spare layout on
/// every operation while a consumer spins on a waiter word, and sharing a line would make each
/// of those writes a cache miss for the other side.
#[repr(C, align(64))]
struct Line<T>(T);

#[repr(C)]
struct Header {
    magic: u64,
    maxsize: u64,
    mutex: UnsafeCell<RawMutex>,
    live: AtomicU32,
    layouts: [Line<UnsafeCell<Layout>>; 2],
    waiters: [Line<Waiters>; 3],
}

const _: () = assert!(size_of::<Header>() <= HEADER_BYTES as usize);

/// One process's view of a queue's shared memory.
pub(crate) struct Ring {
    file: OwnedFd,
    header: Mapping,
    /// The frames. Remapped when another process grew the ring, so it is touched only while
    /// holding the mutex, which also excludes the other threads of this process.
    data: UnsafeCell<Mapping>,
}

// SAFETY: the header is accessed through atomics and the process-shared mutex; `data` only
// while holding that mutex.
unsafe impl Send for Ring {}
// SAFETY: as above.
unsafe impl Sync for Ring {}

impl Ring {
    /// A new, empty ring; `maxsize` 0 means unbounded.
    pub(crate) fn create(maxsize: u64) -> io::Result<Ring> {
        let file = shm::create(c"shared-queue", HEADER_BYTES + INITIAL_CAPACITY)?;
        let header = Mapping::new(&file, 0, HEADER_BYTES as usize)?;
        let ptr = header.as_ptr().cast::<Header>();
        // SAFETY: the mapping is fresh, zeroed, page-aligned and large enough for a Header;
        // no other process has the memfd yet.
        unsafe {
            (*ptr).magic = MAGIC;
            (*ptr).maxsize = maxsize;
            *(*ptr).layouts[0].0.get() = Layout::empty(INITIAL_CAPACITY);
            sync::init_mutex((*ptr).mutex.get())?;
        }
        let data = Mapping::new(&file, HEADER_BYTES, INITIAL_CAPACITY as usize)?;
        Ok(Ring {
            file,
            header,
            data: UnsafeCell::new(data),
        })
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
        let data = Mapping::new(&file, HEADER_BYTES, INITIAL_CAPACITY as usize)?;
        Ok(Ring {
            file,
            header,
            data: UnsafeCell::new(data),
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

    /// Locks the ring, waiting at most until `deadline`; `None` on timeout.
    pub(crate) fn lock(&self, deadline: Option<Instant>) -> io::Result<Option<Guard<'_>>> {
        // SAFETY: the mutex was initialised by `create` and lives in our mapping.
        if unsafe { sync::lock(self.header().mutex.get(), deadline) }?.is_none() {
            return Ok(None);
        }
        let mut guard = Guard {
            ring: self,
            layout: self.live_layout(),
            signalled: [false; 3],
            wake: [false; 3],
        };
        guard.map_whole_ring()?;
        Ok(Some(guard))
    }

    fn live_layout(&self) -> Layout {
        let live = self.header().live.load(Ordering::Acquire) as usize & 1;
        // SAFETY: read under the mutex; only the holder of the mutex writes layouts.
        unsafe { *self.header().layouts[live].0.get() }
    }

    /// Spins briefly while `event` has not been signalled since `seen` (from
    /// [`Guard::changes`]); returns whether it was, so the caller can skip the sleep.
    fn spin(&self, event: Event, seen: u32, deadline: Option<Instant>) -> bool {
        let changes = &self.header().waiters[event as usize].0.changes;
        let start = Instant::now();
        let limit = deadline.map_or(start + SPIN, |d| d.min(start + SPIN));
        loop {
            for _ in 0..64 {
                if changes.load(Ordering::Relaxed) != seen {
                    return true;
                }
                std::hint::spin_loop();
            }
            if Instant::now() >= limit {
                return false;
            }
        }
    }

    /// Releases `guard` and waits until `event` may have happened or `deadline` passes: first
    /// spinning briefly, then, if `still_waiting` holds under the lock, sleeping. Callers
    /// re-check their condition afterwards.
    pub(crate) fn wait_for(
        &self,
        guard: Guard<'_>,
        event: Event,
        deadline: Option<Instant>,
        still_waiting: impl Fn(&Layout) -> bool,
    ) {
        let changes = guard.changes(event);
        drop(guard);
        if self.spin(event, changes, deadline) {
            return;
        }
        // Registering as a sleeper and checking the condition under one lock is what makes
        // the sleep safe: any later change signals this sleeper.
        let Some(guard) = self.lock(deadline).ok().flatten() else {
            return;
        };
        if !still_waiting(guard.layout()) {
            return;
        }
        let seen = guard.prepare_sleep(event);
        drop(guard);
        self.sleep(event, seen, deadline);
    }

    /// Sleeps until `event` is signalled after `seen` was read, or `deadline` passes.
    fn sleep(&self, event: Event, seen: u32, deadline: Option<Instant>) {
        let waiters = &self.header().waiters[event as usize].0;
        let left = deadline.map_or(LONGEST_SLEEP, |d| {
            d.saturating_duration_since(Instant::now())
        });
        if !left.is_zero() {
            sync::futex_wait(&waiters.sequence, seen, Some(left.min(LONGEST_SLEEP)));
        }
        waiters.sleeping.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Proof that this thread holds the ring's mutex; unlocks on drop, then wakes the sleepers of
/// the events the operation signalled.
pub(crate) struct Guard<'a> {
    ring: &'a Ring,
    layout: Layout,
    /// Events this operation caused, announced to spinners after the unlock.
    signalled: [bool; 3],
    /// Events whose sleepers must be woken after the unlock.
    wake: [bool; 3],
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

impl Guard<'_> {
    /// The committed layout.
    pub(crate) fn layout(&self) -> &Layout {
        &self.layout
    }

    fn data(&self) -> &Mapping {
        // SAFETY: we hold the mutex, which excludes every writer of `data`.
        unsafe { &*self.ring.data.get() }
    }

    fn data_mut(&mut self) -> &mut Mapping {
        // SAFETY: we hold the mutex, which excludes every other user of `data`, and `&mut self`
        // excludes every reference handed out by this guard.
        unsafe { &mut *self.ring.data.get() }
    }

    /// Another process may have grown the ring since this one last mapped it.
    fn map_whole_ring(&mut self) -> io::Result<()> {
        let capacity = self.layout.capacity;
        if capacity as usize <= self.data().len() {
            return Ok(());
        }
        if shm::file_len(&self.ring.file)? < HEADER_BYTES + capacity {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "queue memory is corrupt",
            ));
        }
        self.data_mut().grow(capacity as usize)
    }

    /// `[offset, offset + len)` of the ring, if it lies inside the committed capacity.
    fn range(&self, offset: u64, len: u64) -> Option<*mut u8> {
        let end = offset.checked_add(len)?;
        // The mapping is at least `capacity` long (see `map_whole_ring`).
        (end <= self.layout.capacity).then(|| self.data().as_ptr().wrapping_add(offset as usize))
    }

    fn bytes(&self, offset: u64, len: u64) -> Option<&[u8]> {
        let start = self.range(offset, len)?;
        // SAFETY: the range is mapped, and the mutex excludes every writer of these bytes.
        Some(unsafe { std::slice::from_raw_parts(start, len as usize) })
    }

    fn bytes_mut(&mut self, offset: u64, len: u64) -> Option<&mut [u8]> {
        let start = self.range(offset, len)?;
        // SAFETY: the range is mapped; the mutex and `&mut self` exclude every other user.
        Some(unsafe { std::slice::from_raw_parts_mut(start, len as usize) })
    }

    /// The payload of the first frame, `None` when the queue is empty.
    ///
    /// # Errors
    /// `InvalidData` if the frame's length points outside the used region, which only memory
    /// corruption from outside this crate can cause.
    pub(crate) fn front(&self) -> io::Result<Option<&[u8]>> {
        if self.layout.count == 0 {
            return Ok(None);
        }
        let corrupt = || io::Error::new(io::ErrorKind::InvalidData, "queue memory is corrupt");
        let head = self.layout.head;
        let len_bytes = self.bytes(head, FRAME_HEADER).ok_or_else(corrupt)?;
        let len = u64::from_le_bytes(len_bytes.try_into().map_err(|_| corrupt())?);
        let end = frame_size(len)
            .and_then(|size| head.checked_add(size))
            .ok_or_else(corrupt)?;
        if end > self.layout.front_limit() {
            return Err(corrupt());
        }
        Ok(Some(
            self.bytes(head + FRAME_HEADER, len).ok_or_else(corrupt)?,
        ))
    }

    /// Removes the first frame (commits).
    pub(crate) fn pop_front(&mut self) -> io::Result<()> {
        let len = self.front()?.map_or(0, |payload| payload.len() as u64);
        let size = frame_size(len).unwrap_or(FRAME_HEADER);
        let after = self.layout.popped(size);
        self.commit(after);
        self.signal(Event::NotFull);
        if after.count == 0 && after.capacity > RELEASE_ABOVE {
            // Best effort: on failure the pages simply stay in use.
            let _ = shm::release(
                &self.ring.file,
                HEADER_BYTES + KEPT_WHEN_EMPTY,
                after.capacity - KEPT_WHEN_EMPTY,
            );
        }
        Ok(())
    }

    /// Adds a frame of `len` payload bytes written by `fill`, growing the ring if needed
    /// (commits). If `fill` fails nothing is added.
    pub(crate) fn push<E>(
        &mut self,
        len: u64,
        fill: impl FnOnce(&mut [u8]) -> Result<(), E>,
    ) -> Result<(), PushError<E>> {
        let size = frame_size(len).ok_or(PushError::TooLarge)?;
        let (offset, after) = match self.layout.place(size) {
            Some(placed) => placed,
            None => {
                self.grow(size)?;
                self.layout.place(size).ok_or(PushError::TooLarge)?
            }
        };
        let header = self
            .bytes_mut(offset, FRAME_HEADER)
            .ok_or(PushError::TooLarge)?;
        header.copy_from_slice(&len.to_le_bytes());
        let payload = self
            .bytes_mut(offset + FRAME_HEADER, len)
            .ok_or(PushError::TooLarge)?;
        fill(payload).map_err(PushError::Fill)?;
        self.commit(after);
        self.signal(Event::NotEmpty);
        Ok(())
    }

    fn grow<E>(&mut self, size: u64) -> Result<(), PushError<E>> {
        let (grown, unwrap) = self.layout.grown(size).ok_or(PushError::TooLarge)?;
        shm::grow_file(&self.ring.file, HEADER_BYTES + grown.capacity).map_err(PushError::Os)?;
        self.data_mut()
            .grow(grown.capacity as usize)
            .map_err(PushError::Os)?;
        if let Some(unwrap) = unwrap {
            let base = self.data().as_ptr();
            // SAFETY: both ranges lie inside the mapping grown above, and they do not overlap
            // (the destination starts at `wrap_at`, above the source's end `tail`).
            unsafe {
                std::ptr::copy_nonoverlapping(
                    base.add(unwrap.from as usize),
                    base.add(unwrap.to as usize),
                    unwrap.len as usize,
                );
            }
        }
        self.commit(grown);
        Ok(())
    }

    /// Marks one item done (commits). Returns `false`, changing nothing, when no item is
    /// unfinished.
    pub(crate) fn task_done(&mut self) -> bool {
        if self.layout.unfinished == 0 {
            return false;
        }
        let mut after = self.layout;
        after.unfinished -= 1;
        self.commit(after);
        if after.unfinished == 0 {
            self.signal(Event::AllDone);
        }
        true
    }

    /// How many times `event` was signalled, for [`Ring::spin`].
    fn changes(&self, event: Event) -> u32 {
        self.ring.header().waiters[event as usize]
            .0
            .changes
            .load(Ordering::Relaxed)
    }

    /// Registers this thread as a sleeper on `event`; returns the sequence to sleep on with
    /// [`Ring::sleep`] after dropping the guard.
    fn prepare_sleep(&self, event: Event) -> u32 {
        let waiters = &self.ring.header().waiters[event as usize].0;
        waiters.sleeping.fetch_add(1, Ordering::Relaxed);
        waiters.sequence.load(Ordering::Relaxed)
    }

    /// Writes `next` to the spare copy, then flips `live` to it: the single store a killed
    /// process either made or did not.
    fn commit(&mut self, next: Layout) {
        let header = self.ring.header();
        let spare = (header.live.load(Ordering::Relaxed) as usize & 1) ^ 1;
        // SAFETY: we hold the mutex; readers only read the copy `live` names.
        unsafe { *header.layouts[spare].0.get() = next };
        header.live.store(spare as u32, Ordering::Release);
        self.layout = next;
    }

    fn signal(&mut self, event: Event) {
        let waiters = &self.ring.header().waiters[event as usize].0;
        self.signalled[event as usize] = true;
        if waiters.sleeping.load(Ordering::Relaxed) > 0 {
            // Bumped under the mutex: a sleeper registered before us sees the change.
            waiters.sequence.fetch_add(1, Ordering::Relaxed);
            self.wake[event as usize] = true;
        }
    }
}

impl Drop for Guard<'_> {
    fn drop(&mut self) {
        // SAFETY: the guard's existence proves this thread holds the mutex.
        unsafe { sync::unlock(self.ring.header().mutex.get()) };
        // Spinners learn of the change only now, when the lock is free for them: told any
        // earlier, they would block on the mutex and cost two syscalls per item.
        let waiters = &self.ring.header().waiters;
        for (event, _) in self
            .signalled
            .iter()
            .enumerate()
            .filter(|(_, signalled)| **signalled)
        {
            waiters[event].0.changes.fetch_add(1, Ordering::Release);
        }
        for (event, _) in self.wake.iter().enumerate().filter(|(_, wake)| **wake) {
            sync::futex_wake_all(&waiters[event].0.sequence);
        }
    }
}
