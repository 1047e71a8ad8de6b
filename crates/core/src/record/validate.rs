//! What makes a record acceptable, checked on every load with the rules the
//! config obeys: strict JSON (no key given twice), then every field, each
//! refusal naming the field by its JSON path (`events[3].to`).
//!
//! Never repairs a record and never writes one: a refused record is left
//! exactly as it was, for a person to restore.

use super::{Event, EventDetail, Record, RouterState};
use crate::config::Arn;
use crate::names;
use serde::de::{DeserializeSeed, Deserializer, Error as _, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};
use std::fmt;

/// A refusal: `` `json.path`: what is wrong ``.
type Damage = String;

/// Parses JSON as `serde_json` does, refusing a key given twice in any
/// object (`serde_json` would keep the last silently, so `{"app": "evil",
/// ..., "app": "shop"}` would read as shop while other readers see evil).
pub(super) fn strict_json(text: &str) -> Result<Value, String> {
    let mut de = serde_json::Deserializer::from_str(text);
    let value = Strict { at: &JsonPath::Root }.deserialize(&mut de).map_err(|e| e.to_string())?;
    de.end().map_err(|e| e.to_string())?;
    Ok(value)
}

/// Where a value is in the document, rendered only for an error.
enum JsonPath<'a> {
    Root,
    Key(&'a JsonPath<'a>, &'a str),
    Index(&'a JsonPath<'a>, usize),
}

impl fmt::Display for JsonPath<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            JsonPath::Root => f.write_str("."),
            JsonPath::Key(JsonPath::Root, key) => write!(f, "{key}"),
            JsonPath::Key(parent, key) => write!(f, "{parent}.{key}"),
            JsonPath::Index(JsonPath::Root, i) => write!(f, "[{i}]"),
            JsonPath::Index(parent, i) => write!(f, "{parent}[{i}]"),
        }
    }
}

struct Strict<'a> {
    at: &'a JsonPath<'a>,
}

impl<'de> DeserializeSeed<'de> for Strict<'_> {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, de: D) -> Result<Value, D::Error> {
        de.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Strict<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element_seed(Strict { at: &JsonPath::Index(self.at, items.len()) })? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut object = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            let at = JsonPath::Key(self.at, &key);
            if object.contains_key(&key) {
                return Err(A::Error::custom(format!(
                    "`{at}` is given twice (JSON readers disagree on which one counts; sluice reads neither)"
                )));
            }
            let value = map.next_value_seed(Strict { at: &at })?;
            object.insert(key, value);
        }
        Ok(Value::Object(object))
    }
}

/// Longest free text sluice keeps in a record field (an error message, a
/// verdict's reason): far above what it writes, short of a memory trap.
const MAX_TEXT: usize = 64 * 1024;

/// Every field of a record, in the order of the record (the names before
/// the id made of them).
pub(super) fn record(r: &Record) -> Result<(), Damage> {
    let at = |field: &str, m: String| format!("`{field}`: {m}");
    names::check("app", &r.app).map_err(|m| at("app", m))?;
    names::check("environment", &r.environment).map_err(|m| at("environment", m))?;
    names::check("version", &r.version).map_err(|m| at("version", m))?;
    check_id(r).map_err(|m| at("id", m))?;
    if let Some(commit) = &r.commit {
        names::check_commit(commit).map_err(|m| at("commit", m))?;
    }
    if let Some(incident) = &r.incident {
        names::check_label("incident", incident).map_err(|m| at("incident", m))?;
    }
    r.strategy.validate().map_err(|m| at("strategy", format!("the plan is refused: {m}")))?;
    if let Some(actor) = &r.triggered_by {
        names::check_label("triggered_by", actor).map_err(|m| at("triggered_by", m))?;
    }
    if let Some(url) = &r.run_url {
        check_url("run_url", url).map_err(|m| at("run_url", m))?;
    }
    if let Some(state) = &r.router_before {
        router_state(state, "router_before")?;
    }
    if let Some(candidate) = &r.candidate {
        check_candidate(candidate).map_err(|m| at("candidate", m))?;
    }
    check_weight(r.candidate_weight).map_err(|m| at("candidate_weight", m))?;
    targets(r)?;
    if r.github_deployment == Some(0) {
        return Err(at("github_deployment", "0 is not a GitHub deployment id (they start at 1)".into()));
    }
    ledger_due(r)?;
    let stages = r.strategy.plan().len();
    // With CodeDeploy, which shifts on its own deployment config, the
    // stages of traffic and verdicts are the windows judged during its
    // shift, not the plan's.
    let judged = match r.router_before.as_ref().is_some_and(|b| b.kind == "codedeploy") {
        true => CODEDEPLOY_STAGES,
        false => stages,
    };
    for (i, event) in r.events.iter().enumerate() {
        self::event(event, &format!("events[{i}]"), (stages, judged))?;
        if let Some(target) = &event.target
            && r.target(target).is_none()
        {
            let shown: String = target.chars().take(60).collect();
            let has = match r.targets.is_empty() {
                true => "it has none (one router)".to_owned(),
                false => format!("it has {}", r.targets.iter().map(|t| t.name.as_str()).collect::<Vec<_>>().join(", ")),
            };
            return Err(format!("`events[{i}].target`: {shown:?} is not a target of this record; {has}"));
        }
    }
    Ok(())
}

