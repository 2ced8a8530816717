//! The log's records made into a run: its processes in start order, the threads of each,
//! and its events in time order, with times counted from the origin. Records are checked once
//! here, so the drawing and the JSON work on plain values.

use std::collections::BTreeMap;

use super::Kind;
use super::log::{Contents, Corrupt, Record};

/// A process of the run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Process {
    pub(super) pid: u32,
    /// `principal` for the main process; else its target's short name, or `?` if it never
    /// recorded its start (killed at once).
    pub(super) target: String,
    /// How it was started; `None` for the main process.
    pub(super) method: Option<&'static str>,
    /// How it ended: `Some(code)` (`-N` for signal N) if its exit or reaping was recorded.
    pub(super) exit: Option<i32>,
    /// Lock events it only counted.
    pub(super) counted: u64,
    /// Its threads that recorded something: its main thread (TID = PID) first, then the
    /// others in the order they started (or first recorded, if their start was not seen).
    pub(super) threads: Vec<Thread>,
}

/// A thread of a process, one track of the trace.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Thread {
    /// Its kernel id; the PID for the main thread.
    pub(super) tid: u32,
    /// Its name (`Thread-1`, a pool's helper's); `None` for the main thread, which is named
    /// after the process.
    pub(super) name: Option<String>,
}

/// An event, in the column of the process it is about.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Event {
    pub(super) kind: Kind,
    /// The process whose column shows it: the writer's, except for `Reaped`, which is the
    /// reaped child's.
    pub(super) pid: u32,
    /// Who wrote it (for `Reaped`, the parent).
    pub(super) writer: u32,
    /// The thread whose track shows it: the writer's thread (for `Reaped`, the reaped
    /// child's main thread), or `None` for a printed line, which is the whole process's.
    pub(super) tid: Option<u32>,
    /// Times in ns since the origin.
    pub(super) begin: u64,
    pub(super) end: u64,
    pub(super) mark: u64,
    pub(super) object: u64,
    pub(super) arg: u64,
    pub(super) text: String,
}

impl Event {
    pub(super) fn code(&self) -> i32 {
        self.arg as i32
    }
}

/// A whole run, checked.
#[derive(Debug)]
pub(super) struct Run {
    /// The main process first, then each child in the order its `start()` was called.
    pub(super) processes: Vec<Process>,
    /// By begin time; ties keep the log's order.
    pub(super) events: Vec<Event>,
    /// Queues renumbered from 1 in the order first seen (their real ids are inode numbers).
    pub(super) queues: BTreeMap<u64, usize>,
    /// Records that did not fit, and records their writers did not finish.
    pub(super) lost: u64,
    pub(super) unfinished: u64,
}

impl Run {
    /// The run in `contents`, whose main process is `main`.
    ///
    /// # Errors
    /// [`Corrupt`] when a record's times run backwards or precede the origin, which no
    /// writer does.
    pub(super) fn from_log(contents: &Contents, main: u32) -> Result<Run, Corrupt> {
        let mut events = contents
            .records
            .iter()
            .map(|record| event(record, contents.origin))
            .collect::<Result<Vec<Event>, Corrupt>>()?;
        events.sort_by_key(|event| event.begin);
        let processes = processes(&events, main);
        let mut queues = BTreeMap::new();
        for event in &events {
            if matches!(
                event.kind,
                Kind::Put | Kind::Get | Kind::TaskDone | Kind::QueueJoin
            ) && event.object != 0
            {
                let next = queues.len() + 1;
                queues.entry(event.object).or_insert(next);
            }
        }
        Ok(Run {
            processes,
            events,
            queues,
            lost: contents.lost,
            unfinished: contents.unfinished,
        })
    }

    /// The process with `pid`.
    pub(super) fn process(&self, pid: u32) -> Option<&Process> {
        self.processes.iter().find(|process| process.pid == pid)
    }

    /// The track of `event`: its process and its thread (a printed line's: the main one).
    pub(super) fn track(event: &Event) -> (u32, u32) {
        (event.pid, event.tid.unwrap_or(event.pid))
    }

    /// The small number of queue `object`, `0` if unknown.
    pub(super) fn queue(&self, object: u64) -> usize {
        self.queues.get(&object).copied().unwrap_or(0)
    }
}

