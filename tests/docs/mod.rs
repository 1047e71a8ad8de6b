//! The docs cannot drift from the code: every example in README.md and
//! docs/*.md is extracted and checked by what would read it.
//!
//! - ```` ```toml ```` blocks are whole configs: sluice's config loader must
//!   accept each as written, and the committed JSON Schema
//!   (schema/config.v1.json) must accept it too;
//! - ```` ```toml partial ```` blocks are pieces of one: they are loaded
//!   after `app = "shop"` and, when they define no environment, before an
//!   embedded-router environment (so `[notify]` or `[[defaults.check]]`
//!   load on their own);
//! - ```` ```yaml ```` blocks are workflows: actionlint and zizmor (with the
//!   repository's .github/zizmor.yml) must accept each; ```` ```yaml partial
//!   ```` blocks (a `permissions:` excerpt) must be YAML;
//! - ```` ```json ```` blocks must be JSON;
//! - every relative link points to a file that exists, and every `#anchor`
//!   to a heading of that page (GitHub's slugs);
//! - the README stays short enough to read (at most 250 lines);
//! - every binary's `--help` and `--version`, and every flag they list,
//!   against the pages (`cli`), the router's admin API against a real
//!   router (`router`), and docs/testing.md's "A canary by hand" run as
//!   written (`by_hand`).
//!
//! GitHub renders the block's first word as its language and ignores the
//! rest, so the `partial` marks are invisible to readers. Never edits a
//! page.

mod by_hand;
mod cli;
mod router;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("tests/ has a parent").to_owned()
}

/// README.md and every page of docs/, as (path relative to the root, text).
fn pages() -> Vec<(PathBuf, String)> {
    let root = root();
    let mut paths = vec![PathBuf::from("README.md")];
    let mut docs: Vec<PathBuf> = std::fs::read_dir(root.join("docs"))
        .expect("docs/")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
        .map(|p| p.strip_prefix(&root).expect("under the root").to_owned())
        .collect();
    docs.sort();
    paths.extend(docs);
    paths
        .into_iter()
        .map(|p| {
            let text = std::fs::read_to_string(root.join(&p)).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
            (p, text)
        })
        .collect()
}

/// A fenced code block: its info string, its text and the line it starts on.
struct Block {
    page: PathBuf,
    line: usize,
    lang: String,
    marks: Vec<String>,
    text: String,
}

impl Block {
    fn at(&self) -> String {
        format!("{}:{}", self.page.display(), self.line)
    }

    fn partial(&self) -> bool {
        self.marks.iter().any(|m| m == "partial")
    }
}

fn blocks() -> Vec<Block> {
    let mut out = Vec::new();
    for (page, text) in pages() {
        let mut open: Option<Block> = None;
        for (i, line) in text.lines().enumerate() {
            let trimmed = line.trim_start();
            match open.take() {
                None => {
                    if let Some(info) = trimmed.strip_prefix("```") {
                        let mut words = info.split_whitespace().map(str::to_owned);
                        let lang = words.next().unwrap_or_default();
                        let marks = words.collect();
                        open = Some(Block { page: page.clone(), line: i + 1, lang, marks, text: String::new() });
                    }
                }
                Some(mut block) => {
                    if trimmed.starts_with("```") {
                        out.push(block);
                    } else {
                        block.text.push_str(line);
                        block.text.push('\n');
                        open = Some(block);
                    }
                }
            }
        }
        assert!(open.is_none(), "{}: a code block is never closed", page.display());
    }
    out
}

/// A tool the checks need; scripts/setup-tools.sh installs it.
fn tool(name: &str) -> Command {
    let found =
        Command::new("sh").arg("-c").arg(format!("command -v {name}")).output().is_ok_and(|o| o.status.success());
    assert!(found, "{name} is not on PATH; scripts/setup-tools.sh installs it");
    Command::new(name)
}

/// What a config block is loaded as.
fn config_text(block: &Block) -> String {
    if !block.partial() {
        return block.text.clone();
    }
    let mut text = String::new();
    if !block.text.lines().any(|l| l.starts_with("app =")) {
        text.push_str("app = \"shop\"\n");
    }
    text.push_str(&block.text);
    if !block.text.contains("[[environment]]") {
        text.push_str(
            "\n[[environment]]\nname = \"dev\"\nrouter = { kind = \"local\", admin_url = \"http://127.0.0.1:9001\" }\n",
        );
    }
    text
}

