//! The serde model of `sluice.toml`: every table and key as the file spells
//! it, their defaults, and what each environment ends up with once it
//! inherits `[defaults]`.
//!
//! Only shapes and defaults live here: whether values make sense is for
//! `validate`, where they are in the file is for `load`. Nothing here reads
//! a file or the environment.

use super::{AssumeRoleConfig, GateConfig, ProbeConfig, SourceConfig};
use crate::strategy::Strategy;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use sluice_analysis::{CheckSpec, Policy, humantime_serde};
use std::path::PathBuf;
use std::time::Duration;

/// The whole configuration file.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "sluice config (sluice.toml)", extend("$id" = "https://sluice.dev/schema/config.v1.json"))]
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
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AnalysisConfig {
    /// Time between two looks at the metrics; by default 1s where sluice
    /// counts the requests itself (every router the embedded one, no metric
    /// source, no probe), else 5s.
    #[serde(default, with = "optional_duration", skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<String>")]
    pub interval: Option<Duration>,
    /// The least analysis time a passing verdict at 100% must cover before
    /// `promote` accepts it; by default the plan's final stage (its
    /// `stage_duration` or `bake`), else 1 minute.
    #[serde(default, with = "optional_duration", skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<String>")]
    pub min_final_analysis: Option<Duration>,
    /// Statistical settings (false-rollback rate).
    #[serde(flatten)]
    pub policy: Policy,
}

/// Whether an environment's deployments are analysed (`analysis = ...` in
/// `[defaults]` and `[[environment]]`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum AnalysisMode {
    /// The checks in force judge every stage; `promote` needs their passing
    /// verdict at 100%.
    #[default]
    Checks,
    /// No analysis, said explicitly: stages only wait, and a promotion is
    /// recorded as unanalysed.
    None,
}

/// The least analysis time of the final verdict when neither the config
/// nor the plan's final stage gives one.
pub const DEFAULT_MIN_FINAL_ANALYSIS: Duration = Duration::from_secs(60);

/// How long a paused canary waits for approval when the config does not say.
pub const DEFAULT_PAUSE_TIMEOUT: Duration = Duration::from_secs(24 * 3600);

/// How long an environment lease lasts after its holder last showed life
/// when the config does not say.
pub const DEFAULT_LEASE_TIMEOUT: Duration = Duration::from_secs(30 * 60);

/// The analysis interval where sluice reads every request's outcome from
/// its own router: looking costs nothing, and a verdict waits at most this
/// long for the next look (a candidate failing every request at 20 % of
/// 100 requests/s is stopped after about 60 failed requests, against 100 at
/// 5 s; `cargo run --release -p sluice-analysis --example canaries`).
pub const LOCAL_INTERVAL: Duration = Duration::from_secs(1);

/// A stage of the default plan where sluice counts the requests itself, or
/// a Prometheus or a probe judges: a minute.
pub const LOCAL_STAGE: Duration = Duration::from_secs(60);

/// A stage of the default plan where CloudWatch judges: CloudWatch
/// publishes a minute's requests about a minute after it ends, and the
/// ALB's latency comparison needs 3 such minutes, so a candidate's first
/// data arrive about 2 minutes into a stage and the latency check's about 4;
/// a minute's stage would end with no evidence (inconclusive, rolled back).
pub const CLOUDWATCH_STAGE: Duration = Duration::from_secs(300);

/// The analysis interval where a metric source, a probe or an AWS router is
/// asked every interval: a Prometheus `rate(..[${interval}])` needs a few
/// scrapes in it, a probe has 2 s to answer, and CloudWatch publishes per
/// minute anyway.
pub const QUERY_INTERVAL: Duration = Duration::from_secs(5);

