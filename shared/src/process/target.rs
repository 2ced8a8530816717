//! What a child runs: a [`Target`] (a function and its arguments), and how it crosses to a
//! child under each start method (moved by fork, sent as a spawn payload).

use std::fmt;
use std::os::fd::OwnedFd;
use std::panic::{AssertUnwindSafe, catch_unwind};

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::error::ProcessError;
use super::payload::{self, Relaunch};
use crate::timeline;

/// A target bound to its arguments, waiting to run in a child.
pub(crate) trait Launch: Send {
    /// Runs the target in this process (the forked child); returns the exit code.
    fn run_here(self: Box<Self>) -> i32;
    /// What a spawned child needs to run the same target: its entry point and the serialized
    /// arguments, with the descriptors of the handles among them.
    fn for_spawn(&self) -> Result<payload::Outgoing, ProcessError>;
}

/// A target and its arguments, as [`Process::new`](crate::Process::new) binds them.
pub(crate) struct Bound<F, A> {
    pub(crate) target: F,
    pub(crate) args: A,
}

impl<F, A> Launch for Bound<F, A>
where
    F: Target<A>,
    A: Serialize + DeserializeOwned + Send + 'static,
{
    fn run_here(self: Box<Self>) -> i32 {
        let Bound { target, args } = *self;
        timeline::target_started::<F>();
        run_guarded(target, args)
    }

    fn for_spawn(&self) -> Result<payload::Outgoing, ProcessError> {
        // The spawned child recreates the target from its type alone: only a function item
        // has a value that can be made that way (see `payload::recreate`).
        if !payload::can_recreate::<F, A>() {
            return Err(ProcessError::SpawnNeedsFunction);
        }
        let entry = payload::entry_offset(payload::entry::<Self>)
            .ok_or(ProcessError::SpawnOutsideExecutable)?;
        let (args, fds) = crate::handoff::exporting(|| rmp_serde::to_vec(&self.args));
        let args = args.map_err(|error| ProcessError::Arguments(error.to_string()))?;
        Ok(payload::Outgoing { entry, args, fds })
    }
}

impl<F, A> Relaunch for Bound<F, A>
where
    F: Target<A>,
    A: Serialize + DeserializeOwned + Send + 'static,
{
    fn relaunch(bytes: &[u8], fds: Vec<OwnedFd>) -> i32 {
        let args: A = match crate::handoff::importing(fds, || crate::wire::decode(bytes)) {
            Ok(args) => args,
            Err(error) => {
                eprintln!("shared: the spawned child cannot decode its arguments: {error}");
                return 1;
            }
        };
        let Some(target) = payload::recreate::<F, A>() else {
            eprintln!("shared: the spawned child cannot recreate its target");
            return 1;
        };
        timeline::target_started::<F>();
        run_guarded(target, args)
    }
}

/// Runs the target; a panic becomes exit code 1 (its message is already on stderr).
pub(crate) fn run_guarded<F: Target<A>, A>(target: F, args: A) -> i32 {
    catch_unwind(AssertUnwindSafe(|| target.run(args))).unwrap_or(1)
}

/// A function a [`Process`](crate::Process) (or a [`Thread`](crate::Thread)) can run with arguments of tuple
/// type `A`: any `FnOnce` of up to six arguments that returns `()` or `Result<(), E>`. Under spawn it must be a function defined
/// with `fn` (a spawned child recreates it from its type; a closure, even one that captures
/// nothing, could stand for state the child does not have); under fork any closure works.
///
/// It is implemented for functions and closures only: a type of your own cannot implement it,
/// so a spawned child, which makes its target's value from the type alone, never makes a
/// value of a type that has data or meaning (a unit struct):
///
/// ```compile_fail
/// struct Unit;
/// impl shared::Target<()> for Unit {
///     fn run(self, _: ()) -> i32 {
///         0
///     }
/// }
/// ```
pub trait Target<A>: Send + 'static + payload::Callable<A> {
    /// Calls the target with the unpacked arguments; returns the exit code.
    #[doc(hidden)]
    fn run(self, args: A) -> i32;
}

/// What a target may return: `()` (exit code 0) or `Result<(), E>` (an `Err` is printed to
/// stderr as `Error: {e:?}`, like an error returned from `main`, and gives exit code 1).
pub trait TargetOutput {
    /// The exit code this value stands for.
    #[doc(hidden)]
    fn exit_code(self) -> i32;
}

impl TargetOutput for () {
    fn exit_code(self) -> i32 {
        0
    }
}

impl<E: fmt::Debug> TargetOutput for Result<(), E> {
    fn exit_code(self) -> i32 {
        match self {
            Ok(()) => 0,
            Err(error) => {
                eprintln!("Error: {error:?}");
                1
            }
        }
    }
}

macro_rules! impl_target {
    ($($arg:ident),*) => {
        impl<F, R, $($arg,)*> Target<($($arg,)*)> for F
        where
            F: FnOnce($($arg),*) -> R + Send + 'static,
            R: TargetOutput,
        {
            #[allow(non_snake_case)]
            fn run(self, ($($arg,)*): ($($arg,)*)) -> i32 {
                self($($arg),*).exit_code()
            }
        }
    };
}

crate::for_each_arity!(impl_target);
