//! Cross-process synchronisation in shared memory: a robust mutex behind a guard, and futex
//! waits.
//!
//! The mutex is glibc's process-shared *robust* pthread mutex. When its holder dies, the kernel
//! marks it, and the next locker is told (`EOWNERDEAD`) instead of waiting forever. That is what
//! lets a queue survive a process killed in the middle of an operation.

use std::cell::UnsafeCell;
use std::io;
use std::marker::PhantomData;
use std::sync::atomic::{AtomicU32, Ordering, fence};
use std::time::{Duration, Instant};

use nix::libc;

/// A process-shared robust mutex whose storage lives in shared memory (a queue's header, a
/// block of `sync`), with a safe [`lock`](Self::lock) that returns a guard: callers never pair
/// lock and unlock by hand (the split of `lock_api`'s raw mutex and guard). Its unguarded
/// halves ([`lock_unguarded`](Self::lock_unguarded), [`unlock`](Self::unlock)) are the raw
/// lock under `sync`'s one guard, which does the same for the synchronisation primitives.
///
/// Invariant: a `RobustMutex` that anyone can reach was initialised by [`init`](Self::init)
/// (the creator of the shared memory does it before any other process has it), and stays
/// mapped while referenced.
///
/// What another process can do to it: any holder of the memory can overwrite the mutex's
/// words. glibc then fails the call (`EINVAL`, `EDEADLK`, `EPERM`), which we return as
/// errors, or sees a held or free lock that is not; a holder killed or stopped makes the
/// next locker wait, bounded by the deadline it passes. glibc does follow the robust-list
/// pointers stored in the mutex when it unlocks, so a process that rewrites them while we hold
/// the lock can make glibc write where they point. No check of ours can prevent that: the
/// mutex words are glibc's, and every holder of the memfd is trusted not to forge them (the
/// queue's own header checks stop short of the mutexes for that reason).
#[repr(C)]
pub(crate) struct RobustMutex(UnsafeCell<libc::pthread_mutex_t>);

// SAFETY: glibc's process-shared mutex is made to be used from any thread (and process)
// through a shared reference; every access goes through pthread calls.
unsafe impl Sync for RobustMutex {}

impl RobustMutex {
    /// Initialises the mutex in place as process-shared and robust.
    ///
    /// # Safety
    /// No thread or process may use this storage as a mutex yet, and none may until this
    /// returns.
    pub(crate) unsafe fn init(&self) -> io::Result<()> {
        // SAFETY: forwarded to the caller.
        unsafe { self.init_with(None) }
    }

    /// Initialises the mutex in place as process-shared and robust, of glibc's `kind`
    /// ([`Kind::Recursive`]: its owner may lock it again, and must unlock it as often).
    ///
    /// # Safety
    /// As [`init`](Self::init).
    pub(crate) unsafe fn init_kind(&self, kind: Kind) -> io::Result<()> {
        // SAFETY: forwarded to the caller.
        unsafe { self.init_with(Some(kind)) }
    }

    /// # Safety
    /// As [`init`](Self::init).
    unsafe fn init_with(&self, kind: Option<Kind>) -> io::Result<()> {
        let kind = kind.map(|kind| match kind {
            Kind::Recursive => libc::PTHREAD_MUTEX_RECURSIVE,
        });
        let mutex = self.0.get();
        // SAFETY: standard attribute set-up on local storage, then init at a valid address
        // that, by the caller's promise, nobody uses yet.
        unsafe {
            let mut attr = std::mem::MaybeUninit::<libc::pthread_mutexattr_t>::uninit();
            check(libc::pthread_mutexattr_init(attr.as_mut_ptr()))?;
            let attr = attr.as_mut_ptr();
            let result = check(libc::pthread_mutexattr_setpshared(
                attr,
                libc::PTHREAD_PROCESS_SHARED,
            ))
            .and_then(|()| {
                check(libc::pthread_mutexattr_setrobust(
                    attr,
                    libc::PTHREAD_MUTEX_ROBUST,
                ))
            })
            .and_then(|()| {
                kind.map_or(Ok(()), |kind| {
                    check(libc::pthread_mutexattr_settype(attr, kind))
                })
            })
            .and_then(|()| check(libc::pthread_mutex_init(mutex, attr)));
            libc::pthread_mutexattr_destroy(attr);
            result
        }
    }

