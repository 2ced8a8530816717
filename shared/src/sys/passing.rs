//! Messages with descriptors attached (`SCM_RIGHTS`) over connected `SOCK_SEQPACKET` Unix
//! sockets: the forkserver's channels. A sequenced-packet socket keeps message boundaries, so
//! a message and the descriptors sent with it arrive together, whole, or not at all.

use std::io::{self, IoSlice, IoSliceMut};
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

use nix::sys::socket::{
    AddressFamily, ControlMessage, ControlMessageOwned, MsgFlags, SockFlag, SockType, recvmsg,
    sendmsg, socketpair,
};

use super::io_error;

/// The most descriptors one message may carry. Linux's own limit per message (`SCM_MAX_FD`)
/// is 253.
pub(crate) const MAX_FDS: usize = 253;

/// A connected pair of sequenced-packet Unix sockets, close-on-exec. Nothing names them: only a
/// process that holds one end (or inherited it) can talk to the other.
pub(crate) fn packet_socket_pair() -> io::Result<(OwnedFd, OwnedFd)> {
    socketpair(
        AddressFamily::Unix,
        SockType::SeqPacket,
        None,
        SockFlag::SOCK_CLOEXEC,
    )
    .map_err(io_error)
}

/// Sends `bytes` (not empty: an empty message reads as the end of the connection) with copies
/// of `fds` attached. A closed peer is an error (`EPIPE`), never a SIGPIPE.
pub(crate) fn send(socket: BorrowedFd<'_>, bytes: &[u8], fds: &[RawFd]) -> io::Result<()> {
    send_with(socket, bytes, fds, MsgFlags::MSG_NOSIGNAL)
}

/// As [`send`], but a full socket is an error (`WouldBlock`) rather than a wait: for a server
/// that must not be stalled by a peer that never reads.
pub(crate) fn send_now(socket: BorrowedFd<'_>, bytes: &[u8], fds: &[RawFd]) -> io::Result<()> {
    send_with(
        socket,
        bytes,
        fds,
        MsgFlags::MSG_NOSIGNAL | MsgFlags::MSG_DONTWAIT,
    )
}

