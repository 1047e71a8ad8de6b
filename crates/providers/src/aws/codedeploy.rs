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
//! Never creates or changes applications, deployment groups or configs.

use super::{Aws, AwsSettings, sdk_error};
use crate::ProviderError;
use aws_sdk_codedeploy::Client;
use aws_sdk_codedeploy::types::{
    AppSpecContent, AutoRollbackConfiguration, AutoRollbackEvent, BundleType, DeploymentStatus, DeploymentWaitType,
    RevisionLocation, RevisionLocationType, S3Location,
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
    let client = Client::new(aws.config(PROVIDER).await?);
    let out = client
        .get_deployment_group()
        .application_name(application)
        .deployment_group_name(group)
        .send()
        .await
        .map_err(|e| sdk_error(PROVIDER, &operation, e))?;
    let alarms = out.deployment_group_info().and_then(|g| g.alarm_configuration());
    Ok(match alarms {
        Some(config) if config.enabled() => {
            config.alarms().iter().filter_map(|a| a.name()).map(str::to_owned).collect()
        }
        _ => Vec::new(),
    })
}

impl CodeDeployRouter {
    /// The deployment group's CloudWatch alarms ([`group_alarms`]).
    pub async fn alarms(&self) -> Result<Vec<String>, ProviderError> {
        group_alarms(&self.aws, &self.settings.application, &self.settings.deployment_group).await
    }
}

fn fail(operation: &str, message: String) -> ProviderError {
    ProviderError { provider: PROVIDER, operation: operation.to_owned(), message, transient: false, attempts: 1 }
}
