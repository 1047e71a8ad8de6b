//! The README's "A real setup: an ALB, OIDC and the GitHub ledger", run as
//! written: its `sluice.toml` and `.github/workflows/promote.yml` are
//! extracted from README.md, the workflow byte for byte, the config with
//! only what must differ on this machine substituted (each substitution
//! named below). dev and prd each have an ALB on moto (in the README's
//! region, eu-west-1), the jobs get AWS credentials through OIDC (the
//! configure-aws-credentials stand-in, ID tokens from the GitHub fake), and
//! the built-in error-rate and latency checks read the target groups' traffic from
//! moto's CloudWatch, which this test fills as the ALB would (moto makes no
//! ALB metrics of its own).

use super::world::{self, Options, World};
use super::{no_reviews, serial, weight_of};
use serde_json::Value;
use sluice_providers::aws::alb::{AlbRouter, Resource};
use sluice_providers::aws::{Aws, AwsSettings};
use sluice_test_support::aws::{
    self as aws, AlbFixture, create_named_alb, forward_weights, put_alb_minute, put_alb_response_times,
};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// The README's region (its ARNs and the workflow's `aws-region`).
const README_REGION: &str = "eu-west-1";

/// The section of README.md the scenario runs.
const SECTION: &str = "\n## A real setup: an ALB, OIDC and the GitHub ledger\n";

/// The user's deploy script, which the README's workflow calls with the
/// release and the idle target group: here it records its arguments (in
/// the runner's home, which the harness gives each world).
const DEPLOY_SCRIPT: &str = "#!/bin/sh\n\
    # Deploys release $1 into target group $2 (an ECS service, an ASG, ...);\n\
    # in this test it only records what it was asked to do.\n\
    set -eu\n\
    printf '%s %s\\n' \"$1\" \"$2\" >> \"$HOME/release-to-target-group.log\"\n";

/// The first fenced block of `lang` in the README's section, as written.
fn readme_block(lang: &str) -> String {
    let readme = std::fs::read_to_string(world::root().join("README.md")).expect("README.md");
    let section =
        readme.split(SECTION).nth(1).expect("README.md has \"## A real setup: an ALB, OIDC and the GitHub ledger\"");
    let section = section.split("\n## ").next().unwrap_or(section);
    section
        .split(&format!("```{lang}\n"))
        .nth(1)
        .and_then(|s| s.split("\n```").next())
        .unwrap_or_else(|| panic!("the README's ALB section has a {lang} block"))
        .to_owned()
}

/// Replaces the one occurrence of `from` in `text`; panics when there is
/// none or more than one (the README changed: look at the substitution
/// again rather than run something else).
fn substitute(text: &str, from: &str, to: &str, why: &str) -> String {
    assert_eq!(text.matches(from).count(), 1, "the README's config has {from:?} once ({why})");
    text.replacen(from, to, 1)
}

/// The README's ARNs of an environment's listener and target groups.
fn readme_arns(config: &str, env: &str) -> [String; 3] {
    let section = config
        .split("[[environment]]")
        .find(|s| s.contains(&format!("name = \"{env}\"")))
        .unwrap_or_else(|| panic!("the README's config has environment {env}"));
    let arn = |key: &str| {
        let at = section.find(&format!("{key} = \"")).unwrap_or_else(|| panic!("{env} has {key}")) + key.len() + 4;
        section[at..].split('"').next().expect("a quoted ARN").to_owned()
    };
    [arn("listener_arn"), arn("stable_target_group"), arn("candidate_target_group")]
}

