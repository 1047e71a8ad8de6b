//! A small, self-contained SVG of the trend of each metric: five stacked
//! panels (deployments, median lead time, change fail rate, median recovery
//! time, rework rate), one series per environment (all its apps pooled), by
//! UTC day when the report carries a daily trend (a window of at most
//! [`crate::MAX_DAILY_DAYS`] days), else by UTC week.
//!
//! What it draws so that any history reads well: a time axis labelled with
//! days and months (years on a long one); the DORA 2024 tier bands behind
//! each metric that has tiers (the same boundaries as [`crate::tiers`]; the
//! rework rate has none and says so); durations in the unit their magnitude
//! calls for (seconds, minutes, hours or days, named on the axis); the part
//! of a first or last bucket outside the window hatched and its points
//! hollow, so a partial bucket does not read as a dip; environments side by
//! side within a bucket, each with its own colour, marker and dash pattern.
//!
//! It never computes a metric: every value is the report's. Buckets without
//! data leave a gap; nothing is drawn as 0 that was not measured as 0.
//! Written by hand: no fonts, scripts or links to load.

use std::fmt::Write;

use jiff::civil::Date;
use jiff::tz::TimeZone;

use crate::render::duration;
use crate::report::{Report, Tier, TrendFigures};

const WIDTH: f64 = 860.0;
const LEFT: f64 = 62.0;
/// Room on the right for the tier band labels.
const RIGHT: f64 = 122.0;
const PLOT_W: f64 = WIDTH - LEFT - RIGHT;
const PANEL: f64 = 92.0;
/// Above a panel's plot: its title.
const HEAD: f64 = 20.0;
/// Below a panel's plot: two rows of x labels.
const FOOT: f64 = 34.0;
const TOP: f64 = 70.0;
const COLORS: [&str; 8] = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b", "#e377c2"];
const DASHES: [&str; 8] = ["", "6 3", "2 2", "8 3 2 3", "4 2", "1 3", "10 3", "5 2 1 2"];
/// Above this many buckets only isolated and partial points get a marker.
const MAX_MARKED_BUCKETS: usize = 40;
/// Rough width of a character of the 11 px sans-serif text.
const CHAR_W: f64 = 6.3;

const MINUTE: f64 = 60.0;
const HOUR: f64 = 3_600.0;
const DAY: f64 = 24.0 * HOUR;
const WEEK: f64 = 7.0 * DAY;
const MONTH: f64 = 30.0 * DAY;
const DAY_MS: i64 = 86_400_000;

/// The buckets the chart is drawn in.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Granularity {
    Day,
    Week,
}

impl Granularity {
    fn noun(self) -> &'static str {
        match self {
            Granularity::Day => "day",
            Granularity::Week => "week",
        }
    }
    fn adjective(self) -> &'static str {
        match self {
            Granularity::Day => "daily",
            Granularity::Week => "weekly",
        }
    }
    fn ms(self) -> i64 {
        match self {
            Granularity::Day => DAY_MS,
            Granularity::Week => 7 * DAY_MS,
        }
    }
}

/// One bucket of one environment, whatever its granularity.
struct Pt {
    start: Date,
    /// Start of the bucket in ms.
    at: i64,
    coverage: f64,
    /// Deployments, lead time (s), fail rate (fraction), recovery time (s),
    /// rework rate (fraction).
    values: [Option<f64>; 5],
}

impl Pt {
    fn partial(&self) -> bool {
        self.coverage < 1.0
    }
}

fn ms_of(d: Date) -> Option<i64> {
    d.to_zoned(TimeZone::UTC).ok().map(|z| z.timestamp().as_millisecond())
}

