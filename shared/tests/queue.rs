//! What `shared::Queue` guarantees across real processes, each guarantee checked by a test
//! that fails when it is broken: join before get never deadlocks; every item arrives exactly
//! once, whole and in order; a killed process neither corrupts nor hangs the queue; `qsize`,
//! `empty` and `full` are exact in every process; bounded queues block and time out; a
//! mistyped item is an error, not a panic; `close` affects only its handle; `shutdown` holds in
//! every process and wakes every blocked `put` and `get`.
//!
//! Every child is bounded: a child that does not exit within [`LIMIT`] is killed and the test
//! fails, so a deadlock fails CI instead of hanging it. Blocking calls in the test process run
//! with a timeout or under [`within`] for the same reason.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::thread;
use std::time::{Duration, Instant};

use nix::sys::memfd::{MFdFlags, memfd_create};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_bytes::ByteBuf;
use shared::{GetError, PutError, Queue, StartMethod};

shared::enable_test_support!();

#[macro_use]
mod common;
use common::{Child, LIMIT, within};

under_every_start_method!(
    join_before_get_one_item_of_256_mib,
    join_before_get_100_000_items_of_25_bytes,
    join_before_get_1000_items_of_1_mib,
    exactly_once_whole_in_order,
    get_after_a_consumer_killed_in_get,
    state_is_exact_in_every_process,
    put_is_visible_at_once_in_the_other_process,
    put_waits_while_full,
    a_get_blocked_on_an_empty_queue_in_a_child_returns_shut_down,
    a_put_blocked_on_a_full_queue_in_a_child_returns_shut_down,
    shutdown_holds_for_the_handles_of_every_process,
);

/// SplitMix64's output function: a cheap, well-mixed hash of `x`.
fn mix(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A pseudo-random sequence (SplitMix64) from a fixed seed: every run makes the same choices.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(1);
        mix(self.0)
    }

    fn below(&mut self, bound: u64) -> u64 {
        self.next() % bound
    }
}

const BLOCK: usize = 4096;

/// `len` bytes determined by `seed` and by their position: a 4 KiB pseudo-random block
/// repeated, each copy stamped with its index so that a block out of place does not match.
/// Copying blocks keeps 256 MiB cheap to build and to check even in a debug build.
fn pattern(seed: u64, len: usize) -> Vec<u8> {
    let mut state = seed;
    let block: Vec<u8> = (0..len.min(BLOCK).div_ceil(8))
        .flat_map(|_| {
            state = mix(state);
            state.to_le_bytes()
        })
        .collect();
    let mut bytes = vec![0; len];
    for (index, chunk) in (0u64..).zip(bytes.chunks_mut(BLOCK)) {
        chunk.copy_from_slice(&block[..chunk.len()]);
        for (byte, stamp) in chunk.iter_mut().zip(index.to_le_bytes()) {
            *byte ^= stamp;
        }
    }
    bytes
}

/// Whether `bytes` is exactly `pattern(seed, len)`. (No `assert_eq!` on payloads: a failure
/// would print megabytes.)
fn has_pattern(bytes: &[u8], seed: u64, len: usize) -> bool {
    bytes.len() == len && bytes == pattern(seed, len)
}

// 1. Join before get never deadlocks.

/// Puts `count` items of `len` bytes, item `i` being `pattern(i, len)`, then exits.
fn put_patterns(queue: Queue<ByteBuf>, count: u64, len: usize) -> Result<(), PutError<ByteBuf>> {
    for index in 0..count {
        queue.put(ByteBuf::from(pattern(index, len)))?;
    }
    Ok(())
}

/// A child puts everything and must exit before anyone reads (with a pipe-based queue it
/// would block forever on a full pipe); then every item is there at once, whole, in order.
fn join_before_get(method: StartMethod, count: u64, len: usize) {
    let queue = Queue::new().unwrap();
    let mut producer = Child::start(method, put_patterns, (queue.clone(), count, len));
    producer.expect_success();
    assert_eq!(queue.qsize() as u64, count);
    for index in 0..count {
        let item = queue
            .get_nowait()
            .unwrap_or_else(|error| panic!("item {index} of {count}: {error}"));
        assert!(
            has_pattern(&item, index, len),
            "item {index} of {count} is corrupt or out of order"
        );
    }
    assert!(queue.empty());
}

fn join_before_get_one_item_of_256_mib(method: StartMethod) {
    join_before_get(method, 1, 256 << 20);
}

fn join_before_get_100_000_items_of_25_bytes(method: StartMethod) {
    join_before_get(method, 100_000, 25);
}

fn join_before_get_1000_items_of_1_mib(method: StartMethod) {
    join_before_get(method, 1000, 1 << 20);
}

// 2. Exactly once, whole, in order, with many producers and consumers.

/// What producers send: numbered data whose payload is derived from its number, or the order
/// to stop.
#[derive(Serialize, Deserialize)]
enum Item {
    Data {
        producer: u32,
        seq: u32,
        payload: ByteBuf,
    },
    Stop,
}

/// What a consumer reports for each item it got.
#[derive(Serialize, Deserialize, Clone, Copy, Debug)]
struct Receipt {
    consumer: u32,
    producer: u32,
    seq: u32,
    intact: bool,
}

