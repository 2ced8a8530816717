//! The pool's bookkeeping, and the thread that keeps it: which worker holds which chunk, what
//! each job has received, and what happens when a worker ends.
//!
//! Each worker has a queue of its own for orders, so the pool always knows which chunks a
//! worker may hold: the ones it sent and got no report for. When a worker ends, the watcher
//! thread of that worker reports it on the report queue, after every report the worker made
//! (a `put` returns once the item is in shared memory, before the process can end). The
//! supervisor then takes back the orders still in the dead worker's queue (never started, so
//! sent to another worker) and fails the rest, the chunk the worker was running, with
//! [`PoolError::WorkerDied`]. No chunk is run twice by the pool's choice, and every chunk gets
//! exactly one outcome.

use std::collections::{HashMap, VecDeque};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

use super::PoolError;
use super::task::{self, Token};
use super::worker::{Order, Report, Run, WorkerId, WorkerSetup};
use crate::{GetError, Process, Queue, sys};

/// How many chunks a worker may hold at once: the one it runs and those queued behind it, so
/// that it finds its next chunk without waiting for the supervisor. They are sent in batches,
/// one order for all the chunks a worker is given at once. An idle worker takes a queued batch
/// back from a busy one, so a long chunk does not hold others up.
pub(crate) const PREFETCH: usize = 32;

/// Makes a worker process (not started) from its setup.
pub(crate) type Factory = Box<dyn Fn(WorkerSetup) -> Process + Send>;

/// Why a chunk has no results.
#[derive(Clone, Debug)]
pub(crate) enum Failure {
    WorkerDied {
        pid: u32,
        exitcode: i32,
    },
    Terminated,
    /// An `imap`'s input read after `join`: the pool takes no more work.
    NotRunning,
    Refused(String),
    Initializer(String),
    Broken(String),
    Arguments(String),
}

impl Failure {
    pub(crate) fn to_error(&self) -> PoolError {
        match self.clone() {
            Failure::WorkerDied { pid, exitcode } => PoolError::WorkerDied { pid, exitcode },
            Failure::Terminated => PoolError::Terminated,
            Failure::NotRunning => PoolError::NotRunning,
            Failure::Refused(message) | Failure::Broken(message) => PoolError::Broken(message),
            Failure::Initializer(message) => PoolError::Initializer(message),
            Failure::Arguments(message) => PoolError::Arguments(message),
        }
    }
}

/// One chunk's outcome as the supervisor stores it.
pub(crate) enum Outcome {
    /// The worker ran it: the encoded results of its items (a task's own error among them).
    Ran(Vec<u8>),
    /// The whole chunk failed.
    Failed(Failure),
}

/// One call's chunks and what came back for them.
#[derive(Default)]
pub(crate) struct Job {
    /// How many items each chunk holds (for an `imap`, the chunks submitted so far).
    pub(crate) chunk_lens: Vec<usize>,
    /// Whether each chunk has had its outcome: a chunk gets exactly one.
    settled: Vec<bool>,
    unsettled: usize,
    /// The outcomes not yet taken by an `imap`, by chunk index.
    outcomes: Vec<Option<Outcome>>,
    /// For a `streaming` job, chunk indices in the order their outcomes arrived (for
    /// `imap_unordered`).
    pub(crate) arrivals: VecDeque<u64>,
    /// Read chunk by chunk (an `imap`), rather than once complete.
    pub(crate) streaming: bool,
    /// An `imap` that may still read input and add chunks: a closed pool keeps its workers
    /// for it until its input ends, it is dropped, or the pool is joined.
    feeding: bool,
}

impl Job {
    pub(crate) fn is_complete(&self) -> bool {
        self.unsettled == 0
    }

    /// The outcome of `chunk`, if it has one not yet taken.
    pub(crate) fn outcome(&self, chunk: u64) -> Option<&Outcome> {
        let index = usize::try_from(chunk).ok()?;
        self.outcomes.get(index)?.as_ref()
    }

    /// Takes the outcome of `chunk` out (an `imap` reads each once).
    pub(crate) fn take_outcome(&mut self, chunk: u64) -> Option<Outcome> {
        let index = usize::try_from(chunk).ok()?;
        self.outcomes.get_mut(index)?.take()
    }

