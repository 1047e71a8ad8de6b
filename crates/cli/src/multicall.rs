//! `sluice`: the six steps in one executable, for release archives.
//!
//! Called through a link named after a step (`gate`, `shift-traffic`, …) it
//! runs that step, like the separate binaries; called as `sluice STEP ARGS…`
//! it runs `STEP`. One executable instead of six keeps the release archive a
//! sixth of the size (the steps share almost all their code), which is what
//! the action downloads and restores from its cache on every run; the
//! measurements are in `dist/README.md`. Never does anything but dispatch.

use clap::Parser;
use std::ffi::OsString;
use std::path::Path;
use std::process::ExitCode;

/// The step names, as the links and separate binaries are called.
pub const STEPS: [&str; 6] = ["gate", "shift-traffic", "verify-health", "promote", "rollback", "dora-report"];

pub fn main() -> ExitCode {
    dispatch(std::env::args_os().collect())
}

/// Runs the step that `argv` names: by the program's file name, else by its
/// first argument.
pub fn dispatch(mut argv: Vec<OsString>) -> ExitCode {
    let program = argv.first().map(|p| step_name(Path::new(p))).unwrap_or_default();
    let step = if STEPS.contains(&program.as_str()) {
        program
    } else {
        match argv.get(1).and_then(|a| a.to_str()) {
            Some(s) if STEPS.contains(&s) => {
                let s = s.to_owned();
                argv.remove(0);
                s
            }
            Some("status") => {
                argv.remove(0);
                return crate::status::entry(crate::status::Args::parse_from(argv));
            }
            // Not a step: a read-only helper for the action's scripts.
            Some("inspect") => {
                argv.remove(0);
                return crate::inspect::entry(crate::inspect::Args::parse_from(argv));
            }
            Some("--version" | "-V") => {
                println!("sluice {}", env!("CARGO_PKG_VERSION"));
                return ExitCode::SUCCESS;
            }
            other => {
                let help = matches!(other, Some("--help" | "-h" | "help"));
                let text = format!(
                    "sluice {}: progressive delivery steps\n\nusage: sluice STEP [ARGS...]   (or call it through a link named STEP)\n       sluice status [--record PATH]... [--watch]   where each environment stands\n\nsteps: {}\n\nRun `sluice STEP --help` for a step's flags.\n",
                    env!("CARGO_PKG_VERSION"),
                    STEPS.join(", ")
                );
                if help {
                    print!("{text}");
                    return ExitCode::SUCCESS;
                }
                match other {
                    Some(s) => eprint!("sluice: unknown step {s:?}\n\n{text}"),
                    None => eprint!("{text}"),
                }
                return sluice_core::Exit::BAD_INPUT.into();
            }
        }
    };
    // The same entry points as the six binaries: cancellation handling and
    // deployment metrics included.
    match step.as_str() {
        "gate" => crate::gate::entry(crate::gate::Args::parse_from(argv)),
        "shift-traffic" => crate::shift_traffic::entry(crate::shift_traffic::Args::parse_from(argv)),
        "verify-health" => crate::verify_health::entry(crate::verify_health::Args::parse_from(argv)),
        "promote" => crate::promote::entry(crate::promote::Args::parse_from(argv)),
        "rollback" => crate::rollback::entry(crate::rollback::Args::parse_from(argv)),
        _ => crate::dora_report::entry(crate::dora_report::Args::parse_from(argv)),
    }
}

/// The file name without directory or `.exe`.
fn step_name(path: &Path) -> String {
    path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default()
}
