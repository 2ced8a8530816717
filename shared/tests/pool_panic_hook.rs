//! A pool forked while another thread of the program is inside its panic hook. std keeps the
//! hook behind a lock, and `fork` copies that lock as it is: a worker that replaced the hook
//! itself waited for ever on a lock whose holder does not exist in it. Its own file, because
//! the test replaces the program's panic hook and holds it.
//!
//! Fork only: a spawned or forkserver worker is a new program with one thread, where no lock
//! of the parent's can be held.

use std::sync::mpsc;
use std::sync::{Arc, Mutex};

use shared::{Pool, StartMethod};

shared::enable_test_support!();

#[allow(unused_macros)] // one test, under fork only
mod common;
use common::LIMIT;

fn square(x: u64) -> u64 {
    x * x
}

fn panics(x: u64) -> u64 {
    panic!("a task that fails on {x}")
}

#[test]
fn a_pool_forked_while_a_thread_is_in_its_panic_hook_runs_its_tasks() {
    // The program's own hook: says it is inside, then stays there (holding std's hook lock)
    // until the test lets it go.
    let (inside_tx, inside_rx) = mpsc::channel::<()>();
    let (go_tx, go_rx) = mpsc::channel::<()>();
    let go_rx = Arc::new(Mutex::new(go_rx));
    let inside_tx = Mutex::new(inside_tx);
    std::panic::set_hook(Box::new(move |_| {
        let _ = inside_tx.lock().map(|tx| tx.send(()));
        let _ = go_rx.lock().map(|rx| rx.recv_timeout(LIMIT));
    }));

    // A first pool installs the pool's hook over the program's, as any program's first does.
    let first = Pool::builder()
        .processes(1)
        .start_method(StartMethod::Fork)
        .build()
        .expect("the first pool starts");
    assert_eq!(first.apply(square, (3,)).expect("a task runs"), 9);

    let panicking = std::thread::spawn(|| std::panic::catch_unwind(|| panic!("in the parent")));
    inside_rx
        .recv_timeout(LIMIT)
        .expect("the thread reached its panic hook");

    // Workers forked now inherit the hook's lock held by a thread they do not have.
    let pool = Pool::builder()
        .processes(2)
        .start_method(StartMethod::Fork)
        .build()
        .expect("the pool starts");
    let result = pool
        .apply_async(square, (7,))
        .expect("the task is sent")
        .get_timeout(LIMIT);
    assert_eq!(result.expect("a worker forked then runs its task"), 49);
    let failed = pool
        .apply_async(panics, (5,))
        .expect("the task is sent")
        .get_timeout(LIMIT);
    let message = failed.expect_err("a panicking task fails").to_string();
    assert!(
        message.contains("a task that fails on 5"),
        "the task's panic comes back to the caller: {message}"
    );

    go_tx.send(()).expect("the panicking thread waits");
    let outcome = panicking.join().expect("catch_unwind caught it");
    assert!(
        outcome.is_err(),
        "the parent's thread panicked as it meant to"
    );
    drop(std::panic::take_hook());
    pool.terminate();
    first.terminate();
}