/// The README's config with what must differ here substituted.
fn readme_config(dev: &AlbFixture, prd: &AlbFixture) -> String {
    let readme = readme_block("toml");
    let mut config = readme.clone();
    // 1-6. The ARNs: the README's listener and target groups do not exist;
    // moto's (made by this test, one ALB per environment, named as the
    // README's) take their place.
    for (env, fx) in [("dev", dev), ("prd", prd)] {
        let [listener, blue, green] = readme_arns(&readme, env);
        config = substitute(&config, &listener, &fx.listener, "the listener: moto's");
        config = substitute(&config, &blue, &fx.blue, "the stable target group: moto's");
        config = substitute(&config, &green, &fx.green, "the candidate target group: moto's");
    }
    // 7. The analysis interval: 1m (CloudWatch's period) would take a minute
    // per sample. CloudWatch's windows stay whole minutes (period and delay
    // 1m by default, lookback 2m as the README has it): each stage's first
    // interval counts the lookback's two minutes, the later ones of a
    // seconds-long stage see at most one new minute (and those without
    // stay fewer than the built-in checks' inconclusive_limit of 6).
    config = substitute(&config, "interval = \"1m\"", "interval = \"1s\"", "the analysis interval");
    // 8-9. The stages: the same stages, 2 s each instead of 5 and 10 minutes.
    config = substitute(&config, "stage_duration = \"5m\"", "stage_duration = \"2s\"", "dev's stage length");
    config = substitute(&config, "stage_duration = \"10m\"", "stage_duration = \"2s\"", "prd's stage length");
    // 10. prd's soak: promoted in dev at least 1 s before, not an hour (the
    // gate still checks it).
    config = substitute(&config, "soak = \"1h\"", "soak = \"1s\"", "prd's soak");
    config.push('\n');
    config
}

/// Fills moto's CloudWatch with the ALBs' traffic while it runs: every
/// minute, once it has ended, each target group's `RequestCount`,
/// `HTTPCode_Target_5XX_Count` and `TargetResponseTime` (namespace
/// `AWS/ApplicationELB`, dimensions `LoadBalancer` and `TargetGroup`, what
/// the CloudWatch source reads with `alb_traffic = true`), about 1,200
/// requests a minute with 0-2 errors (0.1 %), 40 ms on average on stable
/// and 42 ms on the candidate. The minutes before the test started are
/// filled first.
///
/// Both groups serve every minute: the source's windows end a minute behind
/// the clock (CloudWatch publishes late), so a stage of seconds judges only
/// minutes from before it started, which carry no weight of sluice's (the
/// sample-ratio check skips them; in a 5-minute stage the window holds the
/// stage's own minutes).
struct Traffic {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Traffic {
    fn start(sdk: aws_config::SdkConfig, albs: Vec<AlbFixture>) -> Traffic {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
            let mut next = aws::this_minute() - 10 * 60;
            while !flag.load(Ordering::SeqCst) {
                // Minutes that have ended.
                while next + 60 <= jiff::Timestamp::now().as_second() {
                    let n = next / 60;
                    for fx in &albs {
                        let dims = fx.dims();
                        for (i, group) in [&dims.stable, &dims.candidate].into_iter().enumerate() {
                            let requests = 1150.0 + ((n + i as i64) % 7) as f64 * 15.0;
                            let errors = ((n + i as i64) % 3) as f64;
                            runtime.block_on(put_alb_minute(&sdk, &dims.load_balancer, group, next, requests, errors));
                            let mean = 0.040 + i as f64 * 0.002;
                            runtime.block_on(put_alb_response_times(
                                &sdk,
                                &dims.load_balancer,
                                group,
                                next,
                                requests,
                                mean,
                            ));
                        }
                    }
                    next += 60;
                }
                std::thread::sleep(std::time::Duration::from_millis(200));
            }
        });
        Traffic { stop, thread: Some(thread) }
    }
}

impl Drop for Traffic {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The record a run of the README's workflow uploaded (the action's
/// artifact `sluice-record-...`).
fn uploaded_record(world: &World, run: &super::engine::Run, env: &str) -> Value {
    let dir = world.dir.join(format!("store/runs/{}/artifacts", run.id));
    let mut found = Vec::new();
    for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}\n{}", dir.display(), run.describe())) {
        let path = entry.expect("entry").path().join(format!("{env}.json"));
        if path.is_file() {
            found.push(path);
        }
    }
    assert_eq!(found.len(), 1, "one record of {env} uploaded: {found:?}");
    serde_json::from_str(&std::fs::read_to_string(&found[0]).expect("record")).expect("a record is JSON")
}