    /// Unlocks the mutex (one level of a recursive one) without a guard: the other half of
    /// [`lock_unguarded`](Self::lock_unguarded), or of a guard given up with `mem::forget`.
    /// glibc checks the owner of a robust mutex, so a thread that does not hold it gets
    /// `EPERM` and nothing changes.
    ///
    /// # Safety
    /// No live guard of this thread may stand for the level this unlocks while something
    /// relies on it for exclusive access to data (the caller's own types decide: a bare lock
    /// guards no data).
    pub(crate) unsafe fn unlock(&self) -> io::Result<()> {
        // SAFETY: the type's invariant; glibc refuses a non-owner (robust mutexes always
        // check), and the caller answers for guards.
        check(unsafe { libc::pthread_mutex_unlock(self.0.get()) })
    }

    /// Locks the mutex, waiting at most until `deadline` (`None`: no limit), and returns a
    /// guard that unlocks it. `None` on timeout.
    ///
    /// # Errors
    /// As [`lock_unguarded`](Self::lock_unguarded).
    pub(crate) fn lock(&self, deadline: Option<Instant>) -> io::Result<Option<RobustGuard<'_>>> {
        Ok(self
            .lock_unguarded(deadline)?
            .map(|taken| self.guard(taken)))
    }

    /// Locks the mutex only if it is free now; `None` when another thread holds it.
    ///
    /// # Errors
    /// As [`lock_unguarded`](Self::lock_unguarded).
    pub(crate) fn try_lock(&self) -> io::Result<Option<RobustGuard<'_>>> {
        Ok(self.try_lock_unguarded()?.map(|taken| self.guard(taken)))
    }

    /// A guard of the mutex this thread just took, however: its users (the queue's ring) keep
    /// what it guards consistent at every step, so a dead previous owner changes nothing for
    /// them.
    fn guard(&self, _: Taken) -> RobustGuard<'_> {
        RobustGuard {
            mutex: self,
            not_send: PhantomData,
        }
    }

    /// Locks the mutex, waiting at most until `deadline` (`None`: no limit), and says how it
    /// was taken; `None` on timeout. No guard: the caller unlocks it with
    /// [`unlock`](Self::unlock) (the raw half under `sync`'s one guard).
    ///
    /// # Errors
    /// What glibc reports for a mutex whose words another process overwrote; `EDEADLK` when
    /// this thread holds a mutex that is not recursive.
    pub(crate) fn lock_unguarded(&self, deadline: Option<Instant>) -> io::Result<Option<Taken>> {
        // glibc's robust mutex never spins: a contended lock costs a futex wait, and its
        // unlock a futex wake. Queue critical sections last a few hundred nanoseconds, so try
        // briefly first, unless this process has one CPU: then the holder cannot run while we
        // try, and trying again only delays it.
        let spins = if several_cpus() { LOCK_SPINS } else { 1 };
        for _ in 0..spins {
            match self.try_lock_code() {
                libc::EBUSY => std::hint::spin_loop(),
                code => return self.taken(code),
            }
        }
        // Never one long sleep: a sleeper relies on a wake-up that a killed process can take
        // with it. When the woken waiter is SIGKILLed before it runs and a new locker takes
        // the free lock meanwhile (without glibc's waiters bit), the kernel wakes nobody (the
        // lock has a live owner), and that owner's unlock sees no waiters bit: the others
        // sleep on a lock that is free. Waking every slice to try again bounds that to one.
        loop {
            let slice_end = Instant::now() + LOCK_SLICE;
            let wake_at = deadline.map_or(slice_end, |deadline| deadline.min(slice_end));
            let wall = wall_clock_deadline(wake_at);
            // SAFETY: the type's invariant: initialised and mapped while `self` lives; `wall`
            // is a valid timespec.
            let code = unsafe { libc::pthread_mutex_timedlock(self.0.get(), &wall) };
            let deadline_passed = deadline.is_some_and(|deadline| Instant::now() >= deadline);
            if code != libc::ETIMEDOUT || deadline_passed {
                return self.taken(code);
            }
        }
    }

    /// As [`lock_unguarded`](Self::lock_unguarded), only if the mutex is free now: `None`
    /// when another thread holds it.
    ///
    /// # Errors
    /// As [`lock_unguarded`](Self::lock_unguarded).
    pub(crate) fn try_lock_unguarded(&self) -> io::Result<Option<Taken>> {
        match self.try_lock_code() {
            libc::EBUSY => Ok(None),
            code => self.taken(code),
        }
    }

    fn try_lock_code(&self) -> libc::c_int {
        // SAFETY: the type's invariant: initialised and mapped while `self` lives.
        unsafe { libc::pthread_mutex_trylock(self.0.get()) }
    }

    /// Interprets the result of a lock call: how this thread now holds the mutex, if it does.
    fn taken(&self, code: libc::c_int) -> io::Result<Option<Taken>> {
        match code {
            0 => Ok(Some(Taken::Free)),
            libc::EOWNERDEAD => {
                // SAFETY: we hold the mutex; its users keep what it guards consistent at every
                // step (see `queue::ring`, `sync::guard`), so it can be declared consistent
                // straight away.
                if let Err(error) = check(unsafe { libc::pthread_mutex_consistent(self.0.get()) }) {
                    // SAFETY: this thread holds the mutex and no guard stands for it yet.
                    let _ = unsafe { self.unlock() };
                    return Err(error);
                }
                Ok(Some(Taken::OwnerDied))
            }
            libc::ETIMEDOUT => Ok(None),
            other => Err(io::Error::from_raw_os_error(other)),
        }
    }
}

