//! Notifications received by a real HTTP server on 127.0.0.1 when the real
//! `rollback` binary rolls a canary back.

use crate::support::{Harness, code, exe, stderr};
use std::io::{Read, Write};
use std::net::TcpListener;
use std::process::{Command, Output};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Records the JSON bodies it receives; answers 200, or never when `hang`.
struct Receiver {
    url: String,
    bodies: Arc<Mutex<Vec<serde_json::Value>>>,
}

impl Receiver {
    fn start(hang: bool) -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let url = format!("http://{}/hook", listener.local_addr().expect("addr"));
        let bodies = Arc::new(Mutex::new(Vec::new()));
        let log = bodies.clone();
        std::thread::spawn(move || {
            for mut socket in listener.incoming().flatten() {
                let log = log.clone();
                std::thread::spawn(move || {
                    let Some(body) = read_body(&mut socket) else { return };
                    log.lock().expect("log").push(body);
                    if hang {
                        std::thread::sleep(Duration::from_secs(60));
                        return;
                    }
                    let _ = socket.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok");
                });
            }
        });
        Receiver { url, bodies }
    }

    fn bodies(&self) -> Vec<serde_json::Value> {
        self.bodies.lock().expect("log").clone()
    }
}

fn read_body(socket: &mut std::net::TcpStream) -> Option<serde_json::Value> {
    socket.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    let mut data = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let n = socket.read(&mut buf).ok()?;
        if n == 0 {
            return None;
        }
        data.extend_from_slice(&buf[..n]);
        let Some(end) = data.windows(4).position(|w| w == b"\r\n\r\n").map(|i| i + 4) else { continue };
        let head = String::from_utf8_lossy(&data[..end]).to_ascii_lowercase();
        let length: usize = head.lines().find_map(|l| l.strip_prefix("content-length:"))?.trim().parse().ok()?;
        if data.len() >= end + length {
            return serde_json::from_slice(&data[end..end + length]).ok();
        }
    }
}

const NOTIFY: &str = "[notify]\ntimeout = \"2s\"\n\
    [[notify.webhook]]\nkind = \"json\"\nurl_env = \"SLUICE_E2E_WEBHOOK\"\non = [\"rolled_back\", \"failed\"]\n\
    [[notify.webhook]]\nkind = \"slack\"\nurl_env = \"SLUICE_E2E_SLACK\"\n";

fn step(h: &Harness, name: &str, args: &[&str], json: &str, slack: &str) -> Output {
    Command::new(exe(name))
        .current_dir(h.dir.path())
        .env_remove("GITHUB_ACTIONS")
        .env_remove("GITHUB_OUTPUT")
        .env_remove("GITHUB_STEP_SUMMARY")
        .env("CI", "true")
        .env("SLUICE_E2E_WEBHOOK", json)
        .env("SLUICE_E2E_SLACK", slack)
        .args(["--config", "sluice.toml"])
        .args(args)
        .output()
        .expect("step runs")
}

#[test]
fn a_rollback_is_notified_and_a_hung_webhook_does_not_hold_it() {
    let h = Harness::start(&[("v1", &[]), ("v2", &[])], "{ kind = \"all_at_once\" }", NOTIFY);
    let json = Receiver::start(false);
    let slack = Receiver::start(true);
    let run = |name: &str, args: &[&str]| step(&h, name, args, &json.url, &slack.url);
    let gate = run("gate", &["-e", "dev", "--record", "r.json", "--release", "v2", "--commit", "abcdef1"]);
    assert_eq!(code(&gate), 0, "{}", stderr(&gate));
    let shift = run(
        "shift-traffic",
        &["-e", "dev", "--record", "r.json", "--weight", "50", "--candidate-upstream", &h.apps[1]],
    );
    assert_eq!(code(&shift), 0, "{}", stderr(&shift));
    assert!(json.bodies().is_empty() && slack.bodies().is_empty(), "nothing to tell yet");

    let started = Instant::now();
    let rollback = run("rollback", &["-e", "dev", "--record", "r.json", "--reason", "errors on the canary"]);
    let took = started.elapsed();
    assert_eq!(code(&rollback), 0, "a failing webhook never fails the step: {}", stderr(&rollback));
    assert_eq!(h.state()["candidate_weight"], 0);
    assert!(took < Duration::from_secs(5), "rollback took {took:?} with a 2s notify timeout");
    let err = stderr(&rollback);
    assert!(err.contains("notify: rolled_back sent to $SLUICE_E2E_WEBHOOK"), "{err}");
    assert!(
        err.contains("warning: notify: rolled_back not delivered to $SLUICE_E2E_SLACK: no answer within 2s"),
        "{err}"
    );
    assert!(!err.contains(&slack.url) && !err.contains(&json.url), "a webhook URL leaked: {err}");

    let record: serde_json::Value =
        serde_json::from_slice(&std::fs::read(h.path("r.json")).expect("record")).expect("json");
    let bodies = json.bodies();
    assert_eq!(bodies.len(), 1, "{bodies:?}");
    let body = &bodies[0];
    assert_eq!(body["schema"], "sluice.notification/v1");
    assert_eq!(body["event"], "rolled_back");
    assert_eq!(body["decision"], "rollback");
    assert_eq!(
        (body["app"].as_str(), body["environment"].as_str(), body["version"].as_str()),
        (Some("shop"), Some("dev"), Some("v2"))
    );
    assert_eq!(body["reason"], "errors on the canary");
    assert_eq!(body["record_id"], record["id"]);
    assert_eq!(body["step"], "rollback");
    // The Slack webhook got its message too, though it never answered.
    let slack_bodies = slack.bodies();
    assert!(
        slack_bodies
            .iter()
            .all(|b| b["text"].as_str().is_some_and(|t| t.starts_with(":rewind: Rolled back: shop v2 in dev"))),
        "{slack_bodies:?}"
    );
    // Nothing in the record or the ledger knows a URL.
    let files = std::fs::read_to_string(h.path("r.json")).expect("record")
        + &std::fs::read_to_string(h.path("ledger.jsonl")).expect("ledger");
    assert!(!files.contains(&json.url) && !files.contains(&slack.url), "a webhook URL was written");

    // A repeat rollback confirms the router and tells nobody again.
    let again = run("rollback", &["-e", "dev", "--record", "r.json"]);
    assert_eq!(code(&again), 0, "{}", stderr(&again));
    assert_eq!(json.bodies().len(), 1);
}

#[test]
fn a_failed_step_is_notified() {
    let h = Harness::start(&[("v1", &[])], "{ kind = \"all_at_once\" }", NOTIFY);
    let json = Receiver::start(false);
    let out =
        step(&h, "shift-traffic", &["-e", "dev", "--record", "missing.json", "--weight", "10"], &json.url, "not a url");
    assert_eq!(code(&out), 2, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("warning: notify: $SLUICE_E2E_SLACK does not hold an http(s) URL"),
        "{}",
        stderr(&out)
    );
    let bodies = json.bodies();
    assert_eq!(bodies.len(), 1, "{bodies:?}");
    assert_eq!(bodies[0]["event"], "failed");
    assert_eq!(bodies[0]["decision"], "bad_input");
    assert_eq!(bodies[0]["step"], "shift-traffic");
    assert!(bodies[0]["reason"].as_str().is_some_and(|r| r.contains("no record at missing.json")), "{bodies:?}");
    assert_eq!(bodies[0]["version"], serde_json::Value::Null);
}
