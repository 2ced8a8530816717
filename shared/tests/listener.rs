//! Integration tests of [`shared::Listener`] and [`shared::Client`]: addresses, the
//! authentication handshake, and the socket file, within one process and across processes.
//!
//! Every wait is bounded ([`within`], [`LIMIT`]); every address is unique to its test, and
//! every socket file lives in a directory the test removes. Tests run one at a time (see
//! [`serial`]): a forked child copies every descriptor of the test process, and a copy of
//! another test's connection would delay the end of file that test checks for.

use std::fs;
use std::io::Write;
use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use shared::{
    Address, AuthenticationError, Client, ConnectError, Connection, HANDSHAKE_TIMEOUT, Listener,
    Pipe, RecvError, StartMethod,
};

shared::enable_test_support!();

#[macro_use]
mod common;
use common::{Child, LIMIT, within};

under_both_start_methods!(
    a_child_connects_by_address_and_talks_both_ways,
    a_killed_listener_frees_its_abstract_name,
    a_killed_listener_leaves_its_file_and_the_next_bind_replaces_it,
    an_accepted_connection_can_be_handed_to_a_child,
);

const KEY: &[u8] = b"chave secreta";

/// Makes the tests of this file run one at a time; see the module documentation.
fn serial() -> std::sync::MutexGuard<'static, ()> {
    static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());
    SERIAL
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// An abstract address no other test (or test run) uses.
fn unique_abstract() -> String {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    format!("@shared-listener-test-{}-{n}", std::process::id())
}

/// A fresh directory for socket files, removed (with whatever is left in it) on drop, after
/// the test has checked what it expects to find there.
struct SocketDir(PathBuf);

impl SocketDir {
    fn new() -> SocketDir {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("shared-listener-{}-{n}", std::process::id()));
        fs::create_dir_all(&dir).expect("create the socket directory");
        SocketDir(dir)
    }

    fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }

    fn entries(&self) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(&self.0)
            .expect("read the socket directory")
            .map(|entry| {
                entry
                    .expect("entry")
                    .file_name()
                    .to_string_lossy()
                    .into_owned()
            })
            .collect();
        names.sort();
        names
    }
}

impl Drop for SocketDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

fn is_socket_file(path: &Path) -> bool {
    fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_socket())
}

/// Connects from another thread; returns the client's end (or error) once `accept` returned.
fn accept_and_connect(
    listener: &Listener,
    client_key: Option<&'static [u8]>,
) -> (
    Result<Connection, ConnectError>,
    Result<Connection, ConnectError>,
) {
    let address = listener.address().clone();
    let client = std::thread::spawn(move || Client::connect(address, client_key));
    let accepted = listener.accept();
    let connected = within(LIMIT, move || client.join().expect("the client thread"));
    (accepted, connected)
}

fn authentication_error(result: Result<Connection, ConnectError>) -> AuthenticationError {
    match result {
        Err(ConnectError::Authentication(error)) => error,
        other => panic!("expected an authentication error, got {other:?}"),
    }
}

// ---------------------------------------------------------------------------------------------
// Addresses and messages.

#[test]
fn addresses_parse_and_display_as_written() {
    let _serial = serial();
    assert_eq!(
        Address::parse("@nome"),
        Address::Abstract("nome".to_owned())
    );
    assert_eq!(
        Address::parse("\0nome"),
        Address::Abstract("nome".to_owned())
    );
    assert_eq!(
        Address::parse("rel/c.sock"),
        Address::Path("rel/c.sock".into())
    );
    assert_eq!(Address::parse("@nome").to_string(), "@nome");
    assert_eq!(Address::parse("/tmp/c.sock").to_string(), "/tmp/c.sock");
}

#[test]
fn an_abstract_listener_and_a_client_exchange_values_and_bytes() {
    let _serial = serial();
    let address = unique_abstract();
    let listener = Listener::bind(address.as_str(), 1, None).expect("bind");
    assert_eq!(listener.address(), &Address::parse(&address));
    let (accepted, connected) = accept_and_connect(&listener, None);
    let (server, client) = (accepted.expect("accept"), connected.expect("connect"));
    assert!(server.readable() && server.writable() && client.readable() && client.writable());
    client.send(&("olá", 1_u8)).expect("send");
    assert_eq!(
        server.recv::<(String, u8)>().expect("recv"),
        ("olá".to_owned(), 1)
    );
    server.send_bytes(&[7; 100_000]).expect("send_bytes");
    let received = within(LIMIT, move || client.recv_bytes());
    assert_eq!(received.expect("recv_bytes"), vec![7; 100_000]);
    drop(server);
}

