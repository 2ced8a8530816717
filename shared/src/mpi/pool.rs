//! [`MpiPool`]: the pool's API over the worker ranks of an MPI job, and its results.

use std::collections::VecDeque;
use std::marker::PhantomData;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::ledger::{Failure, Job, Outcome};
use super::world::{self, Root};
use crate::pool::dispatch::{Call, PoolDispatch, Sealed};
use crate::pool::task;
use crate::pool::{decode_ran, failed_each};
use crate::{Chunked, CodecError, PoolError, Task, TaskValue};

/// What [`MpiPool::map_async`] returns for a function `F` of one argument `A`.
pub type MpiMapResult<F, A> = MpiAsyncResult<Vec<TaskValue<F, (A,)>>>;

/// What [`MpiPool::imap`] returns for a function `F` over the items of `I`.
pub type MpiIMapOf<F, I> =
    MpiIMap<TaskValue<F, (<I as IntoIterator>::Item,)>, <I as IntoIterator>::IntoIter>;

/// Why [`MpiPool::new`] found no MPI job.
const NOT_RANK_ZERO: &str = "this process is not rank 0 of an MPI job: start the program with \
     mpirun (or srun), with the feature `mpi`, and call shared::init() first in main";

/// Why a call made after the end of the job fails.
const JOB_ENDED: &str = "the MPI job is ending: its worker ranks were stopped";

/// Each pool's number, so that `terminate` and `join` act on its own calls only.
static NEXT_POOL: AtomicU64 = AtomicU64::new(0);

/// A pool whose workers are the other ranks of the MPI job this program runs in: the
/// [`Pool`](crate::Pool) API (`map`, `imap`, `imap_unordered`, `starmap`, `apply_async`,
/// chunking) across machines. Python: `mpi4py.futures.MPIPoolExecutor`, or Ray's
/// `ray.util.multiprocessing.Pool`, under `multiprocessing.Pool`'s API.
///
/// Run the program with `mpirun -n N program` (or `srun`): [`init`](crate::init) turns ranks
/// 1 to N−1 into workers and runs `main` on rank 0 only, where the pool hands them chunks of
/// calls. Results are the local pool's, in the same order; see the [module docs](crate::mpi)
/// for what crosses the network and what happens when something fails.
///
/// ```no_run
/// fn quadrado(numero: u64) -> u64 {
///     numero * numero
/// }
///
/// fn main() -> Result<(), Box<dyn std::error::Error>> {
///     shared::init()?; // worker ranks stay here until rank 0 ends
///     let pool = shared::MpiPool::new()?;
///     assert_eq!(pool.map(quadrado, 0..5)?, [0, 1, 4, 9, 16]);
///     assert_eq!(pool.chunked(1).map(quadrado, [3])?, [9]);
///     Ok(())
/// }
/// ```
///
/// Every pool of the program shares the same worker ranks, which `mpirun` started and only
/// rank 0's exit stops: `close`, `join` and `terminate` act on this pool's calls, not on the
/// ranks.
pub struct MpiPool {
    id: u64,
    workers: usize,
    closed: AtomicBool,
}

impl MpiPool {
    /// A pool of every worker rank of the job. Python:
    /// `MPIPoolExecutor()` (mpi4py).
    ///
    /// # Errors
    /// [`PoolError::Broken`] if this process is not rank 0 of an MPI job (not started by
    /// `mpirun`, or `init` was not called), if the job already ended, or if rank 0's progress
    /// thread (see the [module docs](crate::mpi)) cannot be started;
    /// [`PoolError::NoProcesses`] if the job has no rank but this one (`mpirun -n 1`).
    pub fn new() -> Result<MpiPool, PoolError> {
        let workers =
            world::worker_ranks().ok_or_else(|| PoolError::Broken(NOT_RANK_ZERO.into()))?;
        if workers == 0 {
            return Err(PoolError::NoProcesses);
        }
        world::start_progress().map_err(PoolError::Broken)?;
        Ok(MpiPool {
            id: NEXT_POOL.fetch_add(1, Ordering::Relaxed),
            workers,
            closed: AtomicBool::new(false),
        })
    }

