//! The AWS fault layer: a proxy between the SDK and moto that, per
//! operation, answers with errors, slows calls, rewrites answers, or answers
//! for moto where it cannot act.

use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// One call as the proxy saw it.
#[derive(Clone, Debug)]
pub struct Call {
    /// `DescribeTargetHealth`, `CreateDeployment`, ...
    pub operation: String,
    /// The decoded form parameters (query protocol) or the JSON body text.
    pub params: Vec<(String, String)>,
    pub body: String,
    /// The protocol family, for error bodies.
    pub json: bool,
}

impl Call {
    /// A form parameter (query protocol).
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }
}

/// What the proxy does with a call.
pub enum Reply {
    /// Pass it to moto unchanged.
    Forward,
    /// Pass it to moto and change the answer's body.
    Rewrite(Box<dyn FnOnce(String) -> String + Send>),
    /// Answer without asking moto.
    Respond { status: u16, body: String },
    /// Wait this long, then pass it to moto.
    Slow(Duration),
}

/// A rule of the fault layer: looks at a call and says what to do.
pub type Rule = Arc<dyn Fn(&Call) -> Reply + Send + Sync>;

/// An HTTP proxy in front of moto on 127.0.0.1, on its own thread.
pub struct FaultProxy {
    pub endpoint: String,
    rules: Arc<Mutex<Vec<Rule>>>,
    log: Arc<Mutex<Vec<String>>>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl FaultProxy {
    /// Starts a proxy that forwards to `upstream` (moto).
    pub fn start(upstream: &str) -> FaultProxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the fault proxy");
        listener.set_nonblocking(true).expect("nonblocking");
        let endpoint = format!("http://{}", listener.local_addr().expect("addr"));
        let rules: Arc<Mutex<Vec<Rule>>> = Arc::default();
        let log: Arc<Mutex<Vec<String>>> = Arc::default();
        let (stop, stopped) = tokio::sync::oneshot::channel();
        let state = ProxyState {
            upstream: upstream.trim_end_matches('/').to_owned(),
            rules: rules.clone(),
            log: log.clone(),
            client: reqwest::Client::builder().timeout(Duration::from_secs(30)).build().expect("client"),
        };
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("proxy runtime");
            runtime.block_on(serve(listener, state, stopped));
        });
        FaultProxy { endpoint, rules, log, stop: Some(stop), thread: Some(thread) }
    }

    /// Adds a rule; rules are asked in the order they were added.
    pub fn add(&self, rule: Rule) {
        self.rules.lock().unwrap_or_else(|p| p.into_inner()).push(rule);
    }

    /// Removes every rule.
    pub fn clear(&self) {
        self.rules.lock().unwrap_or_else(|p| p.into_inner()).clear();
    }

    /// The operations seen so far, in order.
    pub fn calls(&self) -> Vec<String> {
        self.log.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// How often `operation` was called.
    pub fn count(&self, operation: &str) -> usize {
        self.calls().iter().filter(|c| *c == operation).count()
    }

    /// Answers the next `times` calls of `operation` with a throttling error.
    pub fn throttle(&self, operation: &str, times: usize) {
        self.fail(operation, times, 400, "Throttling", "Rate exceeded");
    }

    /// Answers the next `times` calls of `operation` with HTTP `status`.
    pub fn server_error(&self, operation: &str, times: usize, status: u16) {
        self.fail(operation, times, status, "ServiceUnavailable", "Service is unavailable, try again");
    }

    /// Answers the next `times` calls of `operation` with an error.
    pub fn fail(&self, operation: &str, times: usize, status: u16, code: &str, message: &str) {
        let left = Arc::new(Mutex::new(times));
        let (operation, code, message) = (operation.to_owned(), code.to_owned(), message.to_owned());
        self.add(Arc::new(move |call: &Call| {
            if call.operation != operation {
                return Reply::Forward;
            }
            let mut left = left.lock().unwrap_or_else(|p| p.into_inner());
            if *left == 0 {
                return Reply::Forward;
            }
            *left -= 1;
            Reply::Respond { status, body: error_body(call.json, &code, &message) }
        }));
    }

    /// Holds the next `times` calls of `operation` for `delay` before
    /// passing them on.
    pub fn slow(&self, operation: &str, times: usize, delay: Duration) {
        let left = Arc::new(Mutex::new(times));
        let operation = operation.to_owned();
        self.add(Arc::new(move |call: &Call| {
            let mut left = left.lock().unwrap_or_else(|p| p.into_inner());
            if call.operation != operation || *left == 0 {
                return Reply::Forward;
            }
            *left -= 1;
            Reply::Slow(delay)
        }));
    }

    /// Makes every target of `target_group` read `state` with `reason` in
    /// `DescribeTargetHealth` (moto reports all registered targets healthy).
    pub fn target_health(&self, target_group: &str, state: &str, reason: &str) {
        let (target_group, state, reason) = (target_group.to_owned(), state.to_owned(), reason.to_owned());
        self.add(Arc::new(move |call: &Call| {
            if call.operation != "DescribeTargetHealth" || call.param("TargetGroupArn") != Some(target_group.as_str()) {
                return Reply::Forward;
            }
            let (state, reason) = (state.clone(), reason.clone());
            Reply::Rewrite(Box::new(move |body: String| {
                let reason = if reason.is_empty() { String::new() } else { format!("<Reason>{reason}</Reason>") };
                body.replace("<State>healthy</State>", &format!("<State>{state}</State>{reason}"))
            }))
        }));
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// An AWS error body in the call's protocol, with a request id.
pub fn error_body(json: bool, code: &str, message: &str) -> String {
    if json {
        serde_json::json!({ "__type": code, "message": message }).to_string()
    } else {
        format!(
            "<ErrorResponse><Error><Type>Sender</Type><Code>{code}</Code><Message>{message}</Message></Error>\
             <RequestId>fault-proxy-0001</RequestId></ErrorResponse>"
        )
    }
}

#[derive(Clone)]
struct ProxyState {
    upstream: String,
    rules: Arc<Mutex<Vec<Rule>>>,
    log: Arc<Mutex<Vec<String>>>,
    client: reqwest::Client,
}

async fn serve(listener: TcpListener, state: ProxyState, mut stopped: tokio::sync::oneshot::Receiver<()>) {
    use hyper_util::rt::TokioIo;
    let listener = tokio::net::TcpListener::from_std(listener).expect("tokio listener");
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(_) => continue,
            },
            _ = &mut stopped => return,
        };
        let state = state.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |request| {
                let state = state.clone();
                async move { Ok::<_, std::convert::Infallible>(handle(state, request).await) }
            });
            let _ = hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), service).await;
        });
    }
}

