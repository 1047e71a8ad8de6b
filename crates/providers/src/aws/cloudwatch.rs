//! The CloudWatch metric source: `query` checks answered from
//! `GetMetricData` (one batched call per interval for all of them),
//! CloudWatch alarms as checks (`DescribeAlarms`), the ALB target groups'
//! traffic as the candidate's and stable's pool windows, and optional
//! deployment metrics (`PutMetricData`, one call per step).
//!
//! Windows: every interval asks for whole periods aligned to the minute,
//! ending `delay` behind the clock (CloudWatch publishes late) and looking
//! back `lookback`. The pools' traffic counts each minute once: after the
//! first interval, only minutes not counted before. The window asked for is
//! returned for the evidence.
//!
//! Query text (the check's `query`):
//! - `alarm NAME`: `OK` is 0, `ALARM` is 1, `INSUFFICIENT_DATA` is no data
//!   (inconclusive, never a pass); judge it with `max = 0`.
//! - `codedeploy_alarms ["APPLICATION", "DEPLOYMENT_GROUP"]`: the alarms the
//!   deployment group watches (its alarm configuration, read from
//!   CodeDeploy every interval): how many are in `ALARM`, 0 when all are
//!   `OK`, no data while some lack data; an error when the group watches
//!   none. CodeDeploy's built-in check.
//! - `alb WHAT [candidate|stable]`: ready-made ALB target group metrics:
//!   `5xx_rate` (`HTTPCode_Target_5XX_Count` / `RequestCount`), `5xx_count`,
//!   `requests`, `p95` and `p99` (`TargetResponseTime`, seconds),
//!   `healthy_hosts` (the window's minimum `HealthyHostCount`) and
//!   `unhealthy_hosts` (its maximum `UnHealthyHostCount`).
//! - `alb latency_vs_stable`: the candidate's average `TargetResponseTime`
//!   against stable's in the same periods, as the seconds by which it
//!   exceeded `max(1.2 × stable's, stable's + 10 ms)` in each of the latest
//!   3 periods (the least of them; above 0 fails with `max = 0`); no data
//!   until 3 periods (fewer when the look-back holds fewer) have at least
//!   20 requests timed in both groups. A threshold, not a significance
//!   test: CloudWatch keeps per-period statistics, not requests. The
//!   ALB's built-in latency check.
//! - `STAT NAMESPACE METRIC [NAME=VALUE ...]`: any metric, e.g.
//!   `Sum MyApp/Orders Failed Service=shop Version=${release}`; STAT is
//!   `Sum`, `Average`, `Minimum`, `Maximum`, `SampleCount` or a percentile
//!   `p99`/`p99.9`. A value `@candidate` or `@stable` stands for that target
//!   group's `TargetGroup` dimension and `@load_balancer` for the ALB's
//!   `LoadBalancer` dimension.
//!
//! The points of the window become one value: the sum for `Sum` and
//! `SampleCount`, the mean for `Average`, the smallest for `Minimum`, the
//! largest for `Maximum` and percentiles (the worst period). No point is no
//! data.

use super::{Aws, AwsSettings, sdk_error};
use crate::ProviderError;
use crate::metrics::{Answer, Query, Window};
use aws_sdk_cloudwatch::Client;
use aws_sdk_cloudwatch::primitives::DateTime;
use aws_sdk_cloudwatch::types::{
    AlarmType, Dimension, Metric, MetricDataQuery, MetricDatum, MetricStat, ScanBy, StandardUnit, StateValue,
};
use jiff::Timestamp;
use sluice_analysis::PoolWindow;
use sluice_core::record::RouterState;
use std::collections::BTreeMap;
use std::time::Duration;

const PROVIDER: &str = "cloudwatch";
const ALB_NAMESPACE: &str = "AWS/ApplicationELB";

/// The ALB dimensions of an environment: its load balancer and the target
/// groups in their current roles.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AlbDims {
    /// `app/NAME/ID`
    pub load_balancer: String,
    /// `targetgroup/NAME/ID`
    pub candidate: String,
    pub stable: String,
}

impl AlbDims {
    /// The dimensions of an ALB router's state (listener or rule ARN and
    /// both target group ARNs), or of a CodeDeploy router's state before
    /// its deployment (its production listener, the original target group
    /// as stable and the replacement as candidate).
    pub fn from_state(state: &RouterState) -> Option<AlbDims> {
        let arn = state.listener.as_deref().or(state.resource.as_deref())?;
        let resource = arn.splitn(6, ':').nth(5)?;
        let rest = resource.strip_prefix("listener-rule/").or_else(|| resource.strip_prefix("listener/"))?;
        let parts: Vec<&str> = rest.split('/').take(3).collect();
        if parts.len() != 3 {
            return None;
        }
        let group = |arn: &str| arn.splitn(6, ':').nth(5).filter(|r| r.starts_with("targetgroup/")).map(str::to_owned);
        Some(AlbDims {
            load_balancer: parts.join("/"),
            candidate: group(state.candidate.as_deref()?)?,
            stable: group(state.stable.as_deref()?)?,
        })
    }
}

