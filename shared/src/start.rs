//! Start methods, and the entry call that makes a spawned child run only its target.

use std::ffi::OsString;
use std::fmt;
use std::io::{Read, Seek, Write};
use std::os::fd::{OwnedFd, RawFd};
use std::os::unix::process::CommandExt;
use std::process::Command;
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};

use serde::{Deserialize, Serialize};

use crate::process::{Launch, ProcessError};
use crate::runtime::{self, ChildIdentity, ChildRecord};
use crate::sys;

/// How a child process begins. Python: the names given to `multiprocessing.set_start_method`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum StartMethod {
    /// The child is a copy of the parent (`fork(2)`) and runs the target right away. The
    /// default on Linux, as in Python before 3.14. Fast (no `exec`).
    Fork,
    /// The child is a fresh run of the same program (`exec` of `/proc/self/exe`) that receives
    /// the target and its serialized arguments, and runs only them. Needs [`init`] at the top
    /// of `main`. Nothing the parent did before is inherited, except passed handles.
    Spawn,
}

static START_METHOD: AtomicU8 = AtomicU8::new(0);

/// Sets the start method for every [`Process`](crate::Process) started afterwards that does
/// not choose its own. Python: `multiprocessing.set_start_method(method)`.
///
/// ```
/// use shared::StartMethod;
/// shared::set_start_method(StartMethod::Spawn);
/// assert_eq!(shared::get_start_method(), StartMethod::Spawn);
/// shared::set_start_method(StartMethod::Fork);
/// ```
pub fn set_start_method(method: StartMethod) {
    START_METHOD.store(method as u8, Ordering::Relaxed);
}

/// The program-wide start method. Python: `multiprocessing.get_start_method()`.
pub fn get_start_method() -> StartMethod {
    match START_METHOD.load(Ordering::Relaxed) {
        0 => StartMethod::Fork,
        _ => StartMethod::Spawn,
    }
}

impl fmt::Display for StartMethod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            StartMethod::Fork => "fork",
            StartMethod::Spawn => "spawn",
        })
    }
}

impl FromStr for StartMethod {
    type Err = InitError;

    fn from_str(name: &str) -> Result<Self, InitError> {
        match name {
            "fork" => Ok(StartMethod::Fork),
            "spawn" => Ok(StartMethod::Spawn),
            other => Err(InitError::UnknownStartMethod(other.to_owned())),
        }
    }
}

/// What [`init`] could not accept on the command line.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum InitError {
    /// `--start-method` was given a name other than `fork` or `spawn`.
    UnknownStartMethod(String),
    /// `--start-method` was the last argument.
    MissingStartMethod,
}

impl fmt::Display for InitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            InitError::UnknownStartMethod(name) => {
                write!(
                    f,
                    "unknown start method `{name}`: expected `fork` or `spawn`"
                )
            }
            InitError::MissingStartMethod => {
                f.write_str("`--start-method` needs a value: `fork` or `spawn`")
            }
        }
    }
}

impl std::error::Error for InitError {}

crate::debug_as_display!(InitError);

/// The entry call, first thing in `main`: the Rust counterpart of Python's
/// `if __name__ == '__main__':`.
///
/// Under the spawn start method a child is a fresh run of the same program. When `init` sees
/// that it is such a child, it runs the target it was sent and ends the process there, so the
/// rest of `main` runs only in the main process. Without this call a spawned child would run
/// `main` from the top, like a Python script without the guard re-running its module body.
///
/// In the main process, `init` also reads `--start-method fork|spawn` (or
/// `--start-method=spawn`) from the command line and applies it with [`set_start_method`].
///
/// # Errors
/// [`InitError`] when `--start-method` has no value or an unknown one.
pub fn init() -> Result<(), InitError> {
    run_if_spawned_child();
    if let Some(method) = start_method_from_args(std::env::args())? {
        set_start_method(method);
    }
    Ok(())
}

/// Finds `--start-method NAME` or `--start-method=NAME` in `args`.
///
/// # Errors
/// [`InitError`] when the option has no value or an unknown one.
pub fn start_method_from_args(
    args: impl IntoIterator<Item = String>,
) -> Result<Option<StartMethod>, InitError> {
    let mut args = args.into_iter();
    let mut found = None;
    while let Some(arg) = args.next() {
        if arg == "--start-method" {
            let value = args.next().ok_or(InitError::MissingStartMethod)?;
            found = Some(value.parse()?);
        } else if let Some(value) = arg.strip_prefix("--start-method=") {
            found = Some(value.parse()?);
        }
    }
    Ok(found)
}

/// Makes a test binary (whose `main` belongs to the test harness) able to run spawned
/// children: it runs the spawned-child half of [`init`] before `main`, from `.init_array`.
/// Put `shared::enable_test_support!();` at the top level of an integration test file.
#[macro_export]
macro_rules! enable_test_support {
    () => {
        #[used]
        #[unsafe(link_section = ".init_array")]
        static __SHARED_RUN_IF_SPAWNED_CHILD: extern "C" fn() = {
            extern "C" fn run_if_spawned_child() {
                $crate::__private::run_if_spawned_child();
            }
            run_if_spawned_child
        };
    };
}

/// The argument that marks a spawned child's command line: `PROGRAM MARKER PAYLOAD_FD`.
const SPAWNED_CHILD_MARKER: &str = "--shared-spawned-child";

/// Everything a spawned child receives, in a memfd whose number is on its command line.
#[derive(Serialize, Deserialize)]
struct SpawnPayload {
    entry: isize,
    args: Vec<u8>,
    fds: Vec<RawFd>,
    identity: String,
    name: String,
    daemon: bool,
}

