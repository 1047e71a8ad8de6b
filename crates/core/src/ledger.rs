//! Entries of the deployment history (the ledger), one per finished attempt.
//!
//! The file ledger stores them as JSON Lines, one entry a line, appended and
//! never rewritten. `dora-report` reads nothing else, so everything the DORA
//! metrics need is here: when it started and ended, what it shipped, how it
//! ended, and whether it was planned.
//!
//! This module is the one reader of the file ledger: every step (`gate`,
//! `promote`, `rollback`) and `dora-report` (whose parallel reader parses
//! faster but classifies every line it does not take through [`parse_line`])
//! read it by the same rules:
//!
//! - an entry is a line that parses as a [`LedgerEntry`] of schema
//!   [`LEDGER_SCHEMA`]; lines are counted from 1, blank lines included, and
//!   blank lines are skipped;
//! - a **torn tail** — a last line without its newline that is not valid
//!   JSON — is a write that a crash cut short (or one still under way): it
//!   was never committed, so every reader skips it, with a warning
//!   ([`TornTail`]); a last line without its newline that *is* a whole entry
//!   is an entry;
//! - any other line that is not an entry is damage for a person to fix: an
//!   error naming its line ([`LedgerError::Damaged`]).
//!
//! [`append`] keeps that true across crashes: under an exclusive lock it
//! removes a torn tail before it writes, so an entry never lands after a
//! fragment, and a kill at any point leaves at most a torn tail.
//!
//! It never rewrites a committed line, and never reads a clock.

use std::fs::File;
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

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
    /// An environment of several targets (waves): how each one ended. The
    /// deployment is one entry whatever its targets (it counts once in the
    /// DORA metrics); `reason` names the target that stopped it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub targets: Vec<TargetOutcome>,
}

/// One target of a deployment to an environment of several, as it ended.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TargetOutcome {
    /// The target's name in the config (`us-east-1`).
    pub name: String,
    /// Its wave, counted from 0.
    pub wave: usize,
    /// The highest share of traffic (percent) its router confirmed on the
    /// candidate: 0 for a wave the deployment never reached.
    pub reached: u8,
    /// Its last verdict (`pass`, `fail`, `inconclusive`, `error`); none when
    /// it was never judged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verdict: Option<String>,
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
    /// Ended without ever moving traffic (it failed to start, was cancelled
    /// before its first stage, or its lease was freed deliberately), or
    /// rolled back because the candidate got no traffic to judge. Not an
    /// attempt in the DORA metrics: neither a deployment nor a failure.
    Abandoned,
}

/// Why the ledger could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    #[error("cannot open ledger {path}: {source}")]
    Open { path: PathBuf, source: std::io::Error },
    #[error("cannot read ledger {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    /// A line that is not an entry (and not a torn tail). Lines are counted
    /// from 1, blank lines included.
    #[error("ledger {path} line {line} is damaged: {damage}; fix or remove that line (each line is one JSON entry)")]
    Damaged { path: PathBuf, line: u64, damage: Damage },
    #[error("cannot append to ledger {path}: {source}")]
    Write { path: PathBuf, source: std::io::Error },
}

impl LedgerError {
    /// The line the error is about, if it is about one line.
    pub fn line(&self) -> Option<u64> {
        match self {
            LedgerError::Damaged { line, .. } => Some(*line),
            LedgerError::Open { .. } | LedgerError::Read { .. } | LedgerError::Write { .. } => None,
        }
    }
}

/// What is wrong with a damaged line.
#[derive(Debug, thiserror::Error)]
pub enum Damage {
    /// Not JSON, or JSON that is not a ledger entry (a missing field, a
    /// value of the wrong type, an unknown outcome).
    #[error("not a ledger entry: {0}")]
    Entry(serde_json::Error),
    /// An entry of another version of the ledger format.
    #[error("schema {found:?} is not {LEDGER_SCHEMA:?}")]
    Schema { found: String },
}

/// A last line without its newline that is not valid JSON: a write torn by
/// a crash (or one still under way). It is not history: readers skip it and
/// say so; the next [`append`] removes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TornTail {
    pub path: PathBuf,
    /// Its line number.
    pub line: u64,
    /// Its length in bytes.
    pub bytes: u64,
}

impl std::fmt::Display for TornTail {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "ledger {} ends in an incomplete line {} ({} bytes, not valid JSON, no newline): a write cut short by a \
             crash, or one still under way; skipped (the next append removes it)",
            self.path.display(),
            self.line,
            self.bytes
        )
    }
}

