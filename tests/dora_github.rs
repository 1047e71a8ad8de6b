//! `dora-report` reading the deployment history from GitHub: the real
//! binary against the local fake of GitHub's REST API, seeded at exact times
//! the way sluice's ledger writes deployments and statuses. The figures of
//! the hand-computed case are worked out in the comments; the same history
//! as a ledger file must give the same report.

use serde_json::{Value, json};
use sluice_core::ledger::{ChangeKind, CommitInfo, LEDGER_SCHEMA, LedgerEntry, LedgerOutcome};
use sluice_github_fake::Fake;
use sluice_providers::github::ledger::{GitHubLedger, Target};
use std::path::Path;
use std::process::{Command, Output};

const TOKEN: &str = "ghs_doraSECRETtoken0123456789abcdefghijkl";
const REPO: &str = "acme/shop";

fn t(text: &str) -> jiff::Timestamp {
    text.parse().expect("time")
}

/// A 40-hex SHA from a short name.
fn sha(name: &str) -> String {
    let hex: String = name.bytes().map(|b| format!("{b:02x}")).collect();
    format!("{hex:0<40}")
}

/// A commit of the test repository: name, committer time, merge.
struct C {
    name: String,
    at: String,
    merge: bool,
}

fn c(name: &str, at: &str, merge: bool) -> C {
    C { name: name.to_owned(), at: at.to_owned(), merge }
}

/// One ledger entry as `promote` / `rollback` would write it.
#[allow(clippy::too_many_arguments)]
fn entry(
    id: &str,
    version: &str,
    commit: &str,
    change: ChangeKind,
    started: &str,
    finished: &str,
    outcome: LedgerOutcome,
    reason: Option<&str>,
) -> LedgerEntry {
    LedgerEntry {
        schema: LEDGER_SCHEMA.to_owned(),
        id: id.to_owned(),
        app: "shop".into(),
        environment: "prd".into(),
        version: version.to_owned(),
        commit: Some(sha(commit)),
        commits: Vec::new(),
        change,
        incident: None,
        strategy: "canary".into(),
        triggered_by: Some("octocat".into()),
        started_at: t(started),
        finished_at: t(finished),
        outcome,
        reason: reason.map(str::to_owned),
        unanalysed: false,
        targets: Vec::new(),
    }
}

/// The hand-computed history (prd, window 2026-03-02 to 2026-03-16, two
/// UTC weeks): commits in order, and the ledger entries.
fn scenario() -> (Vec<C>, Vec<LedgerEntry>) {
    use ChangeKind::{Hotfix, Planned};
    use LedgerOutcome::{Promoted, Reverted, RolledBack};
    let commits = vec![
        c("c0", "2026-02-20T00:00:00Z", false),
        c("c1", "2026-03-02T08:00:00Z", false),
        // A merge commit: never a change, whatever its lead time.
        c("c2", "2026-03-02T09:00:00Z", true),
        c("c3", "2026-03-03T09:00:00Z", false),
        c("c4", "2026-03-03T11:00:00Z", false),
        // The revert of c4, shipped by a hotfix.
        c("c5", "2026-03-03T15:00:00Z", false),
        c("c6", "2026-03-05T09:00:00Z", false),
        c("c7", "2026-03-05T13:00:00Z", false),
        c("c8", "2026-03-10T09:00:00Z", false),
        c("c9", "2026-03-10T13:00:00Z", false),
    ];
    let e = entry;
    let entries = vec![
        // D0, before the window: the base D1 is compared with.
        e("d0", "v0", "c0", Planned, "2026-02-25T09:50:00Z", "2026-02-25T10:00:00Z", Promoted, None),
        e("d1", "v1", "c2", Planned, "2026-03-02T10:00:00Z", "2026-03-02T10:30:00Z", Promoted, None),
        e("d2", "v2", "c3", Planned, "2026-03-03T10:00:00Z", "2026-03-03T10:20:00Z", RolledBack, Some("error rate 5%")),
        e("d3", "v3", "c4", Planned, "2026-03-03T12:00:00Z", "2026-03-03T12:30:00Z", Promoted, None),
        e("d3", "v3", "c4", Planned, "2026-03-03T12:00:00Z", "2026-03-03T14:00:00Z", Reverted, Some("p99 latency")),
        e("d4", "v4", "c5", Hotfix, "2026-03-03T16:00:00Z", "2026-03-03T16:20:00Z", Promoted, None),
        e("d5", "v5", "c6", Planned, "2026-03-05T10:00:00Z", "2026-03-05T10:30:00Z", Promoted, None),
        e("d6", "v6", "c7", Hotfix, "2026-03-05T14:00:00Z", "2026-03-05T14:15:00Z", Promoted, None),
        // A redeploy of the same commit: no new commits.
        e("d7", "v6", "c7", Planned, "2026-03-09T10:00:00Z", "2026-03-09T10:10:00Z", Promoted, None),
        e("d8", "v8", "c8", Planned, "2026-03-10T10:00:00Z", "2026-03-10T10:30:00Z", Promoted, None),
        e("d9", "v9", "c9", Planned, "2026-03-11T10:00:00Z", "2026-03-11T10:30:00Z", Promoted, None),
    ];
    (commits, entries)
}

