//! [`Thread`]: a function running on a new thread of this process, with the API of Python's
//! `threading.Thread`, which CPython keeps alike to `multiprocessing.Process` on purpose; and
//! [`ThreadQueue`], the counterpart of Python's `queue.Queue`.
//!
//! # At exit
//!
//! As in CPython, when `main` returns (or `std::process::exit` is called) the non-daemonic
//! threads started with [`Thread::start`] are joined, then the child processes are settled;
//! daemonic threads are left to end with the process. The registry of threads to join is held
//! across a fork, and a forked child starts with it empty: the parent's threads do not exist in
//! the child. A child process (forked or spawned) joins the non-daemonic threads *it* started
//! when its target returns, as CPython's `Process._bootstrap` does. The thread that runs the
//! exit never waits for itself.

mod queue;

use std::fmt;
use std::io;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError, mpsc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

pub use queue::ThreadQueue;

use crate::lifecycle::{self, ExitStep, ForkRank, HeldAcrossFork};
use crate::process::registry as runtime;
use crate::process::target::{Target, run_guarded};
use crate::sys;

/// A function and its arguments, run on a new thread of this process.
/// Python: `threading.Thread`.
///
/// The API is [`Process`](crate::Process)'s: `Thread(target=f, args=(a, b), daemon=True)` is
/// `Thread::new(f, (a, b)).daemon(true)`. Nothing crosses a process boundary, so the target
/// may be any `Send` closure and the arguments anything `Send`: no serialization, and the
/// thread shares the process's memory (a `static`, an `Arc`) with every other thread.
///
/// The target may return `()` or `Result<(), E>`; an `Err` is printed to stderr as
/// `Error: {e:?}`, and a panic's message is printed by the panic hook. Either ends this thread
/// only, as an uncaught exception in a Python thread does.
///
/// ```
/// use std::sync::atomic::{AtomicU32, Ordering};
/// use shared::Thread;
///
/// static CONTADOR: AtomicU32 = AtomicU32::new(0);
///
/// fn somar(n: u32) {
///     CONTADOR.fetch_add(n, Ordering::Relaxed);
/// }
///
/// let mut thread = Thread::new(somar, (42,));
/// assert!(!thread.is_alive());
/// thread.start()?;
/// thread.join()?;
/// assert_eq!(CONTADOR.load(Ordering::Relaxed), 42); // the same memory as the main thread
/// # Ok::<(), shared::ThreadError>(())
/// ```
pub struct Thread {
    name: String,
    daemon: bool,
    launch: Option<Box<dyn FnOnce() + Send>>,
    started: Option<Started>,
}

struct Started {
    native_id: u32,
    /// The process that started it. In a forked child the thread does not exist.
    pid: u32,
    finished: Arc<Finished>,
    /// Taken by the first join that sees the thread finished.
    handle: Option<JoinHandle<()>>,
}

/// How many threads this process has named: `Thread-1`, `Thread-2`, ...
static COUNTER: AtomicU32 = AtomicU32::new(0);

impl Thread {
    /// A thread that will run `target(args...)`; nothing runs until [`start`](Self::start).
    /// Python: `threading.Thread(target=..., args=(...))`.
    ///
    /// `args` is a tuple (`()` for none, `(x,)` for one), moved to the new thread.
    ///
    /// ```
    /// let thread = shared::Thread::new(|texto: String| assert_eq!(texto, "oi"), ("oi".into(),));
    /// assert!(thread.name().starts_with("Thread-"));
    /// assert_eq!(thread.native_id(), None);
    /// ```
    pub fn new<F, A>(target: F, args: A) -> Thread
    where
        F: Target<A>,
        A: Send + 'static,
    {
        let n = COUNTER.fetch_add(1, Ordering::Relaxed) + 1;
        Thread {
            name: format!("Thread-{n}"),
            daemon: false,
            launch: Some(Box::new(move || {
                run_guarded(target, args);
            })),
            started: None,
        }
    }