#[test]
fn closing_one_end_is_end_of_file_at_the_other() {
    let _serial = serial();
    let listener = Listener::bind(unique_abstract().as_str(), 1, Some(KEY)).expect("bind");
    let (accepted, connected) = accept_and_connect(&listener, Some(KEY));
    let (server, client) = (accepted.expect("accept"), connected.expect("connect"));
    client.send("último").expect("send");
    client.close();
    assert_eq!(server.recv::<String>().expect("recv"), "último");
    assert!(matches!(server.recv::<String>(), Err(RecvError::Closed)));
}

#[test]
fn connecting_where_nobody_listens_is_an_os_error() {
    let _serial = serial();
    let refused = Client::connect(unique_abstract().as_str(), None).unwrap_err();
    match refused {
        ConnectError::Os(error) => assert_eq!(error.kind(), std::io::ErrorKind::ConnectionRefused),
        other => panic!("expected ConnectionRefused, got {other}"),
    }
    let dir = SocketDir::new();
    let missing = Client::connect(dir.path("nada.sock"), None).unwrap_err();
    match missing {
        ConnectError::Os(error) => assert_eq!(error.kind(), std::io::ErrorKind::NotFound),
        other => panic!("expected NotFound, got {other}"),
    }
}

// ---------------------------------------------------------------------------------------------
// Authentication.

#[test]
fn the_same_key_on_both_sides_authenticates() {
    let _serial = serial();
    let listener = Listener::bind(unique_abstract().as_str(), 1, Some(KEY)).expect("bind");
    let (accepted, connected) = accept_and_connect(&listener, Some(KEY));
    let (server, client) = (accepted.expect("accept"), connected.expect("connect"));
    // Nothing of the handshake is left to read on either side.
    assert!(!server.poll(Some(Duration::ZERO)).expect("poll"));
    assert!(!client.poll(Some(Duration::ZERO)).expect("poll"));
    server.send(&1).expect("send");
    assert_eq!(client.recv::<i32>().expect("recv"), 1);
}

#[test]
fn a_wrong_key_fails_on_both_sides_and_the_listener_goes_on() {
    let _serial = serial();
    let listener = Listener::bind(unique_abstract().as_str(), 1, Some(KEY)).expect("bind");
    let (accepted, connected) = accept_and_connect(&listener, Some(b"outra chave"));
    let on_listener = authentication_error(accepted);
    let on_client = authentication_error(connected);
    assert!(
        matches!(on_listener, AuthenticationError::WrongDigest),
        "{on_listener}"
    );
    assert_eq!(on_listener.to_string(), "digest received was wrong");
    assert!(
        matches!(on_client, AuthenticationError::Rejected),
        "{on_client}"
    );
    assert_eq!(on_client.to_string(), "digest sent was rejected");
    // The failed client got no connection to send on; the next, honest one is accepted.
    let (accepted, connected) = accept_and_connect(&listener, Some(KEY));
    let (server, client) = (accepted.expect("accept"), connected.expect("connect"));
    client.send("depois").expect("send");
    assert_eq!(server.recv::<String>().expect("recv"), "depois");
}

#[test]
fn a_client_without_the_key_sends_no_payload_through() {
    let _serial = serial();
    let listener = Listener::bind(unique_abstract().as_str(), 1, Some(KEY)).expect("bind");
    let address = listener.address().clone();
    let client = std::thread::spawn(move || {
        let client = Client::connect(address, None)?;
        // Not knowing about the handshake, it sends its payload at once.
        client.send("carga")?;
        Ok::<_, Box<dyn std::error::Error + Send + Sync>>(client)
    });
    let error = authentication_error(listener.accept());
    assert!(matches!(error, AuthenticationError::Protocol(_)), "{error}");
    let client = within(LIMIT, move || client.join().expect("thread")).expect("client");
    // What it got instead of a payload's answer is the challenge, then end of file.
    let challenge = client.recv_bytes().expect("the challenge");
    assert!(
        challenge.starts_with(b"#CHALLENGE#{sha256}"),
        "{challenge:?}"
    );
    let rest: Vec<Vec<u8>> = std::iter::from_fn(|| client.recv_bytes().ok()).collect();
    assert_eq!(rest, [b"#FAILURE#".to_vec()]);
}

#[test]
fn a_client_with_a_key_refuses_a_listener_without_one() {
    let _serial = serial();
    let listener = Listener::bind(unique_abstract().as_str(), 1, None).expect("bind");
    let address = listener.address().clone();
    let client = std::thread::spawn(move || Client::connect(address, Some(KEY)));
    let server = listener.accept().expect("accept");
    server.send("olá").expect("send");
    let error = authentication_error(within(LIMIT, move || client.join().expect("thread")));
    match error {
        AuthenticationError::Protocol(what) => {
            assert!(what.starts_with("expected a challenge"), "{what}")
        }
        other => panic!("expected a protocol error, got {other}"),
    }
}

