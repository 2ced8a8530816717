//! [`Pool`]: a pool of worker processes, with the API of Python's `multiprocessing.Pool`, that
//! survives the death of its workers.
//!
//! # How it works
//!
//! Each worker is a daemonic [`Process`] (fork or spawn, like any other) with a [`Queue`] of
//! its own for orders; all of them report on one queue. A thread in the pool's process, the
//! supervisor, hands out chunks of calls, at most [`PREFETCH`](supervisor::PREFETCH) per worker,
//! collects the results, and watches each worker's end through its pidfd; a caller waiting
//! for a result while the supervisor has nothing to read reads the reports itself, so that a
//! call made and awaited alone costs one message each way. Since the pool
//! always knows which chunks a worker holds, a worker's death costs exactly the chunk it was
//! running: that chunk fails with [`PoolError::WorkerDied`], the chunks queued behind it go to
//! other workers, and a new worker takes its place.
//!
//! A task is sent as the offset of its entry point in the executable and its arguments in
//! MessagePack, so it must be a function item, under fork as under spawn.

mod callbacks;
mod chunked;
pub(crate) mod dispatch;
mod error;
mod executor;
mod future;
mod result;
mod supervisor;
// Rust: `pub(crate)` for the MPI pool (`crate::mpi`), which sends the same tasks to ranks.
pub(crate) mod task;
mod worker;

// The MPI pool sends its worker ranks the same chunk orders.
#[cfg(feature = "mpi")]
pub(crate) use worker::Run;
// It decodes their reports as a local worker's.
#[cfg(feature = "mpi")]
pub(crate) use result::{decode_ran, failed_each};

use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;

pub use callbacks::Callbacks;
pub use chunked::Chunked;
pub use dispatch::PoolDispatch;
pub use error::{CodecError, PoolError};
pub use executor::{ExecutorBuilder, ExecutorMap, ExecutorMapOf, ProcessPoolExecutor};
pub use future::{AsCompleted, DoneAndNotDone, Future, PoolFuture, ReturnWhen, as_completed, wait};
pub use result::{AsyncResult, IMap};
pub use task::{Task, TaskResult};

use supervisor::{Factory, Job, OnComplete, Shared, State, Status};
use worker::{WorkerSetup, no_initializer, worker_main};

use crate::{Process, StartMethod};

/// The value a call of `F` on `Args` gives the caller: the function's return value, or what
/// its `Ok` holds.
pub type TaskValue<F, Args> = <<F as Task<Args>>::Output as TaskResult>::Value;

/// What [`Pool::imap`] returns for a function `F` over the items of `I`.
pub type IMapOf<F, I> =
    IMap<TaskValue<F, (<I as IntoIterator>::Item,)>, <I as IntoIterator>::IntoIter>;

/// What [`Pool::map_async`] returns for a function `F` of one argument `A`: the result of
/// every call, later.
pub type MapResult<F, A> = AsyncResult<Vec<TaskValue<F, (A,)>>>;

/// A pool of worker processes that runs calls of a function on many inputs. Python:
/// `multiprocessing.Pool`.
///
/// ```
/// fn quadrado(numero: u64) -> u64 {
///     numero * numero
/// }
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # shared::set_start_method(shared::StartMethod::Fork); // a doctest has no `init`
/// let pool = shared::Pool::new(2)?;
/// assert_eq!(pool.map(quadrado, 0..5)?, [0, 1, 4, 9, 16]);
/// assert_eq!(pool.apply(quadrado, (7,))?, 49);
/// let resultados: Vec<u64> = pool.imap(quadrado, 1..)?.take(3).collect::<Result<_, _>>()?;
/// assert_eq!(resultados, [1, 4, 9]);
/// pool.close();
/// pool.join()?;
/// # Ok(())
/// # }
/// ```
///
/// Dropping a pool terminates it, as leaving a `with Pool() as pool:` block does: work still
/// running is killed. Call [`close`](Self::close) and [`join`](Self::join) to let it finish.
///
/// # Crashes
/// A task that returns `Err` or panics fails with [`PoolError::Task`], carrying the error's
/// message; the other calls are unaffected. A worker that dies (a SIGKILL, the OOM killer)
/// fails the one chunk it was running with [`PoolError::WorkerDied`], naming its PID and
/// signal, and is replaced; the calls queued behind it run on other workers, and the pool
/// stays usable. That chunk is not retried: a task that killed its worker would likely kill
/// the next one, and a task need not be safe to run twice. CPython's `Pool` waits for ever
/// for that chunk.
///
/// A pool is used by the process that made it: in another process (a forked child that
/// inherited it), every call fails with [`PoolError::Broken`].
pub struct Pool {
    shared: Arc<Shared>,
    supervisor: Mutex<Option<JoinHandle<()>>>,
    owner: u32,
    processes: usize,
}

