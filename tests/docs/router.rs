//! The embedded router's admin API as docs/routers.md documents it, against
//! a real `sluice-router`: every endpoint of the table answers, the JSON
//! fields and Prometheus metrics the table names are the ones served (both
//! ways: a field added or renamed without its docs fails here), the
//! documented refusals happen and change nothing, and the page's `curl`
//! commands run as written (but the admin port, a free one here).
//!
//! Never edits a page; stops the router it started.

use super::cli::binary;
use super::root;
use serde_json::Value;
use std::collections::BTreeSet;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

/// A router on free 127.0.0.1 ports, killed when dropped.
struct Router {
    child: Child,
    admin: String,
    _dir: tempfile::TempDir,
}

impl Router {
    fn start() -> Router {
        let dir = tempfile::tempdir().expect("tempdir");
        let ready = dir.path().join("router.json");
        let child = Command::new(binary("sluice-router"))
            .args(["--listen", "127.0.0.1:0", "--admin", "127.0.0.1:0", "--stable", "http://127.0.0.1:9"])
            .arg("--ready-file")
            .arg(&ready)
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("sluice-router starts");
        let mut router = Router { child, admin: String::new(), _dir: dir };
        // Far from any limit: it binds two sockets and writes a file.
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(value) = std::fs::read(&ready).ok().and_then(|b| serde_json::from_slice::<Value>(&b).ok()) {
                router.admin = value["admin"].as_str().expect("the ready file names the admin address").to_owned();
                return router;
            }
            assert!(Instant::now() < deadline, "sluice-router wrote no ready file in 30 s");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// (status, headers and body) of one request, through curl.
    fn call(&self, method: &str, path: &str, body: Option<&str>) -> (u16, String, String) {
        let mut cmd = Command::new("curl");
        cmd.args(["-sS", "-D", "-", "-X", method]);
        if let Some(body) = body {
            cmd.args(["-d", body]);
        }
        let out = cmd.arg(format!("http://{}{path}", self.admin)).output().expect("curl runs");
        assert!(out.status.success(), "curl {method} {path}: {}", String::from_utf8_lossy(&out.stderr));
        let text = String::from_utf8_lossy(&out.stdout).replace("\r\n", "\n");
        let (head, body) = text.split_once("\n\n").unwrap_or((&text, ""));
        let status = head.split_whitespace().nth(1).and_then(|s| s.parse().ok()).expect("an HTTP status line");
        (status, head.to_lowercase(), body.to_owned())
    }

    fn json(&self, method: &str, path: &str, body: Option<&str>) -> (u16, Value) {
        let (status, _, text) = self.call(method, path, body);
        let value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{method} {path}: not JSON ({e}): {text}"));
        (status, value)
    }
}

impl Drop for Router {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The "Admin API" section of docs/routers.md.
fn admin_section() -> String {
    let page = std::fs::read_to_string(root().join("docs/routers.md")).expect("docs/routers.md");
    let start = page.find("\n### Admin API\n").expect("docs/routers.md has \"### Admin API\"");
    let text = &page[start + 1..];
    let end = text[4..].find("\n## ").map_or(text.len(), |i| i + 4);
    text[..end].to_owned()
}

/// The table's rows: (method, path, the answer cell).
fn rows(section: &str) -> Vec<(String, String, String)> {
    section
        .lines()
        .filter_map(|l| {
            let cells: Vec<&str> = l.split(" | ").collect();
            let request = cells.first()?.strip_prefix("| `")?;
            let (method, rest) = request.split_once(' ')?;
            let path = rest.split('`').next()?;
            ["GET", "PUT", "POST"].contains(&method).then(|| (method.to_owned(), path.to_owned(), l.to_owned()))
        })
        .collect()
}

/// Words a cell names as JSON fields: `"key":`, `"key"`, or `` `key` ``.
fn named(cell: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for quote in ['"', '`'] {
        for (i, word) in cell.split(quote).enumerate() {
            if i % 2 == 1
                && !word.is_empty()
                && word.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
            {
                out.insert(word.to_owned());
            }
        }
    }
    out
}

/// Every object key in a JSON value, at any depth.
fn keys(value: &Value, out: &mut BTreeSet<String>) {
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                out.insert(k.clone());
                keys(v, out);
            }
        }
        Value::Array(items) => items.iter().for_each(|v| keys(v, out)),
        _ => {}
    }
}

fn row<'a>(rows: &'a [(String, String, String)], method: &str, path: &str) -> &'a str {
    rows.iter()
        .find(|(m, p, _)| m == method && p == path)
        .map(|(_, _, cell)| cell.as_str())
        .unwrap_or_else(|| panic!("docs/routers.md's admin table has no `{method} {path}`"))
}

