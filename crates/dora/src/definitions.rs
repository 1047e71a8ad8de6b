//! The DORA definitions as sluice applies them, in the order of docs/dora.md's
//! table: what a deployment attempt is ([`Entry`]), then one function per
//! metric, named after it (deployment frequency, change lead time, change
//! fail rate, failed deployment recovery time, deployment rework rate), with
//! what a failed deployment is just before the two metrics that need it.
//!
//! Each function reads one app in one environment — a [`Timeline`], its
//! ledger entries in the order they finished — and returns what its metric
//! measured in a form that pools: an environment adds up its apps'
//! measurements. The measurement's `metric` turns it into the reported
//! value, or the reason there is none.
//!
//! Reading the ledger, interning names, merging the partial results of
//! threads and ordering groups is `accumulate`'s: nothing here knows about
//! files, threads or the report's layout, and nothing here reads a clock.

use jiff::civil::Date;
use sluice_core::ledger::LedgerOutcome;

use crate::hash::FxSet;
use crate::report::{
    Counts, DayPoint, DurationStats, Frequency, Metric, Metrics, Ratio, Tier, TrendFigures, WeekPoint,
};
use crate::span::{Span, week_of};
use crate::{stats, tiers};

/// A ledger entry as the definitions read it. Times are milliseconds.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Entry {
    /// Position in the input, for a stable order of simultaneous entries.
    pub seq: u64,
    pub started: i64,
    pub finished: i64,
    pub outcome: LedgerOutcome,
    pub hotfix: bool,
    pub incident: bool,
    /// Range in the group's commits.
    pub commits_start: u32,
    pub commits_len: u32,
}

impl Entry {
    /// A deployment attempt: it reached the environment (a promotion, or an
    /// attempt sluice rolled back or that failed). A revert is not one, nor
    /// an abandoned deployment (it never moved traffic).
    fn is_attempt(&self) -> bool {
        matches!(self.outcome, LedgerOutcome::Promoted | LedgerOutcome::RolledBack | LedgerOutcome::Failed)
    }

    /// A deployment: a promoted attempt (a redeploy of the same SHA too).
    fn is_deployment(&self) -> bool {
        self.outcome == LedgerOutcome::Promoted
    }
}

/// One app in one environment: its entries in the order they finished
/// (then started, then their place in the ledger), the window and its weeks.
pub(crate) struct Timeline<'a> {
    entries: &'a [Entry],
    /// (hash of the SHA, commit time) of the non-merge commits of promoted
    /// deployments, as ranges of [`Entry`].
    commits: &'a [(u64, i64)],
    span: &'a Span,
}

impl<'a> Timeline<'a> {
    /// Puts `entries` in time order.
    pub(crate) fn new(entries: &'a mut [Entry], commits: &'a [(u64, i64)], span: &'a Span) -> Self {
        entries.sort_unstable_by_key(|e| (e.finished, e.started, e.seq));
        Timeline { entries, commits, span }
    }

    /// Entries placed in the window by `finished_at`, with their index.
    fn in_window(&self) -> impl Iterator<Item = (usize, &'a Entry)> + '_ {
        self.entries.iter().enumerate().filter(|(_, e)| self.span.contains(e.finished))
    }

    fn commits_of(&self, e: &Entry) -> &'a [(u64, i64)] {
        let start = e.commits_start as usize;
        self.commits.get(start..start + e.commits_len as usize).unwrap_or(&[])
    }

    /// The trend week of an instant, when the window has a trend.
    fn week(&self, ms: i64) -> usize {
        self.span.trend_index(ms) as usize
    }

    /// The trend day of an instant, when the window has a daily trend.
    fn day(&self, ms: i64) -> Option<u32> {
        self.span.day_index(ms)
    }
}

/// The trends of one app in one environment, or of an environment.
pub(crate) struct Trends {
    pub weekly: Vec<WeekPoint>,
    pub daily: Vec<DayPoint>,
}

