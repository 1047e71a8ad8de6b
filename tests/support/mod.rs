//! Test support shared by the end-to-end tests: where the workspace's
//! built binaries are, a gate that lets a test have the machine to itself,
//! and a harness that starts real `sluice-demo-app` and `sluice-router`
//! processes on 127.0.0.1, writes a config for them, and runs the real step
//! binaries.
//!
//! The binaries are found in the target directory this test binary was
//! built into (`target/debug`, as `assert_cmd` finds them), not through
//! `CARGO_BIN_EXE_`: they are other packages' binaries, built beforehand by
//! `cargo build --workspace --bins` (scripts/test.sh does). A binary that is
//! missing, or older than a source file it was built from, fails the test
//! with that command rather than testing old code.
//!
//! Every test of this binary runs in one process, in parallel threads: a
//! test never changes the process's environment or current directory
//! (steps get theirs through `Command`), keeps its files in its own
//! temporary directory and its servers on ports the system picks. Every
//! test takes a turn of the machine first ([`shared`], which [`Harness`]
//! and the other harnesses take for it, or [`alone`]), so a test that has
//! the machine alone runs beside nothing.

#![allow(dead_code)] // not every test module uses every part

pub mod aws;

use std::cell::Cell;
use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Mutex, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::{Duration, Instant};

/// The profile directory the workspace's binaries were built into
/// (`target/debug`): this test binary lives in its `deps/`.
pub fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("the test binary's path");
    exe.parent().and_then(Path::parent).expect("target/PROFILE/deps/e2e-*").to_owned()
}

/// The built binary `name` of the workspace; panics with the command that
/// builds it when it is missing or older than its sources.
pub fn exe(name: &str) -> PathBuf {
    static FRESH: Mutex<BTreeSet<String>> = Mutex::new(BTreeSet::new());
    let path = profile_dir().join(name);
    let built = std::fs::metadata(&path).and_then(|m| m.modified()).unwrap_or_else(|_| {
        panic!("{} is not built: run `cargo build --workspace --bins` first (scripts/test.sh does)", path.display())
    });
    let mut fresh = FRESH.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    if !fresh.contains(name) {
        if let Some(source) = newer_source(&path, built) {
            panic!(
                "{} is older than {}: run `cargo build --workspace --bins` (scripts/test.sh does), so the tests run the code as it is",
                path.display(),
                source.display()
            );
        }
        fresh.insert(name.to_owned());
    }
    path
}

/// A source file the binary at `path` was built from (cargo's dep-info
/// beside it, `NAME.d`) that changed since `built`, or is gone.
fn newer_source(path: &Path, built: std::time::SystemTime) -> Option<PathBuf> {
    let mut info = path.as_os_str().to_owned();
    info.push(".d");
    let info = std::fs::read_to_string(info).ok()?;
    let (_, sources) = info.lines().next()?.split_once(": ")?;
    // Paths are separated by spaces; a space inside one is escaped (`\ `).
    let sources = sources.replace("\\ ", "\0");
    sources
        .split_whitespace()
        .map(|source| PathBuf::from(source.replace('\0', " ")))
        .find(|source| std::fs::metadata(source).and_then(|m| m.modified()).map_or(true, |changed| changed > built))
}

thread_local! {
    /// How many turns of the machine this thread holds (shared or alone).
    static TURN: Cell<usize> = const { Cell::new(0) };
}

static MACHINE: RwLock<()> = RwLock::new(());

/// A test's turn on the machine, given back when dropped.
pub struct Turn {
    _shared: Option<RwLockReadGuard<'static, ()>>,
    _alone: Option<RwLockWriteGuard<'static, ()>>,
}

impl Drop for Turn {
    fn drop(&mut self) {
        TURN.with(|t| t.set(t.get() - 1));
    }
}

/// The machine for this test alone, until the guard is dropped: for tests
/// that load both cores (the workflows on act, the ledger's kill loop),
/// which tests with latency checks must not run beside. Other tests wait.
pub fn alone() -> Turn {
    let outer = TURN.with(|t| t.replace(t.get() + 1));
    if outer > 0 {
        return Turn { _shared: None, _alone: None };
    }
    let guard = MACHINE.write().unwrap_or_else(std::sync::PoisonError::into_inner);
    Turn { _shared: None, _alone: Some(guard) }
}

