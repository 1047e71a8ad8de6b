//! The workflows run on a real workflow engine: the shipped promotion
//! workflow (dist/workflows/promote.yml) and the one on docs/workflows.md, with the sluice
//! action used as a user uses it (`uses: sluice-dev/sluice@v0.1.0`,
//! installed from the release archive the GitHub fake serves), run by act
//! against the GitHub fake and an embedded router per environment.
//!
//! Each scenario asserts on the routers' weights read back, the records the
//! runs uploaded, the fake's deployments, statuses and dispatches, and the
//! job results. Scenarios run one at a time and alone (`support::alone`:
//! they share two cores with the routers and load generators they start).

mod engine;
mod world;

use engine::{Hooks, Review, Run};
use serde_json::Value;
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
