//! Every environment variable sluice reads, declared once.
//!
//! Flags bind to `INPUT_*` names through clap's `env = ...` so a workflow step
//! can pass inputs through `env:`; the runner's own variables are read here
//! and nowhere else.

/// `true` on GitHub Actions runners.
pub const GITHUB_ACTIONS: &str = "GITHUB_ACTIONS";
/// Set by most CI systems.
pub const CI: &str = "CI";
/// File that receives step outputs (`name=value` or heredoc blocks).
pub const GITHUB_OUTPUT: &str = "GITHUB_OUTPUT";
/// File that receives the step's Markdown summary.
pub const GITHUB_STEP_SUMMARY: &str = "GITHUB_STEP_SUMMARY";
/// The person or app that started the run.
pub const GITHUB_ACTOR: &str = "GITHUB_ACTOR";
/// `https://github.com` or a GitHub Enterprise server.
pub const GITHUB_SERVER_URL: &str = "GITHUB_SERVER_URL";
/// `owner/repo`.
pub const GITHUB_REPOSITORY: &str = "GITHUB_REPOSITORY";
/// The workflow run's id.
pub const GITHUB_RUN_ID: &str = "GITHUB_RUN_ID";
/// The commit the run is for.
pub const GITHUB_SHA: &str = "GITHUB_SHA";
/// The token for GitHub's REST API (the workflow's `GITHUB_TOKEN`); masked
/// as soon as it is read, never written anywhere.
pub const GITHUB_TOKEN: &str = "GITHUB_TOKEN";
/// GitHub's REST API root: `https://api.github.com`, or
/// `https://HOST/api/v3` on GitHub Enterprise Server (set by the runner).
pub const GITHUB_API_URL: &str = "GITHUB_API_URL";
/// Set to `1` by the runner when a run is re-run with debug logging.
pub const RUNNER_DEBUG: &str = "RUNNER_DEBUG";
/// Any value but `0`/`false` turns on debug lines (API call counts, ...);
/// the same as `--verbose`.
pub const SLUICE_DEBUG: &str = "SLUICE_DEBUG";
/// Disables colour when set (https://no-color.org).
pub const NO_COLOR: &str = "NO_COLOR";
/// The local user, for `triggered_by` outside CI.
pub const USER: &str = "USER";

/// Reads a variable, treating an empty value as unset (as the runner does).
pub fn var(name: &str) -> Option<String> {
    #[allow(clippy::disallowed_methods)] // the one place that reads the environment
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

/// Whether the process runs in CI (plain log lines, no progress bars).
pub fn in_ci() -> bool {
    var(GITHUB_ACTIONS).is_some() || var(CI).is_some_and(|v| v != "false" && v != "0")
}

/// Link to the current workflow run, when running in GitHub Actions.
pub fn run_url() -> Option<String> {
    let server = var(GITHUB_SERVER_URL)?;
    let repo = var(GITHUB_REPOSITORY)?;
    let run = var(GITHUB_RUN_ID)?;
    Some(format!("{server}/{repo}/actions/runs/{run}"))
}

/// Who started this step: the GitHub actor, else the local user.
pub fn actor() -> Option<String> {
    var(GITHUB_ACTOR).or_else(|| var(USER))
}

/// GitHub's REST API root, `https://api.github.com` unless the runner (or
/// the user, for GitHub Enterprise) says otherwise; no trailing slash.
pub fn github_api_url() -> String {
    var(GITHUB_API_URL).unwrap_or_else(|| "https://api.github.com".to_owned()).trim_end_matches('/').to_owned()
}

/// The web root for links: `$GITHUB_SERVER_URL`, else `https://github.com`.
pub fn github_server_url() -> String {
    var(GITHUB_SERVER_URL).unwrap_or_else(|| "https://github.com".to_owned()).trim_end_matches('/').to_owned()
}

/// Whether debug lines were asked for through the environment
/// (`SLUICE_DEBUG`, or a runner's debug logging).
pub fn debug_requested() -> bool {
    let on = |v: String| v != "0" && v != "false";
    var(SLUICE_DEBUG).is_some_and(on) || var(RUNNER_DEBUG).is_some_and(|v| v == "1")
}
