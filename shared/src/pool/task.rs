//! What a pool runs: the [`Task`] and [`TaskResult`] traits, and the entry points through
//! which a worker, which may be a spawned copy of the program, calls a task it was sent.
//!
//! A worker receives a task as an offset into the linker section `shared_pool_entries`, which
//! holds only instances of [`entry`] and [`entry_single`] (one per task type) and
//! [`section_floor`]. An order is
//! obeyed only if its offset carries a valid [`seal`]: an HMAC keyed with its pool's token, a
//! random secret that the worker received when it started (through fork memory or the spawn
//! payload, itself authenticated) and that never crosses a queue.

use std::any::Any;
use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};
use std::fmt;
use std::hash::Hash;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicBool, Ordering};

use hmac::{Hmac, Mac};
use serde::Serialize;
use serde::de::DeserializeOwned;
use sha2::Sha256;

use crate::{spawn, sys};

/// A function a [`Pool`](crate::Pool) can run on arguments of tuple type `Args`: any function
/// defined with `fn` of up to six arguments, whose result is a [`TaskResult`]. It must be a
/// function item (not a closure, nor a function pointer) under every start method, since a
/// worker finds it from its type alone; Python likewise sends a pool only module-level
/// functions, which pickle by name.
///
/// A type of your own cannot implement it (a worker makes the task's value from its type
/// alone, which must never make a unit struct):
///
/// ```compile_fail
/// #[derive(Clone, Copy)]
/// struct Unit;
/// impl shared::Task<()> for Unit {
///     type Output = ();
///     fn call(self, _: ()) {}
/// }
/// ```
pub trait Task<Args>: Copy + Send + Sync + 'static + spawn::Callable<Args> {
    /// What the function returns.
    type Output: TaskResult;
    /// Calls the function with the unpacked arguments.
    #[doc(hidden)]
    fn call(self, args: Args) -> Self::Output;
}

macro_rules! impl_task {
    ($($arg:ident),*) => {
        impl<F, R, $($arg,)*> Task<($($arg,)*)> for F
        where
            F: Fn($($arg),*) -> R + Copy + Send + Sync + 'static,
            R: TaskResult,
        {
            type Output = R;
            #[allow(non_snake_case)]
            fn call(self, ($($arg,)*): ($($arg,)*)) -> R {
                self($($arg),*)
            }
        }
    };
}

crate::for_each_arity!(impl_task);

/// What a pool task may return: a plain value, which the caller gets, or a `Result`, whose
/// `Err` reaches the caller as [`PoolError::Task`](crate::PoolError::Task) with the error's
/// message, as an exception raised in a Python task is raised again by `get()`.
///
/// Implemented for `Result<T, E>` (any serializable `T`, any `E: Display`), the primitive
/// types, `String`, `Option`, `Box`, `Vec`, `VecDeque`, the std maps and sets, tuples of up
/// to eight, and `serde_bytes::ByteBuf`. For a type of your own, either return
/// `Result<MyType, std::convert::Infallible>` or implement it in one line with
/// [`task_result!`](crate::task_result).
pub trait TaskResult {
    /// The value the caller receives.
    type Value: Serialize + DeserializeOwned + Send + 'static;
    /// The value, or the message of the error.
    fn into_result(self) -> Result<Self::Value, String>;
}

impl<T, E> TaskResult for Result<T, E>
where
    T: Serialize + DeserializeOwned + Send + 'static,
    E: fmt::Display,
{
    type Value = T;
    fn into_result(self) -> Result<T, String> {
        self.map_err(|error| error.to_string())
    }
}

/// Implements [`TaskResult`] for types that a pool task returns as plain values.
///
/// ```
/// #[derive(serde::Serialize, serde::Deserialize)]
/// struct Ponto {
///     x: i32,
///     y: i32,
/// }
/// shared::task_result!(Ponto);
/// ```
#[macro_export]
macro_rules! task_result {
    ($($ty:ty),+ $(,)?) => {
        $(
            impl $crate::TaskResult for $ty {
                type Value = $ty;
                fn into_result(self) -> ::std::result::Result<$ty, ::std::string::String> {
                    ::std::result::Result::Ok(self)
                }
            }
        )+
    };
}

task_result!(
    (),
    bool,
    char,
    u8,
    u16,
    u32,
    u64,
    u128,
    usize,
    i8,
    i16,
    i32,
    i64,
    i128,
    isize,
    f32,
    f64,
    String,
    serde_bytes::ByteBuf,
);