impl Pool {
    /// A pool of `processes` workers. Python: `Pool(processes)`. For the other options (an
    /// initializer, `maxtasksperchild`, a start method), or `os.process_cpu_count()` workers,
    /// see [`Pool::builder`].
    ///
    /// # Errors
    /// [`PoolError::NoProcesses`] for 0; [`PoolError::Start`] or [`PoolError::Io`] if a worker,
    /// a queue or the supervisor thread could not be made.
    pub fn new(processes: usize) -> Result<Pool, PoolError> {
        Pool::builder().processes(processes).build()
    }

    /// Options for a new pool: [`PoolBuilder`].
    pub fn builder() -> PoolBuilder {
        PoolBuilder::default()
    }

    /// How many workers the pool keeps.
    pub fn processes(&self) -> usize {
        self.processes
    }

    /// The PIDs of the workers alive now (a killed worker's replacement has a new one).
    /// Python has no public equivalent (`[p.pid for p in pool._pool]`).
    pub fn worker_pids(&self) -> Vec<u32> {
        if !self.is_owner() {
            return Vec::new();
        }
        self.shared.lock().worker_pids()
    }

    /// Calls `f(args...)` in a worker and waits for the result. Python: `apply(f, args)`.
    ///
    /// # Errors
    /// Those of [`apply_async`](Self::apply_async) and of [`AsyncResult::get`].
    pub fn apply<F, Args>(&self, f: F, args: Args) -> Result<TaskValue<F, Args>, PoolError>
    where
        F: Task<Args>,
        Args: Serialize + DeserializeOwned,
    {
        self.with_chunks(None).apply(f, args)
    }

    /// Calls `f(args...)` in a worker; the result comes later. Python: `apply_async(f, args)`.
    ///
    /// # Errors
    /// [`PoolError::NeedsFunction`] if `f` is not a function item; [`PoolError::Arguments`] if
    /// `args` cannot be serialized; [`PoolError::NotRunning`] after `close` or `terminate`;
    /// [`PoolError::Initializer`] or [`PoolError::Broken`] if the pool cannot run tasks.
    pub fn apply_async<F, Args>(
        &self,
        f: F,
        args: Args,
    ) -> Result<AsyncResult<TaskValue<F, Args>>, PoolError>
    where
        F: Task<Args>,
        Args: Serialize + DeserializeOwned,
    {
        self.with_chunks(None).apply_async(f, args)
    }

    /// [`apply_async`](Self::apply_async) with `callbacks`, run once the result is in.
    /// Python: `apply_async(f, args, callback=..., error_callback=...)`; see [`Callbacks`].
    ///
    /// # Errors
    /// Those of [`apply_async`](Self::apply_async); the callbacks do not run then.
    pub fn apply_async_with<F, Args>(
        &self,
        f: F,
        args: Args,
        callbacks: Callbacks<TaskValue<F, Args>>,
    ) -> Result<AsyncResult<TaskValue<F, Args>>, PoolError>
    where
        F: Task<Args>,
        Args: Serialize + DeserializeOwned,
    {
        // The one call with the pool's own options.
        self.with_chunks(None).apply_async_with(f, args, callbacks)
    }

    /// Runs `f(args...)` in a worker; the result comes later, as a [`Future`]. The
    /// executor's `submit`, kept here for [`ProcessPoolExecutor`].
    pub(crate) fn submit_future<F, Args>(
        &self,
        f: F,
        args: Args,
    ) -> Result<Future<TaskValue<F, Args>>, PoolError>
    where
        F: Task<Args>,
        Args: Serialize + DeserializeOwned,
    {
        let entry = task::entry_offset(f).ok_or(PoolError::NeedsFunction)?;
        let result = self.send(
            entry,
            &[args],
            Some(1),
            Extras::default(),
            result::collect_one,
        )?;
        Ok(Future::new(result))
    }

