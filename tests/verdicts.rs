//! Verdicts users can trust by default, end to end: the real step binaries
//! against the real `sluice-router` and `sluice-demo-app` (harness in
//! `support/`). A config without checks is judged by the built-in ones and
//! never promotes a failing candidate; the evidence in every verdict counts
//! exactly the recorded intervals; no traffic is inconclusive and abandoned
//! in the ledger (not a failed change); a candidate share far from the
//! weight set is an error naming both.
//!
//! Timing: stages of several seconds at 500 ms intervals, every decision
//! far from the stage's end, so a loaded machine changes when, not what.

use crate::support::*;
use std::process::{Command, Output};
use std::time::Duration;

fn gate_and_shift(h: &Harness, upstream: &str) -> Output {
    let gate = h.step("gate", &["-e", "dev", "--record", "r.json", "--release", "v2", "--commit", "abcdef1"]);
    assert_eq!(code(&gate), 0, "gate: {}", stderr(&gate));
    h.step("shift-traffic", &["-e", "dev", "--record", "r.json", "--candidate-upstream", upstream])
}

fn record(h: &Harness) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(h.path("r.json")).expect("record")).expect("json")
}

fn verdicts(record: &serde_json::Value) -> Vec<serde_json::Value> {
    record["events"]
        .as_array()
        .expect("events")
        .iter()
        .filter(|e| e["type"] == "verdict")
        .map(|e| e["report"].clone())
        .collect()
}

/// Requests of one pool over the recorded intervals from `start` (RFC 3339,
/// as recorded) on: its request counts, or with `latencies` the requests in
/// its latency histograms (answered ones; in-flight requests have none yet).
fn recorded_as(report: &serde_json::Value, pool: &str, start: Option<&str>, latencies: bool) -> u64 {
    let start = start.map(|s| s.parse::<jiff::Timestamp>().expect("time"));
    let time = |i: &serde_json::Value| i["start"].as_str().expect("start").parse::<jiff::Timestamp>().expect("time");
    report["intervals"]
        .as_array()
        .expect("intervals")
        .iter()
        .filter(|i| start.is_none_or(|s| time(i) >= s))
        .map(|i| match latencies {
            false => i[pool]["requests"].as_u64().unwrap_or(0),
            true => i[pool]["latency"]
                .as_array()
                .map_or(0, |buckets| buckets.iter().map(|b| b[1].as_u64().unwrap_or(0)).sum()),
        })
        .sum()
}

fn recorded(report: &serde_json::Value, pool: &str, start: Option<&str>) -> u64 {
    recorded_as(report, pool, start, false)
}

#[test]
fn without_checks_the_builtin_ones_judge_and_count_exactly_what_was_recorded() {
    // A config with no [[check]]: the minimal one a newcomer writes.
    let canary = "{ kind = \"canary\", stages = [20, 100], stage_duration = \"4s\" }";
    let mut h = Harness::start(&[("v1", &[]), ("v2", &[])], canary, "");
    h.load(200, 40);
    std::thread::sleep(Duration::from_millis(500));
    let v2 = h.apps[1].clone();
    let shift = gate_and_shift(&h, &v2);
    let record = record(&h);
    let reports = verdicts(&record);
    let reasons: Vec<&serde_json::Value> = reports.iter().map(|r| &r["reason"]).collect();
    assert_eq!(code(&shift), 0, "shift-traffic: {}\n{reasons:?}", stderr(&shift));
    assert_eq!(reports.len(), 2, "one verdict per stage");
    // The second stage began with the later half of the first's intervals.
    let first = reports[0]["intervals"].as_array().expect("intervals");
    let carried = &reports[1]["intervals"].as_array().expect("intervals")[..first.len() - first.len() / 2];
    assert_eq!(reports[1]["carried_intervals"].as_u64(), Some(carried.len() as u64), "{}", reports[1]["reason"]);
    assert_eq!(carried, &first[first.len() / 2..]);
    assert!(
        !reports[0].as_object().expect("report").contains_key("carried_intervals"),
        "the first stage carries nothing"
    );
    for report in &reports {
        assert_eq!(report["verdict"], "pass", "{}", report["reason"]);
        let names: Vec<&str> =
            report["checks"].as_array().expect("checks").iter().map(|c| c["name"].as_str().unwrap_or("")).collect();
        assert!(names.contains(&"builtin-error-rate"), "{names:?}");
        // Every count in the evidence is the recorded intervals' count.
        for check in report["checks"].as_array().expect("checks") {
            let start = check["window_start"].as_str();
            let latencies = check["kind"] == "latency" || check["kind"] == "compare_latency";
            let candidate = recorded_as(report, "candidate", start, latencies);
            assert_eq!(check["samples"].as_u64(), Some(candidate), "{}: {}", check["name"], check["message"]);
            if check["kind"] == "compare_error_rate" || check["kind"] == "compare_latency" {
                let stable = recorded_as(report, "stable", start, latencies);
                assert_eq!(check["baseline_samples"].as_u64(), Some(stable), "{}: {}", check["name"], check["message"]);
                assert!(check["message"].as_str().unwrap_or("").contains(&stable.to_string()), "{}", check["message"]);
            }
        }
        if report["candidate_weight"] == 20 {
            let ratio = &report["sample_ratio"];
            assert_eq!(ratio["verdict"], "pass", "{ratio}");
            let total = recorded(report, "candidate", None) + recorded(report, "stable", None);
            assert_eq!(ratio["samples"].as_u64(), Some(total), "{ratio}");
        }
    }
}

