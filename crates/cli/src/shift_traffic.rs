//! `shift-traffic`: move traffic between stable and candidate.
//!
//! With `--weight`, sets one weight. Without, runs the record's strategy:
//! each stage's weight, then analysis for the stage's duration; a stage that
//! does not pass rolls all traffic back to stable (exit 1, or 3 when the
//! metrics could not be read). A re-run continues after the last stage that
//! passed. The router state before the first change is saved in the record
//! before anything moves, so `rollback` can always restore it.
//!
//! `--pause-at WEIGHT` stops the plan once the stage at that weight has
//! passed (status `paused`, for a person to approve); a later run continues
//! from the record, unless the pause outlived the environment's
//! `pause_timeout`: then it rolls the canary back instead (exit 1).

use crate::analyse::analyse;
use crate::context::{Common, Context, now};
use crate::rollback::roll_back;
use crate::summary;
use anyhow::anyhow;
use clap::Parser;
use sluice_analysis::Verdict;
use sluice_core::config::NotifyEvent;
use sluice_core::record::{EventDetail, Record, Status};
use sluice_core::{Classify, Exit, Failure, gha};
use sluice_providers::router::Router;

/// Move traffic between stable and candidate.
#[derive(Parser, Debug)]
#[command(name = "shift-traffic", version, about, long_about = None)]
pub struct Args {
    #[command(flatten)]
    pub common: Common,
    /// Set this one candidate weight (percent, 0-100) instead of running the plan.
    #[arg(long, env = "INPUT_WEIGHT", value_parser = clap::value_parser!(u8).range(0..=100))]
    pub weight: Option<u8>,
    /// Stop after the plan's stage at this weight and wait for approval; a
    /// later run (without it) continues from the record.
    #[arg(long, env = "INPUT_PAUSE_AT", value_name = "WEIGHT", value_parser = clap::value_parser!(u8).range(1..100))]
    pub pause_at: Option<u8>,
    /// Where the candidate is served (embedded router: its base URL).
    #[arg(long, env = "INPUT_CANDIDATE_UPSTREAM", value_name = "URL")]
    pub candidate_upstream: Option<String>,
}

pub fn main() -> std::process::ExitCode {
    entry(Args::parse())
}

/// Runs the step with parsed flags: the one entry point of the `shift-traffic`
/// binary and of `sluice shift-traffic`.
pub fn entry(args: Args) -> std::process::ExitCode {
    let common = args.common.clone();
    crate::run_step("shift-traffic", common, run(args))
}

pub async fn run(args: Args) -> Result<Exit, Failure> {
    let ctx = Context::load(&args.common)?;
    let mut record = ctx.load_record()?;
    match record.status {
        Status::Admitted | Status::Shifting | Status::Verified | Status::Paused => {}
        Status::Blocked => {
            return Err(Failure::input(anyhow!("gate blocked this deployment; nothing to shift")));
        }
        Status::Promoted | Status::RolledBack => {
            return Err(Failure::input(anyhow!(
                "this deployment has ended ({:?}); start a new one with gate and a new --record path",
                record.status
            )));
        }
    }
    if let Some(url) = &args.candidate_upstream
        && !url.starts_with("http://")
        && !url.starts_with("https://")
    {
        return Err(Failure::input(anyhow!("--candidate-upstream {url:?} is not an http:// URL")));
    }
    if let Some(pause_at) = args.pause_at {
        check_pause_at(&record, pause_at, args.weight.is_some())?;
    }
    // One deployment per environment at a time: this one must hold it (a
    // paused canary holds it until its pause expires). Refusing changes
    // nothing.
    match ctx.hold_lease(&record, record.pause().map(|(_, _, expires_at)| expires_at)).await?.result {
        Ok(line) => eprintln!("shift-traffic: lease: {line}"),
        Err(holder) => {
            gha::error("environment held", &holder);
            return Err(Failure { exit: Exit::DECLINED, error: anyhow!(holder) });
        }
    }
    let router = ctx.router();
    if let Router::CodeDeploy(codedeploy) = &router {
        if args.weight.is_some() || args.candidate_upstream.is_some() || args.pause_at.is_some() {
            return Err(Failure::input(anyhow!(
                "environment {} uses CodeDeploy, which owns the traffic shift: run shift-traffic without --weight, --candidate-upstream and --pause-at (the router's deployment_config chooses the shift)",
                ctx.env().name
            )));
        }
        prepare(&ctx, &router, &mut record, None).await?;
        return crate::codedeploy::run(&ctx, codedeploy, &mut record).await;
    }
    if let Some(exit) = expire_pause(&ctx, &router, &mut record, "shift-traffic").await? {
        return Ok(exit);
    }
    if let Err(failure) = prepare(&ctx, &router, &mut record, args.candidate_upstream.as_deref()).await {
        return Err(match failure.exit {
            Exit::PROVIDER => record_failure(&ctx, &mut record, failure, "the canary did not start"),
            _ => failure,
        });
    }

    match args.weight {
        Some(weight) => {
            if let Err(failure) = set_weight(&ctx, &router, &mut record, weight, None).await {
                return Err(record_failure(&ctx, &mut record, failure, "the weight was not confirmed"));
            }
            let mut outputs = gha::Outputs::default();
            outputs.set("weight", weight.to_string());
            outputs.set("record", ctx.record_path.display().to_string());
            outputs.flush().provider_failed()?;
            summary::write(&summary::heading("shift-traffic", &record, &format!("candidate at {weight}%")));
            Ok(Exit::OK)
        }
        None => match run_plan(&ctx, &router, &mut record, args.pause_at).await {
            Err(failure) if failure.exit == Exit::PROVIDER && !record.status.is_final() => {
                Err(after_provider_failure(&ctx, &router, &mut record, failure).await)
            }
            other => other,
        },
    }
}