/// Settings of a CloudWatch source.
#[derive(Clone, Debug)]
pub struct CloudWatchSettings {
    pub name: String,
    pub period: Duration,
    pub lookback: Duration,
    pub delay: Duration,
    pub alb_traffic: bool,
}

/// What one interval's call found.
#[derive(Clone, Debug, Default)]
pub struct CloudWatchAnswer {
    /// One answer per query, in order.
    pub answers: Vec<Answer>,
    /// The pools' traffic over the minutes not counted before, when the
    /// source reads the ALB's traffic: `(candidate, stable)`.
    pub pools: Option<(Option<PoolWindow>, Option<PoolWindow>)>,
    /// The window asked for: aligned start and end, and the period.
    pub window: Option<(Timestamp, Timestamp, Duration)>,
    /// Where the periods counted into `pools` start (the first interval:
    /// the window's start; later ones: the end of the periods counted
    /// before), when the pools' traffic holds any.
    pub counted_from: Option<Timestamp>,
}

/// A CloudWatch metric source.
#[derive(Clone, Debug)]
pub struct CloudWatch {
    aws: Aws,
    settings: CloudWatchSettings,
    /// End of the minutes already counted into the pools.
    counted_until: std::sync::Arc<std::sync::Mutex<Option<i64>>>,
}

/// One parsed query.
#[derive(Clone, Debug, PartialEq)]
enum Parsed {
    Alarm(String),
    /// Metric stats whose reduced values give the answer: one, or two for a
    /// ratio (numerator, denominator).
    Metric(MetricSpec),
    Ratio(MetricSpec, MetricSpec),
    /// The candidate's average `TargetResponseTime` against stable's, period
    /// by period ([`latency_excess`]).
    LatencyVsStable(AlbDims),
    /// The alarms of a CodeDeploy deployment group: application, group.
    GroupAlarms(String, String),
}

#[derive(Clone, Debug, PartialEq)]
struct MetricSpec {
    stat: String,
    namespace: String,
    metric: String,
    dimensions: Vec<(String, String)>,
}

impl CloudWatch {
    pub fn new(aws: AwsSettings, settings: CloudWatchSettings) -> CloudWatch {
        CloudWatch::with_aws(Aws::new(aws), settings)
    }

    /// The same with an AWS config given (tests).
    pub fn with_aws(aws: Aws, settings: CloudWatchSettings) -> CloudWatch {
        CloudWatch { aws, settings, counted_until: Default::default() }
    }

    pub fn name(&self) -> &str {
        &self.settings.name
    }

    pub fn reads_alb_traffic(&self) -> bool {
        self.settings.alb_traffic
    }

    async fn client(&self) -> Result<Client, ProviderError> {
        Ok(Client::new(self.aws.config(PROVIDER).await?))
    }

    /// The aligned window for an interval that ends at `end`.
    pub fn window(&self, end: Timestamp) -> (i64, i64) {
        let end = end.as_second() - i64::try_from(self.settings.delay.as_secs()).unwrap_or(0);
        let end = end - end.rem_euclid(60);
        let lookback = i64::try_from(self.settings.lookback.as_secs()).unwrap_or(300);
        (end - lookback, end)
    }

