//! What a user can ask to be checked, as written in `sluice.toml`.
//!
//! Plain data with serde defaults; the semantics of every field are those of
//! the engine (see the `engine` module docs, quoted in docs/judging-health.md). Range
//! checks of the values live with the config loader in `sluice-core`.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// One check of the candidate, judged on every interval.
///
/// Not `deny_unknown_fields`: serde cannot combine it with `flatten`. The
/// config loader (sluice-core) rejects unknown keys from the JSON Schema.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct CheckSpec {
    /// Unique name, shown in verdicts and summaries.
    pub name: String,
    /// What is measured and the limit.
    #[serde(flatten)]
    pub kind: CheckKind,
    /// Fewest observations (requests, probes or query answers) since the
    /// analysis started before the check may pass, or, for the statistical
    /// checks (error rate, latency, comparisons), fail; below it the check is
    /// inconclusive. A failed probe or an out-of-bounds query value fails
    /// without waiting for it.
    #[serde(default = "defaults::min_samples")]
    pub min_samples: u64,
    /// A failure of any check ends the analysis at once; a critical check
    /// also ends it (as an error) when its metric source keeps failing, where
    /// a non-critical one lets the other checks go on.
    #[serde(default)]
    pub critical: bool,
    /// Consecutive failing intervals before the check fails. Intervals
    /// without new data neither extend nor break the streak.
    #[serde(default = "defaults::failure_limit")]
    pub failure_limit: u32,
    /// Consecutive intervals without new data before `on_inconclusive`
    /// applies; as many consecutive metric-source errors end the check as an
    /// error. Intervals with data, even short of `min_samples`, reset it.
    #[serde(default = "defaults::inconclusive_limit")]
    pub inconclusive_limit: u32,
    /// What happens when the inconclusive limit is reached.
    #[serde(default)]
    pub on_inconclusive: OnInconclusive,
}

impl CheckSpec {
    /// A statistical check (error rate, latency, comparisons): one that
    /// takes a share of the analysis's `alpha`.
    pub fn is_statistical(&self) -> bool {
        matches!(self.kind, CheckKind::ErrorRate { .. } | CheckKind::Latency { .. } | CheckKind::Compare(_))
    }

    /// A check that judges the candidate against stable's traffic, so has
    /// no baseline when the candidate takes all of it: the comparisons, and
    /// the CloudWatch query `alb latency_vs_stable` (the ALB's built-in
    /// latency check, judged by its source from both target groups'
    /// statistics).
    pub fn compares_with_stable(&self) -> bool {
        match &self.kind {
            CheckKind::Compare(_) => true,
            CheckKind::Query { query, .. } => query.split_whitespace().eq(["alb", "latency_vs_stable"]),
            _ => false,
        }
    }
}

/// The measured quantity and its limit.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum CheckKind {
    /// Candidate error ratio (5xx and connection failures over requests) at most `max`.
    ErrorRate { max: f64 },
    /// Candidate latency percentile (e.g. 99) at most `max`.
    Latency {
        percentile: f64,
        #[serde(with = "crate::check::humantime_serde")]
        #[schemars(with = "String")]
        max: Duration,
    },
    /// Candidate compared with stable over the same window.
    Compare(Comparison),
    /// Every HTTP probe of the interval must succeed.
    Probe,
    /// A scalar from a query source (Prometheus, CloudWatch) within bounds.
    Query {
        /// The metric source (by name) that answers the query.
        source: String,
        /// The query text (PromQL, or a CloudWatch metric expression); may
        /// hold `${release}`, `${app}`, `${environment}` and `${interval}`.
        query: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        min: Option<f64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        max: Option<f64>,
        /// Ask for the series over the interval's window (a range query)
        /// and reduce its points to one value this way; without it, one
        /// instant query at the interval's end.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reduce: Option<Reduce>,
        /// Resolution of a range query (default: 1s, coarser when a window
        /// would hold more than 1,000 points). Only with `reduce`.
        #[serde(default, skip_serializing_if = "Option::is_none", with = "crate::check::humantime_serde::option")]
        #[schemars(with = "Option<String>")]
        step: Option<Duration>,
    },
}

