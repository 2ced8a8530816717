//! What `shared::JoinableQueue` guarantees across real processes: `join` returns only once
//! every item put has been marked done by some process, `task_done` refuses to count more
//! items than were put, a worker killed before its `task_done` keeps `join` waiting, and an
//! immediate `shutdown` counts the items it discards as done, releasing a waiting `join`.
//!
//! Every child is bounded: one that does not exit within [`LIMIT`] is killed and the test
//! fails. Blocking calls in the test process run under [`within`] for the same reason.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use shared::{JoinableQueue, Queue, StartMethod, TaskDoneError};

shared::enable_test_support!();

#[macro_use]
mod common;
use common::{Child, LIMIT, within};

under_every_start_method!(
    join_returns_only_after_every_task_done,
    task_done_count_is_shared_between_processes,
    join_waits_for_a_task_taken_but_not_done,
    a_task_taken_by_a_killed_worker_stays_unfinished,
    a_join_waiting_in_a_child_returns_after_an_immediate_shutdown,
);

/// Long enough for `join_timeout` to be really waiting, short enough to keep the suite fast.
/// Only used where the right answer is "not done": a correct queue returns `false` whatever
/// the duration.
const SHORT: Duration = Duration::from_millis(200);

#[derive(Serialize, Deserialize, Debug)]
enum Task {
    Square(u64),
    Stop,
}

/// Squares numbers until `Task::Stop`, marking every task done, the stop included.
fn worker(tasks: JoinableQueue<Task>, results: Queue<u64>) -> Result<(), String> {
    loop {
        match tasks.get().map_err(|error| error.to_string())? {
            Task::Square(n) => {
                // Put before task_done: once join returns, every result is in `results`.
                results.put(n * n).map_err(|error| error.to_string())?;
                tasks.task_done().map_err(|error| error.to_string())?;
            }
            Task::Stop => return tasks.task_done().map_err(|error| error.to_string()),
        }
    }
}

fn start_workers(
    method: StartMethod,
    count: usize,
    tasks: &JoinableQueue<Task>,
    results: &Queue<u64>,
) -> Vec<Child> {
    (0..count)
        .map(|_| Child::start(method, worker, (tasks.clone(), results.clone())))
        .collect()
}

/// Every result waiting in `results`, taken without waiting.
fn drain(results: &Queue<u64>) -> Vec<u64> {
    std::iter::from_fn(|| results.get_nowait().ok()).collect()
}

/// Two worker processes take 200 tasks. `join` must not return before the last `task_done`:
/// since each worker puts its result before its `task_done`, all 200 results are in the
/// results queue the moment `join` returns. An early return would find some missing.
fn join_returns_only_after_every_task_done(method: StartMethod) {
    const TASKS: u64 = 200;
    let tasks = JoinableQueue::new().unwrap();
    let results = Queue::new().unwrap();
    let mut workers = start_workers(method, 2, &tasks, &results);
    for n in 0..TASKS {
        tasks.put(Task::Square(n)).unwrap();
    }
    let joiner = tasks.clone();
    within(LIMIT, move || joiner.join());

    assert_eq!(results.qsize() as u64, TASKS);
    let mut squares = drain(&results);
    squares.sort_unstable();
    assert_eq!(squares, (0..TASKS).map(|n| n * n).collect::<Vec<_>>());

    for _ in &workers {
        tasks.put(Task::Stop).unwrap();
    }
    workers.iter_mut().for_each(Child::expect_success);
    assert!(tasks.join_timeout(Duration::ZERO));
}

fn assert_too_many_calls(result: Result<(), TaskDoneError>) {
    match result {
        Err(error @ TaskDoneError::TooManyCalls) => {
            assert_eq!(error.to_string(), "task_done() called too many times");
        }
        other => panic!("expected TooManyCalls, got {other:?}"),
    }
}

