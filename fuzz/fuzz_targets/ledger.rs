//! Any bytes given as a ledger (JSON Lines) either make a report or an error
//! naming the line; never a panic. Rendering a report never panics either.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sluice_dora::{Options, report_reader, to_markdown, to_svg, to_terminal};
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    if let Ok(report) = report_reader(data, Path::new("ledger.jsonl"), &Options::default()) {
        let _ = to_markdown(&report);
        let _ = to_svg(&report);
        let _ = to_terminal(&report);
    }
});
