//! Rank 0's bookkeeping, without MPI: which chunk each worker rank holds, the chunks waiting
//! for a free rank, and each job's outcomes. Every report is checked here, where it arrives:
//! from a worker rank that holds exactly the chunk it names, and decoding as a report.
//! Anything else breaks the pool with a message saying what arrived, so nothing downstream
//! works on a value a peer made up.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};

use super::protocol::{self, Report, Run};
use crate::pool::task::ChunkError;
use crate::{CodecError, PoolError};

/// What became of one chunk.
#[derive(Clone, Debug)]
pub(crate) enum Outcome {
    /// It ran: its encoded `ChunkResults`.
    Ran(Vec<u8>),
    /// It did not run, or its results could not be sent: why.
    Failed(Failure),
}

/// Why a chunk has no results; each item of the chunk fails with [`Failure::to_error`].
#[derive(Clone, Debug)]
pub(crate) enum Failure {
    /// The worker refused the order, or the pool broke before the chunk ran.
    Broken(String),
    /// The results could not be encoded by the worker. Python: `MaybeEncodingError`.
    Encoding(String),
    /// The arguments could not be encoded (an `imap` item read after the start).
    Arguments(String),
    /// The pool was terminated before the chunk ran.
    Terminated,
    /// The call was cancelled before a rank was given it (an executor's future).
    Cancelled,
}

impl Failure {
    pub(crate) fn to_error(&self) -> PoolError {
        match self {
            Failure::Broken(why) => PoolError::Broken(why.clone()),
            Failure::Encoding(why) => PoolError::Encoding(CodecError::new(why.clone())),
            Failure::Arguments(why) => PoolError::Arguments(CodecError::new(why.clone())),
            Failure::Terminated => PoolError::Terminated,
            Failure::Cancelled => PoolError::Cancelled,
        }
    }
}

/// A done callback of an executor's future, run by the progress thread without the lock.
pub(crate) type Callback = Box<dyn FnOnce() + Send>;

/// One call of the pool (a `map`, an `apply`, an `imap`, an executor's `submit`): its
/// chunks' sizes and outcomes.
#[derive(Default)]
pub(crate) struct Job {
    /// The [`MpiPool`](super::MpiPool) that made it.
    pub(crate) pool: u64,
    /// Whether its chunks are added as its input is read (an `imap`): it cannot be
    /// cancelled, as it has no end yet.
    pub(crate) lazy: bool,
    /// How many items each chunk holds, in input order.
    pub(crate) chunk_lens: Vec<usize>,
    /// The outcomes that arrived and were not taken yet.
    pub(crate) outcomes: BTreeMap<u64, Outcome>,
    /// How many of its chunks have no outcome yet (pending or running).
    unsettled: usize,
    /// What to run once no chunk is unsettled.
    callbacks: Vec<Callback>,
}

impl std::fmt::Debug for Job {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Job")
            .field("pool", &self.pool)
            .field("chunk_lens", &self.chunk_lens)
            .field("unsettled", &self.unsettled)
            .field("callbacks", &self.callbacks.len())
            .finish_non_exhaustive()
    }
}

/// Rank 0's view of the work.
pub(crate) struct Ledger {
    /// What each worker rank holds, at index `rank - 1`: at most one chunk, so that rank 0
    /// sends an order only to a rank waiting in its receive (see `world`).
    held: Vec<Option<(u64, u64)>>,
    /// Chunks waiting for a free rank, first come first served.
    pending: VecDeque<Run>,
    pub(crate) jobs: HashMap<u64, Job>,
    next_job: u64,
    /// Set once a report could not be trusted: every call from then on fails with it.
    pub(crate) broken: Option<String>,
    /// The pools terminated: a chunk of theirs read later (an `imap`'s) fails at once.
    terminated: HashSet<u64>,
    /// Callbacks of jobs that have settled, for the progress thread to run.
    due: Vec<Callback>,
    /// Whether something a caller may wait for happened since the last look: a job settled,
    /// or a chunk of an `imap` (whose iterator takes chunk by chunk) came back.
    awaited: bool,
}

impl std::fmt::Debug for Ledger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ledger")
            .field("held", &self.held)
            .field("pending", &self.pending.len())
            .field("jobs", &self.jobs)
            .field("broken", &self.broken)
            .field("due", &self.due.len())
            .finish_non_exhaustive()
    }
}