macro_rules! impl_plain_generic {
    ($($ty:ident < $($param:ident),+ >),+ $(,)?) => {
        $(
            impl<$($param),+> TaskResult for $ty<$($param),+>
            where
                $ty<$($param),+>: Serialize + DeserializeOwned + Send + 'static,
            {
                type Value = Self;
                fn into_result(self) -> Result<Self, String> {
                    Ok(self)
                }
            }
        )+
    };
}

impl_plain_generic!(Option<T>, Box<T>, Vec<T>, VecDeque<T>, BTreeSet<T>, BTreeMap<K, V>);

impl<T: Eq + Hash, S> TaskResult for HashSet<T, S>
where
    HashSet<T, S>: Serialize + DeserializeOwned + Send + 'static,
{
    type Value = Self;
    fn into_result(self) -> Result<Self, String> {
        Ok(self)
    }
}

impl<K: Eq + Hash, V, S> TaskResult for HashMap<K, V, S>
where
    HashMap<K, V, S>: Serialize + DeserializeOwned + Send + 'static,
{
    type Value = Self;
    fn into_result(self) -> Result<Self, String> {
        Ok(self)
    }
}

macro_rules! impl_plain_tuple {
    ($($param:ident),+) => {
        impl<$($param),+> TaskResult for ($($param,)+)
        where
            ($($param,)+): Serialize + DeserializeOwned + Send + 'static,
        {
            type Value = Self;
            fn into_result(self) -> Result<Self, String> {
                Ok(self)
            }
        }
    };
}

impl_plain_tuple!(T1);
impl_plain_tuple!(T1, T2);
impl_plain_tuple!(T1, T2, T3);
impl_plain_tuple!(T1, T2, T3, T4);
impl_plain_tuple!(T1, T2, T3, T4, T5);
impl_plain_tuple!(T1, T2, T3, T4, T5, T6);
impl_plain_tuple!(T1, T2, T3, T4, T5, T6, T7);
impl_plain_tuple!(T1, T2, T3, T4, T5, T6, T7, T8);

/// What running one chunk gives: its items' results, encoded as [`ChunkResults`], or why the
/// chunk as a whole has none.
pub(crate) type ChunkOutcome = Result<Vec<u8>, ChunkError>;

/// Why a chunk as a whole has no results.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub(crate) enum ChunkError {
    /// The worker refused to run it (an order it cannot trust or understand): the pool
    /// cannot go on.
    Refused(String),
    /// It ran, but its results could not be encoded (a `Serialize` impl that fails): that
    /// call fails, the pool goes on. Python: `MaybeEncodingError`.
    Encoding(String),
}

impl From<String> for ChunkError {
    fn from(message: String) -> Self {
        ChunkError::Refused(message)
    }
}

impl From<&str> for ChunkError {
    fn from(message: &str) -> Self {
        ChunkError::Refused(message.to_owned())
    }
}

/// The signature of every pool entry point: run the chunk whose arguments `args` encodes.
pub(crate) type EntryFn = fn(&[u8]) -> ChunkOutcome;

/// What a chunk's items gave, as sent back: every value when none failed (the common case,
/// with no per-item wrapping), or each item's result.
#[derive(serde::Serialize, serde::Deserialize)]
pub(crate) enum ChunkResults<V> {
    All(Vec<V>),
    Each(Vec<Result<V, String>>),
}

/// The entry point that runs a chunk of calls to `F`, each on a tuple of arguments (`apply`,
/// `starmap`). Every instance of this function and of [`entry_single`], and nothing else but
/// [`section_floor`], lives in the linker section `shared_pool_entries`.
#[unsafe(link_section = "shared_pool_entries")]
#[inline(never)]
pub(crate) fn entry<F, Args>(args: &[u8]) -> ChunkOutcome
where
    F: Task<Args>,
    Args: DeserializeOwned,
{
    let function = recreate::<F, Args>()?;
    let chunk: Vec<Args> = decode_args(args)?;
    run_chunk(chunk.into_iter().map(|args| move || function.call(args)))
}

/// The entry point that runs a chunk of calls to a one-argument `F`, each on one item (`map`,
/// `imap`): the items cross without a 1-tuple around each.
#[unsafe(link_section = "shared_pool_entries")]
#[inline(never)]
pub(crate) fn entry_single<F, A>(args: &[u8]) -> ChunkOutcome
where
    F: Task<(A,)>,
    A: DeserializeOwned,
{
    let function = recreate::<F, (A,)>()?;
    let chunk: Vec<A> = decode_args(args)?;
    run_chunk(chunk.into_iter().map(|item| move || function.call((item,))))
}

