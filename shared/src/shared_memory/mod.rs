//! [`SharedMemory`]: a block of bytes that several processes map, found by its name. Python:
//! `multiprocessing.shared_memory.SharedMemory`. [`ShareableList`] is a list stored in one.
//!
//! # Where a segment lives, and who finds it
//!
//! A segment is a file under `/dev/shm` (a tmpfs: memory, not disk), where POSIX `shm_open`
//! and CPython put theirs: `SharedMemory::create_named("dados", 64)` is `/dev/shm/dados`, and
//! Python's `SharedMemory(name="dados")` attaches to it, as does any program that opens the
//! file. A random name has CPython's shape, `psm_` and eight hex digits.
//!
//! A new segment is made without a name (`O_TMPFILE`), sized, its pages reserved (a full
//! tmpfs is an error from `create`, not a SIGBUS on a later write) and locked before it is
//! linked under its name in one step (`linkat`): nobody ever finds a segment half made, of
//! size 0, as CPython's `shm_open` + `ftruncate` lets an attacher do.
//!
//! # Lifetime: what we improve on CPython
//!
//! CPython's segments either leak (a process that is killed never unlinks; its
//! `resource_tracker` is a process of its own, killed with it by a `kill` of the group) or
//! vanish too early (before 3.13, a process that only *attached* registers the segment with
//! its tracker, which unlinks it when that process exits, under everyone still using it). The
//! rule here:
//!
//! - **A segment's name stays while some process is attached to it** (holds an open
//!   [`SharedMemory`]), whatever happens to the others; [`SharedMemory::unlink`] removes it
//!   at once, as in Python (mappings stay valid: the memory goes with its last user).
//! - **When every process that used it has ended, by any death, SIGKILL included, and none
//!   is attached, the name is removed.** Nothing is left under `/dev/shm`.
//! - A segment nobody has open, whose users are alive, stays, as in Python: `close` is not
//!   `unlink`. It is removed when one of them ends with nobody attached.
//!
//! How: **an attached process holds a shared `flock` on the file**. The kernel drops it when
//! the process's last descriptor of the file closes, which a SIGKILL does too; so "someone is
//! attached" is exactly "an exclusive `flock` cannot be taken now". Each process that uses a
//! segment has a **watchdog**: a tiny process forked once, on the first segment it uses, that
//! waits on a pidfd of it and is not a member of anything a user would kill (a session and a
//! process group of its own; it ignores SIGINT, SIGTERM, SIGHUP and SIGQUIT, and holds no
//! descriptor of the program's, so nobody reading the program's output waits for it).
//! The process writes each segment it uses into a table in memory that the watchdog maps (a
//! few stores, no system call: `create` and `attach` stay cheap); when the process has ended,
//! the watchdog takes the exclusive lock of each, and removes the names nobody holds. A name
//! still held by a live process is looked at again every 20 ms until its last holder has gone
//! (that holder's own watchdog would remove it too: whichever comes last does). An attacher
//! that opened the name while the watchdog held it finds the file unlinked once it gets its
//! lock, and reports [`SharedMemoryError::NotFound`], as if it had come later.
//!
//! The trade-offs, against the alternatives we weighed:
//!
//! - **A sealed memfd** (the `Value`'s storage) lives exactly as long as its users with no
//!   watchdog at all, but has no name: a program not started by `shared` cannot find it, and
//!   a name server would be a process of its own to keep alive. `/dev/shm` is what Python and
//!   C programs already know.
//! - **One watchdog per segment** would cost a `fork` per `create` (hundreds of µs); one per
//!   process costs one fork, once, and a slot of a table afterwards.
//! - **A sweep at the next `create`** (remove every unheld segment) would leave segments
//!   behind until someone creates one again, and could remove a segment a program not using
//!   the lock protocol still maps.
//!
//! The limits, each a price of that choice: a watchdog killed with SIGKILL before its process
//! leaves that process's segments behind (as CPython's tracker does), and the subreaper that
//! becomes its parent (the main program once it started a forkserver) keeps it as a zombie
//! until it exits; a program not using `shared` that maps a segment counts as attached only if
//! it takes `flock(fd, LOCK_SH)` on its file (Python's `fcntl.flock`); and one race remains,
//! in a window of a few instructions: a process that does not follow the protocol (`rm`,
//! Python's `unlink`) replacing a name between the watchdog's last check and its `unlink`.
//!
//! # The bytes: shared with processes that write at any moment
//!
//! Other processes write the segment while we read it. A `&[u8]` or `&mut [u8]` over it would
//! be undefined behaviour in Rust's model (the compiler may assume bytes behind a `&[u8]` do
//! not change, and that nobody else sees those behind a `&mut`). So [`SharedMemory::buf`]
//! gives a `&[AtomicU8]`: each byte is read and written with atomic operations, as another
//! thread's would be, and any value another process writes is a valid byte. For bulk copies,
//! [`SharedMemory::read_at`] and [`SharedMemory::write_at`] copy in and out with atomic
//! accesses eight bytes wide where alignment allows (a racing writer may leave a mix of old
//! and new bytes, never an invalid value); [`SharedMemory::as_ptr`] is there for code that
//! brings its own synchronisation and `unsafe`. To share a typed value with a lock, use
//! [`Value`](crate::Value) or [`Array`](crate::Array).
//!
//! # Cost
//!
//! `create` is an `open(O_TMPFILE)`, a `fallocate`, a `flock`, an `fstat`, a `linkat` and an
//! `mmap`; `attach` an `open`, two `fstat`s, a `flock` and an `mmap`, except in a process that
//! holds the segment already: there it is one `lstat` of the name, and the new handle shares
//! the mapping and the lock of the process's other handles (closing it then costs nothing;
//! CPython maps the file again). The table's bookkeeping
//! is a few atomic stores (a fork is noticed by a `pthread_atfork` handler, not by asking
//! `getpid`), and names come from a counter seeded once from the kernel; paths are built on
//! the stack, so a call by name allocates nothing but the handle's copy of the name. The
//! bench's `shm_create` row times create + attach + unlink of 4 KiB against CPython.
//!
//! That cycle is 11 system calls (`unlink` is an `lstat` and an `unlink`; the last `close` a
//! `munmap` and a `close`) and one page fault, and nine tenths of its time is the kernel's:
//! making and freeing a tmpfs file, its page and its mapping. A C program making the same
//! calls is at most about 1 µs faster. What the guarantees above cost of it, measured on the
//! bench's machine: `O_TMPFILE` + `linkat` instead of `open(O_CREAT)` (registered before it
//! has a name, never found half made) about 3 µs; the `flock` and the `fstat` (attachment, and
//! which file the watchdog may remove) about 1.5 µs; the `lstat` before `unlink` (a name given
//! to another segment meanwhile is left alone) about 1 µs.
//!
//! A process that shrinks the file under our mapping (`ftruncate`: only a program outside the
//! protocol would) makes an access past the new end raise SIGBUS, as in CPython; tmpfs files,
//! unlike memfds, cannot be sealed against it.

