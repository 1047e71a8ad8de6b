use super::*;
use crate::{Histogram, LookBack, OnInconclusive, PoolWindow, ProbeResult};
use std::collections::BTreeMap;
use std::time::Duration;

fn spec(name: &str, kind: CheckKind) -> CheckSpec {
    CheckSpec {
        name: name.into(),
        kind,
        min_samples: 50,
        critical: false,
        failure_limit: 1,
        inconclusive_limit: 3,
        on_inconclusive: OnInconclusive::Fail,
    }
}

fn error_rate(max: f64) -> CheckSpec {
    spec("errors", CheckKind::ErrorRate { max })
}

fn latency(percentile: f64, max_ms: u64) -> CheckSpec {
    spec("latency", CheckKind::Latency { percentile, max: Duration::from_millis(max_ms) })
}

fn query(source: &str, text: &str, min: Option<f64>, max: Option<f64>) -> CheckKind {
    CheckKind::Query { source: source.into(), query: text.into(), min, max, reduce: None, step: None }
}

fn at(second: i64) -> Timestamp {
    Timestamp::from_second(1_700_000_000 + second).expect("valid")
}

fn interval(i: i64) -> Interval {
    Interval {
        start: at(i),
        end: at(i + 1),
        candidate: None,
        stable: None,
        probes: Vec::new(),
        values: BTreeMap::new(),
        source_errors: BTreeMap::new(),
        query_errors: BTreeMap::new(),
        lookback: BTreeMap::new(),
        router_weight: None,
    }
}

/// `requests` requests with `errors` errors, latencies spread over
/// `base_ms .. base_ms + 20ms`.
fn pool(requests: u64, errors: u64, base_ms: u64) -> PoolWindow {
    let latency = Histogram::from_pairs((0..requests).map(|k| ((base_ms + k % 20) * 1000, 1)));
    PoolWindow { requests, errors, latency }
}

fn traffic(i: i64, candidate: PoolWindow, stable: PoolWindow) -> Interval {
    Interval { candidate: Some(candidate), stable: Some(stable), ..interval(i) }
}

/// Feeds intervals until decided; returns the index of the deciding interval.
fn run(analysis: &mut Analysis, intervals: impl IntoIterator<Item = Interval>) -> Option<(usize, Verdict)> {
    for (i, interval) in intervals.into_iter().enumerate() {
        if let Outcome::Decided(v) = analysis.observe(interval) {
            return Some((i, v));
        }
    }
    None
}

#[test]
fn no_checks_is_never_a_pass() {
    let mut analysis = Analysis::new(Vec::new(), Policy::default());
    assert_eq!(
        analysis.observe(traffic(0, pool(20, 0, 10), pool(200, 0, 10))),
        Outcome::Decided(Verdict::Inconclusive)
    );
    let report = analysis.finish();
    assert_eq!(report.verdict, Verdict::Inconclusive);
    assert!(report.reason.contains("no checks"), "{}", report.reason);
    assert_eq!(report.intervals.len(), 1);
}

#[test]
fn no_intervals_is_inconclusive() {
    let report = Analysis::new(vec![error_rate(0.01)], Policy::default()).finish();
    assert_eq!(report.verdict, Verdict::Inconclusive);
    assert_eq!(report.checks[0].verdict, Verdict::Inconclusive);
}

#[test]
fn a_five_percent_error_candidate_fails_within_seconds() {
    // 20 candidate requests per 1s interval, one error in each (5 %), max 1 %.
    let mut analysis = Analysis::new(vec![error_rate(0.01)], Policy::default());
    let decided = run(&mut analysis, (0..60).map(|i| traffic(i, pool(20, 1, 10), pool(180, 0, 10))));
    let (index, verdict) = decided.expect("decided");
    assert_eq!(verdict, Verdict::Fail);
    // ~151 requests by the formula in the module docs: 8 intervals.
    assert!(index <= 9, "decided after {} intervals", index + 1);
    let report = analysis.finish();
    assert_eq!(report.verdict, Verdict::Fail);
    assert_eq!(report.decided_by.as_deref(), Some("errors"));
    let e = &report.checks[0];
    assert_eq!(e.kind, "error_rate");
    assert_eq!(e.threshold, "<= 1.00%");
    assert_eq!(e.observed, Some(0.05));
    assert!(e.p_value.expect("p") < 0.01);
    assert_eq!(e.samples, 20 * (index as u64 + 1));
    assert_eq!(e.window_start, Some(at(0)));
    assert_eq!(e.window_end, Some(at(index as i64 + 1)));
    assert!(report.reason.starts_with("check \"errors\" failed: error rate 5.00%"), "{}", report.reason);
    assert_eq!(report.intervals.len(), index + 1);
}

#[test]
fn a_broken_candidate_fails_as_soon_as_min_samples_are_in() {
    let mut analysis = Analysis::new(vec![error_rate(0.01)], Policy::default());
    let decided = run(&mut analysis, (0..60).map(|i| traffic(i, pool(20, 20, 10), pool(180, 0, 10))));
    // 50 requests at 20/s: the third interval.
    assert_eq!(decided, Some((2, Verdict::Fail)));
}

#[test]
fn a_healthy_candidate_passes_at_the_end() {
    let mut analysis = Analysis::new(vec![error_rate(0.01), latency(99.0, 250)], Policy::default());
    let decided =
        run(&mut analysis, (0..30).map(|i| traffic(i, pool(20, u64::from(i % 10 == 0), 10), pool(180, 0, 10))));
    assert_eq!(decided, None);
    let report = analysis.finish();
    assert_eq!(report.verdict, Verdict::Pass, "{}", report.reason);
    assert_eq!(report.decided_by, None);
    assert!(
        report.reason.starts_with("all 2 checks passed over 30 intervals: errors: error rate 0.50%"),
        "{}",
        report.reason
    );
    assert_eq!(report.checks[1].threshold, "p99 <= 250ms");
    assert_eq!(report.checks[1].observed, Some(29.0));
}