    /// How many worker ranks run the calls: the job's size less rank 0.
    pub fn processes(&self) -> usize {
        self.workers
    }

    /// Calls `f(args...)` on a worker rank and waits for the result. Python: `apply(f, args)`.
    ///
    /// # Errors
    /// Those of [`apply_async`](Self::apply_async) and of [`MpiAsyncResult::get`].
    pub fn apply<F, Args>(&self, f: F, args: Args) -> Result<TaskValue<F, Args>, PoolError>
    where
        F: Task<Args>,
        Args: Serialize + DeserializeOwned,
    {
        self.with_chunks(None).apply(f, args)
    }

    /// Calls `f(args...)` on a worker rank; the result comes later. Python:
    /// `apply_async(f, args)`.
    ///
    /// # Errors
    /// [`PoolError::NeedsFunction`] if `f` is not a function item; [`PoolError::Arguments`] if
    /// `args` cannot be serialized; [`PoolError::NotRunning`] after `close` or `terminate`;
    /// [`PoolError::Broken`] if the pool cannot run tasks (see [`MpiPool`]).
    pub fn apply_async<F, Args>(
        &self,
        f: F,
        args: Args,
    ) -> Result<MpiAsyncResult<TaskValue<F, Args>>, PoolError>
    where
        F: Task<Args>,
        Args: Serialize + DeserializeOwned,
    {
        self.with_chunks(None).apply_async(f, args)
    }

    /// Calls `f` on each item, results in input order. Python: `map(f, items)`, in chunks of
    /// about four per worker rank unless [`chunked`](Self::chunked).
    ///
    /// # Errors
    /// Those of [`map_async`](Self::map_async), then the first failure among the calls in
    /// input order (see [`MpiAsyncResult::get`]).
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
    /// Those of [`apply_async`](Self::apply_async).
    pub fn map_async<F, A>(
        &self,
        f: F,
        items: impl IntoIterator<Item = A>,
    ) -> Result<MpiMapResult<F, A>, PoolError>
    where
        F: Task<(A,)>,
        A: Serialize + DeserializeOwned,
    {
        self.with_chunks(None).map_async(f, items)
    }

    /// Calls `f(a, b, ...)` for each tuple, results in input order. Python: `starmap`.
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
    /// Those of [`apply_async`](Self::apply_async).
    pub fn starmap_async<F, Args>(
        &self,
        f: F,
        items: impl IntoIterator<Item = Args>,
    ) -> Result<MpiAsyncResult<Vec<TaskValue<F, Args>>>, PoolError>
    where
        F: Task<Args>,
        Args: Serialize + DeserializeOwned,
    {
        self.with_chunks(None).starmap_async(f, items)
    }

    /// Calls `f` on each item, lazily, results in input order: the input is read as the
    /// results are consumed, at most 64 chunks per worker rank ahead. Python: `imap`.
    ///
    /// # Errors
    /// [`PoolError::NeedsFunction`], [`PoolError::NotRunning`] or [`PoolError::Broken`] at
    /// once; each item's own failure comes from the iterator.
    pub fn imap<F, A, I>(&self, f: F, items: I) -> Result<MpiIMapOf<F, I>, PoolError>
    where
        F: Task<(A,)>,
        A: Serialize + DeserializeOwned,
        I: IntoIterator<Item = A>,
    {
        self.with_chunks(None).imap(f, items)
    }

    /// Like [`imap`](Self::imap), yielding each result as it arrives. Python:
    /// `imap_unordered`.
    ///
    /// # Errors
    /// Those of [`imap`](Self::imap).
    pub fn imap_unordered<F, A, I>(&self, f: F, items: I) -> Result<MpiIMapOf<F, I>, PoolError>
    where
        F: Task<(A,)>,
        A: Serialize + DeserializeOwned,
        I: IntoIterator<Item = A>,
    {
        self.with_chunks(None).imap_unordered(f, items)
    }

