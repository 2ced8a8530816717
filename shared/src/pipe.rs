//! [`Pipe`] and [`Connection`]: two ends of a channel between processes, with the API of
//! Python's `multiprocessing.Pipe` and `multiprocessing.connection.Connection`.
//!
//! A duplex pipe is a Unix stream socket pair; a one-way pipe is a pipe(2). Messages are
//! framed as a 4-byte little-endian length and the bytes; `send`/`recv` carry MessagePack.
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

use std::cell::Cell;
use std::fmt;
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::time::Duration;

use serde::de::{DeserializeOwned, Error as _};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::handoff::{Exported, Inherited};
use crate::sys;

/// The largest message `recv` accepts by default (1 GiB). A longer length header is refused
/// before anything is allocated; see [`Connection::set_max_message_size`].
pub const DEFAULT_MAX_MESSAGE_SIZE: usize = 1 << 30;

const LENGTH_HEADER: usize = 4;

/// Creates a pair of connected [`Connection`]s. Python: `multiprocessing.Pipe`.
#[derive(Debug)]
pub enum Pipe {}

impl Pipe {
    /// A duplex pipe: both ends send and receive. Python: `Pipe()`.
    ///
    /// ```
    /// let (ponta_principal, ponta_filho) = shared::Pipe::new()?;
    /// ponta_principal.send(&"olá")?;
    /// assert_eq!(ponta_filho.recv::<String>()?, "olá");
    /// ponta_filho.send(&42)?;
    /// assert_eq!(ponta_principal.recv::<i32>()?, 42);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// The system refused to create the socket pair.
    #[allow(
        clippy::new_ret_no_self,
        reason = "Python's Pipe() returns the two ends"
    )]
    pub fn new() -> io::Result<(Connection, Connection)> {
        Pipe::with_duplex(true)
    }

    /// With `duplex = false`, a one-way pipe: the first end only receives, the second only
    /// sends. Python: `Pipe(duplex=False)`.
    ///
    /// ```
    /// let (leitura, escrita) = shared::Pipe::with_duplex(false)?;
    /// escrita.send(&[1, 2, 3])?;
    /// assert_eq!(leitura.recv::<Vec<u8>>()?, [1, 2, 3]);
    /// assert!(leitura.send(&0).is_err()); // wrong direction
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// The system refused to create the pipe.
    pub fn with_duplex(duplex: bool) -> io::Result<(Connection, Connection)> {
        if duplex {
            let (a, b) = sys::fd::stream_socket_pair()?;
            Ok((
                Connection::new(a, true, true),
                Connection::new(b, true, true),
            ))
        } else {
            let (read, write) = sys::fd::pipe()?;
            Ok((
                Connection::new(read, true, false),
                Connection::new(write, false, true),
            ))
        }
    }
}

/// One end of a [`Pipe`]. Python: `multiprocessing.connection.Connection`.
///
/// Pass it in a [`Process`](crate::Process)'s arguments to give it to a child (fork or
/// spawn). It is `Send` but not `Sync`: one thread at a time uses an end, so two readers can
/// never interleave halves of messages.
pub struct Connection {
    file: File,
    readable: bool,
    writable: bool,
    max_message_size: usize,
    /// Set after an oversized message: the rest of the stream is no longer framed.
    unreadable: Cell<bool>,
}

impl Connection {
    fn new(fd: OwnedFd, readable: bool, writable: bool) -> Connection {
        Connection {
            file: File::from(fd),
            readable,
            writable,
            max_message_size: DEFAULT_MAX_MESSAGE_SIZE,
            unreadable: Cell::new(false),
        }
    }

    /// Sends `item`, encoded as MessagePack. Python: `send(obj)`.
    ///
    /// # Errors
    /// [`SendError::WrongDirection`] on a receive-only end; [`SendError::Encode`];
    /// [`SendError::TooLarge`] past 4 GiB; [`SendError::Closed`] when no process holds the
    /// other end any more; [`SendError::Os`].
    pub fn send<T: Serialize + ?Sized>(&self, item: &T) -> Result<(), SendError> {
        let _send = crate::timeline::span(crate::timeline::Kind::Send, || (0, 0));
        self.check_writable()?;
        let mut frame = vec![0; LENGTH_HEADER];
        rmp_serde::encode::write(&mut frame, item).map_err(|e| SendError::Encode {
            item_type: std::any::type_name::<T>(),
            error: e.to_string(),
        })?;
        let len = length_header(frame.len() - LENGTH_HEADER)?;
        frame[..LENGTH_HEADER].copy_from_slice(&len);
        self.write_all(&frame)
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
        self.check_writable()?;
        let header = length_header(bytes.len())?;
        if bytes.len() <= 64 * 1024 {
            // One write for small messages: a syscall costs more than the copy.
            let mut frame = Vec::with_capacity(LENGTH_HEADER + bytes.len());
            frame.extend_from_slice(&header);
            frame.extend_from_slice(bytes);
            self.write_all(&frame)
        } else {
            self.write_all(&header)?;
            self.write_all(bytes)
        }
    }