fn item_seed(producer: u32, seq: u32) -> u64 {
    (u64::from(producer) << 32) | u64::from(seq)
}

/// A length from 16 bytes to `max` (a power of two), spread evenly over every power of two
/// in between, so that tiny, page-sized and huge items interleave.
fn item_len(seed: u64, max: usize) -> usize {
    let hash = mix(!seed);
    let doublings = u64::from(max.ilog2() - 16_usize.ilog2() + 1);
    let base = 16_usize << (hash % doublings);
    (base + (hash >> 32) as usize % base).min(max)
}

fn data_item(producer: u32, seq: u32, max_len: usize) -> Item {
    let seed = item_seed(producer, seq);
    Item::Data {
        producer,
        seq,
        payload: ByteBuf::from(pattern(seed, item_len(seed, max_len))),
    }
}

/// Puts items `0..count` of `producer`.
fn producer(queue: Queue<Item>, producer: u32, count: u32, max_len: usize) -> Result<(), String> {
    for seq in 0..count {
        queue
            .put(data_item(producer, seq, max_len))
            .map_err(|error| error.to_string())?;
    }
    Ok(())
}

/// Gets items until `Item::Stop`, checking each and reporting it on `receipts`. It holds one
/// item at a time, so killing it loses at most one.
fn consumer(
    queue: Queue<Item>,
    receipts: Queue<Receipt>,
    consumer: u32,
    max_len: usize,
) -> Result<(), String> {
    loop {
        match queue.get().map_err(|error| error.to_string())? {
            Item::Stop => return Ok(()),
            Item::Data {
                producer,
                seq,
                payload,
            } => {
                let seed = item_seed(producer, seq);
                let intact = has_pattern(&payload, seed, item_len(seed, max_len));
                let receipt = Receipt {
                    consumer,
                    producer,
                    seq,
                    intact,
                };
                receipts.put(receipt).map_err(|error| error.to_string())?;
            }
        }
    }
}

/// Every receipt waiting in `receipts`. Call it once every consumer has exited: their puts
/// returned, so all their receipts are visible.
fn drain_receipts(receipts: &Queue<Receipt>) -> Vec<Receipt> {
    let mut all = Vec::new();
    loop {
        match receipts.get_nowait() {
            Ok(receipt) => all.push(receipt),
            Err(error) if error.is_empty() => return all,
            Err(error) => panic!("reading the receipts: {error}"),
        }
    }
}

/// Checks that no item is torn or seen twice, and that each consumer saw each producer's
/// items in the order they were put. Returns the seqs seen, by producer.
fn check_receipts(receipts: &[Receipt]) -> BTreeMap<u32, BTreeSet<u32>> {
    let mut seen: BTreeMap<u32, BTreeSet<u32>> = BTreeMap::new();
    let mut last: BTreeMap<(u32, u32), u32> = BTreeMap::new();
    for receipt in receipts {
        let Receipt {
            consumer,
            producer,
            seq,
            intact,
        } = *receipt;
        assert!(intact, "torn item: {receipt:?}");
        assert!(
            seen.entry(producer).or_default().insert(seq),
            "item received twice: {receipt:?}"
        );
        if let Some(previous) = last.insert((consumer, producer), seq) {
            assert!(previous < seq, "out of order: {previous} then {receipt:?}");
        }
    }
    seen
}

/// 4 producers put numbered items of 16 B to 1 MiB; 3 consumers take them. Every item must
/// arrive exactly once, whole, and each consumer must see each producer's items in order.
fn exactly_once_whole_in_order(method: StartMethod) {
    const PRODUCERS: u32 = 4;
    const CONSUMERS: u32 = 3;
    const COUNT: u32 = 250;
    let items = Queue::new().unwrap();
    let receipts = Queue::new().unwrap();
    let mut consumers: Vec<Child> = (0..CONSUMERS)
        .map(|id| {
            let args = (items.clone(), receipts.clone(), id, 1 << 20);
            Child::start(method, consumer, args)
        })
        .collect();
    let mut producers: Vec<Child> = (0..PRODUCERS)
        .map(|id| Child::start(method, producer, (items.clone(), id, COUNT, 1 << 20)))
        .collect();
    producers.iter_mut().for_each(Child::expect_success);
    // Every data item is already in the queue, so each stop comes after all of them.
    for _ in 0..CONSUMERS {
        items.put(Item::Stop).unwrap();
    }
    consumers.iter_mut().for_each(Child::expect_success);

    let seen = check_receipts(&drain_receipts(&receipts));
    let all: BTreeSet<u32> = (0..COUNT).collect();
    for id in 0..PRODUCERS {
        assert_eq!(seen.get(&id), Some(&all), "items of producer {id}");
    }
    assert!(items.empty());
}

// 3. A killed process never corrupts or hangs the queue.

/// For each producer, how many of its puts have returned, in a memfd that survives the
/// producer's SIGKILL (one `pwrite` of 4 bytes either happened or did not).
struct Progress(File);

impl Progress {
    fn new(producers: u32) -> Progress {
        let fd = memfd_create(c"progress", MFdFlags::MFD_CLOEXEC).expect("memfd_create");
        let file = File::from(fd);
        file.set_len(u64::from(producers) * 4).unwrap();
        Progress(file)
    }

