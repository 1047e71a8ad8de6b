//! The deployment history of the repository read back from GitHub as ledger
//! entries, for `dora-report`: the journal on the ledger branch
//! ([`super::journal`]: one call lists its files, one reads each month of
//! each environment, and a month read once is answered from the cache
//! after), and, for what happened before the journal started, the
//! deployments of the environments (newest first, paged until the window's
//! context is passed), sluice's statuses of each (the same mapping as
//! [`super::ledger::GitHubLedger::history`]) and the commits each promotion
//! shipped (compare between consecutive promoted SHAs of the same app and
//! environment, as `promote` records them with `git log` for the file
//! ledger); then the issues with the incident label. An entry both in the
//! journal and among the deployments counts once (the journal's).
//!
//! It only reads, and it reads no more than the window needs: journal
//! months before the window's context are not read; deployments created
//! more than [`CONTEXT`] before `since` are not listed further; before
//! `since − after` (the hotfix window) statuses are read only back to the
//! last promotion of each app and environment; commits are only compared
//! for promotions that finished in the window; and at most
//! `max_deployments` deployments are considered (the newest; a note says
//! when the cap cut the history; with a cap of 0, as `sluice status` reads,
//! the deployments are not listed at all). Every call goes through the
//! counting, caching [`GitHub`] client.
//!
//! It never spends the last [`Query::reserve`] calls of the rate limit
//! (`x-ratelimit-remaining` of the last answer): the gates and promotions
//! running beside the report need them. When the reserve is reached the read
//! stops where it is and [`History::partial`] says what was left out, so the
//! report is marked partial rather than failing at the wall mid-run.

use super::branch::Branch;
use super::client::{GitHub, encode};
use super::journal;
use super::ledger::{GitHubLedger, PREFIX};
use super::short;
use super::types::{Commit, Deployment, DeploymentStatus, Issue};
use crate::ProviderError;
use jiff::{SignedDuration, Timestamp};
use sluice_core::ledger::{CommitInfo, LEDGER_SCHEMA, LedgerEntry, LedgerOutcome};
use std::collections::{HashMap, HashSet};
use std::time::Duration;

/// How far before `since` deployments are still read: the previous
/// promotion a deployment in the window is compared with, a failure whose
/// recovery falls in the window.
pub const CONTEXT: SignedDuration = SignedDuration::from_hours(30 * 24);

/// Deployments whose statuses are read, at most, by default (one API call
/// each, plus one compare per promotion in the window).
pub const DEFAULT_MAX_DEPLOYMENTS: usize = 500;

/// Calls of the rate limit left for other work by default: a `gate` takes
/// at most 6, a `promote` a few more, so 100 leave room for a dozen
/// promotions in the hour of a report run with the workflow token's 1,000.
pub const DEFAULT_RESERVE: u32 = 100;

/// What to read.
#[derive(Clone, Debug)]
pub struct Query {
    /// Environments to read; empty: every environment.
    pub environments: Vec<String>,
    /// Apps to keep; empty: all.
    pub apps: Vec<String>,
    /// The window (`since` inclusive, `until` exclusive), open where `None`.
    pub since: Option<Timestamp>,
    pub until: Option<Timestamp>,
    /// Context read after `until`: a hotfix this long after a deployment in
    /// the window marks it failed.
    pub after: Duration,
    /// Issues with this label are incidents; `None` reads no issues.
    pub incident_label: Option<String>,
    /// At most this many deployments from before the journal have their
    /// statuses read (the newest); 0: the journal alone, no deployment is
    /// listed.
    pub max_deployments: usize,
    /// The app of deployments sluice adopted from a job (empty payload).
    pub default_app: Option<String>,
    /// Stop reading once GitHub says no more than this many calls are left
    /// of the rate limit, and mark the history partial.
    pub reserve: u32,
}

/// The history read, with what the reader wants to know about it.
#[derive(Clone, Debug, Default)]
pub struct History {
    /// Ledger entries, ordered by `finished_at`.
    pub entries: Vec<LedgerEntry>,
    /// What was left out or could not be read, for the report's notes.
    pub notes: Vec<String>,
    /// Deployments whose statuses were read.
    pub deployments: usize,
    /// Entries read from the journal (in the window and its context).
    pub journal_entries: usize,
    /// Incident issues linked to a deployment.
    pub incidents_linked: usize,
    /// What the rate-limit reserve left unread; `None` when the read is
    /// whole.
    pub partial: Option<String>,
}

