//! The workflows run on a real workflow engine: the shipped promotion
//! workflow (dist/workflows/promote.yml), the one on docs/workflows.md and
//! the README's ALB setup (`readme`, on moto), with the sluice
//! action used as a user uses it (`uses: sluice-dev/sluice@v0.1.0`,
//! installed from the release archive the GitHub fake serves), run by act
//! against the GitHub fake and an embedded router per environment.
//!
//! Each scenario asserts on the routers' weights read back, the records the
//! runs uploaded, the fake's deployments, statuses and dispatches, and the
//! job results. Scenarios run one at a time and alone (`support::alone`:
//! they share two cores with the routers and load generators they start).

mod engine;
mod readme;
mod world;

use engine::{Hooks, JobOutcome, Review, Run};
use serde_json::Value;
use sluice_test_support::aws::{self as aws, REGION, create_alb, forward_weights};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use world::{Options, World};

fn serial() -> crate::support::Turn {
    crate::support::alone()
}

/// Nothing expected to wait for reviewers.
fn no_reviews<'a>() -> Hooks<'a> {
    Hooks::default()
}

impl World {
    /// The record a run uploaded as `artifact`.
    fn record(&self, run: &Run, artifact: &str, env: &str) -> Value {
        let path = self.dir.join(format!("store/runs/{}/artifacts/{artifact}/{env}.json", run.id));
        let text =
            std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}\n{}", path.display(), run.describe()));
        serde_json::from_str(&text).expect("a record is JSON")
    }

    /// sluice's own deployments in an environment (the ledger's: their
    /// payload names the record), oldest first.
    fn ledger_deployments(&self, env: &str) -> Vec<Value> {
        self.deployments(env).into_iter().filter(|d| d["payload"]["sluice"]["id"].is_string()).collect()
    }

    /// Runs a promotion of `version` into `env` by dispatch, as the Actions
    /// tab or the hand-off starts it.
    fn promote(&self, env: &str, version: &str, sha: &str, hooks: &mut Hooks) -> Run {
        let mut inputs = vec![("environment", env), ("version", version)];
        if !sha.is_empty() {
            inputs.push(("sha", sha));
        }
        self.dispatch("promote.yml", &inputs, hooks)
    }
}

