//! The threshold checks on the candidate alone, `error_rate` and `latency`:
//! both a rate of bad events (errors, or requests slower than `max`) held
//! against a limit by the exact Bernoulli mixture test.

use super::Input;
use crate::engine::state::{CheckState, Judgment};
use crate::engine::{Step, ms, number, pct, us_to_ms};
use crate::stats::{BernoulliMixture, Sequential};
use std::time::Duration;

/// `error_rate`: the candidate's errors over its requests, at most `max`.
pub(super) fn error_rate(state: &mut CheckState, input: &Input, max: f64) -> Result<Step, String> {
    let c = input.candidate()?;
    if c.requests == 0 {
        return input.missing("candidate requests");
    }
    state.candidate.add(c);
    let (x, n) = (state.candidate.errors, state.candidate.requests);
    let rate = x as f64 / n as f64;
    let test = Sequential { statistic: rate, log_lr: BernoulliMixture::new(max).log_lr(x, n) };
    state.judgment = Judgment {
        observed: Some(rate),
        baseline: None,
        statistic: Some(test.log_lr),
        p_value: Some(test.p_value()),
        samples: n,
        enough: n >= input.spec.min_samples,
        rejecting: test.rejects(state.alpha),
        within_limit: rate <= max,
        summary: format!("error rate {} ({x} of {n} requests)", pct(rate)),
    };
    Ok(state.statistical_step())
}

/// `latency`: at most `1 - percentile/100` of the candidate's requests
/// slower than `max`.
pub(super) fn latency(state: &mut CheckState, input: &Input, percentile: f64, max: Duration) -> Result<Step, String> {
    let c = input.candidate()?;
    if c.latency.is_empty() {
        return input.missing("candidate latencies");
    }
    state.candidate.add(c);
    let hist = &state.candidate.latency;
    let n = hist.count();
    let max_us = u64::try_from(max.as_micros()).unwrap_or(u64::MAX);
    let slow = hist.count_above(max_us);
    let q = (percentile / 100.0).clamp(0.0, 1.0);
    let test = BernoulliMixture::new(1.0 - q);
    let log_lr = test.log_lr(slow, n);
    let observed = hist.quantile(q);
    let test = Sequential { statistic: log_lr, log_lr };
    state.judgment = Judgment {
        observed: observed.map(us_to_ms),
        baseline: None,
        statistic: Some(log_lr),
        p_value: Some(test.p_value()),
        samples: n,
        enough: n >= input.spec.min_samples,
        rejecting: test.rejects(state.alpha),
        within_limit: observed.is_some_and(|v| v <= max_us),
        summary: format!(
            "p{} {} ({slow} of {n} requests slower than {})",
            number(percentile),
            observed.map_or("-".into(), ms),
            humantime::format_duration(max)
        ),
    };
    Ok(state.statistical_step())
}
