//! Harness for the lessons' tests: it runs a lesson binary and reads a README's sample run, so that
//! each lesson checks one guarantees function against a fork, a spawn and a forkserver run and its
//! README (in `lesson0N-*/tests/lesson.rs`).
//!
//! - [`run`] starts a binary with `--start-method fork|spawn|forkserver` in a process group of
//!   its own, waits for it with a timeout and fails if anything in that group outlives it (a
//!   forkserver included).
//!   [`Run::transcript`] checks what every lesson shares (exit status 0, empty stderr, a first
//!   line that names the main process's PID, no printed PID still alive).
//! - [`readme::sample`] gives the README's sample run of a binary as a [`Transcript`] too.
//! - [`Lesson`] builds a binary or an example of another package with `escargot`, for the tests
//!   in `tests/tests/` that run one.
//!
//! PIDs are written [`PID`] in the patterns given to [`Transcript::find`]. Every failure
//! message shows the whole stdout.

pub mod readme;
pub mod timeline;

use std::collections::BTreeSet;
use std::fmt;
use std::fs;
use std::io::{ErrorKind, Read};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::OnceLock;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::thread;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::sys::signal::{self, Signal};
use nix::unistd::Pid;

/// How long a lesson may run before its process group is killed and the test fails.
pub const TIMEOUT: Duration = Duration::from_secs(30);

/// How long the output pipes may stay open once the lesson has exited. Only a process that
/// escaped the lesson's process group could hold them open longer.
const PIPE_CLOSE_TIMEOUT: Duration = Duration::from_secs(5);

/// How often [`Lesson::run`] checks whether the lesson has exited.
const POLL_INTERVAL: Duration = Duration::from_millis(10);

/// Stands for a PID in expected lines and in [`Transcript::find`] patterns.
pub const PID: &str = "[PID]";

/// The value of `--start-method`, as in Python's `multiprocessing.set_start_method`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StartMethod {
    /// The child is a `fork` of the parent.
    Fork,
    /// The child is a fresh run of the program.
    Spawn,
    /// The child is forked by a server that is a fresh run of the program.
    Forkserver,
}

impl StartMethod {
    /// The name given to `--start-method`.
    pub fn name(self) -> &'static str {
        match self {
            StartMethod::Fork => "fork",
            StartMethod::Spawn => "spawn",
            StartMethod::Forkserver => "forkserver",
        }
    }
}

/// A lesson binary: its package, its name, and its path once built.
pub struct Lesson {
    package: &'static str,
    bin: &'static str,
    /// Whether `bin` names an example rather than a binary.
    example: bool,
    path: OnceLock<PathBuf>,
}

impl Lesson {
    /// Names the binary `bin` of the workspace package `package`; nothing is built yet.
    pub const fn new(package: &'static str, bin: &'static str) -> Lesson {
        Lesson {
            package,
            bin,
            example: false,
            path: OnceLock::new(),
        }
    }

    /// Names the example `example` of the workspace package `package`, to run like a lesson.
    pub const fn example(package: &'static str, example: &'static str) -> Lesson {
        Lesson {
            package,
            bin: example,
            example: true,
            path: OnceLock::new(),
        }
    }

    /// The binary's path, building it on first use. `CARGO_BIN_EXE_<name>` exists only for
    /// the package that owns a binary, so the lessons are built here with `escargot`.
    pub fn path(&self) -> &Path {
        self.path
            .get_or_init(|| build(self.package, self.bin, self.example))
    }

    /// Builds the binary if need be and [`run`]s it.
    #[track_caller]
    pub fn run(&self, method: StartMethod) -> Run {
        run(self.path(), method)
    }
}

/// Runs the binary at `path` with `--start-method`, stdout and stderr piped, and waits for it.
///
/// Fails (after killing the whole process group) if the binary runs longer than [`TIMEOUT`],
/// if any process of its group is still alive once it has exited, or if its output pipes stay
/// open after it has exited.
#[track_caller]
pub fn run(path: impl AsRef<Path>, method: StartMethod) -> Run {
    run_with(path, method, &[])
}

