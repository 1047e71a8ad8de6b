//! `sluice.toml`: the app, its environments in promotion order, and per
//! environment the router, metric sources, strategy, checks and gates.
//!
//! Every error points at the file, line and key, so a user can fix it without
//! guessing. Loading never changes anything on disk.

use crate::names;

mod aws;
pub use aws::{Arn, parse_s3_revision};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use sluice_analysis::{CheckSpec, Policy, humantime_serde};
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The whole configuration file.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The application's name; part of every record and ledger entry.
    pub app: String,
    /// Where the deployment history is kept.
    #[serde(default)]
    pub ledger: LedgerConfig,
    /// How analysis samples metrics.
    #[serde(default)]
    pub analysis: AnalysisConfig,
    /// Values every environment inherits unless it sets its own.
    #[serde(default)]
    pub defaults: Defaults,
    /// The environments, in promotion order (dev, tst, prd).
    #[serde(rename = "environment")]
    pub environments: Vec<Environment>,
    /// Where each step publishes deployment metrics for dashboards (optional).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deployment_metrics: Option<DeploymentMetricsConfig>,
}

/// Deployment metrics: started, succeeded, failed, rolled back, canary
/// weight, verdicts, duration; one batch per step.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum DeploymentMetricsConfig {
    /// CloudWatch custom metrics (`PutMetricData`) with `App` and
    /// `Environment` dimensions.
    Cloudwatch {
        /// e.g. `Sluice/Deployments` (not `AWS/...`).
        namespace: String,
        /// AWS region; defaults to the environment's (`AWS_REGION`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        region: Option<String>,
    },
}

/// Where the deployment history is kept.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum LedgerConfig {
    /// JSON Lines file; relative paths are relative to the config file.
    File {
        #[serde(default = "default_ledger_path")]
        path: PathBuf,
    },
}

fn default_ledger_path() -> PathBuf {
    PathBuf::from(".sluice/ledger.jsonl")
}

impl Default for LedgerConfig {
    fn default() -> Self {
        LedgerConfig::File { path: default_ledger_path() }
    }
}

/// Sampling of metrics during analysis.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AnalysisConfig {
    /// Time between two looks at the metrics.
    #[serde(default = "default_interval", with = "humantime_serde")]
    #[schemars(with = "String")]
    pub interval: Duration,
    /// Statistical settings (false-rollback rate).
    #[serde(flatten)]
    pub policy: Policy,
}

fn default_interval() -> Duration {
    Duration::from_secs(10)
}

impl Default for AnalysisConfig {
    fn default() -> Self {
        Self { interval: default_interval(), policy: Policy::default() }
    }
}

/// What environments inherit.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Defaults {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub strategy: Option<Strategy>,
    #[serde(default, rename = "check", skip_serializing_if = "Vec::is_empty")]
    pub checks: Vec<CheckSpec>,
    #[serde(default, rename = "probe", skip_serializing_if = "Vec::is_empty")]
    pub probes: Vec<ProbeConfig>,
    /// Metric sources that answer `query` checks.
    #[serde(default, rename = "source", skip_serializing_if = "Vec::is_empty")]
    pub sources: Vec<SourceConfig>,
}

/// One environment of the promotion path.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Environment {
    /// `dev`, `tst`, `prd`, ...: letters, digits, `.`, `_` and `-`.
    pub name: String,
    /// The traffic router of this environment.
    pub router: RouterConfig,
    /// The rollout strategy; defaults to `[defaults] strategy`, else a canary.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub strategy: Option<Strategy>,
    /// Least time the release must have been promoted in the previous
    /// environment before it may enter this one.
    #[serde(default, with = "humantime_serde")]
    #[schemars(with = "String")]
    pub soak: Duration,
    /// Allow releases that were not promoted in the previous environment.
    #[serde(default)]
    pub allow_out_of_order: bool,
    /// Checks of the candidate; defaults to `[defaults] check`.
    #[serde(default, rename = "check", skip_serializing_if = "Vec::is_empty")]
    pub checks: Vec<CheckSpec>,
    /// Synthetic HTTP probes; defaults to `[defaults] probe`.
    #[serde(default, rename = "probe", skip_serializing_if = "Vec::is_empty")]
    pub probes: Vec<ProbeConfig>,
    /// Metric sources for `query` checks; defaults to `[[defaults.source]]`
    /// (all of them are replaced when an environment defines any).
    #[serde(default, rename = "source", skip_serializing_if = "Vec::is_empty")]
    pub sources: Vec<SourceConfig>,
}

