//! `sluice-demo-app`: answers `GET /` with its release name, or with an injected
//! 500 for a configurable share of requests, after an optional added latency.
//!
//! `GET /healthz` never fails; `PUT /faults` changes the faults at run time;
//! `GET /metrics` exposes Prometheus counters and a latency histogram.

use std::convert::Infallible;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

use clap::Parser;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Bytes, Incoming};
use hyper::header::{self, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sluice_core::{Exit, Failure};
use sluice_router::serve;

use crate::cli;

/// Upper bounds (seconds) of the latency histogram: Prometheus' defaults.
const BUCKETS: [f64; 11] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];

const AFTER_HELP: &str = "\
Examples:
  sluice-demo-app --listen 127.0.0.1:8081 --release v1
  sluice-demo-app --release v3 --error-ratio 0.2 --latency 300ms --seed 7 --ready-file v3.json
  curl -X PUT -d '{\"error_ratio\":0}' http://127.0.0.1:8081/faults";

/// Demo HTTP app with injectable errors and latency.
///
/// `GET /` answers the release name (or an injected 500 for --error-ratio of
/// the requests, after --latency). `GET /healthz` never fails, `GET
/// /metrics` serves Prometheus counters and a latency histogram, and `PUT
/// /faults` changes the error ratio and latency while it runs.
#[derive(Debug, Parser)]
// Its own `--version`: with a value it is the old spelling of --release.
#[command(name = "sluice-demo-app", disable_version_flag = true, after_help = format!("{}\n\n{AFTER_HELP}", cli::EXIT_CODES))]
pub struct Args {
    /// Address to listen on; port 0 picks a free port.
    #[arg(long, default_value = "127.0.0.1:0")]
    pub listen: SocketAddr,
    /// Release name served by `GET /` and `GET /version` (e.g. v2).
    #[arg(long, value_name = "NAME", required_unless_present = "version")]
    pub release: Option<String>,
    /// Print version. (`--version NAME` is the old spelling of --release
    /// and still works.)
    #[arg(short = 'V', long, value_name = "NAME", num_args = 0..=1, conflicts_with = "release")]
    pub version: Option<Option<String>>,
    /// Share of `GET /` requests answered with 500, 0..=1.
    #[arg(long, default_value_t = 0.0, value_parser = parse_ratio)]
    pub error_ratio: f64,
    /// Latency added to every `GET /` (e.g. 300ms).
    #[arg(long, default_value = "0s", value_parser = humantime::parse_duration)]
    pub latency: Duration,
    /// Seed for the error draw, for reproducible runs.
    #[arg(long)]
    pub seed: Option<u64>,
    /// Write `{"listen":..,"pid":..}` here (atomically) once listening.
    #[arg(long)]
    pub ready_file: Option<PathBuf>,
}

fn parse_ratio(s: &str) -> Result<f64, String> {
    let ratio: f64 = s.parse().map_err(|_| format!("{s:?} is not a number"))?;
    check_ratio(ratio)
}

fn check_ratio(ratio: f64) -> Result<f64, String> {
    if (0.0..=1.0).contains(&ratio) {
        Ok(ratio)
    } else {
        Err(format!("error_ratio must be between 0 and 1, got {ratio}"))
    }
}

/// Faults as `PUT /faults` takes and returns them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Faults {
    /// Share of requests answered with 500.
    pub error_ratio: f64,
    /// Added latency, humantime (`"300ms"`, `"0s"`).
    pub latency: String,
}

/// What the app needs to start.
#[derive(Debug, Clone)]
pub struct AppConfig {
    /// Address to listen on.
    pub listen: SocketAddr,
    /// Version served by `GET /`.
    pub version: String,
    /// Share of requests answered with 500, clamped to 0..=1.
    pub error_ratio: f64,
    /// Added latency.
    pub latency: Duration,
    /// Seed of the error draw; random when absent.
    pub seed: Option<u64>,
}

