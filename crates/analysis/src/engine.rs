//! The analysis state machine: intervals in, a verdict and its evidence out.
//!
//! An [`Analysis`] is fed one [`Interval`] at a time by `verify-health` (or by
//! `--replay` from a record) and answers [`Outcome::Continue`] or
//! [`Outcome::Decided`]. [`Analysis::finish`] turns what it saw into an
//! [`AnalysisReport`]. It never performs I/O, never reads the clock, and
//! never passes a check for lack of data.
//!
//! # What each check judges
//!
//! All data checks judge the data *accumulated since the analysis started*.
//!
//! | kind | judged on | fails when | samples |
//! |---|---|---|---|
//! | `error_rate` | candidate errors / requests | a sequential test shows the rate is above `max` | candidate requests |
//! | `latency` | candidate histogram | a sequential test shows more than `1 - percentile/100` of requests are slower than `max` | candidate latencies |
//! | `compare` `error_rate` | candidate vs stable rates | a sequential test shows `p_cand - p_stable > tolerance` | candidate requests (stable needs as many) |
//! | `compare` `latency` | candidate vs stable histograms | a sequential Mann-Whitney test shows candidate latencies divided by `1 + tolerance` are still larger than stable's | candidate latencies (stable needs as many) |
//! | `probe` | the interval's probes | any probe of the interval failed | probes |
//! | `query` | `values[check.name]` | the value is outside `min`/`max` | query answers |
//!
//! The latency threshold is the same test as the error rate: "p99 ≤ 250 ms"
//! holds exactly when at most 1 % of requests take longer than 250 ms, so the
//! "bad events" are requests slower than `max` and the limit is
//! `1 - percentile/100`.
//!
//! # Statistics and the false-fail rate
//!
//! The four statistical checks use sequential tests (see [`crate::stats`])
//! that keep their false-fail rate at most their alpha however often they
//! look. The policy's `alpha` is the false-fail rate of the *whole analysis*:
//! it is split equally over the statistical checks (Bonferroni), so with `m`
//! such checks each rejects at `alpha / m`. Probe and query checks are
//! deterministic and not part of that budget (a failed probe did fail; use
//! `failure_limit` against flaky ones).
//!
//! * Threshold `error_rate` and `latency`: a mixture SPRT of the Bernoulli
//!   rate of bad events, H0 `p <= p0` against `p = m·p0` for
//!   `m ∈ {1.5, 2, 3, 5, 10}` with equal weights (exact; see
//!   [`stats::BernoulliMixture`]).
//! * Comparisons: a one-sided normal-mixture SPRT on the difference of error
//!   rates (τ = 3 percentage points), and on the Mann-Whitney effect
//!   `P(candidate/(1+tolerance) slower than stable) - 1/2` (τ = 0.1). These
//!   rest on normal approximations and are trusted only from `min_samples`
//!   in each pool.
//!
//! The tests assume requests are independent; bursts of correlated errors
//! make them less conservative than stated.
//!
//! # States and limits
//!
//! After every interval each check takes one step:
//!
//! * **pass**: enough samples (`min_samples` since the start) and the test
//!   does not reject (the probe/query interval is ok);
//! * **fail**: enough samples and the test rejects (any failed probe, a
//!   query value out of bounds; these need no `min_samples` to fail);
//! * **accumulating**: new data, but fewer than `min_samples` so far;
//! * **no data**: nothing new for this check;
//! * **error**: the check's data are missing because a metric source failed,
//!   or the candidate (and, for comparisons, stable) pool is absent, or (a
//!   query check) the source answered its query with something that cannot
//!   be judged (`Interval::query_errors`: a refused query, several series).
//!
//! `failure_limit` consecutive failing steps make the check fail; intervals
//! without new data neither extend nor break that streak, a passing one
//! breaks it. `inconclusive_limit` consecutive *no data* intervals apply
//! `on_inconclusive`: `fail` fails the check, `hold` keeps it inconclusive,
//! `pass` lets it pass at the end if it never gets enough data (and it still
//! fails if later data say so). Intervals that bring data but not yet
//! `min_samples` do not count towards that limit: slow traffic is not
//! missing traffic. `inconclusive_limit` consecutive *error* intervals end the
//! check as **Error**, whatever `on_inconclusive` says: a check is never
//! passed on source errors. Fewer errors than that are tolerated (the next
//! interval is the retry) and the data that did arrive are judged.
//!
//! Which source errors count against which check: a query check depends on
//! its own `source`; pool and probe checks carry no source name, so for them
//! an error of any source that is not a query check's source counts, but only
//! when their own data are missing from the interval. A Prometheus outage
//! therefore never blinds the router-based checks.
//!
//! # Stopping early
//!
//! [`Analysis::observe`] answers `Decided(Fail)` at the first interval where
//! any check fails, critical or not: a failed check is final (the final
//! verdict can no longer be anything but Fail), and every further request to
//! a bad candidate is damage. A check that ends in Error is final too: a
//! `critical` one decides the analysis at once (`Decided(Error)`), a
//! non-critical one lets the others go on, since they may still catch a
//! failure; the verdict at the end is then Error. When every check is final
//! the analysis is decided. There is no early pass: a pass needs the whole
//! analysis window the caller chose. With no check configured, the first
//! interval answers `Decided(Inconclusive)`.
//!
//! After a decision, further intervals are recorded but not judged.
//!
//! # The verdict at the end
//!
//! Any failed check → Fail; else any Error → Error; else any Inconclusive →
//! Inconclusive; else Pass. A check that has not failed is Pass at the end
//! if it has `min_samples`, its test does not reject and no failure streak
//! is pending. Only significant evidence fails: an error rate of 3 % on 100
//! requests against a limit of 1 % passes (its message says the estimate is
//! over the limit, not significantly), because failing on point estimates
//! would roll back healthy candidates far more often than alpha. A check
//! short of data is Inconclusive, or Error if a source failed during the
//! analysis, or Pass only if `on_inconclusive = "pass"` was reached.
//!
//! # Time to detect
//!
//! For a candidate with true bad-event rate `p` (errors, or requests slower
//! than a latency limit) against a limit `p0 = max` (or
//! `1 - percentile/100`), candidate traffic `r` requests per second and
//! analysis interval `I`:
//!
//! ```text
//! n_test(p) = (ln(m / alpha) + ln 5) / D(p)
//!     D(p)  = max over k of  p·ln(p_k/p0) + (1-p)·ln((1-p_k)/(1-p0)),
//!             p_k = min(c·p0, 1 - (1-p0)/c),  c ∈ {1.5, 2, 3, 5, 10}
//! n       = max(min_samples, n_test(p))                 requests
//! T       ≈ I · (ceil(n / (r·I)) + failure_limit - 1)   + the source's delay
//! ```
//!
//! where `m` is the number of statistical checks (`alpha / m` each).
//! `n_test` ([`stats::expected_samples_to_reject`])
//! is the typical sample size: the test decides once its log-likelihood
//! ratio, which grows by `D(p)` per request on average, crosses `ln(m/alpha)`
//! plus the `ln 5` cost of not knowing the alternative. Randomness spreads it:
//! in simulation (`tests/it/simulation.rs`) the 95th percentile is about 2.5×
//! the median at 20 requests/s.
//!
//! Example: `p = 5 %`, `max = 1 %`, `alpha = 0.01`, one statistical check:
//! `D = 0.041`, `n_test ≈ 151` requests; at 20 requests/s and `I = 1s`,
//! `T ≈ 8 s` (simulated: median 7 s, 95th percentile 17–19 s). With the
//! default `I = 5s` the same candidate fails at the first interval whose
//! total holds 151 requests: `T = 10 s` (two intervals of 100).
//!
//! A candidate failing every request (`p = 1`: `n_test ≈ 3`), or one slower
//! than a latency limit on every request, is bounded by `min_samples`, which
//! is then a true worst case:
//! `T = I · (ceil(min_samples / (r·I)) + failure_limit - 1)`.
//! Probe and query checks fail after `failure_limit` failing intervals:
//! `T = failure_limit · I`. A metric source that keeps failing ends the
//! analysis (critical check) or the check (otherwise) after
//! `inconclusive_limit · I`; no traffic at all fails the check after
//! `inconclusive_limit · I` (with `on_inconclusive = "fail"`).
//!
//! Comparisons follow the same shape with a larger `n_test` (they must also
//! estimate stable's rate): 8 % errors against stable's 0.2 % with a 1 pp
//! tolerance is caught within 22 s at 20 requests/s in simulation, and
//! 300 ms of added latency within 3 s (that is, `min_samples`).