/// The traffic router of an environment.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum RouterConfig {
    /// The embedded `sluice-router`, by its admin API address.
    Local {
        /// e.g. `http://127.0.0.1:9001`
        admin_url: String,
    },
    /// An Application Load Balancer: a weighted forward action, on the
    /// listener's default action or on one listener rule, between two target
    /// groups. Which of the two is stable is kept on the listener (or rule)
    /// as the tag `sluice:stable`, so the roles swap at each promotion; until
    /// that tag exists, the roles are the ones named here.
    Alb {
        /// The listener, `arn:aws:elasticloadbalancing:REGION:ACCOUNT:listener/app/NAME/ID/ID`.
        listener_arn: String,
        /// A rule of that listener to drive instead of its default action.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        rule_arn: Option<String>,
        /// The target group serving the stable release (before the first promotion).
        stable_target_group: String,
        /// The target group the candidate is deployed into (before the first promotion).
        candidate_target_group: String,
        /// AWS region; defaults to the one in the listener ARN.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        region: Option<String>,
    },
    /// AWS CodeDeploy owns the shift (blue/green on ECS or EC2): sluice
    /// creates the deployment, follows it, continues it when it waits for
    /// traffic rerouting, and stops it with automatic rollback.
    #[serde(rename = "codedeploy")]
    CodeDeploy {
        /// The CodeDeploy application.
        application: String,
        /// Its deployment group for this environment.
        deployment_group: String,
        /// e.g. `CodeDeployDefault.ECSCanary10Percent5Minutes`; defaults to the group's.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        deployment_config: Option<String>,
        /// An AppSpec file (YAML or JSON) whose text is the revision (ECS,
        /// Lambda); relative to the config file.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        appspec: Option<PathBuf>,
        /// Or a bundle in S3 (EC2): `s3://BUCKET/KEY` ending in `.zip`,
        /// `.tar`, `.tar.gz` or `.tgz`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        s3_revision: Option<String>,
        /// AWS region; defaults to the environment's (`AWS_REGION`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        region: Option<String>,
        /// How often to read the deployment's status.
        #[serde(default = "default_poll_interval", with = "humantime_serde")]
        #[schemars(with = "String")]
        poll_interval: Duration,
        /// Longest time to follow one deployment (it goes on in CodeDeploy after).
        #[serde(default = "default_deployment_timeout", with = "humantime_serde")]
        #[schemars(with = "String")]
        timeout: Duration,
    },
}

fn default_poll_interval() -> Duration {
    Duration::from_secs(10)
}

fn default_deployment_timeout() -> Duration {
    Duration::from_secs(3600)
}

impl RouterConfig {
    /// The short name used in records and messages.
    pub fn kind(&self) -> &'static str {
        match self {
            RouterConfig::Local { .. } => "local",
            RouterConfig::Alb { .. } => "alb",
            RouterConfig::CodeDeploy { .. } => "codedeploy",
        }
    }
}

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

    /// The kind as written in config.
    pub fn kind(&self) -> &'static str {
        match self {
            SourceConfig::Prometheus { .. } => "prometheus",
            SourceConfig::Cloudwatch { .. } => "cloudwatch",
        }
    }

    fn validate(&self) -> Result<(), (&'static str, String)> {
        names::check("source name", self.name()).map_err(|m| ("name", m))?;
        if RESERVED_SOURCES.contains(&self.name()) {
            return Err((
                "name",
                format!(
                    "{:?} is the name sluice gives the embedded router's own counters; name this source otherwise, \
                     e.g. \"prometheus\"",
                    self.name()
                ),
            ));
        }
        match self {
            SourceConfig::Prometheus { url, timeout, .. } => {
                check_http_url(url).map_err(|m| ("url", m))?;
                if url.contains(['?', '#']) {
                    return Err(("url", format!("{url:?} must be the server's base URL, without a query or fragment")));
                }
                if timeout.is_zero() {
                    return Err(("timeout", "timeout must be more than 0, e.g. \"5s\"".into()));
                }
            }
            SourceConfig::Cloudwatch { region, period, lookback, .. } => {
                if let Some(region) = region {
                    aws::check_region(region).map_err(|m| ("region", m))?;
                }
                let minutes = |d: &Duration| d.as_secs() > 0 && d.as_secs().is_multiple_of(60) && d.subsec_nanos() == 0;
                if !minutes(period) {
                    return Err((
                        "period",
                        "period must be whole minutes, e.g. \"1m\" (ALB metrics are per minute)".into(),
                    ));
                }
                if !minutes(lookback) || lookback < period {
                    return Err((
                        "lookback",
                        format!(
                            "lookback must be whole minutes and at least the period ({}s), e.g. \"5m\"",
                            period.as_secs()
                        ),
                    ));
                }
            }
        }
        Ok(())
    }
}

