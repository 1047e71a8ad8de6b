//! `sluice status`: where each environment stands, from another terminal or
//! a laptop while CI runs. Read-only: it never takes a lock or a lease and
//! never changes a router.
//!
//! Per environment, in promotion order: the stable release (the last
//! promotion in the ledger, the file or GitHub's journal), the router as it
//! is now (candidate weight, stable and candidate pools), the deployment
//! holding the environment (its lease), what is coming (releases promoted in
//! the previous environment and not yet here, with the commits they bring),
//! and for each record given with `--record`, where that deployment stands:
//! its status in words, the plan's stage, the weight the record set against
//! the router's, its verdicts (✔ passed, ✖ not), the analysis running now
//! and the last verdict, and the next command. `--watch` redraws until
//! interrupted (reading GitHub at most every 30 s); `--json` prints the same
//! as one JSON document.

use crate::context::lease_grace;
use anyhow::anyhow;
use clap::Parser;
use serde_json::json;
use sluice_analysis::Verdict;
use sluice_core::config::{Config, LedgerConfig};
use sluice_core::ledger::{LedgerEntry, LedgerOutcome};
use sluice_core::record::{EventDetail, Expect, Record};
use sluice_core::{Classify, Exit, Failure};
use sluice_providers::ledger::Ledger;
use sluice_providers::retry::Backoff;
use sluice_providers::router::Router;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::time::Duration;
use tokio::time::Instant;

/// Where each environment stands: stable release, router, lease, what is coming, deployments in flight.
#[derive(Parser, Debug)]
#[command(
    name = "status",
    bin_name = "sluice status",
    version,
    about = "Show where each environment stands: the stable release, the router's weights, the deployment holding it, what is coming, and (with --record) where a deployment is in its plan. Read-only.",
    after_help = "Exit codes: 0 shown · 2 bad input (config, record) · 3 the ledger could not be read. A router that does not answer is shown as such, not an error.\n\nExamples:\n  sluice status --record out/prd.json --watch\n  sluice status -e prd --json"
)]
pub struct Args {
    /// The sluice config file.
    #[arg(long, env = "INPUT_CONFIG", default_value = "sluice.toml", value_name = "PATH")]
    pub config: PathBuf,
    /// Only these environments (default: all, in promotion order).
    #[arg(long = "environment", short = 'e', value_name = "NAME")]
    pub environments: Vec<String>,
    /// A deployment record to show in its environment (repeatable).
    #[arg(long, value_name = "PATH")]
    pub record: Vec<PathBuf>,
    /// Redraw every INTERVAL (default 2s) until interrupted.
    #[arg(long, value_name = "INTERVAL", num_args = 0..=1, default_missing_value = "2s", value_parser = sluice_core::config::parse_duration)]
    pub watch: Option<Duration>,
    /// Print one JSON document instead of text.
    #[arg(long)]
    pub json: bool,
}

pub fn main() -> std::process::ExitCode {
    entry(Args::parse())
}

/// The one entry point of `sluice status`.
pub fn entry(args: Args) -> std::process::ExitCode {
    crate::run("status", run(args))
}

pub async fn run(args: Args) -> Result<Exit, Failure> {
    let config = crate::features::load(&args.config)?;
    for name in &args.environments {
        config.environment(name).map_err(|m| Failure::input(anyhow!(m)))?;
    }
    let mut github = GitHubRead::default();
    let width = crate::summary::width(&console::Term::stdout());
    // Under --watch into a pipe or a log: the whole view once, then only
    // what changed, a line each.
    let mut before: Option<serde_json::Value> = None;
    loop {
        let view = gather(&config, &args, &mut github).await?;
        let terminal = std::io::stdout().is_terminal();
        match (&before, args.watch.is_some() && !terminal) {
            (Some(before), true) if args.json => {
                if without_time(before) != without_time(&view) {
                    println!("{view}");
                }
            }
            (Some(before), true) => {
                for line in changes(&unwrapped(before), &unwrapped(&view), view["at"].as_str().unwrap_or_default()) {
                    for line in crate::summary::wrap(&line, VALUES, width) {
                        println!("{line}");
                    }
                }
            }
            (None, true) if args.json => println!("{view}"),
            _ => {
                if args.watch.is_some() && terminal {
                    // Clear the screen and go home, then draw.
                    print!("\x1b[2J\x1b[H");
                }
                if args.json {
                    println!("{view:#}");
                } else {
                    print!("{}", render(&view, width));
                }
            }
        }
        let Some(every) = args.watch else { return Ok(Exit::OK) };
        before = Some(view);
        tokio::time::sleep(every).await;
    }
}

