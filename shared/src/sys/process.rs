//! Process creation, signals and exit status.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

use nix::sys::signal::{Signal, kill};
use nix::sys::wait::{Id, WaitPidFlag, WaitStatus, waitid, waitpid};
use nix::unistd::{ForkResult, Pid, getppid};

use super::io_error;

/// Which side of a `fork` the caller is on.
pub(crate) enum Forked {
    /// The new process.
    Child,
    /// The original process; the child's PID.
    Parent(u32),
}

/// Forks the calling process.
///
/// # Safety
/// In a multi-threaded program the child may only run code that does not need a lock another
/// thread held at the moment of the fork. The crate holds its own locks and stdout's across
/// the fork (see `process::fork`); the caller's target runs under the same rule as in
/// CPython's fork start method.
pub(crate) unsafe fn fork() -> io::Result<Forked> {
    // Read under the loader's lock here, so that no child of ours ever takes it.
    main_image();
    // Ends a registration another thread may be making, so that no child inherits it half
    // made (see `count_forks`).
    super::thread::count_forks();
    // SAFETY: forwarded to the caller.
    match unsafe { nix::unistd::fork() }.map_err(io_error)? {
        ForkResult::Child => {
            // The atfork handler did it already once registered; this covers a fork made
            // before any thread id was cached (harmless twice: the epoch only has to move).
            super::thread::forked();
            Ok(Forked::Child)
        }
        ForkResult::Parent { child } => Ok(Forked::Parent(child.as_raw() as u32)),
    }
}

/// Leaves the process at once with `code`, without running `atexit` handlers or destructors:
/// a forked child must not run the parent's exit-time work (flushing copies of its buffers,
/// joining the parent's children).
pub(crate) fn exit_immediately(code: i32) -> ! {
    // SAFETY: `_exit` is always safe to call; it never returns.
    unsafe { nix::libc::_exit(code) }
}

/// A descriptor that becomes readable when this process's parent, `parent`, exits; `None` if
/// it has exited already (this process was re-parented).
pub(crate) fn watch_parent(parent: u32) -> io::Result<Option<OwnedFd>> {
    // Open first, then check: if `parent` is still our parent after the open, the descriptor
    // names it, not a later process that reused its PID.
    let exited = match exit_notifier(parent) {
        Ok(exited) => exited,
        Err(error) if error.raw_os_error() == Some(nix::libc::ESRCH) => return Ok(None),
        Err(error) => return Err(error),
    };
    Ok((getppid().as_raw() as u32 == parent).then_some(exited))
}

/// Whether the loader started this process in secure-execution mode (`AT_SECURE`): a setuid,
/// setgid or file-capability program, whose environment is chosen by a user with fewer
/// privileges than the program has.
pub(crate) fn is_secure_execution() -> bool {
    // SAFETY: `getauxval` reads the auxiliary vector the kernel gave this process; it takes
    // and returns plain integers and touches no memory of ours.
    unsafe { nix::libc::getauxval(nix::libc::AT_SECURE) != 0 }
}

/// Whether `address` lies in a loaded segment of the main executable, rather than in a shared
/// library or `dlopen`ed code.
pub(crate) fn in_main_executable(address: usize) -> bool {
    main_image()
        .segments
        .iter()
        .any(|segment| segment.contains(&address))
}

/// The main executable as the loader mapped it, read once: it is never unloaded or moved, so
/// what was read stays true for the life of the process.
struct MainImage {
    /// Its `PT_LOAD` segments, as address ranges.
    segments: Vec<std::ops::Range<usize>>,
    /// Its `.eh_frame_hdr` (address and size), which lists the start of every function that
    /// has unwind information: all of a Rust program's.
    eh_frame_header: Option<(usize, usize)>,
}

/// The cached [`MainImage`], read on first use.
///
/// Reading it takes the loader's lock (`dl_iterate_phdr`), which a forked child may inherit
/// held by another thread of its parent, and glibc does not reset it in the child: a child
/// that reads it then waits for ever. So [`fork`] reads it before forking, and every child
/// of this crate starts with it cached, never taking that lock.
fn main_image() -> &'static MainImage {
    static IMAGE: std::sync::OnceLock<MainImage> = std::sync::OnceLock::new();
    IMAGE.get_or_init(read_main_image)
}