    fn add_chunk(&mut self, len: usize) -> u64 {
        self.chunk_lens.push(len);
        self.outcomes.push(None);
        self.settled.push(false);
        self.unsettled += 1;
        self.chunk_lens.len() as u64 - 1
    }

    /// Records the outcome of `chunk`, unless it already has one. Returns whether a reader
    /// waiting on the job may go on: the job is complete, or it is read chunk by chunk.
    fn settle(&mut self, chunk: u64, outcome: Outcome) -> bool {
        let Some(index) = usize::try_from(chunk)
            .ok()
            .filter(|&index| index < self.settled.len())
        else {
            return false;
        };
        if self.settled[index] {
            return false;
        }
        self.settled[index] = true;
        self.unsettled -= 1;
        self.outcomes[index] = Some(outcome);
        if self.streaming {
            self.arrivals.push_back(chunk);
        }
        self.streaming || self.is_complete()
    }
}

/// Where the pool is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Status {
    /// Takes work.
    Running,
    /// `close`d: finishes the work it has, then its workers stop.
    Closed,
    /// `terminate`d: its workers are being killed.
    Terminating,
    /// Every worker has ended and the supervisor thread has returned.
    Finished,
}

struct Worker {
    id: WorkerId,
    pid: u32,
    process: Process,
    orders: Queue<Order>,
    /// The chunks sent and not reported, oldest first.
    held: VecDeque<Run>,
    /// Chunks it will run before it exits by itself (`maxtasksperchild`), if limited.
    budget: Option<u64>,
    /// Told to stop (or killed): gets no more work.
    stopping: bool,
    /// Its initializer succeeded ([`Report::Ready`]): until then, its death is the
    /// initializer's failure.
    ready: bool,
}

/// Everything the pool's threads share, behind one lock.
pub(crate) struct State {
    pub(crate) status: Status,
    /// `terminate()` stopped the pool before it finished (not a `close` and `join`).
    terminated: bool,
    /// Set once the pool cannot run tasks any more; every later call fails with it.
    pub(crate) broken: Option<Failure>,
    pub(crate) jobs: HashMap<u64, Job>,
    next_job: u64,
    pending: VecDeque<Run>,
    workers: Vec<Worker>,
    next_worker: WorkerId,
    factory: Factory,
    processes: usize,
    maxtasks: Option<u64>,
    pub(crate) token: Token,
    /// Something a waiting caller may be waiting for happened since the last wake-up.
    news: bool,
}

/// The state, the condition variable that callers wait on, and the report queue.
pub(crate) struct Shared {
    state: Mutex<State>,
    pub(crate) changed: Condvar,
    reports: Queue<Report>,
    /// The process whose supervisor thread keeps the state: in a forked copy of it, nothing
    /// moves the state on, and the lock may have been held by a thread that is not there.
    owner: u32,
}

impl Shared {
    /// Starts `processes` workers.
    pub(crate) fn start(
        processes: usize,
        maxtasks: Option<u64>,
        factory: Factory,
    ) -> Result<Arc<Shared>, PoolError> {
        let reports = Queue::new()?;
        let mut state = State {
            status: Status::Running,
            terminated: false,
            broken: None,
            jobs: HashMap::new(),
            next_job: 0,
            pending: VecDeque::new(),
            workers: Vec::with_capacity(processes),
            next_worker: 0,
            factory,
            processes,
            maxtasks,
            token: sys::random_bytes()?,
            news: false,
        };
        for _ in 0..processes {
            if let Err(error) = state.start_worker(&reports) {
                state.kill_all();
                return Err(error);
            }
        }
        Ok(Arc::new(Shared {
            state: Mutex::new(state),
            changed: Condvar::new(),
            reports,
            owner: std::process::id(),
        }))
    }

    /// Whether this is the process that made the pool: only there can its results arrive.
    pub(crate) fn is_owner(&self) -> bool {
        self.owner == std::process::id()
    }

