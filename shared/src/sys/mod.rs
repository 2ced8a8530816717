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
pub(crate) mod process;
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
