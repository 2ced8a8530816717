//! Integration tests of the reference counting of [`shared::Manager`]'s objects, under every
//! start method: an object is freed when its last proxy, in any process, is dropped; a
//! killed process gives up its references and no others.
//!
//! A child forked while a process holds proxies holds references to their objects until it
//! ends (as in CPython). So these tests run one at a time: a child forked by another test
//! running beside them would hold their objects for as long as it lives.

use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use shared::{Connection, DictProxy, Manager, ManagerError, Pipe, StartMethod};

shared::enable_test_support!();

#[macro_use]
mod common;
use common::{Child, LIMIT, within};

under_every_start_method!(
    an_object_is_freed_when_its_last_proxy_is_dropped,
    a_killed_process_releases_its_references_and_no_others,
);

/// Held by each test for its whole run (see the module's docs).
fn one_at_a_time() -> MutexGuard<'static, ()> {
    static ONE: Mutex<()> = Mutex::new(());
    ONE.lock().unwrap_or_else(PoisonError::into_inner)
}

fn manager(method: StartMethod) -> Manager {
    Manager::builder()
        .start_method(method)
        .start()
        .expect("start a manager")
}

/// The child's half of [`an_object_is_freed_when_its_last_proxy_is_dropped`]: it holds the
/// only proxies left (its parent dropped its own), uses them and drops them as it ends.
fn use_and_drop(
    dict: DictProxy<String, u32>,
    copy: DictProxy<String, u32>,
) -> Result<(), ManagerError> {
    dict.set(&"filho".into(), &1)?;
    assert_eq!(copy.get(&"filho".into())?, Some(1));
    Ok(())
}

fn an_object_is_freed_when_its_last_proxy_is_dropped(method: StartMethod) {
    let _alone = one_at_a_time();
    let m = manager(method);
    let baseline = m.number_of_objects().unwrap();
    let dict = m.dict::<String, u32>().unwrap();
    let copy = dict.clone();
    assert_eq!(m.number_of_objects().unwrap(), baseline + 1);
    // Both proxies move into the child: the parent drops its copies of the arguments as soon
    // as the child started, before the child used them. The reference lent for the child
    // keeps the object meanwhile.
    let mut child = Child::start(method, use_and_drop, (dict, copy));
    assert_eq!(child.exit_code_within(LIMIT), 0, "the child used the dict");
    // The child dropped the last proxies as it ended (a round trip, answered before it
    // exited): the object is gone, and the count is back where it started.
    assert_eq!(m.number_of_objects().unwrap(), baseline);

    // Clones in one process count once on the server, and free it with the last one.
    let list = m.list::<u8>().unwrap();
    let clones: Vec<_> = (0..3).map(|_| list.clone()).collect();
    drop(list);
    assert_eq!(m.number_of_objects().unwrap(), baseline + 1);
    drop(clones);
    assert_eq!(m.number_of_objects().unwrap(), baseline);
}

/// The child's half of [`a_killed_process_releases_its_references_and_no_others`].
fn hold_both_until_killed(
    kept: DictProxy<String, u32>,
    given: DictProxy<String, u32>,
    report: Connection,
) -> Result<(), ManagerError> {
    kept.set(&"filho".into(), &7)?;
    given.set(&"filho".into(), &7)?;
    report
        .send(&())
        .map_err(|e| ManagerError::Encode(e.to_string()))?;
    loop {
        std::thread::park();
    }
}

fn a_killed_process_releases_its_references_and_no_others(method: StartMethod) {
    let _alone = one_at_a_time();
    let m = manager(method);
    let baseline = m.number_of_objects().unwrap();
    let kept = m.dict::<String, u32>().unwrap();
    let given = m.dict::<String, u32>().unwrap();
    let (report, report_write_end) = Pipe::with_duplex(false).expect("pipe");
    let mut holder = Child::start(
        method,
        hold_both_until_killed,
        (kept.clone(), given, report_write_end),
    );
    within(LIMIT, move || report.recv::<()>()).expect("the holder reports");
    // `given` lives only in the child now; `kept` in both.
    assert_eq!(m.number_of_objects().unwrap(), baseline + 2);
    assert_eq!(holder.kill_and_reap(), -9);
    // The server frees `given` once it reads the end of the killed child's connection; no
    // message says when, so the count is read again until then, within a bound.
    let deadline = Instant::now() + LIMIT;
    while m.number_of_objects().unwrap() != baseline + 1 {
        assert!(
            Instant::now() < deadline,
            "the killed child's references were not released within {LIMIT:?}"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    // What the parent still holds is untouched.
    assert_eq!(kept.get(&"filho".into()).unwrap(), Some(7));
    drop(kept);
    assert_eq!(m.number_of_objects().unwrap(), baseline);
}
