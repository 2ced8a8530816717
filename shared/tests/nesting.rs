//! A value nested deeper than [`shared::MAX_DEPTH`] levels, from a peer or another process, is
//! a decode error on the receiving thread, even on a 2 MiB stack in a debug build, where a
//! thousand levels used to overflow it and abort the process.

use std::thread;

use serde::de::IgnoredAny;
use serde::ser::SerializeSeq;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use shared::{GetError, MAX_DEPTH, Pipe, Queue, RecvError};

/// An array of itself, as deep as the bytes say: two levels each (a newtype and an array).
#[derive(Debug, Deserialize, Serialize)]
struct Nested(Vec<Nested>);

/// The most arrays a `Nested` may hold in one another.
const DEEPEST: usize = MAX_DEPTH / 2;

/// Encodes as `self.0 + 1` arrays, each the only element of the one around it.
struct Deep(usize);

impl Serialize for Deep {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut seq = serializer.serialize_seq(Some(usize::from(self.0 > 0)))?;
        if self.0 > 0 {
            seq.serialize_element(&Deep(self.0 - 1))?;
        }
        seq.end()
    }
}

impl<'de> Deserialize<'de> for Deep {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        IgnoredAny::deserialize(deserializer).map(|_| Deep(0))
    }
}

/// Runs `work` on a thread with `stack` bytes of stack; fails the test if that thread dies.
fn on_stack<R: Send + 'static>(stack: usize, work: impl FnOnce() -> R + Send + 'static) -> R {
    thread::Builder::new()
        .stack_size(stack)
        .spawn(work)
        .expect("thread")
        .join()
        .expect("the thread survives")
}

const SMALL: usize = 2 << 20;
/// Encoding recurses too; the sender gets room for it.
const LARGE: usize = 256 << 20;

#[test]
fn a_message_nested_a_thousand_deep_is_a_decode_error() {
    let (sender, receiver) = Pipe::new().unwrap();
    on_stack(LARGE, move || {
        sender.send(&Deep(1000)).unwrap();
        sender.send(&Deep(DEEPEST - 1)).unwrap();
    });
    let (first, second) = on_stack(SMALL, move || {
        (receiver.recv::<Nested>(), receiver.recv::<Nested>())
    });
    let error = first.expect_err("too deep");
    assert!(matches!(error, RecvError::Decode { .. }), "{error}");
    assert!(error.to_string().contains("depth limit"), "{error}");
    second.expect("MAX_DEPTH levels decode, and the connection goes on");
}

#[test]
fn a_queue_item_nested_a_thousand_deep_is_a_decode_error() {
    let queue = Queue::<Nested>::new().unwrap();
    let deep = queue.retyped::<Deep>();
    on_stack(LARGE, move || {
        deep.put(Deep(1000)).unwrap();
        deep.put(Deep(DEEPEST - 1)).unwrap();
    });
    let (first, second) = on_stack(SMALL, move || (queue.get(), queue.get()));
    let error = first.expect_err("too deep");
    assert!(matches!(error, GetError::Decode { .. }), "{error}");
    second.expect("MAX_DEPTH levels decode, and the queue goes on");
}