#[test]
fn an_oversized_handshake_message_is_refused_before_it_is_read() {
    let _serial = serial();
    let listener = Listener::bind(unique_abstract().as_str(), 1, Some(KEY)).expect("bind");
    let address = listener.address().clone();
    let client = std::thread::spawn(move || {
        let client = Client::connect(address, None).expect("connect");
        // A first message of 300 bytes, where the handshake allows 256.
        client.send_bytes(&vec![0; 300]).expect("send_bytes");
        client
    });
    let error = authentication_error(listener.accept());
    match error {
        AuthenticationError::Protocol(what) => assert!(
            what.contains("300 bytes") && what.contains("limit of 256"),
            "{what}"
        ),
        other => panic!("expected a protocol error, got {other}"),
    }
    drop(within(LIMIT, move || client.join().expect("thread")));
}

#[test]
fn a_silent_client_times_out_instead_of_holding_accept() {
    let _serial = serial();
    let listener = Listener::bind(unique_abstract().as_str(), 1, Some(KEY)).expect("bind");
    let address = listener.address().clone();
    // Connected, then silent: it answers no challenge.
    let silent = Client::connect(address, None).expect("connect");
    let began = Instant::now();
    let error = within(LIMIT, move || authentication_error(listener.accept()));
    assert!(matches!(error, AuthenticationError::Timeout), "{error}");
    assert!(
        began.elapsed() >= HANDSHAKE_TIMEOUT,
        "{:?}",
        began.elapsed()
    );
    drop(silent);
}

#[test]
fn a_peer_that_closes_mid_handshake_is_reported_closed() {
    let _serial = serial();
    let listener = Listener::bind(unique_abstract().as_str(), 1, Some(KEY)).expect("bind");
    let client = Client::connect(listener.address().clone(), None).expect("connect");
    client.close();
    let error = authentication_error(listener.accept());
    assert!(matches!(error, AuthenticationError::Closed), "{error}");
}

// ---------------------------------------------------------------------------------------------
// The socket file.

#[test]
fn a_path_listener_removes_its_file_on_close_and_on_drop() {
    let _serial = serial();
    let dir = SocketDir::new();
    let path = dir.path("c.sock");
    let listener = Listener::bind(path.as_path(), 1, None).expect("bind");
    assert!(is_socket_file(&path));
    listener.close();
    assert_eq!(dir.entries(), Vec::<String>::new());

    {
        let _listener = Listener::bind(path.as_path(), 1, None).expect("bind again");
        assert_eq!(dir.entries(), ["c.sock"]);
    }
    assert_eq!(dir.entries(), Vec::<String>::new());
}

#[test]
fn a_path_in_use_is_refused_and_left_alone() {
    let _serial = serial();
    let dir = SocketDir::new();
    let path = dir.path("c.sock");
    let listener = Listener::bind(path.as_path(), 1, None).expect("bind");
    let refused = Listener::bind(path.as_path(), 1, None).unwrap_err();
    assert_eq!(refused.kind(), std::io::ErrorKind::AddrInUse);
    // The first listener still listens at its file.
    let (accepted, connected) = accept_and_connect(&listener, None);
    connected.expect("connect").send(&5).expect("send");
    assert_eq!(accepted.expect("accept").recv::<i32>().expect("recv"), 5);

    // A live socket of another program (no liveness name of this crate) is tried with a
    // connection, which it accepts: still in use.
    let foreign_path = dir.path("outro.sock");
    let foreign = std::os::unix::net::UnixListener::bind(&foreign_path).unwrap();
    let refused = Listener::bind(foreign_path.as_path(), 1, None).unwrap_err();
    assert_eq!(refused.kind(), std::io::ErrorKind::AddrInUse);
    assert!(is_socket_file(&foreign_path));
    drop(foreign);

    let regular = dir.path("arquivo");
    fs::File::create(&regular)
        .unwrap()
        .write_all(b"dados")
        .unwrap();
    let refused = Listener::bind(regular.as_path(), 1, None).unwrap_err();
    assert_eq!(refused.kind(), std::io::ErrorKind::AddrInUse);
    assert_eq!(fs::read(&regular).unwrap(), b"dados");
}

#[test]
fn a_listener_does_not_remove_a_file_that_replaced_its_own() {
    let _serial = serial();
    let dir = SocketDir::new();
    let path = dir.path("c.sock");
    let listener = Listener::bind(path.as_path(), 1, None).expect("bind");
    fs::remove_file(&path).unwrap();
    fs::File::create(&path)
        .unwrap()
        .write_all(b"outro")
        .unwrap();
    listener.close();
    assert_eq!(fs::read(&path).unwrap(), b"outro");
}

