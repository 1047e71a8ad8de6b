//! `gate`: may this release enter this environment?
//!
//! Checks the promotion order (the release was promoted in the previous
//! environment), the soak time there, and that the record is not for a
//! deployment that already ended. Creates the record when it does not exist.
//! Exit 1 when blocked.

use crate::context::{Common, Context, now};
use crate::summary;
use anyhow::anyhow;
use clap::Parser;
use sluice_core::config::Strategy;
use sluice_core::ledger::{ChangeKind, LedgerOutcome};
use sluice_core::record::{EventDetail, GateCheck, NewRecord, Record, RecordError, Status};
use sluice_core::{Classify, Exit, Failure, env, gha, names};

/// Decide whether a release may enter an environment.
#[derive(Parser, Debug)]
#[command(name = "gate", version, about, long_about = None)]
pub struct Args {
    #[command(flatten)]
    pub common: Common,
    /// The release to deploy (e.g. v1.4.2).
    #[arg(long, env = "INPUT_RELEASE", value_name = "VERSION")]
    pub release: String,
    /// The commit SHA of the release (default: $GITHUB_SHA).
    #[arg(long, env = "INPUT_COMMIT", value_name = "SHA")]
    pub commit: Option<String>,
    /// Override the environment's strategy: `canary:10,50,100@30s`,
    /// `blue-green@5m` or `all-at-once`.
    #[arg(long, env = "INPUT_STRATEGY", value_parser = Strategy::parse_override)]
    pub strategy: Option<Strategy>,
    /// This deployment is an unplanned fix (counts in the rework rate).
    #[arg(long, env = "INPUT_HOTFIX")]
    pub hotfix: bool,
    /// An incident this deployment is linked to.
    #[arg(long, env = "INPUT_INCIDENT", value_name = "ID")]
    pub incident: Option<String>,
}

pub fn main() -> std::process::ExitCode {
    let args = Args::parse();
    let common = args.common.clone();
    crate::run_step("gate", common, run(args))
}

pub async fn run(args: Args) -> Result<Exit, Failure> {
    let ctx = Context::load(&args.common)?;
    names::check("release", &args.release).map_err(|m| Failure::input(anyhow!(m)))?;
    let commit = args.commit.clone().or_else(|| env::var(env::GITHUB_SHA));
    if let Some(commit) = &commit {
        names::check_commit(commit).map_err(|m| Failure::input(anyhow!(m)))?;
    }
    let now = now();
    let mut record = match Record::load(&ctx.record_path, &Default::default()) {
        Err(RecordError::Missing { .. }) => Record::new(
            NewRecord {
                app: ctx.config.app.clone(),
                environment: ctx.env().name.clone(),
                version: args.release.clone(),
                commit: commit.clone(),
                change: if args.hotfix { ChangeKind::Hotfix } else { ChangeKind::Planned },
                incident: args.incident.clone(),
                strategy: args.strategy.clone().unwrap_or_else(|| ctx.config.strategy_for(ctx.env())),
                triggered_by: env::actor(),
                run_url: env::run_url(),
            },
            now,
        ),
        Ok(_) => {
            let record = ctx.load_record()?;
            if record.version != args.release {
                return Err(Failure::input(anyhow!(
                    "record {} is for release {}, not {}; pass a new --record path for a new release",
                    ctx.record_path.display(),
                    record.version,
                    args.release
                )));
            }
            if record.status.is_final() {
                return Err(Failure::input(anyhow!(
                    "record {} is for a deployment that has ended ({:?}); pass a new --record path to deploy again",
                    ctx.record_path.display(),
                    record.status
                )));
            }
            record
        }
        Err(e) => return Err(Failure::input(e)),
    };

    let checks = checks(&ctx, &record, now)?;
    let allowed = checks.iter().all(|c| c.passed);
    record.status = if allowed { Status::Admitted } else { Status::Blocked };
    record.push("gate", EventDetail::Gate { allowed, checks: checks.clone() }, now);
    ctx.save(&record)?;

    let decision = if allowed { "allow" } else { "block" };
    for check in &checks {
        eprintln!("gate: {} {}: {}", if check.passed { "pass " } else { "BLOCK" }, check.name, check.detail);
    }
    summary::write(&format!("{}{}\n", summary::heading("gate", &record, decision), summary::gate_table(&checks)));
    let mut outputs = gha::Outputs::default();
    outputs.set("decision", decision);
    outputs.set("record", ctx.record_path.display().to_string());
    outputs.set("environment", record.environment.clone());
    outputs.flush().provider_failed()?;
    if allowed {
        Ok(Exit::OK)
    } else {
        let blocked: Vec<&str> = checks.iter().filter(|c| !c.passed).map(|c| c.detail.as_str()).collect();
        gha::error("gate blocked", &blocked.join("; "));
        Ok(Exit::DECLINED)
    }
}

fn checks(ctx: &Context, record: &Record, now: jiff::Timestamp) -> Result<Vec<GateCheck>, Failure> {
    let env = ctx.env();
    let mut checks = Vec::new();
    if ctx.env_index == 0 {
        checks.push(GateCheck {
            name: "order".into(),
            passed: true,
            detail: format!("{} is the first environment", env.name),
        });
        return Ok(checks);
    }
    let previous = &ctx.config.environments[ctx.env_index - 1].name;
    let ledger = sluice_core::ledger::read_file(ctx.ledger_path()).bad_input()?;
    let same_release = |e: &&sluice_core::ledger::LedgerEntry| {
        e.app == record.app
            && e.environment == *previous
            && match (&record.commit, &e.commit) {
                (Some(a), Some(b)) => a == b && e.version == record.version,
                _ => e.version == record.version,
            }
    };
    let promoted = ledger.iter().filter(same_release).rfind(|e| e.outcome == LedgerOutcome::Promoted);
    let reverted = ledger
        .iter()
        .filter(same_release)
        .any(|e| e.outcome == LedgerOutcome::Reverted && promoted.is_some_and(|p| e.finished_at > p.finished_at));
    match promoted {
        Some(_) if reverted => checks.push(GateCheck {
            name: "order".into(),
            passed: env.allow_out_of_order,
            detail: format!("{} was rolled back in {previous} after its promotion", record.version),
        }),
        Some(p) => {
            checks.push(GateCheck {
                name: "order".into(),
                passed: true,
                detail: format!("{} was promoted in {previous} at {}", record.version, p.finished_at),
            });
            let soaked = now.duration_since(p.finished_at);
            let soak = jiff::SignedDuration::try_from(env.soak).unwrap_or(jiff::SignedDuration::MAX);
            let passed = soaked >= soak;
            let fmt = |d: jiff::SignedDuration| humantime::format_duration(d.unsigned_abs()).to_string();
            checks.push(GateCheck {
                name: "soak".into(),
                passed,
                detail: if passed {
                    format!("{} in {previous} (at least {} required)", fmt(soaked), fmt(soak))
                } else {
                    format!(
                        "only {} in {previous}; {} required: retry after {}",
                        fmt(soaked),
                        fmt(soak),
                        p.finished_at.checked_add(soak).map(|t| t.to_string()).unwrap_or_default()
                    )
                },
            });
        }
        None => checks.push(GateCheck {
            name: "order".into(),
            passed: env.allow_out_of_order,
            detail: if env.allow_out_of_order {
                format!("{} was not promoted in {previous}, allowed by allow_out_of_order", record.version)
            } else {
                format!(
                    "{} has not been promoted in {previous}; promote it there first (or set allow_out_of_order = true for {})",
                    record.version, env.name
                )
            },
        }),
    }
    Ok(checks)
}
