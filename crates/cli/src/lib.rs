//! The six step binaries of sluice, as a library: each `src/bin/*.rs` only
//! calls the matching module's `main`.
//!
//! Shared here: the flags every step takes, the run wrapper (runtime, error
//! printing with the whole chain, `::error::` annotations, exit codes), the
//! analysis loop that both `shift-traffic` and `verify-health` use, and the
//! step summaries. Steps never print data to stderr or logs to stdout.

pub mod dora_report;
pub mod gate;
pub mod promote;
pub mod rollback;
pub mod shift_traffic;
pub mod verify_health;

mod analyse;
mod codedeploy;
mod context;
mod deployment_metrics;
mod summary;

use sluice_core::{Exit, Failure, gha};
use std::future::Future;
use std::process::ExitCode;

/// Runs a step like [`run`], then publishes the deployment metrics of what
/// it appended to the record, when the config asks for them.
pub(crate) fn run_step<F>(step: &'static str, common: context::Common, body: F) -> ExitCode
where
    F: Future<Output = Result<Exit, Failure>>,
{
    run(step, async move {
        let since = context::now();
        let result = body.await;
        deployment_metrics::publish(step, &common, since).await;
        result
    })
}

/// Runs a step: parses nothing (clap already did), builds the runtime, maps
/// the result to the documented exit code and reports errors once.
pub(crate) fn run<F>(step: &str, body: F) -> ExitCode
where
    F: Future<Output = Result<Exit, Failure>>,
{
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => {
            gha::error(step, &format!("cannot start the async runtime: {e}"));
            return Exit::PROVIDER.into();
        }
    };
    match runtime.block_on(body) {
        Ok(exit) => exit.into(),
        Err(failure) => {
            let kind = match failure.exit {
                Exit::BAD_INPUT => "bad input",
                Exit::PROVIDER => "provider failure",
                _ => "failure",
            };
            gha::error(&format!("{step}: {kind}"), &format!("{:#}", failure.error));
            failure.exit.into()
        }
    }
}