    /// The mapping methods with a chunk size of `chunksize` items: Python's `chunksize`. A
    /// chunk size of 0 makes every call fail with [`PoolError::NoChunksize`].
    pub fn chunked(&self, chunksize: usize) -> MpiChunked<'_> {
        self.with_chunks(Some(chunksize))
    }

    fn with_chunks(&self, chunksize: Option<usize>) -> MpiChunked<'_> {
        Chunked::new(self, chunksize)
    }

    /// Takes no more work. Python: `close()`.
    pub fn close(&self) {
        self.closed.store(true, Ordering::Release);
    }

    /// Takes no more work and fails the calls not yet sent to a rank with
    /// [`PoolError::Terminated`]. Python: `terminate()`. Unlike the local pool's, it cannot
    /// kill the chunks running: a rank belongs to the job, not to the pool, so they run to
    /// their end.
    pub fn terminate(&self) {
        self.close();
        if let Some(root) = world::root().as_mut() {
            root.ledger.terminate(self.id);
        }
        world::wake();
    }

    /// Cancels the calls of this pool that no rank has been given (not an `imap`'s): each
    /// fails with [`PoolError::Cancelled`].
    pub(crate) fn cancel_pending(&self) {
        if let Some(root) = world::root().as_mut() {
            root.ledger.cancel_pending(self.id);
        }
        world::wake();
    }

    /// Waits until every call of this pool has come back, after [`close`](Self::close) or
    /// [`terminate`](Self::terminate). Python: `join()`. The worker ranks go on waiting for
    /// another pool; rank 0's exit stops them.
    ///
    /// # Errors
    /// [`PoolError::StillRunning`] if the pool was neither closed nor terminated.
    pub fn join(&self) -> Result<(), PoolError> {
        if !self.closed.load(Ordering::Acquire) {
            return Err(PoolError::StillRunning);
        }
        drop(world::wait_until(world::root(), None, |root| {
            !root.ledger.pool_in_flight(self.id)
        }));
        Ok(())
    }

    /// Sends `items` for the task at `entry`, in chunks of `chunksize` (Python's default if
    /// `None`), every chunk encoded before any is sent; returns the job's id.
    pub(crate) fn submit<T: Serialize>(
        &self,
        entry: u64,
        items: &[T],
        chunksize: Option<usize>,
    ) -> Result<u64, PoolError> {
        let chunksize = match chunksize {
            Some(0) => return Err(PoolError::NoChunksize),
            Some(chunksize) => chunksize,
            None => crate::pool::default_chunksize(items.len(), self.workers),
        };
        let chunks = items
            .chunks(chunksize)
            .map(|chunk| Ok((chunk.len(), encode_chunk(chunk)?)))
            .collect::<Result<Vec<_>, PoolError>>()?;
        let mut root = self.running_root()?;
        let root = root
            .as_mut()
            .ok_or_else(|| PoolError::Broken(JOB_ENDED.into()))?;
        let seal = task::seal(&root.token, entry);
        let job = root.ledger.new_job(self.id, false);
        for (len, args) in chunks {
            root.ledger.add_chunk(job, len, entry, seal, args);
        }
        world::wake();
        Ok(job)
    }

    /// Rank 0's state, if this pool may take work.
    pub(crate) fn running_root(
        &self,
    ) -> Result<std::sync::MutexGuard<'static, Option<Root>>, PoolError> {
        if self.closed.load(Ordering::Acquire) {
            return Err(PoolError::NotRunning);
        }
        let root = world::root();
        match root.as_ref() {
            None => Err(PoolError::Broken(JOB_ENDED.into())),
            Some(state) => match &state.ledger.broken {
                Some(why) => Err(PoolError::Broken(why.clone())),
                None => Ok(root),
            },
        }
    }
}

impl Drop for MpiPool {
    /// Terminates the pool, as leaving `with Pool() as pool:` does: its calls not yet sent
    /// fail; the worker ranks stay for the next pool.
    fn drop(&mut self) {
        self.terminate();
    }
}

impl std::fmt::Debug for MpiPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MpiPool")
            .field("processes", &self.workers)
            .field("closed", &self.closed.load(Ordering::Relaxed))
            .finish()
    }
}

