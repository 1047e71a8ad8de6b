//! The ALB router: a weighted forward action between two target groups, on a
//! listener's default action or on one listener rule.
//!
//! - Weights are percentages in sluice and 0-999 on the wire; sluice writes
//!   the candidate's percentage and its complement, so the wire weights of
//!   the two groups always add up to 100.
//! - Before any traffic goes to the candidate group, `DescribeTargetHealth`
//!   must show a healthy target in it; every other state is reported by name.
//! - Every write is read back (`DescribeListeners` / `DescribeRules`) and is
//!   only reported when the weights and the stickiness read are the ones
//!   written. Actions other than the forward action, and the stickiness, are
//!   kept as they are.
//! - Which group is stable is kept on the listener (or rule) itself, as the
//!   tag `sluice:stable`, so that the roles swap at each promotion (blue and
//!   green take turns) and every job reads the same roles.
//!
//! Never touches target registration, health check settings or other rules.

use super::{Aws, AwsSettings, sdk_error};
use crate::ProviderError;
use aws_sdk_elasticloadbalancingv2::Client;
use aws_sdk_elasticloadbalancingv2::types::{
    Action, ActionTypeEnum, ForwardActionConfig, Tag, TargetGroupStickinessConfig, TargetGroupTuple,
    TargetHealthStateEnum,
};
use sluice_core::record::{RouterState, Stickiness, TargetGroupWeight};
use std::collections::BTreeMap;

const PROVIDER: &str = "alb router";
/// The tag on the listener or rule that names the stable target group.
pub const STABLE_TAG: &str = "sluice:stable";

/// What the router drives: a listener's default action or one rule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Resource {
    Listener(String),
    Rule(String),
}

impl Resource {
    pub fn arn(&self) -> &str {
        match self {
            Resource::Listener(arn) | Resource::Rule(arn) => arn,
        }
    }

    fn describe(&self) -> String {
        match self {
            Resource::Listener(arn) => format!("listener {}", short(arn)),
            Resource::Rule(arn) => format!("rule {}", short(arn)),
        }
    }
}

/// The ALB router of one environment.
#[derive(Clone, Debug)]
pub struct AlbRouter {
    aws: Aws,
    resource: Resource,
    /// The configured roles: stable first (until the tag says otherwise).
    pair: [String; 2],
}

/// The forward action as read.
#[derive(Clone, Debug)]
struct Live {
    actions: Vec<Action>,
    forward: usize,
    weights: Vec<TargetGroupWeight>,
    stickiness: Option<Stickiness>,
    stable_tag: Option<String>,
}

impl AlbRouter {
    /// A router for `resource`, forwarding between `stable` and `candidate`.
    pub fn new(settings: AwsSettings, resource: Resource, stable: &str, candidate: &str) -> AlbRouter {
        AlbRouter::with_aws(Aws::new(settings), resource, stable, candidate)
    }

    /// The same with an AWS config given (tests).
    pub fn with_aws(aws: Aws, resource: Resource, stable: &str, candidate: &str) -> AlbRouter {
        AlbRouter { aws, resource, pair: [stable.to_owned(), candidate.to_owned()] }
    }

    /// The listener or rule it drives.
    pub fn resource(&self) -> &Resource {
        &self.resource
    }

    pub(crate) async fn client(&self) -> Result<Client, ProviderError> {
        Ok(Client::new(self.aws.config(PROVIDER).await?))
    }

    /// The router's state as it is now.
    pub async fn state(&self) -> Result<RouterState, ProviderError> {
        let client = self.client().await?;
        let live = self.read(&client, "read the forward action").await?;
        self.to_state(&live, "read the forward action")
    }

