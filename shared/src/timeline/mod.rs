//! `--timeline`: a record of every process of a run, drawn at the end (project issue 16).
//!
//! With `--timeline` (or `--timeline=FILE.json`), [`init`](crate::init) creates an event log
//! in shared memory ([`log`]) that every process of the run writes to: forked children
//! inherit its mapping, spawned children receive its descriptor (named in
//! [`LOG_VARIABLE`]), and so does a forkserver, for the children it forks (the server itself
//! records nothing). Each process points its stdout at a pipe of its own and copies it to the
//! real stdout, so each printed line is recorded as its printer's ([`capture`]). The library
//! records, from one-line hooks in its operations: a process's start (by its parent, with the
//! method) and its first moment (by itself, with its target's name), every printed line,
//! `put`/`get`, `send`/`recv`, `task_done` and a queue's `join` (of a process-shared queue or
//! a `ThreadQueue`), the acquire and release of a `Lock`, an `RLock`, a semaphore or a
//! `Value`'s lock, the waits of a `Condition`, an `Event` and a `Barrier` (and a `notify`, a
//! `set`), a process's or a thread's `start` and `join`, a pool's `map` and `apply` and each
//! chunk a worker runs, and each exit, with its code, or the signal that killed it (seen by
//! the parent that reaps it). Each record says which thread (TID) made it; a thread other
//! than a process's main one is named (`Thread-1`) before its first record. When `main` returns, the main
//! process reads the log back (checked: a corrupt log is an error message, never a crash)
//! and writes the drawing to stderr ([`draw`]) or the JSON file ([`chrome`]).
//!
//! # Cost when off
//!
//! Every hook first loads [`ENABLED`] with `Relaxed` ordering and does nothing else when it is
//! false: no clock, no system call, no allocation. The closures that compute an event's
//! details run only when it is on.
//!
//! # Lock events
//!
//! Lesson 05 takes a lock 800,000 times. Each process records its first
//! [`FREQUENT_LIMIT`] lock events (an acquire and its release) and then only counts the
//! rest, which its exit record
//! reports, so that the drawing stays readable and the log does not fill.

mod capture;
mod chrome;
mod draw;
mod log;
mod model;

use std::fmt;
use std::io::{self, Write};
use std::os::fd::{AsFd, BorrowedFd, RawFd};
use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU32, AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock, PoisonError};

use crate::process::start_method::StartMethod;
use crate::sys;
use log::{Log, Record};

/// Where the timeline of a run goes. Python has no counterpart: this is the course's
/// `--timeline` option, read by [`lesson::init`](crate::lesson::init); a program of its own
/// asks for it with [`record_timeline`](crate::record_timeline).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TimelineOutput {
    /// `--timeline`: a drawing on stderr after the run, one column per process.
    Drawing,
    /// `--timeline=FILE.json`: Chrome's trace-event format, for Perfetto or
    /// `chrome://tracing`.
    Json(PathBuf),
}

/// The environment variable that names the log's descriptor to a spawned child, or to a
/// forkserver and so to its children.
pub(crate) const LOG_VARIABLE: &str = "SHARED_TIMELINE_FD";

/// Whether this process records. Set once by `init` in the main process, or as a child
/// starts; read with `Relaxed` by every hook.
static ENABLED: AtomicBool = AtomicBool::new(false);
/// The log, once created or attached.
static LOG: OnceLock<Log> = OnceLock::new();
/// This process's PID, cached: a forked child sets its own before it records.
static PID: AtomicU32 = AtomicU32::new(0);
/// How this process was started ([`method_code`]); the main process has `MAIN`.
static METHOD: AtomicU8 = AtomicU8::new(MAIN);
/// Lock events this process met: the first [`FREQUENT_LIMIT`] are recorded.
static FREQUENT: AtomicU64 = AtomicU64::new(0);
/// Where the main process writes the timeline; `None` in every child.
static OUTPUT: Mutex<Option<TimelineOutput>> = Mutex::new(None);

/// How many lock events each process records before it only counts them.
pub(crate) const FREQUENT_LIMIT: u64 = 2;

const MAIN: u8 = u8::MAX;

