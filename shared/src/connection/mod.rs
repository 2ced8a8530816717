//! [`Pipe`] and [`Connection`]: two ends of a channel between processes, with the API of
//! Python's `multiprocessing.Pipe` and `multiprocessing.connection.Connection`.
//!
//! # What an end is made of
//!
//! A one-way pipe is one pipe(2). A duplex pipe is two, one per direction: each end holds the
//! read end of one and the write end of the other. A pipe is the cheapest channel Linux has
//! between two processes; a Unix socket pair, what CPython uses, costs noticeably more per
//! message (the bench's `pipe_raw` row is the limit a round trip over two pipes can reach).
//! A connection made by a [`Listener`] or a [`Client`] is one Unix stream socket that carries
//! both directions.
//!
//! Messages are framed as a 4-byte little-endian length and the bytes; `send`/`recv` carry
//! MessagePack. A message is written with one system call (`writev` of header and body), and
//! read ahead: each read takes whatever the pipe holds, up to [`READ_AHEAD`] bytes, so a small
//! message costs one `read` (CPython reads the header and the body apart). Bytes read ahead
//! belong to the end: they move with it into a child, and [`Connection::poll`] and [`wait`]
//! count them.
//!
//! # End of file, and the copies that hide it
//!
//! `recv` reports [`RecvError::Closed`] (Python's `EOFError`) once every copy of the other end
//! is closed, in every process. A forked child inherits copies of every descriptor its parent
//! had, and the parent keeps the ends it passed unless it closes them. Here an end passed in
//! a [`Process`](crate::Process)'s arguments is moved into the child and closed in the parent
//! by `start`, so the usual CPython pitfall (a parent waiting forever for EOF on an end whose
//! twin it still holds) does not arise for passed ends. Ends kept in the parent's variables
//! are still inherited by a forked child: drop what a child must not hold before `start`.

mod auth;
mod error;
mod handoff;
mod incoming;
mod listener;
mod pipe;
mod wait;