/// Source names sluice uses itself in `Interval::source_errors`.
const RESERVED_SOURCES: &[&str] = &["router"];

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

/// How traffic moves from stable to candidate.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Strategy {
    /// Stages of candidate weight (percent), with analysis during each.
    Canary {
        stages: Vec<u8>,
        #[serde(with = "humantime_serde")]
        #[schemars(with = "String")]
        stage_duration: Duration,
    },
    /// Verify the idle candidate with probes, switch all traffic at once, and
    /// keep analysing for `bake` with stable ready for an instant rollback.
    BlueGreen {
        #[serde(with = "humantime_serde")]
        #[schemars(with = "String")]
        bake: Duration,
    },
    /// Switch all traffic at once; analysis runs afterwards in verify-health.
    AllAtOnce,
}

impl Strategy {
    /// The default: a four-stage canary with one minute a stage.
    pub fn default_canary() -> Self {
        Strategy::Canary { stages: vec![10, 25, 50, 100], stage_duration: Duration::from_secs(60) }
    }

    /// The short name used in records and ledgers.
    pub fn name(&self) -> &'static str {
        match self {
            Strategy::Canary { .. } => "canary",
            Strategy::BlueGreen { .. } => "blue_green",
            Strategy::AllAtOnce => "all_at_once",
        }
    }

    /// The plan: each stage's candidate weight and how long to analyse it.
    pub fn plan(&self) -> Vec<(u8, Duration)> {
        match self {
            Strategy::Canary { stages, stage_duration } => stages.iter().map(|w| (*w, *stage_duration)).collect(),
            Strategy::BlueGreen { bake } => vec![(100, *bake)],
            Strategy::AllAtOnce => vec![(100, Duration::ZERO)],
        }
    }

    /// Parses a strategy override as given on the command line:
    /// `canary:10,25,50,100@30s`, `blue-green@5m` or `all-at-once`.
    pub fn parse_override(text: &str) -> Result<Strategy, String> {
        let (kind, rest) = text.split_once(['@', ':']).unwrap_or((text, ""));
        let hint = "write it as `canary:10,25,50,100@30s`, `blue-green@5m` or `all-at-once`";
        match kind {
            "canary" => {
                let (stages, duration) = rest
                    .split_once('@')
                    .ok_or_else(|| format!("canary override {text:?} has no stage duration; {hint}"))?;
                let stages = stages
                    .split(',')
                    .map(|s| s.trim().parse::<u8>().map_err(|_| format!("stage {s:?} is not a weight 0-100; {hint}")))
                    .collect::<Result<Vec<_>, _>>()?;
                let stage_duration = parse_duration(duration)?;
                let strategy = Strategy::Canary { stages, stage_duration };
                strategy.validate().map_err(|e| format!("{e}; {hint}"))?;
                Ok(strategy)
            }
            "blue-green" | "blue_green" => Ok(Strategy::BlueGreen { bake: parse_duration(rest)? }),
            "all-at-once" | "all_at_once" => Ok(Strategy::AllAtOnce),
            _ => Err(format!("unknown strategy {kind:?}; {hint}")),
        }
    }

    fn validate(&self) -> Result<(), String> {
        if let Strategy::Canary { stages, .. } = self {
            if stages.is_empty() {
                return Err("a canary needs at least one stage".into());
            }
            if let Some(w) = stages.iter().find(|w| **w > 100) {
                return Err(format!("stage weight {w} is above 100 (weights are percentages 0-100)"));
            }
            if stages.windows(2).any(|p| p[0] >= p[1]) {
                return Err(format!("stages {stages:?} must rise strictly, e.g. [10, 25, 50, 100]"));
            }
            if stages.last() != Some(&100) {
                return Err(format!("stages {stages:?} must end at 100 so the candidate takes all traffic"));
            }
        }
        Ok(())
    }
}