fn recreate<F: Task<Args>, Args>() -> Result<F, ChunkError> {
    spawn::recreate::<F, Args>()
        .ok_or_else(|| "the worker cannot recreate the task's function".into())
}

fn decode_args<T: DeserializeOwned>(args: &[u8]) -> Result<T, ChunkError> {
    crate::wire::decode(args).map_err(|error| {
        ChunkError::Refused(format!(
            "the worker cannot decode the task's arguments: {error}"
        ))
    })
}

/// Runs each call, catching panics, and encodes the results.
fn run_chunk<R: TaskResult>(calls: impl Iterator<Item = impl FnOnce() -> R>) -> ChunkOutcome {
    let mut calls = calls.peekable();
    let mut values = Vec::with_capacity(calls.size_hint().0);
    // While every call succeeds, keep bare values; at the first failure, switch to results.
    let encoded = loop {
        let Some(call) = calls.next() else {
            break rmp_serde::to_vec(&ChunkResults::All(values));
        };
        match run_caught(|| call().into_result()) {
            Ok(value) => values.push(value),
            Err(message) => {
                let mut results: Vec<Result<R::Value, String>> =
                    values.into_iter().map(Ok).collect();
                results.push(Err(message));
                results.extend(calls.map(|call| run_caught(|| call().into_result())));
                break rmp_serde::to_vec(&ChunkResults::Each(results));
            }
        }
    };
    encoded.map_err(|error| ChunkError::Encoding(error.to_string()))
}

sys::section::entry_section! {
    /// This image's pool entries.
    fn section() in "shared_pool_entries";
    /// Keeps the section non-empty in a program that never instantiates [`entry`]; refuses
    /// to run.
    fn section_floor(_args: &[u8]) -> ChunkOutcome {
        Err("this entry runs no task".into())
    }
}

/// Where the entry of `F` on tuples of arguments ([`entry`]) lies in this executable's pool
/// entries, or `None` if `F` cannot be sent to a worker: it is not a function item, or its
/// entry lies outside the executable.
pub(crate) fn entry_offset<F, Args>(_function: F) -> Option<u64>
where
    F: Task<Args>,
    Args: DeserializeOwned,
{
    offset_of::<F, Args>(entry::<F, Args>)
}

/// Like [`entry_offset`], for the entry of a one-argument `F` on single items
/// ([`entry_single`]).
pub(crate) fn single_entry_offset<F, A>(_function: F) -> Option<u64>
where
    F: Task<(A,)>,
    A: DeserializeOwned,
{
    offset_of::<F, (A,)>(entry_single::<F, A>)
}

fn offset_of<F: spawn::Callable<Args>, Args>(entry: EntryFn) -> Option<u64> {
    if !spawn::can_recreate::<F, Args>() {
        return None;
    }
    section().offset_of(entry as usize)
}

/// The entry an authentic order names, if its offset lies inside this image's pool entries.
pub(crate) fn entry_at(authentic: AuthenticEntry) -> Option<EntryFn> {
    let AuthenticEntry(offset) = authentic;
    let address = section().entry_start(offset)?;
    // SAFETY: `address` lies inside this executable's `shared_pool_entries` section, which
    // holds only instances of `entry` and `entry_single` (all of type `EntryFn`) and
    // `section_floor`. It is the start of one of them because the offset is authentic (the
    // `AuthenticEntry` proof): it came with an HMAC-SHA256 of itself keyed by the pool's 128-bit random token, and only
    // the pool makes such seals, in `State::add_chunks`, for offsets it computed with
    // `entry_offset` in this same executable (a worker is a fork of the pool's process or an
    // `exec` of `/proc/self/exe` from it). The token lives only in the private memory of the
    // pool and its workers: orders carry the seal, never the token, so a process that reads
    // or writes the queue's shared memory can replay a seal (naming a true entry) but not
    // make one for another offset. Even if that failed, `entry_start` only gives an address
    // inside the section at which a function starts: every other offset is refused.
    Some(unsafe { std::mem::transmute::<usize, EntryFn>(address) })
}

/// The secret of a pool, known to the pool and its workers only: the key of its seals.
pub(crate) type Token = [u8; 16];

/// What an order carries to show that the pool named its entry offset: [`seal`].
pub(crate) type Seal = [u8; 16];

/// Binds a seal to what it seals, so that no other use of the token can make one.
const SEAL_CONTEXT: &[u8] = b"shared::Pool entry offset";

fn seal_mac(token: &Token, entry: u64) -> Hmac<Sha256> {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(token).expect("HMAC takes any key");
    mac.update(SEAL_CONTEXT);
    mac.update(&entry.to_le_bytes());
    mac
}

