//! A small, self-contained SVG of the weekly trend of each metric: five
//! stacked panels (deployments, median lead time, change fail rate, median
//! recovery time, rework rate), one line per environment (all its apps
//! pooled). Weeks without data leave a gap; nothing is drawn as 0 that was
//! not measured as 0. Written by hand: no fonts, scripts or links to load.

use std::fmt::Write;

use crate::report::{Report, WeekPoint};

const WIDTH: f64 = 760.0;
const LEFT: f64 = 64.0;
const RIGHT: f64 = 16.0;
const PANEL: f64 = 96.0;
const GAP: f64 = 34.0;
const TOP: f64 = 52.0;
const COLORS: [&str; 8] = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b", "#e377c2"];

struct Panel {
    title: &'static str,
    unit: Unit,
    value: fn(&WeekPoint) -> Option<f64>,
}

#[derive(Clone, Copy)]
enum Unit {
    Count,
    Hours,
    Percent,
}

const PANELS: [Panel; 5] = [
    Panel { title: "Deployments per week", unit: Unit::Count, value: |w| Some(w.deployments as f64) },
    Panel {
        title: "Change lead time, weekly median (hours)",
        unit: Unit::Hours,
        value: |w| w.change_lead_time_median_seconds.map(|s| s / 3600.0),
    },
    Panel { title: "Change fail rate (%)", unit: Unit::Percent, value: |w| w.change_fail_rate.map(|r| r * 100.0) },
    Panel {
        title: "Failed deployment recovery time, weekly median (hours)",
        unit: Unit::Hours,
        value: |w| w.recovery_time_median_seconds.map(|s| s / 3600.0),
    },
    Panel { title: "Deployment rework rate (%)", unit: Unit::Percent, value: |w| w.rework_rate.map(|r| r * 100.0) },
];

fn esc(s: &str) -> String {
    s.chars()
        .filter(|c| !c.is_control())
        .take(60)
        .map(|c| match c {
            '<' => "&lt;".to_owned(),
            '>' => "&gt;".to_owned(),
            '&' => "&amp;".to_owned(),
            '"' => "&quot;".to_owned(),
            c => c.to_string(),
        })
        .collect()
}

/// A round upper bound for an axis.
fn nice_max(max: f64, unit: Unit) -> f64 {
    if let Unit::Percent = unit
        && max <= 100.0
    {
        return if max <= 10.0 {
            10.0
        } else if max <= 50.0 {
            50.0
        } else {
            100.0
        };
    }
    if max <= 0.0 || !max.is_finite() {
        return 1.0;
    }
    let mag = 10f64.powf(max.log10().floor());
    for step in [1.0, 2.0, 2.5, 5.0, 10.0] {
        if step * mag >= max {
            return step * mag;
        }
    }
    10.0 * mag
}

fn label(v: f64) -> String {
    if v >= 100.0 || v.fract() == 0.0 { format!("{v:.0}") } else { format!("{v:.1}") }
}

