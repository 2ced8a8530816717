//! The results: a speed table, then a peak-RSS table, each with a few lines of notes. The tables
//! are Markdown, so they can be pasted into a README, and padded so that they line up as plain
//! text; every line fits in [`MAX_COLUMNS`].

use crate::catalogue::{Metric, RSS_TARGET, RSS_WORKLOAD, RUST_BUDGETS, THREAD_TWINS};
use crate::measurement::{Measurement, Results};
use crate::stats::{self, Summary};

/// Where the figures come from and how they were obtained, for the lines around the tables.
#[derive(Debug)]
pub struct Environment {
    /// Kernel, architecture and CPU model: `Linux 6.8.0-45-generic x86_64, Intel(R) ...`.
    pub machine: String,
    /// The day of the run (UTC), `2025-03-14`, if the clock says.
    pub date: Option<String>,
    /// Rounds per side.
    pub rounds: usize,
    /// CPUs this run could use.
    pub cpus: usize,
    /// `CPython 3.x.y`, or `None` when the Python side did not run.
    pub python_version: Option<String>,
    /// The CPU pinned workloads ran on.
    pub pinned_cpu: Option<usize>,
    /// The contention mode (`--cpus`, `--busy`), as the report says it.
    pub mode: String,
}

/// The speed table's columns. Rust and Python cells are the median (min–max) over the rounds.
const SPEED_HEADER: [&str; 6] = [
    "workload",
    "unit",
    "Rust (min–max)",
    "Python (min–max)",
    "ratio",
    "target",
];

/// The peak-RSS table's columns.
const RSS_HEADER: [&str; 5] = [
    "workload",
    "Rust MiB (min–max)",
    "Python MiB (min–max)",
    "Python ÷ Rust",
    "target",
];

/// The raw-limit table's columns: each raw limit, then the workloads read against it.
const RAW_HEADER: [&str; 5] = ["workload", "unit", "Rust (min–max)", "× raw", "target"];

/// The widest line the output may have, so that it reads in a terminal or a plain-text file.
pub const MAX_COLUMNS: usize = 120;

/// How many targets were shown, and how many of them were missed.
#[derive(Debug, Default)]
struct Tally {
    shown: usize,
    missed: usize,
}

/// Where the figures come from, the speed table and its notes, then the peak-RSS table and its
/// notes, and how many targets were missed.
pub fn render(results: &[Results], environment: &Environment) -> String {
    let mut tally = Tally::default();
    let compared = || results.iter().filter(|entry| !entry.workload.raw_limit);
    let mut speed = Vec::new();
    for entry in compared() {
        speed.extend(speed_rows(entry, &mut tally));
    }
    let raw = raw_rows(results, &mut tally);
    let mut rss: Vec<Vec<String>> = compared().map(rss_row).collect();
    if let Some(entry) = results.iter().find(|e| e.workload.name == RSS_WORKLOAD) {
        rss.push(lesson_like_row(entry, &mut tally));
    }
    let mut text = sources(environment);
    text += "\n";
    text += &markdown_table(&SPEED_HEADER, &speed);
    text += &speed_notes(environment);
    text += &thread_twin_notes(results);
    text += &budget_notes(results, &mut tally);
    if !raw.is_empty() {
        text += "\n";
        text += &markdown_table(&RAW_HEADER, &raw);
        text += RAW_NOTES;
    }
    text += "\n";
    text += &markdown_table(&RSS_HEADER, &rss);
    text += &rss_notes();
    text += &summary(environment, &tally);
    text
}

/// A workload's speed row (two for byte workloads: MB/s, then items/s).
fn speed_rows(entry: &Results, tally: &mut Tally) -> Vec<Vec<String>> {
    let workload = entry.workload;
    let rust = summarize(&entry.rust, workload.metric);
    let python = summarize(&entry.python, workload.metric);
    let ratio = rust.zip(python).map(|(rust, python)| {
        stats::speed_ratio(
            rust.median,
            python.median,
            workload.metric.higher_is_better(),
        )
    });
    let target = workload.target.map_or_else(dash, |target| {
        judged(format!("≥ {target}×"), verdict(ratio, target, tally))
    });
    let mut rows = vec![vec![
        workload.title.to_owned(),
        workload.unit.to_owned(),
        cell(rust),
        cell(python),
        ratio.map_or_else(dash, times),
        target,
    ]];
    if let Metric::MegabytesPerSecond { .. } = workload.metric {
        rows.push(items_row(entry));
    }
    rows
}

