//! The local git checkout: which commits a deployment ships, for the change
//! lead time of `dora-report`.
//!
//! Read-only: runs `git log` and `git cat-file` in the checkout; never
//! fetches, never writes. When the answer is partial (no checkout, a shallow
//! clone, a first deployment) it says so in a note instead of guessing.

use jiff::Timestamp;
use sluice_core::ledger::CommitInfo;
use std::path::Path;
use std::process::Command;

/// At most this many commits are listed for one deployment.
pub const MAX_COMMITS: usize = 10_000;

/// The commits a deployment brings, with a note when the list is partial.
#[derive(Debug, Default, PartialEq)]
pub struct Shipped {
    pub commits: Vec<CommitInfo>,
    pub note: Option<String>,
}

/// The commits reachable from `current` but not from `previous` (the commit
/// of the previous promoted deployment of the same app and environment):
/// what `current` brings. Without `previous`, or when `previous` is not in
/// the checkout, only `current` itself is listed, with a note.
pub fn shipped_commits(repo: &Path, previous: Option<&str>, current: &str) -> Shipped {
    let partial = |note: String| Shipped { commits: Vec::new(), note: Some(note) };
    if !has_commit(repo, current) {
        return partial(format!(
            "commit {current} is not in the git checkout at {}: no commits recorded for the lead time \
             (check out the repository with its history, e.g. actions/checkout with fetch-depth: 0)",
            repo.display()
        ));
    }
    let (range, note) = match previous {
        Some(previous) if previous == current => return Shipped::default(),
        Some(previous) if has_commit(repo, previous) => (vec![format!("{previous}..{current}")], None),
        Some(previous) => (
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
    match git(repo, &args) {
        Ok(text) => Shipped { commits: parse_log(&text), note },
        Err(e) => partial(format!("git log failed in {}: {e}; no commits recorded for the lead time", repo.display())),
    }
}

fn has_commit(repo: &Path, sha: &str) -> bool {
    sha.chars().all(|c| c.is_ascii_hexdigit())
        && git(repo, &["cat-file".to_owned(), "-e".to_owned(), format!("{sha}^{{commit}}")]).is_ok()
}

fn git(repo: &Path, args: &[String]) -> Result<String, String> {
    let out = Command::new("git")
        .arg("-C")
        .arg(repo)
        .args(args)
        .env("GIT_TERMINAL_PROMPT", "0")
        .output()
        .map_err(|e| format!("cannot run git: {e}"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).trim().to_owned())
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
            let mut cmd = Command::new("git");
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

    #[test]
    fn lists_the_commits_between_two_deployments_with_their_times() {
        let repo = Repo::new();
        let first = repo.commit(1_000);
        let a = repo.commit(2_000);
        let b = repo.commit(3_000);
        let shipped = shipped_commits(repo.0.path(), Some(&first), &b);
        assert_eq!(shipped.note, None);
        let got: Vec<(&str, i64, bool)> =
            shipped.commits.iter().map(|c| (c.sha.as_str(), c.time.as_second(), c.merge)).collect();
        assert_eq!(got, vec![(b.as_str(), 3_000, false), (a.as_str(), 2_000, false)]);
    }

    #[test]
    fn merge_commits_are_marked() {
        let repo = Repo::new();
        let base = repo.commit(1_000);
        repo.run(&["checkout", "-q", "-b", "topic"], None);
        let topic = repo.commit(2_000);
        repo.run(&["checkout", "-q", "main"], None);
        repo.commit(2_500);
        repo.run(&["merge", "-q", "--no-ff", "-m", "merge", "topic"], Some(3_000));
        let head = repo.run(&["rev-parse", "HEAD"], None);
        let shipped = shipped_commits(repo.0.path(), Some(&base), &head);
        assert_eq!(shipped.commits.len(), 3);
        assert!(shipped.commits.iter().any(|c| c.sha == head && c.merge));
        assert!(shipped.commits.iter().any(|c| c.sha == topic && !c.merge));
    }

    #[test]
    fn partial_answers_say_why() {
        let repo = Repo::new();
        let only = repo.commit(1_000);
        let first = shipped_commits(repo.0.path(), None, &only);
        assert_eq!(first.commits.len(), 1);
        assert!(first.note.as_deref().is_some_and(|n| n.contains("first promotion")));

        let shallow = shipped_commits(repo.0.path(), Some("abcdef1234567"), &only);
        assert_eq!(shallow.commits.len(), 1);
        assert!(shallow.note.as_deref().is_some_and(|n| n.contains("fetch-depth: 0")), "{shallow:?}");

        let missing = shipped_commits(repo.0.path(), None, "abcdef1234567");
        assert!(missing.commits.is_empty());
        assert!(missing.note.as_deref().is_some_and(|n| n.contains("not in the git checkout")), "{missing:?}");

        let redeploy = shipped_commits(repo.0.path(), Some(&only), &only);
        assert_eq!(redeploy, Shipped::default());

        let elsewhere = tempfile::tempdir().expect("tempdir");
        let none = shipped_commits(elsewhere.path(), None, &only);
        assert!(none.commits.is_empty() && none.note.is_some());
    }
}
