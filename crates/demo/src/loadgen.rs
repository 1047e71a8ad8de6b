//! `sluice-loadgen`: steady, paced load against one URL, counted by status,
//! by the router's `x-sluice-pool` header and by the first line of the body.
//!
//! Pacing is a token bucket: a pacer issues `rps` tokens per second into a
//! bucket of `concurrency` tokens; workers take a token per request. When all
//! workers are busy and the bucket is full, tokens are dropped (and counted)
//! rather than sent later in a burst, so a slow server sees the same rate.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use clap::Parser;
use hdrhistogram::Histogram;
use http_body_util::{BodyExt, Empty, Limited};
use hyper::body::Bytes;
use hyper::{Request, Uri};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde::{Deserialize, Serialize};
use sluice_core::Failure;
use sluice_router::serve::{self, Shutdown};
use tokio::sync::mpsc;

use crate::cli;

const AFTER_HELP: &str = "\
Examples:
  sluice-loadgen --url http://127.0.0.1:8080/ --rps 200 --duration 30s --report-every 1s
  sluice-loadgen --url http://127.0.0.1:8080/ --rps 2000 --concurrency 64 --out load.json";

/// Paced HTTP load with a JSON summary.
///
/// Sends GET --url at --rps for --duration and prints one JSON line: answers
/// by status, by the router's x-sluice-pool header and by the first line of
/// the body, and latency percentiles. Failed requests are counted, not
/// fatal: the exit code says only whether the run itself could be made.
#[derive(Debug, Parser)]
#[command(name = "sluice-loadgen", version, after_help = format!("{}\n\n{AFTER_HELP}", cli::EXIT_CODES))]
pub struct Args {
    /// URL to GET, http only.
    #[arg(long)]
    pub url: Uri,
    /// Requests per second.
    #[arg(long, default_value_t = 50.0, value_parser = parse_rps)]
    pub rps: f64,
    /// How long to run (e.g. 30s); SIGTERM/SIGINT ends it early.
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
    pub duration: Duration,
    /// Requests in flight at most.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u16).range(1..))]
    pub concurrency: u16,
    /// Per-request timeout.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    pub timeout: Duration,
    /// Print a progress line to stderr this often (e.g. 1s).
    #[arg(long, value_parser = humantime::parse_duration)]
    pub report_every: Option<Duration>,
    /// Also write the summary to this file.
    #[arg(long)]
    pub out: Option<PathBuf>,
}

fn parse_rps(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(rps) if rps > 0.0 && rps.is_finite() => Ok(rps),
        _ => Err(format!("rps must be a positive number, got {s:?}")),
    }
}

/// What to send.
#[derive(Debug, Clone)]
pub struct LoadConfig {
    /// URL to GET.
    pub url: Uri,
    /// Requests per second.
    pub rps: f64,
    /// Total time.
    pub duration: Duration,
    /// Requests in flight at most.
    pub concurrency: usize,
    /// Per-request timeout.
    pub timeout: Duration,
    /// Progress line period.
    pub report_every: Option<Duration>,
}

/// The end-of-run summary.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    /// Requests that got an answer or failed (timeouts included).
    pub sent: u64,
    /// 2xx answers.
    pub ok: u64,
    /// 4xx and other non-2xx, non-5xx answers.
    pub errors_other: u64,
    /// 5xx answers.
    pub errors_5xx: u64,
    /// Requests that got no HTTP answer (refused, reset, ...).
    pub connect_errors: u64,
    /// Requests that hit the timeout.
    pub timeouts: u64,
    /// Tokens dropped because all workers were busy.
    pub dropped: u64,
    /// Answers per `x-sluice-pool` header (`stable`, `candidate`).
    pub by_pool: BTreeMap<String, u64>,
    /// Answers per first line of the body.
    pub by_body: BTreeMap<String, u64>,
    /// Median latency of answered requests, ms (0 when none).
    pub p50_ms: f64,
    /// 99th percentile latency of answered requests, ms (0 when none).
    pub p99_ms: f64,
    /// Wall time of the run, seconds.
    pub elapsed_s: f64,
}

struct Tally {
    sent: u64,
    ok: u64,
    errors_other: u64,
    errors_5xx: u64,
    connect_errors: u64,
    timeouts: u64,
    by_pool: BTreeMap<String, u64>,
    by_body: BTreeMap<String, u64>,
    latency_us: Histogram<u64>,
}

enum Outcome {
    Answer { status: u16, pool: Option<String>, first_line: String, latency: Duration },
    Transport,
    Timeout,
}

impl Tally {
    fn new() -> Self {
        let mut by_pool = BTreeMap::new();
        by_pool.insert("stable".to_owned(), 0);
        by_pool.insert("candidate".to_owned(), 0);
        Self {
            sent: 0,
            ok: 0,
            errors_other: 0,
            errors_5xx: 0,
            connect_errors: 0,
            timeouts: 0,
            by_pool,
            by_body: BTreeMap::new(),
            latency_us: Histogram::new_with_bounds(1, 3_600_000_000, 3).expect("valid bounds"),
        }
    }

