//! Command line of the `sluice-router` binary: flags, and the exit codes of
//! the shared table (`sluice_core::Exit`) with a message that says what to do.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use sluice_core::{Exit, Failure};

use crate::{Config, Error, Socket, Upstream, serve};

const AFTER_HELP: &str = "\
Exit codes (sluice's one table):
  0  stopped by SIGTERM or SIGINT, after in-flight requests finished
  2  bad input: a flag, or an address that cannot be used (a port another
     process listens on, one address for --listen and --admin, an address
     this host does not have); nothing was served
  3  the system refused the router what it needs (threads, the async
     runtime, file descriptors)

Examples:
  sluice-router --listen 127.0.0.1:8080 --admin 127.0.0.1:9001 --stable http://127.0.0.1:8081
  sluice-router --stable http://127.0.0.1:8081 --candidate http://127.0.0.1:8082 \\
      --candidate-weight 10 --ready-file router.json";

/// Weighted HTTP/1.1 reverse proxy with an admin API (stable/candidate pools).
///
/// Sends each request to the candidate pool with probability
/// --candidate-weight/100, to the stable pool otherwise. The admin API
/// (GET /v1/state, /v1/stats, /metrics; PUT /v1/weights, /v1/upstreams; POST
/// /v1/promote) changes weights and upstreams while it runs. A port another
/// process listens on is refused, never shared.
#[derive(Debug, Parser)]
#[command(name = "sluice-router", version, after_help = AFTER_HELP)]
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
    match run(Args::parse()) {
        Ok(()) => Exit::OK.into(),
        Err(failure) => {
            eprintln!("sluice-router: error: {:#}", failure.error);
            failure.exit.into()
        }
    }
}

fn run(args: Args) -> Result<(), Failure> {
    if args.candidate_weight > 0 && args.candidate.is_none() {
        return Err(Failure::input(anyhow::anyhow!(
            "--candidate-weight {} needs --candidate (the upstream that weight goes to)",
            args.candidate_weight
        )));
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
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::provider(anyhow::Error::new(e).context("failed to start the async runtime")))?;
    runtime
        .block_on(async {
            // Install the handlers before the ready line announces us.
            let signal = serve::termination_signal();
            crate::run(config, args.ready_file, signal).await
        })
        .map_err(failure)
}

/// The exit code of a router that could not start, and what to do about it.
fn failure(err: Error) -> Failure {
    use std::io::ErrorKind;
    let flag = |socket| if socket == Socket::Proxy { "--listen" } else { "--admin" };
    let (exit, hint) = match &err {
        Error::InUse { socket, .. } => (
            Exit::BAD_INPUT,
            Some(format!(
                "another sluice-router may be serving it: stop that one first, or choose another port with {} \
                 (port 0 picks a free one)",
                flag(*socket)
            )),
        ),
        Error::SameAddress(_) => (Exit::BAD_INPUT, Some("give --listen and --admin different ports".to_owned())),
        Error::Bind { socket, source } => match source.source.kind() {
            ErrorKind::AddrNotAvailable => (
                Exit::BAD_INPUT,
                Some(format!("check {}: {} is not an address of this host", flag(*socket), source.addr.ip())),
            ),
            ErrorKind::PermissionDenied => (
                Exit::BAD_INPUT,
                Some(format!(
                    "check {}: ports below 1024 need privileges (CAP_NET_BIND_SERVICE); pick a higher one",
                    flag(*socket)
                )),
            ),
            ErrorKind::InvalidInput => (Exit::BAD_INPUT, Some(format!("check {}", flag(*socket)))),
            // Out of file descriptors and the like: the system, not the flags.
            _ => (Exit::PROVIDER, None),
        },
        Error::ReadyFile { .. } => {
            (Exit::BAD_INPUT, Some("check --ready-file: its directory must exist and be writable".to_owned()))
        }
        Error::State(_) => (Exit::BAD_INPUT, None),
        Error::Spawn(_) => (Exit::PROVIDER, None),
    };
    let what = format!("{:#}", anyhow::Error::new(err));
    let error = match hint {
        Some(hint) => anyhow::anyhow!("{what}\n  {hint}"),
        None => anyhow::anyhow!(what),
    };
    Failure { exit, error }
}

#[cfg(test)]
mod tests {
    #[test]
    fn cli_is_consistent() {
        use clap::CommandFactory;
        super::Args::command().debug_assert();
    }
}