/// Parses a humantime duration with a message that says how to write one.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    humantime::parse_duration(text.trim())
        .map_err(|e| format!("invalid duration {text:?}: {e} (write it like \"30s\", \"250ms\" or \"10m\")"))
}

/// A config error with where it is in the file.
#[derive(Debug, thiserror::Error)]
pub struct ConfigError {
    pub path: PathBuf,
    /// 1-based line and column, when known.
    pub location: Option<(usize, usize)>,
    /// The dotted key, when known (`environment[1].strategy.stages`).
    pub key: Option<String>,
    pub message: String,
    /// The offending line of the file, for display.
    pub snippet: Option<String>,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.path.display())?;
        if let Some((line, col)) = self.location {
            write!(f, ":{line}:{col}")?;
        }
        write!(f, ": ")?;
        if let Some(key) = &self.key {
            write!(f, "`{key}`: ")?;
        }
        write!(f, "{}", self.message)?;
        if let (Some(snippet), Some((line, col))) = (&self.snippet, self.location) {
            let gutter = line.to_string().len();
            write!(f, "\n{:gutter$} |\n{line} | {snippet}\n{:gutter$} | {:>col$}", "", "", "^")?;
        }
        Ok(())
    }
}

impl Config {
    /// Reads and validates a config file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
            path: path.to_owned(),
            location: None,
            key: None,
            message: if e.kind() == std::io::ErrorKind::NotFound {
                "config file not found; create sluice.toml (see the README's config reference) or pass --config".into()
            } else {
                format!("cannot read the config file: {e}")
            },
            snippet: None,
        })?;
        let mut config = Self::parse(&text, path)?;
        let base = path.parent().unwrap_or(Path::new("."));
        let LedgerConfig::File { path: ledger } = &mut config.ledger;
        if ledger.is_relative() {
            *ledger = base.join(&*ledger);
        }
        for env in &mut config.environments {
            if let RouterConfig::CodeDeploy { appspec: Some(appspec), .. } = &mut env.router
                && appspec.is_relative()
            {
                *appspec = base.join(&*appspec);
            }
        }
        Ok(config)
    }

    /// Parses and validates config text; `path` is only used in messages.
    pub fn parse(text: &str, path: &Path) -> Result<Config, ConfigError> {
        let located = |span: Option<std::ops::Range<usize>>, key: Option<String>, message: String| {
            let location = span.map(|s| line_col(text, s.start));
            ConfigError {
                path: path.to_owned(),
                location,
                key,
                message,
                snippet: location.and_then(|(line, _)| text.lines().nth(line - 1).map(str::to_owned)),
            }
        };
        let config: Config =
            toml::from_str(text).map_err(|e| located(e.span(), None, e.message().trim_end().to_owned()))?;
        unknown_check_keys(text).map_err(|(span, key, message)| located(Some(span), Some(key), message))?;
        config.validate().map_err(|(key, message)| {
            let span = key_span(text, &key);
            located(span, Some(key), message)
        })?;
        Ok(config)
    }

    fn validate(&self) -> Result<(), (String, String)> {
        names::check("app", &self.app).map_err(|m| ("app".into(), m))?;
        if self.environments.is_empty() {
            return Err((
                "environment".into(),
                "no environments: add [[environment]] tables in promotion order (dev, tst, prd)".into(),
            ));
        }
        if !(self.analysis.policy.alpha > 0.0 && self.analysis.policy.alpha < 0.5) {
            return Err(("analysis.alpha".into(), "alpha must be between 0 and 0.5, e.g. 0.01".into()));
        }
        if self.analysis.interval < Duration::from_millis(100) {
            return Err(("analysis.interval".into(), "interval must be at least 100ms".into()));
        }
        if let Some(DeploymentMetricsConfig::Cloudwatch { namespace, region }) = &self.deployment_metrics {
            let printable = namespace.chars().all(|c| c.is_ascii_graphic() || c == ' ');
            if namespace.is_empty() || namespace.len() > 255 || !printable || namespace.starts_with("AWS/") {
                return Err((
                    "deployment_metrics.namespace".into(),
                    format!(
                        "{namespace:?} is not a custom CloudWatch namespace (1-255 printable characters, not AWS/...), e.g. \"Sluice/Deployments\""
                    ),
                ));
            }
            if let Some(region) = region {
                aws::check_region(region).map_err(|m| ("deployment_metrics.region".to_owned(), m))?;
            }
        }
        if let Some(strategy) = &self.defaults.strategy {
            strategy.validate().map_err(|m| ("defaults.strategy".into(), m))?;
        }
        for (i, env) in self.environments.iter().enumerate() {
            let at = |key: &str| format!("environment[{i}].{key}");
            names::check("environment name", &env.name).map_err(|m| (at("name"), m))?;
            if self.environments[..i].iter().any(|e| e.name == env.name) {
                return Err((at("name"), format!("environment {:?} is listed twice", env.name)));
            }
            if let Some(strategy) = &env.strategy {
                strategy.validate().map_err(|m| (at("strategy"), m))?;
            }
            validate_router(&env.router).map_err(|(key, m)| (at(&format!("router.{key}")), m))?;
            for (j, check) in env.checks.iter().enumerate() {
                validate_check(check).map_err(|m| (format!("environment[{i}].check[{j}]"), m))?;
                if env.checks[..j].iter().any(|c| c.name == check.name) {
                    return Err((
                        format!("environment[{i}].check[{j}].name"),
                        format!("check {:?} is defined twice", check.name),
                    ));
                }
            }
            for (j, probe) in env.probes.iter().enumerate() {
                check_http_url(&probe.url).map_err(|m| (format!("environment[{i}].probe[{j}].url"), m))?;
            }
            validate_sources(&env.sources, &format!("environment[{i}]"))?;
        }
        for (j, check) in self.defaults.checks.iter().enumerate() {
            validate_check(check).map_err(|m| (format!("defaults.check[{j}]"), m))?;
        }
        validate_sources(&self.defaults.sources, "defaults")?;
        self.validate_queries()
    }

    /// Every `query` check in force for an environment names a source in
    /// force for it, and its text expands.
    fn validate_queries(&self) -> Result<(), (String, String)> {
        for (i, env) in self.environments.iter().enumerate() {
            let (sources, prefix) = if env.sources.is_empty() {
                (&self.defaults.sources, "defaults".to_owned())
            } else {
                (&env.sources, format!("environment[{i}]"))
            };
            for (k, source) in sources.iter().enumerate() {
                if let SourceConfig::Cloudwatch { alb_traffic: true, name, .. } = source
                    && !matches!(env.router, RouterConfig::Alb { .. })
                {
                    return Err((
                        format!("{prefix}.source[{k}].alb_traffic"),
                        format!(
                            "source {name:?} reads the ALB's traffic, but environment {:?} has a {} router; \
                             set alb_traffic only where the router is an alb",
                            env.name,
                            env.router.kind()
                        ),
                    ));
                }
            }
        }
        let vars = QueryVars {
            release: "v".into(),
            app: self.app.clone(),
            environment: String::new(),
            interval: self.analysis.interval,
        };
        for (i, env) in self.environments.iter().enumerate() {
            let (checks, prefix) = if env.checks.is_empty() {
                (&self.defaults.checks, "defaults".to_owned())
            } else {
                (&env.checks, format!("environment[{i}]"))
            };
            let sources = self.sources_for(env);
            for (j, check) in checks.iter().enumerate() {
                let sluice_analysis::CheckKind::Query { source, query, .. } = &check.kind else { continue };
                vars.expand(query).map_err(|m| (format!("{prefix}.check[{j}].query"), m))?;
                if !sources.iter().any(|s| s.name() == source) {
                    let defined: Vec<&str> = sources.iter().map(SourceConfig::name).collect();
                    let defined = if defined.is_empty() {
                        "it has none".to_owned()
                    } else {
                        format!("it has {}", defined.join(", "))
                    };
                    return Err((
                        format!("{prefix}.check[{j}].source"),
                        format!(
                            "check {:?} queries source {source:?}, which environment {:?} does not define ({defined}); \
                             add a [[defaults.source]] or [[environment.source]] table with name = {source:?}",
                            check.name, env.name
                        ),
                    ));
                }
            }
        }
        Ok(())
    }

    /// The environment named `name`, with its position in the order.
    pub fn environment(&self, name: &str) -> Result<(usize, &Environment), String> {
        self.environments.iter().enumerate().find(|(_, e)| e.name == name).ok_or_else(|| {
            let known: Vec<&str> = self.environments.iter().map(|e| e.name.as_str()).collect();
            format!("unknown environment {name:?}; the config defines {}", known.join(", "))
        })
    }

    /// The environment after `name` in promotion order, if any.
    pub fn next_environment(&self, name: &str) -> Option<&str> {
        let (i, _) = self.environment(name).ok()?;
        self.environments.get(i + 1).map(|e| e.name.as_str())
    }

    /// The strategy in force for an environment.
    pub fn strategy_for(&self, env: &Environment) -> Strategy {
        env.strategy.clone().or_else(|| self.defaults.strategy.clone()).unwrap_or_else(Strategy::default_canary)
    }

    /// The checks in force for an environment.
    pub fn checks_for(&self, env: &Environment) -> Vec<CheckSpec> {
        if env.checks.is_empty() { self.defaults.checks.clone() } else { env.checks.clone() }
    }

    /// The metric sources in force for an environment: its own, else the
    /// defaults'.
    pub fn sources_for(&self, env: &Environment) -> Vec<SourceConfig> {
        if env.sources.is_empty() { self.defaults.sources.clone() } else { env.sources.clone() }
    }

    /// The probes in force for an environment.
    pub fn probes_for(&self, env: &Environment) -> Vec<ProbeConfig> {
        if env.probes.is_empty() { self.defaults.probes.clone() } else { env.probes.clone() }
    }
}

