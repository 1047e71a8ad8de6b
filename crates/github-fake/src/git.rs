//! The fake's Git data: branches of files, served by the endpoints GitHub
//! documents for them, as far as sluice's ledger branch and environment
//! lease use them.
//!
//! - Repository contents, <https://docs.github.com/en/rest/repos/contents>:
//!   `GET /repos/{o}/{r}/contents/{path}?ref=` (a file: base64 `content`
//!   wrapped at 60 characters, and its blob `sha`; a directory: its
//!   entries; a file over 1 MB: empty `content` with `encoding: "none"`, to
//!   be read through the blobs endpoint; a missing path: 404 `Not Found`; a
//!   missing ref: 404 `No commit found for the ref …`), and `PUT
//!   /repos/{o}/{r}/contents/{path}` (`message`, base64 `content`, `sha`
//!   "required if you are updating a file", `branch`): 201 created, 200
//!   updated; a `sha` that is not the file's current blob is refused with
//!   409 `… does not match …` and changes nothing; an existing file without
//!   `sha`: 422 `"sha" wasn't supplied`; a branch that does not exist: 404.
//!   Every accepted write is one new commit on the branch, so writes to one
//!   branch are serialised as GitHub serialises ref updates.
//! - Git database, <https://docs.github.com/en/rest/git>: `GET
//!   /git/ref/heads/{branch}` (404 when absent), `POST /git/refs` (422
//!   `Reference already exists`), `POST /git/trees` (entries with inline
//!   `content`), `POST /git/commits` (`parents: []` for an orphan), `GET
//!   /git/trees/{sha or branch}?recursive=1`, `GET /git/blobs/{sha}` (base64).
//!
//! Object ids stand in for Git's SHA-1s: 40 hex digits, a function of the
//! content, so an unchanged file keeps its `sha` as on GitHub. Nothing here
//! is shared with the fake's other endpoints except the request counting.

use super::{Answer, Fake, State, params};
use hyper::StatusCode;
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

/// The largest file the contents API returns inline (1 MB, as documented).
pub const CONTENTS_INLINE_MAX: usize = 1024 * 1024;

/// The Git objects of one repository.
#[derive(Default)]
pub(crate) struct Git {
    blobs: HashMap<String, Arc<Vec<u8>>>,
    /// Every tree, flat: each file's path under it → its blob.
    trees: HashMap<String, Arc<BTreeMap<String, String>>>,
    commits: HashMap<String, CommitObject>,
    /// Branch name → its head commit.
    heads: HashMap<String, String>,
    serial: u64,
    /// Contents writes refused because their `sha` was stale (409).
    conflicts: u64,
}

#[derive(Clone)]
struct CommitObject {
    tree: String,
    parents: Vec<String>,
    message: String,
    date: String,
}

impl Git {
    fn put_blob(&mut self, bytes: Vec<u8>) -> String {
        let sha = object_id("blob", &bytes);
        self.blobs.entry(sha.clone()).or_insert_with(|| Arc::new(bytes));
        sha
    }

    /// Stores a flat tree and each of its subtrees; returns the root's id.
    fn put_tree(&mut self, files: BTreeMap<String, String>) -> String {
        let mut dirs = std::collections::BTreeSet::new();
        for path in files.keys() {
            for (at, _) in path.match_indices('/') {
                dirs.insert(path[..at].to_owned());
            }
        }
        for dir in dirs {
            let prefix = format!("{dir}/");
            let sub: BTreeMap<String, String> = files
                .iter()
                .filter_map(|(p, b)| p.strip_prefix(&prefix).map(|rest| (rest.to_owned(), b.clone())))
                .collect();
            let sha = tree_id(&sub);
            self.trees.entry(sha).or_insert_with(|| Arc::new(sub));
        }
        let sha = tree_id(&files);
        self.trees.entry(sha.clone()).or_insert_with(|| Arc::new(files));
        sha
    }

    fn put_commit(&mut self, tree: String, parents: Vec<String>, message: &str, date: String) -> String {
        self.serial += 1;
        let text = format!("{tree}\n{}\n{message}\n{date}\n{}", parents.join(","), self.serial);
        let sha = object_id("commit", text.as_bytes());
        self.commits.insert(sha.clone(), CommitObject { tree, parents, message: message.to_owned(), date });
        sha
    }

