//! One call with options of its own: [`Chunked::apply`], [`Chunked::apply_async`] and
//! [`Chunked::apply_async_with`], for `pool.task_timeout(d).apply_async(f, args)`.

use std::sync::Arc;

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::{
    AsyncResult, Callbacks, Chunked, Extras, PoolError, Streaming, Task, TaskValue, result, task,
};

impl Chunked<'_> {
    /// [`Pool::apply`](super::Pool::apply) with this call's options: its
    /// [`task_timeout`](Self::task_timeout), instead of the pool's. (A chunk size does not
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
        self.apply_async(f, args)?.get()
    }

    /// [`Pool::apply_async`](super::Pool::apply_async) with this call's options: with
    /// [`task_timeout`](Self::task_timeout), a call still running after that long fails with
    /// [`PoolError::TaskTimeout`] (its worker is killed and replaced), whatever the pool's
    /// [`PoolBuilder::task_timeout`](super::PoolBuilder::task_timeout). Python's
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
    /// Those of [`Pool::apply_async`](super::Pool::apply_async).
    pub fn apply_async<F, Args>(
        &self,
        f: F,
        args: Args,
    ) -> Result<AsyncResult<TaskValue<F, Args>>, PoolError>
    where
        F: Task<Args>,
        Args: Serialize + DeserializeOwned,
    {
        self.apply_async_with(f, args, Callbacks::new())
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
            timeout: self.timeout,
            ..Extras::calling(callbacks, result::collect_one)
        };
        let job = self
            .pool
            .submit(entry, &[args], Some(1), Streaming::No, extras)?;
        Ok(AsyncResult::new(
            Arc::clone(&self.pool.shared),
            job,
            result::collect_one,
        ))
    }
}
