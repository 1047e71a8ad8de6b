//! The ALB router against moto: real SDK calls, weights read back through
//! the SDK. Unhealthy targets, throttling and 5xx answers come from the fault
//! proxy in front of moto, since moto reports every target healthy and never
//! throttles.

use aws_sdk_elasticloadbalancingv2::types::{
    Action, ActionTypeEnum, ForwardActionConfig, TargetGroupStickinessConfig, TargetGroupTuple,
};
use sluice_core::record::Stickiness;
use sluice_providers::aws::Aws;
use sluice_providers::aws::alb::{AlbRouter, Resource};
use sluice_test_support::aws::{self as testing, FaultProxy, create_alb, forward_weights, sdk_config};
use std::time::Duration;

fn router(aws: Aws, resource: Resource, fx: &testing::AlbFixture) -> AlbRouter {
    AlbRouter::with_aws(aws, resource, &fx.blue, &fx.green)
}

fn weights(pairs: &[(&str, i32)]) -> Vec<(String, i32)> {
    pairs.iter().map(|(a, w)| ((*a).to_owned(), *w)).collect()
}

#[tokio::test]
async fn a_listener_shifts_promotes_and_restores_exactly() {
    let Some(moto) = testing::moto() else { return };
    let sdk = moto.sdk_config().await;
    let fx = create_alb(&moto.endpoint, &sdk).await;
    let alb = router(Aws::from_sdk_config(sdk.clone()), Resource::Listener(fx.listener.clone()), &fx);

    let before = alb.state().await.expect("state");
    assert_eq!(before.kind, "alb");
    assert_eq!(before.candidate_weight, 0);
    assert_eq!(before.stable.as_deref(), Some(fx.blue.as_str()));
    assert_eq!(before.candidate.as_deref(), Some(fx.green.as_str()));
    assert_eq!(before.resource.as_deref(), Some(fx.listener.as_str()));

    for weight in [10u8, 50, 100] {
        let state = alb.set_weight(weight).await.expect("set weight");
        assert_eq!(state.candidate_weight, weight);
        let read = forward_weights(&sdk, &fx.listener, None).await;
        assert_eq!(read, weights(&[(&fx.blue, i32::from(100 - weight)), (&fx.green, i32::from(weight))]));
    }

    let promoted = alb.promote().await.expect("promote");
    assert_eq!(promoted.stable.as_deref(), Some(fx.green.as_str()), "roles swap at promotion");
    assert_eq!(promoted.candidate.as_deref(), Some(fx.blue.as_str()));
    assert_eq!(promoted.candidate_weight, 0);
    // A second router (the next job) reads the same roles from the tag.
    let next_job = router(Aws::from_sdk_config(sdk.clone()), Resource::Listener(fx.listener.clone()), &fx);
    assert_eq!(next_job.state().await.expect("state").stable.as_deref(), Some(fx.green.as_str()));
    // Promoting again changes nothing.
    assert_eq!(alb.promote().await.expect("promote again"), promoted);

    // The next release goes to blue, now the candidate.
    let state = alb.set_weight(25).await.expect("canary on blue");
    assert_eq!(state.candidate_weight, 25);
    assert_eq!(forward_weights(&sdk, &fx.listener, None).await, weights(&[(&fx.green, 75), (&fx.blue, 25)]));

    // Restoring the state saved before the first deployment puts back the
    // single forward to blue and blue's stable role.
    let restored = alb.restore(&before).await.expect("restore");
    assert_eq!(restored.target_groups, before.target_groups);
    assert_eq!(restored.stable, before.stable);
    assert_eq!(forward_weights(&sdk, &fx.listener, None).await, weights(&[(&fx.blue, 1)]));
}

