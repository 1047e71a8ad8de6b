//! `verify-health --calibrate`: an A/A run on live traffic. The stable
//! release is routed as its own candidate through the environment's whole
//! plan, every check judged as in a real canary (the same alpha share, the
//! same windows), each on its own to the end of every stage, and the report
//! says how often each check would have failed the stable release against
//! itself, and how close it came: the false-rollback rate and the noise of
//! this environment's checks, measured before trusting them.
//!
//! It keeps no record and writes no ledger entry; it never runs while a
//! deployment holds the environment or the router sends traffic to a
//! candidate, and it leaves the router at 0 % with the candidate it found.
//! Embedded router: the candidate pool is pointed at the stable upstream.
//! ALB: the candidate target group is used as it is, so deploy the stable
//! release into it first. CodeDeploy owns its shifts: refused.

use crate::Outcome;
use crate::analyse::{Observed, Window, planned_intervals, sample};
use crate::context::{Common, Context, lease_grace, ledger_failure, now};
use anyhow::anyhow;
use sluice_analysis::{Analysis, CheckSpec, Outcome as Step, Policy, Verdict};
use sluice_core::{Classify, Exit, Failure, gha};
use sluice_providers::router::Router;
use std::fmt::Write as _;

/// One check in one stage, judged on its own.
struct Judged {
    check: String,
    verdict: Verdict,
    /// The smallest always-valid p-value it reached (adjusted for the
    /// recent windows), against its alpha.
    p_value: Option<f64>,
    message: String,
}

/// Runs the calibration: exit 0 when no check would have failed the stable
/// release, 1 when one would have (its thresholds roll back healthy
/// releases here), 2 on bad input, 3 when a provider failed.
pub async fn run(common: &Common) -> Result<Outcome, Failure> {
    let ctx = Context::load_without_record(common)?;
    let env = ctx.env().name.clone();
    let checks = ctx.checks()?;
    if checks.unanalysed {
        return Err(Failure::input(anyhow!(
            "environment {env} says analysis = \"none\": there are no checks to calibrate"
        )));
    }
    let router = ctx.router()?;
    if router.is_codedeploy() {
        return Err(Failure::input(anyhow!(
            "environment {env} uses CodeDeploy, which owns its traffic shifts: calibrate on an embedded router or an ALB environment"
        )));
    }
    let plan: Vec<(u8, std::time::Duration)> =
        ctx.config.strategy_for(ctx.env()).plan().into_iter().filter(|(_, d)| !d.is_zero()).collect();
    if plan.is_empty() {
        return Err(Failure::input(anyhow!(
            "environment {env}'s strategy has no stage with a duration to analyse: calibrate with a canary plan"
        )));
    }
    // Never beside a deployment: the lease, then the router.
    let grace = lease_grace(ctx.config.lease_timeout_for(ctx.env()));
    let holder = ctx
        .ledger()?
        .lease_holder(&ctx.config.app, &env, now(), grace)
        .await
        .map_err(|e| ledger_failure(e, "the environment lease could not be read"))?;
    if let Some(holder) = holder {
        let why = format!("environment {env} is held by {}: calibrate when no deployment runs", holder.describe());
        return Ok(Outcome::declined("held")
            .summary(format!("### sluice calibrate: {env}\n\n{why}\n"))
            .error("calibrate", &why));
    }
    let before = router.state().await.provider_failed()?;
    if before.candidate_weight > 0 {
        let why = format!(
            "the router of {env} sends {}% to candidate {}: a deployment is in progress; calibrate when none is",
            before.candidate_weight,
            before.candidate.as_deref().unwrap_or("(none)")
        );
        return Ok(Outcome::declined("busy")
            .summary(format!("### sluice calibrate: {env}\n\n{why}\n"))
            .error("calibrate", &why));
    }
    if router.is_local() {
        let stable =
            before.stable.clone().ok_or_else(|| Failure::provider(anyhow!("the router names no stable upstream")))?;
        router.set_candidate(&stable).await.provider_failed()?;
    }
    let judged = stages(&ctx, &router, &checks.specs, &plan).await;
    // Back to 0 % and the candidate it had, whatever happened.
    let reset = router.set_weight(0).await;
    if let (Router::Local(_), Some(candidate)) = (&router, &before.candidate)
        && let Err(e) = router.set_candidate(candidate).await
    {
        gha::warning(&format!("the router's candidate was not put back to {candidate}: {e}"));
    }
    let judged = judged?;
    reset.provider_failed()?;
    Ok(report(&ctx, &checks.specs, &plan, &judged))
}