impl Ledger {
    /// The ledger of a job of `workers` worker ranks (ranks 1 to `workers`).
    pub(crate) fn new(workers: usize) -> Ledger {
        Ledger {
            held: vec![None; workers],
            pending: VecDeque::new(),
            jobs: HashMap::new(),
            next_job: 0,
            broken: None,
            terminated: HashSet::new(),
            due: Vec::new(),
            awaited: false,
        }
    }

    pub(crate) fn workers(&self) -> usize {
        self.held.len()
    }

    /// A new job of pool `pool`, with no chunks yet; `lazy` if its chunks come as its input
    /// is read (an `imap`).
    pub(crate) fn new_job(&mut self, pool: u64, lazy: bool) -> u64 {
        let job = self.next_job;
        self.next_job += 1;
        self.jobs.insert(
            job,
            Job {
                pool,
                lazy,
                ..Job::default()
            },
        );
        job
    }

    /// Adds a chunk of `len` items to `job`, to run `entry` (sealed by `seal`) on `args`; a
    /// chunk that can no longer run (the pool broke, or its own pool was terminated) fails
    /// at once.
    pub(crate) fn add_chunk(
        &mut self,
        job: u64,
        len: usize,
        entry: u64,
        seal: [u8; 16],
        args: Vec<u8>,
    ) {
        let Some(pool) = self.jobs.get(&job).map(|record| record.pool) else {
            return;
        };
        if let Some(why) = &self.broken {
            let failure = Failure::Broken(why.clone());
            return self.add_failed_chunk(job, len, failure);
        }
        if self.terminated.contains(&pool) {
            return self.add_failed_chunk(job, len, Failure::Terminated);
        }
        let Some(record) = self.jobs.get_mut(&job) else {
            return;
        };
        let chunk = record.chunk_lens.len() as u64;
        record.chunk_lens.push(len);
        record.unsettled += 1;
        self.pending.push_back(Run {
            job,
            chunk,
            entry,
            seal,
            args,
        });
    }

    /// Adds a chunk of `len` items that failed before it could be sent.
    pub(crate) fn add_failed_chunk(&mut self, job: u64, len: usize, failure: Failure) {
        if let Some(record) = self.jobs.get_mut(&job) {
            let chunk = record.chunk_lens.len() as u64;
            record.chunk_lens.push(len);
            record.outcomes.insert(chunk, Outcome::Failed(failure));
        }
    }

    /// The next order to send, and the rank to send it to: the first pending chunk, to the
    /// first rank holding nothing.
    pub(crate) fn next_assignment(&mut self) -> Option<(i32, Run)> {
        if self.broken.is_some() {
            return None;
        }
        let free = self.held.iter().position(Option::is_none)?;
        let run = self.pending.pop_front()?;
        self.held[free] = Some((run.job, run.chunk));
        Some((free as i32 + 1, run))
    }

    /// Whether some rank is running a chunk, so a report is on its way.
    pub(crate) fn any_held(&self) -> bool {
        self.held.iter().any(Option::is_some)
    }

    /// Whether `job` has chunks still to come back (pending or running).
    pub(crate) fn in_flight(&self, job: u64) -> bool {
        self.jobs
            .get(&job)
            .is_some_and(|record| record.unsettled > 0)
    }

    /// Whether a rank is running a chunk of `job`.
    pub(crate) fn is_held(&self, job: u64) -> bool {
        self.held.iter().flatten().any(|&(held, _)| held == job)
    }

    /// Runs `callback` once `job` has settled: returns it if the job has settled already
    /// (or was forgotten), for the caller to run.
    pub(crate) fn on_settled(&mut self, job: u64, callback: Callback) -> Option<Callback> {
        match self.jobs.get_mut(&job) {
            Some(record) if record.unsettled > 0 => {
                record.callbacks.push(callback);
                None
            }
            _ => Some(callback),
        }
    }

    /// Whether a job settled or an `imap`'s chunk came back since the last call: only then
    /// is a waiting caller worth waking (a `map` of 20 000 chunks wakes its caller once).
    pub(crate) fn take_awaited(&mut self) -> bool {
        std::mem::take(&mut self.awaited)
    }

    /// The callbacks of the jobs settled since the last call, in the order they were added.
    pub(crate) fn take_due(&mut self) -> Vec<Callback> {
        std::mem::take(&mut self.due)
    }

