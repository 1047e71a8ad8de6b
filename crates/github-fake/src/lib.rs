//! A stateful local fake of the GitHub REST endpoints sluice uses, for tests.
//!
//! Nothing real can run here in GitHub's place, so this serves the documented
//! request and response shapes of: deployments and deployment statuses,
//! check runs and the combined commit status of a ref, a commit (merge
//! commits with two parents), issues (`labels`, `state`, `since`; pull
//! requests among them, as GitHub lists them), workflow dispatch,
//! environment approvals of a run, compare, workflow runs (listed by
//! status, cancelled) and their artifacts (zip downloads), and release
//! downloads (the
//! `github.com/OWNER/REPO/releases/download/TAG/NAME` URL, redirected as
//! GitHub does); and (module `git`) the contents API with its `sha`
//! preconditions and the Git database's refs, trees, commits and blobs, for
//! sluice's ledger branch. Tests can pin its clock to seed a history at
//! exact times.
//! Where workflows meet the API it checks what GitHub checks: a
//! `workflow_dispatch` is validated against the inputs the target workflow
//! declares (422 with GitHub's messages), and a token minted for one job
//! carries that job's `permissions:` (a call outside them is 403, as GitHub
//! answers it). It keeps
//! what is written, answers reads from it, and behaves like the API where
//! sluice depends on it: bearer-token auth, `per_page`/`page` with `Link`
//! headers, weak `ETag`s with `304 Not Modified` (which do not count against
//! the rate limit), `x-ratelimit-*` headers on every answer, and rate-limit
//! refusals (403 with `x-ratelimit-remaining: 0` or `retry-after`) on demand.
//!
//! It runs on 127.0.0.1 on a thread of its own, so blocking tests that spawn
//! binaries and async tests can both use it. It never talks to GitHub and
//! never leaves a test.

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response, StatusCode};
use serde_json::{Value, json};
use std::collections::{HashMap, VecDeque};
use std::convert::Infallible;
use std::sync::{Arc, Mutex, MutexGuard};

mod git;

/// Requests an hour, as for a workflow's `GITHUB_TOKEN`.
pub const RATE_LIMIT: u64 = 1000;

/// The user the token belongs to, as GitHub shows the workflow token.
pub const BOT_LOGIN: &str = "github-actions[bot]";

/// One request the fake answered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Seen {
    pub method: String,
    pub path: String,
    pub query: String,
    pub status: u16,
    /// The request carried `If-None-Match`.
    pub conditional: bool,
    /// The whole request as received (request line, headers, body), to check
    /// what a client sends.
    pub raw: String,
}

/// A rate-limit refusal to answer the next request with.
#[derive(Clone, Copy, Debug)]
pub enum Refusal {
    /// The primary limit is spent: 403, `x-ratelimit-remaining: 0` and
    /// `x-ratelimit-reset` this many seconds ahead.
    Primary { reset_in: u64 },
    /// A secondary limit: 403 with `retry-after` in seconds.
    Secondary { retry_after: u64 },
}

/// One input a workflow declares under `on.workflow_dispatch.inputs`.
///
/// <https://docs.github.com/en/actions/reference/workflows-and-actions/workflow-syntax#onworkflow_dispatchinputs>
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DispatchInput {
    pub name: String,
    pub required: bool,
    /// `type: choice`: the allowed values.
    pub options: Vec<String>,
}

impl DispatchInput {
    /// An optional string input.
    pub fn optional(name: &str) -> DispatchInput {
        DispatchInput { name: name.to_owned(), ..Default::default() }
    }
}

/// A permission level of a `GITHUB_TOKEN` scope, as a job's `permissions:`
/// grants it.
///
/// <https://docs.github.com/en/actions/reference/workflows-and-actions/workflow-syntax#permissions>
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Access {
    None,
    Read,
    Write,
}

#[derive(Default)]
struct Repo {
    deployments: Vec<Value>,
    deployment_statuses: HashMap<u64, Vec<Value>>,
    check_runs: Vec<Value>,
    commit_statuses: Vec<(String, Value)>,
    issues: Vec<Value>,
    workflows: HashMap<String, Vec<DispatchInput>>,
    dispatches: Vec<Value>,
    commits: Vec<Value>,
    approvals: HashMap<u64, Vec<Value>>,
    refs: HashMap<String, String>,
    git: git::Git,
    /// Release assets by `TAG/NAME`.
    assets: HashMap<String, Vec<u8>>,
    /// Workflow runs: id -> (workflow file, status, conclusion).
    runs: HashMap<u64, (String, String, Option<String>)>,
    /// Artifacts of runs: (run id, artifact id, name, zip bytes).
    artifacts: Vec<(u64, u64, String, Vec<u8>)>,
}

struct State {
    token: String,
    /// Tokens minted for one job: what each may do, by scope (`contents`,
    /// `deployments`, `actions`, ...); a scope not named is `none`.
    scoped: HashMap<String, HashMap<String, Access>>,
    base: String,
    next_id: u64,
    remaining: u64,
    reset_at: i64,
    refusals: VecDeque<Refusal>,
    repos: HashMap<String, Repo>,
    seen: Vec<Seen>,
    /// Seconds added to the fake's clock (to age what it stores).
    clock_offset: i64,
    /// A fixed time to stamp what is stored with, when set.
    pinned: Option<jiff::Timestamp>,
}

impl State {
    fn id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    fn now(&self) -> jiff::Timestamp {
        if let Some(at) = self.pinned {
            return at;
        }
        jiff::Timestamp::now() + jiff::SignedDuration::from_secs(self.clock_offset)
    }

    fn stamp(&self) -> String {
        self.now().strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
    }

    fn repo(&mut self, name: &str) -> &mut Repo {
        self.repos.entry(name.to_owned()).or_default()
    }
}

/// A running fake; stops when dropped.
pub struct Fake {
    state: Arc<Mutex<State>>,
    addr: std::net::SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for Fake {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn lock(state: &Mutex<State>) -> MutexGuard<'_, State> {
    state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Fake {
    /// Starts the fake on a free 127.0.0.1 port; only requests with
    /// `Authorization: Bearer {token}` (or `token {token}`) are served.
    pub fn start(token: &str) -> Fake {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        listener.set_nonblocking(true).expect("non-blocking listener");
        let addr = listener.local_addr().expect("local address");
        let state = Arc::new(Mutex::new(State {
            token: token.to_owned(),
            scoped: HashMap::new(),
            base: format!("http://{addr}"),
            next_id: 1000,
            remaining: RATE_LIMIT,
            reset_at: jiff::Timestamp::now().as_second() + 3600,
            refusals: VecDeque::new(),
            repos: HashMap::new(),
            seen: Vec::new(),
            clock_offset: 0,
            pinned: None,
        }));
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let served = state.clone();
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
            runtime.block_on(serve(listener, served, stopped));
        });
        Fake { state, addr, stop: Some(stop), thread: Some(thread) }
    }

    /// The API root to use as `GITHUB_API_URL`.
    pub fn api_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn with<T>(&self, f: impl FnOnce(&mut State) -> T) -> T {
        f(&mut lock(&self.state))
    }

    // ---- seeding -------------------------------------------------------