    /// Calls `f` on each item and returns the results in input order. Python: `map(f, items)`.
    ///
    /// The input is read whole first, and cut into chunks as Python does: about four per
    /// worker. [`chunked`](Self::chunked) picks the chunk size.
    ///
    /// ```
    /// fn dobro(x: i32) -> i32 {
    ///     2 * x
    /// }
    /// # shared::set_start_method(shared::StartMethod::Fork);
    /// let pool = shared::Pool::new(2)?;
    /// assert_eq!(pool.map(dobro, vec![1, 2, 3])?, [2, 4, 6]);
    /// # Ok::<(), shared::PoolError>(())
    /// ```
    ///
    /// # Errors
    /// Those of [`map_async`](Self::map_async), then the first failure among the calls in
    /// input order (see [`AsyncResult::get`]).
    pub fn map<F, A>(
        &self,
        f: F,
        items: impl IntoIterator<Item = A>,
    ) -> Result<Vec<TaskValue<F, (A,)>>, PoolError>
    where
        F: Task<(A,)>,
        A: Serialize + DeserializeOwned,
    {
        self.with_chunks(None).map(f, items)
    }

    /// Like [`map`](Self::map), returning at once. Python: `map_async(f, items)`.
    ///
    /// # Errors
    /// [`PoolError::NeedsFunction`] if `f` is not a function item; [`PoolError::Arguments`] if
    /// an item cannot be serialized; [`PoolError::NotRunning`] after `close` or `terminate`;
    /// [`PoolError::Initializer`] or [`PoolError::Broken`] if the pool cannot run tasks.
    pub fn map_async<F, A>(
        &self,
        f: F,
        items: impl IntoIterator<Item = A>,
    ) -> Result<MapResult<F, A>, PoolError>
    where
        F: Task<(A,)>,
        A: Serialize + DeserializeOwned,
    {
        self.with_chunks(None).map_async(f, items)
    }

    /// [`map_async`](Self::map_async) with `callbacks`, run once every result is in (with
    /// all of them, or the first failure). Python: `map_async(f, items, callback=...,
    /// error_callback=...)`; see [`Callbacks`].
    ///
    /// # Errors
    /// Those of [`map_async`](Self::map_async); the callbacks do not run then.
    pub fn map_async_with<F, A>(
        &self,
        f: F,
        items: impl IntoIterator<Item = A>,
        callbacks: Callbacks<Vec<TaskValue<F, (A,)>>>,
    ) -> Result<MapResult<F, A>, PoolError>
    where
        F: Task<(A,)>,
        A: Serialize + DeserializeOwned,
    {
        self.with_chunks(None).map_async_with(f, items, callbacks)
    }

    /// Calls `f(a, b, ...)` for each tuple `(a, b, ...)`, results in input order. Python:
    /// `starmap(f, items)`.
    ///
    /// # Errors
    /// Those of [`map`](Self::map).
    pub fn starmap<F, Args>(
        &self,
        f: F,
        items: impl IntoIterator<Item = Args>,
    ) -> Result<Vec<TaskValue<F, Args>>, PoolError>
    where
        F: Task<Args>,
        Args: Serialize + DeserializeOwned,
    {
        self.with_chunks(None).starmap(f, items)
    }

    /// Like [`starmap`](Self::starmap), returning at once. Python: `starmap_async`.
    ///
    /// # Errors
    /// Those of [`map_async`](Self::map_async).
    pub fn starmap_async<F, Args>(
        &self,
        f: F,
        items: impl IntoIterator<Item = Args>,
    ) -> Result<AsyncResult<Vec<TaskValue<F, Args>>>, PoolError>
    where
        F: Task<Args>,
        Args: Serialize + DeserializeOwned,
    {
        self.with_chunks(None).starmap_async(f, items)
    }

    /// [`starmap_async`](Self::starmap_async) with `callbacks`. Python: `starmap_async(f,
    /// items, callback=..., error_callback=...)`; see [`Callbacks`].
    ///
    /// # Errors
    /// Those of [`starmap_async`](Self::starmap_async); the callbacks do not run then.
    pub fn starmap_async_with<F, Args>(
        &self,
        f: F,
        items: impl IntoIterator<Item = Args>,
        callbacks: Callbacks<Vec<TaskValue<F, Args>>>,
    ) -> Result<AsyncResult<Vec<TaskValue<F, Args>>>, PoolError>
    where
        F: Task<Args>,
        Args: Serialize + DeserializeOwned,
    {
        self.with_chunks(None)
            .starmap_async_with(f, items, callbacks)
    }

