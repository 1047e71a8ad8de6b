//! Parsing of the answers the Prometheus HTTP API documents
//! (https://prometheus.io/docs/prometheus/latest/querying/api/); the real
//! server is exercised by `tests/it/prometheus.rs`.

use super::*;

fn data(json: &str) -> Data {
    let api: ApiResponse = serde_json::from_str(json).expect("documented shape");
    assert_eq!(api.status, "success");
    api.data.expect("data")
}

#[test]
fn one_series_or_a_scalar_is_a_value_and_an_empty_vector_is_no_data() {
    let one = r#"{"status":"success","data":{"resultType":"vector","result":[
        {"metric":{},"value":[1435781451.781,"0.0125"]}]}}"#;
    assert_eq!(interpret(data(one), None), Ok(Some(0.0125)));
    let scalar = r#"{"status":"success","data":{"resultType":"scalar","result":[1435781451.781,"3"]}}"#;
    assert_eq!(interpret(data(scalar), None), Ok(Some(3.0)));
    let empty = r#"{"status":"success","data":{"resultType":"vector","result":[]}}"#;
    assert_eq!(interpret(data(empty), None), Ok(None));
}

#[test]
fn nan_is_no_data_and_infinities_are_the_largest_finite_values() {
    let value = |v: &str| {
        let json = format!(
            r#"{{"status":"success","data":{{"resultType":"vector","result":[{{"metric":{{}},"value":[1,"{v}"]}}]}}}}"#
        );
        interpret(data(&json), None)
    };
    assert_eq!(value("NaN"), Ok(None));
    assert_eq!(value("+Inf"), Ok(Some(f64::MAX)));
    assert_eq!(value("-Inf"), Ok(Some(-f64::MAX)));
    assert_eq!(value("1e-3"), Ok(Some(0.001)));
    assert!(value("lots").expect_err("not a number").contains("\"lots\""));
    // f64::MAX survives the record's JSON; infinity would not.
    let back: f64 = serde_json::from_str(&serde_json::to_string(&f64::MAX).expect("json")).expect("parses");
    assert_eq!(back, f64::MAX);
}

#[test]
fn several_series_are_an_error_that_names_their_labels() {
    let json = r#"{"status":"success","data":{"resultType":"vector","result":[
        {"metric":{"__name__":"up","job":"demo","version":"v1"},"value":[1,"1"]},
        {"metric":{"__name__":"up","job":"demo","version":"v2"},"value":[1,"0"]}]}}"#;
    let error = interpret(data(json), None).expect_err("two series");
    assert!(error.contains("2 series"), "{error}");
    assert!(error.contains(r#"up{job="demo",version="v1"}, up{job="demo",version="v2"}"#), "{error}");
    assert!(error.contains("sum(...)"), "{error}");
}

#[test]
fn range_answers_are_reduced_and_a_range_vector_from_an_instant_query_is_refused() {
    let json = r#"{"status":"success","data":{"resultType":"matrix","result":[
        {"metric":{"version":"v2"},"values":[[1,"0.01"],[2,"NaN"],[3,"0.04"],[4,"0.02"]]}]}}"#;
    assert_eq!(interpret(data(json), Some(Reduce::Max)), Ok(Some(0.04)));
    assert_eq!(interpret(data(json), Some(Reduce::Last)), Ok(Some(0.02)));
    assert_eq!(interpret(data(json), Some(Reduce::Min)), Ok(Some(0.01)));
    let error = interpret(data(json), None).expect_err("range vector");
    assert!(error.contains("rate(...)"), "{error}");
    let all_nan = r#"{"status":"success","data":{"resultType":"matrix","result":[
        {"metric":{},"values":[[1,"NaN"],[2,"NaN"]]}]}}"#;
    assert_eq!(interpret(data(all_nan), Some(Reduce::Mean)), Ok(None));
    let none = r#"{"status":"success","data":{"resultType":"matrix","result":[]}}"#;
    assert_eq!(interpret(data(none), Some(Reduce::Mean)), Ok(None));
    let string = r#"{"status":"success","data":{"resultType":"string","result":[1,"hello"]}}"#;
    assert!(interpret(data(string), None).expect_err("string").contains("\"hello\""));
}

#[test]
fn errors_keep_prometheus_words() {
    let json = r#"{"status":"error","errorType":"bad_data","error":"1:6: parse error: unexpected \")\""}"#;
    let api: ApiResponse = serde_json::from_str(json).expect("documented shape");
    assert_eq!(api.error_type.as_deref(), Some("bad_data"));
    assert_eq!(api.error.as_deref(), Some("1:6: parse error: unexpected \")\""));
}

#[test]
fn form_encoding_and_api_times() {
    let body = form_encode(&[("query", r#"sum(rate(x{status=~"5.."}[1m])) / 2"#.into()), ("time", "1.5".into())]);
    assert_eq!(body, "query=sum%28rate%28x%7Bstatus%3D%7E%225..%22%7D%5B1m%5D%29%29+%2F+2&time=1.5");
    let t = Timestamp::from_millisecond(1_700_000_000_042).expect("valid");
    assert_eq!(unix(t), "1700000000.042");
    assert_eq!(seconds(Duration::from_millis(2500)), "2.500");
    let window = |secs: i64| Window { start: t, end: t + jiff::SignedDuration::from_secs(secs) };
    assert_eq!(range_step(window(10), None), Duration::from_secs(1));
    assert_eq!(range_step(window(3600), None), Duration::from_millis(3600));
    assert_eq!(range_step(window(10), Some(Duration::from_millis(250))), Duration::from_millis(250));
}
