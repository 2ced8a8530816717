//! The fork start method: the child is a copy of the parent (`fork(2)`), which runs the target
//! right away. Every lock the child needs unlocked is held across the fork through the
//! lifecycle registry ([`crate::lifecycle`]), which also writes their order.

use super::error::ProcessError;
use super::registry::{self, ChildIdentity, ChildRecord, Started};
use super::start_method::{self, StartMethod};
use super::target::Launch;
use crate::lifecycle::{self, ForkRank};
use crate::sys;
use crate::sys::process::Forked;
use crate::timeline;

/// Forks; the child takes the target from `launch`, runs it and never returns from here.
pub(crate) fn start_child(
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
                && let Err(error) = registry::die_with_parent(me.parent)
            {
                eprintln!("shared: a daemonic child cannot watch its parent: {error}");
                registry::finish_child(1);
            }
            registry::become_child(me);
            // Its own children start the way it was started, unless told otherwise.
            start_method::set_start_method(StartMethod::Fork);
            timeline::child_started(StartMethod::Fork);
            let code = launch.take().map_or(1, |launch| launch.run_here());
            registry::finish_child(code)
        }
        Ok(Forked::Parent(pid)) => {
            held.in_parent();
            // Nobody reaps a child that is not recorded: watched before it is recorded, so
            // `active_children` finds it only with its pidfds open.
            let started = registry::watch_own_child(pid)?;
            registry::children().push(ChildRecord::new(pid, &me));
            Ok(started)
        }
    }
}