/// A view without the time it was taken, to see whether anything changed.
fn without_time(view: &serde_json::Value) -> serde_json::Value {
    let mut view = view.clone();
    if let Some(map) = view.as_object_mut() {
        map.remove("at");
    }
    view
}

/// The lines of the text view `after` that are not in `before`, each with
/// the time and the environment it is about ("01:02:03 dev: router local:
/// candidate 25%"). The heading (the time) is not a change.
fn changes(before: &str, after: &str, at: &str) -> Vec<String> {
    let blocks = |text: &str| -> Vec<(String, Vec<String>)> {
        text.split("\n\n")
            .skip(1)
            .filter_map(|block| {
                let mut lines = block.lines();
                let name = lines.next()?.to_owned();
                Some((name, lines.map(str::to_owned).collect()))
            })
            .collect()
    };
    let time = at.parse::<jiff::Timestamp>().map_or_else(|_| at.to_owned(), |t| t.strftime("%H:%M:%S").to_string());
    let old = blocks(before);
    let mut lines = Vec::new();
    for (name, new) in blocks(after) {
        let was = old.iter().find(|(n, _)| *n == name).map(|(_, l)| l.as_slice()).unwrap_or_default();
        for line in new.iter().filter(|l| !was.contains(l)) {
            lines.push(format!("{time} {name}: {}", line.trim()));
        }
    }
    lines
}

/// What `status` last read from the GitHub ledger, and when: under
/// `--watch` it is read again at most every [`GITHUB_EVERY`], so a watch
/// spends a few API calls a minute, not a few a second.
#[derive(Default)]
struct GitHubRead {
    at: Option<Instant>,
    /// The journal's entries of the app (the last 60 days and the month
    /// before), and each environment's lease holder; or why they could not
    /// be read.
    read: Option<Result<Ledgered, String>>,
}

/// The ledger's entries, and each environment's lease holder (in the
/// config's order).
type Ledgered = (Vec<LedgerEntry>, Vec<Option<sluice_core::lease::Lease>>);

/// How often `--watch` reads the GitHub ledger again.
const GITHUB_EVERY: Duration = Duration::from_secs(30);

/// How far back `status` reads the GitHub ledger's journal for the stable
/// release of each environment (and the month before it).
#[cfg(feature = "github")]
const GITHUB_HISTORY: jiff::SignedDuration = jiff::SignedDuration::from_hours(60 * 24);

impl GitHubRead {
    /// Reads the journal and every environment's lease (about one call a
    /// journal month and environment, and one a lease), unless read less
    /// than [`GITHUB_EVERY`] ago. A failure (no token, GitHub down) is
    /// shown in place of what it would have read, not an error: the rest
    /// of the view still stands.
    async fn refresh(&mut self, config: &Config, now: jiff::Timestamp) {
        if self.at.is_some_and(|at| at.elapsed() < GITHUB_EVERY) {
            return;
        }
        self.at = Some(Instant::now());
        self.read = Some(read_github(config, now).await);
    }
}

/// A build without GitHub refuses the GitHub ledger when it loads the
/// config; this is never called there.
#[cfg(not(feature = "github"))]
async fn read_github(_config: &Config, _now: jiff::Timestamp) -> Result<Ledgered, String> {
    Err("this sluice was built without GitHub support".to_owned())
}

