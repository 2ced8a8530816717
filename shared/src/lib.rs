//! Python's `multiprocessing` for Rust: [`Process`], [`Queue`], [`JoinableQueue`] and
//! [`Pipe`]/[`Connection`] across real OS processes, with the fork and spawn start methods.
//! Items cross as MessagePack (serde + rmp-serde). Linux only.

/// `Debug` for an error type prints its message: an error returned from `main` is shown with
/// `Debug`, and a learner should read `Error: cannot start a process twice`, not a struct dump.
macro_rules! debug_as_display {
    ($type:ident $(<$param:ident>)?) => {
        impl$(<$param>)? std::fmt::Debug for $type$(<$param>)? {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                std::fmt::Display::fmt(self, f)
            }
        }
    };
}
pub(crate) use debug_as_display;

mod handoff;
mod pipe;
mod process;
mod queue;
mod runtime;
mod start;
mod sys;

pub use pipe::{Connection, DEFAULT_MAX_MESSAGE_SIZE, Pipe, RecvError, SendError};
pub use process::{Process, ProcessError, Target, TargetOutput};
pub use queue::{GetError, JoinableQueue, PutError, Queue, TaskDoneError};
pub use start::{
    InitError, StartMethod, get_start_method, init, set_start_method, start_method_from_args,
};

#[doc(hidden)]
pub mod __private {
    pub use crate::start::run_if_spawned_child;
}
