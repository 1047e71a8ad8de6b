//! The targets on simulated canaries at 100 requests/s through the
//! default plan (the model of `examples/canaries`, which
//! `scripts/bench-analysis.sh` prints): healthy canaries at the limits of
//! the checks are rolled back at most 1 % of the time (1,000 each), a
//! candidate failing half its requests is never promoted by any
//! configuration, late degradations are caught as fast as early ones, and
//! +200 ms is caught by the built-in checks. Seeded: the counts are the same
//! on every run.

#[path = "../../examples/canaries/model.rs"]
mod model;

use model::{Judge, Scenario, Service, builtin_checks, many, quantile, readme_checks};
use sluice_analysis::{Cause, Verdict};
use std::time::Duration;

const RPS: f64 = 100.0;

fn rolled_back(runs: &[model::Run]) -> usize {
    runs.iter().filter(|r| !r.promoted()).count()
}

#[test]
fn healthy_canaries_at_the_limits_are_rolled_back_at_most_one_percent_of_the_time() {
    // Built-in checks: candidate at 5 % errors (the threshold), stable at
    // 4 % (one point below: the comparison's limit), 20 % slower.
    let builtin = Scenario {
        candidate: Service { errors: 0.05, slower: 1.2, added_ms: 0.0 },
        stable: Service::with_errors(0.04),
        ..Scenario::healthy(RPS)
    };
    let runs = many(11, 1000, &builtin, &Judge::Sluice(builtin_checks()));
    let fails = rolled_back(&runs);
    eprintln!("built-in checks at their limits: {fails} rollbacks of 1000 healthy canaries");
    assert!(fails <= 10, "{fails} of 1000");
    // The README's checks: 1 % errors (the threshold), as stable.
    let readme = Scenario {
        candidate: Service::with_errors(0.01),
        stable: Service::with_errors(0.01),
        ..Scenario::healthy(RPS)
    };
    let runs = many(12, 1000, &readme, &Judge::Sluice(readme_checks()));
    let fails = rolled_back(&runs);
    eprintln!("README checks at their limits: {fails} rollbacks of 1000 healthy canaries");
    assert!(fails <= 10, "{fails} of 1000");
    // The comparison's limit where stable has no errors at all (1 % errors
    // against stable + 1 point), where a normal approximation is weakest.
    let clean = Scenario { candidate: Service::with_errors(0.01), ..Scenario::healthy(RPS) };
    let runs = many(18, 1000, &clean, &Judge::Sluice(builtin_checks()));
    let fails = rolled_back(&runs);
    eprintln!("built-in checks, 1% errors against a clean stable: {fails} rollbacks of 1000 healthy canaries");
    assert!(fails <= 10, "{fails} of 1000");
}

#[test]
fn the_builtin_checks_catch_five_percent_errors_against_a_clean_stable_within_15_s() {
    // 5 % errors at the default plan's 20 candidate requests/s: the
    // comparison with stable (+1 point) decides; its exact likelihood-ratio
    // test needs about 210 requests on the typical path. From 80 % of the
    // first stage the next stage goes on from the onset's data (carried).
    let judge = Judge::Sluice(builtin_checks());
    for (onset, most) in [(Duration::ZERO, 15), (Duration::from_secs(48), 15), (Duration::from_secs(108), 15)] {
        let median = median_detection(&Scenario::turning(RPS, onset, Service::with_errors(0.05)), &judge);
        eprintln!("5% errors from {onset:?}: median {median:?} to 100% stable");
        assert!(median <= Duration::from_secs(most), "from {onset:?}: {median:?}");
    }
}

#[test]
fn no_configuration_promotes_a_candidate_failing_half_its_requests() {
    let bad = Scenario::turning(RPS, Duration::ZERO, Service::with_errors(0.5));
    for (name, checks) in [("built-in", builtin_checks()), ("README", readme_checks())] {
        let runs = many(13, 200, &bad, &Judge::Sluice(checks));
        assert_eq!(rolled_back(&runs), runs.len(), "{name}: a candidate failing 50% was promoted");
        let worst = runs.iter().filter_map(|r| r.time_to_stable).max().unwrap_or(Duration::MAX);
        assert!(worst <= Duration::from_secs(15), "{name}: {worst:?}");
    }
}

/// Median time from the onset to 100 % stable over 200 canaries.
fn median_detection(scenario: &Scenario, judge: &Judge) -> Duration {
    let runs = many(14, 200, scenario, judge);
    assert_eq!(rolled_back(&runs), runs.len(), "{scenario:?}: promoted");
    quantile(runs.iter().filter_map(|r| r.time_to_stable).collect(), 0.5).expect("times")
}

#[test]
fn a_late_degradation_is_caught_as_fast_as_an_early_one() {
    // 10 % errors (README checks: limit 1 %) from the start of stage 2, or
    // from 80 % of it: the same time from the onset (within an interval).
    let stage = Duration::from_secs(60);
    let judge = Judge::Sluice(readme_checks());
    let early = median_detection(&Scenario::turning(RPS, stage, Service::with_errors(0.1)), &judge);
    let late = median_detection(&Scenario::turning(RPS, stage + stage * 4 / 5, Service::with_errors(0.1)), &judge);
    eprintln!("10% errors from the start of stage 2: {early:?}; from 80% of it: {late:?} (medians)");
    assert!(late <= early + Duration::from_secs(5), "early {early:?}, late {late:?}");
}

#[test]
fn the_builtin_checks_catch_200_ms_more_within_15_s_at_any_point_of_a_stage() {
    let judge = Judge::Sluice(builtin_checks());
    for onset in [Duration::ZERO, Duration::from_secs(48), Duration::from_secs(108)] {
        let runs = many(15, 200, &Scenario::turning(RPS, onset, Service::added(200.0)), &judge);
        assert_eq!(rolled_back(&runs), runs.len(), "+200 ms from {onset:?} promoted");
        let p95 = quantile(runs.iter().filter_map(|r| r.time_to_stable).collect(), 0.95).expect("times");
        eprintln!("+200 ms from {onset:?}: 95% rolled back within {p95:?}");
        assert!(p95 <= Duration::from_secs(15), "+200 ms from {onset:?}: p95 {p95:?}");
    }
}

#[test]
fn no_traffic_is_inconclusive_and_a_skewed_split_an_error() {
    let judge = Judge::Sluice(builtin_checks());
    let idle = Scenario { idle: true, ..Scenario::turning(RPS, Duration::from_secs(48), Service::HEALTHY) };
    for run in many(16, 50, &idle, &judge) {
        assert_eq!((run.verdict, run.cause), (Verdict::Inconclusive, Some(Cause::NoTraffic)));
    }
    let skewed =
        Scenario { share_from_onset: Some(0.4), ..Scenario::turning(RPS, Duration::from_secs(10), Service::HEALTHY) };
    for run in many(17, 50, &skewed, &judge) {
        assert_eq!((run.verdict, run.cause), (Verdict::Error, Some(Cause::SampleRatioMismatch)));
        assert!(run.time_to_stable.is_some_and(|t| t <= Duration::from_secs(15)), "{run:?}");
    }
}
