//! `bench [--rounds N] [--only NAME[,NAME...]] [--python PATH] [--list]`.

use crate::catalogue::WORKLOADS;

/// The rounds run by default.
pub const DEFAULT_ROUNDS: usize = 5;

/// What the command line asked for.
#[derive(Clone, Debug, PartialEq)]
pub struct Options {
    /// How many times each workload runs on each side.
    pub rounds: usize,
    /// Workload names or prefixes to run; empty runs all.
    pub only: Vec<String>,
    /// The Python interpreter.
    pub python: String,
}

/// What to do after reading the command line.
#[derive(Debug, PartialEq)]
pub enum Command {
    /// Run the benchmark.
    Run(Options),
    /// Print this text and stop (`--help`, `--list`).
    Print(String),
}

impl Options {
    /// Reads the arguments after the program name.
    ///
    /// # Errors
    /// An unknown option, a missing or invalid value.
    pub fn parse(args: &[String]) -> Result<Command, String> {
        let mut options = Options {
            rounds: DEFAULT_ROUNDS,
            only: Vec::new(),
            python: "python3".to_owned(),
        };
        let mut args = args.iter();
        while let Some(arg) = args.next() {
            let (name, inline) = match arg.split_once('=') {
                Some((name, value)) => (name, Some(value.to_owned())),
                None => (arg.as_str(), None),
            };
            let mut value = || inline.clone().or_else(|| args.next().cloned());
            match name {
                "--rounds" => options.rounds = parse_rounds(value())?,
                "--only" => options.only.extend(split_names(value())?),
                "--python" => options.python = value().ok_or("--python needs a path")?,
                "--list" => return Ok(Command::Print(list())),
                "--help" | "-h" => return Ok(Command::Print(USAGE.to_owned())),
                other => return Err(format!("unknown option `{other}`\n\n{USAGE}")),
            }
        }
        Ok(Command::Run(options))
    }
}

const USAGE: &str = "\
usage: cargo run --release -p bench -- [--rounds N] [--only NAME[,NAME...]] [--python PATH]
       cargo run --release -p bench -- --list

Runs each workload N times (default 5) in shared and in CPython's multiprocessing,
alternating the two, and prints medians, ratios and peak RSS. --only takes workload names
or prefixes (`--only queue` runs every queue workload).
";

fn parse_rounds(value: Option<String>) -> Result<usize, String> {
    let value = value.ok_or("--rounds needs a number")?;
    match value.parse() {
        Ok(rounds) if rounds > 0 => Ok(rounds),
        _ => Err(format!("--rounds needs a positive number, not `{value}`")),
    }
}

fn split_names(value: Option<String>) -> Result<Vec<String>, String> {
    let value = value.ok_or("--only needs a workload name (see --list)")?;
    Ok(value
        .split(',')
        .filter(|name| !name.is_empty())
        .map(str::to_owned)
        .collect())
}

fn list() -> String {
    WORKLOADS
        .iter()
        .map(|workload| format!("{:<18} {}\n", workload.name, workload.title))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Command, String> {
        Options::parse(&args.iter().map(|&a| a.to_owned()).collect::<Vec<_>>())
    }

    fn options(args: &[&str]) -> Options {
        match parse(args) {
            Ok(Command::Run(options)) => options,
            other => panic!("expected options, got {other:?}"),
        }
    }

    #[test]
    fn defaults() {
        let options = options(&[]);
        assert_eq!(options.rounds, DEFAULT_ROUNDS);
        assert!(options.only.is_empty());
        assert_eq!(options.python, "python3");
    }

    #[test]
    fn rounds_and_only_in_both_spellings() {
        let options = options(&[
            "--rounds",
            "3",
            "--only=queue_1m,pipe",
            "--only",
            "joinable",
        ]);
        assert_eq!(options.rounds, 3);
        assert_eq!(options.only, ["queue_1m", "pipe", "joinable"]);
    }

    #[test]
    fn bad_input_is_refused() {
        assert!(parse(&["--rounds", "0"]).is_err());
        assert!(parse(&["--rounds"]).is_err());
        assert!(parse(&["--fast"]).is_err());
    }
}
