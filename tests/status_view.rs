//! Snapshots of `sluice status` (text and `--json`) as a user sees it: an
//! environment on the embedded router with a deployment in flight, an
//! environment on an ALB (moto), and a config whose ledger is GitHub (the
//! fake). Snapshots live in tests/snapshots/ so a review sees every change
//! to the view.
//!
//! What varies from run to run is replaced by a named placeholder: each
//! exact value it stands for (URLs of this run's processes, the test's
//! directory, the ARNs moto made, the time and random part of the record
//! id), or a pattern (timestamps). Nothing else is removed, so the snapshot
//! shows every field a user sees. The steps run as run 7 of acme/shop by
//! alice, so the lease holder reads the same everywhere.

use crate::support::{Harness, code, exe, shared, stderr, stdout};
use sluice_github_fake::Fake;
use sluice_test_support::aws::{self as testing, create_alb, step_env};
use std::process::{Command, Output};

/// Exact values of this run and what they are called in the snapshots,
/// then timestamps (RFC 3339, whole seconds or finer) as `[time]`.
struct Normalise(Vec<(String, String)>);

impl Normalise {
    fn new() -> Normalise {
        Normalise(Vec::new())
    }

    fn name(&mut self, value: &str, placeholder: &str) -> &mut Self {
        assert!(!value.is_empty(), "{placeholder}: nothing to replace");
        self.0.push((value.to_owned(), format!("[{placeholder}]")));
        self
    }

    /// Longest value first, so a URL is named before the port inside it.
    fn apply(&self, text: &str) -> String {
        let mut pairs: Vec<&(String, String)> = self.0.iter().collect();
        pairs.sort_by_key(|(v, _)| std::cmp::Reverse(v.len()));
        let mut out = text.to_owned();
        for (value, placeholder) in pairs {
            out = out.replace(value.as_str(), placeholder);
        }
        out
    }

    fn snapshot(&self, name: &str, text: &str) {
        let text = self.apply(text);
        let mut settings = insta::Settings::clone_current();
        settings.set_snapshot_path("snapshots");
        settings.set_prepend_module_to_snapshot(false);
        settings.add_filter(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})", "[time]");
        settings.bind(|| insta::assert_snapshot!(name, text));
    }
}

/// Runs `args[0]` (a step, or `sluice`) in `dir` with the config there, as
/// run 7 of acme/shop by alice would (the lease holder names them), with
/// `env` added.
fn run(dir: &std::path::Path, env: &[(String, String)], args: &[&str]) -> Output {
    Command::new(exe(args[0]))
        .current_dir(dir)
        .env_remove("GITHUB_ACTIONS")
        .env_remove("GITHUB_OUTPUT")
        .env_remove("GITHUB_STEP_SUMMARY")
        .env_remove("RUNNER_DEBUG")
        .env_remove("GITHUB_TOKEN")
        .env_remove("GH_TOKEN")
        .env("CI", "true")
        .env("GITHUB_ACTOR", "alice")
        .env("GITHUB_SERVER_URL", "https://github.com")
        .env("GITHUB_REPOSITORY", REPO)
        .env("GITHUB_RUN_ID", "7")
        .envs(env.iter().cloned())
        .args(&args[1..])
        .args(["--config", "sluice.toml"])
        .output()
        .expect("step runs")
}

/// `sluice status` as text at 100 columns (a CI log) and at 80 (a
/// terminal), through `COLUMNS`: every line fits, unless it is one word
/// longer than the width (a URL), kept whole.
fn text_views(dir: &std::path::Path, env: &[(String, String)], args: &[&str]) -> [String; 2] {
    [100, 80].map(|width| {
        let mut env = env.to_vec();
        env.push(("COLUMNS".to_owned(), width.to_string()));
        let out = run(dir, &env, args);
        ok(&out, &format!("status at {width} columns"));
        let text = stdout(&out);
        for line in text.lines() {
            let one_word = !line.trim().contains(' ');
            assert!(line.chars().count() <= width || one_word, "over {width} columns: {line}\n{text}");
        }
        text
    })
}

fn ok(out: &Output, what: &str) {
    assert_eq!(code(out), 0, "{what}: {}", stderr(out));
}

