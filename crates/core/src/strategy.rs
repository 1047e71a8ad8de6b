//! How traffic moves from stable to candidate: the strategy of an
//! environment (or of a `--strategy` override) and the plan of stages it
//! makes, each a candidate weight and how long to analyse it.
//!
//! Never moves traffic: `shift-traffic` follows the plan made here.

use crate::config::parse_duration;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use sluice_analysis::humantime_serde;
use std::time::Duration;

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
    /// The default: a four-stage canary (20, 40, 70, 100 %) with one minute
    /// a stage. It starts at 20 %, not 10 %: the requests a failing
    /// candidate serves before it is caught are set by the evidence the
    /// checks need, not by its weight, so twice the weight catches it in
    /// about half the time for about the same failed requests (5 % errors
    /// at 100 requests/s: 11 s and 12 failed against 21 s and 11; simulated,
    /// `cargo run --release -p sluice-analysis --example canaries`).
    pub fn default_canary() -> Self {
        Self::default_canary_every(Duration::from_secs(60))
    }

    /// The default plan's stages, `stage_duration` each (five minutes where
    /// CloudWatch judges: see `Config::strategy_for`).
    pub fn default_canary_every(stage_duration: Duration) -> Self {
        Strategy::Canary { stages: vec![20, 40, 70, 100], stage_duration }
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
    /// `canary:10,25,50,100@30s`, `blue-green@5m` or `all-at-once`. It is
    /// held to the same rules as a strategy in the config.
    pub fn parse_override(text: &str) -> Result<Strategy, String> {
        let (kind, rest) = text.split_once(['@', ':']).unwrap_or((text, ""));
        let hint = "write it as `canary:10,25,50,100@30s`, `blue-green@5m` or `all-at-once`";
        let strategy = match kind {
            "canary" => {
                let (stages, duration) = rest
                    .split_once('@')
                    .ok_or_else(|| format!("canary override {text:?} has no stage duration; {hint}"))?;
                let stages = stages
                    .split(',')
                    .map(|s| s.trim().parse::<u8>().map_err(|_| format!("stage {s:?} is not a weight 1-100; {hint}")))
                    .collect::<Result<Vec<_>, _>>()?;
                Strategy::Canary { stages, stage_duration: parse_duration(duration)? }
            }
            "blue-green" | "blue_green" => Strategy::BlueGreen { bake: parse_duration(rest)? },
            "all-at-once" | "all_at_once" if text == kind => Strategy::AllAtOnce,
            "all-at-once" | "all_at_once" => {
                return Err(format!("all-at-once takes no stages or duration, but {text:?} gives some; {hint}"));
            }
            _ => return Err(format!("unknown strategy {kind:?}; {hint}")),
        };
        strategy.validate().map_err(|e| format!("{e}; {hint}"))?;
        Ok(strategy)
    }

    /// The rules every plan obeys, in the config, in a `--strategy` override
    /// and in a record: stage weights from 1 to 100, rising strictly and
    /// ending at 100, and time to analyse each stage (more than 0, at most
    /// [`MAX_STAGE_DURATION`]). All at once has no stage of its own to
    /// analyse: `verify-health` analyses it afterwards.
    pub fn validate(&self) -> Result<(), String> {
        match self {
            Strategy::Canary { stages, stage_duration } => {
                validate_stages(stages)?;
                check_stage_time("stage_duration", *stage_duration, "\"1m\"")
            }
            Strategy::BlueGreen { bake } => check_stage_time("bake", *bake, "\"5m\""),
            Strategy::AllAtOnce => Ok(()),
        }
    }
}

/// The longest a stage (or a bake) may be analysed: a sanity bound, far
/// above any real plan, that keeps deadlines computed from it in range.
pub const MAX_STAGE_DURATION: Duration = Duration::from_secs(30 * 24 * 3600);

fn validate_stages(stages: &[u8]) -> Result<(), String> {
    if stages.is_empty() {
        return Err("a canary needs at least one stage, e.g. stages = [10, 25, 50, 100]".into());
    }
    if let Some(w) = stages.iter().find(|w| **w > 100) {
        return Err(format!("stage weight {w} is above 100 (weights are percentages 1-100)"));
    }
    if stages.contains(&0) {
        return Err(format!(
            "stages {stages:?} include a weight of 0, a stage that sends the candidate no traffic and so could judge \
             nothing; start above 0, e.g. [10, 25, 50, 100]"
        ));
    }
    if stages.windows(2).any(|p| p[0] >= p[1]) {
        return Err(format!("stages {stages:?} must rise strictly, e.g. [10, 25, 50, 100]"));
    }
    if stages.last() != Some(&100) {
        return Err(format!("stages {stages:?} must end at 100 so the candidate takes all traffic"));
    }
    Ok(())
}

fn check_stage_time(key: &str, duration: Duration, example: &str) -> Result<(), String> {
    if duration.is_zero() {
        return Err(format!(
            "{key} is 0, which leaves no time to analyse: traffic would move on with no verdict; give it time, \
             e.g. {key} = {example} (an environment that deploys without analysis says analysis = \"none\")"
        ));
    }
    if duration > MAX_STAGE_DURATION {
        return Err(format!(
            "{key} {} is longer than 30 days; keep a stage to minutes or hours, e.g. {key} = {example}",
            humantime::format_duration(duration)
        ));
    }
    Ok(())
}
