//! Building ledger entries tersely.

use jiff::Timestamp;
use sluice_core::ledger::{ChangeKind, CommitInfo, LEDGER_SCHEMA, LedgerEntry, LedgerOutcome};

pub fn ts(s: &str) -> Timestamp {
    s.parse().expect("test timestamps are valid RFC 3339")
}

pub struct E(pub LedgerEntry);

/// An entry of `app` in `env` that ran from `started` to `finished`.
pub fn e(id: &str, app: &str, env: &str, outcome: LedgerOutcome, started: &str, finished: &str) -> E {
    E(LedgerEntry {
        schema: LEDGER_SCHEMA.to_owned(),
        id: id.to_owned(),
        app: app.to_owned(),
        environment: env.to_owned(),
        version: format!("v-{id}"),
        commit: None,
        commits: Vec::new(),
        change: ChangeKind::Planned,
        incident: None,
        strategy: "canary".to_owned(),
        triggered_by: Some("alice".to_owned()),
        started_at: ts(started),
        finished_at: ts(finished),
        outcome,
        reason: None,
        unanalysed: false,
        targets: Vec::new(),
    })
}

impl E {
    pub fn version(mut self, v: &str) -> Self {
        self.0.version = v.to_owned();
        self
    }
    pub fn sha(mut self, sha: &str) -> Self {
        self.0.commit = Some(sha.to_owned());
        self
    }
    pub fn commit(mut self, sha: &str, time: &str) -> Self {
        self.0.commits.push(CommitInfo { sha: sha.to_owned(), time: ts(time), merge: false });
        self
    }
    pub fn merge(mut self, sha: &str, time: &str) -> Self {
        self.0.commits.push(CommitInfo { sha: sha.to_owned(), time: ts(time), merge: true });
        self
    }
    pub fn hotfix(mut self) -> Self {
        self.0.change = ChangeKind::Hotfix;
        self
    }
    pub fn incident(mut self, id: &str) -> Self {
        self.0.incident = Some(id.to_owned());
        self
    }
    pub fn reason(mut self, r: &str) -> Self {
        self.0.reason = Some(r.to_owned());
        self
    }
    pub fn done(self) -> LedgerEntry {
        self.0
    }
}
