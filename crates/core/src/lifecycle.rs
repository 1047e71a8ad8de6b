//! The lifecycle of a deployment: the statuses a record can be in, and the
//! one table of the moves each step may make between them.
//!
//! Steps never assign a record's status: they ask
//! [`Record::transition`](crate::record::Record::transition), which refuses
//! any move the table does not hold, and a step that may not act on a
//! deployment at all is refused by [`Record::may_act`](crate::record::Record::may_act)
//! before it changes anything. A refusal says where the deployment stands,
//! in words, and the one command that moves it on (exit 1 at the steps).
//!
//! Pure data and words: never does I/O, never looks at a provider.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::fmt;

/// Where a deployment stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// `gate` allowed it and it holds the environment; no traffic has moved.
    Admitted,
    /// `gate` waits: a check is still pending, or another deployment holds
    /// the environment. The same record may be gated again.
    Waiting,
    /// `gate` said no. Final.
    Blocked,
    /// Traffic is (partly) on the candidate.
    Shifting,
    /// A canary stopped after a stage to wait for approval; the last `pause`
    /// event says when the wait expires.
    Paused,
    /// A passing verdict at 100% (or an environment with `analysis =
    /// "none"` at 100%): ready for `promote`.
    Verified,
    /// The candidate is the stable release. Final (a `rollback` reverts it).
    Promoted,
    /// Traffic went back to stable. Final.
    RolledBack,
    /// Ended without ever moving traffic: it failed to start, was cancelled
    /// before its first stage, or was given up with `rollback`. Final; not a
    /// change in the DORA metrics.
    Abandoned,
}

impl Status {
    /// Every status, in lifecycle order.
    pub const ALL: [Status; 9] = [
        Status::Admitted,
        Status::Waiting,
        Status::Blocked,
        Status::Shifting,
        Status::Paused,
        Status::Verified,
        Status::Promoted,
        Status::RolledBack,
        Status::Abandoned,
    ];

    /// Whether the deployment has ended: no step moves it anywhere else
    /// (`rollback` may still revert a promotion).
    pub fn is_final(self) -> bool {
        matches!(self, Status::Blocked | Status::Promoted | Status::RolledBack | Status::Abandoned)
    }

    /// The name as it appears in the record (`rolled_back`).
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Admitted => "admitted",
            Status::Waiting => "waiting",
            Status::Blocked => "blocked",
            Status::Shifting => "shifting",
            Status::Paused => "paused",
            Status::Verified => "verified",
            Status::Promoted => "promoted",
            Status::RolledBack => "rolled_back",
            Status::Abandoned => "abandoned",
        }
    }

    /// Where a deployment in this status stands, in words; `weight` is the
    /// candidate's share of traffic as last confirmed.
    pub fn words(self, weight: u8) -> String {
        match self {
            Status::Admitted => "admitted by the gate, with no traffic moved yet".into(),
            Status::Waiting => {
                "waiting at the gate (a check is still pending, or another deployment holds the environment)".into()
            }
            Status::Blocked => "blocked by the gate; it never started".into(),
            Status::Shifting if weight == 100 => {
                "at 100% without a passing verdict at 100% yet (the candidate takes all traffic)".into()
            }
            Status::Shifting => format!("shifting, with the candidate at {weight}% of traffic"),
            Status::Paused => format!("paused for approval, with the candidate at {weight}% of traffic"),
            Status::Verified => format!("verified at {weight}%, ready to promote"),
            Status::Promoted => "promoted: the release is stable".into(),
            Status::RolledBack => "rolled back: all traffic is on stable".into(),
            Status::Abandoned => "abandoned: it ended without moving any traffic".into(),
        }
    }

    /// The one command that moves a deployment in this status on.
    pub fn next(self, weight: u8) -> Next {
        let (step, new_record, text) = match self {
            Status::Admitted => {
                (Step::ShiftTraffic, false, "run `shift-traffic` to start the rollout (or `rollback` to give it up)")
            }
            Status::Waiting => (
                Step::Gate,
                false,
                "run `gate` on this record again once the check has finished or the environment is free",
            ),
            Status::Blocked => {
                (Step::Gate, true, "once the block is lifted, start a new deployment: `gate` with a new --record path")
            }
            Status::Shifting if weight == 100 => {
                (Step::VerifyHealth, false, "run `verify-health` to judge the candidate at 100% (or `rollback`)")
            }
            Status::Shifting => (Step::ShiftTraffic, false, "run `shift-traffic` to continue the plan (or `rollback`)"),
            Status::Paused => (
                Step::ShiftTraffic,
                false,
                "approve it by running `shift-traffic` again before the pause expires (or `rollback`)",
            ),
            Status::Verified => (Step::Promote, false, "run `promote`"),
            Status::Promoted => (
                Step::Gate,
                true,
                "it has ended; `rollback` reverts it, and `gate` with a new --record path starts the next one",
            ),
            Status::RolledBack | Status::Abandoned => {
                (Step::Gate, true, "it has ended; start a new deployment: `gate` with a new --record path")
            }
        };
        Next { step, new_record, text }
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What moves a deployment on: a step, on this record or on a new one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Next {
    pub step: Step,
    /// The step runs on a new record (the deployment has ended).
    pub new_record: bool,
    /// The advice, in words.
    pub text: &'static str,
}

/// The steps that move a deployment.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Step {
    Gate,
    ShiftTraffic,
    VerifyHealth,
    Promote,
    Rollback,
}