#[test]
fn the_router_admin_api_answers_as_documented() {
    let section = admin_section();
    let rows = rows(&section);
    assert!(rows.len() >= 7, "the admin table has {} rows", rows.len());
    let router = Router::start();

    for (method, path, _) in rows.iter().filter(|(m, _, _)| m == "GET") {
        let (status, _, _) = router.call(method, path, None);
        assert_eq!(status, 200, "GET {path}");
    }

    // The state: the documented fields, no more, no fewer.
    let (_, state) = router.json("GET", "/v1/state", None);
    let served: BTreeSet<String> = state.as_object().expect("an object").keys().cloned().collect();
    let documented = named(row(&rows, "GET", "/v1/state"));
    for field in &served {
        assert!(documented.contains(field), "GET /v1/state serves {field:?}, which docs/routers.md does not name");
    }
    for field in ["candidate_weight", "stable", "candidate", "generation", "upstream", "epoch"] {
        assert!(documented.contains(field), "docs/routers.md's GET /v1/state no longer names {field:?}");
    }
    let mut state_keys = BTreeSet::new();
    keys(&state, &mut state_keys);
    for field in &documented {
        assert!(state_keys.contains(field), "docs/routers.md names {field:?} in GET /v1/state, which is not served");
    }

    // A weight without a candidate: refused as documented (409), nothing changed.
    let weights = row(&rows, "PUT", "/v1/weights");
    let body = weights.split('`').nth(3).expect("the documented request body");
    assert!(section.contains("409 for a weight without a candidate"), "the page names the 409");
    assert!(section.contains("400 for bad"), "the page names the 400");
    let (status, bad) = router.json("PUT", "/v1/weights", Some(r#"{"candidate_weight": 101}"#));
    assert_eq!(status, 400, "{bad}");
    let (status, refusal) = router.json("PUT", "/v1/weights", Some(body));
    assert_eq!(status, 409, "{refusal}");
    assert!(refusal["error"].is_string(), "a refusal answers {{\"error\": ...}}: {refusal}");
    assert_eq!(router.json("GET", "/v1/state", None).1, state, "a refused request changed the state");

    // A candidate, then the documented body moves the weight.
    let (status, with) = router.json(
        "PUT",
        "/v1/upstreams",
        Some(r#"{"stable": "http://127.0.0.1:9", "candidate": "http://127.0.0.1:10"}"#),
    );
    assert_eq!(status, 200, "{with}");
    assert_eq!(with["candidate"]["upstream"], "http://127.0.0.1:10");
    let (status, moved) = router.json("PUT", "/v1/weights", Some(body));
    assert_eq!(status, 200, "{moved}");
    let wanted: Value = serde_json::from_str(body).expect("the documented body is JSON");
    assert_eq!(moved["candidate_weight"], wanted["candidate_weight"], "{moved}");

    // The stats: every field the table names is served, every field served is named.
    let (_, stats) = router.json("GET", "/v1/stats", None);
    let mut served = BTreeSet::new();
    keys(&stats, &mut served);
    let documented = named(row(&rows, "GET", "/v1/stats"));
    for field in &served {
        assert!(documented.contains(field), "GET /v1/stats serves {field:?}, which docs/routers.md does not name");
    }
    for field in &documented {
        assert!(served.contains(field), "docs/routers.md names {field:?} in GET /v1/stats, which is not served");
    }

    // The metrics: the same, by name.
    let (_, _, metrics) = router.call("GET", "/metrics", None);
    let served: BTreeSet<String> = metrics
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| l.split(['{', ' ']).next().unwrap_or_default().to_owned())
        .collect();
    let documented: BTreeSet<String> =
        named(row(&rows, "GET", "/metrics")).into_iter().filter(|n| n.starts_with("sluice_router_")).collect();
    assert_eq!(served, documented, "GET /metrics serves (left) what docs/routers.md names (right)");

    // Promote: the candidate becomes stable, the weight 0.
    let (status, promoted) = router.json("POST", "/v1/promote", None);
    assert_eq!(status, 200, "{promoted}");
    assert_eq!(promoted["stable"]["upstream"], "http://127.0.0.1:10");
    assert_eq!(promoted["candidate_weight"], 0);
    assert!(promoted["candidate"].is_null(), "{promoted}");

    // The documented refusals: 405 with Allow, 404.
    let (status, head, _) = router.call("DELETE", "/v1/state", None);
    assert_eq!(status, 405);
    assert!(head.contains("\nallow: get"), "{head}");
    assert_eq!(router.call("GET", "/v1/nothing", None).0, 404);

    // The page's commands, as written but the port.
    let block = section.split("```sh\n").nth(1).and_then(|b| b.split("```").next()).expect("a sh block");
    assert!(block.contains("127.0.0.1:9001"), "the commands name the admin address 127.0.0.1:9001");
    let commands = block.replace("127.0.0.1:9001", &router.admin);
    let out = Command::new("bash").args(["-euo", "pipefail", "-c", &commands]).output().expect("bash runs");
    assert!(
        out.status.success(),
        "docs/routers.md's commands fail:\n{commands}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Two answers, one after the other: the state, then the state the weight left.
    let shown: Vec<Value> = serde_json::Deserializer::from_slice(&out.stdout)
        .into_iter::<Value>()
        .collect::<Result<_, _>>()
        .unwrap_or_else(|e| panic!("the commands print JSON ({e}): {}", String::from_utf8_lossy(&out.stdout)));
    assert_eq!(shown.len(), 2, "{shown:?}");
    let shown = &shown[1];
    assert!(shown["candidate_weight"].is_u64(), "{shown}");
    assert_eq!(router.json("GET", "/v1/state", None).1["candidate_weight"], 0);
}
