//! Integration tests of [`shared::Manager`] and its proxies, with the server and the
//! clients in separate processes under every start method: each proxy kind used from a child,
//! mutual exclusion across processes, a killed server (its proxies fail within a bound, a
//! waiting call too), a killed owner (its server ends), a killed lock holder (the lock is
//! released), a wrong authkey, and hostile requests.

use std::time::Duration;

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use serde::{Deserialize, Serialize};
use shared::{
    ArrayProxy, BarrierProxy, Client, ConditionProxy, Connection, DictProxy, EventProxy,
    JoinableQueueProxy, ListProxy, LockProxy, Manager, ManagerError, NamespaceProxy, Pipe,
    QueueProxy, RLockProxy, RecvError, SemaphoreProxy, Shared, SharedProxy, StartMethod,
    ValueProxy,
};

shared::enable_test_support!();

#[macro_use]
mod common;
use common::{Child, LIMIT, exited_within, pidfd_of, within};

under_every_start_method!(
    every_proxy_kind_works_from_a_child,
    a_managed_lock_excludes_across_processes,
    a_proxy_of_a_killed_server_fails_within_a_bound,
    the_server_ends_when_its_owner_is_killed,
    a_lock_held_by_a_killed_process_is_released,
    a_wrong_authkey_is_refused,
    a_registered_type_is_served_to_a_child,
);

fn manager(method: StartMethod) -> Manager {
    Manager::builder()
        .start_method(method)
        .start()
        .expect("start a manager")
}

/// One proxy of each kind, passed to a child as one argument.
#[derive(Serialize, Deserialize)]
struct Proxies {
    dict: DictProxy<String, u32>,
    list: ListProxy<String>,
    array: ArrayProxy<i64>,
    namespace: NamespaceProxy,
    value: ValueProxy<f64>,
    lock: LockProxy,
    rlock: RLockProxy,
    semaphore: SemaphoreProxy,
    event: EventProxy,
    condition: ConditionProxy,
    barrier: BarrierProxy,
    queue: QueueProxy<String>,
    joinable: JoinableQueueProxy<u32>,
}

/// The child's half of [`every_proxy_kind_works_from_a_child`].
fn use_every_proxy(p: Proxies) -> Result<(), ManagerError> {
    let pid = std::process::id();
    p.dict.set(&"filho".into(), &pid)?;
    p.dict.update([("a".to_owned(), 1), ("b".to_owned(), 2)])?;
    p.list.append(&"do filho".into())?;
    p.array.set(-1, &(i64::from(pid)))?;
    p.namespace.set("quem", "filho")?;
    p.value.set_value(&(p.value.value()? * 2.0))?;
    {
        let _outer = p.rlock.acquire()?;
        let _inner = p.rlock.acquire()?;
        let _held = p.lock.acquire()?;
    }
    p.semaphore.release()?;
    let item = p.joinable.get()?;
    p.joinable.task_done()?;
    p.queue.put(&format!("recebi {item}"))?;
    p.event.set()?;
    {
        let _held = p.condition.acquire()?;
        p.condition.notify_all()?;
    }
    p.barrier.wait()?;
    Ok(())
}

