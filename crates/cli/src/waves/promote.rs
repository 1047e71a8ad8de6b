//! `promote` of an environment of targets: the evidence every target must
//! hold, and every router made to serve the candidate as stable.

use super::*;

/// The evidence `promote` needs of an environment with targets: every
/// target's latest verdict passed, at 100%, over the plan's last stage (or
/// `min_final_analysis`), and still passes when judged again under its
/// checks. Returns the shortest time analysed and the checks counted.
pub(crate) fn evidence(ctx: &Context, record: &Record) -> Result<(Duration, usize), String> {
    let env = ctx.env();
    let required = ctx.config.min_final_analysis(&record.strategy);
    let slack = ctx.config.interval();
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
            analysed = analysed.max(crate::promote::analysed(report));
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
