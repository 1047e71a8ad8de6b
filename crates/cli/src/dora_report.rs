//! `dora-report`: the DORA metrics of the deployment history.

use anyhow::anyhow;
use clap::Parser;
use sluice_core::config::Config;
use sluice_core::{Classify, Exit, Failure};
use std::path::PathBuf;

/// Report the DORA metrics of the deployment history.
#[derive(Parser, Debug)]
#[command(name = "dora-report", version, about, long_about = None)]
pub struct Args {
    /// The sluice config file (names the ledger).
    #[arg(long, env = "INPUT_CONFIG", default_value = "sluice.toml", value_name = "PATH")]
    pub config: PathBuf,
    /// Read this ledger file instead of the one in the config.
    #[arg(long, env = "INPUT_LEDGER", value_name = "PATH")]
    pub ledger: Option<PathBuf>,
}

pub fn main() -> std::process::ExitCode {
    let args = Args::parse();
    crate::run("dora-report", run(args))
}

pub async fn run(args: Args) -> Result<Exit, Failure> {
    let ledger = match args.ledger {
        Some(path) => path,
        None => {
            let config = Config::load(&args.config).bad_input()?;
            let sluice_core::config::LedgerConfig::File { path } = config.ledger;
            path
        }
    };
    let entries = sluice_core::ledger::read_file(&ledger).bad_input()?;
    if entries.is_empty() {
        return Err(Failure::input(anyhow!("ledger {} has no entries", ledger.display())));
    }
    println!("{} entries", entries.len());
    Ok(Exit::OK)
}