/// Samples a router's candidate weight in the background; the highest seen.
struct WeightWatch {
    max: Arc<AtomicU64>,
    stop: Arc<AtomicU64>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl WeightWatch {
    fn start(world: &World, env: &str) -> WeightWatch {
        let url = format!("{}/v1/state", world.admin[env]);
        let (max, stop) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
        let (m, s) = (max.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            while s.load(Ordering::SeqCst) == 0 {
                if let Ok(body) = world::http_get(&url)
                    && let Ok(state) = serde_json::from_str::<Value>(&body)
                    && let Some(w) = state["candidate_weight"].as_u64()
                {
                    m.fetch_max(w, Ordering::SeqCst);
                }
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
        });
        WeightWatch { max, stop, thread: Some(thread) }
    }

    fn max(mut self) -> u64 {
        self.stop.store(1, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        self.max.load(Ordering::SeqCst)
    }
}

/// A release dispatched into dev is promoted there, hands off to tst by
/// `workflow_dispatch` with the same release and commit (the release tag's,
/// not main's head), tst hands off to prd, and prd pauses at 25% until the
/// reviewers approve, then reaches 100% and is promoted.
#[test]
fn a_release_goes_dev_tst_prd_by_dispatch_with_an_approval_in_prd() {
    let _serial = serial();
    let world = World::new("chain", Options::default());
    for env in ["dev", "tst", "prd"] {
        world.deploy_candidate(env, "v2");
    }
    let release = world.tag("v1.4.2");
    assert_ne!(release, world.head, "the release is not main's head");

    // A manual promotion of v1.4.2: no sha input.
    let dev = world.promote("dev", "v1.4.2", "", &mut no_reviews());
    assert_eq!(dev.result("canary"), "success", "{}", dev.describe());
    assert_eq!(dev.output("canary", "decision"), "promoted");
    assert_eq!(dev.result("approval"), "skipped");
    assert_eq!(world.stable("dev"), world.apps["v2"]);
    assert_eq!(world.weight("dev"), 0);
    let artifact = dev.output("canary", "record-artifact");
    assert_eq!(artifact, "sluice-record-shop-dev-1");
    let record = world.record(&dev, &artifact, "dev");
    assert_eq!(record["status"], "promoted");
    assert_eq!(record["commit"], release.as_str(), "the record has the release's commit, not main's head");
    let deployments = world.ledger_deployments("dev");
    assert_eq!(deployments.len(), 1, "{deployments:?}");
    assert_eq!(deployments[0]["sha"], release.as_str());
    let id = deployments[0]["id"].as_u64().expect("id");
    assert_eq!(world.states(id).last().map(String::as_str), Some("success"), "{:?}", world.states(id));

    // The hand-off: promote.yml accepted the dispatch (its inputs and the
    // job's actions: write).
    let dispatches = world.dispatches();
    assert_eq!(dispatches.len(), 1, "{dispatches:?}");
    let (workflow, inputs) = &dispatches[0];
    assert_eq!(workflow, "promote.yml");
    assert_eq!(inputs["environment"], "tst");
    assert_eq!(inputs["version"], "v1.4.2");
    assert_eq!(inputs["sha"], release);

    let tst = world.promote(&inputs["environment"], &inputs["version"], &inputs["sha"], &mut no_reviews());
    assert_eq!(tst.result("canary"), "success", "{}", tst.describe());
    assert_eq!(world.stable("tst"), world.apps["v2"]);
    let dispatches = world.dispatches();
    assert_eq!(dispatches.len(), 2, "{dispatches:?}");
    let (_, inputs) = &dispatches[1];
    assert_eq!((inputs["environment"].as_str(), inputs["sha"].as_str()), ("prd", release.as_str()));

    let mut waited_at = None;
    let mut hooks = Hooks {
        review: Box::new(|world: &World, job: &str, env: &str| {
            assert_eq!((job, env), ("approval", "prd-approval"));
            waited_at = Some(world.weight("prd"));
            Review::Approve
        }),
        cancel: None,
    };
    let prd = world.promote(&inputs["environment"], &inputs["version"], &inputs["sha"], &mut hooks);
    drop(hooks);
    assert_eq!(waited_at, Some(25), "prd waited for its reviewers at 25%\n{}", prd.describe());
    assert_eq!(prd.output("canary", "decision"), "paused", "{}", prd.describe());
    assert_eq!(prd.result("approval"), "success");
    assert_eq!(prd.result("resume"), "success", "{}", prd.describe());
    assert_eq!(prd.result("roll-back-unapproved"), "skipped", "{}", prd.describe());
    // The job that took prd to 100% ran in prd (prd's secrets and OIDC
    // subject), not in the approval environment.
    assert_eq!(prd.jobs["resume"].environment.as_deref(), Some("prd"));
    assert_eq!(world.stable("prd"), world.apps["v2"]);
    assert_eq!(world.weight("prd"), 0);
    let record = world.record(&prd, &prd.output("canary", "record-artifact"), "prd");
    assert_eq!(record["status"], "promoted");
    assert_eq!(record["commit"], release.as_str());
    assert_eq!(world.dispatches().len(), 2, "prd is the last environment: nothing dispatched");
    let deployments = world.ledger_deployments("prd");
    assert_eq!(deployments.len(), 1, "{deployments:?}");
    assert_eq!(deployments[0]["sha"], release.as_str());
}

/// prd pauses for approval; the reviewers reject it: the canary is rolled
/// back. "Re-run all jobs" of that run starts a new deployment that pauses
/// at 25% again and asks the reviewers again: without a new approval prd
/// never takes more than the paused weight. "Re-run failed jobs" then, even
/// approved, continues nothing: that canary was rolled back.
#[test]
fn a_rejected_prd_canary_is_rolled_back_and_a_rerun_needs_a_new_approval() {
    let _serial = serial();
    let world = World::new("reject", Options { environments: vec!["prd"], ..Options::default() });
    world.deploy_candidate("prd", "v2");
    let reject = |world: &World, _: &str, _: &str| {
        assert_eq!(world.weight("prd"), 25, "paused at 25% while the reviewers decide");
        Review::Reject
    };
    let watch = WeightWatch::start(&world, "prd");
    let mut run = world.promote("prd", "v1.4.2", "", &mut Hooks { review: Box::new(reject), cancel: None });
    assert!(watch.max() <= 25, "prd went past the paused weight");
    assert_eq!(run.output("canary", "decision"), "paused", "{}", run.describe());
    assert_eq!(run.result("approval"), "failure");
    assert_eq!(run.result("resume"), "skipped");
    assert_eq!(run.result("roll-back-unapproved"), "success", "{}", run.describe());
    assert_eq!(world.weight("prd"), 0);
    assert_eq!(world.stable("prd"), world.apps["v1"]);
    let first = run.output("canary", "record-artifact");
    assert_eq!(world.record(&run, &first, "prd")["status"], "rolled_back", "the rolled-back record was uploaded again");

    let watch = WeightWatch::start(&world, "prd");
    world.rerun(&mut run, &mut Hooks { review: Box::new(reject), cancel: None });
    let max = watch.max();
    assert!(max <= 25, "the re-run took prd to {max}% without a new approval\n{}", run.describe());
    assert_eq!(run.attempt, 2);
    assert_eq!(
        run.reviews.iter().filter(|(attempt, _, _)| *attempt == 2).count(),
        1,
        "the re-run asked the reviewers again"
    );
    assert_eq!(run.output("canary", "decision"), "paused", "a new deployment, paused again\n{}", run.describe());
    let second = run.output("canary", "record-artifact");
    assert_ne!(second, first, "the re-run's record is its own");
    assert_eq!(run.result("roll-back-unapproved"), "success", "{}", run.describe());
    assert_eq!(world.weight("prd"), 0);
    assert_eq!(world.stable("prd"), world.apps["v1"]);
    let records: Vec<Value> = [&first, &second].iter().map(|a| world.record(&run, a, "prd")).collect();
    assert_ne!(records[0]["id"], records[1]["id"], "two deployments, two identities");
    assert!(records.iter().all(|r| r["status"] == "rolled_back"), "{records:?}");

    // "Re-run failed jobs", approved this time: the approval and the jobs
    // after it run again with the second attempt's canary (kept, with its
    // outputs), whose record was uploaded again as rolled back: resume finds
    // nothing to continue, and prd stays on stable.
    let watch = WeightWatch::start(&world, "prd");
    let approve = |_: &World, _: &str, _: &str| Review::Approve;
    world.rerun_failed(&mut run, &mut Hooks { review: Box::new(approve), cancel: None });
    assert_eq!(watch.max(), 0, "re-running the approval moved no traffic\n{}", run.describe());
    assert_eq!(run.attempt, 3);
    assert_eq!(run.output("canary", "record-artifact"), second, "the canary was kept from attempt 2");
    assert_eq!(run.result("approval"), "success");
    assert_eq!(run.result("resume"), "failure", "{}", run.describe());
    let log = std::fs::read_to_string(&run.jobs["resume"].log).expect("log");
    assert!(log.contains("nothing to resume"), "{}", run.jobs["resume"].log.display());
    assert_eq!(world.stable("prd"), world.apps["v1"]);
    assert_eq!(world.weight("prd"), 0);

    let deployments = world.ledger_deployments("prd");
    assert_eq!(deployments.len(), 2, "one GitHub deployment per attempt: {deployments:?}");
    for d in &deployments {
        let states = world.states(d["id"].as_u64().expect("id"));
        assert_ne!(states.last().map(String::as_str), Some("success"), "{states:?}");
    }
}

/// promote.yml's `concurrency:` (one group per environment, no
/// cancel-in-progress) as GitHub applies it: while a prd promotion waits
/// for its reviewers, a second one dispatched into prd is pending and runs
/// nothing; a third replaces it (GitHub cancels the pending one). prd stays
/// at the first canary's 25% until it is approved and promoted; then the
/// third runs (a bad release: rolled back in its canary), and the second
/// never runs.
#[test]
fn promotions_of_one_environment_queue_one_deep_behind_the_running_one() {
    let _serial = serial();
    let world = World::new("queue", Options { environments: vec!["prd"], ..Options::default() });
    world.deploy_candidate("prd", "v2");
    world::git(&world.repo, &["tag", "v1.4.3"]);
    world.fake.add_ref(world::REPO, "v1.4.3", &world.head);
    let mut queued = Vec::new();
    let mut hooks = Hooks {
        review: Box::new(|world: &World, _: &str, _: &str| {
            for version in ["v1.4.2", "v1.4.3"] {
                let run = world.promote("prd", version, "", &mut no_reviews());
                assert!(run.pending && run.jobs.is_empty(), "{version}: pending, no job run\n{}", run.describe());
                queued.push(run);
            }
            assert_eq!(world.weight("prd"), 25, "the queued promotions moved nothing");
            Review::Approve
        }),
        cancel: None,
    };
    let first = world.promote("prd", "v1.4.2", "", &mut hooks);
    drop(hooks);
    assert_eq!(first.result("resume"), "success", "{}", first.describe());
    assert_eq!(world.stable("prd"), world.apps["v2"]);
    let [second, mut third] = <[Run; 2]>::try_from(queued).unwrap_or_else(|_| panic!("two runs queued"));
    let status = |run: &Run| world.fake.run_status(world::REPO, run.id);
    assert_eq!(status(&second), Some(("completed".into(), Some("cancelled".into()))), "replaced by the third");
    assert_eq!(status(&third).map(|(s, _)| s).as_deref(), Some("pending"));

    world.deploy_candidate("prd", "v3");
    world.run_pending(&mut third, &mut no_reviews());
    assert_eq!(third.result("canary"), "failure", "{}", third.describe());
    assert_eq!(third.output("canary", "decision"), "rolled-back", "{}", third.describe());
    assert_eq!(world.stable("prd"), world.apps["v2"], "the first promotion's release stays stable");
    assert_eq!(world.weight("prd"), 0);
    // The first's deployment, and the third's: v1.4.3 is main's head, so
    // its canary adopted the deployment GitHub made for the job (same
    // commit and run) and ended it unsuccessful. The second made none.
    let deployments = world.ledger_deployments("prd");
    assert_eq!(deployments.len(), 1, "{deployments:?}");
    assert_eq!(world.states(deployments[0]["id"].as_u64().expect("id")).last().map(String::as_str), Some("success"));
    let v143 = world.tag("v1.4.3");
    let adopted: Vec<Vec<String>> = world
        .deployments("prd")
        .iter()
        .filter(|d| d["sha"] == v143.as_str())
        .map(|d| world.states(d["id"].as_u64().expect("id")))
        .filter(|states| states.len() > 1)
        .collect();
    assert_eq!(adopted.len(), 1, "{adopted:?}");
    assert_ne!(adopted[0].last().map(String::as_str), Some("success"), "{adopted:?}");
}

/// A release that fails its canary in dev is rolled back there, the job
/// fails, and nothing is dispatched to tst.
#[test]
fn a_bad_release_is_rolled_back_in_dev_and_nothing_is_dispatched() {
    let _serial = serial();
    let world = World::new("bad", Options::default());
    world.deploy_candidate("dev", "v3");
    let run = world.promote("dev", "v1.4.2", "", &mut no_reviews());
    assert_eq!(run.result("canary"), "failure", "{}", run.describe());
    assert_eq!(run.output("canary", "decision"), "rolled-back", "{}", run.describe());
    assert_eq!(world.weight("dev"), 0);
    assert_eq!(world.stable("dev"), world.apps["v1"]);
    let record = world.record(&run, &run.output("canary", "record-artifact"), "dev");
    assert_eq!(record["status"], "rolled_back");
    assert!(world.dispatches().is_empty(), "{:?}", world.dispatches());
    let deployments = world.ledger_deployments("dev");
    assert_eq!(deployments.len(), 1);
    let states = world.states(deployments[0]["id"].as_u64().expect("id"));
    assert_ne!(states.last().map(String::as_str), Some("success"), "{states:?}");
}

/// A run cancelled mid-canary (act interrupted while traffic is on the
/// candidate): the action's rollback step runs and stable has 100% again.
#[test]
fn a_run_cancelled_mid_canary_leaves_stable_at_100() {
    let _serial = serial();
    let world = World::new("cancel", Options { stage: "20s", ..Options::default() });
    world.deploy_candidate("dev", "v2");
    let mut hooks = Hooks {
        review: Box::new(|_: &World, job: &str, env: &str| panic!("{job} in {env}: no review expected")),
        cancel: Some(("canary".into(), Box::new(|world: &World| world.weight("dev") > 0))),
    };
    let run = world.promote("dev", "v1.4.2", "", &mut hooks);
    drop(hooks);
    assert_eq!(run.result("canary"), "cancelled", "{}", run.describe());
    assert_eq!(world.weight("dev"), 0, "{}", run.describe());
    assert_eq!(world.stable("dev"), world.apps["v1"]);
    let log = std::fs::read_to_string(&run.jobs["canary"].log).expect("log");
    assert!(log.contains("rolled back"), "the rollback step ran: {}", run.jobs["canary"].log.display());
    let record = world.record(&run, &run.output("canary", "record-artifact"), "dev");
    assert_eq!(record["status"], "rolled_back");
    assert!(world.dispatches().is_empty());
}

/// The embedded router's workflow in docs/workflows.md, extracted from it,
/// runs as written: a release is promoted in dev and handed off to tst.
#[test]
fn the_docs_workflow_runs_as_written() {
    let _serial = serial();
    let yaml = docs_workflow();
    let world = World::new(
        "docs-workflow",
        Options { workflows: vec![("promote.yml".into(), format!("{yaml}\n"))], ..Options::default() },
    );
    world.deploy_candidate("dev", "v2");
    let release = world.tag("v1.4.2");
    let run = world.promote("dev", "v1.4.2", "", &mut no_reviews());
    let job = run.jobs.keys().next().cloned().expect("a job");
    assert_eq!(run.result(&job), "success", "{}", run.describe());
    assert_eq!(world.stable("dev"), world.apps["v2"]);
    let dispatches = world.dispatches();
    assert_eq!(dispatches.len(), 1, "the hand-off to tst was accepted: {dispatches:?}");
    assert_eq!(dispatches[0].1["sha"], release);
    let deployments = world.ledger_deployments("dev");
    assert_eq!(deployments.len(), 1);
    assert_eq!(deployments[0]["sha"], release.as_str());
}

/// The workflow for the embedded router on docs/workflows.md, as written.
fn docs_workflow() -> String {
    let page = std::fs::read_to_string(world::root().join("docs/workflows.md")).expect("docs/workflows.md");
    let section = page
        .split("\n## A workflow for the embedded router\n")
        .nth(1)
        .expect("docs/workflows.md has \"## A workflow for the embedded router\"");
    section.split("```yaml\n").nth(1).and_then(|s| s.split("\n```").next()).expect("a yaml block").to_owned()
}

/// A prd canary paused for approval past its pause_timeout: the
/// expire-paused workflow (run as shipped, on its own, while the promotion
/// waits for its reviewers) rolls it back and cancels the waiting run,
/// without creating any deployment in prd; the late approval continues
/// nothing.
#[test]
fn expire_paused_rolls_back_an_expired_pause_without_creating_prd_deployments() {
    let _serial = serial();
    let root = world::root();
    let read = |name: &str| std::fs::read_to_string(root.join("dist/workflows").join(name)).expect("workflow");
    let world = World::new(
        "expire",
        Options {
            environments: vec!["prd"],
            defaults: "pause_timeout = \"5s\"",
            workflows: vec![
                ("promote.yml".into(), read("promote.yml")),
                ("expire-paused.yml".into(), read("expire-paused.yml")),
            ],
            ..Options::default()
        },
    );
    world.deploy_candidate("prd", "v2");
    let mut swept = None;
    let mut hooks = Hooks {
        review: Box::new(|world: &World, _: &str, _: &str| {
            assert_eq!(world.weight("prd"), 25, "paused at 25%");
            // Past the pause_timeout (5 s after the pause), with a margin.
            std::thread::sleep(std::time::Duration::from_secs(7));
            let before = world.deployments("prd").len();
            let sweep = world.dispatch("expire-paused.yml", &[], &mut no_reviews());
            swept = Some((sweep.result("sweep").to_owned(), before, world.deployments("prd").len()));
            assert_eq!(world.weight("prd"), 0, "the sweep rolled the expired canary back\n{}", sweep.describe());
            assert_eq!(world.stable("prd"), world.apps["v1"]);
            // An approval that comes too late.
            Review::Approve
        }),
        cancel: None,
    };
    let run = world.promote("prd", "v1.4.2", "", &mut hooks);
    drop(hooks);
    let (sweep, before, after) = swept.expect("the promotion waited for its reviewers");
    assert_eq!(sweep, "success");
    assert_eq!(before, after, "the sweep created no deployment in prd");
    assert_eq!(
        world.fake.run_status(world::REPO, run.id).and_then(|(_, c)| c).as_deref(),
        Some("cancelled"),
        "the sweep cancelled the waiting run"
    );
    assert_eq!(run.result("approval"), "cancelled", "{}", run.describe());
    assert_eq!(run.result("resume"), "skipped", "{}", run.describe());
    assert_eq!(world.weight("prd"), 0);
    assert_eq!(world.stable("prd"), world.apps["v1"]);
    let deployments = world.ledger_deployments("prd");
    assert_eq!(deployments.len(), 1);
    let states = world.states(deployments[0]["id"].as_u64().expect("id"));
    assert_ne!(states.last().map(String::as_str), Some("success"), "{states:?}");
}

/// The hand-off as GitHub refuses it: a workflow whose job lacks
/// `actions: write` (403), or that does not declare the `sha` input `promote`
/// dispatches (422 "Unexpected inputs provided"). The release is already
/// stable in dev when the dispatch fails: the job fails (exit 3, naming the
/// command to start the next promotion by hand), and the action's rollback
/// leaves the promoted release alone.
#[test]
fn a_hand_off_github_refuses_fails_the_job_and_leaves_the_release_promoted() {
    let _serial = serial();
    let yaml = docs_workflow();
    let without = |needle: &str| -> String {
        let kept: Vec<&str> = yaml.lines().filter(|l| !l.contains(needle)).collect();
        assert!(kept.len() < yaml.lines().count(), "the docs' workflow has {needle:?}");
        format!("{}\n", kept.join("\n"))
    };
    for (label, workflow, status) in [
        ("no-actions-write", without("actions: write"), 403),
        ("no-sha-input", without("sha:").replace("          commit: ${{ inputs.sha }}\n", ""), 422),
    ] {
        let world =
            World::new(label, Options { workflows: vec![("promote.yml".into(), workflow)], ..Options::default() });
        world.deploy_candidate("dev", "v2");
        let run = world.promote("dev", "v1.4.2", "", &mut no_reviews());
        let job = run.jobs.keys().next().cloned().expect("a job");
        assert_eq!(run.result(&job), "failure", "{label}: {}", run.describe());
        let refused = world.fake.seen().into_iter().any(|s| {
            s.method == "POST" && s.path.ends_with("/actions/workflows/promote.yml/dispatches") && s.status == status
        });
        assert!(refused, "{label}: GitHub answered the dispatch {status}");
        assert!(world.dispatches().is_empty());
        assert_eq!(world.stable("dev"), world.apps["v2"], "{label}: the promoted release was not reverted");
        assert_eq!(world.weight("dev"), 0);
        let log = std::fs::read_to_string(&run.jobs[&job].log).expect("log");
        assert!(log.contains("gh workflow run promote.yml"), "{label}: the error says how to start tst by hand");
        assert!(log.contains("nothing to roll back: the deployment is promoted"), "{label}: rollback left it alone");
        let deployments = world.ledger_deployments("dev");
        assert_eq!(deployments.len(), 1);
        let states = world.states(deployments[0]["id"].as_u64().expect("id"));
        assert_eq!(states.last().map(String::as_str), Some("success"), "{label}: {states:?}");
    }
}

/// What dist/workflows/promote.yml says to uncomment for AWS routers: the
/// configure-aws-credentials step of every job that touches the
/// environment, and (with `id_token`) `id-token: write` in those jobs'
/// permissions.
fn uncomment_aws(workflow: &str, id_token: bool) -> String {
    let mut changed = (0, 0);
    let lines: Vec<String> = workflow
        .lines()
        .map(|line| {
            let trimmed = line.trim_start();
            let indent = &line[..line.len() - trimmed.len()];
            let step = trimmed.starts_with("# - uses: aws-actions/configure-aws-credentials@")
                || trimmed.starts_with("#   with: { role-to-assume:");
            if step {
                changed.0 += 1;
                format!("{indent}{}", &trimmed[2..])
            } else if id_token && trimmed.starts_with("# id-token: write") {
                changed.1 += 1;
                format!("{indent}{}", &trimmed[2..])
            } else {
                line.to_owned()
            }
        })
        .collect();
    assert_eq!(changed.0, 6, "promote.yml has the configure-aws-credentials step, commented, in its 3 AWS jobs");
    assert_eq!(changed.1, if id_token { 3 } else { 0 }, "promote.yml has `# id-token: write` in its 3 AWS jobs");
    format!("{}\n", lines.join("\n"))
}

/// The weight of a target group in forward weights read back from AWS.
fn weight_of(weights: &[(String, i32)], group: &str) -> i32 {
    weights.iter().find(|(arn, _)| arn == group).map_or(0, |(_, w)| *w)
}

/// prd routed by an Application Load Balancer (on moto), with AWS
/// credentials from OIDC as the shipped promote.yml documents them
/// (uncommented): each job that touches prd has `id-token: write` and runs
/// `aws-actions/configure-aws-credentials` (the stand-in: an ID token from
/// GitHub, STS AssumeRoleWithWebIdentity on moto, the credentials exported
/// to the later steps). Without `id-token: write` the job gets no token,
/// fails at that step, and nothing on the ALB moves. With it, the canary
/// pauses at 25% (read back from the listener) for prd's reviewers,
/// resumes to 100% and is promoted.
#[test]
fn a_prd_canary_on_an_alb_gets_oidc_credentials_pauses_for_approval_and_is_promoted() {
    let _serial = serial();
    let Some(moto) = aws::moto() else { return };
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    let sdk = runtime.block_on(moto.sdk_config());
    let fx = runtime.block_on(create_alb(&moto.endpoint, &sdk));
    let weights = || runtime.block_on(forward_weights(&sdk, &fx.listener, None));
    let promote = std::fs::read_to_string(world::root().join("dist/workflows/promote.yml")).expect("promote.yml");
    let world = World::new(
        "alb",
        Options {
            environments: vec![],
            more_environments: format!(
                "\n[[environment]]\nname = \"prd\"\nanalysis = \"none\"\n\
                 router = {{ kind = \"alb\", listener_arn = \"{}\", stable_target_group = \"{}\", \
                 candidate_target_group = \"{}\", region = \"{REGION}\" }}\n",
                fx.listener, fx.blue, fx.green
            ),
            aws_endpoint: Some(moto.endpoint.clone()),
            workflows: vec![
                ("promote.yml".into(), uncomment_aws(&promote, true)),
                ("promote-without-id-token.yml".into(), uncomment_aws(&promote, false)),
            ],
            ..Options::default()
        },
    );
    world.set_var("prd", "SLUICE_ROLE_ARN", "arn:aws:iam::123456789012:role/sluice-deploy");
    let id_token_requests = || world.fake.seen().into_iter().filter(|s| s.path == "/_apis/idtoken").collect::<Vec<_>>();
    let before = weights();
    assert_eq!(weight_of(&before, &fx.blue), 1, "{before:?}");
    assert_eq!(weight_of(&before, &fx.green), 0, "{before:?}");

    // Without `id-token: write`: no ID token, no credentials, nothing moved.
    let inputs = [("environment", "prd"), ("version", "v1.4.2")];
    let run = world.dispatch("promote-without-id-token.yml", &inputs, &mut no_reviews());
    assert_eq!(run.result("canary"), "failure", "{}", run.describe());
    assert_eq!(run.result("approval"), "skipped");
    let log = std::fs::read_to_string(&run.jobs["canary"].log).expect("log");
    assert!(log.contains("Did you mean to set the `id-token` permission?"), "{}", run.jobs["canary"].log.display());
    assert!(log.contains("Credentials could not be loaded"), "{}", run.jobs["canary"].log.display());
    assert!(id_token_requests().is_empty(), "a job without id-token: write got no request token");
    assert_eq!(weights(), before, "nothing moved on the ALB");
    assert!(world.ledger_deployments("prd").is_empty());

    // With it: paused at 25% for the reviewers, approved, promoted.
    let mut paused_at = None;
    let mut hooks = Hooks {
        review: Box::new(|_: &World, job: &str, env: &str| {
            assert_eq!((job, env), ("approval", "prd-approval"));
            paused_at = Some(weights());
            Review::Approve
        }),
        cancel: None,
    };
    let run = world.promote("prd", "v1.4.2", "", &mut hooks);
    drop(hooks);
    let paused = paused_at.expect("the run waited for prd's reviewers");
    assert_eq!((weight_of(&paused, &fx.blue), weight_of(&paused, &fx.green)), (75, 25), "{paused:?}");
    assert_eq!(run.output("canary", "decision"), "paused", "{}", run.describe());
    assert_eq!(run.result("approval"), "success");
    assert_eq!(run.result("resume"), "success", "{}", run.describe());
    assert_eq!(run.result("roll-back-unapproved"), "skipped", "{}", run.describe());
    let after = weights();
    assert_eq!((weight_of(&after, &fx.blue), weight_of(&after, &fx.green)), (0, 100), "{after:?}");
    let record = world.record(&run, &run.output("canary", "record-artifact"), "prd");
    assert_eq!(record["status"], "promoted");
    assert_eq!(record["commit"], world.tag("v1.4.2").as_str());
    let deployments = world.ledger_deployments("prd");
    assert_eq!(deployments.len(), 1, "{deployments:?}");
    let states = world.states(deployments[0]["id"].as_u64().expect("id"));
    assert_eq!(states.last().map(String::as_str), Some("success"), "{states:?}");
    // Each job that touched prd asked GitHub for an ID token for STS, with
    // its own request token; the approval job (no id-token) did not.
    let requests = id_token_requests();
    assert_eq!(requests.len(), 2, "{requests:?}");
    for (request, job) in requests.iter().zip(["canary", "resume"]) {
        assert_eq!(request.status, 200, "{request:?}");
        assert!(request.query.contains("audience=sts.amazonaws.com"), "{request:?}");
        assert!(request.raw.contains(&format!("-{job}\n")), "{job}'s request token: {}", request.raw);
        let log = std::fs::read_to_string(&run.jobs[job].log).expect("log");
        assert!(log.contains("assumed-role/sluice-deploy/GitHubActions"), "{}", run.jobs[job].log.display());
    }
}

/// The action's repository as release.yml sees it: this checkout's
/// Cargo.toml, README.md, dist/ and release.yml committed on main. Its
/// remote `origin` is a bare repository standing for GitHub's (git pushes
/// there); a second remote, `github`, names the repository as on GitHub
/// (https://github.com/acme/shop.git), which is where act reads
/// `github.repository` from (`--remote-name`) and gh finds the repository
/// (it prefers a remote named `github` to `origin`). The
/// bare repository's pre-receive hook writes one line per ref pushed: the
/// ref, and the assets the release of this version had on the fake at that
/// moment (`-`: no published release). Returns (bare repository, that log).
fn release_repo(world: &mut World) -> (PathBuf, PathBuf) {
    let root = world::root();
    let repo = world.dir.join("sluice");
    std::fs::create_dir_all(repo.join(".github/workflows")).expect("repo");
    world::run(std::process::Command::new("cp").arg("-R").arg(root.join("dist")).arg(&repo));
    for file in ["Cargo.toml", "README.md", ".github/workflows/release.yml"] {
        std::fs::copy(root.join(file), repo.join(file)).expect("copy");
    }
    world::git(&repo, &["init", "-q", "-b", "main"]);
    world::git(&repo, &["add", "-A"]);
    world::git(&repo, &["commit", "-q", "-m", "main"]);
    let origin = world.dir.join("origin.git");
    world::git(&world.dir, &["init", "-q", "--bare", "origin.git"]);
    let pushes = world.dir.join("pushes.log");
    let hook = origin.join("hooks/pre-receive");
    std::fs::write(
        &hook,
        format!(
            r#"#!/usr/bin/env python3
import json, sys, urllib.error, urllib.request
request = urllib.request.Request("{api}/repos/{repo}/releases",
                                 headers={{"Authorization": "Bearer {token}"}})
with urllib.request.urlopen(request, timeout=10) as answer:
    found = [r for r in json.load(answer) if r["tag_name"] == "v{version}"]
assets = "-"
if found:
    state = "draft" if found[0]["draft"] else "published"
    assets = state + ":" + (",".join(sorted(a["name"] for a in found[0]["assets"])) or "none")
with open("{log}", "a") as log:
    for line in sys.stdin:
        old, new, ref = line.split()
        log.write(f"{{ref}} {{assets}}\n")
"#,
            api = world.fake.api_url(),
            repo = world::REPO,
            version = world::release().version,
            token = world::ADMIN_TOKEN,
            log = pushes.display(),
        ),
    )
    .expect("hook");
    world::run(std::process::Command::new("chmod").arg("+x").arg(&hook));
    world::git(&repo, &["remote", "add", "origin", &origin.display().to_string()]);
    world::git(&repo, &["remote", "add", "github", &format!("https://github.com/{}.git", world::REPO)]);
    world::git(&repo, &["push", "-q", "origin", "main"]);
    world.remote = "github".into();
    std::fs::remove_file(&pushes).expect("the hook saw main pushed");
    world.head = world::git(&repo, &["rev-parse", "HEAD"]);
    world.repo = repo;
    (origin, pushes)
}

fn lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path).unwrap_or_default().lines().map(str::to_owned).collect()
}

