//! Providers: the things outside sluice that it drives and reads.
//!
//! - [`router`]: traffic routers (the embedded `sluice-router`, an ALB,
//!   CodeDeploy).
//! - `aws`: AWS plumbing (credentials, region, retries, timeouts, errors)
//!   and the AWS providers (feature `aws`).
//! - [`error`]: [`ProviderError`], and the one way an underlying error is
//!   put into its message.
//! - [`git`]: the commits a deployment ships, from the local checkout.
//! - [`metrics`]: turns what routers, probes and query sources measure into
//!   analysis [`Interval`](sluice_analysis::Interval)s.
//! - [`notify`]: Slack and JSON webhooks, bounded in time, never failing a
//!   deployment.
//! - [`prometheus`]: the Prometheus query source (PromQL over the HTTP API).
//! - [`ledger`]: the deployment history, as the JSON Lines file (plain file
//!   I/O in `sluice_core::ledger`) or GitHub Deployments.
//! - `github`: the GitHub REST client on octocrab, the deployments ledger,
//!   the queries behind the gate's GitHub checks, workflow dispatch (feature
//!   `github`).
//! - [`features`]: which of those this build has, and the refusal (exit 2)
//!   of a config that needs one it left out.
//! - [`timeouts`]: every fixed bound on how long a call may take, and why.
//!
//! Every network call has a timeout and is retried with backoff when the
//! failure is transient; what is still failing after that is a
//! [`ProviderError`], which the steps report with exit code 3. Nothing here
//! decides anything: judgment lives in `sluice-analysis`, policy in the steps.

#[cfg(feature = "aws")]
pub mod aws;
pub mod error;
pub mod features;
pub mod git;
#[cfg(feature = "github")]
pub mod github;
pub mod ledger;
pub mod metrics;
pub mod notify;
pub mod prometheus;
pub mod retry;
pub mod router;
pub mod timeouts;

pub use error::ProviderError;