/// A provider stayed down in the middle of the plan: traffic goes back to
/// stable so the canary is not left half-shifted; if even that fails, the
/// record says where traffic stood when the router last answered. Exit 3
/// either way.
async fn after_provider_failure(ctx: &Context, router: &Router, record: &mut Record, failure: Failure) -> Failure {
    let reason = format!("a provider failed during the canary: {:#}", failure.error);
    match roll_back(ctx, router, record, &reason, "shift-traffic").await {
        Ok(()) => {
            summary::write(&format!(
                "{}**Rolled back** to 100% stable: {reason}\n",
                summary::heading("shift-traffic", record, "rolled back")
            ));
            Failure::provider(failure.error.context("the canary was rolled back to 100% stable"))
        }
        Err(rollback) => {
            let what = format!("the rollback failed too ({:#})", rollback.error);
            record_failure(ctx, record, failure, &what)
        }
    }
}

/// Appends an `error` event that says where traffic stands (the last weight
/// the router confirmed) and what to do, and returns the failure with it.
fn record_failure(ctx: &Context, record: &mut Record, failure: Failure, what: &str) -> Failure {
    let stands = match record.events.iter().any(|e| matches!(e.detail, EventDetail::Traffic { .. })) {
        false => "no traffic was moved".to_owned(),
        true => format!(
            "the router last confirmed {}% on the candidate: run `rollback` once it answers again",
            record.candidate_weight
        ),
    };
    let message = format!("{:#}; {what}; {stands}", failure.error);
    record.push("shift-traffic", EventDetail::Error { message: message.clone() }, now());
    if let Err(e) = ctx.save(record) {
        eprintln!("shift-traffic: could not save the record: {:#}", e.error);
    }
    Failure { exit: failure.exit, error: anyhow!(message) }
}

/// Saves the router's state before the first change, and puts the candidate
/// in place when given.
async fn prepare(ctx: &Context, router: &Router, record: &mut Record, upstream: Option<&str>) -> Result<(), Failure> {
    if record.router_before.is_none() {
        let state = router.state().await.provider_failed()?;
        record.candidate_weight = state.candidate_weight;
        record.router_before = Some(state);
        ctx.save(record)?;
    }
    if let Some(url) = upstream
        && record.candidate_upstream.as_deref() != Some(url)
    {
        if record.candidate_weight > 0 {
            return Err(Failure::input(anyhow!(
                "the candidate already takes {}% of traffic; roll back before replacing it with {url}",
                record.candidate_weight
            )));
        }
        router.set_candidate(url).await.provider_failed()?;
        record.candidate_upstream = Some(url.to_owned());
        ctx.save(record)?;
    }
    Ok(())
}

async fn set_weight(
    ctx: &Context,
    router: &Router,
    record: &mut Record,
    weight: u8,
    stage: Option<usize>,
) -> Result<(), Failure> {
    let from = record.candidate_weight;
    let state = router.set_weight(weight).await.provider_failed()?;
    record.candidate_weight = state.candidate_weight;
    record.status = Status::Shifting;
    record.push("shift-traffic", EventDetail::Traffic { from, to: weight, stage }, now());
    ctx.save(record)?;
    eprintln!("shift-traffic: candidate {from}% -> {weight}%");
    Ok(())
}