struct State {
    version: String,
    version_label: String,
    error_ratio_bits: AtomicU64,
    latency_ns: AtomicU64,
    rng: AtomicU64,
    ok: AtomicU64,
    errors: AtomicU64,
    buckets: [AtomicU64; BUCKETS.len()],
    duration_sum_us: AtomicU64,
}

impl State {
    fn faults(&self) -> Faults {
        Faults {
            error_ratio: f64::from_bits(self.error_ratio_bits.load(Relaxed)),
            latency: humantime::format_duration(Duration::from_nanos(self.latency_ns.load(Relaxed))).to_string(),
        }
    }

    /// A uniform draw in [0, 1) from a splitmix64 sequence: reproducible for
    /// a given seed and request order.
    fn draw(&self) -> f64 {
        const GAMMA: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut z = self.rng.fetch_add(GAMMA, Relaxed).wrapping_add(GAMMA);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        (z >> 11) as f64 / (1u64 << 53) as f64
    }

    fn observe(&self, failed: bool, elapsed: Duration) {
        if failed { &self.errors } else { &self.ok }.fetch_add(1, Relaxed);
        let secs = elapsed.as_secs_f64();
        if let Some(i) = BUCKETS.iter().position(|le| secs <= *le) {
            self.buckets[i].fetch_add(1, Relaxed);
        }
        self.duration_sum_us.fetch_add(u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX), Relaxed);
    }

    fn metrics(&self) -> String {
        let v = &self.version_label;
        let ok = self.ok.load(Relaxed);
        let errors = self.errors.load(Relaxed);
        let mut out = String::with_capacity(2048);
        let _ = writeln!(
            out,
            "# HELP http_requests_total Requests to GET / by status.\n\
             # TYPE http_requests_total counter\n\
             http_requests_total{{status=\"200\",version=\"{v}\"}} {ok}\n\
             http_requests_total{{status=\"500\",version=\"{v}\"}} {errors}\n\
             # HELP http_request_duration_seconds Time to answer GET /, injected latency included.\n\
             # TYPE http_request_duration_seconds histogram"
        );
        let mut cumulative = 0;
        for (le, count) in BUCKETS.iter().zip(&self.buckets) {
            cumulative += count.load(Relaxed);
            let _ = writeln!(out, "http_request_duration_seconds_bucket{{version=\"{v}\",le=\"{le}\"}} {cumulative}");
        }
        let sum = self.duration_sum_us.load(Relaxed) as f64 / 1e6;
        let _ = writeln!(
            out,
            "http_request_duration_seconds_bucket{{version=\"{v}\",le=\"+Inf\"}} {total}\n\
             http_request_duration_seconds_sum{{version=\"{v}\"}} {sum}\n\
             http_request_duration_seconds_count{{version=\"{v}\"}} {total}",
            total = ok + errors,
        );
        out
    }
}

/// A running demo app; dropping it stops it.
#[derive(Debug)]
pub struct DemoApp {
    addr: SocketAddr,
    trigger: serve::ShutdownTrigger,
    task: tokio::task::JoinHandle<()>,
}

