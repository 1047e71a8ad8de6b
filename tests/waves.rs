//! One environment, many targets: `prd` served by three embedded routers
//! (standing in for three regions) promoted in two waves, with the real
//! `sluice` steps, `sluice-router`, `sluice-demo-app` and `sluice-loadgen`
//! processes on 127.0.0.1.
//!
//! Each scenario asserts on every router's weights and stable pool read
//! back from its admin API, the one record and the one ledger entry.

use crate::support::aws::{AlbTarget, AlbTargets};
use crate::support::{Turn, exe, shared};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// Scenarios of embedded routers run one at a time among themselves (each
/// starts three routers under load), each in a shared turn of the machine
/// (taken first: see `support`).
fn serial() -> (Turn, MutexGuard<'static, ()>) {
    static LOCK: Mutex<()> = Mutex::new(());
    let turn = shared();
    (turn, LOCK.lock().unwrap_or_else(std::sync::PoisonError::into_inner))
}

/// A built binary of the workspace.
fn binary(name: &str) -> PathBuf {
    exe(name)
}

/// A server that wrote its ready file (its addresses).
fn start(children: &mut Vec<Child>, dir: &Path, name: &str, args: &[&str]) -> Value {
    let file = dir.join(format!("{name}-{}.json", children.len()));
    let mut child = Command::new(binary(name))
        .args(args)
        .arg("--ready-file")
        .arg(&file)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("{name}: {e}"));
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        if let Ok(text) = std::fs::read_to_string(&file)
            && let Ok(v) = serde_json::from_str(&text)
        {
            children.push(child);
            return v;
        }
        if let Ok(Some(status)) = child.try_wait() {
            panic!("{name} exited early: {status}");
        }
        assert!(Instant::now() < deadline, "{name} never became ready");
        std::thread::sleep(Duration::from_millis(50));
    }
}

use crate::support::{http as request, http_get as get};

/// One region: its router (admin and listen URLs) and its candidate.
struct Region {
    name: &'static str,
    admin: String,
    listen: String,
    candidate: String,
    /// The router's process in `World::children`.
    child: usize,
    admin_addr: String,
}

/// Three regions behind their own routers, the stable release v1 behind all
/// of them, each with its own candidate app, under steady load.
struct World {
    dir: tempfile::TempDir,
    children: Vec<Child>,
    regions: Vec<Region>,
    stable: String,
    /// The URL of a JSON webhook the config's `[notify]` names (in
    /// `SLUICE_WAVES_WEBHOOK`), when the scenario listens for one.
    webhook: Option<String>,
}

