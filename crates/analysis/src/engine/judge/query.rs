//! `query`: a scalar a query source answered for the check, within bounds.

use super::Input;
use crate::Reduce;
use crate::engine::state::{CheckState, Judgment};
use crate::engine::{Step, number};

pub(super) fn query(
    state: &mut CheckState,
    input: &Input,
    source: &str,
    lo: Option<f64>,
    hi: Option<f64>,
    reduce: Option<Reduce>,
) -> Result<Step, String> {
    let interval = input.interval;
    if let Some(error) = interval.source_errors.get(source) {
        return Err(format!("query source {source} failed: {error}"));
    }
    if let Some(error) = interval.query_errors.get(&input.spec.name) {
        return Err(format!("the query could not be judged: {error}"));
    }
    let value = match interval.values.get(&input.spec.name) {
        Some(Some(v)) if !v.is_nan() => *v,
        _ => return Ok(Step::NoData),
    };
    let over = reduce.map(|r| format!(" ({} over the interval)", r.name())).unwrap_or_default();
    state.answers += 1;
    let ok = lo.is_none_or(|lo| value >= lo) && hi.is_none_or(|hi| value <= hi);
    state.judgment = Judgment {
        observed: Some(value),
        samples: state.answers,
        enough: state.answers >= input.spec.min_samples,
        rejecting: !ok,
        within_limit: ok,
        summary: format!("value {}{over}", number(value)),
        ..Judgment::default()
    };
    Ok(state.deterministic_step())
}
