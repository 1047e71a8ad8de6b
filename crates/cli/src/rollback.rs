//! `rollback`: all traffic back to stable, fast and idempotent.
//!
//! With a record, restores the router state saved before the deployment and
//! closes the record (and the ledger entry) as rolled back; a second run only
//! confirms the router. A deployment that never moved traffic is abandoned
//! without calling the router. A promoted deployment is reverted: the
//! previous stable pool is put back. With `--live` and no record, sets the
//! live router of the environment to 100% stable; a record path that does
//! not exist is bad input (exit 2). With `--if-expired`, only a canary paused
//! past its `pause_timeout` is rolled back; anything else is left alone (for
//! a scheduled sweep of deployments waiting for approval).

use crate::Outcome;
use crate::context::{Common, Context, lease_grace, ledger_failure, now};
use crate::shift_traffic::refused;
use crate::summary;
use anyhow::anyhow;
use clap::Parser;
use sluice_core::config::NotifyEvent;
use sluice_core::ledger::{ChangeKind, LEDGER_SCHEMA, LedgerEntry, LedgerOutcome};
use sluice_core::lifecycle::Step;
use sluice_core::record::{EventDetail, Record, Status};
use sluice_core::{Classify, Exit, Failure, gha, names};
use sluice_providers::router::Router;

/// Put all traffic back on the stable release.
#[derive(Parser, Debug)]
#[command(
    name = "rollback",
    version,
    about = "Put all traffic back on stable: from the record, or with --live from the live router (optionally freeing a dead run's lease). Idempotent.",
    after_help = "Exit codes: 0 done · 1 a decision said no (the lifecycle or a lease check refused) · 2 bad input (nothing changed) · 3 a provider failed after retries · 130/143 cancelled.\n\nExamples:\n  rollback -e prd --record out/prd.json --reason \"p99 regression\"\n  rollback -e prd --live --free-lease RECORD_ID --reason \"runner lost\"\n\nEvery flag also reads an INPUT_* environment variable (INPUT_ENVIRONMENT, INPUT_RECORD, ...). More: https://github.com/sluice-dev/sluice/blob/main/docs/cli.md"
)]
pub struct Args {
    #[command(flatten)]
    pub common: Common,
    /// Why (kept in the record, the ledger and the summary).
    #[arg(long, env = "INPUT_REASON", default_value = "manual rollback")]
    pub reason: String,
    /// Roll back only a canary paused past its pause_timeout; change nothing
    /// otherwise. Needs the record.
    #[arg(long, env = "INPUT_IF_EXPIRED", conflicts_with = "live")]
    pub if_expired: bool,
    /// Without a record: set the environment's live router to 100% stable.
    /// (`--record` is then not read.)
    #[arg(long, env = "INPUT_LIVE")]
    pub live: bool,
    /// With --live: also free the environment's lease held by this record
    /// id (its run is dead and its record lost), and close that deployment
    /// in the ledger with --reason: rolled back if it had moved traffic,
    /// else abandoned. Another holder is left alone.
    #[arg(long, env = "INPUT_FREE_LEASE", value_name = "RECORD_ID", requires = "live")]
    pub free_lease: Option<String>,
}

pub fn main() -> std::process::ExitCode {
    entry(Args::parse())
}

/// Runs the step with parsed flags: the one entry point of the `rollback`
/// binary and of `sluice rollback`.
pub fn entry(args: Args) -> std::process::ExitCode {
    let common = args.common.clone();
    crate::run_step("rollback", common, run(args))
}

