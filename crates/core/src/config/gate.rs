//! The gate's table (`[defaults.gate]`, `[environment.gate]`): freeze
//! windows, holidays, evidence reports and GitHub checks, and how an
//! environment's keys replace the defaults' key by key.
//!
//! Never judges a release: the gate step does, with the calendar built here.

use super::time_zone;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use sluice_analysis::gates::coverage::Format as CoverageFormat;
use sluice_analysis::gates::freeze::{Calendar, Days, WeekTime};
use sluice_analysis::gates::sarif::{BlockLevel, SecuritySeverity};
use std::path::PathBuf;

/// Gate checks beyond order and soak (`[defaults.gate]`, `[environment.gate]`).
///
/// Every key is optional; an environment's key replaces the defaults' key
/// (so `freeze = []` exempts an environment from the default windows).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GateConfig {
    /// IANA time zone of the holidays and of freeze windows that name none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub zone: Option<String>,
    /// Weekly freeze windows.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub freeze: Option<Vec<FreezeWindow>>,
    /// Frozen days (`2026-12-24`) or runs of days (`2026-12-24..2027-01-01`),
    /// whole days on the clock of `zone`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<Vec<String>>")]
    pub holidays: Option<Vec<Days>>,
    /// A SARIF report from an earlier job must hold no finding at or above a severity.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sarif: Option<SarifGate>,
    /// A coverage report from an earlier job must reach a line rate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub coverage: Option<CoverageGate>,
    /// Check runs or commit status contexts that must have succeeded on the
    /// release's commit (GitHub); one still running makes the gate wait.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub required_checks: Option<Vec<String>>,
    /// An open issue with this label blocks the gate (GitHub).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub incident_label: Option<String>,
    /// The run's approval of this environment must come from someone other
    /// than the commit's author (GitHub).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub require_independent_approval: Option<bool>,
}

/// A weekly freeze window, e.g. Fridays 15:00 to Mondays 08:00.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FreezeWindow {
    /// `Fri 15:00`: a weekday and a 24-hour time on the zone's clock.
    #[schemars(with = "String")]
    pub from: WeekTime,
    /// `Mon 08:00`; before `from` in the week means the window wraps the weekend.
    #[schemars(with = "String")]
    pub to: WeekTime,
    /// IANA time zone (`Europe/Berlin`); defaults to the gate's `zone`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub zone: Option<String>,
    /// Shown in the gate's evidence (`weekend`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

/// The SARIF gate.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SarifGate {
    /// The SARIF 2.1.0 file; relative paths are relative to the config file.
    pub path: PathBuf,
    /// A finding with a security severity at or above this blocks.
    #[serde(default = "default_block_at")]
    pub block_at: SecuritySeverity,
    /// A finding without a security severity blocks from this SARIF level on.
    #[serde(default)]
    pub block_level: BlockLevel,
}

fn default_block_at() -> SecuritySeverity {
    SecuritySeverity::High
}

/// The coverage gate.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CoverageGate {
    /// An lcov tracefile or a Cobertura XML report; relative to the config file.
    pub path: PathBuf,
    /// The least line rate, from 0 to 1 (0.8 for 80%).
    pub min: f64,
    /// `lcov` or `cobertura`; by default read from the file (XML is Cobertura).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<CoverageFormat>,
}

impl GateConfig {
    /// This environment's keys over the defaults' keys.
    pub fn over(&self, defaults: &GateConfig) -> GateConfig {
        GateConfig {
            zone: self.zone.clone().or_else(|| defaults.zone.clone()),
            freeze: self.freeze.clone().or_else(|| defaults.freeze.clone()),
            holidays: self.holidays.clone().or_else(|| defaults.holidays.clone()),
            sarif: self.sarif.clone().or_else(|| defaults.sarif.clone()),
            coverage: self.coverage.clone().or_else(|| defaults.coverage.clone()),
            required_checks: self.required_checks.clone().or_else(|| defaults.required_checks.clone()),
            incident_label: self.incident_label.clone().or_else(|| defaults.incident_label.clone()),
            require_independent_approval: self.require_independent_approval.or(defaults.require_independent_approval),
        }
    }

    /// The required checks (none when unset).
    pub fn required_checks(&self) -> &[String] {
        self.required_checks.as_deref().unwrap_or_default()
    }

    /// Whether any check needs GitHub.
    pub fn uses_github(&self) -> bool {
        !self.required_checks().is_empty()
            || self.incident_label.is_some()
            || self.require_independent_approval == Some(true)
    }

    /// The zone of the holidays: `zone`, else the one zone all freeze
    /// windows share.
    pub fn holiday_zone(&self) -> Option<&str> {
        if let Some(zone) = &self.zone {
            return Some(zone);
        }
        let mut zones = self.freeze.iter().flatten().map(|w| w.zone.as_deref());
        let first = zones.next()??;
        zones.all(|z| z == Some(first)).then_some(first)
    }

    /// The freeze windows and holidays with their zones resolved.
    pub fn calendar(&self) -> Result<Calendar, String> {
        let mut calendar = Calendar::default();
        for window in self.freeze.iter().flatten() {
            let zone = window.zone.as_deref().or(self.zone.as_deref()).ok_or(
                "this freeze window has no zone: add zone = \"Europe/Berlin\" (any IANA name) to it or to the gate",
            )?;
            calendar.weekly(window.name.as_deref(), window.from, window.to, zone, time_zone(zone)?)?;
        }
        if let Some(holidays) = self.holidays.as_ref().filter(|h| !h.is_empty()) {
            let zone = self.holiday_zone().ok_or(
                "holidays need a zone: add zone = \"Europe/Berlin\" (any IANA name) to the gate; they are whole days on its clock",
            )?;
            let tz = time_zone(zone)?;
            for days in holidays {
                calendar.days(*days, zone, tz.clone());
            }
        }
        Ok(calendar)
    }
}
