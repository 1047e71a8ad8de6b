//! Findings in a SARIF 2.1.0 log (what Trivy, CodeQL, Semgrep and most
//! scanners write), judged against a severity threshold the way GitHub code
//! scanning ranks alerts.
//!
//! A finding whose rule carries a `security-severity` score (CodeQL and Trivy
//! put one on their security rules' `properties`) has a security severity:
//! 9.0 and over is critical, 7.0 to 8.9 high, 4.0 to 6.9 medium, below that
//! low. Any other finding has its SARIF `level`: the result's own, else its
//! rule's `defaultConfiguration.level`, else `warning`; a result whose `kind`
//! is not `fail` (a pass, a note for review) is not a finding. Suppressed
//! results (unless the suppression was rejected) and results whose
//! `baselineState` is `absent` (fixed since the baseline) do not count.
//!
//! Never reads files: the caller passes the text.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;
use std::fmt;

/// A security severity, as GitHub code scanning names score ranges.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum SecuritySeverity {
    Low,
    Medium,
    High,
    Critical,
}

impl SecuritySeverity {
    /// The range a `security-severity` score (0.0 to 10.0) falls in.
    pub fn from_score(score: f64) -> SecuritySeverity {
        if score >= 9.0 {
            SecuritySeverity::Critical
        } else if score >= 7.0 {
            SecuritySeverity::High
        } else if score >= 4.0 {
            SecuritySeverity::Medium
        } else {
            SecuritySeverity::Low
        }
    }
}

impl fmt::Display for SecuritySeverity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SecuritySeverity::Low => "low",
            SecuritySeverity::Medium => "medium",
            SecuritySeverity::High => "high",
            SecuritySeverity::Critical => "critical",
        })
    }
}

/// A SARIF result level (`none` is not a problem at all).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    None,
    Note,
    Warning,
    Error,
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Level::None => "none",
            Level::Note => "note",
            Level::Warning => "warning",
            Level::Error => "error",
        })
    }
}

/// From which level a finding without a security severity blocks.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum BlockLevel {
    /// Only errors (GitHub's default for alerts that are not security alerts).
    #[default]
    Error,
    Warning,
    Note,
    /// Findings without a security severity never block.
    Off,
}

impl BlockLevel {
    fn blocks(self, level: Level) -> bool {
        let threshold = match self {
            BlockLevel::Error => Level::Error,
            BlockLevel::Warning => Level::Warning,
            BlockLevel::Note => Level::Note,
            BlockLevel::Off => return false,
        };
        level != Level::None && level >= threshold
    }
}

/// The thresholds: a finding at or above either blocks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Policy {
    pub block_at: SecuritySeverity,
    pub block_level: BlockLevel,
}

/// How bad one finding is.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Severity {
    Security { severity: SecuritySeverity, score: f64 },
    Level(Level),
}

impl Severity {
    /// Sort key: security severities above levels, higher first.
    fn rank(&self) -> (u8, u8, i64) {
        match self {
            Severity::Security { severity, score } => (1, *severity as u8, (score * 10.0).round() as i64),
            Severity::Level(level) => (0, *level as u8, 0),
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Severity::Security { severity, score } => write!(f, "{severity} {score:.1}"),
            Severity::Level(level) => write!(f, "{level}"),
        }
    }
}

/// One result that counts.
#[derive(Clone, Debug, PartialEq)]
pub struct Finding {
    pub tool: String,
    pub rule: String,
    pub severity: Severity,
    /// The message on one line, shortened.
    pub message: String,
    /// `path:line` of the first location, when there is one.
    pub location: Option<String>,
}

impl Finding {
    fn blocks(&self, policy: &Policy) -> bool {
        match self.severity {
            Severity::Security { severity, .. } => severity >= policy.block_at,
            Severity::Level(level) => policy.block_level.blocks(level),
        }
    }
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({}", self.rule, self.severity)?;
        if let Some(location) = &self.location {
            write!(f, ", {location}")?;
        }
        write!(f, ")")?;
        if !self.message.is_empty() {
            write!(f, ": {}", self.message)?;
        }
        Ok(())
    }
}

/// What a SARIF log holds, reduced to what the gate judges.
#[derive(Clone, Debug, PartialEq)]
pub struct Report {
    /// `Trivy 0.58.1`, `CodeQL 2.19.3`: one per run.
    pub tools: Vec<String>,
    pub runs: usize,
    /// Runs whose `results` were given (an empty list is a clean scan; a
    /// missing one means the tool did not say).
    pub runs_with_results: usize,
    pub findings: Vec<Finding>,
    /// Results that were suppressed or fixed, and so did not count.
    pub ignored: usize,
}

/// The gate's view of a report.
#[derive(Clone, Debug, PartialEq)]
pub struct Judgment {
    pub passed: bool,
    /// Findings at or above the thresholds, worst first.
    pub blocking: Vec<Finding>,
    /// The evidence in one paragraph.
    pub detail: String,
}

// The parts of SARIF 2.1.0 the gate reads; everything else is ignored.
#[derive(Deserialize)]
struct Log {
    version: Option<String>,
    runs: Option<Vec<Run>>,
}