    fn add(&mut self, outcome: Outcome) {
        self.sent += 1;
        match outcome {
            Outcome::Answer { status, pool, first_line, latency } => {
                match status {
                    200..=299 => self.ok += 1,
                    500..=599 => self.errors_5xx += 1,
                    _ => self.errors_other += 1,
                }
                if let Some(pool) = pool {
                    *self.by_pool.entry(pool).or_default() += 1;
                }
                *self.by_body.entry(first_line).or_default() += 1;
                let us = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX).max(1);
                self.latency_us.saturating_record(us);
            }
            Outcome::Transport => self.connect_errors += 1,
            Outcome::Timeout => self.timeouts += 1,
        }
    }

    fn summary(&self, dropped: u64, elapsed: Duration) -> Summary {
        let ms = |q| {
            if self.latency_us.is_empty() { 0.0 } else { self.latency_us.value_at_quantile(q) as f64 / 1000.0 }
        };
        Summary {
            sent: self.sent,
            ok: self.ok,
            errors_other: self.errors_other,
            errors_5xx: self.errors_5xx,
            connect_errors: self.connect_errors,
            timeouts: self.timeouts,
            dropped,
            by_pool: self.by_pool.clone(),
            by_body: self.by_body.clone(),
            p50_ms: ms(0.5),
            p99_ms: ms(0.99),
            elapsed_s: (elapsed.as_secs_f64() * 1000.0).round() / 1000.0,
        }
    }
}

type HttpClient = Client<HttpConnector, Empty<Bytes>>;

async fn one_request(client: &HttpClient, url: &Uri, timeout: Duration) -> Outcome {
    let start = Instant::now();
    let req = match Request::get(url.clone()).body(Empty::new()) {
        Ok(req) => req,
        Err(_) => return Outcome::Transport,
    };
    let exchange = async {
        let resp = client.request(req).await.map_err(|_| ())?;
        let latency = start.elapsed();
        let status = resp.status().as_u16();
        let pool = resp.headers().get(sluice_router::POOL_HEADER).and_then(|v| v.to_str().ok()).map(str::to_owned);
        let body = Limited::new(resp.into_body(), 1 << 20).collect().await.map_err(|_| ())?.to_bytes();
        let first_line = String::from_utf8_lossy(&body).lines().next().unwrap_or("").chars().take(80).collect();
        Ok::<_, ()>(Outcome::Answer { status, pool, first_line, latency })
    };
    match tokio::time::timeout(timeout, exchange).await {
        Ok(Ok(outcome)) => outcome,
        Ok(Err(())) => Outcome::Transport,
        Err(_) => Outcome::Timeout,
    }
}

/// One request as the client saw it, for callers that time events
/// ([`run_observed`]).
#[derive(Debug, Clone)]
pub struct Observed {
    /// When the answer (or the failure) arrived.
    pub at: Instant,
    /// The HTTP status; `None` when no answer came (transport error, timeout).
    pub status: Option<u16>,
    /// Time from sending to the answer's head (to the failure otherwise).
    pub latency: Duration,
    /// The router's `x-sluice-pool` header.
    pub pool: Option<String>,
}

/// Sends paced load until `config.duration` elapses or `stop` begins, then
/// waits for in-flight requests (bounded by the timeout) and summarizes.
pub async fn run(config: LoadConfig, stop: Shutdown) -> Summary {
    run_observed(config, stop, None).await
}

