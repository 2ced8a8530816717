//! [`Future`], what [`ProcessPoolExecutor::submit`](crate::ProcessPoolExecutor::submit)
//! returns, and the functions over many of them: [`as_completed`] and [`wait`]. Python:
//! `concurrent.futures.Future`, `as_completed`, `wait`.

use std::fmt;
use std::sync::Arc;
use std::sync::mpsc::{self, Receiver};
use std::time::{Duration, Instant};

use super::PoolError;
use super::result::AsyncResult;
use super::supervisor::{Failure, Outcome};

/// The result of a call submitted to a [`ProcessPoolExecutor`](crate::ProcessPoolExecutor),
/// arriving later. Python: `concurrent.futures.Future`.
///
/// A future is a handle: clones share the one call, and [`result`](Self::result) may be read
/// any number of times (each decodes the value again). Dropping every clone discards the
/// result; the call still runs, and its done callbacks still run.
///
/// ```
/// use shared::{PoolError, ProcessPoolExecutor};
///
/// fn soma(a: i64, b: i64) -> i64 {
///     a + b
/// }
///
/// # shared::set_start_method(shared::StartMethod::Fork);
/// let executor = ProcessPoolExecutor::new(2)?;
/// let future = executor.submit(soma, (2, 3))?;
/// assert_eq!(future.result()?, 5);
/// assert!(future.done() && !future.running() && !future.cancelled());
/// assert!(future.exception().is_none());
/// # Ok::<(), PoolError>(())
/// ```
pub struct Future<T> {
    inner: Arc<AsyncResult<T>>,
}

impl<T> Clone for Future<T> {
    fn clone(&self) -> Self {
        Future {
            inner: Arc::clone(&self.inner),
        }
    }
}

impl<T> Future<T> {
    pub(crate) fn new(result: AsyncResult<T>) -> Self {
        Future {
            inner: Arc::new(result),
        }
    }

    /// Waits for the call and returns its value. Python: `result()`.
    ///
    /// # Errors
    /// [`PoolError::Cancelled`] if it was cancelled; [`PoolError::TaskTimeout`] if it ran past
    /// the executor's task timeout; otherwise those of [`AsyncResult::get`](crate::AsyncResult::get)
    /// ([`PoolError::Task`] for the task's own error, [`PoolError::WorkerDied`] with the PID and
    /// signal of the worker that died running it, ...).
    pub fn result(&self) -> Result<T, PoolError> {
        self.inner.get()
    }

    /// Like [`result`](Self::result), waiting at most `timeout`. Python: `result(timeout)`.
    ///
    /// # Errors
    /// [`PoolError::Timeout`] if the call has not finished in time (it goes on running);
    /// otherwise those of [`result`](Self::result).
    pub fn result_timeout(&self, timeout: Duration) -> Result<T, PoolError> {
        self.inner.get_timeout(timeout)
    }

    /// Waits for the call; the error it failed with, or `None` if it succeeded. Python:
    /// `exception()`, which raises `CancelledError` for a cancelled call where this returns
    /// `Some(PoolError::Cancelled)`.
    pub fn exception(&self) -> Option<PoolError> {
        self.result().err()
    }

    /// Cancels the call if no worker has been given it yet; returns whether it is cancelled
    /// (true also if it already was). Python: `cancel()`. Its [`result`](Self::result) is then
    /// [`PoolError::Cancelled`], and its done callbacks run.
    ///
    /// A call given to a worker is [`running`](Self::running) and cannot be cancelled, as in
    /// CPython once a call is in its call queue.
    pub fn cancel(&self) -> bool {
        let shared = self.inner.shared();
        if !shared.is_owner() {
            return false;
        }
        let cancelled = shared.lock().cancel(self.inner.job());
        shared.changed.notify_all();
        // The supervisor runs the done callbacks.
        shared.wake();
        cancelled
    }

    /// Whether the call was cancelled. Python: `cancelled()`.
    pub fn cancelled(&self) -> bool {
        let shared = self.inner.shared();
        if !shared.is_owner() {
            return false;
        }
        let state = shared.poll();
        state.jobs.get(&self.inner.job()).is_some_and(|job| {
            job.is_complete() && matches!(job.outcome(0), Some(Outcome::Failed(Failure::Cancelled)))
        })
    }

    /// Whether a worker has been given the call and it has not finished. Python: `running()`.
    pub fn running(&self) -> bool {
        let shared = self.inner.shared();
        if !shared.is_owner() {
            return false;
        }
        let state = shared.poll();
        let job = self.inner.job();
        state
            .jobs
            .get(&job)
            .is_some_and(|record| !record.is_complete())
            && state.is_held(job)
    }

    /// Whether the call has finished: it has a value or an error, or was cancelled. Python:
    /// `done()`.
    pub fn done(&self) -> bool {
        let shared = self.inner.shared();
        if !shared.is_owner() {
            return false;
        }
        let state = shared.poll();
        state
            .jobs
            .get(&self.inner.job())
            .is_none_or(|job| job.is_complete())
    }