use crate::stats::{self, BernoulliMixture, Sequential};
use crate::{CheckKind, CheckSpec, Comparison, Histogram, Interval, OnInconclusive, Policy, PoolWindow};
use jiff::Timestamp;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

/// The four states of a judgment, kept apart.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Pass,
    Fail,
    /// Too little data to decide.
    Inconclusive,
    /// A metric source failed (after retries).
    Error,
}

/// What the analysis says after an interval.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Keep observing.
    Continue,
    /// The evidence is strong enough to stop now.
    Decided(Verdict),
}

/// The evidence behind one check's state.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct CheckEvidence {
    pub name: String,
    /// `error_rate`, `latency`, `compare_error_rate`, `compare_latency`, `probe`, `query`.
    pub kind: String,
    pub verdict: Verdict,
    /// The observed value (ratio, milliseconds, count) the check judged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed: Option<f64>,
    /// The stable baseline's value, for comparisons.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub baseline: Option<f64>,
    /// The limit, as a person reads it (`<= 1.00%`, `p99 <= 250ms`).
    pub threshold: String,
    /// The test statistic (z, U, log-likelihood ratio), when a test ran.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub statistic: Option<f64>,
    /// The (always-valid) p-value, when a test ran.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub p_value: Option<f64>,
    /// Observations judged.
    pub samples: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window_start: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window_end: Option<Timestamp>,
    /// One sentence: why this state.
    pub message: String,
}

