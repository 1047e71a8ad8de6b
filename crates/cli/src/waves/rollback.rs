//! `rollback` of an environment of targets: every target that moved restored
//! in parallel (or a promotion reverted on each), from the record or the live
//! routers; a cancelled step's targets read back into the record.

use super::*;

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
            // Finishing a deployment a target's router failure stopped: the
            // record, the ledger and the notification still say which.
            let reason = match stopped_at(&record) {
                Some((name, at)) if !args.reason.contains(&at) => {
                    crate::notify::stopped_by(&name);
                    format!("{}; {at} had stopped the deployment", args.reason)
                }
                _ => args.reason.clone(),
            };
            roll_back(ctx, &mut record, &moved, &reason, Step::Rollback, LedgerOutcome::RolledBack).await?;
            crate::notify::send("rollback", NotifyEvent::RolledBack, "rollback", &reason).await;
            (
                "rolled-back",
                format!("Every target that moved ({}) is back as it was. Reason: {reason}", moved.join(", ")),
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

/// The target whose failure stopped an open deployment, as the first
/// `error` event names it (`target NAME in wave N`): its name and those
/// words.
fn stopped_at(record: &Record) -> Option<(String, String)> {
    record.events.iter().find_map(|e| match &e.detail {
        EventDetail::Error { message } => record.targets.iter().find_map(|t| {
            let start = message.find(&format!("target {} in wave ", t.name))?;
            let words = message[start..].split(':').next()?;
            Some((t.name.clone(), words.to_owned()))
        }),
        _ => None,
    })
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
