//! Named shared memory: files under `/dev/shm` (a tmpfs), the place POSIX `shm_open` and
//! Python's `multiprocessing.shared_memory` use, so that any program that knows a name can
//! open it. Attachment is a shared `flock` on the file; the watchdog that removes a segment
//! after its users died is a forked process (see `crate::shared_memory`).

use std::ffi::{CStr, CString};
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

use nix::libc;

/// Where the segments live: what glibc's `shm_open` uses on Linux.
pub(crate) const DIRECTORY: &str = "/dev/shm";
const DIRECTORY_C: &CStr = c"/dev/shm";

/// Which file a descriptor or a name stands for: a name may be removed and given to a new file
/// while descriptors of the old one live on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct FileId {
    pub(crate) device: u64,
    pub(crate) inode: u64,
}

/// What `fstat` tells of a segment's file.
#[derive(Clone, Copy, Debug)]
pub(crate) struct FileStatus {
    pub(crate) id: FileId,
    /// How many names it has: 0 once unlinked.
    pub(crate) links: u64,
    pub(crate) len: u64,
    /// A regular file (not a FIFO, a device or a directory someone put there).
    pub(crate) regular: bool,
}

fn check(result: libc::c_int) -> io::Result<libc::c_int> {
    if result == -1 {
        Err(io::Error::last_os_error())
    } else {
        Ok(result)
    }
}

/// The longest name a file under `/dev/shm` may have (`NAME_MAX`).
const NAME_MAX: usize = 255;

/// `/dev/shm/NAME` and its NUL, built on the stack: every call by name makes one, and an
/// allocation and a `format!` for each cost as much as the `lstat` they serve.
struct Path {
    bytes: [u8; DIRECTORY.len() + 1 + NAME_MAX + 1],
    len: usize,
}

impl Path {
    /// The path of segment `name`, or `InvalidInput` for a name no file under `/dev/shm` can
    /// have (too long, or holding a NUL); the caller has checked for `/` already.
    fn of(name: &str) -> io::Result<Path> {
        if name.len() > NAME_MAX || name.contains('\0') {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "a segment's name has at most 255 bytes and no NUL",
            ));
        }
        let mut bytes = [0; DIRECTORY.len() + 1 + NAME_MAX + 1];
        let len = DIRECTORY.len() + 1 + name.len();
        bytes[..DIRECTORY.len()].copy_from_slice(DIRECTORY.as_bytes());
        bytes[DIRECTORY.len()] = b'/';
        bytes[DIRECTORY.len() + 1..len].copy_from_slice(name.as_bytes());
        Ok(Path { bytes, len })
    }

    /// The path as a C string: `bytes` holds no NUL before `len` (checked in `of`) and a NUL
    /// at `len` (the array starts zeroed and `len` is below its length).
    fn as_ptr(&self) -> *const libc::c_char {
        debug_assert_eq!(self.bytes[self.len], 0);
        self.bytes.as_ptr().cast()
    }
}

/// A new file of `len` bytes under `/dev/shm` with no name yet (`O_TMPFILE`), readable and
/// writable by its owner only, its pages reserved (so a full tmpfs is an error here, never a
/// SIGBUS on a later write). Nobody else can reach it until [`publish`].
pub(crate) fn create_unnamed(len: u64) -> io::Result<OwnedFd> {
    let flags = libc::O_TMPFILE | libc::O_RDWR | libc::O_CLOEXEC;
    // SAFETY: the directory is a NUL-terminated literal; `open` touches no other memory of ours.
    let fd = check(unsafe { libc::open(DIRECTORY_C.as_ptr(), flags, 0o600 as libc::c_uint) })?;
    // SAFETY: `open` just returned this descriptor, which nothing else owns.
    let file = unsafe { OwnedFd::from_raw_fd(fd) };
    let len = i64::try_from(len).map_err(|_| io::Error::from(io::ErrorKind::OutOfMemory))?;
    // SAFETY: plain integers on a descriptor we own.
    check(unsafe { libc::fallocate(file.as_raw_fd(), 0, 0, len) })?;
    Ok(file)
}

