//! Metric sources for analysis: the embedded router's counters and latency
//! histograms, synthetic HTTP probes, and query sources (Prometheus; the
//! AWS provider adds CloudWatch as another [`QuerySource`]).
//!
//! A [`Sampler`] turns two snapshots of cumulative counters into the traffic
//! of the interval between them, for candidate and stable at once, so both
//! are always judged over the same window, and asks every query source for
//! the `query` checks over that same window. A source that fails is recorded
//! in the interval as an error and never turned into "no errors".
//!
//! Adding a query source: a variant of [`QuerySource`] built from its
//! `SourceConfig` variant, whose `answer` takes all of the interval's
//! queries for that source at once (so it can batch them where its API
//! allows) and returns one [`Answer`] per query, in order, or a
//! [`ProviderError`] when the source itself failed after retries.

use crate::ProviderError;
#[cfg(feature = "aws")]
use crate::aws::cloudwatch::{AlbDims, CloudWatch, CloudWatchSettings};
#[cfg(feature = "aws")]
use crate::aws::{AssumeRole, AwsSettings};
use crate::error::error_chain;
use crate::prometheus::Prometheus;
use crate::retry::Backoff;
use crate::router::Router;
use jiff::Timestamp;
use sluice_analysis::{CheckKind, CheckSpec, Interval, LookBack, PoolWindow, ProbeResult, Reduce};
use sluice_core::config::{ProbeConfig, QueryVars, SourceConfig};
use sluice_core::router_api::{PoolStatsView, StatsView};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// Without AWS support there is no ALB whose CloudWatch dimensions to read.
#[cfg(not(feature = "aws"))]
type AlbDims = std::convert::Infallible;

/// One `query` check as its source answers it each interval.
#[derive(Clone, Debug, PartialEq)]
pub struct Query {
    /// The check's name: where its answer goes in `Interval::values`.
    pub check: String,
    /// The source's name.
    pub source: String,
    /// The query, placeholders expanded.
    pub text: String,
    /// A range query over the window, reduced this way; else an instant
    /// query at the window's end.
    pub reduce: Option<Reduce>,
    /// A range query's resolution, when configured.
    pub step: Option<Duration>,
}

impl Query {
    /// The `query` checks among `checks`, with placeholders expanded.
    pub fn from_checks(checks: &[CheckSpec], vars: &QueryVars) -> Result<Vec<Query>, String> {
        checks
            .iter()
            .filter_map(|check| match &check.kind {
                CheckKind::Query { source, query, reduce, step, .. } => Some(
                    vars.expand(query)
                        .map(|text| Query {
                            check: check.name.clone(),
                            source: source.clone(),
                            text,
                            reduce: *reduce,
                            step: *step,
                        })
                        .map_err(|e| format!("check {:?}: {e}", check.name)),
                ),
                _ => None,
            })
            .collect()
    }
}

/// The time span one interval covers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Window {
    pub start: Timestamp,
    pub end: Timestamp,
}

/// A source's answer to one query: a value, `Ok(None)` when the query
/// answered with no data, or why the answer cannot be judged (the query was
/// refused, or gave several series): an error of that check only.
pub type Answer = Result<Option<f64>, String>;

/// Retries of a query source within one interval: few and short, because
/// the next interval is the next retry.
pub const QUERY_BACKOFF: Backoff =
    Backoff { attempts: 3, first: Duration::from_millis(200), max: Duration::from_secs(1) };

/// A metric source that answers `query` checks.
#[derive(Clone, Debug)]
pub enum QuerySource {
    Prometheus(Prometheus),
    /// CloudWatch; may also give the ALB pools' traffic (feature `aws`).
    #[cfg(feature = "aws")]
    CloudWatch(CloudWatch),
}

/// Everything a source said about one interval.
#[derive(Clone, Debug, Default)]
pub struct SourceAnswer {
    /// One answer per query, in order.
    pub answers: Vec<Answer>,
    /// Candidate's and stable's traffic, from a source that reads it.
    pub pools: Option<(Option<PoolWindow>, Option<PoolWindow>)>,
    /// The window the source looked at, when it is not the interval.
    pub lookback: Option<LookBack>,
}

