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
//!
//! This file is the step: its flags, what is checked before anything
//! moves (the lifecycle, `--candidate-upstream`, `--pause-at`, the checks,
//! the lease), and which path runs. The paths live beside it, one concern a
//! file: `prepare` (the router's state saved and the candidate pinned
//! before any traffic moves; one weight set and read back), `plan` (the
//! plan runner: stage by stage), `stage` (one stage judged, and rolled back
//! when it does not pass), `pause` (`--pause-at`, and a pause that
//! expired), `failure` (what a provider failure leaves in the record).
//! Nothing here moves traffic before the record holds the router's state
//! from before the first change.

mod failure;
mod pause;
mod plan;
mod prepare;
mod stage;
#[cfg(test)]
mod tests;

pub(crate) use pause::expire_pause;

use crate::Outcome;
use crate::candidate::check_upstream;
use crate::context::{Common, Context};
use crate::summary;
use anyhow::anyhow;
use clap::Parser;
use failure::{after_provider_failure, record_failure, start_failed};
use pause::check_pause_at;
use plan::run_plan;
use prepare::{prepare, set_weight};
use sluice_core::lifecycle::Step;
use sluice_core::record::Status;
use sluice_core::{Exit, Failure};

/// Move traffic between stable and candidate.
#[derive(Parser, Debug)]
#[command(
    name = "shift-traffic",
    version,
    about = "Move traffic to the candidate: the whole plan of stages with analysis between them, or one weight; rolls a stage that does not pass back to stable.",
    after_help = "Exit codes: 0 done · 1 a decision said no (a stage failed and was rolled back, or the lifecycle refused) · 2 bad input (nothing changed) · 3 a provider failed after retries · 130/143 cancelled.\n\nExamples:\n  shift-traffic -e prd --record out/prd.json --pause-at 25\n  shift-traffic -e dev --record out/dev.json --weight 10\n\nEvery flag also reads an INPUT_* environment variable (INPUT_ENVIRONMENT, INPUT_RECORD, ...). More: https://github.com/sluice-dev/sluice/blob/main/docs/cli.md"
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
    if router.is_codedeploy() && (args.weight.is_some() || args.candidate_upstream.is_some() || args.pause_at.is_some())
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
        (None, router) if analyses && !router.is_codedeploy() => Some(ctx.checks()?),
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
    #[cfg(feature = "aws")]
    if let sluice_providers::router::Router::CodeDeploy(codedeploy) = &router {
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

/// A refused lifecycle move as a failure: exit 1 with the words.
pub(crate) fn refused(refused: sluice_core::lifecycle::Refused) -> Failure {
    Failure { exit: Exit::DECLINED, error: anyhow!(refused) }
}
