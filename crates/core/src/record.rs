//! The deployment record: one JSON document per deployment of a release into
//! an environment, passed from step to step (and job to job as an artifact).
//!
//! Each step loads it, checks it is the deployment it expects, appends events
//! and writes it back atomically (temp file, fsync, rename). Events are only
//! ever appended. Loading never changes the file, so a refused record is left
//! exactly as it was.

use crate::config::Strategy;
use crate::ledger::ChangeKind;
pub use crate::lifecycle::Status;
use crate::lifecycle::{Refused, Step};
use jiff::Timestamp;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use sluice_analysis::AnalysisReport;
use std::io::Write;
use std::path::{Path, PathBuf};

/// The schema tag this version of sluice reads and writes.
pub const SCHEMA: &str = "sluice.deployment/v1";

/// One deployment of a release into one environment.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "sluice deployment record", extend("$id" = "https://sluice.dev/schema/deployment.v1.json"))]
pub struct Record {
    /// Always `sluice.deployment/v1`.
    pub schema: String,
    /// Unique id: `{app}-{environment}-{version}-{UTC time}-{6 hex digits}`;
    /// the digits tell apart two runs of one release started in the same second.
    pub id: String,
    pub app: String,
    pub environment: String,
    /// The release being deployed.
    pub version: String,
    /// The commit SHA of the release.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commit: Option<String>,
    /// Planned change or hotfix.
    #[serde(default)]
    pub change: ChangeKind,
    /// Incident this deployment is linked to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub incident: Option<String>,
    /// The strategy in force.
    pub strategy: Strategy,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub triggered_by: Option<String>,
    /// Link to the workflow run that made it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_url: Option<String>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    /// The router as it was before this deployment moved any traffic: what
    /// `rollback` restores.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub router_before: Option<RouterState>,
    /// What the candidate is, fixed for the whole deployment: the embedded
    /// router's candidate upstream URL, the ALB target group ARN the
    /// candidate is deployed into, or the CodeDeploy revision (`s3://…`, or
    /// `appspec sha256:…`). Recorded by `gate` when known there, else by the
    /// first `shift-traffic` before any traffic moves; steps route to it and
    /// nothing else. (Records of sluice before 0.2 call it
    /// `candidate_upstream`.)
    #[serde(default, alias = "candidate_upstream", skip_serializing_if = "Option::is_none")]
    pub candidate: Option<String>,
    /// The candidate's share of traffic as last confirmed by the router.
    /// With targets: the least of the targets' weights (100 only once every
    /// target sends the candidate all its traffic).
    pub candidate_weight: u8,
    /// An environment of several targets (`[[environment.target]]`): each
    /// target's wave, router state before the deployment, candidate and
    /// confirmed weight, in wave order. Empty for an environment of one
    /// router, whose state is in `router_before`, `candidate` and
    /// `candidate_weight` (which a record with targets leaves unset, but the
    /// weight).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub targets: Vec<TargetState>,
    /// The GitHub deployment that stands for this deployment (`github`
    /// ledger): created or adopted by `gate`, given its statuses by later steps.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub github_deployment: Option<u64>,
    /// The ledger entry this deployment still owes the ledger: set in the
    /// same save that ends the deployment, cleared once the ledger has it.
    /// A step run again on the record writes it first, so a ledger that was
    /// down when the deployment ended loses nothing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ledger_due: Option<crate::ledger::LedgerEntry>,
    /// Where the deployment stands. Steps move it only by the lifecycle
    /// table (docs/lifecycle.md).
    status: Status,
    /// Made by this process and not saved yet: `gate` is creating it.
    #[serde(skip)]
    #[schemars(skip)]
    fresh: Fresh,
    /// What happened, in order; only ever appended.
    pub events: Vec<Event>,
}

/// Whether a record was made by this process and not moved yet; not part
/// of the document, and equal whatever its value.
#[derive(Clone, Copy, Debug, Default)]
struct Fresh(bool);