    /// Adds a check run on `sha`: `status` is `queued`, `in_progress` or
    /// `completed`; `conclusion` (when completed) `success`, `failure`,
    /// `neutral`, `cancelled`, `skipped`, `timed_out` or `action_required`.
    pub fn add_check_run(&self, repo: &str, sha: &str, name: &str, status: &str, conclusion: Option<&str>) -> u64 {
        self.with(|s| {
            let id = s.id();
            let now = s.stamp();
            let html_url = format!("https://github.com/{repo}/runs/{id}");
            let run = json!({
                "id": id,
                "node_id": format!("CR_{id}"),
                "head_sha": sha,
                "external_id": "",
                "url": format!("{}/repos/{repo}/check-runs/{id}", s.base),
                "html_url": html_url,
                "details_url": html_url,
                "status": status,
                "conclusion": conclusion,
                "started_at": now,
                "completed_at": if status == "completed" { json!(now) } else { Value::Null },
                "name": name,
                "check_suite": { "id": id + 1 },
                "app": { "id": 15368, "slug": "github-actions", "name": "GitHub Actions" },
                "pull_requests": [],
                "output": { "title": null, "summary": null, "text": null, "annotations_count": 0 },
            });
            s.repo(repo).check_runs.push(run);
            id
        })
    }

    /// Adds a commit status (`error`, `failure`, `pending` or `success`) on
    /// `sha` for `context`.
    pub fn add_commit_status(&self, repo: &str, sha: &str, context: &str, state: &str) {
        self.with(|s| {
            let id = s.id();
            let now = s.stamp();
            let status = json!({
                "url": format!("{}/repos/{repo}/statuses/{sha}", s.base),
                "id": id,
                "node_id": format!("SC_{id}"),
                "state": state,
                "description": format!("{context} is {state}"),
                "target_url": format!("https://ci.example.com/{context}/{id}"),
                "context": context,
                "created_at": now,
                "updated_at": now,
                "creator": user("ci-bot"),
            });
            s.repo(repo).commit_statuses.push((sha.to_owned(), status));
        })
    }

    /// Adds an issue with labels; `state` is `open` or `closed`. Returns its
    /// number.
    pub fn add_issue(&self, repo: &str, title: &str, labels: &[&str], state: &str) -> u64 {
        self.with(|s| {
            let id = s.id();
            let now = s.stamp();
            let number = s.repo(repo).issues.len() as u64 + 1;
            let issue = json!({
                "id": id,
                "node_id": format!("I_{id}"),
                "url": format!("{}/repos/{repo}/issues/{number}", s.base),
                "html_url": format!("https://github.com/{repo}/issues/{number}"),
                "number": number,
                "state": state,
                "title": title,
                "body": null,
                "user": user("oncall"),
                "labels": labels.iter().enumerate().map(|(i, l)| json!({
                    "id": id * 10 + i as u64, "name": l, "color": "d73a4a", "default": false,
                })).collect::<Vec<_>>(),
                "assignees": [],
                "comments": 0,
                "created_at": now,
                "updated_at": now,
                "closed_at": null,
            });
            s.repo(repo).issues.push(issue);
            number
        })
    }

    /// Sets the body (Markdown) of an issue.
    pub fn set_issue_body(&self, repo: &str, number: u64, body: &str) {
        self.with(|s| {
            let now = s.stamp();
            if let Some(issue) = s.repo(repo).issues.iter_mut().find(|i| i["number"] == number) {
                issue["body"] = json!(body);
                issue["updated_at"] = json!(now);
            }
        });
    }

    /// Opens a pull request; GitHub lists pull requests among issues, with a
    /// `pull_request` object. Returns its number.
    pub fn add_pull_request(&self, repo: &str, title: &str, labels: &[&str]) -> u64 {
        let number = self.add_issue(repo, title, labels, "open");
        self.with(|s| {
            let base = s.base.clone();
            if let Some(issue) = s.repo(repo).issues.iter_mut().find(|i| i["number"] == number) {
                issue["pull_request"] = json!({
                    "url": format!("{base}/repos/{repo}/pulls/{number}"),
                    "html_url": format!("https://github.com/{repo}/pull/{number}"),
                    "merged_at": null,
                });
            }
        });
        number
    }

    /// Creates a deployment as `POST /repos/{repo}/deployments` would, with
    /// this payload (`ref` = `sha`). Returns its id.
    pub fn add_deployment(&self, repo: &str, environment: &str, sha: &str, payload: Value, production: bool) -> u64 {
        self.with(|s| {
            let id = s.id();
            let body = json!({
                "task": "deploy",
                "payload": payload,
                "environment": environment,
                "production_environment": production,
            });
            let deployment = deployment_json(s, repo, id, sha, sha, &body);
            s.repo(repo).deployments.push(deployment);
            id
        })
    }

    /// Adds a status to a deployment as `POST .../statuses` would (with
    /// GitHub's `auto_inactive` on success). Panics on a status GitHub
    /// would refuse: seeding is the test's own input.
    pub fn add_deployment_status(&self, repo: &str, id: u64, state: &str, description: &str) {
        self.with(|s| {
            let answer = create_status(s, repo, id, &json!({ "state": state, "description": description }));
            assert_eq!(answer.status, StatusCode::CREATED, "status refused: {:?}", answer.body);
        });
    }

    /// Closes an issue.
    pub fn close_issue(&self, repo: &str, number: u64) {
        self.with(|s| {
            let now = s.stamp();
            if let Some(issue) = s.repo(repo).issues.iter_mut().find(|i| i["number"] == number) {
                issue["state"] = json!("closed");
                issue["closed_at"] = json!(now);
                issue["updated_at"] = json!(now);
            }
        });
    }

    /// Appends a commit to the repository's (linear) history.
    pub fn add_commit(&self, repo: &str, sha: &str, author: &str, message: &str) {
        self.add_commit_with(repo, sha, None, author, message);
    }

    /// Appends a merge commit: its parents are the last commit and
    /// `other_parent` (the merged branch's head). Compare still lists the
    /// history as one line, in the order commits were added.
    pub fn add_merge_commit(&self, repo: &str, sha: &str, other_parent: &str, author: &str, message: &str) {
        self.add_commit_with(repo, sha, Some(other_parent), author, message);
    }

    fn add_commit_with(&self, repo: &str, sha: &str, other_parent: Option<&str>, author: &str, message: &str) {
        self.with(|s| {
            let now = s.stamp();
            let base = s.base.clone();
            let r = s.repo(repo);
            let mut parents: Vec<Value> =
                r.commits.last().map(|c| json!({ "sha": c["sha"], "url": c["url"] })).into_iter().collect();
            if let Some(other) = other_parent {
                parents.push(json!({ "sha": other, "url": format!("{base}/repos/{repo}/commits/{other}") }));
            }
            r.commits.push(json!({
                "sha": sha,
                "node_id": format!("C_{sha}"),
                "url": format!("{base}/repos/{repo}/commits/{sha}"),
                "html_url": format!("https://github.com/{repo}/commit/{sha}"),
                "commit": {
                    "author": { "name": author, "email": format!("{author}@example.com"), "date": now },
                    "committer": { "name": author, "email": format!("{author}@example.com"), "date": now },
                    "message": message,
                },
                "author": user(author),
                "committer": user(author),
                "parents": parents,
            }));
        })
    }

