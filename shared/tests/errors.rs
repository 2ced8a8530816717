//! The one error rule, checked on every variant of every public error type of `shared`:
//!
//! - `Display` writes the type's own message and never its cause, so no message of the chain
//!   contains the message of a cause below it;
//! - a variant that holds an error (an `io::Error`, another error of the crate) returns it from
//!   `source()`, and a variant that holds none returns nothing;
//! - `Debug`, what a `main` returning the error prints as `Error: {:?}`, is each message of
//!   the chain once, joined by `": "`.
//!
//! [`every_error_type`] is the table: one entry per public error type, one value per variant.
//! Two tests keep it complete against the source: every error type that `lib.rs` re-exports is
//! in it, and its variants are exactly those its `pub enum` declares. Whether a variant holds an
//! error is read from that declaration too (a field whose type names an `…Error`), not written
//! by hand in the table.

use std::collections::BTreeSet;
use std::error::Error;
use std::io;
use std::path::Path;

use shared::lesson::ArgumentError;
use shared::{
    AcquireError, AuthenticationError, BrokenBarrierError, CodecError, ConnectError, GetError,
    InitError, ManagerError, ParseStartMethodError, PoolError, ProcessError, PutError, RecvError,
    ReleaseError, SendError, ShareableListError, SharedMemoryError, SharedMemoryManagerError,
    TaskDoneError, ThreadError,
};

/// One variant of an error type, as a value.
struct Variant {
    name: &'static str,
    error: Box<dyn Error>,
}

/// A public error type and one value of each of its variants.
struct ErrorType {
    name: &'static str,
    variants: Vec<Variant>,
}

/// `ErrorType { name, variants }` from `Type { Variant => value, ... }`.
macro_rules! error_type {
    ($name:ident { $($variant:ident => $value:expr),+ $(,)? }) => {
        ErrorType {
            name: stringify!($name),
            variants: vec![$(Variant { name: stringify!($variant), error: Box::new($value) }),+],
        }
    };
}

/// What the system says for `EAGAIN`.
fn os_error() -> io::Error {
    io::Error::from_raw_os_error(11)
}

