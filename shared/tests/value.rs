//! What `shared::Value`, `Array`, `RawValue` and `RawArray` guarantee across real processes:
//! increments under `get_lock()` are never lost; `set_value(value() + 1)` takes the lock twice
//! and so may lose updates, never invent them; indexed and slice access under an array's lock;
//! what one process writes another reads; and a holder killed by SIGKILL is reported to the
//! next acquirer, which repairs the value and goes on.
//!
//! Every child is bounded ([`Child`]); blocking calls in the test process run under
//! [`within`], so a deadlock fails the test instead of hanging it.

use bytemuck::{Pod, Zeroable};
use shared::{AcquireError, Array, Queue, RawArray, RawValue, StartMethod, Value};

shared::enable_test_support!();

#[macro_use]
mod common;
use common::{Child, LIMIT, within};

under_every_start_method!(
    increments_under_get_lock_are_never_lost,
    unlocked_increments_never_exceed_the_total,
    an_array_is_indexed_and_sliced_under_its_lock,
    raw_values_written_by_a_child_are_read_by_the_parent,
    a_killed_value_holder_is_reported_and_the_value_repaired,
    a_killed_array_holder_is_reported_to_the_next_acquirer,
);

const PROCESSES: usize = 4;
const ROUNDS: i64 = 5000;

fn add_with_lock(count: Value<i64>) -> Result<(), String> {
    for _ in 0..ROUNDS {
        let mut guard = count.get_lock().map_err(|error| error.to_string())?;
        *guard += 1;
    }
    Ok(())
}

fn add_without_lock(count: Value<i64>) -> Result<(), String> {
    for _ in 0..ROUNDS {
        let value = count.value().map_err(|error| error.to_string())?;
        count
            .set_value(value + 1)
            .map_err(|error| error.to_string())?;
    }
    Ok(())
}

fn increments_under_get_lock_are_never_lost(method: StartMethod) {
    let count = Value::new(0_i64).unwrap();
    let mut children: Vec<Child> = (0..PROCESSES)
        .map(|_| Child::start(method, add_with_lock, (count.clone(),)))
        .collect();
    children.iter_mut().for_each(Child::expect_success);
    assert_eq!(count.value().unwrap(), PROCESSES as i64 * ROUNDS);
}

fn unlocked_increments_never_exceed_the_total(method: StartMethod) {
    let count = Value::new(0_i64).unwrap();
    let mut children: Vec<Child> = (0..PROCESSES)
        .map(|_| Child::start(method, add_without_lock, (count.clone(),)))
        .collect();
    children.iter_mut().for_each(Child::expect_success);
    let total = count.value().unwrap();
    // Lost updates lower it, by how much depends on the scheduler; nothing can raise it.
    assert!((1..=PROCESSES as i64 * ROUNDS).contains(&total), "{total}");
}

/// A `#[repr(C)]` struct of plain fields, as Python's `ctypes.Structure`.
#[derive(Clone, Copy, Debug, PartialEq, Pod, Zeroable)]
#[repr(C)]
struct Point {
    x: i32,
    y: i32,
}

fn fill_array(points: Array<Point>) -> Result<(), String> {
    let mut items = points.get_lock().map_err(|error| error.to_string())?;
    for (i, point) in items.iter_mut().enumerate() {
        point.x = i as i32;
    }
    items[1..].iter_mut().for_each(|point| point.y = 7);
    Ok(())
}

fn an_array_is_indexed_and_sliced_under_its_lock(method: StartMethod) {
    let points = Array::<Point>::new(3).unwrap();
    Child::start(method, fill_array, (points.clone(),)).expect_success();
    assert_eq!(points.len(), 3);
    assert_eq!(points.get(2).unwrap(), Some(Point { x: 2, y: 7 }));
    assert_eq!(points.get(3).unwrap(), None);
    points.set(0, Point { x: -1, y: -1 }).unwrap();
    let all = points.to_vec().unwrap();
    assert_eq!(all[0], Point { x: -1, y: -1 });
    assert_eq!(&points.get_lock().unwrap()[1..], &all[1..]);
}

fn write_raw(value: RawValue<f64>, items: RawArray<u16>) {
    value.set_value(2.5);
    for i in 0..items.len() {
        items.set(i, items.get(i).unwrap_or_default() * 10);
    }
}

fn raw_values_written_by_a_child_are_read_by_the_parent(method: StartMethod) {
    let value = RawValue::new(0.0_f64).unwrap();
    let items = RawArray::from_slice(&[1_u16, 2, 3]).unwrap();
    Child::start(method, write_raw, (value.clone(), items.clone())).expect_success();
    assert_eq!(value.value(), 2.5);
    assert_eq!(items.to_vec(), [10, 20, 30]);
}

/// Takes the value's lock, half-writes a pair (as a process killed mid-update would), says
/// so, and waits to be killed.
fn hold_value(pair: Value<[i64; 2]>, ready: Queue<()>, never: Queue<()>) -> Result<(), String> {
    let mut guard = pair.get_lock().map_err(|error| error.to_string())?;
    guard[0] += 1; // the second half, guard[1] += 1, never comes
    ready.put(()).map_err(|error| error.to_string())?;
    let _ = never.get_timeout(LIMIT);
    Err("not killed".to_owned())
}

fn hold_array(items: Array<u8>, ready: Queue<()>, never: Queue<()>) -> Result<(), String> {
    let _guard = items.get_lock().map_err(|error| error.to_string())?;
    ready.put(()).map_err(|error| error.to_string())?;
    let _ = never.get_timeout(LIMIT);
    Err("not killed".to_owned())
}

