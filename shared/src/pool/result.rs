//! What a pool call hands back: [`AsyncResult`] (Python's `AsyncResult`) and [`IMap`] (the
//! iterator of `imap` and `imap_unordered`).

use std::collections::VecDeque;
use std::fmt;
use std::marker::PhantomData;
use std::sync::{Arc, MutexGuard};
use std::time::{Duration, Instant};

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::supervisor::{Awaiting, Failure, Job, Outcome, Shared, State};
use super::task::ChunkResults;
use super::worker::decode_chunk;
use super::{CodecError, PoolError};

/// The result of [`Pool::apply_async`](crate::Pool::apply_async) or
/// [`Pool::map_async`](crate::Pool::map_async), arriving later. Python: `AsyncResult`.
///
/// It can be read any number of times: each [`get`](Self::get) decodes the result again.
/// Dropping it discards the result (the task still runs).
pub struct AsyncResult<T> {
    shared: Arc<Shared>,
    job: u64,
    collect: fn(&Job) -> Result<T, PoolError>,
}

impl<T> AsyncResult<T> {
    pub(crate) fn new(
        shared: Arc<Shared>,
        job: u64,
        collect: fn(&Job) -> Result<T, PoolError>,
    ) -> Self {
        AsyncResult {
            shared,
            job,
            collect,
        }
    }

    /// Waits for the result and returns it. Python: `get()`.
    ///
    /// # Errors
    /// The first failure among the calls, in input order: [`PoolError::Task`] (the task
    /// returned `Err` or panicked), [`PoolError::WorkerDied`], [`PoolError::Terminated`],
    /// [`PoolError::Initializer`], [`PoolError::Decode`] (the result is not a `T`), or
    /// [`PoolError::Broken`].
    pub fn get(&self) -> Result<T, PoolError> {
        if !self.shared.is_owner() {
            return Err(Shared::foreign());
        }
        let state = self.wait_until(None);
        self.collect_from(&state)
    }

    /// Like [`get`](Self::get), waiting at most `timeout`. Python: `get(timeout)`.
    ///
    /// # Errors
    /// [`PoolError::Timeout`] if the result did not arrive in time; otherwise those of
    /// [`get`](Self::get).
    pub fn get_timeout(&self, timeout: Duration) -> Result<T, PoolError> {
        if !self.shared.is_owner() {
            return Err(Shared::foreign());
        }
        let state = self.wait_until(Instant::now().checked_add(timeout));
        if !self.is_complete(&state) {
            return Err(PoolError::Timeout);
        }
        self.collect_from(&state)
    }

    /// Waits until the result has arrived. Python: `wait()`.
    pub fn wait(&self) {
        if self.shared.is_owner() {
            drop(self.wait_until(None));
        }
    }

    /// Waits at most `timeout` for the result; returns whether it has arrived. Python:
    /// `wait(timeout)`, then `ready()`.
    pub fn wait_timeout(&self, timeout: Duration) -> bool {
        if !self.shared.is_owner() {
            return false;
        }
        let state = self.wait_until(Instant::now().checked_add(timeout));
        self.is_complete(&state)
    }

    /// Whether the result has arrived. Python: `ready()`.
    pub fn ready(&self) -> bool {
        self.shared.is_owner() && self.is_complete(&self.shared.poll())
    }

    /// Whether every call succeeded. Python: `successful()`.
    ///
    /// # Errors
    /// [`PoolError::NotReady`] if the result has not arrived yet (Python: `ValueError`).
    pub fn successful(&self) -> Result<bool, PoolError> {
        if !self.shared.is_owner() {
            return Err(Shared::foreign());
        }
        let state = self.shared.poll();
        if !self.is_complete(&state) {
            return Err(PoolError::NotReady);
        }
        Ok(self.collect_from(&state).is_ok())
    }

    fn is_complete(&self, state: &State) -> bool {
        state.jobs.get(&self.job).is_none_or(Job::is_ready)
    }

    pub(crate) fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    pub(crate) fn job(&self) -> u64 {
        self.job
    }

    /// The function that makes the result of the job.
    pub(crate) fn collector(&self) -> fn(&Job) -> Result<T, PoolError> {
        self.collect
    }