mod held;
mod list;
mod watchdog;

use std::fmt;
use std::io;
use std::ops::Range;
use std::os::fd::{AsFd, OwnedFd};
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::sys::posix_shm::{self, FileStatus, LockKind};
use crate::sys::shm::Mapping;

pub use list::{Item, ShareableList, ShareableListError};

/// The longest name a segment may have, in bytes, without its optional leading `/`
/// (`NAME_MAX`, the longest file name `/dev/shm` takes).
pub const MAX_NAME_LEN: usize = 255;

/// How long `attach` waits for a watchdog that holds the segment's exclusive lock (it holds
/// it for microseconds, while it removes the name) before it calls the segment busy.
const LOCK_PATIENCE: Duration = Duration::from_secs(1);

/// What went wrong with a shared-memory segment. Python raises `ValueError`,
/// `FileExistsError`, `FileNotFoundError` and `OSError`; each is a variant here.
pub enum SharedMemoryError {
    /// The name is not one a segment can have. Python: `ValueError` (or `OSError` from
    /// `shm_open`).
    InvalidName {
        /// The name as given.
        name: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A size of zero, or beyond what this process can map. Python: `ValueError: 'size' must
    /// be a positive number different from zero`.
    InvalidSize {
        /// The size asked for.
        size: usize,
    },
    /// `create_named` found the name taken. Python: `FileExistsError`.
    Exists {
        /// The name.
        name: String,
    },
    /// No segment has this name (never created, unlinked, or removed after its last user
    /// ended). Python: `FileNotFoundError`.
    NotFound {
        /// The name.
        name: String,
    },
    /// The name exists but is not a usable segment: not a regular file, or empty. Python
    /// fails in `mmap` with `ValueError` or `OSError`.
    NotASegment {
        /// The name.
        name: String,
        /// What the file is instead.
        reason: &'static str,
    },
    /// Another process has held the segment's exclusive lock for longer than a watchdog ever
    /// does: it does not follow the protocol.
    Busy {
        /// The name.
        name: String,
    },
    /// A read or write that does not fit in the segment. Python: `IndexError` or
    /// `ValueError` from the `memoryview`.
    OutOfRange {
        /// Where it starts.
        offset: usize,
        /// How many bytes.
        len: usize,
        /// The segment's size.
        size: usize,
    },
    /// The system refused an operation; the `io::Error` is the [`source`](std::error::Error::source).
    /// Python: `OSError`.
    Os {
        /// What was being done: "create", "attach", "map", "unlink".
        operation: &'static str,
        /// The segment's name.
        name: String,
        /// What the system said.
        source: io::Error,
    },
}

impl fmt::Display for SharedMemoryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SharedMemoryError::InvalidName { name, reason } => {
                write!(f, "invalid shared memory name {name:?}: {reason}")
            }
            SharedMemoryError::InvalidSize { size } => write!(
                f,
                "invalid shared memory size {size}: expected a positive size of at most {}",
                isize::MAX
            ),
            SharedMemoryError::Exists { name } => {
                write!(f, "shared memory segment {name:?} already exists")
            }
            SharedMemoryError::NotFound { name } => {
                write!(f, "no shared memory segment named {name:?}")
            }
            SharedMemoryError::NotASegment { name, reason } => {
                write!(
                    f,
                    "{name:?} under /dev/shm is not a shared memory segment: {reason}"
                )
            }
            SharedMemoryError::Busy { name } => write!(
                f,
                "shared memory segment {name:?} is held exclusively by another process"
            ),
            SharedMemoryError::OutOfRange { offset, len, size } => write!(
                f,
                "{len} bytes at offset {offset} do not fit in a shared memory segment of {size} bytes"
            ),
            SharedMemoryError::Os {
                operation, name, ..
            } => write!(f, "cannot {operation} shared memory segment {name:?}"),
        }
    }
}

