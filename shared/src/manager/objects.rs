//! The objects a manager's server holds, and what each does with a call. Each object has
//! its own lock, so calls on different objects never wait for each other; a call that waits
//! (a lock's `acquire`, a queue's `get`) waits on the object's condition variable, in slices,
//! checking between slices that its client is still there: a client that died while waiting
//! takes nothing (no item is handed to a dead process, no lock is taken for one).

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use serde_bytes::ByteBuf;

use super::protocol::{Call, Failure, Init, Kind, Reply};
use super::registry::Served;

/// How often a waiting call checks that its client is still connected.
const CHECK_CLIENT_EVERY: Duration = Duration::from_millis(100);

/// Who makes a call: its connection's number, and a way to ask whether it is still there.
pub(super) struct Caller<'a> {
    pub(super) id: u64,
    pub(super) gone: &'a dyn Fn() -> bool,
}

/// A call that cannot go on: refused, or its client left while it waited.
pub(super) enum Stop {
    Failed(Failure),
    ClientGone,
}

impl From<Failure> for Stop {
    fn from(failure: Failure) -> Stop {
        Stop::Failed(failure)
    }
}

type Outcome = Result<Reply, Stop>;

/// State behind a mutex, and a condition variable for the calls that wait on it.
struct Guarded<S> {
    state: Mutex<S>,
    changed: Condvar,
}

impl<S> Guarded<S> {
    fn new(state: S) -> Guarded<S> {
        Guarded {
            state: Mutex::new(state),
            changed: Condvar::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, S> {
        // A panic in a call (a bug) must not take every later call down with it.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Waits until `ready` holds, up to `wait` (`None`: for ever); `Ok(None)` when the time
    /// ran out, `Err(ClientGone)` when the caller left meanwhile.
    fn wait_until<'a>(
        &'a self,
        mut state: MutexGuard<'a, S>,
        wait: Option<Duration>,
        caller: &Caller<'_>,
        mut ready: impl FnMut(&mut S) -> bool,
    ) -> Result<Option<MutexGuard<'a, S>>, Stop> {
        let deadline = wait.and_then(|w| Instant::now().checked_add(w));
        loop {
            if ready(&mut state) {
                return Ok(Some(state));
            }
            let now = Instant::now();
            let slice = match deadline {
                Some(deadline) if deadline <= now => return Ok(None),
                Some(deadline) => (deadline - now).min(CHECK_CLIENT_EVERY),
                None => CHECK_CLIENT_EVERY,
            };
            state = self
                .changed
                .wait_timeout(state, slice)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
            if (caller.gone)() {
                return Err(Stop::ClientGone);
            }
        }
    }
}

/// A dict that keeps its insertion order, as Python's does. A key's value lives beside it in
/// the hash table, so a `get` or a `d[k] = v` of a key already there is one hash lookup; the
/// order is kept apart, for the calls that list the items.
#[derive(Default)]
struct OrderedMap {
    /// Per key: its place in `order`, and its value.
    index: HashMap<Vec<u8>, (u64, ByteBuf)>,
    /// The keys, by the place they were inserted at.
    order: BTreeMap<u64, ByteBuf>,
    next: u64,
}

impl OrderedMap {
    fn get(&self, key: &[u8]) -> Option<&ByteBuf> {
        self.index.get(key).map(|(_, value)| value)
    }

    fn len(&self) -> usize {
        self.index.len()
    }

    fn contains(&self, key: &[u8]) -> bool {
        self.index.contains_key(key)
    }

    fn insert(&mut self, key: ByteBuf, value: ByteBuf) {
        match self.index.get_mut(key.as_slice()) {
            Some((_, old)) => *old = value,
            None => {
                self.index.insert(key.to_vec(), (self.next, value));
                self.order.insert(self.next, key);
                self.next += 1;
            }
        }
    }