/// How a lock was taken: what [`RobustMutex::lock_unguarded`] and `sync`'s lock word return.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Taken {
    /// From a release.
    Free,
    /// From an owner that died holding it (`EOWNERDEAD`): what it guarded may be
    /// half-updated, unless its users keep it consistent at every step.
    OwnerDied,
}

/// A robust mutex's behaviour when its owner locks it again (see [`RobustMutex::init_kind`]).
#[derive(Clone, Copy, Debug)]
pub(crate) enum Kind {
    /// Counts the levels; the owner unlocks once per lock.
    Recursive,
}

/// Proof that this thread holds a [`RobustMutex`]; unlocks it on drop.
pub(crate) struct RobustGuard<'a> {
    mutex: &'a RobustMutex,
    /// Not `Send`: a pthread mutex must be unlocked by the thread that locked it.
    not_send: PhantomData<*const ()>,
}

impl Drop for RobustGuard<'_> {
    fn drop(&mut self) {
        // SAFETY: the guard exists only while this thread holds the mutex (it is created by
        // a successful lock and is not `Send`), and the mutex outlives `'a`. Unlocking a held
        // mutex cannot fail; should another process have overwritten its words, glibc reports
        // an error that there is nobody to tell.
        unsafe { libc::pthread_mutex_unlock(self.mutex.0.get()) };
    }
}

/// How many times [`RobustMutex::lock`] tries before it blocks.
const LOCK_SPINS: u32 = 100;

/// The longest [`RobustMutex::lock`] sleeps before it tries the lock again: the bound on a
/// wait for a lock that was freed without waking its sleepers (see `lock_unguarded`).
const LOCK_SLICE: Duration = Duration::from_millis(100);

/// Sleeps while `word` still holds `expected`, at most `timeout` (`None`: no limit). Returns on
/// a wake-up, a timeout, a signal, or at once if the word already changed: callers re-check.
pub(crate) fn futex_wait(word: &AtomicU32, expected: u32, timeout: Option<Duration>) {
    let spec = timeout.map(|t| libc::timespec {
        tv_sec: t.as_secs().min(i64::MAX as u64) as libc::time_t,
        tv_nsec: t.subsec_nanos() as libc::c_long,
    });
    let spec_ptr = spec
        .as_ref()
        .map_or(std::ptr::null(), |s| s as *const libc::timespec);
    // SAFETY: `word` is a live, aligned u32. Not FUTEX_PRIVATE: waiters are in other processes.
    unsafe {
        libc::syscall(
            libc::SYS_futex,
            word.as_ptr(),
            libc::FUTEX_WAIT,
            expected,
            spec_ptr,
        );
    }
}

