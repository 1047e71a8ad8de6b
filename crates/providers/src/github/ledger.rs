//! The deployment history as GitHub Deployments: one deployment per sluice
//! deployment (ref = the commit SHA, the environment, the record id and
//! version in `payload`, `auto_merge: false`, `production_environment` for
//! the last environment), with statuses `in_progress` when the gate admits
//! it, then `success` when promoted, `inactive` when the candidate was
//! rolled back, `failure` when a promoted release was reverted or the
//! attempt failed, and `inactive` described `sluice: VERSION abandoned: …`
//! when the deployment ended without ever moving traffic (not an attempt:
//! the history reads it back as abandoned, not as a rollback). Every status links the workflow run (`log_url`) and the
//! environment (`environment_url`).
//!
//! A job with `environment:` already makes GitHub create a deployment for
//! the run: sluice adopts that one (same environment, SHA and run) rather
//! than creating a second, so nothing is counted twice.
//!
//! sluice's statuses say `sluice:` first; reading the history, only those
//! count, so GitHub's own statuses (the job's end, auto-inactivation) never
//! turn into a promotion or a rollback.

use super::client::{GitHub, Resend, encode};
use super::short;
use super::types::{Deployment, DeploymentStatus, NewDeployment, NewStatus};
use crate::ProviderError;
use serde_json::json;
use sluice_core::ledger::{LedgerEntry, LedgerOutcome};
use sluice_core::record::Record;

/// Marks sluice's statuses among others.
pub const PREFIX: &str = "sluice: ";

/// Where a deployment goes, as GitHub shows it.
#[derive(Clone, Debug, Default)]
pub struct Target {
    /// Link to the environment (`environment_url`).
    pub environment_url: Option<String>,
    /// The last environment of the promotion path.
    pub production: bool,
}

/// The GitHub ledger of one repository.
#[derive(Clone, Debug)]
pub struct GitHubLedger {
    pub github: GitHub,
    /// `GITHUB_RUN_ID`, to find the deployment a job made.
    pub run_id: Option<String>,
    /// The run's web URL, the statuses' `log_url`.
    pub run_url: Option<String>,
}

impl GitHubLedger {
    /// The deployment of `record`: the one already in the record, else the
    /// one a job made for this run (or an earlier attempt of this record
    /// made), else a new one; marked `in_progress` when it is new to the
    /// record. Returns its id.
    pub async fn start(&self, record: &Record, commit: &str, target: &Target) -> Result<u64, ProviderError> {
        if let Some(id) = record.github_deployment {
            return Ok(id);
        }
        let id = self.find_or_create(record, commit, target).await?;
        let description = format!("{PREFIX}deploying {} ({})", record.version, record.strategy.name());
        self.status(id, "in_progress", &description, target).await?;
        Ok(id)
    }

    /// Closes the deployment of `record` with the status the outcome calls
    /// for. Returns the deployment's id.
    pub async fn finish(
        &self,
        record: &Record,
        commit: &str,
        entry: &LedgerEntry,
        target: &Target,
    ) -> Result<u64, ProviderError> {
        let id = match record.github_deployment {
            Some(id) => id,
            None => self.find_or_create(record, commit, target).await?,
        };
        self.close(id, entry, target).await?;
        Ok(id)
    }

    /// Gives deployment `id` the final status `entry`'s outcome calls for.
    pub async fn close(&self, id: u64, entry: &LedgerEntry, target: &Target) -> Result<(), ProviderError> {
        let reason = entry.reason.as_deref().unwrap_or("no reason given");
        let (state, description) = match entry.outcome {
            LedgerOutcome::Promoted if entry.unanalysed => (
                "success",
                format!("{PREFIX}{} promoted without analysis, stable in {}", entry.version, entry.environment),
            ),
            LedgerOutcome::Promoted => {
                ("success", format!("{PREFIX}{} promoted, stable in {}", entry.version, entry.environment))
            }
            LedgerOutcome::RolledBack => ("inactive", format!("{PREFIX}{} rolled back: {reason}", entry.version)),
            LedgerOutcome::Reverted => {
                ("failure", format!("{PREFIX}{} reverted after promotion: {reason}", entry.version))
            }
            LedgerOutcome::Failed => ("failure", format!("{PREFIX}{} failed: {reason}", entry.version)),
            LedgerOutcome::Abandoned => ("inactive", format!("{PREFIX}{} abandoned: {reason}", entry.version)),
        };
        self.status(id, state, &description, target).await
    }