/// What an event is. The codes are stored in the log; a code this list lacks is corruption.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u16)]
pub(crate) enum Kind {
    /// A parent's `start()`: object = the child's PID, arg = the method.
    Start = 1,
    /// A child's first moment: arg = the method, text = its target's name.
    Began,
    /// A printed line: text.
    Print,
    /// A queue's `put`: object = the queue, arg = the item's number from 1 (0: none was
    /// placed); mark = when it was placed.
    Put,
    /// A queue's `get`: as `Put`; mark = when the item was found.
    Get,
    /// A connection's `send`.
    Send,
    /// A connection's `recv`.
    Recv,
    /// A joinable queue's `task_done`: object = the queue.
    TaskDone,
    /// A joinable queue's `join`: object = the queue.
    QueueJoin,
    /// A lock's acquire: arg = which lock ([`primitive`]: a `Lock` or a `Value`'s lock, an
    /// `RLock`, a semaphore).
    Acquire,
    /// A lock's release: arg as `Acquire`.
    Release,
    /// A process's `join`: object = the child's PID.
    Join,
    /// A child's own exit: arg = its code (as `i32`); object = lock events only counted.
    Exit,
    /// A parent reaped a child: object = the child's PID, arg = its exit code (`-N`: signal N).
    Reaped,
    /// The main process's `main` returned.
    MainEnd,
    /// A pool's `map` and friends: arg = the number of items.
    PoolMap,
    /// A pool's `apply`.
    PoolApply,
    /// A thread's name, recorded before its first event (a thread other than a process's
    /// main one): text = the name.
    ThreadName,
    /// A `Thread::start()`: object = the new thread's TID, text = its name; mark = when the
    /// thread was known to run.
    ThreadStart,
    /// A `Thread::join()`: object = the thread's TID.
    ThreadJoin,
    /// A wait on a condition, an event or a barrier: arg = which ([`primitive`]).
    Wait,
    /// A pool worker runs a chunk of a job: object = the job, arg = the chunk's index.
    PoolTask,
    /// A condition's `notify`, an event's `set`: arg = which ([`primitive`]).
    Notify,
}

/// Which primitive a lock or wait event is about: the `arg` of `Acquire`, `Release`, `Wait`
/// and `Notify`.
pub(crate) mod primitive {
    /// A `Lock`, or a `Value`'s or an `Array`'s lock.
    pub(crate) const LOCK: u64 = 0;
    /// An `RLock`.
    pub(crate) const RLOCK: u64 = 1;
    /// A `Semaphore` or a `BoundedSemaphore`.
    pub(crate) const SEMAPHORE: u64 = 2;
    /// A `Condition`.
    pub(crate) const CONDITION: u64 = 3;
    /// An `Event`.
    pub(crate) const EVENT: u64 = 4;
    /// A `Barrier`.
    pub(crate) const BARRIER: u64 = 5;
    /// The first code no primitive has.
    pub(super) const COUNT: u64 = 6;
}

impl Kind {
    const ALL: [Kind; 23] = [
        Kind::Start,
        Kind::Began,
        Kind::Print,
        Kind::Put,
        Kind::Get,
        Kind::Send,
        Kind::Recv,
        Kind::TaskDone,
        Kind::QueueJoin,
        Kind::Acquire,
        Kind::Release,
        Kind::Join,
        Kind::Exit,
        Kind::Reaped,
        Kind::MainEnd,
        Kind::PoolMap,
        Kind::PoolApply,
        Kind::ThreadName,
        Kind::ThreadStart,
        Kind::ThreadJoin,
        Kind::Wait,
        Kind::PoolTask,
        Kind::Notify,
    ];

    pub(crate) fn from_code(code: u16) -> Option<Kind> {
        Kind::ALL.into_iter().find(|kind| *kind as u16 == code)
    }

    fn is_frequent(self) -> bool {
        matches!(self, Kind::Acquire | Kind::Release)
    }
}

/// The code of a start method in the log.
pub(crate) fn method_code(method: StartMethod) -> u8 {
    match method {
        StartMethod::Fork => 0,
        StartMethod::Spawn => 1,
        StartMethod::Forkserver => 2,
    }
}

