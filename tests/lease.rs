//! One promotion per environment at a time: the environment lease of the
//! file ledger, against the real binaries and the real embedded router.

use crate::support::*;
use std::time::Duration;

const CHECKS: &str = "[[defaults.check]]\nname = \"errors\"\nkind = \"error_rate\"\nmax = 0.05\nmin_samples = 10\n";
const CANARY: &str = "{ kind = \"canary\", stages = [50, 100], stage_duration = \"1s\" }";

fn gate(h: &Harness, record: &str, release: &str) -> std::process::Output {
    h.step("gate", &["-e", "dev", "--record", record, "--release", release, "--commit", "abcdef1"])
}

#[test]
fn two_promotions_started_together_one_waits_for_the_other() {
    let mut h = Harness::start_with(&[("v1", &[]), ("v2", &[]), ("v3", &[])], "250ms", CANARY, CHECKS);
    h.load(200, 60);
    // Two runs of the same release at once also get one lease between them.
    let (same1, same2) = std::thread::scope(|s| {
        let a = s.spawn(|| gate(&h, "same1.json", "v9"));
        let b = s.spawn(|| gate(&h, "same2.json", "v9"));
        (a.join().expect("a"), b.join().expect("b"))
    });
    let mut codes = [code(&same1), code(&same2)];
    codes.sort_unstable();
    assert_eq!(codes, [0, 1], "{} / {}", stderr(&same1), stderr(&same2));
    let held = if code(&same1) == 0 { "same1.json" } else { "same2.json" };
    let rollback = h.step("rollback", &["-e", "dev", "--record", held, "--reason", "test"]);
    assert_eq!(code(&rollback), 0, "{}", stderr(&rollback));

    let (a, b) = std::thread::scope(|s| {
        let a = s.spawn(|| gate(&h, "a.json", "v2"));
        let b = s.spawn(|| gate(&h, "b.json", "v3"));
        (a.join().expect("a"), b.join().expect("b"))
    });
    let (winner, loser, loser_record, winner_release) = match (code(&a), code(&b)) {
        (0, 1) => (a, b, "b.json", "v2"),
        (1, 0) => (b, a, "a.json", "v3"),
        other => panic!("expected one gate to pass and one to block, got {other:?}: {} / {}", stderr(&a), stderr(&b)),
    };
    let message = stderr(&loser);
    assert!(message.contains("WAIT  lease: environment dev is held by deployment shop-dev-"), "{message}");
    assert!(message.contains(&format!("(release {winner_release}")), "the message names the holder: {message}");
    assert!(stderr(&winner).contains("lease"), "{}", stderr(&winner));
    // The blocked one cannot shift anything.
    let state = h.state();
    let shift = h.step("shift-traffic", &["-e", "dev", "--record", loser_record, "--weight", "50"]);
    assert_eq!(code(&shift), 1, "{}", stderr(&shift));
    assert!(stderr(&shift).contains("is waiting at the gate"), "{}", stderr(&shift));
    assert_eq!(h.state(), state);

    // The holder finishes; the environment is free again.
    let (rec, upstream) = if winner_release == "v2" { ("a.json", &h.apps[1]) } else { ("b.json", &h.apps[2]) };
    let shift = h.step("shift-traffic", &["-e", "dev", "--record", rec, "--candidate-upstream", upstream]);
    assert_eq!(code(&shift), 0, "{}", stderr(&shift));
    let promote = h.step("promote", &["-e", "dev", "--record", rec]);
    assert_eq!(code(&promote), 0, "{}", stderr(&promote));
    let next = gate(&h, "c.json", "v4");
    assert_eq!(code(&next), 0, "after the promotion the environment is free: {}", stderr(&next));
    // The one that waited is gated again on its own record once free.
    let rollback = h.step("rollback", &["-e", "dev", "--record", "c.json"]);
    assert_eq!(code(&rollback), 0, "{}", stderr(&rollback));
    let again = h.step(
        "gate",
        &[
            "-e",
            "dev",
            "--record",
            loser_record,
            "--release",
            if winner_release == "v2" { "v3" } else { "v2" },
            "--commit",
            "abcdef1",
        ],
    );
    assert_eq!(code(&again), 0, "the waiting record is gated again: {}", stderr(&again));
}

#[test]
fn a_dead_runs_lease_expires_and_its_late_steps_are_refused() {
    let h = Harness::start_with(&[("v1", &[]), ("v2", &[])], "250ms", CANARY, CHECKS);
    let config = std::fs::read_to_string(h.path("sluice.toml")).expect("config");
    std::fs::write(h.path("sluice.toml"), config.replacen("[defaults]\n", "[defaults]\nlease_timeout = \"1s\"\n", 1))
        .expect("config");
    // A run takes the environment and dies.
    let dead = gate(&h, "dead.json", "v2");
    assert_eq!(code(&dead), 0, "{}", stderr(&dead));
    let held = gate(&h, "early.json", "v3");
    assert_eq!(code(&held), 1, "while the lease lasts: {}", stderr(&held));
    std::thread::sleep(Duration::from_millis(1300));
    let next = gate(&h, "next.json", "v3");
    assert_eq!(code(&next), 0, "{}", stderr(&next));
    assert!(stderr(&next).contains("took over the expired lease of deployment shop-dev-v2-"), "{}", stderr(&next));
    // The dead run comes back: it no longer holds the environment.
    let state = h.state();
    let late = h.step("shift-traffic", &["-e", "dev", "--record", "dead.json", "--candidate-upstream", &h.apps[1]]);
    assert_eq!(code(&late), 1, "{}", stderr(&late));
    assert!(stderr(&late).contains("is held by deployment shop-dev-v3-"), "{}", stderr(&late));
    assert_eq!(h.state(), state, "a refused step moved traffic");
}