impl std::error::Error for SharedMemoryError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            SharedMemoryError::Os { source, .. } => Some(source),
            _ => None,
        }
    }
}

crate::debug_as_display!(SharedMemoryError);

/// Checks a name as given to `create_named` or `attach`, and returns it without its optional
/// leading `/` (Python's `name` attribute has none either).
fn checked_name(name: &str) -> Result<&str, SharedMemoryError> {
    let bare = name.strip_prefix('/').unwrap_or(name);
    check_name_chars(bare).map_err(|reason| SharedMemoryError::InvalidName {
        name: name.to_owned(),
        reason,
    })?;
    Ok(bare)
}

/// What a name without its leading `/` may be: a file name under `/dev/shm`.
fn check_name_chars(bare: &str) -> Result<(), &'static str> {
    if bare.is_empty() {
        return Err("expected at least one character after the optional leading '/'");
    }
    if bare.len() > MAX_NAME_LEN {
        return Err("longer than 255 bytes");
    }
    if bare.contains('/') {
        return Err("a '/' may only lead the name");
    }
    if bare.contains('\0') {
        return Err("contains a NUL byte");
    }
    if bare == "." || bare == ".." {
        return Err("'.' and '..' name directories");
    }
    Ok(())
}

/// A name like CPython's own: `psm_` and eight hex digits.
fn random_name() -> Result<String, SharedMemoryError> {
    let bits = watchdog::name_bits().map_err(|source| SharedMemoryError::Os {
        operation: "name",
        name: String::new(),
        source,
    })?;
    // Digit by digit rather than `format!`: this is on every `create`'s path.
    let mut name = String::with_capacity(12);
    name.push_str("psm_");
    for shift in (0..8).rev() {
        name.push(char::from(
            b"0123456789abcdef"[(bits >> (4 * shift)) as usize & 0xf],
        ));
    }
    Ok(name)
}

