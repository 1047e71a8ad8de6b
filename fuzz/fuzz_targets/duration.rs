//! Durations and strategy overrides as users type them on the command line:
//! parsed or refused with a message, never a panic; a parsed canary is valid.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sluice_core::config::{Strategy, parse_duration};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let _ = parse_duration(text);
    if let Ok(strategy) = Strategy::parse_override(text) {
        let plan = strategy.plan();
        assert!(!plan.is_empty());
        assert!(plan.iter().all(|(w, _)| *w <= 100));
        assert_eq!(plan.last().map(|(w, _)| *w), Some(100));
    }
});
