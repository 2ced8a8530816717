//! [`MpiPoolExecutor`]: the `concurrent.futures` API over the worker ranks of an MPI job, as
//! [`ProcessPoolExecutor`](crate::ProcessPoolExecutor) is over local processes. Each `submit`
//! is an [`MpiPool`] call of one item; the executor's `map` is the pool's `imap` with a
//! deadline, as the local executor's is.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::ledger::{Failure, Outcome};
use super::pool::{MpiAsyncResult, MpiPool};
use super::world;
use crate::pool::PoolFuture;
use crate::{ExecutorMap, PoolError, Task, TaskValue};

/// The worker ranks of an MPI job behind the `concurrent.futures` API:
/// [`submit`](Self::submit) gives an [`MpiFuture`], [`map`](Self::map) an iterator of results
/// in input order. Python: `mpi4py.futures.MPIPoolExecutor`.
///
/// It has the methods of [`ProcessPoolExecutor`](crate::ProcessPoolExecutor), with the same
/// results; its futures work with [`futures::wait`](crate::futures::wait) and
/// [`as_completed`](crate::futures::as_completed), beside local ones.
///
/// ```no_run
/// use shared::MpiPoolExecutor;
///
/// fn quadrado(x: u64) -> u64 {
///     x * x
/// }
///
/// fn main() -> Result<(), Box<dyn std::error::Error>> {
///     shared::init()?; // worker ranks stay here until rank 0 ends
///     let executor = MpiPoolExecutor::new()?;
///     let future = executor.submit(quadrado, (7,))?;
///     assert_eq!(future.result()?, 49);
///     let quadrados: Vec<u64> = executor.map(quadrado, 0..5)?.collect::<Result<_, _>>()?;
///     assert_eq!(quadrados, [0, 1, 4, 9, 16]);
///     executor.shutdown(true, false)?;
///     Ok(())
/// }
/// ```
///
/// # When something fails
/// As for [`MpiPool`] (see the [module docs](crate::mpi)):
/// - a task that returns `Err` or panics fails its own future with [`PoolError::Task`]; the
///   rank goes on with the next call;
/// - a worker rank that dies ends the whole job (`mpirun` stops every rank, rank 0 included,
///   and exits non-zero): no future of the job completes, as with mpi4py. The local executor
///   instead fails only the future the dead worker ran;
/// - a rank that sends what rank 0 cannot trust breaks the executor: every unfinished and
///   later future fails with [`PoolError::Broken`];
/// - rank 0's `main` returning (or `exit`) while calls are queued: the calls running finish,
///   those not sent are dropped, their futures never complete and their done callbacks never
///   run, and every rank ends cleanly.
///
/// A call given to a rank runs to its end: [`MpiFuture::cancel`] cancels only calls still
/// waiting for a free rank, as CPython cancels only calls not yet in its call queue.
///
/// Dropping the executor shuts it down and waits for the calls submitted, as leaving
/// `with MPIPoolExecutor() as executor:` does; the worker ranks stay for the next executor
/// or pool, until rank 0 ends.
pub struct MpiPoolExecutor {
    pool: MpiPool,
}

impl MpiPoolExecutor {
    /// An executor of every worker rank of the job. Python: `MPIPoolExecutor()` (mpi4py).
    ///
    /// # Errors
    /// Those of [`MpiPool::new`].
    pub fn new() -> Result<MpiPoolExecutor, PoolError> {
        Ok(MpiPoolExecutor {
            pool: MpiPool::new()?,
        })
    }

    /// Runs `f(args...)` on a worker rank; returns its [`MpiFuture`] at once. Python:
    /// `submit(fn, *args)`.
    ///
    /// # Errors
    /// [`PoolError::NeedsFunction`] if `f` is not a function item; [`PoolError::Arguments`] if
    /// `args` cannot be serialized; [`PoolError::NotRunning`] after
    /// [`shutdown`](Self::shutdown) (Python: `RuntimeError: cannot schedule new futures after
    /// shutdown`); [`PoolError::Broken`] if the executor cannot run tasks.
    pub fn submit<F, Args>(
        &self,
        f: F,
        args: Args,
    ) -> Result<MpiFuture<TaskValue<F, Args>>, PoolError>
    where
        F: Task<Args>,
        Args: Serialize + DeserializeOwned,
    {
        let result = self.pool.apply_async(f, args)?;
        Ok(MpiFuture {
            inner: Arc::new(result),
        })
    }

