//! [`Chunked`]: a pool's calls with options of their own (a chunk size, a task timeout).
//! Each pool's own `map`, `imap`, `apply` ... are these with the pool's defaults, so the
//! wrappers below are the one place where a call is cut into chunks and sent: for the local
//! [`Pool`] and, through the same [`PoolDispatch`] trait, for the MPI pool.

use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::dispatch::{Call, PoolDispatch};
use super::{
    AsyncResult, Callbacks, Extras, MapResult, Pool, PoolError, Task, TaskValue, result, task,
};

/// What [`Chunked::imap`] returns on a pool `P`, for a function `F` over the items of `I`.
type LazyOf<P, F, I> = <P as PoolDispatch>::Lazy<
    TaskValue<F, (<I as IntoIterator>::Item,)>,
    <I as IntoIterator>::IntoIter,
>;

/// What [`Chunked::map_async`] returns on a pool `P`, for a function `F` of one argument `A`.
type MapAsyncOf<P, F, A> = <P as PoolDispatch>::Async<Vec<TaskValue<F, (A,)>>>;

/// The mapping methods of a pool with a chosen chunk size; made by [`Pool::chunked`] (or
/// `MpiPool::chunked`, as `MpiChunked`). Each method is the pool's method of the same name;
/// a call returning at once hands back the pool's own result type ([`PoolDispatch::Async`]:
/// [`AsyncResult`] for a [`Pool`]).
#[derive(Debug)]
pub struct Chunked<'pool, P: PoolDispatch = Pool> {
    pool: &'pool P,
    call: Call,
}

impl<'pool, P: PoolDispatch> Chunked<'pool, P> {
    /// The calls of `pool` in chunks of `chunksize` items (`None`: Python's default).
    pub(crate) fn new(pool: &'pool P, chunksize: Option<usize>) -> Self {
        Chunked {
            pool,
            call: Call {
                chunksize,
                timeout: None,
            },
        }
    }

    /// The same methods with a chunk size of `chunksize` items ([`Pool::chunked`]).
    pub fn chunked(mut self, chunksize: usize) -> Self {
        self.call.chunksize = Some(chunksize);
        self
    }

    /// [`Pool::map`] in chunks of the chosen size.
    ///
    /// # Errors
    /// Those of [`Pool::map`]; [`PoolError::NoChunksize`] for a chunk size of 0.
    pub fn map<F, A>(
        &self,
        f: F,
        items: impl IntoIterator<Item = A>,
    ) -> Result<Vec<TaskValue<F, (A,)>>, PoolError>
    where
        F: Task<(A,)>,
        A: Serialize + DeserializeOwned,
    {
        let _map = crate::timeline::span(crate::timeline::Kind::PoolMap, || (0, 0));
        let entry = task::single_entry_offset(f).ok_or(PoolError::NeedsFunction)?;
        self.pool
            .map_now(&self.call, entry, items.into_iter().collect())
    }

    /// [`Pool::map_async`] in chunks of the chosen size.
    ///
    /// # Errors
    /// Those of [`Pool::map_async`]; [`PoolError::NoChunksize`] for a chunk size of 0.
    pub fn map_async<F, A>(
        &self,
        f: F,
        items: impl IntoIterator<Item = A>,
    ) -> Result<MapAsyncOf<P, F, A>, PoolError>
    where
        F: Task<(A,)>,
        A: Serialize + DeserializeOwned,
    {
        let entry = task::single_entry_offset(f).ok_or(PoolError::NeedsFunction)?;
        self.pool
            .map_later(&self.call, entry, items.into_iter().collect())
    }

    /// [`Pool::starmap`] in chunks of the chosen size.
    ///
    /// # Errors
    /// Those of [`Pool::starmap`]; [`PoolError::NoChunksize`] for a chunk size of 0.
    pub fn starmap<F, Args>(
        &self,
        f: F,
        items: impl IntoIterator<Item = Args>,
    ) -> Result<Vec<TaskValue<F, Args>>, PoolError>
    where
        F: Task<Args>,
        Args: Serialize + DeserializeOwned,
    {
        P::get(&self.starmap_async(f, items)?)
    }

