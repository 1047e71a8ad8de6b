//! What analysis measures beyond the router's own counters: metric sources
//! (`[[defaults.source]]`, `[[environment.source]]`), synthetic probes, and
//! the templating of `query` checks' text (`${release}`, `${interval}`, ...).
//!
//! Never queries anything: the providers do, with the text expanded here.

use super::AssumeRoleConfig;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use sluice_analysis::humantime_serde;
use std::time::Duration;

/// A metric source that answers `query` checks, by its unique `name`.
///
/// The router's own counters and the HTTP probes need no entry here; these
/// are the sources a `query` check names in its `source` key.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum SourceConfig {
    /// A Prometheus server, through its HTTP API (PromQL instant and range
    /// queries).
    Prometheus {
        /// Unique among the sources; `query` checks name it in `source`.
        name: String,
        /// The server's base URL, e.g. `http://127.0.0.1:9090` (a path
        /// prefix such as `/prometheus` is kept).
        url: String,
        /// Longest time one query may take, per attempt; Prometheus is told
        /// too, so it stops evaluating.
        #[serde(default = "default_source_timeout", with = "humantime_serde")]
        #[schemars(with = "String")]
        timeout: Duration,
    },
    /// Amazon CloudWatch: metric queries, alarms as checks, and the ALB
    /// target groups' traffic; one batched `GetMetricData` call per interval.
    Cloudwatch {
        /// Unique among the sources; `query` checks name it in `source`.
        name: String,
        /// AWS region; defaults to the environment's (`AWS_REGION`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        region: Option<String>,
        /// A role to assume for this source (in another AWS account), e.g.
        /// `arn:aws:iam::123456789012:role/sluice-deployer`; without it, the
        /// job's own credentials are used.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        role_arn: Option<String>,
        /// The external ID the role's trust policy asks for, if any.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        external_id: Option<String>,
        /// The role session's name (seen in CloudTrail); defaults to
        /// `sluice-APP-ENVIRONMENT`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        session_name: Option<String>,
        /// Fill the candidate's and stable's traffic (`RequestCount` and
        /// `HTTPCode_Target_5XX_Count` of each target group) from the
        /// environment's ALB, so `error_rate` and `compare` checks work.
        #[serde(default)]
        alb_traffic: bool,
        /// Period of the statistics, in whole minutes.
        #[serde(default = "default_cloudwatch_period", with = "humantime_serde")]
        #[schemars(with = "String")]
        period: Duration,
        /// How far back each interval looks, in whole minutes (at least one period).
        #[serde(default = "default_cloudwatch_lookback", with = "humantime_serde")]
        #[schemars(with = "String")]
        lookback: Duration,
        /// How far behind the clock the window ends, for CloudWatch's
        /// publishing delay.
        #[serde(default = "default_cloudwatch_delay", with = "humantime_serde")]
        #[schemars(with = "String")]
        delay: Duration,
    },
}

fn default_cloudwatch_period() -> Duration {
    Duration::from_secs(60)
}

fn default_cloudwatch_lookback() -> Duration {
    Duration::from_secs(300)
}

fn default_cloudwatch_delay() -> Duration {
    Duration::from_secs(60)
}

fn default_source_timeout() -> Duration {
    Duration::from_secs(5)
}

impl SourceConfig {
    /// The name `query` checks refer to.
    pub fn name(&self) -> &str {
        match self {
            SourceConfig::Prometheus { name, .. } | SourceConfig::Cloudwatch { name, .. } => name,
        }
    }

    /// The role this source assumes, if it names one.
    pub fn assume_role(&self) -> Option<AssumeRoleConfig<'_>> {
        match self {
            SourceConfig::Prometheus { .. } => None,
            SourceConfig::Cloudwatch { role_arn, external_id, session_name, .. } => {
                AssumeRoleConfig::of(role_arn, external_id, session_name)
            }
        }
    }

    /// Names the role session `session` when the source assumes a role
    /// and the config names no session.
    pub(crate) fn default_session_name(&mut self, session: &str) {
        if let SourceConfig::Cloudwatch { role_arn: Some(_), session_name: name @ None, .. } = self {
            *name = Some(session.to_owned());
        }
    }

    /// The kind as written in config.
    pub fn kind(&self) -> &'static str {
        match self {
            SourceConfig::Prometheus { .. } => "prometheus",
            SourceConfig::Cloudwatch { .. } => "cloudwatch",
        }
    }
}

/// What `${...}` placeholders in a `query` check's text stand for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QueryVars {
    /// `${release}`: the candidate's release version (from the record).
    pub release: String,
    /// `${app}`
    pub app: String,
    /// `${environment}`
    pub environment: String,
    /// `${interval}`: the analysis interval, as PromQL writes a duration
    /// (`10s`, `1500ms`).
    pub interval: Duration,
}

impl QueryVars {
    /// The placeholders a query may use.
    pub const NAMES: [&'static str; 4] = ["release", "app", "environment", "interval"];

    /// The query text with every placeholder replaced; an unknown or
    /// unclosed placeholder is an error that names it.
    pub fn expand(&self, text: &str) -> Result<String, String> {
        let mut out = String::with_capacity(text.len());
        let mut rest = text;
        while let Some(at) = rest.find("${") {
            out.push_str(&rest[..at]);
            let after = &rest[at + 2..];
            let end = after.find('}').ok_or_else(|| {
                format!(
                    "unclosed placeholder at {:?}; write ${{release}}, ${{app}}, ${{environment}} or ${{interval}}",
                    &rest[at..]
                )
            })?;
            match &after[..end] {
                "release" => out.push_str(&self.release),
                "app" => out.push_str(&self.app),
                "environment" => out.push_str(&self.environment),
                "interval" => out.push_str(&promql_duration(self.interval)),
                other => {
                    return Err(format!(
                        "unknown placeholder ${{{other}}}; a query may use ${{{}}}",
                        Self::NAMES.join("}, ${")
                    ));
                }
            }
            rest = &after[end + 1..];
        }
        out.push_str(rest);
        Ok(out)
    }
}

/// A duration as PromQL writes one: whole seconds as `10s`, else `1500ms`.
fn promql_duration(d: Duration) -> String {
    let ms = d.as_millis();
    if ms.is_multiple_of(1000) { format!("{}s", ms / 1000) } else { format!("{ms}ms") }
}

/// A synthetic HTTP check of the candidate.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ProbeConfig {
    pub name: String,
    /// The URL to request (`GET`).
    pub url: String,
    /// Status the answer must have.
    #[serde(default = "default_status")]
    pub expect_status: u16,
    /// Text the body must contain.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body_contains: Option<String>,
    /// Longest acceptable time to the full answer.
    #[serde(default = "default_probe_timeout", with = "humantime_serde")]
    #[schemars(with = "String")]
    pub timeout: Duration,
}

fn default_status() -> u16 {
    200
}

fn default_probe_timeout() -> Duration {
    Duration::from_secs(2)
}
