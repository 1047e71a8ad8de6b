//! Reading `sluice.toml`: TOML parsing, unknown check keys, paths made
//! relative to the file, and every error placed at its file, line, column
//! and dotted key with the offending line shown.
//!
//! Never writes anything; a config that does not load leaves no trace.

use super::{Config, LedgerConfig, RouterConfig};
use sluice_analysis::CheckSpec;
use std::fmt;
use std::path::{Path, PathBuf};

/// A config error with where it is in the file.
#[derive(Debug, thiserror::Error)]
pub struct ConfigError {
    pub path: PathBuf,
    /// 1-based line and column, when known.
    pub location: Option<(usize, usize)>,
    /// The dotted key, when known (`environment[1].strategy.stages`).
    pub key: Option<String>,
    pub message: String,
    /// The offending line of the file, for display.
    pub snippet: Option<String>,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.path.display())?;
        if let Some((line, col)) = self.location {
            write!(f, ":{line}:{col}")?;
        }
        write!(f, ": ")?;
        if let Some(key) = &self.key {
            write!(f, "`{key}`: ")?;
        }
        write!(f, "{}", self.message)?;
        if let (Some(snippet), Some((line, col))) = (&self.snippet, self.location) {
            let gutter = line.to_string().len();
            write!(f, "\n{:gutter$} |\n{line} | {snippet}\n{:gutter$} | {:>col$}", "", "", "^")?;
        }
        Ok(())
    }
}

impl Config {
    /// Reads and validates a config file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
            path: path.to_owned(),
            location: None,
            key: None,
            message: if e.kind() == std::io::ErrorKind::NotFound {
                "config file not found; create sluice.toml (see docs/configuration.md) or pass --config".into()
            } else {
                format!("cannot read the config file: {e}")
            },
            snippet: None,
        })?;
        let mut config = Self::parse(&text, path)?;
        let base = path.parent().unwrap_or(Path::new("."));
        let resolve = |p: &mut PathBuf| {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        };
        if let LedgerConfig::File { path: ledger } = &mut config.ledger {
            resolve(ledger);
        }
        for gate in
            std::iter::once(&mut config.defaults.gate).chain(config.environments.iter_mut().map(|e| &mut e.gate))
        {
            if let Some(sarif) = &mut gate.sarif {
                resolve(&mut sarif.path);
            }
            if let Some(coverage) = &mut gate.coverage {
                resolve(&mut coverage.path);
            }
        }
        if config.github.cache_dir.is_relative() {
            config.github.cache_dir = base.join(&config.github.cache_dir);
        }
        for env in &mut config.environments {
            if let Some(RouterConfig::CodeDeploy { appspec: Some(appspec), .. }) = &mut env.router
                && appspec.is_relative()
            {
                *appspec = base.join(&*appspec);
            }
        }
        Ok(config)
    }

    /// Parses and validates config text; `path` is only used in messages.
    pub fn parse(text: &str, path: &Path) -> Result<Config, ConfigError> {
        let located = |span: Option<std::ops::Range<usize>>, key: Option<String>, message: String| {
            let location = span.map(|s| line_col(text, s.start));
            ConfigError {
                path: path.to_owned(),
                location,
                key,
                message,
                snippet: location.and_then(|(line, _)| text.lines().nth(line - 1).map(str::to_owned)),
            }
        };
        let config: Config =
            toml::from_str(text).map_err(|e| located(e.span(), None, e.message().trim_end().to_owned()))?;
        unknown_check_keys(text).map_err(|(span, key, message)| located(Some(span), Some(key), message))?;
        config.validate().map_err(|(key, message)| {
            let span = key_span(text, &key);
            located(span, Some(key), message)
        })?;
        let mut config = config;
        config.default_session_names();
        Ok(config)
    }

    /// Names the role sessions the config leaves unnamed
    /// `sluice-APP-ENVIRONMENT` (the defaults' sources get theirs in
    /// [`Config::sources_for`]).
    fn default_session_names(&mut self) {
        for env in &mut self.environments {
            let session = super::aws::default_session_name(&self.app, &env.name);
            let routers = env.router.iter_mut().chain(env.targets.iter_mut().map(|t| &mut t.router));
            for router in routers {
                router.default_session_name(&session);
            }
            let sources = env.sources.iter_mut().chain(env.targets.iter_mut().flat_map(|t| t.sources.iter_mut()));
            for source in sources {
                source.default_session_name(&session);
            }
        }
    }
}