fn validate_sources(sources: &[SourceConfig], prefix: &str) -> Result<(), (String, String)> {
    for (k, source) in sources.iter().enumerate() {
        source.validate().map_err(|(key, m)| (format!("{prefix}.source[{k}].{key}"), m))?;
        if sources[..k].iter().any(|s| s.name() == source.name()) {
            return Err((
                format!("{prefix}.source[{k}].name"),
                format!("source {:?} is defined twice; give each source its own name", source.name()),
            ));
        }
    }
    Ok(())
}

fn validate_check(check: &CheckSpec) -> Result<(), String> {
    use sluice_analysis::{CheckKind, Comparison};
    match &check.kind {
        CheckKind::ErrorRate { max } if !(0.0..1.0).contains(max) => {
            Err(format!("error_rate max {max} must be a ratio from 0 up to (not including) 1, e.g. 0.01 for 1%"))
        }
        CheckKind::Latency { percentile, .. } if !(*percentile > 0.0 && *percentile <= 100.0) => {
            Err(format!("latency percentile {percentile} must be in (0, 100], e.g. 99"))
        }
        CheckKind::Compare(Comparison::ErrorRate { tolerance }) if !(0.0..1.0).contains(tolerance) => {
            Err(format!("tolerance {tolerance} must be a ratio from 0 up to 1, e.g. 0.01"))
        }
        CheckKind::Compare(Comparison::Latency { tolerance }) if *tolerance < 0.0 => {
            Err(format!("tolerance {tolerance} must not be negative (0.2 means 20% slower is tolerated)"))
        }
        CheckKind::Query { min: None, max: None, .. } => Err("a query check needs `min`, `max` or both".into()),
        CheckKind::Query { min: Some(lo), max: Some(hi), .. } if lo > hi => {
            Err(format!("min {lo} is above max {hi}, so no value could pass"))
        }
        CheckKind::Query { query, .. } if query.trim().is_empty() => Err("the query is empty".into()),
        CheckKind::Query { reduce: None, step: Some(_), .. } => {
            Err("step applies to range queries: add reduce = \"max\" (or min, mean, last), or drop step for an \
             instant query"
                .into())
        }
        CheckKind::Query { step: Some(step), .. } if step.as_millis() == 0 => {
            Err("step must be at least 1ms, e.g. \"1s\"".into())
        }
        _ if check.failure_limit == 0 => Err("failure_limit must be at least 1".into()),
        _ if check.inconclusive_limit == 0 => Err("inconclusive_limit must be at least 1".into()),
        _ => Ok(()),
    }
}

