//! The authentication of a [`Listener`](super::Listener)'s connections: a challenge and a
//! response each way, with HMAC-SHA256 over a shared key, before any payload.
//!
//! The protocol has the shape of CPython's (`multiprocessing.connection.deliver_challenge`
//! and `answer_challenge`, 3.12 and later). The side that checks sends `#CHALLENGE#` and a
//! message of `{sha256}` and 40 random bytes; the other side answers `{sha256}` and the
//! HMAC-SHA256 of that message under its key; the checker compares in constant time and
//! answers `#WELCOME#` or `#FAILURE#`. The listener checks the client first, then the client
//! checks the listener, so each side learns that the other holds the key, and a wrong key
//! fails on both sides before either sends a payload.
//!
//! It is not wire-compatible with CPython: frames here have a little-endian length header
//! (CPython's is big-endian), only `sha256` is offered or accepted (CPython also takes `md5`
//! from older peers, and `sha384` and `sha3`), and what follows the handshake is MessagePack,
//! not pickle. A Rust program and a Python one cannot talk through it.
//!
//! Everything a peer sends during the handshake is bounded: at most
//! [`MAX_HANDSHAKE_MESSAGE`] bytes a message (the length header is refused before anything
//! is allocated), and [`HANDSHAKE_TIMEOUT`] for the whole exchange: one deadline, checked
//! before every read, so a peer that trickles its answer a byte at a time gains nothing.
//! The handshake reads each message exactly (header, then body), never ahead: what the peer
//! sends after it stays for the connection's own `recv`.

use std::fmt;
use std::io;
use std::os::fd::AsFd;
use std::time::{Duration, Instant};

use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::{Connection, RecvError, SendError};
use crate::sys;

const CHALLENGE: &[u8] = b"#CHALLENGE#";
const WELCOME: &[u8] = b"#WELCOME#";
const FAILURE: &[u8] = b"#FAILURE#";
const DIGEST: &[u8] = b"{sha256}";
/// Random bytes in a challenge, as CPython's `MESSAGE_LENGTH`.
const RANDOM_BYTES: usize = 40;
/// The length of an HMAC-SHA256.
const MAC_BYTES: usize = 32;

/// The largest message a peer may send during the handshake, as CPython's
/// `recv_bytes(256)`; every honest one is under 80 bytes.
pub const MAX_HANDSHAKE_MESSAGE: usize = 256;

/// How long the whole handshake may take, every message of it. A peer on the same machine
/// answers in microseconds; this bounds how long a silent, stalled or trickling peer can
/// hold a `connect`, or one of a [`Listener`](super::Listener)'s handshakes (which run side
/// by side, so it never holds another client's `accept`). (CPython waits for ever.)
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);

type HmacSha256 = Hmac<Sha256>;

/// Runs the listener's side: checks the client, then answers the client's challenge.
pub(super) fn as_listener(
    connection: &mut Connection,
    key: &[u8],
) -> Result<(), AuthenticationError> {
    let deadline = deadline();
    deliver_challenge(connection, key, deadline)?;
    answer_challenge(connection, key, deadline)
}

/// Runs the client's side: answers the listener's challenge, then checks the listener.
pub(super) fn as_client(
    connection: &mut Connection,
    key: &[u8],
) -> Result<(), AuthenticationError> {
    let deadline = deadline();
    answer_challenge(connection, key, deadline)?;
    deliver_challenge(connection, key, deadline)
}

/// When a handshake that starts now must be over.
fn deadline() -> Instant {
    Instant::now() + HANDSHAKE_TIMEOUT
}

/// Receives one handshake message by `deadline`: reads its length header and then exactly
/// its body, each read only once `poll` says it will not block. Nothing is read ahead.
fn receive(connection: &Connection, deadline: Instant) -> Result<Vec<u8>, AuthenticationError> {
    let mut header = [0; 4];
    read_exactly(connection, &mut header, deadline)?;
    let len = u32::from_le_bytes(header) as usize;
    if len > MAX_HANDSHAKE_MESSAGE {
        return Err(AuthenticationError::Protocol(format!(
            "a handshake message of {len} bytes, over the limit of {MAX_HANDSHAKE_MESSAGE}"
        )));
    }
    let mut message = vec![0; len];
    read_exactly(connection, &mut message, deadline)?;
    Ok(message)
}