fn read_main_image() -> MainImage {
    use nix::libc::{c_int, c_void, dl_phdr_info, size_t};

    /// `PT_GNU_EH_FRAME`, the program header of `.eh_frame_hdr`.
    const PT_GNU_EH_FRAME: u32 = 0x6474_e550;

    /// Called for each loaded object, the main program first: reads that one, then stops.
    unsafe extern "C" fn first_object(
        info: *mut dl_phdr_info,
        _size: size_t,
        data: *mut c_void,
    ) -> c_int {
        // SAFETY: `dl_iterate_phdr` passes a valid `info` for the duration of the call, and
        // `data` is the `MainImage` that `read_main_image` lent it, used by nothing else
        // during the call.
        let (info, image) = unsafe { (&*info, &mut *data.cast::<MainImage>()) };
        let headers = if info.dlpi_phdr.is_null() {
            &[][..]
        } else {
            // SAFETY: `dlpi_phdr` points to the object's `dlpi_phnum` program headers.
            unsafe { std::slice::from_raw_parts(info.dlpi_phdr, usize::from(info.dlpi_phnum)) }
        };
        let at = |vaddr: u64| (info.dlpi_addr as usize).wrapping_add(vaddr as usize);
        for header in headers {
            let start = at(header.p_vaddr);
            let len = header.p_memsz as usize;
            match header.p_type {
                nix::libc::PT_LOAD => image.segments.push(start..start.saturating_add(len)),
                PT_GNU_EH_FRAME => image.eh_frame_header = Some((start, len)),
                _ => {}
            }
        }
        1 // a non-zero return stops the iteration
    }

    let mut image = MainImage {
        segments: Vec::new(),
        eh_frame_header: None,
    };
    // SAFETY: `first_object` matches the callback type and only reads what the loader passes
    // and writes `image`, which outlives the call (the loader does not keep it).
    unsafe { nix::libc::dl_iterate_phdr(Some(first_object), (&raw mut image).cast()) };
    image
}

/// Whether `address` is where a function of the main executable starts, by the binary-search
/// table of its `.eh_frame_hdr` (which GNU ld, gold and lld write, for every function with
/// unwind information, sorted by start). `false` if the table is missing or not in the
/// encoding those linkers use: the caller then refuses, rather than trust an address that
/// may be inside a function.
pub(crate) fn is_function_start(address: usize) -> bool {
    /// `DW_EH_PE_udata4`, `DW_EH_PE_datarel | DW_EH_PE_sdata4`: the table's encodings.
    const UDATA4: u8 = 0x03;
    const DATAREL_SDATA4: u8 = 0x3b;
    let Some((header, len)) = main_image().eh_frame_header else {
        return false;
    };
    // SAFETY: `[header, header + len)` is the `PT_GNU_EH_FRAME` segment of the main
    // executable, which the loader mapped readable for the life of the process (it lies in a
    // `PT_LOAD` segment, and the executable is never unloaded); nothing writes it.
    let bytes = unsafe { std::slice::from_raw_parts(header as *const u8, len) };
    let [1, pointer_encoding, count_encoding, table_encoding, ..] = *bytes else {
        return false;
    };
    if count_encoding != UDATA4 || table_encoding != DATAREL_SDATA4 {
        return false;
    }
    // The `.eh_frame` pointer comes first, 4 or 8 bytes by its encoding; then the count.
    let pointer_len = match pointer_encoding & 0x0f {
        0x03 | 0x0b => 4,
        0x04 | 0x0c => 8,
        _ => return false,
    };
    let read_u32 = |at: usize| -> Option<u32> {
        Some(u32::from_le_bytes(bytes.get(at..at + 4)?.try_into().ok()?))
    };
    let count_at = 4 + pointer_len;
    let Some(count) = read_u32(count_at) else {
        return false;
    };
    let table = count_at + 4;
    // Each row: the function's start, then its FDE, both 4-byte offsets from `header`.
    let row =
        |index: usize| -> Option<i64> { Some(i64::from(read_u32(table + index * 8)? as i32)) };
    let wanted = address as i64 - header as i64;
    let (mut low, mut high) = (0usize, count as usize);
    while low < high {
        let middle = low + (high - low) / 2;
        let Some(start) = row(middle) else {
            return false; // a count that runs past the segment: not a table to trust
        };
        match start.cmp(&wanted) {
            std::cmp::Ordering::Equal => return true,
            std::cmp::Ordering::Less => low = middle + 1,
            std::cmp::Ordering::Greater => high = middle,
        }
    }
    false
}

