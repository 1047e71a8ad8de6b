//! What a provider failure in `shift-traffic` leaves behind: a canary
//! that never started is abandoned (the environment freed); one that
//! stopped half-way is rolled back to stable; and when even that fails, the
//! record's `error` event says the last weight the router confirmed and to
//! run `rollback`. It must never report a failure without the record saying
//! where traffic stands.

use crate::context::{Context, now};
use crate::rollback::{abandon, roll_back};
use anyhow::anyhow;
use sluice_core::Failure;
use sluice_core::lifecycle::Step;
use sluice_core::record::{EventDetail, Record, Status};
use sluice_providers::router::Router;

/// The canary could not start (the router did not answer before any
/// traffic moved): the deployment is abandoned, which frees the
/// environment, and the failure is reported (exit 3).
pub(super) async fn start_failed(ctx: &Context, record: &mut Record, failure: Failure) -> Failure {
    if !record.may_move(Step::ShiftTraffic, Status::Abandoned) {
        return record_failure(ctx, record, failure, "the plan did not continue");
    }
    let reason = format!("the canary did not start: {:#}", failure.error);
    match abandon(ctx, record, Step::ShiftTraffic, &reason).await {
        Ok(()) => Failure::provider(
            failure.error.context("the canary did not start; no traffic was moved, the deployment is abandoned and the environment free"),
        ),
        Err(e) => Failure::provider(failure.error.context(format!(
            "the canary did not start; no traffic was moved, but the deployment could not be closed ({:#}); run `rollback` on this record",
            e.error
        ))),
    }
}

/// A provider stayed down in the middle of the plan: traffic goes back to
/// stable so the canary is not left half-shifted; if even that fails, the
/// record says where traffic stood when the router last answered. Exit 3
/// either way.
pub(super) async fn after_provider_failure(
    ctx: &Context,
    router: &Router,
    record: &mut Record,
    failure: Failure,
) -> Failure {
    let reason = format!("a provider failed during the canary: {:#}", failure.error);
    match roll_back(ctx, router, record, &reason, Step::ShiftTraffic).await {
        Ok(()) => Failure::provider(failure.error.context("the canary was rolled back to 100% stable")),
        Err(rollback) => {
            let what = format!("the rollback failed too ({:#})", rollback.error);
            record_failure(ctx, record, failure, &what)
        }
    }
}

/// Appends an `error` event that says where traffic stands (the last weight
/// the router confirmed) and what to do, and returns the failure with it.
pub(super) fn record_failure(ctx: &Context, record: &mut Record, failure: Failure, what: &str) -> Failure {
    let stands = match record.events.iter().any(|e| matches!(e.detail, EventDetail::Traffic { .. })) {
        false => "no traffic was moved".to_owned(),
        true => format!(
            "the router last confirmed {}% on the candidate: run `rollback` once it answers again",
            record.candidate_weight
        ),
    };
    let message = format!("{:#}; {what}; {stands}", failure.error);
    record.push("shift-traffic", EventDetail::Error { message: message.clone() }, now());
    if let Err(e) = ctx.save(record) {
        eprintln!("shift-traffic: could not save the record: {:#}", e.error);
    }
    Failure { exit: failure.exit, error: anyhow!(message) }
}
