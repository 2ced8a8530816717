//! The drawing on stderr: one column per thread that did something (a process's main
//! thread, then its other threads), one row per event, for a learner.
//!
//! ```text
//!      ms │ PID 4001          PID 4002
//!         │ principal         funcao_processo
//! ────────┼───────────────────────────────────
//!     0.0 │ » Processo principal 4001 inicializado
//!     0.2 │ start() → PID 4002 (fork)
//!     0.3 │ join(PID 4002)…
//!     0.4 │ ┊                 ▶ começa: PID 4002, funcao_processo (fork)
//! ```
//!
//! Each row shows the state of every column (`│` running, `┊` waiting in a call, blank
//! before its start and after its end) and the event's text, which starts in its thread's
//! column and runs to the right edge; a text longer than that goes on in the rows below,
//! never cut. A call during which anything else happened, or that took a tenth of a
//! millisecond or more (what a row's time can show), gets two rows, where it began to wait and
//! where it returned, however short it was; any other call, one. A printed line is the process's (its threads share one stdout), drawn in
//! its main thread's column. Columns are in start order: the main process's threads, then
//! each child's. A column freed by a thread that ended is given to the next one that starts
//! (lesson 05 starts eight processes, four at a time); its start row names it.
//!
//! A pool's workers are drawn as the tasks they ran (`tarefa (bloco 3)`, from when the
//! worker took the chunk until it finished it); the pool's own queues, which carry those
//! chunks and their results, are left to the JSON.
//!
//! The width is the `COLUMNS` variable's, else the terminal's (stderr's, then stdout's),
//! else 100.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::io::IsTerminal;
use std::os::fd::AsFd;

use super::model::{Event, Run};
use super::{Kind, Language, primitive};
use crate::sys;

/// `portuguese` or `english`, as `language` says.
fn say(language: Language, portuguese: &'static str, english: &'static str) -> &'static str {
    match language {
        Language::Portuguese => portuguese,
        Language::English => english,
    }
}

/// The width without `COLUMNS` or a terminal.
pub(super) const DEFAULT_WIDTH: usize = 100;
/// The narrowest drawing: a smaller `COLUMNS` is taken as this.
const NARROWEST: usize = 40;
/// The time column, right-aligned, and its separator.
const TIME_WIDTH: usize = 8;
/// The widest a column gets.
const MAX_COLUMN: usize = 30;
/// The least room a row's text gets, however many columns there are.
const LEAST_ROOM: usize = 12;
/// A tenth of a millisecond, in ns: the rows' resolution.
const TICK: u64 = 100_000;
/// What a pool's worker process is called (`short_name`).
const POOL_WORKER: &str = "trabalhador do Pool";

/// The width to draw in: `COLUMNS` if it is a number, else the width of the terminal that
/// stderr (or stdout) is, else [`DEFAULT_WIDTH`]; never below 40.
pub(super) fn width() -> usize {
    let variable = std::env::var("COLUMNS")
        .ok()
        .and_then(|columns| columns.trim().parse::<usize>().ok())
        .filter(|&columns| columns > 0);
    let terminal = || {
        sys::fd::terminal_columns(std::io::stderr().as_fd())
            .or_else(|| sys::fd::terminal_columns(std::io::stdout().as_fd()))
            .map(usize::from)
    };
    variable
        .or_else(terminal)
        .unwrap_or(DEFAULT_WIDTH)
        .max(NARROWEST)
}

/// Whether to colour: stderr is a terminal and `NO_COLOR` is unset (no-color.org).
pub(super) fn colour_wanted() -> bool {
    std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none()
}

/// A column's occupant: a thread of a process, `(pid, tid)`.
type Track = (u32, u32);

/// One row to draw: at `time`, in the column of `track`, `text`.
struct Row {
    time: u64,
    track: Track,
    text: String,
    /// The thread is waiting from this row on (a wait began) or no longer (it returned).
    waiting: Option<bool>,
}

/// "1 processo", "2 processos": a run of lesson 03's two terminals has one process.
fn processes(count: usize, language: Language) -> String {
    match (count, language) {
        (1, Language::Portuguese) => "1 processo".to_owned(),
        (n, Language::Portuguese) => format!("{n} processos"),
        (1, Language::English) => "1 process".to_owned(),
        (n, Language::English) => format!("{n} processes"),
    }
}

