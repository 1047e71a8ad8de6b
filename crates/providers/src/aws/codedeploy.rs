//! The CodeDeploy router, for teams that already shift with CodeDeploy
//! blue/green (ECS or EC2): CodeDeploy owns the traffic shift; sluice creates
//! the deployment from its config (AppSpec or S3 revision, deployment
//! config), follows it until it ends, continues it when it waits for traffic
//! rerouting (`Ready`), and stops it with automatic rollback.
//!
//! State is read from CodeDeploy, never remembered: the active deployment of
//! the deployment group is the one in flight (CodeDeploy allows one at a
//! time), so every job sees the same thing. Status and error messages from
//! CodeDeploy are returned for the record.
//!
//! For the built-in ALB checks, reads a group's blue/green target-group pair
//! (ECS) and which of the two the production listener serves before the
//! deployment starts: the other one is the replacement; and, while
//! CodeDeploy shifts, the replacement's share of the listener's weights.
//!
//! Never creates or changes applications, deployment groups, configs,
//! listeners or target groups.

use super::{Aws, AwsSettings, sdk_error};
use crate::ProviderError;
use aws_sdk_codedeploy::Client;
use aws_sdk_codedeploy::types::{
    AppSpecContent, AutoRollbackConfiguration, AutoRollbackEvent, BundleType, ComputePlatform, DeploymentGroupInfo,
    DeploymentStatus, DeploymentWaitType, RevisionLocation, RevisionLocationType, S3Location,
};
use sluice_core::record::RouterState;
use std::path::PathBuf;
use std::time::Duration;

const PROVIDER: &str = "codedeploy router";

/// Statuses of a deployment that has not ended.
const ACTIVE: [DeploymentStatus; 5] = [
    DeploymentStatus::Created,
    DeploymentStatus::Queued,
    DeploymentStatus::InProgress,
    DeploymentStatus::Baking,
    DeploymentStatus::Ready,
];

/// What CodeDeploy deploys.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Revision {
    /// An AppSpec file whose text is the revision (ECS, Lambda).
    AppSpec(PathBuf),
    /// A bundle in S3 (EC2/on-premises).
    S3 { bucket: String, key: String, bundle: String },
}

/// Where and what to deploy.
#[derive(Clone, Debug)]
pub struct CodeDeploySettings {
    pub application: String,
    pub deployment_group: String,
    pub deployment_config: Option<String>,
    pub revision: Revision,
    pub poll_interval: Duration,
    pub timeout: Duration,
}

/// The CodeDeploy router of one environment.
#[derive(Clone, Debug)]
pub struct CodeDeployRouter {
    aws: Aws,
    settings: CodeDeploySettings,
}

/// A deployment as CodeDeploy describes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Deployment {
    pub id: String,
    /// `Created`, `Queued`, `InProgress`, `Baking`, `Ready`, `Succeeded`,
    /// `Failed` or `Stopped`.
    pub status: String,
    /// CodeDeploy's own words: the error, the rollback, status messages.
    pub message: Option<String>,
}

impl Deployment {
    /// Whether the deployment has ended.
    pub fn is_final(&self) -> bool {
        matches!(self.status.as_str(), "Succeeded" | "Failed" | "Stopped")
    }
}

impl CodeDeployRouter {
    pub fn new(aws: AwsSettings, settings: CodeDeploySettings) -> CodeDeployRouter {
        CodeDeployRouter::with_aws(Aws::new(aws), settings)
    }

    /// The same with an AWS config given (tests).
    pub fn with_aws(aws: Aws, settings: CodeDeploySettings) -> CodeDeployRouter {
        CodeDeployRouter { aws, settings }
    }

    pub fn settings(&self) -> &CodeDeploySettings {
        &self.settings
    }

    async fn client(&self) -> Result<Client, ProviderError> {
        Ok(Client::new(self.aws.config(PROVIDER).await?))
    }

    /// The deployment group as it is now: its active deployment, if any.
    pub async fn state(&self) -> Result<RouterState, ProviderError> {
        let client = self.client().await?;
        let active = self.active(&client, "read the deployment group").await?;
        Ok(self.to_state(active.as_ref()))
    }

