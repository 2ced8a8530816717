//! Anonymous shared memory: a memfd, mapped `MAP_SHARED` in every process that holds it.

use std::ffi::CStr;
use std::io;
use std::num::NonZeroUsize;
use std::os::fd::{AsFd, OwnedFd};
use std::ptr::NonNull;
use std::sync::{PoisonError, RwLock, RwLockWriteGuard};

use nix::fcntl::{FallocateFlags, FcntlArg, SealFlag, fallocate, fcntl};
use nix::sys::memfd::{MFdFlags, memfd_create};
use nix::sys::mman::{MRemapFlags, MapFlags, ProtFlags, mmap, mremap, munmap};
use nix::sys::stat::fstat;
use nix::unistd::ftruncate;

use super::io_error;

/// Creates an anonymous shared-memory file of `len` bytes, close-on-exec, that accepts seals
/// ([`seal`]). It lives as long as some process holds a descriptor or a mapping of it: a crash
/// leaves nothing behind.
pub(crate) fn create(name: &CStr, len: u64) -> io::Result<OwnedFd> {
    let fd = memfd_create(name, MFdFlags::MFD_CLOEXEC | MFdFlags::MFD_ALLOW_SEALING)
        .map_err(io_error)?;
    grow_file(&fd, len)?;
    Ok(fd)
}

/// What a seal forbids, for every holder of the file, for the rest of its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Seal {
    /// Making the file smaller: a mapping of it can never run past its end (no SIGBUS).
    Shrink,
    /// Making the file larger.
    Grow,
    /// Writing it, through `write` or a writable mapping.
    Write,
    /// Adding more seals.
    Sealing,
}

impl Seal {
    fn flag(self) -> SealFlag {
        match self {
            Seal::Shrink => SealFlag::F_SEAL_SHRINK,
            Seal::Grow => SealFlag::F_SEAL_GROW,
            Seal::Write => SealFlag::F_SEAL_WRITE,
            Seal::Sealing => SealFlag::F_SEAL_SEAL,
        }
    }
}

/// Adds `seals` to a file made by [`create`].
pub(crate) fn seal(fd: &impl AsFd, seals: &[Seal]) -> io::Result<()> {
    let flags = seals
        .iter()
        .fold(SealFlag::empty(), |flags, seal| flags | seal.flag());
    fcntl(fd.as_fd(), FcntlArg::F_ADD_SEALS(flags))
        .map(drop)
        .map_err(io_error)
}

/// Whether `fd` is a shared-memory file carrying every one of `seals`. `false` for anything
/// else: a regular file, a pipe, a socket, or a memfd without them.
pub(crate) fn is_sealed(fd: &impl AsFd, seals: &[Seal]) -> bool {
    let Ok(bits) = fcntl(fd.as_fd(), FcntlArg::F_GET_SEALS) else {
        return false; // EINVAL: this kind of file cannot be sealed at all
    };
    let present = SealFlag::from_bits_truncate(bits);
    seals.iter().all(|seal| present.contains(seal.flag()))
}

/// The current size of the file behind `fd`.
pub(crate) fn file_len(fd: &impl AsFd) -> io::Result<u64> {
    Ok(fstat(fd.as_fd()).map_err(io_error)?.st_size as u64)
}

/// Grows the file to at least `len` bytes; never shrinks it, because other processes may
/// still map the tail. The new pages cost nothing until touched.
pub(crate) fn grow_file(fd: &impl AsFd, len: u64) -> io::Result<()> {
    if file_len(fd)? >= len {
        return Ok(());
    }
    let len = i64::try_from(len).map_err(|_| io::Error::from(io::ErrorKind::OutOfMemory))?;
    ftruncate(fd.as_fd(), len).map_err(io_error)
}

/// Gives the pages of `[offset, offset + len)` back to the system; they read as zeros after.
pub(crate) fn release(fd: &impl AsFd, offset: u64, len: u64) -> io::Result<()> {
    fallocate(
        fd.as_fd(),
        FallocateFlags::FALLOC_FL_PUNCH_HOLE | FallocateFlags::FALLOC_FL_KEEP_SIZE,
        offset as i64,
        len as i64,
    )
    .map_err(io_error)
}

/// Held shared while a mapping moves ([`Mapping::grow`]) and exclusively across a fork: a child
/// forked while another thread was between `mremap` and recording the new address would
/// inherit a `Mapping` pointing where nothing, or something else, is mapped.
static MOVING: RwLock<()> = RwLock::new(());

/// Keeps every mapping of this process where it is until the guard drops: held across every
/// `fork` once this process has mapped anything (see [`crate::lifecycle::ForkRank::Mappings`]).
fn hold_mappings_still() -> RwLockWriteGuard<'static, ()> {
    MOVING.write().unwrap_or_else(PoisonError::into_inner)
}

/// Registers the hold across a fork, once, before the first mapping can move.
fn register_lifecycle() {
    static REGISTERED: crate::lifecycle::ForkRegistration =
        crate::lifecycle::ForkRegistration::new();
    REGISTERED.ensure(crate::lifecycle::ForkRank::Mappings, || {
        Box::new(crate::lifecycle::JustRelease(hold_mappings_still()))
    });
}

/// One `MAP_SHARED` read-write mapping of part of a shared-memory file.
pub(crate) struct Mapping {
    ptr: NonNull<u8>,
    len: usize,
}

// SAFETY: a mapping is plain memory; the types that hold one synchronise every access to it.
unsafe impl Send for Mapping {}
// SAFETY: as above.
unsafe impl Sync for Mapping {}

impl Mapping {
    /// Maps `len` bytes of `fd` from `offset` (a multiple of the page size).
    pub(crate) fn new(fd: &impl AsFd, offset: u64, len: usize) -> io::Result<Self> {
        let length = NonZeroUsize::new(len).ok_or_else(|| io::Error::other("empty mapping"))?;
        // SAFETY: a fresh mapping at an address of the kernel's choosing aliases nothing.
        let ptr = unsafe {
            mmap(
                None,
                length,
                ProtFlags::PROT_READ | ProtFlags::PROT_WRITE,
                MapFlags::MAP_SHARED,
                fd.as_fd(),
                offset as i64,
            )
        }
        .map_err(io_error)?;
        Ok(Self {
            ptr: ptr.cast(),
            len,
        })
    }

    /// Grows the mapping to `len` bytes; its address may change, so no reference into the old
    /// range may outlive this call (the `&mut self` enforces it).
    pub(crate) fn grow(&mut self, len: usize) -> io::Result<()> {
        if len <= self.len {
            return Ok(());
        }
        register_lifecycle();
        let _no_fork = MOVING.read().unwrap_or_else(PoisonError::into_inner);
        // SAFETY: `ptr`/`len` describe a live mapping we own, and `&mut self` proves no
        // reference into it is alive.
        let moved = unsafe {
            mremap(
                self.ptr.cast(),
                self.len,
                len,
                MRemapFlags::MREMAP_MAYMOVE,
                None,
            )
        }
        .map_err(io_error)?;
        self.ptr = moved.cast();
        self.len = len;
        Ok(())
    }

    /// The start of the mapping.
    pub(crate) fn as_ptr(&self) -> *mut u8 {
        self.ptr.as_ptr()
    }

    /// The mapped length in bytes.
    pub(crate) fn len(&self) -> usize {
        self.len
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: we own this live mapping and nothing can reference it once we are dropped.
        // An error here could only mean a bad range, which `new`/`grow` never produce.
        let _ = unsafe { munmap(self.ptr.cast(), self.len) };
    }
}
