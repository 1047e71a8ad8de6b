//! Markdown for `$GITHUB_STEP_SUMMARY` and the matching plain text for logs.

use sluice_analysis::{AnalysisReport, CheckEvidence};
use sluice_core::gha::{self, Table};
use sluice_core::record::{GateCheck, Record};

/// A heading line naming the deployment.
pub fn heading(step: &str, record: &Record, outcome: &str) -> String {
    format!(
        "### sluice {step}: {outcome}\n\n`{}` **{}** → **{}**{}\n\n",
        record.app,
        record.version,
        record.environment,
        record.commit.as_deref().map(|c| format!(" (commit `{}`)", &c[..c.len().min(12)])).unwrap_or_default()
    )
}

pub fn gate_table(checks: &[GateCheck]) -> String {
    let mut table = Table::new(&["check", "result", "evidence"]);
    for check in checks {
        table.row(&[check.name.as_str(), if check.passed { "✅ pass" } else { "❌ block" }, check.detail.as_str()]);
    }
    table.finish()
}

fn fmt_opt(v: Option<f64>) -> String {
    v.map(|v| match v.abs() {
        // ±Inf from a query is recorded as ±f64::MAX: keep it short.
        a if a >= 1e12 => format!("{v:.3e}"),
        a if a >= 100.0 => format!("{v:.0}"),
        _ => format!("{v:.4}"),
    })
    .unwrap_or_else(|| "–".into())
}

pub fn verdict_table(report: &AnalysisReport) -> String {
    let mut table =
        Table::new(&["check", "verdict", "observed", "baseline", "threshold", "statistic", "p", "samples", "why"]);
    for c in &report.checks {
        table.row(&evidence_row(c));
    }
    let mut text = format!("**Verdict: {:?}** — {}\n\n{}", report.verdict, report.reason, table.finish());
    for skipped in &report.skipped {
        text.push_str(&format!("\n_{}_: {}\n", gha::escape_markdown(&skipped.name), skipped.reason));
    }
    text
}

fn evidence_row(c: &CheckEvidence) -> Vec<String> {
    vec![
        c.name.clone(),
        format!("{:?}", c.verdict).to_lowercase(),
        fmt_opt(c.observed),
        fmt_opt(c.baseline),
        c.threshold.clone(),
        fmt_opt(c.statistic),
        fmt_opt(c.p_value),
        c.samples.to_string(),
        c.message.clone(),
    ]
}

/// Writes a summary, warning (not failing) when the summary file is not
/// writable: the deployment matters more than its report.
pub fn write(markdown: &str) {
    if let Err(e) = gha::summary(markdown) {
        gha::warning(&format!("could not write the step summary: {e}"));
    }
}

/// Prints the verdict's evidence to the log, one line a check.
pub fn log_verdict(report: &AnalysisReport) {
    eprintln!("verdict: {:?}: {}", report.verdict, report.reason);
    for skipped in &report.skipped {
        eprintln!("  {:<20} skipped      {}", skipped.name, skipped.reason);
    }
    for c in &report.checks {
        eprintln!(
            "  {:<20} {:<12} observed {} threshold {} samples {}: {}",
            c.name,
            format!("{:?}", c.verdict).to_lowercase(),
            fmt_opt(c.observed),
            c.threshold,
            c.samples,
            c.message
        );
    }
}