/// .github/workflows/release.yml run by act. From a branch it does
/// nothing. From main, its `publish` job (the real one, with gh and git
/// against the fake and a bare repository standing for GitHub's) commits the
/// manifest on a release commit of its own, creates a draft release with
/// every archive and the manifest, pushes the version tag (the draft has
/// every asset by then), publishes the release, downloads the assets back,
/// and only then moves the major tag: when `v0` arrives at the remote the
/// release is published with all its assets, and main is never pushed. A
/// second release of the same version stops before pushing anything.
///
/// The `build` job is not run here: its matrix builds release binaries
/// for macOS (act's host mode has only this Linux machine) and cross-builds
/// for aarch64 with packages from apt, minutes each. It stands as having
/// succeeded, with the artifacts it uploads (`archive-TARGET` for every
/// target of its matrix, made by dist/package.sh from a small executable
/// standing for the binary). So its `actions/attest-build-provenance` step
/// runs nowhere and has no stand-in.
#[test]
fn release_publishes_assets_before_moving_the_major_tag_only_from_main_and_never_pushes_main() {
    let _serial = serial();
    let mut world = World::new("release", Options { environments: vec![], workflows: vec![], ..Options::default() });
    let (origin, pushes) = release_repo(&mut world);
    let version = &world::release().version;
    let tag = format!("v{version}");
    let major = format!("v{}", version.split('.').next().expect("major"));

    // Dispatched from a branch: no job runs, nothing is pushed or released.
    let mut run = world.start_run("release.yml", "refs/heads/feature", &[]);
    world.run_rest(&mut run, &mut no_reviews());
    assert_eq!(run.result("build"), "skipped", "{}", run.describe());
    assert_eq!(run.result("publish"), "skipped", "{}", run.describe());
    assert!(lines(&pushes).is_empty(), "{:?}", lines(&pushes));
    assert!(world.fake.releases(world::REPO).is_empty());

    // From main, after the build.
    let workflow: serde_yaml::Value =
        serde_yaml::from_str(&std::fs::read_to_string(world.repo.join(".github/workflows/release.yml")).expect("yml"))
            .expect("YAML");
    let targets: Vec<String> = workflow["jobs"]["build"]["strategy"]["matrix"]["include"]
        .as_sequence()
        .expect("the build matrix")
        .iter()
        .map(|t| t["target"].as_str().expect("target").to_owned())
        .collect();
    assert!(targets.len() >= 4, "{targets:?}");
    let mut run = world.start_run("release.yml", "refs/heads/main", &[]);
    let binary = world.dir.join("sluice-standing-in");
    std::fs::write(&binary, "#!/bin/sh\necho sluice\n").expect("binary");
    world::run(std::process::Command::new("chmod").arg("+x").arg(&binary));
    let mut archives = BTreeMap::new();
    for target in &targets {
        let dir = world.dir.join(format!("store/runs/{}/artifacts/archive-{target}", run.id));
        let out = std::process::Command::new(world::root().join("dist/package.sh"))
            .arg("archive")
            .arg(target)
            .arg(&binary)
            .arg(&dir)
            .output()
            .expect("package.sh");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let line = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        let (sum, name) = line.split_once("  ").expect("SUM  NAME");
        archives.insert(name.to_owned(), sum.to_owned());
    }
    let log = world.dir.join("build.log");
    std::fs::write(&log, "not run here: see the scenario's doc\n").expect("log");
    let built = JobOutcome { result: "success".into(), outputs: BTreeMap::new(), environment: None, log };
    run.jobs.insert("build".into(), built.clone());
    world.run_rest(&mut run, &mut no_reviews());
    assert_eq!(run.result("publish"), "success", "{}", run.describe());

    let mut assets: Vec<String> = archives.keys().cloned().collect();
    assets.push(format!("{tag}.sha256"));
    assets.sort();
    assert_eq!(world.fake.releases(world::REPO), vec![(tag.clone(), false, assets.clone())]);
    assert_eq!(
        lines(&pushes),
        vec![
            format!("refs/tags/{tag} draft:{}", assets.join(",")),
            format!("refs/tags/{major} published:{}", assets.join(","))
        ],
        "the version tag once a draft release has every asset (it is published right after), the major tag once \
         the release is published; no branch"
    );
    assert_eq!(world::git(&origin, &["rev-parse", "refs/heads/main"]), world.head, "main was not pushed");
    let released = world::git(&origin, &["rev-parse", &format!("refs/tags/{tag}^{{commit}}")]);
    assert_eq!(world::git(&origin, &["rev-parse", &format!("refs/tags/{major}^{{commit}}")]), released);
    assert_eq!(world::git(&origin, &["rev-parse", &format!("{released}^")]), world.head, "on top of main's head");
    let manifest = world::git(&origin, &["show", &format!("{released}:dist/manifests/{tag}.sha256")]);
    let listed: BTreeMap<String, String> = manifest
        .lines()
        .filter_map(|l| l.split_once("  ").map(|(sum, name)| (name.to_owned(), sum.to_owned())))
        .collect();
    assert_eq!(listed, archives, "the release commit's manifest lists the archives");

    // The same version again: refused before anything is pushed or released.
    let mut again = world.start_run("release.yml", "refs/heads/main", &[]);
    again.jobs.insert("build".into(), built);
    world.run_rest(&mut again, &mut no_reviews());
    assert_eq!(again.result("publish"), "failure", "{}", again.describe());
    let log = std::fs::read_to_string(&again.jobs["publish"].log).expect("log");
    assert!(log.contains(&format!("{tag} exists already")), "{}", again.jobs["publish"].log.display());
    assert_eq!(lines(&pushes).len(), 2, "{:?}", lines(&pushes));
    assert_eq!(world.fake.releases(world::REPO).len(), 1);
}

