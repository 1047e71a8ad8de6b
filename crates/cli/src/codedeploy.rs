//! `shift-traffic` with a CodeDeploy router: CodeDeploy shifts the traffic
//! (its deployment config decides how); sluice creates the deployment,
//! follows it to the end (continuing it when it waits for rerouting), and
//! keeps every status and message CodeDeploy gives in the record.
//!
//! The deployment group's blue/green target-group pair (ECS) is read
//! before the deployment starts: the target group the production listener
//! serves is the original, the other the replacement, recorded for the
//! built-in ALB checks and for judging the replacement at each weight of
//! CodeDeploy's shift (`judge`), which stops the deployment with rollback
//! on a verdict that does not pass.
//!
//! A re-run resumes the deployment in flight instead of starting another;
//! a deployment that failed or was stopped was rolled back by CodeDeploy
//! (sluice creates it with automatic rollback) and closes the record as
//! rolled back.

use crate::Outcome;
use crate::context::{Context, now};
use crate::shift_traffic::refused;
use crate::summary;
use anyhow::anyhow;
use sluice_core::ledger::LedgerOutcome;
use sluice_core::lifecycle::Step;
use sluice_core::record::{EventDetail, Record, Status};
use sluice_core::{Classify, Failure, gha};
use sluice_providers::aws::codedeploy::{BlueGreen, CodeDeployRouter, Deployment};

mod judge;

pub(crate) async fn run(ctx: &Context, router: &CodeDeployRouter, record: &mut Record) -> Result<Outcome, Failure> {
    let settings = router.settings();
    let _group = gha::group(&format!("codedeploy {}/{}", settings.application, settings.deployment_group));
    let last = record.events.iter().rev().find_map(|e| match &e.detail {
        EventDetail::Deployment { id, status, message } => {
            Some(Deployment { id: id.clone(), status: status.clone(), message: message.clone() })
        }
        _ => None,
    });
    let id = match last {
        Some(d) if !d.is_final() => {
            eprintln!("shift-traffic: following deployment {} started by an earlier run ({})", d.id, d.status);
            d.id
        }
        Some(d) if d.status == "Succeeded" => return finish(ctx, record, &d, "").await,
        _ => {
            find_traffic(ctx, router, record).await?;
            let description = format!("sluice: {} {} into {}", record.app, record.version, record.environment);
            let created = router.create(&description).await.provider_failed()?;
            eprintln!("shift-traffic: created CodeDeploy deployment {} ({})", created.id, created.status);
            record.transition(Step::ShiftTraffic, Status::Shifting, now()).map_err(refused)?;
            push(record, &created);
            ctx.save(record)?;
            created.id
        }
    };
    // With a target-group pair to read, the replacement is judged at every
    // weight CodeDeploy shifts it through.
    let checks = ctx.checks_in(record)?;
    let mut stages = String::new();
    if let Some(pair) = judge::pair_of(record, &checks) {
        return match judge::follow(ctx, router, record, &id, pair, &checks, &mut stages).await? {
            judge::Followed::Ended(ended) => finish(ctx, record, &ended, &stages).await,
            judge::Followed::Stopped(outcome) => Ok(outcome),
        };
    }
    let mut save_error = None;
    let ended = router
        .follow(&id, |d| {
            log(d);
            push(record, d);
            if let Err(e) = ctx.save(record) {
                save_error.get_or_insert(e);
            }
        })
        .await;
    if let Some(e) = save_error {
        return Err(e);
    }
    let ended = ended.provider_failed()?;
    finish(ctx, record, &ended, &stages).await
}

/// One line of the log for a status CodeDeploy gave.
fn log(d: &Deployment) {
    eprintln!(
        "shift-traffic: deployment {}: {}{}",
        d.id,
        d.status,
        d.message.as_deref().map(|m| format!(" — {m}")).unwrap_or_default()
    );
}

/// Records before the deployment starts where its traffic goes, so that
/// the replacement can be judged during CodeDeploy's shift and, with
/// sluice's built-in checks, by the ALB checks beside the alarms
/// ([`crate::context::Context::checks_in`]): the deployment group's
/// production listener, the target group of its blue/green pair that the
/// listener forwards to now (the original, `stable`) and the other one (the
/// replacement, `candidate`), in `router_before`. Found once: every later
/// step and interval reads the record, as the listener moves to the
/// replacement during the deployment; with the alarms the group watches
/// then (none: the ALB checks judge alone). A group without a pair
/// (in-place, EC2 blue/green, Lambda) is judged by its alarms only (or
/// the config's checks after the shift), said in the log. With the
/// built-in checks, a listener that serves both groups or neither is
/// refused (exit 2) before anything is created; with checks of the
/// config, which judge without the pair, it only means they do not judge
/// during the shift (said in the log), nor when the group cannot be read.
async fn find_traffic(ctx: &Context, router: &CodeDeployRouter, record: &mut Record) -> Result<(), Failure> {
    let checks = ctx.checks()?;
    if record.router_before.as_ref().is_none_or(|b| b.listener.is_some()) || checks.unanalysed {
        return Ok(());
    }
    let (found, alarms) = match read_pair(router).await {
        Ok(read) => read,
        // The config's checks judge without the pair: nothing is refused,
        // they only do not judge during the shift.
        Err(no) if !checks.builtin => {
            eprintln!("shift-traffic: the config's checks do not judge during CodeDeploy's shift: {no}");
            return Ok(());
        }
        Err(NoPair::Unread(e)) => return Err(Failure::provider(anyhow!(e))),
        Err(NoPair::None(why)) => {
            eprintln!("shift-traffic: the built-in checks are the deployment group's alarms only: {why}");
            return Ok(());
        }
        Err(NoPair::Untold(why)) => {
            return Err(Failure::input(anyhow!(
                "{why}: sluice cannot tell which target group the deployment brings up, so its built-in ALB checks cannot judge it; \
                 start the deployment when the listener serves one target group of the pair, or add [[environment.check]] tables of your own \
                 (see docs/judging-health.md)"
            )));
        }
    };
    eprintln!(
        "shift-traffic: listener {} serves {}: the replacement target group is {}",
        found.listener, found.stable, found.candidate
    );
    if let Some(before) = record.router_before.as_mut() {
        before.listener = Some(found.listener);
        before.stable = Some(found.stable);
        before.candidate = Some(found.candidate);
        before.alarms = alarms;
    }
    ctx.save(record)
}