    /// Sets `key` to a copy of `value`; a key already there keeps its value's allocation
    /// when it fits (a write of the same size allocates nothing).
    fn set(&mut self, key: &[u8], value: &[u8]) {
        match self.index.get_mut(key) {
            Some((_, old))
                if old.capacity() >= value.len() && old.capacity() <= 2 * value.len() + 64 =>
            {
                old.clear();
                old.extend_from_slice(value);
            }
            Some((_, old)) => *old = ByteBuf::from(value.to_vec()),
            None => self.insert(ByteBuf::from(key.to_vec()), ByteBuf::from(value.to_vec())),
        }
    }

    fn remove(&mut self, key: &[u8]) -> Option<ByteBuf> {
        let (at, value) = self.index.remove(key)?;
        self.order.remove(&at);
        Some(value)
    }

    /// Key and value of every item, in insertion order.
    fn items(&self) -> impl Iterator<Item = (&ByteBuf, &ByteBuf)> {
        self.order
            .values()
            .filter_map(|key| Some((key, self.get(key)?)))
    }

    fn clear(&mut self) {
        *self = OrderedMap::default();
    }
}

/// A lock's state: who holds it (the connection), and how many times (an `RLock`'s count).
#[derive(Default)]
struct Held {
    owner: Option<u64>,
    count: u64,
}

/// A condition's state: its re-entrant lock, and the waiters in arrival order.
#[derive(Default)]
struct ConditionState {
    lock: Held,
    waiting: VecDeque<u64>,
    notified: Vec<u64>,
    next_ticket: u64,
}

struct BarrierState {
    parties: u64,
    arrived: u64,
    generation: u64,
    /// The generation whose waiters were released by a break (abort, reset, timeout).
    broken_generation: Option<u64>,
    broken: bool,
}

struct QueueState {
    items: VecDeque<ByteBuf>,
    maxsize: u64,
    unfinished: u64,
}

/// One object of a manager.
pub(super) struct Object(Inner);

enum Inner {
    Dict(Guarded<OrderedMap>),
    List(Guarded<Vec<ByteBuf>>),
    /// A list of fixed length.
    Array(Guarded<Vec<ByteBuf>>),
    Namespace(Guarded<BTreeMap<String, ByteBuf>>),
    Value(Guarded<ByteBuf>),
    Lock(Guarded<Held>),
    RLock(Guarded<Held>),
    /// Its value, and its bound (a `BoundedSemaphore`'s start).
    Semaphore(Guarded<u64>, Option<u64>),
    Event(Guarded<bool>),
    Condition(Guarded<ConditionState>),
    Barrier(Guarded<BarrierState>),
    Queue(Guarded<QueueState>, bool),
    User(Guarded<Box<dyn Served>>),
}

impl Object {
    /// A new object of `kind`, from what the client sent.
    pub(super) fn new(kind: Kind, init: Init) -> Result<Object, Failure> {
        let Init { mut items, number } = init;
        Ok(Object(match kind {
            Kind::Dict => Inner::Dict(Guarded::new(OrderedMap::default())),
            Kind::List => Inner::List(Guarded::new(items)),
            Kind::Array => Inner::Array(Guarded::new(items)),
            Kind::Namespace => Inner::Namespace(Guarded::new(BTreeMap::new())),
            Kind::Value => match (items.pop(), items.is_empty()) {
                (Some(value), true) => Inner::Value(Guarded::new(value)),
                _ => return Err(refused("a Value starts with exactly one item")),
            },
            Kind::Lock => Inner::Lock(Guarded::new(Held::default())),
            Kind::RLock => Inner::RLock(Guarded::new(Held::default())),
            Kind::Semaphore => Inner::Semaphore(Guarded::new(number), None),
            Kind::BoundedSemaphore => Inner::Semaphore(Guarded::new(number), Some(number)),
            Kind::Event => Inner::Event(Guarded::new(false)),
            Kind::Condition => Inner::Condition(Guarded::new(ConditionState::default())),
            Kind::Barrier if number == 0 => {
                return Err(refused("a Barrier needs at least one party"));
            }
            Kind::Barrier => Inner::Barrier(Guarded::new(BarrierState {
                parties: number,
                arrived: 0,
                generation: 0,
                broken_generation: None,
                broken: false,
            })),
            Kind::User => return Err(refused("a registered type is made by its type id")),
            Kind::Queue | Kind::JoinableQueue => Inner::Queue(
                Guarded::new(QueueState {
                    items: VecDeque::new(),
                    maxsize: number,
                    unfinished: 0,
                }),
                kind == Kind::JoinableQueue,
            ),
        }))
    }

