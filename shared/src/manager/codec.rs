//! How a [`Request`] and a [`Reply`] are laid out in a message: a code byte, then the
//! arguments, laid out by hand for the calls a proxy makes most (a dict's `get` and
//! `d[k] = v`, a value's, a list's item, every `len`), as MessagePack for the rest.
//!
//! Why by hand: a proxy's call is one round trip over two pipes, and what both sides do
//! around the two system calls is the rest of its cost. With the whole request as
//! MessagePack, the server's decoding alone (a variant name read as a string and matched,
//! each value a nested byte string read through the size guard) was the largest part of
//! that rest (see `bench/README.md`, "Manager call, measured").
//!
//! ```text
//! request: [code: u8][object: u64 LE][arguments]
//!   PIPES                                   [protocol version: u8]
//!   LEN, VALUE_GET                          nothing
//!   DICT_GET, DICT_CONTAINS, DICT_POP,
//!   VALUE_SET, LIST_APPEND                  the value: every byte left
//!   DICT_SET, DICT_SET_DEFAULT              [key length: u32 LE][key][value: every byte left]
//!   ITEM_GET                                [index: i64 LE]
//!   ITEM_SET                                [index: i64 LE][value: every byte left]
//!   GENERAL                                 the call, as MessagePack
//! reply:   [code: u8][payload]
//!   DONE, NONE, FALSE, TRUE                 nothing
//!   SOME, ITEM                              the value: every byte left
//!   COUNT, ID                               [u64 LE]
//!   GENERAL                                 the reply, as MessagePack
//! ```
//!
//! Values are the MessagePack bytes of the proxy's own types, which the server never
//! decodes. Decoding checks everything against the message it has: a length past the end,
//! a missing or extra byte, an unknown code is an error that says so, never a panic, and
//! nothing is allocated beyond the message (whose size the connection bounds). A request's
//! codes are below `0x80`, so the first byte of an older build's request (a MessagePack
//! array, `0x92`) is refused as an unknown code.

use serde::Serialize;
use serde_bytes::ByteBuf;

use super::ManagerError;
use super::protocol::{Call, Reply, Request};

/// The version of this layout, sent in every connection's first request ([`Call::Pipes`]): a
/// server refuses a client of another build instead of misreading it. Version 1 was the
/// whole request as MessagePack, with no version.
pub(super) const PROTOCOL: u8 = 2;

/// The bytes before a request's arguments: its code and its object's id.
const REQUEST_HEADER: usize = 1 + 8;

/// A request's code.
mod request {
    pub(super) const GENERAL: u8 = 0x01;
    pub(super) const PIPES: u8 = 0x02;
    pub(super) const LEN: u8 = 0x03;
    pub(super) const DICT_GET: u8 = 0x10;
    pub(super) const DICT_SET: u8 = 0x11;
    pub(super) const DICT_CONTAINS: u8 = 0x12;
    pub(super) const DICT_POP: u8 = 0x13;
    pub(super) const DICT_SET_DEFAULT: u8 = 0x14;
    pub(super) const VALUE_GET: u8 = 0x20;
    pub(super) const VALUE_SET: u8 = 0x21;
    pub(super) const LIST_APPEND: u8 = 0x30;
    pub(super) const ITEM_GET: u8 = 0x31;
    pub(super) const ITEM_SET: u8 = 0x32;

    /// Every code above: a first byte not among them is refused before anything else.
    pub(super) const ALL: [u8; 13] = [
        GENERAL,
        PIPES,
        LEN,
        DICT_GET,
        DICT_SET,
        DICT_CONTAINS,
        DICT_POP,
        DICT_SET_DEFAULT,
        VALUE_GET,
        VALUE_SET,
        LIST_APPEND,
        ITEM_GET,
        ITEM_SET,
    ];
}

/// A reply's code.
mod reply {
    pub(super) const GENERAL: u8 = 0x01;
    pub(super) const DONE: u8 = 0x02;
    pub(super) const NONE: u8 = 0x03;
    pub(super) const SOME: u8 = 0x04;
    pub(super) const ITEM: u8 = 0x05;
    pub(super) const FALSE: u8 = 0x06;
    pub(super) const TRUE: u8 = 0x07;
    pub(super) const COUNT: u8 = 0x08;
    pub(super) const ID: u8 = 0x09;
}

