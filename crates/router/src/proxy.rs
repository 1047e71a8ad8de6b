//! The hot path: pick a pool, forward the request, stream the response back.
//!
//! Per request this takes one `RwLock` read (to clone the chosen pool's
//! `Arc`), a few relaxed atomic adds and one uncontended per-thread histogram
//! lock. It must never block, hold a lock across an `.await`, or buffer a body.

use std::time::Instant;

use http_body_util::{Either, Full};
use hyper::body::{Bytes, Incoming};
use hyper::header::{self, HeaderMap, HeaderName, HeaderValue};
use hyper::http::uri::{self, PathAndQuery, Scheme};
use hyper::{Request, Response, StatusCode, Uri, Version};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;

use crate::state::Control;

/// Response body of the proxy: the upstream's streamed body, or our own.
pub(crate) type ProxyBody = Either<Incoming, Full<Bytes>>;

/// The pooled keep-alive client to the upstreams.
pub(crate) type UpstreamClient = Client<HttpConnector, Incoming>;

/// Name of the response header that tells which pool answered.
pub const POOL_HEADER: &str = "x-sluice-pool";

pub(crate) fn upstream_client() -> UpstreamClient {
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    connector.set_connect_timeout(Some(std::time::Duration::from_secs(5)));
    Client::builder(hyper_util::rt::TokioExecutor::new())
        .pool_timer(hyper_util::rt::TokioTimer::new())
        // Below common upstream keep-alive timeouts (node 5 s, hyper 30 s,
        // nginx 75 s), so we rarely send on a connection the upstream is
        // closing.
        .pool_idle_timeout(std::time::Duration::from_secs(4))
        .build(connector)
}

/// Headers that describe one hop, never forwarded (RFC 9110 §7.6.1).
const HOP_BY_HOP: [HeaderName; 8] = [
    header::CONNECTION,
    HeaderName::from_static("keep-alive"),
    HeaderName::from_static("proxy-connection"),
    header::PROXY_AUTHENTICATE,
    header::PROXY_AUTHORIZATION,
    header::TE,
    header::TRAILER,
    header::TRANSFER_ENCODING,
];

fn strip_hop_by_hop(headers: &mut HeaderMap) {
    // Also drop the headers the Connection header names.
    if let Some(listed) = headers.get(header::CONNECTION).cloned()
        && let Ok(listed) = listed.to_str()
    {
        for name in listed.split(',') {
            if let Ok(name) = HeaderName::from_bytes(name.trim().as_bytes()) {
                headers.remove(name);
            }
        }
    }
    for name in &HOP_BY_HOP {
        headers.remove(name);
    }
    headers.remove(header::UPGRADE);
}

pub(crate) async fn handle(control: &Control, client: &UpstreamClient, req: Request<Incoming>) -> Response<ProxyBody> {
    let start = Instant::now();
    let pool = control.pick();
    pool.stats.record_request();
    let pool_header = HeaderValue::from_static(pool.name.as_str());

    let (mut parts, body) = req.into_parts();
    strip_hop_by_hop(&mut parts.headers);
    parts.headers.insert(header::HOST, pool.upstream.host_header().clone());
    let mut target = uri::Parts::default();
    target.scheme = Some(Scheme::HTTP);
    target.authority = Some(pool.upstream.authority().clone());
    target.path_and_query = Some(parts.uri.path_and_query().cloned().unwrap_or_else(|| PathAndQuery::from_static("/")));
    parts.uri = match Uri::from_parts(target) {
        Ok(uri) => uri,
        Err(_) => return plain(StatusCode::BAD_REQUEST, "bad request target\n", pool_header),
    };
    parts.version = Version::HTTP_11;

    match client.request(Request::from_parts(parts, body)).await {
        Ok(resp) => {
            pool.stats.record_response(resp.status().as_u16(), start.elapsed());
            let (mut parts, body) = resp.into_parts();
            strip_hop_by_hop(&mut parts.headers);
            parts.headers.insert(POOL_HEADER, pool_header);
            Response::from_parts(parts, Either::Left(body))
        }
        Err(_) => {
            pool.stats.record_connect_error();
            plain(StatusCode::BAD_GATEWAY, "upstream unavailable\n", pool_header)
        }
    }
}

fn plain(status: StatusCode, body: &'static str, pool: HeaderValue) -> Response<ProxyBody> {
    let mut resp = Response::new(Either::Right(Full::new(Bytes::from_static(body.as_bytes()))));
    *resp.status_mut() = status;
    let headers = resp.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    headers.insert(POOL_HEADER, pool);
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strips_hop_by_hop_and_connection_listed() {
        let mut h = HeaderMap::new();
        h.insert(header::CONNECTION, HeaderValue::from_static("close, x-private"));
        h.insert("x-private", HeaderValue::from_static("1"));
        h.insert("keep-alive", HeaderValue::from_static("timeout=5"));
        h.insert(header::TRANSFER_ENCODING, HeaderValue::from_static("chunked"));
        h.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
        h.insert("x-kept", HeaderValue::from_static("yes"));
        strip_hop_by_hop(&mut h);
        assert_eq!(h.len(), 1, "{h:?}");
        assert_eq!(h["x-kept"], "yes");
    }
}
