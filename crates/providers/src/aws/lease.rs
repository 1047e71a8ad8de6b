//! The environment lease on an ALB: a tag on the listener (or rule) the
//! router drives, so that two sluice runs cannot shift the same listener at
//! once even when they keep different ledgers.
//!
//! Each deployment writes its own tag, `sluice:lease:<hash of record id>`,
//! whose value says when it claimed the listener, until when, and who it is
//! (tag values allow letters, digits, spaces and `_ . : / = + - @`). Tags
//! have no order of their own, so a claim is settled like this:
//! 1. read the lease tags: an unexpired claim of another deployment means
//!    the listener is held, and nothing is written;
//! 2. otherwise write this deployment's tag with `acquired` = now, wait
//!    [`SETTLE`], and read all the lease tags again;
//! 3. among the unexpired claims, the lowest (`acquired`, key) holds the
//!    listener; a claim that lost removes its tag and the step waits.
//!
//! Renewals keep `acquired` while the lease has more than the grace left,
//! and are not settled again: others respect an unexpired claim. The winner
//! removes the tags of expired claims (a dead run that comes back finds its
//! claim gone and has to claim again, after the current holder).
//!
//! The guarantee, and what it assumes: one holder at a time as long as a tag
//! written is visible to every `DescribeTags` within [`SETTLE`], and the
//! runners' clocks differ by less than [`SETTLE`] (claims compare the
//! writers' clocks) and by less than the grace given to expiries. Of two
//! claims written more than [`SETTLE`] apart, the later one sees the earlier
//! one and loses; of two written closer together, both see both and agree.

use super::alb::AlbRouter;
use super::sdk_error;
use crate::ProviderError;
use aws_sdk_elasticloadbalancingv2::types::Tag;
use jiff::{SignedDuration, Timestamp};
use sluice_core::lease::{Acquired, LEASE_SCHEMA, Lease};
use std::time::Duration;

const PROVIDER: &str = "alb lease";
/// The prefix of the lease tags' keys.
pub const TAG_PREFIX: &str = "sluice:lease:";
/// How long a new claim waits before it reads the others' claims.
pub const SETTLE: Duration = Duration::from_secs(2);

/// A lease tag as read.
#[derive(Clone, Debug, PartialEq)]
pub struct Claim {
    pub key: String,
    pub acquired: Timestamp,
    pub lease: Lease,
}

/// The tag key of a deployment's claim (record ids can be longer than a
/// key may be).
pub fn key(record_id: &str) -> String {
    let hash =
        record_id.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3));
    format!("{TAG_PREFIX}{hash:016x}")
}

/// Keeps what a tag value may hold; anything else becomes `_`.
fn clean(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_alphanumeric() || " _.:/=+-@".contains(c) { c } else { '_' })
        .collect::<String>()
        .replace(' ', "_")
}

/// The value of a claim's tag (at most 256 characters).
pub fn value(lease: &Lease, acquired: Timestamp) -> String {
    let text = format!(
        "acquired={} until={} id={} release={} by={}",
        acquired.strftime("%Y-%m-%dT%H:%M:%S%.3fZ"),
        lease.expires_at.strftime("%Y-%m-%dT%H:%M:%S%.3fZ"),
        clean(&lease.record_id),
        clean(&lease.version),
        clean(&lease.holder)
    );
    text.chars().take(256).collect()
}

/// Reads a lease tag; `None` for a tag that is not one, or is damaged
/// (which then counts as no claim).
pub fn parse(key: &str, value: &str, app: &str, environment: &str) -> Option<Claim> {
    if !key.starts_with(TAG_PREFIX) {
        return None;
    }
    let field =
        |name: &str| value.split(' ').find_map(|part| part.strip_prefix(name).and_then(|rest| rest.strip_prefix('=')));
    let acquired: Timestamp = field("acquired")?.parse().ok()?;
    let until: Timestamp = field("until")?.parse().ok()?;
    Some(Claim {
        key: key.to_owned(),
        acquired,
        lease: Lease {
            schema: LEASE_SCHEMA.into(),
            app: app.to_owned(),
            environment: environment.to_owned(),
            record_id: field("id").unwrap_or("unknown").to_owned(),
            version: field("release").unwrap_or("unknown").to_owned(),
            holder: field("by").unwrap_or("someone").replace("__", ", ").replace('_', " "),
            acquired_at: acquired,
            expires_at: until,
        },
    })
}