/// The drawing of `run`, `width` columns wide at most (plus colour codes if `colour`).
pub(super) fn draw(run: &Run, width: usize, colour: bool, language: Language) -> String {
    let rows = rows(run, language);
    let lanes = Lanes::assign(run, &rows);
    let column = column_width(width, lanes.count);
    let mut out = String::new();
    let title = format!(
        "{}: {}; {}",
        say(language, "Linha do tempo", "Timeline"),
        processes(run.processes.len(), language),
        say(
            language,
            "tempos em ms desde o init()",
            "times in ms since init()"
        )
    );
    for piece in wrap(&title, width, width) {
        out.push_str(piece.trim_end());
        out.push('\n');
    }
    header(&mut out, run, &lanes, column, width, language);
    let mut waiting: BTreeMap<Track, usize> = BTreeMap::new();
    for row in &rows {
        if row.waiting == Some(false) {
            let depth = waiting.entry(row.track).or_default();
            *depth = depth.saturating_sub(1);
        }
        let lane = lanes.of(row.track);
        let marks = |time: Option<u64>| {
            let mut marks = String::new();
            for occupant in lanes.at(row.time).into_iter().take(lane) {
                let mark = match occupant {
                    Some(track) if waiting.get(&track).is_some_and(|&depth| depth > 0) => '┊',
                    Some(_) => '│',
                    None => ' ',
                };
                marks.push(mark);
                marks.extend(std::iter::repeat_n(' ', column - 1));
            }
            let time = time.map_or_else(String::new, ms);
            format!("{time:>w$} │ {marks}", w = TIME_WIDTH - 2)
        };
        let first = marks(Some(row.time));
        let room = width.saturating_sub(first.chars().count()).max(LEAST_ROOM);
        // A continuation is indented under the text after the row's mark (`» `, `▶ `).
        let pieces = wrap(&row.text, room, room.saturating_sub(2).max(LEAST_ROOM));
        for (index, piece) in pieces.iter().enumerate() {
            let (lead, piece) = match index {
                0 => (first.clone(), piece.clone()),
                _ => (marks(None), format!("  {piece}")),
            };
            if colour {
                let _ = write!(out, "\x1b[2m{lead}\x1b[0m{}{piece}\x1b[0m", paint(lane));
            } else {
                out.push_str(&lead);
                out.push_str(&piece);
            }
            out.push('\n');
        }
        if row.waiting == Some(true) {
            *waiting.entry(row.track).or_default() += 1;
        }
    }
    footer(&mut out, run, width, language);
    out
}

/// The width of each of `lanes` columns in a drawing `width` wide: as wide as they can be (up
/// to [`MAX_COLUMN`]) while the headings of all of them fit in the width and the text of a row
/// in the last column still has [`LEAST_ROOM`] before the edge. Two is the least (a mark and
/// a space): only a drawing of more than about `width / 2` threads at once goes past the edge.
fn column_width(width: usize, lanes: usize) -> usize {
    let before_text = TIME_WIDTH + 1;
    let headings_fit = width.saturating_sub(before_text + 1) / lanes.max(1);
    let last_has_room =
        width.saturating_sub(before_text + LEAST_ROOM) / lanes.saturating_sub(1).max(1);
    headings_fit.min(last_has_room).clamp(2, MAX_COLUMN)
}

/// `text` in pieces: the first at most `first` characters long, the others at most `next`;
/// each piece ends after a space where one is near its end. The pieces, joined, are `text`.
fn wrap(text: &str, first: usize, next: usize) -> Vec<String> {
    let chars: Vec<char> = text.chars().collect();
    let mut pieces = Vec::new();
    let mut start = 0;
    let mut room = first.max(1);
    while chars.len() - start > room {
        let window = &chars[start..start + room];
        let cut = window
            .iter()
            .rposition(|&c| c == ' ')
            .filter(|&space| space + 1 > room / 2)
            .map_or(room, |space| space + 1);
        pieces.push(window[..cut].iter().collect());
        start += cut;
        room = next.max(1);
    }
    pieces.push(chars[start..].iter().collect());
    pieces
}

