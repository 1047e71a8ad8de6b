//! The local git checkout: which commits a deployment ships, for the change
//! lead time of `dora-report`.
//!
//! Read-only: runs `git log` and `git cat-file` in the checkout; never
//! fetches, never writes. When the answer is partial (no checkout, a shallow
//! clone, a first deployment, a git that does not answer) it says so in a
//! note instead of guessing.
//!
//! Every git command runs as a child process under a timeout
//! ([`timeouts::GIT`]) and is killed when the timeout passes; it is awaited
//! on the async runtime, never blocking it.

use crate::timeouts;
use jiff::Timestamp;
use sluice_core::ledger::CommitInfo;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;
use tokio::process::Command;

/// At most this many commits are listed for one deployment.
pub const MAX_COMMITS: usize = 10_000;

/// The commits a deployment brings, with a note when the list is partial.
#[derive(Debug, Default, PartialEq)]
pub struct Shipped {
    pub commits: Vec<CommitInfo>,
    pub note: Option<String>,
}

/// How git is run: the program (`git` on PATH) and how long one command may
/// take before it is killed.
#[derive(Clone, Debug)]
pub struct Git {
    pub program: PathBuf,
    pub timeout: Duration,
}

impl Default for Git {
    fn default() -> Git {
        Git { program: PathBuf::from("git"), timeout: timeouts::GIT }
    }
}

/// The commits reachable from `current` but not from `previous` (the commit
/// of the previous promoted deployment of the same app and environment):
/// what `current` brings. Without `previous`, or when `previous` is not in
/// the checkout, only `current` itself is listed, with a note. `git` on
/// PATH, under [`timeouts::GIT`].
pub async fn shipped_commits(repo: &Path, previous: Option<&str>, current: &str) -> Shipped {
    Git::default().shipped_commits(repo, previous, current).await
}

impl Git {
    /// [`shipped_commits`] with this git.
    pub async fn shipped_commits(&self, repo: &Path, previous: Option<&str>, current: &str) -> Shipped {
        let partial = |note: String| Shipped { commits: Vec::new(), note: Some(note) };
        let unanswered = |e: String| partial(format!("{e}; no commits recorded for the lead time"));
        match self.has_commit(repo, current).await {
            Err(e) => return unanswered(e),
            Ok(false) => {
                return partial(format!(
                    "commit {current} is not in the git checkout at {}: no commits recorded for the lead time \
                     (check out the repository with its history, e.g. actions/checkout with fetch-depth: 0)",
                    repo.display()
                ));
            }
            Ok(true) => {}
        }
        let previous_found = match previous {
            Some(previous) if previous == current => return Shipped::default(),
            Some(previous) => match self.has_commit(repo, previous).await {
                Err(e) => return unanswered(e),
                Ok(found) => Some((previous, found)),
            },
            None => None,
        };
        let (range, note) = match previous_found {
            Some((previous, true)) => (vec![format!("{previous}..{current}")], None),
            Some((previous, false)) => (
                vec!["-1".to_owned(), current.to_owned()],
                Some(format!(
                    "the previously deployed commit {previous} is not in the checkout (a shallow clone? use \
                     fetch-depth: 0): only the deployed commit is recorded for the lead time"
                )),
            ),
            None => (
                vec!["-1".to_owned(), current.to_owned()],
                Some("first promotion here: only the deployed commit is recorded for the lead time".to_owned()),
            ),
        };
        let mut args = vec!["log".to_owned(), "--format=%H %ct %P".to_owned(), format!("--max-count={MAX_COMMITS}")];
        args.extend(range);
        match self.run(repo, &args).await {
            Ok(Ok(text)) => Shipped { commits: parse_log(&text), note },
            Ok(Err(e)) | Err(e) => {
                partial(format!("git log failed in {}: {e}; no commits recorded for the lead time", repo.display()))
            }
        }
    }