    /// Answers the interval's queries (and the pools' traffic) with one
    /// `GetMetricData` call, and one `DescribeAlarms` call when alarms are
    /// asked about.
    pub async fn answer(
        &self,
        interval: Window,
        queries: &[Query],
        alb: Option<&AlbDims>,
    ) -> Result<CloudWatchAnswer, ProviderError> {
        let (start, end) = self.window(interval.end);
        let period = i32::try_from(self.settings.period.as_secs()).unwrap_or(60);
        let mut answers: Vec<Option<Answer>> = vec![None; queries.len()];
        let mut parsed = Vec::with_capacity(queries.len());
        for (i, query) in queries.iter().enumerate() {
            match parse(&query.text, alb) {
                Ok(p) => parsed.push(Some(p)),
                Err(e) => {
                    answers[i] = Some(Err(e));
                    parsed.push(None);
                }
            }
        }
        // Every metric of the call, by id.
        let mut stats: Vec<(String, MetricSpec)> = Vec::new();
        for (i, p) in parsed.iter().enumerate() {
            match p {
                Some(Parsed::Metric(m)) => stats.push((format!("q{i}"), m.clone())),
                Some(Parsed::Ratio(a, b)) => {
                    stats.push((format!("q{i}a"), a.clone()));
                    stats.push((format!("q{i}b"), b.clone()));
                }
                Some(Parsed::LatencyVsStable(dims)) => {
                    for (pool, group) in [("c", &dims.candidate), ("s", &dims.stable)] {
                        for (what, stat) in [("avg", "Average"), ("n", "SampleCount")] {
                            let metric = alb_metric(stat, "TargetResponseTime", &dims.load_balancer, group);
                            stats.push((format!("q{i}{pool}{what}"), metric));
                        }
                    }
                }
                _ => {}
            }
        }
        let pools_dims = if self.settings.alb_traffic {
            match alb {
                Some(dims) => Some(dims.clone()),
                None => {
                    return Err(fail(
                        "read the ALB's traffic",
                        "no ALB dimensions: the router's state did not name the load balancer and target groups".into(),
                    ));
                }
            }
        } else {
            None
        };
        if let Some(dims) = &pools_dims {
            for (pool, group) in [("c", &dims.candidate), ("s", &dims.stable)] {
                for (what, metric) in [("req", "RequestCount"), ("err", "HTTPCode_Target_5XX_Count")] {
                    stats.push((format!("pool_{pool}_{what}"), alb_metric("Sum", metric, &dims.load_balancer, group)));
                }
            }
        }
        let operation = format!(
            "read {} metrics from {} to {}",
            stats.len(),
            Timestamp::from_second(start).map_or_else(|_| start.to_string(), |t| t.to_string()),
            Timestamp::from_second(end).map_or_else(|_| end.to_string(), |t| t.to_string())
        );
        let client = self.client().await?;
        let points = if stats.is_empty() {
            BTreeMap::new()
        } else {
            self.get_metric_data(&client, &stats, start, end, period, &operation).await?
        };
        // The deployment groups' alarms, read from CodeDeploy each interval
        // (a group's alarms may change while a stage runs).
        let mut groups: BTreeMap<(String, String), Vec<String>> = BTreeMap::new();
        for p in parsed.iter().flatten() {
            if let Parsed::GroupAlarms(application, group) = p
                && !groups.contains_key(&(application.clone(), group.clone()))
            {
                let names = super::codedeploy::group_alarms(&self.aws, application, group).await?;
                groups.insert((application.clone(), group.clone()), names);
            }
        }
        let alarms: Vec<&str> = parsed
            .iter()
            .filter_map(|p| match p {
                Some(Parsed::Alarm(name)) => Some(std::slice::from_ref(name)),
                Some(Parsed::GroupAlarms(a, g)) => groups.get(&(a.clone(), g.clone())).map(Vec::as_slice),
                _ => None,
            })
            .flatten()
            .map(String::as_str)
            .collect();
        let states = if alarms.is_empty() { BTreeMap::new() } else { self.alarm_states(&client, &alarms).await? };
        for (i, p) in parsed.iter().enumerate() {
            let Some(p) = p else { continue };
            let answer = match p {
                Parsed::Alarm(name) => match states.get(name.as_str()) {
                    Some(StateValue::Ok) => Ok(Some(0.0)),
                    Some(StateValue::Alarm) => Ok(Some(1.0)),
                    // No data is never a pass.
                    Some(StateValue::InsufficientData) => Ok(None),
                    Some(other) => Err(format!("alarm {name:?} is in an unknown state {:?}", other.as_str())),
                    None => Err(format!("no alarm named {name:?} in this region; check the name")),
                },
                Parsed::Metric(m) => Ok(reduce(&m.stat, values(&points, &format!("q{i}")))),
                Parsed::Ratio(_, _) => {
                    let errors: f64 = values(&points, &format!("q{i}a")).iter().sum();
                    let requests: f64 = values(&points, &format!("q{i}b")).iter().sum();
                    Ok(if requests > 0.0 { Some(errors / requests) } else { None })
                }
                Parsed::GroupAlarms(application, group) => {
                    let names = groups.get(&(application.clone(), group.clone())).cloned().unwrap_or_default();
                    group_alarm_answer(application, group, &names, &states)
                }
                Parsed::LatencyVsStable(_) => {
                    let series = |what: &str| points.get(&format!("q{i}{what}")).cloned().unwrap_or_default();
                    let pool = |p: &str| periods(&series(&format!("{p}avg")), &series(&format!("{p}n")));
                    Ok(latency_excess(&pool("c"), &pool("s"), self.latency_periods()))
                }
            };
            answers[i] = Some(answer);
        }
        let counted = pools_dims.map(|_| self.pools(&points, start, end));
        let counted_from = counted.as_ref().and_then(|(_, from)| *from).and_then(|t| Timestamp::from_second(t).ok());
        let pools = counted.map(|(pools, _)| pools);
        Ok(CloudWatchAnswer {
            answers: answers.into_iter().map(|a| a.unwrap_or(Ok(None))).collect(),
            pools,
            window: Timestamp::from_second(start)
                .ok()
                .zip(Timestamp::from_second(end).ok())
                .map(|(s, e)| (s, e, self.settings.period)),
            counted_from,
        })
    }

    /// How many recent periods [`latency_excess`] needs: [`LATENCY_PERIODS`],
    /// or as many as the look-back holds when it holds fewer.
    fn latency_periods(&self) -> usize {
        let held = self.settings.lookback.as_secs() / self.settings.period.as_secs().max(1);
        usize::try_from(held).unwrap_or(LATENCY_PERIODS).clamp(1, LATENCY_PERIODS)
    }

