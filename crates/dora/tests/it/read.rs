//! Reading the ledger: streaming, blank lines, damaged lines, a torn tail.
//! The rules are `sluice-core`'s (one ledger reader for every step).

use std::io::Write;

use sluice_core::ledger::Damage;
use sluice_dora::{Error, LedgerReader, Options, open_ledger, read_ledger, report_file};

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
    let (from_file, torn) = report_file(f.path(), &hand::window()).expect("valid");
    assert_eq!(from_file, sluice_dora::compute(&entries, &hand::window()));
    assert_eq!(torn, None);
}

#[test]
fn a_damaged_line_is_an_error_naming_it() {
    let mut l = lines();
    l.insert(4, "{\"schema\":\"sluice.ledger/v1\",\"id\":".to_owned());
    let f = write_ledger(&l);
    let err = read_ledger(f.path()).expect_err("damaged");
    assert_eq!(err.line(), Some(5));
    assert!(matches!(err, Error::Damaged { damage: Damage::Entry(_), .. }));
    assert!(err.to_string().contains("line 5 is damaged"), "{err}");
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
    assert!(matches!(err, Error::Damaged { line: 1, damage: Damage::Schema { .. }, .. }), "{err:?}");

    let f = write_ledger(&["\u{0}\u{ff}".to_owned()]);
    assert_eq!(read_ledger(f.path()).expect_err("binary").line(), Some(1));
}

#[test]
fn a_missing_file_is_an_error() {
    let err = read_ledger(std::path::Path::new("/nonexistent/ledger.jsonl")).expect_err("missing");
    assert!(matches!(err, Error::Open { .. }));
    assert!(err.to_string().starts_with("cannot open ledger"));
}

#[test]
fn a_torn_tail_is_skipped_with_a_note_and_only_a_last_line_can_be_one() {
    // A write cut short by a crash: the last line, no newline, not JSON.
    let l = lines();
    let mut f = write_ledger(&l);
    let half = &l[3][..l[3].len() / 2];
    write!(f, "{half}").expect("write");
    let entries = read_ledger(f.path()).expect("a torn tail is not damage");
    assert_eq!(entries, hand::history());
    let mut reader = open_ledger(f.path()).expect("open");
    assert_eq!(reader.by_ref().count(), l.len());
    let torn = reader.torn().cloned().expect("torn tail");
    assert_eq!((torn.line, torn.bytes), (l.len() as u64 + 1, half.len() as u64));

    let (report, from_file) = report_file(f.path(), &hand::window()).expect("a torn tail is not damage");
    assert_eq!(from_file.as_ref(), Some(&torn));
    let mut want = sluice_dora::compute(&entries, &hand::window());
    want.notes.push(torn.to_string());
    assert_eq!(report, want);
    assert!(report.notes.iter().any(|n| n.contains("ends in an incomplete line")), "{:?}", report.notes);

    // The same fragment with its newline, or followed by more lines, is damage.
    writeln!(f).expect("write");
    assert_eq!(read_ledger(f.path()).expect_err("damaged").line(), Some(l.len() as u64 + 1));
    assert_eq!(report_file(f.path(), &Options::default()).expect_err("damaged").line(), Some(l.len() as u64 + 1));
}