fn live(claim: &Claim, now: Timestamp, grace: SignedDuration) -> bool {
    claim.lease.expires_at.checked_add(grace).unwrap_or(claim.lease.expires_at) > now
}

/// The holder among `claims`: the live claim with the lowest (`acquired`,
/// key); `mine` counts as live.
pub fn holder<'a>(claims: &'a [Claim], mine: &str, now: Timestamp, grace: SignedDuration) -> Option<&'a Claim> {
    claims
        .iter()
        .filter(|c| c.key == mine || live(c, now, grace))
        .min_by(|a, b| (a.acquired, &a.key).cmp(&(b.acquired, &b.key)))
}

impl AlbRouter {
    /// Takes or renews the listener's lease for `want` (see the module).
    /// `Err(holder)` inside: another deployment holds it.
    pub async fn take_lease(
        &self,
        want: &Lease,
        grace: SignedDuration,
        settle: Duration,
    ) -> Result<Result<Acquired, Box<Lease>>, ProviderError> {
        let mine = key(&want.record_id);
        let now = Timestamp::now();
        let claims = self.lease_claims(want).await?;
        let before = claims.iter().find(|c| c.key == mine).cloned();
        let others_live = claims.iter().filter(|c| c.key != mine && live(c, now, grace)).min_by_key(|c| c.acquired);
        match (&before, others_live) {
            // Still held with time to spare: extend it, in place.
            (Some(held), _) if held.lease.expires_at > now.checked_add(grace).unwrap_or(now) => {
                self.write_lease_tag(&mine, &value(want, held.acquired)).await?;
                return Ok(Ok(Acquired::Renewed));
            }
            (_, Some(other)) => {
                if before.is_some() {
                    self.remove_lease_tags(vec![mine]).await?;
                }
                return Ok(Err(Box::new(other.lease.clone())));
            }
            _ => {}
        }
        let acquired = Timestamp::now();
        self.write_lease_tag(&mine, &value(want, acquired)).await?;
        tokio::time::sleep(settle).await;
        let now = Timestamp::now();
        let claims = self.lease_claims(want).await?;
        let winner = holder(&claims, &mine, now, grace).cloned();
        match winner {
            Some(w) if w.key != mine => {
                self.remove_lease_tags(vec![mine]).await?;
                Ok(Err(Box::new(w.lease)))
            }
            Some(_) => {
                let expired: Vec<&Claim> = claims.iter().filter(|c| c.key != mine && !live(c, now, grace)).collect();
                if !expired.is_empty() {
                    self.remove_lease_tags(expired.iter().map(|c| c.key.clone()).collect()).await?;
                }
                Ok(Ok(match (before, expired.first()) {
                    (Some(_), _) => Acquired::Renewed,
                    (None, Some(old)) => Acquired::TookOver(old.lease.clone()),
                    (None, None) => Acquired::New,
                }))
            }
            None => Err(ProviderError {
                provider: PROVIDER,
                operation: "take the listener's lease".into(),
                message: format!(
                    "the lease tag written on {} was not read back; the listener's tags could not be confirmed",
                    self.resource().arn()
                ),
                transient: true,
                attempts: 1,
            }),
        }
    }

    /// Removes the claim of `record_id`, if it has one. Returns whether it
    /// had.
    pub async fn release_lease(&self, app: &str, environment: &str, record_id: &str) -> Result<bool, ProviderError> {
        let mine = key(record_id);
        let claims = self.claims(app, environment).await?;
        if claims.iter().any(|c| c.key == mine) {
            self.remove_lease_tags(vec![mine]).await?;
            return Ok(true);
        }
        Ok(false)
    }