#[tokio::test]
async fn a_rule_keeps_its_stickiness_and_other_actions_alone() {
    let Some(moto) = testing::moto() else { return };
    let sdk = moto.sdk_config().await;
    let fx = create_alb(&moto.endpoint, &sdk).await;
    let elb = aws_sdk_elasticloadbalancingv2::Client::new(&sdk);
    let sticky = Action::builder()
        .r#type(ActionTypeEnum::Forward)
        .forward_config(
            ForwardActionConfig::builder()
                .target_groups(TargetGroupTuple::builder().target_group_arn(&fx.blue).weight(100).build())
                .target_groups(TargetGroupTuple::builder().target_group_arn(&fx.green).weight(0).build())
                .target_group_stickiness_config(
                    TargetGroupStickinessConfig::builder().enabled(true).duration_seconds(300).build(),
                )
                .build(),
        )
        .build();
    elb.modify_rule().rule_arn(&fx.rule).actions(sticky).send().await.expect("sticky rule");

    let alb = router(Aws::from_sdk_config(sdk.clone()), Resource::Rule(fx.rule.clone()), &fx);
    let before = alb.state().await.expect("state");
    let stickiness = Some(Stickiness { enabled: true, duration_seconds: Some(300) });
    assert_eq!(before.stickiness, stickiness);

    let state = alb.set_weight(30).await.expect("set weight");
    assert_eq!(state.stickiness, stickiness, "stickiness kept");
    assert_eq!(forward_weights(&sdk, &fx.listener, Some(&fx.rule)).await, weights(&[(&fx.blue, 70), (&fx.green, 30)]));
    // The listener's default action was not touched.
    assert_eq!(forward_weights(&sdk, &fx.listener, None).await, weights(&[(&fx.blue, 1)]));

    alb.restore(&before).await.expect("restore");
    assert_eq!(forward_weights(&sdk, &fx.listener, Some(&fx.rule)).await, weights(&[(&fx.blue, 100), (&fx.green, 0)]));
    let rules = elb.describe_rules().rule_arns(&fx.rule).send().await.expect("rules");
    let config = rules.rules()[0].actions()[0].forward_config().expect("forward").target_group_stickiness_config();
    assert_eq!(config.and_then(|c| c.duration_seconds()), Some(300));
}

#[tokio::test]
async fn no_traffic_goes_to_a_group_without_a_healthy_target() {
    let Some(moto) = testing::moto() else { return };
    let sdk = moto.sdk_config().await;
    let fx = create_alb(&moto.endpoint, &sdk).await;
    let proxy = FaultProxy::start(&moto.endpoint);
    let alb =
        router(Aws::from_sdk_config(sdk_config(&proxy.endpoint).await), Resource::Listener(fx.listener.clone()), &fx);

    for (state, reason) in [
        ("unhealthy", "Target.ResponseCodeMismatch"),
        ("initial", "Elb.RegistrationInProgress"),
        ("draining", "Target.DeregistrationInProgress"),
        ("unavailable", "Target.HealthCheckDisabled"),
    ] {
        proxy.clear();
        proxy.target_health(&fx.green, state, reason);
        let err = alb.set_weight(10).await.expect_err(state);
        let text = err.to_string();
        assert!(text.contains(&format!("1 {state} ({reason})")), "{text}");
        assert!(text.contains("no traffic to target group green"), "{text}");
        assert_eq!(forward_weights(&sdk, &fx.listener, None).await, weights(&[(&fx.blue, 1)]), "nothing moved");
    }
    // Back to stable needs no healthy candidate.
    assert_eq!(alb.set_weight(0).await.expect("to stable").candidate_weight, 0);
    proxy.clear();
    assert_eq!(alb.set_weight(10).await.expect("healthy again").candidate_weight, 10);
}