/// A trend point's bucket, starting on `start`.
fn point(start: Date, f: &TrendFigures) -> Option<Pt> {
    Some(Pt {
        start,
        at: ms_of(start)?,
        coverage: f.coverage,
        values: [
            Some(f.deployments as f64),
            f.change_lead_time_median_seconds,
            f.change_fail_rate,
            f.recovery_time_median_seconds,
            f.rework_rate,
        ],
    })
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Kind {
    Count,
    Duration,
    Percent,
}

/// One DORA 2024 tier as a range of a panel's values (in seconds for
/// durations, percent for rates, deployments per bucket for counts).
#[derive(Clone, Copy, Debug)]
struct Band {
    tier: Tier,
    lo: f64,
    hi: f64,
    label: &'static str,
}

struct Panel {
    /// `{b}` is replaced by the bucket's noun, `{a}` by its adjective.
    title: &'static str,
    kind: Kind,
    index: usize,
}

const PANELS: [Panel; 5] = [
    Panel { title: "Deployments per {b}", kind: Kind::Count, index: 0 },
    Panel { title: "Change lead time, {a} median", kind: Kind::Duration, index: 1 },
    Panel { title: "Change fail rate", kind: Kind::Percent, index: 2 },
    Panel { title: "Failed deployment recovery time, {a} median", kind: Kind::Duration, index: 3 },
    Panel { title: "Deployment rework rate", kind: Kind::Percent, index: 4 },
];

/// The DORA 2024 tiers of panel `index` as value ranges; the same
/// boundaries as [`crate::tiers`]. Deployment frequency is a rate: a week
/// with 7 or more deployments is at the elite rate (daily), 1 to 6 at the
/// high one; a day with one or more is at the elite rate, and a single day
/// says nothing of the weekly and monthly tiers, so it has no band below 1.
fn bands(index: usize, g: Granularity) -> &'static [Band] {
    const INF: f64 = f64::INFINITY;
    match (index, g) {
        (0, Granularity::Week) => &[
            Band { tier: Tier::Elite, lo: 7.0, hi: INF, label: "elite: daily+" },
            Band { tier: Tier::High, lo: 1.0, hi: 7.0, label: "high: weekly+" },
            Band { tier: Tier::Medium, lo: 0.0, hi: 1.0, label: "medium or low" },
        ],
        (0, Granularity::Day) => &[Band { tier: Tier::Elite, lo: 1.0, hi: INF, label: "elite: daily+" }],
        (1, _) => &[
            Band { tier: Tier::Elite, lo: 0.0, hi: DAY, label: "elite: < 1 day" },
            Band { tier: Tier::High, lo: DAY, hi: WEEK, label: "high: ≤ 1 week" },
            Band { tier: Tier::Medium, lo: WEEK, hi: MONTH, label: "medium: ≤ 1 month" },
            Band { tier: Tier::Low, lo: MONTH, hi: INF, label: "low: > 1 month" },
        ],
        (2, _) => &[
            Band { tier: Tier::Elite, lo: 0.0, hi: 5.0, label: "elite: ≤ 5%" },
            Band { tier: Tier::High, lo: 5.0, hi: 20.0, label: "high: ≤ 20%" },
            Band { tier: Tier::Low, lo: 20.0, hi: INF, label: "low: > 20%" },
        ],
        (3, _) => &[
            Band { tier: Tier::Elite, lo: 0.0, hi: HOUR, label: "elite: < 1 hour" },
            Band { tier: Tier::High, lo: HOUR, hi: DAY, label: "high: < 1 day" },
            Band { tier: Tier::Low, lo: DAY, hi: INF, label: "low: ≥ 1 day" },
        ],
        _ => &[],
    }
}

fn band_fill(t: Tier) -> &'static str {
    match t {
        Tier::Elite => "#dcf2dc",
        Tier::High => "#ddeaf7",
        Tier::Medium => "#fbf1cf",
        Tier::Low => "#f8dede",
    }
}

/// The unit a duration axis is drawn in, chosen by the largest value.
#[derive(Clone, Copy, PartialEq, Debug)]
struct Unit {
    name: &'static str,
    short: &'static str,
    seconds: f64,
}

const SECONDS: Unit = Unit { name: "seconds", short: "s", seconds: 1.0 };
const MINUTES: Unit = Unit { name: "minutes", short: "min", seconds: MINUTE };
const HOURS: Unit = Unit { name: "hours", short: "h", seconds: HOUR };
const DAYS: Unit = Unit { name: "days", short: "d", seconds: DAY };

/// Seconds up to 2 minutes, minutes up to 2 hours, hours up to 2 days, then
/// days.
fn duration_unit(max_seconds: f64) -> Unit {
    if max_seconds < 2.0 * MINUTE {
        SECONDS
    } else if max_seconds < 2.0 * HOUR {
        MINUTES
    } else if max_seconds < 2.0 * DAY {
        HOURS
    } else {
        DAYS
    }
}

/// At most 60 characters of `s`, escaped for SVG text.
fn esc(s: &str) -> String {
    esc_n(s, 60)
}

fn esc_n(s: &str, n: usize) -> String {
    s.chars()
        .filter(|c| !c.is_control())
        .take(n)
        .map(|c| match c {
            '<' => "&lt;".to_owned(),
            '>' => "&gt;".to_owned(),
            '&' => "&amp;".to_owned(),
            '"' => "&quot;".to_owned(),
            c => c.to_string(),
        })
        .collect()
}

