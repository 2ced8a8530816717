//! Helpers shared by the integration tests of `shared`. Each test file uses a part of them.
#![allow(dead_code)]

use std::ops::{Deref, DerefMut};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::thread;
use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;
use shared::{Process, StartMethod, Target};

/// Generates `fork::NAME` and `spawn::NAME` tests that call `NAME(StartMethod::...)`.
macro_rules! under_both_start_methods {
    ($($name:ident),* $(,)?) => {
        mod fork {
            $(
                #[test]
                fn $name() {
                    super::$name(shared::StartMethod::Fork);
                }
            )*
        }
        mod spawn {
            $(
                #[test]
                fn $name() {
                    super::$name(shared::StartMethod::Spawn);
                }
            )*
        }
    };
}

/// How long a child or a blocking call may take before the test calls it hung. Generous: the
/// work takes seconds at most in a debug build, and this limit is only reached by a bug.
pub const LIMIT: Duration = Duration::from_secs(30);

/// A started child process, killed and reaped if the test ends (or panics) while it runs, so
/// a stuck child never outlives its test or keeps the test binary from exiting. It derefs to
/// its [`Process`], for the tests of `Process` itself.
pub struct Child(pub Process);

impl Child {
    pub fn start<F, A>(method: StartMethod, target: F, args: A) -> Child
    where
        F: Target<A>,
        A: Serialize + DeserializeOwned + Send + 'static,
    {
        Child::started(Process::new(target, args).start_method(method))
    }

    /// Starts `process`, configured by the caller.
    pub fn started(mut process: Process) -> Child {
        process
            .start()
            .unwrap_or_else(|error| panic!("start {}: {error}", process.name()));
        Child(process)
    }

    /// The exit code once the child exits on its own; a child still running after `limit` is
    /// deadlocked, so it is killed and the test fails.
    pub fn exit_code_within(&mut self, limit: Duration) -> i32 {
        self.0.join_timeout(limit).expect("join_timeout");
        match self.0.exitcode() {
            Some(code) => code,
            None => {
                self.kill_and_reap();
                panic!(
                    "{} did not exit within {limit:?}: deadlocked",
                    self.0.name()
                );
            }
        }
    }

    pub fn expect_success(&mut self) {
        let code = self.exit_code_within(LIMIT);
        assert_eq!(code, 0, "{} failed (its error is on stderr)", self.0.name());
    }

    /// Kills the child (if it still runs) and returns its exit code: `-9` if the kill ended
    /// it, its own code if it had already exited.
    pub fn kill_and_reap(&mut self) -> i32 {
        self.0.kill().expect("kill");
        self.0.join_timeout(LIMIT).expect("join_timeout");
        self.0.exitcode().expect("a killed child should end")
    }
}

impl Deref for Child {
    type Target = Process;
    fn deref(&self) -> &Process {
        &self.0
    }
}

impl DerefMut for Child {
    fn deref_mut(&mut self) -> &mut Process {
        &mut self.0
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        if self.0.is_alive() {
            let _ = self.0.kill();
            let _ = self.0.join_timeout(LIMIT);
        }
    }
}

/// Runs `operation` on another thread and returns its result, failing the test if it has
/// not returned within `limit`: a call that should return but hangs is a bug, not a wait.
pub fn within<R: Send + 'static>(
    limit: Duration,
    operation: impl FnOnce() -> R + Send + 'static,
) -> R {
    let (sender, receiver) = mpsc::channel();
    thread::spawn(move || sender.send(operation()));
    match receiver.recv_timeout(limit) {
        Ok(result) => result,
        Err(RecvTimeoutError::Timeout) => panic!("still blocked after {limit:?}: hung"),
        Err(RecvTimeoutError::Disconnected) => panic!("the operation panicked"),
    }
}
