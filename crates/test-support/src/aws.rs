//! Test support for the AWS providers: the moto
//! emulator, fixtures made through the real SDK, and a fault layer.
//!
//! - [`moto`] starts one `moto_server` per test process on a free 127.0.0.1
//!   port, hands it to one test at a time, and resets it (`POST
//!   /moto-api/reset`) before each. The server stops when the test process
//!   ends (it is tied to a pipe the process holds). When `moto_server` is not
//!   on PATH the tests are skipped with a message, except in CI (`CI` or
//!   `GITHUB_ACTIONS` set), where that is a failure.
//! - [`create_alb`] builds a load balancer, two target groups with one
//!   target each, an HTTP listener and a rule through the SDK.
//! - [`FaultProxy`] stands between the SDK and moto and, per operation,
//!   answers with throttling or 5xx errors, rewrites target health (moto
//!   reports every registered target healthy), or answers for moto where it
//!   cannot act. It logs every operation it saw, so tests can count retries.
//!
//! Test code only: nothing in the step binaries uses it.

use aws_config::SdkConfig;
use aws_sdk_elasticloadbalancingv2::Client as Elbv2;
use aws_sdk_elasticloadbalancingv2::config::Credentials;
use aws_sdk_elasticloadbalancingv2::types::{
    Action, ActionTypeEnum, ForwardActionConfig, ProtocolEnum, RuleCondition, TargetDescription, TargetGroupTuple,
    TargetTypeEnum,
};
use sluice_providers::aws::{AwsSettings, loader};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

/// The region every test uses.
pub const REGION: &str = "us-east-1";

struct Server {
    endpoint: String,
    // Held for the life of the process: when the process ends, the pipe
    // closes and the wrapper shell stops moto_server.
    _stdin: Mutex<ChildStdin>,
    _child: Mutex<Child>,
}

static SERVER: OnceLock<Result<Server, String>> = OnceLock::new();
static TURN: Mutex<()> = Mutex::new(());

/// One test's exclusive use of the moto server, reset when handed out.
pub struct Moto {
    pub endpoint: String,
    _turn: MutexGuard<'static, ()>,
}

impl Moto {
    /// An SDK config for moto: the production loader (retries, timeouts,
    /// HTTP client) with fixed test credentials, pointed at `endpoint`.
    pub async fn sdk_config(&self) -> SdkConfig {
        sdk_config(&self.endpoint).await
    }

    /// Resets every moto backend.
    pub fn reset(&self) {
        let (status, body) = http(&self.endpoint, "POST", "/moto-api/reset", "").expect("moto answers a reset");
        assert_eq!(status, 200, "moto reset failed: {body}");
    }
}

/// An SDK config pointed at `endpoint` with fixed test credentials.
pub async fn sdk_config(endpoint: &str) -> SdkConfig {
    sdk_config_with(AwsSettings {
        region: Some(REGION.into()),
        endpoint_url: Some(endpoint.to_owned()),
        timeouts: None,
    })
    .await
}

/// An SDK config from `settings` with fixed test credentials.
pub async fn sdk_config_with(settings: AwsSettings) -> SdkConfig {
    loader(&settings)
        .credentials_provider(Credentials::new("testing", "testing", None, None, "sluice-tests"))
        .load()
        .await
}

/// Credentials the step binaries get in tests: moto accepts any, and these
/// are distinctive enough that a test can grep every output for them.
pub const TEST_ACCESS_KEY_ID: &str = "AKIASLUICETESTKEY7Q2W";
pub const TEST_SECRET_ACCESS_KEY: &str = "sLuIcE/tEsT+sEcReT/9f3c1a7b5d2e8f4a6c0b";

/// The environment variables that point a step binary at `endpoint`.
pub fn step_env(endpoint: &str) -> Vec<(&'static str, String)> {
    vec![
        ("AWS_ENDPOINT_URL", endpoint.to_owned()),
        ("AWS_ACCESS_KEY_ID", TEST_ACCESS_KEY_ID.into()),
        ("AWS_SECRET_ACCESS_KEY", TEST_SECRET_ACCESS_KEY.into()),
        ("AWS_REGION", REGION.into()),
        // Keep the runner's own AWS setup out of the tests.
        ("AWS_CONFIG_FILE", "/dev/null".into()),
        ("AWS_SHARED_CREDENTIALS_FILE", "/dev/null".into()),
        ("AWS_EC2_METADATA_DISABLED", "true".into()),
    ]
}

