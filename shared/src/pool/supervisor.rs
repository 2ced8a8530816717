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
//!
//! # Dispatch
//!
//! Chunks wait in the supervisor's own queue (`pending`) until a worker is ready (its
//! initializer returned) and free enough to take them, so that work goes to whichever worker
//! becomes free, as the one task queue of CPython's pool does. A worker is given a share of
//! what waits (guided self-scheduling: `pending / (2 × workers)`, at most
//! [`PREFETCH`] held): large orders while much waits, which keep a worker fed without a round
//! trip per chunk, and single chunks at the end, which spread the last chunks over the
//! workers as they become free ([`batch_size`]).
//!
//! An order a worker has not taken yet may still be moved, once, to a worker with nothing to
//! do: only an order queued behind one the worker has begun (it reported a chunk of it), so
//! that the chunks moved would have waited where they were and start at once where they go
//! ([`State::move_to_free_workers`]). A moved chunk is never moved again, which bounds the
//! moves and keeps two workers that take no orders (stopped, or dead and not yet buried)
//! from passing a batch back and forth. A worker takes an order whole, so a chunk behind a
//! long one in the same order waits for it: the shares shrink as the work runs out to keep
//! such waits short.
//!
//! Every pass of the supervisor over the state is bounded by the number of workers and
//! chunks, and none waits for a worker to act: taking an order back waits at most 100 ms for
//! a queue lock that a stopped worker holds, and that worker is then not asked again until
//! it is sent something.
//!
//! # Reading the reports
//!
//! One thread at a time reads the report queue and handles what it reads (the reading role,
//! [`State::reader`]), so that reports are handled in the order the workers made them: a
//! worker's death is handled after every result it reported. That thread is the supervisor,
//! or a caller waiting for a call's result ([`Shared::wait_for`]): a caller who finds nobody
//! reading reads itself, handles every report that comes (anyone's result, a death, a
//! readiness) and dispatches as the supervisor would, until its own result is in. A call made
//! and awaited one at a time is then one order written by the caller and one report read by
//! it, with no hand-off to another thread of this process, as with a pipe (Python's
//! `ProcessPoolExecutor` hands each call through two threads).
//!
//! The supervisor reads whenever something other than a waiting caller needs the reports
//! ([`State::needs_reader`]: chunks held or queued, a worker starting or stopping, the pool
//! closing); otherwise it sleeps on its [`Doorbell`], rung by whatever gives it work while no
//! thread reads: a caller leaving the role with work in flight, a submission that leaves
//! chunks queued or has callbacks, a worker's end (by its watcher), `close`, `terminate`.
//! Callbacks always run on the supervisor's thread.

use std::collections::{HashMap, VecDeque};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use super::task::{self, ChunkError, Token};
use super::worker::{Order, Report, Run, WorkerId, WorkerSetup};
use super::{CodecError, PoolError};
use crate::{GetError, Process, Queue, sys};

/// How many chunks a worker may hold at once: the one it runs and those queued behind it, so
/// that it finds its next chunk without waiting for the supervisor. They are sent in batches,
/// one order for all the chunks a worker is given at once ([`batch_size`]).
pub(crate) const PREFETCH: usize = 32;

/// How many workers in a row may die while they start (before their initializer returned)
/// before the pool stops, when it has an initializer and no worker has become ready yet:
/// beyond one death per worker and two more, the initializer itself most likely kills them.
const STARTUP_DEATHS_BEFORE_ANY_READY: usize = 2;

/// The same once a worker has become ready, or without an initializer: a worker killed while
/// it starts is replaced, unless the deaths go on so long (without any worker becoming ready
/// between them) that workers cannot start at all any more.
const STARTUP_DEATHS_IN_A_ROW: usize = 50;

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
    /// The worker ran the chunk but could not encode its results.
    Encoding(String),
    Initializer(String),
    Broken(String),
    Arguments(String),
    /// The chunk ran longer than its timeout: its worker was killed.
    TimedOut {
        pid: u32,
        timeout: Duration,
    },
    /// Cancelled before any worker took it (an executor's `Future::cancel`, `shutdown`).
    Cancelled,
}

