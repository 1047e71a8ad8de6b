//! The steps of an environment of several targets (`[[environment.target]]`):
//! one deployment, one record, one lease, promoted wave by wave.
//!
//! `gate` lists the targets in the record with their candidates;
//! `shift-traffic` runs the plan wave by wave, the targets of a wave in
//! parallel (each with its own analysis, its weights read back and recorded
//! per target), with the environment's `bake` between waves; the first
//! target that fails fails the deployment, and every target that moved is
//! rolled back, in parallel. `verify-health` judges every target that takes
//! candidate traffic at once; `promote` needs every target verified at 100%
//! and promotes them all; `rollback` restores every target that moved (or
//! reverts a promotion on each), idempotent. A cancelled step reads every
//! target's router back into the record.
//!
//! Never moves a target's traffic before its router's state is saved in the
//! record, never leaves a failed deployment with a target on the candidate
//! without an `error` event naming each target's last confirmed weight, and
//! never continues a paused deployment past its `pause_timeout` (every
//! target that moved is rolled back instead), and never runs what it cannot
//! do for targets yet (`--weight`, `rollback --live --free-lease`,
//! `verify-health --replay`): those are refused (exit 2) before anything
//! changes.

use crate::Outcome;
use crate::analyse::{Scope, analyse_in};
use crate::candidate::check_upstream;
use crate::context::{Checks, Context, exact_restore, now};
use crate::shift_traffic::refused;
use crate::summary;
use anyhow::anyhow;
use sluice_analysis::{AnalysisReport, Cause, Verdict};
use sluice_core::config::{NotifyEvent, RouterConfig, TargetConfig};
use sluice_core::ledger::LedgerOutcome;
use sluice_core::lifecycle::Step;
use sluice_core::record::{EventDetail, Record, RouterState, Status, TargetState};
use sluice_core::{Exit, Failure};
use sluice_providers::retry::Backoff;
use sluice_providers::router::Router;
use std::future::Future;
use std::pin::Pin;
use std::task::Poll;
use std::time::Duration;

mod promote;
mod rollback;
mod run;
mod shift;
mod verify;

use run::Run;

pub(crate) use promote::{evidence, promote_routers};
pub(crate) use rollback::{record_cancellation, roll_back, rollback};
pub(crate) use shift::shift;
pub(crate) use verify::verify;

/// Runs `futures` concurrently on this task and returns their outputs in
/// order (the targets of a wave at once, without spawning: each borrows the
/// step's context).
async fn all<F: Future>(futures: Vec<F>) -> Vec<F::Output> {
    let mut futures: Vec<Pin<Box<F>>> = futures.into_iter().map(Box::pin).collect();
    let mut outputs: Vec<Option<F::Output>> = futures.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (future, output) in futures.iter_mut().zip(outputs.iter_mut()) {
            if output.is_none() {
                match future.as_mut().poll(cx) {
                    Poll::Ready(value) => *output = Some(value),
                    Poll::Pending => pending = true,
                }
            }
        }
        if pending { Poll::Pending } else { Poll::Ready(()) }
    })
    .await;
    outputs.into_iter().flatten().collect()
}

/// As [`all`], but once an output satisfies `stop` the futures still
/// running are dropped (their outputs `None`): the first target that fails
/// stops its wave at once, without waiting for the others' analyses.
async fn all_until<F: Future>(futures: Vec<F>, stop: impl Fn(&F::Output) -> bool) -> Vec<Option<F::Output>> {
    let mut futures: Vec<Option<Pin<Box<F>>>> = futures.into_iter().map(|f| Some(Box::pin(f))).collect();
    let mut outputs: Vec<Option<F::Output>> = futures.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (slot, output) in futures.iter_mut().zip(outputs.iter_mut()) {
            let Some(future) = slot else { continue };
            match future.as_mut().poll(cx) {
                Poll::Ready(value) => {
                    *slot = None;
                    let stopped = stop(&value);
                    *output = Some(value);
                    if stopped {
                        return Poll::Ready(());
                    }
                }
                Poll::Pending => pending = true,
            }
        }
        if pending { Poll::Pending } else { Poll::Ready(()) }
    })
    .await;
    outputs
}

/// A refusal of something the steps cannot do for targets yet: exit 2,
/// nothing changed.
pub(crate) fn not_for_targets(ctx: &Context, what: &str) -> Failure {
    let names: Vec<&str> = ctx.env().targets.iter().map(|t| t.name.as_str()).collect();
    Failure::input(anyhow!(
        "environment {} is served by several targets ({}): {what} is not supported for targets yet; nothing was changed",
        ctx.env().name,
        names.join(", ")
    ))
}

