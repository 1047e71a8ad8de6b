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
use sluice_analysis::gates::coverage::Format as CoverageFormat;
use sluice_analysis::gates::freeze::{Calendar, Days, WeekTime};
use sluice_analysis::gates::sarif::{BlockLevel, SecuritySeverity};
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
    /// GitHub API settings, for the `github` ledger, the gate's GitHub checks
    /// and the promotion hand-off.
    #[serde(default)]
    pub github: GitHubConfig,
    /// What `promote` does for the next environment.
    #[serde(default)]
    pub handoff: Handoff,
    /// How analysis samples metrics.
    #[serde(default)]
    pub analysis: AnalysisConfig,
    /// Values every environment inherits unless it sets its own.
    #[serde(default)]
    pub defaults: Defaults,
    /// Webhooks told about blocked gates, rollbacks, promotions and failed steps.
    #[serde(default)]
    pub notify: NotifyConfig,
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
    /// GitHub Deployments and deployment statuses of the repository in
    /// `[github]`: one deployment per deployment, `production_environment`
    /// for the last environment.
    Github {},
}

/// How sluice talks to GitHub's REST API (`GITHUB_TOKEN` and
/// `GITHUB_API_URL` come from the environment, never from this file).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GitHubConfig {
    /// `owner/repo`; default `$GITHUB_REPOSITORY`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repository: Option<String>,
    /// The ETag cache of conditional requests; relative to the config file.
    #[serde(default = "default_github_cache")]
    pub cache_dir: PathBuf,
    /// Least time between two writes (GitHub asks for one second).
    #[serde(default = "default_write_interval", with = "humantime_serde")]
    #[schemars(with = "String")]
    pub write_interval: Duration,
    /// Longest wait for a rate limit to lift before the step gives up.
    #[serde(default = "default_max_wait", with = "humantime_serde")]
    #[schemars(with = "String")]
    pub max_wait: Duration,
}

fn default_github_cache() -> PathBuf {
    PathBuf::from(".sluice/github-cache")
}

fn default_write_interval() -> Duration {
    Duration::from_secs(1)
}

fn default_max_wait() -> Duration {
    Duration::from_secs(300)
}

impl Default for GitHubConfig {
    fn default() -> Self {
        Self {
            repository: None,
            cache_dir: default_github_cache(),
            write_interval: default_write_interval(),
            max_wait: default_max_wait(),
        }
    }
}

/// What `promote` does once the release is stable: name the next
/// environment as an output, or also start its promotion workflow.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Handoff {
    /// Only the `next_environment` output.
    #[default]
    Output,
    /// `workflow_dispatch` of the promotion workflow with the inputs
    /// `environment`, `version` and `sha`.
    Dispatch {
        /// The workflow's file name (`promote.yml`) or id.
        workflow: String,
        /// The branch or tag the workflow runs on.
        #[serde(rename = "ref", default = "default_dispatch_ref")]
        git_ref: String,
    },
}

