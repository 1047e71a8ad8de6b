//! The CloudWatch source against moto: metrics and alarms put through the
//! SDK, read back with one GetMetricData call per interval. moto evaluates
//! no alarm (they are set with SetAlarmState here), computes no percentile,
//! and ignores the namespace when dimensions are given, so the tests use
//! distinct metric names.

use aws_sdk_cloudwatch::types::{ComparisonOperator, Dimension, MetricDatum, StateValue, Statistic};
use jiff::Timestamp;
use sluice_providers::aws::Aws;
use sluice_providers::aws::cloudwatch::{CloudWatch, CloudWatchSettings};
use sluice_providers::metrics::{Query, Window};
use sluice_test_support::aws::{self as testing, FaultProxy, create_alb, put_alb_minute, sdk_config, this_minute};
use std::time::Duration;

fn settings(alb_traffic: bool) -> CloudWatchSettings {
    CloudWatchSettings {
        name: "cw".into(),
        period: Duration::from_secs(60),
        lookback: Duration::from_secs(180),
        delay: Duration::ZERO,
        alb_traffic,
    }
}

fn query(check: &str, text: &str) -> Query {
    Query { check: check.into(), source: "cw".into(), text: text.into(), reduce: None, step: None }
}

fn window() -> Window {
    let now = Timestamp::now();
    Window { start: now, end: now }
}

#[tokio::test]
async fn alb_traffic_fills_both_pools_once_and_queries_share_one_call() {
    let Some(moto) = testing::moto() else { return };
    let sdk = moto.sdk_config().await;
    let fx = create_alb(&moto.endpoint, &sdk).await;
    let dims = fx.dims();
    let minute = this_minute() - 60;
    put_alb_minute(&sdk, &dims.load_balancer, &dims.candidate, minute, 400.0, 20.0).await;
    put_alb_minute(&sdk, &dims.load_balancer, &dims.candidate, minute - 60, 600.0, 30.0).await;
    put_alb_minute(&sdk, &dims.load_balancer, &dims.stable, minute, 3000.0, 3.0).await;
    // Outside the look-back window: not counted.
    put_alb_minute(&sdk, &dims.load_balancer, &dims.candidate, minute - 600, 9999.0, 9999.0).await;

    let proxy = FaultProxy::start(&moto.endpoint);
    let cw = CloudWatch::with_aws(Aws::from_sdk_config(sdk_config(&proxy.endpoint).await), settings(true));
    let queries = [
        query("rate", "alb 5xx_rate"),
        query("count", "alb 5xx_count"),
        query("stable-requests", "alb requests stable"),
        query("custom", "Sum AWS/ApplicationELB RequestCount LoadBalancer=@load_balancer TargetGroup=@candidate"),
    ];
    let answer = cw.answer(window(), &queries, Some(&dims)).await.expect("answer");
    assert_eq!(proxy.count("GetMetricData"), 1, "one batched call for four queries and both pools");
    assert_eq!(answer.answers[0], Ok(Some(0.05)));
    assert_eq!(answer.answers[1], Ok(Some(50.0)));
    assert_eq!(answer.answers[2], Ok(Some(3000.0)));
    assert_eq!(answer.answers[3], Ok(Some(1000.0)));
    let (candidate, stable) = answer.pools.clone().expect("pools");
    let candidate = candidate.expect("candidate traffic");
    assert_eq!((candidate.requests, candidate.errors), (1000, 50));
    assert_eq!(stable.map(|s| (s.requests, s.errors)), Some((3000, 3)));
    let (start, end, period) = answer.window.expect("window");
    assert_eq!(end.as_second(), this_minute(), "aligned to the minute");
    assert_eq!(end.as_second() - start.as_second(), 180);
    assert_eq!(period, Duration::from_secs(60));
    assert_eq!(answer.counted_from, Some(start), "the first interval counts the whole window");

    // The same minutes again: no new traffic (never counted twice), while
    // the scalar queries still look back over the window.
    let again = cw.answer(window(), &queries, Some(&dims)).await.expect("answer");
    assert_eq!(again.pools, Some((None, None)));
    assert_eq!(again.counted_from, None);
    assert_eq!(again.answers[0], Ok(Some(0.05)));
}

