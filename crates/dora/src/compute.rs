//! From ledger entries to a [`Report`]: the definitions of the five metrics.
//!
//! Entries are folded one at a time into a compact accumulator (a few dozen
//! bytes per entry, commits as 64-bit hashes), so a large ledger never sits
//! in memory as `LedgerEntry` values. Accumulators of parts of a ledger merge,
//! which is how [`crate::report_file`] reads on several threads.
//!
//! Nothing here reads a clock or the environment: a window without bounds is
//! derived from the entries themselves.

use std::borrow::Borrow;
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::Duration;

use jiff::Timestamp;
use jiff::civil::Date;
use jiff::tz::TimeZone;
use sluice_core::ledger::{ChangeKind, LedgerEntry, LedgerOutcome};

use crate::fast::{FastCommit, FastEntry};
use crate::hash::{self, FxMap, FxSet};
use crate::read::Filter;
use crate::report::{
    Counts, DurationStats, EnvironmentReport, Frequency, GroupReport, History, HistoryRow, Metric, Metrics,
    REPORT_SCHEMA, Ratio, Report, ReportOptions, TIER_SOURCE, WeekPoint, Window,
};
use crate::{stats, tiers};

const DAY_MS: i64 = 86_400_000;
const WEEK_MS: i64 = 7 * DAY_MS;
/// 1970-01-01 was a Thursday: the week of Monday 1969-12-29 is week 0.
const MONDAY_OFFSET_MS: i64 = 3 * DAY_MS;
/// Longer windows get no weekly trend (it would be larger than the report).
pub const MAX_TREND_WEEKS: u64 = 520;

/// How to compute a report.
#[derive(Clone, Debug, PartialEq)]
pub struct Options {
    /// Apps, environments (empty = all) and the window. The window selects by
    /// `finished_at`; entries outside it still count as context (an earlier
    /// deployment's commits, a later rollback of a deployment in the window).
    pub filter: Filter,
    /// A hotfix attempt that starts within this time after a promoted
    /// deployment finished marks that deployment as failed. Default 24 hours.
    pub hotfix_window: Duration,
    /// Rows of deployment history kept per environment. Default 20.
    pub history_limit: usize,
    /// Environments in promotion order (dev, tst, prd): the report lists them
    /// so; environments not named here follow, by name.
    pub environment_order: Vec<String>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            filter: Filter::default(),
            hotfix_window: Duration::from_secs(24 * 3600),
            history_limit: 20,
            environment_order: Vec::new(),
        }
    }
}

/// Computes the report from entries in any order.
///
/// `entries` may be a `Vec<LedgerEntry>`, a slice iterator, or a stream that
/// was already checked for errors.
pub fn compute<I>(entries: I, opts: &Options) -> Report
where
    I: IntoIterator,
    I::Item: Borrow<LedgerEntry>,
{
    let mut acc = Accumulator::new(opts);
    for (seq, entry) in entries.into_iter().enumerate() {
        acc.push(entry.borrow(), seq as u64);
    }
    acc.finish()
}

#[derive(Clone, Copy, Debug)]
struct Attempt {
    /// Position in the input, for a stable order of simultaneous entries.
    seq: u64,
    started: i64,
    finished: i64,
    outcome: LedgerOutcome,
    hotfix: bool,
    incident: bool,
    /// Range in the group's `commits`.
    commits_start: u32,
    commits_len: u32,
}

struct GroupAcc {
    app: u32,
    env: u32,
    attempts: Vec<Attempt>,
    /// (hash of the SHA, commit time in ms) of non-merge commits of promoted
    /// deployments.
    commits: Vec<(u64, i64)>,
}

type HistoryKey = (Timestamp, u64);

/// A history row and its place in time (`started_at`, then position).
struct Keyed {
    key: HistoryKey,
    row: HistoryRow,
}

impl PartialEq for Keyed {
    fn eq(&self, other: &Self) -> bool {
        self.key == other.key
    }
}
impl Eq for Keyed {}
impl PartialOrd for Keyed {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Keyed {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.key.cmp(&other.key)
    }
}

/// The most recent rows of one environment: a min-heap of at most `limit`
/// rows. A newer entry overwrites the oldest row in place, reusing its
/// strings, so a long ledger in time order allocates nothing here.
#[derive(Default)]
struct HistoryBuf {
    heap: BinaryHeap<Reverse<Keyed>>,
}

