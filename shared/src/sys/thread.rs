//! Threads: the kernel's id of the calling thread.

/// The kernel's id of the calling thread (`gettid(2)`): the number `ps -L` and
/// `/proc/PID/task/` show. The main thread's equals the process's PID.
pub(crate) fn current_id() -> u32 {
    nix::unistd::gettid().as_raw().unsigned_abs()
}