/// The error of `operation` on segment `name`, for `map_err`: the name is copied only when
/// the error happens, not on every call's way through.
fn os_error<'a>(
    operation: &'static str,
    name: &'a str,
) -> impl FnOnce(io::Error) -> SharedMemoryError + 'a {
    move |source| SharedMemoryError::Os {
        operation,
        name: name.to_owned(),
        source,
    }
}

/// A block of shared memory, mapped in this process, with a name other processes attach to.
/// Python: `multiprocessing.shared_memory.SharedMemory`.
///
/// Dropping it is [`close`](Self::close). The segment's lifetime is described in the module's
/// docs: it stays while some process is attached, and is removed when every process that used
/// it has ended, even by SIGKILL.
///
/// ```
/// use shared::SharedMemory;
///
/// let memoria = SharedMemory::create(64)?; // Python: SharedMemory(create=True, size=64)
/// assert_eq!(memoria.size(), 64);
/// assert!(memoria.name().starts_with("psm_"));
///
/// let outra = SharedMemory::attach(memoria.name())?; // Python: SharedMemory(name=...)
/// outra.write_at(0, b"ola")?;
/// assert_eq!(memoria.read(0..3)?, b"ola");
///
/// outra.close();
/// memoria.unlink()?;
/// # Ok::<(), shared::SharedMemoryError>(())
/// ```
pub struct SharedMemory {
    name: String,
    /// Shared with this process's other handles of the segment (see `held`).
    segment: Arc<Segment>,
}

/// A segment as this process holds it: one mapping and one open file, however many of its
/// handles use it.
struct Segment {
    // Dropped before `_lock`: unmapped before the lock goes.
    map: Mapping,
    /// Holds the shared `flock` that says this process is attached.
    _lock: OwnedFd,
    status: FileStatus,
    registration: watchdog::Registration,
}

impl SharedMemory {
    /// A handle of `segment`, which this process holds from now on (see `held`).
    fn holding(name: String, segment: Segment) -> SharedMemory {
        let segment = Arc::new(segment);
        held::remember(segment.status.id, &segment);
        SharedMemory { name, segment }
    }
}

impl SharedMemory {
    /// Creates a segment of `size` bytes, zeroed, with a new random name. Python:
    /// `SharedMemory(create=True, size=size)`.
    ///
    /// ```
    /// let memoria = shared::SharedMemory::create(4096)?;
    /// assert!(memoria.read(0..4096)?.iter().all(|&byte| byte == 0));
    /// memoria.unlink()?;
    /// # Ok::<(), shared::SharedMemoryError>(())
    /// ```
    ///
    /// # Errors
    /// [`SharedMemoryError::InvalidSize`] for 0 or more than `isize::MAX`;
    /// [`SharedMemoryError::Os`] when the system refuses the memory (a full `/dev/shm` is
    /// `ENOSPC`), the watchdog, or the mapping.
    pub fn create(size: usize) -> Result<SharedMemory, SharedMemoryError> {
        loop {
            let name = random_name()?;
            match Self::create_checked(name, size) {
                Err(SharedMemoryError::Exists { .. }) => continue,
                other => return other,
            }
        }
    }

    /// Creates a segment of `size` bytes, zeroed, named `name` (a leading `/` is optional, as
    /// in Python). Python: `SharedMemory(name=name, create=True, size=size)`.
    ///
    /// ```
    /// use shared::{SharedMemory, SharedMemoryError};
    ///
    /// let name = format!("doc-create-named-{}", std::process::id());
    /// let memoria = SharedMemory::create_named(&name, 16)?;
    /// assert_eq!(memoria.name(), name);
    /// assert!(matches!(
    ///     SharedMemory::create_named(&format!("/{name}"), 16),
    ///     Err(SharedMemoryError::Exists { .. })
    /// ));
    /// assert!(matches!(
    ///     SharedMemory::create_named("a/b", 16),
    ///     Err(SharedMemoryError::InvalidName { .. })
    /// ));
    /// memoria.unlink()?;
    /// # Ok::<(), SharedMemoryError>(())
    /// ```
    ///
    /// # Errors
    /// [`SharedMemoryError::InvalidName`] for an empty name, one longer than
    /// [`MAX_NAME_LEN`] bytes, with a `/` past the first character, or a NUL;
    /// [`SharedMemoryError::Exists`] when the name is taken; and those of [`create`](Self::create).
    pub fn create_named(name: &str, size: usize) -> Result<SharedMemory, SharedMemoryError> {
        let name = checked_name(name)?.to_owned();
        Self::create_checked(name, size)
    }

