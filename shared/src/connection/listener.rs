//! [`Listener`] and [`Client`]: connections between unrelated processes over a Unix stream
//! socket with a name, Python's `multiprocessing.connection.Listener` and `Client`.
//!
//! The name is an [`Address`]: a path in the filesystem, or a name in Linux's abstract
//! namespace (`@nome`), which has no file. The sockets come from the `interprocess` crate's
//! local sockets; the messages are those of a [`Pipe`](super::Pipe), with an optional
//! challenge–response authentication first (see `auth`).
//!
//! # The socket file
//!
//! A path listener creates a socket file. Closing or dropping the [`Listener`] removes it,
//! but only in the process that bound it (a forked child that drops a copy leaves it), and
//! only if the path still names that same file (another listener may have taken the path
//! since). A process killed by a signal cannot remove anything, so its file stays; the next
//! [`Listener::bind`] to that path replaces it, once it knows that nobody listens there:
//!
//! - every path listener also holds an abstract name made of its file's device and inode
//!   numbers, which the kernel frees when the listener's last descriptor closes, even after
//!   SIGKILL. A bind that finds that name still held leaves the file alone, without touching
//!   the live listener;
//! - a socket file with no such name held (left by a killed listener of this crate, or made
//!   by another program) is tried with a connection: only a refused connection (nobody
//!   accepts there) makes it stale. A live listener of another program sees that connection
//!   open and close.
//!
//! A file at the path that is not a socket is never removed: bind fails with `AddrInUse`.
//! An abstract address leaves nothing behind in any case: the kernel frees the name when the
//! last descriptor closes. That is why the lessons use one.
//!
//! # Handshakes side by side
//!
//! CPython's `accept()` runs each connection's handshake in turn, on the accepting thread: a
//! peer that connects and then stays silent, or trickles its answer a byte at a time, holds
//! every honest client behind it. Here [`Listener::accept`] takes connections as they come
//! and runs each handshake on a thread of its own, with one deadline for the whole exchange
//! ([`HANDSHAKE_TIMEOUT`](super::HANDSHAKE_TIMEOUT)); `accept` returns whichever handshake
//! finishes first. At most [`MAX_HANDSHAKES`] run at once; further connections wait in the
//! backlog, where they cost the process nothing.

use std::ffi::OsStr;
use std::fmt;
use std::fs;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex, PoisonError};

use interprocess::local_socket::traits::{Listener as _, Stream as _};
use interprocess::local_socket::{
    GenericFilePath, GenericNamespaced, ListenerOptions, Name, Stream, ToFsName, ToNsName,
};
use interprocess::os::unix::uds_local_socket::Listener as UdsListener;

use super::{AuthenticationError, Connection, auth};

/// How many handshakes a [`Listener`] runs at once; further connections wait in the backlog
/// until one of them ends (by its deadline at the latest).
pub const MAX_HANDSHAKES: usize = 64;
use crate::sys;

/// Where a [`Listener`] listens and a [`Client`] connects. Python: the `address` of a
/// `Listener` of family `'AF_UNIX'`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Address {
    /// A socket file at this path.
    Path(PathBuf),
    /// A name in Linux's abstract namespace: no file, freed when the listener closes or its
    /// process dies. Written `@nome` (Python writes `'\0nome'`). It has no permissions:
    /// any process in the same network namespace can connect, so give the listener an
    /// `authkey`.
    Abstract(String),
}

impl Address {
    /// Reads `@nome` (or `\0nome`, as Python writes it) as an abstract name, anything else as
    /// a path.
    ///
    /// ```
    /// use shared::Address;
    /// assert_eq!(Address::parse("@conversa"), Address::Abstract("conversa".into()));
    /// assert_eq!(Address::parse("/tmp/c.sock"), Address::Path("/tmp/c.sock".into()));
    /// ```
    pub fn parse(text: &str) -> Address {
        match text.strip_prefix('@').or_else(|| text.strip_prefix('\0')) {
            Some(name) => Address::Abstract(name.to_owned()),
            None => Address::Path(PathBuf::from(text)),
        }
    }