#[test]
fn above_the_limit_but_not_significant_passes_and_says_so() {
    // 5 errors in 100 requests (5 %): not enough evidence against 1 % at
    // alpha 0.01, so the check does not fail; the message says so.
    let mut analysis = Analysis::new(vec![error_rate(0.01)], Policy::default());
    for i in 0..5 {
        assert_eq!(analysis.observe(traffic(i, pool(20, 1, 10), pool(180, 0, 10))), Outcome::Continue);
    }
    let report = analysis.finish();
    assert_eq!(report.verdict, Verdict::Pass);
    let message = &report.checks[0].message;
    assert_eq!(
        message,
        "error rate 5.00% (5 of 100 requests), limit <= 1.00%: beyond it as observed, but not significantly \
         (always-valid p = 0.080, alpha 0.01), so not failed"
    );
}

#[test]
fn too_few_samples_is_inconclusive_but_slow_traffic_is_not_missing_traffic() {
    // 5 requests per interval never hits the inconclusive limit (3), but 50
    // are needed to pass.
    let mut analysis = Analysis::new(vec![error_rate(0.01)], Policy::default());
    let decided = run(&mut analysis, (0..8).map(|i| traffic(i, pool(5, 0, 10), pool(50, 0, 10))));
    assert_eq!(decided, None);
    let report = analysis.finish();
    assert_eq!(report.verdict, Verdict::Inconclusive);
    assert!(report.checks[0].message.contains("40 of 50 requests"), "{}", report.checks[0].message);
}

#[test]
fn no_data_reaching_the_limit_follows_on_inconclusive() {
    let empty = |i| traffic(i, pool(0, 0, 10), pool(100, 0, 10));
    // fail (the default): no traffic at the third interval without any is
    // inconclusive, decided at once, not a failure of the release.
    let mut analysis = Analysis::new(vec![error_rate(0.01)], Policy::default());
    assert_eq!(run(&mut analysis, (0..10).map(empty)), Some((2, Verdict::Inconclusive)));
    let report = analysis.finish();
    assert_eq!(report.cause, Some(Cause::NoTraffic));
    assert!(
        report.reason.starts_with("no traffic: the candidate received no requests for 3 consecutive intervals"),
        "{}",
        report.reason
    );
    // Requests without the data the check needs (no latencies) are missing
    // data, which fails.
    let no_latencies =
        |i| traffic(i, PoolWindow { requests: 20, errors: 0, latency: Histogram::default() }, pool(100, 0, 10));
    let mut analysis = Analysis::new(vec![latency(99.0, 250)], Policy::default());
    assert_eq!(run(&mut analysis, (0..10).map(no_latencies)), Some((2, Verdict::Fail)));
    let report = analysis.finish();
    assert!(report.reason.contains("no data for 3 consecutive intervals"), "{}", report.reason);
    assert_eq!(report.cause, None);

    // hold: never decides, ends inconclusive.
    let mut check = error_rate(0.01);
    check.on_inconclusive = OnInconclusive::Hold;
    let mut analysis = Analysis::new(vec![check.clone()], Policy::default());
    assert_eq!(run(&mut analysis, (0..10).map(empty)), None);
    assert_eq!(analysis.finish().verdict, Verdict::Inconclusive);

    // pass: passes, but only because configured, and data still count.
    check.on_inconclusive = OnInconclusive::Pass;
    let mut analysis = Analysis::new(vec![check.clone()], Policy::default());
    assert_eq!(run(&mut analysis, (0..10).map(empty)), None);
    let report = analysis.finish();
    assert_eq!(report.verdict, Verdict::Pass);
    assert!(report.checks[0].message.contains("on_inconclusive = \"pass\""));
    let mut analysis = Analysis::new(vec![check], Policy::default());
    let then_broken = (0..4).map(empty).chain((4..10).map(|i| traffic(i, pool(20, 20, 10), pool(100, 0, 10))));
    assert_eq!(run(&mut analysis, then_broken), Some((6, Verdict::Fail)));
}

#[test]
fn persistent_source_errors_end_as_error_never_as_pass() {
    let broken = |i| Interval {
        source_errors: BTreeMap::from([("router".to_string(), "connection refused".to_string())]),
        ..interval(i)
    };
    for on_inconclusive in [OnInconclusive::Pass, OnInconclusive::Hold, OnInconclusive::Fail] {
        let mut check = error_rate(0.01);
        check.on_inconclusive = on_inconclusive;
        // Non-critical, alone: every check final, so decided.
        let mut analysis = Analysis::new(vec![check.clone()], Policy::default());
        assert_eq!(run(&mut analysis, (0..10).map(broken)), Some((2, Verdict::Error)));
        let report = analysis.finish();
        assert_eq!(report.verdict, Verdict::Error);
        assert!(report.reason.contains("router: connection refused"), "{}", report.reason);
    }
    // Fewer errors than the limit, then the end: Error, not Inconclusive.
    let mut analysis = Analysis::new(vec![error_rate(0.01)], Policy::default());
    assert_eq!(run(&mut analysis, (0..2).map(broken)), None);
    assert_eq!(analysis.finish().verdict, Verdict::Error);
}