    fn create_checked(name: String, size: usize) -> Result<SharedMemory, SharedMemoryError> {
        if size == 0 || isize::try_from(size).is_err() {
            return Err(SharedMemoryError::InvalidSize { size });
        }
        let file = posix_shm::create_unnamed(size as u64).map_err(os_error("create", &name))?;
        posix_shm::try_lock(file.as_fd(), LockKind::Shared).map_err(os_error("lock", &name))?;
        let status = posix_shm::status(file.as_fd()).map_err(os_error("create", &name))?;
        // Registered before it has a name: a SIGKILL at any instant from now on leaves the
        // segment to the watchdog.
        let registration =
            watchdog::register(&name, status.id).map_err(os_error("register", &name))?;
        if let Err(error) = posix_shm::publish(file.as_fd(), &name) {
            watchdog::unregister(&registration);
            return Err(match error.kind() {
                io::ErrorKind::AlreadyExists => SharedMemoryError::Exists { name },
                _ => os_error("create", &name)(error),
            });
        }
        let map = match Mapping::new(&file, 0, size) {
            Ok(map) => map,
            Err(error) => {
                // Published but unusable: take it back rather than leave it to the watchdog.
                let _ = posix_shm::remove(&name);
                watchdog::unregister(&registration);
                return Err(os_error("map", &name)(error));
            }
        };
        Ok(SharedMemory::holding(
            name,
            Segment {
                map,
                _lock: file,
                status,
                registration,
            },
        ))
    }

    /// Attaches to the segment named `name`, made by any process (this one, another started
    /// by `shared`, Python, a C program). Python: `SharedMemory(name=name)`.
    ///
    /// ```
    /// use shared::{SharedMemory, SharedMemoryError};
    ///
    /// let memoria = SharedMemory::create(8)?;
    /// let outra = SharedMemory::attach(&format!("/{}", memoria.name()))?;
    /// assert_eq!(outra.size(), 8);
    /// memoria.unlink()?;
    /// assert!(matches!(
    ///     SharedMemory::attach(memoria.name()),
    ///     Err(SharedMemoryError::NotFound { .. })
    /// ));
    /// # Ok::<(), SharedMemoryError>(())
    /// ```
    ///
    /// # Errors
    /// [`SharedMemoryError::InvalidName`] as for [`create_named`](Self::create_named);
    /// [`SharedMemoryError::NotFound`] when no segment has the name (or its last user ended
    /// while we attached); [`SharedMemoryError::NotASegment`] for a file under `/dev/shm` that
    /// is not a regular file, is empty or is too large to map; [`SharedMemoryError::Busy`]
    /// when a process outside the protocol holds its exclusive lock; [`SharedMemoryError::Os`]
    /// for a file we may not open, or a mapping the system refuses.
    pub fn attach(name: &str) -> Result<SharedMemory, SharedMemoryError> {
        let name = checked_name(name)?.to_owned();
        // A segment this process holds already: its mapping and lock serve this handle too.
        // Whatever the name stands for now decides (a symbolic link is never a held file).
        if let Some(segment) = posix_shm::status_of_name(&name)
            .ok()
            .and_then(|now| held::find(now.id))
        {
            return Ok(SharedMemory { name, segment });
        }
        let file = match posix_shm::open(&name) {
            Ok(file) => file,
            Err(error) if error.kind() == io::ErrorKind::NotFound => {
                return Err(SharedMemoryError::NotFound { name });
            }
            Err(error) if error.raw_os_error() == Some(nix::libc::ELOOP) => {
                return Err(SharedMemoryError::NotASegment {
                    name,
                    reason: "a symbolic link",
                });
            }
            Err(error) => return Err(os_error("attach", &name)(error)),
        };
        let status = posix_shm::status(file.as_fd()).map_err(os_error("attach", &name))?;
        let size = Self::mappable_size(&name, &status)?;
        let registration =
            watchdog::register(&name, status.id).map_err(os_error("register", &name))?;
        let map = Self::lock_while_linked(&name, &file)
            .and_then(|()| Mapping::new(&file, 0, size).map_err(os_error("map", &name)))
            .inspect_err(|_| watchdog::unregister(&registration))?;
        Ok(SharedMemory::holding(
            name,
            Segment {
                map,
                _lock: file,
                status,
                registration,
            },
        ))
    }

