//! Crash safety of the ledger file: a process appending large entries to it
//! in a loop (the real `sluice_core::ledger::append`) is killed with SIGKILL
//! at random points, again and again, and each next process appends after
//! whatever the kill left. After every kill the ledger must read (a torn
//! last line skipped, never a damaged one); at the end, with a torn tail and
//! after more appends, the real `gate` and `dora-report` binaries must
//! accept it.
//!
//! Half the kills land while a write is under way (the appender's first
//! entry is then 2 MB, and the test watches the file grow and kills at
//! once: the kernel stops a write to a regular file between pages on
//! SIGKILL, so the line is torn for real), half at a random moment (while
//! an entry is serialised, the lock taken, the file synced, or written). The appender is this test binary run again as the ignored test
//! `appender_process`.
//!
//! `SLUICE_LEDGER_CRASH_RUNS` (default 40) and `SLUICE_LEDGER_CRASH_SEED`
//! (default: from the clock, printed) make a failure reproducible.

use serde_json::json;
use sluice_core::ledger::{self, LEDGER_SCHEMA, LedgerEntry, LedgerOutcome};
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// Where the appender process appends (set only for it).
const APPENDER_LEDGER: &str = "SLUICE_TEST_APPENDER_LEDGER";
/// The number of its first entry.
const APPENDER_FIRST: &str = "SLUICE_TEST_APPENDER_FIRST";
/// Set: its first entry is 2 MB, a write long enough to be killed in.
const APPENDER_HUGE: &str = "SLUICE_TEST_APPENDER_HUGE";

/// xorshift64*: enough randomness for kill points, no dependency.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) % n.max(1)
    }
}

fn t(text: &str) -> jiff::Timestamp {
    text.parse().expect("time")
}

/// Entry `i`: every other one about 300 kB (a long reason and many
/// commits), so that a write takes long enough to be cut; outcomes in turn.
fn entry(i: u64) -> LedgerEntry {
    sized(i, false)
}

/// Entry `i`, of 2 MB when `huge`.
fn sized(i: u64, huge: bool) -> LedgerEntry {
    let outcome = [LedgerOutcome::Promoted, LedgerOutcome::RolledBack, LedgerOutcome::Abandoned, LedgerOutcome::Failed]
        [(i % 4) as usize];
    let big = i.is_multiple_of(2);
    let at = t("2024-01-01T10:00:00Z") + jiff::SignedDuration::from_mins(i as i64);
    let commits: Vec<_> =
        (0..if big { 1500 } else { 3 }).map(|k| json!({ "sha": format!("{i:020x}{k:020x}"), "time": at })).collect();
    let outcome = if huge { LedgerOutcome::Failed } else { outcome };
    let reason = (huge || outcome != LedgerOutcome::Promoted).then(|| {
        "r".repeat(if huge {
            2 << 20
        } else if big {
            150_000
        } else {
            20
        })
    });
    // From its JSON form: fields added to entries later take their defaults.
    serde_json::from_value(json!({
        "schema": LEDGER_SCHEMA, "id": format!("shop-dev-{i}"), "app": "shop", "environment": "dev",
        "version": format!("v{i}"), "commit": format!("{i:040x}"), "commits": commits, "strategy": "canary",
        "triggered_by": "octocat", "started_at": at, "finished_at": at + jiff::SignedDuration::from_secs(30),
        "outcome": outcome, "reason": reason,
    }))
    .expect("an entry")
}

