//! What a process can learn about itself, its parent, its children and the machine: Python's
//! `multiprocessing.current_process()`, `parent_process()`, `active_children()` and
//! `cpu_count()`.
//!
//! These return information, not [`Process`](crate::Process) handles: a handle belongs to
//! whoever created it (only that process can join it, and a forked or spawned child has none
//! of its own), so what is returned here is a snapshot of names and PIDs.

use std::io;

use crate::process::registry::{self as runtime, ChildRecord};
use crate::sys;

/// The number of CPUs in the system. Python: `multiprocessing.cpu_count()`.
///
/// This counts the CPUs online (`sysconf(_SC_NPROCESSORS_ONLN)`, as CPython's `os.cpu_count()`
/// does on Linux), not the ones this process may use: for those, see [`process_cpu_count`].
///
/// ```
/// let cpus = shared::cpu_count()?;
/// assert!(cpus >= 1);
/// assert!(shared::process_cpu_count()? <= cpus);
/// # Ok::<(), std::io::Error>(())
/// ```
///
/// # Errors
/// An error of kind [`Unsupported`](io::ErrorKind::Unsupported) when the system does not say,
/// where Python raises `NotImplementedError`.
pub fn cpu_count() -> io::Result<usize> {
    sys::process::online_cpus()
}

/// The number of CPUs this process may run on: those in its affinity mask (as `taskset` or
/// `sched_setaffinity` set it). Python 3.13: `os.process_cpu_count()`.
///
/// CPU quotas of a container (cgroups) are not counted, as in Python;
/// [`std::thread::available_parallelism`] counts them too.
///
/// ```
/// assert!(shared::process_cpu_count()? >= 1);
/// # Ok::<(), std::io::Error>(())
/// ```
///
/// # Errors
/// The system refused `sched_getaffinity`, where Python returns `None`.
pub fn process_cpu_count() -> io::Result<usize> {
    sys::process::usable_cpus()
}

/// A process as seen from itself or from its parent: its name, PID, daemon flag and identity.
/// Python: the `Process` object that `current_process()` and `active_children()` return, of
/// which this keeps what can be read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProcessInfo {
    name: String,
    pid: u32,
    daemon: bool,
    identity: Vec<u32>,
}

impl ProcessInfo {
    fn new(name: String, pid: u32, daemon: bool, identity: &str) -> ProcessInfo {
        ProcessInfo {
            name,
            pid,
            daemon,
            // Made by `runtime::next_identity` in this process or its parent: numbers and `:`.
            identity: identity.split(':').filter_map(|n| n.parse().ok()).collect(),
        }
    }

    fn of_child(record: &ChildRecord) -> ProcessInfo {
        ProcessInfo::new(
            record.name.clone(),
            record.pid,
            record.daemon,
            &record.identity,
        )
    }

    /// `MainProcess` for the main process; for a child, the name its [`Process`](crate::Process)
    /// had when it started (`Process-1`, `Process-1:2`, or what `set_name` gave).
    /// Python: `Process.name`.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The process's PID. Python: `Process.pid`.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// The PID again, under the name Python gives it too. Python: `Process.ident`.
    pub fn ident(&self) -> u32 {
        self.pid
    }

    /// Whether the process is daemonic. Python: `Process.daemon`.
    pub fn is_daemon(&self) -> bool {
        self.daemon
    }

    /// Where the process sits in the tree `shared` started: `[]` for the main process, `[2]`
    /// for `Process-2`, `[1, 2]` for `Process-1:2`. Python: `Process._identity`.
    pub fn identity(&self) -> &[u32] {
        &self.identity
    }
}

