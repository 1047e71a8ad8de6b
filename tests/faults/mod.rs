//! Faulty providers: `sluice-faultproxy` stands between the steps and a
//! provider (the embedded router's admin API here, moto in `faults/aws.rs`,
//! the GitHub fake in `faults/github.rs`) and answers 500s, throttles, holds
//! calls and drops connections at set rates. Every canary must end completed or rolled back with the record
//! telling which; when the provider stays down the step exits 3 and the
//! record says where traffic stood and what to do.

mod aws;
mod github;

use crate::support::*;
use sluice_core::record::{EventDetail, Expect, Record, Status};
use std::process::Command;
use std::time::{Duration, Instant};

const CHECKS: &str = "[[defaults.check]]\nname = \"errors\"\nkind = \"error_rate\"\nmax = 0.05\nmin_samples = 10\n";
const CANARY: &str = "{ kind = \"canary\", stages = [20, 100], stage_duration = \"1s\" }";

fn set_faults(proxy: &str, rates: &str) {
    let out = Command::new("curl")
        .args(["-fsS", "-X", "PUT", "-d", rates, &format!("{proxy}/__faults")])
        .output()
        .expect("curl");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

/// What the proxy did so far, and how many faults it injected.
fn fault_report(proxy: &str) -> (serde_json::Value, u64) {
    let out = Command::new("curl").args(["-fsS", &format!("{proxy}/__faults")]).output().expect("curl");
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("fault report");
    let injected =
        ["errors", "throttled", "slowed", "dropped"].iter().map(|k| report[k].as_u64().unwrap_or(0)).sum::<u64>();
    (report, injected)
}

fn start() -> (Harness, String) {
    let mut h = Harness::start_with(&[("v1", &[]), ("v2", &[])], "250ms", CANARY, CHECKS);
    let admin = h.admin.clone();
    let v = h.spawn_server(
        "sluice-faultproxy",
        &["--listen", "127.0.0.1:0", "--upstream", &admin, "--slow", "1s", "--throttle", "http", "--seed", "7"],
    );
    let proxy = format!("http://{}", v["listen"].as_str().expect("listen"));
    h.use_admin_url(&proxy);
    h.load(200, 300);
    (h, proxy)
}

fn last_event(record: &Record) -> Option<&EventDetail> {
    record.events.last().map(|e| &e.detail)
}

#[test]
fn a_flaky_router_api_never_leaves_a_canary_unaccounted_for() {
    let (h, proxy) = start();
    let v2 = h.apps[1].clone();
    // More than a third of all calls go wrong.
    let flaky = r#"{"error_rate":0.1,"throttle_rate":0.1,"slow_rate":0.05,"drop_rate":0.1}"#;
    let mut outcomes = std::collections::BTreeMap::<i32, u32>::new();
    for run in 0..10 {
        set_faults(&proxy, flaky);
        let rec = format!("f{run}.json");
        let gate = h.step("gate", &["-e", "dev", "--record", &rec, "--release", "v2", "--commit", "abcdef1"]);
        assert_eq!(code(&gate), 0, "{}", stderr(&gate));
        let shift = h.step("shift-traffic", &["-e", "dev", "--record", &rec, "--candidate-upstream", &v2]);
        let exit = code(&shift);
        *outcomes.entry(exit).or_default() += 1;
        let record = Record::load(&h.path(&rec), &Expect::default()).expect("record loads");
        let weight = h.state()["candidate_weight"].as_u64().expect("weight"); // read past the proxy
        let what = format!("run {run}: exit {exit}, status {:?}, router at {weight}%", record.status());
        match exit {
            0 => {
                assert_eq!(record.status(), Status::Verified, "{what}: {}", stderr(&shift));
                assert_eq!(weight, 100, "{what}");
            }
            1 => {
                assert_eq!(record.status(), Status::RolledBack, "{what}");
                assert_eq!(weight, 0, "{what}");
            }
            3 => match (record.status(), last_event(&record)) {
                (Status::RolledBack, _) => assert_eq!(weight, 0, "{what}"),
                // The canary could not start: nothing moved, the
                // environment is given back.
                (Status::Abandoned, Some(EventDetail::Abandoned { reason })) => {
                    assert!(reason.contains("did not start"), "{what}: {reason}");
                    assert_eq!(weight, 0, "{what}");
                }
                (_, Some(EventDetail::Error { message })) if message.contains("no traffic was moved") => {
                    assert_eq!(weight, 0, "{what}: {message}");
                }
                (_, Some(EventDetail::Error { message })) => {
                    assert!(message.contains("run `rollback`"), "{what}: {message}");
                    assert!(message.contains(&format!("{}%", record.candidate_weight)), "{what}: {message}");
                }
                (_, other) => panic!("{what}: exit 3 without an error event: {other:?}"),
            },
            _ => panic!("{what}: {}", stderr(&shift)),
        }
        // Back to stable for the next run, through a healthy proxy.
        set_faults(&proxy, "{}");
        let rollback = h.step("rollback", &["-e", "dev", "--record", &rec]);
        assert_eq!(code(&rollback), 0, "{what}: rollback: {}", stderr(&rollback));
        assert_eq!(h.state()["candidate_weight"], 0, "{what}");
    }
    let (report, injected) = fault_report(&proxy);
    eprintln!("faults: exits {outcomes:?}; proxy {report}");
    assert!(injected >= 10, "too few faults were injected to mean anything: {report}");
}

#[test]
fn a_router_that_stays_down_exits_3_and_the_record_says_where_traffic_stands() {
    let (h, proxy) = start();
    let v2 = h.apps[1].clone();
    let gate = h.step("gate", &["-e", "dev", "--record", "down.json", "--release", "v2", "--commit", "abcdef1"]);
    assert_eq!(code(&gate), 0, "{}", stderr(&gate));
    let mut child = h.spawn("shift-traffic", &["-e", "dev", "--record", "down.json", "--candidate-upstream", &v2]);
    // Let the first stage start, then take the router's API down for good.
    let deadline = Instant::now() + Duration::from_secs(10);
    while h.state()["candidate_weight"] != 20 {
        assert!(Instant::now() < deadline, "the canary never reached its first stage");
        std::thread::sleep(Duration::from_millis(20));
    }
    set_faults(&proxy, r#"{"error_rate":1}"#);
    let down = Instant::now();
    let status = child.wait().expect("wait");
    eprintln!("stays down: shift-traffic exited {:?} {:?} after the router went down", status.code(), down.elapsed());
    assert_eq!(status.code(), Some(3));
    let record = Record::load(&h.path("down.json"), &Expect::default()).expect("record loads");
    assert_eq!(record.status(), Status::Shifting, "nothing could be changed, so the record must not claim a rollback");
    assert_eq!(record.candidate_weight, 20);
    match last_event(&record) {
        Some(EventDetail::Error { message }) => {
            assert!(message.contains("the rollback failed too"), "{message}");
            assert!(message.contains("20% on the candidate"), "{message}");
        }
        other => panic!("last event {other:?}, expected an error event"),
    }
    // The router answers again: rollback restores stable.
    set_faults(&proxy, "{}");
    let rollback = h.step("rollback", &["-e", "dev", "--record", "down.json", "--reason", "router back"]);
    assert_eq!(code(&rollback), 0, "{}", stderr(&rollback));
    assert_eq!(h.state()["candidate_weight"], 0);
}
