//! The GitHub REST client under the ledger, the gate checks and the hand-off,
//! on octocrab's raw routes (octocrab has no Deployments API, and its plain
//! `get` treats a 304 as an error, so answers are read here).
//!
//! Behaviour GitHub's best practices ask for: requests one at a time;
//! conditional `GET`s with `If-None-Match` from a small on-disk ETag cache (a
//! 304 does not count against the rate limit); lists read 100 a page,
//! following `Link: rel="next"`; `retry-after` and `x-ratelimit-reset`
//! honoured on a rate-limit refusal; at least `write_interval` between two
//! writes; every request under a timeout; transient failures retried with
//! backoff. Every request is counted; the counts are printed as a debug line
//! when the client is dropped.
//!
//! The token is masked when read and never appears in an error, a log line
//! or a file: messages are scrubbed of it before they leave this module.

use super::cache::{Entry, EtagCache};
use crate::ProviderError;
use crate::retry::Backoff;
use http::header::{HeaderMap, HeaderValue};
use http_body_util::BodyExt;
use octocrab::Octocrab;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const PROVIDER: &str = "github";

/// How to reach GitHub; see [`GitHub::from_env`].
#[derive(Clone)]
pub struct Settings {
    /// The REST API root, no trailing slash.
    pub api_url: String,
    /// The web root for links (`https://github.com`).
    pub server_url: String,
    pub token: String,
    /// `owner/repo`.
    pub repository: String,
    pub cache_dir: Option<PathBuf>,
    pub write_interval: Duration,
    /// Longest wait for a rate limit to lift.
    pub max_wait: Duration,
    /// Per request.
    pub timeout: Duration,
    pub backoff: Backoff,
    /// Names the counts in the debug line (the step).
    pub label: String,
}

impl std::fmt::Debug for Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Settings")
            .field("api_url", &self.api_url)
            .field("repository", &self.repository)
            .field("token", &"***")
            .finish_non_exhaustive()
    }
}

/// What the client did, for the debug line and tests.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CallStats {
    /// Requests sent, whatever their answer.
    pub requests: u32,
    /// `POST`s among them.
    pub writes: u32,
    /// Answered 304 from the cache (free against the rate limit).
    pub not_modified: u32,
    /// Answered from the cache without a request (immutable Git objects);
    /// not among `requests`.
    pub cached: u32,
    /// Rate-limit refusals waited out.
    pub rate_limited: u32,
    /// What the last answer said was left of the rate limit
    /// (`x-ratelimit-remaining`), when it said.
    pub remaining: Option<u32>,
}

impl CallStats {
    /// Requests that count against the rate limit (not 304s, not refusals).
    pub fn counted(&self) -> u32 {
        self.requests.saturating_sub(self.not_modified + self.rate_limited)
    }
}

/// A GitHub API client for one repository; cheap to clone.
#[derive(Clone, Debug)]
pub struct GitHub {
    inner: Arc<Inner>,
}

struct Inner {
    octo: Octocrab,
    settings: Settings,
    cache: Option<EtagCache>,
    stats: Mutex<CallStats>,
    last_write: tokio::sync::Mutex<Option<Instant>>,
    /// Files of the ledger branch as this client last read or wrote them
    /// (path → blob SHA and text).
    known: Mutex<HashMap<String, (String, String)>>,
}

impl std::fmt::Debug for Inner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GitHub").field("settings", &self.settings).finish_non_exhaustive()
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        let stats = *self.stats.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if stats.requests == 0 && stats.cached == 0 {
            return;
        }
        // Always said: what a step spent of the repository's rate limit is
        // what a team running several a day budgets with.
        eprintln!(
            "{}: {} GitHub API calls ({} counted against the rate limit, {} not modified, {} writes, {} rate-limit waits{})",
            self.settings.label,
            stats.requests,
            stats.counted(),
            stats.not_modified,
            stats.writes,
            stats.rate_limited,
            stats.remaining.map(|r| format!(", {r} left of the rate limit")).unwrap_or_default()
        );
    }
}