fn header(
    out: &mut String,
    run: &Run,
    lanes: &Lanes,
    column: usize,
    width: usize,
    language: Language,
) {
    let mut ids = format!("{:>w$} │ ", "ms", w = TIME_WIDTH - 2);
    let mut names = format!("{:>w$} │ ", "", w = TIME_WIDTH - 2);
    for &(pid, tid) in &lanes.first {
        let (id, name) = track_names(run, (pid, tid), language);
        let _ = write!(ids, "{:<column$}", fit(&id, column - 1));
        let _ = write!(names, "{:<column$}", fit(&name, column - 1));
    }
    out.push_str(ids.trim_end());
    out.push('\n');
    out.push_str(names.trim_end());
    out.push('\n');
    let rule_width = (TIME_WIDTH + 1 + lanes.first.len() * column).min(width);
    let _ = writeln!(
        out,
        "{}┼{}",
        "─".repeat(TIME_WIDTH - 1),
        "─".repeat(rule_width - TIME_WIDTH)
    );
}

/// A column's heading: `PID n` and the process's target for a main thread, `TID n` and the
/// thread's name for another.
fn track_names(run: &Run, (pid, tid): Track, language: Language) -> (String, String) {
    let process = run.process(pid);
    if pid == tid {
        let target = process.map_or("?".to_owned(), |process| {
            target_name(&process.target, language)
        });
        return (format!("PID {pid}"), target);
    }
    let name = process
        .and_then(|process| process.threads.iter().find(|thread| thread.tid == tid))
        .and_then(|thread| thread.name.clone())
        .unwrap_or_else(|| "?".to_owned());
    (format!("TID {tid}"), name)
}

/// A process's column heading: its target's name as recorded (in Portuguese, the course's
/// language: `principal`, `trabalhador do Pool`, `closure em f`), in `language`.
fn target_name(target: &str, language: Language) -> String {
    if language == Language::Portuguese {
        return target.to_owned();
    }
    match target {
        "principal" => "main".to_owned(),
        POOL_WORKER => "Pool worker".to_owned(),
        other => match other.strip_prefix("closure em ") {
            Some(outer) => format!("closure in {outer}"),
            None => other.to_owned(),
        },
    }
}

fn footer(out: &mut String, run: &Run, width: usize, language: Language) {
    let legend = say(
        language,
        "Legenda: » linha impressa (do processo) · ▶ começo · ■ fim · │ rodando · ┊ esperando numa chamada",
        "Legend: » printed line (by the process) · ▶ start · ■ end · │ running · ┊ waiting in a call",
    );
    for piece in wrap(legend, width, width) {
        out.push_str(piece.trim_end());
        out.push('\n');
    }
    for process in run.processes.iter().filter(|process| process.counted > 0) {
        let _ = match language {
            Language::Portuguese => writeln!(
                out,
                "PID {}: mais {} eventos de trava (acquire/release), contados e não desenhados",
                process.pid, process.counted
            ),
            Language::English => writeln!(
                out,
                "PID {}: {} more lock events (acquire/release), counted and not drawn",
                process.pid, process.counted
            ),
        };
    }
    if run.lost > 0 {
        let text = say(
            language,
            "eventos não couberam no registro",
            "events did not fit in the log",
        );
        let _ = writeln!(out, "{} {text}", run.lost);
    }
    if run.unfinished > 0 {
        let text = say(
            language,
            "eventos ficaram pela metade (processo morto enquanto registrava)",
            "events were left half-written (a process killed while it recorded)",
        );
        let _ = writeln!(out, "{} {text}", run.unfinished);
    }
}

/// What one event is drawn as, before its rows are chosen.
struct Drawn<'a> {
    event: &'a Event,
    /// Its one row's text.
    text: String,
    /// For a call: its two rows' texts, as it began and as it returned.
    call: Option<(String, String)>,
    /// A queue operation that found or placed no item: drawn only if it waited.
    empty: bool,
}

