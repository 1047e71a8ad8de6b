//! Against real HTTP servers on 127.0.0.1 that record what they receive.

use super::*;
use std::sync::{Arc, Mutex};
use std::time::Instant;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

#[derive(Clone, Copy, Debug)]
enum Answer {
    Ok,
    Status(u16),
    /// Reads the request, then never answers.
    Hang,
}

#[derive(Debug)]
struct Received {
    path: String,
    content_type: Option<String>,
    body: serde_json::Value,
}

struct Server {
    url: String,
    received: Arc<Mutex<Vec<Received>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Server {
    /// Answers the n-th request with `script[n]`, later ones with `then`.
    async fn start(path: &str, script: Vec<Answer>, then: Answer) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("http://{}{path}", listener.local_addr().expect("addr"));
        let received = Arc::new(Mutex::new(Vec::new()));
        let log = received.clone();
        let task = tokio::spawn(async move {
            let mut n = 0;
            while let Ok((mut socket, _)) = listener.accept().await {
                let answer = script.get(n).copied().unwrap_or(then);
                n += 1;
                let log = log.clone();
                tokio::spawn(async move {
                    let Some(request) = read_request(&mut socket).await else { return };
                    log.lock().expect("log").push(request);
                    let reply = match answer {
                        Answer::Ok => "HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok".to_owned(),
                        Answer::Status(s) => {
                            format!(
                                "HTTP/1.1 {s} Oops\r\ncontent-length: 12\r\nconnection: close\r\n\r\nno_service\r\n"
                            )
                        }
                        Answer::Hang => {
                            tokio::time::sleep(Duration::from_secs(3600)).await;
                            return;
                        }
                    };
                    let _ = socket.write_all(reply.as_bytes()).await;
                    let _ = socket.shutdown().await;
                });
            }
        });
        Server { url, received, task }
    }

    fn received(&self) -> std::sync::MutexGuard<'_, Vec<Received>> {
        self.received.lock().expect("log")
    }
}

async fn read_request(socket: &mut tokio::net::TcpStream) -> Option<Received> {
    let mut data = Vec::new();
    let mut buf = [0u8; 4096];
    let head_end = loop {
        let n = socket.read(&mut buf).await.ok()?;
        if n == 0 {
            return None;
        }
        data.extend_from_slice(&buf[..n]);
        if let Some(i) = data.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
    };
    let head = String::from_utf8_lossy(&data[..head_end]).into_owned();
    let header = |name: &str| {
        head.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case(name).then(|| v.trim().to_owned())
        })
    };
    let length: usize = header("content-length")?.parse().ok()?;
    while data.len() < head_end + length {
        let n = socket.read(&mut buf).await.ok()?;
        if n == 0 {
            return None;
        }
        data.extend_from_slice(&buf[..n]);
    }
    let path = head.split_whitespace().nth(1)?.to_owned();
    let body = serde_json::from_slice(&data[head_end..head_end + length]).ok()?;
    Some(Received { path, content_type: header("content-type"), body })
}

fn notification(event: NotifyEvent) -> Notification {
    Notification {
        schema: SCHEMA,
        event,
        app: "shop".into(),
        environment: "prd".into(),
        version: Some("v1.4.2".into()),
        commit: Some("0123456789abcdef0123456789abcdef01234567".into()),
        decision: "fail".into(),
        reason: "stage 2 at 25%: errors 4.1% > 1% <b>&</b>".into(),
        step: "shift-traffic".into(),
        run_url: Some("https://github.com/acme/shop/actions/runs/42".into()),
        record_id: Some("shop-prd-v1.4.2-20260511T080000Z".into()),
        at: "2026-05-11T08:00:00Z".parse().expect("ts"),
        target: None,
    }
}

fn quick() -> Backoff {
    Backoff { attempts: 4, first: Duration::from_millis(10), max: Duration::from_millis(20) }
}

fn notifier(hooks: Vec<Webhook>, timeout: Duration) -> Notifier {
    Notifier::new(hooks, timeout, quick())
}

#[tokio::test]
async fn the_json_webhook_receives_the_documented_body() {
    let server = Server::start("/hooks/deploy", vec![], Answer::Ok).await;
    let n = notifier(
        vec![Webhook::new(WebhookKind::Json, "DEPLOY_WEBHOOK_URL", &server.url, NotifyEvent::all())],
        Duration::from_secs(5),
    );
    let deliveries = n.send(&notification(NotifyEvent::RolledBack)).await;
    assert_eq!(deliveries, [Delivery { webhook: "DEPLOY_WEBHOOK_URL".into(), outcome: Ok(1) }]);
    let received = server.received();
    assert_eq!(received.len(), 1);
    assert_eq!(received[0].path, "/hooks/deploy");
    assert_eq!(received[0].content_type.as_deref(), Some("application/json"));
    assert_eq!(
        received[0].body,
        serde_json::json!({
            "schema": "sluice.notification/v1",
            "event": "rolled_back",
            "app": "shop",
            "environment": "prd",
            "version": "v1.4.2",
            "commit": "0123456789abcdef0123456789abcdef01234567",
            "decision": "fail",
            "reason": "stage 2 at 25%: errors 4.1% > 1% <b>&</b>",
            "step": "shift-traffic",
            "run_url": "https://github.com/acme/shop/actions/runs/42",
            "record_id": "shop-prd-v1.4.2-20260511T080000Z",
            "at": "2026-05-11T08:00:00Z"
        })
    );
}