impl Failure {
    pub(crate) fn to_error(&self) -> PoolError {
        match self.clone() {
            Failure::WorkerDied { pid, exitcode } => PoolError::WorkerDied { pid, exitcode },
            Failure::Terminated => PoolError::Terminated,
            Failure::NotRunning => PoolError::NotRunning,
            Failure::Refused(message) | Failure::Broken(message) => PoolError::Broken(message),
            Failure::Encoding(message) => PoolError::Encoding(CodecError::new(message)),
            Failure::Initializer(message) => PoolError::Initializer(message),
            Failure::Arguments(message) => PoolError::Arguments(CodecError::new(message)),
            Failure::TimedOut { pid, timeout } => PoolError::TaskTimeout { pid, timeout },
            Failure::Cancelled => PoolError::Cancelled,
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

/// What runs once a job is complete: it reads the job under the state's lock (decodes its
/// results) and returns the part that runs after the lock is released (the user's callback).
pub(crate) type OnComplete = Box<dyn FnOnce(&Job) -> Deferred + Send>;

/// A callback to run without the state's lock.
pub(crate) type Deferred = Box<dyn FnOnce() + Send>;

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
    /// How long each chunk may run before its worker is killed (`None`: for ever).
    timeout: Option<Duration>,
    /// What runs once the job is complete, on the supervisor's thread (callbacks).
    on_complete: Vec<OnComplete>,
    /// Its caller went away while callbacks were still to run: it is removed once they ran.
    forgotten: bool,
    /// It has callbacks that its readers wait for ([`is_ready`](Self::is_ready)).
    callbacks_pending: bool,
}

impl Job {
    /// Every chunk has its outcome.
    pub(crate) fn is_complete(&self) -> bool {
        self.unsettled == 0
    }

    /// Complete, and the pool's callbacks (`callback`, `error_callback`) have run: what an
    /// `AsyncResult` waits for, as CPython's runs them before `get()` returns.
    pub(crate) fn is_ready(&self) -> bool {
        self.is_complete() && !self.callbacks_pending
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

/// A chunk waiting in the pool's queue or held by a worker.
#[derive(Clone)]
struct Chunk {
    run: Run,
    /// Moved from the worker it was first sent to: it is never moved again.
    moved: bool,
    /// Its job's timeout.
    timeout: Option<Duration>,
}

/// A chunk sent to a worker, with the order that carried it.
struct Held {
    chunk: Chunk,
    /// The order's number ([`State::next_order`]): a worker takes an order whole.
    order: u64,
    /// When its worker is killed if it has not reported it: set, for a chunk with a timeout,
    /// once it is the oldest the worker holds, so that the worker runs it now
    /// ([`Worker::start_front_clock`]).
    deadline: Option<Instant>,
}

struct Worker {
    id: WorkerId,
    pid: u32,
    process: Process,
    orders: Queue<Order>,
    /// The chunks sent and not reported, in the order the worker runs them.
    held: VecDeque<Held>,
    /// The order of the chunk it reported last: one it has taken.
    taken: Option<u64>,
    /// An attempt to take an order back found none in its queue: none is there until it is
    /// sent another (or it holds the queue's lock, stopped).
    queue_empty: bool,
    /// Chunks it will run before it exits by itself (`maxtasksperchild`), if limited.
    budget: Option<u64>,
    /// Told to stop (or killed): gets no more work.
    stopping: bool,
    /// Its initializer returned ([`Report::Ready`]): it reads its orders.
    ready: bool,
    /// Killed for running a chunk past its timeout.
    timed_out: bool,
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
    /// The chunks no worker holds, in the order they are handed out.
    pending: VecDeque<Chunk>,
    workers: Vec<Worker>,
    next_worker: WorkerId,
    next_order: u64,
    factory: Factory,
    processes: usize,
    maxtasks: Option<u64>,
    /// The pool has an initializer: a worker that dies while it starts may be its victim.
    has_initializer: bool,
    /// Workers that died while they started since a worker last became ready.
    startup_deaths: usize,
    /// A worker has become ready: the initializer can succeed.
    ever_ready: bool,
    /// Every move of a chunk between workers: (job, chunk, chunks held ahead of it where it
    /// was, chunks the worker it went to held).
    #[cfg(test)]
    pub(crate) moves: Vec<(u64, u64, usize, usize)>,
    pub(crate) token: Token,
    /// Something a waiting caller may be waiting for happened since the last wake-up.
    news: bool,
    /// The pool's timeout for each chunk (`PoolBuilder::task_timeout`).
    task_timeout: Option<Duration>,
    /// Jobs completed whose callbacks have not run yet.
    callbacks_due: Vec<u64>,
    /// A thread holds the reading role: it reads the report queue, and no other thread does
    /// (see the module's docs).
    reader: bool,
    /// How many threads wait on [`Shared::changed`]: with none, nobody is notified.
    waiters: usize,
    /// Wakes the supervisor thread when it sleeps.
    doorbell: Arc<Doorbell>,
    /// The entry offset last sealed, and its seal ([`seal_of`](Self::seal_of)).
    last_seal: Option<(u64, task::Seal)>,
}

/// The state, the condition variable that callers wait on, and the report queue.
pub(crate) struct Shared {
    state: Mutex<State>,
    pub(crate) changed: Condvar,
    reports: Queue<Report>,
    /// The process whose supervisor thread keeps the state: in a forked copy of it, nothing
    /// moves the state on, and the lock may have been held by a thread that is not there.
    owner: u32,
    /// The state's doorbell, rung without its lock.
    doorbell: Arc<Doorbell>,
}

impl Shared {
    /// Starts `processes` workers.
    pub(crate) fn start(
        processes: usize,
        maxtasks: Option<u64>,
        has_initializer: bool,
        task_timeout: Option<Duration>,
        factory: Factory,
    ) -> Result<Arc<Shared>, PoolError> {
        let reports = Queue::new()?;
        let mut state = State::new(
            processes,
            maxtasks,
            has_initializer,
            factory,
            sys::random_bytes()?,
        );
        state.task_timeout = task_timeout;
        for _ in 0..processes {
            if let Err(error) = state.start_worker(&reports) {
                state.kill_all();
                return Err(error);
            }
        }
        let doorbell = Arc::clone(&state.doorbell);
        Ok(Arc::new(Shared {
            state: Mutex::new(state),
            changed: Condvar::new(),
            reports,
            owner: std::process::id(),
            doorbell,
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
    pub(crate) fn wait<'a>(&self, mut guard: MutexGuard<'a, State>) -> MutexGuard<'a, State> {
        guard.waiters += 1;
        let mut guard = self
            .changed
            .wait(guard)
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        guard.waiters -= 1;
        guard
    }

    /// Like [`wait`](Self::wait), for at most `timeout`.
    pub(crate) fn wait_timeout<'a>(
        &self,
        mut guard: MutexGuard<'a, State>,
        timeout: std::time::Duration,
    ) -> MutexGuard<'a, State> {
        guard.waiters += 1;
        let mut guard = self
            .changed
            .wait_timeout(guard, timeout)
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .0;
        guard.waiters -= 1;
        guard
    }

    /// Wakes the threads waiting on [`changed`](Self::changed), if there are any (a notify
    /// is a system call even with no waiter).
    fn notify_waiters(&self, state: &State) {
        if state.waiters > 0 {
            self.changed.notify_all();
        }
    }

    /// Tells the thread reading the reports to look at the state again (a `Wake` report), and
    /// rings the supervisor in case none reads; returns within about 100 ms.
    pub(crate) fn wake(&self) {
        // A worker stopped (SIGSTOP) in the middle of a report holds the report queue's lock
        // for as long as it is stopped, and a `put` would wait as long: `put_nowait` waits
        // 100 ms for the lock at most. A wake-up lost so is not missed: while that lock is
        // held nothing can be reported, and the report that comes once it is released (the
        // worker's own, or its watcher's once the worker is killed) has the supervisor look
        // at the state again. Otherwise the queue is unbounded: a put fails only when its
        // memory is corrupt, and then the supervisor's own `get` fails too and breaks the
        // pool.
        let _ = self.reports.put_nowait(Report::Wake);
        self.doorbell.ring();
    }

    /// Tells the supervisor that there is work in flight that nobody may be waiting for (chunks
    /// queued, callbacks): if no thread reads the reports, it does. Unlike
    /// [`wake`](Self::wake), it does not interrupt a thread that reads now.
    pub(crate) fn poke(&self) {
        self.doorbell.ring();
    }

    /// The state, after handling the reports already there if no thread reads them now: what a
    /// question that does not wait (`ready()`, `done()`) sees.
    pub(crate) fn poll(&self) -> MutexGuard<'_, State> {
        let mut role = Role::none(self);
        let mut state = self.lock();
        if !state.reader && !self.reports.empty() {
            role.take(&mut state);
            state = self.read_batch(state, Some(Instant::now()));
            role.release(&mut state);
        }
        state
    }

    /// Waits, from `state` on, until `awaiting` says nothing more is awaited or `deadline`
    /// passes; returns the state then. While reports are awaited and no other thread reads
    /// them, this thread reads and handles them itself if `may_read` (a caller waiting for a
    /// result; see the module's docs), or rings the supervisor to.
    pub(crate) fn wait_for<'a>(
        &'a self,
        state: MutexGuard<'a, State>,
        deadline: Option<Instant>,
        may_read: bool,
        mut awaiting: impl FnMut(&State) -> Awaiting,
    ) -> MutexGuard<'a, State> {
        // Declared before the state's guard, so that on a panic the guard is dropped first
        // and the role's release can take the lock.
        let mut role = Role::none(self);
        let mut state = state;
        loop {
            let awaited = awaiting(&state);
            if awaited == Awaiting::Nothing
                || deadline.is_some_and(|deadline| Instant::now() >= deadline)
            {
                break;
            }
            // A finished pool has no reader any more: nothing is coming.
            if awaited == Awaiting::Reports && state.status == Status::Finished {
                break;
            }
            if awaited == Awaiting::Reports && (role.held || !state.reader) {
                if may_read {
                    role.take(&mut state);
                    state = self.read_batch(state, deadline);
                    continue;
                }
                self.doorbell.ring();
            }
            if role.held {
                role.release(&mut state);
            }
            state = match deadline {
                None => self.wait(state),
                Some(deadline) => {
                    let left = deadline.saturating_duration_since(Instant::now());
                    self.wait_timeout(state, left)
                }
            };
        }
        if role.held {
            role.release(&mut state);
        }
        state
    }

    /// With the reading role held: waits for the next report (until `deadline`, or a chunk's
    /// deadline if earlier), then handles it and every report already behind it, kills the
    /// workers past their chunk's deadline, dispatches, and wakes the waiters if a job moved.
    fn read_batch<'a>(
        &'a self,
        state: MutexGuard<'a, State>,
        deadline: Option<Instant>,
    ) -> MutexGuard<'a, State> {
        debug_assert!(state.reader, "reading without the role");
        let until = match (deadline, state.next_deadline()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        drop(state);
        let first = match until {
            None => Some(self.reports.get()),
            Some(until) => {
                let left = until.saturating_duration_since(Instant::now());
                match self.reports.get_timeout(left) {
                    Err(GetError::Empty) => None,
                    other => Some(other),
                }
            }
        };
        let mut state = self.lock();
        state.handle_reports(first, &self.reports);
        if !state.callbacks_due.is_empty() {
            // Callbacks run on the supervisor's thread.
            self.doorbell.ring();
        }
        if std::mem::take(&mut state.news) {
            self.notify_waiters(&state);
        }
        state
    }

