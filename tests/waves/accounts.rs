//! Targets in other AWS accounts: ALBs in two accounts of one moto server,
//! each target's router (and CloudWatch source) assuming a role in its own
//! account (`role_arn`).
//!
//! moto accepts any role in `AssumeRole` and attributes the calls made
//! with the credentials it hands out to the role's account, whose resources
//! the default account (the job's own credentials, `step_env`) cannot see.
//! The fixtures are made, and every weight is read back, by the test's own
//! client in each account, with credentials it assumed itself.

use super::{JUDGED_CANARY, SHORT_PLAN, events, stderr};
use crate::support::aws::{AlbTarget, AlbTargets};
use crate::support::shared;
use sluice_test_support::aws::{Call, FaultProxy, REGION, Reply, Rule, error_body};
use std::sync::Arc;

const ACCOUNTS: [(&str, &str); 2] = [("shop-a", "111111111111"), ("shop-b", "222222222222")];

fn role(account: &str) -> String {
    format!("arn:aws:iam::{account}:role/deployer")
}

/// Two accounts, one ALB in each (in the same region, so only the account
/// keeps them apart), each the router of its own target; the test's own
/// client in each account has credentials it assumed itself.
async fn two_accounts(moto: &str) -> AlbTargets {
    let mut targets = Vec::new();
    for (name, account) in ACCOUNTS {
        targets.push((name, account, sluice_test_support::aws::assumed_sdk_config(moto, REGION, &role(account)).await));
    }
    AlbTargets::new(moto, targets).await
}

/// Writes the config: `defaults` as the `[defaults]` keys, and for each
/// target whether its router names its role (`with_role` of its name),
/// and what it adds after its router (`after` of its name and account).
fn write_config(
    w: &AlbTargets,
    defaults: &str,
    with_role: impl Fn(&str) -> bool,
    after: impl Fn(&str, &str) -> String,
) {
    let router = |t: &AlbTarget| match with_role(t.name) {
        true => format!(", role_arn = \"{}\"", role(t.home)),
        false => String::new(),
    };
    w.write_config(defaults, router, |t| after(t.name, t.home));
}

/// STS refusing `AssumeRole` of `denied` with `AccessDenied`, as it does
/// when the role's trust policy does not name the job's role; every other
/// call goes to moto.
fn sts_refuses(denied: String) -> Rule {
    Arc::new(move |call: &Call| match call.operation == "AssumeRole" && call.param("RoleArn") == Some(&denied) {
        true => Reply::Respond {
            status: 403,
            body: error_body(
                false,
                "AccessDenied",
                "User: arn:aws:sts::123456789012:assumed-role/ci/job is not authorized to perform: sts:AssumeRole",
            ),
        },
        false => Reply::Forward,
    })
}

/// ALBs in two accounts, shifted in two waves, each target's router
/// assuming the role of its account; every weight read back per account,
/// then restored exactly. The default account sees neither ALB.
#[tokio::test(flavor = "multi_thread")]
async fn albs_in_two_accounts_are_shifted_in_two_waves_each_with_its_role() {
    let _turn = shared();
    let Some(moto) = sluice_test_support::aws::moto() else { return };
    let w = two_accounts(&moto.endpoint).await;
    // The job's own credentials cannot see either listener.
    let default = moto.sdk_config().await;
    for t in &w.targets {
        let seen = sluice_test_support::aws::sees_listener(&default, &t.fx.listener).await;
        assert!(!seen, "the default account must not see {}", t.fx.listener);
    }
    write_config(&w, SHORT_PLAN, |_| true, |_, _| String::new());
    // `sluice status` too reads each account's ALB with its role.
    w.assert_shifted_in_waves_and_back(&moto.endpoint, &[50, 100]).await;
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
    let w = two_accounts(&moto.endpoint).await;
    let without_b = |name: &str| name != "shop-b";
    write_config(&w, SHORT_PLAN, without_b, |_, _| String::new());
    let gate = w.step(&moto.endpoint, &["gate", "--release", "v2", "--commit", "abcdef1"]);
    let err = stderr(&gate);
    assert_eq!(gate.status.code(), Some(3), "{err}");
    assert!(err.contains("target shop-b"), "names the target: {err}");
    assert!(err.contains("LoadBalancerNotFound"), "says what AWS answered: {err}");
    assert_eq!(w.weights().await, w.as_created(), "nothing moved");

    write_config(&w, SHORT_PLAN, |_| true, |_, _| String::new());
    let gate = w.step(&moto.endpoint, &["gate", "--release", "v2", "--commit", "abcdef1"]);
    assert_eq!(gate.status.code(), Some(0), "the first target's lease was given back: {}", stderr(&gate));
    write_config(&w, SHORT_PLAN, without_b, |_, _| String::new());
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
    let _turn = shared();
    let Some(moto) = sluice_test_support::aws::moto() else { return };
    let w = two_accounts(&moto.endpoint).await;
    write_config(&w, SHORT_PLAN, |_| true, |_, _| String::new());
    let proxy = FaultProxy::start(&moto.endpoint);
    let denied = role("222222222222");
    proxy.add(sts_refuses(denied.clone()));
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
    use std::sync::atomic::{AtomicBool, Ordering};
    let _turn = shared();
    let Some(moto) = sluice_test_support::aws::moto() else { return };
    let w = two_accounts(&moto.endpoint).await;
    write_config(&w, SHORT_PLAN, |_| true, |_, _| String::new());
    let proxy = FaultProxy::start(&moto.endpoint);
    let denied = role("222222222222");
    let first_listener = w.targets[0].fx.listener.clone();
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
    let w = two_accounts(&moto.endpoint).await;
    write_config(&w, JUDGED_CANARY, |_| true, cloudwatch_in(role));
    w.put_alb_traffic(|t| if t.name == "shop-b" { 100.0 } else { 0.0 }).await;
    w.assert_second_target_fails_on_its_own_metrics(&moto.endpoint).await;
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
    let _turn = shared();
    let Some(moto) = sluice_test_support::aws::moto() else { return };
    let w = two_accounts(&moto.endpoint).await;
    let metrics_role = |account: &str| format!("arn:aws:iam::{account}:role/metrics-reader");
    write_config(&w, JUDGED_CANARY, |_| true, cloudwatch_in(metrics_role));
    w.put_alb_traffic(|_| 0.0).await;
    let proxy = FaultProxy::start(&moto.endpoint);
    let denied = metrics_role("222222222222");
    proxy.add(sts_refuses(denied.clone()));
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
