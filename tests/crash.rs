//! Crash safety: `shift-traffic` killed with SIGKILL at random points of a
//! canary against the real embedded router, run after run.
//!
//! After every kill the record must parse, and must not claim more than the
//! router did; every other run the killed step is first re-run and must
//! either finish or roll back by itself; then `rollback` must restore 100%
//! stable, every time.
//!
//! SIGTERM and SIGINT (a cancelled workflow run, Ctrl-C) must stop the step
//! within 5 s at a consistent point, with a `cancelled` event recording the
//! weight read back from the router.
//!
//! `SLUICE_CRASH_RUNS` (default 120) and `SLUICE_CRASH_SEED` (default: from
//! the clock, printed) make a failure reproducible.

use crate::support::*;
use sluice_core::record::{EventDetail, Expect, Record, Status};
use std::process::Child;
use std::time::{Duration, Instant};

/// xorshift64*: enough randomness for kill points, no dependency.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) % n.max(1)
    }
}

const CHECKS: &str = "[[defaults.check]]\nname = \"errors\"\nkind = \"error_rate\"\nmax = 0.05\nmin_samples = 5\n";
const CANARY: &str = "{ kind = \"canary\", stages = [10, 50, 100], stage_duration = \"200ms\" }";

/// Waits until `child` exits or `delay` passes; then kills it with SIGKILL.
/// Returns whether it was still running when killed.
fn kill_after(child: &mut Child, delay: Duration) -> bool {
    let deadline = Instant::now() + delay;
    while Instant::now() < deadline {
        if child.try_wait().expect("try_wait").is_some() {
            return false;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    let running = child.try_wait().expect("try_wait").is_none();
    let _ = child.kill(); // SIGKILL on Unix
    let _ = child.wait();
    running
}

#[test]
fn shift_traffic_killed_anywhere_leaves_a_valid_record_and_rollback_restores_stable() {
    let runs: u32 = std::env::var("SLUICE_CRASH_RUNS").ok().and_then(|v| v.parse().ok()).unwrap_or(120);
    let seed: u64 = std::env::var("SLUICE_CRASH_SEED").ok().and_then(|v| v.parse().ok()).unwrap_or_else(|| {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(1, |d| d.as_nanos() as u64) | 1
    });
    eprintln!("crash test: {runs} runs, SLUICE_CRASH_SEED={seed}");
    let mut rng = Rng(seed);
    let mut h = Harness::start_with(&[("v1", &[]), ("v2", &[])], "100ms", CANARY, CHECKS);
    h.load(300, 600);
    let v2 = h.apps[1].clone();
    let (mut killed_running, mut reruns) = (0, 0);
    let mut status_at_kill = std::collections::BTreeMap::<String, u32>::new();
    for run in 0..runs {
        let rec = format!("r{run}.json");
        let gate = h.step("gate", &["-e", "dev", "--record", &rec, "--release", "v2", "--commit", "abcdef1"]);
        assert_eq!(code(&gate), 0, "run {run}: gate: {}", stderr(&gate));
        // Half the kills land in the first 60 ms (loading, saving the router
        // state, the first weight), half anywhere in the canary.
        let delay = Duration::from_millis(if run % 2 == 0 { rng.below(60) } else { rng.below(900) });
        let what = format!("run {run} (SLUICE_CRASH_SEED={seed}, killed after {delay:?})");
        let shift_args = ["-e", "dev", "--record", rec.as_str(), "--candidate-upstream", v2.as_str()];
        let mut child = h.spawn("shift-traffic", &shift_args);
        killed_running += u32::from(kill_after(&mut child, delay));

        let record = Record::load(&h.path(&rec), &Expect::default())
            .unwrap_or_else(|e| panic!("{what}: the record does not load: {e}"));
        *status_at_kill.entry(format!("{:?}", record.status())).or_default() += 1;
        // The record never claims a weight the router did not confirm: every
        // traffic event's weight was read back before it was written.
        let last_traffic = record.events.iter().rev().find_map(|e| match &e.detail {
            EventDetail::Traffic { to, .. } => Some(*to),
            _ => None,
        });
        if let Some(to) = last_traffic
            && record.status() == Status::Shifting
        {
            assert_eq!(record.candidate_weight, to, "{what}: record weight and last traffic event disagree");
        }

        if run % 2 == 1 && !record.status().is_final() {
            reruns += 1;
            let again = h.step("shift-traffic", &shift_args);
            assert!(matches!(code(&again), 0 | 1), "{what}: re-run exited {}: {}", code(&again), stderr(&again));
            let record = Record::load(&h.path(&rec), &Expect::default()).expect("record after re-run");
            assert!(
                matches!(record.status(), Status::Verified | Status::RolledBack),
                "{what}: re-run left status {:?}",
                record.status()
            );
            assert_eq!(h.state()["candidate_weight"], u64::from(record.candidate_weight), "{what}: after re-run");
        }

        // A kill before the first weight change leaves the record admitted:
        // rollback abandons it (traffic confirmed on stable), anything later
        // is rolled back.
        let moved = Record::load(&h.path(&rec), &Expect::default())
            .expect("record before rollback")
            .events
            .iter()
            .any(|e| matches!(e.detail, EventDetail::Traffic { .. }));
        let rollback = h.step("rollback", &["-e", "dev", "--record", &rec, "--reason", "crash test"]);
        assert_eq!(code(&rollback), 0, "{what}: rollback: {}", stderr(&rollback));
        assert_eq!(h.state()["candidate_weight"], 0, "{what}: traffic not back on stable");
        let record = Record::load(&h.path(&rec), &Expect::default()).expect("record after rollback");
        let ended = if moved { Status::RolledBack } else { Status::Abandoned };
        assert_eq!(record.status(), ended, "{what}");
    }
    eprintln!(
        "crash test: {runs} runs, {killed_running} killed while running, {reruns} re-run after the kill; \
         status at kill: {status_at_kill:?}"
    );
    assert!(killed_running >= runs / 2, "too few kills landed while the step ran ({killed_running} of {runs})");
}

fn send(child: &Child, signal: &str) {
    let status = std::process::Command::new("kill").args([signal, &child.id().to_string()]).status().expect("kill");
    assert!(status.success(), "kill {signal} failed");
}

#[test]
fn sigterm_and_sigint_stop_a_canary_within_5s_and_record_where_traffic_stands() {
    let slow = "{ kind = \"canary\", stages = [10, 50, 100], stage_duration = \"30s\" }";
    let mut h = Harness::start_with(&[("v1", &[]), ("v2", &[])], "200ms", slow, CHECKS);
    h.load(200, 120);
    let v2 = h.apps[1].clone();
    // (signal, expected exit, wait before sending it): during the first
    // stage's analysis, and right at the start (0: as soon as the step has
    // saved the router state, its first write, which follows the handlers).
    for (run, (signal, expected, after)) in
        [("-TERM", 143, 1500), ("-INT", 130, 1500), ("-TERM", 143, 0), ("-INT", 130, 0)].into_iter().enumerate()
    {
        let rec = format!("sig{run}.json");
        let gate = h.step("gate", &["-e", "dev", "--record", &rec, "--release", "v2", "--commit", "abcdef1"]);
        assert_eq!(code(&gate), 0, "{}", stderr(&gate));
        let mut child = h.spawn("shift-traffic", &["-e", "dev", "--record", &rec, "--candidate-upstream", &v2]);
        if after == 0 {
            let deadline = Instant::now() + Duration::from_secs(10);
            while Record::load(&h.path(&rec), &Expect::default()).expect("record").router_before.is_none() {
                assert!(Instant::now() < deadline, "shift-traffic never saved the router state");
                std::thread::sleep(Duration::from_millis(1));
            }
        } else {
            std::thread::sleep(Duration::from_millis(after));
        }
        let sent = Instant::now();
        send(&child, signal);
        let status = loop {
            if let Some(status) = child.try_wait().expect("try_wait") {
                break status;
            }
            assert!(sent.elapsed() < Duration::from_secs(5), "{signal} after {after}ms: still running after 5s");
            std::thread::sleep(Duration::from_millis(10));
        };
        let took = sent.elapsed();
        assert_eq!(status.code(), Some(expected), "{signal} after {after}ms");
        let record = Record::load(&h.path(&rec), &Expect::default()).expect("record loads");
        let router_weight = h.state()["candidate_weight"].as_u64().expect("weight");
        assert_eq!(u64::from(record.candidate_weight), router_weight, "{signal} after {after}ms: record and router");
        if after > 1000 {
            assert_eq!(router_weight, 10, "{signal} after {after}ms: the canary should have been in its first stage");
        }
        // Cancelled before any traffic moved, the deployment is abandoned
        // (the environment free again); later, the cancellation is the last
        // word and rollback restores stable.
        let mut events = record.events.iter().rev().map(|e| &e.detail);
        if router_weight == 0 {
            assert!(
                matches!(events.next(), Some(EventDetail::Abandoned { .. })),
                "{signal} after {after}ms: not abandoned: {:?}",
                record.events.last()
            );
            assert_eq!(record.status(), Status::Abandoned, "{signal} after {after}ms");
        }
        match events.next() {
            Some(EventDetail::Cancelled { signal: name, candidate_weight, router_error: None }) => {
                assert_eq!(format!("-{}", name.trim_start_matches("SIG")), signal);
                assert_eq!(candidate_weight.map(u64::from), Some(router_weight));
            }
            other => panic!("{signal} after {after}ms: event is {other:?}, expected cancelled"),
        }
        eprintln!("{signal} after {after}ms: exited {expected} in {took:?} with the candidate at {router_weight}%");
        let rollback = h.step("rollback", &["-e", "dev", "--record", &rec, "--reason", "run cancelled"]);
        assert_eq!(code(&rollback), 0, "{}", stderr(&rollback));
        assert_eq!(h.state()["candidate_weight"], 0);
    }
}

/// A step killed after it appended to the file ledger but before it cleared
/// the entry from the record: run again, it finds the entry there and does
/// not write it twice.
#[test]
fn a_ledger_entry_written_just_before_a_kill_is_not_written_twice() {
    let mut h = Harness::start(&[("v1", &[]), ("v2", &[])], "{ kind = \"all_at_once\" }", "");
    h.load(50, 5);
    let v2 = h.apps[1].clone();
    let gate = h.step("gate", &["-e", "dev", "--record", "k.json", "--release", "v2", "--commit", "abcdef1"]);
    assert_eq!(code(&gate), 0, "{}", stderr(&gate));
    let shift = h.step("shift-traffic", &["-e", "dev", "--record", "k.json", "--candidate-upstream", &v2]);
    assert_eq!(code(&shift), 0, "{}", stderr(&shift));
    let rollback = h.step("rollback", &["-e", "dev", "--record", "k.json", "--reason", "test"]);
    assert_eq!(code(&rollback), 0, "{}", stderr(&rollback));
    let ledger = h.ledger();
    assert_eq!(ledger.len(), 1, "{ledger:?}");
    // The record as the kill would have left it: ended, the entry still due.
    let mut record = Record::load(&h.path("k.json"), &Expect::default()).expect("record");
    assert!(record.ledger_due.is_none(), "a finished rollback owes nothing");
    let entry: sluice_core::ledger::LedgerEntry = serde_json::from_value(ledger[0].clone()).expect("entry");
    record.ledger_due = Some(entry);
    record.save(&h.path("k.json")).expect("save");

    let again = h.step("rollback", &["-e", "dev", "--record", "k.json"]);
    assert_eq!(code(&again), 0, "{}", stderr(&again));
    assert_eq!(h.ledger().len(), 1, "the entry is written once");
    let record = Record::load(&h.path("k.json"), &Expect::default()).expect("record");
    assert!(record.ledger_due.is_none(), "nothing is owed any more");
    assert_eq!(record.status(), Status::RolledBack);
}