    /// The supervisor thread's body: handles reports until the pool is finished.
    pub(crate) fn supervise(self: &Arc<Self>) {
        let outcome = catch_unwind(AssertUnwindSafe(|| self.supervise_until_finished()));
        if outcome.is_err() {
            let mut state = self.lock();
            state.break_pool(Failure::Broken("the pool's supervisor panicked".into()));
            state.kill_all();
            state.status = Status::Finished;
            let (called, callbacks) = state.take_due_callbacks();
            drop(state);
            run_callbacks(callbacks);
            self.lock().finish_callbacks(&called);
            self.changed.notify_all();
        }
    }

    fn supervise_until_finished(&self) {
        // Before the state's guard: see `wait_for`.
        let mut role = Role::none(self);
        let mut state = self.lock();
        loop {
            if !state.callbacks_due.is_empty() {
                // Not read meanwhile by this thread: a callback that waits for another result
                // can read it itself.
                if role.held {
                    role.release(&mut state);
                }
                let (called, callbacks) = state.take_due_callbacks();
                drop(state);
                // After the lock is released: a callback may use the pool.
                run_callbacks(callbacks);
                state = self.lock();
                state.finish_callbacks(&called);
                self.changed.notify_all();
                continue;
            }
            if state.workers.is_empty() && state.status != Status::Running {
                if role.held {
                    role.release(&mut state);
                }
                state.status = Status::Finished;
                self.changed.notify_all();
                return;
            }
            if (role.held || !state.reader) && state.needs_reader(&self.reports) {
                role.take(&mut state);
                state = self.read_batch(state, None);
                continue;
            }
            if role.held {
                role.release(&mut state);
            }
            // Nothing to do, or a caller reads: sleep until rung.
            drop(state);
            self.doorbell.wait();
            state = self.lock();
        }
    }
}

/// What a thread in [`Shared::wait_for`] still waits for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Awaiting {
    /// Nothing: it may go on.
    Nothing,
    /// Reports from the workers (a chunk's outcome).
    Reports,
    /// The supervisor: a complete job's callbacks to run.
    Supervisor,
}

/// The reading role as one thread holds it; released on drop (a panic while handling a
/// report must not leave the role held, and every later waiter stuck).
struct Role<'a> {
    shared: &'a Shared,
    held: bool,
}

impl<'a> Role<'a> {
    fn none(shared: &'a Shared) -> Self {
        Role {
            shared,
            held: false,
        }
    }

    /// Takes the role, if it is free or already this thread's.
    fn take(&mut self, state: &mut State) {
        debug_assert!(self.held || !state.reader, "the role is another thread's");
        state.reader = true;
        self.held = true;
    }

    /// Gives the role up: a thread waiting may take it, and the supervisor is rung if
    /// something still needs a reader (or its callbacks are due).
    fn release(&mut self, state: &mut State) {
        state.reader = false;
        self.held = false;
        self.shared.notify_waiters(state);
        if !state.callbacks_due.is_empty() || state.needs_reader(&self.shared.reports) {
            self.shared.doorbell.ring();
        }
    }
}

impl Drop for Role<'_> {
    fn drop(&mut self) {
        if self.held {
            let mut state = self.shared.lock();
            self.release(&mut state);
        }
    }
}

/// Where the supervisor thread sleeps when it has nothing to do. A ring is kept until the
/// supervisor next looks, so that none is lost between its last look and its sleep; ringing
/// makes a system call only when it sleeps.
#[derive(Default)]
pub(crate) struct Doorbell {
    bell: Mutex<Bell>,
    rung_cv: Condvar,
}

