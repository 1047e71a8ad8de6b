//! AWS plumbing shared by the ALB and CodeDeploy routers and the CloudWatch
//! metric source.
//!
//! - Credentials come from the SDK's standard chain (environment, web
//!   identity token as set by `aws-actions/configure-aws-credentials` with
//!   OIDC, shared config and SSO, container and instance metadata).
//! - A router or CloudWatch source in another account names a role
//!   (`role_arn`): its calls then run on credentials from STS `AssumeRole`
//!   of that role, made with the standard chain's credentials (the job's
//!   OIDC role), refreshed by the SDK before they expire. The role is
//!   first assumed when the config is loaded, so a role that cannot be
//!   assumed is reported naming it before any call to the router or source
//!   (the SDK's credentials cache then assumes it once more for its calls).
//! - The region comes from the config when it names one, else from the
//!   environment (`AWS_REGION`, the shared config file).
//! - `AWS_ENDPOINT_URL` (and the per-service `AWS_ENDPOINT_URL_*`) is honoured
//!   by the SDK itself, which is how the tests point sluice at moto.
//! - Every call runs under the SDK's standard retry mode (exponential backoff
//!   with jitter, throttling and transient errors retried, a retry token
//!   bucket) and under an attempt timeout and an operation timeout, so no call
//!   can hang.
//! - A failure after all that becomes a [`ProviderError`] whose message names
//!   the AWS error code and the request id, so an operator can look it up.
//!
//! TLS is rustls with ring through our own HTTP client: no OpenSSL, and no
//! C build of aws-lc.
//!
//! Never reads environment variables itself (the SDK does) and never logs
//! credentials.

pub mod alb;
pub mod cloudwatch;
pub mod codedeploy;
pub mod lease;

use crate::ProviderError;
use crate::error::error_chain;
use crate::timeouts;
use aws_config::retry::RetryConfig;
use aws_config::sts::AssumeRoleProvider;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, ConfigLoader, Region, SdkConfig};
use aws_sdk_elasticloadbalancingv2::config::http::HttpResponse;
use aws_sdk_elasticloadbalancingv2::config::{ProvideCredentials, SharedCredentialsProvider};
use aws_sdk_elasticloadbalancingv2::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_elasticloadbalancingv2::operation::RequestId;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::OnceCell;

/// Attempts per call in the SDK's standard retry mode (the first and two
/// retries, AWS's default), with backoff between them.
pub const MAX_ATTEMPTS: u32 = 3;

/// Where and how to reach AWS.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AwsSettings {
    /// The region from the config; `None` leaves it to the environment.
    pub region: Option<String>,
    /// An endpoint for every service (tests); `None` leaves it to the SDK,
    /// which honours `AWS_ENDPOINT_URL`.
    pub endpoint_url: Option<String>,
    /// Attempt and operation timeouts other than
    /// [`timeouts::AWS_ATTEMPT`] and [`timeouts::AWS_OPERATION`] (tests).
    pub timeouts: Option<(Duration, Duration)>,
    /// A role to assume for every call (another account); `None` uses the
    /// standard chain's credentials as they are.
    pub role: Option<AssumeRole>,
}

/// A role to assume with STS `AssumeRole`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AssumeRole {
    /// `arn:aws:iam::123456789012:role/NAME`
    pub role_arn: String,
    /// The external ID the role's trust policy asks for.
    pub external_id: Option<String>,
    /// The session's name, seen in CloudTrail.
    pub session_name: String,
}

impl AssumeRole {
    /// The role a router's or source's config names (with its session name
    /// as the config loader filled it in, else `sluice`).
    pub fn from_config(config: Option<sluice_core::config::AssumeRoleConfig<'_>>) -> Option<AssumeRole> {
        config.map(|c| AssumeRole {
            role_arn: c.role_arn.to_owned(),
            external_id: c.external_id.map(str::to_owned),
            session_name: c.session_name.unwrap_or("sluice").to_owned(),
        })
    }
}

/// The SDK's config loader with sluice's retry, timeout and HTTP client
/// settings. [`Aws::config`] loads with it; tests add their own credentials to it.
pub fn loader(settings: &AwsSettings) -> ConfigLoader {
    let http_client = aws_smithy_http_client::Builder::new()
        .tls_provider(aws_smithy_http_client::tls::Provider::Rustls(
            aws_smithy_http_client::tls::rustls_provider::CryptoMode::Ring,
        ))
        .build_https();
    let mut loader = aws_config::defaults(BehaviorVersion::v2026_01_12())
        .http_client(http_client)
        .retry_config(RetryConfig::standard().with_max_attempts(MAX_ATTEMPTS))
        .timeout_config({
            let (attempt, operation) = settings.timeouts.unwrap_or((timeouts::AWS_ATTEMPT, timeouts::AWS_OPERATION));
            TimeoutConfig::builder()
                .connect_timeout(timeouts::AWS_CONNECT)
                .read_timeout(attempt)
                .operation_attempt_timeout(attempt)
                .operation_timeout(operation)
                .build()
        });
    if let Some(region) = &settings.region {
        loader = loader.region(Region::new(region.clone()));
    }
    if let Some(url) = &settings.endpoint_url {
        loader = loader.endpoint_url(url.clone());
    }
    loader
}

/// An SDK config loaded once, on first use (loading reads files and the
/// environment, and may call STS), shared by the clones of a provider.
#[derive(Clone)]
pub struct Aws {
    settings: AwsSettings,
    config: Arc<OnceCell<SdkConfig>>,
}

