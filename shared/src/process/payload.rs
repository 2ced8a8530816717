//! The spawn start method, both halves of it: what a parent sends to a spawned child, and how
//! the child checks it before it runs anything.
//!
//! # What crosses
//!
//! A spawned child is a fresh `exec` of the parent's own executable (`/proc/self/exe`) with the
//! command line `PROGRAM --shared-spawned-child FD`. Descriptor `FD` is a *payload*: a memfd
//! that the parent wrote and then sealed (no holder can write, shrink or grow it any more). It
//! holds a format magic and version, a per-launch random token, and, as MessagePack, the
//! target's entry point, its serialized arguments, and the descriptors of the handles among
//! them (queues, pipe ends), which the parent marked inheritable for this one `exec`.
//!
//! # What the child checks, and why
//!
//! Every program that calls [`init`](crate::init) obeys that command line, so the command
//! line, the standard streams and any file are input an attacker may choose. The child runs
//! the target only if all of these hold, and otherwise prints why on stderr and exits with
//! status 2 before `main` prints anything:
//!
//! - the environment variable [`TOKEN_VARIABLE`] holds a token, and the payload carries the
//!   same one. The parent draws a new token from the kernel's random source for every launch
//!   and sets the variable only in that child's environment. The environment is the trust
//!   boundary: whoever sets a process's environment already chooses the code it runs
//!   (`LD_PRELOAD`), while a command line or a file alone can no longer start a child;
//! - the payload descriptor is above the standard streams, is a memfd carrying all four
//!   seals, and holds the magic, this version and at most [`MAX_PAYLOAD`] bytes;
//! - the entry point lies in the section where this executable keeps its spawn entries (see
//!   [`entry`]): an offset that lands anywhere else (inside `main`, say) is refused;
//! - every handle descriptor is distinct, above the standard streams, not the payload, open,
//!   and was inherited on purpose (not close-on-exec); each handle then checks that its
//!   descriptor is the kind it expects (a queue's is a sealed memfd made by `shared`; a pipe
//!   end is a socket or a pipe).
//!
//! # Recreating the target
//!
//! The child has the target's type but not its value. It recreates only function items, whose
//! single value carries no data and no invariant (see [`recreate`]); closures, even ones that
//! capture nothing, are refused under spawn, as Python refuses to pickle a lambda.