    /// Names a branch or tag for `sha` (deployments may be created by ref).
    pub fn add_ref(&self, repo: &str, name: &str, sha: &str) {
        self.with(|s| s.repo(repo).refs.insert(name.to_owned(), sha.to_owned()));
    }

    /// Declares a workflow file that accepts `workflow_dispatch` with these
    /// inputs.
    pub fn add_workflow(&self, repo: &str, file: &str, inputs: &[&str]) {
        let inputs = inputs.iter().map(|i| DispatchInput::optional(i)).collect();
        self.add_workflow_inputs(repo, file, inputs);
    }

    /// Declares a workflow file that accepts `workflow_dispatch` with these
    /// inputs (required ones, choices), as its `on.workflow_dispatch.inputs`
    /// says; a dispatch is validated against them as GitHub does.
    pub fn add_workflow_inputs(&self, repo: &str, file: &str, inputs: Vec<DispatchInput>) {
        self.with(|s| s.repo(repo).workflows.insert(file.to_owned(), inputs));
    }

    /// Mints a token that carries only these permissions (scope, level), as
    /// GitHub mints a job's `GITHUB_TOKEN` from its `permissions:` block.
    /// A call outside them is refused with 403.
    pub fn add_token(&self, token: &str, permissions: &[(&str, Access)]) {
        self.with(|s| {
            let scopes = permissions.iter().map(|(scope, access)| ((*scope).to_owned(), *access)).collect();
            s.scoped.insert(token.to_owned(), scopes)
        });
    }

    /// Publishes a release asset, downloadable without a token at
    /// `{api_url}/{repo}/releases/download/{tag}/{name}` (the fake serves
    /// github.com's download URLs beside the API).
    pub fn add_release_asset(&self, repo: &str, tag: &str, name: &str, bytes: Vec<u8>) {
        self.with(|s| s.repo(repo).assets.insert(format!("{tag}/{name}"), bytes));
    }

    /// Records an environment review of a run: `state` is `approved` or
    /// `rejected`.
    pub fn add_approval(&self, repo: &str, run_id: u64, environment: &str, login: &str, state: &str) {
        self.with(|s| {
            let id = s.id();
            let approval = json!({
                "environments": [{
                    "id": id,
                    "node_id": format!("EN_{id}"),
                    "name": environment,
                    "url": format!("{}/repos/{repo}/environments/{environment}", s.base),
                    "html_url": format!("https://github.com/{repo}/deployments/activity_log?environments_filter={environment}"),
                }],
                "state": state,
                "user": user(login),
                "comment": "",
            });
            s.repo(repo).approvals.entry(run_id).or_default().push(approval);
        })
    }

    /// Creates a deployment the way a job with `environment:` makes GitHub
    /// do: by the Actions bot, `task: deploy`, empty payload, and an
    /// `in_progress` status whose log URL is the job's run.
    pub fn add_job_deployment(&self, repo: &str, environment: &str, sha: &str, run_url: &str) -> u64 {
        self.with(|s| {
            let id = s.id();
            let deployment = deployment_json(
                s,
                repo,
                id,
                sha,
                sha,
                &json!({ "task": "deploy", "payload": {}, "environment": environment }),
            );
            s.repo(repo).deployments.push(deployment);
            let status = status_json(
                s,
                repo,
                id,
                &json!({ "state": "in_progress", "log_url": run_url, "environment": environment }),
            );
            s.repo(repo).deployment_statuses.entry(id).or_default().push(status);
            id
        })
    }

    /// The next requests are refused with these rate-limit answers, in order.
    pub fn refuse_next(&self, refusals: &[Refusal]) {
        self.with(|s| s.refusals.extend(refusals.iter().copied()));
    }

    /// Stamps what is stored from now on with `at` (`None`: the moving
    /// clock again), so tests can seed a history at exact times.
    pub fn pin_clock(&self, at: Option<jiff::Timestamp>) {
        self.with(|s| s.pinned = at);
    }

    /// Moves the fake's clock; what is stored from now on is stamped with it
    /// (negative to store the past).
    pub fn shift_clock(&self, seconds: i64) {
        self.with(|s| s.clock_offset += seconds);
    }

    /// Sets a workflow run's status as GitHub shows it (`queued`,
    /// `in_progress`, `waiting` for reviewers, `completed`), registering the
    /// run of `workflow` (its file name) on first use.
    pub fn set_run_status(&self, repo: &str, workflow: &str, run_id: u64, status: &str) {
        self.with(|s| {
            let run = s.repo(repo).runs.entry(run_id).or_insert_with(|| (workflow.to_owned(), String::new(), None));
            run.1 = status.to_owned();
        });
    }

    /// A run's status and conclusion (`cancelled` once cancelled through
    /// the API).
    pub fn run_status(&self, repo: &str, run_id: u64) -> Option<(String, Option<String>)> {
        self.with(|s| {
            s.repo(repo).runs.get(&run_id).map(|(_, status, conclusion)| (status.clone(), conclusion.clone()))
        })
    }

    /// Stores an artifact of a run (files by path inside it), downloadable
    /// as GitHub serves it: a zip archive. An artifact of the same name is
    /// replaced (`overwrite`).
    pub fn add_run_artifact(&self, repo: &str, run_id: u64, name: &str, files: &[(String, Vec<u8>)]) {
        self.with(|s| {
            let id = s.id();
            let zip = zip_stored(files);
            let r = s.repo(repo);
            r.artifacts.retain(|(run, _, n, _)| !(*run == run_id && n == name));
            r.artifacts.push((run_id, id, name.to_owned(), zip));
        });
    }

    // ---- inspection ----------------------------------------------------

    /// Every deployment of the repository, oldest first.
    pub fn deployments(&self, repo: &str) -> Vec<Value> {
        self.with(|s| s.repo(repo).deployments.clone())
    }

    /// The statuses of a deployment, oldest first.
    pub fn deployment_statuses(&self, repo: &str, id: u64) -> Vec<Value> {
        self.with(|s| s.repo(repo).deployment_statuses.get(&id).cloned().unwrap_or_default())
    }

    /// The workflow dispatches received, oldest first.
    pub fn dispatches(&self, repo: &str) -> Vec<Value> {
        self.with(|s| s.repo(repo).dispatches.clone())
    }

    /// Every request answered so far.
    pub fn seen(&self) -> Vec<Seen> {
        self.with(|s| s.seen.clone())
    }

    /// Forgets the requests seen so far.
    pub fn clear_seen(&self) {
        self.with(|s| s.seen.clear());
    }

    /// What is left of the primary rate limit.
    pub fn remaining(&self) -> u64 {
        self.with(|s| s.remaining)
    }

    /// Spends the primary rate limit down to `left` calls for the rest of
    /// the hour, as other jobs of the repository would (the limit is shared
    /// by every workflow run of the repository:
    /// <https://docs.github.com/en/rest/using-the-rest-api/rate-limits-for-the-rest-api#primary-rate-limit-for-github_token-in-github-actions>).
    pub fn set_remaining(&self, left: u64) {
        self.with(|s| s.remaining = left.min(RATE_LIMIT));
    }
}

