//! Any bytes given as a ledger (JSON Lines) either make a report or an error
//! naming the line; never a panic. Rendering a report never panics either.
//! And the DORA reader (fast parser first) reads them exactly as the ledger
//! reader every step uses: the same error on the same line, the same torn
//! tail.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sluice_core::ledger::LedgerReader;
use sluice_dora::{Options, compute, report_reader, to_markdown, to_svg, to_terminal};
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    let path = Path::new("ledger.jsonl");
    let dora = report_reader(data, path, &Options::default());
    let mut reader = LedgerReader::new(data, path);
    let core: Result<Vec<_>, _> = reader.by_ref().collect();
    match (&dora, &core) {
        (Ok((report, torn)), Ok(entries)) => {
            assert_eq!(torn.as_ref(), reader.torn(), "the readers disagree on the torn tail");
            let mut again = compute(entries, &Options::default());
            again.notes.extend(torn.iter().map(ToString::to_string));
            assert_eq!(report, &again, "the readers read different entries");
            let _ = to_markdown(report);
            let _ = to_svg(report);
            let _ = to_terminal(report);
        }
        (Err(d), Err(c)) => assert_eq!(d.line(), c.line(), "the readers name different lines: {d} / {c}"),
        _ => panic!("one reader accepts what the other refuses: {:?} / {:?}", dora.as_ref().err(), core.as_ref().err()),
    }
});
