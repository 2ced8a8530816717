//! [`Manager`]: a server process that holds objects (a dict, a list, a lock, a queue, ...)
//! and proxies that reach them from any process. Python: `multiprocessing.Manager()`, a
//! `SyncManager`.
//!
//! # How it works
//!
//! [`Manager::new`] starts the server as a daemonic child (under the program's start
//! method, or the one given to [`ManagerBuilder::start_method`]): it listens with a
//! [`Listener`](crate::Listener) at an abstract address, with a random 32-byte authkey.
//! Each method that makes an object (`dict`, `lock`, ...) asks the server for one and
//! returns a proxy: the address, the key and the object's id. A proxy opens its own
//! connection on first use (per process: one inherited through fork is never reused) and
//! makes one request and one answer per method, as CPython's do. Once the handshake is done,
//! the server hands the connection's conversation over to two pipes of its making (passed
//! over the socket): a pipe round trip costs about half of a Unix socket's. The server serves every
//! connection on a thread of its own, so a proxy that waits (a lock's `acquire`, a queue's
//! `get`) holds nobody else up.
//!
//! # Ends and failures
//!
//! - The server ends on [`Manager::shutdown`] or when the `Manager` is dropped, and,
//!   being a daemonic child, when the program that started it ends, even by SIGKILL.
//! - A proxy whose server is gone fails at once with [`ManagerError::ServerGone`] (the
//!   connection reaches end of file), or [`ManagerError::Connect`] when it had no connection
//!   yet; a call that was waiting in the server returns the same way. Nothing hangs.
//! - A client that disconnects (its process ended, was killed, or dropped the proxy) while
//!   holding a manager's `Lock`, `RLock` or `Condition` releases it; a call it left waiting
//!   takes nothing (no queue item is handed to a dead process). CPython keeps both.
//! - The server checks what it receives: a request over [`MAX_REQUEST`] bytes closes that
//!   connection before anything is allocated, one that does not decode is refused with an
//!   answer, an unknown object or a call the object does not have is refused by name; and
//!   no request reaches it before the handshake proved the client holds the key.
//!
//! # References: when an object is freed
//!
//! As in CPython (`incref`/`decref`), an object lives while some process has a proxy of it,
//! and the server frees it when the last one, in every process, is dropped
//! ([`Manager::number_of_objects`] counts them). The server counts processes: each process
//! holds its references to one manager's objects on one connection of its own, counts its
//! proxies (a clone is a count, not a message) and gives the reference up when its last
//! proxy of an object is dropped. A process that ends, even by SIGKILL, gives up all of its
//! references when that connection closes; those of other processes are untouched. A proxy
//! sent to another process (a spawned child's arguments, a `Queue`) carries a reference lent
//! by the sender, which the receiver adopts; a child started by fork gets references of its
//! own to every object its parent held, for as long as it lives. An object found by name
//! ([`Manager::named`]) lives as long as the server. The details, and the limits (a reference
//! lent to a receiver that was killed before it took it stays with the sender until the
//! sender ends), are in `references.rs`.
//!
//! # Cost
//!
//! Each call is a round trip, as in CPython, but over two pipes rather than a Unix socket,
//! and without pickling or Python's dispatch. [`DictProxy::get_many`] and [`DictProxy::update`] (and `extend`,
//! `to_vec`, `items`) carry many items in one round trip. The bench's `manager_*` rows
//! compare them with CPython.

mod codec;
mod link;
mod objects;
mod protocol;
mod proxy;
mod references;
mod registry;
mod server;
mod shared_memory;

use std::fmt;
use std::io;
use std::marker::PhantomData;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_bytes::ByteBuf;

use crate::connection::{Address, ConnectError, Pipe};
use crate::process::{Process, ProcessError, StartMethod};
use link::{Link, Token, encode, unexpected};
pub use protocol::MAX_REQUEST;
use protocol::{Call, Failure, Init, Kind, MANAGER, Reply};
use proxy::sealed::Proxy as _;
pub use proxy::{
    ArrayProxy, BarrierProxy, ConditionProxy, DictProxy, EventProxy, JoinableQueueProxy, ListProxy,
    LockProxy, NamespaceProxy, Proxied, ProxyGuard, QueueProxy, RLockProxy, SemaphoreProxy,
    ValueProxy,
};
pub use registry::{Registry, Shared, SharedProxy};
pub use shared_memory::{SharedMemoryManager, SharedMemoryManagerError};

