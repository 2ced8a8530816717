//! The manager's server: a process that holds the objects and serves each client connection
//! on a thread of its own (as CPython's `multiprocessing.managers.Server` does).
//!
//! It listens with the manager's authkey, so a client proves it holds the key before it can
//! send a request, and a silent or slow client never holds another's connection (see
//! [`Listener::accept`]). It ends on a `shutdown` request; started by a [`Manager`] it is a
//! daemonic child, so it also ends when the program that started it ends, SIGKILL included.
//!
//! [`Manager`]: super::Manager

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Sender};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::Duration;

use serde_bytes::ByteBuf;

use super::ManagerError;
use super::objects::{Caller, Object, Stop};
use super::protocol::{Call, Failure, Init, Kind, MANAGER, MAX_REQUEST, Reply, Request};
use super::registry::{Registry, Served};
use crate::connection::{Address, ConnectError, Connection, Listener, RecvError};

/// How many connections may wait to be accepted.
const BACKLOG: u32 = 64;

/// The objects of one manager, and how to stop it.
struct Server {
    objects: RwLock<HashMap<u64, Arc<Object>>>,
    names: Mutex<HashMap<String, u64>>,
    next_id: AtomicU64,
    stop: Mutex<Sender<()>>,
    /// Makes an object of a registered type, by its type id.
    make: fn(&str) -> Option<Box<dyn Served>>,
}

/// The server process's target: listens at `address` with `authkey`, tells `ready` whether
/// it could (`Err` with the reason), and serves until a client asks it to shut down.
///
/// # Errors
/// [`ManagerError::ServerFailed`] when it cannot listen at `address`.
pub(super) fn serve<R: Registry>(
    address: String,
    authkey: ByteBuf,
    ready: Connection,
) -> Result<(), ManagerError> {
    let listener = match Listener::bind(Address::parse(&address), BACKLOG, Some(&authkey)) {
        Ok(listener) => listener,
        Err(error) => {
            let reason = format!("cannot listen at {address}: {error}");
            // If the owner is gone too, nobody is left to tell.
            let _ = ready.send(&Err::<(), _>(reason.clone()));
            return Err(ManagerError::ServerFailed(reason));
        }
    };
    let (stop, stopped) = mpsc::channel();
    let server = Arc::new(Server {
        objects: RwLock::new(HashMap::new()),
        names: Mutex::new(HashMap::new()),
        next_id: AtomicU64::new(MANAGER + 1),
        stop: Mutex::new(stop),
        make: R::make,
    });
    std::thread::Builder::new()
        .name("shared-manager-accept".into())
        .spawn(move || {
            crate::timeline::leave_out_this_thread();
            accept_clients(&listener, &server);
        })
        .map_err(|error| ManagerError::ServerFailed(format!("cannot start a thread: {error}")))?;
    let _ = ready.send(&Ok::<(), String>(()));
    // Every sender lives in `server`, which the accepting thread holds for ever: this ends
    // only with a shutdown request.
    let _ = stopped.recv();
    Ok(())
}

/// Accepts connections for ever, each served on a thread of its own.
fn accept_clients(listener: &Listener, server: &Arc<Server>) {
    let mut next_client = 0_u64;
    loop {
        match listener.accept() {
            Ok(connection) => {
                next_client += 1;
                let (server, client) = (Arc::clone(server), next_client);
                let started = std::thread::Builder::new()
                    .name("shared-manager-client".into())
                    .spawn(move || {
                        crate::timeline::leave_out_this_thread();
                        serve_client(&server, connection, client);
                    });
                // Without a thread the connection is dropped: that client sees the server
                // gone, and the others go on.
                drop(started);
            }
            // The peer failed the handshake (no key, wrong key, too slow): it got nothing.
            Err(ConnectError::Authentication(_)) => {}
            // Out of descriptors, most likely: let some connections end before trying again.
            Err(_) => std::thread::sleep(Duration::from_millis(50)),
        }
    }
}

