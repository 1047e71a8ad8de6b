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

use crate::Outcome;
use crate::analyse::analyse;
use crate::candidate::check_upstream;
use crate::context::{Checks, Common, Context, now};
use crate::rollback::{abandon, roll_back, roll_back_as};
use crate::summary;
use anyhow::anyhow;
use clap::Parser;
use sluice_analysis::{Cause, Verdict};
use sluice_core::config::NotifyEvent;
use sluice_core::ledger::LedgerOutcome;
use sluice_core::lifecycle::Step;
use sluice_core::record::{EventDetail, Record, Status};
use sluice_core::{Classify, Exit, Failure, gha};
use sluice_providers::router::Router;

/// Move traffic between stable and candidate.
#[derive(Parser, Debug)]
#[command(
    name = "shift-traffic",
    version,
    about = "Move traffic to the candidate: the whole plan of stages with analysis between them, or one weight; rolls a stage that does not pass back to stable.",
    after_help = "Exit codes: 0 done · 1 a decision said no (a stage failed and was rolled back, or the lifecycle refused) · 2 bad input (nothing changed) · 3 a provider failed after retries · 130/143 cancelled.\n\nExample: shift-traffic -e prd --record out/prd.json --pause-at 25\n\nEvery flag also reads an INPUT_* environment variable (INPUT_ENVIRONMENT, INPUT_RECORD, ...). More: https://github.com/sluice-dev/sluice#readme"
)]
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

pub async fn run(args: Args) -> Result<Outcome, Failure> {
    let ctx = Context::load(&args.common)?;
    let mut record = ctx.load_record()?;
    if let Err(refused) = record.may_act(Step::ShiftTraffic, "move traffic") {
        return Ok(Outcome::refused("shift-traffic", &record, &refused));
    }
    if ctx.env().has_targets() {
        return crate::waves::shift(&ctx, record, &args).await;
    }
    if let Some(url) = &args.candidate_upstream {
        check_upstream(url)?;
    }
    if let Some(pause_at) = args.pause_at {
        check_pause_at(&record, pause_at, args.weight.is_some())?;
    }
    if let Some(weight) = args.weight
        && !record.may_move(Step::ShiftTraffic, Status::Shifting)
    {
        let refused = record.refused(Step::ShiftTraffic, &format!("set the candidate to {weight}%"));
        return Ok(Outcome::refused("shift-traffic", &record, &refused));
    }
    let router = ctx.router()?;
    if let Router::CodeDeploy(_) = &router
        && (args.weight.is_some() || args.candidate_upstream.is_some() || args.pause_at.is_some())
    {
        return Err(Failure::input(anyhow!(
            "environment {} uses CodeDeploy, which owns the traffic shift: run shift-traffic without --weight, --candidate-upstream and --pause-at (the router's deployment_config chooses the shift)",
            ctx.env().name
        )));
    }
    // Checks are known before anything moves: an environment that cannot be
    // judged is bad input, not a canary rolled back half-way. (One weight,
    // CodeDeploy's own shift and an all-at-once switch judge nothing here.)
    let analyses = record.strategy.plan().iter().any(|(_, d)| !d.is_zero());
    let checks = match (args.weight, &router) {
        (None, Router::Local(_) | Router::Alb(_)) if analyses => Some(ctx.checks()?),
        _ => None,
    };
    // One deployment per environment at a time: this one must hold it (a
    // paused canary holds it until its pause expires). Refusing changes
    // nothing.
    match ctx.hold_lease(&record, record.pause().map(|(_, _, expires_at)| expires_at)).await?.result {
        Ok(line) => eprintln!("shift-traffic: lease: {line}"),
        Err(holder) => {
            return Ok(Outcome::declined("held")
                .summary(format!("{}{}\n", summary::heading("shift-traffic", &record, "environment held"), holder))
                .error("environment held", &holder));
        }
    }
    if let Some(outcome) = expire_pause(&ctx, &router, &mut record, "shift-traffic").await? {
        return Ok(outcome);
    }
    if let Err(failure) = prepare(&ctx, &router, &mut record, args.candidate_upstream.as_deref()).await {
        return Err(match failure.exit {
            Exit::PROVIDER => start_failed(&ctx, &mut record, failure).await,
            _ => failure,
        });
    }
    if let Router::CodeDeploy(codedeploy) = &router {
        return crate::codedeploy::run(&ctx, codedeploy, &mut record).await;
    }

    match args.weight {
        Some(weight) => {
            if let Err(failure) = set_weight(&ctx, &router, &mut record, weight, None).await {
                return Err(record_failure(&ctx, &mut record, failure, "the weight was not confirmed"));
            }
            Ok(Outcome::ok("shifted").summary(summary::heading(
                "shift-traffic",
                &record,
                &format!("candidate at {weight}%"),
            )))
        }
        None => match run_plan(&ctx, &router, &mut record, args.pause_at, checks.as_ref()).await {
            Err(failure) if failure.exit == Exit::PROVIDER && !record.status().is_final() => {
                Err(after_provider_failure(&ctx, &router, &mut record, failure).await)
            }
            other => other,
        },
    }
}

