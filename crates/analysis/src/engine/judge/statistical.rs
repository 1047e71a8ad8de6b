//! What the four statistical checks share: the interval's pools are added
//! to the cumulative totals and to every recent window
//! ([`crate::engine::scan`]), the check's test judges each with its share of
//! alpha, and the evidence describes the test that decided (or, while none
//! has, the cumulative one).

use super::Input;
use crate::PoolWindow;
use crate::engine::Step;
use crate::engine::scan::CUMULATIVE_SHARE;
use crate::engine::state::{CheckState, Judgment, Totals};
use crate::stats::Sequential;
use jiff::Timestamp;

/// A statistical check's test and how its figures read, on any totals
/// (the cumulative ones or a window's).
pub(super) trait Statistical {
    /// Whether the test needs latency histograms (else counts only).
    const LATENCY: bool;
    /// Enough observations in `c` (and `s`, for comparisons) for the test to
    /// decide (`min_samples`).
    fn enough(&self, c: &Totals, s: &Totals, min: u64) -> bool;
    /// The sequential test; `None` when it cannot be computed yet.
    fn test(&self, c: &Totals, s: &Totals) -> Option<Sequential>;
    /// The point estimate is within the limit.
    fn within_limit(&self, c: &Totals, s: &Totals) -> bool;
    /// What the evidence shows for these totals.
    fn figures(&self, c: &Totals, s: &Totals) -> Figures;
}

/// The figures of a statistical check on some totals.
pub(super) struct Figures {
    pub observed: Option<f64>,
    pub baseline: Option<f64>,
    pub samples: u64,
    pub baseline_samples: Option<u64>,
    /// In a few words ("error rate 0.40% (2 of 500 requests)").
    pub summary: String,
}

/// Adds the interval's pools and judges the cumulative totals and every
/// window with enough data; the check rejects when any of them rejects at
/// its share of the check's alpha.
pub(super) fn judge<K: Statistical>(
    state: &mut CheckState,
    input: &Input,
    kind: &K,
    candidate: &PoolWindow,
    stable: Option<&PoolWindow>,
) -> Step {
    add(state, Some(candidate), stable, K::LATENCY);
    let min = input.spec.min_samples;
    let alpha = state.alpha;
    let (c, s) = (&state.candidate, &state.stable);
    let cumulative = kind.test(c, s);
    let enough = kind.enough(c, s, min);
    // Always-valid p-values, each divided by its test's share of alpha, so
    // that the check rejects exactly when the smallest is at most alpha.
    let mut p_value = cumulative.map(|t| t.p_value() / CUMULATIVE_SHARE);
    let cumulative_rejects = enough && cumulative.is_some_and(|t| t.rejects(alpha * CUMULATIVE_SHARE));
    let mut decisive: Option<(usize, f64, Sequential)> = None;
    for (i, window) in state.scan.windows.iter().enumerate() {
        if !kind.enough(&window.candidate, &window.stable, min) {
            continue;
        }
        let Some(test) = kind.test(&window.candidate, &window.stable) else { continue };
        let p = test.p_value() / window.share;
        p_value = Some(p_value.map_or(p, |q| q.min(p)));
        if test.rejects(alpha * window.share) && decisive.is_none_or(|(_, best, _)| p < best) {
            decisive = Some((i, p, test));
        }
    }
    let figures = kind.figures(c, s);
    let within_limit = kind.within_limit(c, s);
    let mut judgment = Judgment {
        observed: figures.observed,
        baseline: figures.baseline,
        statistic: cumulative.map(|t| t.statistic),
        p_value: p_value.map(|p| p.min(1.0)),
        samples: figures.samples,
        baseline_samples: figures.baseline_samples,
        since: None,
        enough,
        rejecting: cumulative_rejects,
        within_limit,
        summary: figures.summary,
    };
    if let (false, Some((i, _, test))) = (cumulative_rejects, decisive) {
        // A recent window decided: its figures are the evidence, the whole
        // analysis's beside them.
        let window = &state.scan.windows[i];
        let recent = kind.figures(&window.candidate, &window.stable);
        let seconds = crate::engine::ratio::seconds(input.interval.end.duration_since(window.start));
        judgment = Judgment {
            observed: recent.observed,
            baseline: recent.baseline,
            statistic: Some(test.statistic),
            samples: recent.samples,
            baseline_samples: recent.baseline_samples,
            since: Some(window.start),
            rejecting: true,
            summary: format!(
                "{} in the last {seconds} (from {}; since the start of the analysis: {})",
                recent.summary,
                clock(window.start),
                judgment.summary
            ),
            ..judgment
        };
    }
    state.judgment = judgment;
    state.statistical_step()
}

/// Adds pools to the cumulative totals and to every open window (also when
/// the interval is not judged, e.g. stable's requests in an interval where
/// the candidate had none, so the evidence counts what was recorded).
pub(super) fn add(state: &mut CheckState, candidate: Option<&PoolWindow>, stable: Option<&PoolWindow>, latency: bool) {
    if let Some(c) = candidate {
        state.candidate.add(c, latency);
    }
    if let Some(s) = stable {
        state.stable.add(s, latency);
    }
    state.scan.add(candidate, stable, latency);
}

/// `12:04:05Z`: the time of day of a window's start.
fn clock(t: Timestamp) -> String {
    t.strftime("%H:%M:%SZ").to_string()
}
