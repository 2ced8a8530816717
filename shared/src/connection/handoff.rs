//! How a [`Connection`] crosses to a spawned child: its descriptors by index (see
//! `crate::handoff`), its limit, its state, and the bytes it had read ahead.

use std::os::fd::{AsFd, OwnedFd};

use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::{Channel, Connection};
use crate::handoff::{Exported, Inherited};
use crate::sys::fd::{self, Access, Kind};

/// The descriptors of an end, on the wire: `F` is [`Exported`] going out, [`Inherited`]
/// coming in.
#[derive(Serialize, Deserialize)]
enum WireChannel<F> {
    Socket(F),
    Pipes { read: Option<F>, write: Option<F> },
}

#[derive(Serialize)]
struct WireOut<'a> {
    channel: WireChannel<Exported<'a>>,
    max_message_size: usize,
    unreadable: bool,
    #[serde(with = "serde_bytes")]
    read_ahead: &'a [u8],
}

#[derive(Deserialize)]
struct WireIn {
    channel: WireChannel<Inherited>,
    max_message_size: usize,
    unreadable: bool,
    #[serde(with = "serde_bytes")]
    read_ahead: Vec<u8>,
}

fn exported(file: &std::fs::File) -> Exported<'_> {
    Exported {
        fd: file.as_fd(),
        what: "Connection",
    }
}

/// Under spawn, an end crosses as its descriptors; see [`Process::new`](crate::Process::new).
impl Serialize for Connection {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let channel = match &self.channel {
            Channel::Socket(socket) => WireChannel::Socket(exported(socket)),
            Channel::Pipes { read, write } => WireChannel::Pipes {
                read: read.as_ref().map(exported),
                write: write.as_ref().map(exported),
            },
        };
        let incoming = self.incoming.borrow();
        WireOut {
            channel,
            max_message_size: self.max_message_size,
            unreadable: self.unreadable.get(),
            read_ahead: incoming.bytes(),
        }
        .serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Connection {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let wire = WireIn::deserialize(deserializer)?;
        // The descriptors came from another process: check that each is what such an end is
        // made of (see `Pipe::with_duplex`, `Listener::accept`) before anything uses it.
        let mut connection = match wire.channel {
            WireChannel::Socket(socket) => {
                expect(&socket.0, Kind::Socket, Access::ReadWrite).map_err(D::Error::custom)?;
                Connection::from_socket(socket.0)
            }
            WireChannel::Pipes { read, write } => {
                if read.is_none() && write.is_none() {
                    return Err(D::Error::custom(
                        "a Connection end neither reads nor writes",
                    ));
                }
                let read = checked_pipe(read, Access::Read).map_err(D::Error::custom)?;
                let write = checked_pipe(write, Access::Write).map_err(D::Error::custom)?;
                Connection::from_pipes(read, write)
            }
        };
        if wire.read_ahead.len() > super::READ_AHEAD {
            return Err(D::Error::custom(format_args!(
                "a Connection end cannot have read ahead more than {} bytes",
                super::READ_AHEAD
            )));
        }
        connection.max_message_size = wire.max_message_size;
        connection.unreadable.set(wire.unreadable);
        connection.incoming.get_mut().restore(&wire.read_ahead);
        Ok(connection)
    }
}

fn checked_pipe(end: Option<Inherited>, access: Access) -> Result<Option<OwnedFd>, String> {
    end.map(|end| expect(&end.0, Kind::Fifo, access).map(|()| end.0))
        .transpose()
}

/// Checks that `fd` is of `kind` and open for `access`.
fn expect(fd: &OwnedFd, kind: Kind, access: Access) -> Result<(), String> {
    let (actual_kind, actual_access) = fd::kind(fd.as_fd())
        .and_then(|k| Ok((k, fd::access(fd.as_fd())?)))
        .map_err(|error| error.to_string())?;
    if (actual_kind, actual_access) == (kind, access) {
        Ok(())
    } else {
        Err(format!(
            "a Connection end must be a {kind:?} open for {access:?}, and this descriptor is a \
             {actual_kind:?} open for {actual_access:?}"
        ))
    }
}