/// Wakes one thread (of any process) sleeping in [`futex_wait`] on `word`.
pub(crate) fn futex_wake_one(word: &AtomicU32) {
    // SAFETY: as in `futex_wait`: the kernel only reads the address as a futex key.
    unsafe {
        libc::syscall(libc::SYS_futex, word.as_ptr(), libc::FUTEX_WAKE, 1);
    }
}

/// Wakes every process sleeping in [`futex_wait`] on `word`.
pub(crate) fn futex_wake_all(word: &AtomicU32) {
    // SAFETY: as in `futex_wait`.
    unsafe {
        libc::syscall(libc::SYS_futex, word.as_ptr(), libc::FUTEX_WAKE, i32::MAX);
    }
}

/// Who sleeps on a change in shared memory: a futex word whose lowest bit says that a process
/// sleeps (or is about to) on its current value. A waker pays the wake-up system call only
/// when the bit is set, and only one waker per value: it clears the bit as it moves the word
/// on, so the next changes make no system call until a process registers again. The queue's
/// ends, the JoinableQueue's task count, [`Event`](crate::Event) and the semaphores use it.
///
/// A sleeper count, the design before issue 23, stays above zero from the moment a sleeper is
/// woken until it runs again; beside busy processes that can be milliseconds, and every change
/// meanwhile made a wake-up system call that woke nobody: 98,000 to 100,000 `futex_wake` calls
/// per 100,000 puts in `queue_2x2`, for about 2,000 sleeps (bench/README.md, "Under load").
///
/// Any value another process writes is harmless: a set bit costs one wake-up that wakes
/// nobody, a cleared one makes a sleeper wait until its timeout (every sleeper has one), a
/// moved word makes a sleeper return at once and re-check. A sleeper killed in its sleep leaves
/// the bit set, which costs one wake-up, never correctness.
#[repr(C)]
pub(crate) struct Waiters {
    /// The futex word: odd while a process sleeps on it, moved on by the waker that saw that.
    sequence: AtomicU32,
}

impl Waiters {
    /// Called after a change that may end a wait: whether sleepers must be woken (with
    /// [`wake`](Self::wake), which a caller may defer until it has unlocked what they wait
    /// for).
    pub(crate) fn announce(&self) -> bool {
        // Pairs with the fence a sleeper makes between `register` and its re-check: either
        // this load sees the sleeper's bit, or the re-check sees the change made before this
        // fence.
        fence(Ordering::SeqCst);
        let sequence = self.sequence.load(Ordering::Relaxed);
        if sequence & 1 == 0 {
            return false;
        }
        // One waker per registration: another that moved the word on first wakes them all.
        // Sleepers only ever set the bit, which is set already, so a failure means that.
        self.sequence
            .compare_exchange(
                sequence,
                sequence.wrapping_add(1),
                Ordering::Release,
                Ordering::Relaxed,
            )
            .is_ok()
    }

    /// Wakes every process sleeping on the word; call it when [`announce`](Self::announce)
    /// said so.
    pub(crate) fn wake(&self) {
        futex_wake_all(&self.sequence);
    }

    /// [`announce`](Self::announce), then [`wake`](Self::wake) if sleepers wait.
    pub(crate) fn wake_sleepers(&self) {
        if self.announce() {
            self.wake();
        }
    }

    /// Registers the caller as about to sleep: the value to pass to [`sleep`](Self::sleep),
    /// which returns at once if a waker has moved the word on since. The caller must make a
    /// `SeqCst` fence, then re-check its condition, between the two.
    pub(crate) fn register(&self) -> u32 {
        self.sequence.fetch_or(1, Ordering::Relaxed) | 1
    }

    /// Sleeps while the word still holds `registered`, at most `timeout`; returns whether a
    /// waker moved it on (`false`: the sleep timed out, or was interrupted, unwoken).
    pub(crate) fn sleep(&self, registered: u32, timeout: Duration) -> bool {
        futex_wait(&self.sequence, registered, Some(timeout));
        self.sequence.load(Ordering::Relaxed) != registered
    }

