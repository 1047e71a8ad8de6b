//! Environments of several targets (`[[environment.target]]`): regions,
//! accounts or clusters behind their own routers, promoted in `waves`.
//!
//! What a target ends up with (its checks, sources and probes on top of the
//! environment's), the waves in force, and what makes targets and waves
//! acceptable. An environment names either one `router` or targets; the
//! single router is the one-target, one-wave case and keeps its own shape.
//!
//! Never reads a file or talks to a router.

use super::{AnalysisMode, Config, Environment, ProbeConfig, RouterConfig, SourceConfig, TargetConfig};
use crate::names;
use crate::strategy::MAX_STAGE_DURATION;
use sluice_analysis::CheckSpec;

/// A refusal: the dotted key it is about, and what is wrong with how to fix it.
type Refusal = (String, String);

impl Environment {
    /// Whether the environment is served by several targets rather than
    /// one `router`.
    pub fn has_targets(&self) -> bool {
        !self.targets.is_empty()
    }

    /// The waves in force, as target names: `waves`, else one wave per
    /// target in the order listed. Empty for a single-router environment.
    pub fn waves(&self) -> Vec<Vec<String>> {
        match &self.waves {
            Some(waves) => waves.clone(),
            None => self.targets.iter().map(|t| vec![t.name.clone()]).collect(),
        }
    }

    /// The target named `name`.
    pub fn target(&self, name: &str) -> Option<&TargetConfig> {
        self.targets.iter().find(|t| t.name == name)
    }

    /// The 0-based wave a target is in.
    pub fn wave_of(&self, name: &str) -> Option<usize> {
        self.waves().iter().position(|w| w.iter().any(|t| t == name))
    }
}

/// `base` with `extra` on top: an entry of `extra` replaces the one of the
/// same name in `base`, else it is added.
fn on_top<T: Clone>(base: Vec<T>, extra: &[T], name: impl Fn(&T) -> &str) -> Vec<T> {
    let mut all = base;
    for item in extra {
        match all.iter().position(|b| name(b) == name(item)) {
            Some(i) => all[i] = item.clone(),
            None => all.push(item.clone()),
        }
    }
    all
}

impl Config {
    /// The checks in force for a target: none where the environment's
    /// analysis is `none`, else the environment's with the target's on top.
    pub fn checks_for_target(&self, env: &Environment, target: &TargetConfig) -> Vec<CheckSpec> {
        if self.analysis_for(env) == AnalysisMode::None {
            return Vec::new();
        }
        on_top(self.checks_for(env), &target.checks, |c| &c.name)
    }

    /// The metric sources in force for a target: the environment's with the
    /// target's on top.
    pub fn sources_for_target(&self, env: &Environment, target: &TargetConfig) -> Vec<SourceConfig> {
        on_top(self.sources_for(env), &target.sources, SourceConfig::name)
    }

    /// The probes in force for a target: the environment's with the
    /// target's on top.
    pub fn probes_for_target(&self, env: &Environment, target: &TargetConfig) -> Vec<ProbeConfig> {
        on_top(self.probes_for(env), &target.probes, |p| &p.name)
    }

