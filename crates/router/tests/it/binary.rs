use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use hyper::StatusCode;

use crate::support::{TestUpstream, client, get};

#[tokio::test]
async fn binary_writes_ready_file_and_exits_on_sigterm() {
    let stable = TestUpstream::start("stable").await;
    let dir = tempfile::tempdir().expect("tempdir");
    let ready = dir.path().join("ready.json");
    let mut child = Command::new(env!("CARGO_BIN_EXE_sluice-router"))
        .args(["--listen", "127.0.0.1:0", "--admin", "127.0.0.1:0", "--stable"])
        .arg(format!("http://{}", stable.addr))
        .arg("--ready-file")
        .arg(&ready)
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn router");
    let deadline = Instant::now() + Duration::from_secs(5);
    let line = loop {
        if let Ok(line) = std::fs::read_to_string(&ready) {
            break line;
        }
        assert!(Instant::now() < deadline, "no ready file");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let ready: sluice_router::Ready = serde_json::from_str(line.trim()).expect("ready line");
    assert_eq!(ready.pid, child.id());
    let client = client();
    assert_eq!(get(&client, ready.listen, "/").await.body, "stable\n");
    assert_eq!(get(&client, ready.admin, "/healthz").await.status, StatusCode::OK);

    let killed = Command::new("kill").args(["-TERM", &child.id().to_string()]).status().expect("kill");
    assert!(killed.success());
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        assert!(Instant::now() < deadline + Duration::from_secs(3), "router did not exit");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(status.success(), "{status:?}");
    let stdout = std::io::read_to_string(child.stdout.take().expect("stdout")).expect("stdout");
    assert_eq!(stdout, line, "stdout carries the same ready line");
}

#[test]
fn binary_rejects_bad_flags() {
    let run = |args: &[&str]| Command::new(env!("CARGO_BIN_EXE_sluice-router")).args(args).output().expect("run");
    let out = run(&["--stable", "http://127.0.0.1:1", "--candidate-weight", "101"]);
    assert_eq!(out.status.code(), Some(2));
    let out = run(&["--stable", "https://127.0.0.1:1"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("only http://"));
    let out = run(&["--stable", "http://127.0.0.1:1", "--candidate-weight", "5"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("needs --candidate"));
}

/// Runs the router binary with `args`, expecting it to exit on its own
/// within 10 s (a router that starts instead is killed and fails the test).
fn run_to_exit(args: &[String]) -> std::process::Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_sluice-router"))
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn router");
    let deadline = Instant::now() + Duration::from_secs(10);
    while child.try_wait().expect("wait").is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let out = child.wait_with_output().expect("output");
            panic!("router {args:?} started instead of refusing: {}", String::from_utf8_lossy(&out.stdout));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().expect("output")
}

/// A second router on the proxy port or the admin port of a running one
/// exits 2 naming the address and the flag to change, and the first one
/// keeps every request (each on a new connection, so the kernel would spread
/// them over both if they shared the port).
#[tokio::test]
async fn a_second_router_on_a_busy_port_is_refused() {
    let first = TestUpstream::start("first").await;
    let second = TestUpstream::start("second").await;
    let dir = tempfile::tempdir().expect("tempdir");
    let ready = dir.path().join("ready.json");
    let _running = KillOnDrop(
        Command::new(env!("CARGO_BIN_EXE_sluice-router"))
            .args(["--workers", "2", "--stable"])
            .arg(format!("http://{}", first.addr))
            .arg("--ready-file")
            .arg(&ready)
            .stdout(Stdio::null())
            .spawn()
            .expect("spawn router"),
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    let ready: sluice_router::Ready = loop {
        if let Ok(line) = std::fs::read_to_string(&ready) {
            break serde_json::from_str(line.trim()).expect("ready line");
        }
        assert!(Instant::now() < deadline, "no ready file");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };

    let stable = format!("http://{}", second.addr);
    for (flag, addr, words) in
        [("--listen", ready.listen, "the proxy address"), ("--admin", ready.admin, "the admin API address")]
    {
        let args: Vec<String> =
            ["--workers", "2", "--stable", &stable, flag, &addr.to_string()].map(str::to_owned).into();
        let out = run_to_exit(&args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{flag}: {stderr}");
        assert!(stderr.contains(&format!("{words} {addr} is already in use by another process")), "{stderr}");
        assert!(stderr.contains(&format!("choose another port with {flag}")), "{stderr}");
        assert!(out.stdout.is_empty(), "no ready line: {}", String::from_utf8_lossy(&out.stdout));
    }

    for _ in 0..50 {
        // A new client each time: a new connection, placed by the kernel.
        let reply = get(&client(), ready.listen, "/").await;
        assert_eq!((reply.status, reply.body.as_str()), (StatusCode::OK, "first\n"));
    }
    let stats = get(&client(), ready.admin, "/v1/stats").await;
    let stats: sluice_router::StatsView = serde_json::from_str(&stats.body).expect("stats");
    assert_eq!(stats.pools.stable.requests, 50);
    assert_eq!(stats.pools.stable.upstream, format!("http://{}", first.addr));
}

/// A child process that is killed when the test ends, passed or not.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