    /// Calls `attempt` until it gives a value or fails, sleeping between attempts until a
    /// wake-up, `deadline`, or `longest` (the bound on a wait whose waker died between its
    /// change and its wake-up). `Ok(None)` once `deadline` has passed (`None`: no deadline).
    pub(crate) fn wait_for<T, E>(
        &self,
        deadline: Option<Instant>,
        longest: Duration,
        mut attempt: impl FnMut() -> Result<Option<T>, E>,
    ) -> Result<Option<T>, E> {
        loop {
            if let Some(value) = attempt()? {
                return Ok(Some(value));
            }
            let left = match deadline {
                None => longest,
                Some(deadline) => match deadline.checked_duration_since(Instant::now()) {
                    Some(left) if !left.is_zero() => left.min(longest),
                    _ => return Ok(None),
                },
            };
            let registered = self.register();
            // Pairs with the fence in `announce`: a change this attempt misses sees the bit.
            fence(Ordering::SeqCst);
            if let Some(value) = attempt()? {
                return Ok(Some(value));
            }
            self.sleep(registered, left);
        }
    }
}

/// Whether this process may run on more than one CPU (its affinity mask, as `taskset` or a
/// container's CPU limit sets it). A waiter that spins hopes that the process it waits for runs
/// meanwhile on another CPU; with one CPU, every spin only delays that process. Cached: the
/// mask is read again every [`AFFINITY_REFRESH`] calls, so that a process moved by `taskset`
/// while it runs soon behaves accordingly, and a call costs a relaxed load and add otherwise.
pub(crate) fn several_cpus() -> bool {
    /// 0: not read yet; 1: one CPU; 2: several.
    static CACHED: AtomicU32 = AtomicU32::new(0);
    static CALLS: AtomicU32 = AtomicU32::new(0);
    let calls = CALLS.fetch_add(1, Ordering::Relaxed);
    let cached = CACHED.load(Ordering::Relaxed);
    if cached != 0 && calls % AFFINITY_REFRESH != 0 {
        return cached == 2;
    }
    // SAFETY: an all-zero cpu_set_t is the empty set, a valid value.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: `set` is valid writable storage of the size passed; pid 0 is this thread.
    let code = unsafe { libc::sched_getaffinity(0, size_of::<libc::cpu_set_t>(), &mut set) };
    // If the mask cannot be read (it always can on Linux), assume several: the old behaviour.
    // SAFETY: `set` is an initialised cpu_set_t.
    let several = code != 0 || unsafe { libc::CPU_COUNT(&set) } > 1;
    CACHED.store(if several { 2 } else { 1 }, Ordering::Relaxed);
    several
}

/// How many calls of [`several_cpus`] trust the cached mask before reading it again.
const AFFINITY_REFRESH: u32 = 4096;

fn check(code: libc::c_int) -> io::Result<()> {
    if code == 0 {
        Ok(())
    } else {
        Err(io::Error::from_raw_os_error(code))
    }
}

