//! `Queue` throughput: one producer to the main process (strings or bytes), and two producers
//! to two consumers.

use std::error::Error;
use std::time::Instant;

use serde_bytes::ByteBuf;
use shared::{Process, Queue};

use super::{Outcome, check};
use crate::measurement::Measurement;

type TargetResult = Result<(), Box<dyn Error>>;

/// The 25-character string for item `i`, as the Python side writes it (`f"{i:025d}"`).
fn item(i: u64) -> String {
    format!("{i:025}")
}

fn produce_strings(queue: Queue<String>, count: u64) -> TargetResult {
    for i in 0..count {
        queue.put(item(i))?;
    }
    Ok(())
}

fn produce_bytes(queue: Queue<ByteBuf>, size: usize, count: u64) -> TargetResult {
    let payload = ByteBuf::from(vec![b'x'; size]);
    for _ in 0..count {
        queue.put(payload.clone())?;
    }
    Ok(())
}

/// One producer process puts `count` 25-byte strings; the main process gets them, then joins.
pub fn single_producer_strings(count: u64) -> Outcome {
    let queue = Queue::new()?;
    let start = Instant::now();
    let mut producer = Process::new(produce_strings, (queue.clone(), count));
    producer.start()?;
    let mut last = String::new();
    for _ in 0..count {
        last = queue.get()?;
    }
    producer.join()?;
    let elapsed = start.elapsed();
    check(last == item(count - 1), "the last item came last")?;
    check(producer.exitcode() == Some(0), "the producer exited with 0")?;
    Ok(Measurement::of_this_process(elapsed, count))
}

/// One producer process puts `count` byte strings of `size` bytes; the main process gets
/// them, then joins.
pub fn single_producer_bytes(size: usize, count: u64) -> Outcome {
    let queue = Queue::new()?;
    let start = Instant::now();
    let mut producer = Process::new(produce_bytes, (queue.clone(), size, count));
    producer.start()?;
    for _ in 0..count {
        let item: ByteBuf = queue.get()?;
        check(item.len() == size, "every item has the size put")?;
    }
    producer.join()?;
    let elapsed = start.elapsed();
    check(producer.exitcode() == Some(0), "the producer exited with 0")?;
    Ok(Measurement::of_this_process(elapsed, count))
}

/// Count, sum and sum of squares of the numbers a consumer got.
type Tally = (u64, u64, u64);

fn produce_range(queue: Queue<Option<String>>, first: u64, count: u64) -> TargetResult {
    for i in first..first + count {
        queue.put(Some(item(i)))?;
    }
    queue.put(None)?;
    Ok(())
}

fn consume(queue: Queue<Option<String>>, results: Queue<Tally>) -> TargetResult {
    let (mut count, mut total, mut squares) = (0, 0, 0);
    while let Some(item) = queue.get()? {
        let number: u64 = item.parse()?;
        count += 1;
        total += number;
        squares += number * number;
    }
    results.put((count, total, squares))?;
    Ok(())
}

/// The tally of every number in `0..count`, each once.
fn expected_tally(count: u64) -> Tally {
    (0..count).fold((0, 0, 0), |(n, sum, squares), i| {
        (n + 1, sum + i, squares + i * i)
    })
}

/// Two producers put `count` numbered strings in total, then a `None` each; two consumers get
/// until `None` and send back their tallies, which must add up to every item exactly once.
pub fn two_by_two(count: u64) -> Outcome {
    let queue = Queue::new()?;
    let results = Queue::new()?;
    let half = count / 2;
    let start = Instant::now();
    let mut processes = [
        Process::new(produce_range, (queue.clone(), 0, half)),
        Process::new(produce_range, (queue.clone(), half, count - half)),
        Process::new(consume, (queue.clone(), results.clone())),
        Process::new(consume, (queue.clone(), results.clone())),
    ];
    for process in &mut processes {
        process.start()?;
    }
    let (a, b): (Tally, Tally) = (results.get()?, results.get()?);
    for process in &mut processes {
        process.join()?;
    }
    let elapsed = start.elapsed();
    let got = (a.0 + b.0, a.1 + b.1, a.2 + b.2);
    check(got == expected_tally(count), "every item exactly once")?;
    Ok(Measurement::of_this_process(elapsed, count))
}
