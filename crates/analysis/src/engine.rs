//! The analysis state machine: intervals in, a verdict and its evidence out.
//!
//! An [`Analysis`] is fed one [`Interval`] at a time by `verify-health` (or by
//! `--replay` from a record) and answers [`Outcome::Continue`] or
//! [`Outcome::Decided`]. [`Analysis::finish`] turns what it saw into an
//! [`AnalysisReport`]. It never performs I/O, never reads the clock, and
//! never passes a check for lack of data.
//!
//! Code map: this file holds the public types and the analysis as a whole;
//! `state` one check's streaks, final verdict and evidence; `judge` what one
//! interval means for one check, one function per check kind
//! (`judge/threshold.rs`: `error_rate` and `latency`; `judge/compare.rs`;
//! `judge/probe.rs`; `judge/query.rs`).
//!
//! # What each check judges
//!
//! All data checks judge the data *accumulated since the analysis started*;
//! the statistical ones also judge every *recent window* (from an interval
//! boundary to the latest interval), so a late degradation is not diluted by
//! the good data before it (see [`scan`] for the method and its bound). A
//! canary's later stage may start from the previous stage's later intervals
//! ([`Analysis::carrying`]), so a degradation at the end of a stage is judged
//! on its data since the onset in the next.
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
//! such checks each rejects at `alpha / m`, half of it on the cumulative
//! data and half over the recent windows ([`scan`]). A sample-ratio check
//! ([`ratio`]) holds the candidate's share of requests against the weight
//! set, at its own alpha of 0.001, and ends the analysis as an error when
//! the share is far off (cause `sample_ratio_mismatch`). Probe and query checks are
//! deterministic and not part of that budget (a failed probe did fail; use
//! `failure_limit` against flaky ones).
//!
//! * Threshold `error_rate` and `latency`: a mixture SPRT of the Bernoulli
//!   rate of bad events, H0 `p <= p0` against `p = m·p0` for
//!   `m ∈ {1.5, 2, 3, 5, 10}` with equal weights (exact; see
//!   [`stats::BernoulliMixture`]).
//! * `compare` `error_rate`: an exact likelihood-ratio test of
//!   `p_cand <= p_stable + tolerance` whose numerator mixes both pools'
//!   likelihoods over a fixed prior and whose denominator is the likelihood's
//!   maximum over the whole null hypothesis (see
//!   [`stats::sequential_rate_excess`]); valid at any rate and sample size.
//! * `compare` `latency`: a one-sided normal-mixture SPRT on the
//!   Mann-Whitney effect `P(candidate/(1+tolerance) slower than stable) - 1/2`
//!   (τ = 0.1); it rests on a normal approximation and is trusted only from
//!   `min_samples` in each pool.
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
//! * **no data**: nothing new for this check (**no traffic** when the
//!   candidate got no request at all: at `inconclusive_limit` such
//!   intervals with `on_inconclusive = "fail"` the check ends
//!   *inconclusive*, cause `no_traffic`, and the analysis is decided, since
//!   nothing was learned about the release);
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
//! n_test(p) = (ln(2m / alpha) + ln 5) / D(p)      (ln(2m(J+1) / alpha) for a
//!                                                 window after a late onset,
//!                                                 J window starts planned)
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
//! `D = 0.041`, `n_test ≈ 168` requests; at 20 requests/s and `I = 1s`,
//! `T ≈ 9 s`. With `I = 5s` (the default where a metric source is asked) the same candidate fails at the
//! first interval whose total holds 168 requests: `T = 10 s` (two intervals
//! of 100).
//!
//! The error-rate comparison with stable (`tolerance` δ) is the same with
//! `p0 = p_stable + δ` and a dearer start: against a stable without errors
//! `n_cmp(p) = (ln(2m/alpha) + ln 6.25 + ln 3) / D(p)` (its prior's weight on
//! the nearest alternative, 0.16, and on "stable has no errors", 1/3;
//! `ln 51` instead of `ln 3` when stable has errors), alternatives
//! `δ·{1.5, 2, 3, 5, 10}`. For the built-in checks (`m = 3`) and 5 % errors:
//! `D = 0.041`, `n_cmp ≈ 225` (210 on the typical path, where the normal
//! mixture it replaced needed 470; `examples/canaries` prints both). The
//! floor, Wald's test with both rates known, is `ln(2m/alpha) / D ≈ 155`.
//!
//! A candidate failing every request (`p = 1`: `n_test ≈ 3`), or one slower
//! than a latency limit on every request, is bounded by `min_samples`, which
//! is then a true worst case:
//! `T = I · (ceil(min_samples / (r·I)) + failure_limit - 1)`.
//! Probe and query checks fail after `failure_limit` failing intervals:
//! `T = failure_limit · I`. A metric source that keeps failing ends the
//! analysis (critical check) or the check (otherwise) after
//! `inconclusive_limit · I`; no traffic at all makes the check (and the
//! analysis) inconclusive after `inconclusive_limit · I` (with
//! `on_inconclusive = "fail"`).
//!
//! Comparisons follow the same shape with a larger `n_test` (they must also
//! estimate stable's rate): 8 % errors against stable's 0.2 % with a 1 pp
//! tolerance is caught within 22 s at 20 requests/s in simulation, and
//! 300 ms of added latency within 3 s (that is, `min_samples`).

