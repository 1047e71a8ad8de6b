//! The comparisons of candidate with stable over the same window: error
//! rates (a two-proportion test) and latencies (a Mann-Whitney test); only
//! a worse candidate counts.

use super::Input;
use crate::engine::state::{CheckState, Judgment};
use crate::engine::{Step, ms, number, pct, us_to_ms};
use crate::stats;

/// `compare` `error_rate`: the candidate's error rate at most stable's plus
/// `tolerance`.
pub(super) fn error_rate(state: &mut CheckState, input: &Input, tolerance: f64) -> Result<Step, String> {
    let c = input.candidate()?;
    let s = input.stable()?;
    if c.requests == 0 {
        return input.missing("candidate requests");
    }
    state.candidate.add(c);
    state.stable.add(s);
    let min = input.spec.min_samples;
    let (xc, nc) = (state.candidate.errors, state.candidate.requests);
    let (xs, ns) = (state.stable.errors, state.stable.requests);
    let rc = xc as f64 / nc as f64;
    let rs = if ns > 0 { xs as f64 / ns as f64 } else { 0.0 };
    let test = stats::sequential_two_proportion(xc, nc, xs, ns, tolerance);
    state.judgment = Judgment {
        observed: Some(rc),
        baseline: (ns > 0).then_some(rs),
        statistic: test.map(|t| t.statistic),
        p_value: test.map(|t| t.p_value()),
        samples: nc,
        enough: nc >= min && ns >= min,
        rejecting: test.is_some_and(|t| t.rejects(state.alpha)),
        within_limit: ns > 0 && rc - rs <= tolerance,
        summary: format!(
            "error rate {} ({xc} of {nc}) vs stable {} ({xs} of {ns})",
            pct(rc),
            if ns > 0 { pct(rs) } else { "-".into() }
        ),
    };
    Ok(state.statistical_step())
}

/// `compare` `latency`: the candidate's latencies, divided by
/// `1 + tolerance`, not stochastically larger than stable's.
pub(super) fn latency(state: &mut CheckState, input: &Input, tolerance: f64) -> Result<Step, String> {
    let c = input.candidate()?;
    let s = input.stable()?;
    if c.latency.is_empty() {
        return input.missing("candidate latencies");
    }
    state.candidate.add(c);
    state.stable.add(s);
    let min = input.spec.min_samples;
    let (hc, hs) = (&state.candidate.latency, &state.stable.latency);
    let (nc, ns) = (hc.count(), hs.count());
    let scale = 1.0 + tolerance.max(0.0);
    let test = stats::sequential_mann_whitney(hc, hs, scale);
    let (median_c, median_s) = (hc.quantile(0.5), hs.quantile(0.5));
    let effect = test.map(|(_, mw)| mw.effect());
    state.judgment = Judgment {
        observed: median_c.map(us_to_ms),
        baseline: median_s.map(us_to_ms),
        statistic: test.map(|(t, _)| t.statistic),
        p_value: test.map(|(t, _)| t.p_value()),
        samples: nc,
        enough: nc >= min && ns >= min,
        rejecting: test.is_some_and(|(t, _)| t.rejects(state.alpha)),
        within_limit: effect.is_some_and(|e| e <= 0.5),
        summary: format!(
            "median {} vs stable {}, P(candidate/{} slower) = {} ({nc} vs {ns} requests)",
            median_c.map_or("-".into(), ms),
            median_s.map_or("-".into(), ms),
            number(scale),
            effect.map_or("-".into(), |e| format!("{e:.3}"))
        ),
    };
    Ok(state.statistical_step())
}