    pub(super) fn kind(&self) -> Kind {
        match &self.0 {
            Inner::Dict(_) => Kind::Dict,
            Inner::List(_) => Kind::List,
            Inner::Array(_) => Kind::Array,
            Inner::Namespace(_) => Kind::Namespace,
            Inner::Value(_) => Kind::Value,
            Inner::Lock(_) => Kind::Lock,
            Inner::RLock(_) => Kind::RLock,
            Inner::Semaphore(_, None) => Kind::Semaphore,
            Inner::Semaphore(_, Some(_)) => Kind::BoundedSemaphore,
            Inner::Event(_) => Kind::Event,
            Inner::Condition(_) => Kind::Condition,
            Inner::Barrier(_) => Kind::Barrier,
            Inner::Queue(_, false) => Kind::Queue,
            Inner::Queue(_, true) => Kind::JoinableQueue,
            Inner::User(_) => Kind::User,
        }
    }

    /// Runs `call` on this object for `caller`.
    pub(super) fn call(&self, call: Call, caller: &Caller<'_>) -> Outcome {
        match &self.0 {
            Inner::Dict(map) => dict(map, call),
            Inner::List(list) => list_call(list, call, true),
            Inner::Array(array) => list_call(array, call, false),
            Inner::Namespace(names) => namespace(names, call),
            Inner::Value(value) => value_call(value, call),
            Inner::Lock(held) => lock(held, call, caller, false),
            Inner::RLock(held) => lock(held, call, caller, true),
            Inner::Semaphore(value, bound) => semaphore(value, *bound, call, caller),
            Inner::Event(flag) => event(flag, call, caller),
            Inner::Condition(condition) => condition_call(condition, call, caller),
            Inner::Barrier(barrier) => barrier_call(barrier, call, caller),
            Inner::Queue(queue, joinable) => queue_call(queue, *joinable, call, caller),
            Inner::User(object) => user_call(object, call),
        }
    }

    /// A dict's `get` of `key`, its value handed to `answer` where it is stored (no copy in
    /// between). The same as [`call`](Self::call) with [`Call::DictGet`], without the
    /// allocations: the server's way for the most frequent call.
    pub(super) fn dict_get<R>(
        &self,
        key: &[u8],
        answer: impl FnOnce(Option<&[u8]>) -> R,
    ) -> Result<R, Failure> {
        match &self.0 {
            Inner::Dict(map) => Ok(answer(map.lock().get(key).map(|value| value.as_slice()))),
            _ => Err(self.has_no("DictGet")),
        }
    }

    /// A dict's `d[key] = value`: the same as [`call`](Self::call) with [`Call::DictSet`],
    /// without allocating for a key already there.
    pub(super) fn dict_set(&self, key: &[u8], value: &[u8]) -> Result<(), Failure> {
        match &self.0 {
            Inner::Dict(map) => {
                map.lock().set(key, value);
                Ok(())
            }
            _ => Err(self.has_no("DictSet")),
        }
    }

    /// The refusal of a call this object's kind does not have, as [`call`](Self::call)
    /// words it.
    fn has_no(&self, call: &str) -> Failure {
        Failure::Refused(format!("a {} has no call {call}", self.kind().name()))
    }