    fn to_state(&self, active: Option<&Deployment>) -> RouterState {
        // CodeDeploy does not say how much traffic the replacement takes
        // mid-shift; `Baking` means all of it, anything earlier none yet.
        let candidate_weight = match active.map(|d| d.status.as_str()) {
            Some("Baking") => 100,
            _ => 0,
        };
        RouterState {
            kind: "codedeploy".into(),
            candidate_weight,
            resource: Some(format!("{}/{}", self.settings.application, self.settings.deployment_group)),
            deployment_id: active.map(|d| d.id.clone()),
            deployment_status: active.map(|d| d.status.clone()),
            ..RouterState::default()
        }
    }

    /// The deployment in flight in the group, if any.
    async fn active(&self, client: &Client, operation: &str) -> Result<Option<Deployment>, ProviderError> {
        let out = client
            .list_deployments()
            .application_name(&self.settings.application)
            .deployment_group_name(&self.settings.deployment_group)
            .set_include_only_statuses(Some(ACTIVE.to_vec()))
            .send()
            .await
            .map_err(|e| sdk_error(PROVIDER, operation, e))?;
        match out.deployments().first() {
            Some(id) => {
                let deployment = self.get_with(client, id, operation).await?;
                Ok(Some(deployment).filter(|d| !d.is_final()))
            }
            None => Ok(None),
        }
    }

    /// Creates a deployment of the configured revision, with automatic
    /// rollback on failure, on alarm and on a stop request.
    pub async fn create(&self, description: &str) -> Result<Deployment, ProviderError> {
        let operation =
            format!("create a deployment in {}/{}", self.settings.application, self.settings.deployment_group);
        let revision = self.revision(&operation)?;
        let client = self.client().await?;
        let rollback = AutoRollbackConfiguration::builder()
            .enabled(true)
            .events(AutoRollbackEvent::DeploymentFailure)
            .events(AutoRollbackEvent::DeploymentStopOnAlarm)
            .events(AutoRollbackEvent::DeploymentStopOnRequest)
            .build();
        let out = client
            .create_deployment()
            .application_name(&self.settings.application)
            .deployment_group_name(&self.settings.deployment_group)
            .set_deployment_config_name(self.settings.deployment_config.clone())
            .revision(revision)
            .description(description)
            .auto_rollback_configuration(rollback)
            .send()
            .await
            .map_err(|e| sdk_error(PROVIDER, &operation, e))?;
        let id = out.deployment_id().ok_or_else(|| fail(&operation, "CodeDeploy returned no deployment id".into()))?;
        // Read back: the deployment exists and is what CodeDeploy says it is.
        self.get_with(&client, id, &operation).await
    }

    fn revision(&self, operation: &str) -> Result<RevisionLocation, ProviderError> {
        let revision = match &self.settings.revision {
            Revision::AppSpec(path) => {
                let content = std::fs::read_to_string(path)
                    .map_err(|e| fail(operation, format!("cannot read the AppSpec {}: {e}", path.display())))?;
                RevisionLocation::builder()
                    .revision_type(RevisionLocationType::AppSpecContent)
                    .app_spec_content(AppSpecContent::builder().content(content).build())
                    .build()
            }
            Revision::S3 { bucket, key, bundle } => RevisionLocation::builder()
                .revision_type(RevisionLocationType::S3)
                .s3_location(
                    S3Location::builder()
                        .bucket(bucket)
                        .key(key)
                        .bundle_type(BundleType::from(bundle.as_str()))
                        .build(),
                )
                .build(),
        };
        Ok(revision)
    }

    /// The deployment `id` as CodeDeploy describes it now.
    pub async fn get(&self, id: &str) -> Result<Deployment, ProviderError> {
        let client = self.client().await?;
        self.get_with(&client, id, &format!("read deployment {id}")).await
    }

