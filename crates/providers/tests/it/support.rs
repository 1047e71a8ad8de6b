//! A real Prometheus for tests: skipped with a note outside CI when it is
//! not installed, a failure in CI (`scripts/setup-tools.sh` installs it).

use sluice_demo::prometheus::{PrometheusServer, StartError};
use std::net::SocketAddr;

pub fn prometheus(targets: &[SocketAddr]) -> Option<PrometheusServer> {
    match PrometheusServer::start(&sluice_core::env::var("PATH").unwrap_or_default(), targets) {
        Ok(server) => Some(server),
        Err(StartError::NotInstalled) if !sluice_core::env::in_ci() => {
            eprintln!("SKIPPED: {}", StartError::NotInstalled);
            None
        }
        Err(e) => panic!("{e} (tests must not skip in CI)"),
    }
}
