//! The six step binaries of sluice, as a library: each `src/bin/*.rs` only
//! calls the matching module's `main`.
//!
//! Shared here: the flags every step takes, the run wrapper (runtime, error
//! printing with the whole chain, `::error::` annotations, exit codes), the
//! analysis loop that both `shift-traffic` and `verify-health` use, and the
//! step summaries. Steps never print data to stderr or logs to stdout.

pub mod dora_report;
pub mod gate;
pub mod inspect;
pub mod multicall;
pub mod promote;
pub mod rollback;
pub mod shift_traffic;
pub mod status;
pub mod verify_health;

mod analyse;
mod calibrate;
mod candidate;
#[cfg(feature = "aws")]
mod codedeploy;
mod context;
#[cfg(feature = "aws")]
mod deployment_metrics;
mod features;
mod notify;
pub mod outcome;
mod summary;
mod waves;

pub use outcome::Outcome;

use anyhow::anyhow;
use sluice_core::lifecycle::Step;
use sluice_core::record::{EventDetail, Status};
use sluice_core::{Exit, Failure, gha};
use std::future::Future;
use std::process::ExitCode;
use std::time::Duration;
use tokio::signal::unix::{SignalKind, signal};

/// How long a cancelled step may take to record where things stand; GitHub
/// sends SIGKILL 7.5 s after cancelling a run, and we promise 5 s.
const CANCEL_BUDGET: Duration = Duration::from_secs(3);
use std::sync::OnceLock;

static STEP: OnceLock<String> = OnceLock::new();

/// The step this process runs (`gate`, ...), for log and debug lines.
#[cfg_attr(not(feature = "github"), allow(dead_code))]
pub(crate) fn step_name() -> &'static str {
    STEP.get().map_or("sluice", String::as_str)
}

