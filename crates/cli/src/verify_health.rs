//! `verify-health`: judge the candidate from its metrics.
//!
//! Samples the configured sources for `--duration` (stopping early when the
//! evidence decides), appends the verdict with all its evidence to the
//! record, and exits 0 on pass, 1 on fail or inconclusive, 3 when the metric
//! sources failed. `--replay RECORD` re-judges the samples recorded in a
//! record under the current config, touching nothing.

use crate::Outcome;
use crate::analyse::{Scope, Window, analyse_in};
use crate::context::{Common, Context, now};
use crate::shift_traffic::refused;
use crate::summary;
use anyhow::anyhow;
use clap::Parser;
use sluice_analysis::{Analysis, Verdict};
use sluice_core::lifecycle::Step;
use sluice_core::record::{EventDetail, Expect, Record, Status};
use sluice_core::{Classify, Exit, Failure};
use std::path::PathBuf;
use std::time::Duration;

/// Judge the candidate from metrics: pass, fail or inconclusive, with evidence.
#[derive(Parser, Debug)]
#[command(
    name = "verify-health",
    version,
    about = "Judge the candidate from its metrics: pass, fail, inconclusive or error, with the evidence appended to the record.",
    after_help = "Exit codes: 0 done · 1 a decision said no (fail or inconclusive) · 2 bad input (nothing changed) · 3 a provider failed after retries · 130/143 cancelled.\n\nExamples:\n  verify-health -e prd --record out/prd.json --duration 2m\n  verify-health -e prd --record out/prd.json --replay incident.json\n\nEvery flag also reads an INPUT_* environment variable (INPUT_ENVIRONMENT, INPUT_RECORD, ...). More: https://github.com/sluice-dev/sluice/blob/main/docs/cli.md"
)]
pub struct Args {
    #[command(flatten)]
    pub common: Common,
    /// How long to analyse (default: the strategy's stage duration, else 1m).
    #[arg(long, env = "INPUT_DURATION", value_parser = parse_duration)]
    pub duration: Option<Duration>,
    /// Re-judge the samples recorded in this record under the current
    /// config's checks, instead of measuring. Writes nothing.
    #[arg(long, value_name = "RECORD")]
    pub replay: Option<PathBuf>,
    /// Calibrate the checks on live traffic (A/A): route the stable release
    /// as its own candidate through the environment's plan and report how
    /// often each check would have failed it. Needs no record, keeps none;
    /// refused while a deployment runs. Exit 1 when a check would have
    /// failed.
    #[arg(long, env = "INPUT_CALIBRATE", conflicts_with_all = ["replay", "duration"])]
    pub calibrate: bool,
}

fn parse_duration(text: &str) -> Result<Duration, String> {
    sluice_core::config::parse_duration(text)
}

pub fn main() -> std::process::ExitCode {
    entry(Args::parse())
}

/// Runs the step with parsed flags: the one entry point of the `verify-health`
/// binary and of `sluice verify-health`.
pub fn entry(args: Args) -> std::process::ExitCode {
    let common = args.common.clone();
    crate::run_step("verify-health", common, run(args))
}

fn exit_for(verdict: Verdict) -> Exit {
    match verdict {
        Verdict::Pass => Exit::OK,
        Verdict::Fail | Verdict::Inconclusive => Exit::DECLINED,
        Verdict::Error => Exit::PROVIDER,
    }
}

