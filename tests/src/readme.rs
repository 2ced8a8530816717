//! A lesson's `README.md` read with pulldown-cmark: its blocks in order, its headings and links,
//! and the sample runs it shows, each a ```` ```text ```` block right after a line
//! `<!-- sample: BIN -->`.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

use pulldown_cmark::{CodeBlockKind, Event, Parser, Tag, TagEnd};

use crate::Transcript;

/// Marks a sample run of the binary it names: `<!-- sample: BIN -->`.
pub const SAMPLE_MARKER: (&str, &str) = ("<!-- sample: ", " -->");

/// A parsed README.
pub struct Readme {
    /// The top-level blocks, and every code block (even in a list), in order.
    pub blocks: Vec<Block>,
    /// Every link, wherever it is.
    pub links: Vec<Link>,
}

/// A block of the README.
pub struct Block {
    /// The line it starts on, from 1.
    pub line: usize,
    /// Its Markdown source.
    pub source: String,
    /// What it is.
    pub kind: Kind,
}

/// What a [`Block`] is, as far as the checks care.
pub enum Kind {
    /// A heading: its level (1 to 6) and its text, without markup.
    Heading(usize, String),
    /// A fenced or indented code block: its language (the info string's first word) and its
    /// content.
    Code(String, String),
    /// A paragraph, a list, an HTML block, ...
    Other,
}

/// A link `[text](target)`.
pub struct Link {
    /// The line it is on, from 1.
    pub line: usize,
    /// Where it points.
    pub target: String,
}

impl Readme {
    /// Parses `markdown`.
    pub fn parse(markdown: &str) -> Readme {
        let line = |offset: usize| markdown[..offset].matches('\n').count() + 1;
        let (mut blocks, mut links) = (Vec::new(), Vec::new());
        let mut depth = 0;
        let mut text: Option<String> = None; // of the heading or code block being read
        let mut kind = Kind::Other;
        for (event, range) in Parser::new(markdown).into_offset_iter() {
            match event {
                Event::Start(tag) => {
                    depth += 1;
                    match tag {
                        Tag::Heading { level, .. } => {
                            kind = Kind::Heading(level as usize, String::new());
                            text = Some(String::new());
                        }
                        Tag::CodeBlock(code) => {
                            let info = match code {
                                CodeBlockKind::Fenced(info) => info.to_string(),
                                CodeBlockKind::Indented => String::new(),
                            };
                            let language = info.split([' ', ',', '{']).next().unwrap_or_default();
                            kind = Kind::Code(language.to_owned(), String::new());
                            text = Some(String::new());
                        }
                        Tag::Link { dest_url, .. } => links.push(Link {
                            line: line(range.start),
                            target: dest_url.to_string(),
                        }),
                        _ => {}
                    }
                }
                Event::Text(piece) | Event::Code(piece) => {
                    if let Some(text) = &mut text {
                        text.push_str(&piece);
                    }
                }
                // An end comes with the range of the whole block.
                Event::End(end) => {
                    depth -= 1;
                    if depth == 0 || end == TagEnd::CodeBlock {
                        let mut kind = std::mem::replace(&mut kind, Kind::Other);
                        if let (Kind::Heading(_, body) | Kind::Code(_, body), Some(text)) =
                            (&mut kind, text.take())
                        {
                            *body = text;
                        }
                        let block = Block {
                            line: line(range.start),
                            source: markdown[range.clone()].to_owned(),
                            kind,
                        };
                        blocks.push((range.start, block));
                    }
                }
                _ => {}
            }
        }
        // A code block inside a list ends before the list does.
        blocks.sort_by_key(|(start, _)| *start);
        let blocks = blocks.into_iter().map(|(_, block)| block).collect();
        Readme { blocks, links }
    }

    /// The source of the block before block `index`, trimmed: what labels a code block.
    pub fn label(&self, index: usize) -> &str {
        let previous = index.checked_sub(1).map(|i| self.blocks[i].source.trim());
        previous.unwrap_or_default()
    }

    /// The headings, as (level, text).
    pub fn headings(&self) -> impl Iterator<Item = (usize, &str)> {
        self.blocks.iter().filter_map(|block| match &block.kind {
            Kind::Heading(level, text) => Some((*level, text.as_str())),
            _ => None,
        })
    }

