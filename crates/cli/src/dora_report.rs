//! `dora-report`: the DORA metrics of the deployment history.
//!
//! Reads the ledger file (streaming) or the deployment history on GitHub
//! (`--source github`, the default when the config's ledger is GitHub),
//! computes the five metrics per app and
//! environment with their DORA 2024 tiers and the deployment history, and
//! renders them: a table on stdout (or JSON / Markdown with `--format`), the
//! Markdown report in `$GITHUB_STEP_SUMMARY`, and optionally JSON, Markdown
//! and an SVG trend chart in files. The definitions are in `sluice-dora`'s
//! crate docs and docs/dora.md.

use anyhow::anyhow;
use clap::{Parser, ValueEnum};
use jiff::{Timestamp, ToSpan};
use sluice_core::config::{Config, LedgerConfig};
use sluice_core::record::write_atomic;
use sluice_core::{Classify, Exit, Failure, gha};
use sluice_dora::{Filter, Options};
#[cfg(feature = "github")]
use sluice_providers::github::{GitHub, history};

/// The GitHub source's defaults, as `sluice_providers::github::history`
/// has them, so `--help` reads the same in a build without GitHub support.
#[cfg(not(feature = "github"))]
mod history {
    pub const DEFAULT_MAX_DEPLOYMENTS: usize = 500;
    pub const DEFAULT_RESERVE: u32 = 100;
}
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Report the DORA metrics of the deployment history.
#[derive(Parser, Debug)]
#[command(
    name = "dora-report",
    version,
    about = "Report the DORA metrics (deployment frequency, lead time, change fail rate, recovery time, rework rate) of the deployment history, with tiers and trend.",
    after_help = "Exit codes: 0 done · 1 a decision said no · 2 bad input (nothing changed) · 3 a provider failed after retries · 130/143 cancelled.\n\nExamples:\n  dora-report --since 90d --markdown dora.md --json dora.json\n  dora-report --source github --all-environments --since 30d --svg dora.svg\n\nEvery flag also reads an INPUT_* environment variable (INPUT_ENVIRONMENT, INPUT_RECORD, ...). More: https://github.com/sluice-dev/sluice/blob/main/docs/cli.md"
)]
pub struct Args {
    /// The sluice config file: names the ledger and the production
    /// environment (the last one). Optional with --ledger.
    #[arg(long, env = "INPUT_CONFIG", default_value = "sluice.toml", value_name = "PATH")]
    pub config: PathBuf,
    /// Read this ledger file instead of the one the config names.
    #[arg(long, env = "INPUT_LEDGER", value_name = "PATH", conflicts_with = "source")]
    pub ledger: Option<PathBuf>,
    /// Where the history is read: the ledger file, or GitHub (deployments,
    /// their statuses, compare between deployed SHAs, incident issues).
    /// Default: the config's ledger kind; `file` with --ledger.
    #[arg(long, env = "INPUT_SOURCE", value_enum, value_name = "SOURCE")]
    pub source: Option<Source>,
    /// GitHub source: issues with this label are incidents (default: the
    /// production environment's gate `incident_label`, else `incident`).
    #[arg(long, value_name = "LABEL")]
    pub incident_label: Option<String>,
    /// GitHub source: read the statuses of at most this many deployments,
    /// the newest (each costs one API call, each promotion in the window one
    /// more for its commits).
    #[arg(long, default_value_t = history::DEFAULT_MAX_DEPLOYMENTS, value_name = "N")]
    pub github_max_deployments: usize,
    /// GitHub source: leave at least this many calls of the rate limit for
    /// the gates and promotions running beside the report. Once GitHub says
    /// no more are left, reading stops and the report is marked partial
    /// (its `partial` field, a warning, a banner in every format).
    #[arg(long, default_value_t = history::DEFAULT_RESERVE, value_name = "CALLS")]
    pub github_reserve: u32,
    /// Environments to report (repeatable; default: production, the last
    /// environment of the config; every environment without a config).
    #[arg(long = "environment", short = 'e', value_name = "NAME")]
    pub environments: Vec<String>,
    /// Report every environment.
    #[arg(long, conflicts_with = "environments")]
    pub all_environments: bool,
    /// Apps to report (repeatable; default: all).
    #[arg(long = "app", value_name = "NAME")]
    pub apps: Vec<String>,
    /// Start of the window: a duration back from now (`90d`, `2w`), an RFC
    /// 3339 time, a UTC date (`2026-01-31`), or `all` for the ledger's start.
    #[arg(long, env = "INPUT_SINCE", default_value = "90d", value_name = "WHEN")]
    pub since: String,
    /// End of the window (exclusive), in the same forms; default now.
    #[arg(long, env = "INPUT_UNTIL", value_name = "WHEN")]
    pub until: Option<String>,
    /// A hotfix that starts within this time after a deployment marks that
    /// deployment as failed.
    #[arg(long, default_value = "24h", value_parser = parse_duration, value_name = "DURATION")]
    pub hotfix_window: Duration,
    /// Rows of deployment history per environment.
    #[arg(long, default_value_t = 20, value_name = "N")]
    pub history: usize,
    /// What to print on stdout.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
    /// Also write the JSON report (schema `sluice.dora-report/v1`) here.
    #[arg(long, value_name = "PATH")]
    pub json: Option<PathBuf>,
    /// Also write the Markdown report here.
    #[arg(long, value_name = "PATH")]
    pub markdown: Option<PathBuf>,
    /// Also write the SVG trend chart here (by day for a window of at most
    /// 31 days, else by week).
    #[arg(long, value_name = "PATH")]
    pub svg: Option<PathBuf>,
}