/// The calls GitHub said were left when they are no more than the reserve.
fn spent(github: &GitHub, query: &Query) -> Option<u32> {
    github.stats().remaining.filter(|&left| left <= query.reserve)
}

/// Adds what was left out to the history's partial mark.
fn left_out(history: &mut History, left: u32, query: &Query, what: &str) {
    let reason = match &history.partial {
        Some(_) => what.to_owned(),
        None => format!(
            "GitHub's rate limit was down to {left} calls, the reserve kept for other work (--github-reserve {}): {what}",
            query.reserve
        ),
    };
    history.partial = Some(match history.partial.take() {
        Some(before) => format!("{before}; {reason}"),
        None => reason,
    });
}

/// Reads the history `query` asks for.
pub async fn read(github: &GitHub, query: &Query) -> Result<History, ProviderError> {
    let from = query.since.and_then(|s| s.checked_sub(CONTEXT).ok());
    let after =
        SignedDuration::try_from(query.after).unwrap_or(SignedDuration::MAX).max(SignedDuration::from_hours(24));
    let to = query.until.and_then(|u| u.checked_add(after).ok());
    let mut history = History::default();

    // The journal first: what it holds needs nothing else.
    let branch = Branch::new(github.clone());
    let files = branch.files().await?;
    let start = match &files {
        Some(files) => branch.start(files).await?,
        None => None,
    };
    let mut journal_entries = Vec::new();
    let mut journaled = journal::Closed::new();
    let mut unread = Vec::new();
    for file in files.iter().flatten() {
        let Some((app, environment, month)) = journal::parse_path(&file.path) else { continue };
        let wanted = (query.environments.is_empty() || query.environments.iter().any(|e| e == environment))
            && (query.apps.is_empty() || query.apps.iter().any(|a| a == app))
            // Entries are filed by the month they ended in: none that
            // started in the window's context ended before it; one that
            // started before its end may end a month later.
            && from.is_none_or(|f| month >= f.strftime("%Y-%m").to_string().as_str())
            && to.is_none_or(|t| {
                let last = t.checked_add(SignedDuration::from_hours(31 * 24)).unwrap_or(t);
                month <= last.strftime("%Y-%m").to_string().as_str()
            });
        if !wanted {
            continue;
        }
        if spent(github, query).is_some() {
            unread.push(file.path.as_str());
            continue;
        }
        let text = branch.blob(&file.sha).await?;
        journaled.extend(journal::closed(&text));
        journal_entries.extend(
            journal::entries(&file.path, &text, &mut history.notes)
                .into_iter()
                .filter(|e| from.is_none_or(|f| e.started_at >= f) && to.is_none_or(|t| e.started_at < t)),
        );
    }
    history.journal_entries = journal_entries.len();
    if let Some(left) = spent(github, query).filter(|_| !unread.is_empty()) {
        left_out(&mut history, left, query, &format!("the journal files {} were not read", unread.join(", ")));
    }

    // Deployments from before the journal (all of them without one).
    let before = match (&files, &start) {
        (Some(_), Some(start)) if !start.deployments_before => None,
        (Some(_), Some(start)) => Some(Some(start.since + journal::START_MARGIN)),
        _ => Some(None),
    };
    let mut entries = match before {
        Some(before) if before.is_none_or(|b| from.is_none_or(|f| f < b)) => {
            if query.max_deployments == 0 {
                // Every page listed would be cut to none.
                let journal = match start.as_ref().map(|s| s.since) {
                    Some(since) => format!("from before the journal (started {since})"),
                    None => "(the ledger branch has no journal)".to_owned(),
                };
                history.notes.push(format!("the deployments {journal} were not read: the cap on deployments is 0"));
                Vec::new()
            } else {
                deployment_entries(github, query, (from, to), before, &journaled, after, &mut history).await?
            }
        }
        _ => Vec::new(),
    };
    let journaled: HashSet<(String, String)> = journal_entries.iter().map(same_entry).collect();
    entries.retain(|e| !journaled.contains(&same_entry(e)));
    let from_deployments: HashSet<(String, String)> = entries.iter().map(same_entry).collect();
    entries.extend(journal_entries);
    // Oldest first; simultaneous entries in the order GitHub numbered them.
    entries.sort_by(|a, b| a.finished_at.cmp(&b.finished_at).then_with(|| a.started_at.cmp(&b.started_at)));

    shipped_commits(github, query, &mut entries, &from_deployments, &mut history).await?;
    if let Some(label) = &query.incident_label {
        match spent(github, query) {
            Some(left) => left_out(&mut history, left, query, "incident issues were not read"),
            None => {
                let issues = incidents(github, label, from).await?;
                history.incidents_linked = link_incidents(&issues, &mut entries);
            }
        }
    }
    history.entries = entries;
    Ok(history)
}

