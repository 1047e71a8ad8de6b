//! Targets in other AWS accounts: ALBs in two accounts of one moto server,
//! each target's router (and CloudWatch source) assuming a role in its own
//! account (`role_arn`).
//!
//! moto accepts any role in `AssumeRole` and attributes the calls made
//! with the credentials it hands out to the role's account, whose resources
//! the default account (the job's own credentials, `step_env`) cannot see.
//! The fixtures are made, and every weight is read back, by the test's own
//! client in each account, with credentials it assumed itself.

use super::{binary, events, stderr};
use crate::support::shared;
use serde_json::Value;
use sluice_test_support::aws::{AlbFixture, REGION};
use std::process::{Command, Output};

const ACCOUNTS: [(&str, &str); 2] = [("shop-a", "111111111111"), ("shop-b", "222222222222")];

fn role(account: &str) -> String {
    format!("arn:aws:iam::{account}:role/deployer")
}

/// Two accounts, one ALB in each (in the same region, so only the account
/// keeps them apart), each the router of its own target.
struct TwoAccounts {
    /// Per account: the target's name, the account, the test's own SDK
    /// config in that account, and its ALB.
    accounts: Vec<(&'static str, &'static str, aws_config::SdkConfig, AlbFixture)>,
    dir: tempfile::TempDir,
}

impl TwoAccounts {
    async fn new(moto: &str) -> TwoAccounts {
        let mut accounts = Vec::new();
        for (name, account) in ACCOUNTS {
            let sdk = sluice_test_support::aws::assumed_sdk_config(moto, REGION, &role(account)).await;
            let fx = sluice_test_support::aws::create_named_alb(moto, &sdk, ["shop", "blue", "green"]).await;
            assert!(fx.listener.contains(&format!(":{account}:")), "{account}: {}", fx.listener);
            accounts.push((name, account, sdk, fx));
        }
        TwoAccounts { accounts, dir: tempfile::tempdir().expect("tempdir") }
    }

    /// Writes the config: `defaults` as the `[defaults]` keys, and for each
    /// target whether its router names its role, and what it adds after
    /// its router.
    fn write_config(&self, defaults: &str, with_role: impl Fn(&str) -> bool, target: impl Fn(&str, &str) -> String) {
        let mut config = format!(
            "app = \"shop\"\n[ledger]\nkind = \"file\"\npath = \"ledger.jsonl\"\n[analysis]\ninterval = \"200ms\"\n\
             [defaults]\n{defaults}\
             [[environment]]\nname = \"prd\"\nwaves = [[\"shop-a\"], [\"shop-b\"]]\n"
        );
        for (name, account, _, fx) in &self.accounts {
            let role = if with_role(name) { format!(", role_arn = \"{}\"", role(account)) } else { String::new() };
            config.push_str(&format!(
                "[[environment.target]]\nname = \"{name}\"\nrouter = {{ kind = \"alb\", listener_arn = \"{}\", \
                 stable_target_group = \"{}\", candidate_target_group = \"{}\"{role} }}\n{}",
                fx.listener,
                fx.blue,
                fx.green,
                target(name, account)
            ));
        }
        std::fs::write(self.dir.path().join("sluice.toml"), config).expect("config");
    }

    /// A step with the job's own (default account) credentials.
    fn step(&self, endpoint: &str, args: &[&str]) -> Output {
        Command::new(binary("sluice"))
            .current_dir(self.dir.path())
            .env_remove("GITHUB_ACTIONS")
            .env_remove("GITHUB_OUTPUT")
            .env("GITHUB_STEP_SUMMARY", self.dir.path().join("summary.md"))
            .env("CI", "true")
            .envs(sluice_test_support::aws::step_env(endpoint))
            .args(args)
            .args(["--config", "sluice.toml", "-e", "prd", "--record", "prd.json"])
            .output()
            .expect("the step runs")
    }