/// Where the deployment history comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Source {
    /// The JSON Lines ledger file.
    File,
    /// GitHub Deployments of the repository.
    Github,
}

/// The form of the report on stdout.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// A table for a terminal.
    Text,
    Json,
    Markdown,
}

fn parse_duration(text: &str) -> Result<Duration, String> {
    sluice_core::config::parse_duration(text)
}

pub fn main() -> std::process::ExitCode {
    entry(Args::parse())
}

/// Runs the step with parsed flags: the one entry point of the `dora-report`
/// binary and of `sluice dora-report`.
pub fn entry(args: Args) -> std::process::ExitCode {
    crate::run("dora-report", run(args))
}

pub async fn run(args: Args) -> Result<Exit, Failure> {
    let now = Timestamp::now();
    let since = parse_when(&args.since, now).map_err(|m| Failure::input(anyhow!("--since: {m}")))?;
    let until = match &args.until {
        Some(text) => parse_when(text, now).map_err(|m| Failure::input(anyhow!("--until: {m}")))?,
        None => Some(now),
    };
    if let (Some(s), Some(u)) = (since, until)
        && s >= u
    {
        return Err(Failure::input(anyhow!("the window is empty: --since {s} is not before --until {u}")));
    }
    let config = match (&args.ledger, Config::load(&args.config)) {
        (_, Ok(config)) => Some(config),
        (Some(_), Err(_)) if !args.config.exists() => None,
        (_, Err(e)) => return Err(Failure::input(e)),
    };
    let source = match (&args.ledger, args.source, &config) {
        (Some(path), _, _) => Read::File(path.clone()),
        (None, Some(Source::Github), _) => Read::GitHub,
        (None, None, Some(Config { ledger: LedgerConfig::Github {}, .. })) => Read::GitHub,
        (None, _, Some(Config { ledger: LedgerConfig::File { path }, .. })) => Read::File(path.clone()),
        (None, Some(Source::File), Some(_)) => {
            return Err(Failure::input(anyhow!(
                "--source file, but {} keeps the history on GitHub (ledger kind \"github\"); pass --ledger PATH",
                args.config.display()
            )));
        }
        (None, _, None) => unreachable!("a config is loaded or an error returned when there is no --ledger"),
    };
    let environments = if args.all_environments || !args.environments.is_empty() {
        args.environments.clone()
    } else {
        config.as_ref().and_then(|c| c.environments.last()).map(|e| vec![e.name.clone()]).unwrap_or_default()
    };
    let options = Options {
        filter: Filter { apps: args.apps.clone(), environments, since, until },
        hotfix_window: args.hotfix_window,
        history_limit: args.history,
        environment_order: config
            .as_ref()
            .map(|c| c.environments.iter().map(|e| e.name.clone()).collect())
            .unwrap_or_default(),
    };
    let report = match source {
        Read::File(ledger) => read(&ledger, &options)?,
        Read::GitHub => read_github(&args, config.as_ref(), &options).await?,
    };

    let markdown = sluice_dora::to_markdown(&report);
    let json = sluice_dora::to_json(&report);
    if let Some(path) = &args.json {
        write_file(path, &json)?;
    }
    if let Some(path) = &args.markdown {
        write_file(path, &markdown)?;
    }
    if let Some(path) = &args.svg {
        write_file(path, &sluice_dora::to_svg(&report))?;
    }
    match args.format {
        Format::Text => print!("{}", sluice_dora::to_terminal(&report)),
        Format::Json => println!("{json}"),
        Format::Markdown => print!("{markdown}"),
    }
    crate::summary::write(&markdown);
    let mut outputs = gha::Outputs::default();
    if let Some(path) = &args.json {
        outputs.set("report", path.display().to_string());
    }
    outputs.flush().provider_failed()?;
    Ok(Exit::OK)
}

enum Read {
    File(PathBuf),
    GitHub,
}

