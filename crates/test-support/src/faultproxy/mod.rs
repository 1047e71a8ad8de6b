//! The one fault-injecting HTTP/1.1 proxy of the tests: it stands between
//! sluice and a provider (the embedded router's admin API, moto, the GitHub
//! fake) and breaks what the test asks it to break.
//!
//! Each request is read whole into a [`Request`]; then an ordered list of
//! [`Rule`]s is asked what to do with it. The first rule with an opinion
//! decides ([`Action`]): forward it, forward it and rewrite the answer,
//! answer without forwarding, hold it then forward it, or close the
//! connection without an answer. A request no rule has an opinion on is
//! forwarded. Forwarding goes through one HTTP client, under
//! [`UPSTREAM_TIMEOUT`].
//!
//! Two sets of rules are built on it:
//!
//! - `sluice-faultproxy` ([`cli`]): seeded random faults at set rates
//!   ([`rates`]), changed at run time over `/__faults`, for the end-to-end
//!   tests that run the step binaries;
//! - the AWS fault layer ([`crate::aws::FaultProxy`]): per-operation rules
//!   on decoded AWS calls (throttling and 5xx in AWS's formats, slow calls,
//!   target-health rewrites, the CodeDeploy fake), in-process ([`Proxy`]).
//!
//! Test tooling only: it forwards everything in plain HTTP and must never be
//! put in front of a real provider with real credentials.

pub mod cli;
pub mod rates;

use std::borrow::Cow;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Bytes, Incoming};
use hyper::header::{self, HeaderMap, HeaderValue};
use hyper::{Method, Response, StatusCode, Uri};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};

/// How long the upstream may take to answer a forwarded request: far above
/// what moto, the router and the GitHub fake take on a loaded machine, and
/// above every timeout of sluice's own clients, so that a slow upstream is
/// seen by sluice as slow, not as a proxy failure.
pub const UPSTREAM_TIMEOUT: Duration = Duration::from_secs(30);

/// The largest request body the proxy reads (16 MiB).
pub const MAX_BODY: usize = 16 << 20;

/// A request as the rules see it: read whole.
#[derive(Clone, Debug)]
pub struct Request {
    pub method: Method,
    /// The path and query, as received.
    pub uri: Uri,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Request {
    /// The path, without the query.
    pub fn path(&self) -> &str {
        self.uri.path()
    }

    /// The body as text (lossy).
    pub fn text(&self) -> Cow<'_, str> {
        String::from_utf8_lossy(&self.body)
    }

    /// A header's value, when it is text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// An answer: the upstream's, or one a rule made.
#[derive(Clone, Debug)]
pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Answer {
    /// An answer with a content type.
    pub fn new(status: StatusCode, content_type: &str, body: impl Into<Bytes>) -> Answer {
        Answer { status, headers: HeaderMap::new(), body: body.into() }
            .with_header(header::CONTENT_TYPE.as_str(), content_type)
    }

    /// The answer with one more header (replacing one of the same name); a
    /// name or value that is not valid HTTP is left out.
    pub fn with_header(mut self, name: &str, value: &str) -> Answer {
        if let (Ok(name), Ok(value)) = (header::HeaderName::from_bytes(name.as_bytes()), HeaderValue::from_str(value)) {
            self.headers.insert(name, value);
        }
        self
    }

    /// The body as text (lossy).
    pub fn text(&self) -> Cow<'_, str> {
        String::from_utf8_lossy(&self.body)
    }

    fn into_response(self) -> Response<Full<Bytes>> {
        let mut response = Response::new(Full::new(self.body));
        *response.status_mut() = self.status;
        *response.headers_mut() = self.headers;
        response
    }
}

/// Changes a forwarded answer before it goes back.
pub type Rewrite = Box<dyn FnOnce(&mut Answer) + Send>;

/// What a rule says about a request.
pub enum Action {
    /// No opinion: the next rule is asked; when none has one, the request
    /// is forwarded.
    Pass,
    /// Forward it, and change the answer before it goes back.
    Rewrite(Rewrite),
    /// Answer it without forwarding.
    Respond(Answer),
    /// Hold it this long, then forward it.
    Slow(Duration),
    /// Close the connection without an answer.
    Drop,
}

/// One rule: looks at a request and says what to do with it. Rules are
/// asked in the order they were added; any `Fn(&Request) -> Action` is one.
pub trait Rule: Send + Sync {
    fn decide(&self, request: &Request) -> Action;
}

impl<F: Fn(&Request) -> Action + Send + Sync> Rule for F {
    fn decide(&self, request: &Request) -> Action {
        self(request)
    }
}

/// What the proxy did by itself (the rules count their own faults).
#[derive(Debug, Default)]
pub struct Stats {
    forwarded: AtomicU64,
}

impl Stats {
    /// Requests forwarded whose upstream answer was relayed.
    pub fn forwarded(&self) -> u64 {
        self.forwarded.load(Relaxed)
    }
}

