//! File descriptors: pipes, readiness and inheritance across `exec`.

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::time::Duration;

use nix::fcntl::{FcntlArg, FdFlag, OFlag, fcntl};
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};

use super::io_error;

/// A one-way pipe, close-on-exec: `(read end, write end)`.
pub(crate) fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    nix::unistd::pipe2(OFlag::O_CLOEXEC).map_err(io_error)
}

/// Waits until `fd` is readable (data, end of file or a hang-up), up to `timeout`
/// (`None` waits forever). Returns whether it became readable.
pub(crate) fn wait_readable(fd: BorrowedFd<'_>, timeout: Option<Duration>) -> io::Result<bool> {
    Ok(wait_any_readable(&[fd], timeout)?[0])
}

/// Waits until at least one of `fds` is readable (data, end of file, a hang-up or an error
/// to report), up to `timeout` (`None` waits forever). Returns, for each, whether it is;
/// all false when the time ran out.
pub(crate) fn wait_any_readable(
    fds: &[BorrowedFd<'_>],
    timeout: Option<Duration>,
) -> io::Result<Vec<bool>> {
    // A deadline too far to represent is no deadline.
    let deadline = timeout.and_then(|t| std::time::Instant::now().checked_add(t));
    loop {
        let remaining = deadline.map(|d| d.saturating_duration_since(std::time::Instant::now()));
        let poll_timeout = match remaining {
            None => PollTimeout::NONE,
            // Round up so that a sub-millisecond wait still waits rather than spins.
            Some(left) => {
                PollTimeout::try_from(left.as_micros().div_ceil(1000).min(i32::MAX as u128) as i32)
                    .unwrap_or(PollTimeout::MAX)
            }
        };
        let mut polled: Vec<PollFd<'_>> = fds
            .iter()
            .map(|&fd| PollFd::new(fd, PollFlags::POLLIN))
            .collect();
        match poll(&mut polled, poll_timeout) {
            Ok(0) if remaining.is_some_and(|left| left.is_zero()) => {
                return Ok(vec![false; fds.len()]);
            }
            Ok(0) => continue,
            Ok(_) => {
                return Ok(polled
                    .iter()
                    .map(|p| p.revents().is_some_and(|events| !events.is_empty()))
                    .collect());
            }
            Err(nix::errno::Errno::EINTR) => continue,
            Err(errno) => return Err(io_error(errno)),
        }
    }
}

/// Lets `fd` survive `exec`. Only async-signal-safe calls: it runs between `fork` and `exec`.
pub(crate) fn keep_across_exec(fd: RawFd) -> io::Result<()> {
    // SAFETY: `fcntl(F_SETFD)` takes a plain integer and only changes the close-on-exec flag
    // of whatever is open at that number in this (child) process; on a number with nothing
    // open it fails with EBADF. No memory is touched and no ownership is claimed.
    if unsafe { nix::libc::fcntl(fd, nix::libc::F_SETFD, 0) } == -1 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Whether `fd` is open and survives `exec` (not close-on-exec): true of a descriptor a
/// parent marked for a spawned child, false of one this process opened (the standard library
/// opens everything close-on-exec) and of any number with nothing open behind it.
pub(crate) fn is_inherited(fd: RawFd) -> bool {
    // SAFETY: `fcntl(F_GETFD)` takes a plain integer and only reads flags; on a number with
    // nothing open it fails with EBADF. No memory is touched and no ownership is claimed.
    let flags = unsafe { nix::libc::fcntl(fd, nix::libc::F_GETFD) };
    flags != -1 && flags & nix::libc::FD_CLOEXEC == 0
}

/// A new descriptor for the same open file, close-on-exec.
pub(crate) fn duplicate(fd: BorrowedFd<'_>) -> io::Result<OwnedFd> {
    fd.try_clone_to_owned()
}

/// The lowest number a descriptor passed to a spawned child or a forkserver may have: the
/// child refuses 0, 1 and 2, which are its standard streams.
pub(crate) const FIRST_PASSED: RawFd = 3;

/// `fd` itself if its number is above the standard streams; else a close-on-exec duplicate
/// that is. A parent whose descriptor 0, 1 or 2 is closed (a daemon, `prog >&-`) gets those
/// numbers for the next files it opens, and a child would take them for its standard streams.
pub(crate) fn above_standard_streams(fd: OwnedFd) -> io::Result<OwnedFd> {
    if fd.as_raw_fd() >= FIRST_PASSED {
        return Ok(fd);
    }
    lifted(fd.as_fd())
}

/// A close-on-exec duplicate of `fd` numbered [`FIRST_PASSED`] or above.
pub(crate) fn lifted(fd: BorrowedFd<'_>) -> io::Result<OwnedFd> {
    // SAFETY: `fcntl(F_DUPFD_CLOEXEC)` takes plain integers and returns a new descriptor (or
    // -1); no memory is touched. `fd` is borrowed, so it is open for the call.
    let new = unsafe { nix::libc::fcntl(fd.as_raw_fd(), nix::libc::F_DUPFD_CLOEXEC, FIRST_PASSED) };
    if new == -1 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the kernel just returned this new descriptor; nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(new) })
}