/// The moto server for this test, reset; `None` (with a message) when
/// moto_server is not installed outside CI.
///
/// # Panics
/// In CI when moto_server is missing or does not start.
pub fn moto() -> Option<Moto> {
    let turn = TURN.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    let server = SERVER.get_or_init(start_server);
    match server {
        Ok(server) => {
            let moto = Moto { endpoint: server.endpoint.clone(), _turn: turn };
            moto.reset();
            Some(moto)
        }
        Err(why) if sluice_core::env::in_ci() => {
            panic!(
                "{why}; CI must run the AWS tests: scripts/setup-tools.sh (run by scripts/test.sh) installs moto with pip"
            )
        }
        Err(why) => {
            eprintln!("skipped: {why} (pip install 'moto[server]==5.2.5' to run the AWS tests)");
            None
        }
    }
}

fn start_server() -> Result<Server, String> {
    let found = Command::new("sh").args(["-c", "command -v moto_server"]).output();
    if !found.is_ok_and(|o| o.status.success()) {
        return Err("moto_server is not on PATH".into());
    }
    let port = free_port();
    let log = std::env::temp_dir().join(format!("sluice-moto-{}-{port}.log", std::process::id()));
    let mut child = Command::new("sh")
        .args([
            "-c",
            "moto_server -H 127.0.0.1 -p \"$0\" >\"$1\" 2>&1 & m=$!; read _line; kill $m 2>/dev/null; wait $m",
            &port.to_string(),
        ])
        .arg(&log)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot start moto_server: {e}"))?;
    let stdin = child.stdin.take().ok_or("no stdin pipe to moto's wrapper")?;
    let endpoint = format!("http://127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok((200, _)) = http(&endpoint, "GET", "/moto-api/", "") {
            break;
        }
        if let Ok(Some(status)) = child.try_wait() {
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            return Err(format!("moto_server exited ({status}): {text}"));
        }
        if Instant::now() > deadline {
            return Err(format!("moto_server did not answer on {endpoint} within 60s (log: {})", log.display()));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Ok(Server { endpoint, _stdin: Mutex::new(stdin), _child: Mutex::new(child) })
}

/// A port that was free a moment ago.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("a free port on 127.0.0.1")
}

/// A one-shot HTTP/1.1 request with timeouts (no client library needed).
pub fn http(endpoint: &str, method: &str, path: &str, body: &str) -> std::io::Result<(u16, String)> {
    let addr: SocketAddr = endpoint
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .parse()
        .map_err(|e| std::io::Error::other(format!("{endpoint}: {e}")))?;
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    stream.set_write_timeout(Some(Duration::from_secs(5)))?;
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    let status = response.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    let body = response.split_once("\r\n\r\n").map(|(_, b)| b.to_owned()).unwrap_or_default();
    Ok((status, body))
}

