//! What a person reads: the reason and per-check evidence of typical
//! analyses, as snapshots.

use jiff::Timestamp;
use sluice_analysis::{
    Analysis, AnalysisReport, CheckKind, CheckSpec, Comparison, Histogram, Interval, OnInconclusive, Policy,
    PoolWindow, ProbeResult,
};
use std::collections::BTreeMap;
use std::fmt::Write;
use std::time::Duration;

fn check(name: &str, kind: CheckKind) -> CheckSpec {
    CheckSpec {
        name: name.into(),
        kind,
        min_samples: 50,
        critical: false,
        failure_limit: 1,
        inconclusive_limit: 6,
        on_inconclusive: OnInconclusive::Fail,
    }
}

fn checks() -> Vec<CheckSpec> {
    vec![
        CheckSpec { critical: true, ..check("error-rate", CheckKind::ErrorRate { max: 0.01 }) },
        check("latency-p99", CheckKind::Latency { percentile: 99.0, max: Duration::from_millis(250) }),
        check("errors-vs-stable", CheckKind::Compare(Comparison::ErrorRate { tolerance: 0.01 })),
        check("latency-vs-stable", CheckKind::Compare(Comparison::Latency { tolerance: 0.2, min_difference: None })),
        CheckSpec { min_samples: 3, ..check("smoke", CheckKind::Probe) },
    ]
}

fn pool(requests: u64, errors: u64, base_ms: u64) -> PoolWindow {
    let latency = Histogram::from_pairs((0..requests).map(|k| ((base_ms + k % 40) * 1000, 1)));
    PoolWindow { requests, errors, latency }
}

fn interval(i: u64, candidate: Option<PoolWindow>, stable: Option<PoolWindow>) -> Interval {
    let start = Timestamp::from_second(1_700_000_000).expect("valid") + Duration::from_secs(10 * i);
    Interval {
        start,
        end: start + Duration::from_secs(10),
        candidate,
        stable,
        probes: vec![ProbeResult {
            name: "healthz".into(),
            ok: true,
            status: Some(200),
            latency_ms: Some(4.0),
            detail: None,
        }],
        values: BTreeMap::new(),
        source_errors: BTreeMap::new(),
        query_errors: BTreeMap::new(),
        lookback: BTreeMap::new(),
        router_weight: None,
    }
}

fn render(report: &AnalysisReport) -> String {
    let mut out =
        format!("verdict: {:?}\ndecided_by: {:?}\nreason: {}\n", report.verdict, report.decided_by, report.reason);
    for c in &report.checks {
        let _ = write!(
            out,
            "\n{} [{}] {:?}\n  threshold: {}\n  observed: {:?}  baseline: {:?}  samples: {}\n  statistic: {}  p: {}\n  {}\n",
            c.name,
            c.kind,
            c.verdict,
            c.threshold,
            c.observed,
            c.baseline,
            c.samples,
            c.statistic.map_or("-".into(), |s| format!("{s:.3}")),
            c.p_value.map_or("-".into(), |p| format!("{p:.3e}")),
            c.message
        );
    }
    out
}

#[test]
fn a_healthy_canary() {
    let intervals =
        (0..6).map(|i| interval(i, Some(pool(200, u64::from(i % 3 == 0), 20)), Some(pool(1800, 4, 20)))).collect();
    insta::assert_snapshot!(render(&Analysis::replay(checks(), Policy::default(), intervals, None)));
}

#[test]
fn a_canary_with_five_percent_errors() {
    let intervals = (0..6).map(|i| interval(i, Some(pool(200, 10, 20)), Some(pool(1800, 4, 20)))).collect();
    insta::assert_snapshot!(render(&Analysis::replay(checks(), Policy::default(), intervals, None)));
}

#[test]
fn a_router_outage() {
    let intervals = (0..8)
        .map(|i| Interval {
            source_errors: BTreeMap::from([("router".into(), "connection refused".into())]),
            ..interval(i, None, None)
        })
        .collect();
    insta::assert_snapshot!(render(&Analysis::replay(checks(), Policy::default(), intervals, None)));
}
