use super::*;

const TRIVY: &str = include_str!("../../../testdata/trivy.sarif");
const TRIVY_CLEAN: &str = include_str!("../../../testdata/trivy-clean.sarif");
const CODEQL: &str = include_str!("../../../testdata/codeql.sarif");

fn policy(block_at: SecuritySeverity, block_level: BlockLevel) -> Policy {
    Policy { block_at, block_level }
}

#[test]
fn trivy_findings_take_their_security_severity_from_the_rule() {
    let report = parse(TRIVY).expect("parses");
    assert_eq!(report.tools, vec!["Trivy 0.58.1"]);
    let seen: Vec<(String, String)> =
        report.findings.iter().map(|f| (f.rule.clone(), f.severity.to_string())).collect();
    assert_eq!(
        seen,
        [
            ("CVE-2024-45337", "critical 9.1"),
            ("DS002", "high 8.0"),
            ("CVE-2023-44487", "high 7.5"),
            ("CVE-2023-45288", "medium 5.3"),
        ]
        .map(|(a, b)| (a.to_owned(), b.to_owned()))
    );
    assert_eq!(report.findings[0].location.as_deref(), Some("go.mod:9"));
}

#[test]
fn trivy_blocks_at_high_naming_the_rule_and_location() {
    let report = parse(TRIVY).expect("parses");
    let judgment = judge(&report, &policy(SecuritySeverity::High, BlockLevel::Error));
    assert!(!judgment.passed);
    assert_eq!(judgment.blocking.len(), 3);
    assert!(
        judgment.detail.starts_with(
            "Trivy 0.58.1: 3 findings at or above security severity high or level error: \
             CVE-2024-45337 (critical 9.1, go.mod:9): Package: golang.org/x/crypto, Installed Version: v0.28.0"
        ),
        "{}",
        judgment.detail
    );
    assert!(judgment.detail.ends_with("(all findings: 1 critical, 2 high, 1 medium)"), "{}", judgment.detail);
}

#[test]
fn a_critical_threshold_lets_high_findings_pass() {
    let report = parse(TRIVY).expect("parses");
    let judgment = judge(&report, &policy(SecuritySeverity::Critical, BlockLevel::Error));
    // Trivy's `level: error` does not count on its own: the score decides.
    assert_eq!(judgment.blocking.iter().map(|f| f.rule.as_str()).collect::<Vec<_>>(), ["CVE-2024-45337"]);
}

#[test]
fn a_clean_scan_passes_and_says_so() {
    let judgment = judge(&parse(TRIVY_CLEAN).expect("parses"), &policy(SecuritySeverity::Low, BlockLevel::Note));
    assert!(judgment.passed);
    assert_eq!(judgment.detail, "Trivy 0.58.1: no findings");
}

#[test]
fn codeql_rules_in_extensions_are_found_by_tool_component() {
    let report = parse(CODEQL).expect("parses");
    assert_eq!(report.tools, vec!["CodeQL 2.19.3"]);
    // The suppressed rate-limiting result does not count.
    assert_eq!(report.ignored, 1);
    let seen: Vec<String> = report.findings.iter().map(|f| format!("{} {}", f.rule, f.severity)).collect();
    // No `level` on CodeQL results: it comes from the rule's default.
    assert_eq!(seen, ["js/sql-injection high 8.8", "js/trivial-conditional warning", "js/unused-local-variable note"]);
    let judgment = judge(&report, &policy(SecuritySeverity::High, BlockLevel::Error));
    assert_eq!(
        judgment.detail,
        "CodeQL 2.19.3: 1 finding at or above security severity high or level error: js/sql-injection (high 8.8, \
         src/routes/orders.js:42): This query string depends on a [user-provided value](1). (all findings: 1 high, \
         1 warning, 1 note; 1 suppressed or fixed)"
    );
}