mod judge;
mod ratio;
mod scan;
mod state;

use crate::{CheckKind, CheckSpec, Comparison, Interval, Policy};
use jiff::Timestamp;
use ratio::SampleRatio;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use state::CheckState;
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
    /// Observations judged (the candidate's, for comparisons).
    pub samples: u64,
    /// Stable's observations judged, for comparisons.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub baseline_samples: Option<u64>,
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
    /// Why the verdict is inconclusive or an error when it is not about the
    /// release: no traffic, or a sample-ratio mismatch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cause: Option<Cause>,
    /// The candidate's share of requests held against the weight set, when
    /// a split was checked (see [`Cause::SampleRatioMismatch`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sample_ratio: Option<CheckEvidence>,
    /// The intervals the caller meant to observe (the window over the
    /// interval), which sets the recent windows' share of alpha; a replay
    /// uses it to judge as the analysis did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub planned_intervals: Option<u32>,
    /// How many of `intervals`, from the first, were carried over from the
    /// previous stage's analysis (its later half, see
    /// [`Analysis::carrying`]) rather than observed by this one.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub carried_intervals: u32,
    pub intervals: Vec<Interval>,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

impl AnalysisReport {
    /// The intervals this analysis observed itself, without those carried
    /// over from the previous stage: what it covered at its own weight.
    pub fn own_intervals(&self) -> &[Interval] {
        &self.intervals[(self.carried_intervals as usize).min(self.intervals.len())..]
    }

    /// What the next stage's analysis carries over from this one
    /// ([`Analysis::carrying`]): the later half of its own intervals.
    pub fn later_half(&self) -> Vec<Interval> {
        let own = self.own_intervals();
        own[own.len() / 2..].to_vec()
    }
}

/// Why a verdict says nothing about the release itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Cause {
    /// `inconclusive`: the candidate received no requests, so nothing was
    /// learned about it (it is still never a pass).
    NoTraffic,
    /// `error`: the candidate's share of requests is far from the weight set
    /// on the router, so the checks judged other traffic than the plan's.
    SampleRatioMismatch,
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
    planned: Option<u32>,
    ratio: Option<SampleRatio>,
    /// Intervals carried over from the previous stage (the first ones).
    carried: usize,
}

