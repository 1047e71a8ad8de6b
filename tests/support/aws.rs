//! The moto worlds the AWS tests share: how a step is run against moto (or
//! a proxy in front of it), one ALB in moto's default account with its
//! config directory ([`AlbWorld`]), and one environment of ALB targets,
//! each in its own region or account, promoted in waves ([`AlbTargets`]).
//!
//! Every world takes the machine's turn before moto's (never the other way
//! round) and is `None` where moto is missing outside CI, as
//! `sluice_test_support::aws::moto` says.

use super::{Turn, exe, shared};
use serde_json::Value;
use sluice_test_support::aws::{self as testing, AlbFixture, Moto, create_alb, create_named_alb, forward_weights};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The built binary `name` run in `dir` as a CI job would run a step,
/// every AWS call sent to `endpoint` with the test credentials
/// (`step_env`), its GitHub outputs and summary written to files in `dir`;
/// the caller adds the arguments.
pub fn aws_command(dir: &Path, endpoint: &str, name: &str) -> Command {
    let mut cmd = Command::new(exe(name));
    cmd.current_dir(dir)
        .env_remove("GITHUB_ACTIONS")
        .env("GITHUB_OUTPUT", dir.join("outputs.txt"))
        .env("GITHUB_STEP_SUMMARY", dir.join("summary.md"))
        .env("CI", "true")
        .envs(testing::step_env(endpoint));
    cmd
}

/// The record `name` in `dir`, as JSON.
pub fn record_at(dir: &Path, name: &str) -> Value {
    serde_json::from_slice(&std::fs::read(dir.join(name)).expect("record")).expect("record json")
}

/// One ALB (blue stable, green candidate) in moto's default account, a
/// client of the test's own there, and a directory for the config and
/// what the steps write.
pub struct AlbWorld {
    _turn: Turn,
    pub moto: Moto,
    pub sdk: aws_config::SdkConfig,
    pub fx: AlbFixture,
    pub dir: tempfile::TempDir,
}

impl AlbWorld {
    pub async fn start() -> Option<AlbWorld> {
        let turn = shared();
        let moto = testing::moto()?;
        let sdk = moto.sdk_config().await;
        let fx = create_alb(&moto.endpoint, &sdk).await;
        Some(AlbWorld { _turn: turn, moto, sdk, fx, dir: tempfile::tempdir().expect("tempdir") })
    }

    /// An `alb` router of this ALB, as a config value.
    pub fn router(&self) -> String {
        format!(
            "{{ kind = \"alb\", listener_arn = \"{}\", stable_target_group = \"{}\", candidate_target_group = \"{}\" }}",
            self.fx.listener, self.fx.blue, self.fx.green
        )
    }

    /// Writes `sluice.toml`.
    pub fn write_config(&self, text: &str) {
        std::fs::write(self.path("sluice.toml"), text).expect("config");
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// The listener's weights, read by the test's own client.
    pub async fn weights(&self) -> Vec<(String, i32)> {
        forward_weights(&self.sdk, &self.fx.listener, None).await
    }
}

/// One target of [`AlbTargets`].
pub struct AlbTarget {
    /// The target's name in the config.
    pub name: &'static str,
    /// The region or account its ALB is in.
    pub home: &'static str,
    /// A client config of the test's own there.
    pub sdk: aws_config::SdkConfig,
    pub fx: AlbFixture,
}

/// One environment, `prd`, of ALB targets on one moto server, each ALB
/// made in its own region or account by a client of the test's own there,
/// one target a wave in the order given; the steps run with the job's own
/// credentials.
pub struct AlbTargets {
    pub targets: Vec<AlbTarget>,
    pub dir: tempfile::TempDir,
    /// `SLUICE_WAVES_WEBHOOK` for the steps (empty: no `[notify]`).
    pub webhook: String,
}

impl AlbTargets {
    /// Makes an ALB (`shop`, groups `blue` and `green`) for each target,
    /// given as its name, its home (the region or account) and the test's
    /// client config there.
    pub async fn new(moto: &str, targets: Vec<(&'static str, &'static str, aws_config::SdkConfig)>) -> AlbTargets {
        let mut made = Vec::new();
        for (name, home, sdk) in targets {
            let fx = create_named_alb(moto, &sdk, ["shop", "blue", "green"]).await;
            assert!(fx.listener.contains(&format!(":{home}:")), "{home}: {}", fx.listener);
            made.push(AlbTarget { name, home, sdk, fx });
        }
        AlbTargets { targets: made, dir: tempfile::tempdir().expect("tempdir"), webhook: String::new() }
    }