    /// The pools' traffic over the minutes of `[start, end)` not counted
    /// yet, and where those minutes start (`None` when there are none).
    #[allow(clippy::type_complexity)]
    fn pools(
        &self,
        points: &BTreeMap<String, Vec<(i64, f64)>>,
        start: i64,
        end: i64,
    ) -> ((Option<PoolWindow>, Option<PoolWindow>), Option<i64>) {
        let mut counted = self.counted_until.lock().unwrap_or_else(|p| p.into_inner());
        let from = counted.map_or(start, |c| c.max(start));
        if from >= end {
            return ((None, None), None);
        }
        *counted = Some(end);
        let sum = |id: &str| -> Option<f64> {
            let selected: Vec<f64> =
                points.get(id).into_iter().flatten().filter(|(t, _)| *t >= from && *t < end).map(|(_, v)| *v).collect();
            if selected.is_empty() { None } else { Some(selected.iter().sum()) }
        };
        let window = |pool: &str| {
            let requests = sum(&format!("pool_{pool}_req"))?;
            let errors = sum(&format!("pool_{pool}_err")).unwrap_or(0.0);
            // Counts: whole, non-negative numbers.
            let requests = requests.max(0.0).round() as u64;
            let errors = (errors.max(0.0).round() as u64).min(requests);
            Some(PoolWindow { requests, errors, latency: Default::default() })
        };
        ((window("c"), window("s")), Some(from))
    }

    async fn get_metric_data(
        &self,
        client: &Client,
        stats: &[(String, MetricSpec)],
        start: i64,
        end: i64,
        period: i32,
        operation: &str,
    ) -> Result<BTreeMap<String, Vec<(i64, f64)>>, ProviderError> {
        let queries: Vec<MetricDataQuery> = stats
            .iter()
            .map(|(id, m)| {
                let mut metric = Metric::builder().namespace(&m.namespace).metric_name(&m.metric);
                for (name, value) in &m.dimensions {
                    metric = metric.dimensions(Dimension::builder().name(name).value(value).build());
                }
                MetricDataQuery::builder()
                    .id(id)
                    .metric_stat(MetricStat::builder().metric(metric.build()).period(period).stat(&m.stat).build())
                    .return_data(true)
                    .build()
            })
            .collect();
        let mut points: BTreeMap<String, Vec<(i64, f64)>> = BTreeMap::new();
        let mut token: Option<String> = None;
        // Pages of one call; a handful at most for an interval's queries.
        for _ in 0..10 {
            let out = client
                .get_metric_data()
                .start_time(DateTime::from_secs(start))
                .end_time(DateTime::from_secs(end))
                .scan_by(ScanBy::TimestampAscending)
                .set_metric_data_queries(Some(queries.clone()))
                .set_next_token(token.clone())
                .send()
                .await
                .map_err(|e| sdk_error(PROVIDER, operation, e))?;
            for result in out.metric_data_results() {
                let Some(id) = result.id() else { continue };
                let entry = points.entry(id.to_owned()).or_default();
                for (t, v) in result.timestamps().iter().zip(result.values()) {
                    // Only periods that lie inside the window.
                    if t.secs() >= start && t.secs() < end && v.is_finite() {
                        entry.push((t.secs(), *v));
                    }
                }
            }
            token = out.next_token().map(str::to_owned);
            if token.is_none() {
                break;
            }
        }
        Ok(points)
    }

    async fn alarm_states(
        &self,
        client: &Client,
        names: &[&str],
    ) -> Result<BTreeMap<String, StateValue>, ProviderError> {
        let operation =
            format!("read the state of alarm{} {}", if names.len() == 1 { "" } else { "s" }, names.join(", "));
        let out = client
            .describe_alarms()
            .set_alarm_names(Some(names.iter().map(|n| (*n).to_owned()).collect()))
            .alarm_types(AlarmType::MetricAlarm)
            .alarm_types(AlarmType::CompositeAlarm)
            .send()
            .await
            .map_err(|e| sdk_error(PROVIDER, &operation, e))?;
        let mut states = BTreeMap::new();
        for alarm in out.metric_alarms() {
            if let (Some(name), Some(state)) = (alarm.alarm_name(), alarm.state_value()) {
                states.insert(name.to_owned(), state.clone());
            }
        }
        for alarm in out.composite_alarms() {
            if let (Some(name), Some(state)) = (alarm.alarm_name(), alarm.state_value()) {
                states.insert(name.to_owned(), state.clone());
            }
        }
        Ok(states)
    }
}

/// `codedeploy_alarms`: how many of the group's alarms are in `ALARM`
/// (judged with `max = 0`); 0 when all are `OK`; no data when none is in
/// `ALARM` but some lack data (never a pass).
fn group_alarm_answer(
    application: &str,
    group: &str,
    names: &[String],
    states: &BTreeMap<String, StateValue>,
) -> Answer {
    if names.is_empty() {
        return Err(format!(
            "deployment group {application}/{group} watches no CloudWatch alarms (its alarm configuration is empty or disabled)"
        ));
    }
    let mut firing = 0;
    let mut waiting = false;
    for name in names {
        match states.get(name) {
            Some(StateValue::Alarm) => firing += 1,
            Some(StateValue::Ok) => {}
            Some(StateValue::InsufficientData) => waiting = true,
            Some(other) => return Err(format!("alarm {name:?} is in an unknown state {:?}", other.as_str())),
            None => {
                return Err(format!(
                    "deployment group {application}/{group} watches alarm {name:?}, which does not exist in this region"
                ));
            }
        }
    }
    Ok(if firing > 0 {
        Some(f64::from(firing))
    } else if waiting {
        None
    } else {
        Some(0.0)
    })
}