impl Step {
    pub const ALL: [Step; 5] = [Step::Gate, Step::ShiftTraffic, Step::VerifyHealth, Step::Promote, Step::Rollback];

    /// The binary's name.
    pub fn name(self) -> &'static str {
        match self {
            Step::Gate => "gate",
            Step::ShiftTraffic => "shift-traffic",
            Step::VerifyHealth => "verify-health",
            Step::Promote => "promote",
            Step::Rollback => "rollback",
        }
    }
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

use Status::*;

/// The table: each step, from which status (`None`: a record `gate` is
/// creating), to which statuses. Nothing else moves a deployment.
pub const TABLE: &[(Step, Option<Status>, &[Status])] = &[
    (Step::Gate, None, &[Admitted, Waiting, Blocked]),
    (Step::Gate, Some(Waiting), &[Admitted, Waiting, Blocked]),
    // A job that died between gate and the first stage is gated again; one
    // that is not admitted any more gives the environment back.
    (Step::Gate, Some(Admitted), &[Admitted, Waiting, Blocked]),
    // Admitted -> Abandoned: the canary could not start, or was cancelled
    // before its first stage moved traffic.
    (Step::ShiftTraffic, Some(Admitted), &[Shifting, Paused, Abandoned]),
    (Step::ShiftTraffic, Some(Shifting), &[Shifting, Paused, Verified, RolledBack]),
    (Step::ShiftTraffic, Some(Paused), &[Shifting, Verified, RolledBack]),
    // `--weight` on a verified candidate takes the verification back.
    (Step::ShiftTraffic, Some(Verified), &[Shifting, Verified, RolledBack]),
    (Step::VerifyHealth, Some(Shifting), &[Shifting, Verified]),
    (Step::VerifyHealth, Some(Verified), &[Verified, Shifting]),
    (Step::VerifyHealth, Some(Paused), &[Paused]),
    (Step::Promote, Some(Verified), &[Promoted]),
    // Run again: only the ledger entry or the hand-off it still owes.
    (Step::Promote, Some(Promoted), &[Promoted]),
    // Nothing moved: given up without calling the router.
    (Step::Rollback, Some(Admitted), &[Abandoned]),
    (Step::Rollback, Some(Waiting), &[Abandoned]),
    (Step::Rollback, Some(Shifting), &[RolledBack]),
    (Step::Rollback, Some(Paused), &[RolledBack]),
    (Step::Rollback, Some(Verified), &[RolledBack]),
    // A revert of the promotion.
    (Step::Rollback, Some(Promoted), &[RolledBack]),
    // Run again: traffic confirmed on stable, the ledger entry still owed.
    (Step::Rollback, Some(RolledBack), &[RolledBack]),
    (Step::Rollback, Some(Abandoned), &[Abandoned]),
    // Nothing to roll back; said so, nothing changes.
    (Step::Rollback, Some(Blocked), &[Blocked]),
];