    /// [`Pool::starmap_async`] in chunks of the chosen size.
    ///
    /// # Errors
    /// Those of [`Pool::starmap_async`]; [`PoolError::NoChunksize`] for a chunk size of 0.
    pub fn starmap_async<F, Args>(
        &self,
        f: F,
        items: impl IntoIterator<Item = Args>,
    ) -> Result<P::Async<Vec<TaskValue<F, Args>>>, PoolError>
    where
        F: Task<Args>,
        Args: Serialize + DeserializeOwned,
    {
        let entry = task::entry_offset(f).ok_or(PoolError::NeedsFunction)?;
        self.pool
            .map_later(&self.call, entry, items.into_iter().collect())
    }

    /// [`Pool::imap`] in chunks of the chosen size.
    ///
    /// # Errors
    /// Those of [`Pool::imap`]; [`PoolError::NoChunksize`] for a chunk size of 0.
    pub fn imap<F, A, I>(&self, f: F, items: I) -> Result<LazyOf<P, F, I>, PoolError>
    where
        F: Task<(A,)>,
        A: Serialize + DeserializeOwned,
        I: IntoIterator<Item = A>,
    {
        self.lazy(f, items, true)
    }

    /// [`Pool::imap_unordered`] in chunks of the chosen size.
    ///
    /// # Errors
    /// Those of [`Pool::imap_unordered`]; [`PoolError::NoChunksize`] for a chunk size of 0.
    pub fn imap_unordered<F, A, I>(&self, f: F, items: I) -> Result<LazyOf<P, F, I>, PoolError>
    where
        F: Task<(A,)>,
        A: Serialize + DeserializeOwned,
        I: IntoIterator<Item = A>,
    {
        self.lazy(f, items, false)
    }

    fn lazy<F, A, I>(&self, f: F, items: I, ordered: bool) -> Result<LazyOf<P, F, I>, PoolError>
    where
        F: Task<(A,)>,
        A: Serialize + DeserializeOwned,
        I: IntoIterator<Item = A>,
    {
        let entry = task::single_entry_offset(f).ok_or(PoolError::NeedsFunction)?;
        let chunksize = match self.call.chunksize {
            Some(0) => return Err(PoolError::NoChunksize),
            chunksize => chunksize.unwrap_or(1),
        };
        let items = items.into_iter();
        self.pool.imap(&self.call, entry, items, chunksize, ordered)
    }

    /// [`Pool::apply`] with this call's options: on a [`Pool`], its
    /// [`task_timeout`](Chunked::task_timeout), instead of the pool's. (A chunk size does not
    /// apply to one call.)
    ///
    /// # Errors
    /// Those of [`apply_async`](Self::apply_async) and of [`AsyncResult::get`]:
    /// [`PoolError::TaskTimeout`] if the call ran past its timeout.
    pub fn apply<F, Args>(&self, f: F, args: Args) -> Result<TaskValue<F, Args>, PoolError>
    where
        F: Task<Args>,
        Args: Serialize + DeserializeOwned,
    {
        let _apply = crate::timeline::span(crate::timeline::Kind::PoolApply, || (0, 0));
        P::get(&self.apply_async(f, args)?)
    }

