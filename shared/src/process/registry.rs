//! The registry of a process's children, and what every process of a program needs to know
//! about itself: its name, whether it is
//! daemonic, and which children it must terminate or join when it ends (CPython does the same
//! in `multiprocessing.util._exit_function`).

use std::io::{self, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use crate::lifecycle::{
    self, Ending, ExitStep, ForkRank, ForkRegistration, HeldAcrossFork, JustRelease,
};
use crate::sys;
use crate::sys::process::Stop;

/// A started child whose end this process has not yet collected through its `Process` handle.
pub(crate) struct ChildRecord {
    pub(crate) pid: u32,
    pub(crate) name: String,
    pub(crate) identity: String,
    pub(crate) daemon: bool,
    /// Its `Process` handle was dropped: nobody else will reap it.
    pub(crate) abandoned: bool,
    /// Set when the registry reaped the child ([`reap_finished`]) while its handle still
    /// exists: `waitpid` gives a status only once, so the handle's `join` takes it from here.
    pub(crate) exitcode: Option<i32>,
    /// For a child that is not ours (a forkserved child is its server's): how its end is
    /// collected. `None`: our own child, reaped with `waitpid`.
    pub(crate) reporter: Option<Box<dyn CollectExit>>,
}

impl ChildRecord {
    /// The record of `me`, just started as process `pid`.
    pub(crate) fn new(pid: u32, me: &ChildIdentity) -> ChildRecord {
        ChildRecord {
            pid,
            name: me.name.clone(),
            identity: me.identity.clone(),
            daemon: me.daemon,
            abandoned: false,
            exitcode: None,
            reporter: None,
        }
    }

    /// The record of `me`, just started as process `pid` by the forkserver, which reports its
    /// end through `reporter`.
    pub(crate) fn forkserved(
        pid: u32,
        me: &ChildIdentity,
        reporter: Box<dyn CollectExit>,
    ) -> ChildRecord {
        ChildRecord {
            reporter: Some(reporter),
            ..ChildRecord::new(pid, me)
        }
    }

    /// The child's exit code if it has ended, without waiting; collecting it lets its PID go.
    fn try_reap(&self) -> io::Result<Option<i32>> {
        match &self.reporter {
            None => sys::process::try_reap(self.pid),
            Some(reporter) => reporter.try_collect(),
        }
    }

    /// Waits for the child to end and collects its exit code.
    fn reap(&self) -> io::Result<i32> {
        match &self.reporter {
            None => sys::process::reap(self.pid),
            Some(reporter) => reporter.collect(),
        }
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

/// How the end of a child that is not this process's own is collected: the small interface
/// through which every start method's child is polled and waited for alike (our own children
/// are reaped with `waitpid`; a forkserved child's end is reported by its server). Python: the
/// `poll`/`wait` that `popen_fork`, `popen_spawn_posix` and `popen_forkserver` share.
pub(crate) trait CollectExit: Send {
    /// The exit code if the child has ended, without waiting; collecting it lets its PID go.
    ///
    /// # Errors
    /// The code cannot be known (see the implementation).
    fn try_collect(&self) -> io::Result<Option<i32>>;
    /// Waits for the child to end and collects its exit code.
    ///
    /// # Errors
    /// As [`try_collect`](Self::try_collect).
    fn collect(&self) -> io::Result<i32>;
}

static CHILDREN: Mutex<Vec<ChildRecord>> = Mutex::new(Vec::new());
static IS_DAEMON: AtomicBool = AtomicBool::new(false);
static CHILD_COUNTER: AtomicU32 = AtomicU32::new(0);
/// Who this process is: `None` in the main process, set by [`become_child`] in a child.
static ME: Mutex<Option<ChildIdentity>> = Mutex::new(None);

/// The registry of this process's unreaped children. A poisoned lock is still usable: the list
/// is only pushed to and filtered, never left half-written.
pub(crate) fn children() -> MutexGuard<'static, Vec<ChildRecord>> {
    // Registered before the lock is first taken (see `lifecycle::at_fork`).
    static HELD_ACROSS_FORK: ForkRegistration = ForkRegistration::new();
    HELD_ACROSS_FORK.ensure(ForkRank::Children, hold_children);
    CHILDREN
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Makes sure the registered exit steps ([`lifecycle::run_exit_hooks`]) run when `main`
/// returns or `std::process::exit` is called, and registers this module's exit step: the
/// children are settled. (Its fork hooks, the children registry and who this process is,
/// register themselves in [`children`] and [`me`], before either lock is first taken.)
pub(crate) fn install_exit_hook() -> io::Result<()> {
    // Each time, not under a `Once` (see `ForkRegistration`): registering is idempotent.
    lifecycle::at_exit(ExitStep::Children, settle_at_exit);
    lifecycle::run_at_process_exit()
}

fn settle_at_exit(_: Ending) {
    settle_children();
}

/// The children registry, held across a fork: the child starts with none of its own.
struct HeldChildren(MutexGuard<'static, Vec<ChildRecord>>);

impl HeldAcrossFork for HeldChildren {
    fn in_child(mut self: Box<Self>) {
        self.0.clear();
    }
}

fn hold_children() -> Box<dyn HeldAcrossFork> {
    Box::new(HeldChildren(children()))
}

/// Terminates daemonic children, then waits for every child: what CPython does at exit. A
/// child reaped already is neither signalled (its PID may be someone else's now) nor waited for.
///
/// An unreaped child's PID is its own: ours stay zombies until `waitpid`, and a forkserved
/// child stays one in its server until we collect its report.
pub(crate) fn settle_children() {
    let mut pending = std::mem::take(&mut *children());
    pending.retain(|child| child.exitcode.is_none());
    for child in pending.iter().filter(|child| child.daemon) {
        let _ = sys::process::send(child.pid, Stop::Terminate);
    }
    for child in &pending {
        crate::timeline::reaped(child.pid, &child.reap());
    }
}

/// Marks child `pid` as having no handle left, so [`reap_abandoned`] may collect it; forgets it
/// at once if it was reaped already.
pub(crate) fn abandon(pid: u32) {
    children().retain_mut(|record| {
        if record.pid == pid {
            record.abandoned = true;
        }
        !(record.abandoned && record.exitcode.is_some())
    });
}

/// Reaps children whose handles were dropped and that have ended, so they do not linger as
/// zombies until exit (CPython does this at every `start()`).
pub(crate) fn reap_abandoned() {
    children().retain(|record| !(record.abandoned && matches!(record.try_reap(), Ok(Some(_)))));
}

/// Reaps every child in `children` that has ended: one without a handle leaves the registry,
/// one with a handle keeps its exit code there for the handle's `join`. Python: the clean-up
/// that `active_children()` does.
pub(crate) fn reap_finished(children: &mut Vec<ChildRecord>) {
    for record in children
        .iter_mut()
        .filter(|record| record.exitcode.is_none())
    {
        if let Ok(Some(code)) = record.try_reap() {
            record.exitcode = Some(code);
        }
    }
    children.retain(|record| !(record.abandoned && record.exitcode.is_some()));
}

/// Collects the exit code of child `pid` for its handle: the one [`reap_finished`] recorded,
/// or else from `waitpid` if the child has ended. Either way the child leaves the registry.
pub(crate) fn collect(children: &mut Vec<ChildRecord>, pid: u32) -> io::Result<Option<i32>> {
    let Some(record) = children.iter().find(|record| record.pid == pid) else {
        // Not in the registry: collected already, which only its handle does, once.
        return Err(io::Error::new(
            io::ErrorKind::NotFound,
            "the child's end was collected already",
        ));
    };
    let code = match record.exitcode {
        Some(code) => code,
        None => match record.try_reap()? {
            Some(code) => code,
            None => return Ok(None),
        },
    };
    children.retain(|record| record.pid != pid);
    Ok(Some(code))
}

/// Whether this process is a daemonic child (which may not start children of its own).
pub(crate) fn is_daemon() -> bool {
    IS_DAEMON.load(Ordering::Relaxed)
}

/// The identity a new `Process` gets: `1`, `2`, ... in the main process; `1:1`, `1:2`, ... in
/// `Process-1`, as CPython numbers them.
pub(crate) fn next_identity() -> String {
    let n = CHILD_COUNTER.fetch_add(1, Ordering::Relaxed) + 1;
    match &*me() {
        None => n.to_string(),
        Some(me) => format!("{}:{n}", me.identity),
    }
}

/// Who this process is, told to a child as it starts.
#[derive(Clone)]
pub(crate) struct ChildIdentity {
    pub(crate) identity: String,
    /// The name of its `Process` when it started (`Process-1:2`, or what `set_name` gave).
    pub(crate) name: String,
    pub(crate) daemon: bool,
    /// The PID of the process that started it.
    pub(crate) parent: u32,
    /// The name of that process, as [`current_name`] gave it there.
    pub(crate) parent_name: String,
    /// A pidfd of that process, when it is not this process's real parent (a forkserved
    /// child's real parent is the server): readable once it has exited.
    pub(crate) parent_exited: Option<Arc<OwnedFd>>,
}

/// Who this process is, locked. A forked child must find it unlocked, so `fork` is made
/// holding it (see `process::fork`).
pub(crate) fn me() -> MutexGuard<'static, Option<ChildIdentity>> {
    // Registered before the lock is first taken (see `lifecycle::at_fork`).
    static HELD_ACROSS_FORK: ForkRegistration = ForkRegistration::new();
    HELD_ACROSS_FORK.ensure(ForkRank::Identity, || Box::new(JustRelease(me())));
    ME.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Who this process is, if it is a child started by `shared`; `None` in the main process.
pub(crate) fn myself() -> Option<ChildIdentity> {
    me().clone()
}

/// The name of this process: its `Process`'s name in a child, `MainProcess` in the main
/// process, as in CPython.
pub(crate) fn current_name() -> String {
    me().as_ref()
        .map_or_else(|| "MainProcess".to_owned(), |me| me.name.clone())
}

/// Called first thing in a new child (forked or spawned): it becomes `me`, with no children
/// of its own yet.
pub(crate) fn become_child(me: ChildIdentity) {
    IS_DAEMON.store(me.daemon, Ordering::Relaxed);
    CHILD_COUNTER.store(0, Ordering::Relaxed);
    *self::me() = Some(me);
}

/// Whether `parent`, the parent this process was started by, is still running. A forkserved
/// child watches the pidfd its server gave it; any other child asks the kernel who its parent
/// is now (once the parent exits, the kernel gives it another one, so a parent that ended is
/// never confused with a later process that reused its PID).
pub(crate) fn parent_is_alive(parent: u32) -> bool {
    let watched = me().as_ref().and_then(|me| me.parent_exited.clone());
    match watched {
        Some(exited) => {
            !sys::fd::wait_readable(exited.as_fd(), Some(std::time::Duration::ZERO)).unwrap_or(true)
        }
        None => sys::process::parent_pid() == parent,
    }
}

/// Makes this daemonic child die with its parent *process*: a thread of its own waits for the
/// parent to exit, then kills this process. (Linux's `PR_SET_PDEATHSIG` would fire when the
/// parent *thread* that started this child exits, which kills a daemon started from a
/// short-lived thread while its parent still runs.)
pub(crate) fn die_with_parent(parent: u32) -> io::Result<()> {
    let Some(exited) = sys::process::watch_parent(parent)? else {
        sys::process::kill_self();
    };
    die_when_readable(exited)
}

/// Makes this daemonic child die when `exited`, a pidfd of its parent, becomes readable: the
/// parent has exited. For a forkserved child, whose pidfd of the program comes from its server.
pub(crate) fn die_when_readable(exited: OwnedFd) -> io::Result<()> {
    std::thread::Builder::new()
        .name("shared-parent-watch".into())
        .spawn(move || {
            // Any outcome, even a failure to wait, ends the process: a daemon never outlives
            // its parent unwatched.
            let _ = sys::fd::wait_readable(std::os::fd::AsFd::as_fd(&exited), None);
            sys::process::kill_self()
        })?;
    Ok(())
}

/// The end of a child process: the registered exit steps (record the end, join the
/// non-daemonic threads it started, settle its own children, stop its forkserver), flush, and
/// leave with `code` without running the exit work it inherited from its parent.
pub(crate) fn finish_child(code: i32) -> ! {
    lifecycle::run_exit_hooks(Ending::Child(code));
    let _ = io::stdout().flush();
    let _ = io::stderr().flush();
    sys::process::exit_immediately(code)
}