/// What varies in a record's id (`APP-ENV-RELEASE-STAMP-RANDOM`): after
/// `prefix`.
fn id_tail<'a>(record: &'a serde_json::Value, prefix: &str) -> &'a str {
    let id = record["id"].as_str().expect("record id");
    id.strip_prefix(prefix).unwrap_or_else(|| panic!("{id} does not start with {prefix}"))
}

fn record(path: &std::path::Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(path).expect("record")).expect("record json")
}

/// The status view of dev with a release promoted (stable), the next one
/// paused at its first stage (in flight, holding the lease), and prd where
/// the promoted release is coming.
#[test]
fn status_of_a_deployment_in_flight_on_the_embedded_router() {
    let canary = "{ kind = \"canary\", stages = [25, 100], stage_duration = \"1s\" }";
    let h = Harness::start(
        &[("v1", &[]), ("v2", &[]), ("v3", &[])],
        canary,
        "analysis = \"none\"\npause_timeout = \"1h\"\n",
    );
    let (v2, v3) = (h.apps[1].clone(), h.apps[2].clone());
    let step = |args: &[&str]| run(h.dir.path(), &[], args);
    ok(&step(&["gate", "-e", "dev", "--record", "v2.json", "--release", "v2", "--commit", "abcdef1"]), "gate v2");
    ok(&step(&["shift-traffic", "-e", "dev", "--record", "v2.json", "--candidate-upstream", &v2]), "shift v2");
    ok(&step(&["promote", "-e", "dev", "--record", "v2.json"]), "promote v2");
    ok(&step(&["gate", "-e", "dev", "--record", "r.json", "--release", "v3", "--commit", "abcdef2"]), "gate v3");
    let paused =
        step(&["shift-traffic", "-e", "dev", "--record", "r.json", "--candidate-upstream", &v3, "--pause-at", "25"]);
    ok(&paused, "shift v3 to a pause at 25%");

    let r = record(&h.path("r.json"));
    let mut n = Normalise::new();
    n.name(&h.admin, "router-admin-url")
        .name(&h.apps[0], "app-v1-url")
        .name(&v2, "app-v2-url")
        .name(&v3, "app-v3-url")
        .name(&h.dir.path().display().to_string(), "test-dir")
        .name(id_tail(&r, "shop-dev-v3-"), "time-random");
    let [status, narrow] = text_views(h.dir.path(), &[], &["sluice", "status", "--record", "r.json"]);
    let json = step(&["sluice", "status", "--record", "r.json", "--json"]);
    ok(&json, "status --json");
    n.snapshot("status-local-router", &status);
    n.snapshot("status-local-router-80", &narrow);
    n.snapshot("status-local-router-json", &stdout(&json));
}

/// An ALB on moto with a release at 20% by `shift-traffic --weight`.
#[tokio::test(flavor = "multi_thread")]
async fn status_of_an_alb_on_moto() {
    let _turn = shared();
    let Some(moto) = testing::moto() else { return };
    let sdk = moto.sdk_config().await;
    let fx = create_alb(&moto.endpoint, &sdk).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let config = format!(
        "app = \"shop\"\n[ledger]\nkind = \"file\"\npath = \"ledger.jsonl\"\n\
         [defaults]\nstrategy = {{ kind = \"canary\", stages = [20, 100], stage_duration = \"1s\" }}\nanalysis = \"none\"\n\
         [[environment]]\nname = \"dev\"\n\
         router = {{ kind = \"alb\", listener_arn = \"{}\", stable_target_group = \"{}\", candidate_target_group = \"{}\" }}\n",
        fx.listener, fx.blue, fx.green
    );
    std::fs::write(dir.path().join("sluice.toml"), config).expect("config");
    let aws: Vec<(String, String)> = step_env(&moto.endpoint).into_iter().map(|(k, v)| (k.into(), v)).collect();
    let step = |args: &[&str]| run(dir.path(), &aws, args);
    ok(&step(&["gate", "-e", "dev", "--record", "r.json", "--release", "v2", "--commit", "abcdef1"]), "gate");
    ok(&step(&["shift-traffic", "-e", "dev", "--record", "r.json", "--weight", "20"]), "shift to 20%");

    let r = record(&dir.path().join("r.json"));
    let mut n = Normalise::new();
    // The text view names a target group by its ARN's resource part.
    let resource = |arn: &str| arn.splitn(6, ':').nth(5).expect("an ARN").to_owned();
    n.name(&fx.listener, "listener-arn")
        .name(&fx.blue, "blue-target-group-arn")
        .name(&fx.green, "green-target-group-arn")
        .name(&resource(&fx.blue), "blue-target-group")
        .name(&resource(&fx.green), "green-target-group")
        .name(&dir.path().display().to_string(), "test-dir")
        .name(id_tail(&r, "shop-dev-v2-"), "time-random");
    let [status, narrow] = text_views(dir.path(), &aws, &["sluice", "status", "--record", "r.json"]);
    let json = step(&["sluice", "status", "--record", "r.json", "--json"]);
    ok(&json, "status --json");
    n.snapshot("status-alb", &status);
    n.snapshot("status-alb-80", &narrow);
    n.snapshot("status-alb-json", &stdout(&json));
}

