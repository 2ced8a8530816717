//! `SharedMemory` create + attach + unlink: what a program pays to hand a fresh block of bytes
//! to another process by name (the attach is done here, in the same process, so that only the
//! segment's own costs are timed, not a child's start).

use std::error::Error;
use std::num::NonZeroUsize;
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::Instant;

use nix::fcntl::{AT_FDCWD, AtFlags, FallocateFlags, OFlag, fallocate, open};
use nix::libc;
use nix::sys::mman::{MapFlags, ProtFlags, mmap, munmap};
use nix::sys::stat::{Mode, fstat, lstat};
use nix::unistd::{linkat, unlink};

use shared::SharedMemory;

use super::{Outcome, check};
use crate::measurement::Measurement;

/// One segment of `size` bytes: created, attached by name, closed twice, unlinked. Whether the
/// attached handle saw the creator's size and bytes.
fn cycle(size: usize) -> Result<bool, Box<dyn Error>> {
    let created = SharedMemory::create(size)?;
    created.write_at(0, b"ok")?;
    let attached = SharedMemory::attach(created.name())?;
    let seen = attached.size() == size && attached.read(0..2)? == b"ok";
    attached.close();
    created.unlink()?;
    created.close();
    Ok(seen)
}

/// `count` cycles (after one warm-up, which also starts the process's watchdog).
pub fn create_attach_unlink(size: usize, count: u64) -> Outcome {
    let mut seen = cycle(size)?;
    let start = Instant::now();
    for _ in 0..count {
        seen &= cycle(size)?;
    }
    let elapsed = start.elapsed();
    check(seen, "every attach saw the creator's size and bytes")?;
    Ok(Measurement::of_this_process(elapsed, count))
}

/// The raw limit of [`create_attach_unlink`]: `count` cycles (after one warm-up) of the system
/// calls `shared`'s cycle makes, made directly: `open(O_TMPFILE)`, `fallocate`, `flock`,
/// `fstat`, `linkat`, `mmap` and the 2 bytes written (create); an `lstat` that finds the same
/// file and the 2 bytes read (attach, in the process that holds it); an `lstat` and an
/// `unlink` (unlink); `munmap` and `close` (the last close). No watchdog table, no handle.
pub fn raw_create_attach_unlink(size: usize, count: u64) -> Outcome {
    let mut seen = raw_cycle(size, 0)?;
    let start = Instant::now();
    for index in 1..=count {
        seen &= raw_cycle(size, index)?;
    }
    let elapsed = start.elapsed();
    check(
        seen,
        "every lstat found the file made, and the bytes written were read back",
    )?;
    Ok(Measurement::of_this_process(elapsed, count))
}

/// One raw cycle on `/dev/shm/psm_raw_PID_INDEX`; whether both `lstat`s found the file made
/// and the attach saw its bytes.
fn raw_cycle(size: usize, index: u64) -> Result<bool, Box<dyn Error>> {
    let path = format!("/dev/shm/psm_raw_{}_{index}", std::process::id());
    let len = i64::try_from(size)?;
    let file = open(
        "/dev/shm",
        OFlag::O_TMPFILE | OFlag::O_RDWR | OFlag::O_CLOEXEC,
        Mode::S_IRUSR | Mode::S_IWUSR,
    )?;
    fallocate(&file, FallocateFlags::empty(), 0, len)?;
    // SAFETY: plain integers on a descriptor this function owns.
    let locked = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_SH | libc::LOCK_NB) };
    check(locked == 0, "the new file's shared flock taken")?;
    let made = fstat(&file)?;
    linkat(&file, "", AT_FDCWD, path.as_str(), AtFlags::AT_EMPTY_PATH)?;
    let length = NonZeroUsize::new(size).ok_or("a segment of 0 bytes")?;
    let flags = MapFlags::MAP_SHARED;
    // SAFETY: a fresh mapping at an address of the kernel's choosing aliases nothing.
    let map = unsafe {
        mmap(
            None,
            length,
            ProtFlags::PROT_READ | ProtFlags::PROT_WRITE,
            flags,
            &file,
            0,
        )
    }?;
    // SAFETY: the mapping is `size` bytes (at least 1, checked above), readable and writable,
    // page-aligned, and unmapped only below; every access is atomic, so another process that
    // opened the name meanwhile and writes it races nothing.
    let bytes = unsafe { std::slice::from_raw_parts(map.as_ptr().cast::<AtomicU8>(), size) };
    for (byte, value) in bytes.iter().zip(b"ok") {
        byte.store(*value, Ordering::Relaxed);
    }
    let attached = lstat(path.as_str())?;
    let seen = attached.st_ino == made.st_ino
        && attached.st_dev == made.st_dev
        && bytes
            .iter()
            .take(2)
            .map(|byte| byte.load(Ordering::Relaxed))
            .eq(*b"ok");
    let still_ours = lstat(path.as_str()).is_ok_and(|now| now.st_ino == made.st_ino);
    unlink(path.as_str())?;
    // SAFETY: `map` is the mapping made above, of `size` bytes; `bytes` is not used after this.
    unsafe { munmap(map, size) }?;
    drop(file);
    Ok(seen && still_ours)
}
