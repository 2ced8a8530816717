//! Keeps each lesson's `README.md` honest.
//!
//! - Every ```` ```rust ```` block is preceded by a line ``Arquivo `PATH`:`` (PATH relative to
//!   the lesson's crate) and equals that file byte for byte; every `.rs` file under the
//!   lesson's `src/` is shown.
//! - Every ```` ```text ```` block is a sample run, preceded by `<!-- sample: BIN -->`; one per
//!   binary of the lesson. With PIDs redacted it has the same lines (as a multiset) as a real
//!   run of BIN, the same PID relations (which lines name the same process), and both obey
//!   the orders the README's "Sempre verdadeiro" claims.
//! - The sections come in the agreed order, "Como rodar" gives the commands, each Mermaid
//!   block is a well-formed `sequenceDiagram`, and relative links (and their anchors) resolve.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::panic;
use std::path::{Path, PathBuf};
use std::thread;

use lesson_tests::{Lesson, PID, StartMethod, Transcript};

static LESSON01: Lesson = Lesson::new("lesson01-processes", "lesson01-processes");
static LESSON02: Lesson = Lesson::new("lesson02-queue", "lesson02-queue");
static LESSON02_TWO: Lesson = Lesson::new("lesson02-queue", "lesson02-queue-two-processes");
static LESSON03: Lesson = Lesson::new("lesson03-pipe", "lesson03-pipe");
static LESSON04: Lesson = Lesson::new("lesson04-joinable", "lesson04-joinable");

/// A lesson crate (its directory is its package name) and its binaries.
struct LessonDoc {
    package: &'static str,
    bins: &'static [(&'static str, &'static Lesson)],
}

static DOCS: [LessonDoc; 4] = [
    LessonDoc {
        package: "lesson01-processes",
        bins: &[("lesson01-processes", &LESSON01)],
    },
    LessonDoc {
        package: "lesson02-queue",
        bins: &[
            ("lesson02-queue", &LESSON02),
            ("lesson02-queue-two-processes", &LESSON02_TWO),
        ],
    },
    LessonDoc {
        package: "lesson03-pipe",
        bins: &[("lesson03-pipe", &LESSON03)],
    },
    LessonDoc {
        package: "lesson04-joinable",
        bins: &[("lesson04-joinable", &LESSON04)],
    },
];

/// The level-2 sections of every README, in order, each with the level-3 sections it must hold.
const SECTIONS: &[(&str, &[&str])] = &[
    ("Como rodar", &[]),
    ("O que o slide ensina", &[]),
    ("O código", &[]),
    ("Uma execução", &["Sempre verdadeiro", "Pode variar"]),
    ("Diagrama", &[]),
    ("Diferenças do Python", &[]),
    ("Experimente", &[]),
];

const FILE_MARKER: (&str, &str) = ("Arquivo `", "`:");
const SAMPLE_MARKER: (&str, &str) = ("<!-- sample: ", " -->");

// ---------------------------------------------------------------------------------------------
// The tests

#[test]
fn rust_blocks_equal_their_source_files() {
    for_each_doc(|doc, readme| {
        let dir = workspace_root().join(doc.package);
        let sources = rust_sources(&dir.join("src"), &dir);
        check_rust_blocks(readme, &sources, |path| {
            fs::read_to_string(dir.join(path)).ok()
        })
    });
}

#[test]
fn sections_commands_and_diagrams() {
    for_each_doc(|doc, readme| {
        let bins: Vec<&str> = doc.bins.iter().map(|(bin, _)| *bin).collect();
        let mut problems = check_sections(readme);
        problems.extend(check_run_commands(readme, doc.package, &bins));
        problems.extend(check_mermaid(readme));
        problems
    });
}

#[test]
fn relative_links_resolve() {
    for_each_doc(|doc, readme| {
        check_links(readme, &workspace_root().join(doc.package), |path| {
            fs::read_to_string(path).ok()
        })
    });
}

#[test]
fn sample_run_lesson01() {
    check_sample_runs(&DOCS[0]);
}

#[test]
fn sample_runs_lesson02() {
    check_sample_runs(&DOCS[1]);
}

#[test]
fn sample_run_lesson03() {
    check_sample_runs(&DOCS[2]);
}

#[test]
fn sample_run_lesson04() {
    check_sample_runs(&DOCS[3]);
}