fn encode_chunk<T: Serialize>(chunk: &[T]) -> Result<Vec<u8>, PoolError> {
    rmp_serde::to_vec(chunk)
        .map_err(|error| PoolError::Arguments(CodecError::new(error.to_string())))
}

/// The mapping methods of an [`MpiPool`] with a chosen chunk size; made by
/// [`MpiPool::chunked`]. Each method is the `MpiPool` method of the same name.
pub type MpiChunked<'pool> = Chunked<'pool, MpiPool>;

impl Sealed for MpiPool {}

/// The calls of [`Chunked`], over the worker ranks: every chunk of a call is encoded before
/// any is sent, and rank 0's progress thread hands them out.
impl PoolDispatch for MpiPool {
    type Async<T> = MpiAsyncResult<T>;
    type Lazy<V, I> = MpiIMap<V, I>;

    fn map_later<A, V>(
        &self,
        call: &Call,
        entry: u64,
        items: Vec<A>,
    ) -> Result<MpiAsyncResult<Vec<V>>, PoolError>
    where
        A: Serialize,
        V: DeserializeOwned + Send + 'static,
    {
        let job = self.submit(entry, &items, call.chunksize)?;
        Ok(MpiAsyncResult::new(job, collect_all))
    }

    fn apply_later<Args, V>(
        &self,
        _call: &Call,
        entry: u64,
        args: Args,
    ) -> Result<MpiAsyncResult<V>, PoolError>
    where
        Args: Serialize,
        V: DeserializeOwned + Send + 'static,
    {
        let job = self.submit(entry, &[args], Some(1))?;
        Ok(MpiAsyncResult::new(job, collect_one))
    }

    fn get<T>(result: &MpiAsyncResult<T>) -> Result<T, PoolError> {
        result.get()
    }

    fn imap<V, I>(
        &self,
        _call: &Call,
        entry: u64,
        items: I,
        chunksize: usize,
        ordered: bool,
    ) -> Result<MpiIMap<V, I>, PoolError>
    where
        V: DeserializeOwned,
        I: Iterator,
        I::Item: Serialize,
    {
        let mut root = self.running_root()?;
        let root = root
            .as_mut()
            .ok_or_else(|| PoolError::Broken(JOB_ENDED.into()))?;
        let job = root.ledger.new_job(self.id, true);
        let mut imap = MpiIMap {
            job,
            entry,
            seal: task::seal(&root.token, entry),
            input: Some(items),
            chunksize,
            ahead: AHEAD_PER_WORKER * self.workers,
            ordered,
            submitted: 0,
            taken: 0,
            ready: VecDeque::new(),
            values: PhantomData,
        };
        imap.feed(root);
        world::wake();
        Ok(imap)
    }

    fn next_before<V, I>(
        lazy: &mut MpiIMap<V, I>,
        deadline: Option<Instant>,
    ) -> Option<Result<V, PoolError>>
    where
        V: DeserializeOwned,
        I: Iterator,
        I::Item: Serialize,
    {
        lazy.next_before(deadline)
    }
}

/// How many chunks per worker rank an `imap` keeps sent and not yet consumed: the local
/// pool's bound.
const AHEAD_PER_WORKER: usize = 64;

/// The result of an [`MpiPool`] call, which arrives later. Python: `AsyncResult`.
///
/// Rank 0's progress thread sends a call's chunks as ranks free up and takes their reports;
/// [`get`](Self::get) and [`wait`](Self::wait) wait for it, [`get_timeout`](Self::get_timeout)
/// and [`wait_timeout`](Self::wait_timeout) at most as long as asked, however busy the ranks.
/// Dropping it discards the result (the chunks still run).
pub struct MpiAsyncResult<T> {
    job: u64,
    collect: fn(&Job) -> Result<T, PoolError>,
}

impl<T> MpiAsyncResult<T> {
    pub(crate) fn new(job: u64, collect: fn(&Job) -> Result<T, PoolError>) -> Self {
        MpiAsyncResult { job, collect }
    }

    pub(crate) fn job(&self) -> u64 {
        self.job
    }

