//! `gate` with the checks that need no provider: freeze windows, a SARIF
//! report and a coverage report, run as the real binary.

use crate::support::{code, exe, stderr};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn testdata(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../crates/analysis/testdata").join(name)
}

/// A directory with a one-environment config whose gate table is `gate`.
struct Dir {
    dir: tempfile::TempDir,
}

impl Dir {
    fn new(gate: &str) -> Dir {
        let dir = tempfile::tempdir().expect("tempdir");
        let config = format!(
            "app = \"shop\"\n\n[[environment]]\nname = \"dev\"\nrouter = {{ kind = \"local\", admin_url = \"http://127.0.0.1:9\" }}\n\n\
             [environment.gate]\n{gate}\n"
        );
        std::fs::write(dir.path().join("sluice.toml"), config).expect("config");
        Dir { dir }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn copy(&self, fixture: &str, to: &str) {
        std::fs::copy(testdata(fixture), self.path(to)).expect("copy fixture");
    }

    fn gate(&self, env: &[(&str, &Path)]) -> Output {
        let mut cmd = Command::new(exe("gate"));
        cmd.current_dir(self.dir.path())
            .env_remove("GITHUB_ACTIONS")
            .env_remove("GITHUB_OUTPUT")
            .env("GITHUB_STEP_SUMMARY", self.path("summary.md"))
            .env("CI", "true")
            .args([
                "--config",
                "sluice.toml",
                "-e",
                "dev",
                "--record",
                "r.json",
                "--release",
                "v2",
                "--commit",
                "abcdef1",
            ]);
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd.output().expect("gate runs")
    }

    fn summary(&self) -> String {
        std::fs::read_to_string(self.path("summary.md")).unwrap_or_default()
    }

    fn record(&self) -> serde_json::Value {
        serde_json::from_slice(&std::fs::read(self.path("r.json")).expect("record")).expect("json")
    }
}

/// A weekly window around now in `zone`: from an hour ago to two hours ahead.
fn window_around_now(zone: &str) -> (String, String) {
    let now = jiff::Zoned::now().with_time_zone(jiff::tz::TimeZone::get(zone).expect("zone"));
    let from = now.checked_sub(jiff::SignedDuration::from_hours(1)).expect("an hour ago");
    let to = now.checked_add(jiff::SignedDuration::from_hours(2)).expect("two hours ahead");
    (from.strftime("%a %H:%M").to_string(), to.strftime("%a %H:%M").to_string())
}

#[test]
fn a_freeze_window_in_force_blocks_and_says_until_when() {
    let _turn = crate::support::shared();
    let (from, to) = window_around_now("Europe/Berlin");
    let d = Dir::new(&format!(
        "freeze = [{{ from = \"{from}\", to = \"{to}\", zone = \"Europe/Berlin\", name = \"release freeze\" }}]"
    ));
    // An empty TZDIR hides the system's zoneinfo: the bundled database answers.
    let empty = tempfile::tempdir().expect("tempdir");
    let out = d.gate(&[("TZDIR", empty.path())]);
    assert_eq!(code(&out), 1, "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains(&format!(
            "BLOCK freeze: freeze window release freeze ({from} to {to} Europe/Berlin) is in force until"
        )),
        "{err}"
    );
    assert!(err.contains("\nerror: freeze window release freeze"), "{err}");
    assert_eq!(d.record()["status"], "blocked");
    assert!(d.summary().contains("| freeze | ❌ block | freeze window release freeze"), "{}", d.summary());
    assert!(String::from_utf8_lossy(&out.stdout).contains("decision=block"));
}

