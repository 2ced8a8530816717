//! [`SharedMemoryManager`]: a manager that unlinks, when it shuts down, every segment made
//! through it. Python: `multiprocessing.managers.SharedMemoryManager`.
//!
//! As in CPython, a segment is made in the calling process and its name handed to the
//! manager's server, which keeps the names (in a list it holds); the manager's shutdown
//! unlinks every segment whose name it kept. A segment the program unlinked itself before is
//! passed over. If the program is killed before the shutdown, the segments are still removed
//! once their last user has ended: that is every [`SharedMemory`]'s own rule (see the
//! `shared_memory` module), which CPython's tracker does not give.

use std::fmt;

use super::{ListProxy, Manager, ManagerError};
use crate::shared_memory::{
    Item, ShareableList, ShareableListError, SharedMemory, SharedMemoryError,
};

/// A manager whose segments are unlinked at its shutdown. Python:
/// `multiprocessing.managers.SharedMemoryManager`; dropping it is leaving
/// `with SharedMemoryManager() as smm:`.
///
/// ```
/// use shared::{SharedMemory, SharedMemoryError, SharedMemoryManager};
///
/// let smm = SharedMemoryManager::new()?; // Python: smm = SharedMemoryManager(); smm.start()
/// let memoria = smm.shared_memory(128)?; // Python: smm.SharedMemory(size=128)
/// let lista = smm.shareable_list([1_i64, 2, 3])?; // Python: smm.ShareableList([1, 2, 3])
/// let (nome, nome_da_lista) = (memoria.name().to_owned(), lista.shm().name().to_owned());
/// smm.shutdown()?;
/// assert!(matches!(SharedMemory::attach(&nome), Err(SharedMemoryError::NotFound { .. })));
/// assert!(matches!(SharedMemory::attach(&nome_da_lista), Err(SharedMemoryError::NotFound { .. })));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct SharedMemoryManager {
    /// `None` once shut down.
    running: Option<Running>,
    /// The process that made it: a forked child that drops a copy leaves the segments alone.
    owner: u32,
}

struct Running {
    /// The names of the segments made through this manager, held by its server.
    names: ListProxy<String>,
    manager: Manager,
}

impl SharedMemoryManager {
    /// Starts the manager's server, under the program's start method. Python:
    /// `SharedMemoryManager()` then `start()`.
    ///
    /// # Errors
    /// As [`Manager::new`].
    pub fn new() -> Result<SharedMemoryManager, SharedMemoryManagerError> {
        let manager = Manager::new()?;
        let names = manager.list()?;
        Ok(SharedMemoryManager {
            running: Some(Running { names, manager }),
            owner: std::process::id(),
        })
    }

    /// The manager underneath, for the objects any manager holds. Python: a
    /// `SharedMemoryManager` is a `BaseManager`.
    pub fn manager(&self) -> &Manager {
        &self.running().manager
    }

    fn running(&self) -> &Running {
        // Set until `shutdown`, which consumes the manager.
        self.running
            .as_ref()
            .expect("a SharedMemoryManager runs until shutdown")
    }

    /// A new segment of `size` bytes, unlinked at the manager's shutdown. Python:
    /// `smm.SharedMemory(size)`.
    ///
    /// # Errors
    /// [`SharedMemoryManagerError::SharedMemory`] as [`SharedMemory::create`];
    /// [`SharedMemoryManagerError::Manager`] when the server cannot keep its name (the
    /// segment is unlinked again).
    pub fn shared_memory(&self, size: usize) -> Result<SharedMemory, SharedMemoryManagerError> {
        let segment = SharedMemory::create(size)?;
        self.track(&segment)?;
        Ok(segment)
    }

    /// A new list holding `items`, in a segment unlinked at the manager's shutdown. Python:
    /// `smm.ShareableList(sequence)`.
    ///
    /// # Errors
    /// [`SharedMemoryManagerError::ShareableList`] as [`ShareableList::new`];
    /// [`SharedMemoryManagerError::Manager`] as for [`shared_memory`](Self::shared_memory).
    pub fn shareable_list<I>(&self, items: I) -> Result<ShareableList, SharedMemoryManagerError>
    where
        I: IntoIterator,
        I::Item: Into<Item>,
    {
        let list = ShareableList::new(items)?;
        self.track(list.shm())?;
        Ok(list)
    }

