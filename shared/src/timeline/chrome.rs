//! `--timeline=FILE.json`: the run in Chrome's trace-event format, which Perfetto
//! (ui.perfetto.dev) and `chrome://tracing` open.
//!
//! One `pid` per process (its `tid` is the same), named `PID N · target (method)` and sorted
//! main first, then in start order. A call is a complete event (`"ph": "X"`, with `dur`); a
//! printed line, a start, a `task_done`, a release and an exit are instant events
//! (`"ph": "i"`), a printed line with its text in `args.text`. Each queue item is also a flow
//! from its `put` to its `get` (`"ph": "s"`/`"f"`), which Perfetto draws as an arrow. Times
//! (`ts`, `dur`) are microseconds since `init()`, with nanosecond decimals.

use serde_json::{Value, json};

use super::Kind;
use super::model::{Event, Run};

/// The trace of `run`, as JSON text.
pub(super) fn trace(run: &Run) -> String {
    let mut events: Vec<Value> = Vec::new();
    for (index, process) in run.processes.iter().enumerate() {
        let method = process
            .method
            .map_or_else(String::new, |method| format!(" ({method})"));
        let name = format!("PID {} · {}{method}", process.pid, process.target);
        events.push(json!({
            "ph": "M", "name": "process_name", "pid": process.pid, "tid": process.pid,
            "args": { "name": name },
        }));
        events.push(json!({
            "ph": "M", "name": "process_sort_index", "pid": process.pid, "tid": process.pid,
            "args": { "sort_index": index },
        }));
    }
    for event in &run.events {
        events.push(one(run, event));
        if let Some(flow) = flow(run, event) {
            events.push(flow);
        }
    }
    let trace = json!({
        "traceEvents": events,
        "displayTimeUnit": "ms",
        "otherData": {
            "source": "shared --timeline",
            "lost_events": run.lost,
            "unfinished_events": run.unfinished,
        },
    });
    trace.to_string()
}

/// Microseconds, from nanoseconds.
fn us(ns: u64) -> f64 {
    ns as f64 / 1000.0
}

fn one(run: &Run, event: &Event) -> Value {
    let (name, args) = name_and_args(run, event);
    let mut value = json!({
        "name": name, "cat": "shared", "pid": event.pid, "tid": event.pid,
        "ts": us(event.begin), "args": args,
    });
    if is_call(event.kind) {
        value["ph"] = json!("X");
        value["dur"] = json!(us(event.end - event.begin));
    } else {
        value["ph"] = json!("i");
        value["s"] = json!("t");
    }
    value
}

fn is_call(kind: Kind) -> bool {
    matches!(
        kind,
        Kind::Start
            | Kind::Put
            | Kind::Get
            | Kind::Send
            | Kind::Recv
            | Kind::QueueJoin
            | Kind::Acquire
            | Kind::Join
            | Kind::PoolMap
            | Kind::PoolApply
    )
}

fn name_and_args(run: &Run, event: &Event) -> (String, Value) {
    let item = || {
        json!({
            "queue": run.queue(event.object), "item": event.arg, "at_us": us(event.mark),
        })
    };
    match event.kind {
        Kind::Start => (
            format!("start() → PID {}", event.object),
            json!({ "child": event.object, "method": super::method_name(event.arg) }),
        ),
        Kind::Began => (
            format!("começa: {}", event.text),
            json!({ "target": event.text, "method": super::method_name(event.arg) }),
        ),
        Kind::Print => ("print".to_owned(), json!({ "text": event.text })),
        Kind::Put => ("put".to_owned(), item()),
        Kind::Get => ("get".to_owned(), item()),
        Kind::Send => ("send".to_owned(), json!({})),
        Kind::Recv => ("recv".to_owned(), json!({})),
        Kind::TaskDone => (
            "task_done".to_owned(),
            json!({ "queue": run.queue(event.object) }),
        ),
        Kind::QueueJoin => (
            "queue.join".to_owned(),
            json!({ "queue": run.queue(event.object) }),
        ),
        Kind::Acquire => ("acquire".to_owned(), json!({})),
        Kind::Release => ("release".to_owned(), json!({})),
        Kind::Join => (
            format!("join(PID {})", event.object),
            json!({ "child": event.object }),
        ),
        Kind::Exit => exit("exit", event.code(), event.writer),
        Kind::Reaped => exit("reaped", event.code(), event.writer),
        Kind::MainEnd => (
            "main returned".to_owned(),
            json!({ "lock_events_counted": event.object }),
        ),
        Kind::PoolMap => ("pool.map".to_owned(), json!({ "items": event.arg })),
        Kind::PoolApply => ("pool.apply".to_owned(), json!({})),
    }
}

/// An exit as `name`, written by `by` (the process itself, or the parent that reaped it).
fn exit(name: &str, code: i32, by: u32) -> (String, Value) {
    let mut args = json!({ "code": code, "recorded_by": by });
    if code < 0 {
        args["signal"] = json!(super::draw::signal_name(-code));
    }
    (name.to_owned(), args)
}

/// The flow arrow of a queue item: it leaves its `put` and arrives at its `get`.
fn flow(run: &Run, event: &Event) -> Option<Value> {
    let phase = match event.kind {
        Kind::Put if event.arg > 0 => "s",
        Kind::Get if event.arg > 0 => "f",
        _ => return None,
    };
    let id = format!("fila {} item {}", run.queue(event.object), event.arg);
    let mut value = json!({
        "ph": phase, "name": "item", "cat": "queue", "id": id,
        "pid": event.pid, "tid": event.pid, "ts": us(event.mark),
    });
    if phase == "f" {
        value["bp"] = json!("e");
    }
    Some(value)
}