    /// Each account's listener weights, read by the test's own client in
    /// that account.
    async fn weights(&self) -> Vec<Vec<(String, i32)>> {
        let mut all = Vec::new();
        for (_, _, sdk, fx) in &self.accounts {
            all.push(sluice_test_support::aws::forward_weights(sdk, &fx.listener, None).await);
        }
        all
    }

    fn as_created(&self) -> Vec<Vec<(String, i32)>> {
        self.accounts.iter().map(|(_, _, _, fx)| vec![(fx.blue.clone(), 1)]).collect()
    }

    fn all_green(&self) -> Vec<Vec<(String, i32)>> {
        self.accounts.iter().map(|(_, _, _, fx)| vec![(fx.blue.clone(), 0), (fx.green.clone(), 100)]).collect()
    }

    fn record(&self) -> Value {
        serde_json::from_slice(&std::fs::read(self.dir.path().join("prd.json")).expect("record")).expect("json")
    }
}

const PLAN: &str =
    "strategy = { kind = \"canary\", stages = [50, 100], stage_duration = \"300ms\" }\nanalysis = \"none\"\n";

/// ALBs in two accounts, shifted in two waves, each target's router
/// assuming the role of its account; every weight read back per account,
/// then restored exactly. The default account sees neither ALB.
#[tokio::test(flavor = "multi_thread")]
async fn albs_in_two_accounts_are_shifted_in_two_waves_each_with_its_role() {
    let _turn = shared();
    let Some(moto) = sluice_test_support::aws::moto() else { return };
    let w = TwoAccounts::new(&moto.endpoint).await;
    // The job's own credentials cannot see either listener.
    let default = moto.sdk_config().await;
    for (_, _, _, fx) in &w.accounts {
        let seen = sluice_test_support::aws::sees_listener(&default, &fx.listener).await;
        assert!(!seen, "the default account must not see {}", fx.listener);
    }
    w.write_config(PLAN, |_| true, |_, _| String::new());
    assert_eq!(w.weights().await, w.as_created());
    let gate = w.step(&moto.endpoint, &["gate", "--release", "v2", "--commit", "abcdef1"]);
    assert_eq!(gate.status.code(), Some(0), "gate: {}", stderr(&gate));
    let shift = w.step(&moto.endpoint, &["shift-traffic"]);
    assert_eq!(shift.status.code(), Some(0), "shift-traffic: {}", stderr(&shift));
    assert_eq!(w.weights().await, w.all_green(), "both accounts at 100%, read back in each");
    let record = w.record();
    assert_eq!(record["status"], "verified", "{record}");
    for (i, (name, _, _, fx)) in w.accounts.iter().enumerate() {
        let t = &record["targets"][i];
        assert_eq!(t["name"], *name);
        assert_eq!(t["candidate"], fx.green.as_str());
        assert_eq!(t["router_before"]["resource"], fx.listener.as_str(), "{t}");
        let traffic: Vec<u64> = events(&record, "traffic", name).iter().filter_map(|e| e["to"].as_u64()).collect();
        assert_eq!(traffic, vec![50, 100], "{name}: every stage confirmed by its account's ALB");
    }
    let at = |e: &Value| e["at"].as_str().expect("at").to_owned();
    let a_last = at(events(&record, "traffic", "shop-a")[1]);
    let b_first = at(events(&record, "traffic", "shop-b")[0]);
    assert!(a_last <= b_first, "the second account moved after the first: {a_last} {b_first}");
    let status = w.step(&moto.endpoint, &["status", "--json"]);
    assert_eq!(status.status.code(), Some(0), "status: {}", stderr(&status));
    let shown: Value = serde_json::from_slice(&status.stdout).expect("status json");
    for (i, (name, ..)) in w.accounts.iter().enumerate() {
        let live = &shown["environments"][0]["targets"][i];
        assert_eq!(live["name"], *name, "{shown}");
        assert_eq!(live["router"]["candidate_weight"], 100, "{name}: {shown}");
    }
    let rollback = w.step(&moto.endpoint, &["rollback", "--reason", "test"]);
    assert_eq!(rollback.status.code(), Some(0), "rollback: {}", stderr(&rollback));
    assert_eq!(w.weights().await, w.as_created(), "each account exactly as before");
    assert_eq!(w.record()["status"], "rolled_back");
}

