//! Lição 03 with two terminals: one run `--ouvir ENDEREÇO`, another `--conectar ENDEREÇO`,
//! each a person at one end of the pipe. Also what a killed listener leaves behind.

use std::fs;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

const LESSON: &str = env!("CARGO_BIN_EXE_lesson03-pipe");

/// How long a run may take before the test calls it hung.
const LIMIT: Duration = Duration::from_secs(30);

/// A listening run: its process and the lines it printed after the first.
struct Listening {
    child: Child,
    pid: u32,
    rest: mpsc::Receiver<String>,
}

impl Listening {
    /// Starts `--ouvir address` and waits for its first line, which says it listens.
    fn start(address: &str) -> Listening {
        let mut child = Command::new(LESSON)
            .args(["--ouvir", address])
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start the listening lesson");
        let pid = child.id();
        let stdout = child.stdout.take().expect("stdout");
        let (lines, rest) = mpsc::channel();
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if lines.send(line).is_err() {
                    break;
                }
            }
        });
        let first = rest.recv_timeout(LIMIT).expect("the listener's first line");
        assert_eq!(first, format!("Processo {pid} esperando em {address}"));
        Listening { child, pid, rest }
    }

    /// Waits for it to exit; its exit code and every line after the first.
    fn finish(mut self) -> (Option<i32>, Vec<String>) {
        let code = wait_within(&mut self.child, LIMIT);
        (code, self.rest.iter().collect())
    }

    fn kill(mut self) {
        self.child.kill().expect("kill");
        self.child.wait().expect("reap");
    }
}

/// Waits for `child` at most `limit`; kills it and fails the test after that.
fn wait_within(child: &mut Child, limit: Duration) -> Option<i32> {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            return status.code();
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the lesson did not exit within {limit:?}");
        }
        thread::sleep(Duration::from_millis(10));
    }
}

/// Runs `--conectar address` to its end: its PID, exit code, output lines and stderr.
fn connect(address: &str) -> (u32, Option<i32>, Vec<String>, String) {
    let mut child = Command::new(LESSON)
        .args(["--conectar", address])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the connecting lesson");
    let pid = child.id();
    let code = wait_within(&mut child, LIMIT);
    let mut stdout = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut stdout)
        .unwrap();
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    (
        pid,
        code,
        stdout.lines().map(str::to_owned).collect(),
        stderr,
    )
}

/// What each side prints after its first line (`esperando` for the listener; `conectado`
/// is the connector's first): always these lines in this order, since each side is one
/// process doing one thing after another, and each message names its sender.
fn dialogue(address: &str, listener: u32, connector: u32) -> (Vec<String>, Vec<String>) {
    let listener_lines = vec![
        format!("Processo {listener} iniciado"),
        format!("Processo {listener} ouviu: Olá, aqui é o processo {connector}"),
        format!("Processo {listener} finalizado"),
    ];
    let connector_lines = vec![
        format!("Processo {connector} conectado a {address}"),
        format!("Processo {connector} ouviu: Olá, aqui é o processo {listener}"),
        format!("Processo {connector} finalizado"),
    ];
    (listener_lines, connector_lines)
}

/// Connects to `listening` and checks what both sides printed.
fn assert_dialogue(address: &str, listening: Listening) {
    let listener = listening.pid;
    let (connector, code, connector_lines, stderr) = connect(address);
    assert_eq!(code, Some(0), "{stderr}");
    assert_ne!(listener, connector);
    let (code, listener_lines) = listening.finish();
    assert_eq!(code, Some(0));
    let expected = dialogue(address, listener, connector);
    assert_eq!((listener_lines, connector_lines), expected);
}

fn unique(prefix: &str) -> String {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    format!("{prefix}-{}-{n}", std::process::id())
}

/// A fresh directory, removed on drop once the test checked it.
struct Dir(PathBuf);

impl Dir {
    fn new() -> Dir {
        let dir = std::env::temp_dir().join(unique("licao03"));
        fs::create_dir_all(&dir).unwrap();
        Dir(dir)
    }