    /// The commit a ref names: a branch or a commit id.
    fn commit_of(&self, git_ref: &str) -> Option<String> {
        let name = git_ref.trim_start_matches("refs/heads/").trim_start_matches("heads/");
        self.heads.get(name).cloned().or_else(|| self.commits.contains_key(git_ref).then(|| git_ref.to_owned()))
    }

    fn files_at(&self, commit: &str) -> Arc<BTreeMap<String, String>> {
        self.commits.get(commit).and_then(|c| self.trees.get(&c.tree)).cloned().unwrap_or_default()
    }

    /// Commits a change of one file on `branch` (created as an orphan when
    /// absent); returns the new commit.
    fn commit_file(&mut self, branch: &str, path: &str, bytes: Vec<u8>, message: &str, date: String) -> String {
        let parent = self.heads.get(branch).cloned();
        let mut files = parent.as_deref().map(|p| (*self.files_at(p)).clone()).unwrap_or_default();
        let blob = self.put_blob(bytes);
        files.insert(path.to_owned(), blob);
        let tree = self.put_tree(files);
        let commit = self.put_commit(tree, parent.into_iter().collect(), message, date);
        self.heads.insert(branch.to_owned(), commit.clone());
        commit
    }
}

/// A stand-in for a Git object id: 40 hex digits, a function of the kind
/// and the bytes (three FNV-1a hashes with different bases).
fn object_id(kind: &str, bytes: &[u8]) -> String {
    let hash = |basis: u64| {
        kind.bytes()
            .chain([0])
            .chain(bytes.iter().copied())
            .fold(basis, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3))
    };
    let (a, b, c) = (hash(0xcbf2_9ce4_8422_2325), hash(0x8422_2325_cbf2_9ce4), hash(0x6c62_272e_07bb_0142));
    format!("{a:016x}{b:016x}{:08x}", c as u32)
}

fn tree_id(files: &BTreeMap<String, String>) -> String {
    let listing: String = files.iter().map(|(p, b)| format!("{p}\0{b}\n")).collect();
    object_id("tree", listing.as_bytes())
}

/// Routes the Git and contents endpoints; `None` for any other request.
pub(crate) fn route(
    s: &mut State,
    method: &str,
    repo: &str,
    rest: &[&str],
    query: &str,
    body: &Value,
) -> Option<Answer> {
    let p = params(query);
    Some(match (method, rest) {
        ("GET", ["contents", path @ ..]) => get_contents(s, repo, &decode_path(path), p.get("ref").map(String::as_str)),
        ("PUT", ["contents", path @ ..]) => put_contents(s, repo, &decode_path(path), body),
        ("GET", ["git", "ref", "heads", branch @ ..]) => {
            let branch = decode_path(branch);
            let base = s.base.clone();
            match s.repo(repo).git.heads.get(&branch) {
                Some(sha) => Answer::json(StatusCode::OK, ref_json(&base, repo, &branch, sha)),
                None => Answer::error(StatusCode::NOT_FOUND, "Not Found"),
            }
        }
        ("POST", ["git", "refs"]) => create_ref(s, repo, body),
        ("POST", ["git", "trees"]) => create_tree(s, repo, body),
        ("POST", ["git", "commits"]) => create_commit(s, repo, body),
        ("GET", ["git", "trees", tree @ ..]) => get_tree(s, repo, &decode_path(tree), p.contains_key("recursive")),
        ("GET", ["git", "blobs", sha]) => {
            let base = s.base.clone();
            match s.repo(repo).git.blobs.get(*sha) {
                Some(bytes) => Answer::json(
                    StatusCode::OK,
                    json!({
                        "sha": sha,
                        "node_id": format!("B_{sha}"),
                        "size": bytes.len(),
                        "url": format!("{base}/repos/{repo}/git/blobs/{sha}"),
                        "content": encode_base64(bytes),
                        "encoding": "base64",
                    }),
                ),
                None => Answer::error(StatusCode::NOT_FOUND, "Not Found"),
            }
        }
        _ => return None,
    })
}