impl PartialEq for Fresh {
    fn eq(&self, _: &Fresh) -> bool {
        true
    }
}

/// One target of a deployment to an environment of several.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TargetState {
    /// The target's name in the config (`us-east-1`).
    pub name: String,
    /// Its wave, counted from 0: waves go one after the other, the targets
    /// of one wave in parallel.
    pub wave: usize,
    /// Its router before this deployment moved any of its traffic: what
    /// `rollback` restores.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub router_before: Option<RouterState>,
    /// Its candidate (upstream URL or target group ARN), as `candidate` is
    /// for one router.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub candidate: Option<String>,
    /// Its candidate's share of traffic as last confirmed by its router.
    pub candidate_weight: u8,
}

/// A router's state, as read back from it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RouterState {
    /// `local`, `alb` or `codedeploy`.
    pub kind: String,
    /// Percent of traffic on the candidate.
    pub candidate_weight: u8,
    /// The stable pool (upstream URL or target group ARN).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stable: Option<String>,
    /// The candidate pool.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub candidate: Option<String>,
    /// ALB: the listener or listener rule whose forward action was read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource: Option<String>,
    /// ALB: every target group of the forward action with its weight as AWS
    /// stores it (0-999), in the order AWS lists them. `rollback` writes
    /// exactly these back.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub target_groups: Vec<TargetGroupWeight>,
    /// ALB: the forward action's target group stickiness.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stickiness: Option<Stickiness>,
    /// CodeDeploy: the deployment in flight (or the one just stopped).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deployment_id: Option<String>,
    /// CodeDeploy: that deployment's status (`InProgress`, `Ready`, `Stopped`, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deployment_status: Option<String>,
    /// CodeDeploy with a blue/green target-group pair (ECS): the production
    /// listener, read when the deployment started; it forwarded to
    /// `stable`, so `candidate` is the pair's other target group, the
    /// replacement. The built-in ALB checks read both from CloudWatch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub listener: Option<String>,
    /// CodeDeploy with that pair: the CloudWatch alarms the deployment
    /// group watched when the deployment started. None: its built-in
    /// checks are the ALB ones alone.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub alarms: Vec<String>,
}

/// One target group of an ALB forward action.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TargetGroupWeight {
    pub arn: String,
    /// Relative weight, 0-999.
    pub weight: u16,
}

/// Target group stickiness of an ALB forward action.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Stickiness {
    pub enabled: bool,
    /// How long a client stays on its target group, in seconds (1-604800).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_seconds: Option<i32>,
}

/// One thing that happened, appended by a step.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Event {
    pub at: Timestamp,
    /// The binary that appended it.
    pub step: String,
    /// The target it is about, in an environment of several targets; none
    /// for the deployment as a whole.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    #[serde(flatten)]
    pub detail: EventDetail,
}

/// What happened.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum EventDetail {
    /// `gate`'s decision with each check.
    Gate { allowed: bool, checks: Vec<GateCheck> },
    /// The router confirmed a new candidate weight.
    Traffic {
        from: u8,
        to: u8,
        /// 0-based stage of the plan, when shifting by plan; with
        /// CodeDeploy, of the windows judged during its shift (a weight it
        /// shifted to, read from its listener).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        stage: Option<usize>,
    },
    /// The canary stopped after a stage to wait for approval.
    Pause {
        /// 0-based stage of the plan it stopped after.
        stage: usize,
        /// The candidate's weight while paused.
        weight: u8,
        /// When the wait ends: a canary still paused then is rolled back.
        expires_at: Timestamp,
    },
    /// A health judgment with all its evidence.
    Verdict {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        stage: Option<usize>,
        report: Box<AnalysisReport>,
    },
    /// The candidate became stable.
    Promote {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        next_environment: Option<String>,
        /// Promoted without analysis: the environment says `analysis =
        /// "none"`.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        unanalysed: bool,
    },
    /// Traffic went back to stable.
    Rollback { reason: String, from: u8, restored: RouterState },
    /// A deployment run by the router's own service (CodeDeploy) changed
    /// status; its words are kept as they were.
    Deployment {
        id: String,
        status: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        message: Option<String>,
    },
    /// The deployment ended without ever moving traffic (it failed to
    /// start, was cancelled before its first stage, or was given up).
    Abandoned { reason: String },
    /// A step stopped on an error; where things stand is in the message.
    Error { message: String },
    /// A step was cancelled (SIGINT or SIGTERM, as when a workflow run is
    /// cancelled) and stopped; the candidate's weight as read back from the
    /// router afterwards, or why it could not be read.
    Cancelled {
        signal: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        candidate_weight: Option<u8>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        router_error: Option<String>,
    },
}

