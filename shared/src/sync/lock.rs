//! [`Lock`] and [`RLock`]: Python's `multiprocessing.Lock` and `RLock`, each in a [`Block`]
//! of its own: a `Lock` is one lock word (see `lock_word`), an `RLock` a robust
//! process-shared mutex.
//!
//! # Owners
//!
//! Both record the thread that holds them (its kernel thread id: in the lock word, or in
//! glibc's mutex word), so that the next acquirer can be told when that thread dies. The same
//! record decides who may release: any other thread is refused. So a lock here is released by
//! the thread that acquired it, and a guard, which releases on drop, is not `Send`. CPython's
//! `Lock` is a semaphore that any thread or process may release; its `RLock` already refuses
//! a release by a non-owner, as here.
//!
//! A `Lock` is not glibc's mutex because of its price: the robust list that lets the kernel
//! release a dead thread's mutexes costs bookkeeping on every lock and unlock, which made an
//! uncontended `Lock` only 1.7× faster than CPython's (see `bench/README.md`). The lock word
//! is taken and released with one compare-and-swap each; a waiter finds a dead owner in
//! `/proc` instead.
//!
//! An `RLock` is glibc's *recursive* robust mutex: glibc keeps the owner and the count in the
//! mutex, and resets the count to one for the thread that takes over a dead owner's mutex.
//! Nothing of ours needs to be stored beside it, so nothing of ours can disagree with it.
//!
//! # A dead holder
//!
//! The next acquirer gets the lock with [`AcquireError::OwnerDied`], which carries its guard
//! (std's poisoning idiom). Only that acquirer is told: once it releases, the lock is an
//! ordinary free lock again. CPython's lock stays held by the dead process for ever, and every
//! later `acquire()` waits for ever (or until its timeout).

use std::fmt;
use std::io;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::error::{AcquireError, ReleaseError};
use super::guard::{Guard, RawLock, Site, deadline_after, held, wrap};
use super::lock_word::{LockWord, Unlocked};
use crate::block::{Block, BlockState};
use crate::sys::sync::{Kind, RobustMutex};

/// The state of a [`Lock`]'s block: one lock word.
#[repr(C)]
pub(crate) struct LockState {
    word: LockWord,
}

// SAFETY: one `u32` atomic: every bit pattern is a state (`lock_word` handles any), zero is
// a free lock, its alignment is 4.
unsafe impl BlockState for LockState {
    // Not "lock---1", glibc's mutex: a block of the old layout is refused.
    const KIND: [u8; 8] = *b"lock---2";

    unsafe fn init(&self) -> io::Result<()> {
        Ok(())
    }
}

/// The state of an [`RLock`]'s block: one recursive robust mutex.
#[repr(C)]
pub(crate) struct RLockState {
    mutex: RobustMutex,
}

// SAFETY: a `pthread_mutex_t` is integers, so every bit pattern is a value (glibc checks what
// it reads); zeroed is where `init` starts; its alignment is 8.
unsafe impl BlockState for RLockState {
    const KIND: [u8; 8] = *b"rlock--1";

    unsafe fn init(&self) -> io::Result<()> {
        // SAFETY: the caller's promise: fresh, and nobody uses it yet.
        unsafe { self.mutex.init_kind(Kind::Recursive) }
    }
}

/// The site of a [`Lock`]'s one lock word: its releases are recorded in the timeline, as its
/// acquires are.
struct Word;

impl Site<LockState> for Word {
    type Raw = LockWord;
    const RECORDED: Option<u64> = Some(crate::timeline::primitive::LOCK);

    #[inline]
    fn raw<'s>(&self, state: &'s LockState) -> &'s LockWord {
        &state.word
    }
}

/// The site of an [`RLock`]'s one mutex.
struct Mutex;

impl Site<RLockState> for Mutex {
    type Raw = RobustMutex;
    const RECORDED: Option<u64> = Some(crate::timeline::primitive::RLOCK);

    fn raw<'s>(&self, state: &'s RLockState) -> &'s RobustMutex {
        &state.mutex
    }
}

/// A lock shared by processes and threads. Python: `multiprocessing.Lock`.
///
/// [`acquire`](Self::acquire) returns a guard that releases the lock when dropped: the
/// counterpart of `with lock:`. Clone it, or pass it in a [`Process`](crate::Process)'s
/// arguments, to use it from another thread or process (fork or spawn).
///
/// ```
/// use shared::{Lock, Process};
///
/// fn filho(trava: Lock) -> Result<(), Box<dyn std::error::Error>> {
///     let _guarda = trava.acquire()?; // `with trava:`
///     Ok(())
/// }
///
/// let trava = Lock::new()?;
/// let mut processo = Process::new(filho, (trava.clone(),));
/// processo.start()?;
/// processo.join()?;
/// assert_eq!(processo.exitcode(), Some(0));
/// assert!(trava.try_acquire()?.is_some(), "the child released it");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct Lock {
    block: Arc<Block<LockState>>,
}