    /// The size to map, if the file is a segment at all.
    fn mappable_size(name: &str, status: &FileStatus) -> Result<usize, SharedMemoryError> {
        let refuse = |reason| SharedMemoryError::NotASegment {
            name: name.to_owned(),
            reason,
        };
        if !status.regular {
            return Err(refuse("not a regular file"));
        }
        if status.len == 0 {
            return Err(refuse("empty"));
        }
        usize::try_from(status.len)
            .ok()
            .filter(|&len| isize::try_from(len).is_ok())
            .ok_or_else(|| refuse("larger than this process can map"))
    }

    /// Takes the shared lock, and checks that the file still has its name: a watchdog that
    /// held the exclusive lock removed it, since nobody was attached.
    fn lock_while_linked(name: &str, file: &OwnedFd) -> Result<(), SharedMemoryError> {
        let os = |source| SharedMemoryError::Os {
            operation: "lock",
            name: name.to_owned(),
            source,
        };
        let since = Instant::now();
        while !posix_shm::try_lock(file.as_fd(), LockKind::Shared).map_err(os)? {
            if posix_shm::status(file.as_fd()).map_err(os)?.links == 0 {
                break; // removed: reported below
            }
            if since.elapsed() > LOCK_PATIENCE {
                return Err(SharedMemoryError::Busy {
                    name: name.to_owned(),
                });
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        if posix_shm::status(file.as_fd()).map_err(os)?.links == 0 {
            return Err(SharedMemoryError::NotFound {
                name: name.to_owned(),
            });
        }
        Ok(())
    }

    /// The segment's name, without a leading `/`. Python: `shm.name`.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The segment's size in bytes, as mapped here. Python: `shm.size`.
    pub fn size(&self) -> usize {
        self.segment.map.len()
    }

    /// The bytes, each an atomic: shared with other processes that may write any of them at
    /// any moment (see the module's docs for why not a `&[u8]`). Python: `shm.buf`.
    ///
    /// ```
    /// use std::sync::atomic::Ordering;
    ///
    /// let memoria = shared::SharedMemory::create(4)?;
    /// memoria.buf()[0].store(42, Ordering::Relaxed); // Python: shm.buf[0] = 42
    /// assert_eq!(memoria.buf()[0].load(Ordering::Relaxed), 42);
    /// assert_eq!(memoria.buf().len(), 4);
    /// memoria.unlink()?;
    /// # Ok::<(), shared::SharedMemoryError>(())
    /// ```
    pub fn buf(&self) -> &[AtomicU8] {
        // SAFETY: the mapping is `size()` bytes, readable and writable, alive and in place as
        // long as `self` (it is unmapped only on drop). `AtomicU8` has the size and alignment
        // of `u8`, every byte is a valid `AtomicU8`, and every access through the slice is
        // atomic, so concurrent writes by other threads or processes are not data races.
        unsafe {
            std::slice::from_raw_parts(self.segment.map.as_ptr().cast::<AtomicU8>(), self.size())
        }
    }

    /// The start of the mapping, for code that brings its own synchronisation. Every access
    /// through it is `unsafe`, and racing another process's writes with non-atomic accesses
    /// is undefined behaviour: prefer [`buf`](Self::buf), [`read_at`](Self::read_at) and
    /// [`write_at`](Self::write_at).
    pub fn as_ptr(&self) -> *mut u8 {
        self.segment.map.as_ptr()
    }

    /// The part of the segment that `offset` and `len` name, or why not.
    fn range(&self, offset: usize, len: usize) -> Result<&[AtomicU8], SharedMemoryError> {
        let out_of_range = || SharedMemoryError::OutOfRange {
            offset,
            len,
            size: self.size(),
        };
        let end = offset.checked_add(len).ok_or_else(out_of_range)?;
        self.buf().get(offset..end).ok_or_else(out_of_range)
    }

    /// Copies `into.len()` bytes from `offset` into `into`. Python:
    /// `into[:] = shm.buf[offset:offset + len(into)]`.
    ///
    /// ```
    /// let memoria = shared::SharedMemory::create(8)?;
    /// memoria.write_at(0, &7_u64.to_le_bytes())?;
    /// let mut word = [0; 8];
    /// memoria.read_at(0, &mut word)?;
    /// assert_eq!(u64::from_le_bytes(word), 7);
    /// assert!(memoria.read_at(4, &mut word).is_err()); // runs past the end
    /// memoria.unlink()?;
    /// # Ok::<(), shared::SharedMemoryError>(())
    /// ```
    ///
    /// # Errors
    /// [`SharedMemoryError::OutOfRange`] when the bytes run past the end of the segment.
    pub fn read_at(&self, offset: usize, into: &mut [u8]) -> Result<(), SharedMemoryError> {
        let shared = self.range(offset, into.len())?;
        copy_bytes(shared, Direction::Out(into));
        Ok(())
    }

    /// The bytes of `range`, copied. Python: `bytes(shm.buf[start:end])`.
    ///
    /// # Errors
    /// [`SharedMemoryError::OutOfRange`] when the range runs past the end of the segment or
    /// ends before it starts.
    pub fn read(&self, range: Range<usize>) -> Result<Vec<u8>, SharedMemoryError> {
        let len = range
            .end
            .checked_sub(range.start)
            .ok_or(SharedMemoryError::OutOfRange {
                offset: range.start,
                len: 0,
                size: self.size(),
            })?;
        let mut bytes = vec![0; len];
        self.read_at(range.start, &mut bytes)?;
        Ok(bytes)
    }

    /// Copies `bytes` into the segment at `offset`. Python:
    /// `shm.buf[offset:offset + len(bytes)] = bytes`.
    ///
    /// ```
    /// use shared::{SharedMemory, SharedMemoryError};
    ///
    /// let memoria = SharedMemory::create(4)?;
    /// memoria.write_at(1, b"abc")?;
    /// assert_eq!(memoria.read(0..4)?, b"\0abc");
    /// assert!(matches!(memoria.write_at(2, b"abc"), Err(SharedMemoryError::OutOfRange { .. })));
    /// memoria.unlink()?;
    /// # Ok::<(), SharedMemoryError>(())
    /// ```
    ///
    /// # Errors
    /// [`SharedMemoryError::OutOfRange`] when the bytes run past the end of the segment;
    /// nothing is written then.
    pub fn write_at(&self, offset: usize, bytes: &[u8]) -> Result<(), SharedMemoryError> {
        let shared = self.range(offset, bytes.len())?;
        copy_bytes(shared, Direction::In(bytes));
        Ok(())
    }

    /// Detaches this process from the segment: unmaps it and releases its lock. The segment
    /// stays for the other processes, and under its name. Python: `shm.close()` (a closed
    /// `SharedMemory` cannot be used again; here the handle is consumed).
    ///
    /// ```
    /// use shared::SharedMemory;
    ///
    /// let memoria = SharedMemory::create(8)?;
    /// let outra = SharedMemory::attach(memoria.name())?;
    /// outra.close();
    /// assert!(SharedMemory::attach(memoria.name()).is_ok()); // still there
    /// memoria.unlink()?;
    /// # Ok::<(), shared::SharedMemoryError>(())
    /// ```
    pub fn close(self) {
        drop(self);
    }

    /// Removes the segment's name, so no process can attach any more; those attached keep
    /// their mapping, and the memory goes with the last of them. Python: `shm.unlink()`.
    ///
    /// ```
    /// use shared::{SharedMemory, SharedMemoryError};
    ///
    /// let memoria = SharedMemory::create(8)?;
    /// let outra = SharedMemory::attach(memoria.name())?;
    /// memoria.unlink()?;
    /// outra.write_at(0, b"still")?; // the mappings stay
    /// assert_eq!(memoria.read(0..5)?, b"still");
    /// assert!(matches!(memoria.unlink(), Err(SharedMemoryError::NotFound { .. })));
    /// # Ok::<(), SharedMemoryError>(())
    /// ```
    ///
    /// # Errors
    /// [`SharedMemoryError::NotFound`] when the name is gone already, or names another
    /// segment now (that one is left alone); [`SharedMemoryError::Os`] when the system
    /// refuses.
    pub fn unlink(&self) -> Result<(), SharedMemoryError> {
        let not_found = || SharedMemoryError::NotFound {
            name: self.name.clone(),
        };
        match posix_shm::status_of_name(&self.name) {
            Ok(now) if now.id == self.segment.status.id => {}
            Ok(_) => return Err(not_found()),
            Err(error) if error.kind() == io::ErrorKind::NotFound => return Err(not_found()),
            Err(source) => return Err(self.os("unlink", source)),
        }
        match posix_shm::remove(&self.name) {
            Ok(()) => {
                watchdog::unregister(&self.segment.registration);
                Ok(())
            }
            Err(error) if error.kind() == io::ErrorKind::NotFound => Err(not_found()),
            Err(source) => Err(self.os("unlink", source)),
        }
    }

    fn os(&self, operation: &'static str, source: io::Error) -> SharedMemoryError {
        SharedMemoryError::Os {
            operation,
            name: self.name.clone(),
            source,
        }
    }
}

impl fmt::Debug for SharedMemory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SharedMemory")
            .field("name", &self.name)
            .field("size", &self.size())
            .finish()
    }
}

