//! The comparisons of candidate with stable over the same window: error
//! rates (a two-proportion test) and latencies (a Mann-Whitney test); only
//! a worse candidate counts.

use super::Input;
use super::statistical::{self, Figures, Statistical};
use crate::engine::state::{CheckState, Totals};
use crate::engine::{Step, ms, number, pct, us_to_ms};
use crate::stats::{self, Sequential};
use std::time::Duration;

/// `compare` `error_rate`: the candidate's error rate at most stable's plus
/// `tolerance`.
pub(super) fn error_rate(state: &mut CheckState, input: &Input, tolerance: f64) -> Result<Step, String> {
    let c = input.candidate()?;
    let s = input.stable()?;
    if c.requests == 0 {
        // Stable's requests still count: they were served in the window.
        statistical::add(state, None, Some(s), false);
        return input.no_traffic();
    }
    Ok(statistical::judge(state, input, &CompareErrors { tolerance }, c, Some(s)))
}

struct CompareErrors {
    tolerance: f64,
}

impl Statistical for CompareErrors {
    const LATENCY: bool = false;

    fn enough(&self, c: &Totals, s: &Totals, min: u64) -> bool {
        c.requests >= min && s.requests >= min
    }

    fn test(&self, c: &Totals, s: &Totals) -> Option<Sequential> {
        stats::sequential_rate_excess(c.errors, c.requests, s.errors, s.requests, self.tolerance)
    }

    fn within_limit(&self, c: &Totals, s: &Totals) -> bool {
        c.requests > 0
            && s.requests > 0
            && c.errors as f64 / c.requests as f64 - s.errors as f64 / s.requests as f64 <= self.tolerance
    }

    fn figures(&self, c: &Totals, s: &Totals) -> Figures {
        let (xc, nc) = (c.errors, c.requests);
        let (xs, ns) = (s.errors, s.requests);
        let rc = if nc > 0 { xc as f64 / nc as f64 } else { 0.0 };
        let rs = if ns > 0 { xs as f64 / ns as f64 } else { 0.0 };
        Figures {
            observed: Some(rc),
            baseline: (ns > 0).then_some(rs),
            samples: nc,
            baseline_samples: Some(ns),
            summary: format!(
                "error rate {} ({xc} of {nc}) vs stable {} ({xs} of {ns})",
                pct(rc),
                if ns > 0 { pct(rs) } else { "-".into() }
            ),
        }
    }
}

/// `compare` `latency`: the candidate's latencies, divided by
/// `1 + tolerance`, not stochastically larger than stable's.
pub(super) fn latency(
    state: &mut CheckState,
    input: &Input,
    tolerance: f64,
    min_difference: Duration,
) -> Result<Step, String> {
    let c = input.candidate()?;
    let s = input.stable()?;
    if c.requests == 0 && c.latency.is_empty() {
        statistical::add(state, None, Some(s), true);
        return input.no_traffic();
    }
    if c.latency.is_empty() {
        statistical::add(state, None, Some(s), true);
        return input.missing("candidate latencies");
    }
    let kind = CompareLatency { scale: 1.0 + tolerance.max(0.0), slack_us: min_difference.as_micros() as f64 };
    Ok(statistical::judge(state, input, &kind, c, Some(s)))
}

struct CompareLatency {
    scale: f64,
    /// `min_difference`, in microseconds.
    slack_us: f64,
}

impl Statistical for CompareLatency {
    const LATENCY: bool = true;

    fn enough(&self, c: &Totals, s: &Totals, min: u64) -> bool {
        c.latency.count() >= min && s.latency.count() >= min
    }

    fn test(&self, c: &Totals, s: &Totals) -> Option<Sequential> {
        stats::sequential_mann_whitney_allowing(&c.latency, &s.latency, self.scale, self.slack_us).map(|(t, _)| t)
    }

    fn within_limit(&self, c: &Totals, s: &Totals) -> bool {
        stats::mann_whitney_allowing(&c.latency, &s.latency, self.scale, self.slack_us)
            .is_some_and(|mw| mw.effect() <= 0.5)
    }

    fn figures(&self, c: &Totals, s: &Totals) -> Figures {
        let (hc, hs) = (&c.latency, &s.latency);
        let (nc, ns) = (hc.count(), hs.count());
        let (median_c, median_s) = (hc.quantile(0.5), hs.quantile(0.5));
        let effect = stats::mann_whitney_allowing(hc, hs, self.scale, self.slack_us).map(|mw| mw.effect());
        Figures {
            observed: median_c.map(us_to_ms),
            baseline: median_s.map(us_to_ms),
            samples: nc,
            baseline_samples: Some(ns),
            summary: format!(
                "median {} vs stable {}, P(candidate/{} slower) = {} ({nc} vs {ns} requests)",
                median_c.map_or("-".into(), ms),
                median_s.map_or("-".into(), ms),
                number(self.scale),
                effect.map_or("-".into(), |e| format!("{e:.3}"))
            ),
        }
    }
}
