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
    let mut table = Table::new(&["check", "result", "evidence", "link"]);
    for check in checks {
        let result = match (check.passed, check.pending) {
            (true, _) => "✅ pass",
            (false, true) => "⏳ wait",
            (false, false) => "❌ block",
        };
        let link = check.link.as_deref().map(|url| format!("[view](<{url}>)")).unwrap_or_default();
        table.row(&[gha::escape_markdown(&check.name), result.to_owned(), gha::escape_markdown(&check.detail), link]);
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
        with_unit(&c.kind, c.observed),
        with_unit(&c.kind, c.baseline),
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

/// A check's value with its unit: error ratios as percentages, latencies in
/// milliseconds, other values as they are.
pub(crate) fn with_unit(kind: &str, value: Option<f64>) -> String {
    match (kind, value) {
        (_, None) => "–".into(),
        ("error_rate" | "compare_error_rate", Some(v)) => format!("{:.2}%", v * 100.0),
        ("latency" | "compare_latency", Some(v)) => format!("{v:.1} ms"),
        (_, v) => fmt_opt(v),
    }
}

/// Prints the verdict to the log: one line for the verdict and its reason,
/// one short line a check (value with its unit, limit, samples), and the
/// explanation only for a check that did not pass and did not decide (the
/// deciding one's is the reason already).
pub fn log_verdict(report: &AnalysisReport) {
    eprintln!("verdict: {}: {}", format!("{:?}", report.verdict).to_lowercase(), report.reason);
    for skipped in &report.skipped {
        eprintln!("  - {:<22} skipped: {}", skipped.name, skipped.reason);
    }
    for c in &report.checks {
        let mark = match c.verdict {
            sluice_analysis::Verdict::Pass => "✔",
            _ => "✖",
        };
        let baseline = c.baseline.map(|_| format!(" vs stable {}", with_unit(&c.kind, c.baseline))).unwrap_or_default();
        eprintln!(
            "  {mark} {:<22} {}{baseline} (limit {}, {} samples)",
            c.name,
            with_unit(&c.kind, c.observed),
            c.threshold,
            c.samples
        );
        if c.verdict != sluice_analysis::Verdict::Pass && report.decided_by.as_deref() != Some(c.name.as_str()) {
            eprintln!("      {}", c.message);
        }
    }
}