/// The report from the deployment history on GitHub; prints what it cost
/// in API calls on stderr.
#[cfg(feature = "github")]
async fn read_github(args: &Args, config: Option<&Config>, options: &Options) -> Result<sluice_dora::Report, Failure> {
    let github_config = config.map(|c| c.github.clone()).unwrap_or_default();
    let github = GitHub::from_env(&github_config, "dora-report").map_err(Failure::input)?;
    let production = config.and_then(|c| c.environments.last().map(|e| c.gate_for(e)));
    let label = args
        .incident_label
        .clone()
        .or_else(|| production.and_then(|g| g.incident_label))
        .unwrap_or_else(|| "incident".to_owned());
    let query = history::Query {
        environments: options.filter.environments.clone(),
        apps: options.filter.apps.clone(),
        since: options.filter.since,
        until: options.filter.until,
        after: options.hotfix_window,
        incident_label: Some(label),
        max_deployments: args.github_max_deployments,
        default_app: config.map(|c| c.app.clone()),
        reserve: args.github_reserve,
    };
    let read = history::read(&github, &query).await.map_err(|e| {
        Failure::provider(anyhow::Error::new(e).context("cannot read the deployment history from GitHub"))
    })?;
    let stats = github.stats();
    eprintln!(
        "dora-report: read {} journal entries, {} deployments and {} linked incident issues from GitHub ({}) with {} API calls \
         ({} counted against the rate limit, {} not modified{})",
        read.journal_entries,
        read.deployments,
        read.incidents_linked,
        github.repository(),
        stats.requests,
        stats.counted(),
        stats.not_modified,
        stats.remaining.map(|r| format!(", {r} left of the rate limit")).unwrap_or_default()
    );
    let mut report = sluice_dora::compute(&read.entries, options);
    report.notes.extend(read.notes);
    if let Some(partial) = read.partial {
        gha::warning(&format!("partial DORA report: {partial}"));
        report.partial = Some(partial);
    }
    Ok(report)
}

/// Without GitHub support there is no history on GitHub to read.
#[cfg(not(feature = "github"))]
async fn read_github(_: &Args, _: Option<&Config>, _: &Options) -> Result<sluice_dora::Report, Failure> {
    Err(crate::features::left_out("--source github (or ledger kind \"github\")"))
}

fn write_file(path: &Path, text: &str) -> Result<(), Failure> {
    write_atomic(path, text.as_bytes()).map_err(|e| anyhow!("cannot write {}: {e}", path.display())).provider_failed()
}

/// The report from the ledger file, read by the ledger reader's rules (a
/// torn tail is skipped with a warning and a note in the report).
fn read(ledger: &Path, options: &Options) -> Result<sluice_dora::Report, Failure> {
    match sluice_dora::report_file(ledger, options) {
        Ok((report, torn)) => {
            if let Some(torn) = torn {
                gha::warning(&torn.to_string());
            }
            Ok(report)
        }
        Err(sluice_dora::Error::Open { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
            Err(Failure::input(anyhow!(
                "no ledger at {}: promote a release first (promote writes it), or pass --ledger PATH",
                ledger.display()
            )))
        }
        Err(e @ sluice_dora::Error::Damaged { .. }) => Err(Failure::input(e)),
        Err(e) => Err(Failure::provider(e)),
    }
}

/// A window bound: `all` (none), a span back from `now` (`90d`, `12h`, `2w`),
/// an RFC 3339 time, or a UTC date.
fn parse_when(text: &str, now: Timestamp) -> Result<Option<Timestamp>, String> {
    let text = text.trim();
    if text.eq_ignore_ascii_case("all") {
        return Ok(None);
    }
    if let Ok(t) = text.parse::<Timestamp>() {
        return Ok(Some(t));
    }
    if let Ok(date) = text.parse::<jiff::civil::Date>() {
        return date
            .to_zoned(jiff::tz::TimeZone::UTC)
            .map(|z| Some(z.timestamp()))
            .map_err(|e| format!("{text:?}: {e}"));
    }
    let hint = "write a duration back from now (\"90d\", \"2w\", \"12h\"), an RFC 3339 time \
                (\"2026-01-31T12:00:00Z\"), a date (\"2026-01-31\") or \"all\"";
    let (number, unit) = text.split_at(text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len()));
    let n: i64 = number.parse().map_err(|_| format!("{text:?} is not a time; {hint}"))?;
    let hours = match unit {
        "h" => n,
        "d" => n.saturating_mul(24),
        "w" => n.saturating_mul(24 * 7),
        _ => return Err(format!("{text:?} is not a time; {hint}")),
    };
    if hours > 24 * 366 * 100 {
        return Err(format!("{text:?} reaches back more than 100 years; {hint}"));
    }
    now.checked_sub(hours.hours()).map(Some).map_err(|e| format!("{text:?}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_bounds_parse_in_every_documented_form() {
        let now: Timestamp = "2026-11-23T12:00:00Z".parse().expect("time");
        assert_eq!(parse_when("all", now), Ok(None));
        assert_eq!(parse_when("90d", now), Ok(Some("2026-08-25T12:00:00Z".parse().expect("time"))));
        assert_eq!(parse_when("2w", now), Ok(Some("2026-11-09T12:00:00Z".parse().expect("time"))));
        assert_eq!(parse_when("12h", now), Ok(Some("2026-11-23T00:00:00Z".parse().expect("time"))));
        assert_eq!(parse_when("2026-01-31", now), Ok(Some("2026-01-31T00:00:00Z".parse().expect("time"))));
        assert_eq!(
            parse_when("2026-01-31T10:00:00+02:00", now),
            Ok(Some("2026-01-31T08:00:00Z".parse().expect("time")))
        );
        for bad in ["", "soon", "90", "90y", "-5d", "99999999999999999999d", "1000000w"] {
            assert!(parse_when(bad, now).is_err(), "{bad:?} accepted");
        }
    }
}