/// How long a new server may take to say it listens: it is a process start and a bind.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// How long [`Manager::shutdown`] waits for the server to end before it kills it.
const STOP_TIMEOUT: Duration = Duration::from_secs(5);

/// A manager: a server process holding shared objects, and the way to make them. Python:
/// `multiprocessing.Manager()` (a started `SyncManager`); dropping it is leaving `with
/// Manager() as m:`.
///
/// ```
/// use shared::{Manager, Process};
///
/// fn contar(contagem: shared::DictProxy<String, u32>) -> Result<(), shared::ManagerError> {
///     contagem.set(&"filho".into(), &1)
/// }
///
/// let manager = Manager::new()?;
/// let contagem = manager.dict::<String, u32>()?;
/// let mut filho = Process::new(contar, (contagem.clone(),));
/// filho.start()?;
/// filho.join()?;
/// assert_eq!(contagem.get(&"filho".into())?, Some(1));
/// manager.shutdown()?;
/// assert!(matches!(contagem.len(), Err(shared::ManagerError::ServerGone)));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Manager {
    link: Link,
    address: Address,
    /// The server, when this manager started it.
    server: Option<Process>,
    /// The process that made this manager: a forked child that drops a copy of it leaves the
    /// server alone.
    owner: u32,
}

/// How to start a [`Manager`]'s server: where it listens, with which key, under which start
/// method, which types of the user's own it can hold (`R`, a [`Registry`]). Python:
/// `SyncManager(address=..., authkey=...)` before `start()`.
#[must_use]
pub struct ManagerBuilder<R = ()> {
    address: Option<Address>,
    authkey: Option<Vec<u8>>,
    start_method: Option<StartMethod>,
    registry: PhantomData<fn() -> R>,
}

impl<R> fmt::Debug for ManagerBuilder<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ManagerBuilder")
            .field("address", &self.address)
            .field("start_method", &self.start_method)
            .field("registry", &std::any::type_name::<R>())
            .finish_non_exhaustive()
    }
}

impl<R: Registry> ManagerBuilder<R> {
    /// Listens at `address` (a path or `@nome`) instead of a fresh abstract name, so that
    /// other programs can [`Manager::connect`] to it. Python: `address=`.
    pub fn address(mut self, address: impl Into<Address>) -> Self {
        self.address = Some(address.into());
        self
    }

    /// Uses `authkey` instead of 32 random bytes. Python: `authkey=`.
    pub fn authkey(mut self, authkey: &[u8]) -> Self {
        self.authkey = Some(authkey.to_vec());
        self
    }

    /// Starts the server under `method` instead of the program-wide start method. Python:
    /// `get_context(method).Manager()`.
    pub fn start_method(mut self, method: StartMethod) -> Self {
        self.start_method = Some(method);
        self
    }

    /// Lets the server hold the types of `R2` (a tuple of [`Shared`] types), made with
    /// [`Manager::shared`]. Python: `BaseManager.register(typeid, callable)` for each, before
    /// `start()`.
    pub fn register<R2: Registry>(self) -> ManagerBuilder<R2> {
        ManagerBuilder {
            address: self.address,
            authkey: self.authkey,
            start_method: self.start_method,
            registry: PhantomData,
        }
    }

    /// Starts the server and waits until it listens. Python: `start()`.
    ///
    /// # Errors
    /// [`ManagerError::Start`] when the process cannot start (under spawn, a `main` without
    /// [`init`](crate::init)); [`ManagerError::ServerFailed`] when it cannot listen at the
    /// address (another listens there) or did not say it listens within 30 s;
    /// [`ManagerError::Os`].
    pub fn start(self) -> Result<Manager, ManagerError> {
        let authkey = match self.authkey {
            Some(key) => key,
            None => crate::sys::random_bytes::<32>()?.to_vec(),
        };
        let address = self.address.unwrap_or_else(fresh_address);
        let (ready, told) = Pipe::with_duplex(false)?;
        let args = (address.to_string(), ByteBuf::from(authkey.clone()), told);
        let mut server = Process::new(server::serve::<R>, args).daemon(true);
        server.set_name(format!("SyncManager-{}", next_number()));
        if let Some(method) = self.start_method {
            server = server.start_method(method);
        }
        server.start().map_err(ManagerError::Start)?;
        let said = match ready.poll(Some(START_TIMEOUT)) {
            Ok(true) => ready
                .recv::<Result<(), String>>()
                .map_err(|error| error.to_string()),
            Ok(false) => Err(format!("it did not listen within {START_TIMEOUT:?}")),
            Err(error) => Err(error.to_string()),
        };
        if let Err(reason) = said.and_then(|listening| listening) {
            let _ = server.kill();
            let _ = server.join_timeout(STOP_TIMEOUT);
            return Err(ManagerError::ServerFailed(reason));
        }
        let token = Token {
            address: address.to_string(),
            authkey: ByteBuf::from(authkey),
            id: MANAGER,
        };
        Ok(Manager {
            link: Link::new(token),
            address,
            server: Some(server),
            owner: std::process::id(),
        })
    }
}