    /// Writes the config: `defaults` as the `[defaults]` keys (and the
    /// tables after it up to the environment), and for each target its
    /// router with the keys `router(target)` adds (`, region = ...`), then
    /// what `after(target)` adds after the router (its sources).
    pub fn write_config(
        &self,
        defaults: &str,
        router: impl Fn(&AlbTarget) -> String,
        after: impl Fn(&AlbTarget) -> String,
    ) {
        let waves: Vec<String> = self.targets.iter().map(|t| format!("[\"{}\"]", t.name)).collect();
        let mut config = format!(
            "app = \"shop\"\n[ledger]\nkind = \"file\"\npath = \"ledger.jsonl\"\n[analysis]\ninterval = \"200ms\"\n\
             [defaults]\n{defaults}\
             [[environment]]\nname = \"prd\"\nwaves = [{}]\n",
            waves.join(", ")
        );
        for t in &self.targets {
            config.push_str(&format!(
                "[[environment.target]]\nname = \"{}\"\nrouter = {{ kind = \"alb\", listener_arn = \"{}\", \
                 stable_target_group = \"{}\", candidate_target_group = \"{}\"{} }}\n{}",
                t.name,
                t.fx.listener,
                t.fx.blue,
                t.fx.green,
                router(t),
                after(t)
            ));
        }
        std::fs::write(self.dir.path().join("sluice.toml"), config).expect("config");
    }

    /// `sluice ARGS` on prd with the record `prd.json`, every AWS call sent
    /// to `endpoint` (moto, or a proxy in front of it).
    pub fn step(&self, endpoint: &str, args: &[&str]) -> Output {
        aws_command(self.dir.path(), endpoint, "sluice")
            .env("SLUICE_WAVES_WEBHOOK", &self.webhook)
            .args(args)
            .args(["--config", "sluice.toml", "-e", "prd", "--record", "prd.json"])
            .output()
            .expect("the step runs")
    }

    /// Each target's listener weights, read by the test's own client where
    /// its ALB is, straight from moto.
    pub async fn weights(&self) -> Vec<Vec<(String, i32)>> {
        let mut all = Vec::new();
        for t in &self.targets {
            all.push(forward_weights(&t.sdk, &t.fx.listener, None).await);
        }
        all
    }

    /// Every listener forwarding only to its blue group, as created.
    pub fn as_created(&self) -> Vec<Vec<(String, i32)>> {
        self.targets.iter().map(|t| vec![(t.fx.blue.clone(), 1)]).collect()
    }

    /// Every listener all on its green group.
    pub fn all_green(&self) -> Vec<Vec<(String, i32)>> {
        self.targets.iter().map(|t| vec![(t.fx.blue.clone(), 0), (t.fx.green.clone(), 100)]).collect()
    }

    pub fn record(&self) -> Value {
        record_at(self.dir.path(), "prd.json")
    }

    /// Puts ALB traffic into CloudWatch where each target's ALB is (with
    /// the test's own client there), the minutes around now so every
    /// stage's look-back finds some however the test falls on the clock:
    /// `candidate_errors(target)` of 500 candidate requests a minute, 5 of
    /// 5,000 stable ones.
    pub async fn put_alb_traffic(&self, candidate_errors: impl Fn(&AlbTarget) -> f64) {
        use sluice_test_support::aws::{put_alb_minute, this_minute};
        for t in &self.targets {
            let dims = t.fx.dims();
            for offset in -2..=3 {
                let minute = this_minute() + offset * 60;
                put_alb_minute(&t.sdk, &dims.load_balancer, &dims.candidate, minute, 500.0, candidate_errors(t)).await;
                put_alb_minute(&t.sdk, &dims.load_balancer, &dims.stable, minute, 5000.0, 5.0).await;
            }
        }
    }

    /// Two targets judged each on its own CloudWatch metrics (an
    /// `errors` check), the first's healthy and the second's candidate
    /// failing (100 errors a minute, from [`put_alb_traffic`](Self::put_alb_traffic)):
    /// `gate` and `shift-traffic` (exit 1); both stages of the first wave
    /// pass on the first target's traffic, the second's first stage fails
    /// on its own errors, and both listeners are put back exactly.
    pub async fn assert_second_target_fails_on_its_own_metrics(&self, endpoint: &str) {
        let [first, second] = [&self.targets[0].name, &self.targets[1].name];
        let gate = self.step(endpoint, &["gate", "--release", "v2", "--commit", "abcdef1"]);
        assert_eq!(gate.status.code(), Some(0), "gate: {}", super::stderr(&gate));
        let shift = self.step(endpoint, &["shift-traffic"]);
        assert_eq!(shift.status.code(), Some(1), "rolled back: {}", super::stderr(&shift));
        assert_eq!(self.weights().await, self.as_created(), "every listener exactly as before");
        let record = self.record();
        assert_eq!(record["status"], "rolled_back", "{record}");
        let events = |kind: &str, target: &str| -> Vec<&Value> {
            let events = record["events"].as_array().expect("events").iter();
            events.filter(|e| e["type"] == kind && e["target"] == target).collect()
        };
        let passed = events("verdict", first);
        assert_eq!(passed.len(), 2, "both stages of the first wave judged: {record}");
        for verdict in &passed {
            assert_eq!(verdict["report"]["verdict"], "pass", "{verdict}");
            let interval = &verdict["report"]["intervals"][0];
            assert!(interval["candidate"]["requests"].as_u64().is_some_and(|r| r >= 500), "{interval}");
            assert_eq!(interval["candidate"]["errors"], 0, "{first}'s own metrics: {interval}");
        }
        let failed = events("verdict", second);
        let last = failed.last().unwrap_or_else(|| panic!("{second} judged: {record}"));
        assert_eq!(last["report"]["verdict"], "fail", "{last}");
        let interval = &last["report"]["intervals"][0];
        assert!(
            interval["candidate"]["errors"].as_u64().is_some_and(|e| e >= 100),
            "{second}'s own metrics: {interval}"
        );
        let traffic: Vec<u64> = events("traffic", second).iter().filter_map(|e| e["to"].as_u64()).collect();
        assert_eq!(traffic, vec![10], "stopped at its first stage");
        assert_eq!(events("rollback", first).len(), 1, "{record}");
        let rollback = events("rollback", second);
        assert_eq!(rollback.len(), 1, "{record}");
        let reason = rollback[0]["reason"].as_str().unwrap_or_default();
        assert!(reason.contains(&format!("target {second} in wave 2")) && reason.contains("errors"), "{reason}");
    }