/// The rows of `run`, in time order.
fn rows(run: &Run, language: Language) -> Vec<Row> {
    let internal = pool_queues(run);
    let mut drawn = Vec::new();
    for event in &run.events {
        let own_exit = || {
            run.events
                .iter()
                .any(|other| other.kind == Kind::Exit && other.pid == event.pid)
        };
        let hidden = match event.kind {
            Kind::ThreadName => true,
            Kind::Reaped => own_exit(), // its own exit row says it already
            Kind::Put | Kind::Get | Kind::TaskDone | Kind::QueueJoin => {
                internal.contains(&event.object)
            }
            _ => false,
        };
        if hidden {
            continue;
        }
        let (text, call) = describe(run, event, language);
        drawn.push(Drawn {
            event,
            text,
            call,
            empty: matches!(event.kind, Kind::Put | Kind::Get) && event.arg == 0,
        });
    }
    // Every moment a row may stand for: a call that spans one of them waited while
    // something else happened, and is drawn from its begin to its return; so is a call that
    // took a tenth of a millisecond or more, which the rows' times can show.
    let mut moments: Vec<u64> = drawn.iter().map(|drawn| drawn.event.begin).collect();
    moments.extend(
        drawn
            .iter()
            .filter(|drawn| drawn.call.is_some())
            .map(|drawn| drawn.event.end),
    );
    moments.sort_unstable();
    let spans_another = |event: &Event| {
        let after_begin = moments.partition_point(|&moment| moment <= event.begin);
        moments
            .get(after_begin)
            .is_some_and(|&moment| moment < event.end)
    };
    let mut rows = Vec::new();
    for drawn in drawn {
        let event = drawn.event;
        let track = Run::track(event);
        let row = |time, text, waiting| Row {
            time,
            track,
            text,
            waiting,
        };
        match drawn.call {
            Some((waiting, returned))
                if spans_another(event) || event.end - event.begin >= TICK =>
            {
                rows.push(row(event.begin, format!("{waiting}…"), Some(true)));
                rows.push(row(event.end, returned, Some(false)));
            }
            _ if drawn.empty => {} // a quick look that found no item
            _ => rows.push(row(event.begin, drawn.text, None)),
        }
    }
    rows.sort_by_key(|row| row.time);
    rows
}

/// The queues a pool's workers use: the pool's own, which carry chunks and their results.
fn pool_queues(run: &Run) -> BTreeSet<u64> {
    let workers: BTreeSet<u32> = run
        .processes
        .iter()
        .filter(|process| process.target == POOL_WORKER)
        .map(|process| process.pid)
        .collect();
    run.events
        .iter()
        .filter(|event| workers.contains(&event.pid))
        .filter(|event| {
            matches!(
                event.kind,
                Kind::Put | Kind::Get | Kind::TaskDone | Kind::QueueJoin
            )
        })
        .map(|event| event.object)
        .collect()
}

