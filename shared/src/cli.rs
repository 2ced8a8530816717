//! The command line that [`init`](crate::init) reads: the course's options, in Portuguese.
//!
//! Parsed with lexopt rather than clap: every message a learner reads here is Portuguese, and
//! clap's own messages ("unexpected argument", its usage layout) are English and cannot be
//! translated; lexopt leaves all text to us, has no dependencies and costs nothing to build.

use std::ffi::OsString;
use std::fmt;
use std::path::Path;

use crate::start::StartMethod;

/// What a command line asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Invocation {
    /// Run the program with these options.
    Run {
        /// The start method named by `--start-method`, if any.
        start_method: Option<StartMethod>,
    },
    /// Print the usage (`-h`, `--help`) and exit.
    Help,
}

/// Reads the course's options from `args` (the arguments after the program's name):
/// `--start-method fork|spawn|forkserver` (or `--start-method=spawn`), and `-h`/`--help`.
///
/// ```
/// use shared::{Invocation, StartMethod, parse_args};
///
/// let run = parse_args(["--start-method", "spawn"].map(Into::into))?;
/// assert_eq!(run, Invocation::Run { start_method: Some(StartMethod::Spawn) });
/// assert_eq!(parse_args(["--help"].map(Into::into))?, Invocation::Help);
/// let error = parse_args(["spawn"].map(Into::into)).unwrap_err();
/// assert!(error.to_string().contains("--start-method spawn"), "{error}");
/// # Ok::<(), shared::InitError>(())
/// ```
///
/// # Errors
/// [`InitError`] for anything else: an unknown argument or option, an unknown start method, a
/// missing value, a value given to `--help`, or an argument that is not valid UTF-8.
pub fn parse_args(args: impl IntoIterator<Item = OsString>) -> Result<Invocation, InitError> {
    use lexopt::Arg::{Long, Short, Value};

    let mut parser = lexopt::Parser::from_args(args);
    let mut start_method = None;
    while let Some(arg) = parser.next().map_err(InitError::from_lexopt)? {
        match arg {
            Short('h') | Long("help") => {
                if let Some(value) = parser.optional_value() {
                    return Err(InitError::UnexpectedValue {
                        option: "--help".to_owned(),
                        value: value.to_string_lossy().into_owned(),
                    });
                }
                return Ok(Invocation::Help);
            }
            Long("start-method") => {
                let value = parser.value().map_err(|_| InitError::MissingStartMethod)?;
                let name = value
                    .into_string()
                    .map_err(|value| InitError::NotUnicode(value.to_string_lossy().into_owned()))?;
                start_method = Some(name.parse()?);
            }
            Value(value) => {
                return Err(InitError::UnknownArgument(
                    value.to_string_lossy().into_owned(),
                ));
            }
            Long(option) => return Err(InitError::UnknownArgument(format!("--{option}"))),
            Short(option) => return Err(InitError::UnknownArgument(format!("-{option}"))),
        }
    }
    Ok(Invocation::Run { start_method })
}

/// The text `--help` prints for `program`; `about` says what the program shows.
pub(crate) fn usage(program: &str, about: Option<&str>) -> String {
    let about = wrap(
        about.unwrap_or(
            "Uma lição do curso de processos: o README.md da lição explica o que ela mostra.",
        ),
        USAGE_WIDTH,
    );
    format!(
        "Uso: {program} [--start-method fork|spawn|forkserver]\n\
         \n\
         {about}\n\
         \n\
         Opções:\n\
         \x20 --start-method fork|spawn|forkserver\n\
         \x20                            como cada processo filho começa (o padrão é fork):\n\
         \x20                            fork: o filho é uma cópia do principal;\n\
         \x20                            spawn: o programa roda de novo e executa só a função\n\
         \x20                            do filho;\n\
         \x20                            forkserver: um servidor, iniciado na primeira vez como\n\
         \x20                            no spawn, faz o fork de cada filho (o padrão do Python\n\
         \x20                            3.14 no Linux). O mesmo que\n\
         \x20                            multiprocessing.set_start_method.\n\
         \x20 -h, --help                 mostra esta ajuda e sai\n"
    )
}

/// The width the usage is wrapped to.
const USAGE_WIDTH: usize = 88;

/// `text` with its words re-flowed into lines of at most `width` characters (a longer word
/// gets a line of its own).
fn wrap(text: &str, width: usize) -> String {
    let mut lines: Vec<String> = Vec::new();
    for word in text.split_whitespace() {
        match lines.last_mut() {
            Some(line) if line.chars().count() + 1 + word.chars().count() <= width => {
                line.push(' ');
                line.push_str(word);
            }
            _ => lines.push(word.to_owned()),
        }
    }
    lines.join("\n")
}

/// The name a program was run as, for messages: the last component of `argv[0]`.
pub(crate) fn program_name() -> String {
    std::env::args_os()
        .next()
        .as_deref()
        .and_then(|argv0| Path::new(argv0).file_name())
        .map_or_else(
            || "programa".to_owned(),
            |name| name.to_string_lossy().into_owned(),
        )
}