/// The ledger file `promote` would have written: each promotion lists the
/// commits after the previous promoted commit (`git log prev..this`; the
/// commit alone the first time); d8 is linked to the incident issue #1.
fn file_entries(commits: &[C], entries: &[LedgerEntry]) -> Vec<LedgerEntry> {
    let position = |s: &str| commits.iter().position(|c| sha(&c.name) == s).expect("known commit");
    let mut previous: Option<usize> = None;
    let mut out = Vec::new();
    for e in entries {
        let mut e = e.clone();
        if e.outcome == LedgerOutcome::Promoted {
            let here = position(e.commit.as_deref().expect("commit"));
            let range = match previous {
                Some(p) if p >= here => here + 1..here + 1,
                Some(p) => p + 1..here + 1,
                None => here..here + 1,
            };
            e.commits = commits[range]
                .iter()
                .map(|c| CommitInfo { sha: sha(&c.name), time: t(&c.at), merge: c.merge })
                .collect();
            previous = Some(here);
        }
        if e.id == "d8" {
            e.incident = Some("#1".into());
        }
        out.push(e);
    }
    out
}

/// Seeds the fake as sluice's GitHub ledger writes: a deployment per record
/// (payload `sluice`), `in_progress` at its start, then `success` /
/// `inactive` / `failure` with sluice's descriptions at each entry's end.
/// Returns each record's deployment id.
fn seed(fake: &Fake, commits: &[C], entries: &[LedgerEntry]) -> Vec<(String, u64)> {
    for c in commits {
        fake.pin_clock(Some(t(&c.at)));
        if c.merge {
            fake.add_merge_commit(REPO, &sha(&c.name), &sha("c0"), "octocat", &format!("Merge {}", c.name));
        } else {
            fake.add_commit(REPO, &sha(&c.name), "octocat", &c.name);
        }
    }
    let mut ids: Vec<(String, u64)> = Vec::new();
    let mut ordered: Vec<&LedgerEntry> = entries.iter().collect();
    ordered.sort_by_key(|e| e.finished_at);
    for e in ordered {
        let id = match ids.iter().find(|(r, _)| *r == e.id) {
            Some((_, id)) => *id,
            None => {
                fake.pin_clock(Some(e.started_at));
                let payload = json!({ "sluice": {
                    "id": e.id, "app": e.app, "version": e.version, "strategy": e.strategy,
                    "change": e.change, "incident": null, "triggered_by": e.triggered_by,
                }});
                let id = fake.add_deployment(REPO, &e.environment, e.commit.as_deref().expect("commit"), payload, true);
                fake.add_deployment_status(
                    REPO,
                    id,
                    "in_progress",
                    &format!("sluice: deploying {} (canary)", e.version),
                );
                ids.push((e.id.clone(), id));
                id
            }
        };
        fake.pin_clock(Some(e.finished_at));
        let v = &e.version;
        let reason = e.reason.as_deref().unwrap_or("");
        let (state, description) = match e.outcome {
            LedgerOutcome::Promoted => ("success", format!("sluice: {v} promoted, stable in {}", e.environment)),
            LedgerOutcome::RolledBack => ("inactive", format!("sluice: {v} rolled back: {reason}")),
            LedgerOutcome::Reverted => ("failure", format!("sluice: {v} reverted after promotion: {reason}")),
            LedgerOutcome::Failed => ("failure", format!("sluice: {v} failed: {reason}")),
            LedgerOutcome::Abandoned => ("inactive", format!("sluice: {v} abandoned: {reason}")),
        };
        fake.add_deployment_status(REPO, id, state, &description);
        if e.id == "d2" {
            // GitHub's own status when the job ended: not sluice's, so not
            // a promotion.
            fake.add_deployment_status(REPO, id, "success", "");
        }
    }
    ids
}