#[tokio::test]
async fn throttling_and_5xx_are_retried_then_reported_with_code_and_request_id() {
    let Some(moto) = testing::moto() else { return };
    let sdk = moto.sdk_config().await;
    let fx = create_alb(&moto.endpoint, &sdk).await;
    let proxy = FaultProxy::start(&moto.endpoint);
    let alb =
        router(Aws::from_sdk_config(sdk_config(&proxy.endpoint).await), Resource::Listener(fx.listener.clone()), &fx);

    proxy.throttle("DescribeListeners", 2);
    assert_eq!(alb.state().await.expect("third attempt passes").candidate_weight, 0);
    assert_eq!(proxy.count("DescribeListeners"), 3, "two throttled attempts, then one that passed");

    proxy.server_error("ModifyListener", 1, 503);
    assert_eq!(alb.set_weight(20).await.expect("retried").candidate_weight, 20);
    assert_eq!(proxy.count("ModifyListener"), 2);

    proxy.clear();
    proxy.throttle("DescribeListeners", 10);
    let err = alb.state().await.expect_err("throttled throughout");
    let text = err.to_string();
    assert!(err.transient, "{text}");
    assert!(text.contains("Throttling: Rate exceeded"), "{text}");
    assert!(text.contains("request id fault-proxy-0001"), "{text}");
    assert!(text.starts_with("alb router failed to read the forward action"), "{text}");
}

#[tokio::test]
async fn a_missing_listener_and_a_stranger_group_are_named() {
    let Some(moto) = testing::moto() else { return };
    let sdk = moto.sdk_config().await;
    let fx = create_alb(&moto.endpoint, &sdk).await;
    let missing = format!("{}0", fx.listener);
    let alb = router(Aws::from_sdk_config(sdk.clone()), Resource::Listener(missing), &fx);
    let err = alb.state().await.expect_err("no such listener");
    assert!(err.to_string().contains("ListenerNotFound"), "{err}");
    assert!(!err.transient);

    // A forward to a third group is not silently dropped.
    let other = AlbRouter::with_aws(
        Aws::from_sdk_config(sdk.clone()),
        Resource::Listener(fx.listener.clone()),
        &fx.green,
        &format!("{}x", fx.green),
    );
    let err = other.state().await.expect_err("blue is a stranger to this config");
    assert!(err.to_string().contains("neither configured group"), "{err}");
}

#[tokio::test]
async fn no_call_waits_longer_than_its_timeouts() {
    let Some(moto) = testing::moto() else { return };
    let sdk = moto.sdk_config().await;
    let fx = create_alb(&moto.endpoint, &sdk).await;
    let proxy = FaultProxy::start(&moto.endpoint);
    let settings = sluice_providers::aws::AwsSettings {
        region: Some(testing::REGION.into()),
        endpoint_url: Some(proxy.endpoint.clone()),
        // Every margin is far from its limit, so a loaded 2-core machine
        // cannot flip the outcome (3 s attempts failed 3 of 6 runs there):
        // an attempt timeout (5 s) far above moto's answer time, an
        // operation timeout (25 s) above one timed-out attempt plus a retry,
        // slow answers (60 s, 120 s) far beyond both, and a bound (60 s) on
        // the failing call far above its operation timeout and far below
        // the slow answer.
        timeouts: Some((Duration::from_secs(5), Duration::from_secs(25))),
        role: None,
    };
    let alb = router(
        Aws::from_sdk_config(testing::sdk_config_with(settings).await),
        Resource::Listener(fx.listener.clone()),
        &fx,
    );
    // One slow answer: the attempt times out and the retry passes.
    proxy.slow("DescribeListeners", 1, Duration::from_secs(60));
    assert_eq!(alb.state().await.expect("retried after a timeout").candidate_weight, 0);
    // Slow every time: the call ends, as an error that says it timed out,
    // well before the answers would have come: 3 attempts of 5 s and their
    // backoff, or the 25 s operation timeout, whichever comes first.
    proxy.slow("DescribeListeners", 10, Duration::from_secs(120));
    let started = std::time::Instant::now();
    let err = alb.state().await.expect_err("times out");
    assert!(started.elapsed() < Duration::from_secs(60), "took {:?}", started.elapsed());
    assert!(err.transient, "{err}");
    // Which timeout ends it is a race on the clock, so either message: the
    // attempt's read timeout (after the SDK's retries) or the attempt or
    // operation timeout.
    let message = err.to_string();
    assert!(message.contains("no answer in time") || message.contains("HTTP read timeout"), "{err}");
}
