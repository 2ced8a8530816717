//! Synchronisation primitives and shared values across processes and threads, with the names
//! and semantics of Python's `multiprocessing` (`Lock`, `RLock`, `Semaphore`,
//! `BoundedSemaphore`, `Event`, `Condition`, `Barrier`, `Value`, `Array`).
//!
//! Each lives in a [`Block`](crate::block::Block) of its own, a sealed memfd that every
//! process holding it maps; a handle crosses to a child like a [`Queue`](crate::Queue), in a
//! [`Process`](crate::Process)'s arguments. Exclusion rests on glibc's robust mutexes, and for
//! [`Lock`], [`Value`] and [`Array`] on a lock word (`lock_word`) that asks `/proc` whether its
//! owner lives: when a holder dies, the next acquirer gets the lock and is told
//! ([`AcquireError::OwnerDied`]), where CPython's would stay locked forever.
//!
//! Every lock is held through one guard (`guard`), in the style of lock_api: an unsafe raw
//! lock below (`raw`: the robust mutex and the lock word), and a safe guard above that keeps
//! the block mapped, unlocks on drop, is not `Send`, ignores a forked child's copy of it, and
//! runs what its primitive adds around the unlock. The public guards wrap it.

mod barrier;
mod condition;
mod error;
mod event;
mod guard;
mod lock;
mod lock_word;
mod raw;
mod semaphore;
mod value;

pub use barrier::{Barrier, MAX_PARTIES};
pub use condition::Condition;
pub use error::{AcquireError, BrokenBarrierError, ReleaseError};
pub use event::Event;
pub use lock::{ConditionLock, Lock, LockGuard, RLock, RLockGuard};
pub use semaphore::{BoundedSemaphore, MAX_SLOTS, Semaphore, SemaphoreGuard};
pub use value::{Array, ArrayGuard, RawArray, RawValue, Value, ValueGuard};