    pub(super) async fn find_or_create(
        &self,
        record: &Record,
        commit: &str,
        target: &Target,
    ) -> Result<u64, ProviderError> {
        if let Some(id) = self.find(record, commit).await? {
            return Ok(id);
        }
        let new = NewDeployment {
            git_ref: commit.to_owned(),
            task: "deploy".into(),
            auto_merge: false,
            required_contexts: Vec::new(),
            payload: json!({
                "sluice": {
                    "id": record.id,
                    "app": record.app,
                    "version": record.version,
                    "strategy": record.strategy.name(),
                    "change": record.change,
                    "incident": record.incident,
                    "triggered_by": record.triggered_by,
                }
            }),
            environment: record.environment.clone(),
            description: truncate(&format!("{PREFIX}{} {}", record.app, record.version)),
            transient_environment: false,
            production_environment: target.production,
        };
        let created: Deployment = self
            .github
            .post(
                &format!("create a deployment of {} to {}", record.version, record.environment),
                "deployments: write",
                "/deployments",
                &new,
                Resend::OnlyIfRefused,
            )
            .await?;
        Ok(created.id)
    }

    /// A deployment already standing for `record`: one sluice made for it
    /// (same record id in the payload), or the one a job with `environment:`
    /// made in this run (same environment, SHA and run).
    async fn find(&self, record: &Record, commit: &str) -> Result<Option<u64>, ProviderError> {
        let deployments = self.deployments(&record.environment, commit).await?;
        // An earlier attempt of this record that stopped before saving the
        // id; one that has ended is another deployment (ids are per second).
        if let Some(d) = deployments.iter().find(|d| d.sluice().and_then(|s| s.get("id")) == Some(&json!(record.id))) {
            let statuses = self.statuses(d.id).await?;
            let ended = statuses.iter().any(|s| {
                s.description.as_deref().is_some_and(|d| d.starts_with(PREFIX))
                    && matches!(s.state.as_str(), "success" | "failure" | "error" | "inactive")
            });
            if !ended {
                return Ok(Some(d.id));
            }
        }
        let Some(run_id) = &self.run_id else { return Ok(None) };
        let marker = format!("/actions/runs/{run_id}");
        // Newest first; the job's deployment is among the latest few.
        for d in deployments.iter().filter(|d| d.sluice().is_none()).take(5) {
            let statuses = self.statuses(d.id).await?;
            let of_this_run = statuses.iter().any(|s| {
                [&s.log_url, &s.target_url].into_iter().flatten().any(|url| {
                    url.find(&marker).is_some_and(|at| {
                        let rest = &url[at + marker.len()..];
                        rest.is_empty() || rest.starts_with(['/', '?', '#'])
                    })
                })
            });
            if of_this_run {
                return Ok(Some(d.id));
            }
        }
        Ok(None)
    }

    pub(super) async fn status(
        &self,
        id: u64,
        state: &'static str,
        description: &str,
        target: &Target,
    ) -> Result<(), ProviderError> {
        let status = NewStatus {
            state,
            log_url: self.run_url.clone(),
            description: truncate(description),
            environment_url: target.environment_url.clone(),
        };
        let _: DeploymentStatus = self
            .github
            .post(
                &format!("set deployment {id} to {state}"),
                "deployments: write",
                &format!("/deployments/{id}/statuses"),
                &status,
                Resend::Safe,
            )
            .await?;
        Ok(())
    }

    /// Deployments of `commit` to `environment`, newest first.
    pub async fn deployments(&self, environment: &str, commit: &str) -> Result<Vec<Deployment>, ProviderError> {
        self.github
            .get_all(
                &format!("list the deployments of {} to {environment}", short(commit)),
                "deployments: read",
                &format!("/deployments?environment={}&sha={}", encode(environment), encode(commit)),
                None,
            )
            .await
    }

    /// Statuses of a deployment, newest first.
    pub async fn statuses(&self, id: u64) -> Result<Vec<DeploymentStatus>, ProviderError> {
        self.github
            .get_all(
                &format!("read the statuses of deployment {id}"),
                "deployments: read",
                &format!("/deployments/{id}/statuses"),
                None,
            )
            .await
    }

    /// The history of `commit` in `environment` as ledger entries, oldest
    /// first: a promotion per deployment with a sluice `success`, a revert
    /// for a sluice `failure` after it, a rollback or failure for one that
    /// ended without success. `app` and `version` fill in what a deployment
    /// made by a job does not say.
    pub async fn history(
        &self,
        app: &str,
        environment: &str,
        version: &str,
        commit: &str,
    ) -> Result<Vec<LedgerEntry>, ProviderError> {
        let mut entries = Vec::new();
        for deployment in self.deployments(environment, commit).await?.iter().take(20) {
            if deployment.sluice().and_then(|s| s.get("app")).and_then(|a| a.as_str()).is_some_and(|a| a != app) {
                continue;
            }
            let statuses = self.statuses(deployment.id).await?;
            entries.extend(super::history::entries_of(deployment, statuses, app, version));
        }
        entries.sort_by_key(|e| e.finished_at);
        Ok(entries)
    }

    /// The environment's deployment history on GitHub's web pages.
    pub fn link(&self, environment: &str) -> String {
        self.github.web_url(&format!("/deployments/{}", encode(environment)))
    }
}

/// GitHub refuses descriptions over 140 characters.
pub(super) fn truncate(text: &str) -> String {
    if text.chars().count() <= 140 {
        return text.to_owned();
    }
    let mut cut: String = text.chars().take(139).collect();
    cut.push('…');
    cut
}
