//! The pool over MPI ranks (feature `mpi`): `MpiPool::map` on a 3-rank `mpirun` job, rank 0
//! and two worker ranks, beside `mpi4py.futures.MPIPoolExecutor` on the same `mpirun`
//! (`python/mpi_pool_map.py`) and the local `Pool(2)` (`pool_map_c1`) on the same work.

use std::process::{Command, Stdio};
use std::time::Instant;

use shared::MpiPool;

use super::{Outcome, check};
use crate::measurement::Measurement;

/// The variables an MPI launcher sets (as `shared::init` reads them).
const LAUNCHER_VARIABLES: [&str; 3] = ["OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_RANK"];

/// The trivial task: what is measured is the pool, not the work.
fn double(x: u64) -> u64 {
    2 * x
}

/// `map(double, range(count))` in chunks of `chunksize` over two worker ranks. Started by the
/// harness, it starts `mpirun -n 3` on itself and passes on rank 0's result line; under
/// `mpirun`, rank 0 times the `map` call alone, after a warm-up, and ranks 1 and 2 serve.
pub fn map(chunksize: usize, count: u64) -> Outcome {
    if !LAUNCHER_VARIABLES
        .iter()
        .any(|name| std::env::var_os(name).is_some())
    {
        return under_mpirun(chunksize, count);
    }
    // Ranks 1 and 2 become workers here and exit when rank 0 does.
    shared::init()?;
    let pool = MpiPool::new()?;
    check(pool.processes() == 2, "two worker ranks")?;
    pool.chunked(1).map(double, 0..4)?;
    let start = Instant::now();
    let results = pool.chunked(chunksize).map(double, 0..count)?;
    let elapsed = start.elapsed();
    check(results.len() as u64 == count, "one result per item")?;
    check(
        results.iter().zip(0..).all(|(&r, x)| r == 2 * x),
        "results in input order",
    )?;
    Ok(Measurement::of_this_process(elapsed, count))
}

/// Runs this workload again as a 3-rank `mpirun` job and reads rank 0's result line.
fn under_mpirun(chunksize: usize, count: u64) -> Outcome {
    let output = Command::new("mpirun")
        .args(["--allow-run-as-root", "--oversubscribe", "-n", "3"])
        .arg(std::env::current_exe()?)
        .args(["workload", "mpi_pool_map"])
        .args([chunksize.to_string(), count.to_string()])
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .map_err(|error| format!("cannot start mpirun (is Open MPI installed?): {error}"))?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    check(output.status.success(), "the mpirun job succeeded")?;
    Ok(Measurement::find_in(&stdout)?)
}
