//! Properties over random histories.

use jiff::{SignedDuration, Timestamp};
use proptest::prelude::*;
use sluice_core::ledger::{ChangeKind, LedgerEntry, LedgerOutcome};
use sluice_dora::report::Report;
use sluice_dora::{Filter, Options, compute};

use crate::common::{e, ts};

const APPS: [&str; 2] = ["web", "api"];
const ENVS: [&str; 2] = ["prd", "tst"];

fn base() -> Timestamp {
    ts("2024-01-01T00:00:00Z")
}

fn outcome() -> impl Strategy<Value = LedgerOutcome> {
    prop_oneof![
        4 => Just(LedgerOutcome::Promoted),
        1 => Just(LedgerOutcome::RolledBack),
        1 => Just(LedgerOutcome::Failed),
        1 => Just(LedgerOutcome::Reverted),
        1 => Just(LedgerOutcome::Abandoned),
    ]
}

/// An entry within 6 weeks from 2024-01-01, with up to 3 commits.
fn entry() -> impl Strategy<Value = LedgerEntry> {
    (
        0..APPS.len(),
        0..ENVS.len(),
        outcome(),
        any::<bool>(),
        any::<bool>(),
        0i64..(42 * 24 * 60),
        1i64..240,
        proptest::collection::vec((0u8..30, 0i64..(3 * 24 * 60), any::<bool>()), 0..4),
    )
        .prop_map(|(app, env, outcome, hotfix, incident, start_min, dur_min, commits)| {
            let started = base() + SignedDuration::from_mins(start_min);
            let finished = started + SignedDuration::from_mins(dur_min);
            let mut x = e("p", APPS[app], ENVS[env], outcome, "2024-01-01T00:00:00Z", "2024-01-01T00:00:00Z");
            x.0.started_at = started;
            x.0.finished_at = finished;
            if hotfix {
                x.0.change = ChangeKind::Hotfix;
            }
            if incident {
                x.0.incident = Some("INC".to_owned());
            }
            for (sha, before, merge) in commits {
                let time = (finished - SignedDuration::from_mins(before)).to_string();
                x = if merge { x.merge(&format!("c{sha}"), &time) } else { x.commit(&format!("c{sha}"), &time) };
            }
            x.done()
        })
}

fn opts() -> Options {
    Options {
        filter: Filter {
            since: Some(base() + SignedDuration::from_hours(24 * 7)),
            until: Some(base() + SignedDuration::from_hours(24 * 35)),
            ..Filter::default()
        },
        ..Options::default()
    }
}

/// (deployments, per day, share of weeks) of one group, `None` without data.
fn frequency(r: &Report, app: &str, env: &str) -> Option<(u64, f64, f64)> {
    let g = r.groups.iter().find(|g| g.app == app && g.environment == env)?;
    let f = g.metrics.deployment_frequency.value.as_ref()?;
    Some((f.deployments, f.per_day, f.share_of_weeks_with_deployment))
}

