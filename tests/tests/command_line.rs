//! Every lesson reads its command line through `shared::lesson::init()`: `--help` explains it in
//! Portuguese, and anything it does not understand stops the lesson with exit code 2 before it
//! runs, so a learner never believes an option was taken when it was not.

use std::process::{Command, Output};

use lesson_tests::{Lesson, TIMEOUT};

static LESSON: Lesson = Lesson::new("lesson01-processes", "lesson01-processes");

fn run(args: &[&str]) -> Output {
    let mut command = Command::new(LESSON.path());
    command.args(args).env_remove("CARGO_PKG_DESCRIPTION");
    assert_cmd::Command::from_std(command)
        .timeout(TIMEOUT)
        .output()
        .expect("run the lesson")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn help_prints_the_usage_and_runs_nothing() {
    for flag in ["--help", "-h"] {
        let output = run(&[flag]);
        assert_eq!(output.status.code(), Some(0), "{flag}: {output:?}");
        let stdout = text(&output.stdout);
        assert!(
            stdout.starts_with(
                "Uso: lesson01-processes [--start-method fork|spawn|forkserver]\n\
                 \x20                       [--timeline[=ARQUIVO.json]]\n"
            ),
            "{stdout}"
        );
        assert!(
            stdout.contains("--start-method fork|spawn|forkserver")
                && stdout.contains("--timeline=ARQUIVO.json")
                && stdout.contains("-h, --help")
        );
        assert!(
            !stdout.contains("Processo principal"),
            "the lesson ran:\n{stdout}"
        );
        assert!(output.stderr.is_empty(), "{}", text(&output.stderr));
    }
}

#[test]
fn under_cargo_run_the_usage_says_what_the_lesson_shows() {
    let mut command = Command::new(LESSON.path());
    // What `cargo run` sets from the package's Cargo.toml.
    command
        .arg("--help")
        .env("CARGO_PKG_DESCRIPTION", "Lição 01, criando processos.");
    let output = assert_cmd::Command::from_std(command)
        .timeout(TIMEOUT)
        .output()
        .unwrap();
    assert!(text(&output.stdout).contains("\nLição 01, criando processos.\n"));
}

#[test]
fn anything_else_is_an_error_naming_it_with_exit_code_2() {
    let cases: &[(&[&str], &str)] = &[
        (&["--verbose"], "argumento desconhecido `--verbose`"),
        (&["-v"], "argumento desconhecido `-v`"),
        (&["spawn"], "quis dizer `--start-method spawn`?"),
        (&["--start-method"], "`--start-method` precisa de um valor"),
        (&["--start-method="], "valor vazio"),
        (
            &["--start-method", "forkk"],
            "método de início desconhecido `forkk`",
        ),
        (&["--help=sim"], "não aceita valor"),
    ];
    for (args, message) in cases {
        let output = run(args);
        let stderr = text(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(output.stdout.is_empty(), "{args:?}: the lesson ran");
        assert!(
            stderr.contains(message),
            "{args:?} should say {message:?}:\n{stderr}"
        );
        assert!(
            stderr.contains("--help"),
            "{args:?} should point to --help:\n{stderr}"
        );
    }
}

#[test]
fn both_spellings_of_the_start_method_run_the_lesson() {
    for args in [&["--start-method", "spawn"][..], &["--start-method=fork"]] {
        let output = run(args);
        assert!(output.status.success(), "{args:?}: {output:?}");
        assert!(text(&output.stdout).starts_with("Processo principal "));
    }
}

#[test]
fn a_timeline_file_that_cannot_be_created_stops_the_lesson_before_it_runs() {
    let output = run(&["--timeline=/nonexistent/dir/x.json"]);
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(
        output.stdout.is_empty(),
        "the lesson ran:\n{}",
        text(&output.stdout)
    );
    assert!(
        stderr.contains("--timeline: não consigo criar o arquivo /nonexistent/dir/x.json"),
        "{stderr}"
    );
}

#[test]
fn a_lesson_whose_reader_went_away_stops_quietly() {
    use std::io::{BufRead, BufReader};
    use std::process::Stdio;
    use std::time::Instant;

    // `| head -2` on lesson 04: its daemonic worker dies on the broken pipe before its
    // `task_done()`, so without help the main process would wait in `queue.join()` for ever.
    let lesson = Lesson::new("lesson04-joinable", "lesson04-joinable");
    let mut child = Command::new(lesson.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the lesson");
    let mut stdout = BufReader::new(child.stdout.take().expect("piped"));
    for _ in 0..2 {
        let mut line = String::new();
        stdout.read_line(&mut line).expect("a line");
        assert!(!line.is_empty(), "the lesson ended before its second line");
    }
    drop(stdout);
    let deadline = Instant::now() + TIMEOUT;
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("the lesson still runs {TIMEOUT:?} after its reader went away");
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().expect("piped"), &mut stderr).unwrap();
    assert!(!status.success(), "{status:?}");
    assert!(stderr.is_empty(), "the lesson printed on stderr:\n{stderr}");
}
