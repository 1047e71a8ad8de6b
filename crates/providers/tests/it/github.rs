//! The GitHub client and ledger against the local fake of GitHub's REST API.

use sluice_core::config::Strategy;
use sluice_core::ledger::{ChangeKind, LedgerOutcome};
use sluice_core::record::{NewRecord, Record};
use sluice_github_fake::{Fake, Refusal};
use sluice_providers::github::ledger::{GitHubLedger, Target};
use sluice_providers::github::{GitHub, Settings};
use sluice_providers::retry::Backoff;
use std::time::{Duration, Instant};

const TOKEN: &str = "ghs_fakeTOKEN0123456789abcdefghijklmnop";
const REPO: &str = "acme/shop";
const SHA: &str = "0123456789abcdef0123456789abcdef01234567";

fn client(fake: &Fake, cache: &std::path::Path) -> GitHub {
    GitHub::new(Settings {
        api_url: fake.api_url(),
        server_url: "https://github.com".into(),
        token: TOKEN.into(),
        repository: REPO.into(),
        cache_dir: Some(cache.to_owned()),
        write_interval: Duration::from_millis(200),
        max_wait: Duration::from_secs(5),
        timeout: Duration::from_secs(5),
        backoff: Backoff { attempts: 3, first: Duration::from_millis(10), max: Duration::from_millis(20) },
        label: "test".into(),
    })
    .expect("client")
}

fn record(environment: &str) -> Record {
    Record::new(
        NewRecord {
            app: "shop".into(),
            environment: environment.into(),
            version: "v2".into(),
            commit: Some(SHA.into()),
            change: ChangeKind::Planned,
            incident: None,
            strategy: Strategy::AllAtOnce,
            triggered_by: Some("alice".into()),
            run_url: None,
        },
        jiff::Timestamp::now(),
    )
}

#[tokio::test]
async fn lists_follow_link_headers_100_a_page_and_unchanged_pages_cost_nothing() {
    let fake = Fake::start(TOKEN);
    for i in 0..250 {
        fake.add_issue(REPO, &format!("outage {i}"), &["incident"], "open");
    }
    fake.add_issue(REPO, "closed one", &["incident"], "closed");
    fake.add_issue(REPO, "other label", &["bug"], "open");
    let cache = tempfile::tempdir().expect("tempdir");
    let github = client(&fake, cache.path());

    let issues = github.open_issues("incident").await.expect("issues");
    assert_eq!(issues.len(), 250);
    let seen = fake.seen();
    assert_eq!(seen.len(), 3, "{seen:#?}");
    assert!(seen.iter().all(|s| s.query.contains("per_page=100")), "{seen:#?}");
    assert_eq!(seen[2].query.split('&').find(|p| p.starts_with("page=")), Some("page=3"));
    let remaining = fake.remaining();

    // The same pages again: every request conditional, every answer a 304
    // served from the cache, and the rate limit untouched.
    fake.clear_seen();
    let again = github.open_issues("incident").await.expect("issues again");
    assert_eq!(again, issues);
    let seen = fake.seen();
    assert_eq!(seen.len(), 3);
    assert!(seen.iter().all(|s| s.conditional && s.status == 304), "{seen:#?}");
    assert_eq!(fake.remaining(), remaining);
    let stats = github.stats();
    assert_eq!((stats.requests, stats.not_modified, stats.counted()), (6, 3, 3));

    // A change shows: a new issue makes the first page differ.
    fake.add_issue(REPO, "one more", &["incident"], "open");
    assert_eq!(github.open_issues("incident").await.expect("issues").len(), 251);
}

#[tokio::test]
async fn a_primary_rate_limit_is_waited_out_until_the_reset_then_retried() {
    let fake = Fake::start(TOKEN);
    fake.add_check_run(REPO, SHA, "build", "completed", Some("success"));
    fake.refuse_next(&[Refusal::Primary { reset_in: 1 }]);
    let cache = tempfile::tempdir().expect("tempdir");
    let github = client(&fake, cache.path());
    let started = Instant::now();
    let runs = github.check_runs(SHA).await.expect("check runs after the reset");
    assert_eq!(runs.len(), 1);
    assert!(started.elapsed() >= Duration::from_secs(1), "waited {:?}", started.elapsed());
    let statuses: Vec<u16> = fake.seen().iter().map(|s| s.status).collect();
    assert_eq!(statuses, [403, 200]);
    assert_eq!(github.stats().rate_limited, 1);
}

#[tokio::test]
async fn a_secondary_rate_limit_on_a_write_honours_retry_after() {
    let fake = Fake::start(TOKEN);
    fake.add_workflow(REPO, "promote.yml", &["environment", "version", "sha"]);
    fake.add_ref(REPO, "main", SHA);
    fake.refuse_next(&[Refusal::Secondary { retry_after: 1 }]);
    let cache = tempfile::tempdir().expect("tempdir");
    let github = client(&fake, cache.path());
    let started = Instant::now();
    github
        .dispatch("promote.yml", "main", &[("environment", "tst"), ("version", "v2"), ("sha", SHA)])
        .await
        .expect("dispatched after retry-after");
    assert!(started.elapsed() >= Duration::from_secs(1));
    assert_eq!(fake.dispatches(REPO).len(), 1, "exactly one dispatch");
    assert_eq!(fake.seen().iter().map(|s| s.status).collect::<Vec<_>>(), [403, 204]);
}