/// The whole judgment: verdict, reason, per-check evidence and the raw
/// intervals it was made from (so it can be replayed under another config).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct AnalysisReport {
    pub verdict: Verdict,
    /// One sentence for the summary.
    pub reason: String,
    /// The check that decided, if one did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decided_by: Option<String>,
    pub checks: Vec<CheckEvidence>,
    /// The candidate's share of traffic (percent) during the analysis, when
    /// the caller knew it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub candidate_weight: Option<u8>,
    /// Configured checks that could not apply and were not judged, with why
    /// (a comparison with stable while the candidate takes all traffic).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub skipped: Vec<SkippedCheck>,
    pub intervals: Vec<Interval>,
}

/// A configured check that did not apply to an analysis.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct SkippedCheck {
    pub name: String,
    pub reason: String,
}

/// Consumes intervals one by one and decides as soon as the evidence allows.
#[derive(Debug)]
pub struct Analysis {
    checks: Vec<CheckSpec>,
    policy: Policy,
    intervals: Vec<Interval>,
    states: Vec<CheckState>,
    query_sources: BTreeSet<String>,
    decided: Option<Verdict>,
    candidate_weight: Option<u8>,
    skipped: Vec<SkippedCheck>,
}

impl Analysis {
    pub fn new(checks: Vec<CheckSpec>, policy: Policy) -> Self {
        let statistical = checks.iter().filter(|c| is_statistical(&c.kind)).count().max(1);
        let alpha = policy.alpha / statistical as f64;
        let states = checks.iter().map(|_| CheckState::new(alpha)).collect();
        let query_sources = checks
            .iter()
            .filter_map(|c| match &c.kind {
                CheckKind::Query { source, .. } => Some(source.clone()),
                _ => None,
            })
            .collect();
        Self {
            checks,
            policy,
            intervals: Vec::new(),
            states,
            query_sources,
            decided: None,
            candidate_weight: None,
            skipped: Vec::new(),
        }
    }

    /// An analysis of a candidate that takes `weight` percent of traffic.
    ///
    /// At 100 % no request reaches stable, so a comparison with stable has no
    /// baseline in the same window: comparisons are then left out (and listed
    /// in the report as skipped) rather than waiting for data that cannot
    /// come. They were judged at the earlier stages of a canary.
    pub fn at_weight(checks: Vec<CheckSpec>, policy: Policy, weight: u8) -> Self {
        let (applicable, skipped): (Vec<CheckSpec>, Vec<CheckSpec>) =
            checks.into_iter().partition(|c| weight < 100 || !matches!(c.kind, CheckKind::Compare(_)));
        let mut analysis = Analysis::new(applicable, policy);
        analysis.candidate_weight = Some(weight);
        analysis.skipped = skipped
            .into_iter()
            .map(|c| SkippedCheck {
                name: c.name,
                reason: "not judged: the candidate takes 100% of traffic, so stable serves no baseline to \
                         compare with"
                    .into(),
            })
            .collect();
        analysis
    }

    /// Judges one more interval. `Decided(Fail)` as soon as a check fails.
    pub fn observe(&mut self, interval: Interval) -> Outcome {
        if let Some(verdict) = self.decided {
            self.intervals.push(interval);
            return Outcome::Decided(verdict);
        }
        let index = self.intervals.len();
        // Source errors that no query check claims count against the checks
        // whose data carry no source name (pools, probes).
        let unclaimed = interval
            .source_errors
            .iter()
            .find(|(source, _)| !self.query_sources.contains(*source))
            .map(|(source, error)| format!("{source}: {error}"));
        for (spec, state) in self.checks.iter().zip(&mut self.states) {
            state.observe(spec, &interval, index, unclaimed.as_deref());
        }
        self.intervals.push(interval);
        self.decided = self.decision();
        match self.decided {
            Some(verdict) => Outcome::Decided(verdict),
            None => Outcome::Continue,
        }
    }

    fn decision(&self) -> Option<Verdict> {
        if self.checks.is_empty() {
            return Some(Verdict::Inconclusive);
        }
        let finals: Vec<(Verdict, bool)> = self
            .checks
            .iter()
            .zip(&self.states)
            .filter_map(|(spec, state)| state.final_verdict.as_ref().map(|f| (f.0, spec.critical)))
            .collect();
        if finals.iter().any(|&(v, _)| v == Verdict::Fail) {
            return Some(Verdict::Fail);
        }
        if finals.iter().any(|&(v, critical)| v == Verdict::Error && critical) || finals.len() == self.checks.len() {
            return Some(Verdict::Error);
        }
        None
    }

