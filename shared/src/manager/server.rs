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
use super::codec::{self, Incoming};
use super::objects::{Caller, Object, Stop};
use super::protocol::{Call, Failure, Init, Kind, MANAGER, MAX_REQUEST, Reply, Request};
use super::registry::{Registry, Served};
use crate::connection::{Address, ConnectError, Connection, Listener};

/// How many connections may wait to be accepted.
const BACKLOG: u32 = 64;

/// The largest reply buffer a connection keeps between calls.
const KEEP_FRAME: usize = 64 * 1024;

/// The objects of one manager, and how to stop it.
struct Server {
    objects: RwLock<HashMap<u64, Arc<Object>>>,
    names: Mutex<HashMap<String, u64>>,
    references: Mutex<References>,
    next_id: AtomicU64,
    /// How many objects were freed: a connection's [`LastObject`] is current while this has
    /// not changed.
    freed: AtomicU64,
    stop: Mutex<Sender<()>>,
    /// Makes an object of a registered type, by its type id.
    make: fn(&str) -> Option<Box<dyn Served>>,
}

/// Who holds each object, as CPython's server counts with `incref` and `decref`: an object
/// is freed when its count reaches zero. A reference belongs to a connection (each process's
/// proxies of this manager hold theirs through one connection, see `link`), and is given up
/// with it: a client that ends, even by SIGKILL, releases every reference it held. A ticket
/// (a reference lent for a proxy on its way to another process) belongs to the connection that
/// lent it until the receiver adopts it. A name holds its object for the server's life.
#[derive(Default)]
struct References {
    /// Per object: the references of connections, the tickets in flight, one for a name.
    counts: HashMap<u64, u64>,
    /// Tickets lent and not adopted yet: the object, and the connection that lent it.
    tickets: HashMap<u64, (u64, u64)>,
    next_ticket: u64,
}