#[derive(Default)]
struct Bell {
    rung: bool,
    sleeping: bool,
}

impl Doorbell {
    fn lock(&self) -> MutexGuard<'_, Bell> {
        // Two flags, each written whole: a panic elsewhere leaves them consistent.
        self.bell
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub(crate) fn ring(&self) {
        let mut bell = self.lock();
        bell.rung = true;
        if bell.sleeping {
            self.rung_cv.notify_one();
        }
    }

    /// Sleeps until rung (at once if rung since the last call).
    fn wait(&self) {
        let mut bell = self.lock();
        while !bell.rung {
            bell.sleeping = true;
            bell = self
                .rung_cv
                .wait(bell)
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            bell.sleeping = false;
        }
        bell.rung = false;
    }
}

impl State {
    /// A running pool's state before any worker starts: `processes` workers to keep, each
    /// running at most `maxtasks` chunks, and `token` to seal their orders with.
    fn new(
        processes: usize,
        maxtasks: Option<u64>,
        has_initializer: bool,
        factory: Factory,
        token: Token,
    ) -> State {
        State {
            status: Status::Running,
            terminated: false,
            broken: None,
            jobs: HashMap::new(),
            next_job: 0,
            pending: VecDeque::new(),
            workers: Vec::with_capacity(processes),
            next_worker: 0,
            next_order: 0,
            factory,
            processes,
            maxtasks,
            has_initializer,
            startup_deaths: 0,
            ever_ready: false,
            #[cfg(test)]
            moves: Vec::new(),
            token,
            news: false,
            task_timeout: None,
            callbacks_due: Vec::new(),
            reader: false,
            waiters: 0,
            doorbell: Arc::default(),
            last_seal: None,
        }
    }

    /// Handles `first` (a report received, or `None` if the wait for one timed out) and
    /// every report already behind it, then kills the workers past their chunk's deadline and
    /// dispatches. Called with the reading role held.
    fn handle_reports(&mut self, first: Option<Result<Report, GetError>>, reports: &Queue<Report>) {
        let mut report = first;
        while let Some(next) = report.take() {
            match next {
                Ok(next) => self.handle(next, reports),
                Err(error) => {
                    let why = format!("its report queue failed: {error:?}");
                    self.break_pool(Failure::Broken(why));
                    self.kill_all();
                    self.workers.clear();
                    break;
                }
            }
            report = match reports.get_nowait() {
                Err(GetError::Empty) => None,
                other => Some(other),
            };
        }
        self.kill_overdue_workers(Instant::now());
        self.dispatch();
    }

    /// Whether a thread must read the reports even if no caller waits for one: chunks are
    /// held or queued (their results must be handled, and queued ones dispatched as workers
    /// become free), a worker is starting or stopping (its readiness or end is coming), the
    /// pool is closing, or reports wait.
    pub(crate) fn needs_reader(&self, reports: &Queue<Report>) -> bool {
        self.status != Status::Running
            || !self.pending.is_empty()
            || self.workers.iter().any(|worker| {
                !worker.ready
                    || worker.stopping
                    || worker.budget == Some(0)
                    || !worker.held.is_empty()
            })
            || !reports.empty()
    }

