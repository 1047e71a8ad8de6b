//! The AWS routers' built-in checks on moto: an ALB environment whose
//! config names no checks, only a CloudWatch source that reads the target
//! groups (`alb_traffic = true`), is judged by sluice's built-in error-rate
//! and latency checks from the target groups' CloudWatch metrics, which the
//! test publishes the way the ALB would (`RequestCount`,
//! `HTTPCode_Target_5XX_Count`, and `TargetResponseTime` as per-minute
//! statistic sets). A CodeDeploy environment is judged by its deployment
//! group's CloudWatch alarms and, when the group has a blue/green
//! target-group pair behind an ALB listener, by the ALB's built-in checks
//! on the replacement target group (the one the listener did not serve
//! when the deployment started).
//!
//! moto 5.2.5 answers `GetMetricData` with `Average` and `SampleCount` from
//! statistic sets, but not percentiles (a `p99` stat is an HTTP 500), so the
//! built-in latency check reads averages and sample counts only.

use crate::support::{Turn, exe, shared};
use sluice_test_support::aws::{
    self as testing, AlbFixture, Moto, create_alb, put_alb_minute, put_alb_response_times, step_env, this_minute,
};
use std::process::{Command, Output};

/// Runs step `name` on environment dev with the record `r.json` in `dir`,
/// against the AWS API at `endpoint` (moto, or a proxy in front of it).
fn step_in(dir: &std::path::Path, endpoint: &str, name: &str, args: &[&str]) -> Output {
    command_in(dir, endpoint, name, args).output().expect("step runs")
}

/// The command [`step_in`] runs.
fn command_in(dir: &std::path::Path, endpoint: &str, name: &str, args: &[&str]) -> Command {
    let mut command = Command::new(exe(name));
    command
        .current_dir(dir)
        .env_remove("GITHUB_ACTIONS")
        .env("GITHUB_OUTPUT", dir.join("outputs.txt"))
        .env("GITHUB_STEP_SUMMARY", dir.join("summary.md"))
        .env("CI", "true")
        .envs(step_env(endpoint))
        .args(["--config", "sluice.toml", "-e", "dev", "--record", "r.json"])
        .args(args);
    command
}

/// The record `r.json` in `dir`.
fn record_in(dir: &std::path::Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(dir.join("r.json")).expect("record")).expect("json")
}

struct Env {
    _turn: Turn,
    _moto: Moto,
    sdk: aws_config::SdkConfig,
    fx: AlbFixture,
    dir: tempfile::TempDir,
}

/// A canary of three 1 s stages on the ALB with no `[[check]]` at all.
async fn alb_env() -> Option<Env> {
    let turn = shared();
    let moto = testing::moto()?;
    let sdk = moto.sdk_config().await;
    let fx = create_alb(&moto.endpoint, &sdk).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let config = format!(
        "app = \"shop\"\n[ledger]\nkind = \"file\"\npath = \"ledger.jsonl\"\n[analysis]\ninterval = \"200ms\"\n\
         [defaults]\nstrategy = {{ kind = \"canary\", stages = [10, 50, 100], stage_duration = \"1s\" }}\n\
         [[environment]]\nname = \"dev\"\n\
         router = {{ kind = \"alb\", listener_arn = \"{}\", stable_target_group = \"{}\", candidate_target_group = \"{}\" }}\n\
         [[environment.source]]\nkind = \"cloudwatch\"\nname = \"cw\"\nalb_traffic = true\nlookback = \"4m\"\ndelay = \"0s\"\n",
        fx.listener, fx.blue, fx.green
    );
    std::fs::write(dir.path().join("sluice.toml"), config).expect("config");
    Some(Env { _turn: turn, _moto: moto, sdk, fx, dir })
}

impl Env {
    fn step(&self, name: &str, args: &[&str]) -> Output {
        step_in(self.dir.path(), &self._moto.endpoint, name, args)
    }

    fn record(&self) -> serde_json::Value {
        record_in(self.dir.path())
    }

    fn summary(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("summary.md")).unwrap_or_default()
    }

    /// Publishes minutes around now, so every stage's look-back (4 minutes,
    /// no delay) finds at least 3 of them however the test falls on the
    /// clock: 600 requests a minute on green (the candidate) at
    /// `candidate_seconds` each on average, 5,400 on blue at 50 ms.
    async fn publish(&self, candidate_seconds: f64) {
        let dims = self.fx.dims();
        for offset in -4..=2 {
            let minute = this_minute() + offset * 60;
            put_alb_minute(&self.sdk, &dims.load_balancer, &dims.candidate, minute, 600.0, 0.0).await;
            put_alb_minute(&self.sdk, &dims.load_balancer, &dims.stable, minute, 5400.0, 5.0).await;
            put_alb_response_times(&self.sdk, &dims.load_balancer, &dims.candidate, minute, 600.0, candidate_seconds)
                .await;
            put_alb_response_times(&self.sdk, &dims.load_balancer, &dims.stable, minute, 5400.0, 0.050).await;
        }
    }
}

