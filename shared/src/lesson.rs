//! The lessons' command line, in Portuguese: `--start-method`, `--timeline` and `--help`.
//!
//! Every lesson calls [`init`] (or [`init_with`], for a lesson with options of its own) first
//! thing in `main`: the `__main__` guard of [`crate::init`], then the course's options. A
//! program of your own calls [`crate::init`] instead, which reads nothing from the command line,
//! and sets what it wants with [`set_start_method`](crate::set_start_method) and
//! [`record_timeline`](crate::record_timeline).
//!
//! Until the library's `init()` became a pure guard, `shared::init()` read these options in
//! every program, so a tool's own arguments (`prog input.txt`) stopped it with exit code 2.
//! To keep a program's old behaviour, call `shared::lesson::init()?` where it called
//! `shared::init()?`, and `shared::lesson::init_with` where it called `shared::init_with`.
//!
//! Parsed with lexopt rather than clap: every message a learner reads here is Portuguese, and
//! clap's own messages ("unexpected argument", its usage layout) are English and cannot be
//! translated; lexopt leaves all text to us, has no dependencies and costs nothing to build.

use std::ffi::OsString;
use std::fmt;
use std::path::{Path, PathBuf};

use crate::process::StartMethod;
use crate::timeline::TimelineOutput;

/// What a command line asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Invocation {
    /// Run the program with these options.
    Run {
        /// The start method named by `--start-method`, if any.
        start_method: Option<StartMethod>,
        /// Where `--timeline` asked for the run's timeline, if it did.
        timeline: Option<TimelineOutput>,
    },
    /// Print the usage (`-h`, `--help`) and exit.
    Help,
}

/// Reads the course's options from `args` (the arguments after the program's name):
/// `--start-method fork|spawn|forkserver` (or `--start-method=spawn`), `--timeline` (or
/// `--timeline=FILE.json`) and `-h`/`--help`.
///
/// ```
/// use shared::StartMethod;
/// use shared::TimelineOutput;
/// use shared::lesson::{Invocation, parse_args};
///
/// let run = parse_args(["--start-method", "spawn"].map(Into::into))?;
/// assert_eq!(run, Invocation::Run { start_method: Some(StartMethod::Spawn), timeline: None });
/// let run = parse_args(["--timeline=t.json"].map(Into::into))?;
/// let json = Some(TimelineOutput::Json("t.json".into()));
/// assert_eq!(run, Invocation::Run { start_method: None, timeline: json });
/// assert_eq!(parse_args(["--help"].map(Into::into))?, Invocation::Help);
/// let error = parse_args(["spawn"].map(Into::into)).unwrap_err();
/// assert!(error.to_string().contains("--start-method spawn"), "{error}");
/// # Ok::<(), shared::lesson::ArgumentError>(())
/// ```
///
/// # Errors
/// [`ArgumentError`] for anything else: an unknown argument or option, an unknown start method, a
/// missing value, an empty `--timeline=`, a value given to `--help`, or an argument that is
/// not valid UTF-8.
pub fn parse_args(args: impl IntoIterator<Item = OsString>) -> Result<Invocation, ArgumentError> {
    parse_args_with(args, &[]).map(|(invocation, _)| invocation)
}

/// An option a program takes besides the course's own, with a value: `--NAME VALUE` or
/// `--NAME=VALUE`. Its help is shown by `--help`, in the program's language.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProgramOption {
    /// The option without its dashes: `ouvir` for `--ouvir`.
    pub name: &'static str,
    /// What the value is, for the usage: `ENDEREÇO`.
    pub value: &'static str,
    /// One sentence for `--help`.
    pub help: &'static str,
}

/// The values a command line gave to a program's own [`ProgramOption`]s.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ProgramArgs {
    values: Vec<(&'static str, String)>,
}

impl ProgramArgs {
    /// The value of `--name`, the last one if it was given more than once.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.values
            .iter()
            .rev()
            .find(|(option, _)| *option == name)
            .map(|(_, value)| value.as_str())
    }
}