#[tokio::test]
async fn no_data_is_no_data_not_zero() {
    let Some(moto) = testing::moto() else { return };
    let sdk = moto.sdk_config().await;
    let fx = create_alb(&moto.endpoint, &sdk).await;
    let cw = CloudWatch::with_aws(Aws::from_sdk_config(sdk.clone()), settings(true));
    let answer = cw
        .answer(
            window(),
            &[query("rate", "alb 5xx_rate"), query("p99", "Maximum Shop/Latency Missing")],
            Some(&fx.dims()),
        )
        .await
        .expect("answer");
    assert_eq!(answer.answers, vec![Ok(None), Ok(None)]);
    assert_eq!(answer.pools, Some((None, None)));
}

#[tokio::test]
async fn alarms_are_checks_and_insufficient_data_is_inconclusive() {
    let Some(moto) = testing::moto() else { return };
    let sdk = moto.sdk_config().await;
    let client = aws_sdk_cloudwatch::Client::new(&sdk);
    for name in ["shop-5xx", "shop-latency", "shop-new"] {
        client
            .put_metric_alarm()
            .alarm_name(name)
            .namespace("Shop")
            .metric_name(format!("{name}-metric"))
            .statistic(Statistic::Sum)
            .period(60)
            .evaluation_periods(1)
            .threshold(1.0)
            .comparison_operator(ComparisonOperator::GreaterThanThreshold)
            .send()
            .await
            .expect("alarm");
    }
    // moto never evaluates alarms: set their states as CloudWatch would.
    for (name, state) in [("shop-5xx", StateValue::Alarm), ("shop-new", StateValue::InsufficientData)] {
        client.set_alarm_state().alarm_name(name).state_value(state).state_reason("test").send().await.expect("state");
    }
    let cw = CloudWatch::with_aws(Aws::from_sdk_config(sdk.clone()), settings(false));
    let answer = cw
        .answer(
            window(),
            &[
                query("5xx", "alarm shop-5xx"),
                query("latency", "alarm shop-latency"),
                query("new", "alarm shop-new"),
                query("typo", "alarm shop-typo"),
            ],
            None,
        )
        .await
        .expect("answer");
    assert_eq!(answer.answers[0], Ok(Some(1.0)), "ALARM");
    assert_eq!(answer.answers[1], Ok(Some(0.0)), "OK (moto starts alarms OK)");
    assert_eq!(answer.answers[2], Ok(None), "INSUFFICIENT_DATA is no data, never a pass");
    assert!(answer.answers[3].as_ref().is_err_and(|e| e.contains("no alarm named")), "{:?}", answer.answers[3]);
}

#[tokio::test]
async fn custom_namespaces_and_dimensions() {
    let Some(moto) = testing::moto() else { return };
    let sdk = moto.sdk_config().await;
    let client = aws_sdk_cloudwatch::Client::new(&sdk);
    let minute = this_minute() - 60;
    for (version, value) in [("v2", 7.0), ("v1", 100.0)] {
        client
            .put_metric_data()
            .namespace("Shop/Orders")
            .metric_data(
                MetricDatum::builder()
                    .metric_name("FailedOrders")
                    .value(value)
                    .timestamp(aws_sdk_cloudwatch::primitives::DateTime::from_secs(minute + 10))
                    .dimensions(Dimension::builder().name("Version").value(version).build())
                    .build(),
            )
            .send()
            .await
            .expect("put");
    }
    let cw = CloudWatch::with_aws(Aws::from_sdk_config(sdk.clone()), settings(false));
    let answer = cw
        .answer(
            window(),
            &[
                query("failed", "Sum Shop/Orders FailedOrders Version=v2"),
                query("bad", "Sum Shop/Orders FailedOrders Version=@candidate"),
            ],
            None,
        )
        .await
        .expect("answer");
    assert_eq!(answer.answers[0], Ok(Some(7.0)));
    assert!(answer.answers[1].as_ref().is_err_and(|e| e.contains("alb router")), "{:?}", answer.answers[1]);
}

#[tokio::test]
async fn throttling_is_retried_then_reported_with_code_and_request_id() {
    let Some(moto) = testing::moto() else { return };
    let proxy = FaultProxy::start(&moto.endpoint);
    let cw = CloudWatch::with_aws(Aws::from_sdk_config(sdk_config(&proxy.endpoint).await), settings(false));
    let queries = [query("x", "Sum Shop/Orders FailedOrders")];
    proxy.throttle("GetMetricData", 1);
    assert!(cw.answer(window(), &queries, None).await.is_ok(), "retried once");
    assert_eq!(proxy.count("GetMetricData"), 2);
    proxy.clear();
    proxy.server_error("GetMetricData", 10, 500);
    let err = cw.answer(window(), &queries, None).await.expect_err("fails");
    assert!(err.transient);
    assert!(err.to_string().contains("ServiceUnavailable"), "{err}");
    assert!(err.to_string().contains("request id fault-proxy-0001"), "{err}");
}