/// What [`parse_args`] could not accept. The messages are Portuguese: they are for the
/// learner who typed the command line.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum InitError {
    /// An argument or option that the program does not take.
    UnknownArgument(String),
    /// `--start-method` was given a name other than `fork`, `spawn` or `forkserver`.
    UnknownStartMethod(String),
    /// `--start-method` was the last argument.
    MissingStartMethod,
    /// An option that takes no value was given one (`--help=x`).
    UnexpectedValue {
        /// The option.
        option: String,
        /// The value it was given.
        value: String,
    },
    /// An argument is not valid UTF-8 (shown with replacement characters).
    NotUnicode(String),
}

impl InitError {
    fn from_lexopt(error: lexopt::Error) -> InitError {
        match error {
            lexopt::Error::UnexpectedValue { option, value } => InitError::UnexpectedValue {
                option,
                value: value.to_string_lossy().into_owned(),
            },
            lexopt::Error::NonUnicodeValue(value) => {
                InitError::NotUnicode(value.to_string_lossy().into_owned())
            }
            other => InitError::UnknownArgument(other.to_string()),
        }
    }
}

const ACCEPTED: &str = "as opções aceitas são --start-method fork|spawn|forkserver e -h/--help";

/// Every start method's name, as a learner types it.
const METHODS: &str = "`fork`, `spawn` ou `forkserver`";

impl fmt::Display for InitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            InitError::UnknownArgument(argument)
                if ["fork", "spawn", "forkserver"].contains(&argument.as_str()) =>
            {
                write!(
                    f,
                    "argumento desconhecido `{argument}`: quis dizer `--start-method {argument}`?"
                )
            }
            InitError::UnknownArgument(argument) => {
                write!(f, "argumento desconhecido `{argument}`: {ACCEPTED}")
            }
            InitError::UnknownStartMethod(name) if name.is_empty() => {
                write!(f, "`--start-method` recebeu um valor vazio: use {METHODS}")
            }
            InitError::UnknownStartMethod(name) => {
                write!(f, "método de início desconhecido `{name}`: use {METHODS}")
            }
            InitError::MissingStartMethod => {
                write!(f, "`--start-method` precisa de um valor: {METHODS}")
            }
            InitError::UnexpectedValue { option, value } => {
                write!(f, "`{option}` não aceita valor, e recebeu `{value}`")
            }
            InitError::NotUnicode(argument) => {
                write!(f, "o argumento `{argument}` não é texto UTF-8 válido")
            }
        }
    }
}

impl std::error::Error for InitError {}

crate::debug_as_display!(InitError);

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Invocation, InitError> {
        parse_args(args.iter().map(OsString::from))
    }

    fn run(start_method: Option<StartMethod>) -> Result<Invocation, InitError> {
        Ok(Invocation::Run { start_method })
    }

    #[test]
    fn start_methods_in_both_spellings() {
        assert_eq!(parse(&[]), run(None));
        assert_eq!(
            parse(&["--start-method", "fork"]),
            run(Some(StartMethod::Fork))
        );
        assert_eq!(
            parse(&["--start-method=spawn"]),
            run(Some(StartMethod::Spawn))
        );
        assert_eq!(
            parse(&["--start-method", "forkserver"]),
            run(Some(StartMethod::Forkserver))
        );
        assert_eq!(
            parse(&["--start-method", "spawn", "--start-method", "fork"]),
            run(Some(StartMethod::Fork)),
            "the last one wins"
        );
    }

    #[test]
    fn help_in_both_spellings() {
        assert_eq!(parse(&["-h"]), Ok(Invocation::Help));
        assert_eq!(
            parse(&["--start-method", "fork", "--help"]),
            Ok(Invocation::Help)
        );
    }

    #[test]
    fn everything_else_is_an_error_that_names_it() {
        let message = |args: &[&str]| parse(args).unwrap_err().to_string();
        assert!(message(&["--verbose"]).contains("`--verbose`"));
        assert!(message(&["--verbose"]).contains("--start-method fork|spawn|forkserver"));
        assert!(message(&["-v"]).contains("`-v`"));
        assert!(message(&["spawn"]).contains("quis dizer `--start-method spawn`"));
        assert!(message(&["forkserver"]).contains("quis dizer `--start-method forkserver`"));
        assert!(message(&["--start-method", "forkk"]).contains("`forkserver`"));
        assert!(message(&["extra"]).contains("`extra`"));
        assert!(message(&["--start-method", "forkk"]).contains("`forkk`"));
        assert!(message(&["--start-method="]).contains("valor vazio"));
        assert_eq!(
            parse(&["--start-method"]),
            Err(InitError::MissingStartMethod)
        );
        assert!(message(&["--help=x"]).contains("`x`"));
    }

    #[test]
    fn usage_names_the_program_and_every_option() {
        let text = usage("lesson01-processes", Some("Lição 01."));
        assert!(
            text.starts_with("Uso: lesson01-processes [--start-method fork|spawn|forkserver]\n")
        );
        assert!(text.contains("\nLição 01.\n"));
        assert!(
            text.contains("--start-method fork|spawn|forkserver") && text.contains("-h, --help")
        );
        assert!(text.contains("forkserver: "));
        assert!(usage("x", None).contains("README.md"));
        let long = "palavra ".repeat(40);
        let text = usage("x", Some(&long));
        assert!(
            text.lines().all(|line| line.chars().count() <= USAGE_WIDTH),
            "{text}"
        );
    }
}