/// Every public error type of the crate, each with every variant.
#[allow(
    clippy::too_many_lines,
    reason = "one table, read as a list; splitting it hides what is missing"
)]
fn every_error_type() -> Vec<ErrorType> {
    let item = || String::from("item");
    vec![
        error_type!(SendError {
            WrongDirection => SendError::WrongDirection,
            Closed => SendError::Closed,
            Encode => SendError::Encode { item_type: "u32", error: "the encoder said no".into() },
            TooLarge => SendError::TooLarge { len: 1 << 33 },
            Os => SendError::Os(os_error()),
        }),
        error_type!(RecvError {
            Closed => RecvError::Closed,
            Truncated => RecvError::Truncated { expected: 8, got: 3 },
            Decode => RecvError::Decode { expected: "u32", error: "the decoder said no".into() },
            TooLarge => RecvError::TooLarge { len: 1 << 30, max: 1 << 20 },
            Unreadable => RecvError::Unreadable,
            WrongDirection => RecvError::WrongDirection,
            Os => RecvError::Os(os_error()),
        }),
        error_type!(AuthenticationError {
            WrongDigest => AuthenticationError::WrongDigest,
            Rejected => AuthenticationError::Rejected,
            Protocol => AuthenticationError::Protocol("expected a challenge".into()),
            Timeout => AuthenticationError::Timeout,
            Closed => AuthenticationError::Closed,
            Os => AuthenticationError::Os(os_error()),
        }),
        error_type!(ConnectError {
            // Three messages deep: the connect, the handshake, the system.
            Authentication => ConnectError::Authentication(AuthenticationError::Os(os_error())),
            Os => ConnectError::Os(os_error()),
        }),
        error_type!(ManagerError {
            Start => ManagerError::Start(ProcessError::AlreadyStarted),
            ServerFailed => ManagerError::ServerFailed("cannot listen at @x".into()),
            // Three messages deep: the manager, the connect, the system.
            Connect => ManagerError::Connect(ConnectError::Os(os_error())),
            ServerGone => ManagerError::ServerGone,
            KeyError => ManagerError::KeyError,
            IndexError => ManagerError::IndexError("list index out of range".into()),
            AttributeError => ManagerError::AttributeError("x".into()),
            Empty => ManagerError::Empty,
            Full => ManagerError::Full,
            BrokenBarrier => ManagerError::BrokenBarrier,
            NotHeld => ManagerError::NotHeld,
            TooManyReleases => ManagerError::TooManyReleases,
            TooManyTaskDone => ManagerError::TooManyTaskDone,
            Refused => ManagerError::Refused("no object 9 in this manager".into()),
            Encode => ManagerError::Encode("u32: the encoder said no".into()),
            Decode => ManagerError::Decode("not a u32: the decoder said no".into()),
            Os => ManagerError::Os(os_error()),
        }),
        error_type!(PutError {
            Full => PutError::Full(item()),
            Closed => PutError::Closed(item()),
            ShutDown => PutError::ShutDown(item()),
            Encode => PutError::Encode { item: item(), error: "the encoder said no".into() },
            Os => PutError::Os { item: item(), error: os_error() },
            Corrupt => PutError::Corrupt {
                item: item(),
                error: io::Error::new(io::ErrorKind::InvalidData, "a frame points outside"),
            },
        }),
        error_type!(GetError {
            Empty => GetError::Empty,
            Closed => GetError::Closed,
            ShutDown => GetError::ShutDown,
            Decode => GetError::Decode { expected: "u32", error: "the decoder said no".into() },
            Os => GetError::Os(os_error()),
            Corrupt => GetError::Corrupt(io::Error::new(io::ErrorKind::InvalidData, "bad header")),
        }),
        error_type!(TaskDoneError {
            TooManyCalls => TaskDoneError::TooManyCalls,
            Corrupt => TaskDoneError::Corrupt(io::Error::other("the counts keep changing")),
        }),
        error_type!(AcquireError {
            OwnerDied => AcquireError::OwnerDied(()),
            Os => AcquireError::<()>::Os(os_error()),
        }),
        error_type!(ReleaseError {
            NotHeld => ReleaseError::NotHeld,
            TooManyReleases => ReleaseError::TooManyReleases,
            Os => ReleaseError::Os(os_error()),
        }),
        error_type!(BrokenBarrierError {
            Broken => BrokenBarrierError::Broken,
            PartyDied => BrokenBarrierError::PartyDied,
            Os => BrokenBarrierError::Os(os_error()),
        }),
        error_type!(InitError {
            NotMainThread => InitError::NotMainThread,
            Mpi => InitError::Mpi("MPI was already initialized".into()),
        }),
        error_type!(ParseStartMethodError {
            Unknown => ParseStartMethodError::Unknown("fok".into()),
        }),
        error_type!(ArgumentError {
            UnknownArgument => ArgumentError::UnknownArgument {
                argument: "--x".into(),
                accepted: "`--start-method`".into(),
            },
            UnknownStartMethod => ArgumentError::UnknownStartMethod("fok".into()),
            MissingStartMethod => ArgumentError::MissingStartMethod,
            MissingValue => ArgumentError::MissingValue { option: "--ouvir".into(), value: "ENDEREÇO".into() },
            UnexpectedValue => ArgumentError::UnexpectedValue { option: "--help".into(), value: "x".into() },
            NotUnicode => ArgumentError::NotUnicode("a\u{fffd}".into()),
            EmptyTimelineFile => ArgumentError::EmptyTimelineFile,
        }),
        error_type!(ProcessError {
            AlreadyStarted => ProcessError::AlreadyStarted,
            NotStarted => ProcessError::NotStarted { operation: "join" },
            NotAChild => ProcessError::NotAChild { operation: "join" },
            DaemonWithChildren => ProcessError::DaemonWithChildren,
            SpawnNeedsFunction => ProcessError::SpawnNeedsFunction,
            SpawnOutsideExecutable => ProcessError::SpawnOutsideExecutable,
            MissingInit => ProcessError::MissingInit,
            Arguments => ProcessError::Arguments("the encoder said no".into()),
            Os => ProcessError::Os(os_error()),
        }),
        error_type!(ThreadError {
            AlreadyStarted => ThreadError::AlreadyStarted,
            NotStarted => ThreadError::NotStarted,
            JoinCurrent => ThreadError::JoinCurrent,
            Os => ThreadError::Os(os_error()),
        }),
        error_type!(PoolError {
            NoProcesses => PoolError::NoProcesses,
            NoTasksPerChild => PoolError::NoTasksPerChild,
            NoChunksize => PoolError::NoChunksize,
            NotRunning => PoolError::NotRunning,
            StillRunning => PoolError::StillRunning,
            NotReady => PoolError::NotReady,
            Timeout => PoolError::Timeout,
            NeedsFunction => PoolError::NeedsFunction,
            Arguments => PoolError::Arguments(CodecError::new("the encoder said no")),
            Task => PoolError::Task("boom".into()),
            WorkerDied => PoolError::WorkerDied { pid: 42, exitcode: -6 },
            Terminated => PoolError::Terminated,
            TaskTimeout => PoolError::TaskTimeout {
                pid: 42,
                timeout: std::time::Duration::from_secs(1),
            },
            Cancelled => PoolError::Cancelled,
            Initializer => PoolError::Initializer("boom".into()),
            Decode => PoolError::Decode(CodecError::new("the decoder said no")),
            Encoding => PoolError::Encoding(CodecError::new("the encoder said no")),
            Broken => PoolError::Broken("a worker sent an order it must refuse".into()),
            // Three messages deep: the pool, the process, the system.
            Start => PoolError::Start(ProcessError::Os(os_error())),
            Io => PoolError::Io(os_error()),
        }),
        error_type!(CodecError {
            CodecError => CodecError::new("invalid type: string, expected u32"),
        }),
        error_type!(SharedMemoryError {
            InvalidName => SharedMemoryError::InvalidName { name: "a/b".into(), reason: "a '/' may only lead the name" },
            InvalidSize => SharedMemoryError::InvalidSize { size: 0 },
            Exists => SharedMemoryError::Exists { name: "dados".into() },
            NotFound => SharedMemoryError::NotFound { name: "dados".into() },
            NotASegment => SharedMemoryError::NotASegment { name: "dados".into(), reason: "empty" },
            Busy => SharedMemoryError::Busy { name: "dados".into() },
            OutOfRange => SharedMemoryError::OutOfRange { offset: 60, len: 8, size: 64 },
            Os => SharedMemoryError::Os { operation: "attach", name: "dados".into(), source: os_error() },
        }),
        error_type!(ShareableListError {
            // Three messages deep: the list, the segment, the system.
            Memory => ShareableListError::Memory(SharedMemoryError::Os {
                operation: "create",
                name: "lista".into(),
                source: os_error(),
            }),
            IndexOutOfRange => ShareableListError::IndexOutOfRange { index: 5, len: 5 },
            DoesNotFit => ShareableListError::DoesNotFit { index: 0, len: 9, available: 8 },
            Unsupported => ShareableListError::Unsupported { what: "an integer above i64::MAX" },
            Corrupt => ShareableListError::Corrupt { reason: "-1 items".into() },
        }),
        error_type!(SharedMemoryManagerError {
            Manager => SharedMemoryManagerError::Manager(ManagerError::Os(os_error())),
            SharedMemory => SharedMemoryManagerError::SharedMemory(SharedMemoryError::NotFound { name: "dados".into() }),
            ShareableList => SharedMemoryManagerError::ShareableList(ShareableListError::IndexOutOfRange { index: 5, len: 5 }),
        }),
    ]
}