/// The same config without `role_arn` on the second target: its listener
/// is looked for in the job's own account, where it does not exist.
///
/// At `gate`, taking the listeners' leases fails on that target (exit 3,
/// naming it), nothing moves, and the lease already taken on the first
/// target's listener is given back: a `gate` with the roles right then
/// succeeds. Had the config lost the role between `gate` and
/// `shift-traffic`, the step stops before moving anything (renewing every
/// target's listener lease fails on that target first: exit 3, naming it);
/// both accounts read back exactly as before. (A role refused once the
/// first wave has moved: the next test.)
#[tokio::test(flavor = "multi_thread")]
async fn a_target_in_another_account_without_its_role_fails_and_moves_nothing_elsewhere() {
    let _turn = shared();
    let Some(moto) = sluice_test_support::aws::moto() else { return };
    let w = TwoAccounts::new(&moto.endpoint).await;
    let without_b = |name: &str| name != "shop-b";
    w.write_config(PLAN, without_b, |_, _| String::new());
    let gate = w.step(&moto.endpoint, &["gate", "--release", "v2", "--commit", "abcdef1"]);
    let err = stderr(&gate);
    assert_eq!(gate.status.code(), Some(3), "{err}");
    assert!(err.contains("target shop-b"), "names the target: {err}");
    assert!(err.contains("LoadBalancerNotFound"), "says what AWS answered: {err}");
    assert_eq!(w.weights().await, w.as_created(), "nothing moved");

    w.write_config(PLAN, |_| true, |_, _| String::new());
    let gate = w.step(&moto.endpoint, &["gate", "--release", "v2", "--commit", "abcdef1"]);
    assert_eq!(gate.status.code(), Some(0), "the first target's lease was given back: {}", stderr(&gate));
    w.write_config(PLAN, without_b, |_, _| String::new());
    let shift = w.step(&moto.endpoint, &["shift-traffic"]);
    let err = stderr(&shift);
    assert_eq!(shift.status.code(), Some(3), "{err}");
    assert!(err.contains("shop-b"), "names the target: {err}");
    assert!(err.contains("NotFound"), "says what AWS answered: {err}");
    assert_eq!(w.weights().await, w.as_created(), "both accounts exactly as before");
    let record = w.record();
    assert!(events(&record, "traffic", "shop-b").is_empty(), "nothing moved in shop-b's account: {record}");
    assert!(events(&record, "traffic", "shop-a").is_empty(), "nothing moved in shop-a's account: {record}");
}