/// A fresh abstract address: this process's, numbered, with random bytes so that no other
/// program guesses it before the server binds it.
fn fresh_address() -> Address {
    let random = crate::sys::random_bytes::<6>().unwrap_or_default();
    let random: String = random.iter().map(|b| format!("{b:02x}")).collect();
    Address::Abstract(format!(
        "shared-manager-{}-{}-{random}",
        std::process::id(),
        next_number()
    ))
}

fn next_number() -> usize {
    static NEXT: AtomicUsize = AtomicUsize::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

impl Manager {
    /// Starts a manager's server, under the program's start method. Python:
    /// `multiprocessing.Manager()`.
    ///
    /// # Errors
    /// As [`ManagerBuilder::start`].
    pub fn new() -> Result<Manager, ManagerError> {
        Manager::builder().start()
    }

    /// A builder, to choose the address, the authkey or the start method. Python:
    /// `SyncManager(address, authkey)`.
    pub fn builder() -> ManagerBuilder {
        ManagerBuilder {
            address: None,
            authkey: None,
            start_method: None,
            registry: PhantomData,
        }
    }

    /// Connects to a manager started elsewhere (another program, or another process) at
    /// `address`, with its `authkey`. Python: `BaseManager(address, authkey).connect()`.
    /// Dropping the result leaves that server running.
    ///
    /// ```
    /// use shared::{Manager, ManagerError};
    /// let address = format!("@exemplo-gerente-{}", std::process::id());
    /// let owner = Manager::builder().address(address.as_str()).authkey(b"segredo").start()?;
    /// owner.named::<shared::DictProxy<String, i32>>("placar")?.set(&"ana".into(), &3)?;
    ///
    /// let other = Manager::connect(address.as_str(), b"segredo")?;
    /// let placar = other.named::<shared::DictProxy<String, i32>>("placar")?;
    /// assert_eq!(placar.get(&"ana".into())?, Some(3));
    /// let refused = Manager::connect(address.as_str(), b"outra").unwrap_err();
    /// assert!(matches!(refused, ManagerError::Connect(ref e) if e.is_authentication()));
    /// # Ok::<(), ManagerError>(())
    /// ```
    ///
    /// # Errors
    /// [`ManagerError::Connect`] when nobody listens there or the key is wrong.
    pub fn connect(address: impl Into<Address>, authkey: &[u8]) -> Result<Manager, ManagerError> {
        let address = address.into();
        let token = Token {
            address: address.to_string(),
            authkey: ByteBuf::from(authkey.to_vec()),
            id: MANAGER,
        };
        let link = Link::new(token);
        // Connects and authenticates now, so a wrong address or key fails here.
        match link.call(Call::Ping)? {
            Reply::Done => {}
            other => return Err(unexpected(other)),
        }
        Ok(Manager {
            link,
            address,
            server: None,
            owner: std::process::id(),
        })
    }

    /// How many objects the server holds: an object is freed when the last proxy of it, in
    /// every process, is dropped (see "References" in the module's docs). Python:
    /// `manager._number_of_objects()`.
    ///
    /// ```
    /// let manager = shared::Manager::new()?;
    /// let before = manager.number_of_objects()?;
    /// let d = manager.dict::<String, u8>()?;
    /// let copy = d.clone();
    /// drop(d);
    /// assert_eq!(manager.number_of_objects()?, before + 1); // the copy holds it
    /// drop(copy);
    /// assert_eq!(manager.number_of_objects()?, before);
    /// # Ok::<(), shared::ManagerError>(())
    /// ```
    ///
    /// # Errors
    /// [`ManagerError::ServerGone`]; [`ManagerError::Connect`].
    pub fn number_of_objects(&self) -> Result<usize, ManagerError> {
        match self.link.call(Call::NumberOfObjects)? {
            Reply::Count(count) => Ok(usize::try_from(count).unwrap_or(usize::MAX)),
            other => Err(unexpected(other)),
        }
    }

    /// Where the server listens. Python: `manager.address`.
    pub fn address(&self) -> &Address {
        &self.address
    }

    /// The key a client must hold. Python: `manager._authkey`.
    pub fn authkey(&self) -> &[u8] {
        &self.link.token.authkey
    }

    /// The server's PID, when this manager started it. Python: `manager._process.pid`.
    pub fn pid(&self) -> Option<u32> {
        self.server.as_ref().and_then(Process::pid)
    }

    /// Stops the server and waits for it to end (killing it if it has not within 5 s);
    /// every proxy of it fails from then on. Python: `shutdown()`, leaving `with`.
    ///
    /// # Errors
    /// [`ManagerError::Start`] when the server's end cannot be collected. A manager made
    /// by [`connect`](Self::connect) asks the server to stop; then
    /// [`ManagerError::ServerGone`] and the errors of connecting are possible.
    pub fn shutdown(mut self) -> Result<(), ManagerError> {
        self.stop()
    }

    fn stop(&mut self) -> Result<(), ManagerError> {
        let asked = self.link.call(Call::Shutdown);
        let Some(mut server) = self.server.take() else {
            return asked.map(drop);
        };
        server
            .join_timeout(STOP_TIMEOUT)
            .map_err(ManagerError::Start)?;
        if server.exitcode().is_none() {
            server.kill().map_err(ManagerError::Start)?;
            server.join().map_err(ManagerError::Start)?;
        }
        Ok(())
    }

    fn create<P: Proxied>(&self, init: Init) -> Result<P, ManagerError> {
        let link = self.link.made(Call::Create(P::kind(), init))?;
        Ok(P::from_link(link))
    }

    /// The object registered under `name` in the server, made (empty) if there is none: a
    /// way for processes that share no proxy (another program) to find one. Python: a
    /// callable registered with `BaseManager.register`, such as `get_queue`. Made this way,
    /// a `Semaphore` starts with no unit and an `Array` with no item; a `Value` or a
    /// `Barrier` has no empty form (the server refuses it).
    ///
    /// # Errors
    /// [`ManagerError::Refused`] when `name` names an object of another kind, or the kind
    /// has no empty form; [`ManagerError::ServerGone`]; [`ManagerError::Connect`].
    pub fn named<P: Proxied>(&self, name: &str) -> Result<P, ManagerError> {
        let link = self
            .link
            .made(Call::Named(name.to_owned(), P::kind(), Init::default()))?;
        Ok(P::from_link(link))
    }

    /// A new object of the registered type `T`. Python: `manager.typeid()` for a type
    /// registered with `BaseManager.register`.
    ///
    /// # Errors
    /// [`ManagerError::Refused`] when the server was not started with `T` in its
    /// [`Registry`] ([`ManagerBuilder::register`]); [`ManagerError::ServerGone`];
    /// [`ManagerError::Connect`].
    pub fn shared<T: Shared>(&self) -> Result<SharedProxy<T>, ManagerError> {
        let link = self.link.made(Call::CreateUser(T::TYPE_ID.to_owned()))?;
        Ok(SharedProxy::new(link))
    }

    /// A new empty dict. Python: `manager.dict()`.
    ///
    /// # Errors
    /// [`ManagerError::ServerGone`]; [`ManagerError::Connect`].
    pub fn dict<K, V>(&self) -> Result<DictProxy<K, V>, ManagerError> {
        self.create(Init::default())
    }

    /// A new empty list. Python: `manager.list()`.
    ///
    /// # Errors
    /// As [`dict`](Self::dict).
    pub fn list<T>(&self) -> Result<ListProxy<T>, ManagerError> {
        self.create(Init::default())
    }

    /// A new array holding `items`, whose length never changes. Python:
    /// `manager.Array(typecode, items)`.
    ///
    /// # Errors
    /// [`ManagerError::Encode`]; as [`dict`](Self::dict).
    pub fn array<T: Serialize>(&self, items: &[T]) -> Result<ArrayProxy<T>, ManagerError> {
        let items = items.iter().map(encode).collect::<Result<_, _>>()?;
        self.create(Init { items, number: 0 })
    }

    /// A new namespace. Python: `manager.Namespace()`.
    ///
    /// # Errors
    /// As [`dict`](Self::dict).
    pub fn namespace(&self) -> Result<NamespaceProxy, ManagerError> {
        self.create(Init::default())
    }

    /// A new value. Python: `manager.Value(typecode, value)`.
    ///
    /// # Errors
    /// [`ManagerError::Encode`]; as [`dict`](Self::dict).
    pub fn value<T: Serialize + DeserializeOwned>(
        &self,
        value: &T,
    ) -> Result<ValueProxy<T>, ManagerError> {
        self.create(Init {
            items: vec![encode(value)?],
            number: 0,
        })
    }

    /// A new lock. Python: `manager.Lock()`.
    ///
    /// # Errors
    /// As [`dict`](Self::dict).
    pub fn lock(&self) -> Result<LockProxy, ManagerError> {
        self.create(Init::default())
    }

    /// A new re-entrant lock. Python: `manager.RLock()`.
    ///
    /// # Errors
    /// As [`dict`](Self::dict).
    pub fn rlock(&self) -> Result<RLockProxy, ManagerError> {
        self.create(Init::default())
    }

    /// A new semaphore with `value` units. Python: `manager.Semaphore(value)`.
    ///
    /// # Errors
    /// As [`dict`](Self::dict).
    pub fn semaphore(&self, value: u64) -> Result<SemaphoreProxy, ManagerError> {
        self.create(Init {
            items: Vec::new(),
            number: value,
        })
    }

    /// A new semaphore that refuses a release beyond `value` units. Python:
    /// `manager.BoundedSemaphore(value)`.
    ///
    /// # Errors
    /// As [`dict`](Self::dict).
    pub fn bounded_semaphore(&self, value: u64) -> Result<SemaphoreProxy, ManagerError> {
        let link = self.link.made(Call::Create(
            Kind::BoundedSemaphore,
            Init {
                items: Vec::new(),
                number: value,
            },
        ))?;
        Ok(SemaphoreProxy::from_link(link))
    }

    /// A new event. Python: `manager.Event()`.
    ///
    /// # Errors
    /// As [`dict`](Self::dict).
    pub fn event(&self) -> Result<EventProxy, ManagerError> {
        self.create(Init::default())
    }

    /// A new condition, over a re-entrant lock of its own. Python: `manager.Condition()`.
    ///
    /// # Errors
    /// As [`dict`](Self::dict).
    pub fn condition(&self) -> Result<ConditionProxy, ManagerError> {
        self.create(Init::default())
    }

    /// A new barrier for `parties` parties. Python: `manager.Barrier(parties)`.
    ///
    /// # Errors
    /// [`ManagerError::Refused`] for 0 parties; as [`dict`](Self::dict).
    pub fn barrier(&self, parties: u64) -> Result<BarrierProxy, ManagerError> {
        self.create(Init {
            items: Vec::new(),
            number: parties,
        })
    }

    /// A new queue holding at most `maxsize` items (0: no limit). Python:
    /// `manager.Queue(maxsize)`.
    ///
    /// # Errors
    /// As [`dict`](Self::dict).
    pub fn queue<T>(&self, maxsize: u64) -> Result<QueueProxy<T>, ManagerError> {
        self.create(Init {
            items: Vec::new(),
            number: maxsize,
        })
    }

    /// A new joinable queue holding at most `maxsize` items (0: no limit). Python:
    /// `manager.JoinableQueue(maxsize)`.
    ///
    /// # Errors
    /// As [`dict`](Self::dict).
    pub fn joinable_queue<T>(&self, maxsize: u64) -> Result<JoinableQueueProxy<T>, ManagerError> {
        self.create(Init {
            items: Vec::new(),
            number: maxsize,
        })
    }
}

impl Drop for Manager {
    fn drop(&mut self) {
        if self.server.is_some() && self.owner == std::process::id() {
            // Nothing to report from a drop: at worst the server was killed.
            let _ = self.stop();
        }
    }
}

impl fmt::Debug for Manager {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Manager")
            .field("address", &self.address)
            .field("pid", &self.pid())
            .finish()
    }
}

