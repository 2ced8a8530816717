//! `bench [--rounds N] [--only NAME[,NAME...]] [--python PATH] [--cpus N] [--busy K] [--list]`.

use std::time::Duration;

use super::contention::Contention;
use crate::catalogue::WORKLOADS;

/// The rounds run by default.
pub const DEFAULT_ROUNDS: usize = 5;

/// The shortest round by default: half a second of timed work per side.
pub const DEFAULT_MIN_ROUND: Duration = Duration::from_millis(500);

/// What the command line asked for.
#[derive(Clone, Debug, PartialEq)]
pub struct Options {
    /// How many times each workload runs on each side.
    pub rounds: usize,
    /// Workload names or prefixes to run; empty runs all.
    pub only: Vec<String>,
    /// The Python interpreter.
    pub python: String,
    /// `--cpus`, `--busy`: the contention mode (the default is none).
    pub contention: Contention,
    /// `--min-round SECONDS`: a round of one side runs its workload again until the runs have
    /// timed this much between them, so that every round of either side is a window of at
    /// least this length (see bench/README.md, "Rounds of half a second").
    pub min_round: Duration,
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
            contention: Contention::default(),
            min_round: DEFAULT_MIN_ROUND,
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
                "--cpus" => options.contention.cpus = Some(parse_positive("--cpus", value())?),
                "--busy" => options.contention.busy = parse_count("--busy", value())?,
                "--min-round" => options.min_round = parse_seconds("--min-round", value())?,
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
                                        [--cpus N] [--busy K] [--min-round SECONDS]
       cargo run --release -p bench -- --list

Runs each workload N times (default 5) in shared and in CPython's multiprocessing,
alternating the two, and prints medians, ratios and peak RSS. --only takes workload names
or prefixes (`--only queue` runs every queue workload).

Contention mode: --cpus N pins both sides (and every process they start) to the same N
CPUs; --busy K runs K busy processes (spin loops at normal priority) beside them for the
whole run, on those CPUs when pinned. The report says which mode it ran in.

A round of one side runs its workload again until the runs have timed --min-round seconds
between them (default 0.5; at most 64 runs), and counts them as one: a round shorter than
the scheduler's placement of three processes on two CPUs measures that placement.
--min-round 0 makes every round one run.
";

fn parse_rounds(value: Option<String>) -> Result<usize, String> {
    parse_positive("--rounds", value)
}

fn parse_positive(option: &str, value: Option<String>) -> Result<usize, String> {
    match parse_count(option, value)? {
        0 => Err(format!("{option} needs a positive number, not `0`")),
        count => Ok(count),
    }
}

fn parse_count(option: &str, value: Option<String>) -> Result<usize, String> {
    let value = value.ok_or_else(|| format!("{option} needs a number"))?;
    value
        .parse()
        .map_err(|_| format!("{option} needs a positive number, not `{value}`"))
}

fn parse_seconds(option: &str, value: Option<String>) -> Result<Duration, String> {
    let value = value.ok_or_else(|| format!("{option} needs a number of seconds"))?;
    value
        .parse::<f64>()
        .ok()
        .and_then(|seconds| Duration::try_from_secs_f64(seconds).ok())
        .filter(|duration| *duration <= Duration::from_secs(60))
        .ok_or_else(|| format!("{option} needs a number of seconds from 0 to 60, not `{value}`"))
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
        assert!(parse(&["--cpus", "0"]).is_err());
        assert!(parse(&["--busy", "-1"]).is_err());
        assert!(parse(&["--min-round", "-1"]).is_err());
        assert!(parse(&["--min-round", "NaN"]).is_err());
        assert!(parse(&["--min-round", "61"]).is_err());
        assert!(parse(&["--min-round"]).is_err());
    }

    #[test]
    fn min_round_in_seconds() {
        assert_eq!(options(&[]).min_round, DEFAULT_MIN_ROUND);
        assert_eq!(options(&["--min-round", "0"]).min_round, Duration::ZERO);
        assert_eq!(
            options(&["--min-round=1.5"]).min_round,
            Duration::from_millis(1500)
        );
    }

    #[test]
    fn contention_options() {
        assert_eq!(options(&[]).contention, Contention::default());
        let options = options(&["--cpus", "1", "--busy=2"]);
        assert_eq!(
            options.contention,
            Contention {
                cpus: Some(1),
                busy: 2
            }
        );
    }
}
