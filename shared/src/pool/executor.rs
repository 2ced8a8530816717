//! [`ProcessPoolExecutor`]: Python's `concurrent.futures.ProcessPoolExecutor`, over the
//! pool's supervisor. Each `submit` is a job of one chunk; the executor's `map` is the pool's
//! `imap` with a deadline.

use std::fmt;
use std::time::{Duration, Instant};

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::{
    Chunked, Future, Pool, PoolBuilder, PoolDispatch, PoolError, Task, TaskResult, TaskValue,
};
use crate::StartMethod;

/// A pool of worker processes behind the `concurrent.futures` API: [`submit`](Self::submit)
/// gives a [`Future`], [`map`](Self::map) an iterator of results in input order. Python:
/// `concurrent.futures.ProcessPoolExecutor`.
///
/// ```
/// use shared::{PoolError, ProcessPoolExecutor};
///
/// fn quadrado(x: u64) -> u64 {
///     x * x
/// }
///
/// # shared::set_start_method(shared::StartMethod::Fork);
/// let executor = ProcessPoolExecutor::new(2)?;
/// let future = executor.submit(quadrado, (7,))?;
/// assert_eq!(future.result()?, 49);
/// let quadrados: Vec<u64> = executor.map(quadrado, 0..5)?.collect::<Result<_, _>>()?;
/// assert_eq!(quadrados, [0, 1, 4, 9, 16]);
/// executor.shutdown(true, false)?;
/// # Ok::<(), PoolError>(())
/// ```
///
/// # Crashes
/// A worker that dies (a SIGKILL, the OOM killer) fails exactly the future it was running,
/// with [`PoolError::WorkerDied`] naming its PID and signal; a new worker takes its place and
/// the executor stays usable. CPython's executor breaks for good instead
/// (`BrokenProcessPool`: every pending and later future fails). A task that runs past the
/// [task timeout](ExecutorBuilder::task_timeout) fails with [`PoolError::TaskTimeout`] the
/// same way.
///
/// Dropping the executor shuts it down and waits for the calls submitted, as leaving
/// `with ProcessPoolExecutor() as executor:` does.
pub struct ProcessPoolExecutor {
    pool: Pool,
}

impl ProcessPoolExecutor {
    /// An executor of `max_workers` worker processes. Python:
    /// `ProcessPoolExecutor(max_workers)`; see [`builder`](Self::builder) for the other
    /// options.
    ///
    /// # Errors
    /// Those of [`ExecutorBuilder::build`].
    pub fn new(max_workers: usize) -> Result<ProcessPoolExecutor, PoolError> {
        ProcessPoolExecutor::builder()
            .max_workers(max_workers)
            .build()
    }

    /// Options for a new executor: [`ExecutorBuilder`].
    pub fn builder() -> ExecutorBuilder {
        ExecutorBuilder {
            pool: Pool::builder(),
        }
    }

    /// Runs `f(args...)` in a worker; returns its [`Future`] at once. Python:
    /// `submit(fn, *args)`.
    ///
    /// # Errors
    /// [`PoolError::NeedsFunction`] if `f` is not a function item; [`PoolError::Arguments`] if
    /// `args` cannot be serialized; [`PoolError::NotRunning`] after
    /// [`shutdown`](Self::shutdown) (Python: `RuntimeError: cannot schedule new futures after
    /// shutdown`); [`PoolError::Initializer`] or [`PoolError::Broken`] if the executor cannot
    /// run tasks.
    pub fn submit<F, Args>(&self, f: F, args: Args) -> Result<Future<TaskValue<F, Args>>, PoolError>
    where
        F: Task<Args>,
        Args: Serialize + DeserializeOwned,
    {
        self.pool.submit_future(f, args)
    }

    /// Calls `f` on each item, one item per task; the results come in input order. Python:
    /// `map(fn, items)`. Unlike CPython's, which submits every item at once, it reads the input
    /// as the results are consumed (at most 64 tasks per worker ahead), like
    /// [`Pool::imap`]; the input may be endless.
    ///
    /// # Errors
    /// Those of [`map_with`](Self::map_with).
    pub fn map<F, A, I>(&self, f: F, items: I) -> Result<ExecutorMapOf<F, I>, PoolError>
    where
        F: Task<(A,)>,
        A: Serialize + DeserializeOwned,
        I: IntoIterator<Item = A>,
    {
        self.map_with(f, items, 1, None)
    }

