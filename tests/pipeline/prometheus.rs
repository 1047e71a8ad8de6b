//! A canary judged by a Prometheus query check: a real Prometheus (Debian's
//! package) scraping the harness's demo apps, the real step binaries.

use super::{assert_rolled_back, gate_and_shift};
use crate::support::{Harness, code, stderr};
use std::process::Command;
use std::time::{Duration, Instant};

/// A real Prometheus scraping the harness's apps; `None` (skipped with a
/// note) when it is not installed, except in CI where that fails.
fn prometheus(h: &Harness) -> Option<sluice_demo::prometheus::PrometheusServer> {
    use sluice_demo::prometheus::{PrometheusServer, StartError};
    let targets: Vec<std::net::SocketAddr> =
        h.apps.iter().map(|a| a.trim_start_matches("http://").parse().expect("app address")).collect();
    match PrometheusServer::start(&sluice_core::env::var("PATH").unwrap_or_default(), &targets) {
        Ok(server) => Some(server),
        Err(StartError::NotInstalled) if !sluice_core::env::in_ci() => {
            eprintln!("SKIPPED: {}", StartError::NotInstalled);
            None
        }
        Err(e) => panic!("{e} (tests must not skip in CI)"),
    }
}

/// Answers a PromQL instant query with curl.
fn promql(url: &str, query: &str) -> serde_json::Value {
    let out = Command::new("curl")
        .args(["-fsS", &format!("{url}/api/v1/query"), "--data-urlencode", &format!("query={query}")])
        .output()
        .expect("curl");
    serde_json::from_slice(&out.stdout).unwrap_or_default()
}

#[test]
fn a_canary_failing_a_prometheus_query_rolls_back() {
    let checks = "[[defaults.check]]\nname = \"error-ratio\"\nkind = \"query\"\nsource = \"prom\"\n\
        query = 'sum(rate(http_requests_total{version=\"${release}\",status=~\"5..\"}[5s])) / \
        sum(rate(http_requests_total{version=\"${release}\"}[5s]))'\n\
        max = 0.05\nmin_samples = 2\ninconclusive_limit = 30\n";
    let strategy = "{ kind = \"canary\", stages = [50, 100], stage_duration = \"30s\" }";
    let mut h = Harness::start(&[("v1", &[]), ("v3", &["--error-ratio", "0.3", "--seed", "1"])], strategy, checks);
    let Some(prometheus) = prometheus(&h) else { return };
    let mut config = std::fs::read_to_string(h.path("sluice.toml")).expect("config");
    config.push_str(&format!(
        "\n[[defaults.source]]\nkind = \"prometheus\"\nname = \"prom\"\nurl = \"{}\"\n",
        prometheus.url()
    ));
    std::fs::write(h.path("sluice.toml"), config).expect("config");
    // Both apps scraped before the canary starts (the first scrape comes
    // a few seconds after Prometheus starts).
    let deadline = Instant::now() + Duration::from_secs(30);
    while promql(prometheus.url(), "count(up == 1)")["data"]["result"][0]["value"][1] != "2" {
        assert!(Instant::now() < deadline, "Prometheus never scraped the apps:\n{}", prometheus.log());
        std::thread::sleep(Duration::from_millis(250));
    }
    h.load(200, 60);
    let v3 = h.apps[1].clone();
    let started = Instant::now();
    let shift = gate_and_shift(&h, "v3", &v3);
    assert_rolled_back(&h, &shift, "error-ratio");
    assert!(started.elapsed() < Duration::from_secs(20), "took {:?} to roll back", started.elapsed());
    // The verdict in the record carries the value Prometheus answered for
    // this release (${release} expanded from the record).
    let record: serde_json::Value =
        serde_json::from_slice(&std::fs::read(h.path("r.json")).expect("record")).expect("json");
    let verdict = record["events"]
        .as_array()
        .expect("events")
        .iter()
        .find_map(|e| e["report"].as_object().cloned())
        .expect("a verdict event");
    assert_eq!(verdict["verdict"], "fail");
    let observed = verdict["checks"][0]["observed"].as_f64().expect("observed");
    assert!(observed > 0.05, "{observed}");
    let judged =
        verdict["intervals"].as_array().expect("intervals").iter().filter(|i| i["values"]["error-ratio"].is_number());
    assert!(judged.count() >= 1);

    // Replayed under the same config the recorded values fail again; under
    // a lenient bound they pass. Nothing is written either way.
    let record_before = std::fs::read(h.path("r.json")).expect("record");
    let replay = h.step("verify-health", &["-e", "dev", "--record", "replay.json", "--replay", "r.json"]);
    assert_eq!(code(&replay), 1, "{}", stderr(&replay));
    assert!(stderr(&replay).contains("recorded Fail, replayed Fail"), "{}", stderr(&replay));
    let config = std::fs::read_to_string(h.path("sluice.toml")).expect("config");
    std::fs::write(
        h.path("lenient.toml"),
        config.replace("max = 0.05", "max = 0.5").replace("min_samples = 2", "min_samples = 1"),
    )
    .expect("config");
    let replay = h.step(
        "verify-health",
        &["--config", "lenient.toml", "-e", "dev", "--record", "replay.json", "--replay", "r.json"],
    );
    assert_eq!(code(&replay), 0, "{}", stderr(&replay));
    assert!(stderr(&replay).contains("recorded Fail, replayed Pass"), "{}", stderr(&replay));
    assert_eq!(std::fs::read(h.path("r.json")).expect("record"), record_before);
    assert!(!h.path("replay.json").exists());
}
