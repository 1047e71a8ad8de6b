//! The Prometheus metric source: PromQL over the HTTP API.
//!
//! Instant queries (`/api/v1/query`) are evaluated at the interval's end;
//! range queries (`/api/v1/query_range`) over the interval's window, their
//! points reduced to one value as the check says. Both are sent as form
//! POSTs, so long PromQL never meets a URL length limit.
//!
//! What comes back is sorted into three outcomes, never into "no errors":
//!
//! * a value, or no data (an empty vector; a NaN, which is what PromQL gives
//!   for 0/0, e.g. an error ratio with no requests); ±Inf is kept as
//!   ±`f64::MAX`, the largest value JSON can carry into the record, so it
//!   fails an upper limit and passes a lower one;
//! * a query that cannot be judged (Prometheus refused it with `bad_data` or
//!   `execution`, or it answered several series, a range vector or a
//!   string): an error of that check only, not retried;
//! * a source failure (no connection, timeout, a 5xx, an answer that is not
//!   the Prometheus API): retried with [`Backoff`], then a [`ProviderError`]
//!   that carries Prometheus's own `errorType` and `error` when it sent them.
//!
//! Prometheus has no batch endpoint, so the queries of one interval are sent
//! concurrently.

use crate::ProviderError;
use crate::error::error_chain;
use crate::metrics::{Answer, Query, Window};
use crate::retry::Backoff;
use crate::timeouts;
use jiff::Timestamp;
use serde::Deserialize;
use sluice_analysis::Reduce;
use std::collections::BTreeMap;
use std::time::Duration;

const PROVIDER: &str = "prometheus";

/// Points a range query may return before its step is made coarser.
const MAX_POINTS: u128 = 1_000;

/// A Prometheus server's HTTP API.
#[derive(Clone, Debug)]
pub struct Prometheus {
    name: String,
    base: String,
    timeout: Duration,
    client: reqwest::Client,
    backoff: Backoff,
}

impl Prometheus {
    /// A client of the server at `url` (its base URL, a path prefix kept);
    /// `timeout` bounds each attempt of each query.
    pub fn new(name: &str, url: &str, timeout: Duration, backoff: Backoff) -> Prometheus {
        let client = reqwest::Client::builder()
            .connect_timeout(timeouts::PROMETHEUS_CONNECT.min(timeout))
            .build()
            .expect("a client with a connect timeout always builds");
        Prometheus { name: name.to_owned(), base: url.trim_end_matches('/').to_owned(), timeout, client, backoff }
    }

    /// The source's name from config.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Answers every query for the window, concurrently; `Err` when the
    /// server itself failed for any of them (after retries).
    pub async fn answer(&self, window: Window, queries: &[Query]) -> Result<Vec<Answer>, ProviderError> {
        let mut tasks = tokio::task::JoinSet::new();
        for (i, query) in queries.iter().enumerate() {
            let (source, query) = (self.clone(), query.clone());
            tasks.spawn(async move { (i, source.query(&query, window).await) });
        }
        let mut answers: Vec<Option<Answer>> = vec![None; queries.len()];
        let mut failure = None;
        while let Some(joined) = tasks.join_next().await {
            match joined {
                Ok((i, Ok(answer))) => answers[i] = Some(answer),
                Ok((_, Err(e))) => failure = failure.or(Some(e)),
                Err(e) => {
                    failure = failure.or(Some(ProviderError {
                        provider: PROVIDER,
                        operation: format!("query source {:?}", self.name),
                        message: format!("a query task ended abnormally: {e}"),
                        transient: false,
                        attempts: 1,
                    }))
                }
            }
        }
        if let Some(e) = failure {
            return Err(e);
        }
        Ok(answers.into_iter().map(|a| a.unwrap_or_else(|| Err("no answer was recorded".into()))).collect())
    }

