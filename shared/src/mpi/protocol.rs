//! What crosses between rank 0 and a worker rank, and how each side checks what it receives.
//!
//! Every message is a byte vector in MessagePack, decoded with the crate's depth limit
//! ([`crate::wire::decode`]); a message that does not decode as what its tag promises is an
//! error the receiver reports, never a panic. Three tags keep the three conversations apart,
//! so a receive for one can never take a message of another.

use serde::{Deserialize, Serialize};

use crate::pool::task::{ChunkError, Token};

/// Rank 0 to each worker, once, at start: the token that keys the seals of its orders.
pub(crate) const HELLO_TAG: i32 = 1;
/// Rank 0 to a worker: an [`Order`].
pub(crate) const ORDER_TAG: i32 = 2;
/// A worker to rank 0: a [`Report`].
pub(crate) const REPORT_TAG: i32 = 3;

/// A chunk of calls for a worker rank to run: the local pool's own order, with the entry
/// point's offset in the (same) executable and its seal.
pub(crate) use crate::pool::Run;

/// What rank 0 sends a worker rank.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum Order {
    /// Run this chunk and report its outcome.
    Run(Run),
    /// Leave the loop, finalize MPI and exit: rank 0 is ending.
    Stop,
}

/// What a worker rank sends rank 0.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum Report {
    /// The outcome of the chunk `job`/`chunk` it was sent.
    Done {
        job: u64,
        chunk: u64,
        outcome: Result<serde_bytes::ByteBuf, ChunkError>,
    },
    /// The order it received did not decode: what it could not read.
    Unreadable(String),
}

/// Encodes a message of ours. Our own enums of integers, bytes and strings always encode; a
/// failure would leave an empty vector, which the receiver refuses as malformed.
pub(crate) fn encode<T: Serialize>(message: &T) -> Vec<u8> {
    rmp_serde::to_vec(message).unwrap_or_default()
}

/// The token of a hello message, if it is exactly one token's bytes.
pub(crate) fn token_of(hello: &[u8]) -> Result<Token, String> {
    hello.try_into().map_err(|_| {
        format!(
            "the hello from rank 0 has {} bytes, expected a {}-byte token",
            hello.len(),
            std::mem::size_of::<Token>()
        )
    })
}

/// Decodes an order; the error says what was wrong.
pub(crate) fn decode_order(bytes: &[u8]) -> Result<Order, String> {
    crate::wire::decode(bytes).map_err(|error| {
        format!(
            "an order from rank 0 does not decode ({} bytes): {error}",
            bytes.len()
        )
    })
}

/// Decodes a report; the error says what was wrong.
pub(crate) fn decode_report(bytes: &[u8]) -> Result<Report, String> {
    crate::wire::decode(bytes)
        .map_err(|error| format!("a report does not decode ({} bytes): {error}", bytes.len()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn orders_and_reports_round_trip_and_garbage_is_an_error() {
        let run = Run {
            job: 3,
            chunk: 4,
            entry: 5,
            seal: [6; 16],
            args: vec![7, 8],
        };
        match decode_order(&encode(&Order::Run(run))) {
            Ok(Order::Run(back)) => {
                assert_eq!((back.job, back.chunk, back.entry), (3, 4, 5));
                assert_eq!((back.seal, back.args), ([6; 16], vec![7, 8]));
            }
            other => panic!("expected the run back, got {other:?}"),
        }
        assert!(matches!(
            decode_order(&encode(&Order::Stop)),
            Ok(Order::Stop)
        ));
        for garbage in [&[][..], &[0xc1], &[0x92, 0x01], &[0xff; 9]] {
            assert!(decode_order(garbage).is_err(), "{garbage:?}");
            assert!(decode_report(garbage).is_err(), "{garbage:?}");
        }
        // A report is not an order, even though both are enums of the same encoding.
        let report = encode(&Report::Unreadable("x".into()));
        assert!(decode_order(&report).is_err());
        assert!(token_of(&[1; 16]).is_ok());
        assert_eq!(
            token_of(&[1; 3]).unwrap_err(),
            "the hello from rank 0 has 3 bytes, expected a 16-byte token"
        );
    }
}