/// This checkout's tracked files (the action's repository at the pull
/// request's commit), with the release manifest of this version committed
/// as after a release, as the user's repository of a world whose workflow
/// files are `workflows` (name, text), replacing the checkout's.
fn action_repo(world: &mut World, workflows: &[(&str, String)]) {
    let root = world::root();
    let repo = world.dir.join("sluice");
    let files = world::git(&root, &["ls-files"]);
    for file in files.lines().filter(|f| !f.starts_with(".github/workflows/")) {
        let to = repo.join(file);
        std::fs::create_dir_all(to.parent().expect("parent")).expect("dir");
        std::fs::copy(root.join(file), &to).unwrap_or_else(|e| panic!("copy {file}: {e}"));
    }
    let version = &world::release().version;
    let manifest = format!("dist/manifests/v{version}.sha256");
    std::fs::copy(world::release().action_dir.join(&manifest), repo.join(&manifest)).expect("manifest");
    std::fs::create_dir_all(repo.join(".github/workflows")).expect("workflows");
    for (name, text) in workflows {
        std::fs::write(repo.join(".github/workflows").join(name), text).expect("workflow");
    }
    world::git(&repo, &["init", "-q", "-b", "main"]);
    world::git(&repo, &["remote", "add", "origin", &format!("https://github.com/{}.git", world::REPO)]);
    world::git(&repo, &["add", "-A"]);
    world::git(&repo, &["commit", "-q", "-m", "a pull request"]);
    world.head = world::git(&repo, &["rev-parse", "HEAD"]);
    world.repo = repo;
}

