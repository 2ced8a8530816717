//! The MPI job this process is a rank of: detecting `mpirun`, starting MPI, rank 0's state
//! and its conversation with the worker ranks, and the stop at exit.
//!
//! # Why one chunk per rank at a time
//! Rank 0 sends with MPI's standard send, which for a large message waits until the receiver
//! posts its receive. If rank 0 could send a second order to a rank that is itself blocked
//! sending a large report, each would wait for the other for ever. Rank 0 therefore sends an
//! order only to a rank that holds nothing, which is (or soon will be) waiting in its receive;
//! a worker's report waits at most until rank 0 next receives. No cycle, whatever the sizes.
//!
//! # Who talks to the worker ranks
//! One thread of rank 0, the progress thread (mpi4py's manager thread), started with the
//! first pool: it sends the orders, takes in the reports and runs the executor's done
//! callbacks. It never blocks inside MPI: it polls for reports, backing off from yields to
//! sleeps of up to a millisecond while ranks are busy (as mpi4py's `Backoff`), and sleeps on
//! [`WORK`] when no rank is. So the lock on rank 0's state is only held for moments, and a
//! caller waiting for a result (on [`SETTLED`], with or without a deadline) never waits for a
//! rank to answer before it can give up. Every MPI call is made under that lock, as
//! `MPI_THREAD_SERIALIZED` asks.

use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use ::mpi::Threading;
use ::mpi::environment::Universe;
use ::mpi::point_to_point::MatchedReceiveVec;
use ::mpi::traits::{Communicator, Destination, Source};

use super::ledger::Ledger;
use super::protocol::{self, HELLO_TAG, ORDER_TAG, Order, REPORT_TAG};
use crate::lifecycle::{self, Ending, ExitStep};
use crate::pool::task::Token;

/// The variables by which the launchers tell a program that it is one rank of a job: Open
/// MPI's `mpirun`, MPICH's Hydra and Slurm's PMI-2 (`PMI_SIZE`), and PMIx (Slurm's `srun
/// --mpi=pmix`, Open MPI 5).
const LAUNCHER_VARIABLES: [&str; 3] = ["OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_RANK"];

/// Whether this process was started by an MPI launcher.
pub(crate) fn launched_by_mpi() -> bool {
    LAUNCHER_VARIABLES
        .iter()
        .any(|name| std::env::var_os(name).is_some())
}

/// Rank 0's side of the job: MPI itself (finalized when dropped) and the work's ledger.
pub(crate) struct Root {
    /// Dropped at exit, after the stops: `MPI_Finalize`.
    universe: Universe,
    /// The secret of this job's seals, sent to each worker rank at start.
    pub(crate) token: Token,
    pub(crate) ledger: Ledger,
    /// The process that started MPI: a child forked from it later inherits the exit hook,
    /// and must neither stop the workers nor finalize.
    pid: u32,
    /// Whether the progress thread was started.
    progressing: bool,
}

/// Rank 0's state, once MPI is started on it. MPI is started with
/// `MPI_THREAD_SERIALIZED`: every MPI call is made under this lock, from whichever thread.
static ROOT: Mutex<Option<Root>> = Mutex::new(None);

/// Signalled when there is work for the progress thread: a chunk queued, a callback due.
static WORK: Condvar = Condvar::new();

/// Signalled when chunks have settled (or the job ended), for the callers waiting on them.
static SETTLED: Condvar = Condvar::new();

/// Rank 0's state (`None` outside an MPI job, on a worker rank, and after the exit).
pub(crate) fn root() -> MutexGuard<'static, Option<Root>> {
    // The ledger is never left half-changed by a panic in a way later calls could misread:
    // at worst a chunk's outcome is missing, which its caller reports as broken.
    ROOT.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Tells the progress thread that there is work (call after changing the ledger), and the
/// waiting callers that chunks may have settled.
pub(crate) fn wake() {
    WORK.notify_all();
    SETTLED.notify_all();
}

/// Waits, releasing the lock meanwhile, until `done` holds for rank 0's state, the job has
/// ended (the state is `None`), or `deadline` has passed; returns the lock either way, for
/// the caller to judge which.
pub(crate) fn wait_until(
    mut root: MutexGuard<'static, Option<Root>>,
    deadline: Option<Instant>,
    done: impl Fn(&Root) -> bool,
) -> MutexGuard<'static, Option<Root>> {
    loop {
        match root.as_ref() {
            Some(state) if !done(state) => {}
            _ => return root,
        }
        root = match deadline {
            None => SETTLED.wait(root).unwrap_or_else(PoisonError::into_inner),
            Some(deadline) => {
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return root;
                }
                let (root, _) = SETTLED
                    .wait_timeout(root, left)
                    .unwrap_or_else(PoisonError::into_inner);
                root
            }
        };
    }
}