    fn name(&self) -> io::Result<Name<'_>> {
        match self {
            Address::Path(path) => path.as_os_str().to_fs_name::<GenericFilePath>(),
            Address::Abstract(name) => OsStr::new(name).to_ns_name::<GenericNamespaced>(),
        }
    }
}

impl From<&str> for Address {
    fn from(text: &str) -> Address {
        Address::parse(text)
    }
}

impl From<&Path> for Address {
    fn from(path: &Path) -> Address {
        Address::Path(path.to_owned())
    }
}

impl From<PathBuf> for Address {
    fn from(path: PathBuf) -> Address {
        Address::Path(path)
    }
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Address::Path(path) => write!(f, "{}", path.display()),
            Address::Abstract(name) => write!(f, "@{name}"),
        }
    }
}

/// A socket with a name that accepts connections. Python:
/// `multiprocessing.connection.Listener(address, backlog=..., authkey=...)`.
///
/// ```
/// use shared::{Client, Listener};
/// let address = format!("@exemplo-{}", std::process::id());
/// let listener = Listener::bind(address.as_str(), 1, Some(b"segredo"))?;
/// let client = std::thread::spawn(move || -> Result<String, Box<dyn std::error::Error + Send + Sync>> {
///     let connection = Client::connect(address.as_str(), Some(b"segredo"))?;
///     Ok(connection.recv::<String>()?)
/// });
/// listener.accept()?.send("olá")?;
/// assert_eq!(client.join().unwrap().unwrap(), "olá");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Listener {
    socket: UdsListener,
    address: Address,
    authkey: Option<Arc<[u8]>>,
    /// The socket file this process created, removed on close.
    file: Option<SocketFile>,
    /// The handshakes under way; held by the one `accept` running.
    handshakes: Mutex<Option<Handshakes>>,
}

/// What one handshake ends with.
type Handshaken = Result<Connection, AuthenticationError>;

/// The handshakes a listener runs on their own threads, and how their ends reach `accept`.
struct Handshakes {
    /// The process whose threads these are: a forked child, which has none of them, starts
    /// afresh.
    owner: u32,
    finished: Receiver<Handshaken>,
    report: Sender<Handshaken>,
    /// A byte arrives here after each result is sent, so `accept` can wait for a finished
    /// handshake and a new connection with one `poll`.
    woken: fs::File,
    wake: Arc<fs::File>,
    under_way: usize,
}

/// A socket file a listener created: removed on close only by the process that created it,
/// and only while the path still names it.
struct SocketFile {
    path: PathBuf,
    device: u64,
    inode: u64,
    creator: u32,
    /// Holds the file's liveness name while the listener lives (see the module
    /// documentation); `None` if another socket held it already.
    _alive: Option<UdsListener>,
}

impl Listener {
    /// Listens at `address`, letting up to `backlog` connections wait for
    /// [`accept`](Self::accept); with an `authkey`, every connection must prove it holds the
    /// same key before `accept` returns it. Python: `Listener(address, backlog=backlog,
    /// authkey=authkey)`.
    ///
    /// A socket file left at the path by a listener that was killed is replaced (see the
    /// module documentation).
    ///
    /// # Errors
    /// `AddrInUse` when someone listens at the address, or a path names a file that is not
    /// a socket; `InvalidInput` for a name too long (108 bytes) or with a NUL; the system's
    /// refusal otherwise (a directory that does not exist or cannot be written).
    pub fn bind(
        address: impl Into<Address>,
        backlog: u32,
        authkey: Option<&[u8]>,
    ) -> io::Result<Listener> {
        let address = address.into();
        let (socket, file) = match &address {
            Address::Path(path) => {
                let (socket, file) = listen_at_path(path)?;
                (socket, Some(file))
            }
            Address::Abstract(_) => (listen(&address)?, None),
        };
        let listener = Listener {
            socket,
            address,
            authkey: authkey.map(Arc::from),
            file,
            handshakes: Mutex::new(None),
        };
        // Now that `listener` owns the file, a failure below removes it.
        sys::socket::set_backlog(listener.socket.as_fd(), backlog.max(1))?;
        Ok(listener)
    }