impl Drop for World {
    fn drop(&mut self) {
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

const WAVES: [(&str, usize); 3] = [("us-east-1", 0), ("eu-west-1", 1), ("ap-southeast-2", 1)];

impl World {
    /// `bad`: the region whose candidate fails a third of its requests.
    fn new(bad: Option<&str>, strategy: &str) -> World {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut children = Vec::new();
        let d = dir.path().to_owned();
        let app = |children: &mut Vec<Child>, version: &str, extra: &[&str]| {
            let mut args = vec!["--listen", "127.0.0.1:0", "--version", version];
            args.extend_from_slice(extra);
            let v = start(children, &d, "sluice-demo-app", &args);
            format!("http://{}", v["listen"].as_str().expect("listen"))
        };
        let stable = app(&mut children, "v1", &[]);
        let good = app(&mut children, "v2", &[]);
        let bad_app = app(&mut children, "v2", &["--error-ratio", "0.3", "--seed", "5"]);
        let mut regions = Vec::new();
        for (name, _) in WAVES {
            let v = start(
                &mut children,
                &d,
                "sluice-router",
                &["--listen", "127.0.0.1:0", "--admin", "127.0.0.1:0", "--stable", &stable],
            );
            let admin_addr = v["admin"].as_str().expect("admin").to_owned();
            let listen = format!("http://{}", v["listen"].as_str().expect("listen"));
            let candidate = if bad == Some(name) { bad_app.clone() } else { good.clone() };
            regions.push(Region {
                name,
                admin: format!("http://{admin_addr}"),
                listen,
                candidate,
                child: children.len() - 1,
                admin_addr,
            });
        }
        let mut config = format!(
            "app = \"shop\"\n[ledger]\nkind = \"file\"\npath = \"ledger.jsonl\"\n[analysis]\ninterval = \"500ms\"\n\
             [defaults]\nstrategy = {strategy}\n\
             [[defaults.check]]\nname = \"errors\"\nkind = \"error_rate\"\nmax = 0.05\nmin_samples = 20\ncritical = true\n\
             [[environment]]\nname = \"prd\"\nwaves = [[\"us-east-1\"], [\"eu-west-1\", \"ap-southeast-2\"]]\nbake = \"1s\"\n"
        );
        for r in &regions {
            config.push_str(&format!(
                "[[environment.target]]\nname = \"{}\"\nrouter = {{ kind = \"local\", admin_url = \"{}\" }}\n",
                r.name, r.admin
            ));
        }
        std::fs::write(dir.path().join("sluice.toml"), config).expect("config");
        let mut world = World { dir, children, regions, stable, webhook: None };
        for i in 0..world.regions.len() {
            let url = format!("{}/", world.regions[i].listen);
            let child = Command::new(binary("sluice-loadgen"))
                .args(["--url", &url, "--rps", "80", "--duration", "120s"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("loadgen");
            world.children.push(child);
        }
        world
    }

    fn candidates(&self) -> String {
        self.regions.iter().map(|r| format!("{}={}", r.name, r.candidate)).collect::<Vec<_>>().join(",")
    }

    fn step(&self, args: &[&str]) -> Output {
        Command::new(binary("sluice"))
            .current_dir(self.dir.path())
            .env_remove("GITHUB_ACTIONS")
            .env_remove("GITHUB_OUTPUT")
            .env("GITHUB_STEP_SUMMARY", self.dir.path().join("summary.md"))
            .env("CI", "true")
            .env("SLUICE_WAVES_WEBHOOK", self.webhook.as_deref().unwrap_or(""))
            .args(args)
            .args(["--config", "sluice.toml", "-e", "prd", "--record", "prd.json"])
            .output()
            .expect("the step runs")
    }

    fn state(&self, region: usize) -> Value {
        let text = get(&format!("{}/v1/state", self.regions[region].admin)).expect("router state");
        serde_json::from_str(&text).expect("state json")
    }

    fn record(&self) -> Value {
        serde_json::from_slice(&std::fs::read(self.dir.path().join("prd.json")).expect("record")).expect("json")
    }

    fn ledger(&self) -> Vec<Value> {
        std::fs::read_to_string(self.dir.path().join("ledger.jsonl"))
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).expect("ledger line"))
            .collect()
    }

    /// Gate with every region's candidate, then shift.
    fn gate_and_shift(&self) -> Output {
        let gate =
            self.step(&["gate", "--release", "v2", "--commit", "abcdef1", "--candidate-upstream", &self.candidates()]);
        assert_eq!(gate.status.code(), Some(0), "gate: {}", stderr(&gate));
        self.step(&["shift-traffic"])
    }

    /// Starts `shift-traffic` without waiting for it.
    fn spawn_shift(&self) -> Child {
        Command::new(binary("sluice"))
            .current_dir(self.dir.path())
            .env_remove("GITHUB_ACTIONS")
            .env_remove("GITHUB_OUTPUT")
            .env_remove("GITHUB_STEP_SUMMARY")
            .args(["shift-traffic", "--config", "sluice.toml", "-e", "prd", "--record", "prd.json"])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("shift-traffic")
    }

    /// Waits until region `i`'s router reads back `weight`% on the
    /// candidate, while `step` runs.
    fn wait_for_weight(&self, i: usize, weight: u64, step: &mut Child) {
        let deadline = Instant::now() + Duration::from_secs(90);
        while self.state(i)["candidate_weight"] != weight {
            assert!(Instant::now() < deadline, "{} never reached {weight}%", self.regions[i].name);
            assert!(
                step.try_wait().expect("wait").is_none(),
                "the step ended before {} reached {weight}%",
                self.regions[i].name
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Waits until the record says region `i` is at `weight`% (its router
    /// confirmed it to the step), while `step` runs.
    fn wait_for_record(&self, i: usize, weight: u64, step: &mut Child) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let text = std::fs::read(self.dir.path().join("prd.json")).unwrap_or_default();
            let record: Value = serde_json::from_slice(&text).unwrap_or_default();
            if record["targets"][i]["candidate_weight"] == weight {
                return;
            }
            assert!(Instant::now() < deadline, "the record never had {} at {weight}%", self.regions[i].name);
            assert!(step.try_wait().expect("wait").is_none(), "the step ended first");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Sends the config's notifications to a JSON webhook on 127.0.0.1.
    fn listen_for_notifications(&mut self) -> Webhook {
        let hook = Webhook::start();
        append_notify(&self.dir.path().join("sluice.toml"));
        self.webhook = Some(hook.url.clone());
        hook
    }

    /// `dora-report` on the ledger file, as text.
    fn dora_report(&self, format: &str) -> String {
        let out = Command::new(binary("dora-report"))
            .current_dir(self.dir.path())
            .env_remove("GITHUB_ACTIONS")
            .env_remove("GITHUB_STEP_SUMMARY")
            .args(["--config", "sluice.toml", "--all-environments", "--since", "all", format, "report.out"])
            .output()
            .expect("dora-report runs");
        assert_eq!(out.status.code(), Some(0), "dora-report: {}", stderr(&out));
        match format {
            "--markdown" | "--json" => std::fs::read_to_string(self.dir.path().join("report.out")).expect("report"),
            _ => String::from_utf8_lossy(&out.stdout).into_owned(),
        }
    }

    /// Every router back as it was: no traffic on the candidate, v1 stable.
    fn assert_all_stable(&self) {
        for (i, r) in self.regions.iter().enumerate() {
            let state = self.state(i);
            assert_eq!(state["candidate_weight"], 0, "{}: {state}", r.name);
            assert_eq!(state["stable"]["upstream"], self.stable.as_str(), "{}: {state}", r.name);
        }
    }
}

/// Adds a `[notify]` table with one JSON webhook, its URL in
/// `SLUICE_WAVES_WEBHOOK`, to the config.
fn append_notify(config: &Path) {
    let mut text = std::fs::read_to_string(config).expect("config");
    text.push_str(
        "[notify]\ntimeout = \"5s\"\n[[notify.webhook]]\nkind = \"json\"\nurl_env = \"SLUICE_WAVES_WEBHOOK\"\n",
    );
    std::fs::write(config, text).expect("config");
}

/// A JSON webhook on 127.0.0.1 that keeps the bodies it receives.
struct Webhook {
    url: String,
    bodies: std::sync::Arc<Mutex<Vec<Value>>>,
}

impl Webhook {
    fn start() -> Webhook {
        use std::io::{Read, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let url = format!("http://{}/hook", listener.local_addr().expect("addr"));
        let bodies = std::sync::Arc::new(Mutex::new(Vec::new()));
        let log = std::sync::Arc::clone(&bodies);
        std::thread::spawn(move || {
            for mut socket in listener.incoming().flatten() {
                let _ = socket.set_read_timeout(Some(Duration::from_secs(5)));
                let mut data = Vec::new();
                let mut buf = [0u8; 4096];
                let body = loop {
                    let Ok(n) = socket.read(&mut buf) else { break None };
                    if n == 0 {
                        break None;
                    }
                    data.extend_from_slice(&buf[..n]);
                    let Some(end) = data.windows(4).position(|w| w == b"\r\n\r\n").map(|i| i + 4) else { continue };
                    let head = String::from_utf8_lossy(&data[..end]).to_ascii_lowercase();
                    let length: usize = head
                        .lines()
                        .find_map(|l| l.strip_prefix("content-length:"))
                        .and_then(|v| v.trim().parse().ok())
                        .unwrap_or(0);
                    if data.len() >= end + length {
                        break serde_json::from_slice::<Value>(&data[end..end + length]).ok();
                    }
                };
                if let Some(body) = body {
                    log.lock().unwrap_or_else(std::sync::PoisonError::into_inner).push(body);
                }
                let _ = socket.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok");
            }
        });
        Webhook { url, bodies }
    }

    fn bodies(&self) -> Vec<Value> {
        self.bodies.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The record's events of one kind about one target.
fn events<'a>(record: &'a Value, kind: &str, target: &str) -> Vec<&'a Value> {
    record["events"].as_array().expect("events").iter().filter(|e| e["type"] == kind && e["target"] == target).collect()
}

const CANARY: &str = "{ kind = \"canary\", stages = [50, 100], stage_duration = \"2s\" }";

#[test]
fn two_waves_of_healthy_targets_are_promoted_with_one_record_and_one_ledger_entry() {
    let _serial = serial();
    let w = World::new(None, CANARY);
    let shift = w.gate_and_shift();
    assert_eq!(shift.status.code(), Some(0), "shift-traffic: {}", stderr(&shift));
    // Each window says how much of the plan comes after it: 2 s stages in
    // two waves with a 1 s bake between them.
    for (window, after) in [
        ("wave 1 us-east-1 stage 1/2 50%", "7s"),
        ("wave 1 us-east-1 stage 2/2 100%", "5s"),
        ("bake after wave 1 us-east-1", "4s"),
        ("wave 2 eu-west-1 stage 1/2 50%", "2s"),
    ] {
        let line = format!("{window}: analysing for ");
        let said = stderr(&shift).lines().find(|l| l.starts_with(&line)).map(str::to_owned);
        assert!(
            said.as_deref().is_some_and(|l| l.ends_with(&format!("({after} of the plan after it)"))),
            "{window}: {said:?}\n{}",
            stderr(&shift)
        );
    }
    assert!(stderr(&shift).contains("wave 2 eu-west-1 stage 2/2 100%: analysing for 2s\n"), "{}", stderr(&shift));
    let record = w.record();
    assert_eq!(record["status"], "verified", "{record}");
    assert_eq!(record["candidate_weight"], 100);
    for (i, (name, wave)) in WAVES.iter().enumerate() {
        let t = &record["targets"][i];
        assert_eq!(t["name"], *name);
        assert_eq!(t["wave"], *wave);
        assert_eq!(t["candidate_weight"], 100, "{t}");
        assert_eq!(t["candidate"], w.regions[i].candidate.as_str());
        assert!(t["router_before"].is_object(), "{t}");
        // Every router read back at 100% before promote.
        assert_eq!(w.state(i)["candidate_weight"], 100, "{name}");
        let traffic: Vec<u64> = events(&record, "traffic", name).iter().filter_map(|e| e["to"].as_u64()).collect();
        assert_eq!(traffic, vec![50, 100], "{name}");
        let verdicts = events(&record, "verdict", name);
        assert!(verdicts.iter().all(|v| v["report"]["verdict"] == "pass"), "{name}: {verdicts:?}");
    }
    // The first wave was judged on its own, then baked, before the second
    // wave's first change.
    let at = |e: &Value| e["at"].as_str().expect("at").to_owned();
    let us_bake = events(&record, "verdict", "us-east-1").into_iter().find(|v| v.get("stage").is_none()).expect("bake");
    let eu_first = events(&record, "traffic", "eu-west-1")[0];
    assert!(at(us_bake) <= at(eu_first), "bake {} after the second wave's start {}", at(us_bake), at(eu_first));
    assert!(
        events(&record, "verdict", "eu-west-1").iter().all(|v| v.get("stage").is_some()),
        "no bake after the last wave"
    );

    // `sluice status` reads every target's router: a line each.
    let status = w.step(&["status", "--json"]);
    assert_eq!(status.status.code(), Some(0), "status: {}", stderr(&status));
    let shown: Value = serde_json::from_slice(&status.stdout).expect("status json");
    let prd = &shown["environments"][0];
    for (i, (name, wave)) in WAVES.iter().enumerate() {
        let live = &prd["targets"][i];
        assert_eq!(live["name"], *name, "{shown}");
        assert_eq!(live["wave"], *wave + 1, "{shown}");
        assert_eq!(live["router"]["candidate_weight"], 100, "{name}: {shown}");
    }
    // verify-health judges every target again, each on its own.
    let verify = w.step(&["verify-health", "--duration", "2s"]);
    assert_eq!(verify.status.code(), Some(0), "verify-health: {}", stderr(&verify));
    let record = w.record();
    assert_eq!(record["status"], "verified");
    for (name, _) in WAVES {
        let last = *events(&record, "verdict", name).last().expect("a verdict");
        assert_eq!(last["step"], "verify-health", "{name}");
        assert_eq!(last["report"]["verdict"], "pass", "{name}");
        assert_eq!(last["report"]["candidate_weight"], 100, "{name}");
    }

    let promote = w.step(&["promote"]);
    assert_eq!(promote.status.code(), Some(0), "promote: {}", stderr(&promote));
    for (i, r) in w.regions.iter().enumerate() {
        let state = w.state(i);
        assert_eq!(state["stable"]["upstream"], r.candidate.as_str(), "{}: {state}", r.name);
        assert_eq!(state["candidate_weight"], 0);
    }
    let ledger = w.ledger();
    assert_eq!(ledger.len(), 1, "{ledger:?}");
    assert_eq!(ledger[0]["outcome"], "promoted");
    assert_eq!(w.record()["status"], "promoted");
    // Promoting again changes nothing.
    let again = w.step(&["promote"]);
    assert_eq!(again.status.code(), Some(0), "{}", stderr(&again));
    assert_eq!(w.ledger().len(), 1);
    // Reverting the promotion puts v1 back as stable behind every router.
    let revert = w.step(&["rollback", "--reason", "bad release after all"]);
    assert_eq!(revert.status.code(), Some(0), "{}", stderr(&revert));
    w.assert_all_stable();
    let ledger = w.ledger();
    assert_eq!(ledger.len(), 2, "{ledger:?}");
    assert_eq!(ledger[1]["outcome"], "reverted");
    assert_eq!(w.record()["status"], "rolled_back");
}

#[test]
fn a_shift_cancelled_in_the_second_wave_leaves_a_record_from_which_rollback_restores_every_target() {
    let _serial = serial();
    let slow = "{ kind = \"canary\", stages = [50, 100], stage_duration = \"6s\" }";
    let w = World::new(None, slow);
    let gate = w.step(&["gate", "--release", "v2", "--commit", "abcdef1", "--candidate-upstream", &w.candidates()]);
    assert_eq!(gate.status.code(), Some(0), "gate: {}", stderr(&gate));
    let mut shift = w.spawn_shift();
    w.wait_for_weight(2, 50, &mut shift);
    let pid = shift.id().to_string();
    let kill = Command::new("kill").args(["-TERM", &pid]).status().expect("kill");
    assert!(kill.success());
    let out = shift.wait_with_output().expect("shift-traffic ends");
    assert_eq!(out.status.code(), Some(143), "{}", stderr(&out));
    // The record has each target's weight read back when it stopped.
    let record = w.record();
    assert_eq!(record["status"], "shifting", "{record}");
    let weights: Vec<u64> =
        record["targets"].as_array().expect("targets").iter().filter_map(|t| t["candidate_weight"].as_u64()).collect();
    assert_eq!(weights, vec![100, 50, 50], "{record}");
    for name in ["us-east-1", "eu-west-1", "ap-southeast-2"] {
        assert_eq!(events(&record, "cancelled", name).len(), 1, "{name}");
    }
    let rollback = w.step(&["rollback", "--reason", "cancelled"]);
    assert_eq!(rollback.status.code(), Some(0), "{}", stderr(&rollback));
    w.assert_all_stable();
    let record = w.record();
    assert_eq!(record["status"], "rolled_back");
    for name in ["us-east-1", "eu-west-1", "ap-southeast-2"] {
        assert_eq!(events(&record, "rollback", name).len(), 1, "{name}");
    }
    let ledger = w.ledger();
    assert_eq!(ledger.len(), 1, "{ledger:?}");
    assert_eq!(ledger[0]["outcome"], "rolled_back");
}

#[test]
fn a_bad_candidate_behind_the_second_waves_second_target_rolls_back_every_wave() {
    let _serial = serial();
    let mut w = World::new(Some("ap-southeast-2"), CANARY);
    let hook = w.listen_for_notifications();
    let shift = w.gate_and_shift();
    assert_eq!(shift.status.code(), Some(1), "shift-traffic should roll back: {}", stderr(&shift));
    w.assert_all_stable();
    // The analyses the failing target stopped left nothing in the live view.
    assert!(!w.dir.path().join("prd.json.live").exists(), "a live view outlived its analysis");
    let record = w.record();
    assert_eq!(record["status"], "rolled_back", "{record}");
    for t in record["targets"].as_array().expect("targets") {
        assert_eq!(t["candidate_weight"], 0, "{t}");
    }
    // Wave 1 passed its stages, and was rolled back with wave 2.
    assert!(events(&record, "verdict", "us-east-1").iter().all(|v| v["report"]["verdict"] == "pass"));
    for name in ["us-east-1", "eu-west-1", "ap-southeast-2"] {
        assert_eq!(events(&record, "rollback", name).len(), 1, "{name} rolled back once");
    }
    let failed = events(&record, "verdict", "ap-southeast-2");
    assert_eq!(failed.last().expect("a verdict")["report"]["verdict"], "fail");
    let ledger = w.ledger();
    assert_eq!(ledger.len(), 1, "{ledger:?}");
    assert_eq!(ledger[0]["outcome"], "rolled_back");
    let reason = ledger[0]["reason"].as_str().unwrap_or_default();
    assert!(reason.contains("target ap-southeast-2 in wave 2"), "{reason}");
    // The one entry says how each target ended.
    let targets = ledger[0]["targets"].as_array().expect("per-target outcomes");
    let outcome = |name: &str| targets.iter().find(|t| t["name"] == name).cloned().expect(name);
    assert_eq!(targets.len(), 3, "{targets:?}");
    assert_eq!(outcome("us-east-1")["wave"], 0);
    assert_eq!(outcome("us-east-1")["verdict"], "pass");
    assert_eq!(outcome("us-east-1")["reached"], 100, "wave 1 went through its plan");
    assert_eq!(outcome("ap-southeast-2")["wave"], 1);
    assert_eq!(outcome("ap-southeast-2")["verdict"], "fail");
    assert!(outcome("ap-southeast-2")["reached"].as_u64().is_some_and(|w| w > 0 && w < 100), "{targets:?}");
    // The step summary has a row per target and wave.
    let summary = std::fs::read_to_string(w.dir.path().join("summary.md")).expect("summary");
    assert!(summary.contains("| 1 | us-east-1 | 0% | pass:"), "{summary}");
    assert!(summary.contains("| 2 | ap-southeast-2 | 0% | fail:"), "{summary}");
    // The webhook was told which target stopped it.
    let told = hook.bodies();
    let rolled: Vec<&Value> = told.iter().filter(|b| b["event"] == "rolled_back").collect();
    assert_eq!(rolled.len(), 1, "{told:?}");
    assert_eq!(rolled[0]["target"], "ap-southeast-2", "{told:?}");
    assert_eq!(rolled[0]["decision"], "fail");
    // The DORA history counts it once, as a failed attempt, and names the target.
    let text = w.dora_report("--markdown");
    assert!(text.contains("| rolled back in ap-southeast-2 |"), "{text}");
    let json: Value = serde_json::from_str(&w.dora_report("--json")).expect("report json");
    let prd = &json["environments"][0];
    assert_eq!(prd["counts"]["attempts"], 1, "{prd}");
    assert_eq!(prd["counts"]["failed_deployments"], 1, "{prd}");
    assert_eq!(prd["history"]["rows"][0]["failed_target"], "ap-southeast-2", "{prd}");
    // A second rollback is harmless and adds nothing.
    let again = w.step(&["rollback"]);
    assert_eq!(again.status.code(), Some(0), "{}", stderr(&again));
    assert_eq!(w.ledger().len(), 1);
    w.assert_all_stable();
    // Nothing to promote, nothing to verify.
    let promote = w.step(&["promote"]);
    assert_eq!(promote.status.code(), Some(1), "{}", stderr(&promote));
    let verify = w.step(&["verify-health"]);
    assert_eq!(verify.status.code(), Some(1), "{}", stderr(&verify));
}

#[test]
fn a_router_down_mid_wave_is_an_error_with_every_other_target_rolled_back() {
    let _serial = serial();
    let slow = "{ kind = \"canary\", stages = [50, 100], stage_duration = \"6s\" }";
    let mut w = World::new(None, slow);
    let gate = w.step(&["gate", "--release", "v2", "--commit", "abcdef1", "--candidate-upstream", &w.candidates()]);
    assert_eq!(gate.status.code(), Some(0), "gate: {}", stderr(&gate));
    let mut shift = w.spawn_shift();
    // Wait for the second wave to move (ap-southeast-2 at 50%, confirmed to
    // the step), then take its router down.
    w.wait_for_weight(2, 50, &mut shift);
    w.wait_for_record(2, 50, &mut shift);
    let down = w.regions[2].child;
    let _ = w.children[down].kill();
    let _ = w.children[down].wait();
    let out = shift.wait_with_output().expect("shift-traffic ends");
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(3), "{err}");
    // The others are back as they were; the record names the target and
    // every target's last confirmed weight.
    for i in 0..2 {
        assert_eq!(w.state(i)["candidate_weight"], 0, "{}", w.regions[i].name);
    }
    let record = w.record();
    assert_eq!(record["status"], "shifting", "{record}");
    let targets = record["targets"].as_array().expect("targets");
    assert_eq!(targets[0]["candidate_weight"], 0);
    assert_eq!(targets[1]["candidate_weight"], 0);
    assert_eq!(targets[2]["candidate_weight"], 50);
    let error = record["events"]
        .as_array()
        .expect("events")
        .iter()
        .rev()
        .find(|e| e["type"] == "error")
        .expect("an error event");
    let message = error["message"].as_str().expect("message");
    assert!(message.contains("target ap-southeast-2 in wave 2"), "{message}");
    assert!(message.contains("us-east-1 0%, eu-west-1 0%, ap-southeast-2 50%"), "{message}");
    assert!(err.contains("ap-southeast-2 50%"), "{err}");
    let errors = record["events"].as_array().expect("events").iter().filter(|e| e["type"] == "error").count();
    assert_eq!(errors, 1, "one rollback attempt, one error event: {record}");
    // Half rolled back: never continued as a canary.
    let again = w.step(&["shift-traffic"]);
    assert_eq!(again.status.code(), Some(1), "{}", stderr(&again));
    assert!(stderr(&again).contains("finish it with `rollback`"), "{}", stderr(&again));
    assert_eq!(w.state(0)["candidate_weight"], 0);

    // The router comes back (at its address, as it was): `rollback` from
    // the record restores every target and closes the deployment.
    let stable = w.stable.clone();
    let admin = w.regions[2].admin_addr.clone();
    let v = start(
        &mut w.children,
        w.dir.path(),
        "sluice-router",
        &["--listen", "127.0.0.1:0", "--admin", &admin, "--stable", &stable],
    );
    assert_eq!(v["admin"].as_str(), Some(admin.as_str()));
    let rollback = w.step(&["rollback", "--reason", "region back"]);
    assert_eq!(rollback.status.code(), Some(0), "{}", stderr(&rollback));
    w.assert_all_stable();
    let record = w.record();
    assert_eq!(record["status"], "rolled_back");
    assert_eq!(events(&record, "rollback", "ap-southeast-2").len(), 1);
    let ledger = w.ledger();
    assert_eq!(ledger.len(), 1, "{ledger:?}");
    assert_eq!(ledger[0]["outcome"], "rolled_back");
}

#[test]
fn what_the_steps_cannot_do_for_targets_yet_is_refused_before_anything_moves() {
    let _serial = serial();
    let w = World::new(None, CANARY);
    // One URL for several targets is bad input.
    let gate = w.step(&["gate", "--release", "v2", "--candidate-upstream", &w.regions[0].candidate]);
    assert_eq!(gate.status.code(), Some(2), "{}", stderr(&gate));
    assert!(stderr(&gate).contains("NAME=URL"), "{}", stderr(&gate));
    let unknown = format!("{},mars-1=http://127.0.0.1:9", w.candidates());
    let gate = w.step(&["gate", "--release", "v2", "--candidate-upstream", &unknown]);
    assert_eq!(gate.status.code(), Some(2), "{}", stderr(&gate));
    assert!(stderr(&gate).contains("\"mars-1\", which environment prd does not define"), "{}", stderr(&gate));
    assert!(!w.dir.path().join("prd.json").exists(), "nothing written");
    let gate = w.step(&["gate", "--release", "v2", "--candidate-upstream", &w.candidates()]);
    assert_eq!(gate.status.code(), Some(0), "{}", stderr(&gate));
    let replay = ["verify-health", "--replay", "prd.json"];
    let pause = w.step(&["shift-traffic", "--pause-at", "30"]);
    assert_eq!(pause.status.code(), Some(2), "{}", stderr(&pause));
    assert!(stderr(&pause).contains("not a stage of this deployment's plan before the last"), "{}", stderr(&pause));
    for args in [&["shift-traffic", "--weight", "10"][..], &replay] {
        let out = w.step(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
        assert!(stderr(&out).contains("not supported for targets yet"), "{args:?}: {}", stderr(&out));
    }
    for i in 0..3 {
        assert_eq!(w.state(i)["candidate_weight"], 0);
    }
    assert_eq!(w.record()["status"], "admitted");
    // Nothing moved: rollback abandons it without touching a router.
    let rollback = w.step(&["rollback"]);
    assert_eq!(rollback.status.code(), Some(0), "{}", stderr(&rollback));
    assert_eq!(w.record()["status"], "abandoned");

    // Without a record, `rollback --live` sends every target's traffic to
    // stable; freeing a lease is not done for targets yet.
    let admin = &w.regions[1].admin;
    let body = format!("{{\"candidate\": \"{}\"}}", w.regions[1].candidate);
    request("PUT", &format!("{admin}/v1/upstreams"), &body).expect("candidate");
    request("PUT", &format!("{admin}/v1/weights"), "{\"candidate_weight\": 30}").expect("weight");
    assert_eq!(w.state(1)["candidate_weight"], 30);
    let free = w.step(&["rollback", "--live", "--free-lease", "shop-prd-x"]);
    assert_eq!(free.status.code(), Some(2), "{}", stderr(&free));
    assert_eq!(w.state(1)["candidate_weight"], 30, "nothing changed");
    let live = w.step(&["rollback", "--live"]);
    assert_eq!(live.status.code(), Some(0), "{}", stderr(&live));
    w.assert_all_stable();
}

/// Two ALB targets on moto: the listener's default action and its rule
/// (each its own router), shifted in two waves with every weight read back
/// through the SDK, then rolled back exactly. Skipped without `moto_server`
/// (except in CI, where that fails).
#[tokio::test(flavor = "multi_thread")]
async fn alb_targets_are_shifted_in_waves_and_restored_exactly() {
    use sluice_test_support::aws::{self as testing, create_alb, forward_weights, step_env};
    let _turn = shared();
    let Some(moto) = testing::moto() else { return };
    let sdk = moto.sdk_config().await;
    let fx = create_alb(&moto.endpoint, &sdk).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let alb = |rule: &str| {
        format!(
            "router = {{ kind = \"alb\", listener_arn = \"{}\",{rule} stable_target_group = \"{}\", candidate_target_group = \"{}\" }}\n",
            fx.listener, fx.blue, fx.green
        )
    };
    let config = format!(
        "app = \"shop\"\n[ledger]\nkind = \"file\"\npath = \"ledger.jsonl\"\n\
         [defaults]\nstrategy = {{ kind = \"canary\", stages = [50, 100], stage_duration = \"300ms\" }}\nanalysis = \"none\"\n\
         [[environment]]\nname = \"prd\"\nwaves = [[\"web\"], [\"api\"]]\n\
         [[environment.target]]\nname = \"web\"\n{}\
         [[environment.target]]\nname = \"api\"\n{}",
        alb(""),
        alb(&format!(" rule_arn = \"{}\",", fx.rule))
    );
    std::fs::write(dir.path().join("sluice.toml"), config).expect("config");
    let step = |args: &[&str]| {
        Command::new(binary("sluice"))
            .current_dir(dir.path())
            .env_remove("GITHUB_ACTIONS")
            .env_remove("GITHUB_OUTPUT")
            .env_remove("GITHUB_STEP_SUMMARY")
            .env("CI", "true")
            .envs(step_env(&moto.endpoint))
            .args(args)
            .args(["--config", "sluice.toml", "-e", "prd", "--record", "prd.json"])
            .output()
            .expect("the step runs")
    };
    let weights = |rule: Option<String>| {
        let (sdk, listener) = (sdk.clone(), fx.listener.clone());
        async move { forward_weights(&sdk, &listener, rule.as_deref()).await }
    };
    let blue_only = vec![(fx.blue.clone(), 1)];
    let gate = step(&["gate", "--release", "v2", "--commit", "abcdef1"]);
    assert_eq!(gate.status.code(), Some(0), "gate: {}", stderr(&gate));
    let shift = step(&["shift-traffic"]);
    assert_eq!(shift.status.code(), Some(0), "shift-traffic: {}", stderr(&shift));
    let all_green = vec![(fx.blue.clone(), 0), (fx.green.clone(), 100)];
    assert_eq!(weights(None).await, all_green, "web");
    assert_eq!(weights(Some(fx.rule.clone())).await, all_green, "api");
    let record: Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("prd.json")).expect("record")).expect("json");
    assert_eq!(record["status"], "verified", "{record}");
    for (i, name) in ["web", "api"].iter().enumerate() {
        let t = &record["targets"][i];
        assert_eq!(t["name"], *name);
        assert_eq!(t["candidate"], fx.green.as_str(), "the candidate group pinned from the ALB");
        assert_eq!(t["router_before"]["target_groups"][0]["arn"], fx.blue.as_str());
        let traffic: Vec<u64> = events(&record, "traffic", name).iter().filter_map(|e| e["to"].as_u64()).collect();
        assert_eq!(traffic, vec![50, 100], "{name}: every stage confirmed by the ALB");
    }
    // The second wave moved only after the first was done.
    let at = |e: &Value| e["at"].as_str().expect("at").to_owned();
    let web_last = at(events(&record, "traffic", "web")[1]);
    let api_first = at(events(&record, "traffic", "api")[0]);
    assert!(web_last <= api_first, "{web_last} {api_first}");

    let rollback = step(&["rollback", "--reason", "test"]);
    assert_eq!(rollback.status.code(), Some(0), "rollback: {}", stderr(&rollback));
    assert_eq!(weights(None).await, blue_only, "web as before");
    assert_eq!(weights(Some(fx.rule.clone())).await, blue_only, "api as before");
    // Idempotent.
    let again = step(&["rollback"]);
    assert_eq!(again.status.code(), Some(0), "{}", stderr(&again));
    assert_eq!(weights(None).await, blue_only);
}

fn weights_read_back(w: &World) -> Vec<u64> {
    (0..w.regions.len()).map(|i| w.state(i)["candidate_weight"].as_u64().unwrap_or(999)).collect()
}

#[test]
fn a_pause_holds_each_wave_for_approval_and_one_not_approved_in_time_is_rolled_back() {
    let _serial = serial();
    let w = World::new(None, CANARY);
    let gate = w.step(&["gate", "--release", "v2", "--commit", "abcdef1", "--candidate-upstream", &w.candidates()]);
    assert_eq!(gate.status.code(), Some(0), "gate: {}", stderr(&gate));
    // The first wave pauses after its 50% stage; nothing else moved.
    let first = w.step(&["shift-traffic", "--pause-at", "50"]);
    assert_eq!(first.status.code(), Some(0), "{}", stderr(&first));
    assert_eq!(w.record()["status"], "paused");
    assert_eq!(weights_read_back(&w), vec![50, 0, 0]);
    // Approved, with a pause for the next wave: wave 1 finishes, wave 2
    // pauses after its 50% stage.
    let second = w.step(&["shift-traffic", "--pause-at", "50"]);
    assert_eq!(second.status.code(), Some(0), "{}", stderr(&second));
    assert_eq!(w.record()["status"], "paused");
    assert_eq!(weights_read_back(&w), vec![100, 50, 50]);
    // A stage that is not one of the plan's before the last is bad input.
    let bad = w.step(&["shift-traffic", "--pause-at", "30"]);
    assert_eq!(bad.status.code(), Some(2), "{}", stderr(&bad));
    assert_eq!(weights_read_back(&w), vec![100, 50, 50]);
    let last = w.step(&["shift-traffic"]);
    assert_eq!(last.status.code(), Some(0), "{}", stderr(&last));
    assert_eq!(w.record()["status"], "verified");
    assert_eq!(weights_read_back(&w), vec![100, 100, 100]);
    drop(w);

    // Not approved before pause_timeout: the sweep rolls every target back.
    let w = World::new(None, &format!("{CANARY}\npause_timeout = \"1s\""));
    let gate = w.step(&["gate", "--release", "v2", "--commit", "abcdef1", "--candidate-upstream", &w.candidates()]);
    assert_eq!(gate.status.code(), Some(0), "gate: {}", stderr(&gate));
    let paused = w.step(&["shift-traffic", "--pause-at", "50"]);
    assert_eq!(paused.status.code(), Some(0), "{}", stderr(&paused));
    assert_eq!(weights_read_back(&w), vec![50, 0, 0]);
    std::thread::sleep(Duration::from_millis(1500));
    let sweep = w.step(&["rollback", "--if-expired"]);
    assert_eq!(sweep.status.code(), Some(0), "{}", stderr(&sweep));
    w.assert_all_stable();
    let record = w.record();
    assert_eq!(record["status"], "rolled_back");
    assert_eq!(events(&record, "rollback", "us-east-1").len(), 1);
    // A late approval continues nothing.
    let late = w.step(&["shift-traffic"]);
    assert_eq!(late.status.code(), Some(1), "{}", stderr(&late));
    w.assert_all_stable();
}

/// Two regions in one moto server (moto keeps each signing region's
/// resources apart): an ALB in us-east-1 and one in eu-west-1, each the
/// router of its own target (named after its region), with its region
/// named in its router config.
async fn two_regions(moto: &str, defaults: &str, after: impl Fn(&AlbTarget) -> String) -> AlbTargets {
    use sluice_providers::aws::AwsSettings;
    let mut targets = Vec::new();
    for region in TWO_REGIONS {
        let settings = AwsSettings {
            region: Some(region.into()),
            endpoint_url: Some(moto.to_owned()),
            timeouts: None,
            role: None,
        };
        targets.push((region, region, sluice_test_support::aws::sdk_config_with(settings).await));
    }
    let w = AlbTargets::new(moto, targets).await;
    w.write_config(defaults, |t| format!(", region = \"{}\"", t.home), after);
    w
}

const TWO_REGIONS: [&str; 2] = ["us-east-1", "eu-west-1"];

/// A canary of two short stages without analysis.
const SHORT_PLAN: &str =
    "strategy = { kind = \"canary\", stages = [50, 100], stage_duration = \"300ms\" }\nanalysis = \"none\"\n";

/// ALBs in two regions, shifted in two waves: each target's router works in
/// its own region (moto answers `ListenerNotFound` for an ARN asked in the
/// wrong one), and every weight is read back per region by the test's own
/// client, then restored exactly.
#[tokio::test(flavor = "multi_thread")]
async fn albs_in_two_regions_are_shifted_in_two_waves_each_in_its_own_region() {
    let _turn = shared();
    let Some(moto) = sluice_test_support::aws::moto() else { return };
    let w = two_regions(&moto.endpoint, SHORT_PLAN, |_| String::new()).await;
    // `sluice status` too reads each region's ALB with its own client.
    w.assert_shifted_in_waves_and_back(&moto.endpoint, &[50, 100]).await;
}

/// AWS failing in one region mid-wave: a proxy in front of moto answers
/// every call about eu-west-1's ALB with a 503 from the moment the second
/// wave asks its second change (its 50% stage done). The deployment is an
/// error (exit 3), us-east-1 (already at 100%) is put back exactly, read
/// back in its region, eu-west-1 stays at the 50% its ALB confirmed, and
/// the record and the step's output name each target's last confirmed
/// weight; `rollback` restores eu-west-1 exactly once the region answers.
#[tokio::test(flavor = "multi_thread")]
async fn aws_failing_in_one_region_mid_wave_rolls_every_other_region_back() {
    use sluice_test_support::aws::{Call, FaultProxy, Reply, error_body};
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    let _turn = shared();
    let Some(moto) = sluice_test_support::aws::moto() else { return };
    let mut w = two_regions(&moto.endpoint, SHORT_PLAN, |_| String::new()).await;
    let hook = Webhook::start();
    append_notify(&w.dir.path().join("sluice.toml"));
    w.webhook = hook.url.clone();
    let proxy = FaultProxy::start(&moto.endpoint);
    let changes = Arc::new(AtomicUsize::new(0));
    let seen = Arc::clone(&changes);
    // Every call about eu-west-1's load balancer names one of its ARNs.
    proxy.add(Arc::new(move |call: &Call| {
        if !call.body.contains("%3Aeu-west-1%3A") && !call.body.contains(":eu-west-1:") {
            return Reply::Forward;
        }
        if call.operation.starts_with("Modify") {
            seen.fetch_add(1, Ordering::SeqCst);
        }
        match seen.load(Ordering::SeqCst) >= 2 {
            true => Reply::Respond {
                status: 503,
                body: error_body(call.json, "ServiceUnavailable", "eu-west-1 is down (fault proxy)"),
            },
            false => Reply::Forward,
        }
    }));
    let gate = w.step(&proxy.endpoint, &["gate", "--release", "v2", "--commit", "abcdef1"]);
    assert_eq!(gate.status.code(), Some(0), "gate: {}", stderr(&gate));
    let shift = w.step(&proxy.endpoint, &["shift-traffic"]);
    let err = stderr(&shift);
    assert_eq!(shift.status.code(), Some(3), "{err}");
    assert!(changes.load(Ordering::SeqCst) >= 2, "the second wave's second stage was asked");
    // us-east-1 had moved to 100% and is back exactly; eu-west-1 is at the
    // 50% its ALB confirmed (read back in its region, past the proxy).
    let (east, west) = (&w.targets[0].fx, &w.targets[1].fx);
    let half = vec![(west.blue.clone(), 50), (west.green.clone(), 50)];
    assert_eq!(w.weights().await, vec![vec![(east.blue.clone(), 1)], half]);
    let record = w.record();
    let events_all = record["events"].as_array().expect("events");
    let traffic: Vec<u64> = events(&record, "traffic", "us-east-1").iter().filter_map(|e| e["to"].as_u64()).collect();
    assert_eq!(traffic, vec![50, 100], "the first wave was done: {record}");
    let traffic: Vec<u64> = events(&record, "traffic", "eu-west-1").iter().filter_map(|e| e["to"].as_u64()).collect();
    assert_eq!(traffic, vec![50], "{record}");
    assert_eq!(events(&record, "rollback", "us-east-1").len(), 1, "{record}");
    assert_eq!(record["targets"][0]["candidate_weight"], 0);
    assert_eq!(record["targets"][1]["candidate_weight"], 50);
    let error = events_all.iter().rev().find(|e| e["type"] == "error").expect("an error event");
    let message = error["message"].as_str().expect("message");
    assert!(message.contains("target eu-west-1 in wave 2"), "{message}");
    assert!(message.contains("ServiceUnavailable"), "{message}");
    assert!(message.contains("last confirmed weights: us-east-1 0%, eu-west-1 50%"), "{message}");
    assert!(err.contains("us-east-1 0%, eu-west-1 50%"), "{err}");
    assert_eq!(record["status"], "shifting", "open until eu-west-1 is confirmed: {record}");
    // The webhook was told the step failed, and on which target.
    let told = hook.bodies();
    let failed: Vec<&Value> = told.iter().filter(|b| b["event"] == "failed").collect();
    assert_eq!(failed.len(), 1, "{told:?}");
    assert_eq!(failed[0]["target"], "eu-west-1", "{told:?}");
    assert_eq!(failed[0]["decision"], "provider_failure");

    // The region answers again: `rollback` confirms it and closes the deployment.
    proxy.clear();
    let rollback = w.step(&proxy.endpoint, &["rollback", "--reason", "region back"]);
    assert_eq!(rollback.status.code(), Some(0), "rollback: {}", stderr(&rollback));
    assert_eq!(w.weights().await, w.as_created(), "eu-west-1 exactly as before too");
    let record = w.record();
    assert_eq!(record["status"], "rolled_back");
    assert_eq!(events(&record, "rollback", "eu-west-1").len(), 1, "{record}");
    let ledger: Vec<Value> = std::fs::read_to_string(w.dir.path().join("ledger.jsonl"))
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).expect("ledger line"))
        .collect();
    assert_eq!(ledger.len(), 1, "{ledger:?}");
    assert_eq!(ledger[0]["outcome"], "rolled_back");
    // The ledger, and so the DORA history, still say which target stopped it.
    let reason = ledger[0]["reason"].as_str().unwrap_or_default();
    assert_eq!(reason, "region back; target eu-west-1 in wave 2 had stopped the deployment");
    let told = hook.bodies();
    let rolled: Vec<&Value> = told.iter().filter(|b| b["event"] == "rolled_back").collect();
    assert_eq!(rolled.len(), 1, "{told:?}");
    assert_eq!(rolled[0]["target"], "eu-west-1", "{told:?}");
}

/// Each ALB target judged on CloudWatch in its own region: a target-level
/// CloudWatch source (`region`, `alb_traffic`) per target, the ALB metrics
/// put into moto's CloudWatch of each region the way the ALB would, healthy
/// in us-east-1, the candidate failing a fifth of its requests in
/// eu-west-1. The first wave passes on us-east-1's metrics; the second
/// fails on eu-west-1's (read from any other region they would be missing:
/// no traffic, not a failure), and both regions are put back exactly.
#[tokio::test(flavor = "multi_thread")]
async fn each_alb_target_is_judged_on_cloudwatch_in_its_own_region() {
    let _turn = shared();
    let Some(moto) = sluice_test_support::aws::moto() else { return };
    let w = two_regions(&moto.endpoint, JUDGED_CANARY, |t| {
        format!(
            "[[environment.target.source]]\nkind = \"cloudwatch\"\nname = \"cw\"\nregion = \"{}\"\n\
             alb_traffic = true\nlookback = \"2m\"\ndelay = \"0s\"\n",
            t.home
        )
    })
    .await;
    w.put_alb_traffic(|t| if t.home == "eu-west-1" { 100.0 } else { 0.0 }).await;
    w.assert_second_target_fails_on_its_own_metrics(&moto.endpoint).await;
}

/// A canary of two 1 s stages judged by an `errors` check.
const JUDGED_CANARY: &str = "strategy = { kind = \"canary\", stages = [10, 100], stage_duration = \"1s\" }\n\
    [[defaults.check]]\nname = \"errors\"\nkind = \"error_rate\"\nmax = 0.02\nmin_samples = 50\ncritical = true\n";

mod accounts;
