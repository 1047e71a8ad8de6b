//! `promote`: make the verified candidate the stable release, write the
//! ledger (the file's entry, or the GitHub deployment's `success`), and hand
//! the release to the next environment: name it as an output, and with
//! `handoff = { kind = "dispatch" }` also start the promotion workflow for
//! it (`workflow_dispatch` with `environment`, `version` and `sha`).
//! Idempotent: promoting a promoted record only repeats its outputs (and
//! dispatches nothing).

use crate::Outcome;
use crate::context::{Common, Context, now};
use crate::shift_traffic::refused;
use crate::summary;
#[cfg(feature = "github")]
use anyhow::{Context as _, anyhow};
use clap::Parser;
use sluice_analysis::{AnalysisReport, Verdict};
use sluice_core::config::NotifyEvent;
use sluice_core::config::{AnalysisMode, Handoff};
use sluice_core::ledger::LedgerOutcome;
use sluice_core::lifecycle::Step;
use sluice_core::record::{EventDetail, Record, Status};
use sluice_core::{Classify, Failure};
use sluice_providers::git::{self, Shipped};
use sluice_providers::ledger::Ledger;
use std::time::Duration;

/// Make the candidate the stable release and hand it to the next environment.
#[derive(Parser, Debug)]
#[command(
    name = "promote",
    version,
    about = "Make the verified candidate the stable release, write the ledger, and hand the release to the next environment. Needs a passing verdict at 100% (or analysis = \"none\").",
    after_help = "Exit codes: 0 done · 1 a decision said no (no evidence to promote on, or the lifecycle refused) · 2 bad input (nothing changed) · 3 a provider failed after retries · 130/143 cancelled.\n\nExamples:\n  promote -e prd --record out/prd.json\n  INPUT_ENVIRONMENT=prd INPUT_RECORD=out/prd.json promote\n\nEvery flag also reads an INPUT_* environment variable (INPUT_ENVIRONMENT, INPUT_RECORD, ...). More: https://github.com/sluice-dev/sluice/blob/main/docs/cli.md"
)]
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

pub async fn run(args: Args) -> Result<Outcome, Failure> {
    let ctx = Context::load(&args.common)?;
    let mut record = ctx.load_record()?;
    if let Err(refused) = record.may_act(Step::Promote, "promote it") {
        // Say what the evidence lacks, too (a verdict that failed, ...).
        let mut outcome = Outcome::refused("promote", &record, &refused);
        if let Err(why) = evidence(&ctx, &record) {
            let message = format!("{refused} ({why})");
            eprintln!("promote: {message}");
            outcome = outcome.error("promote refused", &message);
        }
        return Ok(outcome);
    }
    let next = ctx.config.next_environment(&record.environment).map(str::to_owned);
    let mut notes = Vec::new();
    let mut dispatched = None;
    if record.status() != Status::Promoted {
        // No promotion without evidence: the latest judgment stands, and it
        // must be a pass at 100% over the time the plan asks for.
        let evidence = match evidence(&ctx, &record) {
            Ok(evidence) => evidence,
            Err(why) => {
                let reason = format!("{} has no evidence to promote on: {why}", record.subject());
                eprintln!("promote: refused; {reason}");
                return Ok(Outcome::declined("refused")
                    .summary(format!("{}{}\n", summary::heading("promote", &record, "refused"), reason))
                    .error("promote refused", &reason));
            }
        };
        eprintln!("promote: evidence: {}", evidence.describe());
        notes.push(format!("Evidence: {}.", evidence.describe()));
        // What the ledger and the hand-off need is checked before anything
        // moves, so a missing token is bad input that changed nothing.
        let ledger = ctx.ledger()?;
        if let Err(holder) = ctx.hold_lease(&record, None).await?.result {
            return Ok(Outcome::declined("held")
                .summary(format!("{}{holder}\n", summary::heading("promote", &record, "environment held")))
                .error("environment held", &holder));
        }
        if matches!(ctx.config.handoff, Handoff::Dispatch { .. }) && next.is_some() {
            #[cfg(feature = "github")]
            ctx.github()?;
            #[cfg(not(feature = "github"))]
            return Err(crate::features::left_out("handoff (kind = \"dispatch\")"));
        }
        // What this deployment ships, for the lead time; worked out before
        // anything changes, and never a reason to fail the promotion.
        let shipped = shipped_commits(&ctx, &ledger, &record).await;
        if let Some(note) = &shipped.note {
            eprintln!("promote: {note}");
            notes.push(format!("Note: {note}"));
        }
        if ctx.env().has_targets() {
            crate::waves::promote_routers(&ctx, &mut record).await?;
            for t in &mut record.targets {
                t.candidate_weight = 0;
            }
        } else {
            ctx.router()?.promote().await.provider_failed()?;
        }
        let now = now();
        record.transition(Step::Promote, Status::Promoted, now).map_err(refused)?;
        record.candidate_weight = 0;
        let unanalysed = matches!(evidence, Evidence::Unanalysed);
        record.push("promote", EventDetail::Promote { next_environment: next.clone(), unanalysed }, now);
        let mut entry = record.ledger_entry(LedgerOutcome::Promoted, None, now);
        entry.unanalysed = unanalysed;
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
    } else {
        eprintln!("promote: {} is already promoted", record.subject());
    }
    let markdown = format!(
        "{}{}{}\n",
        summary::heading("promote", &record, "stable"),
        notes.iter().map(|n| format!("{n}\n\n")).collect::<String>(),
        match (&next, &dispatched) {
            (Some(n), Some(link)) => format!("Next environment: **{n}**, its promotion [started]({link})."),
            (Some(n), None) => format!("Next environment: **{n}**."),
            (None, _) => "This was the last environment.".to_owned(),
        }
    );
    Ok(Outcome::ok("promoted")
        .summary(markdown)
        .output("next_environment", next.unwrap_or_default())
        .output("dispatched", if dispatched.is_some() { "true" } else { "false" }))
}