/// .github/workflows/self-test.yml tests the pull request's code, not the
/// released binary, even once the manifest of the version is committed and
/// its archive is downloadable: its `promote` job's setup (`uses: ./`,
/// mode setup, under the workflow's `SLUICE_FROM_SOURCE`) installs the
/// source build and downloads nothing. Without `SLUICE_FROM_SOURCE` the same
/// step installs the released archive (downloaded from the fake): the
/// scenario can tell the two apart.
///
/// Only that step runs: the rest of self-test.yml builds release binaries
/// with cargo (scripts/self-test-env.sh `cargo build --release -p
/// sluice-router -p sluice-demo`), minutes on this machine, beyond a
/// scenario's budget. The source build itself comes from the action's cache
/// (the cache stand-in, seeded under the key the action computes from the
/// checkout's sources: a build of these sources, the debug `sluice` of this
/// test run, as a previous run of the job would have saved it), so no cargo
/// build runs here either; the source method and its key are the action's.
#[test]
fn self_test_installs_the_pull_requests_build_not_the_released_archive() {
    let _serial = serial();
    let root = world::root();
    let text = std::fs::read_to_string(root.join(".github/workflows/self-test.yml")).expect("self-test.yml");
    let workflow: serde_yaml::Value = serde_yaml::from_str(&text).expect("YAML");
    assert_eq!(workflow["env"]["SLUICE_FROM_SOURCE"].as_str(), Some("1"), "self-test.yml sets SLUICE_FROM_SOURCE");
    // The promote job up to its setup step, the workflow's env kept.
    let setup_only = |from_source: bool| -> String {
        let mut w = workflow.clone();
        let mut job = w["jobs"]["promote"].clone();
        let steps = job["steps"].as_sequence().expect("steps").clone();
        let n = steps.iter().position(|s| s["id"].as_str() == Some("setup")).expect("a step with id setup") + 1;
        job["steps"] = serde_yaml::Value::Sequence(steps[..n].to_vec());
        let mut jobs = serde_yaml::Mapping::new();
        jobs.insert("promote".into(), job);
        w["jobs"] = serde_yaml::Value::Mapping(jobs);
        if !from_source {
            w["env"].as_mapping_mut().expect("env").remove("SLUICE_FROM_SOURCE");
        }
        serde_yaml::to_string(&w).expect("YAML")
    };
    let mut world = World::new("self-test", Options { environments: vec![], workflows: vec![], ..Options::default() });
    action_repo(&mut world, &[("self-test.yml", setup_only(true)), ("self-test-archive.yml", setup_only(false))]);
    let version = world::release().version.clone();

    // The action's own source key and hash for this checkout.
    let plan = std::process::Command::new("bash")
        .arg(world.repo.join("dist/install.sh"))
        .arg("plan")
        .env("SLUICE_FROM_SOURCE", "1")
        .output()
        .expect("install.sh plan");
    let plan = String::from_utf8_lossy(&plan.stdout).into_owned();
    let key = plan.lines().find_map(|l| l.strip_prefix("key=")).expect("a key").to_owned();
    assert!(key.starts_with("sluice-src-"), "{plan}");
    let hash = std::process::Command::new("bash")
        .arg("-c")
        .arg(r#"root=$1; . "$root/dist/lib.sh"; eval "$(sed -n '/^source_hash()/,/^}/p' "$root/dist/install.sh")"; source_hash"#)
        .arg("source-hash")
        .arg(&world.repo)
        .output()
        .expect("source_hash");
    let hash = String::from_utf8_lossy(&hash.stdout).trim().to_owned();
    assert!(key.ends_with(&hash[..16]), "{key} is keyed by {hash}");
    let cached = world.dir.join("cached");
    std::fs::create_dir_all(cached.join("bin")).expect("bin");
    std::fs::copy(world::binary("sluice"), cached.join("bin/sluice")).expect("sluice");
    std::fs::write(cached.join("bin/.source-hash"), format!("{hash}\n")).expect("hash");
    std::fs::create_dir_all(world.dir.join("store/cache")).expect("cache");
    world::run(
        std::process::Command::new("tar")
            .arg("-cf")
            .arg(world.dir.join(format!("store/cache/{key}.tar")))
            .arg("-C")
            .arg(&cached)
            .arg("bin"),
    );
    let downloads = || world.fake.seen().into_iter().filter(|s| s.path.contains("/releases/download/")).count();

    let run = world.dispatch("self-test.yml", &[], &mut no_reviews());
    assert_eq!(run.result("promote"), "success", "{}", run.describe());
    let log = std::fs::read_to_string(&run.jobs["promote"].log).expect("log");
    assert!(log.contains(&format!("Cache restored from key: {key}")), "{}", run.jobs["promote"].log.display());
    assert!(
        log.contains(&format!("installed sluice {version} (source)")),
        "the checkout's build: {}",
        run.jobs["promote"].log.display()
    );
    assert_eq!(downloads(), 0, "the released archive was not downloaded");

    let run = world.dispatch("self-test-archive.yml", &[], &mut no_reviews());
    assert_eq!(run.result("promote"), "success", "{}", run.describe());
    let log = std::fs::read_to_string(&run.jobs["promote"].log).expect("log");
    assert!(log.contains(&format!("installed sluice {version} (archive)")), "{}", run.jobs["promote"].log.display());
    assert!(downloads() > 0, "without SLUICE_FROM_SOURCE the released archive is downloaded");
}

/// .github/workflows/ci.yml on a GitHub runner, which is not root and has
/// passwordless sudo: its one step, `bash .ci/run`, runs scripts/test.sh,
/// whose first part, scripts/setup-tools.sh, installs the Debian packages a
/// runner lacks (Prometheus) through `sudo -n`; where there is no sudo it
/// names them and fails.
///
/// ci.yml is not run under act: its step is the whole test suite (about 20
/// minutes here). This runs that first part as the runner would: the user
/// id is 1001 (an `id` first on PATH says so; the test process is root
/// here), `sudo` is a stand-in that records what it is asked to run and
/// runs nothing (so nothing is installed on this machine), and PATH has
/// every tool of this machine but `prometheus`.
#[test]
fn ci_setup_installs_with_sudo_on_a_runner_that_is_not_root() {
    let root = world::root();
    let ci = std::fs::read_to_string(root.join(".github/workflows/ci.yml")).expect("ci.yml");
    let ci: serde_yaml::Value = serde_yaml::from_str(&ci).expect("YAML");
    let runs: Vec<&str> =
        ci["jobs"]["test"]["steps"].as_sequence().expect("steps").iter().filter_map(|s| s["run"].as_str()).collect();
    assert_eq!(runs, ["bash .ci/run"], "ci.yml runs .ci/run");
    let entry = std::fs::read_to_string(root.join(".ci/run")).expect(".ci/run");
    assert!(entry.contains("exec scripts/test.sh"), ".ci/run runs scripts/test.sh");
    let test = std::fs::read_to_string(root.join("scripts/test.sh")).expect("test.sh");
    let first = test.lines().find(|l| l.starts_with("scripts/") || l.starts_with("cargo ")).expect("a command");
    assert_eq!(first, "scripts/setup-tools.sh", "scripts/test.sh sets the tools up first");

    let dir = tempfile::tempdir().expect("tempdir");
    let stubs = dir.path().join("stubs");
    let usr_bin = dir.path().join("usr-bin");
    std::fs::create_dir_all(&stubs).expect("stubs");
    std::fs::create_dir_all(&usr_bin).expect("usr-bin");
    for entry in std::fs::read_dir("/usr/bin").expect("/usr/bin").flatten() {
        if entry.file_name() != "prometheus" {
            std::os::unix::fs::symlink(entry.path(), usr_bin.join(entry.file_name())).expect("link");
        }
    }
    let log = dir.path().join("sudo.log");
    let stub = |name: &str, text: String| {
        let path = stubs.join(name);
        std::fs::write(&path, text).expect("stub");
        world::run(std::process::Command::new("chmod").arg("+x").arg(&path));
    };
    stub("id", "#!/bin/sh\nif [ \"$1\" = -u ]; then echo 1001; else exec /usr/bin/id \"$@\"; fi\n".into());
    let path = |with_sudo: bool| {
        let mut dirs: Vec<PathBuf> = vec![stubs.clone()];
        let inherited = std::env::var_os("PATH").unwrap_or_default();
        dirs.extend(
            std::env::split_paths(&inherited)
                .filter(|d| !["/usr/bin", "/bin", "/usr/sbin", "/sbin"].contains(&d.to_str().unwrap_or_default())),
        );
        dirs.push(usr_bin.clone());
        if !with_sudo {
            let _ = std::fs::remove_file(stubs.join("sudo"));
            let _ = std::fs::remove_file(usr_bin.join("sudo"));
        }
        std::env::join_paths(dirs).expect("PATH")
    };
    let setup = |path: std::ffi::OsString| {
        std::process::Command::new("/bin/bash")
            .arg(root.join("scripts/setup-tools.sh"))
            .current_dir(&root)
            .env("PATH", path)
            .output()
            .expect("setup-tools.sh")
    };

    stub("sudo", format!("#!/bin/sh\nprintf '%s\\n' \"$*\" >> '{}'\nexit 0\n", log.display()));
    let out = setup(path(true));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let asked: Vec<String> = lines(&log);
    assert_eq!(
        asked,
        [
            "-n true",
            "-n apt-get update -qq",
            "-n env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus"
        ],
        "{stderr}"
    );

    let out = setup(path(false));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("setup: missing Debian packages: sudo apt-get install prometheus"), "{stderr}");
    assert_eq!(lines(&log).len(), 3, "no sudo, nothing asked of it");
}