/// Seeds the hand-computed history with its issues.
fn seed_scenario(fake: &Fake) -> (Vec<C>, Vec<LedgerEntry>) {
    let (commits, entries) = scenario();
    seed(fake, &commits, &entries);
    seed_issues(fake);
    // A deployment a job made that sluice never adopted: no sluice status.
    fake.pin_clock(Some(t("2026-03-12T10:00:00Z")));
    fake.add_job_deployment(REPO, "prd", &sha("c9"), "https://github.com/acme/shop/actions/runs/9");
    fake.pin_clock(None);
    (commits, entries)
}

/// An incident opened after d8 reached prd (issue #1), naming app and
/// version; a pull request with the label naming v9 (not an incident).
fn seed_issues(fake: &Fake) {
    fake.pin_clock(Some(t("2026-03-10T12:00:00Z")));
    let issue = fake.add_issue(REPO, "Checkout errors in prd", &["incident"], "open");
    fake.set_issue_body(REPO, issue, "Since the deploy of shop v8 at 10:30, checkout fails.");
    fake.add_pull_request(REPO, "Fix for shop v9", &["incident"]);
    fake.pin_clock(None);
}

const BRANCH: &str = "sluice-ledger";

/// Seeds the journal on the ledger branch as sluice's GitHub ledger writes
/// it: each entry (with the commits `promote` found) a line of its month's
/// file, in the order they ended, naming the deployment it closed (`ids`);
/// and the marker of when the journal started.
fn seed_journal(fake: &Fake, entries: &[LedgerEntry], ids: &[(String, u64)], since: &str, before: bool) {
    use sluice_providers::github::journal;
    let mut ordered: Vec<&LedgerEntry> = entries.iter().collect();
    ordered.sort_by_key(|e| e.finished_at);
    let mut files: std::collections::BTreeMap<String, String> = Default::default();
    for e in ordered {
        let deployment = ids.iter().find(|(r, _)| *r == e.id).map(|(_, id)| *id);
        let text = files.entry(journal::month_path(&e.app, &e.environment, e.finished_at)).or_default();
        text.push_str(&journal::line(e, deployment).expect("line"));
        text.push('\n');
    }
    let start = json!({ "schema": journal::SCHEMA, "since": since, "deployments_before": before });
    fake.put_branch_file(REPO, BRANCH, journal::START, &start.to_string());
    for (path, text) in files {
        fake.put_branch_file(REPO, BRANCH, &path, &text);
    }
}

fn config(dir: &Path) {
    std::fs::write(
        dir.join("sluice.toml"),
        format!(
            "app = \"shop\"\n[ledger]\nkind = \"github\"\n[github]\nrepository = \"{REPO}\"\n\
             [defaults]\nstrategy = {{ kind = \"all_at_once\" }}\n\
             [[environment]]\nname = \"tst\"\nrouter = {{ kind = \"local\", admin_url = \"http://127.0.0.1:9\" }}\n\
             [[environment]]\nname = \"prd\"\nrouter = {{ kind = \"local\", admin_url = \"http://127.0.0.1:9\" }}\n"
        ),
    )
    .expect("config");
}

fn dora(dir: &Path, fake: &Fake, token: Option<&str>, args: &[&str]) -> Output {
    let mut cmd = Command::new(crate::support::exe("dora-report"));
    cmd.current_dir(dir)
        .args(args)
        .env_remove("GITHUB_ACTIONS")
        .env_remove("GITHUB_STEP_SUMMARY")
        .env_remove("GITHUB_OUTPUT")
        .env_remove("GITHUB_REPOSITORY")
        .env_remove("RUNNER_DEBUG")
        .env("GITHUB_API_URL", fake.api_url());
    match token {
        Some(token) => cmd.env("GITHUB_TOKEN", token),
        None => cmd.env_remove("GITHUB_TOKEN"),
    };
    cmd.output().expect("run dora-report")
}