/// What a row says about `event`; for a call, also what its two rows say when it waited: as
/// it began, and as it returned.
fn describe(run: &Run, event: &Event, language: Language) -> (String, Option<(String, String)>) {
    let took = || {
        let returned = say(language, "voltou após", "returned after");
        match event.end - event.begin {
            short if short < TICK => format!("{returned} < 0.1 ms"),
            took => format!("{returned} {} ms", ms(took)),
        }
    };
    let call = |name: String, result: String| {
        let short = format!("{name}{result}");
        let returned = format!("{name} {}{result}", took());
        (short, Some((name, returned)))
    };
    let queue = || {
        let queue = say(language, "fila", "queue");
        format!("{queue} {}", run.queue(event.object))
    };
    let item = || match event.arg {
        0 => say(language, ": nenhum item", ": no item").to_owned(),
        item => format!(" → item {item}"),
    };
    let primitive = || primitive_name(event.arg, language);
    match event.kind {
        Kind::Start => (
            format!(
                "start() → PID {} ({})",
                event.object,
                super::method_name(event.arg)
            ),
            None,
        ),
        Kind::Began => {
            let method = super::method_name(event.arg);
            (
                format!(
                    "▶ {}: PID {}, {} ({method})",
                    say(language, "começa", "starts"),
                    event.pid,
                    target_name(&event.text, language)
                ),
                None,
            )
        }
        Kind::Print => (format!("» {}", event.text), None),
        Kind::Put => call(format!("put({})", queue()), item()),
        Kind::Get => call(format!("get({})", queue()), item()),
        Kind::Send => call("send()".to_owned(), String::new()),
        Kind::Recv => call("recv()".to_owned(), String::new()),
        Kind::TaskDone => (format!("task_done({})", queue()), None),
        Kind::QueueJoin => call(format!("{}.join()", queue()), String::new()),
        Kind::Acquire => call(format!("{}: acquire()", primitive()), String::new()),
        Kind::Release => (format!("{}: release()", primitive()), None),
        Kind::Wait => call(format!("{}: wait()", primitive()), String::new()),
        Kind::Notify => {
            let verb = match event.arg {
                primitive::EVENT => "set()",
                _ => "notify()",
            };
            (format!("{}: {verb}", primitive()), None)
        }
        Kind::Join => call(format!("join(PID {})", event.object), String::new()),
        Kind::ThreadStart => (
            format!("start() → {} (TID {})", event.text, event.object),
            None,
        ),
        Kind::ThreadJoin => call(format!("join(TID {})", event.object), String::new()),
        Kind::Exit | Kind::Reaped => (
            format!(
                "■ {}, {}",
                say(language, "fim", "end"),
                exit_text(event.code(), language)
            ),
            None,
        ),
        Kind::MainEnd => (
            say(language, "■ main retornou", "■ main returned").to_owned(),
            None,
        ),
        Kind::PoolMap => call("pool.map()".to_owned(), String::new()),
        Kind::PoolApply => call("pool.apply()".to_owned(), String::new()),
        Kind::PoolTask => call(
            format!(
                "{} {})",
                say(language, "tarefa (bloco", "task (chunk"),
                event.arg + 1
            ),
            String::new(),
        ),
        Kind::ThreadName => (event.text.clone(), None),
    }
}

/// How a row names a lock or wait primitive.
fn primitive_name(code: u64, language: Language) -> &'static str {
    match code {
        primitive::RLOCK => "RLock",
        primitive::SEMAPHORE => say(language, "semáforo", "semaphore"),
        primitive::CONDITION => say(language, "condição", "condition"),
        primitive::EVENT => say(language, "evento", "event"),
        primitive::BARRIER => say(language, "barreira", "barrier"),
        _ => say(language, "trava", "lock"),
    }
}

/// `código 0`, or `morto por SIGTERM` for a negative code.
pub(super) fn exit_text(code: i32, language: Language) -> String {
    match (code < 0, language) {
        (true, Language::Portuguese) => format!("morto por {}", signal_name(-code)),
        (true, Language::English) => {
            format!(
                "killed by {}",
                signal_name(-code).replace("sinal ", "signal ")
            )
        }
        (false, Language::Portuguese) => format!("código {code}"),
        (false, Language::English) => format!("code {code}"),
    }
}

/// The usual name of signal `number`.
pub(super) fn signal_name(number: i32) -> String {
    match number {
        1 => "SIGHUP".to_owned(),
        2 => "SIGINT".to_owned(),
        6 => "SIGABRT".to_owned(),
        9 => "SIGKILL".to_owned(),
        11 => "SIGSEGV".to_owned(),
        13 => "SIGPIPE".to_owned(),
        15 => "SIGTERM".to_owned(),
        other => format!("sinal {other}"),
    }
}

/// Milliseconds with one decimal.
fn ms(ns: u64) -> String {
    format!("{}.{}", ns / 1_000_000, ns % 1_000_000 / 100_000)
}

/// `text` cut to `room` characters, its last one `…` if it was cut.
fn fit(text: &str, room: usize) -> String {
    if text.chars().count() <= room {
        return text.to_owned();
    }
    let mut cut: String = text.chars().take(room.saturating_sub(1)).collect();
    cut.push('…');
    cut
}

fn paint(lane: usize) -> &'static str {
    const COLOURS: [&str; 6] = [
        "\x1b[36m", "\x1b[33m", "\x1b[35m", "\x1b[32m", "\x1b[34m", "\x1b[31m",
    ];
    COLOURS[lane % COLOURS.len()]
}

