//! The one `exec` of the program's own image, shared by the spawn start method (a child) and
//! the forkserver (its server): `/proc/self/exe`, which names the running image even if its
//! file was replaced since, with a command line that `init` obeys only when the token in the
//! environment matches, and exactly the descriptors it must inherit.

use std::ffi::OsStr;
use std::io;
use std::os::fd::RawFd;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};

use crate::sys;

/// What to `exec`: the arguments after the program's name, the token for the environment,
/// and the descriptors to keep open across the `exec` (every other one is close-on-exec).
pub(crate) struct Exec<'a> {
    /// The program's name for `argv[0]` when the parent has none.
    pub(crate) fallback_name: &'a str,
    /// The arguments: a marker, then numbers.
    pub(crate) args: Vec<String>,
    /// The token's environment variable and value.
    pub(crate) token: (&'a str, String),
    /// The descriptors to inherit; each must stay open until [`exec_self`] returns.
    pub(crate) keep: Vec<RawFd>,
    /// Discard the new process's stderr (a test's forgery, whose refusal is expected).
    pub(crate) quiet: bool,
}

/// Starts the program's own image as `exec` describes; under `--timeline`, the log is passed
/// too.
///
/// # Errors
/// The system refused the process, or the timeline's descriptors.
pub(crate) fn exec_self(exec: Exec<'_>) -> io::Result<Child> {
    let Exec {
        fallback_name,
        args,
        token: (variable, token),
        mut keep,
        quiet,
    } = exec;
    let mut command = Command::new("/proc/self/exe");
    command
        .arg0(
            std::env::args_os()
                .next()
                .unwrap_or_else(|| fallback_name.into()),
        )
        .args(args.iter().map(OsStr::new))
        .env(variable, token);
    if quiet {
        command.stderr(Stdio::null());
    }
    keep.extend(crate::timeline::for_executed_child(&mut command)?);
    // SAFETY: the hook runs between `fork` and `exec` and only calls `fcntl`, which is
    // async-signal-safe, on descriptors this process owns (the caller keeps each one open
    // until `spawn` returns; the timeline's log lives as long as the process).
    unsafe {
        command.pre_exec(move || {
            for &fd in &keep {
                sys::fd::keep_across_exec(fd)?;
            }
            Ok(())
        });
    }
    command.spawn()
}
