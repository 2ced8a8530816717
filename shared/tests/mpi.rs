//! The pool over MPI ranks (feature `mpi`), run for real: `examples/mpi_scenarios.rs` under
//! `mpirun --allow-run-as-root --oversubscribe -n 3`, one scenario per test, each run bounded
//! by `timeout` so that a job that hangs fails its test instead of the suite. Needs Open MPI's
//! `mpirun` on the PATH (`.ci/run` installs it).

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;

/// How long one `mpirun` job may take on a loaded 2-core machine before it counts as hung.
const JOB_LIMIT: &str = "180s";

/// The scenarios example, built once (with the features of this test, so nothing rebuilds).
fn scenarios() -> &'static Path {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT.get_or_init(|| build_example("mpi_scenarios"))
}

/// The lesson-06 example, built once.
fn mpi_pool() -> &'static Path {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT.get_or_init(|| build_example("mpi_pool"))
}

fn build_example(name: &str) -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml");
    let status = Command::new("timeout")
        .args(["900s", env!("CARGO"), "build", "--quiet", "--manifest-path"])
        .arg(&manifest)
        .args(["-p", "shared", "--features", "mpi", "--example", name])
        .stdin(Stdio::null())
        .status()
        .expect("cargo runs");
    assert!(
        status.success(),
        "building the {name} example failed: {status}"
    );
    // This test is target/<profile>/deps/mpi-<hash>; the example is beside deps/.
    let test = std::env::current_exe().expect("the test's own path");
    let profile_dir = test
        .parent()
        .and_then(Path::parent)
        .expect("target/<profile>");
    let example = profile_dir.join("examples").join(name);
    assert!(example.exists(), "{} is missing", example.display());
    example
}

/// Runs `scenario` on 3 ranks (rank 0 and two workers).
fn mpirun(scenario: &str) -> Output {
    mpirun_with(&[scenario])
}

/// Runs the scenarios example with `args` on 3 ranks.
fn mpirun_with(args: &[&str]) -> Output {
    mpirun_program(scenarios(), args)
}

