//! A proxy's way to its object: the manager's address and key and the object's id (all a
//! proxy carries to another process), and a connection opened on first use, one per proxy
//! and process.

use std::cell::RefCell;
use std::fmt;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_bytes::ByteBuf;

use super::ManagerError;
use super::protocol::{Call, Reply, Request};
use crate::connection::{Address, Client, Connection, RecvError, SendError};

/// Where an object lives. Python: a proxy's `Token` (typeid, address, id) and the authkey
/// it is pickled with.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Token {
    pub(crate) address: String,
    pub(crate) authkey: ByteBuf,
    pub(crate) id: u64,
}

/// A token and, once used, a connection to its server.
pub(crate) struct Link {
    pub(crate) token: Token,
    connection: RefCell<Option<Open>>,
}

/// A connection and the process that opened it.
struct Open {
    pid: u32,
    connection: Connection,
}

impl Link {
    pub(crate) fn new(token: Token) -> Link {
        Link {
            token,
            connection: RefCell::new(None),
        }
    }

    /// The same object through a new connection, for a new proxy.
    pub(crate) fn to(&self, id: u64) -> Link {
        Link::new(Token {
            id,
            ..self.token.clone()
        })
    }

    /// Sends `call` to the object and returns the server's answer; a [`Reply::Failed`] is
    /// returned as its error.
    pub(crate) fn call(&self, call: Call) -> Result<Reply, ManagerError> {
        let mut slot = self.connection.borrow_mut();
        let pid = std::process::id();
        let open = match &mut *slot {
            Some(open) if open.pid == pid => open,
            // A connection inherited through fork is the parent's conversation: this process
            // opens its own (dropping the copy closes only this process's descriptor).
            slot => slot.insert(Open {
                pid,
                connection: connect(&self.token)?,
            }),
        };
        let request = Request {
            object: self.token.id,
            call,
        };
        let answer = exchange(&open.connection, &request);
        if matches!(answer, Err(ManagerError::ServerGone | ManagerError::Os(_))) {
            // The next call starts over with a new connection (and learns whether the
            // server is still there).
            *slot = None;
        }
        match answer? {
            Reply::Failed(failure) => Err(failure.into()),
            reply => Ok(reply),
        }
    }
}

/// Connects to the manager `token` names and authenticates.
pub(crate) fn connect(token: &Token) -> Result<Connection, ManagerError> {
    Client::connect(Address::parse(&token.address), Some(&token.authkey))
        .map_err(ManagerError::Connect)
}

fn exchange(connection: &Connection, request: &Request) -> Result<Reply, ManagerError> {
    connection.send(request).map_err(|error| match error {
        SendError::Closed => ManagerError::ServerGone,
        SendError::Os(error) => ManagerError::Os(error),
        other => ManagerError::Encode(other.to_string()),
    })?;
    connection.recv().map_err(|error| match error {
        RecvError::Closed | RecvError::Truncated { .. } => ManagerError::ServerGone,
        RecvError::Os(error) => ManagerError::Os(error),
        other => ManagerError::Decode(other.to_string()),
    })
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

impl Clone for Link {
    fn clone(&self) -> Link {
        Link::new(self.token.clone())
    }
}

/// Only the token crosses to another process; the connection stays with its opener.
impl Serialize for Link {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.token.serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Link {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Link, D::Error> {
        Token::deserialize(deserializer).map(Link::new)
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
