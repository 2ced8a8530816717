//! The raw limits: what the operating system alone costs for a workload, with no `shared`
//! (nor Python) in the way. `shared`'s figures are read as multiples of these.

use std::error::Error;
use std::os::fd::{AsFd, OwnedFd};
use std::process::Command;
use std::time::Instant;

use nix::sys::wait::{WaitStatus, waitpid};
use nix::unistd::{ForkResult, Pid, fork, pipe, read, write};

use super::{Outcome, check};
use crate::measurement::Measurement;

/// `count` round trips (after one warm-up) of one byte over two pipes between this process
/// and a forked child that echoes it: the least a duplex `Pipe` round trip can cost.
pub fn pipe_ping_pong(count: u64) -> Outcome {
    let (to_child_read, to_child_write) = pipe()?;
    let (to_parent_read, to_parent_write) = pipe()?;
    let child = fork_running(|| echo_bytes(&to_child_read, &to_parent_write, count + 1))?;
    drop((to_child_read, to_parent_write));
    let mut echoed = ping(&to_child_write, &to_parent_read, 0)?;
    let start = Instant::now();
    for i in 0..count {
        echoed &= ping(&to_child_write, &to_parent_read, i as u8)?;
    }
    let elapsed = start.elapsed();
    check(reap(child)? == 0, "the echo child exited with 0")?;
    check(echoed, "every byte came back unchanged")?;
    Ok(Measurement::of_this_process(elapsed, count))
}

/// Sends `byte` and reads it back; whether it came back unchanged.
fn ping(to: &OwnedFd, from: &OwnedFd, byte: u8) -> Result<bool, Box<dyn Error>> {
    check(write(to, &[byte])? == 1, "one byte written")?;
    let mut back = [0];
    check(read(from.as_fd(), &mut back)? == 1, "one byte read")?;
    Ok(back[0] == byte)
}

/// The child of [`pipe_ping_pong`]: reads a byte, writes it back, `count` times.
fn echo_bytes(from: &OwnedFd, to: &OwnedFd, count: u64) -> bool {
    let mut byte = [0];
    (0..count).all(|_| {
        read(from.as_fd(), &mut byte).is_ok_and(|n| n == 1)
            && write(to, &byte).is_ok_and(|n| n == 1)
    })
}

/// `count` × (`fork`, `_exit(0)` in the child, `waitpid`): the least a process started by
/// the fork start method and joined can cost.
pub fn fork_exit_wait(count: u64) -> Outcome {
    let start = Instant::now();
    for _ in 0..count {
        let child = fork_running(|| true)?;
        check(reap(child)? == 0, "the child exited with 0")?;
    }
    Ok(Measurement::of_this_process(start.elapsed(), count))
}

/// `count` × (an `exec` of this same executable that exits at once, waited for): the least a
/// process started by the spawn start method (an `exec` of the program) and joined can cost.
pub fn exec_self(count: u64) -> Outcome {
    let start = Instant::now();
    for _ in 0..count {
        let status = Command::new("/proc/self/exe")
            .args(["workload", EXIT_AT_ONCE])
            .status()?;
        check(status.success(), "the executed program exited with 0")?;
    }
    Ok(Measurement::of_this_process(start.elapsed(), count))
}

/// The workload program that does nothing: the executable [`exec_self`] starts.
pub const EXIT_AT_ONCE: &str = "exit";

/// Forks a child that runs `body` and leaves with `_exit` (0 when `body` returns true).
fn fork_running(body: impl FnOnce() -> bool) -> Result<Pid, Box<dyn Error>> {
    // SAFETY: the bench's workload process has one thread here (nothing in the raw workloads
    // starts another), so the child may run any code; it leaves with `_exit`, running no
    // destructor or exit handler of the parent's.
    match unsafe { fork() }? {
        ForkResult::Child => {
            let code = if body() { 0 } else { 1 };
            // SAFETY: `_exit` is always safe to call; it never returns.
            unsafe { nix::libc::_exit(code) }
        }
        ForkResult::Parent { child } => Ok(child),
    }
}

/// Waits for `child`; its exit code, or an error if a signal ended it.
fn reap(child: Pid) -> Result<i32, Box<dyn Error>> {
    match waitpid(child, None)? {
        WaitStatus::Exited(_, code) => Ok(code),
        status => Err(format!("the child ended with {status:?}").into()),
    }
}
