//! End-to-end on an emulated AWS: the real step binaries against moto, with
//! the ALB's weights read back through the SDK after every step.
//!
//! Needs `moto_server` on PATH (`scripts/setup-tools.sh` installs it); without it these
//! tests are skipped with a message, except in CI where that fails.

use crate::support::aws::{AlbWorld, aws_command, record_at};
use crate::support::{Turn, shared};
use sluice_providers::aws::Aws;
use sluice_providers::aws::alb::{AlbRouter, Resource};
use sluice_test_support::aws::{self as testing, Moto};

use std::process::{Command, Output};

/// One ALB in moto's default account as environment dev's router (prd's
/// is a local router nothing answers at), and what the steps printed.
struct Env {
    world: AlbWorld,
    /// Where the steps send their AWS calls: moto, or a proxy in front of it.
    endpoint: String,
    /// Everything the steps printed, to search for the credentials.
    printed: std::sync::Mutex<Vec<u8>>,
}

impl Env {
    async fn start(strategy: &str) -> Option<Env> {
        let world = AlbWorld::start().await?;
        world.write_config(&format!(
            "app = \"shop\"\n[ledger]\nkind = \"file\"\npath = \"ledger.jsonl\"\n[analysis]\ninterval = \"200ms\"\n\
             [defaults]\nstrategy = {strategy}\nanalysis = \"none\"\n\
             [[environment]]\nname = \"dev\"\nrouter = {}\n\
             [[environment]]\nname = \"prd\"\nrouter = {{ kind = \"local\", admin_url = \"http://127.0.0.1:9\" }}\n",
            world.router()
        ));
        Some(Env { endpoint: world.moto.endpoint.clone(), world, printed: Default::default() })
    }

    fn step(&self, name: &str, args: &[&str]) -> Output {
        self.step_on("r.json", name, args)
    }

    fn step_on(&self, record: &str, name: &str, args: &[&str]) -> Output {
        self.step_with("sluice.toml", record, name, args)
    }

    fn step_with(&self, config: &str, record: &str, name: &str, args: &[&str]) -> Output {
        let out = aws_command(self.world.dir.path(), &self.endpoint, name)
            .args(["--config", config, "-e", "dev", "--record", record])
            .args(args)
            .output()
            .expect("step runs");
        if let Ok(mut printed) = self.printed.lock() {
            printed.extend_from_slice(&out.stdout);
            printed.extend_from_slice(&out.stderr);
        }
        out
    }

    /// The AWS credentials the steps were given appear in no file they
    /// wrote (records, ledger, summaries, outputs) and in nothing they printed.
    fn assert_credentials_nowhere(&self) {
        let secrets = [testing::TEST_SECRET_ACCESS_KEY, testing::TEST_ACCESS_KEY_ID];
        let contains = |bytes: &[u8]| secrets.iter().any(|s| bytes.windows(s.len()).any(|w| w == s.as_bytes()));
        let mut files = 0;
        let mut stack = vec![self.world.dir.path().to_owned()];
        while let Some(dir) = stack.pop() {
            for entry in std::fs::read_dir(&dir).expect("dir").flatten() {
                let path = entry.path();
                if path.is_dir() {
                    stack.push(path);
                } else {
                    files += 1;
                    let bytes = std::fs::read(&path).expect("read");
                    assert!(!contains(&bytes), "AWS credentials in {}", path.display());
                }
            }
        }
        assert!(files >= 4, "the steps wrote too little to mean anything ({files} files)");
        let printed = self.printed.lock().expect("printed");
        assert!(!printed.is_empty() && !contains(&printed), "AWS credentials were printed");
    }

    async fn weights(&self) -> Vec<(String, i32)> {
        self.world.weights().await
    }

    async fn stable(&self) -> Option<String> {
        let alb = AlbRouter::with_aws(
            Aws::from_sdk_config(self.world.sdk.clone()),
            Resource::Listener(self.world.fx.listener.clone()),
            &self.world.fx.blue,
            &self.world.fx.green,
        );
        alb.state().await.expect("state").stable
    }