/// Not a test of its own: the process `a_ledger_..._killed_...` kills. Run
/// by that test (with the ledger's path in the environment) it appends
/// until it is killed; run alone (`--ignored`) it appends 8 entries to a
/// fresh ledger and reads them back.
#[test]
#[ignore = "the appender process of the ledger crash test"]
fn appender_process() {
    if let Some(path) = std::env::var_os(APPENDER_LEDGER) {
        let first: u64 = std::env::var(APPENDER_FIRST).ok().and_then(|v| v.parse().ok()).unwrap_or(0);
        let huge = std::env::var_os(APPENDER_HUGE).is_some();
        for i in first.. {
            ledger::append(Path::new(&path), &sized(i, huge && i == first)).expect("append");
        }
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("ledger.jsonl");
    for i in 0..8 {
        ledger::append(&path, &entry(i)).expect("append");
    }
    let read = ledger::read_file(&path).expect("read");
    assert_eq!(
        read.iter().map(|e| e.id.clone()).collect::<Vec<_>>(),
        (0..8).map(|i| format!("shop-dev-{i}")).collect::<Vec<_>>()
    );
}

/// What a ledger file holds, checked as it grows: every line but the last
/// must be an entry (a kill may only ever cut the last line; a last line
/// that lacks only its newline is an entry too).
#[derive(Default)]
struct Checked {
    /// Whole lines up to this offset were checked (it only ever grows: an
    /// append removes only a torn tail after it).
    offset: usize,
    lines: usize,
    /// Entries, counting a whole last entry without its newline.
    entries: usize,
    /// Length of the torn tail, 0 if none.
    torn: usize,
}

impl Checked {
    fn update(&mut self, path: &Path) {
        use std::io::{Read, Seek, SeekFrom};
        let mut new = Vec::new();
        if let Ok(mut file) = std::fs::File::open(path) {
            let len = file.metadata().expect("metadata").len();
            assert!(len >= self.offset as u64, "the ledger lost whole lines");
            file.seek(SeekFrom::Start(self.offset as u64)).expect("seek");
            file.read_to_end(&mut new).expect("read");
        }
        let end = new.iter().rposition(|&b| b == b'\n').map_or(0, |k| k + 1);
        for line in new[..end].split_inclusive(|&b| b == b'\n') {
            self.lines += 1;
            if let Err(e) = serde_json::from_slice::<LedgerEntry>(line) {
                panic!("line {} of {} is damaged ({e}): a kill left more than a torn tail", self.lines, path.display());
            }
        }
        self.offset += end;
        let tail = &new[end..];
        let whole_tail = !tail.is_empty() && serde_json::from_slice::<LedgerEntry>(tail).is_ok();
        self.entries = self.lines + usize::from(whole_tail);
        self.torn = if whole_tail { 0 } else { tail.len() };
    }
}

fn step(name: &str, dir: &Path, args: &[&str]) -> Output {
    Command::new(crate::support::exe(name))
        .current_dir(dir)
        .args(args)
        .env_remove("GITHUB_ACTIONS")
        .env_remove("GITHUB_OUTPUT")
        .env_remove("GITHUB_STEP_SUMMARY")
        .env("CI", "true")
        .output()
        .expect("the step runs")
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn a_ledger_appended_to_while_killed_stays_readable_by_gate_and_dora_report() {
    // Its kill loop spins a core while the appender takes the other.
    let _alone = crate::support::alone();
    let runs: u64 = std::env::var("SLUICE_LEDGER_CRASH_RUNS").ok().and_then(|v| v.parse().ok()).unwrap_or(40);
    let seed: u64 = std::env::var("SLUICE_LEDGER_CRASH_SEED").ok().and_then(|v| v.parse().ok()).unwrap_or_else(|| {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(1, |d| d.as_nanos() as u64) | 1
    });
    eprintln!("ledger crash test: {runs} runs, SLUICE_LEDGER_CRASH_SEED={seed}");
    let mut rng = Rng(seed);
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("ledger.jsonl");
    let me = std::env::current_exe().expect("this test binary");
    // The appender's test name in this binary (`ledger_crash::appender_process`).
    let module = module_path!().split_once("::").map_or("", |(_, module)| module);
    let appender_test = format!("{module}::appender_process");

    let appender = |first: u64, huge: bool| {
        let mut cmd = Command::new(&me);
        cmd.args(["--exact", &appender_test, "--ignored", "--test-threads", "1", "--quiet"])
            .env(APPENDER_LEDGER, &path)
            .env(APPENDER_FIRST, first.to_string())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        if huge {
            cmd.env(APPENDER_HUGE, "1");
        }
        cmd.spawn().expect("appender starts")
    };
    let mut checked = Checked::default();
    let (mut torn_kills, mut appended_after_torn, mut full_reads) = (0u64, 0u64, 0);
    let mut run = 0u64;
    // Go on past `runs` until kills have torn lines and later processes
    // appended after them (at most 10× the runs).
    while run < runs || ((torn_kills < 3 || appended_after_torn < 2) && run < runs * 10) {
        let (entries_before, torn_before) = (checked.entries, checked.torn);
        let watched = run.is_multiple_of(2);
        let mut child = appender(run * 1000, watched);
        if watched {
            // Kill as soon as the file grows: a write is under way. Now and
            // then a little later, towards its end.
            let start_len = std::fs::metadata(&path).map_or(0, |m| m.len());
            let deadline = Instant::now() + Duration::from_secs(30);
            while Instant::now() < deadline
                && std::fs::metadata(&path).map_or(0, |m| m.len()) <= start_len
                && child.try_wait().expect("try_wait").is_none()
            {
                // Leave the appender the CPU (two cores, shared).
                std::thread::yield_now();
            }
            let spin = Instant::now() + Duration::from_micros(rng.below(8).saturating_sub(5) * 50);
            while Instant::now() < spin {}
        } else {
            std::thread::sleep(Duration::from_millis(rng.below(60)));
        }
        let _ = child.kill(); // SIGKILL on Unix
        let status = child.wait().expect("wait");
        assert_eq!(status.signal(), Some(9), "the appender ends only when killed: {status}");
        checked.update(&path);
        assert!(checked.entries >= entries_before, "a kill never loses a whole entry");
        let after_torn = torn_before > 0 && checked.entries > entries_before;
        appended_after_torn += u64::from(after_torn);
        torn_kills += u64::from(checked.torn > 0);
        // Every reader accepts what a kill leaves: a torn tail is skipped,
        // never an error (read in full where it matters: after a new tear,
        // and after an append that followed one; to stay quick).
        let changed = (checked.entries, checked.torn) != (entries_before, torn_before);
        if changed && (checked.torn > 0 || after_torn) && full_reads < 6 {
            full_reads += 1;
            let read = ledger::read_file(&path).unwrap_or_else(|e| panic!("run {run}: {e}"));
            assert_eq!(read.len(), checked.entries, "run {run}");
        }
        run += 1;
    }
    eprintln!(
        "ledger crash test: {run} kills, {torn_kills} left a torn line, {appended_after_torn} appends after a torn \
         line, {} entries",
        checked.entries
    );
    assert!(torn_kills > 0 && appended_after_torn > 0, "no kill tore a line in {run} runs: the test proved nothing");

    // Leave a torn tail for sure: kill appenders mid-write until one tears.
    let mut tries = 0;
    while checked.torn == 0 {
        tries += 1;
        assert!(tries < 200, "no kill tore a line in 200 tries");
        let mut child = appender((run + tries) * 1000, true);
        let start_len = std::fs::metadata(&path).map_or(0, |m| m.len());
        while child.try_wait().expect("try_wait").is_none()
            && std::fs::metadata(&path).map_or(0, |m| m.len()) <= start_len
        {
            std::thread::yield_now();
        }
        let _ = child.kill();
        let _ = child.wait();
        checked.update(&path);
    }
    std::fs::write(
        dir.path().join("sluice.toml"),
        "app = \"shop\"\n[ledger]\nkind = \"file\"\npath = \"ledger.jsonl\"\n\
         [defaults]\nstrategy = { kind = \"all_at_once\" }\n\
         [[environment]]\nname = \"dev\"\nrouter = { kind = \"local\", admin_url = \"http://127.0.0.1:9\" }\n\
         [[environment]]\nname = \"prd\"\nrouter = { kind = \"local\", admin_url = \"http://127.0.0.1:9\" }\n",
    )
    .expect("config");
    let whole = checked.entries;

    // dora-report over the torn tail: a warning, and the report of the
    // whole entries.
    let dora = ["--ledger", "ledger.jsonl", "--since", "all", "--all-environments", "--format", "json"];
    let out = step("dora-report", dir.path(), &dora);
    assert_eq!(out.status.code(), Some(0), "dora-report: {}", stderr(&out));
    assert!(stderr(&out).contains("ends in an incomplete line"), "{}", stderr(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON report");
    assert_eq!(report["groups"][0]["counts"]["entries"], whole as u64);

    // Then appends (the promotion gate looks for), after the torn tail.
    let mut promoted = entry(1);
    promoted.outcome = LedgerOutcome::Promoted;
    promoted.reason = None;
    (promoted.id, promoted.version, promoted.commit) = ("shop-dev-final".into(), "v2".into(), Some("abcdef1".into()));
    promoted.finished_at = jiff::Timestamp::now() - jiff::SignedDuration::from_hours(48);
    promoted.started_at = promoted.finished_at - jiff::SignedDuration::from_mins(5);
    ledger::append(&path, &promoted).expect("append after a torn tail");
    ledger::append(&path, &entry(999_999)).expect("another append");
    checked.update(&path);
    assert_eq!(
        (checked.entries, checked.torn),
        (whole + 2, 0),
        "the torn tail was removed, the entries are whole lines"
    );
    assert!(std::fs::read(&path).expect("read").ends_with(b"\n"));

    // gate into prd reads dev's history from this ledger: v2 was promoted.
    let gate =
        ["--config", "sluice.toml", "-e", "prd", "--record", "prd.json", "--release", "v2", "--commit", "abcdef1"];
    let out = step("gate", dir.path(), &gate);
    let said = format!("{}{}", String::from_utf8_lossy(&out.stdout), stderr(&out));
    assert_eq!(out.status.code(), Some(0), "gate: {said}");
    assert!(said.contains("v2 was promoted in dev"), "{said}");

    let out = step("dora-report", dir.path(), &dora);
    assert_eq!(out.status.code(), Some(0), "dora-report: {}", stderr(&out));
    assert!(!stderr(&out).contains("incomplete line"), "{}", stderr(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON report");
    let entries = ledger::read_file(&path).expect("read");
    let count = |o: LedgerOutcome| entries.iter().filter(|e| e.outcome == o).count() as u64;
    let c = &report["groups"][0]["counts"];
    assert_eq!(c["entries"], entries.len() as u64);
    assert_eq!(c["deployments"], count(LedgerOutcome::Promoted));
    assert_eq!(c["abandoned"], count(LedgerOutcome::Abandoned));
    assert_eq!(c["attempts"], entries.len() as u64 - count(LedgerOutcome::Abandoned));
}