#[test]
fn task_done_more_times_than_items_put_is_an_error() {
    let queue = JoinableQueue::new().unwrap();
    assert_too_many_calls(queue.task_done());
    queue.put("task".to_owned()).unwrap();
    assert_eq!(queue.get().unwrap(), "task");
    queue.task_done().unwrap();
    assert_too_many_calls(queue.task_done());
    assert!(queue.join_timeout(Duration::ZERO));
}

/// Takes both items the test put and marks them done; a third `task_done` must fail.
fn finish_two_then_one_too_many(queue: JoinableQueue<u32>) -> Result<(), String> {
    for _ in 0..2 {
        queue.get().map_err(|error| error.to_string())?;
        queue.task_done().map_err(|error| error.to_string())?;
    }
    match queue.task_done() {
        Err(TaskDoneError::TooManyCalls) => Ok(()),
        other => Err(format!("a third task_done gave {other:?}")),
    }
}

/// The count of unfinished items is shared: items put in one process are finished in another,
/// and the extra `task_done` is refused there and here.
fn task_done_count_is_shared_between_processes(method: StartMethod) {
    let queue = JoinableQueue::new().unwrap();
    queue.put(1).unwrap();
    queue.put(2).unwrap();
    assert!(!queue.join_timeout(Duration::ZERO));
    Child::start(method, finish_two_then_one_too_many, (queue.clone(),)).expect_success();
    assert!(queue.join_timeout(Duration::ZERO));
    assert_too_many_calls(queue.task_done());
}

/// Takes one task, says which on `taken`, and marks it done once something arrives on
/// `allowed`: until then it sits between its `get` and its `task_done`.
fn take_then_finish_when_allowed(
    tasks: JoinableQueue<Task>,
    taken: Queue<u64>,
    allowed: Queue<()>,
) -> Result<(), String> {
    let task = tasks.get().map_err(|error| error.to_string())?;
    let Task::Square(n) = task else {
        return Err(format!("expected a Square task, got {task:?}"));
    };
    taken.put(n).map_err(|error| error.to_string())?;
    allowed.get().map_err(|error| error.to_string())?;
    tasks.task_done().map_err(|error| error.to_string())
}

/// Puts `Square(n)` and starts a worker that takes it and holds it until `allowed`; returns
/// once the worker has taken it.
fn start_holder(
    method: StartMethod,
    tasks: &JoinableQueue<Task>,
    allowed: &Queue<()>,
    n: u64,
) -> Child {
    tasks.put(Task::Square(n)).unwrap();
    let taken = Queue::new().unwrap();
    let args = (tasks.clone(), taken.clone(), allowed.clone());
    let child = Child::start(method, take_then_finish_when_allowed, args);
    assert_eq!(taken.get_timeout(LIMIT).unwrap(), n);
    child
}

/// The queue is empty but a worker holds a task it has not marked done: `join` waits for
/// the `task_done`, not for the queue to empty.
fn join_waits_for_a_task_taken_but_not_done(method: StartMethod) {
    let tasks = JoinableQueue::new().unwrap();
    let allowed = Queue::new().unwrap();
    let mut holder = start_holder(method, &tasks, &allowed, 3);
    assert_eq!(tasks.qsize(), 0);
    assert!(!tasks.join_timeout(SHORT), "join returned before task_done");
    allowed.put(()).unwrap();
    let joiner = tasks.clone();
    within(LIMIT, move || joiner.join());
    holder.expect_success();
}