impl HistoryBuf {
    fn offer<V: EntryView>(&mut self, key: HistoryKey, e: &V, limit: usize) {
        if self.heap.len() < limit {
            self.heap.push(Reverse(Keyed { key, row: e.history_row() }));
        } else if let Some(mut oldest) = self.heap.peek_mut()
            && key > oldest.0.key
        {
            oldest.0.key = key;
            e.fill_history_row(&mut oldest.0.row);
        }
    }

    fn absorb(&mut self, other: HistoryBuf, limit: usize) {
        for Reverse(k) in other.heap {
            if self.heap.len() < limit {
                self.heap.push(Reverse(k));
            } else if let Some(mut oldest) = self.heap.peek_mut()
                && k.key > oldest.0.key
            {
                *oldest = Reverse(k);
            }
        }
    }

    /// Newest first.
    fn into_rows(self) -> Vec<HistoryRow> {
        let mut rows: Vec<Keyed> = self.heap.into_iter().map(|r| r.0).collect();
        rows.sort_unstable_by_key(|k| Reverse(k.key));
        rows.into_iter().map(|k| k.row).collect()
    }
}

/// The state of a report being computed.
pub(crate) struct Accumulator<'o> {
    opts: &'o Options,
    app_ids: FxMap<String, u32>,
    apps: Vec<String>,
    env_ids: FxMap<String, u32>,
    envs: Vec<String>,
    group_ids: FxMap<(u32, u32), usize>,
    groups: Vec<GroupAcc>,
    /// Indexed by environment id.
    history: Vec<HistoryBuf>,
    /// Range of `finished_at` (ms) over the entries in scope.
    first: Option<i64>,
    last: Option<i64>,
}

fn intern(ids: &mut FxMap<String, u32>, names: &mut Vec<String>, name: &str) -> u32 {
    if let Some(&id) = ids.get(name) {
        return id;
    }
    let id = u32::try_from(names.len()).expect("fewer than 4 billion apps or environments");
    ids.insert(name.to_owned(), id);
    names.push(name.to_owned());
    id
}

/// What the accumulator reads of an entry: a parsed [`LedgerEntry`], or a
/// line read in place by the fast parser.
pub(crate) trait EntryView {
    fn app(&self) -> &str;
    fn environment(&self) -> &str;
    fn outcome(&self) -> LedgerOutcome;
    fn change(&self) -> ChangeKind;
    fn has_incident(&self) -> bool;
    fn started_at(&self) -> Timestamp;
    fn finished_at(&self) -> Timestamp;
    /// (SHA, commit time, merge) of each commit.
    fn commits(&self) -> impl Iterator<Item = (&str, Timestamp, bool)>;
    /// Overwrites `row` with this entry, reusing its strings' memory.
    fn fill_history_row(&self, row: &mut HistoryRow);

    fn history_row(&self) -> HistoryRow {
        let mut row = HistoryRow {
            id: String::new(),
            app: String::new(),
            version: String::new(),
            commit: None,
            started_at: Timestamp::UNIX_EPOCH,
            duration_seconds: 0.0,
            strategy: String::new(),
            triggered_by: None,
            change: ChangeKind::Planned,
            outcome: LedgerOutcome::Promoted,
            reason: None,
        };
        self.fill_history_row(&mut row);
        row
    }
}

fn set(dst: &mut String, src: &str) {
    dst.clear();
    dst.push_str(src);
}

fn set_opt(dst: &mut Option<String>, src: Option<&str>) {
    match (dst.as_mut(), src) {
        (Some(d), Some(s)) => set(d, s),
        (_, s) => *dst = s.map(str::to_owned),
    }
}