    /// The error for a pool's handle (a result, an iterator) used in another process: a
    /// forked child that inherited it, which has no supervisor to deliver anything.
    pub(crate) fn foreign() -> PoolError {
        PoolError::Broken(
            "a pool and its results can be used only by the process that created it".into(),
        )
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        // Every update of the state is finished before anything that may panic, so a panic
        // elsewhere while the lock was held left it consistent.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Waits for the state to change; see [`lock`](Self::lock) for the poison.
    pub(crate) fn wait<'a>(&self, guard: MutexGuard<'a, State>) -> MutexGuard<'a, State> {
        self.changed
            .wait(guard)
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Like [`wait`](Self::wait), for at most `timeout`.
    pub(crate) fn wait_timeout<'a>(
        &self,
        guard: MutexGuard<'a, State>,
        timeout: std::time::Duration,
    ) -> MutexGuard<'a, State> {
        self.changed
            .wait_timeout(guard, timeout)
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .0
    }

    /// Tells the supervisor to look at the state again.
    pub(crate) fn wake(&self) {
        // The queue is unbounded: a put fails only when its memory is corrupt, and then the
        // supervisor's own `get` fails too and breaks the pool.
        let _ = self.reports.put(Report::Wake);
    }

    /// The supervisor thread's body: handles reports until the pool is finished.
    pub(crate) fn supervise(self: &Arc<Self>) {
        let outcome = catch_unwind(AssertUnwindSafe(|| self.supervise_until_finished()));
        if outcome.is_err() {
            let mut state = self.lock();
            state.break_pool(Failure::Broken("the pool's supervisor panicked".into()));
            state.kill_all();
            state.status = Status::Finished;
            self.changed.notify_all();
        }
    }

    fn supervise_until_finished(&self) {
        loop {
            let first = self.reports.get();
            let mut state = self.lock();
            let mut report = Some(first);
            // Handle every report already there under one lock, then dispatch once.
            while let Some(next) = report.take() {
                match next {
                    Ok(next) => state.handle(next, &self.reports),
                    Err(error) => {
                        let why = format!("its report queue failed: {error:?}");
                        state.break_pool(Failure::Broken(why));
                        state.kill_all();
                        state.workers.clear();
                        break;
                    }
                }
                report = match self.reports.get_nowait() {
                    Err(GetError::Empty) => None,
                    other => Some(other),
                };
            }
            state.dispatch();
            let finished = state.workers.is_empty() && state.status != Status::Running;
            if finished {
                state.status = Status::Finished;
                state.news = true;
            }
            let news = std::mem::take(&mut state.news);
            drop(state);
            if news {
                self.changed.notify_all();
            }
            if finished {
                return;
            }
        }
    }
}

impl State {
    /// Registers a new job with its chunks queued; returns its id. A `streaming` job's
    /// readers are woken at each chunk's outcome, others' once the job is complete.
    pub(crate) fn submit(
        &mut self,
        entry: u64,
        chunks: Vec<(usize, Vec<u8>)>,
        streaming: bool,
    ) -> u64 {
        let job = self.next_job;
        self.next_job += 1;
        let record = Job {
            streaming,
            ..Job::default()
        };
        self.jobs.insert(job, record);
        self.add_chunks(job, entry, chunks);
        job
    }

    /// Queues more chunks of `job`.
    pub(crate) fn add_chunks(&mut self, job: u64, entry: u64, chunks: Vec<(usize, Vec<u8>)>) {
        let Some(record) = self.jobs.get_mut(&job) else {
            return;
        };
        let seal = task::seal(&self.token, entry);
        for (len, args) in chunks {
            let chunk = record.add_chunk(len);
            self.pending.push_back(Run {
                job,
                chunk,
                entry,
                seal,
                args,
            });
        }
    }

    /// Queues more chunks of `job`, a job still `feeding`, or fails them at once if the pool
    /// can no longer run them ([`feed_refusal`](Self::feed_refusal)): a chunk added after the
    /// pool broke or was terminated must not wait for a dispatch that will never come.
    pub(crate) fn feed(&mut self, job: u64, entry: u64, chunks: Vec<(usize, Vec<u8>)>) {
        match self.feed_refusal(job) {
            None => self.add_chunks(job, entry, chunks),
            Some(failure) => {
                for (len, _) in chunks {
                    self.add_failed_chunk(job, len, failure.clone());
                }
            }
        }
    }

    /// Records a chunk that failed before it reached the pool (its arguments did not encode).
    pub(crate) fn add_failed_chunk(&mut self, job: u64, len: usize, failure: Failure) {
        if let Some(record) = self.jobs.get_mut(&job) {
            let chunk = record.add_chunk(len);
            self.news |= record.settle(chunk, Outcome::Failed(failure));
        }
    }

