//! `gate`: may this release enter this environment?
//!
//! Checks the promotion order (the release was promoted in the previous
//! environment), the soak time there, and that the record is not for a
//! deployment that already ended; then, as `[environment.gate]` says, that no
//! freeze window is in force and that the evidence files of earlier jobs pass
//! (a SARIF report, a coverage report). Creates the record when it does not
//! exist. Exit 1 when blocked; exit 2, writing nothing, when an evidence file
//! is missing or unreadable.

use crate::context::{Common, Context, now};
use crate::summary;
use anyhow::anyhow;
use clap::Parser;
use sluice_analysis::gates;
use sluice_core::config::{CoverageGate, GateConfig, NotifyEvent, SarifGate, Strategy};
use sluice_core::ledger::{ChangeKind, LedgerOutcome};
use sluice_core::record::{EventDetail, GateCheck, NewRecord, Record, RecordError, Status};
use sluice_core::{Classify, Exit, Failure, env, gha, names};
use std::path::Path;

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
    crate::run("gate", run(args))
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

    crate::notify::about(&record);
    let (checks, evidence) = checks(&ctx, &record, now)?;
    let allowed = checks.iter().all(|c| c.passed);
    record.status = if allowed { Status::Admitted } else { Status::Blocked };
    record.push("gate", EventDetail::Gate { allowed, checks: checks.clone() }, now);
    ctx.save(&record)?;

    let decision = if allowed { "allow" } else { "block" };
    for check in &checks {
        eprintln!("gate: {} {}: {}", if check.passed { "pass " } else { "BLOCK" }, check.name, check.detail);
    }
    summary::write(&format!(
        "{}{}\n{evidence}",
        summary::heading("gate", &record, decision),
        summary::gate_table(&checks)
    ));
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
        crate::notify::send("gate", NotifyEvent::Blocked, "block", &blocked.join("; ")).await;
        Ok(Exit::DECLINED)
    }
}

/// Every check, and Markdown with more evidence for the summary.
fn checks(ctx: &Context, record: &Record, now: jiff::Timestamp) -> Result<(Vec<GateCheck>, String), Failure> {
    let mut checks = order_checks(ctx, record, now)?;
    let gate = ctx.config.gate_for(ctx.env());
    let mut evidence = String::new();
    checks.extend(freeze_check(&gate, now)?);
    if let Some(sarif) = &gate.sarif {
        let (check, markdown) = sarif_check(sarif)?;
        checks.push(check);
        evidence.push_str(&markdown);
    }
    if let Some(coverage) = &gate.coverage {
        checks.push(coverage_check(coverage)?);
    }
    Ok((checks, evidence))
}

/// No freeze window in force; says which one is and when the freeze ends.
fn freeze_check(gate: &GateConfig, now: jiff::Timestamp) -> Result<Option<GateCheck>, Failure> {
    let calendar = gate.calendar().map_err(|m| Failure::input(anyhow!(m)))?;
    if calendar.is_empty() {
        return Ok(None);
    }
    let status = calendar.status(now);
    Ok(Some(GateCheck { name: "freeze".into(), passed: !status.is_frozen(), detail: status.describe() }))
}

/// Reads an evidence file an earlier job left; missing or unreadable is bad
/// input (exit 2) naming the path.
fn read_evidence(path: &Path, what: &str, key: &str) -> Result<String, Failure> {
    std::fs::read_to_string(path).map_err(|e| {
        Failure::input(anyhow!(match e.kind() {
            std::io::ErrorKind::NotFound => format!(
                "the {what} {} does not exist: download the artifact of the job that writes it before `gate` runs, or fix `{key}` in the config",
                path.display()
            ),
            std::io::ErrorKind::InvalidData => format!("the {what} {} is not UTF-8 text", path.display()),
            _ => format!("cannot read the {what} {}: {e}", path.display()),
        }))
    })
}

/// No SARIF finding at or above the thresholds; names the blocking rules and
/// locations, and lists them in the summary.
fn sarif_check(sarif: &SarifGate) -> Result<(GateCheck, String), Failure> {
    let text = read_evidence(&sarif.path, "SARIF report", "gate.sarif.path")?;
    let report = gates::sarif::parse(&text)
        .map_err(|m| Failure::input(anyhow!("the SARIF report {} cannot be used: {m}", sarif.path.display())))?;
    let policy = gates::sarif::Policy { block_at: sarif.block_at, block_level: sarif.block_level };
    let judgment = gates::sarif::judge(&report, &policy);
    let mut markdown = String::new();
    if !judgment.blocking.is_empty() {
        // The table escapes `|` itself; the rest of Markdown is escaped here.
        let cell = |text: &str| gha::escape_markdown(text).replace("\\|", "|");
        let mut table = gha::Table::new(&["rule", "severity", "location", "message"]);
        for f in &judgment.blocking {
            table.row(&[
                cell(&f.rule),
                f.severity.to_string(),
                cell(f.location.as_deref().unwrap_or("–")),
                cell(&f.message),
            ]);
        }
        markdown = format!(
            "<details><summary>{} blocking finding{} in {}</summary>\n\n{}\n</details>\n\n",
            judgment.blocking.len(),
            if judgment.blocking.len() == 1 { "" } else { "s" },
            gha::escape_markdown(&sarif.path.display().to_string()),
            table.finish()
        );
    }
    let check = GateCheck {
        name: "sarif".into(),
        passed: judgment.passed,
        detail: format!("{}: {}", sarif.path.display(), judgment.detail),
    };
    Ok((check, markdown))
}

/// Line coverage at or above the minimum.
fn coverage_check(coverage: &CoverageGate) -> Result<GateCheck, Failure> {
    let text = read_evidence(&coverage.path, "coverage report", "gate.coverage.path")?;
    let parsed = gates::coverage::parse(&text, coverage.format)
        .map_err(|m| Failure::input(anyhow!("the coverage report {} cannot be used: {m}", coverage.path.display())))?;
    let judgment = gates::coverage::judge(&parsed, coverage.min);
    Ok(GateCheck {
        name: "coverage".into(),
        passed: judgment.passed,
        detail: format!("{}: {}", coverage.path.display(), judgment.detail),
    })
}

/// The promotion order and the soak time in the previous environment.
fn order_checks(ctx: &Context, record: &Record, now: jiff::Timestamp) -> Result<Vec<GateCheck>, Failure> {
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