/// `--candidate-upstream` of an environment with targets: `NAME=URL` pairs,
/// comma-separated, one per target whose router is the embedded one (an
/// ALB target's candidate is its candidate target group).
pub(crate) fn parse_candidates(ctx: &Context, flag: &str) -> Result<Vec<(String, String)>, Failure> {
    let env = ctx.env();
    let mut pairs: Vec<(String, String)> = Vec::new();
    for part in flag.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let Some((name, url)) = part.split_once('=') else {
            return Err(Failure::input(anyhow!(
                "--candidate-upstream {part:?}: environment {} has targets, so give each target's candidate as NAME=URL, comma-separated (e.g. {}=http://10.0.0.7:8080)",
                env.name,
                env.targets.first().map_or("us-east-1", |t| t.name.as_str())
            )));
        };
        let (name, url) = (name.trim(), url.trim());
        if env.target(name).is_none() {
            let names: Vec<&str> = env.targets.iter().map(|t| t.name.as_str()).collect();
            return Err(Failure::input(anyhow!(
                "--candidate-upstream names target {name:?}, which environment {} does not define (it has {})",
                env.name,
                names.join(", ")
            )));
        }
        if pairs.iter().any(|(n, _)| n == name) {
            return Err(Failure::input(anyhow!("--candidate-upstream names target {name:?} twice")));
        }
        check_upstream(url)?;
        pairs.push((name.to_owned(), url.to_owned()));
    }
    Ok(pairs)
}

/// `gate` of an environment with targets: the record lists every target in
/// wave order with its candidate (from `--candidate-upstream NAME=URL,...`);
/// a record gated again keeps its candidates, and a flag naming another is
/// refused.
pub(crate) fn gate(ctx: &Context, record: &mut Record, flag: Option<&str>) -> Result<(), Failure> {
    let given = match flag {
        Some(flag) => parse_candidates(ctx, flag)?,
        None => Vec::new(),
    };
    if record.targets.is_empty() {
        let env = ctx.env();
        for (w, wave) in env.waves().iter().enumerate() {
            for name in wave {
                record.targets.push(TargetState {
                    name: name.clone(),
                    wave: w,
                    router_before: None,
                    candidate: None,
                    candidate_weight: 0,
                });
            }
        }
    }
    check_targets(ctx, record)?;
    for (name, url) in given {
        let recorded = record.target(&name).and_then(|t| t.candidate.clone());
        match recorded {
            Some(recorded) if recorded != url => {
                return Err(crate::candidate::changed(record, &format!("{recorded} (target {name})"), &url));
            }
            _ => {
                if let Some(t) = record.targets.iter_mut().find(|t| t.name == name) {
                    t.candidate = Some(url);
                }
            }
        }
    }
    Ok(())
}

/// The record's targets must be the environment's, in its waves: a config
/// changed under a deployment is refused (exit 2).
fn check_targets(ctx: &Context, record: &Record) -> Result<(), Failure> {
    let env = ctx.env();
    let want: Vec<(String, usize)> =
        env.waves().iter().enumerate().flat_map(|(w, wave)| wave.iter().map(move |n| (n.clone(), w))).collect();
    let have: Vec<(String, usize)> = record.targets.iter().map(|t| (t.name.clone(), t.wave)).collect();
    if want != have {
        let show = |list: &[(String, usize)]| {
            list.iter().map(|(n, w)| format!("{n} (wave {})", w + 1)).collect::<Vec<_>>().join(", ")
        };
        return Err(Failure::input(anyhow!(
            "record {} lists the targets {}, but environment {} now has {}: the config changed under the deployment; roll it back and gate again",
            ctx.record_path.display(),
            if have.is_empty() { "(none)".to_owned() } else { show(&have) },
            env.name,
            show(&want)
        )));
    }
    Ok(())
}

/// One target: its config, router and checks.
struct Target<'a> {
    config: &'a TargetConfig,
    router: Router,
    checks: Checks,
}

impl Target<'_> {
    fn name(&self) -> &str {
        &self.config.name
    }
}

fn targets<'a>(ctx: &'a Context, analysed: bool) -> Result<Vec<Target<'a>>, Failure> {
    let env = ctx.env();
    let mut out = Vec::new();
    for config in &env.targets {
        // Checks are known before anything moves: a target that cannot be
        // judged is bad input, not a canary rolled back half-way.
        let checks = match analysed {
            true => ctx.checks_for(Some(config))?,
            false => Checks { specs: Vec::new(), builtin: false, unanalysed: true },
        };
        out.push(Target { config, router: Router::from_config(&config.router, Backoff::default()), checks });
    }
    Ok(out)
}