    fn record(&self, producer: u32, returned: u32) -> std::io::Result<()> {
        self.0
            .write_all_at(&returned.to_le_bytes(), u64::from(producer) * 4)
    }

    fn returned(&self, producer: u32) -> u32 {
        let mut bytes = [0; 4];
        self.0
            .read_exact_at(&mut bytes, u64::from(producer) * 4)
            .unwrap();
        u32::from_le_bytes(bytes)
    }
}

/// As [`producer`], recording after each put returns that the item is surely in the queue.
fn storm_producer(
    queue: &Queue<Item>,
    progress: &Progress,
    producer: u32,
    count: u32,
) -> Result<(), String> {
    for seq in 0..count {
        queue
            .put(data_item(producer, seq, STORM_MAX_LEN))
            .map_err(|error| error.to_string())?;
        progress
            .record(producer, seq + 1)
            .map_err(|error| error.to_string())?;
    }
    Ok(())
}

const STORM_KILLS: usize = 100;
const STORM_MAX_LEN: usize = 256 << 10;
const STORM_ITEMS: u32 = 40;
/// More ids than the storm hands out: every child started, replacements included, gets one.
const STORM_MAX_IDS: u32 = 10_000;

/// The children of the storm and what was done to them.
struct Storm {
    items: Queue<Item>,
    receipts: Queue<Receipt>,
    progress: Progress,
    rng: Rng,
    producers: Vec<(u32, Child)>,
    consumers: Vec<Child>,
    next_id: u32,
    killed_producers: BTreeSet<u32>,
    killed_consumers: usize,
}

impl Storm {
    fn next_id(&mut self) -> u32 {
        let id = self.next_id;
        self.next_id += 1;
        assert!(id < STORM_MAX_IDS);
        id
    }

    fn start_producer(&mut self) {
        let id = self.next_id();
        let queue = self.items.clone();
        let progress = Progress(self.progress.0.try_clone().unwrap());
        let target = move || storm_producer(&queue, &progress, id, STORM_ITEMS);
        self.producers
            .push((id, Child::start(StartMethod::Fork, target, ())));
    }

    fn start_consumer(&mut self) {
        let id = self.next_id();
        let args = (self.items.clone(), self.receipts.clone(), id, STORM_MAX_LEN);
        self.consumers
            .push(Child::start(StartMethod::Fork, consumer, args));
    }

    /// Replaces the producers that finished their items, so that puts go on.
    fn restart_finished_producers(&mut self) {
        let (finished, running): (Vec<_>, Vec<_>) = std::mem::take(&mut self.producers)
            .into_iter()
            .partition(|(_, child)| child.0.exitcode().is_some());
        self.producers = running;
        for (id, child) in finished {
            assert_eq!(child.0.exitcode(), Some(0), "producer {id} failed");
            self.start_producer();
        }
    }

    /// Kills a random child after a random few milliseconds, and replaces it. The moment is
    /// what is random; no assertion depends on it.
    fn kill_one(&mut self) {
        thread::sleep(Duration::from_micros(self.rng.below(3000)));
        let victim =
            self.rng
                .below((self.producers.len() + self.consumers.len()) as u64) as usize;
        if victim < self.producers.len() {
            let (id, mut child) = self.producers.swap_remove(victim);
            match child.kill_and_reap() {
                -9 => {
                    self.killed_producers.insert(id);
                }
                code => assert_eq!(code, 0, "producer {id} failed"),
            }
            self.start_producer();
        } else {
            let mut child = self.consumers.swap_remove(victim - self.producers.len());
            let code = child.kill_and_reap();
            assert_eq!(
                code, -9,
                "a consumer failed before its stop (stderr says why)"
            );
            self.killed_consumers += 1;
            self.start_consumer();
        }
    }

    /// Lets the surviving producers finish, then stops the consumers.
    fn finish(&mut self) {
        for (_, child) in &mut self.producers {
            child.expect_success();
        }
        for _ in &self.consumers {
            self.items.put_timeout(Item::Stop, LIMIT).unwrap();
        }
        self.consumers.iter_mut().for_each(Child::expect_success);
    }

    fn kills(&self) -> usize {
        self.killed_producers.len() + self.killed_consumers
    }
}

