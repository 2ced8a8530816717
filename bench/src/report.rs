//! The results table (Markdown, so it can be pasted into a README) and its footer.

use std::fmt::Write;

use crate::catalogue::{Metric, RSS_TARGET, RSS_WORKLOAD};
use crate::harness::Results;
use crate::measurement::Measurement;
use crate::stats::{self, Summary};

/// What the footer says about how the figures were obtained.
#[derive(Debug)]
pub struct Environment {
    /// Rounds per side.
    pub rounds: usize,
    /// CPUs available.
    pub cpus: usize,
    /// `CPython 3.x.y`, or `None` when the Python side did not run.
    pub python_version: Option<String>,
    /// The CPU pinned workloads ran on.
    pub pinned_cpu: Option<usize>,
}

const HEADER: [&str; 9] = [
    "workload",
    "unit",
    "Rust median (min–max)",
    "Python median (min–max)",
    "ratio",
    "target",
    "met?",
    "peak RSS Rust",
    "peak RSS Python",
];

/// The table and its footer.
pub fn render(results: &[Results], environment: &Environment) -> String {
    let mut rows = Vec::new();
    let mut missed = Vec::new();
    for entry in results {
        rows.extend(workload_rows(entry, &mut missed));
    }
    if let Some(entry) = results.iter().find(|e| e.workload.name == RSS_WORKLOAD) {
        rows.push(rss_row(entry, &mut missed));
    }
    let mut text = String::from("\n");
    text += &markdown_table(&HEADER, &rows);
    text += &footer(environment, &missed);
    text
}

/// A workload's row (two for byte workloads: MB/s, then items/s).
fn workload_rows(entry: &Results, missed: &mut Vec<String>) -> Vec<Vec<String>> {
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
    let verdict = verdict(ratio, workload.target, workload.title, missed);
    let mut rows = vec![vec![
        workload.title.to_owned(),
        workload.unit.to_owned(),
        cell(rust),
        cell(python),
        ratio.map_or_else(dash, |r| format!("{r:.1}×")),
        workload.target.map_or_else(dash, |t| format!("≥ {t}×")),
        verdict,
        rss_cell(&entry.rust),
        rss_cell(&entry.python),
    ]];
    if let Metric::MegabytesPerSecond { .. } = workload.metric {
        rows.push(items_row(entry));
    }
    rows
}

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
    row.resize(HEADER.len(), String::new());
    row
}

/// Peak RSS of a lesson-like main process (start one child, join it): Python ÷ Rust.
fn rss_row(entry: &Results, missed: &mut Vec<String>) -> Vec<String> {
    let rust = rss_summary(&entry.rust);
    let python = rss_summary(&entry.python);
    let ratio = rust
        .zip(python)
        .map(|(rust, python)| python.median / rust.median);
    let title = "peak RSS, lesson-like main process";
    let verdict = verdict(ratio, Some(RSS_TARGET), title, missed);
    vec![
        title.to_owned(),
        "MiB".to_owned(),
        cell(rust),
        cell(python),
        ratio.map_or_else(dash, |r| format!("{r:.1}× smaller")),
        format!("≤ ¼ (≥ {RSS_TARGET}×)"),
        verdict,
        String::new(),
        String::new(),
    ]
}

fn verdict(
    ratio: Option<f64>,
    target: Option<f64>,
    title: &str,
    missed: &mut Vec<String>,
) -> String {
    match ratio.zip(target) {
        Some((ratio, target)) if ratio >= target => "met".to_owned(),
        Some((ratio, target)) => {
            missed.push(format!("{title} ({ratio:.1}× of ≥ {target}×)"));
            "**missed**".to_owned()
        }
        None => dash(),
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

fn rss_cell(measurements: &[Measurement]) -> String {
    rss_summary(measurements).map_or_else(dash, |s| format!("{} MiB", number(s.median)))
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
        v if v >= 0.1 => format!("{value:.2}"),
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

fn footer(environment: &Environment, missed: &[String]) -> String {
    let mut text = String::new();
    let python = environment
        .python_version
        .as_deref()
        .unwrap_or("not found: Rust side only");
    let _ = writeln!(
        text,
        "\n{} round{} per side, sides alternated (Rust first in odd rounds, Python first in even \
         ones); median (min–max) over the rounds. {} CPUs; Python: {python}.",
        environment.rounds,
        if environment.rounds == 1 { "" } else { "s" },
        environment.cpus
    );
    let _ = writeln!(
        text,
        "ratio = Rust speed ÷ Python speed, from the medians (for ms and µs: Python time ÷ Rust \
         time). RSS: peak resident set (ru_maxrss) of each side's main process; the RSS row's \
         ratio is Python ÷ Rust, from the start+join fork workload."
    );
    let pinning = environment.pinned_cpu.map_or_else(
        || "unpinned".to_owned(),
        |cpu| format!("pinned to CPU {cpu} (parent and echo child share it)"),
    );
    let _ = writeln!(
        text,
        "CPU placement: pipe ping-pong runs, on both sides, {pinning}; every other workload \
         unpinned on both sides."
    );
    let _ = match (environment.python_version.is_some(), missed.is_empty()) {
        (false, _) => writeln!(text, "No ratios: the Python side did not run."),
        (true, true) => writeln!(text, "Every target shown was met."),
        (true, false) => writeln!(text, "Missed targets: {}.", missed.join("; ")),
    };
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_keep_about_three_figures() {
        assert_eq!(number(0.0123), "0.012");
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
        assert_eq!(number(0.099_96), "0.10");
        assert_eq!(number(0.0), "0.000");
    }

    #[test]
    fn table_columns_line_up() {
        let rows = vec![vec!["a".to_owned(), "long cell".to_owned()]];
        let table = markdown_table(&["first", "x"], &rows);
        let widths: Vec<usize> = table.lines().map(|l| l.chars().count()).collect();
        assert!(widths.windows(2).all(|w| w[0] == w[1]), "{table}");
    }
}
