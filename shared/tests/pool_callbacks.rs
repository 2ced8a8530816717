//! `callback` and `error_callback` of the pool's `_async` calls (issue 22), each under every
//! start method: exactly one of them runs, once, on the pool's supervisor thread, before the
//! result's `get` returns; the error callback gets the error. Every wait is bounded: a hang
//! fails the test instead of blocking it.

use std::sync::mpsc;
use std::sync::{Arc, Mutex, MutexGuard};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use shared::{Callbacks, Pool, PoolError, StartMethod};

shared::enable_test_support!();

#[macro_use]
mod common;
use common::{LIMIT, within};

under_every_start_method!(
    each_callback_runs_once_before_get_returns,
    the_error_callback_gets_the_error,
    callbacks_run_for_a_dropped_result,
    a_panicking_callback_harms_nothing_else,
    a_worker_s_death_reaches_the_error_callback,
);

fn square(x: u64) -> u64 {
    x * x
}

fn add(a: i64, b: i64) -> i64 {
    a + b
}

fn checked_half(x: i64) -> Result<i64, String> {
    if x % 2 == 0 {
        Ok(x / 2)
    } else {
        Err(format!("{x} é ímpar"))
    }
}

/// Kills its own worker on 3, as the OOM killer would.
fn dies_on_three(x: u64) -> u64 {
    if x == 3 {
        let _ = kill(Pid::this(), Signal::SIGKILL);
    }
    x
}

/// The tests of this file run one at a time. One of them panics on purpose in this process
/// (a callback), and a worker forked while the panic hook runs would inherit std's hook lock
/// held for ever, and block in its own `set_hook`: the other tests must not fork then.
fn one_at_a_time() -> MutexGuard<'static, ()> {
    static SERIAL: Mutex<()> = Mutex::new(());
    SERIAL
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn pool(method: StartMethod) -> Pool {
    Pool::builder()
        .processes(2)
        .start_method(method)
        .build()
        .expect("pool")
}

/// What the callbacks saw: (call, value or error message, the thread they ran on).
type Seen = Arc<Mutex<Vec<(u64, Result<String, String>, Option<String>)>>>;

fn recorder() -> Seen {
    Arc::new(Mutex::new(Vec::new()))
}

/// Callbacks recording `call`'s outcome in `seen`.
fn recording<T: std::fmt::Debug + Send + 'static>(seen: &Seen, call: u64) -> Callbacks<T> {
    let (ok, err) = (Arc::clone(seen), Arc::clone(seen));
    let thread = || std::thread::current().name().map(str::to_owned);
    Callbacks::new()
        .callback(move |value: T| {
            ok.lock()
                .unwrap()
                .push((call, Ok(format!("{value:?}")), thread()));
        })
        .error_callback(move |error: PoolError| {
            err.lock()
                .unwrap()
                .push((call, Err(error.to_string()), thread()));
        })
}

fn each_callback_runs_once_before_get_returns(method: StartMethod) {
    let _serial = one_at_a_time();
    let pool = pool(method);
    let seen = recorder();
    let check = Arc::clone(&seen);
    within(LIMIT, move || {
        let applied: Vec<_> = (0..20)
            .map(|x| {
                pool.apply_async_with(square, (x,), recording(&seen, x))
                    .expect("apply_async_with")
            })
            .collect();
        let mapped = pool
            .map_async_with(square, 0..5, recording(&seen, 100))
            .expect("map_async_with");
        let starmapped = pool
            .starmap_async_with(add, [(1, 2), (3, 4)], recording(&seen, 200))
            .expect("starmap_async_with");
        for (x, result) in (0..).zip(&applied) {
            assert_eq!(result.get().expect("square"), x * x);
            // CPython runs the callback before `get` returns: so does this pool.
            let calls = seen.lock().unwrap().iter().filter(|s| s.0 == x).count();
            assert_eq!(calls, 1, "call {x}: its callback ran {calls} times by get");
        }
        assert_eq!(mapped.get().expect("map"), [0, 1, 4, 9, 16]);
        assert_eq!(starmapped.get().expect("starmap"), [3, 7]);
        pool.close();
        pool.join().expect("join");
    });
    // The pool has ended: no callback can run any more.
    let seen = check.lock().unwrap();
    assert_eq!(seen.len(), 22, "{seen:?}");
    for x in 0..20 {
        let calls: Vec<_> = seen.iter().filter(|s| s.0 == x).collect();
        assert_eq!(calls.len(), 1, "call {x}: {calls:?}");
        assert_eq!(calls[0].1, Ok(format!("{}", x * x)));
    }
    let map = seen
        .iter()
        .find(|s| s.0 == 100)
        .expect("the map's callback");
    assert_eq!(map.1, Ok("[0, 1, 4, 9, 16]".to_owned()));
    let starmap = seen.iter().find(|s| s.0 == 200).expect("the starmap's");
    assert_eq!(starmap.1, Ok("[3, 7]".to_owned()));
    // CPython's result-handler thread: here the pool's supervisor.
    for (call, _, thread) in seen.iter() {
        assert_eq!(thread.as_deref(), Some("pool-supervisor"), "call {call}");
    }
}