#[test]
fn levels_block_findings_without_a_security_severity() {
    let report = parse(CODEQL).expect("parses");
    let at = |level| judge(&report, &policy(SecuritySeverity::Critical, level));
    assert!(at(BlockLevel::Error).passed);
    assert_eq!(at(BlockLevel::Warning).blocking.len(), 1);
    assert_eq!(at(BlockLevel::Note).blocking.len(), 2);
    let off = at(BlockLevel::Off);
    assert!(off.passed);
    assert!(off.detail.contains("none at or above security severity critical;"), "{}", off.detail);
}

#[test]
fn the_result_level_wins_over_the_rule_default_and_kind_pass_is_no_finding() {
    let text = r#"{"version": "2.1.0", "runs": [{
        "tool": {"driver": {"name": "semgrep", "rules": [
            {"id": "r1", "defaultConfiguration": {"level": "note"}}
        ]}},
        "results": [
            {"ruleId": "r1", "ruleIndex": 0, "level": "error", "message": {"text": "bad"},
             "locations": [{"physicalLocation": {"artifactLocation": {"uri": "file:///src/a.py"}}}]},
            {"ruleId": "r1", "kind": "pass", "level": "error", "message": {"text": "fine"}},
            {"ruleId": "r1", "baselineState": "absent", "level": "error", "message": {"text": "fixed"}},
            {"ruleId": "r2", "message": {"text": "no rule, no level: a warning"}}
        ]}]}"#;
    let report = parse(text).expect("parses");
    let seen: Vec<String> =
        report.findings.iter().map(|f| format!("{} {} {:?}", f.rule, f.severity, f.location)).collect();
    assert_eq!(seen, ["r1 error Some(\"/src/a.py\")", "r2 warning None"]);
    assert_eq!(report.ignored, 1);
}

#[test]
fn empty_reports_block_and_say_why() {
    let empty = judge(&parse("").expect("empty text"), &policy(SecuritySeverity::High, BlockLevel::Error));
    assert!(!empty.passed);
    assert!(empty.detail.starts_with("the report is empty (no runs)"), "{}", empty.detail);
    let no_runs = parse(r#"{"version": "2.1.0", "runs": []}"#).expect("parses");
    assert!(!judge(&no_runs, &policy(SecuritySeverity::High, BlockLevel::Error)).passed);
    let no_results = parse(r#"{"version": "2.1.0", "runs": [{"tool": {"driver": {"name": "gosec"}}}]}"#).expect("ok");
    let judgment = judge(&no_results, &policy(SecuritySeverity::High, BlockLevel::Error));
    assert!(!judgment.passed);
    assert!(judgment.detail.starts_with("gosec reported no results list"), "{}", judgment.detail);
}

#[test]
fn malformed_logs_are_refused_with_the_reason() {
    let err = parse("{\"version\": \"2.1.0\", \"runs\": [").expect_err("truncated");
    assert!(err.starts_with("not a SARIF 2.1.0 log: EOF while parsing"), "{err}");
    assert!(err.contains("line 1"), "{err}");
    let err = parse(r#"{"version": "2.0.0", "runs": []}"#).expect_err("old version");
    assert!(err.contains("\"2.0.0\" is not supported"), "{err}");
    let err = parse(r#"{"results": []}"#).expect_err("not sarif");
    assert!(err.contains("no `version`"), "{err}");
    let err = parse(
        r#"{"version": "2.1.0", "runs": [{"tool": {"driver": {"name": "x"}}, "results": [{"level": "fatal"}]}]}"#,
    )
    .expect_err("bad level");
    assert!(err.contains("fatal"), "{err}");
}

#[test]
fn scores_map_to_githubs_ranges() {
    let cases = [(10.0, "critical"), (9.0, "critical"), (8.9, "high"), (7.0, "high"), (6.9, "medium"), (4.0, "medium")];
    for (score, name) in cases {
        assert_eq!(SecuritySeverity::from_score(score).to_string(), name, "{score}");
    }
    assert_eq!(SecuritySeverity::from_score(3.9), SecuritySeverity::Low);
    assert_eq!(SecuritySeverity::from_score(0.0), SecuritySeverity::Low);
}
