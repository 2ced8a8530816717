//! How a handle (a [`Queue`](crate::Queue), a [`Connection`](crate::Connection)) crosses to a
//! child started by the spawn start method.
//!
//! A handle is a file descriptor. Under fork the child simply inherits it. Under spawn the
//! parent serializes the target's arguments; while it does, each handle records its descriptor
//! here and writes only an index. The parent marks those descriptors inheritable in the child
//! (between `fork` and `exec`), and the spawned child, while decoding the arguments, turns each
//! index back into a descriptor of its own. Outside those two moments a handle refuses to be
//! serialized: a descriptor number means nothing to a process that did not inherit it.

use std::cell::RefCell;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd, RawFd};

use serde::de::Error as _;
use serde::ser::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::sys;

thread_local! {
    static OUTGOING: RefCell<Option<Vec<RawFd>>> = const { RefCell::new(None) };
    static INCOMING: RefCell<Option<Vec<OwnedFd>>> = const { RefCell::new(None) };
}

/// Runs `encode` with handle export enabled; returns its result and the descriptors to pass.
pub(crate) fn exporting<R>(encode: impl FnOnce() -> R) -> (R, Vec<RawFd>) {
    OUTGOING.with(|slot| *slot.borrow_mut() = Some(Vec::new()));
    let result = encode();
    let fds = OUTGOING
        .with(|slot| slot.borrow_mut().take())
        .unwrap_or_default();
    (result, fds)
}

/// Runs `decode` with the inherited descriptors available to handles; closes them afterwards
/// (each handle keeps its own duplicate).
pub(crate) fn importing<R>(fds: Vec<OwnedFd>, decode: impl FnOnce() -> R) -> R {
    INCOMING.with(|slot| *slot.borrow_mut() = Some(fds));
    let result = decode();
    INCOMING.with(|slot| slot.borrow_mut().take());
    result
}

/// A handle's descriptor on its way out: serializes as an index into the spawn payload.
pub(crate) struct Exported<'a> {
    pub(crate) fd: BorrowedFd<'a>,
    /// The kind of handle, for error messages.
    pub(crate) what: &'static str,
}

impl Serialize for Exported<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let raw = sys::fd::raw(&self.fd);
        let index = OUTGOING.with(|slot| {
            let mut slot = slot.borrow_mut();
            let fds = slot.as_mut()?;
            let index = fds.iter().position(|&f| f == raw).unwrap_or_else(|| {
                fds.push(raw);
                fds.len() - 1
            });
            Some(index as u32)
        });
        match index {
            Some(index) => index.serialize(serializer),
            None => Err(S::Error::custom(format_args!(
                "a {} can cross to another process only as an argument of Process::new",
                self.what
            ))),
        }
    }
}

/// A handle's descriptor on its way in: a new descriptor for the same open file.
pub(crate) struct Inherited(pub(crate) OwnedFd);

impl<'de> Deserialize<'de> for Inherited {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let index = u32::deserialize(deserializer)? as usize;
        INCOMING.with(|slot| {
            let slot = slot.borrow();
            let fds = slot.as_ref().ok_or_else(|| {
                D::Error::custom(
                    "a handle can be received only as an argument of a spawned process",
                )
            })?;
            let fd = fds.get(index).ok_or_else(|| {
                D::Error::custom(format_args!("the spawn payload has no descriptor {index}"))
            })?;
            sys::fd::duplicate(fd.as_fd())
                .map(Inherited)
                .map_err(D::Error::custom)
        })
    }
}