/// Whether the record's target `name` ever had traffic moved.
fn moved(record: &Record, name: &str) -> bool {
    record.target(name).is_some_and(|t| t.candidate_weight > 0)
        || record.events.iter().any(|e| {
            e.target.as_deref() == Some(name)
                && matches!(e.detail, EventDetail::Traffic { .. } | EventDetail::Rollback { .. })
        })
}

/// Stages a target passed (a passing verdict tagged with it).
fn passed(record: &Record, name: &str) -> Vec<usize> {
    record
        .events
        .iter()
        .filter(|e| e.target.as_deref() == Some(name))
        .filter_map(|e| match &e.detail {
            EventDetail::Verdict { stage: Some(i), report } if report.verdict == Verdict::Pass => Some(*i),
            _ => None,
        })
        .collect()
}

/// The targets to roll back: every one that moved, and every one of the
/// waves up to `wave` (a router that failed mid-change may have moved).
fn to_roll_back(record: &Record, wave: Option<usize>) -> Vec<String> {
    // The targets of a wave move at once: one that moved means its whole
    // wave may have (a change cut short is not recorded).
    let started = record.targets.iter().filter(|t| moved(record, &t.name)).map(|t| t.wave).max();
    let upto = wave.max(started);
    record
        .targets
        .iter()
        .filter(|t| upto.is_some_and(|w| t.wave <= w) || moved(record, &t.name))
        .map(|t| t.name.clone())
        .collect()
}

/// The step summary's table of targets: a row per target in wave order,
/// with its confirmed weight and latest verdict.
fn targets_table(record: &Record) -> String {
    let mut table = sluice_core::gha::Table::new(&["wave", "target", "candidate weight", "latest verdict"]);
    for t in &record.targets {
        let verdict = record.events.iter().rev().find_map(|e| match (&e.detail, e.target.as_deref()) {
            (EventDetail::Verdict { report, .. }, Some(n)) if n == t.name => {
                Some(format!("{:?}: {}", report.verdict, report.reason).to_lowercase())
            }
            _ => None,
        });
        table.row(&[
            (t.wave + 1).to_string(),
            t.name.clone(),
            format!("{}%", t.candidate_weight),
            verdict.unwrap_or_else(|| "none yet".into()),
        ]);
    }
    format!(
        "{}
",
        table.finish()
    )
}

/// Each target's last confirmed weight, in words.
fn weights(record: &Record) -> String {
    record.targets.iter().map(|t| format!("{} {}%", t.name, t.candidate_weight)).collect::<Vec<_>>().join(", ")
}

/// Whether target `name` was promoted (its candidate made stable).
fn promoted(record: &Record, name: &str) -> bool {
    record.events.iter().any(|e| e.target.as_deref() == Some(name) && matches!(e.detail, EventDetail::Promote { .. }))
}

/// Puts one target's router back as it was before the deployment: the
/// saved state exactly where the router can (ALB), else all traffic to
/// stable; a promoted target gets its previous stable pool back.
async fn restore(ctx: &Context, record: &Record, name: &str) -> Result<RouterState, String> {
    let (Some(config), Some(state)) = (ctx.env().target(name), record.target(name)) else {
        return Err(format!("target {name} is not in the config"));
    };
    let router = Router::from_config(&config.router, Backoff::default());
    let restored = match &state.router_before {
        Some(before) if exact_restore(&config.router, &router, before, &format!("target {name}'s router")) => {
            router.restore(before).await
        }
        before if promoted(record, name) => match before.as_ref().and_then(|b| b.stable.as_deref()) {
            Some(previous) => router.set_stable(previous).await,
            None => {
                return Err(format!(
                    "target {name} was promoted, but the record does not say what was stable there before; nothing to revert to"
                ));
            }
        },
        _ => router.set_weight(0).await,
    };
    restored.map_err(|e| format!("target {name}: {e}"))
}

/// A paused deployment whose wait expired: every target that moved is
/// rolled back (exit 1) rather than continued. `None` when it is not paused
/// or still in time.
async fn expire_pause(ctx: &Context, record: &mut Record, step: Step) -> Result<Option<Outcome>, Failure> {
    let Some((stage, weight, expires_at)) = record.pause() else { return Ok(None) };
    if now() < expires_at {
        return Ok(None);
    }
    let reason = format!(
        "the deployment paused at stage {} ({weight}%) was not approved before its pause expired at {expires_at}",
        stage + 1
    );
    let names = to_roll_back(record, None);
    roll_back(ctx, record, &names, &reason, step, LedgerOutcome::RolledBack).await?;
    Ok(Some(
        Outcome::declined("expired")
            .summary(format!(
                "{}**Rolled back** every target that moved ({}): {reason}.\n\n{}",
                summary::heading(step.name(), record, "pause expired"),
                names.join(", "),
                targets_table(record)
            ))
            .error("paused canary expired", &reason),
    ))
}
