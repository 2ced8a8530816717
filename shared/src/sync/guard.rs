//! The one guard of every lock under `sync`, in the style of lock_api (behind parking_lot):
//! an unsafe raw lock below ([`RawLock`]), a safe [`Guard`] above that unlocks on drop, and a
//! [`MappedGuard`] that views the data a lock protects (lock_api's `MappedMutexGuard`). The
//! public guards (`LockGuard`, `RLockGuard`, `ValueGuard`, `ArrayGuard`, a `SemaphoreGuard`'s
//! slot) and a `Barrier`'s hold of its state are thin wrappers around it.
//!
//! # What a guard does, in one place
//!
//! - **Keeps the block mapped.** A guard either borrows the handle it was acquired through
//!   (free), or holds a count of the block (`Arc`): the owned form, which the public guards
//!   without a lifetime use, and which an acquire's error carries, so that the error borrows
//!   nothing and can leave a function with `?` into a `Box<dyn Error>`.
//! - **Unlocks on drop**, once; [`forget`](Guard::forget) keeps the lock held for an explicit
//!   release instead.
//! - **Is not `Send`**: both raw locks record the thread that holds them, and only that
//!   thread may unlock.
//! - **Acts only on the thread that took it.** Not being `Send`, a guard reaches another
//!   thread only through `fork`: a forked child's copy of a thread-local, say. There the lock
//!   is still the parent's, so the child's drop releases nothing, records nothing and runs no
//!   hook (a semaphore would otherwise count its parent's unit free), and a view refuses to
//!   dereference.
//! - **Around the unlock**, what its primitive adds ([`Site`]): bookkeeping done while still
//!   held (a semaphore's bitmap of held slots, a barrier's futex word), the release recorded
//!   in the timeline (`Lock`, `Value`, `Array`), and the waiters woken after the unlock.
//! - **Reports a dead holder**: an acquire that took over the lock of an owner that died
//!   returns its guard inside [`AcquireError::OwnerDied`] (std's poisoning idiom).

use std::io;
use std::marker::PhantomData;
use std::mem::ManuallyDrop;
use std::ops::{Deref, DerefMut};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::error::AcquireError;
use super::lock_word::LockWord;
pub(crate) use super::raw::RawLock;
use crate::block::{Block, BlockState};
use crate::sys::sync::Taken;
use crate::sys::thread::cached_id;

/// Where a guard's raw lock sits in a block's state `S`, and what a release does beside the
/// unlock. A site is a small value that the guard keeps: a unit type for a block with one
/// lock, a slot's index for a semaphore.
pub(crate) trait Site<S> {
    /// The lock at this site.
    type Raw: RawLock;

    /// Whether a release is recorded in the timeline (as the primitive records its acquire),
    /// and as which primitive (`timeline::primitive`).
    const RECORDED: Option<u64> = None;

    /// The lock at this site of `state`; the same lock every time.
    fn raw<'s>(&self, state: &'s S) -> &'s Self::Raw;

    /// Runs just before the unlock, while the lock is still held.
    #[inline]
    fn before_unlock(&self, _state: &S) {}

    /// Runs just after the unlock: wakes whoever waits for this release.
    #[inline]
    fn after_unlock(&self, _state: &S) {}
}

/// The thread that took a hold (its kernel id), told apart from a forked child's copy of it.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Taker(u32);

impl Taker {
    /// The calling thread.
    #[inline]
    pub(crate) fn here() -> Taker {
        Taker(cached_id())
    }

    /// Whether the calling thread is the one that took the hold. Only a forked child's copy
    /// of a hold can be elsewhere, and its thread has an id of its own (`sys::thread`
    /// refreshes the cache after `fork`), different from the taker's, which was alive when the
    /// child was forked.
    #[inline]
    pub(crate) fn is_here(self) -> bool {
        self.0 == cached_id()
    }
}