// ---------------------------------------------------------------------------------------------
// Across processes.

/// Connects to `address` with the key, answers each number with its double, until 0.
fn doubler(address: String) -> Result<(), Box<dyn std::error::Error>> {
    let connection = Client::connect(address.as_str(), Some(KEY))?;
    loop {
        let n: i64 = connection.recv()?;
        if n == 0 {
            return Ok(());
        }
        connection.send(&(2 * n))?;
    }
}

fn a_child_connects_by_address_and_talks_both_ways(method: StartMethod) {
    let _serial = serial();
    let address = unique_abstract();
    let listener = Listener::bind(address.as_str(), 1, Some(KEY)).expect("bind");
    let mut child = Child::start(method, doubler, (address,));
    let connection = within(LIMIT, move || listener.accept()).expect("accept");
    for n in [1, -21, 1 << 40] {
        connection.send(&n).expect("send");
        assert_eq!(connection.recv::<i64>().expect("recv"), 2 * n);
    }
    connection.send(&0_i64).expect("send");
    assert_eq!(child.exit_code_within(LIMIT), 0);
}

/// Listens at `address`, says so on `ready`, and waits to be killed.
fn listen_until_killed(
    address: String,
    ready: Connection,
) -> Result<(), Box<dyn std::error::Error>> {
    let _listener = Listener::bind(address.as_str(), 1, None)?;
    ready.send(&())?;
    loop {
        std::thread::park();
    }
}

fn bind_in_a_child_then_kill_it(method: StartMethod, address: &str) {
    let (ready, ready_write_end) = Pipe::with_duplex(false).expect("pipe");
    let mut child = Child::start(
        method,
        listen_until_killed,
        (address.to_owned(), ready_write_end),
    );
    let ready = within(LIMIT, move || ready.recv::<()>());
    assert!(ready.is_ok(), "the child did not listen: {ready:?}");
    assert_eq!(child.kill_and_reap(), -9);
}

fn a_killed_listener_frees_its_abstract_name(method: StartMethod) {
    let _serial = serial();
    let address = unique_abstract();
    bind_in_a_child_then_kill_it(method, &address);
    // Nothing to clean: the kernel freed the name with the killed process's descriptors.
    let listener = Listener::bind(address.as_str(), 1, None).expect("the name is free again");
    let (accepted, connected) = accept_and_connect(&listener, None);
    connected.expect("connect").send("de novo").expect("send");
    assert_eq!(
        accepted.expect("accept").recv::<String>().expect("recv"),
        "de novo"
    );
}

fn a_killed_listener_leaves_its_file_and_the_next_bind_replaces_it(method: StartMethod) {
    let _serial = serial();
    let dir = SocketDir::new();
    let path = dir.path("morto.sock");
    bind_in_a_child_then_kill_it(method, path.to_str().expect("a UTF-8 path"));
    // A killed process removes nothing: its socket file is still there, and refuses.
    assert!(is_socket_file(&path));
    let refused = Client::connect(path.as_path(), None).unwrap_err();
    assert!(
        matches!(refused, ConnectError::Os(ref e) if e.kind() == std::io::ErrorKind::ConnectionRefused)
    );
    // The next listener at that path replaces the stale file, and removes its own on close.
    let listener = Listener::bind(path.as_path(), 1, None).expect("bind over a stale file");
    let (accepted, connected) = accept_and_connect(&listener, None);
    connected.expect("connect").send("vivo").expect("send");
    assert_eq!(
        accepted.expect("accept").recv::<String>().expect("recv"),
        "vivo"
    );
    listener.close();
    assert_eq!(dir.entries(), Vec::<String>::new());
}

/// Answers one string, upper-cased.
fn shout_back(connection: Connection) -> Result<(), Box<dyn std::error::Error>> {
    let text: String = connection.recv()?;
    connection.send(&text.to_uppercase())?;
    Ok(())
}

fn an_accepted_connection_can_be_handed_to_a_child(method: StartMethod) {
    let _serial = serial();
    let listener = Listener::bind(unique_abstract().as_str(), 1, Some(KEY)).expect("bind");
    let (accepted, connected) = accept_and_connect(&listener, Some(KEY));
    let (server, client) = (accepted.expect("accept"), connected.expect("connect"));
    // A message already waiting (maybe already read ahead) crosses with the end.
    client.send("olá").expect("send");
    let mut child = Child::start(method, shout_back, (server,));
    assert_eq!(
        within(LIMIT, move || client.recv::<String>()).expect("recv"),
        "OLÁ"
    );
    assert_eq!(child.exit_code_within(LIMIT), 0);
}
