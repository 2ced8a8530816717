//! `--timeline=FILE.json`: the run in Chrome's trace-event format, which Perfetto
//! (ui.perfetto.dev) and `chrome://tracing` open.
//!
//! # Why JSON, and the importer's rules it keeps
//!
//! Perfetto's own format (TrackEvent protobuf) would need a protobuf encoder and is opened by
//! Perfetto only; the JSON is opened by both viewers, read by any script, and checked by the
//! tests with `serde_json`. It keeps to what Perfetto's JSON importer accepts without
//! dropping anything (`src/trace_processor/importers/json/` and the slice tracker):
//!
//! - **Tracks.** One `pid` per process and one `tid` per thread, the kernel's TID (the PID
//!   for the main thread), so a thread's calls never share a track with another thread's.
//!   Every process has `process_name` and `process_sort_index` metadata (main first, then
//!   start order), every thread `thread_name` and `thread_sort_index` (main thread first).
//! - **Slices nest.** The slice tracker drops a complete event (`"ph": "X"`) that starts
//!   inside an open slice of its track and ends after it
//!   (`slice_drop_overlapping_complete_event`); one ending exactly where the next starts is
//!   fine. A thread's calls are recorded by scope, so they nest, and the log's clock never
//!   gives two events the same nanosecond, so no two slices of a track start together (whose
//!   order the importer could not know).
//! - **Exact times.** `ts` and `dur` are microseconds with nanosecond decimals. The importer
//!   reads a number's text as an exact decimal in some places and as a `double` times 1000,
//!   truncated, in others; each number written here gives the same nanosecond both ways
//!   ([`us`]). No `displayTimeUnit`: some Perfetto versions took `"ns"` or `"ms"` as the
//!   unit of `ts`, not only of the display.
//! - **Flows.** A queue item is a flow from its `put` to its `get` (`"ph": "s"` at the moment
//!   it was placed, `"f"` with `"bp": "e"` where it was found), which Perfetto draws as an
//!   arrow. Its `id` is a number (a string is read as hexadecimal and dropped as
//!   `flow_invalid_id` if it is not one): the queue's number times 2³² plus the item's. Both
//!   ends have the same `cat` and `name`, which the importer keys a flow on with its id, and
//!   each binds to the slice open on its track at that moment: the `put` or the `get` itself.
//! - **Instants.** A start, a `task_done`, a release, an exit are instant events on their
//!   thread's track (`"s": "t"`); a printed line is the process's (`"s": "p"`): all of its
//!   threads write to one pipe, which does not say which thread wrote a line.

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
        let pid = process.pid;
        events.push(json!({
            "ph": "M", "name": "process_name", "pid": pid, "tid": pid,
            "args": { "name": name },
        }));
        events.push(json!({
            "ph": "M", "name": "process_sort_index", "pid": pid, "tid": pid,
            "args": { "sort_index": index },
        }));
        for (index, thread) in process.threads.iter().enumerate() {
            let name = match &thread.name {
                None => process.target.clone(),
                Some(name) => format!("{name} (TID {})", thread.tid),
            };
            events.push(json!({
                "ph": "M", "name": "thread_name", "pid": pid, "tid": thread.tid,
                "args": { "name": name },
            }));
            events.push(json!({
                "ph": "M", "name": "thread_sort_index", "pid": pid, "tid": thread.tid,
                "args": { "sort_index": index },
            }));
        }
    }
    for event in run
        .events
        .iter()
        .filter(|event| event.kind != Kind::ThreadName)
    {
        events.push(one(run, event));
        if let Some(flow) = flow(run, event) {
            events.push(flow);
        }
    }
    let trace = json!({
        "traceEvents": events,
        "otherData": {
            "source": "shared --timeline",
            "lost_events": run.lost,
            "unfinished_events": run.unfinished,
        },
    });
    trace.to_string()
}

/// Microseconds, from nanoseconds: the `double` nearest `ns / 1000`, or the next one up if
/// that one times 1000 falls short of `ns` (1.001 × 1000 is 1000.9999999999999 in `double`s,
/// which truncates to 1000). Either way its shortest decimal text, which `serde_json` writes, starts with the
/// exact three decimals of `ns`, so an importer that reads the text as a decimal and one that
/// multiplies the `double` both get `ns` back.
fn us(ns: u64) -> f64 {
    let nearest = ns as f64 / 1000.0;
    if (nearest * 1000.0) as u64 >= ns {
        nearest
    } else {
        f64::from_bits(nearest.to_bits() + 1)
    }
}