fn default_dispatch_ref() -> String {
    "main".to_owned()
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

/// How long a paused canary waits for approval when the config does not say.
pub const DEFAULT_PAUSE_TIMEOUT: Duration = Duration::from_secs(24 * 3600);

/// How long an environment lease lasts after its holder last showed life
/// when the config does not say.
pub const DEFAULT_LEASE_TIMEOUT: Duration = Duration::from_secs(30 * 60);

/// 5 s: a bad canary at 10 % of a few hundred requests a second is caught
/// within about two intervals, ten times sooner than a 60 s fixed-interval
/// check (`scripts/bench-analysis.sh`); query sources are asked this often.
fn default_interval() -> Duration {
    Duration::from_secs(5)
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
    /// How long a canary paused for approval may wait (default 24h).
    #[serde(default, with = "optional_duration", skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<String>")]
    pub pause_timeout: Option<Duration>,
    /// How long the environment lease of a deployment lasts after its last
    /// step showed life (default 30m); a run that dies frees it after this.
    #[serde(default, with = "optional_duration", skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<String>")]
    pub lease_timeout: Option<Duration>,
    /// Gate checks every environment inherits key by key.
    #[serde(default)]
    pub gate: GateConfig,
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
    /// Where the environment can be reached (shown on GitHub deployments).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub environment_url: Option<String>,
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
    /// How long a canary paused for approval (`shift-traffic --pause-at`)
    /// may wait before it is rolled back; defaults to `[defaults]
    /// pause_timeout`, else 24h.
    #[serde(default, with = "optional_duration", skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<String>")]
    pub pause_timeout: Option<Duration>,
    /// The environment lease's timeout; defaults to `[defaults]
    /// lease_timeout`, else 30m.
    #[serde(default, with = "optional_duration", skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<String>")]
    pub lease_timeout: Option<Duration>,
    /// Gate checks; each key set here replaces the same key of `[defaults.gate]`.
    #[serde(default)]
    pub gate: GateConfig,
}

/// Gate checks beyond order and soak (`[defaults.gate]`, `[environment.gate]`).
///
/// Every key is optional; an environment's key replaces the defaults' key
/// (so `freeze = []` exempts an environment from the default windows).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GateConfig {
    /// IANA time zone of the holidays and of freeze windows that name none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub zone: Option<String>,
    /// Weekly freeze windows.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub freeze: Option<Vec<FreezeWindow>>,
    /// Frozen days (`2026-12-24`) or runs of days (`2026-12-24..2027-01-01`),
    /// whole days on the clock of `zone`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<Vec<String>>")]
    pub holidays: Option<Vec<Days>>,
    /// A SARIF report from an earlier job must hold no finding at or above a severity.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sarif: Option<SarifGate>,
    /// A coverage report from an earlier job must reach a line rate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub coverage: Option<CoverageGate>,
    /// Check runs or commit status contexts that must have succeeded on the
    /// release's commit (GitHub); one still running makes the gate wait.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub required_checks: Option<Vec<String>>,
    /// An open issue with this label blocks the gate (GitHub).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub incident_label: Option<String>,
    /// The run's approval of this environment must come from someone other
    /// than the commit's author (GitHub).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub require_independent_approval: Option<bool>,
}

/// A weekly freeze window, e.g. Fridays 15:00 to Mondays 08:00.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FreezeWindow {
    /// `Fri 15:00`: a weekday and a 24-hour time on the zone's clock.
    #[schemars(with = "String")]
    pub from: WeekTime,
    /// `Mon 08:00`; before `from` in the week means the window wraps the weekend.
    #[schemars(with = "String")]
    pub to: WeekTime,
    /// IANA time zone (`Europe/Berlin`); defaults to the gate's `zone`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub zone: Option<String>,
    /// Shown in the gate's evidence (`weekend`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

/// The SARIF gate.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SarifGate {
    /// The SARIF 2.1.0 file; relative paths are relative to the config file.
    pub path: PathBuf,
    /// A finding with a security severity at or above this blocks.
    #[serde(default = "default_block_at")]
    pub block_at: SecuritySeverity,
    /// A finding without a security severity blocks from this SARIF level on.
    #[serde(default)]
    pub block_level: BlockLevel,
}

fn default_block_at() -> SecuritySeverity {
    SecuritySeverity::High
}

/// The coverage gate.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CoverageGate {
    /// An lcov tracefile or a Cobertura XML report; relative to the config file.
    pub path: PathBuf,
    /// The least line rate, from 0 to 1 (0.8 for 80%).
    pub min: f64,
    /// `lcov` or `cobertura`; by default read from the file (XML is Cobertura).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<CoverageFormat>,
}