    /// Whether `sha` names a commit in the checkout; an error when git could
    /// not be asked (not installed, or no answer in time).
    async fn has_commit(&self, repo: &Path, sha: &str) -> Result<bool, String> {
        if !sha.chars().all(|c| c.is_ascii_hexdigit()) {
            return Ok(false);
        }
        let args = ["cat-file".to_owned(), "-e".to_owned(), format!("{sha}^{{commit}}")];
        Ok(self.run(repo, &args).await?.is_ok())
    }

    /// Runs git in `repo`: `Err` when it could not be run or did not finish
    /// in time (then it is killed), `Ok(Err(stderr))` when it failed,
    /// `Ok(Ok(stdout))` when it succeeded.
    async fn run(&self, repo: &Path, args: &[String]) -> Result<Result<String, String>, String> {
        let what = format!("git {}", args.first().map_or("", String::as_str));
        let child = Command::new(&self.program)
            .arg("-C")
            .arg(repo)
            .args(args)
            .env("GIT_TERMINAL_PROMPT", "0")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            // Dropped on the timeout below: killed, not left running.
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| format!("cannot run {}: {e}", self.program.display()))?;
        let out = match tokio::time::timeout(self.timeout, child.wait_with_output()).await {
            Ok(out) => out.map_err(|e| format!("{what}: {e}"))?,
            Err(_) => {
                return Err(format!(
                    "{what} in {} did not finish within {} and was stopped (is the repository locked, or on a slow file system?)",
                    repo.display(),
                    humantime::format_duration(self.timeout)
                ));
            }
        };
        if out.status.success() {
            Ok(Ok(String::from_utf8_lossy(&out.stdout).into_owned()))
        } else {
            Ok(Err(String::from_utf8_lossy(&out.stderr).trim().to_owned()))
        }
    }
}