    /// Receives one message and decodes it as `T`, waiting until one arrives. Python: `recv()`.
    ///
    /// # Errors
    /// [`RecvError::Closed`] (Python's `EOFError`) when nothing is left and no process holds
    /// the other end; [`RecvError::Decode`] when the message is not a `T` (the message is
    /// consumed; the connection stays usable); and those of [`recv_bytes`](Self::recv_bytes).
    pub fn recv<T: DeserializeOwned>(&self) -> Result<T, RecvError> {
        let bytes = self.recv_bytes()?;
        crate::wire::decode(&bytes).map_err(|e| RecvError::Decode {
            expected: std::any::type_name::<T>(),
            error: e.to_string(),
        })
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
        let _recv = crate::timeline::span(crate::timeline::Kind::Recv, || (0, 0));
        self.check_readable()?;
        let mut header = [0; LENGTH_HEADER];
        match self.read_full(&mut header)? {
            0 => return Err(RecvError::Closed),
            LENGTH_HEADER => {}
            got => return Err(self.truncated(LENGTH_HEADER, got)),
        }
        let len = u32::from_le_bytes(header) as usize;
        if len > self.max_message_size {
            self.unreadable.set(true);
            return Err(RecvError::TooLarge {
                len,
                max: self.max_message_size,
            });
        }
        let mut message = vec![0; len];
        match self.read_full(&mut message)? {
            got if got == len => Ok(message),
            got => Err(self.truncated(len, got)),
        }
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
    /// [`RecvError::WrongDirection`] on a send-only end; [`RecvError::Os`].
    pub fn poll(&self, timeout: Option<Duration>) -> Result<bool, RecvError> {
        self.check_readable()?;
        Ok(sys::fd::wait_readable(self.file.as_fd(), timeout)?)
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
        self.readable
    }

    /// Whether this end can send. Python: `writable`.
    pub fn writable(&self) -> bool {
        self.writable
    }

    fn check_writable(&self) -> Result<(), SendError> {
        if self.writable {
            Ok(())
        } else {
            Err(SendError::WrongDirection)
        }
    }

    fn check_readable(&self) -> Result<(), RecvError> {
        if !self.readable {
            Err(RecvError::WrongDirection)
        } else if self.unreadable.get() {
            Err(RecvError::Unreadable)
        } else {
            Ok(())
        }
    }

    fn write_all(&self, bytes: &[u8]) -> Result<(), SendError> {
        (&self.file)
            .write_all(bytes)
            .map_err(|error| match error.kind() {
                io::ErrorKind::BrokenPipe | io::ErrorKind::ConnectionReset => SendError::Closed,
                _ => SendError::Os(error),
            })
    }

    /// Reads until `buf` is full or end of file; returns the bytes read.
    fn read_full(&self, buf: &mut [u8]) -> Result<usize, RecvError> {
        let mut filled = 0;
        while filled < buf.len() {
            match (&self.file).read(&mut buf[filled..]) {
                Ok(0) => break,
                Ok(n) => filled += n,
                Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
                Err(error) if error.kind() == io::ErrorKind::ConnectionReset => break,
                Err(error) => return Err(RecvError::Os(error)),
            }
        }
        Ok(filled)
    }

    fn truncated(&self, expected: usize, got: usize) -> RecvError {
        self.unreadable.set(true);
        RecvError::Truncated { expected, got }
    }
}

fn length_header(len: usize) -> Result<[u8; LENGTH_HEADER], SendError> {
    u32::try_from(len)
        .map(u32::to_le_bytes)
        .map_err(|_| SendError::TooLarge { len })
}

impl fmt::Debug for Connection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Connection")
            .field("fd", &sys::fd::raw(&self.file))
            .field("readable", &self.readable)
            .field("writable", &self.writable)
            .finish()
    }
}

#[derive(Serialize)]
struct WireOut<'a> {
    fd: Exported<'a>,
    readable: bool,
    writable: bool,
    max_message_size: usize,
}

#[derive(Deserialize)]
struct WireIn {
    fd: Inherited,
    readable: bool,
    writable: bool,
    max_message_size: usize,
}