/// Takes ownership of a descriptor inherited through `exec`: one above the standard streams,
/// open, and not close-on-exec. Sets close-on-exec on it, so a grandchild started by spawn does
/// not inherit it by accident, and so that adopting the same number twice fails.
pub(crate) fn adopt_inherited(fd: RawFd) -> io::Result<OwnedFd> {
    if fd <= 2 || !is_inherited(fd) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "descriptor {fd} was not inherited: it is closed, a standard stream, or already taken"
            ),
        ));
    }
    // SAFETY: `fd` is open (checked above), so the borrow is valid for this call.
    let borrowed = unsafe { BorrowedFd::borrow_raw(fd) };
    fcntl(borrowed, FcntlArg::F_SETFD(FdFlag::FD_CLOEXEC)).map_err(io_error)?;
    // SAFETY: nothing in this process owns `fd`: the standard library and this crate open
    // every descriptor close-on-exec, and this one was not, so it came through `exec` from
    // the parent; and no earlier adoption took it, since adoption sets close-on-exec (above)
    // and a close-on-exec descriptor is refused. Only this thread can be adopting it: a
    // spawned child adopts before it runs any code of the user's.
    Ok(unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) })
}

/// What kind of open file a descriptor is, as far as a handle cares.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    /// A socket (a duplex `Pipe` end).
    Socket,
    /// A pipe or FIFO (a one-way `Pipe` end).
    Fifo,
    /// A regular file, which includes a memfd.
    Regular,
    /// Anything else: a terminal, a directory, a device.
    Other,
}

/// The kind of the open file behind `fd`.
pub(crate) fn kind(fd: BorrowedFd<'_>) -> io::Result<Kind> {
    use nix::sys::stat::{SFlag, fstat};
    let mode = SFlag::from_bits_truncate(fstat(fd).map_err(io_error)?.st_mode);
    Ok(match mode & SFlag::S_IFMT {
        SFlag::S_IFSOCK => Kind::Socket,
        SFlag::S_IFIFO => Kind::Fifo,
        SFlag::S_IFREG => Kind::Regular,
        _ => Kind::Other,
    })
}

/// Which directions an open file was opened for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Access {
    /// Reading only (a pipe's read end).
    Read,
    /// Writing only (a pipe's write end).
    Write,
    /// Both (a socket, a file opened read-write).
    ReadWrite,
}

/// The directions the open file behind `fd` allows (its `O_ACCMODE`).
pub(crate) fn access(fd: BorrowedFd<'_>) -> io::Result<Access> {
    let flags = OFlag::from_bits_truncate(fcntl(fd, FcntlArg::F_GETFL).map_err(io_error)?);
    Ok(match flags & OFlag::O_ACCMODE {
        OFlag::O_RDONLY => Access::Read,
        OFlag::O_WRONLY => Access::Write,
        _ => Access::ReadWrite,
    })
}

/// The raw number of a descriptor, for the spawn payload.
pub(crate) fn raw(fd: &impl AsFd) -> RawFd {
    fd.as_fd().as_raw_fd()
}