/// Everything measured of one app in one environment, or of an
/// environment (its apps pooled).
pub(crate) struct Measurements {
    pub counts: Counts,
    /// Sum of `finished - started` over the attempts (for the history's
    /// average duration).
    pub duration_sum_ms: i64,
    deployment_frequency: DeploymentFrequency,
    change_lead_time: Durations,
    change_fail_rate: WeeklyRatio,
    failed_deployment_recovery_time: Durations,
    deployment_rework_rate: WeeklyRatio,
}

impl Measurements {
    /// Applies the definitions to one app in one environment. `seen` is
    /// scratch space, reused across groups.
    pub(crate) fn of(t: &Timeline<'_>, hotfix_window_ms: i64, seen: &mut FxSet<u64>) -> Self {
        let failed = failed_deployments(t, hotfix_window_ms);
        let deployment_frequency = deployment_frequency(t);
        let change_lead_time = change_lead_time(t, seen);
        let change_fail_rate = change_fail_rate(t, &failed);
        let (failed_deployment_recovery_time, unrecovered) = failed_deployment_recovery_time(t, &failed);
        let deployment_rework_rate = deployment_rework_rate(t);

        let mut counts = Counts {
            attempts: change_fail_rate.denominator,
            deployments: deployment_frequency.deployments,
            hotfix_deployments: deployment_rework_rate.numerator,
            failed_deployments: change_fail_rate.numerator,
            unrecovered,
            ..Counts::default()
        };
        let mut duration_sum_ms = 0;
        for (_, e) in t.in_window() {
            counts.entries += 1;
            match e.outcome {
                LedgerOutcome::RolledBack => counts.rolled_back += 1,
                LedgerOutcome::Failed => counts.failed += 1,
                LedgerOutcome::Reverted => counts.reverted += 1,
                LedgerOutcome::Abandoned => counts.abandoned += 1,
                LedgerOutcome::Promoted => {}
            }
            if e.is_attempt() {
                duration_sum_ms += e.finished - e.started;
            }
        }
        Measurements {
            counts,
            duration_sum_ms,
            deployment_frequency,
            change_lead_time,
            change_fail_rate,
            failed_deployment_recovery_time,
            deployment_rework_rate,
        }
    }

    /// Adds another app's measurements (pooling an environment).
    pub(crate) fn absorb(&mut self, other: Measurements) {
        let (a, b) = (&mut self.counts, &other.counts);
        a.entries += b.entries;
        a.attempts += b.attempts;
        a.deployments += b.deployments;
        a.rolled_back += b.rolled_back;
        a.failed += b.failed;
        a.reverted += b.reverted;
        a.abandoned += b.abandoned;
        a.hotfix_deployments += b.hotfix_deployments;
        a.failed_deployments += b.failed_deployments;
        a.unrecovered += b.unrecovered;
        self.duration_sum_ms += other.duration_sum_ms;
        self.deployment_frequency.absorb(other.deployment_frequency);
        self.change_lead_time.absorb(other.change_lead_time);
        self.change_fail_rate.absorb(other.change_fail_rate);
        self.failed_deployment_recovery_time.absorb(other.failed_deployment_recovery_time);
        self.deployment_rework_rate.absorb(other.deployment_rework_rate);
    }

    /// The five metrics (with DORA 2024 tiers when `with_tiers`: one app
    /// only) and the weekly and daily trends.
    pub(crate) fn metrics(&self, span: &Span, with_tiers: bool) -> (Metrics, Trends) {
        let c = &self.counts;
        // No data at all: every metric says why.
        let empty = if span.weeks == 0 {
            Some("the window is empty")
        } else if c.entries == 0 {
            Some("no ledger entries in the window")
        } else {
            None
        };
        let tier = |t: Tier| with_tiers.then_some(t);
        let metrics = Metrics {
            deployment_frequency: self.deployment_frequency.metric(empty, span, tier),
            change_lead_time: self.change_lead_time.lead_time_metric(empty, c, tier),
            change_fail_rate: self.change_fail_rate.fail_rate_metric(empty, tier),
            failed_deployment_recovery_time: self.failed_deployment_recovery_time.recovery_metric(empty, c, tier),
            deployment_rework_rate: self.deployment_rework_rate.rework_metric(empty),
        };
        (metrics, Trends { weekly: self.weekly(span), daily: self.daily(span) })
    }

