//! `gate`: may this release enter this environment?
//!
//! Checks the promotion order (the release was promoted in the previous
//! environment, read from the ledger: the file or GitHub deployments), the
//! soak time there, and that the record is not for a deployment that
//! already ended; then, as the environment's `gate` config asks, checks on
//! GitHub data: required check runs and commit statuses green on the commit
//! (pending is "wait", never "pass"), no open incident issue, and an
//! environment approval by someone other than the commit's author; and
//! checks without GitHub: no freeze window in force, and the evidence files
//! of earlier jobs pass (a SARIF report, a coverage report). Creates the
//! record when it does not exist; when allowed, the ledger records the start
//! (a GitHub deployment, `in_progress`). Exit 1 when blocked or waiting;
//! exit 2, writing nothing, when an evidence file is missing or unreadable.

use crate::Outcome;
use crate::candidate::check_upstream;
use crate::context::{Common, Context, ledger_failure, now};
use crate::summary;
use anyhow::anyhow;
use clap::Parser;
use sluice_analysis::gates;
#[cfg(feature = "github")]
use sluice_core::Classify;
use sluice_core::config::{CoverageGate, GateConfig, NotifyEvent, SarifGate, Strategy};
use sluice_core::ledger::{ChangeKind, LedgerOutcome};
use sluice_core::lifecycle::Step;
use sluice_core::record::{EventDetail, GateCheck, NewRecord, Record, RecordError, Status};
use sluice_core::{Failure, env, gha, names};
#[cfg(feature = "github")]
use sluice_providers::github::client::encode;
#[cfg(feature = "github")]
use sluice_providers::github::{GitHub, short};
use std::path::Path;

/// Decide whether a release may enter an environment.
#[derive(Parser, Debug)]
#[command(
    name = "gate",
    version,
    about = "May this release enter this environment? Checks the promotion order, soak time, freeze windows, evidence files and, with GitHub, required checks, incidents and approvals; takes the environment's lease and starts the record.",
    after_help = "Exit codes: 0 done · 1 a decision said no (blocked, or waiting: run it again later) · 2 bad input (nothing changed) · 3 a provider failed after retries · 130/143 cancelled.\n\nExamples:\n  gate -e dev --record out/dev.json --release v1.4.2 --candidate-upstream http://10.0.0.7:8080\n  gate -e prd --record out/prd.json --release v1.4.3 --hotfix --incident INC-4711\n\nEvery flag also reads an INPUT_* environment variable (INPUT_ENVIRONMENT, INPUT_RECORD, ...). More: https://github.com/sluice-dev/sluice/blob/main/docs/cli.md"
)]
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
    /// Where the candidate is served (embedded router: its base URL). It
    /// becomes part of the deployment: later steps route to it and nothing
    /// else.
    #[arg(long, env = "INPUT_CANDIDATE_UPSTREAM", value_name = "URL")]
    pub candidate_upstream: Option<String>,
}

pub fn main() -> std::process::ExitCode {
    entry(Args::parse())
}

/// Runs the step with parsed flags: the one entry point of the `gate`
/// binary and of `sluice gate`.
pub fn entry(args: Args) -> std::process::ExitCode {
    let common = args.common.clone();
    crate::run_step("gate", common, run(args))
}