/// A role that cannot be assumed: a proxy in front of moto answers STS
/// `AssumeRole` of the second account's role with `AccessDenied`, as STS
/// does when the role's trust policy does not name the job's role. `gate`
/// is a provider failure (exit 3) naming the target and the role, after
/// the SDK's retries; nothing moves, and once STS lets the job assume the
/// role, the deployment goes through both accounts.
#[tokio::test(flavor = "multi_thread")]
async fn a_role_that_cannot_be_assumed_is_a_provider_failure_naming_the_target_and_the_role() {
    use sluice_test_support::aws::{Call, FaultProxy, Reply, error_body};
    use std::sync::Arc;
    let _turn = shared();
    let Some(moto) = sluice_test_support::aws::moto() else { return };
    let w = TwoAccounts::new(&moto.endpoint).await;
    w.write_config(PLAN, |_| true, |_, _| String::new());
    let proxy = FaultProxy::start(&moto.endpoint);
    let denied = role("222222222222");
    let rule_role = denied.clone();
    proxy.add(Arc::new(move |call: &Call| {
        match call.operation == "AssumeRole" && call.param("RoleArn") == Some(&rule_role) {
            true => Reply::Respond {
                status: 403,
                body: error_body(
                    false,
                    "AccessDenied",
                    "User: arn:aws:sts::123456789012:assumed-role/ci/job is not authorized to perform: sts:AssumeRole",
                ),
            },
            false => Reply::Forward,
        }
    }));
    let gate = w.step(&proxy.endpoint, &["gate", "--release", "v2", "--commit", "abcdef1"]);
    let err = stderr(&gate);
    assert_eq!(gate.status.code(), Some(3), "{err}");
    assert!(err.contains("target shop-b"), "names the target: {err}");
    assert!(err.contains(&format!("assume role {denied}")), "names the role: {err}");
    assert!(err.contains("AccessDenied"), "says what STS answered: {err}");
    assert!(err.contains("sluice-shop-prd"), "names the session: {err}");
    assert_eq!(w.weights().await, w.as_created(), "nothing moved");

    proxy.clear();
    let gate = w.step(&proxy.endpoint, &["gate", "--release", "v2", "--commit", "abcdef1"]);
    assert_eq!(gate.status.code(), Some(0), "gate: {}", stderr(&gate));
    let shift = w.step(&proxy.endpoint, &["shift-traffic"]);
    assert_eq!(shift.status.code(), Some(0), "shift-traffic: {}", stderr(&shift));
    assert_eq!(w.weights().await, w.all_green());
    let assumed = proxy.count("AssumeRole");
    assert!(assumed >= 2, "each account's role was assumed through STS: {assumed}");
}

/// STS refusing the second account's role once the first wave has moved
/// (a trust policy changed mid-deployment): the deployment fails naming
/// the second target and its role, and the first wave's target is put back
/// at its exact previous weight, read back in its account; nothing moved
/// in the second.
#[tokio::test(flavor = "multi_thread")]
async fn a_role_refused_mid_deployment_puts_the_first_wave_back_exactly() {
    use sluice_test_support::aws::{Call, FaultProxy, Reply, error_body};
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    let _turn = shared();
    let Some(moto) = sluice_test_support::aws::moto() else { return };
    let w = TwoAccounts::new(&moto.endpoint).await;
    w.write_config(PLAN, |_| true, |_, _| String::new());
    let proxy = FaultProxy::start(&moto.endpoint);
    let denied = role("222222222222");
    let first_listener = w.accounts[0].3.listener.clone();
    let moved = Arc::new(AtomicBool::new(false));
    let seen = Arc::clone(&moved);
    proxy.add(Arc::new(move |call: &Call| {
        if call.operation == "ModifyListener" && call.param("ListenerArn") == Some(&first_listener) {
            seen.store(true, Ordering::SeqCst);
        }
        match seen.load(Ordering::SeqCst) && call.operation == "AssumeRole" && call.param("RoleArn") == Some(&denied) {
            true => Reply::Respond {
                status: 403,
                body: error_body(false, "AccessDenied", "not authorized to perform: sts:AssumeRole"),
            },
            false => Reply::Forward,
        }
    }));
    let gate = w.step(&proxy.endpoint, &["gate", "--release", "v2", "--commit", "abcdef1"]);
    assert_eq!(gate.status.code(), Some(0), "gate: {}", stderr(&gate));
    let shift = w.step(&proxy.endpoint, &["shift-traffic"]);
    let err = stderr(&shift);
    assert!(moved.load(Ordering::SeqCst), "the first wave moved: {err}");
    assert_eq!(shift.status.code(), Some(3), "{err}");
    assert!(err.contains("shop-b"), "names the target: {err}");
    assert!(err.contains("role/deployer"), "names the role: {err}");
    assert_eq!(w.weights().await, w.as_created(), "both accounts exactly as before");
    let record = w.record();
    let traffic: Vec<u64> = events(&record, "traffic", "shop-a").iter().filter_map(|e| e["to"].as_u64()).collect();
    // The first call the second target's router makes (during the first
    // wave's canary) is where its role is refused.
    assert_eq!(traffic.first(), Some(&50), "the first wave moved: {record}");
    assert_eq!(events(&record, "rollback", "shop-a").len(), 1, "{record}");
    assert!(events(&record, "traffic", "shop-b").is_empty(), "{record}");
}

