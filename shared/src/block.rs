//! A fixed state in a sealed memfd of its own, mapped by every process that holds it: the
//! storage under the synchronisation primitives and shared values.
//!
//! # Layout
//!
//! ```text
//! offset 0    Header: magic "shblock1", the state's kind, the trailing length
//! offset 64   S, the state (atomics and robust mutexes)
//! then        the trailing bytes (an Array's elements), 64-byte aligned
//! ```
//!
//! # Trust
//!
//! A block arrives in a spawned child as a descriptor that another process chose. [`open`]
//! accepts only a memfd sealed against shrinking (so no mapping of it can ever fault), long
//! enough for what its header says, with the magic and the kind of state asked for. Every
//! field of a state is an atomic, a robust mutex or an integer (see [`BlockState`]), so any
//! bytes another process writes there are a valid state to read; each primitive checks the
//! numbers it reads before it uses them.
//!
//! [`open`]: Block::open

use std::ffi::CStr;
use std::io;
use std::marker::PhantomData;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::handoff::{Exported, Inherited};
use crate::sys::fd::{self, Kind};
use crate::sys::shm::{self, Mapping, Seal};

/// A state that can live in a [`Block`].
///
/// # Safety
/// Every bit pattern of `Self` must be a valid value (fields are atomics, `RobustMutex`es,
/// plain integers or arrays of those), because other processes may write any bytes over it;
/// all zeros must be a state [`init`](Self::init) can start from; and `align_of::<Self>()`
/// must be at most 64.
pub(crate) unsafe trait BlockState: Sync + Send + 'static {
    /// Eight bytes that name the kind of state, so that a descriptor of one kind of block is
    /// refused as another.
    const KIND: [u8; 8];

    /// Sets up a fresh, zeroed state (initialises its mutexes, say) before any other process
    /// or thread can reach it.
    ///
    /// # Safety
    /// `self` is fresh and zeroed, and nothing else uses it until this returns.
    unsafe fn init(&self) -> io::Result<()>;
}

const MAGIC: [u8; 8] = *b"shblock1";
const STATE_OFFSET: usize = 64;
const SEALS: [Seal; 2] = [Seal::Shrink, Seal::Sealing];

#[repr(C)]
struct Header {
    magic: [u8; 8],
    kind: [u8; 8],
    /// The length of the trailing bytes, little-endian.
    trailing: [u8; 8],
}

/// One process's mapping of a block holding an `S` and `trailing` bytes after it.
pub(crate) struct Block<S> {
    file: OwnedFd,
    map: Mapping,
    trailing: usize,
    state: PhantomData<S>,
}

// SAFETY: the mapping is shared memory whose state is `Sync` (atomics and process-shared
// mutexes); the trailing bytes are reached only through the primitives' own locking.
unsafe impl<S: BlockState> Send for Block<S> {}
// SAFETY: as above.
unsafe impl<S: BlockState> Sync for Block<S> {}

impl<S: BlockState> Block<S> {
    /// Where the trailing bytes start.
    const TRAILING_OFFSET: usize = (STATE_OFFSET + size_of::<S>()).next_multiple_of(64);

    /// A new block named `name` (as `/proc/PID/fd` shows it), with `trailing` zeroed bytes
    /// after the state.
    ///
    /// # Errors
    /// The system refused the memory, or initialising the state failed.
    pub(crate) fn create(name: &CStr, trailing: usize) -> io::Result<Block<S>> {
        const { assert!(align_of::<S>() <= 64) };
        let len = Self::TRAILING_OFFSET
            .checked_add(trailing)
            .ok_or_else(|| io::Error::from(io::ErrorKind::OutOfMemory))?;
        let file = shm::create(name, len as u64)?;
        shm::seal(&file, &SEALS)?;
        let map = Mapping::new(&file, 0, len)?;
        // SAFETY: the mapping is fresh, zeroed, page-aligned and `len` bytes long, which
        // covers the header and the state; no other process or thread has the memfd yet.
        unsafe {
            map.as_ptr().cast::<Header>().write(Header {
                magic: MAGIC,
                kind: S::KIND,
                trailing: (trailing as u64).to_le_bytes(),
            });
        }
        let block: Block<S> = Block {
            file,
            map,
            trailing,
            state: PhantomData,
        };
        // SAFETY: the state is fresh and zeroed, and nothing else can reach it yet.
        unsafe { block.state().init()? };
        Ok(block)
    }