impl GateConfig {
    /// This environment's keys over the defaults' keys.
    pub fn over(&self, defaults: &GateConfig) -> GateConfig {
        GateConfig {
            zone: self.zone.clone().or_else(|| defaults.zone.clone()),
            freeze: self.freeze.clone().or_else(|| defaults.freeze.clone()),
            holidays: self.holidays.clone().or_else(|| defaults.holidays.clone()),
            sarif: self.sarif.clone().or_else(|| defaults.sarif.clone()),
            coverage: self.coverage.clone().or_else(|| defaults.coverage.clone()),
            required_checks: self.required_checks.clone().or_else(|| defaults.required_checks.clone()),
            incident_label: self.incident_label.clone().or_else(|| defaults.incident_label.clone()),
            require_independent_approval: self.require_independent_approval.or(defaults.require_independent_approval),
        }
    }

    /// The required checks (none when unset).
    pub fn required_checks(&self) -> &[String] {
        self.required_checks.as_deref().unwrap_or_default()
    }

    /// Whether any check needs GitHub.
    pub fn uses_github(&self) -> bool {
        !self.required_checks().is_empty()
            || self.incident_label.is_some()
            || self.require_independent_approval == Some(true)
    }

    /// The zone of the holidays: `zone`, else the one zone all freeze
    /// windows share.
    pub fn holiday_zone(&self) -> Option<&str> {
        if let Some(zone) = &self.zone {
            return Some(zone);
        }
        let mut zones = self.freeze.iter().flatten().map(|w| w.zone.as_deref());
        let first = zones.next()??;
        zones.all(|z| z == Some(first)).then_some(first)
    }

    /// The freeze windows and holidays with their zones resolved.
    pub fn calendar(&self) -> Result<Calendar, String> {
        let mut calendar = Calendar::default();
        for window in self.freeze.iter().flatten() {
            let zone = window.zone.as_deref().or(self.zone.as_deref()).ok_or(
                "this freeze window has no zone: add zone = \"Europe/Berlin\" (any IANA name) to it or to the gate",
            )?;
            calendar.weekly(window.name.as_deref(), window.from, window.to, zone, time_zone(zone)?)?;
        }
        if let Some(holidays) = self.holidays.as_ref().filter(|h| !h.is_empty()) {
            let zone = self.holiday_zone().ok_or(
                "holidays need a zone: add zone = \"Europe/Berlin\" (any IANA name) to the gate; they are whole days on its clock",
            )?;
            let tz = time_zone(zone)?;
            for days in holidays {
                calendar.days(*days, zone, tz.clone());
            }
        }
        Ok(calendar)
    }
}

/// Resolves an IANA time zone name: from the system's database, else from
/// the copy compiled into sluice (for machines without /usr/share/zoneinfo).
pub fn time_zone(name: &str) -> Result<jiff::tz::TimeZone, String> {
    use jiff::tz::TimeZoneDatabase;
    if let Ok(tz) = jiff::tz::db().get(name) {
        return Ok(tz);
    }
    let bundled = TimeZoneDatabase::bundled();
    if let Ok(tz) = bundled.get(name) {
        return Ok(tz);
    }
    let lower = name.to_ascii_lowercase();
    let near = bundled
        .available()
        .map(|n| n.as_str().to_owned())
        .map(|n| (edit_distance(&n.to_ascii_lowercase(), &lower), n))
        .filter(|(d, _)| *d <= 3)
        .min();
    let hint = match near {
        Some((_, n)) => format!("did you mean {n:?}?"),
        None => "use an IANA name such as \"Europe/Berlin\", \"America/New_York\" or \"UTC\"".into(),
    };
    Err(format!("unknown time zone {name:?}; {hint}"))
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let next = (row[j + 1] + 1).min(row[j] + 1).min(diagonal + usize::from(ca != *cb));
            diagonal = row[j + 1];
            row[j + 1] = next;
        }
    }
    row[b.len()]
}