/// Renders the weekly trend of every environment as one SVG document.
pub fn to_svg(report: &Report) -> String {
    let series: Vec<(&str, &[WeekPoint])> =
        report.environments.iter().take(COLORS.len()).map(|e| (e.environment.as_str(), e.weekly.as_slice())).collect();
    let weeks = series.iter().map(|s| s.1.len()).max().unwrap_or(0);
    let height = TOP + PANELS.len() as f64 * (PANEL + GAP) + 10.0;
    let mut out = String::new();
    let _ = writeln!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" viewBox="0 0 {WIDTH} {height}" font-family="sans-serif" font-size="11">"#
    );
    let title = match &report.window {
        Some(w) => format!(
            "DORA weekly trend, {} to {} (UTC), {}",
            w.since.strftime("%Y-%m-%d"),
            w.until.strftime("%Y-%m-%d"),
            report.tier_source
        ),
        None => "DORA weekly trend: no ledger entries".to_owned(),
    };
    let title = if report.partial.is_some() { format!("{title} (PARTIAL: not all history read)") } else { title };
    let _ = writeln!(out, "<title>{}</title>", esc(&title));
    let _ = writeln!(out, r##"<rect width="100%" height="100%" fill="#ffffff"/>"##);
    let _ = writeln!(out, r#"<text x="{LEFT}" y="18" font-size="14" font-weight="bold">{}</text>"#, esc(&title));

    // Legend.
    let mut x = LEFT;
    for (i, (name, _)) in series.iter().enumerate() {
        let _ = writeln!(
            out,
            r#"<rect x="{x}" y="28" width="10" height="10" fill="{}"/><text x="{}" y="37">{}</text>"#,
            COLORS[i],
            x + 14.0,
            esc(name)
        );
        x += 24.0 + 7.0 * name.chars().count().min(60) as f64;
    }
    if report.environments.len() > COLORS.len() {
        let _ = writeln!(
            out,
            r#"<text x="{x}" y="37">+{} more environments not drawn</text>"#,
            report.environments.len() - COLORS.len()
        );
    }

    let plot_w = WIDTH - LEFT - RIGHT;
    let x_of = |k: usize| {
        if weeks <= 1 { LEFT + plot_w / 2.0 } else { LEFT + plot_w * k as f64 / (weeks - 1) as f64 }
    };
    for (p, panel) in PANELS.iter().enumerate() {
        let top = TOP + p as f64 * (PANEL + GAP) + 16.0;
        let bottom = top + PANEL;
        let _ = writeln!(out, r#"<text x="{LEFT}" y="{}" font-weight="bold">{}</text>"#, top - 5.0, panel.title);
        let max = series.iter().flat_map(|(_, w)| w.iter().filter_map(panel.value)).fold(0.0f64, f64::max);
        let ymax = nice_max(max, panel.unit);
        let y_of = |v: f64| bottom - PANEL * (v / ymax).clamp(0.0, 1.0);
        let _ = writeln!(
            out,
            r##"<rect x="{LEFT}" y="{top}" width="{plot_w}" height="{PANEL}" fill="none" stroke="#cccccc"/>"##
        );
        let _ = writeln!(
            out,
            r##"<line x1="{LEFT}" y1="{m}" x2="{}" y2="{m}" stroke="#eeeeee"/>"##,
            LEFT + plot_w,
            m = top + PANEL / 2.0
        );
        for (v, y) in [(ymax, top + 4.0), (ymax / 2.0, top + PANEL / 2.0 + 4.0), (0.0, bottom)] {
            let _ = writeln!(out, r#"<text x="{}" y="{y}" text-anchor="end">{}</text>"#, LEFT - 4.0, label(v));
        }
        if weeks == 0 {
            let _ = writeln!(
                out,
                r##"<text x="{}" y="{}" text-anchor="middle" fill="#888888">no data</text>"##,
                LEFT + plot_w / 2.0,
                top + PANEL / 2.0
            );
            continue;
        }
        for (i, (_, points)) in series.iter().enumerate() {
            let color = COLORS[i];
            let mut run: Vec<(f64, f64)> = Vec::new();
            let flush = |run: &mut Vec<(f64, f64)>, out: &mut String| {
                match run.len() {
                    0 => {}
                    1 => {
                        let _ = writeln!(
                            out,
                            r#"<circle cx="{:.1}" cy="{:.1}" r="2.5" fill="{color}"/>"#,
                            run[0].0, run[0].1
                        );
                    }
                    _ => {
                        let pts: Vec<String> = run.iter().map(|(x, y)| format!("{x:.1},{y:.1}")).collect();
                        let _ = writeln!(
                            out,
                            r#"<polyline points="{}" fill="none" stroke="{color}" stroke-width="1.5"/>"#,
                            pts.join(" ")
                        );
                    }
                }
                run.clear();
            };
            for (k, w) in points.iter().enumerate() {
                match (panel.value)(w) {
                    Some(v) => run.push((x_of(k), y_of(v))),
                    None => flush(&mut run, &mut out),
                }
            }
            flush(&mut run, &mut out);
        }
    }
    // Dates under the last panel.
    if let Some((_, points)) = series.iter().find(|s| s.1.len() == weeks)
        && let (Some(first), Some(last)) = (points.first(), points.last())
    {
        let y = height - 6.0;
        let _ = writeln!(out, r#"<text x="{LEFT}" y="{y}">week of {}</text>"#, first.week_start);
        if weeks > 1 {
            let _ = writeln!(
                out,
                r#"<text x="{}" y="{y}" text-anchor="end">week of {}</text>"#,
                LEFT + plot_w,
                last.week_start
            );
        }
    }
    out.push_str("</svg>\n");
    out
}