impl EntryView for LedgerEntry {
    fn app(&self) -> &str {
        &self.app
    }
    fn environment(&self) -> &str {
        &self.environment
    }
    fn outcome(&self) -> LedgerOutcome {
        self.outcome
    }
    fn change(&self) -> ChangeKind {
        self.change
    }
    fn has_incident(&self) -> bool {
        self.incident.is_some()
    }
    fn started_at(&self) -> Timestamp {
        self.started_at
    }
    fn finished_at(&self) -> Timestamp {
        self.finished_at
    }
    fn commits(&self) -> impl Iterator<Item = (&str, Timestamp, bool)> {
        self.commits.iter().map(|c| (c.sha.as_str(), c.time, c.merge))
    }
    fn fill_history_row(&self, row: &mut HistoryRow) {
        set(&mut row.id, &self.id);
        set(&mut row.app, &self.app);
        set(&mut row.version, &self.version);
        set_opt(&mut row.commit, self.commit.as_deref());
        row.started_at = self.started_at;
        row.duration_seconds = seconds_between(self.started_at, self.finished_at);
        set(&mut row.strategy, &self.strategy);
        set_opt(&mut row.triggered_by, self.triggered_by.as_deref());
        row.change = self.change;
        row.outcome = self.outcome;
        set_opt(&mut row.reason, self.reason.as_deref());
    }
}

/// A line read by the fast parser, with its commits.
pub(crate) struct FastView<'x, 'a> {
    pub entry: &'x FastEntry<'a>,
    pub commits: &'x [FastCommit<'a>],
}

impl EntryView for FastView<'_, '_> {
    fn app(&self) -> &str {
        self.entry.app
    }
    fn environment(&self) -> &str {
        self.entry.environment
    }
    fn outcome(&self) -> LedgerOutcome {
        self.entry.outcome
    }
    fn change(&self) -> ChangeKind {
        self.entry.change
    }
    fn has_incident(&self) -> bool {
        self.entry.incident.is_some()
    }
    fn started_at(&self) -> Timestamp {
        self.entry.started_at
    }
    fn finished_at(&self) -> Timestamp {
        self.entry.finished_at
    }
    fn commits(&self) -> impl Iterator<Item = (&str, Timestamp, bool)> {
        self.commits.iter().copied()
    }
    fn fill_history_row(&self, row: &mut HistoryRow) {
        let e = self.entry;
        set(&mut row.id, e.id);
        set(&mut row.app, e.app);
        set(&mut row.version, e.version);
        set_opt(&mut row.commit, e.commit);
        row.started_at = e.started_at;
        row.duration_seconds = seconds_between(e.started_at, e.finished_at);
        set(&mut row.strategy, e.strategy);
        set_opt(&mut row.triggered_by, e.triggered_by);
        row.change = e.change;
        row.outcome = e.outcome;
        set_opt(&mut row.reason, e.reason);
    }
}

fn seconds_between(a: Timestamp, b: Timestamp) -> f64 {
    (b.as_millisecond() - a.as_millisecond()) as f64 / 1000.0
}

impl<'o> Accumulator<'o> {
    pub(crate) fn new(opts: &'o Options) -> Self {
        Self {
            opts,
            app_ids: FxMap::default(),
            apps: Vec::new(),
            env_ids: FxMap::default(),
            envs: Vec::new(),
            group_ids: FxMap::default(),
            groups: Vec::new(),
            history: Vec::new(),
            first: None,
            last: None,
        }
    }

    fn group(&mut self, app: u32, env: u32) -> usize {
        let groups = &mut self.groups;
        *self.group_ids.entry((app, env)).or_insert_with(|| {
            groups.push(GroupAcc { app, env, attempts: Vec::new(), commits: Vec::new() });
            groups.len() - 1
        })
    }

    /// Folds in one entry; `seq` orders entries that finished at the same
    /// instant (their position in the ledger).
    pub(crate) fn push<V: EntryView>(&mut self, e: &V, seq: u64) {
        let filter = &self.opts.filter;
        if !filter.in_scope(e.app(), e.environment()) {
            return;
        }
        let (started_at, finished_at, outcome) = (e.started_at(), e.finished_at(), e.outcome());
        let in_window = filter.in_window(finished_at);
        let app = intern(&mut self.app_ids, &mut self.apps, e.app());
        let env = intern(&mut self.env_ids, &mut self.envs, e.environment());
        let gi = self.group(app, env);
        let finished = finished_at.as_millisecond();
        self.first = Some(self.first.map_or(finished, |f| f.min(finished)));
        self.last = Some(self.last.map_or(finished, |l| l.max(finished)));

        let group = &mut self.groups[gi];
        let commits_start = u32::try_from(group.commits.len()).unwrap_or(u32::MAX);
        if outcome == LedgerOutcome::Promoted {
            group
                .commits
                .extend(e.commits().filter(|c| !c.2).map(|(sha, time, _)| (hash::sha(sha), time.as_millisecond())));
        }
        let commits_len = u32::try_from(group.commits.len()).unwrap_or(u32::MAX) - commits_start;
        group.attempts.push(Attempt {
            seq,
            started: started_at.as_millisecond(),
            finished,
            outcome,
            hotfix: e.change() == ChangeKind::Hotfix,
            incident: e.has_incident(),
            commits_start,
            commits_len,
        });

        let limit = self.opts.history_limit;
        if in_window && limit > 0 {
            let env = env as usize;
            if self.history.len() <= env {
                self.history.resize_with(env + 1, HistoryBuf::default);
            }
            self.history[env].offer((started_at, seq), e, limit);
        }
    }