/// The messages of `error`'s chain: its own `Display`, then each `source()`'s.
fn chain(error: &dyn Error) -> Vec<String> {
    let mut messages = vec![error.to_string()];
    let mut cause = error.source();
    while let Some(error) = cause {
        messages.push(error.to_string());
        cause = error.source();
    }
    messages
}

/// How `error` breaks the rule, in words; empty when it follows it. `holds_error`: whether its
/// variant's declaration holds an error.
fn violations(error: &dyn Error, holds_error: bool) -> Vec<String> {
    let messages = chain(error);
    let mut found = Vec::new();
    for (i, message) in messages.iter().enumerate() {
        for cause in &messages[i + 1..] {
            if !cause.is_empty() && message.contains(cause.as_str()) {
                found.push(format!("`{message}` repeats its cause `{cause}`"));
            }
        }
    }
    match (holds_error, error.source().is_some()) {
        (true, false) => found.push("holds an error but source() returns None".to_owned()),
        (false, true) => found.push("holds no error but source() returns one".to_owned()),
        _ => {}
    }
    let debug = format!("{error:?}");
    let expected = messages.join(": ");
    if debug != expected {
        found.push(format!("Debug is `{debug}`, not the chain `{expected}`"));
    }
    found
}

/// A variant as its `pub enum` declares it.
struct Declared {
    name: String,
    /// Whether a field's type names an error (`io::Error`, `AuthenticationError`, ...).
    holds_error: bool,
}

/// The text of every `.rs` file under `dir`.
fn sources(dir: &Path) -> Vec<String> {
    let mut texts = Vec::new();
    for entry in std::fs::read_dir(dir).expect("the source directory") {
        let path = entry.expect("a directory entry").path();
        if path.is_dir() {
            texts.extend(sources(&path));
        } else if path.extension().is_some_and(|extension| extension == "rs") {
            texts.push(std::fs::read_to_string(&path).expect("a source file"));
        }
    }
    texts
}

