//! The lifecycle hooks of a process: what each part of the crate must do around a `fork` and
//! when the process ends. Python: `multiprocessing.util.register_after_fork` and `Finalize`
//! (with its `exitpriority`).
//!
//! A module that keeps process-wide state registers itself here the first time it is used,
//! and nobody else calls it by name: the fork start method takes the registered locks (it
//! knows none of them), and a process's end runs the registered exit steps. A new primitive
//! that owns a lock or a process-wide list adds a rank or a step below, with why, and
//! registers itself; nothing else changes.
//!
//! This module imports nothing of the crate, so every layer, `sys` included, may use it.
//!
//! # The fork lock order
//!
//! `fork` in a program that runs threads copies only the calling thread, and every lock as it
//! was: a lock another thread held at that instant stays held in the child for ever. So the
//! thread that forks first takes every lock the child will need, in [`ForkRank`] order, and
//! releases them on both sides after the fork (the child resets what it must not keep).
//! Taking them all in one fixed order, the order of the enum, is what keeps two forking
//! threads, or a forking thread and a thread nesting two of these locks, from deadlocking:
//! every code path that holds two of them takes them in this order too (in practice each is
//! held only for short sections that take none of the others, except the standard streams,
//! which come first because code holding a later lock may still print a diagnostic).

use std::sync::{Mutex, MutexGuard, PoisonError};

/// Where a participant's lock sits in the fork lock order: taken in this order before the
/// fork, released in the opposite order after it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum ForkRank {
    /// Stdout, then stderr (flushed): nothing buffered is inherited to be printed twice, and
    /// the child finds both unlocked. First, because a holder of any later lock may print.
    Streams,
    /// The registry of this process's children: the child starts with none of its own.
    Children,
    /// Who this process is: the child is about to become someone else.
    Identity,
    /// The non-daemonic threads to join at exit: the child has none of them.
    Threads,
    /// No shared-memory mapping may be mid-move: the child must inherit addresses that hold.
    Mappings,
    /// This process's forkserver: the child forgets it, and would start its own.
    Forkserver,
    /// This process's references to managers' objects: the child gets its own, on a
    /// connection to each manager whose proxies the process holds, opened for it.
    Managers,
}

/// A participant's locks, held across a fork, and what to do with them on each side.
pub(crate) trait HeldAcrossFork {
    /// In the parent, after the fork: release (the default drops what was held).
    fn in_parent(self: Box<Self>) {}
    /// In the child, after the fork: reset what the child must not keep, then release.
    fn in_child(self: Box<Self>);
}

/// What a participant does before a fork: take its locks and return them held.
pub(crate) type Prepare = fn() -> Box<dyn HeldAcrossFork>;

/// The steps of a process's end, run in this order. Python: the `exitpriority` of
/// `multiprocessing.util.Finalize`, and `util._exit_function`'s order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum ExitStep {
    /// Record the end (the timeline's exit event of a child) before anything else happens.
    Record,
    /// Join the non-daemonic threads: they may still start or use processes.
    Threads,
    /// Terminate the daemonic children and join the others.
    Children,
    /// Stop the worker ranks of an MPI job and finalize MPI (rank 0, feature `mpi`): after
    /// the threads that may still wait on a result, before the forkserver.
    #[cfg(feature = "mpi")]
    Mpi,
    /// Stop the forkserver: once every child it served has been collected.
    Forkserver,
    /// Write what was gathered (the timeline of the main process), once all else is done.
    Report,
}

/// How this process is ending.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Ending {
    /// The main process: `main` returned or `exit` was called.
    Main,
    /// A child started by `shared`, whose target ended with this exit code.
    Child(i32),
}

/// What a participant does at the end of the process.
pub(crate) type AtExit = fn(Ending);

/// The registered hooks of one process.
pub(crate) struct Hooks {
    fork: Vec<(ForkRank, Prepare)>,
    exit: Vec<(ExitStep, AtExit)>,
}

impl Hooks {
    /// No hooks.
    pub(crate) const fn new() -> Hooks {
        Hooks {
            fork: Vec::new(),
            exit: Vec::new(),
        }
    }

    /// Registers `prepare` at `rank`, unless that rank has its participant already.
    fn at_fork(&mut self, rank: ForkRank, prepare: Prepare) {
        if let Err(at) = self.fork.binary_search_by_key(&rank, |(rank, _)| *rank) {
            self.fork.insert(at, (rank, prepare));
        }
    }

    /// Registers `hook` at `step`, unless the same hook is there already. Several hooks may
    /// share a step; they run in the order they registered.
    fn at_exit(&mut self, step: ExitStep, hook: AtExit) {
        if self
            .exit
            .iter()
            .any(|&(s, h)| s == step && std::ptr::fn_addr_eq(h, hook))
        {
            return;
        }
        let at = self.exit.partition_point(|(s, _)| *s <= step);
        self.exit.insert(at, (step, hook));
    }

