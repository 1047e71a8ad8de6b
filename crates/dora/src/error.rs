//! Errors of reading the ledger. Computing and rendering cannot fail.

use std::path::PathBuf;

/// What went wrong while reading a ledger.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("failed to open ledger {path}")]
    Open {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("failed to read ledger {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A line that is not a ledger entry (damaged JSON, a missing field, a
    /// value of the wrong type). Lines are counted from 1, blank lines included.
    #[error("ledger {path} line {line}: not a valid ledger entry")]
    Parse {
        path: PathBuf,
        line: u64,
        #[source]
        source: serde_json::Error,
    },
    /// A line written by another version of the ledger format.
    #[error("ledger {path} line {line}: unknown schema {found:?}, expected {expected:?}")]
    Schema { path: PathBuf, line: u64, found: String, expected: &'static str },
}

impl Error {
    /// Moves a line-numbered error down by `by` lines (a block's offset).
    pub(crate) fn shift_line(mut self, by: u64) -> Self {
        if let Error::Parse { line, .. } | Error::Schema { line, .. } = &mut self {
            *line += by;
        }
        self
    }

    /// The 1-based line the error is about, if it is about one line.
    pub fn line(&self) -> Option<u64> {
        match self {
            Error::Parse { line, .. } | Error::Schema { line, .. } => Some(*line),
            Error::Open { .. } | Error::Read { .. } => None,
        }
    }
}
