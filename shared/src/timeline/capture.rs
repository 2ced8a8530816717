//! Which process printed which line, without changing what reaches stdout.
//!
//! A lesson prints with `println!`, which writes each line to descriptor 1 in one `write`.
//! With the timeline on, every process of the run (the main one at `init`, each child as it
//! starts) points its descriptor 1 at a pipe of its own, and copies what arrives there to
//! the real stdout, byte for byte, recording each complete line as an event of that process.
//! A pipe per process is what makes the attribution exact: a line is in the pipe of the
//! process that wrote it.
//!
//! # Order
//!
//! Copying happens in two places: a thread of the process that copies as soon as bytes
//! arrive (so output appears as the program runs), and every timeline event of the process,
//! which first copies everything still in the pipe, under the same lock. Each event that can
//! let another process go on (a `put`, a `send`, a `task_done`, a lock's release, a `start`,
//! the process's exit) therefore comes after the process's earlier lines are on the real
//! stdout: a line a child prints before it exits reaches stdout before its parent's `join`
//! returns, as without the flag. Lines no such event separates may interleave differently
//! than without the flag, as they may between runs anyway.
//!
//! A line's time is when it was copied: at the latest, the process's next event.
//!
//! # Limits
//!
//! A process killed by a signal loses the bytes still in its pipe, if its copying thread had
//! not read them yet (without the flag they would have been printed). A lesson kills no
//! process that is printing.

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicI32, AtomicPtr, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};

use crate::sys;

/// This process's copy: its pipe, the real stdout, and the start of a line not yet ended.
struct Capture {
    read: OwnedFd,
    real: OwnedFd,
    partial: Vec<u8>,
}

/// The current capture of this process, leaked so that it lives as long as the process. A
/// forked child leaves its parent's (whose lock the parent's copying thread may have held at
/// the fork) and installs its own.
static CURRENT: AtomicPtr<Mutex<Capture>> = AtomicPtr::new(std::ptr::null_mut());
/// The descriptor numbers of the current capture's pipe and real stdout, readable without
/// its lock: a forked child closes the first and takes over the second.
static READ_FD: AtomicI32 = AtomicI32::new(-1);
static REAL_FD: AtomicI32 = AtomicI32::new(-1);

fn current() -> Option<&'static Mutex<Capture>> {
    let pointer = CURRENT.load(Ordering::Acquire);
    // SAFETY: every non-null value stored in `CURRENT` comes from `Box::leak` in `install`,
    // and is never freed, so it is valid for `'static`.
    unsafe { pointer.as_ref() }
}

fn lock(capture: &Mutex<Capture>) -> MutexGuard<'_, Capture> {
    // A panic while copying leaves no half-done state that matters: at worst a line split.
    capture.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Starts capturing this process's stdout, whose real destination is `real`; `record` is
/// called with each complete line, by whichever thread copies it.
///
/// # Errors
/// The system refused the pipe, the redirection or the thread.
pub(super) fn install(real: OwnedFd, record: fn(&[u8])) -> io::Result<()> {
    let (read, write) = sys::fd::pipe()?;
    sys::fd::set_nonblocking(read.as_fd())?;
    sys::fd::redirect(write.as_fd(), 1)?;
    drop(write); // descriptor 1 is now the pipe's only write end in this process
    READ_FD.store(read.as_raw_fd(), Ordering::Relaxed);
    REAL_FD.store(real.as_raw_fd(), Ordering::Relaxed);
    let capture: &'static Mutex<Capture> = Box::leak(Box::new(Mutex::new(Capture {
        read,
        real,
        partial: Vec::new(),
    })));
    CURRENT.store(std::ptr::from_ref(capture).cast_mut(), Ordering::Release);
    std::thread::Builder::new()
        .name("shared-timeline-stdout".into())
        .spawn(move || copy_as_it_arrives(capture, record))?;
    Ok(())
}

