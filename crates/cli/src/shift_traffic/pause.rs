//! `--pause-at`: which stage a canary may pause after (checked before
//! anything moves), the pause itself (status `paused`, the environment
//! held until it expires), and a pause that expired, rolled back rather
//! than continued. A paused canary must never be continued after its
//! `pause_timeout`.

use crate::Outcome;
use crate::context::{Context, now};
use crate::rollback::roll_back;
use crate::summary;
use anyhow::anyhow;
use sluice_core::lifecycle::Step;
use sluice_core::record::{EventDetail, Record, Status};
use sluice_core::{Failure, gha};
use sluice_providers::router::Router;

use super::plan::passed_stages;
use super::refused;

/// `--pause-at` must name a stage of the plan that is not the last one and
/// has not been passed yet; checked before anything moves.
pub(super) fn check_pause_at(record: &Record, pause_at: u8, with_weight: bool) -> Result<(), Failure> {
    if with_weight {
        return Err(Failure::input(anyhow!("--pause-at runs the plan; it cannot be combined with --weight")));
    }
    let plan = record.strategy.plan();
    let stages: Vec<u8> = plan.iter().map(|(w, _)| *w).collect();
    let Some(i) = stages.iter().position(|w| *w == pause_at).filter(|i| i + 1 < stages.len()) else {
        return Err(Failure::input(anyhow!(
            "--pause-at {pause_at} is not a stage of this deployment's plan before the last one (stages: {stages:?})"
        )));
    };
    if passed_stages(record).iter().any(|p| *p >= i) {
        return Err(Failure::input(anyhow!(
            "--pause-at {pause_at}: the canary is already past stage {} ({pause_at}%); run without --pause-at to continue",
            i + 1
        )));
    }
    Ok(())
}

/// Stops the plan after stage `i`: status `paused`, with when the wait for
/// approval expires.
pub(super) async fn pause(
    ctx: &Context,
    record: &mut Record,
    i: usize,
    total: usize,
    mut markdown: String,
) -> Result<Outcome, Failure> {
    let timeout = ctx.config.pause_timeout_for(ctx.env());
    let now = now();
    let expires_at = jiff::SignedDuration::try_from(timeout)
        .ok()
        .and_then(|d| now.checked_add(d).ok())
        .unwrap_or(jiff::Timestamp::MAX);
    let weight = record.candidate_weight;
    record.transition(Step::ShiftTraffic, Status::Paused, now).map_err(refused)?;
    record.push("shift-traffic", EventDetail::Pause { stage: i, weight, expires_at }, now);
    ctx.save(record)?;
    // The environment stays held while the canary waits for approval.
    if let Err(holder) = ctx.hold_lease(record, Some(expires_at)).await?.result {
        gha::warning(&format!("the paused canary's lease could not be extended: {holder}"));
    }
    eprintln!(
        "shift-traffic: paused after stage {}/{total} with the candidate at {weight}%; continue before {expires_at} or it is rolled back",
        i + 1
    );
    markdown.push_str(&format!(
        "**Paused** after stage {}/{total} with the candidate at {weight}%, waiting for approval. \
         Run `shift-traffic` again to continue before {expires_at} (pause_timeout {}); after that the canary is rolled back.\n",
        i + 1,
        humantime::format_duration(timeout)
    ));
    Ok(Outcome::ok("paused").summary(markdown).output("expires_at", expires_at.to_string()))
}

/// A paused canary whose wait has expired is rolled back (exit 1) rather
/// than continued or left half-shifted. `None` when it is not paused or
/// still in time.
pub(crate) async fn expire_pause(
    ctx: &Context,
    router: &Router,
    record: &mut Record,
    step: &str,
) -> Result<Option<Outcome>, Failure> {
    let Some((stage, weight, expires_at)) = record.pause() else { return Ok(None) };
    if now() < expires_at {
        return Ok(None);
    }
    let reason = format!(
        "the canary paused at stage {} ({weight}%) was not approved before its pause expired at {expires_at}",
        stage + 1
    );
    let as_step = if step == "rollback" { Step::Rollback } else { Step::ShiftTraffic };
    roll_back(ctx, router, record, &reason, as_step).await?;
    Ok(Some(
        Outcome::declined("expired")
            .summary(format!(
                "{}**Rolled back** to 100% stable: {reason}.\n",
                summary::heading(step, record, "pause expired")
            ))
            .error("paused canary expired", &reason),
    ))
}
