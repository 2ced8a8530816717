//! How values cross between processes: MessagePack (rmp-serde), decoded with a depth limit.
//!
//! A peer, a corrupted queue or a forged payload can send a value nested as deep as its bytes
//! allow. Decoding recurses once per level, so without a limit a few kilobytes of `[[[[...`
//! overflow the receiving thread's stack and abort the process. rmp-serde's own limit (1,024
//! levels) is too deep for a 2 MiB thread stack in a debug build, where each level of a typical
//! `Deserialize` costs 2 KiB or more.

use serde::de::DeserializeOwned;

/// How deeply arrays, maps and extension values may nest in anything `shared` decodes: queue
/// items, [`Connection::recv`](crate::Connection::recv) messages and a spawned child's
/// arguments. 128, as serde_json's default: a few hundred KiB of stack at worst in a debug
/// build, far under the 2 MiB a spawned thread gets. Deeper values are a decode error.
///
/// ```
/// use shared::{MAX_DEPTH, Pipe, RecvError};
///
/// // MAX_DEPTH + 1 nested arrays, as a peer might send them.
/// let mut deep = vec![0x91; MAX_DEPTH]; // each an array holding the next
/// deep.push(0x90); // the innermost, empty
/// let (a, b) = Pipe::new()?;
/// a.send_bytes(&deep)?;
/// let error = b.recv::<nesting::Nested>().unwrap_err();
/// assert!(matches!(error, RecvError::Decode { .. }), "{error}");
/// # mod nesting {
/// #     #[derive(Debug, serde::Deserialize)]
/// #     pub struct Nested(#[allow(dead_code)] pub Vec<Nested>);
/// # }
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub const MAX_DEPTH: usize = 128;

/// Decodes a `T` from `bytes`, refusing values nested deeper than [`MAX_DEPTH`].
pub(crate) fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, rmp_serde::decode::Error> {
    let mut deserializer = rmp_serde::Deserializer::from_read_ref(bytes);
    // rmp-serde refuses the level at which its counter reaches zero: allow MAX_DEPTH levels.
    deserializer.set_max_depth(MAX_DEPTH + 1);
    T::deserialize(&mut deserializer)
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    use super::*;

    /// A value that is an array of itself, as deep as the bytes say.
    #[derive(Debug, Deserialize)]
    struct Nested(#[allow(dead_code)] Vec<Nested>);

    /// `depth` arrays, each the only element of the one around it.
    fn nested(depth: usize) -> Vec<u8> {
        let mut bytes = vec![0x91; depth - 1]; // fixarray of length 1
        bytes.push(0x90); // fixarray of length 0
        bytes
    }

    #[test]
    fn values_within_the_limit_decode() {
        decode::<Nested>(&nested(MAX_DEPTH)).expect("within the limit");
        let error = decode::<Nested>(&nested(MAX_DEPTH + 1)).expect_err("one level too deep");
        assert!(error.to_string().contains("depth limit"), "{error}");
    }

    #[test]
    fn deeper_values_are_an_error_even_on_a_small_stack() {
        // 2 MiB: what `std::thread::spawn` gives a thread by default.
        let outcome = std::thread::Builder::new()
            .stack_size(2 << 20)
            .spawn(|| decode::<Nested>(&nested(100_000)).map(drop))
            .expect("thread")
            .join()
            .expect("the decoding thread survives");
        let error = outcome.expect_err("too deep");
        assert!(error.to_string().contains("depth limit"), "{error}");
    }
}