const TOKEN: &str = "ghs_statusSECRETtoken0123456789abcdefgh";
const REPO: &str = "acme/shop";
/// A commit the fake knows (a ref GitHub would find).
const SHA: &str = "a1b2c3d4e5f60718293a4b5c6d7e8f9012345678";

/// The calls `sluice status` made to the fake since `clear_seen`, checked
/// against the count it printed on stderr, and none of them a listing of
/// deployments: status shows the stable release from the journal alone, so
/// the deployments from before the journal (which `dora-report` reads) are
/// not listed.
fn status_calls(fake: &Fake, out: &Output) -> Vec<String> {
    let calls: Vec<String> = fake.seen().iter().map(|s| format!("{} {}?{}", s.method, s.path, s.query)).collect();
    let said = format!("status: read the GitHub ledger with {} API calls ", calls.len());
    assert!(stderr(out).contains(&said), "{said:?} not in stderr: {}\ncalls: {calls:#?}", stderr(out));
    let listed: Vec<&String> = calls.iter().filter(|c| c.contains("/deployments")).collect();
    assert!(listed.is_empty(), "status read deployments it does not show: {listed:#?}");
    calls
}

/// A config whose ledger is GitHub (the fake): the release gated and
/// shifted all at once in dev, not promoted. The repository had a
/// deployment before sluice's journal started (one a job made for prd), so
/// the journal says the history before it is in GitHub Deployments; status
/// does not read it.
#[test]
fn status_with_the_github_ledger() {
    let h = Harness::start(&[("v1", &[]), ("v2", &[])], "{ kind = \"all_at_once\" }", "analysis = \"none\"\n");
    let fake = Fake::start(TOKEN);
    let config = std::fs::read_to_string(h.path("sluice.toml")).expect("config").replace(
        "[ledger]\nkind = \"file\"\npath = \"ledger.jsonl\"\n",
        &format!("[ledger]\nkind = \"github\"\n[github]\nrepository = \"{REPO}\"\nwrite_interval = \"20ms\"\nmax_wait = \"10s\"\n"),
    );
    assert!(config.contains("kind = \"github\""), "{config}");
    std::fs::write(h.path("sluice.toml"), config).expect("config");
    let v2 = h.apps[1].clone();
    let github = [("GITHUB_TOKEN".to_owned(), TOKEN.to_owned()), ("GITHUB_API_URL".to_owned(), fake.api_url())];
    let step = |args: &[&str]| run(h.dir.path(), &github, args);
    fake.add_job_deployment(REPO, "prd", SHA, "https://github.com/acme/shop/actions/runs/3");
    ok(&step(&["gate", "-e", "dev", "--record", "r.json", "--release", "v2", "--commit", SHA]), "gate");
    let start = fake.branch_file(REPO, "sluice-ledger", "ledger/since.json").expect("the journal's start marker");
    let start: serde_json::Value = serde_json::from_str(&start).expect("start marker json");
    assert_eq!(start["deployments_before"], true, "{start}");
    ok(&step(&["shift-traffic", "-e", "dev", "--record", "r.json", "--candidate-upstream", &v2]), "shift");

    let r = record(&h.path("r.json"));
    let mut n = Normalise::new();
    n.name(&h.admin, "router-admin-url")
        .name(&h.apps[0], "app-v1-url")
        .name(&v2, "app-v2-url")
        .name(&h.dir.path().display().to_string(), "test-dir")
        .name(id_tail(&r, "shop-dev-v2-"), "time-random");
    let [status, narrow] = text_views(h.dir.path(), &github, &["sluice", "status", "--record", "r.json"]);
    fake.clear_seen();
    let json = step(&["sluice", "status", "--record", "r.json", "--json"]);
    ok(&json, "status --json");
    // The tree, and each environment's lease.
    assert_eq!(status_calls(&fake, &json).len(), 3, "{}", stderr(&json));
    n.snapshot("status-github-ledger", &status);
    n.snapshot("status-github-ledger-80", &narrow);
    n.snapshot("status-github-ledger-json", &stdout(&json));
    assert!(stderr(&json).contains("status: read the GitHub ledger with "), "{}", stderr(&json));

    // Promoted: GitHub's journal has dev's stable release, the lease is
    // free, and prd has v2 coming.
    ok(&step(&["promote", "-e", "dev", "--record", "r.json"]), "promote");
    fake.clear_seen();
    let after = step(&["sluice", "status"]);
    ok(&after, "status after the promotion");
    // The tree, dev's month of the journal, and each environment's lease.
    assert_eq!(status_calls(&fake, &after).len(), 4, "{}", stderr(&after));
    let text = stdout(&after);
    let dev = text.split("\nprd\n").next().expect("dev's part");
    assert!(dev.contains("  stable    v2 since "), "{text}");
    assert!(dev.contains("  held by   nobody"), "{text}");
    let prd = text.split("\nprd\n").nth(1).expect("prd's part");
    assert!(prd.contains("  stable    (no promotion in the GitHub ledger's journal of the last 60 days)"), "{text}");
    assert!(prd.contains(&format!("  coming    v2 (commit {}", &SHA[..7])), "{text}");

    // Without a token, what needs GitHub says why it is not shown; the
    // router and the record are still read.
    let anonymous = run(h.dir.path(), &[("GITHUB_API_URL".to_owned(), fake.api_url())], &["sluice", "status"]);
    ok(&anonymous, "status without a token");
    assert!(stdout(&anonymous).contains("  stable    (not read: "), "{}", stdout(&anonymous));
    assert!(stdout(&anonymous).contains("GITHUB_TOKEN"), "says what is missing: {}", stdout(&anonymous));
    assert!(stdout(&anonymous).contains("  router    local: candidate "), "{}", stdout(&anonymous));
}

