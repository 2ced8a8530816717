//! A proxy's way to its object: the manager's address and key and the object's id (all a
//! proxy carries to another process), and a connection opened on first use, one per proxy
//! and process.

use std::cell::RefCell;
use std::fmt;
use std::io;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_bytes::ByteBuf;

use super::ManagerError;
use super::codec::{self, Answer};
use super::protocol::{Call, MANAGER, Reply, Request};
use super::references;
use crate::connection::{Address, Client, Connection, RecvError, SendError};

/// Where an object lives. Python: a proxy's `Token` (typeid, address, id) and the authkey
/// it is pickled with.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Token {
    pub(crate) address: String,
    pub(crate) authkey: ByteBuf,
    pub(crate) id: u64,
}

/// The largest request buffer a connection keeps between calls.
const KEEP_FRAME: usize = 64 * 1024;

/// A token and, once used, a connection to its server.
pub(crate) struct Link {
    pub(crate) token: Token,
    connection: RefCell<Option<Open>>,
    /// Whether this link is one of the proxies this process counts (see `references`): the
    /// manager's own link is not.
    counted: bool,
}

/// A connection, the process that opened it, and the buffer its requests are laid out in
/// (kept between calls).
struct Open {
    opener: Opener,
    connection: Connection,
    frame: Vec<u8>,
}

/// Which process this is, told apart from its forked children and parent without a system
/// call per proxy call (`getpid` is one, and a call costs a few microseconds): the fork epoch
/// ([`crate::sys::thread::fork_epoch`]), which a `pthread_atfork` handler moves on in every
/// child; the PID only if that handler could not be registered.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) struct Opener {
    forks: u64,
    pid: Option<u32>,
}

impl Opener {
    #[inline]
    pub(super) fn this_process() -> Opener {
        let counted = crate::sys::thread::count_forks();
        Opener {
            forks: crate::sys::thread::fork_epoch(),
            pid: (!counted).then(std::process::id),
        }
    }
}

impl Link {
    /// The manager's own link (object 0), which no reference counts.
    pub(crate) fn new(token: Token) -> Link {
        Link {
            token,
            connection: RefCell::new(None),
            counted: false,
        }
    }

    /// A proxy's link to the object `call` makes or finds on this manager; this process holds
    /// a reference to the object from now on, until its last proxy of it is dropped.
    pub(crate) fn made(&self, call: Call) -> Result<Link, ManagerError> {
        let id = references::made(&self.token, call)?;
        Ok(Link {
            token: Token {
                id,
                ..self.token.clone()
            },
            connection: RefCell::new(None),
            counted: true,
        })
    }

    /// Sends `call` to the object and returns the server's answer; a [`Reply::Failed`] is
    /// returned as its error.
    pub(crate) fn call(&self, call: Call) -> Result<Reply, ManagerError> {
        self.exchange(
            |frame, object| codec::write_request(object, &call, frame),
            |answer| Ok(answer.into_reply()),
        )
    }