    async fn get_with(&self, client: &Client, id: &str, operation: &str) -> Result<Deployment, ProviderError> {
        let out =
            client.get_deployment().deployment_id(id).send().await.map_err(|e| sdk_error(PROVIDER, operation, e))?;
        let info = out.deployment_info().ok_or_else(|| fail(operation, format!("deployment {id} has no details")))?;
        let status = info.status().map_or("Unknown".to_owned(), |s| s.as_str().to_owned());
        let mut words = Vec::new();
        if let Some(error) = info.error_information()
            && (error.code().is_some() || error.message().is_some())
        {
            let code = error.code().map(|c| c.as_str().to_owned()).unwrap_or_default();
            words.push(
                format!("{code}: {}", error.message().unwrap_or("no message")).trim_start_matches(": ").to_owned(),
            );
        }
        if let Some(message) = info.rollback_info().and_then(|r| r.rollback_message()) {
            words.push(format!("rollback: {message}"));
        }
        words.extend(info.deployment_status_messages().iter().filter(|m| !m.is_empty()).cloned());
        if let Some(extra) = info.additional_deployment_status_info().filter(|m| !m.is_empty()) {
            words.push(extra.to_owned());
        }
        Ok(Deployment {
            id: id.to_owned(),
            status,
            message: if words.is_empty() { None } else { Some(words.join("; ")) },
        })
    }

    /// Lets a deployment that waits for traffic rerouting go on.
    pub async fn continue_ready(&self, id: &str) -> Result<(), ProviderError> {
        let client = self.client().await?;
        let operation = format!("continue deployment {id} (reroute traffic)");
        client
            .continue_deployment()
            .deployment_id(id)
            .deployment_wait_type(DeploymentWaitType::ReadyWait)
            .send()
            .await
            .map_err(|e| sdk_error(PROVIDER, &operation, e))?;
        Ok(())
    }

    /// Follows `id` until it ends, calling `seen` on every change of status
    /// or message, and continuing it when it is `Ready`.
    pub async fn follow(&self, id: &str, mut seen: impl FnMut(&Deployment)) -> Result<Deployment, ProviderError> {
        let deadline = tokio::time::Instant::now() + self.settings.timeout;
        let mut last: Option<Deployment> = None;
        let mut continued = false;
        loop {
            let now = self.get(id).await?;
            if last.as_ref() != Some(&now) {
                seen(&now);
            }
            if now.is_final() {
                return Ok(now);
            }
            if now.status == "Ready" && !continued {
                self.continue_ready(id).await?;
                continued = true;
            }
            last = Some(now);
            if tokio::time::Instant::now() + self.settings.poll_interval > deadline {
                return Err(fail(
                    &format!("follow deployment {id}"),
                    format!(
                        "it has not ended after {}s (still {}); it goes on in CodeDeploy: stop it with rollback, or raise `timeout`",
                        self.settings.timeout.as_secs(),
                        last.as_ref().map_or("unknown", |d| d.status.as_str())
                    ),
                ));
            }
            tokio::time::sleep(self.settings.poll_interval).await;
        }
    }

    /// Stops the active deployment with automatic rollback and follows it
    /// until CodeDeploy reports it ended. Nothing to do when none is active.
    pub async fn stop_active(&self) -> Result<RouterState, ProviderError> {
        let client = self.client().await?;
        let operation = "stop the active deployment with rollback".to_owned();
        let Some(active) = self.active(&client, &operation).await? else {
            return Ok(self.to_state(None));
        };
        let out = client
            .stop_deployment()
            .deployment_id(&active.id)
            .auto_rollback_enabled(true)
            .send()
            .await
            .map_err(|e| sdk_error(PROVIDER, &operation, e))?;
        let _ = out.status();
        let ended = self.follow(&active.id, |_| {}).await?;
        if ended.status == "Succeeded" {
            return Err(fail(
                &operation,
                format!("deployment {} succeeded before it could be stopped; redeploy the previous revision", ended.id),
            ));
        }
        // Read back: no deployment is active any more.
        let after = self.active(&client, &operation).await?;
        if let Some(still) = after {
            return Err(fail(&operation, format!("deployment {} is still {}", still.id, still.status)));
        }
        let mut state = self.to_state(None);
        state.deployment_id = Some(ended.id);
        state.deployment_status = Some(ended.status);
        Ok(state)
    }

    /// Promotion: nothing to switch (CodeDeploy did), but no deployment may
    /// still be running.
    pub async fn promote(&self) -> Result<RouterState, ProviderError> {
        let state = self.state().await?;
        if let (Some(id), Some(status)) = (&state.deployment_id, &state.deployment_status) {
            return Err(fail(
                "promote",
                format!("deployment {id} is still {status}; let shift-traffic follow it to the end first"),
            ));
        }
        Ok(state)
    }
}