fn text(out: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

fn ok(out: &Output, what: &str) {
    assert_eq!(out.status.code(), Some(0), "{what}: {}", text(out));
}

const BUILTIN: [&str; 3] = ["builtin-error-rate", "builtin-error-rate-vs-stable", "builtin-alb-latency-vs-stable"];

#[tokio::test(flavor = "multi_thread")]
async fn an_alb_candidate_200_ms_slower_than_stable_fails_the_builtin_checks() {
    let Some(env) = alb_env().await else { return };
    env.publish(0.250).await;
    ok(&env.step("gate", &["--release", "v2", "--commit", "abcdef1"]), "gate");
    let shift = env.step("shift-traffic", &[]);
    assert_eq!(shift.status.code(), Some(1), "rolled back: {}", text(&shift));
    let record = env.record();
    assert_eq!(record["status"], "rolled_back");
    let events = record["events"].as_array().expect("events");
    let verdict = events.iter().find(|e| e["type"] == "verdict").expect("a verdict");
    let report = &verdict["report"];
    assert_eq!(report["verdict"], "fail", "{report}");
    assert_eq!(report["decided_by"], "builtin-alb-latency-vs-stable", "{report}");
    let names: Vec<&str> =
        report["checks"].as_array().expect("checks").iter().filter_map(|c| c["name"].as_str()).collect();
    assert_eq!(names, BUILTIN, "judged by the ALB's built-in checks");
    let latency = &report["checks"][2];
    // 0.250 s against at most max(1.2 x 0.050, 0.050 + 0.010) = 0.060 s.
    let over = latency["observed"].as_f64().expect("a value");
    assert!((over - 0.19).abs() < 1e-6, "{latency}");
    let summary = env.summary();
    assert!(
        summary.contains("judged by sluice's built-in checks (builtin-error-rate, builtin-error-rate-vs-stable, builtin-alb-latency-vs-stable)"),
        "the summary names the built-in checks: {summary}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_healthy_alb_candidate_passes_the_builtin_checks_and_is_promoted() {
    let Some(env) = alb_env().await else { return };
    env.publish(0.052).await;
    ok(&env.step("gate", &["--release", "v2", "--commit", "abcdef1"]), "gate");
    ok(&env.step("shift-traffic", &[]), "shift-traffic");
    let record = env.record();
    let verdicts: Vec<&serde_json::Value> =
        record["events"].as_array().expect("events").iter().filter(|e| e["type"] == "verdict").collect();
    assert_eq!(verdicts.len(), 3, "three stages");
    for verdict in &verdicts {
        let report = &verdict["report"];
        assert_eq!(report["verdict"], "pass", "{report}");
        let latency = report["checks"].as_array().and_then(|c| c.iter().find(|c| c["name"] == BUILTIN[2]));
        if report["candidate_weight"] == 100 {
            // No stable traffic to compare with: skipped, as comparisons are.
            assert!(latency.is_none(), "{report}");
            let skipped = report["skipped"].as_array().expect("skipped");
            assert!(skipped.iter().any(|c| c["name"] == BUILTIN[2]), "{report}");
            continue;
        }
        let latency = latency.expect("the latency check judged");
        // 52 ms against 50 ms: within the 10 ms allowed, from data.
        let under = latency["observed"].as_f64().expect("judged on data, not passed for lack of it");
        assert!((under + 0.008).abs() < 1e-6, "{latency}");
    }
    assert!(env.summary().contains("builtin-alb-latency-vs-stable"), "{}", env.summary());
    ok(&env.step("verify-health", &["--duration", "1s"]), "verify-health");
    ok(&env.step("promote", &[]), "promote");
    assert_eq!(env.record()["status"], "promoted");
}

// CodeDeploy: moto keeps the application and group but not their alarm
// configuration (moto 5.2.5's CreateDeploymentGroup drops
// `alarmConfiguration`, and GetDeploymentGroup returns none). A rule on the
// fault proxy adds it to moto's GetDeploymentGroup answer in the shape of
// AWS's CodeDeploy API reference (`deploymentGroupInfo.alarmConfiguration`:
// `enabled`, `ignorePollAlarmFailure`, `alarms: [{name}]`,
// https://docs.aws.amazon.com/codedeploy/latest/APIReference/API_AlarmConfiguration.html).
// The alarms themselves are moto's CloudWatch alarms, set with
// SetAlarmState (moto evaluates none).

use sluice_test_support::aws::{
    CodeDeployFake, FaultProxy, Reply, Script, create_codedeploy, create_codedeploy_pair, forward_to,
};
use std::sync::{Arc, Mutex};

struct CdEnv {
    _turn: Turn,
    _moto: Moto,
    sdk: aws_config::SdkConfig,
    proxy: FaultProxy,
    fake: CodeDeployFake,
    dir: tempfile::TempDir,
    /// The alarms the deployment group watches, as GetDeploymentGroup says.
    alarms: Arc<Mutex<Vec<String>>>,
}

/// Which target group the production listener serves when the deployment
/// starts, for a deployment group with a blue/green pair.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Serves {
    Blue,
    Green,
    /// Both, as while a deployment shifts.
    Both,
}

impl CdEnv {
    async fn start() -> Option<CdEnv> {
        CdEnv::start_with(None).await.map(|(env, _)| env)
    }

    /// With `serves`, the deployment group `shop-ecs` has a blue/green
    /// target-group pair (the ALB fixture's blue and green) behind the
    /// fixture's listener, which forwards to that one.
    async fn start_with(serves: Option<Serves>) -> Option<(CdEnv, Option<AlbFixture>)> {
        CdEnv::start_scripted(serves, Script::succeeds()).await
    }

    /// [`CdEnv::start_with`], the fake moving deployments along `script`.
    async fn start_scripted(serves: Option<Serves>, script: Script) -> Option<(CdEnv, Option<AlbFixture>)> {
        let turn = shared();
        let moto = testing::moto()?;
        let sdk = moto.sdk_config().await;
        let mut fx = create_codedeploy(&sdk).await;
        let mut alb = None;
        if let Some(serves) = serves {
            let made = create_alb(&moto.endpoint, &sdk).await;
            fx = create_codedeploy_pair(&sdk, &made, "shop-ecs").await;
            match serves {
                Serves::Blue => {}
                Serves::Green => forward_to(&sdk, &made.listener, &[(&made.green, 1)]).await,
                Serves::Both => forward_to(&sdk, &made.listener, &[(&made.blue, 9), (&made.green, 1)]).await,
            }
            alb = Some(made);
        }
        let proxy = FaultProxy::start(&moto.endpoint);
        let fake = CodeDeployFake::install(&proxy, script);
        let alarms: Arc<Mutex<Vec<String>>> = Arc::default();
        let watched = Arc::clone(&alarms);
        proxy.add(Arc::new(move |call| {
            if call.operation != "GetDeploymentGroup" {
                return Reply::Forward;
            }
            let names = watched.lock().expect("alarms").clone();
            Reply::Rewrite(Box::new(move |body| {
                let mut answer: serde_json::Value = serde_json::from_str(&body).expect("moto's JSON");
                let alarms: Vec<serde_json::Value> = names.iter().map(|n| serde_json::json!({ "name": n })).collect();
                answer["deploymentGroupInfo"]["alarmConfiguration"] =
                    serde_json::json!({ "enabled": !alarms.is_empty(), "ignorePollAlarmFailure": false, "alarms": alarms });
                answer.to_string()
            }))
        }));
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("appspec.yaml"), "version: 0.0\nResources: []\n").expect("appspec");
        let config = format!(
            "app = \"shop\"\n[ledger]\nkind = \"file\"\npath = \"ledger.jsonl\"\n\
             [analysis]\ninterval = \"200ms\"\nmin_final_analysis = \"1s\"\n\
             [[environment]]\nname = \"dev\"\n\
             router = {{ kind = \"codedeploy\", application = \"{}\", deployment_group = \"{}\", appspec = \"appspec.yaml\", poll_interval = \"100ms\", timeout = \"30s\" }}\n",
            fx.application, fx.deployment_group
        );
        std::fs::write(dir.path().join("sluice.toml"), config).expect("config");
        Some((CdEnv { _turn: turn, _moto: moto, sdk, proxy, fake, dir, alarms }, alb))
    }

    fn step(&self, name: &str, args: &[&str]) -> Output {
        step_in(self.dir.path(), &self.proxy.endpoint, name, args)
    }

    fn record(&self) -> serde_json::Value {
        record_in(self.dir.path())
    }

    /// The group watches `name`, an alarm in moto in `state`.
    async fn alarm(&self, name: &str, state: aws_sdk_cloudwatch::types::StateValue) {
        use aws_sdk_cloudwatch::types::{ComparisonOperator, Statistic};
        let client = aws_sdk_cloudwatch::Client::new(&self.sdk);
        client
            .put_metric_alarm()
            .alarm_name(name)
            .namespace("AWS/ApplicationELB")
            .metric_name("HTTPCode_Target_5XX_Count")
            .statistic(Statistic::Sum)
            .period(60)
            .evaluation_periods(1)
            .threshold(10.0)
            .comparison_operator(ComparisonOperator::GreaterThanThreshold)
            .send()
            .await
            .expect("alarm");
        client.set_alarm_state().alarm_name(name).state_value(state).state_reason("test").send().await.expect("state");
        let mut alarms = self.alarms.lock().expect("alarms");
        if !alarms.iter().any(|a| a == name) {
            alarms.push(name.to_owned());
        }
    }
}