fn decode_path(parts: &[&str]) -> String {
    let joined = parts.join("/");
    let bytes = joined.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        if bytes[i] == b'%'
            && let (Some(h), Some(l)) =
                (bytes.get(i + 1).copied().and_then(hex), bytes.get(i + 2).copied().and_then(hex))
        {
            out.push((h * 16 + l) as u8);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn file_json(base: &str, repo: &str, branch: &str, path: &str, sha: &str, size: usize) -> Value {
    let name = path.rsplit('/').next().unwrap_or(path);
    let url = format!("{base}/repos/{repo}/contents/{path}?ref={branch}");
    let git_url = format!("{base}/repos/{repo}/git/blobs/{sha}");
    let html_url = format!("https://github.com/{repo}/blob/{branch}/{path}");
    json!({
        "type": "file",
        "size": size,
        "name": name,
        "path": path,
        "sha": sha,
        "url": url,
        "git_url": git_url,
        "html_url": html_url,
        "download_url": format!("https://raw.githubusercontent.com/{repo}/{branch}/{path}"),
        "_links": { "self": url, "git": git_url, "html": html_url },
    })
}

fn get_contents(s: &mut State, repo: &str, path: &str, git_ref: Option<&str>) -> Answer {
    let base = s.base.clone();
    let git = &s.repo(repo).git;
    let git_ref = git_ref.unwrap_or("main");
    let Some(commit) = git.commit_of(git_ref) else {
        return Answer::error(StatusCode::NOT_FOUND, &format!("No commit found for the ref {git_ref}"));
    };
    let files = git.files_at(&commit);
    if let Some(blob) = files.get(path) {
        let bytes = git.blobs.get(blob).cloned().unwrap_or_default();
        let mut file = file_json(&base, repo, git_ref, path, blob, bytes.len());
        // Over 1 MB the content is left out ("encoding": "none"): read it
        // through the blobs endpoint.
        if bytes.len() > CONTENTS_INLINE_MAX {
            file["content"] = json!("");
            file["encoding"] = json!("none");
        } else {
            file["content"] = json!(encode_base64(&bytes));
            file["encoding"] = json!("base64");
        }
        return Answer::json(StatusCode::OK, file);
    }
    let prefix = if path.is_empty() { String::new() } else { format!("{path}/") };
    let mut entries: BTreeMap<String, Value> = BTreeMap::new();
    for (file, blob) in files.iter() {
        let Some(rest) = file.strip_prefix(&prefix) else { continue };
        match rest.split_once('/') {
            None => {
                let size = git.blobs.get(blob).map_or(0, |b| b.len());
                entries.insert(rest.to_owned(), file_json(&base, repo, git_ref, file, blob, size));
            }
            Some((dir, _)) => {
                let dir_path = format!("{prefix}{dir}");
                let sub: BTreeMap<String, String> = files
                    .iter()
                    .filter_map(|(p, b)| p.strip_prefix(&format!("{dir_path}/")).map(|r| (r.to_owned(), b.clone())))
                    .collect();
                let mut entry = file_json(&base, repo, git_ref, &dir_path, &tree_id(&sub), 0);
                entry["type"] = json!("dir");
                entry["download_url"] = Value::Null;
                entries.insert(dir.to_owned(), entry);
            }
        }
    }
    if entries.is_empty() {
        return Answer::error(StatusCode::NOT_FOUND, "Not Found");
    }
    Answer::json(StatusCode::OK, Value::Array(entries.into_values().collect()))
}

fn put_contents(s: &mut State, repo: &str, path: &str, body: &Value) -> Answer {
    let invalid = |what: &str| {
        Answer::error(StatusCode::UNPROCESSABLE_ENTITY, &format!("Invalid request.\n\n\"{what}\" wasn't supplied."))
    };
    let Some(message) = body.get("message").and_then(Value::as_str) else { return invalid("message") };
    let Some(content) = body.get("content").and_then(Value::as_str) else { return invalid("content") };
    let Some(bytes) = decode_base64(content) else {
        return Answer::error(StatusCode::UNPROCESSABLE_ENTITY, "content is not valid Base64");
    };
    if path.is_empty() || path.ends_with('/') {
        return Answer::error(StatusCode::UNPROCESSABLE_ENTITY, "path is not a file path");
    }
    let branch = body.get("branch").and_then(Value::as_str).unwrap_or("main").to_owned();
    let date = s.stamp();
    let base = s.base.clone();
    let git = &mut s.repo(repo).git;
    let Some(head) = git.heads.get(&branch).cloned() else {
        return Answer::error(StatusCode::NOT_FOUND, &format!("Branch {branch} not found"));
    };
    let current = git.files_at(&head).get(path).cloned();
    let given = body.get("sha").and_then(Value::as_str);
    match (&current, given) {
        (Some(_), None) => return invalid("sha"),
        (Some(now), Some(sha)) if now != sha => {
            git.conflicts += 1;
            return Answer::error(StatusCode::CONFLICT, &format!("{path} does not match {sha}"));
        }
        (None, Some(sha)) => {
            git.conflicts += 1;
            return Answer::error(StatusCode::CONFLICT, &format!("{path} does not match {sha}"));
        }
        _ => {}
    }
    let size = bytes.len();
    let commit = git.commit_file(&branch, path, bytes, message, date);
    let blob = git.files_at(&commit).get(path).cloned().unwrap_or_default();
    let status = if current.is_some() { StatusCode::OK } else { StatusCode::CREATED };
    let commit_json = commit_json(&base, repo, &commit, git.commits.get(&commit));
    Answer::json(
        status,
        json!({ "content": file_json(&base, repo, &branch, path, &blob, size), "commit": commit_json }),
    )
}

fn commit_json(base: &str, repo: &str, sha: &str, commit: Option<&CommitObject>) -> Value {
    let Some(c) = commit else { return Value::Null };
    let person = json!({ "name": "github-actions[bot]", "email": "41898282+github-actions[bot]@users.noreply.github.com", "date": c.date });
    json!({
        "sha": sha,
        "node_id": format!("C_{sha}"),
        "url": format!("{base}/repos/{repo}/git/commits/{sha}"),
        "html_url": format!("https://github.com/{repo}/commit/{sha}"),
        "author": person,
        "committer": person,
        "message": c.message,
        "tree": { "sha": c.tree, "url": format!("{base}/repos/{repo}/git/trees/{}", c.tree) },
        "parents": c.parents.iter().map(|p| json!({
            "sha": p,
            "url": format!("{base}/repos/{repo}/git/commits/{p}"),
            "html_url": format!("https://github.com/{repo}/commit/{p}"),
        })).collect::<Vec<_>>(),
        "verification": { "verified": false, "reason": "unsigned", "signature": null, "payload": null },
    })
}

fn ref_json(base: &str, repo: &str, branch: &str, sha: &str) -> Value {
    json!({
        "ref": format!("refs/heads/{branch}"),
        "node_id": format!("REF_{branch}"),
        "url": format!("{base}/repos/{repo}/git/refs/heads/{branch}"),
        "object": { "type": "commit", "sha": sha, "url": format!("{base}/repos/{repo}/git/commits/{sha}") },
    })
}

fn create_ref(s: &mut State, repo: &str, body: &Value) -> Answer {
    let (Some(name), Some(sha)) = (body.get("ref").and_then(Value::as_str), body.get("sha").and_then(Value::as_str))
    else {
        return Answer::error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "Invalid request.\n\n\"ref\", \"sha\" weren't supplied.",
        );
    };
    let Some(branch) = name.strip_prefix("refs/heads/").filter(|b| !b.is_empty()) else {
        return Answer::error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "Reference name must start with 'refs/' and have at least two slashes.",
        );
    };
    let base = s.base.clone();
    let git = &mut s.repo(repo).git;
    if !git.commits.contains_key(sha) {
        return Answer::error(StatusCode::UNPROCESSABLE_ENTITY, "Object does not exist");
    }
    if git.heads.contains_key(branch) {
        return Answer::error(StatusCode::UNPROCESSABLE_ENTITY, "Reference already exists");
    }
    git.heads.insert(branch.to_owned(), sha.to_owned());
    Answer::json(StatusCode::CREATED, ref_json(&base, repo, branch, sha))
}

