//! The workloads: what each side runs, with which arguments, how the result is read, and the
//! speed-up the project aims for.

/// How a workload's [`Measurement`](crate::measurement::Measurement) becomes its figure.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Metric {
    /// Milliseconds per operation (lower is better).
    MillisPerOp,
    /// Microseconds per operation (lower is better).
    MicrosPerOp,
    /// Operations per second (higher is better).
    OpsPerSecond,
    /// Megabytes (10^6 bytes) per second, each operation moving `item_bytes` (higher is
    /// better); items per second is shown beside it.
    MegabytesPerSecond {
        /// The size of one item.
        item_bytes: u64,
    },
}

impl Metric {
    /// The figure for `ops` operations done in `elapsed_s` seconds.
    pub fn value(self, elapsed_s: f64, ops: u64) -> f64 {
        let ops = ops as f64;
        match self {
            Metric::MillisPerOp => elapsed_s * 1e3 / ops,
            Metric::MicrosPerOp => elapsed_s * 1e6 / ops,
            Metric::OpsPerSecond => ops / elapsed_s,
            Metric::MegabytesPerSecond { item_bytes } => ops * item_bytes as f64 / elapsed_s / 1e6,
        }
    }

    /// Whether a larger figure means faster.
    pub fn higher_is_better(self) -> bool {
        matches!(
            self,
            Metric::OpsPerSecond | Metric::MegabytesPerSecond { .. }
        )
    }
}

/// One workload, run alike on both sides.
#[derive(Debug)]
pub struct Workload {
    /// The name `--only` selects it by.
    pub name: &'static str,
    /// What the table calls it.
    pub title: &'static str,
    /// The Rust subcommand (`bench workload PROGRAM ARGS`) and the Python script
    /// (`python/PROGRAM.py ARGS`).
    pub program: &'static str,
    /// The arguments both sides get: counts and sizes.
    pub args: &'static [&'static str],
    /// How the result is read.
    pub metric: Metric,
    /// The unit `metric` is in, for the table.
    pub unit: &'static str,
    /// The speed-up `shared` should reach (Rust speed ÷ Python speed), if the project set one;
    /// `bench/README.md` says why each is what it is.
    pub target: Option<f64>,
    /// Whether the workload's processes are pinned to one CPU (latency-bound ping-pong).
    pub pinned: bool,
    /// Whether this is a raw limit: a Rust-only workload of system calls alone, no `shared`
    /// and no Python side, that other workloads are measured against.
    pub raw_limit: bool,
    /// The raw limit this workload is read against (the name of a `raw_limit` workload), and
    /// the multiple of it that `shared` should stay within, if the project set one.
    pub raw: Option<(&'static str, Option<f64>)>,
}

/// The target for peak RSS, as Python ÷ Rust: a lesson-like process of `shared` uses at most a
/// quarter of the memory of CPython's.
pub const RSS_TARGET: f64 = 4.0;

/// The workload whose main-process peak RSS stands for a lesson-like program.
pub const RSS_WORKLOAD: &str = "start_join_fork";

const fn workload(
    name: &'static str,
    title: &'static str,
    program: &'static str,
    args: &'static [&'static str],
    (metric, unit): (Metric, &'static str),
    target: Option<f64>,
) -> Workload {
    Workload {
        name,
        title,
        program,
        args,
        metric,
        unit,
        target,
        pinned: false,
        raw_limit: false,
        raw: None,
    }
}

/// A raw limit: Rust only, no target of its own.
const fn raw_limit(
    name: &'static str,
    title: &'static str,
    program: &'static str,
    args: &'static [&'static str],
    metric: (Metric, &'static str),
) -> Workload {
    Workload {
        raw_limit: true,
        ..workload(name, title, program, args, metric, None)
    }
}

/// `workload`, read against the raw limit named `raw`, within `target` times it if set.
const fn against(raw: &'static str, target: Option<f64>, workload: Workload) -> Workload {
    Workload {
        raw: Some((raw, target)),
        ..workload
    }
}

const MS_PER_PROCESS: (Metric, &str) = (Metric::MillisPerOp, "ms/process");
const US_PER_ROUND_TRIP: (Metric, &str) = (Metric::MicrosPerOp, "µs/round trip");
const ITEMS_PER_S: (Metric, &str) = (Metric::OpsPerSecond, "items/s");
const US_PER_ITEM: (Metric, &str) = (Metric::MicrosPerOp, "µs/item");