    /// Whether chunks wait in the pool's queue for a worker.
    pub(crate) fn has_pending(&self) -> bool {
        !self.pending.is_empty()
    }

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
            timeout: self.task_timeout,
            ..Job::default()
        };
        self.jobs.insert(job, record);
        self.add_chunks(job, entry, chunks);
        job
    }

    /// The seal of `entry`'s orders: an HMAC, computed once for a run of calls of one task
    /// (calls made one at a time would otherwise pay it each).
    fn seal_of(&mut self, entry: u64) -> task::Seal {
        match self.last_seal {
            Some((sealed, seal)) if sealed == entry => seal,
            _ => {
                let seal = task::seal(&self.token, entry);
                self.last_seal = Some((entry, seal));
                seal
            }
        }
    }

    /// Queues more chunks of `job`.
    pub(crate) fn add_chunks(&mut self, job: u64, entry: u64, chunks: Vec<(usize, Vec<u8>)>) {
        if !self.jobs.contains_key(&job) {
            return;
        }
        let seal = self.seal_of(entry);
        let Some(record) = self.jobs.get_mut(&job) else {
            return;
        };
        for (len, args) in chunks {
            let chunk = record.add_chunk(len);
            let run = Run {
                job,
                chunk,
                entry,
                seal,
                args,
            };
            self.pending.push_back(Chunk {
                run,
                moved: false,
                timeout: record.timeout,
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
            self.settle(job, chunk, Outcome::Failed(failure));
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
        self.note_if_due(job);
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
                if let Some(worker) = self.workers.iter_mut().find(|w| w.id == worker)
                    && let Some(held) = worker.forget_held((job, chunk))
                {
                    worker.taken = Some(held.order);
                    worker.start_front_clock();
                }
                let outcome = match outcome {
                    Ok(bytes) => Outcome::Ran(bytes.into_vec()),
                    Err(ChunkError::Refused(message)) => Outcome::Failed(Failure::Refused(message)),
                    Err(ChunkError::Encoding(message)) => {
                        Outcome::Failed(Failure::Encoding(message))
                    }
                };
                self.settle(job, chunk, outcome);
            }
            Report::Ready { worker } => {
                if let Some(worker) = self.workers.iter_mut().find(|w| w.id == worker) {
                    worker.ready = true;
                    self.startup_deaths = 0;
                    self.ever_ready = true;
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
        let untaken = worker.take_back_queued_orders();
        // It runs what it took in order and reports each chunk before the next: the oldest
        // chunk it holds is the one it was running, and the others it took with it were never
        // started. Those go to other workers with the untaken ones, in order. A worker that
        // never became ready took nothing.
        // (A job whose caller went away has nothing to run any more.)
        let running = if worker.ready {
            worker.held.pop_front()
        } else {
            None
        };
        let to_run: Vec<Chunk> = worker
            .held
            .drain(..)
            .map(|held| held.chunk)
            .chain(untaken)
            .collect();
        for chunk in to_run.into_iter().rev() {
            if self.jobs.contains_key(&chunk.run.job) {
                self.pending.push_front(chunk);
            }
        }
        let died = Failure::WorkerDied {
            pid: worker.pid,
            exitcode,
        };
        if let Some(held) = running {
            self.settle(
                held.chunk.run.job,
                held.chunk.run.chunk,
                Outcome::Failed(died),
            );
        }
        if !worker.ready && !worker.stopping && self.is_startup_failure(worker.pid, exitcode) {
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

    /// A worker died before its initializer returned: whether that stops the pool (which it
    /// then does). A worker that exits by itself there (an `exit`, an initializer that
    /// failed, a spawned child that refused its payload) would do so in every replacement.
    /// A worker killed by a signal is replaced, as any dead worker is: an OOM kill or a
    /// `kill` at that moment must not end the pool. Only when the deaths go on, no worker
    /// becoming ready between them, does the pool stop, rather than start workers that die
    /// the same way for ever: after a few when there is an initializer and no worker ever got
    /// through it (it most likely kills them), after many otherwise.
    fn is_startup_failure(&mut self, pid: u32, exitcode: i32) -> bool {
        self.startup_deaths += 1;
        let tolerated = if self.has_initializer && !self.ever_ready {
            self.processes + STARTUP_DEATHS_BEFORE_ANY_READY
        } else {
            STARTUP_DEATHS_IN_A_ROW
        };
        let killed = exitcode < 0;
        if killed && self.startup_deaths <= tolerated {
            return false;
        }
        let death = super::error::worker_death(pid, exitcode);
        let failure = if self.has_initializer {
            Failure::Initializer(format!("{death} in it"))
        } else if killed {
            Failure::Broken(format!(
                "{} workers in a row died as they started, the last one as {death}",
                self.startup_deaths
            ))
        } else {
            // The usual cause: under spawn or forkserver a worker is a new run of the
            // program, and a `main` without `shared::init()` makes it run `main` instead.
            Failure::Broken(format!(
                "a worker could not start: {death} before it was ready (under spawn or \
                 forkserver a worker is a new run of the program: does main call \
                 shared::init() first?)"
            ))
        };
        self.break_pool(failure);
        self.kill_all();
        true
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
        if let Err(error) = watch(&process, id, reports, Arc::clone(&self.doorbell)) {
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
            taken: None,
            queue_empty: true,
            budget: self.maxtasks,
            stopping: false,
            ready: false,
            timed_out: false,
        });
        Ok(())
    }

    /// Gives pending chunks to the workers free enough for them; moves orders queued behind
    /// a busy worker's current one to workers with nothing to do; tells idle workers of a
    /// closed pool to stop. Bounded: each step visits each worker a bounded number of times.
    fn dispatch(&mut self) {
        if self.status == Status::Terminating || self.broken.is_some() {
            return;
        }
        self.hand_out_pending();
        self.move_to_free_workers();
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

    /// [`hand_out_pending`](Self::hand_out_pending) from a caller's thread, as it submits
    /// work; returns whether the thread reading the reports must look at the state at once:
    /// the pool is not running, a chunk's clock started (the reader waits for deadlines), or
    /// callbacks are due. Chunks left pending need no such wake-up (every worker that is not
    /// free will report, and the reader dispatches then), only a reader: see
    /// [`Shared::poke`].
    pub(crate) fn hand_out_from_caller(&mut self) -> bool {
        if self.status != Status::Running || self.broken.is_some() {
            return true;
        }
        let deadline = self.next_deadline();
        self.hand_out_pending();
        self.next_deadline() != deadline || !self.callbacks_due.is_empty()
    }

    /// Gives each ready worker its share of the pending chunks ([`batch_size`]), in one order
    /// each, the least busy first.
    fn hand_out_pending(&mut self) {
        let mut takers: Vec<usize> = (0..self.workers.len())
            .filter(|&index| self.workers[index].ready && self.workers[index].has_room())
            .collect();
        takers.sort_by_key(|&index| self.workers[index].held.len());
        let workers = self.workers.iter().filter(|w| !w.stopping).count();
        for index in takers {
            let worker = &self.workers[index];
            let take = batch_size(
                self.pending.len(),
                workers,
                worker.held.len(),
                worker.room(),
            );
            if take == 0 {
                continue;
            }
            let batch: Vec<Chunk> = self.pending.drain(..take).collect();
            let order = self.new_order();
            if let Err(batch) = self.workers[index].send(batch, order) {
                self.give_back(index, batch);
            }
        }
    }

    fn new_order(&mut self) -> u64 {
        self.next_order += 1;
        self.next_order
    }

    /// A worker's queue refused an order: its chunks wait again, and the worker, whose queue
    /// no longer works, is killed (its watcher then reports its end).
    fn give_back(&mut self, index: usize, batch: Vec<Chunk>) {
        for chunk in batch.into_iter().rev() {
            self.pending.push_front(chunk);
        }
        let worker = &mut self.workers[index];
        worker.stopping = true;
        let _ = worker.process.kill();
    }

    /// When nothing is pending, gives each free worker (ready, holding nothing) an order
    /// still queued behind the order another worker is running: those chunks would wait for
    /// that order to finish, and start at once on the free worker. Chunks already moved once
    /// stay where they are. Each free worker gets at most one order per pass, and each busy
    /// worker is asked at most once per free worker.
    fn move_to_free_workers(&mut self) {
        if !self.pending.is_empty() {
            return;
        }
        let free: Vec<usize> = (0..self.workers.len())
            .filter(|&index| self.workers[index].is_free())
            .collect();
        for target in free {
            let mut sources: Vec<usize> = (0..self.workers.len())
                .filter(|&index| self.workers[index].has_order_to_spare())
                .collect();
            sources.sort_by_key(|&index| std::cmp::Reverse(self.workers[index].held.len()));
            for source in sources {
                if self.move_one_order(source, target) {
                    break;
                }
            }
        }
    }

    /// Takes the oldest order still queued for worker `source` and gives its chunks that
    /// never moved to worker `target` (as many as its budget allows), the others back to
    /// `source`; returns whether any moved.
    fn move_one_order(&mut self, source: usize, target: usize) -> bool {
        let Some(taken_back) = self.workers[source].take_back_one_order() else {
            return false;
        };
        #[cfg(test)]
        let ahead = self.workers[source].held.len();
        let room = self.workers[target].room();
        let (movable, stay): (Vec<Chunk>, Vec<Chunk>) =
            taken_back.into_iter().partition(|chunk| !chunk.moved);
        let mut movable = movable;
        let mut stay = stay;
        if movable.len() > room {
            stay.extend(movable.drain(room..));
        }
        if !stay.is_empty() {
            let order = self.new_order();
            if let Err(batch) = self.workers[source].send(stay, order) {
                self.give_back(source, batch);
            }
        }
        if movable.is_empty() {
            return false;
        }
        for chunk in &mut movable {
            chunk.moved = true;
        }
        #[cfg(test)]
        {
            let held = self.workers[target].held.len();
            for chunk in &movable {
                self.moves
                    .push((chunk.run.job, chunk.run.chunk, ahead, held));
            }
        }
        let order = self.new_order();
        if let Err(batch) = self.workers[target].send(movable, order) {
            self.give_back(target, batch);
        }
        true
    }

    /// Fails every chunk that has no outcome yet.
    fn fail_everything(&mut self, failure: &Failure) {
        self.pending.clear();
        for worker in &mut self.workers {
            worker.held.clear();
        }
        let jobs: Vec<(u64, usize)> = self
            .jobs
            .iter()
            .map(|(&job, record)| (job, record.chunk_lens.len()))
            .collect();
        for (job, chunks) in jobs {
            for chunk in 0..chunks as u64 {
                self.settle(job, chunk, Outcome::Failed(failure.clone()));
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

    /// `terminate()`: every unfinished chunk fails, every worker is killed. Both happen here,
    /// at once, not when the supervisor next looks: a stopped worker may hold the report
    /// queue's lock, and nothing reaches the supervisor until it dies. (The chunks fail
    /// first, so that the deaths of the killed workers do not fail them as `WorkerDied`.)
    /// The caller wakes the waiting readers.
    pub(crate) fn terminate(&mut self) {
        if matches!(self.status, Status::Running | Status::Closed) {
            self.status = Status::Terminating;
            self.terminated = true;
            self.fail_everything(&Failure::Terminated);
            self.kill_all();
        }
    }

    /// Forgets a job whose results nobody will read; returns whether it was an `imap` still
    /// feeding (the supervisor may then stop the idle workers of a closed pool).
    pub(crate) fn forget(&mut self, job: u64) -> bool {
        if let Some(record) = self.jobs.get_mut(&job)
            && (!record.on_complete.is_empty() || record.callbacks_pending)
        {
            // Its callbacks still run, as CPython's run whether or not the result is kept.
            record.forgotten = true;
            return record.feeding;
        }
        let record = self.jobs.remove(&job);
        self.pending.retain(|chunk| chunk.run.job != job);
        record.is_some_and(|record| record.feeding)
    }

    /// Forgets `job` and its callbacks at once: its submission failed.
    pub(crate) fn discard(&mut self, job: u64) {
        self.jobs.remove(&job);
        self.pending.retain(|chunk| chunk.run.job != job);
    }

    /// Records the outcome of a chunk (unless it has one); notes the job's callbacks as due
    /// if that completed it.
    fn settle(&mut self, job: u64, chunk: u64, outcome: Outcome) {
        let Some(record) = self.jobs.get_mut(&job) else {
            return;
        };
        self.news |= record.settle(chunk, outcome);
        self.note_if_due(job);
    }

    /// Notes `job`'s callbacks as due if it is complete: every chunk has its outcome, and no
    /// more will be added (its chunks are all submitted).
    fn note_if_due(&mut self, job: u64) {
        let Some(record) = self.jobs.get(&job) else {
            return;
        };
        if record.is_complete()
            && !record.feeding
            && !record.on_complete.is_empty()
            && !self.callbacks_due.contains(&job)
        {
            self.callbacks_due.push(job);
        }
    }

    /// Sets the timeout of each chunk of `job` (before any is added): a call's own, instead
    /// of the pool's.
    pub(crate) fn set_timeout(&mut self, job: u64, timeout: Option<Duration>) {
        if let Some(record) = self.jobs.get_mut(&job) {
            record.timeout = timeout;
        }
    }

    /// Adds `callback` to run on the supervisor's thread once `job` is complete; `wait_for_it`:
    /// the job's readers wait for it too (the pool's `callback`); otherwise it runs after they
    /// are woken (an executor's `add_done_callback`). Hands it back if the job is already
    /// complete (or gone), for the caller to run; a job still being submitted (`feeding`) is
    /// not complete.
    pub(crate) fn on_complete(
        &mut self,
        job: u64,
        callback: OnComplete,
        wait_for_it: bool,
    ) -> Result<(), OnComplete> {
        match self.jobs.get_mut(&job) {
            Some(record) if !record.is_complete() || record.feeding => {
                record.on_complete.push(callback);
                record.callbacks_pending |= wait_for_it;
                Ok(())
            }
            _ => Err(callback),
        }
    }

    /// Takes the callbacks of the jobs completed since the last call, each having read its
    /// job: the jobs, and what is left to run without the lock.
    fn take_due_callbacks(&mut self) -> (Vec<u64>, Vec<Deferred>) {
        let mut deferred = Vec::new();
        let due = std::mem::take(&mut self.callbacks_due);
        for &job in &due {
            if let Some(record) = self.jobs.get_mut(&job) {
                for callback in std::mem::take(&mut record.on_complete) {
                    deferred.push(callback(record));
                }
            }
        }
        (due, deferred)
    }

    /// The callbacks of `jobs` have run: their readers may go on, and a job whose caller went
    /// away is forgotten now.
    fn finish_callbacks(&mut self, jobs: &[u64]) {
        for &job in jobs {
            let Some(record) = self.jobs.get_mut(&job) else {
                continue;
            };
            record.callbacks_pending = false;
            if record.forgotten {
                self.jobs.remove(&job);
            }
        }
    }

    /// Kills each worker whose oldest chunk has run past its deadline, failing that chunk
    /// with [`Failure::TimedOut`]; the worker's end is then handled as any death (its other
    /// chunks go to other workers, a new worker replaces it). Bounded by the workers.
    fn kill_overdue_workers(&mut self, now: Instant) {
        let mut overdue = Vec::new();
        for worker in &mut self.workers {
            let Some(front) = worker.held.front() else {
                continue;
            };
            if worker.timed_out || front.deadline.is_none_or(|deadline| deadline > now) {
                continue;
            }
            worker.timed_out = true;
            worker.stopping = true;
            let _ = worker.process.kill();
            let timeout = front.chunk.timeout.unwrap_or_default();
            let failure = Failure::TimedOut {
                pid: worker.pid,
                timeout,
            };
            overdue.push((front.chunk.run.job, front.chunk.run.chunk, failure));
        }
        // Settled now, so that the caller hears at once; the worker's death, reported later,
        // finds the chunk settled and leaves it so.
        for (job, chunk, failure) in overdue {
            self.settle(job, chunk, Outcome::Failed(failure));
        }
    }

    /// The earliest deadline of a chunk a worker runs, if any has one.
    fn next_deadline(&self) -> Option<Instant> {
        self.workers
            .iter()
            .filter(|worker| !worker.timed_out)
            .filter_map(|worker| worker.held.front()?.deadline)
            .min()
    }

    /// Cancels `job` if no worker has been given any of its chunks: they leave the pool's
    /// queue and fail with [`Failure::Cancelled`]. Returns whether the job is cancelled now
    /// (also if it already was). Python: `Future.cancel()`.
    pub(crate) fn cancel(&mut self, job: u64) -> bool {
        let Some(record) = self.jobs.get(&job) else {
            return false;
        };
        if record.is_complete() {
            return (0..record.chunk_lens.len() as u64).any(|chunk| {
                matches!(
                    record.outcome(chunk),
                    Some(Outcome::Failed(Failure::Cancelled))
                )
            });
        }
        if record.feeding || self.is_held(job) {
            return false;
        }
        let chunks = record.chunk_lens.len() as u64;
        self.pending.retain(|chunk| chunk.run.job != job);
        for chunk in 0..chunks {
            self.settle(job, chunk, Outcome::Failed(Failure::Cancelled));
        }
        true
    }

    /// Cancels every job that no worker has begun (`shutdown(cancel_futures=True)`).
    pub(crate) fn cancel_all_pending(&mut self) {
        let jobs: Vec<u64> = self.pending.iter().map(|chunk| chunk.run.job).collect();
        for job in jobs {
            self.cancel(job);
        }
    }

    /// Whether a worker holds a chunk of `job` (it runs it, or will next).
    pub(crate) fn is_held(&self, job: u64) -> bool {
        self.workers
            .iter()
            .any(|worker| worker.held.iter().any(|held| held.chunk.run.job == job))
    }
}

/// Runs callbacks taken from the state, without its lock; a panicking callback (its message
/// printed by the panic hook) does not stop the others or the supervisor.
fn run_callbacks(callbacks: Vec<Deferred>) {
    for callback in callbacks {
        let _ = catch_unwind(AssertUnwindSafe(callback));
    }
}

/// How many pending chunks to send now to a worker that holds `held` chunks and may take
/// `room` more, with `pending` chunks waiting for `workers` workers: guided self-scheduling.
/// A worker's share is half what would be its part of the pending chunks, so that the later
/// chunks stay in the pool for whichever worker is free first; it is sent once the worker
/// has run at least half of what it holds beyond that share (at once to a worker holding
/// nothing), so that a worker fed large orders never waits for the next, and at the end one
/// chunk goes to each worker as it becomes free. 0: nothing now.
pub(crate) fn batch_size(pending: usize, workers: usize, held: usize, room: usize) -> usize {
    let share = pending.div_ceil(2 * workers.max(1)).min(room);
    if share == 0 || held > share / 2 {
        0
    } else {
        share
    }
}

impl Worker {
    /// Forgets a chunk it no longer holds (usually the oldest, as it runs them in order);
    /// returns it.
    fn forget_held(&mut self, (job, chunk): (u64, u64)) -> Option<Held> {
        let index = self
            .held
            .iter()
            .position(|held| held.chunk.run.job == job && held.chunk.run.chunk == chunk)?;
        self.held.remove(index)
    }

    /// Starts the clock of the chunk it now runs (its oldest), if that chunk has a timeout
    /// and no clock yet. The worker runs its chunks in order and reports each before the next,
    /// so its oldest chunk is the one it runs from the moment it became the oldest (a report
    /// or an order's arrival later, at most).
    fn start_front_clock(&mut self) {
        if let Some(front) = self.held.front_mut()
            && front.deadline.is_none()
            && let Some(timeout) = front.chunk.timeout
        {
            front.deadline = Instant::now().checked_add(timeout);
        }
    }

    /// How many more chunks it may be given now.
    fn room(&self) -> usize {
        if self.stopping {
            return 0;
        }
        let budget = self
            .budget
            .map_or(usize::MAX, |b| usize::try_from(b).unwrap_or(usize::MAX));
        PREFETCH.saturating_sub(self.held.len()).min(budget)
    }

    fn has_room(&self) -> bool {
        self.room() > 0
    }

    /// Ready and holding nothing: it waits for an order, and would start one at once.
    fn is_free(&self) -> bool {
        self.ready && self.held.is_empty() && self.has_room()
    }

    /// Whether an order may be queued for it behind the one it runs: it has reported a chunk
    /// of its oldest order (so it took that one), and holds chunks of a later one.
    fn has_order_to_spare(&self) -> bool {
        let Some(front) = self.held.front() else {
            return false;
        };
        !self.queue_empty
            && !self.stopping
            && self.taken == Some(front.order)
            && self
                .held
                .back()
                .is_some_and(|last| last.order != front.order)
    }

    /// Takes the oldest order left in its queue back (it was never started), or `None` if
    /// there is none; its chunks are no longer held.
    fn take_back_one_order(&mut self) -> Option<Vec<Chunk>> {
        let Ok(Order::Runs(runs)) = self.orders.get_nowait() else {
            self.queue_empty = true;
            return None;
        };
        let chunks: Vec<Chunk> = runs
            .iter()
            .filter_map(|run| self.forget_held((run.job, run.chunk)))
            .map(|held| held.chunk)
            .collect();
        if let Some(budget) = &mut self.budget {
            *budget += chunks.len() as u64;
        }
        Some(chunks)
    }

    /// Takes back every order left in its queue (a dead worker's).
    fn take_back_queued_orders(&mut self) -> Vec<Chunk> {
        let mut chunks = Vec::new();
        while let Some(order) = self.take_back_one_order() {
            chunks.extend(order);
        }
        chunks
    }

    /// Puts `batch` on the worker's queue as one order; gives it back if the queue refuses it.
    /// The worker's copy is what it runs; the pool's, kept in `held`, is what goes to another
    /// worker if this one dies before starting it. The caller sends no more than
    /// [`room`](Self::room).
    fn send(&mut self, batch: Vec<Chunk>, order: u64) -> Result<(), Vec<Chunk>> {
        debug_assert!(
            batch.len() <= self.room(),
            "a batch beyond the worker's room"
        );
        let runs: Vec<Run> = batch.iter().map(|chunk| chunk.run.clone()).collect();
        if self.orders.put(Order::Runs(runs)).is_err() {
            return Err(batch);
        }
        if let Some(budget) = &mut self.budget {
            *budget = budget.saturating_sub(batch.len() as u64);
        }
        self.queue_empty = false;
        self.held.extend(batch.into_iter().map(|chunk| Held {
            chunk,
            order,
            deadline: None,
        }));
        self.start_front_clock();
        Ok(())
    }
}

/// Starts a thread that reports the end of `process` on `reports`, and rings `doorbell` so
/// that the supervisor reads it if no other thread does.
fn watch(
    process: &Process,
    id: WorkerId,
    reports: &Queue<Report>,
    doorbell: Arc<Doorbell>,
) -> std::io::Result<()> {
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
            doorbell.ring();
        })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    //! The supervisor's state driven by hand, the test playing the workers: it reads their
    //! order queues and reports as they would, so that each step of the dispatch is fixed.

    use super::*;

    fn never_started() {}

    /// A state with `workers` ready workers (never started processes), each with its order
    /// queue, and one job of `chunks` chunks of one item.
    fn state_with(workers: u64, maxtasks: Option<u64>, chunks: usize) -> (State, u64) {
        let factory: Factory = Box::new(|_| unreachable!("the test starts no worker"));
        let mut state = State::new(workers as usize, maxtasks, false, factory, [0; 16]);
        for id in 0..workers {
            state.workers.push(Worker {
                id,
                pid: 0,
                process: Process::new(never_started, ()),
                orders: Queue::new().expect("queue"),
                held: VecDeque::new(),
                taken: None,
                queue_empty: true,
                budget: maxtasks,
                stopping: false,
                ready: false,
                timed_out: false,
            });
        }
        let job = state.submit(0, vec![(1, Vec::new()); chunks], false);
        (state, job)
    }

    fn reports() -> Queue<Report> {
        Queue::new().expect("queue")
    }

    /// Worker `id` takes its next order, as its loop would; the chunks it holds.
    fn take_order(state: &State, id: u64) -> Vec<u64> {
        match state.workers[id as usize].orders.get_nowait() {
            Ok(Order::Runs(runs)) => runs.iter().map(|run| run.chunk).collect(),
            other => panic!("worker {id} has no order: {other:?}"),
        }
    }

    /// Worker `id` reports chunk `chunk` of `job` done; the supervisor then dispatches.
    fn report_done(state: &mut State, id: u64, job: u64, chunk: u64) {
        let done = Report::Done {
            worker: id,
            job,
            chunk,
            outcome: Ok(serde_bytes::ByteBuf::new()),
        };
        state.handle(done, &reports());
        state.dispatch();
    }

    fn ready(state: &mut State, id: u64) {
        state.handle(Report::Ready { worker: id }, &reports());
        state.dispatch();
    }

    #[test]
    fn an_order_queued_behind_a_begun_one_moves_once_to_a_free_worker() {
        let (mut state, job) = state_with(2, None, 12);
        ready(&mut state, 0);
        ready(&mut state, 1);
        // Shares of a quarter of what waits: three each, the rest stays in the pool.
        assert_eq!(take_order(&state, 0), [0, 1, 2]);
        assert_eq!(take_order(&state, 1), [3, 4, 5]);
        assert_eq!(state.pending.len(), 6);
        // Worker 0 runs two chunks (the third is long): it gets its next share, queued.
        report_done(&mut state, 0, job, 0);
        report_done(&mut state, 0, job, 1);
        assert_eq!(state.workers[0].held.len(), 3);
        // Worker 1 runs its chunks and, free each time, takes the rest one by one.
        for chunk in [3, 4, 5] {
            report_done(&mut state, 1, job, chunk);
        }
        for chunk in 8..12 {
            assert_eq!(take_order(&state, 1), [chunk]);
            report_done(&mut state, 1, job, chunk);
        }
        // With nothing left in the pool and worker 1 free, the order queued behind worker 0's
        // long chunk moved to it, once; worker 0 keeps the chunk it runs.
        assert_eq!(state.moves, [(job, 6, 1, 0), (job, 7, 1, 0)]);
        assert_eq!(take_order(&state, 1), [6, 7]);
        assert!(state.workers[0].orders.get_nowait().is_err());
        // Worker 0 finishes and is free while worker 1 runs the moved chunks: nothing moves
        // back.
        report_done(&mut state, 0, job, 2);
        assert_eq!(state.moves.len(), 2);
        report_done(&mut state, 1, job, 6);
        report_done(&mut state, 1, job, 7);
        assert!(state.jobs[&job].is_complete());
    }

    #[test]
    fn workers_that_take_no_orders_never_pass_them_around() {
        // Three ready workers, none of which reads its queue (stopped): every pass returns,
        // and no chunk moves, since none is queued behind an order a worker began.
        let (mut state, _) = state_with(3, None, 4);
        for id in 0..3 {
            ready(&mut state, id);
        }
        for _ in 0..100 {
            state.handle(Report::Wake, &reports());
            state.dispatch();
        }
        assert!(state.moves.is_empty());
        let held: usize = state.workers.iter().map(|w| w.held.len()).sum();
        assert_eq!(held + state.pending.len(), 4);
    }

    #[test]
    fn no_worker_is_sent_more_than_its_maxtasksperchild() {
        let maxtasks = 5;
        let (mut state, job) = state_with(2, Some(maxtasks), 12);
        let mut sent = [0; 2];
        ready(&mut state, 0);
        ready(&mut state, 1);
        // Worker 1 is slow: worker 0 runs whatever it is given, and is sent no more than its
        // budget, moves included.
        let mut first = true;
        while let Ok(Order::Runs(runs)) = state.workers[0].orders.get_nowait() {
            sent[0] += runs.len() as u64;
            for run in runs {
                report_done(&mut state, 0, job, run.chunk);
            }
            if first {
                first = false;
                let runs = take_order(&state, 1);
                sent[1] += runs.len() as u64;
                report_done(&mut state, 1, job, runs[0]);
            }
        }
        assert!(sent[0] <= maxtasks, "worker 0 was sent {} chunks", sent[0]);
        assert_eq!(state.workers[0].budget, Some(maxtasks - sent[0]));
        while let Ok(Order::Runs(runs)) = state.workers[1].orders.get_nowait() {
            sent[1] += runs.len() as u64;
        }
        assert!(sent[1] <= maxtasks, "worker 1 was sent {} chunks", sent[1]);
    }
}
