//! The watchdog of one process: a small forked process that outlives it and removes the
//! segments it used once nobody is attached to them any more.
//!
//! The process writes each segment it creates or attaches to (its name and which file it is)
//! into a table in shared memory that the watchdog maps too: no system call, no message, so
//! registering costs a few stores. The watchdog sleeps in `poll` on a pidfd of the process.
//! When the process has ended (returned, exited, SIGKILLed: the kernel has closed its files,
//! so its locks are gone), the watchdog looks at each segment of the table: if the name
//! still names that file and an exclusive `flock` can be taken on it, no process is attached,
//! and it removes the name; if another process still holds its shared lock, it looks again
//! 20 ms later, until every segment is removed or was removed by someone else. Then it exits.
//!
//! The table is kept out of every later `fork` (`MADV_DONTFORK`), and a `pthread_atfork`
//! handler makes the child forget it: a forked child starts its own watchdog when it first
//! uses a segment, and the child's handles it inherited from its
//! parent need none (their lock is the parent's open file, so the parent's watchdog waits for
//! the child too).

use std::io;
use std::ptr;
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicU32, AtomicU64, Ordering};

use crate::sys::posix_shm::{self, FileId, LockKind};
use crate::sys::shm::{self, Mapping};

/// The most segments one process may have registered at once (not yet unlinked).
pub(crate) const CAPACITY: usize = 4096;
/// A segment's name takes at most this many bytes (`NAME_MAX`).
const NAME_BYTES: usize = 256;
const NAME_WORDS: usize = NAME_BYTES / 8;
/// How long the watchdog waits before it looks again at a segment some process still holds.
const LOOK_AGAIN_MS: u64 = 20;

const FREE: u32 = 0;
const CLAIMED: u32 = 1;
const USED: u32 = 2;

/// One registered segment. Atomics throughout: the table is shared memory.
#[repr(C)]
struct Slot {
    state: AtomicU32,
    len: AtomicU32,
    device: AtomicU64,
    inode: AtomicU64,
    name: [AtomicU64; NAME_WORDS],
}

#[repr(C)]
struct Table {
    /// Slots at or past this index were never used.
    high: AtomicU32,
    slots: [Slot; CAPACITY],
}

impl Slot {
    fn write(&self, name: &str, id: FileId) {
        let mut words = [0_u64; NAME_WORDS];
        for (index, byte) in name.bytes().take(NAME_BYTES).enumerate() {
            words[index / 8] |= u64::from(byte) << (8 * (index % 8));
        }
        for (word, value) in self.name.iter().zip(words) {
            word.store(value, Ordering::Relaxed);
        }
        self.len.store(name.len() as u32, Ordering::Relaxed);
        self.device.store(id.device, Ordering::Relaxed);
        self.inode.store(id.inode, Ordering::Relaxed);
    }

    /// The name and file, if the slot holds a name a segment can have (the table is written
    /// only by this process and its forked children's copies are cut off, but it is checked
    /// all the same).
    fn read(&self) -> Option<(String, FileId)> {
        let len = usize::try_from(self.len.load(Ordering::Relaxed)).ok()?;
        if len == 0 || len > NAME_BYTES - 1 {
            return None;
        }
        let bytes: Vec<u8> = (0..len)
            .map(|index| (self.name[index / 8].load(Ordering::Relaxed) >> (8 * (index % 8))) as u8)
            .collect();
        let name = String::from_utf8(bytes).ok()?;
        super::check_name_chars(&name).ok()?;
        let id = FileId {
            device: self.device.load(Ordering::Relaxed),
            inode: self.inode.load(Ordering::Relaxed),
        };
        Some((name, id))
    }

    fn holds(&self, id: FileId) -> bool {
        self.state.load(Ordering::Acquire) == USED
            && self.device.load(Ordering::Relaxed) == id.device
            && self.inode.load(Ordering::Relaxed) == id.inode
    }
}

/// This process's watchdog and its table.
struct Watch {
    /// The process that started it: a forked child sees its parent's and starts its own.
    owner: u32,
    map: Mapping,
    watchdog: u32,
}