    /// The report as it stands now, without ending the analysis (for
    /// progress displays); [`Analysis::finish`] gives the same.
    pub fn report(&self) -> AnalysisReport {
        let evidence: Vec<CheckEvidence> =
            self.checks.iter().zip(&self.states).map(|(spec, state)| state.evidence(spec)).collect();
        let (verdict, reason, decided_by) = self.overall(&evidence);
        AnalysisReport {
            verdict,
            reason,
            decided_by,
            checks: evidence,
            candidate_weight: self.candidate_weight,
            skipped: self.skipped.clone(),
            intervals: self.intervals.clone(),
        }
    }

    /// The verdict at the end of the analysis window, with all evidence.
    pub fn finish(self) -> AnalysisReport {
        let mut report = self.report();
        report.intervals = self.intervals;
        report
    }

    fn overall(&self, evidence: &[CheckEvidence]) -> (Verdict, String, Option<String>) {
        if self.checks.is_empty() {
            return (
                Verdict::Inconclusive,
                "no checks are configured, so nothing was judged and nothing can pass".into(),
                None,
            );
        }
        let intervals = self.intervals.len();
        if intervals == 0 {
            return (Verdict::Inconclusive, "no interval was observed, so nothing was judged".into(), None);
        }
        // The deciding check: the first to become final (by interval), then
        // critical before non-critical, then config order.
        let first = |verdict: Verdict| {
            evidence
                .iter()
                .enumerate()
                .filter(|(_, e)| e.verdict == verdict)
                .min_by_key(|(i, _)| (self.states[*i].decided_at.unwrap_or(usize::MAX), !self.checks[*i].critical, *i))
                .map(|(_, e)| e)
        };
        if let Some(e) = first(Verdict::Fail) {
            let critical = if self.checks.iter().any(|c| c.name == e.name && c.critical) { "critical " } else { "" };
            let reason = format!("{critical}check {:?} failed: {}", e.name, e.message);
            return (Verdict::Fail, reason, Some(e.name.clone()));
        }
        if let Some(e) = first(Verdict::Error) {
            let reason = format!("check {:?} could not be judged: {}", e.name, e.message);
            return (Verdict::Error, reason, Some(e.name.clone()));
        }
        if let Some(e) = first(Verdict::Inconclusive) {
            let reason = format!("check {:?} is inconclusive: {}", e.name, e.message);
            return (Verdict::Inconclusive, reason, Some(e.name.clone()));
        }
        let n = evidence.len();
        let plural = if n == 1 { "" } else { "s" };
        let figures: Vec<String> =
            self.states.iter().zip(evidence).map(|(s, e)| format!("{}: {}", e.name, s.judgment.summary)).collect();
        let reason =
            format!("all {n} check{plural} passed over {intervals} interval{}: {}", s(intervals), figures.join("; "));
        (Verdict::Pass, reason, None)
    }

    /// Re-judges recorded intervals under (possibly different) checks, at
    /// the candidate weight they were recorded at (when known).
    pub fn replay(
        checks: Vec<CheckSpec>,
        policy: Policy,
        intervals: Vec<Interval>,
        candidate_weight: Option<u8>,
    ) -> AnalysisReport {
        let mut analysis = match candidate_weight {
            Some(weight) => Analysis::at_weight(checks, policy, weight),
            None => Analysis::new(checks, policy),
        };
        for interval in intervals {
            if let Outcome::Decided(_) = analysis.observe(interval) {
                break;
            }
        }
        analysis.finish()
    }

    /// The policy this analysis judges under.
    pub fn policy(&self) -> &Policy {
        &self.policy
    }
}

fn is_statistical(kind: &CheckKind) -> bool {
    matches!(kind, CheckKind::ErrorRate { .. } | CheckKind::Latency { .. } | CheckKind::Compare(_))
}

fn kind_name(kind: &CheckKind) -> &'static str {
    match kind {
        CheckKind::ErrorRate { .. } => "error_rate",
        CheckKind::Latency { .. } => "latency",
        CheckKind::Compare(Comparison::ErrorRate { .. }) => "compare_error_rate",
        CheckKind::Compare(Comparison::Latency { .. }) => "compare_latency",
        CheckKind::Probe => "probe",
        CheckKind::Query { .. } => "query",
    }
}

