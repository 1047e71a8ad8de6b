//! Traffic routers: set the candidate's weight, read it back, promote.
//!
//! Every change is read back from the router before it is reported: a weight
//! is only "set" when the router says it is.

use crate::ProviderError;
#[cfg(feature = "aws")]
use crate::aws::alb::{AlbRouter, Resource};
#[cfg(feature = "aws")]
use crate::aws::codedeploy::{CodeDeployRouter, CodeDeploySettings, Revision};
#[cfg(feature = "aws")]
use crate::aws::{AssumeRole, AwsSettings};
use crate::error::error_chain;
use crate::retry::Backoff;
use crate::timeouts;
use sluice_core::config::RouterConfig;
use sluice_core::lease::{Acquired, Lease};
use sluice_core::record::RouterState;
use sluice_core::router_api::{StateView, StatsView};

/// A router of one environment. The AWS ones exist with the `aws` feature.
#[derive(Clone, Debug)]
pub enum Router {
    Local(LocalRouter),
    /// An Application Load Balancer listener or rule (see `crate::aws::alb`).
    #[cfg(feature = "aws")]
    Alb(AlbRouter),
    /// AWS CodeDeploy, which owns the shift (see `crate::aws::codedeploy`).
    #[cfg(feature = "aws")]
    CodeDeploy(CodeDeployRouter),
}

impl Router {
    /// The router a config entry describes.
    ///
    /// In a build without the `aws` feature the caller must have refused an
    /// AWS router with [`crate::features::check`] (every step does, where it
    /// loads the config).
    pub fn from_config(config: &RouterConfig, backoff: Backoff) -> Router {
        match config {
            RouterConfig::Local { admin_url } => Router::Local(LocalRouter::new(admin_url, backoff)),
            #[cfg(feature = "aws")]
            RouterConfig::Alb {
                listener_arn, rule_arn, stable_target_group, candidate_target_group, region, ..
            } => {
                let resource = match rule_arn {
                    Some(rule) => Resource::Rule(rule.clone()),
                    None => Resource::Listener(listener_arn.clone()),
                };
                // The region defaults to the listener's, so the environment
                // cannot point sluice at the wrong one.
                let region = region.clone().or_else(|| listener_arn.split(':').nth(3).map(str::to_owned));
                let role = AssumeRole::from_config(config.assume_role());
                let settings = AwsSettings { region, role, ..AwsSettings::default() };
                Router::Alb(AlbRouter::new(settings, resource, stable_target_group, candidate_target_group))
            }
            #[cfg(feature = "aws")]
            RouterConfig::CodeDeploy {
                application,
                deployment_group,
                deployment_config,
                appspec,
                s3_revision,
                region,
                poll_interval,
                timeout,
                ..
            } => {
                let revision = match (appspec, s3_revision.as_deref().map(sluice_core::config::parse_s3_revision)) {
                    (Some(path), _) => Revision::AppSpec(path.clone()),
                    (None, Some(Ok((bucket, key, bundle)))) => Revision::S3 { bucket, key, bundle: bundle.to_owned() },
                    // Validation refused any other shape; an empty AppSpec
                    // path fails at the first deployment with its name.
                    (None, _) => Revision::AppSpec(std::path::PathBuf::new()),
                };
                let settings = CodeDeploySettings {
                    application: application.clone(),
                    deployment_group: deployment_group.clone(),
                    deployment_config: deployment_config.clone(),
                    revision,
                    poll_interval: *poll_interval,
                    timeout: *timeout,
                };
                Router::CodeDeploy(CodeDeployRouter::new(
                    AwsSettings {
                        region: region.clone(),
                        role: AssumeRole::from_config(config.assume_role()),
                        ..AwsSettings::default()
                    },
                    settings,
                ))
            }
            // Never reached: a step refuses such a config where it loads it
            // (`features::check`, exit 2 naming the key), before any router
            // is built from it.
            #[cfg(not(feature = "aws"))]
            RouterConfig::Alb { .. } | RouterConfig::CodeDeploy { .. } => {
                unreachable!("an AWS router in a build without AWS support: the config is refused when it is loaded")
            }
        }
    }

