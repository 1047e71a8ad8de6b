//! The plumbing between ledger entries and the definitions: entries are
//! folded one at a time into a compact accumulator (a few dozen bytes per
//! entry, commits as 64-bit hashes, names interned), so a large ledger never
//! sits in memory as `LedgerEntry` values. Accumulators of parts of a ledger
//! merge, which is how [`crate::report_file`] reads on several threads.
//! [`Accumulator::finish`] then hands each app and environment to the
//! definitions and lays out the report.
//!
//! The DORA definitions themselves are in [`crate::definitions`]; nothing
//! here decides what an entry means for a metric. Nothing here reads a clock
//! or the environment: a window without bounds is derived from the entries.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use jiff::Timestamp;
use sluice_core::ledger::{ChangeKind, LedgerEntry, LedgerOutcome};

use crate::compute::Options;
use crate::definitions::{Entry, Measurements, Timeline};
use crate::fast::{FastCommit, FastEntry};
use crate::hash::{self, FxMap, FxSet};
use crate::report::{
    EnvironmentReport, GroupReport, History, HistoryRow, REPORT_SCHEMA, Report, ReportOptions, TIER_SOURCE, Window,
};
use crate::span::{DAY_MS, MAX_TREND_WEEKS, Span, floor_day, timestamp};

/// One app in one environment, as read so far.
#[derive(Default)]
struct GroupAcc {
    app: u32,
    env: u32,
    entries: Vec<Entry>,
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
            failed_target: None,
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
        set_opt(&mut row.failed_target, failed_target(self));
    }
}

/// The target of an environment of several that stopped the deployment:
/// the first, in wave order, whose last verdict was `fail` or `error`; else
/// the one the reason names as the waves runner writes it (`target NAME in
/// wave N: ...`, also after a prefix such as `a provider failed during the
/// canary: `). None for a promoted deployment or one without targets.
pub(crate) fn failed_target(e: &LedgerEntry) -> Option<&str> {
    if e.targets.is_empty() || e.outcome == LedgerOutcome::Promoted {
        return None;
    }
    let mut by_wave: Vec<_> = e.targets.iter().collect();
    by_wave.sort_by_key(|t| t.wave);
    let judged = by_wave.iter().find(|t| matches!(t.verdict.as_deref(), Some("fail" | "error")));
    if let Some(t) = judged {
        return Some(&t.name);
    }
    let reason = e.reason.as_deref()?;
    by_wave.iter().map(|t| t.name.as_str()).find(|name| reason.contains(&format!("target {name} in wave ")))
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
        // The fast parser reads no line with `targets` (it hands those to
        // serde), so no target stopped this one.
        row.failed_target = None;
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
            groups.push(GroupAcc { app, env, entries: Vec::new(), commits: Vec::new() });
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
        group.entries.push(Entry {
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
            mine.entries.extend(g.entries.into_iter().map(|mut a| {
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

    /// The report: the definitions applied to each app and environment,
    /// pooled per environment, in a stable order.
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
        let mut pooled: Option<(u32, Measurements, u64)> = None;
        let mut seen = FxSet::default();
        for gi in order {
            let mut group = std::mem::take(&mut self.groups[gi]);
            let (app, env) = (group.app, group.env);
            let timeline = Timeline::new(&mut group.entries, &group.commits, &span);
            let measured = Measurements::of(&timeline, hotfix_window_ms, &mut seen);
            let (metrics, trends) = measured.metrics(&span, true);
            groups.push(GroupReport {
                app: self.apps[app as usize].clone(),
                environment: self.envs[env as usize].clone(),
                counts: measured.counts.clone(),
                metrics,
                weekly: trends.weekly,
                daily: trends.daily,
            });
            match &mut pooled {
                Some((e, all, apps)) if *e == env => {
                    all.absorb(measured);
                    *apps += 1;
                }
                _ => {
                    if let Some((e, all, apps)) = pooled.take() {
                        environments.push(self.environment_report(e, &all, apps, &span));
                    }
                    pooled = Some((env, measured, 1));
                }
            }
        }
        if let Some((e, all, apps)) = pooled.take() {
            environments.push(self.environment_report(e, &all, apps, &span));
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
            partial: None,
        }
    }

    /// An environment: its apps pooled (no tiers), and its history.
    fn environment_report(&mut self, env: u32, pooled: &Measurements, apps: u64, span: &Span) -> EnvironmentReport {
        let (metrics, trends) = pooled.metrics(span, false);
        let rows = self.history.get_mut(env as usize).map(std::mem::take).unwrap_or_default().into_rows();
        let c = &pooled.counts;
        EnvironmentReport {
            environment: self.envs[env as usize].clone(),
            apps,
            counts: c.clone(),
            metrics,
            weekly: trends.weekly,
            daily: trends.daily,
            history: History {
                total: c.entries,
                left_out: c.entries.saturating_sub(rows.len() as u64),
                rows,
                success_rate: (c.attempts > 0).then(|| c.deployments as f64 / c.attempts as f64),
                average_duration_seconds: (c.attempts > 0)
                    .then(|| pooled.duration_sum_ms as f64 / 1000.0 / c.attempts as f64),
            },
        }
    }
}