use std::ffi::OsStr;
use std::fmt;
use std::io::{Read, Write};
use std::os::fd::{AsFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::sync::atomic::{AtomicBool, Ordering};

use serde::{Deserialize, Serialize};

use super::registry::{self as runtime, ChildIdentity};
use super::start_method::{self, StartMethod};
use crate::sys;
use crate::sys::shm::Seal;

/// The argument that marks a spawned child's command line: `PROGRAM MARKER PAYLOAD_FD`.
pub(crate) const MARKER: &str = "--shared-spawned-child";

/// The environment variable that carries a spawned child's token. Internal to `shared`: the
/// parent sets it for each spawned child; nothing else should. A command line that asks for a
/// spawned child is obeyed only when this variable holds the token of the payload it names.
///
/// ```
/// assert_eq!(shared::TOKEN_VARIABLE, "SHARED_SPAWN_TOKEN");
/// // The main process of a program is never a spawned child: it has no token.
/// assert!(std::env::var_os(shared::TOKEN_VARIABLE).is_none());
/// ```
pub const TOKEN_VARIABLE: &str = "SHARED_SPAWN_TOKEN";

/// The exit status of a process that was handed a command line or payload it must refuse.
pub(crate) const REFUSED: i32 = 2;

/// The start of every payload: a name, then the format version.
const MAGIC: &[u8; 8] = b"shspawn\0";
/// 2: the body carries the parent's name, for `parent_process()`.
const VERSION: u32 = 2;
pub(crate) const TOKEN_BYTES: usize = 16;
const PREAMBLE: usize = MAGIC.len() + 4 + TOKEN_BYTES;

/// The largest payload a child reads (1 GiB): the arguments of a process, not a data channel.
const MAX_PAYLOAD: u64 = 1 << 30;

/// The signature of every spawn entry point: decode the arguments, recreate the target, run it,
/// return the exit code.
pub(crate) type EntryFn = fn(&[u8], Vec<OwnedFd>) -> i32;

/// A target that a spawned child can run from its type alone, implemented by the crate's
/// bound target type (`process.rs`). The entry for `R` is [`entry::<R>`](entry).
pub(crate) trait Relaunch {
    /// Runs the target in a spawned child, from its serialized arguments and the descriptors
    /// the parent passed; returns the exit code.
    fn relaunch(args: &[u8], fds: Vec<OwnedFd>) -> i32;
}

/// The entry point of a spawned child whose target is `R`. Every instance of this function,
/// and nothing else of this crate but [`section_floor`], lives in the linker section
/// `shared_spawn_entries`, so the child can check that an entry it was sent is one of them.
#[unsafe(link_section = "shared_spawn_entries")]
#[inline(never)]
pub(crate) fn entry<R: Relaunch>(args: &[u8], fds: Vec<OwnedFd>) -> i32 {
    R::relaunch(args, fds)
}

sys::section::entry_section! {
    /// This image's spawn entries.
    fn section() in "shared_spawn_entries";
    /// Keeps the section non-empty in a program that never instantiates [`entry`]. Called
    /// through a payload, it refuses to run anything.
    fn section_floor(_args: &[u8], _fds: Vec<OwnedFd>) -> i32 {
        REFUSED
    }
}

/// Where `entry` lies in the executable's spawn entries, or `None` if it lies elsewhere: in a
/// shared library or `dlopen`ed code (which may hold a section of its own), where a spawned
/// child, an `exec` of the executable alone, would not find it.
pub(crate) fn entry_offset(entry: EntryFn) -> Option<u64> {
    section().offset_of(entry as usize)
}

/// The size of this image's spawn entries section: a child refuses a payload made by a parent
/// whose section differs, which a different build of the program would.
fn section_len() -> u64 {
    section().len()
}

/// The entry at `offset` in this image's spawn entries, if the offset lies inside them.
fn entry_at(offset: u64) -> Option<EntryFn> {
    let address = section().entry_start(offset)?;
    // SAFETY: `address` lies inside this executable's `shared_spawn_entries` section, which
    // holds only instances of `entry` (all of type `EntryFn`) and `section_floor`. It is the
    // start of one of them because the payload that named it is authentic: it carries the
    // token that our parent put in our environment (checked in `read_payload`), and our
    // parent, running this same executable (`/proc/self/exe`, which names the running image
    // even if its file was replaced since), computed the offset from such a function's
    // address with `entry_offset`. Even if that reasoning failed, `address_in_section` only
    // gives an address inside the section at which a function starts (by the executable's
    // own unwind table): every other offset, into `main`, a target, libc, or the middle of an
    // entry, is refused.
    Some(unsafe { std::mem::transmute::<usize, EntryFn>(address) })
}

/// What can be called with arguments of tuple type `A`: implemented for every `FnOnce` of up to
/// six arguments, and for nothing else. It is sealed (public, in a private module), so no type
/// of a user's can implement it: a unit struct cannot implement `FnOnce` in stable Rust, so no
/// unit struct is `Callable`, and [`recreate`] never conjures one. The public traits whose
/// values a child recreates ([`Target`](crate::Target), [`Task`](crate::Task)) have it as a
/// supertrait, which seals them too.
pub(crate) mod sealed {
    /// See [`Callable`](super::Callable).
    pub trait Callable<A> {}
}
pub(crate) use sealed::Callable;

macro_rules! impl_callable {
    ($($arg:ident),*) => {
        impl<F, R, $($arg,)*> Callable<($($arg,)*)> for F where F: FnOnce($($arg),*) -> R {}
    };
}

crate::for_each_arity!(impl_callable);

/// Whether values of `F` may be recreated in a spawned child: `F` is a function item. See
/// [`recreate`].
pub(crate) fn can_recreate<F: Callable<A>, A>() -> bool {
    size_of::<F>() == 0 && is_function_item_name(std::any::type_name::<F>())
}

/// Whether the compiler's name for a zero-sized type is a function item's: a path with no
/// `{`. A closure's name ends in a `{{closure}}` segment (checked on a closure of our own;
/// should that ever change, every name is refused). Refused too: anything generic over a
/// closure, and anything whose name this check does not understand.
fn is_function_item_name(name: &str) -> bool {
    let our_closure = std::any::type_name_of_val(&|| ());
    our_closure.contains('{') && !name.contains('{')
}

/// The single value of a function item type `F`, in a spawned child that never had one.
/// `None` for any other callable type (a closure, a function pointer); a type that is not
/// callable at all, such as a unit struct, does not compile ([`Callable`]).
pub(crate) fn recreate<F: Callable<A>, A>() -> Option<F> {
    if !can_recreate::<F, A>() {
        return None;
    }
    // SAFETY: `F` is zero-sized and callable (`Callable`, which only `FnOnce` types implement,
    // so not a unit struct or any other data type a user could define), and its name is not
    // a closure's: a function item. Its one value has no bytes to be wrong, owns nothing, and
    // asserts nothing about the program's state (a closure could capture a zero-sized token
    // whose existence means something, such as "this global was initialised" or "I am the
    // only owner"; closures are refused above for that reason). Conjuring it is what calling
    // the function by its path does.
    Some(unsafe { std::mem::MaybeUninit::<F>::zeroed().assume_init() })
}

/// What the parent sends: the target's entry and its arguments.
pub(crate) struct Outgoing {
    /// The entry's offset in the spawn entries section ([`entry_offset`]).
    pub(crate) entry: u64,
    /// The arguments, as MessagePack.
    pub(crate) args: Vec<u8>,
    /// The descriptors of the handles among the arguments.
    pub(crate) fds: Vec<RawFd>,
}

/// The payload's body, after the preamble.
#[derive(Serialize, Deserialize)]
struct Body {
    entry: u64,
    #[serde(with = "serde_bytes")]
    args: Vec<u8>,
    fds: Vec<RawFd>,
    identity: String,
    name: String,
    daemon: bool,
    parent: u32,
    parent_name: String,
    section_len: u64,
}

/// A sealed payload, ready to be passed to a child.
pub(crate) struct Sealed {
    /// The sealed memfd.
    pub(crate) payload: OwnedFd,
    /// The handle descriptors the body names, in its order (this process's numbers).
    pub(crate) fds: Vec<RawFd>,
    /// A test changed it (`tamper_with_next_spawn`, with the `test-support` feature): the
    /// child is expected to refuse it.
    pub(crate) tampered: bool,
    /// Duplicates above the standard streams of the handle descriptors that were 0, 1 or 2
    /// (see [`sys::fd::above_standard_streams`]): `fds` names these, so they must stay open
    /// until the child has them.
    pub(crate) lifted: Vec<OwnedFd>,
}

/// Seals the payload of a child that runs `outgoing` as `me`, under `token`: what both the
/// spawn and the forkserver start methods send, so that a forkserved child checks exactly what
/// a spawned one does.
///
/// # Errors
/// The system refused the payload's memory.
pub(crate) fn seal_payload(
    outgoing: Outgoing,
    me: &ChildIdentity,
    token: &[u8; TOKEN_BYTES],
) -> std::io::Result<Sealed> {
    let (fds, lifted) = lift_handles(outgoing.fds)?;
    let mut body = Body {
        entry: outgoing.entry,
        args: outgoing.args,
        fds,
        identity: me.identity.clone(),
        name: me.name.clone(),
        daemon: me.daemon,
        parent: me.parent,
        parent_name: me.parent_name.clone(),
        section_len: section_len(),
    };
    let mut preamble = Preamble {
        magic: *MAGIC,
        version: VERSION,
        token: *token,
    };
    let tampered = tamper::payload(&mut preamble, &mut body);
    let payload = write_payload(&preamble, &body)?;
    Ok(Sealed {
        payload,
        fds: body.fds,
        tampered,
        lifted,
    })
}

/// The handle descriptors `fds`, each numbered above the standard streams: a child refuses a
/// handle at 0, 1 or 2 (those are its own streams), which a parent whose standard streams are
/// closed may well have. Returns the numbers to send, and the duplicates made for them.
fn lift_handles(fds: Vec<RawFd>) -> std::io::Result<(Vec<RawFd>, Vec<OwnedFd>)> {
    let mut lifted = Vec::new();
    let mut numbers = Vec::with_capacity(fds.len());
    for fd in fds {
        if fd >= sys::fd::FIRST_PASSED {
            numbers.push(fd);
            continue;
        }
        // SAFETY: `fd` is the descriptor of a handle among the arguments, which the caller
        // keeps alive (and so open) until the child has been started.
        let duplicate = sys::fd::lifted(unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) })?;
        numbers.push(sys::fd::raw(&duplicate));
        lifted.push(duplicate);
    }
    Ok((numbers, lifted))
}