/// How a guard keeps its block mapped, and the thread that took the hold. One enum, so that
/// the taker fills the room beside the tag: a guard of one lock is two words, as `Lock`'s
/// hand-written guard was.
enum Keep<'a, S> {
    /// Through the handle it was acquired from.
    Borrowed(&'a Arc<Block<S>>, Taker),
    /// With a count of its own.
    Owned(Arc<Block<S>>, Taker),
}

impl<S> Keep<'_, S> {
    #[inline]
    fn block(&self) -> &Arc<Block<S>> {
        match self {
            Keep::Borrowed(block, _) => block,
            Keep::Owned(block, _) => block,
        }
    }

    #[inline]
    fn taker(&self) -> Taker {
        match self {
            Keep::Borrowed(_, taker) | Keep::Owned(_, taker) => *taker,
        }
    }

    fn into_owned(self) -> Keep<'static, S> {
        match self {
            Keep::Borrowed(block, taker) => Keep::Owned(Arc::clone(block), taker),
            Keep::Owned(block, taker) => Keep::Owned(block, taker),
        }
    }
}

/// What an acquire returns: a guard, `None` at the deadline, or an error that carries the
/// owned guard of a lock whose previous holder died.
pub(crate) type Acquired<'a, S, L> =
    Result<Option<Guard<'a, S, L>>, AcquireError<Guard<'static, S, L>>>;

/// Proof that this thread holds the lock at site `L` of a block whose state is `S`; unlocks
/// it when dropped. See the module's docs for all it does.
#[must_use = "the lock is released as soon as the guard is dropped"]
pub(crate) struct Guard<'a, S: BlockState, L: Site<S>> {
    keep: Keep<'a, S>,
    site: L,
    /// Not `Send` (nor `Sync`): the raw lock records this thread as its owner.
    not_send: PhantomData<*const ()>,
}