    /// Adds what another accumulator (of another part of the ledger) saw.
    pub(crate) fn merge(&mut self, other: Accumulator<'_>) {
        let app_map: Vec<u32> = other.apps.iter().map(|a| intern(&mut self.app_ids, &mut self.apps, a)).collect();
        let env_map: Vec<u32> = other.envs.iter().map(|e| intern(&mut self.env_ids, &mut self.envs, e)).collect();
        for g in other.groups {
            let gi = self.group(app_map[g.app as usize], env_map[g.env as usize]);
            let mine = &mut self.groups[gi];
            let offset = u32::try_from(mine.commits.len()).unwrap_or(u32::MAX);
            mine.commits.extend(g.commits);
            mine.attempts.extend(g.attempts.into_iter().map(|mut a| {
                a.commits_start = a.commits_start.saturating_add(offset);
                a
            }));
        }
        let limit = self.opts.history_limit;
        for (env, buf) in other.history.into_iter().enumerate() {
            if buf.heap.is_empty() {
                continue;
            }
            let env = env_map[env] as usize;
            if self.history.len() <= env {
                self.history.resize_with(env + 1, HistoryBuf::default);
            }
            self.history[env].absorb(buf, limit);
        }
        self.first = match (self.first, other.first) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        self.last = match (self.last, other.last) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
    }

    pub(crate) fn finish(mut self) -> Report {
        let opts = self.opts;
        let filter = &opts.filter;
        let since = filter.since.map(|t| t.as_millisecond()).or(self.first.map(floor_day));
        let until = filter.until.map(|t| t.as_millisecond()).or(self.last.map(|l| floor_day(l).saturating_add(DAY_MS)));
        let mut notes = Vec::new();

        let span = match (since, until) {
            (Some(since), Some(until)) => Some(Span::new(since, until)),
            _ => None,
        };
        let window = span.as_ref().map(|s| Window {
            since: timestamp(s.since),
            until: timestamp(s.until),
            days: s.days(),
            weeks: s.weeks,
            since_derived: filter.since.is_none(),
            until_derived: filter.until.is_none(),
        });
        match &span {
            None => notes.push("no ledger entries in scope: no window to report on".to_owned()),
            Some(s) if s.weeks == 0 => notes.push("the window is empty (until is not after since)".to_owned()),
            Some(s) if !s.trend => {
                notes.push(format!("no weekly trend: the window spans {} weeks, more than {MAX_TREND_WEEKS}", s.weeks))
            }
            Some(_) => {}
        }
        let span = span.unwrap_or(Span::new(0, 0));
        let week_dates: Vec<Date> =
            (0..span.trend_weeks()).map(|k| date_of(span.first_week_start + k as i64 * WEEK_MS)).collect();

        // Groups in a stable order: environment (promotion order first, then
        // by name), then app.
        let rank = |env: &str| opts.environment_order.iter().position(|e| e == env).unwrap_or(usize::MAX);
        let mut order: Vec<usize> = (0..self.groups.len()).collect();
        order.sort_by(|&a, &b| {
            let (ga, gb) = (&self.groups[a], &self.groups[b]);
            let (ea, eb) = (&self.envs[ga.env as usize], &self.envs[gb.env as usize]);
            (rank(ea), ea, &self.apps[ga.app as usize]).cmp(&(rank(eb), eb, &self.apps[gb.app as usize]))
        });
        let hotfix_window_ms = i64::try_from(opts.hotfix_window.as_millis()).unwrap_or(i64::MAX);

        let mut groups = Vec::with_capacity(order.len());
        let mut environments: Vec<EnvironmentReport> = Vec::new();
        let mut env_facts: Option<(u32, Facts, u64)> = None;
        let mut seen = FxSet::default();
        for gi in order {
            let group = std::mem::replace(
                &mut self.groups[gi],
                GroupAcc { app: 0, env: 0, attempts: Vec::new(), commits: Vec::new() },
            );
            let (app, env) = (group.app, group.env);
            let facts = analyse(group, &span, hotfix_window_ms, &mut seen);
            let (metrics, weekly) = metrics_of(&facts, &span, &week_dates, true);
            groups.push(GroupReport {
                app: self.apps[app as usize].clone(),
                environment: self.envs[env as usize].clone(),
                counts: facts.counts.clone(),
                metrics,
                weekly,
            });
            match &mut env_facts {
                Some((e, pooled, apps)) if *e == env => {
                    pooled.absorb(facts);
                    *apps += 1;
                }
                _ => {
                    if let Some((e, pooled, apps)) = env_facts.take() {
                        environments.push(self.environment_report(e, pooled, apps, &span, &week_dates));
                    }
                    env_facts = Some((env, facts, 1));
                }
            }
        }
        if let Some((e, pooled, apps)) = env_facts.take() {
            environments.push(self.environment_report(e, pooled, apps, &span, &week_dates));
        }

        Report {
            schema: REPORT_SCHEMA.to_owned(),
            tier_source: TIER_SOURCE.to_owned(),
            window,
            options: ReportOptions {
                apps: filter.apps.clone(),
                environments: filter.environments.clone(),
                hotfix_window_seconds: opts.hotfix_window.as_secs(),
                history_limit: opts.history_limit as u64,
            },
            groups,
            environments,
            notes,
        }
    }