#[test]
fn a_critical_error_decides_at_once_a_non_critical_one_lets_others_judge() {
    let probe_check = spec("smoke", CheckKind::Probe);
    let mut critical = probe_check.clone();
    critical.critical = true;
    // Traffic is fine, probes never come and the probe source fails.
    let with_probe_error = |i| Interval {
        source_errors: BTreeMap::from([("http".to_string(), "timeout".to_string())]),
        ..traffic(i, pool(20, if i >= 5 { 20 } else { 0 }, 10), pool(180, 0, 10))
    };
    let mut analysis = Analysis::new(vec![error_rate(0.01), critical], Policy::default());
    assert_eq!(run(&mut analysis, (0..10).map(with_probe_error)), Some((2, Verdict::Error)));
    assert_eq!(analysis.finish().decided_by.as_deref(), Some("smoke"));
    // Non-critical: the error-rate check still sees the candidate break.
    let mut analysis = Analysis::new(vec![error_rate(0.01), probe_check], Policy::default());
    assert_eq!(run(&mut analysis, (0..10).map(with_probe_error)), Some((5, Verdict::Fail)));
    let report = analysis.finish();
    assert_eq!(report.decided_by.as_deref(), Some("errors"));
    assert_eq!(report.checks[1].verdict, Verdict::Error);
}

#[test]
fn a_query_source_outage_does_not_blind_pool_checks() {
    let query = spec("saturation", query("prom", "up", None, Some(0.8)));
    let mut analysis = Analysis::new(vec![error_rate(0.01), query], Policy::default());
    let intervals = (0..10).map(|i| Interval {
        source_errors: BTreeMap::from([("prom".to_string(), "503".to_string())]),
        ..traffic(i, pool(20, 20, 10), pool(180, 0, 10))
    });
    assert_eq!(run(&mut analysis, intervals), Some((2, Verdict::Fail)));
    let report = analysis.finish();
    assert_eq!(report.decided_by.as_deref(), Some("errors"));
    assert!(report.checks[1].message.contains("query source prom failed: 503"), "{}", report.checks[1].message);
}

#[test]
fn missing_candidate_pool_is_an_error_interval() {
    let mut analysis = Analysis::new(vec![error_rate(0.01)], Policy::default());
    assert_eq!(run(&mut analysis, (0..3).map(interval)), Some((2, Verdict::Error)));
    assert!(analysis.finish().reason.contains("no candidate data"));
}

#[test]
fn latency_threshold_catches_added_latency() {
    let mut analysis = Analysis::new(vec![latency(99.0, 250)], Policy::default());
    let slow = (0..30).map(|i| traffic(i, pool(20, 0, 310), pool(180, 0, 10)));
    assert_eq!(run(&mut analysis, slow), Some((2, Verdict::Fail)));
    let report = analysis.finish();
    let e = &report.checks[0];
    assert_eq!(e.observed, Some(329.0));
    assert!(e.message.starts_with("p99 329.0ms (60 of 60 requests slower than 250ms)"), "{}", e.message);
}

#[test]
fn comparisons_catch_a_worse_candidate_and_pass_an_equal_one() {
    let compare_errors = spec("vs-errors", CheckKind::Compare(Comparison::ErrorRate { tolerance: 0.01 }));
    let compare_latency =
        spec("vs-latency", CheckKind::Compare(Comparison::Latency { tolerance: 0.2, min_difference: None }));
    let checks = vec![compare_errors, compare_latency];

    let mut analysis = Analysis::new(checks.clone(), Policy::default());
    let equal =
        (0..30).map(|i| traffic(i, pool(20, u64::from(i % 20 == 0), 100), pool(180, u64::from(i % 2 == 0), 100)));
    assert_eq!(run(&mut analysis, equal), None);
    let report = analysis.finish();
    assert_eq!(report.verdict, Verdict::Pass, "{}", report.reason);
    assert_eq!(report.checks[0].threshold, "<= stable + 1.00 pp");
    assert_eq!(report.checks[1].threshold, "<= 1.2 x stable (Mann-Whitney)");
    assert_eq!(report.checks[1].baseline, Some(109.0));

    // 10 % errors against 0.5 %.
    let mut analysis = Analysis::new(checks.clone(), Policy::default());
    let bad = (0..60).map(|i| traffic(i, pool(20, 2, 100), pool(200, 1, 100)));
    let (index, verdict) = run(&mut analysis, bad).expect("decided");
    assert_eq!(verdict, Verdict::Fail);
    assert!(index < 20, "{index}");
    assert_eq!(analysis.finish().decided_by.as_deref(), Some("vs-errors"));

    // 300 ms slower.
    let mut analysis = Analysis::new(checks, Policy::default());
    let slow = (0..60).map(|i| traffic(i, pool(20, 0, 400), pool(180, 0, 100)));
    assert_eq!(run(&mut analysis, slow), Some((2, Verdict::Fail)));
    let report = analysis.finish();
    assert_eq!(report.decided_by.as_deref(), Some("vs-latency"));
    assert_eq!(report.checks[1].observed, Some(409.0));
}

#[test]
fn a_comparison_needs_both_pools() {
    let compare = spec("vs", CheckKind::Compare(Comparison::ErrorRate { tolerance: 0.01 }));
    let mut analysis = Analysis::new(vec![compare], Policy::default());
    let no_stable = (0..5).map(|i| Interval { candidate: Some(pool(20, 0, 10)), ..interval(i) });
    assert_eq!(run(&mut analysis, no_stable), Some((2, Verdict::Error)));
    assert!(analysis.finish().reason.contains("no stable data"));
}

#[test]
fn at_full_weight_comparisons_are_skipped_not_inconclusive() {
    let compare = spec("vs", CheckKind::Compare(Comparison::ErrorRate { tolerance: 0.01 }));
    let checks = vec![error_rate(0.01), compare];
    // All traffic on the candidate: stable serves nothing.
    let full = |i| Interval { candidate: Some(pool(200, 0, 10)), stable: Some(pool(0, 0, 10)), ..interval(i) };
    let mut analysis = Analysis::at_weight(checks.clone(), Policy::default(), 100);
    assert_eq!(run(&mut analysis, (0..4).map(full)), None);
    let report = analysis.finish();
    assert_eq!(report.verdict, Verdict::Pass, "{}", report.reason);
    assert_eq!(report.candidate_weight, Some(100));
    assert_eq!(report.checks.len(), 1);
    assert_eq!(report.skipped.len(), 1);
    assert_eq!(report.skipped[0].name, "vs");
    // Below 100 % the comparison applies, and without stable traffic it
    // cannot pass.
    let mut analysis = Analysis::at_weight(checks.clone(), Policy::default(), 50);
    run(&mut analysis, (0..4).map(full));
    let report = analysis.finish();
    assert_ne!(report.verdict, Verdict::Pass);
    assert!(report.skipped.is_empty());
    // A replay at the recorded weight skips the same checks.
    let replayed = Analysis::replay(checks, Policy::default(), report.intervals, Some(100));
    assert_eq!(replayed.verdict, Verdict::Pass, "{}", replayed.reason);
}

