//! The JSON of the embedded router's admin API (`sluice-router`): one
//! definition, serialized by the router and read by its client in
//! `sluice-providers`, so the two cannot disagree on a field.
//!
//! `GET /v1/state` (and every successful change: `PUT /v1/weights`,
//! `PUT /v1/upstreams`, `POST /v1/promote`) answers a [`StateView`];
//! `GET /v1/stats` answers a [`StatsView`]. Fields are only ever added;
//! readers ignore fields they do not know.
//!
//! Plain data only: nothing here talks to a router or knows how one routes.

use serde::{Deserialize, Serialize};

use crate::record::RouterState;

/// The routing state as the admin API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StateView {
    /// Percentage of requests sent to the candidate, 0..=100.
    pub candidate_weight: u8,
    /// The stable pool; there always is one.
    pub stable: PoolView,
    /// The candidate pool, if any (`null` when there is none).
    pub candidate: Option<PoolView>,
    /// Increments on every change of the state.
    pub generation: u64,
}

/// A pool's upstream and stats epoch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PoolView {
    /// `http://host:port`.
    pub upstream: String,
    /// Increments whenever this pool's stats are reset (its upstream changed).
    pub epoch: u64,
}

/// Stats of both pools at one instant (`GET /v1/stats`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StatsView {
    /// When the snapshot was taken.
    pub at: jiff::Timestamp,
    /// Generation of the state the snapshot was taken from.
    pub generation: u64,
    /// Weight at that state.
    pub candidate_weight: u8,
    /// Per-pool stats.
    pub pools: PoolsStats,
}

/// Per-pool stats of a [`StatsView`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PoolsStats {
    /// The stable pool; there always is one.
    pub stable: PoolStatsView,
    /// The candidate pool, if any (`null` when there is none).
    pub candidate: Option<PoolStatsView>,
}

/// One pool's cumulative stats within its epoch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PoolStatsView {
    /// `http://host:port`.
    pub upstream: String,
    /// Stats epoch: compare before diffing two snapshots.
    pub epoch: u64,
    /// Requests routed to this pool (including in-flight ones).
    pub requests: u64,
    /// 5xx responses, including the router's own 502 on connect errors.
    pub responses_5xx: u64,
    /// Requests that got no response head from the upstream (answered 502).
    pub connect_errors: u64,
    /// Latency from request received to upstream response head, in µs.
    pub latency_us: LatencySummary,
    /// `[highest equivalent value in µs, count]` per non-empty bucket,
    /// ascending.
    pub latency_histogram: Vec<(u64, u64)>,
}

/// Latency percentiles in microseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct LatencySummary {
    /// Recorded samples.
    pub count: u64,
    /// Median.
    pub p50: u64,
    /// 90th percentile.
    pub p90: u64,
    /// 95th percentile.
    pub p95: u64,
    /// 99th percentile.
    pub p99: u64,
    /// Highest recorded value (bucket's highest equivalent value).
    pub max: u64,
}

impl PoolStatsView {
    /// The latency histogram of this snapshot, for the verdict engine.
    pub fn histogram(&self) -> sluice_analysis::Histogram {
        sluice_analysis::Histogram::from_pairs(self.latency_histogram.iter().copied())
    }
}

impl From<StateView> for RouterState {
    fn from(s: StateView) -> Self {
        RouterState {
            kind: "local".into(),
            candidate_weight: s.candidate_weight,
            stable: Some(s.stable.upstream),
            candidate: s.candidate.map(|p| p.upstream),
            ..RouterState::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The admin API's JSON as docs/routers.md and scripts (`jq
    /// .pools.candidate.requests`) read it: renaming a field fails here.
    #[test]
    fn wire_format() {
        let state: StateView = serde_json::from_str(
            r#"{"candidate_weight":10,"stable":{"upstream":"http://127.0.0.1:1","epoch":1},
                "candidate":null,"generation":3,"added_later":true}"#,
        )
        .expect("state");
        assert_eq!(state.stable.upstream, "http://127.0.0.1:1");
        assert_eq!(state.candidate, None);
        let back = serde_json::to_value(&state).expect("serializes");
        assert_eq!(
            back,
            serde_json::json!({"candidate_weight":10,"stable":{"upstream":"http://127.0.0.1:1","epoch":1},
                "candidate":null,"generation":3})
        );
        let stats: StatsView = serde_json::from_str(
            r#"{"at":"2024-05-01T12:00:00Z","generation":2,"candidate_weight":5,"pools":{
                "stable":{"upstream":"http://127.0.0.1:1","epoch":1,"requests":9,"responses_5xx":1,
                  "connect_errors":0,"latency_us":{"count":8,"p50":1,"p90":2,"p95":3,"p99":4,"max":5},
                  "latency_histogram":[[100,3],[200,5]]},
                "candidate":null}}"#,
        )
        .expect("stats");
        assert_eq!(stats.pools.stable.histogram().count(), 8);
        assert!(stats.pools.candidate.is_none());
    }

    #[test]
    fn a_state_without_a_stable_pool_is_refused() {
        let err = serde_json::from_str::<StateView>(r#"{"candidate_weight":0,"candidate":null,"generation":1}"#)
            .expect_err("stable is required");
        assert!(err.to_string().contains("stable"), "{err}");
    }

    #[test]
    fn state_becomes_the_records_router_state() {
        let state = StateView {
            candidate_weight: 25,
            stable: PoolView { upstream: "http://a:1".into(), epoch: 1 },
            candidate: Some(PoolView { upstream: "http://b:2".into(), epoch: 2 }),
            generation: 4,
        };
        let record = RouterState::from(state);
        assert_eq!(record.kind, "local");
        assert_eq!(record.candidate_weight, 25);
        assert_eq!(record.stable.as_deref(), Some("http://a:1"));
        assert_eq!(record.candidate.as_deref(), Some("http://b:2"));
    }
}