#[tokio::test]
async fn slack_gets_text_and_blocks_with_its_characters_escaped() {
    let server = Server::start("/services/T000/B000/XXXX", vec![], Answer::Ok).await;
    let n = notifier(
        vec![Webhook::new(WebhookKind::Slack, "SLACK_WEBHOOK_URL", &server.url, NotifyEvent::all())],
        Duration::from_secs(5),
    );
    assert_eq!(n.send(&notification(NotifyEvent::RolledBack)).await[0].outcome, Ok(1));
    let body = &server.received()[0].body;
    assert_eq!(
        body["text"],
        ":rewind: Rolled back: shop v1.4.2 in prd: stage 2 at 25%: errors 4.1% &gt; 1% &lt;b&gt;&amp;&lt;/b&gt;"
    );
    assert_eq!(body["blocks"][0]["type"], "section");
    assert_eq!(body["blocks"][0]["text"]["type"], "mrkdwn");
    assert!(
        body["blocks"][0]["text"]["text"]
            .as_str()
            .is_some_and(|t| t.starts_with(":rewind: *Rolled back*: `shop` *v1.4.2* in *prd* (fail)\n"))
    );
    assert_eq!(
        body["blocks"][1]["elements"][0]["text"],
        "step `shift-traffic` · <https://github.com/acme/shop/actions/runs/42|workflow run> · commit `0123456789ab` · \
         record `shop-prd-v1.4.2-20260511T080000Z`"
    );
}

#[tokio::test]
async fn a_deployment_stopped_by_one_of_its_targets_names_it_to_both_webhooks() {
    let json = Server::start("/hook", vec![], Answer::Ok).await;
    let slack = Server::start("/slack", vec![], Answer::Ok).await;
    let n = notifier(
        vec![
            Webhook::new(WebhookKind::Json, "HOOK", &json.url, NotifyEvent::all()),
            Webhook::new(WebhookKind::Slack, "SLACK", &slack.url, NotifyEvent::all()),
        ],
        Duration::from_secs(5),
    );
    let mut stopped = notification(NotifyEvent::RolledBack);
    stopped.target = Some("eu-west-1".into());
    stopped.reason = "target eu-west-1 in wave 2: errors 4.1% > 1%".into();
    assert!(n.send(&stopped).await.iter().all(|d| d.outcome == Ok(1)));
    assert_eq!(json.received()[0].body["target"], "eu-west-1");
    let body = slack.received()[0].body.clone();
    assert_eq!(
        body["text"],
        ":rewind: Rolled back: shop v1.4.2 in prd (target eu-west-1): target eu-west-1 in wave 2: errors 4.1% &gt; 1%"
    );
    assert!(
        body["blocks"][0]["text"]["text"].as_str().is_some_and(
            |t| t.starts_with(":rewind: *Rolled back*: `shop` *v1.4.2* in *prd* (target *eu-west-1*) (fail)\n")
        ),
        "{body}"
    );
    // Without targets: no `target` key at all (the documented body is unchanged).
    let plain = Server::start("/hook", vec![], Answer::Ok).await;
    let n =
        notifier(vec![Webhook::new(WebhookKind::Json, "HOOK", &plain.url, NotifyEvent::all())], Duration::from_secs(5));
    n.send(&notification(NotifyEvent::RolledBack)).await;
    assert!(plain.received()[0].body.get("target").is_none());
}

#[tokio::test]
async fn a_webhook_that_fails_then_succeeds_is_retried() {
    let server = Server::start("/hook", vec![Answer::Status(500), Answer::Status(503)], Answer::Ok).await;
    let n = notifier(
        vec![Webhook::new(WebhookKind::Json, "HOOK", &server.url, NotifyEvent::all())],
        Duration::from_secs(5),
    );
    let deliveries = n.send(&notification(NotifyEvent::Promoted)).await;
    assert_eq!(deliveries[0].outcome, Ok(3));
    let received = server.received();
    assert_eq!(received.len(), 3);
    assert!(received.iter().all(|r| r.body["event"] == "promoted"), "the same body each time");
}