/// The canary could not start (the router did not answer before any
/// traffic moved): the deployment is abandoned, which frees the
/// environment, and the failure is reported (exit 3).
async fn start_failed(ctx: &Context, record: &mut Record, failure: Failure) -> Failure {
    if !record.may_move(Step::ShiftTraffic, Status::Abandoned) {
        return record_failure(ctx, record, failure, "the plan did not continue");
    }
    let reason = format!("the canary did not start: {:#}", failure.error);
    match abandon(ctx, record, Step::ShiftTraffic, &reason).await {
        Ok(()) => Failure::provider(
            failure.error.context("the canary did not start; no traffic was moved, the deployment is abandoned and the environment free"),
        ),
        Err(e) => Failure::provider(failure.error.context(format!(
            "the canary did not start; no traffic was moved, but the deployment could not be closed ({:#}); run `rollback` on this record",
            e.error
        ))),
    }
}

/// A provider stayed down in the middle of the plan: traffic goes back to
/// stable so the canary is not left half-shifted; if even that fails, the
/// record says where traffic stood when the router last answered. Exit 3
/// either way.
async fn after_provider_failure(ctx: &Context, router: &Router, record: &mut Record, failure: Failure) -> Failure {
    let reason = format!("a provider failed during the canary: {:#}", failure.error);
    match roll_back(ctx, router, record, &reason, Step::ShiftTraffic).await {
        Ok(()) => Failure::provider(failure.error.context("the canary was rolled back to 100% stable")),
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

/// Saves the router's state before the first change, pins the candidate
/// (the flag's, else the one `gate` recorded, else for an ALB the target
/// group the router names now) and puts it in place on the router. A router
/// whose candidate is another one than this deployment's is never given
/// traffic: with traffic on it already, that is refused.
async fn prepare(ctx: &Context, router: &Router, record: &mut Record, flag: Option<&str>) -> Result<(), Failure> {
    if record.router_before.is_none() {
        let state = router.state().await.provider_failed()?;
        record.candidate_weight = state.candidate_weight;
        record.router_before = Some(state);
        ctx.save(record)?;
    }
    if let Router::CodeDeploy(_) = router {
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
            Router::Alb(_) => match router.state().await.provider_failed()?.candidate {
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

/// A refused lifecycle move as a failure: exit 1 with the words.
pub(crate) fn refused(refused: sluice_core::lifecycle::Refused) -> Failure {
    Failure { exit: Exit::DECLINED, error: anyhow!(refused) }
}

async fn run_plan(
    ctx: &Context,
    router: &Router,
    record: &mut Record,
    pause_at: Option<u8>,
    checks: Option<&Checks>,
) -> Result<Outcome, Failure> {
    let plan = record.strategy.plan();
    let passed = passed_stages(record);
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
        let Some(checks) = checks.filter(|c| !duration.is_zero() && !c.unanalysed) else {
            // All at once: no analysis here (verify-health judges at 100%);
            // `analysis = "none"`: the stage only waits, as configured.
            if !duration.is_zero() {
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
            continue;
        };
        let _ = checks;
        let label = format!("stage {}/{total} {weight}%", i + 1);
        let report = analyse(ctx, &record.version, record.candidate_weight, duration, &label).await?;
        summary::log_verdict(&report);
        markdown.push_str(&format!("#### Stage {}: {weight}%\n\n{}\n", i + 1, summary::verdict_table(&report)));
        let (verdict, cause) = (report.verdict, report.cause);
        let reason = report.reason.clone();
        record.push("shift-traffic", EventDetail::Verdict { stage: Some(i), report: Box::new(report) }, now());
        ctx.save(record)?;
        if verdict != Verdict::Pass {
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
            return Ok(Outcome::new(exit, decision).summary(markdown).error("canary rolled back", &reason));
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
