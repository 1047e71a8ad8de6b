//! One stage of the plan judged: the analysis for the stage's duration,
//! its verdict logged, put in the step summary and recorded; a stage that
//! does not pass rolls all traffic back to stable (exit 1, or 3 when the
//! metrics could not be read) and notifies. A stage that did not pass must
//! never keep its traffic.

use crate::Outcome;
use crate::analyse::{Window, analyse};
use crate::context::{Context, now};
use crate::rollback::roll_back_as;
use crate::summary;
use sluice_analysis::{Cause, Verdict};
use sluice_core::config::NotifyEvent;
use sluice_core::ledger::LedgerOutcome;
use sluice_core::lifecycle::Step;
use sluice_core::record::{EventDetail, Record};
use sluice_core::{Exit, Failure};
use sluice_providers::router::Router;
use std::time::Duration;

/// Judges stage `i` (at `weight`, for `duration`, with `after` of the plan
/// to come), appending its verdict table to `markdown`. `None` when it passed; else the canary has been
/// rolled back and this is the step's outcome (the summary taken from
/// `markdown`).
pub(super) async fn judge(
    ctx: &Context,
    router: &Router,
    record: &mut Record,
    (i, total): (usize, usize),
    (weight, duration, after): (u8, Duration, Duration),
    markdown: &mut String,
) -> Result<Option<Outcome>, Failure> {
    let label = format!("stage {}/{total} {weight}%", i + 1);
    let window = Window { label: &label, duration, after };
    let carried = crate::analyse::carried_from(i.checked_sub(1).and_then(|p| record.stage_verdict(None, p)));
    let report = analyse(ctx, &record.version, record.candidate_weight, window, carried).await?;
    summary::log_verdict(&report);
    markdown.push_str(&format!("#### Stage {}: {weight}%\n\n{}\n", i + 1, summary::verdict_table(&report)));
    let (verdict, cause) = (report.verdict, report.cause);
    let reason = report.reason.clone();
    record.push("shift-traffic", EventDetail::Verdict { stage: Some(i), report: Box::new(report) }, now());
    ctx.save(record)?;
    if verdict == Verdict::Pass {
        return Ok(None);
    }
    let reason = format!("stage {} at {weight}%: {reason}", i + 1);
    // No traffic says nothing about the release: the ledger calls it
    // abandoned, not a failed change.
    let outcome = match cause {
        Some(Cause::NoTraffic) => LedgerOutcome::Abandoned,
        _ => LedgerOutcome::RolledBack,
    };
    roll_back_as(ctx, router, record, &reason, Step::ShiftTraffic, outcome).await?;
    let decision = format!("{verdict:?}").to_lowercase();
    crate::notify::send("shift-traffic", NotifyEvent::RolledBack, &decision, &reason).await;
    markdown.push_str(&format!("**Rolled back** to 100% stable: {reason}\n"));
    let exit = if verdict == Verdict::Error { Exit::PROVIDER } else { Exit::DECLINED };
    Ok(Some(Outcome::new(exit, decision).summary(std::mem::take(markdown)).error("canary rolled back", &reason)))
}
