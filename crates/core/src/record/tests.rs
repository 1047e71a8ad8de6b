use super::*;
use std::time::Duration;

fn sample() -> Record {
    let now: Timestamp = "2026-11-20T10:00:00Z".parse().expect("time");
    Record::new(
        NewRecord {
            app: "shop".into(),
            environment: "dev".into(),
            version: "v2".into(),
            commit: Some("abc1234".into()),
            change: ChangeKind::Planned,
            incident: None,
            strategy: Strategy::Canary { stages: vec![10, 100], stage_duration: Duration::from_secs(5) },
            triggered_by: Some("alice".into()),
            run_url: None,
        },
        now,
    )
}

#[test]
fn round_trips_through_a_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("record.json");
    let mut record = sample();
    record.push("gate", EventDetail::Gate { allowed: true, checks: vec![] }, record.created_at);
    record.save(&path).expect("save");
    let loaded = Record::load(&path, &Expect { environment: Some("dev"), ..Expect::default() }).expect("load");
    assert_eq!(loaded, record);
    let suffix = loaded.id.strip_prefix("shop-dev-v2-20261120T100000Z-").expect("id with time and suffix");
    assert!(suffix.len() == 6 && suffix.chars().all(|c| c.is_ascii_hexdigit()), "{}", loaded.id);
    // Two records of one release made in the same second are told apart.
    assert_ne!(sample().id, sample().id);
    // Nothing but the record is left in the folder.
    assert_eq!(std::fs::read_dir(dir.path()).expect("dir").count(), 1);
}

fn load_bytes(bytes: &[u8], expect: &Expect<'_>) -> RecordError {
    Record::from_slice(bytes, Path::new("r.json"), expect).expect_err("refused")
}

#[test]
fn refusals_name_the_problem() {
    let good = serde_json::to_string(&sample()).expect("json");
    let err = load_bytes(&good.as_bytes()[..good.len() / 2], &Expect::default());
    assert!(matches!(err, RecordError::Damaged { .. }), "{err}");
    assert!(err.to_string().contains("invalid JSON"), "{err}");

    let v2 = good.replace(SCHEMA, "sluice.deployment/v2");
    let err = load_bytes(v2.as_bytes(), &Expect::default());
    assert!(err.to_string().contains("\"sluice.deployment/v2\""), "{err}");

    let err = load_bytes(good.as_bytes(), &Expect { environment: Some("prd"), ..Expect::default() });
    assert_eq!(
        err.to_string(),
        "record r.json is for environment \"dev\", not \"prd\"; pass the record of this deployment, or a new --record path"
    );

    let err = load_bytes(b"\xff\xfe", &Expect::default());
    assert!(err.to_string().contains("not UTF-8"), "{err}");

    let err = load_bytes(b"{\"hello\": 1}", &Expect::default());
    assert!(err.to_string().contains("no \"schema\" field"), "{err}");

    let weight = good.replace("\"candidate_weight\":0", "\"candidate_weight\":250");
    assert!(matches!(load_bytes(weight.as_bytes(), &Expect::default()), RecordError::Damaged { .. }));

    let path_trick = good.replace("\"environment\":\"dev\"", "\"environment\":\"../../etc\"");
    assert!(load_bytes(path_trick.as_bytes(), &Expect::default()).to_string().contains("environment"));
}

#[test]
fn a_missing_record_says_to_run_gate() {
    let err = Record::load(Path::new("/nonexistent/r.json"), &Expect::default()).expect_err("missing");
    assert!(err.to_string().contains("run `gate` first"), "{err}");
}

#[test]
fn committed_schema_matches_the_types() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../schema/deployment.v1.json");
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    if std::env::var_os("SLUICE_BLESS").is_some() {
        std::fs::write(&path, json_schema()).expect("write schema");
        return;
    }
    assert!(
        committed == json_schema(),
        "schema/deployment.v1.json is out of date with the Record types; regenerate it with `SLUICE_BLESS=1 cargo test -p sluice-core committed_schema`"
    );
}

#[test]
fn committed_ledger_schema_matches_the_types() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../schema/ledger.v1.json");
    let schema = schemars::schema_for!(crate::ledger::LedgerEntry);
    let mut text = serde_json::to_string_pretty(&schema).expect("schema serialises");
    text.push('\n');
    if std::env::var_os("SLUICE_BLESS").is_some() {
        std::fs::write(&path, &text).expect("write schema");
        return;
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == text,
        "schema/ledger.v1.json is out of date with LedgerEntry; regenerate it with `SLUICE_BLESS=1 cargo test -p sluice-core committed`"
    );
}
