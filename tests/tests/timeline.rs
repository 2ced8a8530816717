//! `--timeline` on every lesson, read as Perfetto would read it (issue 24), and drawn as a
//! learner reads it.
//!
//! - Every lesson binary's `--timeline=FILE.json` trace, under fork, spawn and forkserver,
//!   passes [`perfetto_problems`]: the rules of Perfetto's JSON importer, applied here because
//!   its `trace_processor` cannot be installed on a machine without its download site.
//! - A thread has a track of its own: `lesson04-joinable-threads`'s worker thread, the pool's
//!   helper threads in lesson 06.
//! - The drawing keeps a printed line whole at any width, and shows the threads and the pool's
//!   tasks.

use std::path::PathBuf;

use lesson_tests::timeline::{check_drawing_width, perfetto_problems, printed_lines};
use lesson_tests::{Lesson, Run, StartMethod, run_with, run_with_env};
use serde_json::Value;

const METHODS: [StartMethod; 3] = [
    StartMethod::Fork,
    StartMethod::Spawn,
    StartMethod::Forkserver,
];

static LESSON01: Lesson = Lesson::new("lesson01-processes", "lesson01-processes");
static LESSON02: Lesson = Lesson::new("lesson02-queue", "lesson02-queue");
static LESSON02_TWO: Lesson = Lesson::new("lesson02-queue", "lesson02-queue-two-processes");
static LESSON03: Lesson = Lesson::new("lesson03-pipe", "lesson03-pipe");
static LESSON04: Lesson = Lesson::new("lesson04-joinable", "lesson04-joinable");
static LESSON04_THREADS: Lesson = Lesson::new("lesson04-joinable", "lesson04-joinable-threads");
static LESSON05: Lesson = Lesson::new("lesson05-value", "lesson05-value");
static LESSON06: Lesson = Lesson::new("lesson06-pool", "lesson06-pool");
static LESSON07: Lesson = Lesson::new("lesson07-shared-memory", "lesson07-shared-memory");
static LESSON08: Lesson = Lesson::new("lesson08-manager", "lesson08-manager");

/// Runs `lesson` under `method` with `--timeline=FILE.json`; the run and its trace.
fn traced(lesson: &Lesson, method: StartMethod) -> (Run, Value) {
    let path: PathBuf = std::env::temp_dir().join(format!(
        "timeline-{}-{}-{}.json",
        lesson.path().file_name().unwrap().to_string_lossy(),
        method.name(),
        std::process::id()
    ));
    let run = run_with(
        lesson.path(),
        method,
        &[&format!("--timeline={}", path.display())],
    );
    assert!(run.output.status.success(), "{run:?}");
    let text = std::fs::read_to_string(&path).expect("the trace was written");
    let _ = std::fs::remove_file(&path);
    let trace = serde_json::from_str(&text).expect("the trace is JSON");
    (run, trace)
}

/// Every trace of `lesson`, under each start method, is one Perfetto takes whole.
fn perfetto_takes_every_trace_of(lesson: &Lesson) {
    for method in METHODS {
        let (run, trace) = traced(lesson, method);
        let problems = perfetto_problems(&trace);
        assert!(
            problems.is_empty(),
            "{} under {}: Perfetto's importer would drop or misread:\n{}\n--- trace ---\n{trace}",
            lesson.path().display(),
            method.name(),
            problems.join("\n"),
        );
        assert_eq!(run.output.stderr, b"", "{run:?}");
    }
}

#[test]
fn perfetto_takes_lesson01_whole() {
    perfetto_takes_every_trace_of(&LESSON01);
}

#[test]
fn perfetto_takes_lesson02_whole() {
    perfetto_takes_every_trace_of(&LESSON02);
    perfetto_takes_every_trace_of(&LESSON02_TWO);
}

#[test]
fn perfetto_takes_lesson03_whole() {
    perfetto_takes_every_trace_of(&LESSON03);
}

#[test]
fn perfetto_takes_lesson04_whole() {
    perfetto_takes_every_trace_of(&LESSON04);
    perfetto_takes_every_trace_of(&LESSON04_THREADS);
}

#[test]
fn perfetto_takes_lesson05_whole() {
    perfetto_takes_every_trace_of(&LESSON05);
}

#[test]
fn perfetto_takes_lesson06_whole() {
    perfetto_takes_every_trace_of(&LESSON06);
}

#[test]
fn perfetto_takes_lesson07_whole() {
    perfetto_takes_every_trace_of(&LESSON07);
}

#[test]
fn perfetto_takes_lesson08_whole() {
    perfetto_takes_every_trace_of(&LESSON08);
}

