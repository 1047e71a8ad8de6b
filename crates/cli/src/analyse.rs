//! The analysis loop shared by `shift-traffic` (between stages) and
//! `verify-health`: sample every interval, feed the analysis, stop as soon as
//! it decides or the time is up.

use crate::context::Context;
use anyhow::anyhow;
use indicatif::{ProgressBar, ProgressStyle};
use sluice_analysis::{Analysis, AnalysisReport, CheckSpec, Interval, Outcome, Verdict};
use sluice_core::config::{ProbeConfig, QueryVars, SourceConfig};
use sluice_core::{Classify, Failure, env};
use sluice_providers::metrics::{QUERY_BACKOFF, Query, QuerySource, Sampler};
use sluice_providers::router::Router;
use std::io::IsTerminal;
use std::time::Duration;
use tokio::time::Instant;

/// Analyses the candidate `release`, which takes `weight` percent of
/// traffic, for the `window`, sampling every configured interval.
pub async fn analyse(
    ctx: &Context,
    release: &str,
    weight: u8,
    window: Window<'_>,
    carried: Vec<Interval>,
) -> Result<AnalysisReport, Failure> {
    analyse_in(ctx, &Scope::environment(ctx)?, &ctx.checks()?.specs, release, weight, window, carried).await
}

/// What a stage's analysis carries over from the previous stage's
/// ([`Analysis::carrying`]): the later half of the intervals that analysis
/// observed itself, when it passed. Nothing from CloudWatch's look-backs,
/// which overlap one another, so that no minute is counted twice.
pub fn carried_from(previous: Option<&AnalysisReport>) -> Vec<Interval> {
    let Some(previous) = previous.filter(|r| r.verdict == Verdict::Pass) else { return Vec::new() };
    if previous.own_intervals().iter().any(|i| !i.lookback.is_empty()) {
        return Vec::new();
    }
    previous.later_half()
}

/// How much of `plan` comes after stage `i`: the later stages `runs` keeps
/// (by index and weight), up to the stage `pause_at` names, where a pause
/// ends this run's plan.
pub fn plan_after(
    plan: &[(u8, Duration)],
    i: usize,
    pause_at: Option<u8>,
    runs: impl Fn(usize, u8) -> bool,
) -> Duration {
    let stop = pause_at.and_then(|p| plan.iter().position(|(w, _)| *w == p)).unwrap_or(plan.len());
    plan.iter().enumerate().take(stop + 1).skip(i + 1).filter(|(j, (w, _))| runs(*j, *w)).map(|(_, (_, d))| *d).sum()
}

/// A window of analysis as the live display shows it.
#[derive(Debug, Clone, Copy)]
pub struct Window<'a> {
    /// What each line of the display starts with ("stage 1/3 10%").
    pub label: &'a str,
    /// How long the window lasts.
    pub duration: Duration,
    /// How much of the plan comes after it (zero outside a plan), so the
    /// display says the time left in the plan, not only in the stage.
    pub after: Duration,
}

impl<'a> Window<'a> {
    /// A window with nothing after it.
    pub fn alone(label: &'a str, duration: Duration) -> Window<'a> {
        Window { label, duration, after: Duration::ZERO }
    }

    /// "28s left", and "28s left, plan 1m 58s" in a plan with more to come.
    fn left(&self, left: Duration) -> String {
        let secs = left.as_secs();
        if self.after.is_zero() {
            return format!("{secs}s left");
        }
        let plan = Duration::from_secs(secs + self.after.as_secs());
        format!("{secs}s left, plan {}", humantime::format_duration(plan))
    }
}

/// What one analysis reads: a router (its counters, its target groups) and
/// the metric sources and probes in force for it: an environment's one
/// router, or one of its targets.
pub struct Scope {
    pub router: Router,
    pub sources: Vec<SourceConfig>,
    pub probes: Vec<ProbeConfig>,
    /// Where the ALB's CloudWatch dimensions come from when not from the
    /// router: a CodeDeploy deployment's listener and target-group pair as
    /// its record keeps them ([`Scope::for_record`]).
    pub alb_state: Option<sluice_core::record::RouterState>,
}

impl Scope {
    /// The environment's one router with its sources (and those its
    /// built-in checks read) and probes.
    pub fn environment(ctx: &Context) -> Result<Scope, Failure> {
        let env = ctx.env();
        let mut sources = ctx.config.sources_for(env);
        sources.extend(crate::context::builtin_sources(ctx.router_config()?, &sources));
        Ok(Scope { router: ctx.router()?, sources, probes: ctx.config.probes_for(env), alb_state: None })
    }

