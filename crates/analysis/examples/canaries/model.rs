//! A simulated canary: a stable and a candidate service behind a router
//! that splits requests at random by weight, through a canary plan, judged
//! interval by interval by sluice's analysis or by a Flagger-like policy.
//! Seeded and pure: the same seed gives the same figures on any machine.
//!
//! Shared by `examples/canaries` (the figures `scripts/bench-analysis.sh`
//! prints) and the tests in `tests/it/canaries.rs` (the targets asserted),
//! so both measure the same model.

#![allow(dead_code)] // each user takes what it needs

use jiff::Timestamp;
use sluice_analysis::{
    Analysis, Cause, CheckKind, CheckSpec, Comparison, Histogram, Interval, OnInconclusive, Outcome, Policy,
    PoolWindow, Verdict,
};
use std::time::Duration;

/// splitmix64: small, seeded, reproducible.
pub struct Rng(pub u64);

impl Rng {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in (0, 1).
    pub fn uniform(&mut self) -> f64 {
        ((self.next_u64() >> 11) as f64 + 0.5) / (1u64 << 53) as f64
    }

    /// Binomial(n, p) by skipping geometric gaps between events.
    pub fn binomial(&mut self, n: u64, p: f64) -> u64 {
        if p <= 0.0 {
            return 0;
        }
        if p >= 1.0 {
            return n;
        }
        let ln_q = (-p).ln_1p();
        let (mut position, mut events) = (0u64, 0u64);
        loop {
            let gap = (self.uniform().ln() / ln_q).floor();
            position = position.saturating_add(if gap.is_finite() { gap as u64 } else { u64::MAX }).saturating_add(1);
            if position > n {
                return events;
            }
            events += 1;
        }
    }
}

/// How a service answers.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Service {
    /// Share of requests answered with a 5xx.
    pub errors: f64,
    /// Latency multiplier of the base distribution (1.2 = 20 % slower).
    pub slower: f64,
    /// Latency added to every request, in milliseconds.
    pub added_ms: f64,
}

impl Service {
    /// The stable release: no errors, the demo app's latency (p99 under
    /// 1 ms: 0.3 ms plus an exponential tail of mean 0.1 ms).
    pub const HEALTHY: Service = Service { errors: 0.0, slower: 1.0, added_ms: 0.0 };

    pub fn with_errors(errors: f64) -> Service {
        Service { errors, ..Service::HEALTHY }
    }

    pub fn added(ms: f64) -> Service {
        Service { added_ms: ms, ..Service::HEALTHY }
    }

    /// One request's latency in microseconds.
    fn latency_us(&self, rng: &mut Rng) -> u64 {
        let base = 300.0 + -rng.uniform().ln() * 100.0;
        (base * self.slower + self.added_ms * 1000.0).round() as u64
    }

    /// `n` requests: errors and a latency histogram (10 µs buckets, about
    /// the router's resolution at these latencies).
    fn serve(&self, rng: &mut Rng, n: u64, latency: bool) -> PoolWindow {
        let latency = if latency {
            let mut values: Vec<u64> = (0..n).map(|_| self.latency_us(rng) / 10 * 10).collect();
            values.sort_unstable();
            let mut buckets: Vec<(u64, u64)> = Vec::new();
            for v in values {
                match buckets.last_mut() {
                    Some((last, count)) if *last == v => *count += 1,
                    _ => buckets.push((v, 1)),
                }
            }
            Histogram { buckets }
        } else {
            Histogram::default()
        };
        PoolWindow { requests: n, errors: rng.binomial(n, self.errors), latency }
    }
}

/// A canary to simulate.
#[derive(Clone, Debug)]
pub struct Scenario {
    /// Requests per second through the router.
    pub rps: f64,
    /// The analysis interval.
    pub interval: Duration,
    /// The plan: candidate weight and duration per stage.
    pub stages: Vec<(u8, Duration)>,
    pub stable: Service,
    /// The candidate before the onset.
    pub candidate: Service,
    /// From this time (since the canary started) the candidate is `bad`.
    pub onset: Option<(Duration, Service)>,
    /// The candidate's real share of requests from the onset on, whatever
    /// the weight (a sample-ratio mismatch); `Some(0.0)` with
    /// `idle = true` is no traffic at all.
    pub share_from_onset: Option<f64>,
    /// No requests at all from the onset on.
    pub idle: bool,
    /// Each stage after the first starts from the previous stage's later
    /// half (`Analysis::carrying`, as `shift-traffic` does).
    pub carry: bool,
}

impl Scenario {
    /// The default plan (`Strategy::default_canary`: 20, 40, 70, 100 % for
    /// 1 min each) at the embedded router's default 1 s interval, both
    /// releases healthy.
    pub fn healthy(rps: f64) -> Scenario {
        let minute = Duration::from_secs(60);
        Scenario {
            rps,
            interval: Duration::from_secs(1),
            stages: vec![(20, minute), (40, minute), (70, minute), (100, minute)],
            stable: Service::HEALTHY,
            candidate: Service::HEALTHY,
            onset: None,
            share_from_onset: None,
            idle: false,
            carry: true,
        }
    }