/// As [`run`], with `extra` arguments after `--start-method` (`--timeline`, say).
#[track_caller]
pub fn run_with(path: impl AsRef<Path>, method: StartMethod, extra: &[&str]) -> Run {
    run_with_env(path, method, extra, &[])
}

/// As [`run_with`], with the environment variables `env` set (`COLUMNS`, say).
#[track_caller]
pub fn run_with_env(
    path: impl AsRef<Path>,
    method: StartMethod,
    extra: &[&str],
    env: &[(&str, &str)],
) -> Run {
    let path = path.as_ref();
    let name = path
        .file_name()
        .unwrap_or(path.as_os_str())
        .to_string_lossy();
    let context = format!(
        "{name} --start-method {} {}",
        method.name(),
        extra.join(" ")
    );
    let mut child = Command::new(path)
        .args(["--start-method", method.name()])
        .args(extra)
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // A group of its own, inherited by every child: the group can be scanned for survivors
        // (printed or not) and killed as a whole on timeout.
        .process_group(0)
        .spawn()
        .unwrap_or_else(|error| panic!("could not start {}: {error}", path.display()));
    let pid = child.id();
    let stdout = drain(child.stdout.take().expect("stdout is piped"));
    let stderr = drain(child.stderr.take().expect("stderr is piped"));

    let outcome = wait_for_group(&mut child);
    let pipes_deadline = Instant::now() + PIPE_CLOSE_TIMEOUT;
    let stdout = collect(&stdout, pipes_deadline);
    let stderr = collect(&stderr, pipes_deadline);
    match into_output(outcome, stdout, stderr) {
        Ok(output) => Run {
            context,
            pid,
            output,
        },
        Err(failure) => panic!("{context} (PID {pid}) {failure}"),
    }
}

/// A finished run of a lesson binary.
#[derive(Debug)]
pub struct Run {
    context: String,
    /// The PID of the process that was started, i.e. the lesson's main process.
    pub pid: u32,
    /// Exit status and everything the lesson wrote.
    pub output: Output,
}

impl Run {
    /// Makes the checks every lesson shares and returns the transcript for the lesson's own:
    /// exit status 0, empty stderr, a first line that names this process's PID (see
    /// [`Transcript::main_pid`]), and no printed PID still alive.
    #[track_caller]
    pub fn transcript(&self) -> Transcript {
        self.checked_transcript(false)
    }

    /// As [`transcript`](Self::transcript), but stderr may hold something (a `--timeline`
    /// drawing, which the caller checks).
    #[track_caller]
    pub fn transcript_with_stderr(&self) -> Transcript {
        self.checked_transcript(true)
    }

    #[track_caller]
    fn checked_transcript(&self, stderr_allowed: bool) -> Transcript {
        let (status, stderr) = (self.output.status, &self.output.stderr);
        let transcript = Transcript::parse(&self.context, &self.output.stdout);
        if !status.success() || (!stderr_allowed && !stderr.is_empty()) {
            let stderr = String::from_utf8_lossy(stderr);
            transcript.fail(&format!("{status}, stderr:\n{stderr}"));
        }
        if transcript.main_pid() != self.pid {
            transcript.fail(&format!(
                "the first line is not of this process, {}",
                self.pid
            ));
        }
        let alive: Vec<&u32> = transcript
            .pids
            .iter()
            .filter(|&&pid| is_alive(pid))
            .collect();
        if !alive.is_empty() {
            transcript.fail(&format!(
                "printed PIDs still alive after it exited: {alive:?}"
            ));
        }
        transcript
    }
}

/// The stdout of a run (or of a README's sample run), split into lines, with the PIDs it names.
pub struct Transcript {
    context: String,
    lines: Vec<String>,
    pids: BTreeSet<u32>,
}

/// A line that matched a [`Transcript::find`] pattern.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Match {
    /// Where the line is in the transcript, from 0.
    pub index: usize,
    /// The PIDs that stood where the pattern has [`PID`], in order.
    pub pids: Vec<u32>,
}