/// Lays `call` on `object` out in `frame` (emptied first).
///
/// # Errors
/// [`ManagerError::Encode`] when a key is longer than 4 GiB or a call does not serialize.
pub(super) fn write_request(
    object: u64,
    call: &Call,
    frame: &mut Vec<u8>,
) -> Result<(), ManagerError> {
    frame.clear();
    match call {
        Call::Pipes => start_request(frame, object, request::PIPES).push(PROTOCOL),
        Call::Len => {
            start_request(frame, object, request::LEN);
        }
        Call::ValueGet => {
            start_request(frame, object, request::VALUE_GET);
        }
        Call::DictGet(key) => {
            start_request(frame, object, request::DICT_GET).extend_from_slice(key)
        }
        Call::DictContains(key) => {
            start_request(frame, object, request::DICT_CONTAINS).extend_from_slice(key)
        }
        Call::DictPop(key) => {
            start_request(frame, object, request::DICT_POP).extend_from_slice(key)
        }
        Call::ValueSet(value) => {
            start_request(frame, object, request::VALUE_SET).extend_from_slice(value)
        }
        Call::ListAppend(value) => {
            start_request(frame, object, request::LIST_APPEND).extend_from_slice(value)
        }
        Call::DictSet(key, value) => {
            write_pair(start_request(frame, object, request::DICT_SET), key, value)?
        }
        Call::DictSetDefault(key, value) => {
            write_pair(
                start_request(frame, object, request::DICT_SET_DEFAULT),
                key,
                value,
            )?;
        }
        Call::ItemGet(index) => {
            start_request(frame, object, request::ITEM_GET).extend_from_slice(&index.to_le_bytes())
        }
        Call::ItemSet(index, value) => {
            let frame = start_request(frame, object, request::ITEM_SET);
            frame.extend_from_slice(&index.to_le_bytes());
            frame.extend_from_slice(value);
        }
        general => {
            rmp_serde::encode::write(start_request(frame, object, request::GENERAL), general)
                .map_err(|error| ManagerError::Encode(format!("a request: {error}")))?
        }
    }
    Ok(())
}

/// Lays out a dict's `get` of `key` on `object`, the key encoded straight into `frame`
/// (emptied first).
///
/// # Errors
/// [`ManagerError::Encode`] when the key does not serialize.
pub(super) fn write_dict_get<K: Serialize + ?Sized>(
    frame: &mut Vec<u8>,
    object: u64,
    key: &K,
) -> Result<(), ManagerError> {
    frame.clear();
    write_value(start_request(frame, object, request::DICT_GET), key)
}

/// Lays out a dict's `d[key] = value` on `object`, key and value encoded straight into
/// `frame` (emptied first).
///
/// # Errors
/// [`ManagerError::Encode`] when the key or the value does not serialize, or the key is
/// longer than 4 GiB.
pub(super) fn write_dict_set<K: Serialize + ?Sized, V: Serialize + ?Sized>(
    frame: &mut Vec<u8>,
    object: u64,
    key: &K,
    value: &V,
) -> Result<(), ManagerError> {
    frame.clear();
    let frame = start_request(frame, object, request::DICT_SET);
    let len_at = frame.len();
    frame.extend_from_slice(&[0; 4]);
    write_value(frame, key)?;
    let len = frame.len() - len_at - 4;
    let len = u32::try_from(len)
        .map_err(|_| ManagerError::Encode(format!("a key of {len} bytes (at most 4 GiB)")))?;
    frame[len_at..len_at + 4].copy_from_slice(&len.to_le_bytes());
    write_value(frame, value)
}

/// Appends the MessagePack of `value`, as a proxy's values travel (see `link::encode`).
fn write_value<T: Serialize + ?Sized>(frame: &mut Vec<u8>, value: &T) -> Result<(), ManagerError> {
    rmp_serde::encode::write(frame, value)
        .map_err(|error| ManagerError::Encode(format!("{}: {error}", std::any::type_name::<T>())))
}

