//! `sluice.toml`: the app, its environments in promotion order, and per
//! environment the router, metric sources, strategy, checks and gates.
//!
//! Every error points at the file, line and key, so a user can fix it without
//! guessing. Loading never changes anything on disk.
//!
//! - `model`: the tables and keys (serde), their defaults and inheritance;
//! - `load`: reading the file, placing errors at line, column and key;
//! - `validate`: what makes a parsed config acceptable;
//! - `gate`, `checks`, `zone`, `aws`: the gate's table, metric sources and
//!   query templating, time zones, and AWS names;
//! - the strategy and its plan live in [`crate::strategy`].

mod aws;
mod checks;
mod gate;
mod load;
mod model;
mod targets;
mod validate;
mod zone;

pub use crate::strategy::Strategy;
pub use aws::{Arn, AssumeRoleConfig, ROLE_ARN_SHAPE, parse_s3_revision};
pub use checks::{ProbeConfig, QueryVars, SourceConfig};
pub use gate::{CoverageGate, FreezeWindow, GateConfig, SarifGate};
pub use load::ConfigError;
pub use model::{
    AnalysisConfig, AnalysisMode, Config, DEFAULT_LEASE_TIMEOUT, DEFAULT_MIN_FINAL_ANALYSIS, DEFAULT_PAUSE_TIMEOUT,
    Defaults, DeploymentMetricsConfig, Environment, GitHubConfig, Handoff, LedgerConfig, NotifyConfig, NotifyEvent,
    RouterConfig, TargetConfig, WebhookConfig, WebhookKind, json_schema, parse_duration,
};
pub use validate::check_repository;
pub use zone::time_zone;

#[cfg(test)]
mod tests;