    fn collect_from(&self, state: &State) -> Result<T, PoolError> {
        match state.jobs.get(&self.job) {
            Some(job) => (self.collect)(job),
            None => Err(PoolError::Broken("the result was discarded".into())),
        }
    }

    /// The state, once the job is complete or `deadline` has passed. While its outcome is
    /// awaited, this thread reads the workers' reports itself if no other thread does: the
    /// result then comes with no hand-off through the supervisor's thread.
    fn wait_until(&self, deadline: Option<Instant>) -> MutexGuard<'_, State> {
        let state = self.shared.lock();
        self.shared.wait_for(state, deadline, true, |state| {
            match state.jobs.get(&self.job) {
                None => Awaiting::Nothing,
                Some(job) if job.is_ready() => Awaiting::Nothing,
                // Its callbacks run on the supervisor's thread.
                Some(job) if job.is_complete() => Awaiting::Supervisor,
                Some(_) => Awaiting::Reports,
            }
        })
    }
}

impl<T> Drop for AsyncResult<T> {
    fn drop(&mut self) {
        // In a forked child the lock may have been held at the fork, for ever.
        if self.shared.is_owner() {
            let _ = self.shared.lock().forget(self.job);
        }
    }
}

impl<T> fmt::Debug for AsyncResult<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AsyncResult")
            .field("ready", &self.ready())
            .finish()
    }
}

/// The results of every chunk of `job`, in input order; the first failure otherwise.
pub(crate) fn collect_all<V: DeserializeOwned>(job: &Job) -> Result<Vec<V>, PoolError> {
    let mut values = Vec::with_capacity(job.chunk_lens.iter().sum());
    for (chunk, &len) in job.chunk_lens.iter().enumerate() {
        append_chunk(&mut values, job.outcome(chunk as u64), len)?;
    }
    Ok(values)
}

/// Appends the values of a chunk of `len` calls to `values`; the chunk's first failure
/// otherwise (the values before it are appended).
fn append_chunk<V: DeserializeOwned>(
    values: &mut Vec<V>,
    outcome: Option<&Outcome>,
    len: usize,
) -> Result<(), PoolError> {
    // The common case, a chunk whose calls all succeeded, moves its values over as they are.
    if let Some(Outcome::Ran(bytes)) = outcome
        && let Ok(ChunkResults::All(chunk_values)) = decode_chunk::<V>(bytes)
        && chunk_values.len() == len
    {
        values.extend(chunk_values);
        return Ok(());
    }
    for item in decode_outcome(outcome, len) {
        values.push(item?);
    }
    Ok(())
}

/// The results of every chunk of `job`, read in input order as each arrives (a `streaming`
/// job's caller is woken at each); the first failure otherwise, once every chunk is back, as
/// [`collect_all`] gives it. Forgets the job.
pub(crate) fn collect_streamed<V: DeserializeOwned>(
    shared: &Shared,
    job: u64,
) -> Result<Vec<V>, PoolError> {
    let mut values = Vec::new();
    let mut first_failure = None;
    let mut chunk = 0;
    let mut state = shared.lock();
    loop {
        let Some(record) = state.jobs.get_mut(&job) else {
            return Err(PoolError::Broken("the result was discarded".into()));
        };
        let Some(&len) = record.chunk_lens.get(chunk as usize) else {
            break;
        };
        let Some(outcome) = record.take_outcome(chunk) else {
            // Left to the supervisor to read: this thread decodes the outcomes meanwhile.
            state = shared.wait_for(state, None, false, |state| {
                let arrived = state
                    .jobs
                    .get(&job)
                    .is_none_or(|record| record.outcome(chunk).is_some());
                if arrived {
                    Awaiting::Nothing
                } else {
                    Awaiting::Reports
                }
            });
            continue;
        };
        chunk += 1;
        if first_failure.is_some() {
            continue;
        }
        drop(state);
        if let Err(error) = append_chunk(&mut values, Some(&outcome), len) {
            first_failure = Some(error);
        }
        state = shared.lock();
    }
    state.forget(job);
    match first_failure {
        Some(error) => Err(error),
        None => Ok(values),
    }
}

/// The one result of a job of one call.
pub(crate) fn collect_one<V: DeserializeOwned>(job: &Job) -> Result<V, PoolError> {
    collect_all(job)?
        .pop()
        .ok_or_else(|| PoolError::Broken("a call came back without its result".into()))
}