    /// Opens a block that another process created, from a descriptor of its memfd.
    ///
    /// # Errors
    /// `InvalidData` for anything but a memfd sealed as [`create`](Self::create) seals it,
    /// holding a block of this kind, as long as its header says.
    pub(crate) fn open(file: OwnedFd) -> io::Result<Block<S>> {
        let refused = || {
            io::Error::new(
                io::ErrorKind::InvalidData,
                "not a synchronisation block of this kind made by shared",
            )
        };
        // Sealed first: a file that cannot shrink stays as long as checked below.
        if fd::kind(file.as_fd())? != Kind::Regular || !shm::is_sealed(&file, &SEALS) {
            return Err(refused());
        }
        let len = usize::try_from(shm::file_len(&file)?).map_err(|_| refused())?;
        if len < Self::TRAILING_OFFSET {
            return Err(refused());
        }
        let map = Mapping::new(&file, 0, len)?;
        // SAFETY: the file, which cannot shrink, covers the header; a header is plain bytes,
        // so any content is a valid one to read. Volatile: another process holding the memfd
        // may be writing it; the bytes are read once, into a private copy, and checked.
        let header = unsafe { map.as_ptr().cast::<Header>().read_volatile() };
        let trailing = usize::try_from(u64::from_le_bytes(header.trailing)).ok();
        let fits = trailing.is_some_and(|t| Self::TRAILING_OFFSET.checked_add(t) == Some(len));
        if header.magic != MAGIC || header.kind != S::KIND || !fits {
            return Err(refused());
        }
        Ok(Block {
            file,
            map,
            trailing: trailing.unwrap_or_default(),
            state: PhantomData,
        })
    }

    /// The shared state.
    pub(crate) fn state(&self) -> &S {
        // SAFETY: the mapping covers the state (checked by `create` and `open`; the file
        // cannot shrink), lives as long as `self` and never moves; the offset is 64-aligned
        // in a page-aligned mapping, which satisfies `S`'s alignment; and any bytes are a
        // valid `S` (the `BlockState` contract).
        unsafe { &*self.map.as_ptr().add(STATE_OFFSET).cast::<S>() }
    }

    /// The trailing bytes: their start (64-byte aligned) and length. The caller synchronises
    /// every access (other processes map the same bytes).
    pub(crate) fn trailing(&self) -> (*mut u8, usize) {
        // SAFETY: `create` and `open` checked that the mapping is exactly the trailing offset
        // plus `self.trailing` bytes long.
        (
            unsafe { self.map.as_ptr().add(Self::TRAILING_OFFSET) },
            self.trailing,
        )
    }

    /// The memfd, for handing the block to a spawned child.
    pub(crate) fn file(&self) -> BorrowedFd<'_> {
        self.file.as_fd()
    }

    /// The block as it crosses to a spawned child: its descriptor. `what` names the handle
    /// in errors.
    pub(crate) fn serialize<Z: Serializer>(
        &self,
        serializer: Z,
        what: &'static str,
    ) -> Result<Z::Ok, Z::Error> {
        Exported {
            fd: self.file(),
            what,
        }
        .serialize(serializer)
    }

    /// A block received by a spawned child, checked by [`open`](Self::open).
    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Block<S>, D::Error> {
        let Inherited(file) = Inherited::deserialize(deserializer)?;
        Block::open(file).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU64, Ordering};

    use super::*;

    #[repr(C)]
    struct Counter(AtomicU64);

    // SAFETY: one atomic: every bit pattern is valid, zero is the start, align 8.
    unsafe impl BlockState for Counter {
        const KIND: [u8; 8] = *b"counter1";
        unsafe fn init(&self) -> io::Result<()> {
            self.0.store(7, Ordering::Relaxed);
            Ok(())
        }
    }

    #[repr(C)]
    struct Other(AtomicU64);

    // SAFETY: as `Counter`.
    unsafe impl BlockState for Other {
        const KIND: [u8; 8] = *b"other--1";
        unsafe fn init(&self) -> io::Result<()> {
            Ok(())
        }
    }

    fn reopen<S: BlockState>(block: &Block<S>) -> io::Result<Block<S>> {
        Block::open(block.file().try_clone_to_owned()?)
    }

    #[test]
    fn a_block_is_shared_through_its_descriptor() {
        let block = Block::<Counter>::create(c"test-block", 100).unwrap();
        assert_eq!(block.state().0.load(Ordering::Relaxed), 7, "init ran");
        let other = reopen(&block).unwrap();
        other.state().0.fetch_add(1, Ordering::Relaxed);
        assert_eq!(block.state().0.load(Ordering::Relaxed), 8);
        assert_eq!(other.trailing().1, 100);
        assert_eq!(other.trailing().0 as usize % 64, 0);
    }

    #[test]
    fn open_refuses_another_kind_a_wrong_length_and_what_create_did_not_make() {
        let block = Block::<Counter>::create(c"test-block", 0).unwrap();
        assert!(Block::<Other>::open(block.file().try_clone_to_owned().unwrap()).is_err());

        let unsealed = shm::create(c"test-block", 4096).unwrap();
        assert!(Block::<Counter>::open(unsealed).is_err());

        // The header says more trailing bytes than the file has.
        let block = Block::<Counter>::create(c"test-block", 8).unwrap();
        // SAFETY: the test owns the mapping; it writes the header as another process could.
        unsafe {
            (*block.map.as_ptr().cast::<Header>()).trailing = u64::MAX.to_le_bytes();
        }
        assert!(reopen(&block).is_err());

        let file = std::fs::File::open("/proc/self/exe").unwrap();
        assert!(Block::<Counter>::open(file.into()).is_err());
    }

    #[test]
    fn a_block_cannot_be_truncated() {
        let block = Block::<Counter>::create(c"test-block", 0).unwrap();
        let file = std::fs::File::from(block.file().try_clone_to_owned().unwrap());
        let error = file.set_len(0).unwrap_err();
        assert_eq!(error.raw_os_error(), Some(nix::libc::EPERM));
    }
}
