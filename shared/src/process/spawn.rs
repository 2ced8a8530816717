//! The spawn start method, the parent's side: seal the payload, `exec` the program with it,
//! and record the child. The child's side (checking the payload) is in [`super::payload`].

use super::exec::{Exec, exec_self};
use super::payload::{self, MARKER, Outgoing, Sealed, TOKEN_BYTES, TOKEN_VARIABLE};
use super::registry::{self, ChildIdentity, ChildRecord, Started};
use crate::sys;

/// Starts a spawned child that runs `outgoing`; returns its PID and two pidfds of it.
///
/// # Errors
/// The system refused the payload's memory, the token, or the process.
pub(crate) fn start_child(outgoing: Outgoing, me: ChildIdentity) -> std::io::Result<Started> {
    let token = sys::random_bytes::<TOKEN_BYTES>()?;
    let Sealed {
        payload,
        fds,
        tampered,
        lifted,
    } = payload::seal_payload(outgoing, &me, &token)?;
    let payload_fd = sys::fd::raw(&payload);
    let mut keep = fds;
    keep.push(payload_fd);
    let exec = Exec {
        fallback_name: "child",
        args: vec![MARKER.to_owned(), payload_fd.to_string()],
        token: (TOKEN_VARIABLE, payload::hex(&token)),
        keep,
        // A test expects the refusal: its exit code says what the test needs, and the
        // message would only look like a failure in a green run.
        quiet: tampered,
    };
    let mut children = registry::children();
    let pid = exec_self(exec)?.id();
    drop((payload, lifted));
    // Watched before it is recorded: until then no `active_children` can reap it.
    let started = registry::watch_own_child(pid)?;
    children.push(ChildRecord::new(pid, &me));
    Ok(started)
}