/// At least 100 SIGKILLs of producers and consumers at random moments, while the others keep
/// putting and getting items of 16 B to 256 KiB through a bounded queue (so that puts wait
/// too). Afterwards: no item torn, none twice, and only the items inside a killed consumer
/// lost. Every item a producer's `put` returned for is surely in the queue; a consumer holds
/// one item at a time, so each killed consumer loses at most one.
#[test]
fn killed_processes_never_corrupt_lose_or_hang_the_queue() {
    const PRODUCERS: usize = 3;
    const CONSUMERS: usize = 3;
    let mut storm = Storm {
        items: Queue::with_maxsize(16).unwrap(),
        receipts: Queue::new().unwrap(),
        progress: Progress::new(STORM_MAX_IDS),
        rng: Rng(0x5EED),
        producers: Vec::new(),
        consumers: Vec::new(),
        next_id: 0,
        killed_producers: BTreeSet::new(),
        killed_consumers: 0,
    };
    (0..CONSUMERS).for_each(|_| storm.start_consumer());
    (0..PRODUCERS).for_each(|_| storm.start_producer());
    while storm.kills() < STORM_KILLS {
        storm.restart_finished_producers();
        storm.kill_one();
    }
    storm.finish();

    // After the kills every queue call is bounded: a lock a dead process kept would hang it.
    let receipts = storm.receipts.clone();
    let seen = check_receipts(&within(LIMIT, move || drain_receipts(&receipts)));
    let mut lost = Vec::new();
    for id in 0..storm.next_id {
        let seqs = seen.get(&id).cloned().unwrap_or_default();
        // Everything up to the last item seen or the last put that returned was surely put.
        let surely_put = seqs
            .last()
            .map_or(0, |&seq| seq + 1)
            .max(storm.progress.returned(id));
        assert!(surely_put <= STORM_ITEMS, "producer {id} put too many");
        lost.extend(
            (0..surely_put)
                .filter(|seq| !seqs.contains(seq))
                .map(|seq| (id, seq)),
        );
    }
    assert!(
        lost.len() <= storm.killed_consumers,
        "{} items lost with only {} consumers killed: {lost:?}",
        lost.len(),
        storm.killed_consumers
    );
    let items = storm.items.clone();
    let left = within(LIMIT, move || items.get_timeout(Duration::from_millis(100)));
    assert!(
        left.is_err_and(|error| error.is_empty()),
        "the queue should be empty"
    );
}

/// Announces that it is about to wait, then waits in `get` on an empty queue until killed.
fn announce_then_get(queue: Queue<u32>, ready: Queue<()>) -> Result<(), String> {
    ready.put(()).map_err(|error| error.to_string())?;
    let item = queue.get().map_err(|error| error.to_string())?;
    Err(format!("got {item} from a queue nobody puts to"))
}

/// A consumer killed while blocked in `get` leaves nothing that blocks the others.
fn get_after_a_consumer_killed_in_get(method: StartMethod) {
    let queue = Queue::<u32>::new().unwrap();
    let ready = Queue::new().unwrap();
    let mut child = Child::start(method, announce_then_get, (queue.clone(), ready.clone()));
    ready.get_timeout(LIMIT).unwrap();
    assert_eq!(child.kill_and_reap(), -9);
    let (empty, put, got) = within(LIMIT, move || {
        let empty = queue.get_timeout(Duration::from_millis(100));
        let put = queue.put(5);
        (empty, put, queue.get_nowait())
    });
    assert!(empty.is_err_and(|error| error.is_empty()));
    put.unwrap();
    assert_eq!(got.unwrap(), 5);
}

const LARGE: usize = 32 << 20;

/// Puts copies of one large item until killed.
fn put_large_forever(queue: Queue<ByteBuf>) -> Result<(), PutError<ByteBuf>> {
    let item = ByteBuf::from(pattern(7, LARGE));
    loop {
        queue.put(item.clone())?;
    }
}

/// Gets with `get_timeout` until the queue is empty, checking every item is whole; returns
/// the queue's size after.
fn drain_large(queue: &Queue<ByteBuf>) -> Result<usize, String> {
    loop {
        match queue.get_timeout(Duration::from_millis(100)) {
            Ok(item) if has_pattern(&item, 7, LARGE) => {}
            Ok(_) => return Err("torn item".to_owned()),
            Err(error) if error.is_empty() => return Ok(queue.qsize()),
            Err(error) => return Err(error.to_string()),
        }
    }
}

/// A producer killed at random moments while it copies 32 MiB items into the queue (often
/// holding the queue's lock): `get_timeout` still returns within its timeout, every item it
/// returns is whole, and the queue ends empty.
#[test]
fn get_timeout_returns_after_a_producer_killed_mid_put() {
    let queue = Queue::new().unwrap();
    let mut rng = Rng(0xB16);
    for _ in 0..10 {
        let mut child = Child::start(StartMethod::Fork, put_large_forever, (queue.clone(),));
        thread::sleep(Duration::from_millis(rng.below(60)));
        assert_eq!(child.kill_and_reap(), -9);
        let reader = queue.clone();
        assert_eq!(within(LIMIT, move || drain_large(&reader)), Ok(0));
    }
}

/// Larger than the 256 MiB past which an emptied ring gives its memory back.
const HUGE: usize = 300 << 20;

fn put_small(queue: Queue<ByteBuf>) -> Result<(), PutError<ByteBuf>> {
    queue.put(ByteBuf::from(vec![1; 8]))
}

fn get_one(queue: Queue<ByteBuf>) -> Result<(), GetError> {
    queue.get().map(drop)
}

