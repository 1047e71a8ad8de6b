//! Renderers of a [`crate::Report`]: Markdown, plain text, SVG. Pure
//! functions of the report: they never compute a metric themselves.

pub mod markdown;
pub mod svg;
pub mod terminal;

use crate::report::{DurationStats, Frequency, Metric, Ratio, Tier, Window};

/// `3h 12m`, `45s`, `2d 4h`: two units at most, rounded to seconds (tenths
/// under a minute).
pub fn duration(seconds: f64) -> String {
    if !seconds.is_finite() {
        return "?".to_owned();
    }
    let neg = if seconds < 0.0 { "-" } else { "" };
    let s = seconds.abs();
    let two = |big: u64, bu: &str, small: u64, su: &str| {
        if small == 0 { format!("{neg}{big}{bu}") } else { format!("{neg}{big}{bu} {small}{su}") }
    };
    // Rounded to the smaller of the two units shown.
    let hours = (s / 3600.0).round() as u64;
    if hours >= 24 {
        return two(hours / 24, "d", hours % 24, "h");
    }
    let minutes = (s / 60.0).round() as u64;
    if minutes >= 60 {
        return two(minutes / 60, "h", minutes % 60, "m");
    }
    let secs = s.round() as u64;
    if secs >= 60 {
        return two(secs / 60, "m", secs % 60, "s");
    }
    let tenths = (s * 10.0).round() / 10.0;
    if tenths.fract() == 0.0 { format!("{neg}{tenths:.0}s") } else { format!("{neg}{tenths:.1}s") }
}

pub(crate) fn outcome(o: sluice_core::ledger::LedgerOutcome) -> &'static str {
    use sluice_core::ledger::LedgerOutcome;
    match o {
        LedgerOutcome::Promoted => "promoted",
        LedgerOutcome::RolledBack => "rolled back",
        LedgerOutcome::Reverted => "reverted",
        LedgerOutcome::Failed => "failed",
        LedgerOutcome::Abandoned => "abandoned",
    }
}

pub fn percent(rate: f64) -> String {
    format!("{:.1}%", rate * 100.0)
}

/// Deployments in the unit that reads best: per day, per week or per month.
pub fn frequency(f: &Frequency) -> String {
    if f.deployments == 0 {
        "no deployments".to_owned()
    } else if f.per_day >= 1.0 {
        format!("{:.1}/day", f.per_day)
    } else if f.per_week >= 1.0 {
        format!("{:.1}/week", f.per_week)
    } else {
        format!("{:.1}/month", f.per_day * 30.0)
    }
}

pub(crate) fn tier_suffix(t: Option<Tier>) -> String {
    t.map(|t| format!(" ({})", t.as_str())).unwrap_or_default()
}

pub(crate) fn window_line(w: &Window) -> String {
    format!(
        "{} → {} UTC ({} days, {} weeks)",
        w.since.strftime("%Y-%m-%d %H:%M"),
        w.until.strftime("%Y-%m-%d %H:%M"),
        trim_float(w.days),
        w.weeks
    )
}

fn trim_float(x: f64) -> String {
    if x.fract() == 0.0 { format!("{x:.0}") } else { format!("{x:.2}") }
}

/// The cell texts of the five metrics, or `Err(reason)` where there is none.
pub(crate) struct Cells {
    pub frequency: Result<String, String>,
    pub lead_time: Result<String, String>,
    pub fail_rate: Result<String, String>,
    pub recovery: Result<String, String>,
    pub rework: Result<String, String>,
}

fn cell<T>(m: &Metric<T>, show: impl Fn(&T) -> String) -> Result<String, String> {
    match &m.value {
        Some(v) => Ok(format!("{}{}", show(v), tier_suffix(m.tier))),
        None => Err(m.no_data.clone().unwrap_or_else(|| "no data".to_owned())),
    }
}

fn durations(d: &DurationStats) -> String {
    format!("{} · p90 {}", duration(d.median_seconds), duration(d.p90_seconds))
}

fn ratio(r: &Ratio) -> String {
    format!("{} ({}/{})", percent(r.rate), r.numerator, r.denominator)
}

pub(crate) fn cells(m: &crate::report::Metrics) -> Cells {
    Cells {
        frequency: cell(&m.deployment_frequency, |f| {
            format!("{} · {} of weeks", frequency(f), percent(f.share_of_weeks_with_deployment))
        }),
        lead_time: cell(&m.change_lead_time, durations),
        fail_rate: cell(&m.change_fail_rate, ratio),
        recovery: cell(&m.failed_deployment_recovery_time, durations),
        rework: cell(&m.deployment_rework_rate, ratio),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_well() {
        assert_eq!(duration(0.0), "0s");
        assert_eq!(duration(0.25), "0.3s");
        assert_eq!(duration(45.0), "45s");
        assert_eq!(duration(60.0), "1m");
        assert_eq!(duration(90.0), "1m 30s");
        assert_eq!(duration(3600.0 * 3.0 + 720.0), "3h 12m");
        assert_eq!(duration(86_400.0 + 7200.0), "1d 2h");
        assert_eq!(duration(86_400.0 * 10.0), "10d");
        assert_eq!(duration(26_250.0), "7h 18m");
        assert_eq!(duration(86_399.0), "1d");
        assert_eq!(duration(3_599.0), "1h");
        assert_eq!(duration(59.97), "1m");
    }
}