    fn environment_report(
        &mut self,
        env: u32,
        mut facts: Facts,
        apps: u64,
        span: &Span,
        week_dates: &[Date],
    ) -> EnvironmentReport {
        facts.deploy_weeks.sort_unstable();
        facts.deploy_weeks.dedup();
        let (metrics, weekly) = metrics_of(&facts, span, week_dates, false);
        let rows = self.history.get_mut(env as usize).map(std::mem::take).unwrap_or_default().into_rows();
        let c = &facts.counts;
        EnvironmentReport {
            environment: self.envs[env as usize].clone(),
            apps,
            counts: c.clone(),
            metrics,
            weekly,
            history: History {
                total: c.entries,
                left_out: c.entries.saturating_sub(rows.len() as u64),
                rows,
                success_rate: (c.attempts > 0).then(|| c.deployments as f64 / c.attempts as f64),
                average_duration_seconds: (c.attempts > 0)
                    .then(|| facts.duration_sum_ms as f64 / 1000.0 / c.attempts as f64),
            },
        }
    }
}

/// The window in milliseconds, and its UTC weeks.
struct Span {
    since: i64,
    until: i64,
    /// Absolute index of the week holding `since`.
    first_week: i64,
    first_week_start: i64,
    weeks: u64,
    /// Whether weekly points are computed.
    trend: bool,
}

fn week_of(ms: i64) -> i64 {
    (ms.saturating_add(MONDAY_OFFSET_MS)).div_euclid(WEEK_MS)
}

fn floor_day(ms: i64) -> i64 {
    ms.div_euclid(DAY_MS) * DAY_MS
}

fn timestamp(ms: i64) -> Timestamp {
    Timestamp::from_millisecond(ms).unwrap_or(if ms < 0 { Timestamp::MIN } else { Timestamp::MAX })
}

fn date_of(ms: i64) -> Date {
    timestamp(ms).to_zoned(TimeZone::UTC).date()
}

impl Span {
    fn new(since: i64, until: i64) -> Self {
        let first_week = week_of(since);
        let weeks = if until > since { u64::try_from(week_of(until - 1) - first_week + 1).unwrap_or(0) } else { 0 };
        Span {
            since,
            until,
            first_week,
            first_week_start: first_week * WEEK_MS - MONDAY_OFFSET_MS,
            weeks,
            trend: weeks <= MAX_TREND_WEEKS,
        }
    }