    /// [`map`](Self::map) in chunks of `chunksize` items, and with a `timeout` counted from
    /// this call: a result not in by then is `Err(PoolError::Timeout)`, after which the
    /// iterator ends. Python: `map(fn, items, timeout=t, chunksize=n)`.
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// fn dobro(x: u64) -> u64 {
    ///     2 * x
    /// }
    ///
    /// # shared::set_start_method(shared::StartMethod::Fork);
    /// let executor = shared::ProcessPoolExecutor::new(2)?;
    /// let dobros = executor.map_with(dobro, 0..100, 10, Some(Duration::from_secs(60)))?;
    /// assert_eq!(dobros.collect::<Result<Vec<_>, _>>()?, (0..100).map(|x| 2 * x).collect::<Vec<_>>());
    /// # Ok::<(), shared::PoolError>(())
    /// ```
    ///
    /// # Errors
    /// [`PoolError::NoChunksize`] for a chunk size of 0; otherwise those of
    /// [`Pool::imap`] (each call's own failure comes from the iterator).
    pub fn map_with<F, A, I>(
        &self,
        f: F,
        items: I,
        chunksize: usize,
        timeout: Option<Duration>,
    ) -> Result<ExecutorMapOf<F, I>, PoolError>
    where
        F: Task<(A,)>,
        A: Serialize + DeserializeOwned,
        I: IntoIterator<Item = A>,
    {
        ExecutorMap::start(&self.pool, f, items, chunksize, timeout)
    }

    /// Takes no more calls; with `wait`, waits until the calls submitted have finished and
    /// the workers have exited. With `cancel_futures`, every call no worker has been given
    /// yet is cancelled first ([`PoolError::Cancelled`]). Python: `shutdown(wait=True,
    /// cancel_futures=False)`. Calling it again is harmless.
    ///
    /// Without `wait` the calls go on; dropping the executor then waits for them.
    ///
    /// # Errors
    /// [`PoolError::Broken`] in a process other than the executor's.
    pub fn shutdown(&self, wait: bool, cancel_futures: bool) -> Result<(), PoolError> {
        self.pool.check_owner()?;
        if cancel_futures {
            self.pool.shared.lock().cancel_all_pending();
            self.pool.shared.changed.notify_all();
        }
        self.pool.close();
        if wait {
            self.pool.join()?;
        }
        Ok(())
    }

    /// How many workers the executor keeps. Python: `_max_workers`.
    pub fn max_workers(&self) -> usize {
        self.pool.processes()
    }

    /// The PIDs of the workers alive now (a killed worker's replacement has a new one).
    pub fn worker_pids(&self) -> Vec<u32> {
        self.pool.worker_pids()
    }
}

impl Drop for ProcessPoolExecutor {
    /// Shuts the executor down and waits, as leaving a `with` block does.
    fn drop(&mut self) {
        let _ = self.shutdown(true, false);
    }
}

impl fmt::Debug for ProcessPoolExecutor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProcessPoolExecutor")
            .field("pool", &self.pool)
            .finish()
    }
}

/// Options for a new [`ProcessPoolExecutor`]: Python's `ProcessPoolExecutor(max_workers,
/// mp_context, initializer, initargs, max_tasks_per_child)`, and a task timeout.
///
/// ```
/// use shared::{ProcessPoolExecutor, StartMethod};
///
/// fn pid(_: u32) -> u32 {
///     std::process::id()
/// }
///
/// # shared::set_start_method(shared::StartMethod::Fork);
/// let executor = ProcessPoolExecutor::builder()
///     .max_workers(1)
///     .max_tasks_per_child(1)
///     .mp_context(StartMethod::Fork)
///     .build()?;
/// let primeiro = executor.submit(pid, (0,))?.result()?;
/// let segundo = executor.submit(pid, (0,))?.result()?;
/// assert_ne!(primeiro, segundo);
/// # Ok::<(), shared::PoolError>(())
/// ```
#[derive(Debug)]
pub struct ExecutorBuilder {
    pool: PoolBuilder,
}

impl ExecutorBuilder {
    /// How many workers; without it, [`process_cpu_count`](crate::process_cpu_count).
    /// Python: `max_workers`.
    pub fn max_workers(mut self, max_workers: usize) -> Self {
        self.pool = self.pool.processes(max_workers);
        self
    }