pub async fn run(args: Args) -> Result<Outcome, Failure> {
    let ctx = Context::load(&args.common)?;
    names::check("release", &args.release).map_err(|m| Failure::input(anyhow!(m)))?;
    let commit = args.commit.clone().or_else(|| env::var(env::GITHUB_SHA));
    if let Some(commit) = &commit {
        names::check_commit(commit).map_err(|m| Failure::input(anyhow!(m)))?;
    }
    if let Some(url) = &args.candidate_upstream
        && !ctx.env().has_targets()
    {
        check_upstream(url)?;
    }
    if let Some(incident) = &args.incident {
        names::check_label("incident", incident).map_err(|m| Failure::input(anyhow!(m)))?;
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
            if let Err(refused) = record.may_act(Step::Gate, "gate it again") {
                return Ok(Outcome::refused("gate", &record, &refused));
            }
            record
        }
        Err(e) => return Err(Failure::input(e)),
    };
    // What the candidate is belongs to the deployment from its start:
    // later steps route only to it.
    if ctx.env().has_targets() {
        crate::waves::gate(&ctx, &mut record, args.candidate_upstream.as_deref())?;
    } else {
        let candidate = crate::candidate::identify(&ctx, &record, args.candidate_upstream.as_deref())?;
        record.candidate = candidate;
    }

    crate::notify::about(&record);
    let was_admitted = !record.is_new() && record.status() == Status::Admitted;
    let (mut checks, evidence) = checks(&ctx, &record, now).await?;
    if checks.iter().all(|c| c.passed) {
        // Last, so a release that could not go anyway never holds the
        // environment: one deployment per environment at a time.
        let lease = ctx.hold_lease(&record, None).await?;
        // Kept even when waiting: the next gate of this record reuses it.
        if let Some(id) = lease.github_deployment {
            record.github_deployment = Some(id);
        }
        checks.push(match lease.result {
            Ok(held) => GateCheck::pass("lease", held),
            // Transient: the same record may be gated again once it ends.
            Err(holder) => GateCheck::wait("lease", holder),
        });
    }
    let allowed = checks.iter().all(|c| c.passed);
    let waiting = !allowed && checks.iter().all(|c| c.passed || c.pending);
    let to = match (allowed, waiting) {
        (true, _) => Status::Admitted,
        (false, true) => Status::Waiting,
        (false, false) => Status::Blocked,
    };
    if allowed {
        // The ledger learns of the deployment (a GitHub deployment,
        // in_progress) before the record says it may go ahead.
        let ledger = ctx.ledger()?;
        let started = ledger.start(&record, &ctx.target()).await.map_err(|e| {
            ledger_failure(e, &format!("the gate allowed {} but the ledger could not record its start", record.version))
        })?;
        if let Some(id) = started {
            record.github_deployment = Some(id);
        }
    } else if was_admitted {
        // Gated again and not admitted any more: the environment is given
        // back (nothing moved).
        if let Err(e) = ctx.ledger()?.release_lease(&record.app, &record.environment, &record.id) {
            gha::warning(&format!("the environment lease was not released: {e}; it expires by itself"));
        }
    }
    if let Err(refused) = record.transition(Step::Gate, to, now) {
        return Ok(Outcome::refused("gate", &record, &refused));
    }
    record.push("gate", EventDetail::Gate { allowed, checks: checks.clone() }, now);
    ctx.save(&record)?;

    let decision = match to {
        Status::Admitted => "allow",
        Status::Waiting => "wait",
        _ => "block",
    };
    for check in &checks {
        let result = match (check.passed, check.pending) {
            (true, _) => "pass ",
            (false, true) => "WAIT ",
            (false, false) => "BLOCK",
        };
        eprintln!("gate: {result} {}: {}", check.name, check.detail);
    }
    let markdown =
        format!("{}{}\n{evidence}", summary::heading("gate", &record, decision), summary::gate_table(&checks));
    let outcome = if allowed { Outcome::ok(decision) } else { Outcome::declined(decision) }
        .summary(markdown)
        .output("environment", record.environment.clone());
    if allowed {
        return Ok(outcome);
    }
    let blocked: Vec<&str> = checks.iter().filter(|c| !c.passed).map(|c| c.detail.as_str()).collect();
    if !waiting {
        crate::notify::send("gate", NotifyEvent::Blocked, "block", &blocked.join("; ")).await;
    }
    Ok(outcome.error(if waiting { "gate waits" } else { "gate blocked" }, &blocked.join("; ")))
}

