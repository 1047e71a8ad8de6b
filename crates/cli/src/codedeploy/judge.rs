//! The candidate judged while CodeDeploy shifts: for a deployment whose
//! record names the group's production listener and blue/green pair
//! ([`crate::context::traffic_pair`]), with the built-in checks or the
//! config's ([`Context::checks_in`]), the replacement's
//! share of the listener's weights is read every poll, and while it is
//! between 1 and 99 % the analysis of `shift-traffic`'s stages runs at that
//! weight (the same engine, sources and evidence: [`analyse_until`]), one
//! window of the plan's stage duration after another; a weight CodeDeploy
//! steps to starts a new window, as a new stage does. Each window's verdict
//! is recorded as a stage's.
//!
//! A window that does not pass stops the deployment with rollback
//! (`StopDeployment`, `autoRollbackEnabled`), as a stage that does not pass
//! rolls back (exit 1, or 3 for an `error` verdict; no traffic is abandoned,
//! not a failed change); except a window CodeDeploy ended before its time
//! (it stepped, or the deployment ended) while still `inconclusive`: its
//! verdict is recorded, and CodeDeploy goes on (a stage is never cut short,
//! so the staged flow has no such case). A passing window never holds
//! CodeDeploy up: it shifts on its own timetable. Never moves the listener
//! itself.

use crate::Outcome;
use crate::analyse::{Scope, Window, analyse_until, carried_from};
use crate::context::{Checks, Context, now};
use crate::shift_traffic::refused;
use crate::summary;
use anyhow::anyhow;
use sluice_analysis::{Cause, Verdict};
use sluice_core::config::NotifyEvent;
use sluice_core::ledger::LedgerOutcome;
use sluice_core::lifecycle::Step;
use sluice_core::record::{EventDetail, Record, RouterState, Status};
use sluice_core::{Classify, Exit, Failure};
use sluice_providers::ProviderError;
use sluice_providers::aws::codedeploy::{BlueGreen, CodeDeployRouter, Deployment};
use std::time::Duration;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

/// Reads of the listener's weights that must fail in a row (each after the
/// SDK's retries, a poll apart) before the listener counts as down.
const READ_FAILURES: u32 = 3;

/// How a judged deployment ended.
pub(super) enum Followed {
    /// CodeDeploy ended it (succeeded, failed, stopped elsewhere).
    Ended(Deployment),
    /// A window did not pass: the deployment was stopped with rollback and
    /// the record closed; the step's outcome.
    Stopped(Outcome),
}

/// The pair to judge on, when the record names one and the checks are
/// analysed.
pub(super) fn pair_of(record: &Record, checks: &Checks) -> Option<BlueGreen> {
    if checks.unanalysed {
        return None;
    }
    let before = crate::context::traffic_pair(record)?;
    Some(BlueGreen {
        listener: before.listener.clone()?,
        stable: before.stable.clone()?,
        candidate: before.candidate.clone()?,
    })
}

/// Aborts the spawned follower and weight reader however the step ends.
struct Tasks {
    follower: JoinHandle<Result<Deployment, ProviderError>>,
    reader: JoinHandle<()>,
}

impl Drop for Tasks {
    fn drop(&mut self) {
        self.follower.abort();
        self.reader.abort();
    }
}