/// The seal of entry offset `entry` for the pool whose token is `token`: the first 128 bits
/// of HMAC-SHA256(token, context, entry).
pub(crate) fn seal(token: &Token, entry: u64) -> Seal {
    let tag = seal_mac(token, entry).finalize().into_bytes();
    let mut seal = [0; 16];
    seal.copy_from_slice(&tag[..16]);
    seal
}

/// An entry offset whose seal was checked: made only by [`AuthenticEntry::check`].
pub(crate) struct AuthenticEntry(u64);

/// The last offset whose seal checked out in this worker, so that a run of orders for one task
/// costs one HMAC, not one per order. Equal bytes verify alike, so skipping the check for a
/// pair already verified is the same check; comparing with it need not be constant-time, as
/// the remembered seal is one that crossed the queue.
#[derive(Default)]
pub(crate) struct SealCache(Option<(u64, Seal)>);

impl AuthenticEntry {
    /// Like [`check`](Self::check), skipping the HMAC for the pair `cache` last verified.
    pub(crate) fn check_remembering(
        entry: u64,
        presented: &Seal,
        token: &Token,
        cache: &mut SealCache,
    ) -> Option<AuthenticEntry> {
        if cache.0 == Some((entry, *presented)) {
            return Some(AuthenticEntry(entry));
        }
        let checked = AuthenticEntry::check(entry, presented, token)?;
        cache.0 = Some((entry, *presented));
        Some(checked)
    }

    /// `entry`, if `presented` is its seal under `token` (compared in constant time).
    pub(crate) fn check(entry: u64, presented: &Seal, token: &Token) -> Option<AuthenticEntry> {
        seal_mac(token, entry)
            .verify_truncated_left(presented)
            .ok()
            .map(|()| AuthenticEntry(entry))
    }
}

thread_local! {
    /// Where the worker's panic hook leaves the message of the panic being caught.
    static PANIC_MESSAGE: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// Set in a pool worker before its first chunk: the panic hook then keeps a task's panic for
/// its caller instead of printing it.
static IN_WORKER: AtomicBool = AtomicBool::new(false);

/// Whether this process's panic hook is the pool's. A forked worker inherits `true`.
static HOOK_INSTALLED: AtomicBool = AtomicBool::new(false);

/// Installs, once per process, the pool's panic hook: in a worker, a task's panic is reported
/// to the caller (with its location), not printed, as a Python worker sends back a task's
/// exception; anywhere else the hook it replaced runs, so a program's own hook keeps working.
///
/// The parent calls this when it builds a pool, before any worker exists, so that a forked
/// worker never sets a hook itself: std keeps the hook behind a lock that `fork` copies as it
/// is, and a worker forked while another thread of the parent was inside its panic hook would
/// wait for ever to replace it. A spawned worker (a new program, one thread) installs it here.
/// A program that sets its own hook after building a pool replaces this one: its workers' task
/// panics are then printed by that hook, and still reported, without their location.
pub(crate) fn install_panic_hook_once() {
    if HOOK_INSTALLED.swap(true, Ordering::AcqRel) {
        return;
    }
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if !IN_WORKER.load(Ordering::Acquire) {
            return previous(info);
        }
        let location = info
            .location()
            .map(|l| format!(" at {}:{}:{}", l.file(), l.line(), l.column()))
            .unwrap_or_default();
        let message = format!("panicked{location}: {}", payload_text(info.payload()));
        PANIC_MESSAGE.with(|slot| *slot.borrow_mut() = Some(message));
    }));
}

/// Makes this process a pool worker: its tasks' panics go to their callers from now on.
pub(crate) fn become_worker() {
    install_panic_hook_once();
    IN_WORKER.store(true, Ordering::Release);
}

/// Runs `call`, turning a panic into an error carrying its message.
pub(crate) fn run_caught<V>(call: impl FnOnce() -> Result<V, String>) -> Result<V, String> {
    catch_unwind(AssertUnwindSafe(call)).unwrap_or_else(|payload| {
        let message = PANIC_MESSAGE
            .with(|slot| slot.borrow_mut().take())
            .unwrap_or_else(|| format!("panicked: {}", payload_text(payload.as_ref())));
        Err(message)
    })
}