#[inline]
fn start_request(frame: &mut Vec<u8>, object: u64, code: u8) -> &mut Vec<u8> {
    frame.push(code);
    frame.extend_from_slice(&object.to_le_bytes());
    frame
}

fn write_pair(frame: &mut Vec<u8>, key: &[u8], value: &[u8]) -> Result<(), ManagerError> {
    let len = u32::try_from(key.len()).map_err(|_| {
        ManagerError::Encode(format!("a key of {} bytes (at most 4 GiB)", key.len()))
    })?;
    frame.extend_from_slice(&len.to_le_bytes());
    frame.extend_from_slice(key);
    frame.extend_from_slice(value);
    Ok(())
}

/// A request as read: a dict's `get` or `d[k] = v` still in the message's bytes (the server
/// runs it from there, with no copy), or any other request.
pub(super) enum Incoming<'a> {
    DictGet {
        object: u64,
        key: &'a [u8],
    },
    DictSet {
        object: u64,
        key: &'a [u8],
        value: &'a [u8],
    },
    Request(Request),
}

impl Incoming<'_> {
    /// The request, owning its arguments.
    pub(super) fn into_request(self) -> Request {
        let owned = |bytes: &[u8]| ByteBuf::from(bytes.to_vec());
        match self {
            Incoming::DictGet { object, key } => Request {
                object,
                call: Call::DictGet(owned(key)),
            },
            Incoming::DictSet { object, key, value } => Request {
                object,
                call: Call::DictSet(owned(key), owned(value)),
            },
            Incoming::Request(request) => request,
        }
    }
}

/// Reads a request laid out by [`write_request`] (or the `write_dict_*` functions).
///
/// # Errors
/// What was wrong with the bytes: too short, an unknown code, a key length past the end,
/// bytes left over, a client of another protocol version, a general call that does not
/// decode.
pub(super) fn read_request(message: &[u8]) -> Result<Incoming<'_>, String> {
    match message.first() {
        None => return Err("an empty message".to_owned()),
        // A request of a build before this layout starts with a MessagePack array (0x92).
        Some(&unknown) if !request::ALL.contains(&unknown) => {
            return Err(format!(
                "unknown request code {unknown:#04x} (a client of another build?)"
            ));
        }
        Some(_) => {}
    }
    let Some((header, arguments)) = message.split_at_checked(REQUEST_HEADER) else {
        return Err(format!(
            "{} bytes, shorter than a request's header ({REQUEST_HEADER})",
            message.len()
        ));
    };
    let code = header[0];
    let object = u64::from_le_bytes(array(&header[1..]));
    let owned = |bytes: &[u8]| ByteBuf::from(bytes.to_vec());
    let call = match code {
        request::PIPES => match arguments {
            [PROTOCOL] => Call::Pipes,
            [version] => {
                return Err(format!(
                    "a client of manager protocol {version}, this server speaks {PROTOCOL} \
                     (a build of another version)"
                ));
            }
            _ => return Err(wrong_length("PIPES", arguments.len(), "1")),
        },
        request::LEN => no_arguments(arguments, "LEN", Call::Len)?,
        request::VALUE_GET => no_arguments(arguments, "VALUE_GET", Call::ValueGet)?,
        request::DICT_GET => {
            return Ok(Incoming::DictGet {
                object,
                key: arguments,
            });
        }
        request::DICT_CONTAINS => Call::DictContains(owned(arguments)),
        request::DICT_POP => Call::DictPop(owned(arguments)),
        request::VALUE_SET => Call::ValueSet(owned(arguments)),
        request::LIST_APPEND => Call::ListAppend(owned(arguments)),
        request::DICT_SET => {
            let (key, value) = read_pair(arguments)?;
            return Ok(Incoming::DictSet { object, key, value });
        }
        request::DICT_SET_DEFAULT => {
            let (key, value) = read_pair(arguments)?;
            Call::DictSetDefault(owned(key), owned(value))
        }
        request::ITEM_GET => match <[u8; 8]>::try_from(arguments) {
            Ok(index) => Call::ItemGet(i64::from_le_bytes(index)),
            Err(_) => return Err(wrong_length("ITEM_GET", arguments.len(), "8")),
        },
        request::ITEM_SET => {
            let Some((index, value)) = arguments.split_at_checked(8) else {
                return Err(wrong_length("ITEM_SET", arguments.len(), "at least 8"));
            };
            Call::ItemSet(i64::from_le_bytes(array(index)), owned(value))
        }
        request::GENERAL => crate::wire::decode(arguments)
            .map_err(|error| format!("a general request that does not decode: {error}"))?,
        unknown => return Err(format!("unknown request code {unknown:#04x}")),
    };
    Ok(Incoming::Request(Request { object, call }))
}