    /// [`Pool::apply_async`] with this call's options: on a [`Pool`], with
    /// [`task_timeout`](Chunked::task_timeout), a call still running after that long fails
    /// with [`PoolError::TaskTimeout`] (its worker is killed and replaced), whatever the
    /// pool's [`PoolBuilder::task_timeout`](super::PoolBuilder::task_timeout). Python's
    /// `apply_async` has no timeout for the task (`get(timeout)` only stops waiting).
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
    /// let pool = Pool::new(1)?;
    /// let lento = pool.task_timeout(Duration::from_millis(200)).apply_async(dorme, (60_000,))?;
    /// assert!(matches!(lento.get(), Err(PoolError::TaskTimeout { .. })));
    /// // A new worker took the killed one's place; the pool's calls have no timeout.
    /// assert_eq!(pool.apply(dorme, (300,))?, 300);
    /// # Ok::<(), PoolError>(())
    /// ```
    ///
    /// # Errors
    /// Those of [`Pool::apply_async`].
    pub fn apply_async<F, Args>(
        &self,
        f: F,
        args: Args,
    ) -> Result<P::Async<TaskValue<F, Args>>, PoolError>
    where
        F: Task<Args>,
        Args: Serialize + DeserializeOwned,
    {
        let entry = task::entry_offset(f).ok_or(PoolError::NeedsFunction)?;
        self.pool.apply_later(&self.call, entry, args)
    }
}

/// What only a local pool's calls have: a timeout for each task, and callbacks.
impl Chunked<'_, Pool> {
    /// The same methods, each chunk of the call failing with [`PoolError::TaskTimeout`] if it
    /// runs longer than `timeout` (its worker is killed and replaced), instead of the pool's
    /// [`PoolBuilder::task_timeout`](super::PoolBuilder::task_timeout). A chunk of several
    /// items has the one timeout for all.
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
    /// let pool = Pool::new(2)?;
    /// let calls: Vec<_> = pool
    ///     .task_timeout(Duration::from_millis(300))
    ///     .chunked(1)
    ///     .imap(dorme, [1, 60_000, 2])?
    ///     .collect();
    /// assert_eq!(calls[0].as_ref().ok(), Some(&1));
    /// assert!(matches!(calls[1], Err(PoolError::TaskTimeout { .. })));
    /// assert_eq!(calls[2].as_ref().ok(), Some(&2));
    /// # Ok::<(), PoolError>(())
    /// ```
    pub fn task_timeout(mut self, timeout: Duration) -> Self {
        self.call.timeout = Some(timeout);
        self
    }

    /// [`Pool::map_async_with`] in chunks of the chosen size.
    ///
    /// # Errors
    /// Those of [`Pool::map_async`]; [`PoolError::NoChunksize`] for a chunk size of 0.
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
        let entry = task::single_entry_offset(f).ok_or(PoolError::NeedsFunction)?;
        self.send_with(entry, items, callbacks)
    }

    /// [`Pool::starmap_async_with`] in chunks of the chosen size.
    ///
    /// # Errors
    /// Those of [`Pool::starmap_async`]; [`PoolError::NoChunksize`] for a chunk size of 0.
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
        let entry = task::entry_offset(f).ok_or(PoolError::NeedsFunction)?;
        self.send_with(entry, items, callbacks)
    }

    /// [`apply_async`](Self::apply_async) with `callbacks`, run once the result is in (a
    /// timeout is the call's failure: `error_callback` gets it). Python: `apply_async(f,
    /// args, callback=..., error_callback=...)`; see [`Callbacks`].
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
        let entry = task::entry_offset(f).ok_or(PoolError::NeedsFunction)?;
        let extras = Extras {
            timeout: self.call.timeout,
            ..Extras::calling(callbacks, result::collect_one)
        };
        self.pool
            .send(entry, &[args], Some(1), extras, result::collect_one)
    }

    /// Sends `items` for the task at `entry` in chunks; `callbacks` get every result.
    fn send_with<T, V>(
        &self,
        entry: u64,
        items: impl IntoIterator<Item = T>,
        callbacks: Callbacks<Vec<V>>,
    ) -> Result<AsyncResult<Vec<V>>, PoolError>
    where
        T: Serialize,
        V: DeserializeOwned + Send + 'static,
    {
        let items: Vec<T> = items.into_iter().collect();
        let extras = Extras {
            timeout: self.call.timeout,
            ..Extras::calling(callbacks, result::collect_all)
        };
        self.pool.send(
            entry,
            &items,
            self.call.chunksize,
            extras,
            result::collect_all,
        )
    }
}
