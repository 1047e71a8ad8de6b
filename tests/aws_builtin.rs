//! The AWS routers' built-in checks on moto: an ALB environment whose
//! config names no checks, only a CloudWatch source that reads the target
//! groups (`alb_traffic = true`), is judged by sluice's built-in error-rate
//! and latency checks from the target groups' CloudWatch metrics, which the
//! test publishes the way the ALB would (`RequestCount`,
//! `HTTPCode_Target_5XX_Count`, and `TargetResponseTime` as per-minute
//! statistic sets). A CodeDeploy environment is judged by its deployment
//! group's CloudWatch alarms.
//!
//! moto 5.2.5 answers `GetMetricData` with `Average` and `SampleCount` from
//! statistic sets, but not percentiles (a `p99` stat is an HTTP 500), so the
//! built-in latency check reads averages and sample counts only.

use crate::support::{Turn, exe, shared};
use sluice_test_support::aws::{
    self as testing, AlbFixture, Moto, create_alb, put_alb_minute, put_alb_response_times, step_env, this_minute,
};
use std::process::{Command, Output};

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
        Command::new(exe(name))
            .current_dir(self.dir.path())
            .env_remove("GITHUB_ACTIONS")
            .env("GITHUB_OUTPUT", self.dir.path().join("outputs.txt"))
            .env("GITHUB_STEP_SUMMARY", self.dir.path().join("summary.md"))
            .env("CI", "true")
            .envs(step_env(&self._moto.endpoint))
            .args(["--config", "sluice.toml", "-e", "dev", "--record", "r.json"])
            .args(args)
            .output()
            .expect("step runs")
    }

    fn record(&self) -> serde_json::Value {
        serde_json::from_slice(&std::fs::read(self.dir.path().join("r.json")).expect("record")).expect("json")
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