/// Proof that this thread holds a [`Lock`]; releases it when dropped. Not `Send`: the thread
/// that acquired a lock releases it.
///
/// A successful acquire's guard borrows the [`Lock`] handle (`'a`), which costs nothing. The
/// guard inside an acquire's error ([`AcquireError::OwnerDied`]) is a `LockGuard<'static>`
/// instead, which keeps the lock's block mapped (a reference count): the error borrows
/// nothing, so it can leave a function with `?` into a `Box<dyn Error>`, which needs
/// `'static`. Either converts to the other's type where a guard of the handle's lifetime is
/// expected.
///
/// A guard that a forked child inherited (through a thread-local, say) releases nothing
/// there: the lock is its parent's.
///
/// ```compile_fail
/// fn send<T: Send>(_: T) {}
/// let trava = shared::Lock::new().unwrap();
/// send(trava.acquire().unwrap()); // not `Send`: the thread that acquired it releases it
/// ```
#[must_use = "the lock is released as soon as the guard is dropped"]
pub struct LockGuard<'a>(Guard<'a, LockState, Word>);

impl Lock {
    /// A new, free lock. Python: `multiprocessing.Lock()`.
    ///
    /// # Errors
    /// The system refused the shared memory (`memfd_create`, `mmap`).
    pub fn new() -> io::Result<Lock> {
        Ok(Lock {
            block: Arc::new(Block::create(c"shared-lock", 0)?),
        })
    }

    fn word(&self) -> &LockWord {
        &self.block.state().word
    }

    /// Waits until the lock is free and takes it. Python: `lock.acquire()`, or `with lock:`.
    ///
    /// A thread that acquires a `Lock` it holds gets an error (`EDEADLK`), where Python would
    /// wait for itself for ever; use an [`RLock`] to acquire again.
    ///
    /// ```
    /// let trava = shared::Lock::new()?;
    /// {
    ///     let _guarda = trava.acquire()?;
    ///     assert!(trava.try_acquire()?.is_none(), "held");
    /// }
    /// assert!(trava.try_acquire()?.is_some(), "released when the guard was dropped");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// [`AcquireError::OwnerDied`] when the previous holder died holding it (a process killed,
    /// a thread that ended): the guard inside holds it now. A waiter notices such a death
    /// within 100 ms. [`AcquireError::Os`] (`EDEADLK`) when this thread holds it already.
    // Always inlined, with the guard's `lock`: see there.
    #[inline(always)]
    pub fn acquire(&self) -> Result<LockGuard<'_>, AcquireError<LockGuard<'static>>> {
        let _acquire = crate::timeline::span(crate::timeline::Kind::Acquire, || (0, 0));
        held(self.acquire_until(None))
    }

    /// As [`acquire`](Self::acquire), but gives up after `timeout`: `Ok(None)`. Python:
    /// `lock.acquire(timeout=t)`, which returns `False` then. A thread that holds the lock
    /// gets `Ok(None)` at once: nobody else can release it meanwhile.
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let trava = shared::Lock::new()?;
    /// let guarda = trava.acquire_timeout(Duration::from_millis(10))?;
    /// assert!(guarda.is_some());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// As [`acquire`](Self::acquire).
    pub fn acquire_timeout(
        &self,
        timeout: Duration,
    ) -> Result<Option<LockGuard<'_>>, AcquireError<LockGuard<'static>>> {
        self.acquire_until(deadline_after(timeout))
    }

    /// Takes the lock only if it is free now: `Ok(None)` if it is held. Python:
    /// `lock.acquire(False)` (`block=False`).
    ///
    /// ```
    /// let trava = shared::Lock::new()?;
    /// let guarda = trava.try_acquire()?.expect("free");
    /// assert!(trava.try_acquire()?.is_none());
    /// drop(guarda);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// It never sleeps; when the lock is held, it reads the holder's `/proc` entry to tell a
    /// dead holder (microseconds), so it is no way to spin on a held lock.
    ///
    /// # Errors
    /// [`AcquireError::OwnerDied`] when the holder died holding it: the guard inside holds it
    /// now.
    pub fn try_acquire(&self) -> Result<Option<LockGuard<'_>>, AcquireError<LockGuard<'static>>> {
        wrap(Guard::try_lock(&self.block, Word), LockGuard, LockGuard)
    }