/// Each raw limit that ran, then the workloads read against it, as multiples of it.
fn raw_rows(results: &[Results], tally: &mut Tally) -> Vec<Vec<String>> {
    let mut rows = Vec::new();
    for raw in results.iter().filter(|entry| entry.workload.raw_limit) {
        let metric = raw.workload.metric;
        let limit = summarize(&raw.rust, metric);
        rows.push(vec![
            raw.workload.title.to_owned(),
            raw.workload.unit.to_owned(),
            cell(limit),
            dash(),
            dash(),
        ]);
        let readers = results.iter().filter_map(|entry| {
            let (name, target) = entry.workload.raw?;
            (name == raw.workload.name).then_some((entry, target))
        });
        for (entry, target) in readers {
            let rust = summarize(&entry.rust, metric);
            // How many times slower than the limit: the limit's speed ÷ Rust's.
            let times_raw = limit.zip(rust).map(|(limit, rust)| {
                stats::speed_ratio(limit.median, rust.median, metric.higher_is_better())
            });
            let target = target.map_or_else(dash, |target| {
                judged(
                    format!("≤ {target}×"),
                    verdict_within(times_raw, target, tally),
                )
            });
            rows.push(vec![
                entry.workload.title.to_owned(),
                entry.workload.unit.to_owned(),
                cell(rust),
                times_raw.map_or_else(dash, multiple),
                target,
            ]);
        }
    }
    rows
}

const RAW_NOTES: &str = "\nraw: a raw limit, system calls alone in Rust (no `shared`), explained in bench/README.md.\n\
     × raw = the workload's Rust time ÷ its raw limit's, from the medians: what `shared` adds.\n";

/// The items/s under a byte workload's MB/s.
fn items_row(entry: &Results) -> Vec<String> {
    let rust = summarize(&entry.rust, Metric::OpsPerSecond);
    let python = summarize(&entry.python, Metric::OpsPerSecond);
    let mut row = vec![
        String::new(),
        "items/s".to_owned(),
        cell(rust),
        cell(python),
    ];
    row.resize(SPEED_HEADER.len(), String::new());
    row
}

/// A workload's peak RSS on each side, and Python ÷ Rust.
fn rss_row(entry: &Results) -> Vec<String> {
    let (rust, python, ratio) = rss_figures(entry);
    vec![
        entry.workload.title.to_owned(),
        cell(rust),
        cell(python),
        ratio.map_or_else(dash, times),
        dash(),
    ]
}

/// Peak RSS of a lesson-like main process (start one child, join it), with its target.
fn lesson_like_row(entry: &Results, tally: &mut Tally) -> Vec<String> {
    let (rust, python, ratio) = rss_figures(entry);
    vec![
        "lesson-like main process".to_owned(),
        cell(rust),
        cell(python),
        ratio.map_or_else(dash, times),
        judged("≤ ¼".to_owned(), verdict(ratio, RSS_TARGET, tally)),
    ]
}

fn rss_figures(entry: &Results) -> (Option<Summary>, Option<Summary>, Option<f64>) {
    let rust = rss_summary(&entry.rust);
    let python = rss_summary(&entry.python);
    let ratio = rust
        .zip(python)
        .map(|(rust, python)| python.median / rust.median);
    (rust, python, ratio)
}

/// "met" or "missed", counted in `tally`; empty when there is no ratio to judge.
fn verdict(ratio: Option<f64>, target: f64, tally: &mut Tally) -> &'static str {
    let Some(ratio) = ratio else { return "" };
    tally.shown += 1;
    if ratio >= target {
        "met"
    } else {
        tally.missed += 1;
        "missed"
    }
}

