//! The deployment history, wherever it is kept: the JSON Lines file
//! (`sluice_core::ledger`) or GitHub Deployments ([`GitHubLedger`]).
//!
//! The steps ask three things of it: a deployment starts (the gate admitted
//! it), a deployment ended (promoted, rolled back, reverted, failed), and
//! what happened to a release in an environment (for the gate's order and
//! soak checks). Nothing here decides anything.

use crate::ProviderError;
use crate::github::ledger::{GitHubLedger, Target};
use jiff::Timestamp;
use sluice_core::lease::{self, Acquired, Lease, LeaseError};
use sluice_core::ledger::{LedgerEntry, LedgerError};
use sluice_core::record::Record;
use std::path::PathBuf;

pub use crate::github::ledger::Target as LedgerTarget;

/// A ledger of one of the kinds the config names.
#[derive(Clone, Debug)]
pub enum Ledger {
    File(PathBuf),
    GitHub(GitHubLedger),
}

/// Why the ledger could not be used.
#[derive(Debug, thiserror::Error)]
pub enum LedgerFailure {
    /// The ledger file (a damaged line is the user's to fix).
    #[error(transparent)]
    File(#[from] LedgerError),
    /// GitHub, after retries.
    #[error(transparent)]
    Provider(#[from] ProviderError),
    /// What the ledger needs and the deployment does not say.
    #[error("{0}")]
    Input(String),
    /// The environment lease file.
    #[error(transparent)]
    Lease(LeaseError),
}

/// Where the environment lease stands for a deployment.
#[derive(Clone, Debug, PartialEq)]
pub enum LeaseState {
    /// This deployment holds it (new, renewed, or taken over).
    Held(Acquired),
    /// Another deployment holds it.
    HeldByOther(Box<Lease>),
}

impl LedgerFailure {
    /// Whether the user's input is at fault (exit 2) rather than a provider
    /// (exit 3).
    pub fn is_input(&self) -> bool {
        matches!(
            self,
            LedgerFailure::Input(_)
                | LedgerFailure::File(LedgerError::Damaged { .. })
                | LedgerFailure::Lease(LeaseError::Damaged { .. })
        )
    }
}

fn commit_of(record: &Record) -> Result<&str, LedgerFailure> {
    record.commit.as_deref().ok_or_else(|| {
        LedgerFailure::Input(format!(
            "the github ledger needs the commit of {}: pass --commit SHA to gate (in GitHub Actions it defaults to $GITHUB_SHA)",
            record.version
        ))
    })
}

impl Ledger {
    /// A deployment was admitted. The GitHub ledger creates (or adopts) its
    /// deployment and marks it `in_progress`, returning its id; the file
    /// ledger writes nothing until the end.
    pub async fn start(&self, record: &Record, target: &Target) -> Result<Option<u64>, LedgerFailure> {
        match self {
            Ledger::File(_) => Ok(None),
            Ledger::GitHub(github) => Ok(Some(github.start(record, commit_of(record)?, target).await?)),
        }
    }

    /// A deployment ended: the file ledger appends `entry`; the GitHub
    /// ledger gives the deployment its final status.
    pub async fn finish(
        &self,
        record: &Record,
        entry: &LedgerEntry,
        target: &Target,
    ) -> Result<Option<u64>, LedgerFailure> {
        match self {
            Ledger::File(path) => {
                sluice_core::ledger::append(path, entry)?;
                Ok(None)
            }
            Ledger::GitHub(github) => Ok(Some(github.finish(record, commit_of(record)?, entry, target).await?)),
        }
    }

    /// What happened to a release of `app` in `environment`, oldest first:
    /// entries with the same commit (or, without one, the same version).
    pub async fn history(
        &self,
        app: &str,
        environment: &str,
        version: &str,
        commit: Option<&str>,
    ) -> Result<Vec<LedgerEntry>, LedgerFailure> {
        match self {
            Ledger::File(path) => {
                let mut entries = Vec::new();
                sluice_core::ledger::for_each_entry(path, |e| {
                    let same = match (commit, &e.commit) {
                        (Some(a), Some(b)) => a == b && e.version == version,
                        _ => e.version == version,
                    };
                    if e.app == app && e.environment == environment && same {
                        entries.push(e);
                    }
                })?;
                Ok(entries)
            }
            Ledger::GitHub(github) => {
                let commit = commit.ok_or_else(|| {
                    LedgerFailure::Input(format!(
                        "the github ledger finds releases by commit: pass --commit SHA for {version} (in GitHub Actions it defaults to $GITHUB_SHA)"
                    ))
                })?;
                Ok(github.history(app, environment, version, commit).await?)
            }
        }
    }

    /// Takes or renews the environment lease of `want.record_id` (one
    /// deployment per app and environment at a time). `Ok(None)`: this
    /// ledger keeps no lease; the GitHub ledger relies on the workflow's
    /// `concurrency` group for now.
    pub fn acquire_lease(&self, want: &Lease, now: Timestamp) -> Result<Option<LeaseState>, LedgerFailure> {
        match self {
            Ledger::File(path) => {
                let file = lease::path(path, &want.app, &want.environment);
                match lease::acquire(&file, want, now) {
                    Ok(acquired) => Ok(Some(LeaseState::Held(acquired))),
                    Err(LeaseError::Held { holder, .. }) => Ok(Some(LeaseState::HeldByOther(holder))),
                    Err(e) => Err(LedgerFailure::Lease(e)),
                }
            }
            Ledger::GitHub(_) => Ok(None),
        }
    }

    /// Gives up the lease `record_id` holds, if it holds one.
    pub fn release_lease(&self, app: &str, environment: &str, record_id: &str) -> Result<bool, LedgerFailure> {
        match self {
            Ledger::File(path) => {
                lease::release(&lease::path(path, app, environment), record_id).map_err(LedgerFailure::Lease)
            }
            Ledger::GitHub(_) => Ok(false),
        }
    }

    /// Where a person can see the environment's history, when it has a page.
    pub fn link(&self, environment: &str) -> Option<String> {
        match self {
            Ledger::File(_) => None,
            Ledger::GitHub(github) => Some(github.link(environment)),
        }
    }
}
