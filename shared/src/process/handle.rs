//! [`Process`]: a function running in a child OS process, with the API of Python's
//! `multiprocessing.Process`.

use std::fmt;
use std::os::fd::{AsFd, OwnedFd};
use std::sync::OnceLock;
use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::error::ProcessError;
use super::registry::{self, ChildIdentity};
use super::start_method::{self, StartMethod};
use super::target::{Bound, Launch, Target};
use super::{entry, fork, forkserver, spawn};
use crate::sys;
use crate::sys::process::Stop;
use crate::timeline::{self, Kind};

/// A function and its arguments, run in a new OS process. Python: `multiprocessing.Process`.
///
/// Rust has no keyword arguments, so `Process(target=f, args=(a, b))` is written
/// `Process::new(f, (a, b))`, and `daemon=True` is [`Process::daemon`]. The target may return
/// `()` or a `Result<(), E>`; an `Err` is printed to stderr and gives exit code 1, as an
/// uncaught exception does in Python.
///
/// ```
/// use shared::Process;
///
/// fn dobro(x: i32) {
///     std::process::exit(x * 2);
/// }
///
/// let mut processo = Process::new(dobro, (21,));
/// assert_eq!(processo.exitcode(), None);
/// processo.start()?;
/// processo.join()?;
/// assert_eq!(processo.exitcode(), Some(42));
/// # Ok::<(), shared::ProcessError>(())
/// ```
pub struct Process {
    name: String,
    identity: String,
    daemon: bool,
    start_method: Option<StartMethod>,
    launch: Option<Box<dyn Launch>>,
    child: Option<Child>,
}

struct Child {
    pid: u32,
    parent: u32,
    /// A pidfd of the child, readable once it has ended.
    exited: OwnedFd,
    /// A pidfd of the child, for signals: it never names a later process with its PID.
    pidfd: OwnedFd,
    exitcode: OnceLock<i32>,
}

impl Process {
    /// A process that will run `target(args...)`; nothing runs until [`start`](Self::start).
    /// Python: `multiprocessing.Process(target=..., args=(...))`.
    ///
    /// `args` is a tuple (`()` for none, `(x,)` for one). Arguments must be serializable
    /// because the spawn start method sends them to the child as bytes; [`Queue`](crate::Queue)
    /// and [`Connection`](crate::Connection) handles are passed by descriptor.
    pub fn new<F, A>(target: F, args: A) -> Process
    where
        F: Target<A>,
        A: Serialize + DeserializeOwned + Send + 'static,
    {
        let identity = registry::next_identity();
        Process {
            name: format!("Process-{identity}"),
            identity,
            daemon: false,
            start_method: None,
            launch: Some(Box::new(Bound { target, args })),
            child: None,
        }
    }

    /// Sets the daemon flag before start, builder style. Python: `Process(..., daemon=True)`.
    ///
    /// A daemonic child is terminated when its parent's `main` ends, and killed (SIGKILL) when
    /// its parent process exits in any other way, even killed itself: a thread of the child
    /// waits on a pidfd of the parent. Whichever thread called `start` may end first. CPython
    /// leaves the daemons of a killed parent running.
    #[must_use]
    pub fn daemon(mut self, daemon: bool) -> Process {
        self.daemon = daemon;
        self
    }

    /// Sets the daemon flag. Python: `Process.daemon = ...`.
    ///
    /// # Errors
    /// [`ProcessError::AlreadyStarted`] once the process has started.
    pub fn set_daemon(&mut self, daemon: bool) -> Result<(), ProcessError> {
        if self.child.is_some() {
            return Err(ProcessError::AlreadyStarted);
        }
        self.daemon = daemon;
        Ok(())
    }

    /// Whether the process is daemonic. Python: `Process.daemon`.
    pub fn is_daemon(&self) -> bool {
        self.daemon
    }

    /// Runs this process under `method` instead of the program-wide one, builder style.
    /// Python: `multiprocessing.get_context(method).Process(...)`.
    #[must_use]
    pub fn start_method(mut self, method: StartMethod) -> Process {
        self.start_method = Some(method);
        self
    }

    /// The process's name, `Process-1`, `Process-2`, ... (`Process-1:1` for a child of
    /// `Process-1`). Python: `Process.name`.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Renames the process. Python: `Process.name = ...`.
    pub fn set_name(&mut self, name: impl Into<String>) {
        self.name = name.into();
    }