/// For a multiple that should stay within `target`: "met" or "missed", counted in `tally`;
/// empty when there is no multiple to judge.
fn verdict_within(multiple: Option<f64>, target: f64, tally: &mut Tally) -> &'static str {
    let Some(multiple) = multiple else { return "" };
    tally.shown += 1;
    if multiple <= target {
        "met"
    } else {
        tally.missed += 1;
        "missed"
    }
}

/// A multiple of a raw limit, with two decimals below 10: `1.27×`, `12.3×`.
fn multiple(value: f64) -> String {
    if value < 9.995 {
        format!("{value:.2}×")
    } else {
        times(value)
    }
}

/// A target and its verdict, in one cell: `≥ 8× met`; the target alone when there is none.
fn judged(target: String, verdict: &str) -> String {
    if verdict.is_empty() {
        target
    } else {
        format!("{target} {verdict}")
    }
}

/// A ratio with three significant figures at most: `2.5×`, `12.3×`, `143×`.
fn times(ratio: f64) -> String {
    if ratio < 99.95 {
        format!("{ratio:.1}×")
    } else {
        format!("{ratio:.0}×")
    }
}

fn summarize(measurements: &[Measurement], metric: Metric) -> Option<Summary> {
    let values: Vec<f64> = measurements
        .iter()
        .map(|m| metric.value(m.elapsed_s, m.ops))
        .collect();
    Summary::of(&values)
}

fn rss_summary(measurements: &[Measurement]) -> Option<Summary> {
    let mebibytes: Vec<f64> = measurements
        .iter()
        .map(|m| m.maxrss_kib as f64 / 1024.0)
        .collect();
    Summary::of(&mebibytes)
}

fn cell(summary: Option<Summary>) -> String {
    summary.map_or_else(dash, |s| {
        format!("{} ({}–{})", number(s.median), number(s.min), number(s.max))
    })
}

fn dash() -> String {
    "—".to_owned()
}

/// Three significant figures, with k and M for large values: at most five characters for
/// anything below a thousand million, so the table's columns have a known width.
pub fn number(value: f64) -> String {
    // Round first, then pick the format from the rounded value: 9.996 is "10.0", not "10.00".
    let value = three_significant_figures(value);
    match value.abs() {
        v if v >= 1e8 => format!("{:.0}M", value / 1e6),
        v if v >= 1e7 => format!("{:.1}M", value / 1e6),
        v if v >= 1e6 => format!("{:.2}M", value / 1e6),
        v if v >= 1e5 => format!("{:.0}k", value / 1e3),
        v if v >= 1e4 => format!("{:.1}k", value / 1e3),
        v if v >= 100.0 => format!("{value:.0}"),
        v if v >= 10.0 => format!("{value:.1}"),
        v if v >= 1.0 => format!("{value:.2}"),
        _ => format!("{value:.3}"),
    }
}

fn three_significant_figures(value: f64) -> f64 {
    if value == 0.0 || !value.is_finite() {
        return value;
    }
    let scale = 10f64.powi(value.abs().log10().floor() as i32 - 2);
    (value / scale).round() * scale
}

/// A Markdown table whose columns are padded to line up in plain text too.
fn markdown_table(header: &[&str], rows: &[Vec<String>]) -> String {
    let width = |column: usize| {
        rows.iter()
            .map(|row| row[column].chars().count())
            .chain([header[column].chars().count()])
            .max()
            .unwrap_or(0)
    };
    let widths: Vec<usize> = (0..header.len()).map(width).collect();
    let line = |cells: Vec<String>| {
        let padded: Vec<String> = cells
            .iter()
            .zip(&widths)
            .map(|(cell, &w)| format!("{cell}{}", " ".repeat(w - cell.chars().count())))
            .collect();
        format!("| {} |\n", padded.join(" | "))
    };
    let mut text = line(header.iter().map(|&h| h.to_owned()).collect());
    text += &line(widths.iter().map(|&w| "-".repeat(w)).collect());
    for row in rows {
        text += &line(row.clone());
    }
    text
}

