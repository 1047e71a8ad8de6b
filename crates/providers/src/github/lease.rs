//! The environment lease of the GitHub ledger: the deployment that carries
//! an unexpired sluice `in_progress` lease status holds the environment.
//!
//! A lease status is an `in_progress` deployment status whose description
//! says `sluice: lease taken until <time> for <app> <version> (<strategy>)`
//! (a new claim) or `sluice: lease held until <time> …` (a renewal of a
//! claim that has not expired). Its `log_url` is the workflow run that holds
//! it; the deployment's payload names the actor. Descriptions stay under
//! GitHub's 140 characters: the part that matters comes first.
//!
//! The protocol, for two gates started together:
//! 1. post the claim on this deployment's own deployment (created, or the
//!    one the job or an earlier attempt of this record made);
//! 2. list the environment's newest deployments and their statuses;
//! 3. among the unexpired claims of the same app, the one whose claim status
//!    was created first (GitHub's status ids grow in creation order) holds
//!    the environment;
//! 4. a claim that lost is withdrawn at once with a `queued` status
//!    (`sluice: waits: …`), naming the holder; the step says who holds it.
//!
//! Why at most one holds: a claim is read by everyone who lists after it
//! was created. Of two claims, the later one lists after both exist, sees
//! the earlier one and loses; the earlier one wins only if it sees no
//! earlier live claim. This needs read-after-write from GitHub's API and
//! clocks that agree within the grace given to expiries.
//!
//! A step renews the lease by posting a `held` status only when less than
//! half of the time it asks for is left (so most steps write nothing).
//! A renewal keeps its place (the id of its last `taken` status) only while
//! its lease has more than the grace left; later it claims afresh, as a
//! takeover does. Others treat a claim as expired only after its time plus
//! the grace, so a holder renewing just in time is never overtaken.
//! `queued` was chosen for withdrawn claims and expired holders because the
//! ledger's history ignores it: neither is a rollback or a failure.
//!
//! Only the newest [`WINDOW`] deployments of the environment are searched;
//! a waiting record reuses its deployment, so the holder drops out of the
//! window only after that many other deployments started after it.

use super::client::encode;
use super::ledger::{GitHubLedger, PREFIX, Target, truncate};
use super::types::{Deployment, DeploymentStatus};
use crate::ProviderError;
use jiff::{SignedDuration, Timestamp};
use sluice_core::lease::{Acquired, LEASE_SCHEMA, Lease};
use sluice_core::record::Record;

/// How many of the environment's newest deployments are searched for the
/// holder.
pub const WINDOW: usize = 50;

const TAKEN: &str = "lease taken until ";
const HELD: &str = "lease held until ";
/// A withdrawn claim (`queued`).
pub const WAITS: &str = "waits: ";
const TIME: &str = "%Y-%m-%dT%H:%M:%SZ";

/// What a lease status says.
#[derive(Clone, Debug, PartialEq)]
pub struct Note {
    /// A new claim (`taken`) rather than a renewal (`held`).
    pub taken: bool,
    pub until: Timestamp,
    pub app: String,
    pub version: String,
}

/// The description of a lease status.
pub fn note(taken: bool, until: Timestamp, app: &str, version: &str, strategy: &str) -> String {
    // Whole seconds, rounded up, so the lease never ends before it was asked to.
    let until = until.checked_add(SignedDuration::from_nanos(999_999_999)).unwrap_or(until);
    let kind = if taken { TAKEN } else { HELD };
    truncate(&format!("{PREFIX}{kind}{} for {app} {version} ({strategy})", until.strftime(TIME)))
}

/// Reads a lease status's description; `None` for any other description.
pub fn parse_note(description: &str) -> Option<Note> {
    let rest = description.strip_prefix(PREFIX)?;
    let (taken, rest) = match (rest.strip_prefix(TAKEN), rest.strip_prefix(HELD)) {
        (Some(rest), _) => (true, rest),
        (None, Some(rest)) => (false, rest),
        (None, None) => return None,
    };
    let (time, rest) = rest.split_once(" for ")?;
    let until: Timestamp = time.parse().ok()?;
    let mut words = rest.split(' ');
    let app = words.next()?.to_owned();
    let version = words.next().unwrap_or("").to_owned();
    Some(Note { taken, until, app, version })
}