    fn is_empty(&self) -> bool {
        fs::read_dir(&self.0).unwrap().next().is_none()
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

fn path_str(path: &Path) -> &str {
    path.to_str().expect("a UTF-8 path")
}

#[test]
fn two_runs_talk_over_an_abstract_address() {
    let address = format!("@{}", unique("licao03"));
    assert_dialogue(&address, Listening::start(&address));
}

#[test]
fn two_runs_talk_over_a_socket_file_which_is_gone_afterwards() {
    let dir = Dir::new();
    let path = dir.0.join("cano.sock");
    let listening = Listening::start(path_str(&path));
    assert!(path.exists(), "the listener made its socket file");
    assert_dialogue(path_str(&path), listening);
    assert!(dir.is_empty(), "a socket file was left behind");
}

#[test]
fn a_killed_listener_leaves_its_file_which_the_next_run_replaces_and_removes() {
    let dir = Dir::new();
    let path = dir.0.join("cano.sock");
    Listening::start(path_str(&path)).kill();
    // SIGKILL leaves no chance to clean up: the file is still there, and nobody answers.
    assert!(path.exists());
    let (_, code, _, stderr) = connect(path_str(&path));
    assert_eq!(code, Some(1));
    assert!(stderr.contains("cannot connect"), "{stderr}");
    // The next listener at the same path takes it over, and leaves nothing when done.
    assert_dialogue(path_str(&path), Listening::start(path_str(&path)));
    assert!(dir.is_empty(), "a socket file was left behind");
}

#[test]
fn a_killed_listener_leaves_nothing_at_an_abstract_address() {
    let address = format!("@{}", unique("licao03"));
    Listening::start(&address).kill();
    // The kernel freed the name with the killed process: the next run listens there at once.
    assert_dialogue(&address, Listening::start(&address));
}

#[test]
fn both_flags_at_once_are_refused() {
    let output = Command::new(LESSON)
        .args(["--ouvir", "@a", "--conectar", "@a"])
        .output()
        .expect("run the lesson");
    // Like every other bad command line: exit code 2, the message without Debug quotes,
    // and where to find the options.
    assert_eq!(output.status.code(), Some(2));
    assert!(output.stdout.is_empty());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(
        stderr,
        "lesson03-pipe: use --ouvir ou --conectar, não os dois\n\
         Use `lesson03-pipe --help` para ver as opções.\n"
    );
}

#[test]
fn a_flag_without_its_address_is_a_portuguese_error() {
    let output = Command::new(LESSON).arg("--conectar").output().unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("`--conectar` precisa de um valor: `--conectar ENDEREÇO`"),
        "{stderr}"
    );
}

/// The lines of the `console` block after `<!-- marker -->` in the lesson's README.
fn readme_block(marker: &str) -> Vec<String> {
    let readme = include_str!("../README.md");
    let after = readme
        .split(&format!("<!-- {marker} -->\n```console\n"))
        .nth(1)
        .unwrap_or_else(|| panic!("the README has no block marked {marker}"));
    let block = after.split("```").next().unwrap();
    block.lines().map(str::to_owned).collect()
}

/// The number in `line` between `prefix` and `suffix`.
fn pid_in(line: &str, prefix: &str, suffix: &str) -> u32 {
    line.strip_prefix(prefix)
        .and_then(|rest| rest.split_once(suffix))
        .and_then(|(pid, _)| pid.parse().ok())
        .unwrap_or_else(|| panic!("no PID in {line:?}"))
}

#[test]
fn the_readme_shows_a_dialogue_that_keeps_the_guarantees() {
    let first = readme_block("terminal 1");
    let second = readme_block("terminal 2");
    let listener = pid_in(&first[0], "Processo ", " esperando em @cano");
    let connector = pid_in(&second[0], "Processo ", " conectado a @cano");
    assert_ne!(listener, connector);
    let (listener_lines, connector_lines) = dialogue("@cano", listener, connector);
    assert_eq!(first[1..], listener_lines[..]);
    assert_eq!(second, connector_lines);
}