    /// The short name of the router kind (`local`, `alb`).
    pub fn kind(&self) -> &'static str {
        match self {
            Router::Local(_) => "local",
            #[cfg(feature = "aws")]
            Router::Alb(_) => "alb",
            #[cfg(feature = "aws")]
            Router::CodeDeploy(_) => "codedeploy",
        }
    }

    /// The router's state as it is now.
    pub async fn state(&self) -> Result<RouterState, ProviderError> {
        match self {
            Router::Local(r) => r.state().await.map(|s| s.into()),
            #[cfg(feature = "aws")]
            Router::Alb(r) => r.state().await,
            #[cfg(feature = "aws")]
            Router::CodeDeploy(r) => r.state().await,
        }
    }

    /// Takes or renews the router's own environment lease, where it keeps
    /// one (an ALB: a tag on the listener, [`crate::aws::lease`]); `None`
    /// for the others. `Err(holder)` inside: another deployment holds it.
    #[cfg_attr(not(feature = "aws"), allow(unused_variables))]
    pub async fn take_lease(
        &self,
        want: &Lease,
        grace: jiff::SignedDuration,
    ) -> Result<Option<Result<Acquired, Box<Lease>>>, ProviderError> {
        match self {
            #[cfg(feature = "aws")]
            Router::Alb(r) => r.take_lease(want, grace, crate::aws::lease::SETTLE).await.map(Some),
            _ => Ok(None),
        }
    }

    /// Gives up the router's lease of `record_id` (of `app` in
    /// `environment`), if it holds one: the same three names as
    /// `Ledger::release_lease`.
    #[cfg_attr(not(feature = "aws"), allow(unused_variables))]
    pub async fn release_lease(&self, app: &str, environment: &str, record_id: &str) -> Result<bool, ProviderError> {
        match self {
            #[cfg(feature = "aws")]
            Router::Alb(r) => r.release_lease(app, environment, record_id).await,
            _ => Ok(false),
        }
    }

    /// Whether [`Router::restore`] puts back the whole saved state (ALB: all
    /// weights, stickiness and roles), rather than only "100% stable".
    pub fn restores_exactly(&self) -> bool {
        self.is_alb() || self.is_codedeploy()
    }

    /// Whether this is the embedded router.
    pub fn is_local(&self) -> bool {
        matches!(self, Router::Local(_))
    }

    /// Whether this is an ALB router (never, without the `aws` feature).
    pub fn is_alb(&self) -> bool {
        #[cfg(feature = "aws")]
        return matches!(self, Router::Alb(_));
        #[cfg(not(feature = "aws"))]
        false
    }

    /// Whether this is the CodeDeploy router (never, without the `aws`
    /// feature).
    pub fn is_codedeploy(&self) -> bool {
        #[cfg(feature = "aws")]
        return matches!(self, Router::CodeDeploy(_));
        #[cfg(not(feature = "aws"))]
        false
    }

    /// Puts back the state saved before a deployment. The local router only
    /// knows "all traffic to stable": it sets the candidate weight to 0.
    #[cfg_attr(not(feature = "aws"), allow(unused_variables))]
    pub async fn restore(&self, before: &RouterState) -> Result<RouterState, ProviderError> {
        match self {
            Router::Local(r) => r.set_weight(0).await.map(|s| s.into()),
            #[cfg(feature = "aws")]
            Router::Alb(r) => r.restore(before).await,
            #[cfg(feature = "aws")]
            // Stopping the deployment in flight makes CodeDeploy roll back.
            Router::CodeDeploy(r) => r.stop_active().await,
        }
    }

    /// Puts the candidate in place (for routers where it moves with each
    /// release) without sending it traffic.
    pub async fn set_candidate(&self, upstream: &str) -> Result<RouterState, ProviderError> {
        match self {
            Router::Local(r) => r.set_candidate(upstream).await.map(|s| s.into()),
            #[cfg(feature = "aws")]
            Router::Alb(r) => r.check_candidate(upstream).await,
            #[cfg(feature = "aws")]
            Router::CodeDeploy(_) => Err(codedeploy_owns("use a candidate upstream", upstream)),
        }
    }

    /// Sets the candidate's weight and returns the state read back from the
    /// router, which has the weight asked for or is an error.
    pub async fn set_weight(&self, weight: u8) -> Result<RouterState, ProviderError> {
        match self {
            Router::Local(r) => r.set_weight(weight).await.map(|s| s.into()),
            #[cfg(feature = "aws")]
            Router::Alb(r) => r.set_weight(weight).await,
            #[cfg(feature = "aws")]
            Router::CodeDeploy(r) if weight == 0 => r.stop_active().await,
            #[cfg(feature = "aws")]
            Router::CodeDeploy(_) => Err(codedeploy_owns("set a weight", &format!("{weight}%"))),
        }
    }

    /// Sends all traffic to `upstream` as the stable pool (undoing a
    /// promotion), with no candidate.
    pub async fn set_stable(&self, upstream: &str) -> Result<RouterState, ProviderError> {
        match self {
            Router::Local(r) => r.set_stable(upstream).await.map(|s| s.into()),
            #[cfg(feature = "aws")]
            Router::Alb(r) => r.set_stable(upstream).await,
            #[cfg(feature = "aws")]
            Router::CodeDeploy(_) => Err(codedeploy_owns("set the stable pool", upstream)),
        }
    }

    /// Makes the candidate the stable pool, with all traffic on it.
    pub async fn promote(&self) -> Result<RouterState, ProviderError> {
        match self {
            Router::Local(r) => r.promote().await.map(|s| s.into()),
            #[cfg(feature = "aws")]
            Router::Alb(r) => r.promote().await,
            #[cfg(feature = "aws")]
            Router::CodeDeploy(r) => r.promote().await,
        }
    }

    /// Cumulative per-pool counters, for the router metric source.
    pub async fn stats(&self) -> Result<StatsView, ProviderError> {
        match self {
            Router::Local(r) => r.stats().await,
            #[cfg(feature = "aws")]
            Router::Alb(_) | Router::CodeDeploy(_) => Err(ProviderError {
                provider: if self.is_alb() { "alb router" } else { "codedeploy router" },
                operation: "read per-pool counters".into(),
                message: "this router has no counters of its own; configure a cloudwatch metric source".into(),
                transient: false,
                attempts: 1,
            }),
        }
    }

    /// Whether the router itself counts requests per pool ([`Router::stats`]).
    pub fn has_stats(&self) -> bool {
        matches!(self, Router::Local(_))
    }
}

