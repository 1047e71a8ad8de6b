//! Every binary's `--help` and `--version`, against docs/: each answers
//! both; a step's help says what it does, its exit codes and two examples; and
//! every flag a `--help` lists is on the page that documents the binary
//! (a flag added without its docs fails here). The help texts are kept as
//! snapshots (tests/docs/snapshots/) so a review sees every change to them.
//!
//! Runs the debug binaries of `cargo build --workspace --bins`, as the
//! workflow scenarios do. Never edits a page.

use super::root;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The six steps: each also runs as `sluice STEP`.
const STEPS: [&str; 6] = ["gate", "shift-traffic", "verify-health", "promote", "rollback", "dora-report"];

/// A built binary of the workspace (`target/debug`; this test binary lives
/// in its `deps/`).
pub(super) fn binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("the test binary's path");
    let dir = exe.parent().and_then(Path::parent).expect("target/PROFILE/deps/e2e-*");
    let path = dir.join(name);
    assert!(
        path.is_file(),
        "{} is not built; run `cargo build --workspace --bins` first (scripts/test.sh does)",
        path.display()
    );
    path
}

/// Runs a binary with nothing from this environment (an `INPUT_CONFIG`
/// would show in the help as `[env: INPUT_CONFIG=...]`, `COLUMNS` would
/// rewrap it).
fn run(name: &str, args: &[&str]) -> Output {
    Command::new(binary(name)).args(args).env_clear().output().expect("the binary runs")
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The help of a binary (or `sluice SUBCOMMAND`), checked to exit 0.
fn help(name: &str, sub: Option<&str>) -> String {
    let args: Vec<&str> = sub.into_iter().chain(["--help"]).collect();
    let out = run(name, &args);
    let shown = format!("{name} {}", args.join(" "));
    assert!(out.status.success(), "`{shown}` exits {:?}: {}", out.status.code(), String::from_utf8_lossy(&out.stderr));
    let text = stdout(&out);
    assert!(!text.trim().is_empty(), "`{shown}` printed nothing");
    text
}

/// The long flags an option list shows (`--config <PATH>`, `-e, --environment`),
/// but `--help` and `--version`.
fn flags(help: &str) -> Vec<String> {
    help.lines()
        .filter(|l| l.starts_with(' '))
        .map(str::trim_start)
        .filter_map(|l| {
            let l = l.strip_prefix('-').filter(|l| !l.starts_with('-')).map_or(l, |l| l[1..].trim_start_matches(", "));
            let rest = l.strip_prefix("--")?;
            let name: String = rest.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '-').collect();
            (!name.is_empty()).then(|| format!("--{name}"))
        })
        .filter(|f| f != "--help" && f != "--version")
        .collect()
}

#[test]
fn flags_parse_from_an_option_list() {
    let text = "Usage: x\n\nOptions:\n      --config <PATH>  The file\n  -e, --environment <NAME>  Env\n                  wrapped --not-a-flag\n  -h, --help  Print help\n";
    assert_eq!(flags(text), ["--config", "--environment"]);
}

/// The section of a page under a `## ` heading, up to the next one.
fn section<'a>(page: &'a str, heading: &str) -> &'a str {
    let start = page.find(&format!("\n{heading}\n")).unwrap_or_else(|| panic!("no heading {heading:?}"));
    let text = &page[start + heading.len() + 2..];
    &text[..text.find("\n## ").unwrap_or(text.len())]
}

fn read(page: &str) -> String {
    std::fs::read_to_string(root().join(page)).unwrap_or_else(|e| panic!("{page}: {e}"))
}

#[test]
fn every_binary_answers_help_and_version() {
    let version = env!("CARGO_PKG_VERSION");
    let mut binaries: Vec<&str> = STEPS.to_vec();
    binaries.extend(["sluice", "sluice-router", "sluice-demo-app", "sluice-loadgen"]);
    for name in binaries {
        let out = run(name, &["--version"]);
        assert!(out.status.success(), "`{name} --version` exits {:?}", out.status.code());
        assert_eq!(stdout(&out).trim(), format!("{name} {version}"), "`{name} --version`");
        let text = help(name, None);
        insta::assert_snapshot!(format!("help-{name}"), text);
    }
    for sub in ["status", "inspect"] {
        let text = help("sluice", Some(sub));
        insta::assert_snapshot!(format!("help-sluice-{sub}"), text);
    }
    // A step through the multi-call binary helps as the step does.
    for step in STEPS {
        assert_eq!(help("sluice", Some(step)), help(step, None), "`sluice {step} --help` differs from `{step} --help`");
    }
}

