//! This process's references to the objects of managers: what makes an object live on the
//! server while some process has a proxy of it, and be freed when the last proxy is dropped.
//! Python: `BaseProxy._incref` and `_decref`.
//!
//! A process keeps, per manager, one connection for its references and a count per object of
//! its proxies. Making an object (or finding it by name) takes a reference on that connection;
//! a clone only adds to the count here; dropping the last proxy of an object in the process
//! gives the reference up (a round trip). So the server counts processes, not proxies, and a
//! process that ends, even by SIGKILL, gives up every reference it held when its connection
//! closes (the server notices the end of file).
//!
//! A proxy on its way to another process carries a ticket: a reference the sender lends
//! (serializing the proxy, for a spawned child's arguments, a `Queue` or a `Pipe`) and the
//! receiver adopts (deserializing it). A ticket nobody adopts (its receiver was killed first)
//! stays lent until the lender's connection closes, that is until the lender ends; a receiver
//! whose lender ended first finds the object gone ([`ManagerError::Refused`]).
//!
//! A child started by fork has a copy of every proxy its parent had, as in CPython (whose
//! proxies `incref` again in every forked child): before the fork, the parent opens a new
//! connection to each manager whose proxies it holds, takes there one reference to each of
//! their objects, and leaves that connection to the child as the child's own (a lifecycle
//! hook). The child's references thus end with the child, however it ends, and the parent
//! may drop its proxies as soon as the child started (a `Process`'s arguments are). A child
//! forked without this crate (a bare `fork`) holds no reference of its own: its proxies work
//! while some other process keeps the objects alive.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, PoisonError};

use super::ManagerError;
use super::link::{Opener, Token, connect, exchange, unexpected};
use super::protocol::{Call, MANAGER, Reply, Request};
use crate::connection::Connection;
use crate::lifecycle::{ForkRank, ForkRegistration, HeldAcrossFork};

/// Per manager (by address): this process's references to its objects.
type Table = HashMap<String, Holder>;

static TABLE: Mutex<Option<Table>> = Mutex::new(None);
static HELD_ACROSS_FORK: ForkRegistration = ForkRegistration::new();

/// This process's references to one manager's objects.
struct Holder {
    /// The manager's address and key.
    manager: Token,
    /// The connection the references belong to, once opened, and the process that opened it.
    open: Option<(Opener, Connection)>,
    /// How many proxies of each object this process has.
    counts: HashMap<u64, u64>,
}

fn table() -> MutexGuard<'static, Option<Table>> {
    // Registered before the lock is first taken (see `lifecycle::at_fork`).
    HELD_ACROSS_FORK.ensure(ForkRank::Managers, hold_for_child);
    TABLE.lock().unwrap_or_else(PoisonError::into_inner)
}

fn holder<'a>(table: &'a mut Option<Table>, object: &Token) -> &'a mut Holder {
    table
        .get_or_insert_with(HashMap::new)
        .entry(object.address.clone())
        .or_insert_with(|| Holder {
            manager: Token {
                id: MANAGER,
                ..object.clone()
            },
            open: None,
            counts: HashMap::new(),
        })
}

impl Holder {
    /// Sends `call` to the manager over the references' connection, opened first if need be.
    fn call(&mut self, call: Call) -> Result<Reply, ManagerError> {
        let me = Opener::this_process();
        if self.open.as_ref().is_some_and(|(opener, _)| *opener != me) {
            // Inherited through a fork this crate did not make: the parent's, not ours.
            self.open = None;
        }
        if self.open.is_none() {
            self.open = Some((me, connect(&self.manager)?));
        }
        self.exchange(call)
    }

    fn exchange(&mut self, call: Call) -> Result<Reply, ManagerError> {
        let Some((_, connection)) = &self.open else {
            return Err(ManagerError::ServerGone);
        };
        let request = Request {
            object: MANAGER,
            call,
        };
        let answer = exchange(connection, &request);
        if matches!(answer, Err(ManagerError::ServerGone | ManagerError::Os(_))) {
            self.open = None;
        }
        match answer? {
            Reply::Failed(failure) => Err(failure.into()),
            reply => Ok(reply),
        }
    }