fn values(points: &BTreeMap<String, Vec<(i64, f64)>>, id: &str) -> Vec<f64> {
    points.get(id).map(|p| p.iter().map(|(_, v)| *v).collect()).unwrap_or_default()
}

/// The window's points as one value for `stat`; `None` without points.
fn reduce(stat: &str, points: Vec<f64>) -> Option<f64> {
    if points.is_empty() {
        return None;
    }
    Some(match stat {
        "Sum" | "SampleCount" => points.iter().sum(),
        "Average" => points.iter().sum::<f64>() / points.len() as f64,
        "Minimum" => points.iter().copied().fold(f64::INFINITY, f64::min),
        _ => points.iter().copied().fold(f64::NEG_INFINITY, f64::max),
    })
}

/// The candidate's latency against stable's needs this many recent periods
/// (fewer when the look-back holds fewer)...
pub const LATENCY_PERIODS: usize = 3;
/// ... each with at least this many requests timed in both target groups.
pub const LATENCY_MIN_REQUESTS: f64 = 20.0;
/// The candidate's average may be this much above stable's, relative ...
pub const LATENCY_TOLERANCE: f64 = 0.2;
/// ... or this much, in seconds, whichever allows more.
pub const LATENCY_MIN_SLOWDOWN: f64 = 0.010;

/// One period's average and sample count, by period start.
fn periods(averages: &[(i64, f64)], counts: &[(i64, f64)]) -> BTreeMap<i64, (f64, f64)> {
    let counts: BTreeMap<i64, f64> = counts.iter().copied().collect();
    averages.iter().filter_map(|(t, avg)| counts.get(t).map(|n| (*t, (*avg, *n)))).collect()
}

/// `alb latency_vs_stable`: by how much (seconds) the candidate's average
/// `TargetResponseTime` exceeded what it may be, `max(1.2 × stable's,
/// stable's + 10 ms)`, in each of the `needed` latest periods where both
/// target groups timed at least [`LATENCY_MIN_REQUESTS`] requests: the least
/// excess of those periods, so the value is above 0 exactly when the
/// candidate was too slow in every one of them (as a CloudWatch alarm
/// needs `needed` of `needed` datapoints). `None` (no data) with fewer such
/// periods. A threshold over periods, not a significance test: CloudWatch
/// keeps no per-request latencies.
fn latency_excess(
    candidate: &BTreeMap<i64, (f64, f64)>,
    stable: &BTreeMap<i64, (f64, f64)>,
    needed: usize,
) -> Option<f64> {
    let excess: Vec<f64> = candidate
        .iter()
        .rev()
        .filter_map(|(t, (c_avg, c_n))| {
            let (s_avg, s_n) = stable.get(t)?;
            let timed = *c_n >= LATENCY_MIN_REQUESTS && *s_n >= LATENCY_MIN_REQUESTS;
            let allowed = (s_avg * (1.0 + LATENCY_TOLERANCE)).max(s_avg + LATENCY_MIN_SLOWDOWN);
            (timed && c_avg.is_finite() && s_avg.is_finite()).then_some(c_avg - allowed)
        })
        .take(needed)
        .collect();
    if needed == 0 || excess.len() < needed {
        return None;
    }
    excess.into_iter().reduce(f64::min)
}

fn alb_metric(stat: &str, metric: &str, load_balancer: &str, group: &str) -> MetricSpec {
    MetricSpec {
        stat: stat.to_owned(),
        namespace: ALB_NAMESPACE.to_owned(),
        metric: metric.to_owned(),
        dimensions: vec![("LoadBalancer".into(), load_balancer.to_owned()), ("TargetGroup".into(), group.to_owned())],
    }
}

/// Whether `stat` is one GetMetricData takes: the five statistics or a
/// percentile such as `p99` or `p99.9`.
fn valid_stat(stat: &str) -> bool {
    matches!(stat, "Sum" | "Average" | "Minimum" | "Maximum" | "SampleCount")
        || stat.strip_prefix('p').and_then(|p| p.parse::<f64>().ok()).is_some_and(|p| p > 0.0 && p < 100.0)
}

const SYNTAX: &str = "write `alarm NAME`, `codedeploy_alarms [\"APPLICATION\", \"DEPLOYMENT_GROUP\"]`, `alb 5xx_rate|5xx_count|requests|p95|p99|healthy_hosts|unhealthy_hosts [candidate|stable]`, `alb latency_vs_stable`, or `STAT NAMESPACE METRIC [NAME=VALUE ...]`";

/// The query text of a CodeDeploy deployment group's alarms (names as a
/// JSON array, so any name survives).
pub fn group_alarms_query(application: &str, group: &str) -> String {
    format!("codedeploy_alarms {}", serde_json::json!([application, group]))
}