#[tokio::test]
async fn a_rate_limit_longer_than_max_wait_fails_at_once_with_the_reset() {
    let fake = Fake::start(TOKEN);
    fake.refuse_next(&[Refusal::Primary { reset_in: 3600 }]);
    let cache = tempfile::tempdir().expect("tempdir");
    let github = client(&fake, cache.path());
    let started = Instant::now();
    let err = github.open_issues("incident").await.expect_err("refused");
    assert!(started.elapsed() < Duration::from_secs(2));
    let text = err.to_string();
    assert!(text.contains("rate limit") && text.contains("max_wait"), "{text}");
    assert!(!err.transient);
}

#[tokio::test]
async fn errors_name_the_permission_and_never_the_token() {
    let fake = Fake::start(TOKEN);
    let cache = tempfile::tempdir().expect("tempdir");
    let github = client(&fake, cache.path());
    let err = github.dispatch("missing.yml", "main", &[]).await.expect_err("no such workflow");
    let text = err.to_string();
    assert!(text.contains("404") && text.contains("actions: write"), "{text}");

    let wrong = Fake::start("another-token");
    let github = client(&wrong, cache.path());
    let err = github.open_issues("incident").await.expect_err("bad credentials");
    let text = err.to_string();
    assert!(text.contains("401") && text.contains("GITHUB_TOKEN"), "{text}");
    assert!(!text.contains(TOKEN), "{text}");
    // The token went in the Authorization header, nowhere else.
    for seen in wrong.seen() {
        assert_eq!(seen.raw.matches(TOKEN).count(), 1, "{}", seen.raw);
        assert!(!seen.query.contains(TOKEN) && !seen.path.contains(TOKEN));
    }
    for file in std::fs::read_dir(cache.path()).expect("cache dir") {
        let text = std::fs::read_to_string(file.expect("entry").path()).expect("cache file");
        assert!(!text.contains(TOKEN));
    }
}

#[tokio::test]
async fn writes_are_spaced() {
    let fake = Fake::start(TOKEN);
    let cache = tempfile::tempdir().expect("tempdir");
    let ledger = GitHubLedger { github: client(&fake, cache.path()), run_id: None, run_url: None };
    let started = Instant::now();
    // Two writes: the deployment and its in_progress status.
    ledger.start(&record("dev"), SHA, &Target::default()).await.expect("start");
    assert!(started.elapsed() >= Duration::from_millis(200), "{:?}", started.elapsed());
    assert_eq!(ledger.github.stats().writes, 2);
}

#[tokio::test]
async fn the_ledger_creates_one_deployment_and_reads_back_its_history() {
    let fake = Fake::start(TOKEN);
    let cache = tempfile::tempdir().expect("tempdir");
    let run_url = "https://github.com/acme/shop/actions/runs/77".to_owned();
    let ledger =
        GitHubLedger { github: client(&fake, cache.path()), run_id: Some("77".into()), run_url: Some(run_url.clone()) };
    let target = Target { environment_url: Some("https://prd.shop.example".into()), production: true };
    let mut rec = record("prd");
    let id = ledger.start(&rec, SHA, &target).await.expect("start");
    rec.github_deployment = Some(id);
    // A second start of the same record adds nothing.
    assert_eq!(ledger.start(&rec, SHA, &target).await.expect("again"), id);
    let entry = rec.ledger_entry(LedgerOutcome::Promoted, None, jiff::Timestamp::now());
    ledger.finish(&rec, SHA, &entry, &target).await.expect("finish");

    let deployments = fake.deployments(REPO);
    assert_eq!(deployments.len(), 1);
    let d = &deployments[0];
    assert_eq!(d["sha"], SHA);
    assert_eq!(d["ref"], SHA);
    assert_eq!(d["environment"], "prd");
    assert_eq!(d["production_environment"], true);
    assert_eq!(d["payload"]["sluice"]["id"], rec.id.as_str());
    assert_eq!(d["payload"]["sluice"]["version"], "v2");
    let statuses = fake.deployment_statuses(REPO, id);
    let states: Vec<&str> = statuses.iter().filter_map(|s| s["state"].as_str()).collect();
    assert_eq!(states, ["in_progress", "success"]);
    assert!(statuses.iter().all(|s| s["log_url"] == run_url.as_str()));
    assert!(statuses.iter().all(|s| s["environment_url"] == "https://prd.shop.example"));

    let history = ledger.history("shop", "prd", "v2", SHA).await.expect("history");
    assert_eq!(history.len(), 1);
    assert_eq!(history[0].outcome, LedgerOutcome::Promoted);
    assert_eq!(history[0].id, rec.id);
    // Another app's history of the same commit is not this one's.
    assert!(ledger.history("other", "prd", "v2", SHA).await.expect("history").is_empty());
}