    /// Hands `segment`'s name to the server; unlinks the segment if the server cannot keep it.
    fn track(&self, segment: &SharedMemory) -> Result<(), SharedMemoryManagerError> {
        let kept = self.running().names.append(&segment.name().to_owned());
        if kept.is_err() {
            // Nobody would unlink it at the shutdown: it is not handed out.
            let _ = segment.unlink();
        }
        Ok(kept?)
    }

    /// Unlinks every segment made through this manager (those not unlinked already), then
    /// stops its server. Python: `smm.shutdown()`.
    ///
    /// # Errors
    /// [`SharedMemoryManagerError::Manager`] when the server cannot be reached or stopped
    /// (its segments are then left to their own lifetime rule);
    /// [`SharedMemoryManagerError::SharedMemory`] when a segment cannot be unlinked (the
    /// others are, and the server is stopped all the same).
    pub fn shutdown(mut self) -> Result<(), SharedMemoryManagerError> {
        self.stop()
    }

    fn stop(&mut self) -> Result<(), SharedMemoryManagerError> {
        let Some(Running { names, manager }) = self.running.take() else {
            return Ok(());
        };
        let unlinked = names
            .to_vec()
            .map_err(SharedMemoryManagerError::from)
            .and_then(|names| {
                let mut first_error = Ok(());
                for name in names {
                    if let Err(error) = unlink(&name) {
                        first_error = first_error.and(Err(error.into()));
                    }
                }
                first_error
            });
        drop(names);
        let stopped = manager.shutdown();
        unlinked.and(stopped.map_err(Into::into))
    }
}

/// Unlinks the segment named `name`, unless it is gone already.
fn unlink(name: &str) -> Result<(), SharedMemoryError> {
    match SharedMemory::attach(name).and_then(|segment| segment.unlink()) {
        Err(SharedMemoryError::NotFound { .. }) => Ok(()),
        other => other,
    }
}

impl Drop for SharedMemoryManager {
    fn drop(&mut self) {
        if self.owner == std::process::id() {
            // Nothing to report from a drop: what was not unlinked follows its own rule.
            let _ = self.stop();
        }
    }
}

impl fmt::Debug for SharedMemoryManager {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SharedMemoryManager")
            .field(
                "manager",
                &self.running.as_ref().map(|running| &running.manager),
            )
            .finish()
    }
}

/// Why a [`SharedMemoryManager`] failed: its server, or the segment or list it was making.
///
/// ```
/// use shared::{ManagerError, SharedMemoryManagerError};
/// let error = SharedMemoryManagerError::from(ManagerError::ServerGone);
/// assert_eq!(error.to_string(), "the shared memory manager's server failed");
/// assert_eq!(
///     format!("{error:?}"),
///     "the shared memory manager's server failed: the manager's server is gone (it ended or was killed)"
/// );
/// ```
#[non_exhaustive]
pub enum SharedMemoryManagerError {
    /// The manager's server could not be started, reached or stopped.
    Manager(ManagerError),
    /// A segment could not be made or unlinked.
    SharedMemory(SharedMemoryError),
    /// A list could not be made.
    ShareableList(ShareableListError),
}

impl fmt::Display for SharedMemoryManagerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SharedMemoryManagerError::Manager(_) => "the shared memory manager's server failed",
            SharedMemoryManagerError::SharedMemory(_) => {
                "the shared memory manager's segment failed"
            }
            SharedMemoryManagerError::ShareableList(_) => "the shared memory manager's list failed",
        })
    }
}

impl std::error::Error for SharedMemoryManagerError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            SharedMemoryManagerError::Manager(error) => Some(error),
            SharedMemoryManagerError::SharedMemory(error) => Some(error),
            SharedMemoryManagerError::ShareableList(error) => Some(error),
        }
    }
}

crate::debug_as_display!(SharedMemoryManagerError);

impl From<ManagerError> for SharedMemoryManagerError {
    fn from(error: ManagerError) -> Self {
        SharedMemoryManagerError::Manager(error)
    }
}

impl From<SharedMemoryError> for SharedMemoryManagerError {
    fn from(error: SharedMemoryError) -> Self {
        SharedMemoryManagerError::SharedMemory(error)
    }
}

impl From<ShareableListError> for SharedMemoryManagerError {
    fn from(error: ShareableListError) -> Self {
        SharedMemoryManagerError::ShareableList(error)
    }
}