fn create_tree(s: &mut State, repo: &str, body: &Value) -> Answer {
    let Some(entries) = body.get("tree").and_then(Value::as_array) else {
        return Answer::error(StatusCode::UNPROCESSABLE_ENTITY, "Invalid request.\n\n\"tree\" wasn't supplied.");
    };
    let base = s.base.clone();
    let git = &mut s.repo(repo).git;
    let mut files: BTreeMap<String, String> = match body.get("base_tree").and_then(Value::as_str) {
        Some(t) => match git.trees.get(t) {
            Some(files) => (**files).clone(),
            None => return Answer::error(StatusCode::UNPROCESSABLE_ENTITY, "base_tree is not a valid tree"),
        },
        None => BTreeMap::new(),
    };
    for entry in entries {
        let Some(path) = entry.get("path").and_then(Value::as_str) else {
            return Answer::error(StatusCode::UNPROCESSABLE_ENTITY, "tree.path wasn't supplied");
        };
        if entry.get("type").and_then(Value::as_str) != Some("blob") {
            return Answer::error(StatusCode::UNPROCESSABLE_ENTITY, "this fake takes blob entries only");
        }
        let blob = match (entry.get("content").and_then(Value::as_str), entry.get("sha").and_then(Value::as_str)) {
            (Some(text), _) => git.put_blob(text.as_bytes().to_vec()),
            (None, Some(sha)) if git.blobs.contains_key(sha) => sha.to_owned(),
            _ => return Answer::error(StatusCode::UNPROCESSABLE_ENTITY, "tree.sha is not a valid blob"),
        };
        files.insert(path.to_owned(), blob);
    }
    let sha = git.put_tree(files);
    Answer { status: StatusCode::CREATED, ..tree_answer(git, &base, repo, &sha, true) }
}