/// What a promotion rests on.
#[derive(Debug)]
pub(crate) enum Evidence {
    /// A passing verdict at 100%, re-judged from its recorded samples under
    /// the config's checks, over this long.
    Verdict { analysed: Duration, checks: usize },
    /// CodeDeploy ran the shift and its deployment succeeded (its alarms
    /// and hooks judged it).
    CodeDeploy { deployment: String },
    /// The environment says `analysis = "none"`: promoted on nothing,
    /// recorded as unanalysed.
    Unanalysed,
}

impl Evidence {
    pub fn describe(&self) -> String {
        match self {
            Evidence::Verdict { analysed, checks } => format!(
                "a passing verdict at 100% over {} ({checks} check{})",
                humantime::format_duration(Duration::from_secs(analysed.as_secs())),
                if *checks == 1 { "" } else { "s" }
            ),
            Evidence::CodeDeploy { deployment } => format!("CodeDeploy deployment {deployment} succeeded"),
            Evidence::Unanalysed => "none: the environment says analysis = \"none\" (recorded as unanalysed)".into(),
        }
    }
}

/// The evidence a promotion needs, or why the record does not hold it: the
/// latest verdict passed, was taken at 100%, covered at least the plan's
/// last stage (or 1m when the plan has no analysis at 100%, as all-at-once),
/// and still passes when its recorded samples are judged again under the
/// config's checks (so an edited verdict does not promote).
pub(crate) fn evidence(ctx: &Context, record: &Record) -> Result<Evidence, String> {
    if ctx.env().has_targets() {
        return match crate::waves::evidence(ctx, record)? {
            (_, 0) => Ok(Evidence::Unanalysed),
            (analysed, checks) => Ok(Evidence::Verdict { analysed, checks }),
        };
    }
    if ctx.config.analysis_for(ctx.env()) == AnalysisMode::None {
        return match record.candidate_weight {
            100 => Ok(Evidence::Unanalysed),
            w => Err(format!("the candidate takes {w}% of traffic, not 100%; run `shift-traffic` to finish the plan")),
        };
    }
    let last_verdict = record.events.iter().rposition(|e| matches!(e.detail, EventDetail::Verdict { .. }));
    if ctx.router().is_ok_and(|r| r.is_codedeploy()) {
        let succeeded = record.events.iter().enumerate().rev().find_map(|(i, e)| match &e.detail {
            EventDetail::Deployment { id, status, .. } if status == "Succeeded" => Some((i, id.clone())),
            _ => None,
        });
        if let Some((at, deployment)) = succeeded
            && last_verdict.is_none_or(|v| v < at)
        {
            return Ok(Evidence::CodeDeploy { deployment });
        }
    }
    let Some(report) = record.last_verdict() else {
        return Err("no health verdict yet; judge the candidate at 100% with `verify-health`".into());
    };
    if report.verdict != Verdict::Pass {
        return Err(format!(
            "the latest health verdict is {}: {}; roll back, or verify again",
            format!("{:?}", report.verdict).to_lowercase(),
            report.reason
        ));
    }
    if report.candidate_weight != Some(100) || record.candidate_weight != 100 {
        return Err(format!(
            "the latest passing verdict was taken at {}%, not at 100%; take the candidate to 100% and run `verify-health`",
            report.candidate_weight.unwrap_or(record.candidate_weight)
        ));
    }
    let analysed = analysed(report);
    let required = ctx.config.min_final_analysis(&record.strategy);
    // One interval of slack: the first interval starts as the sampler does.
    let slack = ctx.config.interval();
    if analysed + slack < required {
        return Err(format!(
            "the passing verdict at 100% covers {}, less than the {} required (`[analysis] min_final_analysis`, else the plan's last stage); run `verify-health --duration {}`",
            humantime::format_duration(Duration::from_secs(analysed.as_secs())),
            humantime::format_duration(required),
            humantime::format_duration(required)
        ));
    }
    let checks = ctx.checks_in(record).map_err(|f| format!("{:#}", f.error))?.specs;
    let replayed = sluice_analysis::Analysis::rejudge(checks.clone(), ctx.config.analysis.policy.clone(), report);
    if replayed.verdict != Verdict::Pass {
        return Err(format!(
            "the recorded samples of the passing verdict do not pass under the config's checks ({}: {}); verify again",
            format!("{:?}", replayed.verdict).to_lowercase(),
            replayed.reason
        ));
    }
    Ok(Evidence::Verdict { analysed, checks: checks.len() })
}