/// In a forked child: leaves the parent's capture (closing the child's copy of the parent's
/// pipe) and captures this process's stdout into a pipe of its own.
///
/// # Errors
/// As [`install`]; also when the parent had no capture.
pub(super) fn install_after_fork(record: fn(&[u8])) -> io::Result<()> {
    let (parent_read, real) = (
        READ_FD.load(Ordering::Relaxed),
        REAL_FD.load(Ordering::Relaxed),
    );
    if current().is_none() || real < 0 {
        return Err(io::Error::other("the parent captured no stdout"));
    }
    sys::fd::close_leaked(parent_read);
    // SAFETY: `real` is open in this child (inherited from the parent, where the capture
    // owns it), and its only owner, the parent's capture, is leaked here and never used
    // again, so this becomes its one owner.
    let real = unsafe { OwnedFd::from_raw_fd(real) };
    install(real, record)
}

/// Copies whatever the pipe holds now to the real stdout, recording complete lines.
pub(super) fn drain(record: fn(&[u8])) {
    if let Some(capture) = current() {
        copy_available(&mut lock(capture), record);
    }
}

/// Copies what is left, records a last line without its newline, and gives descriptor 1 back
/// to the real stdout (so nothing printed after is held in a pipe nobody reads).
pub(super) fn finish(record: fn(&[u8])) {
    let Some(capture) = current() else {
        return;
    };
    let mut capture = lock(capture);
    copy_available(&mut capture, record);
    if !capture.partial.is_empty() {
        record(&std::mem::take(&mut capture.partial));
    }
    let _ = sys::fd::redirect(capture.real.as_fd(), 1);
}

/// The copying thread: waits for bytes and copies them, until every writer closed the pipe.
fn copy_as_it_arrives(capture: &'static Mutex<Capture>, record: fn(&[u8])) {
    let read = lock(capture).read.as_raw_fd();
    loop {
        // SAFETY: `read` belongs to a leaked capture, never dropped, so it stays open for
        // the life of the process (a forked child, which closes its copy, has no such thread).
        let fd = unsafe { BorrowedFd::borrow_raw(read) };
        if sys::fd::wait_readable(fd, None).is_err() {
            return;
        }
        if copy_available(&mut lock(capture), record) == Copied::EndOfFile {
            return;
        }
    }
}

#[derive(PartialEq, Eq)]
enum Copied {
    AllForNow,
    EndOfFile,
}

fn copy_available(capture: &mut Capture, record: fn(&[u8])) -> Copied {
    let mut buffer = [0; 16 * 1024];
    loop {
        match sys::fd::read_some(capture.read.as_fd(), &mut buffer) {
            Ok(0) => return Copied::EndOfFile,
            Ok(read) => {
                let bytes = &buffer[..read];
                // The bytes go out as they came, whatever the recording makes of them. A
                // stdout that refuses them loses them, as `print!` would have failed.
                let _ = sys::fd::write_all(capture.real.as_fd(), bytes);
                record_lines(&mut capture.partial, bytes, record);
            }
            // Nothing more now (`WouldBlock`), or a read error: stop copying for now.
            Err(_) => return Copied::AllForNow,
        }
    }
}

/// Adds `bytes` to `partial` and records every line it completes, without its newline.
fn record_lines(partial: &mut Vec<u8>, bytes: &[u8], record: fn(&[u8])) {
    partial.extend_from_slice(bytes);
    while let Some(end) = partial.iter().position(|&byte| byte == b'\n') {
        let line: Vec<u8> = partial.drain(..=end).collect();
        record(&line[..end]);
    }
}

/// The raw number of the real stdout of this process's capture, if any.
pub(super) fn real_stdout() -> Option<RawFd> {
    current().map(|capture| lock(capture).real.as_raw_fd())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex as StdMutex;

    static LINES: StdMutex<Vec<Vec<u8>>> = StdMutex::new(Vec::new());

    fn keep(line: &[u8]) {
        LINES.lock().unwrap().push(line.to_vec());
    }

    #[test]
    fn lines_are_split_at_newlines_and_partial_ones_wait() {
        let mut partial = Vec::new();
        record_lines(&mut partial, b"um\ndo", keep);
        record_lines(&mut partial, b"is\n\ntr", keep);
        assert_eq!(partial, b"tr");
        let lines = LINES.lock().unwrap().clone();
        assert_eq!(lines, [b"um".to_vec(), b"dois".to_vec(), Vec::new()]);
    }
}
