//! Metric sources for analysis: the embedded router's counters and latency
//! histograms, and synthetic HTTP probes.
//!
//! A [`Sampler`] turns two snapshots of cumulative counters into the traffic
//! of the interval between them, for candidate and stable at once, so both
//! are always judged over the same window. A source that fails is recorded in
//! the interval as an error and never turned into "no errors".

use crate::router::{PoolStats, Router, RouterStats, error_chain};
use jiff::Timestamp;
use sluice_analysis::{Interval, PoolWindow, ProbeResult};
use sluice_core::config::ProbeConfig;
use std::collections::BTreeMap;
use std::time::Instant;

/// Samples the router and probes once per interval.
#[derive(Debug)]
pub struct Sampler {
    router: Router,
    probes: Vec<ProbeConfig>,
    client: reqwest::Client,
    last: Option<(Timestamp, RouterStats)>,
    /// End of the previous interval, for routers without counters.
    last_sample: Option<Timestamp>,
}

impl Sampler {
    pub fn new(router: Router, probes: Vec<ProbeConfig>) -> Sampler {
        let client =
            reqwest::Client::builder().pool_max_idle_per_host(0).build().expect("a plain client always builds");
        Sampler { router, probes, client, last: None, last_sample: None }
    }

    /// Takes the baseline snapshot the first interval is measured from.
    pub async fn start(&mut self) {
        if !self.router.has_stats() {
            self.last_sample = Some(Timestamp::now());
            return;
        }
        self.last = self.router.stats().await.ok().map(|s| (Timestamp::now(), s));
    }

    /// Measures the interval since the previous call (or [`Sampler::start`]).
    pub async fn sample(&mut self) -> Interval {
        let probes = self.run_probes().await;
        let now = Timestamp::now();
        let mut source_errors = BTreeMap::new();
        if !self.router.has_stats() {
            // An ALB counts nothing itself: its traffic comes from CloudWatch.
            let start = self.last_sample.unwrap_or(now);
            self.last_sample = Some(now);
            return Interval {
                start,
                end: now,
                candidate: None,
                stable: None,
                probes,
                values: BTreeMap::new(),
                source_errors: BTreeMap::new(),
            };
        }
        let (start, candidate, stable) = match self.router.stats().await {
            Ok(stats) => {
                let (start, candidate, stable) = match &self.last {
                    Some((start, before)) => (
                        *start,
                        window(before.pools.candidate.as_ref(), stats.pools.candidate.as_ref()),
                        window(before.pools.stable.as_ref(), stats.pools.stable.as_ref()),
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
        };
        Interval { start, end: now, candidate, stable, probes, values: BTreeMap::new(), source_errors }
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
fn window(before: Option<&PoolStats>, after: Option<&PoolStats>) -> Option<PoolWindow> {
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
