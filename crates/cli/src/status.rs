//! `sluice status`: where each environment stands, from another terminal or
//! a laptop while CI runs. Read-only: it never takes a lock or a lease and
//! never changes a router.
//!
//! Per environment, in promotion order: the stable release (the last
//! promotion in the file ledger; with the GitHub ledger, where to see it), the router as it is now (candidate weight,
//! stable and candidate pools), the deployment holding the environment (its
//! lease), what is coming (releases promoted in the previous environment and
//! not yet here), and for each record given with `--record`, where that
//! deployment stands: its status in words, the plan's stage, the weight the
//! record set against the router's, its verdicts (✔ passed, ✖ not), and the
//! next command. `--watch` redraws until interrupted; `--json` prints the
//! same as one JSON document.

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
    loop {
        let view = gather(&config, &args).await?;
        let text = if args.json { format!("{:#}\n", view) } else { render(&view) };
        if args.watch.is_some() && std::io::stdout().is_terminal() {
            // Clear the screen and go home, then draw.
            print!("\x1b[2J\x1b[H");
        }
        print!("{text}");
        let Some(every) = args.watch else { return Ok(Exit::OK) };
        tokio::time::sleep(every).await;
    }
}

/// Everything shown, as JSON (the text is rendered from it).
async fn gather(config: &Config, args: &Args) -> Result<serde_json::Value, Failure> {
    let history: Vec<LedgerEntry> = match &config.ledger {
        LedgerConfig::File { path } => sluice_core::ledger::read_file(path).provider_failed()?,
        LedgerConfig::Github {} => Vec::new(),
    };
    let mut records = Vec::new();
    for path in &args.record {
        let record = Record::load(path, &Expect { app: Some(&config.app), ..Expect::default() }).bad_input()?;
        records.push((path.clone(), record));
    }
    let now = jiff::Timestamp::now().round(jiff::Unit::Second).unwrap_or_else(|_| jiff::Timestamp::now());
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
        let coming: Vec<String> = match i.checked_sub(1).map(|p| &config.environments[p]) {
            Some(previous) => {
                let mut versions: Vec<String> = promoted(&previous.name)
                    .iter()
                    .filter(|p| !here.iter().any(|h| h.version == p.version))
                    .map(|p| p.version.clone())
                    .collect();
                versions.dedup();
                versions
            }
            None => Vec::new(),
        };
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
            // Reading GitHub's claims costs API calls; its Environments page shows them.
            LedgerConfig::Github {} => None,
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
    // The stable release and the lease are read from a file ledger only:
    // with GitHub's, they are on the repository's Environments page.
    let ledger = match &config.ledger {
        LedgerConfig::File { .. } => "file",
        LedgerConfig::Github {} => "github",
    };
    Ok(json!({ "app": config.app, "at": now, "ledger": ledger, "environments": environments }))
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
        "targets": per_target,
        "next": next.text,
    })
}

/// What the text view says of the stable release and the lease with the
/// GitHub ledger, which `status` does not read (it would cost API calls).
const GITHUB_UNREAD: &str = "(not read from the GitHub ledger: see the repository's Environments page)";

/// The text view.
fn render(view: &serde_json::Value) -> String {
    let str_of = |v: &serde_json::Value| v.as_str().map(str::to_owned).unwrap_or_else(|| v.to_string());
    let mut out = format!("{} at {}\n", str_of(&view["app"]), str_of(&view["at"]));
    for env in view["environments"].as_array().into_iter().flatten() {
        out.push_str(&format!("\n{}\n", str_of(&env["name"])));
        let stable = &env["stable"];
        let unread = view["ledger"] == "github";
        if unread {
            out.push_str(&format!("  stable    {GITHUB_UNREAD}\n"));
        } else if stable.is_null() {
            out.push_str("  stable    (no promotion in the ledger)\n");
        } else {
            out.push_str(&format!("  stable    {} since {}\n", str_of(&stable["version"]), str_of(&stable["since"])));
        }
        let router_line = |router: &serde_json::Value| match router.get("error") {
            Some(e) => format!("{} unreachable: {}", str_of(&router["kind"]), str_of(e)),
            None => format!(
                "{}: candidate {}% ({}), stable {}",
                str_of(&router["kind"]),
                router["candidate_weight"],
                router["candidate"].as_str().unwrap_or("none"),
                router["stable"].as_str().unwrap_or("?"),
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
            serde_json::Value::Null if unread => out.push_str(&format!("  held by   {GITHUB_UNREAD}\n")),
            serde_json::Value::Null => out.push_str("  held by   nobody\n"),
            l => out.push_str(&format!(
                "  held by   {} (release {}, {}) until {}\n",
                str_of(&l["record_id"]),
                str_of(&l["release"]),
                str_of(&l["holder"]),
                str_of(&l["until"])
            )),
        }
        let coming: Vec<String> = env["coming"].as_array().into_iter().flatten().map(str_of).collect();
        if !coming.is_empty() {
            out.push_str(&format!("  coming    {} (promoted in the environment before)\n", coming.join(", ")));
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
