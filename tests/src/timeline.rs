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
//!   its queue ties them, and the moment the item was placed precedes the moment it was found;
//! - Perfetto's JSON importer would take the trace whole ([`perfetto_problems`]).

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

    // What Perfetto's importer would drop or misread.
    let problems = perfetto_problems(&json);
    if !problems.is_empty() {
        fail(format!(
            "Perfetto's importer would drop or misread:\n{}",
            problems.join("\n")
        ));
    }

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

/// What Perfetto's JSON importer (`src/trace_processor/importers/json/`, its flow and slice
/// trackers) would drop or misread in `trace`, one line each; empty when it takes it whole.
/// The rules, as the importer applies them:
///
/// - `pid` and `tid` are numbers (a string is interned as a made-up id); every process that
///   has an event has a `process_name`, every thread track a `thread_name`.
/// - `ts` and `dur` are microseconds. The importer reads some as exact decimal text and some
///   as a `double` times 1000, truncated: both readings must give the same nanosecond.
/// - On one thread track, slices (`X`, `B`/`E`, and thread-scoped instants, of duration 0)
///   are taken in time order; a slice pops every open one that ended before it starts (or
///   exactly when, unless both are instants), and a slice that starts inside the open one and
///   ends after it is dropped (`slice_drop_overlapping_complete_event`). Two slices of a
///   track that start at the same nanosecond could be taken in either order, so none do.
/// - Flows (`s`/`f`): the `id` is a number (a string is read as hexadecimal, else dropped
///   as `flow_invalid_id`); an id starts once (`flow_duplicate_id`) and ends after it started
///   (`flow_end_without_start`); each end binds to the slice on top of its track's stack at
///   that moment (the stack is only popped when a slice starts), which must exist
///   (`flow_no_enclosing_slice`) and still be open; an `f` binds to it only with `"bp": "e"`.
///   Here a flow also leaves a `put` and arrives at a `get`.
/// - An instant's scope `s` is `t` (the default), `p` or `g`; `displayTimeUnit` is absent
///   (importers disagree on whether it scales `ts`).
pub fn perfetto_problems(trace: &Value) -> Vec<String> {
    let mut problems = Vec::new();
    if trace.get("displayTimeUnit").is_some() {
        problems.push("displayTimeUnit: some importers take it as the unit of ts".to_owned());
    }
    let Some(events) = trace["traceEvents"].as_array() else {
        return vec!["no traceEvents array".to_owned()];
    };
    let mut named_processes = BTreeSet::new();
    let mut named_threads = BTreeSet::new();
    let mut processes = BTreeSet::new();
    // Per thread track, in file order: slices and flow ends.
    let mut tracks: BTreeMap<(u32, u32), Vec<Item>> = BTreeMap::new();
    for event in events {
        let phase = event["ph"].as_str().unwrap_or("");
        let (Some(pid), Some(tid)) = (number_u32(&event["pid"]), number_u32(&event["tid"])) else {
            problems.push(format!("pid or tid is not a number below 2³²: {event}"));
            continue;
        };
        if phase == "M" {
            let name = event["args"]["name"].as_str().unwrap_or("");
            match event["name"].as_str() {
                Some("process_name") if !name.is_empty() => {
                    named_processes.insert(pid);
                }
                Some("thread_name") if !name.is_empty() => {
                    named_threads.insert((pid, tid));
                }
                _ => {}
            }
            continue;
        }
        processes.insert(pid);
        let Some(ts) = nanoseconds(&event["ts"]) else {
            problems.push(format!(
                "ts is no number that reads the same both ways: {event}"
            ));
            continue;
        };
        let name = event["name"].as_str().unwrap_or("").to_owned();
        let item = |kind, dur| Item {
            kind,
            ts,
            dur,
            name: name.clone(),
            json: event.to_string(),
        };
        let track = tracks.entry((pid, tid)).or_default();
        match phase {
            "X" => match nanoseconds(&event["dur"]) {
                Some(dur) => track.push(item(ItemKind::Slice, dur)),
                None => problems.push(format!(
                    "dur is no number that reads the same both ways: {event}"
                )),
            },
            "B" => track.push(item(ItemKind::Begin, 0)),
            "E" => track.push(item(ItemKind::End, 0)),
            "i" | "I" => match event.get("s").and_then(Value::as_str).unwrap_or("t") {
                "t" => track.push(item(ItemKind::Slice, 0)),
                "p" | "g" => {}
                other => problems.push(format!("instant of unknown scope {other}: {event}")),
            },
            "s" | "f" => {
                let Some(id) = event["id"].as_u64() else {
                    problems.push(format!(
                        "flow id is not a number (flow_invalid_id): {event}"
                    ));
                    continue;
                };
                if phase == "f" && event["bp"].as_str() != Some("e") {
                    problems.push(format!(
                        "flow end without \"bp\": \"e\" binds to the next slice: {event}"
                    ));
                }
                let key = format!("{}/{}/{id}", event["cat"], name);
                let kind = if phase == "s" {
                    ItemKind::FlowStart(key)
                } else {
                    ItemKind::FlowEnd(key)
                };
                track.push(item(kind, 0));
            }
            other => problems.push(format!(
                "phase {other} is not one this trace writes: {event}"
            )),
        }
    }
    for pid in processes.difference(&named_processes) {
        problems.push(format!("process {pid} has no process_name"));
    }
    for track in tracks
        .keys()
        .filter(|track| !named_threads.contains(*track))
    {
        problems.push(format!("thread {track:?} (pid, tid) has no thread_name"));
    }
    let mut flows = Vec::new();
    for (track, items) in &mut tracks {
        pair_begins_and_ends(track, items, &mut problems);
        check_track(track, items, &mut problems);
        flows.extend(
            items
                .iter()
                .filter(|item| matches!(item.kind, ItemKind::FlowStart(_) | ItemKind::FlowEnd(_))),
        );
    }
    check_flows(flows, &mut problems);
    problems
}

