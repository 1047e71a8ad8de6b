//! The world a scenario's workflows run in: the GitHub fake (API and release
//! downloads), the demo app in three versions, one embedded router per
//! environment under steady load, the user's repository (a git checkout
//! with the shipped workflow, a config and release tags), and the sluice
//! action as a user gets it: the action's files at its release tag with the
//! release manifest, the release archive published on the fake.
//!
//! Everything listens on 127.0.0.1 and is stopped when the world is dropped.
//! Nothing here reaches the network.

use serde_json::Value;
use sluice_github_fake::{DispatchInput, Fake};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// The user's repository, as the fake and the checkout name it.
pub const REPO: &str = "acme/shop";
/// The action's repository and release tag, as `uses:` names them.
pub const ACTION_REPO: &str = "sluice-dev/sluice";
/// The token the harness itself uses with the fake (every permission).
pub const ADMIN_TOKEN: &str = "harness-admin-token";

/// The root of this checkout.
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("tests/ has a parent").to_owned()
}

/// The workspace's built binaries, found in the target directory.
pub use crate::support::{exe as binary, profile_dir};

/// The action at its release tag, packaged once per test process: the
/// action's files (action.yml, dist/, Cargo.toml for the version), the
/// manifest of this release in dist/manifests/, and the release archive of
/// the debug multi-call `sluice`, built by dist/package.sh.
pub struct Release {
    pub version: String,
    pub action_dir: PathBuf,
    pub archive: PathBuf,
}

