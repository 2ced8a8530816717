//! Checks of a lesson run with `--timeline` (issue 16, item 6): the JSON trace and the
//! drawing, each against the run's own stdout. [`check_timeline!`](crate::check_timeline)
//! makes the tests of one binary, under every start method (fork, spawn and forkserver).
//!
//! What is asserted, and why it is forced:
//! - the trace parses, and has one `pid` per process the lesson started plus the main one
//!   (the count is the lesson's: its code starts that many);
//! - every started child has a start record by its parent, an exit (its own, or its reaping
//!   by the parent) and a first record of its own, unless a signal killed it: a pool's
//!   `terminate` may kill a worker that has not reached its first moment yet (one started
//!   by spawn, slow under load, after the other did all the work);
//! - every printed line appears exactly once as a `print` event, and a line that says who
//!   prints it (`Processo principal P …`, `Processo P iniciado`, `finalizado`, `ouviu:`,
//!   `concluiu:`) is an event of process P;
//! - a `join` of child C returns after C's exit and after every other event of C;
//! - a `get` that returned an item comes after the `put` of that item: the item's number in
//!   its queue ties them, and the moment the item was placed precedes the moment it was found.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use serde_json::Value;

use crate::{Run, StartMethod, Transcript};

/// One trace event, read from the JSON.
struct TraceEvent<'a> {
    json: &'a Value,
    name: &'a str,
    phase: &'a str,
    pid: u32,
    ts: f64,
    dur: f64,
}

impl<'a> TraceEvent<'a> {
    fn read(json: &'a Value) -> Option<TraceEvent<'a>> {
        Some(TraceEvent {
            json,
            name: json["name"].as_str()?,
            phase: json["ph"].as_str()?,
            pid: u32::try_from(json["pid"].as_u64()?).ok()?,
            ts: json["ts"].as_f64().unwrap_or(0.0),
            dur: json["dur"].as_f64().unwrap_or(0.0),
        })
    }

    fn end(&self) -> f64 {
        self.ts + self.dur
    }

    fn arg_u64(&self, name: &str) -> Option<u64> {
        self.json["args"][name].as_u64()
    }
}

/// Checks the trace at `json_path`, written by `run`, whose stdout is `transcript`, of a
/// lesson that starts `processes` processes in all (the main one included).
#[track_caller]
pub fn check_json(run: &Run, transcript: &Transcript, json_path: &Path, processes: usize) {
    let text = std::fs::read_to_string(json_path).unwrap_or_else(|error| {
        transcript.fail(&format!("no trace at {}: {error}", json_path.display()))
    });
    let json: Value = serde_json::from_str(&text)
        .unwrap_or_else(|error| transcript.fail(&format!("the trace is not JSON: {error}")));
    let events: Vec<TraceEvent> = json["traceEvents"]
        .as_array()
        .unwrap_or_else(|| transcript.fail("the trace has no traceEvents array"))
        .iter()
        .map(|event| {
            TraceEvent::read(event).unwrap_or_else(|| {
                transcript.fail(&format!("an event without name/ph/pid: {event}"))
            })
        })
        .collect();
    let fail =
        |message: String| -> ! { transcript.fail(&format!("{message}\n--- trace ---\n{text}")) };

    // Printed lines are instant events; calls that may block are complete events.
    for event in &events {
        let expected = match event.name {
            "print" => Some("i"),
            "put" | "get" | "send" | "recv" => Some("X"),
            name if name.starts_with("join(") => Some("X"),
            _ => None,
        };
        if expected.is_some_and(|phase| phase != event.phase) || !event.dur.is_finite() {
            fail(format!("event {} has phase {}", event.json, event.phase));
        }
    }

    // One pid per process: the main one and each child a `start` names.
    let children: Vec<u32> = events
        .iter()
        .filter(|event| event.name.starts_with("start()"))
        .filter_map(|event| event.arg_u64("child").map(|pid| pid as u32))
        .collect();
    let expected: BTreeSet<u32> = std::iter::once(run.pid)
        .chain(children.iter().copied())
        .collect();
    let seen: BTreeSet<u32> = events.iter().map(|event| event.pid).collect();
    if seen != expected || expected.len() != processes || children.len() + 1 != processes {
        fail(format!(
            "expected {processes} processes (main {} and the children its start() calls name, \
             {children:?}); the trace has the pids {seen:?}",
            run.pid
        ));
    }
    for pid in transcript.pids() {
        if !seen.contains(pid) {
            fail(format!("printed PID {pid} has no events"));
        }
    }
    for &child in &children {
        let has = |name: &str| {
            events
                .iter()
                .any(|event| event.pid == child && event.name.starts_with(name))
        };
        let killed = events.iter().any(|event| {
            event.pid == child
                && event.name == "reaped"
                && event.json["args"]["code"]
                    .as_i64()
                    .is_some_and(|code| code < 0)
        });
        if !(has("exit") || has("reaped")) || !(has("começa") || killed) {
            fail(format!("child {child} lacks its first record or its exit"));
        }
    }

    // Every printed line once, in its printer's column when the line says who printed it.
    let mut prints: BTreeMap<&str, Vec<u32>> = BTreeMap::new();
    for event in events.iter().filter(|event| event.name == "print") {
        let text = event.json["args"]["text"]
            .as_str()
            .unwrap_or_else(|| fail("a print event without args.text".to_owned()));
        prints.entry(text).or_default().push(event.pid);
    }
    let printed: usize = prints.values().map(Vec::len).sum();
    if printed != transcript.lines().len() {
        fail(format!(
            "{printed} print events for {} printed lines",
            transcript.lines().len()
        ));
    }
    for line in transcript.lines() {
        let printers = prints.get(line.as_str()).map_or(&[][..], Vec::as_slice);
        let [printer] = printers else {
            fail(format!("line `{line}` is {} print events", printers.len()));
        };
        if let Some(said) = printer_named(line)
            && said != *printer
        {
            fail(format!("line `{line}` is recorded as printed by {printer}"));
        }
    }

    // A join returns after the child's exit and everything else the child did.
    for join in events
        .iter()
        .filter(|event| event.name.starts_with("join("))
    {
        let child = join.arg_u64("child").unwrap_or(0) as u32;
        let last = events
            .iter()
            .filter(|event| event.pid == child)
            .map(TraceEvent::ts)
            .fold(f64::NEG_INFINITY, f64::max);
        let exited = events
            .iter()
            .any(|event| event.pid == child && (event.name == "exit" || event.name == "reaped"));
        if join.end() < last || !exited {
            fail(format!(
                "the join of {child} returned at {} µs, before its exit (last event at {last} µs)",
                join.end()
            ));
        }
    }

    // A get's item was put before it was found.
    let placed: BTreeMap<(u64, u64), f64> = events
        .iter()
        .filter(|event| event.name == "put" && event.arg_u64("item") != Some(0))
        .map(|event| {
            (
                (queue_item(event)),
                event.json["args"]["at_us"].as_f64().unwrap_or(f64::NAN),
            )
        })
        .collect();
    // (A get with item 0 found none: a timeout, or a look that found the queue empty.)
    for get in events
        .iter()
        .filter(|event| event.name == "get" && event.arg_u64("item") != Some(0))
    {
        let key = queue_item(get);
        let found = get.json["args"]["at_us"].as_f64().unwrap_or(f64::NAN);
        match placed.get(&key) {
            Some(&put) if put <= found => {}
            other => fail(format!(
                "the get of queue {} item {} found it at {found} µs; its put: {other:?}",
                key.0, key.1
            )),
        }
    }
}

impl TraceEvent<'_> {
    fn ts(&self) -> f64 {
        self.ts
    }
}

