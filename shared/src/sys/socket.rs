//! Unix stream sockets: the settings a [`Listener`](crate::Listener) and its connections need
//! beyond what `interprocess` sets.

use std::io;
use std::os::fd::BorrowedFd;

use nix::sys::socket::{Backlog, listen};

use super::io_error;

/// Sets how many connections may wait for `accept` on the listening socket `fd` (calling
/// `listen` again on a listening socket changes only its backlog). The kernel caps it at
/// `net.core.somaxconn`.
pub(crate) fn set_backlog(fd: BorrowedFd<'_>, backlog: u32) -> io::Result<()> {
    let backlog = i32::try_from(backlog).unwrap_or(i32::MAX);
    let backlog = Backlog::new(backlog).unwrap_or(Backlog::MAXCONN);
    listen(&fd, backlog).map_err(io_error)
}