/// Why a [`Manager`] or one of its proxies failed. Python: the exception the proxy's call
/// re-raises (`KeyError`, `queue.Empty`, ...), or the connection's (`EOFError`,
/// `ConnectionRefusedError`, `AuthenticationError`).
///
/// ```
/// use shared::ManagerError;
/// assert_eq!(ManagerError::KeyError.to_string(), "key not found");
/// assert_eq!(
///     ManagerError::ServerGone.to_string(),
///     "the manager's server is gone (it ended or was killed)"
/// );
/// ```
#[non_exhaustive]
pub enum ManagerError {
    /// The server process could not be started, or its end collected.
    Start(ProcessError),
    /// The server failed to start listening (address in use, too slow).
    ServerFailed(String),
    /// The manager could not be reached or refused the key. Python: `ConnectionRefusedError`,
    /// `AuthenticationError`.
    Connect(ConnectError),
    /// The server closed the connection: it ended or was killed. Python: `EOFError`.
    ServerGone,
    /// A dict has no such key. Python: `KeyError`.
    KeyError,
    /// An index out of range. Python: `IndexError`.
    IndexError(String),
    /// A namespace has no such attribute. Python: `AttributeError`.
    AttributeError(String),
    /// No item came in time. Python: `queue.Empty`.
    Empty,
    /// No room came in time. Python: `queue.Full`.
    Full,
    /// The barrier is broken. Python: `threading.BrokenBarrierError`.
    BrokenBarrier,
    /// A release of a lock this proxy does not hold. Python: `RuntimeError: cannot release
    /// un-acquired lock`.
    NotHeld,
    /// A bounded semaphore released beyond its start. Python: `ValueError: Semaphore
    /// released too many times`.
    TooManyReleases,
    /// `task_done` beyond the items put. Python: `ValueError: task_done() called too many
    /// times`.
    TooManyTaskDone,
    /// The server refused the call: an unknown object, a call its kind does not have, a
    /// name of another kind. Python: `RemoteError`.
    Refused(String),
    /// A value that does not serialize.
    Encode(String),
    /// A value that does not decode as the proxy's type, or an answer of the wrong shape.
    Decode(String),
    /// The system refused.
    Os(io::Error),
}

