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
//!
//! The history itself is kept in the journal on the ledger branch
//! ([`super::journal`]): the end of a deployment writes its entry there
//! too, with the commits a promotion shipped, and frees the environment
//! lease ([`super::lease`]). What happened before the journal started is
//! read from the deployments and their statuses.

use super::branch::Branch;
use super::client::{GitHub, Resend, encode};
use super::journal;
use super::short;
use super::types::{Deployment, DeploymentStatus, NewDeployment, NewStatus};
use crate::ProviderError;
use jiff::Timestamp;
use serde_json::json;
use sluice_core::lease::Lease;
use sluice_core::ledger::{LedgerEntry, LedgerOutcome};
use sluice_core::record::Record;

/// Marks sluice's statuses among others.
pub const PREFIX: &str = "sluice: ";

pub use crate::ledger::Target;

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
    /// The ledger branch (journal and leases) of this repository.
    pub fn branch(&self) -> Branch {
        Branch::new(self.github.clone())
    }

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

    /// Writes `entry` to the journal (with the commits a promotion
    /// shipped), closes the deployment of `record` with the status the
    /// outcome calls for, and frees the environment lease `record` holds.
    /// Returns the deployment's id. Run again, it writes nothing twice.
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
        // The journal first: a step that stops after it and is run again
        // writes nothing twice (the journal finds its entry), and the final
        // status, last, is posted once.
        let entry = self.with_commits(entry, Some(id)).await?;
        self.branch().append(&entry, Some(id)).await?;
        self.close(id, &entry, target).await?;
        let why = serde_json::to_value(entry.outcome).ok().and_then(|o| o.as_str().map(str::to_owned));
        self.branch()
            .release_lease(&record.app, &record.environment, &record.id, why.as_deref().unwrap_or("ended"))
            .await?;
        Ok(id)
    }

    /// Frees the environment lease `holder` holds, deliberately (its run is
    /// dead): closes its deployment with `entry` (found by its record id
    /// among the environment's newest), writes `entry` to the journal, then
    /// frees the lease. Returns whether `holder` still held it.
    pub async fn free_lease(
        &self,
        holder: &Lease,
        entry: &LedgerEntry,
        target: &Target,
    ) -> Result<bool, ProviderError> {
        let branch = self.branch();
        let held = branch.lease_in_file(&holder.app, &holder.environment).await?;
        if held.is_none_or(|l| l.record_id != holder.record_id) {
            return Ok(false);
        }
        let deployments: Vec<Deployment> = self
            .github
            .get(
                &format!("list the deployments to {}", holder.environment),
                "deployments: read",
                &format!("/deployments?environment={}&per_page=100", encode(&holder.environment)),
            )
            .await?;
        let id = json!(holder.record_id);
        let deployment = deployments.iter().find(|d| d.sluice().and_then(|s| s.get("id")) == Some(&id)).map(|d| d.id);
        if let Some(deployment) = deployment {
            self.close(deployment, entry, target).await?;
        }
        branch.append(entry, deployment).await?;
        let why = entry.reason.as_deref().unwrap_or("freed");
        branch.release_lease(&holder.app, &holder.environment, &holder.record_id, why).await
    }

    /// `entry` with the commits it shipped, when it is a promotion that
    /// lists none: compare from the commit of the previous promotion of the
    /// same app and environment (the journal's, else the deployments') to
    /// this one; the commit alone for the first. A compare GitHub refuses
    /// (a force-pushed SHA) leaves it without commits, with a warning.
    async fn with_commits(&self, entry: &LedgerEntry, deployment: Option<u64>) -> Result<LedgerEntry, ProviderError> {
        let mut entry = entry.clone();
        let Some(sha) = entry.commit.clone() else { return Ok(entry) };
        if entry.outcome != LedgerOutcome::Promoted || !entry.commits.is_empty() {
            return Ok(entry);
        }
        let previous = self.previous_promotion(&entry, deployment).await?;
        let listed = match previous.as_deref() {
            Some(base) if base == sha => Ok(Vec::new()),
            Some(base) => self.github.compare(base, &sha).await,
            None => self.github.commit(&sha).await.map(|c| vec![c]),
        };
        match listed {
            Ok(commits) => entry.commits = commits.iter().filter_map(super::history::commit_info).collect(),
            Err(e) if !e.transient => sluice_core::gha::warning(&format!(
                "no commits recorded for {} {} in {} ({}): {e}",
                entry.app,
                entry.version,
                entry.environment,
                short(&sha)
            )),
            Err(e) => return Err(e),
        }
        Ok(entry)
    }

    /// The commit of the promotion of `entry`'s app and environment before
    /// it: the newest in the journal (this month, then earlier months),
    /// else among the deployments from before the journal (not
    /// `deployment`, `entry`'s own).
    async fn previous_promotion(
        &self,
        entry: &LedgerEntry,
        deployment: Option<u64>,
    ) -> Result<Option<String>, ProviderError> {
        let branch = self.branch();
        let mut notes = Vec::new();
        let earlier = |e: &LedgerEntry| {
            e.app == entry.app
                && e.environment == entry.environment
                && e.outcome == LedgerOutcome::Promoted
                && e.id != entry.id
                && e.finished_at <= entry.finished_at
        };
        let (this_month, _) = branch.month(&entry.app, &entry.environment, entry.finished_at, &mut notes).await?;
        if let Some(found) = this_month.iter().rfind(|e| earlier(e)) {
            return Ok(found.commit.clone());
        }
        let files = branch.files().await?.unwrap_or_default();
        let month = journal::month_path(&entry.app, &entry.environment, entry.finished_at);
        let mut older: Vec<&super::branch::TreeEntry> = files
            .iter()
            .filter(|f| {
                journal::parse_path(&f.path).is_some_and(|(a, e, _)| a == entry.app && e == entry.environment)
                    && f.path < month
            })
            .collect();
        older.sort_by(|a, b| b.path.cmp(&a.path));
        for file in older {
            let text = branch.blob(&file.sha).await?;
            if let Some(found) = journal::entries(&file.path, &text, &mut notes).iter().rfind(|e| earlier(e)) {
                return Ok(found.commit.clone());
            }
        }
        let start = branch.start(&files).await?;
        if start.as_ref().is_some_and(|s| !s.deployments_before) {
            return Ok(None);
        }
        // From before the journal: the newest deployment of the app with a
        // sluice success.
        let before = start.map(|s| s.since + journal::START_MARGIN);
        let deployments: Vec<Deployment> = self
            .github
            .get(
                &format!("list the deployments to {}", entry.environment),
                "deployments: read",
                &format!("/deployments?environment={}&per_page=100", encode(&entry.environment)),
            )
            .await?;
        for d in deployments.iter().filter(|d| before.is_none_or(|b| d.created_at < b)).take(20) {
            if d.sluice().and_then(|s| s.get("app")).and_then(|a| a.as_str()).is_some_and(|a| a != entry.app)
                || d.sluice().and_then(|s| s.get("id")) == Some(&json!(entry.id))
                || Some(d.id) == deployment
            {
                continue;
            }
            let statuses = self.statuses(d.id).await?;
            let promoted = super::history::entries_of(d, statuses, &entry.app, short(&d.sha))
                .iter()
                .any(|e| e.outcome == LedgerOutcome::Promoted && e.finished_at <= entry.finished_at);
            if promoted {
                return Ok(Some(d.sha.clone()));
            }
        }
        Ok(None)
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
        let mut payload = json!({
            "sluice": {
                "id": record.id,
                "app": record.app,
                "version": record.version,
                "strategy": record.strategy.name(),
                "change": record.change,
                "incident": record.incident,
                "triggered_by": record.triggered_by,
            }
        });
        // One deployment per environment, whatever its targets: they are
        // named in the payload, in their waves.
        if !record.targets.is_empty() {
            let targets: Vec<_> = record.targets.iter().map(|t| json!({ "name": t.name, "wave": t.wave })).collect();
            payload["sluice"]["targets"] = json!(targets);
        }
        let new = NewDeployment {
            git_ref: commit.to_owned(),
            task: "deploy".into(),
            auto_merge: false,
            required_contexts: Vec::new(),
            payload,
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

    /// The history of `commit` (and `version`) of `app` in `environment` as
    /// ledger entries, oldest first: from the journal, this month first and
    /// earlier months only until its promotion is found (one call when it
    /// was promoted this month); from the deployments when the journal has
    /// no promotion of it and history from before the journal may.
    pub async fn history(
        &self,
        app: &str,
        environment: &str,
        version: &str,
        commit: &str,
    ) -> Result<Vec<LedgerEntry>, ProviderError> {
        let branch = self.branch();
        let mut notes = Vec::new();
        let same = |e: &LedgerEntry| {
            e.app == app && e.environment == environment && e.version == version && e.commit.as_deref() == Some(commit)
        };
        let promoted = |entries: &[LedgerEntry]| entries.iter().any(|e| e.outcome == LedgerOutcome::Promoted);
        let now = Timestamp::now();
        let (read, mut journaled) = branch.month(app, environment, now, &mut notes).await?;
        let mut entries: Vec<LedgerEntry> = read.into_iter().filter(|e| same(e)).collect();
        if !promoted(&entries) {
            let files = branch.files().await?;
            let month = journal::month_path(app, environment, now);
            let mut older: Vec<&super::branch::TreeEntry> = files
                .iter()
                .flatten()
                .filter(|f| {
                    journal::parse_path(&f.path).is_some_and(|(a, e, _)| a == app && e == environment) && f.path < month
                })
                .collect();
            older.sort_by(|a, b| b.path.cmp(&a.path));
            for file in older {
                let text = branch.blob(&file.sha).await?;
                entries.extend(journal::entries(&file.path, &text, &mut notes).into_iter().filter(|e| same(e)));
                journaled.extend(journal::closed(&text));
                if promoted(&entries) {
                    break;
                }
            }
            let start = match &files {
                Some(files) => branch.start(files).await?,
                None => None,
            };
            if !promoted(&entries) && start.as_ref().is_none_or(|s| s.deployments_before) {
                let before = start.map(|s| s.since + journal::START_MARGIN);
                for e in self.deployment_history(app, environment, version, commit, before, &journaled).await? {
                    if !entries.iter().any(|j| j.id == e.id && j.outcome == e.outcome) {
                        entries.push(e);
                    }
                }
            }
        }
        for note in notes {
            sluice_core::gha::warning(&note);
        }
        entries.sort_by_key(|e| e.finished_at);
        Ok(entries)
    }

    /// The history of `commit` in `environment` read from the deployments
    /// (created before `before`) and their statuses, leaving out the ends the
    /// journal has (`journaled`), oldest first: a
    /// promotion per deployment with a sluice `success`, a revert for a
    /// sluice `failure` after it, a rollback or failure for one that ended
    /// without success. `app` and `version` fill in what a deployment made
    /// by a job does not say.
    async fn deployment_history(
        &self,
        app: &str,
        environment: &str,
        version: &str,
        commit: &str,
        before: Option<Timestamp>,
        journaled: &journal::Closed,
    ) -> Result<Vec<LedgerEntry>, ProviderError> {
        let mut entries = Vec::new();
        let deployments = self.deployments(environment, commit).await?;
        for deployment in deployments.iter().filter(|d| before.is_none_or(|b| d.created_at < b)).take(20) {
            if deployment.sluice().and_then(|s| s.get("app")).and_then(|a| a.as_str()).is_some_and(|a| a != app) {
                continue;
            }
            let statuses = self.statuses(deployment.id).await?;
            let found = super::history::entries_of(deployment, statuses, app, version);
            entries.extend(found.into_iter().filter(|e| !journal::has(journaled, deployment.id, e)));
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
