//! Any text given as sluice.toml either parses and validates or is refused
//! with an error whose message (with its file:line:key pointer and snippet)
//! renders; never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sluice_core::config::Config;
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    match Config::parse(text, Path::new("sluice.toml")) {
        Ok(config) => {
            for env in &config.environments {
                let _ = config.strategy_for(env).plan();
                let _ = config.next_environment(&env.name);
            }
        }
        Err(e) => {
            let _ = e.to_string();
        }
    }
});