    /// Cancels `job` if no rank has been given any of its chunks and it has an end (not an
    /// `imap`): its chunks fail with [`Failure::Cancelled`]. Whether it is cancelled (also
    /// if it already was). Python: `Future.cancel()`.
    pub(crate) fn cancel(&mut self, job: u64) -> bool {
        let Some(record) = self.jobs.get(&job) else {
            return false;
        };
        if record.unsettled == 0 {
            return record
                .outcomes
                .values()
                .any(|outcome| matches!(outcome, Outcome::Failed(Failure::Cancelled)));
        }
        if record.lazy || self.is_held(job) {
            return false;
        }
        let (theirs, others): (VecDeque<Run>, VecDeque<Run>) = std::mem::take(&mut self.pending)
            .into_iter()
            .partition(|run| run.job == job);
        self.pending = others;
        for run in theirs {
            self.fail(&run, Failure::Cancelled);
        }
        true
    }

    /// Cancels every job of pool `pool` that no rank has begun
    /// (`shutdown(cancel_futures=True)`).
    pub(crate) fn cancel_pending(&mut self, pool: u64) {
        let mut jobs: Vec<u64> = self
            .pending
            .iter()
            .map(|run| run.job)
            .filter(|job| self.jobs.get(job).is_some_and(|record| record.pool == pool))
            .collect();
        jobs.dedup();
        for job in jobs {
            self.cancel(job);
        }
    }

    /// Takes in the report `bytes` that rank `source` sent. A report that does not decode, that
    /// comes from a rank that is not a worker, or that names a chunk its rank does not hold,
    /// breaks the pool (every unfinished call then fails with that message).
    pub(crate) fn accept(&mut self, source: i32, bytes: &[u8]) {
        if let Err(why) = self.try_accept(source, bytes) {
            self.break_with(why);
        }
    }

    fn try_accept(&mut self, source: i32, bytes: &[u8]) -> Result<(), String> {
        let slot = usize::try_from(source)
            .ok()
            .and_then(|rank| rank.checked_sub(1))
            .filter(|&index| index < self.held.len())
            .ok_or_else(|| format!("rank {source} sent a report, but it is not a worker rank"))?;
        // A worker rank sends one report per order, then waits for the next: whatever it
        // sent, it holds nothing now (so the stop at exit never waits for it again).
        let held = self.held[slot].take();
        let report =
            protocol::decode_report(bytes).map_err(|why| format!("rank {source}: {why}"))?;
        let (job, chunk, outcome) = match report {
            Report::Done {
                job,
                chunk,
                outcome,
            } => (job, chunk, outcome),
            Report::Unreadable(why) => {
                return Err(format!(
                    "worker rank {source} could not read its order: {why}"
                ));
            }
        };
        if held != Some((job, chunk)) {
            return Err(format!(
                "worker rank {source} reported chunk {chunk} of job {job}, which it was not running"
            ));
        }
        let outcome = match outcome {
            Ok(bytes) => Outcome::Ran(bytes.into_vec()),
            Err(ChunkError::Encoding(why)) => Outcome::Failed(Failure::Encoding(why)),
            Err(ChunkError::Refused(why)) => {
                return Err(format!("worker rank {source} refused an order: {why}"));
            }
        };
        self.settle(job, chunk, outcome);
        Ok(())
    }

    /// Breaks the pool: the pending chunks fail with `why`, and so does every later call.
    pub(crate) fn break_with(&mut self, why: String) {
        for run in std::mem::take(&mut self.pending) {
            self.fail(&run, Failure::Broken(why.clone()));
        }
        self.broken.get_or_insert(why);
        self.awaited = true;
    }

    /// Drops the pending chunks of pool `pool`'s jobs, failing them with
    /// [`Failure::Terminated`]. The chunks running go on (a rank cannot be interrupted).
    pub(crate) fn terminate(&mut self, pool: u64) {
        self.terminated.insert(pool);
        let (theirs, others): (VecDeque<Run>, VecDeque<Run>) = std::mem::take(&mut self.pending)
            .into_iter()
            .partition(|run| self.jobs.get(&run.job).is_some_and(|job| job.pool == pool));
        self.pending = others;
        for run in theirs {
            self.fail(&run, Failure::Terminated);
        }
    }

