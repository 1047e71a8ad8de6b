//! End-to-end: the real step binaries against the real `sluice-router` and
//! `sluice-demo-app` processes on 127.0.0.1.
//!
//! The router and demo app are other packages' binaries; `scripts/test.sh`
//! builds them (`cargo build --bins`) before the tests run.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

fn bin_dir() -> PathBuf {
    Path::new(env!("CARGO_BIN_EXE_gate")).parent().expect("bin dir").to_owned()
}

fn exe(name: &str) -> PathBuf {
    let path = bin_dir().join(name);
    assert!(path.exists(), "{} is missing: run `cargo build --bins` first (scripts/test.sh does)", path.display());
    path
}

/// Processes of one test, killed on drop.
struct Harness {
    dir: tempfile::TempDir,
    children: Vec<Child>,
    admin: String,
    listen: String,
    apps: Vec<String>,
}

impl Drop for Harness {
    fn drop(&mut self) {
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn ready(path: &Path, child: &mut Child) -> serde_json::Value {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if let Ok(text) = std::fs::read_to_string(path)
            && let Ok(v) = serde_json::from_str(&text)
        {
            return v;
        }
        if let Ok(Some(status)) = child.try_wait() {
            panic!("{} exited early: {status}", path.display());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("{} never became ready", path.display());
}

impl Harness {
    /// Starts one demo app per `(version, extra args)`, a router with the first
    /// as stable, and writes a config with the given strategy and checks.
    fn start(apps: &[(&str, &[&str])], strategy: &str, checks: &str) -> Harness {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut h =
            Harness { dir, children: Vec::new(), admin: String::new(), listen: String::new(), apps: Vec::new() };
        for (version, extra) in apps {
            let file = h.path(&format!("app-{version}.json"));
            let mut child = Command::new(exe("sluice-demo-app"))
                .args(["--listen", "127.0.0.1:0", "--version", version, "--ready-file"])
                .arg(&file)
                .args(*extra)
                .stdout(Stdio::null())
                .spawn()
                .expect("demo app");
            let v = ready(&file, &mut child);
            h.children.push(child);
            h.apps.push(format!("http://{}", v["listen"].as_str().expect("listen")));
        }
        let file = h.path("router.json");
        let mut child = Command::new(exe("sluice-router"))
            .args(["--listen", "127.0.0.1:0", "--admin", "127.0.0.1:0", "--stable", &h.apps[0], "--ready-file"])
            .arg(&file)
            .stdout(Stdio::null())
            .spawn()
            .expect("router");
        let v = ready(&file, &mut child);
        h.children.push(child);
        h.admin = format!("http://{}", v["admin"].as_str().expect("admin"));
        h.listen = format!("http://{}", v["listen"].as_str().expect("listen"));
        let config = format!(
            "app = \"shop\"\n[ledger]\nkind = \"file\"\npath = \"ledger.jsonl\"\n[analysis]\ninterval = \"500ms\"\n\
             [defaults]\nstrategy = {strategy}\n{checks}\n\
             [[environment]]\nname = \"dev\"\nrouter = {{ kind = \"local\", admin_url = \"{}\" }}\n\
             [[environment]]\nname = \"prd\"\nrouter = {{ kind = \"local\", admin_url = \"{}\" }}\n",
            h.admin, h.admin
        );
        std::fs::write(h.path("sluice.toml"), config).expect("config");
        h
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn load(&mut self, rps: u32, seconds: u32) {
        let child = Command::new(exe("sluice-loadgen"))
            .args([
                "--url",
                &format!("{}/", self.listen),
                "--rps",
                &rps.to_string(),
                "--duration",
                &format!("{seconds}s"),
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("loadgen");
        self.children.push(child);
    }

    fn step(&self, name: &str, args: &[&str]) -> Output {
        let mut cmd = Command::new(exe(name));
        cmd.current_dir(self.dir.path())
            .env_remove("GITHUB_ACTIONS")
            .env_remove("GITHUB_OUTPUT")
            .env_remove("GITHUB_STEP_SUMMARY")
            .env("CI", "true");
        if name != "dora-report" && !args.contains(&"--config") {
            cmd.args(["--config", "sluice.toml"]);
        }
        cmd.args(args).output().expect("step runs")
    }

    fn state(&self) -> serde_json::Value {
        let out = Command::new("curl").args(["-fsS", &format!("{}/v1/state", self.admin)]).output().expect("curl");
        serde_json::from_slice(&out.stdout).expect("state json")
    }

    fn ledger(&self) -> Vec<serde_json::Value> {
        std::fs::read_to_string(self.path("ledger.jsonl"))
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).expect("ledger line"))
            .collect()
    }
}

fn code(out: &Output) -> i32 {
    out.status.code().unwrap_or(-1)
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

const CHECKS: &str = "[[defaults.check]]\nname = \"errors\"\nkind = \"error_rate\"\nmax = 0.02\nmin_samples = 20\ncritical = true\n\
    [[defaults.check]]\nname = \"p99\"\nkind = \"latency\"\npercentile = 99\nmax = \"150ms\"\nmin_samples = 20\n";
const CANARY: &str = "{ kind = \"canary\", stages = [50, 100], stage_duration = \"3s\" }";

fn gate_and_shift(h: &Harness, release: &str, upstream: &str) -> Output {
    let gate = h.step("gate", &["-e", "dev", "--record", "r.json", "--release", release, "--commit", "abcdef1"]);
    assert_eq!(code(&gate), 0, "gate: {}", stderr(&gate));
    h.step("shift-traffic", &["-e", "dev", "--record", "r.json", "--candidate-upstream", upstream])
}

#[test]
fn a_good_canary_is_promoted() {
    let mut h = Harness::start(&[("v1", &[]), ("v2", &[])], CANARY, CHECKS);
    h.load(200, 30);
    let v2 = h.apps[1].clone();
    let shift = gate_and_shift(&h, "v2", &v2);
    assert_eq!(code(&shift), 0, "shift-traffic: {}", stderr(&shift));
    let promote = h.step("promote", &["-e", "dev", "--record", "r.json"]);
    assert_eq!(code(&promote), 0, "promote: {}", stderr(&promote));
    assert!(String::from_utf8_lossy(&promote.stdout).contains("next_environment=prd"));
    let state = h.state();
    assert_eq!(state["stable"]["upstream"], v2.as_str());
    assert_eq!(state["candidate_weight"], 0);
    let ledger = h.ledger();
    assert_eq!(ledger.len(), 1);
    assert_eq!(ledger[0]["outcome"], "promoted");
    // Promoting again changes nothing.
    let again = h.step("promote", &["-e", "dev", "--record", "r.json"]);
    assert_eq!(code(&again), 0);
    assert_eq!(h.ledger().len(), 1);
}

fn assert_rolled_back(h: &Harness, shift: &Output, check: &str) {
    assert_eq!(code(shift), 1, "shift-traffic should roll back: {}", stderr(shift));
    assert_eq!(h.state()["candidate_weight"], 0);
    let record: serde_json::Value =
        serde_json::from_slice(&std::fs::read(h.path("r.json")).expect("record")).expect("json");
    assert_eq!(record["status"], "rolled_back");
    let ledger = h.ledger();
    assert_eq!(ledger.len(), 1);
    assert_eq!(ledger[0]["outcome"], "rolled_back");
    let reason = ledger[0]["reason"].as_str().unwrap_or_default();
    assert!(reason.contains(check), "reason {reason:?} should name {check}");
    // A second rollback is harmless and adds nothing to the ledger.
    let again = h.step("rollback", &["-e", "dev", "--record", "r.json"]);
    assert_eq!(code(&again), 0, "{}", stderr(&again));
    assert_eq!(h.ledger().len(), 1);
    assert_eq!(h.state()["candidate_weight"], 0);
}

#[test]
fn a_canary_with_errors_rolls_back() {
    let mut h = Harness::start(&[("v1", &[]), ("v3", &["--error-ratio", "0.3", "--seed", "1"])], CANARY, CHECKS);
    h.load(200, 30);
    let v3 = h.apps[1].clone();
    let started = Instant::now();
    let shift = gate_and_shift(&h, "v3", &v3);
    assert_rolled_back(&h, &shift, "errors");
    assert!(started.elapsed() < Duration::from_secs(5), "took {:?} to roll back", started.elapsed());
}

#[test]
fn a_slow_canary_rolls_back() {
    let mut h = Harness::start(&[("v1", &[]), ("v3", &["--latency", "300ms"])], CANARY, CHECKS);
    h.load(200, 30);
    let v3 = h.apps[1].clone();
    let shift = gate_and_shift(&h, "v3", &v3);
    assert_rolled_back(&h, &shift, "p99");
}

#[test]
fn rollback_without_a_record_restores_stable() {
    let h = Harness::start(&[("v1", &[]), ("v2", &[])], CANARY, CHECKS);
    let set = |body: &str, path: &str| {
        let out = Command::new("curl")
            .args([
                "-fsS",
                "-X",
                "PUT",
                "-H",
                "content-type: application/json",
                "-d",
                body,
                &format!("{}{path}", h.admin),
            ])
            .output()
            .expect("curl");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    };
    set(&format!("{{\"candidate\":\"{}\"}}", h.apps[1]), "/v1/upstreams");
    set("{\"candidate_weight\":40}", "/v1/weights");
    assert_eq!(h.state()["candidate_weight"], 40);
    let out = h.step("rollback", &["-e", "dev", "--record", "none.json"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(h.state()["candidate_weight"], 0);
    assert!(!h.path("none.json").exists(), "rollback without a record must not invent one");
}

#[test]
fn bad_input_exits_2_and_changes_nothing() {
    let h = Harness::start(&[("v1", &[]), ("v2", &[])], CANARY, CHECKS);
    let gate = h.step("gate", &["-e", "dev", "--record", "r.json", "--release", "v2", "--commit", "abcdef1"]);
    assert_eq!(code(&gate), 0, "{}", stderr(&gate));
    let record_before = std::fs::read(h.path("r.json")).expect("record");
    let state_before = h.state();
    let good_config = std::fs::read_to_string(h.path("sluice.toml")).expect("config");
    std::fs::write(
        h.path("foreign.json"),
        String::from_utf8_lossy(&record_before).replace("sluice.deployment/v1", "sluice.deployment/v9"),
    )
    .expect("write");
    std::fs::write(h.path("truncated.json"), &record_before[..record_before.len() / 2]).expect("write");
    std::fs::write(h.path("bad.toml"), good_config.replace("max = 0.02", "max = \"two percent\"")).expect("write");
    std::fs::write(
        h.path("bad-duration.toml"),
        good_config.replace("stage_duration = \"3s\"", "stage_duration = \"3 parsecs\""),
    )
    .expect("write");

    let cases: Vec<(Vec<&str>, &str, &str)> = vec![
        (vec!["shift-traffic", "-e", "dev", "--record", "r.json", "--weight", "101"], "101", "weight out of range"),
        (vec!["shift-traffic", "-e", "dev", "--record", "r.json", "--weight", "-5"], "-5", "negative weight"),
        (
            vec!["shift-traffic", "-e", "dev", "--record", "foreign.json", "--weight", "10"],
            "sluice.deployment/v9",
            "foreign schema",
        ),
        (
            vec!["shift-traffic", "-e", "dev", "--record", "truncated.json", "--weight", "10"],
            "damaged",
            "truncated record",
        ),
        (
            vec!["shift-traffic", "-e", "prd", "--record", "r.json", "--weight", "10"],
            "not \"prd\"",
            "record of another environment",
        ),
        (
            vec!["shift-traffic", "-e", "qa", "--record", "r.json", "--weight", "10"],
            "unknown environment \"qa\"",
            "unknown environment",
        ),
        (
            vec!["verify-health", "-e", "dev", "--record", "r.json", "--duration", "soon"],
            "invalid duration",
            "malformed duration",
        ),
        (
            vec!["gate", "-e", "dev", "--record", "x.json", "--release", "v2", "--config", "bad.toml"],
            "bad.toml:",
            "malformed config",
        ),
        (
            vec!["gate", "-e", "dev", "--record", "y.json", "--release", "v2", "--config", "bad-duration.toml"],
            "invalid duration",
            "malformed config duration",
        ),
        (vec!["gate", "-e", "dev", "--record", "z.json", "--release", "../v2"], "release", "path trick in a name"),
        (
            vec!["shift-traffic", "-e", "dev", "--record", "sluice.toml", "--weight", "10"],
            ".json",
            "record path that is not a record",
        ),
    ];
    for (args, needle, what) in cases {
        let out = h.step(args[0], &args[1..]);
        assert_eq!(code(&out), 2, "{what}: expected exit 2, got {}: {}", code(&out), stderr(&out));
        assert!(stderr(&out).contains(needle), "{what}: message should contain {needle:?}: {}", stderr(&out));
        assert!(!stderr(&out).contains("panicked"), "{what}: panicked");
        assert_eq!(std::fs::read(h.path("r.json")).expect("record"), record_before, "{what}: record changed");
        assert_eq!(h.state(), state_before, "{what}: router changed");
    }
    for f in ["x.json", "y.json", "z.json"] {
        assert!(!h.path(f).exists(), "{f} was written");
    }
}

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
