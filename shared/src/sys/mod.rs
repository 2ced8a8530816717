//! The platform seam: every `nix`/`libc` call of the crate lives under this module, and nothing
//! above it names a syscall.
//!
//! The crate targets Linux (tested on Linux 6.x with glibc): it relies on `memfd_create`,
//! futexes, process-shared robust mutexes, file seals and `pidfd_open`. Other Unix
//! systems have most of these under other names, but nothing here has been tested on them, so
//! the crate refuses to build there rather than pretend.

#[cfg(not(target_os = "linux"))]
compile_error!("`shared` supports Linux only: it needs memfd, futex, robust mutexes and pidfd");

pub(crate) mod fd;
pub(crate) mod passing;
pub(crate) mod posix_shm;
pub(crate) mod process;
pub(crate) mod section;
pub(crate) mod shm;
pub(crate) mod socket;
pub(crate) mod sync;
pub(crate) mod thread;

use std::io;

/// `N` bytes from the kernel's random source (`getrandom(2)`), for tokens nobody can guess.
pub(crate) fn random_bytes<const N: usize>() -> io::Result<[u8; N]> {
    let mut bytes = [0; N];
    let mut filled = 0;
    while filled < N {
        let rest = &mut bytes[filled..];
        // SAFETY: `rest` is writable memory of exactly `rest.len()` bytes.
        let got = unsafe { nix::libc::getrandom(rest.as_mut_ptr().cast(), rest.len(), 0) };
        match got {
            n if n > 0 => filled += n as usize,
            _ => {
                let error = io::Error::last_os_error();
                if error.kind() != io::ErrorKind::Interrupted {
                    return Err(error);
                }
            }
        }
    }
    Ok(bytes)
}

/// Converts a `nix` error into the `std::io::Error` the crate reports.
pub(crate) fn io_error(errno: nix::errno::Errno) -> io::Error {
    io::Error::from_raw_os_error(errno as i32)
}

/// Nanoseconds on `CLOCK_MONOTONIC`: one clock for the whole machine, so times taken in
/// different processes compare (the timeline orders every process's events by it).
pub(crate) fn monotonic_ns() -> u64 {
    let mut now = nix::libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `now` is a valid, writable `timespec`; CLOCK_MONOTONIC always exists on Linux,
    // so the call cannot fail, and a failure would leave `now` at zero, a valid value.
    unsafe { nix::libc::clock_gettime(nix::libc::CLOCK_MONOTONIC, &raw mut now) };
    (now.tv_sec as u64)
        .saturating_mul(1_000_000_000)
        .saturating_add(now.tv_nsec as u64)
}
