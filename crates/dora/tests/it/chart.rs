//! The SVG chart, read back as XML: daily buckets for a short window, units
//! by magnitude, partial buckets marked, tier bands, environments that do
//! not hide each other, month labels.

use std::collections::BTreeMap;

use jiff::{SignedDuration, Timestamp};
use quick_xml::XmlVersion;
use quick_xml::events::{BytesStart, Event};
use sluice_core::ledger::LedgerEntry;
use sluice_core::ledger::LedgerOutcome::{Promoted, RolledBack};
use sluice_dora::{Filter, Options, compute, to_svg};

use crate::common::{e, ts};
use crate::hand;

/// One element of the SVG: its name, attributes, text, and the text of its
/// `<title>` child (a tooltip).
#[derive(Debug, Default)]
pub(crate) struct El {
    name: String,
    attrs: BTreeMap<String, String>,
    text: String,
    tip: String,
}

impl El {
    fn attr(&self, key: &str) -> &str {
        self.attrs.get(key).map(String::as_str).unwrap_or("")
    }
    fn num(&self, key: &str) -> f64 {
        self.attr(key).parse().unwrap_or_else(|_| panic!("{} has a numeric {key}: {self:?}", self.name))
    }
    fn class(&self) -> &str {
        self.attr("class")
    }
    fn has_class(&self, c: &str) -> bool {
        self.class().split(' ').any(|x| x == c)
    }
    /// The x of a marker's centre.
    fn cx(&self) -> f64 {
        match self.name.as_str() {
            "circle" => self.num("cx"),
            "rect" => self.num("x") + self.num("width") / 2.0,
            _ => self.polygon_mid(0),
        }
    }
    /// The y of a marker's centre.
    fn cy(&self) -> f64 {
        match self.name.as_str() {
            "circle" => self.num("cy"),
            "rect" => self.num("y") + self.num("height") / 2.0,
            _ => self.polygon_mid(1),
        }
    }
    /// The middle of a polygon's extent along axis `k` (0 = x, 1 = y).
    fn polygon_mid(&self, k: usize) -> f64 {
        let vs: Vec<f64> = self.attr("points").split(' ').filter_map(|p| p.split(',').nth(k)?.parse().ok()).collect();
        (vs.iter().copied().fold(f64::MAX, f64::min) + vs.iter().copied().fold(f64::MIN, f64::max)) / 2.0
    }
}

fn element(e: &BytesStart<'_>) -> El {
    let mut el = El { name: e.name().into_inner().to_owned(), ..El::default() };
    for a in e.attributes() {
        let a = a.expect("well-formed attribute");
        let value = a.normalized_value(XmlVersion::Implicit1_0).expect("escaped attribute");
        el.attrs.insert(a.key.into_inner().to_owned(), value.into_owned());
    }
    el
}

/// Text of the open element (and of its parent, for a `<title>`).
fn append(els: &mut [El], open: &[usize], text: &str) {
    if let Some(&top) = open.last() {
        els[top].text.push_str(text);
        if els[top].name == "title"
            && let Some(&parent) = open.iter().rev().nth(1)
        {
            els[parent].tip.push_str(text);
        }
    }
}

/// Every element, in document order; panics unless the SVG is well-formed.
pub(crate) fn parse(svg: &str) -> Vec<El> {
    let mut reader = quick_xml::Reader::from_str(svg);
    let mut els: Vec<El> = Vec::new();
    let mut open: Vec<usize> = Vec::new();
    loop {
        match reader.read_event().unwrap_or_else(|err| panic!("the SVG is well-formed XML: {err}")) {
            Event::Start(s) => {
                els.push(element(&s));
                open.push(els.len() - 1);
            }
            Event::Empty(s) => els.push(element(&s)),
            Event::End(_) => {
                open.pop().expect("balanced tags");
            }
            Event::Text(t) => append(&mut els, &open, &t.xml_content(XmlVersion::Implicit1_0)),
            Event::GeneralRef(r) => {
                let text = match r.as_ref() as &str {
                    "lt" => "<",
                    "gt" => ">",
                    "amp" => "&",
                    "quot" => "\"",
                    other => panic!("an unknown entity {other}"),
                };
                append(&mut els, &open, text);
            }
            Event::Eof => break,
            _ => {}
        }
    }
    assert!(open.is_empty(), "every element is closed");
    els
}