    /// Drops every pending chunk (at exit, when nobody waits for them any more).
    pub(crate) fn drop_pending(&mut self) {
        self.pending.clear();
    }

    /// Whether pool `pool` has chunks still to come back.
    pub(crate) fn pool_in_flight(&self, pool: u64) -> bool {
        self.jobs
            .iter()
            .any(|(&job, record)| record.pool == pool && self.in_flight(job))
    }

    /// Test support: counts worker rank `rank` as running chunk 0 of `job`.
    ///
    /// # Errors
    /// `rank` is not a worker rank, or it is running a chunk.
    #[cfg(feature = "test-support")]
    pub(crate) fn hold_for_test(&mut self, rank: i32, job: u64) -> Result<(), String> {
        let slot = usize::try_from(rank - 1)
            .ok()
            .and_then(|slot| self.held.get_mut(slot))
            .ok_or_else(|| format!("rank {rank} is not a worker rank"))?;
        if slot.is_some() {
            return Err(format!("worker rank {rank} is running a chunk"));
        }
        *slot = Some((job, 0));
        Ok(())
    }

    fn fail(&mut self, run: &Run, failure: Failure) {
        self.settle(run.job, run.chunk, Outcome::Failed(failure));
    }

    /// Records the outcome of a chunk that was pending or running; once the job has none
    /// left, its callbacks are due. A job forgotten meanwhile (its result dropped) takes
    /// nothing.
    fn settle(&mut self, job: u64, chunk: u64, outcome: Outcome) {
        let Some(record) = self.jobs.get_mut(&job) else {
            return;
        };
        record.outcomes.insert(chunk, outcome);
        record.unsettled = record.unsettled.saturating_sub(1);
        if record.unsettled == 0 {
            self.due.append(&mut record.callbacks);
        }
        self.awaited |= record.unsettled == 0 || record.lazy;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mpi::protocol::encode;

    fn report(job: u64, chunk: u64) -> Vec<u8> {
        encode(&Report::Done {
            job,
            chunk,
            outcome: Ok(serde_bytes::ByteBuf::from(vec![0x90])),
        })
    }

    fn ledger_with_one_running_chunk() -> (Ledger, u64) {
        let mut ledger = Ledger::new(2);
        let job = ledger.new_job(0, false);
        ledger.add_chunk(job, 1, 0, [0; 16], Vec::new());
        let (rank, run) = ledger.next_assignment().expect("a free rank");
        assert_eq!((rank, run.job, run.chunk), (1, job, 0));
        (ledger, job)
    }

    #[test]
    fn a_report_of_the_chunk_held_is_taken() {
        let (mut ledger, job) = ledger_with_one_running_chunk();
        assert!(ledger.in_flight(job));
        ledger.accept(1, &report(job, 0));
        assert!(ledger.broken.is_none());
        assert!(!ledger.in_flight(job));
        assert!(matches!(ledger.jobs[&job].outcomes[&0], Outcome::Ran(_)));
    }

    #[test]
    fn untrusted_reports_break_the_pool_with_a_message() {
        let cases: [(i32, Vec<u8>, &str); 6] = [
            (
                0,
                report(0, 0),
                "rank 0 sent a report, but it is not a worker rank",
            ),
            (
                3,
                report(0, 0),
                "rank 3 sent a report, but it is not a worker rank",
            ),
            (
                -1,
                report(0, 0),
                "rank -1 sent a report, but it is not a worker rank",
            ),
            (
                2,
                report(0, 0),
                "worker rank 2 reported chunk 0 of job 0, which it was not running",
            ),
            (
                1,
                report(0, 1),
                "worker rank 1 reported chunk 1 of job 0, which it was not running",
            ),
            (
                1,
                vec![0xc1, 0x00],
                "rank 1: a report does not decode (2 bytes)",
            ),
        ];
        for (source, bytes, expected) in cases {
            let (mut ledger, job) = ledger_with_one_running_chunk();
            ledger.add_chunk(job, 1, 0, [0; 16], Vec::new());
            ledger.accept(source, &bytes);
            let why = ledger.broken.clone().expect("broken");
            assert!(why.starts_with(expected), "{why:?} for {expected:?}");
            // The pending chunk failed with the same message; nothing more is sent.
            let Outcome::Failed(Failure::Broken(failed)) = &ledger.jobs[&job].outcomes[&1] else {
                panic!("the pending chunk did not fail");
            };
            assert_eq!(failed, &why);
            assert!(ledger.next_assignment().is_none());
            // A worker rank that answered waits for its next order: the stop at exit must
            // not wait for another report from it.
            if source == 1 {
                assert!(!ledger.any_held(), "{expected:?}");
            }
        }
    }

    #[test]
    fn a_refused_order_breaks_the_pool_and_an_encoding_failure_fails_the_chunk() {
        let (mut ledger, job) = ledger_with_one_running_chunk();
        let refused = encode(&Report::Done {
            job,
            chunk: 0,
            outcome: Err(ChunkError::Refused("no seal".into())),
        });
        ledger.accept(1, &refused);
        assert_eq!(
            ledger.broken.as_deref(),
            Some("worker rank 1 refused an order: no seal")
        );
        let (mut ledger, job) = ledger_with_one_running_chunk();
        let unencodable = encode(&Report::Done {
            job,
            chunk: 0,
            outcome: Err(ChunkError::Encoding("no".into())),
        });
        ledger.accept(1, &unencodable);
        assert!(ledger.broken.is_none());
        assert!(matches!(
            ledger.jobs[&job].outcomes[&0],
            Outcome::Failed(Failure::Encoding(_))
        ));
    }

    #[test]
    fn each_rank_holds_one_chunk_and_terminate_drops_only_that_pools_pending_chunks() {
        let mut ledger = Ledger::new(2);
        let mine = ledger.new_job(7, false);
        let other = ledger.new_job(8, false);
        for _ in 0..3 {
            ledger.add_chunk(mine, 1, 0, [0; 16], Vec::new());
        }
        ledger.add_chunk(other, 1, 0, [0; 16], Vec::new());
        assert_eq!(ledger.next_assignment().map(|(rank, _)| rank), Some(1));
        assert_eq!(ledger.next_assignment().map(|(rank, _)| rank), Some(2));
        assert!(
            ledger.next_assignment().is_none(),
            "both ranks hold a chunk"
        );
        ledger.terminate(7);
        assert!(matches!(
            ledger.jobs[&mine].outcomes[&2],
            Outcome::Failed(Failure::Terminated)
        ));
        assert!(
            ledger.pool_in_flight(7),
            "the running chunks still come back"
        );
        ledger.accept(1, &report(mine, 0));
        ledger.accept(2, &report(mine, 1));
        assert!(!ledger.pool_in_flight(7));
        assert!(ledger.pool_in_flight(8));
        let (rank, run) = ledger.next_assignment().expect("the other pool's chunk");
        assert_eq!((rank, run.job), (1, other));
    }

    #[test]
    fn a_queued_job_is_cancelled_with_its_callbacks_due_and_a_running_one_is_not() {
        let mut ledger = Ledger::new(1);
        let running = ledger.new_job(0, false);
        ledger.add_chunk(running, 1, 0, [0; 16], Vec::new());
        let queued = ledger.new_job(0, false);
        ledger.add_chunk(queued, 1, 0, [0; 16], Vec::new());
        let lazy = ledger.new_job(0, true);
        ledger.add_chunk(lazy, 1, 0, [0; 16], Vec::new());
        assert_eq!(
            ledger.next_assignment().map(|(_, run)| run.job),
            Some(running)
        );
        for job in [running, queued] {
            assert!(ledger.on_settled(job, Box::new(|| ())).is_none());
        }
        assert!(!ledger.cancel(running), "a rank runs it");
        assert!(!ledger.cancel(lazy), "an imap has no end to cancel");
        assert!(ledger.cancel(queued));
        assert!(!ledger.in_flight(queued));
        assert!(matches!(
            ledger.jobs[&queued].outcomes[&0],
            Outcome::Failed(Failure::Cancelled)
        ));
        assert_eq!(ledger.take_due().len(), 1, "the cancelled job's callback");
        assert!(ledger.cancel(queued), "cancelled already");
        // The running job's callback is due with its report, and one added later runs at once.
        ledger.accept(1, &report(running, 0));
        assert_eq!(ledger.take_due().len(), 1);
        assert!(ledger.on_settled(running, Box::new(|| ())).is_some());
        // The lazy job is what is left to send; cancel_pending leaves it too.
        ledger.cancel_pending(0);
        assert!(ledger.in_flight(lazy));
    }
}
