//! The errors of the synchronisation primitives, in one place.

use std::fmt;
use std::io;

/// Why an acquire (of a lock, a semaphore slot, a condition's lock, a value's lock) did not
/// simply succeed. A timeout is not an error: the `_timeout` and `try_` forms return `None`.
#[non_exhaustive]
pub enum AcquireError<G> {
    /// The previous holder died holding it (SIGKILL, say). The caller holds it now, through
    /// the guard inside, and what it protects may be half-changed: repair it, then go on.
    /// The Rust idiom is std's `PoisonError`, which also carries its guard. CPython's lock
    /// stays held forever by the dead process instead.
    OwnerDied(G),
    /// The system refused, or another process corrupted the shared state.
    Os(io::Error),
}

impl<G> AcquireError<G> {
    /// Whether the previous holder died holding it.
    pub fn is_owner_died(&self) -> bool {
        matches!(self, AcquireError::OwnerDied(_))
    }

    /// The guard of an acquire whose previous holder died, `None` for other errors.
    pub fn into_guard(self) -> Option<G> {
        match self {
            AcquireError::OwnerDied(guard) => Some(guard),
            AcquireError::Os(_) => None,
        }
    }
}

impl<G> fmt::Display for AcquireError<G> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AcquireError::OwnerDied(_) => f.write_str(
                "the previous holder died holding it; it is held now, repair what it protects",
            ),
            AcquireError::Os(error) if error.kind() == io::ErrorKind::Deadlock => f.write_str(
                "cannot acquire: this thread holds it already, and it is not re-entrant (a \
                     Value's lock is not Python's RLock): read and write through the guard you \
                     hold (`*guard`), not with value() or set_value()",
            ),
            AcquireError::Os(_) => f.write_str("cannot acquire"),
        }
    }
}

crate::debug_as_display!(AcquireError<G>);

impl<G> std::error::Error for AcquireError<G> {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            AcquireError::Os(error) => Some(error),
            AcquireError::OwnerDied(_) => None,
        }
    }
}

impl<G> From<io::Error> for AcquireError<G> {
    fn from(error: io::Error) -> Self {
        AcquireError::Os(error)
    }
}

/// Why a `release` failed.
#[non_exhaustive]
pub enum ReleaseError {
    /// The calling thread does not hold it. Python: `RuntimeError: cannot release
    /// un-acquired lock` (and, for an `RLock`, "cannot release un-acquired lock" too).
    NotHeld,
    /// A `BoundedSemaphore` was released more times than it was acquired. Python:
    /// `ValueError: Semaphore released too many times`.
    TooManyReleases,
    /// The system refused, or another process corrupted the shared state.
    Os(io::Error),
}

impl ReleaseError {
    /// Whether the calling thread did not hold it.
    pub fn is_not_held(&self) -> bool {
        matches!(self, ReleaseError::NotHeld)
    }
}

impl fmt::Display for ReleaseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReleaseError::NotHeld => f.write_str("cannot release un-acquired lock"),
            ReleaseError::TooManyReleases => f.write_str("semaphore released too many times"),
            ReleaseError::Os(_) => f.write_str("cannot release"),
        }
    }
}

crate::debug_as_display!(ReleaseError);

impl std::error::Error for ReleaseError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ReleaseError::Os(error) => Some(error),
            _ => None,
        }
    }
}

impl From<io::Error> for ReleaseError {
    fn from(error: io::Error) -> Self {
        ReleaseError::Os(error)
    }
}

/// A [`Barrier`](crate::Barrier) is broken: it was aborted or reset while parties waited, a
/// wait timed out, or a party died while the others waited. Python:
/// `threading.BrokenBarrierError`.
#[non_exhaustive]
pub enum BrokenBarrierError {
    /// `abort()` or `reset()` was called, or a waiting party's wait timed out.
    Broken,
    /// A party died while the others waited (CPython's barrier would wait forever).
    PartyDied,
    /// The system refused, or another process corrupted the shared state.
    Os(io::Error),
}

impl fmt::Display for BrokenBarrierError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BrokenBarrierError::Broken => f.write_str("the barrier is broken"),
            BrokenBarrierError::PartyDied => {
                f.write_str("the barrier is broken: a party died while the others waited")
            }
            BrokenBarrierError::Os(_) => f.write_str("the barrier failed"),
        }
    }
}

crate::debug_as_display!(BrokenBarrierError);

impl std::error::Error for BrokenBarrierError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            BrokenBarrierError::Os(error) => Some(error),
            _ => None,
        }
    }
}

impl From<io::Error> for BrokenBarrierError {
    fn from(error: io::Error) -> Self {
        BrokenBarrierError::Os(error)
    }
}