    /// A function each worker calls with `initargs` before its first task. Python:
    /// `initializer=f, initargs=(...)`; as [`PoolBuilder::initializer`] (a failing
    /// initializer stops the executor: every call fails with [`PoolError::Initializer`];
    /// CPython's breaks with `BrokenProcessPool`).
    pub fn initializer<I, IA>(mut self, initializer: I, initargs: IA) -> Self
    where
        I: Task<IA>,
        I::Output: TaskResult<Value = ()>,
        IA: Clone + Serialize + DeserializeOwned + Send + 'static,
    {
        self.pool = self.pool.initializer(initializer, initargs);
        self
    }

    /// Each worker exits after this many tasks, and a new one takes its place. Python:
    /// `max_tasks_per_child` (which CPython refuses under fork; here every start method
    /// takes it).
    pub fn max_tasks_per_child(mut self, tasks: usize) -> Self {
        self.pool = self.pool.maxtasksperchild(tasks);
        self
    }

    /// The start method of the workers. Python: `mp_context=get_context(method)`.
    pub fn mp_context(mut self, method: StartMethod) -> Self {
        self.pool = self.pool.start_method(method);
        self
    }

    /// How long a worker may run one task (one chunk of a `map`) before it is killed and
    /// replaced, the task failing with [`PoolError::TaskTimeout`]; see
    /// [`PoolBuilder::task_timeout`]. Python has no such option.
    pub fn task_timeout(mut self, timeout: Duration) -> Self {
        self.pool = self.pool.task_timeout(timeout);
        self
    }

    /// Starts the executor's workers. Python: `ProcessPoolExecutor(...)` (which starts them
    /// as work arrives).
    ///
    /// # Errors
    /// [`PoolError::NoProcesses`] for `max_workers(0)` (Python: `ValueError:
    /// max_workers must be greater than 0`); [`PoolError::NoTasksPerChild`] for
    /// `max_tasks_per_child(0)`; otherwise those of [`PoolBuilder::build`].
    pub fn build(self) -> Result<ProcessPoolExecutor, PoolError> {
        Ok(ProcessPoolExecutor {
            pool: self.pool.build()?,
        })
    }
}

/// What [`ProcessPoolExecutor::map`] returns for a function `F` over the items of `I`.
pub type ExecutorMapOf<F, I> =
    ExecutorMap<TaskValue<F, (<I as IntoIterator>::Item,)>, <I as IntoIterator>::IntoIter>;

/// The iterator of [`ProcessPoolExecutor::map`]: each call's result in input order. With a
/// timeout ([`ProcessPoolExecutor::map_with`]), a result not in by the deadline is
/// `Err(PoolError::Timeout)`, and the iterator ends there (Python raises `TimeoutError` from
/// the generator). Dropping it discards the results still to come.
///
/// It is the pool's lazy `imap` ([`IMap`](crate::IMap) for a local executor, `MpiIMap` for an
/// `MpiPoolExecutor`, whose `MpiExecutorMap` is this with `P = MpiPool`) with a deadline.
pub struct ExecutorMap<V, I, P: PoolDispatch = Pool> {
    results: Option<P::Lazy<V, I>>,
    deadline: Option<Instant>,
}

impl<P: PoolDispatch, V, I> ExecutorMap<V, I, P> {
    /// The executor's `map_with` on `pool`: `f` over `items` in chunks of `chunksize`, with
    /// a deadline `timeout` from now.
    pub(crate) fn start<F, A>(
        pool: &P,
        f: F,
        items: impl IntoIterator<Item = A, IntoIter = I>,
        chunksize: usize,
        timeout: Option<Duration>,
    ) -> Result<Self, PoolError>
    where
        F: Task<(A,), Output: TaskResult<Value = V>>,
        A: Serialize + DeserializeOwned,
        I: Iterator<Item = A>,
    {
        let deadline = timeout.and_then(|timeout| Instant::now().checked_add(timeout));
        let results = Chunked::new(pool, Some(chunksize)).imap(f, items)?;
        Ok(ExecutorMap {
            results: Some(results),
            deadline,
        })
    }
}

impl<V, I, A, P> Iterator for ExecutorMap<V, I, P>
where
    P: PoolDispatch,
    V: DeserializeOwned,
    I: Iterator<Item = A>,
    A: Serialize,
{
    type Item = Result<V, PoolError>;

    fn next(&mut self) -> Option<Self::Item> {
        let results = self.results.as_mut()?;
        let next = P::next_before(results, self.deadline);
        if matches!(next, Some(Err(PoolError::Timeout)) | None) {
            self.results = None;
        }
        next
    }
}

impl<V, I, P: PoolDispatch> fmt::Debug for ExecutorMap<V, I, P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ExecutorMap")
            .field("ended", &self.results.is_none())
            .finish()
    }
}