/// One deployment's claim on the environment.
#[derive(Clone, Debug, PartialEq)]
pub struct Claim {
    pub deployment: u64,
    /// The id of the status that made the claim: the lowest live one holds.
    pub key: u64,
    pub until: Timestamp,
    /// Who holds it, as the file ledger's lease says it.
    pub lease: Lease,
}

/// The run of lease statuses a deployment's latest sluice statuses make
/// (newest first): the status that made the claim, the newest, and its note.
fn run_of<'a>(
    statuses: &'a [DeploymentStatus],
    app: &str,
) -> Option<(&'a DeploymentStatus, &'a DeploymentStatus, Note)> {
    let ours = statuses.iter().filter(|s| s.description.as_deref().is_some_and(|d| d.starts_with(PREFIX)));
    let mut run = ours.map_while(|s| {
        let note = parse_note(s.description.as_deref().unwrap_or_default())?;
        (s.state == "in_progress" && note.app == app).then_some((s, note))
    });
    let (newest, newest_note) = run.next()?;
    let mut key = newest;
    if !newest_note.taken {
        for (status, note) in run {
            key = status;
            if note.taken {
                break;
            }
        }
    }
    Some((key, newest, newest_note))
}

/// The claim `deployment` makes for `app`, from its statuses (newest first):
/// its latest sluice status is a lease status. Expired or not.
pub fn claim(deployment: &Deployment, statuses: &[DeploymentStatus], app: &str, environment: &str) -> Option<Claim> {
    let (key, newest, newest_note) = run_of(statuses, app)?;
    let sluice = deployment.sluice();
    let text = |k: &str| sluice.and_then(|s| s.get(k)).and_then(|v| v.as_str()).map(str::to_owned);
    let run_url = newest.log_url.clone().or_else(|| newest.target_url.clone()).filter(|u| !u.is_empty());
    let holder = match (text("triggered_by"), run_url) {
        (Some(actor), Some(run)) => format!("{actor}, {run}"),
        (Some(actor), None) => actor,
        (None, Some(run)) => run,
        (None, None) => deployment.creator.as_ref().map(|c| c.login.clone()).unwrap_or_else(|| "someone".into()),
    };
    Some(Claim {
        deployment: deployment.id,
        key: key.id,
        until: newest_note.until,
        lease: Lease {
            schema: LEASE_SCHEMA.into(),
            app: app.to_owned(),
            environment: environment.to_owned(),
            record_id: text("id").unwrap_or_else(|| format!("github-deployment-{}", deployment.id)),
            version: newest_note.version,
            holder: format!("GitHub deployment {}, {holder}", deployment.id),
            acquired_at: key.created_at,
            expires_at: newest_note.until,
        },
    })
}

/// Whether a claim still counts at `now`: unexpired, with `grace` for the
/// clocks of other runners.
pub fn live(claim: &Claim, now: Timestamp, grace: SignedDuration) -> bool {
    claim.until.checked_add(grace).unwrap_or(claim.until) > now
}

/// The holder among `claims`: the live claim made first. `mine` counts as
/// live (it was just made or renewed).
pub fn holder(claims: &[Claim], mine: u64, now: Timestamp, grace: SignedDuration) -> Option<&Claim> {
    claims.iter().filter(|c| c.deployment == mine || live(c, now, grace)).min_by_key(|c| c.key)
}

/// What taking the lease did.
#[derive(Clone, Debug)]
pub struct Taken {
    /// This deployment's GitHub deployment.
    pub deployment: u64,
    /// `Ok`: held by this deployment; `Err`: held by another.
    pub outcome: Result<Acquired, Box<Lease>>,
}