    /// Waits for a connection and returns its end; with an `authkey`, after the client
    /// proved it holds the key and learned that this listener does. Python: `accept()`.
    ///
    /// Handshakes run side by side, each on its own thread (see the module documentation):
    /// `accept` returns the first to finish, so a silent or slow client never delays an
    /// honest one. A failed handshake is returned, as an error, by the `accept` under way
    /// when it fails, or by the next one.
    ///
    /// # Errors
    /// [`ConnectError::Authentication`] when a client failed the handshake (wrong key, no
    /// key, another protocol, not done within [`HANDSHAKE_TIMEOUT`](super::auth::HANDSHAKE_TIMEOUT));
    /// that connection is closed, and the listener goes on. [`ConnectError::Os`] when the
    /// system refused.
    pub fn accept(&self) -> Result<Connection, ConnectError> {
        let Some(key) = &self.authkey else {
            return Ok(self.accept_raw()?);
        };
        let mut handshakes = self
            .handshakes
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let pid = std::process::id();
        let handshakes = match &mut *handshakes {
            Some(handshakes) if handshakes.owner == pid => handshakes,
            slot => slot.insert(Handshakes::new(pid)?),
        };
        loop {
            if let Ok(result) = handshakes.finished.try_recv() {
                handshakes.under_way -= 1;
                return Ok(result?);
            }
            let room = handshakes.under_way < MAX_HANDSHAKES;
            let mut fds = vec![handshakes.woken.as_fd()];
            if room {
                fds.push(self.socket.as_fd());
            }
            let ready = sys::fd::wait_any_readable(&fds, None)?;
            if ready[0] {
                // Only a hint: the results themselves are in the channel.
                let _ = sys::fd::read_some(handshakes.woken.as_fd(), &mut [0; 64]);
            }
            if room && ready[1] {
                handshakes.start(self.accept_raw()?, Arc::clone(key))?;
            }
        }
    }

    /// The next connection, before any handshake.
    fn accept_raw(&self) -> io::Result<Connection> {
        let stream = self.socket.accept()?;
        Ok(Connection::from_socket(OwnedFd::from(stream)))
    }

    /// Where this listener listens. Python: `address`.
    pub fn address(&self) -> &Address {
        &self.address
    }

    /// Stops listening and removes the socket file. Python: `close()`. Dropping the listener
    /// does the same.
    pub fn close(self) {}
}

impl Drop for Listener {
    fn drop(&mut self) {
        if let Some(file) = &self.file {
            file.remove_if_still_ours();
        }
    }
}

impl AsFd for Listener {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.socket.as_fd()
    }
}

impl fmt::Debug for Listener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Listener")
            .field("address", &self.address)
            .field("authenticates", &self.authkey.is_some())
            .finish()
    }
}

impl Handshakes {
    fn new(owner: u32) -> io::Result<Handshakes> {
        let (woken, wake) = sys::fd::pipe()?;
        let (report, finished) = mpsc::channel();
        Ok(Handshakes {
            owner,
            finished,
            report,
            woken: fs::File::from(woken),
            wake: Arc::new(fs::File::from(wake)),
            under_way: 0,
        })
    }

    /// Runs the listener's side of the handshake on `connection` on a thread of its own,
    /// which reports its end to `accept`.
    fn start(&mut self, mut connection: Connection, key: Arc<[u8]>) -> io::Result<()> {
        let report = self.report.clone();
        let wake = Arc::clone(&self.wake);
        std::thread::Builder::new()
            .name("shared-handshake".into())
            // A handshake needs little stack; many may run at once.
            .stack_size(64 * 1024)
            .spawn(move || {
                crate::timeline::leave_out_this_thread();
                let result = auth::as_listener(&mut connection, &key).map(|()| connection);
                // Both fail only once the listener is gone: then nobody waits for the result,
                // and dropping it closes the connection.
                if report.send(result).is_ok() {
                    let _ = sys::fd::write_all(wake.as_fd(), &[1]);
                }
            })?;
        self.under_way += 1;
        Ok(())
    }
}