    /// Takes every participant's locks, in rank order.
    fn prepare(&self) -> Vec<Box<dyn HeldAcrossFork>> {
        self.fork.iter().map(|(_, prepare)| prepare()).collect()
    }

    /// The exit hooks, in step order.
    fn exit_hooks(&self) -> Vec<AtExit> {
        self.exit.iter().map(|(_, hook)| *hook).collect()
    }
}

static HOOKS: Mutex<Hooks> = Mutex::new(Hooks::new());

fn hooks() -> MutexGuard<'static, Hooks> {
    // Only ever pushed to under the lock, never left half-written: a poisoned lock is usable.
    HOOKS.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Registers what a participant holds across every fork from now on, at its `rank` in the
/// lock order. Call it before the participant's lock can first be taken, from the one
/// function that takes it (through a [`ForkRegistration`]), so that no fork finds the lock
/// held by a thread it did not wait for; and never while holding another registered lock (a fork in progress
/// holds the registry and waits for that lock). Registering a rank twice keeps the first.
pub(crate) fn at_fork(rank: ForkRank, prepare: Prepare) {
    hooks().at_fork(rank, prepare);
}

/// A participant's fork registration, made on its first use. Not a `Once`: a `Once` whose
/// registration waits for the registry while another thread forks would stay "running" for
/// ever in the child, and the child's first use would hang on it. This flag never waits; two
/// threads registering at once register the same rank twice, which keeps the first.
pub(crate) struct ForkRegistration(std::sync::atomic::AtomicBool);

impl ForkRegistration {
    /// Not registered yet.
    pub(crate) const fn new() -> ForkRegistration {
        ForkRegistration(std::sync::atomic::AtomicBool::new(false))
    }

    /// Registers `prepare` at `rank` ([`at_fork`]) unless this registration was made.
    pub(crate) fn ensure(&self, rank: ForkRank, prepare: Prepare) {
        use std::sync::atomic::Ordering;
        if !self.0.load(Ordering::Acquire) {
            at_fork(rank, prepare);
            self.0.store(true, Ordering::Release);
        }
    }
}

/// Registers `hook` to run at the end of this process (and of every child forked from it
/// later), at `step`. Python: `multiprocessing.util.Finalize(None, hook, exitpriority=...)`.
pub(crate) fn at_exit(step: ExitStep, hook: AtExit) {
    hooks().at_exit(step, hook);
}

/// Every registered lock, held across a fork.
pub(crate) struct ForkGuard {
    /// Held last, released first: no participant registers in the middle of a fork.
    registry: Option<MutexGuard<'static, Hooks>>,
    held: Vec<Box<dyn HeldAcrossFork>>,
}

/// Takes every registered participant's locks, in [`ForkRank`] order, to hold across `fork`.
pub(crate) fn prepare_fork() -> ForkGuard {
    let registry = hooks();
    let held = registry.prepare();
    ForkGuard {
        registry: Some(registry),
        held,
    }
}

impl ForkGuard {
    /// In the parent: releases everything, in the opposite order.
    pub(crate) fn in_parent(mut self) {
        drop(self.registry.take());
        while let Some(held) = self.held.pop() {
            held.in_parent();
        }
    }

    /// In the child: each participant resets and releases, in the opposite order.
    pub(crate) fn in_child(mut self) {
        drop(self.registry.take());
        while let Some(held) = self.held.pop() {
            held.in_child();
        }
    }
}

/// Makes sure the registered exit steps run when the main process leaves through `exit`
/// (which returning from `main` does), as [`Ending::Main`]. A child ends through
/// [`run_exit_hooks`] itself, then `_exit`, and never runs this.
///
/// # Errors
/// `atexit` refused (it can only run out of memory).
pub(crate) fn run_at_process_exit() -> std::io::Result<()> {
    extern "C" fn at_process_exit() {
        run_exit_hooks(Ending::Main);
    }
    // A flag, not a `Once` (see `ForkRegistration`): the first caller installs.
    static INSTALLED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
    if INSTALLED.swap(true, std::sync::atomic::Ordering::AcqRel) {
        return Ok(());
    }
    // SAFETY: registering a plain `extern "C"` function with no arguments.
    if unsafe { nix::libc::atexit(at_process_exit) } != 0 {
        return Err(std::io::Error::other("atexit refused the exit hook"));
    }
    Ok(())
}

/// Runs the registered exit steps, in order. Hooks registered while they run (a thread being
/// joined that starts a process) are not run: the list is read once.
pub(crate) fn run_exit_hooks(ending: Ending) {
    let hooks = hooks().exit_hooks();
    for hook in hooks {
        hook(ending);
    }
}

/// A lock guard (or anything) that needs nothing but dropping on either side of a fork.
pub(crate) struct JustRelease<T>(pub(crate) T);

impl<T> HeldAcrossFork for JustRelease<T> {
    fn in_child(self: Box<Self>) {}
}