/// The shipped report workflow (dist/workflows/dora-report.yml) as written:
/// the action's `report` mode reads the history from GitHub and uploads the
/// report; the second run restores the GitHub API's ETag cache the first
/// one saved (actions/cache), so the answers that did not change come back
/// 304 and cost nothing against the rate limit.
#[test]
fn the_report_workflow_keeps_the_github_cache_between_runs() {
    let _serial = serial();
    let read = |name: &str| std::fs::read_to_string(world::root().join("dist/workflows").join(name)).expect("workflow");
    let world = World::new(
        "report",
        Options {
            environments: vec!["dev"],
            workflows: vec![
                ("promote.yml".into(), read("promote.yml")),
                ("dora-report.yml".into(), read("dora-report.yml")),
            ],
            ..Options::default()
        },
    );
    world.deploy_candidate("dev", "v2");
    let run = world.promote("dev", "v1.4.2", "", &mut no_reviews());
    assert_eq!(run.output("canary", "decision"), "promoted", "{}", run.describe());

    let mut counted = Vec::new();
    for _ in 0..2 {
        world.fake.clear_seen();
        let before = world.fake.remaining();
        let run = world.dispatch("dora-report.yml", &[("since", "all")], &mut no_reviews());
        assert_eq!(run.result("report"), "success", "{}", run.describe());
        let seen = world.fake.seen();
        let not_modified = seen.iter().filter(|s| s.status == 304).count();
        let log = std::fs::read_to_string(&run.jobs["report"].log).expect("the job's log");
        // The first report finds what the promotion's job saved (the
        // deployment it read), the second what the first report saved.
        assert!(log.contains("Cache restored from key: sluice-github-api-"), "{log}");
        assert!(log.contains("Cache saved with key: sluice-github-api-"), "{log}");
        if let Some(&(_, first)) = counted.first() {
            assert!(not_modified > first, "the second report asks with the ETags the first one saved: {seen:?}");
        }
        counted.push((before - world.fake.remaining(), not_modified));
        // The report itself: the promotion in dev, uploaded as the artifact.
        let path = world.dir.join(format!("store/runs/{}/artifacts/dora-report/dora.json", run.id));
        let report: Value = serde_json::from_str(&std::fs::read_to_string(&path).expect("dora.json")).expect("JSON");
        let dev = report["environments"].as_array().expect("environments").iter().find(|e| e["environment"] == "dev");
        assert_eq!(dev.expect("dev")["counts"]["deployments"], 1, "{report}");
        assert_eq!(report["partial"], Value::Null);
    }
    eprintln!(
        "dora-report workflow: calls counted against the rate limit (and 304s): first report {:?}, second {:?}",
        counted[0], counted[1]
    );
    assert!(counted[1].0 < counted[0].0, "the ETag cache saves calls: {counted:?}");
}