    fn record(&self) -> serde_json::Value {
        record_at(self.world.dir.path(), "r.json")
    }
}

fn ok(out: &Output, what: &str) {
    assert_eq!(out.status.code(), Some(0), "{what}: {}", String::from_utf8_lossy(&out.stderr));
}

fn w(pairs: &[(&str, i32)]) -> Vec<(String, i32)> {
    pairs.iter().map(|(a, w)| ((*a).to_owned(), *w)).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn gate_canary_promote_on_an_alb() {
    let Some(env) = Env::start("{ kind = \"canary\", stages = [10, 50, 100], stage_duration = \"300ms\" }").await
    else {
        return;
    };
    ok(&env.step("gate", &["--release", "v2", "--commit", "abcdef1"]), "gate");
    ok(&env.step("shift-traffic", &[]), "shift-traffic");
    assert_eq!(env.weights().await, w(&[(&env.world.fx.blue, 0), (&env.world.fx.green, 100)]));
    let record = env.record();
    let traffic: Vec<u64> = record["events"]
        .as_array()
        .expect("events")
        .iter()
        .filter(|e| e["type"] == "traffic")
        .filter_map(|e| e["to"].as_u64())
        .collect();
    assert_eq!(traffic, [10, 50, 100], "every stage confirmed by the ALB");
    assert_eq!(record["router_before"]["target_groups"][0]["arn"], env.world.fx.blue.as_str());

    ok(&env.step("promote", &[]), "promote");
    assert_eq!(env.stable().await.as_deref(), Some(env.world.fx.green.as_str()), "green is stable now");
    assert_eq!(env.weights().await, w(&[(&env.world.fx.green, 100), (&env.world.fx.blue, 0)]));
    assert_eq!(env.record()["status"], "promoted");

    // The next release goes into blue, now the idle group; its rollback
    // puts back green as the stable group with all the traffic.
    ok(&env.step_on("r2.json", "gate", &["--release", "v3", "--commit", "abcdef2"]), "gate v3");
    ok(&env.step_on("r2.json", "shift-traffic", &["--weight", "20"]), "shift v3 to 20%");
    assert_eq!(env.weights().await, w(&[(&env.world.fx.green, 80), (&env.world.fx.blue, 20)]));
    ok(&env.step_on("r2.json", "rollback", &[]), "rollback v3");
    assert_eq!(env.weights().await, w(&[(&env.world.fx.green, 100), (&env.world.fx.blue, 0)]));
    assert_eq!(env.stable().await.as_deref(), Some(env.world.fx.green.as_str()));
    env.assert_credentials_nowhere();
}

#[tokio::test(flavor = "multi_thread")]
async fn rollback_restores_the_alb_exactly() {
    let Some(env) = Env::start("{ kind = \"canary\", stages = [10, 100], stage_duration = \"1s\" }").await else {
        return;
    };
    ok(&env.step("gate", &["--release", "v3", "--commit", "abcdef1"]), "gate");
    ok(&env.step("shift-traffic", &["--weight", "40"]), "shift-traffic --weight 40");
    assert_eq!(env.weights().await, w(&[(&env.world.fx.blue, 60), (&env.world.fx.green, 40)]));

    ok(&env.step("rollback", &["--reason", "test"]), "rollback");
    assert_eq!(env.weights().await, w(&[(&env.world.fx.blue, 1)]), "the single forward to blue, as before");
    assert_eq!(env.stable().await.as_deref(), Some(env.world.fx.blue.as_str()));
    let record = env.record();
    assert_eq!(record["status"], "rolled_back");
    let rollback = record["events"].as_array().expect("events").iter().find(|e| e["type"] == "rollback").cloned();
    assert_eq!(
        rollback.expect("rollback event")["restored"]["target_groups"],
        record["router_before"]["target_groups"]
    );
    // Idempotent.
    ok(&env.step("rollback", &[]), "rollback again");
    assert_eq!(env.weights().await, w(&[(&env.world.fx.blue, 1)]));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_promotion_is_reverted() {
    let Some(env) = Env::start("{ kind = \"all_at_once\" }").await else { return };
    ok(&env.step("gate", &["--release", "v2", "--commit", "abcdef1"]), "gate");
    ok(&env.step("shift-traffic", &[]), "shift-traffic");
    ok(&env.step("promote", &[]), "promote");
    assert_eq!(env.stable().await.as_deref(), Some(env.world.fx.green.as_str()));

    ok(&env.step("rollback", &["--reason", "bad release found later"]), "revert");
    assert_eq!(env.stable().await.as_deref(), Some(env.world.fx.blue.as_str()));
    assert_eq!(env.weights().await, w(&[(&env.world.fx.blue, 1)]));
    assert_eq!(env.record()["status"], "rolled_back");
    let ledger = std::fs::read_to_string(env.world.dir.path().join("ledger.jsonl")).expect("ledger");
    assert!(ledger.lines().last().is_some_and(|l| l.contains("\"reverted\"")), "{ledger}");
}

/// The lease claims on the listener (tag key, release, record id).
async fn lease_tags(env: &Env) -> Vec<(String, String, String)> {
    let alb = AlbRouter::with_aws(
        Aws::from_sdk_config(env.world.sdk.clone()),
        Resource::Listener(env.world.fx.listener.clone()),
        &env.world.fx.blue,
        &env.world.fx.green,
    );
    let now = jiff::Timestamp::now();
    let want = sluice_core::lease::Lease {
        schema: sluice_core::lease::LEASE_SCHEMA.into(),
        app: "shop".into(),
        environment: "dev".into(),
        record_id: String::new(),
        version: String::new(),
        holder: String::new(),
        acquired_at: now,
        expires_at: now,
    };
    let claims = alb.lease_claims(&want).await.expect("lease tags");
    claims.into_iter().map(|c| (c.key, c.lease.version, c.lease.record_id)).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn two_promotions_with_different_ledgers_get_one_listener() {
    let Some(env) = Env::start("{ kind = \"all_at_once\" }").await else { return };
    // Two configs for the same listener, each with its own ledger (and so
    // its own file lease): only the listener's tag can keep them apart.
    let a = std::fs::read_to_string(env.world.dir.path().join("sluice.toml")).expect("config");
    let a = a.replacen("[defaults]\n", "[defaults]\nlease_timeout = \"3s\"\n", 1);
    std::fs::write(env.world.dir.path().join("sluice.toml"), &a).expect("config a");
    // (The file lease lives beside the ledger: another directory.)
    let b = a.replace("ledger.jsonl", "b/ledger.jsonl");
    std::fs::create_dir_all(env.world.dir.path().join("b")).expect("dir b");
    std::fs::write(env.world.dir.path().join("b.toml"), b).expect("config b");

    let (ra, rb) = std::thread::scope(|s| {
        let ra =
            s.spawn(|| env.step_with("sluice.toml", "a.json", "gate", &["--release", "v2", "--commit", "abcdef1"]));
        let rb = s.spawn(|| env.step_with("b.toml", "b.json", "gate", &["--release", "v3", "--commit", "abcdef2"]));
        (ra.join().expect("a"), rb.join().expect("b"))
    });
    let code = |o: &Output| o.status.code().unwrap_or(-1);
    let text = |o: &Output| String::from_utf8_lossy(&o.stderr).into_owned();
    let (winner, loser, win, lose) = match (code(&ra), code(&rb)) {
        (0, 1) => (&ra, &rb, ("sluice.toml", "a.json", "v2"), ("b.toml", "b.json", "v3")),
        (1, 0) => (&rb, &ra, ("b.toml", "b.json", "v3"), ("sluice.toml", "a.json", "v2")),
        other => panic!("expected one gate to pass and one to wait, got {other:?}: {} / {}", text(&ra), text(&rb)),
    };
    let message = text(loser);
    assert!(
        message.contains(&format!(
            "WAIT  lease: the ALB listener of environment dev is held by deployment shop-dev-{}-",
            win.2
        )),
        "{message}"
    );
    assert!(message.contains(&format!("(release {}", win.2)), "the message names the holder: {message}");
    assert!(text(winner).contains("the ALB listener's lease too"), "{}", text(winner));
    let tags = lease_tags(&env).await;
    assert_eq!(tags.len(), 1, "the loser removed its claim: {tags:?}");
    assert_eq!(tags[0].1, win.2, "{tags:?}");

    // The holder promotes and lets go; the one that waited goes next.
    ok(&env.step_with(win.0, win.1, "shift-traffic", &[]), "shift-traffic");
    ok(&env.step_with(win.0, win.1, "promote", &[]), "promote");
    assert_eq!(lease_tags(&env).await, [], "promote released the listener");
    ok(&env.step_with(lose.0, lose.1, "gate", &["--release", lose.2, "--commit", "abcdef2"]), "the waiting gate again");

    // That run dies holding the listener. Another run (the other ledger)
    // waits while the lease lasts, and takes it over once it expired (3 s,
    // and 0.75 s of grace for other clocks).
    let early = env.step_with(win.0, "c.json", "gate", &["--release", "v4", "--commit", "abcdef3"]);
    assert_eq!(code(&early), 1, "while the lease lasts: {}", text(&early));
    tokio::time::sleep(std::time::Duration::from_millis(3000)).await;
    let next = env.step_with(win.0, "c.json", "gate", &["--release", "v4", "--commit", "abcdef3"]);
    assert_eq!(code(&next), 0, "{}", text(&next));
    assert!(
        text(&next).contains(&format!("took over the ALB listener's expired lease of deployment shop-dev-{}-", lose.2)),
        "{}",
        text(&next)
    );
    // The dead run comes back: its claim is gone, the listener is not its.
    let before = env.weights().await;
    let late = env.step_with(lose.0, lose.1, "shift-traffic", &[]);
    assert_eq!(code(&late), 1, "{}", text(&late));
    assert!(text(&late).contains("is held by deployment shop-dev-v4-"), "{}", text(&late));
    assert_eq!(env.weights().await, before, "a refused step moved traffic");
    env.assert_credentials_nowhere();
}

// CodeDeploy: moto keeps the deployments; the CodeDeploy fake on the fault
// proxy moves them along and answers ContinueDeployment and StopDeployment,
// which moto does not have (see sluice_test_support::aws).

use sluice_test_support::aws::{CodeDeployFake, FaultProxy, Script, create_codedeploy};

struct CdEnv {
    _turn: Turn,
    _moto: Moto,
    proxy: FaultProxy,
    fake: CodeDeployFake,
    dir: tempfile::TempDir,
}

impl CdEnv {
    async fn start(script: Script) -> Option<CdEnv> {
        let turn = shared();
        let moto = testing::moto()?;
        let sdk = moto.sdk_config().await;
        let fx = create_codedeploy(&sdk).await;
        let proxy = FaultProxy::start(&moto.endpoint);
        let fake = CodeDeployFake::install(&proxy, script);
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("appspec.yaml"), "version: 0.0\nResources: []\n").expect("appspec");
        let config = format!(
            "app = \"shop\"\n[ledger]\nkind = \"file\"\npath = \"ledger.jsonl\"\n\
             [[environment]]\nname = \"dev\"\n\
             router = {{ kind = \"codedeploy\", application = \"{}\", deployment_group = \"{}\", appspec = \"appspec.yaml\", poll_interval = \"100ms\", timeout = \"30s\" }}\n",
            fx.application, fx.deployment_group
        );
        std::fs::write(dir.path().join("sluice.toml"), config).expect("config");
        Some(CdEnv { _turn: turn, _moto: moto, proxy, fake, dir })
    }

    fn command(&self, name: &str, args: &[&str]) -> Command {
        let mut cmd = aws_command(self.dir.path(), &self.proxy.endpoint, name);
        cmd.args(["--config", "sluice.toml", "-e", "dev", "--record", "r.json"]).args(args);
        cmd
    }

    fn step(&self, name: &str, args: &[&str]) -> Output {
        self.command(name, args).output().expect("step runs")
    }

    fn record(&self) -> serde_json::Value {
        record_at(self.dir.path(), "r.json")
    }

    fn deployment_statuses(&self) -> Vec<String> {
        self.record()["events"]
            .as_array()
            .expect("events")
            .iter()
            .filter(|e| e["type"] == "deployment")
            .filter_map(|e| e["status"].as_str().map(str::to_owned))
            .collect()
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn codedeploy_is_created_followed_continued_and_promoted() {
    let Some(env) = CdEnv::start(Script::succeeds()).await else { return };
    ok(&env.step("gate", &["--release", "v2", "--commit", "abcdef1"]), "gate");
    let shift = env.step("shift-traffic", &[]);
    ok(&shift, "shift-traffic");
    assert!(String::from_utf8_lossy(&shift.stderr).contains("Ready"), "progress is shown");
    let statuses = env.deployment_statuses();
    assert_eq!(statuses.first().map(String::as_str), Some("InProgress"), "{statuses:?}");
    assert!(statuses.contains(&"Ready".to_owned()), "{statuses:?}");
    assert_eq!(statuses.last().map(String::as_str), Some("Succeeded"), "{statuses:?}");
    let record = env.record();
    assert_eq!(record["status"], "verified");
    assert_eq!(record["candidate_weight"], 100);
    assert_eq!(env.proxy.count("ContinueDeployment"), 1);
    // shift-traffic with a weight makes no sense here: refused, nothing written.
    let before = env.record();
    let refused = env.step("shift-traffic", &["--weight", "10"]);
    assert_eq!(refused.status.code(), Some(2), "{}", String::from_utf8_lossy(&refused.stderr));
    assert_eq!(env.record(), before);
    ok(&env.step("promote", &[]), "promote");
    assert_eq!(env.record()["status"], "promoted");
    // The deployment has ended: the lifecycle refuses more traffic (exit 1).
    let ended = env.step("shift-traffic", &["--weight", "10"]);
    assert_eq!(ended.status.code(), Some(1), "{}", String::from_utf8_lossy(&ended.stderr));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failed_codedeploy_deployment_is_recorded_as_rolled_back_with_its_message() {
    let Some(env) =
        CdEnv::start(Script::fails("HEALTH_CONSTRAINTS", "too many tasks failed their health checks")).await
    else {
        return;
    };
    ok(&env.step("gate", &["--release", "v3", "--commit", "abcdef1"]), "gate");
    let shift = env.step("shift-traffic", &[]);
    assert_eq!(shift.status.code(), Some(1), "{}", String::from_utf8_lossy(&shift.stderr));
    let record = env.record();
    assert_eq!(record["status"], "rolled_back");
    let events = record["events"].as_array().expect("events");
    let failed = events.iter().find(|e| e["type"] == "deployment" && e["status"] == "Failed").expect("failed event");
    assert!(failed["message"].as_str().is_some_and(|m| m.contains("HEALTH_CONSTRAINTS: too many tasks")), "{failed}");
    let ledger = std::fs::read_to_string(env.dir.path().join("ledger.jsonl")).expect("ledger");
    assert!(ledger.contains("rolled_back") && ledger.contains("HEALTH_CONSTRAINTS"), "{ledger}");
}

#[tokio::test(flavor = "multi_thread")]
async fn rollback_stops_a_codedeploy_deployment_in_flight() {
    let Some(env) = CdEnv::start(Script::runs()).await else { return };
    ok(&env.step("gate", &["--release", "v3", "--commit", "abcdef1"]), "gate");
    // The shift-traffic job is cancelled while CodeDeploy shifts.
    let mut shift = env.command("shift-traffic", &[]).stderr(std::process::Stdio::null()).spawn().expect("spawn");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while env.deployment_statuses().is_empty() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let _ = shift.kill();
    let _ = shift.wait();
    let id = env.record()["events"]
        .as_array()
        .and_then(|e| e.iter().find(|e| e["type"] == "deployment"))
        .and_then(|e| e["id"].as_str())
        .map(str::to_owned)
        .expect("a deployment was created");

    ok(&env.step("rollback", &["--reason", "job cancelled"]), "rollback");
    assert_eq!(env.fake.status(&id), Some(("Stopped".into(), false, true)), "stopped with automatic rollback");
    let record = env.record();
    assert_eq!(record["status"], "rolled_back");
    let rollback = record["events"].as_array().and_then(|e| e.iter().find(|e| e["type"] == "rollback")).cloned();
    let restored = rollback.expect("rollback event")["restored"].clone();
    assert_eq!(restored["deployment_status"], "Stopped");
    assert_eq!(restored["deployment_id"], id.as_str());
    // Idempotent: nothing left to stop.
    ok(&env.step("rollback", &[]), "rollback again");
    assert_eq!(env.proxy.count("StopDeployment"), 1);
}

// CloudWatch: the candidate's and stable's traffic comes from the ALB's
// per-target-group metrics, which the test puts into moto's CloudWatch the
// way the ALB would; a CloudWatch alarm is a check too.

use sluice_test_support::aws::{put_alb_minute, this_minute};

const CLOUDWATCH_CHECKS: &str = "[[defaults.check]]\nname = \"errors\"\nkind = \"error_rate\"\nmax = 0.02\nmin_samples = 50\ncritical = true\n\
    [[defaults.check]]\nname = \"errors-vs-stable\"\nkind = \"compare\"\nmetric = \"error_rate\"\ntolerance = 0.01\nmin_samples = 50\n\
    [[defaults.check]]\nname = \"no-alarm\"\nkind = \"query\"\nsource = \"cw\"\nquery = \"alarm shop-5xx\"\nmax = 0\nmin_samples = 1\n\
    [[defaults.source]]\nkind = \"cloudwatch\"\nname = \"cw\"\nalb_traffic = true\nlookback = \"2m\"\ndelay = \"0s\"\n";

async fn cloudwatch_env(candidate_errors: f64) -> Option<Env> {
    let env = Env::start("{ kind = \"canary\", stages = [10, 50, 100], stage_duration = \"1s\" }").await?;
    // One environment, with CloudWatch checks.
    let config = std::fs::read_to_string(env.world.dir.path().join("sluice.toml")).expect("config");
    let config = config.split("[[environment]]\nname = \"prd\"").next().expect("config").to_owned();
    let config = config
        .replace("analysis = \"none\"\n", "")
        .replace("[[environment]]", &format!("{CLOUDWATCH_CHECKS}[[environment]]"));
    std::fs::write(env.world.dir.path().join("sluice.toml"), config).expect("config");
    let client = aws_sdk_cloudwatch::Client::new(&env.world.sdk);
    client
        .put_metric_alarm()
        .alarm_name("shop-5xx")
        .namespace("AWS/ApplicationELB")
        .metric_name("HTTPCode_ELB_5XX_Count")
        .statistic(aws_sdk_cloudwatch::types::Statistic::Sum)
        .period(60)
        .evaluation_periods(1)
        .threshold(10.0)
        .comparison_operator(aws_sdk_cloudwatch::types::ComparisonOperator::GreaterThanThreshold)
        .send()
        .await
        .expect("alarm");
    let dims = env.world.fx.dims();
    // Minutes around now, so every stage's look-back finds traffic however
    // the test falls on the clock.
    for offset in -2..=3 {
        let minute = this_minute() + offset * 60;
        put_alb_minute(&env.world.sdk, &dims.load_balancer, &dims.candidate, minute, 500.0, candidate_errors).await;
        put_alb_minute(&env.world.sdk, &dims.load_balancer, &dims.stable, minute, 5000.0, 5.0).await;
    }
    Some(env)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_good_canary_on_an_alb_judged_by_cloudwatch_is_promoted() {
    let Some(env) = cloudwatch_env(0.0).await else { return };
    ok(&env.step("gate", &["--release", "v2", "--commit", "abcdef1"]), "gate");
    let shift = env.step("shift-traffic", &[]);
    ok(&shift, "shift-traffic");
    assert_eq!(env.weights().await, w(&[(&env.world.fx.blue, 0), (&env.world.fx.green, 100)]));
    let verify = env.step("verify-health", &["--duration", "1s"]);
    ok(&verify, "verify-health");
    let record = env.record();
    let verdicts: Vec<&serde_json::Value> =
        record["events"].as_array().expect("events").iter().filter(|e| e["type"] == "verdict").collect();
    assert_eq!(verdicts.len(), 4, "three stages and verify-health");
    for verdict in &verdicts {
        assert_eq!(verdict["report"]["verdict"], "pass", "{verdict}");
        let first = &verdict["report"]["intervals"][0];
        assert_eq!(first["candidate"]["requests"].as_u64().map(|r| r >= 500), Some(true), "{first}");
        assert_eq!(first["candidate"]["errors"], 0);
        let lookback = &first["lookback"]["cw"];
        assert_eq!(lookback["period_seconds"], 60, "the look-back window is in the evidence: {first}");
    }
    ok(&env.step("promote", &[]), "promote");
    assert_eq!(env.stable().await.as_deref(), Some(env.world.fx.green.as_str()));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_candidate_made_bad_in_cloudwatch_is_rolled_back_on_the_alb() {
    let Some(env) = cloudwatch_env(100.0).await else { return };
    ok(&env.step("gate", &["--release", "v3", "--commit", "abcdef1"]), "gate");
    let shift = env.step("shift-traffic", &[]);
    assert_eq!(shift.status.code(), Some(1), "rolled back: {}", String::from_utf8_lossy(&shift.stderr));
    assert_eq!(env.weights().await, w(&[(&env.world.fx.blue, 1)]), "all traffic back on blue, as before");
    let record = env.record();
    assert_eq!(record["status"], "rolled_back");
    let rollback = record["events"].as_array().and_then(|e| e.iter().find(|e| e["type"] == "rollback")).cloned();
    let reason = rollback.expect("rollback")["reason"].as_str().unwrap_or_default().to_owned();
    assert!(reason.contains("stage 1") && reason.contains("errors"), "{reason}");
    env.assert_credentials_nowhere();
}

#[tokio::test(flavor = "multi_thread")]
async fn each_step_publishes_its_deployment_metrics_in_one_call() {
    let Some(mut env) = Env::start("{ kind = \"canary\", stages = [10, 100], stage_duration = \"200ms\" }").await
    else {
        return;
    };
    let path = env.world.dir.path().join("sluice.toml");
    let config = std::fs::read_to_string(&path).expect("config").replacen(
        "[ledger]",
        "[deployment_metrics]\nkind = \"cloudwatch\"\nnamespace = \"Sluice/Deployments\"\n[ledger]",
        1,
    );
    std::fs::write(&path, config).expect("config");
    let proxy = FaultProxy::start(&env.world.moto.endpoint);
    env.endpoint = proxy.endpoint.clone();
    let mut calls = 0;
    for (step, args) in
        [("gate", &["--release", "v2", "--commit", "abcdef1"][..]), ("shift-traffic", &[]), ("promote", &[])]
    {
        ok(&env.step(step, args), step);
        calls += 1;
        assert_eq!(proxy.count("PutMetricData"), calls, "one PutMetricData call for {step}");
    }
    let client = aws_sdk_cloudwatch::Client::new(&env.world.sdk);
    let now = jiff::Timestamp::now().as_second();
    let read = |metric: &'static str, stat: &'static str| {
        let client = client.clone();
        async move {
            use aws_sdk_cloudwatch::types::{Dimension, Metric, MetricDataQuery, MetricStat};
            let metric = Metric::builder()
                .namespace("Sluice/Deployments")
                .metric_name(metric)
                .dimensions(Dimension::builder().name("App").value("shop").build())
                .dimensions(Dimension::builder().name("Environment").value("dev").build())
                .build();
            let out = client
                .get_metric_data()
                .start_time(aws_sdk_cloudwatch::primitives::DateTime::from_secs(now - 600))
                .end_time(aws_sdk_cloudwatch::primitives::DateTime::from_secs(now + 600))
                .metric_data_queries(
                    MetricDataQuery::builder()
                        .id("m")
                        .metric_stat(MetricStat::builder().metric(metric).period(1200).stat(stat).build())
                        .build(),
                )
                .send()
                .await
                .expect("get metric data");
            out.metric_data_results().first().and_then(|r| r.values().first().copied())
        }
    };
    assert_eq!(read("DeploymentStarted", "Sum").await, Some(1.0));
    assert_eq!(read("CanaryWeight", "Maximum").await, Some(100.0));
    assert_eq!(read("DeploymentSucceeded", "Sum").await, Some(1.0));
    assert!(read("DeploymentDuration", "Maximum").await.is_some_and(|d| d >= 0.0));
}

/// An edited record on an ALB: a plan that overshoots or is empty is
/// refused before anything moves (the listener's weights, read back from
/// moto, do not change); a `router_before` naming a foreign target group
/// does not make the rollback forward traffic there: it sends everything to
/// the stable pool instead.
#[tokio::test(flavor = "multi_thread")]
async fn an_edited_record_moves_no_alb_traffic_anywhere_new() {
    let Some(env) = Env::start("{ kind = \"canary\", stages = [10, 100], stage_duration = \"1s\" }").await else {
        return;
    };
    ok(&env.step("gate", &["--release", "v3", "--commit", "abcdef1"]), "gate");
    ok(&env.step("shift-traffic", &["--weight", "40"]), "shift-traffic --weight 40");
    let shifted = w(&[(&env.world.fx.blue, 60), (&env.world.fx.green, 40)]);
    assert_eq!(env.weights().await, shifted);
    let path = env.world.dir.path().join("r.json");
    let good = std::fs::read(&path).expect("record");
    let edit = |f: &dyn Fn(&mut serde_json::Value)| {
        let mut v: serde_json::Value = serde_json::from_slice(&good).expect("json");
        f(&mut v);
        std::fs::write(&path, serde_json::to_vec_pretty(&v).expect("json")).expect("write");
        std::fs::read(&path).expect("record")
    };
    for (what, plan) in [("overshoot", serde_json::json!([50, 250])), ("empty", serde_json::json!([]))] {
        let forged = edit(&|v| v["strategy"]["stages"] = plan.clone());
        let out = env.step("shift-traffic", &[]);
        assert_eq!(out.status.code(), Some(2), "{what}: {}", String::from_utf8_lossy(&out.stderr));
        assert!(String::from_utf8_lossy(&out.stderr).contains("strategy"), "{what}: names the field");
        assert_eq!(std::fs::read(&path).expect("record"), forged, "{what}: the record changed");
        assert_eq!(env.weights().await, shifted, "{what}: the listener changed");
    }
    let foreign = "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/evil/0123456789abcdef";
    edit(&|v| v["router_before"]["target_groups"][0]["arn"] = foreign.into());
    let rollback = env.step("rollback", &["--reason", "edited record"]);
    ok(&rollback, "rollback of an edited record");
    assert!(String::from_utf8_lossy(&rollback.stderr).contains("instead of restoring it exactly"));
    let weights = env.weights().await;
    assert!(weights.iter().all(|(arn, _)| arn != foreign), "traffic forwarded to a foreign group: {weights:?}");
    assert_eq!(weights.iter().find(|(arn, _)| *arn == env.world.fx.green).map_or(0, |(_, w)| *w), 0, "{weights:?}");
}