/// Ends this process with SIGKILL, as if killed from outside: no exit work runs.
pub(crate) fn kill_self() -> ! {
    let _ = kill(nix::unistd::getpid(), Signal::SIGKILL);
    // SIGKILL cannot be caught or blocked; this is only reached if the kernel refused.
    exit_immediately(137)
}

/// A descriptor that becomes readable when process `pid` exits (Linux `pidfd_open`).
pub(crate) fn exit_notifier(pid: u32) -> io::Result<OwnedFd> {
    // SAFETY: plain syscall with integer arguments.
    let fd = unsafe { nix::libc::syscall(nix::libc::SYS_pidfd_open, pid as nix::libc::pid_t, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the kernel just returned this new descriptor; nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

/// Collects the exit status of child `pid` if it has ended, without blocking.
/// Returns Python's `exitcode`: the exit status, or `-N` when killed by signal N.
pub(crate) fn try_reap(pid: u32) -> io::Result<Option<i32>> {
    match waitpid(Pid::from_raw(pid as i32), Some(WaitPidFlag::WNOHANG)) {
        Ok(WaitStatus::Exited(_, code)) => Ok(Some(code)),
        Ok(WaitStatus::Signaled(_, signal, _)) => Ok(Some(-(signal as i32))),
        Ok(_) => Ok(None),
        Err(nix::errno::Errno::EINTR) => try_reap(pid),
        Err(errno) => Err(io_error(errno)),
    }
}

/// Blocks until child `pid` ends and collects its exit status (see [`try_reap`]).
pub(crate) fn reap(pid: u32) -> io::Result<i32> {
    loop {
        match waitpid(Pid::from_raw(pid as i32), None) {
            Ok(WaitStatus::Exited(_, code)) => return Ok(code),
            Ok(WaitStatus::Signaled(_, signal, _)) => return Ok(-(signal as i32)),
            Ok(_) | Err(nix::errno::Errno::EINTR) => continue,
            Err(errno) => return Err(io_error(errno)),
        }
    }
}

/// The PID of this process's parent. When the parent exits, the kernel gives this process
/// another parent (init or a subreaper), so the answer changes then and never names a later
/// process that reused the old PID.
pub(crate) fn parent_pid() -> u32 {
    getppid().as_raw() as u32
}

/// How many CPUs are online: `sysconf(_SC_NPROCESSORS_ONLN)`, what CPython's `os.cpu_count()`
/// asks on Linux.
pub(crate) fn online_cpus() -> io::Result<usize> {
    // SAFETY: `sysconf` takes and returns integers and touches no memory of ours.
    let n = unsafe { nix::libc::sysconf(nix::libc::_SC_NPROCESSORS_ONLN) };
    usize::try_from(n).ok().filter(|&n| n > 0).ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::Unsupported,
            "the system does not say how many CPUs it has",
        )
    })
}

/// How many CPUs this process may run on: the CPUs in its affinity mask
/// (`sched_getaffinity`), as CPython's `os.process_cpu_count()` counts them.
pub(crate) fn usable_cpus() -> io::Result<usize> {
    use nix::libc::{c_ulong, c_void};
    // Start with glibc's `cpu_set_t` (1024 CPUs); the kernel says EINVAL while the mask is
    // smaller than its own, so double it until it fits (up to 4M CPUs).
    let mut words = 1024 / c_ulong::BITS as usize;
    loop {
        let mut mask: Vec<c_ulong> = vec![0; words];
        // SAFETY: the kernel writes at most `size_of_val(mask)` bytes into `mask`, which owns
        // that many.
        let written = unsafe {
            nix::libc::syscall(
                nix::libc::SYS_sched_getaffinity,
                0,
                size_of_val(mask.as_slice()),
                mask.as_mut_ptr().cast::<c_void>(),
            )
        };
        if written >= 0 {
            let ones: u32 = mask.iter().map(|word| word.count_ones()).sum();
            return Ok(ones as usize);
        }
        let error = io::Error::last_os_error();
        if error.raw_os_error() != Some(nix::libc::EINVAL) || words >= 1 << 16 {
            return Err(error);
        }
        words *= 2;
    }
}

