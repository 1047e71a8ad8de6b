//! `sluice-faultproxy`: an HTTP/1.1 proxy for tests that stands between
//! sluice and a provider (the embedded router's admin API, the AWS emulator,
//! the GitHub fake) and breaks a set share of the calls: 5xx answers,
//! throttling in the provider's own format, slow answers, and connections
//! dropped without an answer.
//!
//! `GET /__faults` shows the rates and what was done so far; `PUT /__faults`
//! changes the rates at run time (`{"error_rate":1}` takes the provider
//! "down"). Every other request is forwarded to `--upstream` unless a fault
//! is drawn for it. Test tooling only.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use clap::{Parser, ValueEnum};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Bytes, Incoming};
use hyper::header::{self, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde::{Deserialize, Serialize};
use sluice_core::Failure;
use sluice_router::serve;

use sluice_demo::cli;

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

/// How a provider says "slow down".
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Throttle {
    /// 429 with `Retry-After: 1`.
    Http,
    /// AWS query protocol (ELBv2, CloudWatch): 400, XML `Throttling`.
    AwsQuery,
    /// AWS JSON protocol (CodeDeploy): 400, `ThrottlingException`.
    AwsJson,
    /// GitHub's primary rate limit: 403 with `x-ratelimit-remaining: 0`.
    Github,
}

/// The rates in force; all in `[0, 1]`, drawn in the order drop, error,
/// throttle, slow.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rates {
    #[serde(default)]
    pub error_rate: f64,
    #[serde(default)]
    pub throttle_rate: f64,
    #[serde(default)]
    pub slow_rate: f64,
    #[serde(default)]
    pub drop_rate: f64,
    /// Only requests with these HTTP methods draw faults (e.g. `["POST"]`
    /// breaks the writes and lets the reads through); empty: all of them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub methods: Vec<String>,
}

impl Rates {
    fn check(&self) -> Result<(), String> {
        for (name, rate) in [
            ("error_rate", self.error_rate),
            ("throttle_rate", self.throttle_rate),
            ("slow_rate", self.slow_rate),
            ("drop_rate", self.drop_rate),
        ] {
            if !(0.0..=1.0).contains(&rate) {
                return Err(format!("{name} {rate} is not in [0, 1]"));
            }
        }
        Ok(())
    }
}

#[derive(Debug, Default)]
struct Counters {
    forwarded: AtomicU64,
    errors: AtomicU64,
    throttled: AtomicU64,
    slowed: AtomicU64,
    dropped: AtomicU64,
}

struct State {
    upstream: String,
    client: Client<HttpConnector, Full<Bytes>>,
    rates: Mutex<Rates>,
    slow: Duration,
    throttle: Throttle,
    rng: AtomicU64,
    counters: Counters,
}

enum Fault {
    None,
    Drop,
    Error,
    Throttle,
    Slow,
}

impl State {
    /// A uniform draw in `[0, 1)` (splitmix64 on an atomic counter).
    fn draw(&self) -> f64 {
        let mut z = self.rng.fetch_add(0x9E37_79B9_7F4A_7C15, Relaxed).wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        ((z ^ (z >> 31)) >> 11) as f64 / (1u64 << 53) as f64
    }

    fn fault(&self, method: &Method) -> Fault {
        let rates = self.rates.lock().map(|r| r.clone()).unwrap_or_default();
        if !rates.methods.is_empty() && !rates.methods.iter().any(|m| m.eq_ignore_ascii_case(method.as_str())) {
            return Fault::None;
        }
        let x = self.draw();
        let mut edge = rates.drop_rate;
        if x < edge {
            return Fault::Drop;
        }
        edge += rates.error_rate;
        if x < edge {
            return Fault::Error;
        }
        edge += rates.throttle_rate;
        if x < edge {
            return Fault::Throttle;
        }
        edge += rates.slow_rate;
        if x < edge {
            return Fault::Slow;
        }
        Fault::None
    }

    fn report(&self) -> serde_json::Value {
        let rates = self.rates.lock().map(|r| r.clone()).unwrap_or_default();
        let c = &self.counters;
        serde_json::json!({
            "rates": rates,
            "slow": humantime::format_duration(self.slow).to_string(),
            "throttle": self.throttle,
            "forwarded": c.forwarded.load(Relaxed),
            "errors": c.errors.load(Relaxed),
            "throttled": c.throttled.load(Relaxed),
            "slowed": c.slowed.load(Relaxed),
            "dropped": c.dropped.load(Relaxed),
        })
    }
}

type ProxyResponse = Response<Full<Bytes>>;

/// The proxy's answer, or an error that makes hyper close the connection
/// without answering (a dropped connection).
async fn handle(state: Arc<State>, req: Request<Incoming>) -> Result<ProxyResponse, std::io::Error> {
    if req.uri().path() == "/__faults" {
        return Ok(admin(&state, req).await);
    }
    match state.fault(req.method()) {
        Fault::Drop => {
            state.counters.dropped.fetch_add(1, Relaxed);
            return Err(std::io::Error::other("fault injected: connection dropped"));
        }
        Fault::Error => {
            state.counters.errors.fetch_add(1, Relaxed);
            return Ok(answer(StatusCode::INTERNAL_SERVER_ERROR, "text/plain", "fault injected: internal error\n"));
        }
        Fault::Throttle => {
            state.counters.throttled.fetch_add(1, Relaxed);
            return Ok(throttled(state.throttle));
        }
        Fault::Slow => {
            state.counters.slowed.fetch_add(1, Relaxed);
            tokio::time::sleep(state.slow).await;
        }
        Fault::None => {}
    }
    Ok(forward(&state, req).await)
}