/// A worker killed between `get` and `task_done` leaves its task unfinished: `join_timeout`
/// keeps returning `false`, even after another worker handles the task put again, until
/// someone marks the lost task done.
fn a_task_taken_by_a_killed_worker_stays_unfinished(method: StartMethod) {
    let tasks = JoinableQueue::new().unwrap();
    let results = Queue::new().unwrap();
    // Never allowed: the worker holds its task until it is killed.
    let never = Queue::new().unwrap();
    let mut holder = start_holder(method, &tasks, &never, 7);
    assert_eq!(holder.kill_and_reap(), -9);

    let queue = tasks.clone();
    let (size, done) = within(LIMIT, move || (queue.qsize(), queue.join_timeout(SHORT)));
    assert_eq!(size, 0, "the killed worker had taken the task");
    assert!(!done, "join returned with a task never marked done");

    // Put the task again, for a healthy worker that then stops.
    tasks.put(Task::Square(7)).unwrap();
    tasks.put(Task::Stop).unwrap();
    start_workers(method, 1, &tasks, &results)[0].expect_success();
    assert_eq!(drain(&results), [49]);

    let queue = tasks.clone();
    let (still_waiting, marked, done, extra) = within(LIMIT, move || {
        let still_waiting = queue.join_timeout(SHORT);
        // Mark the killed worker's task done on its behalf.
        let marked = queue.task_done();
        (
            still_waiting,
            marked,
            queue.join_timeout(LIMIT),
            queue.task_done(),
        )
    });
    assert!(!still_waiting, "join ignored the killed worker's task");
    marked.unwrap();
    assert!(done, "every task is now done");
    assert_too_many_calls(extra);
}

/// Says it is about to wait, then joins: it returns only once no task is unfinished.
fn announce_then_join(tasks: JoinableQueue<u32>, ready: Queue<()>) -> Result<(), String> {
    ready.put(()).map_err(|error| error.to_string())?;
    tasks.join();
    Ok(())
}

/// Three tasks nobody takes: the child's `join` can only return because the parent's
/// immediate shutdown discards them and counts them done (otherwise it is killed at
/// [`LIMIT`] and the test fails). The count is shared: no `task_done` is left to call.
fn a_join_waiting_in_a_child_returns_after_an_immediate_shutdown(method: StartMethod) {
    let tasks = JoinableQueue::new().unwrap();
    for n in 0..3 {
        tasks.put(n).unwrap();
    }
    let ready = Queue::new().unwrap();
    let mut joiner = Child::start(method, announce_then_join, (tasks.clone(), ready.clone()));
    ready.get_timeout(LIMIT).unwrap();
    tasks.shutdown(true).unwrap();
    joiner.expect_success();
    assert_eq!(tasks.qsize(), 0);
    assert!(tasks.join_timeout(Duration::ZERO));
    assert_too_many_calls(tasks.task_done());
}

/// As in Python, a plain shutdown does not release `join`: the items left are still tasks,
/// and consumers drain them.
#[test]
fn a_plain_shutdown_leaves_the_tasks_to_finish() {
    let tasks = JoinableQueue::new().unwrap();
    tasks.put(1).unwrap();
    tasks.shutdown(false).unwrap();
    let queue = tasks.clone();
    assert!(!within(LIMIT, move || queue.join_timeout(SHORT)));
    assert_eq!(tasks.get().unwrap(), 1);
    tasks.task_done().unwrap();
    let queue = tasks.clone();
    assert!(within(LIMIT, move || queue.join_timeout(Duration::ZERO)));
}

/// An immediate shutdown counts only the discarded items done: a task a worker took before
/// it is still unfinished, so a thread's `join` waits for its `task_done`, and a second
/// `task_done` is one too many.
#[test]
fn an_immediate_shutdown_leaves_the_tasks_already_taken_unfinished() {
    let tasks = JoinableQueue::new().unwrap();
    for n in 0..3 {
        tasks.put(n).unwrap();
    }
    assert_eq!(tasks.get().unwrap(), 0);
    let queue = tasks.clone();
    let joiner = std::thread::spawn(move || queue.join_timeout(LIMIT));
    tasks.shutdown(true).unwrap();
    let queue = tasks.clone();
    assert!(!within(LIMIT, move || queue.join_timeout(SHORT)));
    tasks.task_done().unwrap();
    assert!(
        within(LIMIT, move || joiner.join().unwrap()),
        "join returned false at LIMIT"
    );
    assert_too_many_calls(tasks.task_done());
}