/// The CloudWatch alarms a deployment group watches (its
/// `alarmConfiguration`), in its order; empty when it has none or they are
/// disabled (CodeDeploy then ignores them too).
pub async fn group_alarms(aws: &Aws, application: &str, group: &str) -> Result<Vec<String>, ProviderError> {
    let operation = format!("read the alarms of deployment group {application}/{group}");
    let out = get_deployment_group(aws, application, group, &operation).await?;
    Ok(out.deployment_group_info().map(alarms_of).unwrap_or_default())
}

/// One GetDeploymentGroup call, its failure described as `operation`.
async fn get_deployment_group(
    aws: &Aws,
    application: &str,
    group: &str,
    operation: &str,
) -> Result<aws_sdk_codedeploy::operation::get_deployment_group::GetDeploymentGroupOutput, ProviderError> {
    Client::new(aws.config(PROVIDER).await?)
        .get_deployment_group()
        .application_name(application)
        .deployment_group_name(group)
        .send()
        .await
        .map_err(|e| sdk_error(PROVIDER, operation, e))
}

/// The alarms a group's alarm configuration names, when it is enabled.
fn alarms_of(info: &DeploymentGroupInfo) -> Vec<String> {
    match info.alarm_configuration() {
        Some(config) if config.enabled() => {
            config.alarms().iter().filter_map(|a| a.name()).map(str::to_owned).collect()
        }
        _ => Vec::new(),
    }
}

impl CodeDeployRouter {
    /// The deployment group's CloudWatch alarms ([`group_alarms`]).
    pub async fn alarms(&self) -> Result<Vec<String>, ProviderError> {
        group_alarms(&self.aws, &self.settings.application, &self.settings.deployment_group).await
    }

    /// The deployment group's blue/green target-group pair, or why it has
    /// none ([`group_routing`]).
    pub async fn routing(&self) -> Result<GroupRouting, ProviderError> {
        group_routing(&self.aws, &self.settings.application, &self.settings.deployment_group).await
    }

    /// The replacement's share of the production listener's traffic
    /// ([`replacement_weight`]).
    pub async fn replacement_weight(&self, pair: &BlueGreen) -> Result<u8, ProviderError> {
        replacement_weight(&self.aws, pair).await
    }

    /// Which target group of `pair` the deployment about to start brings
    /// up ([`replacement`]).
    pub async fn replacement(&self, pair: &TargetGroupPair) -> Result<Result<BlueGreen, String>, ProviderError> {
        replacement(&self.aws, pair).await
    }
}

/// What a deployment group says about how its traffic reaches the release.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupRouting {
    /// The alarms it watches ([`group_alarms`]).
    pub alarms: Vec<String>,
    /// Its blue/green target-group pair behind an ALB listener, or why it
    /// has none (a sentence).
    pub pair: Result<TargetGroupPair, String>,
}

/// A deployment group's blue/green target-group pair (ECS): the two target
/// groups CodeDeploy alternates between, and the production listener that
/// forwards to the one serving.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TargetGroupPair {
    /// The two target groups, by name, in CodeDeploy's order.
    pub target_groups: [String; 2],
    /// The production listener's ARN.
    pub listener: String,
}

/// Where a deployment's traffic goes: the production listener, the target
/// group it forwards to when the deployment starts (the original task
/// set's), and the pair's other one (the replacement's), as ARNs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BlueGreen {
    pub listener: String,
    pub stable: String,
    pub candidate: String,
}