impl Transcript {
    /// Splits `stdout`, what `context` printed.
    pub fn parse(context: &str, stdout: &[u8]) -> Transcript {
        let text = String::from_utf8(stdout.to_vec()).unwrap_or_else(|_| {
            panic!(
                "{context}: stdout is not UTF-8:\n{}",
                String::from_utf8_lossy(stdout)
            )
        });
        let lines: Vec<String> = text.lines().map(str::to_owned).collect();
        let pids = lines.iter().flat_map(|line| printed_pids(line)).collect();
        Transcript {
            context: context.to_owned(),
            lines,
            pids,
        }
    }

    /// The PID of the main process: every listing's first line is `Processo principal P
    /// inicializado`, printed before any child exists. Fails unless the first line is that.
    #[track_caller]
    pub fn main_pid(&self) -> u32 {
        let first = format!("Processo principal {PID} inicializado");
        match self
            .lines
            .first()
            .and_then(|line| capture_pids(&first, line))
        {
            Some(pids) => pids[0],
            None => self.fail(&format!("expected the first line to be like `{first}`")),
        }
    }

    /// The lines that match `pattern`, where each [`PID`] stands for a number.
    pub fn find(&self, pattern: &str) -> Vec<Match> {
        let lines = self.lines.iter().enumerate();
        lines
            .filter_map(|(index, line)| {
                Some(Match {
                    index,
                    pids: capture_pids(pattern, line)?,
                })
            })
            .collect()
    }

    /// The PID in the one line that matches `pattern`, which has a single [`PID`].
    #[track_caller]
    pub fn find_one_pid(&self, pattern: &str) -> u32 {
        match self.find(pattern).as_slice() {
            [Match { pids, .. }] if pids.len() == 1 => pids[0],
            found => self.fail(&format!(
                "expected one line like `{pattern}`, found {found:?}"
            )),
        }
    }

    /// Fails unless the lines are `expected`, each exactly once, in any order. Given with real
    /// PIDs, `expected` ties every printed PID to its process.
    #[track_caller]
    pub fn assert_lines(&self, expected: &[impl AsRef<str>]) {
        let mut seen = BTreeSet::new();
        // A line printed twice is what a `fork` with unflushed stdout buffers produces.
        if let Some(line) = self.lines.iter().find(|line| !seen.insert(*line)) {
            self.fail(&format!("line `{line}` appears more than once"));
        }
        let mut actual: Vec<&str> = self.lines.iter().map(String::as_str).collect();
        let mut expected: Vec<&str> = expected.iter().map(AsRef::as_ref).collect();
        actual.sort_unstable();
        expected.sort_unstable();
        if actual != expected {
            self.fail(&format!(
                "the lines differ from the listing's (sorted)\n\
                 expected: {expected:#?}\nactual: {actual:#?}"
            ));
        }
    }

    /// Where `line` is; fails unless it is there exactly once.
    #[track_caller]
    pub fn position(&self, line: &str) -> usize {
        let mut found = self
            .lines
            .iter()
            .enumerate()
            .filter(|(_, candidate)| *candidate == line);
        match (found.next(), found.next()) {
            (Some((index, _)), None) => index,
            (None, _) => self.fail(&format!("missing line `{line}`")),
            (Some(_), Some(_)) => self.fail(&format!("line `{line}` appears more than once")),
        }
    }

    /// Fails unless line `index` is `line`.
    #[track_caller]
    pub fn assert_at(&self, index: usize, line: &str) {
        if self.lines.get(index).map(String::as_str) != Some(line) {
            self.fail(&format!("expected line {index} to be `{line}`"));
        }
    }

    /// Fails unless the last line is `line`.
    #[track_caller]
    pub fn assert_last(&self, line: &str) {
        self.assert_at(self.lines.len().saturating_sub(1), line);
    }

