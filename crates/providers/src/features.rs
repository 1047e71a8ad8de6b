//! Which providers this build has, and the refusal of a config that needs
//! one it left out.
//!
//! The AWS providers (the ALB and CodeDeploy routers, the CloudWatch source,
//! CloudWatch deployment metrics) come with the `aws` feature, the GitHub
//! ones (the github ledger, the gate's GitHub checks, the dispatch hand-off,
//! `dora-report --source github`) with `github`; both are on by default and
//! in every released binary. A lean build (`--no-default-features`, what
//! `scripts/demo.sh` builds) compiles neither SDK and keeps the embedded
//! router, probes, Prometheus and the file ledger.
//!
//! [`check`] runs where a step loads its config, before anything is built
//! from it: a key that needs a left-out provider is bad input (exit 2) that
//! names the key. It must never let such a key through silently, and never
//! refuse anything in a build that has both features.

use sluice_core::config::{
    Config, DeploymentMetricsConfig, GateConfig, Handoff, LedgerConfig, RouterConfig, SourceConfig,
};

/// Whether this build has the AWS providers.
pub const AWS: bool = cfg!(feature = "aws");
/// Whether this build has the GitHub providers.
pub const GITHUB: bool = cfg!(feature = "github");

/// A config key that needs a provider this build left out.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "`{key}` ({what}): this sluice was built without {support} support; build with `--features {feature}` (or the released binary)"
)]
pub struct Unsupported {
    /// The dotted key, as config errors name it (`environment[0].router`).
    pub key: String,
    /// What the key asks for (`kind = "alb"`).
    pub what: String,
    /// `AWS` or `GitHub`.
    pub support: &'static str,
    /// The Cargo feature that brings it: `aws` or `github`.
    pub feature: &'static str,
}

impl Unsupported {
    fn aws(key: String, what: &str) -> Unsupported {
        Unsupported { key, what: what.to_owned(), support: "AWS", feature: "aws" }
    }

    fn github(key: String, what: &str) -> Unsupported {
        Unsupported { key, what: what.to_owned(), support: "GitHub", feature: "github" }
    }
}

/// The first key of `config` this build cannot serve, in the order the
/// config reads; `Ok` in a build with both features.
pub fn check(config: &Config) -> Result<(), Unsupported> {
    let mut refused = refusals(config);
    refused.retain(|u| (u.feature == "aws" && !AWS) || (u.feature == "github" && !GITHUB));
    match refused.into_iter().next() {
        Some(first) => Err(first),
        None => Ok(()),
    }
}

/// Every key of `config` that needs the `aws` or the `github` feature,
/// whatever this build has (so both halves are tested in every build).
pub fn refusals(config: &Config) -> Vec<Unsupported> {
    let mut out = Vec::new();
    if let LedgerConfig::Github {} = config.ledger {
        out.push(Unsupported::github("ledger".into(), "kind = \"github\""));
    }
    if let Handoff::Dispatch { .. } = config.handoff {
        out.push(Unsupported::github("handoff".into(), "kind = \"dispatch\""));
    }
    if let Some(DeploymentMetricsConfig::Cloudwatch { .. }) = config.deployment_metrics {
        out.push(Unsupported::aws("deployment_metrics".into(), "kind = \"cloudwatch\""));
    }
    sources(&mut out, &config.defaults.sources, "defaults");
    gate(&mut out, &config.defaults.gate, "defaults.gate");
    for (i, env) in config.environments.iter().enumerate() {
        let at = format!("environment[{i}]");
        if let Some(router) = &env.router {
            self::router(&mut out, router, &format!("{at}.router"));
        }
        sources(&mut out, &env.sources, &at);
        for (k, target) in env.targets.iter().enumerate() {
            self::router(&mut out, &target.router, &format!("{at}.target[{k}].router"));
            sources(&mut out, &target.sources, &format!("{at}.target[{k}]"));
        }
        gate(&mut out, &env.gate, &format!("{at}.gate"));
    }
    out
}

fn router(out: &mut Vec<Unsupported>, router: &RouterConfig, key: &str) {
    match router {
        RouterConfig::Local { .. } => {}
        RouterConfig::Alb { .. } => out.push(Unsupported::aws(key.to_owned(), "kind = \"alb\"")),
        RouterConfig::CodeDeploy { .. } => out.push(Unsupported::aws(key.to_owned(), "kind = \"codedeploy\"")),
    }
}

fn sources(out: &mut Vec<Unsupported>, sources: &[SourceConfig], prefix: &str) {
    for (k, source) in sources.iter().enumerate() {
        match source {
            SourceConfig::Prometheus { .. } => {}
            SourceConfig::Cloudwatch { .. } => {
                out.push(Unsupported::aws(format!("{prefix}.source[{k}]"), "kind = \"cloudwatch\""));
            }
        }
    }
}

fn gate(out: &mut Vec<Unsupported>, gate: &GateConfig, prefix: &str) {
    if gate.required_checks.as_ref().is_some_and(|c| !c.is_empty()) {
        out.push(Unsupported::github(format!("{prefix}.required_checks"), "a GitHub check"));
    }
    if gate.incident_label.is_some() {
        out.push(Unsupported::github(format!("{prefix}.incident_label"), "a GitHub check"));
    }
    if gate.require_independent_approval == Some(true) {
        out.push(Unsupported::github(format!("{prefix}.require_independent_approval"), "a GitHub check"));
    }
}