/// The plot frames, top to bottom: (top, bottom) of each panel.
fn plots(els: &[El]) -> Vec<(f64, f64)> {
    els.iter().filter(|e| e.has_class("plot")).map(|e| (e.num("y"), e.num("y") + e.num("height"))).collect()
}

/// The index of the panel holding y.
fn panel_of(els: &[El], y: f64) -> usize {
    plots(els).iter().position(|(t, b)| y >= t - 6.0 && y <= b + 6.0).unwrap_or_else(|| panic!("y {y} in a panel"))
}

fn panel_titles(els: &[El]) -> Vec<&str> {
    els.iter().filter(|e| e.has_class("panel-title")).map(|e| e.text.as_str()).collect()
}

/// Markers (points) of panel `p`.
fn points(els: &[El], p: usize) -> Vec<&El> {
    els.iter().filter(|e| e.has_class("point") && !e.tip.is_empty()).filter(|e| panel_of(els, e.cy()) == p).collect()
}

/// Tier bands of panel `p`: (tier, top, bottom).
fn bands(els: &[El], p: usize) -> Vec<(String, f64, f64)> {
    els.iter()
        .filter(|e| e.has_class("tier-band"))
        .filter(|e| panel_of(els, e.num("y") + e.num("height") / 2.0) == p)
        .map(|e| {
            let tier = e.class().split(' ').nth(1).unwrap_or("").to_owned();
            (tier, e.num("y"), e.num("y") + e.num("height"))
        })
        .collect()
}

/// The y of the tick labelled `label` in panel `p` (the text sits 4 px
/// under its line).
fn tick_y(els: &[El], p: usize, label: &str) -> f64 {
    els.iter()
        .filter(|e| e.has_class("y-label") && e.text == label)
        .map(|e| e.num("y") - 4.0)
        .find(|&y| panel_of(els, y) == p)
        .unwrap_or_else(|| panic!("tick {label} in panel {p}"))
}

fn window(since: &str, until: &str) -> Options {
    Options {
        filter: Filter { since: Some(ts(since)), until: Some(ts(until)), ..Filter::default() },
        environment_order: vec!["dev".into(), "tst".into(), "prd".into()],
        ..Options::default()
    }
}

/// The demo-like week: three releases through dev, tst and prd, v3 rolled
/// back in dev after 3 minutes; the window ends at 14:30, a week back.
fn week() -> (Vec<LedgerEntry>, Options) {
    let d = |id: &str, env: &str, o, start: &str, mins: i64, commit: &str| {
        let s = ts(start);
        let f = (s + SignedDuration::from_mins(mins)).to_string();
        e(&format!("{id}-{env}"), "shop", env, o, start, &f).commit(id, commit).done()
    };
    let entries = vec![
        d("v1", "dev", Promoted, "2026-11-20T16:00:00Z", 12, "2026-11-20T09:00:00Z"),
        d("v1", "tst", Promoted, "2026-11-21T10:00:00Z", 14, "2026-11-20T09:00:00Z"),
        d("v1", "prd", Promoted, "2026-11-23T11:00:00Z", 25, "2026-11-20T09:00:00Z"),
        d("v2", "dev", Promoted, "2026-11-24T10:00:00Z", 11, "2026-11-24T08:20:00Z"),
        d("v2", "tst", Promoted, "2026-11-24T15:00:00Z", 13, "2026-11-24T08:20:00Z"),
        d("v2", "prd", Promoted, "2026-11-25T10:00:00Z", 26, "2026-11-24T08:20:00Z"),
        d("v3", "dev", RolledBack, "2026-11-27T09:00:00Z", 3, "2026-11-27T08:00:00Z"),
    ];
    (entries, window("2026-11-20T14:30:00Z", "2026-11-27T14:30:00Z"))
}

