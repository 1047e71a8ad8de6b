//! The admin API, served on its own socket: read and change the routing
//! state, read stats, Prometheus metrics.
//!
//! Every change is validated completely before it is applied; a rejected
//! request changes nothing. This module never touches proxied traffic.

use std::fmt::Write as _;

use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Bytes, Incoming};
use hyper::header::{self, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use serde::Serialize;
use serde_json::{Map, Value};

use sluice_core::router_api::{PoolStatsView, StateView};

use crate::state::{Control, ControlError, UpstreamsUpdate};
use crate::upstream::Upstream;

/// Largest accepted admin request body.
const MAX_BODY: usize = 64 * 1024;

type AdminResponse = Response<Full<Bytes>>;

pub(crate) async fn handle(control: &Control, req: Request<Incoming>) -> AdminResponse {
    let (parts, body) = req.into_parts();
    let path = parts.uri.path();
    let method = &parts.method;
    match (path, method) {
        ("/healthz", &Method::GET) => text(StatusCode::OK, "ok\n".to_owned(), "text/plain"),
        ("/metrics", &Method::GET) => text(StatusCode::OK, metrics(control), "text/plain; version=0.0.4"),
        ("/v1/state", &Method::GET) => json(StatusCode::OK, &control.state()),
        ("/v1/stats", &Method::GET) => json(StatusCode::OK, &control.stats()),
        ("/v1/weights", &Method::PUT) => match read_object(body).await {
            Ok(obj) => match parse_weight(&obj) {
                Ok(weight) => applied(control.set_weight(weight)),
                Err(msg) => error(StatusCode::BAD_REQUEST, &msg),
            },
            Err(resp) => resp,
        },
        ("/v1/upstreams", &Method::PUT) => match read_object(body).await {
            Ok(obj) => match parse_upstreams(&obj) {
                Ok(update) => applied(control.set_upstreams(update)),
                Err(msg) => error(StatusCode::BAD_REQUEST, &msg),
            },
            Err(resp) => resp,
        },
        ("/v1/promote", &Method::POST) => applied(control.promote()),
        ("/healthz" | "/metrics" | "/v1/state" | "/v1/stats", _) => not_allowed("GET"),
        ("/v1/weights" | "/v1/upstreams", _) => not_allowed("PUT"),
        ("/v1/promote", _) => not_allowed("POST"),
        _ => error(StatusCode::NOT_FOUND, &format!("no such endpoint: {path}")),
    }
}

fn applied(result: Result<StateView, ControlError>) -> AdminResponse {
    match result {
        Ok(state) => json(StatusCode::OK, &state),
        Err(err @ ControlError::WeightOutOfRange(_)) => error(StatusCode::BAD_REQUEST, &err.to_string()),
        Err(err @ ControlError::NoCandidate(_)) => error(StatusCode::CONFLICT, &err.to_string()),
    }
}

/// Reads a JSON object body, or answers 400/413 itself.
async fn read_object(body: Incoming) -> Result<Map<String, Value>, AdminResponse> {
    let bytes = match Limited::new(body, MAX_BODY).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(_) => {
            return Err(error(
                StatusCode::PAYLOAD_TOO_LARGE,
                &format!("request body is unreadable or larger than {MAX_BODY} bytes"),
            ));
        }
    };
    match serde_json::from_slice::<Value>(&bytes) {
        Ok(Value::Object(obj)) => Ok(obj),
        Ok(_) => Err(error(StatusCode::BAD_REQUEST, "request body must be a JSON object")),
        Err(err) => Err(error(StatusCode::BAD_REQUEST, &format!("request body is not valid JSON: {err}"))),
    }
}

fn reject_unknown(obj: &Map<String, Value>, known: &[&str]) -> Result<(), String> {
    match obj.keys().find(|k| !known.contains(&k.as_str())) {
        Some(key) => Err(format!(
            "unknown field {key:?}, expected {}",
            known.iter().map(|k| format!("{k:?}")).collect::<Vec<_>>().join(" or ")
        )),
        None => Ok(()),
    }
}

fn parse_weight(obj: &Map<String, Value>) -> Result<u8, String> {
    reject_unknown(obj, &["candidate_weight"])?;
    let value = obj.get("candidate_weight").ok_or("missing field \"candidate_weight\" (an integer from 0 to 100)")?;
    value
        .as_u64()
        .and_then(|n| u8::try_from(n).ok())
        .filter(|n| *n <= 100)
        .ok_or_else(|| format!("candidate_weight must be an integer from 0 to 100, got {value}"))
}

fn parse_upstreams(obj: &Map<String, Value>) -> Result<UpstreamsUpdate, String> {
    reject_unknown(obj, &["stable", "candidate"])?;
    let parse = |field: &str, value: &Value| match value {
        Value::String(s) => Upstream::parse(s).map_err(|e| format!("{field}: {e}")),
        other => Err(format!("{field} must be a URL string like \"http://127.0.0.1:8080\", got {other}")),
    };
    let stable = match obj.get("stable") {
        None => None,
        Some(Value::Null) => {
            return Err("stable cannot be null: there is always a stable upstream".into());
        }
        Some(v) => Some(parse("stable", v)?),
    };
    let candidate = match obj.get("candidate") {
        None => None,
        Some(Value::Null) => Some(None),
        Some(v) => Some(Some(parse("candidate", v)?)),
    };
    if stable.is_none() && candidate.is_none() {
        return Err("nothing to change: give \"stable\" and/or \"candidate\"".into());
    }
    Ok(UpstreamsUpdate { stable, candidate })
}