/// The signals the crate sends.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Stop {
    /// SIGTERM, Python's `Process.terminate()`.
    Terminate,
    /// SIGKILL, Python's `Process.kill()`.
    Kill,
}

/// Sends `stop` to process `pid`. A process that already ended is not an error.
pub(crate) fn send(pid: u32, stop: Stop) -> io::Result<()> {
    let signal = match stop {
        Stop::Terminate => Signal::SIGTERM,
        Stop::Kill => Signal::SIGKILL,
    };
    match kill(Pid::from_raw(pid as i32), signal) {
        Ok(()) | Err(nix::errno::Errno::ESRCH) => Ok(()),
        Err(errno) => Err(io_error(errno)),
    }
}

/// Sends `stop` to the process that `pidfd` names (Linux `pidfd_send_signal`): never to another
/// process that reused its PID. A process that already ended is not an error.
pub(crate) fn send_to(pidfd: BorrowedFd<'_>, stop: Stop) -> io::Result<()> {
    let signal = match stop {
        Stop::Terminate => nix::libc::SIGTERM,
        Stop::Kill => nix::libc::SIGKILL,
    };
    // SAFETY: plain syscall; the descriptor is borrowed for the call, the info pointer is null
    // (the kernel then fills in the sender itself), and no memory of ours is touched.
    let result = unsafe {
        nix::libc::syscall(
            nix::libc::SYS_pidfd_send_signal,
            pidfd.as_raw_fd(),
            signal,
            std::ptr::null::<nix::libc::siginfo_t>(),
            0,
        )
    };
    if result == 0 {
        return Ok(());
    }
    let error = io::Error::last_os_error();
    match error.raw_os_error() {
        Some(nix::libc::ESRCH) => Ok(()),
        _ => Err(error),
    }
}

/// How child `pidfd` ended, if it has, in Python's `exitcode` form, *without* reaping it: it
/// stays a zombie, so its PID is not given to another process until [`reap`].
pub(crate) fn peek_exit(pidfd: BorrowedFd<'_>) -> io::Result<Option<i32>> {
    exit_of_pidfd(pidfd, WaitPidFlag::WNOWAIT)
}

/// Collects the exit status of `pidfd`'s process if it is this process's child and has ended,
/// without blocking (see [`try_reap`]). `ECHILD` if it is not our child.
pub(crate) fn try_reap_pidfd(pidfd: BorrowedFd<'_>) -> io::Result<Option<i32>> {
    exit_of_pidfd(pidfd, WaitPidFlag::empty())
}

/// `waitid` on `pidfd` for an exit, without blocking, with `extra` flags (`WNOWAIT` to leave
/// the child a zombie): its exit code in Python's form, or `None` while it runs.
fn exit_of_pidfd(pidfd: BorrowedFd<'_>, extra: WaitPidFlag) -> io::Result<Option<i32>> {
    let flags = WaitPidFlag::WEXITED | WaitPidFlag::WNOHANG | extra;
    loop {
        match waitid(Id::PIDFd(pidfd), flags) {
            Ok(WaitStatus::Exited(_, code)) => return Ok(Some(code)),
            Ok(WaitStatus::Signaled(_, signal, _)) => return Ok(Some(-(signal as i32))),
            Ok(_) => return Ok(None),
            Err(nix::errno::Errno::EINTR) => continue,
            Err(errno) => return Err(io_error(errno)),
        }
    }
}

