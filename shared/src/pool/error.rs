//! [`PoolError`]: why a [`Pool`](crate::Pool) call or one of its tasks failed.

use std::fmt;
use std::io;

use crate::ProcessError;

/// Why a [`Pool`](crate::Pool) operation, or a task it ran, failed. The messages are
/// CPython's where it has one.
///
/// `Display` gives the pool's own message; the error behind it, if any (an encoder's, a
/// process's, the system's), comes from [`source`](std::error::Error::source). `Debug`, what
/// a `main` returning the error prints, is the message, not the variant's fields:
///
/// ```
/// let error = shared::PoolError::WorkerDied { pid: 42, exitcode: -6 };
/// assert_eq!(
///     format!("{error:?}"),
///     "worker 42 was killed by signal 6 (SIGABRT) while running the task"
/// );
/// ```
#[non_exhaustive]
pub enum PoolError {
    /// `Pool::new(0)`. Python: `ValueError: Number of processes must be at least 1`.
    NoProcesses,
    /// `maxtasksperchild(0)`. Python: `ValueError: maxtasksperchild must be a positive int or None`.
    NoTasksPerChild,
    /// A chunk size of 0. Python: `ValueError: Chunksize must be 1+, not 0`.
    NoChunksize,
    /// Work was submitted after `close` or `terminate`. Python: `ValueError: Pool not running`.
    NotRunning,
    /// `join` before `close` or `terminate`. Python: `ValueError: Pool is still running`.
    StillRunning,
    /// `successful` before the result arrived. Python: `ValueError: ... not ready`.
    NotReady,
    /// `get_timeout` or `next_timeout` gave up; so did [`Future::result_timeout`](crate::Future::result_timeout),
    /// an executor's `map` past its timeout, or [`as_completed`](crate::as_completed). Python:
    /// `multiprocessing.TimeoutError`, `concurrent.futures.TimeoutError`.
    Timeout,
    /// The task is a closure or a function pointer: a worker finds a task from its type alone,
    /// so it must be a function defined with `fn`. Python cannot pickle a lambda either.
    NeedsFunction,
    /// The task's arguments could not be serialized (a handle such as a `Queue` cannot be a
    /// task's argument; pass it through the initializer). Python: `PicklingError`.
    Arguments(CodecError),
    /// The task returned an `Err` or panicked; the message is the error's `Display` or the
    /// panic's message and location. Python re-raises the task's exception.
    Task(String),
    /// The worker running the task died before it finished (killed by a signal, or it exited):
    /// the task did not complete, and it was not retried. CPython's `Pool` hangs for ever here.
    WorkerDied {
        /// The worker's PID.
        pid: u32,
        /// Its exit code: negative for the signal that killed it, as `Process::exitcode`.
        exitcode: i32,
    },
    /// The pool was terminated (or dropped) before the task finished.
    Terminated,
    /// The task ran longer than its timeout ([`PoolBuilder::task_timeout`](crate::PoolBuilder::task_timeout)):
    /// its worker was killed (SIGKILL) and replaced, and the other tasks ran on. For a `map`,
    /// every call of the chunk that overran fails so. Python has no per-task timeout (pebble's
    /// `TimeoutError` is the nearest).
    TaskTimeout {
        /// The PID of the worker that ran it, now killed.
        pid: u32,
        /// The timeout it overran.
        timeout: std::time::Duration,
    },
    /// The task was cancelled before any worker took it ([`Future::cancel`](crate::Future::cancel),
    /// [`ProcessPoolExecutor::shutdown`](crate::ProcessPoolExecutor::shutdown)). Python:
    /// `concurrent.futures.CancelledError`.
    Cancelled,
    /// A worker's initializer failed (returned `Err`, panicked, or the worker exited in it, or
    /// workers kept being killed in it: see [`PoolBuilder::initializer`](crate::PoolBuilder::initializer)),
    /// so the pool stopped; the message is the initializer's error, or how the worker died.
    /// CPython starts new workers for ever instead.
    Initializer(String),
    /// The task's result did not decode as the type the caller asked for.
    Decode(CodecError),
    /// The task ran, but its result could not be encoded to be sent back (its `Serialize`
    /// failed): the calls of that chunk fail, and the pool goes on. Python:
    /// `MaybeEncodingError`.
    Encoding(CodecError),
    /// The pool can no longer work: its shared state is corrupt, or a worker sent an order it
    /// must refuse. The message says which.
    Broken(String),
    /// A worker process could not be started.
    Start(ProcessError),
    /// The system refused a resource the pool needs (a queue, a thread).
    Io(io::Error),
}

impl PoolError {
    /// Whether the task itself failed (returned `Err` or panicked), rather than the pool.
    pub fn is_task_error(&self) -> bool {
        matches!(self, PoolError::Task(_))
    }
}