/// Prometheus text exposition of the per-pool counters.
fn metrics(control: &Control) -> String {
    let stats = control.stats();
    let pools: Vec<(&str, &PoolStatsView)> = std::iter::once(("stable", &stats.pools.stable))
        .chain(stats.pools.candidate.as_ref().map(|c| ("candidate", c)))
        .collect();
    let mut out = String::with_capacity(2048);
    type Family = (&'static str, &'static str, &'static str, fn(&PoolStatsView) -> u64);
    let families: [Family; 4] = [
        ("sluice_router_requests_total", "counter", "Requests routed to the pool in its current epoch.", |p| {
            p.requests
        }),
        (
            "sluice_router_responses_5xx_total",
            "counter",
            "5xx responses from the pool in its current epoch, including 502 on connect errors.",
            |p| p.responses_5xx,
        ),
        (
            "sluice_router_connect_errors_total",
            "counter",
            "Requests that got no response from the pool's upstream in its current epoch.",
            |p| p.connect_errors,
        ),
        (
            "sluice_router_pool_epoch",
            "gauge",
            "Stats epoch of the pool; counters restart from 0 when it changes.",
            |p| p.epoch,
        ),
    ];
    for (name, kind, help, get) in families {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
        for (pool, view) in &pools {
            let _ = writeln!(out, "{name}{{pool=\"{pool}\"}} {}", get(view));
        }
    }
    let _ = writeln!(
        out,
        "# HELP sluice_router_candidate_weight Percentage of requests sent to the candidate.\n\
         # TYPE sluice_router_candidate_weight gauge\n\
         sluice_router_candidate_weight {}\n\
         # HELP sluice_router_generation Generation of the routing state.\n\
         # TYPE sluice_router_generation gauge\n\
         sluice_router_generation {}",
        stats.candidate_weight, stats.generation
    );
    out
}

fn json<T: Serialize>(status: StatusCode, value: &T) -> AdminResponse {
    let mut body = serde_json::to_string(value).expect("admin views serialize");
    body.push('\n');
    text(status, body, "application/json")
}

fn error(status: StatusCode, message: &str) -> AdminResponse {
    json(status, &serde_json::json!({ "error": message }))
}

fn not_allowed(allow: &'static str) -> AdminResponse {
    let mut resp = error(StatusCode::METHOD_NOT_ALLOWED, &format!("method not allowed, use {allow}"));
    resp.headers_mut().insert(header::ALLOW, HeaderValue::from_static(allow));
    resp
}

fn text(status: StatusCode, body: String, content_type: &'static str) -> AdminResponse {
    let mut resp = Response::new(Full::new(Bytes::from(body)));
    *resp.status_mut() = status;
    resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    resp
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => panic!("not an object"),
        }
    }

    #[test]
    fn weight_parsing() {
        assert_eq!(parse_weight(&obj(json!({"candidate_weight": 0}))), Ok(0));
        assert_eq!(parse_weight(&obj(json!({"candidate_weight": 100}))), Ok(100));
        for (body, msg) in [
            (json!({"candidate_weight": 101}), "got 101"),
            (json!({"candidate_weight": -1}), "got -1"),
            (json!({"candidate_weight": "abc"}), "got \"abc\""),
            (json!({"candidate_weight": 10.5}), "got 10.5"),
            (json!({"candidate_weight": null}), "got null"),
            (json!({}), "missing field \"candidate_weight\""),
            (json!({"weight": 5}), "unknown field \"weight\""),
        ] {
            let err = parse_weight(&obj(body.clone())).expect_err(&body.to_string());
            assert!(err.contains(msg), "{body}: {err}");
        }
    }

    #[test]
    fn upstreams_parsing() {
        let u = parse_upstreams(&obj(json!({"candidate": null}))).expect("ok");
        assert!(u.stable.is_none() && matches!(u.candidate, Some(None)));
        let u = parse_upstreams(&obj(json!({"stable": "http://127.0.0.1:9"}))).expect("ok");
        assert_eq!(u.stable.map(|s| s.to_string()).as_deref(), Some("http://127.0.0.1:9"));
        for (body, msg) in [
            (json!({}), "nothing to change"),
            (json!({"stable": null}), "stable cannot be null"),
            (json!({"stable": 5}), "stable must be a URL string"),
            (json!({"candidate": "https://x:1"}), "candidate: invalid upstream url"),
            (json!({"stable": "http://a:1", "candidate": "ftp://b:2"}), "only http://"),
            (json!({"canary": "http://a:1"}), "unknown field \"canary\""),
        ] {
            let err = parse_upstreams(&obj(body.clone())).expect_err(&body.to_string());
            assert!(err.contains(msg), "{body}: {err}");
        }
    }

    #[test]
    fn metrics_text() {
        let up = |p: u16| Upstream::parse(&format!("http://127.0.0.1:{p}")).expect("valid");
        let control = Control::new(up(1), Some(up(2)), 10).expect("valid");
        let text = metrics(&control);
        for line in [
            "sluice_router_requests_total{pool=\"stable\"} 0",
            "sluice_router_requests_total{pool=\"candidate\"} 0",
            "sluice_router_connect_errors_total{pool=\"candidate\"} 0",
            "sluice_router_pool_epoch{pool=\"stable\"} 1",
            "sluice_router_candidate_weight 10",
            "# TYPE sluice_router_responses_5xx_total counter",
        ] {
            assert!(text.lines().any(|l| l == line), "missing {line}\n{text}");
        }
    }
}
