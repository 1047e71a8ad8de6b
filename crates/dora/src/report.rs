//! The report: what `dora-report` prints as JSON (`sluice.dora-report/v1`).
//!
//! Keys are stable: every field is always present, `null` where there is no
//! value. A metric without data is `value: null` with a `no_data` reason and
//! never 0. Durations are seconds (fractional where a percentile falls between
//! two samples); rates are fractions in `[0, 1]`.

use jiff::Timestamp;
use jiff::civil::Date;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use sluice_core::ledger::{ChangeKind, LedgerOutcome};

/// Schema tag of the JSON report.
pub const REPORT_SCHEMA: &str = "sluice.dora-report/v1";

/// The label of the benchmark the tiers come from.
pub const TIER_SOURCE: &str = "DORA 2024";

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Report {
    /// Always `sluice.dora-report/v1`.
    pub schema: String,
    /// Where the tiers come from: `DORA 2024`.
    pub tier_source: String,
    /// The window the metrics cover; `null` when the ledger had no entry in
    /// scope to derive a missing bound from.
    pub window: Option<Window>,
    /// The options the report was computed with.
    pub options: ReportOptions,
    /// One per app and environment in scope that has any ledger entry, sorted
    /// by environment (in promotion order when given, then by name) then app.
    pub groups: Vec<GroupReport>,
    /// One per environment: all its apps pooled, and its deployment history.
    pub environments: Vec<EnvironmentReport>,
    /// Remarks on the whole report (e.g. a trend left out for a long window).
    pub notes: Vec<String>,
    /// Set when the history could not be read whole and the figures cover
    /// only part of it: what was left out and why (e.g. GitHub's rate-limit
    /// reserve was reached). `null` for a whole report.
    pub partial: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Window {
    /// Inclusive start.
    pub since: Timestamp,
    /// Exclusive end.
    pub until: Timestamp,
    /// `until - since` in days (fractional).
    pub days: f64,
    /// Number of UTC weeks (Monday 00:00 to Monday 00:00) the window touches.
    pub weeks: u64,
    /// Whether `since` / `until` were derived from the ledger (start of the
    /// UTC day of the first entry, start of the UTC day after the last one).
    pub since_derived: bool,
    pub until_derived: bool,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ReportOptions {
    /// Apps selected; empty means all.
    pub apps: Vec<String>,
    /// Environments selected; empty means all.
    pub environments: Vec<String>,
    /// A hotfix attempt that starts within this many seconds after a promoted
    /// deployment finished marks that deployment as failed.
    pub hotfix_window_seconds: u64,
    /// Rows of deployment history kept per environment.
    pub history_limit: u64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct GroupReport {
    pub app: String,
    pub environment: String,
    pub counts: Counts,
    /// The five metrics, each with its DORA 2024 tier where one applies.
    pub metrics: Metrics,
    /// One point per UTC week of the window, oldest first.
    pub weekly: Vec<WeekPoint>,
    /// One point per UTC day of the window, oldest first, when the window
    /// touches at most 31 UTC days (`MAX_DAILY_DAYS`); empty otherwise.
    pub daily: Vec<DayPoint>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct EnvironmentReport {
    pub environment: String,
    /// Apps with any ledger entry in this environment.
    pub apps: u64,
    pub counts: Counts,
    /// All apps pooled. No tiers: DORA tiers describe one application.
    pub metrics: Metrics,
    pub weekly: Vec<WeekPoint>,
    /// As in a group: one point per UTC day of a window of at most 31 days.
    pub daily: Vec<DayPoint>,
    pub history: History,
}

/// What happened in the window (entries placed by `finished_at`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Counts {
    /// Ledger entries of every outcome.
    pub entries: u64,
    /// Deployment attempts: promoted + rolled back + failed.
    pub attempts: u64,
    /// Deployments: promoted attempts.
    pub deployments: u64,
    pub rolled_back: u64,
    pub failed: u64,
    /// Rollbacks of promoted releases (not deployments).
    pub reverted: u64,
    /// Deployments that ended without moving traffic (not attempts: neither
    /// deployments nor failures).
    pub abandoned: u64,
    /// Promoted deployments of kind `hotfix`.
    pub hotfix_deployments: u64,
    /// Attempts that needed intervention (the change fail rate's numerator).
    pub failed_deployments: u64,
    /// Failed deployments with no recovery in the ledger yet.
    pub unrecovered: u64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Metrics {
    pub deployment_frequency: Metric<Frequency>,
    pub change_lead_time: Metric<DurationStats>,
    pub change_fail_rate: Metric<Ratio>,
    pub failed_deployment_recovery_time: Metric<DurationStats>,
    pub deployment_rework_rate: Metric<Ratio>,
}

/// A metric's value, or why there is none.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Metric<T> {
    pub value: Option<T>,
    /// DORA 2024 tier of the value; `null` without a value, for the rework rate
    /// (DORA 2024 publishes no tiers for it) and for pooled environments.
    pub tier: Option<Tier>,
    /// Why `value` is `null`.
    pub no_data: Option<String>,
}

impl<T> Metric<T> {
    pub(crate) fn none(reason: impl Into<String>) -> Self {
        Self { value: None, tier: None, no_data: Some(reason.into()) }
    }

    pub(crate) fn some(value: T, tier: Option<Tier>) -> Self {
        Self { value: Some(value), tier, no_data: None }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Frequency {
    pub deployments: u64,
    /// Deployments per day of the window.
    pub per_day: f64,
    /// Deployments per 7 days of the window.
    pub per_week: f64,
    /// UTC weeks of the window with at least one deployment.
    pub weeks_with_deployment: u64,
    /// UTC weeks the window touches.
    pub weeks: u64,
    /// `weeks_with_deployment / weeks`.
    pub share_of_weeks_with_deployment: f64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct DurationStats {
    pub median_seconds: f64,
    pub p90_seconds: f64,
    /// Number of durations the percentiles come from.
    pub samples: u64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Ratio {
    /// `numerator / denominator`.
    pub rate: f64,
    pub numerator: u64,
    pub denominator: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Tier {
    Elite,
    High,
    Medium,
    Low,
}

impl Tier {
    pub fn as_str(self) -> &'static str {
        match self {
            Tier::Elite => "elite",
            Tier::High => "high",
            Tier::Medium => "medium",
            Tier::Low => "low",
        }
    }
}

/// One UTC week (Monday to Monday) of a trend; `null` where the week has no data.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct WeekPoint {
    /// The Monday the week starts on (UTC).
    pub week_start: Date,
    #[serde(flatten)]
    pub figures: TrendFigures,
}

/// One UTC day of a short window's trend; `null` where the day has no data.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct DayPoint {
    /// The day (UTC).
    pub day: Date,
    #[serde(flatten)]
    pub figures: TrendFigures,
}

/// What a trend point (a [`WeekPoint`] or a [`DayPoint`]) measured, its
/// fields beside the point's date in the JSON.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct TrendFigures {
    /// The share of the week (or day) inside the window, in `(0, 1]`: below
    /// 1 for a first or last one the window covers only in part (its counts
    /// are of those days or hours only, not a dip).
    pub coverage: f64,
    pub deployments: u64,
    pub attempts: u64,
    pub change_lead_time_median_seconds: Option<f64>,
    pub change_fail_rate: Option<f64>,
    pub recovery_time_median_seconds: Option<f64>,
    pub rework_rate: Option<f64>,
}

/// The recent deployment history of one environment.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct History {
    /// Most recent first (by `started_at`), at most `history_limit`.
    pub rows: Vec<HistoryRow>,
    /// Ledger entries of this environment in the window.
    pub total: u64,
    /// `total - rows.len()`.
    pub left_out: u64,
    /// Promoted attempts / attempts in the window; `null` without attempts.
    pub success_rate: Option<f64>,
    /// Mean of `finished_at - started_at` over the attempts in the window.
    pub average_duration_seconds: Option<f64>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct HistoryRow {
    pub id: String,
    pub app: String,
    pub version: String,
    pub commit: Option<String>,
    pub started_at: Timestamp,
    pub duration_seconds: f64,
    pub strategy: String,
    pub triggered_by: Option<String>,
    pub change: ChangeKind,
    pub outcome: LedgerOutcome,
    pub reason: Option<String>,
    /// An environment of several targets (waves): the target that stopped
    /// the deployment, when its ledger entry says which (its last verdict
    /// failed, or the reason names it: `target NAME in wave N: ...`).
    /// Absent for an environment of one router and for a deployment no
    /// target stopped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failed_target: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A week and a day share their figures, and each still reads in the
    /// JSON as one flat object: its date, then the figures in the same
    /// order as before they were shared (`null` where there is no data).
    #[test]
    fn trend_points_are_flat_objects_with_shared_figures() {
        let figures = TrendFigures {
            coverage: 0.5,
            deployments: 3,
            attempts: 4,
            change_lead_time_median_seconds: Some(7200.0),
            change_fail_rate: Some(0.25),
            recovery_time_median_seconds: None,
            rework_rate: Some(0.0),
        };
        let date: Date = "2024-01-08".parse().expect("date");
        let tail = "\"coverage\":0.5,\"deployments\":3,\"attempts\":4,\"change_lead_time_median_seconds\":7200.0,\
                    \"change_fail_rate\":0.25,\"recovery_time_median_seconds\":null,\"rework_rate\":0.0}";
        let week = WeekPoint { week_start: date, figures: figures.clone() };
        let text = serde_json::to_string(&week).expect("week json");
        assert_eq!(text, format!("{{\"week_start\":\"2024-01-08\",{tail}"));
        assert_eq!(serde_json::from_str::<WeekPoint>(&text).expect("week back"), week);
        let day = DayPoint { day: date, figures };
        let text = serde_json::to_string(&day).expect("day json");
        assert_eq!(text, format!("{{\"day\":\"2024-01-08\",{tail}"));
        assert_eq!(serde_json::from_str::<DayPoint>(&text).expect("day back"), day);
    }
}