fn lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path).unwrap_or_default().lines().map(str::to_owned).collect()
}

/// The README's ALB workflow and config, extracted from it, run as written:
/// a release dispatched into dev is deployed by the user's script into the
/// idle target group (the one `sluice status --json | jq` names), shifted
/// on dev's ALB stage by stage, judged by the built-in error-rate checks on
/// CloudWatch's ALB metrics, and promoted; the hand-off dispatches prd with
/// the same release and commit, and prd goes the same way.
#[test]
fn the_readme_alb_workflow_runs_as_written() {
    let _serial = serial();
    let Some(moto) = aws::moto() else { return };
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    let sdk = runtime.block_on(aws::sdk_config_with(AwsSettings {
        region: Some(README_REGION.into()),
        endpoint_url: Some(moto.endpoint.clone()),
        timeouts: None,
        role: None,
    }));
    let dev = runtime.block_on(create_named_alb(&moto.endpoint, &sdk, ["shop-dev", "shop-dev-blue", "shop-dev-green"]));
    let prd = runtime.block_on(create_named_alb(&moto.endpoint, &sdk, ["shop-prd", "shop-prd-blue", "shop-prd-green"]));
    let weights = |fx: &AlbFixture| {
        let w = runtime.block_on(forward_weights(&sdk, &fx.listener, None));
        (weight_of(&w, &fx.blue), weight_of(&w, &fx.green))
    };
    let workflow = readme_block("yaml");
    let world = World::new(
        "readme-alb",
        Options {
            environments: vec![],
            protected: vec![],
            config: Some(readme_config(&dev, &prd)),
            workflows: vec![("promote.yml".into(), format!("{workflow}\n"))],
            files: vec![("deploy/release-to-target-group.sh".into(), DEPLOY_SCRIPT.into())],
            aws_endpoint: Some(moto.endpoint.clone()),
            ..Options::default()
        },
    );
    // The README: "make the environments dev and prd, each with a variable
    // SLUICE_ROLE_ARN".
    world.set_var("dev", "SLUICE_ROLE_ARN", "arn:aws:iam::123456789012:role/sluice-dev");
    world.set_var("prd", "SLUICE_ROLE_ARN", "arn:aws:iam::123456789012:role/sluice-prd");
    let deployed = world.dir.join("home/release-to-target-group.log");
    let release = world.tag("v1.4.2");
    let _traffic = Traffic::start(sdk.clone(), vec![dev.clone(), prd.clone()]);
    assert_eq!(weights(&dev), (1, 0));
    assert_eq!(weights(&prd), (1, 0));

    // dev, dispatched by hand: no sha, the tag's commit.
    let started = std::time::Instant::now();
    let run = world.promote("dev", "v1.4.2", "", &mut no_reviews());
    eprintln!("dev: {:.1}s", started.elapsed().as_secs_f64());
    assert_eq!(run.result("promote"), "success", "{}", run.describe());
    assert_eq!(run.jobs["promote"].environment.as_deref(), Some("dev"));
    // Promoted on the ALB: green takes all the traffic and is stable now.
    assert_eq!(weights(&dev), (0, 100), "dev's listener read back");
    assert_eq!(
        roles(&runtime, &sdk, &dev),
        (dev.green.clone(), dev.blue.clone(), 0),
        "green is dev's stable group now"
    );
    assert_eq!(weights(&prd), (1, 0), "prd not touched yet");
    assert_eq!(lines(&deployed), [format!("v1.4.2 {}", dev.green)], "the idle group sluice status named");
    let record = uploaded_record(&world, &run, "dev");
    check_record(&record, &release, &dev, &[10, 50, 100]);
    let log = std::fs::read_to_string(&run.jobs["promote"].log).expect("log");
    assert!(log.contains("assumed-role/sluice-dev/GitHubActions"), "{}", run.jobs["promote"].log.display());
    let deployments = world.ledger_deployments("dev");
    assert_eq!(deployments.len(), 1, "{deployments:?}");
    assert_eq!(deployments[0]["sha"], release.as_str());
    let states = world.states(deployments[0]["id"].as_u64().expect("id"));
    assert_eq!(states.first().map(String::as_str), Some("in_progress"), "{states:?}");
    assert_eq!(states.last().map(String::as_str), Some("success"), "{states:?}");

    // The hand-off: prd, with the same release and commit.
    let dispatches = world.dispatches();
    assert_eq!(dispatches.len(), 1, "{dispatches:?}");
    let (file, inputs) = &dispatches[0];
    assert_eq!(file, "promote.yml");
    assert_eq!(inputs["environment"], "prd");
    assert_eq!(inputs["version"], "v1.4.2");
    assert_eq!(inputs["sha"], release);

    let started = std::time::Instant::now();
    let run = world.promote(&inputs["environment"], &inputs["version"], &inputs["sha"], &mut no_reviews());
    eprintln!("prd: {:.1}s", started.elapsed().as_secs_f64());
    assert_eq!(run.result("promote"), "success", "{}", run.describe());
    assert_eq!(run.jobs["promote"].environment.as_deref(), Some("prd"));
    assert_eq!(weights(&prd), (0, 100), "prd's listener read back");
    assert_eq!(
        roles(&runtime, &sdk, &prd),
        (prd.green.clone(), prd.blue.clone(), 0),
        "green is prd's stable group now"
    );
    assert_eq!(weights(&dev), (0, 100));
    assert_eq!(lines(&deployed), [format!("v1.4.2 {}", dev.green), format!("v1.4.2 {}", prd.green)]);
    let record = uploaded_record(&world, &run, "prd");
    check_record(&record, &release, &prd, &[5, 25, 50, 100]);
    let log = std::fs::read_to_string(&run.jobs["promote"].log).expect("log");
    assert!(log.contains("assumed-role/sluice-prd/GitHubActions"), "{}", run.jobs["promote"].log.display());
    let deployments = world.ledger_deployments("prd");
    assert_eq!(deployments.len(), 1, "{deployments:?}");
    assert_eq!(deployments[0]["sha"], release.as_str());
    let states = world.states(deployments[0]["id"].as_u64().expect("id"));
    assert_eq!(states.first().map(String::as_str), Some("in_progress"), "{states:?}");
    assert_eq!(states.last().map(String::as_str), Some("success"), "{states:?}");
    assert_eq!(world.dispatches().len(), 1, "prd is the last environment: nothing dispatched");
    // Each job asked GitHub for one ID token for STS.
    let requests: Vec<_> = world.fake.seen().into_iter().filter(|s| s.path == "/_apis/idtoken").collect();
    assert_eq!(requests.len(), 2, "{requests:?}");
    assert!(requests.iter().all(|r| r.status == 200 && r.query.contains("audience=sts.amazonaws.com")), "{requests:?}");
}

