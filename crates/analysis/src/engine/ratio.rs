//! The sample-ratio check: is the candidate getting the share of requests
//! the weight sluice set on the router says it should? When it is not (a
//! sticky session, targets the load balancer routes around, another hand on
//! the router), the checks judge other traffic than the plan's, so a large
//! mismatch ends the analysis as an `error` naming the weight and the share
//! observed, whatever the checks say (a check that *failed* still wins: the
//! candidate's own errors are evidence whatever its share).
//!
//! It is not a configured check and not part of `alpha`: it rejects at its
//! own [`ALPHA`] the hypothesis that the candidate's share lies within
//! [`TOLERANCE`] of the weight (relative, at least [`MIN_TOLERANCE`]
//! absolute), with the same sequential machinery as the checks (a mixture
//! of two one-sided Bernoulli tests, upper and lower, averaged; the
//! cumulative data and the recent windows of [`super::scan`]). Its
//! alternatives start just past the band's edge ([`MULTIPLIERS`], from 1.1
//! times it), not at 1.5 times it as the checks' do: a router moved from
//! 20 % to 30 % sits only a fifth past the edge of 25 %, where those would
//! never reject. A router that
//! splits at random at the weight set is far inside that band, so a false
//! `error` is much rarer than `ALPHA`.
//!
//! Only intervals with both pools count, and not those whose pool traffic
//! was counted from time before the analysis started (CloudWatch's periods
//! that hold the previous stage's weight, or the weight change itself):
//! with CloudWatch, an interval counts once every period its pools were
//! counted from began after the analysis started
//! ([`crate::LookBack::counted_from`]; without it, the window looked at).
//! CloudWatch publishes a period a `delay` after it ends and counts it
//! once, so a stage's split is checked from its first whole period on,
//! about `delay` + 2 periods after the stage began (3 minutes by default),
//! on the periods that follow.

use super::scan::{CUMULATIVE_SHARE, Scan};
use super::state::Totals;
use super::{Verdict, p_text, pct};
use crate::stats::{BernoulliMixture, Sequential};
use crate::{CheckEvidence, Interval};
use jiff::Timestamp;
use std::f64::consts::LN_2;

/// The false-error rate of the sample-ratio check when the share is within
/// the tolerance.
pub const ALPHA: f64 = 0.001;
/// How far the candidate's share may stray from the weight, relative to it.
pub const TOLERANCE: f64 = 0.25;
/// ... and at least this much, absolute (a share of 1.8% at weight 1% is fine).
pub const MIN_TOLERANCE: f64 = 0.01;
/// Requests (both pools) before the check may decide.
pub const MIN_REQUESTS: u64 = 100;

/// The alternatives of the one-sided tests, as multiples of the band's edge
/// (the upper share, or the stable pool's share for the lower test):
/// dense near the edge, where a misrouted split often lands, and a few far
/// out for gross ones.
pub const MULTIPLIERS: [f64; 6] = [1.1, 1.2, 1.35, 1.5, 2.0, 3.0];

/// The name the check's evidence carries.
pub const NAME: &str = "sample-ratio";

#[derive(Debug)]
pub(super) struct SampleRatio {
    weight: u8,
    lo: f64,
    hi: f64,
    candidate: Totals,
    stable: Totals,
    scan: Scan,
    first_start: Option<Timestamp>,
    window: Option<(Timestamp, Timestamp)>,
    /// The router's own weight, when it reported one other than `weight`.
    router_weight: Option<u8>,
    /// The latest judgment.
    observed: Option<Observed>,
    /// Why the analysis is an error, once it is.
    mismatch: Option<String>,
}

#[derive(Debug, Clone)]
struct Observed {
    candidate: u64,
    total: u64,
    p_value: f64,
    since: Option<Timestamp>,
}

impl SampleRatio {
    /// The check for a candidate at `weight` percent; `None` at 0 and 100,
    /// where there is no split to check.
    pub(super) fn new(weight: u8, planned: Option<u32>) -> Option<SampleRatio> {
        if weight == 0 || weight >= 100 {
            return None;
        }
        let w = f64::from(weight) / 100.0;
        let tolerance = (w * TOLERANCE).max(MIN_TOLERANCE);
        Some(SampleRatio {
            weight,
            lo: (w - tolerance).max(0.0),
            hi: (w + tolerance).min(1.0),
            candidate: Totals::default(),
            stable: Totals::default(),
            scan: Scan::new(planned),
            first_start: None,
            window: None,
            router_weight: None,
            observed: None,
            mismatch: None,
        })
    }

    /// Why the analysis is an error, once the mismatch is significant.
    pub(super) fn mismatch(&self) -> Option<&str> {
        self.mismatch.as_deref()
    }