/// The blue/green pair of a deployment group as GetDeploymentGroup
/// describes it (`loadBalancerInfo.targetGroupPairInfoList[0]`: two
/// `targetGroups` and `prodTrafficRoute.listenerArns`, at most one, as the
/// CodeDeploy API reference's `TargetGroupPairInfo` and `TrafficRoute`
/// say), or why there is none: an in-place or EC2 blue/green group (a
/// single target group in `targetGroupInfoList`, or classic ELBs), a
/// Lambda group, a group without a load balancer.
pub fn target_group_pair(info: &DeploymentGroupInfo) -> Result<TargetGroupPair, String> {
    if info.compute_platform() == Some(&ComputePlatform::Lambda) {
        return Err("a Lambda deployment group shifts between function versions, not target groups".into());
    }
    let Some(balancer) = info.load_balancer_info() else {
        return Err("the deployment group routes no traffic through a load balancer".into());
    };
    let Some(pair) = balancer.target_group_pair_info_list().first() else {
        return Err(
            "the deployment group names no blue/green target-group pair (in-place, or EC2 blue/green with a single target group): \
             sluice cannot tell its new instances' traffic from the old"
                .into(),
        );
    };
    let names: Vec<&str> = pair.target_groups().iter().filter_map(|t| t.name()).filter(|n| !n.is_empty()).collect();
    let [first, second] = names.as_slice() else {
        return Err(format!("the deployment group's target-group pair names {} target groups, not 2", names.len()));
    };
    if first == second {
        return Err(format!("the deployment group's target-group pair names {first} twice"));
    }
    let listener = pair.prod_traffic_route().and_then(|r| r.listener_arns().first()).filter(|l| !l.is_empty());
    let Some(listener) = listener else {
        return Err("the deployment group's target-group pair has no production listener".into());
    };
    Ok(TargetGroupPair { target_groups: [(*first).to_owned(), (*second).to_owned()], listener: listener.clone() })
}

/// Reads a deployment group's alarms and blue/green pair in one
/// GetDeploymentGroup call.
pub async fn group_routing(aws: &Aws, application: &str, group: &str) -> Result<GroupRouting, ProviderError> {
    let operation = format!("read deployment group {application}/{group}");
    let out = get_deployment_group(aws, application, group, &operation).await?;
    let Some(info) = out.deployment_group_info() else {
        return Err(fail(&operation, "CodeDeploy described no deployment group".into()));
    };
    Ok(GroupRouting { alarms: alarms_of(info), pair: target_group_pair(info) })
}

/// Which of `pair` is the replacement: the target group the production
/// listener does NOT forward to now, before the deployment starts (ECS
/// blue/green brings the replacement task set up behind the idle target
/// group and moves the listener to it). `Ok(Err(why))` when the listener
/// does not tell: it forwards to both (a deployment is shifting already)
/// or to neither. Reads the listener (`DescribeListeners`) and the groups'
/// ARNs (`DescribeTargetGroups`) with the ELBv2 API.
pub async fn replacement(aws: &Aws, pair: &TargetGroupPair) -> Result<Result<BlueGreen, String>, ProviderError> {
    let operation = format!("read listener {} and target groups {}", pair.listener, pair.target_groups.join(", "));
    let elb = aws_sdk_elasticloadbalancingv2::Client::new(aws.config(PROVIDER).await?);
    let groups = elb
        .describe_target_groups()
        .set_names(Some(pair.target_groups.to_vec()))
        .send()
        .await
        .map_err(|e| sdk_error(PROVIDER, &operation, e))?;
    let arn_of = |name: &str| {
        groups
            .target_groups()
            .iter()
            .find(|g| g.target_group_name() == Some(name))
            .and_then(|g| g.target_group_arn())
            .map(str::to_owned)
            .ok_or_else(|| fail(&operation, format!("no target group named {name}")))
    };
    let arns = [arn_of(&pair.target_groups[0])?, arn_of(&pair.target_groups[1])?];
    // Every target group the default forward action sends traffic to.
    let forwarded: Vec<String> = forward_weights(&elb, &pair.listener, &operation)
        .await?
        .into_iter()
        .filter(|(_, weight)| *weight > 0)
        .map(|(arn, _)| arn)
        .collect();
    Ok(pick_replacement(&pair.listener, &arns, &forwarded))
}

/// The target groups of `listener`'s default forward action with their
/// weights (AWS omits the weight of a single group: it takes all, 1 here),
/// read with `DescribeListeners`.
async fn forward_weights(
    elb: &aws_sdk_elasticloadbalancingv2::Client,
    listener: &str,
    operation: &str,
) -> Result<Vec<(String, u32)>, ProviderError> {
    use aws_sdk_elasticloadbalancingv2::types::ActionTypeEnum;
    let listeners =
        elb.describe_listeners().listener_arns(listener).send().await.map_err(|e| sdk_error(PROVIDER, operation, e))?;
    let Some(listener) = listeners.listeners().first() else {
        return Err(fail(operation, format!("no listener {listener}")));
    };
    let mut weights = Vec::new();
    for action in listener.default_actions().iter().filter(|a| a.r#type() == Some(&ActionTypeEnum::Forward)) {
        match action.forward_config().map(|c| c.target_groups()).filter(|t| !t.is_empty()) {
            Some(tuples) => weights.extend(tuples.iter().filter_map(|t| {
                t.target_group_arn().map(|arn| (arn.to_owned(), u32::try_from(t.weight().unwrap_or(1)).unwrap_or(0)))
            })),
            None => weights.extend(action.target_group_arn().map(|arn| (arn.to_owned(), 1))),
        }
    }
    Ok(weights)
}