/// Which column each thread has. Threads take columns in start order (the main process's
/// threads, then each child's), each the leftmost column free when it starts; a column is
/// free again after its thread's last row.
struct Lanes {
    /// Track → column.
    lane: BTreeMap<Track, usize>,
    /// The first track of each column, for the header.
    first: Vec<Track>,
    /// Each track's span of time, from its start to its last row, to know who occupies a
    /// column on a row.
    life: BTreeMap<Track, (u64, u64)>,
    count: usize,
}

impl Lanes {
    fn assign(run: &Run, rows: &[Row]) -> Lanes {
        let mut life: BTreeMap<Track, (u64, u64)> = BTreeMap::new();
        for row in rows {
            let entry = life.entry(row.track).or_insert((row.time, row.time));
            entry.0 = entry.0.min(row.time);
            entry.1 = entry.1.max(row.time);
        }
        // A thread's life starts when it was started: a process by its parent's `start()`,
        // a thread by `Thread::start()`, even if its first row comes later (or never).
        for event in &run.events {
            let started = match (event.kind, u32::try_from(event.object)) {
                (Kind::Start, Ok(child)) => Some((child, child)),
                (Kind::ThreadStart, Ok(thread)) => Some((event.pid, thread)),
                _ => None,
            };
            if let Some(entry) = started.and_then(|track| life.get_mut(&track)) {
                entry.0 = entry.0.min(event.begin);
            }
        }
        let order: Vec<Track> = run
            .processes
            .iter()
            .flat_map(|process| {
                process
                    .threads
                    .iter()
                    .map(move |thread| (process.pid, thread.tid))
            })
            .filter(|track| life.contains_key(track))
            .collect();
        let mut busy_until: Vec<u64> = Vec::new();
        let mut lanes = Lanes {
            lane: BTreeMap::new(),
            first: Vec::new(),
            life: life.clone(),
            count: 0,
        };
        for track in order {
            let (from, to) = life[&track];
            let free = busy_until.iter().position(|&until| until < from);
            let lane = match free {
                Some(lane) => lane,
                None => {
                    busy_until.push(0);
                    lanes.first.push(track);
                    busy_until.len() - 1
                }
            };
            busy_until[lane] = to;
            lanes.lane.insert(track, lane);
        }
        lanes.count = busy_until.len();
        lanes
    }

    fn of(&self, track: Track) -> usize {
        self.lane.get(&track).copied().unwrap_or(0)
    }