    /// Counts one interval; true when it makes the mismatch significant.
    pub(super) fn observe(&mut self, index: usize, interval: &Interval) -> bool {
        if self.mismatch.is_some() {
            return false;
        }
        let first = *self.first_start.get_or_insert(interval.start);
        self.scan.open(index, interval.start);
        if let Some(w) = interval.router_weight.filter(|w| *w != self.weight) {
            self.router_weight = Some(w);
        }
        let (Some(c), Some(s)) = (&interval.candidate, &interval.stable) else { return false };
        // The look-backs that counted the pools say where their periods
        // start; another source's (CloudWatch alarms beside the ALB's
        // traffic) has no bearing on the split. Without any such mark (a
        // record from before it existed) every look-back must have begun
        // in the analysis.
        let counted: Vec<Timestamp> = interval.lookback.values().filter_map(|l| l.counted_from).collect();
        let early = match counted.is_empty() {
            true => interval.lookback.values().any(|l| l.start < first),
            false => counted.iter().any(|c| *c < first),
        };
        if early {
            return false;
        }
        self.window = Some((self.window.map_or(interval.start, |w| w.0), interval.end));
        self.candidate.add(c, false);
        self.stable.add(s, false);
        self.scan.add(Some(c), Some(s), false);
        let mut best: Option<(f64, Option<usize>, bool)> = None;
        let mut consider = |c: &Totals, s: &Totals, share: f64, which: Option<usize>| {
            if c.requests + s.requests < MIN_REQUESTS {
                return;
            }
            let test = self.test(c, s);
            let p = test.p_value() / share;
            let rejects = test.rejects(ALPHA * share);
            let better = match best {
                None => true,
                Some((q, _, r)) => (rejects && !r) || (rejects == r && p < q),
            };
            if better {
                best = Some((p, which, rejects));
            }
        };
        consider(&self.candidate, &self.stable, CUMULATIVE_SHARE, None);
        for (i, w) in self.scan.windows.iter().enumerate() {
            consider(&w.candidate, &w.stable, w.share, Some(i));
        }
        let Some((p_value, which, rejects)) = best else { return false };
        let (c, s, since) = match which {
            Some(i) => {
                let w = &self.scan.windows[i];
                (&w.candidate, &w.stable, Some(w.start))
            }
            None => (&self.candidate, &self.stable, None),
        };
        let observed = Observed { candidate: c.requests, total: c.requests + s.requests, p_value, since };
        self.observed = Some(observed.clone());
        if rejects {
            let share = observed.candidate as f64 / observed.total as f64;
            let recent =
                since.map(|t| format!(" in the last {}", seconds(interval.end.duration_since(t)))).unwrap_or_default();
            let router = self
                .router_weight
                .map(|w| format!("; the router itself reports {w}%: something else changed it"))
                .unwrap_or_default();
            self.mismatch = Some(format!(
                "sample-ratio mismatch: the weight set on the router is {}%, but the candidate received {} of the requests ({} of {}){recent}, outside {} (always-valid p = {} < {}){router}; the checks would judge other traffic than the plan's",
                self.weight,
                pct(share),
                observed.candidate,
                observed.total,
                self.band(),
                p_text(p_value.min(1.0)),
                ALPHA
            ));
        }
        rejects
    }

    /// Upper and lower one-sided tests, averaged: a test supermartingale
    /// whenever the share is within `[lo, hi]`.
    fn test(&self, c: &Totals, s: &Totals) -> Sequential {
        let n = c.requests + s.requests;
        let up = if self.hi < 1.0 {
            BernoulliMixture::with_multipliers(self.hi, &MULTIPLIERS).log_lr(c.requests, n)
        } else {
            f64::NEG_INFINITY
        };
        let down = if self.lo > 0.0 {
            BernoulliMixture::with_multipliers(1.0 - self.lo, &MULTIPLIERS).log_lr(s.requests, n)
        } else {
            f64::NEG_INFINITY
        };
        let max = up.max(down);
        let log_lr = if max.is_finite() { max + ((up - max).exp() + (down - max).exp()).ln() - LN_2 } else { max };
        Sequential { statistic: if n > 0 { c.requests as f64 / n as f64 } else { 0.0 }, log_lr }
    }

    fn band(&self) -> String {
        format!("[{}, {}]", pct(self.lo), pct(self.hi))
    }

    /// The evidence, once requests were counted.
    pub(super) fn evidence(&self) -> Option<CheckEvidence> {
        let observed = self.observed.as_ref()?;
        let share = observed.candidate as f64 / observed.total.max(1) as f64;
        let (verdict, message) = match &self.mismatch {
            Some(m) => (Verdict::Error, m.clone()),
            None => (
                Verdict::Pass,
                format!(
                    "the candidate received {} of the requests ({} of {}) at weight {}%: no evidence of a mismatch (always-valid p = {})",
                    pct(share),
                    observed.candidate,
                    observed.total,
                    self.weight,
                    p_text(observed.p_value.min(1.0))
                ),
            ),
        };
        Some(CheckEvidence {
            name: NAME.into(),
            kind: "sample_ratio".into(),
            verdict,
            observed: Some(share),
            baseline: Some(f64::from(self.weight) / 100.0),
            threshold: format!("candidate share in {} (weight {}%)", self.band(), self.weight),
            statistic: Some(share),
            p_value: Some(observed.p_value.min(1.0)),
            samples: observed.total,
            baseline_samples: None,
            window_start: observed.since.or(self.window.map(|w| w.0)),
            window_end: self.window.map(|w| w.1),
            message,
        })
    }
}

/// `0.5s`, `12s`: a window's length.
pub(super) fn seconds(d: jiff::SignedDuration) -> String {
    let s = d.as_secs_f64();
    if s < 10.0 { format!("{s:.1}s") } else { format!("{s:.0}s") }
}