/// A key and a value: `[key length: u32 LE][key][value]`.
fn read_pair(arguments: &[u8]) -> Result<(&[u8], &[u8]), String> {
    let Some((len, after)) = arguments.split_at_checked(4) else {
        return Err(wrong_length(
            "a key and value",
            arguments.len(),
            "at least 4",
        ));
    };
    let len = u32::from_le_bytes(array(len)) as usize;
    after.split_at_checked(len).ok_or_else(|| {
        format!(
            "a key of {len} bytes, in a request with {} bytes after the key's length",
            after.len()
        )
    })
}

fn no_arguments(arguments: &[u8], code: &str, call: Call) -> Result<Call, String> {
    if arguments.is_empty() {
        Ok(call)
    } else {
        Err(wrong_length(code, arguments.len(), "0"))
    }
}

fn wrong_length(code: &str, got: usize, expected: &str) -> String {
    format!("a {code} request with {got} bytes of arguments, expected {expected}")
}

/// The first `N` bytes of `bytes` as an array; the callers hand exactly `N` or more.
fn array<const N: usize>(bytes: &[u8]) -> [u8; N] {
    let mut array = [0; N];
    array.copy_from_slice(&bytes[..N]);
    array
}

/// Lays `answer` out in `frame` (emptied first).
///
/// # Errors
/// [`ManagerError::Encode`] when a general reply does not serialize.
pub(super) fn write_reply(answer: &Reply, frame: &mut Vec<u8>) -> Result<(), ManagerError> {
    frame.clear();
    match answer {
        Reply::Done => write_done(frame),
        Reply::Maybe(value) => write_maybe(frame, value.as_ref().map(|value| value.as_slice())),
        Reply::Bool(false) => frame.push(reply::FALSE),
        Reply::Bool(true) => frame.push(reply::TRUE),
        Reply::Item(value) => {
            frame.push(reply::ITEM);
            frame.extend_from_slice(value);
        }
        Reply::Count(n) => {
            frame.push(reply::COUNT);
            frame.extend_from_slice(&n.to_le_bytes());
        }
        Reply::Id(id) => {
            frame.push(reply::ID);
            frame.extend_from_slice(&id.to_le_bytes());
        }
        general => {
            frame.push(reply::GENERAL);
            rmp_serde::encode::write(frame, general)
                .map_err(|error| ManagerError::Encode(format!("a reply: {error}")))?;
        }
    }
    Ok(())
}

/// Lays [`Reply::Done`] out in `frame` (emptied first).
pub(super) fn write_done(frame: &mut Vec<u8>) {
    frame.clear();
    frame.push(reply::DONE);
}

/// Lays a [`Reply::Maybe`] of `value` out in `frame` (emptied first), from where the value
/// is (a dict's `get`, straight from the map).
pub(super) fn write_maybe(frame: &mut Vec<u8>, value: Option<&[u8]>) {
    frame.clear();
    match value {
        None => frame.push(reply::NONE),
        Some(value) => {
            frame.push(reply::SOME);
            frame.extend_from_slice(value);
        }
    }
}

/// A reply as read: a value still in the message's bytes (a proxy decodes it from there,
/// with no copy), or any other reply.
pub(super) enum Answer<'a> {
    /// [`Reply::Maybe`].
    Maybe(Option<&'a [u8]>),
    /// [`Reply::Item`].
    Item(&'a [u8]),
    Reply(Reply),
}

impl Answer<'_> {
    /// The reply, owning its value.
    pub(super) fn into_reply(self) -> Reply {
        let owned = |bytes: &[u8]| ByteBuf::from(bytes.to_vec());
        match self {
            Answer::Maybe(value) => Reply::Maybe(value.map(owned)),
            Answer::Item(value) => Reply::Item(owned(value)),
            Answer::Reply(reply) => reply,
        }
    }
}

