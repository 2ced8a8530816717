//! [`PoolDispatch`]: the few operations in which the local [`Pool`] and the MPI pool differ, so
//! that [`Chunked`](super::Chunked) (whose methods are every pool's `map`, `imap`, `apply`
//! ...) and [`ExecutorMap`](super::ExecutorMap) are written once for both.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::supervisor::Job;
use super::{AsyncResult, Extras, IMap, Pool, PoolError, Streaming, result};

/// A pool that [`Chunked`](super::Chunked) can send calls to: [`Pool`], whose workers are
/// local processes, and (feature `mpi`) `MpiPool`, whose workers are the ranks of an MPI job.
/// Sealed: no other type implements it. Its methods are the pool's own business; call the
/// pool's methods (`pool.map`, `pool.chunked(n).imap`, ...), which need no import of it.
pub trait PoolDispatch: Sealed {
    /// What a call that returns at once hands back: [`AsyncResult`] for a [`Pool`],
    /// `MpiAsyncResult` for an `MpiPool`.
    type Async<T>;
    /// The lazy iterator of `imap` and `imap_unordered`: [`IMap`] for a [`Pool`], `MpiIMap`
    /// for an `MpiPool`.
    type Lazy<V, I>;

    /// Sends `items` for the one-argument task at `entry`, in chunks as `call` says, and
    /// waits for their results, in input order.
    #[doc(hidden)]
    fn map_now<A, V>(&self, call: &Call, entry: u64, items: Vec<A>) -> Result<Vec<V>, PoolError>
    where
        A: Serialize,
        V: DeserializeOwned + Send + 'static,
    {
        Self::get(&self.map_later(call, entry, items)?)
    }

    /// Sends `items` for the task at `entry` (of one argument or of a tuple's), in chunks as
    /// `call` says; their results, in input order, come later.
    #[doc(hidden)]
    fn map_later<A, V>(
        &self,
        call: &Call,
        entry: u64,
        items: Vec<A>,
    ) -> Result<Self::Async<Vec<V>>, PoolError>
    where
        A: Serialize,
        V: DeserializeOwned + Send + 'static;

    /// Sends one call of the task at `entry` on `args`; its result comes later.
    #[doc(hidden)]
    fn apply_later<Args, V>(
        &self,
        call: &Call,
        entry: u64,
        args: Args,
    ) -> Result<Self::Async<V>, PoolError>
    where
        Args: Serialize,
        V: DeserializeOwned + Send + 'static;

    /// Waits for a result sent before and returns it (its `get`).
    #[doc(hidden)]
    fn get<T>(result: &Self::Async<T>) -> Result<T, PoolError>;

    /// Starts the lazy map of the one-argument task at `entry` over `items`, in chunks of
    /// `chunksize`; its results in input order if `ordered`, else as they arrive.
    #[doc(hidden)]
    fn imap<V, I>(
        &self,
        call: &Call,
        entry: u64,
        items: I,
        chunksize: usize,
        ordered: bool,
    ) -> Result<Self::Lazy<V, I>, PoolError>
    where
        V: DeserializeOwned,
        I: Iterator,
        I::Item: Serialize;

    /// The next result of a lazy map, waiting until `deadline` at most (`None`: no limit):
    /// `Some(Err(PoolError::Timeout))` if it did not come by then.
    #[doc(hidden)]
    fn next_before<V, I>(
        lazy: &mut Self::Lazy<V, I>,
        deadline: Option<Instant>,
    ) -> Option<Result<V, PoolError>>
    where
        V: DeserializeOwned,
        I: Iterator,
        I::Item: Serialize;
}

/// A call's options, as [`Chunked`](super::Chunked) holds them.
#[derive(Clone, Copy, Debug, Default)]
pub struct Call {
    /// `None`: Python's default (for `map` about four chunks per worker, for `imap` 1).
    pub(crate) chunksize: Option<usize>,
    /// Each chunk's timeout, if not the pool's (a local pool's only).
    pub(crate) timeout: Option<Duration>,
}

/// Keeps [`PoolDispatch`] to the crate's pools. Public in a private module: nameable by nobody
/// outside the crate.
pub trait Sealed {}

impl Sealed for Pool {}

impl PoolDispatch for Pool {
    type Async<T> = AsyncResult<T>;
    type Lazy<V, I> = IMap<V, I>;

    fn map_now<A, V>(&self, call: &Call, entry: u64, items: Vec<A>) -> Result<Vec<V>, PoolError>
    where
        A: Serialize,
        V: DeserializeOwned + Send + 'static,
    {
        let job = self.submit(
            entry,
            &items,
            call.chunksize,
            Streaming::IfFewChunks,
            Extras::of(call),
        )?;
        // Decode each chunk as it comes, in order, while the workers run the others.
        result::collect_streamed(&self.shared, job)
    }

    fn map_later<A, V>(
        &self,
        call: &Call,
        entry: u64,
        items: Vec<A>,
    ) -> Result<AsyncResult<Vec<V>>, PoolError>
    where
        A: Serialize,
        V: DeserializeOwned + Send + 'static,
    {
        let extras = Extras::of(call);
        self.send(entry, &items, call.chunksize, extras, result::collect_all)
    }

    fn apply_later<Args, V>(
        &self,
        call: &Call,
        entry: u64,
        args: Args,
    ) -> Result<AsyncResult<V>, PoolError>
    where
        Args: Serialize,
        V: DeserializeOwned + Send + 'static,
    {
        self.send(
            entry,
            &[args],
            Some(1),
            Extras::of(call),
            result::collect_one,
        )
    }

    fn get<T>(result: &AsyncResult<T>) -> Result<T, PoolError> {
        result.get()
    }

    fn imap<V, I>(
        &self,
        call: &Call,
        entry: u64,
        items: I,
        chunksize: usize,
        ordered: bool,
    ) -> Result<IMap<V, I>, PoolError>
    where
        V: DeserializeOwned,
        I: Iterator,
        I::Item: Serialize,
    {
        self.check_owner()?;
        let shared = Arc::clone(&self.shared);
        IMap::new(shared, entry, items, chunksize, ordered, call.timeout)
    }

    fn next_before<V, I>(
        lazy: &mut IMap<V, I>,
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

impl Pool {
    /// Sends `items` for the task at `entry` ([`Pool::submit`]); the result that `collect`
    /// makes of the job comes later.
    pub(super) fn send<T: Serialize, R>(
        &self,
        entry: u64,
        items: &[T],
        chunksize: Option<usize>,
        extras: Extras,
        collect: fn(&Job) -> Result<R, PoolError>,
    ) -> Result<AsyncResult<R>, PoolError> {
        let job = self.submit(entry, items, chunksize, Streaming::No, extras)?;
        Ok(AsyncResult::new(Arc::clone(&self.shared), job, collect))
    }
}