impl QuerySource {
    /// The source a config entry describes. Async so that sources whose
    /// setup talks to the network (credentials) fit the same call.
    pub async fn connect(config: &SourceConfig, backoff: Backoff) -> Result<QuerySource, ProviderError> {
        Ok(match config {
            SourceConfig::Prometheus { name, url, timeout } => {
                QuerySource::Prometheus(Prometheus::new(name, url, *timeout, backoff))
            }
            // The SDK retries by itself (standard mode); `backoff` is for
            // plain HTTP sources.
            #[cfg(feature = "aws")]
            SourceConfig::Cloudwatch { name, region, alb_traffic, period, lookback, delay, .. } => {
                QuerySource::CloudWatch(CloudWatch::new(
                    AwsSettings {
                        region: region.clone(),
                        role: AssumeRole::from_config(config.assume_role()),
                        ..AwsSettings::default()
                    },
                    CloudWatchSettings {
                        name: name.clone(),
                        period: *period,
                        lookback: *lookback,
                        delay: *delay,
                        alb_traffic: *alb_traffic,
                    },
                ))
            }
            // Steps refuse such a config where they load it
            // (`features::check`); this is the same refusal, should one not.
            #[cfg(not(feature = "aws"))]
            SourceConfig::Cloudwatch { name, .. } => {
                return Err(ProviderError {
                    provider: "cloudwatch",
                    operation: format!("connect metric source {name:?}"),
                    message: "this sluice was built without AWS support; build with `--features aws` (or the released binary)".into(),
                    transient: false,
                    attempts: 1,
                });
            }
        })
    }

    /// The source's name from config.
    pub fn name(&self) -> &str {
        match self {
            QuerySource::Prometheus(p) => p.name(),
            #[cfg(feature = "aws")]
            QuerySource::CloudWatch(c) => c.name(),
        }
    }

    /// Whether the source gives the pools' traffic (needs no query for it).
    pub fn reads_traffic(&self) -> bool {
        match self {
            QuerySource::Prometheus(_) => false,
            #[cfg(feature = "aws")]
            QuerySource::CloudWatch(c) => c.reads_alb_traffic(),
        }
    }

    /// Everything this source says about one interval: its queries' answers
    /// and, for CloudWatch, the ALB pools' traffic and the window it looked
    /// at; `Err` when the source failed (after retries).
    #[cfg_attr(not(feature = "aws"), allow(unused_variables))]
    pub async fn sample(
        &self,
        window: Window,
        queries: &[Query],
        alb: Option<&AlbDims>,
    ) -> Result<SourceAnswer, ProviderError> {
        match self {
            QuerySource::Prometheus(p) => {
                Ok(SourceAnswer { answers: p.answer(window, queries).await?, ..SourceAnswer::default() })
            }
            #[cfg(feature = "aws")]
            QuerySource::CloudWatch(c) => {
                let answer = c.answer(window, queries, alb).await?;
                Ok(SourceAnswer {
                    answers: answer.answers,
                    pools: answer.pools,
                    lookback: answer.window.map(|(start, end, period)| LookBack {
                        start,
                        end,
                        period_seconds: period.as_secs(),
                        counted_from: answer.counted_from,
                        pools: alb.is_some(),
                    }),
                })
            }
        }
    }

    /// Answers all of this source's queries for one interval: one answer
    /// per query, in order; `Err` when the source failed (after retries).
    pub async fn answer(&self, window: Window, queries: &[Query]) -> Result<Vec<Answer>, ProviderError> {
        match self {
            QuerySource::Prometheus(p) => p.answer(window, queries).await,
            #[cfg(feature = "aws")]
            QuerySource::CloudWatch(c) => c.answer(window, queries, None).await.map(|a| a.answers),
        }
    }
}

/// What the query sources found in one interval.
#[derive(Debug, Default)]
struct Found {
    values: BTreeMap<String, Option<f64>>,
    query_errors: BTreeMap<String, String>,
    pools: Option<(Option<PoolWindow>, Option<PoolWindow>)>,
    lookback: BTreeMap<String, LookBack>,
}

/// Samples the router, probes and query sources once per interval.
#[derive(Debug)]
pub struct Sampler {
    router: Router,
    probes: Vec<ProbeConfig>,
    client: reqwest::Client,
    last: Option<(Timestamp, StatsView)>,
    /// End of the previous interval, for routers without counters.
    last_sample: Option<Timestamp>,
    /// Each query source with its queries.
    queries: Vec<(String, Option<QuerySource>, Vec<Query>)>,
    /// The ALB's dimensions for CloudWatch, read from the router once.
    alb: Option<AlbDims>,
}

impl Sampler {
    pub fn new(router: Router, probes: Vec<ProbeConfig>) -> Sampler {
        let client =
            reqwest::Client::builder().pool_max_idle_per_host(0).build().expect("a plain client always builds");
        Sampler { router, probes, client, last: None, last_sample: None, queries: Vec::new(), alb: None }
    }

