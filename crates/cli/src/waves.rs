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

/// `shift-traffic` of an environment with targets.
pub(crate) async fn shift(
    ctx: &Context,
    mut record: Record,
    args: &crate::shift_traffic::Args,
) -> Result<Outcome, Failure> {
    if args.weight.is_some() {
        return Err(not_for_targets(ctx, "--weight (one weight for every target)"));
    }
    if let Some(pause_at) = args.pause_at {
        let stages: Vec<u8> = record.strategy.plan().iter().map(|(w, _)| *w).collect();
        if stages.iter().position(|w| *w == pause_at).is_none_or(|i| i + 1 >= stages.len()) {
            return Err(Failure::input(anyhow!(
                "--pause-at {pause_at} is not a stage of this deployment's plan before the last one (stages: {stages:?}); it pauses the next wave to run after that stage"
            )));
        }
    }
    check_targets(ctx, &record)?;
    // A rollback that did not finish is finished by `rollback`, never
    // continued as a canary.
    let rolled: Vec<&str> = record
        .targets
        .iter()
        .filter(|t| {
            record.events.iter().any(|e| {
                e.target.as_deref() == Some(t.name.as_str()) && matches!(e.detail, EventDetail::Rollback { .. })
            })
        })
        .map(|t| t.name.as_str())
        .collect();
    if !rolled.is_empty() {
        return Err(Failure {
            exit: Exit::DECLINED,
            error: anyhow!(
                "{} is being rolled back ({} already restored; last confirmed weights: {}): finish it with `rollback`, then start a new deployment",
                record.subject(),
                rolled.join(", "),
                weights(&record)
            ),
        });
    }
    if let Some(flag) = &args.candidate_upstream {
        for (name, url) in parse_candidates(ctx, flag)? {
            let moved = moved(&record, &name);
            match record.target(&name).and_then(|t| t.candidate.clone()) {
                Some(recorded) if recorded != url => {
                    let recorded = format!("{recorded} (target {name})");
                    return Err(crate::candidate::changed(&record, &recorded, &url));
                }
                None if moved => {
                    return Err(crate::candidate::changed(&record, &format!("not recorded (target {name})"), &url));
                }
                _ => {
                    if let Some(t) = record.targets.iter_mut().find(|t| t.name == name) {
                        t.candidate = Some(url);
                    }
                }
            }
        }
    }
    let analysed = record.strategy.plan().iter().any(|(_, d)| !d.is_zero()) || ctx.env().bake.is_some();
    let targets = targets(ctx, analysed)?;
    // Every embedded router needs its candidate named before anything moves.
    for t in &targets {
        let candidate = record.target(t.name()).and_then(|s| s.candidate.clone());
        if candidate.is_none() && matches!(t.config.router, RouterConfig::Local { .. }) {
            return Err(Failure::input(anyhow!(
                "target {} of {} does not say what its candidate is: pass --candidate-upstream {}=URL (to gate, or to this first shift-traffic), comma-separated with the other targets'",
                t.name(),
                record.subject(),
                t.name()
            )));
        }
    }
    match ctx.hold_lease(&record, record.pause().map(|(_, _, expires_at)| expires_at)).await?.result {
        Ok(line) => eprintln!("shift-traffic: lease: {line}"),
        Err(holder) => {
            return Ok(Outcome::declined("held")
                .summary(format!("{}{}\n", summary::heading("shift-traffic", &record, "environment held"), holder))
                .error("environment held", &holder));
        }
    }
    if let Some(outcome) = expire_pause(ctx, &mut record, Step::ShiftTraffic).await? {
        return Ok(outcome);
    }
    // Every router's state before anything moves, read in parallel.
    let unread: Vec<&Target> =
        targets.iter().filter(|t| record.target(t.name()).is_some_and(|s| s.router_before.is_none())).collect();
    let states = all(unread.iter().map(|t| t.router.state()).collect()).await;
    let mut unreadable = Vec::new();
    for (t, state) in unread.iter().zip(states) {
        match state {
            Ok(state) => {
                // Never give traffic to a router that sends some to another
                // candidate than this deployment's: refused before anything
                // moves.
                let wanted = record.target(t.name()).and_then(|s| s.candidate.clone());
                if let Some(wanted) = wanted
                    && state.candidate_weight > 0
                    && state.candidate.as_deref() != Some(wanted.as_str())
                {
                    return Err(Failure::input(anyhow!(
                        "target {}: the router sends {}% of traffic to candidate {}, not to {}'s candidate {wanted}: roll that back first; nothing was moved",
                        t.name(),
                        state.candidate_weight,
                        state.candidate.as_deref().unwrap_or("(none)"),
                        record.subject()
                    )));
                }
                let weight = state.candidate_weight;
                if let Some(s) = record.targets.iter_mut().find(|s| s.name == t.name()) {
                    s.router_before = Some(state);
                }
                record.set_target_weight(t.name(), weight);
            }
            Err(e) => unreadable.push(format!("target {}: {e}", t.name())),
        }
    }
    ctx.save(&record)?;
    if !unreadable.is_empty() {
        let failure = Failure::provider(anyhow!("{}", unreadable.join("; ")));
        return Err(start_failed(ctx, &mut record, failure).await);
    }
    let mut run = Run {
        ctx,
        step: "shift-traffic",
        targets: &targets,
        markdown: summary::heading("shift-traffic", &record, record.strategy.name()),
        handled: false,
        pause_at: args.pause_at,
    };
    match run.waves(&mut record).await {
        Ok(outcome) => Ok(outcome),
        // Already rolled back (or its rollback already failed and said so).
        Err(failure) if run.handled => Err(failure),
        // A lost lease leaves the routers to their new holder.
        Err(failure) if failure.exit == Exit::DECLINED || record.status().is_final() => Err(failure),
        Err(failure) if !record.targets.iter().any(|t| moved(&record, &t.name)) => Err(match failure.exit {
            Exit::PROVIDER => start_failed(ctx, &mut record, failure).await,
            _ => failure,
        }),
        // Nothing is left half-shifted: whatever stopped the plan, every
        // target that moved goes back.
        Err(failure) => Err(run.provider_failed(&mut record, failure, None).await),
    }
}

