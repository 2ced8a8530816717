//! The harness: command-line options, and the rounds that run every workload on both sides.

pub mod contention;
mod machine;
pub mod options;
mod runner;

use std::path::PathBuf;

pub use options::Options;
use runner::Side;

use crate::catalogue::{self, Workload};
use crate::measurement::Measurement;
pub use crate::measurement::Results;
use crate::report;

/// Runs the benchmark as `options` say and prints the table.
///
/// # Errors
/// No workload matches `--only`, or the harness cannot find its own executable.
pub fn run(options: &Options) -> Result<(), String> {
    let workloads = catalogue::select(&options.only);
    if workloads.is_empty() {
        return Err(format!(
            "no workload matches {:?}; try --list",
            options.only
        ));
    }
    let rust = Side::rust()?;
    // Before anything starts: every process of the run inherits the affinity.
    let pinned_to = options.contention.pin()?;
    let python = Side::python(&options.python);
    if python.is_none() {
        eprintln!(
            "bench: `{}` was not found: running only the Rust side (no ratios).",
            options.python
        );
    }
    let mut results: Vec<Results> = workloads
        .iter()
        .map(|&workload| Results {
            workload,
            rust: Vec::new(),
            python: Vec::new(),
        })
        .collect();
    let busy = options.contention.start_busy(rust.executable())?;
    let mode = contention::describe(pinned_to.as_deref(), options.contention.busy);
    eprintln!("bench: {mode}");
    for round in 0..options.rounds {
        eprintln!("bench: round {}/{}", round + 1, options.rounds);
        for entry in &mut results {
            run_round(entry, round, options, &rust, python.as_ref());
        }
    }
    let environment = report::Environment {
        machine: machine::describe(),
        date: machine::today_utc(),
        rounds: options.rounds,
        cpus: runner::cpu_count(),
        python_version: python.as_ref().map(Side::describe),
        pinned_cpu: runner::pinning_cpu().ok(),
        mode,
    };
    drop(busy);
    print!("{}", report::render(&results, &environment));
    Ok(())
}

/// One round of one workload: both sides, Rust first in even rounds and Python first in odd
/// ones, so that drift on a noisy machine does not favour either.
fn run_round(
    entry: &mut Results,
    round: usize,
    options: &Options,
    rust: &Side,
    python: Option<&Side>,
) {
    let mut sides = vec![(rust, &mut entry.rust)];
    // A raw limit is system calls alone: it has no Python side.
    if let Some(python) = python.filter(|_| !entry.workload.raw_limit) {
        sides.push((python, &mut entry.python));
    }
    if round % 2 == 1 {
        sides.reverse();
    }
    for (side, measurements) in sides {
        match side.run_round(entry.workload, options.min_round) {
            Ok((measurement, runs)) => {
                log_run(entry.workload, side, &measurement, runs);
                measurements.push(measurement);
            }
            Err(error) => eprintln!("bench:   {} {side}: FAILED: {error}", entry.workload.name),
        }
    }
}

fn log_run(workload: &Workload, side: &Side, measurement: &Measurement, runs: usize) {
    let value = workload
        .metric
        .value(measurement.elapsed_s, measurement.ops);
    eprintln!(
        "bench:   {:<18} {:<6} {:>12.4} {} ({runs} run{}, {:.3} s timed)",
        workload.name,
        side,
        value,
        workload.unit,
        if runs == 1 { "" } else { "s" },
        measurement.elapsed_s,
    );
}

/// Where the Python scripts are: `bench/python` in this repository.
fn python_scripts() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("python")
}