fn user(login: &str) -> Value {
    let bot = login.ends_with("[bot]");
    json!({
        "login": login,
        "id": login.bytes().fold(7u64, |h, b| h.wrapping_mul(31).wrapping_add(u64::from(b))) % 100_000_000,
        "type": if bot { "Bot" } else { "User" },
        "site_admin": false,
        "html_url": format!("https://github.com/{login}"),
    })
}

fn deployment_json(s: &State, repo: &str, id: u64, sha: &str, git_ref: &str, body: &Value) -> Value {
    let now = s.stamp();
    let environment = body.get("environment").and_then(Value::as_str).unwrap_or("production");
    json!({
        "url": format!("{}/repos/{repo}/deployments/{id}", s.base),
        "id": id,
        "node_id": format!("DE_{id}"),
        "sha": sha,
        "ref": git_ref,
        "task": body.get("task").and_then(Value::as_str).unwrap_or("deploy"),
        "payload": body.get("payload").cloned().unwrap_or_else(|| json!({})),
        "original_environment": environment,
        "environment": environment,
        "description": body.get("description").cloned().unwrap_or(Value::Null),
        "creator": user(BOT_LOGIN),
        "created_at": now,
        "updated_at": now,
        "statuses_url": format!("{}/repos/{repo}/deployments/{id}/statuses", s.base),
        "repository_url": format!("{}/repos/{repo}", s.base),
        "transient_environment": body.get("transient_environment").and_then(Value::as_bool).unwrap_or(false),
        "production_environment": body.get("production_environment").and_then(Value::as_bool)
            .unwrap_or(environment == "production"),
    })
}

fn status_json(s: &mut State, repo: &str, deployment: u64, body: &Value) -> Value {
    let id = s.id();
    let now = s.stamp();
    let text = |key: &str| body.get(key).and_then(Value::as_str).unwrap_or("").to_owned();
    let log_url = if body.get("log_url").is_some() { text("log_url") } else { text("target_url") };
    let environment = body.get("environment").and_then(Value::as_str).map(str::to_owned).unwrap_or_else(|| {
        s.repo(repo)
            .deployments
            .iter()
            .find(|d| d["id"] == deployment)
            .and_then(|d| d["environment"].as_str())
            .unwrap_or("")
            .to_owned()
    });
    json!({
        "url": format!("{}/repos/{repo}/deployments/{deployment}/statuses/{id}", s.base),
        "id": id,
        "node_id": format!("DES_{id}"),
        "state": text("state"),
        "creator": user(BOT_LOGIN),
        "description": text("description"),
        "environment": environment,
        "target_url": log_url,
        "log_url": log_url,
        "environment_url": text("environment_url"),
        "created_at": now,
        "updated_at": now,
        "deployment_url": format!("{}/repos/{repo}/deployments/{deployment}", s.base),
        "repository_url": format!("{}/repos/{repo}", s.base),
    })
}

async fn serve(
    listener: std::net::TcpListener,
    state: Arc<Mutex<State>>,
    mut stopped: tokio::sync::oneshot::Receiver<()>,
) {
    let Ok(listener) = tokio::net::TcpListener::from_std(listener) else { return };
    loop {
        let stream = tokio::select! {
            _ = &mut stopped => return,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(_) => continue,
            },
        };
        let state = state.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req| {
                let state = state.clone();
                async move { Ok::<_, Infallible>(handle(&state, req).await) }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                .await;
        });
    }
}

/// An answer before headers common to all are added.
struct Answer {
    status: StatusCode,
    body: Option<Value>,
    link: Option<String>,
    headers: Vec<(&'static str, String)>,
    /// Counts against the primary limit.
    counted: bool,
}

impl Answer {
    fn json(status: StatusCode, body: Value) -> Answer {
        Answer { status, body: Some(body), link: None, headers: Vec::new(), counted: true }
    }