/// No target could be read before anything moved: the deployment is
/// abandoned, which frees the environment (exit 3).
async fn start_failed(ctx: &Context, record: &mut Record, failure: Failure) -> Failure {
    let moved = record.targets.iter().any(|t| moved(record, &t.name));
    if moved || !record.may_move(Step::ShiftTraffic, Status::Abandoned) {
        return failure;
    }
    let reason = format!("the canary did not start: {:#}", failure.error);
    match crate::rollback::abandon(ctx, record, Step::ShiftTraffic, &reason).await {
        Ok(()) => Failure::provider(failure.error.context(
            "the canary did not start; no traffic was moved, the deployment is abandoned and the environment free",
        )),
        Err(e) => Failure::provider(failure.error.context(format!(
            "the canary did not start; no traffic was moved, but the deployment could not be closed ({:#}); run `rollback` on this record",
            e.error
        ))),
    }
}

/// Why a wave stopped: the first target that failed.
struct Stop {
    target: String,
    reason: String,
    /// `None`: a provider failed (exit 3); else the verdict.
    verdict: Option<Verdict>,
    cause: Option<Cause>,
}

struct Run<'a> {
    ctx: &'a Context,
    /// The step that runs it (`shift-traffic`, `verify-health`).
    step: &'static str,
    targets: &'a [Target<'a>],
    markdown: String,
    /// Whether a failure was already acted on (every target that moved
    /// rolled back, or the rollback's own failure recorded).
    handled: bool,
    /// `--pause-at`: the stage weight after which the next wave to run
    /// pauses for approval.
    pause_at: Option<u8>,
}

impl<'a> Run<'a> {
    fn target(&self, name: &str) -> Option<&'a Target<'a>> {
        self.targets.iter().find(|t| t.name() == name)
    }

    async fn waves(&mut self, record: &mut Record) -> Result<Outcome, Failure> {
        let plan = record.strategy.plan();
        let total = plan.len();
        let waves = self.ctx.env().waves();
        let bake = self.ctx.env().bake;
        for (w, wave) in waves.iter().enumerate() {
            let done = wave.iter().all(|n| passed(record, n).contains(&(total - 1)));
            if done {
                eprintln!("shift-traffic: wave {} ({}) passed in an earlier run", w + 1, wave.join(", "));
                continue;
            }
            self.markdown.push_str(&format!("#### Wave {}: {}\n\n", w + 1, wave.join(", ")));
            self.set_candidates(record, wave).await?;
            for (i, (weight, duration)) in plan.iter().copied().enumerate() {
                if wave.iter().all(|n| passed(record, n).contains(&i)) {
                    continue;
                }
                let _group = sluice_core::gha::group(&format!(
                    "wave {}, stage {}/{total}: {weight}% for {}",
                    w + 1,
                    i + 1,
                    humantime::format_duration(duration)
                ));
                if let Err(holder) = self.ctx.hold_lease(record, None).await?.result {
                    let message = format!(
                        "lost the environment lease before wave {} stage {}: {holder}; stopped without touching traffic",
                        w + 1,
                        i + 1
                    );
                    record.push("shift-traffic", EventDetail::Error { message: message.clone() }, now());
                    self.ctx.save(record)?;
                    return Err(Failure { exit: Exit::DECLINED, error: anyhow!(message) });
                }
                if let Some(stop) = self.set_weights(record, wave, weight, i).await? {
                    return self.fail(record, w, stop).await;
                }
                let label = |name: &str| format!("wave {} {name} stage {}/{total} {weight}%", w + 1, i + 1);
                if let Some(stop) = self.judge(record, wave, duration, Some(i), &label).await? {
                    return self.fail(record, w, stop).await;
                }
                if self.pause_at == Some(weight) {
                    return self.pause(record, w, i, weight).await;
                }
            }
            if let Some(bake) = bake.filter(|_| w + 1 < waves.len()) {
                // The waves done, judged at 100% before the next one starts.
                let baked: Vec<String> = waves[..=w].iter().flatten().cloned().collect();
                eprintln!("shift-traffic: bake {} after wave {}", humantime::format_duration(bake), w + 1);
                let label = |name: &str| format!("bake after wave {} {name}", w + 1);
                if let Some(stop) = self.judge(record, &baked, bake, None, &label).await? {
                    return self.fail(record, w, stop).await;
                }
            }
        }
        match evidence(self.ctx, record) {
            Ok(_) => {
                record.transition(Step::ShiftTraffic, Status::Verified, now()).map_err(refused)?;
                self.ctx.save(record)?;
                self.markdown.push_str(&format!(
                    "All {} waves passed; the candidate takes 100% of every target's traffic.\n\n{}",
                    waves.len(),
                    targets_table(record)
                ));
                Ok(Outcome::ok("pass").summary(&self.markdown))
            }
            Err(why) => {
                self.markdown.push_str(&format!(
                    "The plan is done, but the deployment is not verified: {why}.\n\n{}",
                    targets_table(record)
                ));
                Ok(Outcome::ok("shifted").summary(&self.markdown))
            }
        }
    }