/// Stdout and stderr, flushed and held across a fork: the built-in participant at
/// [`ForkRank::Streams`], registered by whoever forks (see `process`).
pub(crate) fn hold_streams() -> Box<dyn HeldAcrossFork> {
    use std::io::Write;
    let mut stdout = std::io::stdout().lock();
    let mut stderr = std::io::stderr().lock();
    // A failed flush loses the text, as it would without a fork; the fork goes on.
    let _ = stdout.flush();
    let _ = stderr.flush();
    Box::new(JustRelease((stdout, stderr)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex as StdMutex;

    static EVENTS: StdMutex<Vec<String>> = StdMutex::new(Vec::new());

    fn log(event: &str) {
        EVENTS.lock().unwrap().push(event.to_owned());
    }

    struct Held(&'static str);

    impl HeldAcrossFork for Held {
        fn in_parent(self: Box<Self>) {
            log(&format!("parent {}", self.0));
        }
        fn in_child(self: Box<Self>) {
            log(&format!("child {}", self.0));
        }
    }

    fn threads() -> Box<dyn HeldAcrossFork> {
        log("prepare threads");
        Box::new(Held("threads"))
    }

    fn streams() -> Box<dyn HeldAcrossFork> {
        log("prepare streams");
        Box::new(Held("streams"))
    }

    fn forkserver() -> Box<dyn HeldAcrossFork> {
        log("prepare forkserver");
        Box::new(Held("forkserver"))
    }

    fn other_threads() -> Box<dyn HeldAcrossFork> {
        log("prepare other threads");
        Box::new(Held("other threads"))
    }

    fn record(ending: Ending) {
        log(&format!("record {ending:?}"));
    }
    fn report(ending: Ending) {
        log(&format!("report {ending:?}"));
    }
    fn children(ending: Ending) {
        log(&format!("children {ending:?}"));
    }
    fn more_children(ending: Ending) {
        log(&format!("more children {ending:?}"));
    }

    /// The tests share `EVENTS`: one test at a time.
    static ONE_AT_A_TIME: StdMutex<()> = StdMutex::new(());

    fn events_of(run: impl FnOnce()) -> Vec<String> {
        let _one = ONE_AT_A_TIME.lock().unwrap_or_else(PoisonError::into_inner);
        EVENTS.lock().unwrap().clear();
        run();
        std::mem::take(&mut *EVENTS.lock().unwrap())
    }

    fn registered() -> Hooks {
        let mut hooks = Hooks::new();
        // Registered out of order, and one rank twice: the order is the ranks', the first
        // registration of a rank stands.
        hooks.at_fork(ForkRank::Forkserver, forkserver);
        hooks.at_fork(ForkRank::Threads, threads);
        hooks.at_fork(ForkRank::Streams, streams);
        hooks.at_fork(ForkRank::Threads, other_threads);
        hooks
    }

    #[test]
    fn locks_are_taken_in_rank_order_and_released_in_reverse_in_the_parent() {
        let hooks = registered();
        let events = events_of(|| {
            let guard = ForkGuard {
                registry: None,
                held: hooks.prepare(),
            };
            guard.in_parent();
        });
        assert_eq!(
            events,
            [
                "prepare streams",
                "prepare threads",
                "prepare forkserver",
                "parent forkserver",
                "parent threads",
                "parent streams",
            ]
        );
    }

    #[test]
    fn the_child_resets_each_participant_in_reverse_order() {
        let hooks = registered();
        let events = events_of(|| {
            let guard = ForkGuard {
                registry: None,
                held: hooks.prepare(),
            };
            guard.in_child();
        });
        assert_eq!(
            &events[3..],
            ["child forkserver", "child threads", "child streams"]
        );
    }

    #[test]
    fn exit_hooks_run_in_step_order_once_each() {
        let mut hooks = Hooks::new();
        hooks.at_exit(ExitStep::Report, report);
        hooks.at_exit(ExitStep::Children, children);
        hooks.at_exit(ExitStep::Record, record);
        hooks.at_exit(ExitStep::Children, more_children);
        hooks.at_exit(ExitStep::Children, children);
        let events = events_of(|| {
            for hook in hooks.exit_hooks() {
                hook(Ending::Child(3));
            }
        });
        assert_eq!(
            events,
            [
                "record Child(3)",
                "children Child(3)",
                "more children Child(3)",
                "report Child(3)",
            ]
        );
    }

    #[test]
    fn the_ranks_are_the_documented_lock_order() {
        let order = [
            ForkRank::Streams,
            ForkRank::Children,
            ForkRank::Identity,
            ForkRank::Threads,
            ForkRank::Mappings,
            ForkRank::Forkserver,
            ForkRank::Managers,
        ];
        assert!(order.windows(2).all(|pair| pair[0] < pair[1]));
        let steps = [
            ExitStep::Record,
            ExitStep::Threads,
            ExitStep::Children,
            ExitStep::Forkserver,
            ExitStep::Report,
        ];
        assert!(steps.windows(2).all(|pair| pair[0] < pair[1]));
    }
}