    /// Calls `f` on each item, lazily: the returned iterator reads the input as its results
    /// are consumed (the first chunks at once), with at most 64 chunks per worker in flight
    /// beyond those consumed, and yields the results in input order. Python: `imap(f, items)`
    /// (one item per chunk unless [`chunked`](Self::chunked)). The input may be endless.
    ///
    /// # Errors
    /// [`PoolError::NeedsFunction`], [`PoolError::NotRunning`], [`PoolError::Initializer`] or
    /// [`PoolError::Broken`] at once, as for [`map_async`](Self::map_async); each item's own
    /// failure comes from the iterator (an item that cannot be serialized gives
    /// [`PoolError::Arguments`] there).
    pub fn imap<F, A, I>(&self, f: F, items: I) -> Result<IMapOf<F, I>, PoolError>
    where
        F: Task<(A,)>,
        A: Serialize + DeserializeOwned,
        I: IntoIterator<Item = A>,
    {
        self.with_chunks(None).imap(f, items)
    }

    /// Like [`imap`](Self::imap), yielding each result as soon as it arrives, in any order.
    /// Python: `imap_unordered(f, items)`.
    ///
    /// # Errors
    /// Those of [`imap`](Self::imap).
    pub fn imap_unordered<F, A, I>(&self, f: F, items: I) -> Result<IMapOf<F, I>, PoolError>
    where
        F: Task<(A,)>,
        A: Serialize + DeserializeOwned,
        I: IntoIterator<Item = A>,
    {
        self.with_chunks(None).imap_unordered(f, items)
    }

