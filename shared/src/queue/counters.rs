//! What a ring's waits and memory management did, per queue and per process: built only with
//! the feature `queue-counters`, for finding why a run is slow (bench/README.md, "Under
//! load"). Without it [`Counters`] has size zero and [`Counters::add`] compiles to nothing,
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
}

#[cfg(feature = "queue-counters")]
mod enabled {
    use super::Counter;
    use std::sync::atomic::{AtomicU64, Ordering};

    const NAMES: [&str; 11] = [
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
    ];

    /// The counts, in the order of [`Counter`].
    #[derive(Default)]
    pub(crate) struct Counters([AtomicU64; 11]);

    impl Counters {
        pub(crate) fn add(&self, counter: Counter) {
            self.0[counter as usize].fetch_add(1, Ordering::Relaxed);
        }
    }

    impl Drop for Counters {
        /// Prints the counts of a queue this process used.
        fn drop(&mut self) {
            let counts: Vec<String> = NAMES
                .iter()
                .zip(&self.0)
                .map(|(name, count)| format!("{name}={}", count.load(Ordering::Relaxed)))
                .collect();
            if self.0.iter().any(|count| count.load(Ordering::Relaxed) > 0) {
                eprintln!(
                    "queue-counters pid={} {}",
                    std::process::id(),
                    counts.join(" ")
                );
            }
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
