//! The deployment history, wherever it is kept: the JSON Lines file
//! (`sluice_core::ledger`) or GitHub Deployments (`GitHubLedger`, feature
//! `github`).
//!
//! The steps ask three things of it: a deployment starts (the gate admitted
//! it), a deployment ended (promoted, rolled back, reverted, failed), and
//! what happened to a release in an environment (for the gate's order and
//! soak checks). Nothing here decides anything.

use crate::ProviderError;
#[cfg(feature = "github")]
use crate::github::ledger::GitHubLedger;
use jiff::{SignedDuration, Timestamp};
use sluice_core::lease::{self, Acquired, Lease, LeaseError};
use sluice_core::ledger::{LedgerEntry, LedgerError};
use sluice_core::record::Record;
use std::path::PathBuf;

/// Where a deployment goes, as GitHub shows it (the file ledger keeps
/// neither).
#[derive(Clone, Debug, Default)]
pub struct Target {
    /// Link to the environment (`environment_url`).
    pub environment_url: Option<String>,
    /// The last environment of the promotion path.
    pub production: bool,
}

pub use Target as LedgerTarget;

/// A ledger of one of the kinds the config names (GitHub with the `github`
/// feature).
#[derive(Clone, Debug)]
pub enum Ledger {
    File(PathBuf),
    #[cfg(feature = "github")]
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

#[cfg(feature = "github")]
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
    #[cfg_attr(not(feature = "github"), allow(unused_variables))]
    pub async fn start(&self, record: &Record, target: &Target) -> Result<Option<u64>, LedgerFailure> {
        match self {
            Ledger::File(_) => Ok(None),
            #[cfg(feature = "github")]
            Ledger::GitHub(github) => match github.start(record, commit_of(record)?, target).await {
                Ok(id) => Ok(Some(id)),
                Err(e) => {
                    // The gate keeps nothing of a start that failed (it
                    // exits before saving the record): the lease it just
                    // took is given back, else the environment would wait
                    // for its expiry. Best effort: it expires anyway.
                    let why = "its start could not be recorded on GitHub";
                    let _ = github.branch().release_lease(&record.app, &record.environment, &record.id, why).await;
                    Err(e.into())
                }
            },
        }
    }