    /// Also answers `queries` each interval, each from the source of its
    /// name in `sources`. A query whose source is missing is reported as a
    /// failure of that source every interval (config validation prevents it).
    pub fn with_queries(mut self, sources: Vec<QuerySource>, queries: Vec<Query>) -> Sampler {
        let mut grouped: Vec<(String, Option<QuerySource>, Vec<Query>)> = Vec::new();
        for query in queries {
            match grouped.iter_mut().find(|(name, _, _)| *name == query.source) {
                Some((_, _, list)) => list.push(query),
                None => {
                    let source = sources.iter().find(|s| s.name() == query.source).cloned();
                    grouped.push((query.source.clone(), source, vec![query]));
                }
            }
        }
        // Sources that give the pools' traffic are asked even without queries.
        for source in sources {
            if source.reads_traffic() && !grouped.iter().any(|(name, _, _)| name == source.name()) {
                grouped.push((source.name().to_owned(), Some(source), Vec::new()));
            }
        }
        self.queries = grouped;
        self
    }

    /// Reads the ALB's CloudWatch dimensions from `state` instead of the
    /// router: a CodeDeploy router's state before its deployment (its
    /// production listener and target-group pair), as the record keeps it.
    #[cfg_attr(not(feature = "aws"), allow(unused_variables, unused_mut))]
    pub fn with_alb_state(mut self, state: Option<&sluice_core::record::RouterState>) -> Sampler {
        #[cfg(feature = "aws")]
        if let Some(dims) = state.and_then(AlbDims::from_state) {
            self.alb = Some(dims);
        }
        self
    }

    /// The ALB's CloudWatch dimensions, read from an ALB router's state the
    /// first time they are needed.
    #[cfg_attr(not(feature = "aws"), allow(clippy::clone_on_copy))]
    async fn alb_dims(&mut self) -> Option<AlbDims> {
        #[cfg(feature = "aws")]
        if self.alb.is_none()
            && self.router.is_alb()
            && self.queries.iter().any(|(_, s, _)| matches!(s, Some(QuerySource::CloudWatch(_))))
            && let Ok(state) = self.router.state().await
        {
            self.alb = AlbDims::from_state(&state);
        }
        self.alb.clone()
    }

    /// Takes the baseline snapshot the first interval is measured from.
    pub async fn start(&mut self) {
        if !self.router.has_stats() {
            self.last_sample = Some(Timestamp::now());
            self.alb_dims().await;
            return;
        }
        self.last = self.router.stats().await.ok().map(|s| (Timestamp::now(), s));
    }

    /// Measures the interval since the previous call (or [`Sampler::start`]).
    pub async fn sample(&mut self) -> Interval {
        let probes = self.run_probes().await;
        let now = Timestamp::now();
        let mut source_errors = BTreeMap::new();
        let mut router_weight = None;
        let (start, candidate, stable) = if !self.router.has_stats() {
            // An ALB or CodeDeploy counts nothing itself: the pools' traffic
            // comes from CloudWatch, when a source reads it.
            let start = self.last_sample.unwrap_or(now);
            self.last_sample = Some(now);
            (start, None, None)
        } else {
            match self.router.stats().await {
                Ok(stats) => {
                    // The weight the router reports at the interval's end.
                    router_weight = Some(stats.candidate_weight);
                    let (start, candidate, stable) = match &self.last {
                        Some((start, before)) => (
                            *start,
                            window(before.pools.candidate.as_ref(), stats.pools.candidate.as_ref()),
                            window(Some(&before.pools.stable), Some(&stats.pools.stable)),
                        ),
                        None => (now, None, None),
                    };
                    self.last = Some((now, stats));
                    (start, candidate, stable)
                }
                Err(e) => {
                    source_errors.insert("router".to_owned(), e.to_string());
                    let start = self.last.as_ref().map_or(now, |(t, _)| *t);
                    (start, None, None)
                }
            }
        };
        let alb = self.alb_dims().await;
        let mut found = Found::default();
        self.run_queries(Window { start, end: now }, alb.as_ref(), &mut found, &mut source_errors).await;
        let (candidate, stable) = match found.pools {
            Some(pools) if !self.router.has_stats() => pools,
            _ => (candidate, stable),
        };
        Interval {
            start,
            end: now,
            candidate,
            stable,
            probes,
            values: found.values,
            source_errors,
            query_errors: found.query_errors,
            lookback: found.lookback,
            router_weight,
        }
    }