/// Writes the payload into a new memfd and seals it: from then on nobody, not even this
/// process, can change what the child will read.
fn write_payload(preamble: &Preamble, body: &Body) -> std::io::Result<OwnedFd> {
    let mut bytes = Vec::with_capacity(PREAMBLE + body.args.len() + 64);
    bytes.extend_from_slice(&preamble.magic);
    bytes.extend_from_slice(&preamble.version.to_le_bytes());
    bytes.extend_from_slice(&preamble.token);
    rmp_serde::encode::write(&mut bytes, body).map_err(std::io::Error::other)?;
    let fd = sys::shm::create(c"shared-spawn-payload", 0)?;
    let mut file = std::fs::File::from(fd);
    file.write_all(&bytes)?;
    let fd = sys::fd::above_standard_streams(OwnedFd::from(file))?;
    sys::shm::seal(&fd, &[Seal::Write, Seal::Shrink, Seal::Grow, Seal::Sealing])?;
    Ok(fd)
}

/// What precedes the body: the magic, the version and the token.
struct Preamble {
    magic: [u8; 8],
    version: u32,
    token: [u8; TOKEN_BYTES],
}

/// Fault injection for tests: a forged payload or request, to check that a child or the
/// forkserver refuses each kind of forgery. Compiled only with the `test-support` feature
/// (which `shared`'s own tests enable), so that no production build carries it.
#[cfg(feature = "test-support")]
pub(crate) mod tamper {
    use std::os::fd::RawFd;