/// The share of the production listener's traffic, in percent, that its
/// default forward action sends to the replacement target group
/// (`pair.candidate`) against the original (`pair.stable`), as CodeDeploy
/// shifts it (ECS blue/green moves the weights of the listener's weighted
/// forward action step by step): read with `DescribeListeners`. Target
/// groups outside the pair do not count; a listener that forwards to
/// neither of the two reads 0.
pub async fn replacement_weight(aws: &Aws, pair: &BlueGreen) -> Result<u8, ProviderError> {
    let operation = format!("read the weights of listener {}", pair.listener);
    let elb = aws_sdk_elasticloadbalancingv2::Client::new(aws.config(PROVIDER).await?);
    Ok(share_of(pair, &forward_weights(&elb, &pair.listener, &operation).await?))
}

/// The pure part of [`replacement_weight`]: the replacement's share of the
/// pair's weights, rounded to the nearest percent.
pub fn share_of(pair: &BlueGreen, weights: &[(String, u32)]) -> u8 {
    let sum = |arn: &str| weights.iter().filter(|(a, _)| a == arn).map(|(_, w)| u64::from(*w)).sum::<u64>();
    let (candidate, stable) = (sum(&pair.candidate), sum(&pair.stable));
    let total = candidate + stable;
    if total == 0 {
        return 0;
    }
    u8::try_from((candidate * 100 + total / 2) / total).unwrap_or(100)
}

/// The pure part of [`replacement`]: with the pair's ARNs and the ones the
/// listener forwards to, the original and the replacement.
pub fn pick_replacement(listener: &str, pair: &[String; 2], forwarded: &[String]) -> Result<BlueGreen, String> {
    let serves = |arn: &String| forwarded.contains(arn);
    match (serves(&pair[0]), serves(&pair[1])) {
        (true, false) => {
            Ok(BlueGreen { listener: listener.to_owned(), stable: pair[0].clone(), candidate: pair[1].clone() })
        }
        (false, true) => {
            Ok(BlueGreen { listener: listener.to_owned(), stable: pair[1].clone(), candidate: pair[0].clone() })
        }
        (true, true) => Err(format!(
            "the production listener {listener} forwards to both target groups of the pair: a deployment is shifting traffic already"
        )),
        (false, false) => Err(format!(
            "the production listener {listener} forwards to neither target group of the pair ({}, {})",
            pair[0], pair[1]
        )),
    }
}