const fn megabytes(item_bytes: u64) -> (Metric, &'static str) {
    (Metric::MegabytesPerSecond { item_bytes }, "MB/s")
}

const fn pinned(workload: Workload) -> Workload {
    Workload {
        pinned: true,
        ..workload
    }
}

/// How many times the raw two-pipe round trip a `Pipe` round trip may cost.
const PIPE_WITHIN_RAW: f64 = 1.3;

/// Every workload, in the order of the tables; a raw limit comes before the workloads read
/// against it.
pub const WORKLOADS: &[Workload] = &[
    raw_limit(
        "start_join_fork_raw",
        "raw: fork, _exit, waitpid (200)",
        "raw_fork",
        &["200"],
        MS_PER_PROCESS,
    ),
    against(
        "start_join_fork_raw",
        None,
        workload(
            "start_join_fork",
            "start+join, fork (200)",
            "start_join",
            &["fork", "200"],
            MS_PER_PROCESS,
            Some(8.0),
        ),
    ),
    raw_limit(
        "start_join_spawn_raw",
        "raw: exec of itself, wait (20)",
        "raw_exec",
        &["20"],
        MS_PER_PROCESS,
    ),
    against(
        "start_join_spawn_raw",
        None,
        workload(
            "start_join_spawn",
            "start+join, spawn (20)",
            "start_join",
            &["spawn", "20"],
            MS_PER_PROCESS,
            Some(40.0),
        ),
    ),
    workload(
        "start_join_forkserver",
        "start+join, forkserver (100)",
        "start_join",
        &["forkserver", "100"],
        MS_PER_PROCESS,
        Some(50.0),
    ),
    workload(
        "queue_str25",
        "Queue 1→1, 25-B str (200k)",
        "queue_str",
        &["200000"],
        ITEMS_PER_S,
        Some(8.0),
    ),
    workload(
        "queue_1k",
        "Queue 1→1, 1 KiB (100k)",
        "queue_bytes",
        &["1024", "100000"],
        megabytes(1024),
        None,
    ),
    workload(
        "queue_64k",
        "Queue 1→1, 64 KiB (10k)",
        "queue_bytes",
        &["65536", "10000"],
        megabytes(65536),
        None,
    ),
    workload(
        "queue_1m",
        "Queue 1→1, 1 MiB (1000)",
        "queue_bytes",
        &["1048576", "1000"],
        megabytes(1 << 20),
        Some(3.0),
    ),
    workload(
        "queue_16m",
        "Queue 1→1, 16 MiB (64)",
        "queue_bytes",
        &["16777216", "64"],
        megabytes(16 << 20),
        Some(4.0),
    ),
    workload(
        "queue_2x2",
        "Queue 2→2, 25-B str (200k)",
        "queue_2x2",
        &["200000"],
        ITEMS_PER_S,
        Some(6.0),
    ),
    pinned(raw_limit(
        "pipe_raw",
        "raw: two pipes, 1-B echo (20k)",
        "raw_pipe_pingpong",
        &["20000"],
        US_PER_ROUND_TRIP,
    )),
    against(
        "pipe_raw",
        Some(PIPE_WITHIN_RAW),
        pinned(workload(
            "pipe_objects",
            "Pipe ping-pong, send/recv (20k)",
            "pipe_pingpong",
            &["objects", "20000"],
            US_PER_ROUND_TRIP,
            Some(2.5),
        )),
    ),
    against(
        "pipe_raw",
        Some(PIPE_WITHIN_RAW),
        pinned(workload(
            "pipe_bytes",
            "Pipe ping-pong, send_bytes (20k)",
            "pipe_pingpong",
            &["bytes", "20000"],
            US_PER_ROUND_TRIP,
            None,
        )),
    ),
    workload(
        "joinable",
        "JoinableQueue, 2 workers (10k)",
        "joinable",
        &["10000"],
        (Metric::OpsPerSecond, "tasks/s"),
        Some(8.0),
    ),
    workload(
        "joinable_threads",
        "queue.Queue, 2 threads (10k)",
        "joinable_threads",
        &["10000"],
        (Metric::OpsPerSecond, "tasks/s"),
        None,
    ),
    workload(
        "lock_uncontended",
        "Lock acquire+release (1M)",
        "lock_uncontended",
        &["1000000"],
        (Metric::MicrosPerOp, "µs/acquire"),
        Some(3.0),
    ),
    workload(
        "value_2procs",
        "Value +1 locked, 2 procs (100k)",
        "value_contended",
        &["100000"],
        (Metric::MicrosPerOp, "µs/increment"),
        Some(10.0),
    ),
    pinned(workload(
        "event_pingpong",
        "Event ping-pong, set/wait (20k)",
        "event_pingpong",
        &["20000"],
        US_PER_ROUND_TRIP,
        Some(2.0),
    )),
    workload(
        "queue_pingpong",
        "Queue ping-pong, put/get (20k)",
        "queue_pingpong",
        &["20000"],
        US_PER_ROUND_TRIP,
        None,
    ),
    workload(
        "pool_map",
        "Pool(2).map, default (100k)",
        "pool_map",
        &["0", "100000"],
        US_PER_ITEM,
        Some(5.0),
    ),
    workload(
        "pool_map_c1",
        "Pool(2).map, chunksize=1 (20k)",
        "pool_map",
        &["1", "20000"],
        US_PER_ITEM,
        Some(20.0),
    ),
    // Only with the feature `mpi` (it needs Open MPI, and mpi4py on the Python side): the same
    // work as `pool_map_c1` over two worker ranks of a 3-rank `mpirun` job.
    #[cfg(feature = "mpi")]
    workload(
        "mpi_pool_map_c1",
        "MpiPool map over 2 ranks, chunksize=1 (20k)",
        "mpi_pool_map",
        &["1", "20000"],
        US_PER_ITEM,
        Some(10.0),
    ),
    workload(
        "pool_startup",
        "Pool(2) start+map+close (20)",
        "pool_startup",
        &["20"],
        (Metric::MillisPerOp, "ms/pool"),
        Some(10.0),
    ),
    raw_limit(
        "shm_create_raw",
        "raw: shm 4 KiB, the same 11 calls",
        "raw_shm_create",
        &["4096", "20000"],
        (Metric::MicrosPerOp, "µs/segment"),
    ),
    against(
        "shm_create_raw",
        None,
        workload(
            "shm_create",
            "shm 4 KiB create+attach+unlink",
            "shm_create",
            &["4096", "20000"],
            (Metric::MicrosPerOp, "µs/segment"),
            Some(5.0),
        ),
    ),
    workload(
        "executor_submit",
        "Executor(2) submit+result (2k)",
        "executor_submit",
        &["2000"],
        (Metric::MicrosPerOp, "µs/call"),
        Some(50.0),
    ),
    workload(
        "executor_map",
        "Executor(2).map (20k)",
        "executor_map",
        &["20000"],
        US_PER_ITEM,
        Some(10.0),
    ),
    pinned(workload(
        "manager_dict_set",
        "Manager dict d[k] = v (20k)",
        "manager",
        &["set", "20000"],
        (Metric::MicrosPerOp, "µs/write"),
        Some(10.0),
    )),
    pinned(workload(
        "manager_dict_get",
        "Manager dict d.get(k) (20k)",
        "manager",
        &["get", "20000"],
        (Metric::MicrosPerOp, "µs/read"),
        Some(10.0),
    )),
    workload(
        "manager_dict_update",
        "Manager dict update, 100 (1k)",
        "manager",
        &["update", "1000"],
        (Metric::MicrosPerOp, "µs/pair"),
        None,
    ),
    workload(
        "manager_start_stop",
        "Manager() start+shutdown (20)",
        "manager",
        &["start_stop", "20"],
        (Metric::MillisPerOp, "ms/manager"),
        Some(5.0),
    ),
];