    /// Releases the lock that this thread holds without a guard, after
    /// [`LockGuard::forget`]: Python's `lock.acquire()` … `lock.release()` pair.
    ///
    /// ```
    /// let trava = shared::Lock::new()?;
    /// trava.acquire()?.forget(); // held, with no guard
    /// assert!(trava.try_acquire()?.is_none());
    /// trava.release()?;
    /// assert!(trava.release().unwrap_err().is_not_held());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// [`ReleaseError::NotHeld`] when the calling thread does not hold it: free, or held by
    /// another thread or process (CPython's `Lock` lets any thread release it; see the crate's
    /// "Differences from Python").
    pub fn release(&self) -> Result<(), ReleaseError> {
        match self.word().unlock() {
            Ok(()) => Ok(()),
            Err(Unlocked::NotHeld) => Err(ReleaseError::NotHeld),
        }
    }

    #[inline]
    fn acquire_until(
        &self,
        deadline: Option<Instant>,
    ) -> Result<Option<LockGuard<'_>>, AcquireError<LockGuard<'static>>> {
        wrap(
            Guard::lock(&self.block, Word, deadline),
            LockGuard,
            LockGuard,
        )
    }
}

impl LockGuard<'_> {
    /// Keeps the lock held past the guard, for a later [`Lock::release`] from this thread.
    pub fn forget(self) {
        self.0.forget();
    }

    /// The same hold as a guard that keeps the block mapped itself, so borrows nothing: to
    /// keep the lock held past the handle it was acquired from, or to put it in an error
    /// that leaves a function with `?`.
    ///
    /// ```
    /// let trava = shared::Lock::new()?;
    /// let guarda: shared::LockGuard<'static> = trava.clone().acquire()?.into_owned();
    /// assert!(trava.try_acquire()?.is_none(), "still held");
    /// drop(guarda);
    /// assert!(trava.try_acquire()?.is_some());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn into_owned(self) -> LockGuard<'static> {
        LockGuard(self.0.into_owned())
    }
}

/// A re-entrant lock: the thread that holds it may acquire it again, and releases it once per
/// acquire. Python: `multiprocessing.RLock` (and the default lock of a
/// [`Condition`](crate::Condition)).
///
/// ```
/// let trava = shared::RLock::new()?;
/// let fora = trava.acquire()?;
/// let dentro = trava.acquire()?; // the owner again: no wait
/// drop(dentro);
/// drop(fora);
/// assert!(trava.release().unwrap_err().is_not_held());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct RLock {
    block: Arc<Block<RLockState>>,
}