    /// The mapping methods with a chunk size of `chunksize` items: Python's `chunksize`
    /// argument. `pool.chunked(1).map(f, items)` is Python's `pool.map(f, items, chunksize=1)`.
    /// A chunk size of 0 makes every call fail with [`PoolError::NoChunksize`].
    pub fn chunked(&self, chunksize: usize) -> Chunked<'_> {
        self.with_chunks(Some(chunksize))
    }

    /// The mapping methods with a timeout for each chunk of this call, instead of the pool's
    /// ([`PoolBuilder::task_timeout`]); see [`Chunked::task_timeout`].
    pub fn task_timeout(&self, timeout: Duration) -> Chunked<'_> {
        self.with_chunks(None).task_timeout(timeout)
    }

    fn with_chunks(&self, chunksize: Option<usize>) -> Chunked<'_> {
        Chunked::new(self, chunksize)
    }

    /// Takes no more work; the workers exit once the work submitted is done. Python:
    /// `close()`. An [`imap`](Self::imap) made before goes on reading its input, as Python's
    /// (which reads it all at once) does, until [`join`](Self::join).
    pub fn close(&self) {
        if self.is_owner() {
            self.shared.lock().close();
            self.shared.wake();
        }
    }

    /// Stops the workers at once (SIGKILL), failing every unfinished call with
    /// [`PoolError::Terminated`]. Python: `terminate()`.
    pub fn terminate(&self) {
        if self.is_owner() {
            self.shared.lock().terminate();
            self.shared.changed.notify_all();
            self.shared.wake();
        }
    }

    /// Waits for every worker to end, after [`close`](Self::close) or
    /// [`terminate`](Self::terminate). Python: `join()`.
    ///
    /// It ends the reading of every [`imap`](Self::imap)'s input: the calls sent before still
    /// give their results, and the items read after fail with [`PoolError::NotRunning`]
    /// (Python has read them all by then). An `imap` sends its first chunks when it is made,
    /// so a short input gives every result even when `join` comes before the first `next`.
    ///
    /// # Errors
    /// [`PoolError::StillRunning`] if the pool was neither closed nor terminated;
    /// [`PoolError::Broken`] in a process other than the pool's.
    pub fn join(&self) -> Result<(), PoolError> {
        self.check_owner()?;
        let mut state = self.shared.lock();
        if state.status == Status::Running {
            return Err(PoolError::StillRunning);
        }
        state.end_all_feeding();
        drop(state);
        self.shared.wake();
        let mut state = self.shared.lock();
        while state.status != Status::Finished {
            state = self.shared.wait(state);
        }
        drop(state);
        let supervisor = self
            .supervisor
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .take();
        if let Some(supervisor) = supervisor {
            let _ = supervisor.join();
        }
        Ok(())
    }

    fn is_owner(&self) -> bool {
        self.owner == std::process::id()
    }

    fn check_owner(&self) -> Result<(), PoolError> {
        if self.is_owner() {
            Ok(())
        } else {
            Err(PoolError::Broken(
                "a pool can be used only by the process that created it".into(),
            ))
        }
    }

    /// Sends `items` to the workers, for the task at `entry`, in chunks of `chunksize` (Python's
    /// default if `None`); returns the job's id. Chunks go out as they are encoded, a few at a
    /// time, so the workers start while the rest is encoded.
    fn submit<T: Serialize>(
        &self,
        entry: u64,
        items: &[T],
        chunksize: Option<usize>,
        streaming: Streaming,
        extras: Extras,
    ) -> Result<u64, PoolError> {
        self.check_owner()?;
        let chunksize = match chunksize {
            Some(0) => return Err(PoolError::NoChunksize),
            Some(chunksize) => chunksize,
            None => default_chunksize(items.len(), self.processes()),
        };
        let streaming = match streaming {
            Streaming::No => false,
            Streaming::IfFewChunks => items.len().div_ceil(chunksize) <= STREAMED_CHUNKS,
        };
        let has_callbacks = extras.on_complete.is_some();
        let job = {
            let mut state = self.shared.lock();
            state.check_running()?;
            let job = state.submit(entry, Vec::new(), streaming);
            // Accepted while running, the job's chunks all run even if the pool is closed
            // while they are still being encoded; a pool that broke or was terminated
            // meanwhile fails them.
            state.start_feeding(job);
            extras.apply(&mut state, job);
            job
        };
        let mut batch = Vec::new();
        let mut batch_bytes = 0;
        let mut chunks = items.chunks(chunksize).peekable();
        while let Some(chunk) = chunks.next() {
            let bytes = match rmp_serde::to_vec(chunk) {
                Ok(bytes) => bytes,
                Err(error) => {
                    // The call fails as a whole: its callbacks do not run.
                    self.shared.lock().discard(job);
                    self.shared.wake();
                    return Err(PoolError::Arguments(CodecError::new(error.to_string())));
                }
            };
            batch_bytes += bytes.len();
            batch.push((chunk.len(), bytes));
            let last = chunks.peek().is_none();
            if batch.len() >= SUBMIT_BATCH || batch_bytes >= SUBMIT_BYTES || last {
                let mut state = self.shared.lock();
                state.feed(job, entry, std::mem::take(&mut batch));
                if last {
                    state.end_feeding(job);
                }
                // The chunks go to the free workers from this thread, which spares a call the
                // round trip through the supervisor; what is left is handed out by whichever
                // thread reads the reports as the workers report. If none does now, the
                // supervisor is rung to: for chunks left queued, and for callbacks, which run
                // even if nobody waits for the result. A lone call handed out whole needs no
                // reader yet: its caller usually reads its result itself.
                let wake = state.hand_out_from_caller();
                let poke = state.has_pending() || has_callbacks;
                drop(state);
                batch_bytes = 0;
                if wake {
                    self.shared.wake();
                } else if poke {
                    self.shared.poke();
                }
            }
        }
        if items.is_empty() {
            self.shared.lock().end_feeding(job);
            self.shared.wake();
        }
        Ok(job)
    }
}

/// What a job has beyond its chunks, set before any chunk can run.
#[derive(Default)]
struct Extras {
    /// Its chunks' timeout, instead of the pool's.
    timeout: Option<Duration>,
    /// The caller's callbacks.
    on_complete: Option<OnComplete>,
}

impl Extras {
    /// The extras of a call with `call`'s options and no callbacks.
    fn of(call: &dispatch::Call) -> Extras {
        Extras {
            timeout: call.timeout,
            on_complete: None,
        }
    }

    /// The extras of a call with `callbacks`, which get the value `collect` makes of the job.
    fn calling<T: Send + 'static>(
        callbacks: Callbacks<T>,
        collect: fn(&Job) -> Result<T, PoolError>,
    ) -> Extras {
        Extras {
            timeout: None,
            on_complete: callbacks.into_on_complete(collect),
        }
    }

    fn apply(self, state: &mut State, job: u64) {
        if let Some(timeout) = self.timeout {
            state.set_timeout(job, Some(timeout));
        }
        if let Some(on_complete) = self.on_complete {
            // The job is still being submitted, so it is not complete: the callback is kept.
            let _ = state.on_complete(job, on_complete, true);
        }
    }
}