    /// Marks `job` as an `imap` that will add chunks as its input is read.
    pub(crate) fn start_feeding(&mut self, job: u64) {
        if let Some(record) = self.jobs.get_mut(&job) {
            record.feeding = true;
        }
    }

    /// `job` will add no more chunks.
    pub(crate) fn end_feeding(&mut self, job: u64) {
        if let Some(record) = self.jobs.get_mut(&job) {
            record.feeding = false;
        }
    }

    /// `join()`: no `imap` adds chunks any more, so that the workers can finish.
    pub(crate) fn end_all_feeding(&mut self) {
        for record in self.jobs.values_mut() {
            record.feeding = false;
        }
    }

    fn is_feeding(&self) -> bool {
        self.jobs.values().any(|record| record.feeding)
    }

    /// Why the next chunks of `job`, an `imap`, cannot run, if they cannot: after `close` an
    /// `imap` goes on reading its input (as Python's, which read it all at once, does), until
    /// `join`, `terminate` or a broken pool.
    pub(crate) fn feed_refusal(&self, job: u64) -> Option<Failure> {
        if let Some(failure) = &self.broken {
            return Some(failure.clone());
        }
        if self.terminated {
            return Some(Failure::Terminated);
        }
        let feeding = self.jobs.get(&job).is_some_and(|record| record.feeding);
        match self.status {
            Status::Running => None,
            Status::Closed if feeding => None,
            Status::Closed | Status::Terminating | Status::Finished => Some(Failure::NotRunning),
        }
    }

    /// Whether new work is accepted; the error says why not.
    pub(crate) fn check_running(&self) -> Result<(), PoolError> {
        if let Some(failure) = &self.broken {
            return Err(failure.to_error());
        }
        match self.status {
            Status::Running => Ok(()),
            _ => Err(PoolError::NotRunning),
        }
    }

    pub(crate) fn processes(&self) -> usize {
        self.processes
    }

    /// The PIDs of the workers alive now.
    pub(crate) fn worker_pids(&self) -> Vec<u32> {
        self.workers.iter().map(|worker| worker.pid).collect()
    }

    fn handle(&mut self, report: Report, reports: &Queue<Report>) {
        match report {
            Report::Done {
                worker,
                job,
                chunk,
                outcome,
            } => {
                if let Some(worker) = self.workers.iter_mut().find(|w| w.id == worker) {
                    worker.forget_held((job, chunk));
                }
                let outcome = match outcome {
                    Ok(bytes) => Outcome::Ran(bytes.into_vec()),
                    Err(message) => Outcome::Failed(Failure::Refused(message)),
                };
                if let Some(record) = self.jobs.get_mut(&job) {
                    self.news |= record.settle(chunk, outcome);
                }
            }
            Report::Ready { worker } => {
                if let Some(worker) = self.workers.iter_mut().find(|w| w.id == worker) {
                    worker.ready = true;
                }
            }
            Report::InitFailed { message, .. } => {
                self.break_pool(Failure::Initializer(message));
                self.kill_all();
            }
            Report::Exited { worker } => self.bury(worker, reports),
            Report::Wake => {}
        }
        if self.status == Status::Terminating {
            self.fail_everything(&Failure::Terminated);
            self.kill_all();
        }
    }