    use super::{Body, Preamble};

    /// A change to the next payload this thread sends, so that tests can check that a spawned
    /// child refuses each kind of forgery. Test support only: not part of the API.
    #[doc(hidden)]
    #[derive(Debug)]
    pub enum Tamper {
        /// A token other than the one in the child's environment.
        Token,
        /// Another magic.
        Magic,
        /// Another format version.
        Version(u32),
        /// Another entry offset.
        Entry(u64),
        /// Other handle descriptors (they are made inheritable, as real ones are).
        Fds(Vec<RawFd>),
        /// Forkserver only: a request whose descriptors come in another order (the payload
        /// where the server expects the socket on which it reports the child's end).
        RequestOutOfOrder,
        /// Forkserver only: a request that carries no descriptors at all.
        RequestWithoutDescriptors,
        /// Forkserver only: a request that carries one handle descriptor more than its
        /// payload names.
        RequestExtraDescriptor,
    }

    thread_local! {
        static TAMPER: std::cell::RefCell<Option<Tamper>> = const { std::cell::RefCell::new(None) };
    }

    /// Makes this thread's next spawn send a payload changed by `tamper`, with the child's
    /// stderr discarded (the refusal it prints is expected). Test support only.
    #[doc(hidden)]
    pub fn tamper_with_next_spawn(tamper: Tamper) {
        TAMPER.with(|slot| *slot.borrow_mut() = Some(tamper));
    }

