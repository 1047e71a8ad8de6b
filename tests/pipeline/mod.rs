//! End-to-end: the real step binaries against the real `sluice-router` and
//! `sluice-demo-app` processes on 127.0.0.1 (harness in `support/`).

mod gates;
mod notify;
mod prometheus;

use crate::support::*;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

const CHECKS: &str = "[[defaults.check]]\nname = \"errors\"\nkind = \"error_rate\"\nmax = 0.02\nmin_samples = 20\ncritical = true\n\
    [[defaults.check]]\nname = \"p99\"\nkind = \"latency\"\npercentile = 99\nmax = \"150ms\"\nmin_samples = 20\n";
const CANARY: &str = "{ kind = \"canary\", stages = [50, 100], stage_duration = \"3s\" }";

fn gate_and_shift(h: &Harness, release: &str, upstream: &str) -> Output {
    let gate = h.step("gate", &["-e", "dev", "--record", "r.json", "--release", release, "--commit", "abcdef1"]);
    assert_eq!(code(&gate), 0, "gate: {}", stderr(&gate));
    h.step("shift-traffic", &["-e", "dev", "--record", "r.json", "--candidate-upstream", upstream])
}

#[test]
fn a_good_canary_is_promoted() {
    let mut h = Harness::start(&[("v1", &[]), ("v2", &[])], CANARY, CHECKS);
    h.load(200, 30);
    let v2 = h.apps[1].clone();
    let shift = gate_and_shift(&h, "v2", &v2);
    assert_eq!(code(&shift), 0, "shift-traffic: {}", stderr(&shift));
    let promote = h.step("promote", &["-e", "dev", "--record", "r.json"]);
    assert_eq!(code(&promote), 0, "promote: {}", stderr(&promote));
    assert!(String::from_utf8_lossy(&promote.stdout).contains("next_environment=prd"));
    let state = h.state();
    assert_eq!(state["stable"]["upstream"], v2.as_str());
    assert_eq!(state["candidate_weight"], 0);
    let ledger = h.ledger();
    assert_eq!(ledger.len(), 1);
    assert_eq!(ledger[0]["outcome"], "promoted");
    // Promoting again changes nothing.
    let again = h.step("promote", &["-e", "dev", "--record", "r.json"]);
    assert_eq!(code(&again), 0);
    assert_eq!(h.ledger().len(), 1);
}

fn assert_rolled_back(h: &Harness, shift: &Output, check: &str) {
    assert_eq!(code(shift), 1, "shift-traffic should roll back: {}", stderr(shift));
    assert_eq!(h.state()["candidate_weight"], 0);
    let record: serde_json::Value =
        serde_json::from_slice(&std::fs::read(h.path("r.json")).expect("record")).expect("json");
    assert_eq!(record["status"], "rolled_back");
    let ledger = h.ledger();
    assert_eq!(ledger.len(), 1);
    assert_eq!(ledger[0]["outcome"], "rolled_back");
    let reason = ledger[0]["reason"].as_str().unwrap_or_default();
    assert!(reason.contains(check), "reason {reason:?} should name {check}");
    // A second rollback is harmless and adds nothing to the ledger.
    let again = h.step("rollback", &["-e", "dev", "--record", "r.json"]);
    assert_eq!(code(&again), 0, "{}", stderr(&again));
    assert_eq!(h.ledger().len(), 1);
    assert_eq!(h.state()["candidate_weight"], 0);
}

#[test]
fn a_canary_with_errors_rolls_back() {
    let mut h = Harness::start(&[("v1", &[]), ("v3", &["--error-ratio", "0.3", "--seed", "1"])], CANARY, CHECKS);
    h.load(200, 30);
    let v3 = h.apps[1].clone();
    let started = Instant::now();
    let shift = gate_and_shift(&h, "v3", &v3);
    assert_rolled_back(&h, &shift, "errors");
    assert!(started.elapsed() < Duration::from_secs(5), "took {:?} to roll back", started.elapsed());
}

