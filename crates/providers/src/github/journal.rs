//! The deployment journal: the GitHub ledger's entries as JSON Lines on the
//! ledger branch ([`super::branch`]), one file per app, environment and
//! month (`ledger/APP/ENVIRONMENT/YYYY-MM.jsonl`, by the month the entry
//! finished in, UTC), each line a [`LedgerEntry`] as the file ledger holds
//! it, with the commits of each promotion (listed by compare when the entry
//! is written, as `promote` lists them with `git log` for the file ledger),
//! and one more key, `github_deployment`: the GitHub deployment it closed
//! (the ledger file's readers ignore it), so that an end is never counted
//! both from the journal and from the deployment's statuses.
//!
//! Why a journal, with figures: reading the history from GitHub Deployments
//! costs one REST call per deployment (its statuses) and one per promotion
//! (its commits, by compare): 604 calls for 300 deployments, against the
//! 1,000 requests an hour a workflow's `GITHUB_TOKEN` has per repository
//! (<https://docs.github.com/en/rest/using-the-rest-api/rate-limits-for-the-rest-api>).
//! GitHub's GraphQL API would read deployments with their statuses 100 to a
//! query (`Repository.deployments`, `Deployment.statuses`; cost: the
//! connections' requests over 100, at least 1 point, from a separate
//! budget of 1,000 points an hour for `GITHUB_TOKEN`,
//! <https://docs.github.com/en/graphql/overview/rate-limits-and-query-limits-for-the-graphql-api>),
//! but has nothing that lists the commits between two deployments as
//! compare does, so the 300 compares would stay. The journal holds whole
//! entries: a month of one environment is one file, read in one call (a
//! blob, up to 100 MB; the contents API serves 1 MB inline), and a blob
//! never changes, so a month read once costs nothing again. Each file is
//! written by a compare-and-swap on its `sha`, so two writers never lose an
//! entry.
//!
//! History from before the journal (`ledger/since.json` says when it
//! started, and whether the repository had deployments then) is still read
//! from Deployments ([`super::history`]); an entry in both counts once.

use super::branch::{Branch, File};
use super::client::GitHub;
use crate::ProviderError;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use sluice_core::ledger::{LedgerEntry, LedgerReader};

/// Schema tag of the journal's start marker.
pub const SCHEMA: &str = "sluice.github-journal/v1";

/// Where the journal says when it started.
pub const START: &str = "ledger/since.json";

/// The key naming the GitHub deployment an entry closed.
pub const DEPLOYMENT: &str = "github_deployment";

/// A journal line: `entry` as the ledger file has it (its keys in their
/// order), and the deployment it closed last.
pub fn line(entry: &LedgerEntry, deployment: Option<u64>) -> Result<String, serde_json::Error> {
    let mut text = serde_json::to_string(entry)?;
    if let Some(id) = deployment
        && text.ends_with('}')
    {
        text.pop();
        text.push_str(&format!(",\"{DEPLOYMENT}\":{id}}}"));
    }
    Ok(text)
}

/// What the entries of a journal file closed: each GitHub deployment with
/// the outcome its entry gave it (`promoted`, `reverted`, …).
pub fn closed(text: &str) -> Closed {
    text.lines()
        .filter(|l| l.contains(DEPLOYMENT))
        .filter_map(|l| {
            let value = serde_json::from_str::<serde_json::Value>(l).ok()?;
            Some((value.get(DEPLOYMENT)?.as_u64()?, value.get("outcome")?.as_str()?.to_owned()))
        })
        .collect()
}

/// GitHub deployments and the outcomes the journal gave them.
pub type Closed = std::collections::HashSet<(u64, String)>;

/// Whether the journal has `entry` of `deployment` already (read from its
/// statuses, it would count twice).
pub fn has(closed: &Closed, deployment: u64, entry: &LedgerEntry) -> bool {
    let outcome = serde_json::to_value(entry.outcome).ok();
    outcome.as_ref().and_then(|o| o.as_str()).is_some_and(|o| closed.contains(&(deployment, o.to_owned())))
}

