//! The demo app and the load generator against each other and the router,
//! in-process and as binaries.

use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::{Method, Request, StatusCode};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use sluice_demo::app::{AppConfig, DemoApp};
use sluice_demo::loadgen::{self, LoadConfig};
use sluice_router::serve;
use sluice_router::{Config, Router, Upstream};

fn app_config(version: &str) -> AppConfig {
    AppConfig {
        listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        version: version.to_owned(),
        error_ratio: 0.0,
        latency: Duration::ZERO,
        seed: Some(42),
    }
}

async fn call(method: Method, url: String, body: &str) -> (StatusCode, String) {
    let client: Client<HttpConnector, Full<Bytes>> = Client::builder(TokioExecutor::new()).build(HttpConnector::new());
    let req =
        Request::builder().method(method).uri(url).body(Full::new(Bytes::from(body.to_owned()))).expect("request");
    let resp = client.request(req).await.expect("response");
    let status = resp.status();
    let body = resp.into_body().collect().await.expect("body").to_bytes();
    (status, String::from_utf8_lossy(&body).into_owned())
}

fn load(url: String, rps: f64, duration: Duration) -> LoadConfig {
    LoadConfig {
        url: url.parse().expect("url"),
        rps,
        duration,
        concurrency: 8,
        timeout: Duration::from_secs(5),
        report_every: None,
    }
}

#[tokio::test]
async fn app_serves_version_health_and_faults() {
    let app = DemoApp::start(app_config("v2")).await.expect("start");
    let base = format!("http://{}", app.addr());
    assert_eq!(call(Method::GET, format!("{base}/"), "").await, (StatusCode::OK, "v2\n".into()));
    assert_eq!(call(Method::GET, format!("{base}/version"), "").await.1, "v2\n");

    let (status, faults) = call(Method::PUT, format!("{base}/faults"), r#"{"error_ratio":1,"latency":"20ms"}"#).await;
    assert_eq!(status, StatusCode::OK, "{faults}");
    let started = Instant::now();
    assert_eq!(
        call(Method::GET, format!("{base}/"), "").await,
        (StatusCode::INTERNAL_SERVER_ERROR, "injected error\n".into())
    );
    assert!(started.elapsed() >= Duration::from_millis(20));
    assert_eq!(call(Method::GET, format!("{base}/healthz"), "").await.0, StatusCode::OK);

    for bad in [r#"{"error_ratio":2}"#, r#"{"latency":"soon"}"#, r#"{"ratio":0}"#, "x"] {
        let (status, body) = call(Method::PUT, format!("{base}/faults"), bad).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}: {body}");
    }
    let (_, faults) = call(Method::GET, format!("{base}/faults"), "").await;
    assert_eq!(faults.trim(), r#"{"error_ratio":1.0,"latency":"20ms"}"#);

    let (_, metrics) = call(Method::GET, format!("{base}/metrics"), "").await;
    assert!(metrics.contains("http_requests_total{status=\"200\",version=\"v2\"} 1\n"), "{metrics}");
    assert!(metrics.contains("http_requests_total{status=\"500\",version=\"v2\"} 1\n"), "{metrics}");
    assert!(metrics.contains("http_request_duration_seconds_count{version=\"v2\"} 2\n"), "{metrics}");
    app.shutdown().await;
}

#[tokio::test]
async fn seeded_error_ratio_is_reproducible() {
    let mut runs = Vec::new();
    for _ in 0..2 {
        let mut config = app_config("v1");
        config.error_ratio = 0.3;
        let app = DemoApp::start(config).await.expect("start");
        let mut statuses = Vec::new();
        for _ in 0..200 {
            statuses.push(call(Method::GET, format!("http://{}/", app.addr()), "").await.0);
        }
        let errors = statuses.iter().filter(|s| s.is_server_error()).count();
        assert!((30..=90).contains(&errors), "{errors}");
        runs.push(statuses);
    }
    assert_eq!(runs[0], runs[1]);
}

#[tokio::test]
async fn loadgen_through_router_counts_pools_and_bodies() {
    let v1 = DemoApp::start(app_config("v1")).await.expect("start");
    let v2 = DemoApp::start(app_config("v2")).await.expect("start");
    let url = |app: &DemoApp| Upstream::parse(&format!("http://{}", app.addr())).expect("url");
    let mut config = Config::new(url(&v1));
    config.candidate = Some(url(&v2));
    config.candidate_weight = 50;
    let router = Router::start(config).await.expect("router");
    let (_trigger, stop) = serve::shutdown_channel();
    let summary =
        loadgen::run(load(format!("http://{}/", router.listen_addr()), 400.0, Duration::from_millis(1000)), stop).await;
    // Every token of the run is either sent or dropped (all workers busy).
    assert_eq!(summary.sent + summary.dropped, 400, "{summary:?}");
    assert!(summary.sent >= 300, "{summary:?}");
    assert_eq!(summary.ok, summary.sent);
    assert_eq!(summary.by_pool["stable"], summary.by_body["v1"]);
    assert_eq!(summary.by_pool["candidate"], summary.by_body["v2"]);
    assert!(summary.by_body["v1"] > 100 && summary.by_body["v2"] > 100, "{summary:?}");
    assert!(summary.p99_ms > 0.0);
    let stats = router.control().stats();
    assert_eq!(stats.pools.stable.requests, summary.by_pool["stable"]);
}

#[tokio::test]
async fn loadgen_counts_connect_errors_and_stops_early() {
    let dead = {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        l.local_addr().expect("addr")
    };
    let (trigger, stop) = serve::shutdown_channel();
    let task = tokio::spawn(loadgen::run(load(format!("http://{dead}/"), 100.0, Duration::from_secs(30)), stop));
    tokio::time::sleep(Duration::from_millis(300)).await;
    trigger.trigger();
    let summary = task.await.expect("task");
    assert!(summary.elapsed_s < 2.0, "{summary:?}");
    assert!(summary.sent > 5, "{summary:?}");
    assert_eq!(summary.connect_errors, summary.sent);
}

#[test]
fn binaries_run_end_to_end() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ready = dir.path().join("app.json");
    let mut app = Command::new(env!("CARGO_BIN_EXE_sluice-demo-app"))
        .args(["--release", "v7", "--latency", "1ms", "--seed", "1", "--ready-file"])
        .arg(&ready)
        .stdout(Stdio::null())
        .spawn()
        .expect("spawn app");
    let deadline = Instant::now() + Duration::from_secs(5);
    let line = loop {
        if let Ok(line) = std::fs::read_to_string(&ready) {
            break line;
        }
        assert!(Instant::now() < deadline, "no ready file");
        std::thread::sleep(Duration::from_millis(20));
    };
    let ready: serde_json::Value = serde_json::from_str(&line).expect("json");
    assert_eq!(ready["pid"].as_u64(), Some(u64::from(app.id())));
    let listen = ready["listen"].as_str().expect("listen");

    let out = dir.path().join("summary.json");
    let status = Command::new(env!("CARGO_BIN_EXE_sluice-loadgen"))
        .args(["--url", &format!("http://{listen}/"), "--rps", "100", "--duration", "500ms"])
        .args(["--report-every", "200ms", "--out"])
        .arg(&out)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .expect("loadgen");
    assert!(status.status.success());
    assert!(String::from_utf8_lossy(&status.stderr).contains("loadgen: "));
    let summary: loadgen::Summary =
        serde_json::from_str(&std::fs::read_to_string(&out).expect("summary")).expect("json");
    assert_eq!(summary.sent + summary.dropped, 50, "{summary:?}");
    assert_eq!(summary.by_body["v7"], summary.sent);

    let killed = Command::new("kill").args(["-TERM", &app.id().to_string()]).status().expect("kill");
    assert!(killed.success());
    let status = loop {
        if let Some(status) = app.try_wait().expect("wait") {
            break status;
        }
        assert!(Instant::now() < deadline + Duration::from_secs(3), "app did not exit");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success(), "{status:?}");
}