/// Pairs of Rust workloads (a, b) with a budget: a's figure must stay within `budget` times
/// b's, both from this run's Rust medians. `pool_map_c1` sends one item per chunk, so each
/// item costs a Queue round trip at most, twice over at worst.
pub const RUST_BUDGETS: &[(&str, &str, f64)] = &[("pool_map_c1", "queue_pingpong", 2.0)];

/// Workloads that run a process workload with threads instead, as (threads, processes): the
/// notes under the speed table give, for each side, the threads' speed ÷ the processes',
/// what crossing a process costs.
pub const THREAD_TWINS: &[(&str, &str)] = &[("joinable_threads", "joinable")];

/// The workloads `only` selects: those whose name equals or starts with one of its entries
/// (`queue` selects every queue workload), with the raw limits they are read against; all of
/// them when `only` is empty.
pub fn select(only: &[String]) -> Vec<&'static Workload> {
    let chosen = |workload: &Workload| {
        only.is_empty() || only.iter().any(|o| workload.name.starts_with(o.as_str()))
    };
    let needed_as_raw = |raw: &Workload| {
        WORKLOADS
            .iter()
            .any(|w| chosen(w) && w.raw.is_some_and(|(name, _)| name == raw.name))
    };
    WORKLOADS
        .iter()
        .filter(|workload| chosen(workload) || needed_as_raw(workload))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique() {
        let mut names: Vec<_> = WORKLOADS.iter().map(|w| w.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), WORKLOADS.len());
    }

    #[test]
    fn thread_twins_name_workloads_of_the_same_metric() {
        for (threads, processes) in THREAD_TWINS {
            let find = |name: &str| WORKLOADS.iter().find(|w| w.name == name).unwrap();
            assert_eq!(find(threads).metric, find(processes).metric);
        }
    }

    #[test]
    fn budgets_compare_workloads_of_the_same_metric() {
        for (a, b, _) in RUST_BUDGETS {
            let find = |name: &str| WORKLOADS.iter().find(|w| w.name == name).unwrap();
            assert_eq!(find(a).metric, find(b).metric);
        }
    }

    #[test]
    fn the_rss_workload_exists() {
        assert!(WORKLOADS.iter().any(|w| w.name == RSS_WORKLOAD));
    }

    #[test]
    fn every_workload_is_read_against_a_raw_limit_that_comes_before_it() {
        for (index, workload) in WORKLOADS.iter().enumerate() {
            if let Some((raw, _)) = workload.raw {
                let position = WORKLOADS.iter().position(|w| w.name == raw);
                assert!(position.is_some_and(|p| p < index), "{}", workload.name);
                assert!(WORKLOADS[position.unwrap()].raw_limit, "{raw}");
                assert_eq!(WORKLOADS[position.unwrap()].metric, workload.metric);
            }
            if workload.raw_limit {
                assert!(workload.target.is_none() && workload.raw.is_none());
            }
        }
    }

    #[test]
    fn selecting_a_workload_brings_its_raw_limit() {
        let names = |only: &str| -> Vec<&str> {
            select(&[only.to_owned()]).iter().map(|w| w.name).collect()
        };
        assert_eq!(names("pipe_bytes"), ["pipe_raw", "pipe_bytes"]);
        assert_eq!(names("pipe"), ["pipe_raw", "pipe_objects", "pipe_bytes"]);
        // A prefix: `start_join_fork` also names `start_join_forkserver`.
        assert_eq!(
            names("start_join_fork"),
            [
                "start_join_fork_raw",
                "start_join_fork",
                "start_join_forkserver"
            ]
        );
        assert_eq!(names("pipe_raw"), ["pipe_raw"]);
    }

    #[test]
    fn selection_by_prefix() {
        let queues = select(&["queue".to_owned()]);
        assert_eq!(queues.len(), 7);
        assert_eq!(select(&[]).len(), WORKLOADS.len());
        assert!(select(&["nothing".to_owned()]).is_empty());
    }

    #[test]
    fn metrics_turn_elapsed_time_into_figures() {
        assert_eq!(Metric::MillisPerOp.value(2.0, 1000), 2.0);
        assert_eq!(Metric::MicrosPerOp.value(1.0, 1_000_000), 1.0);
        assert_eq!(Metric::OpsPerSecond.value(0.5, 100), 200.0);
        let megabytes = Metric::MegabytesPerSecond {
            item_bytes: 1_000_000,
        };
        assert_eq!(megabytes.value(2.0, 10), 5.0);
        assert!(!Metric::MillisPerOp.higher_is_better() && megabytes.higher_is_better());
    }
}
