//! Simulated canaries for `scripts/bench-analysis.sh`: the issue's
//! scenarios at 100 requests/s through the default plan (20, 40, 70, 100 %
//! for 1 min each, 1 s intervals, each stage carrying the previous one's
//! later half), some also as sluice judged them before those defaults
//! (10, 25, 50, 100 %, 5 s, stages afresh), judged by sluice (built-in checks, and
//! the README's checks) beside a Flagger-like policy; and the false-rollback
//! rate of healthy canaries. Pure and seeded: `cargo run --release -p
//! sluice-analysis --example canaries [-- CANARIES]`.
//!
//! `SCENARIO=text` runs only the scenarios whose label contains `text`
//! (and skips the healthy canaries and the requests table), printing
//! beside each the distribution of the times from the onset to 100 %
//! stable (how many canaries at each).

mod model;

use model::{Judge, Rng, Run, Scenario, Service, builtin_checks, many, quantile, readme_checks};
use sluice_analysis::Verdict;
use std::time::Duration;

fn main() {
    let canaries: usize = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(1000);
    let rps = 100.0;
    let only = std::env::var("SCENARIO").ok().filter(|s| !s.is_empty());
    let judges = [
        ("sluice built-in", Judge::Sluice(builtin_checks())),
        ("sluice README checks", Judge::Sluice(readme_checks())),
        ("Flagger-like 60s x 1", Judge::flagger()),
    ];
    let stage = Duration::from_secs(60);
    let late = stage * 4 / 5;
    let scenarios: Vec<(&str, Scenario)> = vec![
        ("50% errors from the start", Scenario::turning(rps, Duration::ZERO, Service::with_errors(0.5))),
        ("5% errors from the start", Scenario::turning(rps, Duration::ZERO, Service::with_errors(0.05))),
        (
            "5% errors from the start, stable 0.2%",
            Scenario {
                stable: Service::with_errors(0.002),
                ..Scenario::turning(rps, Duration::ZERO, Service::with_errors(0.05))
            },
        ),
        (
            "5% errors from the start, before",
            Scenario::turning(rps, Duration::ZERO, Service::with_errors(0.05)).before(),
        ),
        (
            "5% errors from the start, 5 s intervals",
            Scenario {
                interval: Duration::from_secs(5),
                ..Scenario::turning(rps, Duration::ZERO, Service::with_errors(0.05))
            },
        ),
        (
            "5% errors from the start, at 400 req/s",
            Scenario::turning(4.0 * rps, Duration::ZERO, Service::with_errors(0.05)),
        ),
        ("5% errors from 80% of stage 1 (48 s)", Scenario::turning(rps, late, Service::with_errors(0.05))),
        ("5% errors from 80% of stage 1, before", Scenario::turning(rps, late, Service::with_errors(0.05)).before()),
        (
            "5% errors from 80% of stage 1, afresh",
            Scenario { carry: false, ..Scenario::turning(rps, late, Service::with_errors(0.05)) },
        ),
        ("5% errors from 80% of stage 2 (108 s)", Scenario::turning(rps, stage + late, Service::with_errors(0.05))),
        ("+200 ms from the start", Scenario::turning(rps, Duration::ZERO, Service::added(200.0))),
        ("+200 ms from 80% of stage 1 (48 s)", Scenario::turning(rps, late, Service::added(200.0))),
        ("+200 ms from the start, before", Scenario::turning(rps, Duration::ZERO, Service::added(200.0)).before()),
        (
            "50% errors from the start, before",
            Scenario::turning(rps, Duration::ZERO, Service::with_errors(0.5)).before(),
        ),
        ("no traffic from 80% of stage 1", Scenario { idle: true, ..Scenario::turning(rps, late, Service::HEALTHY) }),
        (
            "sample-ratio mismatch (40% at weight 20%)",
            Scenario {
                share_from_onset: Some(0.4),
                ..Scenario::turning(rps, Duration::from_secs(10), Service::HEALTHY)
            },
        ),
    ];
    println!(
        "simulated canaries at {rps} requests/s (unless a row says otherwise), default plan, 1 s intervals; \
         \"before\": from 10 % at 5 s, stages afresh; {canaries} per cell\n"
    );
    println!("{:<44}{:<22}{:>28}{:>22}{:>18}", "scenario", "judge", "verdicts", "onset -> stable", "bad requests");
    for (label, scenario) in &scenarios {
        if only.as_deref().is_some_and(|only| !label.contains(only)) {
            continue;
        }
        for (k, (name, judge)) in judges.iter().enumerate() {
            let runs = many(0xC0FFEE + k as u64, canaries, scenario, judge);
            println!("{:<44}{:<22}{:>28}{:>22}{:>18}", label, name, verdicts(&runs), times(&runs), bad(&runs));
            if only.is_some() {
                println!("    onset -> stable (canaries): {}", distribution(&runs));
            }
        }
    }
    if only.is_some() {
        return;
    }
    println!("\nhealthy canaries (false rollbacks, {canaries} each)");
    let healthy: Vec<(&str, Scenario, Scenario)> = vec![
        // (label, for the built-in checks, for the README's)
        (
            "half the limits (2.5% errors / 0.5%, stable 2% / 0%)",
            Scenario {
                candidate: Service::with_errors(0.025),
                stable: Service::with_errors(0.02),
                ..Scenario::healthy(rps)
            },
            Scenario { candidate: Service::with_errors(0.005), ..Scenario::healthy(rps) },
        ),
        (
            "at the limits (5% errors, stable 4%, 1.2x slower / 1% errors, stable 1%)",
            Scenario {
                candidate: Service { errors: 0.05, slower: 1.2, added_ms: 0.0 },
                stable: Service::with_errors(0.04),
                ..Scenario::healthy(rps)
            },
            Scenario {
                candidate: Service::with_errors(0.01),
                stable: Service::with_errors(0.01),
                ..Scenario::healthy(rps)
            },
        ),
        (
            "at the comparison's limit, clean stable (1% errors, stable 0%)",
            Scenario { candidate: Service::with_errors(0.01), ..Scenario::healthy(rps) },
            Scenario { candidate: Service::with_errors(0.01), ..Scenario::healthy(rps) },
        ),
    ];
    for (label, for_builtin, for_readme) in &healthy {
        for (k, (name, judge)) in judges.iter().enumerate() {
            let scenario = if k == 0 { for_builtin } else { for_readme };
            let runs = many(0xBEEF + k as u64, canaries, scenario, judge);
            let rolled = runs.iter().filter(|r| !r.promoted()).count();
            println!("{:<76}{:<22}{:>8} ({:.1}%)", label, name, rolled, 100.0 * rolled as f64 / canaries as f64);
        }
    }
    let _ = Rng(0);
    requests_needed();
}

