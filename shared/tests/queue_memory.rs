//! A queue's memory follows what it holds (issue 23): after a burst has grown the ring to
//! hundreds of MiB and been drained, steady traffic with a few 64 KiB items live keeps the
//! ring's resident memory within 4 × the live bytes + 8 MiB, at every sample, not only at the
//! end. Before, a lap of steady traffic brought the whole ring back (498 MiB for 0.5 MiB live).
//!
//! Not a timing: the test counts the memfd's allocated pages (`st_blocks`), which is what the
//! system holds for the ring whichever process touched it, after every `put` and `get` of the
//! burst and after every `get` of the steady traffic. The bound holds whatever the
//! interleaving of the producer thread and the consumer: a release that the consumer cannot
//! make (the producer holds the put lock) is made by that producer before it unlocks.

use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;

use serde_bytes::ByteBuf;
use shared::Queue;

const ITEM: usize = 64 << 10;
const MIB: u64 = 1 << 20;

/// The bound this test holds the ring to: a few times what is live, plus a fixed allowance.
fn bound(live: u64) -> u64 {
    4 * live + 8 * MIB
}

/// The queue's memfd, found among this process's descriptors by the name `shared` gives it.
/// This test file makes one queue only.
fn queue_memfd() -> PathBuf {
    let found: Vec<PathBuf> = std::fs::read_dir("/proc/self/fd")
        .expect("/proc/self/fd lists this process's descriptors")
        .filter_map(|entry| entry.ok().map(|entry| entry.path()))
        .filter(|path| {
            std::fs::read_link(path)
                .is_ok_and(|target| target.to_string_lossy().starts_with("/memfd:shared-queue"))
        })
        .collect();
    assert_eq!(found.len(), 1, "one queue memfd, found {found:?}");
    found.into_iter().next().unwrap()
}

/// Bytes the system holds for the memfd (its allocated pages), and its length.
fn resident_and_len(memfd: &PathBuf) -> (u64, u64) {
    let metadata = std::fs::metadata(memfd).expect("the memfd can be stat'ed");
    (metadata.blocks() * 512, metadata.len())
}

/// Asserts the bound for `queue` as it is now.
fn sample(queue: &Queue<ByteBuf>, memfd: &PathBuf, when: &str) {
    let live = (queue.qsize() * ITEM) as u64;
    let (resident, len) = resident_and_len(memfd);
    assert!(
        resident <= bound(live),
        "{when}: {} MiB resident for {} KiB live (bound {} MiB) in a ring file of {} MiB",
        resident / MIB,
        live >> 10,
        bound(live) / MIB,
        len / MIB
    );
}

#[test]
fn after_a_burst_steady_traffic_keeps_the_ring_resident_within_its_live_data() {
    let queue = Queue::<ByteBuf>::new().unwrap();
    let memfd = queue_memfd();
    let item = ByteBuf::from(vec![7; ITEM]);

    // The burst: 256 MiB queued with nobody reading, then drained to empty.
    let burst = (256 * MIB) as usize / ITEM;
    for n in 0..burst {
        queue.put(item.clone()).unwrap();
        sample(&queue, &memfd, &format!("burst, put {n}"));
    }
    let (_, len) = resident_and_len(&memfd);
    assert!(len > 256 * MIB, "the burst grew the ring to {len} bytes");
    for n in 0..burst {
        assert_eq!(queue.get().unwrap().len(), ITEM);
        sample(&queue, &memfd, &format!("drain, get {n}"));
    }

    // Steady traffic from a producer thread, as from a producer process: it copies each item
    // under the put lock, so a consumer that wants that lock finds it taken most of the time.
    // Credits keep 2 to 8 items live; more than the ring's whole length passes through it, so
    // that every page of it is written again.
    let items = (len as usize).div_ceil(ITEM) + burst / 8;
    let (credit, credits) = std::sync::mpsc::sync_channel::<()>(8);
    for _ in 0..6 {
        credit.send(()).unwrap();
    }
    let producer = {
        let (queue, item) = (queue.clone(), item.clone());
        std::thread::spawn(move || {
            for _ in 0..items {
                // Bounded: the consumer sends a credit per item it takes, until the last.
                credits
                    .recv_timeout(std::time::Duration::from_secs(60))
                    .expect("a credit from the consumer");
                queue.put(item.clone()).unwrap();
            }
        })
    };
    for n in 0..items {
        let got = queue
            .get_timeout(std::time::Duration::from_secs(60))
            .unwrap();
        assert_eq!(got.len(), ITEM);
        sample(
            &queue,
            &memfd,
            &format!("steady traffic, get {n} of {items}"),
        );
        let _ = credit.try_send(());
    }
    producer.join().unwrap();
}
