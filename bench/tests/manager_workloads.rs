//! The manager workloads run as the harness starts them (`bench workload manager WHAT
//! COUNT`) and print their one result line; an unknown WHAT is an error, not a figure.

use std::process::Command;

fn workload(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_bench"))
        .arg("workload")
        .args(args)
        .output()
        .expect("run the bench binary")
}

#[test]
fn small_runs_of_the_manager_workloads_print_their_result_line() {
    for what in ["set", "get", "update", "start_stop"] {
        let output = workload(&["manager", what, "3"]);
        let line = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success() && line.starts_with("elapsed_s=") && line.contains(" ops="),
            "bench workload manager {what} 3: {line:?}, {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    assert!(!workload(&["manager", "nada", "3"]).status.success());
}
