//! Helpers shared by the integration tests of `shared`. Each test file uses a part of them.
#![allow(dead_code)]

pub mod blocking;

use std::ops::{Deref, DerefMut};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::thread;
use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;
use shared::{Process, StartMethod, Target};

/// Generates `fork::NAME`, `spawn::NAME` and `forkserver::NAME` tests that call
/// `NAME(StartMethod::...)`.
macro_rules! under_every_start_method {
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
        mod forkserver {
            $(
                #[test]
                fn $name() {
                    super::$name(shared::StartMethod::Forkserver);
                }
            )*
        }
    };
}

/// The name [`under_every_start_method`] had when there were two start methods, kept so that
/// a test file written against it still builds; it runs all three.
#[allow(unused_macros)]
macro_rules! under_both_start_methods {
    ($($name:ident),* $(,)?) => {
        under_every_start_method!($($name),*);
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

/// A pidfd of process `pid` (Linux `pidfd_open`), for a process that is not this one's child:
/// a forkserved child, whose parent is the server. The caller makes sure `pid` still names
/// the process it means (a forkserved child's PID stays its own until its end is collected).
pub fn pidfd_of(pid: u32) -> std::os::fd::OwnedFd {
    use std::os::fd::FromRawFd;
    // SAFETY: plain syscall with integer arguments.
    let fd = unsafe { nix::libc::syscall(nix::libc::SYS_pidfd_open, pid as nix::libc::pid_t, 0) };
    assert!(
        fd >= 0,
        "pidfd_open({pid}): {}",
        std::io::Error::last_os_error()
    );
    // SAFETY: the kernel just returned this new descriptor; nothing else owns it.
    unsafe { std::os::fd::OwnedFd::from_raw_fd(fd as i32) }
}

/// Waits (bounded by `limit`) until the process behind `pidfd` has exited; whether it did.
pub fn exited_within(pidfd: &std::os::fd::OwnedFd, limit: Duration) -> bool {
    use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
    use std::os::fd::AsFd;
    let mut fds = [PollFd::new(pidfd.as_fd(), PollFlags::POLLIN)];
    let millis = i32::try_from(limit.as_millis()).unwrap_or(i32::MAX);
    matches!(poll(&mut fds, PollTimeout::try_from(millis).unwrap_or(PollTimeout::MAX)), Ok(n) if n > 0)
}

/// Whether process `pid` is no longer in the process table, not even as a zombie, within
/// `limit`: a forkserved child's server reaps it once its end has been collected.
pub fn leaves_the_process_table_within(pid: u32, limit: Duration) -> bool {
    let deadline = std::time::Instant::now() + limit;
    loop {
        let zombie_or_running = std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok();
        if !zombie_or_running {
            return true;
        }
        if std::time::Instant::now() >= deadline {
            return false;
        }
        thread::sleep(Duration::from_millis(5));
    }
}