/// Follows deployment `id` to its end (CodeDeploy's statuses pushed with
/// `push`, as the unjudged follow does) while judging the replacement at
/// every weight between 1 and 99 % the listener shows; the stages'
/// sections go to `markdown`.
pub(super) async fn follow(
    ctx: &Context,
    router: &CodeDeployRouter,
    record: &mut Record,
    id: &str,
    pair: BlueGreen,
    checks: &Checks,
    markdown: &mut String,
) -> Result<Followed, Failure> {
    let every = router.settings().poll_interval;
    let (seen_tx, mut seen_rx) = mpsc::unbounded_channel::<Deployment>();
    let follower = {
        let (router, id) = (router.clone(), id.to_owned());
        tokio::spawn(async move {
            router
                .follow(&id, |d| {
                    let _ = seen_tx.send(d.clone());
                })
                .await
        })
    };
    let (weight_tx, weight_rx) = watch::channel::<Option<Result<u8, ProviderError>>>(None);
    let reader = {
        let (router, pair) = (router.clone(), pair.clone());
        tokio::spawn(async move {
            let mut failed = 0;
            loop {
                let read = router.replacement_weight(&pair).await;
                failed = if read.is_ok() { 0 } else { failed + 1 };
                // One read that failed (after the SDK's retries) is a blip:
                // the last weight stands until READ_FAILURES in a row.
                if (read.is_ok() || failed >= READ_FAILURES) && weight_tx.send(Some(read)).is_err() {
                    return;
                }
                tokio::time::sleep(every).await;
            }
        })
    };
    let mut tasks = Tasks { follower, reader };
    let scope = Scope::for_record(ctx, record)?;
    let duration =
        record.strategy.plan().iter().map(|(_, d)| *d).find(|d| !d.is_zero()).unwrap_or(Duration::from_secs(60));
    // Stages go on from an earlier run's (a re-run follows the same
    // deployment).
    let mut stage = record
        .events
        .iter()
        .filter_map(|e| match &e.detail {
            EventDetail::Verdict { stage: Some(i), .. } => Some(*i + 1),
            _ => None,
        })
        .max()
        .unwrap_or(0);
    loop {
        seen(ctx, record, &mut seen_rx)?;
        if tasks.follower.is_finished() {
            let ended = (&mut tasks.follower)
                .await
                .map_err(|e| Failure::provider(anyhow!("following the deployment stopped: {e}")))?;
            seen(ctx, record, &mut seen_rx)?;
            return match ended.provider_failed() {
                Ok(ended) => Ok(Followed::Ended(ended)),
                // CodeDeploy could not be read (after retries) or the
                // follow timed out: the shift would go on unjudged.
                Err(failure) => {
                    drop(tasks);
                    Err(stop_after_failure(ctx, router, record, id, failure).await)
                }
            };
        }
        let read = weight_rx.borrow().as_ref().map(|r| r.as_ref().map(|w| *w).map_err(ToString::to_string));
        let weight = match read {
            Some(Ok(w)) => Some(w),
            Some(Err(e)) => {
                drop(tasks);
                seen(ctx, record, &mut seen_rx)?;
                let failure = Failure::provider(anyhow!(e));
                return Err(stop_after_failure(ctx, router, record, id, failure).await);
            }
            None => None,
        };
        let Some(weight) = weight.filter(|w| (1..=99).contains(w)) else {
            tokio::time::sleep(every).await;
            continue;
        };
        if record.candidate_weight != weight {
            let from = record.candidate_weight;
            record.candidate_weight = weight;
            record.push("shift-traffic", EventDetail::Traffic { from, to: weight, stage: Some(stage) }, now());
            ctx.save(record)?;
            eprintln!("shift-traffic: CodeDeploy shifted the listener to {weight}% on the replacement");
        }
        let label = format!("codedeploy stage {} {weight}%", stage + 1);
        let window = Window { label: &label, duration, after: Duration::ZERO };
        let carried = carried_from(stage.checked_sub(1).and_then(|p| record.stage_verdict(None, p)));
        let follower = &tasks.follower;
        let mut changes = weight_rx.clone();
        // Why CodeDeploy ended the window before its time, if it did.
        let mut cut: Option<String> = None;
        let stop = || {
            let why = match changes.borrow_and_update().as_ref() {
                _ if follower.is_finished() => Some("the deployment ended".to_owned()),
                Some(Ok(w)) if *w != weight => Some(format!("CodeDeploy moved the listener to {w}%")),
                _ => None,
            };
            cut.clone_from(&why);
            why
        };
        let report =
            match analyse_until(ctx, &scope, &checks.specs, &record.version, weight, window, carried, stop).await {
                Ok(report) => report,
                Err(failure) if failure.exit == Exit::PROVIDER && !record.status().is_final() => {
                    drop(tasks);
                    seen(ctx, record, &mut seen_rx)?;
                    return Err(stop_after_failure(ctx, router, record, id, failure).await);
                }
                Err(failure) => return Err(failure),
            };
        summary::log_verdict(&report);
        let (verdict, cause, reason) = (report.verdict, report.cause, report.reason.clone());
        // A window CodeDeploy ended before its time had not decided (the
        // analysis is asked to stop only then): without the evidence to
        // decide (inconclusive, or an error for lack of data: CloudWatch
        // had not published the replacement's first minutes yet) it
        // learned nothing about the release; it is recorded, and
        // CodeDeploy goes on (a window that ran its course without passing
        // stops the deployment, as a stage's does).
        let moved_on = cut.clone().filter(|_| !matches!(verdict, Verdict::Pass | Verdict::Fail));
        markdown.push_str(&format!(
            "#### Stage {}: {weight}% (CodeDeploy's shift)\n\n{}\n",
            stage + 1,
            summary::verdict_table(&report)
        ));
        record.push("shift-traffic", EventDetail::Verdict { stage: Some(stage), report: Box::new(report) }, now());
        ctx.save(record)?;
        if let Some(why) = moved_on {
            let undecided =
                if verdict == Verdict::Inconclusive { "Inconclusive" } else { "Without the data to decide" };
            eprintln!("{label}: {undecided} when {why}, before the window's end: not held against the release");
            markdown.push_str(&format!(
                "{undecided} when {why}, before the window's end: CodeDeploy moved on before the evidence was in, so it is not held against the release.\n\n"
            ));
        } else if verdict != Verdict::Pass {
            drop(tasks);
            seen(ctx, record, &mut seen_rx)?;
            let reason = format!("stage {} at {weight}% of CodeDeploy's shift: {reason}", stage + 1);
            if let Some(note) = checks.note() {
                markdown.insert_str(0, &format!("{note}\n\n"));
            }
            return stop_deployment(ctx, router, record, id, (verdict, cause, &reason), markdown).await;
        }
        stage += 1;
    }
}

