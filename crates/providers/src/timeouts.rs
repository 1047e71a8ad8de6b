//! Every bound on how long a provider call may take, named, in one place.
//!
//! ARCHITECTURE.md promises that every call sluice makes has a timeout; this
//! module is where the fixed ones live and says why each is what it is. The
//! rest come from the config, where an operator can tune them to their
//! systems (defaults in `sluice_core::config`): a Prometheus source's
//! `timeout` (5 s), a probe's `timeout` (2 s), `[notify] timeout` (10 s),
//! a CodeDeploy router's `timeout` for a whole deployment (1 h).
//!
//! Two rules shape the values:
//!
//! - A timeout is far above a healthy answer (so a loaded runner or a slow
//!   network never turns a good call into a failure) and far below a job's
//!   patience (so a hung provider is reported, with exit 3, within a minute
//!   or so, and the deployment record says where things stand).
//! - A connect timeout is shorter than the call's: an address that does not
//!   answer a TCP handshake within a few seconds will not, and the retries
//!   (see [`crate::retry`]) are better spent on another attempt.
//!
//! How often a call is tried within these bounds is the retry schedules'
//! business: [`Backoff::default`](crate::retry::Backoff) (routers, ledgers,
//! GitHub), [`QUERY_BACKOFF`](crate::metrics::QUERY_BACKOFF),
//! [`WEBHOOK_BACKOFF`](crate::notify::WEBHOOK_BACKOFF), and the AWS SDK's
//! standard mode with [`MAX_ATTEMPTS`](crate::aws::MAX_ATTEMPTS).
//!
//! Constants only, no logic beyond a clamp: what happens when a bound is hit
//! (retry, report, give up) is decided where the call is made.

use std::time::Duration;

/// One call to the embedded router's admin API. The router answers from
/// memory on the same host or network, in milliseconds; 5 s is a router
/// that is stuck, and the default backoff's five attempts still end within
/// about half a minute.
pub const LOCAL_ROUTER: Duration = Duration::from_secs(5);
/// Opening a connection to the router's admin API: loopback or LAN.
pub const LOCAL_ROUTER_CONNECT: Duration = Duration::from_secs(2);

/// One attempt of an AWS call (ELBv2, CodeDeploy, CloudWatch), and the
/// HTTP client's read timeout. AWS answers these control-plane calls in well
/// under a second; 10 s leaves room for a throttled region without letting
/// one attempt eat the whole operation.
pub const AWS_ATTEMPT: Duration = Duration::from_secs(10);
/// An AWS call with all its retries (the SDK's standard mode, three
/// attempts with backoff): three full attempts fit.
pub const AWS_OPERATION: Duration = Duration::from_secs(30);
/// Opening a connection to an AWS endpoint: a TLS endpoint in the region,
/// or moto in the tests.
pub const AWS_CONNECT: Duration = Duration::from_secs(3);

/// One request to GitHub's REST API (connect, write and read each, and the
/// whole exchange). GitHub documents that requests taking longer than 10 s
/// are cut off on its side; 15 s reports that answer rather than racing it.
pub const GITHUB: Duration = Duration::from_secs(15);
/// Opening a connection to GitHub (or GitHub Enterprise); never more than
/// the request's own timeout.
pub const GITHUB_CONNECT: Duration = Duration::from_secs(5);

/// Opening a connection to a Prometheus server; never more than the
/// source's configured `timeout`.
pub const PROMETHEUS_CONNECT: Duration = Duration::from_secs(2);
/// How much longer than the source's `timeout` (which Prometheus is sent as
/// the query's own `timeout` parameter) sluice waits for the answer, so that
/// Prometheus's own timeout error, with its words, arrives first.
pub const PROMETHEUS_MARGIN: Duration = Duration::from_secs(1);

/// Opening a connection to a webhook; never more than `[notify] timeout`.
/// Slack and most bots answer the handshake in tens of milliseconds.
pub const WEBHOOK_CONNECT: Duration = Duration::from_secs(5);
/// Bounds of one webhook attempt, which is a third of `[notify] timeout` so
/// that retries fit in it: at least 0.5 s (a TLS handshake across the world),
/// at most 10 s (a webhook slower than that is down).
pub const WEBHOOK_ATTEMPT_MIN: Duration = Duration::from_millis(500);
/// See [`WEBHOOK_ATTEMPT_MIN`].
pub const WEBHOOK_ATTEMPT_MAX: Duration = Duration::from_secs(10);

/// One webhook attempt within a notification that may take `total`.
pub fn webhook_attempt(total: Duration) -> Duration {
    (total / 3).clamp(WEBHOOK_ATTEMPT_MIN, WEBHOOK_ATTEMPT_MAX)
}

/// One `git` command in the local checkout (`cat-file -e`, or `log` of at
/// most [`crate::git::MAX_COMMITS`] commits). Both read local files and end
/// in well under a second on a large repository; a git that takes 30 s is
/// waiting for something (a lock, a network file system, a prompt) and is
/// stopped, so `promote` is never held by it.
pub const GIT: Duration = Duration::from_secs(30);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connect_timeouts_are_shorter_than_their_calls() {
        assert!(LOCAL_ROUTER_CONNECT < LOCAL_ROUTER);
        assert!(AWS_CONNECT < AWS_ATTEMPT && AWS_ATTEMPT * 3 <= AWS_OPERATION);
        assert!(GITHUB_CONNECT < GITHUB);
    }

    #[test]
    fn a_webhook_attempt_is_a_third_of_the_notification_within_bounds() {
        assert_eq!(webhook_attempt(Duration::from_secs(6)), Duration::from_secs(2));
        assert_eq!(webhook_attempt(Duration::from_millis(300)), WEBHOOK_ATTEMPT_MIN);
        assert_eq!(webhook_attempt(Duration::from_secs(120)), WEBHOOK_ATTEMPT_MAX);
    }
}