/// Each flow id starts once and ends after it started, in the whole trace's time order.
fn check_flows(mut flows: Vec<&Item>, problems: &mut Vec<String>) {
    flows.sort_by_key(|item| item.ts);
    let mut seen: BTreeMap<&str, (u64, bool)> = BTreeMap::new();
    for item in flows {
        match &item.kind {
            ItemKind::FlowStart(key) if seen.insert(key, (item.ts, false)).is_some() => {
                problems.push(format!(
                    "a flow id starts twice (flow_duplicate_id): {}",
                    item.json
                ));
            }
            ItemKind::FlowEnd(key) => match seen.get_mut(key.as_str()) {
                Some((start, ended)) if *start < item.ts && !*ended => *ended = true,
                _ => problems.push(format!(
                    "a flow ends without starting before (flow_end_without_start): {}",
                    item.json
                )),
            },
            _ => {}
        }
    }
}

/// One event of a thread track, in nanoseconds.
struct Item {
    kind: ItemKind,
    ts: u64,
    dur: u64,
    name: String,
    json: String,
}

#[derive(Clone, PartialEq, Eq)]
enum ItemKind {
    Slice,
    Begin,
    End,
    /// A flow's start or end, keyed by its category, name and id.
    FlowStart(String),
    FlowEnd(String),
}

/// Makes each `B` and the `E` that closes it one slice, as the importer nests them.
fn pair_begins_and_ends(track: &(u32, u32), items: &mut Vec<Item>, problems: &mut Vec<String>) {
    items.sort_by_key(|item| item.ts);
    let mut open: Vec<usize> = Vec::new();
    for index in 0..items.len() {
        match items[index].kind {
            ItemKind::Begin => open.push(index),
            ItemKind::End => match open.pop() {
                Some(begin) => {
                    items[begin].dur = items[index].ts - items[begin].ts;
                    items[begin].kind = ItemKind::Slice;
                }
                None => problems.push(format!(
                    "{track:?}: an E without its B: {}",
                    items[index].json
                )),
            },
            _ => {}
        }
    }
    for index in open {
        problems.push(format!("{track:?}: a B never ended: {}", items[index].json));
    }
    items.retain(|item| !matches!(item.kind, ItemKind::End | ItemKind::Begin));
}