/// Runs `program` with `args` on 3 ranks.
fn mpirun_program(program: &Path, args: &[&str]) -> Output {
    Command::new("timeout")
        .args([
            "--kill-after=10s",
            JOB_LIMIT,
            "mpirun",
            "--allow-run-as-root",
            "--oversubscribe",
        ])
        .args(["-n", "3"])
        .arg(program)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("timeout and mpirun run")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The run's stdout lines; fails the test, showing both streams, unless it exited with `code`.
fn lines_of(output: &Output, code: i32) -> Vec<String> {
    let (stdout, stderr) = (text(&output.stdout), text(&output.stderr));
    assert_ne!(
        output.status.code(),
        Some(124),
        "the job hung\n{stdout}\n{stderr}"
    );
    assert_eq!(
        output.status.code(),
        Some(code),
        "stdout:\n{stdout}\nstderr:\n{stderr}"
    );
    stdout.lines().map(str::to_owned).collect()
}

/// What issue 26 asks the example to show: lesson 06's lines, ten results in order from at
/// most two worker processes, none of them rank 0.
#[test]
fn the_lesson_06_example_prints_ten_results_in_order_from_the_worker_ranks() {
    let lines = lines_of(&mpirun_program(mpi_pool(), &[]), 0);
    assert_eq!(lines.len(), 13, "{lines:#?}");
    let main_pid = lines[0]
        .strip_prefix("Processo principal ")
        .and_then(|rest| rest.strip_suffix(" inicializado"))
        .expect("the first line names rank 0's process");
    let mut pids = std::collections::BTreeSet::new();
    for (numero, line) in (0..10u64).zip(&lines[1..11]) {
        let (pid, rest) = line
            .strip_prefix("Processo ")
            .and_then(|rest| rest.split_once(' '))
            .unwrap_or_else(|| panic!("{line:?}"));
        assert_eq!(rest, format!("calculou {numero}² = {}", numero * numero));
        assert_ne!(pid, main_pid, "rank 0 ran a task: {lines:#?}");
        pids.insert(pid.to_owned());
    }
    assert!(pids.len() <= 2, "{lines:#?}");
    assert_eq!(lines[11], format!("Processos usados: {}", pids.len()));
    assert_eq!(
        lines[12],
        format!("Processo principal {main_pid} finalizado")
    );
}

#[test]
fn every_method_gives_the_local_pools_results_in_order() {
    let lines = lines_of(&mpirun("results"), 0);
    let same: Vec<&str> = [
        "map",
        "chunked(1).map",
        "chunked(3).map",
        "chunked(200).map",
        "starmap",
        "chunked(4).starmap",
        "apply",
        "map_async",
        "apply_async",
        "imap",
        "chunked(7).imap",
        "imap_unordered (sorted)",
        "imap of an endless input",
        "chunked(1).map of 1 MiB items",
        "chunked(3).map of 1 MiB items",
    ]
    .into_iter()
    .collect();
    for name in same {
        let line = format!("{name}: same as the local pool");
        assert!(lines.contains(&line), "no {line:?} in {lines:#?}");
    }
    assert!(
        !lines.iter().any(|line| line.contains("DIFFERENT")),
        "{lines:#?}"
    );
    // One chunk per free rank at once: the first two chunks went to the two worker ranks.
    let pids = "pids: 2 distinct, rank 0 among them: false".to_owned();
    assert!(lines.contains(&pids), "{lines:#?}");
    let refusals = [
        "a chunk size of 0: same as the local pool",
        "map after close: same as the local pool",
    ];
    for refusal in refusals {
        assert!(lines.contains(&refusal.to_owned()), "{lines:#?}");
    }
    assert_eq!(lines.last().map(String::as_str), Some("results: done"));
}

#[test]
fn a_task_that_fails_or_panics_fails_its_call_and_the_pool_goes_on() {
    let lines = lines_of(&mpirun("task-errors"), 0);
    assert_eq!(lines[0], "map with an Err: the task failed: 3 não serve");
    assert_eq!(lines[1], "map with a panic: is a task error: true");
    assert!(
        lines[2].starts_with("map with a panic: the task failed: panicked at ")
            && lines[2].contains("mpi_scenarios.rs")
            && lines[2].ends_with(": o cinco entrou em pânico"),
        "{lines:#?}"
    );
    assert_eq!(
        lines[3],
        r#"imap with an Err: ["2", "the task failed: 3 não serve", "4"]"#
    );
    assert_eq!(lines[4], "the pool goes on: [0, 1, 4, 9, 16]");
    assert_eq!(lines.len(), 5, "{lines:#?}");
}

#[test]
fn a_worker_rank_killed_by_its_task_ends_the_whole_job_with_a_report() {
    let output = mpirun("worker-dies");
    let (stdout, stderr) = (text(&output.stdout), text(&output.stderr));
    assert_ne!(
        output.status.code(),
        Some(124),
        "the job hung\n{stdout}\n{stderr}"
    );
    assert!(!output.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains("before: [0, 1, 4]"), "{stdout}");
    assert!(!stdout.contains("after the death"), "{stdout}");
    // mpirun names the rank that died and how.
    assert!(stderr.contains("exited on signal 9 (Killed)"), "{stderr}");
}

#[test]
fn rank_0_returning_with_work_queued_stops_every_rank_cleanly() {
    let output = mpirun("return-while-running");
    let lines = lines_of(&output, 0);
    assert_eq!(lines, ["rank 0 returns without waiting"]);
    let stderr = text(&output.stderr);
    assert!(
        !stderr.contains("finalize"),
        "a rank ended without MPI_Finalize: {stderr}"
    );
}

#[test]
fn a_forged_order_is_answered_never_run_and_breaks_the_pool_with_a_reason() {
    let cases = [
        (
            "garbage",
            "after: the pool cannot go on: worker rank 1 could not read its order: an order \
             from rank 0 does not decode (3 bytes): ",
        ),
        (
            "unsealed",
            "after: the pool cannot go on: worker rank 1 refused an order: the worker rank \
             refused an order not sealed by rank 0",
        ),
        (
            "sealed-non-entry",
            "after: the pool cannot go on: worker rank 1 refused an order: the worker rank \
             refused an order naming no task entry point",
        ),
    ];
    for (forgery, expected) in cases {
        let output = mpirun_with(&["forged-order", forgery]);
        let lines = lines_of(&output, 0);
        assert_eq!(lines.len(), 2, "{forgery}: {lines:#?}");
        assert_eq!(lines[0], "before: [0, 1, 4]");
        assert!(lines[1].starts_with(expected), "{forgery}: {:?}", lines[1]);
    }
}

#[test]
fn a_program_that_makes_no_pool_ends_cleanly() {
    let output = mpirun("no-pool");
    assert_eq!(lines_of(&output, 0), ["rank 0 made no pool"]);
}

#[test]
fn rank_0s_exit_code_is_the_jobs() {
    let output = mpirun("exit-code");
    assert_eq!(lines_of(&output, 3), ["[0, 1, 4]"]);
}

#[test]
fn without_mpirun_the_program_runs_alone_and_a_pool_says_why_it_cannot_start() {
    let output = Command::new("timeout")
        .args(["--kill-after=10s", JOB_LIMIT])
        .arg(scenarios())
        .arg("results")
        .stdin(Stdio::null())
        .output()
        .expect("timeout runs");
    lines_of(&output, 1);
    let stderr = text(&output.stderr);
    assert!(stderr.contains("not rank 0 of an MPI job"), "{stderr}");
}

/// Issue 26: `get_timeout`, `wait_timeout` and `next_timeout` return in bounded time while
/// both worker ranks are inside a task (held there by a socket rank 0 has not answered yet),
/// and lose nothing: once the ranks are free every result arrives.
#[test]
fn timeouts_give_up_in_time_while_the_ranks_are_busy_and_lose_nothing() {
    let lines = lines_of(&mpirun("get-timeout"), 0);
    assert_eq!(
        lines,
        [
            "running: the result did not arrive in time",
            "queued: the result did not arrive in time",
            "queued wait_timeout: false, ready: false",
            r#"imap next_timeout: Some("the result did not arrive in time")"#,
            "then: 16, pids differ: true",
            "imap then: [0, 1, 4]",
            "get_timeout of a finished call: Ok(16)",
        ]
    );
}

/// The executor over MPI gives the local executor's results, in order; a panicking task
/// fails its own future and the next call runs; done callbacks, `as_completed` and `wait`
/// take its futures.
#[test]
fn the_mpi_executor_gives_the_local_executors_results() {
    let lines = lines_of(&mpirun("executor"), 0);
    assert_eq!(
        lines,
        [
            "submit: same as the local pool",
            "map: same as the local pool",
            "map_with(7, 60 s): same as the local pool",
            "map with an Err: same as the local pool",
            "map chunksize 0: same as the local pool",
            "panic: is a task error: true",
            "panic: exception is the same: true",
            "after the panic: 36",
            "finished future: done true, running false, cancelled false",
            "callback: Some(441)",
            "as_completed: [0, 1, 4, 9, 16, 25]",
            "wait: 2 done, 0 not done; first exception: 2 done",
            "submit after shutdown: same as the local pool",
            "executor: done",
        ]
    );
}

/// With both ranks held inside a task, a call still queued is cancelled (its callback runs,
/// its result is `Cancelled`) while a running one is not; `shutdown(cancel_futures)` cancels
/// every queued call, and the running ones still finish.
#[test]
fn the_mpi_executor_cancels_only_calls_no_rank_was_given() {
    let lines = lines_of(&mpirun("executor-cancel"), 0);
    assert_eq!(
        lines,
        [
            "queued: running false, done false",
            "busy: running true, cancel false",
            "result_timeout of a busy one: the result did not arrive in time",
            "cancel: true",
            "cancelled: true, done true, result: the task was cancelled, callback saw cancelled: true",
            "cancel again: true",
            r#"shutdown(cancel_futures): ["the task was cancelled", "the task was cancelled", "the task was cancelled"]"#,
            "submit after shutdown: Pool not running",
            "the busy ones then: 2 results",
            "executor-cancel: done",
        ]
    );
}