    /// Stops after stage `i` of wave `w`: status `paused`, the environment
    /// held until the wait for approval expires; a later run (without
    /// `--pause-at`, or with it for the next wave) continues from there.
    async fn pause(&mut self, record: &mut Record, w: usize, i: usize, weight: u8) -> Result<Outcome, Failure> {
        let timeout = self.ctx.config.pause_timeout_for(self.ctx.env());
        let now = now();
        let expires_at = jiff::SignedDuration::try_from(timeout)
            .ok()
            .and_then(|d| now.checked_add(d).ok())
            .unwrap_or(jiff::Timestamp::MAX);
        record.transition(Step::ShiftTraffic, Status::Paused, now).map_err(refused)?;
        record.push("shift-traffic", EventDetail::Pause { stage: i, weight, expires_at }, now);
        self.ctx.save(record)?;
        if let Err(holder) = self.ctx.hold_lease(record, Some(expires_at)).await?.result {
            sluice_core::gha::warning(&format!("the paused canary's lease could not be extended: {holder}"));
        }
        eprintln!(
            "shift-traffic: paused after wave {} stage {} ({weight}%); continue before {expires_at} or it is rolled back",
            w + 1,
            i + 1
        );
        self.markdown.push_str(&format!(
            "**Paused** after wave {} stage {} ({weight}%), waiting for approval. Run `shift-traffic` again to continue before {expires_at} (pause_timeout {}); after that every target that moved is rolled back.\n\n{}",
            w + 1,
            i + 1,
            humantime::format_duration(timeout),
            targets_table(record)
        ));
        Ok(Outcome::ok("paused").summary(&self.markdown).output("expires_at", expires_at.to_string()))
    }

    /// Puts each target's candidate in place on its router (no traffic);
    /// an ALB target's candidate is pinned from its router now. A router
    /// with traffic on another candidate is refused.
    async fn set_candidates(&self, record: &mut Record, wave: &[String]) -> Result<(), Failure> {
        let routers: Vec<&Target> = wave.iter().filter_map(|n| self.target(n)).collect();
        let states = all(routers.iter().map(|t| t.router.state()).collect()).await;
        for (t, state) in routers.iter().zip(states) {
            let state = state.map_err(|e| Failure::provider(anyhow!("target {}: {e}", t.name())))?;
            let wanted = match record.target(t.name()).and_then(|s| s.candidate.clone()) {
                Some(wanted) => wanted,
                None => match state.candidate.clone() {
                    // The ALB's candidate target group is where the release
                    // was deployed; pinned now, before traffic moves.
                    Some(arn) if matches!(t.router, Router::Alb(_)) => arn,
                    _ => {
                        return Err(Failure::provider(anyhow!("target {}: the router names no candidate", t.name())));
                    }
                },
            };
            if state.candidate.as_deref() != Some(wanted.as_str()) {
                if state.candidate_weight > 0 {
                    return Err(Failure::input(anyhow!(
                        "target {}: the router sends {}% of traffic to candidate {}, not to {}'s candidate {wanted}: roll that back first",
                        t.name(),
                        state.candidate_weight,
                        state.candidate.as_deref().unwrap_or("(none)"),
                        record.subject()
                    )));
                }
                t.router
                    .set_candidate(&wanted)
                    .await
                    .map_err(|e| Failure::provider(anyhow!("target {}: {e}", t.name())))?;
            }
            if let Some(s) = record.targets.iter_mut().find(|s| s.name == t.name()) {
                s.candidate = Some(wanted);
            }
        }
        self.ctx.save(record)
    }