/// Runs `check` on every lesson README and fails with every problem found.
fn for_each_doc(check: impl Fn(&LessonDoc, &Readme) -> Vec<String>) {
    let mut problems = Vec::new();
    for doc in &DOCS {
        let path = workspace_root().join(doc.package).join("README.md");
        match fs::read_to_string(&path)
            .map_err(|e| e.to_string())
            .and_then(|t| parse(&t))
        {
            Ok(readme) => problems.extend(
                check(doc, &readme)
                    .into_iter()
                    .map(|p| format!("{}/README.md: {p}", doc.package)),
            ),
            Err(error) => problems.push(format!("{}: {error}", path.display())),
        }
    }
    assert!(problems.is_empty(), "\n{}", problems.join("\n"));
}

/// Checks the README's sample runs against real runs (fork), one binary per thread.
fn check_sample_runs(doc: &LessonDoc) {
    let path = workspace_root().join(doc.package).join("README.md");
    let text = fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let readme = parse(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let samples = samples(&readme).unwrap_or_else(|problems| {
        panic!("{}:\n{}", path.display(), problems.join("\n"));
    });
    let shown: BTreeSet<&str> = samples.iter().map(|s| s.bin.as_str()).collect();
    let bins: BTreeSet<&str> = doc.bins.iter().map(|(bin, _)| *bin).collect();
    assert_eq!(shown, bins, "{}: one sample run per binary", path.display());

    thread::scope(|scope| {
        let handles: Vec<_> = samples
            .iter()
            .map(|sample| {
                let (_, lesson) = doc.bins.iter().find(|(bin, _)| *bin == sample.bin).unwrap();
                scope.spawn(move || check_sample(sample, lesson))
            })
            .collect();
        for handle in handles {
            if let Err(payload) = handle.join() {
                panic::resume_unwind(payload);
            }
        }
    });
}

/// One sample against one real run: the harness checks the run and compares its redacted
/// lines with the sample's as a multiset; then both must relate lines to PIDs alike.
fn check_sample(sample: &Sample, lesson: &Lesson) {
    let context = format!("README sample of {}", sample.bin);
    let problems = check_sample_text(sample);
    assert!(problems.is_empty(), "{context}:\n{}", problems.join("\n"));

    let expected: Vec<String> = sample.lines.iter().map(|line| redact(line)).collect();
    let expected: Vec<&str> = expected.iter().map(String::as_str).collect();
    let run = lesson.run(StartMethod::Fork);
    let transcript = run.expect_lines(&expected);

    let shown_main = Transcript::parse(&context, 0, sample.text().as_bytes())
        .find_one_pid(&format!("Processo principal {PID} inicializado"));
    let shown = Transcript::parse(&context, shown_main, sample.text().as_bytes());
    check_always_true(&sample.bin, &shown);
    check_always_true(&sample.bin, &transcript);
    let shown_roles = pid_roles(&shown, shown_main, &expected);
    let real_roles = pid_roles(&transcript, transcript.main_pid(), &expected);
    assert_eq!(
        shown_roles, real_roles,
        "{context}: the sample's lines name processes differently than a real run does\n\
         real run:\n{transcript}"
    );
}

// ---------------------------------------------------------------------------------------------
// Parsing

/// A README split into lines, fenced blocks and headings.
struct Readme {
    lines: Vec<String>,
    blocks: Vec<Block>,
    /// (line index, level, text) of each heading outside fenced blocks.
    headings: Vec<(usize, usize, String)>,
}

/// A fenced block: ```` ```info ```` … ```` ``` ````.
struct Block {
    info: String,
    /// Index of the opening fence line.
    open: usize,
    /// The lines between the fences, each followed by `\n`.
    content: String,
    /// The nearest non-blank line above the opening fence.
    label: Option<String>,
}

impl Block {
    fn language(&self) -> &str {
        self.info.split([' ', ',', '{']).next().unwrap_or_default()
    }
}

fn parse(text: &str) -> Result<Readme, String> {
    let lines: Vec<String> = text.lines().map(str::to_owned).collect();
    let mut blocks = Vec::new();
    let mut headings = Vec::new();
    let mut open: Option<(usize, String)> = None;
    let mut content = String::new();
    for (index, line) in lines.iter().enumerate() {
        match &open {
            None => {
                if let Some(info) = line.strip_prefix("```") {
                    open = Some((index, info.trim().to_owned()));
                    content.clear();
                } else if let Some(level) = heading_level(line) {
                    headings.push((index, level, line[level..].trim().to_owned()));
                }
            }
            Some((start, info)) => {
                if line.trim_end() == "```" {
                    let label = lines[..*start].iter().rev().find(|l| !l.trim().is_empty());
                    blocks.push(Block {
                        info: info.clone(),
                        open: *start,
                        content: std::mem::take(&mut content),
                        label: label.cloned(),
                    });
                    open = None;
                } else {
                    content.push_str(line);
                    content.push('\n');
                }
            }
        }
    }
    if let Some((start, _)) = open {
        return Err(format!(
            "the block opened on line {} is never closed",
            start + 1
        ));
    }
    Ok(Readme {
        lines,
        blocks,
        headings,
    })
}

fn heading_level(line: &str) -> Option<usize> {
    let level = line.len() - line.trim_start_matches('#').len();
    ((1..=6).contains(&level) && line[level..].starts_with(' ')).then_some(level)
}

/// `text` between `marker.0` and `marker.1`, if `line` is exactly such a marker.
fn marked<'a>(line: &'a str, marker: (&str, &str)) -> Option<&'a str> {
    line.trim()
        .strip_prefix(marker.0)?
        .strip_suffix(marker.1)
        .filter(|inner| !inner.is_empty() && !inner.contains('`'))
}