    fn contains(&self, ms: i64) -> bool {
        ms >= self.since && ms < self.until
    }

    fn days(&self) -> f64 {
        (self.until - self.since).max(0) as f64 / DAY_MS as f64
    }

    fn trend_weeks(&self) -> usize {
        if self.trend { self.weeks as usize } else { 0 }
    }

    /// Index of `ms`'s week among the trend's weeks (0 without a trend).
    fn trend_index(&self, ms: i64) -> u32 {
        if self.trend { u32::try_from(week_of(ms) - self.first_week).unwrap_or(0) } else { 0 }
    }
}

#[derive(Clone, Copy, Default)]
struct WeekCounts {
    deployments: u64,
    attempts: u64,
    failed: u64,
    hotfixes: u64,
}

/// What one group (or an environment's pooled groups) did in the window.
#[derive(Default)]
struct Facts {
    counts: Counts,
    /// Sum of `finished - started` over attempts.
    duration_sum_ms: i64,
    /// Absolute week indices with a deployment, distinct.
    deploy_weeks: Vec<i64>,
    /// Change lead times (ms) and the trend week of their deployment.
    lead: Vec<i64>,
    lead_weeks: Vec<u32>,
    /// Recovery times (ms) and the trend week of the failed deployment.
    recovery: Vec<i64>,
    recovery_weeks: Vec<u32>,
    weekly: Vec<WeekCounts>,
}

impl Facts {
    fn absorb(&mut self, other: Facts) {
        let (a, b) = (&mut self.counts, &other.counts);
        a.entries += b.entries;
        a.attempts += b.attempts;
        a.deployments += b.deployments;
        a.rolled_back += b.rolled_back;
        a.failed += b.failed;
        a.reverted += b.reverted;
        a.hotfix_deployments += b.hotfix_deployments;
        a.failed_deployments += b.failed_deployments;
        a.unrecovered += b.unrecovered;
        self.duration_sum_ms += other.duration_sum_ms;
        self.deploy_weeks.extend(other.deploy_weeks);
        self.lead.extend(other.lead);
        self.lead_weeks.extend(other.lead_weeks);
        self.recovery.extend(other.recovery);
        self.recovery_weeks.extend(other.recovery_weeks);
        for (w, o) in self.weekly.iter_mut().zip(other.weekly) {
            w.deployments += o.deployments;
            w.attempts += o.attempts;
            w.failed += o.failed;
            w.hotfixes += o.hotfixes;
        }
    }
}