    /// Sets `weight` on every target of the wave at once, each read back
    /// and recorded; the first router that failed stops the wave.
    async fn set_weights(
        &mut self,
        record: &mut Record,
        wave: &[String],
        weight: u8,
        stage: usize,
    ) -> Result<Option<Stop>, Failure> {
        let routers: Vec<&Target> = wave.iter().filter_map(|n| self.target(n)).collect();
        let states = all(routers.iter().map(|t| t.router.set_weight(weight)).collect()).await;
        let mut stop = None;
        for (t, state) in routers.iter().zip(states) {
            match state {
                Ok(state) => {
                    let from = record.target(t.name()).map_or(0, |s| s.candidate_weight);
                    record.set_target_weight(t.name(), state.candidate_weight);
                    record.transition(Step::ShiftTraffic, Status::Shifting, now()).map_err(refused)?;
                    record.push_for(
                        "shift-traffic",
                        Some(t.name()),
                        EventDetail::Traffic { from, to: weight, stage: Some(stage) },
                        now(),
                    );
                    eprintln!("shift-traffic: target {}: candidate {from}% -> {weight}%", t.name());
                    let recorded = record.target(t.name()).and_then(|s| s.candidate.clone());
                    if let (Some(recorded), Some(routed)) = (recorded, &state.candidate)
                        && recorded != *routed
                        && stop.is_none()
                    {
                        stop = Some(Stop {
                            target: t.name().to_owned(),
                            reason: format!(
                                "its router now routes the candidate share to {routed}, not to this deployment's candidate {recorded}: something else changed the router"
                            ),
                            verdict: None,
                            cause: None,
                        });
                    }
                }
                Err(e) if stop.is_none() => {
                    stop = Some(Stop {
                        target: t.name().to_owned(),
                        reason: format!("its router failed setting {weight}%: {e}"),
                        verdict: None,
                        cause: None,
                    });
                }
                Err(e) => eprintln!("shift-traffic: target {}: {e}", t.name()),
            }
        }
        self.ctx.save(record)?;
        Ok(stop)
    }

    /// Judges every named target at once for `duration` (each with its own
    /// router, checks and sources); records each verdict; the first target
    /// that did not pass stops the deployment.
    async fn judge(
        &mut self,
        record: &mut Record,
        names: &[String],
        duration: Duration,
        stage: Option<usize>,
        label: &dyn Fn(&str) -> String,
    ) -> Result<Option<Stop>, Failure> {
        let judged: Vec<&Target> = names.iter().filter_map(|n| self.target(n)).collect();
        if duration.is_zero() || judged.iter().all(|t| t.checks.unanalysed) {
            if !duration.is_zero() {
                eprintln!(
                    "{}: waits {} without analysis (analysis = \"none\")",
                    self.step,
                    humantime::format_duration(duration)
                );
                tokio::time::sleep(duration).await;
            }
            return Ok(None);
        }
        let ctx = self.ctx;
        let version = record.version.clone();
        let mut scopes = Vec::new();
        for t in &judged {
            let env = ctx.env();
            scopes.push(Scope {
                router: t.router.clone(),
                sources: ctx.config.sources_for_target(env, t.config),
                probes: ctx.config.probes_for_target(env, t.config),
            });
        }
        let labels: Vec<String> = judged.iter().map(|t| label(t.name())).collect();
        // Each at the weight its router confirmed.
        let weights: Vec<u8> =
            judged.iter().map(|t| record.target(t.name()).map_or(0, |s| s.candidate_weight)).collect();
        let analyses = judged
            .iter()
            .zip(&scopes)
            .zip(&labels)
            .zip(&weights)
            .map(|(((t, scope), label), weight)| {
                analyse_in(ctx, scope, &t.checks.specs, &version, *weight, duration, label)
            })
            .collect();
        let failed = |r: &Result<AnalysisReport, Failure>| r.as_ref().map_or(true, |r| r.verdict != Verdict::Pass);
        let reports = all_until(analyses, failed).await;
        let mut stop = None;
        for ((t, report), weight) in judged.iter().zip(reports).zip(weights) {
            let Some(report) = report else {
                eprintln!("{}: target {}: its analysis was stopped: another target failed", self.step, t.name());
                continue;
            };
            match report {
                Ok(report) => {
                    summary::log_verdict(&report);
                    let title = match stage {
                        Some(i) => format!("{}, stage {}: {weight}%", t.name(), i + 1),
                        None => format!("{} at {weight}%", t.name()),
                    };
                    self.markdown.push_str(&format!("##### {title}\n\n{}\n", summary::verdict_table(&report)));
                    if report.verdict != Verdict::Pass && stop.is_none() {
                        stop = Some(Stop {
                            target: t.name().to_owned(),
                            reason: report.reason.clone(),
                            verdict: Some(report.verdict),
                            cause: report.cause,
                        });
                    }
                    record.push_for(
                        self.step,
                        Some(t.name()),
                        EventDetail::Verdict { stage, report: Box::new(report) },
                        now(),
                    );
                }
                Err(failure) if stop.is_none() => {
                    stop = Some(Stop {
                        target: t.name().to_owned(),
                        reason: format!("{:#}", failure.error),
                        verdict: None,
                        cause: None,
                    });
                }
                Err(failure) => eprintln!("shift-traffic: target {}: {:#}", t.name(), failure.error),
            }
        }
        self.ctx.save(record)?;
        Ok(stop)
    }