// ---------------------------------------------------------------------------------------------
// (a) Rust blocks

/// Every `.rs` file under `dir`, as a path relative to `base` with `/` separators.
fn rust_sources(dir: &Path, base: &Path) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(dir) = pending.pop() {
        let entries = fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
        for entry in entries {
            let path = entry.expect("a readable directory entry").path();
            if path.is_dir() {
                pending.push(path);
            } else if path.extension().is_some_and(|ext| ext == "rs") {
                let relative = path.strip_prefix(base).expect("under the crate");
                found.insert(relative.to_string_lossy().replace('\\', "/"));
            }
        }
    }
    found
}

/// Each Rust block is labelled ``Arquivo `PATH`:`` and equals `read(PATH)`; together the
/// blocks show every file of `sources`.
fn check_rust_blocks(
    readme: &Readme,
    sources: &BTreeSet<String>,
    read: impl Fn(&str) -> Option<String>,
) -> Vec<String> {
    let mut problems = Vec::new();
    let mut shown = BTreeSet::new();
    for block in &readme.blocks {
        if !matches!(block.language(), "rust" | "rs") {
            continue;
        }
        let line = block.open + 1;
        let Some(path) = block.label.as_deref().and_then(|l| marked(l, FILE_MARKER)) else {
            problems.push(format!(
                "the rust block on line {line} is not preceded by a line like \
                 {}src/main.rs{}",
                FILE_MARKER.0, FILE_MARKER.1
            ));
            continue;
        };
        if !shown.insert(path.to_owned()) {
            problems.push(format!("{path} is shown twice (line {line})"));
        }
        match read(path) {
            None => problems.push(format!("line {line}: cannot read {path}")),
            Some(source) if source != block.content => problems.push(format!(
                "the rust block on line {line} differs from {path}: {}",
                first_difference(&block.content, &source)
            )),
            Some(_) => {}
        }
    }
    for missing in sources.difference(&shown) {
        problems.push(format!("{missing} is not shown in a rust block"));
    }
    problems
}

fn first_difference(shown: &str, source: &str) -> String {
    let (mut shown_lines, mut source_lines) = (shown.split('\n'), source.split('\n'));
    for number in 1.. {
        match (shown_lines.next(), source_lines.next()) {
            (None, None) => break,
            (a, b) if a == b => {}
            (a, b) => return format!("line {number} of the file: README {a:?}, file {b:?}"),
        }
    }
    "they differ".to_owned()
}

// ---------------------------------------------------------------------------------------------
// (b) Sample runs

/// A sample run: the lines of a ```` ```text ```` block labelled `<!-- sample: BIN -->`.
struct Sample {
    bin: String,
    open: usize,
    lines: Vec<String>,
}

impl Sample {
    fn text(&self) -> String {
        self.lines.iter().map(|line| format!("{line}\n")).collect()
    }
}

/// The sample runs; every text block must be one.
fn samples(readme: &Readme) -> Result<Vec<Sample>, Vec<String>> {
    let mut samples = Vec::new();
    let mut problems = Vec::new();
    for block in readme.blocks.iter().filter(|b| b.language() == "text") {
        match block
            .label
            .as_deref()
            .and_then(|l| marked(l, SAMPLE_MARKER))
        {
            Some(bin) => samples.push(Sample {
                bin: bin.to_owned(),
                open: block.open,
                lines: block.content.lines().map(str::to_owned).collect(),
            }),
            None => problems.push(format!(
                "the text block on line {} is not preceded by {}BIN{}",
                block.open + 1,
                SAMPLE_MARKER.0,
                SAMPLE_MARKER.1
            )),
        }
    }
    // A marker must label the block right after it, not float above prose.
    for (index, line) in readme.lines.iter().enumerate() {
        if marked(line, SAMPLE_MARKER).is_some()
            && !samples
                .iter()
                .any(|s| s.open > index && label_gap(readme, index, s.open))
        {
            problems.push(format!(
                "the sample marker on line {} labels no text block",
                index + 1
            ));
        }
    }
    let mut bins = BTreeSet::new();
    for sample in &samples {
        if !bins.insert(&sample.bin) {
            problems.push(format!("two sample runs of {}", sample.bin));
        }
    }
    if problems.is_empty() {
        Ok(samples)
    } else {
        Err(problems)
    }
}