#[test]
fn a_slow_canary_rolls_back() {
    let mut h = Harness::start(&[("v1", &[]), ("v3", &["--latency", "300ms"])], CANARY, CHECKS);
    h.load(200, 30);
    let v3 = h.apps[1].clone();
    let shift = gate_and_shift(&h, "v3", &v3);
    assert_rolled_back(&h, &shift, "p99");
}

#[test]
fn rollback_without_a_record_restores_stable() {
    let h = Harness::start(&[("v1", &[]), ("v2", &[])], CANARY, CHECKS);
    let set = |body: &str, path: &str| {
        let out = Command::new("curl")
            .args([
                "-fsS",
                "-X",
                "PUT",
                "-H",
                "content-type: application/json",
                "-d",
                body,
                &format!("{}{path}", h.admin),
            ])
            .output()
            .expect("curl");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    };
    set(&format!("{{\"candidate\":\"{}\"}}", h.apps[1]), "/v1/upstreams");
    set("{\"candidate_weight\":40}", "/v1/weights");
    assert_eq!(h.state()["candidate_weight"], 40);
    // A record path that does not exist is bad input: nothing moves.
    let out = h.step("rollback", &["-e", "dev", "--record", "none.json"]);
    assert_eq!(code(&out), 2, "{}", stderr(&out));
    assert!(stderr(&out).contains("rollback --live"), "{}", stderr(&out));
    assert_eq!(h.state()["candidate_weight"], 40);
    // --live needs no record, and makes none up.
    let out = h.step("rollback", &["-e", "dev", "--live"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(h.state()["candidate_weight"], 0);
    assert!(!h.path("none.json").exists(), "rollback without a record must not invent one");
}

#[test]
fn bad_input_exits_2_and_changes_nothing() {
    let h = Harness::start(&[("v1", &[]), ("v2", &[])], CANARY, CHECKS);
    let gate = h.step("gate", &["-e", "dev", "--record", "r.json", "--release", "v2", "--commit", "abcdef1"]);
    assert_eq!(code(&gate), 0, "{}", stderr(&gate));
    let record_before = std::fs::read(h.path("r.json")).expect("record");
    let state_before = h.state();
    let good_config = std::fs::read_to_string(h.path("sluice.toml")).expect("config");
    std::fs::write(
        h.path("foreign.json"),
        String::from_utf8_lossy(&record_before).replace("sluice.deployment/v1", "sluice.deployment/v9"),
    )
    .expect("write");
    std::fs::write(h.path("truncated.json"), &record_before[..record_before.len() / 2]).expect("write");
    std::fs::write(h.path("bad.toml"), good_config.replace("max = 0.02", "max = \"two percent\"")).expect("write");
    std::fs::write(
        h.path("bad-duration.toml"),
        good_config.replace("stage_duration = \"3s\"", "stage_duration = \"3 parsecs\""),
    )
    .expect("write");

    let cases: Vec<(Vec<&str>, &str, &str)> = vec![
        (vec!["shift-traffic", "-e", "dev", "--record", "r.json", "--weight", "101"], "101", "weight out of range"),
        (vec!["shift-traffic", "-e", "dev", "--record", "r.json", "--weight", "-5"], "-5", "negative weight"),
        (
            vec!["shift-traffic", "-e", "dev", "--record", "foreign.json", "--weight", "10"],
            "sluice.deployment/v9",
            "foreign schema",
        ),
        (
            vec!["shift-traffic", "-e", "dev", "--record", "truncated.json", "--weight", "10"],
            "damaged",
            "truncated record",
        ),
        (
            vec!["shift-traffic", "-e", "prd", "--record", "r.json", "--weight", "10"],
            "not \"prd\"",
            "record of another environment",
        ),
        (
            vec!["shift-traffic", "-e", "qa", "--record", "r.json", "--weight", "10"],
            "unknown environment \"qa\"",
            "unknown environment",
        ),
        (
            vec!["verify-health", "-e", "dev", "--record", "r.json", "--duration", "soon"],
            "invalid duration",
            "malformed duration",
        ),
        (
            vec!["gate", "-e", "dev", "--record", "x.json", "--release", "v2", "--config", "bad.toml"],
            "bad.toml:",
            "malformed config",
        ),
        (
            vec!["gate", "-e", "dev", "--record", "y.json", "--release", "v2", "--config", "bad-duration.toml"],
            "invalid duration",
            "malformed config duration",
        ),
        (vec!["gate", "-e", "dev", "--record", "z.json", "--release", "../v2"], "release", "path trick in a name"),
        (
            vec!["shift-traffic", "-e", "dev", "--record", "sluice.toml", "--weight", "10"],
            ".json",
            "record path that is not a record",
        ),
    ];
    for (args, needle, what) in cases {
        let out = h.step(args[0], &args[1..]);
        assert_eq!(code(&out), 2, "{what}: expected exit 2, got {}: {}", code(&out), stderr(&out));
        assert!(stderr(&out).contains(needle), "{what}: message should contain {needle:?}: {}", stderr(&out));
        assert!(!stderr(&out).contains("panicked"), "{what}: panicked");
        assert_eq!(std::fs::read(h.path("r.json")).expect("record"), record_before, "{what}: record changed");
        assert_eq!(h.state(), state_before, "{what}: router changed");
    }
    for f in ["x.json", "y.json", "z.json"] {
        assert!(!h.path(f).exists(), "{f} was written");
    }
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn record(h: &Harness) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(h.path("r.json")).expect("record")).expect("json")
}

#[test]
fn a_paused_canary_continues_after_approval() {
    let canary = "{ kind = \"canary\", stages = [25, 100], stage_duration = \"3s\" }";
    let mut h = Harness::start(&[("v1", &[]), ("v2", &[])], canary, &format!("pause_timeout = \"1h\"\n{CHECKS}"));
    h.load(200, 30);
    let v2 = h.apps[1].clone();
    let gate = h.step("gate", &["-e", "dev", "--record", "r.json", "--release", "v2", "--commit", "abcdef1"]);
    assert_eq!(code(&gate), 0, "gate: {}", stderr(&gate));
    // A weight that is not a stage before the last, or --pause-at with
    // --weight, is refused before anything moves.
    let before = std::fs::read(h.path("r.json")).expect("record");
    for bad in [&["--pause-at", "50"][..], &["--pause-at", "100"], &["--pause-at", "25", "--weight", "25"]] {
        let mut args = vec!["-e", "dev", "--record", "r.json", "--candidate-upstream", &v2];
        args.extend_from_slice(bad);
        let out = h.step("shift-traffic", &args);
        assert_eq!(code(&out), 2, "{bad:?}: {}", stderr(&out));
        assert_eq!(std::fs::read(h.path("r.json")).expect("record"), before, "{bad:?} changed the record");
        assert_eq!(h.state()["candidate_weight"], 0);
    }

    let paused =
        h.step("shift-traffic", &["-e", "dev", "--record", "r.json", "--candidate-upstream", &v2, "--pause-at", "25"]);
    assert_eq!(code(&paused), 0, "{}", stderr(&paused));
    assert!(stdout(&paused).contains("decision=paused"), "{}", stdout(&paused));
    assert_eq!(h.state()["candidate_weight"], 25);
    let r = record(&h);
    assert_eq!(r["status"], "paused");
    let pause = r["events"].as_array().expect("events").last().expect("event").clone();
    assert_eq!(pause["type"], "pause");
    assert_eq!(pause["weight"], 25);
    let at: jiff::Timestamp = pause["at"].as_str().expect("at").parse().expect("time");
    let expires: jiff::Timestamp = pause["expires_at"].as_str().expect("expires_at").parse().expect("time");
    assert_eq!(expires.duration_since(at), jiff::SignedDuration::from_hours(1));

    // `sluice status` shows it from another terminal: where it stands, the
    // stage, the weight set against the router's, the verdicts, the holder.
    let status = h.step("sluice", &["status", "--config", "sluice.toml", "--record", "r.json"]);
    assert_eq!(code(&status), 0, "{}", stderr(&status));
    let shown = stdout(&status);
    for part in
        ["paused for approval", "stage 1/2", "set 25% / router 25%", "verdicts ✔ 1 ✖ 0", "held by   shop-dev-v2-"]
    {
        assert!(shown.contains(part), "{part:?} not in:\n{shown}");
    }
    let json = h.step("sluice", &["status", "--config", "sluice.toml", "-e", "dev", "--record", "r.json", "--json"]);
    let view: serde_json::Value = serde_json::from_slice(&json.stdout).expect("status json");
    assert_eq!(view["environments"][0]["deployments"][0]["status"], "paused", "{view:#}");
    assert_eq!(view["environments"][0]["router"]["candidate_weight"], 25, "{view:#}");
    // Not verified while paused: promote is refused (exit 1), in words; a
    // sweep before the expiry keeps it.
    let promote = h.step("promote", &["-e", "dev", "--record", "r.json"]);
    assert_eq!(code(&promote), 1, "{}", stderr(&promote));
    assert!(stderr(&promote).contains("is paused for approval, with the candidate at 25%"), "{}", stderr(&promote));
    assert!(stdout(&promote).contains("decision=refused"), "{}", stdout(&promote));
    let sweep = h.step("rollback", &["-e", "dev", "--record", "r.json", "--if-expired"]);
    assert_eq!(code(&sweep), 0, "{}", stderr(&sweep));
    assert!(stdout(&sweep).contains("decision=kept"));
    assert_eq!(h.state()["candidate_weight"], 25);

    // Approved: a later run continues from the record, without analysing the
    // paused stage again.
    let resume = h.step("shift-traffic", &["-e", "dev", "--record", "r.json"]);
    assert_eq!(code(&resume), 0, "{}", stderr(&resume));
    assert!(stderr(&resume).contains("stage 1/2 (25%) passed in an earlier run"), "{}", stderr(&resume));
    assert_eq!(h.state()["candidate_weight"], 100);
    let r = record(&h);
    assert_eq!(r["status"], "verified");
    let verdicts: Vec<_> = r["events"]
        .as_array()
        .expect("events")
        .iter()
        .filter(|e| e["type"] == "verdict")
        .map(|e| &e["stage"])
        .collect();
    assert_eq!(verdicts, [0, 1]);
    let promote = h.step("promote", &["-e", "dev", "--record", "r.json"]);
    assert_eq!(code(&promote), 0, "{}", stderr(&promote));
    assert_eq!(h.state()["stable"]["upstream"], v2.as_str());
}

/// Pauses a canary (the built-in checks, one-second stages, under load)
/// whose pause expires after one second, and waits until it has.
fn pause_until_expired(h: &mut Harness) {
    h.load(200, 30);
    let v2 = h.apps[1].clone();
    let gate = h.step("gate", &["-e", "dev", "--record", "r.json", "--release", "v2", "--commit", "abcdef1"]);
    assert_eq!(code(&gate), 0, "gate: {}", stderr(&gate));
    let paused =
        h.step("shift-traffic", &["-e", "dev", "--record", "r.json", "--candidate-upstream", &v2, "--pause-at", "50"]);
    assert_eq!(code(&paused), 0, "{}", stderr(&paused));
    assert_eq!(h.state()["candidate_weight"], 50);
    std::thread::sleep(Duration::from_millis(1500));
}

const QUICK_CANARY: &str = "{ kind = \"canary\", stages = [50, 100], stage_duration = \"1s\" }";

#[test]
fn a_paused_canary_past_its_timeout_is_rolled_back_not_continued() {
    let mut h = Harness::start(&[("v1", &[]), ("v2", &[])], QUICK_CANARY, "pause_timeout = \"1s\"\n");
    pause_until_expired(&mut h);
    let late = h.step("shift-traffic", &["-e", "dev", "--record", "r.json"]);
    assert_eq!(code(&late), 1, "{}", stderr(&late));
    assert!(stdout(&late).contains("decision=expired"), "{}", stdout(&late));
    assert_eq!(h.state()["candidate_weight"], 0);
    assert_eq!(record(&h)["status"], "rolled_back");
    let ledger = h.ledger();
    assert_eq!(ledger.len(), 1);
    assert_eq!(ledger[0]["outcome"], "rolled_back");
    assert!(ledger[0]["reason"].as_str().unwrap_or_default().contains("not approved"), "{:?}", ledger[0]);
}

#[test]
fn a_sweep_rolls_back_an_expired_pause() {
    let mut h = Harness::start(&[("v1", &[]), ("v2", &[])], QUICK_CANARY, "pause_timeout = \"1s\"\n");
    pause_until_expired(&mut h);
    let sweep = h.step("rollback", &["-e", "dev", "--record", "r.json", "--if-expired"]);
    assert_eq!(code(&sweep), 0, "{}", stderr(&sweep));
    assert!(stdout(&sweep).contains("decision=expired"), "{}", stdout(&sweep));
    assert_eq!(h.state()["candidate_weight"], 0);
    assert_eq!(record(&h)["status"], "rolled_back");
    // The ended deployment cannot be continued by a late approval: the
    // lifecycle refuses (exit 1), saying where it stands and what to do.
    let late = h.step("shift-traffic", &["-e", "dev", "--record", "r.json"]);
    assert_eq!(code(&late), 1, "{}", stderr(&late));
    assert!(stderr(&late).contains("is rolled back: all traffic is on stable"), "{}", stderr(&late));
    assert!(stdout(&late).contains("decision=refused"), "{}", stdout(&late));
    assert_eq!(h.state()["candidate_weight"], 0);
}

#[test]
fn the_multicall_binary_runs_each_step_by_name_or_link() {
    let _turn = shared();
    let dir = tempfile::tempdir().expect("tempdir");
    let sluice = exe("sluice");
    for step in ["gate", "shift-traffic", "verify-health", "promote", "rollback", "dora-report"] {
        let link = dir.path().join(step);
        std::os::unix::fs::symlink(&sluice, &link).expect("symlink");
        let by_link = Command::new(&link).arg("--help").output().expect("runs");
        let by_arg = Command::new(&sluice).args([step, "--help"]).output().expect("runs");
        for out in [&by_link, &by_arg] {
            assert_eq!(code(out), 0, "{step}: {}", stderr(out));
            assert!(stdout(out).contains(&format!("Usage: {step}")), "{step}: {}", stdout(out));
        }
    }
    let unknown = Command::new(&sluice).arg("deploy").output().expect("runs");
    assert_eq!(code(&unknown), 2);
    assert!(stderr(&unknown).contains("unknown step \"deploy\""), "{}", stderr(&unknown));
    // A step's own exit codes come through: bad input is 2.
    let bad = Command::new(&sluice)
        .args(["shift-traffic", "-e", "dev", "--record", "r.json", "--config", "/nonexistent.toml"])
        .output()
        .expect("runs");
    assert_eq!(code(&bad), 2, "{}", stderr(&bad));
}

#[test]
fn promote_refuses_when_the_latest_verdict_failed() {
    let mut h = Harness::start(&[("v1", &[]), ("v2", &[])], CANARY, CHECKS);
    h.load(200, 40);
    let v2 = h.apps[1].clone();
    let shift = gate_and_shift(&h, "v2", &v2);
    assert_eq!(code(&shift), 0, "shift-traffic: {}", stderr(&shift));
    // The candidate degrades after the canary passed; verify-health says so.
    let out = Command::new("curl")
        .args(["-fsS", "-X", "PUT", "-d", r#"{"error_ratio":0.5}"#, &format!("{v2}/faults")])
        .output()
        .expect("curl");
    assert!(out.status.success());
    let verify = h.step("verify-health", &["-e", "dev", "--record", "r.json", "--duration", "3s"]);
    assert_eq!(code(&verify), 1, "verify-health: {}", stderr(&verify));
    let before = std::fs::read(h.path("r.json")).expect("record");
    let promote = h.step("promote", &["-e", "dev", "--record", "r.json"]);
    assert_eq!(code(&promote), 1, "promote: {}", stderr(&promote));
    assert!(stderr(&promote).contains("latest health verdict is fail"), "{}", stderr(&promote));
    assert_eq!(std::fs::read(h.path("r.json")).expect("record"), before, "promote changed the record");
    assert_eq!(h.state()["stable"]["upstream"], h.apps[0].as_str(), "promote changed the router");
    assert!(h.ledger().is_empty());
}

#[test]
fn a_second_step_on_a_record_in_use_is_refused_and_changes_nothing() {
    let slow = "{ kind = \"canary\", stages = [10, 100], stage_duration = \"20s\" }";
    let mut h = Harness::start(&[("v1", &[]), ("v2", &[])], slow, CHECKS);
    h.load(100, 60);
    let v2 = h.apps[1].clone();
    let gate = h.step("gate", &["-e", "dev", "--record", "r.json", "--release", "v2", "--commit", "abcdef1"]);
    assert_eq!(code(&gate), 0, "gate: {}", stderr(&gate));
    let mut first = h.spawn("shift-traffic", &["-e", "dev", "--record", "r.json", "--candidate-upstream", &v2]);
    // Wait until the first run has moved traffic and is analysing.
    let deadline = Instant::now() + Duration::from_secs(20);
    while h.state()["candidate_weight"] != 10 {
        assert!(Instant::now() < deadline, "the first run never reached its first stage");
        std::thread::sleep(Duration::from_millis(50));
    }
    let before = std::fs::read(h.path("r.json")).expect("record");
    // The same job run again, and a rollback, while it works: refused, exit
    // 1, before reading or writing anything.
    for (name, args) in [
        ("gate", &["-e", "dev", "--record", "r.json", "--release", "v2", "--commit", "abcdef1"][..]),
        ("shift-traffic", &["-e", "dev", "--record", "r.json", "--candidate-upstream", v2.as_str()]),
        ("verify-health", &["-e", "dev", "--record", "r.json", "--duration", "1s"]),
        ("promote", &["-e", "dev", "--record", "r.json"]),
        ("rollback", &["-e", "dev", "--record", "r.json"]),
    ] {
        let second = h.step(name, args);
        assert_eq!(code(&second), 1, "{name}: {}", stderr(&second));
        assert!(stderr(&second).contains("another step is working on record"), "{name}: {}", stderr(&second));
        assert_eq!(std::fs::read(h.path("r.json")).expect("record"), before, "{name} changed the record");
        assert_eq!(h.state()["candidate_weight"], 10, "{name} changed the router");
    }
    let _ = first.kill();
    let _ = first.wait();
    // The first run gone, the record is free again.
    let rollback = h.step("rollback", &["-e", "dev", "--record", "r.json"]);
    assert_eq!(code(&rollback), 0, "{}", stderr(&rollback));
    assert_eq!(h.state()["candidate_weight"], 0);
}

#[test]
fn the_plan_never_moves_traffic_down_from_a_weight_set_by_hand() {
    let canary = "{ kind = \"canary\", stages = [10, 50, 100], stage_duration = \"2s\" }";
    let mut h = Harness::start(&[("v1", &[]), ("v2", &[])], canary, CHECKS);
    h.load(200, 40);
    let v2 = h.apps[1].clone();
    let gate = h.step("gate", &["-e", "dev", "--record", "r.json", "--release", "v2", "--commit", "abcdef1"]);
    assert_eq!(code(&gate), 0, "gate: {}", stderr(&gate));
    let by_hand =
        h.step("shift-traffic", &["-e", "dev", "--record", "r.json", "--candidate-upstream", &v2, "--weight", "20"]);
    assert_eq!(code(&by_hand), 0, "{}", stderr(&by_hand));
    let plan = h.step("shift-traffic", &["-e", "dev", "--record", "r.json"]);
    assert_eq!(code(&plan), 0, "{}", stderr(&plan));
    assert!(stderr(&plan).contains("stage 1/3 (10%) skipped: the candidate already takes 20%"), "{}", stderr(&plan));
    let weights: Vec<u64> = record(&h)["events"]
        .as_array()
        .expect("events")
        .iter()
        .filter(|e| e["type"] == "traffic")
        .map(|e| e["to"].as_u64().expect("to"))
        .collect();
    assert_eq!(weights, [20, 50, 100], "traffic only ever went up");
    assert_eq!(record(&h)["status"], "verified");
}
