//! Notifications: a Slack incoming webhook and a generic JSON webhook are
//! told when a gate blocks, traffic is rolled back, a release is promoted or
//! a step fails.
//!
//! Never fails a deployment: what goes wrong is returned as a warning for the
//! step to print. Bounded in time: the webhooks of one notification are sent
//! at once, each retried with backoff on transient failures (connection
//! errors, timeouts, 429 and 5xx), and all are given up when the configured
//! timeout has passed, so a hung webhook cannot hold a rollback.
//!
//! Webhook URLs are secrets. They are read from the variables named in
//! config, masked for the runner's log at once, and never written anywhere:
//! every message names a webhook by its variable, and errors that could carry
//! the URL are scrubbed.

use crate::ProviderError;
use crate::error::error_chain;
use crate::retry::Backoff;
use crate::timeouts;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use jiff::Timestamp;
use serde::Serialize;
use sluice_core::config::{NotifyConfig, NotifyEvent, WebhookKind};
use std::time::Duration;
use tokio::task::JoinSet;

/// Retries of one webhook: four attempts, waits from 0.25 s; all of them
/// within the notification's `timeout` (see [`timeouts::webhook_attempt`]).
pub const WEBHOOK_BACKOFF: Backoff =
    Backoff { attempts: 4, first: Duration::from_millis(250), max: Duration::from_secs(2) };

/// The `schema` of the JSON webhook body.
pub const SCHEMA: &str = "sluice.notification/v1";

/// What happened, as the JSON webhook receives it (documented in
/// docs/configuration.md; fields are only ever added).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Notification {
    /// Always `sluice.notification/v1`.
    pub schema: &'static str,
    /// `blocked`, `rolled_back`, `promoted` or `failed`.
    pub event: NotifyEvent,
    pub app: String,
    pub environment: String,
    /// The release; `null` when the step did not know it (a rollback
    /// without a record).
    pub version: Option<String>,
    pub commit: Option<String>,
    /// The step's decision: `block`, `fail` / `inconclusive` / `error` (an
    /// automatic rollback), `rollback`, `promoted`, `bad_input`,
    /// `provider_failure`.
    pub decision: String,
    /// Why, in one or a few sentences.
    pub reason: String,
    /// The step that sent it.
    pub step: String,
    /// Link to the workflow run.
    pub run_url: Option<String>,
    /// The deployment record's id.
    pub record_id: Option<String>,
    pub at: Timestamp,
    /// An environment of several targets (waves): the target that stopped
    /// the deployment (its checks failed, or its router did); absent
    /// otherwise.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
}

impl Notification {
    /// The Slack message: `text` (what notifications and screen readers
    /// show) and blocks with the same facts laid out.
    pub fn slack_body(&self) -> serde_json::Value {
        let (icon, what) = match self.event {
            NotifyEvent::Blocked => (":no_entry:", "Gate blocked"),
            NotifyEvent::RolledBack => (":rewind:", "Rolled back"),
            NotifyEvent::Promoted => (":white_check_mark:", "Promoted"),
            NotifyEvent::Failed => (":x:", "Step failed"),
        };
        let version = self.version.as_deref().unwrap_or("(unknown release)");
        let target = self.target.as_deref().map(|t| format!(" (target {})", slack_escape(t))).unwrap_or_default();
        let text = format!(
            "{icon} {what}: {} {} in {}{target}: {}",
            slack_escape(&self.app),
            slack_escape(version),
            slack_escape(&self.environment),
            slack_escape(&self.reason)
        );
        let bold_target =
            self.target.as_deref().map(|t| format!(" (target *{}*)", slack_escape(t))).unwrap_or_default();
        let mut context = vec![format!("step `{}`", slack_escape(&self.step))];
        if let Some(url) = &self.run_url {
            context.push(format!("<{}|workflow run>", slack_escape(url).replace('|', "%7C")));
        }
        if let Some(commit) = &self.commit {
            context.push(format!("commit `{}`", slack_escape(&commit[..commit.len().min(12)])));
        }
        if let Some(id) = &self.record_id {
            context.push(format!("record `{}`", slack_escape(id)));
        }
        serde_json::json!({
            "text": text,
            "blocks": [
                {
                    "type": "section",
                    "text": {
                        "type": "mrkdwn",
                        "text": format!(
                            "{icon} *{what}*: `{}` *{}* in *{}*{bold_target} ({})\n{}",
                            slack_escape(&self.app),
                            slack_escape(version),
                            slack_escape(&self.environment),
                            slack_escape(&self.decision),
                            slack_escape(&self.reason)
                        ),
                    },
                },
                { "type": "context", "elements": [ { "type": "mrkdwn", "text": context.join(" · ") } ] },
            ],
        })
    }
}