fn every_proxy_kind_works_from_a_child(method: StartMethod) {
    let m = manager(method);
    let p = Proxies {
        dict: m.dict().unwrap(),
        list: m.list().unwrap(),
        array: m.array(&[0_i64, 0]).unwrap(),
        namespace: m.namespace().unwrap(),
        value: m.value(&1.5).unwrap(),
        lock: m.lock().unwrap(),
        rlock: m.rlock().unwrap(),
        semaphore: m.bounded_semaphore(1).unwrap(),
        event: m.event().unwrap(),
        condition: m.condition().unwrap(),
        barrier: m.barrier(2).unwrap(),
        queue: m.queue(0).unwrap(),
        joinable: m.joinable_queue(0).unwrap(),
    };
    // The parent holds one semaphore unit; the child gives it back.
    p.semaphore.acquire().unwrap().forget();
    p.list.append(&"do pai".into()).unwrap();
    p.joinable.put(&7).unwrap();

    let copy = Proxies {
        dict: p.dict.clone(),
        list: p.list.clone(),
        array: p.array.clone(),
        namespace: p.namespace.clone(),
        value: p.value.clone(),
        lock: p.lock.clone(),
        rlock: p.rlock.clone(),
        semaphore: p.semaphore.clone(),
        event: p.event.clone(),
        condition: p.condition.clone(),
        barrier: p.barrier.clone(),
        queue: p.queue.clone(),
        joinable: p.joinable.clone(),
    };
    let mut child = Child::start(method, use_every_proxy, (copy,));
    let pid = child.pid().expect("started");
    // Both parties arrive: the child after everything else it does.
    assert!(p.barrier.wait_timeout(LIMIT).is_ok());
    child.expect_success();

    assert_eq!(p.dict.get(&"filho".into()).unwrap(), Some(pid));
    assert_eq!(p.dict.keys().unwrap(), ["filho", "a", "b"]);
    assert_eq!(
        p.dict.get_many(&["b".into(), "z".into()]).unwrap(),
        [Some(2), None]
    );
    assert_eq!(p.list.to_vec().unwrap(), ["do pai", "do filho"]);
    assert_eq!(p.array.to_vec().unwrap(), [0, i64::from(pid)]);
    assert_eq!(p.namespace.get::<String>("quem").unwrap(), "filho");
    assert_eq!(p.value.value().unwrap(), 3.0);
    assert!(p.lock.try_acquire().unwrap().is_some());
    assert!(p.rlock.try_acquire().unwrap().is_some());
    assert_eq!(p.semaphore.get_value().unwrap(), 1);
    assert!(p.joinable.join_timeout(Duration::ZERO).unwrap());
    assert_eq!(p.queue.get_nowait().unwrap(), "recebi 7");
    assert!(p.event.is_set().unwrap());
    assert_eq!(p.barrier.n_waiting().unwrap(), 0);
    assert!(!p.barrier.broken().unwrap());
    m.shutdown().expect("shutdown");
}

const ROUNDS: u32 = 200;

/// Adds 1 to the dict's counter `ROUNDS` times, reading and writing under the lock.
fn count(counter: DictProxy<String, u32>, lock: LockProxy) -> Result<(), ManagerError> {
    for _ in 0..ROUNDS {
        let _held = lock.acquire()?;
        let now = counter.get(&"n".into())?.unwrap_or(0);
        counter.set(&"n".into(), &(now + 1))?;
    }
    Ok(())
}

fn a_managed_lock_excludes_across_processes(method: StartMethod) {
    let m = manager(method);
    let counter = m.dict::<String, u32>().unwrap();
    let lock = m.lock().unwrap();
    let mut children: Vec<Child> = (0..3)
        .map(|_| Child::start(method, count, (counter.clone(), lock.clone())))
        .collect();
    for child in &mut children {
        child.expect_success();
    }
    // A lost update (two read-modify-writes interleaved) would leave less.
    assert_eq!(counter.get(&"n".into()).unwrap(), Some(3 * ROUNDS));
}

fn kill_server(m: &Manager) {
    let pid = m.pid().expect("this manager started its server");
    kill(Pid::from_raw(pid as i32), Signal::SIGKILL).expect("kill the server");
    let pidfd = pidfd_of(pid);
    assert!(exited_within(&pidfd, LIMIT), "the killed server still runs");
}

fn a_proxy_of_a_killed_server_fails_within_a_bound(method: StartMethod) {
    let m = manager(method);
    let dict = m.dict::<String, u32>().unwrap();
    dict.set(&"a".into(), &1).unwrap();
    let fresh = dict.clone();
    // A call that waits in the server when it dies.
    let queue = m.queue::<u32>(0).unwrap();
    let waiting = std::thread::spawn(move || queue.get());
    // It may reach the server before or after the kill: either way it fails, never hangs.
    kill_server(&m);

    let gone = within(LIMIT, move || dict.get(&"a".into()));
    assert!(matches!(gone, Err(ManagerError::ServerGone)), "{gone:?}");
    let never_connected = within(LIMIT, move || fresh.len());
    assert!(
        matches!(never_connected, Err(ManagerError::Connect(_))),
        "{never_connected:?}"
    );
    let waited = within(LIMIT, move || waiting.join().expect("the waiting thread"));
    assert!(
        matches!(
            waited,
            Err(ManagerError::ServerGone | ManagerError::Connect(_))
        ),
        "{waited:?}"
    );
    drop(m);
}

/// Starts a manager, sends its server's PID on `report`, and waits to be killed.
fn own_a_manager(method: String, report: Connection) -> Result<(), ManagerError> {
    let method: StartMethod = method.parse().expect("a start method");
    let m = Manager::builder().start_method(method).start()?;
    report
        .send(&m.pid())
        .map_err(|e| ManagerError::Encode(e.to_string()))?;
    loop {
        std::thread::park();
    }
}