    /// Sends the request `write` lays out (in this connection's buffer, for this object's
    /// id) and hands the answer to `read`, where it arrived (no copy); a [`Reply::Failed`]
    /// is returned as its error.
    pub(super) fn exchange<R>(
        &self,
        write: impl FnOnce(&mut Vec<u8>, u64) -> Result<(), ManagerError>,
        read: impl FnOnce(Answer<'_>) -> Result<R, ManagerError>,
    ) -> Result<R, ManagerError> {
        let mut slot = self.connection.borrow_mut();
        let opener = Opener::this_process();
        let open = match &mut *slot {
            Some(open) if open.opener == opener => open,
            // A connection inherited through fork is the parent's conversation: this process
            // opens its own (dropping the copy closes only this process's descriptor).
            slot => slot.insert(Open {
                opener,
                connection: connect(&self.token)?,
                frame: Vec::new(),
            }),
        };
        write(&mut open.frame, self.token.id)?;
        let answer = round_trip(&open.connection, &mut open.frame, |answer| match answer {
            Answer::Reply(Reply::Failed(failure)) => Err(failure.into()),
            answer => read(answer),
        });
        if matches!(answer, Err(ManagerError::ServerGone | ManagerError::Os(_))) {
            // The next call starts over with a new connection (and learns whether the
            // server is still there).
            *slot = None;
        }
        answer
    }
}

/// Connects to the manager `token` names, authenticates, and moves the conversation onto
/// two pipes (a pipe round trip costs about half of a Unix socket's; see
/// `Connection::move_to_pipes`).
pub(crate) fn connect(token: &Token) -> Result<Connection, ManagerError> {
    let socket = Client::connect(Address::parse(&token.address), Some(&token.authkey))
        .map_err(ManagerError::Connect)?;
    let mut ask = Vec::new();
    codec::write_request(MANAGER, &Call::Pipes, &mut ask)?;
    socket.send_bytes(&ask).map_err(send_error)?;
    socket.receive_pipes().map_err(|error| match error.kind() {
        io::ErrorKind::UnexpectedEof => ManagerError::ServerGone,
        // What a server that does not read this build's requests answers (see
        // `codec::PROTOCOL`): its refusal, not the pipes.
        io::ErrorKind::InvalidData => ManagerError::Decode(format!(
            "the manager's server did not hand over its pipes: a server of another build, \
             not of manager protocol {}?",
            codec::PROTOCOL
        )),
        _ => ManagerError::Os(error),
    })
}

fn send_error(error: SendError) -> ManagerError {
    match error {
        SendError::Closed => ManagerError::ServerGone,
        SendError::Os(error) => ManagerError::Os(error),
        other => ManagerError::Encode(other.to_string()),
    }
}

/// Sends `request` and returns the server's answer (a [`Reply::Failed`] too).
pub(super) fn exchange(connection: &Connection, request: &Request) -> Result<Reply, ManagerError> {
    let mut frame = Vec::new();
    codec::write_request(request.object, &request.call, &mut frame)?;
    round_trip(connection, &mut frame, |answer| Ok(answer.into_reply()))
}

/// Sends the request laid out in `frame` and hands the answer to `read`, where it arrived.
fn round_trip<R>(
    connection: &Connection,
    frame: &mut Vec<u8>,
    read: impl FnOnce(Answer<'_>) -> Result<R, ManagerError>,
) -> Result<R, ManagerError> {
    let sent = connection.send_bytes(frame).map_err(send_error);
    if frame.capacity() > KEEP_FRAME {
        // A buffer grown by a large request is given back.
        *frame = Vec::new();
    }
    sent?;
    let answer = connection.recv_with(|message| read(codec::read_reply(message)?));
    answer.map_err(|error| match error {
        RecvError::Closed | RecvError::Truncated { .. } => ManagerError::ServerGone,
        RecvError::Os(error) => ManagerError::Os(error),
        other => ManagerError::Decode(other.to_string()),
    })?
}

/// Encodes a value the way proxies send them.
pub(crate) fn encode<T: Serialize + ?Sized>(value: &T) -> Result<ByteBuf, ManagerError> {
    rmp_serde::to_vec(value)
        .map(ByteBuf::from)
        .map_err(|error| ManagerError::Encode(format!("{}: {error}", std::any::type_name::<T>())))
}

/// Decodes a value a proxy sent, as a `T`.
pub(crate) fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ManagerError> {
    crate::wire::decode(bytes).map_err(|error| {
        ManagerError::Decode(format!("not a {}: {error}", std::any::type_name::<T>()))
    })
}

/// The error for an answer of the wrong shape (a server of another version).
pub(crate) fn unexpected(reply: Reply) -> ManagerError {
    ManagerError::Decode(format!("unexpected answer {reply:?}"))
}

/// Another proxy of the same object in this process: counted here, no message.
impl Clone for Link {
    fn clone(&self) -> Link {
        if self.counted {
            references::cloned(&self.token);
        }
        Link {
            token: self.token.clone(),
            connection: RefCell::new(None),
            counted: self.counted,
        }
    }
}

/// The last proxy of an object in this process gives the process's reference up.
impl Drop for Link {
    fn drop(&mut self) {
        if self.counted {
            references::dropped(&self.token);
        }
    }
}

/// What crosses to another process: the token, and a ticket for the reference the receiver
/// adopts (see `references`).
#[derive(Serialize, Deserialize)]
struct Wire {
    token: Token,
    ticket: Option<u64>,
}

/// Only the token (and a ticket) crosses to another process; the connection stays with its
/// opener. Serializing lends a reference: a round trip to the server.
impl Serialize for Link {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let ticket = if self.counted {
            let ticket = references::lent(&self.token).map_err(serde::ser::Error::custom)?;
            Some(ticket)
        } else {
            None
        };
        let wire = Wire {
            token: self.token.clone(),
            ticket,
        };
        wire.serialize(serializer)
    }
}

/// Deserializing adopts the ticket's reference: a round trip to the server, which refuses a
/// ticket it does not know (its object is gone).
impl<'de> Deserialize<'de> for Link {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Link, D::Error> {
        let Wire { token, ticket } = Wire::deserialize(deserializer)?;
        if let Some(ticket) = ticket {
            references::adopted(&token, ticket).map_err(serde::de::Error::custom)?;
        }
        Ok(Link {
            token,
            connection: RefCell::new(None),
            counted: ticket.is_some(),
        })
    }
}

impl fmt::Debug for Link {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never the authkey.
        f.debug_struct("Proxy")
            .field("address", &self.token.address)
            .field("id", &self.token.id)
            .finish()
    }
}