/// One gate check's result.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct GateCheck {
    pub name: String,
    pub passed: bool,
    /// The evidence, in one sentence.
    pub detail: String,
    /// Not passed yet because something is still running (a check run, a
    /// status): the gate says "wait", and a later run may pass.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub pending: bool,
    /// Where the evidence can be seen (a check run, an issue, a deployment).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub link: Option<String>,
}

impl GateCheck {
    /// A check that passed.
    pub fn pass(name: &str, detail: impl Into<String>) -> GateCheck {
        GateCheck { name: name.to_owned(), passed: true, detail: detail.into(), pending: false, link: None }
    }

    /// A check that blocks.
    pub fn block(name: &str, detail: impl Into<String>) -> GateCheck {
        GateCheck { passed: false, ..GateCheck::pass(name, detail) }
    }

    /// A check that blocks for now because its evidence is still pending.
    pub fn wait(name: &str, detail: impl Into<String>) -> GateCheck {
        GateCheck { passed: false, pending: true, ..GateCheck::pass(name, detail) }
    }

    /// Passes or blocks.
    pub fn new(name: &str, passed: bool, detail: impl Into<String>) -> GateCheck {
        GateCheck { passed, ..GateCheck::pass(name, detail) }
    }

    /// With a link to the evidence.
    pub fn with_link(mut self, link: Option<String>) -> GateCheck {
        self.link = link;
        self
    }
}

/// Why a record could not be used; the file is left untouched.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    #[error("no record at {path}: run `gate` first to create it, or pass the right --record path")]
    Missing { path: PathBuf },
    #[error("cannot read record {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error(
        "record {path} is damaged: {reason}; restore it from the run's artifact or start a new deployment with a new --record path"
    )]
    Damaged { path: PathBuf, reason: String },
    #[error(
        "record {path} has schema {found:?}, but this sluice reads {SCHEMA:?}; use the sluice version that wrote it, or start a new record"
    )]
    UnknownSchema { path: PathBuf, found: String },
    #[error(
        "record {path} is for {field} {found:?}, not {expected:?}; pass the record of this deployment, or a new --record path"
    )]
    Mismatch { path: PathBuf, field: &'static str, found: String, expected: String },
    #[error("cannot write record {path}: {source}")]
    Write { path: PathBuf, source: std::io::Error },
}

/// What a step expects the record to be about.
#[derive(Debug, Default)]
pub struct Expect<'a> {
    pub app: Option<&'a str>,
    pub environment: Option<&'a str>,
    pub version: Option<&'a str>,
}

/// What the caller knows of a new deployment.
#[derive(Debug)]
pub struct NewRecord {
    pub app: String,
    pub environment: String,
    pub version: String,
    pub commit: Option<String>,
    pub change: ChangeKind,
    pub incident: Option<String>,
    pub strategy: Strategy,
    pub triggered_by: Option<String>,
    pub run_url: Option<String>,
}