    fn weekly(&self, span: &Span) -> Vec<WeekPoint> {
        self.trend(span.week_dates(), Bucket::Week, |week_start, figures| WeekPoint { week_start, figures })
    }

    /// The same figures per UTC day, for a short window.
    fn daily(&self, span: &Span) -> Vec<DayPoint> {
        self.trend(span.day_dates(), Bucket::Day, |day, figures| DayPoint { day, figures })
    }

    /// The figures of each bucket of a trend (its date and coverage from
    /// `dates`), made into points by `point`.
    fn trend<P>(&self, dates: Vec<(Date, f64)>, bucket: Bucket, point: impl Fn(Date, TrendFigures) -> P) -> Vec<P> {
        let n = dates.len();
        let (lead, recovery, deployments) = match bucket {
            Bucket::Week => (
                self.change_lead_time.weekly_medians(n),
                self.failed_deployment_recovery_time.weekly_medians(n),
                &self.deployment_frequency.weekly,
            ),
            Bucket::Day => (
                self.change_lead_time.daily_medians(n),
                self.failed_deployment_recovery_time.daily_medians(n),
                &self.deployment_frequency.daily,
            ),
        };
        dates
            .into_iter()
            .enumerate()
            .map(|(k, (date, coverage))| {
                let (failed, attempts) = self.change_fail_rate.bucket(bucket, k);
                let (hotfixes, promoted) = self.deployment_rework_rate.bucket(bucket, k);
                point(
                    date,
                    TrendFigures {
                        coverage,
                        deployments: deployments.get(k).copied().unwrap_or_default(),
                        attempts,
                        change_lead_time_median_seconds: lead[k],
                        change_fail_rate: (attempts > 0).then(|| failed as f64 / attempts as f64),
                        recovery_time_median_seconds: recovery[k],
                        rework_rate: (promoted > 0).then(|| hotfixes as f64 / promoted as f64),
                    },
                )
            })
            .collect()
    }
}

/// The buckets of a trend.
#[derive(Clone, Copy)]
enum Bucket {
    Week,
    Day,
}

fn none<T>(empty: Option<&str>, why: &str) -> Metric<T> {
    Metric::none(empty.unwrap_or(why))
}

// 1. Deployment frequency --------------------------------------------------

/// Deployments in the window, and the UTC weeks that hold one.
pub(crate) struct DeploymentFrequency {
    deployments: u64,
    /// Absolute indices of the weeks with a deployment, distinct and sorted.
    weeks: Vec<i64>,
    weekly: Vec<u64>,
    daily: Vec<u64>,
}

/// **Deployment frequency**: promoted deployments that finished in the
/// window (a redeploy of the same SHA counts; rolled-back, failed and
/// abandoned deployments and reverts never do), per day of the window, × 7 per week, and
/// the share of the window's UTC weeks that hold at least one.
fn deployment_frequency(t: &Timeline<'_>) -> DeploymentFrequency {
    let mut f = DeploymentFrequency {
        deployments: 0,
        weeks: Vec::new(),
        weekly: vec![0; t.span.trend_weeks()],
        daily: vec![0; t.span.trend_days()],
    };
    for (_, e) in t.in_window().filter(|(_, e)| e.is_deployment()) {
        f.deployments += 1;
        let week = week_of(e.finished);
        if f.weeks.last() != Some(&week) {
            f.weeks.push(week);
        }
        if let Some(w) = f.weekly.get_mut(t.week(e.finished)) {
            *w += 1;
        }
        if let Some(d) = t.day(e.finished).and_then(|d| f.daily.get_mut(d as usize)) {
            *d += 1;
        }
    }
    f
}

impl DeploymentFrequency {
    fn absorb(&mut self, other: DeploymentFrequency) {
        self.deployments += other.deployments;
        self.weeks.extend(other.weeks);
        self.weeks.sort_unstable();
        self.weeks.dedup();
        add_weekly(&mut self.weekly, &other.weekly, |a, b| *a += b);
        add_weekly(&mut self.daily, &other.daily, |a, b| *a += b);
    }