/// While `shift-traffic` judges a stage, `sluice status` from another
/// terminal shows the analysis as it stands (the live file beside the
/// record): the stage, its time left and the plan's, every built-in check's
/// running value against its limit and its samples against `min_samples`;
/// when the plan ends the live file is gone, and status shows the last
/// verdict instead.
#[test]
fn status_shows_the_running_analysis_of_a_stage() {
    let canary = "{ kind = \"canary\", stages = [50, 100], stage_duration = \"6s\" }";
    let mut h = Harness::start(&[("v1", &[]), ("v2", &[])], canary, "");
    let v2 = h.apps[1].clone();
    h.load(100, 40);
    let gate = h.step("gate", &["-e", "dev", "--record", "r.json", "--release", "v2", "--commit", "abcdef1"]);
    ok(&gate, "gate");
    let mut shift = h.spawn("shift-traffic", &["-e", "dev", "--record", "r.json", "--candidate-upstream", &v2]);
    let live = h.path("r.json.live");
    // Polls for the live file with a wide margin (its first interval comes
    // half a second into the stage).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let view = loop {
        assert!(std::time::Instant::now() < deadline, "no live analysis in a minute");
        assert!(shift.try_wait().expect("wait").is_none(), "shift-traffic ended before a live view was seen");
        if live.exists() {
            let json = run(h.dir.path(), &[], &["sluice", "status", "--record", "r.json", "--json"]);
            ok(&json, "status --json");
            let view: serde_json::Value = serde_json::from_str(&stdout(&json)).expect("json");
            if view["environments"][0]["deployments"][0]["analysing"].as_array().is_some_and(|a| !a.is_empty()) {
                break view;
            }
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    };
    let analysing = &view["environments"][0]["deployments"][0]["analysing"][0];
    assert!(analysing["window"].as_str().is_some_and(|w| w.starts_with("stage ")), "{analysing:#}");
    assert!(analysing["left_seconds"].as_u64().is_some_and(|s| s <= 6), "{analysing:#}");
    let checks = analysing["checks"].as_array().expect("checks");
    let names: Vec<&str> = checks.iter().filter_map(|c| c["name"].as_str()).collect();
    assert_eq!(names, ["builtin-error-rate", "builtin-error-rate-vs-stable", "builtin-latency-vs-stable"]);
    for c in checks {
        assert_eq!(c["min_samples"], 50, "{c:#}");
        assert!(c["limit"].as_str().is_some_and(|l| l.starts_with("<=")), "{c:#}");
        assert!(c["samples"].is_u64(), "{c:#}");
    }
    let text = run(h.dir.path(), &[], &["sluice", "status", "--record", "r.json"]);
    ok(&text, "status");
    assert!(stdout(&text).contains("analysing stage "), "{}", stdout(&text));
    assert!(stdout(&text).contains("builtin-error-rate-vs-stable"), "{}", stdout(&text));

    let done = shift.wait().expect("shift-traffic ends");
    assert_eq!(done.code(), Some(0), "a healthy candidate passes");
    assert!(!live.exists(), "the live file is removed when the analysis ends");
    let after = run(h.dir.path(), &[], &["sluice", "status", "--record", "r.json"]);
    ok(&after, "status after");
    assert!(!stdout(&after).contains("analysing"), "{}", stdout(&after));
    assert!(stdout(&after).contains("last verdict: pass (stage 2)"), "{}", stdout(&after));
}

