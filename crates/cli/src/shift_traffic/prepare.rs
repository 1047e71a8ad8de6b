//! Before traffic moves: the router's state is saved in the record (so
//! `rollback` can always restore it) and the deployment's candidate pinned
//! and put in place on the router; then one weight set and read back. It
//! must never give traffic to a candidate other than this deployment's.

use crate::context::{Context, now};
use anyhow::anyhow;
use sluice_core::lifecycle::Step;
use sluice_core::record::{EventDetail, Record, Status};
use sluice_core::{Classify, Failure};
use sluice_providers::router::Router;

use super::refused;

/// Saves the router's state before the first change, pins the candidate
/// (the flag's, else the one `gate` recorded, else for an ALB the target
/// group the router names now) and puts it in place on the router. A router
/// whose candidate is another one than this deployment's is never given
/// traffic: with traffic on it already, that is refused.
pub(super) async fn prepare(
    ctx: &Context,
    router: &Router,
    record: &mut Record,
    flag: Option<&str>,
) -> Result<(), Failure> {
    if record.router_before.is_none() {
        let state = router.state().await.provider_failed()?;
        record.candidate_weight = state.candidate_weight;
        record.router_before = Some(state);
        ctx.save(record)?;
    }
    if router.is_codedeploy() {
        // The revision gate recorded must be the one CodeDeploy would get.
        if let Some(sluice_core::config::RouterConfig::CodeDeploy { appspec, s3_revision, .. }) = &ctx.env().router {
            let now = crate::candidate::revision(appspec.as_deref(), s3_revision.as_deref())?;
            match (&record.candidate, now) {
                (Some(recorded), Some(now)) if *recorded != now => {
                    return Err(crate::candidate::changed(record, recorded, &now));
                }
                (None, now) => {
                    record.candidate = now;
                    ctx.save(record)?;
                }
                _ => {}
            }
        }
        return Ok(());
    }
    let moved = record.events.iter().any(|e| matches!(e.detail, EventDetail::Traffic { .. }));
    let wanted = match (&record.candidate, flag) {
        (Some(recorded), Some(flag)) if recorded != flag => {
            return Err(crate::candidate::changed(record, recorded, flag));
        }
        (Some(recorded), _) => recorded.clone(),
        (None, Some(flag)) if moved => return Err(crate::candidate::changed(record, "not recorded", flag)),
        (None, Some(flag)) => flag.to_owned(),
        (None, None) => match router {
            // The ALB's candidate target group is where the release was
            // deployed; it is pinned now, before any traffic moves.
            r if r.is_alb() => match router.state().await.provider_failed()?.candidate {
                Some(arn) => arn,
                None => return Err(Failure::provider(anyhow!("the ALB names no candidate target group"))),
            },
            _ => {
                return Err(Failure::input(anyhow!(
                    "{} does not say what its candidate is: pass --candidate-upstream URL (to gate, or to this first shift-traffic), so traffic never goes to a candidate an earlier deployment left on the router",
                    record.subject()
                )));
            }
        },
    };
    let state = router.state().await.provider_failed()?;
    if state.candidate.as_deref() != Some(wanted.as_str()) {
        if state.candidate_weight > 0 {
            return Err(Failure::input(anyhow!(
                "the router sends {}% of traffic to candidate {}, not to {}'s candidate {wanted}: roll that back first (`rollback --live`)",
                state.candidate_weight,
                state.candidate.as_deref().unwrap_or("(none)"),
                record.subject()
            )));
        }
        router.set_candidate(&wanted).await.provider_failed()?;
    }
    if record.candidate.as_deref() != Some(wanted.as_str()) {
        record.candidate = Some(wanted);
        ctx.save(record)?;
    }
    Ok(())
}

/// Sets the weight, read back, and checks the router still routes to this
/// deployment's candidate.
pub(super) async fn set_weight(
    ctx: &Context,
    router: &Router,
    record: &mut Record,
    weight: u8,
    stage: Option<usize>,
) -> Result<(), Failure> {
    let from = record.candidate_weight;
    let state = router.set_weight(weight).await.provider_failed()?;
    record.candidate_weight = state.candidate_weight;
    record.transition(Step::ShiftTraffic, Status::Shifting, now()).map_err(refused)?;
    record.push("shift-traffic", EventDetail::Traffic { from, to: weight, stage }, now());
    ctx.save(record)?;
    eprintln!("shift-traffic: candidate {from}% -> {weight}%");
    if let (Some(recorded), Some(routed)) = (&record.candidate, &state.candidate)
        && recorded != routed
    {
        return Err(Failure::provider(anyhow!(
            "the router now routes the candidate share to {routed}, not to this deployment's candidate {recorded}: something else changed the router"
        )));
    }
    Ok(())
}
