//! The ledger branch: files sluice keeps in the repository on a branch of
//! their own ([`BRANCH`], an orphan: it shares no history with the code),
//! for the deployment journal ([`super::journal`]) and the environment
//! lease ([`super::lease`]).
//!
//! Written one file at a time through the contents API, whose `sha`
//! precondition makes each write a compare-and-swap: "`sha`: Required if you
//! are updating a file. The blob SHA of the file being replaced"; a stale
//! one is refused with 409 Conflict and changes nothing, and an existing
//! file written without one is refused with 422
//! (<https://docs.github.com/en/rest/repos/contents#create-or-update-file-contents>).
//! Both come back to the caller as [`Conflict`]: it reads again and decides
//! again. Every accepted write is one commit on the branch.
//!
//! Read through the contents API (a file and its blob `sha`), the trees API
//! (every file of the branch and its blob `sha` in one call,
//! <https://docs.github.com/en/rest/git/trees#get-a-tree>) and the blobs API
//! (up to 100 MB, <https://docs.github.com/en/rest/git/blobs#get-a-blob>). A
//! blob never changes, so it is read once and then answered from the ETag
//! cache without a request.
//!
//! It never writes anywhere but [`BRANCH`], and never force-moves it.

use super::client::{GitHub, Refused};
use crate::ProviderError;
use serde::Deserialize;
use serde_json::json;

/// The branch sluice keeps its journal and leases on.
pub const BRANCH: &str = "sluice-ledger";

/// What the branch is, for people who find it (its first commit).
const README: &str = "# sluice ledger\n\n\
This branch is written by sluice (https://github.com/sluice-dev/sluice), one commit per change: \
`ledger/APP/ENVIRONMENT/YYYY-MM.jsonl` holds a JSON line per deployment that ended (the ledger \
`dora-report` reads), `lease/APP/ENVIRONMENT.json` the environment lease (one deployment at a time). \
Do not edit it by hand while deployments run; it shares no history with the code.\n";

/// One file read from the branch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct File {
    /// Its blob SHA: the precondition of the next write.
    pub sha: String,
    pub text: String,
}

/// A write refused because the file is no longer what the writer read (or
/// it was created meanwhile): read again and decide again.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Conflict(pub Refused);

/// One file of the branch as the trees API lists it.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct TreeEntry {
    pub path: String,
    /// `blob` or `tree`.
    #[serde(rename = "type")]
    pub kind: String,
    pub sha: String,
}

#[derive(Deserialize)]
struct Tree {
    tree: Vec<TreeEntry>,
    #[serde(default)]
    truncated: bool,
}

#[derive(Deserialize)]
struct Contents {
    sha: String,
    #[serde(default)]
    content: String,
    #[serde(default)]
    encoding: String,
}

#[derive(Deserialize)]
struct Blob {
    content: String,
}

#[derive(Deserialize)]
struct Written {
    content: WrittenFile,
}

#[derive(Deserialize)]
struct WrittenFile {
    sha: String,
}

#[derive(Deserialize)]
struct Sha {
    sha: String,
}

/// The branch of one repository.
#[derive(Clone, Debug)]
pub struct Branch {
    pub github: GitHub,
}

impl Branch {
    pub fn new(github: GitHub) -> Branch {
        Branch { github }
    }

    /// The file at `path`, or `None` when it (or the branch) does not exist.
    pub async fn read(&self, path: &str) -> Result<Option<File>, ProviderError> {
        let operation = format!("read {path} on branch {BRANCH}");
        let found: Result<Contents, Refused> = self
            .github
            .get_if(&operation, "contents: read", &format!("/contents/{}?ref={BRANCH}", encode_path(path)), &[404])
            .await?;
        let Ok(contents) = found else {
            self.github.remember(path, "", "");
            return Ok(None);
        };
        // Over 1 MB the contents API leaves the content out ("encoding":
        // "none"); the blobs API serves it.
        let text = if contents.encoding == "none" {
            self.blob(&contents.sha).await?
        } else {
            self.decode(&operation, &contents.content)?
        };
        self.github.remember(path, &contents.sha, &text);
        Ok(Some(File { sha: contents.sha, text }))
    }