/// Whether only blank lines stand between line `marker` and line `open`.
fn label_gap(readme: &Readme, marker: usize, open: usize) -> bool {
    readme.lines[marker + 1..open]
        .iter()
        .all(|l| l.trim().is_empty())
}

/// What a sample must be on its own to pass for a real run's stdout.
fn check_sample_text(sample: &Sample) -> Vec<String> {
    let mut problems = Vec::new();
    if sample.lines.is_empty() {
        problems.push("the sample is empty".to_owned());
    }
    if sample.lines.iter().any(|line| line.contains(PID)) {
        problems.push(format!("the sample shows {PID}, not real PIDs"));
    }
    let first = sample.lines.first().map(|line| redact(line));
    if first.as_deref() != Some(&format!("Processo principal {PID} inicializado")) {
        problems.push(format!(
            "the first line is {first:?}, not the main process's"
        ));
    }
    let mut seen = BTreeSet::new();
    for line in &sample.lines {
        if !seen.insert(line) {
            problems.push(format!("line `{line}` appears twice"));
        }
    }
    problems
}

/// Replaces each PID in `line` by [`PID`], by the harness's rule: the listings print a PID only
/// right after "processo" or "principal" ("Tarefa 1" and "qsize(): 3" stay intact).
fn redact(line: &str) -> String {
    let mut previous = "";
    let words = line.split(' ').map(|word| {
        let labelled = previous.eq_ignore_ascii_case("processo") || previous == "principal";
        previous = word;
        let digits = !word.is_empty() && word.bytes().all(|b| b.is_ascii_digit());
        if labelled && digits { PID } else { word }
    });
    words.collect::<Vec<_>>().join(" ")
}

/// One process's part in a transcript: whether it is the main process, and where its PID is
/// printed, as (redacted line, which PID of that line).
type Role = (bool, Vec<(String, usize)>);

/// The roles of the processes named in `transcript`, sorted, so that two runs compare equal
/// when their lines name processes alike, whatever the PIDs and the order of the lines.
fn pid_roles(transcript: &Transcript, main: u32, patterns: &[&str]) -> Vec<Role> {
    let mut roles: BTreeMap<u32, Vec<(String, usize)>> = BTreeMap::new();
    let unique: BTreeSet<&str> = patterns.iter().copied().collect();
    for pattern in unique {
        for found in transcript.find(pattern) {
            for (slot, pid) in found.pids.into_iter().enumerate() {
                roles
                    .entry(pid)
                    .or_default()
                    .push((pattern.to_owned(), slot));
            }
        }
    }
    let mut roles: Vec<Role> = roles
        .into_iter()
        .map(|(pid, mut places)| {
            places.sort();
            (pid == main, places)
        })
        .collect();
    roles.sort();
    roles
}