/// What makes an entry the same in the journal and among the deployments:
/// the record id and the outcome.
fn same_entry(entry: &LedgerEntry) -> (String, String) {
    (entry.id.clone(), format!("{:?}", entry.outcome))
}

/// The entries of the deployments created in `(from, to)` and before
/// `before` (all: `None`), from their statuses, as the module says; the
/// ends the journal has (`journaled`) are left out.
async fn deployment_entries(
    github: &GitHub,
    query: &Query,
    (from, to): (Option<Timestamp>, Option<Timestamp>),
    before: Option<Timestamp>,
    journaled: &journal::Closed,
    after: SignedDuration,
    history: &mut History,
) -> Result<Vec<LedgerEntry>, ProviderError> {
    // Newest first; stop paging once a page reaches back past `from`.
    let mut deployments: Vec<Deployment> = Vec::new();
    let environments: Vec<Option<&str>> = if query.environments.is_empty() {
        vec![None]
    } else {
        query.environments.iter().map(|e| Some(e.as_str())).collect()
    };
    for environment in environments {
        let (operation, path) = match environment {
            Some(e) => (format!("list the deployments to {e}"), format!("/deployments?environment={}", encode(e))),
            None => ("list the deployments".to_owned(), "/deployments".to_owned()),
        };
        let listed: Vec<Deployment> = github
            .get_while(&operation, "deployments: read", &path, None, |page: &[Deployment]| {
                page.last().is_some_and(|d| from.is_none_or(|f| d.created_at >= f))
            })
            .await?;
        deployments.extend(listed.into_iter().filter(|d| {
            from.is_none_or(|f| d.created_at >= f)
                && to.is_none_or(|t| d.created_at < t)
                && before.is_none_or(|b| d.created_at < b)
                && (query.apps.is_empty() || app_of(d, query).is_some_and(|a| query.apps.contains(&a)))
        }));
    }
    deployments.sort_by_key(|d| std::cmp::Reverse((d.created_at, d.id)));
    if deployments.len() > query.max_deployments {
        history.notes.push(format!(
            "GitHub history capped: read the newest {} of {} deployments in the window and its context \
             (the cap is --github-max-deployments); older ones are left out",
            query.max_deployments,
            deployments.len()
        ));
        deployments.truncate(query.max_deployments);
    }

    // Before the window, only what the window needs: everything created
    // within `after` of `since` (a hotfix window reaching into it), then per
    // app and environment back to its last promotion (the base of the first
    // compare, the release a revert in the window undoes).
    let early = query.since.and_then(|s| s.checked_sub(after).ok());
    let mut based: HashSet<(String, String)> = HashSet::new();
    let ledger = GitHubLedger { github: github.clone(), run_id: None, run_url: None };
    let mut entries = Vec::new();
    for (read, deployment) in deployments.iter().enumerate() {
        if let Some(left) = spent(github, query) {
            let unread = deployments.len() - read;
            left_out(
                history,
                left,
                query,
                &format!(
                    "the statuses of the {unread} oldest of {} deployments (created at or before {}) were not read",
                    deployments.len(),
                    deployment.created_at
                ),
            );
            break;
        }
        let Some(app) = app_of(deployment, query) else { continue };
        let key = (app.clone(), deployment.environment.clone());
        if early.is_some_and(|e| deployment.created_at < e) && based.contains(&key) {
            continue;
        }
        let statuses = ledger.statuses(deployment.id).await?;
        history.deployments += 1;
        let mut found = entries_of(deployment, statuses, &app, short(&deployment.sha));
        found.retain(|e| !journal::has(journaled, deployment.id, e));
        if query.since.is_some_and(|s| deployment.created_at < s)
            && found.iter().any(|e| e.outcome == LedgerOutcome::Promoted)
        {
            based.insert(key);
        }
        entries.extend(found);
    }
    Ok(entries)
}