    /// Calls `f` on each item, one item per task; the results come in input order. Python:
    /// `map(fn, items)`. As the local executor's, it reads the input as the results are
    /// consumed (at most 64 tasks per worker rank ahead); the input may be endless.
    ///
    /// # Errors
    /// Those of [`map_with`](Self::map_with).
    pub fn map<F, A, I>(&self, f: F, items: I) -> Result<MpiExecutorMapOf<F, I>, PoolError>
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
    /// # Errors
    /// [`PoolError::NoChunksize`] for a chunk size of 0; otherwise those of
    /// [`MpiPool::imap`] (each call's own failure comes from the iterator).
    pub fn map_with<F, A, I>(
        &self,
        f: F,
        items: I,
        chunksize: usize,
        timeout: Option<Duration>,
    ) -> Result<MpiExecutorMapOf<F, I>, PoolError>
    where
        F: Task<(A,)>,
        A: Serialize + DeserializeOwned,
        I: IntoIterator<Item = A>,
    {
        ExecutorMap::start(&self.pool, f, items, chunksize, timeout)
    }

    /// Takes no more calls; with `wait`, waits until the calls submitted have finished. With
    /// `cancel_futures`, every call no rank has been given yet is cancelled first
    /// ([`PoolError::Cancelled`]; a `map`'s calls are not futures and go on). Python:
    /// `shutdown(wait=True, cancel_futures=False)`. Calling it again is harmless. The worker
    /// ranks stay: only rank 0's exit stops them.
    ///
    /// # Errors
    /// None today: it returns a `Result` as
    /// [`ProcessPoolExecutor::shutdown`](crate::ProcessPoolExecutor::shutdown) does, so that
    /// code written for one executor runs on the other.
    pub fn shutdown(&self, wait: bool, cancel_futures: bool) -> Result<(), PoolError> {
        if cancel_futures {
            self.pool.cancel_pending();
        }
        self.pool.close();
        if wait {
            self.pool.join()?;
        }
        Ok(())
    }

    /// How many worker ranks run the calls: the job's size less rank 0. Python:
    /// `_max_workers`.
    pub fn max_workers(&self) -> usize {
        self.pool.processes()
    }
}

impl Drop for MpiPoolExecutor {
    /// Shuts the executor down and waits, as leaving a `with` block does.
    fn drop(&mut self) {
        let _ = self.shutdown(true, false);
    }
}

impl fmt::Debug for MpiPoolExecutor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MpiPoolExecutor")
            .field("pool", &self.pool)
            .finish()
    }
}

/// The result of a call submitted to an [`MpiPoolExecutor`], arriving later. Python:
/// `concurrent.futures.Future` (as mpi4py's executor returns).
///
/// The methods of the local [`Future`](crate::Future), with the same meaning. A future is a
/// handle: clones share the one call, and [`result`](Self::result) may be read any number of
/// times. Dropping every clone discards the result; the call still runs, and its done
/// callbacks still run.
///
/// If the job ends before the call does (rank 0's exit), the call never completes: a
/// `result` waited for then fails with [`PoolError::Broken`].
pub struct MpiFuture<T> {
    inner: Arc<MpiAsyncResult<T>>,
}

impl<T> Clone for MpiFuture<T> {
    fn clone(&self) -> Self {
        MpiFuture {
            inner: Arc::clone(&self.inner),
        }
    }
}

impl<T> MpiFuture<T> {
    /// Waits for the call and returns its value. Python: `result()`.
    ///
    /// # Errors
    /// [`PoolError::Cancelled`] if it was cancelled; otherwise those of
    /// [`MpiAsyncResult::get`] ([`PoolError::Task`] for the task's own error or panic, ...).
    pub fn result(&self) -> Result<T, PoolError> {
        self.inner.get()
    }

    /// Like [`result`](Self::result), waiting at most `timeout`, however busy the ranks are.
    /// Python: `result(timeout)`.
    ///
    /// # Errors
    /// [`PoolError::Timeout`] if the call has not finished in time (it goes on); otherwise
    /// those of [`result`](Self::result).
    pub fn result_timeout(&self, timeout: Duration) -> Result<T, PoolError> {
        self.inner.get_timeout(timeout)
    }

    /// Waits for the call; the error it failed with, or `None` if it succeeded. Python:
    /// `exception()`, which raises `CancelledError` for a cancelled call where this returns
    /// `Some(PoolError::Cancelled)`.
    pub fn exception(&self) -> Option<PoolError> {
        self.result().err()
    }

