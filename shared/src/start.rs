//! Start methods, and the entry call that makes a spawned child run only its target.

use std::fmt;
use std::str::FromStr;
use std::sync::atomic::{AtomicU8, Ordering};

#[cfg(doc)]
use crate::TOKEN_VARIABLE;

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
/// `init` obeys only a parent's own spawn: a command line that asks for a spawned child
/// without the payload and token its parent would have sent (see [`TOKEN_VARIABLE`]) ends the
/// program at once with a message on stderr and exit code 2, before `main` runs on.
///
/// In the main process, `init` also reads `--start-method fork|spawn` (or
/// `--start-method=spawn`) from the command line and applies it with [`set_start_method`].
///
/// # Errors
/// [`InitError`] when `--start-method` has no value or an unknown one.
pub fn init() -> Result<(), InitError> {
    crate::spawn::run_if_spawned_child();
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
