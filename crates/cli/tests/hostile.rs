//! Hostile input, table-driven: every case must exit 2 with a message that
//! names the problem, never panic, and change nothing on disk or in the
//! router. Runs the real binaries against the real embedded router.

mod support;

use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;
use std::path::Path;
use std::process::Command;
use support::*;

const CHECKS: &str = "[[defaults.check]]\nname = \"errors\"\nkind = \"error_rate\"\nmax = 0.02\n";
const CANARY: &str = "{ kind = \"canary\", stages = [50, 100], stage_duration = \"3s\" }";

/// Every file in the test's directory with its bytes, to prove nothing changed.
fn snapshot(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(dir)
        .expect("read dir")
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
        .map(|e| (e.file_name().to_string_lossy().into_owned(), std::fs::read(e.path()).expect("read")))
        .collect();
    files.sort();
    files
}

/// Writes a record variant: the good record's JSON with `edit` applied.
fn variant(h: &Harness, name: &str, good: &serde_json::Value, edit: impl FnOnce(&mut serde_json::Value)) {
    let mut value = good.clone();
    edit(&mut value);
    std::fs::write(h.path(name), serde_json::to_vec_pretty(&value).expect("json")).expect("write");
}

#[test]
fn hostile_input_exits_2_names_the_problem_and_changes_nothing() {
    let h = Harness::start(&[("v1", &[]), ("v2", &[])], CANARY, CHECKS);
    let gate = h.step("gate", &["-e", "dev", "--record", "r.json", "--release", "v2", "--commit", "abcdef1"]);
    assert_eq!(code(&gate), 0, "{}", stderr(&gate));
    let good: serde_json::Value = serde_json::from_slice(&std::fs::read(h.path("r.json")).expect("r")).expect("json");
    let config = std::fs::read_to_string(h.path("sluice.toml")).expect("config");

    // Records.
    variant(&h, "wrong-type.json", &good, |v| v["candidate_weight"] = "ten".into());
    variant(&h, "huge-number.json", &good, |v| v["candidate_weight"] = serde_json::json!(1e30));
    variant(&h, "weight-300.json", &good, |v| v["candidate_weight"] = 300.into());
    variant(&h, "negative-weight.json", &good, |v| v["candidate_weight"] = (-1).into());
    variant(&h, "unknown-field.json", &good, |v| v["surprise"] = true.into());
    variant(&h, "schema-v2.json", &good, |v| v["schema"] = "sluice.deployment/v2".into());
    variant(&h, "other-app.json", &good, |v| v["app"] = "billing".into());
    variant(&h, "path-in-version.json", &good, |v| v["version"] = "../../etc/passwd".into());
    variant(&h, "newline-in-env.json", &good, |v| v["environment"] = "dev\n::error::pwned".into());
    variant(&h, "bad-commit.json", &good, |v| v["commit"] = "not a sha".into());
    variant(&h, "bad-time.json", &good, |v| v["created_at"] = "yesterday".into());
    variant(&h, "bad-event.json", &good, |v| v["events"] = serde_json::json!([{ "type": "traffic" }]));
    variant(&h, "not-an-object.json", &good, |v| *v = serde_json::json!([1, 2, 3]));
    let text = serde_json::to_string(&good).expect("json");
    std::fs::write(h.path("truncated.json"), &text[..text.len() / 3]).expect("write");
    std::fs::write(h.path("empty.json"), b"").expect("write");
    let mut latin1 = text.clone().into_bytes();
    latin1.extend_from_slice(b"\xff\xfe");
    std::fs::write(h.path("non-utf8.json"), latin1).expect("write");
    std::fs::write(h.path("deep.json"), format!("{}{}", "[".repeat(100_000), "]".repeat(100_000))).expect("write");

    // Configs.
    let configs = [
        ("cfg-weight.toml", config.replace("stages = [50, 100]", "stages = [50, 250]")),
        ("cfg-negative.toml", config.replace("stages = [50, 100]", "stages = [-5, 100]")),
        ("cfg-order.toml", config.replace("stages = [50, 100]", "stages = [100, 50]")),
        ("cfg-huge.toml", config.replace("max = 0.02", "max = 1e400")),
        ("cfg-type.toml", config.replace("max = 0.02", "max = \"2%\"")),
        ("cfg-unknown.toml", config.replace("max = 0.02", "max = 0.02\nmaximum = 0.5")),
        ("cfg-duration.toml", config.replace("stage_duration = \"3s\"", "stage_duration = \"-3s\"")),
        ("cfg-url.toml", config.replacen("admin_url = \"http://", "admin_url = \"file://", 1)),
        ("cfg-app.toml", config.replace("app = \"shop\"", "app = \"../shop\"")),
        ("cfg-truncated.toml", config[..config.len() / 2].to_owned()),
    ];
    for (name, text) in &configs {
        std::fs::write(h.path(name), text).expect("write");
    }
    std::fs::write(h.path("cfg-non-utf8.toml"), b"app = \"sh\xffop\"\n").expect("write");

    let before = snapshot(h.dir.path());
    let state_before = h.state();
    fn shift(record: &str) -> Vec<&str> {
        vec!["shift-traffic", "-e", "dev", "--record", record, "--weight", "10"]
    }
    let gate_with =
        |cfg: &'static str| vec!["gate", "-e", "dev", "--record", "new.json", "--release", "v9", "--config", cfg];
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (shift("wrong-type.json"), "candidate_weight"),
        (shift("huge-number.json"), "candidate_weight"),
        (shift("weight-300.json"), "300"),
        (shift("negative-weight.json"), "candidate_weight"),
        (shift("unknown-field.json"), "surprise"),
        (shift("schema-v2.json"), "sluice.deployment/v2"),
        (shift("other-app.json"), "billing"),
        (shift("path-in-version.json"), "version"),
        (shift("newline-in-env.json"), "environment"),
        (shift("bad-commit.json"), "commit"),
        (shift("bad-time.json"), "created_at"),
        (shift("bad-event.json"), "damaged"),
        (shift("not-an-object.json"), "damaged"),
        (shift("truncated.json"), "damaged"),
        (shift("empty.json"), "damaged"),
        (shift("non-utf8.json"), "UTF-8"),
        (shift("deep.json"), "damaged"),
        (vec!["shift-traffic", "-e", "dev", "--record", "r.json", "--weight", "101"], "101"),
        (vec!["shift-traffic", "-e", "dev", "--record", "r.json", "--weight", "-1"], "-1"),
        (vec!["shift-traffic", "-e", "dev", "--record", "r.json", "--weight", "99999999999999999999"], "99999"),
        (vec!["shift-traffic", "-e", "../dev", "--record", "r.json", "--weight", "10"], "unknown environment"),
        (vec!["shift-traffic", "-e", "dev", "--record", "/etc/passwd", "--weight", "10"], ".json"),
        (vec!["shift-traffic", "-e", "dev", "--record", ".", "--weight", "10"], ".json"),
        (vec!["shift-traffic", "-e", "dev", "--record", "r.json", "--candidate-upstream", "file:///etc"], "http"),
        (vec!["gate", "-e", "dev", "--record", "new.json", "--release", "v2\n::error::x"], "release"),
        (vec!["gate", "-e", "dev", "--record", "new.json", "--release", "v2", "--commit", "zz"], "commit"),
        (vec!["gate", "-e", "dev", "--record", "new.json", "--release", "v2", "--strategy", "canary:5,300@1s"], "300"),
        (vec!["gate", "-e", "dev", "--record", "new.json", "--release", "v2", "--strategy", "yolo"], "strategy"),
        (vec!["verify-health", "-e", "dev", "--record", "r.json", "--duration", "99999999999999999999s"], "duration"),
        (vec!["dora-report", "--since", "the dawn of time"], "--since"),
        (gate_with("cfg-weight.toml"), "250"),
        (gate_with("cfg-negative.toml"), "cfg-negative.toml:"),
        (gate_with("cfg-order.toml"), "rise"),
        (gate_with("cfg-huge.toml"), "cfg-huge.toml:"),
        (gate_with("cfg-type.toml"), "cfg-type.toml:"),
        (gate_with("cfg-unknown.toml"), "maximum"),
        (gate_with("cfg-duration.toml"), "duration"),
        (gate_with("cfg-url.toml"), "http"),
        (gate_with("cfg-app.toml"), "app"),
        (gate_with("cfg-truncated.toml"), "cfg-truncated.toml"),
        (gate_with("cfg-non-utf8.toml"), "UTF-8"),
        (gate_with("missing.toml"), "not found"),
    ];
    for (args, needle) in &cases {
        let what = args.join(" ");
        let out = h.step(args[0], &args[1..]);
        let err = stderr(&out);
        assert_eq!(code(&out), 2, "{what}: expected exit 2, got {}: {err}", code(&out));
        assert!(err.contains(needle), "{what}: the message should name {needle:?}: {err}");
        assert!(!err.contains("panicked"), "{what}: panicked: {err}");
        assert_eq!(snapshot(h.dir.path()), before, "{what}: a file changed");
        assert_eq!(h.state(), state_before, "{what}: the router changed");
    }

    // A flag value that is not UTF-8 at all.
    let mut cmd = Command::new(exe("gate"));
    cmd.current_dir(h.dir.path()).env_remove("GITHUB_OUTPUT").env_remove("GITHUB_STEP_SUMMARY");
    cmd.args(["--config", "sluice.toml", "-e", "dev", "--record", "new.json", "--release"]);
    cmd.arg(OsString::from_vec(b"v\xff2".to_vec()));
    let out = cmd.output().expect("gate runs");
    assert_eq!(code(&out), 2, "non-UTF-8 release: {}", stderr(&out));
    assert!(stderr(&out).contains("UTF-8"), "{}", stderr(&out));
    assert_eq!(snapshot(h.dir.path()), before, "non-UTF-8 release: a file changed");
}