/// [`parse_args`] for a program that also takes `options`; returns what to do and the values
/// given to them.
///
/// ```
/// use shared::TimelineOutput;
/// use shared::lesson::{Invocation, ProgramOption, parse_args_with};
///
/// const OUVIR: ProgramOption =
///     ProgramOption { name: "ouvir", value: "ENDEREÇO", help: "espera neste endereço" };
/// let args = ["--ouvir", "@cano", "--timeline"].map(Into::into);
/// let (run, values) = parse_args_with(args, &[OUVIR])?;
/// let timeline = Some(TimelineOutput::Drawing);
/// assert_eq!(run, Invocation::Run { start_method: None, timeline });
/// assert_eq!(values.get("ouvir"), Some("@cano"));
/// let error = parse_args_with(["--falar"].map(Into::into), &[OUVIR]).unwrap_err();
/// assert!(error.to_string().contains("--ouvir ENDEREÇO"), "{error}");
/// # Ok::<(), shared::lesson::ArgumentError>(())
/// ```
///
/// # Errors
/// As [`parse_args`]; an option of `options` given without a value is
/// [`ArgumentError::MissingValue`].
pub fn parse_args_with(
    args: impl IntoIterator<Item = OsString>,
    options: &[ProgramOption],
) -> Result<(Invocation, ProgramArgs), ArgumentError> {
    use lexopt::Arg::{Long, Short, Value};

    let mut parser = lexopt::Parser::from_args(args);
    let mut start_method = None;
    let mut timeline = None;
    let mut values = ProgramArgs::default();
    let unknown = |argument: String| ArgumentError::UnknownArgument {
        argument,
        accepted: accepted(options),
    };
    while let Some(arg) = parser.next().map_err(ArgumentError::from_lexopt)? {
        match arg {
            Short('h') | Long("help") => {
                if let Some(value) = parser.optional_value() {
                    return Err(ArgumentError::UnexpectedValue {
                        option: "--help".to_owned(),
                        value: value.to_string_lossy().into_owned(),
                    });
                }
                return Ok((Invocation::Help, values));
            }
            Long("start-method") => {
                let value = parser
                    .value()
                    .map_err(|_| ArgumentError::MissingStartMethod)?;
                let name = text(value)?;
                let method = name
                    .parse()
                    .map_err(|_| ArgumentError::UnknownStartMethod(name))?;
                start_method = Some(method);
            }
            Long("timeline") => {
                timeline = Some(match parser.optional_value() {
                    None => TimelineOutput::Drawing,
                    Some(path) if path.is_empty() => return Err(ArgumentError::EmptyTimelineFile),
                    Some(path) => TimelineOutput::Json(PathBuf::from(path)),
                });
            }
            Long(name) => {
                let Some(option) = options.iter().find(|option| option.name == name) else {
                    return Err(unknown(format!("--{name}")));
                };
                let value = parser.value().map_err(|_| ArgumentError::MissingValue {
                    option: format!("--{}", option.name),
                    value: option.value.to_owned(),
                })?;
                values.values.push((option.name, text(value)?));
            }
            Value(value) => return Err(unknown(value.to_string_lossy().into_owned())),
            Short(option) => return Err(unknown(format!("-{option}"))),
        }
    }
    Ok((
        Invocation::Run {
            start_method,
            timeline,
        },
        values,
    ))
}

fn text(value: OsString) -> Result<String, ArgumentError> {
    value
        .into_string()
        .map_err(|value| ArgumentError::NotUnicode(value.to_string_lossy().into_owned()))
}

/// "--start-method fork|spawn|forkserver, --timeline[=ARQUIVO.json], --ouvir ENDEREÇO e
/// -h/--help": every option a program takes.
fn accepted(options: &[ProgramOption]) -> String {
    let mut all = vec![START_METHOD.to_owned(), TIMELINE.to_owned()];
    all.extend(options.iter().map(|o| format!("--{} {}", o.name, o.value)));
    format!("{} e -h/--help", all.join(", "))
}

