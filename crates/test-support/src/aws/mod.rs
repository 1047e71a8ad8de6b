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
//! - [`FaultProxy`] (the one proxy core of [`crate::faultproxy`], with AWS
//!   rules) stands between the SDK and moto and, per operation, answers
//!   with throttling or 5xx errors, rewrites target health (moto reports
//!   every registered target healthy), or answers for moto where it cannot
//!   act ([`CodeDeployFake`]). It logs every operation it saw, so tests can
//!   count retries.
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
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

mod codedeploy;
mod faults;

pub use codedeploy::{CodeDeployFake, CodeDeployFixture, Script, create_codedeploy, create_codedeploy_pair};
pub use faults::{Call, FaultProxy, REQUEST_ID, Reply, Rule, error_answer, error_body};

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
        role: None,
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

/// An SDK config for moto in `region` with credentials of `role_arn` (e.g.
/// `arn:aws:iam::111111111111:role/deployer`), assumed by the test itself
/// with a plain STS `AssumeRole` call (not through sluice's code): moto
/// accepts any role, and attributes the calls made with its credentials to
/// the role's account, whose resources the default account does not see.
pub async fn assumed_sdk_config(endpoint: &str, region: &str, role_arn: &str) -> SdkConfig {
    let xml = query_in(
        endpoint,
        region,
        "sts",
        &[
            ("Action", "AssumeRole"),
            ("Version", "2011-06-15"),
            ("RoleArn", role_arn),
            ("RoleSessionName", "sluice-tests"),
        ],
    );
    let value = |tag: &str| {
        xml_values(&xml, tag)
            .into_iter()
            .next()
            .unwrap_or_else(|| panic!("moto's AssumeRole gave no {tag}: {xml:.500}"))
    };
    let credentials = Credentials::new(
        value("AccessKeyId"),
        value("SecretAccessKey"),
        Some(value("SessionToken")),
        None,
        "sluice-tests-assumed",
    );
    let settings =
        AwsSettings { region: Some(region.into()), endpoint_url: Some(endpoint.to_owned()), ..AwsSettings::default() };
    loader(&settings).credentials_provider(credentials).load().await
}

/// The access key of `sdk`'s credentials (which account moto puts a call in).
pub async fn access_key(sdk: &SdkConfig) -> String {
    use aws_sdk_elasticloadbalancingv2::config::ProvideCredentials;
    let provider = sdk.credentials_provider().expect("the SDK config has credentials");
    provider.provide_credentials().await.expect("credentials").access_key_id().to_owned()
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
    query_in(endpoint, REGION, service, params)
}

/// The same in `region` (moto keeps each region's resources apart).
pub fn query_in(endpoint: &str, region: &str, service: &str, params: &[(&str, &str)]) -> String {
    query_as(endpoint, "testing", region, service, params)
}

/// The same as the holder of `access_key`: moto keeps each account's
/// resources apart too, and knows the account of an access key it handed
/// out for an assumed role.
pub fn query_as(endpoint: &str, access_key: &str, region: &str, service: &str, params: &[(&str, &str)]) -> String {
    let body: Vec<String> = params.iter().map(|(k, v)| format!("{k}={}", encode(v))).collect();
    let body = body.join("&");
    let addr = endpoint.trim_start_matches("http://").trim_end_matches('/');
    let mut stream = TcpStream::connect(addr).expect("connect to moto");
    stream.set_read_timeout(Some(Duration::from_secs(30))).expect("timeout");
    write!(
        stream,
        "POST / HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/x-www-form-urlencoded\r\n\
         Authorization: AWS4-HMAC-SHA256 Credential={access_key}/20260101/{region}/{service}/aws4_request, SignedHeaders=host, Signature=0\r\n\
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
    create_named_alb(endpoint, sdk, ["shop", "blue", "green"]).await
}

/// The same with the names given (load balancer, stable group, candidate
/// group), in the region and account of `sdk`: several ALBs in one moto,
/// e.g. one per environment as `["shop-dev", "shop-dev-blue",
/// "shop-dev-green"]`.
pub async fn create_named_alb(endpoint: &str, sdk: &SdkConfig, names: [&str; 3]) -> AlbFixture {
    let region = sdk.region().map_or(REGION, |r| r.as_ref());
    let key = access_key(sdk).await;
    let subnets_xml =
        query_as(endpoint, &key, region, "ec2", &[("Action", "DescribeSubnets"), ("Version", "2016-11-15")]);
    let subnets = xml_values(&subnets_xml, "subnetId");
    let vpc = xml_values(&subnets_xml, "vpcId").into_iter().next().expect("moto has a default VPC");
    assert!(subnets.len() >= 2, "moto's default VPC has subnets: {subnets_xml:.300}");
    let elb = Elbv2::new(sdk);
    let mut groups = Vec::new();
    for (name, ip) in [(names[1], "10.0.0.10"), (names[2], "10.0.0.20")] {
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
        .name(names[0])
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

/// Makes `listener`'s default action forward to `groups` (target group
/// ARNs with their weights): one group, as CodeDeploy leaves it after a
/// blue/green deployment, or two, as while it shifts.
pub async fn forward_to(sdk: &SdkConfig, listener: &str, groups: &[(&str, i32)]) {
    let mut config = ForwardActionConfig::builder();
    for (group, weight) in groups {
        config = config.target_groups(TargetGroupTuple::builder().target_group_arn(*group).weight(*weight).build());
    }
    let forward = Action::builder().r#type(ActionTypeEnum::Forward).forward_config(config.build()).build();
    Elbv2::new(sdk)
        .modify_listener()
        .listener_arn(listener)
        .default_actions(forward)
        .send()
        .await
        .expect("modify listener");
}

/// Whether the holder of `sdk`'s credentials can see `listener` (moto
/// answers `ListenerNotFound` in any other account than its own).
pub async fn sees_listener(sdk: &SdkConfig, listener: &str) -> bool {
    Elbv2::new(sdk).describe_listeners().listener_arns(listener).send().await.is_ok()
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

/// One minute of a target group's `TargetResponseTime` in moto's
/// CloudWatch, as the ALB publishes it: a statistic set of `requests`
/// responses averaging `mean` seconds (moto answers `Average` and
/// `SampleCount` from it, not percentiles).
pub async fn put_alb_response_times(
    sdk: &SdkConfig,
    load_balancer: &str,
    group: &str,
    minute: i64,
    requests: f64,
    mean: f64,
) {
    use aws_sdk_cloudwatch::primitives::DateTime;
    use aws_sdk_cloudwatch::types::{Dimension, MetricDatum, StandardUnit, StatisticSet};
    let stats = StatisticSet::builder()
        .sample_count(requests)
        .sum(requests * mean)
        .minimum(mean / 2.0)
        .maximum(mean * 3.0)
        .build();
    let datum = MetricDatum::builder()
        .metric_name("TargetResponseTime")
        .statistic_values(stats)
        .unit(StandardUnit::Seconds)
        .timestamp(DateTime::from_secs(minute + 30))
        .dimensions(Dimension::builder().name("LoadBalancer").value(load_balancer).build())
        .dimensions(Dimension::builder().name("TargetGroup").value(group).build())
        .build();
    aws_sdk_cloudwatch::Client::new(sdk)
        .put_metric_data()
        .namespace("AWS/ApplicationELB")
        .metric_data(datum)
        .send()
        .await
        .expect("put TargetResponseTime");
}

/// The start of the current minute, as a Unix time.
pub fn this_minute() -> i64 {
    let now = jiff::Timestamp::now().as_second();
    now - now.rem_euclid(60)
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