/// The process this code runs in. Python: `multiprocessing.current_process()`.
///
/// ```
/// use shared::{Process, current_process};
///
/// let eu = current_process();
/// assert_eq!(eu.name(), "MainProcess");
/// assert_eq!(eu.pid(), std::process::id());
/// assert!(!eu.is_daemon());
///
/// fn filho(nome: String) {
///     let eu = current_process();
///     let certo = eu.name() == nome && eu.pid() == std::process::id() && eu.is_daemon();
///     std::process::exit(if certo { 0 } else { 1 });
/// }
///
/// let mut processo = Process::new(filho, ("trabalhador".to_owned(),)).daemon(true);
/// processo.set_name("trabalhador");
/// processo.start()?;
/// processo.join()?;
/// assert_eq!(processo.exitcode(), Some(0));
/// # Ok::<(), shared::ProcessError>(())
/// ```
pub fn current_process() -> ProcessInfo {
    let pid = std::process::id();
    match runtime::myself() {
        Some(me) => ProcessInfo::new(me.name, pid, me.daemon, &me.identity),
        None => ProcessInfo::new(runtime::current_name(), pid, false, ""),
    }
}

/// The process that started this one, as [`parent_process`] reports it. Python: the
/// `_ParentProcess` object of `multiprocessing.parent_process()`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParentProcess {
    name: String,
    pid: u32,
}

impl ParentProcess {
    /// The parent's name when it started this process: `MainProcess`, or its own
    /// `Process-N`. Python: `parent_process().name`.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The parent's PID. Python: `parent_process().pid`.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// The PID again. Python: `parent_process().ident`.
    pub fn ident(&self) -> u32 {
        self.pid
    }

    /// Whether the parent is still running. Python: `parent_process().is_alive()`.
    ///
    /// It asks the kernel who this process's parent is now: once the parent exits, the kernel
    /// gives this process another one, so a parent that ended is never confused with a later
    /// process that reused its PID. A forkserved child, whose real parent is the server, asks
    /// a pidfd of its parent that the server handed it. (CPython watches a pipe that the
    /// parent holds open.)
    pub fn is_alive(&self) -> bool {
        runtime::parent_is_alive(self.pid)
    }
}

/// The process that started this one, or `None` in the main process. Python:
/// `multiprocessing.parent_process()`.
///
/// ```
/// use shared::{Process, parent_process};
///
/// assert_eq!(parent_process(), None);
///
/// fn filho(pai: u32) {
///     let certo = parent_process()
///         .is_some_and(|p| p.pid() == pai && p.name() == "MainProcess" && p.is_alive());
///     std::process::exit(if certo { 0 } else { 1 });
/// }
///
/// let mut processo = Process::new(filho, (std::process::id(),));
/// processo.start()?;
/// processo.join()?;
/// assert_eq!(processo.exitcode(), Some(0));
/// # Ok::<(), shared::ProcessError>(())
/// ```
pub fn parent_process() -> Option<ParentProcess> {
    runtime::myself().map(|me| ParentProcess {
        name: me.parent_name,
        pid: me.parent,
    })
}

/// The children this process started that are still running, in the order they started.
/// Python: `multiprocessing.active_children()`.
///
/// As in Python, it reaps the children that have ended, so they do not linger as zombies; a
/// [`Process`](crate::Process) handle of such a child still reports its exit code, from
/// `join` or `exitcode`.
///
/// ```
/// use shared::{Process, Queue, active_children};
///
/// fn espera(fila: Queue<()>) {
///     let _ = fila.get();
/// }
///
/// let fila = Queue::new()?;
/// let mut processo = Process::new(espera, (fila.clone(),));
/// processo.start()?;
/// let filhos = active_children();
/// assert_eq!(filhos.len(), 1);
/// assert_eq!(Some(filhos[0].pid()), processo.pid());
/// assert_eq!(filhos[0].name(), processo.name());
///
/// fila.put(())?;
/// processo.join()?;
/// assert!(active_children().is_empty());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn active_children() -> Vec<ProcessInfo> {
    let mut children = runtime::children();
    runtime::reap_finished(&mut children);
    children
        .iter()
        .filter(|record| record.exitcode.is_none())
        .map(ProcessInfo::of_child)
        .collect()
}
