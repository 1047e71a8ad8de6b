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