fn all_deployments(r: &Report) -> Vec<(String, String, u64)> {
    r.groups.iter().map(|g| (g.app.clone(), g.environment.clone(), g.counts.deployments)).collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn a_successful_deployment_never_lowers_deployment_frequency(
        history in proptest::collection::vec(entry(), 0..40),
        extra in entry(),
    ) {
        let mut extra = extra;
        extra.outcome = LedgerOutcome::Promoted;
        let before = compute(&history, &opts());
        let mut more = history.clone();
        more.push(extra.clone());
        let after = compute(&more, &opts());
        for app in APPS {
            for env in ENVS {
                let (b, a) = (frequency(&before, app, env), frequency(&after, app, env));
                if let Some(b) = b {
                    let a = a.expect("a group with data keeps it");
                    prop_assert!(a.0 >= b.0 && a.1 >= b.1 && a.2 >= b.2, "{app}/{env}: {b:?} → {a:?}");
                }
            }
        }
        let total = |r: &Report| r.groups.iter().map(|g| g.counts.deployments).sum::<u64>();
        let inside = opts().filter.in_window(extra.finished_at);
        prop_assert_eq!(total(&after), total(&before) + u64::from(inside));
    }

    #[test]
    fn rollbacks_never_count_as_deployments(
        history in proptest::collection::vec(entry(), 0..40),
        extra in entry(),
        kind in prop_oneof![
            Just(LedgerOutcome::RolledBack),
            Just(LedgerOutcome::Failed),
            Just(LedgerOutcome::Reverted),
        ],
    ) {
        let mut extra = extra;
        extra.outcome = kind;
        let before = compute(&history, &opts());
        let mut more = history.clone();
        more.push(extra.clone());
        let after = compute(&more, &opts());
        // No group's deployment count or frequency moves.
        let mut b = all_deployments(&before);
        b.retain(|g| g.2 > 0);
        let mut a = all_deployments(&after);
        a.retain(|g| g.2 > 0);
        prop_assert_eq!(b, a);
        for app in APPS {
            for env in ENVS {
                if let (Some(b), Some(a)) = (frequency(&before, app, env), frequency(&after, app, env)) {
                    prop_assert_eq!(b, a);
                }
            }
        }
        // A ledger of nothing but rollbacks deploys nothing.
        let rollbacks: Vec<LedgerEntry> = more.into_iter().map(|mut x| {
            if x.outcome == LedgerOutcome::Promoted { x.outcome = LedgerOutcome::RolledBack; }
            x
        }).collect();
        let r = compute(&rollbacks, &opts());
        prop_assert!(r.groups.iter().all(|g| g.counts.deployments == 0));
        prop_assert!(r.groups.iter().all(|g| g.metrics.change_lead_time.value.is_none()));
    }

    #[test]
    fn rates_stay_in_range_and_no_data_has_a_reason(history in proptest::collection::vec(entry(), 0..60)) {
        let r = compute(&history, &opts());
        for g in r.groups.iter().map(|g| &g.metrics).chain(r.environments.iter().map(|e| &e.metrics)) {
            for (has, reason) in [
                (g.deployment_frequency.value.is_some(), &g.deployment_frequency.no_data),
                (g.change_lead_time.value.is_some(), &g.change_lead_time.no_data),
                (g.change_fail_rate.value.is_some(), &g.change_fail_rate.no_data),
                (g.failed_deployment_recovery_time.value.is_some(), &g.failed_deployment_recovery_time.no_data),
                (g.deployment_rework_rate.value.is_some(), &g.deployment_rework_rate.no_data),
            ] {
                prop_assert_eq!(has, reason.is_none());
            }
            for ratio in [&g.change_fail_rate.value, &g.deployment_rework_rate.value].into_iter().flatten() {
                prop_assert!(ratio.denominator > 0 && ratio.numerator <= ratio.denominator);
            }
            if let Some(l) = &g.change_lead_time.value {
                prop_assert!(l.median_seconds > 0.0 && l.median_seconds <= l.p90_seconds);
            }
        }
        // The days of a short window add up to its weeks.
        let trends = r.groups.iter().map(|g| (&g.weekly, &g.daily)).chain(r.environments.iter().map(|e| (&e.weekly, &e.daily)));
        for (weekly, daily) in trends {
            prop_assert!(!daily.is_empty());
            for w in weekly {
                let end = w.week_start.checked_add(jiff::Span::new().days(7)).expect("a date");
                let days = daily.iter().filter(|d| d.day >= w.week_start && d.day < end);
                let (deployments, attempts) = days.fold((0, 0), |(a, b), d| (a + d.figures.deployments, b + d.figures.attempts));
                prop_assert_eq!((deployments, attempts), (w.figures.deployments, w.figures.attempts));
            }
        }
        // Pooled counts add up.
        for env in &r.environments {
            let sum: u64 = r.groups.iter().filter(|g| g.environment == env.environment).map(|g| g.counts.attempts).sum();
            prop_assert_eq!(sum, env.counts.attempts);
        }
        // With one app, the pooled environment is that app (but for tiers).
        let mut one = opts();
        one.filter.apps = vec!["web".to_owned()];
        let r1 = compute(&history, &one);
        for env in &r1.environments {
            let g = r1.groups.iter().find(|g| g.environment == env.environment).expect("its app");
            prop_assert_eq!(&env.weekly, &g.weekly);
            prop_assert_eq!(&env.daily, &g.daily);
            prop_assert_eq!(&env.counts, &g.counts);
            prop_assert_eq!(&env.metrics.change_lead_time.value, &g.metrics.change_lead_time.value);
            prop_assert_eq!(&env.metrics.failed_deployment_recovery_time.value, &g.metrics.failed_deployment_recovery_time.value);
        }
        // The text renderers never fail and Markdown stays small.
        prop_assert!(sluice_dora::to_markdown(&r).len() < sluice_dora::MARKDOWN_LIMIT);
        let _ = sluice_dora::to_terminal(&r);
        // The chart is well-formed XML whatever the history.
        crate::chart::parse(&sluice_dora::to_svg(&r));
    }

    #[test]
    fn abandoned_deployments_change_no_metric(
        history in proptest::collection::vec(entry(), 0..40),
        extra in proptest::collection::vec(entry(), 1..4),
    ) {
        let before = compute(&history, &opts());
        let mut more = history.clone();
        more.extend(extra.into_iter().map(|mut x| {
            x.outcome = LedgerOutcome::Abandoned;
            x
        }));
        let after = compute(&more, &opts());
        for g in &after.groups {
            let abandoned_only = g.counts.entries == g.counts.abandoned;
            match before.groups.iter().find(|b| b.app == g.app && b.environment == g.environment) {
                // A group with other entries in the window measures the same.
                Some(b) if !abandoned_only || b.counts.entries > 0 => {
                    prop_assert_eq!(&g.metrics, &b.metrics);
                    prop_assert_eq!(&g.weekly, &b.weekly);
                    prop_assert_eq!(&g.daily, &b.daily);
                    let (mut gc, bc) = (g.counts.clone(), &b.counts);
                    prop_assert_eq!(gc.entries - bc.entries, gc.abandoned - bc.abandoned);
                    (gc.entries, gc.abandoned) = (bc.entries, bc.abandoned);
                    prop_assert_eq!(&gc, bc);
                }
                // Otherwise it has no attempt, no deployment, no failure.
                _ => {
                    prop_assert_eq!((g.counts.attempts, g.counts.deployments), (0, 0));
                    prop_assert!(g.metrics.change_fail_rate.value.is_none());
                    prop_assert!(g.metrics.change_lead_time.value.is_none());
                    prop_assert!(g.metrics.failed_deployment_recovery_time.value.is_none());
                }
            }
        }
        for (a, b) in after.environments.iter().zip(&before.environments) {
            if a.environment == b.environment {
                prop_assert_eq!(a.history.success_rate, b.history.success_rate);
                prop_assert_eq!(a.history.average_duration_seconds, b.history.average_duration_seconds);
            }
        }
    }
}