    fn error(status: StatusCode, message: &str) -> Answer {
        Answer::json(
            status,
            json!({
                "message": message,
                "documentation_url": "https://docs.github.com/rest",
                "status": status.as_u16().to_string(),
            }),
        )
    }
}

async fn handle(state: &Mutex<State>, req: Request<Incoming>) -> Response<Full<Bytes>> {
    let method = req.method().as_str().to_owned();
    let path = req.uri().path().to_owned();
    let query = req.uri().query().unwrap_or("").to_owned();
    let header = |name: &str| req.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
    let auth = header("authorization");
    let if_none_match = header("if-none-match");
    let mut raw = format!("{method} {}\n", req.uri());
    for (name, value) in req.headers() {
        raw.push_str(&format!("{name}: {}\n", String::from_utf8_lossy(value.as_bytes())));
    }
    let body = req.into_body().collect().await.map(|b| b.to_bytes()).unwrap_or_default();
    raw.push('\n');
    raw.push_str(&String::from_utf8_lossy(&body));

    let mut s = lock(state);
    // github.com's release download URLs are served beside the API, with no
    // token (a public repository's assets), redirected to the file as
    // GitHub redirects to its object store.
    if let Some(download) = release_download(&mut s, &method, &path) {
        return download;
    }
    if let ["_artifact-zips", owner, name, id] = path.trim_matches('/').split('/').collect::<Vec<_>>().as_slice() {
        let repo = format!("{owner}/{name}");
        let id: u64 = id.parse().unwrap_or(0);
        let zip = s.repos.get(&repo).and_then(|r| r.artifacts.iter().find(|(_, a, ..)| *a == id)).map(|a| a.3.clone());
        let response = match zip {
            Some(bytes) => Response::builder()
                .status(StatusCode::OK)
                .header("content-type", "application/zip")
                .body(Full::new(Bytes::from(bytes))),
            None => Response::builder().status(StatusCode::NOT_FOUND).body(Full::new(Bytes::new())),
        };
        return response.unwrap_or_else(|_| Response::new(Full::new(Bytes::new())));
    }
    let presented =
        auth.as_deref().and_then(|a| a.strip_prefix("Bearer ").or_else(|| a.strip_prefix("token "))).map(str::to_owned);
    let scopes = presented.as_ref().and_then(|t| s.scoped.get(t)).cloned();
    let authorized = presented.as_deref().is_some_and(|t| t == s.token) || scopes.is_some();
    // A job's token outside its `permissions:`: GitHub's 403 for it.
    let forbidden = scopes.is_some_and(|scopes| {
        needed(&method, &path).is_some_and(|(scope, level)| scopes.get(scope).copied().unwrap_or(Access::None) < level)
    });
    let now = jiff::Timestamp::now().as_second();
    if now >= s.reset_at {
        s.remaining = RATE_LIMIT;
        s.reset_at = now + 3600;
    }
    let mut answer = if !authorized {
        Answer::error(StatusCode::UNAUTHORIZED, "Bad credentials")
    } else if forbidden {
        Answer::error(StatusCode::FORBIDDEN, "Resource not accessible by integration")
    } else if let Some(refusal) = s.refusals.pop_front() {
        refuse(&mut s, refusal, now)
    } else if s.remaining == 0 {
        let reset_in = u64::try_from(s.reset_at - now).unwrap_or(0);
        refuse(&mut s, Refusal::Primary { reset_in }, now)
    } else {
        let parsed = if body.is_empty() { Ok(Value::Null) } else { serde_json::from_slice::<Value>(&body) };
        match parsed {
            Err(e) => Answer::error(StatusCode::BAD_REQUEST, &format!("Problems parsing JSON: {e}")),
            Ok(body) => route(&mut s, &method, &path, &query, &body),
        }
    };

    // Conditional GETs: a weak ETag over what would be sent; a match is a
    // 304 with no body that does not count against the rate limit.
    let mut etag = None;
    if method == "GET" && answer.status == StatusCode::OK {
        let text = format!(
            "{}{}",
            answer.body.as_ref().map(Value::to_string).unwrap_or_default(),
            answer.link.as_deref().unwrap_or("")
        );
        let tag = format!("W/\"{:016x}\"", fnv(text.as_bytes()));
        if if_none_match.as_deref() == Some(tag.as_str()) {
            answer = Answer {
                status: StatusCode::NOT_MODIFIED,
                body: None,
                link: None,
                headers: Vec::new(),
                counted: false,
            };
        }
        etag = Some(tag);
    }
    if answer.counted && authorized {
        s.remaining = s.remaining.saturating_sub(1);
    }
    s.seen.push(Seen {
        method,
        path,
        query,
        status: answer.status.as_u16(),
        conditional: if_none_match.is_some(),
        raw,
    });
    let mut response = Response::builder()
        .status(answer.status)
        .header("content-type", "application/json; charset=utf-8")
        .header("x-github-api-version-selected", "2022-11-28")
        .header("x-ratelimit-limit", RATE_LIMIT.to_string())
        .header("x-ratelimit-remaining", s.remaining.to_string())
        .header("x-ratelimit-used", (RATE_LIMIT - s.remaining).to_string())
        .header("x-ratelimit-reset", s.reset_at.to_string())
        .header("x-ratelimit-resource", "core");
    if let Some(tag) = etag {
        response = response.header("etag", tag);
    }
    if let Some(link) = &answer.link {
        response = response.header("link", link);
    }
    for (name, value) in &answer.headers {
        response = response.header(*name, value);
    }
    let bytes = answer.body.map(|b| Bytes::from(b.to_string())).unwrap_or_default();
    response.body(Full::new(bytes)).unwrap_or_else(|_| Response::new(Full::new(Bytes::new())))
}

/// `GET /OWNER/REPO/releases/download/TAG/NAME`: 302 to `/_assets/...`,
/// which answers the bytes; 404 for an asset that is not published.
fn release_download(s: &mut State, method: &str, path: &str) -> Option<Response<Full<Bytes>>> {
    let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
    let (redirect, repo, tag, name) = match parts.as_slice() {
        [owner, repo, "releases", "download", tag, name] => (true, format!("{owner}/{repo}"), *tag, *name),
        ["_assets", owner, repo, tag, name] => (false, format!("{owner}/{repo}"), *tag, *name),
        _ => return None,
    };
    if method != "GET" && method != "HEAD" {
        return None;
    }
    let found = s.repos.get(&repo).and_then(|r| r.assets.get(&format!("{tag}/{name}"))).cloned();
    let status = match (&found, redirect) {
        (None, _) => StatusCode::NOT_FOUND,
        (Some(_), true) => StatusCode::FOUND,
        (Some(_), false) => StatusCode::OK,
    };
    s.seen.push(Seen {
        method: method.to_owned(),
        path: path.to_owned(),
        query: String::new(),
        status: status.as_u16(),
        conditional: false,
        raw: format!("{method} {path}\n"),
    });
    let response = Response::builder().status(status);
    Some(
        match (found, redirect) {
            (None, _) => response.header("content-type", "text/plain").body(Full::new(Bytes::from("Not Found"))),
            (Some(_), true) => response
                .header("location", format!("{}/_assets/{repo}/{tag}/{name}", s.base))
                .body(Full::new(Bytes::new())),
            (Some(bytes), false) => {
                response.header("content-type", "application/octet-stream").body(Full::new(Bytes::from(bytes)))
            }
        }
        .unwrap_or_else(|_| Response::new(Full::new(Bytes::new()))),
    )
}

fn refuse(s: &mut State, refusal: Refusal, now: i64) -> Answer {
    match refusal {
        Refusal::Primary { reset_in } => {
            s.remaining = 0;
            s.reset_at = now + i64::try_from(reset_in).unwrap_or(0);
            Answer {
                counted: false,
                ..Answer::error(
                    StatusCode::FORBIDDEN,
                    "API rate limit exceeded for installation ID 1000. If you reach out to GitHub Support for help, please include the request ID.",
                )
            }
        }
        Refusal::Secondary { retry_after } => {
            let mut answer = Answer::error(
                StatusCode::FORBIDDEN,
                "You have exceeded a secondary rate limit. Please wait a few minutes before you try again.",
            );
            answer.headers.push(("retry-after", retry_after.to_string()));
            answer
        }
    }
}

/// A zip archive of `files` (stored, not compressed), as GitHub serves an
/// artifact: what `unzip` reads.
fn zip_stored(files: &[(String, Vec<u8>)]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut central = Vec::new();
    for (name, data) in files {
        let crc = crc32(data);
        let offset = out.len() as u32;
        let (size, name_len) = (data.len() as u32, name.len() as u16);
        let header = |signature: u32, central: bool| {
            let mut h = Vec::new();
            h.extend(signature.to_le_bytes());
            if central {
                h.extend(20u16.to_le_bytes()); // made by
            }
            h.extend(20u16.to_le_bytes()); // version needed
            h.extend(0u16.to_le_bytes()); // flags
            h.extend(0u16.to_le_bytes()); // stored
            h.extend(0u16.to_le_bytes()); // time
            h.extend(0x21u16.to_le_bytes()); // date: 1980-01-01
            h.extend(crc.to_le_bytes());
            h.extend(size.to_le_bytes());
            h.extend(size.to_le_bytes());
            h.extend(name_len.to_le_bytes());
            h.extend(0u16.to_le_bytes()); // extra
            if central {
                h.extend(0u16.to_le_bytes()); // comment
                h.extend(0u16.to_le_bytes()); // disk
                h.extend(0u16.to_le_bytes()); // internal attributes
                h.extend(0u32.to_le_bytes()); // external attributes
                h.extend(offset.to_le_bytes());
            }
            h.extend(name.as_bytes());
            h
        };
        out.extend(header(0x0403_4b50, false));
        out.extend(data);
        central.extend(header(0x0201_4b50, true));
    }
    let start = out.len() as u32;
    let count = files.len() as u16;
    out.extend(&central);
    out.extend(0x0605_4b50u32.to_le_bytes());
    out.extend([0u8; 4]); // disk numbers
    out.extend(count.to_le_bytes());
    out.extend(count.to_le_bytes());
    out.extend((central.len() as u32).to_le_bytes());
    out.extend(start.to_le_bytes());
    out.extend(0u16.to_le_bytes());
    out
}

fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = 0xffff_ffffu32;
    for b in bytes {
        crc ^= u32::from(*b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 { (crc >> 1) ^ 0xedb8_8320 } else { crc >> 1 };
        }
    }
    !crc
}

