//! `shift-traffic` with a CodeDeploy router: CodeDeploy shifts the traffic
//! (its deployment config decides how); sluice creates the deployment,
//! follows it to the end (continuing it when it waits for rerouting), and
//! keeps every status and message CodeDeploy gives in the record.
//!
//! A re-run resumes the deployment in flight instead of starting another;
//! a deployment that failed or was stopped was rolled back by CodeDeploy
//! (sluice creates it with automatic rollback) and closes the record as
//! rolled back.

use crate::Outcome;
use crate::context::{Context, now};
use crate::shift_traffic::refused;
use crate::summary;
use sluice_core::ledger::LedgerOutcome;
use sluice_core::lifecycle::Step;
use sluice_core::record::{EventDetail, Record, Status};
use sluice_core::{Classify, Failure, gha};
use sluice_providers::aws::codedeploy::{CodeDeployRouter, Deployment};

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
        Some(d) if d.status == "Succeeded" => return finish(ctx, record, &d).await,
        _ => {
            let description = format!("sluice: {} {} into {}", record.app, record.version, record.environment);
            let created = router.create(&description).await.provider_failed()?;
            eprintln!("shift-traffic: created CodeDeploy deployment {} ({})", created.id, created.status);
            record.transition(Step::ShiftTraffic, Status::Shifting, now()).map_err(refused)?;
            push(record, &created);
            ctx.save(record)?;
            created.id
        }
    };
    let mut save_error = None;
    let ended = router
        .follow(&id, |d| {
            eprintln!(
                "shift-traffic: deployment {}: {}{}",
                d.id,
                d.status,
                d.message.as_deref().map(|m| format!(" — {m}")).unwrap_or_default()
            );
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
    finish(ctx, record, &ended).await
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

async fn finish(ctx: &Context, record: &mut Record, d: &Deployment) -> Result<Outcome, Failure> {
    if d.status == "Succeeded" {
        if record.candidate_weight != 100 {
            let from = record.candidate_weight;
            record.candidate_weight = 100;
            record.push("shift-traffic", EventDetail::Traffic { from, to: 100, stage: None }, now());
        }
        record.transition(Step::ShiftTraffic, Status::Verified, now()).map_err(refused)?;
        ctx.save(record)?;
        return Ok(Outcome::ok("pass").summary(format!(
            "{}CodeDeploy deployment `{}` succeeded; the new release takes all traffic.\n",
            summary::heading("shift-traffic", record, "codedeploy succeeded"),
            d.id
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
            "{}**Rolled back** by CodeDeploy: {reason}\n",
            summary::heading("shift-traffic", record, "rolled back")
        ))
        .error("codedeploy rolled back", &reason))
}
