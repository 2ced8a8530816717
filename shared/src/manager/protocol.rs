//! What a proxy and the manager's server say to each other: one [`Request`] and one
//! [`Reply`] at a time over a [`Connection`](crate::Connection), laid out as `codec` says
//! (by hand for the frequent calls, as MessagePack for the rest).
//!
//! Values travel as the MessagePack bytes of the proxy's own types (`K`, `V`, `T`): the
//! server never decodes them. It stores and compares bytes, so a dict's keys are equal when
//! their encodings are (the same for strings and integers; two floats that compare equal but
//! encode differently, `0.0` and `-0.0`, are two keys).
//!
//! Everything here is checked once where it arrives (in `codec`): a request that does not
//! decode is refused with an answer, a request larger than [`MAX_REQUEST`] closes its
//! connection (the length header is refused before anything is allocated), an unknown object
//! id or a call the object does not have is refused by name.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_bytes::ByteBuf;

/// The largest request a server reads (64 MiB): a longer one closes that connection.
pub const MAX_REQUEST: usize = 64 << 20;

/// The id the manager itself answers to: creating objects, naming them, shutting down.
pub(super) const MANAGER: u64 = 0;

/// The kinds of object a manager holds. Python: the type ids `SyncManager` registers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum Kind {
    Dict,
    List,
    Namespace,
    Value,
    Array,
    Lock,
    RLock,
    Semaphore,
    BoundedSemaphore,
    Event,
    Condition,
    Barrier,
    Queue,
    JoinableQueue,
    /// A type of the user's own ([`Shared`](super::Shared)), made by its type id.
    User,
}

impl Kind {
    /// The Python name, for messages.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Kind::Dict => "dict",
            Kind::List => "list",
            Kind::Namespace => "Namespace",
            Kind::Value => "Value",
            Kind::Array => "Array",
            Kind::Lock => "Lock",
            Kind::RLock => "RLock",
            Kind::Semaphore => "Semaphore",
            Kind::BoundedSemaphore => "BoundedSemaphore",
            Kind::Event => "Event",
            Kind::Condition => "Condition",
            Kind::Barrier => "Barrier",
            Kind::Queue => "Queue",
            Kind::JoinableQueue => "JoinableQueue",
            Kind::User => "registered type",
        }
    }
}

/// What a new object starts with: items (a list's, an array's, a value's one), and a number
/// (a semaphore's value, a barrier's parties, a queue's maxsize).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub(crate) struct Init {
    pub(crate) items: Vec<ByteBuf>,
    pub(crate) number: u64,
}

/// One call on one object.
#[derive(Debug)]
pub(crate) struct Request {
    pub(crate) object: u64,
    pub(crate) call: Call,
}

/// A method and its arguments. A wait of `None` waits for ever; `Some(ZERO)` does not wait.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum Call {
    // The manager (object 0).
    Create(Kind, Init),
    /// The object registered under this name, created (of this kind) if there is none.
    Named(String, Kind, Init),
    Shutdown,
    /// A new object of the registered type with this type id.
    CreateUser(String),
    /// Nothing but an answer: proves the server is there and the key right.
    Ping,
    /// Gives up this connection's references to the object with this id (the last proxy of
    /// it in the client's process was dropped).
    Decref(u64),
    /// One reference to each of these objects for a proxy on its way to another process
    /// (serialized, or copied by a fork): answered with one ticket per id, which the receiver
    /// adopts. A ticket nobody adopts is given up when this connection closes.
    Lend(Vec<u64>),
    /// Takes over the references these tickets stand for, as this connection's own.
    Adopt(Vec<u64>),
    /// One more reference to each of these objects, for this connection (a forked child's:
    /// its parent opens it for the child, which inherits it).
    Hold(Vec<u64>),
    /// How many objects the server holds. Python: `manager._number_of_objects()`.
    NumberOfObjects,
    /// Move this connection onto two pipes (the first request of every proxy's connection):
    /// answered not with a [`Reply`] but with the client's ends of the pipes, passed over the
    /// socket (see `Connection::move_to_pipes`).
    Pipes,

    // Every kind that has a length (dict, list, array, namespace, queue's qsize).
    Len,

    // dict
    DictGet(ByteBuf),
    DictGetMany(Vec<ByteBuf>),
    DictSet(ByteBuf, ByteBuf),
    DictUpdate(Vec<(ByteBuf, ByteBuf)>),
    DictSetDefault(ByteBuf, ByteBuf),
    DictPop(ByteBuf),
    DictContains(ByteBuf),
    DictItems,
    DictKeys,
    DictValues,
    Clear,

    // list and array
    ItemGet(i64),
    ItemSet(i64, ByteBuf),
    ListAppend(ByteBuf),
    ListExtend(Vec<ByteBuf>),
    ListInsert(i64, ByteBuf),
    ListPop(Option<i64>),
    ListAll,

    // Namespace
    GetAttr(String),
    SetAttr(String, ByteBuf),
    DelAttr(String),

    // Value
    ValueGet,
    ValueSet(ByteBuf),

    // Lock, RLock, Semaphore, Condition
    Acquire(Option<Duration>),
    Release,
    SemaphoreValue,

    // Event
    EventSet,
    EventClear,
    EventIsSet,
    EventWait(Option<Duration>),

    // Condition
    Wait(Option<Duration>),
    Notify(u64),
    NotifyAll,

    // Barrier
    BarrierWait(Option<Duration>),
    BarrierAbort,
    BarrierReset,
    BarrierState,

    // Queue, JoinableQueue
    Put(ByteBuf, Option<Duration>),
    Get(Option<Duration>),
    Full,
    TaskDone,
    Join(Option<Duration>),

    // A registered type: its own call, as bytes.
    Invoke(ByteBuf),
}

/// The answer to one [`Request`].
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum Reply {
    Done,
    Id(u64),
    Bool(bool),
    Count(u64),
    Item(ByteBuf),
    Maybe(Option<ByteBuf>),
    Items(Vec<ByteBuf>),
    MaybeItems(Vec<Option<ByteBuf>>),
    Pairs(Vec<(ByteBuf, ByteBuf)>),
    /// The tickets of a [`Call::Lend`], one per id.
    Tickets(Vec<u64>),
    /// A barrier's parties, waiting parties, and whether it is broken.
    Barrier(u64, u64, bool),
    Failed(Failure),
}

/// Why the server refused or failed a call; each becomes a
/// [`ManagerError`](super::ManagerError) variant of the same name.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum Failure {
    KeyError,
    IndexError(String),
    AttributeError(String),
    Empty,
    Full,
    BrokenBarrier,
    NotHeld,
    TooManyReleases,
    TooManyTaskDone,
    /// Anything else the server refused: an unknown object, a call the object does not have,
    /// a request that did not decode.
    Refused(String),
}