/// The `len` items' results of a chunk's outcome.
fn decode_outcome<V: DeserializeOwned>(
    outcome: Option<&Outcome>,
    len: usize,
) -> Vec<Result<V, PoolError>> {
    match outcome {
        None => failed_each(len, || {
            PoolError::Broken("a chunk came back without an outcome".into())
        }),
        Some(Outcome::Failed(failure)) => failed_each(len, || failure.to_error()),
        Some(Outcome::Ran(bytes)) => decode_ran(bytes, len),
    }
}

/// The `len` items' results in what a chunk that ran sent back (a local worker or, with the
/// feature `mpi`, a worker rank); a count that does not match is an error for each item,
/// never a short or a padded list.
pub(crate) fn decode_ran<V: DeserializeOwned>(
    bytes: &[u8],
    len: usize,
) -> Vec<Result<V, PoolError>> {
    let miscounted = |got: usize| {
        let why = format!("a chunk of {len} calls came back with {got} results");
        failed_each(len, || PoolError::Broken(why.clone()))
    };
    match decode_chunk::<V>(bytes) {
        Ok(ChunkResults::All(values)) if values.len() == len => {
            values.into_iter().map(Ok).collect()
        }
        Ok(ChunkResults::Each(items)) if items.len() == len => items
            .into_iter()
            .map(|item| item.map_err(PoolError::Task))
            .collect(),
        Ok(ChunkResults::All(values)) => miscounted(values.len()),
        Ok(ChunkResults::Each(items)) => miscounted(items.len()),
        Err(error) => failed_each(len, || PoolError::Decode(CodecError::new(error.clone()))),
    }
}

/// `len` results, each the failure `error` makes.
pub(crate) fn failed_each<V>(
    len: usize,
    error: impl Fn() -> PoolError,
) -> Vec<Result<V, PoolError>> {
    (0..len).map(|_| Err(error())).collect()
}

/// The iterator of [`Pool::imap`](crate::Pool::imap) and
/// [`Pool::imap_unordered`](crate::Pool::imap_unordered): it reads its input as its results
/// are consumed, keeping a bounded number of chunks in flight, and yields each call's result.
///
/// Dropping it discards the results still to come (the calls already sent still run).
pub struct IMap<V, I> {
    shared: Arc<Shared>,
    job: u64,
    entry: u64,
    input: Option<I>,
    /// Whether the pool was told that the input ended ([`State::end_feeding`]).
    input_end_told: bool,
    chunksize: usize,
    /// The most chunks submitted and not yet yielded.
    ahead: usize,
    ordered: bool,
    submitted: u64,
    yielded: u64,
    ready: VecDeque<Result<V, PoolError>>,
    values: PhantomData<fn() -> V>,
}