/// Every stage of the plan, each check judged on its own.
async fn stages(
    ctx: &Context,
    router: &Router,
    specs: &[CheckSpec],
    plan: &[(u8, std::time::Duration)],
) -> Result<Vec<Vec<Judged>>, Failure> {
    let policy = &ctx.config.analysis.policy;
    // Each check gets the alpha it has in the real analysis.
    let statistical = specs.iter().filter(|c| c.is_statistical()).count().max(1);
    let alpha = Policy { alpha: policy.alpha / statistical as f64 };
    let mut all = Vec::new();
    for (i, (weight, duration)) in plan.iter().enumerate() {
        router.set_weight(*weight).await.provider_failed()?;
        let planned = planned_intervals(*duration, ctx.config.interval());
        let mut analyses: Vec<Analysis> = specs
            .iter()
            .map(|spec| {
                let policy = if spec.is_statistical() { alpha.clone() } else { policy.clone() };
                Analysis::at_weight(vec![spec.clone()], policy, *weight).planned(planned)
            })
            .collect();
        let mut smallest: Vec<Option<f64>> = vec![None; specs.len()];
        let label = format!("calibrate stage {}/{} {weight}%", i + 1, plan.len());
        let after = plan[i + 1..].iter().map(|(_, d)| *d).sum();
        sample(ctx, "calibration", specs, Window { label: &label, duration: *duration, after }, |interval| {
            for (k, analysis) in analyses.iter_mut().enumerate() {
                // Each goes on to the end: later intervals are recorded,
                // not judged, once it decided.
                if let Step::Continue = analysis.observe(interval.clone()) {
                    let p = analysis.evidence().first().and_then(|c| c.p_value);
                    smallest[k] = match (smallest[k], p) {
                        (Some(a), Some(b)) => Some(a.min(b)),
                        (a, b) => a.or(b),
                    };
                }
            }
            Observed::Continue { status: None }
        })
        .await?;
        let stage = analyses
            .into_iter()
            .zip(smallest)
            .map(|(analysis, p_value)| {
                let report = analysis.finish();
                let evidence = report.checks.first();
                Judged {
                    check: evidence.map_or_else(String::new, |e| e.name.clone()),
                    verdict: report.verdict,
                    p_value: match (p_value, evidence.and_then(|e| e.p_value)) {
                        (Some(a), Some(b)) => Some(a.min(b)),
                        (a, b) => a.or(b),
                    },
                    message: report.reason,
                }
            })
            .filter(|j| !j.check.is_empty())
            .collect();
        all.push(stage);
    }
    Ok(all)
}

fn report(ctx: &Context, specs: &[CheckSpec], plan: &[(u8, std::time::Duration)], judged: &[Vec<Judged>]) -> Outcome {
    let env = &ctx.env().name;
    let statistical = specs.iter().filter(|c| c.is_statistical()).count().max(1);
    let alpha = ctx.config.analysis.policy.alpha / statistical as f64;
    let mut md = format!(
        "### sluice calibrate: {env}\n\nThe stable release as its own candidate through the plan ({}): how often each check would have failed it (an A/A run; every failure is a false rollback).\n\n| check | would have failed | closest to failing (p, alpha {}) |\n|---|---|---|\n",
        plan.iter().map(|(w, d)| format!("{w}% for {}", humantime::format_duration(*d))).collect::<Vec<_>>().join(", "),
        p_text(alpha)
    );
    let mut failing = 0;
    for spec in specs {
        let mine: Vec<&Judged> = judged.iter().flatten().filter(|j| j.check == spec.name).collect();
        let failed = mine.iter().filter(|j| j.verdict != Verdict::Pass).count();
        failing += usize::from(failed > 0);
        let p = mine.iter().filter_map(|j| j.p_value).fold(None, |a: Option<f64>, b| Some(a.map_or(b, |a| a.min(b))));
        let _ = writeln!(
            md,
            "| {} | {failed} of {} stages | {} |",
            gha::escape_markdown(&spec.name),
            mine.len(),
            p.map_or("-".into(), p_text)
        );
        eprintln!(
            "calibrate: {}: would have failed {failed} of {} stages; smallest p {}",
            spec.name,
            mine.len(),
            p.map_or("-".into(), p_text)
        );
    }
    md.push_str("\n| stage | check | verdict | why |\n|---|---|---|---|\n");
    for (i, stage) in judged.iter().enumerate() {
        for j in stage {
            let _ = writeln!(
                md,
                "| {} ({}%) | {} | {:?} | {} |",
                i + 1,
                plan[i].0,
                gha::escape_markdown(&j.check),
                j.verdict,
                gha::escape_markdown(&j.message)
            );
        }
    }
    let decision = if failing == 0 { "calibrated" } else { "would-roll-back" };
    md.push_str(&match failing {
        0 => "\nNo check would have rolled back the stable release.\n".to_owned(),
        n => format!(
            "\n{n} check{} would have rolled back the stable release against itself: its thresholds are tighter than this environment's noise (see docs/judging-health.md, \"Calibration\").\n",
            if n == 1 { "" } else { "s" }
        ),
    });
    let outcome = Outcome::new(if failing == 0 { Exit::OK } else { Exit::DECLINED }, decision)
        .summary(md)
        .output("failing_checks", failing.to_string());
    if failing > 0 {
        outcome.error("calibrate", &format!("{failing} check(s) would have failed the stable release against itself"))
    } else {
        outcome
    }
}

fn p_text(p: f64) -> String {
    if p >= 0.001 { format!("{p:.3}") } else { format!("{p:.1e}") }
}