/// A query-protocol call that the SDK crates sluice depends on cannot make
/// (EC2): form-encoded, with an authorization header that names the service
/// so moto routes it (moto does not check signatures).
pub fn query(endpoint: &str, service: &str, params: &[(&str, &str)]) -> String {
    let body: Vec<String> = params.iter().map(|(k, v)| format!("{k}={}", encode(v))).collect();
    let body = body.join("&");
    let addr = endpoint.trim_start_matches("http://").trim_end_matches('/');
    let mut stream = TcpStream::connect(addr).expect("connect to moto");
    stream.set_read_timeout(Some(Duration::from_secs(30))).expect("timeout");
    write!(
        stream,
        "POST / HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/x-www-form-urlencoded\r\n\
         Authorization: AWS4-HMAC-SHA256 Credential=testing/20260101/{REGION}/{service}/aws4_request, SignedHeaders=host, Signature=0\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .expect("write to moto");
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("read from moto");
    response
}

fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Every `<tag>value</tag>` in an XML text, in order.
pub fn xml_values(xml: &str, tag: &str) -> Vec<String> {
    let open = format!("<{tag}>");
    let close = format!("</{tag}>");
    let mut values = Vec::new();
    let mut rest = xml;
    while let Some(start) = rest.find(&open) {
        rest = &rest[start + open.len()..];
        let Some(end) = rest.find(&close) else { break };
        values.push(rest[..end].to_owned());
        rest = &rest[end + close.len()..];
    }
    values
}

/// What [`create_alb`] made.
#[derive(Clone, Debug)]
pub struct AlbFixture {
    pub load_balancer: String,
    pub listener: String,
    /// A rule (priority 10, path `/api/*`) forwarding to blue.
    pub rule: String,
    /// The stable target group at first, with one healthy target.
    pub blue: String,
    /// The candidate target group at first, with one healthy target.
    pub green: String,
}

/// Creates an internet-facing ALB in moto's default VPC: target groups
/// `blue` and `green` (IP targets), an HTTP listener whose default action
/// forwards to blue, and one rule.
pub async fn create_alb(endpoint: &str, sdk: &SdkConfig) -> AlbFixture {
    let subnets_xml = query(endpoint, "ec2", &[("Action", "DescribeSubnets"), ("Version", "2016-11-15")]);
    let subnets = xml_values(&subnets_xml, "subnetId");
    let vpc = xml_values(&subnets_xml, "vpcId").into_iter().next().expect("moto has a default VPC");
    assert!(subnets.len() >= 2, "moto's default VPC has subnets: {subnets_xml:.300}");
    let elb = Elbv2::new(sdk);
    let mut groups = Vec::new();
    for (name, ip) in [("blue", "10.0.0.10"), ("green", "10.0.0.20")] {
        let out = elb
            .create_target_group()
            .name(name)
            .protocol(ProtocolEnum::Http)
            .port(80)
            .vpc_id(&vpc)
            .target_type(TargetTypeEnum::Ip)
            .send()
            .await
            .expect("create target group");
        let arn = out.target_groups()[0].target_group_arn().expect("arn").to_owned();
        elb.register_targets()
            .target_group_arn(&arn)
            .targets(TargetDescription::builder().id(ip).port(80).build())
            .send()
            .await
            .expect("register target");
        groups.push(arn);
    }
    let lb = elb
        .create_load_balancer()
        .name("shop")
        .set_subnets(Some(subnets[..2].to_vec()))
        .send()
        .await
        .expect("create load balancer");
    let lb_arn = lb.load_balancers()[0].load_balancer_arn().expect("arn").to_owned();
    let forward_blue = || {
        Action::builder()
            .r#type(ActionTypeEnum::Forward)
            .forward_config(
                ForwardActionConfig::builder()
                    .target_groups(TargetGroupTuple::builder().target_group_arn(&groups[0]).weight(1).build())
                    .build(),
            )
            .build()
    };
    let listener = elb
        .create_listener()
        .load_balancer_arn(&lb_arn)
        .protocol(ProtocolEnum::Http)
        .port(80)
        .default_actions(forward_blue())
        .send()
        .await
        .expect("create listener");
    let listener_arn = listener.listeners()[0].listener_arn().expect("arn").to_owned();
    let rule = elb
        .create_rule()
        .listener_arn(&listener_arn)
        .priority(10)
        .conditions(RuleCondition::builder().field("path-pattern").values("/api/*").build())
        .actions(forward_blue())
        .send()
        .await
        .expect("create rule");
    let rule_arn = rule.rules()[0].rule_arn().expect("arn").to_owned();
    AlbFixture {
        load_balancer: lb_arn,
        listener: listener_arn,
        rule: rule_arn,
        blue: groups[0].clone(),
        green: groups[1].clone(),
    }
}

/// The forward weights of a listener (or rule, when `rule` is set) as the
/// SDK reads them: `(target group ARN, weight)` in AWS's order.
pub async fn forward_weights(sdk: &SdkConfig, listener: &str, rule: Option<&str>) -> Vec<(String, i32)> {
    let elb = Elbv2::new(sdk);
    let actions = match rule {
        Some(rule) => {
            let out = elb.describe_rules().rule_arns(rule).send().await.expect("describe rules");
            out.rules()[0].actions().to_vec()
        }
        None => {
            let out = elb.describe_listeners().listener_arns(listener).send().await.expect("describe listeners");
            out.listeners()[0].default_actions().to_vec()
        }
    };
    let forward = actions.iter().find(|a| a.r#type() == Some(&ActionTypeEnum::Forward)).expect("a forward action");
    forward
        .forward_config()
        .map(|c| {
            c.target_groups()
                .iter()
                .map(|t| (t.target_group_arn().unwrap_or_default().to_owned(), t.weight().unwrap_or(1)))
                .collect()
        })
        .unwrap_or_default()
}

// ---------------------------------------------------------------------------
// The fault layer.

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_decoding() {
        assert_eq!(encode("a:b/c"), "a%3Ab%2Fc");
    }

    #[test]
    fn xml_values_in_order() {
        assert_eq!(xml_values("<a><id>1</id><id>2</id></a>", "id"), vec!["1", "2"]);
    }
}

// ---------------------------------------------------------------------------
// CodeDeploy: moto stores deployments but never advances them and has no
// ContinueDeployment or StopDeployment. The fake below stands in for exactly
// that, on the fault proxy, with the request and response shapes of AWS's
// CodeDeploy API reference (awsJson1_1): it moves GetDeployment's `status`
// along a script, answers ContinueDeployment (empty object) and
// StopDeployment (`status` + `statusMessage`), adds `errorInformation` and
// `rollbackInfo` where AWS documents them, and hides ended deployments from
// ListDeployments. CreateDeployment, GetDeployment and ListDeployments still
// reach moto, which checks the application and group and keeps the
// deployment.

/// What [`create_codedeploy`] made.
#[derive(Clone, Debug)]
pub struct CodeDeployFixture {
    pub application: String,
    pub deployment_group: String,
}

/// Creates an ECS application `shop` with a blue/green deployment group
/// `shop-dev` in moto, through the SDK.
pub async fn create_codedeploy(sdk: &SdkConfig) -> CodeDeployFixture {
    use aws_sdk_codedeploy::types::{ComputePlatform, DeploymentOption, DeploymentStyle, DeploymentType};
    let client = aws_sdk_codedeploy::Client::new(sdk);
    client
        .create_application()
        .application_name("shop")
        .compute_platform(ComputePlatform::Ecs)
        .send()
        .await
        .expect("create application");
    client
        .create_deployment_group()
        .application_name("shop")
        .deployment_group_name("shop-dev")
        .service_role_arn("arn:aws:iam::123456789012:role/codedeploy")
        .deployment_config_name("CodeDeployDefault.ECSCanary10Percent5Minutes")
        .deployment_style(
            DeploymentStyle::builder()
                .deployment_type(DeploymentType::BlueGreen)
                .deployment_option(DeploymentOption::WithTrafficControl)
                .build(),
        )
        .send()
        .await
        .expect("create deployment group");
    CodeDeployFixture { application: "shop".into(), deployment_group: "shop-dev".into() }
}

/// How the fake moves a deployment along.
#[derive(Clone, Debug)]
pub struct Script {
    /// Statuses GetDeployment reads in turn until `Ready` (which holds until
    /// ContinueDeployment) or an end.
    pub steps: Vec<&'static str>,
    /// Statuses after ContinueDeployment.
    pub after_continue: Vec<&'static str>,
    /// `errorInformation` of a failed deployment: (code, message).
    pub error: Option<(&'static str, &'static str)>,
}

impl Script {
    /// Waits for rerouting, is continued, succeeds.
    pub fn succeeds() -> Script {
        Script { steps: vec!["InProgress", "Ready"], after_continue: vec!["InProgress", "Succeeded"], error: None }
    }

    /// Fails while shifting.
    pub fn fails(code: &'static str, message: &'static str) -> Script {
        Script { steps: vec!["InProgress", "Failed"], after_continue: Vec::new(), error: Some((code, message)) }
    }

    /// Never ends by itself (for stop tests).
    pub fn runs() -> Script {
        Script { steps: vec!["InProgress"], after_continue: Vec::new(), error: None }
    }
}

#[derive(Debug)]
struct FakeDeployment {
    status: String,
    queue: std::collections::VecDeque<&'static str>,
    continued: bool,
    stopped: bool,
}

#[derive(Debug, Default)]
struct FakeState {
    deployments: std::collections::BTreeMap<String, FakeDeployment>,
}

/// The CodeDeploy stand-in; see the comment above [`CodeDeployFixture`].
#[derive(Clone)]
pub struct CodeDeployFake {
    state: Arc<Mutex<FakeState>>,
    script: Script,
}

impl CodeDeployFake {
    /// Installs the fake's rules on `proxy`.
    pub fn install(proxy: &FaultProxy, script: Script) -> CodeDeployFake {
        let fake = CodeDeployFake { state: Arc::default(), script };
        let this = fake.clone();
        proxy.add(Arc::new(move |call: &Call| this.reply(call)));
        fake
    }

    /// The fake status of a deployment, and whether it was continued and stopped.
    pub fn status(&self, id: &str) -> Option<(String, bool, bool)> {
        let state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        state.deployments.get(id).map(|d| (d.status.clone(), d.continued, d.stopped))
    }

    fn reply(&self, call: &Call) -> Reply {
        if !call.json {
            return Reply::Forward;
        }
        let request: serde_json::Value = serde_json::from_str(&call.body).unwrap_or_default();
        let id = request["deploymentId"].as_str().unwrap_or_default().to_owned();
        let state = self.state.clone();
        match call.operation.as_str() {
            "CreateDeployment" => {
                let script = self.script.clone();
                Reply::Rewrite(Box::new(move |body: String| {
                    let answer: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
                    if let Some(id) = answer["deploymentId"].as_str() {
                        let mut state = state.lock().unwrap_or_else(|p| p.into_inner());
                        state.deployments.insert(
                            id.to_owned(),
                            FakeDeployment {
                                status: "Created".into(),
                                queue: script.steps.iter().copied().collect(),
                                continued: false,
                                stopped: false,
                            },
                        );
                    }
                    body
                }))
            }
            "GetDeployment" => {
                let error = self.script.error;
                Reply::Rewrite(Box::new(move |body: String| {
                    let mut answer: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
                    let mut state = state.lock().unwrap_or_else(|p| p.into_inner());
                    let Some(d) = state.deployments.get_mut(&id) else { return body };
                    if let Some(next) = d.queue.pop_front() {
                        d.status = next.to_owned();
                    }
                    let info = &mut answer["deploymentInfo"];
                    info["status"] = d.status.clone().into();
                    if d.status == "Failed"
                        && let Some((code, message)) = error
                    {
                        info["errorInformation"] = serde_json::json!({ "code": code, "message": message });
                        info["rollbackInfo"] = serde_json::json!({
                            "rollbackMessage": "Automatic rollback triggered by a deployment failure"
                        });
                    }
                    if d.status == "Stopped" {
                        info["rollbackInfo"] = serde_json::json!({ "rollbackMessage": "Stopped by request; traffic rerouted back to the original task set" });
                    }
                    answer.to_string()
                }))
            }
            "ContinueDeployment" => {
                let mut state = state.lock().unwrap_or_else(|p| p.into_inner());
                let Some(d) = state.deployments.get_mut(&id) else {
                    return Reply::Respond {
                        status: 400,
                        body: error_body(true, "DeploymentDoesNotExistException", "no such deployment"),
                    };
                };
                if d.status != "Ready" {
                    return Reply::Respond {
                        status: 400,
                        body: error_body(true, "DeploymentIsNotInReadyStateException", "the deployment is not Ready"),
                    };
                }
                d.continued = true;
                d.queue = self.script.after_continue.iter().copied().collect();
                Reply::Respond { status: 200, body: "{}".into() }
            }
            "StopDeployment" => {
                let mut state = state.lock().unwrap_or_else(|p| p.into_inner());
                let Some(d) = state.deployments.get_mut(&id) else {
                    return Reply::Respond {
                        status: 400,
                        body: error_body(true, "DeploymentDoesNotExistException", "no such deployment"),
                    };
                };
                if matches!(d.status.as_str(), "Succeeded" | "Failed" | "Stopped") {
                    return Reply::Respond {
                        status: 400,
                        body: error_body(true, "DeploymentAlreadyCompletedException", "the deployment has ended"),
                    };
                }
                d.stopped = request["autoRollbackEnabled"].as_bool().unwrap_or(false);
                d.queue = ["Stopped"].into_iter().collect();
                Reply::Respond {
                    status: 200,
                    body: serde_json::json!({ "status": "Pending", "statusMessage": "Stop request received" })
                        .to_string(),
                }
            }
            "ListDeployments" => {
                let wanted: Vec<String> = request["includeOnlyStatuses"]
                    .as_array()
                    .map(|a| a.iter().filter_map(|s| s.as_str().map(str::to_owned)).collect())
                    .unwrap_or_default();
                Reply::Rewrite(Box::new(move |body: String| {
                    let mut answer: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
                    let state = state.lock().unwrap_or_else(|p| p.into_inner());
                    if let Some(ids) = answer["deployments"].as_array_mut() {
                        ids.retain(|id| {
                            let status = id.as_str().and_then(|id| state.deployments.get(id)).map(|d| d.status.clone());
                            match status {
                                Some(status) => wanted.is_empty() || wanted.contains(&status),
                                None => true,
                            }
                        });
                    }
                    answer.to_string()
                }))
            }
            _ => Reply::Forward,
        }
    }
}

// ---------------------------------------------------------------------------
// CloudWatch.

impl AlbFixture {
    /// The CloudWatch dimensions of this ALB with green as the candidate.
    pub fn dims(&self) -> sluice_providers::aws::cloudwatch::AlbDims {
        let state = sluice_core::record::RouterState {
            kind: "alb".into(),
            resource: Some(self.listener.clone()),
            stable: Some(self.blue.clone()),
            candidate: Some(self.green.clone()),
            ..Default::default()
        };
        sluice_providers::aws::cloudwatch::AlbDims::from_state(&state).expect("fixture ARNs have ALB dimensions")
    }
}

/// Puts one minute of ALB traffic for target group `group` (its `TargetGroup`
/// dimension) into CloudWatch, at `minute` (a Unix time, a whole minute):
/// `RequestCount` and `HTTPCode_Target_5XX_Count`, as the ALB would.
pub async fn put_alb_minute(
    sdk: &SdkConfig,
    load_balancer: &str,
    group: &str,
    minute: i64,
    requests: f64,
    errors: f64,
) {
    use aws_sdk_cloudwatch::primitives::DateTime;
    use aws_sdk_cloudwatch::types::{Dimension, MetricDatum, StandardUnit};
    let client = aws_sdk_cloudwatch::Client::new(sdk);
    let datum = |name: &str, value: f64| {
        MetricDatum::builder()
            .metric_name(name)
            .value(value)
            .unit(StandardUnit::Count)
            .timestamp(DateTime::from_secs(minute + 30))
            .dimensions(Dimension::builder().name("LoadBalancer").value(load_balancer).build())
            .dimensions(Dimension::builder().name("TargetGroup").value(group).build())
            .build()
    };
    client
        .put_metric_data()
        .namespace("AWS/ApplicationELB")
        .metric_data(datum("RequestCount", requests))
        .metric_data(datum("HTTPCode_Target_5XX_Count", errors))
        .send()
        .await
        .expect("put ALB metrics");
}

/// The start of the current minute, as a Unix time.
pub fn this_minute() -> i64 {
    let now = jiff::Timestamp::now().as_second();
    now - now.rem_euclid(60)
}