pub async fn run(args: Args) -> Result<Outcome, Failure> {
    if args.live {
        let ctx = Context::load_without_record(&args.common)?;
        if ctx.env().has_targets() {
            return crate::waves::rollback(&ctx, &args).await;
        }
        return live(&ctx, &ctx.router()?, &args.reason, args.free_lease.as_deref()).await;
    }
    let ctx = Context::load(&args.common)?;
    if ctx.env().has_targets() {
        return crate::waves::rollback(&ctx, &args).await;
    }
    let router = ctx.router()?;
    if args.if_expired {
        return if_expired(&ctx, &router).await;
    }
    let mut record = match ctx.load_record() {
        Ok(record) => record,
        Err(failure) if !ctx.record_path.exists() => {
            return Err(Failure::input(failure.error.context(
                "rollback needs the deployment's record; without one, `rollback --live` puts the environment's live router back on stable",
            )));
        }
        Err(failure) => return Err(failure),
    };
    let (decision, words) = match record.status() {
        Status::Admitted | Status::Waiting => {
            // Nothing moved: the deployment is given up, and the
            // environment is free again. The router is only called when
            // shift-traffic got as far as reading it (a first weight change
            // may have been cut short): it is confirmed on stable.
            if let Some(before) = record.router_before.clone() {
                match ctx.exact_restore(&router, &before) {
                    true => router.restore(&before).await,
                    false => router.set_weight(0).await,
                }
                .provider_failed()?;
            }
            abandon(&ctx, &mut record, Step::Rollback, &args.reason).await?;
            ("abandoned", "No traffic had moved: the deployment is abandoned and the environment free.".to_owned())
        }
        Status::Blocked => {
            ("nothing", "The gate blocked this deployment; no traffic moved, nothing to roll back.".into())
        }
        Status::Promoted => {
            revert(&ctx, &router, &mut record, &args.reason).await?;
            crate::notify::send("rollback", NotifyEvent::RolledBack, "revert", &args.reason).await;
            (
                "reverted",
                format!(
                    "The promotion is reverted; the stable release before it serves again. Reason: {}",
                    args.reason
                ),
            )
        }
        Status::RolledBack => {
            // Already told when it happened: a repeat sends nothing.
            // Traffic first, then a ledger entry an earlier run still owes.
            let state = match &record.router_before {
                Some(before) if ctx.exact_restore(&router, before) => router.restore(before).await,
                _ => router.set_weight(0).await,
            }
            .provider_failed()?;
            eprintln!(
                "rollback: already rolled back; the router confirms {}% on the candidate",
                state.candidate_weight
            );
            ctx.settle_ledger(&mut record, true).await?;
            ("rolled-back", "Already rolled back; the router confirms all traffic on stable.".into())
        }
        Status::Abandoned => {
            ctx.settle_ledger(&mut record, true).await?;
            ("abandoned", "Already abandoned; no traffic had moved.".into())
        }
        Status::Shifting | Status::Paused | Status::Verified => {
            roll_back(&ctx, &router, &mut record, &args.reason, Step::Rollback).await?;
            crate::notify::send("rollback", NotifyEvent::RolledBack, "rollback", &args.reason).await;
            ("rolled-back", format!("All traffic is back on stable. Reason: {}", args.reason))
        }
    };
    let heading = match decision {
        "rolled-back" => "100% stable",
        "reverted" => "reverted, 100% on the previous release",
        "nothing" => "nothing to roll back",
        other => other,
    };
    Ok(Outcome::ok(decision).summary(format!("{}{}\n", summary::heading("rollback", &record, heading), words)))
}