    /// Fails unless each of `lines` is present once and they appear in this order.
    #[track_caller]
    pub fn assert_order(&self, lines: &[impl AsRef<str>]) {
        for pair in lines.windows(2) {
            let (earlier, later) = (pair[0].as_ref(), pair[1].as_ref());
            if self.position(earlier) >= self.position(later) {
                self.fail(&format!("expected `{earlier}` before `{later}`"));
            }
        }
    }

    /// Fails unless the named PIDs are all different.
    #[track_caller]
    pub fn assert_distinct(&self, named_pids: &[(&str, u32)]) {
        for (i, (name, pid)) in named_pids.iter().enumerate() {
            for (other, other_pid) in &named_pids[i + 1..] {
                if pid == other_pid {
                    self.fail(&format!("{name} and {other} have the same PID {pid}"));
                }
            }
        }
    }

    /// Every line, in order.
    pub fn lines(&self) -> &[String] {
        &self.lines
    }

    /// Every PID the lines print (see the crate's PID rule: right after "processo" or
    /// "principal").
    pub fn pids(&self) -> &BTreeSet<u32> {
        &self.pids
    }

    /// Panics with `message`, the run's context and the whole stdout.
    #[track_caller]
    pub fn fail(&self, message: &str) -> ! {
        panic!("{}: {message}\n{self}", self.context)
    }
}

impl fmt::Display for Transcript {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "--- stdout ({} lines) ---", self.lines.len())?;
        for (index, line) in self.lines.iter().enumerate() {
            writeln!(f, "{index:>3}| {line}")?;
        }
        write!(f, "--- end of stdout ---")
    }
}

/// The PIDs `line` prints. The listings print a PID only right after "processo" or
/// "principal", which leaves out "Tarefa 1" or "qsize(): 3".
fn printed_pids(line: &str) -> Vec<u32> {
    let words: Vec<&str> = line.split(' ').collect();
    let labelled =
        |pair: &[&str]| pair[0].eq_ignore_ascii_case("processo") || pair[0] == "principal";
    let digits = |word: &str| !word.is_empty() && word.bytes().all(|byte| byte.is_ascii_digit());
    let pids = words
        .windows(2)
        .filter(|pair| labelled(pair) && digits(pair[1]));
    pids.filter_map(|pair| pair[1].parse().ok()).collect()
}

/// The numbers standing where `pattern` has [`PID`], if `line` matches it.
fn capture_pids(pattern: &str, line: &str) -> Option<Vec<u32>> {
    let mut literals = pattern.split(PID);
    let mut rest = line.strip_prefix(literals.next()?)?;
    let mut pids = Vec::new();
    for literal in literals {
        let digits = rest.len() - rest.trim_start_matches(|c: char| c.is_ascii_digit()).len();
        pids.push(rest[..digits].parse().ok()?);
        rest = rest[digits..].strip_prefix(literal)?;
    }
    rest.is_empty().then_some(pids)
}

/// Builds `bin` of `package` (dev profile) into the workspace's target directory, so that
/// what `cargo build` or `cargo test` already built is reused.
fn build(package: &str, bin: &str, example: bool) -> PathBuf {
    let build = escargot::CargoBuild::new()
        .manifest_path(workspace_root().join("Cargo.toml"))
        .target_dir(target_dir())
        .package(package);
    let build = if example {
        build.example(bin)
    } else {
        build.bin(bin)
    };
    let built = build
        .run()
        .unwrap_or_else(|error| panic!("could not build {bin} of {package}: {error}"));
    built.path().to_path_buf()
}

fn workspace_root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ is inside the workspace")
}

/// `CARGO_TARGET_DIR` if set (a relative one taken from the workspace root), else `target/`.
fn target_dir() -> PathBuf {
    let dir = std::env::var_os("CARGO_TARGET_DIR").unwrap_or_else(|| "target".into());
    workspace_root().join(dir)
}