#[derive(Deserialize)]
struct Run {
    tool: Tool,
    results: Option<Vec<SarifResult>>,
}

#[derive(Deserialize)]
struct Tool {
    driver: Component,
    #[serde(default)]
    extensions: Vec<Component>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Component {
    name: String,
    version: Option<String>,
    semantic_version: Option<String>,
    #[serde(default)]
    rules: Vec<Rule>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Rule {
    id: String,
    default_configuration: Option<RuleConfiguration>,
    properties: Option<BTreeMap<String, Value>>,
}

#[derive(Deserialize)]
struct RuleConfiguration {
    level: Option<Level>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SarifResult {
    rule_id: Option<String>,
    rule_index: Option<usize>,
    rule: Option<RuleReference>,
    kind: Option<String>,
    level: Option<Level>,
    #[serde(default)]
    message: Message,
    #[serde(default)]
    locations: Vec<Location>,
    suppressions: Option<Vec<Suppression>>,
    baseline_state: Option<String>,
    properties: Option<BTreeMap<String, Value>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RuleReference {
    id: Option<String>,
    index: Option<usize>,
    tool_component: Option<ComponentReference>,
}

#[derive(Deserialize)]
struct ComponentReference {
    index: Option<usize>,
}

#[derive(Default, Deserialize)]
struct Message {
    text: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Location {
    physical_location: Option<PhysicalLocation>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PhysicalLocation {
    artifact_location: Option<ArtifactLocation>,
    region: Option<Region>,
}

#[derive(Deserialize)]
struct ArtifactLocation {
    uri: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Region {
    start_line: Option<u64>,
}

#[derive(Deserialize)]
struct Suppression {
    status: Option<String>,
}

/// Parses a SARIF log. Errors say what is wrong in words a user can act on
/// (the JSON error carries line and column).
pub fn parse(text: &str) -> Result<Report, String> {
    if text.trim().is_empty() {
        return Ok(Report { tools: Vec::new(), runs: 0, runs_with_results: 0, findings: Vec::new(), ignored: 0 });
    }
    let log: Log = serde_json::from_str(text).map_err(|e| format!("not a SARIF 2.1.0 log: {e}"))?;
    match log.version.as_deref() {
        Some("2.1.0") => {}
        Some(other) => return Err(format!("SARIF version {other:?} is not supported; sluice reads SARIF 2.1.0")),
        None => {
            return Err("not a SARIF log: it has no `version` (SARIF 2.1.0 logs have \"version\": \"2.1.0\")".into());
        }
    }
    let runs = log.runs.ok_or("not a SARIF log: it has no `runs`")?;
    let mut report = Report {
        tools: Vec::new(),
        runs: runs.len(),
        runs_with_results: runs.iter().filter(|r| r.results.is_some()).count(),
        findings: Vec::new(),
        ignored: 0,
    };
    for run in runs {
        let driver = &run.tool.driver;
        let tool = match driver.semantic_version.as_ref().or(driver.version.as_ref()) {
            Some(version) => format!("{} {version}", driver.name),
            None => driver.name.clone(),
        };
        for result in run.results.iter().flatten() {
            let suppressed = result
                .suppressions
                .as_ref()
                .is_some_and(|s| s.iter().any(|s| !matches!(s.status.as_deref(), Some("rejected" | "underReview"))));
            if suppressed || result.baseline_state.as_deref() == Some("absent") {
                report.ignored += 1;
                continue;
            }
            if result.kind.as_deref().is_some_and(|k| k != "fail") {
                continue;
            }
            let rule = find_rule(&run.tool, result);
            let score = rule
                .and_then(|r| r.properties.as_ref())
                .and_then(security_severity)
                .or_else(|| result.properties.as_ref().and_then(security_severity));
            let severity = match score {
                Some(score) => Severity::Security { severity: SecuritySeverity::from_score(score), score },
                None => Severity::Level(
                    result
                        .level
                        .or_else(|| rule.and_then(|r| r.default_configuration.as_ref()).and_then(|c| c.level))
                        .unwrap_or(Level::Warning),
                ),
            };
            if severity == Severity::Level(Level::None) {
                continue;
            }
            let rule_id = result
                .rule_id
                .clone()
                .or_else(|| result.rule.as_ref().and_then(|r| r.id.clone()))
                .or_else(|| rule.map(|r| r.id.clone()))
                .unwrap_or_else(|| "(no rule id)".into());
            report.findings.push(Finding {
                tool: driver.name.clone(),
                rule: rule_id,
                severity,
                message: one_line(result.message.text.as_deref().unwrap_or_default()),
                location: location(result),
            });
        }
        if !report.tools.contains(&tool) {
            report.tools.push(tool);
        }
    }
    report.findings.sort_by_key(|f| std::cmp::Reverse(f.severity.rank()));
    Ok(report)
}

/// The rule a result refers to: by `rule.toolComponent.index` and
/// `rule.index` / `ruleIndex` (CodeQL keeps its rules in `extensions`), else
/// by id in the driver and then the extensions.
fn find_rule<'a>(tool: &'a Tool, result: &SarifResult) -> Option<&'a Rule> {
    let reference = result.rule.as_ref();
    let component = match reference.and_then(|r| r.tool_component.as_ref()).and_then(|c| c.index) {
        Some(i) => tool.extensions.get(i)?,
        None => &tool.driver,
    };
    let id = result.rule_id.as_deref().or(reference.and_then(|r| r.id.as_deref()));
    let by_index = reference.and_then(|r| r.index).or(result.rule_index).and_then(|i| component.rules.get(i));
    match (by_index, id) {
        (Some(rule), Some(id)) if rule.id == id || id.starts_with(&format!("{}/", rule.id)) => Some(rule),
        (Some(rule), None) => Some(rule),
        (_, Some(id)) => std::iter::once(&tool.driver)
            .chain(&tool.extensions)
            .flat_map(|c| &c.rules)
            .find(|r| r.id == id || id.starts_with(&format!("{}/", r.id))),
        (None, None) => None,
    }
}

/// `security-severity` as a number: a string (`"9.8"`, as GitHub documents)
/// or a JSON number.
fn security_severity(properties: &BTreeMap<String, Value>) -> Option<f64> {
    match properties.get("security-severity")? {
        Value::String(s) => s.trim().parse().ok(),
        Value::Number(n) => n.as_f64(),
        _ => None,
    }
    .filter(|s: &f64| s.is_finite() && *s >= 0.0)
}

fn location(result: &SarifResult) -> Option<String> {
    let physical = result.locations.iter().find_map(|l| l.physical_location.as_ref())?;
    let uri = physical.artifact_location.as_ref()?.uri.as_deref()?;
    let uri = uri.strip_prefix("file://").unwrap_or(uri);
    Some(match physical.region.as_ref().and_then(|r| r.start_line) {
        Some(line) => format!("{uri}:{line}"),
        None => uri.to_owned(),
    })
}

fn one_line(text: &str) -> String {
    let joined = text.lines().map(str::trim).filter(|l| !l.is_empty()).collect::<Vec<_>>().join(", ");
    const MAX: usize = 160;
    if joined.chars().count() <= MAX {
        joined
    } else {
        let cut: String = joined.chars().take(MAX - 1).collect();
        format!("{}…", cut.trim_end())
    }
}

/// Judges a report: blocks on any finding at or above the policy, and on a
/// report that holds no scan at all (no data is never a pass).
pub fn judge(report: &Report, policy: &Policy) -> Judgment {
    let tools = if report.tools.is_empty() { "the report".to_owned() } else { report.tools.join(", ") };
    let threshold = match policy.block_level {
        BlockLevel::Off => format!("security severity {}", policy.block_at),
        level => format!("security severity {} or level {}", policy.block_at, format!("{level:?}").to_lowercase()),
    };
    if report.runs == 0 {
        return Judgment {
            passed: false,
            blocking: Vec::new(),
            detail: "the report is empty (no runs): the scan wrote nothing to judge; check the scanner's step".into(),
        };
    }
    if report.runs_with_results == 0 {
        return Judgment {
            passed: false,
            blocking: Vec::new(),
            detail: format!(
                "{tools} reported no results list (not even an empty one): the scan did not finish; check the scanner's step"
            ),
        };
    }
    let blocking: Vec<Finding> = report.findings.iter().filter(|f| f.blocks(policy)).cloned().collect();
    let counts = counts(report);
    let ignored = if report.ignored > 0 { format!("; {} suppressed or fixed", report.ignored) } else { String::new() };
    let detail = if blocking.is_empty() {
        match report.findings.len() {
            0 => format!("{tools}: no findings{ignored}"),
            n => format!(
                "{tools}: {n} finding{} ({counts}), none at or above {threshold}{ignored}",
                if n == 1 { "" } else { "s" }
            ),
        }
    } else {
        let shown: Vec<String> = blocking.iter().take(3).map(Finding::to_string).collect();
        let more = if blocking.len() > 3 { format!("; and {} more", blocking.len() - 3) } else { String::new() };
        format!(
            "{tools}: {} finding{} at or above {threshold}: {}{more} (all findings: {counts}{ignored})",
            blocking.len(),
            if blocking.len() == 1 { "" } else { "s" },
            shown.join("; ")
        )
    };
    Judgment { passed: blocking.is_empty(), blocking, detail }
}

/// `2 critical, 1 high, 3 warning`, worst first.
fn counts(report: &Report) -> String {
    let mut counts: Vec<(String, usize)> = Vec::new();
    for f in &report.findings {
        let name = match f.severity {
            Severity::Security { severity, .. } => severity.to_string(),
            Severity::Level(level) => level.to_string(),
        };
        match counts.iter_mut().find(|(n, _)| *n == name) {
            Some((_, c)) => *c += 1,
            None => counts.push((name, 1)),
        }
    }
    counts.iter().map(|(n, c)| format!("{c} {n}")).collect::<Vec<_>>().join(", ")
}

#[cfg(test)]
mod tests;