    /// Waits for the result and returns it. Python: `get()`.
    ///
    /// # Errors
    /// The first failure among the calls, in input order: [`PoolError::Task`] (the task
    /// returned `Err` or panicked), [`PoolError::Encoding`], [`PoolError::Terminated`],
    /// [`PoolError::Cancelled`] (an executor's call), [`PoolError::Decode`] (the result is not
    /// a `T`), or [`PoolError::Broken`] (a worker rank sent what rank 0 cannot trust, or the
    /// job ended).
    pub fn get(&self) -> Result<T, PoolError> {
        let root = self.wait_until(None);
        self.collect_from(root.as_ref())
    }

    /// Like [`get`](Self::get), waiting at most `timeout`. Python: `get(timeout)`.
    ///
    /// # Errors
    /// [`PoolError::Timeout`] if the result did not arrive in time (the calls go on);
    /// otherwise those of [`get`](Self::get).
    pub fn get_timeout(&self, timeout: Duration) -> Result<T, PoolError> {
        let root = self.wait_until(Instant::now().checked_add(timeout));
        if !self.settled(root.as_ref()) {
            return Err(PoolError::Timeout);
        }
        self.collect_from(root.as_ref())
    }

    /// Waits for the result. Python: `wait()`.
    pub fn wait(&self) {
        drop(self.wait_until(None));
    }

    /// Waits at most `timeout` for the result; returns whether it has arrived. Python:
    /// `wait(timeout)`, then `ready()`.
    pub fn wait_timeout(&self, timeout: Duration) -> bool {
        let root = self.wait_until(Instant::now().checked_add(timeout));
        self.settled(root.as_ref())
    }

    /// Whether the result is there, without waiting. Python: `ready()`.
    pub fn ready(&self) -> bool {
        self.settled(world::root().as_ref())
    }

    /// Whether every call succeeded. Python: `successful()`.
    ///
    /// # Errors
    /// [`PoolError::NotReady`] if the result has not arrived.
    pub fn successful(&self) -> Result<bool, PoolError> {
        let root = world::root();
        if !self.settled(root.as_ref()) {
            return Err(PoolError::NotReady);
        }
        Ok(self.collect_from(root.as_ref()).is_ok())
    }

    /// Rank 0's state once the call has settled, the job has ended, or `deadline` passed.
    fn wait_until(
        &self,
        deadline: Option<Instant>,
    ) -> std::sync::MutexGuard<'static, Option<Root>> {
        world::wait_until(world::root(), deadline, |root| {
            !root.ledger.in_flight(self.job)
        })
    }

    /// Whether every chunk of the call has its outcome (or the job ended: nothing will come).
    fn settled(&self, root: Option<&Root>) -> bool {
        root.is_none_or(|root| !root.ledger.in_flight(self.job))
    }

    pub(crate) fn collect_from(&self, root: Option<&Root>) -> Result<T, PoolError> {
        let root = root.ok_or_else(|| PoolError::Broken(JOB_ENDED.into()))?;
        let job = root
            .ledger
            .jobs
            .get(&self.job)
            .ok_or_else(|| PoolError::Broken("the result was discarded".into()))?;
        (self.collect)(job)
    }
}

impl<T> Drop for MpiAsyncResult<T> {
    fn drop(&mut self) {
        forget(self.job);
    }
}

impl<T> std::fmt::Debug for MpiAsyncResult<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MpiAsyncResult")
            .field("job", &self.job)
            .finish()
    }
}

/// Forgets a job whose results nobody will read: the outcomes still to come are dropped.
fn forget(job: u64) {
    let mut root = world::root();
    let record = root.as_mut().and_then(|root| root.ledger.jobs.remove(&job));
    // Dropped without the lock: its callbacks may hold futures, whose drop takes it.
    drop(root);
    drop(record);
}

/// The iterator of [`MpiPool::imap`] and [`MpiPool::imap_unordered`]: it reads its input as
/// its results are consumed and yields each call's result. Python: `IMapIterator`.
pub struct MpiIMap<V, I> {
    job: u64,
    entry: u64,
    seal: task::Seal,
    input: Option<I>,
    chunksize: usize,
    /// The most chunks sent and not yet taken.
    ahead: usize,
    ordered: bool,
    submitted: u64,
    taken: u64,
    ready: VecDeque<Result<V, PoolError>>,
    values: PhantomData<fn() -> V>,
}

