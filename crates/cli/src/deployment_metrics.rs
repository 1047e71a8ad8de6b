//! Deployment metrics for dashboards (`[deployment_metrics]`, optional):
//! after a step, what it appended to the record becomes one batch of
//! CloudWatch custom metrics with `App` and `Environment` dimensions, in one
//! `PutMetricData` call.
//!
//! | metric | unit | when |
//! |---|---|---|
//! | `DeploymentStarted` / `DeploymentBlocked` | Count | gate allowed / blocked |
//! | `CanaryWeight` | Percent | the last weight the router confirmed (0 after a rollback) |
//! | `VerdictPass`, `VerdictFail`, `VerdictInconclusive`, `VerdictError` | Count | each health verdict |
//! | `DeploymentSucceeded` | Count | promote |
//! | `DeploymentFailed` | Count | a CodeDeploy deployment failed, or a step stopped on an error |
//! | `DeploymentRolledBack` | Count | a rollback |
//! | `DeploymentDuration` | Seconds | from gate to promote or rollback |
//!
//! Metrics are for people: a failure to publish them is a warning, never a
//! failed step.

use crate::context::{Common, now};
use jiff::Timestamp;
use sluice_analysis::Verdict;
use sluice_core::config::{Config, DeploymentMetricsConfig};
use sluice_core::gha;
use sluice_core::record::{EventDetail, Expect, Record};
use sluice_providers::aws::cloudwatch::{DeploymentMetrics, put_deployment_metrics};
use sluice_providers::aws::{Aws, AwsSettings};
use std::collections::BTreeMap;

/// Publishes what `step` appended to the record since `since`, when the
/// config asks for deployment metrics.
pub(crate) async fn publish(step: &str, common: &Common, since: Timestamp) {
    let Ok(config) = Config::load(&common.config) else { return };
    let Some(DeploymentMetricsConfig::Cloudwatch { namespace, region }) = &config.deployment_metrics else { return };
    let expect = Expect { app: Some(&config.app), environment: Some(&common.environment), version: None };
    let Some(path) = &common.record else { return };
    let Ok(record) = Record::load(path, &expect) else { return };
    let metrics = derive(step, &record, since, now());
    if metrics.metrics.is_empty() {
        return;
    }
    let aws = Aws::new(AwsSettings { region: region.clone(), ..AwsSettings::default() });
    if let Err(e) = put_deployment_metrics(&aws, namespace, &record.app, &record.environment, &metrics).await {
        gha::warning(&format!("{step}: deployment metrics were not published: {e}"));
    }
}

/// The metrics of the events `step` appended at or after `since`.
fn derive(step: &str, record: &Record, since: Timestamp, now: Timestamp) -> DeploymentMetrics {
    let mut counts: BTreeMap<&'static str, f64> = BTreeMap::new();
    let mut weight = None;
    let mut ended = false;
    for event in record.events.iter().filter(|e| e.step == step && e.at >= since) {
        let mut count = |name| *counts.entry(name).or_default() += 1.0;
        match &event.detail {
            EventDetail::Gate { allowed: true, .. } => count("DeploymentStarted"),
            EventDetail::Gate { allowed: false, .. } => count("DeploymentBlocked"),
            EventDetail::Traffic { to, .. } => weight = Some(*to),
            EventDetail::Verdict { report, .. } => count(match report.verdict {
                Verdict::Pass => "VerdictPass",
                Verdict::Fail => "VerdictFail",
                Verdict::Inconclusive => "VerdictInconclusive",
                Verdict::Error => "VerdictError",
            }),
            EventDetail::Promote { .. } => {
                count("DeploymentSucceeded");
                ended = true;
            }
            EventDetail::Rollback { .. } => {
                count("DeploymentRolledBack");
                weight = Some(0);
                ended = true;
            }
            EventDetail::Deployment { status, .. } if status == "Failed" => count("DeploymentFailed"),
            EventDetail::Error { .. } => count("DeploymentFailed"),
            _ => {}
        }
    }
    let mut metrics: Vec<(String, f64, &'static str)> =
        counts.into_iter().map(|(name, n)| (name.to_owned(), n, "Count")).collect();
    if let Some(weight) = weight {
        metrics.push(("CanaryWeight".into(), f64::from(weight), "Percent"));
    }
    if ended {
        let seconds = now.duration_since(record.created_at).as_secs_f64().max(0.0);
        metrics.push(("DeploymentDuration".into(), seconds, "Seconds"));
    }
    DeploymentMetrics { metrics }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_core::config::Strategy;
    use sluice_core::ledger::ChangeKind;
    use sluice_core::record::NewRecord;

    #[test]
    fn a_step_publishes_what_it_appended() {
        let start: Timestamp = "2026-11-20T10:00:00Z".parse().expect("time");
        let mut record = Record::new(
            NewRecord {
                app: "shop".into(),
                environment: "dev".into(),
                version: "v2".into(),
                commit: None,
                change: ChangeKind::Planned,
                incident: None,
                strategy: Strategy::AllAtOnce,
                triggered_by: None,
                run_url: None,
            },
            start,
        );
        record.push("gate", EventDetail::Gate { allowed: true, checks: vec![] }, start);
        let later: Timestamp = "2026-11-20T10:05:00Z".parse().expect("time");
        record.push("shift-traffic", EventDetail::Traffic { from: 0, to: 10, stage: Some(0) }, later);
        record.push("shift-traffic", EventDetail::Traffic { from: 10, to: 100, stage: Some(1) }, later);
        let gate = derive("gate", &record, start, start);
        assert_eq!(gate.metrics, vec![("DeploymentStarted".to_owned(), 1.0, "Count")]);
        let shift = derive("shift-traffic", &record, later, later);
        assert_eq!(shift.metrics, vec![("CanaryWeight".to_owned(), 100.0, "Percent")]);
        record.push("promote", EventDetail::Promote { next_environment: None, unanalysed: false }, later);
        let promote = derive("promote", &record, later, later);
        assert_eq!(
            promote.metrics,
            vec![("DeploymentSucceeded".to_owned(), 1.0, "Count"), ("DeploymentDuration".to_owned(), 300.0, "Seconds")]
        );
        // Events of an earlier run of the same step are not counted again.
        assert!(derive("gate", &record, later, later).metrics.is_empty());
    }
}
