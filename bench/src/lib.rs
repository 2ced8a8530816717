//! Benchmarks `shared` against CPython's `multiprocessing` on the same workloads.
//!
//! One binary plays two parts. Run plainly, it is the harness: each round it launches every
//! workload once per side, as a fresh process, and prints a table of medians and ratios at the
//! end. Run as `bench workload NAME ARGS...`, it is the Rust side of one workload (the Python
//! side is `python/NAME.py ARGS...`). Both sides print one [`Measurement`](measurement) line.
//! See `bench/README.md`.

pub mod catalogue;
pub mod harness;
pub mod measurement;
pub mod report;
pub mod stats;
pub mod workloads;