/// What a step's help must say: what it does (before `Usage:`), its exit
/// codes (those of the README's table), and two examples.
#[test]
fn every_step_helps_with_purpose_exit_codes_and_two_examples() {
    let readme = read("README.md");
    let table = section(&readme, "## Exit codes");
    for code in ["| 0 |", "| 1 |", "| 2 |", "| 3 |", "| 130, 143 |"] {
        assert!(table.contains(code), "the README's exit-code table lost {code}");
    }
    for step in STEPS.iter().copied().chain(["status"]) {
        let text = if step == "status" { help("sluice", Some("status")) } else { help(step, None) };
        let purpose = text.split("Usage:").next().unwrap_or_default();
        assert!(purpose.split_whitespace().count() >= 8, "`{step} --help` does not say what it does:\n{text}");
        let codes = text.split("Exit codes:").nth(1).unwrap_or_else(|| panic!("`{step} --help` has no exit codes"));
        let codes = codes[..codes.find("\n\n").unwrap_or(codes.len())].split_whitespace().collect::<Vec<_>>().join(" ");
        let wanted: &[&str] = if step == "status" { &["0 ", "2 ", "3 "] } else { &["0 ", "1 ", "2 ", "3 ", "130/143"] };
        for code in wanted {
            assert!(codes.contains(code), "`{step} --help`'s exit codes lack {code:?}:\n{codes}");
        }
        let examples = text.split("Examples:\n").nth(1).unwrap_or_default();
        let examples = examples.lines().take_while(|l| l.starts_with("  ")).count();
        assert!(examples >= 2, "`{step} --help` shows {examples} examples, not two:\n{text}");
    }
}

/// Every flag in a binary's `--help` is on the page for it: the steps'
/// on docs/cli.md (each step's in its own entry of "Flags" or the flags
/// every step has), the router's on docs/routers.md, the demo app's and
/// the load generator's on docs/testing.md.
#[test]
fn every_flag_in_a_help_is_documented() {
    let cli = read("docs/cli.md");
    let flags_section = section(&cli, "## Flags");
    let items: Vec<&str> = flags_section.split("\n- ").collect();
    let names_a_step = |item: &str| STEPS.iter().any(|s| item.starts_with(&format!("`{s}")));
    let common: String = items.iter().filter(|i| !names_a_step(i)).copied().collect::<Vec<_>>().join("\n");
    let mut missing = Vec::new();
    for step in STEPS {
        let own: String = items
            .iter()
            .filter(|i| names_a_step(i))
            .filter(|i| [" ", "`", "]"].iter().any(|end| i.contains(&format!("`{step}{end}"))))
            .copied()
            .collect::<Vec<_>>()
            .join("\n");
        assert!(!own.is_empty(), "docs/cli.md's \"Flags\" has no entry for `{step}`");
        for flag in flags(&help(step, None)) {
            if !own.contains(&flag) && !common.contains(&flag) {
                missing.push(format!("`{step} {flag}`: not in its entry of docs/cli.md's \"Flags\""));
            }
        }
    }
    for (sub, heading) in [("status", "## `sluice status`"), ("inspect", "## `sluice inspect`")] {
        let page = section(&cli, heading);
        for flag in flags(&help("sluice", Some(sub))) {
            if !page.contains(&flag) && !common.contains(&flag) {
                missing.push(format!("`sluice {sub} {flag}`: not under {heading:?} in docs/cli.md"));
            }
        }
    }
    for (name, page) in [
        ("sluice-router", "docs/routers.md"),
        ("sluice-demo-app", "docs/testing.md"),
        ("sluice-loadgen", "docs/testing.md"),
    ] {
        let text = read(page);
        for flag in flags(&help(name, None)) {
            if !text.contains(&format!("`{flag}")) {
                missing.push(format!("`{name} {flag}`: not on {page}"));
            }
        }
    }
    assert!(missing.is_empty(), "flags without docs:\n{}", missing.join("\n"));
}

/// The examples of a help text: the indented lines after `Examples:`.
fn examples(help: &str) -> Vec<String> {
    let text = help.split("Examples:\n").nth(1).unwrap_or_default();
    text.lines().take_while(|l| l.starts_with("  ")).map(|l| l.trim().to_owned()).collect()
}

/// Every example a step's help shows parses as written: run with a config
/// that does not exist, it gets as far as loading it (exit 2, "config file
/// not found"), never to clap's usage error.
#[test]
fn every_example_in_a_steps_help_parses() {
    let dir = tempfile::tempdir().expect("tempdir");
    let bin = binary("sluice");
    let bin_dir = bin.parent().expect("target/debug");
    let mut seen = 0;
    for step in STEPS.iter().copied().chain(["status"]) {
        let text = if step == "status" { help("sluice", Some("status")) } else { help(step, None) };
        for example in examples(&text) {
            seen += 1;
            let out = Command::new("bash")
                .args(["-c", &format!("{example} --config {}", dir.path().join("missing.toml").display())])
                .current_dir(dir.path())
                .env_clear()
                .env("PATH", format!("{}:/usr/bin:/bin", bin_dir.display()))
                .env("GITHUB_SHA", "0123456789abcdef0123456789abcdef01234567")
                .output()
                .expect("bash runs");
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(2), "`{example}`: {stderr}");
            assert!(
                stderr.contains("config file not found") && !stderr.contains("Usage:"),
                "`{example}` (from `{step} --help`) does not parse:\n{stderr}"
            );
        }
    }
    assert!(seen >= 14, "only {seen} examples");
}