fn run(binary: &str, args: &[&str]) -> std::process::Output {
    Command::new(binary).args(args).stdin(Stdio::null()).output().expect("run")
}

/// Every demo binary answers `--version` (and `-V`) with its name and
/// version, exit 0, and lists its exit codes in `--help` (`sluice-faultproxy`,
/// now in sluice-test-support, is checked there the same way).
#[test]
fn every_binary_answers_version_and_help() {
    let version = env!("CARGO_PKG_VERSION");
    for (name, binary) in [
        ("sluice-demo-app", env!("CARGO_BIN_EXE_sluice-demo-app")),
        ("sluice-loadgen", env!("CARGO_BIN_EXE_sluice-loadgen")),
    ] {
        for flag in ["--version", "-V"] {
            let out = run(binary, &[flag]);
            assert_eq!(out.status.code(), Some(0), "{name} {flag}: {}", String::from_utf8_lossy(&out.stderr));
            assert_eq!(String::from_utf8_lossy(&out.stdout), format!("{name} {version}\n"), "{name} {flag}");
        }
        let help = run(binary, &["--help"]);
        assert_eq!(help.status.code(), Some(0));
        let help = String::from_utf8_lossy(&help.stdout);
        for line in ["Exit codes", "  2  bad input", "Examples:"] {
            assert!(help.contains(line), "{name} --help lacks {line:?}:\n{help}");
        }
    }
}

/// `--version NAME`, the demo app's old spelling of `--release NAME`,
/// still serves NAME (scripts written before --release keep working).
#[test]
fn demo_app_still_takes_the_release_after_version() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ready = dir.path().join("app.json");
    let mut app = Command::new(env!("CARGO_BIN_EXE_sluice-demo-app"))
        .args(["--version", "v8", "--ready-file"])
        .arg(&ready)
        .stdout(Stdio::null())
        .spawn()
        .expect("spawn app");
    let deadline = Instant::now() + Duration::from_secs(10);
    let line = loop {
        if let Ok(line) = std::fs::read_to_string(&ready) {
            break line;
        }
        if Instant::now() > deadline {
            let _ = app.kill();
            panic!("no ready file");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let ready: serde_json::Value = serde_json::from_str(&line).expect("json");
    let listen = ready["listen"].as_str().expect("listen").to_owned();
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    let answer = runtime.block_on(call(Method::GET, format!("http://{listen}/"), ""));
    let _ = app.kill();
    let _ = app.wait();
    assert_eq!(answer, (StatusCode::OK, "v8\n".to_owned()));
}

/// Bad input is exit 2 with what to change: a busy port, an unwritable
/// ready file, rates out of range, a URL that is not http.
#[test]
fn demo_binaries_refuse_bad_input_with_exit_2() {
    let held = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let busy = held.local_addr().expect("addr").to_string();
    let app = env!("CARGO_BIN_EXE_sluice-demo-app");
    let loadgen = env!("CARGO_BIN_EXE_sluice-loadgen");
    for (binary, args, words) in [
        (app, vec!["--release", "v1", "--listen", &busy], "choose another port with --listen"),
        (app, vec!["--release", "v1", "--ready-file", "/nonexistent-dir/ready.json"], "check --ready-file"),
        (app, vec![], "--release <NAME>"),
        (loadgen, vec!["--url", "/relative"], "--url must be an absolute http:// URL"),
    ] {
        let out = run(binary, &args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{binary} {args:?}: {stderr}");
        assert!(stderr.contains(words), "{binary} {args:?}: {stderr}");
    }
}