/// The record id a record file holds.
fn record_id(h: &Harness, record: &str) -> String {
    let text = std::fs::read_to_string(h.path(record)).expect("record");
    let v: serde_json::Value = serde_json::from_str(&text).expect("json");
    v["id"].as_str().expect("id").to_owned()
}

#[test]
fn leases_free_themselves_and_a_dead_runs_lease_is_freed_deliberately() {
    let h = Harness::start_with(&[("v1", &[]), ("v2", &[])], "250ms", CANARY, CHECKS);
    let config = std::fs::read_to_string(h.path("sluice.toml")).expect("config");
    let v2 = h.apps[1].clone();

    // The router is down when the canary starts: nothing moved, so the
    // deployment is abandoned and the environment given back (exit 3).
    let a = gate(&h, "a.json", "v2");
    assert_eq!(code(&a), 0, "{}", stderr(&a));
    h.use_admin_url("http://127.0.0.1:9");
    let start = h.step("shift-traffic", &["-e", "dev", "--record", "a.json", "--candidate-upstream", &v2]);
    assert_eq!(code(&start), 3, "{}", stderr(&start));
    assert!(stdout(&start).contains("status=abandoned"), "{}", stdout(&start));
    assert!(stdout(&start).contains("decision=error"), "{}", stdout(&start));
    let ledger = h.ledger();
    assert_eq!(ledger.len(), 1, "{ledger:?}");
    assert_eq!(ledger[0]["outcome"], "abandoned");
    // A deployment that never moved traffic is given up without the router
    // (still down).
    let b = gate(&h, "b.json", "v2");
    assert_eq!(code(&b), 0, "the failed start freed the environment: {}", stderr(&b));
    let give_up = h.step("rollback", &["-e", "dev", "--record", "b.json", "--reason", "wrong release"]);
    assert_eq!(code(&give_up), 0, "{}", stderr(&give_up));
    assert!(stdout(&give_up).contains("decision=abandoned"), "{}", stdout(&give_up));
    std::fs::write(h.path("sluice.toml"), &config).expect("config");

    // A run moves traffic and dies with its record lost.
    let c = gate(&h, "c.json", "v2");
    assert_eq!(code(&c), 0, "{}", stderr(&c));
    let moved =
        h.step("shift-traffic", &["-e", "dev", "--record", "c.json", "--candidate-upstream", &v2, "--weight", "30"]);
    assert_eq!(code(&moved), 0, "{}", stderr(&moved));
    let dead = record_id(&h, "c.json");
    std::fs::remove_file(h.path("c.json")).expect("lose the record");
    // The next one waits, told who holds it, where its record was and how to
    // free the environment.
    let d = gate(&h, "d.json", "v2");
    assert_eq!(code(&d), 1, "{}", stderr(&d));
    let told = stderr(&d);
    assert!(told.contains(&dead), "{told}");
    assert!(told.contains("c.json"), "the holder's record file is named: {told}");
    assert!(told.contains("rollback --record"), "{told}");
    // A wrong id is refused and changes nothing, traffic included.
    let wrong = h.step("rollback", &["-e", "dev", "--live", "--free-lease", "shop-dev-v9-x", "--reason", "oops"]);
    assert_eq!(code(&wrong), 1, "{}", stderr(&wrong));
    assert!(stdout(&wrong).contains("lease=not-held"), "{}", stdout(&wrong));
    assert_eq!(h.state()["candidate_weight"], 30);
    let still = gate(&h, "d.json", "v2");
    assert_eq!(code(&still), 1, "{}", stderr(&still));
    // Freed deliberately: stable takes all traffic, the dead deployment is
    // closed as rolled back (it had moved traffic) with who and why.
    let free = h.step("rollback", &["-e", "dev", "--live", "--free-lease", &dead, "--reason", "runner lost"]);
    assert_eq!(code(&free), 0, "{}", stderr(&free));
    assert!(stdout(&free).contains("lease=freed"), "{}", stdout(&free));
    assert_eq!(h.state()["candidate_weight"], 0);
    let entry = h.ledger().into_iter().find(|e| e["id"] == dead.as_str()).expect("the dead run's entry");
    assert_eq!(entry["outcome"], "rolled_back");
    let reason = entry["reason"].as_str().unwrap_or_default();
    assert!(reason.contains("lease freed by") && reason.contains("runner lost"), "{reason}");
    let after = gate(&h, "d.json", "v2");
    assert_eq!(code(&after), 0, "the environment is free: {}", stderr(&after));
}
