//! GitHub Actions I/O in one place: outputs, the step summary, annotations,
//! log groups and masks. Outside a runner, the same calls degrade to plain
//! stderr lines or do nothing, so a local replay prints what a run would.
//!
//! Never writes secrets: callers mask them first with [`mask`].

use crate::env;
use std::fmt::Write as _;
use std::fs::OpenOptions;
use std::io::{self, Write};
use std::path::PathBuf;

fn file_from(var: &str) -> Option<PathBuf> {
    env::var(var).map(PathBuf::from)
}

fn append(path: &PathBuf, text: &str) -> io::Result<()> {
    let mut file = OpenOptions::new().create(true).append(true).open(path)?;
    file.write_all(text.as_bytes())
}

/// Formats one output in the runner's file syntax, multi-line safe: values
/// with a newline use a heredoc whose delimiter does not occur in the value.
pub fn format_output(name: &str, value: &str) -> String {
    if !value.contains('\n') && !value.contains('\r') {
        return format!("{name}={value}\n");
    }
    let mut n = 0u32;
    let delimiter = loop {
        let candidate = format!("SLUICE_EOF_{n}");
        if !value.contains(&candidate) {
            break candidate;
        }
        n += 1;
    };
    format!("{name}<<{delimiter}\n{value}\n{delimiter}\n")
}

/// Step outputs collected by a binary, written once at the end.
#[derive(Debug, Default)]
pub struct Outputs {
    pairs: Vec<(String, String)>,
}

impl Outputs {
    pub fn set(&mut self, name: &str, value: impl Into<String>) {
        self.pairs.push((name.to_owned(), value.into()));
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.pairs.iter().rev().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }

    /// Appends the outputs to `$GITHUB_OUTPUT` when set; always prints them to
    /// stdout as `name=value` lines (stdout is for data).
    pub fn flush(&self) -> io::Result<()> {
        let mut text = String::new();
        for (name, value) in &self.pairs {
            text.push_str(&format_output(name, value));
        }
        if let Some(path) = file_from(env::GITHUB_OUTPUT) {
            append(&path, &text)?;
        }
        io::stdout().write_all(text.as_bytes())
    }
}

/// Appends Markdown to `$GITHUB_STEP_SUMMARY` when set.
pub fn summary(markdown: &str) -> io::Result<()> {
    match file_from(env::GITHUB_STEP_SUMMARY) {
        Some(path) => append(&path, markdown),
        None => Ok(()),
    }
}

/// Escapes a workflow command's message (`%`, CR and LF).
pub fn escape_data(text: &str) -> String {
    text.replace('%', "%25").replace('\r', "%0D").replace('\n', "%0A")
}

/// Escapes a workflow command's property value.
pub fn escape_property(text: &str) -> String {
    escape_data(text).replace(':', "%3A").replace(',', "%2C")
}

/// Reports an error: an `::error::` annotation on a runner, else a plain line.
pub fn error(title: &str, message: &str) {
    if env::var(env::GITHUB_ACTIONS).is_some() {
        eprintln!("::error title={}::{}", escape_property(title), escape_data(message));
    } else {
        eprintln!("error: {message}");
    }
}

/// Reports a warning the same way.
pub fn warning(message: &str) {
    if env::var(env::GITHUB_ACTIONS).is_some() {
        eprintln!("::warning::{}", escape_data(message));
    } else {
        eprintln!("warning: {message}");
    }
}

/// Masks a secret in all later log output of the run.
pub fn mask(secret: &str) {
    if env::var(env::GITHUB_ACTIONS).is_some() && !secret.is_empty() {
        for line in secret.lines() {
            eprintln!("::add-mask::{}", escape_data(line));
        }
    }
}

static DEBUG: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Turns debug lines on for this process (the steps' `--verbose`).
pub fn set_debug(on: bool) {
    DEBUG.store(on, std::sync::atomic::Ordering::Relaxed);
}

/// Whether debug lines are printed: `--verbose`, `SLUICE_DEBUG` or a
/// runner's debug logging (`RUNNER_DEBUG=1`).
pub fn debug_enabled() -> bool {
    DEBUG.load(std::sync::atomic::Ordering::Relaxed) || env::debug_requested()
}

/// Prints a debug line when debug is on: `::debug::` on a runner with debug
/// logging, a plain `debug:` line elsewhere.
pub fn debug(message: &str) {
    if !debug_enabled() {
        return;
    }
    if env::var(env::GITHUB_ACTIONS).is_some() && env::var(env::RUNNER_DEBUG).is_some_and(|v| v == "1") {
        eprintln!("::debug::{}", escape_data(message));
    } else {
        eprintln!("debug: {message}");
    }
}

/// A collapsible log group; ends when dropped.
pub struct Group {
    on_runner: bool,
}

/// Opens a log group (`::group::` on a runner, a heading line elsewhere).
pub fn group(title: &str) -> Group {
    let on_runner = env::var(env::GITHUB_ACTIONS).is_some();
    if on_runner {
        eprintln!("::group::{}", escape_data(title));
    } else {
        eprintln!("== {title}");
    }
    Group { on_runner }
}

impl Drop for Group {
    fn drop(&mut self) {
        if self.on_runner {
            eprintln!("::endgroup::");
        }
    }
}

/// Escapes text for inline Markdown so a name from config cannot start a
/// link, an emphasis, raw HTML or a table cell.
pub fn escape_markdown(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '\\' | '`' | '*' | '_' | '[' | ']' | '<' | '>' | '|' | '#' | '!') {
            out.push('\\');
        }
        out.push(if c == '\n' { ' ' } else { c });
    }
    out
}

/// A Markdown table builder that escapes cells.
#[derive(Debug)]
pub struct Table {
    text: String,
}

impl Table {
    pub fn new(headers: &[&str]) -> Self {
        let mut text = String::new();
        let _ = writeln!(text, "| {} |", headers.join(" | "));
        let _ = writeln!(text, "|{}", "---|".repeat(headers.len()));
        Self { text }
    }

    pub fn row<S: AsRef<str>>(&mut self, cells: &[S]) {
        let cells: Vec<String> = cells.iter().map(|c| c.as_ref().replace('|', "\\|").replace('\n', " ")).collect();
        let _ = writeln!(self.text, "| {} |", cells.join(" | "));
    }

    pub fn finish(self) -> String {
        self.text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn single_line_output_is_key_value() {
        assert_eq!(format_output("decision", "pass"), "decision=pass\n");
    }

    #[test]
    fn multi_line_output_uses_a_delimiter_absent_from_the_value() {
        let value = "a\nSLUICE_EOF_0\nb";
        let text = format_output("x", value);
        assert_eq!(text, "x<<SLUICE_EOF_1\na\nSLUICE_EOF_0\nb\nSLUICE_EOF_1\n");
    }

    #[test]
    fn workflow_command_data_is_escaped() {
        assert_eq!(escape_data("50%\nnext"), "50%25%0Anext");
        assert_eq!(escape_property("a:b,c"), "a%3Ab%2Cc");
    }

    #[test]
    fn markdown_is_escaped() {
        assert_eq!(escape_markdown("a_b*[x](y)<b>"), "a\\_b\\*\\[x\\](y)\\<b\\>");
    }

    #[test]
    fn table_cells_cannot_break_the_table() {
        let mut table = Table::new(&["a", "b"]);
        table.row(&["x|y", "line\nbreak"]);
        assert_eq!(table.finish(), "| a | b |\n|---|---|\n| x\\|y | line break |\n");
    }
}