    /// Sets the candidate's share to `weight` percent, after checking that
    /// the candidate group has a healthy target when `weight` > 0.
    pub async fn set_weight(&self, weight: u8) -> Result<RouterState, ProviderError> {
        let operation = format!("set the candidate weight to {weight}%");
        let client = self.client().await?;
        let live = self.read(&client, &operation).await?;
        let (stable, candidate) = self.roles(&live);
        if weight > 0 {
            self.check_health(&client, candidate, &operation).await?;
        }
        let weights = vec![
            TargetGroupWeight { arn: stable.to_owned(), weight: u16::from(100 - weight.min(100)) },
            TargetGroupWeight { arn: candidate.to_owned(), weight: u16::from(weight.min(100)) },
        ];
        let stickiness = live.stickiness.clone();
        self.write(&client, &live, &weights, stickiness.as_ref(), &operation).await?;
        let confirmed = self.read_back(&client, &weights, stickiness.as_ref(), None, &operation).await?;
        self.to_state(&confirmed, &operation)
    }

    /// Makes the candidate group the stable one with all the traffic: the
    /// weights first, then the `sluice:stable` tag. Nothing to do when the
    /// candidate takes no traffic (already promoted).
    pub async fn promote(&self) -> Result<RouterState, ProviderError> {
        let operation = "promote the candidate target group".to_owned();
        let client = self.client().await?;
        let live = self.read(&client, &operation).await?;
        let state = self.to_state(&live, &operation)?;
        if state.candidate_weight == 0 {
            return Ok(state);
        }
        let (stable, candidate) = self.roles(&live);
        let (stable, candidate) = (stable.to_owned(), candidate.to_owned());
        self.make_stable(&client, &live, &candidate, &stable, &operation).await
    }

    /// Sends all traffic to `target_group` and marks it stable (undoing a
    /// promotion).
    pub async fn set_stable(&self, target_group: &str) -> Result<RouterState, ProviderError> {
        let operation = format!("make {} the stable target group", short(target_group));
        let Some(other) = self.pair.iter().find(|arn| *arn != target_group).cloned() else {
            return Err(self.fail(&operation, "the target group is not one of the two configured".into()));
        };
        if !self.pair.iter().any(|arn| arn == target_group) {
            return Err(self.fail(
                &operation,
                format!("{target_group} is neither configured target group; sluice only swaps the two it knows"),
            ));
        }
        let client = self.client().await?;
        let live = self.read(&client, &operation).await?;
        self.make_stable(&client, &live, target_group, &other, &operation).await
    }

    /// Puts back exactly the state saved before a deployment: every target
    /// group's wire weight, the stickiness and the stable role.
    pub async fn restore(&self, before: &RouterState) -> Result<RouterState, ProviderError> {
        let operation = "restore the forward action saved before the deployment".to_owned();
        if before.kind != "alb" || before.resource.as_deref() != Some(self.resource.arn()) {
            return Err(self.fail(
                &operation,
                format!(
                    "the saved state is of {} {}, not of {}; restore it by hand",
                    before.kind,
                    before.resource.as_deref().unwrap_or("an unknown resource"),
                    self.resource.describe()
                ),
            ));
        }
        if before.target_groups.is_empty() {
            return Err(self.fail(&operation, "the saved state lists no target groups".into()));
        }
        let client = self.client().await?;
        let live = self.read(&client, &operation).await?;
        self.write(&client, &live, &before.target_groups, before.stickiness.as_ref(), &operation).await?;
        if let Some(stable) = &before.stable {
            self.tag_stable(&client, stable, &operation).await?;
        }
        let confirmed = self
            .read_back(&client, &before.target_groups, before.stickiness.as_ref(), before.stable.as_deref(), &operation)
            .await?;
        self.to_state(&confirmed, &operation)
    }

    /// Whether `arn` is the candidate group now (for `--candidate-upstream`).
    pub async fn check_candidate(&self, arn: &str) -> Result<RouterState, ProviderError> {
        let state = self.state().await?;
        if state.candidate.as_deref() == Some(arn) {
            Ok(state)
        } else {
            Err(self.fail(
                &format!("use {} as the candidate", short(arn)),
                format!(
                    "the candidate target group is {} (the one not tagged {STABLE_TAG}); deploy the release into it",
                    state.candidate.as_deref().unwrap_or("unknown")
                ),
            ))
        }
    }

