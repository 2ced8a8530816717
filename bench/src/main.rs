//! `bench`: runs the workloads in `shared` and in CPython and prints the comparison; `bench
//! workload PROGRAM ARGS...` runs the Rust side of one workload (the harness starts those).

use std::process::ExitCode;

use bench::harness::{self, Options};

fn main() -> ExitCode {
    // Spawned children of the workloads must run their target, not the benchmark. The bench
    // reads its own command line, so it takes the guard without `init`'s options.
    shared::run_if_spawned_child();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.split_first() {
        Some((first, rest)) if first == "workload" => run_workload(rest),
        Some((first, rest)) if first == harness::contention::BUSY_COMMAND => {
            harness::contention::run_busy(rest)
        }
        _ => run_harness(&args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("bench: {error}");
            ExitCode::FAILURE
        }
    }
}

fn run_workload(args: &[String]) -> Result<(), String> {
    let (program, args) = args
        .split_first()
        .ok_or("usage: bench workload PROGRAM ARGS...")?;
    bench::workloads::run(program, args).map_err(|error| format!("{program}: {error}"))
}

fn run_harness(args: &[String]) -> Result<(), String> {
    match Options::parse(args)? {
        harness::options::Command::Print(text) => {
            print!("{text}");
            Ok(())
        }
        harness::options::Command::Run(options) => harness::run(&options),
    }
}