#[cfg(feature = "github")]
async fn read_github(config: &Config, now: jiff::Timestamp) -> Result<Ledgered, String> {
    use sluice_providers::github::{GitHub, history, ledger::GitHubLedger};
    let github = GitHub::from_env(&config.github, "status").map_err(|e| e.to_string())?;
    let query = history::Query {
        environments: config.environments.iter().map(|e| e.name.clone()).collect(),
        apps: vec![config.app.clone()],
        since: now.checked_sub(GITHUB_HISTORY).ok(),
        until: None,
        after: Duration::ZERO,
        incident_label: None,
        // The journal alone: no deployment from before it is shown.
        max_deployments: 0,
        default_app: Some(config.app.clone()),
        reserve: history::DEFAULT_RESERVE,
    };
    let read = history::read(&github, &query).await.map_err(|e| format!("cannot read the GitHub ledger: {e}"))?;
    let ledger = GitHubLedger { github: github.clone(), run_id: None, run_url: None };
    let mut leases = Vec::new();
    for env in &config.environments {
        let grace = lease_grace(config.lease_timeout_for(env));
        let holder = ledger
            .lease_holder(&config.app, &env.name, now, grace)
            .await
            .map_err(|e| format!("cannot read the lease of {}: {e}", env.name))?;
        leases.push(holder);
    }
    for note in &read.notes {
        eprintln!("status: {note}");
    }
    let stats = github.stats();
    eprintln!(
        "status: read the GitHub ledger with {} API calls ({} counted against the rate limit{})",
        stats.requests,
        stats.counted(),
        stats.remaining.map(|r| format!(", {r} left")).unwrap_or_default()
    );
    Ok((read.entries, leases))
}

/// Everything shown, as JSON (the text is rendered from it).
async fn gather(config: &Config, args: &Args, github: &mut GitHubRead) -> Result<serde_json::Value, Failure> {
    let now = jiff::Timestamp::now().round(jiff::Unit::Second).unwrap_or_else(|_| jiff::Timestamp::now());
    let mut unread = None;
    let (history, github_leases): Ledgered = match &config.ledger {
        LedgerConfig::File { path } => (sluice_core::ledger::read_file(path).provider_failed()?, Vec::new()),
        LedgerConfig::Github {} => {
            github.refresh(config, now).await;
            match &github.read {
                Some(Ok((entries, leases))) => (entries.clone(), leases.clone()),
                Some(Err(why)) => {
                    unread = Some(why.clone());
                    (Vec::new(), Vec::new())
                }
                None => (Vec::new(), Vec::new()),
            }
        }
    };
    let mut records = Vec::new();
    for path in &args.record {
        let record = Record::load(path, &Expect { app: Some(&config.app), ..Expect::default() }).bad_input()?;
        records.push((path.clone(), record));
    }
    let mut environments = Vec::new();
    for (i, env) in config.environments.iter().enumerate() {
        if !args.environments.is_empty() && !args.environments.contains(&env.name) {
            continue;
        }
        let promoted = |name: &str| -> Vec<&LedgerEntry> {
            history
                .iter()
                .filter(|e| e.app == config.app && e.environment == name && e.outcome == LedgerOutcome::Promoted)
                .collect()
        };
        let here = promoted(&env.name);
        let stable = here.last().map(|e| {
            let since = e.finished_at.round(jiff::Unit::Second).unwrap_or(e.finished_at);
            json!({ "version": e.version, "commit": e.commit, "since": since })
        });
        // Releases promoted in the environment before and not yet here,
        // with the commits each shipped there (the ledger's record of them).
        let mut coming: Vec<serde_json::Value> = Vec::new();
        if let Some(previous) = i.checked_sub(1).map(|p| &config.environments[p]) {
            for p in promoted(&previous.name).iter().filter(|p| !here.iter().any(|h| h.version == p.version)) {
                if coming.last().is_some_and(|c| c["version"] == p.version.as_str()) {
                    continue;
                }
                coming.push(json!({ "version": p.version, "commit": p.commit, "commits": p.commits.len() }));
            }
        }
        // One router, or one per target (a line each), in wave order.
        let live = match &env.router {
            Some(router) => read_live(router).await,
            None => serde_json::Value::Null,
        };
        let mut targets = Vec::new();
        for (w, wave) in env.waves().iter().enumerate() {
            for target in wave.iter().filter_map(|name| env.target(name)) {
                targets.push(json!({ "name": target.name, "wave": w + 1, "router": read_live(&target.router).await }));
            }
        }
        let lease = match &config.ledger {
            LedgerConfig::File { path } => {
                let grace = lease_grace(config.lease_timeout_for(env));
                Ledger::File(path.clone())
                    .lease_holder(&config.app, &env.name, now, grace)
                    .await
                    .map_err(|e| Failure::provider(anyhow!(e)))?
                    .map(|l| {
                        json!({ "record_id": l.record_id, "release": l.version, "holder": l.holder, "until": l.expires_at })
                    })
            }
            LedgerConfig::Github {} => github_leases.get(i).cloned().flatten().map(|l| {
                json!({ "record_id": l.record_id, "release": l.version, "holder": l.holder, "until": l.expires_at })
            }),
        };
        let deployments: Vec<serde_json::Value> = records
            .iter()
            .filter(|(_, r)| r.environment == env.name)
            .map(|(path, r)| deployment(path, r, &live, &targets))
            .collect();
        environments.push(json!({
            "name": env.name,
            "stable": stable,
            "router": live,
            "targets": targets,
            "lease": lease,
            "coming": coming,
            "deployments": deployments,
        }));
    }
    let ledger = match &config.ledger {
        LedgerConfig::File { .. } => "file",
        LedgerConfig::Github {} => "github",
    };
    Ok(json!({ "app": config.app, "at": now, "ledger": ledger, "ledger_unread": unread, "environments": environments }))
}