/// Every gate check of this environment, in order: promotion order and
/// soak; the freeze calendar and the evidence files of earlier jobs; then
/// the checks on GitHub data the config asks for. Each check is its own
/// small function returning `GateCheck`s. Also Markdown with more evidence
/// for the summary.
async fn checks(ctx: &Context, record: &Record, now: jiff::Timestamp) -> Result<(Vec<GateCheck>, String), Failure> {
    let mut checks = order_and_soak(ctx, record, now).await?;
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
    if !gate.uses_github() {
        return Ok((checks, evidence));
    }
    checks.extend(github_checks(ctx, record, &gate).await?);
    Ok((checks, evidence))
}

/// The checks on GitHub data: required checks, open incidents, an
/// independent approval.
#[cfg(feature = "github")]
async fn github_checks(ctx: &Context, record: &Record, gate: &GateConfig) -> Result<Vec<GateCheck>, Failure> {
    let github = ctx.github()?;
    let mut checks = Vec::new();
    if !gate.required_checks().is_empty() {
        let commit = needs_commit(record, "required_checks")?;
        checks.extend(required_checks(&github, commit, gate.required_checks()).await?);
    }
    if let Some(label) = &gate.incident_label {
        checks.push(open_incidents(&github, label).await?);
    }
    if gate.require_independent_approval == Some(true) {
        let commit = needs_commit(record, "require_independent_approval")?;
        checks.push(independent_approval(&github, &ctx.env().name, commit).await?);
    }
    Ok(checks)
}

/// Without GitHub support: the refusal `features::load` gives these keys
/// when the config is loaded, should a caller not have loaded it so.
#[cfg(not(feature = "github"))]
async fn github_checks(_: &Context, _: &Record, _: &GateConfig) -> Result<Vec<GateCheck>, Failure> {
    Err(crate::features::left_out("gate.required_checks, gate.incident_label, gate.require_independent_approval"))
}

/// No freeze window in force; says which one is and when the freeze ends.
fn freeze_check(gate: &GateConfig, now: jiff::Timestamp) -> Result<Option<GateCheck>, Failure> {
    let calendar = gate.calendar().map_err(|m| Failure::input(anyhow!(m)))?;
    if calendar.is_empty() {
        return Ok(None);
    }
    let status = calendar.status(now);
    Ok(Some(GateCheck::new("freeze", !status.is_frozen(), status.describe())))
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
    let check = GateCheck::new("sarif", judgment.passed, format!("{}: {}", sarif.path.display(), judgment.detail));
    Ok((check, markdown))
}

/// Line coverage at or above the minimum.
fn coverage_check(coverage: &CoverageGate) -> Result<GateCheck, Failure> {
    let text = read_evidence(&coverage.path, "coverage report", "gate.coverage.path")?;
    let parsed = gates::coverage::parse(&text, coverage.format)
        .map_err(|m| Failure::input(anyhow!("the coverage report {} cannot be used: {m}", coverage.path.display())))?;
    let judgment = gates::coverage::judge(&parsed, coverage.min);
    Ok(GateCheck::new("coverage", judgment.passed, format!("{}: {}", coverage.path.display(), judgment.detail)))
}

#[cfg(feature = "github")]
fn needs_commit<'a>(record: &'a Record, key: &str) -> Result<&'a str, Failure> {
    record.commit.as_deref().ok_or_else(|| {
        Failure::input(anyhow!(
            "gate.{key} needs the release's commit: pass --commit SHA (in GitHub Actions it defaults to $GITHUB_SHA)"
        ))
    })
}

