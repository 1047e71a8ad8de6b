//! Whether a parsed config makes sense: names, ranges, routers, sources,
//! checks, gates, webhooks and GitHub keys, each refused with the dotted key
//! it is at and how to fix it.
//!
//! Never reads the file: `load` places the returned key in it.

use super::{
    AnalysisMode, Config, DeploymentMetricsConfig, Environment, GateConfig, Handoff, QueryVars, RouterConfig,
    SourceConfig, WebhookConfig, aws, time_zone,
};
use crate::names;
use crate::strategy::MAX_STAGE_DURATION;
use sluice_analysis::CheckSpec;
use std::time::Duration;

/// A refusal: the dotted key it is about, and what is wrong with how to fix it.
type Refusal = (String, String);

/// A table with the dotted key it is at.
type Placed<'a, T> = (String, &'a T);

/// A refusal inside a table whose prefix the caller adds.
type KeyRefusal = (&'static str, String);

impl Config {
    /// The first thing wrong with the config, in the order a reader meets
    /// the keys: top-level keys, defaults, each environment, then the keys
    /// that only make sense together.
    pub(super) fn validate(&self) -> Result<(), Refusal> {
        names::check("app", &self.app).map_err(|m| ("app".into(), m))?;
        self.validate_has_environments()?;
        self.validate_analysis()?;
        self.validate_deployment_metrics()?;
        self.validate_default_rollout()?;
        for (i, env) in self.environments.iter().enumerate() {
            self.validate_environment(i, env)?;
        }
        validate_checks(&self.defaults.checks, "defaults")?;
        validate_sources(&self.defaults.sources, "defaults")?;
        self.validate_queries()?;
        self.validate_gates()?;
        self.validate_notify()?;
        self.validate_github()
    }

    fn validate_has_environments(&self) -> Result<(), Refusal> {
        if self.environments.is_empty() {
            return Err((
                "environment".into(),
                "no environments: add [[environment]] tables in promotion order (dev, tst, prd)".into(),
            ));
        }
        Ok(())
    }

    fn validate_analysis(&self) -> Result<(), Refusal> {
        if !(self.analysis.policy.alpha > 0.0 && self.analysis.policy.alpha < 0.5) {
            return Err(("analysis.alpha".into(), "alpha must be between 0 and 0.5, e.g. 0.01".into()));
        }
        if self.interval() < Duration::from_millis(100) {
            return Err(("analysis.interval".into(), "interval must be at least 100ms".into()));
        }
        if let Some(min) = self.analysis.min_final_analysis {
            check_min_final_analysis(min, self.interval()).map_err(|m| ("analysis.min_final_analysis".into(), m))?;
        }
        Ok(())
    }

    fn validate_deployment_metrics(&self) -> Result<(), Refusal> {
        let Some(DeploymentMetricsConfig::Cloudwatch { namespace, region }) = &self.deployment_metrics else {
            return Ok(());
        };
        let printable = namespace.chars().all(|c| c.is_ascii_graphic() || c == ' ');
        if namespace.is_empty() || namespace.len() > 255 || !printable || namespace.starts_with("AWS/") {
            return Err((
                "deployment_metrics.namespace".into(),
                format!(
                    "{namespace:?} is not a custom CloudWatch namespace (1-255 printable characters, not AWS/...), e.g. \"Sluice/Deployments\""
                ),
            ));
        }
        if let Some(region) = region {
            aws::check_region(region).map_err(|m| ("deployment_metrics.region".to_owned(), m))?;
        }
        Ok(())
    }

    /// `[defaults]` strategy, timeouts and analysis mode.
    fn validate_default_rollout(&self) -> Result<(), Refusal> {
        if let Some(strategy) = &self.defaults.strategy {
            strategy.validate().map_err(|m| ("defaults.strategy".into(), m))?;
        }
        check_pause_timeout(self.defaults.pause_timeout).map_err(|m| ("defaults.pause_timeout".into(), m))?;
        check_lease_timeout(self.defaults.lease_timeout).map_err(|m| ("defaults.lease_timeout".into(), m))?;
        if self.defaults.analysis == Some(AnalysisMode::None) && !self.defaults.checks.is_empty() {
            return Err((
                "defaults.analysis".into(),
                format!(
                    "analysis = \"none\" runs no checks, but [defaults] also defines checks ({}); remove the \
                     [[defaults.check]] tables, or remove analysis = \"none\" so they run",
                    check_names(&self.defaults.checks)
                ),
            ));
        }
        Ok(())
    }

    /// An environment whose analysis is `none` has no checks of its own:
    /// checks written beside `analysis = "none"` would silently never run.
    fn validate_analysis_mode(&self, i: usize, env: &Environment) -> Result<(), Refusal> {
        if self.analysis_for(env) != AnalysisMode::None || env.checks.is_empty() {
            return Ok(());
        }
        let names = check_names(&env.checks);
        Err(if env.analysis.is_some() {
            (
                format!("environment[{i}].analysis"),
                format!(
                    "analysis = \"none\" runs no checks, but environment {:?} defines its own ({names}); remove \
                     its [[environment.check]] tables, or remove analysis = \"none\" so they run",
                    env.name
                ),
            )
        } else {
            (
                format!("environment[{i}].check[0]"),
                format!(
                    "environment {:?} defines checks ({names}) but inherits analysis = \"none\" from [defaults], so \
                     they would never run; add analysis = \"checks\" to this environment, or remove its checks",
                    env.name
                ),
            )
        })
    }

    /// One `[[environment]]` table on its own (its gate comes later).
    fn validate_environment(&self, i: usize, env: &Environment) -> Result<(), Refusal> {
        let at = |key: &str| format!("environment[{i}].{key}");
        names::check("environment name", &env.name).map_err(|m| (at("name"), m))?;
        if self.environments[..i].iter().any(|e| e.name == env.name) {
            return Err((at("name"), format!("environment {:?} is listed twice", env.name)));
        }
        if let Some(strategy) = &env.strategy {
            strategy.validate().map_err(|m| (at("strategy"), m))?;
        }
        check_pause_timeout(env.pause_timeout).map_err(|m| (at("pause_timeout"), m))?;
        check_lease_timeout(env.lease_timeout).map_err(|m| (at("lease_timeout"), m))?;
        self.validate_targets(i, env)?;
        if let Some(router) = &env.router {
            validate_router(router).map_err(|(key, m)| (at(&format!("router.{key}")), m))?;
        }
        let prefix = format!("environment[{i}]");
        validate_checks(&env.checks, &prefix)?;
        self.validate_analysis_mode(i, env)?;
        for (j, probe) in env.probes.iter().enumerate() {
            check_http_url(&probe.url).map_err(|m| (format!("environment[{i}].probe[{j}].url"), m))?;
        }
        validate_sources(&env.sources, &prefix)?;
        for (k, target) in env.targets.iter().enumerate() {
            let prefix = format!("environment[{i}].target[{k}]");
            validate_router(&target.router).map_err(|(key, m)| (format!("{prefix}.router.{key}"), m))?;
            validate_checks(&target.checks, &prefix)?;
            if self.analysis_for(env) == AnalysisMode::None && !target.checks.is_empty() {
                return Err((
                    format!("{prefix}.check[0]"),
                    format!(
                        "target {:?} defines checks ({}) but environment {:?} deploys with analysis = \"none\", so \
                         they would never run; remove them, or say analysis = \"checks\"",
                        target.name,
                        check_names(&target.checks),
                        env.name
                    ),
                ));
            }
            for (j, probe) in target.probes.iter().enumerate() {
                check_http_url(&probe.url).map_err(|m| (format!("{prefix}.probe[{j}].url"), m))?;
            }
            validate_sources(&target.sources, &prefix)?;
        }
        Ok(())
    }

    /// Each gate table on its own, then what each environment ends up with.
    fn validate_gates(&self) -> Result<(), Refusal> {
        validate_gate(&self.defaults.gate, "defaults.gate")?;
        for (i, env) in self.environments.iter().enumerate() {
            validate_gate(&env.gate, &format!("environment[{i}].gate"))?;
            self.validate_gate_zones(i, env)?;
        }
        Ok(())
    }

    /// Keys that only work together are checked on what the environment
    /// ends up with, pointing at where each was written.
    fn validate_gate_zones(&self, i: usize, env: &Environment) -> Result<(), Refusal> {
        let gate = self.gate_for(env);
        let at = |key: &str| {
            let own = match key {
                "freeze" => env.gate.freeze.is_some(),
                _ => env.gate.holidays.is_some(),
            };
            if own { format!("environment[{i}].gate.{key}") } else { format!("defaults.gate.{key}") }
        };
        for (j, window) in gate.freeze.iter().flatten().enumerate() {
            if window.zone.is_none() && gate.zone.is_none() {
                return Err((
                    format!("{}[{j}]", at("freeze")),
                    format!(
                        "this freeze window has no zone (in environment {}): add zone = \"Europe/Berlin\" (any IANA name) to it or to the gate",
                        env.name
                    ),
                ));
            }
        }
        if gate.holidays.as_ref().is_some_and(|h| !h.is_empty()) && gate.holiday_zone().is_none() {
            return Err((
                at("holidays"),
                format!(
                    "holidays need a zone (in environment {}): add zone = \"Europe/Berlin\" (any IANA name) to the gate; they are whole days on its clock",
                    env.name
                ),
            ));
        }
        Ok(())
    }

    fn validate_notify(&self) -> Result<(), Refusal> {
        for (j, hook) in self.notify.webhooks.iter().enumerate() {
            validate_webhook(hook, j)?;
        }
        if !(Duration::from_secs(1)..=Duration::from_secs(300)).contains(&self.notify.timeout) {
            return Err((
                "notify.timeout".into(),
                "timeout must be from 1s to 5m: notifications must never hold a rollback for long".into(),
            ));
        }
        Ok(())
    }

    fn validate_github(&self) -> Result<(), Refusal> {
        if let Some(repo) = &self.github.repository {
            check_repository(repo).map_err(|m| ("github.repository".into(), m))?;
        }
        if self.github.write_interval > Duration::from_secs(60) {
            return Err((
                "github.write_interval".into(),
                "write_interval must be at most 1m (GitHub asks for 1s between writes)".into(),
            ));
        }
        self.validate_handoff()?;
        for (i, env) in self.environments.iter().enumerate() {
            if let Some(url) = &env.environment_url {
                check_http_url(url).map_err(|m| (format!("environment[{i}].environment_url"), m))?;
            }
        }
        let gates = std::iter::once(("defaults.gate".to_owned(), &self.defaults.gate))
            .chain(self.environments.iter().enumerate().map(|(i, e)| (format!("environment[{i}].gate"), &e.gate)));
        for (at, gate) in gates {
            validate_github_gate(gate, &at)?;
        }
        Ok(())
    }

    fn validate_handoff(&self) -> Result<(), Refusal> {
        let Handoff::Dispatch { workflow, git_ref } = &self.handoff else { return Ok(()) };
        if workflow.trim().is_empty() || workflow.contains(['/', '?', '#', ' ']) {
            return Err((
                "handoff.workflow".into(),
                format!("{workflow:?} is not a workflow file name; write it like \"promote.yml\""),
            ));
        }
        if git_ref.trim().is_empty() || git_ref.contains(' ') {
            return Err(("handoff.ref".into(), format!("{git_ref:?} is not a branch or tag name")));
        }
        Ok(())
    }

    /// Every `query` check in force for an environment names a source in
    /// force for it, and its text expands.
    fn validate_queries(&self) -> Result<(), Refusal> {
        for (i, env) in self.environments.iter().enumerate() {
            self.validate_alb_traffic(i, env)?;
        }
        let vars = QueryVars {
            release: "v".into(),
            app: self.app.clone(),
            environment: String::new(),
            interval: self.interval(),
        };
        for (i, env) in self.environments.iter().enumerate() {
            if self.analysis_for(env) == AnalysisMode::None {
                continue; // no check runs there, whatever the defaults hold
            }
            let (checks, prefix) = if env.checks.is_empty() {
                (&self.defaults.checks, "defaults".to_owned())
            } else {
                (&env.checks, format!("environment[{i}]"))
            };
            // Each router judges with its own sources: the environment's,
            // or per target the environment's with the target's on top.
            let mut judged: Vec<(Vec<SourceConfig>, Vec<Placed<'_, CheckSpec>>)> = Vec::new();
            let own: Vec<(String, &CheckSpec)> =
                checks.iter().enumerate().map(|(j, c)| (format!("{prefix}.check[{j}]"), c)).collect();
            if env.has_targets() {
                for (k, target) in env.targets.iter().enumerate() {
                    let mut in_force: Vec<(String, &CheckSpec)> =
                        own.iter().filter(|(_, c)| !target.checks.iter().any(|t| t.name == c.name)).cloned().collect();
                    in_force.extend(
                        target
                            .checks
                            .iter()
                            .enumerate()
                            .map(|(j, c)| (format!("environment[{i}].target[{k}].check[{j}]"), c)),
                    );
                    judged.push((self.sources_for_target(env, target), in_force));
                }
            } else {
                judged.push((self.sources_for(env), own));
            }
            for (sources, checks) in judged {
                for (at, check) in checks {
                    let sluice_analysis::CheckKind::Query { source, query, .. } = &check.kind else { continue };
                    vars.expand(query).map_err(|m| (format!("{at}.query"), m))?;
                    if !sources.iter().any(|s| s.name() == source) {
                        return Err((format!("{at}.source"), unknown_source(&check.name, source, env, &sources)));
                    }
                }
            }
        }
        Ok(())
    }

    /// A CloudWatch source in force for an environment reads ALB traffic
    /// only where the router is an ALB.
    fn validate_alb_traffic(&self, i: usize, env: &Environment) -> Result<(), Refusal> {
        let (sources, prefix) = if env.sources.is_empty() {
            (&self.defaults.sources, "defaults".to_owned())
        } else {
            (&env.sources, format!("environment[{i}]"))
        };
        // Each router and the sources it reads with.
        let mut routers: Vec<(&RouterConfig, Vec<Placed<'_, SourceConfig>>, String)> = Vec::new();
        let own: Vec<(String, &SourceConfig)> =
            sources.iter().enumerate().map(|(k, s)| (format!("{prefix}.source[{k}]"), s)).collect();
        if let Some(router) = &env.router {
            routers.push((router, own.clone(), format!("environment {:?}", env.name)));
        }
        for (t, target) in env.targets.iter().enumerate() {
            let mut in_force: Vec<(String, &SourceConfig)> =
                own.iter().filter(|(_, s)| !target.sources.iter().any(|x| x.name() == s.name())).cloned().collect();
            in_force.extend(
                target
                    .sources
                    .iter()
                    .enumerate()
                    .map(|(k, s)| (format!("environment[{i}].target[{t}].source[{k}]"), s)),
            );
            routers.push((&target.router, in_force, format!("target {:?} of environment {:?}", target.name, env.name)));
        }
        for (router, sources, whose) in routers {
            for (at, source) in sources {
                if let SourceConfig::Cloudwatch { alb_traffic: true, name, .. } = source
                    && !matches!(router, RouterConfig::Alb { .. })
                {
                    return Err((
                        format!("{at}.alb_traffic"),
                        format!(
                            "source {name:?} reads the ALB's traffic, but {whose} has a {} router; \
                             set alb_traffic only where the router is an alb",
                            router.kind()
                        ),
                    ));
                }
            }
        }
        Ok(())
    }
}

fn unknown_source(check: &str, source: &str, env: &Environment, sources: &[SourceConfig]) -> String {
    let defined: Vec<&str> = sources.iter().map(SourceConfig::name).collect();
    let defined = if defined.is_empty() { "it has none".to_owned() } else { format!("it has {}", defined.join(", ")) };
    format!(
        "check {check:?} queries source {source:?}, which environment {:?} does not define ({defined}); \
         add a [[defaults.source]] or [[environment.source]] table with name = {source:?}",
        env.name
    )
}

/// The GitHub keys of one gate table; `at` is where it is.
fn validate_github_gate(gate: &GateConfig, at: &str) -> Result<(), Refusal> {
    let checks = gate.required_checks();
    for (j, name) in checks.iter().enumerate() {
        if name.trim().is_empty() {
            return Err((format!("{at}.required_checks"), format!("required check {j} has an empty name")));
        }
        if checks[..j].contains(name) {
            return Err((format!("{at}.required_checks"), format!("required check {name:?} is listed twice")));
        }
        names::check_label("required check", name).map_err(|m| (format!("{at}.required_checks"), m))?;
    }
    if gate.incident_label.as_deref().is_some_and(|l| l.trim().is_empty() || l.contains(',')) {
        return Err((
            format!("{at}.incident_label"),
            "incident_label must be one label name (no commas), e.g. \"incident\"".into(),
        ));
    }
    Ok(())
}

impl SourceConfig {
    fn validate(&self) -> Result<(), KeyRefusal> {
        names::check("source name", self.name()).map_err(|m| ("name", m))?;
        if RESERVED_SOURCES.contains(&self.name()) {
            return Err((
                "name",
                format!(
                    "{:?} is the name sluice gives the embedded router's own counters; name this source otherwise, \
                     e.g. \"prometheus\"",
                    self.name()
                ),
            ));
        }
        match self {
            SourceConfig::Prometheus { url, timeout, .. } => {
                check_http_url(url).map_err(|m| ("url", m))?;
                if url.contains(['?', '#']) {
                    return Err(("url", format!("{url:?} must be the server's base URL, without a query or fragment")));
                }
                if timeout.is_zero() {
                    return Err(("timeout", "timeout must be more than 0, e.g. \"5s\"".into()));
                }
            }
            SourceConfig::Cloudwatch { region, period, lookback, role_arn, external_id, session_name, .. } => {
                if let Some(region) = region {
                    aws::check_region(region).map_err(|m| ("region", m))?;
                }
                validate_role(role_arn, external_id, session_name)?;
                let minutes = |d: &Duration| d.as_secs() > 0 && d.as_secs().is_multiple_of(60) && d.subsec_nanos() == 0;
                if !minutes(period) {
                    return Err((
                        "period",
                        "period must be whole minutes, e.g. \"1m\" (ALB metrics are per minute)".into(),
                    ));
                }
                if !minutes(lookback) || lookback < period {
                    return Err((
                        "lookback",
                        format!(
                            "lookback must be whole minutes and at least the period ({}s), e.g. \"5m\"",
                            period.as_secs()
                        ),
                    ));
                }
            }
        }
        Ok(())
    }
}

/// Source names sluice uses itself in `Interval::source_errors`.
const RESERVED_SOURCES: &[&str] = &["router"];

fn validate_webhook(hook: &WebhookConfig, j: usize) -> Result<(), Refusal> {
    let key = format!("notify.webhook[{j}].url_env");
    if hook.url_env.contains("://") {
        return Err((
            key,
            "url_env takes the name of an environment variable that holds the URL, not the URL: the URL is a secret, keep it out of this file".into(),
        ));
    }
    let valid = hook.url_env.chars().next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && hook.url_env.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !valid {
        return Err((
            key,
            format!(
                "{:?} is not an environment variable name (letters, digits and _, e.g. SLACK_WEBHOOK_URL)",
                hook.url_env
            ),
        ));
    }
    if hook.on.is_empty() {
        return Err((
            format!("notify.webhook[{j}].on"),
            "on = [] sends nothing: remove the webhook or name events (blocked, rolled_back, promoted, failed)".into(),
        ));
    }
    Ok(())
}

/// Each check of a `check` list on its own, and no name twice in it;
/// `prefix` is the table the list is in. An environment's checks replace
/// the defaults' as a whole (never merged), so the list in force for an
/// environment is always one of these lists: a name may repeat between
/// `[defaults]` and an environment, never within what runs.
fn validate_checks(checks: &[CheckSpec], prefix: &str) -> Result<(), Refusal> {
    for (j, check) in checks.iter().enumerate() {
        validate_check(check).map_err(|m| (format!("{prefix}.check[{j}]"), m))?;
        if checks[..j].iter().any(|c| c.name == check.name) {
            return Err((format!("{prefix}.check[{j}].name"), format!("check {:?} is defined twice", check.name)));
        }
    }
    Ok(())
}

fn validate_sources(sources: &[SourceConfig], prefix: &str) -> Result<(), Refusal> {
    for (k, source) in sources.iter().enumerate() {
        source.validate().map_err(|(key, m)| (format!("{prefix}.source[{k}].{key}"), m))?;
        if sources[..k].iter().any(|s| s.name() == source.name()) {
            return Err((
                format!("{prefix}.source[{k}].name"),
                format!("source {:?} is defined twice; give each source its own name", source.name()),
            ));
        }
    }
    Ok(())
}

fn validate_check(check: &CheckSpec) -> Result<(), String> {
    use sluice_analysis::{CheckKind, Comparison};
    match &check.kind {
        CheckKind::ErrorRate { max } if !(0.0..1.0).contains(max) => {
            Err(format!("error_rate max {max} must be a ratio from 0 up to (not including) 1, e.g. 0.01 for 1%"))
        }
        CheckKind::Latency { percentile, .. } if !(*percentile > 0.0 && *percentile <= 100.0) => {
            Err(format!("latency percentile {percentile} must be in (0, 100], e.g. 99"))
        }
        CheckKind::Compare(Comparison::ErrorRate { tolerance }) if !(0.0..1.0).contains(tolerance) => {
            Err(format!("tolerance {tolerance} must be a ratio from 0 up to 1, e.g. 0.01"))
        }
        CheckKind::Compare(Comparison::Latency { tolerance, .. }) if *tolerance < 0.0 => {
            Err(format!("tolerance {tolerance} must not be negative (0.2 means 20% slower is tolerated)"))
        }
        CheckKind::Query { min: None, max: None, .. } => Err("a query check needs `min`, `max` or both".into()),
        CheckKind::Query { min: Some(lo), max: Some(hi), .. } if lo > hi => {
            Err(format!("min {lo} is above max {hi}, so no value could pass"))
        }
        CheckKind::Query { query, .. } if query.trim().is_empty() => Err("the query is empty".into()),
        CheckKind::Query { reduce: None, step: Some(_), .. } => {
            Err("step applies to range queries: add reduce = \"max\" (or min, mean, last), or drop step for an \
             instant query"
                .into())
        }
        CheckKind::Query { step: Some(step), .. } if step.as_millis() == 0 => {
            Err("step must be at least 1ms, e.g. \"1s\"".into())
        }
        _ if check.failure_limit == 0 => Err("failure_limit must be at least 1".into()),
        _ if check.inconclusive_limit == 0 => Err("inconclusive_limit must be at least 1".into()),
        _ => Ok(()),
    }
}

fn check_names(checks: &[CheckSpec]) -> String {
    checks.iter().map(|c| format!("{:?}", c.name)).collect::<Vec<_>>().join(", ")
}

fn check_min_final_analysis(min: Duration, interval: Duration) -> Result<(), String> {
    if min.is_zero() {
        return Err("min_final_analysis is 0, which would let promote accept a verdict that analysed nothing; \
                    give it time, e.g. \"5m\" (an environment that deploys without analysis says analysis = \"none\")"
            .into());
    }
    if min < interval {
        return Err(format!(
            "min_final_analysis {} is shorter than one analysis interval ({}), so it would hold no verdict back; \
             make it at least the interval, e.g. \"5m\"",
            humantime::format_duration(min),
            humantime::format_duration(interval)
        ));
    }
    if min > MAX_STAGE_DURATION {
        return Err(format!(
            "min_final_analysis {} is longer than 30 days; a final verdict is analysed while the deployment holds \
             the environment, e.g. \"5m\"",
            humantime::format_duration(min)
        ));
    }
    Ok(())
}

fn check_lease_timeout(timeout: Option<Duration>) -> Result<(), String> {
    match timeout {
        Some(t) if t < Duration::from_secs(1) => {
            Err("lease_timeout must be at least 1s; it must outlast the longest stage, e.g. \"30m\"".into())
        }
        _ => Ok(()),
    }
}

fn check_pause_timeout(timeout: Option<Duration>) -> Result<(), String> {
    match timeout {
        Some(t) if t < Duration::from_secs(1) => {
            Err("pause_timeout must be at least 1s; give the approver time, e.g. \"4h\"".into())
        }
        _ => Ok(()),
    }
}

/// Checks the keys of one gate table on their own; `prefix` is where it is.
fn validate_gate(gate: &GateConfig, prefix: &str) -> Result<(), Refusal> {
    if let Some(zone) = &gate.zone {
        time_zone(zone).map_err(|m| (format!("{prefix}.zone"), m))?;
    }
    for (j, window) in gate.freeze.iter().flatten().enumerate() {
        if let Some(zone) = &window.zone {
            time_zone(zone).map_err(|m| (format!("{prefix}.freeze[{j}].zone"), m))?;
        }
        if window.from == window.to {
            return Err((
                format!("{prefix}.freeze[{j}]"),
                format!(
                    "the window starts and ends at {}: give it a length, e.g. from = \"Fri 15:00\", to = \"Mon 08:00\"",
                    window.from
                ),
            ));
        }
    }
    if let Some(sarif) = &gate.sarif
        && sarif.path.as_os_str().is_empty()
    {
        return Err((format!("{prefix}.sarif.path"), "path is empty: name the SARIF file an earlier job wrote".into()));
    }
    if let Some(coverage) = &gate.coverage {
        if coverage.path.as_os_str().is_empty() {
            return Err((
                format!("{prefix}.coverage.path"),
                "path is empty: name the lcov or Cobertura file an earlier job wrote".into(),
            ));
        }
        if !(0.0..=1.0).contains(&coverage.min) {
            return Err((
                format!("{prefix}.coverage.min"),
                format!("min {} must be a line rate from 0 to 1, e.g. 0.8 for 80%", coverage.min),
            ));
        }
    }
    Ok(())
}

/// `owner/repo` as GitHub names repositories.
pub fn check_repository(repo: &str) -> Result<(), String> {
    let ok = |part: &str| {
        !part.is_empty() && part.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    };
    match repo.split_once('/') {
        Some((owner, name)) if ok(owner) && ok(name) => Ok(()),
        _ => Err(format!("{repo:?} is not a repository; write it as \"owner/name\"")),
    }
}

/// The role keys of an AWS router or CloudWatch source: `role_arn` an IAM
/// role ARN, `external_id` and `session_name` as STS takes them and only
/// with a `role_arn`. Gives the role's account.
fn validate_role<'a>(
    role_arn: &'a Option<String>,
    external_id: &Option<String>,
    session_name: &Option<String>,
) -> Result<Option<&'a str>, KeyRefusal> {
    let Some(role_arn) = role_arn else {
        for (key, set) in [("external_id", external_id.is_some()), ("session_name", session_name.is_some())] {
            if set {
                return Err((
                    key,
                    format!("{key} is only used with role_arn; add role_arn (the role to assume) or remove {key}"),
                ));
            }
        }
        return Ok(None);
    };
    let account = aws::check_role_arn(role_arn).map_err(|m| ("role_arn", m))?;
    if let Some(id) = external_id {
        let ok =
            (2..=1224).contains(&id.len()) && id.chars().all(|c| c.is_ascii_alphanumeric() || "+=,.@:/_-".contains(c));
        if !ok {
            return Err((
                "external_id",
                format!("{id:?} is not an external ID: 2 to 1224 letters, digits and +=,.@:/_-"),
            ));
        }
    }
    if let Some(name) = session_name {
        aws::check_session_name(name).map_err(|m| ("session_name", m))?;
    }
    Ok(Some(account))
}

fn validate_router(router: &RouterConfig) -> Result<(), KeyRefusal> {
    match router {
        RouterConfig::Local { admin_url } => check_http_url(admin_url).map_err(|m| ("admin_url", m)),
        RouterConfig::Alb {
            listener_arn,
            rule_arn,
            stable_target_group,
            candidate_target_group,
            region,
            role_arn,
            external_id,
            session_name,
        } => {
            validate_alb(
                listener_arn,
                rule_arn.as_deref(),
                stable_target_group,
                candidate_target_group,
                region.as_deref(),
            )?;
            let role_account = validate_role(role_arn, external_id, session_name)?;
            let listener_account = listener_arn.split(':').nth(4).unwrap_or_default();
            match role_account {
                Some(account) if account != listener_account => Err((
                    "role_arn",
                    format!(
                        "role {:?} is in account {account}, but the listener is in account {listener_account}; \
                         assume a role in the listener's account",
                        role_arn.as_deref().unwrap_or_default()
                    ),
                )),
                _ => Ok(()),
            }
        }
        RouterConfig::CodeDeploy {
            application,
            deployment_group,
            deployment_config,
            appspec,
            s3_revision,
            region,
            role_arn,
            external_id,
            session_name,
            poll_interval,
            timeout,
        } => {
            validate_role(role_arn, external_id, session_name)?;
            validate_codedeploy_names(application, deployment_group, deployment_config.as_deref())?;
            validate_codedeploy_revision(appspec.is_some(), s3_revision.as_deref())?;
            if let Some(region) = region {
                aws::check_region(region).map_err(|m| ("region", m))?;
            }
            validate_codedeploy_polling(*poll_interval, *timeout)
        }
    }
}

/// An ALB router: a listener (and maybe one of its rules) and two target
/// groups in its region and account.
fn validate_alb(
    listener_arn: &str,
    rule_arn: Option<&str>,
    stable_target_group: &str,
    candidate_target_group: &str,
    region: Option<&str>,
) -> Result<(), KeyRefusal> {
    let listener =
        aws::Arn::parse(listener_arn, "elasticloadbalancing", "listener/app/").map_err(|m| ("listener_arn", m))?;
    if let Some(rule) = rule_arn {
        let parsed =
            aws::Arn::parse(rule, "elasticloadbalancing", "listener-rule/app/").map_err(|m| ("rule_arn", m))?;
        let owner = parsed.resource.strip_prefix("listener-rule/").and_then(|r| r.rsplit_once('/'));
        if owner.map(|(l, _)| l) != listener.resource.strip_prefix("listener/") {
            return Err(("rule_arn", format!("rule {rule:?} does not belong to listener {listener_arn:?}")));
        }
    }
    for (key, arn) in [("stable_target_group", stable_target_group), ("candidate_target_group", candidate_target_group)]
    {
        let tg = aws::Arn::parse(arn, "elasticloadbalancing", "targetgroup/").map_err(|m| (key, m))?;
        if (tg.region, tg.account) != (listener.region, listener.account) {
            return Err((
                key,
                format!(
                    "target group {arn:?} is in another region or account than the listener; ALB forwards only within one"
                ),
            ));
        }
    }
    if stable_target_group == candidate_target_group {
        return Err((
            "candidate_target_group",
            "stable and candidate must be two different target groups (blue and green)".into(),
        ));
    }
    if let Some(region) = region {
        aws::check_region(region).map_err(|m| ("region", m))?;
        if region != listener.region {
            return Err(("region", format!("region {region:?} is not the listener's region {:?}", listener.region)));
        }
    }
    Ok(())
}

fn validate_codedeploy_names(
    application: &str,
    deployment_group: &str,
    deployment_config: Option<&str>,
) -> Result<(), KeyRefusal> {
    for (key, name) in [("application", application), ("deployment_group", deployment_group)] {
        if name.is_empty() || name.len() > 100 || name.chars().any(char::is_control) {
            return Err((key, format!("{name:?} is not a CodeDeploy name (1-100 characters)")));
        }
    }
    if let Some(name) = deployment_config
        && (name.is_empty() || name.len() > 100)
    {
        return Err(("deployment_config", format!("{name:?} is not a deployment config name")));
    }
    Ok(())
}

/// Exactly one revision: an AppSpec file or an S3 bundle.
fn validate_codedeploy_revision(appspec: bool, s3_revision: Option<&str>) -> Result<(), KeyRefusal> {
    match (appspec, s3_revision) {
        (true, Some(_)) => Err(("s3_revision", "give either `appspec` or `s3_revision`, not both".into())),
        (false, None) => Err((
            "appspec",
            "a codedeploy router needs the revision: `appspec = \"appspec.yaml\"` (ECS, Lambda) or `s3_revision = \"s3://bucket/app.zip\"` (EC2)".into(),
        )),
        (false, Some(s3)) => aws::parse_s3_revision(s3).map(|_| ()).map_err(|m| ("s3_revision", m)),
        (true, None) => Ok(()),
    }
}

fn validate_codedeploy_polling(poll_interval: Duration, timeout: Duration) -> Result<(), KeyRefusal> {
    if poll_interval < Duration::from_millis(100) {
        return Err((
            "poll_interval",
            "poll_interval must be at least 100ms (AWS throttles fast polling; 10s is usual)".into(),
        ));
    }
    if timeout < poll_interval {
        return Err(("timeout", "timeout must be longer than poll_interval".into()));
    }
    Ok(())
}

fn check_http_url(url: &str) -> Result<(), String> {
    let rest = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"))
        .ok_or_else(|| format!("{url:?} is not an http:// or https:// URL"))?;
    if rest.is_empty() || rest.starts_with('/') {
        return Err(format!("{url:?} has no host"));
    }
    Ok(())
}
