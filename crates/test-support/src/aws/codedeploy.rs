//! CodeDeploy: the fixture and the fake that moves deployments along.

use super::{Call, FaultProxy, Reply, error_body};
use aws_config::SdkConfig;
use std::sync::{Arc, Mutex};

// CodeDeploy: moto stores deployments but never advances them and has no
// ContinueDeployment or StopDeployment. The fake below stands in for exactly
// that, on the fault proxy, with the request and response shapes of AWS's
// CodeDeploy API reference (awsJson1_1): it moves GetDeployment's `status`
// along a script, answers ContinueDeployment (empty object) and
// StopDeployment (`status` + `statusMessage`), adds `errorInformation` and
// `rollbackInfo` where AWS documents them, and hides ended deployments from
// ListDeployments. CreateDeployment, GetDeployment and ListDeployments still
// reach moto, which checks the application and group and keeps the
// deployment.

/// What [`create_codedeploy`] made.
#[derive(Clone, Debug)]
pub struct CodeDeployFixture {
    pub application: String,
    pub deployment_group: String,
}

/// Creates an ECS application `shop` with a blue/green deployment group
/// `shop-dev` in moto, through the SDK.
pub async fn create_codedeploy(sdk: &SdkConfig) -> CodeDeployFixture {
    use aws_sdk_codedeploy::types::{ComputePlatform, DeploymentOption, DeploymentStyle, DeploymentType};
    let client = aws_sdk_codedeploy::Client::new(sdk);
    client
        .create_application()
        .application_name("shop")
        .compute_platform(ComputePlatform::Ecs)
        .send()
        .await
        .expect("create application");
    client
        .create_deployment_group()
        .application_name("shop")
        .deployment_group_name("shop-dev")
        .service_role_arn("arn:aws:iam::123456789012:role/codedeploy")
        .deployment_config_name("CodeDeployDefault.ECSCanary10Percent5Minutes")
        .deployment_style(
            DeploymentStyle::builder()
                .deployment_type(DeploymentType::BlueGreen)
                .deployment_option(DeploymentOption::WithTrafficControl)
                .build(),
        )
        .send()
        .await
        .expect("create deployment group");
    CodeDeployFixture { application: "shop".into(), deployment_group: "shop-dev".into() }
}

/// Adds to [`create_codedeploy`]'s application `shop` an ECS blue/green
/// deployment group `group` whose load balancer info names `alb`'s blue and
/// green target groups as its pair and `alb`'s listener as the production
/// route (moto keeps `loadBalancerInfo` and returns it as given).
pub async fn create_codedeploy_pair(sdk: &SdkConfig, alb: &super::AlbFixture, group: &str) -> CodeDeployFixture {
    use aws_sdk_codedeploy::types::{
        DeploymentOption, DeploymentStyle, DeploymentType, LoadBalancerInfo, TargetGroupInfo, TargetGroupPairInfo,
        TrafficRoute,
    };
    let name = |arn: &str| arn.split('/').nth(1).expect("a target group ARN").to_owned();
    let pair = TargetGroupPairInfo::builder()
        .target_groups(TargetGroupInfo::builder().name(name(&alb.blue)).build())
        .target_groups(TargetGroupInfo::builder().name(name(&alb.green)).build())
        .prod_traffic_route(TrafficRoute::builder().listener_arns(&alb.listener).build())
        .build();
    aws_sdk_codedeploy::Client::new(sdk)
        .create_deployment_group()
        .application_name("shop")
        .deployment_group_name(group)
        .service_role_arn("arn:aws:iam::123456789012:role/codedeploy")
        .deployment_config_name("CodeDeployDefault.ECSCanary10Percent5Minutes")
        .deployment_style(
            DeploymentStyle::builder()
                .deployment_type(DeploymentType::BlueGreen)
                .deployment_option(DeploymentOption::WithTrafficControl)
                .build(),
        )
        .load_balancer_info(LoadBalancerInfo::builder().target_group_pair_info_list(pair).build())
        .send()
        .await
        .expect("create deployment group");
    CodeDeployFixture { application: "shop".into(), deployment_group: group.into() }
}

/// How the fake moves a deployment along.
#[derive(Clone, Debug)]
pub struct Script {
    /// Statuses GetDeployment reads in turn until `Ready` (which holds until
    /// ContinueDeployment) or an end.
    pub steps: Vec<&'static str>,
    /// Statuses after ContinueDeployment.
    pub after_continue: Vec<&'static str>,
    /// `errorInformation` of a failed deployment: (code, message).
    pub error: Option<(&'static str, &'static str)>,
}

impl Script {
    /// Waits for rerouting, is continued, succeeds.
    pub fn succeeds() -> Script {
        Script { steps: vec!["InProgress", "Ready"], after_continue: vec!["InProgress", "Succeeded"], error: None }
    }

    /// Fails while shifting.
    pub fn fails(code: &'static str, message: &'static str) -> Script {
        Script { steps: vec!["InProgress", "Failed"], after_continue: Vec::new(), error: Some((code, message)) }
    }

    /// Never ends by itself (for stop tests).
    pub fn runs() -> Script {
        Script { steps: vec!["InProgress"], after_continue: Vec::new(), error: None }
    }
}

#[derive(Debug)]
struct FakeDeployment {
    status: String,
    queue: std::collections::VecDeque<&'static str>,
    continued: bool,
    stopped: bool,
}

#[derive(Debug, Default)]
struct FakeState {
    deployments: std::collections::BTreeMap<String, FakeDeployment>,
}