/// Slack's three control characters in message text.
fn slack_escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

/// One webhook, with its secret URL.
#[derive(Clone)]
pub struct Webhook {
    pub kind: WebhookKind,
    /// The variable the URL came from: the webhook's name in every message.
    pub name: String,
    url: String,
    pub events: Vec<NotifyEvent>,
}

impl Webhook {
    pub fn new(kind: WebhookKind, name: &str, url: &str, events: Vec<NotifyEvent>) -> Webhook {
        Webhook { kind, name: name.to_owned(), url: url.to_owned(), events }
    }
}

impl std::fmt::Debug for Webhook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Webhook({:?}, ${})", self.kind, self.name)
    }
}

/// How one webhook fared.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Delivery {
    /// The webhook's variable name.
    pub webhook: String,
    /// Attempts made, or why it was given up (never with the URL).
    pub outcome: Result<u32, String>,
}

/// Sends notifications to the configured webhooks.
#[derive(Debug)]
pub struct Notifier {
    webhooks: Vec<Webhook>,
    timeout: Duration,
    backoff: Backoff,
}

type HttpsClient = Client<hyper_rustls::HttpsConnector<HttpConnector>, Full<Bytes>>;

impl Notifier {
    /// The webhooks of `config`, their URLs read with `lookup` (the
    /// environment, through `sluice_core::env`). Returns warnings for
    /// webhooks whose variable is unset or does not hold an http(s) URL.
    pub fn from_config(config: &NotifyConfig, lookup: impl Fn(&str) -> Option<String>) -> (Notifier, Vec<String>) {
        let mut warnings = Vec::new();
        let mut webhooks = Vec::new();
        for hook in &config.webhooks {
            match lookup(&hook.url_env) {
                None => warnings.push(format!(
                    "notify: ${} is not set; no {} notifications are sent to it",
                    hook.url_env,
                    kind_name(hook.kind)
                )),
                Some(url) if !(url.starts_with("https://") || url.starts_with("http://")) => warnings.push(format!(
                    "notify: ${} does not hold an http(s) URL; no {} notifications are sent to it",
                    hook.url_env,
                    kind_name(hook.kind)
                )),
                Some(url) => webhooks.push(Webhook::new(hook.kind, &hook.url_env, url.trim(), hook.on.clone())),
            }
        }
        (Notifier { webhooks, timeout: config.timeout, backoff: WEBHOOK_BACKOFF }, warnings)
    }

    /// A notifier over given webhooks (tests, and callers with their own URLs).
    pub fn new(webhooks: Vec<Webhook>, timeout: Duration, backoff: Backoff) -> Notifier {
        Notifier { webhooks, timeout, backoff }
    }

    /// The secret URLs, for the caller to mask in the runner's log.
    pub fn secrets(&self) -> impl Iterator<Item = &str> {
        self.webhooks.iter().map(|w| w.url.as_str())
    }

    /// Whether any webhook wants `event`.
    pub fn wants(&self, event: NotifyEvent) -> bool {
        self.webhooks.iter().any(|w| w.events.contains(&event))
    }

    /// Sends `n` to every webhook that wants its event, all at once, and
    /// gives up on those still going when the timeout has passed. Never
    /// fails: the deliveries say how each went.
    pub async fn send(&self, n: &Notification) -> Vec<Delivery> {
        let targets: Vec<&Webhook> = self.webhooks.iter().filter(|w| w.events.contains(&n.event)).collect();
        if targets.is_empty() {
            return Vec::new();
        }
        let client = match client(self.timeout) {
            Ok(client) => client,
            Err(e) => {
                return targets
                    .iter()
                    .map(|w| Delivery { webhook: w.name.clone(), outcome: Err(format!("cannot set up HTTPS: {e}")) })
                    .collect();
            }
        };
        let per_attempt = timeouts::webhook_attempt(self.timeout);
        let mut tasks = JoinSet::new();
        for webhook in &targets {
            let body = match webhook.kind {
                WebhookKind::Slack => n.slack_body(),
                WebhookKind::Json => serde_json::to_value(n).unwrap_or_default(),
            };
            let (client, webhook, backoff) = (client.clone(), (*webhook).clone(), self.backoff);
            tasks.spawn(async move {
                let outcome = deliver(&client, &webhook, &body, per_attempt, backoff).await;
                Delivery { webhook: webhook.name.clone(), outcome }
            });
        }
        let deadline = tokio::time::Instant::now() + self.timeout;
        let mut deliveries = Vec::new();
        while let Ok(Some(joined)) = tokio::time::timeout_at(deadline, tasks.join_next()).await {
            if let Ok(delivery) = joined {
                deliveries.push(delivery);
            }
        }
        tasks.abort_all();
        for webhook in targets {
            if !deliveries.iter().any(|d| d.webhook == webhook.name) {
                deliveries.push(Delivery {
                    webhook: webhook.name.clone(),
                    outcome: Err(format!(
                        "no answer within {}; given up so the step is not held",
                        humantime_secs(self.timeout)
                    )),
                });
            }
        }
        deliveries
    }
}