/// The first line of a lesson's `main`: Python's `if __name__ == '__main__':` ([`crate::init`]),
/// then the course's options from the command line. Python: the listing's guard, plus
/// `multiprocessing.set_start_method` chosen from outside.
///
/// `--start-method fork|spawn|forkserver` sets the start method
/// ([`set_start_method`](crate::set_start_method)); `--timeline` records what every process of
/// the run does and draws it on stderr when `main` returns (`--timeline=FILE.json` writes it
/// for Perfetto instead; see the crate's [timeline section](crate#timeline)); `-h`/`--help`
/// prints a usage in Portuguese and exits with code 0; anything else prints what was wrong and
/// the accepted options on stderr and exits with code 2, as Python's `argparse` does, so that
/// a learner never runs the lesson believing an option was taken. Under `cargo run`, the usage
/// says what the program shows: its package's `description`.
///
/// # Errors
/// None in practice: it reports a bad command line itself, with exit code 2, and so a timeline
/// file it cannot create. The `Result` keeps `shared::lesson::init()?` one line.
pub fn init() -> Result<(), ArgumentError> {
    init_with(&[]).map(drop)
}

/// [`init`] for a lesson that also takes `options`: returns the values given to them. In a
/// child process (which runs only its target) it returns no values.
///
/// # Errors
/// As [`init`].
pub fn init_with(options: &[ProgramOption]) -> Result<ProgramArgs, ArgumentError> {
    quiet_on_broken_stdout();
    let program = program_name();
    if let Err(error) = crate::init() {
        eprintln!("{program}: {error}");
        std::process::exit(2)
    }
    if crate::parent_process().is_some() {
        // A child's command line is its parent's or the spawn's, not the learner's, and its
        // parent set everything up already.
        return Ok(ProgramArgs::default());
    }
    match parse_args_with(std::env::args_os().skip(1), options) {
        Ok((
            Invocation::Run {
                start_method,
                timeline,
            },
            values,
        )) => {
            if let Some(method) = start_method {
                crate::set_start_method(method);
            }
            if let Some(output) = timeline {
                start_timeline(&program, output);
            }
            Ok(values)
        }
        Ok((Invocation::Help, _)) => {
            let about = std::env::var("CARGO_PKG_DESCRIPTION").ok();
            print!("{}", usage(&program, about.as_deref(), options));
            let _ = std::io::Write::flush(&mut std::io::stdout());
            std::process::exit(0)
        }
        Err(error) => argument_error(&error.to_string()),
    }
}

/// Makes a lesson whose stdout was closed by its reader (`| head -2`) stop, quietly.
/// `println!` panics on a broken pipe (Rust ignores SIGPIPE), which in every child would print
/// `failed printing to stdout: Broken pipe` for lines nobody reads; and a main process blocked
/// in `join()` on a child that died so would wait for ever (lesson 04's `queue.join()` does,
/// as CPython's does). So the panic prints nothing, and a child also ends its parent, the
/// lesson's main process, with SIGTERM: nobody reads the lesson any more. The panic still
/// ends the process (exit code 1 in a child, 101 in `main`). Installed before the guard, so
/// that spawned and forkserved children have it too; forked ones inherit it.
fn quiet_on_broken_stdout() {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let message = info
            .payload()
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| info.payload().downcast_ref::<&str>().copied());
        let broken_stdout = message.is_some_and(|message| {
            message.starts_with("failed printing to stdout") && message.contains("Broken pipe")
        });
        if !broken_stdout {
            previous(info);
        } else if let Some(parent) = crate::parent_process()
            && parent.is_alive()
        {
            // Alive: a parent that ended gave its PID back, and nothing is sent to it. The
            // process that started this one is the lesson's own main process.
            let _ = crate::sys::process::send(parent.pid(), crate::sys::process::Stop::Terminate);
        }
    }));
}

/// Ends a lesson whose command line makes no sense, as [`init_with`] does for one it cannot
/// parse: `message` and a pointer to `--help` on stderr, exit code 2, before the lesson runs.
/// For a rule between a lesson's own options (`--ouvir` and `--conectar` together).
pub fn argument_error(message: &str) -> ! {
    let program = program_name();
    eprintln!("{program}: {message}\nUse `{program} --help` para ver as opções.");
    std::process::exit(2)
}