/// The events of `trace` other than metadata.
fn events(trace: &Value) -> impl Iterator<Item = &Value> {
    trace["traceEvents"]
        .as_array()
        .expect("traceEvents")
        .iter()
        .filter(|event| event["ph"] != "M")
}

/// The name `trace` gives thread `tid` of process `pid`.
fn thread_name(trace: &Value, pid: u64, tid: u64) -> Option<&str> {
    trace["traceEvents"].as_array()?.iter().find_map(|event| {
        (event["ph"] == "M"
            && event["name"] == "thread_name"
            && event["pid"] == pid
            && event["tid"] == tid)
            .then(|| event["args"]["name"].as_str())
            .flatten()
    })
}

#[test]
fn the_worker_thread_of_lesson04_has_a_track_with_its_gets_and_task_dones() {
    // A thread starts no process: the start method changes nothing; one run is enough.
    let (run, trace) = traced(&LESSON04_THREADS, StartMethod::Fork);
    let pid = u64::from(run.pid);
    let start = events(&trace)
        .find(|event| {
            event["name"]
                .as_str()
                .is_some_and(|name| name.starts_with("start() → Thread-1"))
        })
        .expect("the main thread's start() of Thread-1");
    let worker = start["args"]["thread"].as_u64().expect("its TID");
    assert_eq!(
        (start["pid"].as_u64(), start["tid"].as_u64()),
        (Some(pid), Some(pid))
    );
    assert_ne!(
        worker, pid,
        "the worker is another thread than the main one"
    );
    assert!(
        thread_name(&trace, pid, worker).is_some_and(|name| name.starts_with("Thread-1")),
        "{trace}"
    );
    let on_worker = |name: &str| {
        events(&trace)
            .filter(|event| event["pid"] == pid && event["tid"] == worker && event["name"] == name)
            .count()
    };
    // The worker takes the three tasks and marks each done; its fourth get never returns
    // (it is a daemon, blocked when the process ends), so it is not in the trace.
    assert_eq!(
        (on_worker("get"), on_worker("task_done")),
        (3, 3),
        "{trace}"
    );
    let on_main = |name: &str| {
        events(&trace)
            .filter(|event| event["pid"] == pid && event["tid"] == pid && event["name"] == name)
            .count()
    };
    assert_eq!((on_main("put"), on_main("queue.join")), (3, 1), "{trace}");
}

#[test]
fn the_pools_helper_threads_record_on_tracks_of_their_own() {
    let (run, trace) = traced(&LESSON06, StartMethod::Fork);
    let pid = u64::from(run.pid);
    // The main thread calls pool.map (and puts its work and wake-ups on the pool's queues);
    // the results are read by the pool's helper threads, on tracks of their own, not inside
    // pool.map on the main thread's track.
    let on_main_thread = |name: &str| {
        events(&trace)
            .filter(|event| event["pid"] == pid && event["tid"] == pid && event["name"] == name)
            .count()
    };
    assert_eq!(on_main_thread("pool.map"), 1, "{trace}");
    assert_eq!(on_main_thread("get"), 0, "{trace}");
    let helpers: Vec<u64> = events(&trace)
        .filter(|event| event["pid"] == pid && event["tid"] != pid && event["name"] == "get")
        .filter_map(|event| event["tid"].as_u64())
        .collect();
    assert!(
        !helpers.is_empty(),
        "the pool's results are read by a helper thread: {trace}"
    );
    for tid in helpers {
        assert!(
            thread_name(&trace, pid, tid).is_some(),
            "thread {tid} unnamed: {trace}"
        );
    }
    // Each chunk of the map ran as a task in a worker process.
    let tasks = events(&trace)
        .filter(|event| {
            event["name"]
                .as_str()
                .is_some_and(|name| name.starts_with("task: chunk"))
        })
        .filter(|event| event["pid"] != pid)
        .count();
    assert!(tasks > 0, "{trace}");
}

/// Runs `lesson` under fork with `--timeline`, `columns` wide.
fn drawn(lesson: &Lesson, columns: usize) -> (Run, String) {
    let columns = columns.to_string();
    let run = run_with_env(
        lesson.path(),
        StartMethod::Fork,
        &["--timeline"],
        &[("COLUMNS", &columns)],
    );
    assert!(run.output.status.success(), "{run:?}");
    let drawing = String::from_utf8_lossy(&run.output.stderr).into_owned();
    (run, drawing)
}