    /// Cancels the call if no rank has been given it yet; returns whether it is cancelled
    /// (true also if it already was). Python: `cancel()`. Its [`result`](Self::result) is then
    /// [`PoolError::Cancelled`], and its done callbacks run. A call a rank runs is
    /// [`running`](Self::running) and cannot be cancelled.
    pub fn cancel(&self) -> bool {
        let cancelled = world::root()
            .as_mut()
            .is_some_and(|root| root.ledger.cancel(self.inner.job()));
        // The progress thread runs the done callbacks; the waiters see the outcome.
        world::wake();
        cancelled
    }

    /// Whether the call was cancelled. Python: `cancelled()`.
    pub fn cancelled(&self) -> bool {
        self.cancelled_in(world::root().as_ref())
    }

    /// Whether a rank has been given the call and it has not finished. Python: `running()`.
    pub fn running(&self) -> bool {
        world::root()
            .as_ref()
            .is_some_and(|root| root.ledger.is_held(self.inner.job()))
    }

    /// Whether the call has finished: it has a value or an error, or was cancelled (or the
    /// job ended: nothing more will come). Python: `done()`.
    pub fn done(&self) -> bool {
        self.inner.ready()
    }

    /// Whether the call has finished with an error other than its cancellation: what
    /// [`ReturnWhen::FirstException`](crate::ReturnWhen::FirstException) waits for.
    fn failed_not_cancelled(&self) -> bool {
        let root = world::root();
        let settled = root
            .as_ref()
            .is_some_and(|root| !root.ledger.in_flight(self.inner.job()));
        settled
            && !self.cancelled_in(root.as_ref())
            && self.inner.collect_from(root.as_ref()).is_err()
    }

    /// Whether the call has settled as cancelled: its one chunk failed so.
    fn cancelled_in(&self, root: Option<&world::Root>) -> bool {
        let job = self.inner.job();
        root.filter(|root| !root.ledger.in_flight(job))
            .and_then(|root| root.ledger.jobs.get(&job))
            .is_some_and(|record| {
                matches!(
                    record.outcomes.get(&0),
                    Some(Outcome::Failed(Failure::Cancelled))
                )
            })
    }
}

impl<T: 'static> MpiFuture<T> {
    /// Calls `callback` with the future once the call has finished (or been cancelled): at
    /// once, on this thread, if it already has; otherwise on rank 0's progress thread, once,
    /// after [`done`](Self::done) turns true. Python: `add_done_callback(fn)`. Callbacks run
    /// in the order they were added; a panic in one is caught (the panic hook prints it) and
    /// the others run. A callback must not wait for another call's result: the progress
    /// thread that would bring it is running the callback.
    pub fn add_done_callback(&self, callback: impl FnOnce(&MpiFuture<T>) + Send + 'static) {
        let future = self.clone();
        let run: super::ledger::Callback = Box::new(move || callback(&future));
        let mut root = world::root();
        let now = match root.as_mut() {
            Some(root) => root.ledger.on_settled(self.inner.job(), run),
            None => Some(run),
        };
        drop(root);
        if let Some(run) = now {
            run();
        }
    }
}

impl<T: 'static> PoolFuture for MpiFuture<T> {
    fn on_done(&self, callback: Box<dyn FnOnce() + Send>) {
        self.add_done_callback(move |_| callback());
    }

    fn failed(&self) -> bool {
        self.failed_not_cancelled()
    }
}

impl<T> fmt::Debug for MpiFuture<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = if self.cancelled() {
            "cancelled"
        } else if self.done() {
            "finished"
        } else if self.running() {
            "running"
        } else {
            "pending"
        };
        f.debug_struct("MpiFuture").field("state", &state).finish()
    }
}

/// What [`MpiPoolExecutor::map`] returns for a function `F` over the items of `I`.
pub type MpiExecutorMapOf<F, I> =
    MpiExecutorMap<TaskValue<F, (<I as IntoIterator>::Item,)>, <I as IntoIterator>::IntoIter>;

/// The iterator of [`MpiPoolExecutor::map`]: each call's result in input order, as
/// [`ExecutorMap`] is for the local executor (it is that iterator over the worker ranks).
/// With a timeout ([`MpiPoolExecutor::map_with`]), a result not in by the deadline is
/// `Err(PoolError::Timeout)`, and the iterator ends there. Dropping it discards the results
/// still to come.
pub type MpiExecutorMap<V, I> = ExecutorMap<V, I, MpiPool>;