fn payload_text(payload: &(dyn Any + Send)) -> &str {
    payload
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("Box<dyn Any>")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn double(x: i32) -> i32 {
        x * 2
    }

    fn fallible(x: i32) -> Result<i32, String> {
        if x < 0 {
            Err(format!("{x} < 0"))
        } else {
            Ok(x)
        }
    }

    #[test]
    fn an_entry_runs_a_chunk_and_lies_in_the_section() {
        let offset = entry_offset::<_, (i32,)>(double).expect("a function item has an entry");
        let token = [7; 16];
        let proof = AuthenticEntry::check(offset, &seal(&token, offset), &token).expect("sealed");
        let run = entry_at(proof).expect("the offset lies in the section");
        let args = rmp_serde::to_vec(&vec![(1,), (2,)]).unwrap();
        let results = decoded::<i32>(&run(&args).unwrap());
        assert_eq!(results, [Ok(2), Ok(4)]);
        let offset = single_entry_offset::<_, i32>(double).expect("an entry for single items");
        let mut cache = SealCache::default();
        let sealed = seal(&token, offset);
        let proof = AuthenticEntry::check_remembering(offset, &sealed, &token, &mut cache);
        let run = entry_at(proof.expect("sealed")).expect("the offset lies in the section");
        let args = rmp_serde::to_vec(&vec![3, 4]).unwrap();
        assert_eq!(decoded::<i32>(&run(&args).unwrap()), [Ok(6), Ok(8)]);
    }

    fn decoded<V: DeserializeOwned>(bytes: &[u8]) -> Vec<Result<V, String>> {
        match crate::wire::decode(bytes).unwrap() {
            ChunkResults::All(values) => values.into_iter().map(Ok).collect(),
            ChunkResults::Each(results) => results,
        }
    }

    fn entry_of<F: Task<A>, A: DeserializeOwned>(_: F) -> EntryFn {
        entry::<F, A>
    }

    #[test]
    fn errors_become_messages() {
        let args = rmp_serde::to_vec(&vec![(1,), (-1,)]).unwrap();
        let results = decoded::<i32>(&entry_of(fallible)(&args).unwrap());
        assert_eq!(results, [Ok(1), Err("-1 < 0".to_owned())]);
    }

    #[test]
    fn offsets_outside_the_section_and_wrong_tokens_are_refused() {
        let token = [1; 16];
        let offset = entry_offset::<_, (i32,)>(double).unwrap();
        assert!(AuthenticEntry::check(offset, &seal(&[2; 16], offset), &token).is_none());
        let outside = section().len();
        let proof = AuthenticEntry::check(outside, &seal(&token, outside), &token).unwrap();
        assert!(entry_at(proof).is_none());
        let proof = AuthenticEntry::check(u64::MAX, &seal(&token, u64::MAX), &token).unwrap();
        assert!(entry_at(proof).is_none());
        // Inside the section, sealed, but one byte into an entry: not an entry's start.
        let inside = offset + 1;
        let proof = AuthenticEntry::check(inside, &seal(&token, inside), &token).unwrap();
        assert!(entry_at(proof).is_none());
    }

    #[test]
    fn a_seal_names_one_offset_and_an_order_does_not_carry_the_token() {
        // What another process can read in an order queue: the offset, its seal, the args.
        let token = [9; 16];
        let offset = entry_offset::<_, (i32,)>(double).unwrap();
        let order = super::super::worker::Run {
            job: 0,
            chunk: 0,
            entry: offset,
            seal: seal(&token, offset),
            args: Vec::new(),
        };
        let bytes = rmp_serde::to_vec(&order).unwrap();
        assert!(!bytes.windows(token.len()).any(|window| window == token));
        // Moving a sealed order into the middle of an entry fails its seal.
        for forged in [offset + 1, offset + 16, offset.wrapping_sub(1)] {
            assert!(AuthenticEntry::check(forged, &order.seal, &token).is_none());
        }
        let mut truncated = order.seal;
        truncated[15] ^= 1;
        assert!(AuthenticEntry::check(offset, &truncated, &token).is_none());
        // A remembered seal vouches only for the same offset and the same bytes.
        let mut cache = SealCache::default();
        assert!(
            AuthenticEntry::check_remembering(offset, &order.seal, &token, &mut cache).is_some()
        );
        assert!(
            AuthenticEntry::check_remembering(offset, &truncated, &token, &mut cache).is_none()
        );
        let moved = offset + 1;
        assert!(
            AuthenticEntry::check_remembering(moved, &order.seal, &token, &mut cache).is_none()
        );
        assert!(
            AuthenticEntry::check_remembering(offset, &order.seal, &token, &mut cache).is_some()
        );
    }

    #[test]
    fn closures_have_no_entry() {
        let closure = |x: i32| x;
        assert!(entry_offset::<_, (i32,)>(closure).is_none());
    }
}