/// The sample-ratio check on CloudWatch's traffic, with the analysis
/// engine: the source is asked as the clock would run during a stage that
/// began at `t0` (interval ends a minute apart, no delay), over minutes
/// already in moto. The minutes counted before `t0` (the look-back, and the
/// minute of the shift itself) are not held against the weight; the first
/// whole minutes after it are.
async fn split_after_a_shift(candidate: f64, stable: f64) -> sluice_analysis::AnalysisReport {
    use sluice_analysis::{Analysis, CheckKind, CheckSpec, Interval, LookBack, OnInconclusive, Policy};
    let moto = testing::moto().expect("moto");
    let sdk = moto.sdk_config().await;
    let fx = create_alb(&moto.endpoint, &sdk).await;
    let dims = fx.dims();
    let now = this_minute();
    for m in 1..=12 {
        put_alb_minute(&sdk, &dims.load_balancer, &dims.candidate, now - m * 60, candidate, 0.0).await;
        put_alb_minute(&sdk, &dims.load_balancer, &dims.stable, now - m * 60, stable, 0.0).await;
    }
    let cw = CloudWatch::with_aws(Aws::from_sdk_config(sdk), settings(true));
    let check = CheckSpec {
        name: "errors".into(),
        kind: CheckKind::ErrorRate { max: 0.05 },
        min_samples: 50,
        critical: false,
        failure_limit: 1,
        inconclusive_limit: 6,
        on_inconclusive: OnInconclusive::Hold,
    };
    let mut analysis = Analysis::at_weight(vec![check], Policy::default(), 10).planned(5);
    let t0 = Timestamp::from_second(now - 8 * 60 + 10).expect("t0");
    let mut start = t0;
    for k in 0..5 {
        let end = Timestamp::from_second(t0.as_second() + 20 + k * 60).expect("end");
        let answer = cw.answer(Window { start, end }, &[], Some(&dims)).await.expect("answer");
        let (c, s) = answer.pools.expect("pools");
        let (from, to, period) = answer.window.expect("window");
        let look = LookBack {
            start: from,
            end: to,
            period_seconds: period.as_secs(),
            counted_from: answer.counted_from,
            pools: true,
        };
        let outcome = analysis.observe(Interval {
            start,
            end,
            candidate: c,
            stable: s,
            probes: Vec::new(),
            values: Default::default(),
            source_errors: Default::default(),
            query_errors: Default::default(),
            lookback: [("cw".to_owned(), look)].into(),
            router_weight: None,
        });
        if let sluice_analysis::Outcome::Decided(_) = outcome {
            break;
        }
        start = end;
    }
    analysis.finish()
}

#[tokio::test]
async fn the_split_is_checked_on_the_minutes_after_the_shift() {
    use sluice_analysis::{Cause, Verdict};
    if testing::moto().is_none() {
        return;
    }
    // Half the requests at weight 10%: an error, from the stage's own minutes.
    let report = split_after_a_shift(1000.0, 1000.0).await;
    assert_eq!((report.verdict, report.cause), (Verdict::Error, Some(Cause::SampleRatioMismatch)), "{}", report.reason);
    assert!(report.reason.contains("the weight set on the router is 10%"), "{}", report.reason);
    assert!(report.reason.contains("(1000 of 2000)"), "one minute after the shift decided it: {}", report.reason);
    // The third interval decided: the first two counted only minutes that
    // began before the stage did.
    assert_eq!(report.intervals.len(), 3, "{}", report.reason);

    // The split the weight asks for: checked, and no mismatch.
    let report = split_after_a_shift(200.0, 1800.0).await;
    assert_eq!(report.verdict, Verdict::Pass, "{}", report.reason);
    let ratio = report.sample_ratio.expect("the split was checked");
    assert_eq!(
        (ratio.verdict, ratio.samples),
        (Verdict::Pass, 6000),
        "three minutes after the shift: {}",
        ratio.message
    );
}