    fn metric(&self, empty: Option<&str>, span: &Span, tier: impl Fn(Tier) -> Option<Tier>) -> Metric<Frequency> {
        if empty.is_some() {
            return none(empty, "");
        }
        let per_day = self.deployments as f64 / span.days();
        let weeks_with = self.weeks.len() as u64;
        Metric::some(
            Frequency {
                deployments: self.deployments,
                per_day,
                per_week: per_day * 7.0,
                weeks_with_deployment: weeks_with,
                weeks: span.weeks,
                share_of_weeks_with_deployment: weeks_with as f64 / span.weeks as f64,
            },
            tier(tiers::deployment_frequency(per_day)),
        )
    }
}

// 2. Change lead time ------------------------------------------------------

/// **Change lead time**: for each non-merge commit a promoted deployment in
/// the window ships, the deployment's `finished_at` − the commit time;
/// counted only at the commit's first deployment to this app and
/// environment (earlier deployments, before the window too, count as
/// having shipped it) and only when positive. Median and p90.
fn change_lead_time(t: &Timeline<'_>, seen: &mut FxSet<u64>) -> Durations {
    let mut lead = Durations::default();
    seen.clear();
    for e in t.entries.iter().filter(|e| e.is_deployment()) {
        for &(sha, time) in t.commits_of(e) {
            // A commit is a change once: at its first deployment here.
            if seen.insert(sha) {
                let sample = e.finished - time;
                if t.span.contains(e.finished) && sample > 0 {
                    lead.push(sample, t.span.trend_index(e.finished), t.day(e.finished));
                }
            }
        }
    }
    lead
}

