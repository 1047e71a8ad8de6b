//! `verify-health` of an environment of targets: every target that takes
//! candidate traffic judged at once, each on its own checks.

use super::*;

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
    let stop = run.judge(&mut record, &judged, (duration, Duration::ZERO), None, &label).await?;
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