    /// Asks every query source, concurrently, for its queries over `window`.
    async fn run_queries(
        &self,
        window: Window,
        alb: Option<&AlbDims>,
        found: &mut Found,
        source_errors: &mut BTreeMap<String, String>,
    ) {
        let Found { values, query_errors, pools, lookback } = found;
        let mut tasks = tokio::task::JoinSet::new();
        let mut names = std::collections::HashMap::new();
        for (name, source, queries) in &self.queries {
            let Some(source) = source.clone() else {
                source_errors.insert(
                    name.clone(),
                    format!("no metric source named {name:?} is configured for this environment"),
                );
                continue;
            };
            let queries = queries.clone();
            let alb = alb.cloned();
            let task = tasks.spawn(async move {
                let answers = source.sample(window, &queries, alb.as_ref()).await;
                (queries, answers)
            });
            names.insert(task.id(), name.clone());
        }
        while let Some(joined) = tasks.join_next_with_id().await {
            let (name, queries, answers) = match joined {
                Ok((id, (queries, answers))) => (names.get(&id).cloned().unwrap_or_default(), queries, answers),
                Err(e) => {
                    let name = names.get(&e.id()).cloned().unwrap_or_default();
                    source_errors.insert(name, format!("the query task ended abnormally: {e}"));
                    continue;
                }
            };
            match answers {
                Ok(SourceAnswer { answers, pools: traffic, lookback: looked }) if answers.len() == queries.len() => {
                    if traffic.is_some() {
                        *pools = traffic;
                    }
                    if let Some(looked) = looked {
                        lookback.insert(name.clone(), looked);
                    }
                    for (query, answer) in queries.iter().zip(answers) {
                        match answer {
                            Ok(value) => {
                                values.insert(query.check.clone(), value);
                            }
                            Err(error) => {
                                query_errors.insert(query.check.clone(), error);
                            }
                        }
                    }
                }
                Ok(SourceAnswer { answers, .. }) => {
                    source_errors.insert(
                        name,
                        format!("answered {} of {} queries; treated as a failure", answers.len(), queries.len()),
                    );
                }
                Err(e) => {
                    source_errors.insert(name, e.to_string());
                }
            }
        }
    }

    async fn run_probes(&self) -> Vec<ProbeResult> {
        let mut results = Vec::with_capacity(self.probes.len());
        for probe in &self.probes {
            results.push(run_probe(&self.client, probe).await);
        }
        results
    }
}

/// The traffic between two snapshots of one pool; `None` when the pool was
/// replaced in between (its counters restarted) or is absent.
fn window(before: Option<&PoolStatsView>, after: Option<&PoolStatsView>) -> Option<PoolWindow> {
    let (before, after) = (before?, after?);
    if before.epoch != after.epoch || before.upstream != after.upstream {
        return None;
    }
    let requests = after.requests.checked_sub(before.requests)?;
    let errors =
        (after.responses_5xx + after.connect_errors).checked_sub(before.responses_5xx + before.connect_errors)?;
    Some(PoolWindow { requests, errors: errors.min(requests), latency: after.histogram().since(&before.histogram()) })
}

/// One probe: GET the URL, check status, body and time.
pub async fn run_probe(client: &reqwest::Client, probe: &ProbeConfig) -> ProbeResult {
    let started = Instant::now();
    let outcome = async {
        let response = client.get(&probe.url).timeout(probe.timeout).send().await?;
        let status = response.status().as_u16();
        let body = response.text().await?;
        Ok::<_, reqwest::Error>((status, body))
    }
    .await;
    let latency_ms = started.elapsed().as_secs_f64() * 1000.0;
    match outcome {
        Ok((status, body)) => {
            let detail = if status != probe.expect_status {
                Some(format!("status {status}, expected {}", probe.expect_status))
            } else {
                probe
                    .body_contains
                    .as_ref()
                    .filter(|needle| !body.contains(needle.as_str()))
                    .map(|needle| format!("body does not contain {needle:?}"))
            };
            ProbeResult {
                name: probe.name.clone(),
                ok: detail.is_none(),
                status: Some(status),
                latency_ms: Some(latency_ms),
                detail,
            }
        }
        Err(e) => ProbeResult {
            name: probe.name.clone(),
            ok: false,
            status: None,
            latency_ms: Some(latency_ms),
            detail: Some(if e.is_timeout() {
                format!("no answer within {}", humantime_ms(probe.timeout))
            } else {
                error_chain(&e)
            }),
        },
    }
}

fn humantime_ms(d: std::time::Duration) -> String {
    format!("{}ms", d.as_millis())
}