fn the_server_ends_when_its_owner_is_killed(method: StartMethod) {
    let (report, report_write_end) = Pipe::with_duplex(false).expect("pipe");
    let mut owner = Child::start(
        method,
        own_a_manager,
        (method.to_string(), report_write_end),
    );
    let server = within(LIMIT, move || report.recv::<Option<u32>>())
        .expect("the owner reports its server")
        .expect("a server PID");
    let server_pidfd = pidfd_of(server);
    assert!(
        !exited_within(&server_pidfd, Duration::ZERO),
        "the server runs"
    );
    assert_eq!(owner.kill_and_reap(), -9);
    assert!(
        exited_within(&server_pidfd, LIMIT),
        "the server outlived its killed owner"
    );
}

/// Acquires the lock, says so, and waits to be killed holding it.
fn hold_until_killed(lock: LockProxy, report: Connection) -> Result<(), ManagerError> {
    let _held = lock.acquire()?;
    report
        .send(&())
        .map_err(|e| ManagerError::Encode(e.to_string()))?;
    loop {
        std::thread::park();
    }
}

fn a_lock_held_by_a_killed_process_is_released(method: StartMethod) {
    let m = manager(method);
    let lock = m.lock().unwrap();
    let (report, report_write_end) = Pipe::with_duplex(false).expect("pipe");
    let mut holder = Child::start(method, hold_until_killed, (lock.clone(), report_write_end));
    within(LIMIT, move || report.recv::<()>()).expect("the holder reports");
    assert!(lock.try_acquire().unwrap().is_none(), "the holder holds it");
    assert_eq!(holder.kill_and_reap(), -9);
    let taken = within(LIMIT, move || {
        lock.acquire_timeout(LIMIT)
            .map(|guard| guard.map(|g| g.forget()))
    });
    assert!(
        matches!(taken, Ok(Some(()))),
        "the dead holder's lock: {taken:?}"
    );
}

fn a_wrong_authkey_is_refused(method: StartMethod) {
    let address = format!("@shared-manager-test-key-{}-{method:?}", std::process::id());
    let m = Manager::builder()
        .address(address.as_str())
        .authkey(b"chave certa")
        .start_method(method)
        .start()
        .expect("start");
    let refused = Manager::connect(address.as_str(), b"chave errada").unwrap_err();
    assert!(
        matches!(refused, ManagerError::Connect(ref e) if e.is_authentication()),
        "{refused:?}"
    );
    let other = Manager::connect(address.as_str(), b"chave certa").expect("the right key");
    let named = other.named::<ListProxy<u8>>("lista").unwrap();
    named.append(&1).unwrap();
    assert_eq!(
        m.named::<ListProxy<u8>>("lista").unwrap().to_vec().unwrap(),
        [1]
    );
    let wrong_kind = m.named::<DictProxy<u8, u8>>("lista").unwrap_err();
    assert!(
        matches!(wrong_kind, ManagerError::Refused(_)),
        "{wrong_kind:?}"
    );
}

/// The authkey of [`listening`]'s managers.
const KEY: &[u8] = b"chave";

/// A manager at an abstract address named after `test`, which a raw [`Client`] can reach with
/// [`KEY`], holding a dict with `"a": 1`.
fn listening(test: &str) -> (Manager, DictProxy<String, u32>, String) {
    let address = format!("@shared-manager-test-{test}-{}", std::process::id());
    let m = Manager::builder()
        .address(address.as_str())
        .authkey(KEY)
        .start()
        .expect("start");
    let dict = m.dict::<String, u32>().unwrap();
    dict.set(&"a".into(), &1).unwrap();
    (m, dict, address)
}