impl fmt::Display for ManagerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ManagerError::Start(_) => f.write_str("cannot run the manager's server"),
            ManagerError::ServerFailed(what) => write!(f, "the manager's server failed: {what}"),
            ManagerError::Connect(_) => f.write_str("the manager could not be reached"),
            ManagerError::ServerGone => {
                f.write_str("the manager's server is gone (it ended or was killed)")
            }
            ManagerError::KeyError => f.write_str("key not found"),
            ManagerError::IndexError(what) => f.write_str(what),
            ManagerError::AttributeError(name) => {
                write!(f, "the namespace has no attribute {name:?}")
            }
            ManagerError::Empty => f.write_str("the queue is empty"),
            ManagerError::Full => f.write_str("the queue is full"),
            ManagerError::BrokenBarrier => f.write_str("the barrier is broken"),
            ManagerError::NotHeld => f.write_str("cannot release un-acquired lock"),
            ManagerError::TooManyReleases => f.write_str("semaphore released too many times"),
            ManagerError::TooManyTaskDone => f.write_str("task_done() called too many times"),
            ManagerError::Refused(what) => write!(f, "the manager refused the call: {what}"),
            ManagerError::Encode(what) => write!(f, "cannot encode {what}"),
            ManagerError::Decode(what) => write!(f, "cannot decode: {what}"),
            ManagerError::Os(_) => f.write_str("the manager's connection failed"),
        }
    }
}

impl std::error::Error for ManagerError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ManagerError::Start(error) => Some(error),
            ManagerError::Connect(error) => Some(error),
            ManagerError::Os(error) => Some(error),
            _ => None,
        }
    }
}

crate::debug_as_display!(ManagerError);

impl From<io::Error> for ManagerError {
    fn from(error: io::Error) -> Self {
        ManagerError::Os(error)
    }
}

impl From<Failure> for ManagerError {
    fn from(failure: Failure) -> Self {
        match failure {
            Failure::KeyError => ManagerError::KeyError,
            Failure::IndexError(what) => ManagerError::IndexError(what),
            Failure::AttributeError(name) => ManagerError::AttributeError(name),
            Failure::Empty => ManagerError::Empty,
            Failure::Full => ManagerError::Full,
            Failure::BrokenBarrier => ManagerError::BrokenBarrier,
            Failure::NotHeld => ManagerError::NotHeld,
            Failure::TooManyReleases => ManagerError::TooManyReleases,
            Failure::TooManyTaskDone => ManagerError::TooManyTaskDone,
            Failure::Refused(what) => ManagerError::Refused(what),
        }
    }
}