    /// [`Scope::environment`] for the deployment in `record`: a CodeDeploy
    /// deployment whose record names its production listener and
    /// target-group pair also reads their traffic from CloudWatch, for
    /// [`Context::checks_in`]'s ALB checks.
    pub fn for_record(ctx: &Context, record: &sluice_core::record::Record) -> Result<Scope, Failure> {
        let mut scope = Scope::environment(ctx)?;
        if let Some(pair) = crate::context::traffic_pair(record) {
            scope.sources.extend(crate::context::codedeploy_traffic_source(ctx.router_config()?, &scope.sources));
            scope.alb_state = Some(pair.clone());
        }
        Ok(scope)
    }
}

/// [`analyse`] of one router and its `checks`.
pub async fn analyse_in(
    ctx: &Context,
    scope: &Scope,
    checks: &[CheckSpec],
    release: &str,
    weight: u8,
    window: Window<'_>,
    carried: Vec<Interval>,
) -> Result<AnalysisReport, Failure> {
    analyse_until(ctx, scope, checks, release, weight, window, carried, || None).await
}

/// [`analyse_in`] that also ends when `stop`, asked after each interval
/// the analysis did not decide on, says why (a line for the log): the
/// traffic it judges changed under it (CodeDeploy stepped the weight, or
/// ended). The report then judges what was observed until then, as at the
/// end of a window.
#[allow(clippy::too_many_arguments)]
pub async fn analyse_until(
    ctx: &Context,
    scope: &Scope,
    checks: &[CheckSpec],
    release: &str,
    weight: u8,
    window: Window<'_>,
    carried: Vec<Interval>,
    mut stop: impl FnMut() -> Option<String>,
) -> Result<AnalysisReport, Failure> {
    let checks = checks.to_vec();
    let planned = planned_intervals(window.duration, ctx.config.interval());
    let mut analysis = Analysis::at_weight(checks.clone(), ctx.config.analysis.policy.clone(), weight)
        .planned(planned)
        .carrying(carried);
    let width = crate::summary::width(&console::Term::stderr());
    let label = window.label;
    for line in limits(&analysis.evidence(), &checks) {
        for line in crate::summary::wrap(&format!("{label}: {line}"), label.chars().count() + 4, width) {
            eprintln!("{line}");
        }
    }
    if let Some(verdict) = analysis.decided() {
        // The previous stage's later data decided before this one began.
        eprintln!("{label}: decided on the previous stage's later intervals: {verdict:?}");
        return Ok(analysis.finish());
    }
    let live = LiveFile::beside(&ctx.record_path, label, ctx.config.interval());
    let started = Instant::now();
    let sampled = sample_in(ctx, scope, release, &checks, window, |interval| match analysis.observe(interval) {
        Outcome::Decided(verdict) => Observed::Done(format!("decided early: {verdict:?}").to_lowercase()),
        Outcome::Continue => {
            if let Some(why) = stop() {
                return Observed::Done(why);
            }
            let evidence = analysis.evidence();
            live.write(window, started.elapsed(), &evidence, &checks);
            Observed::Continue { status: Some(running(&evidence, &checks)) }
        }
    })
    .await;
    drop(live);
    sampled?;
    Ok(analysis.finish())
}

/// The analysis as it stands, beside the record (`r.json` → `r.json.live`),
/// for `sluice status` in another terminal: per window (a stage, a target's
/// stage), the time left and every check's running value against its limit
/// with its samples against `min_samples`. Written each interval, its
/// window removed when the window ends, however it ends (a decision, a
/// failure, another target stopping it, a cancellation: on drop); each
/// window says until when it is fresh (two intervals, at least 30 s), and
/// a stale one (a step killed outright) is dropped by the next write and
/// not shown. Only a view: no step reads it, and failing to write it never
/// fails the analysis.
struct LiveFile {
    path: std::path::PathBuf,
    label: String,
    interval: Duration,
}

impl LiveFile {
    fn beside(record: &std::path::Path, label: &str, interval: Duration) -> LiveFile {
        LiveFile { path: live_path(record), label: label.to_owned(), interval }
    }