fn probes(i: i64, ok: &[bool]) -> Interval {
    let probes = ok
        .iter()
        .enumerate()
        .map(|(k, &ok)| ProbeResult {
            name: format!("probe-{k}"),
            ok,
            status: Some(if ok { 200 } else { 503 }),
            latency_ms: Some(12.0),
            detail: None,
        })
        .collect();
    Interval { probes, ..interval(i) }
}

#[test]
fn probes_fail_after_the_failure_limit_and_a_pending_streak_is_not_a_pass() {
    let mut check = spec("smoke", CheckKind::Probe);
    check.failure_limit = 2;
    check.min_samples = 4;
    let mut analysis = Analysis::new(vec![check.clone()], Policy::default());
    let seq = [
        probes(0, &[true]),
        probes(1, &[false]),
        probes(2, &[true, true]),
        probes(3, &[false]),
        probes(4, &[false, true]),
    ];
    assert_eq!(run(&mut analysis, seq), Some((4, Verdict::Fail)));
    let report = analysis.finish();
    assert!(
        report.reason.contains("1 of 2 probes failed in the last interval, probe-0 (status 503)"),
        "{}",
        report.reason
    );
    assert!(report.reason.contains("for 2 consecutive intervals"), "{}", report.reason);

    // Intervals without probes neither extend nor break the streak.
    let mut analysis = Analysis::new(vec![check.clone()], Policy::default());
    let seq = [probes(0, &[true, true, true, true]), probes(1, &[false]), interval(2), probes(3, &[false])];
    assert_eq!(run(&mut analysis, seq), Some((3, Verdict::Fail)));

    let mut analysis = Analysis::new(vec![check], Policy::default());
    let seq = [probes(0, &[true, true, true, true]), probes(1, &[false])];
    assert_eq!(run(&mut analysis, seq), None);
    let report = analysis.finish();
    assert_eq!(report.verdict, Verdict::Inconclusive);
    assert!(report.reason.contains("failing for 1 of 2 intervals"), "{}", report.reason);
}

#[test]
fn queries_judge_their_value_and_no_data_is_inconclusive() {
    let mut check = spec("cpu", query("prom", "avg(cpu)", Some(0.0), Some(0.8)));
    check.min_samples = 2;
    let value = |i, v: Option<f64>| Interval { values: BTreeMap::from([("cpu".to_string(), v)]), ..interval(i) };
    let mut analysis = Analysis::new(vec![check.clone()], Policy::default());
    assert_eq!(run(&mut analysis, [value(0, Some(0.5)), value(1, None), value(2, Some(0.6))]), None);
    let report = analysis.finish();
    assert_eq!(report.verdict, Verdict::Pass);
    assert_eq!(report.checks[0].threshold, "in [0, 0.8]");
    assert_eq!(report.checks[0].samples, 2);

    let mut analysis = Analysis::new(vec![check], Policy::default());
    assert_eq!(run(&mut analysis, [value(0, Some(0.5)), value(1, Some(0.95))]), Some((1, Verdict::Fail)));
    assert!(analysis.finish().reason.contains("value 0.95, limit in [0, 0.8]"));
}

#[test]
fn alpha_is_split_over_statistical_checks() {
    let checks = vec![error_rate(0.01), latency(99.0, 250), spec("smoke", CheckKind::Probe)];
    let analysis = Analysis::new(checks, Policy { alpha: 0.01 });
    assert_eq!(analysis.states[0].alpha, 0.005);
    assert_eq!(analysis.states[2].alpha, 0.005);
}

#[test]
fn observing_after_a_decision_records_but_does_not_judge() {
    let mut analysis = Analysis::new(vec![error_rate(0.01)], Policy::default());
    assert_eq!(
        run(&mut analysis, (0..3).map(|i| traffic(i, pool(20, 20, 10), pool(1, 0, 10)))),
        Some((2, Verdict::Fail))
    );
    assert_eq!(analysis.observe(traffic(3, pool(20, 0, 10), pool(1, 0, 10))), Outcome::Decided(Verdict::Fail));
    let report = analysis.finish();
    assert_eq!(report.intervals.len(), 4);
    assert_eq!(report.checks[0].samples, 60);
}

#[test]
fn replay_rejudges_under_another_config() {
    let intervals: Vec<Interval> = (0..20).map(|i| traffic(i, pool(20, 1, 10), pool(180, 0, 10))).collect();
    let strict = Analysis::replay(vec![error_rate(0.01)], Policy::default(), intervals.clone(), None);
    assert_eq!(strict.verdict, Verdict::Fail);
    let lenient = Analysis::replay(vec![error_rate(0.1)], Policy::default(), intervals, None);
    assert_eq!(lenient.verdict, Verdict::Pass);
    assert_eq!(lenient.intervals.len(), 20);
}