/// Every required check run or commit status on the commit: a success (or
/// neutral / skipped) passes, a failure blocks, one still running or not
/// reported yet waits.
#[cfg(feature = "github")]
async fn required_checks(github: &GitHub, commit: &str, names: &[String]) -> Result<Vec<GateCheck>, Failure> {
    let runs = github.check_runs(commit).await.provider_failed()?;
    let statuses = github.commit_statuses(commit).await.provider_failed()?;
    let sha = short(commit);
    let commit_link = Some(github.web_url(&format!("/commit/{commit}")));
    let mut checks = Vec::new();
    for name in names {
        let label = format!("check {name}");
        let check = if let Some(run) = runs.iter().find(|r| &r.name == name) {
            let link = run.html_url.clone().or_else(|| run.details_url.clone());
            match (run.status.as_str(), run.conclusion.as_deref()) {
                ("completed", Some(c @ ("success" | "neutral" | "skipped"))) => {
                    GateCheck::pass(&label, format!("check run {name} on {sha}: {c}"))
                }
                ("completed", conclusion) => GateCheck::block(
                    &label,
                    format!("check run {name} on {sha} concluded {}", conclusion.unwrap_or("without a conclusion")),
                ),
                (status, _) => GateCheck::wait(
                    &label,
                    format!("check run {name} on {sha} is pending ({status}); run the gate again when it has finished"),
                ),
            }
            .with_link(link)
        } else if let Some(status) = statuses.iter().find(|s| &s.context == name) {
            let why = status.description.as_deref().map(|d| format!(": {d}")).unwrap_or_default();
            match status.state.as_str() {
                "success" => GateCheck::pass(&label, format!("commit status {name} on {sha}: success{why}")),
                "pending" => GateCheck::wait(
                    &label,
                    format!("commit status {name} on {sha} is pending{why}; run the gate again when it has finished"),
                ),
                state => GateCheck::block(&label, format!("commit status {name} on {sha} is {state}{why}")),
            }
            .with_link(status.target_url.clone())
        } else {
            let mut reported: Vec<&str> =
                runs.iter().map(|r| r.name.as_str()).chain(statuses.iter().map(|s| s.context.as_str())).collect();
            reported.sort_unstable();
            reported.dedup();
            GateCheck::wait(
                &label,
                format!(
                    "{name} is pending: no check run or commit status of that name on {sha} yet (reported: {})",
                    if reported.is_empty() { "none".to_owned() } else { reported.join(", ") }
                ),
            )
            .with_link(commit_link.clone())
        };
        checks.push(check);
    }
    Ok(checks)
}

/// No open issue with the incident label.
#[cfg(feature = "github")]
async fn open_incidents(github: &GitHub, label: &str) -> Result<GateCheck, Failure> {
    let issues = github.open_issues(label).await.provider_failed()?;
    let search = github.web_url(&format!("/issues?q={}", encode(&format!("is:issue is:open label:\"{label}\""))));
    let name = "incidents";
    Ok(match issues.as_slice() {
        [] => GateCheck::pass(name, format!("no open issue labelled {label:?}")).with_link(Some(search)),
        [one] => GateCheck::block(
            name,
            format!("open incident #{} ({}) is labelled {label:?}; close it or wait", one.number, one.title),
        )
        .with_link(Some(one.html_url.clone())),
        many => {
            let listed: Vec<String> = many.iter().take(5).map(|i| format!("#{} ({})", i.number, i.title)).collect();
            GateCheck::block(
                name,
                format!(
                    "{} open issues are labelled {label:?}: {}{}",
                    many.len(),
                    listed.join(", "),
                    if many.len() > 5 { ", …" } else { "" }
                ),
            )
            .with_link(Some(search))
        }
    })
}

/// The run's approval of this environment came from someone other than
/// the commit's author.
#[cfg(feature = "github")]
async fn independent_approval(github: &GitHub, environment: &str, commit: &str) -> Result<GateCheck, Failure> {
    let name = "approval";
    let Some(run_id) = env::var(env::GITHUB_RUN_ID) else {
        return Ok(GateCheck::block(
            name,
            format!(
                "no workflow run to read approvals from (GITHUB_RUN_ID is not set); run the gate in a job with `environment: {environment}` that requires reviewers"
            ),
        ));
    };
    let link = Some(github.web_url(&format!("/actions/runs/{run_id}")));
    let approvals = github.approvals(&run_id).await.provider_failed()?;
    let approvers: Vec<&str> = approvals
        .iter()
        .filter(|a| a.state == "approved")
        .filter(|a| a.environments.iter().any(|e| e.name.as_deref() == Some(environment)))
        .map(|a| a.user.login.as_str())
        .collect();
    if approvers.is_empty() {
        return Ok(GateCheck::block(
            name,
            format!("nobody approved {environment} in run {run_id}; protect the environment with required reviewers"),
        )
        .with_link(link));
    }
    let commit_info = github.commit(commit).await.provider_failed()?;
    let sha = short(commit);
    let Some(author) = commit_info.author.as_ref().map(|u| u.login.as_str()) else {
        let who = commit_info.commit.author.and_then(|a| a.email.or(a.name)).unwrap_or_else(|| "unknown".into());
        return Ok(GateCheck::block(
            name,
            format!(
                "cannot tell whether the approval is independent: the author of {sha} ({who}) is not a GitHub account"
            ),
        )
        .with_link(link));
    };
    let others: Vec<&str> = approvers.iter().copied().filter(|a| !a.eq_ignore_ascii_case(author)).collect();
    Ok(if others.is_empty() {
        GateCheck::block(
            name,
            format!("{environment} was approved only by @{author}, who authored {sha}; someone else must approve"),
        )
    } else {
        GateCheck::pass(
            name,
            format!("{environment} approved by @{} (the author of {sha} is @{author})", others.join(", @")),
        )
    }
    .with_link(link))
}

