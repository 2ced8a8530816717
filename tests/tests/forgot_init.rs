//! `shared::init()` forgotten under spawn: the spawned child runs `main` again and must fail at
//! `start()` with `ProcessError::MissingInit`, not start a child of its own (and so on forever).
//! Under forkserver the server runs `main` again instead of serving, and fails the same way.
//! Run as a lesson, in a process group of its own, so that a chain would be killed, not leaked.

use lesson_tests::{Lesson, StartMethod};

static FORGOT_INIT: Lesson = Lesson::example("shared", "forgot_init");

fn pid_after(prefix: &str, line: &str) -> u32 {
    line.strip_prefix(prefix)
        .and_then(|pid| pid.parse().ok())
        .unwrap_or_else(|| panic!("expected `{prefix}PID`, got {line:?}"))
}

#[test]
fn a_spawned_child_without_init_fails_at_start_instead_of_starting_a_chain() {
    // The example sets spawn itself; it never reads --start-method, having no init().
    let run = FORGOT_INIT.run(StartMethod::Spawn);
    let stdout = String::from_utf8(run.output.stdout).unwrap();
    let stderr = String::from_utf8(run.output.stderr).unwrap();
    assert!(
        run.output.status.success(),
        "stdout:\n{stdout}\nstderr:\n{stderr}"
    );

    // The parent prints before start(); the child prints when its main runs; the parent
    // prints the exit code after join(). Exactly one child ran main: no chain.
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 3, "stdout:\n{stdout}");
    assert_eq!(pid_after("main ", lines[0]), run.pid);
    let child = pid_after("main ", lines[1]);
    assert_ne!(child, run.pid, "the second main must be another process");
    assert_eq!(
        lines[2], "exitcode Some(1)",
        "the child must fail with exit code 1"
    );

    assert_eq!(
        stderr
            .matches("call shared::init()? first thing in main")
            .count(),
        1,
        "the child must say what is missing, once:\n{stderr}"
    );
}

#[test]
fn a_forkserver_without_init_fails_and_so_does_the_start_that_needed_it() {
    let run = FORGOT_INIT.run(StartMethod::Forkserver);
    let stdout = String::from_utf8(run.output.stdout).unwrap();
    let stderr = String::from_utf8(run.output.stderr).unwrap();
    assert_eq!(
        run.output.status.code(),
        Some(1),
        "start() fails, so main returns its error\nstdout:\n{stdout}\nstderr:\n{stderr}"
    );

    // The parent prints before start(); the server, a fresh run, prints when its main runs,
    // then fails at its own start() (the default there is spawn: it has no command line to
    // read). Nobody starts anything further, and the parent never reaches its last line.
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 2, "stdout:\n{stdout}");
    assert_eq!(pid_after("main ", lines[0]), run.pid);
    assert_ne!(pid_after("main ", lines[1]), run.pid);

    assert!(
        stderr.contains("forkserver ran main instead of serving"),
        "the parent must say why its start failed:\n{stderr}"
    );
    assert_eq!(
        stderr
            .matches("call shared::init()? first thing in main")
            .count(),
        2,
        "the server and the parent each say what is missing:\n{stderr}"
    );
}