/// The CodeDeploy stand-in; see the comment above [`CodeDeployFixture`].
#[derive(Clone)]
pub struct CodeDeployFake {
    state: Arc<Mutex<FakeState>>,
    script: Script,
}

impl CodeDeployFake {
    /// Installs the fake's rules on `proxy`.
    pub fn install(proxy: &FaultProxy, script: Script) -> CodeDeployFake {
        let fake = CodeDeployFake { state: Arc::default(), script };
        let this = fake.clone();
        proxy.add(Arc::new(move |call: &Call| this.reply(call)));
        fake
    }

    /// The fake status of a deployment, and whether it was continued and stopped.
    pub fn status(&self, id: &str) -> Option<(String, bool, bool)> {
        let state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        state.deployments.get(id).map(|d| (d.status.clone(), d.continued, d.stopped))
    }

    /// Ends deployment `id` with `status` at the next GetDeployment, as
    /// CodeDeploy would once it finished shifting (a test that plays
    /// CodeDeploy's shift on the listener itself).
    pub fn end(&self, id: &str, status: &'static str) {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(d) = state.deployments.get_mut(id) {
            d.queue = [status].into_iter().collect();
        }
    }

    fn reply(&self, call: &Call) -> Reply {
        if !call.json {
            return Reply::Forward;
        }
        let request: serde_json::Value = serde_json::from_str(&call.body).unwrap_or_default();
        let id = request["deploymentId"].as_str().unwrap_or_default().to_owned();
        let state = self.state.clone();
        match call.operation.as_str() {
            "CreateDeployment" => {
                let script = self.script.clone();
                Reply::Rewrite(Box::new(move |body: String| {
                    let answer: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
                    if let Some(id) = answer["deploymentId"].as_str() {
                        let mut state = state.lock().unwrap_or_else(|p| p.into_inner());
                        state.deployments.insert(
                            id.to_owned(),
                            FakeDeployment {
                                status: "Created".into(),
                                queue: script.steps.iter().copied().collect(),
                                continued: false,
                                stopped: false,
                            },
                        );
                    }
                    body
                }))
            }
            "GetDeployment" => {
                let error = self.script.error;
                Reply::Rewrite(Box::new(move |body: String| {
                    let mut answer: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
                    let mut state = state.lock().unwrap_or_else(|p| p.into_inner());
                    let Some(d) = state.deployments.get_mut(&id) else { return body };
                    if let Some(next) = d.queue.pop_front() {
                        d.status = next.to_owned();
                    }
                    let info = &mut answer["deploymentInfo"];
                    info["status"] = d.status.clone().into();
                    if d.status == "Failed"
                        && let Some((code, message)) = error
                    {
                        info["errorInformation"] = serde_json::json!({ "code": code, "message": message });
                        info["rollbackInfo"] = serde_json::json!({
                            "rollbackMessage": "Automatic rollback triggered by a deployment failure"
                        });
                    }
                    if d.status == "Stopped" {
                        info["rollbackInfo"] = serde_json::json!({ "rollbackMessage": "Stopped by request; traffic rerouted back to the original task set" });
                    }
                    answer.to_string()
                }))
            }
            "ContinueDeployment" => {
                let mut state = state.lock().unwrap_or_else(|p| p.into_inner());
                let Some(d) = state.deployments.get_mut(&id) else {
                    return Reply::Respond {
                        status: 400,
                        body: error_body(true, "DeploymentDoesNotExistException", "no such deployment"),
                    };
                };
                if d.status != "Ready" {
                    return Reply::Respond {
                        status: 400,
                        body: error_body(true, "DeploymentIsNotInReadyStateException", "the deployment is not Ready"),
                    };
                }
                d.continued = true;
                d.queue = self.script.after_continue.iter().copied().collect();
                Reply::Respond { status: 200, body: "{}".into() }
            }
            "StopDeployment" => {
                let mut state = state.lock().unwrap_or_else(|p| p.into_inner());
                let Some(d) = state.deployments.get_mut(&id) else {
                    return Reply::Respond {
                        status: 400,
                        body: error_body(true, "DeploymentDoesNotExistException", "no such deployment"),
                    };
                };
                if matches!(d.status.as_str(), "Succeeded" | "Failed" | "Stopped") {
                    return Reply::Respond {
                        status: 400,
                        body: error_body(true, "DeploymentAlreadyCompletedException", "the deployment has ended"),
                    };
                }
                d.stopped = request["autoRollbackEnabled"].as_bool().unwrap_or(false);
                d.queue = ["Stopped"].into_iter().collect();
                Reply::Respond {
                    status: 200,
                    body: serde_json::json!({ "status": "Pending", "statusMessage": "Stop request received" })
                        .to_string(),
                }
            }
            "ListDeployments" => {
                let wanted: Vec<String> = request["includeOnlyStatuses"]
                    .as_array()
                    .map(|a| a.iter().filter_map(|s| s.as_str().map(str::to_owned)).collect())
                    .unwrap_or_default();
                Reply::Rewrite(Box::new(move |body: String| {
                    let mut answer: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
                    let state = state.lock().unwrap_or_else(|p| p.into_inner());
                    if let Some(ids) = answer["deployments"].as_array_mut() {
                        ids.retain(|id| {
                            let status = id.as_str().and_then(|id| state.deployments.get(id)).map(|d| d.status.clone());
                            match status {
                                Some(status) => wanted.is_empty() || wanted.contains(&status),
                                None => true,
                            }
                        });
                    }
                    answer.to_string()
                }))
            }
            _ => Reply::Forward,
        }
    }
}
