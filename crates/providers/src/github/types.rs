//! sluice's own serde types for the parts of GitHub's REST answers it reads
//! and the requests it sends, after GitHub's documented shapes (octocrab has
//! no Deployments API). Unknown fields are ignored: GitHub adds fields.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A user or bot (`login` is all sluice reads).
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct User {
    pub login: String,
}

/// `GET /repos/{owner}/{repo}/deployments` items.
#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct Deployment {
    pub id: u64,
    pub sha: String,
    #[serde(rename = "ref")]
    pub git_ref: String,
    #[serde(default)]
    pub task: String,
    pub environment: String,
    /// An object or a string; `{}` for deployments Actions makes for a job.
    #[serde(default)]
    pub payload: Value,
    #[serde(default)]
    pub description: Option<String>,
    pub created_at: Timestamp,
    #[serde(default)]
    pub creator: Option<User>,
    #[serde(default)]
    pub production_environment: Option<bool>,
}

impl Deployment {
    /// What sluice put in the payload, when sluice created it.
    pub fn sluice(&self) -> Option<&Value> {
        self.payload.get("sluice")
    }
}

/// `POST /repos/{owner}/{repo}/deployments`.
#[derive(Clone, Debug, Serialize)]
pub struct NewDeployment {
    #[serde(rename = "ref")]
    pub git_ref: String,
    pub task: String,
    /// Never merge the default branch into the ref.
    pub auto_merge: bool,
    /// Empty: sluice's gate checks the commit, GitHub need not.
    pub required_contexts: Vec<String>,
    pub payload: Value,
    pub environment: String,
    pub description: String,
    pub transient_environment: bool,
    pub production_environment: bool,
}

/// A deployment status (`GET .../deployments/{id}/statuses` items).
#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct DeploymentStatus {
    pub id: u64,
    /// `error`, `failure`, `inactive`, `in_progress`, `queued`, `pending`
    /// or `success`.
    pub state: String,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub environment: Option<String>,
    #[serde(default)]
    pub log_url: Option<String>,
    #[serde(default)]
    pub target_url: Option<String>,
    #[serde(default)]
    pub environment_url: Option<String>,
    pub created_at: Timestamp,
}

/// `POST .../deployments/{id}/statuses`.
#[derive(Clone, Debug, Serialize)]
pub struct NewStatus {
    pub state: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub log_url: Option<String>,
    /// At most 140 characters.
    pub description: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub environment_url: Option<String>,
}

/// `GET .../commits/{ref}/check-runs` items (`check_runs`).
#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct CheckRun {
    pub id: u64,
    pub name: String,
    /// `queued`, `in_progress`, `completed` (also `waiting`, `requested`,
    /// `pending`).
    pub status: String,
    /// When completed: `success`, `failure`, `neutral`, `cancelled`,
    /// `skipped`, `timed_out`, `action_required` (or `stale`).
    #[serde(default)]
    pub conclusion: Option<String>,
    #[serde(default)]
    pub html_url: Option<String>,
    #[serde(default)]
    pub details_url: Option<String>,
}

/// `GET .../commits/{ref}/status` items (`statuses`): the latest status of
/// each context.
#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct CommitStatus {
    pub context: String,
    /// `error`, `failure`, `pending` or `success`.
    pub state: String,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub target_url: Option<String>,
}

/// A label of an issue.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct Label {
    pub name: String,
}

/// `GET /repos/{owner}/{repo}/issues` items (pull requests have
/// `pull_request`).
#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct Issue {
    pub number: u64,
    pub title: String,
    pub html_url: String,
    pub state: String,
    #[serde(default)]
    pub labels: Vec<Label>,
    #[serde(default)]
    pub pull_request: Option<Value>,
    /// Markdown; `null` when empty.
    #[serde(default)]
    pub body: Option<String>,
    #[serde(default)]
    pub created_at: Option<Timestamp>,
}

/// `GET .../actions/runs/{run_id}/approvals` items.
#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct Approval {
    pub environments: Vec<ApprovalEnvironment>,
    /// `approved`, `rejected` or `pending`.
    pub state: String,
    pub user: User,
    #[serde(default)]
    pub comment: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct ApprovalEnvironment {
    #[serde(default)]
    pub name: Option<String>,
}

/// `GET /repos/{owner}/{repo}/commits/{ref}` (and compare's `commits`).
#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct Commit {
    pub sha: String,
    /// The GitHub account of the author, when the email maps to one.
    #[serde(default)]
    pub author: Option<User>,
    #[serde(default)]
    pub committer: Option<User>,
    pub commit: GitCommit,
    #[serde(default)]
    pub parents: Vec<Parent>,
    #[serde(default)]
    pub html_url: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct GitCommit {
    #[serde(default)]
    pub author: Option<GitPerson>,
    /// Who committed it, when: the time the commit took its place on the
    /// branch (a rebase keeps the author's date but not the committer's).
    #[serde(default)]
    pub committer: Option<GitPerson>,
    #[serde(default)]
    pub message: String,
}

#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct GitPerson {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub date: Option<Timestamp>,
}

#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct Parent {
    pub sha: String,
}
