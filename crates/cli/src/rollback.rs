//! `rollback`: all traffic back to stable, fast and idempotent.
//!
//! With a record, restores the router state saved before the deployment and
//! closes the record (and the ledger entry) as rolled back; a second run only
//! confirms the router. A promoted deployment is reverted: the previous
//! stable pool is put back. Without a record, sets the live router of the
//! environment to 100% stable. With `--if-expired`, only a canary paused
//! past its `pause_timeout` is rolled back; anything else is left alone (for
//! a scheduled sweep of deployments waiting for approval).

use crate::context::{Common, Context, now};
use crate::summary;
use anyhow::anyhow;
use clap::Parser;
use sluice_core::config::NotifyEvent;
use sluice_core::ledger::LedgerOutcome;
use sluice_core::record::{EventDetail, Record, RecordError, Status};
use sluice_core::{Classify, Exit, Failure, gha};
use sluice_providers::router::Router;

/// Put all traffic back on the stable release.
#[derive(Parser, Debug)]
#[command(name = "rollback", version, about, long_about = None)]
pub struct Args {
    #[command(flatten)]
    pub common: Common,
    /// Why (kept in the record, the ledger and the summary).
    #[arg(long, env = "INPUT_REASON", default_value = "manual rollback")]
    pub reason: String,
    /// Roll back only a canary paused past its pause_timeout; change nothing
    /// otherwise. Needs the record.
    #[arg(long, env = "INPUT_IF_EXPIRED")]
    pub if_expired: bool,
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

pub async fn run(args: Args) -> Result<Exit, Failure> {
    let ctx = Context::load(&args.common)?;
    let router = ctx.router();
    if args.if_expired {
        return if_expired(&ctx, &router).await;
    }
    let mut outputs = gha::Outputs::default();
    outputs.set("record", ctx.record_path.display().to_string());
    match Record::load(&ctx.record_path, &Default::default()) {
        Err(RecordError::Missing { .. }) => {
            // No record: the live router is all we know. Stable takes all.
            let state = router.set_weight(0).await.provider_failed()?;
            eprintln!("rollback: no record at {}; the live router now sends 100% to stable", ctx.record_path.display());
            summary::write(&format!(
                "### sluice rollback: {}\n\nNo record; the live router now sends 100% of traffic to stable ({}).\n",
                ctx.env().name,
                state.stable.as_deref().unwrap_or("unknown")
            ));
            outputs.set("weight", "0");
            let reason = format!("{} (no record: the live router now sends 100% to stable)", args.reason);
            crate::notify::send("rollback", NotifyEvent::RolledBack, "rollback", &reason).await;
        }
        Err(e) => return Err(Failure::input(e)),
        Ok(_) => {
            let mut record = ctx.load_record()?;
            match record.status {
                Status::Promoted => {
                    revert(&ctx, &router, &mut record, &args.reason).await?;
                    crate::notify::send("rollback", NotifyEvent::RolledBack, "revert", &args.reason).await;
                }
                Status::RolledBack => {
                    // Already told when it happened: a repeat sends nothing.
                    // Traffic first, then a ledger entry an earlier run
                    // still owes.
                    let state = match &record.router_before {
                        Some(before) if router.restores_exactly() => router.restore(before).await,
                        _ => router.set_weight(0).await,
                    }
                    .provider_failed()?;
                    eprintln!(
                        "rollback: already rolled back; the router confirms {}% on the candidate",
                        state.candidate_weight
                    );
                    ctx.settle_ledger(&mut record, true).await?;
                }
                _ => {
                    roll_back(&ctx, &router, &mut record, &args.reason, "rollback").await?;
                    crate::notify::send("rollback", NotifyEvent::RolledBack, "rollback", &args.reason).await;
                }
            }
            summary::write(&format!(
                "{}Reason: {}\n",
                summary::heading("rollback", &record, "100% stable"),
                args.reason
            ));
            outputs.set("weight", "0");
        }
    }
    outputs.flush().provider_failed()?;
    Ok(Exit::OK)
}

/// `--if-expired`: rolls back a paused canary whose wait has expired, and
/// leaves every other deployment as it is.
async fn if_expired(ctx: &Context, router: &Router) -> Result<Exit, Failure> {
    let mut record = ctx.load_record()?;
    if crate::shift_traffic::expire_pause(ctx, router, &mut record, "rollback").await?.is_some() {
        return Ok(Exit::OK);
    }
    let why = match record.pause() {
        Some((_, weight, expires_at)) => format!("paused at {weight}% until {expires_at}"),
        None => format!("not paused (status {:?})", record.status).to_lowercase(),
    };
    eprintln!("rollback: nothing to do: {} in {} is {why}", record.version, record.environment);
    let mut outputs = gha::Outputs::default();
    outputs.set("decision", "kept");
    outputs.set("record", ctx.record_path.display().to_string());
    outputs.flush().provider_failed()?;
    Ok(Exit::OK)
}

/// Sends all traffic to stable, records it, and closes the deployment in the
/// ledger. Used by `shift-traffic` when a stage fails, and by `rollback`.
pub(crate) async fn roll_back(
    ctx: &Context,
    router: &Router,
    record: &mut Record,
    reason: &str,
    step: &str,
) -> Result<(), Failure> {
    let from = record.candidate_weight;
    let restored = match &record.router_before {
        // ALB: every weight, the stickiness and the roles as they were.
        Some(before) if router.restores_exactly() => router.restore(before).await,
        _ => router.set_weight(0).await,
    }
    .provider_failed()?;
    record.candidate_weight = 0;
    record.status = Status::RolledBack;
    let now = now();
    record.push(step, EventDetail::Rollback { reason: reason.to_owned(), from, restored }, now);
    eprintln!("{step}: rolled back: candidate {from}% -> 0%, all traffic on stable: {reason}");
    let entry = record.ledger_entry(LedgerOutcome::RolledBack, Some(reason.to_owned()), now);
    ctx.finish_ledger(record, entry).await
}

/// Undoes a promotion: the stable pool before the deployment serves again.
async fn revert(ctx: &Context, router: &Router, record: &mut Record, reason: &str) -> Result<(), Failure> {
    if let Router::CodeDeploy(_) = router {
        return Err(Failure::input(anyhow!(
            "CodeDeploy finished deployment of {}; it cannot be stopped any more: revert it with a new deployment of the previous release",
            record.version
        )));
    }
    if let Some(before) = record.router_before.clone().filter(|_| router.restores_exactly()) {
        let restored = router.restore(&before).await.provider_failed()?;
        let now = now();
        record.status = Status::RolledBack;
        record.push("rollback", EventDetail::Rollback { reason: reason.to_owned(), from: 100, restored }, now);
        eprintln!("rollback: reverted the promotion of {}; the router is as it was before it", record.version);
        let entry = record.ledger_entry(LedgerOutcome::Reverted, Some(reason.to_owned()), now);
        return ctx.finish_ledger(record, entry).await;
    }
    let Some(previous) = record.router_before.as_ref().and_then(|s| s.stable.clone()) else {
        return Err(Failure::input(anyhow!(
            "record {} was promoted but does not say what was stable before; nothing to revert to",
            ctx.record_path.display()
        )));
    };
    let restored = router.set_stable(&previous).await.provider_failed()?;
    let now = now();
    record.status = Status::RolledBack;
    record.push("rollback", EventDetail::Rollback { reason: reason.to_owned(), from: 100, restored }, now);
    eprintln!("rollback: reverted the promotion of {}; {previous} is stable again", record.version);
    let entry = record.ledger_entry(LedgerOutcome::Reverted, Some(reason.to_owned()), now);
    ctx.finish_ledger(record, entry).await
}