    /// The other fresh windows in the file (targets analysed at once share
    /// it).
    fn others(&self) -> serde_json::Map<String, serde_json::Value> {
        let mut windows = std::fs::read(&self.path)
            .ok()
            .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
            .and_then(|v| v.get("windows").and_then(|w| w.as_object()).cloned())
            .unwrap_or_default();
        windows.remove(&self.label);
        let now = crate::context::now();
        windows.retain(|_, w| live_fresh(w, now));
        windows
    }

    /// Replaces the file (a temp file renamed over it: a reader never sees
    /// half of it; no fsync, as it is only a view).
    fn put(&self, windows: serde_json::Map<String, serde_json::Value>) -> std::io::Result<()> {
        if windows.is_empty() {
            return match std::fs::remove_file(&self.path) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
                _ => Ok(()),
            };
        }
        let mut tmp = self.path.clone().into_os_string();
        tmp.push(format!(".tmp-{}", std::process::id()));
        let json = serde_json::json!({ "windows": windows });
        std::fs::write(&tmp, format!("{json:#}\n"))?;
        std::fs::rename(&tmp, &self.path)
    }

    fn write(
        &self,
        window: Window<'_>,
        elapsed: Duration,
        evidence: &[sluice_analysis::CheckEvidence],
        checks: &[CheckSpec],
    ) {
        let mut windows = self.others();
        let checks: Vec<serde_json::Value> = evidence
            .iter()
            .zip(checks)
            .map(|(c, spec)| {
                serde_json::json!({
                    "name": c.name,
                    "value": crate::summary::with_unit(&c.kind, c.observed),
                    "stable": c.baseline.map(|_| crate::summary::with_unit(&c.kind, c.baseline)),
                    "limit": c.threshold,
                    "samples": c.samples,
                    "min_samples": spec.min_samples,
                })
            })
            .collect();
        let left = window.duration.saturating_sub(elapsed);
        let now = crate::context::now();
        let fresh =
            jiff::SignedDuration::try_from((self.interval * 2).max(LIVE_FRESH)).unwrap_or(jiff::SignedDuration::MAX);
        windows.insert(
            self.label.clone(),
            serde_json::json!({
                "at": now,
                "fresh_until": now.checked_add(fresh).unwrap_or(now),
                "left": window.left(left),
                "left_seconds": left.as_secs(),
                "plan_left_seconds": (left + window.after).as_secs(),
                "checks": checks,
            }),
        );
        if let Err(e) = self.put(windows) {
            sluice_core::gha::debug(&format!("could not write {}: {e}", self.path.display()));
        }
    }
}

impl Drop for LiveFile {
    /// Removes this window; the file with the last one.
    fn drop(&mut self) {
        let _ = self.put(self.others());
    }
}

/// The shortest time a live window stays fresh after its last interval.
const LIVE_FRESH: Duration = Duration::from_secs(30);

/// Whether a window of the live file is still fresh at `now`: before its
/// `fresh_until`.
pub fn live_fresh(window: &serde_json::Value, now: jiff::Timestamp) -> bool {
    window["fresh_until"].as_str().and_then(|t| t.parse::<jiff::Timestamp>().ok()).is_some_and(|until| now < until)
}

/// Where the live view of the deployment in `record` is written: `r.json`
/// → `r.json.live`, which no `*.json` glob over a records directory (the
/// expired-pause sweep, `scripts/replay.sh`) takes for a record.
pub fn live_path(record: &std::path::Path) -> std::path::PathBuf {
    let mut name = record.as_os_str().to_owned();
    name.push(".live");
    std::path::PathBuf::from(name)
}

/// What the caller of [`sample`] says after each interval.
pub enum Observed {
    /// Go on; `status`, when given, is shown instead of the interval's raw
    /// counts (the checks as they stand, one part a check).
    Continue { status: Option<Vec<String>> },
    /// Decided: stop sampling, with this line for the log.
    Done(String),
}

/// Each check's limit and the samples it needs, printed once before the
/// live display, which then need not repeat them.
fn limits(evidence: &[sluice_analysis::CheckEvidence], checks: &[CheckSpec]) -> Vec<String> {
    evidence
        .iter()
        .zip(checks)
        .map(|(c, spec)| format!("{} limit {} (at least {} samples)", c.name, c.threshold, spec.min_samples))
        .collect()
}