#[test]
fn without_checks_a_candidate_failing_half_its_requests_is_rolled_back_not_promoted() {
    let canary = "{ kind = \"canary\", stages = [20, 100], stage_duration = \"6s\" }";
    let mut h = Harness::start(&[("v1", &[]), ("v2", &["--error-ratio", "0.5", "--seed", "3"])], canary, "");
    h.load(200, 40);
    let v2 = h.apps[1].clone();
    let shift = gate_and_shift(&h, &v2);
    assert_eq!(code(&shift), 1, "shift-traffic should roll back: {}", stderr(&shift));
    assert_eq!(h.state()["candidate_weight"], 0);
    let record = record(&h);
    assert_eq!(record["status"], "rolled_back");
    let report = &verdicts(&record)[0];
    assert_eq!(report["verdict"], "fail", "{}", report["reason"]);
    assert!(report["decided_by"].as_str().unwrap_or("").starts_with("builtin-"), "{}", report["reason"]);
    assert_eq!(h.ledger()[0]["outcome"], "rolled_back");
    let promote = h.step("promote", &["-e", "dev", "--record", "r.json"]);
    assert_eq!(code(&promote), 1, "promote must refuse: {}", stderr(&promote));
}

#[test]
fn no_traffic_is_inconclusive_rolled_back_and_not_a_failed_change() {
    // No load at all: the candidate gets no request.
    let canary = "{ kind = \"canary\", stages = [20, 100], stage_duration = \"20s\" }";
    let h = Harness::start(&[("v1", &[]), ("v2", &[])], canary, "");
    let v2 = h.apps[1].clone();
    let shift = gate_and_shift(&h, &v2);
    assert_eq!(code(&shift), 1, "shift-traffic should roll back: {}", stderr(&shift));
    assert_eq!(h.state()["candidate_weight"], 0);
    let record = record(&h);
    assert_eq!(record["status"], "rolled_back");
    let report = &verdicts(&record)[0];
    assert_eq!(report["verdict"], "inconclusive");
    assert_eq!(report["cause"], "no_traffic");
    assert!(report["reason"].as_str().unwrap_or("").starts_with("no traffic"), "{}", report["reason"]);
    // Decided after inconclusive_limit (6) intervals, not at the stage's end.
    assert!(report["intervals"].as_array().expect("intervals").len() < 20, "{}", report["reason"]);
    let ledger = h.ledger();
    assert_eq!(ledger.len(), 1);
    assert_eq!(ledger[0]["outcome"], "abandoned", "no traffic is not a failed change");
    assert!(ledger[0]["reason"].as_str().unwrap_or("").contains("no traffic"), "{}", ledger[0]["reason"]);
}