/// When the journal started.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Start {
    pub schema: String,
    /// Entries of deployments that ended after this are in the journal.
    pub since: Timestamp,
    /// The repository had deployments when the journal started: the history
    /// before `since` is read from GitHub Deployments.
    pub deployments_before: bool,
}

/// How much of Deployments' history around the start is read as well, for
/// runners whose clocks differ from GitHub's (an entry in both counts once).
pub const START_MARGIN: jiff::SignedDuration = jiff::SignedDuration::from_hours(1);

/// The file of `app`'s entries in `environment` that finished in the month
/// of `at`.
pub fn month_path(app: &str, environment: &str, at: Timestamp) -> String {
    format!("{}/{}.jsonl", env_dir(app, environment), at.strftime("%Y-%m"))
}

/// The folder of `app`'s entries in `environment`.
pub fn env_dir(app: &str, environment: &str) -> String {
    format!("ledger/{app}/{environment}")
}

/// A journal file's path as (app, environment, month `YYYY-MM`).
pub fn parse_path(path: &str) -> Option<(&str, &str, &str)> {
    let rest = path.strip_prefix("ledger/")?;
    let mut parts = rest.split('/');
    let (app, environment, file) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() {
        return None;
    }
    let month = file.strip_suffix(".jsonl")?;
    (month.len() == 7 && month.as_bytes()[4] == b'-').then_some((app, environment, month))
}

/// The entries of a journal file, by the ledger reader's rules; a line that
/// is not an entry (an edit by hand) is skipped and said in `notes`.
pub fn entries(path: &str, text: &str, notes: &mut Vec<String>) -> Vec<LedgerEntry> {
    let mut reader = LedgerReader::new(text.as_bytes(), path);
    let mut out = Vec::new();
    for item in reader.by_ref() {
        match item {
            Ok(entry) => out.push(entry),
            Err(e) => notes.push(format!("skipped on branch {}: {e}", super::branch::BRANCH)),
        }
    }
    out
}

/// The start marker for a journal starting `now`: `deployments_before`
/// says whether the repository has any deployment yet (one call).
pub async fn start_marker(github: &GitHub, now: Timestamp) -> Result<Start, ProviderError> {
    let some: Vec<serde_json::Value> = github
        .get("see whether the repository has deployments", "deployments: read", "/deployments?per_page=1")
        .await?;
    Ok(Start { schema: SCHEMA.into(), since: now, deployments_before: !some.is_empty() })
}

impl Branch {
    /// Appends `entry` (which closed `deployment`) to its month's file by
    /// compare-and-swap (read, add
    /// the line, write if unchanged, else again). Writes nothing when the
    /// file has an entry of the same id, outcome and end already (a step
    /// run again after it was written). Returns whether it wrote.
    pub async fn append(&self, entry: &LedgerEntry, deployment: Option<u64>) -> Result<bool, ProviderError> {
        let path = month_path(&entry.app, &entry.environment, entry.finished_at);
        let line = line(entry, deployment).map_err(|e| ProviderError {
            provider: "github",
            operation: format!("write the ledger entry {}", entry.id),
            message: e.to_string(),
            transient: false,
            attempts: 1,
        })?;
        // What this step read of the file already is tried first.
        let mut known = self.known(&path);
        for _ in 0..20 {
            let current = match known.take() {
                Some(file) => file,
                None => self.read(&path).await?,
            };
            let (text, sha) = match &current {
                Some(File { text, sha }) => (text.as_str(), Some(sha.as_str())),
                None => ("", None),
            };
            let mut ignored = Vec::new();
            if entries(&path, text, &mut ignored)
                .iter()
                .any(|e| e.id == entry.id && e.outcome == entry.outcome && e.finished_at == entry.finished_at)
            {
                return Ok(false);
            }
            let mut next = String::with_capacity(text.len() + line.len() + 2);
            next.push_str(text);
            if !next.is_empty() && !next.ends_with('\n') {
                next.push('\n');
            }
            next.push_str(&line);
            next.push('\n');
            let outcome = serde_json::to_value(entry.outcome).ok();
            let message = format!(
                "{} {} in {}: {}",
                entry.app,
                entry.version,
                entry.environment,
                outcome.as_ref().and_then(|o| o.as_str()).unwrap_or("ended")
            );
            if self.write(&path, &next, sha, &message).await?.is_ok() {
                return Ok(true);
            }
        }
        Err(ProviderError {
            provider: "github",
            operation: format!("write the ledger entry {} to {path}", entry.id),
            message: "the file changed under every one of 20 attempts".into(),
            transient: true,
            attempts: 20,
        })
    }