/// The variants of `pub enum name` in the crate's source, in declaration order. A variant
/// starts at a line indented by four spaces with an upper-case letter; the lines below it
/// (doc comments and attributes left out) are its fields, up to the enum's closing brace.
/// A `pub struct name(...)` is one variant, named as its type.
fn declared_variants(name: &str) -> Vec<Declared> {
    let source_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let structs: Vec<String> = sources(&source_dir)
        .iter()
        .flat_map(|text| {
            text.lines()
                .filter_map(|line| line.strip_prefix(&format!("pub struct {name}(")))
                .map(str::to_owned)
                .collect::<Vec<_>>()
        })
        .collect();
    if let [fields] = structs.as_slice() {
        return vec![Declared {
            name: name.to_owned(),
            holds_error: names_an_error(fields),
        }];
    }
    let bodies: Vec<String> = sources(&source_dir)
        .iter()
        .flat_map(|text| enum_bodies(text, name))
        .collect();
    assert_eq!(
        bodies.len(),
        1,
        "`pub enum {name}` is declared once in src/"
    );
    let mut variants: Vec<Declared> = Vec::new();
    for line in bodies[0].lines() {
        let trimmed = line.trim_start();
        if trimmed.starts_with("//") || trimmed.starts_with("#[") || trimmed.is_empty() {
            continue;
        }
        let starts_variant = line.starts_with("    ")
            && !line.starts_with("     ")
            && trimmed.starts_with(|c: char| c.is_ascii_uppercase());
        if starts_variant {
            let name: String = trimmed
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            let fields = &trimmed[name.len()..];
            variants.push(Declared {
                holds_error: names_an_error(fields),
                name,
            });
        } else {
            let current = variants
                .last_mut()
                .expect("a field line follows a variant line");
            current.holds_error |= names_an_error(trimmed);
        }
    }
    variants
}

/// Whether a variant's fields name an error type: `(io::Error)`, `error: io::Error,`,
/// `(AuthenticationError)`. Doc comments are left out before this is asked, and field names
/// are lower-case, so only a type can match.
fn names_an_error(fields: &str) -> bool {
    fields.contains("Error")
}

/// The lines between `pub enum name … {` and its closing `}` at the start of a line.
fn enum_bodies(text: &str, name: &str) -> Vec<String> {
    let mut bodies = Vec::new();
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        let Some(rest) = line.strip_prefix(&format!("pub enum {name}")) else {
            continue;
        };
        if !rest.starts_with([' ', '<', '{']) {
            continue;
        }
        let body: Vec<&str> = lines.by_ref().take_while(|line| *line != "}").collect();
        bodies.push(body.join("\n"));
    }
    bodies
}

#[test]
fn every_public_error_type_is_in_the_table() {
    let lib = include_str!("../src/lib.rs");
    // The crate root's re-exports, and the errors of its one public module, `lesson`.
    let lesson = include_str!("../src/lesson.rs");
    let lesson_errors = lesson
        .split("pub enum ")
        .skip(1)
        .filter_map(|declaration| declaration.split([' ', '{', '<']).next());
    let exported: BTreeSet<&str> = lib
        .split("pub use ")
        .skip(1)
        .flat_map(|statement| statement.split(';').next())
        .flat_map(|statement| statement.split(|c: char| !c.is_ascii_alphanumeric() && c != '_'))
        .chain(lesson_errors)
        .filter(|word| word.ends_with("Error") && word.starts_with(|c: char| c.is_uppercase()))
        .collect();
    let in_table: BTreeSet<&str> = every_error_type().iter().map(|t| t.name).collect();
    assert!(
        exported.len() >= 14,
        "lib.rs re-exports the errors: {exported:?}"
    );
    assert_eq!(exported, in_table, "lib.rs's error types, then the table's");
}

#[test]
fn every_variant_is_in_the_table() {
    for error_type in every_error_type() {
        let declared: Vec<String> = declared_variants(error_type.name)
            .into_iter()
            .map(|variant| variant.name)
            .collect();
        let in_table: Vec<String> = error_type
            .variants
            .iter()
            .map(|variant| variant.name.to_owned())
            .collect();
        assert_eq!(
            declared, in_table,
            "{}: the declared variants, then the table's",
            error_type.name
        );
    }
}

#[test]
fn every_error_shows_each_message_of_its_chain_once() {
    let mut broken = Vec::new();
    for error_type in every_error_type() {
        let declared = declared_variants(error_type.name);
        for variant in &error_type.variants {
            let holds_error = declared
                .iter()
                .find(|declared| declared.name == variant.name)
                .unwrap_or_else(|| panic!("{}::{} is declared", error_type.name, variant.name))
                .holds_error;
            for violation in violations(variant.error.as_ref(), holds_error) {
                broken.push(format!(
                    "{}::{}: {violation}",
                    error_type.name, variant.name
                ));
            }
        }
    }
    assert!(
        broken.is_empty(),
        "the rule is broken:\n{}",
        broken.join("\n")
    );
}