fn kind_name(kind: WebhookKind) -> &'static str {
    match kind {
        WebhookKind::Slack => "Slack",
        WebhookKind::Json => "JSON",
    }
}

fn humantime_secs(d: Duration) -> String {
    format!("{}s", d.as_secs_f64())
}

fn client(timeout: Duration) -> std::io::Result<HttpsClient> {
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    http.set_connect_timeout(Some(timeout.min(timeouts::WEBHOOK_CONNECT)));
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_provider_and_native_roots(rustls::crypto::ring::default_provider())?
        .https_or_http()
        .enable_http1()
        .wrap_connector(http);
    Ok(Client::builder(TokioExecutor::new()).pool_max_idle_per_host(0).build(https))
}

/// POSTs `body` until it is accepted (2xx), a permanent error comes back, or
/// the attempts run out.
async fn deliver(
    client: &HttpsClient,
    webhook: &Webhook,
    body: &serde_json::Value,
    per_attempt: Duration,
    backoff: Backoff,
) -> Result<u32, String> {
    let bytes = Bytes::from(serde_json::to_vec(body).unwrap_or_default());
    let attempts = std::sync::atomic::AtomicU32::new(0);
    let result = backoff
        .run(|| {
            attempts.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            post(client, webhook, bytes.clone(), per_attempt)
        })
        .await;
    let made = attempts.load(std::sync::atomic::Ordering::Relaxed);
    result.map(|()| made).map_err(|e| scrub(&e.to_string(), &webhook.url, &webhook.name))
}

async fn post(
    client: &HttpsClient,
    webhook: &Webhook,
    body: Bytes,
    per_attempt: Duration,
) -> Result<(), ProviderError> {
    let fail = |message: String, transient: bool| ProviderError {
        provider: "webhook",
        operation: format!("notify ${}", webhook.name),
        message,
        transient,
        attempts: 1,
    };
    let request = hyper::Request::post(webhook.url.as_str())
        .header(hyper::header::CONTENT_TYPE, "application/json")
        .header(hyper::header::USER_AGENT, concat!("sluice/", env!("CARGO_PKG_VERSION")))
        .body(Full::new(body))
        .map_err(|_| fail("the URL is not a valid http(s) URL".into(), false))?;
    let exchange = async {
        let response = client.request(request).await.map_err(|e| fail(error_chain(&e), true))?;
        let status = response.status();
        // Read (and drop) the answer so the connection closes cleanly.
        let answer = response.into_body().collect().await.map(|b| b.to_bytes()).unwrap_or_default();
        if status.is_success() {
            return Ok(());
        }
        let text = String::from_utf8_lossy(&answer[..answer.len().min(200)]).trim().to_owned();
        let transient = status.is_server_error() || status == hyper::StatusCode::TOO_MANY_REQUESTS;
        Err(fail(
            format!("HTTP {status}{}", if text.is_empty() { String::new() } else { format!(": {text}") }),
            transient,
        ))
    };
    match tokio::time::timeout(per_attempt, exchange).await {
        Ok(result) => result,
        Err(_) => Err(fail(format!("no answer within {}", humantime_secs(per_attempt)), true)),
    }
}

/// Removes the URL, and its path where long enough to hold a token
/// (Slack's `T…/B…/…`), from a message.
fn scrub(message: &str, url: &str, name: &str) -> String {
    let mut text = message.replace(url, &format!("${name}"));
    if let Some(rest) = url.split_once("://").map(|(_, r)| r)
        && let Some((_, path)) = rest.split_once('/')
        && path.len() >= 12
    {
        text = text.replace(path, "…");
    }
    text
}

#[cfg(test)]
mod tests;
