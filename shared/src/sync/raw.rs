//! [`RawLock`]: the unsafe half of every lock under `sync`'s one guard, in the style of
//! lock_api's `RawMutex`. Two implement it: glibc's robust process-shared mutex
//! ([`RobustMutex`], under `RLock`, the slots of a `Semaphore` and a `Barrier`) and the lock
//! word ([`LockWord`], under `Lock`, `Value` and `Array`). Nothing above
//! [`Guard`](super::guard::Guard) pairs a lock with its unlock by hand.

use std::io;
use std::time::Instant;

use super::error::ReleaseError;
use super::lock_word::{LockWord, Unlocked};
use crate::sys::sync::{RobustMutex, Taken};

/// A lock in shared memory that records the thread holding it: taken with one of the lock
/// calls, which say how ([`Taken`]: from a release, or from an owner that died), and given
/// back with [`unlock`](Self::unlock).
///
/// # Safety
/// An implementation promises, whatever bytes another process leaves in the memory it lives
/// in (short of what its own docs say every holder of that memory is trusted with: glibc's
/// robust-list pointers in a [`RobustMutex`]):
/// - no call has undefined behaviour, and none writes outside `self`;
/// - [`lock_until`](Self::lock_until) and [`try_lock`](Self::try_lock) return `Ok(Some(_))`
///   only when the calling thread is now the recorded owner (of one more level, for a lock
///   that counts them), and the lock then stays this thread's until it unlocks it: no thread
///   that keeps to the protocol takes it meanwhile (a process that rewrites the memory can;
///   every holder of a block is trusted with it, as with glibc's own mutex words);
/// - [`unlock`](Self::unlock) changes nothing unless the calling thread is the recorded owner.
pub(crate) unsafe trait RawLock {
    /// Takes the lock, waiting at most until `deadline` (`None`: no limit); `Ok(None)` at the
    /// deadline.
    ///
    /// # Errors
    /// `EDEADLK` when the calling thread holds a lock that does not count levels and there is
    /// no deadline; what the system reports for memory another process rewrote.
    fn lock_until(&self, deadline: Option<Instant>) -> io::Result<Option<Taken>>;

    /// Takes the lock only if that needs no wait; `Ok(None)` when another thread holds it
    /// (or this one, for a lock that does not count levels).
    ///
    /// # Errors
    /// As [`lock_until`](Self::lock_until).
    fn try_lock(&self) -> io::Result<Option<Taken>>;

    /// Releases one level that the calling thread holds.
    ///
    /// # Errors
    /// [`ReleaseError::NotHeld`] when the calling thread holds none: nothing changed.
    /// [`ReleaseError::Os`] when the system refused memory another process rewrote.
    ///
    /// # Safety
    /// No live guard of the calling thread may stand for the level released while something
    /// relies on it for exclusive access to data.
    unsafe fn unlock(&self) -> Result<(), ReleaseError>;
}

// SAFETY: glibc's robust mutex records its owner's TID in its futex word, and the kernel
// hands a dead owner's mutex to the next locker marked `EOWNERDEAD` (made consistent by
// `lock_unguarded`); glibc checks the owner on every unlock of a robust mutex (`EPERM`
// otherwise), and reports the words another process rewrote as errors or as a held or free
// lock. The one exception is the robust-list pointers, which glibc follows on unlock:
// `RobustMutex`'s docs say why every holder of the memfd is trusted not to forge them, as
// before this trait. `RobustMutex`'s invariant keeps it initialised and mapped.
unsafe impl RawLock for RobustMutex {
    #[inline]
    fn lock_until(&self, deadline: Option<Instant>) -> io::Result<Option<Taken>> {
        self.lock_unguarded(deadline)
    }

    #[inline]
    fn try_lock(&self) -> io::Result<Option<Taken>> {
        self.try_lock_unguarded()
    }

    unsafe fn unlock(&self) -> Result<(), ReleaseError> {
        // SAFETY: forwarded to the caller.
        match unsafe { RobustMutex::unlock(self) } {
            Ok(()) => Ok(()),
            Err(error) if error.raw_os_error() == Some(nix::libc::EPERM) => {
                Err(ReleaseError::NotHeld)
            }
            Err(error) => Err(ReleaseError::Os(error)),
        }
    }
}

// SAFETY: the word is one atomic, so any value is a state to read (see `lock_word`'s docs
// on a corrupted word); a lock call returns a `Taken` only after its compare-and-swap wrote
// the caller's TID, which no thread keeping to the protocol overwrites until that thread
// releases; a release swaps the word only from a value that names the caller.
unsafe impl RawLock for LockWord {
    #[inline]
    fn lock_until(&self, deadline: Option<Instant>) -> io::Result<Option<Taken>> {
        self.lock(deadline)
    }

    #[inline]
    fn try_lock(&self) -> io::Result<Option<Taken>> {
        Ok(LockWord::try_lock(self))
    }

    #[inline]
    unsafe fn unlock(&self) -> Result<(), ReleaseError> {
        match LockWord::unlock(self) {
            Ok(()) => Ok(()),
            Err(Unlocked::NotHeld) => Err(ReleaseError::NotHeld),
        }
    }
}
