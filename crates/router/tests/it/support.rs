use std::convert::Infallible;
use std::net::SocketAddr;
use std::time::Duration;

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::Value;
use sluice_router::serve::{self, ShutdownTrigger};
use sluice_router::{Config, Router, Upstream};

/// A tiny upstream that answers `GET /` with its name; `?sleep_ms=N` delays
/// the answer, `?status=N` sets the status, `/echo` describes the request.
pub struct TestUpstream {
    pub addr: SocketAddr,
    _trigger: ShutdownTrigger,
}

impl TestUpstream {
    pub async fn start(name: &'static str) -> Self {
        let listener = serve::bind(SocketAddr::from(([127, 0, 0, 1], 0))).await.expect("bind upstream");
        let addr = listener.local_addr().expect("addr");
        let (trigger, shutdown) = serve::shutdown_channel();
        tokio::spawn(serve::serve(
            listener,
            move |_| hyper::service::service_fn(move |req| answer(name, req)),
            shutdown,
            Duration::from_millis(100),
        ));
        Self { addr, _trigger: trigger }
    }

    pub fn url(&self) -> Upstream {
        Upstream::parse(&format!("http://{}", self.addr)).expect("valid")
    }
}

fn query_param(req: &Request<Incoming>, key: &str) -> Option<u64> {
    req.uri().query()?.split('&').find_map(|kv| {
        let (k, v) = kv.split_once('=')?;
        (k == key).then(|| v.parse().ok()).flatten()
    })
}

async fn answer(name: &'static str, req: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    if req.uri().path() == "/echo" {
        let (parts, body) = req.into_parts();
        let body = body.collect().await.map(|b| b.to_bytes()).unwrap_or_default();
        let headers: serde_json::Map<String, Value> =
            parts.headers.iter().map(|(k, v)| (k.to_string(), Value::from(v.to_str().unwrap_or("?")))).collect();
        let echo = serde_json::json!({
            "upstream": name,
            "method": parts.method.as_str(),
            "target": parts.uri.to_string(),
            "headers": headers,
            "body": String::from_utf8_lossy(&body),
        });
        let mut resp = Response::new(Full::new(Bytes::from(echo.to_string())));
        resp.headers_mut().insert("connection", "x-upstream-hop".parse().expect("value"));
        resp.headers_mut().insert("x-upstream-hop", "1".parse().expect("value"));
        return Ok(resp);
    }
    if let Some(ms) = query_param(&req, "sleep_ms") {
        tokio::time::sleep(Duration::from_millis(ms)).await;
    }
    let status = query_param(&req, "status")
        .and_then(|s| StatusCode::from_u16(u16::try_from(s).ok()?).ok())
        .unwrap_or(StatusCode::OK);
    let mut resp = Response::new(Full::new(Bytes::from(format!("{name}\n"))));
    *resp.status_mut() = status;
    Ok(resp)
}

/// An address nothing listens on.
pub async fn dead_upstream() -> Upstream {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    drop(listener);
    Upstream::parse(&format!("http://{addr}")).expect("valid")
}

pub async fn router(stable: Upstream, candidate: Option<Upstream>, weight: u8) -> Router {
    let mut config = Config::new(stable);
    config.candidate = candidate;
    config.candidate_weight = weight;
    Router::start(config).await.expect("router starts")
}

pub struct Reply {
    pub status: StatusCode,
    pub pool: String,
    pub body: String,
}

pub fn client() -> Client<HttpConnector, Full<Bytes>> {
    Client::builder(TokioExecutor::new()).build(HttpConnector::new())
}

pub async fn send(client: &Client<HttpConnector, Full<Bytes>>, method: Method, url: String, body: &str) -> Reply {
    let req =
        Request::builder().method(method).uri(url).body(Full::new(Bytes::from(body.to_owned()))).expect("request");
    let resp = client.request(req).await.expect("response");
    let (parts, body) = resp.into_parts();
    let body = body.collect().await.expect("body").to_bytes();
    Reply {
        status: parts.status,
        pool: parts
            .headers
            .get(sluice_router::POOL_HEADER)
            .map(|v| v.to_str().expect("ascii").to_owned())
            .unwrap_or_default(),
        body: String::from_utf8(body.to_vec()).expect("utf-8"),
    }
}

pub async fn get(client: &Client<HttpConnector, Full<Bytes>>, addr: SocketAddr, path: &str) -> Reply {
    send(client, Method::GET, format!("http://{addr}{path}"), "").await
}

/// Calls the admin API, returns the status and the JSON body.
pub async fn admin(router: &Router, method: Method, path: &str, body: &str) -> (StatusCode, Value) {
    let reply = send(&client(), method, format!("http://{}{path}", router.admin_addr()), body).await;
    let json = serde_json::from_str(&reply.body)
        .unwrap_or_else(|e| panic!("admin {path} answered non-JSON {:?}: {e}", reply.body));
    (reply.status, json)
}
