//! `sluice inspect --record PATH FIELD...`: prints fields of a deployment
//! record (or any JSON file: the action's sweep reads GitHub's answers with
//! it), one line each, for scripts that must not need Python or jq (the
//! composite action's steps, in any container). `--config PATH` prints
//! fields of the config as sluice loads it (validated, defaults filled in,
//! paths resolved against the config's folder), e.g. `github.cache_dir`. A field is a top-level key,
//! or a path: `a.b` for a nested key, `a[]` for every element of an array
//! (one line each), e.g. `workflow_runs[].id`.
//!
//! Read-only: never writes the record or anything else. It reads the JSON
//! as it is, not through the record's types, so a record written by a newer
//! sluice (a status this build does not know) is still printed, not refused.

use clap::Parser;
use serde_json::Value;
use sluice_core::Exit;
use std::path::PathBuf;
use std::process::ExitCode;

/// Print fields of a deployment record, or of the config as sluice loads it.
#[derive(Parser, Debug)]
#[command(name = "inspect", bin_name = "sluice inspect", version, about, long_about = None)]
pub struct Args {
    /// The deployment record (or any JSON file).
    #[arg(long, visible_alias = "json", env = "INPUT_RECORD", value_name = "PATH", required_unless_present = "config")]
    pub record: Option<PathBuf>,
    /// The sluice config instead: loaded and validated as every step loads
    /// it (defaults filled in, paths resolved), e.g. `ledger.kind`,
    /// `github.cache_dir`.
    #[arg(long, value_name = "PATH", conflicts_with = "record")]
    pub config: Option<PathBuf>,
    /// The fields to print, one line each: a string as it is, a number or
    /// boolean as JSON, null or a missing field as an empty line, an object
    /// or array as one line of JSON.
    #[arg(required = true, value_name = "FIELD")]
    pub fields: Vec<String>,
}

pub fn entry(args: Args) -> ExitCode {
    match lines(&args) {
        Ok(lines) => {
            for line in lines {
                println!("{line}");
            }
            ExitCode::SUCCESS
        }
        Err(message) => {
            eprintln!("inspect: error: {message}");
            Exit::BAD_INPUT.into()
        }
    }
}

fn lines(args: &Args) -> Result<Vec<String>, String> {
    let json = match (&args.record, &args.config) {
        (_, Some(config)) => {
            let loaded = sluice_core::config::Config::load(config).map_err(|e| e.to_string())?;
            serde_json::to_value(&loaded).map_err(|e| format!("cannot show the config {}: {e}", config.display()))?
        }
        (Some(record), None) => {
            let path = record.display();
            let text = std::fs::read_to_string(record).map_err(|e| format!("cannot read the record {path}: {e}"))?;
            let json: Value = serde_json::from_str(&text)
                .map_err(|e| format!("the record {path} is not JSON ({e}); is it a sluice record?"))?;
            if !json.is_object() {
                return Err(format!("the record {path} is not a JSON object"));
            }
            json
        }
        (None, None) => return Err("pass --record PATH or --config PATH".to_owned()),
    };
    let mut lines = Vec::new();
    for field in &args.fields {
        let mut values = vec![&json];
        for segment in field.split('.') {
            let (key, each) = match segment.strip_suffix("[]") {
                Some(key) => (key, true),
                None => (segment, false),
            };
            let mut next = Vec::new();
            for value in values {
                match value.get(key) {
                    Some(Value::Array(items)) if each => next.extend(items.iter()),
                    Some(v) if !each => next.push(v),
                    _ if each => {}
                    _ => next.push(&Value::Null),
                }
            }
            values = next;
        }
        lines.extend(values.into_iter().map(|value| match value {
            Value::Null => String::new(),
            Value::String(s) => s.replace('\n', " "),
            other => other.to_string(),
        }));
    }
    Ok(lines)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prints_fields_and_empty_lines_for_missing_ones() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("r.json");
        std::fs::write(&path, r#"{"status":"some_future_status","candidate_weight":25,"commit":null}"#).expect("write");
        let args = Args {
            record: Some(path),
            config: None,
            fields: vec!["status".into(), "candidate_weight".into(), "commit".into(), "x".into()],
        };
        assert_eq!(lines(&args).expect("read"), ["some_future_status", "25", "", ""]);
    }

    #[test]
    fn paths_reach_nested_keys_and_every_element_of_an_array() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("runs.json");
        std::fs::write(
            &path,
            r#"{"total_count":2,"workflow_runs":[{"id":7,"head":{"sha":"a"}},{"id":8,"head":{"sha":"b"}}],"none":[]}"#,
        )
        .expect("write");
        let fields = ["workflow_runs[].id", "workflow_runs[].head.sha", "none[].id", "total_count"];
        let args = Args { record: Some(path), config: None, fields: fields.iter().map(|f| (*f).to_owned()).collect() };
        assert_eq!(lines(&args).expect("read"), ["7", "8", "a", "b", "2"]);
    }

    #[test]
    fn a_missing_or_broken_record_is_an_error_naming_it() {
        let dir = tempfile::tempdir().expect("temp dir");
        let missing = Args { record: Some(dir.path().join("none.json")), config: None, fields: vec!["status".into()] };
        assert!(lines(&missing).expect_err("missing").contains("none.json"));
        let broken = dir.path().join("b.json");
        std::fs::write(&broken, "{").expect("write");
        let broken = Args { record: Some(broken), config: None, fields: vec!["status".into()] };
        assert!(lines(&broken).expect_err("broken").contains("not JSON"));
    }

    #[test]
    fn the_config_is_shown_as_loaded_with_defaults_and_resolved_paths() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("sluice.toml");
        let config = "app = \"shop\"\n[ledger]\nkind = \"github\"\n[[environment]]\nname = \"dev\"\nrouter = { kind = \"local\", admin_url = \"http://127.0.0.1:9001\" }\n";
        std::fs::write(&path, config).expect("write");
        let fields = ["app", "ledger.kind", "github.cache_dir"];
        let args = Args { record: None, config: Some(path), fields: fields.iter().map(|f| (*f).to_owned()).collect() };
        let cache = dir.path().join(".sluice/github-cache");
        assert_eq!(lines(&args).expect("read"), ["shop", "github", cache.to_str().expect("utf-8")]);

        std::fs::write(dir.path().join("bad.toml"), "app = \"shop\"\n[ledgr]\n").expect("write");
        let bad = Args { record: None, config: Some(dir.path().join("bad.toml")), fields: vec!["app".into()] };
        assert!(lines(&bad).expect_err("refused").contains("ledgr"));
    }
}