/// Starts the progress thread, once per job: the first pool does.
///
/// # Errors
/// The thread could not be started (the message says why).
pub(crate) fn start_progress() -> Result<(), String> {
    let mut root = root();
    let Some(state) = root.as_mut() else {
        return Ok(());
    };
    if state.progressing {
        return Ok(());
    }
    std::thread::Builder::new()
        .name("shared-mpi-progress".into())
        .spawn(progress_loop)
        .map_err(|error| format!("cannot start the MPI progress thread: {error}"))?;
    state.progressing = true;
    Ok(())
}

/// The progress thread: sends orders, takes reports, runs due callbacks, until the job ends.
fn progress_loop() {
    let mut backoff = Backoff::default();
    let mut root = root();
    loop {
        let Some(state) = root.as_mut() else {
            return;
        };
        let moved = state.progress();
        let due = state.ledger.take_due();
        let busy = state.ledger.any_held();
        if state.ledger.take_awaited() {
            SETTLED.notify_all();
        }
        if moved {
            backoff.reset();
        }
        if !due.is_empty() {
            drop(root);
            run_callbacks(due);
            root = self::root();
            continue;
        }
        root = if !busy {
            // No rank runs anything: nothing can arrive until a caller queues a chunk.
            WORK.wait(root).unwrap_or_else(PoisonError::into_inner)
        } else if moved {
            root
        } else {
            backoff.wait(root)
        };
    }
}

/// Runs done callbacks, without the lock; a panicking callback (its message printed by the
/// panic hook) does not stop the others or the progress thread.
fn run_callbacks(callbacks: Vec<super::ledger::Callback>) {
    for callback in callbacks {
        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(callback));
    }
}

/// How the progress thread waits between polls while ranks are busy and nothing came: it
/// yields the CPU for the first 20 ms (a short task's report is near, and on a machine with
/// more ranks than CPUs the yield lets them run; on a loaded machine a round trip can take
/// milliseconds, and a sleep then would add its own), then sleeps from 50 µs doubling to
/// 1 ms, as mpi4py's `Backoff` does, so a long task costs rank 0 little CPU. A new chunk ends
/// a sleep at once.
#[derive(Default)]
struct Backoff {
    /// When the polls began to come back empty.
    idle_since: Option<Instant>,
    sleeps: u32,
}

impl Backoff {
    const YIELD_FOR: Duration = Duration::from_millis(20);
    const FIRST_SLEEP: Duration = Duration::from_micros(50);
    const MAX_DOUBLINGS: u32 = 4;

    fn reset(&mut self) {
        *self = Backoff::default();
    }

    fn wait(
        &mut self,
        root: MutexGuard<'static, Option<Root>>,
    ) -> MutexGuard<'static, Option<Root>> {
        let idle_since = *self.idle_since.get_or_insert_with(Instant::now);
        if idle_since.elapsed() < Self::YIELD_FOR {
            drop(root);
            std::thread::yield_now();
            return self::root();
        }
        let pause = Self::FIRST_SLEEP * (1 << self.sleeps.min(Self::MAX_DOUBLINGS));
        self.sleeps = self.sleeps.saturating_add(1);
        let (root, _) = WORK
            .wait_timeout(root, pause)
            .unwrap_or_else(PoisonError::into_inner);
        root
    }
}

/// Starts MPI if this process is a rank of an MPI job. Rank 0 keeps MPI in [`ROOT`] and
/// returns `Ok(true)`; a worker rank serves rank 0's orders and exits, never returning;
/// outside a job nothing happens (`Ok(false)`).
///
/// # Errors
/// MPI was already started, or offers less than `MPI_THREAD_SERIALIZED`.
pub(crate) fn start() -> Result<bool, String> {
    if !launched_by_mpi() {
        return Ok(false);
    }
    // `init` called again on rank 0: MPI runs already, started by this very process.
    if root()
        .as_ref()
        .is_some_and(|root| root.pid == std::process::id())
    {
        return Ok(true);
    }
    let (universe, threading) = ::mpi::initialize_with_threading(Threading::Serialized)
        .ok_or("MPI was already initialized: call shared::init() once, before any MPI call")?;
    if !matches!(threading, Threading::Serialized | Threading::Multiple) {
        return Err(format!(
            "the MPI library offers only {threading:?} threading, and the pool needs Serialized"
        ));
    }
    let world = universe.world();
    if world.rank() != 0 {
        super::worker::serve(universe);
    }
    let token: Token = crate::sys::random_bytes()
        .map_err(|error| format!("no random token for the job's seals: {error}"))?;
    for rank in 1..world.size() {
        world
            .process_at_rank(rank)
            .send_with_tag(&token[..], HELLO_TAG);
    }
    let workers = usize::try_from(world.size() - 1).unwrap_or(0);
    *root() = Some(Root {
        universe,
        token,
        ledger: Ledger::new(workers),
        pid: std::process::id(),
        progressing: false,
    });
    lifecycle::at_exit(ExitStep::Mpi, stop_workers);
    lifecycle::run_at_process_exit().map_err(|error| {
        format!("cannot make sure the worker ranks are stopped at exit: {error}")
    })?;
    Ok(true)
}