/// Pushes the statuses the follower saw since the last call.
fn seen(ctx: &Context, record: &mut Record, rx: &mut mpsc::UnboundedReceiver<Deployment>) -> Result<(), Failure> {
    let mut any = false;
    while let Ok(d) = rx.try_recv() {
        super::log(&d);
        super::push(record, &d);
        any = true;
    }
    if any { ctx.save(record) } else { Ok(()) }
}

/// A window did not pass: stops the deployment with rollback (CodeDeploy
/// routes the listener back to the original), records its last status and
/// the rollback with the verdict's reason, closes the ledger entry, and
/// notifies.
async fn stop_deployment(
    ctx: &Context,
    router: &CodeDeployRouter,
    record: &mut Record,
    id: &str,
    (verdict, cause, reason): (Verdict, Option<Cause>, &str),
    markdown: &mut String,
) -> Result<Followed, Failure> {
    // No traffic says nothing about the release: abandoned, not a failed
    // change (as a stage's).
    let outcome = match cause {
        Some(Cause::NoTraffic) => LedgerOutcome::Abandoned,
        _ => LedgerOutcome::RolledBack,
    };
    let words = stop_and_close(ctx, router, record, id, reason, outcome).await?;
    let decision = format!("{verdict:?}").to_lowercase();
    crate::notify::send("shift-traffic", NotifyEvent::RolledBack, &decision, &words).await;
    markdown.push_str(&format!("**Stopped and rolled back** by CodeDeploy: {words}\n"));
    let exit = if verdict == Verdict::Error { Exit::PROVIDER } else { Exit::DECLINED };
    let summary = format!("{}{markdown}", summary::heading("shift-traffic", record, "rolled back"));
    Ok(Followed::Stopped(
        Outcome::new(exit, decision).summary(summary).error("codedeploy stopped and rolled back", &words),
    ))
}