    /// A new object of a registered type.
    pub(super) fn user(object: Box<dyn Served>) -> Object {
        Object(Inner::User(Guarded::new(object)))
    }

    /// Gives up whatever connection `owner` holds of this lock: its client is gone.
    pub(super) fn release_held_by(&self, owner: u64) {
        match &self.0 {
            Inner::Lock(held) | Inner::RLock(held) => {
                let mut state = held.lock();
                if state.owner == Some(owner) {
                    *state = Held::default();
                    held.changed.notify_all();
                }
            }
            Inner::Condition(condition) => {
                let mut state = condition.lock();
                if state.lock.owner == Some(owner) {
                    state.lock = Held::default();
                    condition.changed.notify_all();
                }
            }
            _ => {}
        }
    }
}

fn refused(what: &str) -> Failure {
    Failure::Refused(what.to_owned())
}

/// A call's name, without its arguments.
pub(super) fn call_name(call: &Call) -> String {
    let shown = format!("{call:?}");
    shown.split(['(', ' ']).next().unwrap_or("?").to_owned()
}

/// A call this kind of object does not have.
fn no_such_call(kind: Kind, call: &Call) -> Stop {
    Stop::Failed(Failure::Refused(format!(
        "a {} has no call {}",
        kind.name(),
        call_name(call)
    )))
}

fn count(n: usize) -> Reply {
    Reply::Count(n as u64)
}

fn dict(map: &Guarded<OrderedMap>, call: Call) -> Outcome {
    let mut map = map.lock();
    Ok(match call {
        Call::Len => count(map.len()),
        Call::DictGet(key) => Reply::Maybe(map.get(&key).cloned()),
        Call::DictGetMany(keys) => {
            Reply::MaybeItems(keys.iter().map(|key| map.get(key).cloned()).collect())
        }
        Call::DictSet(key, value) => {
            map.insert(key, value);
            Reply::Done
        }
        Call::DictUpdate(pairs) => {
            for (key, value) in pairs {
                map.insert(key, value);
            }
            Reply::Done
        }
        Call::DictSetDefault(key, value) => match map.get(&key) {
            Some(present) => Reply::Item(present.clone()),
            None => {
                map.insert(key, value.clone());
                Reply::Item(value)
            }
        },
        Call::DictPop(key) => Reply::Maybe(map.remove(&key)),
        Call::DictContains(key) => Reply::Bool(map.contains(&key)),
        Call::DictItems => Reply::Pairs(map.items().map(|(k, v)| (k.clone(), v.clone())).collect()),
        Call::DictKeys => Reply::Items(map.items().map(|(k, _)| k.clone()).collect()),
        Call::DictValues => Reply::Items(map.items().map(|(_, v)| v.clone()).collect()),
        Call::Clear => {
            map.clear();
            Reply::Done
        }
        other => return Err(no_such_call(Kind::Dict, &other)),
    })
}

/// Python's index: negative counts from the end; `None` when out of range.
fn position(index: i64, len: usize, what: &str) -> Result<usize, Failure> {
    let len = len as i64;
    let at = if index < 0 { index + len } else { index };
    if (0..len).contains(&at) {
        Ok(at as usize)
    } else {
        Err(Failure::IndexError(format!("{what} index out of range")))
    }
}

fn list_call(list: &Guarded<Vec<ByteBuf>>, call: Call, growable: bool) -> Outcome {
    let what = if growable { "list" } else { "array" };
    let mut items = list.lock();
    Ok(match call {
        Call::Len => count(items.len()),
        Call::ItemGet(index) => Reply::Item(items[position(index, items.len(), what)?].clone()),
        Call::ItemSet(index, value) => {
            let at = position(index, items.len(), what)?;
            items[at] = value;
            Reply::Done
        }
        Call::ListAll => Reply::Items(items.clone()),
        Call::ListAppend(value) if growable => {
            items.push(value);
            Reply::Done
        }
        Call::ListExtend(values) if growable => {
            items.extend(values);
            Reply::Done
        }
        Call::ListInsert(index, value) if growable => {
            // Python's insert clamps the index instead of failing.
            let len = items.len() as i64;
            let at = if index < 0 { index + len } else { index };
            items.insert(at.clamp(0, len) as usize, value);
            Reply::Done
        }
        Call::ListPop(index) if growable => {
            if items.is_empty() {
                return Err(Failure::IndexError("pop from empty list".into()).into());
            }
            let at = position(index.unwrap_or(-1), items.len(), "pop")?;
            Reply::Item(items.remove(at))
        }
        Call::Clear if growable => {
            items.clear();
            Reply::Done
        }
        other => {
            let kind = if growable { Kind::List } else { Kind::Array };
            return Err(no_such_call(kind, &other));
        }
    })
}

fn namespace(names: &Guarded<BTreeMap<String, ByteBuf>>, call: Call) -> Outcome {
    let mut names = names.lock();
    let missing = |name: &str| Failure::AttributeError(name.to_owned());
    Ok(match call {
        Call::Len => count(names.len()),
        Call::GetAttr(name) => match names.get(&name) {
            Some(value) => Reply::Item(value.clone()),
            None => return Err(missing(&name).into()),
        },
        Call::SetAttr(name, value) => {
            names.insert(name, value);
            Reply::Done
        }
        Call::DelAttr(name) => match names.remove(&name) {
            Some(_) => Reply::Done,
            None => return Err(missing(&name).into()),
        },
        other => return Err(no_such_call(Kind::Namespace, &other)),
    })
}

fn value_call(value: &Guarded<ByteBuf>, call: Call) -> Outcome {
    let mut value = value.lock();
    Ok(match call {
        Call::ValueGet => Reply::Item(value.clone()),
        Call::ValueSet(new) => {
            *value = new;
            Reply::Done
        }
        other => return Err(no_such_call(Kind::Value, &other)),
    })
}

fn lock(held: &Guarded<Held>, call: Call, caller: &Caller<'_>, reentrant: bool) -> Outcome {
    let kind = if reentrant { Kind::RLock } else { Kind::Lock };
    let state = held.lock();
    match call {
        Call::Acquire(wait) => {
            if reentrant && state.owner == Some(caller.id) {
                let mut state = state;
                state.count += 1;
                return Ok(Reply::Bool(true));
            }
            let taken = held.wait_until(state, wait, caller, |s| s.owner.is_none())?;
            Ok(Reply::Bool(taken.is_some_and(|mut state| {
                state.owner = Some(caller.id);
                state.count = 1;
                true
            })))
        }
        Call::Release => {
            let mut state = state;
            // A Lock may be released by anyone, as Python's; an RLock only by its owner.
            let may = state.owner.is_some() && (!reentrant || state.owner == Some(caller.id));
            if !may {
                return Err(Failure::NotHeld.into());
            }
            state.count -= 1;
            if state.count == 0 || !reentrant {
                *state = Held::default();
                held.changed.notify_one();
            }
            Ok(Reply::Done)
        }
        other => Err(no_such_call(kind, &other)),
    }
}

fn semaphore(value: &Guarded<u64>, bound: Option<u64>, call: Call, caller: &Caller<'_>) -> Outcome {
    let kind = if bound.is_some() {
        Kind::BoundedSemaphore
    } else {
        Kind::Semaphore
    };
    let state = value.lock();
    match call {
        Call::Acquire(wait) => {
            let taken = value.wait_until(state, wait, caller, |units| *units > 0)?;
            Ok(Reply::Bool(taken.is_some_and(|mut units| {
                *units -= 1;
                true
            })))
        }
        Call::Release => {
            let mut units = state;
            if bound.is_some_and(|bound| *units >= bound) {
                return Err(Failure::TooManyReleases.into());
            }
            *units += 1;
            value.changed.notify_one();
            Ok(Reply::Done)
        }
        Call::SemaphoreValue => Ok(Reply::Count(*state)),
        other => Err(no_such_call(kind, &other)),
    }
}

fn event(flag: &Guarded<bool>, call: Call, caller: &Caller<'_>) -> Outcome {
    let mut set = flag.lock();
    Ok(match call {
        Call::EventSet => {
            *set = true;
            flag.changed.notify_all();
            Reply::Done
        }
        Call::EventClear => {
            *set = false;
            Reply::Done
        }
        Call::EventIsSet => Reply::Bool(*set),
        Call::EventWait(wait) => {
            Reply::Bool(flag.wait_until(set, wait, caller, |set| *set)?.is_some())
        }
        other => return Err(no_such_call(Kind::Event, &other)),
    })
}

fn condition_call(condition: &Guarded<ConditionState>, call: Call, caller: &Caller<'_>) -> Outcome {
    let mut state = condition.lock();
    let me = Some(caller.id);
    match call {
        Call::Acquire(wait) => {
            if state.lock.owner == me {
                state.lock.count += 1;
                return Ok(Reply::Bool(true));
            }
            let taken = condition.wait_until(state, wait, caller, |s| s.lock.owner.is_none())?;
            Ok(Reply::Bool(taken.is_some_and(|mut state| {
                state.lock = Held {
                    owner: me,
                    count: 1,
                };
                true
            })))
        }
        Call::Release => {
            if state.lock.owner != me {
                return Err(Failure::NotHeld.into());
            }
            state.lock.count -= 1;
            if state.lock.count == 0 {
                state.lock.owner = None;
                condition.changed.notify_all();
            }
            Ok(Reply::Done)
        }
        Call::Wait(wait) => {
            if state.lock.owner != me {
                return Err(Failure::NotHeld.into());
            }
            // Lets go of the lock (every level), waits to be notified, takes it back.
            let levels = std::mem::take(&mut state.lock).count;
            let ticket = state.next_ticket;
            state.next_ticket += 1;
            state.waiting.push_back(ticket);
            condition.changed.notify_all();
            let woken = condition.wait_until(state, wait, caller, |s| s.notified.contains(&ticket));
            let mut state = match woken {
                Ok(Some(state)) => state,
                Ok(None) => condition.lock(),
                Err(stop) => {
                    forget_ticket(&mut condition.lock(), ticket);
                    return Err(stop);
                }
            };
            let notified = state.notified.contains(&ticket);
            forget_ticket(&mut state, ticket);
            let mut state = condition
                .wait_until(state, None, caller, |s| s.lock.owner.is_none())?
                .expect("a wait without a deadline ends only when ready");
            state.lock = Held {
                owner: me,
                count: levels,
            };
            Ok(Reply::Bool(notified))
        }
        Call::Notify(n) if state.lock.owner == me => {
            let n = n.min(state.waiting.len() as u64) as usize;
            let woken: Vec<u64> = state.waiting.drain(..n).collect();
            state.notified.extend(woken);
            condition.changed.notify_all();
            Ok(Reply::Done)
        }
        Call::NotifyAll if state.lock.owner == me => {
            let woken: Vec<u64> = state.waiting.drain(..).collect();
            state.notified.extend(woken);
            condition.changed.notify_all();
            Ok(Reply::Done)
        }
        Call::Notify(_) | Call::NotifyAll => Err(Failure::NotHeld.into()),
        other => Err(no_such_call(Kind::Condition, &other)),
    }
}

fn forget_ticket(state: &mut ConditionState, ticket: u64) {
    state.waiting.retain(|t| *t != ticket);
    state.notified.retain(|t| *t != ticket);
}

fn barrier_call(barrier: &Guarded<BarrierState>, call: Call, caller: &Caller<'_>) -> Outcome {
    let mut state = barrier.lock();
    match call {
        Call::BarrierWait(wait) => {
            if state.broken {
                return Err(Failure::BrokenBarrier.into());
            }
            let index = state.arrived;
            let generation = state.generation;
            state.arrived += 1;
            if state.arrived == state.parties {
                state.arrived = 0;
                state.generation += 1;
                barrier.changed.notify_all();
                return Ok(Reply::Count(index));
            }
            let passed = barrier.wait_until(state, wait, caller, |s| s.generation != generation);
            match passed {
                Ok(Some(state)) if state.broken_generation == Some(generation) => {
                    Err(Failure::BrokenBarrier.into())
                }
                Ok(Some(_)) => Ok(Reply::Count(index)),
                Ok(None) => {
                    // A timeout breaks the barrier, for every party, as Python's does.
                    break_barrier(barrier, &mut barrier.lock());
                    Err(Failure::BrokenBarrier.into())
                }
                Err(stop) => {
                    break_barrier(barrier, &mut barrier.lock());
                    Err(stop)
                }
            }
        }
        Call::BarrierAbort => {
            break_barrier(barrier, &mut state);
            Ok(Reply::Done)
        }
        Call::BarrierReset => {
            if state.arrived > 0 {
                break_barrier(barrier, &mut state);
            }
            state.broken = false;
            Ok(Reply::Done)
        }
        Call::BarrierState => Ok(Reply::Barrier(state.parties, state.arrived, state.broken)),
        other => Err(no_such_call(Kind::Barrier, &other)),
    }
}

/// Releases the waiting parties with an error, and breaks the barrier for later ones.
fn break_barrier(barrier: &Guarded<BarrierState>, state: &mut BarrierState) {
    if state.arrived > 0 {
        state.broken_generation = Some(state.generation);
        state.generation += 1;
        state.arrived = 0;
    }
    state.broken = true;
    barrier.changed.notify_all();
}

fn queue_call(
    queue: &Guarded<QueueState>,
    joinable: bool,
    call: Call,
    caller: &Caller<'_>,
) -> Outcome {
    let kind = if joinable {
        Kind::JoinableQueue
    } else {
        Kind::Queue
    };
    let state = queue.lock();
    let has_room = |s: &mut QueueState| s.maxsize == 0 || (s.items.len() as u64) < s.maxsize;
    match call {
        Call::Len => Ok(count(state.items.len())),
        Call::Full => {
            let mut state = state;
            Ok(Reply::Bool(!has_room(&mut state)))
        }
        Call::Put(item, wait) => {
            let Some(mut state) = queue.wait_until(state, wait, caller, has_room)? else {
                return Err(Failure::Full.into());
            };
            state.items.push_back(item);
            state.unfinished += 1;
            queue.changed.notify_all();
            Ok(Reply::Done)
        }
        Call::Get(wait) => {
            let got = queue.wait_until(state, wait, caller, |s| !s.items.is_empty())?;
            let Some(mut state) = got else {
                return Err(Failure::Empty.into());
            };
            let item = state.items.pop_front().expect("ready: an item waits");
            queue.changed.notify_all();
            Ok(Reply::Item(item))
        }
        Call::TaskDone if joinable => {
            let mut state = state;
            if state.unfinished == 0 {
                return Err(Failure::TooManyTaskDone.into());
            }
            state.unfinished -= 1;
            queue.changed.notify_all();
            Ok(Reply::Done)
        }
        Call::Join(wait) if joinable => {
            let done = queue.wait_until(state, wait, caller, |s| s.unfinished == 0)?;
            Ok(Reply::Bool(done.is_some()))
        }
        other => Err(no_such_call(kind, &other)),
    }
}

fn user_call(object: &Guarded<Box<dyn Served>>, call: Call) -> Outcome {
    match call {
        Call::Invoke(bytes) => match object.lock().call_bytes(&bytes) {
            Ok(answer) => Ok(Reply::Item(answer)),
            Err(what) => Err(Failure::Refused(what).into()),
        },
        other => Err(no_such_call(Kind::User, &other)),
    }
}
