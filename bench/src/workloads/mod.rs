//! The Rust side of the workloads: `bench workload PROGRAM ARGS...`, the counterpart of
//! `python/PROGRAM.py ARGS...`. Each runs in its own process, times the workload only, and
//! prints one [`Measurement`] line.

mod event;
mod executor;
mod joinable;
mod joinable_threads;
mod manager;
#[cfg(feature = "mpi")]
mod mpi;
mod pipe;
mod pool;
mod queue;
mod raw;
mod shared_memory;
mod start_join;
mod sync;

use std::error::Error;
use std::str::FromStr;

use crate::measurement::Measurement;

/// What a workload returns: its measurement, or why it failed.
pub type Outcome = Result<Measurement, Box<dyn Error>>;

/// Runs the workload `program` with `args` (as in the catalogue) and prints its line.
///
/// # Errors
/// An unknown program, bad arguments, or the workload's own failure.
pub fn run(program: &str, args: &[String]) -> Result<(), Box<dyn Error>> {
    let measurement = match program {
        raw::EXIT_AT_ONCE => return Ok(()),
        "raw_pipe_pingpong" => raw::pipe_ping_pong(arg(args, 0)?),
        "raw_fork" => raw::fork_exit_wait(arg(args, 0)?),
        "raw_exec" => raw::exec_self(arg(args, 0)?),
        "start_join" => start_join::run(arg(args, 0)?, arg(args, 1)?),
        "queue_str" => queue::single_producer_strings(arg(args, 0)?),
        "queue_bytes" => queue::single_producer_bytes(arg(args, 0)?, arg(args, 1)?),
        "queue_2x2" => queue::two_by_two(arg(args, 0)?),
        "pipe_pingpong" => pipe::ping_pong(arg(args, 0)?, arg(args, 1)?),
        "joinable" => joinable::run(arg(args, 0)?),
        "lock_uncontended" => sync::lock_uncontended(arg(args, 0)?),
        "value_contended" => sync::value_contended(arg(args, 0)?),
        "event_pingpong" => event::ping_pong(arg(args, 0)?),
        "joinable_threads" => joinable_threads::run(arg(args, 0)?),
        "pool_map" => pool::map(arg(args, 0)?, arg(args, 1)?),
        "pool_startup" => pool::startup(arg(args, 0)?),
        "queue_pingpong" => pool::queue_ping_pong(arg(args, 0)?),
        #[cfg(feature = "mpi")]
        "mpi_pool_map" => mpi::map(arg(args, 0)?, arg(args, 1)?),
        "raw_shm_create" => shared_memory::raw_create_attach_unlink(arg(args, 0)?, arg(args, 1)?),
        "shm_create" => shared_memory::create_attach_unlink(arg(args, 0)?, arg(args, 1)?),
        "executor_submit" => executor::submit_result(arg(args, 0)?),
        "executor_map" => executor::map(arg(args, 0)?),
        "manager" => manager::run(&arg::<String>(args, 0)?, arg(args, 1)?),
        other => Err(format!("unknown workload program `{other}`").into()),
    }?;
    println!("{measurement}");
    Ok(())
}

fn arg<T: FromStr>(args: &[String], index: usize) -> Result<T, String> {
    let text = args
        .get(index)
        .ok_or_else(|| format!("missing argument {}", index + 1))?;
    text.parse()
        .map_err(|_| format!("argument {} `{text}` is not valid", index + 1))
}

/// Fails with `what` unless `holds`: the workloads check their results, cheaply.
fn check(holds: bool, what: &str) -> Result<(), Box<dyn Error>> {
    if holds {
        Ok(())
    } else {
        Err(format!("check failed: {what}").into())
    }
}
