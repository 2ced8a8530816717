//! The drawing on stderr: one column per process, one row per event, for a learner.
//!
//! ```text
//!      ms │ PID 4001          PID 4002
//!         │ principal         funcao_processo
//! ────────┼───────────────────────────────────
//!     0.0 │ » Processo principal 4001 inicializado
//!     0.2 │ start() → PID 4002 (fork)
//!     0.3 │ join(PID 4002)…   │
//!     0.4 │ ┊                 ▶ começa: funcao_processo (fork)
//! ```
//!
//! Each row shows the state of every column (`│` running, `┊` waiting in a call, blank
//! before its start and after its end) and the event's text, which starts in its process's
//! column and runs to the right edge, so a printed line is readable even with five columns.
//! A call that took 1 ms or more gets two rows, where it began to wait and where it returned;
//! a quicker one, one row. A column freed by a process that ended is given to the next one
//! that starts (lesson 05 starts eight processes, four at a time); its start row names it.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::IsTerminal;

use super::model::{Event, Run};
use super::{Kind, Language};

/// `portuguese` or `english`, as `language` says.
fn say(language: Language, portuguese: &'static str, english: &'static str) -> &'static str {
    match language {
        Language::Portuguese => portuguese,
        Language::English => english,
    }
}

/// The width the drawing fits in.
pub(super) const WIDTH: usize = 100;
/// The time column, right-aligned, and its separator.
const TIME_WIDTH: usize = 8;
/// The widest a column gets.
const MAX_COLUMN: usize = 30;
/// A call this long (ns) or longer is drawn as a wait, from its begin to its return.
const WAIT_NS: u64 = 1_000_000;

/// Whether to colour: stderr is a terminal and `NO_COLOR` is unset (no-color.org).
pub(super) fn colour_wanted() -> bool {
    std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none()
}

/// One row to draw: at `time`, in the column of `pid`, `text`.
struct Row {
    time: u64,
    pid: u32,
    text: String,
    /// The process is waiting from this row on (a wait began) or no longer (it returned).
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
    let column = ((width - TIME_WIDTH - 2) / lanes.count.max(1)).clamp(4, MAX_COLUMN);
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{}: {}; {}",
        say(language, "Linha do tempo", "Timeline"),
        processes(run.processes.len(), language),
        say(
            language,
            "tempos em ms desde o init()",
            "times in ms since init()"
        )
    );
    header(&mut out, run, &lanes, column, width, language);
    let mut waiting: BTreeMap<u32, bool> = BTreeMap::new();
    for row in &rows {
        if row.waiting == Some(false) {
            waiting.insert(row.pid, false);
        }
        let lane = lanes.of(row.pid);
        let mut line = format!("{:>w$} │ ", ms(row.time), w = TIME_WIDTH - 2);
        for occupant in lanes.at(row.time).into_iter().take(lane) {
            let mark = match occupant {
                Some(pid) if waiting.get(&pid) == Some(&true) => '┊',
                Some(_) => '│',
                None => ' ',
            };
            line.push(mark);
            line.extend(std::iter::repeat_n(' ', column - 1));
        }
        let room = width.saturating_sub(line.chars().count());
        let text = fit(&row.text, room);
        if colour {
            let _ = write!(out, "\x1b[2m{line}\x1b[0m{}{text}\x1b[0m", paint(lane));
        } else {
            out.push_str(&line);
            out.push_str(&text);
        }
        out.push('\n');
        if row.waiting == Some(true) {
            waiting.insert(row.pid, true);
        }
    }
    footer(&mut out, run, language);
    out
}

fn header(
    out: &mut String,
    run: &Run,
    lanes: &Lanes,
    column: usize,
    width: usize,
    language: Language,
) {
    let mut pids = format!("{:>w$} │ ", "ms", w = TIME_WIDTH - 2);
    let mut targets = format!("{:>w$} │ ", "", w = TIME_WIDTH - 2);
    for first in &lanes.first {
        let process = run.process(*first);
        let pid = format!("PID {first}");
        let target = process.map_or("?".to_owned(), |process| {
            target_name(&process.target, language)
        });
        let _ = write!(pids, "{:<column$}", fit(&pid, column - 1));
        let _ = write!(targets, "{:<column$}", fit(&target, column - 1));
    }
    out.push_str(pids.trim_end());
    out.push('\n');
    out.push_str(targets.trim_end());
    out.push('\n');
    let rule_width = (TIME_WIDTH + 1 + lanes.first.len() * column).min(width);
    let _ = writeln!(
        out,
        "{}┼{}",
        "─".repeat(TIME_WIDTH - 1),
        "─".repeat(rule_width - TIME_WIDTH)
    );
}

/// A process's column heading: its target's name as recorded (in Portuguese, the course's
/// language: `principal`, `trabalhador do Pool`, `closure em f`), in `language`.
fn target_name(target: &str, language: Language) -> String {
    if language == Language::Portuguese {
        return target.to_owned();
    }
    match target {
        "principal" => "main".to_owned(),
        "trabalhador do Pool" => "Pool worker".to_owned(),
        other => match other.strip_prefix("closure em ") {
            Some(outer) => format!("closure in {outer}"),
            None => other.to_owned(),
        },
    }
}

