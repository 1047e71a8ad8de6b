//! The shared vocabulary of sluice: the deployment record, the config, ledger
//! entries, durations, exit codes and GitHub Actions I/O.
//!
//! Nothing here talks to a provider; everything here is safe to call from any
//! step. Only [`env`] reads environment variables.

pub mod config;
pub mod env;
pub mod exit;
pub mod gha;
pub mod lease;
pub mod ledger;
pub mod lifecycle;
pub mod names;
pub mod record;
pub mod router_api;
pub mod strategy;

pub use exit::{Classify, Exit, Failure};