    /// One query (instant or range, as the query says), with retries.
    pub async fn query(&self, query: &Query, window: Window) -> Result<Answer, ProviderError> {
        let timeout = seconds(self.timeout);
        let (path, form, operation) = match query.reduce {
            None => (
                "/api/v1/query",
                vec![("query", query.text.clone()), ("time", unix(window.end)), ("timeout", timeout)],
                format!("run the instant query of check {:?}", query.check),
            ),
            Some(_) => (
                "/api/v1/query_range",
                vec![
                    ("query", query.text.clone()),
                    ("start", unix(window.start)),
                    ("end", unix(window.end)),
                    ("step", seconds(range_step(window, query.step))),
                    ("timeout", timeout),
                ],
                format!("run the range query of check {:?}", query.check),
            ),
        };
        let url = format!("{}{path}", self.base);
        let body = form_encode(&form);
        let response = self
            .backoff
            .run(|| async {
                let fail = |message: String, transient: bool| ProviderError {
                    provider: PROVIDER,
                    operation: operation.clone(),
                    message,
                    transient,
                    attempts: 1,
                };
                let sent = self
                    .client
                    .post(&url)
                    .header(reqwest::header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                    .body(body.clone())
                    // A little longer than Prometheus's own timeout, so its
                    // `timeout` error (with its words) arrives first.
                    .timeout(self.timeout + timeouts::PROMETHEUS_MARGIN)
                    .send()
                    .await
                    .map_err(|e| {
                        let message = if e.is_timeout() {
                            format!("{url}: no answer within {}", humantime::format_duration(self.timeout))
                        } else {
                            format!("{url}: {}", error_chain(&e))
                        };
                        fail(message, true)
                    })?;
                let status = sent.status();
                let text = sent.text().await.map_err(|e| fail(format!("{url}: {}", error_chain(&e)), true))?;
                match serde_json::from_str::<ApiResponse>(&text) {
                    Ok(api) if api.status == "success" => Ok(Reply::Data(api.data)),
                    Ok(api) => {
                        let kind = api.error_type.unwrap_or_else(|| "unknown".into());
                        let error = api.error.unwrap_or_else(|| "no message".into());
                        // 400 bad_data and 422 execution: the query is at
                        // fault, the server is fine.
                        if status.as_u16() == 400 || status.as_u16() == 422 {
                            Ok(Reply::Refused(format!("Prometheus refused the query ({kind}): {error}")))
                        } else {
                            Err(fail(format!("{url} answered {status} ({kind}): {error}"), status.is_server_error()))
                        }
                    }
                    Err(_) => Err(fail(
                        format!(
                            "{url} answered {status}, which is not the Prometheus query API: {}; \
                             check the source's url (the server's base URL, e.g. http://127.0.0.1:9090)",
                            snippet(&text)
                        ),
                        status.is_server_error(),
                    )),
                }
            })
            .await?;
        Ok(match response {
            Reply::Refused(message) => Err(message),
            Reply::Data(None) => Err("Prometheus answered success without data".into()),
            Reply::Data(Some(data)) => interpret(data, query.reduce),
        })
    }
}

enum Reply {
    Data(Option<Data>),
    Refused(String),
}

/// The envelope of every Prometheus API answer.
#[derive(Deserialize)]
struct ApiResponse {
    status: String,
    #[serde(default)]
    data: Option<Data>,
    #[serde(default, rename = "errorType")]
    error_type: Option<String>,
    #[serde(default)]
    error: Option<String>,
}

/// `data` of a query answer: `{"resultType": ..., "result": ...}`.
#[derive(Deserialize)]
#[serde(tag = "resultType", content = "result", rename_all = "lowercase")]
enum Data {
    Vector(Vec<Sample>),
    Matrix(Vec<Series>),
    Scalar(Point),
    String(Point),
}

/// `[<unix seconds>, "<value>"]`
type Point = (f64, String);

#[derive(Deserialize)]
struct Sample {
    #[serde(default)]
    metric: BTreeMap<String, String>,
    /// Absent for a native histogram sample.
    #[serde(default)]
    value: Option<Point>,
}

#[derive(Deserialize)]
struct Series {
    #[serde(default)]
    metric: BTreeMap<String, String>,
    #[serde(default)]
    values: Vec<Point>,
}

/// Turns an answer into the one value a check judges.
fn interpret(data: Data, reduce: Option<Reduce>) -> Answer {
    match (data, reduce) {
        (Data::Scalar((_, value)), _) => Ok(judgeable(parse_value(&value)?)),
        (Data::Vector(samples), _) => match &samples[..] {
            [] => Ok(None),
            [one] => match &one.value {
                Some((_, value)) => Ok(judgeable(parse_value(value)?)),
                None => Err(format!(
                    "the series {} holds a native histogram, not a number; reduce it, e.g. with \
                     histogram_quantile(0.99, ...)",
                    labels(&one.metric)
                )),
            },
            several => Err(several_series(several.iter().map(|s| &s.metric))),
        },
        (Data::Matrix(series), Some(reduce)) => match &series[..] {
            [] => Ok(None),
            [one] => {
                let points = one
                    .values
                    .iter()
                    .map(|(_, v)| parse_value(v).map(clamp_infinite))
                    .collect::<Result<Vec<_>, _>>()?;
                Ok(reduce.apply(&points))
            }
            several => Err(several_series(several.iter().map(|s| &s.metric))),
        },
        (Data::Matrix(_), None) => Err("the query returns a range vector (it ends in a [range]); wrap it in a \
                                        function such as rate(...) or max_over_time(...) to get one value"
            .into()),
        (Data::String((_, text)), _) => Err(format!("the query returns the string {text:?}, not a number")),
    }
}

/// NaN is no data (PromQL's 0/0); ±Inf becomes ±`f64::MAX` (see the module docs).
fn judgeable(value: f64) -> Option<f64> {
    if value.is_nan() { None } else { Some(clamp_infinite(value)) }
}

fn clamp_infinite(value: f64) -> f64 {
    if value.is_infinite() { f64::MAX.copysign(value) } else { value }
}

/// Prometheus writes sample values as strings: decimal, `NaN`, `+Inf`, `-Inf`.
fn parse_value(text: &str) -> Result<f64, String> {
    match text {
        "NaN" => Ok(f64::NAN),
        "+Inf" | "Inf" => Ok(f64::INFINITY),
        "-Inf" => Ok(f64::NEG_INFINITY),
        _ => text.parse::<f64>().map_err(|_| format!("Prometheus answered {text:?}, which is not a number")),
    }
}

fn several_series<'a>(metrics: impl ExactSizeIterator<Item = &'a BTreeMap<String, String>>) -> String {
    let n = metrics.len();
    let shown: Vec<String> = metrics.take(3).map(labels).collect();
    let more = if n > 3 { ", …" } else { "" };
    format!(
        "the query answered {n} series where one value is needed: {}{more}; aggregate them, e.g. \
         sum(...) or max(...), or select one with label matchers",
        shown.join(", ")
    )
}