impl<'a, S: BlockState, L: Site<S>> Guard<'a, S, L> {
    /// Takes the lock at `site` of `block`, waiting at most until `deadline` (`None`: no
    /// limit); the guard borrows `block`. `Ok(None)` at the deadline.
    ///
    /// # Errors
    /// [`AcquireError::OwnerDied`], with a guard that keeps the block mapped itself, when the
    /// previous holder died holding the lock; [`AcquireError::Os`] as
    /// [`RawLock::lock_until`].
    // Always inlined, as `Lock::acquire` is: returned through memory, the guard was copied
    // with a load that straddles two stores, and `Lock`'s uncontended acquire and release
    // took twice as long (`bench`'s `lock_uncontended`).
    #[inline(always)]
    pub(crate) fn lock(
        block: &'a Arc<Block<S>>,
        site: L,
        deadline: Option<Instant>,
    ) -> Acquired<'a, S, L> {
        let taken = site.raw(block.state()).lock_until(deadline);
        Guard::taken(taken, block, site, |taker| Keep::Borrowed(block, taker))
    }

    /// As [`lock`](Self::lock), only if that needs no wait: `Ok(None)` when it would.
    ///
    /// # Errors
    /// As [`lock`](Self::lock).
    #[inline]
    pub(crate) fn try_lock(block: &'a Arc<Block<S>>, site: L) -> Acquired<'a, S, L> {
        let taken = site.raw(block.state()).try_lock();
        Guard::taken(taken, block, site, |taker| Keep::Borrowed(block, taker))
    }

    /// The block whose lock this holds.
    pub(crate) fn block(&self) -> &Arc<Block<S>> {
        self.keep.block()
    }

    /// The block's state.
    #[inline]
    pub(crate) fn state(&self) -> &S {
        self.keep.block().state()
    }

    /// The lock this holds.
    #[inline]
    pub(crate) fn raw(&self) -> &L::Raw {
        self.site.raw(self.state())
    }

    /// Where the lock is.
    pub(crate) fn site(&self) -> &L {
        &self.site
    }

    /// The site, for a primitive to say what its release is to do.
    pub(crate) fn site_mut(&mut self) -> &mut L {
        &mut self.site
    }

    /// Whether this guard borrows the handle it was acquired through.
    #[cfg(test)]
    pub(crate) fn is_borrowed(&self) -> bool {
        matches!(self.keep, Keep::Borrowed(..))
    }

    /// The same hold, keeping the block mapped itself, so borrowing nothing: what the public
    /// guards without a lifetime hold.
    #[inline]
    pub(crate) fn into_owned(self) -> Guard<'static, S, L> {
        let (keep, site) = self.into_parts();
        Guard::new(keep.into_owned(), site)
    }

    /// Keeps the lock held past the guard, for an explicit release later (by the raw lock's
    /// [`unlock`](RawLock::unlock)).
    pub(crate) fn forget(self) {
        drop(self.into_parts());
    }

    /// A view of data that the lock protects, `view`, kept with the hold. lock_api's
    /// `MutexGuard::map`.
    ///
    /// # Safety
    /// `view` points into the block this guard keeps mapped, aligned and in bounds for a `T`;
    /// whatever bytes are there (another process may have written any) are a valid `T`; and
    /// every thread of every process that keeps to the protocol accesses them only while
    /// holding this guard's lock.
    pub(crate) unsafe fn map<T: ?Sized>(self, view: *mut T) -> MappedGuard<'a, S, L, T> {
        MappedGuard { guard: self, view }
    }

    fn new<'b>(keep: Keep<'b, S>, site: L) -> Guard<'b, S, L> {
        Guard {
            keep,
            site,
            not_send: PhantomData,
        }
    }

    /// Turns how a lock call went into an acquire's result: a guard whose block is kept as
    /// `keep` says, or an owned one for an owner that died.
    #[inline(always)]
    fn taken<'b>(
        taken: io::Result<Option<Taken>>,
        block: &Arc<Block<S>>,
        site: L,
        keep: impl FnOnce(Taker) -> Keep<'b, S>,
    ) -> Acquired<'b, S, L> {
        match taken? {
            None => Ok(None),
            Some(Taken::Free) => Ok(Some(Guard::new(keep(Taker::here()), site))),
            Some(Taken::OwnerDied) => {
                let keep = Keep::Owned(Arc::clone(block), Taker::here());
                Err(AcquireError::OwnerDied(Guard::new(keep, site)))
            }
        }
    }

    /// Takes the guard apart without unlocking.
    fn into_parts(self) -> (Keep<'a, S>, L) {
        let guard = ManuallyDrop::new(self);
        // SAFETY: `guard` is never used nor dropped again (`ManuallyDrop`), so each field is
        // read out of it exactly once, and owned by the caller from here: only the unlock that
        // `Drop` would do is skipped.
        unsafe { (std::ptr::read(&guard.keep), std::ptr::read(&guard.site)) }
    }
}

impl<S: BlockState, L: Site<S>> Drop for Guard<'_, S, L> {
    #[inline]
    fn drop(&mut self) {
        if !self.keep.taker().is_here() {
            // A forked child's copy: the lock, and what the hooks keep, are the parent's.
            return;
        }
        let state = self.keep.block().state();
        self.site.before_unlock(state);
        if let Some(primitive) = L::RECORDED {
            crate::timeline::record(crate::timeline::Kind::Release, || (0, primitive));
        }
        // SAFETY: this guard stands for the level released, and nothing relies on it once it
        // is dropped. The guard exists only while this thread holds the lock (made by a lock
        // call that took it, on this thread, checked above). Should another process have
        // rewritten the lock's memory, the unlock changes nothing or fails, and there is
        // nobody to tell.
        let _ = unsafe { self.site.raw(state).unlock() };
        self.site.after_unlock(state);
    }
}

/// A [`Guard`] with a view of the data its lock protects: a `Value`'s element, an `Array`'s
/// elements. lock_api's `MappedMutexGuard`. Only over a [`LockWord`], whose owner a view
/// checks on every dereference.
pub(crate) struct MappedGuard<'a, S: BlockState, L: Site<S>, T: ?Sized> {
    guard: Guard<'a, S, L>,
    /// In the block that `guard` keeps mapped (the promise of [`Guard::map`]). A raw
    /// pointer: not `Send` either.
    view: *mut T,
}

