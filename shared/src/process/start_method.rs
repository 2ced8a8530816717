//! [`StartMethod`]: how a child process begins, and the program-wide default. A leaf: it
//! imports nothing of the crate, so every layer may name a start method.

use std::fmt;
use std::sync::atomic::{AtomicU8, Ordering};

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
    /// the target and its serialized arguments, and runs only them. Needs [`init`](crate::init) at the top
    /// of `main`. Nothing the parent did before is inherited, except passed handles. The
    /// target must be a function defined with `fn`, compiled into the executable (not a
    /// shared library), as Python's spawn needs a module-level function it can pickle.
    Spawn,
    /// The child is forked by a server: a fresh run of the same program (`exec` of
    /// `/proc/self/exe`), started on first use, that has a single thread and none of the
    /// program's state, and forks each child on request. The default on Linux since Python
    /// 3.14. Needs [`init`](crate::init) and takes the targets spawn takes: the server receives the target
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
///
/// In the main process it is fork unless set ([`set_start_method`], or `--start-method` read
/// by [`init`](crate::init)). In a child it starts as the method that started that child, so
/// a child started by spawn starts its own children by spawn too (CPython's
/// `TestStartMethod.test_context`); the child may set another.
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
impl std::str::FromStr for StartMethod {
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

/// Why a name is not a [`StartMethod`]: the error of its `FromStr`.
///
/// ```
/// use shared::{ParseStartMethodError, StartMethod};
///
/// assert_eq!("spawn".parse::<StartMethod>(), Ok(StartMethod::Spawn));
/// let error = "forkk".parse::<StartMethod>().unwrap_err();
/// assert_eq!(error, ParseStartMethodError::Unknown("forkk".into()));
/// assert!(error.to_string().contains("`fork`, `spawn` or `forkserver`"));
/// ```
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
