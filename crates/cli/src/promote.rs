//! `promote`: make the verified candidate the stable release, write the
//! ledger (the file's entry, or the GitHub deployment's `success`), and hand
//! the release to the next environment: name it as an output, and with
//! `handoff = { kind = "dispatch" }` also start the promotion workflow for
//! it (`workflow_dispatch` with `environment`, `version` and `sha`).
//! Idempotent: promoting a promoted record only repeats its outputs (and
//! dispatches nothing).

use crate::context::{Common, Context, now};
use crate::summary;
use anyhow::{Context as _, anyhow};
use clap::Parser;
use sluice_analysis::Verdict;
use sluice_core::config::Handoff;
use sluice_core::ledger::LedgerOutcome;
use sluice_core::record::{EventDetail, Record, Status};
use sluice_core::{Classify, Exit, Failure, gha};

/// Make the candidate the stable release and hand it to the next environment.
#[derive(Parser, Debug)]
#[command(name = "promote", version, about, long_about = None)]
pub struct Args {
    #[command(flatten)]
    pub common: Common,
}

pub fn main() -> std::process::ExitCode {
    let args = Args::parse();
    crate::run("promote", run(args))
}

pub async fn run(args: Args) -> Result<Exit, Failure> {
    let ctx = Context::load(&args.common)?;
    let mut record = ctx.load_record()?;
    let next = ctx.config.next_environment(&record.environment).map(str::to_owned);
    match record.status {
        Status::Promoted => eprintln!("promote: {} is already promoted in {}", record.version, record.environment),
        Status::Verified => {}
        Status::Shifting
            if record.candidate_weight == 100 && record.last_verdict().is_some_and(|r| r.verdict == Verdict::Pass) => {}
        status => {
            return Err(Failure::input(anyhow!(
                "the candidate is not verified (status {status:?}, {}% of traffic); run shift-traffic to 100% with passing analysis first",
                record.candidate_weight
            )));
        }
    }
    let mut dispatched = None;
    if record.status != Status::Promoted {
        // What the ledger and the hand-off need is checked before anything
        // moves, so a missing token is bad input that changed nothing.
        ctx.ledger()?;
        if matches!(ctx.config.handoff, Handoff::Dispatch { .. }) && next.is_some() {
            ctx.github()?;
        }
        let router = ctx.router();
        router.promote().await.provider_failed()?;
        let now = now();
        record.status = Status::Promoted;
        record.candidate_weight = 0;
        record.push("promote", EventDetail::Promote { next_environment: next.clone() }, now);
        ctx.save(&record)?;
        ctx.finish_ledger(&record, &record.ledger_entry(LedgerOutcome::Promoted, None, now)).await?;
        eprintln!("promote: {} is now stable in {}", record.version, record.environment);
        dispatched = handoff(&ctx, &record, next.as_deref()).await?;
    }
    summary::write(&format!(
        "{}{}\n",
        summary::heading("promote", &record, "stable"),
        match (&next, &dispatched) {
            (Some(n), Some(link)) => format!("Next environment: **{n}**, its promotion [started]({link})."),
            (Some(n), None) => format!("Next environment: **{n}**."),
            (None, _) => "This was the last environment.".to_owned(),
        }
    ));
    let mut outputs = gha::Outputs::default();
    outputs.set("decision", "promoted");
    outputs.set("next_environment", next.unwrap_or_default());
    outputs.set("dispatched", if dispatched.is_some() { "true" } else { "false" });
    outputs.set("record", ctx.record_path.display().to_string());
    outputs.flush().provider_failed()?;
    Ok(Exit::OK)
}

/// Starts the promotion workflow for the next environment when the config
/// says so; returns where its runs can be seen.
async fn handoff(ctx: &Context, record: &Record, next: Option<&str>) -> Result<Option<String>, Failure> {
    let (Handoff::Dispatch { workflow, git_ref }, Some(next)) = (&ctx.config.handoff, next) else {
        return Ok(None);
    };
    let Some(commit) = record.commit.as_deref() else {
        return Err(Failure::input(anyhow!(
            "{} is promoted in {}, but the dispatch hand-off needs its commit SHA, which the record lacks; start the {next} promotion by hand",
            record.version,
            record.environment
        )));
    };
    let github = ctx.github()?;
    github
        .dispatch(workflow, git_ref, &[("environment", next), ("version", &record.version), ("sha", commit)])
        .await
        .with_context(|| {
            format!(
                "{} is promoted in {}, but its promotion to {next} could not be started; start it by hand: gh workflow run {workflow} --ref {git_ref} -f environment={next} -f version={} -f sha={commit}",
                record.version, record.environment, record.version
            )
        })
        .provider_failed()?;
    eprintln!("promote: dispatched {workflow} on {git_ref} for {} in {next}", record.version);
    Ok(Some(github.web_url(&format!("/actions/workflows/{workflow}"))))
}