/// A router as it is now, or why it could not be read.
async fn read_live(config: &sluice_core::config::RouterConfig) -> serde_json::Value {
    let router = Router::from_config(config, Backoff::NONE);
    match tokio::time::timeout(Duration::from_secs(5), router.state()).await {
        Ok(Ok(state)) => json!({
            "kind": state.kind,
            "candidate_weight": state.candidate_weight,
            "stable": state.stable,
            "candidate": state.candidate,
        }),
        Ok(Err(e)) => json!({ "kind": router.kind(), "error": e.to_string() }),
        Err(_) => json!({ "kind": router.kind(), "error": "did not answer within 5s" }),
    }
}

/// One record's place in its lifecycle and plan; with targets, each
/// target's weight as the record set it and as its router reads now.
fn deployment(
    path: &std::path::Path,
    r: &Record,
    live: &serde_json::Value,
    targets: &[serde_json::Value],
) -> serde_json::Value {
    let per_target: Vec<serde_json::Value> = r
        .targets
        .iter()
        .map(|t| {
            let router = targets.iter().find(|l| l["name"].as_str() == Some(t.name.as_str()));
            json!({
                "name": t.name,
                "wave": t.wave + 1,
                "set_weight": t.candidate_weight,
                "router_weight": router.and_then(|l| l["router"].get("candidate_weight")),
            })
        })
        .collect();
    let plan = r.strategy.plan();
    let stage = r.events.iter().rev().find_map(|e| match &e.detail {
        EventDetail::Traffic { stage: Some(s), .. } | EventDetail::Pause { stage: s, .. } => Some(*s),
        _ => None,
    });
    let (mut passed, mut failed) = (0, 0);
    for e in &r.events {
        if let EventDetail::Verdict { report, .. } = &e.detail {
            if report.verdict == Verdict::Pass {
                passed += 1;
            } else {
                failed += 1;
            }
        }
    }
    let next = r.status().next(r.candidate_weight);
    let last_verdict = r.events.iter().rev().find_map(|e| match &e.detail {
        EventDetail::Verdict { stage, report } => Some(json!({
            "verdict": report.verdict,
            "stage": stage.map(|s| s + 1),
            "target": e.target,
            "reason": report.reason,
        })),
        _ => None,
    });
    json!({
        "record": path,
        "id": r.id,
        "release": r.version,
        "commit": r.commit,
        "status": r.status().as_str(),
        "words": r.describe(),
        "stage": stage.map(|s| s + 1),
        "stages": plan.len(),
        "weights": plan.iter().map(|(w, _)| *w).collect::<Vec<u8>>(),
        "set_weight": r.candidate_weight,
        "router_weight": live.get("candidate_weight"),
        "candidate": r.candidate,
        "verdicts": { "passed": passed, "not_passed": failed },
        "last_verdict": last_verdict,
        "analysing": analysing(path),
        "targets": per_target,
        "next": next.text,
    })
}