    /// A canary of `stages` on every target, wave by wave, with every AWS
    /// call sent to `endpoint`: from the listeners as created, `gate` and
    /// `shift-traffic` succeed and leave them as
    /// [`assert_shifted_in_waves`](Self::assert_shifted_in_waves) says;
    /// then [`assert_status_then_rollback`](Self::assert_status_then_rollback).
    pub async fn assert_shifted_in_waves_and_back(&self, endpoint: &str, stages: &[u64]) {
        assert_eq!(self.weights().await, self.as_created());
        let gate = self.step(endpoint, &["gate", "--release", "v2", "--commit", "abcdef1"]);
        assert_eq!(gate.status.code(), Some(0), "gate: {}", super::stderr(&gate));
        let shift = self.step(endpoint, &["shift-traffic"]);
        assert_eq!(shift.status.code(), Some(0), "shift-traffic: {}", super::stderr(&shift));
        self.assert_shifted_in_waves(stages).await;
        self.assert_status_then_rollback(endpoint).await;
    }

    /// After `shift-traffic` of a canary `stages` through every wave: every
    /// listener all on green, read back where it is; the record verified,
    /// each target in its wave with its candidate, its listener as it was
    /// before, and a traffic event for every stage (each confirmed by its
    /// ALB); and each target moved only after the one before had finished.
    pub async fn assert_shifted_in_waves(&self, stages: &[u64]) {
        assert_eq!(self.weights().await, self.all_green(), "every listener at 100%, read back where it is");
        let record = self.record();
        assert_eq!(record["status"], "verified", "{record}");
        let traffic = |name: &str| -> Vec<&Value> {
            let events = record["events"].as_array().expect("events").iter();
            events.filter(|e| e["type"] == "traffic" && e["target"] == name).collect()
        };
        let mut finished: Option<(&str, String)> = None;
        for (i, t) in self.targets.iter().enumerate() {
            let rt = &record["targets"][i];
            assert_eq!(rt["name"], t.name);
            assert_eq!(rt["wave"], i);
            assert_eq!(rt["candidate"], t.fx.green.as_str());
            assert_eq!(rt["router_before"]["resource"], t.fx.listener.as_str(), "{rt}");
            let moved = traffic(t.name);
            let to: Vec<u64> = moved.iter().filter_map(|e| e["to"].as_u64()).collect();
            assert_eq!(to, stages, "{}: every stage confirmed by its ALB", t.name);
            let at = |e: &Value| e["at"].as_str().expect("at").to_owned();
            if let (Some((before, last)), Some(first)) = (&finished, moved.first()) {
                let first = at(first);
                assert!(*last <= first, "{} moved before {before} was done: {last} {first}", t.name);
            }
            finished = moved.last().map(|e| (t.name, at(e)));
        }
    }

    /// After a promotion to 100% everywhere: `sluice status` reads each
    /// target's ALB where it is (every target at 100%), then `rollback`
    /// puts every listener back exactly as created, read back where it is.
    pub async fn assert_status_then_rollback(&self, endpoint: &str) {
        let status = self.step(endpoint, &["status", "--json"]);
        assert_eq!(status.status.code(), Some(0), "status: {}", super::stderr(&status));
        let shown: Value = serde_json::from_slice(&status.stdout).expect("status json");
        for (i, t) in self.targets.iter().enumerate() {
            let live = &shown["environments"][0]["targets"][i];
            assert_eq!(live["name"], t.name, "{shown}");
            assert_eq!(live["router"]["candidate_weight"], 100, "{}: {shown}", t.name);
        }
        let rollback = self.step(endpoint, &["rollback", "--reason", "test"]);
        assert_eq!(rollback.status.code(), Some(0), "rollback: {}", super::stderr(&rollback));
        assert_eq!(self.weights().await, self.as_created(), "every listener exactly as before");
        assert_eq!(self.record()["status"], "rolled_back");
    }
}