/// Applies the definitions to one app in one environment.
fn analyse(mut g: GroupAcc, span: &Span, hotfix_window_ms: i64, seen: &mut FxSet<u64>) -> Facts {
    let atts = &mut g.attempts;
    atts.sort_unstable_by_key(|a| (a.finished, a.started, a.seq));
    let n = atts.len();
    let mut facts = Facts { weekly: vec![WeekCounts::default(); span.trend_weeks()], ..Facts::default() };

    // Forward: which deployments failed, when reverts ended, lead times.
    let mut failed = vec![false; n];
    let mut revert_end: Vec<Option<i64>> = vec![None; n];
    let mut stable: Vec<usize> = Vec::new();
    seen.clear();
    for i in 0..n {
        let a = atts[i];
        let is_attempt = a.outcome != LedgerOutcome::Reverted;
        if a.hotfix
            && is_attempt
            && let Some(&top) = stable.last()
        {
            let gap = a.started - atts[top].finished;
            if (0..=hotfix_window_ms).contains(&gap) {
                failed[top] = true;
            }
        }
        match a.outcome {
            LedgerOutcome::Promoted => {
                if a.incident && !a.hotfix {
                    failed[i] = true;
                }
                let start = a.commits_start as usize;
                let commits = g.commits.get(start..start + a.commits_len as usize).unwrap_or(&[]);
                let counted = span.contains(a.finished);
                for &(sha, time) in commits {
                    // A commit is a change once: at its first deployment here.
                    if seen.insert(sha) {
                        let lead = a.finished - time;
                        if counted && lead > 0 {
                            facts.lead.push(lead);
                            facts.lead_weeks.push(span.trend_index(a.finished));
                        }
                    }
                }
                stable.push(i);
            }
            LedgerOutcome::RolledBack | LedgerOutcome::Failed => failed[i] = true,
            LedgerOutcome::Abandoned => {}
            LedgerOutcome::Reverted => {
                if let Some(top) = stable.pop() {
                    failed[top] = true;
                    revert_end[top] = Some(a.finished);
                }
            }
        }
    }

    // Backward: counts in the window, recovery (needs the next deployment).
    let mut next_promoted: Option<i64> = None;
    for i in (0..n).rev() {
        let a = atts[i];
        if span.contains(a.finished) {
            let c = &mut facts.counts;
            c.entries += 1;
            let week = span.trend_index(a.finished) as usize;
            if a.outcome == LedgerOutcome::Abandoned {
                continue;
            }
            let is_attempt = a.outcome != LedgerOutcome::Reverted;
            match a.outcome {
                LedgerOutcome::Promoted => {
                    c.deployments += 1;
                    if a.hotfix {
                        c.hotfix_deployments += 1;
                    }
                    let w = week_of(a.finished);
                    if facts.deploy_weeks.last() != Some(&w) {
                        facts.deploy_weeks.push(w);
                    }
                }
                LedgerOutcome::RolledBack => c.rolled_back += 1,
                LedgerOutcome::Failed => c.failed += 1,
                LedgerOutcome::Reverted => c.reverted += 1,
                LedgerOutcome::Abandoned => {}
            }
            if is_attempt {
                c.attempts += 1;
                facts.duration_sum_ms += a.finished - a.started;
                if failed[i] {
                    c.failed_deployments += 1;
                }
            }
            if let Some(wc) = facts.weekly.get_mut(week)
                && is_attempt
            {
                wc.attempts += 1;
                if a.outcome == LedgerOutcome::Promoted {
                    wc.deployments += 1;
                    if a.hotfix {
                        wc.hotfixes += 1;
                    }
                }
                if failed[i] {
                    wc.failed += 1;
                }
            }
            if is_attempt && failed[i] {
                let end = match a.outcome {
                    LedgerOutcome::Promoted => match (revert_end[i], next_promoted) {
                        (Some(r), Some(p)) => Some(r.min(p)),
                        (r, p) => r.or(p),
                    },
                    _ => Some(a.finished),
                };
                match end {
                    Some(end) if end >= a.started => {
                        facts.recovery.push(end - a.started);
                        facts.recovery_weeks.push(week as u32);
                    }
                    _ => c.unrecovered += 1,
                }
            }
        }
        if a.outcome == LedgerOutcome::Promoted {
            next_promoted = Some(a.finished);
        }
    }
    facts
}

/// Weekly medians: counting sort of the samples by week, then a median per week.
fn weekly_medians(values: &[i64], weeks: &[u32], n_weeks: usize) -> Vec<Option<f64>> {
    let mut offsets = vec![0usize; n_weeks + 1];
    for &w in weeks {
        if let Some(o) = offsets.get_mut(w as usize + 1) {
            *o += 1;
        }
    }
    for k in 1..offsets.len() {
        offsets[k] += offsets[k - 1];
    }
    let mut fill = offsets.clone();
    let mut buckets = vec![0i64; values.len()];
    for (&v, &w) in values.iter().zip(weeks) {
        if let Some(pos) = fill.get_mut(w as usize) {
            buckets[*pos] = v;
            *pos += 1;
        }
    }
    (0..n_weeks).map(|k| stats::quantile(&mut buckets[offsets[k]..offsets[k + 1]], 1, 2).map(|m| m / 1000.0)).collect()
}

fn duration_stats(values: &mut [i64]) -> Option<DurationStats> {
    let (m, p) = stats::median_p90(values)?;
    Some(DurationStats { median_seconds: m / 1000.0, p90_seconds: p / 1000.0, samples: values.len() as u64 })
}

fn ratio(numerator: u64, denominator: u64) -> Ratio {
    Ratio { rate: numerator as f64 / denominator as f64, numerator, denominator }
}

