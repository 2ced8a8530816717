//! The entry call that makes a spawned child run only its target: [`init`].

use std::fmt;

#[cfg(doc)]
use crate::TOKEN_VARIABLE;
use crate::process::run_if_spawned_child;
#[cfg(doc)]
use crate::process::set_start_method;

/// The entry call, first thing in `main`: the Rust counterpart of Python's
/// `if __name__ == '__main__':`.
///
/// Under the spawn and forkserver start methods a child is a fresh run of the same program.
/// When `init` sees that it is such a child, it runs the target it was sent and ends the
/// process there, so the rest of `main` runs only in the main process. Without this call a
/// spawned child would run `main` from the top, like a Python script without the guard
/// re-running its module body. In the main process it returns at once.
///
/// `init` reads nothing the program owns: its command line, arguments such as
/// `input.txt --verbose -h`, stay the program's. Choose the start method with
/// [`set_start_method`], and record a timeline with [`record_timeline`](crate::record_timeline).
/// (The lessons call [`lesson::init`](crate::lesson::init), which is this guard followed by
/// the course's options.)
///
/// `init` obeys only a parent's own spawn: a command line that asks for a spawned child
/// without the payload and token its parent would have sent (see [`TOKEN_VARIABLE`]) ends the
/// program at once with a message on stderr and exit code 2, before `main` runs on.
///
/// ```
/// fn main() -> Result<(), Box<dyn std::error::Error>> {
///     shared::init()?;
///     // ... the program, which may start processes under any start method
///     Ok(())
/// }
/// ```
///
/// With the feature `mpi`, in a program started by `mpirun` or `srun`, `init` also starts
/// MPI: every rank but 0 becomes a worker of the MPI pool (`MpiPool`) and ends the process
/// there, when rank 0 ends; rank 0 returns and runs `main` (see the module `shared::mpi`).
///
/// # Errors
/// [`InitError::NotMainThread`] when called on a thread other than the main one: a spawned
/// child would then run `main` up to the thread's start before it got its target. (A bad
/// spawned-child command line is not returned: it ends the process, as said above.) With the
/// feature `mpi`, [`InitError::Mpi`] if MPI could not be started as the pool needs it.
pub fn init() -> Result<(), InitError> {
    if crate::sys::thread::current_id() != std::process::id() {
        return Err(InitError::NotMainThread);
    }
    run_if_spawned_child();
    #[cfg(feature = "mpi")]
    crate::mpi::start_if_launched().map_err(InitError::Mpi)?;
    Ok(())
}

/// Why [`init`] refused.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum InitError {
    /// `init` was called on a thread other than the program's main thread.
    NotMainThread,
    /// The program runs under an MPI launcher, but MPI could not be started as the MPI pool
    /// (`MpiPool`) needs it; the message says why. Returned only with the feature `mpi`.
    Mpi(String),
}

impl fmt::Display for InitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            InitError::NotMainThread => f.write_str(
                "shared::init() must be called on the main thread, first thing in main: a \
                 spawned child runs main until it reaches init",
            ),
            InitError::Mpi(why) => write!(f, "cannot start MPI: {why}"),
        }
    }
}

impl std::error::Error for InitError {}

crate::debug_as_display!(InitError);

/// Makes a test binary (whose `main` belongs to the test harness) able to run spawned
/// children: it runs the spawned-child half of [`init`] before `main`, from `.init_array`.
/// Put `shared::enable_test_support!();` at the top level of an integration test file.
#[macro_export]
macro_rules! enable_test_support {
    () => {
        #[used]
        #[unsafe(link_section = ".init_array")]
        static __SHARED_RUN_IF_SPAWNED_CHILD: extern "C" fn() = {
            extern "C" fn run_if_spawned_child() {
                $crate::__private::run_if_spawned_child();
            }
            run_if_spawned_child
        };
    };
}