impl GitHubLedger {
    /// Takes or renews the environment lease for `record` until
    /// `want.expires_at` on its deployment (made now when the record has
    /// none), as the module says. `grace` allows for other runners' clocks.
    pub async fn take_lease(
        &self,
        record: &Record,
        commit: &str,
        target: &Target,
        want: &Lease,
        now: Timestamp,
        grace: SignedDuration,
    ) -> Result<Taken, ProviderError> {
        let id = match record.github_deployment {
            Some(id) => id,
            None => self.find_or_create(record, commit, target).await?,
        };
        let env = &record.environment;
        let mine = self.statuses(id).await?;
        let mine_before = run_of(&mine, &record.app).map(|(_, _, note)| note.until);
        // Held with at least half of the asked-for time left: nobody can
        // have taken it (they respect it and the grace), nothing to write.
        if let Some(until) = mine_before
            && until.duration_since(now) >= want.expires_at.duration_since(now) / 2
            && until > now.checked_add(grace).unwrap_or(now)
        {
            return Ok(Taken { deployment: id, outcome: Ok(Acquired::Renewed) });
        }
        // A renewal keeps its place only with time to spare.
        let renew = mine_before.is_some_and(|until| until > now.checked_add(grace).unwrap_or(now));
        let text = note(!renew, want.expires_at, &record.app, &record.version, record.strategy.name());
        self.status(id, "in_progress", &text, target).await?;

        let claims = self.claims(&record.app, env).await?;
        let Some(holder) = holder(&claims, id, now, grace) else {
            return Err(ProviderError {
                provider: "github",
                operation: format!("take the lease of {env}"),
                message: format!(
                    "deployment {id} is not among the {WINDOW} newest of {env} with the lease status just posted; GitHub did not read back what was written"
                ),
                transient: true,
                attempts: 1,
            });
        };
        if holder.deployment == id {
            let expired: Vec<&Claim> = claims.iter().filter(|c| c.deployment != id && !live(c, now, grace)).collect();
            for old in &expired {
                // Withdrawn, so it is not reported again; a dead run that
                // comes back finds its lease gone.
                let text = format!("{PREFIX}{WAITS}lease expired, taken over by deployment {id}");
                self.status(old.deployment, "queued", &text, target).await?;
            }
            let outcome = match (renew, expired.first()) {
                (true, _) => Acquired::Renewed,
                (false, Some(old)) => Acquired::TookOver(old.lease.clone()),
                (false, None) if mine_before.is_some() => Acquired::Renewed,
                (false, None) => Acquired::New,
            };
            return Ok(Taken { deployment: id, outcome: Ok(outcome) });
        }
        let text = format!("{PREFIX}{WAITS}{env} is held by deployment {}", holder.deployment);
        self.status(id, "queued", &text, target).await?;
        Ok(Taken { deployment: id, outcome: Err(Box::new(holder.lease.clone())) })
    }

    /// Withdraws the claim of deployment `id` (it waits for `why`); the
    /// final status of [`GitHubLedger::finish`] releases a lease too.
    pub async fn withdraw_lease(&self, id: u64, why: &str, target: &Target) -> Result<(), ProviderError> {
        self.status(id, "queued", &format!("{PREFIX}{WAITS}{why}"), target).await
    }

    /// The live claim that holds the environment for `app`, if any.
    pub async fn lease_holder(
        &self,
        app: &str,
        environment: &str,
        now: Timestamp,
        grace: SignedDuration,
    ) -> Result<Option<Claim>, ProviderError> {
        let claims = self.claims(app, environment).await?;
        Ok(claims.iter().filter(|c| live(c, now, grace)).min_by_key(|c| c.key).cloned())
    }

