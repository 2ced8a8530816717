//! The worker process: what it is sent, what it reports, and its loop.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::task::{
    self, AuthenticEntry, ChunkError, ChunkOutcome, Seal, SealCache, Task, TaskResult, Token,
};
use crate::{GetError, Queue, spawn};

/// Identifies one worker process of a pool, never reused within the pool.
pub(crate) type WorkerId = u64;

/// A chunk of calls for a worker to run.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct Run {
    /// The call (map, apply, imap...) the chunk belongs to.
    pub(crate) job: u64,
    /// The chunk's index within the job.
    pub(crate) chunk: u64,
    /// The task's entry point ([`task::entry_offset`]).
    pub(crate) entry: u64,
    /// The entry point's seal ([`task::seal`]): the worker refuses an order without a valid
    /// one. The pool's token itself never crosses the queue, whose memory other processes
    /// can read.
    #[serde(with = "serde_bytes")]
    pub(crate) seal: Seal,
    /// The arguments, an encoded `Vec<Args>`.
    #[serde(with = "serde_bytes")]
    pub(crate) args: Vec<u8>,
}

/// What the pool sends a worker, on that worker's own queue.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum Order {
    /// Run these chunks, in order, and report each one's outcome before the next.
    Runs(Vec<Run>),
    /// Exit: the pool was closed and has no more work.
    Stop,
}

/// What reaches the pool's supervisor, on the one queue every worker reports to.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum Report {
    /// A worker ran a chunk.
    Done {
        worker: WorkerId,
        job: u64,
        chunk: u64,
        outcome: Result<serde_bytes::ByteBuf, ChunkError>,
    },
    /// A worker's initializer succeeded: a death from now on is a task's, not the
    /// initializer's.
    Ready { worker: WorkerId },
    /// A worker's initializer failed; the worker exits.
    InitFailed { worker: WorkerId, message: String },
    /// A worker process ended (sent by the pool's own watcher thread, after every report the
    /// worker made).
    Exited { worker: WorkerId },
    /// Something changed in the pool (work submitted, close, terminate): look again.
    Wake,
}

/// What a worker is started with.
#[derive(Serialize, Deserialize)]
pub(crate) struct WorkerSetup {
    pub(crate) id: WorkerId,
    pub(crate) orders: Queue<Order>,
    pub(crate) reports: Queue<Report>,
    pub(crate) token: Token,
    /// Exit after this many chunks (Python's `maxtasksperchild`).
    pub(crate) maxtasks: Option<u64>,
}

/// The initializer of a pool that has none.
pub(crate) fn no_initializer() {}

/// A worker's whole life: run the initializer, then the chunks it is sent, until it is told to
/// stop, its queue is shut down, or it ran `maxtasks` chunks.
///
/// # Errors
/// The pool's queues failed (corrupt or closed): the message says how; the process then exits
/// with code 1 and the pool sees it die.
pub(crate) fn worker_main<I, IA>(setup: WorkerSetup, initargs: IA) -> Result<(), String>
where
    I: Task<IA>,
    I::Output: TaskResult<Value = ()>,
{
    task::become_worker();
    if let Err(message) = initialize::<I, IA>(initargs) {
        let report = Report::InitFailed {
            worker: setup.id,
            message,
        };
        return setup
            .reports
            .put(report)
            .map_err(|error| format!("{error:?}"));
    }
    let ready = Report::Ready { worker: setup.id };
    setup
        .reports
        .put(ready)
        .map_err(|error| format!("a pool worker cannot report: {error:?}"))?;
    let mut ran = 0;
    let mut seals = SealCache::default();
    // The pool never sends more than `maxtasks` chunks in all, so a batch never crosses it.
    while setup.maxtasks.is_none_or(|most| ran < most) {
        let runs = match setup.orders.get() {
            Ok(Order::Runs(runs)) => runs,
            Ok(Order::Stop) | Err(GetError::ShutDown | GetError::Closed) => return Ok(()),
            Err(error) => return Err(format!("a pool worker cannot read its orders: {error:?}")),
        };
        for run in runs {
            let task =
                crate::timeline::span(crate::timeline::Kind::PoolTask, || (run.job, run.chunk));
            let outcome = execute(&run, &setup.token, &mut seals);
            drop(task);
            let report = Report::Done {
                worker: setup.id,
                job: run.job,
                chunk: run.chunk,
                outcome: outcome.map(serde_bytes::ByteBuf::from),
            };
            setup
                .reports
                .put(report)
                .map_err(|error| format!("a pool worker cannot report: {error:?}"))?;
            ran += 1;
        }
    }
    Ok(())
}

fn initialize<I, IA>(initargs: IA) -> Result<(), String>
where
    I: Task<IA>,
    I::Output: TaskResult<Value = ()>,
{
    let initializer =
        spawn::recreate::<I, IA>().ok_or("the worker cannot recreate the initializer")?;
    task::run_caught(|| initializer.call(initargs).into_result())
}

/// Runs an order's chunk, if the order is authentic and names an entry point.
fn execute(run: &Run, token: &Token, seals: &mut SealCache) -> ChunkOutcome {
    let authentic = AuthenticEntry::check_remembering(run.entry, &run.seal, token, seals)
        .ok_or("the worker refused an order not sealed by its pool")?;
    let entry = task::entry_at(authentic)
        .ok_or("the worker refused an order naming no task entry point")?;
    entry(&run.args)
}

/// Decodes a chunk's outcome into its items' results.
pub(crate) fn decode_chunk<V: DeserializeOwned>(
    bytes: &[u8],
) -> Result<task::ChunkResults<V>, String> {
    crate::wire::decode(bytes).map_err(|error| error.to_string())
}
