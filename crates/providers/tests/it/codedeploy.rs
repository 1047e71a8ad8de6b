//! The CodeDeploy router against moto. moto keeps applications, groups and
//! deployments (CreateDeployment, GetDeployment, ListDeployments reach it)
//! but never advances a deployment and has no ContinueDeployment or
//! StopDeployment: the `CodeDeployFake` on the fault proxy stands in for
//! those, from AWS's documented request and response shapes.

use sluice_providers::aws::Aws;
use sluice_providers::aws::codedeploy::{CodeDeployRouter, CodeDeploySettings, Revision};
use sluice_test_support::aws::{self as testing, CodeDeployFake, FaultProxy, Script, create_codedeploy, sdk_config};
use std::time::Duration;

struct Setup {
    router: CodeDeployRouter,
    proxy: FaultProxy,
    fake: CodeDeployFake,
    _dir: tempfile::TempDir,
    _moto: testing::Moto,
}

async fn setup(script: Script) -> Option<Setup> {
    let moto = testing::moto()?;
    let sdk = moto.sdk_config().await;
    let fx = create_codedeploy(&sdk).await;
    let proxy = FaultProxy::start(&moto.endpoint);
    let fake = CodeDeployFake::install(&proxy, script);
    let dir = tempfile::tempdir().expect("tempdir");
    let appspec = dir.path().join("appspec.yaml");
    std::fs::write(&appspec, "version: 0.0\nResources: []\n").expect("appspec");
    let settings = CodeDeploySettings {
        application: fx.application,
        deployment_group: fx.deployment_group,
        deployment_config: Some("CodeDeployDefault.ECSCanary10Percent5Minutes".into()),
        revision: Revision::AppSpec(appspec),
        poll_interval: Duration::from_millis(50),
        timeout: Duration::from_secs(20),
    };
    let router = CodeDeployRouter::with_aws(Aws::from_sdk_config(sdk_config(&proxy.endpoint).await), settings);
    Some(Setup { router, proxy, fake, _dir: dir, _moto: moto })
}

#[tokio::test]
async fn creates_follows_and_continues_a_deployment_that_waits_for_rerouting() {
    let Some(s) = setup(Script::succeeds()).await else { return };
    assert_eq!(s.router.state().await.expect("state").deployment_id, None, "nothing in flight yet");
    let created = s.router.create("sluice test").await.expect("create");
    assert!(!created.id.is_empty(), "{created:?}");
    let state = s.router.state().await.expect("state");
    assert_eq!(state.deployment_id.as_deref(), Some(created.id.as_str()), "the active deployment is found");

    let mut seen = Vec::new();
    let ended = s.router.follow(&created.id, |d| seen.push(d.status.clone())).await.expect("follow");
    assert_eq!(ended.status, "Succeeded");
    assert!(seen.contains(&"Ready".to_owned()), "{seen:?}");
    assert_eq!(seen.last().map(String::as_str), Some("Succeeded"));
    assert_eq!(s.fake.status(&created.id), Some(("Succeeded".into(), true, false)), "continued once, never stopped");
    assert_eq!(s.proxy.count("ContinueDeployment"), 1);
    assert_eq!(s.proxy.count("CreateDeployment"), 1);
    // Nothing in flight any more: promotion is allowed.
    assert_eq!(s.router.promote().await.expect("promote").deployment_id, None);
}

#[tokio::test]
async fn a_failed_deployment_reports_codedeploys_words() {
    let Some(s) = setup(Script::fails(
        "HEALTH_CONSTRAINTS",
        "The overall deployment failed because too many individual instances failed",
    ))
    .await
    else {
        return;
    };
    let created = s.router.create("sluice test").await.expect("create");
    let ended = s.router.follow(&created.id, |_| {}).await.expect("follow");
    assert_eq!(ended.status, "Failed");
    let message = ended.message.expect("a message");
    assert!(message.contains("HEALTH_CONSTRAINTS: The overall deployment failed"), "{message}");
    assert!(message.contains("rollback: Automatic rollback"), "{message}");
}

#[tokio::test]
async fn stop_with_rollback_ends_the_deployment_in_flight() {
    let Some(s) = setup(Script::runs()).await else { return };
    let created = s.router.create("sluice test").await.expect("create");
    assert!(s.router.promote().await.is_err(), "no promotion while a deployment runs");
    let state = s.router.stop_active().await.expect("stop");
    assert_eq!(state.deployment_id.as_deref(), Some(created.id.as_str()));
    assert_eq!(state.deployment_status.as_deref(), Some("Stopped"));
    assert_eq!(s.fake.status(&created.id), Some(("Stopped".into(), false, true)), "stopped with autoRollbackEnabled");
    // Read back: nothing active; a second stop is a no-op.
    assert_eq!(s.router.state().await.expect("state").deployment_id, None);
    assert_eq!(s.router.stop_active().await.expect("again").deployment_id, None);
    assert_eq!(s.proxy.count("StopDeployment"), 1);
}

#[tokio::test]
async fn a_deployment_that_does_not_end_in_time_is_an_error_that_says_so() {
    let Some(mut s) = setup(Script::runs()).await else { return };
    let created = s.router.create("sluice test").await.expect("create");
    let mut settings = s.router.settings().clone();
    settings.timeout = Duration::from_millis(300);
    s.router = CodeDeployRouter::with_aws(Aws::from_sdk_config(sdk_config(&s.proxy.endpoint).await), settings);
    let err = s.router.follow(&created.id, |_| {}).await.expect_err("times out");
    assert!(err.to_string().contains("has not ended"), "{err}");
    assert!(err.to_string().contains("still InProgress"), "{err}");
}