impl<V, I, A> MpiIMap<V, I>
where
    V: DeserializeOwned,
    I: Iterator<Item = A>,
    A: Serialize,
{
    /// Reads and queues chunks of the input until `ahead` chunks are out or it ends;
    /// whether it queued any.
    fn feed(&mut self, root: &mut Root) -> bool {
        let before = self.submitted;
        while self.submitted - self.taken < self.ahead as u64 {
            let Some(input) = self.input.as_mut() else {
                break;
            };
            let chunk: Vec<A> = input.by_ref().take(self.chunksize).collect();
            if chunk.is_empty() {
                self.input = None;
                break;
            }
            match encode_chunk(&chunk) {
                Ok(args) => {
                    root.ledger
                        .add_chunk(self.job, chunk.len(), self.entry, self.seal, args)
                }
                Err(error) => root.ledger.add_failed_chunk(
                    self.job,
                    chunk.len(),
                    Failure::Arguments(error_message(&error)),
                ),
            }
            self.submitted += 1;
        }
        self.submitted != before
    }

    /// The next result, waiting at most `timeout` for it. Python: `next(timeout)`.
    ///
    /// `None` once every result was yielded; `Some(Err(PoolError::Timeout))` if none arrived
    /// in time (call again to keep waiting: nothing is lost). The errors are those of
    /// [`MpiAsyncResult::get`].
    pub fn next_timeout(&mut self, timeout: Duration) -> Option<Result<V, PoolError>> {
        self.next_before(Instant::now().checked_add(timeout))
    }

    fn next_before(&mut self, deadline: Option<Instant>) -> Option<Result<V, PoolError>> {
        loop {
            if let Some(item) = self.ready.pop_front() {
                return Some(item);
            }
            let mut guard = world::root();
            let Some(root) = guard.as_mut() else {
                if self.taken == self.submitted && self.input.is_none() {
                    return None;
                }
                self.fail_rest(JOB_ENDED.into());
                continue;
            };
            if self.feed(root) {
                world::wake();
            }
            if self.taken == self.submitted {
                return None;
            }
            let mut guard = world::wait_until(guard, deadline, |root| self.chunk_settled(root));
            // The job ended meanwhile: the next round says so.
            if let Some(root) = guard.as_mut()
                && !self.take_chunk(root)
            {
                return Some(Err(PoolError::Timeout));
            }
        }
    }

    /// Whether the next chunk to take has its outcome, or none will come.
    fn chunk_settled(&self, root: &Root) -> bool {
        let Some(record) = root.ledger.jobs.get(&self.job) else {
            return true;
        };
        let next = if self.ordered {
            record.outcomes.contains_key(&self.taken)
        } else {
            !record.outcomes.is_empty()
        };
        next || !root.ledger.in_flight(self.job)
    }

    /// Takes the next chunk's outcome (the next in input order, or the first to come) and
    /// queues its items' results; false if it has not come yet.
    fn take_chunk(&mut self, root: &mut Root) -> bool {
        let Some(record) = root.ledger.jobs.get_mut(&self.job) else {
            self.fail_rest("the results were discarded".into());
            return true;
        };
        let wanted = if self.ordered {
            record.outcomes.remove_entry(&self.taken)
        } else {
            record.outcomes.pop_first()
        };
        if let Some((chunk, outcome)) = wanted {
            let len = record.chunk_lens.get(chunk as usize).copied().unwrap_or(0);
            self.ready.extend(decode_outcome(&outcome, len));
            self.taken += 1;
            return true;
        }
        if !root.ledger.in_flight(self.job) {
            self.fail_rest("a chunk was lost: it is neither queued, running nor back".into());
            return true;
        }
        false
    }

    fn fail_rest(&mut self, why: String) {
        self.input = None;
        self.taken = self.submitted;
        self.ready.push_back(Err(PoolError::Broken(why)));
    }
}

fn error_message(error: &PoolError) -> String {
    std::error::Error::source(error).map_or_else(|| error.to_string(), ToString::to_string)
}