#[tokio::test]
async fn the_ledger_adopts_the_deployment_a_job_made_for_this_run() {
    let fake = Fake::start(TOKEN);
    let run_url = "https://github.com/acme/shop/actions/runs/42/job/7";
    // Another run's deployment of the same commit, and this run's.
    fake.add_job_deployment(REPO, "tst", SHA, "https://github.com/acme/shop/actions/runs/420/job/1");
    let job = fake.add_job_deployment(REPO, "tst", SHA, run_url);
    let cache = tempfile::tempdir().expect("tempdir");
    let ledger = GitHubLedger {
        github: client(&fake, cache.path()),
        run_id: Some("42".into()),
        run_url: Some("https://github.com/acme/shop/actions/runs/42".into()),
    };
    let mut rec = record("tst");
    let id = ledger.start(&rec, SHA, &Target::default()).await.expect("start");
    assert_eq!(id, job);
    assert_eq!(fake.deployments(REPO).len(), 2, "no deployment created");
    rec.github_deployment = Some(id);
    let entry = rec.ledger_entry(LedgerOutcome::RolledBack, Some("error rate 5%".into()), jiff::Timestamp::now());
    ledger.finish(&rec, SHA, &entry, &Target::default()).await.expect("finish");
    let states: Vec<String> =
        fake.deployment_statuses(REPO, job).iter().filter_map(|s| s["state"].as_str().map(str::to_owned)).collect();
    assert_eq!(states, ["in_progress", "in_progress", "inactive"]);
    let history = ledger.history("shop", "tst", "v2", SHA).await.expect("history");
    assert_eq!(history.iter().map(|e| e.outcome).collect::<Vec<_>>(), [LedgerOutcome::RolledBack]);
    assert_eq!(history[0].reason.as_deref(), Some("error rate 5%"));
}

#[tokio::test]
async fn compare_lists_the_commits_between_two_shas_across_pages() {
    let fake = Fake::start(TOKEN);
    let shas: Vec<String> = (0..150).map(|i| format!("{i:040x}")).collect();
    for (i, sha) in shas.iter().enumerate() {
        fake.add_commit(REPO, sha, if i % 2 == 0 { "alice" } else { "bob" }, &format!("change {i}"));
    }
    let cache = tempfile::tempdir().expect("tempdir");
    let github = client(&fake, cache.path());
    let commits = github.compare(&shas[10], &shas[140]).await.expect("compare");
    assert_eq!(commits.len(), 130);
    assert_eq!(commits.first().map(|c| c.sha.as_str()), Some(shas[11].as_str()));
    assert_eq!(commits.last().map(|c| c.sha.as_str()), Some(shas[140].as_str()));
    assert_eq!(fake.seen().len(), 2, "two pages of 100");
    let head = github.commit(&shas[140]).await.expect("commit");
    assert_eq!(head.author.map(|u| u.login).as_deref(), Some("alice"));
    assert_eq!(head.parents.first().map(|p| p.sha.as_str()), Some(shas[139].as_str()));
}

/// A deployment to an environment of several targets is one GitHub
/// deployment, its targets named in the payload with their waves.
#[tokio::test]
async fn a_deployment_with_targets_names_them_in_its_payload() {
    let fake = Fake::start(TOKEN);
    let cache = tempfile::tempdir().expect("tempdir");
    let ledger = GitHubLedger { github: client(&fake, cache.path()), run_id: None, run_url: None };
    let mut rec = record("prd");
    for (name, wave) in [("us-east-1", 0), ("eu-west-1", 1), ("ap-southeast-2", 1)] {
        rec.targets.push(sluice_core::record::TargetState {
            name: name.into(),
            wave,
            router_before: None,
            candidate: None,
            candidate_weight: 0,
        });
    }
    ledger.start(&rec, SHA, &Target::default()).await.expect("start");
    let deployments = fake.deployments(REPO);
    assert_eq!(deployments.len(), 1, "one deployment for the environment");
    let targets = &deployments[0]["payload"]["sluice"]["targets"];
    assert_eq!(
        targets,
        &serde_json::json!([
            { "name": "us-east-1", "wave": 0 },
            { "name": "eu-west-1", "wave": 1 },
            { "name": "ap-southeast-2", "wave": 1 },
        ])
    );
    // One router: the payload is as before, without the key.
    let fake = Fake::start(TOKEN);
    let ledger = GitHubLedger { github: client(&fake, cache.path()), run_id: None, run_url: None };
    ledger.start(&record("dev"), SHA, &Target::default()).await.expect("start");
    assert!(fake.deployments(REPO)[0]["payload"]["sluice"].get("targets").is_none());
}