/// One answer, body read.
#[derive(Debug)]
struct Reply {
    body: String,
    link: Option<String>,
}

/// An answer GitHub gave on the merits of a request (a stale `sha`: 409; a
/// missing file or branch: 404; a file that exists: 422), returned to the
/// caller, which knows what it means, rather than turned into an error.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refused {
    pub status: u16,
    /// GitHub's `message`.
    pub message: String,
}

/// Whether a failed write may be sent again.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Resend {
    /// Sending twice does no harm (a status, a dispatch the caller guards).
    Safe,
    /// Only resend when GitHub surely did nothing (a rate-limit refusal): a
    /// second deployment would count twice.
    OnlyIfRefused,
}

impl GitHub {
    /// A client with these settings; masks the token first.
    pub fn new(settings: Settings) -> Result<GitHub, ProviderError> {
        sluice_core::gha::mask(&settings.token);
        let fail = |message: String| ProviderError {
            provider: PROVIDER,
            operation: "set up the GitHub client".into(),
            message,
            transient: false,
            attempts: 1,
        };
        let mut builder = Octocrab::builder()
            .personal_token(settings.token.clone())
            .add_header(http::header::ACCEPT, "application/vnd.github+json".to_owned())
            .set_connect_timeout(Some(crate::timeouts::GITHUB_CONNECT.min(settings.timeout)))
            .set_read_timeout(Some(settings.timeout))
            .set_write_timeout(Some(settings.timeout));
        builder = builder
            .base_uri(settings.api_url.as_str())
            .map_err(|e| fail(format!("GITHUB_API_URL {:?} is not a URL: {e}", settings.api_url)))?;
        let octo = builder.build().map_err(|e| fail(scrub(&chain(&e), &settings.token)))?;
        let cache = settings.cache_dir.as_deref().map(EtagCache::new);
        Ok(GitHub {
            inner: Arc::new(Inner {
                octo,
                settings,
                cache,
                stats: Mutex::new(CallStats::default()),
                last_write: tokio::sync::Mutex::new(None),
                known: Mutex::new(HashMap::new()),
            }),
        })
    }

    /// `owner/repo`.
    pub fn repository(&self) -> &str {
        &self.inner.settings.repository
    }

    /// The web root for links.
    pub fn server_url(&self) -> &str {
        &self.inner.settings.server_url
    }

    /// A web link into the repository (`/actions/runs/1`, `/issues/3`).
    pub fn web_url(&self, path: &str) -> String {
        format!("{}/{}{path}", self.server_url(), self.repository())
    }