    /// The file at `path` as this client last read or wrote it (`Some(None)`:
    /// it was not there), without a request: a compare-and-swap may try its
    /// `sha` first (refused when stale; then [`Branch::read`]).
    pub fn known(&self, path: &str) -> Option<Option<File>> {
        self.github.known(path).map(|(sha, text)| (!sha.is_empty()).then_some(File { sha, text }))
    }

    /// Writes `text` to `path` if the file is still at `sha` (`None`: if it
    /// does not exist yet); creates the branch the first time. Returns the
    /// new blob SHA, or [`Conflict`] when someone wrote first.
    pub async fn write(
        &self,
        path: &str,
        text: &str,
        sha: Option<&str>,
        message: &str,
    ) -> Result<Result<String, Conflict>, ProviderError> {
        let operation = format!("write {path} on branch {BRANCH}");
        let mut body = json!({ "message": message, "content": encode_base64(text.as_bytes()), "branch": BRANCH });
        if let Some(sha) = sha {
            body["sha"] = json!(sha);
        }
        let route = format!("/contents/{}", encode_path(path));
        let mut created = false;
        loop {
            let put: Result<Written, Refused> =
                self.github.put_if(&operation, "contents: write", &route, &body, &[404, 409, 422]).await?;
            match put {
                Ok(written) => {
                    self.github.remember(path, &written.content.sha, text);
                    return Ok(Ok(written.content.sha));
                }
                Err(refused) if refused.status == 409 => return Ok(Err(Conflict(refused))),
                // An existing file written without `sha`: created meanwhile.
                Err(refused) if refused.status == 422 && refused.message.contains("sha") => {
                    return Ok(Err(Conflict(refused)));
                }
                // The branch does not exist yet: made once, then written.
                Err(refused) if refused.status == 404 && !created => created = self.create().await?,
                Err(refused) => {
                    return Err(ProviderError {
                        provider: "github",
                        operation,
                        message: format!(
                            "GitHub answered {}: {} (the token needs `contents: write` on {} for sluice's ledger branch {BRANCH})",
                            refused.status,
                            refused.message,
                            self.github.repository()
                        ),
                        transient: false,
                        attempts: 1,
                    });
                }
            }
        }
    }

    /// Every file of the branch, or `None` when there is no branch yet.
    pub async fn files(&self) -> Result<Option<Vec<TreeEntry>>, ProviderError> {
        let operation = format!("list the files of branch {BRANCH}");
        let tree: Result<Tree, Refused> = self
            .github
            .get_if(&operation, "contents: read", &format!("/git/trees/{BRANCH}?recursive=1"), &[404])
            .await?;
        let Ok(tree) = tree else { return Ok(None) };
        if tree.truncated {
            sluice_core::gha::warning(&format!(
                "GitHub truncated the file list of branch {BRANCH} (over 100,000 files or 7 MB); some history is not read"
            ));
        }
        Ok(Some(tree.tree.into_iter().filter(|e| e.kind == "blob").collect()))
    }

    /// The text of a blob (a file's content by its SHA); from the cache when
    /// it was read before.
    pub async fn blob(&self, sha: &str) -> Result<String, ProviderError> {
        let operation = format!("read blob {sha} of branch {BRANCH}");
        let blob: Blob = self.github.get_immutable(&operation, "contents: read", &format!("/git/blobs/{sha}")).await?;
        self.decode(&operation, &blob.content)
    }

    fn decode(&self, operation: &str, content: &str) -> Result<String, ProviderError> {
        decode_base64(content).and_then(|bytes| String::from_utf8(bytes).ok()).ok_or_else(|| ProviderError {
            provider: "github",
            operation: operation.to_owned(),
            message: "the file is not base64-encoded UTF-8 text".into(),
            transient: false,
            attempts: 1,
        })
    }

