//! A plain, aligned text table for a person at a terminal. No colour, no
//! box drawing: it reads the same piped into a file.

use std::fmt::Write;

use super::{cells, duration, outcome, percent, window_line};
use crate::report::{GroupReport, Report};

/// Rows of history shown per environment.
pub const MAX_HISTORY_ROWS: usize = 20;

/// Renders the report as text tables, one section per environment.
pub fn to_terminal(report: &Report) -> String {
    let mut out = String::new();
    let _ = render(report, &mut out);
    out
}

fn render(report: &Report, out: &mut String) -> std::fmt::Result {
    match &report.window {
        Some(w) => writeln!(out, "DORA metrics  {}  tiers: {}", window_line(w), report.tier_source)?,
        None => writeln!(out, "DORA metrics  no ledger entries in scope")?,
    }
    if let Some(partial) = &report.partial {
        writeln!(out, "PARTIAL REPORT: {partial}")?;
    }
    for env in &report.environments {
        let groups: Vec<&GroupReport> = report.groups.iter().filter(|g| g.environment == env.environment).collect();
        writeln!(out, "\nENVIRONMENT {}", one_line(&env.environment))?;
        let mut rows = Vec::new();
        let mut notes = Vec::new();
        let mut add = |name: String, m: &crate::report::Metrics, rows: &mut Vec<Vec<String>>| {
            let c = cells(m);
            let mut row = vec![name.clone()];
            for (what, cell) in [
                ("deployment frequency", &c.frequency),
                ("change lead time", &c.lead_time),
                ("change fail rate", &c.fail_rate),
                ("recovery time", &c.recovery),
                ("rework rate", &c.rework),
            ] {
                match cell {
                    Ok(s) => row.push(s.clone()),
                    Err(reason) => {
                        notes.push(format!("  * {name}, {what}: {reason}"));
                        row.push("no data *".to_owned());
                    }
                }
            }
            rows.push(row);
        };
        if groups.len() > 1 {
            add(format!("all {} apps", groups.len()), &env.metrics, &mut rows);
        }
        for g in &groups {
            add(one_line(&g.app), &g.metrics, &mut rows);
        }
        table(
            out,
            &[
                "APP",
                "DEPLOYMENT FREQUENCY",
                "LEAD TIME (MEDIAN · P90)",
                "CHANGE FAIL RATE",
                "RECOVERY (MEDIAN · P90)",
                "REWORK",
            ],
            &rows,
        )?;
        for n in notes {
            writeln!(out, "{n}")?;
        }

        let h = &env.history;
        let shown = h.rows.len().min(MAX_HISTORY_ROWS);
        write!(out, "\nHISTORY {}: {} of {} entries", one_line(&env.environment), shown, h.total)?;
        if let Some(r) = h.success_rate {
            write!(out, ", success rate {}", percent(r))?;
        }
        if let Some(d) = h.average_duration_seconds {
            write!(out, ", average duration {}", duration(d))?;
        }
        writeln!(out)?;
        if shown > 0 {
            let rows: Vec<Vec<String>> = h
                .rows
                .iter()
                .take(shown)
                .map(|r| {
                    vec![
                        r.started_at.strftime("%Y-%m-%d %H:%M").to_string(),
                        one_line(&r.app),
                        one_line(&r.version),
                        r.commit.as_deref().map(|c| c.chars().take(12).collect()).unwrap_or_default(),
                        duration(r.duration_seconds),
                        one_line(&r.strategy),
                        one_line(r.triggered_by.as_deref().unwrap_or("")),
                        format!(
                            "{}{}{}",
                            outcome(r.outcome),
                            r.failed_target.as_deref().map(|t| format!(" in {}", one_line(t))).unwrap_or_default(),
                            if r.change == sluice_core::ledger::ChangeKind::Hotfix { " (hotfix)" } else { "" }
                        ),
                        one_line(r.reason.as_deref().unwrap_or("")),
                    ]
                })
                .collect();
            table(
                out,
                &["STARTED (UTC)", "APP", "VERSION", "COMMIT", "DURATION", "STRATEGY", "BY", "OUTCOME", "REASON"],
                &rows,
            )?;
        }
    }
    for note in &report.notes {
        writeln!(out, "\nnote: {note}")?;
    }
    Ok(())
}

/// One line of at most 80 characters.
fn one_line(s: &str) -> String {
    let mut out: String = s.chars().map(|c| if c.is_control() { ' ' } else { c }).take(80).collect();
    if s.chars().count() > 80 {
        out.push('…');
    }
    out
}

/// Columns padded to their widest cell, two spaces apart; the last is not padded.
fn table(out: &mut String, headers: &[&str], rows: &[Vec<String>]) -> std::fmt::Result {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (w, c) in widths.iter_mut().zip(row) {
            *w = (*w).max(c.chars().count());
        }
    }
    let line = |out: &mut String, cells: &mut dyn Iterator<Item = &str>| -> std::fmt::Result {
        let mut s = String::new();
        for (i, c) in cells.enumerate() {
            if i > 0 {
                s.push_str("  ");
            }
            s.push_str(c);
            if i + 1 < widths.len() {
                let pad = widths[i].saturating_sub(c.chars().count());
                s.extend(std::iter::repeat_n(' ', pad));
            }
        }
        writeln!(out, "{}", s.trim_end())
    };
    line(out, &mut headers.iter().copied())?;
    for row in rows {
        line(out, &mut row.iter().map(String::as_str))?;
    }
    Ok(())
}