/// Fills `buffer` from the connection, or fails at `deadline` or end of file.
fn read_exactly(
    connection: &Connection,
    buffer: &mut [u8],
    deadline: Instant,
) -> Result<(), AuthenticationError> {
    let reader = connection.reader()?.as_fd();
    let mut filled = 0;
    while filled < buffer.len() {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() || !sys::fd::wait_readable(reader, Some(left))? {
            return Err(AuthenticationError::Timeout);
        }
        match sys::fd::read_some(reader, &mut buffer[filled..]) {
            Ok(0) => return Err(AuthenticationError::Closed),
            Ok(read) => filled += read,
            Err(error) if error.kind() == io::ErrorKind::ConnectionReset => {
                return Err(AuthenticationError::Closed);
            }
            Err(error) => return Err(error.into()),
        }
    }
    Ok(())
}

/// Sends a challenge and checks the answer; tells the peer whether it passed.
fn deliver_challenge(
    connection: &Connection,
    key: &[u8],
    deadline: Instant,
) -> Result<(), AuthenticationError> {
    let random = sys::random_bytes::<RANDOM_BYTES>()?;
    let message = [DIGEST, &random].concat();
    connection.send_bytes(&[CHALLENGE, &message].concat())?;
    let response = receive(connection, deadline)?;
    match verify(key, &message, &response) {
        Ok(()) => Ok(connection.send_bytes(WELCOME)?),
        Err(error) => {
            // The peer learns it failed; if it has gone, the error here says enough.
            let _ = connection.send_bytes(FAILURE);
            Err(error)
        }
    }
}

/// Answers the peer's challenge and reads whether it passed.
fn answer_challenge(
    connection: &Connection,
    key: &[u8],
    deadline: Instant,
) -> Result<(), AuthenticationError> {
    let challenge = receive(connection, deadline)?;
    let message = challenge
        .strip_prefix(CHALLENGE)
        .ok_or_else(|| protocol("expected a challenge", &challenge))?;
    if !message.starts_with(DIGEST) || message.len() < DIGEST.len() + RANDOM_BYTES {
        return Err(protocol(
            "the challenge is not {sha256} and 40 random bytes",
            message,
        ));
    }
    connection.send_bytes(&[DIGEST, &mac(key, message).finalize().into_bytes()].concat())?;
    match receive(connection, deadline)?.as_slice() {
        WELCOME => Ok(()),
        FAILURE => Err(AuthenticationError::Rejected),
        other => Err(protocol("expected #WELCOME# or #FAILURE#", other)),
    }
}

/// Checks that `response` is `{sha256}` and the HMAC of `message` under `key`, comparing the
/// MACs in constant time.
fn verify(key: &[u8], message: &[u8], response: &[u8]) -> Result<(), AuthenticationError> {
    let mac_received = response
        .strip_prefix(DIGEST)
        .filter(|rest| rest.len() == MAC_BYTES)
        .ok_or_else(|| protocol("the answer is not {sha256} and 32 bytes", response))?;
    mac(key, message)
        .verify_slice(mac_received)
        .map_err(|_| AuthenticationError::WrongDigest)
}

fn mac(key: &[u8], message: &[u8]) -> HmacSha256 {
    // HMAC takes a key of any length (a long one is hashed first), so this cannot fail.
    let mut mac = HmacSha256::new_from_slice(key).expect("HMAC accepts keys of any length");
    mac.update(message);
    mac
}

/// A malformed handshake message; shows its first bytes, escaped.
fn protocol(what: &str, message: &[u8]) -> AuthenticationError {
    let shown: String = message
        .iter()
        .take(32)
        .flat_map(|b| b.escape_ascii())
        .map(char::from)
        .collect();
    AuthenticationError::Protocol(format!("{what}, got {} bytes: b\"{shown}\"", message.len()))
}