/// What one line of a ledger holds.
#[derive(Debug, PartialEq)]
pub enum Line {
    /// Only whitespace.
    Blank,
    Entry(Box<LedgerEntry>),
    /// A torn tail (see [`TornTail`]).
    Torn,
}

/// Reads one line, by the rules in the module docs. `terminated` says
/// whether a newline ends it in the file (only the last line can lack one);
/// `bytes` may include the newline.
pub fn parse_line(bytes: &[u8], terminated: bool) -> Result<Line, Damage> {
    let bytes = bytes.trim_ascii();
    if bytes.is_empty() {
        return Ok(Line::Blank);
    }
    match serde_json::from_slice::<LedgerEntry>(bytes) {
        Ok(entry) if entry.schema == LEDGER_SCHEMA => Ok(Line::Entry(Box::new(entry))),
        Ok(entry) => Err(Damage::Schema { found: entry.schema }),
        // Whole JSON that is not an entry was written so: damage, even last.
        Err(e) if terminated || e.classify() == serde_json::error::Category::Data => Err(Damage::Entry(e)),
        Err(_) => Ok(Line::Torn),
    }
}

/// Streams the entries of a ledger, one line at a time, in file order.
///
/// Yields `Err` for a damaged line and goes on with the next one; after an
/// I/O error it ends. A torn tail is skipped and kept in [`Self::torn`].
pub struct LedgerReader<R> {
    reader: R,
    path: PathBuf,
    line: u64,
    buf: Vec<u8>,
    done: bool,
    torn: Option<TornTail>,
}

impl<R: BufRead> LedgerReader<R> {
    /// Reads entries from `reader`; `path` names the source in errors.
    pub fn new(reader: R, path: impl Into<PathBuf>) -> Self {
        Self { reader, path: path.into(), line: 0, buf: Vec::with_capacity(1024), done: false, torn: None }
    }

    /// The torn tail skipped, once the reader has reached it.
    pub fn torn(&self) -> Option<&TornTail> {
        self.torn.as_ref()
    }
}

impl<R: BufRead> Iterator for LedgerReader<R> {
    type Item = Result<LedgerEntry, LedgerError>;

    fn next(&mut self) -> Option<Self::Item> {
        while !self.done {
            self.buf.clear();
            match self.reader.read_until(b'\n', &mut self.buf) {
                Ok(0) => self.done = true,
                Ok(n) => {
                    self.line += 1;
                    let terminated = self.buf.last() == Some(&b'\n');
                    match parse_line(&self.buf, terminated) {
                        Ok(Line::Blank) => {}
                        Ok(Line::Entry(entry)) => return Some(Ok(*entry)),
                        Ok(Line::Torn) => {
                            self.torn = Some(TornTail { path: self.path.clone(), line: self.line, bytes: n as u64 });
                        }
                        Err(damage) => {
                            return Some(Err(LedgerError::Damaged {
                                path: self.path.clone(),
                                line: self.line,
                                damage,
                            }));
                        }
                    }
                }
                Err(source) => {
                    self.done = true;
                    return Some(Err(LedgerError::Read { path: self.path.clone(), source }));
                }
            }
        }
        None
    }
}

/// Opens a ledger file for streaming. A missing file is
/// [`LedgerError::Open`] (with `NotFound`): whether that is an empty history
/// is the caller's to say.
pub fn open(path: &Path) -> Result<LedgerReader<BufReader<File>>, LedgerError> {
    let file = File::open(path).map_err(|source| LedgerError::Open { path: path.to_owned(), source })?;
    Ok(LedgerReader::new(BufReader::with_capacity(1 << 16, file), path))
}

/// Reads every entry of a ledger, in file order. A missing file is an empty
/// history; a damaged line is an error naming its number; a torn tail is
/// skipped with a warning.
pub fn read_file(path: &Path) -> Result<Vec<LedgerEntry>, LedgerError> {
    let mut entries = Vec::new();
    for_each_entry(path, |entry| entries.push(entry))?;
    Ok(entries)
}

