//! The child's entry dispatch: the first thing `init` (or [`run_if_spawned_child`]) does.
//! A process whose command line says it is a spawned child checks its payload
//! ([`super::payload`]) and runs its target; one that says it is a forkserver serves
//! ([`super::forkserver`]); any other returns at once, to run `main`.

use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::sync::atomic::{AtomicBool, Ordering};

use super::registry;
use super::{forkserver, payload};
use crate::sys;

/// Whether this process was started by spawn but its `main` is running: `init` was not called
/// (in a spawned child it never returns), so the child is re-running the parent's program.
/// A forkserver's image is such a process too: it re-ran `main` because `init` was missing.
pub(crate) fn is_child_without_init() -> bool {
    !payload::is_dispatched()
        && std::env::args_os()
            .nth(1)
            .is_some_and(|arg| arg == payload::MARKER || arg == forkserver::MARKER)
        && std::env::var_os(payload::TOKEN_VARIABLE).is_some()
}

/// If this process is a spawned child, runs its target and ends the process; otherwise
/// returns. The guard half of [`init`](crate::init), for a program that reads its own command
/// line: call it first thing in `main`. Python: `if __name__ == '__main__':`.
///
/// ```
/// shared::run_if_spawned_child(); // in the main process: returns at once
/// ```
pub fn run_if_spawned_child() {
    // Only the first call may act. A later one runs after the program's own code, which may
    // have opened descriptors of its own that the checks below would take for inherited ones.
    if ENTERED.swap(true, Ordering::Relaxed) {
        return;
    }
    let Some(args) = command_line() else {
        return;
    };
    let forkserver = args.get(1).map(Vec::as_slice) == Some(forkserver::MARKER.as_bytes());
    if args.get(1).map(Vec::as_slice) != Some(payload::MARKER.as_bytes()) && !forkserver {
        return;
    }
    // A Rust `main` ignores SIGPIPE, so that writing to a closed pipe is an error, not death.
    // This may run before that set-up (from `.init_array`), and the refusal below writes.
    sys::process::ignore_broken_pipe_signal();
    let args: Vec<&[u8]> = args[1..].iter().map(Vec::as_slice).collect();
    if forkserver {
        // Never returns: the server serves until its program ends; a child it forks runs its
        // target and ends there too.
        forkserver::serve(&args);
    }
    let code = match payload::accept(&args) {
        Ok(child) => child.run(),
        Err(refusal) => {
            // Not `eprintln!`, which panics when stderr is closed: the exit code must be 2.
            let _ = writeln!(std::io::stderr(), "{refusal}");
            payload::REFUSED
        }
    };
    registry::finish_child(code)
}

/// Set by the first call of [`run_if_spawned_child`].
static ENTERED: AtomicBool = AtomicBool::new(false);

/// This process's arguments, the program's name first. From /proc rather than
/// `std::env::args`, which may be empty here: this may run from `.init_array`, before the
/// standard library has recorded the arguments. Without /proc (a chroot or a mount namespace
/// that hides it), from `std::env::args_os`, which `init` in `main` always has.
fn command_line() -> Option<Vec<Vec<u8>>> {
    let Ok(cmdline) = std::fs::read("/proc/self/cmdline") else {
        let args: Vec<Vec<u8>> = std::env::args_os()
            .map(|arg| arg.as_bytes().to_vec())
            .collect();
        return (!args.is_empty()).then_some(args);
    };
    // Each argument ends with a NUL.
    let cmdline = cmdline.strip_suffix(&[0]).unwrap_or(&cmdline);
    Some(cmdline.split(|&b| b == 0).map(<[u8]>::to_vec).collect())
}