fn validate_router(router: &RouterConfig) -> Result<(), (&'static str, String)> {
    match router {
        RouterConfig::Local { admin_url } => check_http_url(admin_url).map_err(|m| ("admin_url", m)),
        RouterConfig::Alb { listener_arn, rule_arn, stable_target_group, candidate_target_group, region } => {
            let listener = aws::Arn::parse(listener_arn, "elasticloadbalancing", "listener/app/")
                .map_err(|m| ("listener_arn", m))?;
            if let Some(rule) = rule_arn {
                let parsed =
                    aws::Arn::parse(rule, "elasticloadbalancing", "listener-rule/app/").map_err(|m| ("rule_arn", m))?;
                let owner = parsed.resource.strip_prefix("listener-rule/").and_then(|r| r.rsplit_once('/'));
                if owner.map(|(l, _)| l) != listener.resource.strip_prefix("listener/") {
                    return Err(("rule_arn", format!("rule {rule:?} does not belong to listener {listener_arn:?}")));
                }
            }
            for (key, arn) in
                [("stable_target_group", stable_target_group), ("candidate_target_group", candidate_target_group)]
            {
                let tg = aws::Arn::parse(arn, "elasticloadbalancing", "targetgroup/").map_err(|m| (key, m))?;
                if (tg.region, tg.account) != (listener.region, listener.account) {
                    return Err((
                        key,
                        format!(
                            "target group {arn:?} is in another region or account than the listener; ALB forwards only within one"
                        ),
                    ));
                }
            }
            if stable_target_group == candidate_target_group {
                return Err((
                    "candidate_target_group",
                    "stable and candidate must be two different target groups (blue and green)".into(),
                ));
            }
            if let Some(region) = region {
                aws::check_region(region).map_err(|m| ("region", m))?;
                if region != listener.region {
                    return Err((
                        "region",
                        format!("region {region:?} is not the listener's region {:?}", listener.region),
                    ));
                }
            }
            Ok(())
        }
        RouterConfig::CodeDeploy {
            application,
            deployment_group,
            deployment_config,
            appspec,
            s3_revision,
            region,
            poll_interval,
            timeout,
        } => {
            for (key, name) in [("application", application), ("deployment_group", deployment_group)] {
                if name.is_empty() || name.len() > 100 || name.chars().any(char::is_control) {
                    return Err((key, format!("{name:?} is not a CodeDeploy name (1-100 characters)")));
                }
            }
            if let Some(name) = deployment_config
                && (name.is_empty() || name.len() > 100)
            {
                return Err(("deployment_config", format!("{name:?} is not a deployment config name")));
            }
            match (appspec, s3_revision) {
                (Some(_), Some(_)) => {
                    return Err(("s3_revision", "give either `appspec` or `s3_revision`, not both".into()));
                }
                (None, None) => {
                    return Err((
                        "appspec",
                        "a codedeploy router needs the revision: `appspec = \"appspec.yaml\"` (ECS, Lambda) or `s3_revision = \"s3://bucket/app.zip\"` (EC2)".into(),
                    ));
                }
                (None, Some(s3)) => {
                    aws::parse_s3_revision(s3).map_err(|m| ("s3_revision", m))?;
                }
                (Some(_), None) => {}
            }
            if let Some(region) = region {
                aws::check_region(region).map_err(|m| ("region", m))?;
            }
            if *poll_interval < Duration::from_millis(100) {
                return Err((
                    "poll_interval",
                    "poll_interval must be at least 100ms (AWS throttles fast polling; 10s is usual)".into(),
                ));
            }
            if timeout < poll_interval {
                return Err(("timeout", "timeout must be longer than poll_interval".into()));
            }
            Ok(())
        }
    }
}