/// Reads a reply laid out by [`write_reply`].
///
/// Inlined, for the answers of a dict's `get` and `d[k] = v`, into the proxy's own code:
/// after each switch between the two processes a call runs cold, and every other page of
/// code it enters costs about as much as 50 ns (see `bench/README.md`).
///
/// # Errors
/// [`ManagerError::Decode`], saying what was wrong: an empty message, an unknown code, a
/// number of the wrong length, bytes left over, a general reply that does not decode.
#[inline]
pub(super) fn read_reply(message: &[u8]) -> Result<Answer<'_>, ManagerError> {
    match message {
        [reply::SOME, value @ ..] => Ok(Answer::Maybe(Some(value))),
        [reply::NONE] => Ok(Answer::Maybe(None)),
        [reply::DONE] => Ok(Answer::Reply(Reply::Done)),
        _ => read_any_reply(message),
    }
}

fn read_any_reply(message: &[u8]) -> Result<Answer<'_>, ManagerError> {
    let Some((&code, payload)) = message.split_first() else {
        return Err(bad_reply("an empty reply".to_owned()));
    };
    let number = |what: &str| match <[u8; 8]>::try_from(payload) {
        Ok(bytes) => Ok(u64::from_le_bytes(bytes)),
        Err(_) => Err(bad_reply(format!(
            "a {what} reply with {} bytes, expected 8",
            payload.len()
        ))),
    };
    let nothing = |what: &str| {
        if payload.is_empty() {
            Ok(())
        } else {
            Err(bad_reply(format!(
                "a {what} reply with {} bytes more than its code",
                payload.len()
            )))
        }
    };
    let reply = match code {
        reply::SOME => return Ok(Answer::Maybe(Some(payload))),
        reply::ITEM => return Ok(Answer::Item(payload)),
        reply::NONE => return nothing("NONE").map(|()| Answer::Maybe(None)),
        reply::DONE => nothing("DONE").map(|()| Reply::Done)?,
        reply::FALSE => nothing("FALSE").map(|()| Reply::Bool(false))?,
        reply::TRUE => nothing("TRUE").map(|()| Reply::Bool(true))?,
        reply::COUNT => Reply::Count(number("COUNT")?),
        reply::ID => Reply::Id(number("ID")?),
        reply::GENERAL => crate::wire::decode(payload)
            .map_err(|error| bad_reply(format!("a general reply that does not decode: {error}")))?,
        unknown => return Err(bad_reply(format!("unknown reply code {unknown:#04x}"))),
    };
    Ok(Answer::Reply(reply))
}