fn fnv(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3))
}

fn params(query: &str) -> HashMap<String, String> {
    form_urlencoded::parse(query.as_bytes()).into_owned().collect()
}

/// One page of `items` as `per_page`/`page` ask, with the `Link` header.
fn paginate(s: &State, path: &str, query: &str, items: Vec<Value>) -> Result<(Vec<Value>, Option<String>), Answer> {
    let p = params(query);
    let number = |key: &str, default: usize| -> Result<usize, Answer> {
        match p.get(key) {
            None => Ok(default),
            Some(v) => v.parse::<usize>().map_err(|_| {
                Answer::error(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    &format!("Invalid request.\n\n{v:?} is not a number for {key}."),
                )
            }),
        }
    };
    let per_page = number("per_page", 30)?.clamp(1, 100);
    let page = number("page", 1)?.max(1);
    let last = items.len().div_ceil(per_page).max(1);
    let start = (page - 1) * per_page;
    let chunk: Vec<Value> = items.into_iter().skip(start).take(per_page).collect();
    let url = |n: usize| {
        let mut pairs: Vec<String> = query
            .split('&')
            .filter(|p| !p.is_empty() && !p.starts_with("page=") && !p.starts_with("per_page="))
            .map(str::to_owned)
            .collect();
        pairs.push(format!("per_page={per_page}"));
        pairs.push(format!("page={n}"));
        format!("<{}{path}?{}>", s.base, pairs.join("&"))
    };
    let mut links = Vec::new();
    if page < last {
        links.push(format!("{}; rel=\"next\"", url(page + 1)));
        links.push(format!("{}; rel=\"last\"", url(last)));
    }
    if page > 1 {
        links.push(format!("{}; rel=\"first\"", url(1)));
        links.push(format!("{}; rel=\"prev\"", url(page - 1)));
    }
    Ok((chunk, if links.is_empty() { None } else { Some(links.join(", ")) }))
}

fn list(s: &State, path: &str, query: &str, items: Vec<Value>) -> Answer {
    match paginate(s, path, query, items) {
        Ok((page, link)) => Answer { link, ..Answer::json(StatusCode::OK, Value::Array(page)) },
        Err(answer) => answer,
    }
}

fn is_sha(text: &str) -> bool {
    text.len() == 40 && text.bytes().all(|b| b.is_ascii_hexdigit())
}

fn resolve(s: &mut State, repo: &str, git_ref: &str) -> Option<String> {
    if is_sha(git_ref) {
        return Some(git_ref.to_owned());
    }
    let name = git_ref.trim_start_matches("refs/heads/").trim_start_matches("refs/tags/");
    s.repo(repo).refs.get(name).cloned()
}