/// `{job="demo",version="v2"}`, as Prometheus prints a label set.
fn labels(metric: &BTreeMap<String, String>) -> String {
    let name = metric.get("__name__").map(String::as_str).unwrap_or_default();
    let pairs: Vec<String> =
        metric.iter().filter(|(k, _)| *k != "__name__").map(|(k, v)| format!("{k}={v:?}")).collect();
    format!("{name}{{{}}}", pairs.join(","))
}

/// The step of a range query: as configured, else 1s, coarser when the
/// window would hold more than [`MAX_POINTS`] points.
pub fn range_step(window: Window, configured: Option<Duration>) -> Duration {
    if let Some(step) = configured {
        return step;
    }
    let millis = window.end.duration_since(window.start).as_millis().max(0) as u128;
    Duration::from_millis(u64::try_from(millis.div_ceil(MAX_POINTS).max(1000)).unwrap_or(u64::MAX))
}

/// Unix seconds with milliseconds, as the API takes a time.
fn unix(t: Timestamp) -> String {
    let ms = t.as_millisecond();
    format!("{}.{:03}", ms.div_euclid(1000), ms.rem_euclid(1000))
}

/// Seconds, as the API takes a duration (`timeout`, `step`).
fn seconds(d: Duration) -> String {
    format!("{}.{:03}", d.as_secs(), d.subsec_millis())
}

/// `application/x-www-form-urlencoded`, as HTML forms encode.
fn form_encode(pairs: &[(&str, String)]) -> String {
    fn encode(text: &str, out: &mut String) {
        for byte in text.bytes() {
            match byte {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'*' | b'-' | b'.' | b'_' => out.push(char::from(byte)),
                b' ' => out.push('+'),
                _ => out.push_str(&format!("%{byte:02X}")),
            }
        }
    }
    let mut out = String::new();
    for (i, (key, value)) in pairs.iter().enumerate() {
        if i > 0 {
            out.push('&');
        }
        encode(key, &mut out);
        out.push('=');
        encode(value, &mut out);
    }
    out
}

/// The start of an unexpected answer, on one line.
fn snippet(text: &str) -> String {
    let line: String = text.chars().take(200).map(|c| if c.is_control() { ' ' } else { c }).collect();
    if line.trim().is_empty() { "an empty body".into() } else { format!("{:?}", line.trim()) }
}

#[cfg(test)]
mod tests;