fn send_with(
    socket: BorrowedFd<'_>,
    bytes: &[u8],
    fds: &[RawFd],
    flags: MsgFlags,
) -> io::Result<()> {
    debug_assert!(!bytes.is_empty() && fds.len() <= MAX_FDS);
    let iov = [IoSlice::new(bytes)];
    let rights = [ControlMessage::ScmRights(fds)];
    let control: &[ControlMessage<'_>] = if fds.is_empty() { &[] } else { &rights };
    loop {
        match sendmsg::<()>(socket.as_raw_fd(), &iov, control, flags, None) {
            Ok(sent) if sent == bytes.len() => return Ok(()),
            Ok(_) => return Err(io::Error::other("a message was sent in part")),
            Err(nix::errno::Errno::EINTR) => continue,
            Err(errno) => return Err(io_error(errno)),
        }
    }
}

/// One message as it arrived.
#[derive(Debug)]
pub(crate) struct Received {
    /// The message's bytes, up to the buffer given to [`receive`].
    pub(crate) bytes: Vec<u8>,
    /// The descriptors attached, now owned by this process (close-on-exec).
    pub(crate) fds: Vec<OwnedFd>,
    /// The message or its descriptors did not fit: the bytes were cut, or the kernel closed
    /// descriptors beyond [`MAX_FDS`]. A truncated message must be refused.
    pub(crate) truncated: bool,
}

/// Receives one message of at most `max_bytes` bytes, waiting for one if `wait`. `Ok(None)` is
/// the end of the connection: every peer closed its end.
///
/// # Errors
/// The system's, including `WouldBlock` when `wait` is false and no message is there yet.
pub(crate) fn receive(
    socket: BorrowedFd<'_>,
    max_bytes: usize,
    wait: bool,
) -> io::Result<Option<Received>> {
    let mut bytes = vec![0; max_bytes];
    let mut control = nix::cmsg_space!([RawFd; MAX_FDS]);
    let mut flags = MsgFlags::MSG_CMSG_CLOEXEC;
    if !wait {
        flags |= MsgFlags::MSG_DONTWAIT;
    }
    let (len, message_flags, raw_fds) = loop {
        let mut iov = [IoSliceMut::new(&mut bytes)];
        match recvmsg::<()>(socket.as_raw_fd(), &mut iov, Some(&mut control), flags) {
            Ok(message) => {
                let mut raw_fds = Vec::new();
                // The iterator yields what the kernel wrote; a malformed control buffer from
                // the kernel is not a case to handle.
                for cmsg in message.cmsgs().map_err(io_error)? {
                    if let ControlMessageOwned::ScmRights(fds) = cmsg {
                        raw_fds.extend(fds);
                    }
                }
                break (message.bytes, message.flags, raw_fds);
            }
            Err(nix::errno::Errno::EINTR) => continue,
            Err(errno) => return Err(io_error(errno)),
        }
    };
    let fds: Vec<OwnedFd> = raw_fds
        .into_iter()
        // SAFETY: the kernel has just installed each of these descriptors in this process's
        // table for this message (`SCM_RIGHTS`); nothing else in the process knows their
        // numbers yet, so each gets exactly one owner, here.
        .map(|fd| unsafe { OwnedFd::from_raw_fd(fd) })
        .collect();
    if len == 0 && fds.is_empty() {
        return Ok(None);
    }
    bytes.truncate(len);
    let truncated = message_flags.intersects(MsgFlags::MSG_TRUNC | MsgFlags::MSG_CTRUNC);
    Ok(Some(Received {
        bytes,
        fds,
        truncated,
    }))
}

/// Waits until at least one of `fds` is readable, or at its end (or in error); says which.
pub(crate) fn wait_for_any(fds: &[BorrowedFd<'_>]) -> io::Result<Vec<bool>> {
    use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
    let mut polled: Vec<PollFd<'_>> = fds
        .iter()
        .map(|&fd| PollFd::new(fd, PollFlags::POLLIN))
        .collect();
    loop {
        match poll(&mut polled, PollTimeout::NONE) {
            Ok(_) => break,
            Err(nix::errno::Errno::EINTR) => continue,
            Err(errno) => return Err(io_error(errno)),
        }
    }
    Ok(polled
        .iter()
        .map(|fd| fd.revents().is_some_and(|events| !events.is_empty()))
        .collect())
}

/// Shuts down the sending side of `socket`: the peer reads the end after what was sent.
pub(crate) fn shut_down_sending(socket: BorrowedFd<'_>) -> io::Result<()> {
    nix::sys::socket::shutdown(socket.as_raw_fd(), nix::sys::socket::Shutdown::Write)
        .map_err(io_error)
}

/// The error number of `error` (`EIO` for an error without one), to send to another process.
pub(crate) fn errno_of(error: &io::Error) -> i32 {
    error.raw_os_error().unwrap_or(nix::libc::EIO)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsFd;

    #[test]
    fn a_message_and_its_descriptors_arrive_together() {
        let (a, b) = packet_socket_pair().unwrap();
        let (r, _w) = super::super::fd::pipe().unwrap();
        send(a.as_fd(), b"hello", &[r.as_raw_fd()]).unwrap();
        let got = receive(b.as_fd(), 64, true).unwrap().unwrap();
        assert_eq!(got.bytes, b"hello");
        assert_eq!(got.fds.len(), 1);
        assert!(!got.truncated);
        assert_ne!(got.fds[0].as_raw_fd(), r.as_raw_fd(), "a new descriptor");
    }

    #[test]
    fn a_long_message_is_marked_truncated_and_a_closed_peer_is_the_end() {
        let (a, b) = packet_socket_pair().unwrap();
        send(a.as_fd(), &[7; 100], &[]).unwrap();
        let got = receive(b.as_fd(), 10, true).unwrap().unwrap();
        assert!(got.truncated);
        let nothing = receive(b.as_fd(), 10, false).unwrap_err();
        assert_eq!(nothing.kind(), io::ErrorKind::WouldBlock);
        drop(a);
        assert!(receive(b.as_fd(), 10, true).unwrap().is_none());
        assert!(send(b.as_fd(), b"x", &[]).is_err(), "EPIPE, not SIGPIPE");
    }
}