/// The app a deployment is of: sluice's payload, else (a job's deployment
/// sluice adopted) the configured app.
fn app_of(deployment: &Deployment, query: &Query) -> Option<String> {
    match deployment.sluice() {
        Some(s) => s.get("app").and_then(|a| a.as_str()).map(str::to_owned),
        None => query.default_app.clone(),
    }
}

/// The ledger entries of one deployment from its statuses (newest first, as
/// GitHub lists them): a promotion for sluice's first `success`, a revert
/// for a sluice `failure` or `error` after it, a rollback for an `inactive`
/// before it (abandoned when its description says `sluice: abandoned: `:
/// it never moved traffic), a failure for a `failure` or `error` before it. Only sluice's
/// statuses count (`sluice: ` first): GitHub's own (a job's end,
/// auto-inactivation) never turn into an outcome. `app` and `version` fill
/// in what a deployment made by a job does not say.
pub(crate) fn entries_of(
    deployment: &Deployment,
    mut statuses: Vec<DeploymentStatus>,
    app: &str,
    version: &str,
) -> Vec<LedgerEntry> {
    let sluice = deployment.sluice();
    let text = |key: &str| sluice.and_then(|s| s.get(key)).and_then(|v| v.as_str()).map(str::to_owned);
    statuses.reverse();
    let ours = statuses.iter().filter(|s| s.description.as_deref().is_some_and(|d| d.starts_with(PREFIX)));
    let version = text("version").unwrap_or_else(|| version.to_owned());
    let entry = |outcome: LedgerOutcome, at: Timestamp, reason: Option<String>| LedgerEntry {
        schema: LEDGER_SCHEMA.to_owned(),
        id: text("id").unwrap_or_else(|| format!("github-deployment-{}", deployment.id)),
        app: app.to_owned(),
        environment: deployment.environment.clone(),
        version: version.clone(),
        commit: Some(deployment.sha.clone()),
        commits: Vec::new(),
        change: sluice
            .and_then(|s| serde_json::from_value(s.get("change").cloned().unwrap_or_default()).ok())
            .unwrap_or_default(),
        incident: text("incident"),
        strategy: text("strategy").unwrap_or_else(|| "unknown".into()),
        triggered_by: text("triggered_by"),
        started_at: deployment.created_at,
        finished_at: at,
        outcome,
        reason,
        unanalysed: false,
        targets: Vec::new(),
    };
    let mut entries = Vec::new();
    let mut promoted = false;
    for status in ours {
        let reason = status.description.as_deref().map(|d| reason_of(d, &version));
        match status.state.as_str() {
            "success" if !promoted => {
                promoted = true;
                let unanalysed =
                    status.description.as_deref().is_some_and(|d| d.contains(" promoted without analysis"));
                entries.push(LedgerEntry { unanalysed, ..entry(LedgerOutcome::Promoted, status.created_at, None) });
            }
            "failure" | "error" if promoted => entries.push(entry(LedgerOutcome::Reverted, status.created_at, reason)),
            "failure" | "error" => entries.push(entry(LedgerOutcome::Failed, status.created_at, reason)),
            "inactive" if !promoted => {
                let abandoned = status.description.as_deref().is_some_and(|d| abandoned_reason(d).is_some());
                let outcome = if abandoned { LedgerOutcome::Abandoned } else { LedgerOutcome::RolledBack };
                entries.push(entry(outcome, status.created_at, reason));
            }
            _ => {}
        }
    }
    entries
}

/// The reason in a status description sluice wrote (`sluice: v2 rolled
/// back: error rate 5%` → `error rate 5%`); the whole text after the prefix
/// when it has another form.
fn reason_of(description: &str, version: &str) -> String {
    let text = description.strip_prefix(PREFIX).unwrap_or(description);
    if let Some(reason) = abandoned_reason(description) {
        return reason.to_owned();
    }
    [" rolled back: ", " reverted after promotion: ", " failed: "]
        .iter()
        .find_map(|middle| text.strip_prefix(version).and_then(|rest| rest.strip_prefix(middle)))
        .unwrap_or(text)
        .to_owned()
}

/// The reason in the status sluice gives a deployment that ended without
/// moving traffic (`sluice: v2 abandoned: the router was down` → `the
/// router was down`); `None` for any other description. Found by its form,
/// not by the version the history expects: a version is one word (see
/// `sluice_core::names`), and a deployment a job made says none.
fn abandoned_reason(description: &str) -> Option<&str> {
    let (_version, rest) = description.strip_prefix(PREFIX)?.split_once(' ')?;
    rest.strip_prefix("abandoned: ")
}