    /// Who occupies each column at `time` (`None`: nobody): the thread whose life spans it.
    fn at(&self, time: u64) -> Vec<Option<Track>> {
        let mut occupants = vec![None; self.count];
        for (&track, &(from, to)) in &self.life {
            if (from..=to).contains(&time) {
                occupants[self.of(track)] = Some(track);
            }
        }
        occupants
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fit_cuts_with_an_ellipsis() {
        assert_eq!(fit("abcdef", 6), "abcdef");
        assert_eq!(fit("abcdef", 4), "abc…");
        assert_eq!(fit("ação", 3), "aç…");
    }

    #[test]
    fn one_process_is_singular() {
        assert_eq!(processes(1, Language::Portuguese), "1 processo");
        assert_eq!(processes(9, Language::Portuguese), "9 processos");
        assert_eq!(processes(1, Language::English), "1 process");
        assert_eq!(processes(9, Language::English), "9 processes");
    }

    #[test]
    fn milliseconds_have_one_decimal() {
        assert_eq!(ms(0), "0.0");
        assert_eq!(ms(2_001_250_000), "2001.2");
    }

    #[test]
    fn the_fixed_lines_fit_the_width() {
        let run = Run {
            processes: Vec::new(),
            events: Vec::new(),
            queues: BTreeMap::new(),
            lost: 1,
            unfinished: 1,
        };
        for language in [Language::Portuguese, Language::English] {
            let text = draw(&run, DEFAULT_WIDTH, false, language);
            assert!(
                text.lines()
                    .all(|line| line.chars().count() <= DEFAULT_WIDTH),
                "{text}"
            );
        }
    }

    #[test]
    fn exits_name_signals() {
        assert_eq!(exit_text(0, Language::Portuguese), "código 0");
        assert_eq!(exit_text(-15, Language::Portuguese), "morto por SIGTERM");
        assert_eq!(exit_text(-40, Language::Portuguese), "morto por sinal 40");
        assert_eq!(exit_text(0, Language::English), "code 0");
        assert_eq!(exit_text(-15, Language::English), "killed by SIGTERM");
        assert_eq!(exit_text(-40, Language::English), "killed by signal 40");
    }

    #[test]
    fn a_library_users_drawing_is_english_and_a_lessons_portuguese() {
        let run = Run {
            processes: Vec::new(),
            events: Vec::new(),
            queues: BTreeMap::new(),
            lost: 0,
            unfinished: 0,
        };
        let english = draw(&run, DEFAULT_WIDTH, false, Language::English);
        assert!(english.starts_with("Timeline: 0 processes; times in ms since init()\n"));
        assert!(english.contains("Legend: » printed line"), "{english}");
        let portuguese = draw(&run, DEFAULT_WIDTH, false, Language::Portuguese);
        assert!(
            portuguese.starts_with("Linha do tempo: 0 processos; tempos em ms desde o init()\n")
        );
        assert_eq!(
            target_name("trabalhador do Pool", Language::English),
            "Pool worker"
        );
        assert_eq!(
            target_name("closure em main", Language::English),
            "closure in main"
        );
        assert_eq!(target_name("principal", Language::Portuguese), "principal");
        assert_eq!(
            target_name("funcao_processo", Language::English),
            "funcao_processo"
        );
    }

    use super::super::model::{Process, Thread};

    fn event(kind: Kind, pid: u32, tid: u32, (begin, end): (u64, u64), object: u64) -> Event {
        Event {
            kind,
            pid,
            writer: pid,
            tid: if kind == Kind::Print { None } else { Some(tid) },
            begin,
            end,
            mark: begin,
            object,
            arg: 0,
            text: String::new(),
        }
    }

    fn process(pid: u32, target: &str, threads: &[(u32, Option<&str>)]) -> Process {
        Process {
            pid,
            target: target.to_owned(),
            method: Some("fork"),
            exit: None,
            counted: 0,
            threads: threads
                .iter()
                .map(|&(tid, name)| Thread {
                    tid,
                    name: name.map(str::to_owned),
                })
                .collect(),
        }
    }

    fn run(processes: Vec<Process>, mut events: Vec<Event>) -> Run {
        events.sort_by_key(|event| event.begin);
        Run {
            processes,
            events,
            queues: BTreeMap::new(),
            lost: 0,
            unfinished: 0,
        }
    }

    const MS: u64 = 1_000_000;

    #[test]
    fn a_short_call_during_which_something_happened_shows_where_it_returned() {
        // lesson03's case: the main recv() waits 0.05 ms, while the child starts.
        let run = run(
            vec![
                process(1, "principal", &[(1, None)]),
                process(2, "pessoa", &[(2, None)]),
            ],
            vec![
                event(Kind::Recv, 1, 1, (10 * MS, 10 * MS + 50_000), 0),
                event(Kind::Began, 2, 2, (10 * MS + 20_000, 10 * MS + 20_000), 0),
            ],
        );
        let drawing = draw(&run, DEFAULT_WIDTH, false, Language::Portuguese);
        assert!(drawing.contains("recv()…"), "{drawing}");
        assert!(drawing.contains("recv() voltou após < 0.1 ms"), "{drawing}");
        // Alone, the same call is one row.
        let alone = run_alone();
        let drawing = draw(&alone, DEFAULT_WIDTH, false, Language::Portuguese);
        assert!(drawing.contains("│ recv()\n"), "{drawing}");
    }

    fn run_alone() -> Run {
        run(
            vec![process(1, "principal", &[(1, None)])],
            vec![event(Kind::Recv, 1, 1, (10 * MS, 10 * MS + 50_000), 0)],
        )
    }

    #[test]
    fn each_thread_that_did_something_has_a_column_in_start_order() {
        let run = run(
            vec![process(1, "principal", &[(1, None), (7, Some("Thread-1"))])],
            vec![
                event(Kind::ThreadStart, 1, 1, (MS, MS), 7),
                event(Kind::Get, 1, 7, (2 * MS, 2 * MS), 1),
                event(Kind::TaskDone, 1, 7, (3 * MS, 3 * MS), 1),
            ],
        );
        let drawing = draw(&run, DEFAULT_WIDTH, false, Language::Portuguese);
        let mut lines = drawing.lines().skip(1);
        let ids = lines.next().unwrap();
        let names = lines.next().unwrap();
        assert!(column(ids, "PID 1") < column(ids, "TID 7"), "{drawing}");
        assert!(names.contains("Thread-1"), "{drawing}");
        let done = drawing
            .lines()
            .find(|line| line.contains("task_done"))
            .unwrap();
        assert_eq!(column(done, "task_done"), column(ids, "TID 7"), "{drawing}");
    }

    #[test]
    fn a_process_killed_before_its_first_event_has_its_own_column() {
        // A pool's worker killed by terminate() before it ran: only its start and its reaping.
        let mut reaped = event(Kind::Reaped, 3, 3, (9 * MS, 9 * MS), 3);
        reaped.writer = 1;
        reaped.arg = (-9_i64) as u64;
        let run = run(
            vec![
                process(1, "principal", &[(1, None)]),
                process(2, POOL_WORKER, &[(2, None)]),
                process(3, "?", &[(3, None)]),
            ],
            vec![
                event(Kind::Start, 1, 1, (MS, MS), 2),
                event(Kind::Start, 1, 1, (2 * MS, 2 * MS), 3),
                event(Kind::Began, 2, 2, (3 * MS, 3 * MS), 0),
                event(Kind::PoolTask, 2, 2, (4 * MS, 8 * MS), 0),
                reaped,
            ],
        );
        let drawing = draw(&run, DEFAULT_WIDTH, false, Language::Portuguese);
        let ids = drawing.lines().nth(1).unwrap();
        assert!(ids.contains("PID 2") && ids.contains("PID 3"), "{drawing}");
        let killed = drawing
            .lines()
            .find(|line| line.contains("morto por SIGKILL"))
            .unwrap();
        assert_eq!(
            column(killed, "■"),
            column(ids, "PID 3"),
            "its end is in its own column:\n{drawing}"
        );
        assert!(
            drawing.starts_with("Linha do tempo: 3 processos;"),
            "{drawing}"
        );
        assert!(drawing.contains("tarefa (bloco 1)…"), "{drawing}");
    }

    /// The column (in characters) where `needle` starts in `line`.
    fn column(line: &str, needle: &str) -> Option<usize> {
        line.find(needle).map(|at| line[..at].chars().count())
    }

    #[test]
    fn wrapped_pieces_join_back_to_the_text_and_fit() {
        let text = "Mensagem lida: Mensagem do processo 123456 e mais um pouco de texto";
        for room in [5, 12, 20, 80] {
            let pieces = wrap(text, room, room);
            assert_eq!(pieces.concat(), text);
            assert!(pieces.iter().all(|piece| piece.chars().count() <= room));
        }
        assert_eq!(wrap("abc", 10, 10), ["abc"]);
    }

    #[test]
    fn the_last_of_many_columns_keeps_room_for_its_text() {
        for width in [NARROWEST, 80, 100, 160] {
            for lanes in 1..=(width - TIME_WIDTH - 1 - LEAST_ROOM) / 2 {
                let column = column_width(width, lanes);
                let last_text_starts = TIME_WIDTH + 1 + (lanes - 1) * column;
                assert!(
                    last_text_starts + LEAST_ROOM <= width,
                    "{lanes} lanes in {width} columns: the last starts at {last_text_starts}"
                );
                assert!(
                    TIME_WIDTH + 1 + lanes * column <= width,
                    "{lanes} lanes in {width} columns: the headings are wider"
                );
            }
        }
    }

    #[test]
    fn a_narrow_drawing_still_fits() {
        let text = draw(&run_alone(), NARROWEST, false, Language::Portuguese);
        assert!(
            text.lines().all(|line| line.chars().count() <= NARROWEST),
            "{text}"
        );
    }
}