/// What the READMEs' "Sempre verdadeiro" sections say: the orders the code forces and which
/// process each PID belongs to. Checked on the README's sample and on a real run alike.
fn check_always_true(bin: &str, t: &Transcript) {
    let main = t.find_one_pid(&format!("Processo principal {PID} inicializado"));
    let main_line = |what: &str| format!("Processo principal {main} {what}");
    let line = |pid: u32, what: &str| format!("Processo {pid} {what}");
    t.assert_at(0, &main_line("inicializado"));
    t.assert_order(&[&main_line("inicializado"), &main_line("finalizado")]);
    match bin {
        "lesson01-processes" => {
            let child = t.find_one_pid(&format!("Processo {PID} iniciado"));
            t.assert_distinct(&[("main", main), ("child", child)]);
            t.assert_order(&[&line(child, "iniciado"), &line(child, "finalizado")]);
        }
        "lesson02-queue" => {
            let child = t.find_one_pid(&format!("Processo {PID} iniciado"));
            t.assert_distinct(&[("main", main), ("child", child)]);
            t.assert_order(&[
                &main_line("inicializado"),
                &line(child, "iniciado"),
                &line(child, "finalizado"),
                &format!("Mensagem lida: Mensagem do processo {child}"),
                &main_line("finalizado"),
            ]);
        }
        "lesson02-queue-two-processes" => {
            let producer = t.find_one_pid(&format!("Mensagem lida: Mensagem do processo {PID}"));
            let started = t.find(&format!("Processo {PID} iniciado"));
            let children: Vec<u32> = started.into_iter().flat_map(|m| m.pids).collect();
            let consumer = match children.as_slice() {
                [a, b] if *a == producer => *b,
                [a, b] if *b == producer => *a,
                _ => t.fail(&format!(
                    "expected the producer {producer} among two children"
                )),
            };
            t.assert_distinct(&[
                ("main", main),
                ("producer", producer),
                ("consumer", consumer),
            ]);
            let message = format!("Mensagem lida: Mensagem do processo {producer}");
            t.assert_order(&[&line(producer, "iniciado"), &line(producer, "finalizado")]);
            t.assert_order(&[&line(producer, "iniciado"), &message]);
            t.assert_order(&[
                &line(consumer, "iniciado"),
                &message,
                &line(consumer, "finalizado"),
            ]);
        }
        "lesson03-pipe" => {
            let child = t.find_one_pid(&format!("Processo {PID} iniciado"));
            t.assert_distinct(&[("main", main), ("child", child)]);
            let child_heard =
                format!("Processo {child} ouviu: Olá, aqui é o processo principal {main}");
            let main_heard = main_line(&format!("ouviu: Olá, aqui é o processo {child}"));
            t.assert_order(&[
                &line(child, "iniciado"),
                &child_heard,
                &line(child, "finalizado"),
            ]);
            t.assert_order(&[&child_heard, &main_heard, &main_line("finalizado")]);
            t.assert_last(&main_line("finalizado"));
        }
        "lesson04-joinable" => {
            let worker = t.find_one_pid(&format!("Processo {PID} iniciado"));
            t.assert_distinct(&[("main", main), ("worker", worker)]);
            t.assert_order(&[
                &main_line("inicializado"),
                "qsize(): 3 empty(): False full(): True",
                &line(worker, "iniciado"),
                &line(worker, "concluiu: Tarefa 1"),
                &line(worker, "concluiu: Tarefa 2"),
                &line(worker, "concluiu: Tarefa 3"),
                "qsize(): 0 empty(): True full(): False",
                &main_line("finalizado"),
            ]);
        }
        other => t.fail(&format!("no \"Sempre verdadeiro\" checks for {other}")),
    }
}

// ---------------------------------------------------------------------------------------------
// (c) Sections, commands, diagrams, links

/// The level-2 headings are exactly [`SECTIONS`], in order, after one level-1 title, and each
/// holds its level-3 headings in order.
fn check_sections(readme: &Readme) -> Vec<String> {
    let mut problems = Vec::new();
    if readme.headings.first().map(|h| h.1) != Some(1) {
        problems.push("the README does not open with a `# ` title".to_owned());
    }
    let level2: Vec<&str> = readme
        .headings
        .iter()
        .filter(|h| h.1 == 2)
        .map(|h| h.2.as_str())
        .collect();
    let required: Vec<&str> = SECTIONS.iter().map(|(name, _)| *name).collect();
    if level2 != required {
        problems.push(format!(
            "the `## ` sections are {level2:?}, expected {required:?}"
        ));
        return problems;
    }
    for (name, subsections) in SECTIONS {
        let inside: Vec<&str> = section_headings(readme, name)
            .filter(|h| h.1 == 3)
            .map(|h| h.2.as_str())
            .collect();
        let mut rest = inside.iter();
        for sub in *subsections {
            if !rest.any(|found| found == sub) {
                problems.push(format!(
                    "section `{name}` lacks `### {sub}` in order (it has {inside:?})"
                ));
            }
        }
    }
    problems
}

/// The headings after `## name` up to the next level-2 heading.
fn section_headings<'a>(
    readme: &'a Readme,
    name: &'a str,
) -> impl Iterator<Item = &'a (usize, usize, String)> {
    readme
        .headings
        .iter()
        .skip_while(move |h| !(h.1 == 2 && h.2 == name))
        .skip(1)
        .take_while(|h| h.1 > 2)
}

/// The lines of section `## name`, without its heading.
fn section_lines<'a>(readme: &'a Readme, name: &str) -> &'a [String] {
    let mut level2 = readme.headings.iter().filter(|h| h.1 <= 2);
    let Some(start) = level2.find(|h| h.2 == name).map(|h| h.0 + 1) else {
        return &[];
    };
    let end = level2.next().map_or(readme.lines.len(), |h| h.0);
    &readme.lines[start..end]
}

