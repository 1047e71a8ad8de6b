//! `sluice-faultproxy`: the proxy core ([`super::Core`]) as a binary for the
//! end-to-end tests, between the step binaries and a provider (the embedded
//! router's admin API, the AWS emulator, the GitHub fake), breaking a set
//! share of the calls: 5xx answers, throttling in the provider's own format,
//! slow answers, and connections dropped without an answer.
//!
//! Its rules are two: `/__faults` ([`rates::control`]: `GET` shows the rates
//! and what was done so far; `PUT` changes the rates at run time,
//! `{"error_rate":1}` takes the provider "down"), then the seeded random
//! faults ([`rates::RandomFaults`]). Every other request is forwarded to
//! `--upstream` unless a fault is drawn for it. Test tooling only.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use sluice_core::Failure;
use sluice_demo::cli;
use sluice_router::serve;

use super::rates::{self, RandomFaults, Rates, Throttle};
use super::{Core, Rule};

const AFTER_HELP: &str = "\
Examples:
  sluice-faultproxy --upstream http://127.0.0.1:9001 --error-rate 0.3 --ready-file proxy.json
  sluice-faultproxy --upstream http://127.0.0.1:5000 --throttle-rate 0.2 --throttle aws-query
  curl -X PUT -d '{\"error_rate\":1}' http://127.0.0.1:PORT/__faults   (the provider is down)";

/// A fault-injecting HTTP proxy for tests.
///
/// Forwards every call to --upstream, except a drawn share that it answers
/// with 500, with the provider's throttling answer, after a delay, or by
/// closing the connection. `GET /__faults` shows the rates and counts; `PUT
/// /__faults` changes the rates while it runs.
#[derive(Debug, Parser)]
#[command(name = "sluice-faultproxy", version, after_help = format!("{}\n\n{AFTER_HELP}", cli::EXIT_CODES))]
pub struct Args {
    /// Address to listen on; port 0 picks a free port.
    #[arg(long, default_value = "127.0.0.1:0")]
    pub listen: SocketAddr,
    /// Where calls are forwarded (`http://host:port`, optionally with a path
    /// prefix that each call's path is appended to).
    #[arg(long, value_parser = parse_upstream)]
    pub upstream: String,
    /// Share of calls answered 500 without forwarding.
    #[arg(long, default_value_t = 0.0)]
    pub error_rate: f64,
    /// Share of calls answered with a throttling error.
    #[arg(long, default_value_t = 0.0)]
    pub throttle_rate: f64,
    /// Share of calls held for `--slow` before they are forwarded.
    #[arg(long, default_value_t = 0.0)]
    pub slow_rate: f64,
    /// Share of calls whose connection is closed without an answer.
    #[arg(long, default_value_t = 0.0)]
    pub drop_rate: f64,
    /// How long a slow call is held.
    #[arg(long, default_value = "3s", value_parser = humantime::parse_duration)]
    pub slow: Duration,
    /// The throttling answer's format.
    #[arg(long, value_enum, default_value_t = Throttle::Http)]
    pub throttle: Throttle,
    /// Seed of the fault draw, for reproducible runs.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Write `{"listen":..,"pid":..}` here (atomically) once listening.
    #[arg(long)]
    pub ready_file: Option<PathBuf>,
}

fn parse_upstream(s: &str) -> Result<String, String> {
    let base = s.trim_end_matches('/');
    match base.parse::<hyper::Uri>() {
        Ok(uri) if uri.scheme_str() == Some("http") && uri.authority().is_some() && uri.query().is_none() => {
            Ok(base.to_owned())
        }
        _ => Err(format!("expected http://host:port, optionally with a path prefix, got {s:?}")),
    }
}

/// Runs the proxy until SIGTERM/SIGINT.
pub fn main() -> ExitCode {
    let args = Args::parse();
    let rates = Rates {
        error_rate: args.error_rate,
        throttle_rate: args.throttle_rate,
        slow_rate: args.slow_rate,
        drop_rate: args.drop_rate,
        methods: Vec::new(),
    };
    if let Err(e) = rates.check() {
        return cli::exit(
            "sluice-faultproxy",
            Err(Failure::input(anyhow::anyhow!("{e}: rates are shares from 0 to 1"))),
        );
    }
    let result = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(cli::runtime_failure)
        .and_then(|rt| rt.block_on(run(args, rates)));
    cli::exit("sluice-faultproxy", result)
}

async fn run(args: Args, rates: Rates) -> Result<(), Failure> {
    let core = Core::new(&args.upstream);
    let faults = Arc::new(RandomFaults::new(rates, args.slow, args.throttle, args.seed));
    core.add(rates::control(Arc::clone(&faults), core.stats()));
    core.add(move |request: &super::Request| faults.decide(request));
    let signal = serve::termination_signal();
    let listener = serve::bind(args.listen).await.map_err(|e| cli::bind_failure(e, "--listen"))?;
    let addr = listener
        .local_addr()
        .map_err(|source| cli::bind_failure(serve::BindError { addr: args.listen, source }, "--listen"))?;
    if let Some(path) = &args.ready_file {
        let line = serde_json::json!({ "listen": addr, "pid": std::process::id() }).to_string();
        serve::write_ready_file(path, &line).map_err(|e| cli::write_failure(e, path, "--ready-file"))?;
    }
    // The core's own accept loop rather than the router's `serve`: a rule
    // that drops must close the connection unanswered.
    tokio::select! {
        () = signal => {}
        () = core.serve(listener) => {}
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cli_is_consistent() {
        use clap::CommandFactory;
        Args::command().debug_assert();
    }

    #[test]
    fn upstreams() {
        assert_eq!(parse_upstream("http://127.0.0.1:9/"), Ok("http://127.0.0.1:9".to_owned()));
        assert_eq!(parse_upstream("http://h:9/api/v3"), Ok("http://h:9/api/v3".to_owned()));
        for bad in ["https://h:9", "h:9", "/path", "http://h:9/?q=1", ""] {
            assert!(parse_upstream(bad).is_err(), "{bad}");
        }
    }
}