/// Answers one client's requests, one at a time, until it closes its connection; then gives
/// up the locks it still holds.
fn serve_client(server: &Server, mut connection: Connection, client: u64) {
    connection.set_max_message_size(MAX_REQUEST);
    let mut acquired = Vec::new();
    loop {
        let request: Request = match connection.recv() {
            Ok(request) => request,
            Err(RecvError::Decode { error, .. }) => {
                let failure = Failure::Refused(format!("not a request: {error}"));
                if connection.send(&Reply::Failed(failure)).is_err() {
                    break;
                }
                continue;
            }
            // Closed, too large, truncated: this conversation is over.
            Err(_) => break,
        };
        if let (MANAGER, Call::Pipes) = (request.object, &request.call) {
            match connection.move_to_pipes() {
                Ok(pipes) => connection = pipes,
                // The client sees the socket close: it cannot talk over it any more.
                Err(_) => break,
            }
            continue;
        }
        let shutdown = matches!(request.call, Call::Shutdown);
        // The client sends nothing while it waits for an answer: readable means it left.
        let gone = || connection.poll(Some(Duration::ZERO)).unwrap_or(true);
        let caller = Caller {
            id: client,
            gone: &gone,
        };
        let reply = match server.handle(request, &caller, &mut acquired) {
            Ok(reply) => reply,
            Err(Stop::Failed(failure)) => Reply::Failed(failure),
            Err(Stop::ClientGone) => break,
        };
        if connection.send(&reply).is_err() {
            break;
        }
        if shutdown {
            let _ = server
                .stop
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .send(());
        }
    }
    for id in acquired {
        if let Some(object) = server.object(id) {
            object.release_held_by(client);
        }
    }
}

impl Server {
    fn object(&self, id: u64) -> Option<Arc<Object>> {
        let objects = self.objects.read().unwrap_or_else(PoisonError::into_inner);
        objects.get(&id).cloned()
    }

    /// Runs one request; remembers in `acquired` the locks the client may come to hold.
    fn handle(
        &self,
        request: Request,
        caller: &Caller<'_>,
        acquired: &mut Vec<u64>,
    ) -> Result<Reply, Stop> {
        let Request { object: id, call } = request;
        if id == MANAGER {
            return Ok(self.manager_call(call)?);
        }
        let object = self
            .object(id)
            .ok_or_else(|| Failure::Refused(format!("no object {id} in this manager")))?;
        let locks = matches!(object.kind(), Kind::Lock | Kind::RLock | Kind::Condition);
        if locks && matches!(call, Call::Acquire(_)) && !acquired.contains(&id) {
            acquired.push(id);
        }
        object.call(call, caller)
    }

    fn manager_call(&self, call: Call) -> Result<Reply, Failure> {
        match call {
            Call::Create(kind, init) => self.create(kind, init).map(Reply::Id),
            Call::Named(name, kind, init) => {
                let mut names = self.names.lock().unwrap_or_else(PoisonError::into_inner);
                if let Some(&id) = names.get(&name) {
                    let existing = self.object(id).map(|object| object.kind());
                    return match existing {
                        Some(existing) if existing == kind => Ok(Reply::Id(id)),
                        _ => Err(Failure::Refused(format!(
                            "{name:?} names a {}, not a {}",
                            existing.map_or("?", Kind::name),
                            kind.name()
                        ))),
                    };
                }
                let id = self.create(kind, init)?;
                names.insert(name, id);
                Ok(Reply::Id(id))
            }
            Call::CreateUser(type_id) => {
                let object = (self.make)(&type_id).ok_or_else(|| {
                    Failure::Refused(format!(
                        "no type {type_id:?} is registered with this manager"
                    ))
                })?;
                Ok(Reply::Id(self.insert(Object::user(object))))
            }
            Call::Shutdown | Call::Ping => Ok(Reply::Done),
            Call::Pipes => Err(Failure::Refused(
                "a connection moves to pipes only while it is a socket".to_owned(),
            )),
            other => Err(Failure::Refused(format!(
                "the manager itself has no call {}",
                super::objects::call_name(&other)
            ))),
        }
    }

    fn create(&self, kind: Kind, init: Init) -> Result<u64, Failure> {
        Ok(self.insert(Object::new(kind, init)?))
    }

    fn insert(&self, object: Object) -> u64 {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let mut objects = self.objects.write().unwrap_or_else(PoisonError::into_inner);
        objects.insert(id, Arc::new(object));
        id
    }
}