/// A promoted record of the README's release on an ALB: the README's
/// stages, each judged (and passed) by the built-in checks on CloudWatch's
/// traffic of the target groups.
fn check_record(record: &Value, release: &str, fx: &AlbFixture, stages: &[u64]) {
    assert_eq!(record["status"], "promoted", "{record:#}");
    assert_eq!(record["version"], "v1.4.2");
    assert_eq!(record["commit"], release, "the tag's commit, not main's head");
    assert_eq!(record["router_before"]["resource"], fx.listener.as_str());
    assert_eq!(record["router_before"]["candidate"], fx.green.as_str());
    let events = record["events"].as_array().expect("events");
    let of = |kind: &'static str| events.iter().filter(move |e| e["type"] == kind);
    let weights: Vec<u64> = of("traffic").filter_map(|e| e["to"].as_u64()).collect();
    assert_eq!(weights, stages, "the README's stages");
    // One verdict per stage and verify-health's.
    let verdicts: Vec<&Value> = of("verdict").collect();
    assert_eq!(verdicts.len(), stages.len() + 1, "{record:#}");
    for verdict in verdicts {
        let report = &verdict["report"];
        assert_eq!(report["verdict"], "pass", "{report:#}");
        let checks = report["checks"].as_array().expect("checks");
        let rate = checks.iter().find(|c| c["name"] == "builtin-error-rate").expect("the built-in error-rate check");
        assert_eq!(rate["verdict"], "pass", "{rate:#}");
        assert!(rate["samples"].as_u64().is_some_and(|n| n >= 1000), "CloudWatch's requests were judged: {rate:#}");
        // Latency against stable from TargetResponseTime below 100% (42 ms
        // against 40 ms: 8 ms under the 10 ms allowed); skipped at 100%.
        let latency = checks.iter().find(|c| c["name"] == "builtin-alb-latency-vs-stable");
        match report["candidate_weight"].as_u64() {
            Some(100) => assert!(latency.is_none(), "{report:#}"),
            _ => {
                let latency = latency.expect("the built-in latency check");
                assert_eq!(latency["verdict"], "pass", "{latency:#}");
                assert!(latency["observed"].as_f64().is_some_and(|v| (v + 0.008).abs() < 1e-6), "{latency:#}");
            }
        }
    }
}