impl<V, I, A> IMap<V, I>
where
    V: DeserializeOwned,
    I: Iterator<Item = A>,
    A: Serialize,
{
    pub(crate) fn new(
        shared: Arc<Shared>,
        entry: u64,
        input: I,
        chunksize: usize,
        ordered: bool,
        timeout: Option<Duration>,
    ) -> Result<Self, PoolError> {
        let ahead = 2 * super::supervisor::PREFETCH * shared.lock().processes();
        let job = {
            let mut state = shared.lock();
            state.check_running()?;
            let job = state.submit(entry, Vec::new(), true);
            if timeout.is_some() {
                state.set_timeout(job, timeout);
            }
            state.start_feeding(job);
            job
        };
        let mut imap = IMap {
            shared,
            job,
            entry,
            input: Some(input),
            input_end_told: false,
            chunksize,
            ahead,
            ordered,
            submitted: 0,
            yielded: 0,
            ready: VecDeque::new(),
            values: PhantomData,
        };
        // The first chunks go at once, as Python's `imap` sends its tasks before anything is
        // read: a `close` and `join` before the first `next` do not starve a short input.
        imap.top_up();
        Ok(imap)
    }

    /// The next result, waiting at most `timeout` for it. Python: `next(timeout)`.
    ///
    /// `None` once every result was yielded; `Some(Err(PoolError::Timeout))` if none arrived
    /// in time (call again to keep waiting). The errors are those of [`AsyncResult::get`].
    pub fn next_timeout(&mut self, timeout: Duration) -> Option<Result<V, PoolError>> {
        self.next_before(Instant::now().checked_add(timeout))
    }

    pub(crate) fn next_before(
        &mut self,
        deadline: Option<Instant>,
    ) -> Option<Result<V, PoolError>> {
        if !self.shared.is_owner() {
            // Said once; then the iterator ends, so that collecting it ends too.
            let unsaid = self.input.take().is_some() || self.submitted != self.yielded;
            self.submitted = self.yielded;
            return unsaid.then(|| Err(Shared::foreign()));
        }
        loop {
            if let Some(item) = self.ready.pop_front() {
                return Some(item);
            }
            self.top_up();
            if self.yielded == self.submitted {
                return None;
            }
            match self.take_chunk(deadline) {
                Some(items) => self.ready.extend(items),
                None => return Some(Err(PoolError::Timeout)),
            }
        }
    }

    /// Reads more input while fewer than `ahead` chunks are in flight, and submits it.
    fn top_up(&mut self) {
        let mut chunks = Vec::new();
        let mut failed = Vec::new();
        while self.submitted + (chunks.len() + failed.len()) as u64 - self.yielded
            < self.ahead as u64
        {
            let Some(input) = &mut self.input else { break };
            let items: Vec<A> = input.by_ref().take(self.chunksize).collect();
            if items.is_empty() {
                self.input = None;
                break;
            }
            match rmp_serde::to_vec(&items) {
                Ok(bytes) => chunks.push((items.len(), bytes)),
                Err(error) => failed.push((items.len(), error.to_string())),
            }
        }
        let input_ended = self.input.is_none() && !self.input_end_told;
        if chunks.is_empty() && failed.is_empty() && !input_ended {
            return;
        }
        self.submitted += (chunks.len() + failed.len()) as u64;
        let mut state = self.shared.lock();
        state.feed(self.job, self.entry, chunks);
        for (len, message) in failed {
            state.add_failed_chunk(self.job, len, Failure::Arguments(message));
        }
        if input_ended {
            state.end_feeding(self.job);
            self.input_end_told = true;
        }
        drop(state);
        self.shared.wake();
    }

    /// The results of the next chunk (in input order, or as they arrive), or `None` if
    /// `deadline` passed first.
    fn take_chunk(&mut self, deadline: Option<Instant>) -> Option<Vec<Result<V, PoolError>>> {
        let mut state = self.shared.lock();
        loop {
            let job = state.jobs.get_mut(&self.job)?;
            let chunk = if self.ordered {
                job.arrivals.clear();
                Some(self.yielded).filter(|&chunk| job.outcome(chunk).is_some())
            } else {
                job.arrivals.pop_front()
            };
            if let Some(chunk) = chunk {
                let outcome = job.take_outcome(chunk);
                let len = job.chunk_lens[chunk as usize];
                self.yielded += 1;
                drop(state);
                return Some(decode_outcome(outcome.as_ref(), len));
            }
            if deadline.is_some_and(|deadline| Instant::now() >= deadline) {
                return None;
            }
            let (id, ordered, next) = (self.job, self.ordered, self.yielded);
            // Left to the supervisor to read, as for a map.
            state = self.shared.wait_for(state, deadline, false, |state| {
                let arrived = state.jobs.get(&id).is_none_or(|job| {
                    if ordered {
                        job.outcome(next).is_some()
                    } else {
                        !job.arrivals.is_empty()
                    }
                });
                if arrived {
                    Awaiting::Nothing
                } else {
                    Awaiting::Reports
                }
            });
        }
    }
}

impl<V, I, A> Iterator for IMap<V, I>
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

impl<V, I> Drop for IMap<V, I> {
    fn drop(&mut self) {
        if !self.shared.is_owner() {
            return;
        }
        let was_feeding = self.shared.lock().forget(self.job);
        if was_feeding {
            // A closed pool kept its idle workers for this input; they may stop now.
            self.shared.wake();
        }
    }
}

impl<V, I> fmt::Debug for IMap<V, I> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IMap")
            .field("ordered", &self.ordered)
            .field("chunksize", &self.chunksize)
            .field("in_flight", &(self.submitted - self.yielded))
            .finish()
    }
}