/// A provider stayed down while the shift was judged (the listener's
/// weights, a metric source that could not be reached): as a canary is
/// rolled back then, the deployment is stopped with rollback, so that it
/// does not go on unjudged; if even that fails, the record's `error` event
/// says so and to run `rollback`. Exit 3 either way.
async fn stop_after_failure(
    ctx: &Context,
    router: &CodeDeployRouter,
    record: &mut Record,
    id: &str,
    failure: Failure,
) -> Failure {
    let reason = format!("a provider failed while judging CodeDeploy's shift: {:#}", failure.error);
    match stop_and_close(ctx, router, record, id, &reason, LedgerOutcome::RolledBack).await {
        Ok(_) => Failure::provider(failure.error.context(format!("deployment {id} was stopped with rollback"))),
        Err(e) => e,
    }
}

/// Stops deployment `id` with rollback and closes the record as rolled
/// back for `reason` (its last status, the rollback, the ledger entry as
/// `outcome`); returns the rollback's words. A stop that fails leaves an
/// `error` event saying what to do.
async fn stop_and_close(
    ctx: &Context,
    router: &CodeDeployRouter,
    record: &mut Record,
    id: &str,
    reason: &str,
    outcome: LedgerOutcome,
) -> Result<String, Failure> {
    eprintln!("shift-traffic: {reason}; stopping deployment {id} with rollback");
    let stopped = match router.stop_active().await {
        Ok(state) => state,
        Err(e) => {
            let message = format!(
                "{reason}; stopping deployment {id} with rollback failed ({e}): stop it in CodeDeploy, or run `rollback`"
            );
            record.push("shift-traffic", EventDetail::Error { message: message.clone() }, now());
            ctx.save(record)?;
            return Err(Failure::provider(anyhow!(message)));
        }
    };
    // Read back what became of it; CodeDeploy said it stopped, so a read
    // that fails does not undo that.
    let ended = match router.get(id).await {
        Ok(ended) => ended,
        Err(e) => {
            eprintln!("shift-traffic: reading deployment {id} after stopping it failed: {e}");
            let status = stopped.deployment_status.clone().unwrap_or_else(|| "Stopped".into());
            Deployment { id: id.to_owned(), status, message: None }
        }
    };
    super::log(&ended);
    super::push(record, &ended);
    if ended.status == "Succeeded" {
        // It ended before the stop: nothing was active to stop, and the
        // release the verdict is against takes all traffic.
        let message = format!(
            "{reason}; but CodeDeploy deployment {id} succeeded before it could be stopped, so the release takes all \
             traffic: redeploy the previous revision"
        );
        record.push("shift-traffic", EventDetail::Error { message: message.clone() }, now());
        ctx.save(record)?;
        return Err(Failure::provider(anyhow!(message)));
    }
    let from = record.candidate_weight;
    let restored = RouterState {
        kind: "codedeploy".into(),
        deployment_id: Some(id.to_owned()),
        deployment_status: stopped.deployment_status.or(Some(ended.status.clone())),
        ..Default::default()
    };
    record.candidate_weight = 0;
    let at = now();
    record.transition(Step::ShiftTraffic, Status::RolledBack, at).map_err(refused)?;
    let words = format!(
        "{reason}; CodeDeploy deployment {id} stopped with rollback{}",
        ended.message.as_deref().map(|m| format!(": {m}")).unwrap_or_default()
    );
    record.push("shift-traffic", EventDetail::Rollback { reason: words.clone(), from, restored }, at);
    let entry = record.ledger_entry(outcome, Some(words.clone()), at);
    ctx.finish_ledger(record, entry).await?;
    Ok(words)
}