    /// What the client did so far.
    pub fn stats(&self) -> CallStats {
        *self.inner.stats.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// What this client last read or wrote at `path` of the ledger branch:
    /// the `sha` a compare-and-swap may try without reading first (a stale
    /// one is refused, and the caller reads again).
    pub fn known(&self, path: &str) -> Option<(String, String)> {
        self.inner.known.lock().unwrap_or_else(std::sync::PoisonError::into_inner).get(path).cloned()
    }

    /// Remembers what `path` of the ledger branch holds (see [`GitHub::known`]).
    pub fn remember(&self, path: &str, sha: &str, text: &str) {
        let mut known = self.inner.known.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        known.insert(path.to_owned(), (sha.to_owned(), text.to_owned()));
    }

    fn count(&self, f: impl FnOnce(&mut CallStats)) {
        f(&mut self.inner.stats.lock().unwrap_or_else(std::sync::PoisonError::into_inner));
    }

    /// `GET` one resource under the repository (`path` starts with `/`).
    pub async fn get<T: DeserializeOwned>(&self, operation: &str, need: &str, path: &str) -> Result<T, ProviderError> {
        let path = self.repo_path(path);
        let reply = self.read(operation, need, &path).await?;
        self.parse(operation, &reply.body)
    }

    /// `GET` one resource; an answer with one of the `refusals` statuses
    /// (404: not there) is returned as [`Refused`].
    pub async fn get_if<T: DeserializeOwned>(
        &self,
        operation: &str,
        need: &str,
        path: &str,
        refusals: &[u16],
    ) -> Result<Result<T, Refused>, ProviderError> {
        let path = self.repo_path(path);
        match self.read_if(operation, need, &path, refusals).await? {
            Ok(reply) => self.parse(operation, &reply.body).map(Ok),
            Err(refused) => Ok(Err(refused)),
        }
    }

    /// `GET` a resource that never changes once it exists (a Git object by
    /// its id): answered from the ETag cache without a request when it is
    /// there.
    pub async fn get_immutable<T: DeserializeOwned>(
        &self,
        operation: &str,
        need: &str,
        path: &str,
    ) -> Result<T, ProviderError> {
        let path = self.repo_path(path);
        let url = format!("{}{path}", self.inner.settings.api_url);
        if let Some(entry) = self.inner.cache.as_ref().and_then(|c| c.get(&url))
            && let Ok(value) = serde_json::from_str(&entry.body)
        {
            self.count(|s| s.cached += 1);
            return Ok(value);
        }
        let reply = self.read(operation, need, &path).await?;
        self.parse(operation, &reply.body)
    }

    /// `GET` every page of a list under the repository, 100 a page. `field`
    /// names the array when the answer is an object (`check_runs`).
    pub async fn get_all<T: DeserializeOwned>(
        &self,
        operation: &str,
        need: &str,
        path: &str,
        field: Option<&str>,
    ) -> Result<Vec<T>, ProviderError> {
        self.get_while(operation, need, path, field, |_| true).await
    }

    /// Like [`GitHub::get_all`], but asks `more` after each page (given the
    /// page's items) whether to read the next one: a list sorted newest
    /// first can stop where it reaches what is not wanted.
    pub async fn get_while<T: DeserializeOwned>(
        &self,
        operation: &str,
        need: &str,
        path: &str,
        field: Option<&str>,
        mut more: impl FnMut(&[T]) -> bool,
    ) -> Result<Vec<T>, ProviderError> {
        let separator = if path.contains('?') { '&' } else { '?' };
        let mut next = Some(self.repo_path(&format!("{path}{separator}per_page=100")));
        let mut items = Vec::new();
        let mut pages = 0;
        while let Some(path) = next.take() {
            pages += 1;
            if pages > 100 {
                return Err(self.error(operation, "more than 100 pages; narrow the query".into(), false));
            }
            let reply = self.read(operation, need, &path).await?;
            let value: Value = self.parse(operation, &reply.body)?;
            let array = match field {
                Some(f) => value.get(f).cloned().unwrap_or(Value::Null),
                None => value,
            };
            let Value::Array(page) = array else {
                return Err(self.error(
                    operation,
                    format!("the answer has no list{}", field.map(|f| format!(" {f:?}")).unwrap_or_default()),
                    false,
                ));
            };
            let first = items.len();
            for item in page {
                items.push(
                    serde_json::from_value(item)
                        .map_err(|e| self.error(operation, format!("unexpected item: {e}"), false))?,
                );
            }
            if !more(&items[first..]) {
                break;
            }
            next = match reply.link.as_deref().and_then(next_link) {
                Some(url) => Some(self.relative(operation, &url)?),
                None => None,
            };
        }
        Ok(items)
    }

    /// `POST` under the repository, answering JSON.
    pub async fn post<B: Serialize, T: DeserializeOwned>(
        &self,
        operation: &str,
        need: &str,
        path: &str,
        body: &B,
        resend: Resend,
    ) -> Result<T, ProviderError> {
        let reply = self.write(operation, need, &self.repo_path(path), body, resend).await?;
        self.parse(operation, &reply.body)
    }

    /// `POST` under the repository, answering nothing (204).
    pub async fn post_empty<B: Serialize>(
        &self,
        operation: &str,
        need: &str,
        path: &str,
        body: &B,
        resend: Resend,
    ) -> Result<(), ProviderError> {
        self.write(operation, need, &self.repo_path(path), body, resend).await.map(|_| ())
    }

    /// `PUT` under the repository (a file's contents), answering JSON; an
    /// answer with one of the `refusals` statuses (409: a stale `sha`) is
    /// returned as [`Refused`].
    pub async fn put_if<B: Serialize, T: DeserializeOwned>(
        &self,
        operation: &str,
        need: &str,
        path: &str,
        body: &B,
        refusals: &[u16],
    ) -> Result<Result<T, Refused>, ProviderError> {
        self.write_if(http::Method::PUT, operation, need, path, body, refusals).await
    }

    /// `POST` under the repository, answering JSON; an answer with one of
    /// the `refusals` statuses (422: the reference exists) is returned as
    /// [`Refused`].
    pub async fn post_if<B: Serialize, T: DeserializeOwned>(
        &self,
        operation: &str,
        need: &str,
        path: &str,
        body: &B,
        refusals: &[u16],
    ) -> Result<Result<T, Refused>, ProviderError> {
        self.write_if(http::Method::POST, operation, need, path, body, refusals).await
    }

    /// A write under the repository whose `refusals` are answers, not
    /// errors: [`GitHub::put_if`], [`GitHub::post_if`].
    async fn write_if<B: Serialize, T: DeserializeOwned>(
        &self,
        method: http::Method,
        operation: &str,
        need: &str,
        path: &str,
        body: &B,
        refusals: &[u16],
    ) -> Result<Result<T, Refused>, ProviderError> {
        let body = serde_json::to_value(body).map_err(|e| self.error(operation, e.to_string(), false))?;
        let path = self.repo_path(path);
        // Resent after a failure that may have been applied: the resend is
        // then refused (its `sha` is stale, the reference exists), and the
        // caller reads back and finds its own write.
        let sent = self
            .inner
            .settings
            .backoff
            .run(|| self.send(operation, need, method.clone(), &path, Some(&body), None, refusals))
            .await?;
        match sent {
            Sent::Ok { body, .. } => self.parse(operation, &body).map(Ok),
            Sent::Refused(refused) => Ok(Err(refused)),
            Sent::NotModified => Err(self.error(operation, "a write answered 304".into(), false)),
        }
    }

    fn repo_path(&self, path: &str) -> String {
        if path.starts_with("/repos/") { path.to_owned() } else { format!("/repos/{}{path}", self.repository()) }
    }

    fn parse<T: DeserializeOwned>(&self, operation: &str, body: &str) -> Result<T, ProviderError> {
        let body = if body.trim().is_empty() { "null" } else { body };
        serde_json::from_str(body).map_err(|e| {
            let excerpt: String = body.chars().take(200).collect();
            self.error(operation, format!("GitHub answered something unexpected ({e}): {excerpt}"), false)
        })
    }

    /// A `Link` URL as a path under the API root; a link elsewhere is not
    /// followed (the token must not go to another host).
    fn relative(&self, operation: &str, url: &str) -> Result<String, ProviderError> {
        url.strip_prefix(&self.inner.settings.api_url)
            .filter(|rest| rest.starts_with('/'))
            .map(str::to_owned)
            .ok_or_else(|| {
                self.error(operation, format!("GitHub's next-page link {url} leaves the API root; not followed"), false)
            })
    }

    fn error(&self, operation: &str, message: String, transient: bool) -> ProviderError {
        ProviderError {
            provider: PROVIDER,
            operation: operation.to_owned(),
            message: scrub(&message, &self.inner.settings.token),
            transient,
            attempts: 1,
        }
    }

    async fn read(&self, operation: &str, need: &str, path: &str) -> Result<Reply, ProviderError> {
        match self.read_if(operation, need, path, &[]).await? {
            Ok(reply) => Ok(reply),
            Err(refused) => Err(self.error(operation, refused.message, false)),
        }
    }

    async fn read_if(
        &self,
        operation: &str,
        need: &str,
        path: &str,
        refusals: &[u16],
    ) -> Result<Result<Reply, Refused>, ProviderError> {
        let url = format!("{}{path}", self.inner.settings.api_url);
        self.inner
            .settings
            .backoff
            .run(|| async {
                let cached = self.inner.cache.as_ref().and_then(|c| c.get(&url));
                let reply =
                    self.send(operation, need, http::Method::GET, path, None, cached.as_ref(), refusals).await?;
                match reply {
                    Sent::NotModified => match cached {
                        Some(entry) => Ok(Ok(Reply { body: entry.body, link: entry.link })),
                        None => Err(self.error(operation, "304 without a cached answer".into(), true)),
                    },
                    Sent::Ok { body, link, etag } => {
                        if let (Some(cache), Some(etag)) = (&self.inner.cache, etag) {
                            cache.put(&Entry { url: url.clone(), etag, link: link.clone(), body: body.clone() });
                        }
                        Ok(Ok(Reply { body, link }))
                    }
                    Sent::Refused(refused) => Ok(Err(refused)),
                }
            })
            .await
    }

    async fn write<B: Serialize>(
        &self,
        operation: &str,
        need: &str,
        path: &str,
        body: &B,
        resend: Resend,
    ) -> Result<Reply, ProviderError> {
        let body = serde_json::to_value(body).map_err(|e| self.error(operation, e.to_string(), false))?;
        let backoff = match resend {
            Resend::Safe => self.inner.settings.backoff,
            Resend::OnlyIfRefused => Backoff::NONE,
        };
        backoff
            .run(|| async {
                match self.send(operation, need, http::Method::POST, path, Some(&body), None, &[]).await? {
                    Sent::Ok { body, link, .. } => Ok(Reply { body, link }),
                    Sent::NotModified | Sent::Refused(_) => Ok(Reply { body: String::new(), link: None }),
                }
            })
            .await
    }

    /// Sends one request, waiting out rate-limit refusals (which GitHub
    /// answers without doing anything, so any request may be resent). An
    /// answer with one of the `refusals` statuses is returned as such.
    #[allow(clippy::too_many_arguments)]
    async fn send(
        &self,
        operation: &str,
        need: &str,
        method: http::Method,
        path: &str,
        body: Option<&Value>,
        cached: Option<&Entry>,
        refusals: &[u16],
    ) -> Result<Sent, ProviderError> {
        let settings = &self.inner.settings;
        let mut waits = 0;
        loop {
            let writing = method != http::Method::GET;
            let _spacing = if writing { Some(self.space_writes().await) } else { None };
            let mut headers = HeaderMap::new();
            if let Some(etag) = cached.and_then(|e| HeaderValue::from_str(&e.etag).ok()) {
                headers.insert(http::header::IF_NONE_MATCH, etag);
            }
            self.count(|s| {
                s.requests += 1;
                if writing {
                    s.writes += 1;
                }
            });
            let request = async {
                let response = match (&method, body) {
                    (&http::Method::PUT, body) => self.inner.octo._put(path, body).await?,
                    (_, Some(body)) => self.inner.octo._post(path, Some(body)).await?,
                    (_, None) => self.inner.octo._get_with_headers(path, Some(headers)).await?,
                };
                let (parts, body) = response.into_parts();
                let bytes = body.collect().await?.to_bytes();
                Ok::<_, octocrab::Error>((parts, bytes))
            };
            let (parts, bytes) = match tokio::time::timeout(settings.timeout, request).await {
                Err(_) => {
                    return Err(self.error(
                        operation,
                        format!("{method} {path}: no answer within {}", humantime_secs(settings.timeout)),
                        true,
                    ));
                }
                Ok(Err(e)) => return Err(self.error(operation, format!("{method} {path}: {}", chain(&e)), true)),
                Ok(Ok(answer)) => answer,
            };
            let header = |name: &str| parts.headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
            if let Some(left) = header("x-ratelimit-remaining").and_then(|v| v.trim().parse().ok()) {
                self.count(|s| s.remaining = Some(left));
            }
            let status = parts.status;
            if status == http::StatusCode::NOT_MODIFIED {
                self.count(|s| s.not_modified += 1);
                return Ok(Sent::NotModified);
            }
            let text = String::from_utf8_lossy(&bytes).into_owned();
            if status.is_success() {
                return Ok(Sent::Ok { body: text, link: header("link"), etag: header("etag") });
            }
            let message = github_message(&text);
            if refusals.contains(&status.as_u16()) {
                return Ok(Sent::Refused(Refused { status: status.as_u16(), message }));
            }
            if let Some(wait) = rate_limit_wait(status, &parts.headers, &message) {
                if wait > settings.max_wait || waits >= 3 {
                    return Err(self.error(
                        operation,
                        format!(
                            "{method} {path}: GitHub's rate limit is spent and lifts in {}, later than max_wait {}: {message}",
                            humantime_secs(wait),
                            humantime_secs(settings.max_wait)
                        ),
                        false,
                    ));
                }
                waits += 1;
                self.count(|s| s.rate_limited += 1);
                sluice_core::gha::warning(&format!(
                    "GitHub rate limit while trying to {operation}: waiting {} as GitHub asks",
                    humantime_secs(wait)
                ));
                tokio::time::sleep(wait).await;
                continue;
            }
            let hint = match status.as_u16() {
                401 => " (check that GITHUB_TOKEN is set to a valid token)".to_owned(),
                403 | 404 if !need.is_empty() => {
                    format!(" (the token needs `{need}` on {}: add it to the job's `permissions:`)", self.repository())
                }
                _ => String::new(),
            };
            let transient = status.is_server_error() || status == http::StatusCode::REQUEST_TIMEOUT;
            return Err(self.error(
                operation,
                format!("{method} {path} answered {status}: {message}{hint}"),
                transient,
            ));
        }
    }

    /// Waits until `write_interval` has passed since the last write; the
    /// guard holds the write slot until the write is sent.
    async fn space_writes(&self) -> tokio::sync::MutexGuard<'_, Option<Instant>> {
        let mut last = self.inner.last_write.lock().await;
        if let Some(at) = *last {
            let due = at + self.inner.settings.write_interval;
            let now = Instant::now();
            if due > now {
                tokio::time::sleep(due - now).await;
            }
        }
        *last = Some(Instant::now());
        last
    }
}