/// Runs a step like [`run`], then publishes the deployment metrics of what
/// it appended to the record, when the config asks for them, and writes its
/// [`Outcome`] once: the decision, outputs, summary and annotation, on
/// every exit code (a failure's too, with where the deployment stands).
///
/// A cancelled step (SIGINT, SIGTERM) records where traffic stands
/// ([`record_cancellation`]) and publishes nothing.
pub(crate) fn run_step<F>(step: &'static str, common: context::Common, body: F) -> ExitCode
where
    F: Future<Output = Result<Outcome, Failure>>,
{
    #[cfg(feature = "aws")]
    let for_metrics = common.clone();
    let record_path = common.record.clone();
    let result = run_cancellable(
        step,
        async move {
            #[cfg(feature = "aws")]
            let since = context::now();
            let result = body.await;
            #[cfg(feature = "aws")]
            deployment_metrics::publish(step, &for_metrics, since).await;
            result
        },
        |signal| async move { record_cancellation(step, &common, signal).await },
    );
    let outcome = match result {
        Ok(outcome) => outcome,
        Err(failure) => {
            let record =
                record_path.as_ref().and_then(|p| sluice_core::record::Record::load(p, &Default::default()).ok());
            Outcome::from_failure(step, &failure, record.as_ref())
        }
    };
    outcome.publish(record_path.as_deref())
}

/// Runs a step that keeps no record (`dora-report`): parses nothing (clap
/// already did), builds the runtime, maps the result to the documented exit
/// code and reports errors once.
pub(crate) fn run<F>(step: &str, body: F) -> ExitCode
where
    F: Future<Output = Result<Exit, Failure>>,
{
    match run_cancellable(step, body, |_| async {}) {
        Ok(exit) => exit.into(),
        Err(failure) => {
            let kind = match failure.exit {
                Exit::BAD_INPUT => "bad input",
                Exit::PROVIDER => "provider failure",
                Exit::INTERRUPTED | Exit::TERMINATED => "cancelled",
                _ => "failure",
            };
            gha::error(&format!("{step}: {kind}"), &format!("{:#}", failure.error));
            failure.exit.into()
        }
    }
}

/// Runs `body` on a fresh runtime, and on SIGINT or SIGTERM (a cancelled
/// workflow run, Ctrl-C) stops it at its next await point, gives
/// `on_cancel` up to [`CANCEL_BUDGET`] to record where things stand, and
/// fails with exit 130 or 143. A failure is sent to the webhooks that want
/// it before it is returned.
///
/// Stopping at an await point is consistent: the record is only written by
/// synchronous atomic saves, which a signal cannot interrupt, and a router
/// call cut short is read back by `on_cancel`.
pub(crate) fn run_cancellable<T, F, C, CF>(step: &str, body: F, on_cancel: C) -> Result<T, Failure>
where
    F: Future<Output = Result<T, Failure>>,
    C: FnOnce(&'static str) -> CF,
    CF: Future<Output = ()>,
{
    let _ = STEP.set(step.to_owned());
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => return Err(Failure::provider(anyhow!("cannot start the async runtime: {e}"))),
    };
    let result = runtime.block_on(async {
        // Registered before the step starts, so no signal falls back to the
        // default action (dying mid-change).
        let (Ok(mut interrupt), Ok(mut terminate)) = (signal(SignalKind::interrupt()), signal(SignalKind::terminate()))
        else {
            return Err(Failure::provider(anyhow!("cannot install the SIGINT/SIGTERM handlers")));
        };
        let (name, exit) = tokio::select! {
            result = body => return result,
            _ = interrupt.recv() => ("SIGINT", Exit::INTERRUPTED),
            _ = terminate.recv() => ("SIGTERM", Exit::TERMINATED),
        };
        eprintln!("{step}: cancelled by {name}; recording where things stand");
        if tokio::time::timeout(CANCEL_BUDGET, on_cancel(name)).await.is_err() {
            eprintln!("{step}: could not record the cancellation within {}s", CANCEL_BUDGET.as_secs());
        }
        Err(Failure {
            exit,
            error: anyhow!("cancelled by {name}; if traffic is on the candidate, run `rollback` to restore stable"),
        })
    });
    if let Err(failure) = &result {
        runtime.block_on(notify::failed(step, failure));
    }
    result
}

/// After a cancelled step: reads the router back, puts its weight in the
/// record with a `cancelled` event, and says where traffic stands. A
/// `shift-traffic` cancelled before any traffic moved (the router reads
/// back as it was) abandons the deployment, which frees the environment.
/// Best effort within the cancel budget; never makes a record up when there
/// is none.
pub(crate) async fn record_cancellation(step: &str, common: &context::Common, signal: &str) {
    let Ok(ctx) = context::Context::load(common) else { return };
    let Ok(mut record) = ctx.load_record() else { return };
    if ctx.env().has_targets() {
        return waves::record_cancellation(&ctx, record, step, signal).await;
    }
    let Ok(router) = ctx.router_without_retries() else { return };
    let (candidate_weight, router_error) = match tokio::time::timeout(Duration::from_secs(2), router.state()).await {
        Ok(Ok(state)) => (Some(state.candidate_weight), None),
        Ok(Err(e)) => (None, Some(e.to_string())),
        Err(_) => (None, Some("the router did not answer within 2s".to_owned())),
    };
    let before = record.router_before.as_ref().map_or(0, |b| b.candidate_weight);
    let unmoved = step == "shift-traffic" && record.status() == Status::Admitted;
    if let Some(weight) = candidate_weight {
        if unmoved && weight != before {
            // The first weight change landed before the signal: it is
            // recorded, so `rollback` restores it.
            let _ = record.transition(Step::ShiftTraffic, Status::Shifting, context::now());
        }
        record.candidate_weight = weight;
    }
    let detail =
        EventDetail::Cancelled { signal: signal.to_owned(), candidate_weight, router_error: router_error.clone() };
    record.push(step, detail, context::now());
    if unmoved && candidate_weight == Some(before) {
        let reason = format!("cancelled by {signal} before any traffic moved");
        match rollback::abandon(&ctx, &mut record, Step::ShiftTraffic, &reason).await {
            Ok(()) => eprintln!("{step}: stopped before any traffic moved: the deployment is abandoned"),
            Err(e) => eprintln!("{step}: stopped before any traffic moved; closing the deployment: {:#}", e.error),
        }
        return;
    }
    match ctx.save(&record) {
        Ok(()) => match (candidate_weight, router_error) {
            (Some(w), _) => {
                eprintln!("{step}: stopped with {w}% of traffic on the candidate (read back from the router)")
            }
            (None, Some(e)) => eprintln!("{step}: stopped; the router could not be read: {e}"),
            (None, None) => {}
        },
        Err(e) => eprintln!("{step}: could not save the record: {:#}", e.error),
    }
}
