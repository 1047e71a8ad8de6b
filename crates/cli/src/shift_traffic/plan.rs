//! The plan runner: the record's strategy stage by stage, each stage's
//! weight set, then its analysis (`stage`) or, unanalysed, its wait; a
//! re-run continues after the last stage that passed, and a pause stops it
//! (`pause`). The plan ends `verified` only on evidence (a passing verdict
//! at 100%). It must never back down (a stage below the candidate's weight
//! is skipped) nor move traffic without holding the environment's lease.

use crate::Outcome;
use crate::context::{Checks, Context, now};
use crate::summary;
use anyhow::anyhow;
use sluice_analysis::Verdict;
use sluice_core::lifecycle::Step;
use sluice_core::record::{EventDetail, Record, Status};
use sluice_core::{Exit, Failure, gha};
use sluice_providers::router::Router;

use super::pause::pause;
use super::prepare::set_weight;
use super::{refused, stage};

/// Runs the plan from where the record stands; `checks` is `None` when
/// nothing is judged here.
pub(super) async fn run_plan(
    ctx: &Context,
    router: &Router,
    record: &mut Record,
    pause_at: Option<u8>,
    checks: Option<&Checks>,
) -> Result<Outcome, Failure> {
    let plan = record.strategy.plan();
    let passed = passed_stages(record);
    // What is left of the plan after each stage, up to a pause: the stages
    // this run will still judge.
    let runs = |j: usize, weight: u8| !passed.contains(&j) && weight >= record.candidate_weight;
    let after: Vec<std::time::Duration> =
        (0..plan.len()).map(|i| crate::analyse::plan_after(&plan, i, pause_at, runs)).collect();
    let total = plan.len();
    let mut markdown = summary::heading("shift-traffic", record, record.strategy.name());
    if let Some(note) = checks.and_then(Checks::note) {
        markdown.push_str(&format!("{note}\n\n"));
    }
    for (i, (weight, duration)) in plan.into_iter().enumerate() {
        if passed.contains(&i) {
            eprintln!("shift-traffic: stage {}/{total} ({weight}%) passed in an earlier run", i + 1);
            continue;
        }
        // Never back down: after `--weight 20`, a plan of 10, 25, ... goes on
        // at 25% (the final stage at 100% always runs).
        if weight < record.candidate_weight {
            eprintln!(
                "shift-traffic: stage {}/{total} ({weight}%) skipped: the candidate already takes {}%",
                i + 1,
                record.candidate_weight
            );
            continue;
        }
        let _group =
            gha::group(&format!("stage {}/{total}: {weight}% for {}", i + 1, humantime::format_duration(duration)));
        // Each stage renews the lease; one lost (this run stalled past its
        // timeout and another deployment took the environment) stops here,
        // leaving the router to its new holder.
        if let Err(holder) = ctx.hold_lease(record, None).await?.result {
            let message = format!(
                "lost the environment lease before stage {}: {holder}; stopped without touching traffic (the candidate was at {}%)",
                i + 1,
                record.candidate_weight
            );
            record.push("shift-traffic", EventDetail::Error { message: message.clone() }, now());
            ctx.save(record)?;
            return Err(Failure { exit: Exit::DECLINED, error: anyhow!(message) });
        }
        if record.candidate_weight != weight {
            set_weight(ctx, router, record, weight, Some(i)).await?;
        }
        let analysed = checks.is_some_and(|c| !duration.is_zero() && !c.unanalysed);
        if analysed {
            if let Some(rolled_back) =
                stage::judge(ctx, router, record, (i, total), (weight, duration, after[i]), &mut markdown).await?
            {
                return Ok(rolled_back);
            }
        } else if !duration.is_zero() {
            // All at once: no analysis here (verify-health judges at 100%);
            // `analysis = "none"`: the stage only waits, as configured.
            eprintln!(
                "shift-traffic: stage {}/{total} waits {} without analysis (analysis = \"none\")",
                i + 1,
                humantime::format_duration(duration)
            );
            tokio::time::sleep(duration).await;
        }
        if pause_at == Some(weight) {
            return pause(ctx, record, i, total, markdown).await;
        }
    }
    // Verified only on evidence: a passing verdict at 100%.
    let evidence = crate::promote::evidence(ctx, record);
    if evidence.is_ok() {
        record.transition(Step::ShiftTraffic, Status::Verified, now()).map_err(refused)?;
        ctx.save(record)?;
        markdown.push_str(&format!(
            "All {total} stages passed; the candidate takes {}% of traffic.\n",
            record.candidate_weight
        ));
        return Ok(Outcome::ok("pass").summary(markdown));
    }
    let why = evidence.err().unwrap_or_default();
    markdown.push_str(&format!(
        "The plan is done and the candidate takes {}% of traffic, but it is not verified: {why}. Run `verify-health` to judge it at 100%.\n",
        record.candidate_weight
    ));
    Ok(Outcome::ok("shifted").summary(markdown))
}

/// Stages with a passing verdict in the record, or that the canary paused
/// after (a re-run skips them).
pub(super) fn passed_stages(record: &Record) -> Vec<usize> {
    record
        .events
        .iter()
        .filter_map(|e| match &e.detail {
            EventDetail::Verdict { stage: Some(i), report } if report.verdict == Verdict::Pass => Some(*i),
            EventDetail::Pause { stage, .. } => Some(*stage),
            _ => None,
        })
        .collect()
}