/// The name of a method code, for the drawing and the JSON.
pub(crate) fn method_name(code: u64) -> &'static str {
    match code {
        0 => "fork",
        1 => "spawn",
        2 => "forkserver",
        _ => "?",
    }
}

/// Whether this process records: one relaxed load, the whole cost of a hook when off.
#[inline]
pub(crate) fn enabled() -> bool {
    // With the feature, a constant `false`: the compiler removes every hook.
    !cfg!(feature = "timeline-compiled-out") && ENABLED.load(Ordering::Relaxed)
}

/// Records an instant event; `details` gives `(object, arg)` and runs only when on.
#[inline]
pub(crate) fn record(kind: Kind, details: impl FnOnce() -> (u64, u64)) {
    if enabled() {
        record_now(kind, details());
    }
}

#[cold]
fn record_now(kind: Kind, (object, arg): (u64, u64)) {
    drain_stdout();
    if !admit(kind) {
        return;
    }
    let now = now();
    append(kind, now, now, now, object, arg, String::new());
}

/// The time of an event: from the log's clock, which never gives two events of the run the
/// same nanosecond ([`Log::now`]).
fn now() -> u64 {
    LOG.get().map_or_else(sys::monotonic_ns, Log::now)
}

/// Starts a call that may block; the returned [`Span`] records it, from now until it is
/// dropped. `details` gives `(object, arg)` and runs only when on.
#[inline]
pub(crate) fn span(kind: Kind, details: impl FnOnce() -> (u64, u64)) -> Span {
    if enabled() {
        Span::begin(kind, details())
    } else {
        Span::OFF
    }
}

/// A call being recorded; see [`span`]. Records on drop.
#[must_use = "a span records the call from its creation to its drop"]
pub(crate) struct Span {
    kind: Kind,
    /// 0 when the timeline is off (or the event is only counted): nothing to record.
    begin: u64,
    mark: u64,
    object: u64,
    arg: u64,
    /// Recorded already, by [`item_recorded`](Self::item_recorded): in this slot of the log,
    /// or in none if the log was full.
    recorded: Option<Option<log::Slot>>,
}

impl Span {
    const OFF: Span = Span {
        kind: Kind::Start,
        begin: 0,
        mark: 0,
        object: 0,
        arg: 0,
        recorded: None,
    };

    #[cold]
    fn begin(kind: Kind, (object, arg): (u64, u64)) -> Span {
        drain_stdout();
        if !admit(kind) {
            return Span::OFF;
        }
        let begin = now();
        Span {
            kind,
            begin,
            mark: begin,
            object,
            arg,
            recorded: None,
        }
    }

    /// Marks the moment the call did its work (a queue's item placed or found), with its
    /// `(object, arg)`; `details` runs only when recording.
    #[inline]
    pub(crate) fn item(&mut self, details: impl FnOnce() -> (u64, u64)) {
        if self.begin != 0 {
            (self.object, self.arg) = details();
            self.mark = now();
        }
    }

    /// As [`item`](Self::item), and writes the record now, ending at the mark; the drop then
    /// only amends its end (and what a later [`item`](Self::item) changed). For a call whose
    /// work another process may act on at once: a `put`'s item can be taken, and this
    /// process killed (a pool's `terminate`), before the put returns, and the `get` that
    /// found the item must never be in the log without the `put` that placed it.
    #[inline]
    pub(crate) fn item_recorded(&mut self, details: impl FnOnce() -> (u64, u64)) {
        if self.begin != 0 {
            self.item(details);
            let slot = append(
                self.kind,
                self.begin,
                self.mark,
                self.mark,
                self.object,
                self.arg,
                String::new(),
            );
            self.recorded = Some(slot);
        }
    }
}

impl Drop for Span {
    #[inline]
    fn drop(&mut self) {
        if self.begin == 0 {
            return;
        }
        let end = now();
        match self.recorded {
            None => {
                append(
                    self.kind,
                    self.begin,
                    end,
                    self.mark,
                    self.object,
                    self.arg,
                    String::new(),
                );
            }
            Some(Some(slot)) => {
                if let Some(log) = LOG.get() {
                    log.amend(slot, end, self.object, self.arg);
                }
            }
            Some(None) => {} // the log was full: counted as lost
        }
    }
}

