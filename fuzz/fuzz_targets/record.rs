//! Any bytes given as a record either load or are refused with an error;
//! never a panic. A record that loads has a valid plan and weights, and
//! saves and loads back unchanged.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sluice_core::config::Strategy;
use sluice_core::record::{Expect, Record};
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    let path = Path::new("fuzz.json");
    if let Ok(record) = Record::from_slice(data, path, &Expect::default()) {
        assert_plan(&record.strategy);
        assert!(record.candidate_weight <= 100);
        let text = serde_json::to_vec(&record).expect("a loaded record serialises");
        let again = Record::from_slice(&text, path, &Expect::default()).expect("a saved record loads");
        assert_eq!(record, again);
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