/// The targets of a record of several: names unique, waves counted from 0
/// without a gap and in order, each target's state on its own, no state of
/// one router beside them, and the deployment's weight the least of theirs.
fn targets(r: &Record) -> Result<(), Damage> {
    if r.targets.is_empty() {
        return Ok(());
    }
    for (field, set) in [("router_before", r.router_before.is_some()), ("candidate", r.candidate.is_some())] {
        if set {
            return Err(format!(
                "`{field}`: a record with targets keeps it per target (`targets[].{field}`), not for the deployment"
            ));
        }
    }
    let mut wave = 0;
    for (k, t) in r.targets.iter().enumerate() {
        let at = |field: &str, m: String| format!("`targets[{k}].{field}`: {m}");
        names::check("target name", &t.name).map_err(|m| at("name", m))?;
        if r.targets[..k].iter().any(|o| o.name == t.name) {
            return Err(at("name", format!("target {:?} is listed twice", t.name)));
        }
        if (t.wave != wave && t.wave != wave + 1) || (k == 0 && t.wave != 0) {
            return Err(at(
                "wave",
                format!(
                    "wave {} follows wave {wave}; targets are listed in wave order, waves counted from 0 without a gap",
                    t.wave
                ),
            ));
        }
        wave = t.wave;
        if let Some(state) = &t.router_before {
            router_state(state, &format!("targets[{k}].router_before"))?;
        }
        if let Some(candidate) = &t.candidate {
            check_candidate(candidate).map_err(|m| at("candidate", m))?;
        }
        check_weight(t.candidate_weight).map_err(|m| at("candidate_weight", m))?;
    }
    let least = r.targets.iter().map(|t| t.candidate_weight).min().unwrap_or(0);
    if r.candidate_weight != least {
        return Err(format!(
            "`candidate_weight`: {} is not {least}, the least of the targets' weights, as a record with targets keeps it",
            r.candidate_weight
        ));
    }
    Ok(())
}

/// `{app}-{environment}-{version}-{UTC time}-{6 hex digits}`, as
/// [`Record::new`] makes it (records made before the digits were added end
/// at the time): an id is used in lease tags, ledgers and GitHub payloads,
/// so it holds nothing but the record's own names.
fn check_id(r: &Record) -> Result<(), String> {
    let prefix = format!("{}-{}-{}-", r.app, r.environment, r.version);
    let stamp_ok = |stamp: &str| {
        let b = stamp.as_bytes();
        b.len() == 16
            && b[..8].iter().all(u8::is_ascii_digit)
            && b[8] == b'T'
            && b[9..15].iter().all(u8::is_ascii_digit)
            && b[15] == b'Z'
    };
    let hex_ok = |hex: &str| hex.len() == 6 && hex.bytes().all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(&c));
    let well_formed = r.id.strip_prefix(&prefix).is_some_and(|rest| match rest.split_once('-') {
        Some((stamp, hex)) => stamp_ok(stamp) && hex_ok(hex),
        None => stamp_ok(rest),
    });
    if well_formed {
        Ok(())
    } else {
        let shown: String = r.id.chars().take(200).collect();
        Err(format!(
            "{shown:?} is not this record's id; it must read {prefix}YYYYMMDDTHHMMSSZ-xxxxxx (its app, environment \
             and version, the UTC time it was made and 6 hex digits)"
        ))
    }
}

fn check_weight(weight: u8) -> Result<(), String> {
    if weight > 100 {
        return Err(format!("weight {weight} is above 100 (a percentage of traffic, 0-100)"));
    }
    Ok(())
}