/// `--live`: no record; the live router sends everything to stable. With
/// `--free-lease ID`, the lease of the deployment `ID` is then freed and that
/// deployment closed in the ledger with the reason (who freed it, and why).
async fn live(ctx: &Context, router: &Router, reason: &str, free: Option<&str>) -> Result<Outcome, Failure> {
    // The lease to free is checked first: a wrong id changes nothing.
    let (ledger, holder) = match free {
        None => (None, None),
        Some(record_id) => {
            names::check("record id", record_id).map_err(|m| Failure::input(anyhow!(m)))?;
            let ledger = ctx.ledger()?;
            let grace = lease_grace(ctx.config.lease_timeout_for(ctx.env()));
            let holder = ledger
                .lease_holder(&ctx.config.app, &ctx.env().name, now(), grace)
                .await
                .map_err(|e| ledger_failure(e, "the environment lease could not be read"))?;
            match holder {
                Some(holder) if holder.record_id == record_id => (Some(ledger), Some(holder)),
                other => {
                    let message = match other {
                        Some(other) => format!(
                            "environment {} is held by {}, not by {record_id}: nothing was changed",
                            ctx.env().name,
                            other.describe()
                        ),
                        None => format!(
                            "no deployment holds environment {}: nothing to free, nothing was changed",
                            ctx.env().name
                        ),
                    };
                    return Ok(Outcome::declined("refused")
                        .summary(format!("### sluice rollback: {}\n\n{message}.\n", ctx.env().name))
                        .error("rollback refused", &message)
                        .output("lease", "not-held"));
                }
            }
        }
    };
    let before = router.state().await.provider_failed()?;
    let state = router.set_weight(0).await.provider_failed()?;
    eprintln!(
        "rollback: the live router of {} now sends 100% to stable (the candidate had {}%)",
        ctx.env().name,
        before.candidate_weight
    );
    let mut markdown = format!(
        "### sluice rollback: {}\n\nNo record; the live router now sends 100% of traffic to stable ({}).\n",
        ctx.env().name,
        state.stable.as_deref().unwrap_or("unknown")
    );
    let notice = format!("{reason} (no record: the live router now sends 100% to stable)");
    crate::notify::send("rollback", NotifyEvent::RolledBack, "rollback", &notice).await;
    let (Some(ledger), Some(holder)) = (ledger, holder) else {
        return Ok(Outcome::ok("rolled-back").summary(markdown));
    };
    let who = sluice_core::env::actor().unwrap_or_else(|| "someone".into());
    let why = format!("lease freed by {who}: {reason}");
    // Traffic on the candidate when it was freed: that deployment moved it.
    let outcome = if before.candidate_weight > 0 { LedgerOutcome::RolledBack } else { LedgerOutcome::Abandoned };
    let entry = LedgerEntry {
        schema: LEDGER_SCHEMA.to_owned(),
        id: holder.record_id.clone(),
        app: holder.app.clone(),
        environment: holder.environment.clone(),
        version: holder.version.clone(),
        commit: None,
        commits: Vec::new(),
        change: ChangeKind::Planned,
        incident: None,
        strategy: "unknown".into(),
        triggered_by: None,
        started_at: holder.acquired_at,
        finished_at: now(),
        outcome,
        reason: Some(why.clone()),
        unanalysed: false,
        targets: Vec::new(),
    };
    let freed = ledger
        .free_lease(&holder, &entry, &ctx.target())
        .await
        .map_err(|e| ledger_failure(e, "the environment lease could not be freed"))?;
    if let Err(e) = router.release_lease(&holder.app, &holder.environment, &holder.record_id).await {
        gha::warning(&format!(
            "the ALB listener's lease of {} was not removed: {e}; it expires by itself",
            holder.record_id
        ));
    }
    let line = match freed {
        true => format!(
            "freed the lease of {} and closed it as {} ({why})",
            holder.describe(),
            if outcome == LedgerOutcome::Abandoned { "abandoned" } else { "rolled back" }
        ),
        false => format!("{} had just released the lease itself: nothing freed", holder.record_id),
    };
    eprintln!("rollback: {line}");
    markdown.push_str(&format!("\n{}.\n", gha::escape_markdown(&line)));
    Ok(Outcome::ok("rolled-back").summary(markdown).output("lease", if freed { "freed" } else { "not-held" }))
}

/// `--if-expired`: rolls back a paused canary whose wait has expired, and
/// leaves every other deployment as it is.
async fn if_expired(ctx: &Context, router: &Router) -> Result<Outcome, Failure> {
    let mut record = ctx.load_record()?;
    if let Some(outcome) = crate::shift_traffic::expire_pause(ctx, router, &mut record, "rollback").await? {
        // Rolling back what expired is what was asked: exit 0.
        return Ok(outcome.with_exit(Exit::OK));
    }
    let why = match record.pause() {
        Some((_, weight, expires_at)) => format!("paused at {weight}% until {expires_at}"),
        None => format!("not paused: it is {}", record.describe()),
    };
    eprintln!("rollback: nothing to do: {} is {why}", record.subject());
    Ok(Outcome::ok("kept"))
}

