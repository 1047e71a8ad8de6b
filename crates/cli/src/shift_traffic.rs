//! `shift-traffic`: move traffic between stable and candidate.
//!
//! With `--weight`, sets one weight. Without, runs the record's strategy:
//! each stage's weight, then analysis for the stage's duration; a stage that
//! does not pass rolls all traffic back to stable (exit 1, or 3 when the
//! metrics could not be read). A re-run continues after the last stage that
//! passed. The router state before the first change is saved in the record
//! before anything moves, so `rollback` can always restore it.

use crate::analyse::analyse;
use crate::context::{Common, Context, now};
use crate::rollback::roll_back;
use crate::summary;
use anyhow::anyhow;
use clap::Parser;
use sluice_analysis::Verdict;
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
    /// Where the candidate is served (embedded router: its base URL).
    #[arg(long, env = "INPUT_CANDIDATE_UPSTREAM", value_name = "URL")]
    pub candidate_upstream: Option<String>,
}

pub fn main() -> std::process::ExitCode {
    let args = Args::parse();
    let common = args.common.clone();
    crate::run_step("shift-traffic", common, run(args))
}

pub async fn run(args: Args) -> Result<Exit, Failure> {
    let ctx = Context::load(&args.common)?;
    let mut record = ctx.load_record()?;
    match record.status {
        Status::Admitted | Status::Shifting | Status::Verified => {}
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
    let router = ctx.router();
    if let Router::CodeDeploy(codedeploy) = &router {
        if args.weight.is_some() || args.candidate_upstream.is_some() {
            return Err(Failure::input(anyhow!(
                "environment {} uses CodeDeploy, which owns the traffic shift: run shift-traffic without --weight and --candidate-upstream (the router's deployment_config chooses the shift)",
                ctx.env().name
            )));
        }
        prepare(&ctx, &router, &mut record, None).await?;
        return crate::codedeploy::run(&ctx, codedeploy, &mut record).await;
    }
    prepare(&ctx, &router, &mut record, args.candidate_upstream.as_deref()).await?;

    match args.weight {
        Some(weight) => {
            set_weight(&ctx, &router, &mut record, weight, None).await?;
            let mut outputs = gha::Outputs::default();
            outputs.set("weight", weight.to_string());
            outputs.set("record", ctx.record_path.display().to_string());
            outputs.flush().provider_failed()?;
            summary::write(&summary::heading("shift-traffic", &record, &format!("candidate at {weight}%")));
            Ok(Exit::OK)
        }
        None => run_plan(&ctx, &router, &mut record).await,
    }
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

async fn run_plan(ctx: &Context, router: &Router, record: &mut Record) -> Result<Exit, Failure> {
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
        if record.candidate_weight != weight {
            set_weight(ctx, router, record, weight, Some(i)).await?;
        }
        if duration.is_zero() {
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

/// Stages with a passing verdict in the record (a re-run skips them).
fn passed_stages(record: &Record) -> Vec<usize> {
    record
        .events
        .iter()
        .filter_map(|e| match &e.detail {
            EventDetail::Verdict { stage: Some(i), report } if report.verdict == Verdict::Pass => Some(*i),
            _ => None,
        })
        .collect()
}