impl<S: BlockState, L: Site<S, Raw = LockWord>, T: ?Sized> MappedGuard<'_, S, L, T> {
    /// Panics unless this thread holds the lock word: a guard that reached a thread that does
    /// not hold it (one inherited by a forked child through a thread-local, or a lock taken
    /// over from an owner thought dead) must not hand out a reference to the shared bytes,
    /// which the real holder may be writing. `Deref` cannot return an error.
    #[inline]
    fn assert_held(&self) {
        assert!(
            self.guard.raw().held_by_me(),
            "a Value's or Array's guard was used by a thread that does not hold its lock \
             (inherited by a forked child?): refusing to alias the shared value"
        );
    }
}

// SAFETY (of the derefs below): the caller of `map` promised that the view is in the block
// that `guard` keeps mapped while the view lives, aligned, valid as a `T` whatever its bytes,
// and accessed by every thread of every process that keeps to the protocol only under the
// lock; `assert_held` checked that this thread holds it now (so a guard inherited across
// `fork` cannot alias); the lock word refuses to be taken again by its owner (`EDEADLK`), so
// this thread holds no other guard of it, and the guard is not `Send`.
impl<S: BlockState, L: Site<S, Raw = LockWord>, T: ?Sized> Deref for MappedGuard<'_, S, L, T> {
    type Target = T;

    #[inline]
    fn deref(&self) -> &T {
        self.assert_held();
        // SAFETY: see above.
        unsafe { &*self.view }
    }
}

impl<S: BlockState, L: Site<S, Raw = LockWord>, T: ?Sized> DerefMut for MappedGuard<'_, S, L, T> {
    #[inline]
    fn deref_mut(&mut self) -> &mut T {
        self.assert_held();
        // SAFETY: see above; `&mut self` makes this the only reference through the guard.
        unsafe { &mut *self.view }
    }
}

/// Wraps the guards of an acquire's result in a primitive's own guard types: `ok` for a
/// success, `died` for the one an [`AcquireError::OwnerDied`] carries.
#[inline]
pub(crate) fn wrap<'a, S: BlockState, L: Site<S>, G, H>(
    acquired: Acquired<'a, S, L>,
    ok: impl FnOnce(Guard<'a, S, L>) -> G,
    died: impl FnOnce(Guard<'static, S, L>) -> H,
) -> Result<Option<G>, AcquireError<H>> {
    match acquired {
        Ok(guard) => Ok(guard.map(ok)),
        Err(AcquireError::OwnerDied(guard)) => Err(AcquireError::OwnerDied(died(guard))),
        Err(AcquireError::Os(error)) => Err(AcquireError::Os(error)),
    }
}

/// An acquire's guard and whether the previous holder died, for a primitive that reports a
/// death its own way (a semaphore's acquire, a barrier that breaks).
pub(crate) fn with_death<'a, S: BlockState, L: Site<S>>(
    acquired: Acquired<'a, S, L>,
) -> io::Result<Option<(Guard<'a, S, L>, bool)>> {
    match acquired {
        Ok(guard) => Ok(guard.map(|guard| (guard, false))),
        Err(AcquireError::OwnerDied(guard)) => Ok(Some((guard, true))),
        Err(AcquireError::Os(error)) => Err(error),
    }
}

/// An acquire without a deadline: it returns only holding the lock.
#[inline]
pub(crate) fn held<G, E>(
    acquired: Result<Option<G>, AcquireError<E>>,
) -> Result<G, AcquireError<E>> {
    acquired?.ok_or_else(|| io::Error::from(io::ErrorKind::TimedOut).into())
}

