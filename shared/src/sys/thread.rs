//! Threads: the kernel's id of the calling thread, and a cache of it that survives `fork`.
//!
//! # Why the cache cannot be stale
//!
//! [`cached_id`] keeps the calling thread's id in a thread-local, beside the *fork epoch* it
//! was read in: a process-wide counter that only a forked child increments, once, before any
//! of its own code runs ([`forked`], called by a `pthread_atfork` child handler, which glibc
//! runs inside every `fork()` it makes, `libc::fork` and std's included, and by
//! `process::fork` as well). A cached id is used only while its epoch equals the process's
//! current one.
//!
//! - A thread's id never changes while the thread lives, so within one process an entry is
//!   right for the thread that wrote it; a new thread starts with an empty entry.
//! - The only way one thread's entry reaches another kernel thread is `fork`: the child's one
//!   thread inherits a copy of the forking thread's entry. The handler is registered (once,
//!   [`Once`]) *before* any entry is written, and registrations are inherited by a child, so
//!   every process in which an entry exists bumps its epoch in every child it forks. The
//!   child's epoch is then larger than any epoch an inherited entry holds (the counter only
//!   grows, and a `u64` does not wrap), so the child reads its id afresh.
//! - The parent's epoch does not change, so its threads keep their entries.
//!
//! Not covered: a child made by a raw `clone`/`fork` syscall that bypasses glibc (no handler
//! runs) and then uses a lock; and a `vfork` child, which shares its parent's memory and may
//! only `exec` or `_exit`.

use std::cell::Cell;
use std::sync::Once;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use nix::libc;

/// The kernel's id of the calling thread (`gettid(2)`): the number `ps -L` and
/// `/proc/PID/task/` show. The main thread's equals the process's PID.
pub(crate) fn current_id() -> u32 {
    nix::unistd::gettid().as_raw().unsigned_abs()
}

/// Bumped in a forked child before any of its code runs; see the module's docs.
static FORK_EPOCH: AtomicU64 = AtomicU64::new(0);

/// Registers [`on_fork_child`] once per process tree.
static AT_FORK: Once = Once::new();

thread_local! {
    /// (fork epoch, thread id); the epoch `u64::MAX` (never reached) marks an empty entry.
    static CACHED_ID: Cell<(u64, u32)> = const { Cell::new((u64::MAX, 0)) };
}

/// As [`current_id`], without a syscall once this thread has asked in this process.
#[inline]
pub(crate) fn cached_id() -> u32 {
    // Relaxed: the epoch changes only in a forked child while it has one thread, before that
    // thread returns from `fork`; every later thread of the child is spawned after it.
    let epoch = FORK_EPOCH.load(Ordering::Relaxed);
    let (cached_epoch, id) = CACHED_ID.get();
    if cached_epoch == epoch {
        id
    } else {
        refresh_cached_id()
    }
}

#[cold]
fn refresh_cached_id() -> u32 {
    count_forks();
    // Read after the registration: an entry is only ever written once the handler is in
    // place (see the module's docs).
    let epoch = FORK_EPOCH.load(Ordering::Relaxed);
    let id = current_id();
    CACHED_ID.set((epoch, id));
    id
}

/// Whether the handler registered.
static COUNTING: AtomicBool = AtomicBool::new(false);

/// Makes every later `fork` of this process bump the child's [`fork_epoch`], registering the
/// handler once; returns whether it is registered (glibc fails only for want of memory, at
/// which point the allocator would have failed first; `process::fork` still bumps the epoch
/// for the crate's own forks).
///
/// `sys::process::fork` calls it before it forks. A child forked while another thread was
/// inside the registration would inherit a [`Once`] that stays "running" for ever, and its
/// first [`cached_id`] would wait for it for ever (it did: a fork test of `barrier.rs`, 1 run in
/// 38 beside two busy loops). Called first, it waits for that registration to end.
pub(crate) fn count_forks() -> bool {
    AT_FORK.call_once(|| {
        // SAFETY: registers a handler that is a plain function of the right signature, valid
        // for the life of the process (and of its forked children, which inherit it); it
        // only does an atomic add, which is async-signal-safe as a child handler must be.
        let code = unsafe { libc::pthread_atfork(None, None, Some(on_fork_child)) };
        COUNTING.store(code == 0, Ordering::Relaxed);
    });
    COUNTING.load(Ordering::Relaxed)
}

/// How many forks led to this process since [`count_forks`] first ran in it or in an
/// ancestor (each moves it on at least once; only equality means something): a process
/// tells its own state from what it inherited by comparing the epoch it was made in.
#[inline]
pub(crate) fn fork_epoch() -> u64 {
    FORK_EPOCH.load(Ordering::Relaxed)
}

extern "C" fn on_fork_child() {
    forked();
}

/// Marks every cached thread id of this process as stale: called in a forked child before any
/// of its own code runs.
pub(crate) fn forked() {
    FORK_EPOCH.fetch_add(1, Ordering::Relaxed);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cached_id_is_this_threads_and_is_read_again_after_a_fork() {
        assert_eq!(cached_id(), current_id());
        let other = std::thread::spawn(|| (cached_id(), current_id()))
            .join()
            .unwrap();
        assert_eq!(other.0, other.1);
        assert_ne!(other.0, cached_id(), "each thread has its own");
        // A fork as the child sees it: the epoch moves on, and the entry is refreshed.
        let before = CACHED_ID.get();
        forked();
        assert_eq!(cached_id(), current_id());
        assert_ne!(CACHED_ID.get().0, before.0);
    }

    /// A child made by glibc's `fork` directly (not the crate's `process::fork`): the atfork
    /// handler alone makes its thread read its new id.
    #[test]
    fn a_child_of_a_plain_fork_reads_its_own_id() {
        let parent = cached_id();
        // SAFETY: the child runs only async-signal-safe work (a thread-local, atomics, the
        // `gettid` syscall) and leaves with `_exit`.
        match unsafe { libc::fork() } {
            -1 => panic!("fork: {}", std::io::Error::last_os_error()),
            0 => {
                let right = cached_id() == current_id() && cached_id() != parent;
                // SAFETY: `_exit` is always safe; it never returns.
                unsafe { libc::_exit(if right { 0 } else { 1 }) }
            }
            child => {
                let mut status = 0;
                // SAFETY: `status` is valid writable storage; `child` is our child.
                assert_eq!(unsafe { libc::waitpid(child, &mut status, 0) }, child);
                assert!(libc::WIFEXITED(status));
                assert_eq!(
                    libc::WEXITSTATUS(status),
                    0,
                    "the child used its parent's id"
                );
            }
        }
    }
}