/// An `http://` or `https://` URL of printable characters, at most 2048.
fn check_url(what: &str, url: &str) -> Result<(), String> {
    let shown: String = url.chars().take(200).collect();
    let rest = url.strip_prefix("http://").or_else(|| url.strip_prefix("https://"));
    if rest.is_none_or(|r| r.is_empty() || r.starts_with('/')) {
        return Err(format!("{what} {shown:?} is not an http:// or https:// URL with a host"));
    }
    if url.len() > 2048 || url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(format!("{what} {shown:?} is longer than 2048 characters or holds spaces or control characters"));
    }
    Ok(())
}

/// Free text (a reason, an error message): any characters, bounded.
fn check_text(what: &str, text: &str) -> Result<(), String> {
    if text.len() > MAX_TEXT {
        return Err(format!("{what} is {} bytes, more than sluice ever writes ({MAX_TEXT})", text.len()));
    }
    Ok(())
}

/// The candidate's identity: an http(s) URL (the embedded router), a target
/// group ARN (ALB), or a CodeDeploy revision (`s3://…`, `appspec sha256:…`).
fn check_candidate(candidate: &str) -> Result<(), String> {
    if candidate.starts_with("http://") || candidate.starts_with("https://") {
        return check_url("candidate", candidate);
    }
    names::check_label("candidate", candidate)?;
    let known = candidate.starts_with("arn:")
        || candidate.starts_with("s3://")
        || candidate
            .strip_prefix("appspec sha256:")
            .is_some_and(|h| h.len() == 64 && h.chars().all(|c| c.is_ascii_hexdigit()));
    if known {
        Ok(())
    } else {
        let shown: String = candidate.chars().take(60).collect();
        Err(format!(
            "{shown:?} is not a candidate sluice records (an http(s) URL, a target group ARN, s3://… or appspec sha256:…)"
        ))
    }
}

/// A router's state as read back from it: what `rollback` restores.
fn router_state(s: &RouterState, path: &str) -> Result<(), Damage> {
    let at = |field: &str, m: String| format!("`{path}.{field}`: {m}");
    if !matches!(s.kind.as_str(), "local" | "alb" | "codedeploy") {
        let shown: String = s.kind.chars().take(40).collect();
        return Err(at("kind", format!("{shown:?} is not a router kind (local, alb or codedeploy)")));
    }
    check_weight(s.candidate_weight).map_err(|m| at("candidate_weight", m))?;
    let labels = [
        ("stable", &s.stable),
        ("candidate", &s.candidate),
        ("resource", &s.resource),
        ("deployment_id", &s.deployment_id),
        ("deployment_status", &s.deployment_status),
    ];
    for (field, value) in labels {
        if let Some(value) = value {
            names::check_label(field, value).map_err(|m| at(field, m))?;
        }
    }
    if !s.target_groups.is_empty() && s.kind != "alb" {
        return Err(at("target_groups", format!("only an alb router has target groups, but kind is {:?}", s.kind)));
    }
    // An ALB forward action holds at most 5 target groups, each weighted 0-999.
    if s.target_groups.len() > 5 {
        return Err(at(
            "target_groups",
            format!("{} target groups; an ALB forwards to at most 5", s.target_groups.len()),
        ));
    }
    for (j, tg) in s.target_groups.iter().enumerate() {
        Arn::parse(&tg.arn, "elasticloadbalancing", "targetgroup/")
            .map_err(|m| at(&format!("target_groups[{j}].arn"), m))?;
        if tg.weight > 999 {
            return Err(at(
                &format!("target_groups[{j}].weight"),
                format!("weight {} is above 999, the most an ALB forward action takes", tg.weight),
            ));
        }
    }
    if let Some(stickiness) = &s.stickiness
        && let Some(seconds) = stickiness.duration_seconds
        && !(1..=604_800).contains(&seconds)
    {
        return Err(at(
            "stickiness.duration_seconds",
            format!("{seconds} s is outside the 1-604800 s (7 days) an ALB takes"),
        ));
    }
    if s.deployment_id.is_some() && s.kind != "codedeploy" {
        return Err(at(
            "deployment_id",
            format!("only a codedeploy router has a deployment, but kind is {:?}", s.kind),
        ));
    }
    Ok(())
}

