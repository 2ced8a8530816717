//! The entry call that makes a spawned child run only its target: [`init`].

#[cfg(doc)]
use crate::TOKEN_VARIABLE;
use crate::cli::InitError;
#[cfg(doc)]
use crate::process::{run_if_spawned_child, set_start_method};

/// The entry call, first thing in `main`: the Rust counterpart of Python's
/// `if __name__ == '__main__':`.
///
/// Under the spawn start method a child is a fresh run of the same program. When `init` sees
/// that it is such a child, it runs the target it was sent and ends the process there, so the
/// rest of `main` runs only in the main process. Without this call a spawned child would run
/// `main` from the top, like a Python script without the guard re-running its module body.
///
/// `init` obeys only a parent's own spawn: a command line that asks for a spawned child
/// without the payload and token its parent would have sent (see [`TOKEN_VARIABLE`]) ends the
/// program at once with a message on stderr and exit code 2, before `main` runs on.
///
/// In the main process, `init` reads the command line with [`parse_args`](crate::parse_args):
/// `--start-method fork|spawn|forkserver` sets the start method ([`set_start_method`]);
/// `--timeline` records what every process of the run does and draws it on stderr when
/// `main` returns (`--timeline=FILE.json` writes it for Perfetto instead; see the crate's
/// [timeline section](crate#timeline)); `-h`/`--help`
/// prints a usage in Portuguese and exits with code 0; anything else prints what was wrong
/// and the accepted options on stderr and exits with code 2, as Python's `argparse` does, so
/// that a learner never runs the lesson believing an option was taken. Under `cargo run`, the
/// usage says what the program shows: its package's `description`.
///
/// `init` owns the command line. A program with arguments of its own calls
/// [`run_if_spawned_child`] first thing instead (the same guard, without the options).
///
/// # Errors
/// None today: `init` reports a bad command line itself, with exit code 2. The `Result`
/// keeps `shared::init()?` the one line a program needs as start-up grows (Python 3.14's
/// forkserver start method needs a server started here).
pub fn init() -> Result<(), InitError> {
    crate::cli::init_with(&[]).map(drop)
}

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