/// The slice tracker's stack over one track, and the flow ends bound on it.
fn check_track(track: &(u32, u32), items: &[Item], problems: &mut Vec<String>) {
    let mut stack: Vec<&Item> = Vec::new();
    let mut last_start: Option<&Item> = None;
    for item in items {
        match &item.kind {
            ItemKind::Slice => {
                if let Some(last) = last_start
                    && last.ts == item.ts
                    && last.dur > 0
                    && item.dur > 0
                {
                    problems.push(format!(
                        "{track:?}: two slices start at {} ns, in no certain order: {} and {}",
                        item.ts, last.json, item.json
                    ));
                }
                last_start = Some(item);
                while let Some(top) = stack.last() {
                    let end = top.ts + top.dur;
                    let both_instants = top.dur == 0 && item.dur == 0;
                    if end < item.ts || (end == item.ts && !both_instants) {
                        stack.pop();
                    } else {
                        break;
                    }
                }
                if let Some(top) = stack.last() {
                    let end = top.ts + top.dur;
                    if item.ts < end && item.ts + item.dur > end {
                        problems.push(format!(
                            "{track:?}: a slice starts inside another and ends after it \
                             (slice_drop_overlapping_complete_event): {} overlaps {}",
                            item.json, top.json
                        ));
                        continue;
                    }
                }
                stack.push(item);
            }
            ItemKind::FlowStart(_) | ItemKind::FlowEnd(_) => {
                let starts = matches!(item.kind, ItemKind::FlowStart(_));
                let expected = if starts { "put" } else { "get" };
                match stack.last() {
                    None => problems.push(format!(
                        "{track:?}: no slice for the flow to bind to (flow_no_enclosing_slice): {}",
                        item.json
                    )),
                    Some(top) if !(top.ts < item.ts && item.ts <= top.ts + top.dur) => {
                        problems.push(format!(
                            "{track:?}: the flow binds to {}, which is not open at {} ns: {}",
                            top.json, item.ts, item.json
                        ));
                    }
                    Some(top) if top.name != expected => problems.push(format!(
                        "{track:?}: the flow binds to a {}, not a {expected}: {}",
                        top.name, item.json
                    )),
                    Some(_) => {}
                }
            }
            ItemKind::Begin | ItemKind::End => {}
        }
    }
}

/// A JSON number that is a `u32`: what the importer takes as a `pid` or `tid`.
fn number_u32(value: &Value) -> Option<u32> {
    value.as_u64().and_then(|number| u32::try_from(number).ok())
}