/// The limit as a person reads it.
fn threshold_text(kind: &CheckKind) -> String {
    match kind {
        CheckKind::ErrorRate { max } => format!("<= {}", pct(*max)),
        CheckKind::Latency { percentile, max } => {
            format!("p{} <= {}", number(*percentile), humantime::format_duration(*max))
        }
        CheckKind::Compare(Comparison::ErrorRate { tolerance }) => {
            format!("<= stable + {:.2} pp", tolerance * 100.0)
        }
        CheckKind::Compare(Comparison::Latency { tolerance }) => {
            format!("<= {} x stable (Mann-Whitney)", number(1.0 + tolerance))
        }
        CheckKind::Probe => "all probes ok".into(),
        CheckKind::Query { min, max, .. } => match (min, max) {
            (Some(lo), Some(hi)) => format!("in [{}, {}]", number(*lo), number(*hi)),
            (Some(lo), None) => format!(">= {}", number(*lo)),
            (None, Some(hi)) => format!("<= {}", number(*hi)),
            (None, None) => "any value".into(),
        },
    }
}

/// One interval's step for one check (see the module docs).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Step {
    Pass,
    Fail,
    Accumulating,
    NoData,
    Error,
}

#[derive(Debug, Default)]
struct Totals {
    requests: u64,
    errors: u64,
    latency: Histogram,
}

impl Totals {
    fn add(&mut self, pool: &PoolWindow) {
        self.requests = self.requests.saturating_add(pool.requests);
        self.errors = self.errors.saturating_add(pool.errors.min(pool.requests));
        self.latency.merge(&pool.latency);
    }
}

/// The latest figures of a check, kept for its evidence.
#[derive(Debug, Default)]
struct Judgment {
    observed: Option<f64>,
    baseline: Option<f64>,
    statistic: Option<f64>,
    p_value: Option<f64>,
    samples: u64,
    /// Whether the data so far are enough for `min_samples` (both pools for comparisons).
    enough: bool,
    /// The test rejects now (or the last judged probe/query interval failed).
    rejecting: bool,
    /// The point estimate is within the limit.
    within_limit: bool,
    /// The figures in a few words ("error rate 0.40% (2 of 500 requests)").
    summary: String,
}

#[derive(Debug)]
struct CheckState {
    alpha: f64,
    candidate: Totals,
    stable: Totals,
    probes: u64,
    probes_failed: u64,
    answers: u64,
    judgment: Judgment,
    fail_streak: u32,
    inconclusive_streak: u32,
    error_streak: u32,
    error_intervals: u32,
    last_error: Option<String>,
    /// Fail or Error once the check can no longer change, with why.
    final_verdict: Option<(Verdict, String)>,
    decided_at: Option<usize>,
    passed_by_config: bool,
    window: Option<(Timestamp, Timestamp)>,
}

impl CheckState {
    fn new(alpha: f64) -> Self {
        Self {
            alpha,
            candidate: Totals::default(),
            stable: Totals::default(),
            probes: 0,
            probes_failed: 0,
            answers: 0,
            judgment: Judgment { summary: "no data".into(), ..Judgment::default() },
            fail_streak: 0,
            inconclusive_streak: 0,
            error_streak: 0,
            error_intervals: 0,
            last_error: None,
            final_verdict: None,
            decided_at: None,
            passed_by_config: false,
            window: None,
        }
    }

    fn observe(&mut self, spec: &CheckSpec, interval: &Interval, index: usize, unclaimed: Option<&str>) {
        if self.final_verdict.is_some() {
            return;
        }
        self.window = Some(match self.window {
            Some((start, _)) => (start, interval.end),
            None => (interval.start, interval.end),
        });
        let step = match self.judge(spec, interval, unclaimed) {
            Ok(step) => step,
            Err(error) => {
                self.last_error = Some(error);
                Step::Error
            }
        };
        self.apply(spec, step, index);
    }