fn fail(operation: &str, message: String) -> ProviderError {
    ProviderError { provider: PROVIDER, operation: operation.to_owned(), message, transient: false, attempts: 1 }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_codedeploy::types::{ElbInfo, LoadBalancerInfo, TargetGroupInfo, TargetGroupPairInfo, TrafficRoute};

    const LISTENER: &str =
        "arn:aws:elasticloadbalancing:eu-west-1:123456789012:listener/app/shop/50dc6c495c0c9188/f2f7dc8efc522ab2";

    fn group(balancer: Option<LoadBalancerInfo>, platform: ComputePlatform) -> DeploymentGroupInfo {
        DeploymentGroupInfo::builder().compute_platform(platform).set_load_balancer_info(balancer).build()
    }

    fn pair_info(names: &[&str], listeners: &[&str]) -> LoadBalancerInfo {
        let mut pair = TargetGroupPairInfo::builder().prod_traffic_route(
            TrafficRoute::builder().set_listener_arns(Some(listeners.iter().map(|l| l.to_string()).collect())).build(),
        );
        for name in names {
            pair = pair.target_groups(TargetGroupInfo::builder().name(*name).build());
        }
        LoadBalancerInfo::builder().target_group_pair_info_list(pair.build()).build()
    }

    #[test]
    fn an_ecs_group_with_a_pair_and_a_listener_has_a_pair() {
        let info = group(Some(pair_info(&["shop-blue", "shop-green"], &[LISTENER])), ComputePlatform::Ecs);
        assert_eq!(
            target_group_pair(&info),
            Ok(TargetGroupPair { target_groups: ["shop-blue".into(), "shop-green".into()], listener: LISTENER.into() })
        );
    }

    #[test]
    fn groups_without_a_pair_say_why() {
        let cases = [
            (group(None, ComputePlatform::Ecs), "routes no traffic through a load balancer"),
            (
                group(
                    Some(
                        LoadBalancerInfo::builder()
                            .target_group_info_list(TargetGroupInfo::builder().name("web").build())
                            .build(),
                    ),
                    ComputePlatform::Server,
                ),
                "names no blue/green target-group pair",
            ),
            (
                group(
                    Some(LoadBalancerInfo::builder().elb_info_list(ElbInfo::builder().name("classic").build()).build()),
                    ComputePlatform::Server,
                ),
                "names no blue/green target-group pair",
            ),
            (group(Some(pair_info(&["a", "b"], &[LISTENER])), ComputePlatform::Lambda), "Lambda"),
            (group(Some(pair_info(&["a"], &[LISTENER])), ComputePlatform::Ecs), "names 1 target groups, not 2"),
            (group(Some(pair_info(&["a", "a"], &[LISTENER])), ComputePlatform::Ecs), "names a twice"),
            (group(Some(pair_info(&["a", "b"], &[])), ComputePlatform::Ecs), "no production listener"),
        ];
        for (info, why) in cases {
            let said = target_group_pair(&info).expect_err("no pair");
            assert!(said.contains(why), "{why:?} in {said:?}");
        }
    }

    #[test]
    fn the_replacement_is_the_group_the_listener_does_not_serve() {
        let pair = ["arn:tg/blue".to_owned(), "arn:tg/green".to_owned()];
        let on_blue = pick_replacement(LISTENER, &pair, &["arn:tg/blue".into()]).expect("blue serves");
        assert_eq!((on_blue.stable.as_str(), on_blue.candidate.as_str()), ("arn:tg/blue", "arn:tg/green"));
        let on_green = pick_replacement(LISTENER, &pair, &["arn:tg/green".into()]).expect("green serves");
        assert_eq!((on_green.stable.as_str(), on_green.candidate.as_str()), ("arn:tg/green", "arn:tg/blue"));
        assert_eq!(on_green.listener, LISTENER);
        // A group outside the pair does not count.
        let other = pick_replacement(LISTENER, &pair, &["arn:tg/other".into(), "arn:tg/green".into()]).expect("green");
        assert_eq!(other.candidate, "arn:tg/blue");
        let both = pick_replacement(LISTENER, &pair, &pair).expect_err("both serve");
        assert!(both.contains("forwards to both"), "{both}");
        let neither = pick_replacement(LISTENER, &pair, &["arn:tg/other".into()]).expect_err("neither");
        assert!(neither.contains("forwards to neither"), "{neither}");
    }

    #[test]
    fn the_replacement_weight_is_its_share_of_the_pair() {
        let pair =
            BlueGreen { listener: LISTENER.into(), stable: "arn:tg/blue".into(), candidate: "arn:tg/green".into() };
        let w = |tuples: &[(&str, u32)]| {
            share_of(&pair, &tuples.iter().map(|(a, w)| ((*a).to_owned(), *w)).collect::<Vec<_>>())
        };
        assert_eq!(w(&[("arn:tg/blue", 1)]), 0);
        assert_eq!(w(&[("arn:tg/green", 1)]), 100);
        assert_eq!(w(&[("arn:tg/blue", 90), ("arn:tg/green", 10)]), 10);
        assert_eq!(w(&[("arn:tg/blue", 9), ("arn:tg/green", 1)]), 10);
        assert_eq!(w(&[("arn:tg/blue", 2), ("arn:tg/green", 1)]), 33);
        assert_eq!(w(&[("arn:tg/blue", 100), ("arn:tg/green", 0)]), 0);
        // A group outside the pair does not count; neither of the two is 0.
        assert_eq!(w(&[("arn:tg/other", 50), ("arn:tg/blue", 50), ("arn:tg/green", 50)]), 50);
        assert_eq!(w(&[("arn:tg/other", 1)]), 0);
        assert_eq!(w(&[]), 0);
    }
}