/// The shared memory process `pid` has mapped in, in KiB (`RssShmem` in its status).
fn shared_memory_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|line| line.starts_with("RssShmem:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Kills `consumer` once its mapped shared memory, having grown past half of [`HUGE`] while
/// it read the item, starts to shrink: its get has committed and it is giving the emptied
/// ring's memory back, still holding the lock, before it woke anyone. Returns whether it
/// killed it (a version that gives nothing back lets the consumer finish instead).
fn kill_while_releasing_memory(consumer: &mut Child) -> bool {
    let pid = consumer.0.pid().unwrap();
    let deadline = Instant::now() + LIMIT;
    let mut peak = 0;
    while consumer.0.exitcode().is_none() && Instant::now() < deadline {
        let Some(now) = shared_memory_kib(pid) else {
            continue;
        };
        peak = peak.max(now);
        if peak as usize > (HUGE >> 10) / 2 && now < peak {
            return consumer.kill_and_reap() == -9;
        }
    }
    false
}

/// A producer waits in `put` on a queue of maxsize 1, full with one 300 MiB item. A consumer
/// gets the item and is killed after its get committed but before it woke anyone. The slot is
/// free, so the producer's put must complete: nobody else will ever wake it.
#[test]
fn a_consumer_killed_right_after_its_get_still_frees_the_slot_for_a_blocked_put() {
    let queue = Queue::with_maxsize(1).unwrap();
    queue.put(ByteBuf::from(vec![0; HUGE])).unwrap();
    let mut producer = Child::start(StartMethod::Fork, put_small, (queue.clone(),));
    // Give the producer time to reach its wait for room. Nothing below depends on it: a
    // producer that had not waited yet finds room at once.
    producer.0.join_timeout(Duration::from_millis(200)).unwrap();
    let mut consumer = Child::start(StartMethod::Fork, get_one, (queue.clone(),));
    let killed = kill_while_releasing_memory(&mut consumer);
    producer.0.join_timeout(LIMIT).unwrap();
    assert_eq!(
        producer.0.exitcode(),
        Some(0),
        "the producer is still blocked in put after the consumer (killed: {killed}) took the item"
    );
    let reader = queue.clone();
    assert_eq!(within(LIMIT, move || reader.qsize()), 1);
}

// 4. Exact state: qsize, empty and full, in every process, as soon as put returns.

/// Checks `(qsize, empty, full)` against a queue known to hold `size` items.
fn check_state(queue: &Queue<u32>, size: usize, maxsize: usize) -> Result<(), String> {
    let seen = (queue.qsize(), queue.empty(), queue.full());
    let expected = (size, size == 0, maxsize > 0 && size == maxsize);
    if seen == expected {
        Ok(())
    } else {
        Err(format!(
            "(qsize, empty, full) = {seen:?}, expected {expected:?}"
        ))
    }
}

/// Checks the state it is given, then puts `puts` items, checking the state after each.
fn check_then_put(queue: Queue<u32>, size: usize, maxsize: usize, puts: u32) -> Result<(), String> {
    check_state(&queue, size, maxsize)?;
    for index in 0..puts {
        queue.put(index).map_err(|error| error.to_string())?;
        check_state(&queue, size + index as usize + 1, maxsize)?;
    }
    Ok(())
}

fn state_is_exact_in_every_process(method: StartMethod) {
    const MAXSIZE: usize = 5;
    let queue = Queue::with_maxsize(MAXSIZE).unwrap();
    check_state(&queue, 0, MAXSIZE).unwrap();
    Child::start(method, check_then_put, (queue.clone(), 0, MAXSIZE, 0)).expect_success();
    for index in 0..3 {
        queue.put(index).unwrap();
    }
    queue.get().unwrap();
    check_state(&queue, 2, MAXSIZE).unwrap();
    // The child sees the parent's 3 puts and 1 get, then fills the queue.
    Child::start(method, check_then_put, (queue.clone(), 2, MAXSIZE, 3)).expect_success();
    check_state(&queue, MAXSIZE, MAXSIZE).unwrap();
    for size in (0..MAXSIZE).rev() {
        queue.get_nowait().unwrap();
        check_state(&queue, size, MAXSIZE).unwrap();
    }
    Child::start(method, check_then_put, (queue.clone(), 0, MAXSIZE, 0)).expect_success();
}

const PING_PONG_ROUNDS: u32 = 200;

/// Puts `value` on `data` then on `signal`: whoever gets it from `signal` knows the put on
/// `data` had returned, and nothing else.
fn send(data: &Queue<u32>, signal: &Queue<u32>, value: u32) -> Result<(), String> {
    data.put(value).map_err(|error| error.to_string())?;
    signal.put(value).map_err(|error| error.to_string())
}

/// Waits for `value` on `signal`, then requires `value` to be visible on `data` at once.
fn receive(data: &Queue<u32>, signal: &Queue<u32>, value: u32) -> Result<(), String> {
    let signalled = signal
        .get_timeout(LIMIT)
        .map_err(|error| error.to_string())?;
    if signalled != value {
        return Err(format!("signal {signalled}, expected {value}"));
    }
    check_state(data, 1, 0)?;
    match data.get_nowait() {
        Ok(got) if got == value => Ok(()),
        Ok(got) => Err(format!("got {got}, expected {value}")),
        Err(error) => Err(format!("item {value}, put before its signal: {error}")),
    }
}

fn ping_pong_child(
    up: Queue<u32>,
    up_signal: Queue<u32>,
    down: Queue<u32>,
    down_signal: Queue<u32>,
) -> Result<(), String> {
    for round in 0..PING_PONG_ROUNDS {
        send(&up, &up_signal, round)?;
        receive(&down, &down_signal, round)?;
    }
    Ok(())
}

/// An item is visible to `get_nowait` and `qsize` in the other process as soon as `put`
/// returns, both ways, 200 times: the only synchronisation is a second put made after the
/// first returned.
fn put_is_visible_at_once_in_the_other_process(method: StartMethod) {
    let queues: [Queue<u32>; 4] = std::array::from_fn(|_| Queue::new().unwrap());
    let [up, up_signal, down, down_signal] = queues;
    let args = (
        up.clone(),
        up_signal.clone(),
        down.clone(),
        down_signal.clone(),
    );
    let mut child = Child::start(method, ping_pong_child, args);
    for round in 0..PING_PONG_ROUNDS {
        receive(&up, &up_signal, round).unwrap();
        send(&down, &down_signal, round).unwrap();
    }
    child.expect_success();
}

// 5. Bounded queues.

fn put_one(queue: Queue<u32>, value: u32) -> Result<(), PutError<u32>> {
    queue.put(value)
}

/// A child's `put` into a full queue waits, and completes only after a `get` makes room.
fn put_waits_while_full(method: StartMethod) {
    let queue = Queue::with_maxsize(2).unwrap();
    queue.put(1).unwrap();
    queue.put(2).unwrap();
    let mut child = Child::start(method, put_one, (queue.clone(), 3));
    child.0.join_timeout(Duration::from_millis(300)).unwrap();
    assert!(
        child.0.is_alive(),
        "put returned although the queue was full"
    );
    assert_eq!(queue.qsize(), 2);
    assert_eq!(queue.get_timeout(LIMIT).unwrap(), 1);
    child.expect_success();
    assert_eq!(queue.get_nowait().unwrap(), 2);
    assert_eq!(queue.get_nowait().unwrap(), 3);
    assert!(queue.empty());
}

#[test]
fn put_timeout_and_put_nowait_give_full_and_hand_the_item_back() {
    let queue = Queue::with_maxsize(2).unwrap();
    queue.put_nowait("a".to_owned()).unwrap();
    queue.put_timeout("b".to_owned(), LIMIT).unwrap();
    assert!(queue.full());

    let error = queue.put_nowait("c".to_owned()).unwrap_err();
    assert!(error.is_full(), "{error}");
    assert_eq!(error.into_inner(), "c");

    let error = queue
        .put_timeout("d".to_owned(), Duration::from_millis(50))
        .unwrap_err();
    assert!(error.is_full(), "{error}");
    assert_eq!(error.into_inner(), "d");

    assert_eq!(queue.qsize(), 2);
    assert_eq!(queue.get_nowait().unwrap(), "a");
    assert_eq!(queue.get_nowait().unwrap(), "b");
}

// 6. Bad input.

/// One queue seen as a `Queue<u32>` by the test and as a `Queue<String>` by a spawned child.
/// A spawned child rebuilds its arguments from bytes, and a queue crosses as its memfd alone,
/// so the child may decode it with another item type: with the public API, this is how an
/// item its reader cannot decode gets into a queue. (Under fork the child keeps the value.)
enum Mistyped {
    Numbers(Queue<u32>),
    Text(Queue<String>),
}

impl Serialize for Mistyped {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Mistyped::Numbers(queue) => queue.serialize(serializer),
            Mistyped::Text(queue) => queue.serialize(serializer),
        }
    }
}

