//! Why a send or a receive failed.

use std::fmt;
use std::io;

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
            SendError::Os(_) => f.write_str("cannot send"),
        }
    }
}

impl std::error::Error for SendError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            SendError::Os(error) => Some(error),
            _ => None,
        }
    }
}

crate::debug_as_display!(SendError);

/// Why a `recv` or `poll` failed.
///
/// As every error of the crate, its `Display` is its own message, its cause comes from
/// `source()`, and `Debug` (what a `main` returning it prints) shows both:
///
/// ```
/// use std::error::Error;
/// use shared::RecvError;
///
/// let error = RecvError::Os(std::io::Error::from_raw_os_error(9));
/// assert_eq!(error.to_string(), "cannot receive");
/// let cause = error.source().expect("the system's error");
/// assert_eq!(cause.to_string(), "Bad file descriptor (os error 9)");
/// assert_eq!(format!("{error:?}"), "cannot receive: Bad file descriptor (os error 9)");
/// ```
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
            RecvError::Os(_) => f.write_str("cannot receive"),
        }
    }
}

impl std::error::Error for RecvError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            RecvError::Os(error) => Some(error),
            _ => None,
        }
    }
}

crate::debug_as_display!(RecvError);

impl From<io::Error> for RecvError {
    fn from(error: io::Error) -> Self {
        RecvError::Os(error)
    }
}
