use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

use hyper::{Method, StatusCode};
use serde_json::Value;
use sluice_router::{Config, Error, Router, Socket};

use crate::support::{TestUpstream, admin, client, dead_upstream, get, router, send};

async fn count_pools(addr: std::net::SocketAddr, n: usize) -> HashMap<String, usize> {
    let client = client();
    let mut counts = HashMap::new();
    for _ in 0..n {
        let reply = get(&client, addr, "/").await;
        assert_eq!(reply.status, StatusCode::OK);
        assert_eq!(reply.body, format!("{}\n", reply.pool), "pool header matches upstream");
        *counts.entry(reply.pool).or_default() += 1;
    }
    counts
}

/// Waits until the stable pool has picked `n` requests (they are in flight).
async fn wait_for_requests(router: &sluice_router::Router, n: u64) {
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while router.control().stats().pools.stable.requests < n {
        assert!(std::time::Instant::now() < deadline, "requests never arrived");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test]
async fn weight_decides_the_pool() {
    let stable = TestUpstream::start("stable").await;
    let candidate = TestUpstream::start("candidate").await;
    let router = router(stable.url(), Some(candidate.url()), 0).await;
    let addr = router.listen_addr();

    let counts = count_pools(addr, 200).await;
    assert_eq!(counts.get("stable"), Some(&200), "{counts:?}");

    router.control().set_weight(100).expect("weight");
    let counts = count_pools(addr, 200).await;
    assert_eq!(counts.get("candidate"), Some(&200), "{counts:?}");

    router.control().set_weight(30).expect("weight");
    let n = 3000;
    let counts = count_pools(addr, n).await;
    let share = counts.get("candidate").copied().unwrap_or(0) as f64 / n as f64;
    // ±5 points is more than 5 standard deviations at n = 3000.
    assert!((0.25..=0.35).contains(&share), "{counts:?}");
}

#[tokio::test]
async fn forwards_method_target_headers_and_body() {
    let stable = TestUpstream::start("stable").await;
    let router = router(stable.url(), None, 0).await;
    let req = hyper::Request::builder()
        .method(Method::POST)
        .uri(format!("http://{}/echo?a=1&b=two", router.listen_addr()))
        .header("x-custom", "kept")
        .header("connection", "keep-alive, x-secret")
        .header("x-secret", "dropped")
        .header("te", "trailers")
        .body(http_body_util::Full::new(hyper::body::Bytes::from("payload")))
        .expect("request");
    let resp = client().request(req).await.expect("response");
    assert_eq!(resp.headers()[sluice_router::POOL_HEADER], "stable");
    assert!(!resp.headers().contains_key("x-upstream-hop"), "response hop-by-hop stripped");
    let body = http_body_util::BodyExt::collect(resp.into_body()).await.expect("body").to_bytes();
    let echo: Value = serde_json::from_slice(&body).expect("json");
    assert_eq!(echo["method"], "POST");
    assert_eq!(echo["target"], "/echo?a=1&b=two");
    assert_eq!(echo["body"], "payload");
    let headers = &echo["headers"];
    assert_eq!(headers["x-custom"], "kept");
    assert_eq!(headers["host"], stable.addr.to_string());
    assert!(headers.get("x-secret").is_none(), "{headers}");
    assert!(headers.get("te").is_none(), "{headers}");
}

#[tokio::test]
async fn weight_change_keeps_in_flight_requests() {
    let stable = TestUpstream::start("stable").await;
    let candidate = TestUpstream::start("candidate").await;
    let router = router(stable.url(), Some(candidate.url()), 0).await;
    let addr = router.listen_addr();
    let client = client();
    let slow: Vec<_> = (0..20)
        .map(|_| {
            let client = client.clone();
            tokio::spawn(async move { get(&client, addr, "/?sleep_ms=300").await })
        })
        .collect();
    wait_for_requests(&router, 20).await;
    router.control().set_weight(100).expect("weight");
    // The next request already follows the new weight.
    assert_eq!(get(&client, addr, "/").await.pool, "candidate");
    router.control().promote().expect("promote");
    for task in slow {
        let reply = task.await.expect("task");
        assert_eq!(reply.status, StatusCode::OK);
        assert_eq!(reply.pool, "stable");
        assert_eq!(reply.body, "stable\n");
    }
}

#[tokio::test]
async fn dead_upstream_is_502_and_a_connect_error() {
    let stable = TestUpstream::start("stable").await;
    let router = router(stable.url(), Some(dead_upstream().await), 100).await;
    let reply = get(&client(), router.listen_addr(), "/").await;
    assert_eq!(reply.status, StatusCode::BAD_GATEWAY);
    assert_eq!(reply.pool, "candidate");
    let stats = router.control().stats();
    let candidate = stats.pools.candidate.expect("candidate");
    assert_eq!((candidate.requests, candidate.connect_errors, candidate.responses_5xx), (1, 1, 1));
    assert_eq!(candidate.latency_us.count, 0);
    assert_eq!(stats.pools.stable.requests, 0);
}

#[tokio::test]
async fn upstream_5xx_is_counted() {
    let stable = TestUpstream::start("stable").await;
    let router = router(stable.url(), None, 0).await;
    let client = client();
    assert_eq!(get(&client, router.listen_addr(), "/?status=503").await.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(get(&client, router.listen_addr(), "/?status=404").await.status, StatusCode::NOT_FOUND);
    let stable = router.control().stats().pools.stable;
    assert_eq!((stable.requests, stable.responses_5xx, stable.connect_errors), (2, 1, 0));
    assert_eq!(stable.latency_us.count, 2);
}

#[tokio::test]
async fn stats_of_one_epoch_diff_bucket_by_bucket() {
    let stable = TestUpstream::start("stable").await;
    let candidate = TestUpstream::start("candidate").await;
    let router = router(stable.url(), Some(candidate.url()), 50).await;
    let client = client();
    let addr = router.listen_addr();
    for _ in 0..40 {
        get(&client, addr, "/").await;
    }
    let (_, before) = admin(&router, Method::GET, "/v1/stats", "").await;
    for _ in 0..60 {
        get(&client, addr, "/?sleep_ms=2").await;
    }
    let (status, after) = admin(&router, Method::GET, "/v1/stats", "").await;
    assert_eq!(status, StatusCode::OK);
    assert!(after["at"].as_str().is_some_and(|at| at.parse::<jiff::Timestamp>().is_ok()));
    let mut total = 0;
    for pool in ["stable", "candidate"] {
        let (b, a) = (&before["pools"][pool], &after["pools"][pool]);
        assert_eq!(b["epoch"], a["epoch"]);
        let buckets = |v: &Value| -> HashMap<u64, u64> {
            v["latency_histogram"]
                .as_array()
                .expect("histogram")
                .iter()
                .map(|pair| (pair[0].as_u64().expect("value"), pair[1].as_u64().expect("count")))
                .collect()
        };
        let (hb, ha) = (buckets(b), buckets(a));
        for (value, count) in &hb {
            assert!(ha.get(value).copied().unwrap_or(0) >= *count, "bucket {value} shrank");
        }
        let diff: u64 = ha.values().sum::<u64>() - hb.values().sum::<u64>();
        let requests = a["requests"].as_u64().expect("n") - b["requests"].as_u64().expect("n");
        assert_eq!(diff, requests);
        assert_eq!(a["latency_us"]["count"].as_u64(), Some(ha.values().sum()));
        // The slow interval's requests all took at least 2 ms.
        let slow: u64 = ha
            .iter()
            .filter(|&(value, _)| *value >= 1_900)
            .map(|(value, count)| count - hb.get(value).copied().unwrap_or(0))
            .sum();
        assert_eq!(slow, requests, "{pool}");
        total += requests;
    }
    assert_eq!(total, 60);
}

#[tokio::test]
async fn upstream_change_resets_that_pools_stats() {
    let stable = TestUpstream::start("stable").await;
    let candidate = TestUpstream::start("candidate").await;
    let other = TestUpstream::start("other").await;
    let router = router(stable.url(), Some(candidate.url()), 50).await;
    let client = client();
    for _ in 0..50 {
        get(&client, router.listen_addr(), "/").await;
    }
    let body = serde_json::json!({ "candidate": format!("http://{}", other.addr) }).to_string();
    let (status, state) = admin(&router, Method::PUT, "/v1/upstreams", &body).await;
    assert_eq!(status, StatusCode::OK, "{state}");
    assert_eq!(state["candidate"]["epoch"], 2);
    assert_eq!(state["stable"]["epoch"], 1);
    let stats = router.control().stats();
    assert_eq!(stats.pools.candidate.as_ref().map(|c| c.requests), Some(0));
    assert!(stats.pools.stable.requests > 0);
    let replies = send(&client, Method::GET, format!("http://{}/", router.listen_addr()), "").await;
    assert!(["stable\n", "other\n"].contains(&replies.body.as_str()));
}

#[tokio::test]
async fn shutdown_lets_in_flight_requests_finish() {
    let stable = TestUpstream::start("stable").await;
    let router = router(stable.url(), None, 0).await;
    let addr = router.listen_addr();
    let slow = tokio::spawn(async move { get(&client(), addr, "/?sleep_ms=300").await });
    wait_for_requests(&router, 1).await;
    router.shutdown().await;
    assert_eq!(slow.await.expect("task").status, StatusCode::OK);
    assert!(tokio::net::TcpStream::connect(addr).await.is_err(), "no longer accepting");
}

/// In-process as in the binary: a router on a port another router serves
/// does not start, whichever socket collides.
#[tokio::test]
async fn a_busy_port_is_refused_in_process() {
    let upstream = TestUpstream::start("up").await;
    let mut config = Config::new(upstream.url());
    config.workers = 2;
    let first = Router::start(config.clone()).await.expect("first router");
    for (socket, addr) in [(Socket::Proxy, first.listen_addr()), (Socket::Admin, first.admin_addr())] {
        let mut busy = config.clone();
        match socket {
            Socket::Proxy => busy.listen = addr,
            Socket::Admin => busy.admin = addr,
        }
        match Router::start(busy).await {
            Err(Error::InUse { socket: s, addr: a }) => assert_eq!((s, a), (socket, addr)),
            other => panic!("{socket}: expected InUse, got {other:?}"),
        }
    }
    let mut same = config.clone();
    same.listen = SocketAddr::from(([127, 0, 0, 1], 1));
    same.admin = SocketAddr::from(([0, 0, 0, 0], 1));
    assert!(matches!(Router::start(same).await, Err(Error::SameAddress(_))));
    let reply = get(&client(), first.listen_addr(), "/").await;
    assert_eq!(reply.body, "up\n");
    first.shutdown().await;
}