/// Candidate requests each comparison test needs to reject "error rate at
/// most stable's + 1 point" on the typical path of a candidate at 5 %
/// errors against a stable without errors at 9 times its traffic (10 % of
/// the requests): the errors are 5 % of the requests, rounded. At the
/// cumulative test's share of alpha (0.01 over the three built-in checks,
/// half of it) and at one window's (the other half over 12 starts in a
/// 60 s stage); beside the information-theoretic floor: Wald's SPRT with
/// both rates known, `ln(1/alpha) / D(5 % || 1 %)`.
fn requests_needed() {
    use sluice_analysis::stats::{sequential_rate_excess, sequential_two_proportion};
    let (p, delta): (f64, f64) = (0.05, 0.01);
    let check_alpha = 0.01 / 3.0;
    let kl = p * (p / delta).ln() + (1.0 - p) * ((1.0 - p) / (1.0 - delta)).ln();
    println!("\nrequests to reject 'errors <= stable + 1 pt' for 5 % errors vs a stable without errors (typical path)");
    println!("{:<34}{:>16}{:>16}{:>16}", "share of alpha", "normal mSPRT", "excess LR", "floor (SPRT)");
    for (label, alpha) in [
        ("cumulative (alpha/3/2)", check_alpha / 2.0),
        ("one window of 12 (alpha/3/2/12)", check_alpha / 24.0),
        ("whole alpha (one check, no windows)", 0.01),
    ] {
        let first = |test: &dyn Fn(u64, u64) -> bool| (1..5_000u64).find(|&n| test(((p * n as f64).round()) as u64, n));
        let old = first(&|x, n| sequential_two_proportion(x, n, 0, 9 * n, delta).is_some_and(|t| t.rejects(alpha)));
        let new = first(&|x, n| sequential_rate_excess(x, n, 0, 9 * n, delta).is_some_and(|t| t.rejects(alpha)));
        let show = |n: Option<u64>| n.map_or("> 5000".into(), |n| n.to_string());
        println!("{:<34}{:>16}{:>16}{:>16.0}", label, show(old), show(new), -alpha.ln() / kl);
    }
}

fn verdicts(runs: &[Run]) -> String {
    let count = |v: Verdict| runs.iter().filter(|r| r.verdict == v && !r.promoted()).count();
    let promoted = runs.iter().filter(|r| r.promoted()).count();
    let mut parts = Vec::new();
    for (v, name) in [(Verdict::Fail, "fail"), (Verdict::Inconclusive, "inconcl."), (Verdict::Error, "error")] {
        let n = count(v);
        if n > 0 {
            parts.push(format!("{name} {n}"));
        }
    }
    if promoted > 0 {
        parts.push(format!("PROMOTED {promoted}"));
    }
    parts.join(", ")
}

fn times(runs: &[Run]) -> String {
    let t: Vec<Duration> = runs.iter().filter_map(|r| r.time_to_stable).collect();
    match (quantile(t.clone(), 0.5), quantile(t, 0.95)) {
        (Some(m), Some(p)) => format!("{:.0} s (p95 {:.0} s)", m.as_secs_f64(), p.as_secs_f64()),
        _ => "never".into(),
    }
}

/// How many runs reached 100 % stable at each time from the onset (whole
/// seconds; the simulated times fall on interval ends): "22 s: 412, ...".
fn distribution(runs: &[Run]) -> String {
    let mut counts = std::collections::BTreeMap::new();
    for t in runs.iter().filter_map(|r| r.time_to_stable) {
        *counts.entry(t.as_secs()).or_insert(0usize) += 1;
    }
    let parts: Vec<String> = counts.iter().map(|(t, n)| format!("{t} s: {n}")).collect();
    parts.join(", ")
}

fn bad(runs: &[Run]) -> String {
    let mut b: Vec<u64> = runs.iter().map(|r| r.bad_requests).collect();
    b.sort_unstable();
    format!("{} (p95 {})", b[b.len() / 2], b[b.len() * 95 / 100])
}