struct Inner {
    upstream: String,
    client: Client<HttpConnector, Full<Bytes>>,
    rules: Mutex<Vec<Arc<dyn Rule>>>,
    stats: Arc<Stats>,
}

/// The proxy's rules, client and upstream; cheap to clone (shared).
#[derive(Clone)]
pub struct Core {
    inner: Arc<Inner>,
}

impl Core {
    /// A proxy to `upstream` (`http://host:port`, optionally with a path
    /// prefix that each request's path is appended to), with no rules yet.
    pub fn new(upstream: &str) -> Core {
        Core {
            inner: Arc::new(Inner {
                upstream: upstream.trim_end_matches('/').to_owned(),
                client: Client::builder(TokioExecutor::new()).build_http(),
                rules: Mutex::default(),
                stats: Arc::default(),
            }),
        }
    }

    /// Adds a rule after the others.
    pub fn add(&self, rule: impl Rule + 'static) {
        self.inner.rules.lock().unwrap_or_else(|p| p.into_inner()).push(Arc::new(rule));
    }

    /// Removes every rule.
    pub fn clear(&self) {
        self.inner.rules.lock().unwrap_or_else(|p| p.into_inner()).clear();
    }

    /// What the proxy did by itself.
    pub fn stats(&self) -> Arc<Stats> {
        Arc::clone(&self.inner.stats)
    }

    /// Serves `listener` until the future is dropped. A failed accept is
    /// retried after a moment (file descriptors run out under load).
    pub async fn serve(&self, listener: tokio::net::TcpListener) {
        loop {
            let stream = match listener.accept().await {
                Ok((stream, _)) => stream,
                Err(_) => {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            };
            let core = self.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |request| {
                    let core = core.clone();
                    async move { core.handle(request).await }
                });
                // A service error closes the connection unanswered: that is
                // how `Action::Drop` drops it.
                let _ =
                    hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), service).await;
            });
        }
    }

    async fn handle(&self, request: hyper::Request<Incoming>) -> Result<Response<Full<Bytes>>, std::io::Error> {
        let (parts, body) = request.into_parts();
        let Ok(body) = Limited::new(body, MAX_BODY).collect().await.map(|b| b.to_bytes()) else {
            return Ok(Answer::new(StatusCode::BAD_REQUEST, "text/plain", "request body unreadable or over 16 MiB\n")
                .into_response());
        };
        let request = Request { method: parts.method, uri: parts.uri, headers: parts.headers, body };
        let rules: Vec<Arc<dyn Rule>> = self.inner.rules.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let mut rewrite = None;
        for rule in rules {
            match rule.decide(&request) {
                Action::Pass => continue,
                Action::Respond(answer) => return Ok(answer.into_response()),
                Action::Drop => return Err(std::io::Error::other("fault injected: connection dropped")),
                Action::Rewrite(f) => rewrite = Some(f),
                Action::Slow(delay) => tokio::time::sleep(delay).await,
            }
            break;
        }
        let mut answer = match self.forward(request).await {
            Ok(answer) => answer,
            Err(failed) => return Ok(failed.into_response()),
        };
        if let Some(rewrite) = rewrite {
            rewrite(&mut answer);
            // The body may have changed length; hyper sets it from the body.
            answer.headers.remove(header::CONTENT_LENGTH);
            answer.headers.remove(header::TRANSFER_ENCODING);
        }
        Ok(answer.into_response())
    }

    /// The upstream's answer, or the proxy's own (400, 502) when there is
    /// none.
    async fn forward(&self, request: Request) -> Result<Answer, Answer> {
        let failed = |status, why: String| Answer::new(status, "text/plain", format!("{why}\n"));
        let path = request.uri.path_and_query().map_or("/", |p| p.as_str());
        let Ok(uri) = format!("{}{path}", self.inner.upstream).parse::<Uri>() else {
            return Err(failed(StatusCode::BAD_REQUEST, "cannot build the upstream URI".into()));
        };
        let mut headers = request.headers;
        if let Some(authority) = uri.authority().and_then(|a| HeaderValue::from_str(a.as_str()).ok()) {
            headers.insert(header::HOST, authority);
        }
        let mut upstream = hyper::Request::new(Full::new(request.body));
        *upstream.method_mut() = request.method;
        *upstream.uri_mut() = uri;
        *upstream.headers_mut() = headers;
        let exchange = async {
            let response = self.inner.client.request(upstream).await.map_err(|e| format!("upstream: {e}"))?;
            let (parts, body) = response.into_parts();
            let body = body.collect().await.map_err(|e| format!("upstream body: {e}"))?.to_bytes();
            Ok::<_, String>(Answer { status: parts.status, headers: parts.headers, body })
        };
        match tokio::time::timeout(UPSTREAM_TIMEOUT, exchange).await {
            Ok(Ok(answer)) => {
                self.inner.stats.forwarded.fetch_add(1, Relaxed);
                Ok(answer)
            }
            Ok(Err(why)) => Err(failed(StatusCode::BAD_GATEWAY, why)),
            Err(_) => Err(failed(
                StatusCode::BAD_GATEWAY,
                format!("upstream: no answer within {}s", UPSTREAM_TIMEOUT.as_secs()),
            )),
        }
    }
}