    /// A worker ended: reap it, give its untaken orders to others, fail what it held, and
    /// replace it if there is still work to do.
    fn bury(&mut self, id: WorkerId, reports: &Queue<Report>) {
        let Some(index) = self.workers.iter().position(|w| w.id == id) else {
            return;
        };
        let mut worker = self.workers.swap_remove(index);
        let exitcode = match worker.process.join() {
            Ok(()) => worker.process.exitcode().unwrap_or(-1),
            Err(_) => -1,
        };
        // What is still in its queue was never taken.
        let mut untaken = Vec::new();
        while let Ok(Order::Runs(runs)) = worker.orders.get_nowait() {
            for run in &runs {
                worker.forget_held((run.job, run.chunk));
            }
            untaken.extend(runs);
        }
        // It runs what it took in order and reports each chunk before the next: the oldest
        // chunk it holds is the one it was running, and the others it took with it were never
        // started. Those go to other workers with the untaken ones, in order.
        // (A job whose caller went away has nothing to run any more.)
        let running = worker.held.pop_front();
        let to_run: Vec<Run> = worker.held.into_iter().chain(untaken).collect();
        for run in to_run.into_iter().rev() {
            if self.jobs.contains_key(&run.job) {
                self.pending.push_front(run);
            }
        }
        let died = Failure::WorkerDied {
            pid: worker.pid,
            exitcode,
        };
        if let Some(run) = running
            && let Some(record) = self.jobs.get_mut(&run.job)
        {
            self.news |= record.settle(run.chunk, Outcome::Failed(died));
        }
        if !worker.ready && !worker.stopping {
            // It died before its initializer returned (a signal, an `exit`, a spawned child
            // that refused its payload): as for an initializer that fails, the pool stops,
            // rather than start workers that die the same way for ever.
            let death = super::error::worker_death(worker.pid, exitcode);
            self.break_pool(Failure::Initializer(format!("{death} in it")));
            self.kill_all();
            return;
        }
        let work_left =
            self.status == Status::Running || !self.pending.is_empty() || self.is_feeding();
        if self.broken.is_none()
            && matches!(self.status, Status::Running | Status::Closed)
            && work_left
            && let Err(error) = self.start_worker(reports)
        {
            let why = format!("a replacement worker could not start: {error}");
            self.break_pool(Failure::Broken(why));
            self.kill_all();
        }
    }

    fn start_worker(&mut self, reports: &Queue<Report>) -> Result<(), PoolError> {
        let id = self.next_worker;
        self.next_worker += 1;
        let orders = Queue::new()?;
        let setup = WorkerSetup {
            id,
            orders: orders.clone(),
            reports: reports.clone(),
            token: self.token,
            maxtasks: self.maxtasks,
        };
        let mut process = (self.factory)(setup);
        process.start()?;
        let pid = process.pid().unwrap_or(0);
        if let Err(error) = watch(&process, id, reports) {
            let _ = process.kill();
            let _ = process.join();
            return Err(error.into());
        }
        self.workers.push(Worker {
            id,
            pid,
            process,
            orders,
            held: VecDeque::new(),
            budget: self.maxtasks,
            stopping: false,
            ready: false,
        });
        Ok(())
    }

    /// Gives pending chunks to workers with room, one each in turn; lets idle workers take
    /// chunks queued behind busy ones; tells idle workers of a closed pool to stop.
    fn dispatch(&mut self) {
        if self.status == Status::Terminating || self.broken.is_some() {
            return;
        }
        self.fill_workers();
        self.rebalance();
        if self.status == Status::Closed && self.pending.is_empty() && !self.is_feeding() {
            for worker in self.workers.iter_mut().filter(|w| w.held.is_empty()) {
                if !worker.stopping {
                    worker.stopping = true;
                    if worker.orders.put(Order::Stop).is_err() {
                        let _ = worker.process.kill();
                    }
                }
            }
        }
    }

    /// Gives each worker with room its share of the pending chunks, in one order each, the
    /// least busy first (chunks often arrive one at a time, as `map` encodes them).
    fn fill_workers(&mut self) {
        loop {
            let mut eligible: Vec<usize> = (0..self.workers.len())
                .filter(|&index| self.workers[index].has_room())
                .collect();
            if eligible.is_empty() || self.pending.is_empty() {
                return;
            }
            eligible.sort_by_key(|&index| self.workers[index].held.len());
            let share = self.pending.len().div_ceil(eligible.len());
            for index in eligible {
                let worker = &mut self.workers[index];
                let take = share.min(worker.room()).min(self.pending.len());
                if take == 0 {
                    break;
                }
                let batch: Vec<Run> = self.pending.drain(..take).collect();
                if let Err(batch) = worker.send(batch) {
                    for run in batch.into_iter().rev() {
                        self.pending.push_front(run);
                    }
                    worker.stopping = true;
                    let _ = worker.process.kill();
                }
            }
        }
    }