#[test]
fn the_table_holds_errors_with_causes_and_without() {
    // The rule is checked on chains of one, two and three messages, not only on plain variants.
    let lengths: BTreeSet<usize> = every_error_type()
        .iter()
        .flat_map(|error_type| &error_type.variants)
        .map(|variant| chain(variant.error.as_ref()).len())
        .collect();
    assert_eq!(lengths, BTreeSet::from([1, 2, 3]));
}

#[test]
fn debug_is_the_message_then_its_causes() {
    let eagain = "Resource temporarily unavailable (os error 11)";
    let send = SendError::Os(os_error());
    assert_eq!(send.to_string(), "cannot send");
    assert_eq!(format!("{send:?}"), format!("cannot send: {eagain}"));
    let recv = RecvError::Os(os_error());
    assert_eq!(recv.to_string(), "cannot receive");
    assert_eq!(format!("{recv:?}"), format!("cannot receive: {eagain}"));
    let connect = ConnectError::Authentication(AuthenticationError::Os(os_error()));
    assert_eq!(connect.to_string(), "authentication error");
    assert_eq!(
        format!("{connect:?}"),
        format!("authentication error: authentication failed: {eagain}")
    );
    let get = GetError::Os(os_error());
    assert_eq!(
        format!("{get:?}"),
        format!("queue memory is unusable: {eagain}")
    );
    // A variant without a cause prints its message alone, as before.
    assert_eq!(format!("{:?}", GetError::Empty), "queue is empty");
}

#[test]
fn a_main_returning_the_error_prints_each_message_once() {
    // What `fn main() -> Result<(), Box<dyn Error>>` prints after `Error: `.
    let returned: Box<dyn Error> = Box::new(PutError::Os {
        item: 7_u32,
        error: os_error(),
    });
    let printed = format!("{returned:?}");
    assert_eq!(
        printed,
        "the queue cannot hold the item: Resource temporarily unavailable (os error 11)"
    );
    assert_eq!(printed.matches("os error 11").count(), 1);
}

/// An error written the old ways: `Display` appends its cause, `Debug` is derived, and one
/// variant holds an `io::Error` it does not return.
#[derive(Debug)]
enum OldStyle {
    Repeats(io::Error),
    Hides(
        #[expect(
            dead_code,
            reason = "held and never returned: the fault this value shows"
        )]
        io::Error,
    ),
}

impl std::fmt::Display for OldStyle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            OldStyle::Repeats(error) => write!(f, "cannot go on: {error}"),
            OldStyle::Hides(_) => f.write_str("cannot go on"),
        }
    }
}

impl Error for OldStyle {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        match self {
            OldStyle::Repeats(error) => Some(error),
            OldStyle::Hides(_) => None,
        }
    }
}

#[test]
fn the_checks_catch_each_way_of_breaking_the_rule() {
    let repeats = violations(&OldStyle::Repeats(os_error()), true);
    assert!(
        repeats.iter().any(|v| v.contains("repeats its cause")),
        "{repeats:?}"
    );
    assert!(
        repeats.iter().any(|v| v.contains("Debug is")),
        "{repeats:?}"
    );
    let hides = violations(&OldStyle::Hides(os_error()), true);
    assert!(
        hides.iter().any(|v| v.contains("source() returns None")),
        "{hides:?}"
    );
    // And the declaration reader sees which variants hold an error.
    let declared = declared_variants("ConnectError");
    let holding: Vec<(&str, bool)> = declared
        .iter()
        .map(|variant| (variant.name.as_str(), variant.holds_error))
        .collect();
    assert_eq!(holding, [("Authentication", true), ("Os", true)]);
    let declared = declared_variants("RecvError");
    assert!(
        declared
            .iter()
            .all(|variant| variant.holds_error == (variant.name == "Os"))
    );
}

#[test]
fn a_cause_that_prints_its_own_cause_is_still_shown_once() {
    // A foreign error inside an `io::Error` may end its message with its cause, which its
    // `source()` returns too: `Debug` does not write that cause a second time.
    let foreign = io::Error::other(OldStyle::Repeats(os_error()));
    let send = SendError::Os(foreign);
    assert_eq!(
        format!("{send:?}"),
        "cannot send: cannot go on: Resource temporarily unavailable (os error 11)"
    );
}