/// The latest verdict's report in the record.
fn last_report(env: &CdEnv) -> serde_json::Value {
    let record = env.record();
    let events = record["events"].as_array().expect("events");
    events.iter().rev().find(|e| e["type"] == "verdict").expect("a verdict")["report"].clone()
}

/// The deployment CodeDeploy ran, then verify-health on the group's alarms.
fn deployed(env: &CdEnv) -> Output {
    ok(&env.step("gate", &["--release", "v2", "--commit", "abcdef1"]), "gate");
    ok(&env.step("shift-traffic", &[]), "shift-traffic");
    env.step("verify-health", &["--duration", "1s"])
}

#[tokio::test(flavor = "multi_thread")]
async fn codedeploy_without_checks_is_judged_by_its_groups_alarms() {
    use aws_sdk_cloudwatch::types::StateValue;
    let Some(env) = CdEnv::start().await else { return };
    env.alarm("shop-dev-latency", StateValue::Ok).await;
    env.alarm("shop-dev-5xx", StateValue::Alarm).await;
    let verify = deployed(&env);
    assert_eq!(verify.status.code(), Some(1), "an alarm fires: {}", text(&verify));
    let report = last_report(&env);
    assert_eq!(report["verdict"], "fail", "{report}");
    assert_eq!(report["decided_by"], "builtin-codedeploy-alarms", "{report}");
    assert_eq!(report["checks"][0]["observed"], 1.0, "one of the two alarms fires: {report}");
    let summary = std::fs::read_to_string(env.dir.path().join("summary.md")).unwrap_or_default();
    assert!(
        summary.contains("judged by sluice's built-in checks (builtin-codedeploy-alarms)"),
        "the summary names the built-in check: {summary}"
    );
    assert!(env.proxy.count("DescribeAlarms") >= 1 && env.proxy.count("GetDeploymentGroup") >= 1);
    ok(&env.step("rollback", &["--reason", "the alarm fired"]), "rollback");
    drop(env); // moto's turn

    // Both alarms OK: passes, and promote accepts the verdict (judged again
    // under the same built-in check).
    let Some(env) = CdEnv::start().await else { return };
    env.alarm("shop-dev-latency", StateValue::Ok).await;
    env.alarm("shop-dev-5xx", StateValue::Ok).await;
    ok(&deployed(&env), "verify-health");
    let report = last_report(&env);
    assert_eq!(report["verdict"], "pass", "{report}");
    assert_eq!(report["checks"][0]["observed"], 0.0, "{report}");
    ok(&env.step("promote", &[]), "promote");
    assert_eq!(env.record()["status"], "promoted");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_codedeploy_group_without_alarms_and_no_checks_is_refused_saying_what_to_add() {
    let Some(env) = CdEnv::start().await else { return };
    ok(&env.step("gate", &["--release", "v2", "--commit", "abcdef1"]), "gate");
    ok(&env.step("shift-traffic", &[]), "shift-traffic");
    let before = env.record();
    let verify = env.step("verify-health", &["--duration", "1s"]);
    assert_eq!(verify.status.code(), Some(2), "{}", text(&verify));
    let message = text(&verify);
    for needed in [
        "deployment group shop/shop-dev watches no CloudWatch alarms",
        "--alarm-configuration 'enabled=true,alarms=[{name=ALARM_NAME}]'",
        "[[environment.check]]",
        "analysis = \"none\"",
    ] {
        assert!(message.contains(needed), "{needed:?} in: {message}");
    }
    assert_eq!(env.record(), before, "nothing written");
    assert_eq!(env.proxy.count("DescribeAlarms"), 0, "nothing judged");
}

// CodeDeploy with a blue/green target-group pair (ECS): moto keeps the
// group's `loadBalancerInfo` as given (`targetGroupPairInfoList[0]`:
// `targetGroups` by name and `prodTrafficRoute.listenerArns`, the shape of
// the CodeDeploy API reference's TargetGroupPairInfo,
// https://docs.aws.amazon.com/codedeploy/latest/APIReference/API_TargetGroupPairInfo.html),
// so nothing of it is injected; only the alarm configuration is, as above.
// The listener and target groups are moto's ELBv2 ones, and the target
// groups' traffic is published into moto's CloudWatch as the ALB would.

/// Publishes minutes around now for both target groups, so that the
/// built-in source's look-back (5 minutes, 1 minute behind the clock) holds
/// at least 3 of them however the test falls on the clock: 600 requests a
/// minute on each, with `blue_errors` and `green_errors` 5xx, at 50 ms.
async fn publish_pair(env: &CdEnv, alb: &AlbFixture, blue_errors: f64, green_errors: f64) {
    let dims = alb.dims(); // stable = blue, candidate = green
    for offset in -5..=2 {
        let minute = this_minute() + offset * 60;
        for (group, errors) in [(&dims.stable, blue_errors), (&dims.candidate, green_errors)] {
            put_alb_minute(&env.sdk, &dims.load_balancer, group, minute, 600.0, errors).await;
            put_alb_response_times(&env.sdk, &dims.load_balancer, group, minute, 600.0, 0.050).await;
        }
    }
}

const CD_BUILTIN: [&str; 4] = [
    "builtin-codedeploy-alarms",
    "builtin-error-rate",
    "builtin-error-rate-vs-stable",
    "builtin-alb-latency-vs-stable",
];

/// The names of a report's judged checks and of its skipped ones.
fn judged_and_skipped(report: &serde_json::Value) -> (Vec<String>, Vec<String>) {
    let names = |key: &str| -> Vec<String> {
        report[key]
            .as_array()
            .map_or(Vec::new(), |a| a.iter().filter_map(|c| c["name"].as_str()).map(str::to_owned).collect())
    };
    (names("checks"), names("skipped"))
}

#[tokio::test(flavor = "multi_thread")]
async fn codedeploy_with_a_target_group_pair_judges_the_replacement_with_the_alb_builtins() {
    use aws_sdk_cloudwatch::types::StateValue;
    let Some((env, Some(alb))) = CdEnv::start_with(Some(Serves::Blue)).await else { return };
    env.alarm("shop-dev-latency", StateValue::Ok).await;
    // Green, the replacement, fails 10% of its requests; blue none.
    publish_pair(&env, &alb, 0.0, 60.0).await;
    let verify = deployed(&env);
    assert_eq!(verify.status.code(), Some(1), "the replacement errs: {}", text(&verify));
    let record = env.record();
    let before = &record["router_before"];
    assert_eq!(before["listener"], alb.listener.as_str(), "{before}");
    assert_eq!(before["stable"], alb.blue.as_str(), "the listener served blue: {before}");
    assert_eq!(before["candidate"], alb.green.as_str(), "so green is the replacement: {before}");
    assert_eq!(before["alarms"], serde_json::json!(["shop-dev-latency"]), "{before}");
    let report = last_report(&env);
    assert_eq!(report["verdict"], "fail", "{report}");
    assert_eq!(report["decided_by"], "builtin-error-rate", "{report}");
    let (judged, skipped) = judged_and_skipped(&report);
    // At 100% (CodeDeploy finished the shift) the comparisons with stable
    // are skipped, as everywhere: the original serves no traffic then.
    assert_eq!(judged, CD_BUILTIN[..2], "{report}");
    assert_eq!(skipped, CD_BUILTIN[2..], "{report}");
    let errors = report["checks"][1]["observed"].as_f64().expect("an error rate");
    assert!((errors - 0.1).abs() < 1e-9, "green's 10%, not blue's 0%: {report}");
    let summary = std::fs::read_to_string(env.dir.path().join("summary.md")).unwrap_or_default();
    assert!(
        summary.contains(&format!("judged by sluice's built-in checks ({})", CD_BUILTIN.join(", "))),
        "the summary names the built-in checks: {summary}"
    );
    assert!(
        summary.contains(&format!(
            "sluice's built-in checks ({}) judge the replacement target group `{}` against the original `{}`, during CodeDeploy's shift",
            CD_BUILTIN.join(", "),
            alb.green,
            alb.blue
        )),
        "shift-traffic's summary names them and the groups: {summary}"
    );
    assert!(env.proxy.count("DescribeListeners") >= 1 && env.proxy.count("GetMetricData") >= 1);
    ok(&env.step("rollback", &["--reason", "the replacement errs"]), "rollback");
    drop((env, alb)); // moto's turn

    // Healthy: passes on data, and promote accepts the verdict, judged
    // again under the same built-in checks.
    let Some((env, Some(alb))) = CdEnv::start_with(Some(Serves::Blue)).await else { return };
    env.alarm("shop-dev-latency", StateValue::Ok).await;
    publish_pair(&env, &alb, 0.0, 0.0).await;
    ok(&deployed(&env), "verify-health");
    let report = last_report(&env);
    assert_eq!(report["verdict"], "pass", "{report}");
    assert_eq!(judged_and_skipped(&report).0, CD_BUILTIN[..2], "{report}");
    assert_eq!(report["checks"][1]["observed"], 0.0, "judged on data: {report}");
    ok(&env.step("promote", &[]), "promote");
    assert_eq!(env.record()["status"], "promoted");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_replacement_is_the_target_group_the_listener_does_not_serve() {
    use aws_sdk_cloudwatch::types::StateValue;
    // The listener serves green (an earlier deployment moved it there):
    // blue is the replacement. Green, the original, errs; blue does not.
    let Some((env, Some(alb))) = CdEnv::start_with(Some(Serves::Green)).await else { return };
    env.alarm("shop-dev-latency", StateValue::Ok).await;
    publish_pair(&env, &alb, 0.0, 60.0).await;
    ok(&deployed(&env), "verify-health judges blue, which is healthy");
    let record = env.record();
    let before = &record["router_before"];
    assert_eq!(before["stable"], alb.green.as_str(), "{before}");
    assert_eq!(before["candidate"], alb.blue.as_str(), "{before}");
    let report = last_report(&env);
    assert_eq!(report["verdict"], "pass", "{report}");
    assert_eq!(report["checks"][1]["observed"], 0.0, "blue's errors, not green's: {report}");
    ok(&env.step("rollback", &["--reason", "next case"]), "rollback");
    drop((env, alb));

    // The same, with blue (the replacement) failing 10%: fails.
    let Some((env, Some(alb))) = CdEnv::start_with(Some(Serves::Green)).await else { return };
    env.alarm("shop-dev-latency", StateValue::Ok).await;
    publish_pair(&env, &alb, 60.0, 0.0).await;
    let verify = deployed(&env);
    assert_eq!(verify.status.code(), Some(1), "{}", text(&verify));
    let report = last_report(&env);
    assert_eq!(report["decided_by"], "builtin-error-rate", "{report}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_codedeploy_group_without_a_pair_is_judged_by_its_alarms_and_the_summary_says_why() {
    use aws_sdk_cloudwatch::types::StateValue;
    let Some(env) = CdEnv::start().await else { return };
    env.alarm("shop-dev-5xx", StateValue::Ok).await;
    ok(&deployed(&env), "verify-health");
    assert!(env.record()["router_before"].get("listener").is_none(), "{}", env.record());
    let report = last_report(&env);
    assert_eq!(judged_and_skipped(&report).0, ["builtin-codedeploy-alarms"], "{report}");
    let summary = std::fs::read_to_string(env.dir.path().join("summary.md")).unwrap_or_default();
    assert!(
        summary.contains("The ALB checks (error rate, error rate and latency against stable) do not apply: the deployment group names no blue/green target-group pair"),
        "{summary}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_listener_serving_both_groups_of_the_pair_is_refused_before_a_deployment_starts() {
    use aws_sdk_cloudwatch::types::StateValue;
    let Some((env, Some(_alb))) = CdEnv::start_with(Some(Serves::Both)).await else { return };
    env.alarm("shop-dev-latency", StateValue::Ok).await;
    ok(&env.step("gate", &["--release", "v2", "--commit", "abcdef1"]), "gate");
    let shift = env.step("shift-traffic", &[]);
    assert_eq!(shift.status.code(), Some(2), "{}", text(&shift));
    let message = text(&shift);
    for needed in ["forwards to both target groups of the pair", "[[environment.check]]"] {
        assert!(message.contains(needed), "{needed:?} in: {message}");
    }
    assert_eq!(env.proxy.count("CreateDeployment"), 0, "no deployment created");
    let record = env.record();
    assert!(record["router_before"].get("listener").is_none(), "{record}");
    assert_eq!(record["candidate_weight"], 0, "{record}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_codedeploy_group_with_a_pair_and_no_alarms_is_judged_by_the_alb_builtins_alone() {
    let alone = &CD_BUILTIN[1..];
    let Some((env, Some(alb))) = CdEnv::start_with(Some(Serves::Blue)).await else { return };
    publish_pair(&env, &alb, 0.0, 60.0).await;
    let verify = deployed(&env);
    assert_eq!(verify.status.code(), Some(1), "the replacement errs: {}", text(&verify));
    assert!(env.record()["router_before"].get("alarms").is_none(), "no alarm watched: {}", env.record());
    let report = last_report(&env);
    assert_eq!(report["decided_by"], "builtin-error-rate", "{report}");
    let (judged, skipped) = judged_and_skipped(&report);
    assert_eq!(judged, alone[..1], "{report}");
    assert_eq!(skipped, alone[1..], "{report}");
    let summary = std::fs::read_to_string(env.dir.path().join("summary.md")).unwrap_or_default();
    assert!(summary.contains(&format!("judged by sluice's built-in checks ({})", alone.join(", "))), "{summary}");
    assert_eq!(env.proxy.count("DescribeAlarms"), 0, "no alarm to read");
    ok(&env.step("rollback", &["--reason", "the replacement errs"]), "rollback");
    drop((env, alb));

    let Some((env, Some(alb))) = CdEnv::start_with(Some(Serves::Blue)).await else { return };
    publish_pair(&env, &alb, 0.0, 0.0).await;
    ok(&deployed(&env), "verify-health");
    assert_eq!(last_report(&env)["verdict"], "pass");
    ok(&env.step("promote", &[]), "promote");
    assert_eq!(env.record()["status"], "promoted");
}

// CodeDeploy's shift judged while it happens: the fake keeps the deployment
// `InProgress` (moto never advances one, nor moves a listener), and the test
// plays CodeDeploy's traffic shifting itself, moving the production
// listener's forward weights with ModifyListener (an SDK client of its own),
// while the target groups' traffic is in moto's CloudWatch.

/// A step started in the background, its output in files beside the record.
struct Running {
    child: std::process::Child,
    dir: std::path::PathBuf,
}

impl Running {
    fn start(env: &CdEnv, name: &str) -> Running {
        let dir = env.dir.path().to_path_buf();
        let out = std::fs::File::create(dir.join("step.out")).expect("stdout file");
        let err = std::fs::File::create(dir.join("step.err")).expect("stderr file");
        let child = command_in(&dir, &env.proxy.endpoint, name, &[]).stdout(out).stderr(err).spawn().expect("spawn");
        Running { child, dir }
    }

    fn output(&self) -> String {
        let read = |f: &str| std::fs::read_to_string(self.dir.join(f)).unwrap_or_default();
        format!("{}{}", read("step.out"), read("step.err"))
    }

    /// Its exit code, waiting at most `limit`.
    async fn exit(&mut self, limit: std::time::Duration) -> Option<i32> {
        let deadline = std::time::Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                return status.code();
            }
            assert!(std::time::Instant::now() < deadline, "still running after {limit:?}: {}", self.output());
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    }

    /// Waits (at most `limit`) until `ready` holds, failing with the step's
    /// output if it exits first.
    async fn until(&mut self, what: &str, limit: std::time::Duration, mut ready: impl FnMut() -> bool) {
        let deadline = std::time::Instant::now() + limit;
        while !ready() {
            if let Some(status) = self.child.try_wait().expect("wait") {
                panic!("the step ended ({status}) before {what}: {}", self.output());
            }
            assert!(std::time::Instant::now() < deadline, "no {what} after {limit:?}: {}", self.output());
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The record's verdict events, read while a step may be writing it (the
/// record is replaced whole, never half-written).
fn verdicts_in(dir: &std::path::Path) -> Vec<serde_json::Value> {
    let Ok(bytes) = std::fs::read(dir.join("r.json")) else { return Vec::new() };
    let Ok(record) = serde_json::from_slice::<serde_json::Value>(&bytes) else { return Vec::new() };
    record["events"].as_array().map_or(Vec::new(), |e| e.iter().filter(|e| e["type"] == "verdict").cloned().collect())
}

/// Whether the record holds a verdict taken at `weight`.
fn judged_at(dir: &std::path::Path, weight: u64) -> bool {
    verdicts_in(dir).iter().any(|v| v["report"]["candidate_weight"] == weight)
}

/// The CodeDeploy environment with a blue/green pair (the listener serving
/// blue), a deployment that stays in progress until the test ends it, and
/// analysis windows of 3 s (the plan's stage duration): 15 intervals of
/// 200 ms, most of them in the same CloudWatch minute as the one before,
/// which bring the pool checks nothing new and must not count as missing
/// data (6 would end the window as `error`).
async fn shifting_env() -> Option<(CdEnv, AlbFixture)> {
    shifting_env_with("").await
}

/// [`shifting_env`] with `checks` (TOML) in the environment.
async fn shifting_env_with(checks: &str) -> Option<(CdEnv, AlbFixture)> {
    let (env, alb) = CdEnv::start_scripted(Some(Serves::Blue), Script::runs()).await?;
    let alb = alb.expect("a pair");
    let config = env.dir.path().join("sluice.toml");
    let mut text = std::fs::read_to_string(&config).expect("config");
    text = text.replace("timeout = \"30s\"", "timeout = \"120s\"");
    text.push_str(checks);
    text.push_str("[defaults]\nstrategy = { kind = \"canary\", stages = [10, 50, 100], stage_duration = \"3s\" }\n");
    std::fs::write(&config, text).expect("config");
    Some((env, alb))
}

/// Starts `shift-traffic` and waits until it created the deployment (the
/// listener still on blue), returning it running.
async fn started(env: &CdEnv) -> Running {
    ok(&env.step("gate", &["--release", "v2", "--commit", "abcdef1"]), "gate");
    let mut shift = Running::start(env, "shift-traffic");
    let limit = std::time::Duration::from_secs(60);
    shift.until("a deployment", limit, || env.proxy.count("CreateDeployment") >= 1).await;
    shift
}

/// The deployment id in the record.
fn deployment_id(env: &CdEnv) -> String {
    let record = env.record();
    let events = record["events"].as_array().expect("events");
    let id = events.iter().find(|e| e["type"] == "deployment").expect("a deployment event")["id"].as_str();
    id.expect("an id").to_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_replacement_failing_5_percent_at_codedeploys_10_percent_is_stopped_with_rollback() {
    use aws_sdk_cloudwatch::types::StateValue;
    let Some((env, alb)) = shifting_env().await else { return };
    env.alarm("shop-dev-latency", StateValue::Ok).await;
    // Green, the replacement, fails 5% of its requests (30 of 600 a
    // minute); blue none.
    publish_pair(&env, &alb, 0.0, 30.0).await;
    let mut shift = started(&env).await;
    // CodeDeploy's canary step: 10% on the replacement.
    forward_to(&env.sdk, &alb.listener, &[(&alb.blue, 90), (&alb.green, 10)]).await;
    let code = shift.exit(std::time::Duration::from_secs(90)).await;
    assert_eq!(code, Some(1), "declined: {}", shift.output());
    let id = deployment_id(&env);
    assert_eq!(
        env.fake.status(&id),
        Some(("Stopped".to_owned(), false, true)),
        "StopDeployment with autoRollbackEnabled: {}",
        shift.output()
    );
    assert_eq!(env.proxy.count("StopDeployment"), 1);
    let record = env.record();
    assert_eq!(record["status"], "rolled_back", "{record}");
    let verdicts = verdicts_in(env.dir.path());
    assert_eq!(verdicts.len(), 1, "{verdicts:?}");
    let verdict = &verdicts[0];
    assert_eq!(verdict["stage"], 0, "{verdict}");
    let report = &verdict["report"];
    assert_eq!(report["verdict"], "fail", "{report}");
    assert_eq!(report["candidate_weight"], 10, "judged at the listener's weight: {report}");
    let decided_by = report["decided_by"].as_str().expect("a deciding check");
    assert!(decided_by.starts_with("builtin-error-rate"), "{report}");
    let check = report["checks"].as_array().expect("checks").iter().find(|c| c["name"] == decided_by).expect("it");
    let observed = check["observed"].as_f64().expect("an error rate");
    assert!((observed - 0.05).abs() < 0.005, "green's 5% (against blue's 0%): {check}");
    let reason = report["reason"].as_str().expect("a reason");
    let events = record["events"].as_array().expect("events");
    let rollback = events.iter().find(|e| e["type"] == "rollback").expect("a rollback event");
    let said = rollback["reason"].as_str().expect("words");
    assert!(said.contains("stage 1 at 10% of CodeDeploy's shift") && said.contains(reason), "{said}");
    assert!(said.contains(&format!("deployment {id} stopped with rollback")), "{said}");
    let last = events.iter().rev().find(|e| e["type"] == "deployment").expect("its end");
    assert_eq!(last["status"], "Stopped", "{last}");
    let summary = std::fs::read_to_string(env.dir.path().join("summary.md")).unwrap_or_default();
    assert!(summary.contains("#### Stage 1: 10% (CodeDeploy's shift)"), "{summary}");
    assert!(summary.contains(decided_by) && summary.contains(reason), "{summary}");
    let ledger = std::fs::read_to_string(env.dir.path().join("ledger.jsonl")).expect("ledger");
    assert!(ledger.contains("\"rolled_back\""), "{ledger}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_healthy_replacement_passes_at_each_weight_of_codedeploys_shift_and_is_promoted() {
    use aws_sdk_cloudwatch::types::StateValue;
    let Some((env, alb)) = shifting_env().await else { return };
    env.alarm("shop-dev-latency", StateValue::Ok).await;
    publish_pair(&env, &alb, 0.0, 0.0).await;
    let mut shift = started(&env).await;
    let dir = env.dir.path().to_path_buf();
    let limit = std::time::Duration::from_secs(60);
    // CodeDeploy's linear steps: 10%, then 50%, each held until sluice has
    // judged it (a passing window never holds CodeDeploy up, so the test
    // waits for one), then all traffic, and the deployment succeeds.
    forward_to(&env.sdk, &alb.listener, &[(&alb.blue, 90), (&alb.green, 10)]).await;
    shift.until("a verdict at 10%", limit, || judged_at(&dir, 10)).await;
    forward_to(&env.sdk, &alb.listener, &[(&alb.blue, 50), (&alb.green, 50)]).await;
    shift.until("a verdict at 50%", limit, || judged_at(&dir, 50)).await;
    forward_to(&env.sdk, &alb.listener, &[(&alb.green, 1)]).await;
    env.fake.end(&deployment_id(&env), "Succeeded");
    let code = shift.exit(std::time::Duration::from_secs(90)).await;
    assert_eq!(code, Some(0), "{}", shift.output());
    assert_eq!(env.proxy.count("StopDeployment"), 0);
    let record = env.record();
    assert_eq!(record["status"], "verified", "{record}");
    assert_eq!(record["candidate_weight"], 100, "{record}");
    let verdicts = verdicts_in(&dir);
    let weights: Vec<u64> = verdicts.iter().filter_map(|v| v["report"]["candidate_weight"].as_u64()).collect();
    assert!(weights.contains(&10) && weights.contains(&50), "{weights:?}");
    assert!(weights.iter().all(|w| *w == 10 || *w == 50), "only CodeDeploy's intermediate weights: {weights:?}");
    for (i, verdict) in verdicts.iter().enumerate() {
        assert_eq!(verdict["stage"], i, "stages in order: {verdict}");
        let report = &verdict["report"];
        assert_eq!(report["verdict"], "pass", "{report}");
        let (judged, _) = judged_and_skipped(report);
        assert_eq!(judged, CD_BUILTIN, "every built-in check judged, the comparisons too: {report}");
        assert_eq!(report["checks"][1]["observed"], 0.0, "judged on data: {report}");
    }
    let summary = std::fs::read_to_string(dir.join("summary.md")).unwrap_or_default();
    assert!(summary.contains("#### Stage 1: 10% (CodeDeploy's shift)"), "{summary}");
    assert!(summary.contains("% (CodeDeploy's shift)") && summary.contains("succeeded"), "{summary}");
    // promote accepts the CodeDeploy deployment that succeeded after its
    // stages passed; verify-health judges at 100% as before.
    ok(&env.step("verify-health", &["--duration", "1s"]), "verify-health");
    ok(&env.step("promote", &[]), "promote");
    assert_eq!(env.record()["status"], "promoted");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_configs_own_checks_judge_during_codedeploys_shift_too() {
    // A check of the config (no built-ins, no alarms): the replacement's
    // error rate at most 2%, on the target groups' CloudWatch traffic.
    let checks = "[[environment.check]]\nname = \"errors\"\nkind = \"error_rate\"\nmax = 0.02\n";
    let Some((env, alb)) = shifting_env_with(checks).await else { return };
    publish_pair(&env, &alb, 0.0, 30.0).await;
    let mut shift = started(&env).await;
    forward_to(&env.sdk, &alb.listener, &[(&alb.blue, 80), (&alb.green, 20)]).await;
    let code = shift.exit(std::time::Duration::from_secs(90)).await;
    assert_eq!(code, Some(1), "declined: {}", shift.output());
    let id = deployment_id(&env);
    assert_eq!(env.fake.status(&id), Some(("Stopped".to_owned(), false, true)), "{}", shift.output());
    let record = env.record();
    assert_eq!(record["status"], "rolled_back", "{record}");
    assert_eq!(record["router_before"]["candidate"], alb.green.as_str(), "{record}");
    let verdicts = verdicts_in(env.dir.path());
    assert_eq!(verdicts.len(), 1, "{verdicts:?}");
    let report = &verdicts[0]["report"];
    assert_eq!((report["verdict"].as_str(), report["candidate_weight"].as_u64()), (Some("fail"), Some(20)), "{report}");
    assert_eq!(report["decided_by"], "errors", "{report}");
    assert_eq!(judged_and_skipped(report).0, ["errors"], "the config's check only: {report}");
    assert_eq!(env.proxy.count("DescribeAlarms"), 0, "no built-in alarms check");
}

/// A check that cannot gather its samples (a million requests) in any
/// window here: every window of it is inconclusive.
const UNDECIDABLE: &str =
    "[[environment.check]]\nname = \"errors\"\nkind = \"error_rate\"\nmax = 0.02\nmin_samples = 1000000\n";

#[tokio::test(flavor = "multi_thread")]
async fn an_inconclusive_window_that_ran_its_course_stops_the_deployment_one_cut_short_does_not() {
    // Windows of 3 s that CodeDeploy holds the weight through: inconclusive
    // at their end, as a stage would be: stopped with rollback, exit 1.
    let Some((env, alb)) = shifting_env_with(UNDECIDABLE).await else { return };
    publish_pair(&env, &alb, 0.0, 0.0).await;
    let mut shift = started(&env).await;
    forward_to(&env.sdk, &alb.listener, &[(&alb.blue, 90), (&alb.green, 10)]).await;
    assert_eq!(shift.exit(std::time::Duration::from_secs(90)).await, Some(1), "{}", shift.output());
    assert_eq!(env.fake.status(&deployment_id(&env)), Some(("Stopped".to_owned(), false, true)));
    let verdicts = verdicts_in(env.dir.path());
    assert_eq!(verdicts.len(), 1, "{verdicts:?}");
    assert_eq!(verdicts[0]["report"]["verdict"], "inconclusive", "{verdicts:?}");
    assert_eq!(env.record()["status"], "rolled_back");
    drop((shift, env, alb));

    // Windows of 10 minutes that CodeDeploy cuts short by stepping to 100%:
    // inconclusive, recorded, and CodeDeploy goes on.
    let Some((env, alb)) = shifting_env_with(UNDECIDABLE).await else { return };
    publish_pair(&env, &alb, 0.0, 0.0).await;
    let report = cut_short_at_10_percent(&env, &alb).await;
    assert_eq!((report["verdict"].as_str(), report["candidate_weight"].as_u64()), (Some("inconclusive"), Some(10)));
    let summary = std::fs::read_to_string(env.dir.path().join("summary.md")).unwrap_or_default();
    assert!(
        // Whichever CodeDeploy's poll or the listener's showed first.
        ["CodeDeploy moved the listener to 100%", "the deployment ended"]
            .iter()
            .any(|why| summary.contains(&format!("Inconclusive when {why}, before the window's end"))),
        "{summary}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_window_cut_short_before_cloudwatch_had_the_replacements_minutes_does_not_stop_the_deployment() {
    use aws_sdk_cloudwatch::types::StateValue;
    // CloudWatch has blue's minutes but none of green's yet (it publishes
    // a minute about a minute late): the built-in checks have no candidate
    // data, an error for lack of it, when CodeDeploy steps on after the
    // first interval of a 10-minute window. Not held against the release.
    let Some((env, alb)) = shifting_env().await else { return };
    env.alarm("shop-dev-latency", StateValue::Ok).await;
    let dims = alb.dims();
    for offset in -5..=2 {
        let minute = this_minute() + offset * 60;
        put_alb_minute(&env.sdk, &dims.load_balancer, &dims.stable, minute, 600.0, 0.0).await;
        put_alb_response_times(&env.sdk, &dims.load_balancer, &dims.stable, minute, 600.0, 0.050).await;
    }
    let report = cut_short_at_10_percent(&env, &alb).await;
    assert!(matches!(report["verdict"].as_str(), Some("error" | "inconclusive")), "{report}");
    assert_eq!(report["candidate_weight"], 10, "{report}");
}

/// With windows of 10 minutes: starts `shift-traffic`, lets CodeDeploy
/// move the listener to 10% on the replacement until the window there has
/// observed an interval (the live view is written every interval), then
/// shifts everything and succeeds, cutting that window short. Asserts that
/// the deployment was followed to its end without a stop (exit 0, the
/// record verified) and returns the one verdict's report.
async fn cut_short_at_10_percent(env: &CdEnv, alb: &AlbFixture) -> serde_json::Value {
    let config = env.dir.path().join("sluice.toml");
    let text = std::fs::read_to_string(&config)
        .expect("config")
        .replace("stage_duration = \"3s\"", "stage_duration = \"10m\"");
    std::fs::write(&config, text).expect("config");
    let mut shift = started(env).await;
    forward_to(&env.sdk, &alb.listener, &[(&alb.blue, 90), (&alb.green, 10)]).await;
    let live = env.dir.path().join("r.json.live");
    shift.until("an interval at 10%", std::time::Duration::from_secs(60), || live.exists()).await;
    forward_to(&env.sdk, &alb.listener, &[(&alb.green, 1)]).await;
    env.fake.end(&deployment_id(env), "Succeeded");
    assert_eq!(shift.exit(std::time::Duration::from_secs(90)).await, Some(0), "{}", shift.output());
    assert_eq!(env.proxy.count("StopDeployment"), 0);
    assert_eq!(env.record()["status"], "verified");
    let verdicts = verdicts_in(env.dir.path());
    assert_eq!(verdicts.len(), 1, "{verdicts:?}");
    verdicts[0]["report"].clone()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_listener_that_cannot_be_read_during_the_shift_stops_the_deployment_exit_3() {
    use aws_sdk_cloudwatch::types::StateValue;
    let Some((env, alb)) = shifting_env().await else { return };
    env.alarm("shop-dev-latency", StateValue::Ok).await;
    publish_pair(&env, &alb, 0.0, 0.0).await;
    let mut shift = started(&env).await;
    // The ELB API goes down once the deployment runs: every retry fails.
    env.proxy.server_error("DescribeListeners", 1_000_000, 503);
    assert_eq!(shift.exit(std::time::Duration::from_secs(90)).await, Some(3), "{}", shift.output());
    let id = deployment_id(&env);
    assert_eq!(env.fake.status(&id), Some(("Stopped".to_owned(), false, true)), "not left unjudged");
    let record = env.record();
    assert_eq!(record["status"], "rolled_back", "{record}");
    let events = record["events"].as_array().expect("events");
    let rollback = events.iter().find(|e| e["type"] == "rollback").expect("a rollback event");
    let said = rollback["reason"].as_str().expect("words");
    assert!(said.contains("a provider failed while judging CodeDeploy's shift"), "{said}");
    assert!(said.contains("DescribeListeners") || said.contains("listener"), "names what failed: {said}");
}
