//! The one line a workload process prints: `elapsed_s=0.123 ops=200 maxrss_kib=2048`.

use std::fmt;
use std::time::Duration;

use crate::catalogue::Workload;

/// Every run of one workload, per side, in round order.
#[derive(Debug)]
/// (Here, with what it holds, rather than in the harness that fills it: the report reads it,
/// and the harness calls the report.)
pub struct Results {
    /// The workload.
    pub workload: &'static Workload,
    /// The Rust side's runs that succeeded.
    pub rust: Vec<Measurement>,
    /// The Python side's runs that succeeded (none when Python is absent).
    pub python: Vec<Measurement>,
}

/// What one run of a workload measured, in its own main process.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Measurement {
    /// Seconds spent in the workload proper (interpreter or program start-up excluded).
    pub elapsed_s: f64,
    /// Operations done: processes, items, round trips or tasks.
    pub ops: u64,
    /// Peak resident set size of the workload's main process (`ru_maxrss`, KiB).
    pub maxrss_kib: u64,
}

impl Measurement {
    /// A measurement of `ops` operations in `elapsed`, with this process's peak RSS.
    pub fn of_this_process(elapsed: Duration, ops: u64) -> Measurement {
        Measurement {
            elapsed_s: elapsed.as_secs_f64(),
            ops,
            maxrss_kib: own_peak_rss_kib(),
        }
    }

    /// Finds the measurement line in a workload's standard output (the last one wins).
    ///
    /// # Errors
    /// A message when no line has all three fields, or a value does not parse.
    pub fn find_in(output: &str) -> Result<Measurement, String> {
        let line = output
            .lines()
            .rev()
            .find(|line| line.starts_with("elapsed_s="))
            .ok_or_else(|| format!("no `elapsed_s=` line in the output: {output:?}"))?;
        Measurement::parse(line)
    }

    /// Parses `elapsed_s=F ops=N maxrss_kib=N` (fields in any order, unknown ones ignored).
    ///
    /// # Errors
    /// A message naming the missing or malformed field.
    pub fn parse(line: &str) -> Result<Measurement, String> {
        Ok(Measurement {
            elapsed_s: field(line, "elapsed_s")?,
            ops: field(line, "ops")?,
            maxrss_kib: field(line, "maxrss_kib")?,
        })
    }
}

impl Measurement {
    /// Two runs as one: their times and operations added, the larger peak RSS.
    pub fn and(&self, other: &Measurement) -> Measurement {
        Measurement {
            elapsed_s: self.elapsed_s + other.elapsed_s,
            ops: self.ops + other.ops,
            maxrss_kib: self.maxrss_kib.max(other.maxrss_kib),
        }
    }
}

impl fmt::Display for Measurement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "elapsed_s={:.9} ops={} maxrss_kib={}",
            self.elapsed_s, self.ops, self.maxrss_kib
        )
    }
}

fn field<T: std::str::FromStr>(line: &str, key: &str) -> Result<T, String> {
    let value = line
        .split_whitespace()
        .find_map(|pair| pair.strip_prefix(key)?.strip_prefix('='))
        .ok_or_else(|| format!("no `{key}=` in {line:?}"))?;
    value
        .parse()
        .map_err(|_| format!("`{key}={value}` is not a number"))
}

/// This process's peak resident set size in KiB (0 if the system will not say).
fn own_peak_rss_kib() -> u64 {
    use nix::sys::resource::{UsageWho, getrusage};
    getrusage(UsageWho::RUSAGE_SELF).map_or(0, |usage| u64::try_from(usage.max_rss()).unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_round_trips() {
        let measurement = Measurement {
            elapsed_s: 0.25,
            ops: 200,
            maxrss_kib: 2048,
        };
        assert_eq!(
            Measurement::parse(&measurement.to_string()),
            Ok(measurement)
        );
    }

    #[test]
    fn the_line_is_found_among_other_output() {
        let output = "hello\nelapsed_s=1.5 ops=3 maxrss_kib=10 extra=1\n";
        let found = Measurement::find_in(output).unwrap();
        assert_eq!((found.elapsed_s, found.ops, found.maxrss_kib), (1.5, 3, 10));
    }

    #[test]
    fn a_missing_field_is_named() {
        let error = Measurement::parse("elapsed_s=1 ops=2").unwrap_err();
        assert!(error.contains("maxrss_kib"), "{error}");
    }
}