    /// Sets the daemon flag before start, builder style. Python: `Thread(..., daemon=True)`.
    ///
    /// A daemonic thread is not joined when `main` returns: it ends with the process.
    ///
    /// ```
    /// let thread = shared::Thread::new(|| (), ()).daemon(true);
    /// assert!(thread.is_daemon());
    /// ```
    #[must_use]
    pub fn daemon(mut self, daemon: bool) -> Thread {
        self.daemon = daemon;
        self
    }

    /// Sets the daemon flag. Python: `Thread.daemon = ...`.
    ///
    /// ```
    /// let mut thread = shared::Thread::new(|| (), ());
    /// thread.set_daemon(true)?;
    /// thread.start()?;
    /// assert!(thread.set_daemon(false).is_err());
    /// # Ok::<(), shared::ThreadError>(())
    /// ```
    ///
    /// # Errors
    /// [`ThreadError::AlreadyStarted`] once the thread has started (Python: `RuntimeError`).
    pub fn set_daemon(&mut self, daemon: bool) -> Result<(), ThreadError> {
        if self.started.is_some() {
            return Err(ThreadError::AlreadyStarted);
        }
        self.daemon = daemon;
        Ok(())
    }

    /// Whether the thread is daemonic. Python: `Thread.daemon`.
    pub fn is_daemon(&self) -> bool {
        self.daemon
    }

    /// The thread's name, `Thread-1`, `Thread-2`, ... in the order the handles were created.
    /// Python: `Thread.name`. The new thread gets it as its Rust name, so a panic message
    /// says `thread 'Thread-1' panicked`.
    ///
    /// ```
    /// let mut thread = shared::Thread::new(|| (), ());
    /// thread.set_name("trabalhadora");
    /// assert_eq!(thread.name(), "trabalhadora");
    /// ```
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Renames the thread. Python: `Thread.name = ...`. A started thread keeps the Rust name
    /// it started with.
    pub fn set_name(&mut self, name: impl Into<String>) {
        self.name = name.into();
    }

    /// Starts the thread, and returns once it runs, with its [`native_id`](Self::native_id)
    /// known. Python: `Thread.start()`.
    ///
    /// ```
    /// let mut thread = shared::Thread::new(|| (), ());
    /// thread.start()?;
    /// assert!(thread.start().is_err()); // threads can only be started once
    /// # Ok::<(), shared::ThreadError>(())
    /// ```
    ///
    /// # Errors
    /// - [`ThreadError::AlreadyStarted`]: "threads can only be started once".
    /// - [`ThreadError::Os`]: the system refused to create the thread; the target is dropped
    ///   and the handle cannot start again.
    pub fn start(&mut self) -> Result<(), ThreadError> {
        let Some(launch) = self.launch.take() else {
            return Err(ThreadError::AlreadyStarted);
        };
        runtime::install_exit_hook()?;
        lifecycle::at_exit(ExitStep::Threads, |_| settle_threads());
        let began = crate::timeline::moment();
        let finished = Arc::new(Finished::default());
        let on_exit = Finish(Arc::clone(&finished));
        let (tell, told) = mpsc::sync_channel(1);
        let handle = std::thread::Builder::new()
            .name(self.name.clone())
            .spawn(move || {
                // Dropped last, even if the target panics: the thread is finished.
                let _on_exit = on_exit;
                let _ = tell.send(sys::thread::current_id());
                launch();
            })?;
        let native_id = told
            .recv()
            .map_err(|_| io::Error::other("the new thread ended before it ran"))?;
        crate::timeline::thread_started(began, native_id, &self.name);
        let pid = std::process::id();
        if !self.daemon {
            let mut registry = registry();
            registry.retain(|entry| !entry.finished.is_set());
            registry.push(Registered {
                native_id,
                pid,
                finished: Arc::clone(&finished),
            });
        }
        self.started = Some(Started {
            native_id,
            pid,
            finished,
            handle: Some(handle),
        });
        Ok(())
    }