fn route(s: &mut State, method: &str, path: &str, query: &str, body: &Value) -> Answer {
    let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
    let not_found = || Answer::error(StatusCode::NOT_FOUND, "Not Found");
    let ["repos", owner, name, rest @ ..] = parts.as_slice() else { return not_found() };
    let repo = format!("{owner}/{name}");
    if let Some(answer) = git::route(s, method, &repo, rest, query, body) {
        return answer;
    }
    let p = params(query);
    match (method, rest) {
        ("GET", ["deployments"]) => {
            let wanted = |d: &&Value, key: &str| p.get(key).is_none_or(|v| d[key].as_str() == Some(v.as_str()));
            let items: Vec<Value> = s
                .repo(&repo)
                .deployments
                .iter()
                .rev()
                .filter(|d| wanted(d, "sha") && wanted(d, "ref") && wanted(d, "task") && wanted(d, "environment"))
                .cloned()
                .collect();
            list(s, path, query, items)
        }
        ("POST", ["deployments"]) => create_deployment(s, &repo, body),
        ("GET", ["deployments", id]) => {
            let id: u64 = id.parse().unwrap_or(0);
            match s.repo(&repo).deployments.iter().find(|d| d["id"] == id) {
                Some(d) => Answer::json(StatusCode::OK, d.clone()),
                None => not_found(),
            }
        }
        ("GET", ["deployments", id, "statuses"]) => {
            let id: u64 = id.parse().unwrap_or(0);
            if !s.repo(&repo).deployments.iter().any(|d| d["id"] == id) {
                return not_found();
            }
            let items: Vec<Value> =
                s.repo(&repo).deployment_statuses.get(&id).cloned().unwrap_or_default().into_iter().rev().collect();
            list(s, path, query, items)
        }
        ("POST", ["deployments", id, "statuses"]) => {
            let id: u64 = id.parse().unwrap_or(0);
            create_status(s, &repo, id, body)
        }
        ("GET", ["commits", git_ref, "check-runs"]) => {
            let Some(sha) = resolve(s, &repo, git_ref) else {
                return Answer::error(StatusCode::UNPROCESSABLE_ENTITY, &format!("No commit found for SHA: {git_ref}"));
            };
            let latest_only = p.get("filter").is_none_or(|f| f == "latest");
            let mut runs: Vec<Value> = s
                .repo(&repo)
                .check_runs
                .iter()
                .rev()
                .filter(|r| r["head_sha"].as_str() == Some(sha.as_str()))
                .filter(|r| p.get("check_name").is_none_or(|n| r["name"].as_str() == Some(n.as_str())))
                .filter(|r| p.get("status").is_none_or(|st| r["status"].as_str() == Some(st.as_str())))
                .cloned()
                .collect();
            if latest_only {
                let mut names = std::collections::HashSet::new();
                runs.retain(|r| names.insert(r["name"].as_str().unwrap_or("").to_owned()));
            }
            let total = runs.len();
            match paginate(s, path, query, runs) {
                Ok((page, link)) => {
                    Answer { link, ..Answer::json(StatusCode::OK, json!({ "total_count": total, "check_runs": page })) }
                }
                Err(answer) => answer,
            }
        }
        ("GET", ["commits", git_ref, "status"]) => {
            let Some(sha) = resolve(s, &repo, git_ref) else {
                return Answer::error(StatusCode::UNPROCESSABLE_ENTITY, &format!("No commit found for SHA: {git_ref}"));
            };
            let mut contexts = std::collections::HashSet::new();
            let latest: Vec<Value> = s
                .repo(&repo)
                .commit_statuses
                .iter()
                .rev()
                .filter(|(c, _)| *c == sha)
                .map(|(_, v)| v.clone())
                .filter(|v| contexts.insert(v["context"].as_str().unwrap_or("").to_owned()))
                .collect();
            let state = if latest.iter().any(|v| matches!(v["state"].as_str(), Some("error" | "failure"))) {
                "failure"
            } else if latest.is_empty() || latest.iter().any(|v| v["state"] == "pending") {
                "pending"
            } else {
                "success"
            };
            let total = latest.len();
            match paginate(s, path, query, latest) {
                Ok((page, link)) => Answer {
                    link,
                    ..Answer::json(
                        StatusCode::OK,
                        json!({
                            "state": state,
                            "statuses": page,
                            "sha": sha,
                            "total_count": total,
                            "repository": { "full_name": repo },
                            "commit_url": format!("{}/repos/{repo}/commits/{sha}", s.base),
                            "url": format!("{}/repos/{repo}/commits/{sha}/status", s.base),
                        }),
                    )
                },
                Err(answer) => answer,
            }
        }
        ("GET", ["commits", git_ref]) => {
            let sha = resolve(s, &repo, git_ref).unwrap_or_default();
            match s.repo(&repo).commits.iter().find(|c| c["sha"].as_str() == Some(sha.as_str())) {
                Some(c) => Answer::json(StatusCode::OK, c.clone()),
                None => Answer::error(StatusCode::UNPROCESSABLE_ENTITY, &format!("No commit found for SHA: {git_ref}")),
            }
        }
        ("GET", ["issues"]) => {
            let state = p.get("state").map_or("open", String::as_str).to_owned();
            let labels: Vec<String> = p
                .get("labels")
                .map(|l| l.split(',').map(|x| x.trim().to_owned()).filter(|x| !x.is_empty()).collect())
                .unwrap_or_default();
            let items: Vec<Value> = s
                .repo(&repo)
                .issues
                .iter()
                .rev()
                .filter(|i| state == "all" || i["state"].as_str() == Some(state.as_str()))
                // `since`: only issues updated at or after this time.
                .filter(|i| {
                    p.get("since").is_none_or(|since| {
                        let since = since.parse::<jiff::Timestamp>().ok();
                        let updated = i["updated_at"].as_str().and_then(|u| u.parse::<jiff::Timestamp>().ok());
                        matches!((since, updated), (Some(a), Some(b)) if b >= a)
                    })
                })
                .filter(|i| {
                    labels.iter().all(|l| {
                        i["labels"]
                            .as_array()
                            .is_some_and(|ls| ls.iter().any(|x| x["name"].as_str() == Some(l.as_str())))
                    })
                })
                .cloned()
                .collect();
            list(s, path, query, items)
        }
        ("POST", ["actions", "workflows", workflow, "dispatches"]) => {
            let Some(declared) = s.repo(&repo).workflows.get(*workflow).cloned() else { return not_found() };
            let Some(git_ref) = body.get("ref").and_then(Value::as_str) else {
                return Answer::error(StatusCode::UNPROCESSABLE_ENTITY, "Invalid request.\n\n\"ref\" wasn't supplied.");
            };
            if resolve(s, &repo, git_ref).is_none() {
                return Answer::error(StatusCode::UNPROCESSABLE_ENTITY, &format!("No ref found for: {git_ref}"));
            }
            let inputs = body.get("inputs").and_then(Value::as_object).cloned().unwrap_or_default();
            if let Some(refused) = validate_dispatch(&declared, &inputs) {
                return Answer::error(StatusCode::UNPROCESSABLE_ENTITY, &refused);
            }
            let at = s.stamp();
            s.repo(&repo).dispatches.push(json!({ "workflow": workflow, "ref": git_ref, "inputs": inputs, "at": at }));
            Answer { body: None, ..Answer::json(StatusCode::NO_CONTENT, Value::Null) }
        }
        // https://docs.github.com/en/rest/actions/workflow-runs#list-workflow-runs-for-a-workflow
        ("GET", ["actions", "workflows", workflow, "runs"]) => {
            let wanted = p.get("status").cloned();
            let base = s.base.clone();
            let mut runs: Vec<(u64, String, Option<String>)> = s
                .repo(&repo)
                .runs
                .iter()
                .filter(|(_, (file, status, conclusion))| {
                    file == workflow
                        && wanted.as_deref().is_none_or(|w| w == status || conclusion.as_deref() == Some(w))
                })
                .map(|(id, (_, status, conclusion))| (*id, status.clone(), conclusion.clone()))
                .collect();
            runs.sort_by_key(|r| std::cmp::Reverse(r.0));
            let items: Vec<Value> = runs
                .iter()
                .map(|(id, status, conclusion)| {
                    json!({
                        "id": id,
                        "path": format!(".github/workflows/{workflow}"),
                        "status": status,
                        "conclusion": conclusion,
                        "url": format!("{base}/repos/{repo}/actions/runs/{id}"),
                        "html_url": format!("https://github.com/{repo}/actions/runs/{id}"),
                    })
                })
                .collect();
            let total = items.len();
            match paginate(s, path, query, items) {
                Ok((page, link)) => Answer {
                    link,
                    ..Answer::json(StatusCode::OK, json!({ "total_count": total, "workflow_runs": page }))
                },
                Err(answer) => answer,
            }
        }
        // https://docs.github.com/en/rest/actions/artifacts#list-workflow-run-artifacts
        ("GET", ["actions", "runs", run, "artifacts"]) => {
            let run: u64 = run.parse().unwrap_or(0);
            let base = s.base.clone();
            let items: Vec<Value> = s
                .repo(&repo)
                .artifacts
                .iter()
                .filter(|(r, ..)| *r == run)
                .map(|(_, id, name, zip)| {
                    json!({
                        "id": id,
                        "name": name,
                        "size_in_bytes": zip.len(),
                        "expired": false,
                        "url": format!("{base}/repos/{repo}/actions/artifacts/{id}"),
                        "archive_download_url": format!("{base}/repos/{repo}/actions/artifacts/{id}/zip"),
                        "workflow_run": { "id": run },
                    })
                })
                .collect();
            let total = items.len();
            match paginate(s, path, query, items) {
                Ok((page, link)) => {
                    Answer { link, ..Answer::json(StatusCode::OK, json!({ "total_count": total, "artifacts": page })) }
                }
                Err(answer) => answer,
            }
        }
        // https://docs.github.com/en/rest/actions/artifacts#download-an-artifact
        // (302 to a short-lived URL of the zip archive)
        ("GET", ["actions", "artifacts", id, "zip"]) => {
            let id: u64 = id.parse().unwrap_or(0);
            if !s.repo(&repo).artifacts.iter().any(|(_, a, ..)| *a == id) {
                return not_found();
            }
            let mut answer = Answer { body: None, ..Answer::json(StatusCode::FOUND, Value::Null) };
            answer.headers.push(("location", format!("{}/_artifact-zips/{repo}/{id}", s.base)));
            answer
        }
        // https://docs.github.com/en/rest/actions/workflow-runs#cancel-a-workflow-run
        ("POST", ["actions", "runs", run, "cancel"]) => {
            let run: u64 = run.parse().unwrap_or(0);
            match s.repo(&repo).runs.get_mut(&run) {
                None => not_found(),
                Some((_, status, _)) if status == "completed" => {
                    Answer::error(StatusCode::CONFLICT, "Cannot cancel a workflow run that is completed.")
                }
                Some((_, status, conclusion)) => {
                    *status = "completed".into();
                    *conclusion = Some("cancelled".into());
                    Answer::json(StatusCode::ACCEPTED, json!({}))
                }
            }
        }
        ("GET", ["actions", "runs", run, "approvals"]) => {
            let run: u64 = run.parse().unwrap_or(0);
            let items = s.repo(&repo).approvals.get(&run).cloned().unwrap_or_default();
            Answer::json(StatusCode::OK, Value::Array(items))
        }
        ("GET", ["compare", basehead]) => {
            let Some((base, head)) = basehead.split_once("...") else { return not_found() };
            let (Some(base), Some(head)) = (resolve(s, &repo, base), resolve(s, &repo, head)) else {
                return not_found();
            };
            let commits = &s.repo(&repo).commits;
            let position = |sha: &str| commits.iter().position(|c| c["sha"].as_str() == Some(sha));
            let (Some(b), Some(h)) = (position(&base), position(&head)) else { return not_found() };
            let (status, ahead, behind) = match h.cmp(&b) {
                std::cmp::Ordering::Greater => ("ahead", h - b, 0),
                std::cmp::Ordering::Less => ("behind", 0, b - h),
                std::cmp::Ordering::Equal => ("identical", 0, 0),
            };
            let between: Vec<Value> = if h > b { commits[b + 1..=h].to_vec() } else { Vec::new() };
            let total = between.len();
            let base_commit = commits[b].clone();
            match paginate(s, path, query, between) {
                Ok((page, link)) => Answer {
                    link,
                    ..Answer::json(
                        StatusCode::OK,
                        json!({
                            "url": format!("{}/repos/{repo}/compare/{basehead}", s.base),
                            "html_url": format!("https://github.com/{repo}/compare/{basehead}"),
                            "base_commit": base_commit,
                            "status": status,
                            "ahead_by": ahead,
                            "behind_by": behind,
                            "total_commits": total,
                            "commits": page,
                            "files": [],
                        }),
                    )
                },
                Err(answer) => answer,
            }
        }
        _ => not_found(),
    }
}