impl Durations {
    fn lead_time_metric(
        &self,
        empty: Option<&str>,
        c: &Counts,
        tier: impl Fn(Tier) -> Option<Tier>,
    ) -> Metric<DurationStats> {
        if empty.is_some() || c.deployments == 0 {
            return none(empty, "no promoted deployment in the window");
        }
        match self.stats() {
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
    }
}

// A failed deployment (for 3 and 4) ----------------------------------------

/// Which entries failed, and when a revert ended a promoted one.
pub(crate) struct Failed {
    failed: Vec<bool>,
    revert_end: Vec<Option<i64>>,
}

/// **Failed deployment** (it needed intervention):
/// - an attempt sluice rolled back, or that failed (traffic went back to
///   stable);
/// - a promoted deployment a `reverted` entry undid: each revert undoes the
///   most recent deployment still stable here, so two reverts undo two;
/// - a promoted deployment that was the stable release when a hotfix
///   attempt (any outcome) *started*, within the hotfix window after the
///   deployment finished: the hotfix is checked against what was stable
///   when it started, not when it ended (a deployment that overlapped it
///   and became stable meanwhile is not what it fixes);
/// - a planned promoted deployment linked to an incident (on a hotfix, the
///   incident is the one it fixes).
///
/// An abandoned deployment never moved traffic: it neither fails nor fixes
/// anything.
fn failed_deployments(t: &Timeline<'_>, hotfix_window_ms: i64) -> Failed {
    let entries = t.entries;
    let n = entries.len();
    let mut failed = vec![false; n];
    let mut revert_end = vec![None; n];
    // Promoted deployments in the order they became stable; the last is stable.
    let mut stable: Vec<usize> = Vec::new();
    // Hotfix attempts in the order they started, each checked against the
    // stable release once every entry that finished by its start is in.
    let mut hotfixes: Vec<usize> = (0..n).filter(|&i| entries[i].hotfix && entries[i].is_attempt()).collect();
    hotfixes.sort_unstable_by_key(|&i| (entries[i].started, entries[i].seq));
    let mut hotfixes = hotfixes.into_iter().peekable();
    let check = |hotfix: usize, stable: &[usize], failed: &mut [bool]| {
        let started = entries[hotfix].started;
        if let Some(&top) = stable.iter().rev().find(|&&s| s != hotfix)
            && (0..=hotfix_window_ms).contains(&(started - entries[top].finished))
        {
            failed[top] = true;
        }
    };
    for (i, e) in entries.iter().enumerate() {
        while let Some(h) = hotfixes.next_if(|&h| entries[h].started < e.finished) {
            check(h, &stable, &mut failed);
        }
        match e.outcome {
            LedgerOutcome::Promoted => {
                if e.incident && !e.hotfix {
                    failed[i] = true;
                }
                stable.push(i);
            }
            LedgerOutcome::RolledBack | LedgerOutcome::Failed => failed[i] = true,
            LedgerOutcome::Reverted => {
                if let Some(top) = stable.pop() {
                    failed[top] = true;
                    revert_end[top] = Some(e.finished);
                }
            }
            LedgerOutcome::Abandoned => {}
        }
    }
    for h in hotfixes {
        check(h, &stable, &mut failed);
    }
    Failed { failed, revert_end }
}

// 3. Change fail rate ------------------------------------------------------

/// **Change fail rate**: failed deployment attempts ÷ deployment attempts in
/// the window. Attempts sluice rolled back count in both: they reached the
/// environment (canary traffic) and needed intervention. Reverts and
/// abandoned deployments (they never moved traffic) count in neither.
fn change_fail_rate(t: &Timeline<'_>, failed: &Failed) -> WeeklyRatio {
    let mut rate = WeeklyRatio::new(t.span);
    for (i, e) in t.in_window().filter(|(_, e)| e.is_attempt()) {
        rate.add(failed.failed[i], t.week(e.finished), t.day(e.finished));
    }
    rate
}

impl WeeklyRatio {
    fn fail_rate_metric(&self, empty: Option<&str>, tier: impl Fn(Tier) -> Option<Tier>) -> Metric<Ratio> {
        if empty.is_some() || self.denominator == 0 {
            return none(empty, "no deployment attempt in the window");
        }
        let r = self.ratio();
        let t = tiers::change_fail_rate(r.rate);
        Metric::some(r, tier(t))
    }
}

// 4. Failed deployment recovery time --------------------------------------

/// **Failed deployment recovery time**, for each failed attempt in the
/// window: a rolled-back or failed attempt recovered when its entry ended
/// (traffic was back on stable), `finished_at − started_at`; a failed
/// promoted deployment from its `started_at` (when the change first reached
/// the environment) to the earlier of the end of the revert that undid it
/// and the next promoted deployment. Median and p90; failures with no
/// recovery yet are counted apart (the second value), not averaged in.
fn failed_deployment_recovery_time(t: &Timeline<'_>, failed: &Failed) -> (Durations, u64) {
    let mut recovery = Durations::default();
    let mut unrecovered = 0;
    let mut next_promoted: Option<i64> = None;
    for (i, e) in t.entries.iter().enumerate().rev() {
        if t.span.contains(e.finished) && e.is_attempt() && failed.failed[i] {
            let end = match e.outcome {
                LedgerOutcome::Promoted => match (failed.revert_end[i], next_promoted) {
                    (Some(r), Some(p)) => Some(r.min(p)),
                    (r, p) => r.or(p),
                },
                _ => Some(e.finished),
            };
            match end {
                Some(end) if end >= e.started => {
                    recovery.push(end - e.started, t.span.trend_index(e.finished), t.day(e.finished))
                }
                _ => unrecovered += 1,
            }
        }
        if e.is_deployment() {
            next_promoted = Some(e.finished);
        }
    }
    (recovery, unrecovered)
}

impl Durations {
    fn recovery_metric(
        &self,
        empty: Option<&str>,
        c: &Counts,
        tier: impl Fn(Tier) -> Option<Tier>,
    ) -> Metric<DurationStats> {
        if empty.is_some() || c.failed_deployments == 0 {
            return none(empty, "no failed deployment in the window");
        }
        match self.stats() {
            Some(s) => {
                let t = tiers::recovery_time(s.median_seconds);
                Metric::some(s, tier(t))
            }
            None => Metric::none(format!(
                "none of the {} failed deployments in the window has recovered yet",
                c.failed_deployments
            )),
        }
    }
}

// 5. Deployment rework rate ------------------------------------------------

/// **Deployment rework rate**: promoted deployments of kind `hotfix` ÷
/// promoted deployments in the window. DORA 2024 gives it no tiers.
fn deployment_rework_rate(t: &Timeline<'_>) -> WeeklyRatio {
    let mut rate = WeeklyRatio::new(t.span);
    for (_, e) in t.in_window().filter(|(_, e)| e.is_deployment()) {
        rate.add(e.hotfix, t.week(e.finished), t.day(e.finished));
    }
    rate
}

impl WeeklyRatio {
    fn rework_metric(&self, empty: Option<&str>) -> Metric<Ratio> {
        if empty.is_some() || self.denominator == 0 {
            return none(empty, "no promoted deployment in the window");
        }
        Metric::some(self.ratio(), None)
    }
}

// What the metrics are made of ---------------------------------------------

/// Durations (ms) and the trend week (and day, for a short window) of
/// each, kept paired for pooling.
#[derive(Default)]
pub(crate) struct Durations {
    values: Vec<i64>,
    weeks: Vec<u32>,
    /// Empty without a daily trend, else as long as `values`.
    days: Vec<u32>,
}

impl Durations {
    fn push(&mut self, ms: i64, week: u32, day: Option<u32>) {
        self.values.push(ms);
        self.weeks.push(week);
        if let Some(d) = day {
            self.days.push(d);
        }
    }