/// What environments inherit.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Defaults {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub strategy: Option<Strategy>,
    /// `checks` (the default) or `none`: deploy without analysis.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub analysis: Option<AnalysisMode>,
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
    /// The traffic router of this environment; or, instead, several
    /// [`TargetConfig`]s (`[[environment.target]]`) promoted in waves.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub router: Option<RouterConfig>,
    /// The targets of an environment served by several routers (regions,
    /// accounts, clusters), each promoted in its wave; empty when the
    /// environment names one `router`.
    #[serde(default, rename = "target", skip_serializing_if = "Vec::is_empty")]
    pub targets: Vec<TargetConfig>,
    /// Ordered groups of target names (`[["us-east-1"], ["eu-west-1",
    /// "ap-southeast-2"]]`): the targets of a wave shift in parallel, a wave
    /// starts once the one before it passed. Default: one wave per target,
    /// in the order they are listed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub waves: Option<Vec<Vec<String>>>,
    /// Analysis of the waves done, at 100%, before the next wave starts
    /// (default: none).
    #[serde(default, with = "optional_duration", skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<String>")]
    pub bake: Option<Duration>,
    /// The rollout strategy; defaults to `[defaults] strategy`, else a canary.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub strategy: Option<Strategy>,
    /// `checks` or `none` (deploy without analysis); defaults to `[defaults]
    /// analysis`, else `checks`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub analysis: Option<AnalysisMode>,
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

/// One target of an environment with several (`[[environment.target]]`):
/// its router and what judges it on top of the environment's checks,
/// sources and probes (one of the same name replaces the environment's for
/// this target).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TargetConfig {
    /// `us-east-1`, `eu`, ...: letters, digits, `.`, `_` and `-`.
    pub name: String,
    /// The traffic router of this target (`local` or `alb`).
    pub router: RouterConfig,
    /// Checks added to (or, by name, replacing) the environment's for this target.
    #[serde(default, rename = "check", skip_serializing_if = "Vec::is_empty")]
    pub checks: Vec<CheckSpec>,
    /// Probes added to (or, by name, replacing) the environment's for this target.
    #[serde(default, rename = "probe", skip_serializing_if = "Vec::is_empty")]
    pub probes: Vec<ProbeConfig>,
    /// Metric sources added to (or, by name, replacing) the environment's
    /// for this target (CloudWatch in its region, its cluster's Prometheus).
    #[serde(default, rename = "source", skip_serializing_if = "Vec::is_empty")]
    pub sources: Vec<SourceConfig>,
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
        /// A role to assume for this router (in another AWS account), e.g.
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
        /// A role to assume for this router (in another AWS account), e.g.
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
    /// The role this router assumes, if it names one.
    pub fn assume_role(&self) -> Option<AssumeRoleConfig<'_>> {
        match self {
            RouterConfig::Local { .. } => None,
            RouterConfig::Alb { role_arn, external_id, session_name, .. }
            | RouterConfig::CodeDeploy { role_arn, external_id, session_name, .. } => {
                AssumeRoleConfig::of(role_arn, external_id, session_name)
            }
        }
    }

    /// Names the role session `session` when the router assumes a role
    /// and the config names no session.
    pub(crate) fn default_session_name(&mut self, session: &str) {
        if let RouterConfig::Alb { role_arn: Some(_), session_name: name @ None, .. }
        | RouterConfig::CodeDeploy { role_arn: Some(_), session_name: name @ None, .. } = self
        {
            *name = Some(session.to_owned());
        }
    }

    /// The short name used in records and messages.
    pub fn kind(&self) -> &'static str {
        match self {
            RouterConfig::Local { .. } => "local",
            RouterConfig::Alb { .. } => "alb",
            RouterConfig::CodeDeploy { .. } => "codedeploy",
        }
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

/// The JSON Schema of `sluice.toml`, as committed in `schema/config.v1.json`
/// (for editors: taplo and Even Better TOML read a `#:schema` line).
/// Shapes and defaults only: the rules of `validate` (rising stage weights,
/// known zones, ARNs that belong together) are the loader's.
pub fn json_schema() -> String {
    let schema = schemars::schema_for!(Config);
    let mut text = serde_json::to_string_pretty(&schema).expect("a schema always serialises");
    text.push('\n');
    text
}

impl Config {
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