/// Why [`read_pair`] found no replacement to judge.
enum NoPair {
    /// CodeDeploy or the ELB API could not be read (after retries).
    Unread(sluice_providers::ProviderError),
    /// The group has no blue/green pair behind a listener.
    None(String),
    /// The listener serves both groups of the pair, or neither.
    Untold(String),
}

impl std::fmt::Display for NoPair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NoPair::Unread(e) => write!(f, "{e}"),
            NoPair::None(why) | NoPair::Untold(why) => f.write_str(why),
        }
    }
}

/// The deployment group's blue/green pair as the production listener
/// serves it now, and the alarms the group watches.
async fn read_pair(router: &CodeDeployRouter) -> Result<(BlueGreen, Vec<String>), NoPair> {
    let routing = router.routing().await.map_err(NoPair::Unread)?;
    let pair = routing.pair.map_err(NoPair::None)?;
    let found = router.replacement(&pair).await.map_err(NoPair::Unread)?.map_err(NoPair::Untold)?;
    Ok((found, routing.alarms))
}

/// For the summary: the built-in checks that judge this deployment, and
/// the target groups they read (during CodeDeploy's shift, the stages
/// above it, and in `verify-health`); empty when the config names checks.
fn builtin_note(ctx: &Context, record: &Record) -> String {
    let Ok(checks) = ctx.checks_in(record) else { return String::new() };
    if !checks.builtin {
        return String::new();
    }
    let names = checks.specs.iter().map(|c| c.name.as_str()).collect::<Vec<_>>().join(", ");
    match crate::context::traffic_pair(record) {
        Some(b) => format!(
            "\nThe config names no checks: sluice's built-in checks ({names}) judge the replacement target group `{}` against the original `{}`, during CodeDeploy's shift (each weight it shifts through) and in `verify-health`.\n",
            b.candidate.as_deref().unwrap_or_default(),
            b.stable.as_deref().unwrap_or_default()
        ),
        None => {
            format!("\nThe config names no checks: `verify-health` judges with sluice's built-in checks ({names}).\n")
        }
    }
}

/// Appends the deployment's status unless the record already ends with it.
fn push(record: &mut Record, d: &Deployment) {
    let same = record.events.last().is_some_and(|e| {
        matches!(&e.detail, EventDetail::Deployment { id, status, message }
            if *id == d.id && *status == d.status && *message == d.message)
    });
    if !same {
        let detail = EventDetail::Deployment { id: d.id.clone(), status: d.status.clone(), message: d.message.clone() };
        record.push("shift-traffic", detail, now());
    }
}

/// Closes the record as CodeDeploy ended deployment `d`; `stages` holds the
/// sections of the stages judged during its shift, for the summary.
async fn finish(ctx: &Context, record: &mut Record, d: &Deployment, stages: &str) -> Result<Outcome, Failure> {
    if d.status == "Succeeded" {
        if record.candidate_weight != 100 {
            let from = record.candidate_weight;
            record.candidate_weight = 100;
            record.push("shift-traffic", EventDetail::Traffic { from, to: 100, stage: None }, now());
        }
        record.transition(Step::ShiftTraffic, Status::Verified, now()).map_err(refused)?;
        ctx.save(record)?;
        return Ok(Outcome::ok("pass").summary(format!(
            "{}{stages}CodeDeploy deployment `{}` succeeded; the new release takes all traffic.\n{}",
            summary::heading("shift-traffic", record, "codedeploy succeeded"),
            d.id,
            builtin_note(ctx, record)
        )));
    }
    // Failed or Stopped: CodeDeploy rolled back (sluice asks for automatic
    // rollback on failure, alarm and stop).
    let reason = format!(
        "CodeDeploy deployment {} {}{}",
        d.id,
        d.status.to_lowercase(),
        d.message.as_deref().map(|m| format!(": {m}")).unwrap_or_default()
    );
    let from = record.candidate_weight;
    let restored = sluice_core::record::RouterState {
        kind: "codedeploy".into(),
        deployment_id: Some(d.id.clone()),
        deployment_status: Some(d.status.clone()),
        ..Default::default()
    };
    record.candidate_weight = 0;
    let at = now();
    record.transition(Step::ShiftTraffic, Status::RolledBack, at).map_err(refused)?;
    record.push("shift-traffic", EventDetail::Rollback { reason: reason.clone(), from, restored }, at);
    let entry = record.ledger_entry(LedgerOutcome::RolledBack, Some(reason.clone()), at);
    ctx.finish_ledger(record, entry).await?;
    Ok(Outcome::declined("fail")
        .summary(format!(
            "{}{stages}**Rolled back** by CodeDeploy: {reason}\n",
            summary::heading("shift-traffic", record, "rolled back")
        ))
        .error("codedeploy rolled back", &reason))
}
