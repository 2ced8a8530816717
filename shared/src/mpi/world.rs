//! The MPI job this process is a rank of: detecting `mpirun`, starting MPI, rank 0's state
//! and its conversation with the worker ranks, and the stop at exit.
//!
//! # Why one chunk per rank at a time
//! Rank 0 sends with MPI's standard send, which for a large message waits until the receiver
//! posts its receive. If rank 0 could send a second order to a rank that is itself blocked
//! sending a large report, each would wait for the other for ever. Rank 0 therefore sends an
//! order only to a rank that holds nothing, which is (or soon will be) waiting in its receive;
//! a worker's report waits at most until rank 0 next receives. No cycle, whatever the sizes.

use std::sync::{Mutex, MutexGuard, PoisonError};

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
}

/// Rank 0's state, once MPI is started on it. MPI is started with
/// `MPI_THREAD_SERIALIZED`: every MPI call is made under this lock, from whichever thread.
static ROOT: Mutex<Option<Root>> = Mutex::new(None);

/// Rank 0's state (`None` outside an MPI job, on a worker rank, and after the exit).
pub(crate) fn root() -> MutexGuard<'static, Option<Root>> {
    // The ledger is never left half-changed by a panic in a way later calls could misread:
    // at worst a chunk's outcome is missing, which its caller reports as broken.
    ROOT.lock().unwrap_or_else(PoisonError::into_inner)
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
    });
    lifecycle::at_exit(ExitStep::Mpi, stop_workers);
    lifecycle::run_at_process_exit().map_err(|error| {
        format!("cannot make sure the worker ranks are stopped at exit: {error}")
    })?;
    Ok(true)
}

impl Root {
    /// Sends every order a free rank can take, then, if `wait` and some rank is running a
    /// chunk, receives one report (blocking until one comes); without `wait`, takes a report
    /// only if one has arrived.
    pub(crate) fn progress(&mut self, wait: bool) {
        let world = self.universe.world();
        while let Some((rank, run)) = self.ledger.next_assignment() {
            let order = protocol::encode(&Order::Run(run));
            world
                .process_at_rank(rank)
                .send_with_tag(&order[..], ORDER_TAG);
        }
        if !self.ledger.any_held() {
            return;
        }
        let probed = if wait {
            Some(world.any_process().matched_probe_with_tag(REPORT_TAG))
        } else {
            world
                .any_process()
                .immediate_matched_probe_with_tag(REPORT_TAG)
        };
        if let Some((message, status)) = probed {
            let source = status.source_rank();
            let (bytes, _) = (message, status).matched_receive_vec::<u8>();
            self.ledger.accept(source, &bytes);
        }
    }

    /// Waits for every chunk running to come back (dropping the ones not yet sent), then
    /// tells every worker rank to stop. The running chunks' reports are received first, so
    /// that no rank is left blocked in a send when MPI is finalized.
    fn stop_workers(&mut self) {
        self.ledger.drop_pending();
        while self.ledger.any_held() {
            self.progress(true);
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
        root.progress(true);
    }
    Ok(())
}

/// The task a forged order names.
#[cfg(feature = "test-support")]
fn forged_task(x: u64) -> u64 {
    x
}