fn check_http_url(url: &str) -> Result<(), String> {
    let rest = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"))
        .ok_or_else(|| format!("{url:?} is not an http:// or https:// URL"))?;
    if rest.is_empty() || rest.starts_with('/') {
        return Err(format!("{url:?} has no host"));
    }
    Ok(())
}

/// Check tables flatten their kind into one table, which serde cannot guard
/// with `deny_unknown_fields`; so unknown keys are caught here, against every
/// key the check types know (taken from their JSON Schema).
fn unknown_check_keys(text: &str) -> Result<(), (std::ops::Range<usize>, String, String)> {
    use toml::de::{DeTable, DeValue};
    let Ok(doc) = DeTable::parse(text) else { return Ok(()) };
    let known = check_keys();
    fn collect<'a, 'i>(
        prefix: String,
        value: Option<&'a toml::Spanned<DeValue<'i>>>,
        tables: &mut Vec<(String, &'a DeTable<'i>)>,
    ) {
        if let Some(DeValue::Array(items)) = value.map(|v| v.get_ref()) {
            for (j, item) in items.iter().enumerate() {
                if let DeValue::Table(t) = item.get_ref() {
                    tables.push((format!("{prefix}.check[{j}]"), t));
                }
            }
        }
    }
    let mut tables = Vec::new();
    let root = doc.get_ref();
    if let Some(DeValue::Table(defaults)) = root.get("defaults").map(|v| v.get_ref()) {
        collect("defaults".into(), defaults.get("check"), &mut tables);
    }
    if let Some(DeValue::Array(envs)) = root.get("environment").map(|v| v.get_ref()) {
        for (i, env) in envs.iter().enumerate() {
            if let DeValue::Table(env) = env.get_ref() {
                collect(format!("environment[{i}]"), env.get("check"), &mut tables);
            }
        }
    }
    for (prefix, table) in tables {
        for (key, _) in table.iter() {
            if !known.contains(key.get_ref().as_ref()) {
                let mut names: Vec<&str> = known.iter().map(String::as_str).collect();
                names.sort_unstable();
                return Err((
                    key.span(),
                    format!("{prefix}.{}", key.get_ref()),
                    format!(
                        "unknown check key {:?}; a check takes {}",
                        key.get_ref().as_ref() as &str,
                        names.join(", ")
                    ),
                ));
            }
        }
    }
    Ok(())
}