/// Starts the timeline `--timeline` asked for, or ends the program with exit code 2 before the
/// lesson runs: a file that cannot be written is told now, not after the run.
fn start_timeline(program: &str, output: TimelineOutput) {
    if let TimelineOutput::Json(path) = &output
        && let Err(error) = std::fs::File::create(path)
    {
        eprintln!(
            "{program}: --timeline: não consigo criar o arquivo {}: {error}",
            path.display()
        );
        std::process::exit(2)
    }
    if let Err(error) = crate::timeline::record_in(output, crate::timeline::Language::Portuguese) {
        eprintln!("{program}: --timeline: {error}");
        std::process::exit(2)
    }
}

/// The text `--help` prints for `program`; `about` says what the program shows, `options`
/// are its own.
pub(crate) fn usage(program: &str, about: Option<&str>, options: &[ProgramOption]) -> String {
    let about = wrap(
        about.unwrap_or(
            "Uma lição do curso de processos: o README.md da lição explica o que ela mostra.",
        ),
        USAGE_WIDTH,
    );
    let synopsis = synopsis(program, options);
    let own: String = options.iter().map(option_help).collect();
    format!(
        "{synopsis}\n\
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
         \x20 --timeline                 depois da execução, desenha em stderr o que cada processo\n\
         \x20                            fez, e quando: uma coluna por processo\n\
         \x20 --timeline=ARQUIVO.json    grava a linha do tempo para o Perfetto (ui.perfetto.dev)\n\
         {own}\
         \x20 -h, --help                 mostra esta ajuda e sai\n"
    )
}

/// The course's options as the usage's first line and the error messages name them.
const START_METHOD: &str = "--start-method fork|spawn|forkserver";
const TIMELINE: &str = "--timeline[=ARQUIVO.json]";

/// The usage's first line, `Uso: PROGRAM [--start-method ...] [--timeline...] [--NAME
/// VALUE]...`, continued on lines of their own, indented, where it would pass `USAGE_WIDTH`.
fn synopsis(program: &str, options: &[ProgramOption]) -> String {
    let mut text = format!("Uso: {program} [{START_METHOD}]");
    let indent = " ".repeat("Uso: ".len() + program.chars().count());
    let mut line_len = text.chars().count();
    let own = options
        .iter()
        .map(|option| format!(" [--{} {}]", option.name, option.value));
    for part in std::iter::once(format!(" [{TIMELINE}]")).chain(own) {
        if line_len + part.chars().count() > USAGE_WIDTH {
            text += &format!("\n{indent}");
            line_len = indent.chars().count();
        }
        line_len += part.chars().count();
        text += &part;
    }
    text
}