    /// Every claim among the environment's newest deployments.
    async fn claims(&self, app: &str, environment: &str) -> Result<Vec<Claim>, ProviderError> {
        let deployments: Vec<Deployment> = self
            .github
            .get(
                &format!("list the deployments to {environment}"),
                "deployments: read",
                &format!("/deployments?environment={}&per_page={WINDOW}", encode(environment)),
            )
            .await?;
        let mut claims = Vec::new();
        for d in &deployments {
            // Another app's deployment is none of this lease's business.
            if d.sluice().and_then(|s| s.get("app")).and_then(|a| a.as_str()).is_some_and(|a| a != app) {
                continue;
            }
            let statuses = self.statuses(d.id).await?;
            claims.extend(claim(d, &statuses, app, environment));
        }
        Ok(claims)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn t(s: &str) -> Timestamp {
        s.parse().expect("time")
    }

    fn deployment(id: u64, actor: &str) -> Deployment {
        serde_json::from_value(json!({
            "id": id, "sha": "a1b2c3", "ref": "a1b2c3", "environment": "dev",
            "payload": { "sluice": { "id": format!("shop-dev-{id}"), "app": "shop", "triggered_by": actor } },
            "created_at": "2026-11-23T10:00:00Z",
        }))
        .expect("deployment")
    }

    fn status(id: u64, state: &str, description: &str) -> DeploymentStatus {
        serde_json::from_value(json!({
            "id": id, "state": state, "description": description,
            "log_url": format!("https://github.com/acme/shop/actions/runs/{id}"),
            "created_at": "2026-11-23T10:00:00Z",
        }))
        .expect("status")
    }

    #[test]
    fn notes_fit_and_read_back() {
        let until = t("2026-11-23T10:30:00.2Z");
        let text = note(true, until, "shop", "v2.1", "canary");
        assert_eq!(text, "sluice: lease taken until 2026-11-23T10:30:01Z for shop v2.1 (canary)");
        let read = parse_note(&text).expect("note");
        assert_eq!(
            read,
            Note { taken: true, until: t("2026-11-23T10:30:01Z"), app: "shop".into(), version: "v2.1".into() }
        );
        let long = note(false, until, "shop", &"v".repeat(200), "canary");
        assert_eq!(long.chars().count(), 140);
        assert_eq!(parse_note(&long).expect("still a note").until, t("2026-11-23T10:30:01Z"));
        assert_eq!(parse_note("sluice: deploying v2 (canary)"), None);
    }

    #[test]
    fn a_claim_keeps_its_place_through_renewals_and_ends_with_another_status() {
        let d = deployment(7, "alice");
        let renewed = [
            status(30, "in_progress", "sluice: lease held until 2026-11-23T10:40:00Z for shop v2 (canary)"),
            status(20, "success", "Deployment finished"), // GitHub's own, not sluice's
            status(12, "in_progress", "sluice: lease held until 2026-11-23T10:30:00Z for shop v2 (canary)"),
            status(10, "in_progress", "sluice: lease taken until 2026-11-23T10:20:00Z for shop v2 (canary)"),
            status(8, "in_progress", "sluice: lease taken until 2026-11-23T10:10:00Z for shop v2 (canary)"),
        ];
        let c = claim(&d, &renewed, "shop", "dev").expect("claim");
        assert_eq!((c.key, c.until), (10, t("2026-11-23T10:40:00Z")));
        assert_eq!(c.lease.holder, "GitHub deployment 7, alice, https://github.com/acme/shop/actions/runs/30");
        assert_eq!(c.lease.record_id, "shop-dev-7");
        let ended = [status(40, "success", "sluice: v2 promoted, stable in dev"), renewed[0].clone()];
        assert_eq!(claim(&d, &ended, "shop", "dev"), None);
        let waiting = [status(40, "queued", "sluice: waits: dev is held by deployment 3"), renewed[0].clone()];
        assert_eq!(claim(&d, &waiting, "shop", "dev"), None);
        assert_eq!(claim(&d, &renewed, "other", "dev"), None, "another app's lease");
    }

    #[test]
    fn the_first_live_claim_holds() {
        let now = t("2026-11-23T10:00:00Z");
        let grace = SignedDuration::from_secs(5);
        let c = |deployment: u64, key: u64, until: &str| Claim {
            deployment,
            key,
            until: t(until),
            lease: claim(
                &deployment_of(deployment),
                &[status(key, "in_progress", &format!("sluice: lease taken until {until} for shop v2 (x)"))],
                "shop",
                "dev",
            )
            .expect("claim")
            .lease,
        };
        fn deployment_of(id: u64) -> Deployment {
            deployment(id, "bob")
        }
        let claims =
            [c(1, 50, "2026-11-23T09:59:57Z"), c(2, 60, "2026-11-23T10:05:00Z"), c(3, 55, "2026-11-23T10:05:00Z")];
        // 1 expired 3 s ago, within the grace: it still holds.
        assert_eq!(holder(&claims, 3, now, grace).map(|c| c.deployment), Some(1));
        let later = now + SignedDuration::from_secs(10);
        assert_eq!(holder(&claims, 2, later, grace).map(|c| c.deployment), Some(3), "the lower status id");
        assert_eq!(holder(&claims[..1], 9, later, grace), None);
    }
}
