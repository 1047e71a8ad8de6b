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
    if report.carried_intervals > 0 {
        let n = report.carried_intervals;
        let plural = if n == 1 { "" } else { "s" };
        text.push_str(&format!(
            "\nThe first {n} interval{plural} judged are the previous stage's later half, carried over so that a \
             candidate that turned bad late in it is judged with the data since then.\n"
        ));
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
/// deciding one's is the reason already) or that passed with its value over
/// the limit as observed, not significantly. Lines longer than [`LOG_WIDTH`]
/// are wrapped at a space, indented under their start.
pub fn log_verdict(report: &AnalysisReport) {
    for line in verdict_lines(report, width(&console::Term::stderr())) {
        eprintln!("{line}");
    }
}

/// The widest line the log is printed in: GitHub's log viewer, or a laptop
/// terminal split in two.
pub(crate) const LOG_WIDTH: usize = 100;

/// The narrowest width text is wrapped to, however narrow the terminal.
const MIN_WIDTH: usize = 40;

/// The width to wrap text for `term` to: `COLUMNS` when set (as shells and
/// `COLUMNS=80 sluice status` set it), else the terminal's own width, else
/// (a CI log, a pipe) [`LOG_WIDTH`]; never wider than [`LOG_WIDTH`], which
/// reads better than a line across a wide screen, nor narrower than 40.
pub fn width(term: &console::Term) -> usize {
    let columns = std::env::var("COLUMNS").ok().and_then(|c| c.trim().parse::<usize>().ok()).filter(|&c| c > 0);
    let terminal = || term.size_checked().map(|(_rows, cols)| usize::from(cols));
    columns.or_else(terminal).unwrap_or(LOG_WIDTH).clamp(MIN_WIDTH, LOG_WIDTH)
}

/// What the analysis says of a check it passes with its value over the
/// limit as observed, but not significantly (sluice-analysis, engine state).
const BEYOND_AS_OBSERVED: &str = "beyond it as observed";

/// The lines [`log_verdict`] prints, at most `width` columns each.
fn verdict_lines(report: &AnalysisReport, width: usize) -> Vec<String> {
    let mut lines = Vec::new();
    let verdict = format!("verdict: {}: {}", format!("{:?}", report.verdict).to_lowercase(), report.reason);
    lines.extend(wrap(&verdict, 4, width));
    for skipped in &report.skipped {
        lines.extend(wrap(&format!("  - {:<22} skipped: {}", skipped.name, skipped.reason), 6, width));
    }
    for c in &report.checks {
        let mark = match c.verdict {
            sluice_analysis::Verdict::Pass => "✔",
            _ => "✖",
        };
        let baseline = c.baseline.map(|_| format!(" vs stable {}", with_unit(&c.kind, c.baseline))).unwrap_or_default();
        let line = format!(
            "  {mark} {:<22} {}{baseline} (limit {}, {} samples)",
            c.name,
            with_unit(&c.kind, c.observed),
            c.threshold,
            c.samples
        );
        lines.extend(wrap(&line, 6, width));
        // A pass beyond the limit as observed (not significantly) says so:
        // a ✔ beside a value over its limit would read as a mistake.
        let unexplained_pass = c.verdict == sluice_analysis::Verdict::Pass && c.message.contains(BEYOND_AS_OBSERVED);
        if (c.verdict != sluice_analysis::Verdict::Pass && report.decided_by.as_deref() != Some(c.name.as_str()))
            || unexplained_pass
        {
            lines.extend(wrap(&format!("      {}", c.message), 8, width));
        }
    }
    lines
}

/// `line` cut at spaces into lines of at most `width` characters, the ones
/// after the first indented by `indent`; a word longer than the width (a
/// URL) stays whole on a line of its own.
pub(crate) fn wrap(line: &str, indent: usize, width: usize) -> Vec<String> {
    // A label as wide as the line would leave no room for what follows it.
    let indent = indent.min(width / 2);
    let mut lines = Vec::new();
    let mut rest = line.to_owned();
    while rest.chars().count() > width {
        let lead = rest.len() - rest.trim_start().len();
        // The last space within the width, after the leading indentation,
        // or else the first space after it.
        let cut = rest
            .char_indices()
            .take(width + 1)
            .filter(|&(i, ch)| ch == ' ' && i > lead)
            .map(|(i, _)| i)
            .last()
            .or_else(|| rest[lead..].find(' ').map(|i| i + lead));
        let Some(cut) = cut else { break };
        let (head, tail) = rest.split_at(cut);
        lines.push(head.trim_end().to_owned());
        rest = format!("{}{}", " ".repeat(indent), tail.trim_start());
    }
    lines.push(rest);
    lines
}

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_analysis::{Analysis, Histogram, Interval, Outcome, PoolWindow, Verdict};
    use sluice_core::config::RouterConfig;

    /// `requests` requests, `errors` of them failed, latencies spread over
    /// `base_ms .. base_ms + 20ms`.
    fn pool(requests: u64, errors: u64, base_ms: u64) -> PoolWindow {
        let latency = Histogram::from_pairs((0..requests).map(|k| ((base_ms + k % 20) * 1000, 1)));
        PoolWindow { requests, errors, latency }
    }

    /// The built-in checks of the embedded router judging a candidate at
    /// 10% that fails one request in five (stable about one in six: so the
    /// comparison is over its limit as observed, not significantly) and
    /// answers 40ms slower than stable, one interval a second until they
    /// decide.
    fn failing_report() -> AnalysisReport {
        let router = RouterConfig::Local { admin_url: "http://127.0.0.1:9001".into() };
        let checks = crate::context::builtin_checks(&router, &[]).expect("the embedded router has built-in checks");
        let mut analysis = Analysis::at_weight(checks, sluice_analysis::Policy::default(), 10).planned(60);
        for i in 0..60 {
            let start = jiff::Timestamp::from_second(1_700_000_000 + i).expect("time");
            let interval = Interval {
                start,
                end: start + jiff::SignedDuration::from_secs(1),
                candidate: Some(pool(20, 4, 50)),
                stable: Some(pool(180, 32, 10)),
                probes: Vec::new(),
                values: Default::default(),
                source_errors: Default::default(),
                query_errors: Default::default(),
                lookback: Default::default(),
                router_weight: Some(10),
            };
            if let Outcome::Decided(_) = analysis.observe(interval) {
                break;
            }
        }
        analysis.finish()
    }

    /// Every line of a failing verdict fits 100 columns (the log's width in
    /// GitHub's viewer and on a laptop terminal split in two), and 80 (a
    /// terminal of its own).
    #[test]
    fn a_failing_verdict_fits_100_and_80_columns() {
        let report = failing_report();
        assert_eq!(report.verdict, Verdict::Fail, "{report:#?}");
        for (width, name) in [(100, "failing-verdict"), (80, "failing-verdict-80")] {
            let lines = verdict_lines(&report, width);
            for line in &lines {
                assert!(line.chars().count() <= width, "{} columns: {line}", line.chars().count());
            }
            // The comparison passed over its limit as observed says why.
            assert!(lines.iter().any(|l| l.contains("not significantly")), "{lines:#?}");
            insta::assert_snapshot!(name, lines.join("\n"));
        }
    }

    /// No word is lost or reordered by wrapping, and a word longer than the
    /// width (a URL) stays whole.
    #[test]
    fn wrapping_keeps_every_word() {
        let long = format!("see https://example.com/{} for more", "x".repeat(90));
        for text in ["short", "verdict: fail: check \"a\" failed: error rate 20.00% (12 of 60 requests)", long.as_str()]
        {
            for width in [40, 80, 100] {
                let lines = wrap(text, 4, width);
                let words: Vec<&str> = lines.iter().flat_map(|l| l.split_whitespace()).collect();
                assert_eq!(words, text.split_whitespace().collect::<Vec<_>>(), "{width}: {lines:#?}");
                for line in &lines {
                    let whole_word = !line.trim().contains(' ');
                    assert!(line.chars().count() <= width || whole_word, "{width}: {line}");
                }
            }
        }
    }
}