fn queue_item(event: &TraceEvent) -> (u64, u64) {
    (
        event.arg_u64("queue").unwrap_or(0),
        event.arg_u64("item").unwrap_or(0),
    )
}

/// The process a line says printed it: `Processo principal P …` is P (the main process), and
/// `Processo P iniciado`, `finalizado`, `ouviu: …`, `concluiu: …` are P. `None` for any other
/// line (`Processo P calculou …` is printed by the main process about a worker).
fn printer_named(line: &str) -> Option<u32> {
    if let Some(rest) = line.strip_prefix("Processo principal ") {
        return rest.split(' ').next()?.parse().ok();
    }
    let rest = line.strip_prefix("Processo ")?;
    let (pid, verb) = rest.split_once(' ')?;
    let own = ["iniciado", "finalizado"].contains(&verb)
        || verb.starts_with("ouviu:")
        || verb.starts_with("concluiu:");
    own.then(|| pid.parse().ok()).flatten()
}

/// Checks the drawing `run` wrote on stderr: at most 100 columns, no colour (stderr is a
/// pipe), its count of `processes`, every PID of the run, and every printed line, each once
/// (cut, with `…`, only where it did not fit).
#[track_caller]
pub fn check_drawing(run: &Run, transcript: &Transcript, processes: usize) {
    let drawing = String::from_utf8_lossy(&run.output.stderr);
    let fail = |message: String| -> ! {
        transcript.fail(&format!("{message}\n--- drawing ---\n{drawing}"))
    };
    let count = match processes {
        1 => "1 processo".to_owned(),
        n => format!("{n} processos"),
    };
    if !drawing.starts_with(&format!("Linha do tempo: {count};")) {
        fail(format!(
            "the drawing does not start with its {processes} processes"
        ));
    }
    if let Some(wide) = drawing.lines().find(|line| line.chars().count() > 100) {
        fail(format!("a line wider than 100 columns: `{wide}`"));
    }
    if drawing.contains('\x1b') {
        fail("colour codes on a stderr that is not a terminal".to_owned());
    }
    for pid in std::iter::once(&run.pid).chain(transcript.pids()) {
        if !drawing.contains(&format!("PID {pid}")) {
            fail(format!("PID {pid} is not in the drawing"));
        }
    }
    // The rows: a time in ms, ` │ `, the columns; a printed line's text follows `» `.
    let mut printed: Vec<&str> = drawing
        .lines()
        .filter(|line| {
            line.split_once(" │ ")
                .is_some_and(|(time, _)| time.trim().parse::<f64>().is_ok())
        })
        .filter_map(|line| line.split_once("» ").map(|(_, text)| text))
        .collect();
    for line in transcript.lines() {
        let fits = |shown: &&str| {
            *shown == line
                || shown
                    .strip_suffix('…')
                    .is_some_and(|cut| line.starts_with(cut))
        };
        match printed.iter().position(fits) {
            Some(index) => {
                printed.remove(index);
            }
            None => fail(format!("printed line `{line}` is not in the drawing")),
        }
    }
    if !printed.is_empty() {
        fail(format!(
            "the drawing shows lines nobody printed: {printed:?}"
        ));
    }
}

