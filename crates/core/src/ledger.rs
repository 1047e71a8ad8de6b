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
}

/// A commit shipped by a deployment.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct CommitInfo {
    pub sha: String,
    /// Commit (author) time.
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
}