/// "Como rodar" gives, for each binary, the plain and the spawn command, each on a line.
fn check_run_commands(readme: &Readme, package: &str, bins: &[&str]) -> Vec<String> {
    let lines: BTreeSet<&str> = section_lines(readme, "Como rodar")
        .iter()
        .map(|l| l.trim())
        .collect();
    let mut problems = Vec::new();
    for bin in bins {
        let select = if *bin == package {
            String::new()
        } else {
            format!(" --bin {bin}")
        };
        let plain = format!("cargo run -q -p {package}{select}");
        for command in [plain.clone(), format!("{plain} -- --start-method spawn")] {
            if !lines.contains(command.as_str()) {
                problems.push(format!("`Como rodar` lacks the line `{command}`"));
            }
        }
    }
    problems
}

/// At least one Mermaid block; each is a `sequenceDiagram` whose messages and notes name
/// declared participants, whose `par`/`loop`/... blocks are closed, and with no `;` (which
/// Mermaid reads as the end of a statement).
fn check_mermaid(readme: &Readme) -> Vec<String> {
    let diagrams: Vec<&Block> = readme
        .blocks
        .iter()
        .filter(|b| b.language() == "mermaid")
        .collect();
    if diagrams.is_empty() {
        return vec!["no ```mermaid block".to_owned()];
    }
    diagrams
        .into_iter()
        .flat_map(|block| {
            check_sequence_diagram(&block.content)
                .into_iter()
                .map(move |p| format!("the mermaid block on line {}: {p}", block.open + 1))
        })
        .collect()
}

fn check_sequence_diagram(diagram: &str) -> Vec<String> {
    let mut lines = diagram.lines().map(str::trim).filter(|l| !l.is_empty());
    if lines.next() != Some("sequenceDiagram") {
        return vec!["it does not start with `sequenceDiagram`".to_owned()];
    }
    let mut problems = Vec::new();
    let mut participants = BTreeSet::new();
    let mut depth = 0_i32;
    for line in lines {
        if line.contains(';') {
            problems.push(format!("`;` in `{line}`"));
        }
        let first = line.split_whitespace().next().unwrap_or_default();
        let named: Vec<&str> = match first {
            "participant" | "actor" => {
                let id = line.split_whitespace().nth(1).unwrap_or_default();
                participants.insert(id.to_owned());
                Vec::new()
            }
            "Note" => {
                let head = line.split_once(':').map_or(line, |(head, _)| head);
                let who = head.split_whitespace().last().unwrap_or_default();
                who.split(',').map(str::trim).collect()
            }
            "par" | "loop" | "alt" | "opt" | "critical" | "break" | "rect" => {
                depth += 1;
                Vec::new()
            }
            "end" => {
                depth -= 1;
                Vec::new()
            }
            "and" | "else" | "option" | "autonumber" | "activate" | "deactivate" => Vec::new(),
            _ => match line
                .split_once(':')
                .and_then(|(head, _)| message_ends(head))
            {
                Some((from, to)) => vec![from, to],
                None => {
                    problems.push(format!("not a statement this check knows: `{line}`"));
                    Vec::new()
                }
            },
        };
        for id in named {
            if !participants.contains(id) {
                problems.push(format!("`{id}` is not a declared participant: `{line}`"));
            }
        }
        if depth < 0 {
            problems.push(format!("`end` without a block: `{line}`"));
            depth = 0;
        }
    }
    if depth != 0 {
        problems.push(format!("{depth} block(s) not closed with `end`"));
    }
    problems
}

/// The two participants of a message `A->>B` (any Mermaid arrow; `+`/`-` after it activate).
fn message_ends(head: &str) -> Option<(&str, &str)> {
    const ARROWS: [&str; 8] = ["-->>", "->>", "-->", "->", "--x", "-x", "--)", "-)"];
    let (at, arrow) = ARROWS
        .iter()
        .filter_map(|arrow| Some((head.find(arrow)?, arrow.len())))
        .min_by_key(|&(at, len)| (at, usize::MAX - len))?;
    let from = head[..at].trim();
    let to = head[at + arrow..]
        .trim()
        .trim_start_matches(['+', '-'])
        .trim();
    (!from.is_empty() && !to.is_empty()).then_some((from, to))
}

/// Every relative link `[..](path#anchor)` names an existing file, and an anchor names a
/// heading of it (GitHub's slugs).
fn check_links(readme: &Readme, dir: &Path, read: impl Fn(&Path) -> Option<String>) -> Vec<String> {
    let mut problems = Vec::new();
    let in_block: BTreeSet<usize> = readme
        .blocks
        .iter()
        .flat_map(|b| b.open..=b.open + b.content.lines().count() + 1)
        .collect();
    for (index, line) in readme.lines.iter().enumerate() {
        if in_block.contains(&index) {
            continue;
        }
        for target in link_targets(line) {
            if target.contains("://") || target.starts_with("mailto:") {
                continue;
            }
            let (path, anchor) = target.split_once('#').unwrap_or((target, ""));
            let text = if path.is_empty() {
                Some(readme.lines.join("\n"))
            } else {
                let file: PathBuf = dir.join(path);
                if file.is_dir() {
                    Some(String::new())
                } else {
                    read(&file)
                }
            };
            let Some(text) = text else {
                problems.push(format!("line {}: `{target}` does not exist", index + 1));
                continue;
            };
            if !anchor.is_empty() && !heading_slugs(&text).contains(anchor) {
                problems.push(format!(
                    "line {}: no heading for `#{anchor}` in `{path}`",
                    index + 1
                ));
            }
        }
    }
    problems
}