/// The analyses running for the deployment in `record` as they stood at
/// their last interval (the live file `shift-traffic` and `verify-health`
/// write beside the record): one a window, with its time left and every
/// check's running value, limit and samples against `min_samples`. A
/// window past its `fresh_until` (two intervals after its last write, at
/// least 30 s) is a step that died: not shown.
fn analysing(record: &std::path::Path) -> serde_json::Value {
    let path = crate::analyse::live_path(record);
    let Some(live) = std::fs::read(&path).ok().and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
    else {
        return json!([]);
    };
    let now = jiff::Timestamp::now();
    let windows = live["windows"].as_object().into_iter().flatten();
    json!(windows.filter(|(_, w)| crate::analyse::live_fresh(w, now)).map(|(label, w)| json!({ "window": label, "left": w["left"], "left_seconds": w["left_seconds"], "plan_left_seconds": w["plan_left_seconds"], "checks": w["checks"] })).collect::<Vec<_>>())
}

/// The text view, its lines wrapped to `width` columns under their value
/// column.
fn render(view: &serde_json::Value, width: usize) -> String {
    let mut wrapped = String::new();
    for line in unwrapped(view).lines() {
        for line in crate::summary::wrap(line, VALUES, width) {
            wrapped.push_str(&line);
            wrapped.push('\n');
        }
    }
    wrapped
}

/// An ARN's resource ("targetgroup/green/50dc6c495c0c9188"), which names it
/// within the account and region the config gives; other values as they
/// are. (`--json` keeps the whole ARN.)
fn resource(value: &str) -> &str {
    match value.strip_prefix("arn:") {
        Some(rest) => rest.splitn(5, ':').nth(4).unwrap_or(value),
        None => value,
    }
}

/// Where the values start on a line of the text view ("  stable    v2").
const VALUES: usize = 12;