/// The demo's own run: v2 into dev, tst and prd within minutes of each
/// other, the same commits, so the same lead time.
fn demo_day() -> (Vec<LedgerEntry>, Options) {
    let d = |env: &str, start: &str, end: &str| {
        e(&format!("v2-{env}"), "shop", env, Promoted, start, end).commit("c1", "2026-11-27T11:30:00Z").done()
    };
    let entries = vec![
        d("dev", "2026-11-27T14:30:00Z", "2026-11-27T14:31:00Z"),
        d("tst", "2026-11-27T14:30:00Z", "2026-11-27T14:31:00Z"),
        d("prd", "2026-11-27T14:30:00Z", "2026-11-27T14:31:00Z"),
    ];
    (entries, window("2026-11-27T00:00:00Z", "2026-11-28T00:00:00Z"))
}

/// A deployment in prd every day at 10:00 for `days` days from `since`
/// (midnight), each shipping a commit from 08:00, and a rollback of
/// `recovery_mins` every 10th day.
fn daily_history(since: &str, days: i64, recovery_mins: i64) -> Vec<LedgerEntry> {
    let start = ts(since);
    let mut out = Vec::new();
    for k in 0..days {
        let at = |h: i64, m: i64| -> Timestamp { start + SignedDuration::from_mins(k * 1440 + h * 60 + m) };
        let (s, f, c) = (at(10, 0), at(10, 20), at(8, 0));
        out.push(
            e(&format!("d{k}"), "shop", "prd", Promoted, &s.to_string(), &f.to_string())
                .commit(&format!("c{k}"), &c.to_string())
                .done(),
        );
        if k % 10 == 0 {
            let (s, f) = (at(12, 0), at(12, recovery_mins));
            out.push(e(&format!("r{k}"), "shop", "prd", RolledBack, &s.to_string(), &f.to_string()).done());
        }
    }
    out
}

#[test]
fn a_short_window_is_drawn_by_day_a_long_one_by_week() {
    let (entries, opts) = week();
    let r = compute(&entries, &opts);
    assert!(r.environments.iter().all(|e| e.daily.len() == 8));
    let els = parse(&to_svg(&r));
    assert!(els.iter().any(|e| e.name == "text" && e.text.starts_with("DORA daily trend")));
    assert_eq!(panel_titles(&els)[0], "Deployments per day");
    // One label per day under each of the five panels: the 20th to the 27th.
    let days: Vec<&str> = els.iter().filter(|e| e.has_class("day-label")).map(|e| e.text.as_str()).collect();
    assert_eq!(&days[..8], ["20", "21", "22", "23", "24", "25", "26", "27"]);
    assert_eq!(days.len(), 40);
    // Deployments are bars, one per environment and day with any: 6 promotions.
    assert_eq!(els.iter().filter(|e| e.has_class("bar")).count(), 6);

    // 90 days: by week, with a label on each Monday.
    let r =
        compute(daily_history("2026-08-01T00:00:00Z", 120, 5), &window("2026-08-29T14:30:00Z", "2026-11-27T14:30:00Z"));
    assert!(r.environments.iter().all(|e| e.daily.is_empty() && e.weekly.len() == 14));
    let els = parse(&to_svg(&r));
    assert_eq!(panel_titles(&els)[0], "Deployments per week");
    assert!(panel_titles(&els)[1].contains("weekly median"));
    let mondays: Vec<&str> =
        els.iter().filter(|e| e.has_class("day-label")).take(14).map(|e| e.text.as_str()).collect();
    assert_eq!(&mondays[..5], ["24", "31", "7", "14", "21"]);
}