impl<'de> Deserialize<'de> for Mistyped {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Queue::deserialize(deserializer).map(Mistyped::Text)
    }
}

fn put_text(queue: Mistyped) -> Result<(), String> {
    let Mistyped::Text(queue) = queue else {
        return Err("the queue did not cross as a Queue<String>: not spawned?".to_owned());
    };
    queue
        .put("not a number".to_owned())
        .map_err(|error| error.to_string())
}

/// A `get` of an item that is not a `T` fails with `Decode` naming `T`, removes that item, and
/// leaves the queue usable: the next `get` reads the next item.
#[test]
fn an_item_of_another_type_is_a_decode_error_and_the_queue_goes_on() {
    let numbers = Queue::<u32>::new().unwrap();
    let handle = Mistyped::Numbers(numbers.clone());
    Child::start(StartMethod::Spawn, put_text, (handle,)).expect_success();
    numbers.put(7).unwrap();
    assert_eq!(numbers.qsize(), 2);

    match numbers.get_nowait() {
        Err(error @ GetError::Decode { expected, .. }) => {
            assert!(expected.contains("u32"), "expected: {expected}");
            assert!(error.to_string().contains("u32"), "{error}");
        }
        other => panic!("expected a decode error, got {other:?}"),
    }
    assert_eq!(numbers.qsize(), 1);
    assert_eq!(numbers.get_nowait().unwrap(), 7);
    assert!(numbers.empty());
}

// 7. close(), and items handed back.

#[test]
fn close_fails_only_that_handle_and_hands_the_item_back() {
    let queue = Queue::new().unwrap();
    let other = queue.clone();
    queue.put(1).unwrap();
    queue.close();

    let error = queue.put(2).unwrap_err();
    assert!(error.is_closed(), "{error}");
    assert_eq!(error.into_inner(), 2);
    assert!(queue.get().unwrap_err().is_closed());
    assert!(queue.get_nowait().unwrap_err().is_closed());

    // The item stays for the other handles, which stay open, as does a clone of the closed one.
    assert_eq!(other.qsize(), 1);
    other.put(3).unwrap();
    queue.clone().put(4).unwrap();
    assert_eq!(other.get_nowait().unwrap(), 1);
    assert_eq!(other.get_nowait().unwrap(), 3);
    assert_eq!(other.get_nowait().unwrap(), 4);
}

