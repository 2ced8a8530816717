//! [`Process`]: a function running in a child OS process, with the API of Python's
//! `multiprocessing.Process`.

use std::fmt;
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::OnceLock;
use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::forkserver;
use crate::lifecycle::{self, ForkRank};
use crate::runtime::{self, ChildIdentity, ChildRecord};
use crate::spawn::{self, Relaunch};
use crate::start::{self, StartMethod};
use crate::sys;
use crate::sys::process::{Forked, Stop};
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
        let identity = runtime::next_identity();
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
        if runtime::is_daemon() {
            return Err(ProcessError::DaemonWithChildren);
        }
        if spawn::is_child_without_init() {
            return Err(ProcessError::MissingInit);
        }
        let Some(launch) = self.launch.as_deref() else {
            return Err(ProcessError::AlreadyStarted);
        };
        runtime::install_exit_hook()?;
        runtime::reap_abandoned();
        let me = ChildIdentity {
            identity: self.identity.clone(),
            name: self.name.clone(),
            daemon: self.daemon,
            parent: std::process::id(),
            parent_name: runtime::current_name(),
            parent_exited: None,
        };
        let method = self.start_method.unwrap_or_else(start::get_start_method);
        let mut span = timeline::span(Kind::Start, || (0, timeline::method_code(method).into()));
        let started = match method {
            StartMethod::Fork => fork_child(&mut self.launch, me),
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
        let code = match runtime::collect(&mut runtime::children(), child.pid)? {
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
            runtime::abandon(child.pid);
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

/// A started child: its PID, a pidfd to wait on and one to signal.
pub(crate) type Started = (u32, OwnedFd, OwnedFd);

/// Opens the pidfds of our own child `pid`, just started. The caller holds the children
/// registry and has not recorded the child yet, so nobody can have reaped it: the pidfds name
/// it. On failure the child is stopped and reaped, since nobody could join it.
pub(crate) fn watch_own_child(pid: u32) -> io::Result<Started> {
    let watched = sys::process::exit_notifier(pid)
        .and_then(|exited| Ok((sys::fd::duplicate(exited.as_fd())?, exited)));
    match watched {
        Ok((pidfd, exited)) => Ok((pid, exited, pidfd)),
        Err(error) => {
            let _ = sys::process::send(pid, Stop::Kill);
            let _ = sys::process::reap(pid);
            Err(error)
        }
    }
}

/// Forks; the child takes the target from `launch`, runs it and never returns from here.
fn fork_child(
    launch: &mut Option<Box<dyn Launch>>,
    me: ChildIdentity,
) -> Result<Started, ProcessError> {
    // Every lock a child needs unlocked is held across the fork, in the one order written in
    // `lifecycle`: stdout and stderr (flushed, so nothing buffered is printed twice) and
    // whatever the crate's modules registered (the children registry, who this process is,
    // the threads to join, the mappings, the forkserver).
    lifecycle::at_fork(ForkRank::Streams, lifecycle::hold_streams);
    let held = lifecycle::prepare_fork();
    // SAFETY: `fork` is unsafe because the child of a multi-threaded process starts with this
    // thread alone, holding a copy of every lock as it was. The child runs:
    // - this crate's code below, which takes only the locks this thread holds across the fork
    //   (every lock registered with `lifecycle::at_fork`: each is reset and released normally
    //   in the child) and the allocator (glibc resets its locks in a forked child);
    // - the user's target. To it the child is the parent's program in which every other
    //   thread stopped at some instruction and never runs again, an execution Rust allows (a
    //   thread may never be scheduled), so safe code sees nothing it could not see in the
    //   parent; the worst it can meet is a lock that is never released, a hang, as under
    //   CPython's fork start method (documented on `StartMethod::Fork`). Memory mapped shared
    //   (a `Queue`) stays shared, which its types are built for.
    let forked = unsafe { sys::process::fork() };
    match forked {
        Err(error) => {
            held.in_parent();
            Err(error.into())
        }
        Ok(Forked::Child) => {
            held.in_child();
            if me.daemon
                && let Err(error) = runtime::die_with_parent(me.parent)
            {
                eprintln!("shared: a daemonic child cannot watch its parent: {error}");
                runtime::finish_child(1);
            }
            runtime::become_child(me);
            // Its own children start the way it was started, unless told otherwise.
            start::set_start_method(StartMethod::Fork);
            timeline::child_started(StartMethod::Fork);
            let code = launch.take().map_or(1, |launch| launch.run_here());
            runtime::finish_child(code)
        }
        Ok(Forked::Parent(pid)) => {
            held.in_parent();
            // Nobody reaps a child that is not recorded: watched before it is recorded, so
            // `active_children` finds it only with its pidfds open.
            let started = watch_own_child(pid)?;
            runtime::children().push(ChildRecord::new(pid, &me));
            Ok(started)
        }
    }
}

/// A target bound to its arguments, waiting to run in a child.
pub(crate) trait Launch: Send {
    /// Runs the target in this process (the forked child); returns the exit code.
    fn run_here(self: Box<Self>) -> i32;
    /// What a spawned child needs to run the same target: its entry point and the serialized
    /// arguments, with the descriptors of the handles among them.
    fn for_spawn(&self) -> Result<spawn::Outgoing, ProcessError>;
}

struct Bound<F, A> {
    target: F,
    args: A,
}

impl<F, A> Launch for Bound<F, A>
where
    F: Target<A>,
    A: Serialize + DeserializeOwned + Send + 'static,
{
    fn run_here(self: Box<Self>) -> i32 {
        let Bound { target, args } = *self;
        timeline::target_started::<F>();
        run_guarded(target, args)
    }

    fn for_spawn(&self) -> Result<spawn::Outgoing, ProcessError> {
        // The spawned child recreates the target from its type alone: only a function item
        // has a value that can be made that way (see `spawn::recreate`).
        if !spawn::can_recreate::<F, A>() {
            return Err(ProcessError::SpawnNeedsFunction);
        }
        let entry = spawn::entry_offset(spawn::entry::<Self>)
            .ok_or(ProcessError::SpawnOutsideExecutable)?;
        let (args, fds) = crate::handoff::exporting(|| rmp_serde::to_vec(&self.args));
        let args = args.map_err(|error| ProcessError::Arguments(error.to_string()))?;
        Ok(spawn::Outgoing { entry, args, fds })
    }
}

impl<F, A> Relaunch for Bound<F, A>
where
    F: Target<A>,
    A: Serialize + DeserializeOwned + Send + 'static,
{
    fn relaunch(bytes: &[u8], fds: Vec<OwnedFd>) -> i32 {
        let args: A = match crate::handoff::importing(fds, || crate::wire::decode(bytes)) {
            Ok(args) => args,
            Err(error) => {
                eprintln!("shared: the spawned child cannot decode its arguments: {error}");
                return 1;
            }
        };
        let Some(target) = spawn::recreate::<F, A>() else {
            eprintln!("shared: the spawned child cannot recreate its target");
            return 1;
        };
        timeline::target_started::<F>();
        run_guarded(target, args)
    }
}

/// Runs the target; a panic becomes exit code 1 (its message is already on stderr).
pub(crate) fn run_guarded<F: Target<A>, A>(target: F, args: A) -> i32 {
    catch_unwind(AssertUnwindSafe(|| target.run(args))).unwrap_or(1)
}

/// A function a [`Process`] (or a [`Thread`](crate::Thread)) can run with arguments of tuple
/// type `A`: any `FnOnce` of up to six arguments that returns `()` or `Result<(), E>`. Under spawn it must be a function defined
/// with `fn` (a spawned child recreates it from its type; a closure, even one that captures
/// nothing, could stand for state the child does not have); under fork any closure works.
///
/// It is implemented for functions and closures only: a type of your own cannot implement it,
/// so a spawned child, which makes its target's value from the type alone, never makes a
/// value of a type that has data or meaning (a unit struct):
///
/// ```compile_fail
/// struct Unit;
/// impl shared::Target<()> for Unit {
///     fn run(self, _: ()) -> i32 {
///         0
///     }
/// }
/// ```
pub trait Target<A>: Send + 'static + spawn::Callable<A> {
    /// Calls the target with the unpacked arguments; returns the exit code.
    #[doc(hidden)]
    fn run(self, args: A) -> i32;
}

/// What a target may return: `()` (exit code 0) or `Result<(), E>` (an `Err` is printed to
/// stderr as `Error: {e:?}`, like an error returned from `main`, and gives exit code 1).
pub trait TargetOutput {
    /// The exit code this value stands for.
    #[doc(hidden)]
    fn exit_code(self) -> i32;
}

impl TargetOutput for () {
    fn exit_code(self) -> i32 {
        0
    }
}

impl<E: fmt::Debug> TargetOutput for Result<(), E> {
    fn exit_code(self) -> i32 {
        match self {
            Ok(()) => 0,
            Err(error) => {
                eprintln!("Error: {error:?}");
                1
            }
        }
    }
}

macro_rules! impl_target {
    ($($arg:ident),*) => {
        impl<F, R, $($arg,)*> Target<($($arg,)*)> for F
        where
            F: FnOnce($($arg),*) -> R + Send + 'static,
            R: TargetOutput,
        {
            #[allow(non_snake_case)]
            fn run(self, ($($arg,)*): ($($arg,)*)) -> i32 {
                self($($arg),*).exit_code()
            }
        }
    };
}

impl_target!();
impl_target!(A1);
impl_target!(A1, A2);
impl_target!(A1, A2, A3);
impl_target!(A1, A2, A3, A4);
impl_target!(A1, A2, A3, A4, A5);
impl_target!(A1, A2, A3, A4, A5, A6);

/// Why a [`Process`] operation failed. The messages are CPython's where it has one.
#[non_exhaustive]
pub enum ProcessError {
    /// `start` was called on a process that already started.
    AlreadyStarted,
    /// An operation that needs a running child was called before `start`.
    NotStarted {
        /// The operation: `join`, `terminate`, `kill` or `poll`.
        operation: &'static str,
    },
    /// The process was started by another process (a handle copied into a child).
    NotAChild {
        /// The operation attempted.
        operation: &'static str,
    },
    /// A daemonic process tried to start a child.
    DaemonWithChildren,
    /// The spawn or forkserver start method was given a target that is not a function: a
    /// closure or a function pointer. Python: the `PicklingError` for a lambda.
    SpawnNeedsFunction,
    /// The spawn or forkserver start method was given a function that lives outside the
    /// program's executable (in a shared library), where a spawned child would not find it.
    SpawnOutsideExecutable,
    /// A spawned child (or a forkserver) re-ran `main` and reached `start` because `main` does
    /// not call [`init`](crate::init) first. Python: the `RuntimeError` about the bootstrapping
    /// phase.
    MissingInit,
    /// The arguments could not be serialized for a spawned or forkserved child.
    Arguments(String),
    /// The operating system refused.
    Os(io::Error),
}

impl fmt::Display for ProcessError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProcessError::AlreadyStarted => f.write_str("cannot start a process twice"),
            ProcessError::NotStarted { operation } => {
                write!(f, "can only {operation} a started process")
            }
            ProcessError::NotAChild { operation } => {
                write!(f, "can only {operation} a child process")
            }
            ProcessError::DaemonWithChildren => {
                f.write_str("daemonic processes are not allowed to have children")
            }
            ProcessError::SpawnNeedsFunction => f.write_str(
                "the spawn and forkserver start methods need a function defined with `fn` (pass values \
                 through args); closures and function pointers work only under fork, and a \
                 constructor such as `Some` or a function of an `extern` block must be wrapped \
                 in a `fn`",
            ),
            ProcessError::SpawnOutsideExecutable => f.write_str(
                "the spawn and forkserver start methods need a target compiled into the \
                 program's executable, not into a shared library",
            ),
            ProcessError::MissingInit => f.write_str(
                "this process was started by spawn but is running main and starting processes of \
                 its own: call shared::init()? first thing in main, the counterpart of Python's \
                 `if __name__ == '__main__':`",
            ),
            ProcessError::Arguments(error) => {
                write!(f, "cannot send the arguments to the spawned child: {error}")
            }
            ProcessError::Os(error) => write!(f, "the system refused: {error}"),
        }
    }
}

impl std::error::Error for ProcessError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ProcessError::Os(error) => Some(error),
            _ => None,
        }
    }
}

crate::debug_as_display!(ProcessError);

impl From<io::Error> for ProcessError {
    fn from(error: io::Error) -> Self {
        ProcessError::Os(error)
    }
}
