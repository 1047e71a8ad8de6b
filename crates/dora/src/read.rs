//! Reading the file ledger, and choosing entries.
//!
//! The reading rules are `sluice-core`'s ([`sluice_core::ledger`]), the one
//! ledger reader every step uses: a damaged line is an error naming its
//! line, blank lines are skipped, a torn tail (a last line without its
//! newline that is not valid JSON: a write cut short by a crash) is skipped
//! and reported. This module only re-exports them for the crate's users and
//! says which entries a report looks at ([`Filter`]).

use std::path::Path;

use jiff::Timestamp;
use sluice_core::ledger::LedgerEntry;

pub use sluice_core::ledger::{LedgerReader, TornTail, open as open_ledger};

use crate::Error;

/// Reads a whole ledger file; stops at the first damaged line, skips a torn
/// tail (use [`open_ledger`] to learn of it).
///
/// Holds every entry in memory: for large ledgers prefer [`crate::report_file`]
/// or [`open_ledger`] with [`crate::compute`].
pub fn read_ledger(path: &Path) -> Result<Vec<LedgerEntry>, Error> {
    open_ledger(path)?.collect()
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