impl Watch {
    fn table(&self) -> &Table {
        // SAFETY: the mapping is `size_of::<Table>()` bytes of a memfd this process created,
        // page-aligned (enough for `Table`'s alignment of 8), alive as long as `self`; every
        // field is an atomic, so any bytes are a valid `Table` and sharing it is sound.
        unsafe { &*self.map.as_ptr().cast::<Table>() }
    }

    /// Creates the table and forks the watchdog that will read it.
    fn start(owner: u32) -> io::Result<Watch> {
        let file = shm::create(c"shared-shm-watchdog", size_of::<Table>() as u64)?;
        let map = Mapping::new(&file, 0, size_of::<Table>())?;
        let pidfd = posix_shm::pidfd_of_self()?;
        let table = map.as_ptr() as usize;
        let pidfd_number = std::os::fd::AsRawFd::as_raw_fd(&pidfd);
        let watchdog = posix_shm::fork_watchdog(
            std::os::fd::AsFd::as_fd(&pidfd),
            c"shm-watchdog",
            move || {
                posix_shm::wait_for_end(pidfd_number);
                // SAFETY: the watchdog inherited the mapping (made before the fork), which
                // nothing in this process unmaps; as in `Watch::table`.
                clean_up(unsafe { &*(table as *const Table) })
            },
        )?;
        // Later children must not inherit the table: they write their own.
        posix_shm::exclude_from_fork(map.as_ptr(), map.len())?;
        Ok(Watch {
            owner,
            map,
            watchdog,
        })
    }
}

/// The watchdog, once its process has ended.
fn clean_up(table: &Table) {
    let high = (table.high.load(Ordering::Acquire) as usize).min(CAPACITY);
    loop {
        let mut waiting = false;
        for slot in &table.slots[..high] {
            if slot.state.load(Ordering::Acquire) != USED {
                continue;
            }
            let still_used = slot
                .read()
                .is_some_and(|(name, id)| !remove_if_unused(&name, id));
            if still_used {
                waiting = true;
            } else {
                slot.state.store(FREE, Ordering::Release);
            }
        }
        if !waiting {
            return;
        }
        posix_shm::sleep_ms(LOOK_AGAIN_MS);
    }
}

/// Removes `name` if it still names file `id` and nobody holds it. `false` while some process
/// is attached (it holds a shared lock); `true` once there is nothing left to do.
fn remove_if_unused(name: &str, id: FileId) -> bool {
    let Ok(file) = posix_shm::open(name) else {
        return true; // removed already, or never published
    };
    let fd = std::os::fd::AsFd::as_fd(&file);
    if posix_shm::status(fd).ok().map(|status| status.id) != Some(id) {
        return true; // the name is another segment's now
    }
    match posix_shm::try_lock(fd, LockKind::Exclusive) {
        Ok(true) => {}
        Ok(false) => return false,
        Err(_) => return true,
    }
    // Nobody is attached, and nobody can attach while we hold the lock: an attacher that
    // opened the name now finds it unlinked once it gets its lock, and gives up.
    if posix_shm::status_of_name(name).ok().map(|status| status.id) == Some(id) {
        let _ = posix_shm::remove(name);
    }
    true
}

static WATCH: AtomicPtr<Watch> = AtomicPtr::new(ptr::null_mut());

/// The state of the random names: 0 until seeded (again after a fork, so that a child does not
/// draw its parent's next names).
static NAMES: AtomicU64 = AtomicU64::new(0);

/// Run in the child of every `fork` (`pthread_atfork`): the parent's watchdog and table are not
/// the child's (the table is not even mapped there), its names must differ, and the segments
/// its parent held are not the child's to share (`held`). Three atomic stores: safe in a
/// child of a program with threads.
extern "C" fn forget_in_child() {
    WATCH.store(ptr::null_mut(), Ordering::Release);
    NAMES.store(0, Ordering::Release);
    super::held::forget_in_child();
}

/// Registers [`forget_in_child`] once, before the first watchdog or name exists.
fn forget_in_every_child() -> io::Result<()> {
    static REGISTERED: AtomicBool = AtomicBool::new(false);
    if !REGISTERED.swap(true, Ordering::AcqRel) {
        posix_shm::on_fork_in_child(forget_in_child)?;
    }
    Ok(())
}