impl Root {
    /// Sends every order a free rank can take and takes in every report that has arrived,
    /// without waiting; whether any report came.
    fn progress(&mut self) -> bool {
        let mut moved = false;
        loop {
            self.send_orders();
            if !self.ledger.any_held() {
                return moved;
            }
            let world = self.universe.world();
            let Some(probed) = world
                .any_process()
                .immediate_matched_probe_with_tag(REPORT_TAG)
            else {
                return moved;
            };
            self.receive(probed);
            moved = true;
        }
    }

    /// Sends every order a free rank can take, then waits for one report if a rank runs a
    /// chunk. Only where nothing else may talk to the ranks: at the exit, and in tests.
    fn progress_blocking(&mut self) {
        self.send_orders();
        if self.ledger.any_held() {
            let world = self.universe.world();
            let probed = world.any_process().matched_probe_with_tag(REPORT_TAG);
            self.receive(probed);
        }
    }

    fn send_orders(&mut self) {
        let world = self.universe.world();
        while let Some((rank, run)) = self.ledger.next_assignment() {
            let order = protocol::encode(&Order::Run(run));
            world
                .process_at_rank(rank)
                .send_with_tag(&order[..], ORDER_TAG);
        }
    }

    fn receive(
        &mut self,
        probed: (
            ::mpi::point_to_point::Message,
            ::mpi::point_to_point::Status,
        ),
    ) {
        let source = probed.1.source_rank();
        let (bytes, _) = probed.matched_receive_vec::<u8>();
        self.ledger.accept(source, &bytes);
    }

    /// Waits for every chunk running to come back (dropping the ones not yet sent), then
    /// tells every worker rank to stop. The running chunks' reports are received first, so
    /// that no rank is left blocked in a send when MPI is finalized.
    fn stop_workers(&mut self) {
        self.ledger.drop_pending();
        while self.ledger.any_held() {
            self.progress_blocking();
        }
        let world = self.universe.world();
        let stop = protocol::encode(&Order::Stop);
        for rank in 1..world.size() {
            world
                .process_at_rank(rank)
                .send_with_tag(&stop[..], ORDER_TAG);
        }
    }
}

/// The exit step of rank 0: stop the worker ranks, then finalize MPI (dropping the universe),
/// so that `mpirun` sees every rank end cleanly.
fn stop_workers(ending: Ending) {
    if ending != Ending::Main {
        return;
    }
    let mut root = root();
    if root
        .as_ref()
        .is_none_or(|root| root.pid != std::process::id())
    {
        return;
    }
    if let Some(mut job) = root.take() {
        // The progress thread and every waiter see the job gone (`None`) and stop; none
        // touches MPI again, so the rest needs no lock. Dropped without it, the done
        // callbacks left in the ledger may drop futures, which take the lock.
        drop(root);
        wake();
        job.stop_workers();
        drop(job);
    }
}

/// The number of worker ranks, if this process is rank 0 of an MPI job.
pub(crate) fn worker_ranks() -> Option<usize> {
    root().as_ref().map(|root| root.ledger.workers())
}

/// Test support: sends worker rank `rank` an order a peer might forge, counting the rank as
/// running a chunk of a job nobody waits for (`u64::MAX`), and waits until its answer (and
/// every other report due) has been received and judged as any report is.
///
/// # Errors
/// This process is not rank 0 of an MPI job, or `rank` is not a worker rank.
#[cfg(feature = "test-support")]
pub fn send_forged_order(rank: i32, forgery: super::Forgery) -> Result<(), String> {
    use super::Forgery;
    let mut root = root();
    let root = root.as_mut().ok_or("not rank 0 of an MPI job")?;
    let job = u64::MAX;
    let run = |entry: u64, seal| {
        protocol::encode(&Order::Run(protocol::Run {
            job,
            chunk: 0,
            entry,
            seal,
            args: Vec::new(),
        }))
    };
    let entry = crate::pool::task::entry_offset::<_, (u64,)>(forged_task)
        .ok_or("a function item has an entry")?;
    let bytes = match forgery {
        Forgery::Garbage => vec![0x92, 0xc1, 0xff],
        Forgery::Unsealed => run(entry, [0; 16]),
        Forgery::SealedNonEntry => run(entry + 1, crate::pool::task::seal(&root.token, entry + 1)),
    };
    root.ledger.hold_for_test(rank, job)?;
    let world = root.universe.world();
    world
        .process_at_rank(rank)
        .send_with_tag(&bytes[..], ORDER_TAG);
    // Wait for the answer, so that the caller sees what rank 0 made of it.
    while root.ledger.any_held() {
        root.progress_blocking();
    }
    Ok(())
}

/// The task a forged order names.
#[cfg(feature = "test-support")]
fn forged_task(x: u64) -> u64 {
    x
}