    /// Whether the call has finished with an error other than its cancellation: what
    /// [`ReturnWhen::FirstException`] waits for.
    fn failed(&self) -> bool {
        let shared = self.inner.shared();
        let state = shared.poll();
        match state.jobs.get(&self.inner.job()) {
            Some(job) if job.is_complete() => match job.outcome(0) {
                Some(Outcome::Failed(Failure::Cancelled)) => false,
                Some(Outcome::Failed(_)) => true,
                Some(Outcome::Ran(_)) | None => (self.inner.collector())(job).is_err(),
            },
            _ => false,
        }
    }
}

impl<T: 'static> Future<T> {
    /// Calls `callback` with the future once the call has finished (or been cancelled): at
    /// once, on this thread, if it already has; otherwise on the executor's supervisor
    /// thread, once, after [`done`](Self::done) turns true. Python: `add_done_callback(fn)`.
    /// Callbacks run in the order they were added; a panic in one is caught (the panic hook
    /// prints it) and the others run.
    ///
    /// ```
    /// use std::sync::mpsc;
    ///
    /// fn dobro(x: u64) -> u64 {
    ///     2 * x
    /// }
    ///
    /// # shared::set_start_method(shared::StartMethod::Fork);
    /// let executor = shared::ProcessPoolExecutor::new(1)?;
    /// let (enviar, receber) = mpsc::channel();
    /// let future = executor.submit(dobro, (21,))?;
    /// future.add_done_callback(move |f| enviar.send(f.result().ok()).unwrap());
    /// assert_eq!(receber.recv().unwrap(), Some(42));
    /// # Ok::<(), shared::PoolError>(())
    /// ```
    pub fn add_done_callback(&self, callback: impl FnOnce(&Future<T>) + Send + 'static)
    where
        T: Send,
    {
        let shared = self.inner.shared();
        if shared.is_owner() {
            let job = self.inner.job();
            let mut state = shared.lock();
            if state
                .jobs
                .get(&job)
                .is_some_and(|record| !record.is_complete())
            {
                let future = self.clone();
                let on_complete: super::supervisor::OnComplete =
                    Box::new(move |_| Box::new(move || callback(&future)));
                // Kept: the job is incomplete under this same lock.
                let _ = state.on_complete(job, on_complete, false);
                drop(state);
                // Its result must be read even if nobody waits for it.
                shared.poke();
                return;
            }
        }
        callback(self);
    }
}

/// What [`wait`] and [`as_completed`] need of a future, so that they take the futures of
/// any executor: a local [`Future`], or (feature `mpi`) an `MpiFuture` of an MPI job's ranks.
/// Python's functions take any `concurrent.futures.Future` the same way.
pub trait PoolFuture {
    /// Calls `callback` once the call has finished or been cancelled: at once if it has.
    fn on_done(&self, callback: Box<dyn FnOnce() + Send>);

    /// Whether the call has finished with an error other than its cancellation.
    fn failed(&self) -> bool;
}

impl<T: Send + 'static> PoolFuture for Future<T> {
    fn on_done(&self, callback: Box<dyn FnOnce() + Send>) {
        self.add_done_callback(move |_| callback());
    }

    fn failed(&self) -> bool {
        Future::failed(self)
    }
}

impl<T> fmt::Debug for Future<T> {
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
        f.debug_struct("Future").field("state", &state).finish()
    }
}

/// When [`wait`] returns. Python: `FIRST_COMPLETED`, `FIRST_EXCEPTION`, `ALL_COMPLETED`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReturnWhen {
    /// As soon as any future has finished or been cancelled.
    FirstCompleted,
    /// As soon as any future has failed (not counting a cancellation), or all have finished.
    FirstException,
    /// Once every future has finished or been cancelled.
    AllCompleted,
}

/// The futures [`wait`] was given, split: those finished (or cancelled) and the others, each
/// in the order given. Python: `DoneAndNotDoneFutures(done, not_done)` (of two sets).
#[derive(Debug)]
pub struct DoneAndNotDone<'a, F> {
    /// The futures that have finished or were cancelled.
    pub done: Vec<&'a F>,
    /// The others.
    pub not_done: Vec<&'a F>,
}