fn bad_reply(what: String) -> ManagerError {
    ManagerError::Decode(format!("not a manager's reply: {what}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manager::link::encode;
    use crate::manager::protocol::Failure;

    /// Every call laid out by hand, and one that goes as MessagePack.
    fn calls() -> Vec<Call> {
        let bytes = |b: &[u8]| ByteBuf::from(b.to_vec());
        vec![
            Call::Pipes,
            Call::Len,
            Call::ValueGet,
            Call::DictGet(bytes(b"k")),
            Call::DictContains(bytes(b"")),
            Call::DictPop(bytes(b"key")),
            Call::ValueSet(bytes(b"\x01\x02")),
            Call::ListAppend(bytes(b"v")),
            Call::DictSet(bytes(b"key"), bytes(b"value")),
            Call::DictSetDefault(bytes(b""), bytes(b"")),
            Call::ItemGet(-3),
            Call::ItemSet(i64::MAX, bytes(b"x")),
            Call::Notify(7),
        ]
    }

    fn laid_out(call: &Call) -> Vec<u8> {
        let mut frame = vec![0xee; 3];
        write_request(42, call, &mut frame).unwrap();
        frame
    }

    #[test]
    fn every_request_reads_back_as_written() {
        for call in calls() {
            let read = read_request(&laid_out(&call)).unwrap().into_request();
            assert_eq!(read.object, 42);
            assert_eq!(format!("{:?}", read.call), format!("{call:?}"));
        }
    }

    #[test]
    fn a_proxy_lays_out_a_dict_call_as_the_call_would_be() {
        let mut direct = Vec::new();
        write_dict_set(&mut direct, 42, "chave", &7_u32).unwrap();
        let call = Call::DictSet(encode("chave").unwrap(), encode(&7_u32).unwrap());
        assert_eq!(direct, laid_out(&call));
        write_dict_get(&mut direct, 42, "chave").unwrap();
        assert_eq!(direct, laid_out(&Call::DictGet(encode("chave").unwrap())));
    }

    /// A request cut short is refused, or read as another (shorter) call: never a panic,
    /// never the whole call.
    #[test]
    fn a_request_cut_anywhere_is_never_read_as_the_whole() {
        for call in calls() {
            let frame = laid_out(&call);
            for end in 0..frame.len() {
                let read = read_request(&frame[..end])
                    .map(|read| format!("{:?}", read.into_request().call));
                assert_ne!(read, Ok(format!("{call:?}")), "{:?}", &frame[..end]);
            }
        }
        let short = read_request(&[request::LEN, 1, 2]).map(drop).unwrap_err();
        assert!(short.contains("shorter than a request's header"), "{short}");
    }

    #[test]
    fn malformed_requests_say_what_was_wrong() {
        let header = |code: u8| {
            let mut frame = vec![code];
            frame.extend_from_slice(&9_u64.to_le_bytes());
            frame
        };
        let refused = |frame: &[u8]| read_request(frame).map(drop).unwrap_err();

        assert!(refused(&header(0x7f)).contains("unknown request code 0x7f"));
        // An older build's first request, `Request { object: 0, call: Pipes }` as MessagePack.
        assert!(refused(b"\x92\x00\xa5Pipes").contains("unknown request code 0x92"));
        assert!(refused(&[]).contains("an empty message"));

        let mut oversized = header(request::DICT_SET);
        oversized.extend_from_slice(&u32::MAX.to_le_bytes());
        oversized.extend_from_slice(b"abc");
        let what = refused(&oversized);
        assert!(what.contains("a key of 4294967295 bytes"), "{what}");

        let mut stray = header(request::LEN);
        stray.push(0);
        assert!(refused(&stray).contains("expected 0"));

        let mut other_version = header(request::PIPES);
        other_version.push(PROTOCOL + 1);
        assert!(refused(&other_version).contains("manager protocol"));

        let mut garbage = header(request::GENERAL);
        garbage.push(0xc1);
        assert!(refused(&garbage).contains("does not decode"));
    }

    #[test]
    fn every_reply_reads_back_as_written() {
        let replies = [
            Reply::Done,
            Reply::Maybe(None),
            Reply::Maybe(Some(ByteBuf::from(b"v".to_vec()))),
            Reply::Item(ByteBuf::from(Vec::new())),
            Reply::Bool(false),
            Reply::Bool(true),
            Reply::Count(u64::MAX),
            Reply::Id(3),
            Reply::Failed(Failure::IndexError("fora".into())),
        ];
        let mut frame = Vec::new();
        for answer in replies {
            write_reply(&answer, &mut frame).unwrap();
            let read = read_reply(&frame).unwrap().into_reply();
            assert_eq!(format!("{read:?}"), format!("{answer:?}"));
            for end in 0..frame.len() {
                let cut = read_reply(&frame[..end]).map(|cut| format!("{:?}", cut.into_reply()));
                assert_ne!(cut.ok(), Some(format!("{answer:?}")), "{:?}", &frame[..end]);
            }
        }
    }

    #[test]
    fn malformed_replies_are_decode_errors() {
        let refused = |frame: &[u8]| match read_reply(frame) {
            Err(ManagerError::Decode(what)) => what,
            Err(other) => panic!("{other:?}"),
            Ok(_) => panic!("{frame:?} read as a reply"),
        };
        assert!(refused(&[]).contains("an empty reply"));
        assert!(refused(&[0x7f]).contains("unknown reply code 0x7f"));
        assert!(refused(&[reply::COUNT, 1, 2]).contains("expected 8"));
        assert!(refused(&[reply::DONE, 0]).contains("more than its code"));
        assert!(refused(&[reply::GENERAL, 0xc1]).contains("does not decode"));
    }
}