/// Whether a job's caller is woken at each chunk's outcome, to decode it while the workers
/// run the rest, or once the job is complete.
#[derive(Clone, Copy)]
enum Streaming {
    No,
    /// When the job has at most [`STREAMED_CHUNKS`] chunks: few wake-ups for much decoding
    /// (Python's default chunking makes four chunks per worker).
    IfFewChunks,
}

const STREAMED_CHUNKS: usize = 64;

/// How many chunks, or how many bytes of them, `submit` gathers before handing them over.
const SUBMIT_BATCH: usize = 64;
const SUBMIT_BYTES: usize = 4096;

/// Python's default chunk size for `map`: the items spread over four chunks per worker.
pub(crate) fn default_chunksize(items: usize, processes: usize) -> usize {
    items.div_ceil(processes.max(1) * 4).max(1)
}

impl Drop for Pool {
    /// Terminates the pool and waits for its workers, as leaving `with Pool() as pool:` does.
    fn drop(&mut self) {
        if self.is_owner() {
            self.terminate();
            let _ = self.join();
        }
    }
}

impl std::fmt::Debug for Pool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if !self.is_owner() {
            return f.debug_struct("Pool").field("owner", &self.owner).finish();
        }
        let state = self.shared.lock();
        f.debug_struct("Pool")
            .field("processes", &state.processes())
            .field("status", &state.status)
            .field("workers", &state.worker_pids())
            .finish()
    }
}

/// Options for a new [`Pool`]: Python's `Pool(processes, initializer, initargs,
/// maxtasksperchild)` and `get_context(method).Pool(...)`.
///
/// ```
/// use shared::Pool;
///
/// fn prepara(saudacao: String) {
///     assert_eq!(saudacao, "olá");
/// }
///
/// fn pid(_: u32) -> u32 {
///     std::process::id()
/// }
///
/// # shared::set_start_method(shared::StartMethod::Fork);
/// let pool = Pool::builder()
///     .processes(1)
///     .initializer(prepara, ("olá".to_owned(),))
///     .maxtasksperchild(1)
///     .build()?;
/// // One task per worker: each call runs in a new process.
/// let pids = pool.chunked(1).map(pid, [0, 0])?;
/// assert_ne!(pids[0], pids[1]);
/// # Ok::<(), shared::PoolError>(())
/// ```
pub struct PoolBuilder {
    processes: Option<usize>,
    maxtasks: Option<usize>,
    task_timeout: Option<Duration>,
    start_method: Option<StartMethod>,
    has_initializer: bool,
    factory: Result<Factory, PoolError>,
}

impl Default for PoolBuilder {
    fn default() -> Self {
        PoolBuilder {
            processes: None,
            maxtasks: None,
            task_timeout: None,
            start_method: None,
            has_initializer: false,
            factory: Ok(factory_of(no_initializer, ())),
        }
    }
}

impl PoolBuilder {
    /// How many workers; without it, [`process_cpu_count`](crate::process_cpu_count)
    /// (Python 3.13+'s default).
    pub fn processes(mut self, processes: usize) -> Self {
        self.processes = Some(processes);
        self
    }

    /// A function each worker calls with `initargs` before its first task. Python:
    /// `initializer=f, initargs=(...)`. Unlike a task's arguments, `initargs` may hold
    /// handles (a [`Queue`](crate::Queue), a [`Lock`](crate::Lock), a [`Value`](crate::Value)),
    /// since they reach each worker as it starts. It must be a function item returning `()` or
    /// `Result<(), E>`.
    ///
    /// If it fails in a worker (returns `Err`, panics, or the worker exits in it), the pool
    /// stops: every call fails with [`PoolError::Initializer`] and its message. CPython starts
    /// new workers for ever instead, and its `map` hangs. A worker killed by a signal while
    /// it starts (an OOM kill, a `kill`) is replaced like any dead worker; only if the first
    /// workers keep dying so (one per worker and two more in a row, none getting through the
    /// initializer) is the initializer taken to kill them, and the pool stops the same way.
    pub fn initializer<I, IA>(mut self, _initializer: I, initargs: IA) -> Self
    where
        I: Task<IA>,
        I::Output: TaskResult<Value = ()>,
        IA: Clone + Serialize + DeserializeOwned + Send + 'static,
    {
        self.has_initializer = true;
        self.factory = if crate::spawn::can_recreate::<I, IA>() {
            Ok(factory::<I, IA>(initargs))
        } else {
            Err(PoolError::NeedsFunction)
        };
        self
    }

