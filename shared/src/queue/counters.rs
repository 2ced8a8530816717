//! What the rings' waits and memory management did in this process, over all its queues: built
//! only with the feature `queue-counters`, for finding why a run is slow (bench/README.md,
//! "Under load"). Each process prints its counts to stderr when it exits. Without it [`Counters`] has size zero and [`Counters::add`] compiles to nothing,
//! so the hot paths carry no cost.

/// One thing a ring counts.
#[derive(Clone, Copy, Debug)]
#[cfg_attr(not(feature = "queue-counters"), allow(dead_code))]
pub(crate) enum Counter {
    /// An item was put.
    Put,
    /// An item was taken.
    Get,
    /// A waiter spun and saw the change it waited for.
    SpinWon,
    /// A waiter spun in vain, then went on to sleep.
    SpinLost,
    /// A waiter skipped the spin: its process has one CPU.
    SpinSkipped,
    /// A waiter slept on the futex.
    Sleep,
    /// A sleep ended with the futex word unchanged: a timeout (or a signal), not a wake-up.
    SleepUnwoken,
    /// A commit woke sleepers (a `futex_wake` system call).
    Wake,
    /// The ring grew.
    Grow,
    /// Pages of the free ring were given back to the system.
    Release,
    /// A release was due but skipped: a producer held the put lock.
    ReleaseSkipped,
    /// A producer with a full ring waited for a consumer to make room before it grew it.
    WaitForRoom,
}

#[cfg(feature = "queue-counters")]
mod enabled {
    use super::Counter;
    use crate::lifecycle::{self, Ending, ExitStep};
    use std::sync::atomic::{AtomicU64, Ordering};

    const NAMES: [&str; COUNTERS] = [
        "puts",
        "gets",
        "spins_won",
        "spins_lost",
        "spins_skipped",
        "sleeps",
        "sleeps_unwoken",
        "wakes",
        "grows",
        "releases",
        "releases_skipped",
        "waits_for_room",
    ];
    const COUNTERS: usize = Counter::WaitForRoom as usize + 1;

    /// The counts of every queue this process used, in the order of [`Counter`]. A forked
    /// child starts from its parent's counts at the fork (the bench's parents use no queue
    /// before they start their children).
    static COUNTS: [AtomicU64; COUNTERS] = [const { AtomicU64::new(0) }; COUNTERS];

    /// A queue's handle on this process's counts; making one registers the exit hook that
    /// prints them, in the main process and in every child (whose queues are never dropped:
    /// a forked child's `Process` keeps a handle to them).
    pub(crate) struct Counters(());

    impl Default for Counters {
        fn default() -> Counters {
            lifecycle::at_exit(ExitStep::Report, print);
            let _ = lifecycle::run_at_process_exit();
            Counters(())
        }
    }

    impl Counters {
        pub(crate) fn add(&self, counter: Counter) {
            COUNTS[counter as usize].fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Prints the counts to stderr, if any queue counted anything.
    fn print(_: Ending) {
        let counts: Vec<String> = NAMES
            .iter()
            .zip(&COUNTS)
            .map(|(name, count)| format!("{name}={}", count.load(Ordering::Relaxed)))
            .collect();
        if COUNTS.iter().any(|count| count.load(Ordering::Relaxed) > 0) {
            eprintln!(
                "queue-counters pid={} {}",
                std::process::id(),
                counts.join(" ")
            );
        }
    }
}

#[cfg(feature = "queue-counters")]
pub(crate) use enabled::Counters;

/// Nothing: the feature `queue-counters` is off.
#[cfg(not(feature = "queue-counters"))]
#[derive(Default)]
pub(crate) struct Counters(());

#[cfg(not(feature = "queue-counters"))]
impl Counters {
    #[inline(always)]
    pub(crate) fn add(&self, _: Counter) {}
}
