//! [`wait`]: the first of several connections, listeners and processes to be ready. Python:
//! `multiprocessing.connection.wait`.

use std::fmt;
use std::io;
use std::os::fd::{AsFd, BorrowedFd};
use std::time::Duration;

use super::{Connection, Listener};
use crate::sys;

/// Something [`wait`] can wait for: a [`Connection`] (ready when a message or end of file can
/// be read), a [`Listener`] (ready when a connection waits to be accepted), or a process's
/// [`Sentinel`] (ready once the process has ended).
pub trait Waitable: sealed::Ready {}

mod sealed {
    use std::io;
    use std::os::fd::BorrowedFd;

    /// How [`wait`](super::wait) looks at a [`Waitable`](super::Waitable).
    pub trait Ready {
        /// The descriptor that becomes readable when this is ready.
        fn descriptor(&self) -> io::Result<BorrowedFd<'_>>;

        /// Whether this is ready without looking at its descriptor.
        fn ready_now(&self) -> bool {
            false
        }
    }
}

impl Waitable for Connection {}

impl sealed::Ready for Connection {
    fn descriptor(&self) -> io::Result<BorrowedFd<'_>> {
        self.channel.reader().map(AsFd::as_fd).ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                "a write-only Connection end never has anything to receive",
            )
        })
    }

    /// A message read ahead is ready though its pipe may be empty.
    fn ready_now(&self) -> bool {
        self.has_read_ahead()
    }
}

impl Waitable for Listener {}

impl sealed::Ready for Listener {
    fn descriptor(&self) -> io::Result<BorrowedFd<'_>> {
        Ok(self.as_fd())
    }
}

/// Ready once a process has ended: a pidfd, from [`Process::sentinel`](crate::Process::sentinel).
/// Python: `Process.sentinel`.
pub struct Sentinel<'a> {
    pidfd: BorrowedFd<'a>,
}

/// The sentinel of the process whose pidfd is `pidfd`.
pub(crate) fn sentinel(pidfd: BorrowedFd<'_>) -> Sentinel<'_> {
    Sentinel { pidfd }
}

impl fmt::Debug for Sentinel<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sentinel")
            .field("pidfd", &sys::fd::raw(&self.pidfd))
            .finish()
    }
}

impl Waitable for Sentinel<'_> {}

impl sealed::Ready for Sentinel<'_> {
    fn descriptor(&self) -> io::Result<BorrowedFd<'_>> {
        Ok(self.pidfd)
    }
}

/// Waits until at least one of `objects` is ready, up to `timeout` (`None` waits forever),
/// and returns the ready ones, in the order given; none when the time ran out. Python:
/// `multiprocessing.connection.wait(object_list, timeout)`.
///
/// `objects` may be of one type (`&Vec<Connection>`) or mixed, as `&dyn Waitable`; to tell
/// which of a mix is ready, compare addresses (`std::ptr::addr_eq`).
///
/// ```
/// use std::time::Duration;
/// use shared::{Pipe, wait};
///
/// let (a, b) = Pipe::new()?;
/// let (c, d) = Pipe::new()?;
/// let receivers = vec![b, d];
/// assert!(wait(&receivers, Some(Duration::ZERO))?.is_empty());
/// c.send("pronto")?;
/// let ready = wait(&receivers, None)?;
/// assert_eq!(ready.len(), 1);
/// assert_eq!(ready[0].recv::<String>()?, "pronto");
/// # drop(a);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// # Errors
/// `InvalidInput` for a write-only [`Connection`] end (nothing ever arrives there); the
/// system's refusal of `poll` otherwise (too many descriptors).
pub fn wait<'a, W>(
    objects: impl IntoIterator<Item = &'a W>,
    timeout: Option<Duration>,
) -> io::Result<Vec<&'a W>>
where
    W: Waitable + ?Sized + 'a,
{
    let objects: Vec<&'a W> = objects.into_iter().collect();
    let fds = objects
        .iter()
        .map(|object| object.descriptor())
        .collect::<io::Result<Vec<_>>>()?;
    // What is ready already makes the wait a look: the others are reported if ready too.
    let ready_now: Vec<bool> = objects.iter().map(|object| object.ready_now()).collect();
    let timeout = if ready_now.contains(&true) {
        Some(Duration::ZERO)
    } else {
        timeout
    };
    let readable = if fds.is_empty() {
        // Python's wait([]) sleeps for the timeout; nothing can wake it.
        std::thread::sleep(timeout.unwrap_or(Duration::MAX));
        Vec::new()
    } else {
        sys::fd::wait_any_readable(&fds, timeout)?
    };
    Ok(objects
        .into_iter()
        .zip(ready_now.into_iter().zip(readable))
        .filter_map(|(object, (now, readable))| (now || readable).then_some(object))
        .collect())
}