impl std::fmt::Debug for Aws {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Aws").field("settings", &self.settings).finish_non_exhaustive()
    }
}

impl Aws {
    pub fn new(settings: AwsSettings) -> Aws {
        Aws { settings, config: Arc::new(OnceCell::new()) }
    }

    /// Uses an SDK config built elsewhere (tests: fixed credentials for moto).
    pub fn from_sdk_config(config: SdkConfig) -> Aws {
        Aws { settings: AwsSettings::default(), config: Arc::new(OnceCell::new_with(Some(config))) }
    }

    /// The SDK config, loaded on the first call; with a role, the role is
    /// assumed then (and again on a later call if that failed).
    pub async fn config(&self, provider: &'static str) -> Result<&SdkConfig, ProviderError> {
        let config = self.config.get_or_try_init(|| load(&self.settings, provider)).await?;
        if config.region().is_none() {
            return Err(ProviderError {
                provider,
                operation: "find the AWS region".into(),
                message: "no region: set `region` in the router config, or AWS_REGION in the environment".into(),
                transient: false,
                attempts: 1,
            });
        }
        Ok(config)
    }
}

/// Loads the SDK config of `settings`; with a role, swaps in credentials of
/// that role, assumed with the loaded config's (its region, endpoint, retry
/// and timeout settings), after assuming it once to name a role that cannot
/// be assumed.
async fn load(settings: &AwsSettings, provider: &'static str) -> Result<SdkConfig, ProviderError> {
    let base = loader(settings).load().await;
    let Some(role) = &settings.role else { return Ok(base) };
    let mut builder = AssumeRoleProvider::builder(&role.role_arn).session_name(&role.session_name).configure(&base);
    if let Some(id) = &role.external_id {
        builder = builder.external_id(id);
    }
    let assumed = builder.build().await;
    if let Err(e) = assumed.provide_credentials().await {
        return Err(ProviderError {
            provider,
            operation: format!("assume role {} (session {})", role.role_arn, role.session_name),
            message: format!(
                "{} [after the SDK's standard retries, up to {MAX_ATTEMPTS} attempts]; \
                 the job's credentials must be allowed sts:AssumeRole on it by its trust policy (docs/iam.md)",
                error_chain(&e)
            ),
            transient: false,
            attempts: 1,
        });
    }
    Ok(base.into_builder().credentials_provider(SharedCredentialsProvider::new(assumed)).build())
}

/// Turns an SDK error into a [`ProviderError`] that names the AWS error code,
/// its message and the request id.
pub(crate) fn sdk_error<E>(provider: &'static str, operation: &str, err: SdkError<E, HttpResponse>) -> ProviderError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let status = err.raw_response().map(|r| r.status().as_u16());
    let request_id = err.request_id().map(str::to_owned);
    let (message, transient) = match &err {
        SdkError::ServiceError(_) => {
            let code = err.code().unwrap_or("UnknownError");
            let text = err.message().unwrap_or("no message");
            let transient = is_transient_code(code) || status.is_some_and(|s| s >= 500);
            let status = status.map(|s| format!(", HTTP {s}")).unwrap_or_default();
            (format!("{code}: {text}{status}"), transient)
        }
        SdkError::TimeoutError(_) => {
            ("no answer in time (the call's attempt or operation timeout passed)".into(), true)
        }
        // The HTTP client's read timeout is the attempt timeout, so which of
        // the two fires first is a race: both read as a timeout.
        SdkError::DispatchFailure(e) if e.is_timeout() => (format!("no answer in time ({})", error_chain(&err)), true),
        SdkError::DispatchFailure(e) => {
            let why = if e.is_io() { "connection failed" } else { "request failed" };
            (format!("{why}: {}", error_chain(&err)), true)
        }
        SdkError::ResponseError(_) => {
            let status = status.map(|s| format!(" (HTTP {s})")).unwrap_or_default();
            (format!("unreadable answer{status}: {}", error_chain(&err)), true)
        }
        _ => (error_chain(&err), false),
    };
    let mut message = message;
    if let Some(id) = request_id {
        message.push_str(&format!(" (request id {id})"));
    }
    if transient {
        message.push_str(&format!(" [after the SDK's standard retries, up to {MAX_ATTEMPTS} attempts]"));
    }
    ProviderError { provider, operation: operation.to_owned(), message, transient, attempts: 1 }
}

/// AWS error codes that mean "try again later".
fn is_transient_code(code: &str) -> bool {
    matches!(
        code,
        "Throttling"
            | "ThrottlingException"
            | "ThrottledException"
            | "RequestThrottled"
            | "RequestThrottledException"
            | "TooManyRequestsException"
            | "RequestLimitExceeded"
            | "SlowDown"
            | "PriorRequestNotComplete"
            | "ServiceUnavailable"
            | "ServiceUnavailableException"
            | "InternalFailure"
            | "InternalError"
            | "InternalServerError"
            | "RequestTimeout"
            | "RequestTimeoutException"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn throttling_and_server_errors_are_transient() {
        assert!(is_transient_code("Throttling"));
        assert!(is_transient_code("ThrottlingException"));
        assert!(is_transient_code("ServiceUnavailable"));
        assert!(!is_transient_code("AccessDenied"));
        assert!(!is_transient_code("ListenerNotFound"));
    }
}
