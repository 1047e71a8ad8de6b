//! The fake's releases, as the REST API documents them
//! (<https://docs.github.com/en/rest/releases/releases>,
//! <https://docs.github.com/en/rest/releases/assets>), as far as a release
//! workflow publishes one with `gh release create` (a draft, its assets
//! uploaded, then published) and checks it with `gh release download`:
//!
//! - `POST /repos/{o}/{r}/releases` (`tag_name`, `name`, `draft`,
//!   `generate_release_notes`, ...): 201 with the release; a second release
//!   of one tag: 422 `Validation Failed` (`already_exists`);
//! - `POST /uploads/repos/{o}/{r}/releases/{id}/assets?name=NAME` (the
//!   release's `upload_url`; GitHub serves it on uploads.github.com), the
//!   raw bytes as the body: 201 with the asset; a name the release has: 422
//!   `already_exists`;
//! - `PATCH /repos/{o}/{r}/releases/{id}` (`draft: false` publishes it);
//! - `GET /repos/{o}/{r}/releases/tags/{tag}`: the published release of a
//!   tag ("Get a published release with the specified tag name": a draft
//!   is 404), `GET /repos/{o}/{r}/releases/{id}`, `GET
//!   /repos/{o}/{r}/releases` (drafts included, newest first).
//!
//! A published release's assets are downloadable at github.com's
//! `/{o}/{r}/releases/download/{tag}/{name}` (served by the fake beside
//! the API); a draft's are not. Not modelled: release notes' content,
//! `make_latest`, editing or deleting assets, the tag being created by the
//! release (`target_commitish`).

use super::{Answer, State};
use hyper::StatusCode;
use serde_json::{Value, json};

/// One release of a repository.
#[derive(Clone, Debug)]
pub(crate) struct Release {
    id: u64,
    tag: String,
    name: String,
    draft: bool,
    /// (asset id, name, bytes), in upload order.
    assets: Vec<(u64, String, Vec<u8>)>,
}

fn release_json(s: &State, repo: &str, r: &Release) -> Value {
    let assets: Vec<Value> = r
        .assets
        .iter()
        .map(|(id, name, bytes)| {
            json!({
                "id": id,
                "name": name,
                "size": bytes.len(),
                "state": "uploaded",
                "content_type": "application/octet-stream",
                "url": format!("{}/repos/{repo}/releases/assets/{id}", s.base),
                "browser_download_url": format!("{}/{repo}/releases/download/{}/{name}", s.base, r.tag),
            })
        })
        .collect();
    json!({
        "id": r.id,
        "tag_name": r.tag,
        "name": r.name,
        "draft": r.draft,
        "prerelease": false,
        "url": format!("{}/repos/{repo}/releases/{}", s.base, r.id),
        "upload_url": format!("{}/uploads/repos/{repo}/releases/{}/assets{{?name,label}}", s.base, r.id),
        "assets": assets,
    })
}

fn validation_failed(resource: &str, field: &str) -> Answer {
    Answer::json(
        StatusCode::UNPROCESSABLE_ENTITY,
        json!({
            "message": "Validation Failed",
            "errors": [{ "resource": resource, "code": "already_exists", "field": field }],
            "documentation_url": "https://docs.github.com/rest/releases/releases#create-a-release",
            "status": "422",
        }),
    )
}

/// Makes a published release's assets downloadable (the fake's download
/// URLs serve `assets`).
fn publish_assets(s: &mut State, repo: &str, index: usize) {
    let r = s.repo(repo).releases[index].clone();
    if r.draft {
        return;
    }
    for (_, name, bytes) in r.assets {
        s.repo(repo).assets.insert(format!("{}/{name}", r.tag), bytes);
    }
}