fn report(out: &Output) -> Value {
    assert_eq!(out.status.code(), Some(0), "stderr: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("JSON report")
}

/// The API calls dora-report says it made.
fn calls(out: &Output) -> u64 {
    let stderr = String::from_utf8_lossy(&out.stderr);
    let at = stderr.find(" API calls").expect("the call count on stderr");
    stderr[..at].rsplit(' ').next().and_then(|n| n.parse().ok()).expect("a number of calls")
}

const WINDOW: [&str; 8] = ["--since", "2026-03-02", "--until", "2026-03-16", "-e", "prd", "--format", "json"];

#[test]
fn the_github_history_gives_the_hand_computed_figures() {
    let _turn = crate::support::shared();
    let fake = Fake::start(TOKEN);
    seed_scenario(&fake);
    let dir = tempfile::tempdir().expect("tempdir");
    config(dir.path());
    let out = dora(dir.path(), &fake, Some(TOKEN), &WINDOW);
    let r = report(&out);
    let g = &r["groups"][0];
    assert_eq!(r["groups"].as_array().map(Vec::len), Some(1), "{r:#}");
    assert_eq!((g["app"].as_str(), g["environment"].as_str()), (Some("shop"), Some("prd")));
    let c = &g["counts"];
    // Attempts d1..d9 (9; d2 rolled back, the rest promoted: 8), d3's
    // revert an entry but no attempt; the job's deployment nothing.
    assert_eq!(c["entries"], 10);
    assert_eq!(c["attempts"], 9);
    assert_eq!(c["deployments"], 8);
    assert_eq!(c["rolled_back"], 1);
    assert_eq!(c["reverted"], 1);
    assert_eq!(c["hotfix_deployments"], 2);
    // d2 rolled back, d3 reverted, d5 followed by the hotfix d6 within
    // 3.5 h, d8 linked to incident #1. d4 (hotfix) follows d1 as stable
    // after d3's revert, 29.5 h later: outside the 24 h window.
    assert_eq!(c["failed_deployments"], 4);
    assert_eq!(c["unrecovered"], 0);
    let m = &g["metrics"];
    // 8 deployments over 14 days, both weeks with one.
    let f = &m["deployment_frequency"]["value"];
    assert_eq!(f["deployments"], 8);
    assert!((f["per_day"].as_f64().expect("per_day") - 8.0 / 14.0).abs() < 1e-9);
    assert!((f["per_week"].as_f64().expect("per_week") - 4.0).abs() < 1e-9);
    assert_eq!(f["share_of_weeks_with_deployment"], 1.0);
    // Lead times (s): c1 9000 (d1; c2 is a merge), c3 12600 and c4 5400
    // (d3: c3 was only in the rolled-back d2), c5 4800, c6 5400, c7 4500,
    // d7 none, c8 5400, c9 77400. Sorted: 4500 4800 5400 5400 5400 9000
    // 12600 77400; median 5400; p90 at rank 6.3: 12600 + 0.3 × 64800.
    let lead = &m["change_lead_time"]["value"];
    assert_eq!(lead["samples"], 8);
    assert_eq!(lead["median_seconds"], 5400.0);
    assert!((lead["p90_seconds"].as_f64().expect("p90") - 32040.0).abs() < 1e-6);
    let cfr = &m["change_fail_rate"]["value"];
    assert_eq!((cfr["numerator"].as_u64(), cfr["denominator"].as_u64()), (Some(4), Some(9)));
    // Recovery (s): d2 1200 (its rollback), d3 7200 (start to revert end),
    // d5 15300 (to d6), d8 88200 (to d9). Median 11250; p90 at rank 2.7:
    // 15300 + 0.7 × 72900.
    let rec = &m["failed_deployment_recovery_time"]["value"];
    assert_eq!(rec["samples"], 4);
    assert_eq!(rec["median_seconds"], 11250.0);
    assert!((rec["p90_seconds"].as_f64().expect("p90") - 66330.0).abs() < 1e-6);
    let rework = &m["deployment_rework_rate"]["value"];
    assert_eq!((rework["numerator"].as_u64(), rework["denominator"].as_u64()), (Some(2), Some(8)));
    // The history keeps the rollback's reason as sluice gave it.
    let rows = r["environments"][0]["history"]["rows"].as_array().expect("rows");
    let d2 = rows.iter().find(|row| row["id"] == "d2").expect("d2 in the history");
    assert_eq!(d2["reason"], "error rate 5%");
    assert_eq!(d2["outcome"], "rolled_back");
    // The ledger branch's files (none: no journal yet), 1 page of
    // deployments, 11 statuses, 7 compares (d7 redeploys its base; d0 is
    // context before the window), 1 page of issues.
    assert_eq!(calls(&out), 21, "{}", String::from_utf8_lossy(&out.stderr));
    let seen = fake.seen();
    let first = format!("/compare/{}...{}", sha("c0"), sha("c2"));
    assert!(seen.iter().any(|s| s.path.ends_with(&first)), "d1 is compared with d0's commit");
    assert!(!seen.iter().any(|s| s.path.contains("/commits/")), "every promotion had a base to compare with");
}

#[test]
fn the_same_history_as_a_ledger_file_gives_the_same_report() {
    let _turn = crate::support::shared();
    let fake = Fake::start(TOKEN);
    let (commits, entries) = seed_scenario(&fake);
    let dir = tempfile::tempdir().expect("tempdir");
    config(dir.path());
    let ledger = dir.path().join("ledger.jsonl");
    let lines: String =
        file_entries(&commits, &entries).iter().map(|e| serde_json::to_string(e).expect("entry") + "\n").collect();
    std::fs::write(&ledger, lines).expect("ledger");
    let all = ["--since", "all", "--until", "2026-03-16", "-e", "prd", "--format", "json"];
    for window in [&WINDOW, &all] {
        let from_github = report(&dora(dir.path(), &fake, Some(TOKEN), window));
        let mut args = window.to_vec();
        args.extend(["--ledger", "ledger.jsonl"]);
        let from_file = report(&dora(dir.path(), &fake, Some(TOKEN), &args));
        assert_eq!(from_github, from_file, "window {window:?}");
    }
}

#[test]
fn hundreds_of_deployments_are_read_across_pages_and_capped() {
    let _turn = crate::support::shared();
    let fake = Fake::start(TOKEN);
    seed(&fake, &regular_commits(300), &regular_history(300));
    fake.pin_clock(None);
    let dir = tempfile::tempdir().expect("tempdir");
    config(dir.path());
    let args = ["--since", "all", "--until", "2026-04-01", "-e", "prd", "--format", "json"];
    let out = dora(dir.path(), &fake, Some(TOKEN), &args);
    let r = report(&out);
    assert_eq!(r["groups"][0]["counts"]["deployments"], 300);
    // Every commit's lead time is 40 minutes.
    assert_eq!(r["groups"][0]["metrics"]["change_lead_time"]["value"]["samples"], 300);
    assert_eq!(r["groups"][0]["metrics"]["change_lead_time"]["value"]["median_seconds"], 2400.0);
    let pages: Vec<String> =
        fake.seen().iter().filter(|s| s.path.ends_with("/deployments")).map(|s| s.query.clone()).collect();
    assert_eq!(pages.len(), 3, "{pages:?}");
    // No journal (1), 3 pages, 300 statuses, 299 compares and the first
    // commit, 1 issues page.
    let all_calls = calls(&out);
    assert_eq!(all_calls, 605);
    eprintln!("300 deployments, all read: {all_calls} API calls");

    let mut capped = args.to_vec();
    capped.extend(["--github-max-deployments", "100"]);
    let out = dora(dir.path(), &fake, Some(TOKEN), &capped);
    let r = report(&out);
    assert_eq!(r["groups"][0]["counts"]["deployments"], 100);
    let notes = r["notes"].to_string();
    assert!(notes.contains("newest 100 of 300 deployments"), "{notes}");
    // A second run answers the pages it saw before from the ETag cache.
    eprintln!("300 deployments, capped at 100 (second run, ETag cache warm): {} API calls", calls(&out));
    eprintln!("{}", String::from_utf8_lossy(&out.stderr));

    // In a window: the listing stops a page past the context, and only
    // promotions in the window are compared.
    let window = ["--since", "2026-03-01", "--until", "2026-03-08", "-e", "prd", "--format", "json"];
    let out = dora(dir.path(), &fake, Some(TOKEN), &window);
    let r = report(&out);
    // 6-hourly deployments: 4 a day over 7 days.
    assert_eq!(r["groups"][0]["counts"]["deployments"], 28);
    eprintln!("300 deployments, a 7-day window: {} API calls", calls(&out));
}

#[test]
fn a_missing_token_is_bad_input_and_a_refused_token_a_provider_failure() {
    let _turn = crate::support::shared();
    let fake = Fake::start(TOKEN);
    let dir = tempfile::tempdir().expect("tempdir");
    config(dir.path());
    let out = dora(dir.path(), &fake, None, &WINDOW);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("GITHUB_TOKEN is not set") && stderr.contains("github.token"), "{stderr}");
    let out = dora(dir.path(), &fake, Some("ghs_wrong"), &WINDOW);
    assert_eq!(out.status.code(), Some(3), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot read the deployment history from GitHub"));
    assert!(out.stdout.is_empty());
}

/// A deployment that never moved traffic, ended by the real GitHub ledger
/// (`GitHubLedger::finish` with `abandoned`), is read back as abandoned:
/// not an attempt, so every figure of the hand-computed case stays as it
/// was; the report counts it apart and lists it. The ledger file says the
/// same.
#[test]
fn an_abandoned_deployment_is_neither_a_deployment_nor_a_failure() {
    let _turn = crate::support::shared();
    let fake = Fake::start(TOKEN);
    let (commits, entries) = seed_scenario(&fake);
    let dir = tempfile::tempdir().expect("tempdir");
    config(dir.path());
    let before = report(&dora(dir.path(), &fake, Some(TOKEN), &WINDOW));

    // 2026-03-05 11:00, half an hour after d5: as a hotfix attempt it would
    // mark d5 failed (it already is, by d6); as a rolled-back one it would
    // be a failed attempt.
    let started = t("2026-03-05T11:00:00Z");
    let mut record = sluice_core::record::Record::new(
        sluice_core::record::NewRecord {
            app: "shop".into(),
            environment: "prd".into(),
            version: "v7".into(),
            commit: Some(sha("c7")),
            change: ChangeKind::Hotfix,
            incident: None,
            strategy: sluice_core::config::Strategy::AllAtOnce,
            triggered_by: Some("octocat".into()),
            run_url: None,
        },
        started,
    );
    let target = Target { environment_url: None, production: true };
    let reason = "the router was down: no traffic moved";
    let entry = record.ledger_entry(LedgerOutcome::Abandoned, Some(reason.into()), t("2026-03-05T11:02:00Z"));
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    runtime.block_on(async {
        let github = sluice_providers::github::GitHub::new(sluice_providers::github::Settings {
            api_url: fake.api_url(),
            server_url: "https://github.com".into(),
            token: TOKEN.into(),
            repository: REPO.into(),
            cache_dir: None,
            write_interval: std::time::Duration::from_millis(1),
            max_wait: std::time::Duration::from_secs(5),
            timeout: std::time::Duration::from_secs(5),
            backoff: sluice_providers::retry::Backoff {
                attempts: 3,
                first: std::time::Duration::from_millis(10),
                max: std::time::Duration::from_millis(20),
            },
            label: "test".into(),
        })
        .expect("client");
        let ledger = GitHubLedger { github, run_id: None, run_url: None };
        fake.pin_clock(Some(started));
        record.github_deployment = Some(ledger.start(&record, &sha("c7"), &target).await.expect("start"));
        fake.pin_clock(Some(entry.finished_at));
        ledger.finish(&record, &sha("c7"), &entry, &target).await.expect("finish");
        fake.pin_clock(None);
    });
    let statuses = fake.deployment_statuses(REPO, record.github_deployment.expect("deployment"));
    let last = statuses.iter().find(|s| s["state"] == "inactive").expect("an inactive status");
    assert_eq!(last["description"], format!("sluice: v7 abandoned: {reason}").as_str());

    let after = report(&dora(dir.path(), &fake, Some(TOKEN), &WINDOW));
    let (b, a) = (&before["groups"][0], &after["groups"][0]);
    assert_eq!(a["metrics"], b["metrics"]);
    assert_eq!(a["weekly"], b["weekly"]);
    assert_eq!((a["counts"]["entries"].as_u64(), a["counts"]["abandoned"].as_u64()), (Some(11), Some(1)));
    for key in ["attempts", "deployments", "failed_deployments", "rolled_back", "hotfix_deployments"] {
        assert_eq!(a["counts"][key], b["counts"][key], "{key}");
    }
    let rows = after["environments"][0]["history"]["rows"].as_array().expect("rows");
    let row = rows.iter().find(|r| r["id"] == record.id.as_str()).expect("the abandoned deployment is history");
    assert_eq!((row["outcome"].as_str(), row["reason"].as_str()), (Some("abandoned"), Some(reason)));
    assert_eq!(
        after["environments"][0]["history"]["success_rate"],
        before["environments"][0]["history"]["success_rate"]
    );

    // The ledger file with the same entry gives the same report.
    let mut file = file_entries(&commits, &entries);
    let mut abandoned = entry.clone();
    abandoned.started_at = started;
    file.push(abandoned);
    let lines: String = file.iter().map(|e| serde_json::to_string(e).expect("entry") + "\n").collect();
    std::fs::write(dir.path().join("ledger.jsonl"), lines).expect("ledger");
    let mut args = WINDOW.to_vec();
    args.extend(["--ledger", "ledger.jsonl"]);
    assert_eq!(report(&dora(dir.path(), &fake, Some(TOKEN), &args)), after);
}

/// The journal's entries: what `promote` wrote (the commits it shipped), no
/// incident (issues are linked when the history is read).
fn journal_entries(commits: &[C], entries: &[LedgerEntry]) -> Vec<LedgerEntry> {
    file_entries(commits, entries).into_iter().map(|e| LedgerEntry { incident: None, ..e }).collect()
}

/// Migration: the hand-computed history read from Deployments alone (as
/// before the journal), from the journal alone, and split between them (a
/// journal started between d3's promotion and its revert, with every
/// deployment's statuses written as sluice writes them) gives the same
/// report, JSON byte for byte, in the window and over all time.
#[test]
fn the_same_history_from_deployments_from_the_journal_or_from_both_gives_the_same_report() {
    let _turn = crate::support::shared();
    let legacy = Fake::start(TOKEN);
    let (commits, entries) = seed_scenario(&legacy);

    let journal = Fake::start(TOKEN);
    seed_journal(&journal, &journal_entries(&commits, &entries), &[], "2026-01-01T00:00:00Z", false);
    seed_issues(&journal);

    let split = Fake::start(TOKEN);
    let ids = seed(&split, &commits, &entries);
    seed_issues(&split);
    let t0 = t("2026-03-03T13:00:00Z");
    let after: Vec<LedgerEntry> =
        journal_entries(&commits, &entries).into_iter().filter(|e| e.finished_at >= t0).collect();
    seed_journal(&split, &after, &ids, "2026-03-03T13:00:00Z", true);

    let all = ["--since", "all", "--until", "2026-03-16", "-e", "prd", "--format", "json"];
    for window in [&WINDOW, &all] {
        let mut reports = Vec::new();
        for (name, fake) in [("deployments", &legacy), ("journal", &journal), ("split", &split)] {
            let dir = tempfile::tempdir().expect("tempdir");
            config(dir.path());
            let out = dora(dir.path(), fake, Some(TOKEN), window);
            eprintln!("{name}, {window:?}: {} API calls", calls(&out));
            reports.push((name, report(&out)));
        }
        let (_, first) = &reports[0];
        assert!(first["groups"][0]["counts"]["attempts"].as_u64().is_some_and(|a| a > 0), "{first:#}");
        for (name, r) in &reports[1..] {
            assert_eq!(r, first, "{name} against deployments, window {window:?}");
        }
    }
}

/// `count` promotions every 6 hours from 2026-01-01, each shipping one
/// commit made 40 minutes before it ended.
fn regular_history(count: i64) -> Vec<LedgerEntry> {
    (0..count)
        .map(|i| {
            let at = t("2026-01-01T00:00:00Z") + jiff::SignedDuration::from_hours(6 * i);
            let start = at + jiff::SignedDuration::from_mins(30);
            let end = start + jiff::SignedDuration::from_mins(10);
            let mut e = entry(
                &format!("r{i}"),
                &format!("v{i}"),
                &format!("n{i}"),
                ChangeKind::Planned,
                &start.to_string(),
                &end.to_string(),
                LedgerOutcome::Promoted,
                None,
            );
            e.commits = vec![CommitInfo { sha: sha(&format!("n{i}")), time: at, merge: false }];
            e
        })
        .collect()
}

/// The commits `regular_history` ships, one every 6 hours.
fn regular_commits(count: i64) -> Vec<C> {
    (0..count)
        .map(|i| {
            let at = t("2026-01-01T00:00:00Z") + jiff::SignedDuration::from_hours(6 * i);
            c(&format!("n{i}"), &at.to_string(), false)
        })
        .collect()
}

/// A report from Deployments alone that would spend more of the rate limit
/// than is left stops at the reserve: the newest deployments are read, the
/// rest are named as left out, the report is marked partial in every format
/// and the exit code is 0; the reserve is never spent.
#[test]
fn a_report_stops_at_the_rate_limit_reserve_and_says_it_is_partial() {
    let fake = Fake::start(TOKEN);
    seed(&fake, &regular_commits(300), &regular_history(300));
    fake.pin_clock(None);
    let dir = tempfile::tempdir().expect("tempdir");
    config(dir.path());
    // Other jobs left 250 calls this hour; 300 deployments need 605.
    fake.set_remaining(250);
    let args = ["--since", "all", "--until", "2026-04-01", "-e", "prd", "--format", "json", "--github-reserve", "100"];
    let out = dora(dir.path(), &fake, Some(TOKEN), &args);
    let r = report(&out);
    assert_eq!(fake.remaining(), 100, "the reserve is left for the gates");
    let partial = r["partial"].as_str().expect("a partial report says so");
    assert!(partial.contains("down to 100 calls") && partial.contains("--github-reserve 100"), "{partial}");
    assert!(partial.contains("deployments") && partial.contains("were not read"), "{partial}");
    let deployments = r["groups"][0]["counts"]["deployments"].as_u64().expect("count");
    assert!(deployments > 0 && deployments < 300, "read the newest only: {deployments}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("partial DORA report") && stderr.contains("100 left of the rate limit"), "{stderr}");

    // The same run as Markdown and text carries the mark.
    fake.set_remaining(250);
    let markdown = dora(
        dir.path(),
        &fake,
        Some(TOKEN),
        &[&args[..6], &["--format", "markdown", "--github-reserve", "100"]].concat(),
    );
    assert_eq!(markdown.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&markdown.stdout).contains("**Partial report**"));

    // With the limit to spare, the same report is whole.
    fake.set_remaining(1000);
    let whole = report(&dora(dir.path(), &fake, Some(TOKEN), &args));
    assert_eq!(whole["partial"], Value::Null);
    assert_eq!(whole["groups"][0]["counts"]["deployments"], 300);
}

/// The targets of the journal, measured: `dora-report --since all` over 300
/// deployments in at most 10 calls cold and 3 warm (the ETag cache of an
/// earlier run), over 3,000 in at most 60 cold; the same figures as the
/// ledger file with the same entries. (From Deployments alone the 300 cost
/// 605 calls: `hundreds_of_deployments_are_read_across_pages_and_capped`.)
#[test]
fn the_journal_reads_hundreds_and_thousands_of_deployments_in_a_few_calls() {
    let _turn = crate::support::shared();
    for (count, cold_max, until) in [(300, 10, "2026-04-01"), (3000, 60, "2028-03-01")] {
        let fake = Fake::start(TOKEN);
        let entries = regular_history(count);
        seed_journal(&fake, &entries, &[], "2025-12-01T00:00:00Z", false);
        let dir = tempfile::tempdir().expect("tempdir");
        config(dir.path());
        let args = ["--since", "all", "--until", until, "-e", "prd", "--format", "json"];
        let cold = dora(dir.path(), &fake, Some(TOKEN), &args);
        let r = report(&cold);
        assert_eq!(r["groups"][0]["counts"]["deployments"], count, "{}", String::from_utf8_lossy(&cold.stderr));
        assert_eq!(r["groups"][0]["metrics"]["change_lead_time"]["value"]["median_seconds"], 2400.0);
        let warm = dora(dir.path(), &fake, Some(TOKEN), &args);
        assert_eq!(report(&warm), r, "the cache changes nothing but the cost");
        let (cold_calls, warm_calls) = (calls(&cold), calls(&warm));
        let months = fake.branch_files(REPO, BRANCH).iter().filter(|p| p.ends_with(".jsonl")).count();
        eprintln!(
            "{count} deployments in the journal ({months} month files), --since all: {cold_calls} API calls cold, {warm_calls} warm"
        );
        assert!(cold_calls <= cold_max, "{count} deployments cold: {cold_calls} calls");
        if count == 300 {
            assert!(warm_calls <= 3, "{count} deployments warm: {warm_calls} calls");
            let lines: String = entries.iter().map(|e| serde_json::to_string(e).expect("entry") + "\n").collect();
            std::fs::write(dir.path().join("ledger.jsonl"), lines).expect("ledger");
            let mut file = args.to_vec();
            file.extend(["--ledger", "ledger.jsonl"]);
            assert_eq!(report(&dora(dir.path(), &fake, Some(TOKEN), &file)), r, "the ledger file says the same");
        }
    }
}
