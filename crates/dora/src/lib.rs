//! DORA metrics of sluice deployments, from the ledger.
//!
//! Reads the file ledger (`sluice.ledger/v1`, JSON Lines) as a stream,
//! computes the five DORA metrics per app and environment with their DORA
//! 2024 tiers, pools each environment, keeps its recent deployment history,
//! and renders the result as JSON (schema `sluice.dora-report/v1`), Markdown
//! for `$GITHUB_STEP_SUMMARY` (always under 1 MB), a plain text table and an
//! SVG chart of the trend (by day for a short window, else by week). It never
//! reads a clock, the environment or the network, and never panics on
//! input: a damaged ledger line is an [`Error`] naming its line. The ledger is read by `sluice-core`'s rules
//! (the one reader of [`sluice_core::ledger`]); the parallel reader here only
//! parses faster, and hands every line its fast parser declines to
//! [`sluice_core::ledger::parse_line`].
//!
//! # Definitions
//!
//! Every entry is placed in time by `finished_at` (UTC). The window is
//! `since <= finished_at < until`; a missing bound is the start of the UTC
//! day of the first entry in scope, or the start of the UTC day after the
//! last one. Entries outside the window are still read as context: the
//! commits an earlier deployment already shipped, a rollback or hotfix after
//! the window that marks a deployment inside it as failed, the deployment
//! that ended a failure.
//!
//! - **Deployment attempt**: an entry with outcome `promoted`, `rolled_back`
//!   or `failed`. A `reverted` entry (a later rollback of a promoted release)
//!   is not an attempt, nor an `abandoned` one (a deployment that ended
//!   without ever moving traffic: a failed start, cancelled before the first
//!   stage, a lease freed deliberately): it is neither a deployment nor a
//!   failure, and only counted apart (`abandoned`) and listed in the history.
//! - **Deployment**: a `promoted` attempt. A redeploy of the same SHA is a
//!   deployment too.
//! - **Deployment frequency**: deployments / days of the window (per day),
//!   × 7 (per week), and the share of UTC weeks (Monday 00:00) touched by the
//!   window that hold at least one deployment. Rolled-back, failed and
//!   abandoned deployments and reverts never count.
//! - **Failed deployment** (needed intervention): a `rolled_back` or `failed`
//!   attempt (sluice returned traffic to stable); a deployment undone by a
//!   `reverted` entry (each revert undoes the most recent deployment still
//!   stable in that app and environment, so two reverts undo two
//!   deployments); a deployment that was the stable release when a hotfix
//!   attempt (any outcome) *started*, within `hotfix_window` (default 24 h)
//!   after it finished (the hotfix is checked against what was stable when
//!   it started, so a deployment that overlapped the hotfix and finished
//!   first is not the one it fixes); a planned deployment linked to an
//!   incident (`incident` set; on a hotfix, the incident is read as the one it
//!   fixes).
//! - **Change fail rate**: failed deployment attempts / deployment attempts.
//!   Attempts sluice rolled back count in both: they reached the environment
//!   (canary traffic) and needed intervention. Reverts and abandoned
//!   deployments count in neither.
//! - **Change lead time**: for each non-merge commit listed by a deployment in
//!   the window, `finished_at` of the deployment − commit time, counted only
//!   at the commit's first deployment to that app and environment (a redeploy
//!   of the same commits adds nothing) and only when positive. Median and
//!   p90. A deployment without commits contributes nothing; without any
//!   sample the metric is null ("no data").
//! - **Failed deployment recovery time**: for a rolled-back or failed attempt,
//!   its `finished_at − started_at` (traffic is back on stable when the entry
//!   ends); for a failed promoted deployment, from its `started_at` (when the
//!   change first reached the environment) to the earlier of the end of the
//!   revert that undid it and the next promoted deployment. Median and p90;
//!   failures with no recovery yet are counted as `unrecovered`, not averaged
//!   in.
//! - **Deployment rework rate**: promoted deployments of kind `hotfix` /
//!   promoted deployments.
//! - **Percentiles**: linear interpolation between closest ranks (type 7, as
//!   numpy and BigQuery's `PERCENTILE_CONT`).
//! - **No data** is `null` with a reason, never 0. A group with no entry in
//!   the window has every metric null; a group with attempts but no
//!   deployment has a deployment frequency of 0 (that is a measurement); so
//!   has a group whose only entries in the window are abandoned ones.
//! - **Tiers**: see [`tiers`]; per app and environment only.
//! - **Trends**: each metric per UTC week (`weekly`, Monday to Monday, for a
//!   window of at most [`MAX_TREND_WEEKS`] weeks) and, for a window touching
//!   at most [`MAX_DAILY_DAYS`] UTC days, per UTC day (`daily`). Every point
//!   says which share of its bucket lies in the window (`coverage`): the
//!   first and last buckets of a window that does not start and end at their
//!   boundaries are partial, and their counts cover only that part.

mod accumulate;
mod compute;
mod definitions;
mod fast;
mod file;
mod hash;
mod read;
pub mod render;
pub mod report;
mod span;
mod stats;
pub mod tiers;

pub use compute::{Options, compute};
pub use file::{report_file, report_reader};
pub use read::{Filter, LedgerReader, TornTail, open_ledger, read_ledger};
pub use render::markdown::{MARKDOWN_LIMIT, to_markdown};
pub use render::svg::to_svg;
pub use render::terminal::to_terminal;
pub use report::{REPORT_SCHEMA, Report, TIER_SOURCE};
/// Why a ledger could not be read: `sluice-core`'s error, the same for every
/// reader.
pub use sluice_core::ledger::LedgerError as Error;
pub use span::{MAX_DAILY_DAYS, MAX_TREND_WEEKS};

/// The report as pretty JSON with stable keys.
pub fn to_json(report: &Report) -> String {
    serde_json::to_string_pretty(report).expect("a report is plain data with string keys")
}

/// The JSON Schema of [`Report`].
pub fn json_schema() -> schemars::Schema {
    schemars::schema_for!(Report)
}