    /// Makes the branch: an orphan commit with a README and the journal's
    /// start marker (Git database API: a tree, a commit without parents, a
    /// reference). Returns whether the branch exists now (another run may
    /// have made it first: 422 `Reference already exists`).
    async fn create(&self) -> Result<bool, ProviderError> {
        let operation = format!("create branch {BRANCH}");
        let start = super::journal::start_marker(&self.github, jiff::Timestamp::now()).await?;
        let start = serde_json::to_string_pretty(&start).unwrap_or_default() + "\n";
        let file =
            |path: &str, content: &str| json!({ "path": path, "mode": "100644", "type": "blob", "content": content });
        let tree: Sha = self
            .github
            .post(
                &operation,
                "contents: write",
                "/git/trees",
                &json!({ "tree": [file("README.md", README), file(super::journal::START, &start)] }),
                super::client::Resend::Safe,
            )
            .await?;
        let commit: Sha = self
            .github
            .post(
                &operation,
                "contents: write",
                "/git/commits",
                &json!({ "message": "sluice ledger", "tree": tree.sha, "parents": [] }),
                super::client::Resend::Safe,
            )
            .await?;
        let made: Result<serde_json::Value, Refused> = self
            .github
            .post_if(
                &operation,
                "contents: write",
                "/git/refs",
                &json!({ "ref": format!("refs/heads/{BRANCH}"), "sha": commit.sha }),
                &[422],
            )
            .await?;
        match made {
            Ok(_) => Ok(true),
            Err(refused) if refused.message.contains("already exists") => Ok(true),
            Err(refused) => Err(ProviderError {
                provider: "github",
                operation,
                message: format!("GitHub answered {}: {}", refused.status, refused.message),
                transient: false,
                attempts: 1,
            }),
        }
    }
}

/// Percent-encodes each segment of a path, keeping its slashes.
pub fn encode_path(path: &str) -> String {
    path.split('/').map(super::client::encode).collect::<Vec<_>>().join("/")
}

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Standard base64 with padding (what the contents API takes).
pub fn encode_base64(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let n = chunk.iter().enumerate().fold(0u32, |n, (i, b)| n | (u32::from(*b) << (16 - 8 * i)));
        for i in 0..4 {
            out.push(if i <= chunk.len() { ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char } else { '=' });
        }
    }
    out
}

/// Standard base64, line breaks ignored (GitHub wraps it at 60 characters);
/// `None` when it is not base64.
pub fn decode_base64(text: &str) -> Option<Vec<u8>> {
    let digits: Vec<u8> = text.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
    if !digits.len().is_multiple_of(4) {
        return None;
    }
    let mut out = Vec::with_capacity(digits.len() / 4 * 3);
    for chunk in digits.chunks(4) {
        let mut n = 0u32;
        let mut pad = 0;
        for (i, &c) in chunk.iter().enumerate() {
            let v = match c {
                b'=' if i >= 2 => {
                    pad += 1;
                    0
                }
                _ if pad > 0 => return None,
                _ => u32::try_from(ALPHABET.iter().position(|&a| a == c)?).ok()?,
            };
            n = (n << 6) | v;
        }
        let bytes = n.to_be_bytes();
        out.extend_from_slice(&bytes[1..4 - pad]);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_round_trips_and_reads_wrapped_lines() {
        for text in ["", "a", "ab", "abc", "abcd", "é ü ✓", &"x".repeat(200)] {
            assert_eq!(decode_base64(&encode_base64(text.as_bytes())).as_deref(), Some(text.as_bytes()));
        }
        assert_eq!(encode_base64(b"hello"), "aGVsbG8=");
        assert_eq!(decode_base64("aGVs\nbG8=\n").as_deref(), Some(&b"hello"[..]));
        assert_eq!(decode_base64("aGVsbG8"), None);
        assert_eq!(decode_base64("a=Vs"), None);
        assert_eq!(decode_base64("aGV*bG8="), None);
    }

    #[test]
    fn paths_keep_their_slashes() {
        assert_eq!(encode_path("lease/shop/dev.json"), "lease/shop/dev.json");
        assert_eq!(encode_path("a b/c"), "a%20b/c");
    }
}