async fn forward(state: &State, req: Request<Incoming>) -> ProxyResponse {
    let (mut parts, body) = req.into_parts();
    let Ok(body) = Limited::new(body, 16 << 20).collect().await.map(|b| b.to_bytes()) else {
        return answer(StatusCode::BAD_REQUEST, "text/plain", "request body unreadable or over 16 MiB\n");
    };
    let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    let Ok(uri) = format!("{}{path}", state.upstream).parse::<hyper::Uri>() else {
        return answer(StatusCode::BAD_REQUEST, "text/plain", "cannot build the upstream URI\n");
    };
    if let Some(authority) = uri.authority().and_then(|a| HeaderValue::from_str(a.as_str()).ok()) {
        parts.headers.insert(header::HOST, authority);
    }
    parts.uri = uri;
    let request = Request::from_parts(parts, Full::new(body));
    match state.client.request(request).await {
        Ok(response) => {
            let (parts, body) = response.into_parts();
            match body.collect().await {
                Ok(body) => {
                    state.counters.forwarded.fetch_add(1, Relaxed);
                    Response::from_parts(parts, Full::new(body.to_bytes()))
                }
                Err(e) => answer(StatusCode::BAD_GATEWAY, "text/plain", &format!("upstream body: {e}\n")),
            }
        }
        Err(e) => answer(StatusCode::BAD_GATEWAY, "text/plain", &format!("upstream: {e}\n")),
    }
}

fn throttled(kind: Throttle) -> ProxyResponse {
    match kind {
        Throttle::Http => {
            let mut r = answer(StatusCode::TOO_MANY_REQUESTS, "text/plain", "fault injected: too many requests\n");
            r.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            r
        }
        Throttle::AwsQuery => answer(
            StatusCode::BAD_REQUEST,
            "text/xml",
            "<ErrorResponse><Error><Type>Sender</Type><Code>Throttling</Code><Message>Rate exceeded</Message>\
             </Error><RequestId>fault-injected-0001</RequestId></ErrorResponse>",
        ),
        Throttle::AwsJson => {
            let mut r = answer(
                StatusCode::BAD_REQUEST,
                "application/x-amz-json-1.1",
                r#"{"__type":"ThrottlingException","message":"Rate exceeded"}"#,
            );
            r.headers_mut().insert("x-amzn-requestid", HeaderValue::from_static("fault-injected-0001"));
            r
        }
        Throttle::Github => {
            let reset = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs() + 1)
                .to_string();
            let mut r = answer(
                StatusCode::FORBIDDEN,
                "application/json",
                r#"{"message":"API rate limit exceeded","documentation_url":"https://docs.github.com/rest/using-the-rest-api/rate-limits-for-the-rest-api"}"#,
            );
            let headers = r.headers_mut();
            headers.insert("x-ratelimit-limit", HeaderValue::from_static("5000"));
            headers.insert("x-ratelimit-remaining", HeaderValue::from_static("0"));
            headers.insert("x-ratelimit-used", HeaderValue::from_static("5000"));
            if let Ok(reset) = HeaderValue::from_str(&reset) {
                headers.insert("x-ratelimit-reset", reset);
            }
            r
        }
    }
}

async fn admin(state: &State, req: Request<Incoming>) -> ProxyResponse {
    if req.method() == Method::PUT {
        let Ok(bytes) = Limited::new(req.into_body(), 64 * 1024).collect().await.map(|b| b.to_bytes()) else {
            return answer(StatusCode::BAD_REQUEST, "text/plain", "body unreadable\n");
        };
        let rates: Rates = match serde_json::from_slice(&bytes) {
            Ok(rates) => rates,
            Err(e) => return answer(StatusCode::BAD_REQUEST, "text/plain", &format!("{e}\n")),
        };
        if let Err(e) = rates.check() {
            return answer(StatusCode::BAD_REQUEST, "text/plain", &format!("{e}\n"));
        }
        if let Ok(mut current) = state.rates.lock() {
            *current = rates;
        }
    }
    answer(StatusCode::OK, "application/json", &format!("{}\n", state.report()))
}

fn answer(status: StatusCode, content_type: &'static str, body: &str) -> ProxyResponse {
    let mut resp = Response::new(Full::new(Bytes::from(body.to_owned())));
    *resp.status_mut() = status;
    resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    resp
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
    let state = Arc::new(State {
        upstream: args.upstream.trim_end_matches('/').to_owned(),
        client: Client::builder(TokioExecutor::new()).build_http(),
        rates: Mutex::new(rates),
        slow: args.slow,
        throttle: args.throttle,
        rng: AtomicU64::new(args.seed),
        counters: Counters::default(),
    });
    let signal = serve::termination_signal();
    let listener = serve::bind(args.listen).await.map_err(|e| cli::bind_failure(e, "--listen"))?;
    let addr = listener
        .local_addr()
        .map_err(|source| cli::bind_failure(serve::BindError { addr: args.listen, source }, "--listen"))?;
    if let Some(path) = &args.ready_file {
        let line = serde_json::json!({ "listen": addr, "pid": std::process::id() }).to_string();
        serve::write_ready_file(path, &line).map_err(|e| cli::write_failure(e, path, "--ready-file"))?;
    }
    // Its own accept loop rather than the router's `serve`: a service error
    // here must close the connection unanswered (an injected drop).
    let accept = async {
        loop {
            let Ok((stream, _)) = listener.accept().await else { continue };
            let state = Arc::clone(&state);
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |req| handle(Arc::clone(&state), req));
                let io = hyper_util::rt::TokioIo::new(stream);
                let _ = hyper::server::conn::http1::Builder::new().serve_connection(io, service).await;
            });
        }
    };
    tokio::select! {
        () = signal => {}
        () = accept => {}
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