#[test]
fn a_freeze_window_not_in_force_passes_with_the_next_one() {
    let _turn = crate::support::shared();
    // The window two days from now is not in force.
    let now = jiff::Zoned::now().with_time_zone(jiff::tz::TimeZone::get("Asia/Tokyo").expect("zone"));
    let later = now.checked_add(jiff::SignedDuration::from_hours(48)).expect("later");
    let to = later.checked_add(jiff::SignedDuration::from_hours(1)).expect("later");
    let d = Dir::new(&format!(
        "freeze = [{{ from = \"{}\", to = \"{}\", zone = \"Asia/Tokyo\" }}]",
        later.strftime("%a %H:%M"),
        to.strftime("%a %H:%M")
    ));
    let out = d.gate(&[]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(stderr(&out).contains("pass  freeze: no freeze window in force; next:"), "{}", stderr(&out));
}

#[test]
fn an_unknown_zone_is_bad_input_at_file_line_key() {
    let _turn = crate::support::shared();
    let d = Dir::new("freeze = [{ from = \"Fri 15:00\", to = \"Mon 08:00\", zone = \"Europe/Berln\" }]");
    let out = d.gate(&[]);
    assert_eq!(code(&out), 2, "{}", stderr(&out));
    assert!(
        stderr(&out).contains(
            "sluice.toml:8:51: `environment[0].gate.freeze[0].zone`: unknown time zone \"Europe/Berln\"; did you mean \"Europe/Berlin\"?"
        ),
        "{}",
        stderr(&out)
    );
    assert!(!d.path("r.json").exists(), "a refused config writes no record");
}

#[test]
fn a_sarif_finding_at_the_threshold_blocks_naming_rule_and_location() {
    let _turn = crate::support::shared();
    let d = Dir::new("sarif = { path = \"reports/trivy.sarif\", block_at = \"high\" }");
    std::fs::create_dir(d.path("reports")).expect("dir");
    d.copy("trivy.sarif", "reports/trivy.sarif");
    let out = d.gate(&[]);
    assert_eq!(code(&out), 1, "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains(
            "BLOCK sarif: reports/trivy.sarif: Trivy 0.58.1: 3 findings at or above security severity high or level error: \
             CVE-2024-45337 (critical 9.1, go.mod:9)"
        ),
        "{err}"
    );
    let summary = d.summary();
    assert!(summary.contains("<details><summary>3 blocking findings in reports/trivy.sarif</summary>"), "{summary}");
    assert!(summary.contains("| DS002 | high 8.0 | Dockerfile:1 |"), "{summary}");
    let d = Dir::new("sarif = { path = \"clean.sarif\" }");
    d.copy("trivy-clean.sarif", "clean.sarif");
    let out = d.gate(&[]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(stderr(&out).contains("pass  sarif: clean.sarif: Trivy 0.58.1: no findings"), "{}", stderr(&out));
}

#[test]
fn low_coverage_blocks_with_the_rate_and_the_files_to_look_at() {
    let _turn = crate::support::shared();
    let d = Dir::new("coverage = { path = \"coverage.xml\", min = 0.8 }");
    d.copy("coverage-py.xml", "coverage.xml");
    let out = d.gate(&[]);
    assert_eq!(code(&out), 1, "{}", stderr(&out));
    assert!(
        stderr(&out).contains(
            "BLOCK coverage: coverage.xml: line coverage 66.0% (33 of 50 lines, Cobertura) is below the required 80.0%; \
             7 more lines need to run; most uncovered: shop/checkout.py (13 of 24 uncovered)"
        ),
        "{}",
        stderr(&out)
    );
    assert!(d.summary().contains("| coverage | ❌ block |"), "{}", d.summary());
}

#[test]
fn passing_evidence_is_in_the_summary() {
    let _turn = crate::support::shared();
    let d = Dir::new(
        "coverage = { path = \"lcov.info\", min = 0.8 }\nsarif = { path = \"codeql.sarif\", block_at = \"critical\" }",
    );
    d.copy("lcov.info", "lcov.info");
    d.copy("codeql.sarif", "codeql.sarif");
    let out = d.gate(&[]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let summary = d.summary();
    assert!(
        summary.contains("| coverage | ✅ pass | lcov.info: line coverage 81.3% (35 of 43 lines, lcov)"),
        "{summary}"
    );
    assert!(summary.contains("| sarif | ✅ pass | codeql.sarif: CodeQL 2.19.3: 3 findings"), "{summary}");
    assert_eq!(d.record()["status"], "admitted");
}

#[test]
fn missing_empty_or_broken_evidence_is_handled() {
    let _turn = crate::support::shared();
    // Missing: bad input naming the path; nothing written.
    let d = Dir::new("sarif = { path = \"reports/trivy.sarif\" }");
    let out = d.gate(&[]);
    assert_eq!(code(&out), 2, "{}", stderr(&out));
    assert!(stderr(&out).contains("the SARIF report reports/trivy.sarif does not exist"), "{}", stderr(&out));
    assert!(!d.path("r.json").exists());
    // Broken: bad input with the parser's reason.
    std::fs::create_dir(d.path("reports")).expect("dir");
    std::fs::write(d.path("reports/trivy.sarif"), "{\"version\": \"2.1.0\", \"runs\": [").expect("write");
    let out = d.gate(&[]);
    assert_eq!(code(&out), 2, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("the SARIF report reports/trivy.sarif cannot be used: not a SARIF 2.1.0 log"),
        "{}",
        stderr(&out)
    );
    assert!(!d.path("r.json").exists());
    // Empty: a decision (no data is never a pass), and it says so.
    std::fs::write(d.path("reports/trivy.sarif"), "").expect("write");
    let out = d.gate(&[]);
    assert_eq!(code(&out), 1, "{}", stderr(&out));
    assert!(stderr(&out).contains("BLOCK sarif: reports/trivy.sarif: the report is empty"), "{}", stderr(&out));
    let d = Dir::new("coverage = { path = \"lcov.info\", min = 0.5 }");
    std::fs::write(d.path("lcov.info"), "").expect("write");
    let out = d.gate(&[]);
    assert_eq!(code(&out), 1, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("BLOCK coverage: lcov.info: the lcov report is empty (no lines)"),
        "{}",
        stderr(&out)
    );
}