    /// Adds the interval's data and judges the accumulated data.
    fn judge<'a>(&mut self, spec: &CheckSpec, interval: &'a Interval, unclaimed: Option<&str>) -> Result<Step, String> {
        let min = spec.min_samples;
        let alpha = self.alpha;
        let missing = |what: &str| match unclaimed {
            Some(error) => Err(format!("no {what} ({error})")),
            None => Ok(Step::NoData),
        };
        let pool = |pool: Option<&'a PoolWindow>, which: &str| -> Result<&'a PoolWindow, String> {
            pool.ok_or_else(|| match unclaimed {
                Some(error) => format!("no {which} data ({error})"),
                None => format!("no {which} data (the metric source gave none)"),
            })
        };
        match &spec.kind {
            CheckKind::ErrorRate { max } => {
                let c = pool(interval.candidate.as_ref(), "candidate")?;
                if c.requests == 0 {
                    return missing("candidate requests");
                }
                self.candidate.add(c);
                let (x, n) = (self.candidate.errors, self.candidate.requests);
                let rate = x as f64 / n as f64;
                let test = Sequential { statistic: rate, log_lr: BernoulliMixture::new(*max).log_lr(x, n) };
                self.judgment = Judgment {
                    observed: Some(rate),
                    baseline: None,
                    statistic: Some(test.log_lr),
                    p_value: Some(test.p_value()),
                    samples: n,
                    enough: n >= min,
                    rejecting: test.rejects(alpha),
                    within_limit: rate <= *max,
                    summary: format!("error rate {} ({x} of {n} requests)", pct(rate)),
                };
                Ok(self.statistical_step())
            }
            CheckKind::Latency { percentile, max } => {
                let c = pool(interval.candidate.as_ref(), "candidate")?;
                if c.latency.is_empty() {
                    return missing("candidate latencies");
                }
                self.candidate.add(c);
                let hist = &self.candidate.latency;
                let n = hist.count();
                let max_us = u64::try_from(max.as_micros()).unwrap_or(u64::MAX);
                let slow = hist.count_above(max_us);
                let q = (percentile / 100.0).clamp(0.0, 1.0);
                let test = BernoulliMixture::new(1.0 - q);
                let log_lr = test.log_lr(slow, n);
                let observed = hist.quantile(q);
                let test = Sequential { statistic: log_lr, log_lr };
                self.judgment = Judgment {
                    observed: observed.map(us_to_ms),
                    baseline: None,
                    statistic: Some(log_lr),
                    p_value: Some(test.p_value()),
                    samples: n,
                    enough: n >= min,
                    rejecting: test.rejects(alpha),
                    within_limit: observed.is_some_and(|v| v <= max_us),
                    summary: format!(
                        "p{} {} ({slow} of {n} requests slower than {})",
                        number(*percentile),
                        observed.map_or("-".into(), ms),
                        humantime::format_duration(*max)
                    ),
                };
                Ok(self.statistical_step())
            }
            CheckKind::Compare(Comparison::ErrorRate { tolerance }) => {
                let c = pool(interval.candidate.as_ref(), "candidate")?;
                let s = pool(interval.stable.as_ref(), "stable")?;
                if c.requests == 0 {
                    return missing("candidate requests");
                }
                self.candidate.add(c);
                self.stable.add(s);
                let (xc, nc) = (self.candidate.errors, self.candidate.requests);
                let (xs, ns) = (self.stable.errors, self.stable.requests);
                let rc = xc as f64 / nc as f64;
                let rs = if ns > 0 { xs as f64 / ns as f64 } else { 0.0 };
                let test = stats::sequential_two_proportion(xc, nc, xs, ns, *tolerance);
                self.judgment = Judgment {
                    observed: Some(rc),
                    baseline: (ns > 0).then_some(rs),
                    statistic: test.map(|t| t.statistic),
                    p_value: test.map(|t| t.p_value()),
                    samples: nc,
                    enough: nc >= min && ns >= min,
                    rejecting: test.is_some_and(|t| t.rejects(alpha)),
                    within_limit: ns > 0 && rc - rs <= *tolerance,
                    summary: format!(
                        "error rate {} ({xc} of {nc}) vs stable {} ({xs} of {ns})",
                        pct(rc),
                        if ns > 0 { pct(rs) } else { "-".into() }
                    ),
                };
                Ok(self.statistical_step())
            }
            CheckKind::Compare(Comparison::Latency { tolerance }) => {
                let c = pool(interval.candidate.as_ref(), "candidate")?;
                let s = pool(interval.stable.as_ref(), "stable")?;
                if c.latency.is_empty() {
                    return missing("candidate latencies");
                }
                self.candidate.add(c);
                self.stable.add(s);
                let (hc, hs) = (&self.candidate.latency, &self.stable.latency);
                let (nc, ns) = (hc.count(), hs.count());
                let scale = 1.0 + tolerance.max(0.0);
                let test = stats::sequential_mann_whitney(hc, hs, scale);
                let (median_c, median_s) = (hc.quantile(0.5), hs.quantile(0.5));
                let effect = test.map(|(_, mw)| mw.effect());
                self.judgment = Judgment {
                    observed: median_c.map(us_to_ms),
                    baseline: median_s.map(us_to_ms),
                    statistic: test.map(|(t, _)| t.statistic),
                    p_value: test.map(|(t, _)| t.p_value()),
                    samples: nc,
                    enough: nc >= min && ns >= min,
                    rejecting: test.is_some_and(|(t, _)| t.rejects(alpha)),
                    within_limit: effect.is_some_and(|e| e <= 0.5),
                    summary: format!(
                        "median {} vs stable {}, P(candidate/{} slower) = {} ({nc} vs {ns} requests)",
                        median_c.map_or("-".into(), ms),
                        median_s.map_or("-".into(), ms),
                        number(scale),
                        effect.map_or("-".into(), |e| format!("{e:.3}"))
                    ),
                };
                Ok(self.statistical_step())
            }
            CheckKind::Probe => {
                if interval.probes.is_empty() {
                    return missing("probe results");
                }
                let failed: Vec<_> = interval.probes.iter().filter(|p| !p.ok).collect();
                self.probes += interval.probes.len() as u64;
                self.probes_failed += failed.len() as u64;
                let first = failed.first().map(|p| {
                    let detail = p.detail.clone().or_else(|| p.status.map(|s| format!("status {s}")));
                    match detail {
                        Some(d) => format!(", {} ({d})", p.name),
                        None => format!(", {}", p.name),
                    }
                });
                self.judgment = Judgment {
                    observed: Some(self.probes_failed as f64),
                    samples: self.probes,
                    enough: self.probes >= min,
                    rejecting: !failed.is_empty(),
                    within_limit: failed.is_empty(),
                    summary: if failed.is_empty() {
                        format!("{} of {} probes failed", self.probes_failed, self.probes)
                    } else {
                        format!(
                            "{} of {} probes failed in the last interval{}",
                            failed.len(),
                            interval.probes.len(),
                            first.unwrap_or_default()
                        )
                    },
                    ..Judgment::default()
                };
                Ok(self.deterministic_step())
            }
            CheckKind::Query { source, min: lo, max: hi, reduce, .. } => {
                if let Some(error) = interval.source_errors.get(source) {
                    return Err(format!("query source {source} failed: {error}"));
                }
                if let Some(error) = interval.query_errors.get(&spec.name) {
                    return Err(format!("the query could not be judged: {error}"));
                }
                let value = match interval.values.get(&spec.name) {
                    Some(Some(v)) if !v.is_nan() => *v,
                    _ => return Ok(Step::NoData),
                };
                let over = reduce.map(|r| format!(" ({} over the interval)", r.name())).unwrap_or_default();
                self.answers += 1;
                let ok = lo.is_none_or(|lo| value >= lo) && hi.is_none_or(|hi| value <= hi);
                self.judgment = Judgment {
                    observed: Some(value),
                    samples: self.answers,
                    enough: self.answers >= min,
                    rejecting: !ok,
                    within_limit: ok,
                    summary: format!("value {}{over}", number(value)),
                    ..Judgment::default()
                };
                Ok(self.deterministic_step())
            }
        }
    }

    fn statistical_step(&self) -> Step {
        match (&self.judgment.enough, &self.judgment.rejecting) {
            (false, _) => Step::Accumulating,
            (true, true) => Step::Fail,
            (true, false) => Step::Pass,
        }
    }

    fn deterministic_step(&self) -> Step {
        match (&self.judgment.rejecting, &self.judgment.enough) {
            (true, _) => Step::Fail,
            (false, false) => Step::Accumulating,
            (false, true) => Step::Pass,
        }
    }

    fn apply(&mut self, spec: &CheckSpec, step: Step, index: usize) {
        let limit = spec.inconclusive_limit.max(1);
        match step {
            Step::Pass => {
                self.fail_streak = 0;
                self.inconclusive_streak = 0;
                self.error_streak = 0;
            }
            Step::Accumulating => {
                self.inconclusive_streak = 0;
                self.error_streak = 0;
            }
            Step::Fail => {
                self.fail_streak += 1;
                self.inconclusive_streak = 0;
                self.error_streak = 0;
                let needed = spec.failure_limit.max(1);
                if self.fail_streak >= needed {
                    let message = self.failure_message(spec);
                    self.make_final(Verdict::Fail, message, index);
                }
            }
            Step::NoData => {
                self.inconclusive_streak += 1;
                self.error_streak = 0;
                if self.inconclusive_streak >= limit {
                    match spec.on_inconclusive {
                        OnInconclusive::Fail => {
                            let message = format!(
                                "no data for {} consecutive interval{} ({}); on_inconclusive = \"fail\"",
                                self.inconclusive_streak,
                                s(self.inconclusive_streak as usize),
                                self.samples_text(spec)
                            );
                            self.make_final(Verdict::Fail, message, index);
                        }
                        OnInconclusive::Hold => {}
                        OnInconclusive::Pass => self.passed_by_config = true,
                    }
                }
            }
            Step::Error => {
                self.error_streak += 1;
                self.error_intervals += 1;
                self.inconclusive_streak = 0;
                if self.error_streak >= limit {
                    let message = format!(
                        "the metric source failed for {} consecutive interval{}: {}",
                        self.error_streak,
                        s(self.error_streak as usize),
                        self.last_error.as_deref().unwrap_or("unknown error")
                    );
                    self.make_final(Verdict::Error, message, index);
                }
            }
        }
    }

    fn make_final(&mut self, verdict: Verdict, message: String, index: usize) {
        self.final_verdict = Some((verdict, message));
        self.decided_at = Some(index);
    }

    fn failure_message(&self, spec: &CheckSpec) -> String {
        let j = &self.judgment;
        let threshold = threshold_text(&spec.kind);
        let streak = if spec.failure_limit > 1 {
            format!(" for {} consecutive intervals", self.fail_streak)
        } else {
            String::new()
        };
        if is_statistical(&spec.kind) {
            format!(
                "{}, limit {threshold}: exceeded significantly (always-valid p = {} < alpha {}){streak}",
                j.summary,
                p_text(j.p_value.unwrap_or(1.0)),
                number(self.alpha)
            )
        } else {
            format!("{}, limit {threshold}{streak}", j.summary)
        }
    }

    fn samples_text(&self, spec: &CheckSpec) -> String {
        let unit = match spec.kind {
            CheckKind::Probe => "probes",
            CheckKind::Query { .. } => "answers",
            _ => "requests",
        };
        if let CheckKind::Compare(_) = spec.kind {
            return format!(
                "candidate {} and stable {} {unit} so far, {} needed in each",
                self.candidate.requests, self.stable.requests, spec.min_samples
            );
        }
        format!("{} of {} {unit} so far", self.judgment.samples, spec.min_samples)
    }

    /// The check's verdict and message as things stand.
    fn state(&self, spec: &CheckSpec) -> (Verdict, String) {
        if let Some((verdict, message)) = &self.final_verdict {
            return (*verdict, message.clone());
        }
        let j = &self.judgment;
        let threshold = threshold_text(&spec.kind);
        if self.fail_streak > 0 {
            return (
                Verdict::Inconclusive,
                format!(
                    "{}, failing for {} of {} intervals when the analysis ended",
                    j.summary, self.fail_streak, spec.failure_limit
                ),
            );
        }
        let p = j.p_value.map(|p| format!(" (always-valid p = {})", p_text(p))).unwrap_or_default();
        if j.enough && j.within_limit && is_statistical(&spec.kind) {
            return (Verdict::Pass, format!("{}, limit {threshold}: no evidence of exceeding it{p}", j.summary));
        }
        if j.enough && j.within_limit {
            return (Verdict::Pass, format!("{}, limit {threshold}", j.summary));
        }
        if j.enough {
            // Only significant evidence fails a check: that is what keeps the
            // false-fail rate at alpha. Say plainly that the estimate is over.
            return (
                Verdict::Pass,
                format!(
                    "{}, limit {threshold}: beyond it as observed, but not significantly (always-valid p = {}, \
                     alpha {}), so not failed",
                    j.summary,
                    p_text(j.p_value.unwrap_or(1.0)),
                    number(self.alpha)
                ),
            );
        }
        if self.passed_by_config {
            return (
                Verdict::Pass,
                format!("{}; passed without enough data because on_inconclusive = \"pass\"", self.samples_text(spec)),
            );
        }
        if self.error_intervals > 0 {
            return (
                Verdict::Error,
                format!(
                    "{}; the metric source failed in {} interval{}: {}",
                    self.samples_text(spec),
                    self.error_intervals,
                    s(self.error_intervals as usize),
                    self.last_error.as_deref().unwrap_or("unknown error")
                ),
            );
        }
        let detail = if j.samples > 0 { format!(" ({})", j.summary) } else { String::new() };
        (Verdict::Inconclusive, format!("too little data: {}{detail}", self.samples_text(spec)))
    }

    fn evidence(&self, spec: &CheckSpec) -> CheckEvidence {
        let (verdict, message) = self.state(spec);
        let j = &self.judgment;
        CheckEvidence {
            name: spec.name.clone(),
            kind: kind_name(&spec.kind).into(),
            verdict,
            observed: j.observed,
            baseline: j.baseline,
            threshold: threshold_text(&spec.kind),
            statistic: j.statistic,
            p_value: j.p_value,
            samples: j.samples,
            window_start: self.window.map(|w| w.0),
            window_end: self.window.map(|w| w.1),
            message,
        }
    }
}

fn us_to_ms(us: u64) -> f64 {
    us as f64 / 1000.0
}

fn ms(us: u64) -> String {
    let ms = us_to_ms(us);
    if ms >= 1000.0 { format!("{:.2}s", ms / 1000.0) } else { format!("{ms:.1}ms") }
}

fn pct(ratio: f64) -> String {
    format!("{:.2}%", ratio * 100.0)
}

fn p_text(p: f64) -> String {
    if p >= 0.001 { format!("{p:.3}") } else { format!("{p:.1e}") }
}

/// A number without needless decimals: 99, 99.9, 0.005.
fn number(x: f64) -> String {
    if x != 0.0 && !(1e-4..1e12).contains(&x.abs()) {
        // ±Inf answered by a query is recorded as ±f64::MAX; keep it short.
        return format!("{x:.3e}");
    }
    let text = format!("{x:.6}");
    let text = text.trim_end_matches('0').trim_end_matches('.');
    if text.is_empty() || text == "-" { "0".into() } else { text.into() }
}

fn s(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

#[cfg(test)]
mod tests;
