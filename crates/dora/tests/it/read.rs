//! Reading the ledger: streaming, blank lines, damaged lines.

use std::io::Write;

use sluice_dora::{Error, LedgerReader, Options, read_ledger, report_file};

use crate::hand;

fn write_ledger(lines: &[String]) -> tempfile::NamedTempFile {
    let mut f = tempfile::NamedTempFile::new().expect("temp file");
    for l in lines {
        writeln!(f, "{l}").expect("write");
    }
    f
}

fn lines() -> Vec<String> {
    hand::history().iter().map(|e| serde_json::to_string(e).expect("serialise")).collect()
}

#[test]
fn reads_back_what_was_written_skipping_blank_lines() {
    let mut l = lines();
    l.insert(3, String::new());
    l.insert(5, "   \r".to_owned());
    let f = write_ledger(&l);
    let entries = read_ledger(f.path()).expect("valid ledger");
    assert_eq!(entries, hand::history());

    // The file path (parallel) and in-memory path give the same report.
    let from_file = report_file(f.path(), &hand::window()).expect("valid");
    assert_eq!(from_file, sluice_dora::compute(&entries, &hand::window()));
}

#[test]
fn a_damaged_line_is_an_error_naming_it() {
    let mut l = lines();
    l.insert(4, "{\"schema\":\"sluice.ledger/v1\",\"id\":".to_owned());
    let f = write_ledger(&l);
    let err = read_ledger(f.path()).expect_err("damaged");
    assert_eq!(err.line(), Some(5));
    assert!(matches!(err, Error::Parse { .. }));
    assert!(err.to_string().contains("line 5"), "{err}");
    let err = report_file(f.path(), &Options::default()).expect_err("damaged");
    assert_eq!(err.line(), Some(5));

    // The streaming reader yields the error and goes on.
    let results: Vec<_> =
        LedgerReader::new(std::io::BufReader::new(std::fs::File::open(f.path()).expect("open")), f.path()).collect();
    assert_eq!(results.len(), l.len());
    assert_eq!(results.iter().filter(|r| r.is_err()).count(), 1);
}

#[test]
fn a_wrong_type_or_schema_is_an_error() {
    let mut l = lines();
    l[2] = l[2].replace("\"rolled_back\"", "\"exploded\"");
    let f = write_ledger(&l);
    assert_eq!(read_ledger(f.path()).expect_err("bad outcome").line(), Some(3));

    let mut l = lines();
    l[0] = l[0].replace("sluice.ledger/v1", "sluice.ledger/v9");
    let f = write_ledger(&l);
    let err = read_ledger(f.path()).expect_err("unknown schema");
    assert!(matches!(err, Error::Schema { line: 1, .. }), "{err:?}");

    let f = write_ledger(&["\u{0}\u{ff}".to_owned()]);
    assert_eq!(read_ledger(f.path()).expect_err("binary").line(), Some(1));
}

#[test]
fn a_missing_file_is_an_error() {
    let err = read_ledger(std::path::Path::new("/nonexistent/ledger.jsonl")).expect_err("missing");
    assert!(matches!(err, Error::Open { .. }));
    assert!(err.to_string().starts_with("failed to open ledger"));
}