/// Why the authentication of a connection failed. Python: `AuthenticationError`.
///
/// Both sides of a connection whose keys differ fail: the one that checked with
/// [`WrongDigest`](Self::WrongDigest), the one that was checked with
/// [`Rejected`](Self::Rejected).
#[non_exhaustive]
pub enum AuthenticationError {
    /// The peer's answer to our challenge was wrong: it does not hold our key.
    WrongDigest,
    /// The peer rejected our answer to its challenge: it does not hold our key.
    Rejected,
    /// The peer sent something that is not this handshake: another protocol, a Python
    /// program, or a message over [`MAX_HANDSHAKE_MESSAGE`] bytes.
    Protocol(String),
    /// The peer did not finish the handshake within [`HANDSHAKE_TIMEOUT`] (it may not expect
    /// a handshake, or it is stalling).
    Timeout,
    /// The peer closed the connection during the handshake.
    Closed,
    /// The system refused.
    Os(io::Error),
}

impl fmt::Display for AuthenticationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AuthenticationError::WrongDigest => f.write_str("digest received was wrong"),
            AuthenticationError::Rejected => f.write_str("digest sent was rejected"),
            AuthenticationError::Protocol(what) => write!(f, "protocol error: {what}"),
            AuthenticationError::Timeout => write!(
                f,
                "the peer did not finish the authentication within {} s",
                HANDSHAKE_TIMEOUT.as_secs()
            ),
            AuthenticationError::Closed => {
                f.write_str("the peer closed the connection during the authentication")
            }
            AuthenticationError::Os(_) => f.write_str("authentication failed"),
        }
    }
}

impl std::error::Error for AuthenticationError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            AuthenticationError::Os(error) => Some(error),
            _ => None,
        }
    }
}

crate::debug_as_display!(AuthenticationError);

impl From<io::Error> for AuthenticationError {
    fn from(error: io::Error) -> Self {
        AuthenticationError::Os(error)
    }
}

impl From<SendError> for AuthenticationError {
    fn from(error: SendError) -> Self {
        match error {
            SendError::Closed => AuthenticationError::Closed,
            SendError::Os(error) => AuthenticationError::Os(error),
            other => AuthenticationError::Os(io::Error::other(other.to_string())),
        }
    }
}

impl From<RecvError> for AuthenticationError {
    fn from(error: RecvError) -> Self {
        match error {
            RecvError::Closed | RecvError::Truncated { .. } => AuthenticationError::Closed,
            RecvError::TooLarge { len, max } => AuthenticationError::Protocol(format!(
                "a handshake message of {len} bytes, over the limit of {max}"
            )),
            RecvError::Os(error)
                if matches!(
                    error.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                AuthenticationError::Timeout
            }
            RecvError::Os(error) => AuthenticationError::Os(error),
            other => AuthenticationError::Os(io::Error::other(other.to_string())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_answer_verifies_only_under_the_same_key_and_message() {
        let message = [DIGEST, &[7; RANDOM_BYTES]].concat();
        let answer = [DIGEST, &mac(b"chave", &message).finalize().into_bytes()].concat();
        assert!(verify(b"chave", &message, &answer).is_ok());
        assert!(matches!(
            verify(b"outra", &message, &answer),
            Err(AuthenticationError::WrongDigest)
        ));
        let other_message = [DIGEST, &[8; RANDOM_BYTES]].concat();
        assert!(matches!(
            verify(b"chave", &other_message, &answer),
            Err(AuthenticationError::WrongDigest)
        ));
    }

    #[test]
    fn a_malformed_answer_is_a_protocol_error() {
        let message = [DIGEST, &[7; RANDOM_BYTES]].concat();
        let mac = mac(b"chave", &message).finalize().into_bytes();
        for answer in [
            mac.to_vec(),                         // no prefix
            [b"{md5}".as_slice(), &mac].concat(), // another digest
            [DIGEST, &mac[..31]].concat(),        // too short
            [DIGEST, &mac, b"x"].concat(),        // too long
        ] {
            let error = verify(b"chave", &message, &answer).unwrap_err();
            assert!(matches!(error, AuthenticationError::Protocol(_)), "{error}");
        }
    }
}
