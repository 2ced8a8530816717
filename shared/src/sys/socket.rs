//! Unix stream sockets: the settings a [`Listener`](crate::Listener) and its connections need
//! beyond what `interprocess` sets.

use std::io;
use std::os::fd::BorrowedFd;
use std::time::Duration;

use nix::sys::socket::{Backlog, listen, setsockopt, sockopt};
use nix::sys::time::TimeVal;

use super::io_error;

/// Sets how many connections may wait for `accept` on the listening socket `fd` (calling
/// `listen` again on a listening socket changes only its backlog). The kernel caps it at
/// `net.core.somaxconn`.
pub(crate) fn set_backlog(fd: BorrowedFd<'_>, backlog: u32) -> io::Result<()> {
    let backlog = i32::try_from(backlog).unwrap_or(i32::MAX);
    let backlog = Backlog::new(backlog).unwrap_or(Backlog::MAXCONN);
    listen(&fd, backlog).map_err(io_error)
}

/// Makes a `read` of socket `fd` that waits longer than `timeout` fail with `EAGAIN`; `None`
/// waits forever again.
pub(crate) fn set_receive_timeout(fd: BorrowedFd<'_>, timeout: Option<Duration>) -> io::Result<()> {
    let timeout = timeout.map_or(TimeVal::new(0, 0), |t| {
        // A zero timeout means "forever" to the kernel: wait at least a microsecond.
        let t = t.max(Duration::from_micros(1));
        TimeVal::new(
            t.as_secs().try_into().unwrap_or(i64::MAX),
            t.subsec_micros().into(),
        )
    });
    setsockopt(&fd, sockopt::ReceiveTimeout, &timeout).map_err(io_error)
}
