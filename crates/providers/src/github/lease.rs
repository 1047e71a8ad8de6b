//! The environment lease of the GitHub ledger: one small JSON file per app
//! and environment on the ledger branch (`lease/APP/ENVIRONMENT.json`,
//! [`super::branch`]), naming the deployment that holds the environment and
//! until when, or nobody.
//!
//! The file is only ever changed by a compare-and-swap: a write names the
//! blob `sha` it read, and GitHub refuses it with 409 when the file is no
//! longer at that `sha` (or with 422 when it was created meanwhile), changing
//! nothing (<https://docs.github.com/en/rest/repos/contents#create-or-update-file-contents>).
//! Taking the lease is: read the file; if another deployment holds it and
//! its lease has not expired, wait (nothing written); else write this
//! deployment into it on the `sha` read. Refused: read again and decide
//! again.
//!
//! Why exactly one holds, with no assumption about clocks or about GitHub
//! reading its own writes: of two gates that read the same `sha`, GitHub
//! accepts one write on it; the other's write names a `sha` that is no
//! longer the file's and is refused, whenever it lands, even a millisecond
//! later. A stale read can only cause a refused write (and another read),
//! never a second holder. Clocks decide only when an unexpired lease may be
//! taken over (its expiry plus a grace for other runners' clocks); the
//! takeover is a compare-and-swap too, and the run it was taken from finds
//! another holder at its next step.
//!
//! A step renews the lease only when less than half of the time it asks for
//! is left (so most steps only read, one conditional call); the end of the
//! deployment (its final ledger entry) frees it. Each write carries a value
//! of its own (`write`), so a writer whose answer was lost recognises its
//! own write when it reads again.

use super::branch::{Branch, File};
use super::ledger::GitHubLedger;
use crate::ProviderError;
use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};
use sluice_core::lease::{Acquired, Lease};
use sluice_core::record::Record;
use std::sync::atomic::{AtomicU64, Ordering};

/// Schema tag of a lease file on the ledger branch.
pub const SCHEMA: &str = "sluice.github-lease/v1";

/// What a lease file holds.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LeaseFile {
    pub schema: String,
    /// Who holds the environment; `None`: nobody.
    pub lease: Option<Lease>,
    /// Unique to the write that made this version of the file.
    pub write: String,
    /// How the last holder's lease ended (released, withdrawn, freed), for
    /// people reading the branch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ended: Option<String>,
}

/// The lease file of `app` in `environment`.
pub fn path(app: &str, environment: &str) -> String {
    format!("lease/{app}/{environment}.json")
}

/// Whether `lease` still counts at `now`: unexpired, with `grace` for the
/// clocks of other runners.
pub fn live(lease: &Lease, now: Timestamp, grace: SignedDuration) -> bool {
    lease.expires_at.checked_add(grace).unwrap_or(lease.expires_at) > now
}

/// What to do with the lease as it stands.
#[derive(Clone, Debug, PartialEq)]
pub enum Decision {
    /// Nothing to write: held by this deployment with enough time left.
    Keep,
    /// Write this deployment into the file; the outcome if accepted.
    Write(Box<(Lease, Acquired)>),
    /// Another deployment holds it.
    Wait(Box<Lease>),
}

/// Decides what taking the lease `want` means given what the file holds.
pub fn decide(held: Option<&Lease>, want: &Lease, now: Timestamp, grace: SignedDuration) -> Decision {
    match held {
        Some(mine) if mine.record_id == want.record_id => {
            // Held with at least half of the asked-for time left, and past
            // the grace: nobody may take it, nothing to write.
            let left = mine.expires_at.duration_since(now);
            if left >= want.expires_at.duration_since(now) / 2 && left > grace {
                return Decision::Keep;
            }
            let renewed = Lease { acquired_at: mine.acquired_at, ..want.clone() };
            Decision::Write(Box::new((renewed, Acquired::Renewed)))
        }
        Some(other) if live(other, now, grace) => Decision::Wait(Box::new(other.clone())),
        Some(expired) => Decision::Write(Box::new((want.clone(), Acquired::TookOver(expired.clone())))),
        None => Decision::Write(Box::new((want.clone(), Acquired::New))),
    }
}

/// What taking the lease did.
#[derive(Clone, Debug)]
pub struct Taken {
    /// This deployment's GitHub deployment, when it has one already.
    pub deployment: Option<u64>,
    /// `Ok`: held by this deployment; `Err`: held by another.
    pub outcome: Result<Acquired, Box<Lease>>,
}

/// A value no other write shares: the time, this process, and a counter.
fn unique(record_id: &str) -> String {
    static SERIAL: AtomicU64 = AtomicU64::new(0);
    let now = Timestamp::now();
    format!("{record_id}/{}/{}/{}", now.as_nanosecond(), std::process::id(), SERIAL.fetch_add(1, Ordering::Relaxed))
}