/// The machine shared with other tests that share it (waits while one has
/// it alone). [`Harness`] takes it; taking it again on the same thread is
/// free.
pub fn shared() -> Turn {
    let outer = TURN.with(|t| t.replace(t.get() + 1));
    if outer > 0 {
        return Turn { _shared: None, _alone: None };
    }
    let guard = MACHINE.read().unwrap_or_else(std::sync::PoisonError::into_inner);
    Turn { _shared: Some(guard), _alone: None }
}

/// Processes of one test, killed on drop.
pub struct Harness {
    pub dir: tempfile::TempDir,
    pub children: Vec<Child>,
    pub admin: String,
    pub listen: String,
    pub apps: Vec<String>,
    /// This test's share of the machine (dropped after the children).
    pub turn: Turn,
}

impl Drop for Harness {
    fn drop(&mut self) {
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

pub fn ready(path: &Path, child: &mut Child) -> serde_json::Value {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if let Ok(text) = std::fs::read_to_string(path)
            && let Ok(v) = serde_json::from_str(&text)
        {
            return v;
        }
        if let Ok(Some(status)) = child.try_wait() {
            panic!("{} exited early: {status}", path.display());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("{} never became ready", path.display());
}

impl Harness {
    /// Starts one demo app per `(version, extra args)`, a router with the first
    /// as stable, and writes a config with the given strategy and checks.
    pub fn start(apps: &[(&str, &[&str])], strategy: &str, checks: &str) -> Harness {
        Self::start_with(apps, "500ms", strategy, checks)
    }

    /// As [`Harness::start`], with the analysis interval given.
    pub fn start_with(apps: &[(&str, &[&str])], interval: &str, strategy: &str, checks: &str) -> Harness {
        let turn = shared();
        let dir = tempfile::tempdir().expect("tempdir");
        let mut h =
            Harness { dir, children: Vec::new(), admin: String::new(), listen: String::new(), apps: Vec::new(), turn };
        for (version, extra) in apps {
            let file = h.path(&format!("app-{version}.json"));
            let mut child = Command::new(exe("sluice-demo-app"))
                .args(["--listen", "127.0.0.1:0", "--version", version, "--ready-file"])
                .arg(&file)
                .args(*extra)
                .stdout(Stdio::null())
                .spawn()
                .expect("demo app");
            let v = ready(&file, &mut child);
            h.children.push(child);
            h.apps.push(format!("http://{}", v["listen"].as_str().expect("listen")));
        }
        let file = h.path("router.json");
        let mut child = Command::new(exe("sluice-router"))
            .args(["--listen", "127.0.0.1:0", "--admin", "127.0.0.1:0", "--stable", &h.apps[0], "--ready-file"])
            .arg(&file)
            .stdout(Stdio::null())
            .spawn()
            .expect("router");
        let v = ready(&file, &mut child);
        h.children.push(child);
        h.admin = format!("http://{}", v["admin"].as_str().expect("admin"));
        h.listen = format!("http://{}", v["listen"].as_str().expect("listen"));
        let config = format!(
            "app = \"shop\"\n[ledger]\nkind = \"file\"\npath = \"ledger.jsonl\"\n[analysis]\ninterval = \"{interval}\"\n\
             [defaults]\nstrategy = {strategy}\n{checks}\n\
             [[environment]]\nname = \"dev\"\nrouter = {{ kind = \"local\", admin_url = \"{}\" }}\n\
             [[environment]]\nname = \"prd\"\nrouter = {{ kind = \"local\", admin_url = \"{}\" }}\n",
            h.admin, h.admin
        );
        std::fs::write(h.path("sluice.toml"), config).expect("config");
        h
    }

    /// Starts another server binary of the workspace that writes a ready
    /// file (`--ready-file`), and returns what it wrote.
    pub fn spawn_server(&mut self, name: &str, args: &[&str]) -> serde_json::Value {
        let file = self.path(&format!("{name}-{}.json", self.children.len()));
        let mut child = Command::new(exe(name))
            .args(args)
            .arg("--ready-file")
            .arg(&file)
            .stdout(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let v = ready(&file, &mut child);
        self.children.push(child);
        v
    }

    /// Points the config's router at another admin URL (a proxy in front of
    /// the router).
    pub fn use_admin_url(&self, url: &str) {
        let config = std::fs::read_to_string(self.path("sluice.toml")).expect("config");
        std::fs::write(self.path("sluice.toml"), config.replace(&self.admin, url)).expect("config");
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub fn load(&mut self, rps: u32, seconds: u32) {
        let child = Command::new(exe("sluice-loadgen"))
            .args([
                "--url",
                &format!("{}/", self.listen),
                "--rps",
                &rps.to_string(),
                "--duration",
                &format!("{seconds}s"),
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("loadgen");
        self.children.push(child);
    }

    pub fn step(&self, name: &str, args: &[&str]) -> Output {
        self.command(name, args).output().expect("step runs")
    }

    /// Starts a step without waiting for it (its output is discarded).
    pub fn spawn(&self, name: &str, args: &[&str]) -> Child {
        self.command(name, args).stdout(Stdio::null()).stderr(Stdio::null()).spawn().expect("step starts")
    }

    fn command(&self, name: &str, args: &[&str]) -> Command {
        let mut cmd = Command::new(exe(name));
        cmd.current_dir(self.dir.path())
            .env_remove("GITHUB_ACTIONS")
            .env_remove("GITHUB_OUTPUT")
            .env_remove("GITHUB_STEP_SUMMARY")
            .env("CI", "true");
        if name != "dora-report" && !args.contains(&"--config") {
            cmd.args(["--config", "sluice.toml"]);
        }
        cmd.args(args);
        cmd
    }

    pub fn state(&self) -> serde_json::Value {
        let out = Command::new("curl").args(["-fsS", &format!("{}/v1/state", self.admin)]).output().expect("curl");
        serde_json::from_slice(&out.stdout).expect("state json")
    }

    pub fn ledger(&self) -> Vec<serde_json::Value> {
        std::fs::read_to_string(self.path("ledger.jsonl"))
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).expect("ledger line"))
            .collect()
    }
}

pub fn code(out: &Output) -> i32 {
    out.status.code().unwrap_or(-1)
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[allow(dead_code)] // not every test binary reads stdout
pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A plain HTTP/1.1 GET on 127.0.0.1 (the routers' admin APIs, the demo
/// apps); the body.
pub fn http_get(url: &str) -> Result<String, String> {
    http("GET", url, "")
}

/// A plain HTTP/1.1 request with a JSON body on 127.0.0.1; the body.
pub fn http(method: &str, url: &str, body: &str) -> Result<String, String> {
    let rest = url.strip_prefix("http://").ok_or("not an http:// URL")?;
    let (host, path) = rest.split_once('/').map_or((rest, "/".to_owned()), |(h, p)| (h, format!("/{p}")));
    let mut stream = std::net::TcpStream::connect(host).map_err(|e| e.to_string())?;
    stream.set_read_timeout(Some(Duration::from_secs(10))).map_err(|e| e.to_string())?;
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    )
    .map_err(|e| e.to_string())?;
    let mut text = String::new();
    stream.read_to_string(&mut text).map_err(|e| e.to_string())?;
    let (head, body) = text.split_once("\r\n\r\n").ok_or("no HTTP answer")?;
    if !head.starts_with("HTTP/1.1 200") {
        return Err(head.lines().next().unwrap_or_default().to_owned());
    }
    if head.to_ascii_lowercase().contains("transfer-encoding: chunked") {
        return Ok(dechunk(body));
    }
    Ok(body.to_owned())
}

fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = body.split_once("\r\n") {
        let Ok(n) = usize::from_str_radix(size.trim(), 16) else { break };
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        body = rest[n..].trim_start_matches("\r\n");
    }
    out
}