/// Proof that this thread holds one level of an [`RLock`]; releases that level when dropped.
/// Not `Send`. It keeps the lock's block mapped itself (a reference count), so it borrows
/// nothing. A guard that a forked child inherited releases nothing there.
///
/// ```compile_fail
/// fn send<T: Send>(_: T) {}
/// let trava = shared::RLock::new().unwrap();
/// send(trava.acquire().unwrap()); // not `Send`: the thread that acquired it releases it
/// ```
#[must_use = "the level is released as soon as the guard is dropped"]
pub struct RLockGuard(Guard<'static, RLockState, Mutex>);

impl RLock {
    /// A new, free re-entrant lock. Python: `multiprocessing.RLock()`.
    ///
    /// # Errors
    /// The system refused the shared memory (`memfd_create`, `mmap`).
    pub fn new() -> io::Result<RLock> {
        Ok(RLock {
            block: Arc::new(Block::create(c"shared-rlock", 0)?),
        })
    }

    /// Takes the lock, or one more level of it if this thread holds it. Python:
    /// `rlock.acquire()`, `with rlock:`.
    ///
    /// # Errors
    /// [`AcquireError::OwnerDied`] when the previous holder died holding it (however many
    /// levels): the guard inside holds one level now. [`AcquireError::Os`] if the system
    /// refused, or the count would overflow.
    pub fn acquire(&self) -> Result<RLockGuard, AcquireError<RLockGuard>> {
        held(self.acquire_until(None))
    }

    /// As [`acquire`](Self::acquire), but gives up after `timeout`: `Ok(None)`. Python:
    /// `rlock.acquire(timeout=t)`.
    ///
    /// # Errors
    /// As [`acquire`](Self::acquire).
    pub fn acquire_timeout(
        &self,
        timeout: Duration,
    ) -> Result<Option<RLockGuard>, AcquireError<RLockGuard>> {
        self.acquire_until(deadline_after(timeout))
    }

    /// Takes the lock (or a level) only if that needs no wait: `Ok(None)` if another thread
    /// holds it. Python: `rlock.acquire(False)`.
    ///
    /// # Errors
    /// As [`acquire`](Self::acquire).
    pub fn try_acquire(&self) -> Result<Option<RLockGuard>, AcquireError<RLockGuard>> {
        wrap(
            Guard::try_lock(&self.block, Mutex),
            RLockGuard::new,
            RLockGuard,
        )
    }

    /// Releases one level that this thread holds without a guard, after
    /// [`RLockGuard::forget`]. Python: `rlock.release()`.
    ///
    /// ```
    /// let trava = shared::RLock::new()?;
    /// trava.acquire()?.forget();
    /// trava.acquire()?.forget();
    /// trava.release()?;
    /// trava.release()?;
    /// assert!(trava.release().unwrap_err().is_not_held());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// [`ReleaseError::NotHeld`] when the calling thread holds no level. Python:
    /// `RuntimeError: cannot release un-acquired lock`.
    pub fn release(&self) -> Result<(), ReleaseError> {
        // SAFETY: an `RLock` guards no data, so releasing a level that a guard of this thread
        // stands for breaks no exclusive access; that guard's own unlock then changes nothing
        // (`EPERM`), which it ignores.
        unsafe { RawLock::unlock(self.mutex()) }
    }

    fn mutex(&self) -> &RobustMutex {
        &self.block.state().mutex
    }

    fn acquire_until(
        &self,
        deadline: Option<Instant>,
    ) -> Result<Option<RLockGuard>, AcquireError<RLockGuard>> {
        let _acquire = crate::timeline::span(crate::timeline::Kind::Acquire, || {
            (0, crate::timeline::primitive::RLOCK)
        });
        wrap(
            Guard::lock(&self.block, Mutex, deadline),
            RLockGuard::new,
            RLockGuard,
        )
    }
}

impl RLockGuard {
    /// Keeps the block mapped itself: the guard has no lifetime.
    fn new(guard: Guard<'_, RLockState, Mutex>) -> RLockGuard {
        RLockGuard(guard.into_owned())
    }

    /// Keeps this level held past the guard, for a later [`RLock::release`] from this thread.
    pub fn forget(self) {
        self.0.forget();
    }
}

/// The locks a [`Condition`](crate::Condition) can stand on: [`Lock`] and [`RLock`]. Sealed;
/// its methods are the condition's own business.
pub trait ConditionLock: private::Sealed + Clone + Send + Sync + 'static {
    /// The guard of one acquire, through a handle borrowed for `'a`; `Guard<'static>` is the
    /// one that an acquire's error carries.
    type Guard<'a>;

    #[doc(hidden)]
    fn acquire_until(
        &self,
        deadline: Option<Instant>,
    ) -> Result<Option<Self::Guard<'_>>, AcquireError<Self::Guard<'static>>>;

    #[doc(hidden)]
    fn release_one(&self) -> Result<(), ReleaseError>;

    /// Whether `guard` is a guard of this lock (of its block, through any handle).
    #[doc(hidden)]
    fn owns(&self, guard: &Self::Guard<'_>) -> bool;

    /// Releases every level this thread holds; how many. Consumes the guard of one of them.
    #[doc(hidden)]
    fn release_all(guard: Self::Guard<'_>) -> u32;

    /// Takes `levels - 1` more levels (`guard` holds one).
    #[doc(hidden)]
    fn restore(guard: &Self::Guard<'_>, levels: u32) -> io::Result<()>;
}

mod private {
    pub trait Sealed {}
    impl Sealed for super::Lock {}
    impl Sealed for super::RLock {}
}

impl ConditionLock for Lock {
    type Guard<'a> = LockGuard<'a>;

    fn acquire_until(
        &self,
        deadline: Option<Instant>,
    ) -> Result<Option<LockGuard<'_>>, AcquireError<LockGuard<'static>>> {
        Lock::acquire_until(self, deadline)
    }

    fn release_one(&self) -> Result<(), ReleaseError> {
        self.release()
    }

    fn owns(&self, guard: &LockGuard<'_>) -> bool {
        std::ptr::eq(guard.0.raw(), self.word())
    }

    fn release_all(guard: LockGuard<'_>) -> u32 {
        drop(guard);
        1
    }

    fn restore(_: &LockGuard<'_>, _: u32) -> io::Result<()> {
        Ok(())
    }
}

impl ConditionLock for RLock {
    type Guard<'a> = RLockGuard;

    fn acquire_until(
        &self,
        deadline: Option<Instant>,
    ) -> Result<Option<RLockGuard>, AcquireError<RLockGuard>> {
        RLock::acquire_until(self, deadline)
    }

    fn release_one(&self) -> Result<(), ReleaseError> {
        self.release()
    }

    fn owns(&self, guard: &RLockGuard) -> bool {
        std::ptr::eq(guard.0.raw(), self.mutex())
    }

    fn release_all(guard: RLockGuard) -> u32 {
        let lock = RLock {
            block: Arc::clone(guard.0.block()),
        };
        // The guard's level is released below with the others: glibc counts levels, not
        // guards. The outer guards of this thread stay valid: `restore` takes the levels back
        // before they can be dropped (they are borrowed below the condition's wait).
        guard.forget();
        let mut levels = 0;
        while lock.release().is_ok() {
            levels += 1;
        }
        levels.max(1)
    }

    fn restore(guard: &RLockGuard, levels: u32) -> io::Result<()> {
        for _ in 1..levels {
            // Unguarded: the levels are released again by `release_all`, or by the guards of
            // this thread that they stand for.
            if guard.0.raw().lock_until(None)?.is_none() {
                return Err(io::ErrorKind::TimedOut.into());
            }
        }
        Ok(())
    }
}

impl fmt::Debug for Lock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Lock").finish_non_exhaustive()
    }
}

impl fmt::Debug for RLock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RLock").finish_non_exhaustive()
    }
}