/// Attempts at a compare-and-swap before giving up (each refusal means
/// another writer went first; they are few per environment).
const ATTEMPTS: usize = 20;

fn damaged(path: &str, e: &serde_json::Error) -> ProviderError {
    ProviderError {
        provider: "github",
        operation: format!("read the lease {path} on branch {}", super::branch::BRANCH),
        message: format!(
            "the lease file is damaged ({e}); if no deployment runs in this environment, delete it from branch {}",
            super::branch::BRANCH
        ),
        transient: false,
        attempts: 1,
    }
}

fn exhausted(path: &str) -> ProviderError {
    ProviderError {
        provider: "github",
        operation: format!("write the lease {path} on branch {}", super::branch::BRANCH),
        message: format!("the lease file changed under every one of {ATTEMPTS} attempts"),
        transient: true,
        attempts: ATTEMPTS as u32,
    }
}

impl Branch {
    /// The lease file at `path` and what it says (`None`: no file).
    async fn lease_file(&self, path: &str) -> Result<Option<(File, LeaseFile)>, ProviderError> {
        let Some(file) = self.read(path).await? else { return Ok(None) };
        let parsed: LeaseFile = serde_json::from_str(&file.text).map_err(|e| damaged(path, &e))?;
        Ok(Some((file, parsed)))
    }

    /// Writes `lease` (or nobody) into the file at `sha`.
    async fn put_lease(
        &self,
        path: &str,
        sha: Option<&str>,
        lease: Option<Lease>,
        ended: Option<String>,
        write: &str,
        message: &str,
    ) -> Result<bool, ProviderError> {
        let file = LeaseFile { schema: SCHEMA.into(), lease, write: write.to_owned(), ended };
        let text = serde_json::to_string_pretty(&file).unwrap_or_default() + "\n";
        Ok(self.write(path, &text, sha, message).await?.is_ok())
    }

    /// Takes or renews the lease `want` (as the module says).
    pub async fn take_lease(
        &self,
        want: &Lease,
        now: Timestamp,
        grace: SignedDuration,
    ) -> Result<Result<Acquired, Box<Lease>>, ProviderError> {
        let path = path(&want.app, &want.environment);
        let write = unique(&want.record_id);
        let mut intended = None;
        for _ in 0..ATTEMPTS {
            let current = self.lease_file(&path).await?;
            if let (Some((_, file)), Some(outcome)) = (&current, &intended)
                && file.write == write
            {
                // Our write went through; its answer was lost.
                return Ok(Ok(Clone::clone(outcome)));
            }
            let held = current.as_ref().and_then(|(_, f)| f.lease.as_ref());
            let (lease, outcome) = match decide(held, want, now, grace) {
                Decision::Keep => return Ok(Ok(Acquired::Renewed)),
                Decision::Wait(holder) => return Ok(Err(holder)),
                Decision::Write(chosen) => *chosen,
            };
            let message = match &outcome {
                Acquired::New => format!("lease: {} {} takes {}", want.app, want.version, want.environment),
                Acquired::Renewed => format!("lease: {} {} renews {}", want.app, want.version, want.environment),
                Acquired::TookOver(old) => format!(
                    "lease: {} {} takes {} over from {} (expired)",
                    want.app, want.version, want.environment, old.record_id
                ),
            };
            let sha = current.as_ref().map(|(f, _)| f.sha.as_str());
            intended = Some(outcome.clone());
            if self.put_lease(&path, sha, Some(lease), None, &write, &message).await? {
                return Ok(Ok(outcome));
            }
        }
        Err(exhausted(&path))
    }

    /// Frees the lease `record_id` holds, saying `why`; returns whether it
    /// held it (a lease held by another is left alone).
    pub async fn release_lease(
        &self,
        app: &str,
        environment: &str,
        record_id: &str,
        why: &str,
    ) -> Result<bool, ProviderError> {
        let path = path(app, environment);
        let write = unique(record_id);
        let mut wrote = false;
        // What this step read of the lease (taking or renewing it) is tried
        // first: a stale `sha` is refused, then the file is read.
        let mut known = self
            .known(&path)
            .flatten()
            .and_then(|f| Some((f.clone(), serde_json::from_str::<LeaseFile>(&f.text).ok()?)));
        for _ in 0..ATTEMPTS {
            let current = match known.take() {
                Some(known) => Some(known),
                None => self.lease_file(&path).await?,
            };
            let Some((file, lease)) = current else { return Ok(false) };
            if wrote && lease.write == write {
                return Ok(true);
            }
            if lease.lease.as_ref().is_none_or(|l| l.record_id != record_id) {
                return Ok(false);
            }
            let ended = format!("{record_id}: {why}");
            let message = format!("lease: {app} {environment} freed ({why})");
            wrote = true;
            if self.put_lease(&path, Some(&file.sha), None, Some(ended), &write, &message).await? {
                return Ok(true);
            }
        }
        Err(exhausted(&path))
    }

