//! docs/testing.md's "A canary by hand" runs as written: its servers block
//! (the demo app in three releases, the embedded router, the load
//! generator), its `sluice.toml` and its commands, on free ports instead of
//! the page's 8080-8083 and 9001 and with nothing else changed. Each
//! command's exit code is the one its comment says (`# exit N`, else 0),
//! and what the page says happened did: v2 is the router's stable pool,
//! v3's canary is back at 0%, its record rolled back.
//!
//! Never edits a page; stops every process it started (their process
//! group).

use super::cli::binary;
use super::root;
use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

/// The page's section, and its blocks in order: servers, config, commands.
fn blocks() -> (String, String, String) {
    let page = std::fs::read_to_string(root().join("docs/testing.md")).expect("docs/testing.md");
    let start = page.find("\n### A canary by hand\n").expect("docs/testing.md has \"### A canary by hand\"");
    let section = &page[start + 1..];
    let section = &section[..section.find("\n## ").unwrap_or(section.len())];
    let mut blocks = section.split("\n```").skip(1).step_by(2).map(|b| {
        let (lang, text) = b.split_once('\n').unwrap_or((b, ""));
        (lang.split_whitespace().next().unwrap_or_default().to_owned(), text.to_owned())
    });
    let mut next = |lang: &str| {
        let (got, text) = blocks.next().unwrap_or_else(|| panic!("the section has no {lang} block where expected"));
        assert_eq!(got, lang, "the section's blocks are sh, toml, sh");
        text
    };
    let servers = next("sh");
    let config = next("toml");
    let commands = next("sh");
    (servers, config, commands)
}

/// The page's ports, each replaced by a free one.
fn free_ports(text: &str) -> Vec<(String, String)> {
    ["8080", "8081", "8082", "8083", "9001"]
        .iter()
        .map(|port| {
            assert!(text.contains(&format!("127.0.0.1:{port}")), "the section no longer uses port {port}");
            let free = TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("a free port").port();
            (format!("127.0.0.1:{port}"), format!("127.0.0.1:{free}"))
        })
        .collect()
}

fn replace_all(text: &str, ports: &[(String, String)]) -> String {
    ports.iter().fold(text.to_owned(), |t, (from, to)| t.replace(from, to))
}

/// The servers block, run by bash in a process group of its own.
struct Servers(Child);

impl Drop for Servers {
    fn drop(&mut self) {
        let _ = Command::new("kill").args(["-TERM", "--", &format!("-{}", self.0.id())]).status();
        let _ = self.0.wait();
    }
}

/// Bash with only the workspace's binaries and the system's on PATH.
fn bash(script: &str, dir: &Path) -> Command {
    let bin = binary("sluice");
    let bin_dir = bin.parent().expect("target/debug").display().to_string();
    let mut cmd = Command::new("bash");
    cmd.args(["-euo", "pipefail", "-c", script])
        .current_dir(dir)
        .env_clear()
        .env("PATH", format!("{bin_dir}:/usr/local/bin:/usr/bin:/bin"))
        .env("HOME", dir);
    cmd
}

fn state(admin: &str) -> Option<serde_json::Value> {
    let out = Command::new("curl").args(["-fsS", &format!("http://{admin}/v1/state")]).output().ok()?;
    serde_json::from_slice(&out.stdout).ok()
}

#[test]
fn the_canary_by_hand_runs_as_written() {
    let (servers, config, commands) = blocks();
    let ports = free_ports(&format!("{servers}{config}{commands}"));
    let admin = ports.iter().find(|(from, _)| from.ends_with(":9001")).map(|(_, to)| to.clone()).expect("9001");
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("sluice.toml"), replace_all(&config, &ports)).expect("write the config");

    let mut script = bash(&format!("{}\nwait\n", replace_all(&servers, &ports)), dir.path());
    script.process_group(0).stdout(std::process::Stdio::null()).stderr(std::process::Stdio::null());
    let _servers = Servers(script.spawn().expect("bash starts the servers"));
    // Up when the router answers and the load generator's requests reach it;
    // far from any limit (these start in milliseconds).
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let served = Command::new("curl")
            .args(["-fsS", &format!("http://{admin}/v1/stats")])
            .output()
            .ok()
            .and_then(|o| serde_json::from_slice::<serde_json::Value>(&o.stdout).ok())
            .and_then(|v| v["pools"]["stable"]["requests"].as_u64())
            .unwrap_or(0);
        if served > 0 {
            break;
        }
        assert!(Instant::now() < deadline, "the servers block did not bring the router up with load in 60 s");
        std::thread::sleep(Duration::from_millis(200));
    }

    for line in commands.lines().filter(|l| !l.trim().is_empty()) {
        let (command, comment) = line.split_once(" #").unwrap_or((line, ""));
        let expected = comment
            .trim()
            .strip_prefix("exit ")
            .and_then(|rest| rest.split(|c: char| !c.is_ascii_digit()).next())
            .and_then(|code| code.parse::<i32>().ok())
            .unwrap_or(0);
        let command = replace_all(command.trim(), &ports);
        let out = bash(&command, dir.path()).output().expect("bash runs");
        assert_eq!(
            out.status.code(),
            Some(expected),
            "`{command}` exits {:?}, the page says {expected}:\n{}{}",
            out.status.code(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    let v2 = ports.iter().find(|(from, _)| from.ends_with(":8082")).map(|(_, to)| format!("http://{to}"));
    let state = state(&admin).expect("the router answers");
    assert_eq!(state["stable"]["upstream"].as_str(), v2.as_deref(), "v2 is the stable pool: {state}");
    assert_eq!(state["candidate_weight"], 0, "v3's canary is back at 0%: {state}");
    let record: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("v3.json")).expect("v3.json")).expect("a JSON record");
    assert_eq!(record["status"], "rolled_back", "v3's record");
}