    /// Every lease tag on the resource.
    pub async fn lease_claims(&self, want: &Lease) -> Result<Vec<Claim>, ProviderError> {
        self.claims(&want.app, &want.environment).await
    }

    /// Every lease tag on the resource of `app` in `environment`.
    async fn claims(&self, app: &str, environment: &str) -> Result<Vec<Claim>, ProviderError> {
        let operation = "read the listener's lease tags";
        let client = self.client().await?;
        let tags = client
            .describe_tags()
            .resource_arns(self.resource().arn())
            .send()
            .await
            .map_err(|e| sdk_error(PROVIDER, operation, e))?;
        Ok(tags
            .tag_descriptions()
            .iter()
            .flat_map(|d| d.tags())
            .filter_map(|t| parse(t.key()?, t.value().unwrap_or(""), app, environment))
            .collect())
    }

    async fn write_lease_tag(&self, key: &str, value: &str) -> Result<(), ProviderError> {
        let client = self.client().await?;
        client
            .add_tags()
            .resource_arns(self.resource().arn())
            .tags(Tag::builder().key(key).value(value).build())
            .send()
            .await
            .map_err(|e| sdk_error(PROVIDER, "write the listener's lease tag", e))?;
        Ok(())
    }

    async fn remove_lease_tags(&self, keys: Vec<String>) -> Result<(), ProviderError> {
        let client = self.client().await?;
        client
            .remove_tags()
            .resource_arns(self.resource().arn())
            .set_tag_keys(Some(keys))
            .send()
            .await
            .map_err(|e| sdk_error(PROVIDER, "remove lease tags from the listener", e))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lease(id: &str, until: &str) -> Lease {
        Lease {
            schema: LEASE_SCHEMA.into(),
            app: "shop".into(),
            environment: "dev".into(),
            record_id: id.into(),
            version: "v2".into(),
            holder: "alice, https://github.com/acme/shop/actions/runs/7".into(),
            acquired_at: until.parse().expect("time"),
            expires_at: until.parse().expect("time"),
        }
    }

    #[test]
    fn a_claim_reads_back_from_its_tag() {
        let want = lease("shop-dev-v2-20261123T100000Z-ab12", "2026-11-23T10:30:00Z");
        let acquired: Timestamp = "2026-11-23T10:00:00.123Z".parse().expect("time");
        let text = value(&want, acquired);
        assert!(text.chars().all(|c| c.is_alphanumeric() || " _.:/=+-@".contains(c)), "{text}");
        let claim = parse(&key(&want.record_id), &text, "shop", "dev").expect("claim");
        assert_eq!(claim.acquired, acquired);
        assert_eq!(claim.lease.expires_at, want.expires_at);
        assert_eq!(claim.lease.record_id, want.record_id);
        assert_eq!(claim.lease.holder, "alice, https://github.com/acme/shop/actions/runs/7");
        assert!(key(&"x".repeat(500)).len() <= 128);
        assert_ne!(key("a"), key("b"));
        assert_eq!(parse("sluice:stable", &text, "shop", "dev"), None);
        assert_eq!(parse(&key("a"), "damaged", "shop", "dev"), None);
    }

    #[test]
    fn the_first_live_claim_holds() {
        let now: Timestamp = "2026-11-23T10:00:00Z".parse().expect("time");
        let grace = SignedDuration::from_secs(5);
        let c = |k: &str, acquired: &str, until: &str| Claim {
            key: k.into(),
            acquired: acquired.parse().expect("time"),
            lease: lease(k, until),
        };
        let claims = [
            c("a", "2026-11-23T09:00:00Z", "2026-11-23T09:59:50Z"),
            c("b", "2026-11-23T09:59:59Z", "2026-11-23T10:10:00Z"),
            c("c", "2026-11-23T09:59:59Z", "2026-11-23T10:10:00Z"),
        ];
        assert_eq!(holder(&claims, "c", now, grace).map(|c| c.key.as_str()), Some("b"), "a expired; b before c");
        assert_eq!(holder(&claims, "a", now, grace).map(|c| c.key.as_str()), Some("a"), "mine counts");
    }
}