#[derive(Debug)]
enum Sent {
    Ok { body: String, link: Option<String>, etag: Option<String> },
    NotModified,
    Refused(Refused),
}

/// How long GitHub asks to wait before a refused request may be resent, or
/// `None` when the answer is not a rate-limit refusal.
fn rate_limit_wait(status: http::StatusCode, headers: &HeaderMap, message: &str) -> Option<Duration> {
    if status != http::StatusCode::FORBIDDEN && status != http::StatusCode::TOO_MANY_REQUESTS {
        return None;
    }
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).map(str::trim);
    if let Some(seconds) = header("retry-after").and_then(|v| v.parse::<u64>().ok()) {
        return Some(Duration::from_secs(seconds));
    }
    if header("x-ratelimit-remaining") == Some("0") {
        let reset = header("x-ratelimit-reset").and_then(|v| v.parse::<i64>().ok())?;
        let now = jiff::Timestamp::now().as_second();
        // One second more: the reset time is whole seconds.
        return Some(Duration::from_secs(u64::try_from(reset - now).unwrap_or(0) + 1));
    }
    if status == http::StatusCode::TOO_MANY_REQUESTS || message.to_lowercase().contains("secondary rate limit") {
        // GitHub: without headers, wait at least a minute.
        return Some(Duration::from_secs(60));
    }
    None
}

