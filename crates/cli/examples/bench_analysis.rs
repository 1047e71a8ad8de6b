//! The analysis benchmark run by `scripts/bench-analysis.sh`: how fast, and
//! at what cost in failed user requests, sluice's default policy rolls back
//! a bad canary compared with a fixed-interval threshold policy configured
//! like Flagger's defaults, and how often each rolls back a healthy one.
//!
//! Two parts (the script's header says the same for users):
//!
//! 1. Live, on one machine: a healthy stable demo app and a bad candidate
//!    (5 % errors, or 300 ms added latency) behind the embedded router,
//!    steady paced load through it, the candidate sent 10 % of traffic.
//!    *sluice* is the real `gate` + `shift-traffic` binaries with the
//!    default strategy, the default analysis settings and the docs'
//!    checks. *Flagger-like* is modelled here: the candidate at 10 %, and
//!    once per 60 s window (interval 60 s) the window's candidate success
//!    rate and p99 latency, as point estimates from the same router
//!    counters, against success rate >= 99 % and p99 <= 250 ms (the same
//!    latency limit as sluice's check; Flagger's docs example uses 500 ms,
//!    which would never catch +300 ms); one failed check (threshold 1) rolls
//!    back, and a window without data counts as failed, as in Flagger.
//!    Measured: from the first bad answer the load generator saw to the
//!    moment the router serves 100 % stable, and the bad answers users got
//!    (5xx or no answer; for the latency fault, answers slower than 250 ms).
//!
//! 2. Live, the scenarios at 100 requests/s with no checks
//!    configured (sluice's built-in checks judge) through the default plan
//!    (20, 40, 70, 100 % for 1 min each): 50 % errors, +200 ms from the
//!    start, 5 % errors and +200 ms from 80 % of the first stage (the demo
//!    app's `PUT /faults`), no traffic from 80 % of it (the load stops), and
//!    a sample-ratio mismatch (another hand sets the router to 50 %, and to
//!    30 %, a fifth past the edge of the band around the first stage's 20 %). For
//!    each: the verdict and the record's status, the time from the onset to
//!    100 % stable, and the answers users got that failed or were slowed
//!    (over 100 ms) after the onset.
//!
//! The simulated canaries (false rollbacks of healthy ones, and the same
//! scenarios beside the Flagger-like policy) are in `sluice-analysis`'s
//! `examples/canaries`, which the script runs too.

use anyhow::{Context as _, bail};
use clap::Parser;
use sluice_analysis::PoolWindow;
use sluice_demo::app::{AppConfig, DemoApp};
use sluice_demo::loadgen::{self, LoadConfig, Observed};
use sluice_providers::metrics::Sampler;
use sluice_providers::retry::Backoff;
use sluice_providers::router::{LocalRouter, Router};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[derive(Debug, Parser)]
struct Args {
    /// Where the release `gate` and `shift-traffic` binaries are.
    #[arg(long)]
    bin_dir: PathBuf,
    /// Steady load through the router, requests per second.
    #[arg(long, default_value_t = 400.0)]
    rps: f64,
    /// Live runs of each sluice policy per fault (the median is shown).
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// Live runs of the Flagger-like policy per fault (each takes a minute).
    #[arg(long, default_value_t = 1)]
    flagger_runs: usize,
    /// Load for the scenarios, requests per second.
    #[arg(long, default_value_t = 100.0)]
    scenario_rps: f64,
    /// Run only the scenarios (not the 400 req/s comparison).
    #[arg(long)]
    scenarios_only: bool,
    /// Run only this fault in the comparison at `rps` (both when not
    /// given).
    #[arg(long, value_enum)]
    fault: Option<Fault>,
    /// Run only the scenarios whose label contains this text.
    #[arg(long)]
    scenario: Option<String>,
    /// Live runs of each scenario (each run's figures are printed; the
    /// table shows the median).
    #[arg(long, default_value_t = 1)]
    scenario_runs: usize,
    /// Keep each scenario run's deployment record here (for
    /// `verify-health --replay` and the intervals it holds).
    #[arg(long)]
    keep_records: Option<PathBuf>,
    /// Exit 1 when a target is missed.
    #[arg(long)]
    strict: bool,
}

