//! Hostile input, table-driven: every case must exit 2 with a message that
//! names the problem, never panic, and change nothing on disk or in the
//! router. Runs the real binaries against the real embedded router.

use crate::support::*;
use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;
use std::path::Path;
use std::process::Command;

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

/// One refused input: a file to write, the steps to run on it, and what the
/// message must name.
struct Case {
    file: String,
    bytes: Vec<u8>,
    needle: &'static str,
}

/// Runs `args` and checks the hostile-input contract: exit 2, the message
/// names `needle`, no panic, no file changed, the router's state unchanged
/// (read back from its admin API).
fn refused(h: &Harness, args: &[&str], needle: &str, before: &[(String, Vec<u8>)], state: &serde_json::Value) {
    let what = args.join(" ");
    let out = h.step(args[0], &args[1..]);
    let err = stderr(&out);
    assert_eq!(code(&out), 2, "{what}: expected exit 2, got {}: {err}", code(&out));
    assert!(err.contains(needle), "{what}: the message should name {needle:?}: {err}");
    assert!(!err.contains("panicked"), "{what}: panicked: {err}");
    assert_eq!(snapshot(h.dir.path()), before, "{what}: a file changed");
    assert_eq!(&h.state(), state, "{what}: the router changed");
}

#[test]
fn forged_records_plans_and_configs_are_refused_by_every_step_before_anything_moves() {
    use serde_json::json;
    let h = Harness::start(&[("v1", &[]), ("v2", &[])], CANARY, CHECKS);
    let gate = h.step("gate", &["-e", "dev", "--record", "r.json", "--release", "v2", "--commit", "abcdef1"]);
    assert_eq!(code(&gate), 0, "{}", stderr(&gate));
    // Traffic is partly on the candidate, so a step that wrongly went ahead
    // (forward, back, or to the end) would show in the router's weight.
    let v2 = h.apps[1].clone();
    let shift =
        h.step("shift-traffic", &["-e", "dev", "--record", "r.json", "--weight", "10", "--candidate-upstream", &v2]);
    assert_eq!(code(&shift), 0, "{}", stderr(&shift));
    assert_eq!(h.state()["candidate_weight"], 10, "{}", h.state());
    let good: serde_json::Value = serde_json::from_slice(&std::fs::read(h.path("r.json")).expect("r")).expect("json");
    assert_eq!(good["status"], "shifting", "{good}");
    let mut cases: Vec<Case> = Vec::new();
    let mut edit = |file: &str, needle: &'static str, change: &dyn Fn(&mut serde_json::Value)| {
        let mut value = good.clone();
        change(&mut value);
        cases.push(Case {
            file: format!("{file}.json"),
            bytes: serde_json::to_vec_pretty(&value).expect("json"),
            needle,
        });
    };

    // The plan, as issue 12 found it trusted.
    let plan = |stages: serde_json::Value, duration: &str| json!({ "kind": "canary", "stages": stages, "stage_duration": duration });
    for (file, stages, duration, needle) in [
        ("plan-empty", json!([]), "3s", "at least one stage"),
        ("plan-250", json!([50, 250]), "3s", "above 100"),
        ("plan-300", json!([50, 300]), "3s", "`strategy`"),
        ("plan-falling", json!([100, 50]), "3s", "rise strictly"),
        ("plan-zero-weight", json!([0, 100]), "3s", "weight of 0"),
        ("plan-not-100", json!([10, 50]), "3s", "end at 100"),
        ("plan-zero-time", json!([50, 100]), "0s", "stage_duration is 0"),
        ("plan-negative-time", json!([50, 100]), "-1s", "`strategy`"),
        ("plan-forever", json!([50, 100]), "99999days", "30 days"),
    ] {
        let value = plan(stages, duration);
        edit(file, needle, &move |v| v["strategy"] = value.clone());
    }
    edit("plan-no-bake", "bake is 0", &|v| v["strategy"] = json!({ "kind": "blue_green", "bake": "0s" }));
    edit("plan-unknown", "`strategy.kind`", &|v| v["strategy"] = json!({ "kind": "rolling" }));
    edit("plan-missing", "strategy", &|v| {
        v.as_object_mut().expect("object").remove("strategy");
    });

    // Every field of the record, edited: (file, field, what the message names, value).
    let fields = [
        ("id-path", "id", "`id`", json!("../../etc/x")),
        ("id-absolute", "id", "`id`", json!("/etc/passwd")),
        ("id-dots", "id", "`id`", json!("..")),
        ("id-newline", "id", "`id`", json!("shop-dev-v2-20261120T100000Z-abcdef\n::error::x")),
        ("id-other", "id", "`id`", json!("billing-dev-v2-20261120T100000Z-abcdef")),
        ("id-huge", "id", "`id`", json!("x".repeat(1 << 20))),
        ("app", "app", "`app`", json!("../shop")),
        ("environment", "environment", "`environment`", json!("dev/../prd")),
        ("version", "version", "`version`", json!("v2\u{0}")),
        ("commit", "commit", "`commit`", json!("HEAD~1")),
        ("change", "change", "`change`", json!("emergency")),
        ("incident", "incident", "`incident`", json!("INC-1\n::add-mask::x")),
        ("triggered-by", "triggered_by", "`triggered_by`", json!("")),
        ("run-url", "run_url", "`run_url`", json!("javascript:alert(1)")),
        ("created-at", "created_at", "`created_at`", json!("yesterday")),
        ("updated-at", "updated_at", "`updated_at`", json!(12)),
        ("router-kind", "router_before", "`router_before.kind`", json!({ "kind": "nginx", "candidate_weight": 0 })),
        (
            "router-weight",
            "router_before",
            "`router_before.candidate_weight`",
            json!({ "kind": "local", "candidate_weight": 101 }),
        ),
        (
            "router-pool",
            "router_before",
            "`router_before.stable`",
            json!({ "kind": "local", "candidate_weight": 0, "stable": "a\nb" }),
        ),
        ("candidate", "candidate", "`candidate`", json!("file:///etc/passwd")),
        ("candidate-weight", "candidate_weight", "`candidate_weight`", json!(101)),
        ("github-deployment", "github_deployment", "`github_deployment`", json!(0)),
        ("ledger-due", "ledger_due", "`ledger_due`", json!({ "schema": "sluice.ledger/v1" })),
        ("status", "status", "`status`", json!("done")),
        ("events", "events", "`events", json!([{ "type": "teleport", "at": "2026-01-01T00:00:00Z", "step": "gate" }])),
        ("schema", "schema", "schema", json!("sluice.deployment/v0")),
    ];
    for (file, key, needle, value) in fields {
        edit(&format!("field-{file}"), needle, &move |v| v[key] = value.clone());
    }
    // Router state with ALB weights out of range, and events out of range.
    let tg = |name: &str, weight: u32| json!({ "arn": format!("arn:aws:elasticloadbalancing:eu-west-1:123456789012:targetgroup/{name}/73e2d6bc24d8a067"), "weight": weight });
    let alb = |groups: serde_json::Value| json!({ "kind": "alb", "candidate_weight": 0, "target_groups": groups });
    let (blue, green, evil) = (tg("blue", 1000), tg("green", 0), json!({ "arn": "arn:aws:s3:::evil", "weight": 1 }));
    edit("alb-weight-1000", "`router_before.target_groups[0].weight`", &move |v| {
        v["router_before"] = alb(json!([blue.clone(), green.clone()]))
    });
    edit("alb-stranger", "`router_before.target_groups[0].arn`", &move |v| {
        v["router_before"] = alb(json!([evil.clone()]))
    });
    edit("event-weight", "`events[1].to`", &|v| v["events"][1]["to"] = json!(250));
    edit("event-stage", "`events[1].stage`", &|v| v["events"][1]["stage"] = json!(7));
    edit("ledger-due-other", "`ledger_due.id`", &|v| {
        // An entry owed by another deployment of the same release.
        v["ledger_due"] = json!({
            "schema": "sluice.ledger/v1", "id": "shop-dev-v2-20260101T000000Z-000000", "app": "shop",
            "environment": "dev", "version": "v2", "change": "planned", "strategy": "canary",
            "started_at": "2026-01-01T00:00:00Z", "finished_at": "2026-01-01T00:00:00Z", "outcome": "rolled_back"
        });
    });

    // Keys given twice: serde_json alone keeps the last one.
    let text = serde_json::to_string(&good).expect("json");
    let weight = format!("\"candidate_weight\":{}", good["candidate_weight"]);
    let duplicates = [
        ("dup-app", text.replacen('{', "{\"app\":\"evil\",", 1), "`app` is given twice"),
        (
            "dup-weight",
            text.replacen(&weight, &format!("\"candidate_weight\":100,{weight}"), 1),
            "`candidate_weight` is given twice",
        ),
        (
            "dup-stages",
            text.replacen("\"stages\":", "\"stages\":[100],\"stages\":", 1),
            "`strategy.stages` is given twice",
        ),
        (
            "dup-status",
            text.replacen("\"status\":", "\"status\":\"verified\",\"status\":", 1),
            "`status` is given twice",
        ),
    ];
    for (file, forged, needle) in duplicates {
        assert_ne!(forged, text, "{file}: the edit applies");
        cases.push(Case { file: format!("{file}.json"), bytes: forged.into_bytes(), needle });
    }
    for case in &cases {
        std::fs::write(h.path(&case.file), &case.bytes).expect("write");
    }

    // Configs with each value issue 12 refuses, and the new keys misused.
    let config = std::fs::read_to_string(h.path("sluice.toml")).expect("config");
    let with_defaults = |line: &str| config.replacen("[defaults]\n", &format!("[defaults]\n{line}\n"), 1);
    let configs: Vec<(&str, String, &str)> = vec![
        (
            "cfg-zero-time.toml",
            config.replace("stage_duration = \"3s\"", "stage_duration = \"0s\""),
            "stage_duration is 0",
        ),
        ("cfg-zero-weight.toml", config.replace("stages = [50, 100]", "stages = [0, 100]"), "weight of 0"),
        ("cfg-zero-bake.toml", config.replace(CANARY, "{ kind = \"blue_green\", bake = \"0s\" }"), "bake is 0"),
        ("cfg-dup-check.toml", config.replace(CHECKS, &format!("{CHECKS}{CHECKS}")), "defined twice"),
        ("cfg-analysis-word.toml", with_defaults("analysis = \"off\""), "analysis"),
        ("cfg-analysis-none-checks.toml", with_defaults("analysis = \"none\""), "defaults.analysis"),
        (
            "cfg-min-zero.toml",
            config.replace("[analysis]\n", "[analysis]\nmin_final_analysis = \"0s\"\n"),
            "min_final_analysis",
        ),
        (
            "cfg-min-short.toml",
            config.replace("[analysis]\n", "[analysis]\nmin_final_analysis = \"100ms\"\n"),
            "min_final_analysis",
        ),
        ("cfg-min-bad.toml", config.replace("[analysis]\n", "[analysis]\nmin_final_analysis = \"soon\"\n"), "soon"),
    ];
    for (name, text, _) in &configs {
        assert_ne!(text, &config, "{name}: the edit applies");
        std::fs::write(h.path(name), text).expect("write");
    }

    let before = snapshot(h.dir.path());
    let state = h.state();
    for case in &cases {
        let r = case.file.as_str();
        for args in [
            vec!["shift-traffic", "-e", "dev", "--record", r, "--weight", "50"],
            vec!["shift-traffic", "-e", "dev", "--record", r, "--candidate-upstream", &v2],
            vec!["verify-health", "-e", "dev", "--record", r, "--duration", "1s"],
            vec!["promote", "-e", "dev", "--record", r],
            vec!["rollback", "-e", "dev", "--record", r],
        ] {
            refused(&h, &args, case.needle, &before, &state);
        }
    }
    for (name, _, needle) in &configs {
        let gate = ["gate", "-e", "dev", "--record", "new.json", "--release", "v9", "--config", name];
        refused(&h, &gate, needle, &before, &state);
        let shift = ["shift-traffic", "-e", "dev", "--record", "r.json", "--weight", "50", "--config", name];
        refused(&h, &shift, needle, &before, &state);
        refused(&h, &["rollback", "-e", "dev", "--record", "r.json", "--config", name], needle, &before, &state);
    }
    // `--strategy` overrides obey the config's rules.
    for (strategy, needle) in [
        ("canary:50,100@0s", "stage_duration is 0"),
        ("canary:0,100@1s", "weight of 0"),
        ("canary:0,50,100@1s", "weight of 0"),
        ("canary:100,50@1s", "rise strictly"),
        ("blue-green@0s", "bake is 0"),
        ("all-at-once@5m", "takes no stages"),
    ] {
        let gate = ["gate", "-e", "dev", "--record", "new.json", "--release", "v9", "--strategy", strategy];
        refused(&h, &gate, needle, &before, &state);
    }
    assert_eq!(h.state()["candidate_weight"], 10, "{}", h.state());
    // The good record still works after all that.
    let back = h.step("rollback", &["-e", "dev", "--record", "r.json"]);
    assert_eq!(code(&back), 0, "{}", stderr(&back));
    assert_eq!(h.state()["candidate_weight"], 0, "{}", h.state());
}