/// Webhooks told about what happened (`[notify]`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NotifyConfig {
    /// Longest time the notifications of one step may take, retries
    /// included; a webhook that has not answered by then is given up.
    #[serde(default = "default_notify_timeout", with = "humantime_serde")]
    #[schemars(with = "String")]
    pub timeout: Duration,
    #[serde(default, rename = "webhook", skip_serializing_if = "Vec::is_empty")]
    pub webhooks: Vec<WebhookConfig>,
}

fn default_notify_timeout() -> Duration {
    Duration::from_secs(10)
}

impl Default for NotifyConfig {
    fn default() -> Self {
        Self { timeout: default_notify_timeout(), webhooks: Vec::new() }
    }
}

/// One webhook.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    /// `slack` (an incoming webhook) or `json` (sluice's notification body).
    pub kind: WebhookKind,
    /// The name of the environment variable that holds the URL. The URL is
    /// a secret: it never goes in this file, a record or a log.
    pub url_env: String,
    /// The events to send; all of them by default.
    #[serde(default = "NotifyEvent::all")]
    pub on: Vec<NotifyEvent>,
}

/// What a webhook speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum WebhookKind {
    Slack,
    Json,
}

/// What a notification is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum NotifyEvent {
    /// `gate` blocked a release.
    Blocked,
    /// Traffic went back to stable: a failed canary stage or `rollback`.
    RolledBack,
    /// A release became stable in an environment.
    Promoted,
    /// A step stopped on an error (bad input or a provider failure).
    Failed,
}

impl NotifyEvent {
    pub fn all() -> Vec<NotifyEvent> {
        vec![NotifyEvent::Blocked, NotifyEvent::RolledBack, NotifyEvent::Promoted, NotifyEvent::Failed]
    }

    pub fn name(self) -> &'static str {
        match self {
            NotifyEvent::Blocked => "blocked",
            NotifyEvent::RolledBack => "rolled_back",
            NotifyEvent::Promoted => "promoted",
            NotifyEvent::Failed => "failed",
        }
    }
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

/// An optional humantime duration (`"4h"`), for keys that inherit.
mod optional_duration {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;