impl Analysis {
    pub fn new(checks: Vec<CheckSpec>, policy: Policy) -> Self {
        let statistical = checks.iter().filter(|c| is_statistical(&c.kind)).count().max(1);
        let alpha = policy.alpha / statistical as f64;
        let states = checks.iter().map(|_| CheckState::new(alpha, None)).collect();
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
            planned: None,
            ratio: None,
            carried: 0,
        }
    }

    /// Says how many intervals the caller means to observe (the analysis
    /// window over the interval, rounded up), before the first. The recent
    /// windows that catch a late degradation share their alpha over that
    /// many starts (see the `scan` module), so that detection after an
    /// onset takes as long at the end of the window as at its start.
    /// Without it, later windows get ever smaller shares.
    pub fn planned(mut self, intervals: u32) -> Self {
        let intervals = intervals.max(1);
        self.planned = Some(intervals);
        let alpha = self.check_alpha();
        self.states = self.checks.iter().map(|_| CheckState::new(alpha, Some(intervals))).collect();
        self.ratio = self.candidate_weight.and_then(|w| SampleRatio::new(w, Some(intervals)));
        self
    }

    /// Starts the analysis with the later intervals of the previous stage's
    /// (`tail`, oldest first), before any of its own: a candidate that
    /// turned bad late in that stage, too late for its windows to decide
    /// before the stage ended and passed, is judged on the window from the
    /// onset here, as soon as this stage adds the evidence still missing,
    /// instead of from scratch.
    ///
    /// Valid at this analysis's `alpha`: its tests are judged on whatever
    /// data they are given, and the union bound over the stages' analyses
    /// holds whether or not they share data. The carried intervals count in
    /// the plan (the windows starting in them get the same share as the
    /// others: call it after [`Analysis::planned`]) and for the checks, not
    /// for the sample-ratio check, since they were routed at another weight.
    /// They may decide the analysis before it observes an interval of its
    /// own. Call it before [`Analysis::observe`].
    pub fn carrying(mut self, tail: Vec<Interval>) -> Self {
        if tail.is_empty() || !self.intervals.is_empty() {
            return self;
        }
        let own = self.planned.unwrap_or(0);
        let planned = own.saturating_add(u32::try_from(tail.len()).unwrap_or(u32::MAX));
        let ratio = self.ratio.take();
        self = self.planned(planned);
        self.ratio = ratio;
        self.carried = tail.len();
        for interval in tail {
            self.observe(interval);
        }
        self
    }

    /// Whether the analysis is decided (carried intervals can decide it
    /// before it observes one of its own).
    pub fn decided(&self) -> Option<Verdict> {
        self.decided
    }

    /// Each statistical check's share of `alpha`.
    fn check_alpha(&self) -> f64 {
        let statistical = self.checks.iter().filter(|c| is_statistical(&c.kind)).count().max(1);
        self.policy.alpha / statistical as f64
    }

    /// An analysis of a candidate that takes `weight` percent of traffic.
    ///
    /// At 100 % no request reaches stable, so a comparison with stable has no
    /// baseline in the same window: comparisons (and CloudWatch's
    /// `alb latency_vs_stable`, see [`CheckSpec::compares_with_stable`]) are
    /// then left out (and listed in the report as skipped) rather than
    /// waiting for data that cannot come. They were judged at the earlier
    /// stages of a canary.
    pub fn at_weight(checks: Vec<CheckSpec>, policy: Policy, weight: u8) -> Self {
        let (applicable, skipped): (Vec<CheckSpec>, Vec<CheckSpec>) =
            checks.into_iter().partition(|c| weight < 100 || !c.compares_with_stable());
        let mut analysis = Analysis::new(applicable, policy);
        analysis.candidate_weight = Some(weight);
        analysis.ratio = SampleRatio::new(weight, None);
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
        if let Some(ratio) = self.ratio.as_mut().filter(|_| index >= self.carried) {
            ratio.observe(index - self.carried, &interval);
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
        if self.ratio.as_ref().is_some_and(|r| r.mismatch().is_some()) {
            return Some(Verdict::Error);
        }
        if finals.iter().any(|&(v, critical)| v == Verdict::Error && critical) {
            return Some(Verdict::Error);
        }
        // No traffic (final and inconclusive) can no longer become a pass.
        if finals.iter().any(|&(v, _)| v == Verdict::Inconclusive) {
            let error = finals.iter().any(|&(v, _)| v == Verdict::Error);
            return Some(if error { Verdict::Error } else { Verdict::Inconclusive });
        }
        if finals.len() == self.checks.len() {
            return Some(Verdict::Error);
        }
        None
    }

    /// Each check's evidence as it stands now (the report without the
    /// intervals, cheap enough to ask after every interval).
    pub fn evidence(&self) -> Vec<CheckEvidence> {
        self.checks.iter().zip(&self.states).map(|(spec, state)| state.evidence(spec)).collect()
    }

    /// The report as it stands now, without ending the analysis (for
    /// progress displays); [`Analysis::finish`] gives the same.
    pub fn report(&self) -> AnalysisReport {
        let evidence: Vec<CheckEvidence> =
            self.checks.iter().zip(&self.states).map(|(spec, state)| state.evidence(spec)).collect();
        let (verdict, reason, decided_by, cause) = self.overall(&evidence);
        AnalysisReport {
            verdict,
            reason,
            decided_by,
            checks: evidence,
            candidate_weight: self.candidate_weight,
            skipped: self.skipped.clone(),
            cause,
            sample_ratio: self.ratio.as_ref().and_then(SampleRatio::evidence),
            planned_intervals: self.planned,
            carried_intervals: u32::try_from(self.carried).unwrap_or(u32::MAX),
            intervals: self.intervals.clone(),
        }
    }

    /// The verdict at the end of the analysis window, with all evidence.
    pub fn finish(self) -> AnalysisReport {
        let mut report = self.report();
        report.intervals = self.intervals;
        report
    }

    fn overall(&self, evidence: &[CheckEvidence]) -> (Verdict, String, Option<String>, Option<Cause>) {
        if self.checks.is_empty() {
            return (
                Verdict::Inconclusive,
                "no checks are configured, so nothing was judged and nothing can pass".into(),
                None,
                None,
            );
        }
        let intervals = self.intervals.len();
        if intervals == 0 {
            return (Verdict::Inconclusive, "no interval was observed, so nothing was judged".into(), None, None);
        }
        // The deciding check: the first to become final (by interval), then
        // critical before non-critical, then config order.
        let first =
            |verdict: Verdict| {
                evidence.iter().enumerate().filter(|(_, e)| e.verdict == verdict).min_by_key(|(i, _)| {
                    (self.states[*i].decided_at.unwrap_or(usize::MAX), !self.checks[*i].critical, *i)
                })
            };
        if let Some((_, e)) = first(Verdict::Fail) {
            let critical = if self.checks.iter().any(|c| c.name == e.name && c.critical) { "critical " } else { "" };
            let reason = format!("{critical}check {:?} failed: {}", e.name, e.message);
            return (Verdict::Fail, reason, Some(e.name.clone()), None);
        }
        if let Some(mismatch) = self.ratio.as_ref().and_then(SampleRatio::mismatch) {
            return (Verdict::Error, mismatch.to_owned(), Some(ratio::NAME.into()), Some(Cause::SampleRatioMismatch));
        }
        if let Some((_, e)) = first(Verdict::Error) {
            let reason = format!("check {:?} could not be judged: {}", e.name, e.message);
            return (Verdict::Error, reason, Some(e.name.clone()), None);
        }
        if let Some((i, e)) = first(Verdict::Inconclusive) {
            if self.states[i].no_traffic() {
                let reason = format!("{} (check {:?})", e.message, e.name);
                return (Verdict::Inconclusive, reason, Some(e.name.clone()), Some(Cause::NoTraffic));
            }
            let reason = format!("check {:?} is inconclusive: {}", e.name, e.message);
            return (Verdict::Inconclusive, reason, Some(e.name.clone()), None);
        }
        let n = evidence.len();
        let plural = if n == 1 { "" } else { "s" };
        let figures: Vec<String> =
            self.states.iter().zip(evidence).map(|(s, e)| format!("{}: {}", e.name, s.judgment.summary)).collect();
        let reason =
            format!("all {n} check{plural} passed over {intervals} interval{}: {}", s(intervals), figures.join("; "));
        (Verdict::Pass, reason, None, None)
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

    /// Re-judges a recorded analysis under (possibly different) checks, as
    /// it was judged: at its candidate weight and over the intervals it
    /// planned.
    pub fn rejudge(checks: Vec<CheckSpec>, policy: Policy, recorded: &AnalysisReport) -> AnalysisReport {
        let mut analysis = match recorded.candidate_weight {
            Some(weight) => Analysis::at_weight(checks, policy, weight),
            None => Analysis::new(checks, policy),
        };
        let carried = (recorded.carried_intervals as usize).min(recorded.intervals.len());
        // The plan recorded counts the carried intervals; `carrying` adds
        // them again.
        if let Some(own) = recorded.planned_intervals.map(|p| p.saturating_sub(carried as u32)).filter(|p| *p > 0) {
            analysis = analysis.planned(own);
        }
        analysis = analysis.carrying(recorded.intervals[..carried].to_vec());
        for interval in recorded.intervals[carried..].iter().cloned() {
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
        CheckKind::Compare(Comparison::Latency { tolerance, min_difference: None }) => {
            format!("<= {} x stable (Mann-Whitney)", number(1.0 + tolerance))
        }
        CheckKind::Compare(Comparison::Latency { tolerance, min_difference: Some(d) }) => {
            format!(
                "<= max({} x stable, stable + {}) (Mann-Whitney)",
                number(1.0 + tolerance),
                humantime::format_duration(*d)
            )
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
    /// No data because the candidate got no request at all.
    NoTraffic,
    Error,
    /// Nothing new to judge yet: CloudWatch published no new period since
    /// the previous interval. Changes no streak.
    Waiting,
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