    fn absorb(&mut self, other: Durations) {
        self.values.extend(other.values);
        self.weeks.extend(other.weeks);
        self.days.extend(other.days);
    }

    /// Median and p90 in seconds.
    fn stats(&self) -> Option<DurationStats> {
        // On a copy: the samples stay paired with their weeks.
        let (m, p) = stats::median_p90(&mut self.values.clone())?;
        Some(DurationStats { median_seconds: m / 1000.0, p90_seconds: p / 1000.0, samples: self.values.len() as u64 })
    }

    /// The median of each trend week, in seconds.
    fn weekly_medians(&self, n_weeks: usize) -> Vec<Option<f64>> {
        stats::bucket_medians(&self.values, &self.weeks, n_weeks)
    }

    /// The median of each trend day, in seconds.
    fn daily_medians(&self, n_days: usize) -> Vec<Option<f64>> {
        stats::bucket_medians(&self.values, &self.days, n_days)
    }
}

/// A ratio, and its numerator and denominator per trend week (and day).
pub(crate) struct WeeklyRatio {
    numerator: u64,
    denominator: u64,
    weekly: Vec<(u64, u64)>,
    daily: Vec<(u64, u64)>,
}

impl WeeklyRatio {
    fn new(span: &Span) -> Self {
        WeeklyRatio {
            numerator: 0,
            denominator: 0,
            weekly: vec![(0, 0); span.trend_weeks()],
            daily: vec![(0, 0); span.trend_days()],
        }
    }

    /// Counts one in the denominator, and in the numerator when `counts`.
    fn add(&mut self, counts: bool, week: usize, day: Option<u32>) {
        self.denominator += 1;
        self.numerator += u64::from(counts);
        let bump = |b: &mut (u64, u64)| {
            b.0 += u64::from(counts);
            b.1 += 1;
        };
        if let Some(w) = self.weekly.get_mut(week) {
            bump(w);
        }
        if let Some(d) = day.and_then(|d| self.daily.get_mut(d as usize)) {
            bump(d);
        }
    }

    fn absorb(&mut self, other: WeeklyRatio) {
        self.numerator += other.numerator;
        self.denominator += other.denominator;
        let add = |a: &mut (u64, u64), b: (u64, u64)| {
            a.0 += b.0;
            a.1 += b.1;
        };
        add_weekly(&mut self.weekly, &other.weekly, add);
        add_weekly(&mut self.daily, &other.daily, add);
    }

    /// (numerator, denominator) of trend week or day `k`.
    fn bucket(&self, bucket: Bucket, k: usize) -> (u64, u64) {
        let buckets = match bucket {
            Bucket::Week => &self.weekly,
            Bucket::Day => &self.daily,
        };
        buckets.get(k).copied().unwrap_or_default()
    }

    fn ratio(&self) -> Ratio {
        Ratio {
            rate: self.numerator as f64 / self.denominator as f64,
            numerator: self.numerator,
            denominator: self.denominator,
        }
    }
}

fn add_weekly<T: Copy>(mine: &mut [T], other: &[T], add: impl Fn(&mut T, T)) {
    for (a, &b) in mine.iter_mut().zip(other) {
        add(a, b);
    }
}