/// Calls `f` with each entry of the ledger in file order, without holding
/// the whole file in memory; the rules of [`read_file`].
pub fn for_each_entry(path: &Path, mut f: impl FnMut(LedgerEntry)) -> Result<(), LedgerError> {
    let mut reader = match open(path) {
        Ok(reader) => reader,
        Err(LedgerError::Open { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    for entry in reader.by_ref() {
        f(entry?);
    }
    if let Some(torn) = reader.torn() {
        crate::gha::warning(&torn.to_string());
    }
    Ok(())
}

/// Appends one entry as one line, under an exclusive lock on the file, and
/// syncs it: concurrent writers never interleave. A torn tail a crashed
/// writer left is removed first (with a warning), so the file stays a
/// sequence of whole entries followed by at most one torn tail, whatever
/// point a writer is killed at; a last entry that only lacks its newline is
/// ended with one.
pub fn append(path: &Path, entry: &LedgerEntry) -> Result<(), LedgerError> {
    let fail = |source| LedgerError::Write { path: path.to_owned(), source };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(fail)?;
    }
    let mut file = std::fs::OpenOptions::new().create(true).read(true).append(true).open(path).map_err(fail)?;
    file.lock().map_err(fail)?;
    let mut line = Vec::with_capacity(1024);
    match unterminated_tail(&mut file).map_err(fail)? {
        None => {}
        Some((start, tail)) => match parse_line(&tail, false) {
            Ok(Line::Torn) => {
                file.set_len(start).map_err(fail)?;
                crate::gha::warning(&format!(
                    "ledger {}: removed an incomplete last line ({} bytes, not valid JSON, no newline) that a \
                     write cut short by a crash left, before appending {}",
                    path.display(),
                    tail.len(),
                    entry.id
                ));
            }
            // A whole entry (or damage a person must see) missing only its
            // newline: end it, so this entry starts a line of its own.
            Ok(Line::Entry(_) | Line::Blank) | Err(_) => line.push(b'\n'),
        },
    }
    serde_json::to_writer(&mut line, entry).map_err(|e| fail(std::io::Error::other(e)))?;
    line.push(b'\n');
    file.write_all(&line).map_err(fail)?;
    file.sync_data().map_err(fail)?;
    file.unlock().map_err(fail)
}

/// The last line of `file` when it does not end in a newline: its offset
/// and bytes. `None` for an empty file or one that ends in a newline.
fn unterminated_tail(file: &mut File) -> std::io::Result<Option<(u64, Vec<u8>)>> {
    const CHUNK: u64 = 1 << 16;
    let len = file.seek(SeekFrom::End(0))?;
    let mut chunk = vec![0u8; CHUNK as usize];
    let mut end = len;
    let mut start_of_line = 0;
    while end > 0 {
        let from = end.saturating_sub(CHUNK);
        let chunk = &mut chunk[..(end - from) as usize];
        file.seek(SeekFrom::Start(from))?;
        file.read_exact(chunk)?;
        if end == len && chunk.last() == Some(&b'\n') {
            return Ok(None);
        }
        if let Some(nl) = chunk.iter().rposition(|&b| b == b'\n') {
            start_of_line = from + nl as u64 + 1;
            break;
        }
        end = from;
    }
    if len == 0 {
        return Ok(None);
    }
    let mut tail = Vec::new();
    file.seek(SeekFrom::Start(start_of_line))?;
    file.read_to_end(&mut tail)?;
    Ok(Some((start_of_line, tail)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// An entry from its JSON form (fields added later default).
    fn entry(id: &str, commits: usize) -> LedgerEntry {
        let commits: Vec<_> = (0..commits)
            .map(|i| serde_json::json!({ "sha": format!("{i:040x}"), "time": "2026-01-05T10:00:00Z" }))
            .collect();
        serde_json::from_value(serde_json::json!({
            "schema": LEDGER_SCHEMA, "id": id, "app": "shop", "environment": "dev", "version": format!("v-{id}"),
            "commit": "abcdef1", "commits": commits, "strategy": "canary", "triggered_by": "alice",
            "started_at": "2026-01-05T10:00:00Z", "finished_at": "2026-01-05T10:00:00Z", "outcome": "promoted",
        }))
        .expect("an entry")
    }

    fn line(e: &LedgerEntry) -> Vec<u8> {
        let mut l = serde_json::to_vec(e).expect("serialise");
        l.push(b'\n');
        l
    }

    fn ids(path: &Path) -> Vec<String> {
        read_file(path).expect("readable").into_iter().map(|e| e.id).collect()
    }

    fn read_all(path: &Path) -> (Vec<String>, Option<TornTail>) {
        let mut reader = open(path).expect("open");
        let ids = reader.by_ref().map(|e| e.expect("no damage").id).collect();
        (ids, reader.torn().cloned())
    }

    #[test]
    fn a_torn_tail_is_skipped_and_the_next_append_removes_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("ledger.jsonl");
        append(&path, &entry("a", 2)).expect("append");
        let whole = line(&entry("b", 2));
        let mut bytes = std::fs::read(&path).expect("read");
        bytes.extend_from_slice(&whole[..whole.len() / 2]);
        std::fs::write(&path, &bytes).expect("tear");

        let (read, torn) = read_all(&path);
        assert_eq!(read, ["a"]);
        assert_eq!(torn, Some(TornTail { path: path.clone(), line: 2, bytes: (whole.len() / 2) as u64 }));
        assert!(torn.expect("torn").to_string().contains("incomplete line 2"));

        append(&path, &entry("c", 2)).expect("append after a torn tail");
        assert_eq!(read_all(&path), (vec!["a".to_owned(), "c".to_owned()], None));
        // Only whole lines are left.
        let text = std::fs::read_to_string(&path).expect("utf-8");
        assert!(text.ends_with('\n') && text.lines().all(|l| serde_json::from_str::<LedgerEntry>(l).is_ok()));
    }

    #[test]
    fn a_whole_last_entry_without_its_newline_is_history_and_kept() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("ledger.jsonl");
        let mut bytes = line(&entry("a", 0));
        bytes.extend_from_slice(&serde_json::to_vec(&entry("b", 0)).expect("serialise"));
        std::fs::write(&path, &bytes).expect("write");
        assert_eq!(read_all(&path), (vec!["a".to_owned(), "b".to_owned()], None));
        append(&path, &entry("c", 0)).expect("append");
        assert_eq!(ids(&path), ["a", "b", "c"]);
    }

    #[test]
    fn damage_is_an_error_naming_its_line_wherever_it_is() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("ledger.jsonl");
        let good = String::from_utf8(line(&entry("a", 0))).expect("utf-8");
        for (text, at) in [
            // A fragment in the middle (what the old append made of a torn line).
            (format!("{good}{{\"schema\":\"sluice.ledger/v1\",\"id\":\n{good}"), 2),
            // A damaged last line that has its newline.
            (format!("{good}\n{{\"id\":\n"), 3),
            // Whole JSON, but not an entry, even last and without a newline.
            (format!("{good}{{\"id\":\"x\"}}"), 2),
            (good.replace("sluice.ledger/v1", "sluice.ledger/v9"), 1),
        ] {
            std::fs::write(&path, &text).expect("write");
            let err = read_file(&path).expect_err(&text);
            assert_eq!(err.line(), Some(at), "{text}");
            assert!(err.to_string().contains(&format!("line {at} is damaged")), "{err}");
            assert!(matches!(err, LedgerError::Damaged { .. }));
        }
        assert!(matches!(read_file(&path), Err(LedgerError::Damaged { damage: Damage::Schema { .. }, .. })));
    }

    #[test]
    fn blank_lines_and_a_missing_file_are_no_history() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("ledger.jsonl");
        assert!(read_file(&path).expect("missing is empty").is_empty());
        assert!(matches!(open(&path), Err(LedgerError::Open { .. })));
        let good = String::from_utf8(line(&entry("a", 0))).expect("utf-8");
        std::fs::write(&path, format!("\n  \r\n{good}\n\t")).expect("write");
        assert_eq!(read_all(&path), (vec!["a".to_owned()], None));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// A writer killed after any number of bytes of its line, then more
        /// appends: every reader reads the whole entries, in order, and
        /// nothing but them.
        #[test]
        fn a_write_cut_anywhere_then_appends_leaves_a_readable_ledger(
            before in 0usize..4,
            commits in 0usize..40,
            cut in any::<prop::sample::Index>(),
            after in 1usize..3,
        ) {
            let dir = tempfile::tempdir().expect("tempdir");
            let path = dir.path().join("ledger.jsonl");
            let mut want = Vec::new();
            for i in 0..before {
                append(&path, &entry(&format!("a{i}"), commits)).expect("append");
                want.push(format!("a{i}"));
            }
            let torn = line(&entry("torn", commits));
            let cut = cut.index(torn.len() + 1);
            let mut bytes = std::fs::read(&path).unwrap_or_default();
            bytes.extend_from_slice(&torn[..cut]);
            std::fs::write(&path, &bytes).expect("tear");
            // Cut after the closing brace: the entry is whole and counts.
            if cut >= torn.len() - 1 {
                want.push("torn".to_owned());
            }
            let (read, _) = read_all(&path);
            prop_assert_eq!(&read, &want);
            for i in 0..after {
                append(&path, &entry(&format!("b{i}"), commits)).expect("append");
                want.push(format!("b{i}"));
            }
            prop_assert_eq!(read_all(&path), (want, None));
        }
    }
}
