//! The Markdown report for `$GITHUB_STEP_SUMMARY`.
//!
//! GitHub refuses a step summary over 1 MiB, so the output is capped: at most
//! [`MAX_APP_ROWS`] apps and [`MAX_HISTORY_ROWS`] history rows per
//! environment, cells cut at [`MAX_CELL`] characters, and a final cut at
//! [`MARKDOWN_LIMIT`] bytes. Whatever is left out is said, with how much.

use std::fmt::Write;

use super::{Cells, cells, duration, percent, window_line};
use crate::report::{EnvironmentReport, GroupReport, HistoryRow, Report};

/// The Markdown never exceeds this many bytes (GitHub's limit is 1 MiB).
pub const MARKDOWN_LIMIT: usize = 1_000_000;
pub const MAX_APP_ROWS: usize = 200;
pub const MAX_HISTORY_ROWS: usize = 100;
pub const MAX_CELL: usize = 120;

/// Renders the report as GitHub-flavoured Markdown.
pub fn to_markdown(report: &Report) -> String {
    let mut out = String::new();
    let _ = render(report, &mut out);
    cap(out)
}

fn cap(mut out: String) -> String {
    if out.len() <= MARKDOWN_LIMIT {
        return out;
    }
    let total = out.len();
    let mut cut = MARKDOWN_LIMIT - 200;
    while !out.is_char_boundary(cut) {
        cut -= 1;
    }
    let cut = out[..cut].rfind('\n').map_or(cut, |i| i + 1);
    out.truncate(cut);
    let _ = write!(
        out,
        "\n_Report cut at {MARKDOWN_LIMIT} bytes: {} bytes left out. The JSON report has everything._\n",
        total - cut
    );
    out
}