fn metrics_of(f: &Facts, span: &Span, week_dates: &[Date], with_tiers: bool) -> (Metrics, Vec<WeekPoint>) {
    let c = f.counts.clone();
    let tier = |t| if with_tiers { Some(t) } else { None };

    let n_weeks = week_dates.len();
    let lead_w = weekly_medians(&f.lead, &f.lead_weeks, n_weeks);
    let rec_w = weekly_medians(&f.recovery, &f.recovery_weeks, n_weeks);
    let weekly = week_dates
        .iter()
        .enumerate()
        .map(|(k, &date)| {
            let w = f.weekly.get(k).copied().unwrap_or_default();
            WeekPoint {
                week_start: date,
                deployments: w.deployments,
                attempts: w.attempts,
                change_lead_time_median_seconds: lead_w[k],
                change_fail_rate: (w.attempts > 0).then(|| w.failed as f64 / w.attempts as f64),
                recovery_time_median_seconds: rec_w[k],
                rework_rate: (w.deployments > 0).then(|| w.hotfixes as f64 / w.deployments as f64),
            }
        })
        .collect();

    let empty = if span.weeks == 0 {
        Some("the window is empty")
    } else if c.entries == 0 {
        Some("no ledger entries in the window")
    } else {
        None
    };
    fn none<T>(empty: Option<&str>, why: &str) -> Metric<T> {
        Metric::none(empty.unwrap_or(why))
    }

    let deployment_frequency = if empty.is_some() {
        none(empty, "")
    } else {
        let days = span.days();
        let per_day = c.deployments as f64 / days;
        let weeks_with = f.deploy_weeks.len() as u64;
        Metric::some(
            Frequency {
                deployments: c.deployments,
                per_day,
                per_week: per_day * 7.0,
                weeks_with_deployment: weeks_with,
                weeks: span.weeks,
                share_of_weeks_with_deployment: weeks_with as f64 / span.weeks as f64,
            },
            tier(tiers::deployment_frequency(per_day)),
        )
    };

    let change_lead_time = if empty.is_some() || c.deployments == 0 {
        none(empty, "no promoted deployment in the window")
    } else {
        // On a copy: the samples stay paired with their weeks for pooling.
        match duration_stats(&mut f.lead.clone()) {
            Some(s) => {
                let t = tiers::change_lead_time(s.median_seconds);
                Metric::some(s, tier(t))
            }
            None => none(
                None,
                "no promoted deployment in the window brought a new commit with a commit time \
                 (merge commits and non-positive lead times are left out)",
            ),
        }
    };

    let change_fail_rate = if empty.is_some() || c.attempts == 0 {
        none(empty, "no deployment attempt in the window")
    } else {
        let r = ratio(c.failed_deployments, c.attempts);
        let t = tiers::change_fail_rate(r.rate);
        Metric::some(r, tier(t))
    };

    let failed_deployment_recovery_time = if empty.is_some() || c.failed_deployments == 0 {
        none(empty, "no failed deployment in the window")
    } else {
        match duration_stats(&mut f.recovery.clone()) {
            Some(s) => {
                let t = tiers::recovery_time(s.median_seconds);
                Metric::some(s, tier(t))
            }
            None => Metric::none(format!(
                "none of the {} failed deployments in the window has recovered yet",
                c.failed_deployments
            )),
        }
    };

    let deployment_rework_rate = if empty.is_some() || c.deployments == 0 {
        none(empty, "no promoted deployment in the window")
    } else {
        Metric::some(ratio(c.hotfix_deployments, c.deployments), None)
    };

    (
        Metrics {
            deployment_frequency,
            change_lead_time,
            change_fail_rate,
            failed_deployment_recovery_time,
            deployment_rework_rate,
        },
        weekly,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weeks_start_on_monday_utc() {
        // 2024-01-01 was a Monday.
        let monday: Timestamp = "2024-01-01T00:00:00Z".parse().expect("valid");
        let sunday: Timestamp = "2023-12-31T23:59:59Z".parse().expect("valid");
        assert_eq!(week_of(monday.as_millisecond()), week_of(sunday.as_millisecond()) + 1);
        let s = Span::new(monday.as_millisecond(), monday.as_millisecond() + WEEK_MS);
        assert_eq!(s.weeks, 1);
        assert_eq!(date_of(s.first_week_start).to_string(), "2024-01-01");
        let s = Span::new(monday.as_millisecond() - 1, monday.as_millisecond() + 1);
        assert_eq!(s.weeks, 2);
    }
}