    /// Applies the forgery a test asked for, if any, to the payload about to be sealed;
    /// whether there was one (the child is then expected to refuse it). A request forgery is
    /// left for [`forge_request`].
    pub(super) fn payload(preamble: &mut Preamble, body: &mut Body) -> bool {
        let Some(tamper) = TAMPER.with(|slot| slot.borrow_mut().take()) else {
            return false;
        };
        match tamper {
            Tamper::Token => preamble.token[0] ^= 1,
            Tamper::Magic => preamble.magic[0] ^= 1,
            Tamper::Version(version) => preamble.version = version,
            Tamper::Entry(offset) => body.entry = offset,
            Tamper::Fds(fds) => body.fds = fds,
            Tamper::RequestOutOfOrder
            | Tamper::RequestWithoutDescriptors
            | Tamper::RequestExtraDescriptor => {
                TAMPER.with(|slot| *slot.borrow_mut() = Some(tamper));
            }
        }
        true
    }

    /// Applies the request forgery a test asked for, if any, to the descriptors of the next
    /// forkserver request: `fds` (the per-child socket, the payload `payload`, the handles).
    pub(crate) fn forge_request(fds: &mut Vec<RawFd>, payload: RawFd) {
        let tamper = TAMPER.with(|slot| {
            let mut slot = slot.borrow_mut();
            matches!(
                *slot,
                Some(
                    Tamper::RequestOutOfOrder
                        | Tamper::RequestWithoutDescriptors
                        | Tamper::RequestExtraDescriptor
                )
            )
            .then(|| slot.take())
            .flatten()
        });
        match tamper {
            Some(Tamper::RequestOutOfOrder) => fds.swap(0, 1),
            Some(Tamper::RequestWithoutDescriptors) => fds.clear(),
            Some(Tamper::RequestExtraDescriptor) => fds.push(payload),
            _ => {}
        }
    }
}

/// Without the `test-support` feature nothing is ever forged.
#[cfg(not(feature = "test-support"))]
pub(crate) mod tamper {
    use std::os::fd::RawFd;

    use super::{Body, Preamble};

    /// Never a forgery: `false`.
    pub(super) fn payload(_: &mut Preamble, _: &mut Body) -> bool {
        false
    }

    /// Leaves the request as it is.
    pub(crate) fn forge_request(_: &mut Vec<RawFd>, _: RawFd) {}
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

pub(crate) fn unhex(text: &OsStr) -> Option<[u8; TOKEN_BYTES]> {
    let text = text.as_bytes();
    if text.len() != 2 * TOKEN_BYTES {
        return None;
    }
    let mut token = [0; TOKEN_BYTES];
    for (byte, pair) in token.iter_mut().zip(text.chunks_exact(2)) {
        *byte = u8::from_str_radix(std::str::from_utf8(pair).ok()?, 16).ok()?;
    }
    Some(token)
}

/// Set once this spawned child has been given its target: from then on it may start
/// processes of its own.
static DISPATCHED: AtomicBool = AtomicBool::new(false);

/// Whether this process is a spawned child that was given its target.
pub(crate) fn is_dispatched() -> bool {
    DISPATCHED.load(Ordering::Relaxed)
}

/// Why this process refuses to act as a spawned child.
pub(crate) struct Refusal(String);

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "shared: refusing to run as a spawned child: {}. `{MARKER}` is only for processes \
             that shared's spawn start method starts",
            self.0
        )
    }
}

impl Refusal {
    /// Why, without the message's frame.
    pub(crate) fn reason(&self) -> &str {
        &self.0
    }
}

pub(crate) fn refuse(reason: impl Into<String>) -> Refusal {
    Refusal(reason.into())
}

/// A payload that passed every check, with its descriptors adopted.
pub(crate) struct Accepted {
    entry: EntryFn,
    body: Body,
    fds: Vec<OwnedFd>,
    /// A forkserved child's pidfd of its parent, the program (not its real parent, the
    /// server); `None` for a spawned child, whose real parent is the program.
    parent_exited: Option<OwnedFd>,
}