/// The statuses `step` may move a deployment in `from` to (`None`: a new
/// record).
pub fn moves(step: Step, from: Option<Status>) -> &'static [Status] {
    TABLE.iter().find(|(s, f, _)| *s == step && *f == from).map_or(&[], |(_, _, to)| to)
}

/// Whether the table holds the move.
pub fn allows(step: Step, from: Option<Status>, to: Status) -> bool {
    moves(step, from).contains(&to)
}

/// The table as Markdown, as docs/lifecycle.md shows it (a test keeps the two the
/// same).
pub fn markdown_table() -> String {
    let mut text = String::from("| step | from | to |\n|---|---|---|\n");
    for (step, from, to) in TABLE {
        let from = from.map_or("(new record)".to_owned(), |f| format!("`{f}`"));
        let to: Vec<String> = to.iter().map(|t| format!("`{t}`")).collect();
        text.push_str(&format!("| `{step}` | {from} | {} |\n", to.join(", ")));
    }
    text
}

/// A move the table does not hold, or a step that may not act on the
/// deployment at all; nothing was changed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("refused to {what}: {subject} is {words}; {next}")]
pub struct Refused {
    pub step: Step,
    pub from: Status,
    /// What the step wanted to do, in words.
    pub what: String,
    /// The deployment (`shop v1.4.2 in prd`).
    pub subject: String,
    pub words: String,
    pub next: &'static str,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_status_has_a_way_on_that_the_table_allows() {
        for status in Status::ALL {
            for weight in [0, 10, 100] {
                let next = status.next(weight);
                let from = if next.new_record { None } else { Some(status) };
                assert!(
                    !moves(next.step, from).is_empty(),
                    "{status} at {weight}% advises {} but the table gives it no move",
                    next.step
                );
                assert!(next.text.contains(&format!("`{}", next.step.name())), "{status}: {}", next.text);
            }
        }
    }

    #[test]
    fn final_statuses_only_repeat_or_revert() {
        for status in Status::ALL.into_iter().filter(|s| s.is_final()) {
            for step in Step::ALL {
                for to in moves(step, Some(status)) {
                    let revert = status == Promoted && step == Step::Rollback && *to == RolledBack;
                    assert!(*to == status || revert, "{step} moves final {status} to {to}");
                }
            }
        }
    }

    #[test]
    fn traffic_that_moved_never_ends_abandoned_and_none_that_did_not_ends_rolled_back() {
        for (step, from, to) in TABLE {
            let moved = matches!(from, Some(Shifting | Paused | Verified | Promoted | RolledBack));
            if moved {
                assert!(!to.contains(&Abandoned), "{step} from {from:?} may abandon a deployment that moved traffic");
            }
            let unmoved = matches!(from, None | Some(Admitted | Waiting | Blocked | Abandoned));
            if unmoved {
                assert!(!to.contains(&RolledBack), "{step} from {from:?} may record a rollback of nothing");
            }
        }
    }

    #[test]
    fn only_promote_promotes_and_only_from_verified() {
        for (step, from, to) in TABLE {
            if to.contains(&Promoted) {
                assert!(*step == Step::Promote && matches!(from, Some(Verified | Promoted)), "{step} {from:?}");
            }
        }
    }

    #[test]
    fn the_docs_show_the_table_as_it_is() {
        let page = include_str!("../../../docs/lifecycle.md");
        let table = markdown_table();
        assert!(
            page.contains(&table),
            "docs/lifecycle.md's lifecycle table is out of date; paste this under \"The lifecycle\":\n{table}"
        );
    }

    #[test]
    fn the_table_has_one_row_per_step_and_status() {
        for (i, (step, from, _)) in TABLE.iter().enumerate() {
            assert!(!TABLE[..i].iter().any(|(s, f, _)| s == step && f == from), "{step} {from:?} twice");
        }
    }
}