    /// The code blocks in `language`, as (block, content, label).
    pub fn code(&self, language: &str) -> impl Iterator<Item = (&Block, &str, &str)> {
        let blocks = self.blocks.iter().enumerate();
        blocks.filter_map(move |(index, block)| match &block.kind {
            Kind::Code(lang, content) if lang == language => {
                Some((block, content.as_str(), self.label(index)))
            }
            _ => None,
        })
    }

    /// The sample runs, by binary; or why the README's text blocks are not all sample runs,
    /// one per binary, each right after its marker.
    pub fn samples(&self) -> Result<BTreeMap<&str, &str>, Vec<String>> {
        let mut samples = BTreeMap::new();
        let mut problems = Vec::new();
        for (block, content, label) in self.code("text") {
            match marked(label, SAMPLE_MARKER) {
                Some(bin) if samples.insert(bin, content).is_some() => {
                    problems.push(format!("two sample runs of {bin}"));
                }
                Some(_) => {}
                None => problems.push(format!(
                    "the text block on line {} is not right after {}BIN{}",
                    block.line, SAMPLE_MARKER.0, SAMPLE_MARKER.1
                )),
            }
        }
        for (index, block) in self.blocks.iter().enumerate() {
            let next = self.blocks.get(index + 1).map(|next| &next.kind);
            let labels_text = matches!(next, Some(Kind::Code(lang, _)) if lang == "text");
            if marked(block.source.trim(), SAMPLE_MARKER).is_some() && !labels_text {
                problems.push(format!(
                    "the sample marker on line {} is not right before a text block",
                    block.line
                ));
            }
        }
        if problems.is_empty() {
            Ok(samples)
        } else {
            Err(problems)
        }
    }
}

/// `text` between `marker.0` and `marker.1`, if `label` is exactly such a marker.
pub fn marked<'a>(label: &'a str, marker: (&str, &str)) -> Option<&'a str> {
    label
        .strip_prefix(marker.0)?
        .strip_suffix(marker.1)
        .filter(|inner| !inner.is_empty() && !inner.contains('`'))
}

/// The sample run of `bin` in the README of the crate at `crate_dir`, as a transcript.
#[track_caller]
pub fn sample(crate_dir: &str, bin: &str) -> Transcript {
    let path = Path::new(crate_dir).join("README.md");
    let text = fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let readme = Readme::parse(&text);
    let samples = readme
        .samples()
        .unwrap_or_else(|problems| panic!("{}:\n{}", path.display(), problems.join("\n")));
    let Some(sample) = samples.get(bin) else {
        panic!("{}: no sample run of {bin}", path.display());
    };
    let context = format!("{}: the sample run of {bin}", path.display());
    Transcript::parse(&context, sample.as_bytes())
}

#[cfg(test)]
mod unit {
    use super::*;

    #[test]
    fn blocks_labels_headings_and_links() {
        let text = "# T\n\nArquivo `a.rs`:\n\n```rust\nfn main() {}\n```\n\n\
                    - item\n\n  ```text\n  x\n  ```\n\n## O `init()` [l](#t)\n";
        let readme = Readme::parse(text);
        let rust: Vec<_> = readme
            .code("rust")
            .map(|(b, c, l)| (b.line, c, l))
            .collect();
        assert_eq!(rust, [(5, "fn main() {}\n", "Arquivo `a.rs`:")]);
        // A code block inside a list is still seen, labelled by the list.
        let (block, content, label) = readme.code("text").next().unwrap();
        assert_eq!(
            (block.line, content, label.starts_with("- item")),
            (11, "x\n", true)
        );
        assert_eq!(
            readme.headings().collect::<Vec<_>>(),
            [(1, "T"), (2, "O init() l")]
        );
        assert_eq!(
            (readme.links[0].line, readme.links[0].target.as_str()),
            (15, "#t")
        );
    }

    #[test]
    fn samples_must_be_labelled_once_and_right_after_their_marker() {
        let text = "<!-- sample: a -->\n```text\nProcesso principal 7 inicializado\n```\n";
        let readme = Readme::parse(text);
        let samples: Vec<_> = readme.samples().expect("one sample").into_iter().collect();
        assert_eq!(samples, [("a", "Processo principal 7 inicializado\n")]);

        let problems = |text: &str| Readme::parse(text).samples().unwrap_err();
        assert!(problems("```text\nx\n```\n")[0].contains("not right after"));
        let prose = problems("<!-- sample: a -->\n\nprose\n\n```text\nx\n```\n");
        assert_eq!(prose.len(), 2, "{prose:?}");
        assert!(problems(&format!("{text}\n{text}"))[0].contains("two sample runs of a"));
    }
}