fn speed_notes(environment: &Environment) -> String {
    let pinning = environment.pinned_cpu.map_or_else(
        || "The ping-pong workloads ran unpinned, as did the rest.".to_owned(),
        |cpu| {
            format!(
                "The ping-pongs (Pipe, Event) ran pinned to CPU {cpu} on both sides (parent and child \
                 share it); the rest ran unpinned."
            )
        },
    );
    format!(
        "\nRust, Python: median (min–max) over {} round{} per side, sides alternated (Rust first in odd rounds).\n\
         ratio = Rust speed ÷ Python speed, from the medians (ms, µs: Python time ÷ Rust time).\n\
         target: the project's, explained in bench/README.md.\n\
         {pinning}\n",
        environment.rounds,
        if environment.rounds == 1 { "" } else { "s" },
    )
}

/// For each workload run with threads and with processes: threads' speed ÷ processes', per
/// side, from the medians. What crossing a process costs; not a Rust ÷ Python ratio.
fn thread_twin_notes(results: &[Results]) -> String {
    let median = |name: &str, side: fn(&Results) -> &[Measurement]| {
        let entry = results.iter().find(|entry| entry.workload.name == name)?;
        summarize(side(entry), entry.workload.metric).map(|s| (s.median, entry.workload.metric))
    };
    let mut text = String::new();
    for (threads, processes) in THREAD_TWINS {
        let ratio = |side: fn(&Results) -> &[Measurement]| {
            let (threads, metric) = median(threads, side)?;
            let (processes, _) = median(processes, side)?;
            let ratio = stats::speed_ratio(threads, processes, metric.higher_is_better());
            Some(times(ratio))
        };
        let rust = ratio(|entry| &entry.rust);
        let python = ratio(|entry| &entry.python);
        if rust.is_none() && python.is_none() {
            continue;
        }
        let [rust, python] = [rust, python].map(|r| r.unwrap_or_else(dash));
        text += &format!(
            "{threads} ÷ {processes}: threads' speed ÷ processes', Rust {rust}, Python {python} \
             (what crossing a process costs).\n"
        );
    }
    text
}

/// For each budget pair: a's Rust median ÷ b's, and whether it stays within the budget.
fn budget_notes(results: &[Results], tally: &mut Tally) -> String {
    let median = |name: &str| {
        let entry = results.iter().find(|entry| entry.workload.name == name)?;
        summarize(&entry.rust, entry.workload.metric).map(|s| s.median)
    };
    let mut text = String::new();
    for &(a, b, budget) in RUST_BUDGETS {
        let (Some(a_median), Some(b_median)) = (median(a), median(b)) else {
            continue;
        };
        let ratio = a_median / b_median;
        tally.shown += 1;
        let verdict = if ratio <= budget {
            "within"
        } else {
            tally.missed += 1;
            "over"
        };
        text += &format!("{a} ÷ {b}, Rust: {ratio:.2}× (budget ≤ {budget}×: {verdict}).\n");
    }
    text
}

fn rss_notes() -> String {
    format!(
        "\nPeak RSS: ru_maxrss of each side's main process, median (min–max). The lesson-like main process is the one of\n\
         {RSS_WORKLOAD} (it starts a child and joins it); its target ≤ ¼ means Python ÷ Rust ≥ {RSS_TARGET}.\n"
    )
}

/// The machine, the CPUs, the Python and the date: the reader's figures will differ.
fn sources(environment: &Environment) -> String {
    let python = environment
        .python_version
        .as_deref()
        .unwrap_or("not found, Rust side only");
    let date = environment
        .date
        .as_ref()
        .map_or_else(String::new, |date| format!("; run on {date} (UTC)"));
    format!(
        "\nMachine: {}, {} CPU{}\nPython: {python}{date}\nLoad: {}\n",
        environment.machine,
        environment.cpus,
        if environment.cpus == 1 { "" } else { "s" },
        environment.mode,
    )
}

