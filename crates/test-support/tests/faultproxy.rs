//! `sluice-faultproxy` at the process edge, as the demo binaries are checked
//! in sluice-demo's tests: `--version`, `--help` with the exit codes, and
//! bad input refused with exit 2 and what to change.

use std::process::{Command, Stdio};

const PROXY: &str = env!("CARGO_BIN_EXE_sluice-faultproxy");

fn run(args: &[&str]) -> std::process::Output {
    Command::new(PROXY).args(args).stdin(Stdio::null()).output().expect("run")
}

#[test]
fn answers_version_and_help() {
    let version = env!("CARGO_PKG_VERSION");
    for flag in ["--version", "-V"] {
        let out = run(&[flag]);
        assert_eq!(out.status.code(), Some(0), "{flag}: {}", String::from_utf8_lossy(&out.stderr));
        assert_eq!(String::from_utf8_lossy(&out.stdout), format!("sluice-faultproxy {version}\n"), "{flag}");
    }
    let help = run(&["--help"]);
    assert_eq!(help.status.code(), Some(0));
    let help = String::from_utf8_lossy(&help.stdout);
    for line in ["Exit codes", "  2  bad input", "Examples:"] {
        assert!(help.contains(line), "--help lacks {line:?}:\n{help}");
    }
}

#[test]
fn refuses_bad_input_with_exit_2() {
    let held = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let busy = held.local_addr().expect("addr").to_string();
    for (args, words) in [
        (vec!["--upstream", "http://127.0.0.1:1", "--listen", &busy], "choose another port with --listen"),
        (vec!["--upstream", "http://127.0.0.1:1", "--error-rate", "1.5"], "error_rate 1.5 is not in [0, 1]"),
        (vec!["--upstream", "ftp://127.0.0.1:1"], "expected http://host:port"),
    ] {
        let out = run(&args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(words), "{args:?}: {stderr}");
    }
}