/// The direction of a copy between the segment and local memory.
enum Direction<'a> {
    Out(&'a mut [u8]),
    In(&'a [u8]),
}

/// Copies between `shared` and local bytes of the same length with atomic accesses: eight
/// bytes at a time where `shared` is 8-aligned, single bytes at the edges.
fn copy_bytes(shared: &[AtomicU8], mut local: Direction<'_>) {
    let head = shared.as_ptr().align_offset(8).min(shared.len());
    let words = (shared.len() - head) / 8;
    for index in 0..shared.len() {
        let in_words = index >= head && index < head + words * 8;
        if in_words && (index - head) % 8 != 0 {
            continue; // moved with its word
        }
        if in_words {
            // SAFETY: `index` is 8-aligned in `shared` (past `head`), and eight bytes from it
            // lie inside `shared`, memory accessed only atomically; `AtomicU64::from_ptr`
            // needs exactly that alignment and validity.
            let word = unsafe { AtomicU64::from_ptr(shared.as_ptr().add(index) as *mut u64) };
            match &mut local {
                Direction::Out(into) => into[index..index + 8]
                    .copy_from_slice(&word.load(Ordering::Relaxed).to_ne_bytes()),
                Direction::In(from) => {
                    let bytes: [u8; 8] = from[index..index + 8].try_into().unwrap_or([0; 8]);
                    word.store(u64::from_ne_bytes(bytes), Ordering::Relaxed);
                }
            }
        } else {
            match &mut local {
                Direction::Out(into) => into[index] = shared[index].load(Ordering::Relaxed),
                Direction::In(from) => shared[index].store(from[index], Ordering::Relaxed),
            }
        }
    }
}

/// The PID of this process's shared-memory watchdog, if it has started one. Test support.
pub(crate) fn watchdog_pid() -> Option<u32> {
    watchdog::watchdog_pid()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked_as_python_and_the_kernel_would() {
        assert_eq!(checked_name("/abc").unwrap(), "abc");
        assert_eq!(checked_name("abc").unwrap(), "abc");
        for bad in ["", "/", "a/b", "//a", "a\0b", ".", "..", &"x".repeat(256)] {
            assert!(checked_name(bad).is_err(), "{bad:?} accepted");
        }
        assert!(checked_name(&"x".repeat(255)).is_ok());
    }

    #[test]
    fn random_names_have_cpythons_shape() {
        for _ in 0..100 {
            let name = random_name().unwrap();
            let digits = name.strip_prefix("psm_").expect("psm_ prefix");
            assert_eq!(digits.len(), 8, "{name}");
            assert!(
                digits
                    .bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
            );
        }
    }

    #[test]
    fn copies_round_trip_at_every_offset_and_length() {
        let memoria = SharedMemory::create(64).unwrap();
        for offset in 0..20 {
            for len in 0..30 {
                let bytes: Vec<u8> = (0..len).map(|i| (offset * 31 + i) as u8).collect();
                memoria.write_at(offset, &bytes).unwrap();
                assert_eq!(memoria.read(offset..offset + len).unwrap(), bytes);
            }
        }
        memoria.unlink().unwrap();
    }
}