fn event(record: &Record, origin: u64) -> Result<Event, Corrupt> {
    let kind = Kind::from_code(record.kind)
        .ok_or_else(|| Corrupt(format!("unknown kind {}", record.kind)))?;
    let since = |time: u64| {
        time.checked_sub(origin)
            .ok_or_else(|| Corrupt("a record's time precedes the run".to_owned()))
    };
    let (begin, end, mark) = (
        since(record.begin)?,
        since(record.end)?,
        since(record.mark)?,
    );
    if !(begin <= mark && mark <= end) {
        return Err(Corrupt("a record's times run backwards".to_owned()));
    }
    let pid = match kind {
        Kind::Reaped => {
            u32::try_from(record.object).map_err(|_| Corrupt("a reaped PID past u32".to_owned()))?
        }
        _ => record.pid,
    };
    let tid = match (kind, record.tid) {
        (Kind::Reaped, _) => Some(pid),
        (Kind::Print, 0) => None,
        (_, 0) => return Err(Corrupt("a record without its thread".to_owned())),
        (_, tid) => Some(tid),
    };
    if matches!(
        kind,
        Kind::Acquire | Kind::Release | Kind::Wait | Kind::Notify
    ) && record.arg >= super::primitive::COUNT
    {
        return Err(Corrupt(format!("a lock event of primitive {}", record.arg)));
    }
    Ok(Event {
        kind,
        pid,
        writer: record.pid,
        tid,
        begin,
        end,
        mark,
        object: record.object,
        arg: record.arg,
        text: record.text.clone(),
    })
}

/// The main process, then each child by its parent's `start()`, then any other process that
/// recorded something (its parent's record lost).
fn processes(events: &[Event], main: u32) -> Vec<Process> {
    let mut order = vec![main];
    let mut add = |pid: u32| {
        if !order.contains(&pid) {
            order.push(pid);
        }
    };
    for event in events.iter().filter(|event| event.kind == Kind::Start) {
        if let Ok(child) = u32::try_from(event.object) {
            add(child);
        }
    }
    for event in events {
        add(event.pid);
    }
    order
        .into_iter()
        .map(|pid| describe(events, pid, main))
        .collect()
}

fn describe(events: &[Event], pid: u32, main: u32) -> Process {
    let own = |kind: Kind| {
        events
            .iter()
            .find(move |event| event.pid == pid && event.kind == kind)
    };
    let began = own(Kind::Began);
    let exited = own(Kind::Exit).or_else(|| own(Kind::Reaped));
    let ended = own(Kind::Exit).or_else(|| own(Kind::MainEnd));
    Process {
        pid,
        target: if pid == main {
            "principal".to_owned()
        } else {
            began.map_or_else(|| "?".to_owned(), |event| event.text.clone())
        },
        method: began.map(|event| super::method_name(event.arg)),
        exit: exited.map(Event::code),
        counted: ended.map_or(0, |event| event.object),
        threads: threads(events, pid),
    }
}

/// The threads of process `pid`: the main one, then the others in start order, each with
/// the name it was started with or recorded.
fn threads(events: &[Event], pid: u32) -> Vec<Thread> {
    let mut threads = vec![Thread {
        tid: pid,
        name: None,
    }];
    let mut add =
        |tid: u32, name: Option<&str>| match threads.iter_mut().find(|thread| thread.tid == tid) {
            Some(thread) => {
                if thread.name.is_none() && tid != pid {
                    thread.name = name.map(str::to_owned);
                }
            }
            None => threads.push(Thread {
                tid,
                name: name.map(str::to_owned),
            }),
        };
    for event in events.iter().filter(|event| event.pid == pid) {
        match (event.kind, u32::try_from(event.object)) {
            (Kind::ThreadStart, Ok(tid)) => add(tid, Some(&event.text)),
            (Kind::ThreadName, _) => add(Run::track(event).1, Some(&event.text)),
            _ => {}
        }
        add(Run::track(event).1, None);
    }
    for thread in &mut threads {
        if thread.tid != pid && thread.name.is_none() {
            thread.name = Some(format!("thread {}", thread.tid));
        }
    }
    threads
}