fn a_killed_value_holder_is_reported_and_the_value_repaired(method: StartMethod) {
    let pair = Value::new([0_i64, 0]).unwrap();
    let (ready, never) = (Queue::new().unwrap(), Queue::new().unwrap());
    let mut child = Child::start(method, hold_value, (pair.clone(), ready.clone(), never));
    ready.get_timeout(LIMIT).unwrap();
    assert_eq!(child.kill_and_reap(), -9);
    let (seen, after) = within(LIMIT, move || {
        let seen = match pair.get_lock() {
            Err(AcquireError::OwnerDied(mut guard)) => {
                let seen = *guard;
                guard[1] = guard[0]; // the repair: finish the dead holder's update
                Some(seen)
            }
            Ok(_) | Err(_) => None,
        };
        (seen, pair.value().ok())
    });
    assert_eq!(
        seen,
        Some([1, 0]),
        "not told, or not the dead holder's bytes"
    );
    assert_eq!(after, Some([1, 1]), "the next read was not an ordinary one");
}

fn a_killed_array_holder_is_reported_to_the_next_acquirer(method: StartMethod) {
    let items = Array::from_slice(&[5_u8; 4]).unwrap();
    let (ready, never) = (Queue::new().unwrap(), Queue::new().unwrap());
    let mut child = Child::start(method, hold_array, (items.clone(), ready.clone(), never));
    ready.get_timeout(LIMIT).unwrap();
    assert_eq!(child.kill_and_reap(), -9);
    let (told, next) = within(LIMIT, move || {
        let told = match items.to_vec() {
            Err(AcquireError::OwnerDied(read)) => Some(read),
            Ok(_) | Err(_) => None,
        };
        (told, items.to_vec().ok())
    });
    assert_eq!(told, Some(vec![5; 4]));
    assert_eq!(next, Some(vec![5; 4]));
}

#[test]
fn value_smoke() {
    let value = Value::new(3_u32).unwrap();
    assert_eq!(value.value().unwrap(), 3);
    value.set_value(4).unwrap();
    *value.get_lock().unwrap() *= 2;
    assert_eq!(value.value().unwrap(), 8);
    let guard = value
        .get_lock_timeout(std::time::Duration::from_millis(10))
        .unwrap();
    assert!(guard.is_some());
}

thread_local! {
    /// A guard kept where a forked child's copy of this thread can reach it.
    static KEPT: std::cell::RefCell<Option<shared::ValueGuard<i64>>> =
        const { std::cell::RefCell::new(None) };
}

/// A guard inherited across `fork` (through a thread-local) names a lock the child does not
/// hold: using it must not alias the value its real holder may be writing. The child's
/// deref panics (exit code 1) and the value is untouched.
#[test]
fn a_guard_inherited_by_a_forked_child_cannot_reach_the_value() {
    let value = Value::new(0_i64).unwrap();
    KEPT.with(|kept| *kept.borrow_mut() = Some(value.get_lock().unwrap()));
    let mut child = Child::start(
        StartMethod::Fork,
        || {
            // Quiet: the panic is what the test expects.
            std::panic::set_hook(Box::new(|_| {}));
            KEPT.with(|kept| {
                if let Some(guard) = kept.borrow_mut().as_mut() {
                    **guard = 42;
                }
            });
        },
        (),
    );
    assert_eq!(
        child.exit_code_within(LIMIT),
        1,
        "the child's deref must refuse"
    );
    let guard = KEPT.with(|kept| kept.borrow_mut().take()).unwrap();
    assert_eq!(*guard, 0, "the child wrote through an inherited guard");
}

thread_local! {
    /// An array's guard kept where a forked child's copy of this thread can reach it.
    static KEPT_ARRAY: std::cell::RefCell<Option<shared::ArrayGuard<u8>>> =
        const { std::cell::RefCell::new(None) };
}

/// A forked child that drops its copy of the parent's guard releases nothing: the lock stays
/// the parent's, so the child's own acquire times out, and the parent still holds it after.
#[test]
fn a_guard_inherited_by_a_forked_child_releases_nothing_there() {
    fn child_side(items: Array<u8>) -> Result<(), String> {
        drop(
            KEPT_ARRAY
                .with(|kept| kept.borrow_mut().take())
                .ok_or("no guard inherited")?,
        );
        match items.get_lock_timeout(std::time::Duration::from_millis(1)) {
            Ok(None) => Ok(()),
            Ok(Some(_)) => Err("the child took the lock its parent holds".to_owned()),
            Err(error) => Err(format!("get_lock_timeout: {error}")),
        }
    }
    let items = Array::from_slice(&[1_u8, 2]).unwrap();
    KEPT_ARRAY.with(|kept| *kept.borrow_mut() = Some(items.get_lock().unwrap()));
    let mut child = Child::start(StartMethod::Fork, child_side, (items.clone(),));
    child.expect_success();
    let mut guard = KEPT_ARRAY.with(|kept| kept.borrow_mut().take()).unwrap();
    guard[0] = 3; // still held by this thread
    drop(guard);
    assert_eq!(items.to_vec().unwrap(), [3, 2]);
}

#[test]
fn the_literal_translation_of_python_says_the_lock_is_not_re_entrant() {
    // Python's `with contador.get_lock(): contador.value += 1` line for line: the lock is an
    // RLock there, not here, and the error must say what to do instead.
    let contador = Value::new(0_u32).unwrap();
    let _trava = contador.get_lock().unwrap();
    let error = contador.value().expect_err("this thread holds the lock");
    let message = error.to_string();
    assert!(message.contains("not re-entrant"), "{message}");
    assert!(message.contains("`*guard`"), "{message}");
    let printed = format!("{error:?}");
    assert!(
        printed.starts_with(&message) && printed.ends_with("(os error 35)"),
        "{printed}"
    );
}