#[test]
fn report_round_trips_through_json() {
    let intervals: Vec<Interval> = (0..5).map(|i| traffic(i, pool(20, 1, 10), pool(180, 0, 10))).collect();
    let report = Analysis::replay(vec![error_rate(0.01), latency(99.0, 250)], Policy::default(), intervals, None);
    let json = serde_json::to_string(&report).expect("serialize");
    let back: AnalysisReport = serde_json::from_str(&json).expect("deserialize");
    // serde_json may round the last bit of a float (without its
    // `float_roundtrip` feature); everything else comes back as it was.
    assert_eq!(back.intervals, report.intervals);
    assert_eq!(back.reason, report.reason);
    for (b, r) in back.checks.iter().zip(&report.checks) {
        assert_eq!((&b.name, b.verdict, &b.message, b.samples), (&r.name, r.verdict, &r.message, r.samples));
        assert!((b.statistic.expect("stat") - r.statistic.expect("stat")).abs() < 1e-12);
    }
}

#[test]
fn a_query_that_cannot_be_judged_is_an_error_of_that_check_only() {
    let mut broken = spec("by-version", query("prom", "rate(x[1m])", None, Some(0.01)));
    broken.inconclusive_limit = 2;
    let mut fine = spec("cpu", query("prom", "avg(cpu)", None, Some(0.8)));
    fine.min_samples = 1;
    let intervals = (0..4).map(|i| Interval {
        values: BTreeMap::from([("cpu".to_string(), Some(0.5))]),
        query_errors: BTreeMap::from([("by-version".to_string(), "2 series, the query must aggregate".to_string())]),
        ..interval(i)
    });
    let mut analysis = Analysis::new(vec![broken, fine], Policy::default());
    assert_eq!(run(&mut analysis, intervals), None);
    let report = analysis.finish();
    assert_eq!(report.verdict, Verdict::Error);
    assert_eq!(report.checks[0].verdict, Verdict::Error);
    assert!(report.checks[0].message.contains("must aggregate"), "{}", report.checks[0].message);
    assert_eq!(report.checks[1].verdict, Verdict::Pass);
}

#[test]
fn a_range_query_says_how_it_was_reduced_and_huge_values_stay_readable() {
    let kind = CheckKind::Query {
        source: "prom".into(),
        query: "x".into(),
        min: None,
        max: Some(0.01),
        reduce: Some(crate::Reduce::Max),
        step: None,
    };
    let check = spec("errors", kind);
    let intervals = [Interval { values: BTreeMap::from([("errors".to_string(), Some(f64::MAX))]), ..interval(0) }];
    let mut analysis = Analysis::new(vec![check], Policy::default());
    assert_eq!(run(&mut analysis, intervals), Some((0, Verdict::Fail)));
    let report = analysis.finish();
    assert!(report.reason.contains("value 1.798e308 (max over the interval), limit <= 0.01"), "{}", report.reason);
}

/// 1 s intervals: 60 of them healthy (1 error in 100), then `bad` errors in
/// 20 per interval from `onset`.
fn degrading(onset: i64, bad: u64) -> impl Iterator<Item = Interval> {
    (0..120).map(move |i| {
        let errors = if i >= onset { bad } else { u64::from(i % 5 == 0) };
        traffic(i, pool(20, errors, 10), pool(180, 0, 10))
    })
}

#[test]
fn a_late_degradation_is_caught_as_fast_as_an_early_one() {
    // A 120-interval window, planned: the candidate turns to 10 % errors
    // (limit 1 %) at the start, or after 100 healthy intervals. The recent
    // window that starts at the onset decides as fast as the cumulative test
    // would from the start, where the cumulative test alone, diluted by the
    // good data, needs far longer.
    let detect = |onset: i64, planned: Option<u32>| {
        let mut analysis = Analysis::new(vec![error_rate(0.01)], Policy::default());
        if let Some(p) = planned {
            analysis = analysis.planned(p);
        }
        let (index, verdict) = run(&mut analysis, degrading(onset, 2)).expect("decided");
        assert_eq!(verdict, Verdict::Fail);
        (index as i64 - onset, analysis.finish())
    };
    let (early, _) = detect(0, Some(120));
    let (late, report) = detect(100, Some(120));
    assert!(late <= early + 3, "after the onset: {early} intervals at the start, {late} after 100 s");
    let e = &report.checks[0];
    assert!(e.message.contains("in the last"), "{}", e.message);
    assert!(e.message.contains("since the start of the analysis"), "{}", e.message);
    // The evidence is the window's: its samples are its intervals' requests.
    let start = e.window_start.expect("start");
    let counted: u64 = report
        .intervals
        .iter()
        .filter(|i| i.start >= start)
        .map(|i| i.candidate.as_ref().map_or(0, |c| c.requests))
        .sum();
    assert_eq!(e.samples, counted);
    assert!(start >= at(100), "{start}");
}

#[test]
fn windows_keep_healthy_candidates_passing() {
    // At the limit all along, windows included: no rollback (a
    // deterministic stream at exactly 1 %).
    let mut analysis = Analysis::new(vec![error_rate(0.01)], Policy::default()).planned(120);
    assert_eq!(run(&mut analysis, degrading(1000, 0)), None);
    assert_eq!(analysis.finish().verdict, Verdict::Pass);
}

#[test]
fn a_comparison_counts_stable_requests_of_intervals_without_candidate_requests() {
    let compare = spec("vs", CheckKind::Compare(Comparison::ErrorRate { tolerance: 0.01 }));
    let mut analysis = Analysis::new(vec![compare], Policy::default());
    let intervals: Vec<Interval> = (0..10)
        .map(|i| {
            if i % 3 == 1 {
                traffic(i, pool(0, 0, 10), pool(50, 0, 10))
            } else {
                traffic(i, pool(20, 0, 10), pool(40, 1, 10))
            }
        })
        .collect();
    assert_eq!(run(&mut analysis, intervals.clone()), None);
    let report = analysis.finish();
    let e = &report.checks[0];
    let stable: u64 = intervals.iter().map(|i| i.stable.as_ref().map_or(0, |s| s.requests)).sum();
    let candidate: u64 = intervals.iter().map(|i| i.candidate.as_ref().map_or(0, |c| c.requests)).sum();
    assert_eq!((e.samples, e.baseline_samples), (candidate, Some(stable)));
    assert!(e.message.contains(&format!("of {stable})")), "{}", e.message);
}

