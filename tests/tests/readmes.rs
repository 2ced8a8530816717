//! Keeps each lesson's `README.md` in step with its crate, in what only a README check sees
//! (each lesson's own tests check its sample runs against the lesson's guarantees):
//!
//! - Every ```` ```rust ```` block follows a line ``Arquivo `PATH`:`` (PATH relative to the
//!   lesson's crate) and equals that file byte for byte, either as committed (`git show
//!   HEAD:PATH`) or as it is in the working tree; every committed `.rs` file under `src/` is
//!   shown. So a learner's uncommitted edit of `src/` (an "Experimente") fails nothing here,
//!   and CI, on a clean checkout, compares the committed files. Outside a git checkout, only
//!   the working tree counts.
//! - The text blocks are the sample runs, one per binary (a `--timeline` drawing is in a
//!   plain block, under "Linha do tempo").
//! - The sections come in the agreed order, and "Como rodar" gives the commands.
//! - Relative links, and their anchors, resolve.

use std::collections::BTreeSet;
use std::fs;
use std::path::Path;
use std::process::{Command, Stdio};

use lesson_tests::readme::{Kind, Readme, marked};

/// Each lesson crate (its directory is its package name) and its binaries.
const DOCS: [(&str, &[&str]); 8] = [
    ("lesson01-processes", &["lesson01-processes"]),
    (
        "lesson02-queue",
        &["lesson02-queue", "lesson02-queue-two-processes"],
    ),
    ("lesson03-pipe", &["lesson03-pipe"]),
    (
        "lesson04-joinable",
        &["lesson04-joinable", "lesson04-joinable-threads"],
    ),
    ("lesson05-value", &["lesson05-value"]),
    ("lesson06-pool", &["lesson06-pool"]),
    ("lesson07-shared-memory", &["lesson07-shared-memory"]),
    ("lesson08-manager", &["lesson08-manager"]),
];

/// The level-2 sections of every README, in order, each with the level-3 sections it must hold.
const SECTIONS: &[(&str, &[&str])] = &[
    ("Como rodar", &[]),
    ("O que o slide ensina", &[]),
    ("O código", &[]),
    ("Uma execução", &["Sempre verdadeiro", "Pode variar"]),
    ("Linha do tempo", &[]),
    ("Diagrama", &[]),
    ("Diferenças do Python", &[]),
    ("Experimente", &[]),
];

/// Other names a section may go by, and the name in [`SECTIONS`] they stand for: lesson 06
/// has no slide (the course's slides stop before `Pool`), so what it teaches comes from its
/// listing.
const SECTION_ALIASES: &[(&str, &str)] = &[("O que a listagem ensina", "O que o slide ensina")];

/// `heading` as [`SECTIONS`] names it.
fn canonical(heading: &str) -> &str {
    SECTION_ALIASES
        .iter()
        .find(|(alias, _)| *alias == heading)
        .map_or(heading, |(_, name)| name)
}

const FILE_MARKER: (&str, &str) = ("Arquivo `", "`:");

#[test]
fn rust_blocks_equal_their_source_files() {
    for_each_doc(|dir, _, readme| {
        let required = match git(dir, &["ls-tree", "-r", "--name-only", "HEAD", "--", "src"]) {
            Some(listing) => listing
                .lines()
                .filter(|path| path.ends_with(".rs"))
                .map(str::to_owned)
                .collect(),
            None => rust_sources(&dir.join("src"), dir),
        };
        check_rust_blocks(readme, &required, |path| {
            let mut versions: Vec<String> =
                fs::read_to_string(dir.join(path)).into_iter().collect();
            versions.extend(git(dir, &["show", &format!("HEAD:./{path}")]));
            versions
        })
    });
}

#[test]
fn sections_commands_and_samples() {
    for_each_doc(|dir, bins, readme| {
        let package = dir.file_name().unwrap().to_str().unwrap();
        let mut problems = check_sections(readme);
        problems.extend(check_run_commands(readme, package, bins));
        match readme.samples() {
            Ok(samples) if samples.keys().eq(bins.iter()) => {}
            Ok(samples) => problems.push(format!(
                "sample runs of {:?}, expected one of each of {bins:?}",
                samples.keys()
            )),
            Err(sample_problems) => problems.extend(sample_problems),
        }
        problems
    });
}

#[test]
fn relative_links_resolve() {
    for_each_doc(|dir, _, readme| check_links(readme, dir, |path| fs::read_to_string(path).ok()));
}