    /// Waits until the thread's target returns. Python: `Thread.join()`. Joining a thread
    /// that already ended returns at once, as does joining, in a forked child, a thread of the
    /// parent (it does not exist in the child).
    ///
    /// ```
    /// let mut thread = shared::Thread::new(|| (), ());
    /// assert!(thread.join().is_err()); // not started
    /// thread.start()?;
    /// thread.join()?;
    /// thread.join()?; // again: returns at once
    /// # Ok::<(), shared::ThreadError>(())
    /// ```
    ///
    /// # Errors
    /// [`ThreadError::NotStarted`] ("cannot join thread before it is started"),
    /// [`ThreadError::JoinCurrent`] when a thread joins itself (it would wait forever).
    pub fn join(&mut self) -> Result<(), ThreadError> {
        self.wait(None).map(drop)
    }

    /// Waits until the thread's target returns or `timeout` passes, whichever comes first;
    /// check [`is_alive`](Self::is_alive) to tell which. Python: `Thread.join(timeout)`.
    ///
    /// ```
    /// use std::time::Duration;
    /// let fila = shared::ThreadQueue::<()>::new();
    /// let outra = fila.clone();
    /// let mut thread = shared::Thread::new(move || outra.get().map(drop), ());
    /// thread.start()?;
    /// thread.join_timeout(Duration::from_millis(10))?;
    /// assert!(thread.is_alive()); // still waiting in get()
    /// fila.put(()).unwrap();
    /// thread.join()?;
    /// assert!(!thread.is_alive());
    /// # Ok::<(), shared::ThreadError>(())
    /// ```
    ///
    /// # Errors
    /// As [`join`](Self::join).
    pub fn join_timeout(&mut self, timeout: Duration) -> Result<(), ThreadError> {
        self.wait(Instant::now().checked_add(timeout)).map(drop)
    }

    /// Whether the thread has started and its target has not returned yet.
    /// Python: `Thread.is_alive()`. In a forked child, a thread of the parent is not alive.
    pub fn is_alive(&self) -> bool {
        self.started
            .as_ref()
            .is_some_and(|started| started.pid == std::process::id() && !started.finished.is_set())
    }

    /// The kernel's id of the thread (Linux's TID), `None` before start.
    /// Python: `Thread.native_id`. See [`get_native_id`].
    ///
    /// ```
    /// let mut thread = shared::Thread::new(|| (), ());
    /// thread.start()?;
    /// let tid = thread.native_id().unwrap();
    /// assert_ne!(tid, shared::get_native_id()); // another thread than this one
    /// # Ok::<(), shared::ThreadError>(())
    /// ```
    pub fn native_id(&self) -> Option<u32> {
        self.started.as_ref().map(|started| started.native_id)
    }

    /// Waits until `deadline` (`None`: forever); whether the thread has finished.
    fn wait(&mut self, deadline: Option<Instant>) -> Result<bool, ThreadError> {
        let started = self.started.as_mut().ok_or(ThreadError::NotStarted)?;
        if started.pid != std::process::id() {
            return Ok(true);
        }
        if started.native_id == sys::thread::current_id() {
            return Err(ThreadError::JoinCurrent);
        }
        let native_id = u64::from(started.native_id);
        let _join = crate::timeline::span(crate::timeline::Kind::ThreadJoin, || (native_id, 0));
        if !started.finished.wait(deadline) {
            return Ok(false);
        }
        // The target has returned; the thread has at most its last drops left to run.
        if let Some(handle) = started.handle.take() {
            let _ = handle.join();
        }
        Ok(true)
    }
}

impl fmt::Debug for Thread {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Thread")
            .field("name", &self.name)
            .field("native_id", &self.native_id())
            .field("daemon", &self.daemon)
            .field("alive", &self.is_alive())
            .finish()
    }
}

/// The kernel's id of the calling thread (Linux's TID). Python: `threading.get_native_id()`.
///
/// In the main thread it equals the process's PID; every other thread has its own.
///
/// ```
/// assert_eq!(shared::get_native_id(), std::process::id());
/// let outra = std::thread::spawn(shared::get_native_id).join().unwrap();
/// assert_ne!(outra, std::process::id());
/// ```
pub fn get_native_id() -> u32 {
    sys::thread::current_id()
}