    fn count_one(&mut self, id: u64) {
        *self.counts.entry(id).or_insert(0) += 1;
    }
}

/// Runs `call` (one that makes or finds an object) on the manager `manager` names, and counts
/// the reference it gives this process; returns the object's id.
pub(super) fn made(manager: &Token, call: Call) -> Result<u64, ManagerError> {
    let mut table = table();
    let holder = holder(&mut table, manager);
    match holder.call(call)? {
        Reply::Id(id) => {
            holder.count_one(id);
            Ok(id)
        }
        other => Err(unexpected(other)),
    }
}

/// A new proxy of `object` in this process: one more to count, no message.
pub(super) fn cloned(object: &Token) {
    holder(&mut table(), object).count_one(object.id);
}

/// A proxy of `object` dropped: the last one in this process gives the reference up.
pub(super) fn dropped(object: &Token) {
    let mut table = table();
    let holder = holder(&mut table, object);
    let Some(count) = holder.counts.get_mut(&object.id) else {
        return;
    };
    *count -= 1;
    if *count == 0 {
        holder.counts.remove(&object.id);
        // A server that is gone has nothing left to free.
        let _ = holder.call(Call::Decref(object.id));
    }
}

/// A ticket for a proxy of `object` on its way to another process.
pub(super) fn lent(object: &Token) -> Result<u64, ManagerError> {
    let mut table = table();
    match holder(&mut table, object).call(Call::Lend(vec![object.id]))? {
        Reply::Tickets(tickets) if tickets.len() == 1 => Ok(tickets[0]),
        other => Err(unexpected(other)),
    }
}

/// Takes over the reference `ticket` stands for, for a proxy of `object` that arrived here.
pub(super) fn adopted(object: &Token, ticket: u64) -> Result<(), ManagerError> {
    let mut table = table();
    let holder = holder(&mut table, object);
    match holder.call(Call::Adopt(vec![ticket]))? {
        Reply::Done => {
            holder.count_one(object.id);
            Ok(())
        }
        other => Err(unexpected(other)),
    }
}

/// The table, held across a fork, with the connections opened for the child (per manager).
struct ForChild {
    table: MutexGuard<'static, Option<Table>>,
    connections: HashMap<String, Connection>,
}

/// Before a fork: opens, for the child, a connection to each manager whose proxies this
/// process holds, with one reference to each of their objects, so that the parent dropping
/// its proxies right after the fork frees nothing the child still has.
fn hold_for_child() -> Box<dyn HeldAcrossFork> {
    let table = TABLE.lock().unwrap_or_else(PoisonError::into_inner);
    let mut connections = HashMap::new();
    for (address, holder) in table.iter().flatten() {
        let ids: Vec<u64> = holder.counts.keys().copied().collect();
        if ids.is_empty() {
            continue;
        }
        // A manager that cannot be reached is gone: the child's proxies will say so.
        if let Ok(connection) = held_for_child(&holder.manager, ids) {
            connections.insert(address.clone(), connection);
        }
    }
    Box::new(ForChild { table, connections })
}

/// A new connection to `manager` that holds one reference to each of `ids`.
fn held_for_child(manager: &Token, ids: Vec<u64>) -> Result<Connection, ManagerError> {
    let connection = connect(manager)?;
    let request = Request {
        object: MANAGER,
        call: Call::Hold(ids),
    };
    match exchange(&connection, &request)? {
        Reply::Done => Ok(connection),
        Reply::Failed(failure) => Err(failure.into()),
        other => Err(unexpected(other)),
    }
}

impl HeldAcrossFork for ForChild {
    // In the parent the connections opened for the child are dropped (closed here): they
    // end with the child.
    fn in_child(mut self: Box<Self>) {
        let me = Opener::this_process();
        for (address, holder) in self.table.iter_mut().flatten() {
            // The parent's connection is never ours to talk on (dropping closes our copies);
            // the one opened for us, with our references, is.
            holder.open = self
                .connections
                .remove(address)
                .map(|connection| (me, connection));
        }
    }
}
