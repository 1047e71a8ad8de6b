//! Faulty GitHub: `sluice-faultproxy` between the steps and the GitHub fake
//! answers 500s, GitHub's rate-limit 403s, slow answers and dropped
//! connections while promotions use the GitHub ledger. A step that could not
//! reach GitHub exits 3 and leaves the record saying what it still owes; the
//! same step run again once GitHub answers finishes the job, and GitHub ends
//! with exactly the statuses a clean run leaves, and the journal on the
//! ledger branch with each end once.

use crate::support::{Harness, code, exe, stderr};
use sluice_core::record::{Expect, Record, Status};
use sluice_github_fake::Fake;
use std::process::{Command, Output};

const TOKEN: &str = "ghs_faultsSECRETtoken0123456789abcdefghi";
const REPO: &str = "acme/shop";
const SHA: &str = "a1b2c3d4e5f60718293a4b5c6d7e8f9012345678";

struct Env {
    h: Harness,
    fake: Fake,
    proxy: String,
}

impl Env {
    fn start() -> Env {
        let mut h = Harness::start(&[("v1", &[]), ("v2", &[])], "{ kind = \"all_at_once\" }", "analysis = \"none\"\n");
        let fake = Fake::start(TOKEN);
        let v = h.spawn_server(
            "sluice-faultproxy",
            &["--listen", "127.0.0.1:0", "--upstream", &fake.api_url(), "--throttle", "github", "--slow", "1s"],
        );
        let proxy = format!("http://{}", v["listen"].as_str().expect("listen"));
        let config = std::fs::read_to_string(h.path("sluice.toml")).expect("config");
        let github = format!(
            "[ledger]\nkind = \"github\"\n[github]\nrepository = \"{REPO}\"\nwrite_interval = \"20ms\"\nmax_wait = \"5s\"\n"
        );
        let config = config.replace("[ledger]\nkind = \"file\"\npath = \"ledger.jsonl\"\n", &github);
        std::fs::write(h.path("sluice.toml"), config).expect("config");
        Env { h, fake, proxy }
    }

    fn step(&self, name: &str, run: u64, args: &[&str]) -> Output {
        Command::new(exe(name))
            .current_dir(self.h.dir.path())
            .env_remove("GITHUB_ACTIONS")
            .env_remove("GITHUB_OUTPUT")
            .env_remove("GITHUB_STEP_SUMMARY")
            .env("CI", "true")
            .env("GITHUB_TOKEN", TOKEN)
            .env("GITHUB_API_URL", &self.proxy)
            .env("GITHUB_SERVER_URL", "https://github.com")
            .env("GITHUB_REPOSITORY", REPO)
            .env("GITHUB_RUN_ID", run.to_string())
            .env("GITHUB_ACTOR", "alice")
            .args(["--config", "sluice.toml", "-e", "dev"])
            .args(args)
            .output()
            .expect("step runs")
    }

    fn faults(&self, rates: &str) {
        super::set_faults(&self.proxy, rates);
    }

    fn record(&self, name: &str) -> Record {
        Record::load(&self.h.path(name), &Expect::default()).expect("the record parses after every run")
    }

    /// sluice's statuses of a deployment on GitHub, oldest first.
    fn sluice_states(&self, id: u64) -> Vec<String> {
        let mut statuses = self.fake.deployment_statuses(REPO, id);
        statuses.sort_by_key(|s| s["id"].as_u64());
        statuses
            .iter()
            .filter(|s| s["description"].as_str().is_some_and(|d| d.starts_with("sluice: ")))
            .filter_map(|s| s["state"].as_str().map(str::to_owned))
            .collect()
    }

    /// Runs `name` under the faults; when it exits 3, checks what the record
    /// says, and runs it again with GitHub healthy. Returns the first exit.
    fn until_done(&self, name: &str, run: u64, record: &str, args: &[&str], flaky: &str) -> i32 {
        self.faults(flaky);
        let first = self.step(name, run, args);
        self.faults("{}");
        let exit = code(&first);
        match exit {
            0 => {}
            3 => {
                let err = stderr(&first);
                assert!(!err.contains(TOKEN), "the token was printed");
                if let Ok(r) = Record::load(&self.h.path(record), &Expect::default())
                    && r.ledger_due.is_some()
                {
                    assert!(err.contains("run `promote` or `rollback` on this record again"), "{name}: {err}");
                }
                let again = self.step(name, run, args);
                assert_eq!(code(&again), 0, "run {run}: {name} again with GitHub healthy: {}", stderr(&again));
            }
            _ => panic!("run {run}: {name} exited {exit}: {}", stderr(&first)),
        }
        exit
    }
}