    /// A deployment ended: the file ledger appends `entry`; the GitHub
    /// ledger gives the deployment its final status.
    #[cfg_attr(not(feature = "github"), allow(unused_variables))]
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
            #[cfg(feature = "github")]
            Ledger::GitHub(github) => Ok(Some(github.finish(record, commit_of(record)?, entry, target).await?)),
        }
    }

    /// What happened to a release of `app` in `environment`, oldest first:
    /// entries with the same commit (or, without one, the same version).
    #[cfg_attr(not(feature = "github"), allow(unused_variables))]
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
            #[cfg(feature = "github")]
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
    /// deployment per app and environment at a time): the lease file beside
    /// the file ledger, or the lease file on the GitHub ledger branch
    /// (`github::lease`, which also returns the record's GitHub deployment
    /// when it has one). `grace` allows for other runners' clocks.
    #[cfg_attr(not(feature = "github"), allow(unused_variables))]
    pub async fn acquire_lease(
        &self,
        record: &Record,
        want: &Lease,
        _target: &Target,
        now: Timestamp,
        grace: SignedDuration,
    ) -> Result<(LeaseState, Option<u64>), LedgerFailure> {
        match self {
            Ledger::File(path) => {
                let file = lease::path(path, &want.app, &want.environment);
                match lease::acquire(&file, want, now) {
                    Ok(acquired) => Ok((LeaseState::Held(acquired), None)),
                    Err(LeaseError::Held { holder, .. }) => Ok((LeaseState::HeldByOther(holder), None)),
                    Err(e) => Err(LedgerFailure::Lease(e)),
                }
            }
            #[cfg(feature = "github")]
            Ledger::GitHub(github) => {
                // The ledger's start needs it: refused before anything is taken.
                commit_of(record)?;
                let taken = github.take_lease(record, want, now, grace).await?;
                let state = match taken.outcome {
                    Ok(acquired) => LeaseState::Held(acquired),
                    Err(holder) => LeaseState::HeldByOther(holder),
                };
                Ok((state, taken.deployment))
            }
        }
    }

    /// Gives up a lease just taken, because the deployment waits for `why`
    /// after all (the lease file is released, beside the file ledger or on
    /// the GitHub ledger branch).
    #[cfg_attr(not(feature = "github"), allow(unused_variables))]
    pub async fn withdraw_lease(
        &self,
        record: &Record,
        _github_deployment: Option<u64>,
        why: &str,
        _target: &Target,
    ) -> Result<(), LedgerFailure> {
        match self {
            Ledger::File(path) => {
                lease::release(&lease::path(path, &record.app, &record.environment), &record.id)
                    .map_err(LedgerFailure::Lease)?;
            }
            #[cfg(feature = "github")]
            Ledger::GitHub(github) => {
                github.withdraw_lease(record, why).await?;
            }
        }
        Ok(())
    }

    /// Gives up the lease `record_id` holds, if it holds one (the GitHub
    /// ledger's lease is freed with the deployment's final entry, in
    /// `finish`).
    pub fn release_lease(&self, app: &str, environment: &str, record_id: &str) -> Result<bool, LedgerFailure> {
        match self {
            Ledger::File(path) => {
                lease::release(&lease::path(path, app, environment), record_id).map_err(LedgerFailure::Lease)
            }
            #[cfg(feature = "github")]
            Ledger::GitHub(_) => Ok(false),
        }
    }

    /// Who holds the environment of `app` now, if anyone: the lease file
    /// beside the file ledger or on the GitHub ledger branch.
    #[cfg_attr(not(feature = "github"), allow(unused_variables))]
    pub async fn lease_holder(
        &self,
        app: &str,
        environment: &str,
        now: Timestamp,
        grace: SignedDuration,
    ) -> Result<Option<Lease>, LedgerFailure> {
        match self {
            Ledger::File(path) => {
                let held = lease::read(&lease::path(path, app, environment)).map_err(LedgerFailure::Lease)?;
                Ok(held.filter(|l| l.expires_at.checked_add(grace).unwrap_or(l.expires_at) > now))
            }
            #[cfg(feature = "github")]
            Ledger::GitHub(github) => Ok(github.lease_holder(app, environment, now, grace).await?),
        }
    }

    /// Frees the environment lease `holder` holds, deliberately (its run is
    /// dead), and closes that deployment with `entry` (abandoned, or rolled
    /// back when it had moved traffic): the file ledger releases the lease
    /// file and appends the entry; the GitHub ledger gives the holder's
    /// deployment its final status, writes the entry to its journal and
    /// frees the lease file on its branch. Returns whether the holder still
    /// held it.
    #[cfg_attr(not(feature = "github"), allow(unused_variables))]
    pub async fn free_lease(
        &self,
        holder: &Lease,
        entry: &LedgerEntry,
        target: &Target,
    ) -> Result<bool, LedgerFailure> {
        match self {
            Ledger::File(path) => {
                let freed = lease::release(&lease::path(path, &holder.app, &holder.environment), &holder.record_id)
                    .map_err(LedgerFailure::Lease)?;
                if freed {
                    sluice_core::ledger::append(path, entry)?;
                }
                Ok(freed)
            }
            #[cfg(feature = "github")]
            Ledger::GitHub(github) => Ok(github.free_lease(holder, entry, target).await?),
        }
    }

    /// Where a person can see the environment's history, when it has a page.
    #[cfg_attr(not(feature = "github"), allow(unused_variables))]
    pub fn link(&self, environment: &str) -> Option<String> {
        match self {
            Ledger::File(_) => None,
            #[cfg(feature = "github")]
            Ledger::GitHub(github) => Some(github.link(environment)),
        }
    }
}