/// The nanoseconds of a time in microseconds, if the importer's two readings agree: the
/// `double` times 1000, truncated, and the decimal text with its first three decimals.
fn nanoseconds(value: &Value) -> Option<u64> {
    if let Some(whole) = value.as_u64() {
        return whole.checked_mul(1000);
    }
    let double = value.as_f64().filter(|us| us.is_finite() && *us >= 0.0)?;
    let as_double = (double * 1000.0) as u64;
    // Rust writes the shortest text that reads back as the same double, as `serde_json` does.
    let text = format!("{double}");
    let (whole, decimals) = text.split_once('.').unwrap_or((&text, ""));
    let decimals: String = decimals.chars().chain("000".chars()).take(3).collect();
    let as_text: u64 = format!("{whole}{decimals}").parse().ok()?;
    (as_double == as_text).then_some(as_text)
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

/// Checks the drawing `run` wrote on stderr, at the default width of 100 columns: see
/// [`check_drawing_width`].
#[track_caller]
pub fn check_drawing(run: &Run, transcript: &Transcript, processes: usize) {
    check_drawing_width(run, transcript, processes, 100);
}

/// Checks the drawing `run` wrote on stderr when asked for `width` columns: no line wider, no
/// colour (stderr is a pipe), its count of `processes`, every PID of the run, and every
/// printed line whole, each once (a text longer than its row goes on in the rows below it).
#[track_caller]
pub fn check_drawing_width(run: &Run, transcript: &Transcript, processes: usize, width: usize) {
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
    if let Some(wide) = drawing.lines().find(|line| line.chars().count() > width) {
        fail(format!("a line wider than {width} columns: `{wide}`"));
    }
    if drawing.contains('\x1b') {
        fail("colour codes on a stderr that is not a terminal".to_owned());
    }
    for pid in std::iter::once(&run.pid).chain(transcript.pids()) {
        if !drawing.contains(&format!("PID {pid}")) {
            fail(format!("PID {pid} is not in the drawing"));
        }
    }
    let mut printed = printed_lines(&drawing);
    for line in transcript.lines() {
        match printed.iter().position(|shown| shown == line) {
            Some(index) => {
                printed.remove(index);
            }
            None => fail(format!("printed line `{line}` is not whole in the drawing")),
        }
    }
    if !printed.is_empty() {
        fail(format!(
            "the drawing shows lines nobody printed: {printed:?}"
        ));
    }
}

/// The printed lines a drawing shows, each joined from its row and the rows that continue
/// it. A row is a time in ms, ` │ `, the columns; a printed line's text follows `» `; a
/// continuation has no time, and goes on where the text began.
pub fn printed_lines(drawing: &str) -> Vec<String> {
    let is_row = |line: &str| {
        line.split_once(" │ ")
            .is_some_and(|(time, _)| time.trim().parse::<f64>().is_ok())
    };
    let is_continuation = |line: &str| {
        line.split_once(" │ ")
            .is_some_and(|(time, _)| time.trim().is_empty())
    };
    let lines: Vec<&str> = drawing.lines().collect();
    let mut printed = Vec::new();
    for (index, line) in lines.iter().enumerate() {
        if !is_row(line) {
            continue;
        }
        let chars: Vec<char> = line.chars().collect();
        let Some(mark) = chars.windows(2).position(|pair| pair == ['»', ' ']) else {
            continue;
        };
        let mut text: String = chars[mark + 2..].iter().collect();
        for next in lines[index + 1..]
            .iter()
            .take_while(|next| is_continuation(next))
        {
            text.extend(next.chars().skip(mark + 2));
        }
        printed.push(text);
    }
    printed
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

/// Runs `bin` with `--timeline`, 100 columns wide, under `method`: its stdout still meets
/// `guarantees`, and its drawing passes [`check_drawing`].
#[track_caller]
pub fn drawing_run(bin: &str, method: StartMethod, guarantees: fn(&Transcript), processes: usize) {
    // The width asked for, whatever the terminal or the environment of the tests says.
    let run = crate::run_with_env(bin, method, &["--timeline"], &[("COLUMNS", "100")]);
    let transcript = run.transcript_with_stderr();
    guarantees(&transcript);
    check_drawing(&run, &transcript, processes);
}

#[cfg(test)]
mod unit {
    use super::*;

    fn problems(events: Value) -> Vec<String> {
        perfetto_problems(&serde_json::json!({ "traceEvents": events }))
    }

    fn names(pid: u32, tids: &[u32]) -> Vec<Value> {
        let mut names = vec![serde_json::json!({
            "ph": "M", "name": "process_name", "pid": pid, "tid": pid, "args": { "name": "p" },
        })];
        for tid in tids {
            names.push(serde_json::json!({
                "ph": "M", "name": "thread_name", "pid": pid, "tid": tid, "args": { "name": "t" },
            }));
        }
        names
    }

    fn with_names(tids: &[u32], events: Value) -> Value {
        let mut all = names(1, tids);
        all.extend(events.as_array().unwrap().iter().cloned());
        Value::Array(all)
    }

    #[test]
    fn a_well_formed_trace_has_no_problems() {
        let trace = with_names(
            &[1, 2],
            serde_json::json!([
                { "ph": "X", "name": "pool.map", "pid": 1, "tid": 1, "ts": 1.0, "dur": 10.0 },
                { "ph": "X", "name": "put", "pid": 1, "tid": 1, "ts": 2.0, "dur": 1.0 },
                { "ph": "s", "name": "item", "cat": "queue", "id": 7, "pid": 1, "tid": 1, "ts": 2.5 },
                { "ph": "i", "name": "print", "s": "p", "pid": 1, "tid": 1, "ts": 3.0 },
                { "ph": "X", "name": "get", "pid": 1, "tid": 2, "ts": 1.5, "dur": 4.0 },
                { "ph": "f", "bp": "e", "name": "item", "cat": "queue", "id": 7, "pid": 1, "tid": 2, "ts": 4.0 },
                { "ph": "X", "name": "after", "pid": 1, "tid": 1, "ts": 11.0, "dur": 0.5 },
            ]),
        );
        assert_eq!(problems(trace), Vec::<String>::new());
    }

    #[test]
    fn what_the_importer_drops_is_found() {
        // The issue's lesson06 case: the helper thread's get on the main thread's track.
        let overlapping = with_names(
            &[1],
            serde_json::json!([
                { "ph": "X", "name": "pool.map", "pid": 1, "tid": 1, "ts": 673.2, "dur": 4770.9 },
                { "ph": "X", "name": "get", "pid": 1, "tid": 1, "ts": 5387.6, "dur": 77.4 },
            ]),
        );
        assert!(problems(overlapping)[0].contains("slice_drop_overlapping_complete_event"));
        let string_id = with_names(
            &[1],
            serde_json::json!([
                { "ph": "X", "name": "put", "pid": 1, "tid": 1, "ts": 1.0, "dur": 1.0 },
                { "ph": "s", "name": "item", "cat": "queue", "id": "fila 1 item 1", "pid": 1, "tid": 1, "ts": 1.5 },
            ]),
        );
        assert!(problems(string_id)[0].contains("flow_invalid_id"));
        let unnamed = serde_json::json!([
            { "ph": "X", "name": "get", "pid": 1, "tid": 9, "ts": 1.0, "dur": 1.0 },
        ]);
        let found = problems(unnamed);
        assert!(
            found
                .iter()
                .any(|problem| problem.contains("no process_name"))
        );
        assert!(
            found
                .iter()
                .any(|problem| problem.contains("no thread_name"))
        );
        let end_first = with_names(
            &[1],
            serde_json::json!([
                { "ph": "X", "name": "get", "pid": 1, "tid": 1, "ts": 1.0, "dur": 5.0 },
                { "ph": "f", "bp": "e", "name": "item", "cat": "queue", "id": 3, "pid": 1, "tid": 1, "ts": 2.0 },
                { "ph": "X", "name": "put", "pid": 1, "tid": 1, "ts": 7.0, "dur": 1.0 },
                { "ph": "s", "name": "item", "cat": "queue", "id": 3, "pid": 1, "tid": 1, "ts": 7.5 },
            ]),
        );
        assert!(problems(end_first)[0].contains("flow_end_without_start"));
        let stale = with_names(
            &[1],
            serde_json::json!([
                { "ph": "X", "name": "put", "pid": 1, "tid": 1, "ts": 1.0, "dur": 1.0 },
                { "ph": "s", "name": "item", "cat": "queue", "id": 4, "pid": 1, "tid": 1, "ts": 3.0 },
            ]),
        );
        assert!(problems(stale)[0].contains("not open"));
        let tie = with_names(
            &[1],
            serde_json::json!([
                { "ph": "X", "name": "a", "pid": 1, "tid": 1, "ts": 1.0, "dur": 1.0 },
                { "ph": "X", "name": "b", "pid": 1, "tid": 1, "ts": 1.0, "dur": 2.0 },
            ]),
        );
        assert!(problems(tie)[0].contains("no certain order"));
        let inexact = with_names(
            &[1],
            serde_json::json!([
                { "ph": "X", "name": "a", "pid": 1, "tid": 1, "ts": 1.001, "dur": 1.0 },
            ]),
        );
        assert!(problems(inexact)[0].contains("reads the same both ways"));
        let scaled = serde_json::json!({ "traceEvents": [], "displayTimeUnit": "ms" });
        assert!(!perfetto_problems(&scaled).is_empty());
    }

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