/// The timeline tests of one lesson binary that starts `processes` processes (the main one
/// included): under each start method, a run with `--timeline=FILE.json` (its stdout still
/// meets `guarantees`, its stderr is empty, its trace passes [`check_json`]) and a run with
/// `--timeline` (its stdout meets `guarantees`, its drawing passes [`check_drawing`]).
///
/// ```ignore
/// lesson_tests::check_timeline!("lesson01-processes", guarantees, processes = 2);
/// ```
#[macro_export]
macro_rules! check_timeline {
    ($bin:literal, $guarantees:path, processes = $processes:literal) => {
        #[test]
        fn timeline_json_fork() {
            $crate::timeline::json_run(
                env!(concat!("CARGO_BIN_EXE_", $bin)),
                $crate::StartMethod::Fork,
                $guarantees,
                $processes,
            );
        }

        #[test]
        fn timeline_json_spawn() {
            $crate::timeline::json_run(
                env!(concat!("CARGO_BIN_EXE_", $bin)),
                $crate::StartMethod::Spawn,
                $guarantees,
                $processes,
            );
        }

        #[test]
        fn timeline_json_forkserver() {
            $crate::timeline::json_run(
                env!(concat!("CARGO_BIN_EXE_", $bin)),
                $crate::StartMethod::Forkserver,
                $guarantees,
                $processes,
            );
        }

        #[test]
        fn timeline_drawing_fork() {
            $crate::timeline::drawing_run(
                env!(concat!("CARGO_BIN_EXE_", $bin)),
                $crate::StartMethod::Fork,
                $guarantees,
                $processes,
            );
        }

        #[test]
        fn timeline_drawing_spawn() {
            $crate::timeline::drawing_run(
                env!(concat!("CARGO_BIN_EXE_", $bin)),
                $crate::StartMethod::Spawn,
                $guarantees,
                $processes,
            );
        }

        #[test]
        fn timeline_drawing_forkserver() {
            $crate::timeline::drawing_run(
                env!(concat!("CARGO_BIN_EXE_", $bin)),
                $crate::StartMethod::Forkserver,
                $guarantees,
                $processes,
            );
        }
    };
}

/// Runs `bin` with `--timeline=FILE.json` under `method`: its stdout still meets
/// `guarantees`, its stderr is empty, and its trace passes [`check_json`].
#[track_caller]
pub fn json_run(bin: &str, method: StartMethod, guarantees: fn(&Transcript), processes: usize) {
    let name = Path::new(bin).file_name().map_or_else(
        || "lesson".into(),
        |name| name.to_string_lossy().into_owned(),
    );
    let path = std::env::temp_dir().join(format!(
        "{name}-{}-{}.json",
        method.name(),
        std::process::id()
    ));
    let argument = format!("--timeline={}", path.display());
    let run = crate::run_with(bin, method, &[&argument]);
    let transcript = run.transcript();
    guarantees(&transcript);
    check_json(&run, &transcript, &path, processes);
    let _ = std::fs::remove_file(&path);
}

/// Runs `bin` with `--timeline` under `method`: its stdout still meets `guarantees`, and its
/// drawing passes [`check_drawing`].
#[track_caller]
pub fn drawing_run(bin: &str, method: StartMethod, guarantees: fn(&Transcript), processes: usize) {
    let run = crate::run_with(bin, method, &["--timeline"]);
    let transcript = run.transcript_with_stderr();
    guarantees(&transcript);
    check_drawing(&run, &transcript, processes);
}

#[cfg(test)]
mod unit {
    use super::*;

    #[test]
    fn lines_that_name_their_printer() {
        assert_eq!(printer_named("Processo principal 7 inicializado"), Some(7));
        assert_eq!(printer_named("Processo 9 iniciado"), Some(9));
        assert_eq!(printer_named("Processo 9 ouviu: Olá"), Some(9));
        assert_eq!(printer_named("Processo 9 concluiu: Tarefa 1"), Some(9));
        assert_eq!(printer_named("Processo 9 calculou 3² = 9"), None);
        assert_eq!(printer_named("Mensagem lida: Mensagem do processo 9"), None);
    }
}