/// Every property name anywhere in the check types' JSON Schema.
fn check_keys() -> std::collections::BTreeSet<String> {
    fn walk(value: &serde_json::Value, out: &mut std::collections::BTreeSet<String>) {
        match value {
            serde_json::Value::Object(map) => {
                if let Some(serde_json::Value::Object(props)) = map.get("properties") {
                    out.extend(props.keys().cloned());
                }
                map.values().for_each(|v| walk(v, out));
            }
            serde_json::Value::Array(items) => items.iter().for_each(|v| walk(v, out)),
            _ => {}
        }
    }
    let schema = serde_json::to_value(schemars::schema_for!(CheckSpec)).unwrap_or_default();
    let mut keys = std::collections::BTreeSet::new();
    walk(&schema, &mut keys);
    keys
}

/// 1-based line and column of a byte offset.
fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, col)
}

/// Finds the span of a dotted key such as `environment[1].strategy.stages`:
/// the deepest part of the path that exists in the file.
fn key_span(text: &str, key: &str) -> Option<std::ops::Range<usize>> {
    use toml::de::{DeTable, DeValue};
    let doc = DeTable::parse(text).ok()?;
    let mut table: &DeTable<'_> = doc.get_ref();
    let mut span = None;
    let mut parts = key.split('.').peekable();
    while let Some(part) = parts.next() {
        let (name, index) = match part.split_once('[') {
            Some((name, rest)) => (name, rest.trim_end_matches(']').parse::<usize>().ok()),
            None => (part, None),
        };
        let (k, value) = table.get_key_value(name)?;
        span = Some(k.span());
        let mut value = value;
        if let Some(i) = index {
            let DeValue::Array(array) = value.get_ref() else { return span };
            value = array.get(i)?;
            span = Some(value.span());
        }
        match value.get_ref() {
            DeValue::Table(next) if parts.peek().is_some() => table = next,
            _ => return span,
        }
    }
    span
}

#[cfg(test)]
mod tests;