#[test]
fn a_sample_ratio_mismatch_is_an_error_naming_the_weight_and_the_share() {
    // Weight 10 %, but the candidate gets 30 % of the requests.
    let mut analysis = Analysis::at_weight(vec![error_rate(0.05)], Policy::default(), 10).planned(12);
    let skewed = (0..12).map(|i| Interval { router_weight: Some(30), ..traffic(i, pool(30, 0, 10), pool(70, 0, 10)) });
    let (index, verdict) = run(&mut analysis, skewed).expect("decided");
    assert_eq!(verdict, Verdict::Error);
    assert!(index <= 2, "{index}");
    let report = analysis.finish();
    assert_eq!(report.cause, Some(Cause::SampleRatioMismatch));
    assert_eq!(report.decided_by.as_deref(), Some("sample-ratio"));
    assert!(report.reason.contains("the weight set on the router is 10%"), "{}", report.reason);
    assert!(report.reason.contains("the candidate received 30.00% of the requests"), "{}", report.reason);
    assert!(report.reason.contains("the router itself reports 30%"), "{}", report.reason);
    let ratio = report.sample_ratio.expect("evidence");
    assert_eq!((ratio.verdict, ratio.observed), (Verdict::Error, Some(0.3)));

    // The split the weight asks for (and one a little off) passes.
    for (c, s) in [(10, 90), (12, 88), (8, 92)] {
        let mut analysis = Analysis::at_weight(vec![error_rate(0.05)], Policy::default(), 10).planned(12);
        assert_eq!(run(&mut analysis, (0..12).map(|i| traffic(i, pool(c, 0, 10), pool(s, 0, 10)))), None);
        let report = analysis.finish();
        assert_eq!(report.verdict, Verdict::Pass, "{c}/{s}: {}", report.reason);
        assert_eq!(report.sample_ratio.map(|r| r.verdict), Some(Verdict::Pass));
    }

    // Stable served, the candidate nothing: not "no traffic" but a mismatch.
    let mut analysis = Analysis::at_weight(vec![error_rate(0.05)], Policy::default(), 10);
    let starved = (0..12).map(|i| traffic(i, pool(0, 0, 10), pool(100, 0, 10)));
    assert_eq!(run(&mut analysis, starved).map(|d| d.1), Some(Verdict::Error));
    assert_eq!(analysis.finish().cause, Some(Cause::SampleRatioMismatch));

    // No split at 100 % (nor without a weight).
    let report = Analysis::at_weight(vec![error_rate(0.05)], Policy::default(), 100).finish();
    assert_eq!(report.sample_ratio, None);
}

#[test]
fn a_split_just_outside_the_band_is_found_and_one_just_inside_is_not() {
    // Weight 20 % (band 15-25 %) at 100 requests/s, 1 s intervals, a
    // minute's stage: the router moved to 30 %, a fifth past the band's
    // edge, is an error within half the stage; so is 10 %, below it.
    for (c, s) in [(30, 70), (10, 90)] {
        let mut analysis = Analysis::at_weight(vec![error_rate(0.05)], Policy::default(), 20).planned(60);
        let skewed = (0..60).map(|i| traffic(i, pool(c, 0, 10), pool(s, 0, 10)));
        let (index, verdict) = run(&mut analysis, skewed).expect("decided");
        assert!(verdict == Verdict::Error && index < 30, "{c}/{s}: interval {index}, {verdict:?}");
    }
    // 24 % and 16 %, inside the band, pass the whole stage.
    for (c, s) in [(24, 76), (16, 84)] {
        let mut analysis = Analysis::at_weight(vec![error_rate(0.05)], Policy::default(), 20).planned(60);
        assert_eq!(run(&mut analysis, (0..60).map(|i| traffic(i, pool(c, 0, 10), pool(s, 0, 10)))), None, "{c}/{s}");
        assert_eq!(analysis.finish().sample_ratio.map(|r| r.verdict), Some(Verdict::Pass), "{c}/{s}");
    }
}

#[test]
fn no_traffic_at_all_is_inconclusive_not_a_mismatch() {
    let mut analysis = Analysis::at_weight(vec![error_rate(0.05)], Policy::default(), 10);
    let idle = (0..12).map(|i| traffic(i, pool(0, 0, 10), pool(0, 0, 10)));
    assert_eq!(run(&mut analysis, idle), Some((2, Verdict::Inconclusive)));
    let report = analysis.finish();
    assert_eq!(report.cause, Some(Cause::NoTraffic));
    assert_eq!(report.checks[0].verdict, Verdict::Inconclusive);
    assert!(report.reason.starts_with("no traffic:"), "{}", report.reason);
    // With on_inconclusive = "hold" it waits, and ends as no traffic too.
    let mut check = error_rate(0.05);
    check.on_inconclusive = OnInconclusive::Hold;
    let mut analysis = Analysis::new(vec![check], Policy::default());
    assert_eq!(run(&mut analysis, (0..12).map(|i| traffic(i, pool(0, 0, 10), pool(0, 0, 10)))), None);
    let report = analysis.finish();
    assert_eq!((report.verdict, report.cause), (Verdict::Inconclusive, Some(Cause::NoTraffic)));
}

#[test]
fn rejudge_judges_as_the_analysis_did() {
    let mut analysis = Analysis::at_weight(vec![error_rate(0.01)], Policy::default(), 10).planned(120);
    run(&mut analysis, degrading(100, 2));
    let report = analysis.finish();
    assert_eq!(report.planned_intervals, Some(120));
    let again = Analysis::rejudge(vec![error_rate(0.01)], Policy::default(), &report);
    assert_eq!(again, report);
}

