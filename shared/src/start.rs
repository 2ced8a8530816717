//! Start methods, and the entry call that makes a spawned child run only its target.

use std::fmt;
use std::str::FromStr;
use std::sync::atomic::{AtomicU8, Ordering};

#[cfg(doc)]
use crate::TOKEN_VARIABLE;
pub use crate::spawn::run_if_spawned_child;

/// How a child process begins. Python: the names given to `multiprocessing.set_start_method`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum StartMethod {
    /// The child is a copy of the parent (`fork(2)`) and runs the target right away. The
    /// default on Linux, as in Python before 3.14. Fast (no `exec`). The target may be any
    /// closure. Only the thread that calls `start` is copied: a lock another thread held at
    /// that moment stays held in the child forever, so a target that takes such a lock hangs
    /// (as under CPython's fork method); `shared`'s own locks and stdout are safe.
    Fork,
    /// The child is a fresh run of the same program (`exec` of `/proc/self/exe`) that receives
    /// the target and its serialized arguments, and runs only them. Needs [`init`] at the top
    /// of `main`. Nothing the parent did before is inherited, except passed handles. The
    /// target must be a function defined with `fn`, compiled into the executable (not a
    /// shared library), as Python's spawn needs a module-level function it can pickle.
    Spawn,
    /// The child is forked by a server: a fresh run of the same program (`exec` of
    /// `/proc/self/exe`), started on first use, that has a single thread and none of the
    /// program's state, and forks each child on request. The default on Linux since Python
    /// 3.14. Needs [`init`] and takes the targets spawn takes: the server receives the target
    /// and its serialized arguments, the same sealed payload a spawned child gets, with the
    /// handles passed over a socket, and the child checks it as a spawned child does.
    ///
    /// Safe in a program that runs threads, as spawn is, and faster to start a child once the
    /// server runs (no `exec` per child). The child's real parent is the server, but to the
    /// program it behaves as any child: [`Process::join`](crate::Process::join),
    /// [`exitcode`](crate::Process::exitcode), signals, daemons, [`active_children`] and
    /// [`parent_process`] work as under fork and spawn. The server ends when the program
    /// ends, even killed by SIGKILL; it leaves no file behind (its sockets have no name).
    ///
    /// [`active_children`]: crate::active_children
    /// [`parent_process`]: crate::parent_process
    Forkserver,
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
        1 => StartMethod::Spawn,
        _ => StartMethod::Forkserver,
    }
}

impl fmt::Display for StartMethod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            StartMethod::Fork => "fork",
            StartMethod::Spawn => "spawn",
            StartMethod::Forkserver => "forkserver",
        })
    }
}

impl FromStr for StartMethod {
    type Err = ParseStartMethodError;

    fn from_str(name: &str) -> Result<Self, ParseStartMethodError> {
        match name {
            "fork" => Ok(StartMethod::Fork),
            "spawn" => Ok(StartMethod::Spawn),
            "forkserver" => Ok(StartMethod::Forkserver),
            other => Err(ParseStartMethodError::Unknown(other.to_owned())),
        }
    }
}

/// The entry call, first thing in `main`: the Rust counterpart of Python's
/// `if __name__ == '__main__':`.
///
/// Under the spawn and forkserver start methods a child is a fresh run of the same program.
/// When `init` sees that it is such a child, it runs the target it was sent and ends the
/// process there, so the rest of `main` runs only in the main process. Without this call a
/// spawned child would run `main` from the top, like a Python script without the guard
/// re-running its module body. In the main process it returns at once.
///
/// `init` reads nothing the program owns: its command line, arguments such as
/// `input.txt --verbose -h`, stay the program's. Choose the start method with
/// [`set_start_method`], and record a timeline with [`record_timeline`](crate::record_timeline).
/// (The lessons call [`lesson::init`](crate::lesson::init), which is this guard followed by
/// the course's options.)
///
/// `init` obeys only a parent's own spawn: a command line that asks for a spawned child
/// without the payload and token its parent would have sent (see [`TOKEN_VARIABLE`]) ends the
/// program at once with a message on stderr and exit code 2, before `main` runs on.
///
/// ```
/// fn main() -> Result<(), Box<dyn std::error::Error>> {
///     shared::init()?;
///     // ... the program, which may start processes under any start method
///     Ok(())
/// }
/// ```
///
/// # Errors
/// [`InitError::NotMainThread`] when called on a thread other than the main one: a spawned
/// child would then run `main` up to the thread's start before it got its target. (A bad
/// spawned-child command line is not returned: it ends the process, as said above.)
pub fn init() -> Result<(), InitError> {
    if crate::sys::thread::current_id() != std::process::id() {
        return Err(InitError::NotMainThread);
    }
    run_if_spawned_child();
    Ok(())
}

/// Why [`init`] refused.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum InitError {
    /// `init` was called on a thread other than the program's main thread.
    NotMainThread,
}

impl fmt::Display for InitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            InitError::NotMainThread => f.write_str(
                "shared::init() must be called on the main thread, first thing in main: a \
                 spawned child runs main until it reaches init",
            ),
        }
    }
}

impl std::error::Error for InitError {}

crate::debug_as_display!(InitError);

/// Why a name is not a [`StartMethod`]: the error of its `FromStr`.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ParseStartMethodError {
    /// A name other than `fork`, `spawn` or `forkserver`.
    Unknown(String),
}

impl fmt::Display for ParseStartMethodError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ParseStartMethodError::Unknown(name) => write!(
                f,
                "unknown start method `{name}`: expected `fork`, `spawn` or `forkserver`"
            ),
        }
    }
}

impl std::error::Error for ParseStartMethodError {}

crate::debug_as_display!(ParseStartMethodError);

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