/// What each target adds after its router: a CloudWatch source in its own
/// account, reading that account's ALB metrics with `role` of the account.
fn cloudwatch_in(role: impl Fn(&str) -> String) -> impl Fn(&str, &str) -> String {
    move |_, account| {
        format!(
            "[[environment.target.source]]\nkind = \"cloudwatch\"\nname = \"cw\"\nrole_arn = \"{}\"\n\
             alb_traffic = true\nlookback = \"2m\"\ndelay = \"0s\"\n",
            role(account)
        )
    }
}

const JUDGED: &str = "strategy = { kind = \"canary\", stages = [10, 100], stage_duration = \"1s\" }\n\
    [[defaults.check]]\nname = \"errors\"\nkind = \"error_rate\"\nmax = 0.02\nmin_samples = 50\ncritical = true\n";

impl TwoAccounts {
    /// Puts ALB traffic into each account's CloudWatch (with the test's
    /// own client in that account), the minutes around now so every
    /// stage's look-back finds some however the test falls on the clock:
    /// `candidate_errors(name)` of 500 candidate requests a minute, 5 of
    /// 5,000 stable ones.
    async fn put_traffic(&self, candidate_errors: impl Fn(&str) -> f64) {
        use sluice_test_support::aws::{put_alb_minute, this_minute};
        for (name, _, sdk, fx) in &self.accounts {
            let dims = fx.dims();
            for offset in -2..=3 {
                let minute = this_minute() + offset * 60;
                put_alb_minute(sdk, &dims.load_balancer, &dims.candidate, minute, 500.0, candidate_errors(name)).await;
                put_alb_minute(sdk, &dims.load_balancer, &dims.stable, minute, 5000.0, 5.0).await;
            }
        }
    }
}

/// Each target judged on the CloudWatch of its own account: a target-level
/// CloudWatch source with `role_arn`, the ALB metrics put into each
/// account's CloudWatch the way its ALB would, healthy in shop-a's, the
/// candidate failing a fifth of its requests in shop-b's. The job's own
/// account has no such metrics: read there, a stage would see no traffic
/// (inconclusive), not a pass or these errors. The first wave passes on
/// shop-a's metrics, the second fails on shop-b's, and both accounts are
/// put back exactly.
#[tokio::test(flavor = "multi_thread")]
async fn each_target_is_judged_on_cloudwatch_in_its_own_account_with_its_role() {
    let _turn = shared();
    let Some(moto) = sluice_test_support::aws::moto() else { return };
    let w = TwoAccounts::new(&moto.endpoint).await;
    w.write_config(JUDGED, |_| true, cloudwatch_in(role));
    w.put_traffic(|name| if name == "shop-b" { 100.0 } else { 0.0 }).await;
    let gate = w.step(&moto.endpoint, &["gate", "--release", "v2", "--commit", "abcdef1"]);
    assert_eq!(gate.status.code(), Some(0), "gate: {}", stderr(&gate));
    let shift = w.step(&moto.endpoint, &["shift-traffic"]);
    assert_eq!(shift.status.code(), Some(1), "rolled back: {}", stderr(&shift));
    assert_eq!(w.weights().await, w.as_created(), "both accounts exactly as before");
    let record = w.record();
    assert_eq!(record["status"], "rolled_back", "{record}");
    let a = events(&record, "verdict", "shop-a");
    assert_eq!(a.len(), 2, "both stages of the first wave judged: {record}");
    for verdict in &a {
        assert_eq!(verdict["report"]["verdict"], "pass", "{verdict}");
        let first = &verdict["report"]["intervals"][0];
        assert!(first["candidate"]["requests"].as_u64().is_some_and(|r| r >= 500), "shop-a's metrics: {first}");
        assert_eq!(first["candidate"]["errors"], 0, "shop-a's own metrics: {first}");
    }
    let b = events(&record, "verdict", "shop-b");
    let last = b.last().expect("shop-b judged");
    assert_eq!(last["report"]["verdict"], "fail", "{last}");
    let first = &last["report"]["intervals"][0];
    assert!(first["candidate"]["errors"].as_u64().is_some_and(|e| e >= 100), "shop-b's own metrics: {first}");
    let traffic: Vec<u64> = events(&record, "traffic", "shop-b").iter().filter_map(|e| e["to"].as_u64()).collect();
    assert_eq!(traffic, vec![10], "stopped at its first stage");
    assert_eq!(events(&record, "rollback", "shop-a").len(), 1, "{record}");
    assert_eq!(events(&record, "rollback", "shop-b").len(), 1, "{record}");
}

