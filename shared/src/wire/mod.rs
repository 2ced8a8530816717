//! How values cross between processes: MessagePack (rmp-serde), decoded with a depth limit.
//!
//! A peer, a corrupted queue or a forged payload can send a value nested as deep as its bytes
//! allow. Decoding recurses once per level, so without a limit a few kilobytes of `[[[[...`
//! overflow the receiving thread's stack and abort the process. rmp-serde's own limit (1,024
//! levels, and only for arrays, maps and extension values) is too deep for a 2 MiB thread stack
//! in a debug build, where each level of a typical `Deserialize` costs 2 KiB or more, and it
//! misses types that recurse through `Option`, newtypes and enums (see `limit`).

mod limit;

use serde::de::DeserializeOwned;

/// How deeply values may nest in anything `shared` decodes: queue items,
/// [`Connection::recv`](crate::Connection::recv) messages and a spawned child's arguments. A
/// level is an array, a map, an `Option`'s `Some`, a newtype struct or an enum variant. 128,
/// as serde_json's default: a few hundred KiB of stack at worst in a debug build, far under the
/// 2 MiB a spawned thread gets. Deeper values are a decode error.
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
    T::deserialize(limit::Limited {
        inner: &mut deserializer,
        left: MAX_DEPTH,
    })
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;
    use serde::de::IgnoredAny;

    use super::*;

    /// `depth` arrays, each the only element of the one around it.
    fn nested(depth: usize) -> Vec<u8> {
        let mut bytes = vec![0x91; depth - 1]; // fixarray of length 1
        bytes.push(0x90); // fixarray of length 0
        bytes
    }

    /// Runs `decode` on a thread with a 2 MiB stack, what `std::thread::spawn` gives.
    fn on_a_small_stack<T: Send + 'static>(decode: impl FnOnce() -> T + Send + 'static) -> T {
        std::thread::Builder::new()
            .stack_size(2 << 20)
            .spawn(decode)
            .expect("thread")
            .join()
            .expect("the decoding thread survives")
    }

    #[test]
    fn values_within_the_limit_decode_and_one_level_more_does_not() {
        decode::<IgnoredAny>(&nested(MAX_DEPTH)).expect("within the limit");
        let error = decode::<IgnoredAny>(&nested(MAX_DEPTH + 1)).expect_err("one level too deep");
        assert!(error.to_string().contains("depth limit"), "{error}");
    }

    #[test]
    fn deep_arrays_are_an_error_even_on_a_small_stack() {
        let error = on_a_small_stack(|| decode::<IgnoredAny>(&nested(100_000)).map(drop))
            .expect_err("too deep");
        assert!(error.to_string().contains("depth limit"), "{error}");
    }

    /// A type that recurses through `Option`, which rmp-serde does not count: for it the one
    /// byte `0x01` is "some" at every level, forever.
    #[derive(Debug, Deserialize)]
    struct Chain(#[allow(dead_code)] Option<Box<Chain>>);

    #[test]
    fn one_byte_cannot_make_an_option_recurse_forever() {
        let error = on_a_small_stack(|| decode::<Chain>(&[0x01]).map(drop)).expect_err("endless");
        assert!(error.to_string().contains("depth limit"), "{error}");
    }

    /// A type that recurses through enum variants, which rmp-serde does not count either.
    #[derive(Debug, Deserialize)]
    enum Expr {
        Neg(#[allow(dead_code)] Box<Expr>),
        Num(#[allow(dead_code)] i64),
    }

    #[test]
    fn deep_enum_variants_are_an_error_even_on_a_small_stack() {
        // `Neg` 50,000 times ({0: ...}), then `Num(0)` ({1: 0}).
        let mut bytes = [0x81, 0x00].repeat(50_000);
        bytes.extend_from_slice(&[0x81, 0x01, 0x00]);
        let error = on_a_small_stack(move || decode::<Expr>(&bytes).map(drop)).expect_err("deep");
        assert!(error.to_string().contains("depth limit"), "{error}");
        let shallow = [0x81, 0x00, 0x81, 0x01, 0x05];
        assert!(matches!(decode::<Expr>(&shallow), Ok(Expr::Neg(_))));
    }
}