#[test]
fn promotions_on_a_flaky_github_end_with_the_ledger_complete() {
    let env = Env::start();
    let v2 = env.h.apps[1].clone();
    let flaky = r#"{"error_rate":0.15,"throttle_rate":0.1,"slow_rate":0.05,"drop_rate":0.15}"#;
    let mut exits = std::collections::BTreeMap::<(&str, i32), u32>::new();
    for run in 0..6u64 {
        let rec = format!("gh{run}.json");
        let release = format!("v{}", run + 2);
        let gate = ["--record", rec.as_str(), "--release", release.as_str(), "--commit", SHA];
        *exits.entry(("gate", env.until_done("gate", run, &rec, &gate, flaky))).or_default() += 1;
        let shift = env.step("shift-traffic", run, &["--record", &rec, "--candidate-upstream", &v2]);
        assert_eq!(code(&shift), 0, "run {run}: shift-traffic: {}", stderr(&shift));
        let exit = env.until_done("promote", run, &rec, &["--record", &rec], flaky);
        *exits.entry(("promote", exit)).or_default() += 1;

        let record = env.record(&rec);
        assert_eq!(record.status(), Status::Promoted, "run {run}");
        assert!(record.ledger_due.is_none(), "run {run}: the ledger entry was written: {:?}", record.ledger_due);
        let id = record.github_deployment.expect("the record names its GitHub deployment");
        let states = env.sluice_states(id);
        assert_eq!(states.iter().filter(|s| *s == "success").count(), 1, "run {run}: one success: {states:?}");
        assert_eq!(states.last().map(String::as_str), Some("success"), "run {run}: {states:?}");
        // One deployment per run, however often a call was retried.
        let ours = env.fake.deployments(REPO).iter().filter(|d| d["payload"].to_string().contains(&record.id)).count();
        assert_eq!(ours, 1, "run {run}: deployments of {}", record.id);

        // Revert under faults too: v1 is stable again for the next run.
        let exit = env.until_done("rollback", run, &rec, &["--record", &rec, "--reason", "next run"], flaky);
        *exits.entry(("rollback", exit)).or_default() += 1;
        let record = env.record(&rec);
        assert_eq!(record.status(), Status::RolledBack, "run {run}");
        assert!(record.ledger_due.is_none(), "run {run}: the revert reached GitHub");
        let states = env.sluice_states(id);
        assert_eq!(states.last().map(String::as_str), Some("failure"), "run {run}: reverted: {states:?}");
        assert_eq!(env.h.state()["stable"]["upstream"], env.h.apps[0].as_str(), "run {run}: v1 serves again");
    }
    // The journal on the ledger branch holds each end exactly once.
    let files = env.fake.branch_files(REPO, "sluice-ledger");
    let mut ends = Vec::new();
    for path in files.iter().filter(|p| p.starts_with("ledger/shop/dev/")) {
        let text = env.fake.branch_file(REPO, "sluice-ledger", path).expect("journal file");
        for line in text.lines() {
            let entry: serde_json::Value = serde_json::from_str(line).expect("a journal line is JSON");
            ends.push((
                entry["id"].as_str().unwrap_or("").to_owned(),
                entry["outcome"].as_str().unwrap_or("").to_owned(),
            ));
        }
    }
    let mut unique = ends.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), ends.len(), "an end written twice: {ends:?}");
    assert_eq!(ends.iter().filter(|(_, o)| o == "promoted").count(), 6, "{ends:?}");
    assert_eq!(ends.iter().filter(|(_, o)| o == "reverted").count(), 6, "{ends:?}");
    let lease = env.fake.branch_file(REPO, "sluice-ledger", "lease/shop/dev.json").expect("the lease file");
    assert!(lease.contains("\"lease\": null"), "the last revert freed the environment: {lease}");
    let (report, injected) = super::fault_report(&env.proxy);
    eprintln!("github faults: exits {exits:?}; proxy {report}");
    assert!(injected >= 6, "too few faults were injected to mean anything: {report}");
}

#[test]
fn a_github_down_at_promote_keeps_the_entry_in_the_record_until_a_rerun_writes_it() {
    let env = Env::start();
    let v2 = env.h.apps[1].clone();
    let gate = env.step("gate", 1, &["--record", "r.json", "--release", "v2", "--commit", SHA]);
    assert_eq!(code(&gate), 0, "{}", stderr(&gate));
    let shift = env.step("shift-traffic", 1, &["--record", "r.json", "--candidate-upstream", &v2]);
    assert_eq!(code(&shift), 0, "{}", stderr(&shift));
    // GitHub down before promote: its lease check cannot read GitHub, so
    // it stops before anything moves.
    env.faults(r#"{"error_rate":1}"#);
    let early = env.step("promote", 1, &["--record", "r.json"]);
    assert_eq!(code(&early), 3, "GitHub down: {}", stderr(&early));
    assert_eq!(env.record("r.json").status(), Status::Verified, "nothing moved: {}", stderr(&early));
    assert_eq!(env.h.state()["stable"]["upstream"], env.h.apps[0].as_str());
    // GitHub reads but does not take writes: the router promotes, the final
    // status cannot be posted.
    env.faults(r#"{"error_rate":1,"methods":["POST"]}"#);
    let promote = env.step("promote", 1, &["--record", "r.json"]);
    env.faults("{}");
    assert_eq!(code(&promote), 3, "GitHub stayed down: {}", stderr(&promote));
    assert!(stderr(&promote).contains("run `promote` or `rollback` on this record again"), "{}", stderr(&promote));
    let record = env.record("r.json");
    assert_eq!(record.status(), Status::Promoted, "the router promoted; the record says so");
    let due = record.ledger_due.as_ref().expect("the record keeps the entry it owes");
    assert_eq!(due.outcome, sluice_core::ledger::LedgerOutcome::Promoted);
    let id = record.github_deployment.expect("deployment");
    assert!(!env.sluice_states(id).contains(&"success".to_owned()), "GitHub was down: no success yet");

    let again = env.step("promote", 1, &["--record", "r.json"]);
    assert_eq!(code(&again), 0, "{}", stderr(&again));
    assert!(stderr(&again).contains("an earlier run of this deployment owed"), "{}", stderr(&again));
    assert!(env.record("r.json").ledger_due.is_none());
    assert_eq!(env.sluice_states(id).last().map(String::as_str), Some("success"));
    // A third run has nothing left to write.
    let third = env.step("promote", 1, &["--record", "r.json"]);
    assert_eq!(code(&third), 0, "{}", stderr(&third));
    assert_eq!(env.sluice_states(id).iter().filter(|s| *s == "success").count(), 1);
}
