//! Processes: [`Process`] and everything a child's life needs, one file per concern. Python:
//! `multiprocessing.process` and the `popen_*` modules.
//!
//! - [`start_method`]: the [`StartMethod`] type and the program-wide default (a leaf).
//! - [`handle`]: the [`Process`] handle: start, join, poll, signals.
//! - [`target`]: what a child runs ([`Target`]) and how it crosses to the child.
//! - One file per start method, each a `start_child` that returns the child's PID and pidfds
//!   ([`registry::Started`]): [`fork`], [`spawn`] and [`forkserver`]. Once started, a child
//!   is polled, waited for and signalled the same way whichever method started it: by its
//!   pidfds, and by its record in the [`registry`], whose [`registry::CollectExit`] collects
//!   the end of a child that is not our own (CPython's `popen_fork`, `popen_spawn_posix` and
//!   `popen_forkserver` share `poll`/`wait`/`terminate` the same way).
//! - [`payload`]: the spawn payload, both halves (the parent's sealing, the child's checks),
//!   which a forkserved child checks too, and the linker section of spawn entry points.
//! - [`exec`]: the one `exec` of the program's own image, with its single `pre_exec`.
//! - [`entry`]: the child's entry dispatch ([`run_if_spawned_child`]).
//! - [`registry`]: this process's children and who it is.
//!
//! Inside this module no file imports another through this one (a file names its sibling),
//! and the arrows run one way: see `.ci/import_graph.py`.

pub(crate) mod entry;
pub(crate) mod error;
pub(crate) mod exec;
pub(crate) mod fork;
pub(crate) mod forkserver;
pub(crate) mod handle;
pub(crate) mod payload;
pub(crate) mod registry;
pub(crate) mod spawn;
pub(crate) mod start_method;
pub(crate) mod target;

pub use entry::run_if_spawned_child;
pub use error::ProcessError;
pub use handle::Process;
pub use payload::TOKEN_VARIABLE;
pub use start_method::{ParseStartMethodError, StartMethod, get_start_method, set_start_method};
pub use target::{Target, TargetOutput};
