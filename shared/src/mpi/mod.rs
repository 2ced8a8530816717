//! The pool over the ranks of an MPI job (feature `mpi`): [`MpiPool`] and
//! [`MpiPoolExecutor`], for programs started by `mpirun` or `srun` on one machine or many.
//!
//! # How it works
//! MPI starts the same program N times, on one host or across several, and numbers the
//! copies (ranks) 0 to N−1. With the feature on, [`init`](crate::init) sees that the program
//! was started so (Open MPI's `OMPI_COMM_WORLD_SIZE`, PMI's `PMI_SIZE` or PMIx's `PMIX_RANK`)
//! and starts MPI. On every rank but 0 it never returns: the rank becomes a worker that runs
//! the chunks rank 0 sends, until rank 0 says stop, then finalizes MPI and exits. Rank 0
//! returns from `init` and runs `main`, where an [`MpiPool`] (or an [`MpiPoolExecutor`],
//! its `concurrent.futures` face) hands out the work. Without such a launcher, `init` does
//! what it does without the feature.
//!
//! A task crosses as the local pool sends it to a spawned worker: the offset of its entry
//! point in the executable, that offset's seal (an HMAC keyed by a random token that rank 0
//! sends each worker rank once, at start), and the arguments in MessagePack. The same
//! executable on every rank is what makes an offset name the same function everywhere, as
//! MPI itself assumes; a worker refuses an order whose seal does not check out or whose
//! offset is not a task's entry, and rank 0 refuses a report from a rank that is not running
//! the chunk it names. Both sides decode with the crate's depth limit: a malformed message
//! is an error naming the rank, never a panic.
//!
//! Rank 0 sends a rank one chunk at a time, the next as soon as its report arrives (see
//! `world.rs` for why not more). One thread of rank 0 does all the talking, started with the
//! first pool (mpi4py's executor has the same "manager" thread): it polls for reports,
//! backing off to a millisecond while the ranks are busy, and runs the executor's done
//! callbacks. The threads that wait for results wait on it, so a `get_timeout` or a
//! `result_timeout` gives up in time however long the ranks take. `map` with Python's
//! default chunking sends about four chunks per worker rank, so the network is crossed a few
//! times per call; `chunksize=1` crosses it twice per item.
//!
//! # What crosses the network
//! Per chunk: the order (job and chunk numbers, the entry offset, a 16-byte seal, the
//! arguments) and the report (the same numbers and the results, or each item's error
//! message). Once per worker rank: the 16-byte token. Nothing else: no code (every host runs
//! its own copy of the executable), no file, no handle. A task's arguments and results must
//! be plain serializable values; a [`Queue`](crate::Queue) or a [`Lock`](crate::Lock) lives
//! in one machine's memory and cannot be sent (its encoding fails with
//! [`PoolError::Arguments`](crate::PoolError::Arguments)).
//!
//! MPI carries the messages as it is configured (shared memory on one host, TCP or the
//! cluster's fabric between hosts) and does not encrypt them: the seal keeps a worker from
//! running anything but the program's own tasks, but anyone who can read the job's traffic
//! can read the token too. Run jobs on a network you trust, as MPI itself requires.
//!
//! # When something fails
//! The same holds for the pool and the executor (whose future is a call of one item).
//!
//! - **A task returns `Err` or panics**: that call fails with
//!   [`PoolError::Task`](crate::PoolError::Task) and the message (a panic's with its
//!   location); the rank reports it and goes on, as does the pool.
//! - **A worker rank dies** (a SIGKILL, the OOM killer, `std::process::exit` in a task): MPI
//!   does not survive the death of a rank. `mpirun` ends every other rank of the job, rank 0
//!   included, within seconds, prints which rank died and how ("mpirun noticed that process
//!   rank 1 with PID 0 on node vm exited on signal 9 (Killed)"; Open MPI 4.1 shows PID 0),
//!   and exits non-zero (137 = 128 + 9 for a SIGKILL).
//!   So the job never hangs, but its results are lost: rank 0's `map` never returns, as
//!   `mpi4py.futures` loses its job the same way. (The local [`Pool`](crate::Pool) survives a
//!   worker's death; across machines, make a task that may crash run in a local `Process`
//!   inside the task.)
//! - **A worker rank sends something rank 0 cannot trust** (a report that does not decode,
//!   or for a chunk it was not running): the pool is broken; every unfinished and every later
//!   call fails with [`PoolError::Broken`](crate::PoolError::Broken) naming the rank.
//! - **Rank 0's `main` returns (or calls `exit`) while worker ranks wait**: an exit step of
//!   `shared` waits for the chunks still running, drops those not yet sent, sends every
//!   worker rank a stop and finalizes MPI, so every rank ends with code 0 and `mpirun` with
//!   rank 0's exit code (after a notice on stderr if it is not 0). The futures of the calls
//!   dropped never complete, and their done callbacks never run. If rank 0 itself is killed,
//!   `mpirun` ends the workers as above.
//!
//! # Beyond one machine
//! List the hosts and their slots in a hostfile, put the same executable at the same path on
//! every host (a shared file system, or a copy), and start it with `mpirun`:
//!
//! ```text
//! $ cat hosts
//! node1 slots=4
//! node2 slots=4
//! $ cargo build --release --features shared/mpi
//! $ mpirun --hostfile hosts -n 8 target/release/programa
//! ```
//!
//! Rank 0 runs on the first host and seven worker ranks on the rest of the slots. Under
//! Slurm, `srun -n 8 target/release/programa` (inside `sbatch` or `salloc`) starts the ranks
//! on the nodes Slurm gave the job, with the PMI variables `init` looks for.

mod executor;
mod ledger;
mod pool;
mod protocol;
mod worker;
mod world;

#[cfg(feature = "test-support")]
#[doc(hidden)]
pub use world::send_forged_order;

/// Test support: what [`send_forged_order`] sends a worker rank.
#[cfg(feature = "test-support")]
#[doc(hidden)]
#[derive(Clone, Copy, Debug)]
pub enum Forgery {
    /// Bytes that do not decode as an order.
    Garbage,
    /// An order for a true entry point, with a seal that is not the job's.
    Unsealed,
    /// An order sealed with the job's token, for an offset one byte into an entry point.
    SealedNonEntry,
}

pub use executor::{MpiExecutorMap, MpiExecutorMapOf, MpiFuture, MpiPoolExecutor};
pub use pool::{MpiAsyncResult, MpiChunked, MpiIMap, MpiIMapOf, MpiMapResult, MpiPool};

/// The MPI half of [`init`](crate::init): starts MPI when the program runs under an MPI
/// launcher; a worker rank serves rank 0 and exits here, never returning.
///
/// # Errors
/// MPI could not be started as the pool needs it (the message says why).
pub(crate) fn start_if_launched() -> Result<(), String> {
    world::start().map(|_| ())
}
