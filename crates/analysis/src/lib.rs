//! Pure judgment of a candidate release: checks, statistics and verdicts.
//!
//! This crate never performs I/O. Metric sources (in `sluice-providers`) turn
//! what they measure into [`Interval`]s; an [`Analysis`] consumes them one by
//! one and says when it has seen enough to decide. Everything it decides is
//! explained by an [`AnalysisReport`] that is stored in the deployment record,
//! so a verdict can be re-judged later from the same samples (`--replay`).
//!
//! Invariant: no data is never a pass. A check that has not seen
//! `min_samples` is inconclusive, and a metric source that failed is an
//! error, counted apart from failures.
//!
//! Modules: `check` (what users configure), `histogram` (latency
//! distributions), [`stats`] (the normal distribution, two-proportion and
//! Mann-Whitney tests, and the sequential tests that keep the false-fail rate
//! at `alpha` however often an analysis looks) and `engine` (the state
//! machine: its semantics and the time-to-detect formula are in its module
//! docs, `src/engine.rs`; read them before changing a default). [`gates`]
//! judges what `gate` checks without a provider: freeze windows, SARIF
//! findings and coverage reports.

mod check;
mod engine;
pub mod gates;
mod histogram;
pub mod stats;

pub use check::{CheckKind, CheckSpec, Comparison, OnInconclusive, Policy, Reduce, humantime_serde};
pub use engine::{Analysis, AnalysisReport, Cause, CheckEvidence, Outcome, SkippedCheck, Verdict};
pub use histogram::Histogram;

use jiff::Timestamp;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// What one pool (stable or candidate) served during one interval.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct PoolWindow {
    /// Requests answered (any status) in the interval.
    pub requests: u64,
    /// Of those, answers with a 5xx status or a failed upstream connection.
    pub errors: u64,
    /// Latency of the requests, in microseconds.
    #[serde(default)]
    pub latency: Histogram,
}

/// One synthetic HTTP probe made during an interval.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ProbeResult {
    /// The probe's name from config.
    pub name: String,
    /// Whether status, body and latency all matched the expectation.
    pub ok: bool,
    /// The HTTP status, when an answer came.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// Time to the full answer, in milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency_ms: Option<f64>,
    /// Why it was not ok.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// Everything measured over one interval of analysis, for both pools at once,
/// so candidate and stable are always compared over the same window.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Interval {
    pub start: Timestamp,
    pub end: Timestamp,
    /// The candidate's traffic; `None` when the source could not say.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub candidate: Option<PoolWindow>,
    /// The stable (baseline) traffic over the same window.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stable: Option<PoolWindow>,
    /// Probe results made during the interval.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub probes: Vec<ProbeResult>,
    /// Scalar query results (Prometheus, CloudWatch) keyed by check name;
    /// `None` means the query answered with no data.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub values: BTreeMap<String, Option<f64>>,
    /// Metric source failures during this interval (after retries), by source.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub source_errors: BTreeMap<String, String>,
    /// Queries the source answered but that cannot be judged (refused as
    /// invalid, several series where one is needed), by check name. The
    /// source itself worked, so its other checks go on.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub query_errors: BTreeMap<String, String>,
    /// The time a metric source was asked about, by source, where it is not
    /// the interval itself (CloudWatch: whole minutes, behind the clock).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub lookback: BTreeMap<String, LookBack>,
    /// The candidate weight (percent) the router reported at the interval's
    /// end, when it reports one with its counters (the embedded router). The
    /// sample-ratio check holds the candidate's share against the weight
    /// sluice set; this says what the router itself claimed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub router_weight: Option<u8>,
}

/// The window a metric source looked at for one interval.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct LookBack {
    pub start: Timestamp,
    pub end: Timestamp,
    /// Resolution of the statistics, in seconds.
    pub period_seconds: u64,
    /// Where the periods this interval's pool traffic was counted from
    /// start, when the source gave the pools' traffic (CloudWatch counts
    /// each period once: the first interval the whole window, later ones
    /// only periods not counted before). The sample-ratio check counts an
    /// interval only when this is not before the analysis started, so that
    /// no period of the previous weight is held against this one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub counted_from: Option<Timestamp>,
    /// Whether this source counts the pools' traffic (CloudWatch reading
    /// the ALB's target groups): its look-back counting no new period is
    /// then a wait for CloudWatch's next, not missing data.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub pools: bool,
}