#[test]
fn every_toml_example_loads() {
    let blocks: Vec<Block> = blocks().into_iter().filter(|b| b.lang == "toml").collect();
    assert!(blocks.len() >= 10, "found only {} TOML blocks", blocks.len());
    let mut whole = Vec::new();
    for block in &blocks {
        let text = config_text(block);
        if let Err(e) = sluice_core::config::Config::parse(&text, Path::new("sluice.toml")) {
            panic!("{}: the config loader refuses this example:\n{e}\n---\n{text}", block.at());
        }
        if !block.partial() {
            let value: toml::Value = toml::from_str(&text).expect("it parsed above");
            whole.push((block.at(), serde_json::to_string(&value).expect("TOML values are JSON")));
        }
    }
    assert!(!whole.is_empty(), "no whole config among the examples");
    // The committed JSON Schema, as an editor would apply it.
    let schema = root().join("schema/config.v1.json");
    let check = r#"
import json, sys, jsonschema
schema = json.load(open(sys.argv[1]))
bad = 0
for line in sys.stdin:
    at, doc = line.split("\t", 1)
    for e in jsonschema.Draft202012Validator(schema).iter_errors(json.loads(doc)):
        print(f"{at}: {'.'.join(map(str, e.absolute_path))}: {e.message}")
        bad += 1
sys.exit(1 if bad else 0)
"#;
    let mut child = tool("python3")
        .arg("-c")
        .arg(check)
        .arg(&schema)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("python3 runs");
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().expect("stdin");
        for (at, doc) in &whole {
            writeln!(stdin, "{at}\t{doc}").expect("write");
        }
    }
    let out = child.wait_with_output().expect("python3 ends");
    assert!(
        out.status.success(),
        "schema/config.v1.json refuses an example (python3's jsonschema; scripts/setup-tools.sh installs it with moto):\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn every_workflow_example_passes_actionlint_and_zizmor() {
    let blocks: Vec<Block> = blocks().into_iter().filter(|b| b.lang == "yaml" || b.lang == "yml").collect();
    let dir = tempfile::tempdir().expect("tempdir");
    let workflows = dir.path().join(".github/workflows");
    std::fs::create_dir_all(&workflows).expect("mkdir");
    let mut files = Vec::new();
    for (i, block) in blocks.iter().enumerate() {
        if block.partial() {
            serde_yaml::from_str::<serde_yaml::Value>(&block.text)
                .unwrap_or_else(|e| panic!("{}: not YAML: {e}", block.at()));
            continue;
        }
        let file = workflows.join(format!("example-{i}.yml"));
        std::fs::write(&file, &block.text).expect("write");
        files.push((block.at(), file));
    }
    assert!(files.len() >= 2, "the README's and docs/workflows.md's workflows");
    for (at, file) in &files {
        let out = tool("actionlint").arg(file).current_dir(dir.path()).output().expect("actionlint runs");
        assert!(
            out.status.success(),
            "{at}: actionlint refuses this workflow:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let out = tool("zizmor")
            .args(["--offline", "--config"])
            .arg(root().join(".github/zizmor.yml"))
            .arg(file)
            .output()
            .expect("zizmor runs");
        assert!(
            out.status.success(),
            "{at}: zizmor finds problems in this workflow:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn every_json_example_is_json() {
    for block in blocks().into_iter().filter(|b| b.lang == "json") {
        serde_json::from_str::<serde_json::Value>(&block.text).unwrap_or_else(|e| panic!("{}: {e}", block.at()));
    }
}

/// GitHub's anchor for a heading: lowercase, punctuation but `-` and `_`
/// dropped, spaces as `-`.
fn slug(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter_map(|c| match c {
            ' ' => Some('-'),
            c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
            _ => None,
        })
        .collect()
}

fn anchors(text: &str) -> BTreeSet<String> {
    let mut fenced = false;
    let mut out = BTreeSet::new();
    for line in text.lines() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
        }
        if !fenced && line.starts_with('#') {
            out.insert(slug(line.trim_start_matches('#')));
        }
    }
    out
}

#[test]
fn every_relative_link_and_anchor_exists() {
    assert_eq!(slug("Calibration on live traffic (A/A)"), "calibration-on-live-traffic-aa");
    assert_eq!(slug("`sluice status`"), "sluice-status");
    let root = root();
    let pages = pages();
    let mut broken = Vec::new();
    for (page, text) in &pages {
        let dir = page.parent().unwrap_or(Path::new(""));
        let mut rest = text.as_str();
        while let Some(i) = rest.find("](") {
            rest = &rest[i + 2..];
            let Some(end) = rest.find(')') else { break };
            let target = &rest[..end];
            if target.contains("://") || target.starts_with("mailto:") || target.contains(' ') {
                continue;
            }
            let (file, anchor) = target.split_once('#').unwrap_or((target, ""));
            let file = if file.is_empty() { page.clone() } else { dir.join(file) };
            let path = root.join(&file);
            if !path.exists() {
                broken.push(format!("{}: {target}: no such file", page.display()));
                continue;
            }
            if !anchor.is_empty() {
                let text = std::fs::read_to_string(&path).unwrap_or_default();
                if !anchors(&text).contains(anchor) {
                    broken.push(format!("{}: {target}: no such heading", page.display()));
                }
            }
        }
    }
    assert!(broken.is_empty(), "broken links:\n{}", broken.join("\n"));
}

#[test]
fn the_readme_is_short() {
    let readme = std::fs::read_to_string(root().join("README.md")).expect("README.md");
    let lines = readme.lines().count();
    assert!(lines <= 250, "README.md has {lines} lines; move details to docs/ (at most 250)");
}