/// Fills `commits` of each promotion read from the deployments that
/// finished in the window: what
/// compare lists from the previous promoted SHA of the same app and
/// environment to this one; the deployed commit alone for the first
/// promotion read. A compare GitHub refuses (a SHA gone after a force push)
/// leaves that promotion without commits and says so in a note.
async fn shipped_commits(
    github: &GitHub,
    query: &Query,
    entries: &mut [LedgerEntry],
    from_deployments: &HashSet<(String, String)>,
    history: &mut History,
) -> Result<(), ProviderError> {
    let mut uncompared = 0;
    let in_window = |t: Timestamp| query.since.is_none_or(|s| t >= s) && query.until.is_none_or(|u| t < u);
    let mut previous: HashMap<(String, String), String> = HashMap::new();
    for entry in entries.iter_mut().filter(|e| e.outcome == LedgerOutcome::Promoted) {
        let Some(sha) = entry.commit.clone() else { continue };
        let key = (entry.app.clone(), entry.environment.clone());
        let before = previous.insert(key, sha.clone());
        // The journal's entries came with their commits.
        if !in_window(entry.finished_at) || !from_deployments.contains(&same_entry(entry)) {
            continue;
        }
        if before.as_deref() != Some(sha.as_str()) && spent(github, query).is_some() {
            uncompared += 1;
            continue;
        }
        let listed = match before.as_deref() {
            Some(base) if base == sha => Ok(Vec::new()),
            Some(base) => github.compare(base, &sha).await,
            None => github.commit(&sha).await.map(|c| vec![c]),
        };
        match listed {
            Ok(commits) => entry.commits = commits.iter().filter_map(commit_info).collect(),
            Err(e) if !e.transient => history.notes.push(format!(
                "no commits for {} {} in {} ({}): {e}",
                entry.app,
                entry.version,
                entry.environment,
                short(&sha)
            )),
            Err(e) => return Err(e),
        }
    }
    if uncompared > 0 {
        let left = github.stats().remaining.unwrap_or(0);
        let what = format!("the commits of {uncompared} promotions were not listed (no lead time for them)");
        left_out(history, left, query, &what);
    }
    Ok(())
}

/// A commit as the ledger keeps it: committer time, merge when it has more
/// than one parent.
pub(crate) fn commit_info(commit: &Commit) -> Option<CommitInfo> {
    let git = &commit.commit;
    let time = git.committer.as_ref().and_then(|c| c.date).or_else(|| git.author.as_ref().and_then(|a| a.date))?;
    Some(CommitInfo { sha: commit.sha.clone(), time, merge: commit.parents.len() > 1 })
}

/// Issues (not pull requests) with the label, open or closed, updated since
/// `from`.
async fn incidents(github: &GitHub, label: &str, from: Option<Timestamp>) -> Result<Vec<Issue>, ProviderError> {
    let since = from.map(|f| format!("&since={}", encode(&f.to_string()))).unwrap_or_default();
    let issues: Vec<Issue> = github
        .get_all(
            &format!("list the issues labelled {label:?}"),
            "issues: read",
            &format!("/issues?state=all&labels={}{since}", encode(label)),
            None,
        )
        .await?;
    Ok(issues.into_iter().filter(|i| i.pull_request.is_none()).collect())
}

/// Links each incident issue to at most one promoted deployment and sets
/// that entry's `incident` (`#number`) unless the deployment already named
/// one. The issue's title and body, split into words, are searched for:
/// 1. a deployment's record id: that deployment;
/// 2. else an app and one of its versions (`shop v1.4.2`, `shop@v1.4.2`):
///    the latest promotion of that version that finished before the issue
///    was opened, in the environments the text names if it names any of
///    those read.
///
/// Returns the number of issues linked.
fn link_incidents(issues: &[Issue], entries: &mut [LedgerEntry]) -> usize {
    let mut linked = 0;
    for issue in issues {
        let text = format!("{}\n{}", issue.title, issue.body.as_deref().unwrap_or(""));
        let words: std::collections::HashSet<&str> = words(&text).collect();
        let promoted = |e: &LedgerEntry| e.outcome == LedgerOutcome::Promoted;
        let target = match entries.iter().rposition(|e| promoted(e) && words.contains(e.id.as_str())) {
            Some(i) => Some(i),
            None => {
                let named: Vec<&str> =
                    entries.iter().map(|e| e.environment.as_str()).filter(|env| words.contains(env)).collect();
                entries.iter().rposition(|e| {
                    promoted(e)
                        && words.contains(e.app.as_str())
                        && words.contains(e.version.as_str())
                        && (named.is_empty() || named.contains(&e.environment.as_str()))
                        && issue.created_at.is_none_or(|c| e.finished_at <= c)
                })
            }
        };
        if let Some(i) = target {
            linked += 1;
            let entry = &mut entries[i];
            if entry.incident.is_none() {
                entry.incident = Some(format!("#{}", issue.number));
            }
        }
    }
    linked
}