use std::cell::{Cell, RefCell};
use std::fmt;
use std::fs::File;
use std::io::{self, IoSlice, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;

pub use auth::{AuthenticationError, HANDSHAKE_TIMEOUT, MAX_HANDSHAKE_MESSAGE};
pub use error::{RecvError, SendError};
pub use listener::{Address, Client, ConnectError, Listener, MAX_HANDSHAKES};
pub use pipe::Pipe;
pub(crate) use wait::sentinel;
pub use wait::{Sentinel, Waitable, wait};

use crate::sys;
use incoming::{Frame, Incoming, Message};

/// The largest message `recv` accepts by default (1 GiB). A longer length header is refused
/// before anything is allocated; see [`Connection::set_max_message_size`].
pub const DEFAULT_MAX_MESSAGE_SIZE: usize = 1 << 30;

/// How many bytes one read may take ahead of the message asked for: a pipe's default
/// capacity, so that one read can empty a full pipe.
pub const READ_AHEAD: usize = 64 * 1024;

const LENGTH_HEADER: usize = 4;

/// Messages up to this size are copied behind their header and written with one `write`;
/// larger ones are written from where they are with one `writev`.
const SMALL_MESSAGE: usize = 512;

/// The descriptors an end reads and writes through.
enum Channel {
    /// A Unix stream socket, both directions on one descriptor (a [`Listener`]'s or a
    /// [`Client`]'s connection).
    Socket(File),
    /// pipe(2) ends: the read end of one pipe, the write end of another, or one of them alone.
    Pipes {
        read: Option<File>,
        write: Option<File>,
    },
}

impl Channel {
    fn reader(&self) -> Option<&File> {
        match self {
            Channel::Socket(socket) => Some(socket),
            Channel::Pipes { read, .. } => read.as_ref(),
        }
    }

    fn writer(&self) -> Option<&File> {
        match self {
            Channel::Socket(socket) => Some(socket),
            Channel::Pipes { write, .. } => write.as_ref(),
        }
    }
}

/// One end of a [`Pipe`], or a connection made by a [`Listener`] or a [`Client`]. Python:
/// `multiprocessing.connection.Connection`.
///
/// Pass it in a [`Process`](crate::Process)'s arguments to give it to a child (fork or
/// spawn). It is `Send` but not `Sync`: one thread at a time uses an end, so two readers can
/// never interleave halves of messages.
pub struct Connection {
    channel: Channel,
    max_message_size: usize,
    /// Set after an oversized or truncated message: the rest of the stream is no longer framed.
    unreadable: Cell<bool>,
    /// Bytes read but not yet returned: the start of the next messages.
    incoming: RefCell<Incoming>,
    /// The buffer `send` encodes into, kept between sends.
    outgoing: Cell<Vec<u8>>,
}

impl Connection {
    fn new(channel: Channel) -> Connection {
        Connection {
            channel,
            max_message_size: DEFAULT_MAX_MESSAGE_SIZE,
            unreadable: Cell::new(false),
            incoming: RefCell::new(Incoming::default()),
            outgoing: Cell::new(Vec::new()),
        }
    }

    /// Both directions over one Unix stream socket.
    pub(crate) fn from_socket(socket: OwnedFd) -> Connection {
        Connection::new(Channel::Socket(File::from(socket)))
    }

    /// Over pipe ends: `read` to receive, `write` to send.
    fn from_pipes(read: Option<OwnedFd>, write: Option<OwnedFd>) -> Connection {
        Connection::new(Channel::Pipes {
            read: read.map(File::from),
            write: write.map(File::from),
        })
    }

    /// Sends `item`, encoded as MessagePack. Python: `send(obj)`.
    ///
    /// ```
    /// let (a, b) = shared::Pipe::new()?;
    /// a.send(&(1, "um"))?;
    /// assert_eq!(b.recv::<(u8, String)>()?, (1, "um".to_owned()));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// [`SendError::WrongDirection`] on a receive-only end; [`SendError::Encode`];
    /// [`SendError::TooLarge`] past 4 GiB; [`SendError::Closed`] when no process holds the
    /// other end any more; [`SendError::Os`].
    pub fn send<T: Serialize + ?Sized>(&self, item: &T) -> Result<(), SendError> {
        let _send = crate::timeline::span(crate::timeline::Kind::Send, || (0, 0));
        let writer = self.writer()?;
        let mut frame = self.outgoing.take();
        frame.clear();
        frame.extend_from_slice(&[0; LENGTH_HEADER]);
        let sent = encode_into(&mut frame, item).and_then(|()| write_all(writer, &frame));
        if frame.capacity() <= READ_AHEAD {
            // Kept for the next send; a buffer grown by a large message is given back.
            self.outgoing.replace(frame);
        }
        sent
    }

    /// Sends `bytes` as one message, without encoding. Python: `send_bytes(buf)`.
    ///
    /// ```
    /// let (a, b) = shared::Pipe::new()?;
    /// a.send_bytes(b"cru")?;
    /// assert_eq!(b.recv_bytes()?, b"cru");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// As [`send`](Self::send), except encoding.
    pub fn send_bytes(&self, bytes: &[u8]) -> Result<(), SendError> {
        let _send = crate::timeline::span(crate::timeline::Kind::Send, || (0, 0));
        let mut writer = self.writer()?;
        let header = length_header(bytes.len())?;
        if bytes.len() <= SMALL_MESSAGE {
            // One `write` of a copy: for a few bytes, cheaper than `writev` of two pieces.
            let mut frame = [0; LENGTH_HEADER + SMALL_MESSAGE];
            frame[..LENGTH_HEADER].copy_from_slice(&header);
            frame[LENGTH_HEADER..][..bytes.len()].copy_from_slice(bytes);
            return write_all(writer, &frame[..LENGTH_HEADER + bytes.len()]);
        }
        // One system call for header and body, without copying the body.
        let written = loop {
            match writer.write_vectored(&[IoSlice::new(&header), IoSlice::new(bytes)]) {
                Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
                result => break result.map_err(send_error)?,
            }
        };
        // A short write (a message larger than the pipe's room): finish it piece by piece.
        if written < LENGTH_HEADER {
            write_all(writer, &header[written..])?;
            write_all(writer, bytes)
        } else {
            write_all(writer, &bytes[written - LENGTH_HEADER..])
        }
    }

    /// Receives one message and decodes it as `T`, waiting until one arrives. Python: `recv()`.
    ///
    /// # Errors
    /// [`RecvError::Closed`] (Python's `EOFError`) when nothing is left and no process holds
    /// the other end; [`RecvError::Decode`] when the message is not a `T` (the message is
    /// consumed; the connection stays usable); and those of [`recv_bytes`](Self::recv_bytes).
    pub fn recv<T: DeserializeOwned>(&self) -> Result<T, RecvError> {
        let decode = |bytes: &[u8]| {
            crate::wire::decode(bytes).map_err(|e| RecvError::Decode {
                expected: std::any::type_name::<T>(),
                error: e.to_string(),
            })
        };
        match self.receive()? {
            Frame::Buffered(message) => decode(message.bytes()),
            Frame::Owned(message) => decode(&message),
        }
    }

    /// Receives one message's bytes, waiting until one arrives. Python: `recv_bytes()`.
    ///
    /// # Errors
    /// [`RecvError::Closed`]; [`RecvError::Truncated`] when the other end closed in the middle
    /// of a message (its process died while sending); [`RecvError::TooLarge`] when the length
    /// header exceeds the limit (nothing is allocated, and the connection is no longer
    /// readable, as in Python); [`RecvError::WrongDirection`] on a send-only end;
    /// [`RecvError::Os`].
    pub fn recv_bytes(&self) -> Result<Vec<u8>, RecvError> {
        Ok(match self.receive()? {
            Frame::Buffered(message) => message.bytes().to_vec(),
            Frame::Owned(message) => message,
        })
    }

    /// Receives one message and hands its bytes to `read` where they are (in the read-ahead
    /// buffer, for a message that fits there), without copying them out: a manager's server
    /// and proxies read each request and reply this way. `read` runs while the buffer is
    /// borrowed: it must not use this connection.
    ///
    /// # Errors
    /// Those of [`recv_bytes`](Self::recv_bytes).
    pub(crate) fn recv_with<R>(&self, read: impl FnOnce(&[u8]) -> R) -> Result<R, RecvError> {
        Ok(match self.receive()? {
            Frame::Buffered(message) => read(message.bytes()),
            Frame::Owned(message) => read(&message),
        })
    }

    /// Whether a message (or end of file) can be read now, waiting up to `timeout`; `None`
    /// waits forever. Python: `poll(timeout)`.
    ///
    /// ```
    /// use std::time::Duration;
    /// let (a, b) = shared::Pipe::new()?;
    /// assert!(!b.poll(Some(Duration::ZERO))?);
    /// a.send(&())?;
    /// assert!(b.poll(None)?);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// [`RecvError::WrongDirection`] on a send-only end; [`RecvError::Unreadable`] after an
    /// oversized or truncated message; [`RecvError::Os`].
    pub fn poll(&self, timeout: Option<Duration>) -> Result<bool, RecvError> {
        let reader = self.reader()?;
        if self.has_read_ahead() {
            return Ok(true);
        }
        Ok(sys::fd::wait_readable(reader.as_fd(), timeout)?)
    }

    /// Closes this end. Python: `close()`. Dropping it does the same; this spells it out.
    pub fn close(self) {}

    /// Sets the largest message [`recv`](Self::recv) accepts (default
    /// [`DEFAULT_MAX_MESSAGE_SIZE`]).
    pub fn set_max_message_size(&mut self, max: usize) {
        self.max_message_size = max;
    }

    /// Whether this end can receive. Python: `readable`.
    pub fn readable(&self) -> bool {
        self.channel.reader().is_some()
    }

    /// Whether this end can send. Python: `writable`.
    pub fn writable(&self) -> bool {
        self.channel.writer().is_some()
    }

    /// Whether bytes already read ahead are waiting (a message, or the start of one).
    fn has_read_ahead(&self) -> bool {
        !self.incoming.borrow().is_empty()
    }

    fn writer(&self) -> Result<&File, SendError> {
        self.channel.writer().ok_or(SendError::WrongDirection)
    }

    fn reader(&self) -> Result<&File, RecvError> {
        match self.channel.reader() {
            None => Err(RecvError::WrongDirection),
            Some(_) if self.unreadable.get() => Err(RecvError::Unreadable),
            Some(reader) => Ok(reader),
        }
    }

    /// The next message: in the read-ahead buffer when it fits there, in its own allocation
    /// when it does not. Recorded in the timeline as one `recv`, for `recv` and `recv_bytes`.
    fn receive(&self) -> Result<Frame<'_>, RecvError> {
        let _recv = crate::timeline::span(crate::timeline::Kind::Recv, || (0, 0));
        let reader = self.reader()?;
        let mut incoming = self.incoming.borrow_mut();
        let got = incoming.fill(reader, LENGTH_HEADER)?;
        if got == 0 {
            return Err(RecvError::Closed);
        }
        if got < LENGTH_HEADER {
            return Err(self.truncated(LENGTH_HEADER, got));
        }
        let header = &incoming.bytes()[..LENGTH_HEADER];
        let len = u32::from_le_bytes([header[0], header[1], header[2], header[3]]) as usize;
        if len > self.max_message_size {
            self.unreadable.set(true);
            return Err(RecvError::TooLarge {
                len,
                max: self.max_message_size,
            });
        }
        incoming.consume(LENGTH_HEADER);
        if len <= READ_AHEAD {
            let got = incoming.fill(reader, len)?;
            if got < len {
                return Err(self.truncated(len, got));
            }
            return Ok(Frame::Buffered(Message { incoming, len }));
        }
        let mut message = vec![0; len];
        let mut filled = incoming.take_into(&mut message);
        drop(incoming);
        filled += incoming::read_full(reader, &mut message[filled..])?;
        if filled < len {
            return Err(self.truncated(len, filled));
        }
        Ok(Frame::Owned(message))
    }

    fn truncated(&self, expected: usize, got: usize) -> RecvError {
        self.unreadable.set(true);
        RecvError::Truncated { expected, got }
    }
}