#[test]
fn at_160_columns_lesson02s_second_listing_draws_the_producers_pid_whole() {
    let (run, drawing) = drawn(&LESSON02_TWO, 160);
    let transcript = run.transcript_with_stderr();
    check_drawing_width(&run, &transcript, 3, 160);
    let read: Vec<&String> = transcript
        .lines()
        .iter()
        .filter(|line| line.starts_with("Mensagem lida: Mensagem do processo "))
        .collect();
    assert_eq!(read.len(), 1, "{drawing}");
    for line in read {
        // Whole on one row: no continuation needed at this width.
        assert!(
            drawing
                .lines()
                .any(|row| row.ends_with(&format!("» {line}"))),
            "`{line}` is not whole on its row:\n{drawing}"
        );
    }
}

#[test]
fn a_narrow_drawing_wraps_printed_lines_and_cuts_none() {
    for lesson in [&LESSON02_TWO, &LESSON03] {
        let (run, drawing) = drawn(lesson, 50);
        let transcript = run.transcript_with_stderr();
        assert!(
            drawing.lines().all(|line| line.chars().count() <= 50),
            "{drawing}"
        );
        let mut printed = printed_lines(&drawing);
        let mut lines = transcript.lines().to_vec();
        printed.sort();
        lines.sort();
        assert_eq!(printed, lines, "{drawing}");
    }
}

#[test]
fn lesson04s_threads_have_a_column_each() {
    let (run, drawing) = drawn(&LESSON04_THREADS, 100);
    let header = drawing.lines().nth(1).expect("the header's first line");
    assert!(header.contains(&format!("PID {}", run.pid)), "{drawing}");
    assert!(
        header.contains("TID "),
        "the worker thread's column:\n{drawing}"
    );
    assert!(
        drawing
            .lines()
            .nth(2)
            .is_some_and(|names| names.contains("Thread-1")),
        "{drawing}"
    );
}

#[test]
fn lesson06_is_drawn_as_tasks_without_the_pools_queues() {
    let (run, drawing) = drawn(&LESSON06, 100);
    let transcript = run.transcript_with_stderr();
    check_drawing_width(&run, &transcript, 3, 100);
    assert!(drawing.contains("tarefa (bloco 1)"), "{drawing}");
    assert!(
        !drawing.contains("get(fila") && !drawing.contains("put(fila"),
        "{drawing}"
    );
}

static PRIMITIVES: Lesson = Lesson::example("shared", "timeline_primitives");

#[test]
fn every_recorded_primitive_is_in_the_trace_on_its_threads_track() {
    let path =
        std::env::temp_dir().join(format!("timeline-primitives-{}.json", std::process::id()));
    let run = run_with(
        PRIMITIVES.path(),
        StartMethod::Fork,
        &[path.to_str().unwrap()],
    );
    assert!(run.output.status.success(), "{run:?}");
    let text = std::fs::read_to_string(&path).expect("the trace was written");
    let _ = std::fs::remove_file(&path);
    let trace: Value = serde_json::from_str(&text).expect("JSON");
    assert_eq!(perfetto_problems(&trace), Vec::<String>::new(), "{trace}");
    let main = u64::from(run.pid);
    let start = |prefix: &str| {
        events(&trace)
            .find(|event| {
                event["name"]
                    .as_str()
                    .is_some_and(|name| name.starts_with(prefix))
            })
            .unwrap_or_else(|| panic!("no {prefix}: {trace}"))
    };
    let child = start("start() → PID")["args"]["child"].as_u64().unwrap();
    let thread = start("start() → Thread-")["args"]["thread"]
        .as_u64()
        .unwrap();
    let on = |pid: u64, tid: u64, name: &str| {
        events(&trace)
            .any(|event| event["pid"] == pid && event["tid"] == tid && event["name"] == name)
    };
    for (pid, tid, name) in [
        (main, main, "RLock.acquire"),
        (main, main, "RLock.release"),
        (child, child, "Semaphore.acquire"),
        (child, child, "Semaphore.release"),
        (child, child, "Barrier.wait"),
        (main, main, "Barrier.wait"),
        (main, main, "Event.wait"),
        (main, thread, "Event.set"),
        (main, thread, "Condition.wait"),
        (main, main, "Condition.notify"),
        (main, main, "put"),
        (main, thread, "get"),
    ] {
        assert!(on(pid, tid, name), "no {name} on ({pid}, {tid}): {trace}");
    }
    assert!(
        events(&trace).any(|event| event["ph"] == "f" && event["tid"] == thread),
        "the ThreadQueue item's arrow ends on the thread's track: {trace}"
    );
    assert!(
        events(&trace).any(|event| event["name"] == format!("join(TID {thread})")),
        "{trace}"
    );
}