/// The ledger entry a record owes is about the record itself.
fn ledger_due(r: &Record) -> Result<(), Damage> {
    let Some(entry) = &r.ledger_due else { return Ok(()) };
    if entry.schema != crate::ledger::LEDGER_SCHEMA {
        return Err(format!(
            "`ledger_due.schema`: {:?} is not {:?}, the ledger this sluice writes",
            entry.schema,
            crate::ledger::LEDGER_SCHEMA
        ));
    }
    let same = [
        ("id", &entry.id, &r.id),
        ("app", &entry.app, &r.app),
        ("environment", &entry.environment, &r.environment),
        ("version", &entry.version, &r.version),
    ];
    for (field, owed, own) in same {
        if owed != own {
            let shown: String = owed.chars().take(200).collect();
            return Err(format!(
                "`ledger_due.{field}`: {shown:?} is not the record's {field} {own:?}; the entry a record owes the \
                 ledger is about that deployment only"
            ));
        }
    }
    if let Some(reason) = &entry.reason {
        check_text("reason", reason).map_err(|m| format!("`ledger_due.reason`: {m}"))?;
    }
    Ok(())
}

/// The most stages a CodeDeploy deployment's record may hold: the windows
/// judged during its shift, one after another while CodeDeploy holds a
/// weight (far more than any deployment's timeout allows).
const CODEDEPLOY_STAGES: usize = 1_000_000;

/// One event; `stages` is the number of stages of the record's plan, and
/// `judged` of the stages traffic and verdicts may name (the plan's, or a
/// CodeDeploy shift's windows).
fn event(e: &Event, path: &str, (stages, judged): (usize, usize)) -> Result<(), Damage> {
    let at = |field: &str, m: String| format!("`{path}.{field}`: {m}");
    names::check("step", &e.step).map_err(|m| at("step", m))?;
    let bounded = |stages: usize| {
        move |field: &str, stage: usize| {
            if stage < stages {
                Ok(())
            } else {
                Err(at(field, format!("stage {stage} is past the plan's last stage ({stages} stages, counted from 0)")))
            }
        }
    };
    let (stage, shift_stage) = (bounded(stages), bounded(judged));
    match &e.detail {
        EventDetail::Gate { checks, .. } => {
            for (j, check) in checks.iter().enumerate() {
                names::check_label("name", &check.name).map_err(|m| at(&format!("checks[{j}].name"), m))?;
                check_text("detail", &check.detail).map_err(|m| at(&format!("checks[{j}].detail"), m))?;
                if let Some(link) = &check.link {
                    check_url("link", link).map_err(|m| at(&format!("checks[{j}].link"), m))?;
                }
            }
        }
        EventDetail::Traffic { from, to, stage: s } => {
            check_weight(*from).map_err(|m| at("from", m))?;
            check_weight(*to).map_err(|m| at("to", m))?;
            if let Some(s) = s {
                shift_stage("stage", *s)?;
            }
        }
        EventDetail::Pause { stage: s, weight, .. } => {
            stage("stage", *s)?;
            check_weight(*weight).map_err(|m| at("weight", m))?;
        }
        EventDetail::Verdict { stage: s, report } => {
            if let Some(s) = s {
                shift_stage("stage", *s)?;
            }
            if let Some(weight) = report.candidate_weight {
                check_weight(weight).map_err(|m| at("report.candidate_weight", m))?;
            }
            check_text("reason", &report.reason).map_err(|m| at("report.reason", m))?;
        }
        EventDetail::Promote { next_environment, .. } => {
            if let Some(next) = next_environment {
                names::check("environment", next).map_err(|m| at("next_environment", m))?;
            }
        }
        EventDetail::Rollback { reason, from, restored } => {
            check_text("reason", reason).map_err(|m| at("reason", m))?;
            check_weight(*from).map_err(|m| at("from", m))?;
            router_state(restored, &format!("{path}.restored"))?;
        }
        EventDetail::Deployment { id, status, message } => {
            names::check_label("id", id).map_err(|m| at("id", m))?;
            names::check_label("status", status).map_err(|m| at("status", m))?;
            if let Some(message) = message {
                check_text("message", message).map_err(|m| at("message", m))?;
            }
        }
        EventDetail::Error { message } => check_text("message", message).map_err(|m| at("message", m))?,
        EventDetail::Abandoned { reason } => check_text("reason", reason).map_err(|m| at("reason", m))?,
        EventDetail::Cancelled { signal, candidate_weight, router_error } => {
            names::check_label("signal", signal).map_err(|m| at("signal", m))?;
            if let Some(weight) = candidate_weight {
                check_weight(*weight).map_err(|m| at("candidate_weight", m))?;
            }
            if let Some(error) = router_error {
                check_text("router_error", error).map_err(|m| at("router_error", m))?;
            }
        }
    }
    Ok(())
}