    /// Starts the child process. Python: `Process.start()`.
    ///
    /// Under fork, stdout and stderr are flushed first, so no buffered text is printed twice.
    ///
    /// # Errors
    /// - [`ProcessError::AlreadyStarted`]: "cannot start a process twice".
    /// - [`ProcessError::DaemonWithChildren`]: a daemonic process may not start children.
    /// - [`ProcessError::MissingInit`]: a spawned child whose `main` lacks [`init`](crate::init).
    /// - [`ProcessError::SpawnNeedsFunction`], [`ProcessError::SpawnOutsideExecutable`] and
    ///   [`ProcessError::Arguments`]: spawn or forkserver cannot recreate the target or send its
    ///   arguments.
    /// - [`ProcessError::Os`]: the system refused to create the process.
    pub fn start(&mut self) -> Result<(), ProcessError> {
        if registry::is_daemon() {
            return Err(ProcessError::DaemonWithChildren);
        }
        if entry::is_child_without_init() {
            return Err(ProcessError::MissingInit);
        }
        let Some(launch) = self.launch.as_deref() else {
            return Err(ProcessError::AlreadyStarted);
        };
        registry::install_exit_hook()?;
        registry::reap_abandoned();
        let me = ChildIdentity {
            identity: self.identity.clone(),
            name: self.name.clone(),
            daemon: self.daemon,
            parent: std::process::id(),
            parent_name: registry::current_name(),
            parent_exited: None,
        };
        let method = self
            .start_method
            .unwrap_or_else(start_method::get_start_method);
        let mut span = timeline::span(Kind::Start, || (0, timeline::method_code(method).into()));
        let started = match method {
            StartMethod::Fork => fork::start_child(&mut self.launch, me),
            StartMethod::Spawn => spawn::start_child(launch.for_spawn()?, me).map_err(Into::into),
            StartMethod::Forkserver => {
                let (pid, exited) = forkserver::start_child(launch.for_spawn()?, me)?;
                sys::fd::duplicate(exited.as_fd())
                    .map(|pidfd| (pid, exited, pidfd))
                    .map_err(ProcessError::from)
            }
        };
        // The arguments now belong to the child: drop the parent's copies (closing the ends
        // of pipes it passed, so EOF reaches whoever waits for the child's end).
        self.launch = None;
        let (pid, exited, pidfd) = started?;
        span.item(|| (pid.into(), timeline::method_code(method).into()));
        let parent = std::process::id();
        self.child = Some(Child {
            pid,
            parent,
            exited,
            pidfd,
            exitcode: OnceLock::new(),
        });
        Ok(())
    }

    /// Waits until the process ends. Python: `Process.join()`.
    ///
    /// # Errors
    /// [`ProcessError::NotStarted`] ("can only join a started process"),
    /// [`ProcessError::NotAChild`] when called from another process, [`ProcessError::Os`].
    pub fn join(&mut self) -> Result<(), ProcessError> {
        let _join = timeline::span(Kind::Join, || (self.pid().map_or(0, u64::from), 0));
        self.wait_for_exit("join", None).map(drop)
    }

    /// Waits until the process ends or `timeout` passes, whichever comes first; check
    /// [`exitcode`](Self::exitcode) or [`is_alive`](Self::is_alive) to tell which.
    /// Python: `Process.join(timeout)`.
    ///
    /// # Errors
    /// As [`join`](Self::join).
    pub fn join_timeout(&mut self, timeout: Duration) -> Result<(), ProcessError> {
        let _join = timeline::span(Kind::Join, || (self.pid().map_or(0, u64::from), 0));
        self.wait_for_exit("join", Some(timeout)).map(drop)
    }