/// The embedded router's admin API client.
#[derive(Clone, Debug)]
pub struct LocalRouter {
    admin_url: String,
    client: reqwest::Client,
    backoff: Backoff,
}

const PROVIDER: &str = "local router";

impl LocalRouter {
    pub fn new(admin_url: &str, backoff: Backoff) -> LocalRouter {
        let client = reqwest::Client::builder()
            .timeout(timeouts::LOCAL_ROUTER)
            .connect_timeout(timeouts::LOCAL_ROUTER_CONNECT)
            .build()
            .expect("a client with timeouts always builds");
        LocalRouter { admin_url: admin_url.trim_end_matches('/').to_owned(), client, backoff }
    }

    async fn call<T: serde::de::DeserializeOwned>(
        &self,
        operation: &str,
        method: reqwest::Method,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> Result<T, ProviderError> {
        let url = format!("{}{path}", self.admin_url);
        self.backoff
            .run(|| async {
                let mut request = self.client.request(method.clone(), &url);
                if let Some(body) = &body {
                    request = request.json(body);
                }
                let fail = |message: String, transient: bool| ProviderError {
                    provider: PROVIDER,
                    operation: operation.to_owned(),
                    message,
                    transient,
                    attempts: 1,
                };
                let response = request.send().await.map_err(|e| fail(format!("{url}: {}", error_chain(&e)), true))?;
                let status = response.status();
                let text = response.text().await.map_err(|e| fail(error_chain(&e), true))?;
                if !status.is_success() {
                    let detail = serde_json::from_str::<serde_json::Value>(&text)
                        .ok()
                        .and_then(|v| v.get("error").and_then(|e| e.as_str()).map(str::to_owned))
                        .unwrap_or(text);
                    return Err(fail(format!("{url} answered {status}: {detail}"), status.is_server_error()));
                }
                serde_json::from_str(&text)
                    .map_err(|e| fail(format!("{url} answered something unexpected ({e}): {text:.200}"), false))
            })
            .await
    }

    pub async fn state(&self) -> Result<StateView, ProviderError> {
        self.call("read the router state", reqwest::Method::GET, "/v1/state", None).await
    }

    pub async fn set_candidate(&self, upstream: &str) -> Result<StateView, ProviderError> {
        let operation = format!("set the candidate upstream to {upstream}");
        let state: StateView = self
            .call(&operation, reqwest::Method::PUT, "/v1/upstreams", Some(serde_json::json!({ "candidate": upstream })))
            .await?;
        let confirmed = self.state().await?;
        match &confirmed.candidate {
            Some(p) if p.upstream.trim_end_matches('/') == upstream.trim_end_matches('/') => Ok(confirmed),
            other => Err(mismatch(&operation, format!("candidate {other:?}"), state.generation)),
        }
    }

    pub async fn set_weight(&self, weight: u8) -> Result<StateView, ProviderError> {
        let operation = format!("set the candidate weight to {weight}%");
        self.call::<StateView>(
            &operation,
            reqwest::Method::PUT,
            "/v1/weights",
            Some(serde_json::json!({ "candidate_weight": weight })),
        )
        .await?;
        let confirmed = self.state().await?;
        if confirmed.candidate_weight == weight {
            Ok(confirmed)
        } else {
            Err(mismatch(&operation, format!("weight {}%", confirmed.candidate_weight), confirmed.generation))
        }
    }

    pub async fn set_stable(&self, upstream: &str) -> Result<StateView, ProviderError> {
        self.set_weight(0).await?;
        let operation = format!("make {upstream} the stable upstream");
        self.call::<StateView>(
            &operation,
            reqwest::Method::PUT,
            "/v1/upstreams",
            Some(serde_json::json!({ "stable": upstream })),
        )
        .await?;
        let confirmed = self.state().await?;
        if confirmed.stable.upstream.trim_end_matches('/') == upstream.trim_end_matches('/')
            && confirmed.candidate_weight == 0
        {
            Ok(confirmed)
        } else {
            let found = format!("stable {} at weight {}%", confirmed.stable.upstream, confirmed.candidate_weight);
            Err(mismatch(&operation, found, confirmed.generation))
        }
    }

    pub async fn promote(&self) -> Result<StateView, ProviderError> {
        let before = self.state().await?;
        let Some(candidate) = before.candidate.clone() else {
            // Already promoted (or nothing to promote): idempotent when the
            // stable pool already serves everything.
            return Ok(before);
        };
        let operation = "promote the candidate".to_owned();
        self.call::<StateView>(&operation, reqwest::Method::POST, "/v1/promote", None).await?;
        let confirmed = self.state().await?;
        if confirmed.stable.upstream == candidate.upstream && confirmed.candidate_weight == 0 {
            Ok(confirmed)
        } else {
            let found = format!("stable {} at weight {}%", confirmed.stable.upstream, confirmed.candidate_weight);
            Err(mismatch(&operation, found, confirmed.generation))
        }
    }

    pub async fn stats(&self) -> Result<StatsView, ProviderError> {
        self.call("read the router stats", reqwest::Method::GET, "/v1/stats", None).await
    }
}

fn mismatch(operation: &str, found: String, generation: u64) -> ProviderError {
    ProviderError {
        provider: PROVIDER,
        operation: operation.to_owned(),
        message: format!("the router reads back {found} (generation {generation}); another writer may be changing it"),
        transient: false,
        attempts: 1,
    }
}

#[cfg(feature = "aws")]
fn codedeploy_owns(operation: &str, what: &str) -> ProviderError {
    ProviderError {
        provider: "codedeploy router",
        operation: format!("{operation} ({what})"),
        message: "CodeDeploy owns the traffic shift: run shift-traffic without --weight or --candidate-upstream, \
                  and choose the shift with the router's `deployment_config`"
            .into(),
        transient: false,
        attempts: 1,
    }
}