fn one(run: &Run, event: &Event) -> Value {
    let (name, args) = name_and_args(run, event);
    let (pid, tid) = Run::track(event);
    let mut value = json!({
        "name": name, "cat": "shared", "pid": pid, "tid": tid,
        "ts": us(event.begin), "args": args,
    });
    if is_call(event.kind) {
        value["ph"] = json!("X");
        value["dur"] = json!(us(event.end - event.begin));
    } else {
        value["ph"] = json!("i");
        value["s"] = json!(if event.tid.is_none() { "p" } else { "t" });
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
            | Kind::ThreadStart
            | Kind::ThreadJoin
            | Kind::Wait
            | Kind::PoolTask
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
        Kind::Acquire => (format!("{}.acquire", primitive_name(event.arg)), json!({})),
        Kind::Release => (format!("{}.release", primitive_name(event.arg)), json!({})),
        Kind::Wait => (format!("{}.wait", primitive_name(event.arg)), json!({})),
        Kind::Notify => (
            match event.arg {
                super::primitive::EVENT => "Event.set".to_owned(),
                other => format!("{}.notify", primitive_name(other)),
            },
            json!({}),
        ),
        Kind::PoolTask => (
            format!("task: chunk {}", event.arg),
            json!({ "job": event.object, "chunk": event.arg }),
        ),
        Kind::ThreadName => ("thread_name".to_owned(), json!({ "name": event.text })),
        Kind::ThreadStart => (
            format!("start() → {} (TID {})", event.text, event.object),
            json!({ "thread": event.object, "name": event.text }),
        ),
        Kind::ThreadJoin => (
            format!("join(TID {})", event.object),
            json!({ "thread": event.object }),
        ),
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

/// The Python name of lock or wait primitive `code`.
pub(super) fn primitive_name(code: u64) -> &'static str {
    match code {
        super::primitive::RLOCK => "RLock",
        super::primitive::SEMAPHORE => "Semaphore",
        super::primitive::CONDITION => "Condition",
        super::primitive::EVENT => "Event",
        super::primitive::BARRIER => "Barrier",
        _ => "Lock",
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

/// The flow arrow of a queue item: it leaves its `put` where the item was placed and arrives
/// at its `get` where it was found.
fn flow(run: &Run, event: &Event) -> Option<Value> {
    let phase = match event.kind {
        Kind::Put if event.arg > 0 => "s",
        Kind::Get if event.arg > 0 => "f",
        _ => return None,
    };
    let (pid, tid) = Run::track(event);
    let mut value = json!({
        "ph": phase, "name": "item", "cat": "queue", "id": flow_id(run.queue(event.object), event.arg),
        "pid": pid, "tid": tid, "ts": us(event.mark),
    });
    if phase == "f" {
        value["bp"] = json!("e");
    }
    Some(value)
}

/// The number of the flow of item `item` of queue `queue`: unique in the run, and exact in a
/// `double` (below 2⁵³) for a queue below 2²¹ and an item below 2³².
fn flow_id(queue: usize, item: u64) -> u64 {
    (queue as u64) << 32 | (item & 0xffff_ffff)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn microseconds_give_back_the_nanosecond_as_a_double_and_as_text() {
        for ns in (0..20_000).chain([1_001, 1_234_567_891, 987_654_321_001]) {
            let value = us(ns);
            assert_eq!((value * 1000.0) as u64, ns, "{value} as a double");
            let text = serde_json::to_string(&value).unwrap();
            let (whole, decimals) = text.split_once('.').unwrap_or((&text, ""));
            let decimals = format!("{decimals:0<3}");
            let exact: u64 = format!("{whole}{}", &decimals[..3]).parse().unwrap();
            assert_eq!(exact, ns, "{text} as text");
        }
    }

    #[test]
    fn flow_ids_are_distinct_numbers() {
        assert_ne!(flow_id(1, 2), flow_id(2, 1));
        assert_eq!(flow_id(1, 1), (1 << 32) + 1);
    }
}
