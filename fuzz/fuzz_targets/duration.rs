//! Durations and strategy overrides as users type them on the command line:
//! parsed or refused with a message, never a panic; a parsed plan is valid.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sluice_core::config::{Strategy, parse_duration};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let _ = parse_duration(text);
    if let Ok(strategy) = Strategy::parse_override(text) {
        assert_plan(&strategy);
    }
});

/// What every accepted plan is, checked here independently of
/// `Strategy::validate`: stages from 1 to 100, rising strictly, ending at
/// 100, each with time to analyse it (all at once has no stage of its own).
fn assert_plan(strategy: &Strategy) {
    let plan = strategy.plan();
    assert!(!plan.is_empty(), "{strategy:?}");
    assert!(plan.iter().all(|(w, _)| (1..=100).contains(w)), "{strategy:?}");
    assert!(plan.windows(2).all(|p| p[0].0 < p[1].0), "{strategy:?}");
    assert_eq!(plan.last().map(|(w, _)| *w), Some(100), "{strategy:?}");
    if !matches!(strategy, Strategy::AllAtOnce) {
        assert!(plan.iter().all(|(_, d)| !d.is_zero()), "{strategy:?}");
    }
}