    pub fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => s.serialize_str(&humantime::format_duration(*d).to_string()),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        let text = String::deserialize(d)?;
        super::parse_duration(&text).map(Some).map_err(serde::de::Error::custom)
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
        let resolve = |p: &mut PathBuf| {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        };
        if let LedgerConfig::File { path: ledger } = &mut config.ledger {
            resolve(ledger);
        }
        for gate in
            std::iter::once(&mut config.defaults.gate).chain(config.environments.iter_mut().map(|e| &mut e.gate))
        {
            if let Some(sarif) = &mut gate.sarif {
                resolve(&mut sarif.path);
            }
            if let Some(coverage) = &mut gate.coverage {
                resolve(&mut coverage.path);
            }
        }
        if config.github.cache_dir.is_relative() {
            config.github.cache_dir = base.join(&config.github.cache_dir);
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
        check_pause_timeout(self.defaults.pause_timeout).map_err(|m| ("defaults.pause_timeout".into(), m))?;
        check_lease_timeout(self.defaults.lease_timeout).map_err(|m| ("defaults.lease_timeout".into(), m))?;
        for (i, env) in self.environments.iter().enumerate() {
            let at = |key: &str| format!("environment[{i}].{key}");
            names::check("environment name", &env.name).map_err(|m| (at("name"), m))?;
            if self.environments[..i].iter().any(|e| e.name == env.name) {
                return Err((at("name"), format!("environment {:?} is listed twice", env.name)));
            }
            if let Some(strategy) = &env.strategy {
                strategy.validate().map_err(|m| (at("strategy"), m))?;
            }
            check_pause_timeout(env.pause_timeout).map_err(|m| (at("pause_timeout"), m))?;
            check_lease_timeout(env.lease_timeout).map_err(|m| (at("lease_timeout"), m))?;
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
        self.validate_queries()?;
        validate_gate(&self.defaults.gate, "defaults.gate")?;
        for (i, env) in self.environments.iter().enumerate() {
            validate_gate(&env.gate, &format!("environment[{i}].gate"))?;
            // Keys that only work together are checked on what the
            // environment ends up with, pointing at where each was written.
            let gate = self.gate_for(env);
            let at = |key: &str| {
                let own = match key {
                    "freeze" => env.gate.freeze.is_some(),
                    _ => env.gate.holidays.is_some(),
                };
                if own { format!("environment[{i}].gate.{key}") } else { format!("defaults.gate.{key}") }
            };
            for (j, window) in gate.freeze.iter().flatten().enumerate() {
                if window.zone.is_none() && gate.zone.is_none() {
                    return Err((
                        format!("{}[{j}]", at("freeze")),
                        format!(
                            "this freeze window has no zone (in environment {}): add zone = \"Europe/Berlin\" (any IANA name) to it or to the gate",
                            env.name
                        ),
                    ));
                }
            }
            if gate.holidays.as_ref().is_some_and(|h| !h.is_empty()) && gate.holiday_zone().is_none() {
                return Err((
                    at("holidays"),
                    format!(
                        "holidays need a zone (in environment {}): add zone = \"Europe/Berlin\" (any IANA name) to the gate; they are whole days on its clock",
                        env.name
                    ),
                ));
            }
        }
        for (j, hook) in self.notify.webhooks.iter().enumerate() {
            let key = format!("notify.webhook[{j}].url_env");
            if hook.url_env.contains("://") {
                return Err((
                    key,
                    "url_env takes the name of an environment variable that holds the URL, not the URL: the URL is a secret, keep it out of this file".into(),
                ));
            }
            let valid = hook.url_env.chars().next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
                && hook.url_env.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
            if !valid {
                return Err((
                    key,
                    format!(
                        "{:?} is not an environment variable name (letters, digits and _, e.g. SLACK_WEBHOOK_URL)",
                        hook.url_env
                    ),
                ));
            }
            if hook.on.is_empty() {
                return Err((
                    format!("notify.webhook[{j}].on"),
                    "on = [] sends nothing: remove the webhook or name events (blocked, rolled_back, promoted, failed)"
                        .into(),
                ));
            }
        }
        if !(Duration::from_secs(1)..=Duration::from_secs(300)).contains(&self.notify.timeout) {
            return Err((
                "notify.timeout".into(),
                "timeout must be from 1s to 5m: notifications must never hold a rollback for long".into(),
            ));
        }
        self.validate_github()
    }

    fn validate_github(&self) -> Result<(), (String, String)> {
        if let Some(repo) = &self.github.repository {
            check_repository(repo).map_err(|m| ("github.repository".into(), m))?;
        }
        if self.github.write_interval > Duration::from_secs(60) {
            return Err((
                "github.write_interval".into(),
                "write_interval must be at most 1m (GitHub asks for 1s between writes)".into(),
            ));
        }
        if let Handoff::Dispatch { workflow, git_ref } = &self.handoff {
            if workflow.trim().is_empty() || workflow.contains(['/', '?', '#', ' ']) {
                return Err((
                    "handoff.workflow".into(),
                    format!("{workflow:?} is not a workflow file name; write it like \"promote.yml\""),
                ));
            }
            if git_ref.trim().is_empty() || git_ref.contains(' ') {
                return Err(("handoff.ref".into(), format!("{git_ref:?} is not a branch or tag name")));
            }
        }
        for (i, env) in self.environments.iter().enumerate() {
            let at = |key: &str| format!("environment[{i}].{key}");
            if let Some(url) = &env.environment_url {
                check_http_url(url).map_err(|m| (at("environment_url"), m))?;
            }
        }
        let gates = std::iter::once(("defaults.gate".to_owned(), &self.defaults.gate))
            .chain(self.environments.iter().enumerate().map(|(i, e)| (format!("environment[{i}].gate"), &e.gate)));
        for (at, gate) in gates {
            let checks = gate.required_checks();
            for (j, name) in checks.iter().enumerate() {
                if name.trim().is_empty() {
                    return Err((format!("{at}.required_checks"), format!("required check {j} has an empty name")));
                }
                if checks[..j].contains(name) {
                    return Err((format!("{at}.required_checks"), format!("required check {name:?} is listed twice")));
                }
            }
            if gate.incident_label.as_deref().is_some_and(|l| l.trim().is_empty() || l.contains(',')) {
                return Err((
                    format!("{at}.incident_label"),
                    "incident_label must be one label name (no commas), e.g. \"incident\"".into(),
                ));
            }
        }
        Ok(())
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

    /// The gate checks in force for an environment: its keys over the defaults'.
    pub fn gate_for(&self, env: &Environment) -> GateConfig {
        env.gate.over(&self.defaults.gate)
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

    /// How long a paused canary of an environment may wait for approval.
    pub fn pause_timeout_for(&self, env: &Environment) -> Duration {
        env.pause_timeout.or(self.defaults.pause_timeout).unwrap_or(DEFAULT_PAUSE_TIMEOUT)
    }

    /// The environment lease's timeout in force for an environment.
    pub fn lease_timeout_for(&self, env: &Environment) -> Duration {
        env.lease_timeout.or(self.defaults.lease_timeout).unwrap_or(DEFAULT_LEASE_TIMEOUT)
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

fn check_lease_timeout(timeout: Option<Duration>) -> Result<(), String> {
    match timeout {
        Some(t) if t < Duration::from_secs(1) => {
            Err("lease_timeout must be at least 1s; it must outlast the longest stage, e.g. \"30m\"".into())
        }
        _ => Ok(()),
    }
}

fn check_pause_timeout(timeout: Option<Duration>) -> Result<(), String> {
    match timeout {
        Some(t) if t < Duration::from_secs(1) => {
            Err("pause_timeout must be at least 1s; give the approver time, e.g. \"4h\"".into())
        }
        _ => Ok(()),
    }
}

/// Checks the keys of one gate table on their own; `prefix` is where it is.
fn validate_gate(gate: &GateConfig, prefix: &str) -> Result<(), (String, String)> {
    if let Some(zone) = &gate.zone {
        time_zone(zone).map_err(|m| (format!("{prefix}.zone"), m))?;
    }
    for (j, window) in gate.freeze.iter().flatten().enumerate() {
        if let Some(zone) = &window.zone {
            time_zone(zone).map_err(|m| (format!("{prefix}.freeze[{j}].zone"), m))?;
        }
        if window.from == window.to {
            return Err((
                format!("{prefix}.freeze[{j}]"),
                format!(
                    "the window starts and ends at {}: give it a length, e.g. from = \"Fri 15:00\", to = \"Mon 08:00\"",
                    window.from
                ),
            ));
        }
    }
    if let Some(sarif) = &gate.sarif
        && sarif.path.as_os_str().is_empty()
    {
        return Err((format!("{prefix}.sarif.path"), "path is empty: name the SARIF file an earlier job wrote".into()));
    }
    if let Some(coverage) = &gate.coverage {
        if coverage.path.as_os_str().is_empty() {
            return Err((
                format!("{prefix}.coverage.path"),
                "path is empty: name the lcov or Cobertura file an earlier job wrote".into(),
            ));
        }
        if !(0.0..=1.0).contains(&coverage.min) {
            return Err((
                format!("{prefix}.coverage.min"),
                format!("min {} must be a line rate from 0 to 1, e.g. 0.8 for 80%", coverage.min),
            ));
        }
    }
    Ok(())
}

/// `owner/repo` as GitHub names repositories.
pub fn check_repository(repo: &str) -> Result<(), String> {
    let ok = |part: &str| {
        !part.is_empty() && part.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    };
    match repo.split_once('/') {
        Some((owner, name)) if ok(owner) && ok(name) => Ok(()),
        _ => Err(format!("{repo:?} is not a repository; write it as \"owner/name\"")),
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
