//! A [`Listener`] serves every honest client while others stall their handshakes: a silent
//! client and a client that trickles its answer a byte at a time, both connected first, delay
//! neither the honest client's `connect` nor its `accept` (issue 25: CPython's `accept` runs
//! handshakes in turn, and such a pair held an honest client for a minute).

use std::io::Write;
use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use shared::{AuthenticationError, Client, ConnectError, HANDSHAKE_TIMEOUT, Listener};

#[allow(unused_macros, reason = "this file runs no child")]
mod common;
use common::{LIMIT, within};

const KEY: &[u8] = b"chave secreta";

/// How long the honest client may take, from its `connect` to the end of its `accept`: well
/// under one handshake deadline, so a listener that ran the stalled handshakes first (each
/// holding it for up to [`HANDSHAKE_TIMEOUT`]) fails, and far above what a handshake costs.
const SERVED_WITHIN: Duration = Duration::from_millis(2500);

/// A raw socket connected to the abstract name `address` (without its `@`), which will say
/// nothing of the handshake.
fn raw_connect(address: &str) -> UnixStream {
    let name = address.strip_prefix('@').expect("an abstract address");
    let address = SocketAddr::from_abstract_name(name).expect("an abstract name");
    UnixStream::connect_addr(&address).expect("connect")
}

/// Sends a length header announcing 200 bytes and then the bytes, one every 100 ms, until
/// the listener closes the connection or `stop` is set: a peer that always sends a little,
/// so only a deadline for the whole handshake ends it.
fn trickle(mut socket: UnixStream, stop: Arc<AtomicBool>) {
    let header = 200_u32.to_le_bytes();
    let bytes = header.iter().copied().chain(std::iter::repeat(b'x'));
    for byte in bytes {
        if stop.load(Ordering::Relaxed) || socket.write_all(&[byte]).is_err() {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn expect_timeout(result: Result<shared::Connection, ConnectError>) {
    match result {
        Err(ConnectError::Authentication(AuthenticationError::Timeout)) => {}
        other => panic!("expected a handshake timeout, got {other:?}"),
    }
}

#[test]
fn a_silent_and_a_trickling_client_do_not_delay_an_honest_one() {
    let address = format!("@shared-handshakes-test-{}", std::process::id());
    let listener = Listener::bind(address.as_str(), 8, Some(KEY)).expect("bind");
    let began = Instant::now();

    // Connected first, so a listener that takes handshakes in turn meets them first.
    let silent = raw_connect(&address);
    let stop = Arc::new(AtomicBool::new(false));
    let trickler = {
        let (socket, stop) = (raw_connect(&address), Arc::clone(&stop));
        std::thread::spawn(move || trickle(socket, stop))
    };

    let honest = {
        let address = address.clone();
        std::thread::spawn(move || {
            let connection = Client::connect(address.as_str(), Some(KEY))?;
            connection.send("olá")?;
            Ok::<_, Box<dyn std::error::Error + Send + Sync>>(connection)
        })
    };
    let listener = Arc::new(listener);
    let accepting = Arc::clone(&listener);
    let asked = Instant::now();
    let served = within(LIMIT, move || accepting.accept()).expect("the honest client");
    let waited = asked.elapsed();
    assert_eq!(served.recv::<String>().expect("recv"), "olá");
    let client = within(LIMIT, move || honest.join().expect("the client thread"));
    client.expect("the honest client's connect");
    assert!(
        waited < SERVED_WITHIN,
        "the honest client was served after {waited:?}, behind the stalled handshakes"
    );

    // The two stalled handshakes end at their one deadline, the trickler's too although it
    // never stops sending: each `accept` returns one of them.
    for _ in 0..2 {
        let accepting = Arc::clone(&listener);
        expect_timeout(within(LIMIT, move || accepting.accept()));
    }
    let took = began.elapsed();
    assert!(
        took < HANDSHAKE_TIMEOUT + SERVED_WITHIN,
        "the stalled handshakes ended only after {took:?}"
    );
    stop.store(true, Ordering::Relaxed);
    within(LIMIT, move || trickler.join().expect("the trickler"));
    drop(silent);
}