    /// When the journal started; `None` without a branch or a marker.
    pub async fn start(&self, files: &[super::branch::TreeEntry]) -> Result<Option<Start>, ProviderError> {
        let Some(marker) = files.iter().find(|f| f.path == START) else { return Ok(None) };
        let text = self.blob(&marker.sha).await?;
        Ok(serde_json::from_str(&text).ok())
    }

    /// `app`'s entries in `environment` that ended in the month of `at`,
    /// and the deployments they closed, read through the contents API (one
    /// call, conditional).
    pub async fn month(
        &self,
        app: &str,
        environment: &str,
        at: Timestamp,
        notes: &mut Vec<String>,
    ) -> Result<(Vec<LedgerEntry>, Closed), ProviderError> {
        let path = month_path(app, environment, at);
        Ok(match self.read(&path).await? {
            Some(file) => (entries(&path, &file.text, notes), closed(&file.text)),
            None => Default::default(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_name_app_environment_and_month() {
        let at: Timestamp = "2026-03-31T23:59:59Z".parse().expect("time");
        let path = month_path("shop", "prd", at);
        assert_eq!(path, "ledger/shop/prd/2026-03.jsonl");
        assert_eq!(parse_path(&path), Some(("shop", "prd", "2026-03")));
        assert_eq!(parse_path(START), None);
        assert_eq!(parse_path("ledger/shop/prd/x/2026-03.jsonl"), None);
        assert_eq!(parse_path("lease/shop/prd.json"), None);
    }

    #[test]
    fn a_line_that_is_not_an_entry_is_skipped_and_said() {
        let entry = r#"{"schema":"sluice.ledger/v1","id":"r1","app":"shop","environment":"prd","version":"v1","strategy":"canary","started_at":"2026-03-01T10:00:00Z","finished_at":"2026-03-01T10:10:00Z","outcome":"promoted"}"#;
        let text = format!("{entry}\nnot json\n\n{entry}\n");
        let mut notes = Vec::new();
        let read = entries("ledger/shop/prd/2026-03.jsonl", &text, &mut notes);
        assert_eq!(read.len(), 2);
        assert_eq!(notes.len(), 1, "{notes:?}");
        assert!(notes[0].contains("line 2"), "{notes:?}");
    }

    #[test]
    fn a_line_names_its_deployment_and_reads_back_as_an_entry() {
        let text = r#"{"schema":"sluice.ledger/v1","id":"r1","app":"shop","environment":"prd","version":"v1","strategy":"canary","started_at":"2026-03-01T10:00:00Z","finished_at":"2026-03-01T10:10:00Z","outcome":"promoted"}"#;
        let mut notes = Vec::new();
        let entry = entries("x", text, &mut notes).remove(0);
        let with = line(&entry, Some(1007)).expect("line");
        assert!(
            with.ends_with(r#","github_deployment":1007}"#) || with.contains(r#""github_deployment":1007"#),
            "{with}"
        );
        assert_eq!(entries("x", &with, &mut notes), std::slice::from_ref(&entry));
        assert!(notes.is_empty(), "{notes:?}");
        let closed = closed(&format!("{with}\n{text}\n"));
        assert_eq!(closed, [(1007, "promoted".to_owned())].into_iter().collect());
        assert!(has(&closed, 1007, &entry));
        assert!(!has(&closed, 1008, &entry));
        assert_eq!(line(&entry, None).expect("line"), serde_json::to_string(&entry).expect("json"));
    }
}