fn footer(out: &mut String, run: &Run, language: Language) {
    out.push_str(say(
        language,
        "Legenda: » linha impressa · ▶ começo · ■ fim · │ rodando · ┊ esperando numa chamada\n",
        "Legend: » printed line · ▶ start · ■ end · │ running · ┊ waiting in a call\n",
    ));
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

/// The rows of `run`, in time order.
fn rows(run: &Run, language: Language) -> Vec<Row> {
    let mut rows = Vec::new();
    for event in &run.events {
        let exited_itself = run.events.iter().any(|other| {
            other.kind == Kind::Exit && other.pid == event.pid && event.kind == Kind::Reaped
        });
        if exited_itself {
            continue; // its own exit row says it already
        }
        let long = event.end - event.begin >= WAIT_NS;
        if matches!(event.kind, Kind::Put | Kind::Get) && event.arg == 0 && !long {
            continue; // a quick look that found no item (a pool polls its queues)
        }
        let (text, waited) = describe(run, event, language);
        let row = |time, text, waiting| Row {
            time,
            pid: event.pid,
            text,
            waiting,
        };
        match waited {
            Some((waiting, returned)) if long => {
                rows.push(row(event.begin, format!("{waiting}…"), Some(true)));
                rows.push(row(event.end, returned, Some(false)));
            }
            _ => rows.push(row(event.begin, text, None)),
        }
    }
    rows.sort_by_key(|row| row.time);
    rows
}

/// What a row says about `event`; for a call, also what its two rows say when it waited: as
/// it began, and as it returned.
fn describe(run: &Run, event: &Event, language: Language) -> (String, Option<(String, String)>) {
    let took = || {
        let returned = say(language, "voltou após", "returned after");
        format!("{returned} {} ms", ms(event.end - event.begin))
    };
    let call = |name: String, result: String| {
        let short = format!("{name}{result}");
        let returned = format!("{} {}{result}", name_only(&name), took());
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
        Kind::Acquire => call(
            say(language, "trava: acquire()", "lock: acquire()").to_owned(),
            String::new(),
        ),
        Kind::Release => (
            say(language, "trava: release()", "lock: release()").to_owned(),
            None,
        ),
        Kind::Join => call(format!("join(PID {})", event.object), String::new()),
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
    }
}

/// `get` of `get(fila 1)`: how a return row names its call.
fn name_only(call: &str) -> &str {
    call.split_once('(').map_or(call, |(name, _)| name)
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

/// Which column each process has. A process takes the leftmost column free when its first
/// row comes; a column is free again after its process's last row.
struct Lanes {
    /// PID → column.
    lane: BTreeMap<u32, usize>,
    /// The first process of each column, for the header.
    first: Vec<u32>,
    /// Each process's rows' span of time, to know who occupies a column on a row.
    life: BTreeMap<u32, (u64, u64)>,
    count: usize,
}

impl Lanes {
    fn assign(run: &Run, rows: &[Row]) -> Lanes {
        let mut life: BTreeMap<u32, (u64, u64)> = BTreeMap::new();
        for row in rows {
            let entry = life.entry(row.pid).or_insert((row.time, row.time));
            entry.1 = entry.1.max(row.time);
        }
        // Columns in the run's order (main first, then start order), each at its first row.
        let mut order: Vec<u32> = run
            .processes
            .iter()
            .map(|process| process.pid)
            .filter(|pid| life.contains_key(pid))
            .collect();
        order.sort_by_key(|pid| (*pid != run.processes[0].pid, life[pid].0));
        let mut busy_until: Vec<u64> = Vec::new();
        let mut lanes = Lanes {
            lane: BTreeMap::new(),
            first: Vec::new(),
            life: life.clone(),
            count: 0,
        };
        for pid in order {
            let (from, to) = life[&pid];
            let free = busy_until.iter().position(|&until| until < from);
            let lane = match free {
                Some(lane) => lane,
                None => {
                    busy_until.push(0);
                    lanes.first.push(pid);
                    busy_until.len() - 1
                }
            };
            busy_until[lane] = to;
            lanes.lane.insert(pid, lane);
        }
        lanes.count = busy_until.len();
        lanes
    }

    fn of(&self, pid: u32) -> usize {
        self.lane.get(&pid).copied().unwrap_or(0)
    }

    /// Who occupies each column at `time` (`None`: nobody): the process whose rows span it.
    fn at(&self, time: u64) -> Vec<Option<u32>> {
        let mut occupants = vec![None; self.count];
        for (&pid, &(from, to)) in &self.life {
            if (from..=to).contains(&time) {
                occupants[self.of(pid)] = Some(pid);
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
            let text = draw(&run, WIDTH, false, language);
            assert!(
                text.lines().all(|line| line.chars().count() <= WIDTH),
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
        let english = draw(&run, WIDTH, false, Language::English);
        assert!(english.starts_with("Timeline: 0 processes; times in ms since init()\n"));
        assert!(english.contains("Legend: » printed line"), "{english}");
        let portuguese = draw(&run, WIDTH, false, Language::Portuguese);
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
}