/// Checks the command line, the token and the payload, then adopts the handle descriptors.
pub(crate) fn accept(args: &[&[u8]]) -> Result<Accepted, Refusal> {
    if sys::process::is_secure_execution() {
        // The loader runs a setuid, setgid or file-capability program in secure mode: it
        // ignores LD_PRELOAD because the environment is its user's choice. So is the token.
        return Err(refuse(
            "this program runs with privileges its user does not have (setuid, setgid or file \
             capabilities), so its environment, and the token in it, is the user's choice",
        ));
    }
    let token = std::env::var_os(TOKEN_VARIABLE)
        .ok_or_else(|| refuse(format!("no {TOKEN_VARIABLE} in the environment")))?;
    let token = unhex(&token).ok_or_else(|| {
        refuse(format!(
            "{TOKEN_VARIABLE} is not {TOKEN_BYTES} bytes of hex"
        ))
    })?;
    let &[_, fd] = args else {
        return Err(refuse(format!(
            "expected `{MARKER} DESCRIPTOR`, got {} arguments",
            args.len()
        )));
    };
    let payload_fd = std::str::from_utf8(fd)
        .ok()
        .and_then(|fd| fd.parse::<RawFd>().ok())
        .filter(|&fd| fd > 2)
        .ok_or_else(|| {
            refuse(format!(
                "the payload descriptor {:?} is not a number above 2",
                OsStr::from_bytes(fd)
            ))
        })?;
    let payload = sys::fd::adopt_inherited(payload_fd)
        .map_err(|e| refuse(format!("descriptor {payload_fd} is unusable: {e}")))?;
    let body = read_payload(payload, &token)?;
    let entry = check_entry(&body)?;
    let fds = adopt_handles(&body.fds, payload_fd)?;
    Ok(Accepted {
        entry,
        body,
        fds,
        parent_exited: None,
    })
}

/// Checks a forkserved child's payload, as [`accept`] checks a spawned child's: `payload` and
/// `handles` arrived with the request its server forked it for, `token` is the server's, and
/// `parent_exited` a pidfd of the program that the server serves, `program`. The handles were
/// received (`SCM_RIGHTS`), so they are this process's own: only their count must match.
pub(crate) fn accept_forkserved(
    payload: OwnedFd,
    handles: Vec<OwnedFd>,
    token: &[u8; TOKEN_BYTES],
    program: u32,
    parent_exited: OwnedFd,
) -> Result<Accepted, Refusal> {
    let body = read_payload(payload, token)?;
    let entry = check_entry(&body)?;
    if body.fds.len() != handles.len() {
        return Err(refuse(format!(
            "the payload names {} handle descriptors, and the request carried {}",
            body.fds.len(),
            handles.len()
        )));
    }
    if body.parent != program {
        return Err(refuse(format!(
            "the payload names parent {}, and this forkserver serves {program}",
            body.parent
        )));
    }
    Ok(Accepted {
        entry,
        body,
        fds: handles,
        parent_exited: Some(parent_exited),
    })
}

/// Checks that the body comes from this build and names one of its spawn entries.
fn check_entry(body: &Body) -> Result<EntryFn, Refusal> {
    if body.section_len != section_len() {
        return Err(refuse(format!(
            "the payload names spawn entries of {} bytes, and this program has {}: it was made \
             by another build",
            body.section_len,
            section_len()
        )));
    }
    entry_at(body.entry).ok_or_else(|| {
        refuse(format!(
            "the entry offset {:#x} is not a spawn entry of this program",
            body.entry
        ))
    })
}

