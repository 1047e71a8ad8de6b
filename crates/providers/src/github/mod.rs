//! GitHub: the client ([`client`]), the deployments ledger ([`ledger`]),
//! its journal and environment lease on the ledger branch ([`branch`],
//! [`journal`], [`lease`]), the history read back for `dora-report`
//! ([`history`]),
//! the queries the gate's GitHub checks read, and the promotion hand-off
//! (`workflow_dispatch`).
//!
//! Nothing here decides whether a release may pass: the gate judges what
//! these queries return. Every call goes through [`GitHub`], so it is
//! counted, conditional where it can be, and free of the token.

pub mod branch;
pub mod cache;
pub mod client;
pub mod history;
pub mod journal;
pub mod lease;
pub mod ledger;
pub mod types;

pub use client::{CallStats, GitHub, Resend, Settings};

use crate::ProviderError;
use crate::retry::Backoff;
use client::encode;
use sluice_core::config::GitHubConfig;
use sluice_core::env;
use types::{Approval, CheckRun, Commit, CommitStatus, Issue};

/// GitHub cannot be used as configured (no token, no repository): the
/// user's input, exit 2.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct SetupError(pub String);

impl GitHub {
    /// A client from the environment (`GITHUB_TOKEN`, `GITHUB_API_URL`,
    /// `GITHUB_SERVER_URL`, `GITHUB_REPOSITORY`) and `[github]`; `label`
    /// names the step in the debug line.
    pub fn from_env(config: &GitHubConfig, label: &str) -> Result<GitHub, SetupError> {
        let token = env::var(env::GITHUB_TOKEN).ok_or_else(|| {
            SetupError(format!(
                "{} is not set; GitHub features (the github ledger, gate checks on GitHub data, the dispatch hand-off) need it: add `env: {{ GITHUB_TOKEN: ${{{{ github.token }}}} }}` to the step",
                env::GITHUB_TOKEN
            ))
        })?;
        let repository = config.repository.clone().or_else(|| env::var(env::GITHUB_REPOSITORY)).ok_or_else(|| {
            SetupError(format!(
                "no repository: set `repository = \"owner/name\"` in [github] or {}",
                env::GITHUB_REPOSITORY
            ))
        })?;
        sluice_core::config::check_repository(&repository).map_err(SetupError)?;
        let api_url = env::github_api_url();
        if !api_url.starts_with("https://") && !api_url.starts_with("http://") {
            return Err(SetupError(format!("{} {api_url:?} is not an http(s) URL", env::GITHUB_API_URL)));
        }
        GitHub::new(Settings {
            api_url,
            server_url: env::github_server_url(),
            token,
            repository,
            cache_dir: Some(config.cache_dir.clone()),
            write_interval: config.write_interval,
            max_wait: config.max_wait,
            timeout: crate::timeouts::GITHUB,
            backoff: Backoff::default(),
            label: label.to_owned(),
        })
        .map_err(|e| SetupError(e.to_string()))
    }

    /// The latest check run of each name on a commit.
    pub async fn check_runs(&self, sha: &str) -> Result<Vec<CheckRun>, ProviderError> {
        self.get_all(
            &format!("read the check runs of {}", short(sha)),
            "checks: read",
            &format!("/commits/{}/check-runs?filter=latest", encode(sha)),
            Some("check_runs"),
        )
        .await
    }

    /// The latest commit status of each context on a commit.
    pub async fn commit_statuses(&self, sha: &str) -> Result<Vec<CommitStatus>, ProviderError> {
        self.get_all(
            &format!("read the commit statuses of {}", short(sha)),
            "statuses: read",
            &format!("/commits/{}/status", encode(sha)),
            Some("statuses"),
        )
        .await
    }

    /// Open issues (not pull requests) with a label.
    pub async fn open_issues(&self, label: &str) -> Result<Vec<Issue>, ProviderError> {
        let issues: Vec<Issue> = self
            .get_all(
                &format!("list open issues labelled {label:?}"),
                "issues: read",
                &format!("/issues?state=open&labels={}", encode(label)),
                None,
            )
            .await?;
        Ok(issues.into_iter().filter(|i| i.pull_request.is_none()).collect())
    }

    /// The environment reviews of a workflow run.
    pub async fn approvals(&self, run_id: &str) -> Result<Vec<Approval>, ProviderError> {
        self.get(
            &format!("read the environment approvals of run {run_id}"),
            "actions: read",
            &format!("/actions/runs/{}/approvals", encode(run_id)),
        )
        .await
    }

    /// One commit.
    pub async fn commit(&self, sha: &str) -> Result<Commit, ProviderError> {
        self.get(&format!("read commit {}", short(sha)), "contents: read", &format!("/commits/{}", encode(sha))).await
    }

    /// The commits after `base` up to `head`, oldest first.
    pub async fn compare(&self, base: &str, head: &str) -> Result<Vec<Commit>, ProviderError> {
        self.get_all(
            &format!("compare {}...{}", short(base), short(head)),
            "contents: read",
            &format!("/compare/{}...{}", encode(base), encode(head)),
            Some("commits"),
        )
        .await
    }

    /// Starts `workflow` on `git_ref` with these inputs (`workflow_dispatch`).
    pub async fn dispatch(&self, workflow: &str, git_ref: &str, inputs: &[(&str, &str)]) -> Result<(), ProviderError> {
        let inputs: serde_json::Map<String, serde_json::Value> =
            inputs.iter().map(|(k, v)| ((*k).to_owned(), serde_json::Value::from(*v))).collect();
        self.post_empty(
            &format!("dispatch workflow {workflow} on {git_ref}"),
            "actions: write",
            &format!("/actions/workflows/{}/dispatches", encode(workflow)),
            &serde_json::json!({ "ref": git_ref, "inputs": inputs }),
            // A second dispatch would start a second promotion.
            Resend::OnlyIfRefused,
        )
        .await
    }
}

/// The first 12 characters of a SHA, for messages.
pub fn short(sha: &str) -> &str {
    &sha[..sha.len().min(12)]
}