/// One connection's references: how many it holds of each object.
type Holds = HashMap<u64, u64>;

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
        references: Mutex::new(References::default()),
        next_id: AtomicU64::new(MANAGER + 1),
        freed: AtomicU64::new(0),
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
    let mut holds = Holds::new();
    let mut last = LastObject::default();
    // The buffer replies are laid out in, kept between calls.
    let mut frame = Vec::new();
    loop {
        // A dict's get or set runs where its bytes arrived, its answer laid out in `frame`;
        // any other request is taken out of the connection's buffer to run below (it may
        // wait, and ask the connection whether its client is gone).
        let received = connection.recv_with(|message| match codec::read_request(message) {
            Ok(Incoming::Request(request)) => Ok(Some(request)),
            Ok(incoming) => Ok(server.run_in_place(incoming, &mut last, &mut frame)),
            Err(error) => Err(error),
        });
        let request = match received {
            Ok(Ok(Some(request))) => request,
            Ok(Ok(None)) => {
                if send_frame(&connection, &mut frame).is_err() {
                    break;
                }
                continue;
            }
            Ok(Err(error)) => {
                let failure = Failure::Refused(format!("not a request: {error}"));
                if send_reply(&connection, &Reply::Failed(failure), &mut frame).is_err() {
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
        let reply = match server.handle(request, &caller, &mut acquired, &mut holds, &mut last) {
            Ok(reply) => reply,
            Err(Stop::Failed(failure)) => Reply::Failed(failure),
            Err(Stop::ClientGone) => break,
        };
        if send_reply(&connection, &reply, &mut frame).is_err() {
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
    server.release_all(client, holds);
}

/// Sends `reply`, laid out in `frame`; an error ends the conversation.
fn send_reply(connection: &Connection, reply: &Reply, frame: &mut Vec<u8>) -> Result<(), ()> {
    // A reply that does not serialize (a bug) is refused rather than left unanswered.
    if codec::write_reply(reply, frame).is_err() {
        let failure = Failure::Refused("the server could not encode its answer".to_owned());
        codec::write_reply(&Reply::Failed(failure), frame).map_err(drop)?;
    }
    send_frame(connection, frame)
}

/// Sends the reply laid out in `frame`; an error ends the conversation.
fn send_frame(connection: &Connection, frame: &mut Vec<u8>) -> Result<(), ()> {
    let sent = connection.send_bytes(frame).map_err(drop);
    if frame.capacity() > KEEP_FRAME {
        // A buffer grown by a large reply is given back.
        *frame = Vec::new();
    }
    sent
}

/// The object a connection called last, kept while the server has freed no object since: a
/// proxy makes its calls on one object, and finding it in the server's table costs a lock, a
/// hash and two atomic counts per call. A freed object stays allocated until its last
/// caller's next call, or the end of that caller's connection.
#[derive(Default)]
struct LastObject {
    id: u64,
    /// [`Server::freed`] when it was found.
    freed: u64,
    object: Option<Arc<Object>>,
}

impl Server {
    fn object(&self, id: u64) -> Option<Arc<Object>> {
        let objects = self.objects.read().unwrap_or_else(PoisonError::into_inner);
        objects.get(&id).cloned()
    }

    /// The object `id`, from `last` when it is still the one there.
    fn cached<'a>(&self, id: u64, last: &'a mut LastObject) -> Result<&'a Arc<Object>, Failure> {
        // Read before the table: an object freed after this is seen freed on the next call.
        let freed = self.freed.load(Ordering::Acquire);
        if last.id != id || last.freed != freed || last.object.is_none() {
            *last = LastObject {
                id,
                freed,
                object: self.object(id),
            };
        }
        last.object
            .as_ref()
            .ok_or_else(|| Failure::Refused(format!("no object {id} in this manager")))
    }

    /// Runs a dict's get or set from the bytes of its request and lays its answer out in
    /// `frame` (see `Object::dict_get`); a request of another kind is handed back.
    fn run_in_place(
        &self,
        incoming: Incoming<'_>,
        last: &mut LastObject,
        frame: &mut Vec<u8>,
    ) -> Option<Request> {
        let done = match incoming {
            Incoming::DictGet { object, key } if object != MANAGER => self
                .cached(object, last)
                .and_then(|found| found.dict_get(key, |value| codec::write_maybe(frame, value))),
            Incoming::DictSet { object, key, value } if object != MANAGER => self
                .cached(object, last)
                .and_then(|found| found.dict_set(key, value))
                .map(|()| codec::write_done(frame)),
            // The manager itself (which refuses them by name), or a request of another kind.
            other => return Some(other.into_request()),
        };
        if let Err(failure) = done {
            // A refusal's reply always encodes.
            let _ = codec::write_reply(&Reply::Failed(failure), frame);
        }
        None
    }

    /// Runs one request; remembers in `acquired` the locks the client may come to hold.
    fn handle(
        &self,
        request: Request,
        caller: &Caller<'_>,
        acquired: &mut Vec<u64>,
        holds: &mut Holds,
        last: &mut LastObject,
    ) -> Result<Reply, Stop> {
        let Request { object: id, call } = request;
        if id == MANAGER {
            return Ok(self.manager_call(call, caller.id, holds)?);
        }
        let object = self.cached(id, last)?;
        let locks = matches!(object.kind(), Kind::Lock | Kind::RLock | Kind::Condition);
        if locks && matches!(call, Call::Acquire(_)) && !acquired.contains(&id) {
            acquired.push(id);
        }
        object.call(call, caller)
    }

    fn manager_call(&self, call: Call, client: u64, holds: &mut Holds) -> Result<Reply, Failure> {
        let made = match call {
            Call::Decref(id) => return Ok(self.release(id, holds)),
            Call::Lend(ids) => return self.lend(&ids, client).map(Reply::Tickets),
            Call::Adopt(tickets) => return self.adopt(&tickets, holds).map(|()| Reply::Done),
            Call::Hold(ids) => return self.hold(&ids, holds).map(|()| Reply::Done),
            Call::NumberOfObjects => {
                let objects = self.objects.read().unwrap_or_else(PoisonError::into_inner);
                return Ok(Reply::Count(objects.len() as u64));
            }
            other => self.make(other)?,
        };
        // Every call that makes or finds an object gives the client a reference to it.
        if let Reply::Id(id) = made {
            self.references()
                .counts
                .entry(id)
                .and_modify(|n| *n += 1)
                .or_insert(1);
            *holds.entry(id).or_insert(0) += 1;
        }
        Ok(made)
    }

    fn references(&self) -> std::sync::MutexGuard<'_, References> {
        self.references
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Gives up every reference the client holds to `id` (its process counts its proxies
    /// itself, and asks once it has none left: two tickets adopted by one process are one
    /// process's references); none held is nothing to do.
    fn release(&self, id: u64, holds: &mut Holds) -> Reply {
        if let Some(held) = holds.remove(&id) {
            self.drop_references(&mut self.references(), id, held);
        }
        Reply::Done
    }

    /// A ticket for each of `ids`, lent by `client`; none if one of them is no object.
    fn lend(&self, ids: &[u64], client: u64) -> Result<Vec<u64>, Failure> {
        let mut references = self.references();
        if let Some(id) = ids.iter().find(|id| !references.counts.contains_key(id)) {
            return Err(Failure::Refused(format!("no object {id} in this manager")));
        }
        let mut tickets = Vec::with_capacity(ids.len());
        for &id in ids {
            references.next_ticket += 1;
            let ticket = references.next_ticket;
            references.tickets.insert(ticket, (id, client));
            *references.counts.entry(id).or_insert(0) += 1;
            tickets.push(ticket);
        }
        Ok(tickets)
    }

    /// One more reference to each of `ids` for the client; none if one of them is no object.
    fn hold(&self, ids: &[u64], holds: &mut Holds) -> Result<(), Failure> {
        let mut references = self.references();
        if let Some(id) = ids.iter().find(|id| !references.counts.contains_key(id)) {
            return Err(Failure::Refused(format!("no object {id} in this manager")));
        }
        for &id in ids {
            *references.counts.entry(id).or_insert(0) += 1;
            *holds.entry(id).or_insert(0) += 1;
        }
        Ok(())
    }

    /// Makes the references of `tickets` the client's own; none if one of them is unknown.
    fn adopt(&self, tickets: &[u64], holds: &mut Holds) -> Result<(), Failure> {
        let mut references = self.references();
        if let Some(ticket) = tickets.iter().find(|t| !references.tickets.contains_key(t)) {
            return Err(Failure::Refused(format!(
                "no reference lent as ticket {ticket}: its object is gone, or its lender ended \
                 before this process took it"
            )));
        }
        for ticket in tickets {
            if let Some((id, _)) = references.tickets.remove(ticket) {
                *holds.entry(id).or_insert(0) += 1;
            }
        }
        Ok(())
    }

    /// Gives up every reference of a client whose connection closed, tickets it lent
    /// included.
    fn release_all(&self, client: u64, holds: Holds) {
        let mut references = self.references();
        for (id, held) in holds {
            self.drop_references(&mut references, id, held);
        }
        let lent: Vec<(u64, u64)> = references
            .tickets
            .iter()
            .filter(|(_, (_, lender))| *lender == client)
            .map(|(&ticket, &(id, _))| (ticket, id))
            .collect();
        for (ticket, id) in lent {
            references.tickets.remove(&ticket);
            self.drop_references(&mut references, id, 1);
        }
    }

    /// Takes `n` references of `id` away, and frees the object when none is left.
    fn drop_references(&self, references: &mut References, id: u64, n: u64) {
        let Some(count) = references.counts.get_mut(&id) else {
            return;
        };
        *count = count.saturating_sub(n);
        if *count == 0 {
            references.counts.remove(&id);
            let mut objects = self.objects.write().unwrap_or_else(PoisonError::into_inner);
            objects.remove(&id);
            self.freed.fetch_add(1, Ordering::Release);
        }
    }

    /// Runs a call that makes or finds an object, or refuses one the manager does not have.
    fn make(&self, call: Call) -> Result<Reply, Failure> {
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
                // The name's own reference: a named object lives as long as the server.
                self.references().counts.insert(id, 1);
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
