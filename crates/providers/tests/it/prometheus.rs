//! The Prometheus source against a real Prometheus that scrapes real demo
//! apps behind the embedded router: a query check passes a good candidate,
//! fails a bad one, and a Prometheus outage is an error, never a failure.

use crate::support::prometheus;
use jiff::Timestamp;
use sluice_analysis::{Analysis, AnalysisReport, Outcome, Verdict};
use sluice_core::config::{Config, QueryVars};
use sluice_demo::app::{AppConfig, DemoApp};
use sluice_demo::loadgen::{self, LoadConfig};
use sluice_providers::metrics::{QUERY_BACKOFF, Query, QuerySource, Sampler, Window};
use sluice_providers::retry::Backoff;
use sluice_providers::router::{LocalRouter, Router};
use sluice_router::{Upstream, UpstreamsUpdate};
use std::path::Path;
use std::time::Duration;

/// Error ratio of the candidate release: instant, and as a range query
/// reduced to its worst point.
const CONFIG: &str = r#"
app = "shop"

[analysis]
interval = "1s"

[[defaults.source]]
kind = "prometheus"
name = "prom"
url = "PROMETHEUS_URL"
timeout = "2s"

[[defaults.check]]
name = "error-ratio"
kind = "query"
source = "prom"
query = 'sum(rate(http_requests_total{version="${release}",status=~"5.."}[5s])) / sum(rate(http_requests_total{version="${release}"}[5s]))'
max = 0.05
min_samples = 3
inconclusive_limit = 5

[[defaults.check]]
name = "worst-error-ratio"
kind = "query"
source = "prom"
query = 'sum(rate(http_requests_total{version="${release}",status=~"5.."}[5s])) / sum(rate(http_requests_total{version="${release}"}[5s]))'
reduce = "max"
step = "1s"
max = 0.05
min_samples = 3
inconclusive_limit = 5

[[environment]]
name = "dev"
router = { kind = "local", admin_url = "ROUTER_URL" }
"#;

async fn app(version: &str, error_ratio: f64) -> DemoApp {
    DemoApp::start(AppConfig {
        listen: "127.0.0.1:0".parse().expect("addr"),
        version: version.into(),
        error_ratio,
        latency: Duration::ZERO,
        seed: Some(7),
    })
    .await
    .expect("demo app")
}

fn upstream(app: &DemoApp) -> Upstream {
    Upstream::parse(&format!("http://{}", app.addr())).expect("upstream")
}

struct Setup {
    config: Config,
    router: Router,
}

impl Setup {
    fn vars(&self, release: &str) -> QueryVars {
        QueryVars {
            release: release.into(),
            app: "shop".into(),
            environment: "dev".into(),
            interval: self.config.interval(),
        }
    }

    async fn source(&self) -> QuerySource {
        let env = &self.config.environments[0];
        QuerySource::connect(&self.config.sources_for(env)[0], QUERY_BACKOFF).await.expect("source")
    }

