//! A program of its own that calls `shared::init()?` keeps its command line: `init` is only the
//! `__main__` guard, and arguments such as `input.txt --verbose -h` reach the program, while its
//! spawned and forkserved children still run their targets.

use std::process::Command;

use lesson_tests::{Lesson, TIMEOUT};

static OWN_ARGUMENTS: Lesson = Lesson::example("shared", "own_arguments");

#[test]
fn the_program_keeps_its_arguments_and_its_children_run_their_targets() {
    let mut command = Command::new(OWN_ARGUMENTS.path());
    command.args(["input.txt", "--verbose", "-h"]);
    let output = assert_cmd::Command::from_std(command)
        .timeout(TIMEOUT)
        .output()
        .expect("run the example");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "stdout:\n{stdout}\nstderr:\n{stderr}"
    );
    assert_eq!(
        stdout,
        "args [\"input.txt\", \"--verbose\", \"-h\"]\n\
         fork 42 Some(0)\n\
         spawn 42 Some(0)\n\
         forkserver 42 Some(0)\n",
        "stderr:\n{stderr}"
    );
    assert!(stderr.is_empty(), "{stderr}");
}