/// Checks a dispatch's inputs against the workflow's declared ones, with
/// the messages GitHub answers (422): inputs the workflow does not declare,
/// a required input missing, a choice outside its options.
///
/// <https://docs.github.com/en/rest/actions/workflows#create-a-workflow-dispatch-event>
fn validate_dispatch(declared: &[DispatchInput], inputs: &serde_json::Map<String, Value>) -> Option<String> {
    let unexpected: Vec<&String> = inputs.keys().filter(|k| !declared.iter().any(|d| &d.name == *k)).collect();
    if !unexpected.is_empty() {
        return Some(format!("Unexpected inputs provided: {unexpected:?}"));
    }
    for input in declared {
        let value = inputs.get(&input.name).map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_owned));
        match value {
            None if input.required => return Some(format!("Required input '{}' not provided", input.name)),
            Some(v) if !input.options.is_empty() && !input.options.contains(&v) => {
                return Some(format!(
                    "Provided value '{v}' for input '{}' not in the list of allowed values",
                    input.name
                ));
            }
            _ => {}
        }
    }
    None
}

/// The permission a call needs: the scope and level GitHub documents for
/// each endpoint under "Fine-grained access tokens" / the `GITHUB_TOKEN`
/// permissions table.
///
/// <https://docs.github.com/en/actions/security-for-github-actions/security-guides/automatic-token-authentication#permissions-for-the-github_token>
fn needed(method: &str, path: &str) -> Option<(&'static str, Access)> {
    let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
    let ["repos", _, _, rest @ ..] = parts.as_slice() else { return None };
    let level = if method == "GET" || method == "HEAD" { Access::Read } else { Access::Write };
    let scope = match rest.first().copied()? {
        "deployments" => "deployments",
        "commits" if rest.get(2) == Some(&"check-runs") => "checks",
        "commits" if rest.get(2) == Some(&"status") => "statuses",
        "commits" | "compare" => "contents",
        "issues" => "issues",
        "actions" => "actions",
        _ => return None,
    };
    Some((scope, level))
}

fn create_deployment(s: &mut State, repo: &str, body: &Value) -> Answer {
    let Some(git_ref) = body.get("ref").and_then(Value::as_str) else {
        return Answer::error(StatusCode::UNPROCESSABLE_ENTITY, "Invalid request.\n\n\"ref\" wasn't supplied.");
    };
    let Some(sha) = resolve(s, repo, git_ref) else {
        return Answer::error(StatusCode::UNPROCESSABLE_ENTITY, &format!("No ref found for: {git_ref}"));
    };
    if let Some(payload) = body.get("payload")
        && !(payload.is_object() || payload.is_string())
    {
        return Answer::error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "Invalid request.\n\nFor 'properties/payload', it is not an object or string.",
        );
    }
    // Without `required_contexts`, GitHub verifies every commit status
    // context of the ref first and refuses with 409 if one is not success.
    if body.get("required_contexts").is_none() {
        let failing: Vec<String> = s
            .repo(repo)
            .commit_statuses
            .iter()
            .filter(|(c, v)| *c == sha && v["state"] != "success")
            .filter_map(|(_, v)| v["context"].as_str().map(str::to_owned))
            .collect();
        if !failing.is_empty() {
            return Answer::error(
                StatusCode::CONFLICT,
                &format!("Conflict: Commit status checks failed for {git_ref}."),
            );
        }
    }
    let id = s.id();
    let deployment = deployment_json(s, repo, id, &sha, git_ref, body);
    s.repo(repo).deployments.push(deployment.clone());
    Answer::json(StatusCode::CREATED, deployment)
}

const STATES: [&str; 7] = ["error", "failure", "inactive", "in_progress", "queued", "pending", "success"];

fn create_status(s: &mut State, repo: &str, id: u64, body: &Value) -> Answer {
    let Some(deployment) = s.repo(repo).deployments.iter().find(|d| d["id"] == id).cloned() else {
        return Answer::error(StatusCode::NOT_FOUND, "Not Found");
    };
    let state = body.get("state").and_then(Value::as_str).unwrap_or("");
    if !STATES.contains(&state) {
        return Answer::error(
            StatusCode::UNPROCESSABLE_ENTITY,
            &format!("Invalid request.\n\n{state:?} is not a member of {STATES:?}."),
        );
    }
    if body.get("description").and_then(Value::as_str).is_some_and(|d| d.chars().count() > 140) {
        return Answer::error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "Validation Failed: description is too long (maximum is 140 characters)",
        );
    }
    let status = status_json(s, repo, id, body);
    s.repo(repo).deployment_statuses.entry(id).or_default().push(status.clone());
    // auto_inactive (default true): a success marks prior successful,
    // non-transient, non-production deployments of the environment inactive.
    if state == "success" && body.get("auto_inactive").and_then(Value::as_bool).unwrap_or(true) {
        let environment = deployment["environment"].clone();
        let prior: Vec<u64> = s
            .repo(repo)
            .deployments
            .iter()
            .filter(|d| d["id"] != id && d["environment"] == environment)
            .filter(|d| d["transient_environment"] != true && d["production_environment"] != true)
            .filter_map(|d| d["id"].as_u64())
            .collect();
        for other in prior {
            let latest =
                s.repo(repo).deployment_statuses.get(&other).and_then(|v| v.last()).map(|v| v["state"].clone());
            if latest == Some(json!("success")) {
                let inactive = status_json(s, repo, other, &json!({ "state": "inactive" }));
                s.repo(repo).deployment_statuses.entry(other).or_default().push(inactive);
            }
        }
    }
    Answer::json(StatusCode::CREATED, status)
}