/// Parses a query text; `alb` resolves `@candidate`, `@stable` and
/// `@load_balancer`.
fn parse(text: &str, alb: Option<&AlbDims>) -> Result<Parsed, String> {
    if let Some(rest) = text.trim_start().strip_prefix("codedeploy_alarms") {
        let (application, group): (String, String) = serde_json::from_str(rest.trim())
            .map_err(|_| format!("codedeploy_alarms takes [\"APPLICATION\", \"DEPLOYMENT_GROUP\"]; {SYNTAX}"))?;
        return Ok(Parsed::GroupAlarms(application, group));
    }
    let words: Vec<&str> = text.split_whitespace().collect();
    let need_alb = || {
        alb.ok_or_else(|| {
            "this query needs the ALB's dimensions, which only an environment with an alb router has".to_owned()
        })
    };
    match words.as_slice() {
        ["alarm", name @ ..] if !name.is_empty() => Ok(Parsed::Alarm(name.join(" "))),
        ["alb", "latency_vs_stable"] => Ok(Parsed::LatencyVsStable(need_alb()?.clone())),
        ["alb", what, rest @ ..] if rest.len() <= 1 => {
            let dims = need_alb()?;
            let group = match rest.first() {
                None | Some(&"candidate") => &dims.candidate,
                Some(&"stable") => &dims.stable,
                Some(other) => return Err(format!("{other:?} is not candidate or stable; {SYNTAX}")),
            };
            let lb = &dims.load_balancer;
            Ok(match *what {
                "5xx_rate" => Parsed::Ratio(
                    alb_metric("Sum", "HTTPCode_Target_5XX_Count", lb, group),
                    alb_metric("Sum", "RequestCount", lb, group),
                ),
                "5xx_count" => Parsed::Metric(alb_metric("Sum", "HTTPCode_Target_5XX_Count", lb, group)),
                "requests" => Parsed::Metric(alb_metric("Sum", "RequestCount", lb, group)),
                "p95" => Parsed::Metric(alb_metric("p95", "TargetResponseTime", lb, group)),
                "p99" => Parsed::Metric(alb_metric("p99", "TargetResponseTime", lb, group)),
                "healthy_hosts" => Parsed::Metric(alb_metric("Minimum", "HealthyHostCount", lb, group)),
                "unhealthy_hosts" => Parsed::Metric(alb_metric("Maximum", "UnHealthyHostCount", lb, group)),
                other => return Err(format!("unknown alb metric {other:?}; {SYNTAX}")),
            })
        }
        [stat, namespace, metric, dims @ ..] if valid_stat(stat) => {
            let mut dimensions = Vec::new();
            for dim in dims {
                let (name, value) =
                    dim.split_once('=').ok_or_else(|| format!("dimension {dim:?} is not NAME=VALUE; {SYNTAX}"))?;
                let value = match value {
                    "@candidate" => need_alb()?.candidate.clone(),
                    "@stable" => need_alb()?.stable.clone(),
                    "@load_balancer" => need_alb()?.load_balancer.clone(),
                    v => v.to_owned(),
                };
                dimensions.push((name.to_owned(), value));
            }
            Ok(Parsed::Metric(MetricSpec {
                stat: (*stat).to_owned(),
                namespace: (*namespace).to_owned(),
                metric: (*metric).to_owned(),
                dimensions,
            }))
        }
        _ => Err(format!("cannot read the CloudWatch query {text:?}; {SYNTAX}")),
    }
}

/// Checks a query's shape without AWS (for config validation and tests).
pub fn check_query(text: &str) -> Result<(), String> {
    let dims = AlbDims {
        load_balancer: "app/x/1".into(),
        candidate: "targetgroup/c/1".into(),
        stable: "targetgroup/s/1".into(),
    };
    parse(text, Some(&dims)).map(|_| ())
}