#[test]
fn durations_are_drawn_in_the_unit_their_size_calls_for() {
    let cases =
        [(1, "seconds", "60 s"), (3, "minutes", "3 min"), (300, "hours", "6 h"), (2 * 1440 + 600, "days", "3 d")];
    for (mins, unit, top_tick) in cases {
        let r = compute(
            daily_history("2026-11-01T00:00:00Z", 14, mins),
            &window("2026-11-01T00:00:00Z", "2026-11-15T00:00:00Z"),
        );
        let els = parse(&to_svg(&r));
        let title = panel_titles(&els)[3];
        assert_eq!(title, format!("Failed deployment recovery time, daily median ({unit})"), "{mins} min");
        tick_y(&els, 3, top_tick);
    }
    // 40 s is seconds; the lead time of 2 h 20 min is in hours.
    let mut entries = daily_history("2026-11-01T00:00:00Z", 14, 0);
    for x in &mut entries {
        if x.outcome == RolledBack {
            x.finished_at = x.started_at + SignedDuration::from_secs(40);
        }
    }
    let els = parse(&to_svg(&compute(&entries, &window("2026-11-01T00:00:00Z", "2026-11-15T00:00:00Z"))));
    assert_eq!(panel_titles(&els)[3], "Failed deployment recovery time, daily median (seconds)");
    tick_y(&els, 3, "40 s");
    assert_eq!(panel_titles(&els)[1], "Change lead time, daily median (hours)");
    // The demo-like week: a 3-minute recovery reads as 3 minutes, not 0.0 hours.
    let (entries, opts) = week();
    let els = parse(&to_svg(&compute(&entries, &opts)));
    assert!(panel_titles(&els)[3].ends_with("(minutes)"));
    let recovery = points(&els, 3);
    assert_eq!(recovery.len(), 1);
    assert!(recovery[0].tip.ends_with(": 3m (partial: 60% of the day in the window)"), "{}", recovery[0].tip);
    assert!((recovery[0].cy() - tick_y(&els, 3, "3 min")).abs() < 0.2);
}

#[test]
fn partial_buckets_are_hatched_and_their_points_hollow() {
    let (entries, opts) = week();
    let els = parse(&to_svg(&compute(&entries, &opts)));
    // The first day (from 14:30) and the last (to 14:30), in each panel.
    let hatched: Vec<&El> = els.iter().filter(|e| e.has_class("partial-bucket")).collect();
    assert_eq!(hatched.len(), 10);
    assert!(hatched.iter().all(|h| h.attr("fill") == "url(#sluice-partial)" && h.num("width") > 10.0));
    for p in 0..5 {
        let in_panel: Vec<&&El> = hatched.iter().filter(|h| panel_of(&els, h.num("y") + 1.0) == p).collect();
        assert_eq!(in_panel.len(), 2, "panel {p}");
    }
    // Points of the partial days are hollow and say so; the others are filled.
    let lead = points(&els, 1);
    assert_eq!(lead.len(), 6);
    for m in &lead {
        let partial = m.tip.contains("day 2026-11-20") || m.tip.contains("day 2026-11-27");
        assert_eq!(m.has_class("partial"), partial, "{}", m.tip);
        assert_eq!(m.attr("fill") == "#ffffff", partial, "{}", m.tip);
        assert_eq!(m.tip.contains("(partial: "), partial, "{}", m.tip);
    }
    assert!(lead.iter().any(|m| m.tip.contains("(partial: 40% of the day in the window)")));
    // Pale bars for the partial days' deployments.
    let bars: Vec<&El> = els.iter().filter(|e| e.has_class("bar")).collect();
    assert_eq!(bars.iter().filter(|b| b.has_class("partial")).count(), 1);
    assert!(bars.iter().all(|b| (b.attr("fill-opacity") == "0.35") == b.has_class("partial")));
    // The key says what the hatching means.
    assert!(els.iter().any(|e| e.text.starts_with("outside the window: partial first or last day")));

    // A window of whole days has nothing hatched and nothing hollow.
    let els = parse(&to_svg(&compute(hand::history(), &hand::window())));
    assert!(!els.iter().any(|e| e.has_class("partial-bucket") || e.has_class("partial")));
}