    /// Moves the chunks queued behind a busy worker's current one to each idle worker.
    fn rebalance(&mut self) {
        while self.pending.is_empty() {
            let Some(idle) = self
                .workers
                .iter()
                .position(|w| w.held.is_empty() && w.has_room())
            else {
                return;
            };
            let Some(busy) = self.workers.iter().position(|w| w.held.len() >= 2) else {
                return;
            };
            let Ok(Order::Runs(batch)) = self.workers[busy].orders.get_nowait() else {
                return;
            };
            let busy = &mut self.workers[busy];
            for run in &batch {
                busy.forget_held((run.job, run.chunk));
            }
            if let Some(budget) = &mut busy.budget {
                *budget += batch.len() as u64;
            }
            if let Err(batch) = self.workers[idle].send(batch) {
                for run in batch.into_iter().rev() {
                    self.pending.push_front(run);
                }
                return;
            }
        }
    }

    /// Fails every chunk that has no outcome yet.
    fn fail_everything(&mut self, failure: &Failure) {
        self.pending.clear();
        for worker in &mut self.workers {
            worker.held.clear();
        }
        for record in self.jobs.values_mut() {
            for chunk in 0..record.chunk_lens.len() as u64 {
                self.news |= record.settle(chunk, Outcome::Failed(failure.clone()));
            }
        }
    }

    fn break_pool(&mut self, failure: Failure) {
        self.fail_everything(&failure);
        self.broken.get_or_insert(failure);
        self.news = true;
    }

    /// Kills every worker (SIGKILL); each one's watcher then reports its end.
    fn kill_all(&mut self) {
        for worker in &mut self.workers {
            worker.stopping = true;
            let _ = worker.process.kill();
        }
    }

    /// `close()`: no new work; the workers stop once what they have is done.
    pub(crate) fn close(&mut self) {
        if self.status == Status::Running {
            self.status = Status::Closed;
        }
    }

    /// `terminate()`: every unfinished chunk fails, every worker is killed.
    pub(crate) fn terminate(&mut self) {
        if matches!(self.status, Status::Running | Status::Closed) {
            self.status = Status::Terminating;
            self.terminated = true;
        }
    }

    /// Forgets a job whose results nobody will read; returns whether it was an `imap` still
    /// feeding (the supervisor may then stop the idle workers of a closed pool).
    pub(crate) fn forget(&mut self, job: u64) -> bool {
        let record = self.jobs.remove(&job);
        self.pending.retain(|run| run.job != job);
        record.is_some_and(|record| record.feeding)
    }
}

impl Worker {
    /// Forgets a chunk it no longer holds: usually the oldest, as it runs them in order.
    fn forget_held(&mut self, (job, chunk): (u64, u64)) {
        let is_it = |run: &Run| run.job == job && run.chunk == chunk;
        if self.held.front().is_some_and(is_it) {
            self.held.pop_front();
        } else {
            self.held.retain(|run| !is_it(run));
        }
    }

    /// How many more chunks it may be given now.
    fn room(&self) -> usize {
        if self.stopping {
            return 0;
        }
        let budget = self.budget.map_or(usize::MAX, |b| b as usize);
        PREFETCH.saturating_sub(self.held.len()).min(budget)
    }

    fn has_room(&self) -> bool {
        self.room() > 0
    }

    /// Puts `batch` on the worker's queue as one order; gives it back if the queue refuses it.
    /// The worker's copy is what it runs; the pool's, kept in `held`, is what goes to another
    /// worker if this one dies before starting it.
    fn send(&mut self, batch: Vec<Run>) -> Result<(), Vec<Run>> {
        if self.orders.put(Order::Runs(batch.clone())).is_err() {
            return Err(batch);
        }
        if let Some(budget) = &mut self.budget {
            *budget -= batch.len() as u64;
        }
        self.held.extend(batch);
        Ok(())
    }
}

/// Starts a thread that reports the end of `process` on `reports`.
fn watch(process: &Process, id: WorkerId, reports: &Queue<Report>) -> std::io::Result<()> {
    let exited = process
        .exit_notifier()
        .ok_or_else(|| std::io::Error::other("the worker did not start"))?;
    let exited = sys::fd::duplicate(exited)?;
    let reports = reports.clone();
    std::thread::Builder::new()
        .name(format!("pool-watch-{id}"))
        .spawn(move || {
            use std::os::fd::AsFd;
            // Only a wait that cannot be made ends this early; the supervisor's `join` then
            // waits for the end itself.
            while let Ok(false) = sys::fd::wait_readable(exited.as_fd(), None) {}
            let _ = reports.put(Report::Exited { worker: id });
        })?;
    Ok(())
}
