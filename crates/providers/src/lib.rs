//! Providers: the things outside sluice that it drives and reads.
//!
//! - [`router`]: traffic routers (the embedded `sluice-router`, an ALB,
//!   CodeDeploy).
//! - [`aws`]: AWS plumbing (credentials, region, retries, timeouts, errors)
//!   and the AWS providers.
//! - [`git`]: the commits a deployment ships, from the local checkout.
//! - [`metrics`]: turns what routers, probes and query sources measure into
//!   analysis [`Interval`](sluice_analysis::Interval)s.
//! - [`notify`]: Slack and JSON webhooks, bounded in time, never failing a
//!   deployment.
//! - [`prometheus`]: the Prometheus query source (PromQL over the HTTP API).
//! - [`ledger`]: the deployment history, as the JSON Lines file (plain file
//!   I/O in `sluice_core::ledger`) or GitHub Deployments.
//! - [`github`]: the GitHub REST client on octocrab, the deployments ledger,
//!   the queries behind the gate's GitHub checks, workflow dispatch.
//!
//! Every network call has a timeout and is retried with backoff when the
//! failure is transient; what is still failing after that is a
//! [`ProviderError`], which the steps report with exit code 3. Nothing here
//! decides anything: judgment lives in `sluice-analysis`, policy in the steps.

pub mod aws;
pub mod git;
pub mod github;
pub mod ledger;
pub mod metrics;
pub mod notify;
pub mod prometheus;
pub mod retry;
pub mod router;

use std::fmt;

/// A provider call that failed (after retries, when it was retryable).
#[derive(Debug, thiserror::Error)]
pub struct ProviderError {
    /// `local router`, `probe`, `ledger`, ...
    pub provider: &'static str,
    /// What was being done: `set weight to 25`.
    pub operation: String,
    /// What went wrong, with the provider's own words.
    pub message: String,
    /// Worth trying again.
    pub transient: bool,
    /// Attempts made.
    pub attempts: u32,
}

impl fmt::Display for ProviderError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} failed to {}: {}", self.provider, self.operation, self.message)?;
        if self.attempts > 1 {
            write!(f, " (after {} attempts)", self.attempts)?;
        }
        Ok(())
    }
}