async fn run_plan(ctx: &Context, router: &Router, record: &mut Record, pause_at: Option<u8>) -> Result<Exit, Failure> {
    let plan = record.strategy.plan();
    let passed = passed_stages(record);
    let has_checks = !ctx.config.checks_for(ctx.env()).is_empty();
    let total = plan.len();
    let mut markdown = summary::heading("shift-traffic", record, record.strategy.name());
    for (i, (weight, duration)) in plan.into_iter().enumerate() {
        if passed.contains(&i) {
            eprintln!("shift-traffic: stage {}/{total} ({weight}%) passed in an earlier run", i + 1);
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
        if duration.is_zero() {
            if pause_at == Some(weight) {
                return pause(ctx, record, i, total, markdown).await;
            }
            continue;
        }
        if !has_checks {
            gha::warning(&format!(
                "environment {} has no checks: stage {} waits {} without analysis",
                ctx.env().name,
                i + 1,
                humantime::format_duration(duration)
            ));
            tokio::time::sleep(duration).await;
            if pause_at == Some(weight) {
                return pause(ctx, record, i, total, markdown).await;
            }
            continue;
        }
        let label = format!("stage {}/{total} {weight}%", i + 1);
        let report = analyse(ctx, &record.version, record.candidate_weight, duration, &label).await?;
        summary::log_verdict(&report);
        markdown.push_str(&format!("#### Stage {}: {weight}%\n\n{}\n", i + 1, summary::verdict_table(&report)));
        let verdict = report.verdict;
        let reason = report.reason.clone();
        record.push("shift-traffic", EventDetail::Verdict { stage: Some(i), report: Box::new(report) }, now());
        ctx.save(record)?;
        if verdict != Verdict::Pass {
            let reason = format!("stage {} at {weight}%: {reason}", i + 1);
            roll_back(ctx, router, record, &reason, "shift-traffic").await?;
            let decision = format!("{verdict:?}").to_lowercase();
            crate::notify::send("shift-traffic", NotifyEvent::RolledBack, &decision, &reason).await;
            markdown.push_str(&format!("**Rolled back** to 100% stable: {reason}\n"));
            summary::write(&markdown);
            gha::error("canary rolled back", &reason);
            let mut outputs = gha::Outputs::default();
            outputs.set("decision", format!("{verdict:?}").to_lowercase());
            outputs.set("weight", "0");
            outputs.set("record", ctx.record_path.display().to_string());
            outputs.flush().provider_failed()?;
            return Ok(if verdict == Verdict::Error { Exit::PROVIDER } else { Exit::DECLINED });
        }
        if pause_at == Some(weight) {
            return pause(ctx, record, i, total, markdown).await;
        }
    }
    record.status = Status::Verified;
    record.updated_at = now();
    ctx.save(record)?;
    markdown.push_str(&format!(
        "All {total} stages passed; the candidate takes {}% of traffic.\n",
        record.candidate_weight
    ));
    summary::write(&markdown);
    let mut outputs = gha::Outputs::default();
    outputs.set("decision", "pass");
    outputs.set("weight", record.candidate_weight.to_string());
    outputs.set("record", ctx.record_path.display().to_string());
    outputs.flush().provider_failed()?;
    Ok(Exit::OK)
}

/// Stages with a passing verdict in the record, or that the canary paused
/// after (a re-run skips them).
fn passed_stages(record: &Record) -> Vec<usize> {
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

/// `--pause-at` must name a stage of the plan that is not the last one and
/// has not been passed yet; checked before anything moves.
fn check_pause_at(record: &Record, pause_at: u8, with_weight: bool) -> Result<(), Failure> {
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
async fn pause(
    ctx: &Context,
    record: &mut Record,
    i: usize,
    total: usize,
    mut markdown: String,
) -> Result<Exit, Failure> {
    let timeout = ctx.config.pause_timeout_for(ctx.env());
    let now = now();
    let expires_at = jiff::SignedDuration::try_from(timeout)
        .ok()
        .and_then(|d| now.checked_add(d).ok())
        .unwrap_or(jiff::Timestamp::MAX);
    let weight = record.candidate_weight;
    record.status = Status::Paused;
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
    summary::write(&markdown);
    let mut outputs = gha::Outputs::default();
    outputs.set("decision", "paused");
    outputs.set("weight", weight.to_string());
    outputs.set("expires_at", expires_at.to_string());
    outputs.set("record", ctx.record_path.display().to_string());
    outputs.flush().provider_failed()?;
    Ok(Exit::OK)
}

/// A paused canary whose wait has expired is rolled back (exit 1) rather
/// than continued or left half-shifted. `None` when it is not paused or
/// still in time.
pub(crate) async fn expire_pause(
    ctx: &Context,
    router: &Router,
    record: &mut Record,
    step: &str,
) -> Result<Option<Exit>, Failure> {
    let Some((stage, weight, expires_at)) = record.pause() else { return Ok(None) };
    if now() < expires_at {
        return Ok(None);
    }
    let reason = format!(
        "the canary paused at stage {} ({weight}%) was not approved before its pause expired at {expires_at}",
        stage + 1
    );
    roll_back(ctx, router, record, &reason, step).await?;
    summary::write(&format!(
        "{}**Rolled back** to 100% stable: {reason}.\n",
        summary::heading(step, record, "pause expired")
    ));
    gha::error("paused canary expired", &reason);
    let mut outputs = gha::Outputs::default();
    outputs.set("decision", "expired");
    outputs.set("weight", "0");
    outputs.set("record", ctx.record_path.display().to_string());
    outputs.flush().provider_failed()?;
    Ok(Some(Exit::DECLINED))
}