    /// An environment's router or targets, and its waves: exactly one of
    /// `router` and `[[environment.target]]`; target names unique; every
    /// target in exactly one wave; no empty wave; each target's router and
    /// checks on their own (the caller checks them like the environment's).
    pub(super) fn validate_targets(&self, i: usize, env: &Environment) -> Result<(), Refusal> {
        let at = |key: &str| format!("environment[{i}].{key}");
        match (&env.router, env.has_targets()) {
            (Some(_), true) => {
                return Err((
                    at("target"),
                    format!(
                        "environment {:?} names a router and [[environment.target]] tables; give either one router, \
                         or targets (each with its own router), not both",
                        env.name
                    ),
                ));
            }
            (None, false) => {
                return Err((
                    at("router"),
                    format!(
                        "environment {:?} has no router: add router = {{ kind = \"local\", admin_url = \"...\" }} \
                         (or an alb or codedeploy router), or [[environment.target]] tables for several",
                        env.name
                    ),
                ));
            }
            (Some(_), false) => {
                for key in ["waves", "bake"] {
                    let given = if key == "waves" { env.waves.is_some() } else { env.bake.is_some() };
                    if given {
                        return Err((
                            at(key),
                            format!(
                                "`{key}` orders targets, but environment {:?} has one router and no \
                                 [[environment.target]] tables; remove `{key}`, or give targets instead of the router",
                                env.name
                            ),
                        ));
                    }
                }
                return Ok(());
            }
            (None, true) => {}
        }
        for (k, target) in env.targets.iter().enumerate() {
            let key = |field: &str| at(&format!("target[{k}].{field}"));
            names::check("target name", &target.name).map_err(|m| (key("name"), m))?;
            if env.targets[..k].iter().any(|t| t.name == target.name) {
                return Err((
                    key("name"),
                    format!(
                        "target {:?} is defined twice in environment {:?}; give each target its own name",
                        target.name, env.name
                    ),
                ));
            }
            if let RouterConfig::CodeDeploy { .. } = target.router {
                return Err((
                    key("router"),
                    format!(
                        "target {:?} has a codedeploy router, which owns its own shift and cannot be held to a \
                         wave yet; use a local or alb router for targets, or one codedeploy router for the \
                         whole environment",
                        target.name
                    ),
                ));
            }
            if let Some(other) = env.targets[..k].iter().find(|t| same_router(&t.router, &target.router)) {
                return Err((
                    key("router"),
                    format!(
                        "targets {:?} and {:?} drive the same router; each target needs its own",
                        other.name, target.name
                    ),
                ));
            }
        }
        self.validate_waves(i, env)?;
        if let Some(bake) = env.bake {
            if bake.is_zero() {
                return Err((at("bake"), "bake must be more than 0 (or left out for none), e.g. \"5m\"".into()));
            }
            if bake > MAX_STAGE_DURATION {
                return Err((at("bake"), "bake must be at most 30 days, e.g. \"5m\"".into()));
            }
        }
        Ok(())
    }

    fn validate_waves(&self, i: usize, env: &Environment) -> Result<(), Refusal> {
        let key = format!("environment[{i}].waves");
        let defined = || env.targets.iter().map(|t| t.name.as_str()).collect::<Vec<_>>().join(", ");
        let Some(waves) = &env.waves else { return Ok(()) };
        if waves.is_empty() {
            return Err((
                key,
                format!(
                    "waves = [] promotes no target; list every target of {:?} in a wave, e.g. [[\"a\"], [\"b\"]]",
                    env.name
                ),
            ));
        }
        let mut seen: Vec<(&str, usize)> = Vec::new();
        for (w, wave) in waves.iter().enumerate() {
            if wave.is_empty() {
                return Err((
                    key,
                    format!("wave {} is empty; every wave names at least one target (or remove it)", w + 1),
                ));
            }
            for name in wave {
                if env.target(name).is_none() {
                    return Err((
                        key,
                        format!(
                            "wave {} names target {name:?}, which environment {:?} does not define (it has {}); \
                             add an [[environment.target]] table with name = {name:?}, or fix the name",
                            w + 1,
                            env.name,
                            defined()
                        ),
                    ));
                }
                if let Some((_, first)) = seen.iter().find(|(n, _)| n == name) {
                    let place = if *first == w {
                        format!("twice in wave {}", w + 1)
                    } else {
                        format!("in wave {} and in wave {}", first + 1, w + 1)
                    };
                    return Err((key, format!("target {name:?} is {place}; a target is promoted in exactly one wave")));
                }
                seen.push((name, w));
            }
        }
        if let Some(missing) = env.targets.iter().find(|t| !seen.iter().any(|(n, _)| *n == t.name)) {
            return Err((
                key,
                format!(
                    "target {:?} is in no wave, so it would never get the release; add it to a wave, or remove \
                     its [[environment.target]] table",
                    missing.name
                ),
            ));
        }
        Ok(())
    }
}

/// Whether two routers are the same one (one admin URL, one listener or rule).
fn same_router(a: &RouterConfig, b: &RouterConfig) -> bool {
    match (a, b) {
        (RouterConfig::Local { admin_url: x }, RouterConfig::Local { admin_url: y }) => {
            x.trim_end_matches('/') == y.trim_end_matches('/')
        }
        (
            RouterConfig::Alb { listener_arn: l1, rule_arn: r1, .. },
            RouterConfig::Alb { listener_arn: l2, rule_arn: r2, .. },
        ) => l1 == l2 && r1 == r2,
        _ => false,
    }
}

#[cfg(test)]
mod tests;