    /// The same as sluice judged it before the defaults changed: the plan
    /// from 10 % (10, 25, 50, 100), 5 s intervals, each stage afresh.
    pub fn before(self) -> Scenario {
        let minute = Duration::from_secs(60);
        Scenario {
            interval: Duration::from_secs(5),
            stages: vec![(10, minute), (25, minute), (50, minute), (100, minute)],
            carry: false,
            ..self
        }
    }

    /// The same with the candidate turning `bad` at `onset`.
    pub fn turning(rps: f64, onset: Duration, bad: Service) -> Scenario {
        Scenario { onset: Some((onset, bad)), ..Scenario::healthy(rps) }
    }
}

/// How a policy judged a canary.
#[derive(Clone, Debug, PartialEq)]
pub struct Run {
    /// The verdict of the stage that ended the canary (`Pass`: promoted).
    pub verdict: Verdict,
    pub cause: Option<Cause>,
    /// The stage rolled back, if one was.
    pub stage: Option<usize>,
    /// From the onset (or the start) to 100 % stable, when rolled back.
    pub time_to_stable: Option<Duration>,
    /// Candidate requests after the onset that failed or were slowed by
    /// the fault, until traffic was back on stable (or the canary ended).
    pub bad_requests: u64,
}

impl Run {
    pub fn promoted(&self) -> bool {
        self.stage.is_none()
    }
}

/// Who judges.
#[derive(Clone, Debug)]
pub enum Judge {
    /// sluice's analysis with these checks (alpha 0.01).
    Sluice(Vec<CheckSpec>),
    /// Flagger-like: once per `window`, the window's candidate success rate
    /// at least 99 % and p99 at most `p99`, as point estimates; one failed
    /// window rolls back, a window without data counts as failed.
    FlaggerLike { window: Duration, p99: Duration },
}

impl Judge {
    pub fn flagger() -> Judge {
        Judge::FlaggerLike { window: Duration::from_secs(60), p99: Duration::from_millis(500) }
    }

    fn needs_latency(&self) -> bool {
        match self {
            Judge::Sluice(checks) => checks
                .iter()
                .any(|c| matches!(c.kind, CheckKind::Latency { .. } | CheckKind::Compare(Comparison::Latency { .. }))),
            Judge::FlaggerLike { .. } => true,
        }
    }
}

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

/// What `sluice-cli`'s `BUILTIN_MIN_SLOWDOWN` is.
pub const BUILTIN_MIN_SLOWDOWN: Duration = Duration::from_millis(10);

/// sluice's built-in checks (what `sluice-cli`'s `builtin_checks` gives an
/// environment on the embedded router without checks).
pub fn builtin_checks() -> Vec<CheckSpec> {
    vec![
        check("builtin-error-rate", CheckKind::ErrorRate { max: 0.05 }),
        check("builtin-error-rate-vs-stable", CheckKind::Compare(Comparison::ErrorRate { tolerance: 0.01 })),
        check(
            "builtin-latency-vs-stable",
            CheckKind::Compare(Comparison::Latency { tolerance: 0.2, min_difference: Some(BUILTIN_MIN_SLOWDOWN) }),
        ),
    ]
}

/// The README's example checks: error rate at most 1 %, p99 at most
/// 250 ms, error rate against stable within one point.
pub fn readme_checks() -> Vec<CheckSpec> {
    vec![
        check("error-rate", CheckKind::ErrorRate { max: 0.01 }),
        check("latency-p99", CheckKind::Latency { percentile: 99.0, max: Duration::from_millis(250) }),
        check("errors-vs-stable", CheckKind::Compare(Comparison::ErrorRate { tolerance: 0.01 })),
    ]
}