/// Sends all traffic to stable, records it, and closes the deployment in the
/// ledger. Used by `shift-traffic` when a stage fails, and by `rollback`.
pub(crate) async fn roll_back(
    ctx: &Context,
    router: &Router,
    record: &mut Record,
    reason: &str,
    step: Step,
) -> Result<(), Failure> {
    roll_back_as(ctx, router, record, reason, step, LedgerOutcome::RolledBack).await
}

/// [`roll_back`], closing the deployment in the ledger as `outcome`: a
/// canary rolled back because it got no traffic is `abandoned` there (no
/// verdict on the release: not a failed change in DORA).
pub(crate) async fn roll_back_as(
    ctx: &Context,
    router: &Router,
    record: &mut Record,
    reason: &str,
    step: Step,
    outcome: LedgerOutcome,
) -> Result<(), Failure> {
    if !record.may_move(step, Status::RolledBack) {
        return Err(refused(record.refused(step, "roll it back")));
    }
    let from = record.candidate_weight;
    let restored = match &record.router_before {
        // ALB: every weight, the stickiness and the roles as they were.
        Some(before) if ctx.exact_restore(router, before) => router.restore(before).await,
        _ => router.set_weight(0).await,
    }
    .provider_failed()?;
    record.candidate_weight = 0;
    let now = now();
    record.transition(step, Status::RolledBack, now).map_err(refused)?;
    record.push(step.name(), EventDetail::Rollback { reason: reason.to_owned(), from, restored }, now);
    eprintln!("{step}: rolled back: candidate {from}% -> 0%, all traffic on stable: {reason}");
    let entry = record.ledger_entry(outcome, Some(reason.to_owned()), now);
    ctx.finish_ledger(record, entry).await
}

/// Ends a deployment that never moved traffic: `abandoned`, without calling
/// the router; the ledger gets an `abandoned` entry (not a change in the
/// DORA metrics) and the environment's lease is freed.
pub(crate) async fn abandon(ctx: &Context, record: &mut Record, step: Step, reason: &str) -> Result<(), Failure> {
    let now = now();
    record.transition(step, Status::Abandoned, now).map_err(refused)?;
    record.push(step.name(), EventDetail::Abandoned { reason: reason.to_owned() }, now);
    eprintln!("{step}: {} is abandoned: no traffic had moved; the environment is free: {reason}", record.subject());
    let entry = record.ledger_entry(LedgerOutcome::Abandoned, Some(reason.to_owned()), now);
    ctx.finish_ledger(record, entry).await
}

/// Undoes a promotion: the stable pool before the deployment serves again.
async fn revert(ctx: &Context, router: &Router, record: &mut Record, reason: &str) -> Result<(), Failure> {
    if router.is_codedeploy() {
        return Err(Failure::input(anyhow!(
            "CodeDeploy finished deployment of {}; it cannot be stopped any more: revert it with a new deployment of the previous release",
            record.version
        )));
    }
    let restored = if let Some(before) = record.router_before.clone().filter(|b| ctx.exact_restore(router, b)) {
        let restored = router.restore(&before).await.provider_failed()?;
        eprintln!("rollback: reverted the promotion of {}; the router is as it was before it", record.version);
        restored
    } else {
        let Some(previous) = record.router_before.as_ref().and_then(|s| s.stable.clone()) else {
            return Err(Failure::input(anyhow!(
                "record {} was promoted but does not say what was stable before; nothing to revert to",
                ctx.record_path.display()
            )));
        };
        let restored = router.set_stable(&previous).await.provider_failed()?;
        eprintln!("rollback: reverted the promotion of {}; {previous} is stable again", record.version);
        restored
    };
    let now = now();
    record.transition(Step::Rollback, Status::RolledBack, now).map_err(refused)?;
    record.push("rollback", EventDetail::Rollback { reason: reason.to_owned(), from: 100, restored }, now);
    let entry = record.ledger_entry(LedgerOutcome::Reverted, Some(reason.to_owned()), now);
    ctx.finish_ledger(record, entry).await
}