/// Reads and checks the payload `fd`: a sealed memfd with the magic, the version and `token`;
/// then decodes its body.
fn read_payload(fd: OwnedFd, token: &[u8; TOKEN_BYTES]) -> Result<Body, Refusal> {
    let number = sys::fd::raw(&fd);
    let described = |what: &str| refuse(format!("descriptor {number} {what}"));
    let sealed = sys::shm::is_sealed(&fd, &[Seal::Write, Seal::Shrink, Seal::Grow, Seal::Sealing]);
    if !sealed {
        return Err(described("is not a sealed payload made by shared"));
    }
    let len = sys::shm::file_len(&fd).map_err(|e| described(&format!("is unusable: {e}")))?;
    if !(PREAMBLE as u64..=MAX_PAYLOAD).contains(&len) {
        return Err(described(&format!("holds {len} bytes, not a payload")));
    }
    let mut file = std::fs::File::from(fd);
    let mut preamble = [0; PREAMBLE];
    std::io::Seek::rewind(&mut file)
        .and_then(|_| file.read_exact(&mut preamble))
        .map_err(|e| described(&format!("cannot be read: {e}")))?;
    check_preamble(&preamble, token).map_err(|what| described(&what))?;
    // Only a payload with the right token is read further.
    let mut body = Vec::with_capacity((len as usize).saturating_sub(PREAMBLE));
    file.read_to_end(&mut body)
        .map_err(|e| described(&format!("cannot be read: {e}")))?;
    crate::wire::decode(&body).map_err(|e| described(&format!("holds an unreadable body: {e}")))
}

/// Checks the magic, the version and the token; says what is wrong otherwise.
fn check_preamble(preamble: &[u8; PREAMBLE], token: &[u8; TOKEN_BYTES]) -> Result<(), String> {
    let (magic, rest) = preamble.split_at(MAGIC.len());
    let (version, theirs) = rest.split_at(4);
    if magic != MAGIC {
        return Err("does not start with a spawn payload's magic".to_owned());
    }
    let version = u32::from_le_bytes([version[0], version[1], version[2], version[3]]);
    if version != VERSION {
        return Err(format!(
            "holds payload version {version}; this program reads version {VERSION}"
        ));
    }
    if !same_token(theirs, token) {
        return Err(format!("carries a token other than {TOKEN_VARIABLE}'s"));
    }
    Ok(())
}

/// Compares tokens in time independent of where they differ.
fn same_token(a: &[u8], b: &[u8; TOKEN_BYTES]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0, |diff, (x, y)| diff | (x ^ y)) == 0
}

/// Takes ownership of the handle descriptors, refusing any that was not passed on purpose.
fn adopt_handles(fds: &[RawFd], payload_fd: RawFd) -> Result<Vec<OwnedFd>, Refusal> {
    let mut seen = std::collections::BTreeSet::new();
    for &fd in fds {
        if fd <= 2 || fd == payload_fd || !seen.insert(fd) {
            return Err(refuse(format!(
                "handle descriptor {fd} is a standard stream, the payload or a duplicate"
            )));
        }
        if !sys::fd::is_inherited(fd) {
            return Err(refuse(format!(
                "handle descriptor {fd} is not open or was not passed to this process"
            )));
        }
    }
    fds.iter()
        .map(|&fd| sys::fd::adopt_inherited(fd))
        .collect::<Result<_, _>>()
        .map_err(|e| refuse(format!("a handle descriptor is unusable: {e}")))
}

