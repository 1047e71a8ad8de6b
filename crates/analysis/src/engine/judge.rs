//! What one interval means for one check: its data are added to the check's
//! totals and the totals judged, giving the interval's [`Step`]. One
//! function per check kind, each in its own module; they share the
//! [`Input`] helpers for data that is missing or in error.
//!
//! Never changes streaks or final verdicts (that is [`super::state`]'s
//! job) and never looks at other checks.

mod compare;
mod probe;
mod query;
mod statistical;
mod threshold;

use super::Step;
use super::state::CheckState;
use crate::{CheckKind, CheckSpec, Comparison, Interval, PoolWindow};

/// One check's view of one interval.
pub(super) struct Input<'a> {
    pub spec: &'a CheckSpec,
    pub interval: &'a Interval,
    /// A source error no query check claims, which counts against this
    /// check when its own data are missing.
    pub unclaimed: Option<&'a str>,
}

impl<'a> Input<'a> {
    /// Nothing new for the check: no data, or an error when a source failed.
    pub fn missing(&self, what: &str) -> Result<Step, String> {
        match self.unclaimed {
            Some(error) => Err(format!("no {what} ({error})")),
            None => Ok(Step::NoData),
        }
    }

    /// The candidate got no request in the interval: no traffic, or an
    /// error when a source failed.
    pub fn no_traffic(&self) -> Result<Step, String> {
        match self.unclaimed {
            Some(error) => Err(format!("no candidate requests ({error})")),
            None => Ok(Step::NoTraffic),
        }
    }

    /// The candidate's or stable's pool window, or why it is absent.
    pub fn pool(&self, pool: Option<&'a PoolWindow>, which: &str) -> Result<&'a PoolWindow, String> {
        pool.ok_or_else(|| match self.unclaimed {
            Some(error) => format!("no {which} data ({error})"),
            None => format!("no {which} data (the metric source gave none)"),
        })
    }

    pub fn candidate(&self) -> Result<&'a PoolWindow, String> {
        self.pool(self.interval.candidate.as_ref(), "candidate")
    }

    pub fn stable(&self) -> Result<&'a PoolWindow, String> {
        self.pool(self.interval.stable.as_ref(), "stable")
    }
}

/// Whether the pools' traffic of `interval` comes from CloudWatch, which
/// had no new period for it since the previous interval (it counts each
/// period once, and a period ends once a period): no pool, at least one
/// look-back that counts the pools, and none of those counted a new period
/// or failed. Nothing is missing then, so a pool check waits for the next
/// period instead of counting the interval as one without data (intervals
/// shorter than the period would otherwise run into `inconclusive_limit`
/// between two periods). Another source's look-back (alarms, a metric of
/// its own) or error has no bearing on the pools; with no source counting
/// the pools at all, nothing is waited for (the check has no data).
fn no_new_period(interval: &Interval) -> bool {
    let mut pools = interval.lookback.iter().filter(|(_, l)| l.pools).peekable();
    interval.candidate.is_none()
        && interval.stable.is_none()
        && pools.peek().is_some()
        && pools.all(|(source, l)| l.counted_from.is_none() && !interval.source_errors.contains_key(source))
}

impl CheckState {
    /// Adds the interval's data and judges the accumulated data.
    pub(super) fn judge(
        &mut self,
        spec: &CheckSpec,
        interval: &Interval,
        unclaimed: Option<&str>,
    ) -> Result<Step, String> {
        let input = Input { spec, interval, unclaimed };
        let pools =
            matches!(spec.kind, CheckKind::ErrorRate { .. } | CheckKind::Latency { .. } | CheckKind::Compare(_));
        if pools && no_new_period(interval) {
            return Ok(Step::Waiting);
        }
        match &spec.kind {
            CheckKind::ErrorRate { max } => threshold::error_rate(self, &input, *max),
            CheckKind::Latency { percentile, max } => threshold::latency(self, &input, *percentile, *max),
            CheckKind::Compare(Comparison::ErrorRate { tolerance }) => compare::error_rate(self, &input, *tolerance),
            CheckKind::Compare(Comparison::Latency { tolerance, min_difference }) => {
                compare::latency(self, &input, *tolerance, min_difference.unwrap_or_default())
            }
            CheckKind::Probe => probe::probe(self, &input),
            CheckKind::Query { source, min, max, reduce, .. } => {
                query::query(self, &input, source, *min, *max, *reduce)
            }
        }
    }
}