    /// The first failing target fails the deployment: every target that
    /// moved (its wave's and every earlier wave's) is rolled back in
    /// parallel; exit 1 on a decision, 3 when a provider failed.
    async fn fail(&mut self, record: &mut Record, wave: usize, stop: Stop) -> Result<Outcome, Failure> {
        self.handled = true;
        let reason = format!("target {} in wave {}: {}", stop.target, wave + 1, stop.reason);
        let Some(verdict) = stop.verdict.filter(|v| *v != Verdict::Error) else {
            let failure = Failure::provider(anyhow!(reason));
            return Err(self.provider_failed(record, failure, Some(wave)).await);
        };
        let outcome = match stop.cause {
            Some(Cause::NoTraffic) => LedgerOutcome::Abandoned,
            _ => LedgerOutcome::RolledBack,
        };
        let names = to_roll_back(record, Some(wave));
        roll_back(self.ctx, record, &names, &reason, Step::ShiftTraffic, outcome).await?;
        let decision = format!("{verdict:?}").to_lowercase();
        crate::notify::send("shift-traffic", NotifyEvent::RolledBack, &decision, &reason).await;
        self.markdown.push_str(&format!(
            "**Rolled back** every target that moved ({}): {reason}\n\n{}",
            names.join(", "),
            targets_table(record)
        ));
        Ok(Outcome::new(Exit::DECLINED, decision).summary(&self.markdown).error("canary rolled back", &reason))
    }