/// GitHub's `message` (and validation `errors`) from an error body.
fn github_message(body: &str) -> String {
    let Ok(value) = serde_json::from_str::<Value>(body) else {
        return body.chars().take(200).collect();
    };
    let mut message = value.get("message").and_then(Value::as_str).unwrap_or("").replace('\n', " ");
    if let Some(errors) = value.get("errors").and_then(Value::as_array) {
        let details: Vec<String> = errors
            .iter()
            .map(|e| e.get("message").and_then(Value::as_str).map(str::to_owned).unwrap_or_else(|| e.to_string()))
            .collect();
        if !details.is_empty() {
            message.push_str(&format!(" ({})", details.join("; ")));
        }
    }
    message
}

/// The `rel="next"` URL of a `Link` header.
pub fn next_link(link: &str) -> Option<String> {
    link.split(',').find_map(|part| {
        let (url, params) = part.split_once(';')?;
        params
            .split(';')
            .any(|p| p.trim() == "rel=\"next\"")
            .then(|| url.trim().trim_start_matches('<').trim_end_matches('>').to_owned())
    })
}

/// Percent-encodes a query or path component.
pub fn encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Removes the token from a message, whatever produced it.
fn scrub(message: &str, token: &str) -> String {
    if token.is_empty() { message.to_owned() } else { message.replace(token, "***") }
}