/// Lines of `%H %ct %P`: SHA, committer time (Unix seconds), parents.
fn parse_log(text: &str) -> Vec<CommitInfo> {
    text.lines()
        .filter_map(|line| {
            let mut parts = line.split_whitespace();
            let sha = parts.next()?;
            let time = Timestamp::from_second(parts.next()?.parse().ok()?).ok()?;
            let parents = parts.count();
            Some(CommitInfo { sha: sha.to_owned(), time, merge: parents > 1 })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A throwaway repository with commits at fixed times.
    struct Repo(tempfile::TempDir);

    impl Repo {
        fn new() -> Repo {
            let repo = Repo(tempfile::tempdir().expect("tempdir"));
            repo.run(&["init", "-q", "-b", "main"], None);
            repo
        }

        /// Runs git with a fixed identity and, when given, commit time.
        fn run(&self, args: &[&str], at: Option<i64>) -> String {
            let mut cmd = std::process::Command::new("git");
            cmd.arg("-C").arg(self.0.path()).args(args);
            for who in ["AUTHOR", "COMMITTER"] {
                cmd.env(format!("GIT_{who}_NAME"), "t").env(format!("GIT_{who}_EMAIL"), "t@example.com");
                if let Some(at) = at {
                    cmd.env(format!("GIT_{who}_DATE"), format!("@{at} +0000"));
                }
            }
            let out = cmd.output().expect("git");
            assert!(out.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&out.stderr));
            String::from_utf8_lossy(&out.stdout).trim().to_owned()
        }

        fn commit(&self, at: i64) -> String {
            self.run(&["commit", "-q", "--allow-empty", "-m", "c"], Some(at));
            self.run(&["rev-parse", "HEAD"], None)
        }
    }

    #[tokio::test]
    async fn lists_the_commits_between_two_deployments_with_their_times() {
        let repo = Repo::new();
        let first = repo.commit(1_000);
        let a = repo.commit(2_000);
        let b = repo.commit(3_000);
        let shipped = shipped_commits(repo.0.path(), Some(&first), &b).await;
        assert_eq!(shipped.note, None);
        let got: Vec<(&str, i64, bool)> =
            shipped.commits.iter().map(|c| (c.sha.as_str(), c.time.as_second(), c.merge)).collect();
        assert_eq!(got, vec![(b.as_str(), 3_000, false), (a.as_str(), 2_000, false)]);
    }

    #[tokio::test]
    async fn merge_commits_are_marked() {
        let repo = Repo::new();
        let base = repo.commit(1_000);
        repo.run(&["checkout", "-q", "-b", "topic"], None);
        let topic = repo.commit(2_000);
        repo.run(&["checkout", "-q", "main"], None);
        repo.commit(2_500);
        repo.run(&["merge", "-q", "--no-ff", "-m", "merge", "topic"], Some(3_000));
        let head = repo.run(&["rev-parse", "HEAD"], None);
        let shipped = shipped_commits(repo.0.path(), Some(&base), &head).await;
        assert_eq!(shipped.commits.len(), 3);
        assert!(shipped.commits.iter().any(|c| c.sha == head && c.merge));
        assert!(shipped.commits.iter().any(|c| c.sha == topic && !c.merge));
    }

    #[tokio::test]
    async fn partial_answers_say_why() {
        let repo = Repo::new();
        let only = repo.commit(1_000);
        let first = shipped_commits(repo.0.path(), None, &only).await;
        assert_eq!(first.commits.len(), 1);
        assert!(first.note.as_deref().is_some_and(|n| n.contains("first promotion")));

        let shallow = shipped_commits(repo.0.path(), Some("abcdef1234567"), &only).await;
        assert_eq!(shallow.commits.len(), 1);
        assert!(shallow.note.as_deref().is_some_and(|n| n.contains("fetch-depth: 0")), "{shallow:?}");

        let missing = shipped_commits(repo.0.path(), None, "abcdef1234567").await;
        assert!(missing.commits.is_empty());
        assert!(missing.note.as_deref().is_some_and(|n| n.contains("not in the git checkout")), "{missing:?}");

        let redeploy = shipped_commits(repo.0.path(), Some(&only), &only).await;
        assert_eq!(redeploy, Shipped::default());

        let elsewhere = tempfile::tempdir().expect("tempdir");
        let none = shipped_commits(elsewhere.path(), None, &only).await;
        assert!(none.commits.is_empty() && none.note.is_some());
    }

    /// A git that never answers (a fake one that sleeps, as a git waiting on
    /// a lock or a hung network file system would) is killed when the
    /// timeout passes and the note says so; meanwhile the runtime (one
    /// thread here) keeps serving other tasks.
    #[cfg(unix)]
    #[tokio::test]
    async fn a_hung_git_is_stopped_and_reported_without_blocking_the_runtime() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("tempdir");
        let pid_file = dir.path().join("pid");
        let fake = dir.path().join("git");
        std::fs::write(&fake, format!("#!/bin/sh\necho $$ > '{}'\nexec sleep 600\n", pid_file.display()))
            .expect("fake git");
        std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        let git = Git { program: fake, timeout: Duration::from_secs(2) };

        let ticks = std::sync::Arc::new(std::sync::atomic::AtomicU32::new(0));
        let ticker = tokio::spawn({
            let ticks = ticks.clone();
            async move {
                loop {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    ticks.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
            }
        });
        let started = std::time::Instant::now();
        let shipped = git.shipped_commits(dir.path(), None, "abcdef1234567").await;
        let took = started.elapsed();
        ticker.abort();

        // The fake would sleep ten minutes; a minute is far above the 2 s
        // timeout even on a loaded machine.
        assert!(took < Duration::from_secs(60), "waited {took:?} for a hung git");
        assert!(shipped.commits.is_empty());
        let note = shipped.note.expect("a note");
        assert!(note.contains("git cat-file") && note.contains("did not finish within 2s"), "{note}");
        assert!(ticks.load(std::sync::atomic::Ordering::Relaxed) > 0, "the runtime was blocked while git ran");

        // The child was killed: gone, or a zombie waiting to be reaped.
        let pid = std::fs::read_to_string(&pid_file).expect("the fake git started");
        let stat = format!("/proc/{}/stat", pid.trim());
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            let state = std::fs::read_to_string(&stat).ok();
            let alive =
                state.as_deref().is_some_and(|s| s.rsplit(") ").next().is_some_and(|rest| !rest.starts_with('Z')));
            if !alive {
                break;
            }
            assert!(std::time::Instant::now() < deadline, "git {} still runs: {state:?}", pid.trim());
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}