/// The time a verdict covered at its own weight: from its first interval's
/// start to its last one's end, without the intervals it carried over from
/// the previous stage (routed at that stage's weight).
pub(crate) fn analysed(report: &AnalysisReport) -> Duration {
    match (report.own_intervals().first(), report.own_intervals().last()) {
        (Some(first), Some(last)) => Duration::try_from(last.end.duration_since(first.start)).unwrap_or_default(),
        _ => Duration::ZERO,
    }
}

/// The commits this deployment brings to its environment: from the commit of
/// the last promotion of the same app there (from the ledger) to this one.
async fn shipped_commits(ctx: &Context, ledger: &Ledger, record: &Record) -> Shipped {
    let Some(commit) = &record.commit else {
        return Shipped {
            commits: Vec::new(),
            note: Some("the record has no commit (pass --commit to gate): no lead time for it".into()),
        };
    };
    #[cfg_attr(not(feature = "github"), allow(irrefutable_let_patterns))]
    let Ledger::File(path) = ledger else {
        // The GitHub ledger lists them (compare) when it writes the entry.
        return Shipped { commits: Vec::new(), note: None };
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
    git::shipped_commits(&ctx.config_dir, previous.as_deref(), commit).await
}

/// Starts the promotion workflow for the next environment when the config
/// says so; returns where its runs can be seen.
#[cfg(feature = "github")]
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

/// Without GitHub support: the refusal `features::load` gives a dispatch
/// hand-off when the config is loaded.
#[cfg(not(feature = "github"))]
async fn handoff(ctx: &Context, _: &Record, next: Option<&str>) -> Result<Option<String>, Failure> {
    match (&ctx.config.handoff, next) {
        (Handoff::Dispatch { .. }, Some(_)) => Err(crate::features::left_out("handoff (kind = \"dispatch\")")),
        _ => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_analysis::{Analysis, Interval, Policy};

    fn interval(second: i64) -> Interval {
        let at = |s: i64| jiff::Timestamp::from_second(1_700_000_000 + s).expect("valid");
        serde_json::from_value(serde_json::json!({ "start": at(second), "end": at(second + 1) })).expect("interval")
    }

    #[test]
    fn the_time_analysed_leaves_out_the_intervals_carried_from_the_previous_stage() {
        // 6 s of the previous stage carried, then 4 s at this stage's weight.
        let mut analysis =
            Analysis::new(Vec::new(), Policy::default()).planned(4).carrying((0..6).map(interval).collect());
        for s in 6..10 {
            analysis.observe(interval(s));
        }
        let report = analysis.finish();
        assert_eq!((report.carried_intervals, report.intervals.len()), (6, 10));
        assert_eq!(analysed(&report), Duration::from_secs(4));
        let own = AnalysisReport { carried_intervals: 0, ..report };
        assert_eq!(analysed(&own), Duration::from_secs(10));
    }
}