/// Closes its handle, requires it to refuse puts, and exits.
fn close_in_child(queue: Queue<u32>) -> Result<(), String> {
    queue.close();
    match queue.put(9) {
        Err(error) if error.is_closed() => Ok(()),
        other => Err(format!("put on a closed handle gave {other:?}")),
    }
}

#[test]
fn close_in_a_child_leaves_the_parent_handle_open() {
    let queue = Queue::new().unwrap();
    Child::start(StartMethod::Fork, close_in_child, (queue.clone(),)).expect_success();
    assert!(queue.empty());
    queue.put(1).unwrap();
    assert_eq!(queue.get_nowait().unwrap(), 1);
}

/// A value serde cannot encode.
#[derive(Debug, PartialEq)]
struct Unencodable(u8);

impl Serialize for Unencodable {
    fn serialize<S: Serializer>(&self, _serializer: S) -> Result<S::Ok, S::Error> {
        Err(serde::ser::Error::custom("refused"))
    }
}

impl<'de> Deserialize<'de> for Unencodable {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        u8::deserialize(deserializer).map(Unencodable)
    }
}

#[test]
fn an_item_that_cannot_be_encoded_is_handed_back_and_not_put() {
    let queue = Queue::new().unwrap();
    let error = queue.put(Unencodable(3)).unwrap_err();
    assert!(matches!(error, PutError::Encode { .. }), "{error}");
    assert_eq!(error.into_inner(), Unencodable(3));
    assert!(queue.empty());
}

/// A producer thread and a consumer thread hand items over one at a time (the producer waits
/// for an acknowledgement before the next put), so the queue never holds more than one item.
/// `qsize()` read meanwhile, without a lock, must never say more: reading the two ends at
/// different moments once gave counts in the thousands.
#[test]
fn qsize_under_concurrent_puts_and_gets_is_a_count_the_queue_held() {
    const ROUNDS: u32 = 20_000;
    let items = Queue::<u32>::new().unwrap();
    let acks = Queue::<u32>::new().unwrap();
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let readers: Vec<_> = (0..2)
        .map(|_| {
            let (items, done) = (items.clone(), done.clone());
            thread::spawn(move || {
                let mut largest = 0;
                while !done.load(std::sync::atomic::Ordering::Relaxed) {
                    largest = largest.max(items.qsize());
                }
                largest
            })
        })
        .collect();
    let consumer = {
        let (items, acks) = (items.clone(), acks.clone());
        thread::spawn(move || {
            for _ in 0..ROUNDS {
                let item = items.get().unwrap();
                acks.put(item).unwrap();
            }
        })
    };
    within(LIMIT, move || {
        for round in 0..ROUNDS {
            items.put(round).unwrap();
            assert_eq!(acks.get().unwrap(), round);
        }
    });
    consumer.join().unwrap();
    done.store(true, std::sync::atomic::Ordering::Relaxed);
    for reader in readers {
        assert!(
            reader.join().unwrap() <= 1,
            "qsize() said more than the queue held"
        );
    }
}

// 8. shutdown(), Python 3.13's queue.Queue.shutdown across processes.

fn assert_put_shut_down(error: PutError<u32>, item: u32) {
    assert!(error.is_shut_down(), "{error}");
    assert_eq!(error.to_string(), "queue is shut down");
    assert_eq!(error.into_inner(), item);
}

fn assert_get_shut_down(result: Result<u32, GetError>) {
    match result {
        Err(error) if error.is_shut_down() => assert_eq!(error.to_string(), "queue is shut down"),
        other => panic!("expected ShutDown, got {other:?}"),
    }
}

#[test]
fn put_after_shutdown_fails_and_hands_the_item_back() {
    for maxsize in [0, 1] {
        let queue = Queue::with_maxsize(maxsize).unwrap();
        assert!(!queue.is_shutdown());
        queue.shutdown(false).unwrap();
        assert!(queue.is_shutdown() && queue.clone().is_shutdown());
        assert_put_shut_down(queue.put(1).unwrap_err(), 1);
        assert_put_shut_down(queue.put_nowait(2).unwrap_err(), 2);
        assert_put_shut_down(queue.put_timeout(3, LIMIT).unwrap_err(), 3);
        assert!(queue.empty());
    }
}

/// Gets go on returning what was put before the shutdown, in order, then fail with
/// `ShutDown` (never `Empty`, even without waiting), since no put can ever fill the queue again.
#[test]
fn get_after_shutdown_drains_the_queue_then_fails() {
    let queue = Queue::new().unwrap();
    for item in 1..=3 {
        queue.put(item).unwrap();
    }
    queue.shutdown(false).unwrap();
    assert_eq!(queue.qsize(), 3);
    assert_eq!(queue.get().unwrap(), 1);
    assert_eq!(queue.get_nowait().unwrap(), 2);
    assert_eq!(queue.get_timeout(LIMIT).unwrap(), 3);
    assert_get_shut_down(queue.get());
    assert_get_shut_down(queue.get_nowait());
    assert_get_shut_down(queue.get_timeout(LIMIT));
}