/// How the points of a range query become the one value a query check judges.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Reduce {
    /// The largest point: the worst moment, for "at most" limits.
    Max,
    /// The smallest point: the worst moment, for "at least" limits.
    Min,
    /// The arithmetic mean of the points.
    Mean,
    /// The latest point (what an instant query at the end would say).
    Last,
}

impl Reduce {
    /// Reduces points given in time order. NaN points (a 0/0 at that
    /// moment) are left out; `None` when no point is left.
    pub fn apply(self, points: &[f64]) -> Option<f64> {
        let mut values = points.iter().copied().filter(|v| !v.is_nan()).peekable();
        values.peek()?;
        Some(match self {
            Reduce::Max => values.fold(f64::NEG_INFINITY, f64::max),
            Reduce::Min => values.fold(f64::INFINITY, f64::min),
            Reduce::Mean => {
                let (sum, n) = values.fold((0.0, 0u32), |(sum, n), v| (sum + v, n + 1));
                sum / f64::from(n)
            }
            Reduce::Last => values.last()?,
        })
    }

    /// The name as written in config.
    pub fn name(self) -> &'static str {
        match self {
            Reduce::Max => "max",
            Reduce::Min => "min",
            Reduce::Mean => "mean",
            Reduce::Last => "last",
        }
    }
}

/// A comparison of candidate against the stable baseline; only worse counts.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "metric", rename_all = "snake_case")]
pub enum Comparison {
    /// Candidate error ratio may exceed stable's by at most `tolerance`
    /// (absolute, e.g. 0.01 = one percentage point): a two-proportion test.
    ErrorRate {
        #[serde(default = "defaults::error_tolerance")]
        tolerance: f64,
    },
    /// Candidate latencies may be at most `tolerance` (relative, 0.2 = 20 %)
    /// slower than stable's, or `min_difference` slower, whichever allows
    /// more: a one-sided Mann-Whitney U test.
    Latency {
        #[serde(default = "defaults::latency_tolerance")]
        tolerance: f64,
        /// A slowdown smaller than this is never a regression, whatever the
        /// ratio (so 0.3 ms against 0.2 ms is not "50 % slower"). Default 0.
        #[serde(default, skip_serializing_if = "Option::is_none", with = "crate::check::humantime_serde::option")]
        #[schemars(with = "Option<String>")]
        min_difference: Option<Duration>,
    },
}

/// What an exhausted inconclusive limit turns into.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum OnInconclusive {
    /// Fail the check (the safe default).
    #[default]
    Fail,
    /// Keep waiting for data: the analysis neither passes nor fails on it.
    Hold,
    /// Pass the check. Only when explicitly configured.
    Pass,
}

/// Analysis-wide settings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Policy {
    /// Accepted false-rollback rate of the whole analysis, however often it
    /// looks (always-valid): split equally over the statistical checks.
    #[serde(default = "defaults::alpha")]
    pub alpha: f64,
}

impl Default for Policy {
    fn default() -> Self {
        Self { alpha: defaults::alpha() }
    }
}

mod defaults {
    pub fn min_samples() -> u64 {
        50
    }
    pub fn failure_limit() -> u32 {
        1
    }
    pub fn inconclusive_limit() -> u32 {
        6
    }
    pub fn alpha() -> f64 {
        0.01
    }
    pub fn error_tolerance() -> f64 {
        0.01
    }
    pub fn latency_tolerance() -> f64 {
        0.2
    }
}