async fn handle(
    state: ProxyState,
    request: hyper::Request<hyper::body::Incoming>,
) -> hyper::Response<http_body_util::Full<hyper::body::Bytes>> {
    use http_body_util::BodyExt;
    let (parts, body) = request.into_parts();
    let body = body.collect().await.map(|b| b.to_bytes()).unwrap_or_default();
    let text = String::from_utf8_lossy(&body).into_owned();
    let target = parts.headers.get("x-amz-target").and_then(|v| v.to_str().ok()).map(str::to_owned);
    let call = match &target {
        Some(target) => Call {
            operation: target.rsplit('.').next().unwrap_or(target).to_owned(),
            params: Vec::new(),
            body: text.clone(),
            json: true,
        },
        None => {
            let params: Vec<(String, String)> = form_urlencoded::parse(text.as_bytes()).into_owned().collect();
            let operation = params.iter().find(|(k, _)| k == "Action").map(|(_, v)| v.clone()).unwrap_or_default();
            Call { operation, params, body: text.clone(), json: false }
        }
    };
    state.log.lock().unwrap_or_else(|p| p.into_inner()).push(call.operation.clone());
    let rules: Vec<Rule> = state.rules.lock().unwrap_or_else(|p| p.into_inner()).clone();
    let mut rewrite = None;
    for rule in rules {
        match rule(&call) {
            Reply::Forward => continue,
            Reply::Respond { status, body } => {
                let content_type = if call.json { "application/x-amz-json-1.1" } else { "text/xml" };
                return respond(status, content_type, body.into_bytes().into());
            }
            Reply::Rewrite(f) => {
                rewrite = Some(f);
                break;
            }
            Reply::Slow(delay) => {
                tokio::time::sleep(delay).await;
                break;
            }
        }
    }
    let url = format!("{}{}", state.upstream, parts.uri.path_and_query().map_or("/", |p| p.as_str()));
    let mut forward = state.client.request(parts.method.clone(), &url).body(body);
    for (name, value) in &parts.headers {
        if name != "host" && name != "content-length" {
            forward = forward.header(name, value);
        }
    }
    match forward.send().await {
        Ok(answer) => {
            let status = answer.status().as_u16();
            let content_type =
                answer.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("text/xml").to_owned();
            let mut bytes = answer.bytes().await.unwrap_or_default();
            if let Some(f) = rewrite {
                bytes = f(String::from_utf8_lossy(&bytes).into_owned()).into_bytes().into();
            }
            respond(status, &content_type, bytes)
        }
        Err(e) => respond(502, "text/plain", format!("fault proxy: {e}").into_bytes().into()),
    }
}

fn respond(
    status: u16,
    content_type: &str,
    body: hyper::body::Bytes,
) -> hyper::Response<http_body_util::Full<hyper::body::Bytes>> {
    let mut response = hyper::Response::new(http_body_util::Full::new(body));
    *response.status_mut() = hyper::StatusCode::from_u16(status).unwrap_or(hyper::StatusCode::BAD_GATEWAY);
    if let Ok(value) = hyper::header::HeaderValue::from_str(content_type) {
        response.headers_mut().insert(hyper::header::CONTENT_TYPE, value);
    }
    response.headers_mut().insert("x-amzn-requestid", hyper::header::HeaderValue::from_static("fault-proxy-0001"));
    response
}