impl SocketFile {
    /// Takes charge of the socket file just created at `path`.
    fn claim(path: &Path) -> io::Result<SocketFile> {
        let metadata = fs::symlink_metadata(path)?;
        let (device, inode) = (metadata.dev(), metadata.ino());
        Ok(SocketFile {
            path: path.to_owned(),
            device,
            inode,
            creator: std::process::id(),
            _alive: listen(&liveness_name(device, inode)).ok(),
        })
    }

    fn remove_if_still_ours(&self) {
        if self.creator != std::process::id() {
            return;
        }
        let same = fs::symlink_metadata(&self.path)
            .is_ok_and(|m| (m.dev(), m.ino()) == (self.device, self.inode));
        if same {
            // Nothing to report from a drop: at worst the file stays, as after a kill.
            let _ = fs::remove_file(&self.path);
        }
    }
}

/// The abstract name a path listener holds while it lives: its file's identity.
fn liveness_name(device: u64, inode: u64) -> Address {
    Address::Abstract(format!("shared-listener-file-{device:x}-{inode:x}"))
}

fn listen(address: &Address) -> io::Result<UdsListener> {
    ListenerOptions::new()
        .name(address.name()?)
        // This module removes socket files itself, with the checks above.
        .reclaim_name(false)
        .create_sync_as::<UdsListener>()
}

/// Binds and listens at `path`; a socket file there that nobody listens on (left by a
/// killed listener) is replaced, once.
fn listen_at_path(path: &Path) -> io::Result<(UdsListener, SocketFile)> {
    let address = Address::Path(path.to_owned());
    let socket = match listen(&address) {
        Err(error) if error.kind() == io::ErrorKind::AddrInUse => {
            // Held until the new socket is bound: another process replacing the same stale
            // file at the same moment cannot claim it too, and so leaves it to this one.
            let Some(_stale) = claim_if_stale(path) else {
                return Err(error);
            };
            fs::remove_file(path)?;
            listen(&address)?
        }
        result => result?,
    };
    match SocketFile::claim(path) {
        Ok(file) => Ok((socket, file)),
        Err(error) => {
            let _ = fs::remove_file(path);
            Err(error)
        }
    }
}

/// If `path` is a socket file that nobody listens on (no listener of this crate holds its
/// liveness name, and a connection to it is refused), its liveness name, now held by this
/// process.
fn claim_if_stale(path: &Path) -> Option<UdsListener> {
    let metadata = fs::symlink_metadata(path).ok()?;
    if !metadata.file_type().is_socket() {
        return None;
    }
    // A failure to take the name means a live listener holds it.
    let claim = listen(&liveness_name(metadata.dev(), metadata.ino())).ok()?;
    let address = Address::Path(path.to_owned());
    match Stream::connect(address.name().ok()?) {
        Err(error) if error.kind() == io::ErrorKind::ConnectionRefused => Some(claim),
        _ => None,
    }
}

fn stream_fd(stream: Stream) -> OwnedFd {
    match stream {
        Stream::UdSocket(stream) => OwnedFd::from(stream),
    }
}

/// Connects to a [`Listener`]. Python: `multiprocessing.connection.Client`.
#[derive(Debug)]
pub enum Client {}

impl Client {
    /// Connects to the listener at `address` and returns this side's end; with an
    /// `authkey`, after proving it holds the key and checking that the listener does.
    /// Python: `Client(address, authkey=authkey)`.
    ///
    /// ```
    /// use shared::{Client, ConnectError};
    /// let refused = Client::connect("@ninguem-escuta-aqui", None).unwrap_err();
    /// assert!(matches!(refused, ConnectError::Os(_)), "{refused}");
    /// ```
    ///
    /// # Errors
    /// [`ConnectError::Os`] when nobody listens at `address` (`ConnectionRefused`, or
    /// `NotFound` for a path with no file); [`ConnectError::Authentication`] when the
    /// handshake failed (see [`AuthenticationError`]).
    #[allow(
        clippy::new_ret_no_self,
        reason = "Python's Client() returns a connection"
    )]
    pub fn connect(
        address: impl Into<Address>,
        authkey: Option<&[u8]>,
    ) -> Result<Connection, ConnectError> {
        let stream = Stream::connect(address.into().name()?)?;
        let mut connection = Connection::from_socket(stream_fd(stream));
        if let Some(key) = authkey {
            auth::as_client(&mut connection, key)?;
        }
        Ok(connection)
    }
}