/// The targets of the inline links `[text](target)` in `line`.
fn link_targets(line: &str) -> Vec<&str> {
    line.match_indices("](")
        .filter_map(|(at, _)| {
            let rest = &line[at + 2..];
            rest.find(')').map(|end| &rest[..end])
        })
        .collect()
}

/// The anchors GitHub gives the headings of `markdown`: lower case, only letters, digits,
/// `-`, `_` and spaces kept, spaces made `-`.
fn heading_slugs(markdown: &str) -> BTreeSet<String> {
    let readme = parse(markdown).unwrap_or_else(|_| Readme {
        lines: Vec::new(),
        blocks: Vec::new(),
        headings: Vec::new(),
    });
    readme
        .headings
        .iter()
        .map(|(_, _, text)| slug(text))
        .collect()
}

fn slug(heading: &str) -> String {
    heading
        .to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric() || matches!(c, '-' | '_' | ' '))
        .map(|c| if c == ' ' { '-' } else { c })
        .collect()
}

fn workspace_root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ is inside the workspace")
}

// ---------------------------------------------------------------------------------------------
// The checks themselves fail on bad READMEs

mod checks_fail {
    use super::*;

    const SOURCE: &str = "fn main() {\n    println!(\"oi\");\n}\n";

    fn readme(text: &str) -> Readme {
        parse(text).expect("parses")
    }

    fn rust_problems(text: &str) -> Vec<String> {
        let sources = BTreeSet::from(["src/main.rs".to_owned()]);
        check_rust_blocks(&readme(text), &sources, |path| {
            (path == "src/main.rs").then(|| SOURCE.to_owned())
        })
    }

    #[test]
    fn rust_block_equal_to_its_file_passes() {
        let text = format!("Arquivo `src/main.rs`:\n\n```rust\n{SOURCE}```\n");
        assert_eq!(rust_problems(&text), Vec::<String>::new());
    }

    #[test]
    fn rust_block_with_other_whitespace_fails() {
        let text = format!(
            "Arquivo `src/main.rs`:\n\n```rust\n{}```\n",
            SOURCE.replace("    ", "  ")
        );
        assert!(rust_problems(&text)[0].contains("differs from src/main.rs: line 2"));
        let text = format!("Arquivo `src/main.rs`:\n\n```rust\n{SOURCE}\n```\n");
        assert!(rust_problems(&text)[0].contains("differs"));
    }

    #[test]
    fn rust_block_without_its_file_line_fails() {
        let problems = rust_problems(&format!("```rust\n{SOURCE}```\n"));
        assert!(problems[0].contains("not preceded"), "{problems:?}");
        assert!(
            problems[1].contains("src/main.rs is not shown"),
            "{problems:?}"
        );
        let problems = rust_problems(&format!("Arquivo `src/other.rs`:\n```rust\n{SOURCE}```\n"));
        assert!(
            problems[0].contains("cannot read src/other.rs"),
            "{problems:?}"
        );
    }

    #[test]
    fn unclosed_block_fails_to_parse() {
        assert!(parse("```rust\nfn main() {}\n").is_err());
    }

    #[test]
    fn sections_out_of_order_or_missing_fail() {
        let good = "# T\n## Como rodar\n## O que o slide ensina\n## O código\n## Uma execução\n\
                    ### Sempre verdadeiro\n### Pode variar\n## Diagrama\n\
                    ## Diferenças do Python\n## Experimente\n";
        assert_eq!(check_sections(&readme(good)), Vec::<String>::new());
        let swapped = good.replace("## Diagrama\n## Diferenças", "## Diferenças");
        let swapped = swapped.replace("## Experimente", "## Diagrama\n## Experimente");
        assert!(!check_sections(&readme(&swapped)).is_empty());
        let sub_swapped = good.replace("### Sempre verdadeiro\n### Pode variar", "### Pode variar");
        assert!(check_sections(&readme(&sub_swapped))[0].contains("Pode variar"));
        // A heading inside a code block is not a heading.
        let fenced = good.replace("## Experimente\n", "```sh\n## Experimente\n```\n");
        assert!(!check_sections(&readme(&fenced)).is_empty());
    }