pub fn release() -> &'static Release {
    static RELEASE: OnceLock<Release> = OnceLock::new();
    RELEASE.get_or_init(|| {
        let root = root();
        let out = profile_dir().join("sluice-e2e").join(format!("release-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&out);
        let action_dir = out.join("action");
        let archives = out.join("archives");
        std::fs::create_dir_all(&action_dir).expect("action dir");
        run(Command::new("cp").arg("-R").arg(root.join("dist")).arg(&action_dir));
        for file in ["action.yml", "Cargo.toml", "README.md"] {
            std::fs::copy(root.join(file), action_dir.join(file)).expect("copy the action's files");
        }
        // A released action carries only its own release's manifest.
        for entry in std::fs::read_dir(action_dir.join("dist/manifests")).expect("manifests").flatten() {
            if entry.path().extension().is_some_and(|e| e == "sha256") {
                std::fs::remove_file(entry.path()).expect("remove a manifest");
            }
        }
        let target = match std::env::consts::ARCH {
            "aarch64" => "aarch64-unknown-linux-gnu",
            _ => "x86_64-unknown-linux-gnu",
        };
        run(Command::new(root.join("dist/package.sh")).arg("archive").arg(target).arg(binary("sluice")).arg(&archives));
        let text = std::fs::read_to_string(root.join("Cargo.toml")).expect("Cargo.toml");
        let version = text
            .lines()
            .skip_while(|l| l.trim() != "[workspace.package]")
            .find_map(|l| l.strip_prefix("version = \"").and_then(|v| v.strip_suffix('"')))
            .expect("[workspace.package] version")
            .to_owned();
        let manifest = action_dir.join(format!("dist/manifests/v{version}.sha256"));
        run(Command::new(root.join("dist/package.sh")).arg("manifest").arg(&archives).arg(&manifest));
        let archive = archives.join(format!("sluice-v{version}-{target}.tar.gz"));
        assert!(archive.is_file(), "{} was not packed", archive.display());
        Release { version, action_dir, archive }
    })
}

pub fn run(cmd: &mut Command) {
    let out = cmd.output().unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(out.status.success(), "{cmd:?} failed: {}", String::from_utf8_lossy(&out.stderr));
}

pub fn git(repo: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .arg("-C")
        .arg(repo)
        .args(args)
        .env("GIT_AUTHOR_NAME", "dev")
        .env("GIT_AUTHOR_EMAIL", "dev@example.com")
        .env("GIT_COMMITTER_NAME", "dev")
        .env("GIT_COMMITTER_EMAIL", "dev@example.com")
        .output()
        .expect("git");
    assert!(out.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// A process the world started; killed when dropped.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// What a scenario sets up.
pub struct Options {
    /// The environments, in promotion order.
    pub environments: Vec<&'static str>,
    /// Environments with required reviewers (GitHub asks before a job in
    /// them starts).
    pub protected: Vec<&'static str>,
    /// Extra TOML for `[defaults]` (after the strategy).
    pub defaults: &'static str,
    /// The canary's stage length.
    pub stage: &'static str,
    /// The workflow files to put in `.github/workflows/` (name, text).
    pub workflows: Vec<(String, String)>,
    /// More `[[environment]]` tables (environments whose router is not an
    /// embedded one: no router or load is started for them).
    pub more_environments: String,
    /// The AWS endpoint the jobs reach (a moto server), if any.
    pub aws_endpoint: Option<String>,
    /// The whole `sluice.toml`, in place of the one made from the options
    /// above (a config taken from the docs).
    pub config: Option<String>,
    /// More files of the repository (path, text); a text that starts with
    /// `#!` is made executable.
    pub files: Vec<(String, String)>,
}

impl Default for Options {
    fn default() -> Options {
        let promote = std::fs::read_to_string(root().join("dist/workflows/promote.yml")).expect("promote.yml");
        Options {
            environments: vec!["dev", "tst", "prd"],
            protected: vec!["prd-approval"],
            defaults: "",
            stage: "2s",
            workflows: vec![("promote.yml".into(), promote)],
            more_environments: String::new(),
            aws_endpoint: None,
            config: None,
            files: Vec::new(),
        }
    }
}

pub struct World {
    pub fake: Fake,
    pub dir: PathBuf,
    _tmp: Option<tempfile::TempDir>,
    pub repo: PathBuf,
    pub head: String,
    /// Router admin URLs by environment.
    pub admin: BTreeMap<String, String>,
    /// The demo apps' base URLs: v1 (stable), v2 (good), v3 (30% errors).
    pub apps: BTreeMap<&'static str, String>,
    pub protected: Vec<String>,
    /// Environment variables (the `vars` context) by environment: GitHub
    /// gives a job the variables of the environment it references
    /// (<https://docs.github.com/en/actions/reference/workflows-and-actions/variables>).
    pub vars: std::sync::Mutex<BTreeMap<String, BTreeMap<String, String>>>,
    /// Where the jobs reach AWS (`AWS_ENDPOINT_URL`), if the scenario has it.
    pub aws_endpoint: Option<String>,
    /// The checkout's remote whose URL names the repository on GitHub (act
    /// reads `github.repository` from it): `origin` but in the release
    /// scenario.
    pub remote: String,
    /// The runs in progress and pending, by concurrency group.
    pub concurrency: std::sync::Mutex<super::engine::Concurrency>,
    procs: Vec<Proc>,
}

impl World {
    pub fn new(name: &str, options: Options) -> World {
        let release = release();
        let tmp = tempfile::Builder::new().prefix(&format!("sluice-e2e-{name}-")).tempdir().expect("temp dir");
        let dir = tmp.path().to_owned();
        // SLUICE_E2E_KEEP=1 keeps the folder (logs, records, act's output).
        let keep = std::env::var_os("SLUICE_E2E_KEEP").is_some();
        let tmp = if keep {
            eprintln!("scenario {name}: keeping {}", tmp.keep().display());
            None
        } else {
            Some(tmp)
        };
        let fake = Fake::start(ADMIN_TOKEN);
        fake.add_release_asset(
            ACTION_REPO,
            &format!("v{}", release.version),
            &release.archive.file_name().expect("archive name").to_string_lossy(),
            std::fs::read(&release.archive).expect("read the archive"),
        );
        let mut world = World {
            fake,
            dir: dir.clone(),
            _tmp: tmp,
            repo: dir.join("repo"),
            head: String::new(),
            admin: BTreeMap::new(),
            apps: BTreeMap::new(),
            protected: options.protected.iter().map(|s| (*s).to_owned()).collect(),
            vars: Default::default(),
            aws_endpoint: options.aws_endpoint.clone(),
            remote: "origin".into(),
            concurrency: Default::default(),
            procs: Vec::new(),
        };
        std::fs::create_dir_all(dir.join("run")).expect("run dir");
        for (version, extra) in [("v1", &[][..]), ("v2", &[][..]), ("v3", &["--error-ratio", "0.3", "--seed", "3"][..])]
        {
            let ready = world.start(
                &format!("app-{version}"),
                &binary("sluice-demo-app"),
                &[&["--listen", "127.0.0.1:0", "--version", version][..], extra].concat(),
            );
            world.apps.insert(version, format!("http://{}", ready["listen"].as_str().expect("listen")));
        }
        let stable = world.apps["v1"].clone();
        for env in &options.environments {
            let ready = world.start(
                &format!("router-{env}"),
                &binary("sluice-router"),
                &["--listen", "127.0.0.1:0", "--admin", "127.0.0.1:0", "--stable", &stable],
            );
            let listen = ready["listen"].as_str().expect("listen").to_owned();
            world.admin.insert((*env).to_owned(), format!("http://{}", ready["admin"].as_str().expect("admin")));
            let load = Command::new(binary("sluice-loadgen"))
                .args(["--url", &format!("http://{listen}/"), "--rps", "100", "--duration", "15m"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("start the load generator");
            world.procs.push(Proc(load));
        }
        world.make_repo(&options);
        world
    }

    /// Starts a server with `--ready-file` and waits for its ready line.
    fn start(&mut self, name: &str, bin: &Path, args: &[&str]) -> Value {
        let ready = self.dir.join("run").join(format!("{name}.json"));
        let log = std::fs::File::create(self.dir.join("run").join(format!("{name}.log"))).expect("log");
        let child = Command::new(bin)
            .args(args)
            .arg("--ready-file")
            .arg(&ready)
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("start {}: {e}", bin.display()));
        self.procs.push(Proc(child));
        let until = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(text) = std::fs::read_to_string(&ready)
                && let Ok(json) = serde_json::from_str::<Value>(&text)
            {
                return json;
            }
            assert!(Instant::now() < until, "{name} did not start (see {})", self.dir.join("run").display());
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The user's repository: sluice.toml, the workflows, `v1.4.2` tagged on
    /// an older commit than main's head; the fake knows the commits, refs and
    /// the workflows' dispatch inputs.
    fn make_repo(&mut self, options: &Options) {
        let repo = self.repo.clone();
        std::fs::create_dir_all(repo.join(".github/workflows")).expect("repo dir");
        git(&repo, &["init", "-q", "-b", "main"]);
        git(&repo, &["remote", "add", "origin", &format!("https://github.com/{REPO}.git")]);
        let mut config = format!(
            r#"app = "shop"

[ledger]
kind = "github"

[github]
write_interval = "100ms"

[handoff]
kind = "dispatch"
workflow = "promote.yml"
ref = "main"

[analysis]
interval = "500ms"

[defaults]
strategy = {{ kind = "canary", stages = [25, 100], stage_duration = "{stage}" }}
{defaults}

[[defaults.check]]
name = "error-rate"
kind = "error_rate"
max = 0.05
min_samples = 20
critical = true
"#,
            stage = options.stage,
            defaults = options.defaults,
        );
        for env in &options.environments {
            config.push_str(&format!(
                "\n[[environment]]\nname = \"{env}\"\nrouter = {{ kind = \"local\", admin_url = \"{}\" }}\n",
                self.admin[*env]
            ));
        }
        config.push_str(&options.more_environments);
        let config = options.config.clone().unwrap_or(config);
        std::fs::write(repo.join("sluice.toml"), config).expect("sluice.toml");
        for (path, text) in &options.files {
            let path = repo.join(path);
            std::fs::create_dir_all(path.parent().expect("a file has a folder")).expect("folder");
            std::fs::write(&path, text).expect("a file of the repository");
            if text.starts_with("#!") {
                use std::os::unix::fs::PermissionsExt;
                std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod +x");
            }
        }
        std::fs::write(repo.join(".gitignore"), ".sluice/\n").expect(".gitignore");
        std::fs::write(repo.join("app.txt"), "v1.4.2\n").expect("app.txt");
        for (name, text) in &options.workflows {
            std::fs::write(repo.join(".github/workflows").join(name), text).expect("workflow");
            self.fake.add_workflow_inputs(REPO, name, dispatch_inputs(text));
        }
        git(&repo, &["add", "-A"]);
        git(&repo, &["commit", "-q", "-m", "release v1.4.2"]);
        git(&repo, &["tag", "v1.4.2"]);
        let release = git(&repo, &["rev-parse", "HEAD"]);
        std::fs::write(repo.join("app.txt"), "main, after v1.4.2\n").expect("app.txt");
        git(&repo, &["commit", "-q", "-am", "work after the release"]);
        self.head = git(&repo, &["rev-parse", "HEAD"]);
        self.fake.add_commit(REPO, &release, "dev", "release v1.4.2");
        self.fake.add_commit(REPO, &self.head, "dev", "work after the release");
        self.fake.add_ref(REPO, "v1.4.2", &release);
        self.fake.add_ref(REPO, "main", &self.head);
    }

    /// The commit the tag `v1.4.2` points to.
    pub fn tag(&self, name: &str) -> String {
        git(&self.repo, &["rev-parse", &format!("refs/tags/{name}^{{commit}}")])
    }

    /// The router's state in an environment (`GET /v1/state`).
    pub fn router(&self, env: &str) -> Value {
        let body = http_get(&format!("{}/v1/state", self.admin[env])).unwrap_or_else(|e| panic!("router {env}: {e}"));
        serde_json::from_str(&body).unwrap_or_else(|e| panic!("router {env} state: {e}: {body}"))
    }

    /// Deploys a release to the candidate pool of an environment, as the
    /// user's deploy step would before sluice shifts traffic to it, and
    /// names it in the environment's variable `SLUICE_CANDIDATE_UPSTREAM`,
    /// which the workflows hand to the action (`candidate-upstream`): sluice
    /// routes only to the candidate a deployment names.
    pub fn deploy_candidate(&self, env: &str, app: &str) {
        let body = serde_json::json!({ "candidate": self.apps[app] }).to_string();
        http("PUT", &format!("{}/v1/upstreams", self.admin[env]), &body)
            .unwrap_or_else(|e| panic!("set the candidate of {env}: {e}"));
        self.vars
            .lock()
            .expect("vars")
            .entry(env.to_owned())
            .or_default()
            .insert("SLUICE_CANDIDATE_UPSTREAM".into(), self.apps[app].clone());
    }

    /// Sets a variable of an environment (the `vars` context of the jobs
    /// that reference it).
    pub fn set_var(&self, env: &str, name: &str, value: &str) {
        self.vars.lock().expect("vars").entry(env.to_owned()).or_default().insert(name.into(), value.into());
    }

    pub fn weight(&self, env: &str) -> u64 {
        self.router(env)["candidate_weight"].as_u64().expect("candidate_weight")
    }

    pub fn stable(&self, env: &str) -> String {
        self.router(env)["stable"]["upstream"].as_str().unwrap_or_default().to_owned()
    }

    /// The fake's deployments of an environment, oldest first.
    pub fn deployments(&self, env: &str) -> Vec<Value> {
        self.fake.deployments(REPO).into_iter().filter(|d| d["environment"] == env).collect()
    }

    /// The states of a deployment's statuses, oldest first.
    pub fn states(&self, id: u64) -> Vec<String> {
        self.fake
            .deployment_statuses(REPO, id)
            .iter()
            .map(|s| s["state"].as_str().unwrap_or_default().to_owned())
            .collect()
    }
}

/// The `on.workflow_dispatch.inputs` a workflow declares.
pub fn dispatch_inputs(text: &str) -> Vec<DispatchInput> {
    let yaml: serde_yaml::Value = serde_yaml::from_str(text).expect("a workflow is YAML");
    let Some(inputs) = yaml["on"]["workflow_dispatch"]["inputs"].as_mapping() else { return Vec::new() };
    inputs
        .iter()
        .map(|(name, spec)| DispatchInput {
            name: name.as_str().unwrap_or_default().to_owned(),
            required: spec["required"].as_bool().unwrap_or(false),
            options: spec["options"]
                .as_sequence()
                .map(|o| o.iter().filter_map(|v| v.as_str().map(str::to_owned)).collect())
                .unwrap_or_default(),
        })
        .collect()
}

pub use crate::support::{http, http_get};