fn the_error_callback_gets_the_error(method: StartMethod) {
    let _serial = one_at_a_time();
    let pool = pool(method);
    let seen = recorder();
    let check = Arc::clone(&seen);
    within(LIMIT, move || {
        let odd = pool
            .apply_async_with(checked_half, (3,), recording(&seen, 0))
            .expect("apply_async_with");
        assert!(odd.get().is_err());
        let halves = pool
            .map_async_with(checked_half, [2, 4, 5, 7], recording(&seen, 1))
            .expect("map_async_with");
        assert!(halves.get().is_err());
        let even = pool
            .apply_async_with(checked_half, (8,), recording(&seen, 2))
            .expect("apply_async_with");
        assert_eq!(even.get().expect("half"), 4);
        pool.close();
        pool.join().expect("join");
    });
    let seen = check.lock().unwrap();
    let outcomes: Vec<_> = seen.iter().map(|s| (s.0, s.1.clone())).collect();
    assert_eq!(
        outcomes,
        [
            (0, Err("the task failed: 3 é ímpar".to_owned())),
            // The first failure in input order, as `get` gives it.
            (1, Err("the task failed: 5 é ímpar".to_owned())),
            (2, Ok("4".to_owned())),
        ]
    );
}

fn callbacks_run_for_a_dropped_result(method: StartMethod) {
    let _serial = one_at_a_time();
    let pool = pool(method);
    let (sender, receiver) = mpsc::channel();
    within(LIMIT, move || {
        for x in 0..10 {
            let sender = sender.clone();
            let result = pool
                .apply_async_with(
                    square,
                    (x,),
                    Callbacks::new().callback(move |value| sender.send(value).unwrap()),
                )
                .expect("apply_async_with");
            drop(result);
        }
        pool.close();
        pool.join().expect("join");
    });
    let mut squares: Vec<u64> = receiver.try_iter().collect();
    squares.sort_unstable();
    assert_eq!(squares, (0..10).map(|x| x * x).collect::<Vec<_>>());
}

fn a_panicking_callback_harms_nothing_else(method: StartMethod) {
    let _serial = one_at_a_time();
    let pool = pool(method);
    within(LIMIT, move || {
        let result = pool
            .apply_async_with(
                square,
                (3,),
                Callbacks::new().callback(|_| panic!("a callback that panics")),
            )
            .expect("apply_async_with");
        assert_eq!(result.get().expect("the result is there"), 9);
        let (sender, receiver) = mpsc::channel();
        let next = pool
            .apply_async_with(
                square,
                (4,),
                Callbacks::new().callback(move |value| sender.send(value).unwrap()),
            )
            .expect("the pool goes on");
        assert_eq!(next.get().expect("square"), 16);
        assert_eq!(receiver.try_recv(), Ok(16));
    });
}

fn a_worker_s_death_reaches_the_error_callback(method: StartMethod) {
    let _serial = one_at_a_time();
    let pool = pool(method);
    let (sender, receiver) = mpsc::channel();
    within(LIMIT, move || {
        let result = pool
            .chunked(1)
            .map_async_with(
                dies_on_three,
                0..6,
                Callbacks::new()
                    .callback(|_| panic!("a call failed"))
                    .error_callback(move |error| sender.send(error).unwrap()),
            )
            .expect("map_async_with");
        assert!(result.get().is_err());
        match receiver.try_recv() {
            Ok(PoolError::WorkerDied { exitcode: -9, .. }) => {}
            other => panic!("expected WorkerDied, got {other:?}"),
        }
    });
}