/// Deployment metrics for dashboards: what one step publishes.
#[derive(Clone, Debug, Default)]
pub struct DeploymentMetrics {
    /// `(metric name, value, unit)`: `Count`, `Percent`, `Seconds` or `None`.
    pub metrics: Vec<(String, f64, &'static str)>,
}

/// Publishes `metrics` in one `PutMetricData` call, with `App` and
/// `Environment` dimensions.
pub async fn put_deployment_metrics(
    aws: &Aws,
    namespace: &str,
    app: &str,
    environment: &str,
    metrics: &DeploymentMetrics,
) -> Result<(), ProviderError> {
    if metrics.metrics.is_empty() {
        return Ok(());
    }
    let client = Client::new(aws.config(PROVIDER).await?);
    let now = DateTime::from_secs(Timestamp::now().as_second());
    let data: Vec<MetricDatum> = metrics
        .metrics
        .iter()
        .map(|(name, value, unit)| {
            MetricDatum::builder()
                .metric_name(name)
                .value(*value)
                .unit(StandardUnit::from(*unit))
                .timestamp(now)
                .dimensions(Dimension::builder().name("App").value(app).build())
                .dimensions(Dimension::builder().name("Environment").value(environment).build())
                .build()
        })
        .collect();
    client.put_metric_data().namespace(namespace).set_metric_data(Some(data)).send().await.map_err(|e| {
        sdk_error(PROVIDER, &format!("publish {} deployment metrics to {namespace}", metrics.metrics.len()), e)
    })?;
    Ok(())
}

fn fail(operation: &str, message: String) -> ProviderError {
    ProviderError { provider: PROVIDER, operation: operation.to_owned(), message, transient: false, attempts: 1 }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dims() -> AlbDims {
        AlbDims {
            load_balancer: "app/shop/50dc".into(),
            candidate: "targetgroup/green/83e2".into(),
            stable: "targetgroup/blue/73e2".into(),
        }
    }

    #[test]
    fn alb_dimensions_come_from_the_router_state() {
        let state = RouterState {
            kind: "alb".into(),
            resource: Some(
                "arn:aws:elasticloadbalancing:eu-west-1:123456789012:listener-rule/app/shop/50dc/f2f7/9683".into(),
            ),
            stable: Some("arn:aws:elasticloadbalancing:eu-west-1:123456789012:targetgroup/blue/73e2".into()),
            candidate: Some("arn:aws:elasticloadbalancing:eu-west-1:123456789012:targetgroup/green/83e2".into()),
            ..RouterState::default()
        };
        assert_eq!(AlbDims::from_state(&state), Some(dims()));
    }

    #[test]
    fn a_codedeploy_state_gives_its_production_listener_and_pair() {
        let state = RouterState {
            kind: "codedeploy".into(),
            resource: Some("shop/shop-dev".into()),
            listener: Some("arn:aws:elasticloadbalancing:eu-west-1:123456789012:listener/app/shop/50dc/f2f7".into()),
            stable: Some("arn:aws:elasticloadbalancing:eu-west-1:123456789012:targetgroup/blue/73e2".into()),
            candidate: Some("arn:aws:elasticloadbalancing:eu-west-1:123456789012:targetgroup/green/83e2".into()),
            ..RouterState::default()
        };
        assert_eq!(AlbDims::from_state(&state), Some(dims()));
        // Without the pair, none: `shop/shop-dev` is no listener.
        assert_eq!(AlbDims::from_state(&RouterState { listener: None, ..state }), None);
    }

    #[test]
    fn queries_parse() {
        let d = dims();
        assert_eq!(parse("alarm shop 5xx high", Some(&d)), Ok(Parsed::Alarm("shop 5xx high".into())));
        let Ok(Parsed::Ratio(errors, requests)) = parse("alb 5xx_rate", Some(&d)) else { panic!("a ratio") };
        assert_eq!(errors.metric, "HTTPCode_Target_5XX_Count");
        assert_eq!(requests.dimensions[1], ("TargetGroup".into(), "targetgroup/green/83e2".into()));
        let Ok(Parsed::Metric(m)) = parse("alb p99 stable", Some(&d)) else { panic!("a metric") };
        assert_eq!((m.stat.as_str(), m.dimensions[1].1.as_str()), ("p99", "targetgroup/blue/73e2"));
        let Ok(Parsed::Metric(m)) = parse("Sum MyApp/Orders Failed Service=shop TargetGroup=@candidate", Some(&d))
        else {
            panic!("a metric")
        };
        assert_eq!(m.namespace, "MyApp/Orders");
        assert_eq!(m.dimensions[1].1, "targetgroup/green/83e2");
        for bad in ["", "alarm", "alb", "alb p42", "alb p99 canary", "Median A B", "Sum A B C", "p100 A B"] {
            assert!(parse(bad, Some(&d)).is_err(), "{bad:?}");
        }
        assert_eq!(parse("alb latency_vs_stable", Some(&d)), Ok(Parsed::LatencyVsStable(d.clone())));
        assert_eq!(
            parse(&group_alarms_query("shop", "shop dev"), None),
            Ok(Parsed::GroupAlarms("shop".into(), "shop dev".into()))
        );
        assert!(parse("codedeploy_alarms shop dev", None).is_err());
        assert!(parse("alb latency_vs_stable stable", Some(&d)).is_err());
        assert!(parse("alb p99", None).expect_err("no alb").contains("alb router"));
        assert!(parse("Sum AWS/ApplicationELB RequestCount TargetGroup=@stable", None).is_err());
        assert!(valid_stat("p99.9") && valid_stat("SampleCount") && !valid_stat("p0"));
    }

    #[test]
    fn latency_against_stable_is_judged_period_by_period() {
        let p = |rows: &[(i64, f64, f64)]| -> BTreeMap<i64, (f64, f64)> {
            rows.iter().map(|(t, avg, n)| (*t, (*avg, *n))).collect()
        };
        let stable = p(&[(0, 0.050, 900.0), (60, 0.050, 900.0), (120, 0.050, 900.0), (180, 0.050, 900.0)]);
        // 200 ms slower in every period: over by 0.25 - 0.06.
        let slow = p(&[(0, 0.250, 100.0), (60, 0.250, 100.0), (120, 0.250, 100.0), (180, 0.250, 100.0)]);
        let excess = latency_excess(&slow, &stable, 3).expect("three periods");
        assert!((excess - 0.19).abs() < 1e-9, "{excess}");
        // As fast: within, below 0.
        let same = p(&[(60, 0.052, 100.0), (120, 0.049, 100.0), (180, 0.055, 100.0)]);
        assert!(latency_excess(&same, &stable, 3).is_some_and(|e| e < 0.0));
        // 10 ms is always allowed: 5 ms against 1 ms is not "5 × slower".
        let tiny = p(&[(60, 0.001, 900.0), (120, 0.001, 900.0), (180, 0.001, 900.0)]);
        let fast = p(&[(60, 0.005, 100.0), (120, 0.005, 100.0), (180, 0.005, 100.0)]);
        assert!(latency_excess(&fast, &tiny, 3).is_some_and(|e| e < 0.0));
        // One slow period among the latest three is not enough to fail.
        let blip = p(&[(60, 0.050, 100.0), (120, 0.900, 100.0), (180, 0.050, 100.0)]);
        assert!(latency_excess(&blip, &stable, 3).is_some_and(|e| e < 0.0));
        // Too few periods, or too few requests timed in one: no data.
        assert_eq!(latency_excess(&p(&[(120, 0.25, 100.0), (180, 0.25, 100.0)]), &stable, 3), None);
        let thin = p(&[(60, 0.25, 100.0), (120, 0.25, 5.0), (180, 0.25, 100.0)]);
        assert_eq!(latency_excess(&thin, &stable, 3), None);
        assert!(latency_excess(&thin, &stable, 2).is_some_and(|e| e > 0.0), "the two latest timed periods");
        // Periods only one group has are not compared.
        assert_eq!(latency_excess(&p(&[(240, 0.25, 100.0), (300, 0.25, 100.0), (360, 0.25, 100.0)]), &stable, 3), None);
    }

    #[test]
    fn a_deployment_groups_alarms_fail_when_any_fires() {
        let states = BTreeMap::from([
            ("ok".to_owned(), StateValue::Ok),
            ("firing".to_owned(), StateValue::Alarm),
            ("waiting".to_owned(), StateValue::InsufficientData),
        ]);
        let answer = |names: &[&str]| {
            let names: Vec<String> = names.iter().map(|n| (*n).to_owned()).collect();
            group_alarm_answer("shop", "dev", &names, &states)
        };
        assert_eq!(answer(&["ok", "ok"]), Ok(Some(0.0)));
        assert_eq!(answer(&["ok", "firing", "waiting"]), Ok(Some(1.0)));
        assert_eq!(answer(&["ok", "waiting"]), Ok(None), "no data is never a pass");
        assert!(answer(&[]).expect_err("none").contains("watches no CloudWatch alarms"));
        assert!(answer(&["gone"]).expect_err("missing").contains("\"gone\", which does not exist"));
    }

    #[test]
    fn reducing_a_window() {
        assert_eq!(reduce("Sum", vec![1.0, 2.0]), Some(3.0));
        assert_eq!(reduce("Average", vec![1.0, 2.0]), Some(1.5));
        assert_eq!(reduce("Minimum", vec![1.0, 2.0]), Some(1.0));
        assert_eq!(reduce("p99", vec![0.2, 0.4]), Some(0.4), "the worst period");
        assert_eq!(reduce("Sum", vec![]), None, "no data is not zero");
    }

    #[test]
    fn pool_periods_are_counted_once_and_say_where_they_start() {
        let cw = CloudWatch::with_aws(
            Aws::new(AwsSettings::default()),
            CloudWatchSettings {
                name: "cw".into(),
                period: Duration::from_secs(60),
                lookback: Duration::from_secs(300),
                delay: Duration::from_secs(60),
                alb_traffic: true,
            },
        );
        let minute = |m: i64| 1_800_000_000 + m * 60;
        let series = |requests: f64| (0..8).map(|m| (minute(m), requests)).collect::<Vec<_>>();
        let points = BTreeMap::from([("pool_c_req".to_owned(), series(10.0)), ("pool_s_req".to_owned(), series(90.0))]);
        // The first interval: the whole window, from its start.
        let ((c, s), from) = cw.pools(&points, minute(0), minute(5));
        assert_eq!((c.map(|p| p.requests), s.map(|p| p.requests), from), (Some(50), Some(450), Some(minute(0))));
        // Nothing new: nothing counted, from nowhere.
        assert_eq!(cw.pools(&points, minute(0), minute(5)), ((None, None), None));
        // A minute later: only the new period, from where the last ended.
        let ((c, _), from) = cw.pools(&points, minute(1), minute(6));
        assert_eq!((c.map(|p| p.requests), from), (Some(10), Some(minute(5))));
    }

    #[test]
    fn windows_are_whole_minutes_behind_the_delay() {
        let cw = CloudWatch::with_aws(
            Aws::new(AwsSettings::default()),
            CloudWatchSettings {
                name: "cw".into(),
                period: Duration::from_secs(60),
                lookback: Duration::from_secs(300),
                delay: Duration::from_secs(60),
                alb_traffic: false,
            },
        );
        let end: Timestamp = "2026-11-20T10:07:42Z".parse().expect("time");
        let (start, end) = cw.window(end);
        assert_eq!(Timestamp::from_second(end).expect("t").to_string(), "2026-11-20T10:06:00Z");
        assert_eq!(end - start, 300);
    }
}