impl<V, I, A> Iterator for MpiIMap<V, I>
where
    V: DeserializeOwned,
    I: Iterator<Item = A>,
    A: Serialize,
{
    type Item = Result<V, PoolError>;

    fn next(&mut self) -> Option<Self::Item> {
        self.next_before(None)
    }
}

impl<V, I> Drop for MpiIMap<V, I> {
    fn drop(&mut self) {
        forget(self.job);
    }
}

impl<V, I> std::fmt::Debug for MpiIMap<V, I> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MpiIMap")
            .field("job", &self.job)
            .field("ordered", &self.ordered)
            .finish()
    }
}

/// The results of every chunk of `job`, in input order; the first failure otherwise.
fn collect_all<V: DeserializeOwned>(job: &Job) -> Result<Vec<V>, PoolError> {
    let mut values = Vec::with_capacity(job.chunk_lens.iter().sum());
    for (chunk, &len) in job.chunk_lens.iter().enumerate() {
        let Some(outcome) = job.outcomes.get(&(chunk as u64)) else {
            return Err(PoolError::Broken(
                "a chunk came back without an outcome".into(),
            ));
        };
        for item in decode_outcome(outcome, len) {
            values.push(item?);
        }
    }
    Ok(values)
}

/// The one result of a job of one call.
fn collect_one<V: DeserializeOwned>(job: &Job) -> Result<V, PoolError> {
    collect_all(job)?
        .pop()
        .ok_or_else(|| PoolError::Broken("a call came back without its result".into()))
}

/// The `len` items' results of a chunk's outcome, decoded as the local pool's.
fn decode_outcome<V: DeserializeOwned>(outcome: &Outcome, len: usize) -> Vec<Result<V, PoolError>> {
    match outcome {
        Outcome::Failed(failure) => failed_each(len, || failure.to_error()),
        Outcome::Ran(bytes) => decode_ran(bytes, len),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pool::task::ChunkResults;

    #[test]
    fn a_chunk_decodes_to_exactly_its_items_or_an_error_for_each() {
        let all = rmp_serde::to_vec(&ChunkResults::<u32>::All(vec![1, 2])).unwrap();
        let values: Vec<Result<u32, PoolError>> = decode_outcome(&Outcome::Ran(all.clone()), 2);
        assert_eq!(
            values.into_iter().map(Result::unwrap).collect::<Vec<_>>(),
            [1, 2]
        );
        let short: Vec<Result<u32, PoolError>> = decode_outcome(&Outcome::Ran(all.clone()), 3);
        assert_eq!(short.len(), 3);
        assert!(short.iter().all(|item| matches!(item, Err(PoolError::Broken(why)) if why == "a chunk of 3 calls came back with 2 results")));
        let wrong_type: Vec<Result<String, PoolError>> = decode_outcome(&Outcome::Ran(all), 2);
        assert!(
            wrong_type
                .iter()
                .all(|item| matches!(item, Err(PoolError::Decode(_))))
        );
        let each =
            rmp_serde::to_vec(&ChunkResults::<u32>::Each(vec![Ok(1), Err("no".into())])).unwrap();
        let values: Vec<Result<u32, PoolError>> = decode_outcome(&Outcome::Ran(each), 2);
        assert!(matches!(values[0], Ok(1)));
        assert!(matches!(&values[1], Err(PoolError::Task(why)) if why == "no"));
        let garbage: Vec<Result<u32, PoolError>> = decode_outcome(&Outcome::Ran(vec![0xc1]), 1);
        assert!(matches!(garbage[0], Err(PoolError::Decode(_))));
        let terminated: Vec<Result<u32, PoolError>> =
            decode_outcome(&Outcome::Failed(Failure::Terminated), 2);
        assert!(
            terminated
                .iter()
                .all(|item| matches!(item, Err(PoolError::Terminated)))
        );
    }

    #[test]
    fn outside_an_mpi_job_a_pool_says_how_to_get_one() {
        let error = MpiPool::new().unwrap_err();
        assert!(
            error.to_string().contains("start the program with mpirun"),
            "{error}"
        );
    }
}