/// Waits for the lesson's main process `child`, the leader of its own process group. `Err`
/// tells why the whole group had to be killed: a timeout, or processes that outlived it.
fn wait_for_group(child: &mut Child) -> Result<ExitStatus, String> {
    let pgid = child.id();
    let Some(status) = wait_until(child, Instant::now() + TIMEOUT) else {
        kill_group(pgid);
        let _ = child.wait();
        return Err(format!(
            "did not exit within {TIMEOUT:?}; its process group was killed"
        ));
    };
    let survivors: Vec<String> = group_members(pgid)
        .iter()
        .map(ToString::to_string)
        .collect();
    if survivors.is_empty() {
        return Ok(status);
    }
    // Killed before the pipes are read, so that they close and the output is complete.
    kill_group(pgid);
    Err(format!(
        "exited ({status}) leaving processes of its group alive (now killed): {}",
        survivors.join(", ")
    ))
}

/// Waits for `child` until `deadline`; `None` if it is still running then.
fn wait_until(child: &mut Child, deadline: Instant) -> Option<ExitStatus> {
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return Some(status),
            Ok(None) if Instant::now() < deadline => thread::sleep(POLL_INTERVAL),
            Ok(None) => return None,
            Err(error) => panic!("could not wait for the lesson: {error}"),
        }
    }
}

/// Reads `pipe` on a thread of its own until end of file, sending each chunk read. Reading
/// both pipes concurrently keeps a chatty lesson from blocking on a full pipe.
fn drain(mut pipe: impl Read + Send + 'static) -> Receiver<Vec<u8>> {
    let (sender, receiver) = mpsc::channel();
    thread::spawn(move || {
        let mut buffer = [0; 4096];
        loop {
            match pipe.read(&mut buffer) {
                Ok(0) => break,
                Ok(read) if sender.send(buffer[..read].to_vec()).is_ok() => {}
                Err(error) if error.kind() == ErrorKind::Interrupted => {}
                _ => break,
            }
        }
    });
    receiver
}

/// What was read from one pipe.
struct Captured {
    bytes: Vec<u8>,
    /// Whether every writer closed the pipe, i.e. the output is complete.
    closed: bool,
}

/// The output of a lesson that exited alone with its pipes closed; else why not, with
/// everything it wrote.
fn into_output(
    outcome: Result<ExitStatus, String>,
    stdout: Captured,
    stderr: Captured,
) -> Result<Output, String> {
    let pipes_closed = stdout.closed && stderr.closed;
    let outcome = outcome.and_then(|status| {
        pipes_closed.then_some(status).ok_or_else(|| {
            format!("exited but its output pipes were still open {PIPE_CLOSE_TIMEOUT:?} later")
        })
    });
    match outcome {
        Ok(status) => Ok(Output {
            status,
            stdout: stdout.bytes,
            stderr: stderr.bytes,
        }),
        Err(failure) => Err(format!(
            "{failure}\n--- stdout ---\n{}--- stderr ---\n{}",
            String::from_utf8_lossy(&stdout.bytes),
            String::from_utf8_lossy(&stderr.bytes),
        )),
    }
}

/// Gathers what [`drain`] reads, waiting until `deadline` at most for end of file.
fn collect(chunks: &Receiver<Vec<u8>>, deadline: Instant) -> Captured {
    let mut bytes = Vec::new();
    loop {
        match chunks.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            Ok(chunk) => bytes.extend(chunk),
            Err(RecvTimeoutError::Disconnected) => {
                return Captured {
                    bytes,
                    closed: true,
                };
            }
            Err(RecvTimeoutError::Timeout) => {
                return Captured {
                    bytes,
                    closed: false,
                };
            }
        }
    }
}

fn kill_group(pgid: u32) {
    // ESRCH only means the group is already empty.
    let _ = signal::killpg(as_pid(pgid), Signal::SIGKILL);
}

fn as_pid(pid: u32) -> Pid {
    Pid::from_raw(i32::try_from(pid).expect("PIDs fit in i32"))
}

/// Whether `pid` names a process that has not exited. A zombie has exited: it only waits
/// for its new parent (init or a subreaper) to reap it.
fn is_alive(pid: u32) -> bool {
    match signal::kill(as_pid(pid), None) {
        Err(Errno::ESRCH) => false,
        // Ok, or EPERM: a process with that PID exists.
        _ => proc_stat(pid).is_some_and(|stat| stat.state != 'Z'),
    }
}