impl fmt::Display for PoolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PoolError::NoProcesses => write!(f, "Number of processes must be at least 1"),
            PoolError::NoTasksPerChild => write!(f, "maxtasksperchild must be a positive int"),
            PoolError::NoChunksize => write!(f, "Chunksize must be 1+, not 0"),
            PoolError::NotRunning => write!(f, "Pool not running"),
            PoolError::StillRunning => write!(f, "Pool is still running"),
            PoolError::NotReady => write!(f, "the result is not ready"),
            PoolError::Timeout => write!(f, "the result did not arrive in time"),
            PoolError::NeedsFunction => write!(
                f,
                "a pool runs only functions defined with `fn` (not closures or function \
                 pointers), which a worker can find from their type"
            ),
            PoolError::Arguments(_) => write!(f, "the task's arguments could not be encoded"),
            PoolError::Task(message) => write!(f, "the task failed: {message}"),
            PoolError::WorkerDied { pid, exitcode } => write!(
                f,
                "{} while running the task",
                worker_death(*pid, *exitcode)
            ),
            PoolError::Terminated => write!(f, "the pool was terminated before the task finished"),
            PoolError::TaskTimeout { pid, timeout } => write!(
                f,
                "the task ran longer than its timeout of {timeout:?}: its worker {pid} was killed"
            ),
            PoolError::Cancelled => write!(f, "the task was cancelled"),
            PoolError::Initializer(message) => {
                write!(f, "the pool's initializer failed: {message}")
            }
            PoolError::Decode(_) => {
                write!(f, "the task's result does not decode as the type asked for")
            }
            PoolError::Encoding(_) => {
                write!(f, "the task's result could not be encoded to be sent back")
            }
            PoolError::Broken(why) => write!(f, "the pool cannot go on: {why}"),
            PoolError::Start(_) => write!(f, "a pool worker could not start"),
            PoolError::Io(_) => write!(f, "the pool could not get a resource it needs"),
        }
    }
}

impl std::error::Error for PoolError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            PoolError::Arguments(error) | PoolError::Decode(error) | PoolError::Encoding(error) => {
                Some(error)
            }
            PoolError::Start(error) => Some(error),
            PoolError::Io(error) => Some(error),
            _ => None,
        }
    }
}

crate::debug_as_display!(PoolError);

/// What an encoder or a decoder of a task's arguments or result said (MessagePack through
/// serde): the [`source`](std::error::Error::source) of [`PoolError::Arguments`],
/// [`PoolError::Decode`] and [`PoolError::Encoding`].
#[derive(Clone, PartialEq, Eq)]
pub struct CodecError(String);

impl CodecError {
    /// An encoder's or decoder's `message`, as the pool reports one (for tests of code that
    /// handles [`PoolError`]s).
    ///
    /// ```
    /// use std::error::Error;
    /// use shared::{CodecError, PoolError};
    ///
    /// let error = PoolError::Encoding(CodecError::new("the encoder said no"));
    /// assert_eq!(error.source().unwrap().to_string(), "the encoder said no");
    /// assert!(format!("{error:?}").ends_with(": the encoder said no"));
    /// ```
    pub fn new(message: impl Into<String>) -> CodecError {
        CodecError(message.into())
    }

    /// The encoder's or decoder's message.
    pub fn message(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for CodecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for CodecError {}

crate::debug_as_display!(CodecError);

impl From<io::Error> for PoolError {
    fn from(error: io::Error) -> Self {
        PoolError::Io(error)
    }
}

impl From<ProcessError> for PoolError {
    fn from(error: ProcessError) -> Self {
        PoolError::Start(error)
    }
}

/// How worker `pid` ended: "worker 42 was killed by signal 9 (SIGKILL)", "worker 42 exited
/// with code 1"; `exitcode` is negative for a signal, as `Process::exitcode`.
pub(crate) fn worker_death(pid: u32, exitcode: i32) -> String {
    if exitcode < 0 {
        let signal = -exitcode;
        format!(
            "worker {pid} was killed by signal {signal} ({})",
            signal_name(signal)
        )
    } else {
        format!("worker {pid} exited with code {exitcode}")
    }
}

fn signal_name(signal: i32) -> &'static str {
    nix::sys::signal::Signal::try_from(signal).map_or("unknown signal", |s| s.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_killed_worker_is_named_with_its_signal() {
        let error = PoolError::WorkerDied {
            pid: 42,
            exitcode: -9,
        };
        assert_eq!(
            error.to_string(),
            "worker 42 was killed by signal 9 (SIGKILL) while running the task"
        );
    }

    #[test]
    fn display_gives_the_message_and_source_the_cause() {
        use std::error::Error;
        let error = PoolError::Encoding(CodecError::new("an Unsendable cannot cross"));
        assert_eq!(
            error.to_string(),
            "the task's result could not be encoded to be sent back"
        );
        let cause = error.source().expect("the encoder's message");
        assert_eq!(cause.to_string(), "an Unsendable cannot cross");
        let error = PoolError::Io(io::Error::other("no memory"));
        assert_eq!(
            error.source().map(ToString::to_string).as_deref(),
            Some("no memory")
        );
        assert!(!error.to_string().contains("no memory"));
        // A closure passed to a pool: a sentence, not `NeedsFunction`.
        assert!(format!("{:?}", PoolError::NeedsFunction).starts_with("a pool runs only"));
    }
}