/// A round step and upper bound for an axis whose largest value is `max`:
/// about four steps of 1, 2, 2.5 or 5 × 10^k (whole steps for counts).
fn axis(max: f64, whole: bool) -> (f64, f64) {
    if max <= 0.0 || !max.is_finite() {
        return (0.5_f64.max(if whole { 1.0 } else { 0.0 }), 1.0);
    }
    let raw = max / 4.0;
    let mag = 10f64.powf(raw.log10().floor());
    let mut step = 10.0 * mag;
    for s in [1.0, 2.0, 2.5, 5.0] {
        if s * mag >= raw {
            step = s * mag;
            break;
        }
    }
    if whole {
        step = step.ceil().max(1.0);
    }
    let top = (max / step).ceil().max(1.0) * step;
    (step, top)
}

/// A number with at most two decimals, trailing zeros trimmed.
fn num(v: f64) -> String {
    let s = format!("{v:.2}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s == "-0" { "0".to_owned() } else { s.to_owned() }
}

const MONTHS: [&str; 12] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

fn month_name(d: Date) -> &'static str {
    MONTHS[(d.month() as usize).saturating_sub(1).min(11)]
}

/// Everything shared by the panels: the time axis and the series.
struct Chart<'r> {
    granularity: Granularity,
    series: Vec<(&'r str, Vec<Pt>)>,
    /// The time axis: from the first bucket's start to the last one's end.
    t0: i64,
    t1: i64,
    buckets: usize,
    /// The window, for the hatched part of partial buckets.
    since: Option<i64>,
    until: Option<i64>,
}

impl Chart<'_> {
    fn x(&self, ms: i64) -> f64 {
        if self.t1 <= self.t0 {
            return LEFT + PLOT_W / 2.0;
        }
        LEFT + PLOT_W * (ms - self.t0) as f64 / (self.t1 - self.t0) as f64
    }

    /// Width of one bucket in pixels.
    fn bucket_px(&self) -> f64 {
        if self.buckets == 0 { PLOT_W } else { PLOT_W / self.buckets as f64 }
    }

    /// How far environment `i` of `n` sits from the bucket's centre.
    fn offset(&self, i: usize, n: usize) -> f64 {
        if n <= 1 {
            return 0.0;
        }
        let step = (self.bucket_px() * 0.7 / n as f64).min(12.0);
        (i as f64 - (n - 1) as f64 / 2.0) * step
    }
}