/// A program option's lines in the usage: the option, then its help in the column of the
/// others' help.
fn option_help(option: &ProgramOption) -> String {
    const HELP_COLUMN: usize = 29;
    let name = format!("--{} {}", option.name, option.value);
    let help = wrap(option.help, USAGE_WIDTH - HELP_COLUMN);
    let mut text = String::new();
    for (i, line) in help.lines().enumerate() {
        let left = if i == 0 { name.as_str() } else { "" };
        let pad = (HELP_COLUMN - 2)
            .saturating_sub(left.chars().count())
            .max(1);
        text += &format!("  {left}{}{line}\n", " ".repeat(pad));
    }
    text
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
pub enum ArgumentError {
    /// An argument or option that the program does not take.
    UnknownArgument {
        /// The argument, as given.
        argument: String,
        /// The options the program takes, for the message.
        accepted: String,
    },
    /// `--start-method` was given a name other than `fork`, `spawn` or `forkserver`.
    UnknownStartMethod(String),
    /// `--start-method` was the last argument.
    MissingStartMethod,
    /// A program's own option was the last argument.
    MissingValue {
        /// The option.
        option: String,
        /// What its value is (`ENDEREÇO`).
        value: String,
    },
    /// An option that takes no value was given one (`--help=x`).
    UnexpectedValue {
        /// The option.
        option: String,
        /// The value it was given.
        value: String,
    },
    /// An argument is not valid UTF-8 (shown with replacement characters).
    NotUnicode(String),
    /// `--timeline=` was given an empty file name.
    EmptyTimelineFile,
}

impl ArgumentError {
    fn from_lexopt(error: lexopt::Error) -> ArgumentError {
        match error {
            lexopt::Error::UnexpectedValue { option, value } => ArgumentError::UnexpectedValue {
                option,
                value: value.to_string_lossy().into_owned(),
            },
            lexopt::Error::NonUnicodeValue(value) => {
                ArgumentError::NotUnicode(value.to_string_lossy().into_owned())
            }
            other => ArgumentError::UnknownArgument {
                argument: other.to_string(),
                accepted: accepted(&[]),
            },
        }
    }
}

/// Every start method's name, as a learner types it.
const METHODS: &str = "`fork`, `spawn` ou `forkserver`";

impl fmt::Display for ArgumentError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ArgumentError::UnknownArgument { argument, .. }
                if ["fork", "spawn", "forkserver"].contains(&argument.as_str()) =>
            {
                write!(
                    f,
                    "argumento desconhecido `{argument}`: quis dizer `--start-method {argument}`?"
                )
            }
            ArgumentError::UnknownArgument { argument, .. } if argument.ends_with(".json") => {
                write!(
                    f,
                    "argumento desconhecido `{argument}`: quis dizer `--timeline={argument}`?"
                )
            }
            ArgumentError::UnknownArgument { argument, accepted } => {
                write!(
                    f,
                    "argumento desconhecido `{argument}`: as opções aceitas são {accepted}"
                )
            }
            ArgumentError::UnknownStartMethod(name) if name.is_empty() => {
                write!(f, "`--start-method` recebeu um valor vazio: use {METHODS}")
            }
            ArgumentError::UnknownStartMethod(name) => {
                write!(f, "método de início desconhecido `{name}`: use {METHODS}")
            }
            ArgumentError::MissingStartMethod => {
                write!(f, "`--start-method` precisa de um valor: {METHODS}")
            }
            ArgumentError::MissingValue { option, value } => {
                write!(f, "`{option}` precisa de um valor: `{option} {value}`")
            }
            ArgumentError::UnexpectedValue { option, value } => {
                write!(f, "`{option}` não aceita valor, e recebeu `{value}`")
            }
            ArgumentError::NotUnicode(argument) => {
                write!(f, "o argumento `{argument}` não é texto UTF-8 válido")
            }
            ArgumentError::EmptyTimelineFile => {
                f.write_str("`--timeline=` precisa de um nome de arquivo, como `--timeline=t.json`")
            }
        }
    }
}

impl std::error::Error for ArgumentError {}