pub async fn run(args: Args) -> Result<Outcome, Failure> {
    if args.calibrate {
        return crate::calibrate::run(&args.common).await;
    }
    let ctx = Context::load(&args.common)?;
    if ctx.env().has_targets() {
        if args.replay.is_some() {
            return Err(crate::waves::not_for_targets(&ctx, "verify-health --replay"));
        }
        return crate::waves::verify(&ctx, args.duration).await;
    }
    if let Some(path) = &args.replay {
        return replay(&ctx, path);
    }
    let mut record = ctx.load_record()?;
    if let Err(refused) = record.may_act(Step::VerifyHealth, "judge the candidate") {
        return Ok(Outcome::refused("verify-health", &record, &refused));
    }
    let checks = ctx.checks_in(&record)?;
    if checks.unanalysed {
        return unanalysed(&ctx, record);
    }
    let why_alarms_only = ctx.confirm_builtin(&checks, &record).await?;
    if let Err(holder) = ctx.hold_lease(&record, record.pause().map(|(_, _, expires_at)| expires_at)).await?.result {
        return Ok(Outcome::declined("held")
            .summary(format!("{}{holder}\n", summary::heading("verify-health", &record, "environment held")))
            .error("environment held", &holder));
    }
    let duration = args.duration.unwrap_or_else(|| {
        record.strategy.plan().iter().map(|(_, d)| *d).find(|d| !d.is_zero()).unwrap_or(Duration::from_secs(60))
    });
    let scope = Scope::for_record(&ctx, &record)?;
    let window = Window::alone("verify-health", duration);
    let report =
        analyse_in(&ctx, &scope, &checks.specs, &record.version, record.candidate_weight, window, Vec::new()).await?;
    summary::log_verdict(&report);
    let verdict = report.verdict;
    let mut markdown = summary::heading("verify-health", &record, &format!("{verdict:?}").to_lowercase());
    if let Some(note) = checks.note() {
        markdown.push_str(&format!("{note}\n\n"));
    }
    if let Some(why) = why_alarms_only {
        markdown.push_str(&format!("{why}\n\n"));
    }
    markdown.push_str(&format!("{}\n", summary::verdict_table(&report)));
    let reason = report.reason.clone();
    record.push("verify-health", EventDetail::Verdict { stage: None, report: Box::new(report) }, now());
    // Verified only on the evidence promote needs; a verdict that does not
    // pass takes a verification back.
    let to = match record.status() {
        Status::Shifting | Status::Verified if crate::promote::evidence(&ctx, &record).is_ok() => Status::Verified,
        Status::Shifting | Status::Verified => Status::Shifting,
        other => other,
    };
    record.transition(Step::VerifyHealth, to, now()).map_err(refused)?;
    ctx.save(&record)?;
    let outcome = Outcome::new(exit_for(verdict), format!("{verdict:?}").to_lowercase()).summary(markdown);
    Ok(if verdict == Verdict::Pass { outcome } else { outcome.error("verify-health", &reason) })
}

/// An environment with `analysis = "none"`: nothing to judge, said out
/// loud; no verdict is made up. At 100% the deployment is verified: that is
/// the evidence an unanalysed promotion rests on.
pub(crate) fn unanalysed(ctx: &Context, mut record: Record) -> Result<Outcome, Failure> {
    let to = match record.status() {
        Status::Shifting | Status::Verified if record.candidate_weight == 100 => Status::Verified,
        other => other,
    };
    record.transition(Step::VerifyHealth, to, now()).map_err(refused)?;
    ctx.save(&record)?;
    Ok(Outcome::ok("unanalysed").summary(format!(
        "{}Environment {} says `analysis = \"none\"`: nothing was judged, and no verdict is recorded.\n",
        summary::heading("verify-health", &record, "unanalysed"),
        ctx.env().name
    )))
}

fn replay(ctx: &Context, path: &std::path::Path) -> Result<Outcome, Failure> {
    let record = Record::load(path, &Expect { app: Some(&ctx.config.app), ..Expect::default() }).bad_input()?;
    let verdicts: Vec<(Option<usize>, &sluice_analysis::AnalysisReport)> = record
        .events
        .iter()
        .filter_map(|e| match &e.detail {
            EventDetail::Verdict { stage, report } => Some((*stage, report.as_ref())),
            _ => None,
        })
        .collect();
    if verdicts.is_empty() {
        return Err(Failure::input(anyhow!("record {} holds no verdicts to replay", path.display())));
    }
    let checks = ctx.checks_in(&record)?.specs;
    let mut worst = Verdict::Pass;
    let mut markdown = summary::heading("verify-health --replay", &record, "replay");
    for (stage, recorded) in verdicts {
        let replayed = Analysis::rejudge(checks.clone(), ctx.config.analysis.policy.clone(), recorded);
        let label = stage.map_or("verify-health".to_owned(), |s| format!("stage {}", s + 1));
        eprintln!("{label}: recorded {:?}, replayed {:?}", recorded.verdict, replayed.verdict);
        summary::log_verdict(&replayed);
        markdown.push_str(&format!(
            "#### {label}: recorded {:?}, replayed {:?}\n\n{}\n",
            recorded.verdict,
            replayed.verdict,
            summary::verdict_table(&replayed)
        ));
        if replayed.verdict != Verdict::Pass && worst == Verdict::Pass {
            worst = replayed.verdict;
        }
    }
    Ok(Outcome::new(exit_for(worst), format!("{worst:?}").to_lowercase()).summary(markdown))
}