fn summary(environment: &Environment, tally: &Tally) -> String {
    let verdict = match (environment.python_version.is_some(), tally) {
        (false, Tally { shown: 0, .. }) => "No ratios: the Python side did not run.".to_owned(),
        (false, Tally { shown, missed }) => format!(
            "No ratios: the Python side did not run. Targets against the raw limits missed: \
             {missed} of {shown}."
        ),
        (true, Tally { shown: 0, .. }) => {
            "No target judged: no workload has figures from both sides (failed runs are \
             reported above the tables)."
                .to_owned()
        }
        (true, Tally { missed: 0, .. }) => "Every target shown was met.".to_owned(),
        (true, Tally { shown, missed }) => format!("Targets missed: {missed} of {shown}."),
    };
    format!("\n{verdict}\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_are_not_called_met_when_no_ratio_could_be_computed() {
        let environment = Environment {
            rounds: 1,
            cpus: 2,
            python_version: Some("CPython 3.11.7".to_owned()),
            pinned_cpu: None,
            mode: "quiet mode: unpinned, no busy process".to_owned(),
            machine: "Linux".to_owned(),
            date: None,
        };
        let text = summary(&environment, &Tally::default());
        assert!(text.contains("No target judged"), "{text}");
        assert!(!text.contains("met"), "{text}");
    }

    #[test]
    fn numbers_keep_about_three_figures() {
        assert_eq!(number(0.0123), "0.012");
        assert_eq!(number(0.1234), "0.123");
        assert_eq!(number(2.456), "2.46");
        assert_eq!(number(51.23), "51.2");
        assert_eq!(number(716.4), "716");
        assert_eq!(number(12_345.0), "12.3k");
        assert_eq!(number(115_000.0), "115k");
        assert_eq!(number(1_234_567.0), "1.23M");
        assert_eq!(number(12_345_678.0), "12.3M");
        assert_eq!(number(123_456_789.0), "123M");
    }

    #[test]
    fn rounding_up_does_not_widen_a_number() {
        assert_eq!(number(9.996), "10.0");
        assert_eq!(number(99.96), "100");
        assert_eq!(number(99_960.0), "100k");
        assert_eq!(number(999_600.0), "1.00M");
        assert_eq!(number(9_996_000.0), "10.0M");
        assert_eq!(number(0.099_96), "0.100");
        assert_eq!(number(0.9996), "1.00");
        assert_eq!(number(0.0), "0.000");
    }

    /// Fake runs: on the Rust side `rate` (for rates) or `time` (for ms and µs) spread as
    /// median, min and max; the Python side `ratio` times slower; peak RSS likewise.
    struct Scenario {
        rate: f64,
        time: f64,
        ratio: f64,
        rss_rust_mib: f64,
        rss_python_mib: f64,
    }

    /// The widest figures `number` prints (five characters) on both sides, and every target
    /// missed (the widest verdict).
    const WIDEST: Scenario = Scenario {
        rate: 2.08e6,
        time: 0.0512,
        ratio: 1.5,
        rss_rust_mib: 12_345.0,
        rss_python_mib: 45_678.0,
    };

    /// Figures of the kind a run prints, with some targets missed.
    const TYPICAL: Scenario = Scenario {
        rate: 1.23e6,
        time: 0.345,
        ratio: 6.0,
        rss_rust_mib: 2.1,
        rss_python_mib: 12.4,
    };

    const SPREAD: [f64; 3] = [1.0, 0.8, 1.34];

    /// A run whose figure, in `metric`'s unit, is `value`.
    fn run(metric: Metric, value: f64, rss_mib: f64) -> Measurement {
        let ops = 1000;
        let n = ops as f64;
        let elapsed_s = match metric {
            Metric::MillisPerOp => value * n / 1e3,
            Metric::MicrosPerOp => value * n / 1e6,
            Metric::OpsPerSecond => n / value,
            Metric::MegabytesPerSecond { item_bytes } => n * item_bytes as f64 / 1e6 / value,
        };
        Measurement {
            elapsed_s,
            ops,
            maxrss_kib: (rss_mib * 1024.0) as u64,
        }
    }

    /// Results for every workload of the catalogue.
    fn results(scenario: &Scenario) -> Vec<Results> {
        crate::catalogue::WORKLOADS
            .iter()
            .map(|workload| {
                let metric = workload.metric;
                let (rust, python) = if metric.higher_is_better() {
                    (scenario.rate, scenario.rate / scenario.ratio)
                } else {
                    (scenario.time, scenario.time * scenario.ratio)
                };
                let runs = |value: f64, rss: f64| -> Vec<Measurement> {
                    SPREAD
                        .iter()
                        .map(|s| run(metric, value * s, rss * s))
                        .collect()
                };
                Results {
                    workload,
                    rust: runs(rust, scenario.rss_rust_mib),
                    python: runs(python, scenario.rss_python_mib),
                }
            })
            .collect()
    }

    /// A machine with long names, as some are.
    fn environment() -> Environment {
        Environment {
            machine: "Linux 5.15.153.1-microsoft-standard-WSL2 x86_64, AMD Ryzen Threadripper PRO \
                      5995WX 64-Cores"
                .to_owned(),
            date: Some("2025-03-14".to_owned()),
            rounds: 5,
            cpus: 128,
            python_version: Some("CPython 3.11.7".to_owned()),
            pinned_cpu: Some(1),
            mode: "contention mode: pinned to CPUs 0,1 (--cpus 2), 16 busy processes at normal \
                   priority (--busy 16)"
                .to_owned(),
        }
    }

    #[test]
    fn every_line_fits_in_120_columns() {
        for scenario in [&WIDEST, &TYPICAL] {
            let text = render(&results(scenario), &environment());
            let wide: Vec<&str> = text
                .lines()
                .filter(|line| line.chars().count() > MAX_COLUMNS)
                .collect();
            assert!(
                wide.is_empty(),
                "lines wider than {MAX_COLUMNS}: {wide:#?}\n{text}"
            );
        }
    }

    #[test]
    fn the_widest_figures_are_in_the_table() {
        let text = render(&results(&WIDEST), &environment());
        assert!(text.contains("2.08M (1.66M–2.79M)"), "{text}");
        assert!(text.contains("1.39M (1.11M–1.86M)"), "{text}");
        assert!(text.contains("0.051 (0.041–0.069)"), "{text}");
        assert!(text.contains("≥ 2.5× missed"), "{text}");
    }

    #[test]
    fn both_tables_are_padded_markdown_with_every_workload() {
        let text = render(&results(&TYPICAL), &environment());
        let tables: Vec<Vec<&str>> = text
            .split("\n\n")
            .map(|block| block.lines().filter(|l| l.starts_with('|')).collect())
            .filter(|lines: &Vec<&str>| !lines.is_empty())
            .collect();
        assert_eq!(tables.len(), 3, "{text}");
        for table in &tables {
            let width = table[0].chars().count();
            let cells = table[0].matches(" | ").count();
            for line in table {
                assert!(line.ends_with(" |"), "{line}");
                assert_eq!(line.chars().count(), width, "{line}");
                assert_eq!(line.matches(" | ").count(), cells, "{line}");
            }
            assert!(
                table[1].trim_matches(['|', '-', ' ']).is_empty(),
                "{}",
                table[1]
            );
        }
        let (speed, raw, rss) = (&tables[0], &tables[1], &tables[2]);
        let has = |table: &Vec<&str>, title: &str| table.iter().any(|l| l.contains(title));
        for workload in crate::catalogue::WORKLOADS {
            let title = workload.title;
            // A raw limit has no Python side: it is only in the raw table, with its readers.
            assert_eq!(has(speed, title), !workload.raw_limit, "{title}\n{text}");
            assert_eq!(has(rss, title), !workload.raw_limit, "{title}\n{text}");
            let in_raw = workload.raw_limit || workload.raw.is_some();
            assert_eq!(has(raw, title), in_raw, "{title}\n{text}");
        }
        assert!(rss.iter().any(|l| l.contains("≤ ¼ met")), "{text}");
        assert!(
            text.contains("≥ 8× missed") && text.contains("≥ 2.5× met"),
            "{text}"
        );
    }

    #[test]
    fn thread_twins_get_a_note_with_each_sides_ratio() {
        let mut results = results(&TYPICAL);
        for entry in &mut results {
            if entry.workload.name == "joinable_threads" {
                // Ten times the process workload's rate on the Rust side, twice on Python's.
                entry.rust.iter_mut().for_each(|m| m.elapsed_s /= 10.0);
                entry.python.iter_mut().for_each(|m| m.elapsed_s /= 2.0);
            }
        }
        let text = render(&results, &environment());
        let expected =
            "joinable_threads ÷ joinable: threads' speed ÷ processes', Rust 10.0×, Python 2.0×";
        assert!(text.contains(expected), "{text}");
    }

    #[test]
    fn a_budget_gets_a_note_with_its_verdict() {
        let mut results = results(&TYPICAL);
        for entry in &mut results {
            if entry.workload.name == "pool_map_c1" {
                entry.rust.iter_mut().for_each(|m| m.elapsed_s *= 1000.0);
            }
        }
        let text = render(&results, &environment());
        assert!(
            text.contains("pool_map_c1 ÷ queue_pingpong, Rust: ") && text.contains("over)."),
            "{text}"
        );
    }

    #[test]
    fn without_python_targets_stand_unjudged() {
        let mut results = results(&TYPICAL);
        results.iter_mut().for_each(|entry| entry.python.clear());
        let environment = Environment {
            python_version: None,
            ..environment()
        };
        let text = render(&results, &environment);
        let speed_table = text.split("\n\n").find(|b| b.contains("| ≥ 8×")).unwrap();
        assert!(
            speed_table.contains("| ≥ 8×   ") && !speed_table.contains("met"),
            "{text}"
        );
        assert!(
            text.contains("No ratios") && text.contains("not found"),
            "{text}"
        );
    }

    #[test]
    fn the_sources_come_first() {
        let text = render(&results(&TYPICAL), &environment());
        let head: Vec<&str> = text.lines().skip(1).take(2).collect();
        assert_eq!(
            head,
            [
                "Machine: Linux 5.15.153.1-microsoft-standard-WSL2 x86_64, AMD Ryzen Threadripper \
                 PRO 5995WX 64-Cores, 128 CPUs",
                "Python: CPython 3.11.7; run on 2025-03-14 (UTC)",
            ]
        );
        // Every speed target of the catalogue, every target against a raw limit, and the RSS
        // one, is judged.
        let targets = crate::catalogue::WORKLOADS
            .iter()
            .map(|workload| {
                usize::from(workload.target.is_some())
                    + usize::from(workload.raw.is_some_and(|(_, target)| target.is_some()))
            })
            .sum::<usize>()
            + 1
            + crate::catalogue::RUST_BUDGETS.len();
        assert!(text.contains(&format!(" of {targets}.")), "{text}");
    }

    #[test]
    fn raw_limits_give_each_reader_its_multiple_and_verdict() {
        let mut results = results(&TYPICAL);
        for entry in &mut results {
            // The raw round trip twice as fast as the bytes one, 1.25 times as the objects one.
            let scale = match entry.workload.name {
                "pipe_raw" => 1.0,
                "pipe_objects" => 1.25,
                "pipe_bytes" => 2.0,
                _ => continue,
            };
            entry.rust.iter_mut().for_each(|m| m.elapsed_s *= scale);
        }
        let text = render(&results, &environment());
        let raw_table = text.split("\n\n").find(|b| b.contains("| × raw")).unwrap();
        let row = |title: &str| {
            raw_table
                .lines()
                .find(|l| l.contains(title))
                .unwrap_or_else(|| panic!("no row for {title} in\n{text}"))
                .to_owned()
        };
        let objects = row("Pipe ping-pong, send/recv");
        assert!(
            objects.contains("| 1.25×") && objects.contains("≤ 1.3× met"),
            "{objects}"
        );
        let bytes = row("Pipe ping-pong, send_bytes");
        assert!(
            bytes.contains("| 2.00×") && bytes.contains("≤ 1.3× missed"),
            "{bytes}"
        );
        let fork = row("start+join, fork");
        assert!(fork.contains("| 1.00× | — "), "{fork}");
    }

    #[test]
    fn table_columns_line_up() {
        let rows = vec![vec!["a".to_owned(), "long cell".to_owned()]];
        let table = markdown_table(&["first", "x"], &rows);
        let widths: Vec<usize> = table.lines().map(|l| l.chars().count()).collect();
        assert!(widths.windows(2).all(|w| w[0] == w[1]), "{table}");
    }
}