/// The fields of `/proc/<pid>/stat` that the checks use.
struct ProcStat {
    pid: u32,
    command: String,
    state: char,
    pgrp: u32,
}

impl fmt::Display for ProcStat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({}, state {})", self.pid, self.command, self.state)
    }
}

fn proc_stat(pid: u32) -> Option<ProcStat> {
    let text = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command may hold spaces and parentheses, so the fields start after the last ')'.
    let (head, tail) = text.rsplit_once(')')?;
    let command = head.split_once('(')?.1.to_owned();
    let mut fields = tail.split_whitespace();
    let state = fields.next()?.chars().next()?;
    let pgrp = fields.nth(1)?.parse().ok()?;
    Some(ProcStat {
        pid,
        command,
        state,
        pgrp,
    })
}

/// The processes of group `pgid` that have not exited (zombies excluded, see [`is_alive`]).
fn group_members(pgid: u32) -> Vec<ProcStat> {
    let entries = fs::read_dir("/proc").expect("/proc is readable");
    let pids = entries.filter_map(|entry| entry.ok()?.file_name().to_str()?.parse().ok());
    pids.filter_map(proc_stat)
        .filter(|stat| stat.pgrp == pgid && stat.state != 'Z')
        .collect()
}

/// The four checks of one lesson binary: `fork`, `spawn` and `forkserver` run it and
/// `readme_sample` reads the sample run in its crate's README; all four transcripts go through
/// `guarantees`, the one statement of what the listing guarantees.
///
/// ```ignore
/// lesson_tests::check_lesson!("lesson01-processes", guarantees);
/// ```
#[macro_export]
macro_rules! check_lesson {
    ($bin:literal, $guarantees:path) => {
        #[test]
        fn fork() {
            let bin = env!(concat!("CARGO_BIN_EXE_", $bin));
            $guarantees(&$crate::run(bin, $crate::StartMethod::Fork).transcript());
        }

        #[test]
        fn spawn() {
            let bin = env!(concat!("CARGO_BIN_EXE_", $bin));
            $guarantees(&$crate::run(bin, $crate::StartMethod::Spawn).transcript());
        }

        #[test]
        fn forkserver() {
            let bin = env!(concat!("CARGO_BIN_EXE_", $bin));
            $guarantees(&$crate::run(bin, $crate::StartMethod::Forkserver).transcript());
        }

        #[test]
        fn readme_sample() {
            $guarantees(&$crate::readme::sample(env!("CARGO_MANIFEST_DIR"), $bin));
        }
    };
}

#[cfg(test)]
mod unit {
    use super::*;

    #[test]
    fn printed_pids_are_only_labelled_numbers() {
        let line = "Processo 12 ouviu: Olá, aqui é o processo principal 34";
        assert_eq!(printed_pids(line), [12, 34]);
        assert_eq!(printed_pids("Processo 5 concluiu: Tarefa 1"), [5]);
        assert!(printed_pids("qsize(): 3 empty(): False").is_empty());
    }

    #[test]
    fn capture_pids_needs_digits_where_the_pattern_has_pid() {
        let pattern = "Processo [PID] iniciado";
        assert_eq!(
            capture_pids(pattern, "Processo 42 iniciado"),
            Some(vec![42])
        );
        assert_eq!(
            capture_pids(pattern, "Processo principal 42 iniciado"),
            None
        );
        assert_eq!(capture_pids(pattern, "Processo 42 iniciado!"), None);
        assert_eq!(capture_pids("a [PID] b [PID]", "a 1 b 2"), Some(vec![1, 2]));
    }

    #[test]
    fn proc_stat_reads_this_process() {
        let stat = proc_stat(std::process::id()).expect("own stat is readable");
        assert_eq!(stat.pgrp, nix::unistd::getpgrp().as_raw().unsigned_abs());
        assert_ne!(stat.state, 'Z');
    }
}