/// Gives the unnamed file `file` the name `name`, atomically: `EEXIST` if the name is taken,
/// and nobody can see the file under its name before it is complete (sized, locked).
pub(crate) fn publish(file: BorrowedFd<'_>, name: &str) -> io::Result<()> {
    let target = Path::of(name)?;
    // SAFETY: `target` and the empty string are NUL-terminated and outlive the call.
    // `AT_EMPTY_PATH` links the open file itself: allowed since Linux 6.10 to the process that
    // opened it, before only with `CAP_DAC_READ_SEARCH` (`ENOENT` otherwise).
    let direct = check(unsafe {
        libc::linkat(
            file.as_raw_fd(),
            c"".as_ptr(),
            libc::AT_FDCWD,
            target.as_ptr(),
            libc::AT_EMPTY_PATH,
        )
    });
    match direct {
        Err(error) if error.kind() == io::ErrorKind::NotFound => {}
        other => return other.map(drop),
    }
    let source =
        CString::new(format!("/proc/self/fd/{}", file.as_raw_fd())).map_err(io::Error::other)?;
    // SAFETY: both strings are NUL-terminated and outlive the call. `AT_SYMLINK_FOLLOW` on
    // the `/proc` link names the open file itself.
    check(unsafe {
        libc::linkat(
            libc::AT_FDCWD,
            source.as_ptr(),
            libc::AT_FDCWD,
            target.as_ptr(),
            libc::AT_SYMLINK_FOLLOW,
        )
    })
    .map(drop)
}

/// Opens the segment named `name` for reading and writing, never through a symbolic link.
pub(crate) fn open(name: &str) -> io::Result<OwnedFd> {
    let path = Path::of(name)?;
    let flags = libc::O_RDWR | libc::O_CLOEXEC | libc::O_NOFOLLOW;
    // SAFETY: `path` is NUL-terminated and outlives the call.
    let fd = check(unsafe { libc::open(path.as_ptr(), flags) })?;
    // SAFETY: `open` just returned this descriptor, which nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn status_of(stat: libc::stat) -> FileStatus {
    FileStatus {
        id: FileId {
            device: stat.st_dev,
            inode: stat.st_ino,
        },
        links: stat.st_nlink,
        len: u64::try_from(stat.st_size).unwrap_or(0),
        regular: stat.st_mode & libc::S_IFMT == libc::S_IFREG,
    }
}

/// What the file behind `fd` is, how many names it has and how long it is.
pub(crate) fn status(fd: BorrowedFd<'_>) -> io::Result<FileStatus> {
    let mut stat = std::mem::MaybeUninit::<libc::stat>::uninit();
    // SAFETY: `stat` is writable memory of the size `fstat` fills in.
    check(unsafe { libc::fstat(fd.as_raw_fd(), stat.as_mut_ptr()) })?;
    // SAFETY: `fstat` succeeded, so it filled `stat` in.
    Ok(status_of(unsafe { stat.assume_init() }))
}

/// Which file the name `name` stands for now (the name itself if it is a symbolic link).
pub(crate) fn status_of_name(name: &str) -> io::Result<FileStatus> {
    let path = Path::of(name)?;
    let mut stat = std::mem::MaybeUninit::<libc::stat>::uninit();
    // SAFETY: `path` is NUL-terminated; `stat` is writable memory of the size `lstat` fills.
    check(unsafe { libc::lstat(path.as_ptr(), stat.as_mut_ptr()) })?;
    // SAFETY: `lstat` succeeded, so it filled `stat` in.
    Ok(status_of(unsafe { stat.assume_init() }))
}

/// Removes the name `name`; the file lives on while a descriptor or mapping holds it.
pub(crate) fn remove(name: &str) -> io::Result<()> {
    let path = Path::of(name)?;
    // SAFETY: `path` is NUL-terminated and outlives the call.
    check(unsafe { libc::unlink(path.as_ptr()) }).map(drop)
}

/// How a `flock` is taken.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum LockKind {
    /// A user of the segment: any number at once.
    Shared,
    /// The watchdog, sure that no user is left.
    Exclusive,
}