#[test]
fn a_share_far_from_the_weight_set_is_an_error_naming_both() {
    let canary = "{ kind = \"canary\", stages = [10, 100], stage_duration = \"20s\" }";
    let mut h = Harness::start(&[("v1", &[]), ("v2", &[])], canary, "");
    h.load(200, 40);
    let v2 = h.apps[1].clone();
    let gate = h.step("gate", &["-e", "dev", "--record", "r.json", "--release", "v2", "--commit", "abcdef1"]);
    assert_eq!(code(&gate), 0, "gate: {}", stderr(&gate));
    let mut shift = h.spawn("shift-traffic", &["-e", "dev", "--record", "r.json", "--candidate-upstream", &v2]);
    // Once the first stage runs at 10%, another hand sets the router to 60%.
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    while h.state()["candidate_weight"] != 10 {
        assert!(std::time::Instant::now() < deadline, "the canary never started");
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_secs(2));
    let out = Command::new("curl")
        .args(["-fsS", "-X", "PUT", "-H", "content-type: application/json", "-d", "{\"candidate_weight\":60}"])
        .arg(format!("{}/v1/weights", h.admin))
        .output()
        .expect("curl");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let status = shift.wait().expect("shift-traffic ends");
    assert_eq!(status.code(), Some(3), "a mismatch is an error (exit 3)");
    assert_eq!(h.state()["candidate_weight"], 0, "rolled back");
    let record = record(&h);
    let report = &verdicts(&record)[0];
    assert_eq!(report["verdict"], "error");
    assert_eq!(report["cause"], "sample_ratio_mismatch");
    let reason = report["reason"].as_str().unwrap_or("");
    assert!(reason.contains("the weight set on the router is 10%"), "{reason}");
    assert!(reason.contains("the router itself reports 60%"), "{reason}");
    // Decided well before the stage's end.
    assert!(report["intervals"].as_array().expect("intervals").len() < 30, "{reason}");
}

#[test]
fn calibration_routes_stable_against_itself_and_says_which_check_would_fail() {
    // One check a healthy release passes, one it cannot (half the requests
    // within 1 µs).
    let checks = "[[defaults.check]]\nname = \"errors\"\nkind = \"error_rate\"\nmax = 0.05\n\
        [[defaults.check]]\nname = \"impossible\"\nkind = \"latency\"\npercentile = 50\nmax = \"1us\"\n";
    let canary = "{ kind = \"canary\", stages = [20, 100], stage_duration = \"3s\" }";
    let mut h = Harness::start(&[("v1", &[])], canary, checks);
    h.load(200, 30);
    let out = h.step("verify-health", &["-e", "dev", "--calibrate"]);
    assert_eq!(code(&out), 1, "a check would have failed: {}", stderr(&out));
    let log = stderr(&out);
    assert!(log.contains("calibrate: errors: would have failed 0 of 2 stages"), "{log}");
    assert!(log.contains("calibrate: impossible: would have failed 2 of 2 stages"), "{log}");
    assert!(stdout(&out).contains("failing_checks=1"), "{}", stdout(&out));
    // Traffic is back on stable; no record and no ledger entry were made.
    assert_eq!(h.state()["candidate_weight"], 0);
    assert!(h.ledger().is_empty());

    // Not while a deployment has traffic on a candidate.
    let put = |body: &str, path: &str| {
        let out = Command::new("curl")
            .args(["-fsS", "-X", "PUT", "-H", "content-type: application/json", "-d", body])
            .arg(format!("{}{path}", h.admin))
            .output()
            .expect("curl");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    };
    put(&format!("{{\"candidate\":\"{}\"}}", h.apps[0]), "/v1/upstreams");
    put("{\"candidate_weight\":30}", "/v1/weights");
    let out = h.step("verify-health", &["-e", "dev", "--calibrate"]);
    assert_eq!(code(&out), 1, "{}", stderr(&out));
    assert!(stderr(&out).contains("a deployment is in progress"), "{}", stderr(&out));
    assert_eq!(h.state()["candidate_weight"], 30, "nothing changed");
}
