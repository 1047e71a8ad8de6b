//! `promote`: make the verified candidate the stable release, write the
//! ledger entry, and name the next environment. Idempotent: promoting a
//! promoted record only repeats its outputs.

use crate::context::{Common, Context, append_ledger, now};
use crate::summary;
use anyhow::anyhow;
use clap::Parser;
use sluice_analysis::Verdict;
use sluice_core::ledger::LedgerOutcome;
use sluice_core::record::{EventDetail, Status};
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
    let common = args.common.clone();
    crate::run_step("promote", common, run(args))
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
    if record.status != Status::Promoted {
        let router = ctx.router();
        router.promote().await.provider_failed()?;
        let now = now();
        record.status = Status::Promoted;
        record.candidate_weight = 0;
        record.push("promote", EventDetail::Promote { next_environment: next.clone() }, now);
        ctx.save(&record)?;
        append_ledger(ctx.ledger_path(), &record.ledger_entry(LedgerOutcome::Promoted, None, now))?;
        eprintln!("promote: {} is now stable in {}", record.version, record.environment);
    }
    summary::write(&format!(
        "{}{}\n",
        summary::heading("promote", &record, "stable"),
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
