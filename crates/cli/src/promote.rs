//! `promote`: make the verified candidate the stable release, write the
//! ledger entry, and name the next environment. Idempotent: promoting a
//! promoted record only repeats its outputs.

use crate::context::{Common, Context, append_ledger, now};
use crate::summary;
use anyhow::anyhow;
use clap::Parser;
use sluice_analysis::Verdict;
use sluice_core::config::NotifyEvent;
use sluice_core::ledger::LedgerOutcome;
use sluice_core::record::{EventDetail, Status};
use sluice_core::{Classify, Exit, Failure, gha};
use sluice_providers::git::{self, Shipped};

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
    if record.status != Status::Promoted {
        // What this deployment ships, for the lead time; worked out before
        // anything changes, and never a reason to fail the promotion.
        let shipped = shipped_commits(&ctx, &record);
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
        ctx.save(&record)?;
        let mut entry = record.ledger_entry(LedgerOutcome::Promoted, None, now);
        entry.commits = shipped.commits;
        append_ledger(ctx.ledger_path(), &entry)?;
        eprintln!(
            "promote: {} is now stable in {} ({} commit{} shipped)",
            record.version,
            record.environment,
            entry.commits.len(),
            if entry.commits.len() == 1 { "" } else { "s" }
        );
        let reason = match &next {
            Some(n) => format!("{} is stable in {}; next environment: {n}", record.version, record.environment),
            None => format!("{} is stable in {}, the last environment", record.version, record.environment),
        };
        crate::notify::send("promote", NotifyEvent::Promoted, "promoted", &reason).await;
    }
    summary::write(&format!(
        "{}{}{}\n",
        summary::heading("promote", &record, "stable"),
        notes.iter().map(|n| format!("Note: {n}\n\n")).collect::<String>(),
        match &next {
            Some(n) => format!("Next environment: **{n}**."),
            None => "This was the last environment.".to_owned(),
        }
    ));
    let mut outputs = gha::Outputs::default();
    outputs.set("decision", "promoted");
    outputs.set("next_environment", next.unwrap_or_default());
    outputs.set("record", ctx.record_path.display().to_string());
    outputs.flush().provider_failed()?;
    Ok(Exit::OK)
}

/// The commits this deployment brings to its environment: from the commit of
/// the last promotion of the same app there (from the ledger) to this one.
fn shipped_commits(ctx: &Context, record: &sluice_core::record::Record) -> Shipped {
    let Some(commit) = &record.commit else {
        return Shipped {
            commits: Vec::new(),
            note: Some("the record has no commit (pass --commit to gate): no lead time for it".into()),
        };
    };
    let previous = match sluice_core::ledger::read_file(ctx.ledger_path()) {
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
