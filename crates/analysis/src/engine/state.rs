//! One check's state across intervals: its running totals, its streaks
//! (failing, without data, in error), its final verdict once it has one,
//! and the evidence it gives. What a single interval means for a check is
//! [`super::judge`]'s business; what a step does to the streaks is here.
//!
//! Never judges data itself and never looks at other checks.

use super::scan::Scan;
use super::{Step, Verdict, is_statistical, kind_name, number, p_text, s, threshold_text};
use crate::{CheckEvidence, CheckKind, CheckSpec, Histogram, Interval, OnInconclusive, PoolWindow};
use jiff::Timestamp;

#[derive(Debug, Default)]
pub(super) struct Totals {
    pub(super) requests: u64,
    pub(super) errors: u64,
    pub(super) latency: Histogram,
}

impl Totals {
    /// Adds a pool's counts, and its latencies when `latency`.
    pub(super) fn add(&mut self, pool: &PoolWindow, latency: bool) {
        self.requests = self.requests.saturating_add(pool.requests);
        self.errors = self.errors.saturating_add(pool.errors.min(pool.requests));
        if latency {
            self.latency.merge(&pool.latency);
        }
    }
}

/// The latest figures of a check, kept for its evidence.
#[derive(Debug, Default)]
pub(super) struct Judgment {
    pub(super) observed: Option<f64>,
    pub(super) baseline: Option<f64>,
    pub(super) statistic: Option<f64>,
    pub(super) p_value: Option<f64>,
    pub(super) samples: u64,
    /// Stable's observations judged, for comparisons.
    pub(super) baseline_samples: Option<u64>,
    /// When the data judged start, where a recent window (not the whole
    /// analysis) decided.
    pub(super) since: Option<Timestamp>,
    /// Whether the data so far are enough for `min_samples` (both pools for comparisons).
    pub(super) enough: bool,
    /// The test rejects now (or the last judged probe/query interval failed).
    pub(super) rejecting: bool,
    /// The point estimate is within the limit.
    pub(super) within_limit: bool,
    /// The figures in a few words ("error rate 0.40% (2 of 500 requests)").
    pub(super) summary: String,
}

#[derive(Debug)]
pub(super) struct CheckState {
    pub(super) alpha: f64,
    pub(super) candidate: Totals,
    pub(super) stable: Totals,
    pub(super) probes: u64,
    pub(super) probes_failed: u64,
    pub(super) answers: u64,
    pub(super) judgment: Judgment,
    pub(super) fail_streak: u32,
    inconclusive_streak: u32,
    /// Of the current streak without data, how many intervals had no
    /// candidate requests at all (rather than requests without the data
    /// the check needs).
    quiet_streak: u32,
    /// Intervals with no candidate request.
    quiet_intervals: u32,
    /// Recent windows beside the cumulative data (statistical checks).
    pub(super) scan: Scan,
    error_streak: u32,
    error_intervals: u32,
    pub(super) last_error: Option<String>,
    /// Fail or Error once the check can no longer change, with why.
    pub(super) final_verdict: Option<(Verdict, String)>,
    pub(super) decided_at: Option<usize>,
    passed_by_config: bool,
    window: Option<(Timestamp, Timestamp)>,
}

impl CheckState {
    pub(super) fn new(alpha: f64, planned: Option<u32>) -> Self {
        Self {
            alpha,
            quiet_streak: 0,
            quiet_intervals: 0,
            scan: Scan::new(planned),
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

    pub(super) fn observe(&mut self, spec: &CheckSpec, interval: &Interval, index: usize, unclaimed: Option<&str>) {
        if self.final_verdict.is_some() {
            return;
        }
        self.window = Some(match self.window {
            Some((start, _)) => (start, interval.end),
            None => (interval.start, interval.end),
        });
        self.scan.open(index, interval.start);
        let step = match self.judge(spec, interval, unclaimed) {
            Ok(step) => step,
            Err(error) => {
                self.last_error = Some(error);
                Step::Error
            }
        };
        self.apply(spec, step, index);
    }

    pub(super) fn statistical_step(&self) -> Step {
        match (&self.judgment.enough, &self.judgment.rejecting) {
            (false, _) => Step::Accumulating,
            (true, true) => Step::Fail,
            (true, false) => Step::Pass,
        }
    }

    pub(super) fn deterministic_step(&self) -> Step {
        match (&self.judgment.rejecting, &self.judgment.enough) {
            (true, _) => Step::Fail,
            (false, false) => Step::Accumulating,
            (false, true) => Step::Pass,
        }
    }

    fn apply(&mut self, spec: &CheckSpec, step: Step, index: usize) {
        let limit = spec.inconclusive_limit.max(1);
        match step {
            Step::Waiting => {}
            Step::Pass => {
                self.fail_streak = 0;
                self.inconclusive_streak = 0;
                self.quiet_streak = 0;
                self.error_streak = 0;
            }
            Step::Accumulating => {
                self.inconclusive_streak = 0;
                self.quiet_streak = 0;
                self.error_streak = 0;
            }
            Step::Fail => {
                self.fail_streak += 1;
                self.inconclusive_streak = 0;
                self.quiet_streak = 0;
                self.error_streak = 0;
                let needed = spec.failure_limit.max(1);
                if self.fail_streak >= needed {
                    let message = self.failure_message(spec);
                    self.make_final(Verdict::Fail, message, index);
                }
            }
            Step::NoData | Step::NoTraffic => {
                self.inconclusive_streak += 1;
                self.error_streak = 0;
                if step == Step::NoTraffic {
                    self.quiet_streak += 1;
                    self.quiet_intervals += 1;
                } else {
                    self.quiet_streak = 0;
                }
                if self.inconclusive_streak >= limit {
                    match spec.on_inconclusive {
                        // Nothing was learned about the release: not a
                        // failure of it (it is still never a pass).
                        OnInconclusive::Fail if self.quiet_streak == self.inconclusive_streak => {
                            let message = format!(
                                "no traffic: the candidate received no requests for {} consecutive interval{} ({}); nothing was learned about the release",
                                self.quiet_streak,
                                s(self.quiet_streak as usize),
                                self.samples_text(spec)
                            );
                            self.make_final(Verdict::Inconclusive, message, index);
                        }
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
                self.quiet_streak = 0;
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
        if self.no_traffic() {
            return (
                Verdict::Inconclusive,
                format!(
                    "no traffic: the candidate received no requests in {} interval{} ({}); nothing was learned about the release",
                    self.quiet_intervals,
                    s(self.quiet_intervals as usize),
                    self.samples_text(spec)
                ),
            );
        }
        let detail = if j.samples > 0 { format!(" ({})", j.summary) } else { String::new() };
        (Verdict::Inconclusive, format!("too little data: {}{detail}", self.samples_text(spec)))
    }

    /// The check is inconclusive because the candidate got no traffic: it
    /// ended so, or never saw a candidate request (and no source failed).
    pub(super) fn no_traffic(&self) -> bool {
        match &self.final_verdict {
            Some((verdict, _)) => *verdict == Verdict::Inconclusive,
            None => self.quiet_intervals > 0 && self.candidate.requests == 0 && self.error_intervals == 0,
        }
    }

    pub(super) fn evidence(&self, spec: &CheckSpec) -> CheckEvidence {
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
            baseline_samples: j.baseline_samples,
            window_start: j.since.or(self.window.map(|w| w.0)),
            window_end: self.window.map(|w| w.1),
            message,
        }
    }
}
