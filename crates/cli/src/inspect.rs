//! `sluice inspect --record PATH FIELD...`: prints top-level fields of a
//! deployment record, one line each, for scripts that must not need Python
//! or jq to read it (the composite action's steps, in any container).
//!
//! Read-only: never writes the record or anything else. It reads the JSON
//! as it is, not through the record's types, so a record written by a newer
//! sluice (a status this build does not know) is still printed, not refused.

use clap::Parser;
use serde_json::Value;
use sluice_core::Exit;
use std::path::PathBuf;
use std::process::ExitCode;

/// Print top-level fields of a deployment record.
#[derive(Parser, Debug)]
#[command(name = "inspect", version, about, long_about = None)]
pub struct Args {
    /// The deployment record (JSON).
    #[arg(long, env = "INPUT_RECORD", value_name = "PATH")]
    pub record: PathBuf,
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
    let path = args.record.display();
    let text = std::fs::read_to_string(&args.record).map_err(|e| format!("cannot read the record {path}: {e}"))?;
    let json: Value = serde_json::from_str(&text)
        .map_err(|e| format!("the record {path} is not JSON ({e}); is it a sluice record?"))?;
    let Value::Object(map) = json else { return Err(format!("the record {path} is not a JSON object")) };
    Ok(args
        .fields
        .iter()
        .map(|field| match map.get(field) {
            None | Some(Value::Null) => String::new(),
            Some(Value::String(s)) => s.replace('\n', " "),
            Some(other) => other.to_string(),
        })
        .collect())
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
            record: path,
            fields: vec!["status".into(), "candidate_weight".into(), "commit".into(), "x".into()],
        };
        assert_eq!(lines(&args).expect("read"), ["some_future_status", "25", "", ""]);
    }

    #[test]
    fn a_missing_or_broken_record_is_an_error_naming_it() {
        let dir = tempfile::tempdir().expect("temp dir");
        let missing = Args { record: dir.path().join("none.json"), fields: vec!["status".into()] };
        assert!(lines(&missing).expect_err("missing").contains("none.json"));
        let broken = dir.path().join("b.json");
        std::fs::write(&broken, "{").expect("write");
        let broken = Args { record: broken, fields: vec!["status".into()] };
        assert!(lines(&broken).expect_err("broken").contains("not JSON"));
    }
}
