//! What every step loads first: flags shared by all steps, the config, the
//! environment and the record.

use anyhow::{Context as _, anyhow};
use clap::Args;
use jiff::Timestamp;
use sluice_core::config::{Config, Environment};
use sluice_core::record::{Expect, Record};
use sluice_core::{Classify, Failure};
use sluice_providers::retry::Backoff;
use sluice_providers::router::Router;
use std::path::{Path, PathBuf};

/// Flags every step takes; each can also come from an `INPUT_*` variable.
#[derive(Args, Debug, Clone)]
pub struct Common {
    /// The sluice config file.
    #[arg(long, env = "INPUT_CONFIG", default_value = "sluice.toml", value_name = "PATH")]
    pub config: PathBuf,
    /// The environment to act on (as named in the config).
    #[arg(long, short = 'e', env = "INPUT_ENVIRONMENT", value_name = "NAME")]
    pub environment: String,
    /// The deployment record (JSON) this step reads and appends to.
    #[arg(long, env = "INPUT_RECORD", value_name = "PATH")]
    pub record: PathBuf,
}

/// The loaded config with the environment the step acts on.
pub struct Context {
    pub config: Config,
    pub env_index: usize,
    pub record_path: PathBuf,
    /// The directory of the config file: the repository checkout in CI.
    pub config_dir: PathBuf,
}

impl Context {
    pub fn load(common: &Common) -> Result<Context, Failure> {
        let config = Config::load(&common.config).bad_input()?;
        let (env_index, _) = config.environment(&common.environment).map_err(|m| Failure::input(anyhow!(m)))?;
        check_record_path(&common.record)?;
        crate::notify::arm(&config, &common.environment);
        let config_dir = match common.config.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => dir.to_owned(),
            _ => PathBuf::from("."),
        };
        Ok(Context { config, env_index, record_path: common.record.clone(), config_dir })
    }

    pub fn env(&self) -> &Environment {
        &self.config.environments[self.env_index]
    }

    pub fn router(&self) -> Router {
        Router::from_config(&self.env().router, Backoff::default())
    }

    /// The router without retries, for calls that must end quickly (after a
    /// cancellation).
    pub fn router_without_retries(&self) -> Router {
        Router::from_config(&self.env().router, Backoff::NONE)
    }

    /// Loads the record of this deployment, refusing one of another app or
    /// environment.
    pub fn load_record(&self) -> Result<Record, Failure> {
        let record = Record::load(
            &self.record_path,
            &Expect { app: Some(&self.config.app), environment: Some(&self.env().name), version: None },
        )
        .bad_input()?;
        crate::notify::about(&record);
        Ok(record)
    }

    /// Saves the record atomically; a failure to save is reported as a
    /// provider (disk) failure.
    pub fn save(&self, record: &Record) -> Result<(), Failure> {
        crate::notify::about(record);
        record.save(&self.record_path).provider_failed()
    }

    pub fn ledger_path(&self) -> &Path {
        let sluice_core::config::LedgerConfig::File { path } = &self.config.ledger;
        path
    }
}

/// A record path must name a file (not a directory) with a JSON extension,
/// so that a slip such as `--record .` or `--record out/` cannot replace a
/// directory or a config file.
fn check_record_path(path: &Path) -> Result<(), Failure> {
    let is_json = path.extension().is_some_and(|e| e == "json");
    if path.as_os_str().is_empty() || path.is_dir() || !is_json {
        return Err(Failure::input(anyhow!(
            "--record {} must be the path of a .json file (e.g. out/dev.json)",
            path.display()
        )));
    }
    Ok(())
}

/// The current time (one place, so steps agree within a run).
pub fn now() -> Timestamp {
    Timestamp::now()
}

/// Appends a ledger entry, reported as a provider failure when it fails.
pub fn append_ledger(path: &Path, entry: &sluice_core::ledger::LedgerEntry) -> Result<(), Failure> {
    sluice_core::ledger::append(path, entry)
        .with_context(|| format!("the deployment {} is done but its ledger entry was not written", entry.id))
        .provider_failed()
}