impl Record {
    /// Starts a record for a new deployment.
    pub fn new(new: NewRecord, now: Timestamp) -> Record {
        let stamp = now.strftime("%Y%m%dT%H%M%SZ");
        Record {
            schema: SCHEMA.to_owned(),
            id: format!("{}-{}-{}-{stamp}-{:06x}", new.app, new.environment, new.version, unique_suffix(now)),
            app: new.app,
            environment: new.environment,
            version: new.version,
            commit: new.commit,
            change: new.change,
            incident: new.incident,
            strategy: new.strategy,
            triggered_by: new.triggered_by,
            run_url: new.run_url,
            created_at: now,
            updated_at: now,
            router_before: None,
            candidate: None,
            candidate_weight: 0,
            targets: Vec::new(),
            github_deployment: None,
            ledger_due: None,
            // Until `gate` moves it: a fresh record is "no status yet" to
            // the table.
            status: Status::Admitted,
            fresh: Fresh(true),
            events: Vec::new(),
        }
    }

    /// Reads a record and checks it is the deployment the caller expects.
    pub fn load(path: &Path, expect: &Expect<'_>) -> Result<Record, RecordError> {
        let bytes = std::fs::read(path).map_err(|source| match source.kind() {
            std::io::ErrorKind::NotFound => RecordError::Missing { path: path.to_owned() },
            _ => RecordError::Io { path: path.to_owned(), source },
        })?;
        Self::from_slice(&bytes, path, expect)
    }

    /// Parses record bytes; `path` is only used in messages.
    pub fn from_slice(bytes: &[u8], path: &Path, expect: &Expect<'_>) -> Result<Record, RecordError> {
        let damaged = |reason: String| RecordError::Damaged { path: path.to_owned(), reason };
        let text = std::str::from_utf8(bytes).map_err(|e| damaged(format!("not UTF-8 ({e})")))?;
        // The schema tag first, so a newer record is named as such rather
        // than as a pile of unknown fields. No key may be given twice.
        let value = validate::strict_json(text).map_err(|e| damaged(format!("invalid JSON ({e})")))?;
        match value.get("schema").and_then(|s| s.as_str()) {
            Some(SCHEMA) => {}
            Some(other) => {
                return Err(RecordError::UnknownSchema { path: path.to_owned(), found: other.to_owned() });
            }
            None => return Err(damaged("it has no \"schema\" field; is this a sluice record?".into())),
        }
        let record: Record = serde_path_to_error::deserialize(value).map_err(|e| {
            let at = e.path().to_string();
            let inner = e.into_inner();
            if at == "." { damaged(inner.to_string()) } else { damaged(format!("`{at}`: {inner}")) }
        })?;
        record.validate().map_err(damaged)?;
        let mismatch = |field, found: &str, expected: &str| RecordError::Mismatch {
            path: path.to_owned(),
            field,
            found: found.to_owned(),
            expected: expected.to_owned(),
        };
        if let Some(app) = expect.app.filter(|a| *a != record.app) {
            return Err(mismatch("app", &record.app, app));
        }
        if let Some(env) = expect.environment.filter(|e| *e != record.environment) {
            return Err(mismatch("environment", &record.environment, env));
        }
        if let Some(version) = expect.version.filter(|v| *v != record.version) {
            return Err(mismatch("version", &record.version, version));
        }
        Ok(record)
    }

    /// Every field, with the rules the config obeys (the plan passes
    /// [`Strategy::validate`]); a refusal names the field by its JSON path.
    fn validate(&self) -> Result<(), String> {
        validate::record(self)
    }

    /// Where the deployment stands.
    pub fn status(&self) -> Status {
        self.status
    }

    /// Whether `gate` is creating this record in this process.
    pub fn is_new(&self) -> bool {
        self.fresh.0
    }

    /// `shop v1.4.2 in prd`, for messages.
    pub fn subject(&self) -> String {
        format!("{} {} in {}", self.app, self.version, self.environment)
    }

