//! Any bytes given as a record either load or are refused with an error;
//! never a panic. A record that loads saves and loads back unchanged.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sluice_core::record::{Expect, Record};
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    let path = Path::new("fuzz.json");
    if let Ok(record) = Record::from_slice(data, path, &Expect::default()) {
        let text = serde_json::to_vec(&record).expect("a loaded record serialises");
        let again = Record::from_slice(&text, path, &Expect::default()).expect("a saved record loads");
        assert_eq!(record, again);
    }
});