/// A table cell: one line, no pipes or HTML, at most `MAX_CELL` characters.
fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len().min(MAX_CELL + 8));
    for (n, c) in s.chars().enumerate() {
        if n == MAX_CELL {
            out.push('…');
            break;
        }
        match c {
            '|' => out.push_str("\\|"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '\n' | '\r' | '\t' => out.push(' '),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

fn show(c: &Result<String, String>, missing: &mut Vec<String>, what: &str, who: &str) -> String {
    match c {
        Ok(s) => esc(s),
        Err(reason) => {
            missing.push(format!("{who}, {what}: {reason}"));
            "_no data_".to_owned()
        }
    }
}

fn metric_row(out: &mut String, name: &str, c: &Cells, missing: &mut Vec<String>) -> std::fmt::Result {
    let who = name.trim_matches('*');
    writeln!(
        out,
        "| {} | {} | {} | {} | {} | {} |",
        name,
        show(&c.frequency, missing, "deployment frequency", who),
        show(&c.lead_time, missing, "change lead time", who),
        show(&c.fail_rate, missing, "change fail rate", who),
        show(&c.recovery, missing, "recovery time", who),
        show(&c.rework, missing, "rework rate", who),
    )
}

fn render(report: &Report, out: &mut String) -> std::fmt::Result {
    writeln!(out, "## DORA metrics\n")?;
    match &report.window {
        Some(w) => writeln!(
            out,
            "**Window** {} · **tiers** {} · **hotfix window** {}\n",
            window_line(w),
            esc(&report.tier_source),
            duration(report.options.hotfix_window_seconds as f64)
        )?,
        None => writeln!(out, "No ledger entries in scope.\n")?,
    }
    if let Some(partial) = &report.partial {
        writeln!(out, "> [!WARNING]\n> **Partial report**: {}\n", esc(partial))?;
    }
    for env in &report.environments {
        let groups: Vec<&GroupReport> = report.groups.iter().filter(|g| g.environment == env.environment).collect();
        environment(out, env, &groups)?;
    }
    for note in &report.notes {
        writeln!(out, "> {}\n", esc(note))?;
    }
    writeln!(
        out,
        "<sub>Tier: the best {} cluster whose figure the value matches or beats (lead time and recovery by the median). \
         Rework rate has no {} tiers. Deployments are promoted attempts; rolled-back and failed attempts count in the change fail rate only.</sub>",
        esc(&report.tier_source),
        esc(&report.tier_source)
    )
}

fn environment(out: &mut String, env: &EnvironmentReport, groups: &[&GroupReport]) -> std::fmt::Result {
    writeln!(out, "### Environment `{}`\n", esc(&env.environment).replace('`', "'"))?;
    writeln!(
        out,
        "| app | deployment frequency | change lead time (median · p90) | change fail rate | recovery time (median · p90) | rework rate |"
    )?;
    writeln!(out, "|---|---|---|---|---|---|")?;
    let mut missing = Vec::new();
    if groups.len() > 1 {
        metric_row(out, &format!("**all {} apps**", groups.len()), &cells(&env.metrics), &mut missing)?;
    }
    for g in groups.iter().take(MAX_APP_ROWS) {
        metric_row(out, &esc(&g.app), &cells(&g.metrics), &mut missing)?;
    }
    writeln!(out)?;
    if groups.len() > MAX_APP_ROWS {
        writeln!(out, "_{} more apps left out; the JSON report has them._\n", groups.len() - MAX_APP_ROWS)?;
    }
    if !missing.is_empty() {
        writeln!(out, "<details><summary>No data ({})</summary>\n", missing.len())?;
        for m in missing.iter().take(MAX_APP_ROWS) {
            writeln!(out, "- {}", esc(m))?;
        }
        if missing.len() > MAX_APP_ROWS {
            writeln!(out, "- … and {} more", missing.len() - MAX_APP_ROWS)?;
        }
        writeln!(out, "\n</details>\n")?;
    }
    history(out, env)
}

fn history(out: &mut String, env: &EnvironmentReport) -> std::fmt::Result {
    let h = &env.history;
    let shown = h.rows.len().min(MAX_HISTORY_ROWS);
    let left_out = h.total - shown as u64;
    write!(out, "#### Deployment history: ")?;
    if left_out > 0 {
        write!(out, "{shown} most recent of {} entries ({left_out} left out)", h.total)?;
    } else {
        write!(out, "{} entries", h.total)?;
    }
    if let Some(r) = h.success_rate {
        write!(out, " · success rate {}", percent(r))?;
    }
    if let Some(d) = h.average_duration_seconds {
        write!(out, " · average duration {}", duration(d))?;
    }
    writeln!(out, "\n")?;
    if shown == 0 {
        return Ok(());
    }
    writeln!(
        out,
        "| started (UTC) | app | version | commit | duration | strategy | triggered by | outcome | reason |"
    )?;
    writeln!(out, "|---|---|---|---|---|---|---|---|---|")?;
    for r in h.rows.iter().take(shown) {
        row(out, r)?;
    }
    writeln!(out)
}

fn row(out: &mut String, r: &HistoryRow) -> std::fmt::Result {
    let commit = r
        .commit
        .as_deref()
        .map(|c| format!("`{}`", esc(&c.chars().take(12).collect::<String>()).replace('`', "'")))
        .unwrap_or_default();
    let outcome = super::outcome(r.outcome);
    let hotfix = if r.change == sluice_core::ledger::ChangeKind::Hotfix { " (hotfix)" } else { "" };
    let target = r.failed_target.as_deref().map(|t| format!(" in {}", esc(t))).unwrap_or_default();
    writeln!(
        out,
        "| {} | {} | {} | {} | {} | {} | {} | {}{}{} | {} |",
        r.started_at.strftime("%Y-%m-%d %H:%M"),
        esc(&r.app),
        esc(&r.version),
        commit,
        duration(r.duration_seconds),
        esc(&r.strategy),
        esc(r.triggered_by.as_deref().unwrap_or("")),
        outcome,
        target,
        hotfix,
        esc(r.reason.as_deref().unwrap_or("")),
    )
}