/// The text view, one line a fact however long.
fn unwrapped(view: &serde_json::Value) -> String {
    let str_of = |v: &serde_json::Value| v.as_str().map(str::to_owned).unwrap_or_else(|| v.to_string());
    // Times to the second: a status view has no use for nanoseconds.
    let time_of = |v: &serde_json::Value| match v.as_str().map(str::parse::<jiff::Timestamp>) {
        Some(Ok(t)) => t.round(jiff::Unit::Second).map_or_else(|_| t.to_string(), |t| t.to_string()),
        _ => str_of(v),
    };
    let mut out = format!("{} at {}\n", str_of(&view["app"]), time_of(&view["at"]));
    for env in view["environments"].as_array().into_iter().flatten() {
        out.push_str(&format!("\n{}\n", str_of(&env["name"])));
        let stable = &env["stable"];
        let unread = view["ledger_unread"].as_str().map(|why| format!("(not read: {why})"));
        if let Some(unread) = &unread {
            out.push_str(&format!("  stable    {unread}\n"));
        } else if stable.is_null() && view["ledger"] == "github" {
            out.push_str("  stable    (no promotion in the GitHub ledger's journal of the last 60 days)\n");
        } else if stable.is_null() {
            out.push_str("  stable    (no promotion in the ledger)\n");
        } else {
            out.push_str(&format!("  stable    {} since {}\n", str_of(&stable["version"]), time_of(&stable["since"])));
        }
        // The weight on the line, each pool (a URL, an ARN) on its own.
        let router_line = |router: &serde_json::Value| match router.get("error") {
            Some(e) => format!("{} unreachable: {}", str_of(&router["kind"]), str_of(e)),
            None => format!(
                "{}: candidate {}%\n{pad}candidate {}\n{pad}stable    {}",
                str_of(&router["kind"]),
                router["candidate_weight"],
                router["candidate"].as_str().map_or("none", resource),
                router["stable"].as_str().map_or("?", resource),
                pad = " ".repeat(VALUES),
            ),
        };
        if !env["router"].is_null() {
            out.push_str(&format!("  router    {}\n", router_line(&env["router"])));
        }
        for t in env["targets"].as_array().into_iter().flatten() {
            out.push_str(&format!(
                "  target    {} (wave {}): {}\n",
                str_of(&t["name"]),
                t["wave"],
                router_line(&t["router"])
            ));
        }
        match &env["lease"] {
            serde_json::Value::Null if unread.is_some() => {
                out.push_str(&format!("  held by   {}\n", unread.as_deref().unwrap_or_default()))
            }
            serde_json::Value::Null => out.push_str("  held by   nobody\n"),
            l => out.push_str(&format!(
                "  held by   {} (release {}, {}) until {}\n",
                str_of(&l["record_id"]),
                str_of(&l["release"]),
                str_of(&l["holder"]),
                time_of(&l["until"])
            )),
        }
        let coming: Vec<String> = env["coming"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|c| {
                let commit = c["commit"].as_str().map(|s| format!("commit {}", s.chars().take(7).collect::<String>()));
                let commits = match c["commits"].as_u64() {
                    Some(0) | None => None,
                    Some(1) => Some("1 commit".to_owned()),
                    Some(n) => Some(format!("{n} commits")),
                };
                let about: Vec<String> = commit.into_iter().chain(commits).collect();
                match about.is_empty() {
                    true => str_of(&c["version"]),
                    false => format!("{} ({})", str_of(&c["version"]), about.join(", ")),
                }
            })
            .collect();
        if !coming.is_empty() {
            out.push_str(&format!("  coming    {}, promoted in the environment before\n", coming.join("; ")));
        }
        for d in env["deployments"].as_array().into_iter().flatten() {
            let stage = match d["stage"].as_u64() {
                Some(s) => format!("stage {s}/{}", d["stages"]),
                None => format!("{} stages", d["stages"]),
            };
            out.push_str(&format!(
                "  deploying {} ({}): {}\n            {stage}, set {}% / router {}, verdicts ✔ {} ✖ {}\n            next: {}\n",
                str_of(&d["release"]),
                str_of(&d["record"]),
                str_of(&d["words"]),
                d["set_weight"],
                d["router_weight"].as_u64().map_or("unknown".to_owned(), |w| format!("{w}%")),
                d["verdicts"]["passed"],
                d["verdicts"]["not_passed"],
                str_of(&d["next"]),
            ));
            for a in d["analysing"].as_array().into_iter().flatten() {
                out.push_str(&format!("            analysing {}: {}\n", str_of(&a["window"]), str_of(&a["left"])));
                for c in a["checks"].as_array().into_iter().flatten() {
                    let stable = c["stable"].as_str().map(|s| format!(" vs stable {s}")).unwrap_or_default();
                    out.push_str(&format!(
                        "              {} {}{stable} (limit {}) n={}/{}\n",
                        str_of(&c["name"]),
                        str_of(&c["value"]),
                        str_of(&c["limit"]),
                        c["samples"],
                        c["min_samples"],
                    ));
                }
            }
            let last = &d["last_verdict"];
            if !last.is_null() {
                let at = match (last["target"].as_str(), last["stage"].as_u64()) {
                    (Some(t), Some(s)) => format!(" (target {t}, stage {s})"),
                    (Some(t), None) => format!(" (target {t})"),
                    (None, Some(s)) => format!(" (stage {s})"),
                    (None, None) => String::new(),
                };
                out.push_str(&format!(
                    "            last verdict: {}{at}: {}\n",
                    str_of(&last["verdict"]),
                    str_of(&last["reason"])
                ));
            }
            for t in d["targets"].as_array().into_iter().flatten() {
                out.push_str(&format!(
                    "            {} (wave {}): set {}% / router {}\n",
                    str_of(&t["name"]),
                    t["wave"],
                    t["set_weight"],
                    t["router_weight"].as_u64().map_or("unknown".to_owned(), |w| format!("{w}%")),
                ));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Only lines that changed are printed, each with its time and
    /// environment; the heading's time and unchanged lines are not.
    #[test]
    fn changes_are_the_new_lines_with_their_environment() {
        let before = "shop at 2026-11-28T01:00:00Z\n\ndev\n  router    local: candidate 0%\n  held by   nobody\n\nprd\n  held by   nobody\n";
        let after = "shop at 2026-11-28T01:00:02Z\n\ndev\n  router    local: candidate 25%\n  held by   nobody\n\nprd\n  held by   nobody\n";
        assert_eq!(changes(before, after, "2026-11-28T01:00:02Z"), ["01:00:02 dev: router    local: candidate 25%"]);
        assert!(changes(after, after, "2026-11-28T01:00:04Z").is_empty());
    }
}