impl DemoApp {
    /// Binds and starts serving on the current tokio runtime.
    pub async fn start(config: AppConfig) -> Result<Self, serve::BindError> {
        let error_ratio = if config.error_ratio.is_nan() { 0.0 } else { config.error_ratio.clamp(0.0, 1.0) };
        let seed = config.seed.unwrap_or_else(|| {
            use std::hash::BuildHasher;
            std::collections::hash_map::RandomState::new().hash_one(std::process::id())
        });
        let state = Arc::new(State {
            version_label: config.version.replace('\\', "\\\\").replace('"', "\\\""),
            version: config.version,
            error_ratio_bits: AtomicU64::new(error_ratio.to_bits()),
            latency_ns: AtomicU64::new(nanos(config.latency)),
            rng: AtomicU64::new(seed),
            ok: AtomicU64::new(0),
            errors: AtomicU64::new(0),
            buckets: Default::default(),
            duration_sum_us: AtomicU64::new(0),
        });
        let listener = serve::bind(config.listen).await?;
        let addr = listener.local_addr().map_err(|source| serve::BindError { addr: config.listen, source })?;
        let (trigger, shutdown) = serve::shutdown_channel();
        let task = tokio::spawn(serve::serve(
            listener,
            move |_| {
                let state = Arc::clone(&state);
                hyper::service::service_fn(move |req| handle(Arc::clone(&state), req))
            },
            shutdown,
            serve::DEFAULT_GRACE,
        ));
        Ok(Self { addr, trigger, task })
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops accepting and waits for in-flight requests (up to 2 s).
    pub async fn shutdown(self) {
        self.trigger.trigger();
        let _ = self.task.await;
    }
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

type AppResponse = Response<Full<Bytes>>;

async fn handle(state: Arc<State>, req: Request<Incoming>) -> Result<AppResponse, Infallible> {
    let start = Instant::now();
    let resp = match (req.method(), req.uri().path()) {
        (&Method::GET, "/") => {
            let latency = state.latency_ns.load(Relaxed);
            if latency > 0 {
                tokio::time::sleep(Duration::from_nanos(latency)).await;
            }
            let ratio = f64::from_bits(state.error_ratio_bits.load(Relaxed));
            let failed = ratio > 0.0 && state.draw() < ratio;
            state.observe(failed, start.elapsed());
            if failed {
                text(StatusCode::INTERNAL_SERVER_ERROR, "injected error\n".into())
            } else {
                text(StatusCode::OK, format!("{}\n", state.version))
            }
        }
        (&Method::GET, "/healthz") => text(StatusCode::OK, "ok\n".into()),
        (&Method::GET, "/version") => text(StatusCode::OK, format!("{}\n", state.version)),
        (&Method::GET, "/metrics") => text(StatusCode::OK, state.metrics()),
        (&Method::GET, "/faults") => json(StatusCode::OK, &state.faults()),
        (&Method::PUT, "/faults") => match update_faults(&state, req.into_body()).await {
            Ok(faults) => json(StatusCode::OK, &faults),
            Err(message) => json(StatusCode::BAD_REQUEST, &serde_json::json!({ "error": message })),
        },
        _ => text(StatusCode::NOT_FOUND, "not found\n".into()),
    };
    Ok(resp)
}

/// Applies `{"error_ratio":0.1,"latency":"300ms"}` (both optional) after
/// validating all of it.
async fn update_faults(state: &State, body: Incoming) -> Result<Faults, String> {
    let bytes = Limited::new(body, 64 * 1024)
        .collect()
        .await
        .map_err(|_| "request body is unreadable or too large".to_owned())?
        .to_bytes();
    let obj: Map<String, Value> =
        serde_json::from_slice(&bytes).map_err(|e| format!("request body must be a JSON object: {e}"))?;
    if let Some(key) = obj.keys().find(|k| !["error_ratio", "latency"].contains(&k.as_str())) {
        return Err(format!("unknown field {key:?}, expected \"error_ratio\" or \"latency\""));
    }
    let ratio = match obj.get("error_ratio") {
        None => None,
        Some(v) => {
            Some(v.as_f64().ok_or_else(|| format!("error_ratio must be a number, got {v}")).and_then(check_ratio)?)
        }
    };
    let latency = match obj.get("latency") {
        None => None,
        Some(Value::String(s)) => {
            Some(humantime::parse_duration(s).map_err(|e| format!("latency {s:?} is not a duration: {e}"))?)
        }
        Some(v) => {
            return Err(format!("latency must be a duration string like \"300ms\", got {v}"));
        }
    };
    if let Some(ratio) = ratio {
        state.error_ratio_bits.store(ratio.to_bits(), Relaxed);
    }
    if let Some(latency) = latency {
        state.latency_ns.store(nanos(latency), Relaxed);
    }
    Ok(state.faults())
}

fn text(status: StatusCode, body: String) -> AppResponse {
    let mut resp = Response::new(Full::new(Bytes::from(body)));
    *resp.status_mut() = status;
    resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    resp
}

fn json<T: Serialize>(status: StatusCode, value: &T) -> AppResponse {
    let mut resp = text(status, serde_json::to_string(value).expect("serializes") + "\n");
    resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    resp
}

/// Runs the app until SIGTERM/SIGINT; `--version` alone prints the
/// program's version.
pub fn main() -> ExitCode {
    let args = Args::parse();
    let release = match (args.release, args.version) {
        (Some(release), _) | (None, Some(Some(release))) => release,
        (None, Some(None)) => {
            println!("sluice-demo-app {}", env!("CARGO_PKG_VERSION"));
            return Exit::OK.into();
        }
        // clap requires --release unless --version is given.
        (None, None) => {
            let failure = Failure::input(anyhow::anyhow!("give the release to serve with --release NAME"));
            return cli::exit("sluice-demo-app", Err(failure));
        }
    };
    let config = AppConfig {
        listen: args.listen,
        version: release,
        error_ratio: args.error_ratio,
        latency: args.latency,
        seed: args.seed,
    };
    let result = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(cli::runtime_failure)
        .and_then(|rt| rt.block_on(run(config, args.ready_file)));
    cli::exit("sluice-demo-app", result)
}

async fn run(config: AppConfig, ready_file: Option<PathBuf>) -> Result<(), Failure> {
    let signal = serve::termination_signal();
    let app = DemoApp::start(config).await.map_err(|e| cli::bind_failure(e, "--listen"))?;
    let line = serde_json::json!({ "listen": app.addr(), "pid": std::process::id() }).to_string();
    if let Some(path) = ready_file {
        serve::write_ready_file(&path, &line).map_err(|e| cli::write_failure(e, &path, "--ready-file"))?;
    }
    println!("{line}");
    signal.await;
    app.shutdown().await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(ratio: f64, seed: u64) -> State {
        State {
            version: "v1".into(),
            version_label: "v1".into(),
            error_ratio_bits: AtomicU64::new(ratio.to_bits()),
            latency_ns: AtomicU64::new(0),
            rng: AtomicU64::new(seed),
            ok: AtomicU64::new(0),
            errors: AtomicU64::new(0),
            buckets: Default::default(),
            duration_sum_us: AtomicU64::new(0),
        }
    }

    #[test]
    fn draws_are_uniform_and_reproducible() {
        let a = state(0.0, 7);
        let b = state(0.0, 7);
        let xs: Vec<f64> = (0..10_000).map(|_| a.draw()).collect();
        let ys: Vec<f64> = (0..10_000).map(|_| b.draw()).collect();
        assert_eq!(xs, ys);
        assert!(xs.iter().all(|x| (0.0..1.0).contains(x)));
        let below = xs.iter().filter(|x| **x < 0.05).count();
        assert!((350..650).contains(&below), "{below}");
    }

    #[test]
    fn metrics_histogram_is_cumulative() {
        let s = state(0.0, 1);
        s.observe(false, Duration::from_millis(3));
        s.observe(true, Duration::from_millis(300));
        s.observe(false, Duration::from_secs(20));
        let text = s.metrics();
        for line in [
            "http_requests_total{status=\"200\",version=\"v1\"} 2",
            "http_requests_total{status=\"500\",version=\"v1\"} 1",
            "http_request_duration_seconds_bucket{version=\"v1\",le=\"0.005\"} 1",
            "http_request_duration_seconds_bucket{version=\"v1\",le=\"0.5\"} 2",
            "http_request_duration_seconds_bucket{version=\"v1\",le=\"10\"} 2",
            "http_request_duration_seconds_bucket{version=\"v1\",le=\"+Inf\"} 3",
            "http_request_duration_seconds_count{version=\"v1\"} 3",
        ] {
            assert!(text.lines().any(|l| l == line), "missing {line}\n{text}");
        }
    }

    #[test]
    fn cli_is_consistent() {
        use clap::CommandFactory;
        Args::command().debug_assert();
    }

    #[test]
    fn ratio_bounds() {
        assert!(parse_ratio("0.05").is_ok());
        assert!(parse_ratio("1").is_ok());
        assert!(parse_ratio("1.5").is_err());
        assert!(parse_ratio("-0.1").is_err());
        assert!(parse_ratio("x").is_err());
    }
}
