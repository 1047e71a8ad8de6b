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
use sluice_core::config::NotifyEvent;
use sluice_core::ledger::LedgerOutcome;
use sluice_core::record::{EventDetail, Record, Status};
use sluice_core::{Classify, Exit, Failure, gha};
use sluice_providers::git::{self, Shipped};
use sluice_providers::ledger::Ledger;

/// Make the candidate the stable release and hand it to the next environment.
#[derive(Parser, Debug)]
#[command(name = "promote", version, about, long_about = None)]
pub struct Args {
    #[command(flatten)]
    pub common: Common,
}

pub fn main() -> std::process::ExitCode {
    entry(Args::parse())
}

/// Runs the step with parsed flags: the one entry point of the `promote`
/// binary and of `sluice promote`.
pub fn entry(args: Args) -> std::process::ExitCode {
    let common = args.common.clone();
    crate::run_step("promote", common, run(args))
}

pub async fn run(args: Args) -> Result<Exit, Failure> {
    let ctx = Context::load(&args.common)?;
    let mut record = ctx.load_record()?;
    let next = ctx.config.next_environment(&record.environment).map(str::to_owned);
    // The latest judgment stands: a verify-health that failed after the
    // canary passed blocks the promotion.
    if record.status != Status::Promoted
        && let Some(report) = record.last_verdict().filter(|r| r.verdict != Verdict::Pass)
    {
        let verdict = format!("{:?}", report.verdict).to_lowercase();
        let reason = format!("the latest health verdict is {verdict}: {}", report.reason);
        gha::error("promote refused", &reason);
        summary::write(&format!("{}{reason}\n", summary::heading("promote", &record, "refused")));
        eprintln!("promote: refused; {reason}; roll back, or verify again");
        return Ok(Exit::DECLINED);
    }
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
    let mut notes = Vec::new();
    let mut dispatched = None;
    if record.status != Status::Promoted {
        // What the ledger and the hand-off need is checked before anything
        // moves, so a missing token is bad input that changed nothing.
        let ledger = ctx.ledger()?;
        if let Err(holder) = ctx.hold_lease(&record, None).await?.result {
            gha::error("environment held", &holder);
            return Err(Failure { exit: Exit::DECLINED, error: anyhow!(holder) });
        }
        if matches!(ctx.config.handoff, Handoff::Dispatch { .. }) && next.is_some() {
            ctx.github()?;
        }
        // What this deployment ships, for the lead time; worked out before
        // anything changes, and never a reason to fail the promotion.
        let shipped = shipped_commits(&ctx, &ledger, &record);
        if let Some(note) = &shipped.note {
            eprintln!("promote: {note}");
            notes.push(note.clone());
        }
        let router = ctx.router();
        router.promote().await.provider_failed()?;
        let now = now();
        record.status = Status::Promoted;
        record.candidate_weight = 0;
        record.push("promote", EventDetail::Promote { next_environment: next.clone() }, now);
        let mut entry = record.ledger_entry(LedgerOutcome::Promoted, None, now);
        entry.commits = shipped.commits;
        let shipped = entry.commits.len();
        ctx.finish_ledger(&mut record, entry).await?;
        eprintln!(
            "promote: {} is now stable in {} ({shipped} commit{} shipped)",
            record.version,
            record.environment,
            if shipped == 1 { "" } else { "s" }
        );
        let reason = match &next {
            Some(n) => format!("{} is stable in {}; next environment: {n}", record.version, record.environment),
            None => format!("{} is stable in {}, the last environment", record.version, record.environment),
        };
        crate::notify::send("promote", NotifyEvent::Promoted, "promoted", &reason).await;
        dispatched = handoff(&ctx, &record, next.as_deref()).await?;
    } else if record.ledger_due.is_some() {
        // An earlier run promoted but could not write the ledger: it stopped
        // there, before the hand-off, so both are done now.
        ctx.settle_ledger(&mut record, true).await?;
        dispatched = handoff(&ctx, &record, next.as_deref()).await?;
    }
    summary::write(&format!(
        "{}{}{}\n",
        summary::heading("promote", &record, "stable"),
        notes.iter().map(|n| format!("Note: {n}\n\n")).collect::<String>(),
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

/// The commits this deployment brings to its environment: from the commit of
/// the last promotion of the same app there (from the ledger) to this one.
fn shipped_commits(ctx: &Context, ledger: &Ledger, record: &Record) -> Shipped {
    let Some(commit) = &record.commit else {
        return Shipped {
            commits: Vec::new(),
            note: Some("the record has no commit (pass --commit to gate): no lead time for it".into()),
        };
    };
    let Ledger::File(path) = ledger else {
        return Shipped {
            commits: Vec::new(),
            note: Some("the github ledger keeps no commit lists yet: no lead time recorded for this deployment".into()),
        };
    };
    let previous = match sluice_core::ledger::read_file(path) {
        Ok(entries) => entries
            .into_iter()
            .rev()
            .find(|e| {
                e.app == record.app && e.environment == record.environment && e.outcome == LedgerOutcome::Promoted
            })
            .and_then(|e| e.commit),
        Err(e) => {
            return Shipped { commits: Vec::new(), note: Some(format!("{e}; no commits recorded for the lead time")) };
        }
    };
    git::shipped_commits(&ctx.config_dir, previous.as_deref(), commit)
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