/// `pthread_mutex_timedlock` takes a wall-clock deadline; convert from a monotonic one. (A jump
/// of the wall clock while waiting shortens or lengthens the wait; glibc's monotonic
/// `pthread_mutex_clocklock` is not in the `libc` crate.)
fn wall_clock_deadline(deadline: Instant) -> libc::timespec {
    let left = deadline.saturating_duration_since(Instant::now());
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `now` is valid writable storage.
    unsafe { libc::clock_gettime(libc::CLOCK_REALTIME, &mut now) };
    let total_nanos = now.tv_nsec as u128 + left.subsec_nanos() as u128;
    let seconds = libc::time_t::try_from(left.as_secs()).unwrap_or(libc::time_t::MAX);
    libc::timespec {
        tv_sec: now
            .tv_sec
            .saturating_add(seconds)
            .saturating_add((total_nanos / 1_000_000_000) as libc::time_t),
        tv_nsec: (total_nanos % 1_000_000_000) as libc::c_long,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;

    /// Issue 23: a woken sleeper that waits for a CPU must not cost a wake-up system call
    /// per commit meanwhile. Only the first commit after a registration wakes.
    #[test]
    fn one_registration_asks_one_commit_for_a_wake_up() {
        let waiters = Waiters {
            sequence: AtomicU32::new(0),
        };
        assert!(!waiters.announce(), "nobody registered");
        let slept_on = waiters.register();
        assert_eq!(
            waiters.register(),
            slept_on,
            "a second sleeper shares the value"
        );
        assert!(waiters.announce(), "the first commit wakes");
        assert!(!waiters.announce(), "the next ones do not");
        assert!(!waiters.announce());
        let now = waiters.sequence.load(Ordering::Relaxed);
        assert_ne!(
            now, slept_on,
            "a futex wait on the old value returns at once"
        );
        assert_ne!(waiters.register(), slept_on);
        assert!(waiters.announce(), "a new registration is woken again");
        // The word wraps like any sequence: the bit still works at the end of its range.
        let waiters = Waiters {
            sequence: AtomicU32::new(u32::MAX - 1),
        };
        assert_eq!(waiters.register(), u32::MAX);
        assert!(waiters.announce());
        assert_eq!(waiters.sequence.load(Ordering::Relaxed), 0);
        assert!(!waiters.announce());
    }

    #[test]
    fn a_sleep_says_whether_a_waker_moved_the_word() {
        let waiters = Waiters {
            sequence: AtomicU32::new(0),
        };
        let registered = waiters.register();
        assert!(
            !waiters.sleep(registered, Duration::from_millis(1)),
            "nobody woke it: the sleep timed out"
        );
        assert!(waiters.announce());
        assert!(
            waiters.sleep(registered, Duration::from_secs(30)),
            "the word moved on: the sleep returns at once, woken"
        );
    }

    #[test]
    fn wait_for_ends_on_a_change_made_by_another_thread() {
        let waiters = std::sync::Arc::new(Waiters {
            sequence: AtomicU32::new(0),
        });
        let flag = std::sync::Arc::new(AtomicU32::new(0));
        let (waker_waiters, waker_flag) = (waiters.clone(), flag.clone());
        let waker = std::thread::spawn(move || {
            waker_flag.store(1, Ordering::Release);
            waker_waiters.wake_sleepers();
        });
        let deadline = Instant::now() + Duration::from_secs(30);
        let got = waiters.wait_for(Some(deadline), Duration::from_millis(100), || {
            Ok::<_, ()>((flag.load(Ordering::Acquire) == 1).then_some(7))
        });
        assert_eq!(got, Ok(Some(7)));
        waker.join().unwrap();
        let past = Instant::now();
        let none = waiters.wait_for(Some(past), Duration::from_millis(100), || {
            Ok::<Option<()>, ()>(None)
        });
        assert_eq!(none, Ok(None), "a passed deadline gives up");
    }

    /// A mutex in this process's memory, initialised as a queue's creator does.
    fn mutex() -> Box<RobustMutex> {
        // SAFETY: an all-zero pthread_mutex_t is a valid bit pattern (it is the static
        // initialiser), and the box is fresh, so nobody uses it yet.
        let mutex: Box<RobustMutex> = Box::new(unsafe { std::mem::zeroed() });
        // SAFETY: as above.
        unsafe { mutex.init() }.unwrap();
        mutex
    }

    #[test]
    fn the_guard_unlocks_on_drop() {
        let mutex = mutex();
        let guard = mutex.lock(None).unwrap().expect("a free mutex locks");
        drop(guard);
        assert_eq!(
            mutex.try_lock_unguarded().unwrap(),
            Some(Taken::Free),
            "still locked after drop"
        );
        // SAFETY: this thread holds it, and no guard stands for it.
        unsafe { mutex.unlock() }.unwrap();
    }

    #[test]
    fn a_held_mutex_is_not_taken_by_try_lock_nor_after_a_deadline() {
        let mutex: &'static RobustMutex = Box::leak(mutex());
        let (locked, release) = (mpsc::channel(), mpsc::channel::<()>());
        let holder = std::thread::spawn(move || {
            let _guard = mutex.lock(None).unwrap();
            locked.0.send(()).unwrap();
            // Bounded: the test releases it, or gives up after a minute.
            let _ = release.1.recv_timeout(Duration::from_secs(60));
        });
        locked.1.recv().unwrap();
        assert!(mutex.try_lock().unwrap().is_none());
        let deadline = Instant::now() + Duration::from_millis(20);
        assert!(mutex.lock(Some(deadline)).unwrap().is_none());
        release.0.send(()).unwrap();
        holder.join().unwrap();
        assert!(mutex.lock(None).unwrap().is_some());
    }

    /// glibc's lock word (`__data.__lock`, the mutex's first field on Linux): the owner's
    /// TID and the waiters bit.
    fn lock_word(mutex: &RobustMutex) -> &AtomicU32 {
        // SAFETY: the first field of glibc's `pthread_mutex_t` is an aligned 32-bit int that
        // glibc and the kernel access atomically; it lives as long as `mutex`.
        unsafe { &*mutex.0.get().cast::<AtomicU32>() }
    }

    /// The system call thread `tid` of this process is blocked in, if any.
    fn blocked_in(tid: libc::pid_t) -> Option<libc::c_long> {
        let line = std::fs::read_to_string(format!("/proc/self/task/{tid}/syscall")).ok()?;
        line.split_whitespace().next()?.parse().ok()
    }

    /// A thread sleeping on a held lock, which is then freed without a wake-up, as when the
    /// waiter the release woke is SIGKILLed before it runs and a new locker takes the lock in
    /// between (the storm test's 10 s stall): the sleeper takes the lock all the same.
    #[test]
    fn a_sleeper_takes_a_lock_freed_without_waking_it() {
        let mutex: &'static RobustMutex = Box::leak(mutex());
        let word = lock_word(mutex);
        // Held, as the kernel sees it, by a live thread (this one), though not through glibc,
        // so that no robust list names it and freeing it below wakes nobody.
        // SAFETY: gettid has no preconditions.
        let holder = unsafe { libc::gettid() };
        word.store(holder as u32, Ordering::SeqCst);
        let (sleeper_tid, taken) = (mpsc::channel(), mpsc::channel());
        std::thread::spawn(move || {
            // SAFETY: as above.
            sleeper_tid.0.send(unsafe { libc::gettid() }).unwrap();
            taken.0.send(mutex.lock_unguarded(None).unwrap()).unwrap();
        });
        let sleeper = sleeper_tid.1.recv().unwrap();
        let asleep =
            |word: u32| word & WAITERS != 0 && blocked_in(sleeper) == Some(libc::SYS_futex);
        let give_up = Instant::now() + Duration::from_secs(30);
        while !asleep(word.load(Ordering::SeqCst)) {
            assert!(
                Instant::now() < give_up,
                "the locker never slept on the held lock"
            );
            std::thread::sleep(Duration::from_millis(1));
        }
        // Freed, and the wake-up lost.
        word.store(0, Ordering::SeqCst);
        let taken = taken.1.recv_timeout(Duration::from_secs(10));
        assert_eq!(
            taken,
            Ok(Some(Taken::Free)),
            "a sleeper on a lock freed without a wake-up stays asleep"
        );
    }

    #[test]
    fn several_cpus_follows_the_affinity_mask() {
        // SAFETY: an all-zero cpu_set_t is the empty set.
        let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
        // SAFETY: valid storage of the size passed; pid 0 is this thread.
        let code = unsafe { libc::sched_getaffinity(0, size_of::<libc::cpu_set_t>(), &mut set) };
        assert_eq!(code, 0);
        // SAFETY: `set` is initialised.
        let count = unsafe { libc::CPU_COUNT(&set) };
        // Called enough times that at least one call reads the mask afresh.
        let answers: Vec<bool> = (0..=AFFINITY_REFRESH).map(|_| several_cpus()).collect();
        assert_eq!(answers.last().copied(), Some(count > 1), "{count} CPUs");
    }

    /// glibc's bit in the lock word for "a thread may sleep on it" (the kernel's FUTEX_WAITERS).
    const WAITERS: u32 = 0x8000_0000;

    #[test]
    fn the_next_locker_learns_that_the_holder_died() {
        let mutex: &'static RobustMutex = Box::leak(mutex());
        // A thread that exits holding a robust mutex is, to the kernel, an owner that died.
        std::thread::spawn(move || std::mem::forget(mutex.lock(None).unwrap()))
            .join()
            .unwrap();
        let taken = mutex.lock_unguarded(None).unwrap();
        assert_eq!(
            taken,
            Some(Taken::OwnerDied),
            "a dead owner's mutex locks, and says so"
        );
        // SAFETY: this thread holds it, and no guard stands for it.
        unsafe { mutex.unlock() }.unwrap();
        let taken = mutex.lock_unguarded(None).unwrap();
        assert_eq!(taken, Some(Taken::Free), "it was made consistent");
        // SAFETY: as above.
        unsafe { mutex.unlock() }.unwrap();
    }
}