    /// Each worker exits after this many chunks, and a new one takes its place. Python:
    /// `maxtasksperchild`.
    pub fn maxtasksperchild(mut self, tasks: usize) -> Self {
        self.maxtasks = Some(tasks);
        self
    }

    /// How long a worker may run one chunk of calls (one task of `apply_async`, one item of
    /// `imap` or `chunked(1)`): a worker still running it then is killed (SIGKILL) and
    /// replaced, that chunk's calls fail with [`PoolError::TaskTimeout`] naming the worker
    /// and the timeout, and the other chunks run on (those queued behind it on other
    /// workers). Without it, a task may run for ever. Python's `Pool` has no such option
    /// (pebble's `ProcessPool` has `timeout`); [`Chunked::task_timeout`] sets one per call.
    ///
    /// The clock of a chunk starts when its worker may start it: when it reported the chunk
    /// before, or when it was sent the chunk while free.
    ///
    /// ```
    /// use std::time::Duration;
    /// use shared::{Pool, PoolError};
    ///
    /// fn dorme(ms: u64) -> u64 {
    ///     std::thread::sleep(Duration::from_millis(ms));
    ///     ms
    /// }
    ///
    /// # shared::set_start_method(shared::StartMethod::Fork);
    /// let pool = Pool::builder().processes(1).task_timeout(Duration::from_millis(200)).build()?;
    /// let lento = pool.apply_async(dorme, (60_000,))?;
    /// assert!(matches!(lento.get(), Err(PoolError::TaskTimeout { .. })));
    /// // A new worker took the killed one's place.
    /// assert_eq!(pool.apply(dorme, (1,))?, 1);
    /// # Ok::<(), PoolError>(())
    /// ```
    pub fn task_timeout(mut self, timeout: Duration) -> Self {
        self.task_timeout = Some(timeout);
        self
    }

    /// The start method of the workers; without it, the program's
    /// ([`get_start_method`](crate::get_start_method)). Python: `get_context(method).Pool()`.
    pub fn start_method(mut self, method: StartMethod) -> Self {
        self.start_method = Some(method);
        self
    }

    /// Starts the pool's workers. Python: `Pool(...)`.
    ///
    /// # Errors
    /// [`PoolError::NoProcesses`] for `processes(0)`; [`PoolError::NoTasksPerChild`] for
    /// `maxtasksperchild(0)`; [`PoolError::NeedsFunction`] if the initializer is not a
    /// function item; [`PoolError::Start`] or [`PoolError::Io`] if a worker, a queue or the
    /// supervisor thread could not be made (the workers already started are killed).
    pub fn build(self) -> Result<Pool, PoolError> {
        // Before any worker is forked: see `install_panic_hook_once`.
        task::install_panic_hook_once();
        let processes = match self.processes {
            Some(0) => return Err(PoolError::NoProcesses),
            Some(processes) => processes,
            None => crate::process_cpu_count().unwrap_or(1).max(1),
        };
        let maxtasks = match self.maxtasks.map(NonZeroUsize::new) {
            Some(None) => return Err(PoolError::NoTasksPerChild),
            Some(Some(tasks)) => Some(tasks.get() as u64),
            None => None,
        };
        let make = self.factory?;
        let start_method = self.start_method;
        let factory: Factory = Box::new(move |setup| {
            let mut process = make(setup);
            let method = start_method.unwrap_or_else(crate::get_start_method);
            let number = process.name().rsplit('-').next().unwrap_or("0").to_owned();
            process.set_name(format!("{}PoolWorker-{number}", method_prefix(method)));
            process.start_method(method)
        });
        let shared = Shared::start(
            processes,
            maxtasks,
            self.has_initializer,
            self.task_timeout,
            factory,
        )?;
        let supervisor = {
            let shared = Arc::clone(&shared);
            std::thread::Builder::new()
                .name("pool-supervisor".into())
                .spawn(move || shared.supervise())
        };
        let supervisor = match supervisor {
            Ok(supervisor) => supervisor,
            Err(error) => {
                let mut state = shared.lock();
                state.terminate();
                return Err(error.into());
            }
        };
        Ok(Pool {
            shared,
            supervisor: Mutex::new(Some(supervisor)),
            owner: std::process::id(),
            processes,
        })
    }
}