/// Makes `target` (a standard stream's number) another name for `fd`'s open file,
/// closing what `target` named before (`dup2`). The new `target` is not close-on-exec, as a
/// standard stream must not be.
pub(crate) fn redirect(fd: BorrowedFd<'_>, target: RawFd) -> io::Result<()> {
    loop {
        // SAFETY: `dup2` takes two integers; `fd` is open (borrowed), and `target` is one of
        // the standard streams, which no Rust object owns as an `OwnedFd`: replacing the open
        // file behind it invalidates no handle's assumptions (writes go to the new file).
        let result = unsafe { nix::libc::dup2(fd.as_raw_fd(), target) };
        if result != -1 {
            return Ok(());
        }
        let error = io::Error::last_os_error();
        if error.kind() != io::ErrorKind::Interrupted {
            return Err(error);
        }
    }
}

/// Makes reads of `fd` return `WouldBlock` instead of waiting.
pub(crate) fn set_nonblocking(fd: BorrowedFd<'_>) -> io::Result<()> {
    let flags = fcntl(fd, FcntlArg::F_GETFL).map_err(io_error)?;
    let flags = OFlag::from_bits_truncate(flags) | OFlag::O_NONBLOCK;
    fcntl(fd, FcntlArg::F_SETFL(flags))
        .map(drop)
        .map_err(io_error)
}

/// Reads what `fd` has, up to `buffer.len()` bytes: 0 at end of file, `WouldBlock` when a
/// non-blocking descriptor has nothing now. Retries on EINTR.
pub(crate) fn read_some(fd: BorrowedFd<'_>, buffer: &mut [u8]) -> io::Result<usize> {
    loop {
        match nix::unistd::read(fd, buffer) {
            Ok(read) => return Ok(read),
            Err(nix::errno::Errno::EINTR) => continue,
            Err(errno) => return Err(io_error(errno)),
        }
    }
}

/// Writes all of `bytes` to `fd`, retrying on EINTR and short writes.
pub(crate) fn write_all(fd: BorrowedFd<'_>, mut bytes: &[u8]) -> io::Result<()> {
    while !bytes.is_empty() {
        match nix::unistd::write(fd, bytes) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(written) => bytes = &bytes[written..],
            Err(nix::errno::Errno::EINTR) => continue,
            Err(errno) => return Err(io_error(errno)),
        }
    }
    Ok(())
}

/// Closes descriptor number `fd` if something is open there, without any owner: for a copy a
/// forked child inherited inside state it must not touch (its owner is leaked, never dropped).
pub(crate) fn close_leaked(fd: RawFd) {
    // SAFETY: the caller's owner of `fd` is leaked and never closes or uses it again, so no
    // `OwnedFd` or `File` in this process refers to this number after the call; closing a
    // number with nothing open fails with EBADF, which is harmless.
    unsafe { nix::libc::close(fd) };
}

/// The inode number of the open file behind `fd`: the same in every process that holds it, so
/// it names a shared object (a queue's memfd) across processes.
pub(crate) fn inode(fd: BorrowedFd<'_>) -> io::Result<u64> {
    Ok(nix::sys::stat::fstat(fd).map_err(io_error)?.st_ino)
}

/// The width in columns of the terminal `fd` is, or `None` if it is no terminal (or says it
/// has no width), as `TIOCGWINSZ` tells.
pub(crate) fn terminal_columns(fd: BorrowedFd<'_>) -> Option<u16> {
    let mut size = nix::libc::winsize {
        ws_row: 0,
        ws_col: 0,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: `fd` is open for the borrow's life, and `TIOCGWINSZ` writes one `winsize`
    // into the valid, writable `size`, whatever the descriptor is: on anything but a
    // terminal the call fails (`ENOTTY`) and writes nothing.
    let result = unsafe {
        nix::libc::ioctl(
            fd.as_raw_fd(),
            nix::libc::TIOCGWINSZ,
            std::ptr::from_mut(&mut size),
        )
    };
    (result == 0 && size.ws_col > 0).then_some(size.ws_col)
}