/// Words of free text: runs of letters, digits and `-_.+`, without a
/// sentence's final dots.
fn words(text: &str) -> impl Iterator<Item = &str> {
    text.split(|c: char| !(c.is_alphanumeric() || matches!(c, '-' | '_' | '.' | '+')))
        .map(|w| w.trim_end_matches('.'))
        .filter(|w| !w.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn deployment() -> Deployment {
        serde_json::from_value(json!({
            "id": 7, "sha": "a1b2c3", "ref": "a1b2c3", "environment": "prd",
            "payload": { "sluice": { "id": "shop-prd-7", "app": "shop", "version": "v2" } },
            "created_at": "2026-11-23T10:00:00Z",
        }))
        .expect("deployment")
    }

    /// Statuses oldest first; `entries_of` takes them newest first, as GitHub lists them.
    fn outcomes(statuses: &[(&str, &str)]) -> Vec<(LedgerOutcome, Option<String>)> {
        let mut list: Vec<DeploymentStatus> = statuses
            .iter()
            .enumerate()
            .map(|(i, (state, description))| {
                serde_json::from_value(json!({
                    "id": i + 1, "state": state, "description": description,
                    "created_at": format!("2026-11-23T10:0{i}:00Z"),
                }))
                .expect("status")
            })
            .collect();
        list.reverse();
        entries_of(&deployment(), list, "shop", "a1b2c3").into_iter().map(|e| (e.outcome, e.reason)).collect()
    }

    #[test]
    fn an_abandoned_deployment_reads_back_as_abandoned_not_as_a_rollback() {
        // What `GitHubLedger::finish` writes for each outcome, read back.
        let deploying = ("in_progress", "sluice: deploying v2 (canary)");
        assert_eq!(
            outcomes(&[deploying, ("inactive", "sluice: v2 abandoned: the router was down")]),
            [(LedgerOutcome::Abandoned, Some("the router was down".to_owned()))]
        );
        assert_eq!(
            outcomes(&[deploying, ("inactive", "sluice: v2 rolled back: error rate 5%")]),
            [(LedgerOutcome::RolledBack, Some("error rate 5%".to_owned()))]
        );
        // GitHub's own inactive (auto-inactivation) is no outcome at all.
        assert_eq!(outcomes(&[deploying, ("inactive", "auto-inactivated")]), []);
        // After a promotion an inactive status means nothing either.
        assert_eq!(
            outcomes(&[("success", "sluice: v2 promoted, stable in prd"), ("inactive", "sluice: v2 abandoned: x")]),
            [(LedgerOutcome::Promoted, None)]
        );
    }

    #[test]
    fn reasons_lose_the_form_sluice_wrote_them_in() {
        assert_eq!(reason_of("sluice: v2 rolled back: error rate 5%", "v2"), "error rate 5%");
        assert_eq!(reason_of("sluice: v2 reverted after promotion: p99", "v2"), "p99");
        assert_eq!(reason_of("sluice: v2 failed: router down", "v2"), "router down");
        assert_eq!(reason_of("sluice: something else", "v2"), "something else");
        assert_eq!(reason_of("sluice: v2 abandoned: router down", "v2"), "router down");
        // A job's deployment: the history knows its SHA, the status says the version.
        assert_eq!(reason_of("sluice: v2 abandoned: router down", "a1b2c3"), "router down");
        assert_eq!(abandoned_reason("sluice: v2 rolled back: check abandoned: x"), None);
        assert_eq!(abandoned_reason("v2 abandoned: x"), None);
    }

    #[test]
    fn words_split_prose_and_keep_versions_whole() {
        let found: Vec<&str> = words("Checkout down after shop@v1.4.2 (prd). See shop-prd-v1.4.2-x.").collect();
        assert_eq!(found, ["Checkout", "down", "after", "shop", "v1.4.2", "prd", "See", "shop-prd-v1.4.2-x"]);
    }
}
