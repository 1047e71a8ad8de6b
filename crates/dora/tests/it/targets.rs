//! Environments of several targets (waves): a deployment counts once
//! whatever its targets, a failure in any wave is a failed attempt, and the
//! history names the target that stopped it, in every output and from the
//! ledger file as from entries in memory.

use std::io::Write;

use sluice_core::ledger::{LedgerEntry, LedgerOutcome, TargetOutcome};
use sluice_dora::{Options, compute, report_file, to_json, to_markdown, to_terminal};

use crate::common::e;

fn target(name: &str, wave: usize, reached: u8, verdict: Option<&str>) -> TargetOutcome {
    TargetOutcome { name: name.to_owned(), wave, reached, verdict: verdict.map(str::to_owned) }
}

/// prd in two waves (east, then west), oldest first: promoted; stopped by
/// west's failing verdict in wave 2; stopped by east's router failing (no
/// verdict, the reason names it); rolled back by hand after a provider
/// error (nothing names a target); and a one-router environment's rollback.
fn ledger() -> Vec<LedgerEntry> {
    let with = |mut entry: LedgerEntry, targets: Vec<TargetOutcome>| {
        entry.targets = targets;
        entry
    };
    vec![
        with(
            e("d1", "shop", "prd", LedgerOutcome::Promoted, "2024-01-02T10:00:00Z", "2024-01-02T10:20:00Z").done(),
            vec![target("east", 0, 100, Some("pass")), target("west", 1, 100, Some("pass"))],
        ),
        with(
            e("d2", "shop", "prd", LedgerOutcome::RolledBack, "2024-01-03T10:00:00Z", "2024-01-03T10:20:00Z")
                .reason("target west in wave 2: critical check \"error-rate\" failed")
                .done(),
            vec![target("east", 0, 100, Some("pass")), target("west", 1, 10, Some("fail"))],
        ),
        with(
            e("d3", "shop", "prd", LedgerOutcome::RolledBack, "2024-01-04T10:00:00Z", "2024-01-04T10:05:00Z")
                .reason("a provider failed during the canary: target east in wave 1: ServiceUnavailable")
                .done(),
            vec![target("east", 0, 10, None), target("west", 1, 0, None)],
        ),
        with(
            e("d4", "shop", "prd", LedgerOutcome::RolledBack, "2024-01-05T10:00:00Z", "2024-01-05T10:05:00Z")
                .reason("operator: region back")
                .done(),
            vec![target("east", 0, 100, Some("pass")), target("west", 1, 50, None)],
        ),
        e("d5", "shop", "dev", LedgerOutcome::RolledBack, "2024-01-05T11:00:00Z", "2024-01-05T11:05:00Z")
            .reason("target west in wave 2: not a target here")
            .done(),
    ]
}

fn window() -> Options {
    let mut opts = Options::default();
    opts.filter.since = Some("2024-01-01T00:00:00Z".parse().expect("ts"));
    opts.filter.until = Some("2024-01-08T00:00:00Z".parse().expect("ts"));
    opts
}

fn check(report: &sluice_dora::Report) {
    let prd = report.environments.iter().find(|e| e.environment == "prd").expect("prd");
    // Four deployments of prd, each once, whatever its targets: one
    // promoted, three failed attempts (a failure in any wave is one).
    assert_eq!(prd.counts.entries, 4, "{:?}", prd.counts);
    assert_eq!(prd.counts.attempts, 4);
    assert_eq!(prd.counts.deployments, 1);
    assert_eq!(prd.counts.rolled_back, 3);
    assert_eq!(prd.counts.failed_deployments, 3);
    assert_eq!(prd.history.success_rate, Some(0.25));
    let failed: Vec<(&str, Option<&str>)> =
        prd.history.rows.iter().map(|r| (r.id.as_str(), r.failed_target.as_deref())).collect();
    assert_eq!(failed, vec![("d4", None), ("d3", Some("east")), ("d2", Some("west")), ("d1", None)]);
    let dev = report.environments.iter().find(|e| e.environment == "dev").expect("dev");
    assert_eq!(dev.history.rows[0].failed_target, None, "no targets, none named");

    let text = to_terminal(report);
    assert!(text.contains("rolled back in west"), "{text}");
    assert!(text.contains("rolled back in east"), "{text}");
    assert!(!text.contains("promoted in"), "{text}");
    let markdown = to_markdown(report);
    assert!(markdown.contains("| rolled back in west |"), "{markdown}");
    assert!(markdown.contains("| rolled back in east |"), "{markdown}");
    let json: serde_json::Value = serde_json::from_str(&to_json(report)).expect("json");
    let rows = &json["environments"]
        .as_array()
        .expect("environments")
        .iter()
        .find(|e| e["environment"] == "prd")
        .expect("prd")["history"]["rows"];
    assert_eq!(rows[1]["failed_target"], "east");
    assert_eq!(rows[2]["failed_target"], "west");
    assert!(rows[0].get("failed_target").is_none(), "absent when no target stopped it: {}", rows[0]);
}

#[test]
fn a_deployment_of_targets_counts_once_and_its_history_names_the_target_that_failed() {
    check(&compute(ledger(), &window()));
}

#[test]
fn read_from_the_ledger_file_the_same() {
    let mut f = tempfile::NamedTempFile::new().expect("temp file");
    for entry in ledger() {
        writeln!(f, "{}", serde_json::to_string(&entry).expect("serialise")).expect("write");
    }
    let (report, torn) = report_file(f.path(), &window()).expect("report");
    assert!(torn.is_none());
    check(&report);
}