/// The release was promoted in the previous environment (and not reverted
/// there since), at least the soak time ago.
async fn order_and_soak(ctx: &Context, record: &Record, now: jiff::Timestamp) -> Result<Vec<GateCheck>, Failure> {
    let env = ctx.env();
    let mut checks = Vec::new();
    if ctx.env_index == 0 {
        checks.push(GateCheck::pass("order", format!("{} is the first environment", env.name)));
        return Ok(checks);
    }
    let previous = &ctx.config.environments[ctx.env_index - 1].name;
    let ledger = ctx.ledger()?;
    let link = ledger.link(previous);
    let history = ledger
        .history(&record.app, previous, &record.version, record.commit.as_deref())
        .await
        .map_err(|e| ledger_failure(e, &format!("cannot read the history of {} in {previous}", record.version)))?;
    let promoted = history.iter().rfind(|e| e.outcome == LedgerOutcome::Promoted);
    let reverted = history
        .iter()
        // GitHub stamps whole seconds: a revert in the promotion's second
        // came after it.
        .any(|e| e.outcome == LedgerOutcome::Reverted && promoted.is_some_and(|p| e.finished_at >= p.finished_at));
    match promoted {
        Some(_) if reverted => checks.push(
            GateCheck::new(
                "order",
                env.allow_out_of_order,
                format!("{} was rolled back in {previous} after its promotion", record.version),
            )
            .with_link(link),
        ),
        Some(p) => {
            checks.push(
                GateCheck::pass("order", format!("{} was promoted in {previous} at {}", record.version, p.finished_at))
                    .with_link(link.clone()),
            );
            let soaked = now.duration_since(p.finished_at);
            let soak = jiff::SignedDuration::try_from(env.soak).unwrap_or(jiff::SignedDuration::MAX);
            let passed = soaked >= soak;
            let fmt = |d: jiff::SignedDuration| {
                humantime::format_duration(std::time::Duration::from_secs(d.unsigned_abs().as_secs())).to_string()
            };
            checks.push(
                GateCheck::new(
                    "soak",
                    passed,
                    if passed {
                        format!("{} in {previous} (at least {} required)", fmt(soaked), fmt(soak))
                    } else {
                        format!(
                            "only {} in {previous}; {} required: retry after {}",
                            fmt(soaked),
                            fmt(soak),
                            p.finished_at.checked_add(soak).map(|t| t.to_string()).unwrap_or_default()
                        )
                    },
                )
                .with_link(link),
            );
        }
        None => checks.push(
            GateCheck::new(
                "order",
                env.allow_out_of_order,
                if env.allow_out_of_order {
                    format!("{} was not promoted in {previous}, allowed by allow_out_of_order", record.version)
                } else {
                    format!(
                        "{} has not been promoted in {previous}; promote it there first (or set allow_out_of_order = true for {})",
                        record.version, env.name
                    )
                },
            )
            .with_link(link),
        ),
    }
    Ok(checks)
}