#[test]
fn a_latency_comparison_with_a_minimum_difference_ignores_sub_millisecond_jitter() {
    // Candidate at 0.4 ms against stable at 0.2 ms: "100 % slower", but by
    // 0.2 ms. Allowed 10 ms, it passes; 200 ms slower still fails at once.
    let sub_ms = |i: i64, us: u64, n: u64| {
        traffic(
            i,
            PoolWindow { requests: n, errors: 0, latency: Histogram::from_pairs([(us, n)]) },
            PoolWindow { requests: 4 * n, errors: 0, latency: Histogram::from_pairs([(200, 4 * n)]) },
        )
    };
    let allowing =
        |min_difference| spec("vs-latency", CheckKind::Compare(Comparison::Latency { tolerance: 0.2, min_difference }));
    let mut strict = Analysis::new(vec![allowing(None)], Policy::default());
    assert_eq!(run(&mut strict, (0..20).map(|i| sub_ms(i, 400, 30))).map(|d| d.1), Some(Verdict::Fail));
    let mut tolerant = Analysis::new(vec![allowing(Some(Duration::from_millis(10)))], Policy::default());
    assert_eq!(run(&mut tolerant, (0..20).map(|i| sub_ms(i, 400, 30))), None);
    let report = tolerant.finish();
    assert_eq!(report.verdict, Verdict::Pass, "{}", report.reason);
    assert_eq!(report.checks[0].threshold, "<= max(1.2 x stable, stable + 10ms) (Mann-Whitney)");
    let mut slow = Analysis::new(vec![allowing(Some(Duration::from_millis(10)))], Policy::default());
    assert_eq!(run(&mut slow, (0..20).map(|i| sub_ms(i, 200_200, 30))), Some((1, Verdict::Fail)));
}

#[test]
fn the_sample_ratio_counts_cloudwatch_periods_from_the_analysis_start_on() {
    // CloudWatch's look-back window starts 5 minutes before each interval;
    // the periods counted into the pools start at `counted_from`.
    let looked = |i: i64, counted_from: Option<i64>| {
        let look = LookBack {
            start: at(i - 300),
            end: at(i),
            period_seconds: 60,
            counted_from: counted_from.map(at),
            pools: true,
        };
        BTreeMap::from([("cw".to_owned(), look)])
    };
    let skewed = |i: i64, counted_from: Option<i64>| Interval {
        lookback: looked(i, counted_from),
        ..traffic(i, pool(300, 0, 10), pool(700, 0, 10))
    };
    // The first interval counts the whole window (the previous stage's
    // weight), the next ones periods that began before the analysis did:
    // not held against this weight, however skewed.
    let mut analysis = Analysis::at_weight(vec![error_rate(0.05)], Policy::default(), 10).planned(12);
    let before = [skewed(0, Some(-300)), skewed(1, Some(-1)), skewed(2, None)];
    assert_eq!(run(&mut analysis, before), None);
    assert_eq!(analysis.report().sample_ratio, None, "nothing counted");
    // Periods that began once the analysis had: 30% at weight 10% is an error.
    let (_, verdict) = run(&mut analysis, (3..12).map(|i| skewed(i, Some(i - 1)))).expect("decided");
    assert_eq!(verdict, Verdict::Error);
    let report = analysis.finish();
    assert_eq!(report.cause, Some(Cause::SampleRatioMismatch));
    assert!(report.reason.contains("the weight set on the router is 10%"), "{}", report.reason);
    // The same periods at the weight set pass.
    let mut analysis = Analysis::at_weight(vec![error_rate(0.05)], Policy::default(), 10).planned(12);
    let even = (1..12)
        .map(|i| Interval { lookback: looked(i, Some(i - 1)), ..traffic(i, pool(100, 0, 10), pool(900, 0, 10)) });
    assert_eq!(run(&mut analysis, even), None);
    assert_eq!(analysis.finish().sample_ratio.map(|r| r.verdict), Some(Verdict::Pass));
    // A second CloudWatch source beside the traffic's (alarms: no pools,
    // so no `counted_from`) has no bearing on the split: still an error.
    let beside = |i: i64| {
        let mut lookback = looked(i, Some(i - 1));
        let alarms = LookBack { start: at(i - 300), end: at(i), period_seconds: 60, counted_from: None, pools: false };
        lookback.insert("alarms".to_owned(), alarms);
        Interval { lookback, ..traffic(i, pool(300, 0, 10), pool(700, 0, 10)) }
    };
    let mut analysis = Analysis::at_weight(vec![error_rate(0.05)], Policy::default(), 10).planned(12);
    let (_, verdict) = run(&mut analysis, (1..12).map(beside)).expect("decided");
    assert_eq!(verdict, Verdict::Error);
    assert_eq!(analysis.finish().cause, Some(Cause::SampleRatioMismatch));
}