    /// Who holds the environment now, if anyone (one read).
    pub async fn lease_holder(
        &self,
        app: &str,
        environment: &str,
        now: Timestamp,
        grace: SignedDuration,
    ) -> Result<Option<Lease>, ProviderError> {
        Ok(self.lease_in_file(app, environment).await?.filter(|l| live(l, now, grace)))
    }

    /// The lease the file names, expired or not (one read).
    pub async fn lease_in_file(&self, app: &str, environment: &str) -> Result<Option<Lease>, ProviderError> {
        Ok(self.lease_file(&path(app, environment)).await?.and_then(|(_, f)| f.lease))
    }
}

impl GitHubLedger {
    /// Takes or renews the environment lease for `record` until
    /// `want.expires_at`, as the module says. `grace` allows for other
    /// runners' clocks.
    pub async fn take_lease(
        &self,
        record: &Record,
        want: &Lease,
        now: Timestamp,
        grace: SignedDuration,
    ) -> Result<Taken, ProviderError> {
        let outcome = self.branch().take_lease(want, now, grace).await?;
        Ok(Taken { deployment: record.github_deployment, outcome })
    }

    /// Gives up the lease `record` holds, because it waits for `why` after
    /// all.
    pub async fn withdraw_lease(&self, record: &Record, why: &str) -> Result<bool, ProviderError> {
        self.branch().release_lease(&record.app, &record.environment, &record.id, &format!("withdrawn: {why}")).await
    }

    /// The unexpired lease of `app` in `environment`, if any.
    pub async fn lease_holder(
        &self,
        app: &str,
        environment: &str,
        now: Timestamp,
        grace: SignedDuration,
    ) -> Result<Option<Lease>, ProviderError> {
        self.branch().lease_holder(app, environment, now, grace).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_core::lease::LEASE_SCHEMA;

    fn t(s: &str) -> Timestamp {
        s.parse().expect("time")
    }

    fn lease(record: &str, acquired: &str, until: &str) -> Lease {
        Lease {
            schema: LEASE_SCHEMA.into(),
            app: "shop".into(),
            environment: "dev".into(),
            record_id: record.into(),
            version: "v2".into(),
            holder: "alice".into(),
            acquired_at: t(acquired),
            expires_at: t(until),
        }
    }

    #[test]
    fn the_decision_follows_who_holds_it_and_until_when() {
        let now = t("2026-11-23T10:00:00Z");
        let grace = SignedDuration::from_secs(5);
        let want = lease("mine", "2026-11-23T10:00:00Z", "2026-11-23T10:30:00Z");
        assert_eq!(decide(None, &want, now, grace), Decision::Write(Box::new((want.clone(), Acquired::New))));
        // Mine with more than half left: nothing to write.
        let held = lease("mine", "2026-11-23T09:50:00Z", "2026-11-23T10:20:00Z");
        assert_eq!(decide(Some(&held), &want, now, grace), Decision::Keep);
        // Mine with less than half left: renewed, keeping when it was taken.
        let held = lease("mine", "2026-11-23T09:40:00Z", "2026-11-23T10:10:00Z");
        let renewed = Lease { acquired_at: t("2026-11-23T09:40:00Z"), ..want.clone() };
        assert_eq!(decide(Some(&held), &want, now, grace), Decision::Write(Box::new((renewed, Acquired::Renewed))));
        // Another's, expired 3 s ago: within the grace it still holds.
        let other = lease("other", "2026-11-23T09:00:00Z", "2026-11-23T09:59:57Z");
        assert_eq!(decide(Some(&other), &want, now, grace), Decision::Wait(Box::new(other.clone())));
        // Past the grace: taken over.
        let later = now + SignedDuration::from_secs(10);
        assert_eq!(
            decide(Some(&other), &want, later, grace),
            Decision::Write(Box::new((want.clone(), Acquired::TookOver(other))))
        );
    }

    #[test]
    fn a_lease_file_reads_back() {
        let file = LeaseFile {
            schema: SCHEMA.into(),
            lease: Some(lease("r1", "2026-11-23T10:00:00Z", "2026-11-23T10:30:00Z")),
            write: unique("r1"),
            ended: None,
        };
        let text = serde_json::to_string_pretty(&file).expect("json");
        assert_eq!(serde_json::from_str::<LeaseFile>(&text).expect("parse"), file);
        assert_ne!(unique("r1"), unique("r1"));
    }
}