/// Serde for `std::time::Duration` as humantime strings ("250ms", "10m").
pub mod humantime_serde {
    use serde::{Deserialize, Deserializer, Serializer, de::Error};
    use std::time::Duration;

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&humantime::format_duration(*d).to_string())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let text = String::deserialize(d)?;
        humantime::parse_duration(&text).map_err(|e| {
            D::Error::custom(format!("invalid duration {text:?}: {e} (write it like \"30s\", \"250ms\" or \"10m\")"))
        })
    }

    /// The same for `Option<Duration>` (with `#[serde(default)]`).
    pub mod option {
        use serde::{Deserialize, Deserializer, Serializer};
        use std::time::Duration;

        pub fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
            match d {
                Some(d) => super::serialize(d, s),
                None => s.serialize_none(),
            }
        }

        pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
            #[derive(Deserialize)]
            struct Wrapped(#[serde(with = "super")] Duration);
            Ok(Option::<Wrapped>::deserialize(d)?.map(|Wrapped(d)| d))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_compares_with_stable() {
        let query = |q: &str| CheckSpec {
            name: "q".into(),
            kind: CheckKind::Query {
                source: "cw".into(),
                query: q.into(),
                min: None,
                max: Some(0.0),
                reduce: None,
                step: None,
            },
            min_samples: 1,
            critical: false,
            failure_limit: 1,
            inconclusive_limit: 6,
            on_inconclusive: OnInconclusive::Hold,
        };
        assert!(query("alb latency_vs_stable").compares_with_stable());
        assert!(!query("alb p99").compares_with_stable());
        assert!(!query("alb latency_vs_stable_x").compares_with_stable());
        let compare = CheckSpec { kind: CheckKind::Compare(Comparison::ErrorRate { tolerance: 0.01 }), ..query("") };
        assert!(compare.compares_with_stable());
    }

    #[test]
    fn reduce_leaves_out_nan_and_says_none_without_points() {
        let points = [0.2, f64::NAN, 0.5, 0.1];
        assert_eq!(Reduce::Max.apply(&points), Some(0.5));
        assert_eq!(Reduce::Min.apply(&points), Some(0.1));
        assert!((Reduce::Mean.apply(&points).expect("points") - 0.8 / 3.0).abs() < 1e-15);
        assert_eq!(Reduce::Last.apply(&points), Some(0.1));
        assert_eq!(Reduce::Last.apply(&[0.3, f64::NAN]), Some(0.3));
        for reduce in [Reduce::Max, Reduce::Min, Reduce::Mean, Reduce::Last] {
            assert_eq!(reduce.apply(&[]), None);
            assert_eq!(reduce.apply(&[f64::NAN, f64::NAN]), None);
        }
    }

    proptest::proptest! {
        #[test]
        fn reductions_lie_within_the_points(points in proptest::collection::vec(-1e6f64..1e6, 1..50)) {
            let (lo, hi) = (Reduce::Min.apply(&points), Reduce::Max.apply(&points));
            let (lo, hi) = (lo.expect("points"), hi.expect("points"));
            let mean = Reduce::Mean.apply(&points).expect("points");
            proptest::prop_assert!(lo <= hi);
            proptest::prop_assert!(lo - 1e-6 <= mean && mean <= hi + 1e-6, "{} {} {}", lo, mean, hi);
            proptest::prop_assert_eq!(Reduce::Last.apply(&points), points.last().copied());
            proptest::prop_assert!(points.contains(&lo) && points.contains(&hi));
        }
    }

    #[test]
    fn a_query_check_round_trips_with_reduce_and_step() {
        let text = r#"{"name":"e","kind":"query","source":"prom","query":"up","max":1.0,"reduce":"mean","step":"5s"}"#;
        let spec: CheckSpec = serde_json::from_str(text).expect("parses");
        let CheckKind::Query { reduce, step, .. } = &spec.kind else { panic!("a query check") };
        assert_eq!((*reduce, *step), (Some(Reduce::Mean), Some(Duration::from_secs(5))));
        let back: CheckSpec = serde_json::from_str(&serde_json::to_string(&spec).expect("json")).expect("parses");
        assert_eq!(back, spec);
        let bare: CheckSpec =
            serde_json::from_str(r#"{"name":"e","kind":"query","source":"p","query":"up","min":0}"#).expect("parses");
        assert!(matches!(bare.kind, CheckKind::Query { reduce: None, step: None, .. }));
    }
}