/// 32 random bits for a segment's name: a counter through SplitMix64, seeded from the kernel
/// once per process (names must be unique, not secret: a taken one is drawn again).
pub(crate) fn name_bits() -> io::Result<u32> {
    forget_in_every_child()?;
    if NAMES.load(Ordering::Acquire) == 0 {
        let seed = u64::from_le_bytes(crate::sys::random_bytes::<8>()?) | 1;
        let _ = NAMES.compare_exchange(0, seed, Ordering::AcqRel, Ordering::Acquire);
    }
    let mut z = NAMES.fetch_add(0x9e37_79b9_7f4a_7c15, Ordering::Relaxed);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    Ok((z ^ (z >> 31)) as u32)
}

/// This process's watchdog, started on first use (in a forked child, its own).
fn current() -> io::Result<&'static Watch> {
    forget_in_every_child()?;
    loop {
        if let Some(watch) = existing() {
            return Ok(watch);
        }
        let fresh = Box::into_raw(Box::new(Watch::start(posix_shm::current_pid())?));
        match WATCH.compare_exchange(ptr::null_mut(), fresh, Ordering::AcqRel, Ordering::Acquire) {
            // SAFETY: leaked on purpose: it lives as long as the process.
            Ok(_) => return Ok(unsafe { &*fresh }),
            Err(_) => {
                // Another thread started one first: ours has nothing to watch.
                // SAFETY: `fresh` came from `Box::into_raw` above and was never shared.
                let ours = unsafe { Box::from_raw(fresh) };
                posix_shm::kill_and_reap(ours.watchdog);
            }
        }
    }
}

/// A segment in this process's table, until [`unregister`].
#[derive(Debug)]
pub(crate) struct Registration {
    owner: u32,
    index: usize,
}

/// Writes segment `name`, file `id`, into this process's table, before the process holds
/// it (so that a SIGKILL at any later instant leaves the segment to the watchdog).
pub(crate) fn register(name: &str, id: FileId) -> io::Result<Registration> {
    let watch = current()?;
    let table = watch.table();
    let high = (table.high.load(Ordering::Acquire) as usize).min(CAPACITY);
    if let Some(index) = table.slots[..high].iter().position(|slot| slot.holds(id)) {
        return Ok(Registration {
            owner: watch.owner,
            index,
        });
    }
    let index = claim(table).ok_or_else(|| {
        io::Error::other(format!(
            "this process has {CAPACITY} shared memory segments not unlinked, the most it may"
        ))
    })?;
    let slot = &table.slots[index];
    slot.write(name, id);
    slot.state.store(USED, Ordering::Release);
    Ok(Registration {
        owner: watch.owner,
        index,
    })
}

/// A free slot, claimed: one freed before, or the next never used. Every claim is a
/// compare-and-swap from `FREE`, so two threads never claim one slot.
fn claim(table: &Table) -> Option<usize> {
    let take = |slot: &Slot| {
        slot.state
            .compare_exchange(FREE, CLAIMED, Ordering::AcqRel, Ordering::Relaxed)
            .is_ok()
    };
    loop {
        let high = (table.high.load(Ordering::Acquire) as usize).min(CAPACITY);
        if let Some(index) = table.slots[..high].iter().position(take) {
            return Some(index);
        }
        let index = table.high.fetch_add(1, Ordering::AcqRel) as usize;
        if index >= CAPACITY {
            table.high.store(CAPACITY as u32, Ordering::Release);
            return None;
        }
        if take(&table.slots[index]) {
            return Some(index);
        }
    }
}

/// Takes a segment out of the table: it was unlinked, so there is nothing left to remove.
pub(crate) fn unregister(registration: &Registration) {
    let Some(watch) = existing() else { return };
    if watch.owner == registration.owner {
        watch.table().slots[registration.index]
            .state
            .store(FREE, Ordering::Release);
    }
}

/// This process's watchdog, if it has started one (a forked child forgets its parent's).
fn existing() -> Option<&'static Watch> {
    // SAFETY: `WATCH` holds null or a `Box<Watch>` leaked by `current`, never freed (a forked
    // child drops its parent's pointer, whose table is not mapped there, and never frees it).
    unsafe { WATCH.load(Ordering::Acquire).as_ref() }
}

/// The PID of this process's watchdog, if it has started one.
pub(crate) fn watchdog_pid() -> Option<u32> {
    existing().map(|watch| watch.watchdog)
}
