//! The AWS fault layer: the proxy core ([`crate::faultproxy`]) in front of
//! moto, with rules written for AWS calls. A rule sees a decoded [`Call`]
//! (the operation from the `X-Amz-Target` header of the JSON protocol, or
//! the `Action` form parameter of the query protocol) and says what to do
//! ([`Reply`]); errors it answers are in the call's protocol, with a request
//! id, as AWS's are. The proxy keeps the operations it saw, so tests can
//! count retries.

use crate::faultproxy::{self, Action, Answer, Core, Proxy, Request};
use hyper::StatusCode;
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
    /// The AWS call in a request.
    pub fn decode(request: &Request) -> Call {
        let body = request.text().into_owned();
        match request.header("x-amz-target") {
            Some(target) => Call {
                operation: target.rsplit('.').next().unwrap_or(target).to_owned(),
                params: Vec::new(),
                body,
                json: true,
            },
            None => {
                let params: Vec<(String, String)> = form_urlencoded::parse(body.as_bytes()).into_owned().collect();
                let operation = params.iter().find(|(k, _)| k == "Action").map(|(_, v)| v.clone()).unwrap_or_default();
                Call { operation, params, body, json: false }
            }
        }
    }

    /// A form parameter (query protocol).
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }
}

/// What the proxy does with a call.
pub enum Reply {
    /// Pass it on to the next rule, or to moto unchanged.
    Forward,
    /// Pass it to moto and change the answer's body.
    Rewrite(Box<dyn FnOnce(String) -> String + Send>),
    /// Answer without asking moto, in the call's protocol.
    Respond { status: u16, body: String },
    /// Wait this long, then pass it to moto.
    Slow(Duration),
}

/// A rule of the fault layer: looks at a call and says what to do.
pub type Rule = Arc<dyn Fn(&Call) -> Reply + Send + Sync>;

/// The core rule that asks an AWS rule.
fn core_rule(rule: Rule) -> impl faultproxy::Rule {
    move |request: &Request| {
        let call = Call::decode(request);
        match rule(&call) {
            Reply::Forward => Action::Pass,
            Reply::Rewrite(f) => Action::Rewrite(Box::new(move |answer: &mut Answer| {
                answer.body = f(answer.text().into_owned()).into();
            })),
            Reply::Respond { status, body } => Action::Respond(answer(call.json, status, body)),
            Reply::Slow(delay) => Action::Slow(delay),
        }
    }
}

/// The fault proxy in front of moto on 127.0.0.1, on its own thread.
pub struct FaultProxy {
    pub endpoint: String,
    proxy: Proxy,
    log: Arc<Mutex<Vec<String>>>,
}

impl FaultProxy {
    /// Starts a proxy that forwards to `upstream` (moto).
    pub fn start(upstream: &str) -> FaultProxy {
        let proxy = Proxy::start(Core::new(upstream));
        let fault_proxy = FaultProxy { endpoint: proxy.endpoint.clone(), proxy, log: Arc::default() };
        fault_proxy.clear();
        fault_proxy
    }

    /// Adds a rule; rules are asked in the order they were added.
    pub fn add(&self, rule: Rule) {
        self.proxy.core().add(core_rule(rule));
    }

    /// Removes every rule (the operations seen are still counted).
    pub fn clear(&self) {
        let core = self.proxy.core();
        core.clear();
        // First of all, and never removed: the log of operations.
        let log = Arc::clone(&self.log);
        core.add(move |request: &Request| {
            log.lock().unwrap_or_else(|p| p.into_inner()).push(Call::decode(request).operation);
            Action::Pass
        });
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

/// AWS's request id on every answer the fault layer makes.
pub const REQUEST_ID: &str = "fault-proxy-0001";

/// An AWS error body in the call's protocol, with a request id.
pub fn error_body(json: bool, code: &str, message: &str) -> String {
    if json {
        serde_json::json!({ "__type": code, "message": message }).to_string()
    } else {
        format!(
            "<ErrorResponse><Error><Type>Sender</Type><Code>{code}</Code><Message>{message}</Message></Error>\
             <RequestId>{REQUEST_ID}</RequestId></ErrorResponse>"
        )
    }
}

/// An answer made for AWS, in the call's protocol: its content type and a
/// request id header (the SDK reads the request id from it).
fn answer(json: bool, status: u16, body: String) -> Answer {
    let content_type = if json { "application/x-amz-json-1.1" } else { "text/xml" };
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_GATEWAY);
    Answer::new(status, content_type, body).with_header("x-amzn-requestid", REQUEST_ID)
}

/// An AWS error answer: `code` and `message` in the body of the call's
/// protocol ([`error_body`]), with a request id.
pub fn error_answer(json: bool, status: u16, code: &str, message: &str) -> Answer {
    answer(json, status, error_body(json, code, message))
}