/// The one byte that carries a connection's pipes from the listener's side to the client's.
const PIPES_MESSAGE: &[u8] = b"p";

/// Moving a socket connection's conversation onto two pipes: a pipe round trip costs about
/// half of a Unix socket's here (the bench's `pipe_raw` row against a socket pair), and a
/// manager's proxy makes one per call. The listener's side makes both pipes (its process
/// never forks, so no copy of its write end can outlive it and hide its end from the
/// client), passes the client its two ends over the socket (`SCM_RIGHTS`) and keeps the
/// other two. End of file then works as on the socket: each side reads it once every copy
/// of the other side's write end is closed.
impl Connection {
    /// The listener's side: makes the two pipes, sends the peer its ends, and returns this
    /// side's connection over the other two (with this connection's message limit). The peer
    /// must be waiting in [`receive_pipes`](Self::receive_pipes), having sent nothing more.
    ///
    /// # Errors
    /// `InvalidInput` when this is not a socket connection, or bytes of the peer were read
    /// ahead (it did not wait); the system's (no descriptors left, the peer gone).
    pub(crate) fn move_to_pipes(&self) -> io::Result<Connection> {
        let socket = self.socket_for_pipes()?;
        let (request_read, request_write) = sys::fd::pipe()?;
        let (reply_read, reply_write) = sys::fd::pipe()?;
        let theirs = [sys::fd::raw(&request_write), sys::fd::raw(&reply_read)];
        sys::passing::send(socket, PIPES_MESSAGE, &theirs)?;
        // Only the peer holds these now: its end of file is ours, and ours is its.
        drop((request_write, reply_read));
        let mut moved = Connection::from_pipes(Some(request_read), Some(reply_write));
        moved.max_message_size = self.max_message_size;
        Ok(moved)
    }

    /// The client's side, after asking the listener's side for pipes: waits up to
    /// [`HANDSHAKE_TIMEOUT`](super::HANDSHAKE_TIMEOUT) for them and returns the connection
    /// over them (with this connection's message limit). What arrives is checked: one
    /// message, two descriptors, a pipe's write end then a pipe's read end.
    ///
    /// # Errors
    /// `InvalidInput` as in [`move_to_pipes`](Self::move_to_pipes); `TimedOut`;
    /// `UnexpectedEof` when the peer closed instead; `InvalidData` for anything else that
    /// arrived (a peer that does not move to pipes).
    pub(crate) fn receive_pipes(&self) -> io::Result<Connection> {
        let socket = self.socket_for_pipes()?;
        if !sys::fd::wait_readable(socket, Some(super::HANDSHAKE_TIMEOUT))? {
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "the listener's side did not send the pipes in time",
            ));
        }
        let Some(received) = sys::passing::receive(socket, PIPES_MESSAGE.len(), true)? else {
            return Err(io::ErrorKind::UnexpectedEof.into());
        };
        let invalid = |what: &str| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("expected the pipes of a connection, got {what}"),
            )
        };
        if received.truncated || received.bytes != PIPES_MESSAGE {
            return Err(invalid(&format!("the bytes {:?}", received.bytes)));
        }
        let [write, read]: [OwnedFd; 2] = received
            .fds
            .try_into()
            .map_err(|fds: Vec<OwnedFd>| invalid(&format!("{} descriptors", fds.len())))?;
        let is_pipe_end = |fd: &OwnedFd, access| -> io::Result<bool> {
            Ok(sys::fd::kind(fd.as_fd())? == sys::fd::Kind::Fifo
                && sys::fd::access(fd.as_fd())? == access)
        };
        if !is_pipe_end(&write, sys::fd::Access::Write)?
            || !is_pipe_end(&read, sys::fd::Access::Read)?
        {
            return Err(invalid(
                "descriptors that are not a pipe's write and read ends",
            ));
        }
        let mut moved = Connection::from_pipes(Some(read), Some(write));
        moved.max_message_size = self.max_message_size;
        Ok(moved)
    }

    /// The socket, when nothing of the peer was read ahead of the pipes' message.
    fn socket_for_pipes(&self) -> io::Result<BorrowedFd<'_>> {
        match &self.channel {
            super::Channel::Socket(socket) if !self.has_read_ahead() => Ok(socket.as_fd()),
            super::Channel::Socket(_) => Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "bytes were read ahead of the pipes' message",
            )),
            super::Channel::Pipes { .. } => Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "only a socket connection moves to pipes",
            )),
        }
    }
}

