//! [`ProcessError`]: why a [`Process`](crate::Process) operation failed.

use std::fmt;
use std::io;

/// Why a [`Process`](crate::Process) operation failed. The messages are CPython's where it has one.
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
            ProcessError::Os(_) => f.write_str("the system refused"),
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
