//! [`PoolError`]: why a [`Pool`](crate::Pool) call or one of its tasks failed.

use std::fmt;
use std::io;

use crate::ProcessError;

/// Why a [`Pool`](crate::Pool) operation, or a task it ran, failed. The messages are
/// CPython's where it has one.
#[derive(Debug)]
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
    /// `get_timeout` or `next_timeout` gave up. Python: `multiprocessing.TimeoutError`.
    Timeout,
    /// The task is a closure or a function pointer: a worker finds a task from its type alone,
    /// so it must be a function defined with `fn`. Python cannot pickle a lambda either.
    NeedsFunction,
    /// The task's arguments could not be serialized (a handle such as a `Queue` cannot be a
    /// task's argument; pass it through the initializer).
    Arguments(String),
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
    /// A worker's initializer failed (returned `Err`, panicked, or the worker died in it), so
    /// the pool stopped; the message is the initializer's error, or how the worker died.
    /// CPython starts new workers for ever instead.
    Initializer(String),
    /// The task's result did not decode as the type the caller asked for.
    Decode(String),
    /// The task ran, but its result could not be encoded to be sent back (its `Serialize`
    /// failed): that call fails, with the encoder's message, and the pool goes on. Python:
    /// `MaybeEncodingError`.
    Encoding(String),
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
            PoolError::Arguments(error) => write!(f, "the task's arguments: {error}"),
            PoolError::Task(message) => write!(f, "the task failed: {message}"),
            PoolError::WorkerDied { pid, exitcode } => write!(
                f,
                "{} while running the task",
                worker_death(*pid, *exitcode)
            ),
            PoolError::Terminated => write!(f, "the pool was terminated before the task finished"),
            PoolError::Initializer(message) => {
                write!(f, "the pool's initializer failed: {message}")
            }
            PoolError::Decode(error) => write!(f, "the task's result does not decode: {error}"),
            PoolError::Encoding(error) => {
                write!(f, "the task's result could not be sent back: {error}")
            }
            PoolError::Broken(why) => write!(f, "the pool cannot go on: {why}"),
            PoolError::Start(error) => write!(f, "a pool worker could not start: {error}"),
            PoolError::Io(error) => write!(f, "{error}"),
        }
    }
}

impl std::error::Error for PoolError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            PoolError::Start(error) => Some(error),
            PoolError::Io(error) => Some(error),
            _ => None,
        }
    }
}

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
}