    async fn make_stable(
        &self,
        client: &Client,
        live: &Live,
        stable: &str,
        other: &str,
        operation: &str,
    ) -> Result<RouterState, ProviderError> {
        let weights = vec![
            TargetGroupWeight { arn: stable.to_owned(), weight: 100 },
            TargetGroupWeight { arn: other.to_owned(), weight: 0 },
        ];
        let stickiness = live.stickiness.clone();
        self.write(client, live, &weights, stickiness.as_ref(), operation).await?;
        self.tag_stable(client, stable, operation).await?;
        let confirmed = self.read_back(client, &weights, stickiness.as_ref(), Some(stable), operation).await?;
        self.to_state(&confirmed, operation)
    }

    /// Stable and candidate, from the tag or else the config.
    fn roles<'a>(&'a self, live: &'a Live) -> (&'a str, &'a str) {
        let [first, second] = &self.pair;
        match live.stable_tag.as_deref() {
            Some(tag) if tag == second => (second, first),
            _ => (first, second),
        }
    }

    fn to_state(&self, live: &Live, operation: &str) -> Result<RouterState, ProviderError> {
        if let Some(stranger) = live.weights.iter().find(|w| w.weight > 0 && !self.pair.contains(&w.arn)) {
            return Err(self.fail(
                operation,
                format!(
                    "the forward action of {} sends traffic to target group {}, which is neither configured group; \
                     fix the config or the listener",
                    self.resource.describe(),
                    stranger.arn
                ),
            ));
        }
        let (stable, candidate) = self.roles(live);
        let total: u32 = live.weights.iter().map(|w| u32::from(w.weight)).sum();
        let on_candidate: u32 = live.weights.iter().filter(|w| w.arn == candidate).map(|w| u32::from(w.weight)).sum();
        let candidate_weight = (on_candidate * 100 + total / 2)
            .checked_div(total)
            .map_or(0, |percent| u8::try_from(percent).unwrap_or(100));
        Ok(RouterState {
            kind: "alb".into(),
            candidate_weight,
            stable: Some(stable.to_owned()),
            candidate: Some(candidate.to_owned()),
            resource: Some(self.resource.arn().to_owned()),
            target_groups: live.weights.clone(),
            stickiness: live.stickiness.clone(),
            ..RouterState::default()
        })
    }

    async fn read(&self, client: &Client, operation: &str) -> Result<Live, ProviderError> {
        let actions = match &self.resource {
            Resource::Listener(arn) => {
                let out = client
                    .describe_listeners()
                    .listener_arns(arn)
                    .send()
                    .await
                    .map_err(|e| sdk_error(PROVIDER, operation, e))?;
                let listener = out
                    .listeners()
                    .first()
                    .ok_or_else(|| self.fail(operation, format!("listener {arn} was not found")))?;
                listener.default_actions().to_vec()
            }
            Resource::Rule(arn) => {
                let out = client
                    .describe_rules()
                    .rule_arns(arn)
                    .send()
                    .await
                    .map_err(|e| sdk_error(PROVIDER, operation, e))?;
                let rule =
                    out.rules().first().ok_or_else(|| self.fail(operation, format!("rule {arn} was not found")))?;
                rule.actions().to_vec()
            }
        };
        let forward = actions.iter().position(|a| a.r#type() == Some(&ActionTypeEnum::Forward)).ok_or_else(|| {
            self.fail(
                operation,
                format!(
                    "{} has no forward action; give it one that forwards to the stable target group",
                    self.resource.describe()
                ),
            )
        })?;
        let action = &actions[forward];
        let (weights, stickiness) = match action.forward_config() {
            Some(config) if !config.target_groups().is_empty() => {
                let weights = config
                    .target_groups()
                    .iter()
                    .filter_map(|t| {
                        Some(TargetGroupWeight {
                            arn: t.target_group_arn()?.to_owned(),
                            // AWS omits the weight of a single group: it takes all.
                            weight: u16::try_from(t.weight().unwrap_or(1).clamp(0, 999)).unwrap_or(0),
                        })
                    })
                    .collect();
                let stickiness = config.target_group_stickiness_config().map(|s| Stickiness {
                    enabled: s.enabled().unwrap_or(false),
                    duration_seconds: s.duration_seconds(),
                });
                (weights, stickiness)
            }
            _ => match action.target_group_arn() {
                Some(arn) => (vec![TargetGroupWeight { arn: arn.to_owned(), weight: 1 }], None),
                None => (Vec::new(), None),
            },
        };
        let tags = client
            .describe_tags()
            .resource_arns(self.resource.arn())
            .send()
            .await
            .map_err(|e| sdk_error(PROVIDER, operation, e))?;
        let stable_tag = tags
            .tag_descriptions()
            .iter()
            .flat_map(|d| d.tags())
            .find(|t| t.key() == Some(STABLE_TAG))
            .and_then(|t| t.value())
            .filter(|v| self.pair.iter().any(|arn| arn == v))
            .map(str::to_owned);
        Ok(Live { actions, forward, weights, stickiness, stable_tag })
    }

    /// Writes the forward action with `weights`, keeping the other actions.
    async fn write(
        &self,
        client: &Client,
        live: &Live,
        weights: &[TargetGroupWeight],
        stickiness: Option<&Stickiness>,
        operation: &str,
    ) -> Result<(), ProviderError> {
        let mut config = ForwardActionConfig::builder();
        for w in weights {
            config = config.target_groups(
                TargetGroupTuple::builder().target_group_arn(&w.arn).weight(i32::from(w.weight)).build(),
            );
        }
        if let Some(s) = stickiness {
            let mut sticky = TargetGroupStickinessConfig::builder().enabled(s.enabled);
            if let Some(d) = s.duration_seconds {
                sticky = sticky.duration_seconds(d);
            }
            config = config.target_group_stickiness_config(sticky.build());
        }
        let old = &live.actions[live.forward];
        let mut forward = Action::builder().r#type(ActionTypeEnum::Forward).forward_config(config.build());
        if let Some(order) = old.order() {
            forward = forward.order(order);
        }
        let mut actions = live.actions.clone();
        actions[live.forward] = forward.build();
        match &self.resource {
            Resource::Listener(arn) => {
                client
                    .modify_listener()
                    .listener_arn(arn)
                    .set_default_actions(Some(actions))
                    .send()
                    .await
                    .map_err(|e| sdk_error(PROVIDER, operation, e))?;
            }
            Resource::Rule(arn) => {
                client
                    .modify_rule()
                    .rule_arn(arn)
                    .set_actions(Some(actions))
                    .send()
                    .await
                    .map_err(|e| sdk_error(PROVIDER, operation, e))?;
            }
        }
        Ok(())
    }

    async fn tag_stable(&self, client: &Client, stable: &str, operation: &str) -> Result<(), ProviderError> {
        client
            .add_tags()
            .resource_arns(self.resource.arn())
            .tags(Tag::builder().key(STABLE_TAG).value(stable).build())
            .send()
            .await
            .map_err(|e| sdk_error(PROVIDER, operation, e))?;
        Ok(())
    }

    /// Reads the forward action back and checks it is what was written.
    async fn read_back(
        &self,
        client: &Client,
        weights: &[TargetGroupWeight],
        stickiness: Option<&Stickiness>,
        stable: Option<&str>,
        operation: &str,
    ) -> Result<Live, ProviderError> {
        let live = self.read(client, operation).await?;
        let wanted: BTreeMap<&str, u16> = weights.iter().map(|w| (w.arn.as_str(), w.weight)).collect();
        let found: BTreeMap<&str, u16> = live.weights.iter().map(|w| (w.arn.as_str(), w.weight)).collect();
        let mut problems = Vec::new();
        if wanted != found {
            problems.push(format!("weights {} instead of {}", show(&found), show(&wanted)));
        }
        if normalise(stickiness) != normalise(live.stickiness.as_ref()) {
            problems.push(format!("stickiness {:?} instead of {:?}", live.stickiness, stickiness));
        }
        if let Some(stable) = stable
            && live.stable_tag.as_deref() != Some(stable)
        {
            problems.push(format!("{STABLE_TAG} = {:?} instead of {stable:?}", live.stable_tag));
        }
        if problems.is_empty() {
            Ok(live)
        } else {
            Err(self.fail(
                operation,
                format!(
                    "{} reads back {}; another writer may be changing it",
                    self.resource.describe(),
                    problems.join(" and ")
                ),
            ))
        }
    }

    async fn check_health(&self, client: &Client, target_group: &str, operation: &str) -> Result<(), ProviderError> {
        let out = client
            .describe_target_health()
            .target_group_arn(target_group)
            .send()
            .await
            .map_err(|e| sdk_error(PROVIDER, operation, e))?;
        let mut healthy = 0;
        let mut others: BTreeMap<String, (usize, Vec<String>)> = BTreeMap::new();
        for d in out.target_health_descriptions() {
            let health = d.target_health();
            match health.and_then(|h| h.state()) {
                Some(TargetHealthStateEnum::Healthy) => healthy += 1,
                state => {
                    let name = state.map_or("unknown".to_owned(), |s| s.as_str().to_owned());
                    let entry = others.entry(name).or_default();
                    entry.0 += 1;
                    if let Some(reason) = health.and_then(|h| h.reason()) {
                        let reason = reason.as_str().to_owned();
                        if !entry.1.contains(&reason) {
                            entry.1.push(reason);
                        }
                    }
                }
            }
        }
        if healthy > 0 {
            return Ok(());
        }
        let detail = if others.is_empty() {
            "it has no registered targets".to_owned()
        } else {
            others
                .iter()
                .map(|(state, (n, reasons))| {
                    if reasons.is_empty() {
                        format!("{n} {state}")
                    } else {
                        format!("{n} {state} ({})", reasons.join(", "))
                    }
                })
                .collect::<Vec<_>>()
                .join(", ")
        };
        Err(self.fail(
            operation,
            format!(
                "no traffic to target group {}: no healthy target ({detail}); wait for the health checks or fix the targets",
                short(target_group)
            ),
        ))
    }

    fn fail(&self, operation: &str, message: String) -> ProviderError {
        ProviderError { provider: PROVIDER, operation: operation.to_owned(), message, transient: false, attempts: 1 }
    }
}

