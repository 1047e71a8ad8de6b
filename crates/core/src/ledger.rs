//! Entries of the deployment history (the ledger), one per finished attempt.
//!
//! The file ledger stores them as JSON Lines, one entry a line, appended and
//! never rewritten. `dora-report` reads nothing else, so everything the DORA
//! metrics need is here: when it started and ended, what it shipped, how it
//! ended, and whether it was planned.

use jiff::Timestamp;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Schema tag written into every ledger line.
pub const LEDGER_SCHEMA: &str = "sluice.ledger/v1";

/// One finished deployment attempt, or a rollback of what was stable.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct LedgerEntry {
    /// Always `sluice.ledger/v1`.
    pub schema: String,
    /// The deployment record's id.
    pub id: String,
    pub app: String,
    pub environment: String,
    pub version: String,
    /// The commit SHA deployed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commit: Option<String>,
    /// Commits this deployment brought to the environment, when known.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub commits: Vec<CommitInfo>,
    /// Planned change or unplanned fix.
    #[serde(default)]
    pub change: ChangeKind,
    /// An incident this deployment is linked to (caused or fixed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub incident: Option<String>,
    /// `canary`, `blue_green` or `all_at_once`.
    pub strategy: String,
    /// Who started it (the GitHub actor, or the local user).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub triggered_by: Option<String>,
    pub started_at: Timestamp,
    pub finished_at: Timestamp,
    pub outcome: LedgerOutcome,
    /// Why it was rolled back or failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Promoted without analysis: its environment says `analysis = "none"`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub unanalysed: bool,
}

/// A commit shipped by a deployment.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct CommitInfo {
    pub sha: String,
    /// Committer time: when the commit was made as it is on the branch
    /// (author time can be much earlier after a rebase).
    pub time: Timestamp,
    /// A merge commit (more than one parent).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub merge: bool,
}

/// Whether a deployment was planned work or an unplanned fix.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ChangeKind {
    #[default]
    Planned,
    Hotfix,
}

/// How an attempt ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum LedgerOutcome {
    /// The candidate became stable.
    Promoted,
    /// sluice (or a person through `rollback`) returned traffic to stable
    /// before the candidate was promoted.
    RolledBack,
    /// A promoted release was rolled back afterwards (stable restored to the
    /// previous release). Not a deployment; marks the one it undoes as failed.
    Reverted,
    /// The attempt stopped on an error and traffic is back on stable.
    Failed,
    /// Ended without ever moving traffic: it failed to start, was cancelled
    /// before its first stage, or its lease was freed deliberately. Not an
    /// attempt in the DORA metrics: neither a deployment nor a failure.
    Abandoned,
}

/// Why the ledger could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    #[error("cannot read ledger {path}: {source}")]
    Read { path: std::path::PathBuf, source: std::io::Error },
    #[error("ledger {path} line {line} is damaged: {reason}; fix or remove that line (each line is one JSON entry)")]
    Damaged { path: std::path::PathBuf, line: usize, reason: String },
    #[error("cannot append to ledger {path}: {source}")]
    Write { path: std::path::PathBuf, source: std::io::Error },
}

/// Reads every entry of a JSON Lines ledger, streaming, in file order. A
/// missing file is an empty history; blank lines are skipped; a damaged line
/// is an error naming its number.
pub fn read_file(path: &std::path::Path) -> Result<Vec<LedgerEntry>, LedgerError> {
    let mut entries = Vec::new();
    for_each_entry(path, |entry| entries.push(entry))?;
    Ok(entries)
}

/// Calls `f` with each entry of the ledger in file order, without holding
/// the whole file in memory.
pub fn for_each_entry(path: &std::path::Path, mut f: impl FnMut(LedgerEntry)) -> Result<(), LedgerError> {
    use std::io::BufRead;
    let file = match std::fs::File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(source) => return Err(LedgerError::Read { path: path.to_owned(), source }),
    };
    let mut reader = std::io::BufReader::with_capacity(1 << 16, file);
    let mut line = Vec::new();
    let mut number = 0;
    loop {
        line.clear();
        let n = reader
            .read_until(b'\n', &mut line)
            .map_err(|source| LedgerError::Read { path: path.to_owned(), source })?;
        if n == 0 {
            return Ok(());
        }
        number += 1;
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let entry: LedgerEntry = match serde_json::from_slice(&line) {
            Ok(entry) => entry,
            // A last line without its newline is a write torn by a crash:
            // the entry was never committed, so it is not history.
            Err(_) if line.last() != Some(&b'\n') => return Ok(()),
            Err(e) => {
                return Err(LedgerError::Damaged { path: path.to_owned(), line: number, reason: e.to_string() });
            }
        };
        if entry.schema != LEDGER_SCHEMA {
            return Err(LedgerError::Damaged {
                path: path.to_owned(),
                line: number,
                reason: format!("schema {:?} is not {LEDGER_SCHEMA:?}", entry.schema),
            });
        }
        f(entry);
    }
}

/// Appends one entry as one line, under an exclusive lock on the file, and
/// syncs it: concurrent writers never interleave, and a crash leaves at most
/// an incomplete last line (which the next append starts after).
pub fn append(path: &std::path::Path, entry: &LedgerEntry) -> Result<(), LedgerError> {
    use std::io::{Read, Seek, SeekFrom, Write};
    let fail = |source| LedgerError::Write { path: path.to_owned(), source };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(fail)?;
    }
    let mut file = std::fs::OpenOptions::new().create(true).read(true).append(true).open(path).map_err(fail)?;
    file.lock().map_err(fail)?;
    let mut line = serde_json::to_vec(entry).map_err(|e| fail(std::io::Error::other(e)))?;
    line.push(b'\n');
    // If a crashed writer left a line without its newline, end it first so
    // this entry stays readable on a line of its own.
    let len = file.seek(SeekFrom::End(0)).map_err(fail)?;
    if len > 0 {
        let mut last = [0u8; 1];
        file.seek(SeekFrom::Start(len - 1)).map_err(fail)?;
        file.read_exact(&mut last).map_err(fail)?;
        if last[0] != b'\n' {
            line.insert(0, b'\n');
        }
    }
    file.write_all(&line).map_err(fail)?;
    file.sync_data().map_err(fail)?;
    file.unlock().map_err(fail)
}