crate::debug_as_display!(ArgumentError);

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Invocation, ArgumentError> {
        parse_args(args.iter().map(OsString::from))
    }

    fn run(start_method: Option<StartMethod>) -> Result<Invocation, ArgumentError> {
        Ok(Invocation::Run {
            start_method,
            timeline: None,
        })
    }

    #[test]
    fn timeline_with_and_without_a_file() {
        let timeline = |args: &[&str]| match parse(args) {
            Ok(Invocation::Run { timeline, .. }) => timeline,
            other => panic!("{other:?}"),
        };
        assert_eq!(timeline(&["--timeline"]), Some(TimelineOutput::Drawing));
        assert_eq!(
            timeline(&["--timeline=a.json", "--start-method", "forkserver"]),
            Some(TimelineOutput::Json("a.json".into()))
        );
        assert_eq!(
            parse(&["--timeline="]),
            Err(ArgumentError::EmptyTimelineFile)
        );
        let error = parse(&["--timeline", "a.json"]).unwrap_err().to_string();
        assert!(error.contains("quis dizer `--timeline=a.json`"), "{error}");
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
            Err(ArgumentError::MissingStartMethod)
        );
        assert!(message(&["--help=x"]).contains("`x`"));
    }

    #[test]
    fn usage_names_the_program_and_every_option() {
        let text = usage("lesson01-processes", Some("Lição 01."), &[]);
        // Past the width, `--timeline` goes on a line of its own, under the options.
        assert!(
            text.starts_with(
                "Uso: lesson01-processes [--start-method fork|spawn|forkserver]\n\
                 \x20                       [--timeline[=ARQUIVO.json]]\n"
            ),
            "{text}"
        );
        assert!(text.contains("--timeline=ARQUIVO.json"));
        assert!(text.contains("\nLição 01.\n"));
        assert!(
            text.contains("--start-method fork|spawn|forkserver") && text.contains("-h, --help")
        );
        assert!(text.contains("forkserver: "));
        assert!(usage("x", None, &[]).contains("README.md"));
        let long = "palavra ".repeat(40);
        let text = usage("lesson06-pool", Some(&long), &[]);
        assert!(
            text.lines().all(|line| line.chars().count() <= USAGE_WIDTH),
            "{text}"
        );
    }

    const OUVIR: ProgramOption = ProgramOption {
        name: "ouvir",
        value: "ENDEREÇO",
        help: "espera a outra pessoa neste endereço, que outro terminal usa com --conectar; \
               um endereço @nome não cria arquivo",
    };
    const CONECTAR: ProgramOption = ProgramOption {
        name: "conectar",
        value: "ENDEREÇO",
        help: "liga para quem espera neste endereço",
    };

    fn parse_own(args: &[&str]) -> Result<(Invocation, ProgramArgs), ArgumentError> {
        parse_args_with(args.iter().map(OsString::from), &[OUVIR, CONECTAR])
    }

    #[test]
    fn program_options_take_values_beside_the_start_method() {
        let (run, values) = parse_own(&["--ouvir", "@a", "--start-method=spawn"]).unwrap();
        assert_eq!(
            run,
            Invocation::Run {
                start_method: Some(StartMethod::Spawn),
                timeline: None,
            }
        );
        assert_eq!(
            (values.get("ouvir"), values.get("conectar")),
            (Some("@a"), None)
        );
        let (_, values) = parse_own(&["--conectar=/tmp/c", "--conectar", "@b"]).unwrap();
        assert_eq!(values.get("conectar"), Some("@b"), "the last one wins");
        assert_eq!(parse_own(&[]).unwrap().1, ProgramArgs::default());
    }

    #[test]
    fn program_option_errors_are_portuguese_and_list_every_option() {
        let message = |args: &[&str]| parse_own(args).unwrap_err().to_string();
        assert_eq!(
            message(&["--falar"]),
            "argumento desconhecido `--falar`: as opções aceitas são --start-method fork|spawn|forkserver, \
             --timeline[=ARQUIVO.json], --ouvir ENDEREÇO, --conectar ENDEREÇO e -h/--help"
        );
        assert_eq!(
            message(&["--ouvir"]),
            "`--ouvir` precisa de um valor: `--ouvir ENDEREÇO`"
        );
        assert!(message(&["spawn"]).contains("quis dizer `--start-method spawn`"));
        // A program without options of its own does not take them.
        let error = parse(&["--ouvir", "@a"]).unwrap_err().to_string();
        assert_eq!(
            error,
            "argumento desconhecido `--ouvir`: as opções aceitas são --start-method fork|spawn|forkserver, \
             --timeline[=ARQUIVO.json] e -h/--help"
        );
    }

    #[test]
    fn usage_shows_program_options_in_the_help_column() {
        let text = usage("lesson03-pipe", None, &[OUVIR, CONECTAR]);
        assert!(
            text.starts_with(
                "Uso: lesson03-pipe [--start-method fork|spawn|forkserver] [--timeline[=ARQUIVO.json]]\n\
                 \x20                  [--ouvir ENDEREÇO] [--conectar ENDEREÇO]\n"
            ),
            "{text}"
        );
        assert!(
            text.contains("\n  --conectar ENDEREÇO        liga para quem espera"),
            "{text}"
        );
        let ouvir: Vec<&str> = text
            .lines()
            .skip_while(|l| !l.starts_with("  --ouvir "))
            .take(2)
            .collect();
        // The help starts in column 29, as the course's options' help does.
        let left: String = ouvir[0].chars().take(29).collect();
        assert_eq!(left, format!("  {:<27}", "--ouvir ENDEREÇO"), "{text}");
        assert_eq!(ouvir[0].chars().nth(29), Some('e'), "{text}");
        assert!(ouvir[1].starts_with(&" ".repeat(29)), "{text}");
        assert!(
            text.lines().all(|line| line.chars().count() <= USAGE_WIDTH),
            "{text}"
        );
    }
}