/// Check tables flatten their kind into one table, which serde cannot guard
/// with `deny_unknown_fields`; so unknown keys are caught here, against every
/// key the check types know (taken from their JSON Schema).
fn unknown_check_keys(text: &str) -> Result<(), (std::ops::Range<usize>, String, String)> {
    use toml::de::{DeTable, DeValue};
    let Ok(doc) = DeTable::parse(text) else { return Ok(()) };
    let known = check_keys();
    fn collect<'a, 'i>(
        prefix: String,
        value: Option<&'a toml::Spanned<DeValue<'i>>>,
        tables: &mut Vec<(String, &'a DeTable<'i>)>,
    ) {
        if let Some(DeValue::Array(items)) = value.map(|v| v.get_ref()) {
            for (j, item) in items.iter().enumerate() {
                if let DeValue::Table(t) = item.get_ref() {
                    tables.push((format!("{prefix}.check[{j}]"), t));
                }
            }
        }
    }
    let mut tables = Vec::new();
    let root = doc.get_ref();
    if let Some(DeValue::Table(defaults)) = root.get("defaults").map(|v| v.get_ref()) {
        collect("defaults".into(), defaults.get("check"), &mut tables);
    }
    if let Some(DeValue::Array(envs)) = root.get("environment").map(|v| v.get_ref()) {
        for (i, env) in envs.iter().enumerate() {
            if let DeValue::Table(env) = env.get_ref() {
                collect(format!("environment[{i}]"), env.get("check"), &mut tables);
                if let Some(DeValue::Array(targets)) = env.get("target").map(|v| v.get_ref()) {
                    for (k, target) in targets.iter().enumerate() {
                        if let DeValue::Table(target) = target.get_ref() {
                            collect(format!("environment[{i}].target[{k}]"), target.get("check"), &mut tables);
                        }
                    }
                }
            }
        }
    }
    for (prefix, table) in tables {
        for (key, _) in table.iter() {
            if !known.contains(key.get_ref().as_ref()) {
                let mut names: Vec<&str> = known.iter().map(String::as_str).collect();
                names.sort_unstable();
                return Err((
                    key.span(),
                    format!("{prefix}.{}", key.get_ref()),
                    format!(
                        "unknown check key {:?}; a check takes {}",
                        key.get_ref().as_ref() as &str,
                        names.join(", ")
                    ),
                ));
            }
        }
    }
    Ok(())
}

/// Every property name anywhere in the check types' JSON Schema.
fn check_keys() -> std::collections::BTreeSet<String> {
    fn walk(value: &serde_json::Value, out: &mut std::collections::BTreeSet<String>) {
        match value {
            serde_json::Value::Object(map) => {
                if let Some(serde_json::Value::Object(props)) = map.get("properties") {
                    out.extend(props.keys().cloned());
                }
                map.values().for_each(|v| walk(v, out));
            }
            serde_json::Value::Array(items) => items.iter().for_each(|v| walk(v, out)),
            _ => {}
        }
    }
    let schema = serde_json::to_value(schemars::schema_for!(CheckSpec)).unwrap_or_default();
    let mut keys = std::collections::BTreeSet::new();
    walk(&schema, &mut keys);
    keys
}

/// 1-based line and column of a byte offset.
fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, col)
}

/// Finds the span of a dotted key such as `environment[1].strategy.stages`:
/// the deepest part of the path that exists in the file.
fn key_span(text: &str, key: &str) -> Option<std::ops::Range<usize>> {
    use toml::de::{DeTable, DeValue};
    let doc = DeTable::parse(text).ok()?;
    let mut table: &DeTable<'_> = doc.get_ref();
    let mut span = None;
    let mut parts = key.split('.').peekable();
    while let Some(part) = parts.next() {
        let (name, index) = match part.split_once('[') {
            Some((name, rest)) => (name, rest.trim_end_matches(']').parse::<usize>().ok()),
            None => (part, None),
        };
        let Some((k, value)) = table.get_key_value(name) else { return span };
        span = Some(k.span());
        let mut value = value;
        if let Some(i) = index {
            let DeValue::Array(array) = value.get_ref() else { return span };
            let Some(item) = array.get(i) else { return span };
            value = item;
            span = Some(value.span());
        }
        match value.get_ref() {
            DeValue::Table(next) if parts.peek().is_some() => table = next,
            _ => return span,
        }
    }
    span
}