#[test]
fn hostile_requests_are_refused_and_the_server_goes_on() {
    let (m, dict, address) = listening("hostile");
    let key = KEY;

    // Bytes that are no request: refused with an answer, and the connection goes on.
    let raw = Client::connect(address.as_str(), Some(key)).expect("connect");
    raw.send_bytes(b"\xc1 nada disso").expect("send");
    let answer = raw.recv_bytes().expect("an answer");
    assert!(String::from_utf8_lossy(&answer).contains("not a request"));

    // An id nobody made, and a call its object does not have.
    let stray = m.list::<u8>().unwrap();
    let unknown: DictProxy<String, u32> = {
        // A proxy forged from a list's token reads as a dict: the server refuses its calls.
        let bytes = rmp_serde::to_vec(&stray).unwrap();
        rmp_serde::from_slice(&bytes).unwrap()
    };
    let refused = unknown.get(&"a".into()).unwrap_err();
    assert!(
        matches!(refused, ManagerError::Refused(ref what) if what.contains("list has no call")),
        "{refused:?}"
    );

    // A message over the limit: the server reads its length header, refuses it before
    // allocating anything, and closes that connection.
    let greedy = Client::connect(address.as_str(), Some(key)).expect("connect");
    let sent = greedy.send_bytes(&vec![0; shared::MAX_REQUEST + 1]);
    let answer = within(LIMIT, move || greedy.recv_bytes());
    assert!(
        matches!(answer, Err(RecvError::Closed)),
        "sent: {sent:?}, answer: {answer:?}"
    );

    // The server still serves everyone else.
    assert_eq!(dict.get(&"a".into()).unwrap(), Some(1));
}

#[test]
fn malformed_request_headers_are_refused_and_the_connection_goes_on() {
    let (_manager, dict, address) = listening("headers");
    let key = KEY;

    // A request is `[code: u8][object: u64 LE][arguments]` (see `manager/codec.rs`); each of
    // these is answered with a refusal that says what was wrong, on a connection that goes on.
    let mut raw = Client::connect(address.as_str(), Some(key)).expect("connect");
    let header = |code: u8| {
        let mut request = vec![code];
        request.extend_from_slice(&1_u64.to_le_bytes());
        request
    };
    let mut oversized_key = header(0x11);
    oversized_key.extend_from_slice(&u32::MAX.to_le_bytes());
    oversized_key.extend_from_slice(b"abc");
    let mut old_client = header(0x02);
    old_client.push(1);
    let cases: [(&[u8], &str); 5] = [
        (b"\x03\x01", "shorter than a request's header"),
        (&header(0x7f), "unknown request code 0x7f"),
        (&oversized_key, "a key of 4294967295 bytes"),
        (&old_client, "a client of manager protocol 1"),
        // The first request of a build before this layout, `Request { 0, Pipes }` as
        // MessagePack.
        (b"\x92\x00\xa5Pipes", "unknown request code 0x92"),
    ];
    for (request, refusal) in cases {
        raw.send_bytes(request).expect("send");
        let (answer, back) = within(LIMIT, move || (raw.recv_bytes(), raw));
        raw = back;
        let answer = String::from_utf8_lossy(&answer.expect("an answer")).into_owned();
        assert!(
            answer.contains("not a request") && answer.contains(refusal),
            "{request:?}: {answer}"
        );
    }

    // The server still serves everyone else.
    assert_eq!(dict.get(&"a".into()).unwrap(), Some(1));
}

/// A type of the test's own, held by the server: a log of words.
#[derive(Default)]
struct Diario(Vec<String>);

#[derive(Serialize, Deserialize)]
enum Entrada {
    Escrever(String),
    Ler,
}

impl Shared for Diario {
    const TYPE_ID: &'static str = "Diario";
    type Call = Entrada;
    type Reply = Vec<String>;
    fn call(&mut self, call: Entrada) -> Vec<String> {
        match call {
            Entrada::Escrever(word) => {
                self.0.push(word);
                Vec::new()
            }
            Entrada::Ler => self.0.clone(),
        }
    }
}

fn write_in(diario: SharedProxy<Diario>) -> Result<(), ManagerError> {
    diario.call(&Entrada::Escrever(format!("filho {}", std::process::id())))?;
    Ok(())
}

fn a_registered_type_is_served_to_a_child(method: StartMethod) {
    let m = Manager::builder()
        .register::<(Diario,)>()
        .start_method(method)
        .start()
        .expect("start");
    let diario = m.shared::<Diario>().unwrap();
    diario.call(&Entrada::Escrever("pai".into())).unwrap();
    let mut child = Child::start(method, write_in, (diario.clone(),));
    let pid = child.pid().expect("started");
    child.expect_success();
    assert_eq!(
        diario.call(&Entrada::Ler).unwrap(),
        ["pai".to_owned(), format!("filho {pid}")]
    );
    // A manager without the type refuses to make one.
    let plain = manager(method);
    let refused = plain.shared::<Diario>().unwrap_err();
    assert!(
        matches!(refused, ManagerError::Refused(ref what) if what.contains("Diario")),
        "{refused:?}"
    );
}
