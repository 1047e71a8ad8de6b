//! `verify-health`: judge the candidate from its metrics.
//!
//! Samples the configured sources for `--duration` (stopping early when the
//! evidence decides), appends the verdict with all its evidence to the
//! record, and exits 0 on pass, 1 on fail or inconclusive, 3 when the metric
//! sources failed. `--replay RECORD` re-judges the samples recorded in a
//! record under the current config, touching nothing.

use crate::analyse::analyse;
use crate::context::{Common, Context, now};
use crate::summary;
use anyhow::anyhow;
use clap::Parser;
use sluice_analysis::{Analysis, Verdict};
use sluice_core::record::{EventDetail, Expect, Record, Status};
use sluice_core::{Classify, Exit, Failure, gha};
use std::path::PathBuf;
use std::time::Duration;

/// Judge the candidate from metrics: pass, fail or inconclusive, with evidence.
#[derive(Parser, Debug)]
#[command(name = "verify-health", version, about, long_about = None)]
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

pub async fn run(args: Args) -> Result<Exit, Failure> {
    let ctx = Context::load(&args.common)?;
    if let Some(path) = &args.replay {
        return replay(&ctx, path);
    }
    let mut record = ctx.load_record()?;
    if record.status.is_final() {
        return Err(Failure::input(anyhow!(
            "this deployment has ended ({:?}); there is no candidate to verify",
            record.status
        )));
    }
    if let Err(holder) = ctx.hold_lease(&record, record.pause().map(|(_, _, expires_at)| expires_at)).await?.result {
        gha::error("environment held", &holder);
        return Err(Failure { exit: Exit::DECLINED, error: anyhow!(holder) });
    }
    let duration = args.duration.unwrap_or_else(|| {
        record.strategy.plan().iter().map(|(_, d)| *d).find(|d| !d.is_zero()).unwrap_or(Duration::from_secs(60))
    });
    let report = analyse(&ctx, &record.version, record.candidate_weight, duration, "verify-health").await?;
    summary::log_verdict(&report);
    let verdict = report.verdict;
    summary::write(&format!(
        "{}{}\n",
        summary::heading("verify-health", &record, &format!("{verdict:?}").to_lowercase()),
        summary::verdict_table(&report)
    ));
    if verdict != Verdict::Pass {
        gha::error("verify-health", &report.reason);
    } else if record.candidate_weight == 100 && record.status == Status::Shifting {
        record.status = Status::Verified;
    }
    record.push("verify-health", EventDetail::Verdict { stage: None, report: Box::new(report) }, now());
    ctx.save(&record)?;
    let mut outputs = gha::Outputs::default();
    outputs.set("decision", format!("{verdict:?}").to_lowercase());
    outputs.set("record", ctx.record_path.display().to_string());
    outputs.flush().provider_failed()?;
    Ok(exit_for(verdict))
}

fn replay(ctx: &Context, path: &std::path::Path) -> Result<Exit, Failure> {
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
    let checks = ctx.config.checks_for(ctx.env());
    let mut worst = Verdict::Pass;
    let mut markdown = summary::heading("verify-health --replay", &record, "replay");
    for (stage, recorded) in verdicts {
        let replayed = Analysis::replay(
            checks.clone(),
            ctx.config.analysis.policy.clone(),
            recorded.intervals.clone(),
            recorded.candidate_weight,
        );
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
    summary::write(&markdown);
    let mut outputs = gha::Outputs::default();
    outputs.set("decision", format!("{worst:?}").to_lowercase());
    outputs.flush().provider_failed()?;
    Ok(exit_for(worst))
}