    /// Where the deployment stands, in words; with targets, each one's
    /// weight while traffic is (partly) moved.
    pub fn describe(&self) -> String {
        let words = self.status.words(self.candidate_weight);
        if self.targets.is_empty() || !matches!(self.status, Status::Shifting | Status::Paused | Status::Verified) {
            return words;
        }
        let each: Vec<String> = self.targets.iter().map(|t| format!("{} {}%", t.name, t.candidate_weight)).collect();
        format!("{words} (per target: {})", each.join(", "))
    }

    /// The target named `name`, with targets.
    pub fn target(&self, name: &str) -> Option<&TargetState> {
        self.targets.iter().find(|t| t.name == name)
    }

    /// Sets a target's confirmed weight, and the deployment's (the least
    /// of the targets'). Changes nothing for a name the record lacks.
    pub fn set_target_weight(&mut self, name: &str, weight: u8) {
        if let Some(t) = self.targets.iter_mut().find(|t| t.name == name) {
            t.candidate_weight = weight;
        }
        self.candidate_weight = self.targets.iter().map(|t| t.candidate_weight).min().unwrap_or(weight);
    }

    /// Appends an event about one target (`None`: the deployment) and
    /// stamps the record.
    pub fn push_for(&mut self, step: &str, target: Option<&str>, detail: EventDetail, now: Timestamp) {
        self.updated_at = now;
        self.events.push(Event { at: now, step: step.to_owned(), target: target.map(str::to_owned), detail });
    }

    fn from(&self) -> Option<Status> {
        if self.fresh.0 { None } else { Some(self.status) }
    }

    /// Refuses `step` (wanting to `what`) unless the lifecycle table gives
    /// it at least one move from where the deployment stands. Changes
    /// nothing.
    pub fn may_act(&self, step: Step, what: &str) -> Result<(), Refused> {
        if crate::lifecycle::moves(step, self.from()).is_empty() { Err(self.refused(step, what)) } else { Ok(()) }
    }

    /// Whether the table lets `step` move the deployment to `to`.
    pub fn may_move(&self, step: Step, to: Status) -> bool {
        crate::lifecycle::allows(step, self.from(), to)
    }

    /// Moves the deployment to `to` for `step`, if the lifecycle table holds
    /// that move; otherwise changes nothing and says why.
    pub fn transition(&mut self, step: Step, to: Status, now: Timestamp) -> Result<(), Refused> {
        if !self.may_move(step, to) {
            return Err(self.refused(step, &format!("move it to `{to}`")));
        }
        self.status = to;
        self.fresh = Fresh(false);
        self.updated_at = now;
        Ok(())
    }

    /// The refusal of `step` wanting to `what`, in words.
    pub fn refused(&self, step: Step, what: &str) -> Refused {
        let next = self.status.next(self.candidate_weight);
        Refused {
            step,
            from: self.status,
            what: what.to_owned(),
            subject: self.subject(),
            words: self.describe(),
            next: next.text,
        }
    }

    /// Appends an event and stamps the record.
    pub fn push(&mut self, step: &str, detail: EventDetail, now: Timestamp) {
        self.push_for(step, None, detail, now);
    }

    /// Writes the record atomically: a temp file beside it, fsync, rename.
    /// A crash at any point leaves either the old or the new record.
    pub fn save(&self, path: &Path) -> Result<(), RecordError> {
        let fail = |source| RecordError::Write { path: path.to_owned(), source };
        let mut json = serde_json::to_vec_pretty(self).map_err(|e| fail(std::io::Error::other(e)))?;
        json.push(b'\n');
        write_atomic(path, &json).map_err(fail)
    }

    /// While paused: the last `pause` event's stage and expiry.
    pub fn pause(&self) -> Option<(usize, u8, Timestamp)> {
        if self.status != Status::Paused {
            return None;
        }
        self.events.iter().rev().find_map(|e| match e.detail {
            EventDetail::Pause { stage, weight, expires_at } => Some((stage, weight, expires_at)),
            _ => None,
        })
    }