/// Whether an event of `kind` is recorded rather than only counted.
fn admit(kind: Kind) -> bool {
    !LEFT_OUT.with(std::cell::Cell::get)
        && (!kind.is_frequent() || FREQUENT.fetch_add(1, Ordering::Relaxed) < FREQUENT_LIMIT)
}

thread_local! {
    /// Whether this thread is the library's own plumbing: see [`leave_out_this_thread`].
    static LEFT_OUT: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Leaves the calling thread out of the timeline: for a thread of the library's own (a
/// `Listener`'s handshake, a manager's connection to one client), whose calls are the
/// mechanism of a primitive, not a step of the program; drawn, each would take a column of
/// its own and push the program's processes off the width.
pub(crate) fn leave_out_this_thread() {
    LEFT_OUT.with(|left_out| left_out.set(true));
}

fn pid() -> u32 {
    match PID.load(Ordering::Relaxed) {
        0 => std::process::id(),
        pid => pid,
    }
}

/// Appends a record of this thread of this process; its slot, unless the log is full or
/// absent. A thread other than the process's main one is named first, once.
fn append(
    kind: Kind,
    begin: u64,
    end: u64,
    mark: u64,
    object: u64,
    arg: u64,
    text: String,
) -> Option<log::Slot> {
    let tid = sys::thread::current_id();
    if tid != pid() && NAMED.get() != tid {
        NAMED.set(tid);
        let name = std::thread::current()
            .name()
            .map_or_else(|| format!("thread {tid}"), str::to_owned);
        append_as(tid, Kind::ThreadName, begin, begin, begin, 0, 0, name);
    }
    append_as(tid, kind, begin, end, mark, object, arg, text)
}

thread_local! {
    /// The TID this thread last recorded its name as: a forked child's thread has another.
    static NAMED: std::cell::Cell<u32> = const { std::cell::Cell::new(0) };
}

/// Appends a record of thread `tid` (`0`: the process as a whole) of this process.
#[allow(clippy::too_many_arguments)] // one record's fields, named at each call
fn append_as(
    tid: u32,
    kind: Kind,
    begin: u64,
    end: u64,
    mark: u64,
    object: u64,
    arg: u64,
    text: String,
) -> Option<log::Slot> {
    LOG.get().and_then(|log| {
        log.append(&Record {
            kind: kind as u16,
            pid: pid(),
            tid,
            begin,
            end,
            mark,
            object,
            arg,
            text,
            cut: false,
        })
    })
}

/// Records one printed line of this process (called by the copier with the lock held). A
/// line is the process's, not a thread's: all its threads write to the one pipe, which does
/// not say who wrote what.
fn record_line(line: &[u8]) {
    let now = now();
    let text = String::from_utf8_lossy(line).into_owned();
    append_as(0, Kind::Print, now, now, now, 0, 0, text);
}

fn drain_stdout() {
    capture::drain(record_line);
}

/// Records what every process of the run does from now on, and when `main` returns (or
/// `std::process::exit` is called) draws it on stderr or writes it to a JSON file, as `output`
/// says. Call it in the main process, right after [`init`](crate::init) and before any process
/// starts. A second call keeps the first one's timeline. The drawing is in English; the
/// lessons' `--timeline` option draws it in Portuguese, the course's language. See the
/// crate's [timeline section](crate#timeline) for what is recorded, and its limits.
///
/// ```no_run
/// shared::init()?;
/// shared::record_timeline(shared::TimelineOutput::Json("run.json".into()))?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// # Errors
/// The JSON file cannot be created (it is created, empty, now, so that a wrong path is told
/// before the run rather than after it), or the system refused the log's memory, the stdout
/// pipe or the exit hook.
pub fn record_timeline(output: TimelineOutput) -> io::Result<()> {
    record_in(output, Language::English)
}

/// The words of a drawing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Language {
    /// The course's: what the lessons draw.
    Portuguese,
    /// A library user's, through [`record_timeline`].
    English,
}

/// The language the drawing is made in, set with the output.
static LANGUAGE: AtomicU8 = AtomicU8::new(0);