/// Whether a thread's target has returned, and a way to wait for it.
#[derive(Default)]
struct Finished {
    done: Mutex<bool>,
    changed: Condvar,
}

impl Finished {
    fn is_set(&self) -> bool {
        *lock(&self.done)
    }

    /// Waits until the target has returned or `deadline` passes; whether it has returned.
    fn wait(&self, deadline: Option<Instant>) -> bool {
        let mut done = lock(&self.done);
        while !*done {
            done = match deadline {
                None => self
                    .changed
                    .wait(done)
                    .unwrap_or_else(PoisonError::into_inner),
                Some(deadline) => {
                    let left = deadline.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        return false;
                    }
                    let waited = self.changed.wait_timeout(done, left);
                    waited.unwrap_or_else(PoisonError::into_inner).0
                }
            };
        }
        true
    }
}

/// Marks the thread finished when dropped, at the end of the thread's closure.
struct Finish(Arc<Finished>);

impl Drop for Finish {
    fn drop(&mut self) {
        *lock(&self.0.done) = true;
        self.0.changed.notify_all();
    }
}

/// A non-daemonic thread to join at exit.
pub(crate) struct Registered {
    native_id: u32,
    pid: u32,
    finished: Arc<Finished>,
}

static NON_DAEMONIC: Mutex<Vec<Registered>> = Mutex::new(Vec::new());

/// The non-daemonic threads this process started and has not settled. A poisoned lock is
/// still usable: the list is only pushed to, filtered and taken, never left half-written.
fn registry() -> MutexGuard<'static, Vec<Registered>> {
    // Registered before the lock is first taken (see `lifecycle::at_fork`).
    static HELD_ACROSS_FORK: lifecycle::ForkRegistration = lifecycle::ForkRegistration::new();
    HELD_ACROSS_FORK.ensure(ForkRank::Threads, hold_registry);
    lock(&NON_DAEMONIC)
}

/// The registry, held across a fork: a forked child has none of these threads.
struct HeldRegistry(MutexGuard<'static, Vec<Registered>>);

impl HeldAcrossFork for HeldRegistry {
    fn in_child(mut self: Box<Self>) {
        self.0.clear();
    }
}

fn hold_registry() -> Box<dyn HeldAcrossFork> {
    Box::new(HeldRegistry(registry()))
}

/// Waits for every non-daemonic thread this process started, except the calling one: what
/// CPython's `threading._shutdown()` does at exit. Threads started meanwhile (by a thread being
/// joined) are joined too. It uses no thread-local storage, which is gone when `exit` runs
/// its hooks.
fn settle_threads() {
    let me = sys::thread::current_id();
    let pid = std::process::id();
    loop {
        let pending = std::mem::take(&mut *registry());
        let mut pending = pending
            .into_iter()
            .filter(|entry| entry.pid == pid && entry.native_id != me)
            .peekable();
        if pending.peek().is_none() {
            return;
        }
        for entry in pending {
            entry.finished.wait(None);
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Why a [`Thread`] operation failed. The messages are CPython's.
#[non_exhaustive]
pub enum ThreadError {
    /// `start` was called on a thread that already started, or the daemon flag was set after
    /// start. Python: `RuntimeError`.
    AlreadyStarted,
    /// `join` was called before `start`. Python: `RuntimeError`.
    NotStarted,
    /// A thread tried to join itself, which would wait forever. Python: `RuntimeError`.
    JoinCurrent,
    /// The operating system refused to create the thread.
    Os(io::Error),
}

impl fmt::Display for ThreadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ThreadError::AlreadyStarted => f.write_str("threads can only be started once"),
            ThreadError::NotStarted => f.write_str("cannot join thread before it is started"),
            ThreadError::JoinCurrent => f.write_str("cannot join current thread"),
            ThreadError::Os(_) => f.write_str("the system refused"),
        }
    }
}

impl std::error::Error for ThreadError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ThreadError::Os(error) => Some(error),
            _ => None,
        }
    }
}

crate::debug_as_display!(ThreadError);

impl From<io::Error> for ThreadError {
    fn from(error: io::Error) -> Self {
        ThreadError::Os(error)
    }
}