fn create_commit(s: &mut State, repo: &str, body: &Value) -> Answer {
    let (Some(message), Some(tree)) =
        (body.get("message").and_then(Value::as_str), body.get("tree").and_then(Value::as_str))
    else {
        return Answer::error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "Invalid request.\n\n\"message\", \"tree\" weren't supplied.",
        );
    };
    let parents: Vec<String> = body
        .get("parents")
        .and_then(Value::as_array)
        .map(|ps| ps.iter().filter_map(Value::as_str).map(str::to_owned).collect())
        .unwrap_or_default();
    let date = s.stamp();
    let base = s.base.clone();
    let git = &mut s.repo(repo).git;
    if !git.trees.contains_key(tree) {
        return Answer::error(StatusCode::UNPROCESSABLE_ENTITY, "Tree SHA does not exist");
    }
    if parents.iter().any(|p| !git.commits.contains_key(p)) {
        return Answer::error(StatusCode::UNPROCESSABLE_ENTITY, "Parent SHA does not exist or is not a commit object");
    }
    let sha = git.put_commit(tree.to_owned(), parents, message, date);
    let commit = git.commits.get(&sha).cloned();
    Answer::json(StatusCode::CREATED, commit_json(&base, repo, &sha, commit.as_ref()))
}

fn get_tree(s: &mut State, repo: &str, tree: &str, recursive: bool) -> Answer {
    let base = s.base.clone();
    let git = &s.repo(repo).git;
    // A tree id, or a ref (branch) or commit whose tree is meant.
    let sha = if git.trees.contains_key(tree) {
        tree.to_owned()
    } else if let Some(commit) = git.commit_of(tree) {
        git.commits.get(&commit).map(|c| c.tree.clone()).unwrap_or_default()
    } else {
        return Answer::error(StatusCode::NOT_FOUND, "Not Found");
    };
    tree_answer(git, &base, repo, &sha, recursive)
}

fn tree_answer(git: &Git, base: &str, repo: &str, sha: &str, recursive: bool) -> Answer {
    let Some(files) = git.trees.get(sha) else { return Answer::error(StatusCode::NOT_FOUND, "Not Found") };
    let mut entries: BTreeMap<String, Value> = BTreeMap::new();
    for (path, blob) in files.iter() {
        let parts: Vec<&str> = path.split('/').collect();
        // Directories on the way, as tree entries.
        for depth in 1..parts.len() {
            if !recursive && depth > 1 {
                break;
            }
            let dir = parts[..depth].join("/");
            entries.entry(dir.clone()).or_insert_with(|| {
                let sub: BTreeMap<String, String> = files
                    .iter()
                    .filter_map(|(p, b)| p.strip_prefix(&format!("{dir}/")).map(|r| (r.to_owned(), b.clone())))
                    .collect();
                let id = tree_id(&sub);
                json!({ "path": dir, "mode": "040000", "type": "tree", "sha": id, "url": format!("{base}/repos/{repo}/git/trees/{id}") })
            });
        }
        if recursive || parts.len() == 1 {
            let size = git.blobs.get(blob).map_or(0, |b| b.len());
            entries.insert(
                path.clone(),
                json!({ "path": path, "mode": "100644", "type": "blob", "sha": blob, "size": size, "url": format!("{base}/repos/{repo}/git/blobs/{blob}") }),
            );
        }
    }
    Answer::json(
        StatusCode::OK,
        json!({
            "sha": sha,
            "url": format!("{base}/repos/{repo}/git/trees/{sha}"),
            "tree": entries.into_values().collect::<Vec<_>>(),
            "truncated": false,
        }),
    )
}

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Standard base64 with padding, a line break every 60 characters, as
/// GitHub sends file and blob contents.
fn encode_base64(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 4 / 3 + bytes.len() / 45 + 4);
    let mut line = 0;
    for chunk in bytes.chunks(3) {
        let n = chunk.iter().enumerate().fold(0u32, |n, (i, b)| n | (u32::from(*b) << (16 - 8 * i)));
        for i in 0..4 {
            let c = if i <= chunk.len() { ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char } else { '=' };
            out.push(c);
        }
        line += 4;
        if line == 60 {
            out.push('\n');
            line = 0;
        }
    }
    if line == 0 && out.ends_with('\n') {
        out.pop();
    }
    out.push('\n');
    out
}