/// `--watch` into a pipe (a CI log, `| tee`): the whole view once, then only
/// what changed, a line each naming the environment; here the candidate's
/// weight moved by `shift-traffic --weight` from another process.
#[test]
fn watch_into_a_pipe_prints_the_view_once_then_the_changes() {
    use std::io::BufRead;
    let canary = "{ kind = \"canary\", stages = [25, 100], stage_duration = \"1s\" }";
    let h = Harness::start(&[("v1", &[]), ("v2", &[])], canary, "analysis = \"none\"\n");
    let v2 = h.apps[1].clone();
    let mut watch = Command::new(exe("sluice"))
        .current_dir(h.dir.path())
        .env("CI", "true")
        .args(["status", "-e", "dev", "--watch", "200ms", "--config", "sluice.toml"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("status --watch starts");
    let (tx, rx) = std::sync::mpsc::channel();
    let stdout = watch.stdout.take().expect("stdout");
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    // Wide margins: the first view within a minute, the change within a
    // minute of the shift.
    let next = |what: &str| rx.recv_timeout(std::time::Duration::from_secs(60)).unwrap_or_else(|_| panic!("{what}"));
    let mut seen = Vec::new();
    while !seen.iter().any(|l: &String| l.starts_with("  held by")) {
        seen.push(next("the first view"));
    }
    ok(&h.step("gate", &["-e", "dev", "--record", "r.json", "--release", "v2", "--commit", "abcdef1"]), "gate");
    let shift =
        h.step("shift-traffic", &["-e", "dev", "--record", "r.json", "--candidate-upstream", &v2, "--weight", "25"]);
    ok(&shift, "shift to 25%");
    let mut changed = Vec::new();
    let weight = |l: &String| l.contains(" dev: router    local: candidate 25%");
    let lease = |l: &String| l.contains(" dev: held by   shop-dev-v2-");
    while !(changed.iter().any(weight) && changed.iter().any(lease)) {
        changed.push(next("the weight's and the lease's changes"));
    }
    let _ = watch.kill();
    let _ = watch.wait();
    assert_eq!(seen.iter().filter(|l| l.starts_with("shop at ")).count(), 1, "{seen:#?}");
    for line in &changed {
        // "01:02:03 dev: ..." (a wrapped line's continuation is indented).
        let timed = line.len() > 9 && line.as_bytes()[2] == b':' && line.as_bytes()[5] == b':';
        assert!(timed || line.starts_with("            "), "not a change line: {line}\n{changed:#?}");
        assert!(!line.starts_with("shop at"), "the whole view again: {changed:#?}");
    }
}