/// Runs `check` on every lesson README (its crate's directory, its binaries, the README) and
/// fails with every problem found.
fn for_each_doc(check: impl Fn(&Path, &[&str], &Readme) -> Vec<String>) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ is in the workspace");
    let mut problems = Vec::new();
    for (package, bins) in DOCS {
        let dir = root.join(package);
        let readme = match fs::read_to_string(dir.join("README.md")) {
            Ok(text) => Readme::parse(&text),
            Err(error) => {
                problems.push(format!("{package}/README.md: {error}"));
                continue;
            }
        };
        let found = check(&dir, bins, &readme);
        problems.extend(
            found
                .into_iter()
                .map(|p| format!("{package}/README.md: {p}")),
        );
    }
    assert!(problems.is_empty(), "\n{}", problems.join("\n"));
}

/// What `git ARGS` prints, run in `dir`; `None` outside a git checkout (or without git).
fn git(dir: &Path, args: &[&str]) -> Option<String> {
    let output = Command::new("git")
        .args(args)
        .current_dir(dir)
        .stderr(Stdio::null())
        .output();
    let output = output.ok().filter(|output| output.status.success())?;
    Some(String::from_utf8_lossy(&output.stdout).into_owned())
}

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

/// Each Rust block is labelled ``Arquivo `PATH`:`` and equals one of `versions(PATH)`;
/// together the blocks show every file of `required`.
fn check_rust_blocks(
    readme: &Readme,
    required: &BTreeSet<String>,
    versions: impl Fn(&str) -> Vec<String>,
) -> Vec<String> {
    let mut problems = Vec::new();
    let mut shown = BTreeSet::new();
    for (block, content, label) in readme.code("rust").chain(readme.code("rs")) {
        let line = block.line;
        let Some(path) = marked(label, FILE_MARKER) else {
            let (before, after) = FILE_MARKER;
            problems.push(format!(
                "the rust block on line {line} is not right after a line like {before}src/main.rs{after}"
            ));
            continue;
        };
        if !shown.insert(path.to_owned()) {
            problems.push(format!("{path} is shown twice (line {line})"));
        }
        match versions(path).as_slice() {
            [] => problems.push(format!("line {line}: cannot read {path}")),
            found if found.iter().any(|source| source == content) => {}
            [source, ..] => problems.push(format!(
                "the rust block on line {line} differs from {path}: {}",
                first_difference(content, source)
            )),
        }
    }
    for missing in required.difference(&shown) {
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

/// The `## ` headings are exactly [`SECTIONS`], in order, after one `# ` title, and each holds
/// its `### ` headings in order.
fn check_sections(readme: &Readme) -> Vec<String> {
    let headings: Vec<(usize, &str)> = readme
        .headings()
        .map(|(level, name)| (level, canonical(name)))
        .collect();
    let mut problems = Vec::new();
    if headings.first().map(|h| h.0) != Some(1) {
        problems.push("the README does not open with a `# ` title".to_owned());
    }
    let level2: Vec<&str> = headings.iter().filter(|h| h.0 == 2).map(|h| h.1).collect();
    let required: Vec<&str> = SECTIONS.iter().map(|(name, _)| *name).collect();
    if level2 != required {
        problems.push(format!(
            "the `## ` sections are {level2:?}, expected {required:?}"
        ));
        return problems;
    }
    for (name, subsections) in SECTIONS {
        let start = headings
            .iter()
            .position(|h| *h == (2, *name))
            .expect("checked above");
        let inside = headings[start + 1..].iter().take_while(|h| h.0 > 2);
        let inside: Vec<&str> = inside.filter(|h| h.0 == 3).map(|h| h.1).collect();
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

/// "Como rodar" gives, for each binary, the plain and the spawn command, each on a line.
fn check_run_commands(readme: &Readme, package: &str, bins: &[&str]) -> Vec<String> {
    let section = readme
        .blocks
        .iter()
        .skip_while(|b| !matches!(&b.kind, Kind::Heading(2, name) if name == "Como rodar"));
    let section = section
        .skip(1)
        .take_while(|b| !matches!(b.kind, Kind::Heading(1 | 2, _)));
    let lines: BTreeSet<&str> = section
        .flat_map(|b| b.source.lines())
        .map(str::trim)
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

/// Every relative link `[..](path#anchor)` names an existing file (or directory), and an
/// anchor names a heading of it (GitHub's slugs).
fn check_links(readme: &Readme, dir: &Path, read: impl Fn(&Path) -> Option<String>) -> Vec<String> {
    let mut problems = Vec::new();
    for link in &readme.links {
        let target = link.target.as_str();
        if target.contains("://") || target.starts_with("mailto:") {
            continue;
        }
        let (path, anchor) = target.split_once('#').unwrap_or((target, ""));
        let slugs = if path.is_empty() {
            Some(readme.headings().map(|(_, text)| slug(text)).collect())
        } else if dir.join(path).is_dir() {
            Some(BTreeSet::new())
        } else {
            read(&dir.join(path)).map(|text| {
                Readme::parse(&text)
                    .headings()
                    .map(|(_, text)| slug(text))
                    .collect()
            })
        };
        match slugs {
            None => problems.push(format!("line {}: `{target}` does not exist", link.line)),
            Some(slugs) if !anchor.is_empty() && !slugs.contains(anchor) => problems.push(format!(
                "line {}: no heading for `#{anchor}` in `{path}`",
                link.line
            )),
            Some(_) => {}
        }
    }
    problems
}

/// GitHub's anchor for a heading: lower case, only letters, digits, `-`, `_` and spaces kept,
/// spaces made `-`.
fn slug(heading: &str) -> String {
    let kept = |c: &char| c.is_alphanumeric() || matches!(c, '-' | '_' | ' ');
    let lower = heading.to_lowercase();
    lower
        .chars()
        .filter(kept)
        .map(|c| if c == ' ' { '-' } else { c })
        .collect()
}

/// The checks themselves fail on bad READMEs.
mod checks_fail {
    use super::*;

    const SOURCE: &str = "fn main() {\n    println!(\"oi\");\n}\n";

    fn rust_problems(text: &str) -> Vec<String> {
        let required = BTreeSet::from(["src/main.rs".to_owned()]);
        let versions = |path: &str| match path {
            // As committed, and as a learner edited it.
            "src/main.rs" => vec![SOURCE.replace("oi", "olá"), SOURCE.to_owned()],
            _ => Vec::new(),
        };
        check_rust_blocks(&Readme::parse(text), &required, versions)
    }

    #[test]
    fn a_rust_block_equal_to_its_file_as_committed_or_as_edited_passes() {
        let text = format!("Arquivo `src/main.rs`:\n\n```rust\n{SOURCE}```\n");
        assert_eq!(rust_problems(&text), Vec::<String>::new());
        let edited = text.replace("oi", "olá");
        assert_eq!(rust_problems(&edited), Vec::<String>::new());
    }

    #[test]
    fn a_rust_block_with_other_whitespace_fails() {
        let text = format!(
            "Arquivo `src/main.rs`:\n\n```rust\n{}```\n",
            SOURCE.replace("    ", "  ")
        );
        assert!(rust_problems(&text)[0].contains("differs from src/main.rs: line 2"));
        let text = format!("Arquivo `src/main.rs`:\n\n```rust\n{SOURCE}\n```\n");
        assert!(rust_problems(&text)[0].contains("differs"));
    }

    #[test]
    fn a_rust_block_without_its_file_line_fails() {
        let problems = rust_problems(&format!("```rust\n{SOURCE}```\n"));
        assert!(problems[0].contains("not right after"), "{problems:?}");
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
    fn sections_out_of_order_or_missing_fail() {
        let good = "# T\n## Como rodar\n## O que o slide ensina\n## O código\n## Uma execução\n\
                    ### Sempre verdadeiro\n### Pode variar\n## Linha do tempo\n## Diagrama\n\
                    ## Diferenças do Python\n## Experimente\n";
        let problems = |text: &str| check_sections(&Readme::parse(text));
        assert_eq!(problems(good), Vec::<String>::new());
        let swapped = good.replace("## Diagrama\n## Diferenças", "## Diferenças");
        let swapped = swapped.replace("## Experimente", "## Diagrama\n## Experimente");
        assert!(!problems(&swapped).is_empty());
        let sub_swapped = good.replace("### Sempre verdadeiro\n### Pode variar", "### Pode variar");
        assert!(problems(&sub_swapped)[0].contains("Pode variar"));
        // A heading inside a code block is not a heading.
        let fenced = good.replace("## Experimente\n", "```sh\n## Experimente\n```\n");
        assert!(!problems(&fenced).is_empty());
    }

    #[test]
    fn commands_and_links_are_checked() {
        let text = "# T\n## Como rodar\n```sh\ncargo run -q -p p\n```\n## O código\n";
        let problems = check_run_commands(&Readme::parse(text), "p", &["p", "b"]);
        assert_eq!(problems.len(), 3, "{problems:?}");

        let text = "# T\n## O código\n[a](#o-código) [b](#nada) [c](x/README.md#y) \
                    [d](https://x) [e](nada.md)\n";
        let problems = check_links(&Readme::parse(text), Path::new("/d"), |path| {
            (path == Path::new("/d/x/README.md")).then(|| "# Y\n".to_owned())
        });
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert!(problems[0].contains("#nada") && problems[1].contains("nada.md"));
        assert_eq!(slug("O init() e o método spawn"), "o-init-e-o-método-spawn");
    }
}