impl Accepted {
    /// Becomes the child the payload describes and runs its target; returns the exit code.
    pub(crate) fn run(self) -> i32 {
        let Accepted {
            entry,
            body,
            fds,
            parent_exited,
        } = self;
        DISPATCHED.store(true, Ordering::Relaxed);
        // Only a forkserved child is told of its parent by a pidfd (see `accept_forkserved`).
        let method = match parent_exited {
            Some(_) => StartMethod::Forkserver,
            None => StartMethod::Spawn,
        };
        let parent_exited = parent_exited.map(std::sync::Arc::new);
        let watched = match &parent_exited {
            Some(exited) if body.daemon => {
                sys::fd::duplicate(exited.as_fd()).and_then(runtime::die_when_readable)
            }
            None if body.daemon => runtime::die_with_parent(body.parent),
            _ => Ok(()),
        };
        if let Err(error) = watched {
            eprintln!("shared: {}: cannot watch its parent: {error}", body.name);
            return 1;
        }
        runtime::become_child(ChildIdentity {
            identity: body.identity,
            name: body.name,
            daemon: body.daemon,
            parent: body.parent,
            parent_name: body.parent_name,
            parent_exited,
        });
        // Its own children start the way it was started, unless told otherwise (CPython sets
        // the start method of a spawned child to its parent's).
        start_method::set_start_method(method);
        crate::timeline::child_started(method);
        entry(&body.args, fds)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a_function() {}

    #[test]
    fn only_function_items_can_be_recreated() {
        fn item_of<F: Callable<()>>(_: &F) -> bool {
            can_recreate::<F, ()>()
        }
        assert!(item_of(&a_function));
        assert!(item_of(&only_function_items_can_be_recreated));
        assert!(!item_of(&|| ()), "a closure that captures nothing");
        let token = std::marker::PhantomData::<u8>;
        assert!(
            !item_of(&move || {
                let _ = token;
            }),
            "a closure that captures a zero-sized value"
        );
        let pointer: fn() = a_function;
        assert!(!item_of(&pointer), "a function pointer has a value");
        assert!(recreate::<fn(), ()>().is_none());
        // A unit struct (or `String`, or any other data) is not `Callable`, so
        // `recreate::<Unit, ()>()` does not compile: the `compile_fail` examples on
        // `Target` and `Task` check that a unit struct cannot be made one.
    }

    #[test]
    fn entries_lie_in_the_section_and_nothing_else_does() {
        struct Nothing;
        impl Relaunch for Nothing {
            fn relaunch(_: &[u8], _: Vec<OwnedFd>) -> i32 {
                42
            }
        }
        let offset = entry_offset(entry::<Nothing>).expect("an entry lies in the section");
        let found = entry_at(offset).expect("and is found again");
        assert_eq!(found(&[], Vec::new()), 42);
        assert_eq!(entry_offset(a_spawnless_function), None);
        assert!(entry_at(u64::MAX).is_none());
        assert!(entry_at(section().len()).is_none());
    }

    #[test]
    fn an_offset_inside_an_entry_but_not_at_its_start_is_refused() {
        struct Something;
        impl Relaunch for Something {
            fn relaunch(_: &[u8], _: Vec<OwnedFd>) -> i32 {
                7
            }
        }
        let offset = entry_offset(entry::<Something>).expect("an entry lies in the section");
        assert!(entry_at(offset).is_some(), "an entry's start is found");
        // Every entry is longer than a few bytes (it calls another function): these offsets
        // land inside it, where jumping would crash the child with a signal.
        for inside in 1..4 {
            assert!(
                entry_at(offset + inside).is_none(),
                "entry start + {inside}"
            );
        }
        // Over the whole section, only function starts pass: far fewer than its bytes.
        let accepted = (0..section_len())
            .filter(|&o| entry_at(o).is_some())
            .count();
        assert!(accepted >= 2, "this entry and the floor at least");
        assert!(
            accepted as u64 * 4 <= section_len(),
            "{accepted} of {} offsets accepted",
            section_len()
        );
    }

    fn a_spawnless_function(_: &[u8], _: Vec<OwnedFd>) -> i32 {
        0
    }

    #[test]
    fn tokens_round_trip_through_hex_and_nothing_else_parses() {
        let token = [0xab; TOKEN_BYTES];
        assert_eq!(unhex(OsStr::new(&hex(&token))), Some(token));
        assert_eq!(unhex(OsStr::new("ab")), None);
        assert_eq!(unhex(OsStr::new(&"zz".repeat(TOKEN_BYTES))), None);
        assert!(same_token(&token, &token));
        assert!(!same_token(&[0xab; TOKEN_BYTES - 1], &token));
        let mut other = token;
        other[TOKEN_BYTES - 1] = 0;
        assert!(!same_token(&other, &token));
    }
}
