//! `shift-traffic` of an environment of targets: the plan wave by wave, the
//! targets of a wave in parallel, the first failure rolling back every wave
//! started.

use super::*;

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