    #[test]
    fn mermaid_must_be_a_well_formed_sequence_diagram() {
        let good = "```mermaid\nsequenceDiagram\n    participant P as Principal\n    \
                    participant F as Filho\n    P->>F: start()\n    par a\n        \
                    Note over F: oi\n    and b\n        F-->>P: fim\n    end\n```\n";
        assert_eq!(check_mermaid(&readme(good)), Vec::<String>::new());
        assert!(!check_mermaid(&readme("text only\n")).is_empty());
        assert!(!check_mermaid(&readme(&good.replace("sequenceDiagram", "graph TD"))).is_empty());
        assert!(!check_mermaid(&readme(&good.replace("    end\n", ""))).is_empty());
        assert!(!check_mermaid(&readme(&good.replace("F-->>P", "F-->>X"))).is_empty());
        assert!(!check_mermaid(&readme(&good.replace(": oi", ": oi; tchau"))).is_empty());
    }

    #[test]
    fn samples_must_be_labelled_and_real() {
        let text = "<!-- sample: a -->\n```text\nProcesso principal 7 inicializado\n```\n";
        let found = samples(&readme(text)).expect("one sample");
        assert_eq!((found[0].bin.as_str(), found[0].lines.len()), ("a", 1));
        assert_eq!(check_sample_text(&found[0]), Vec::<String>::new());

        assert!(samples(&readme("```text\nx\n```\n")).is_err());
        assert!(samples(&readme("<!-- sample: a -->\nprose\n```text\nx\n```\n")).is_err());

        let redacted = text.replace('7', PID);
        let found = samples(&readme(&redacted)).expect("one sample");
        assert!(!check_sample_text(&found[0]).is_empty());
        let twice = text.replace(
            "inicializado\n",
            "inicializado\nProcesso 8 x\nProcesso 8 x\n",
        );
        let found = samples(&readme(&twice)).expect("one sample");
        assert!(check_sample_text(&found[0])[0].contains("twice"));
    }

    #[test]
    fn redaction_matches_the_harness() {
        assert_eq!(
            redact("Processo 12 ouviu: Olá, aqui é o processo principal 34"),
            "Processo [PID] ouviu: Olá, aqui é o processo principal [PID]"
        );
        assert_eq!(
            redact("Processo 5 concluiu: Tarefa 1"),
            "Processo [PID] concluiu: Tarefa 1"
        );
        assert_eq!(
            redact("qsize(): 3 empty(): False"),
            "qsize(): 3 empty(): False"
        );
    }

    #[test]
    fn pid_roles_see_a_message_credited_to_the_wrong_process() {
        let lines = |reader: u32| {
            format!(
                "Processo principal 1 inicializado\nProcesso 2 iniciado\nProcesso 3 iniciado\n\
                 Mensagem lida: Mensagem do processo {reader}\nProcesso 2 finalizado\n"
            )
        };
        let patterns: Vec<String> = lines(2).lines().map(redact).collect();
        let patterns: Vec<&str> = patterns.iter().map(String::as_str).collect();
        let roles =
            |text: String| pid_roles(&Transcript::parse("t", 1, text.as_bytes()), 1, &patterns);
        assert_eq!(roles(lines(2)), roles(lines(2).replace('2', "9")));
        assert_ne!(roles(lines(2)), roles(lines(3)));
    }

    #[test]
    #[should_panic(expected = "before")]
    fn always_true_catches_an_impossible_order() {
        let lines = "Processo principal 1 inicializado\nProcesso 2 iniciado\n\
                     Processo principal 1 ouviu: Olá, aqui é o processo 2\n\
                     Processo 2 ouviu: Olá, aqui é o processo principal 1\n\
                     Processo 2 finalizado\nProcesso principal 1 finalizado\n";
        check_always_true(
            "lesson03-pipe",
            &Transcript::parse("t", 1, lines.as_bytes()),
        );
    }

    #[test]
    fn commands_and_links_are_checked() {
        let text = "# T\n## Como rodar\n```sh\ncargo run -q -p p\n```\n## O código\n";
        let problems = check_run_commands(&readme(text), "p", &["p", "b"]);
        assert_eq!(problems.len(), 3, "{problems:?}");

        let text =
            "# T\n## O código\n[a](#o-código) [b](#nada) [c](x/README.md#y) [d](https://x)\n";
        let problems = check_links(&readme(text), Path::new("/d"), |path| {
            (path == Path::new("/d/x/README.md")).then(|| "# Y\n".to_owned())
        });
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(problems[0].contains("#nada"));
        assert_eq!(
            slug("O `init()` e o método spawn"),
            "o-init-e-o-método-spawn"
        );
    }
}
