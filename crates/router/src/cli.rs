//! Command line of the `sluice-router` binary.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;

use crate::{Config, Upstream, serve};

/// Weighted HTTP/1.1 reverse proxy with an admin API (stable/candidate pools).
#[derive(Debug, Parser)]
#[command(name = "sluice-router", version)]
pub struct Args {
    /// Proxy address; port 0 picks a free port.
    #[arg(long, default_value = "127.0.0.1:0")]
    pub listen: SocketAddr,
    /// Admin API address; port 0 picks a free port.
    #[arg(long, default_value = "127.0.0.1:0")]
    pub admin: SocketAddr,
    /// Stable upstream, http://host:port.
    #[arg(long)]
    pub stable: Upstream,
    /// Candidate upstream, http://host:port.
    #[arg(long)]
    pub candidate: Option<Upstream>,
    /// Percentage of requests sent to the candidate.
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u8).range(0..=100))]
    pub candidate_weight: u8,
    /// Proxy worker threads; 0 means one per available core.
    #[arg(long, default_value_t = 0)]
    pub workers: usize,
    /// Write `{"listen":..,"admin":..,"pid":..}` here (atomically) once both sockets are bound.
    #[arg(long)]
    pub ready_file: Option<PathBuf>,
}

/// Parses the command line, runs the router until SIGTERM/SIGINT.
pub fn main() -> ExitCode {
    let args = Args::parse();
    if args.candidate_weight > 0 && args.candidate.is_none() {
        eprintln!("error: --candidate-weight {} needs --candidate", args.candidate_weight);
        return ExitCode::from(2);
    }
    let config = Config {
        listen: args.listen,
        admin: args.admin,
        stable: args.stable,
        candidate: args.candidate,
        candidate_weight: args.candidate_weight,
        grace: serve::DEFAULT_GRACE,
        workers: args.workers,
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(err) => {
            eprintln!("error: failed to start the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        // Install the handlers before the ready line announces us.
        let signal = serve::termination_signal();
        crate::run(config, args.ready_file, signal).await
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {:#}", anyhow::Error::from(err));
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn cli_is_consistent() {
        use clap::CommandFactory;
        super::Args::command().debug_assert();
    }
}