#[test]
fn tier_bands_sit_behind_each_metric_that_has_tiers() {
    let (entries, opts) = week();
    let els = parse(&to_svg(&compute(&entries, &opts)));
    let tiers = |p: usize| bands(&els, p).into_iter().map(|b| b.0).collect::<Vec<_>>();
    // A day with a deployment is at the elite rate.
    assert_eq!(tiers(0), ["elite"]);
    assert_eq!(tiers(1), ["elite", "high"]);
    assert_eq!(tiers(2), ["elite", "high", "low"]);
    assert_eq!(tiers(3), ["elite"]);
    assert!(tiers(4).is_empty());
    assert!(els.iter().any(|e| e.has_class("no-tiers") && e.text == "no DORA 2024"));
    // Where the bands end: lead time elite under 1 day, high above it.
    let lead = bands(&els, 1);
    let one_day = tick_y(&els, 1, "1 d");
    assert!((lead[0].1 - one_day).abs() < 0.2 && (lead[1].2 - one_day).abs() < 0.2, "{lead:?} vs {one_day}");
    // A 3-minute recovery: the elite band (< 1 hour) fills the panel.
    let (top, bottom) = plots(&els)[3];
    let rec = &bands(&els, 3)[0];
    assert!((rec.1 - top).abs() < 0.2 && (rec.2 - bottom).abs() < 0.2);
    // Change fail rate: elite to 5%, high to 20%, low above.
    let cfr = bands(&els, 2);
    // The dev rollback of the last day is 100%.
    let (y0, y100) = (tick_y(&els, 2, "0"), tick_y(&els, 2, "100"));
    let (y5, y20) = (y0 + (y100 - y0) * 0.05, y0 + (y100 - y0) * 0.2);
    assert!((cfr[0].1 - y5).abs() < 0.2 && (cfr[1].1 - y20).abs() < 0.2 && (cfr[2].2 - y20).abs() < 0.2, "{cfr:?}");
    // Each band is labelled beside the plot.
    let labels: Vec<&str> = els.iter().filter(|e| e.has_class("band-label")).map(|e| e.text.as_str()).collect();
    for l in [
        "elite: daily+",
        "elite: < 1 day",
        "high: ≤ 1 week",
        "elite: ≤ 5%",
        "high: ≤ 20%",
        "low: > 20%",
        "elite: < 1 hour",
    ] {
        assert!(labels.contains(&l), "{l} in {labels:?}");
    }
}

#[test]
fn environments_side_by_side_do_not_hide_each_other() {
    let (entries, opts) = demo_day();
    let r = compute(&entries, &opts);
    let els = parse(&to_svg(&r));
    let legend: Vec<&str> = els.iter().filter(|e| e.has_class("legend")).map(|e| e.text.as_str()).collect();
    assert_eq!(legend, ["dev", "tst", "prd"]);
    // The same lead time in the same bucket: three markers, apart, each its own shape and colour.
    let lead = points(&els, 1);
    assert_eq!(lead.len(), 3);
    let mut xs: Vec<f64> = lead.iter().map(|m| m.cx()).collect();
    xs.sort_by(f64::total_cmp);
    assert!(xs.windows(2).all(|w| w[1] - w[0] >= 8.0), "{xs:?}");
    let shapes: std::collections::BTreeSet<String> =
        lead.iter().map(|m| format!("{}{}", m.name, m.attr("points").split(' ').count())).collect();
    assert_eq!(shapes.len(), 3);
    let colours: std::collections::BTreeSet<&str> = lead.iter().map(|m| m.attr("stroke")).collect();
    assert_eq!(colours.len(), 3);
    for (m, env) in lead.iter().zip(["dev", "tst", "prd"]) {
        assert!(m.tip.starts_with(env), "{} for {env}", m.tip);
    }
    // Their deployment bars do not overlap.
    let mut bars: Vec<(f64, f64)> =
        els.iter().filter(|e| e.has_class("bar")).map(|b| (b.num("x"), b.num("x") + b.num("width"))).collect();
    bars.sort_by(|a, b| a.0.total_cmp(&b.0));
    assert_eq!(bars.len(), 3);
    assert!(bars.windows(2).all(|w| w[1].0 >= w[0].1 - 0.01), "{bars:?}");
    // One dash pattern per environment, in the legend and on its lines.
    let dashes: Vec<&str> =
        els.iter().filter(|e| e.has_class("legend-line")).map(|e| e.attr("stroke-dasharray")).collect();
    assert_eq!(dashes.len(), 3);
    assert!(dashes[0] != dashes[1] && dashes[1] != dashes[2] && dashes[0] != dashes[2], "{dashes:?}");
    let (entries, opts) = week();
    let mut more = entries;
    more.extend(daily_history("2026-11-20T00:00:00Z", 8, 3));
    let els = parse(&to_svg(&compute(&more, &opts)));
    let lines: Vec<&El> = els.iter().filter(|e| e.has_class("series")).collect();
    assert!(!lines.is_empty() && lines.iter().all(|l| l.attr("stroke-dasharray") == dashes[2]));
}