    /// The analysis interval: `[analysis] interval`, else
    /// [`LOCAL_INTERVAL`] when every environment (and target) routes with
    /// the embedded router and none names a metric source or a probe, else
    /// [`QUERY_INTERVAL`]. One for the whole config, so that a replayed
    /// verdict and every environment's stages are judged alike.
    pub fn interval(&self) -> Duration {
        self.analysis.interval.unwrap_or_else(|| if self.counts_itself() { LOCAL_INTERVAL } else { QUERY_INTERVAL })
    }

    /// Whether sluice reads all its evidence from its own routers' counts.
    fn counts_itself(&self) -> bool {
        let defaults = self.defaults.sources.is_empty() && self.defaults.probes.is_empty();
        defaults
            && self.environments.iter().all(|env| {
                env.sources.is_empty()
                    && env.probes.is_empty()
                    && env.router.as_ref().is_none_or(|r| matches!(r, RouterConfig::Local { .. }))
                    && env.targets.iter().all(|t| {
                        t.sources.is_empty() && t.probes.is_empty() && matches!(t.router, RouterConfig::Local { .. })
                    })
            })
    }

    /// The strategy in force for an environment: its `strategy`, else the
    /// defaults', else the default plan (20, 40, 70, 100 %) with a stage of
    /// [`CLOUDWATCH_STAGE`] where CloudWatch judges the environment (an ALB
    /// or CodeDeploy router, whose built-in checks read it, or a CloudWatch
    /// source), else of a minute.
    pub fn strategy_for(&self, env: &Environment) -> Strategy {
        env.strategy.clone().or_else(|| self.defaults.strategy.clone()).unwrap_or_else(|| {
            Strategy::default_canary_every(if self.reads_cloudwatch(env) { CLOUDWATCH_STAGE } else { LOCAL_STAGE })
        })
    }

    /// Whether CloudWatch's published minutes judge `env`'s stages.
    fn reads_cloudwatch(&self, env: &Environment) -> bool {
        let aws = |r: &RouterConfig| matches!(r, RouterConfig::Alb { .. } | RouterConfig::CodeDeploy { .. });
        let cloudwatch = |s: &[SourceConfig]| s.iter().any(|s| matches!(s, SourceConfig::Cloudwatch { .. }));
        cloudwatch(&self.sources_for(env))
            || env.router.as_ref().is_some_and(aws)
            || env.targets.iter().any(|t| aws(&t.router) || cloudwatch(&t.sources))
    }

    /// Whether an environment's deployments are analysed: its `analysis`
    /// key, else the defaults', else `checks`.
    pub fn analysis_for(&self, env: &Environment) -> AnalysisMode {
        env.analysis.or(self.defaults.analysis).unwrap_or_default()
    }

    /// The least analysis time a passing verdict at 100% must cover before
    /// `promote` accepts it: `[analysis] min_final_analysis`, else the
    /// plan's final-stage duration when it has one, else 1 minute.
    pub fn min_final_analysis(&self, strategy: &Strategy) -> Duration {
        self.analysis.min_final_analysis.unwrap_or_else(|| match strategy.plan().last() {
            Some((_, duration)) if !duration.is_zero() => *duration,
            _ => DEFAULT_MIN_FINAL_ANALYSIS,
        })
    }

    /// The checks in force for an environment: none where its analysis is
    /// `none`, else its own, else the defaults'.
    pub fn checks_for(&self, env: &Environment) -> Vec<CheckSpec> {
        if self.analysis_for(env) == AnalysisMode::None {
            Vec::new()
        } else if env.checks.is_empty() {
            self.defaults.checks.clone()
        } else {
            env.checks.clone()
        }
    }

    /// The metric sources in force for an environment: its own, else the
    /// defaults'.
    pub fn sources_for(&self, env: &Environment) -> Vec<SourceConfig> {
        if env.sources.is_empty() {
            // The defaults' sources serve every environment: their role
            // sessions are named for the one asking.
            let session = super::aws::default_session_name(&self.app, &env.name);
            let mut sources = self.defaults.sources.clone();
            sources.iter_mut().for_each(|s| s.default_session_name(&session));
            sources
        } else {
            env.sources.clone()
        }
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