/// Each check as it stands, for the live display: its running value with
/// its unit (and stable's, for a comparison), and its samples against
/// `min_samples`; its limit is in [`limits`].
fn running(evidence: &[sluice_analysis::CheckEvidence], checks: &[CheckSpec]) -> Vec<String> {
    evidence
        .iter()
        .zip(checks)
        .map(|(c, spec)| {
            let value = crate::summary::with_unit(&c.kind, c.observed);
            let stable = c.baseline.map(|_| format!(" vs {}", crate::summary::with_unit(&c.kind, c.baseline)));
            format!("{} {value}{} n={}/{}", c.name, stable.unwrap_or_default(), c.samples, spec.min_samples)
        })
        .collect()
}

/// The intervals a window of `duration` holds: the recent windows that
/// catch a late degradation share their alpha over them.
pub fn planned_intervals(duration: Duration, interval: Duration) -> u32 {
    let n = duration.max(interval).as_nanos().div_ceil(interval.as_nanos().max(1));
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// Samples every metric source the `checks` need once per interval for
/// `duration`, handing each interval to `observe`, which says (with a line
/// for the log) when it has decided; stops then, or when the samples cover
/// the duration.
pub async fn sample(
    ctx: &Context,
    release: &str,
    checks: &[CheckSpec],
    window: Window<'_>,
    observe: impl FnMut(Interval) -> Observed,
) -> Result<(), Failure> {
    sample_in(ctx, &Scope::environment(ctx)?, release, checks, window, observe).await
}

/// [`sample`] of one router with its sources and probes.
pub async fn sample_in(
    ctx: &Context,
    scope: &Scope,
    release: &str,
    checks: &[CheckSpec],
    window: Window<'_>,
    mut observe: impl FnMut(Interval) -> Observed,
) -> Result<(), Failure> {
    let duration = window.duration;
    let env = ctx.env();
    let interval = ctx.config.interval();
    let vars =
        QueryVars { release: release.to_owned(), app: ctx.config.app.clone(), environment: env.name.clone(), interval };
    let queries = Query::from_checks(checks, &vars).map_err(|e| Failure::input(anyhow!(e)))?;
    let mut sources = Vec::new();
    for source in &scope.sources {
        let reads_traffic = matches!(source, SourceConfig::Cloudwatch { alb_traffic: true, .. });
        if reads_traffic || queries.iter().any(|q| q.source == source.name()) {
            sources.push(QuerySource::connect(source, QUERY_BACKOFF).await.provider_failed()?);
        }
    }
    let mut sampler = Sampler::new(scope.router.clone(), scope.probes.clone())
        .with_queries(sources, queries)
        .with_alb_state(scope.alb_state.as_ref());
    let progress = Progress::new(window);
    sampler.start().await;
    let started = Instant::now();
    let deadline = started + duration.max(interval);
    // The verdict must cover the whole duration in sample windows, not only
    // in wall-clock time: a sample that came back late (a slow router)
    // covered less, so sampling goes on, up to twice the duration more.
    let give_up = deadline + duration.max(interval) * 2;
    let wanted = jiff::SignedDuration::try_from(duration).unwrap_or(jiff::SignedDuration::MAX);
    let mut first_start = None;
    let mut n = 0;
    loop {
        let next = (Instant::now() + interval).min(deadline.max(Instant::now()));
        tokio::time::sleep_until(next).await;
        let sample = sampler.sample().await;
        n += 1;
        let counts = describe(n, &sample);
        let first = *first_start.get_or_insert(sample.start);
        let covered = sample.end.duration_since(first) >= wanted;
        let left = window.left(duration.saturating_sub(started.elapsed()));
        match observe(sample) {
            Observed::Done(done) => {
                progress.tick(started.elapsed(), &counts);
                progress.done(&done);
                break;
            }
            Observed::Continue { status: Some(status) } => progress.checks(started.elapsed(), &left, &status),
            Observed::Continue { status: None } => progress.tick(started.elapsed(), &format!("{left} · {counts}")),
        }
        let now = Instant::now();
        if now >= deadline && (covered || now >= give_up) {
            progress.done(if covered { "window complete" } else { "window cut short: the samples came back late" });
            break;
        }
    }
    Ok(())
}

fn describe(n: usize, sample: &Interval) -> String {
    let pool = |p: &Option<sluice_analysis::PoolWindow>| match p {
        Some(w) => format!("{} req / {} err", w.requests, w.errors),
        None => "no data".to_owned(),
    };
    let mut text = format!("interval {n}: candidate {}, stable {}", pool(&sample.candidate), pool(&sample.stable));
    let failed = sample.probes.iter().filter(|p| !p.ok).count();
    if !sample.probes.is_empty() {
        text.push_str(&format!(", probes {}/{} ok", sample.probes.len() - failed, sample.probes.len()));
    }
    for (check, value) in &sample.values {
        match value {
            Some(v) => text.push_str(&format!(", {check} = {v}")),
            None => text.push_str(&format!(", {check}: no data")),
        }
    }
    for (check, error) in &sample.query_errors {
        text.push_str(&format!(", {check}: {error}"));
    }
    for (source, error) in &sample.source_errors {
        text.push_str(&format!(", {source} failed: {error}"));
    }
    text
}

/// A progress bar on a terminal; plain lines in CI or when piped, at most
/// `width` columns (see [`crate::summary::width`]).
enum Progress {
    Bar(ProgressBar),
    Lines { label: String, width: usize },
}

impl Progress {
    fn new(window: Window<'_>) -> Progress {
        let (label, duration) = (window.label, window.duration);
        if std::io::stderr().is_terminal() && !env::in_ci() {
            let bar = ProgressBar::new(duration.as_millis() as u64);
            let style = ProgressStyle::with_template("{prefix} [{bar:30}] {elapsed}/{duration} {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> ");
            bar.set_style(style);
            bar.set_prefix(label.to_owned());
            Progress::Bar(bar)
        } else {
            let rest = if window.after.is_zero() {
                String::new()
            } else {
                format!(" ({} of the plan after it)", humantime::format_duration(window.after))
            };
            eprintln!("{label}: analysing for {}{rest}", humantime::format_duration(duration));
            Progress::Lines { label: label.to_owned(), width: crate::summary::width(&console::Term::stderr()) }
        }
    }

    fn tick(&self, elapsed: Duration, message: &str) {
        match self {
            Progress::Bar(bar) => {
                bar.set_position(elapsed.as_millis() as u64);
                bar.set_message(message.to_owned());
            }
            Progress::Lines { label, .. } => eprintln!("{label}: {message}"),
        }
    }

    /// The checks as they stand with `left` to go: on one line when it
    /// fits the width, else (plain lines) a line for the time left and one
    /// a check.
    fn checks(&self, elapsed: Duration, left: &str, checks: &[String]) {
        match self {
            Progress::Lines { label, width } => {
                for line in lines_of(label, left, checks, *width) {
                    eprintln!("{line}");
                }
            }
            Progress::Bar(_) => self.tick(elapsed, &format!("{left} · {}", checks.join(" · "))),
        }
    }

    fn done(&self, message: &str) {
        match self {
            Progress::Bar(bar) => bar.finish_with_message(message.to_owned()),
            Progress::Lines { label, .. } => eprintln!("{label}: {message}"),
        }
    }
}

/// The plain lines of one interval of the live display (see
/// [`Progress::checks`]).
fn lines_of(label: &str, left: &str, checks: &[String], width: usize) -> Vec<String> {
    let parts = std::iter::once(left.to_owned()).chain(checks.iter().cloned()).collect::<Vec<_>>();
    let one = format!("{label}: {}", parts.join(" · "));
    if one.chars().count() <= width {
        return vec![one];
    }
    let indent = label.chars().count() + 4;
    let mut lines = vec![format!("{label}: {left}")];
    for c in checks {
        lines.extend(crate::summary::wrap(&format!("{label}:   {c}"), indent, width));
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_core::config::RouterConfig;

    fn builtin() -> Vec<CheckSpec> {
        let router = RouterConfig::Local { admin_url: "http://127.0.0.1:9001".into() };
        crate::context::builtin_checks(&router, &[]).expect("the embedded router has built-in checks")
    }

    /// The live display names every check with its samples against
    /// `min_samples`, before any data ("–" for no value yet); the limits,
    /// printed before it, name every check's limit.
    #[test]
    fn the_running_parts_show_each_check_and_the_limits_each_limit() {
        let checks = builtin();
        let analysis = Analysis::new(checks.clone(), sluice_analysis::Policy::default());
        let parts = running(&analysis.evidence(), &checks);
        let limits = limits(&analysis.evidence(), &checks);
        assert_eq!((parts.len(), limits.len()), (checks.len(), checks.len()));
        for ((c, part), limit) in analysis.evidence().iter().zip(&parts).zip(&limits) {
            assert_eq!(part, &format!("{} – n=0/50", c.name));
            assert_eq!(limit, &format!("{} limit {} (at least 50 samples)", c.name, c.threshold));
        }
    }

    /// A stage's plain lines (CI) with the built-in checks, a candidate at
    /// 25% failing one request in ten and 40ms slower than stable, two
    /// intervals in, with a minute and a half of the plan after the stage:
    /// every line fits 100 columns (a CI log), and 80 (a terminal).
    #[test]
    fn a_stage_display_fits_100_and_80_columns() {
        for (width, name) in [(100, "stage-display"), (80, "stage-display-80")] {
            let lines = stage_display(width);
            for line in &lines {
                assert!(line.chars().count() <= width, "{} columns: {line}", line.chars().count());
            }
            insta::assert_snapshot!(name, lines.join("\n"));
        }
    }

    /// The rest of a plan: every later stage, up to a pause, without the
    /// stages this run skips.
    #[test]
    fn the_rest_of_a_plan_stops_at_a_pause_and_skips_what_does_not_run() {
        let s = Duration::from_secs;
        let plan = [(10, s(30)), (50, s(20)), (100, s(10))];
        assert_eq!(plan_after(&plan, 0, None, |_, _| true), s(30));
        assert_eq!(plan_after(&plan, 2, None, |_, _| true), s(0));
        assert_eq!(plan_after(&plan, 0, Some(50), |_, _| true), s(20));
        assert_eq!(plan_after(&plan, 1, Some(50), |_, _| true), s(0));
        assert_eq!(plan_after(&plan, 0, None, |j, _| j != 1), s(10));
    }

    /// The time left names the plan's only in a plan with more to come.
    #[test]
    fn the_time_left_counts_the_rest_of_the_plan() {
        let stage =
            Window { label: "stage 1/3 10%", duration: Duration::from_secs(30), after: Duration::from_secs(90) };
        assert_eq!(stage.left(Duration::from_millis(28_400)), "28s left, plan 1m 58s");
        let alone = Window::alone("verify-health", Duration::from_secs(30));
        assert_eq!(alone.left(Duration::from_secs(28)), "28s left");
    }

    fn stage_display(width: usize) -> Vec<String> {
        let checks = builtin();
        let mut analysis = Analysis::at_weight(checks.clone(), sluice_analysis::Policy::default(), 25).planned(60);
        let pool = |requests: u64, errors: u64, base_ms: u64| sluice_analysis::PoolWindow {
            requests,
            errors,
            latency: sluice_analysis::Histogram::from_pairs((0..requests).map(|k| ((base_ms + k % 20) * 1000, 1))),
        };
        let window =
            Window { label: "stage 1/2 25%", duration: Duration::from_secs(30), after: Duration::from_secs(90) };
        let label = window.label;
        let mut lines: Vec<String> = limits(&analysis.evidence(), &checks)
            .iter()
            .flat_map(|l| crate::summary::wrap(&format!("{label}: {l}"), label.len() + 4, width))
            .collect();
        for i in 0..2 {
            let start = jiff::Timestamp::from_second(1_700_000_000 + i).expect("time");
            let interval = Interval {
                start,
                end: start + jiff::SignedDuration::from_secs(1),
                candidate: Some(pool(20, 2, 50)),
                stable: Some(pool(60, 0, 10)),
                probes: Vec::new(),
                values: Default::default(),
                source_errors: Default::default(),
                query_errors: Default::default(),
                lookback: Default::default(),
                router_weight: Some(25),
            };
            assert_eq!(analysis.observe(interval), Outcome::Continue, "too few samples to decide");
            let left = window.left(Duration::from_secs(28 - 2 * i as u64));
            lines.extend(lines_of(label, &left, &running(&analysis.evidence(), &checks), width));
        }
        lines
    }
}
