//! What people see: Markdown (snapshot), text, SVG, JSON and its schema.

use sluice_core::ledger::LedgerOutcome;
use sluice_dora::{MARKDOWN_LIMIT, Options, compute, json_schema, to_json, to_markdown, to_svg, to_terminal};

use crate::common::e;
use crate::hand;

#[test]
fn markdown_snapshot() {
    let r = compute(hand::history(), &hand::window());
    insta::assert_snapshot!(to_markdown(&r));
}

#[test]
fn terminal_snapshot() {
    let r = compute(hand::history(), &hand::window());
    insta::assert_snapshot!(to_terminal(&r));
}

#[test]
fn markdown_stays_under_the_limit_whatever_the_history() {
    // 600 apps and long, pipe-laden reasons: rows are capped and the cap is said.
    let mut entries = Vec::new();
    for app in 0..600 {
        for k in 0..5 {
            let start = format!("2024-01-0{}T10:00:00Z", k + 1);
            let end = format!("2024-01-0{}T10:30:00Z", k + 1);
            entries.push(
                e(
                    &format!("d{app}-{k}"),
                    &format!("app-{app:03}-{}", "x".repeat(200)),
                    "prd",
                    LedgerOutcome::RolledBack,
                    &start,
                    &end,
                )
                .reason(&"a | b <script>\n".repeat(500))
                .done(),
            );
        }
    }
    let opts = Options { history_limit: 10_000, ..Options::default() };
    let r = compute(&entries, &opts);
    let md = to_markdown(&r);
    assert!(md.len() <= MARKDOWN_LIMIT, "{}", md.len());
    assert!(md.contains("400 more apps left out"));
    assert!(md.contains("most recent of 3000 entries (2900 left out)"));
    assert!(!md.contains("<script>"));
}

#[test]
fn json_has_stable_keys_and_nulls() {
    let r = compute(hand::history(), &hand::window());
    let json: serde_json::Value = serde_json::from_str(&to_json(&r)).expect("valid JSON");
    assert_eq!(json["schema"], "sluice.dora-report/v1");
    assert_eq!(json["tier_source"], "DORA 2024");
    let api = &json["groups"][0];
    assert_eq!(api["app"], "api");
    let lead = &api["metrics"]["change_lead_time"];
    assert!(lead["value"].is_null() && lead["tier"].is_null());
    assert_eq!(lead["no_data"], "no ledger entries in the window");
    let web = &json["groups"][1]["metrics"];
    assert_eq!(web["change_fail_rate"]["tier"], "low");
    assert_eq!(web["change_fail_rate"]["value"]["numerator"], 6);
    assert!(web["change_fail_rate"]["no_data"].is_null());
    // Round trip.
    let back: sluice_dora::Report = serde_json::from_value(json).expect("deserialise");
    assert_eq!(back, r);

    let schema = serde_json::to_value(json_schema()).expect("schema");
    assert_eq!(schema["title"], "Report");
    assert!(schema["properties"]["groups"].is_object());
}

#[test]
fn svg_is_self_contained() {
    let r = compute(hand::history(), &hand::window());
    let svg = to_svg(&r);
    assert!(svg.starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\""));
    assert!(svg.trim_end().ends_with("</svg>"));
    assert!(!svg.contains("<script") && !svg.contains("href"));
    // The title and the five panels' titles.
    assert_eq!(svg.matches("font-weight=\"bold\"").count(), 6);
    // Two weeks are drawn by day: the 1st to the 14th of January.
    assert!(svg.contains(">DORA daily trend, 2024-01-01 00:00 to 2024-01-15 00:00 (UTC), tiers DORA 2024<"));
    for day in 1..=14 {
        assert!(svg.contains(&format!(r#"class="day-label">{day}</text>"#)), "day {day}");
    }
    assert!(svg.contains(r#"class="month-label">Jan 2024</text>"#));
    assert!(svg.len() < 40_000, "{}", svg.len());
    // An empty report still draws.
    let empty = to_svg(&compute(Vec::<sluice_core::ledger::LedgerEntry>::new(), &Options::default()));
    assert!(empty.contains("no data"));
}

#[test]
fn committed_report_schema_matches_the_types() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../schema/dora-report.v1.json");
    let mut text = serde_json::to_string_pretty(&sluice_dora::json_schema()).expect("schema serialises");
    text.push('\n');
    if std::env::var_os("SLUICE_BLESS").is_some() {
        std::fs::write(&path, &text).expect("write schema");
        return;
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == text,
        "schema/dora-report.v1.json is out of date with the Report types; regenerate it with \
         `SLUICE_BLESS=1 cargo test -p sluice-dora committed_report_schema`"
    );
}