/// Encodes `item` after the header `frame` starts with, and writes the header.
fn encode_into<T: Serialize + ?Sized>(frame: &mut Vec<u8>, item: &T) -> Result<(), SendError> {
    rmp_serde::encode::write(frame, item).map_err(|e| SendError::Encode {
        item_type: std::any::type_name::<T>(),
        error: e.to_string(),
    })?;
    let len = length_header(frame.len() - LENGTH_HEADER)?;
    frame[..LENGTH_HEADER].copy_from_slice(&len);
    Ok(())
}

fn length_header(len: usize) -> Result<[u8; LENGTH_HEADER], SendError> {
    u32::try_from(len)
        .map(u32::to_le_bytes)
        .map_err(|_| SendError::TooLarge { len })
}

fn write_all(mut writer: &File, bytes: &[u8]) -> Result<(), SendError> {
    writer.write_all(bytes).map_err(send_error)
}

fn send_error(error: io::Error) -> SendError {
    match error.kind() {
        io::ErrorKind::BrokenPipe | io::ErrorKind::ConnectionReset => SendError::Closed,
        _ => SendError::Os(error),
    }
}

impl fmt::Debug for Connection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut debug = f.debug_struct("Connection");
        match &self.channel {
            Channel::Socket(socket) => debug.field("socket", &sys::fd::raw(socket)),
            Channel::Pipes {
                read: Some(read),
                write: Some(write),
            } => debug.field("fds", &(sys::fd::raw(read), sys::fd::raw(write))),
            Channel::Pipes { read, write } => {
                let fd = read.as_ref().or(write.as_ref()).map(sys::fd::raw);
                debug.field("fd", &fd.unwrap_or(-1))
            }
        };
        debug
            .field("readable", &self.readable())
            .field("writable", &self.writable())
            .finish()
    }
}