/// The role of shop-b's CloudWatch source (its own, not its router's)
/// refused by STS (`AccessDenied` from a proxy in front of moto, as STS
/// answers when the role's trust policy does not name the job's role): the
/// source is first called in shop-b's first stage, so shop-a's wave passes
/// and shop-b moves to 10%; that stage cannot be judged, and the
/// deployment is a provider failure (exit 3) naming the target, the role
/// and STS's answer, not a verdict on the release; every account is put
/// back exactly.
#[tokio::test(flavor = "multi_thread")]
async fn a_cloudwatch_source_whose_role_is_refused_is_a_provider_failure_naming_the_role() {
    use sluice_test_support::aws::{Call, FaultProxy, Reply, error_body};
    use std::sync::Arc;
    let _turn = shared();
    let Some(moto) = sluice_test_support::aws::moto() else { return };
    let w = TwoAccounts::new(&moto.endpoint).await;
    let metrics_role = |account: &str| format!("arn:aws:iam::{account}:role/metrics-reader");
    w.write_config(JUDGED, |_| true, cloudwatch_in(metrics_role));
    w.put_traffic(|_| 0.0).await;
    let proxy = FaultProxy::start(&moto.endpoint);
    let denied = metrics_role("222222222222");
    let rule_role = denied.clone();
    proxy.add(Arc::new(move |call: &Call| {
        match call.operation == "AssumeRole" && call.param("RoleArn") == Some(&rule_role) {
            true => Reply::Respond {
                status: 403,
                body: error_body(false, "AccessDenied", "not authorized to perform: sts:AssumeRole"),
            },
            false => Reply::Forward,
        }
    }));
    let gate = w.step(&proxy.endpoint, &["gate", "--release", "v2", "--commit", "abcdef1"]);
    assert_eq!(gate.status.code(), Some(0), "gate: {}", stderr(&gate));
    let shift = w.step(&proxy.endpoint, &["shift-traffic"]);
    let err = stderr(&shift);
    assert_eq!(shift.status.code(), Some(3), "{err}");
    assert!(err.contains("shop-b"), "names the target: {err}");
    assert!(err.contains(&format!("assume role {denied}")), "names the role: {err}");
    assert!(err.contains("AccessDenied"), "says what STS answered: {err}");
    assert_eq!(w.weights().await, w.as_created(), "both accounts exactly as before");
    assert!(err.contains("(session sluice-shop-prd)"), "names the session: {err}");
    let record = w.record();
    // shop-b's stage could not be judged (its metrics unread), which says
    // nothing of the release: an `error`, never a `fail`.
    let b = events(&record, "verdict", "shop-b");
    assert_eq!(b.len(), 1, "{record}");
    assert_eq!(b[0]["report"]["verdict"], "error", "{}", b[0]);
    let rollback = events(&record, "rollback", "shop-a");
    assert_eq!(rollback.len(), 1, "{record}");
    let reason = rollback[0]["reason"].as_str().unwrap_or_default();
    assert!(reason.starts_with("a provider failed") && reason.contains(&denied), "{reason}");
    assert_eq!(events(&record, "rollback", "shop-b").len(), 1, "{record}");
}