#[tokio::test]
async fn a_rate_limited_webhook_is_retried_and_a_permanent_error_is_not() {
    let limited = Server::start("/hook", vec![Answer::Status(429)], Answer::Ok).await;
    let gone = Server::start("/hook", vec![], Answer::Status(404)).await;
    let n = notifier(
        vec![
            Webhook::new(WebhookKind::Slack, "LIMITED", &limited.url, NotifyEvent::all()),
            Webhook::new(WebhookKind::Slack, "GONE", &gone.url, NotifyEvent::all()),
        ],
        Duration::from_secs(5),
    );
    let deliveries = n.send(&notification(NotifyEvent::Blocked)).await;
    let outcome = |name: &str| deliveries.iter().find(|d| d.webhook == name).map(|d| d.outcome.clone());
    assert_eq!(outcome("LIMITED"), Some(Ok(2)));
    let err = outcome("GONE").expect("delivery").expect_err("404 is permanent");
    assert_eq!(err, "webhook failed to notify $GONE: HTTP 404 Not Found: no_service");
    assert_eq!(gone.received().len(), 1);
}

#[tokio::test]
async fn a_hung_webhook_is_given_up_in_time_and_the_others_still_get_theirs() {
    let hung = Server::start("/hook", vec![], Answer::Hang).await;
    let fine = Server::start("/hook", vec![], Answer::Ok).await;
    let n = notifier(
        vec![
            Webhook::new(WebhookKind::Json, "HUNG", &hung.url, NotifyEvent::all()),
            Webhook::new(WebhookKind::Json, "FINE", &fine.url, NotifyEvent::all()),
        ],
        Duration::from_secs(1),
    );
    let started = Instant::now();
    let deliveries = n.send(&notification(NotifyEvent::RolledBack)).await;
    let took = started.elapsed();
    assert!(took < Duration::from_millis(1500), "took {took:?} with a 1s timeout");
    let outcome = |name: &str| deliveries.iter().find(|d| d.webhook == name).map(|d| d.outcome.clone());
    assert_eq!(outcome("FINE"), Some(Ok(1)));
    let err = outcome("HUNG").expect("delivery").expect_err("hung");
    assert!(err.contains("no answer within"), "{err}");
    assert!(!hung.received().is_empty(), "the hung server got the request");
}

#[tokio::test]
async fn the_url_never_appears_in_what_is_reported() {
    let secret = "T000/B000/s3cr3tT0k3n";
    let failing = Server::start(&format!("/services/{secret}"), vec![], Answer::Status(500)).await;
    // A closed port: the connection error must not carry the URL either.
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        format!("http://{}/services/{secret}", listener.local_addr().expect("addr"))
    };
    let n = notifier(
        vec![
            Webhook::new(WebhookKind::Slack, "SLACK_WEBHOOK_URL", &failing.url, NotifyEvent::all()),
            Webhook::new(WebhookKind::Json, "DEPLOY_WEBHOOK_URL", &closed, NotifyEvent::all()),
        ],
        Duration::from_secs(5),
    );
    let deliveries = n.send(&notification(NotifyEvent::Failed)).await;
    assert_eq!(deliveries.len(), 2);
    for d in &deliveries {
        let err = d.outcome.clone().expect_err("fails");
        assert!(!err.contains("s3cr3t") && !err.contains("/services/"), "{err}");
        assert!(err.contains(&format!("${}", d.webhook)), "{err}");
        assert!(err.ends_with("(after 4 attempts)"), "{err}");
    }
    assert_eq!(failing.received().len(), 4);
    assert!(!format!("{n:?}").contains("s3cr3t"));
}

#[tokio::test]
async fn events_are_filtered_and_unset_variables_are_warned_about() {
    let server = Server::start("/hook", vec![], Answer::Ok).await;
    let config = NotifyConfig {
        timeout: Duration::from_secs(5),
        webhooks: vec![
            sluice_core::config::WebhookConfig {
                kind: WebhookKind::Json,
                url_env: "PROMOTIONS_URL".into(),
                on: vec![NotifyEvent::Promoted],
            },
            sluice_core::config::WebhookConfig {
                kind: WebhookKind::Slack,
                url_env: "UNSET_URL".into(),
                on: NotifyEvent::all(),
            },
            sluice_core::config::WebhookConfig {
                kind: WebhookKind::Slack,
                url_env: "NOT_A_URL".into(),
                on: NotifyEvent::all(),
            },
        ],
    };
    let url = server.url.clone();
    let (n, warnings) = Notifier::from_config(&config, |name| match name {
        "PROMOTIONS_URL" => Some(url.clone()),
        "NOT_A_URL" => Some("hooks.example/x".into()),
        _ => None,
    });
    assert_eq!(
        warnings,
        [
            "notify: $UNSET_URL is not set; no Slack notifications are sent to it",
            "notify: $NOT_A_URL does not hold an http(s) URL; no Slack notifications are sent to it"
        ]
    );
    assert!(!n.wants(NotifyEvent::Blocked));
    assert!(n.send(&notification(NotifyEvent::Blocked)).await.is_empty());
    assert!(server.received().is_empty());
    assert_eq!(n.send(&notification(NotifyEvent::Promoted)).await[0].outcome, Ok(1));
    assert_eq!(n.secrets().collect::<Vec<_>>(), [server.url.as_str()]);
}