/// A [`Core`] serving 127.0.0.1 on a port of its own, on its own thread
/// (for tests in-process); stops when dropped.
pub struct Proxy {
    /// `http://127.0.0.1:PORT`.
    pub endpoint: String,
    core: Core,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Proxy {
    /// Starts serving `core`.
    ///
    /// # Panics
    /// When no port or thread can be had (a broken test machine).
    pub fn start(core: Core) -> Proxy {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind the fault proxy");
        listener.set_nonblocking(true).expect("nonblocking");
        let endpoint = format!("http://{}", listener.local_addr().expect("addr"));
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let serving = core.clone();
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("proxy runtime");
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).expect("tokio listener");
                tokio::select! {
                    () = serving.serve(listener) => {}
                    _ = stopped => {}
                }
            });
        });
        Proxy { endpoint, core, stop: Some(stop), thread: Some(thread) }
    }

    /// The rules and counts of this proxy.
    pub fn core(&self) -> &Core {
        &self.core
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aws::http;

    /// An upstream made of the core itself: answers every request with its
    /// method, path and body.
    fn echo() -> Proxy {
        let core = Core::new("http://127.0.0.1:9");
        core.add(|r: &Request| {
            let text = format!("{} {} {}", r.method, r.uri, r.text());
            Action::Respond(Answer::new(StatusCode::OK, "text/plain", text).with_header("x-echo", "yes"))
        });
        Proxy::start(core)
    }

    #[test]
    fn without_rules_everything_is_forwarded_with_its_path_query_and_body() {
        let upstream = echo();
        let proxy = Proxy::start(Core::new(&format!("{}/prefix", upstream.endpoint)));
        let (status, body) = http(&proxy.endpoint, "POST", "/a/b?c=d", "hello").expect("answer");
        assert_eq!((status, body.as_str()), (200, "POST /prefix/a/b?c=d hello"));
        assert_eq!(proxy.core().stats().forwarded(), 1);
    }

    #[test]
    fn the_first_rule_with_an_opinion_decides() {
        let upstream = echo();
        let proxy = Proxy::start(Core::new(&upstream.endpoint));
        let core = proxy.core();
        core.add(|r: &Request| {
            if r.path() == "/pass" {
                Action::Pass
            } else {
                Action::Respond(Answer::new(StatusCode::IM_A_TEAPOT, "text/plain", "first"))
            }
        });
        core.add(|_: &Request| Action::Respond(Answer::new(StatusCode::CONFLICT, "text/plain", "second")));
        assert_eq!(http(&proxy.endpoint, "GET", "/x", "").expect("answer"), (418, "first".into()));
        assert_eq!(http(&proxy.endpoint, "GET", "/pass", "").expect("answer"), (409, "second".into()));
        assert_eq!(core.stats().forwarded(), 0, "answered by the rules");
        core.clear();
        assert_eq!(http(&proxy.endpoint, "GET", "/x", "").expect("answer").0, 200);
    }

    #[test]
    fn a_rewrite_changes_the_forwarded_answer_and_its_length() {
        let upstream = echo();
        let proxy = Proxy::start(Core::new(&upstream.endpoint));
        proxy.core().add(|_: &Request| {
            Action::Rewrite(Box::new(|a: &mut Answer| a.body = format!("{} and much more", a.text()).into()))
        });
        let (status, body) = http(&proxy.endpoint, "GET", "/r", "").expect("answer");
        assert_eq!((status, body.as_str()), (200, "GET /r  and much more"));
    }

    #[test]
    fn a_drop_closes_the_connection_unanswered_and_a_slow_call_is_held() {
        let upstream = echo();
        let proxy = Proxy::start(Core::new(&upstream.endpoint));
        proxy.core().add(|r: &Request| match r.path() {
            "/drop" => Action::Drop,
            "/slow" => Action::Slow(Duration::from_millis(300)),
            _ => Action::Pass,
        });
        // A connection closed without a status line: no status, no body.
        assert!(http(&proxy.endpoint, "GET", "/drop", "").is_ok_and(|(status, body)| status == 0 && body.is_empty()));
        let started = std::time::Instant::now();
        assert_eq!(http(&proxy.endpoint, "GET", "/slow", "").expect("answer").0, 200);
        assert!(started.elapsed() >= Duration::from_millis(300), "{:?}", started.elapsed());
    }

    #[test]
    fn an_unreachable_upstream_is_a_502_that_says_so() {
        let port = crate::aws::free_port();
        let proxy = Proxy::start(Core::new(&format!("http://127.0.0.1:{port}")));
        let (status, body) = http(&proxy.endpoint, "GET", "/", "").expect("answer");
        assert_eq!(status, 502);
        assert!(body.starts_with("upstream:"), "{body}");
    }
}