/// Under spawn, an end crosses as its descriptor; see [`Process::new`](crate::Process::new).
impl Serialize for Connection {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        WireOut {
            fd: Exported {
                fd: self.file.as_fd(),
                what: "Connection",
            },
            readable: self.readable,
            writable: self.writable,
            max_message_size: self.max_message_size,
        }
        .serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Connection {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let wire = WireIn::deserialize(deserializer)?;
        // The descriptor came from another process: check it is what such an end is made of
        // (see `Pipe::with_duplex`) before anything reads or writes it.
        let expected = match (wire.readable, wire.writable) {
            (true, true) => sys::fd::Kind::Socket,
            (true, false) | (false, true) => sys::fd::Kind::Fifo,
            (false, false) => {
                return Err(D::Error::custom(
                    "a Connection end neither reads nor writes",
                ));
            }
        };
        let kind = sys::fd::kind(wire.fd.0.as_fd()).map_err(D::Error::custom)?;
        if kind != expected {
            return Err(D::Error::custom(format_args!(
                "a Connection end must be a {expected:?}, and this descriptor is a {kind:?}"
            )));
        }
        let mut connection = Connection::new(wire.fd.0, wire.readable, wire.writable);
        connection.max_message_size = wire.max_message_size;
        Ok(connection)
    }
}

/// Why a `send` failed.
#[non_exhaustive]
pub enum SendError {
    /// This end only receives (`Pipe::with_duplex(false)`). Python: `OSError`.
    WrongDirection,
    /// No process holds the other end any more. Python: `BrokenPipeError`.
    Closed,
    /// The item could not be encoded as MessagePack.
    Encode {
        /// The type sent.
        item_type: &'static str,
        /// What the encoder said.
        error: String,
    },
    /// The message is longer than a frame can say (4 GiB).
    TooLarge {
        /// Its length.
        len: usize,
    },
    /// The system refused.
    Os(io::Error),
}

impl fmt::Display for SendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SendError::WrongDirection => f.write_str("connection is read-only"),
            SendError::Closed => f.write_str("the other end of the pipe is closed"),
            SendError::Encode { item_type, error } => {
                write!(f, "cannot encode the item of type `{item_type}`: {error}")
            }
            SendError::TooLarge { len } => {
                write!(
                    f,
                    "message of {len} bytes is too large: a frame holds at most 4 GiB"
                )
            }
            SendError::Os(error) => write!(f, "cannot send: {error}"),
        }
    }
}

impl std::error::Error for SendError {}

crate::debug_as_display!(SendError);

/// Why a `recv` or `poll` failed.
#[non_exhaustive]
pub enum RecvError {
    /// Nothing is left and no process holds the other end. Python: `EOFError`.
    Closed,
    /// The other end closed in the middle of a message: its process died while sending.
    Truncated {
        /// The bytes the frame announced.
        expected: usize,
        /// The bytes that arrived.
        got: usize,
    },
    /// The message does not decode as the type asked for. It was consumed.
    Decode {
        /// The type asked for.
        expected: &'static str,
        /// What the decoder said.
        error: String,
    },
    /// The length header exceeds the limit; nothing was allocated.
    TooLarge {
        /// The length the header announced.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// An earlier oversized or truncated message left the stream unframed.
    Unreadable,
    /// This end only sends (`Pipe::with_duplex(false)`). Python: `OSError`.
    WrongDirection,
    /// The system refused.
    Os(io::Error),
}

impl RecvError {
    /// Whether the other end is closed (Python's `EOFError`).
    pub fn is_closed(&self) -> bool {
        matches!(self, RecvError::Closed)
    }
}

impl fmt::Display for RecvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RecvError::Closed => f.write_str("the other end of the pipe is closed (EOF)"),
            RecvError::Truncated { expected, got } => write!(
                f,
                "the other end closed in the middle of a message: got {got} of {expected} bytes"
            ),
            RecvError::Decode { expected, error } => {
                write!(f, "cannot decode the message as `{expected}`: {error}")
            }
            RecvError::TooLarge { len, max } => write!(
                f,
                "message of {len} bytes exceeds the limit of {max} bytes; \
                 the connection is no longer readable"
            ),
            RecvError::Unreadable => f.write_str(
                "connection is no longer readable after an oversized or truncated message",
            ),
            RecvError::WrongDirection => f.write_str("connection is write-only"),
            RecvError::Os(error) => write!(f, "cannot receive: {error}"),
        }
    }
}

impl std::error::Error for RecvError {}

crate::debug_as_display!(RecvError);

impl From<io::Error> for RecvError {
    fn from(error: io::Error) -> Self {
        RecvError::Os(error)
    }
}