/// Makes this process a child subreaper (Linux `PR_SET_CHILD_SUBREAPER`): a descendant whose
/// parent ends is given to this process rather than to init, and this process can wait for it.
pub(crate) fn become_subreaper() -> io::Result<()> {
    // SAFETY: `prctl(PR_SET_CHILD_SUBREAPER, 1)` takes plain integers and only sets a flag of
    // this process; no memory is touched.
    if unsafe { nix::libc::prctl(nix::libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) } == -1 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// What SIGINT did when [`ignore_interrupts`] was called, to give back to a child.
pub(crate) struct InterruptDisposition(nix::libc::sighandler_t);

/// Makes this process ignore SIGINT (a Ctrl-C reaches a whole foreground process group), and
/// returns what it did before.
pub(crate) fn ignore_interrupts() -> InterruptDisposition {
    // SAFETY: installing SIG_IGN is always sound; the previous disposition is only kept, to be
    // reinstalled as it was.
    InterruptDisposition(unsafe { nix::libc::signal(nix::libc::SIGINT, nix::libc::SIG_IGN) })
}

/// Gives SIGINT back the disposition [`ignore_interrupts`] found.
pub(crate) fn restore_interrupts(previous: &InterruptDisposition) {
    // SAFETY: reinstalls a disposition this process had: SIG_DFL or SIG_IGN in a freshly
    // `exec`ed program (handlers do not survive `exec`), or a handler of this same image.
    unsafe {
        nix::libc::signal(nix::libc::SIGINT, previous.0);
    }
}

/// Points this process's stderr at /dev/null (a child whose refusal a test expects).
pub(crate) fn silence_stderr() {
    if let Ok(null) = std::fs::OpenOptions::new().write(true).open("/dev/null") {
        let _ = nix::unistd::dup2_stderr(null);
    }
}

/// Makes writing to a closed pipe return `EPIPE` instead of killing the process, as a Rust
/// `main` does at start-up.
pub(crate) fn ignore_broken_pipe_signal() {
    // SAFETY: installing SIG_IGN is always sound.
    unsafe {
        nix::libc::signal(nix::libc::SIGPIPE, nix::libc::SIG_IGN);
    }
}

/// What `/proc` says of process `pid`: whether it is still there, and when it started, so
/// that a PID the kernel gave to a new process is not taken for the old one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Liveness {
    /// Running (or stopped), started `start_time` clock ticks after boot.
    Running {
        /// Field 22 of `/proc/PID/stat`.
        start_time: u64,
    },
    /// Exited: no such process, or a zombie its parent has not reaped yet.
    Gone,
    /// Cannot tell: `/proc` hides it (mounted with `hidepid`), or says something unexpected.
    Unknown,
}

/// Whether process `pid` is still there (see [`Liveness`]). A zombie is gone: a parent
/// blocked waiting on a dead child's behalf never reaps it.
pub(crate) fn liveness(pid: u32) -> Liveness {
    if pid == 0 || pid > i32::MAX as u32 {
        return Liveness::Unknown;
    }
    match std::fs::read(format!("/proc/{pid}/stat")) {
        Ok(stat) => parse_stat(&stat),
        // Missing from /proc: gone, unless /proc only hides it (then `kill` still finds it).
        Err(error) if error.kind() == io::ErrorKind::NotFound => {
            match kill(Pid::from_raw(pid as i32), None) {
                Err(nix::errno::Errno::ESRCH) => Liveness::Gone,
                _ => Liveness::Unknown,
            }
        }
        Err(_) => Liveness::Unknown,
    }
}

/// Reads the state (field 3) and the start time (field 22) of a `/proc/PID/stat` line. The
/// command name (field 2) is in parentheses and may hold spaces and parentheses itself, so
/// fields are counted from the last `)`.
fn parse_stat(stat: &[u8]) -> Liveness {
    let Some(close) = stat.iter().rposition(|&byte| byte == b')') else {
        return Liveness::Unknown;
    };
    let Ok(rest) = std::str::from_utf8(&stat[close + 1..]) else {
        return Liveness::Unknown;
    };
    let mut fields = rest.split_ascii_whitespace();
    match fields.next() {
        Some("Z" | "X" | "x") => Liveness::Gone,
        Some(_) => match fields.nth(18).map(str::parse) {
            Some(Ok(start_time)) => Liveness::Running { start_time },
            _ => Liveness::Unknown,
        },
        None => Liveness::Unknown,
    }
}

#[cfg(test)]
mod liveness_tests {
    use super::*;

    #[test]
    fn this_process_runs_and_a_stat_line_is_read_from_its_last_parenthesis() {
        assert!(matches!(
            liveness(std::process::id()),
            Liveness::Running { .. }
        ));
        let line = b"42 (a) b) c) S 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 777 19 20";
        assert_eq!(parse_stat(line), Liveness::Running { start_time: 777 });
        assert_eq!(parse_stat(b"42 (x) Z 1 2"), Liveness::Gone);
        assert_eq!(parse_stat(b"garbage"), Liveness::Unknown);
        assert_eq!(liveness(0), Liveness::Unknown);
    }
}