    /// The child's PID, `None` before start. Python: `Process.pid`.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|child| child.pid)
    }

    /// What [`wait`](crate::wait) waits on for this process: ready once it has ended (its
    /// pidfd). Python: `Process.sentinel`.
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # shared::init()?;
    /// let mut process = shared::Process::new(|| (), ());
    /// process.start()?;
    /// let sentinel = process.sentinel()?;
    /// assert_eq!(shared::wait([&sentinel], None)?.len(), 1);
    /// process.join()?;
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// # Errors
    /// [`ProcessError::NotStarted`] before `start` (Python: `ValueError`);
    /// [`ProcessError::NotAChild`] from another process.
    pub fn sentinel(&self) -> Result<crate::Sentinel<'_>, ProcessError> {
        let child = self.started_child("wait for")?;
        Ok(crate::connection::sentinel(std::os::fd::AsFd::as_fd(
            &child.exited,
        )))
    }

    /// `None` while the process runs (or before start); then `0` if the target returned,
    /// `1` if it panicked or returned `Err`, the status given to `std::process::exit`, or
    /// `-N` if a signal N killed it. Python: `Process.exitcode`.
    pub fn exitcode(&self) -> Option<i32> {
        self.wait_for_exit("poll", Some(Duration::ZERO))
            .ok()
            .flatten()
    }

    /// Whether the process has started and not yet ended. Python: `Process.is_alive()`.
    ///
    /// Only the parent can tell: from any other process (a handle copied into a child) it is
    /// `false`, where Python raises "can only test a child process".
    pub fn is_alive(&self) -> bool {
        self.started_child("test").is_ok() && self.exitcode().is_none()
    }

    /// Asks the process to stop with SIGTERM. Python: `Process.terminate()`.
    ///
    /// # Errors
    /// [`ProcessError::NotStarted`], [`ProcessError::NotAChild`], [`ProcessError::Os`].
    pub fn terminate(&self) -> Result<(), ProcessError> {
        self.signal("terminate", Stop::Terminate)
    }

    /// Kills the process with SIGKILL. Python: `Process.kill()`.
    ///
    /// # Errors
    /// As [`terminate`](Self::terminate).
    pub fn kill(&self) -> Result<(), ProcessError> {
        self.signal("kill", Stop::Kill)
    }

    /// A descriptor that becomes readable when the started child ends (its pidfd), for
    /// waiting on several processes at once.
    pub(crate) fn exit_notifier(&self) -> Option<std::os::fd::BorrowedFd<'_>> {
        use std::os::fd::AsFd;
        self.child.as_ref().map(|child| child.exited.as_fd())
    }

    fn started_child(&self, operation: &'static str) -> Result<&Child, ProcessError> {
        let child = self
            .child
            .as_ref()
            .ok_or(ProcessError::NotStarted { operation })?;
        if child.parent != std::process::id() {
            return Err(ProcessError::NotAChild { operation });
        }
        Ok(child)
    }

    fn signal(&self, operation: &'static str, stop: Stop) -> Result<(), ProcessError> {
        let child = self.started_child(operation)?;
        // Through the pidfd: once the child is reaped (by `join`, `active_children` or, for a
        // forkserved child, its server), its PID may belong to someone else, and the pidfd
        // still names the child, which is gone, so nothing is sent.
        if child.exitcode.get().is_none() {
            sys::process::send_to(child.pidfd.as_fd(), stop)?;
        }
        Ok(())
    }

    fn wait_for_exit(
        &self,
        operation: &'static str,
        timeout: Option<Duration>,
    ) -> Result<Option<i32>, ProcessError> {
        let child = self.started_child(operation)?;
        if let Some(&code) = child.exitcode.get() {
            return Ok(Some(code));
        }
        if !sys::fd::wait_readable(std::os::fd::AsFd::as_fd(&child.exited), timeout)? {
            return Ok(None);
        }
        // `active_children` may have reaped it first and kept its exit code for us.
        let code = match registry::collect(&mut registry::children(), child.pid)? {
            Some(code) => code,
            None => return Ok(None),
        };
        timeline::reaped(child.pid, &Ok(code));
        Ok(Some(*child.exitcode.get_or_init(|| code)))
    }
}

impl Drop for Process {
    /// Dropping a handle neither kills nor waits: the child runs on, is reaped at the next
    /// `start` once it ends, and is joined (or, if daemonic, terminated) when `main` returns.
    fn drop(&mut self) {
        if let Some(child) = &self.child
            && child.exitcode.get().is_none()
            && child.parent == std::process::id()
        {
            registry::abandon(child.pid);
        }
    }
}

impl fmt::Debug for Process {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Process")
            .field("name", &self.name)
            .field("pid", &self.pid())
            .field("daemon", &self.daemon)
            .field(
                "exitcode",
                &self.child.as_ref().and_then(|c| c.exitcode.get()),
            )
            .finish()
    }
}