/// The JSON routes under `/repos/{o}/{r}/releases`.
pub(crate) fn route(s: &mut State, method: &str, repo: &str, rest: &[&str], body: &Value) -> Option<Answer> {
    let not_found = || Answer::error(StatusCode::NOT_FOUND, "Not Found");
    let answer = match (method, rest) {
        ("POST", ["releases"]) => {
            let Some(tag) = body.get("tag_name").and_then(Value::as_str) else {
                return Some(Answer::error(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "Invalid request.\n\n\"tag_name\" wasn't supplied.",
                ));
            };
            if s.repo(repo).releases.iter().any(|r| r.tag == tag) {
                return Some(validation_failed("Release", "tag_name"));
            }
            let release = Release {
                id: s.id(),
                tag: tag.to_owned(),
                name: body.get("name").and_then(Value::as_str).unwrap_or(tag).to_owned(),
                draft: body.get("draft").and_then(Value::as_bool).unwrap_or(false),
                assets: Vec::new(),
            };
            let out = release_json(s, repo, &release);
            s.repo(repo).releases.push(release);
            Answer::json(StatusCode::CREATED, out)
        }
        ("PATCH", ["releases", id]) => {
            let id: u64 = id.parse().unwrap_or(0);
            let Some(index) = s.repo(repo).releases.iter().position(|r| r.id == id) else { return Some(not_found()) };
            if let Some(draft) = body.get("draft").and_then(Value::as_bool) {
                s.repo(repo).releases[index].draft = draft;
            }
            if let Some(name) = body.get("name").and_then(Value::as_str) {
                s.repo(repo).releases[index].name = name.to_owned();
            }
            publish_assets(s, repo, index);
            let r = s.repo(repo).releases[index].clone();
            Answer::json(StatusCode::OK, release_json(s, repo, &r))
        }
        ("GET", ["releases", "tags", tag]) => {
            let found = s.repo(repo).releases.iter().find(|r| r.tag == *tag && !r.draft).cloned();
            match found {
                Some(r) => Answer::json(StatusCode::OK, release_json(s, repo, &r)),
                None => not_found(),
            }
        }
        ("GET", ["releases", id]) => {
            let id: u64 = id.parse().unwrap_or(0);
            match s.repo(repo).releases.iter().find(|r| r.id == id).cloned() {
                Some(r) => Answer::json(StatusCode::OK, release_json(s, repo, &r)),
                None => not_found(),
            }
        }
        ("GET", ["releases"]) => {
            let all = s.repo(repo).releases.clone();
            Answer::json(StatusCode::OK, Value::Array(all.iter().rev().map(|r| release_json(s, repo, r)).collect()))
        }
        _ => return None,
    };
    Some(answer)
}

/// `POST /uploads/repos/{o}/{r}/releases/{id}/assets?name=NAME` with the
/// raw bytes.
pub(crate) fn upload(s: &mut State, repo: &str, id: &str, name: Option<&str>, bytes: Vec<u8>) -> Answer {
    let Some(name) = name.filter(|n| !n.is_empty()) else {
        return Answer::error(StatusCode::UNPROCESSABLE_ENTITY, "Invalid request.\n\n\"name\" wasn't supplied.");
    };
    let id: u64 = id.parse().unwrap_or(0);
    let Some(index) = s.repo(repo).releases.iter().position(|r| r.id == id) else {
        return Answer::error(StatusCode::NOT_FOUND, "Not Found");
    };
    if s.repo(repo).releases[index].assets.iter().any(|(_, n, _)| n == name) {
        return validation_failed("ReleaseAsset", "name");
    }
    let asset = s.id();
    let size = bytes.len();
    s.repo(repo).releases[index].assets.push((asset, name.to_owned(), bytes));
    publish_assets(s, repo, index);
    let tag = s.repo(repo).releases[index].tag.clone();
    Answer::json(
        StatusCode::CREATED,
        json!({
            "id": asset,
            "name": name,
            "size": size,
            "state": "uploaded",
            "url": format!("{}/repos/{repo}/releases/assets/{asset}", s.base),
            "browser_download_url": format!("{}/{repo}/releases/download/{tag}/{name}", s.base),
        }),
    )
}

/// The releases of a repository, for tests: (tag, draft, asset names).
pub(crate) fn list(s: &mut State, repo: &str) -> Vec<(String, bool, Vec<String>)> {
    s.repo(repo)
        .releases
        .iter()
        .map(|r| (r.tag.clone(), r.draft, r.assets.iter().map(|(_, n, _)| n.clone()).collect()))
        .collect()
}