/// [`record_timeline`], drawing in `language`.
pub(crate) fn record_in(output: TimelineOutput, language: Language) -> io::Result<()> {
    if let TimelineOutput::Json(path) = &output {
        std::fs::File::create(path).map_err(|error| {
            io::Error::new(
                error.kind(),
                format!("cannot create {}: {error}", path.display()),
            )
        })?;
    }
    let origin = sys::monotonic_ns();
    let log = Log::create(origin)?;
    if LOG.set(log).is_err() {
        return Ok(()); // `init` ran twice: the first one's timeline stands
    }
    *OUTPUT.lock().unwrap_or_else(PoisonError::into_inner) = Some(output);
    LANGUAGE.store(language as u8, Ordering::Relaxed);
    PID.store(std::process::id(), Ordering::Relaxed);
    register_lifecycle();
    crate::lifecycle::run_at_process_exit()?;
    capture::install(sys::fd::duplicate(io::stdout().as_fd())?, record_line)?;
    ENABLED.store(true, Ordering::Relaxed);
    Ok(())
}

/// Called first thing in a new child: a forked child takes its own PID and stdout pipe; a
/// spawned or forkserved one attaches to the log named in [`LOG_VARIABLE`] (by its parent, or
/// by the parent that started its forkserver: the server holds the log for its children, and
/// gave them the real stdout, as a spawned child gets it). A child that cannot record says so
/// on stderr and runs on without the timeline.
pub(crate) fn child_started(method: StartMethod) {
    register_lifecycle();
    METHOD.store(method_code(method), Ordering::Relaxed);
    FREQUENT.store(0, Ordering::Relaxed);
    PID.store(std::process::id(), Ordering::Relaxed);
    let result = match method {
        StartMethod::Fork if enabled() => capture::install_after_fork(record_line),
        StartMethod::Fork => Ok(()),
        StartMethod::Spawn | StartMethod::Forkserver => attach_inherited(),
    };
    if let Err(error) = result {
        ENABLED.store(false, Ordering::Relaxed);
        let _ = writeln!(
            io::stderr(),
            "shared: --timeline: process {} records nothing: {error}",
            pid()
        );
    }
}

/// In a spawned or forkserved child: the log passed across the `exec`, if any, checked.
fn attach_inherited() -> io::Result<()> {
    let Some(value) = std::env::var_os(LOG_VARIABLE) else {
        return Ok(());
    };
    let fd = value
        .to_str()
        .and_then(|text| text.parse::<RawFd>().ok())
        .ok_or_else(|| io::Error::other(format!("{LOG_VARIABLE} is not a descriptor number")))?;
    let log = Log::attach(sys::fd::adopt_inherited(fd)?)?;
    if LOG.set(log).is_err() {
        return Err(io::Error::other("a log was already attached"));
    }
    capture::install(sys::fd::duplicate(io::stdout().as_fd())?, record_line)?;
    ENABLED.store(true, Ordering::Relaxed);
    Ok(())
}

/// Records the target a child runs, by its type's name, with how the child was started.
pub(crate) fn target_started<F>() {
    record_text(
        Kind::Began,
        0,
        u64::from(METHOD.load(Ordering::Relaxed)),
        short_name(std::any::type_name::<F>()),
    );
}

fn record_text(kind: Kind, object: u64, arg: u64, text: String) {
    if enabled() {
        drain_stdout();
        let now = now();
        append(kind, now, now, now, object, arg, text);
    }
}

/// The time now if recording, else 0: the begin of a call recorded later by a function that
/// takes it (as [`thread_started`]).
#[inline]
pub(crate) fn moment() -> u64 {
    if enabled() { now() } else { 0 }
}

/// Records a `Thread::start()` that began at `began` (from [`moment`]) and started the
/// thread `tid`, named `name`.
pub(crate) fn thread_started(began: u64, tid: u32, name: &str) {
    if enabled() && began != 0 {
        drain_stdout();
        let now = now();
        append(
            Kind::ThreadStart,
            began,
            now,
            now,
            u64::from(tid),
            0,
            name.to_owned(),
        );
    }
}

