//! Reading the file ledger (JSON Lines) line by line, and choosing entries.
//!
//! Never loads the whole file: a reader holds one line at a time. A damaged
//! line is an error that names its line number; blank lines are skipped.

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};

use jiff::Timestamp;
use sluice_core::ledger::{LEDGER_SCHEMA, LedgerEntry};

use crate::Error;

/// Streams the entries of a ledger, one line at a time.
///
/// Yields `Err` for a damaged line and goes on with the next one; after an
/// I/O error it ends.
pub struct LedgerReader<R> {
    reader: R,
    path: PathBuf,
    line: u64,
    buf: Vec<u8>,
    done: bool,
}

impl<R: BufRead> LedgerReader<R> {
    /// Reads entries from `reader`; `path` names the source in errors.
    pub fn new(reader: R, path: impl Into<PathBuf>) -> Self {
        Self { reader, path: path.into(), line: 0, buf: Vec::with_capacity(1024), done: false }
    }
}

impl<R: BufRead> Iterator for LedgerReader<R> {
    type Item = Result<LedgerEntry, Error>;

    fn next(&mut self) -> Option<Self::Item> {
        while !self.done {
            self.buf.clear();
            match self.reader.read_until(b'\n', &mut self.buf) {
                Ok(0) => self.done = true,
                Ok(_) => {
                    self.line += 1;
                    match parse_line(&self.buf, &self.path, self.line) {
                        Ok(None) => continue,
                        Ok(Some(entry)) => return Some(Ok(entry)),
                        Err(e) => return Some(Err(e)),
                    }
                }
                Err(source) => {
                    self.done = true;
                    return Some(Err(Error::Read { path: self.path.clone(), source }));
                }
            }
        }
        None
    }
}

/// Opens a ledger file for streaming.
pub fn open_ledger(path: &Path) -> Result<LedgerReader<BufReader<File>>, Error> {
    let file = File::open(path).map_err(|source| Error::Open { path: path.to_path_buf(), source })?;
    Ok(LedgerReader::new(BufReader::with_capacity(1 << 16, file), path))
}

/// Reads a whole ledger file; stops at the first damaged line.
///
/// Holds every entry in memory: for large ledgers prefer [`crate::report_file`]
/// or [`open_ledger`] with [`crate::compute`].
pub fn read_ledger(path: &Path) -> Result<Vec<LedgerEntry>, Error> {
    open_ledger(path)?.collect()
}

/// Parses one line: `Ok(None)` for a blank line.
pub(crate) fn parse_line(bytes: &[u8], path: &Path, line: u64) -> Result<Option<LedgerEntry>, Error> {
    let bytes = bytes.trim_ascii();
    if bytes.is_empty() {
        return Ok(None);
    }
    let entry: LedgerEntry =
        serde_json::from_slice(bytes).map_err(|source| Error::Parse { path: path.to_path_buf(), line, source })?;
    if entry.schema != LEDGER_SCHEMA {
        return Err(Error::Schema { path: path.to_path_buf(), line, found: entry.schema, expected: LEDGER_SCHEMA });
    }
    Ok(Some(entry))
}

/// Which entries a report looks at: apps, environments (empty = all) and a
/// window `since <= t < until` (open where `None`).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Filter {
    pub apps: Vec<String>,
    pub environments: Vec<String>,
    pub since: Option<Timestamp>,
    pub until: Option<Timestamp>,
}

impl Filter {
    /// Whether the app and environment are selected.
    pub fn in_scope(&self, app: &str, environment: &str) -> bool {
        (self.apps.is_empty() || self.apps.iter().any(|a| a == app))
            && (self.environments.is_empty() || self.environments.iter().any(|e| e == environment))
    }

    /// Whether `t` lies in the window (`since` inclusive, `until` exclusive).
    pub fn in_window(&self, t: Timestamp) -> bool {
        self.since.is_none_or(|s| t >= s) && self.until.is_none_or(|u| t < u)
    }

    /// Whether an entry is selected: in scope, and finished inside the window.
    /// An entry is placed in time by `finished_at` (see the crate docs).
    pub fn matches(&self, entry: &LedgerEntry) -> bool {
        self.in_scope(&entry.app, &entry.environment) && self.in_window(entry.finished_at)
    }
}
