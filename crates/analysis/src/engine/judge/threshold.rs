//! The threshold checks on the candidate alone, `error_rate` and `latency`:
//! both a rate of bad events (errors, or requests slower than `max`) held
//! against a limit by the exact Bernoulli mixture test.

use super::Input;
use super::statistical::{self, Figures, Statistical};
use crate::engine::state::{CheckState, Totals};
use crate::engine::{Step, ms, number, pct, us_to_ms};
use crate::stats::{BernoulliMixture, Sequential};
use std::time::Duration;

/// `error_rate`: the candidate's errors over its requests, at most `max`.
pub(super) fn error_rate(state: &mut CheckState, input: &Input, max: f64) -> Result<Step, String> {
    let c = input.candidate()?;
    if c.requests == 0 {
        return input.no_traffic();
    }
    Ok(statistical::judge(state, input, &ErrorRate { max }, c, None))
}

struct ErrorRate {
    max: f64,
}

impl Statistical for ErrorRate {
    const LATENCY: bool = false;

    fn enough(&self, c: &Totals, _: &Totals, min: u64) -> bool {
        c.requests >= min
    }

    fn test(&self, c: &Totals, _: &Totals) -> Option<Sequential> {
        let log_lr = BernoulliMixture::new(self.max).log_lr(c.errors, c.requests);
        Some(Sequential { statistic: log_lr, log_lr })
    }

    fn within_limit(&self, c: &Totals, _: &Totals) -> bool {
        c.requests > 0 && c.errors as f64 / c.requests as f64 <= self.max
    }

    fn figures(&self, c: &Totals, _: &Totals) -> Figures {
        let (x, n) = (c.errors, c.requests);
        let rate = if n > 0 { x as f64 / n as f64 } else { 0.0 };
        Figures {
            observed: Some(rate),
            baseline: None,
            samples: n,
            baseline_samples: None,
            summary: format!("error rate {} ({x} of {n} requests)", pct(rate)),
        }
    }
}

/// `latency`: at most `1 - percentile/100` of the candidate's requests
/// slower than `max`.
pub(super) fn latency(state: &mut CheckState, input: &Input, percentile: f64, max: Duration) -> Result<Step, String> {
    let c = input.candidate()?;
    if c.requests == 0 && c.latency.is_empty() {
        return input.no_traffic();
    }
    if c.latency.is_empty() {
        return input.missing("candidate latencies");
    }
    let max_us = u64::try_from(max.as_micros()).unwrap_or(u64::MAX);
    Ok(statistical::judge(state, input, &Latency { percentile, max, max_us }, c, None))
}

struct Latency {
    percentile: f64,
    max: Duration,
    max_us: u64,
}

impl Latency {
    fn quantile(&self) -> f64 {
        (self.percentile / 100.0).clamp(0.0, 1.0)
    }
}

impl Statistical for Latency {
    const LATENCY: bool = true;

    fn enough(&self, c: &Totals, _: &Totals, min: u64) -> bool {
        c.latency.count() >= min
    }

    fn test(&self, c: &Totals, _: &Totals) -> Option<Sequential> {
        let slow = c.latency.count_above(self.max_us);
        let log_lr = BernoulliMixture::new(1.0 - self.quantile()).log_lr(slow, c.latency.count());
        Some(Sequential { statistic: log_lr, log_lr })
    }

    fn within_limit(&self, c: &Totals, _: &Totals) -> bool {
        c.latency.quantile(self.quantile()).is_some_and(|v| v <= self.max_us)
    }

    fn figures(&self, c: &Totals, _: &Totals) -> Figures {
        let hist = &c.latency;
        let (n, slow) = (hist.count(), hist.count_above(self.max_us));
        let observed = hist.quantile(self.quantile());
        Figures {
            observed: observed.map(us_to_ms),
            baseline: None,
            samples: n,
            baseline_samples: None,
            summary: format!(
                "p{} {} ({slow} of {n} requests slower than {})",
                number(self.percentile),
                observed.map_or("-".into(), ms),
                humantime::format_duration(self.max)
            ),
        }
    }
}
