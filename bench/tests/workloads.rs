//! The harness starts each Rust workload as `bench workload PROGRAM ARGS`: each must run there,
//! under every start method, and print its one result line. (The comparison itself is not run
//! by `cargo test`: it takes minutes and measures speed.)

use std::process::Command;

fn workload(args: &[&str]) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_bench"))
        .arg("workload")
        .args(args)
        .output()
        .expect("run the bench binary");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "bench workload {args:?} failed: {}\n{stdout}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

#[test]
fn small_runs_of_every_workload_print_their_result_line() {
    let runs: &[&[&str]] = &[
        &["start_join", "fork", "2"],
        &["start_join", "spawn", "2"],
        &["start_join", "forkserver", "2"],
        &["queue_str", "100"],
        &["queue_bytes", "1024", "10"],
        &["queue_2x2", "100"],
        &["pipe_pingpong", "objects", "10"],
        &["pipe_pingpong", "bytes", "10"],
        &["joinable", "10"],
        &["event_pingpong", "10"],
        &["joinable_threads", "10"],
        &["queue_pingpong", "10"],
        &["pool_map", "0", "100"],
        &["pool_map", "1", "20"],
        &["pool_startup", "2"],
        &["shm_create", "4096", "10"],
        &["executor_submit", "10"],
        &["executor_map", "20"],
        &["raw_pipe_pingpong", "10"],
        &["raw_fork", "2"],
        &["raw_exec", "2"],
    ];
    for args in runs {
        let line = workload(args);
        assert!(
            line.starts_with("elapsed_s=")
                && line.contains(" ops=")
                && line.contains(" maxrss_kib="),
            "bench workload {args:?} printed {line:?}"
        );
    }
}