/// Stickiness as it acts: a duration only matters when it is enabled.
fn normalise(s: Option<&Stickiness>) -> (bool, Option<i32>) {
    match s {
        Some(s) if s.enabled => (true, s.duration_seconds),
        _ => (false, None),
    }
}

fn show(weights: &BTreeMap<&str, u16>) -> String {
    let parts: Vec<String> = weights.iter().map(|(arn, w)| format!("{}={w}", short(arn))).collect();
    format!("[{}]", parts.join(", "))
}

/// The readable part of an ARN: `targetgroup/green/73e2d6bc24d8a067` →
/// `green`; a listener or rule keeps its last two parts.
pub fn short(arn: &str) -> &str {
    let resource = arn.splitn(6, ':').nth(5).unwrap_or(arn);
    if let Some(rest) = resource.strip_prefix("targetgroup/") {
        return rest.split('/').next().unwrap_or(rest);
    }
    resource
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_names() {
        assert_eq!(
            short("arn:aws:elasticloadbalancing:eu-west-1:123456789012:targetgroup/green/73e2d6bc24d8a067"),
            "green"
        );
        assert_eq!(
            short("arn:aws:elasticloadbalancing:eu-west-1:123456789012:listener/app/shop/50dc/f2f7"),
            "listener/app/shop/50dc/f2f7"
        );
    }

    #[test]
    fn stickiness_duration_only_counts_when_enabled() {
        let off = Stickiness { enabled: false, duration_seconds: Some(300) };
        assert_eq!(normalise(Some(&off)), normalise(None));
        let on = Stickiness { enabled: true, duration_seconds: Some(300) };
        assert_ne!(normalise(Some(&on)), normalise(None));
    }
}