/// Why [`Listener::accept`] or [`Client::connect`] failed.
///
/// `Debug`, what a `main` returning it prints, gives its message and then each cause once:
///
/// ```
/// use shared::{AuthenticationError, ConnectError};
///
/// let error = ConnectError::Authentication(AuthenticationError::Rejected);
/// assert_eq!(error.to_string(), "authentication error");
/// assert_eq!(format!("{error:?}"), "authentication error: digest sent was rejected");
/// ```
#[non_exhaustive]
pub enum ConnectError {
    /// The peer did not authenticate. Python: `AuthenticationError`.
    Authentication(AuthenticationError),
    /// The system refused: nobody listens at the address, or another failure. Python:
    /// `OSError` (`ConnectionRefusedError`, `FileNotFoundError`).
    Os(io::Error),
}

impl ConnectError {
    /// Whether the peer failed to authenticate (Python's `AuthenticationError`).
    pub fn is_authentication(&self) -> bool {
        matches!(self, ConnectError::Authentication(_))
    }
}

impl fmt::Display for ConnectError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConnectError::Authentication(_) => f.write_str("authentication error"),
            ConnectError::Os(_) => f.write_str("cannot connect"),
        }
    }
}

impl std::error::Error for ConnectError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ConnectError::Authentication(error) => Some(error),
            ConnectError::Os(error) => Some(error),
        }
    }
}

crate::debug_as_display!(ConnectError);

impl From<io::Error> for ConnectError {
    fn from(error: io::Error) -> Self {
        ConnectError::Os(error)
    }
}

impl From<AuthenticationError> for ConnectError {
    fn from(error: AuthenticationError) -> Self {
        ConnectError::Authentication(error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A listener and a connected client, without a key.
    fn pair(name: &str) -> (Connection, Connection) {
        let address = Address::Abstract(format!("shared-pipes-{name}-{}", std::process::id()));
        let listener = Listener::bind(address.clone(), 1, None).expect("bind");
        let client = Client::connect(address, None).expect("connect");
        (listener.accept().expect("accept"), client)
    }

    #[test]
    fn a_connection_moved_to_pipes_carries_both_ways_and_sees_the_other_side_leave() {
        let (served, client) = pair("both-ways");
        let served = served.move_to_pipes().expect("move");
        let client = client.receive_pipes().expect("receive");
        client.send(&"pedido").unwrap();
        assert_eq!(served.recv::<String>().unwrap(), "pedido");
        served.send(&42_u32).unwrap();
        assert_eq!(client.recv::<u32>().unwrap(), 42);
        // The listener's side kept no copy of the client's ends, nor the client of its.
        drop(served);
        assert!(matches!(
            client.recv::<u32>(),
            Err(super::super::RecvError::Closed)
        ));
    }

    #[test]
    fn a_client_refuses_anything_but_pipes() {
        let (served, client) = pair("refuses");
        served.send(&"não são canos").unwrap();
        let error = client.receive_pipes().unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::InvalidData, "{error}");
        assert!(error.to_string().contains("expected the pipes"), "{error}");
    }

    #[test]
    fn a_client_whose_peer_left_is_told_so() {
        let (served, client) = pair("left");
        drop(served);
        let error = client.receive_pipes().unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::UnexpectedEof, "{error}");
    }

    #[test]
    fn pipes_refuse_to_move_again() {
        let (served, client) = pair("again");
        let moved = served.move_to_pipes().expect("move");
        let _client = client.receive_pipes().expect("receive");
        let error = moved.move_to_pipes().unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::InvalidInput, "{error}");
    }
}
