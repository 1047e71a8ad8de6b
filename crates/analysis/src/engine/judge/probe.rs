//! `probe`: every HTTP probe of the interval must have succeeded.

use super::Input;
use crate::engine::Step;
use crate::engine::state::{CheckState, Judgment};

pub(super) fn probe(state: &mut CheckState, input: &Input) -> Result<Step, String> {
    let probes = &input.interval.probes;
    if probes.is_empty() {
        return input.missing("probe results");
    }
    let failed: Vec<_> = probes.iter().filter(|p| !p.ok).collect();
    state.probes += probes.len() as u64;
    state.probes_failed += failed.len() as u64;
    let first = failed.first().map(|p| {
        let detail = p.detail.clone().or_else(|| p.status.map(|s| format!("status {s}")));
        match detail {
            Some(d) => format!(", {} ({d})", p.name),
            None => format!(", {}", p.name),
        }
    });
    state.judgment = Judgment {
        observed: Some(state.probes_failed as f64),
        samples: state.probes,
        enough: state.probes >= input.spec.min_samples,
        rejecting: !failed.is_empty(),
        within_limit: failed.is_empty(),
        summary: if failed.is_empty() {
            format!("{} of {} probes failed", state.probes_failed, state.probes)
        } else {
            format!(
                "{} of {} probes failed in the last interval{}",
                failed.len(),
                probes.len(),
                first.unwrap_or_default()
            )
        },
        ..Judgment::default()
    };
    Ok(state.deterministic_step())
}