impl fmt::Debug for LockGuard<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LockGuard").finish_non_exhaustive()
    }
}

impl fmt::Debug for RLockGuard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RLockGuard").finish_non_exhaustive()
    }
}

/// A block handle as it crosses to a spawned child (see [`Block::serialize`]); `what` names
/// the handle in errors.
pub(crate) struct Handle<'a, S> {
    pub(crate) block: &'a Block<S>,
    pub(crate) what: &'static str,
}

impl<S: BlockState> Serialize for Handle<'_, S> {
    fn serialize<Z: Serializer>(&self, serializer: Z) -> Result<Z::Ok, Z::Error> {
        self.block.serialize(serializer, self.what)
    }
}

/// A block received by a spawned child, checked by [`Block::open`].
pub(crate) struct Received<S>(pub(crate) Block<S>);

impl<'de, S: BlockState> Deserialize<'de> for Received<S> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Block::deserialize(deserializer).map(Received)
    }
}

impl Serialize for Lock {
    fn serialize<Z: Serializer>(&self, serializer: Z) -> Result<Z::Ok, Z::Error> {
        self.block.serialize(serializer, "Lock")
    }
}

impl<'de> Deserialize<'de> for Lock {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Ok(Lock {
            block: Arc::new(Block::deserialize(deserializer)?),
        })
    }
}

impl Serialize for RLock {
    fn serialize<Z: Serializer>(&self, serializer: Z) -> Result<Z::Ok, Z::Error> {
        self.block.serialize(serializer, "RLock")
    }
}

impl<'de> Deserialize<'de> for RLock {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Ok(RLock {
            block: Arc::new(Block::deserialize(deserializer)?),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Another process wrote a thread id that never existed (above any `pid_max`) into the
    /// word: a dead owner, not a hang.
    #[test]
    fn a_lock_whose_word_names_no_thread_is_a_dead_owners() {
        let lock = Lock::new().unwrap();
        lock.block.state().word.store(0x3fff_ffff);
        let guard = lock.acquire().unwrap_err().into_guard().expect("OwnerDied");
        assert!(
            lock.try_acquire().unwrap().is_none(),
            "held by this thread now"
        );
        drop(guard);
        assert!(
            lock.try_acquire().unwrap().is_some(),
            "an ordinary lock again"
        );
    }

    /// The guard in an acquire's error keeps the block itself: the error outlives the handle
    /// it came from, as a `Box<dyn Error>` returned with `?` would, and still releases.
    #[test]
    fn an_errors_guard_outlives_its_handle() {
        let lock = Lock::new().unwrap();
        lock.block.state().word.store(0x3fff_ffff);
        let error: Box<dyn std::error::Error> = {
            let handle = lock.clone();
            handle.acquire().unwrap_err().into()
        };
        assert!(lock.try_acquire().unwrap().is_none(), "held by the error");
        drop(error);
        let guard = lock.try_acquire().unwrap().expect("released");
        assert!(guard.0.is_borrowed(), "no count");
    }
}