#[test]
fn a_degradation_late_in_a_stage_is_judged_with_its_data_in_the_next() {
    // Stage 1 (10 % weight, 60 intervals of 1 s) turns to 5 % errors
    // (limit 1 %) at interval 52: too late for its windows, it passes.
    let stage1: Vec<Interval> = degrading(52, 1).take(60).collect();
    let mut first = Analysis::at_weight(vec![error_rate(0.01)], Policy::default(), 10).planned(60);
    assert_eq!(run(&mut first, stage1.clone()), None);
    let first = first.finish();
    assert_eq!(first.verdict, Verdict::Pass, "{}", first.reason);
    // Stage 2 (20 %: 40 candidate requests a second, still 5 % errors).
    let stage2 = |from: i64| (from..from + 60).map(|i| traffic(i, pool(40, 2, 10), pool(160, 0, 10)));
    let detect = |carry: bool| {
        let mut analysis = Analysis::at_weight(vec![error_rate(0.01)], Policy::default(), 20).planned(60);
        if carry {
            analysis = analysis.carrying(first.intervals[30..].to_vec());
        }
        let index = match analysis.decided() {
            Some(_) => 0,
            None => run(&mut analysis, stage2(60)).expect("decided").0 + 1,
        };
        (index, analysis.finish())
    };
    let (fresh, _) = detect(false);
    let (carried, report) = detect(true);
    assert!(carried < fresh, "intervals of stage 2 before the verdict: {carried} carrying, {fresh} afresh");
    assert_eq!(report.verdict, Verdict::Fail, "{}", report.reason);
    assert_eq!((report.carried_intervals, report.planned_intervals), (30, Some(90)));
    // The data that decided began in the carried intervals.
    let start = report.checks[0].window_start.unwrap_or(report.intervals[0].start);
    assert!(start < at(60), "{start}");
    eprintln!("stage 2 intervals to the verdict: {carried} carrying, {fresh} afresh");
    // The carried intervals, at 10 % of a 20 % stage's traffic, are no
    // sample-ratio mismatch (the split is judged on the stage's own).
    assert_eq!(report.cause, None);
    // A replay judges as the analysis did.
    let replayed = Analysis::rejudge(vec![error_rate(0.01)], Policy::default(), &report);
    assert_eq!(
        (replayed.verdict, replayed.carried_intervals, replayed.planned_intervals, &replayed.checks[0].window_start),
        (report.verdict, 30, Some(90), &report.checks[0].window_start)
    );
    assert_eq!(replayed.intervals.len(), report.intervals.len());
}

#[test]
fn carried_healthy_data_keep_a_healthy_candidate_passing() {
    let tail: Vec<Interval> = degrading(1000, 0).take(30).collect();
    let mut analysis = Analysis::at_weight(vec![error_rate(0.01)], Policy::default(), 10).planned(60).carrying(tail);
    assert_eq!(analysis.decided(), None);
    assert_eq!(run(&mut analysis, degrading(1000, 0).skip(30).take(60)), None);
    let report = analysis.finish();
    assert_eq!(report.verdict, Verdict::Pass, "{}", report.reason);
    assert_eq!(report.intervals.len(), 90);
}

/// CloudWatch counts each period once and publishes one a minute: between
/// two periods, intervals shorter than the period bring the pools nothing
/// new (no pool, no error, a look-back that counted nothing). The pool
/// checks wait for the next period instead of running into
/// `inconclusive_limit`; a period counted without data, or a source error,
/// still counts against them.
#[test]
fn pool_checks_wait_between_cloudwatch_periods() {
    let looked = |i: i64, counted: Option<i64>| {
        let look = LookBack {
            start: at(i - 300),
            end: at(i - 60),
            period_seconds: 60,
            counted_from: counted.map(at),
            pools: true,
        };
        BTreeMap::from([("cw".to_owned(), look)])
    };
    let counted =
        |i: i64| Interval { lookback: looked(i, Some(i - 300)), ..traffic(i, pool(600, 0, 10), pool(5400, 0, 10)) };
    let nothing_new = |i: i64| Interval { lookback: looked(i, None), ..interval(i) };
    let checks = || vec![error_rate(0.05), spec("vs", CheckKind::Compare(Comparison::ErrorRate { tolerance: 0.01 }))];
    // A period, then eleven intervals of the same minute, then the next.
    let mut analysis = Analysis::new(checks(), Policy::default()).planned(13);
    let intervals = std::iter::once(counted(0)).chain((1..12).map(nothing_new)).chain(std::iter::once(counted(12)));
    assert_eq!(run(&mut analysis, intervals), None, "no check decides on intervals without a new period");
    let report = analysis.finish();
    assert_eq!(report.verdict, Verdict::Pass, "{}", report.reason);
    assert_eq!(report.checks[0].samples, 1200, "{:?}", report.checks[0]);

    // The same minute counted without data is no data, as before.
    let mut analysis = Analysis::new(checks(), Policy::default());
    let empty = |i: i64| Interval { lookback: looked(i, Some(i - 60)), ..interval(i) };
    let intervals = std::iter::once(counted(0)).chain((1..4).map(empty));
    assert_eq!(run(&mut analysis, intervals), Some((3, Verdict::Error)), "three intervals without data");
    // And a source that failed is an error, look-back or not.
    let mut analysis = Analysis::new(checks(), Policy::default());
    let failed = |i: i64| {
        let mut failed = nothing_new(i);
        failed.source_errors.insert("cw".into(), "throttled".into());
        failed
    };
    let intervals = std::iter::once(counted(0)).chain((1..4).map(failed));
    assert_eq!(run(&mut analysis, intervals), Some((3, Verdict::Error)));

    // Another source's error (the CodeDeploy alarms) between two periods
    // does not stop the pool checks waiting.
    let mut analysis = Analysis::new(checks(), Policy::default()).planned(13);
    let alarms_failed = |i: i64| {
        let mut interval = nothing_new(i);
        interval.source_errors.insert("alarms".into(), "throttled".into());
        interval
    };
    let intervals = std::iter::once(counted(0)).chain((1..12).map(alarms_failed)).chain(std::iter::once(counted(12)));
    assert_eq!(run(&mut analysis, intervals), None, "an alarms source's error is not the pools'");
    assert_eq!(analysis.finish().verdict, Verdict::Pass);

    // A look-back of a source that does not count the pools (a CloudWatch
    // metric of its own) is no wait: pool checks without any pool source
    // have no data, and say so soon.
    let mut analysis = Analysis::new(checks(), Policy::default());
    let other = |i: i64| {
        let mut look = looked(i, None);
        look.values_mut().for_each(|l| l.pools = false);
        Interval { lookback: look, ..interval(i) }
    };
    assert_eq!(run(&mut analysis, (0..4).map(other)).map(|d| d.1), Some(Verdict::Error), "no pool source");
}