/// Waits until `return_when` holds for `futures`, or `timeout` has passed (`None`: no
/// limit), and splits them into those done and not. Python:
/// `concurrent.futures.wait(fs, timeout, return_when)`.
///
/// The futures may come from different executors (of one type of [`PoolFuture`]).
///
/// ```
/// use shared::futures::{ReturnWhen, wait};
///
/// fn dobro(x: u64) -> u64 {
///     2 * x
/// }
///
/// # shared::set_start_method(shared::StartMethod::Fork);
/// let executor = shared::ProcessPoolExecutor::new(2)?;
/// let futures = [executor.submit(dobro, (1,))?, executor.submit(dobro, (2,))?];
/// let feitos = wait(&futures, None, ReturnWhen::AllCompleted);
/// assert_eq!(feitos.done.len(), 2);
/// assert!(feitos.not_done.is_empty());
/// # Ok::<(), shared::PoolError>(())
/// ```
pub fn wait<F: PoolFuture>(
    futures: &[F],
    timeout: Option<Duration>,
    return_when: ReturnWhen,
) -> DoneAndNotDone<'_, F> {
    let deadline = timeout.and_then(|timeout| Instant::now().checked_add(timeout));
    let finished = notify_when_done(futures);
    let mut done = vec![false; futures.len()];
    let mut finished_count = 0;
    loop {
        // Every future already finished has said so (a callback on a finished future runs at
        // once), so this drains them first.
        while let Ok(index) = finished.try_recv() {
            if !std::mem::replace(&mut done[index], true) {
                finished_count += 1;
            }
        }
        let satisfied = match return_when {
            ReturnWhen::AllCompleted => finished_count == futures.len(),
            ReturnWhen::FirstCompleted => finished_count > 0 || futures.is_empty(),
            ReturnWhen::FirstException => {
                finished_count == futures.len()
                    || (0..futures.len()).any(|index| done[index] && futures[index].failed())
            }
        };
        if satisfied || !receive_one(&finished, deadline, &mut done, &mut finished_count) {
            break;
        }
    }
    let (done, not_done) = futures
        .iter()
        .zip(&done)
        .partition::<Vec<_>, _>(|(_, done)| **done);
    DoneAndNotDone {
        done: done.into_iter().map(|(future, _)| future).collect(),
        not_done: not_done.into_iter().map(|(future, _)| future).collect(),
    }
}

/// Waits for the next future to finish, until `deadline`; whether one did.
fn receive_one(
    finished: &Receiver<usize>,
    deadline: Option<Instant>,
    done: &mut [bool],
    finished_count: &mut usize,
) -> bool {
    let index = match deadline {
        None => finished.recv().ok(),
        Some(deadline) => finished
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .ok(),
    };
    let Some(index) = index else {
        return false;
    };
    if !std::mem::replace(&mut done[index], true) {
        *finished_count += 1;
    }
    true
}

/// A channel on which each future's index arrives once it has finished.
fn notify_when_done<F: PoolFuture>(futures: &[F]) -> Receiver<usize> {
    let (sender, receiver) = mpsc::channel();
    for (index, future) in futures.iter().enumerate() {
        let sender = sender.clone();
        // Sent to a receiver that may be gone by then: nothing is waiting any more.
        future.on_done(Box::new(move || {
            let _ = sender.send(index);
        }));
    }
    receiver
}

/// Yields the futures given as they finish (those already finished first), waiting at most
/// `timeout` in all (`None`: no limit). Python: `concurrent.futures.as_completed(fs,
/// timeout)`.
///
/// ```
/// use shared::futures::as_completed;
///
/// fn dobro(x: u64) -> u64 {
///     2 * x
/// }
///
/// # shared::set_start_method(shared::StartMethod::Fork);
/// let executor = shared::ProcessPoolExecutor::new(2)?;
/// let futures: Vec<_> = (0..4).map(|x| executor.submit(dobro, (x,))).collect::<Result<_, _>>()?;
/// let mut dobros = Vec::new();
/// for future in as_completed(&futures, None) {
///     dobros.push(future?.result()?);
/// }
/// dobros.sort();
/// assert_eq!(dobros, [0, 2, 4, 6]);
/// # Ok::<(), shared::PoolError>(())
/// ```
pub fn as_completed<F: PoolFuture>(futures: &[F], timeout: Option<Duration>) -> AsCompleted<'_, F> {
    AsCompleted {
        deadline: timeout.and_then(|timeout| Instant::now().checked_add(timeout)),
        finished: notify_when_done(futures),
        yielded: vec![false; futures.len()],
        left: futures.len(),
        futures,
    }
}

/// The iterator of [`as_completed`]: each future once it has finished, then `None`. If the
/// timeout passes first, it yields `Err(PoolError::Timeout)` once (Python: `TimeoutError`)
/// and ends.
pub struct AsCompleted<'a, F> {
    futures: &'a [F],
    deadline: Option<Instant>,
    finished: Receiver<usize>,
    yielded: Vec<bool>,
    left: usize,
}

impl<'a, F> Iterator for AsCompleted<'a, F> {
    type Item = Result<&'a F, PoolError>;

    fn next(&mut self) -> Option<Self::Item> {
        while self.left > 0 {
            let index = match self.deadline {
                None => self.finished.recv().ok(),
                Some(deadline) => self
                    .finished
                    .recv_timeout(deadline.saturating_duration_since(Instant::now()))
                    .ok(),
            };
            let Some(index) = index else {
                self.left = 0;
                return Some(Err(PoolError::Timeout));
            };
            if !std::mem::replace(&mut self.yielded[index], true) {
                self.left -= 1;
                return Some(Ok(&self.futures[index]));
            }
        }
        None
    }
}

impl<F> fmt::Debug for AsCompleted<'_, F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AsCompleted")
            .field("left", &self.left)
            .finish()
    }
}