/// The deadline `timeout` from now; `None` (no limit) when it is too far to represent.
pub(crate) fn deadline_after(timeout: Duration) -> Option<Instant> {
    Instant::now().checked_add(timeout)
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use nix::libc;

    use super::*;
    use crate::sys::sync::RobustMutex;
    use crate::sys::thread::current_id;

    /// Both raw locks, a counter of each hook, and what each hook saw of the lock.
    #[repr(C)]
    struct Two {
        word: LockWord,
        mutex: RobustMutex,
        /// Runs of `before_unlock` that found the lock held by the caller.
        before_held: AtomicU32,
        /// Runs of `after_unlock` that found the lock free.
        after_free: AtomicU32,
        /// Runs of either hook that found anything else.
        stray: AtomicU32,
    }

    // SAFETY: atomics, a lock word and a robust mutex: every bit pattern is a state; zeroed
    // is where `init` starts; align 8.
    unsafe impl BlockState for Two {
        const KIND: [u8; 8] = *b"guardts1";
        unsafe fn init(&self) -> io::Result<()> {
            // SAFETY: the caller's promise: fresh, and nobody uses it yet.
            unsafe { self.mutex.init() }
        }
    }

    /// The lock word, with hooks that count what they see.
    struct OnWord;

    impl Site<Two> for OnWord {
        type Raw = LockWord;
        fn raw<'s>(&self, state: &'s Two) -> &'s LockWord {
            &state.word
        }
        fn before_unlock(&self, state: &Two) {
            let count = match state.word.held_by_me() {
                true => &state.before_held,
                false => &state.stray,
            };
            count.fetch_add(1, Ordering::Relaxed);
        }
        fn after_unlock(&self, state: &Two) {
            let count = match state.word.owner() {
                None => &state.after_free,
                Some(_) => &state.stray,
            };
            count.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// The robust mutex, with no hooks.
    struct OnMutex;

    impl Site<Two> for OnMutex {
        type Raw = RobustMutex;
        fn raw<'s>(&self, state: &'s Two) -> &'s RobustMutex {
            &state.mutex
        }
    }

    fn block() -> Arc<Block<Two>> {
        Arc::new(Block::create(c"test-guard", 8).unwrap())
    }

    /// How often each hook ran, as `Two` counts them.
    fn hooks(block: &Block<Two>) -> (u32, u32, u32) {
        let state = block.state();
        let count = |count: &AtomicU32| count.load(Ordering::Relaxed);
        let before = count(&state.before_held);
        (before, count(&state.after_free), count(&state.stray))
    }

    fn is_free<L: Site<Two> + Send>(block: &Arc<Block<Two>>, site: L) -> bool {
        std::thread::scope(|scope| {
            let other = scope.spawn(|| Guard::try_lock(block, site).unwrap().is_some());
            other.join().unwrap()
        })
    }

    /// The taker shares a word with `Keep`'s tag.
    #[test]
    fn a_guard_of_one_lock_is_two_words() {
        assert_eq!(size_of::<Guard<'_, Two, OnWord>>(), 2 * size_of::<usize>());
    }

    #[test]
    fn a_guard_unlocks_on_drop_and_runs_its_hooks_around_the_unlock() {
        let block = block();
        let guard = Guard::lock(&block, OnWord, None).unwrap().unwrap();
        assert!(guard.is_borrowed(), "a success borrows the handle");
        assert!(!is_free(&block, OnWord));
        drop(guard);
        assert_eq!(
            hooks(&block),
            (1, 1, 0),
            "before while held, after once free"
        );
        assert!(is_free(&block, OnWord));

        let guard = Guard::lock(&block, OnMutex, None).unwrap().unwrap();
        assert!(!is_free(&block, OnMutex));
        drop(guard);
        assert!(is_free(&block, OnMutex));
    }

    #[test]
    fn an_owned_guard_outlives_the_handle_and_a_forgotten_one_stays_held() {
        let block = block();
        let owned = Guard::lock(&block, OnWord, None)
            .unwrap()
            .unwrap()
            .into_owned();
        assert!(!owned.is_borrowed());
        assert_eq!(hooks(&block), (0, 0, 0), "into_owned releases nothing");
        let handle = Arc::clone(&block);
        drop(block);
        assert!(!is_free(&handle, OnWord), "still held");
        drop(owned);
        assert!(is_free(&handle, OnWord));

        Guard::lock(&handle, OnMutex, None)
            .unwrap()
            .unwrap()
            .forget();
        assert!(!is_free(&handle, OnMutex), "held with no guard");
        // SAFETY: this thread holds it, and no guard stands for it (forgotten).
        unsafe { handle.state().mutex.unlock() }.unwrap();
        assert!(is_free(&handle, OnMutex));
    }

    #[test]
    fn a_dead_owners_lock_comes_in_the_error_with_an_owned_guard() {
        let block = block();
        block.state().word.store(0x3fff_ffff); // a TID no thread has
        let guard = Guard::try_lock(&block, OnWord)
            .err()
            .and_then(AcquireError::into_guard)
            .expect("OwnerDied");
        assert!(!guard.is_borrowed(), "an error's guard borrows nothing");
        assert!(guard.raw().held_by_me());
        drop(guard);
        assert!(is_free(&block, OnWord));
    }

    #[test]
    fn a_mapped_guard_views_the_data_under_the_lock() {
        fn view(guard: Guard<'_, Two, OnWord>) -> MappedGuard<'_, Two, OnWord, u64> {
            let (start, len) = guard.block().trailing();
            assert_eq!(len, size_of::<u64>());
            // SAFETY: the block's 8 trailing bytes, 64-aligned; any bytes are a `u64`; this
            // test touches them only through guards of the word.
            unsafe { guard.map(start.cast::<u64>()) }
        }
        let block = block();
        let mut number = view(Guard::lock(&block, OnWord, None).unwrap().unwrap());
        *number = 41;
        *number += 1;
        assert!(!is_free(&block, OnWord), "the view holds the lock");
        drop(number);
        assert!(is_free(&block, OnWord), "and releases it on drop");
        let number = view(Guard::lock(&block, OnWord, None).unwrap().unwrap());
        assert_eq!(*number, 42);
    }

    /// A child of a plain `fork` gets a copy of the parent's guard: dropping it there must
    /// leave the lock its parent's, and run no hook (the counters are in the shared block, so
    /// the parent sees what the child's drop did).
    #[test]
    fn a_forked_childs_copy_of_a_guard_releases_nothing() {
        let block = block();
        let guard = Guard::lock(&block, OnWord, None).unwrap().unwrap();
        let mutex = Guard::lock(&block, OnMutex, None).unwrap().unwrap();
        let parent = current_id();
        // SAFETY: the child runs only async-signal-safe work (a thread-local, atomics, the
        // `gettid` and `pthread_mutex_trylock` calls; the guards borrow, so nothing is freed)
        // and leaves with `_exit`.
        match unsafe { libc::fork() } {
            -1 => panic!("fork: {}", io::Error::last_os_error()),
            0 => {
                drop(guard);
                drop(mutex);
                let state = block.state();
                let kept = state.word.owner() == Some(parent)
                    && hooks(&block) == (0, 0, 0)
                    && state.mutex.try_lock_unguarded().is_ok_and(|t| t.is_none());
                // SAFETY: `_exit` is always safe; it never returns.
                unsafe { libc::_exit(if kept { 0 } else { 1 }) }
            }
            child => {
                let mut status = 0;
                // SAFETY: `status` is valid writable storage; `child` is our child.
                assert_eq!(unsafe { libc::waitpid(child, &mut status, 0) }, child);
                assert!(libc::WIFEXITED(status));
                assert_eq!(libc::WEXITSTATUS(status), 0, "the child released the lock");
            }
        }
        assert_eq!(block.state().word.owner(), Some(parent));
        drop((guard, mutex));
        assert_eq!(
            hooks(&block),
            (1, 1, 0),
            "the parent's drop ran the hooks, once"
        );
        assert!(is_free(&block, OnWord) && is_free(&block, OnMutex));
    }
}
