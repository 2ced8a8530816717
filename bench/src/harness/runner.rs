//! Launching one run of a workload as a process of its own, Rust or Python side.

use std::fmt;
use std::io::Read;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use nix::sched::{CpuSet, sched_getaffinity, sched_setaffinity};
use nix::unistd::Pid;

use crate::catalogue::Workload;
use crate::measurement::Measurement;

/// A run that takes longer than this is killed and counted as failed.
const RUN_TIMEOUT: Duration = Duration::from_secs(180);

/// The most runs one round adds up, whatever `--min-round` asks: a workload whose runs time
/// almost nothing still ends its round.
pub const MAX_RUNS_PER_ROUND: usize = 64;

/// One side of the comparison, and how to start its workload processes.
#[derive(Debug)]
pub enum Side {
    /// This executable, as `bench workload PROGRAM ARGS`.
    Rust {
        /// The path of this executable.
        executable: PathBuf,
    },
    /// `INTERPRETER bench/python/PROGRAM.py ARGS`.
    Python {
        /// The interpreter command.
        interpreter: String,
        /// Its version, as `sys.version` starts.
        version: String,
    },
}

impl Side {
    /// The Rust side: this very executable.
    ///
    /// # Errors
    /// The system cannot say where this executable is.
    pub fn rust() -> Result<Side, String> {
        let executable = std::env::current_exe()
            .map_err(|error| format!("cannot find the bench executable: {error}"))?;
        Ok(Side::Rust { executable })
    }

    /// The path of this executable (the Rust side's).
    pub fn executable(&self) -> &std::path::Path {
        match self {
            Side::Rust { executable } => executable,
            Side::Python { interpreter, .. } => std::path::Path::new(interpreter),
        }
    }

    /// The Python side, if `interpreter` runs.
    pub fn python(interpreter: &str) -> Option<Side> {
        let output = Command::new(interpreter)
            .args(["-c", "import sys; print(sys.version.split()[0])"])
            .stderr(Stdio::null())
            .output()
            .ok()
            .filter(|output| output.status.success())?;
        Some(Side::Python {
            interpreter: interpreter.to_owned(),
            version: String::from_utf8_lossy(&output.stdout).trim().to_owned(),
        })
    }

    /// `CPython 3.11.7`, for the footer.
    pub fn describe(&self) -> String {
        match self {
            Side::Rust { executable } => executable.display().to_string(),
            Side::Python { version, .. } => format!("CPython {version}"),
        }
    }

    /// Runs `workload` once on this side and reads its measurement.
    ///
    /// # Errors
    /// The process could not start, failed, timed out, or printed no measurement.
    pub fn run(&self, workload: &Workload) -> Result<Measurement, String> {
        let mut command = self.command(workload);
        command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        let child = spawn_pinned(&mut command, workload.pinned)?;
        let output = wait_with_timeout(child, RUN_TIMEOUT)?;
        Measurement::find_in(&output)
    }

    /// Runs `workload` on this side again and again until the runs have timed `min_timed`
    /// between them (at least once, at most [`MAX_RUNS_PER_ROUND`] times), and adds them up
    /// into one measurement: the round's. See [`Options::min_round`](super::Options).
    ///
    /// # Errors
    /// As [`run`](Self::run), for any of the runs.
    pub fn run_round(
        &self,
        workload: &Workload,
        min_timed: Duration,
    ) -> Result<(Measurement, usize), String> {
        let mut total = self.run(workload)?;
        let mut runs = 1;
        while total.elapsed_s < min_timed.as_secs_f64() && runs < MAX_RUNS_PER_ROUND {
            total = total.and(&self.run(workload)?);
            runs += 1;
        }
        Ok((total, runs))
    }

    fn command(&self, workload: &Workload) -> Command {
        match self {
            Side::Rust { executable } => {
                let mut command = Command::new(executable);
                command.args(["workload", workload.program]);
                command.args(workload.args);
                command
            }
            Side::Python { interpreter, .. } => {
                let script = super::python_scripts().join(format!("{}.py", workload.program));
                let mut command = Command::new(interpreter);
                // Leave no __pycache__ in the repository.
                command.env("PYTHONDONTWRITEBYTECODE", "1");
                command.arg(script).args(workload.args);
                command
            }
        }
    }
}

impl fmt::Display for Side {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Side::Rust { .. } => "rust",
            Side::Python { .. } => "python",
        })
    }
}

/// The number of CPUs this process may run on.
pub fn cpu_count() -> usize {
    thread::available_parallelism().map_or(1, usize::from)
}

/// The CPU pinned workloads run on: the last one this process may use.
///
/// # Errors
/// The affinity mask cannot be read.
pub fn pinning_cpu() -> Result<usize, String> {
    let allowed = sched_getaffinity(Pid::from_raw(0)).map_err(|e| e.to_string())?;
    (0..CpuSet::count())
        .rev()
        .find(|&cpu| allowed.is_set(cpu).unwrap_or(false))
        .ok_or_else(|| "no CPU is allowed".to_owned())
}

/// Starts `command`; when `pinned`, with this thread's affinity narrowed to one CPU for the
/// moment of the start, so that the child (and every process it starts) inherits it.
fn spawn_pinned(command: &mut Command, pinned: bool) -> Result<Child, String> {
    let start = |command: &mut Command| {
        command
            .spawn()
            .map_err(|error| format!("cannot start {command:?}: {error}"))
    };
    if !pinned {
        return start(command);
    }
    let me = Pid::from_raw(0);
    let allowed = sched_getaffinity(me).map_err(|e| format!("cannot read affinity: {e}"))?;
    let mut one = CpuSet::new();
    one.set(pinning_cpu()?).map_err(|e| e.to_string())?;
    sched_setaffinity(me, &one).map_err(|e| format!("cannot pin to one CPU: {e}"))?;
    let child = start(command);
    sched_setaffinity(me, &allowed).map_err(|e| format!("cannot restore affinity: {e}"))?;
    child
}

/// Waits for `child`, killing it after `timeout`; returns its standard output.
fn wait_with_timeout(mut child: Child, timeout: Duration) -> Result<String, String> {
    let mut stdout = child.stdout.take().ok_or("the child has no stdout")?;
    let reader = thread::spawn(move || {
        let mut text = String::new();
        stdout.read_to_string(&mut text).map(|_| text)
    });
    let deadline = Instant::now() + timeout;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() < deadline => thread::sleep(Duration::from_millis(5)),
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("killed after {} s", timeout.as_secs()));
            }
            Err(error) => return Err(format!("cannot wait: {error}")),
        }
    };
    let output = reader
        .join()
        .map_err(|_| "the output reader panicked")?
        .map_err(|error| format!("cannot read the output: {error}"))?;
    if status.success() {
        Ok(output)
    } else {
        Err(format!("exited with {status}"))
    }
}