/// The latency limit of both policies.
const LATENCY_LIMIT: Duration = Duration::from_millis(250);
/// The candidate's weight during the measured stage.
const CANARY_WEIGHT: u8 = 10;
/// The default canary plan (`Strategy::default_canary`).
const FLAGGER_INTERVAL: Duration = Duration::from_secs(60);

#[derive(Clone, Copy, Debug, PartialEq, clap::ValueEnum)]
enum Fault {
    Errors,
    Latency,
}

impl Fault {
    fn label(self) -> &'static str {
        match self {
            Fault::Errors => "5% errors",
            Fault::Latency => "+300 ms latency",
        }
    }

    /// What a user counts as a failed request under this fault.
    fn is_bad(self, o: &Observed) -> bool {
        let failed = o.status.is_none_or(|s| s >= 500);
        match self {
            Fault::Errors => failed,
            Fault::Latency => failed || o.latency > LATENCY_LIMIT,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum PolicyKind {
    /// sluice's defaults; `Some` overrides the analysis interval.
    Sluice(Option<Duration>),
    FlaggerLike,
}

impl PolicyKind {
    fn label(self) -> String {
        match self {
            PolicyKind::Sluice(None) => "sluice default (1s)".into(),
            PolicyKind::Sluice(Some(i)) => format!("sluice, interval {}", humantime::format_duration(i)),
            PolicyKind::FlaggerLike => "Flagger-like (60s x 1)".into(),
        }
    }
}

const POLICIES: [PolicyKind; 3] =
    [PolicyKind::Sluice(None), PolicyKind::Sluice(Some(Duration::from_secs(5))), PolicyKind::FlaggerLike];

/// The same checks as `sluice.toml` text (the defaults are not written).
fn sluice_config(admin: &str, interval: Option<Duration>) -> String {
    let interval = interval.map(|i| format!("interval = \"{}\"\n", humantime::format_duration(i))).unwrap_or_default();
    format!(
        "app = \"bench\"\n[ledger]\nkind = \"file\"\npath = \"ledger.jsonl\"\n[analysis]\n{interval}\n\
         [defaults]\nstrategy = {{ kind = \"canary\", stages = [10, 25, 50, 100], stage_duration = \"1m\" }}\n\
         [[defaults.check]]\nname = \"error-rate\"\nkind = \"error_rate\"\nmax = 0.01\n\
         [[defaults.check]]\nname = \"latency-p99\"\nkind = \"latency\"\npercentile = 99\nmax = \"250ms\"\n\
         [[defaults.check]]\nname = \"errors-vs-stable\"\nkind = \"compare\"\nmetric = \"error_rate\"\ntolerance = 0.01\n\
         [[environment]]\nname = \"dev\"\nrouter = {{ kind = \"local\", admin_url = \"{admin}\" }}\n"
    )
}

/// The Flagger-like judgment of one window: point estimates, no statistics.
fn flagger_passes(window: Option<&PoolWindow>) -> bool {
    let Some(w) = window.filter(|w| w.requests > 0) else {
        return false; // Flagger: "no values found" is a failed check
    };
    let success = 1.0 - w.errors as f64 / w.requests as f64;
    let limit_us = u64::try_from(LATENCY_LIMIT.as_micros()).unwrap_or(u64::MAX);
    success >= 0.99 && w.latency.quantile(0.99).is_none_or(|p99| p99 <= limit_us)
}

// ---------------------------------------------------------------- live part

#[derive(Clone, Debug)]
struct LiveResult {
    /// First bad answer to 100 % stable.
    time_to_stable: Option<Duration>,
    /// Bad answers users got.
    bad: usize,
    /// Where the bad answers came from and when, for the log.
    detail: String,
}

async fn live(args: &Args, fault: Fault, policy: PolicyKind) -> anyhow::Result<LiveResult> {
    let app = |version: &str, error_ratio: f64, latency: Duration| AppConfig {
        listen: "127.0.0.1:0".parse().expect("addr"),
        version: version.into(),
        error_ratio,
        latency,
        seed: None,
    };
    let stable = DemoApp::start(app("v1", 0.0, Duration::ZERO)).await?;
    let candidate = match fault {
        Fault::Errors => DemoApp::start(app("v2", 0.05, Duration::ZERO)).await?,
        Fault::Latency => DemoApp::start(app("v2", 0.0, Duration::from_millis(300))).await?,
    };
    let candidate_url = format!("http://{}", candidate.addr());
    let upstream = sluice_router::Upstream::parse(&format!("http://{}", stable.addr()))?;
    let proxy = sluice_router::Router::start(sluice_router::Config::new(upstream)).await?;
    let admin = format!("http://{}", proxy.admin_addr());

    // Every answer the users got.
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Observed>();
    let seen: Arc<Mutex<Vec<Observed>>> = Arc::default();
    let collector = {
        let seen = Arc::clone(&seen);
        tokio::spawn(async move {
            while let Some(o) = rx.recv().await {
                seen.lock().unwrap_or_else(std::sync::PoisonError::into_inner).push(o);
            }
        })
    };
    let (stop_load, stop) = sluice_router::serve::shutdown_channel();
    let load = tokio::spawn(loadgen::run_observed(
        LoadConfig {
            url: format!("http://{}/", proxy.listen_addr()).parse()?,
            rps: args.rps,
            duration: Duration::from_secs(300),
            concurrency: 256,
            timeout: Duration::from_secs(10),
            report_every: None,
        },
        stop,
        Some(tx),
    ));
    // The moment the router serves 100 % stable again, read from its state.
    let control = proxy.control().clone();
    let watcher = tokio::spawn(async move {
        let mut shifted = None;
        loop {
            let weight = control.state().candidate_weight;
            if weight > 0 {
                shifted.get_or_insert_with(Instant::now);
            } else if let Some(shifted) = shifted {
                return (shifted, Instant::now());
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    });
    tokio::time::sleep(Duration::from_secs(2)).await;

    let deadline = Duration::from_secs(200);
    match policy {
        PolicyKind::Sluice(interval) => {
            let dir = tempfile::tempdir()?;
            std::fs::write(dir.path().join("sluice.toml"), sluice_config(&admin, interval))?;
            let (bin, path) = (args.bin_dir.clone(), dir.path().to_owned());
            tokio::task::spawn_blocking(move || run_sluice(&bin, &path, &candidate_url)).await??;
        }
        PolicyKind::FlaggerLike => {
            let router = Router::Local(LocalRouter::new(&admin, Backoff::default()));
            router.set_candidate(&candidate_url).await?;
            router.set_weight(CANARY_WEIGHT).await?;
            let mut sampler = Sampler::new(router.clone(), Vec::new());
            sampler.start().await;
            let started = Instant::now();
            while started.elapsed() < deadline {
                tokio::time::sleep(FLAGGER_INTERVAL).await;
                if !flagger_passes(sampler.sample().await.candidate.as_ref()) {
                    router.set_weight(0).await?;
                    break;
                }
            }
        }
    }
    let watched = tokio::time::timeout(Duration::from_secs(5), watcher).await.ok().and_then(Result::ok);
    let stable_at = watched.map(|(_, stable)| stable);
    // Answers in flight at the switch still arrive; then stop.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    stop_load.trigger();
    load.await?;
    collector.await?;
    proxy.shutdown().await;
    stable.shutdown().await;
    candidate.shutdown().await;

    let seen = seen.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let bad: Vec<&Observed> = seen.iter().filter(|o| fault.is_bad(o)).collect();
    // The first bad answer's request was sent `latency` before it arrived.
    let first_bad = bad.iter().map(|o| o.at).min();
    let time_to_stable = match (first_bad, stable_at) {
        (Some(first), Some(stable)) => Some(stable.saturating_duration_since(first)),
        _ => None,
    };
    let detail = match watched {
        Some((shifted, stable)) => bad_detail(&bad, &seen, shifted, stable),
        None => String::new(),
    };
    Ok(LiveResult { time_to_stable, bad: bad.len(), detail })
}

/// Where the `bad` answers came from (the pool that answered, the status)
/// and when (before the candidate got traffic, in each second after,
/// after 100 % stable), and the candidate's answers in all: when more
/// requests failed than the error rate and the time explain, this says
/// where the others came from.
fn bad_detail(bad: &[&Observed], seen: &[Observed], shifted: Instant, stable: Instant) -> String {
    let mut by = std::collections::BTreeMap::new();
    for o in bad {
        let when = if o.at < shifted {
            "before".to_owned()
        } else if o.at > stable {
            "after".to_owned()
        } else {
            format!("{:>2}s", (o.at - shifted).as_secs())
        };
        let status = o.status.map_or("none".to_owned(), |s| s.to_string());
        *by.entry((when, o.pool.clone().unwrap_or_default(), status)).or_insert(0usize) += 1;
    }
    let candidate = seen.iter().filter(|o| o.pool.as_deref() == Some("candidate")).count();
    let parts: Vec<String> = by.iter().map(|((w, p, s), n)| format!("{w} {p} {s}: {n}")).collect();
    format!(
        "candidate at >0% for {:.1} s, {candidate} candidate answers; bad: {}",
        stable.saturating_duration_since(shifted).as_secs_f64(),
        parts.join(", ")
    )
}

/// `gate` then `shift-traffic` (the whole plan); a bad candidate is rolled
/// back by shift-traffic (exit 1).
fn run_sluice(bin: &Path, dir: &Path, candidate: &str) -> anyhow::Result<()> {
    let step = |name: &str, extra: &[&str]| -> anyhow::Result<i32> {
        let out = Command::new(bin.join(name))
            .current_dir(dir)
            .args(["--config", "sluice.toml", "-e", "dev", "--record", "r.json"])
            .args(extra)
            .env_remove("GITHUB_OUTPUT")
            .env_remove("GITHUB_STEP_SUMMARY")
            .env("CI", "true")
            .output()
            .with_context(|| format!("run {}", bin.join(name).display()))?;
        let code = out.status.code().unwrap_or(-1);
        // 3 is an `error` verdict (a sample-ratio mismatch) as well as a
        // provider failure: the record says which.
        if code > 1 && !(name == "shift-traffic" && code == 3) {
            bail!("{name} exited {code}: {}", String::from_utf8_lossy(&out.stderr));
        }
        Ok(code)
    };
    step("gate", &["--release", "v2", "--commit", "abcdef1"])?;
    step("shift-traffic", &["--candidate-upstream", candidate])?;
    Ok(())
}

// --------------------------------------------- the scenarios, live

/// What happens to the canary, and when.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Onset {
    /// The candidate is bad from its first request (faults at start).
    FromStart,
    /// The candidate turns bad this far into the first stage.
    InStage(Duration),
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Trouble {
    /// The candidate answers this share of requests with 500.
    Errors(f64),
    /// The candidate takes this much longer.
    Slower(Duration),
    /// The load stops: no request at all.
    NoTraffic,
    /// Another hand sets the router's weight to this.
    Weight(u8),
}

struct Scenario {
    label: &'static str,
    trouble: Trouble,
    onset: Onset,
}

const SCENARIOS: [Scenario; 7] = [
    Scenario { label: "no checks configured, 50% errors", trouble: Trouble::Errors(0.5), onset: Onset::FromStart },
    Scenario {
        label: "+200 ms from the start",
        trouble: Trouble::Slower(Duration::from_millis(200)),
        onset: Onset::FromStart,
    },
    Scenario {
        label: "5% errors from 80% of stage 1",
        trouble: Trouble::Errors(0.05),
        onset: Onset::InStage(Duration::from_secs(48)),
    },
    Scenario {
        label: "+200 ms from 80% of stage 1",
        trouble: Trouble::Slower(Duration::from_millis(200)),
        onset: Onset::InStage(Duration::from_secs(48)),
    },
    Scenario {
        label: "no traffic from 80% of stage 1",
        trouble: Trouble::NoTraffic,
        onset: Onset::InStage(Duration::from_secs(48)),
    },
    Scenario {
        label: "sample-ratio mismatch (router set to 50%)",
        trouble: Trouble::Weight(50),
        onset: Onset::InStage(Duration::from_secs(10)),
    },
    Scenario {
        label: "sample-ratio mismatch (router set to 30%)",
        trouble: Trouble::Weight(30),
        onset: Onset::InStage(Duration::from_secs(10)),
    },
];

/// One live run of a scenario.
struct ScenarioResult {
    verdict: String,
    /// From the onset to 100 % stable.
    time_to_stable: Option<Duration>,
    /// Answers users got that failed (5xx, none) or were slowed (over 100 ms).
    bad: usize,
    /// When the candidate first got traffic, the onset and 100 % stable
    /// again, by the wall clock (to read beside the record's intervals).
    at: [jiff::Timestamp; 3],
    /// What the load generator got from the candidate and stable (by the
    /// router's pool header) per 5 s, from the first traffic on.
    load: String,
}

/// The default plan with no checks configured (sluice's built-in checks
/// judge), at `rps`, through the real `gate` and `shift-traffic`.
async fn scenario(args: &Args, scenario: &Scenario, rps: f64) -> anyhow::Result<ScenarioResult> {
    let app = |version: &str| AppConfig {
        listen: "127.0.0.1:0".parse().expect("addr"),
        version: version.into(),
        error_ratio: 0.0,
        latency: Duration::ZERO,
        seed: None,
    };
    let stable = DemoApp::start(app("v1")).await?;
    let candidate = DemoApp::start(app("v2")).await?;
    let candidate_url = format!("http://{}", candidate.addr());
    let faults = move |trouble: Trouble| -> anyhow::Result<()> {
        let body = match trouble {
            Trouble::Errors(ratio) => format!("{{\"error_ratio\":{ratio}}}"),
            Trouble::Slower(d) => format!("{{\"latency\":\"{}\"}}", humantime::format_duration(d)),
            _ => return Ok(()),
        };
        let out = Command::new("curl")
            .args(["-fsS", "-X", "PUT", "-H", "content-type: application/json", "-d", &body])
            .arg(format!("{candidate_url}/faults"))
            .output()?;
        anyhow::ensure!(out.status.success(), "PUT /faults: {}", String::from_utf8_lossy(&out.stderr));
        Ok(())
    };
    if scenario.onset == Onset::FromStart {
        faults(scenario.trouble)?;
    }
    let upstream = sluice_router::Upstream::parse(&format!("http://{}", stable.addr()))?;
    let proxy = sluice_router::Router::start(sluice_router::Config::new(upstream)).await?;
    let admin = format!("http://{}", proxy.admin_addr());
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Observed>();
    let seen: Arc<Mutex<Vec<Observed>>> = Arc::default();
    let collector = {
        let seen = Arc::clone(&seen);
        tokio::spawn(async move {
            while let Some(o) = rx.recv().await {
                seen.lock().unwrap_or_else(std::sync::PoisonError::into_inner).push(o);
            }
        })
    };
    let (stop_load, stop) = sluice_router::serve::shutdown_channel();
    let load = tokio::spawn(loadgen::run_observed(
        LoadConfig {
            url: format!("http://{}/", proxy.listen_addr()).parse()?,
            rps,
            duration: Duration::from_secs(600),
            concurrency: 256,
            timeout: Duration::from_secs(10),
            report_every: None,
        },
        stop,
        Some(tx),
    ));
    // The first moment the candidate gets traffic, and the moment it is
    // back to 0 %.
    let control = proxy.control().clone();
    let watcher = tokio::spawn(async move {
        let mut started = None;
        loop {
            let weight = control.state().candidate_weight;
            if weight > 0 && started.is_none() {
                started = Some(Instant::now());
            } else if weight == 0
                && let Some(s) = started
            {
                return (s, Instant::now());
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    });
    tokio::time::sleep(Duration::from_secs(2)).await;
    let dir = tempfile::tempdir()?;
    // No strategy and no interval: the scenarios judge sluice's defaults.
    let config = format!(
        "app = \"bench\"\n[ledger]\nkind = \"file\"\npath = \"ledger.jsonl\"\n\
         [[environment]]\nname = \"dev\"\nrouter = {{ kind = \"local\", admin_url = \"{admin}\" }}\n"
    );
    std::fs::write(dir.path().join("sluice.toml"), config)?;
    let (bin, path, url) = (args.bin_dir.clone(), dir.path().to_owned(), format!("http://{}", candidate.addr()));
    let mut steps = tokio::task::spawn_blocking(move || run_sluice(&bin, &path, &url));
    // The onset, when it is not at the start.
    let onset = match scenario.onset {
        Onset::FromStart => None,
        Onset::InStage(after) => {
            let control = proxy.control().clone();
            while control.state().candidate_weight == 0 {
                if steps.is_finished() {
                    // The steps ended before any traffic moved: say why.
                    (&mut steps).await??;
                    bail!("shift-traffic ended without sending the candidate any traffic");
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            tokio::time::sleep(after).await;
            match scenario.trouble {
                Trouble::NoTraffic => stop_load.trigger(),
                Trouble::Weight(w) => {
                    Router::Local(LocalRouter::new(&admin, Backoff::default())).set_weight(w).await?;
                }
                trouble => {
                    let faults = faults.clone();
                    tokio::task::spawn_blocking(move || faults(trouble)).await??;
                }
            }
            Some(Instant::now())
        }
    };
    steps.await??;
    let (started, stable_at) = tokio::time::timeout(Duration::from_secs(5), watcher).await??;
    let onset = onset.unwrap_or(started);
    // Instants as wall-clock times, for reading beside the record.
    let (now_i, now_t) = (Instant::now(), jiff::Timestamp::now());
    let wall = |i: Instant| {
        let back = jiff::SignedDuration::try_from(now_i.saturating_duration_since(i)).unwrap_or_default();
        now_t.checked_sub(back).unwrap_or(now_t)
    };
    let at = [wall(started), wall(onset), wall(stable_at)];
    tokio::time::sleep(Duration::from_millis(1500)).await;
    stop_load.trigger();
    load.await?;
    collector.await?;
    proxy.shutdown().await;
    stable.shutdown().await;
    candidate.shutdown().await;
    let record_bytes = std::fs::read(dir.path().join("r.json"))?;
    if let Some(keep) = &args.keep_records {
        std::fs::create_dir_all(keep)?;
        let name = format!("{}-{}.json", scenario.label.replace(|c: char| !c.is_ascii_alphanumeric(), "_"), at[0]);
        std::fs::write(keep.join(name.replace(':', "")), &record_bytes)?;
    }
    let record: serde_json::Value = serde_json::from_slice(&record_bytes)?;
    let verdict = record["events"]
        .as_array()
        .and_then(|events| events.iter().rev().find(|e| e["type"] == "verdict"))
        .map(|e| {
            let r = &e["report"];
            match r["cause"].as_str() {
                Some(cause) => format!("{} ({cause})", r["verdict"].as_str().unwrap_or("?")),
                None => {
                    format!("{} ({})", r["verdict"].as_str().unwrap_or("?"), r["decided_by"].as_str().unwrap_or("-"))
                }
            }
        })
        .unwrap_or_else(|| "none".into());
    let verdict = format!("{verdict}, {}", record["status"].as_str().unwrap_or("?"));
    let seen = seen.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let bad = seen
        .iter()
        .filter(|o| o.at >= onset)
        .filter(|o| o.status.is_none_or(|s| s >= 500) || o.latency > Duration::from_millis(100))
        .count();
    let load = load_by_pool(&seen, started, stable_at);
    Ok(ScenarioResult { verdict, time_to_stable: Some(stable_at.saturating_duration_since(onset)), bad, at, load })
}

/// The answers the load generator got from `from` to `to`, per 5 s: the
/// requests per second each pool answered, and its errors, as
/// "t+  0s candidate 10.2/s (1 err) stable 90.0/s (0 err)" lines.
fn load_by_pool(seen: &[Observed], from: Instant, to: Instant) -> String {
    let step = Duration::from_secs(5);
    let mut lines = Vec::new();
    let mut t = from;
    while t < to {
        let end = t + step;
        let of = |version: &str| {
            let w: Vec<&Observed> =
                seen.iter().filter(|o| o.at >= t && o.at < end && o.pool.as_deref() == Some(version)).collect();
            let errors = w.iter().filter(|o| o.status.is_none_or(|s| s >= 500)).count();
            format!("{version} {:.1}/s ({errors} err)", w.len() as f64 / step.as_secs_f64())
        };
        let other = seen.iter().filter(|o| o.at >= t && o.at < end && o.pool.is_none()).count();
        lines.push(format!("t+{:>3}s {} {} unknown {other}", (t - from).as_secs(), of("candidate"), of("stable")));
        t = end;
    }
    lines.join("\n")
}

// ------------------------------------------------------------------- report

fn median<T: Copy + Ord>(mut values: Vec<T>) -> Option<T> {
    values.sort_unstable();
    values.get(values.len() / 2).copied()
}

fn secs(d: Option<Duration>) -> String {
    d.map_or("never".into(), |d| format!("{:.1} s", d.as_secs_f64()))
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let mut args = Args::parse();
    // The steps run in a temporary directory: a relative path would not
    // find them there.
    args.bin_dir = std::fs::canonicalize(&args.bin_dir)
        .with_context(|| format!("--bin-dir {}: no such directory", args.bin_dir.display()))?;
    println!(
        "sluice analysis benchmark: embedded router, {} requests/s steady load, candidate at {CANARY_WEIGHT}% \
         ({:.0} requests/s)\n",
        args.rps,
        args.rps * f64::from(CANARY_WEIGHT) / 100.0
    );
    let col = 24;
    let header = POLICIES.iter().map(|p| format!("{:>col$}", p.label())).collect::<String>();
    println!("{:<52}{header}", "bad candidate (live; median of runs)");

    // Per fault, per policy: (median time to 100% stable, median bad requests).
    type Row = Vec<(Option<Duration>, usize)>;
    let mut live_results: Vec<(Fault, Row)> = Vec::new();
    let faults: &[Fault] = if args.scenarios_only { &[] } else { &[Fault::Errors, Fault::Latency] };
    for &fault in faults.iter().filter(|f| args.fault.is_none_or(|only| only == **f)) {
        let mut row = Vec::new();
        for policy in POLICIES {
            let runs = if policy == PolicyKind::FlaggerLike { args.flagger_runs } else { args.runs };
            let mut results = Vec::new();
            for run in 0..runs.max(1) {
                let r = live(&args, fault, policy).await?;
                eprintln!(
                    "bench: {} / {} run {}: first bad answer to 100% stable {}, {} bad answers ({})",
                    fault.label(),
                    policy.label(),
                    run + 1,
                    secs(r.time_to_stable),
                    r.bad,
                    r.detail
                );
                results.push(r);
            }
            let time = median(results.iter().map(|r| r.time_to_stable.unwrap_or(Duration::MAX)).collect())
                .filter(|d| *d != Duration::MAX);
            let bad = median(results.iter().map(|r| r.bad).collect()).unwrap_or(0);
            row.push((time, bad));
        }
        let bad_label = match fault {
            Fault::Errors => "failed requests (5xx)",
            Fault::Latency => "bad requests (slower than 250ms)",
        };
        let times: String = row.iter().map(|(t, _)| format!("{:>col$}", secs(*t))).collect();
        let bads: String = row.iter().map(|(_, b)| format!("{b:>col$}")).collect();
        println!("{:<52}{times}", format!("{}: first bad answer -> 100% stable", fault.label()));
        println!("{:<52}{bads}", format!("{}: {bad_label}", fault.label()));
        live_results.push((fault, row));
    }

    println!(
        "\nthe issue's scenarios (live, {} requests/s, no checks configured: the built-in checks; default plan)",
        args.scenario_rps
    );
    println!("{:<44}{:<46}{:>18}{:>16}", "scenario", "verdict, status", "onset -> stable", "bad requests");
    let mut scenario_results = Vec::new();
    let chosen: Vec<&Scenario> =
        SCENARIOS.iter().filter(|s| args.scenario.as_deref().is_none_or(|only| s.label.contains(only))).collect();
    for s in chosen.iter().copied() {
        let mut runs = Vec::new();
        for run in 0..args.scenario_runs.max(1) {
            let r = scenario(&args, s, args.scenario_rps).await?;
            let [first, onset, stable] = r.at;
            eprintln!(
                "bench: {} run {}: {}, onset -> stable {}, {} bad; candidate traffic from {first}, onset {onset}, \
                 100% stable {stable}",
                s.label,
                run + 1,
                r.verdict,
                secs(r.time_to_stable),
                r.bad
            );
            if args.keep_records.is_some() {
                eprintln!("{}", r.load);
            }
            runs.push(r);
        }
        // The run with the median time stands for the scenario.
        runs.sort_by_key(|r| r.time_to_stable.unwrap_or(Duration::MAX));
        let r = runs.swap_remove(runs.len() / 2);
        println!("{:<44}{:<46}{:>18}{:>16}", s.label, r.verdict, secs(r.time_to_stable), r.bad);
        scenario_results.push((s, r));
    }
    println!(
        "(Flagger-like beside each: the simulated table of `cargo run --release -p sluice-analysis --example canaries`, printed next by the script)"
    );

    // Targets, for sluice's default policy (column 0) against Flagger-like (column 2).
    println!("\ntargets (sluice default against Flagger-like):");
    let mut missed = 0;
    let mut target = |ok: bool, text: String| {
        println!("  {} {text}", if ok { "met   " } else { "MISSED" });
        missed += usize::from(!ok);
    };
    for (fault, row) in &live_results {
        let (sluice, flagger) = (row[0].1.max(1), row[2].1);
        let ratio = flagger as f64 / sluice as f64;
        target(ratio >= 10.0, format!("{}: {ratio:.1}x fewer bad requests (target >= 10x)", fault.label()));
        let t = row[0].0;
        target(
            t.is_some_and(|t| t <= Duration::from_secs(15)),
            format!("{}: 100% stable {} after the first bad answer (target <= 15 s)", fault.label(), secs(t)),
        );
    }
    for (s, r) in &scenario_results {
        // The 15 s are for errors and latency; no traffic waits
        // `inconclusive_limit` intervals; a split a fifth past the band's
        // edge must be found within the stage it happens in (before the
        // next stage sets the weight anew), a gross one as fast as errors.
        let limit = match s.trouble {
            Trouble::NoTraffic => Duration::from_secs(45),
            Trouble::Weight(w) if w < 50 => Duration::from_secs(50),
            _ => Duration::from_secs(15),
        };
        target(
            r.time_to_stable.is_some_and(|t| t <= limit) && !r.verdict.contains("promoted"),
            format!(
                "{}: {}, 100% stable {} after the onset (target <= {} s)",
                s.label,
                r.verdict,
                secs(r.time_to_stable),
                limit.as_secs()
            ),
        );
    }
    if args.strict && missed > 0 {
        bail!("{missed} target(s) missed (STRICT=1)");
    }
    Ok(())
}