/// The fixed point that target entry points are located from. A spawned child runs the same
/// executable, so the distance from here to an entry point is the same in both processes even
/// though address-space randomisation moves the whole image.
#[inline(never)]
pub(crate) fn entry_anchor() {}

pub(crate) fn offset_from_anchor(entry: fn(&[u8], Vec<OwnedFd>) -> i32) -> isize {
    (entry as usize as isize).wrapping_sub(entry_anchor as fn() as usize as isize)
}

/// Starts a spawned child for `launch`; returns its PID.
pub(crate) fn spawn_child(
    launch: &dyn Launch,
    me: ChildIdentity,
    name: &str,
) -> Result<u32, ProcessError> {
    let (entry, args, fds) = launch.for_spawn()?;
    let payload = SpawnPayload {
        entry,
        args,
        fds: fds.clone(),
        identity: me.identity,
        name: name.to_owned(),
        daemon: me.daemon,
    };
    let payload_fd = write_payload(&payload)?;
    let payload_raw = sys::fd::raw(&payload_fd);
    let mut inherit = fds;
    inherit.push(payload_raw);
    let parent = std::process::id();
    let daemon = me.daemon;

    let mut command = Command::new("/proc/self/exe");
    command.arg0(
        std::env::args_os()
            .next()
            .unwrap_or_else(|| OsString::from("child")),
    );
    command
        .arg(SPAWNED_CHILD_MARKER)
        .arg(payload_raw.to_string());
    // SAFETY: the hook only makes async-signal-safe calls (fcntl, prctl, getppid).
    unsafe {
        command.pre_exec(move || {
            for &fd in &inherit {
                sys::fd::keep_across_exec(fd)?;
            }
            if daemon {
                sys::process::die_with_parent(parent)?;
            }
            Ok(())
        });
    }
    let mut children = runtime::children();
    let pid = command.spawn()?.id();
    children.push(ChildRecord {
        pid,
        daemon,
        abandoned: false,
    });
    Ok(pid)
}

fn write_payload(payload: &SpawnPayload) -> Result<OwnedFd, ProcessError> {
    let bytes = rmp_serde::to_vec(payload).map_err(|e| ProcessError::Arguments(e.to_string()))?;
    let fd = sys::shm::create(c"shared-spawn-payload", 0)?;
    let mut file = std::fs::File::from(fd);
    file.write_all(&bytes)?;
    Ok(file.into())
}

/// Whether this process was started by spawn but its `main` is running: `init` was not called
/// (in a spawned child it never returns), so the child is re-running the parent's program.
pub(crate) fn is_spawned_child_without_init() -> bool {
    !DISPATCHED.load(Ordering::Relaxed)
        && std::env::args_os()
            .nth(1)
            .is_some_and(|arg| arg == SPAWNED_CHILD_MARKER)
}

/// Set once this spawned child has been given its target: from then on it may start
/// processes of its own.
static DISPATCHED: AtomicBool = AtomicBool::new(false);

/// If this process is a spawned child, run its target and end the process; otherwise return.
/// Public only for [`enable_test_support!`](crate::enable_test_support); use [`init`].
pub fn run_if_spawned_child() {
    // Read the command line from /proc rather than `std::env::args`: this may run from
    // `.init_array`, before the standard library has recorded the arguments.
    let Ok(cmdline) = std::fs::read("/proc/self/cmdline") else {
        return;
    };
    let mut args = cmdline.split(|&b| b == 0).skip(1);
    if args.next() != Some(SPAWNED_CHILD_MARKER.as_bytes()) {
        return;
    }
    let fd = args
        .next()
        .and_then(|raw| std::str::from_utf8(raw).ok()?.parse::<RawFd>().ok());
    let code = match fd
        .ok_or_else(|| "no payload descriptor".to_owned())
        .and_then(read_payload)
    {
        Ok(payload) => run_payload(payload),
        Err(error) => {
            eprintln!("shared: this spawned child cannot read what its parent sent: {error}");
            1
        }
    };
    runtime::finish_child(code)
}

fn read_payload(fd: RawFd) -> Result<SpawnPayload, String> {
    let fd = sys::fd::adopt_inherited(fd).map_err(|e| e.to_string())?;
    let mut file = std::fs::File::from(fd);
    let mut bytes = Vec::new();
    file.rewind()
        .and_then(|_| file.read_to_end(&mut bytes))
        .map_err(|e| e.to_string())?;
    rmp_serde::from_slice(&bytes).map_err(|e| e.to_string())
}

fn run_payload(payload: SpawnPayload) -> i32 {
    DISPATCHED.store(true, Ordering::Relaxed);
    // A Rust `main` ignores SIGPIPE, so writing to a closed pipe is an error, not death. This
    // may run before that set-up (from `.init_array`), so do it here too.
    sys::process::ignore_broken_pipe_signal();
    runtime::become_child(ChildIdentity {
        identity: payload.identity,
        daemon: payload.daemon,
    });
    let fds: Result<Vec<OwnedFd>, _> = payload
        .fds
        .iter()
        .map(|&fd| sys::fd::adopt_inherited(fd))
        .collect();
    let fds = match fds {
        Ok(fds) => fds,
        Err(error) => {
            eprintln!(
                "shared: {}: a handle passed by the parent is missing: {error}",
                payload.name
            );
            return 1;
        }
    };
    let address = (entry_anchor as fn() as usize as isize).wrapping_add(payload.entry) as usize;
    // SAFETY: this process is an `exec` of the parent's own executable (`/proc/self/exe`),
    // so `address` is the entry point the parent took the offset of, with this signature.
    let entry: fn(&[u8], Vec<OwnedFd>) -> i32 = unsafe { std::mem::transmute(address) };
    entry(&payload.args, fds)
}