/// One canary through the plan.
pub fn run(rng: &mut Rng, scenario: &Scenario, judge: &Judge) -> Run {
    let t0 = Timestamp::from_second(1_700_000_000).expect("valid");
    let latency = judge.needs_latency();
    let onset = scenario.onset.map_or(Duration::ZERO, |(at, _)| at);
    let mut bad_requests = 0u64;
    let mut elapsed = Duration::ZERO;
    let mut previous: Option<sluice_analysis::AnalysisReport> = None;
    for (stage, &(weight, length)) in scenario.stages.iter().enumerate() {
        let step = match judge {
            Judge::Sluice(_) => scenario.interval,
            Judge::FlaggerLike { window, .. } => *window,
        };
        let steps = (length.as_secs_f64() / step.as_secs_f64()).ceil().max(1.0) as u32;
        let mut analysis = match judge {
            Judge::Sluice(checks) => {
                // As `shift-traffic` carries them (`analyse::carried_from`).
                let tail = previous.as_ref().filter(|_| scenario.carry).map_or_else(Vec::new, |p| p.later_half());
                Some(Analysis::at_weight(checks.clone(), Policy::default(), weight).planned(steps).carrying(tail))
            }
            Judge::FlaggerLike { .. } => None,
        };
        if let Some(verdict) = analysis.as_ref().and_then(Analysis::decided) {
            // The carried intervals decided as the stage began.
            let report = analysis.take().map(Analysis::finish);
            return Run {
                verdict,
                cause: report.and_then(|r| r.cause),
                stage: Some(stage),
                time_to_stable: Some(elapsed.saturating_sub(onset)),
                bad_requests,
            };
        }
        for i in 0..steps {
            let (from, to) = (elapsed + step * i, elapsed + step * (i + 1));
            // The part of the interval after the onset.
            let after = if scenario.onset.is_none() || to <= onset {
                0.0
            } else {
                (to - from.max(onset)).as_secs_f64() / step.as_secs_f64()
            };
            let n = (scenario.rps * step.as_secs_f64()).round() as u64;
            let share = |late: bool| match scenario.share_from_onset {
                Some(s) if late => s,
                _ => f64::from(weight) / 100.0,
            };
            let n_before = (n as f64 * (1.0 - after)).round() as u64;
            let n_after = if scenario.idle { 0 } else { n - n_before };
            let c_before = rng.binomial(n_before, share(false));
            let c_after = rng.binomial(n_after, share(true));
            let bad = scenario.onset.map_or(scenario.candidate, |(_, bad)| bad);
            let mut candidate = scenario.candidate.serve(rng, c_before, latency);
            let late = bad.serve(rng, c_after, latency);
            bad_requests += if bad.added_ms > 0.0 || bad.slower > 1.0 { late.requests } else { late.errors };
            candidate.requests += late.requests;
            candidate.errors += late.errors;
            candidate.latency.merge(&late.latency);
            let stable = scenario.stable.serve(rng, n_before - c_before + n_after - c_after, latency);
            let start = t0 + from;
            let decided = match (judge, &mut analysis) {
                (Judge::Sluice(_), Some(analysis)) => {
                    let interval = Interval {
                        start,
                        end: t0 + to,
                        candidate: Some(candidate),
                        stable: Some(stable),
                        probes: Vec::new(),
                        values: Default::default(),
                        source_errors: Default::default(),
                        query_errors: Default::default(),
                        lookback: Default::default(),
                        router_weight: None,
                    };
                    matches!(analysis.observe(interval), Outcome::Decided(_))
                }
                (Judge::FlaggerLike { p99, .. }, _) => !flagger_passes(&candidate, *p99),
                _ => false,
            };
            if decided {
                // An analysis decides only what is not a pass.
                let (verdict, cause) = match analysis.take().map(Analysis::finish) {
                    Some(report) => (report.verdict, report.cause),
                    None => (Verdict::Fail, None),
                };
                return Run {
                    verdict,
                    cause,
                    stage: Some(stage),
                    time_to_stable: Some((t0 + to).duration_since(t0 + onset).unsigned_abs()),
                    bad_requests,
                };
            }
        }
        if let Some(analysis) = analysis {
            // shift-traffic rolls back any stage that does not pass.
            let report = analysis.finish();
            if report.verdict != Verdict::Pass {
                let end = elapsed + step * steps;
                return Run {
                    verdict: report.verdict,
                    cause: report.cause,
                    stage: Some(stage),
                    time_to_stable: Some(end.saturating_sub(onset)),
                    bad_requests,
                };
            }
            previous = Some(report);
        }
        elapsed += step * steps;
    }
    Run { verdict: Verdict::Pass, cause: None, stage: None, time_to_stable: None, bad_requests }
}

/// The Flagger-like judgment of one window: point estimates, no statistics.
fn flagger_passes(window: &PoolWindow, p99: Duration) -> bool {
    if window.requests == 0 {
        return false; // Flagger: "no values found" is a failed check
    }
    let success = 1.0 - window.errors as f64 / window.requests as f64;
    let limit_us = u64::try_from(p99.as_micros()).unwrap_or(u64::MAX);
    success >= 0.99 && window.latency.quantile(0.99).is_none_or(|v| v <= limit_us)
}

/// Runs `n` canaries; the runs in order.
pub fn many(seed: u64, n: usize, scenario: &Scenario, judge: &Judge) -> Vec<Run> {
    let mut rng = Rng(seed);
    (0..n).map(|_| run(&mut rng, scenario, judge)).collect()
}

/// The `q` quantile (0..=1) of some durations; `None` when empty.
pub fn quantile(mut values: Vec<Duration>, q: f64) -> Option<Duration> {
    values.sort_unstable();
    let i = ((values.len() as f64 - 1.0) * q).round() as usize;
    values.get(i).copied()
}
