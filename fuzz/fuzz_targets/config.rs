//! Any text given as sluice.toml either parses and validates or is refused
//! with an error whose message (with its file:line:key pointer and snippet)
//! renders; never a panic. Every plan of a config that loads is valid.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sluice_core::config::{Config, Strategy};
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    match Config::parse(text, Path::new("sluice.toml")) {
        Ok(config) => {
            for env in &config.environments {
                let strategy = config.strategy_for(env);
                assert_plan(&strategy);
                let _ = config.min_final_analysis(&strategy);
                let _ = config.analysis_for(env);
                let _ = config.next_environment(&env.name);
            }
        }
        Err(e) => {
            let _ = e.to_string();
        }
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