#[test]
fn months_label_the_axis_of_any_window() {
    let month_labels = |els: &[El]| -> Vec<String> {
        els.iter().filter(|e| e.has_class("month-label")).map(|e| e.text.clone()).collect()
    };
    // 90 days: the months, the year once.
    let r =
        compute(daily_history("2026-08-01T00:00:00Z", 120, 5), &window("2026-08-29T14:30:00Z", "2026-11-27T14:30:00Z"));
    let els = parse(&to_svg(&r));
    let labels = month_labels(&els);
    let first_panel: Vec<&str> = labels.iter().take(4).map(String::as_str).collect();
    assert!(
        first_panel == ["Aug", "Sep 2026", "Oct", "Nov"] || first_panel == ["Aug 2026", "Sep", "Oct", "Nov"],
        "{labels:?}"
    );
    assert_eq!(els.iter().filter(|e| e.has_class("month-line")).count(), 5 * 3);
    // A year: every month, January with its year.
    let r =
        compute(daily_history("2025-11-20T00:00:00Z", 380, 5), &window("2025-11-27T14:30:00Z", "2026-11-27T14:30:00Z"));
    let labels = month_labels(&parse(&to_svg(&r)));
    let first_panel: Vec<&str> = labels.iter().take(13).map(String::as_str).collect();
    assert_eq!(first_panel[0], "Dec 2025");
    assert!(
        first_panel.contains(&"Jan 2026") && first_panel.contains(&"Jun") && first_panel.contains(&"Nov"),
        "{first_panel:?}"
    );
    // Three years: the years.
    let r =
        compute(daily_history("2024-01-01T00:00:00Z", 20, 5), &window("2024-01-01T00:00:00Z", "2026-12-31T00:00:00Z"));
    let labels = month_labels(&parse(&to_svg(&r)));
    assert_eq!(&labels[..3], ["2024", "2025", "2026"]);
    // Two weeks by day: the month under the days.
    let labels = month_labels(&parse(&to_svg(&compute(hand::history(), &hand::window()))));
    assert_eq!(labels[0], "Jan 2024");
}

#[test]
fn a_long_legend_wraps_and_says_what_it_leaves_out() {
    let (entries, opts) = demo_day();
    let one_row = plots(&parse(&to_svg(&compute(&entries, &opts))))[0].0;
    let mut many = Vec::new();
    for k in 0..10 {
        for x in &entries {
            let mut x = x.clone();
            x.environment = format!("{}-eu-central-{k}-staging-canary", x.environment);
            many.push(x);
        }
    }
    let opts = Options { environment_order: Vec::new(), ..opts };
    let els = parse(&to_svg(&compute(&many, &opts)));
    let legend: Vec<&El> = els.iter().filter(|e| e.has_class("legend")).collect();
    assert_eq!(legend.len(), 8);
    let rows: std::collections::BTreeSet<String> = legend.iter().map(|e| e.attr("y").to_owned()).collect();
    assert!(rows.len() >= 2, "{rows:?}");
    // No name runs off the right edge (at ~6.3 px a character).
    let width: f64 = els[0].num("width");
    assert!(legend.iter().all(|e| e.num("x") + 6.3 * e.text.chars().count() as f64 <= width), "{legend:?}");
    let more = els.iter().find(|e| e.has_class("legend-more")).expect("what is left out");
    assert_eq!(more.text, "+22 more environments not drawn");
    // The panels move down below the taller legend.
    assert!(plots(&els)[0].0 >= one_row + 16.0);
    let svg_height = els[0].num("height");
    let last_plot = plots(&els)[4].1;
    assert!(last_plot < svg_height, "{last_plot} inside {svg_height}");
}

#[test]
fn names_are_escaped() {
    let (mut entries, opts) = demo_day();
    entries[0].environment = "<script>&\"x\"</script>".to_owned();
    let opts = Options { environment_order: Vec::new(), ..opts };
    let svg = to_svg(&compute(&entries, &opts));
    assert!(!svg.contains("<script"));
    let els = parse(&svg);
    assert!(els.iter().any(|e| e.has_class("legend") && e.text == "<script>&\"x\"</script>"));
    assert!(els.iter().any(|e| e.tip.starts_with("<script>&\"x\"</script>, day 2026-11-27: ")));
}
