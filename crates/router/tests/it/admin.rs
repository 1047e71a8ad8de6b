use hyper::{Method, StatusCode};
use serde_json::json;

use crate::support::{TestUpstream, admin, client, get, router};

#[tokio::test]
async fn state_and_health() {
    let stable = TestUpstream::start("stable").await;
    let candidate = TestUpstream::start("candidate").await;
    let router = router(stable.url(), Some(candidate.url()), 10).await;
    let (status, state) = admin(&router, Method::GET, "/v1/state", "").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        state,
        json!({
            "candidate_weight": 10,
            "stable": {"upstream": format!("http://{}", stable.addr), "epoch": 1},
            "candidate": {"upstream": format!("http://{}", candidate.addr), "epoch": 1},
            "generation": 1,
        })
    );
    let health = get(&client(), router.admin_addr(), "/healthz").await;
    assert_eq!(health.status, StatusCode::OK);
    let (status, body) = admin(&router, Method::GET, "/v1/nope", "").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(body["error"].as_str().is_some());
    let (status, _) = admin(&router, Method::POST, "/v1/weights", "{}").await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
}

#[tokio::test]
async fn bad_weights_are_400_and_change_nothing() {
    let stable = TestUpstream::start("stable").await;
    let candidate = TestUpstream::start("candidate").await;
    let router = router(stable.url(), Some(candidate.url()), 10).await;
    let before = router.control().state();
    for (body, message) in [
        (r#"{"candidate_weight":101}"#, "candidate_weight must be an integer from 0 to 100, got 101"),
        (r#"{"candidate_weight":-1}"#, "candidate_weight must be an integer from 0 to 100, got -1"),
        (r#"{"candidate_weight":"abc"}"#, "candidate_weight must be an integer from 0 to 100, got \"abc\""),
        (r#"{"candidate_weight":12.5}"#, "got 12.5"),
        (r#"{}"#, "missing field \"candidate_weight\""),
        ("", "not valid JSON"),
        ("[10]", "must be a JSON object"),
        (r#"{"candidate_weight":5,"extra":1}"#, "unknown field \"extra\""),
    ] {
        let (status, reply) = admin(&router, Method::PUT, "/v1/weights", body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        let error = reply["error"].as_str().expect("error message");
        assert!(error.contains(message), "{body}: {error}");
        assert_eq!(router.control().state(), before, "{body} changed the state");
    }
    let (status, state) = admin(&router, Method::PUT, "/v1/weights", r#"{"candidate_weight":25}"#).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!((state["candidate_weight"].as_u64(), state["generation"].as_u64()), (Some(25), Some(2)));
}

#[tokio::test]
async fn weight_without_candidate_is_409() {
    let stable = TestUpstream::start("stable").await;
    let router = router(stable.url(), None, 0).await;
    let (status, reply) = admin(&router, Method::PUT, "/v1/weights", r#"{"candidate_weight":5}"#).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert!(reply["error"].as_str().expect("error").contains("no candidate upstream"));
    let (status, _) = admin(&router, Method::PUT, "/v1/weights", r#"{"candidate_weight":0}"#).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(router.control().state().generation, 1, "no-op change keeps the generation");
}

#[tokio::test]
async fn bad_upstreams_are_400_and_change_nothing() {
    let stable = TestUpstream::start("stable").await;
    let router = router(stable.url(), None, 0).await;
    let before = router.control().state();
    for (body, message) in [
        (r#"{"stable":"https://127.0.0.1:1"}"#, "only http://"),
        (r#"{"stable":"http://127.0.0.1"}"#, "missing port"),
        (r#"{"stable":"http://127.0.0.1:1","candidate":"nope"}"#, "candidate: invalid upstream url"),
        (r#"{"stable":null}"#, "stable cannot be null"),
        (r#"{}"#, "nothing to change"),
    ] {
        let (status, reply) = admin(&router, Method::PUT, "/v1/upstreams", body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        assert!(reply["error"].as_str().expect("error").contains(message), "{body}: {reply}");
        assert_eq!(router.control().state(), before);
    }
}

#[tokio::test]
async fn promote_makes_candidate_stable() {
    let stable = TestUpstream::start("v1").await;
    let candidate = TestUpstream::start("v2").await;
    let router = router(stable.url(), Some(candidate.url()), 50).await;
    let client = client();
    for _ in 0..20 {
        get(&client, router.listen_addr(), "/").await;
    }
    let (status, state) = admin(&router, Method::POST, "/v1/promote", "").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        state,
        json!({
            "candidate_weight": 0,
            "stable": {"upstream": format!("http://{}", candidate.addr), "epoch": 2},
            "candidate": null,
            "generation": 2,
        })
    );
    let stats = router.control().stats();
    assert_eq!(stats.pools.stable.requests, 0, "stable stats start over");
    assert!(stats.pools.candidate.is_none());
    for _ in 0..20 {
        let reply = get(&client, router.listen_addr(), "/").await;
        assert_eq!((reply.pool.as_str(), reply.body.as_str()), ("stable", "v2\n"));
    }
    let (status, reply) = admin(&router, Method::POST, "/v1/promote", "").await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert!(reply["error"].as_str().expect("error").contains("cannot promote"));
    assert_eq!(router.control().state().generation, 2);
}

#[tokio::test]
async fn metrics_expose_counters() {
    let stable = TestUpstream::start("stable").await;
    let router = router(stable.url(), None, 0).await;
    let client = client();
    for _ in 0..3 {
        get(&client, router.listen_addr(), "/").await;
    }
    let reply = get(&client, router.admin_addr(), "/metrics").await;
    assert_eq!(reply.status, StatusCode::OK);
    assert!(reply.body.contains("sluice_router_requests_total{pool=\"stable\"} 3\n"), "{}", reply.body);
    assert!(reply.body.contains("sluice_router_candidate_weight 0\n"));
    assert!(!reply.body.contains("pool=\"candidate\""));
}