/// [`run`], also sending every request's [`Observed`] to `observer`.
pub async fn run_observed(
    config: LoadConfig,
    stop: Shutdown,
    observer: Option<mpsc::UnboundedSender<Observed>>,
) -> Summary {
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    let client: HttpClient =
        Client::builder(TokioExecutor::new()).pool_max_idle_per_host(config.concurrency).build(connector);
    let tally = Arc::new(Mutex::new(Tally::new()));
    let concurrency = config.concurrency.max(1);
    let (tokens, rx) = mpsc::channel::<()>(concurrency);
    let rx = Arc::new(tokio::sync::Mutex::new(rx));
    let started = Instant::now();

    let workers: Vec<_> = (0..concurrency)
        .map(|_| {
            let (client, rx, tally, url) = (client.clone(), Arc::clone(&rx), Arc::clone(&tally), config.url.clone());
            let timeout = config.timeout;
            let observer = observer.clone();
            tokio::spawn(async move {
                loop {
                    let token = rx.lock().await.recv().await;
                    if token.is_none() {
                        break;
                    }
                    let sent = Instant::now();
                    let outcome = one_request(&client, &url, timeout).await;
                    if let Some(observer) = &observer {
                        let (status, latency, pool) = match &outcome {
                            Outcome::Answer { status, pool, latency, .. } => (Some(*status), *latency, pool.clone()),
                            Outcome::Transport | Outcome::Timeout => (None, sent.elapsed(), None),
                        };
                        // A receiver that went away wants no more events.
                        let _ = observer.send(Observed { at: Instant::now(), status, latency, pool });
                    }
                    tally.lock().unwrap_or_else(PoisonError::into_inner).add(outcome);
                }
            })
        })
        .collect();

    let reporter = config.report_every.map(|every| {
        let tally = Arc::clone(&tally);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
            loop {
                tick.tick().await;
                let t = tally.lock().unwrap_or_else(PoisonError::into_inner);
                let elapsed = started.elapsed().as_secs_f64();
                eprintln!(
                    "loadgen: {elapsed:.1}s sent={} ok={} 5xx={} connect_errors={} timeouts={} stable={} candidate={} rate={:.1}/s",
                    t.sent,
                    t.ok,
                    t.errors_5xx,
                    t.connect_errors,
                    t.timeouts,
                    t.by_pool.get("stable").copied().unwrap_or(0),
                    t.by_pool.get("candidate").copied().unwrap_or(0),
                    t.sent as f64 / elapsed.max(1e-9),
                );
            }
        })
    });

    // The pacer: token i is due at i / rps; missed slots are dropped when the
    // bucket is full.
    let mut dropped = 0;
    let mut issued: u64 = 0;
    let end = tokio::time::Instant::from_std(started) + config.duration;
    let mut stop = stop;
    loop {
        let due = tokio::time::Instant::from_std(started) + Duration::from_secs_f64(issued as f64 / config.rps);
        if due >= end {
            break;
        }
        tokio::select! {
            biased;
            () = stop.wait() => break,
            () = tokio::time::sleep_until(due) => {}
        }
        if tokens.try_send(()).is_err() {
            dropped += 1;
        }
        issued += 1;
    }
    drop(tokens);
    // Tokens still in the bucket were issued inside the run: let workers
    // finish them and what is in flight.
    for worker in workers {
        let _ = worker.await;
    }
    if let Some(reporter) = reporter {
        reporter.abort();
    }
    let elapsed = started.elapsed();
    tally.lock().unwrap_or_else(PoisonError::into_inner).summary(dropped, elapsed)
}

/// Runs the load generator and prints the summary.
pub fn main() -> ExitCode {
    cli::exit("sluice-loadgen", load(Args::parse()))
}

fn load(args: Args) -> Result<(), Failure> {
    if args.url.scheme_str() != Some("http") || args.url.authority().is_none() {
        return Err(Failure::input(anyhow::anyhow!("--url must be an absolute http:// URL, got {}", args.url)));
    }
    let config = LoadConfig {
        url: args.url,
        rps: args.rps,
        duration: args.duration,
        concurrency: usize::from(args.concurrency),
        timeout: args.timeout,
        report_every: args.report_every,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().map_err(cli::runtime_failure)?;
    let summary = runtime.block_on(async {
        let signal = serve::termination_signal();
        let (trigger, stop) = serve::shutdown_channel();
        tokio::spawn(async move {
            signal.await;
            trigger.trigger();
        });
        run(config, stop).await
    });
    let line = serde_json::to_string(&summary).expect("summary serializes");
    println!("{line}");
    if let Some(path) = args.out {
        serve::write_ready_file(&path, &line).map_err(|e| cli::write_failure(e, &path, "--out"))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tally_counts_by_status_pool_and_body() {
        let mut t = Tally::new();
        let answer = |status, pool: Option<&str>, body: &str| Outcome::Answer {
            status,
            pool: pool.map(str::to_owned),
            first_line: body.to_owned(),
            latency: Duration::from_millis(2),
        };
        t.add(answer(200, Some("stable"), "v1"));
        t.add(answer(200, Some("candidate"), "v2"));
        t.add(answer(500, Some("candidate"), "injected error"));
        t.add(answer(404, None, "not found"));
        t.add(Outcome::Transport);
        t.add(Outcome::Timeout);
        let s = t.summary(3, Duration::from_secs(1));
        assert_eq!((s.sent, s.ok, s.errors_5xx, s.errors_other), (6, 2, 1, 1));
        assert_eq!((s.connect_errors, s.timeouts, s.dropped), (1, 1, 3));
        assert_eq!(s.by_pool["stable"], 1);
        assert_eq!(s.by_pool["candidate"], 2);
        assert_eq!(s.by_body["v2"], 1);
        assert!((1.9..=2.1).contains(&s.p50_ms), "{}", s.p50_ms);
    }

    #[test]
    fn cli_is_consistent() {
        use clap::CommandFactory;
        Args::command().debug_assert();
    }

    #[test]
    fn empty_tally_has_zero_latency() {
        let s = Tally::new().summary(0, Duration::ZERO);
        assert_eq!((s.sent, s.p50_ms, s.p99_ms), (0, 0.0, 0.0));
        assert_eq!(s.by_pool.len(), 2);
    }
}