/// Takes a `flock` on `fd` without waiting: `Ok(false)` if a conflicting lock is held. The lock
/// belongs to the open file (shared with a forked child that inherits the descriptor) and goes
/// when the last descriptor of it closes, which a SIGKILL does too.
pub(crate) fn try_lock(fd: BorrowedFd<'_>, kind: LockKind) -> io::Result<bool> {
    let operation = match kind {
        LockKind::Shared => libc::LOCK_SH,
        LockKind::Exclusive => libc::LOCK_EX,
    } | libc::LOCK_NB;
    loop {
        // SAFETY: plain integers on a descriptor the caller holds.
        match check(unsafe { libc::flock(fd.as_raw_fd(), operation) }) {
            Ok(_) => return Ok(true),
            Err(error) if error.raw_os_error() == Some(libc::EWOULDBLOCK) => return Ok(false),
            Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
            Err(error) => return Err(error),
        }
    }
}

/// A pidfd of this very process, for a watchdog to learn of its end.
pub(crate) fn pidfd_of_self() -> io::Result<OwnedFd> {
    // SAFETY: plain integers; the kernel returns a new descriptor or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, libc::getpid(), 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `pidfd_open` just returned this descriptor, which nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

/// Runs `handler` in the child of every later `fork` of this process (`pthread_atfork`).
pub(crate) fn on_fork_in_child(handler: extern "C" fn()) -> io::Result<()> {
    // SAFETY: `handler` is a plain function of this image that lives for the whole program.
    match unsafe { libc::pthread_atfork(None, None, Some(handler)) } {
        0 => Ok(()),
        errno => Err(io::Error::from_raw_os_error(errno)),
    }
}

/// Keeps a mapping out of every later `fork`'s child (`MADV_DONTFORK`).
pub(crate) fn exclude_from_fork(start: *mut u8, len: usize) -> io::Result<()> {
    // SAFETY: the caller passes a page-aligned mapping of its own; the advice changes only
    // what a future child inherits, not this process's memory.
    check(unsafe { libc::madvise(start.cast(), len, libc::MADV_DONTFORK) }).map(drop)
}

/// Forks a watchdog of this process, in a session of its own: the child keeps only `keep` of
/// its descriptors (standard streams included: a pipe reader waiting for EOF must not wait for
/// it), ignores the signals a terminal or a `kill` of the group sends, names itself `name`,
/// and runs `body`, then exits at once (`_exit`). The parent gets the watchdog's PID.
///
/// The parent returns only once the watchdog has left the program's session and group (or
/// died): until then a runner that waits for the group to empty (a shell's job control, a
/// test harness) would count a watchdog that had not been scheduled yet as part of the
/// program, and one forked just before the program ends would outlive it in its group.
///
/// The child of a program with other threads holds only the forking thread: `body` takes no
/// lock another thread could have held (glibc's `malloc` is reset by `fork`).
pub(crate) fn fork_watchdog(
    keep: BorrowedFd<'_>,
    name: &CStr,
    body: impl FnOnce(),
) -> io::Result<u32> {
    let mut ends = [0 as RawFd; 2];
    // SAFETY: `pipe2` writes two descriptors into `ends`, which is large enough.
    check(unsafe { libc::pipe2(ends.as_mut_ptr(), libc::O_CLOEXEC) })?;
    // SAFETY: `pipe2` succeeded: both descriptors are new and owned by nothing else.
    let (left, leaving) = unsafe { (OwnedFd::from_raw_fd(ends[0]), OwnedFd::from_raw_fd(ends[1])) };
    // SAFETY: `fork` itself is sound; the child runs only `setsid`, `write` (both
    // async-signal-safe) and `in_watchdog`, as described above.
    match check(unsafe { libc::fork() })? {
        0 => {
            // SAFETY: plain calls on this process and on a descriptor it owns.
            unsafe {
                libc::setsid();
                libc::write(leaving.as_raw_fd(), [1_u8].as_ptr().cast(), 1);
            }
            in_watchdog(keep.as_raw_fd(), name, body)
        }
        pid => {
            drop(leaving);
            // A byte once it has left, or end of file if it died first: either way it is out
            // of the group, and the read cannot wait longer than the child lives.
            let mut byte = 0_u8;
            loop {
                // SAFETY: reads at most one byte into `byte`, which outlives the call.
                let read = unsafe { libc::read(left.as_raw_fd(), (&raw mut byte).cast(), 1) };
                if read >= 0 || io::Error::last_os_error().kind() != io::ErrorKind::Interrupted {
                    break;
                }
            }
            Ok(pid as u32)
        }
    }
}

fn in_watchdog(keep: RawFd, name: &CStr, body: impl FnOnce()) -> ! {
    // SAFETY: closing descriptors and setting dispositions and the name are plain calls on
    // this process's own resources. `close_range` over a range with nothing open is fine.
    unsafe {
        if keep > 0 {
            libc::syscall(libc::SYS_close_range, 0, keep - 1, 0);
        }
        libc::syscall(libc::SYS_close_range, keep + 1, u32::MAX, 0);
        for signal in [
            libc::SIGINT,
            libc::SIGTERM,
            libc::SIGHUP,
            libc::SIGQUIT,
            libc::SIGPIPE,
        ] {
            libc::signal(signal, libc::SIG_IGN);
        }
        libc::prctl(libc::PR_SET_NAME, name.as_ptr());
    }
    body();
    exit_now()
}

/// Waits until the process behind `pidfd` has ended.
pub(crate) fn wait_for_end(pidfd: RawFd) {
    let mut poll = libc::pollfd {
        fd: pidfd,
        events: libc::POLLIN,
        revents: 0,
    };
    loop {
        // SAFETY: `poll` is one valid `pollfd`.
        let ready = unsafe { libc::poll(&raw mut poll, 1, -1) };
        if ready == 1 {
            return;
        }
        // EINTR, or a failure (ENOMEM) that must not be taken for the end: look again.
        if ready == -1 && io::Error::last_os_error().kind() != io::ErrorKind::Interrupted {
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
    }
}

/// Ends this process at once, running nothing of the program's (a watchdog's end).
fn exit_now() -> ! {
    // SAFETY: `_exit` ends the process; it never returns.
    unsafe { libc::_exit(0) }
}

/// Sleeps `millis` milliseconds (a watchdog between two looks).
pub(crate) fn sleep_ms(millis: u64) {
    std::thread::sleep(std::time::Duration::from_millis(millis));
}

/// Reaps our own child `pid` (a watchdog that lost the race to be this process's).
pub(crate) fn kill_and_reap(pid: u32) {
    // SAFETY: plain integers; `pid` is our unreaped child, so it names no other process.
    unsafe {
        libc::kill(pid as libc::pid_t, libc::SIGKILL);
        libc::waitpid(pid as libc::pid_t, std::ptr::null_mut(), 0);
    }
}

/// This process's PID, asked of the kernel (a forked child is told apart from its parent).
pub(crate) fn current_pid() -> u32 {
    // SAFETY: `getpid` cannot fail.
    unsafe { libc::getpid() as u32 }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_path_is_the_directory_the_name_and_a_nul() {
        let path = Path::of("psm_0123abcd").unwrap();
        // SAFETY: `as_ptr` points at a NUL-terminated string inside `path`, alive here.
        let built = unsafe { CStr::from_ptr(path.as_ptr()) };
        assert_eq!(built, c"/dev/shm/psm_0123abcd");
        let longest = "x".repeat(NAME_MAX);
        let path = Path::of(&longest).unwrap();
        // SAFETY: as above (`path` is bound, so it outlives `built`).
        let built = unsafe { CStr::from_ptr(path.as_ptr()) };
        assert_eq!(built.to_bytes(), format!("/dev/shm/{longest}").as_bytes());
    }

    #[test]
    fn a_path_refuses_names_no_file_can_have() {
        for bad in ["x".repeat(NAME_MAX + 1), "a\0b".to_owned()] {
            let error = Path::of(&bad).err().expect("refused");
            assert_eq!(error.kind(), io::ErrorKind::InvalidInput);
        }
    }
}