/// Renders the trend of every environment as one SVG document.
pub fn to_svg(report: &Report) -> String {
    let daily = report.environments.iter().any(|e| !e.daily.is_empty());
    let granularity = if daily { Granularity::Day } else { Granularity::Week };
    let series: Vec<(&str, Vec<Pt>)> = report
        .environments
        .iter()
        .take(COLORS.len())
        .map(|e| {
            let pts: Vec<Pt> = if daily {
                e.daily.iter().filter_map(|d| point(d.day, &d.figures)).collect()
            } else {
                e.weekly.iter().filter_map(|w| point(w.week_start, &w.figures)).collect()
            };
            (e.environment.as_str(), pts)
        })
        .collect();
    let buckets = series.iter().map(|s| s.1.len()).max().unwrap_or(0);
    let longest = series.iter().find(|s| s.1.len() == buckets).map(|s| &s.1[..]).unwrap_or(&[]);
    let (t0, t1) = match (longest.first(), longest.last()) {
        (Some(f), Some(l)) => (f.at, l.at.saturating_add(granularity.ms())),
        _ => (0, 0),
    };
    let chart = Chart {
        granularity,
        series,
        t0,
        t1,
        buckets,
        since: report.window.as_ref().map(|w| w.since.as_millisecond()),
        until: report.window.as_ref().map(|w| w.until.as_millisecond()),
    };

    let mut out = String::new();
    let title = match &report.window {
        Some(w) => format!(
            "DORA {}trend, {} to {} (UTC), tiers {}",
            if buckets == 0 {
                ""
            } else if daily {
                "daily "
            } else {
                "weekly "
            },
            w.since.strftime("%Y-%m-%d %H:%M"),
            w.until.strftime("%Y-%m-%d %H:%M"),
            report.tier_source
        ),
        None => "DORA trend: no ledger entries".to_owned(),
    };
    let title = if report.partial.is_some() { format!("{title} (PARTIAL: not all history read)") } else { title };
    let _ = writeln!(out, "<title>{}</title>", esc_n(&title, 160));
    out.push_str(concat!(
        r##"<defs><pattern id="sluice-partial" width="6" height="6" patternUnits="userSpaceOnUse" patternTransform="rotate(45)">"##,
        r##"<rect width="6" height="6" fill="#ffffff" fill-opacity="0.55"/><line x1="0" y1="0" x2="0" y2="6" stroke="#9a9a9a" stroke-width="2"/></pattern></defs>"##,
        "\n"
    ));
    let _ = writeln!(out, r##"<rect width="100%" height="100%" fill="#ffffff"/>"##);
    let _ = writeln!(out, r#"<text x="{LEFT}" y="18" font-size="14" font-weight="bold">{}</text>"#, esc_n(&title, 160));
    // Below a legend of more than one row, everything moves down.
    let first = TOP + legend(&mut out, report, &chart);
    for (p, panel) in PANELS.iter().enumerate() {
        let top = first + p as f64 * (HEAD + PANEL + FOOT) + HEAD;
        draw_panel(&mut out, &chart, panel, top);
    }
    out.push_str("</svg>\n");
    let height = first + PANELS.len() as f64 * (HEAD + PANEL + FOOT) + 8.0;
    format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{WIDTH}\" height=\"{height}\" viewBox=\"0 0 {WIDTH} {height}\" font-family=\"sans-serif\" font-size=\"11\">\n{out}"
    )
}

/// Environments (colour, marker, dash; in rows as wide as the chart), then
/// the key to bands and hatching. Returns how much taller than one row of
/// environments it is.
fn legend(out: &mut String, report: &Report, chart: &Chart<'_>) -> f64 {
    const NAME: usize = 40;
    let mut x = LEFT;
    let mut y = 36.0;
    let wrap = |x: &mut f64, y: &mut f64, width: f64| {
        if *x > LEFT && *x + width > WIDTH - 8.0 {
            *x = LEFT;
            *y += 16.0;
        }
    };
    for (i, (name, _)) in chart.series.iter().enumerate() {
        let width = 36.0 + CHAR_W * name.chars().count().min(NAME) as f64;
        wrap(&mut x, &mut y, width);
        let _ = writeln!(
            out,
            r#"<line x1="{x}" y1="{}" x2="{}" y2="{}" stroke="{}" stroke-width="1.5"{} class="legend-line"/>"#,
            y - 4.0,
            x + 22.0,
            y - 4.0,
            COLORS[i],
            dash_attr(i)
        );
        marker(out, i, x + 11.0, y - 4.0, false, None);
        let _ = writeln!(out, r#"<text x="{}" y="{y}" class="legend">{}</text>"#, x + 26.0, esc_n(name, NAME));
        x += width;
    }
    if report.environments.len() > COLORS.len() {
        let more = format!("+{} more environments not drawn", report.environments.len() - COLORS.len());
        wrap(&mut x, &mut y, CHAR_W * more.len() as f64);
        let _ = writeln!(out, r#"<text x="{x}" y="{y}" class="legend-more">{more}</text>"#);
    }
    let shift = y - 36.0;
    // The key: tier bands, then partial buckets.
    let y = 54.0 + shift;
    let mut x = LEFT;
    let key = format!("{} tiers (for one app):", esc(&report.tier_source));
    let _ = writeln!(out, r##"<text x="{x}" y="{y}" fill="#444444">{key}</text>"##);
    x += 8.0 + CHAR_W * key.chars().count() as f64;
    for t in [Tier::Elite, Tier::High, Tier::Medium, Tier::Low] {
        let _ = writeln!(
            out,
            r##"<rect x="{x}" y="{}" width="12" height="10" fill="{}" stroke="#bbbbbb" class="tier-key"/><text x="{}" y="{y}" fill="#444444">{}</text>"##,
            y - 9.0,
            band_fill(t),
            x + 15.0,
            t.as_str()
        );
        x += 24.0 + CHAR_W * t.as_str().len() as f64;
    }
    x += 10.0;
    let _ = writeln!(
        out,
        r##"<rect x="{x}" y="{}" width="12" height="10" fill="url(#sluice-partial)" stroke="#bbbbbb"/><text x="{}" y="{y}" fill="#444444">outside the window: partial first or last {} (hollow, pale)</text>"##,
        y - 9.0,
        x + 15.0,
        chart.granularity.noun()
    );
    shift
}

fn dash_attr(i: usize) -> String {
    match DASHES[i % DASHES.len()] {
        "" => String::new(),
        d => format!(r#" stroke-dasharray="{d}""#),
    }
}

/// Environment `i`'s marker at (x, y); hollow for a partial bucket.
fn marker(out: &mut String, i: usize, x: f64, y: f64, hollow: bool, tip: Option<&str>) {
    let color = COLORS[i % COLORS.len()];
    let fill = if hollow { "#ffffff" } else { color };
    let class = if hollow { "point partial" } else { "point" };
    let r = 3.6;
    let shape = match i % 5 {
        0 => format!(r#"<circle cx="{x:.1}" cy="{y:.1}" r="{r}""#),
        1 => format!(r#"<rect x="{:.1}" y="{:.1}" width="{:.1}" height="{:.1}""#, x - r, y - r, 2.0 * r, 2.0 * r),
        2 => format!(
            r#"<polygon points="{:.1},{:.1} {:.1},{:.1} {:.1},{:.1}""#,
            x,
            y - r - 0.8,
            x + r + 0.6,
            y + r - 0.4,
            x - r - 0.6,
            y + r - 0.4
        ),
        3 => format!(
            r#"<polygon points="{:.1},{:.1} {:.1},{:.1} {:.1},{:.1} {:.1},{:.1}""#,
            x,
            y - r - 0.8,
            x + r + 0.8,
            y,
            x,
            y + r + 0.8,
            x - r - 0.8,
            y
        ),
        _ => format!(
            r#"<polygon points="{:.1},{:.1} {:.1},{:.1} {:.1},{:.1}""#,
            x - r - 0.6,
            y - r + 0.4,
            x + r + 0.6,
            y - r + 0.4,
            x,
            y + r + 0.8
        ),
    };
    match tip {
        Some(tip) => {
            let _ = writeln!(
                out,
                r#"{shape} fill="{fill}" stroke="{color}" stroke-width="1.4" class="{class}"><title>{}</title></{}>"#,
                esc_n(tip, 160),
                shape_tag(&shape)
            );
        }
        None => {
            let _ = writeln!(out, r#"{shape} fill="{fill}" stroke="{color}" stroke-width="1.4" class="{class}"/>"#);
        }
    }
}

fn shape_tag(shape: &str) -> &str {
    shape.trim_start_matches('<').split(' ').next().unwrap_or("g")
}

fn draw_panel(out: &mut String, chart: &Chart<'_>, panel: &Panel, top: f64) {
    let bottom = top + PANEL;
    let g = chart.granularity;
    let values = |pt: &Pt| pt.values[panel.index];
    let max = chart.series.iter().flat_map(|(_, pts)| pts.iter().filter_map(values)).fold(0.0f64, f64::max);
    let has_data = chart.series.iter().any(|(_, pts)| pts.iter().any(|p| values(p).is_some()));
    // Display units: a duration in the unit its magnitude calls for.
    let (scale, unit_name, unit_short) = match panel.kind {
        Kind::Count => (1.0, "", ""),
        Kind::Percent => (0.01, "%", "%"),
        Kind::Duration => {
            let u = duration_unit(max);
            (u.seconds, u.name, u.short)
        }
    };
    let shown = |v: f64| v / scale;
    // Rates show at least 0-10% (so 0% reads as a low value, not as the
    // whole panel); a daily count at least 0-2 (so the elite band, one or
    // more a day, shows above the bars).
    let floor = match (panel.kind, g) {
        (Kind::Percent, _) => 10.0,
        (Kind::Count, Granularity::Day) => 2.0,
        _ => 0.0,
    };
    let (step, ymax) = axis(shown(max).max(floor), panel.kind == Kind::Count);
    let ymax = if panel.kind == Kind::Percent { ymax.min(100.0) } else { ymax };
    let y_of = |v: f64| bottom - PANEL * (v / ymax).clamp(0.0, 1.0);

    let title = panel.title.replace("{b}", g.noun()).replace("{a}", g.adjective());
    let title = match panel.kind {
        Kind::Count => title,
        Kind::Percent => format!("{title} (%)"),
        Kind::Duration if has_data => format!("{title} ({unit_name})"),
        Kind::Duration => title,
    };
    let _ =
        writeln!(out, r#"<text x="{LEFT}" y="{}" font-weight="bold" class="panel-title">{}</text>"#, top - 6.0, title);

    // Tier bands behind everything, labelled on the right.
    let panel_bands = bands(panel.index, g);
    let mut labels: Vec<(f64, &str)> = Vec::new();
    if has_data {
        for b in panel_bands {
            // Bands of rates are in percent already.
            let band_shown = |v: f64| if panel.kind == Kind::Percent { v } else { shown(v) };
            let (lo, hi) = (band_shown(b.lo), band_shown(b.hi));
            if lo >= ymax {
                continue;
            }
            let (y_top, y_bottom) = (y_of(hi.min(ymax)), y_of(lo));
            let _ = writeln!(
                out,
                r#"<rect x="{LEFT}" y="{y_top:.1}" width="{PLOT_W}" height="{:.1}" fill="{}" class="tier-band {}"/>"#,
                y_bottom - y_top,
                band_fill(b.tier),
                b.tier.as_str()
            );
            if y_bottom - y_top >= 1.0 {
                labels.push(((y_top + y_bottom) / 2.0 + 4.0, b.label));
            }
        }
    }
    // Band labels beside the plot, at least a line apart: pushed down from
    // the top, then up from the bottom.
    labels.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut last = f64::NEG_INFINITY;
    for l in labels.iter_mut() {
        l.0 = l.0.max(last + 12.0);
        last = l.0;
    }
    let mut next = bottom + 15.0;
    for l in labels.iter_mut().rev() {
        l.0 = l.0.min(next - 12.0);
        next = l.0;
    }
    for (y, label) in &labels {
        let _ = writeln!(
            out,
            r##"<text x="{}" y="{y:.1}" fill="#555555" class="band-label">{}</text>"##,
            LEFT + PLOT_W + 6.0,
            esc(label)
        );
    }
    if panel_bands.is_empty() {
        let _ = writeln!(
            out,
            r##"<text x="{}" y="{}" fill="#555555" class="no-tiers">no DORA 2024</text><text x="{}" y="{}" fill="#555555">tiers for this</text><text x="{}" y="{}" fill="#555555">metric</text>"##,
            LEFT + PLOT_W + 6.0,
            top + 14.0,
            LEFT + PLOT_W + 6.0,
            top + 27.0,
            LEFT + PLOT_W + 6.0,
            top + 40.0
        );
    }

    // The hatched part of partial buckets: outside the window.
    if chart.buckets > 0 {
        let mut hatch = |from: i64, to: i64| {
            if to > from {
                let (x0, x1) = (chart.x(from), chart.x(to));
                let _ = writeln!(
                    out,
                    r#"<rect x="{x0:.1}" y="{top}" width="{:.1}" height="{PANEL}" fill="url(#sluice-partial)" class="partial-bucket"/>"#,
                    x1 - x0
                );
            }
        };
        if let Some(since) = chart.since {
            hatch(chart.t0, since.min(chart.t1));
        }
        if let Some(until) = chart.until {
            hatch(until.max(chart.t0), chart.t1);
        }
    }

    // Grid: y steps (none without data: there is nothing to measure),
    // bucket and month boundaries.
    let mut v = 0.0;
    while has_data && v <= ymax + step / 1000.0 {
        let y = y_of(v);
        if v > 0.0 {
            let _ = writeln!(
                out,
                r##"<line x1="{LEFT}" y1="{y:.1}" x2="{}" y2="{y:.1}" stroke="#000000" stroke-opacity="0.08"/>"##,
                LEFT + PLOT_W
            );
        }
        let _ = writeln!(
            out,
            r#"<text x="{}" y="{:.1}" text-anchor="end" class="y-label">{}{}</text>"#,
            LEFT - 4.0,
            y + 4.0,
            num(v),
            if v > 0.0 && !unit_short.is_empty() && unit_short != "%" {
                format!(" {unit_short}")
            } else {
                String::new()
            }
        );
        v += step;
    }
    x_axis(out, chart, top, bottom);
    let _ = writeln!(
        out,
        r##"<rect x="{LEFT}" y="{top}" width="{PLOT_W}" height="{PANEL}" fill="none" stroke="#aaaaaa" class="plot"/>"##
    );

    if chart.buckets == 0 || !has_data {
        let _ = writeln!(
            out,
            r##"<text x="{}" y="{}" text-anchor="middle" fill="#888888">no data</text>"##,
            LEFT + PLOT_W / 2.0,
            top + PANEL / 2.0
        );
        return;
    }

    let n = chart.series.len();
    let bucket_ms = g.ms();
    // The middle of the part of the bucket inside the window.
    let center = |pt: &Pt| {
        let from = chart.since.map_or(pt.at, |s| s.clamp(pt.at, pt.at + bucket_ms));
        let to = chart.until.map_or(pt.at + bucket_ms, |u| u.clamp(from, pt.at + bucket_ms));
        chart.x(from + (to - from) / 2)
    };
    let tip = |name: &str, pt: &Pt, v: f64| {
        let value = match panel.kind {
            Kind::Count => format!("{} deployments", num(v)),
            Kind::Percent => format!("{}%", num(v * 100.0)),
            Kind::Duration => duration(v),
        };
        let partial = if pt.partial() {
            format!(" (partial: {}% of the {} in the window)", (pt.coverage * 100.0).round(), g.noun())
        } else {
            String::new()
        };
        format!("{name}, {} {}: {value}{partial}", g.noun(), pt.start)
    };
    if panel.kind == Kind::Count {
        // Bars side by side within each bucket.
        let w = (chart.bucket_px() * 0.7 / n as f64).clamp(1.0, 12.0);
        for (i, (name, pts)) in chart.series.iter().enumerate() {
            let color = COLORS[i];
            for pt in pts {
                let Some(v) = values(pt) else { continue };
                if v <= 0.0 {
                    continue;
                }
                let x = center(pt) + chart.offset(i, n) - w / 2.0;
                let y = y_of(shown(v));
                let (fill_opacity, class) = if pt.partial() { ("0.35", "bar partial") } else { ("0.9", "bar") };
                let _ = writeln!(
                    out,
                    r#"<rect x="{x:.1}" y="{y:.1}" width="{w:.1}" height="{:.1}" fill="{color}" fill-opacity="{fill_opacity}" stroke="{color}" class="{class}"><title>{}</title></rect>"#,
                    bottom - y,
                    esc_n(&tip(name, pt, v), 160)
                );
            }
        }
        return;
    }
    for (i, (name, pts)) in chart.series.iter().enumerate() {
        let color = COLORS[i];
        let dx = chart.offset(i, n);
        let mut run: Vec<(f64, f64)> = Vec::new();
        let mut flush = |run: &mut Vec<(f64, f64)>| {
            if run.len() > 1 {
                let pts: Vec<String> = run.iter().map(|(x, y)| format!("{x:.1},{y:.1}")).collect();
                let _ = writeln!(
                    out,
                    r#"<polyline points="{}" fill="none" stroke="{color}" stroke-width="1.5"{} class="series"/>"#,
                    pts.join(" "),
                    dash_attr(i)
                );
            }
            run.clear();
        };
        for pt in pts {
            match values(pt) {
                Some(v) => run.push((center(pt) + dx, y_of(shown(v)))),
                None => flush(&mut run),
            }
        }
        flush(&mut run);
        // Markers: on every point of a short trend, else on isolated and
        // partial points only.
        for (k, pt) in pts.iter().enumerate() {
            let Some(v) = values(pt) else { continue };
            let isolated =
                pts.get(k.wrapping_sub(1)).and_then(values).is_none() && pts.get(k + 1).and_then(values).is_none();
            if chart.buckets <= MAX_MARKED_BUCKETS || isolated || pt.partial() {
                marker(out, i, center(pt) + dx, y_of(shown(v)), pt.partial(), Some(&tip(name, pt, v)));
            }
        }
    }
}

/// Bucket and month gridlines in the plot, and two rows of labels under it:
/// days (or Mondays) of the buckets, then months (or years).
fn x_axis(out: &mut String, chart: &Chart<'_>, top: f64, bottom: f64) {
    if chart.buckets == 0 {
        return;
    }
    let bucket_ms = chart.granularity.ms();
    let bw = chart.bucket_px();
    let row1 = bottom + 13.0;
    let row2 = bottom + 27.0;
    let longest = chart.series.iter().map(|s| &s.1).max_by_key(|p| p.len());
    let Some(pts) = longest else { return };
    // Row 1: the day of month of each bucket's start, as often as fits.
    let every = (18.0 / bw).ceil().max(1.0) as usize;
    for (k, pt) in pts.iter().enumerate() {
        let x = chart.x(pt.at);
        if k > 0 && bw >= 5.0 {
            let _ = writeln!(
                out,
                r##"<line x1="{x:.1}" y1="{top}" x2="{x:.1}" y2="{bottom}" stroke="#000000" stroke-opacity="0.06"/>"##
            );
        }
        if bw >= 5.0 {
            let _ = writeln!(
                out,
                r##"<line x1="{x:.1}" y1="{bottom}" x2="{x:.1}" y2="{}" stroke="#888888"/>"##,
                bottom + 3.0
            );
        }
        if k % every == 0 && bw * every as f64 >= 14.0 {
            let lx = match chart.granularity {
                Granularity::Day => chart.x(pt.at + bucket_ms / 2),
                Granularity::Week => x,
            };
            let _ = writeln!(
                out,
                r##"<text x="{lx:.1}" y="{row1}" text-anchor="middle" fill="#333333" class="day-label">{}</text>"##,
                pt.start.day()
            );
        }
    }
    // Row 2: months (with the year on January and the first label), each
    // centred on its part of the axis; years when months are too narrow.
    let (Some(first), Some(last)) = (pts.first(), pts.last()) else { return };
    let end_date =
        last.start.checked_add(jiff::Span::new().days(chart.granularity.ms() / DAY_MS)).unwrap_or(last.start);
    let month_px = PLOT_W * 30.0 * DAY_MS as f64 / (chart.t1 - chart.t0).max(1) as f64;
    let by_year = month_px < 24.0;
    let mut start = first.start.first_of_month();
    if by_year {
        start = Date::new(first.start.year(), 1, 1).unwrap_or(start);
    }
    let mut year_shown = false;
    while start < end_date {
        let next = if by_year {
            Date::new(start.year().saturating_add(1), 1, 1).ok()
        } else {
            start.checked_add(jiff::Span::new().months(1)).ok()
        };
        let Some(next) = next else { break };
        let (Some(a), Some(b)) = (ms_of(start), ms_of(next)) else { break };
        let (a, b) = (a.max(chart.t0), b.min(chart.t1));
        let (xa, xb) = (chart.x(a), chart.x(b));
        if a > chart.t0 {
            let _ = writeln!(
                out,
                r##"<line x1="{xa:.1}" y1="{top}" x2="{xa:.1}" y2="{}" stroke="#555555" stroke-opacity="0.45" class="month-line"/>"##,
                bottom + 18.0
            );
        }
        let text = if by_year {
            start.year().to_string()
        } else if !year_shown || start.month() == 1 {
            format!("{} {}", month_name(start), start.year())
        } else {
            month_name(start).to_owned()
        };
        let width = CHAR_W * text.len() as f64;
        let text = if xb - xa >= width + 4.0 {
            year_shown = true;
            Some(text)
        } else if !by_year && xb - xa >= CHAR_W * 3.0 + 4.0 {
            Some(month_name(start).to_owned())
        } else {
            None
        };
        if let Some(text) = text {
            let _ = writeln!(
                out,
                r##"<text x="{:.1}" y="{row2}" text-anchor="middle" fill="#222222" class="month-label">{}</text>"##,
                (xa + xb) / 2.0,
                text
            );
        }
        start = next;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tiers;

    fn tier_of(index: usize, g: Granularity, v: f64) -> Option<Tier> {
        bands(index, g).iter().find(|b| v >= b.lo && v < b.hi).map(|b| b.tier)
    }

    #[test]
    fn bands_agree_with_the_tiers() {
        for s in [0.0, 30.0, HOUR - 1.0, HOUR, 5.0 * HOUR, DAY - 1.0, DAY, 3.0 * DAY, WEEK + 1.0, MONTH + 1.0, 1e9] {
            assert_eq!(tier_of(3, Granularity::Day, s), Some(tiers::recovery_time(s)), "recovery {s}");
            // Lead time: high is "≤ 1 week" in the tiers, the band ends at
            // it; compare off the boundaries.
            if s != WEEK && s != MONTH {
                assert_eq!(tier_of(1, Granularity::Week, s), Some(tiers::change_lead_time(s)), "lead {s}");
            }
        }
        for pct in [0.0, 4.9, 5.5, 19.9, 20.5, 60.0] {
            assert_eq!(tier_of(2, Granularity::Week, pct), Some(tiers::change_fail_rate(pct / 100.0)), "{pct}%");
        }
        for per_week in [0.0, 1.0, 3.0, 6.0, 7.0, 30.0] {
            let t = tier_of(0, Granularity::Week, per_week).expect("a band");
            let want = tiers::deployment_frequency(per_week / 7.0);
            // Below one a week the band cannot tell medium from low.
            assert!(t == want || (t == Tier::Medium && want == Tier::Low), "{per_week}/week: {t:?} vs {want:?}");
        }
        assert_eq!(tier_of(0, Granularity::Day, 1.0), Some(Tier::Elite));
        assert_eq!(tier_of(0, Granularity::Day, 0.0), None);
        assert!(bands(4, Granularity::Day).is_empty() && bands(4, Granularity::Week).is_empty());
    }

    #[test]
    fn units_follow_the_magnitude() {
        assert_eq!(duration_unit(0.0), SECONDS);
        assert_eq!(duration_unit(90.0), SECONDS);
        assert_eq!(duration_unit(180.0), MINUTES);
        assert_eq!(duration_unit(3.0 * HOUR), HOURS);
        assert_eq!(duration_unit(47.0 * HOUR), HOURS);
        assert_eq!(duration_unit(3.0 * DAY), DAYS);
    }

    #[test]
    fn axes_are_round() {
        assert_eq!(axis(3.0, false), (1.0, 3.0));
        assert_eq!(axis(3.2, false), (1.0, 4.0));
        assert_eq!(axis(0.4, false), (0.1, 0.4));
        assert_eq!(axis(7.0, true), (2.0, 8.0));
        assert_eq!(axis(1.0, true), (1.0, 1.0));
        assert_eq!(axis(0.0, true), (1.0, 1.0));
        assert_eq!(axis(95.0, false), (25.0, 100.0));
        assert_eq!(num(2.5), "2.5");
        assert_eq!(num(10.0), "10");
        assert_eq!(num(0.25), "0.25");
    }
}