fn chain(err: &dyn std::error::Error) -> String {
    // octocrab's own messages can carry a backtrace after a newline.
    crate::error::error_chain(err).lines().next().unwrap_or_default().to_owned()
}

fn humantime_secs(d: Duration) -> String {
    humantime::format_duration(Duration::from_secs(d.as_secs().max(1))).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_link_is_found_among_others() {
        let link = r#"<https://api.github.com/repositories/1/deployments?per_page=100&page=2>; rel="next", <https://api.github.com/repositories/1/deployments?per_page=100&page=5>; rel="last""#;
        assert_eq!(
            next_link(link).as_deref(),
            Some("https://api.github.com/repositories/1/deployments?per_page=100&page=2")
        );
        assert_eq!(next_link(r#"<https://x/?page=1>; rel="prev""#), None);
    }

    #[test]
    fn rate_limit_waits_follow_the_headers() {
        let mut headers = HeaderMap::new();
        headers.insert("retry-after", HeaderValue::from_static("7"));
        assert_eq!(rate_limit_wait(http::StatusCode::FORBIDDEN, &headers, ""), Some(Duration::from_secs(7)));
        let mut headers = HeaderMap::new();
        headers.insert("x-ratelimit-remaining", HeaderValue::from_static("0"));
        let reset = (jiff::Timestamp::now().as_second() + 30).to_string();
        headers.insert("x-ratelimit-reset", HeaderValue::from_str(&reset).expect("header"));
        let wait = rate_limit_wait(http::StatusCode::FORBIDDEN, &headers, "").expect("a wait");
        assert!((Duration::from_secs(29)..=Duration::from_secs(32)).contains(&wait), "{wait:?}");
        // A plain 403 (no permission) is not a rate limit.
        let mut headers = HeaderMap::new();
        headers.insert("x-ratelimit-remaining", HeaderValue::from_static("4999"));
        assert_eq!(
            rate_limit_wait(http::StatusCode::FORBIDDEN, &headers, "Resource not accessible by integration"),
            None
        );
        assert_eq!(rate_limit_wait(http::StatusCode::NOT_FOUND, &HeaderMap::new(), ""), None);
    }

    #[test]
    fn the_token_is_scrubbed_and_components_encoded() {
        assert_eq!(scrub("bad ghs_abc in ghs_abc", "ghs_abc"), "bad *** in ***");
        assert_eq!(encode("sev 1/high"), "sev%201%2Fhigh");
    }
}