/// Standard base64, whitespace ignored; `None` when it is not base64.
fn decode_base64(text: &str) -> Option<Vec<u8>> {
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
                _ => ALPHABET.iter().position(|&a| a == c)? as u32,
            };
            n = (n << 6) | v;
        }
        let bytes = [(n >> 16) as u8, (n >> 8) as u8, n as u8];
        out.extend_from_slice(&bytes[..3 - pad]);
    }
    Some(out)
}

impl Fake {
    /// Writes `content` to `path` on `branch` as one commit (the branch is
    /// created, as an orphan, when absent): seeds a ledger branch without
    /// going through the API.
    pub fn put_branch_file(&self, repo: &str, branch: &str, path: &str, content: &str) {
        self.with(|s| {
            let date = s.stamp();
            s.repo(repo).git.commit_file(branch, path, content.as_bytes().to_vec(), "seeded", date);
        });
    }

    /// The text of `path` on `branch`, if there is one.
    pub fn branch_file(&self, repo: &str, branch: &str, path: &str) -> Option<String> {
        self.with(|s| {
            let git = &s.repo(repo).git;
            let head = git.heads.get(branch)?;
            let blob = git.files_at(head).get(path).cloned()?;
            git.blobs.get(&blob).map(|b| String::from_utf8_lossy(b).into_owned())
        })
    }

    /// The paths of the files on `branch`, sorted.
    pub fn branch_files(&self, repo: &str, branch: &str) -> Vec<String> {
        self.with(|s| {
            let git = &s.repo(repo).git;
            git.heads.get(branch).map(|h| git.files_at(h).keys().cloned().collect()).unwrap_or_default()
        })
    }

    /// How many commits `branch` has (its first-parent history).
    pub fn branch_commits(&self, repo: &str, branch: &str) -> usize {
        self.with(|s| {
            let git = &s.repo(repo).git;
            let mut count = 0;
            let mut at = git.heads.get(branch).cloned();
            while let Some(sha) = at {
                count += 1;
                at = git.commits.get(&sha).and_then(|c| c.parents.first().cloned());
            }
            count
        })
    }

    /// Contents writes refused so far for a stale `sha` (409).
    pub fn contents_conflicts(&self, repo: &str) -> u64 {
        self.with(|s| s.repo(repo).git.conflicts)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_round_trips_and_refuses_what_is_not_base64() {
        for text in ["", "a", "ab", "abc", "abcd", &"x".repeat(200)] {
            let encoded = encode_base64(text.as_bytes());
            assert!(encoded.lines().all(|l| l.len() <= 60), "{encoded}");
            assert_eq!(decode_base64(&encoded).as_deref(), Some(text.as_bytes()));
        }
        assert_eq!(encode_base64(b"hello"), "aGVsbG8=\n");
        assert_eq!(decode_base64("aGVsbG8="), Some(b"hello".to_vec()));
        assert_eq!(decode_base64("aGVsbG8"), None);
        assert_eq!(decode_base64("a=Vs"), None);
        assert_eq!(decode_base64("aGV*bG8="), None);
    }

    #[test]
    fn object_ids_follow_the_content() {
        assert_eq!(object_id("blob", b"x"), object_id("blob", b"x"));
        assert_ne!(object_id("blob", b"x"), object_id("blob", b"y"));
        assert_ne!(object_id("blob", b"x"), object_id("tree", b"x"));
        assert_eq!(object_id("blob", b"x").len(), 40);
    }
}