/// Prepares an `exec` of this program that will run processes of the run: a spawned child,
/// or a forkserver, whose forked children inherit what it gets. It gets the log's descriptor
/// (returned, to be kept open across `exec`) named in its environment, and the real stdout as
/// its stdout, so that each of those processes captures its own lines (a forkserver records
/// nothing itself: it never calls [`child_started`], so it is no process of the timeline).
///
/// # Errors
/// The system refused to duplicate stdout.
pub(crate) fn for_executed_child(command: &mut Command) -> io::Result<Vec<RawFd>> {
    let (true, Some(log), Some(real)) = (enabled(), LOG.get(), capture::real_stdout()) else {
        return Ok(Vec::new());
    };
    // SAFETY: `real` is owned by this process's capture, which is never dropped.
    let real = unsafe { BorrowedFd::borrow_raw(real) };
    command.stdout(sys::fd::duplicate(real)?);
    let fd = sys::fd::raw(&log.file());
    command.env(LOG_VARIABLE, fd.to_string());
    Ok(vec![fd])
}

/// Registers the timeline's exit steps: a child records its end first of all, the main
/// process writes the timeline last of all.
fn register_lifecycle() {
    use crate::lifecycle::{Ending, ExitStep, at_exit};
    at_exit(ExitStep::Record, |ending| {
        if let Ending::Child(code) = ending {
            exiting(code);
        }
    });
    at_exit(ExitStep::Report, |ending| {
        if ending == Ending::Main {
            finish();
        }
    });
}

/// In a child about to end with `code`: copies its last output and records its exit, with
/// how many lock events it only counted.
fn exiting(code: i32) {
    if enabled() {
        capture::finish(record_line);
        let counted = FREQUENT
            .load(Ordering::Relaxed)
            .saturating_sub(FREQUENT_LIMIT);
        let now = now();
        append(
            Kind::Exit,
            now,
            now,
            now,
            counted,
            code as u64,
            String::new(),
        );
    }
}

/// Records that this process reaped child `pid` with `code` (if reaping worked).
pub(crate) fn reaped(pid: u32, code: &io::Result<i32>) {
    if let Ok(code) = code {
        record(Kind::Reaped, || (u64::from(pid), *code as u64));
    }
}

/// In the main process, once `main` returned and every child was settled: writes the
/// timeline where `--timeline` asked. Failures are reported on stderr; the program's exit
/// status is not changed.
fn finish() {
    let Some(output) = OUTPUT.lock().unwrap_or_else(PoisonError::into_inner).take() else {
        return;
    };
    capture::finish(record_line);
    let counted = FREQUENT
        .load(Ordering::Relaxed)
        .saturating_sub(FREQUENT_LIMIT);
    let now = now();
    append(Kind::MainEnd, now, now, now, counted, 0, String::new());
    ENABLED.store(false, Ordering::Relaxed);
    if let Err(error) = write_timeline(&output) {
        // Debug: the message and its cause.
        let _ = writeln!(io::stderr(), "shared: --timeline: {error:?}");
    }
}

fn write_timeline(output: &TimelineOutput) -> Result<(), TimelineError> {
    let log = LOG.get().ok_or(TimelineError::NoLog)?;
    let contents = log
        .read(|code| Kind::from_code(code).is_some())
        .map_err(|corrupt| TimelineError::Corrupt(corrupt.to_string()))?;
    let run = model::Run::from_log(&contents, pid())
        .map_err(|corrupt| TimelineError::Corrupt(corrupt.to_string()))?;
    match output {
        TimelineOutput::Drawing => {
            let colour = draw::colour_wanted();
            let language = match LANGUAGE.load(Ordering::Relaxed) {
                0 => Language::Portuguese,
                _ => Language::English,
            };
            let text = draw::draw(&run, draw::width(), colour, language);
            io::stderr()
                .write_all(text.as_bytes())
                .map_err(TimelineError::Write)
        }
        TimelineOutput::Json(path) => {
            let json = chrome::trace(&run);
            std::fs::write(path, json).map_err(|error| TimelineError::File(path.clone(), error))
        }
    }
}

/// Why the timeline could not be written.
enum TimelineError {
    NoLog,
    Corrupt(String),
    Write(io::Error),
    File(PathBuf, io::Error),
}