impl std::fmt::Debug for PoolBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PoolBuilder")
            .field("processes", &self.processes)
            .field("maxtasksperchild", &self.maxtasks)
            .field("task_timeout", &self.task_timeout)
            .field("start_method", &self.start_method)
            .finish()
    }
}

/// What CPython calls a pool worker of each start method: `ForkPoolWorker-3`.
fn method_prefix(method: StartMethod) -> &'static str {
    match method {
        StartMethod::Fork => "Fork",
        StartMethod::Spawn => "Spawn",
        StartMethod::Forkserver => "ForkServer",
    }
}

/// [`factory`] for the initializer `_initializer`, whose type a caller cannot name.
fn factory_of<I, IA>(_initializer: I, initargs: IA) -> Factory
where
    I: Task<IA>,
    I::Output: TaskResult<Value = ()>,
    IA: Clone + Serialize + DeserializeOwned + Send + 'static,
{
    factory::<I, IA>(initargs)
}

/// Makes each worker: a daemonic process running [`worker_main`] with initializer `I`.
fn factory<I, IA>(initargs: IA) -> Factory
where
    I: Task<IA>,
    I::Output: TaskResult<Value = ()>,
    IA: Clone + Serialize + DeserializeOwned + Send + 'static,
{
    Box::new(move |setup: WorkerSetup| {
        Process::new(worker_main::<I, IA>, (setup, initargs.clone())).daemon(true)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Takes 3 ms on every 7th item: enough unevenness for workers to fall behind each other.
    fn uneven(x: u64) -> u64 {
        if x % 7 == 0 {
            std::thread::sleep(std::time::Duration::from_millis(3));
        }
        x
    }

    /// The dispatch's promise, on every move a pool made over maps of uneven tasks: a chunk
    /// moves at most once, from behind at least one chunk where it was to a worker holding
    /// nothing (issue 22: batches once bounced between workers for ever).
    #[test]
    fn a_chunk_moves_at_most_once_and_only_to_a_freer_worker() {
        let pool = Pool::builder()
            .processes(3)
            .start_method(StartMethod::Fork)
            .build()
            .expect("pool");
        for chunksize in [1, 2, 5] {
            let values = pool.chunked(chunksize).map(uneven, 0..300).expect("map");
            assert_eq!(values, (0..300).collect::<Vec<_>>());
        }
        let values: Vec<u64> = pool
            .imap_unordered(uneven, 0..300)
            .expect("imap")
            .collect::<Result<_, _>>()
            .expect("imap results");
        assert_eq!(values.len(), 300);
        let state = pool.shared.lock();
        let mut seen = std::collections::HashSet::new();
        for &(job, chunk, ahead, target_held) in &state.moves {
            assert!(
                seen.insert((job, chunk)),
                "chunk {chunk} of job {job} moved twice"
            );
            assert!(
                ahead >= 1,
                "chunk {chunk} of job {job} moved from a free worker"
            );
            assert_eq!(
                target_held, 0,
                "chunk {chunk} of job {job} moved to a busy worker"
            );
        }
        eprintln!("{} chunks moved", state.moves.len());
    }

    #[test]
    fn a_batch_never_exceeds_the_room_and_a_free_worker_gets_work() {
        for pending in 0..200 {
            for workers in 1..6 {
                for held in 0..=supervisor::PREFETCH {
                    for room in [0, 1, 3, supervisor::PREFETCH - held] {
                        let take = supervisor::batch_size(pending, workers, held, room);
                        assert!(take <= room && take <= pending);
                        if held == 0 && pending > 0 && room > 0 {
                            assert!(take >= 1, "a free worker got nothing");
                        }
                        if pending <= workers {
                            assert!(take <= 1, "the last chunks go one by one");
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn the_default_chunksize_is_pythons() {
        // divmod(len, 4 * processes), plus one for a remainder; at least 1.
        assert_eq!(default_chunksize(10, 2), 2);
        assert_eq!(default_chunksize(100_000, 2), 12_500);
        assert_eq!(default_chunksize(9, 2), 2);
        assert_eq!(default_chunksize(8, 2), 1);
        assert_eq!(default_chunksize(0, 2), 1);
    }
}