    /// The last verdict of stage `stage` of the plan, for `target` (`None`:
    /// an environment of one router).
    pub fn stage_verdict(&self, target: Option<&str>, stage: usize) -> Option<&AnalysisReport> {
        self.events.iter().rev().find_map(|e| match &e.detail {
            EventDetail::Verdict { stage: Some(s), report } if *s == stage && e.target.as_deref() == target => {
                Some(report.as_ref())
            }
            _ => None,
        })
    }

    /// The last verdict event, if any.
    pub fn last_verdict(&self) -> Option<&AnalysisReport> {
        self.events.iter().rev().find_map(|e| match &e.detail {
            EventDetail::Verdict { report, .. } => Some(report.as_ref()),
            _ => None,
        })
    }
}

/// 24 bits that differ between processes and calls: the standard library's
/// randomly keyed hasher over the time and the process id.
fn unique_suffix(now: Timestamp) -> u32 {
    use std::hash::BuildHasher;
    let hash = std::collections::hash_map::RandomState::new().hash_one((now.as_nanosecond(), std::process::id()));
    (hash & 0x00ff_ffff) as u32
}

/// Replaces `path` with `bytes` atomically (same-directory temp file, fsync,
/// rename, fsync of the directory).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    std::fs::create_dir_all(dir)?;
    let name = path.file_name().ok_or_else(|| std::io::Error::other("path has no file name"))?;
    let tmp = dir.join(format!(".{}.tmp-{}", name.to_string_lossy(), std::process::id()));
    let result = (|| {
        let mut file = std::fs::File::create(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        std::fs::rename(&tmp, path)?;
        if let Ok(d) = std::fs::File::open(dir) {
            let _ = d.sync_all();
        }
        Ok(())
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// The JSON Schema of the record, as committed in `schema/deployment.v1.json`.
pub fn json_schema() -> String {
    let schema = schemars::schema_for!(Record);
    let mut text = serde_json::to_string_pretty(&schema).expect("a schema always serialises");
    text.push('\n');
    text
}

#[cfg(test)]
mod tests;
mod validate;

impl Record {
    /// The ledger entry that closes this deployment.
    pub fn ledger_entry(
        &self,
        outcome: crate::ledger::LedgerOutcome,
        reason: Option<String>,
        now: Timestamp,
    ) -> crate::ledger::LedgerEntry {
        crate::ledger::LedgerEntry {
            schema: crate::ledger::LEDGER_SCHEMA.to_owned(),
            id: self.id.clone(),
            app: self.app.clone(),
            environment: self.environment.clone(),
            version: self.version.clone(),
            commit: self.commit.clone(),
            commits: Vec::new(),
            change: self.change,
            incident: self.incident.clone(),
            strategy: self.strategy.name().to_owned(),
            triggered_by: self.triggered_by.clone(),
            started_at: self.created_at,
            finished_at: now,
            outcome,
            reason,
            unanalysed: false,
            targets: self.target_outcomes(),
        }
    }

    /// How each target ended, from its tagged events (none without targets).
    fn target_outcomes(&self) -> Vec<crate::ledger::TargetOutcome> {
        self.targets
            .iter()
            .map(|t| {
                let mine = self.events.iter().filter(|e| e.target.as_deref() == Some(t.name.as_str()));
                let reached = mine
                    .clone()
                    .filter_map(|e| match &e.detail {
                        EventDetail::Traffic { to, .. } => Some(*to),
                        _ => None,
                    })
                    .max()
                    .unwrap_or(0);
                let verdict = mine
                    .filter_map(|e| match &e.detail {
                        EventDetail::Verdict { report, .. } => Some(format!("{:?}", report.verdict).to_lowercase()),
                        _ => None,
                    })
                    .next_back();
                crate::ledger::TargetOutcome { name: t.name.clone(), wave: t.wave, reached, verdict }
            })
            .collect()
    }
}