impl fmt::Display for TimelineError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TimelineError::NoLog => f.write_str("no log was created"),
            TimelineError::Corrupt(what) => f.write_str(what),
            TimelineError::Write(_) => f.write_str("cannot write the drawing"),
            TimelineError::File(path, _) => write!(f, "cannot write {}", path.display()),
        }
    }
}

impl std::error::Error for TimelineError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            TimelineError::Write(error) | TimelineError::File(_, error) => Some(error),
            TimelineError::NoLog | TimelineError::Corrupt(_) => None,
        }
    }
}

crate::debug_as_display!(TimelineError);

/// A type's name as a learner knows it: `lesson02_queue::funcao_processo` is
/// `funcao_processo`, a closure in `main` is `closure em main`, a pool's worker is
/// `trabalhador do Pool`.
fn short_name(full: &str) -> String {
    if full.starts_with("shared::pool::") {
        return "trabalhador do Pool".to_owned();
    }
    // Generic arguments hold paths of their own: drop them first.
    let mut plain = String::with_capacity(full.len());
    let mut depth = 0_usize;
    for c in full.chars() {
        match c {
            '<' => depth += 1,
            '>' => depth = depth.saturating_sub(1),
            _ if depth == 0 => plain.push(c),
            _ => {}
        }
    }
    let segments: Vec<&str> = plain.split("::").collect();
    match segments.as_slice() {
        [.., outer, "{{closure}}"] => format!("closure em {outer}"),
        [.., last] => (*last).to_owned(),
        [] => full.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_names_are_what_a_learner_wrote() {
        assert_eq!(
            short_name("lesson02_queue::funcao_processo"),
            "funcao_processo"
        );
        assert_eq!(short_name("lesson01::main::{{closure}}"), "closure em main");
        assert_eq!(
            short_name("shared::pool::worker::worker_main<a::b, c::d>"),
            "trabalhador do Pool"
        );
        assert_eq!(short_name("f<x::y>"), "f");
    }

    #[test]
    fn every_kind_has_its_own_code() {
        for kind in Kind::ALL {
            assert_eq!(Kind::from_code(kind as u16), Some(kind));
        }
        assert_eq!(Kind::from_code(0), None);
        assert_eq!(Kind::from_code(Kind::ALL.len() as u16 + 1), None);
    }

    #[test]
    fn a_put_recorded_at_its_item_is_in_the_log_even_if_its_process_dies_before_the_drop() {
        // The log only: `ENABLED` stays off, so the other tests' hooks record nothing here.
        let log = LOG.get_or_init(|| Log::create(sys::monotonic_ns()).unwrap());
        let mut killed = Span::begin(Kind::Put, (7_001, 0));
        killed.item_recorded(|| (7_001, 5));
        std::mem::forget(killed); // as if SIGKILL came between the push and the drop
        let mut failed = Span::begin(Kind::Put, (7_002, 0));
        failed.item_recorded(|| (7_002, 6));
        failed.item(|| (7_002, 0)); // the push failed: nothing was placed
        drop(failed);

        let records = log
            .read(|code| Kind::from_code(code).is_some())
            .unwrap()
            .records;
        let puts_on = |queue: u64| -> Vec<&Record> {
            records
                .iter()
                .filter(|r| r.kind == Kind::Put as u16 && r.object == queue)
                .collect()
        };
        let [killed] = puts_on(7_001)[..] else {
            panic!("{records:?}")
        };
        assert_eq!(
            (killed.arg, killed.end),
            (5, killed.mark),
            "ends at its item"
        );
        let [failed] = puts_on(7_002)[..] else {
            panic!("{records:?}")
        };
        assert_eq!(failed.arg, 0, "amended: no item");
        assert!(failed.end >= failed.mark && failed.mark >= failed.begin);
    }

    #[test]
    fn off_hooks_record_nothing_and_run_no_details() {
        assert!(!enabled());
        record(Kind::Put, || unreachable!("details of an event while off"));
        let mut span = span(Kind::Get, || unreachable!("details while off"));
        span.item(|| unreachable!("details while off"));
        assert_eq!(span.begin, 0);
    }
}