    /// Waits until Prometheus has scraped enough of `release` for the
    /// instant query to have a value (the first scrape comes ~5 s after start).
    async fn wait_for_data(&self, release: &str) {
        let source = self.source().await;
        let queries = Query::from_checks(&self.config.defaults.checks[..1], &self.vars(release)).expect("queries");
        for _ in 0..60 {
            let now = Timestamp::now();
            if let Ok(answers) = source.answer(Window { start: now, end: now }, &queries).await
                && matches!(answers[..], [Ok(Some(_))])
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        panic!("Prometheus never had data for {release}");
    }

    /// Runs the configured checks over up to `intervals` one-second intervals.
    async fn analyse(&self, release: &str, intervals: usize) -> AnalysisReport {
        let env = &self.config.environments[0];
        let checks = self.config.checks_for(env);
        let queries = Query::from_checks(&checks, &self.vars(release)).expect("queries");
        let mut sampler =
            Sampler::new(self.router.clone(), Vec::new()).with_queries(vec![self.source().await], queries);
        let mut analysis = Analysis::new(checks, self.config.analysis.policy.clone());
        sampler.start().await;
        for _ in 0..intervals {
            tokio::time::sleep(self.config.interval()).await;
            if let Outcome::Decided(_) = analysis.observe(sampler.sample().await) {
                break;
            }
        }
        analysis.finish()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn query_checks_on_a_real_prometheus() {
    let stable = app("v1", 0.0).await;
    let good = app("v2", 0.0).await;
    let bad = app("v3", 0.3).await;
    let Some(mut prometheus) = prometheus(&[stable.addr(), good.addr(), bad.addr()]) else {
        return;
    };
    let mut router_config = sluice_router::Config::new(upstream(&stable));
    router_config.candidate = Some(upstream(&good));
    router_config.candidate_weight = 50;
    let proxy = sluice_router::Router::start(router_config).await.expect("router");
    let admin = format!("http://{}", proxy.admin_addr());
    let text = CONFIG.replace("PROMETHEUS_URL", prometheus.url()).replace("ROUTER_URL", &admin);
    let config = Config::parse(&text, Path::new("sluice.toml")).expect("config");
    let setup = Setup { config, router: Router::Local(LocalRouter::new(&admin, Backoff::NONE)) };

    let (stop_load, stop) = sluice_router::serve::shutdown_channel();
    let load = tokio::spawn(loadgen::run(
        LoadConfig {
            url: format!("http://{}/", proxy.listen_addr()).parse().expect("url"),
            rps: 100.0,
            duration: Duration::from_secs(120),
            concurrency: 8,
            timeout: Duration::from_secs(5),
            report_every: None,
        },
        stop,
    ));

    // A good candidate passes both the instant and the range query.
    setup.wait_for_data("v2").await;
    let report = setup.analyse("v2", 5).await;
    assert_eq!(report.verdict, Verdict::Pass, "{report:#?}\n{}", prometheus.log());
    for check in &report.checks {
        assert_eq!(check.observed, Some(0.0), "{check:?}");
        assert!(check.samples >= 3, "{check:?}");
    }
    assert!(report.checks[1].message.contains("max over the interval"), "{}", report.checks[1].message);
    assert!(report.intervals.iter().all(|i| i.source_errors.is_empty() && i.query_errors.is_empty()));

    // A candidate failing 30% of its requests fails at the first judged interval.
    proxy.control().set_weight(0).expect("weight");
    let update = UpstreamsUpdate { candidate: Some(Some(upstream(&bad))), ..UpstreamsUpdate::default() };
    proxy.control().set_upstreams(update).expect("candidate");
    proxy.control().set_weight(50).expect("weight");
    setup.wait_for_data("v3").await;
    let report = setup.analyse("v3", 5).await;
    assert_eq!(report.verdict, Verdict::Fail, "{report:#?}");
    let decided = report.decided_by.as_deref().expect("decided");
    let evidence = report.checks.iter().find(|c| c.name == decided).expect("evidence");
    let observed = evidence.observed.expect("observed");
    assert!((0.15..0.45).contains(&observed), "{evidence:?}");
    assert_eq!(evidence.threshold, "<= 0.05");
    assert!(report.intervals.len() <= 2, "decided late: {} intervals", report.intervals.len());

    // Prometheus's own words for a query it refuses, and a query that does
    // not aggregate names its series; the source itself is fine.
    let source = setup.source().await;
    let now = Timestamp::now();
    let window = Window { start: now - Duration::from_secs(5), end: now };
    let query =
        |text: &str| Query { check: "q".into(), source: "prom".into(), text: text.into(), reduce: None, step: None };
    let answers = source
        .answer(window, &[query("sum(rate(http_requests_total[5s]"), query("rate(http_requests_total[5s])")])
        .await
        .expect("the source answers");
    let refused = answers[0].clone().expect_err("refused");
    assert!(refused.contains("(bad_data)") && refused.contains("parse error"), "{refused}");
    let several = answers[1].clone().expect_err("several series");
    // One series per app and status; the first three are named.
    assert!(several.contains("6 series where one value is needed"), "{several}");
    assert!(several.contains("job=\"demo\"") && several.contains("version=\"v"), "{several}");
    assert!(several.contains(", …;"), "{several}");

    // An outage of Prometheus is an error of its checks, after retries, never a failure.
    prometheus.stop();
    let report = setup.analyse("v3", 8).await;
    assert_eq!(report.verdict, Verdict::Error, "{report:#?}");
    assert!(report.checks.iter().all(|c| c.verdict == Verdict::Error), "{report:#?}");
    assert!(report.reason.contains("query source prom failed: prometheus failed to run"), "{}", report.reason);
    assert!(report.reason.contains("(after 3 attempts)"), "{}", report.reason);
    assert!(report.intervals.iter().all(|i| i.values.is_empty() && i.source_errors.contains_key("prom")));

    stop_load.trigger();
    let summary = load.await.expect("load");
    assert!(summary.sent > 500, "{summary:?}");
    proxy.shutdown().await;
}
