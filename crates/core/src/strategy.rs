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

    pub(crate) fn validate(&self) -> Result<(), String> {
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