/// The roles on an ALB as sluice's router reads them back through the SDK
/// (the weights and the `sluice:stable` tag): (stable, candidate, weight).
fn roles(runtime: &tokio::runtime::Runtime, sdk: &aws_config::SdkConfig, fx: &AlbFixture) -> (String, String, u8) {
    let router = AlbRouter::with_aws(
        Aws::from_sdk_config(sdk.clone()),
        Resource::Listener(fx.listener.clone()),
        &fx.blue,
        &fx.green,
    );
    let state = runtime.block_on(router.state()).expect("the ALB router's state");
    (state.stable.unwrap_or_default(), state.candidate.unwrap_or_default(), state.candidate_weight)
}

/// The README's workflow with the README's config as written (no
/// substitution): its listeners do not exist (here, on moto), so
/// `sluice status` shows dev's router as unreadable (`router.error`, no
/// `candidate`; status itself succeeds, by design). The deploy step stops
/// there: the user's deploy script is not called with a target group named
/// `null`, and nothing else runs.
#[test]
fn the_readme_alb_workflow_deploys_nothing_when_the_router_cannot_be_read() {
    let _serial = serial();
    let Some(moto) = aws::moto() else { return };
    let workflow = readme_block("yaml");
    let world = World::new(
        "readme-alb-unreadable",
        Options {
            environments: vec![],
            protected: vec![],
            config: Some(format!("{}\n", readme_block("toml"))),
            workflows: vec![("promote.yml".into(), format!("{workflow}\n"))],
            files: vec![("deploy/release-to-target-group.sh".into(), DEPLOY_SCRIPT.into())],
            aws_endpoint: Some(moto.endpoint.clone()),
            ..Options::default()
        },
    );
    world.set_var("dev", "SLUICE_ROLE_ARN", "arn:aws:iam::123456789012:role/sluice-dev");
    let run = world.promote("dev", "v1.4.2", "", &mut no_reviews());
    assert_eq!(run.result("promote"), "failure", "{}", run.describe());
    let log = std::fs::read_to_string(&run.jobs["promote"].log).expect("log");
    assert!(
        log.contains("Failure - Main Deploy the release into the idle target group"),
        "the deploy step failed: {}",
        run.jobs["promote"].log.display()
    );
    assert!(log.contains("alb unreachable: "), "the step says why: {}", run.jobs["promote"].log.display());
    assert!(
        !world.dir.join("home/release-to-target-group.log").exists(),
        "the deploy script was not called: {:?}",
        std::fs::read_to_string(world.dir.join("home/release-to-target-group.log"))
    );
    assert!(world.ledger_deployments("dev").is_empty(), "the action did not run");
    assert!(world.dispatches().is_empty());
}
