//! The segments this process holds, by file: a second handle of a segment in the process
//! that holds it already (an `attach` by name of a segment it created or attached to) shares
//! the first one's mapping and open file instead of opening, locking and mapping the file
//! again. The process is attached (holds the shared `flock`) as long as one of its handles
//! is open, which is what the lifetime rule of the module asks; the mapping goes with the
//! last handle, as two mappings would.
//!
//! A forked child forgets the table (the `pthread_atfork` handler of `watchdog`): its
//! parent's handles it inherited stay valid, but a child's own `attach` opens, locks and maps
//! the file as any other process does, and registers it with the child's own watchdog.

use std::ptr;
use std::sync::atomic::{AtomicPtr, Ordering};
use std::sync::{Arc, Mutex, PoisonError, Weak};

use super::Segment;
use crate::sys::posix_shm::FileId;

/// The segments of this process, each while some handle holds it.
#[derive(Default)]
struct Held(Mutex<Vec<(FileId, Weak<Segment>)>>);

static HELD: AtomicPtr<Held> = AtomicPtr::new(ptr::null_mut());

/// This process's table, made on first use (in a forked child, its own).
fn table() -> &'static Held {
    loop {
        // SAFETY: `HELD` holds null or a `Box<Held>` leaked below, never freed (a forked child
        // drops its parent's pointer in `forget_in_child` and leaks that copy).
        if let Some(held) = unsafe { HELD.load(Ordering::Acquire).as_ref() } {
            return held;
        }
        let fresh = Box::into_raw(Box::default());
        match HELD.compare_exchange(ptr::null_mut(), fresh, Ordering::AcqRel, Ordering::Acquire) {
            // SAFETY: leaked on purpose: it lives as long as the process.
            Ok(_) => return unsafe { &*fresh },
            // SAFETY: `fresh` came from `Box::into_raw` above and was never shared.
            Err(_) => drop(unsafe { Box::from_raw(fresh) }),
        }
    }
}

/// The segment of file `id`, if a handle of this process holds it.
pub(super) fn find(id: FileId) -> Option<Arc<Segment>> {
    let held = table().0.lock().unwrap_or_else(PoisonError::into_inner);
    held.iter()
        .find(|(held_id, _)| *held_id == id)
        .and_then(|(_, segment)| segment.upgrade())
}

/// Records a segment this process now holds (and forgets those no handle holds any more).
pub(super) fn remember(id: FileId, segment: &Arc<Segment>) {
    let mut held = table().0.lock().unwrap_or_else(PoisonError::into_inner);
    held.retain(|(_, segment)| segment.strong_count() > 0);
    held.push((id, Arc::downgrade(segment)));
}

/// Run in the child of every `fork` (see `watchdog::forget_in_child`): one atomic store, safe
/// in a child of a program with threads (the parent's table, and its lock as another thread
/// may have held it, are left behind, never touched).
pub(super) fn forget_in_child() {
    HELD.store(ptr::null_mut(), Ordering::Release);
}

#[cfg(test)]
mod tests {
    use crate::SharedMemory;

    #[test]
    fn a_second_handle_in_the_process_shares_the_mapping_and_outlives_the_first() {
        let created = SharedMemory::create(64).unwrap();
        created.write_at(0, b"um").unwrap();
        let attached = SharedMemory::attach(created.name()).unwrap();
        assert_eq!(attached.as_ptr(), created.as_ptr(), "one mapping for both");
        let name = created.name().to_owned();
        created.close();
        assert_eq!(attached.read(0..2).unwrap(), b"um");
        attached.close();
        // Closing every handle is not unlinking: a later attach maps it again.
        let again = SharedMemory::attach(&name).unwrap();
        assert_eq!(again.read(0..2).unwrap(), b"um");
        again.unlink().unwrap();
    }

    #[test]
    fn a_name_given_to_a_new_segment_attaches_to_the_new_one() {
        let name = format!("held-test-new-{}", std::process::id());
        let old = SharedMemory::create_named(&name, 16).unwrap();
        old.write_at(0, b"velho").unwrap();
        old.unlink().unwrap();
        let new = SharedMemory::create_named(&name, 32).unwrap();
        let attached = SharedMemory::attach(&name).unwrap();
        assert_eq!(attached.size(), 32);
        assert_eq!(attached.as_ptr(), new.as_ptr());
        assert_ne!(attached.as_ptr(), old.as_ptr());
        assert_eq!(attached.read(0..5).unwrap(), [0; 5]);
        new.unlink().unwrap();
    }
}