#[test]
fn immediate_shutdown_discards_the_items_and_every_get_fails_at_once() {
    let queue = Queue::with_maxsize(5).unwrap();
    for item in 1..=3 {
        queue.put(item).unwrap();
    }
    queue.shutdown(true).unwrap();
    assert!(queue.is_shutdown());
    assert_eq!(queue.qsize(), 0);
    assert!(queue.empty() && !queue.full());
    assert_get_shut_down(queue.get());
    assert_get_shut_down(queue.get_nowait());
    assert_put_shut_down(queue.put(4).unwrap_err(), 4);
}

/// Shutdown is permanent and idempotent; an immediate one after a plain one discards what
/// is left, and a plain one after an immediate one changes nothing.
#[test]
fn shutdown_is_idempotent_and_can_become_immediate() {
    let queue = Queue::new().unwrap();
    for item in 1..=3 {
        queue.put(item).unwrap();
    }
    queue.shutdown(false).unwrap();
    queue.shutdown(false).unwrap();
    assert_eq!(queue.get().unwrap(), 1);
    queue.shutdown(true).unwrap();
    assert_eq!(queue.qsize(), 0);
    assert_get_shut_down(queue.get_nowait());
    queue.shutdown(false).unwrap();
    queue.shutdown(true).unwrap();
    assert!(queue.is_shutdown());
    assert_get_shut_down(queue.get_nowait());
    assert_put_shut_down(queue.put(9).unwrap_err(), 9);
}

/// Says it is about to wait, then requires its blocked call to end with `ShutDown`.
fn get_expecting_shut_down(queue: Queue<u32>, ready: Queue<()>) -> Result<(), String> {
    ready.put(()).map_err(|error| error.to_string())?;
    match queue.get() {
        Err(error) if error.is_shut_down() => Ok(()),
        other => Err(format!("get on a shut-down queue gave {other:?}")),
    }
}

/// The child is blocked in `get` on an empty queue (or about to be: either way its `get`
/// must end) when the parent shuts the queue down; it returns `ShutDown`. Without the wake-up
/// and the state check it would wait for ever, and the child would be killed at [`LIMIT`].
fn a_get_blocked_on_an_empty_queue_in_a_child_returns_shut_down(method: StartMethod) {
    let queue = Queue::<u32>::new().unwrap();
    let ready = Queue::new().unwrap();
    let args = (queue.clone(), ready.clone());
    let mut child = Child::start(method, get_expecting_shut_down, args);
    ready.get_timeout(LIMIT).unwrap();
    queue.shutdown(false).unwrap();
    child.expect_success();
}

fn put_expecting_shut_down(queue: Queue<u32>, ready: Queue<()>) -> Result<(), String> {
    ready.put(()).map_err(|error| error.to_string())?;
    match queue.put(2) {
        Err(PutError::ShutDown(2)) => Ok(()),
        other => Err(format!("put on a shut-down queue gave {other:?}")),
    }
}

/// The child waits for room in a full queue when the parent shuts it down: its `put` returns
/// `ShutDown` with the item, and the item already in the queue is still there to get.
fn a_put_blocked_on_a_full_queue_in_a_child_returns_shut_down(method: StartMethod) {
    let queue = Queue::with_maxsize(1).unwrap();
    queue.put(1).unwrap();
    let ready = Queue::new().unwrap();
    let args = (queue.clone(), ready.clone());
    let mut child = Child::start(method, put_expecting_shut_down, args);
    ready.get_timeout(LIMIT).unwrap();
    queue.shutdown(false).unwrap();
    child.expect_success();
    assert_eq!(queue.get_nowait().unwrap(), 1);
    assert_get_shut_down(queue.get_nowait());
}

/// `shut` was shut down by the parent, with 1 and 2 in it: the child sees it, and takes 1.
/// Then the child shuts `other` down immediately, for the parent to see.
fn see_and_make_shutdowns(shut: Queue<u32>, other: Queue<u32>) -> Result<(), String> {
    if !shut.is_shutdown() {
        return Err("the parent's shutdown is not seen here".into());
    }
    match shut.put(3) {
        Err(error) if error.is_shut_down() => {}
        other => return Err(format!("put gave {other:?}")),
    }
    match shut.get() {
        Ok(1) => {}
        other => return Err(format!("the first get gave {other:?}")),
    }
    if other.is_shutdown() {
        return Err("a queue nobody shut down reads as shut down".into());
    }
    other.shutdown(true).map_err(|error| error.to_string())
}

fn shutdown_holds_for_the_handles_of_every_process(method: StartMethod) {
    let (shut, other) = (Queue::new().unwrap(), Queue::new().unwrap());
    shut.put(1).unwrap();
    shut.put(2).unwrap();
    other.put(7).unwrap();
    shut.shutdown(false).unwrap();
    let args = (shut.clone(), other.clone());
    Child::start(method, see_and_make_shutdowns, args).expect_success();
    assert_eq!(shut.get_nowait().unwrap(), 2);
    assert_get_shut_down(shut.get_nowait());
    assert!(other.is_shutdown());
    assert_eq!(
        other.qsize(),
        0,
        "the child's immediate shutdown discarded the item"
    );
    assert_get_shut_down(other.get_nowait());
    assert_put_shut_down(other.put(8).unwrap_err(), 8);
}