    /// A provider failed mid-deployment: every target that moved is rolled
    /// back; exit 3 with each target's last confirmed weight named.
    async fn provider_failed(&mut self, record: &mut Record, failure: Failure, wave: Option<usize>) -> Failure {
        self.handled = true;
        // Traffic moved and was put back: not "nothing changed" (exit 2)
        // any more, but a stop (exit 1), or a provider's failure (exit 3).
        let (exit, reason) = match failure.exit {
            Exit::PROVIDER => (Exit::PROVIDER, format!("a provider failed during the canary: {:#}", failure.error)),
            _ => (Exit::DECLINED, format!("the canary stopped: {:#}", failure.error)),
        };
        let names = to_roll_back(record, wave);
        match roll_back(self.ctx, record, &names, &reason, Step::ShiftTraffic, LedgerOutcome::RolledBack).await {
            Ok(()) => Failure {
                exit,
                error: failure.error.context(format!(
                    "every target that moved ({}) was rolled back to its previous state",
                    names.join(", ")
                )),
            },
            Err(rollback) => rollback,
        }
    }
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

/// Restores the named targets to their state before the deployment, in
/// parallel, each recorded; once all are back the deployment is rolled back
/// (abandoned when no traffic was recorded as moved) and closed in the
/// ledger as `outcome`. A router that fails leaves the deployment open with
/// an `error` event naming every target's last confirmed weight (exit 3):
/// `rollback` finishes it.
pub(crate) async fn roll_back(
    ctx: &Context,
    record: &mut Record,
    names: &[String],
    reason: &str,
    step: Step,
    outcome: LedgerOutcome,
) -> Result<(), Failure> {
    // A first weight change cut short leaves the record `admitted`: its
    // routers are put back all the same, and the deployment abandoned.
    let to = match record.may_move(step, Status::RolledBack) {
        true => Status::RolledBack,
        false if record.may_move(step, Status::Abandoned) => Status::Abandoned,
        false => return Err(refused(record.refused(step, "roll it back"))),
    };
    let results = all(names.iter().map(|name| restore(ctx, record, name)).collect()).await;
    let mut failed = Vec::new();
    for (name, result) in names.iter().zip(results) {
        match result {
            Ok(restored) => {
                let from = match promoted(record, name) {
                    true => 100,
                    false => record.target(name).map_or(0, |t| t.candidate_weight),
                };
                record.set_target_weight(name, restored.candidate_weight);
                eprintln!("{step}: target {name}: rolled back: candidate {from}% -> {}%", restored.candidate_weight);
                if to == Status::RolledBack {
                    let detail = EventDetail::Rollback { reason: reason.to_owned(), from, restored };
                    record.push_for(step.name(), Some(name), detail, now());
                }
            }
            Err(e) => failed.push(e),
        }
    }
    if !failed.is_empty() {
        let message = format!(
            "{reason}; the rollback of {} failed ({}); last confirmed weights: {}; run `rollback` once the router answers again",
            failed.len(),
            failed.join("; "),
            weights(record)
        );
        record.push(step.name(), EventDetail::Error { message: message.clone() }, now());
        ctx.save(record)?;
        return Err(Failure::provider(anyhow!(message)));
    }
    if to == Status::Abandoned {
        return crate::rollback::abandon(ctx, record, step, reason).await;
    }
    let now = now();
    record.transition(step, Status::RolledBack, now).map_err(refused)?;
    eprintln!(
        "{step}: rolled back {}: {reason}",
        if names.is_empty() { "(no target had moved)".to_owned() } else { names.join(", ") }
    );
    let entry = record.ledger_entry(outcome, Some(reason.to_owned()), now);
    ctx.finish_ledger(record, entry).await
}

/// `rollback` of an environment with targets: every target that moved is
/// restored, in parallel; idempotent. `ctx` is loaded with the record, or
/// without it for `--live`.
pub(crate) async fn rollback(ctx: &Context, args: &crate::rollback::Args) -> Result<Outcome, Failure> {
    if args.live {
        if args.free_lease.is_some() {
            return Err(not_for_targets(ctx, "`rollback --live --free-lease`"));
        }
        return live(ctx, &args.reason).await;
    }
    let mut record = ctx.load_record()?;
    if args.if_expired {
        if let Some(outcome) = expire_pause(ctx, &mut record, Step::Rollback).await? {
            // Rolling back what expired is what was asked: exit 0.
            return Ok(outcome.with_exit(Exit::OK));
        }
        let why = match record.pause() {
            Some((_, weight, expires_at)) => format!("paused at {weight}% until {expires_at}"),
            None => format!("not paused: it is {}", record.describe()),
        };
        eprintln!("rollback: nothing to do: {} is {why}", record.subject());
        return Ok(Outcome::ok("kept"));
    }
    check_targets(ctx, &record)?;
    let moved = to_roll_back(&record, None);
    let (decision, words) = match record.status() {
        Status::Admitted | Status::Waiting if moved.is_empty() => {
            crate::rollback::abandon(ctx, &mut record, Step::Rollback, &args.reason).await?;
            ("abandoned", "No traffic had moved: the deployment is abandoned and the environment free.".to_owned())
        }
        Status::Blocked => {
            ("nothing", "The gate blocked this deployment; no traffic moved, nothing to roll back.".into())
        }
        Status::Promoted => {
            let every: Vec<String> = record.targets.iter().map(|t| t.name.clone()).collect();
            roll_back(ctx, &mut record, &every, &args.reason, Step::Rollback, LedgerOutcome::Reverted).await?;
            crate::notify::send("rollback", NotifyEvent::RolledBack, "revert", &args.reason).await;
            let words = format!(
                "The promotion is reverted on every target; the stable release before it serves again. Reason: {}",
                args.reason
            );
            ("reverted", words)
        }
        Status::RolledBack => {
            let restored = restore_again(ctx, &record, &moved).await?;
            ctx.settle_ledger(&mut record, true).await?;
            ("rolled-back", format!("Already rolled back; the routers confirm all traffic on stable ({restored})."))
        }
        Status::Abandoned => {
            ctx.settle_ledger(&mut record, true).await?;
            ("abandoned", "Already abandoned; no traffic had moved.".into())
        }
        _ => {
            roll_back(ctx, &mut record, &moved, &args.reason, Step::Rollback, LedgerOutcome::RolledBack).await?;
            crate::notify::send("rollback", NotifyEvent::RolledBack, "rollback", &args.reason).await;
            (
                "rolled-back",
                format!("Every target that moved ({}) is back as it was. Reason: {}", moved.join(", "), args.reason),
            )
        }
    };
    Ok(Outcome::ok(decision).summary(format!(
        "{}{}\n\n{}",
        summary::heading("rollback", &record, decision),
        words,
        targets_table(&record)
    )))
}

/// `rollback --live` with targets: no record; every target's live router
/// sends all its traffic to stable, in parallel. A router that fails is
/// named (exit 3); the others are back on stable.
async fn live(ctx: &Context, reason: &str) -> Result<Outcome, Failure> {
    let env = ctx.env();
    let routers: Vec<(&str, Router)> =
        env.targets.iter().map(|t| (t.name.as_str(), Router::from_config(&t.router, Backoff::default()))).collect();
    let results = all(routers.iter().map(|(_, router)| router.set_weight(0)).collect()).await;
    let mut failed = Vec::new();
    let mut table = sluice_core::gha::Table::new(&["target", "candidate weight", "stable"]);
    for ((name, _), result) in routers.iter().zip(results) {
        match result {
            Ok(state) => {
                eprintln!("rollback: target {name}: the live router now sends 100% to stable");
                table.row(&[
                    name.to_string(),
                    format!("{}%", state.candidate_weight),
                    state.stable.unwrap_or_default(),
                ]);
            }
            Err(e) => failed.push(format!("target {name}: {e}")),
        }
    }
    let markdown = format!(
        "### sluice rollback: {}\n\nNo record; every target's live router that answered now sends 100% of traffic to stable.\n\n{}",
        env.name,
        table.finish()
    );
    if !failed.is_empty() {
        return Err(Failure::provider(anyhow!(
            "{} of {} targets' live routers could not be set to stable ({}); the others are back on stable",
            failed.len(),
            routers.len(),
            failed.join("; ")
        )));
    }
    let notice = format!("{reason} (no record: every target's live router now sends 100% to stable)");
    crate::notify::send("rollback", NotifyEvent::RolledBack, "rollback", &notice).await;
    Ok(Outcome::ok("rolled-back").summary(markdown))
}

/// A repeated rollback: every target that moved is confirmed back as it
/// was (the record is already closed, so nothing is appended).
async fn restore_again(ctx: &Context, record: &Record, names: &[String]) -> Result<String, Failure> {
    let results = all(names.iter().map(|name| restore(ctx, record, name)).collect()).await;
    let mut confirmed = Vec::new();
    for (name, result) in names.iter().zip(results) {
        let state = result.map_err(|e| Failure::provider(anyhow!(e)))?;
        confirmed.push(format!("{name} {}%", state.candidate_weight));
    }
    Ok(confirmed.join(", "))
}

/// The evidence `promote` needs of an environment with targets: every
/// target's latest verdict passed, at 100%, over the plan's last stage (or
/// `min_final_analysis`), and still passes when judged again under its
/// checks. Returns the shortest time analysed and the checks counted.
pub(crate) fn evidence(ctx: &Context, record: &Record) -> Result<(Duration, usize), String> {
    let env = ctx.env();
    let required = ctx.config.min_final_analysis(&record.strategy);
    let slack = ctx.config.analysis.interval;
    let mut shortest: Option<Duration> = None;
    let mut checks = 0;
    for state in &record.targets {
        let name = &state.name;
        let Some(config) = env.target(name) else { return Err(format!("target {name} is not in the config any more")) };
        if state.candidate_weight != 100 {
            return Err(format!(
                "target {name} sends {}% of its traffic to the candidate, not 100%",
                state.candidate_weight
            ));
        }
        let specs = ctx.checks_for(Some(config)).map_err(|f| format!("{:#}", f.error))?;
        if specs.unanalysed {
            continue;
        }
        // Its verdicts since its weight last changed (its last stage's, and
        // the bakes after it): each must pass at 100%, and the longest must
        // cover what a promotion needs.
        let since = record
            .events
            .iter()
            .rposition(|e| e.target.as_deref() == Some(name) && matches!(e.detail, EventDetail::Traffic { .. }))
            .unwrap_or(0);
        let reports: Vec<&AnalysisReport> = record.events[since..]
            .iter()
            .filter_map(|e| match (&e.detail, e.target.as_deref()) {
                (EventDetail::Verdict { report, .. }, Some(t)) if t == name => Some(report.as_ref()),
                _ => None,
            })
            .collect();
        if reports.is_empty() {
            return Err(format!("target {name} has no health verdict at 100% yet"));
        }
        let mut analysed = Duration::ZERO;
        for report in reports {
            if report.verdict != Verdict::Pass {
                return Err(format!(
                    "target {name}'s verdict is {}: {}",
                    format!("{:?}", report.verdict).to_lowercase(),
                    report.reason
                ));
            }
            if report.candidate_weight != Some(100) {
                return Err(format!("target {name}'s latest passing verdict was not taken at 100%"));
            }
            let replayed =
                sluice_analysis::Analysis::rejudge(specs.specs.clone(), ctx.config.analysis.policy.clone(), report);
            if replayed.verdict != Verdict::Pass {
                return Err(format!(
                    "target {name}'s recorded samples do not pass under its checks ({}: {})",
                    format!("{:?}", replayed.verdict).to_lowercase(),
                    replayed.reason
                ));
            }
            if let (Some(first), Some(last)) = (report.intervals.first(), report.intervals.last()) {
                analysed = analysed.max(Duration::try_from(last.end.duration_since(first.start)).unwrap_or_default());
            }
        }
        if analysed + slack < required {
            return Err(format!(
                "target {name}'s passing verdict at 100% covers {}, less than the {} required",
                humantime::format_duration(Duration::from_secs(analysed.as_secs())),
                humantime::format_duration(required)
            ));
        }
        shortest = Some(shortest.map_or(analysed, |s| s.min(analysed)));
        checks += specs.specs.len();
    }
    if record.targets.is_empty() {
        return Err("the record lists no targets".into());
    }
    Ok((shortest.unwrap_or_default(), checks))
}

/// `promote`'s router part with targets: every target not promoted yet
/// makes its candidate stable, in parallel. A target that cannot be
/// promoted leaves the deployment unpromoted and is named (exit 3); a
/// re-run promotes the ones left.
pub(crate) async fn promote_routers(ctx: &Context, record: &mut Record) -> Result<(), Failure> {
    let env = ctx.env();
    let done = |name: &str| {
        record
            .events
            .iter()
            .any(|e| e.target.as_deref() == Some(name) && matches!(e.detail, EventDetail::Promote { .. }))
    };
    let left: Vec<(&TargetConfig, Router)> = record
        .targets
        .iter()
        .filter(|t| !done(&t.name))
        .filter_map(|t| env.target(&t.name))
        .map(|c| (c, Router::from_config(&c.router, Backoff::default())))
        .collect();
    let results = all(left.iter().map(|(_, router)| router.promote()).collect()).await;
    let mut failed = Vec::new();
    for ((config, _), result) in left.iter().zip(results) {
        match result {
            Ok(_) => {
                record.push_for(
                    "promote",
                    Some(&config.name),
                    EventDetail::Promote { next_environment: None, unanalysed: false },
                    now(),
                );
                eprintln!("promote: target {}: the candidate is stable", config.name);
            }
            Err(e) => failed.push(format!("target {}: {e}", config.name)),
        }
    }
    if failed.is_empty() {
        return Ok(());
    }
    let message = format!(
        "{} of {} targets could not be promoted ({}); the deployment is not promoted: run `promote` again once they answer, or `rollback`",
        failed.len(),
        record.targets.len(),
        failed.join("; ")
    );
    record.push("promote", EventDetail::Error { message: message.clone() }, now());
    ctx.save(record)?;
    Err(Failure::provider(anyhow!(message)))
}

/// After a cancelled step of an environment with targets: every target's
/// router read back (in parallel, without retries, 2s each), its weight put
/// in the record with a `cancelled` event tagged with it. A `shift-traffic`
/// cancelled before any traffic moved abandons the deployment; one that
/// moved leaves a record from which `rollback` restores every target.
pub(crate) async fn record_cancellation(ctx: &Context, mut record: Record, step: &str, signal: &str) {
    let env = ctx.env();
    let names: Vec<String> = record.targets.iter().map(|t| t.name.clone()).collect();
    let reads = all(names
        .iter()
        .map(|name| async move {
            let config = env.target(name)?;
            let router = Router::from_config(&config.router, Backoff::NONE);
            Some(match tokio::time::timeout(Duration::from_secs(2), router.state()).await {
                Ok(Ok(state)) => Ok(state.candidate_weight),
                Ok(Err(e)) => Err(e.to_string()),
                Err(_) => Err("the router did not answer within 2s".to_owned()),
            })
        })
        .collect())
    .await;
    let unmoved = step == "shift-traffic" && record.status() == Status::Admitted;
    let mut changed = false;
    for (name, read) in names.iter().zip(reads) {
        let Some(read) = read else { continue };
        let before = record.target(name).and_then(|t| t.router_before.as_ref()).map_or(0, |b| b.candidate_weight);
        let (candidate_weight, router_error) = match read {
            Ok(weight) => {
                changed |= weight != before;
                record.set_target_weight(name, weight);
                (Some(weight), None)
            }
            Err(e) => {
                // Unknown: it may have moved.
                changed = true;
                (None, Some(e))
            }
        };
        let detail = EventDetail::Cancelled { signal: signal.to_owned(), candidate_weight, router_error };
        record.push_for(step, Some(name), detail, now());
    }
    if unmoved && !changed {
        let reason = format!("cancelled by {signal} before any traffic moved");
        match crate::rollback::abandon(ctx, &mut record, Step::ShiftTraffic, &reason).await {
            Ok(()) => eprintln!("{step}: stopped before any traffic moved: the deployment is abandoned"),
            Err(e) => eprintln!("{step}: stopped before any traffic moved; closing the deployment: {:#}", e.error),
        }
        return;
    }
    if unmoved {
        // A first weight change landed before the signal: recorded, so
        // `rollback` restores it.
        let _ = record.transition(Step::ShiftTraffic, Status::Shifting, now());
    }
    match ctx.save(&record) {
        Ok(()) => eprintln!("{step}: stopped; last confirmed weights: {}", weights(&record)),
        Err(e) => eprintln!("{step}: could not save the record: {:#}", e.error),
    }
}

/// `verify-health` of an environment with targets: every target that takes
/// candidate traffic judged at once at its weight, each on its own checks
/// and sources, every verdict recorded; verified only when every target
/// holds the evidence `promote` needs. Rolls nothing back (a failing
/// verdict is exit 1, as for one router; `rollback` acts on it).
pub(crate) async fn verify(ctx: &Context, duration: Option<Duration>) -> Result<Outcome, Failure> {
    let mut record = ctx.load_record()?;
    if let Err(refused) = record.may_act(Step::VerifyHealth, "judge the candidate") {
        return Ok(Outcome::refused("verify-health", &record, &refused));
    }
    check_targets(ctx, &record)?;
    let targets = targets(ctx, true)?;
    let judged: Vec<String> =
        record.targets.iter().filter(|t| t.candidate_weight > 0).map(|t| t.name.clone()).collect();
    if judged.is_empty() {
        return Err(Failure::input(anyhow!(
            "no target of {} takes candidate traffic: run `shift-traffic` first; nothing was judged",
            record.subject()
        )));
    }
    if targets.iter().all(|t| t.checks.unanalysed) {
        return crate::verify_health::unanalysed(ctx, record);
    }
    if let Err(holder) = ctx.hold_lease(&record, None).await?.result {
        return Ok(Outcome::declined("held")
            .summary(format!("{}{holder}\n", summary::heading("verify-health", &record, "environment held")))
            .error("environment held", &holder));
    }
    let duration = duration.unwrap_or_else(|| {
        record.strategy.plan().iter().map(|(_, d)| *d).find(|d| !d.is_zero()).unwrap_or(Duration::from_secs(60))
    });
    let mut run =
        Run { ctx, step: "verify-health", targets: &targets, markdown: String::new(), handled: false, pause_at: None };
    let label = |name: &str| format!("verify-health {name}");
    let stop = run.judge(&mut record, &judged, duration, None, &label).await?;
    let to = match record.status() {
        Status::Shifting | Status::Verified if evidence(ctx, &record).is_ok() => Status::Verified,
        Status::Shifting | Status::Verified => Status::Shifting,
        other => other,
    };
    record.transition(Step::VerifyHealth, to, now()).map_err(refused)?;
    ctx.save(&record)?;
    let (exit, decision, reason) = match &stop {
        None => (Exit::OK, "pass".to_owned(), None),
        Some(stop) => {
            let reason = format!("target {}: {}", stop.target, stop.reason);
            match stop.verdict {
                Some(v @ (Verdict::Fail | Verdict::Inconclusive)) => {
                    (Exit::DECLINED, format!("{v:?}").to_lowercase(), Some(reason))
                }
                _ => (Exit::PROVIDER, "error".to_owned(), Some(reason)),
            }
        }
    };
    let markdown = format!(
        "{}{}\n{}",
        summary::heading("verify-health", &record, &decision),
        targets_table(&record),
        run.markdown
    );
    let outcome = Outcome::new(exit, decision).summary(markdown);
    Ok(match reason {
        None => outcome,
        Some(reason) => outcome.error("verify-health", &reason),
    })
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
