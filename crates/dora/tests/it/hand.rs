//! A small history whose every figure is worked out here by hand.
//!
//! Window: Monday 2024-01-01 00:00 UTC to Monday 2024-01-15 00:00 UTC
//! (14 days, 2 UTC weeks). App `web` in `prd`:
//!
//! | id | outcome | kind | started → finished | commits (time) | notes |
//! |---|---|---|---|---|---|
//! | e0 | promoted | planned | 12-29 09:50 → 12-29 10:00 | c0 (12-28 10:00) | before the window: context only |
//! | e1 | promoted | planned | 01-01 11:50 → 01-01 12:00 | a1 (08:00), a2 (10:00), merge m1 (11:00) | lead 4h, 2h; merge left out |
//! | e2 | rolled_back | planned | 01-02 10:00 → 10:30 | b1 (01-02 09:00) | failed attempt, recovery 30m |
//! | e3 | promoted | planned | 01-02 13:00 → 14:00 | b1 (09:00), b2 (12:00) | lead 5h, 2h; failed: hotfix e4 7h30m later |
//! | e4 | promoted | hotfix | 01-02 21:00 → 21:30 | h1 (20:00) | lead 1h30m; e3 recovers at 21:30 (8h30m) |
//! | e5 | promoted | planned | 01-04 10:00 → 10:10 | h1 again | redeploy of the same SHA: no lead time |
//! | e6 | promoted | planned | 01-05 09:00 → 09:20 | none | no new commits; reverted by e7 |
//! | e7 | reverted | – | 01-05 15:00 → 15:05 | | e6 failed, recovery 09:00 → 15:05 = 6h05m |
//! | e8 | failed | planned | 01-06 10:00 → 10:20 | f1 (01-06 09:00) | failed attempt, recovery 20m |
//! | e9 | promoted | planned | 01-08 10:00 → 12:00 | f1, g1 (01-08 08:00), g2 (01-09 12:00) | lead 51h, 4h; g2 after the deployment: left out |
//! | e10 | promoted | planned, INC-7 | 01-10 09:00 → 10:00 | k1 (01-10 06:00) | lead 4h; incident: failed; recovers at e11 (24h30m) |
//! | e11 | promoted | hotfix, INC-7 | 01-11 09:00 → 09:30 | k2 (01-11 08:00) | lead 1h30m |
//! | e12 | promoted | planned | 01-14 22:00 → 23:00 | n1 (01-14 20:00) | lead 3h; failed: hotfix e13 after the window |
//! | e13 | promoted | hotfix | 01-15 10:00 → 10:30 | | after the window; e12 recovers (12h30m) |
//!
//! `api` has one deployment before the window only; `worker` one rolled-back
//! attempt in the window (01-03 12:00 → 12:15).

use sluice_core::ledger::LedgerEntry;
use sluice_core::ledger::LedgerOutcome::{Abandoned, Failed, Promoted, Reverted, RolledBack};
use sluice_dora::report::{GroupReport, Tier};
use sluice_dora::{Filter, Options, Report, compute};

use crate::common::{e, ts};

pub fn history() -> Vec<LedgerEntry> {
    let w = |id, o, s, f| e(id, "web", "prd", o, s, f);
    vec![
        w("e0", Promoted, "2023-12-29T09:50:00Z", "2023-12-29T10:00:00Z").commit("c0", "2023-12-28T10:00:00Z").done(),
        w("e1", Promoted, "2024-01-01T11:50:00Z", "2024-01-01T12:00:00Z")
            .version("1.0.0")
            .sha("a2")
            .commit("a1", "2024-01-01T08:00:00Z")
            .commit("a2", "2024-01-01T10:00:00Z")
            .merge("m1", "2024-01-01T11:00:00Z")
            .done(),
        w("e2", RolledBack, "2024-01-02T10:00:00Z", "2024-01-02T10:30:00Z")
            .version("1.1.0")
            .commit("b1", "2024-01-02T09:00:00Z")
            .reason("error rate 5.0% > 1.0%")
            .done(),
        w("e3", Promoted, "2024-01-02T13:00:00Z", "2024-01-02T14:00:00Z")
            .version("1.1.0")
            .commit("b1", "2024-01-02T09:00:00Z")
            .commit("b2", "2024-01-02T12:00:00Z")
            .done(),
        w("e4", Promoted, "2024-01-02T21:00:00Z", "2024-01-02T21:30:00Z")
            .version("1.1.1")
            .sha("h1")
            .commit("h1", "2024-01-02T20:00:00Z")
            .hotfix()
            .done(),
        w("e5", Promoted, "2024-01-04T10:00:00Z", "2024-01-04T10:10:00Z")
            .version("1.1.1")
            .sha("h1")
            .commit("h1", "2024-01-02T20:00:00Z")
            .done(),
        w("e6", Promoted, "2024-01-05T09:00:00Z", "2024-01-05T09:20:00Z").version("1.2.0").done(),
        w("e7", Reverted, "2024-01-05T15:00:00Z", "2024-01-05T15:05:00Z")
            .version("1.2.0")
            .reason("latency regression")
            .done(),
        w("e8", Failed, "2024-01-06T10:00:00Z", "2024-01-06T10:20:00Z")
            .version("1.3.0")
            .commit("f1", "2024-01-06T09:00:00Z")
            .reason("target group unhealthy")
            .done(),
        w("e9", Promoted, "2024-01-08T10:00:00Z", "2024-01-08T12:00:00Z")
            .version("1.3.0")
            .commit("f1", "2024-01-06T09:00:00Z")
            .commit("g1", "2024-01-08T08:00:00Z")
            .commit("g2", "2024-01-09T12:00:00Z")
            .done(),
        w("e10", Promoted, "2024-01-10T09:00:00Z", "2024-01-10T10:00:00Z")
            .version("1.4.0")
            .commit("k1", "2024-01-10T06:00:00Z")
            .incident("INC-7")
            .done(),
        w("e11", Promoted, "2024-01-11T09:00:00Z", "2024-01-11T09:30:00Z")
            .version("1.4.1")
            .commit("k2", "2024-01-11T08:00:00Z")
            .hotfix()
            .incident("INC-7")
            .done(),
        w("e12", Promoted, "2024-01-14T22:00:00Z", "2024-01-14T23:00:00Z")
            .version("1.5.0")
            .commit("n1", "2024-01-14T20:00:00Z")
            .done(),
        w("e13", Promoted, "2024-01-15T10:00:00Z", "2024-01-15T10:30:00Z").version("1.5.1").hotfix().done(),
        e("x1", "api", "prd", Promoted, "2023-12-20T10:00:00Z", "2023-12-20T10:10:00Z").done(),
        e("y1", "worker", "prd", RolledBack, "2024-01-03T12:00:00Z", "2024-01-03T12:15:00Z").reason("5xx").done(),
    ]
}

pub fn window() -> Options {
    Options {
        filter: Filter {
            since: Some(ts("2024-01-01T00:00:00Z")),
            until: Some(ts("2024-01-15T00:00:00Z")),
            ..Filter::default()
        },
        ..Options::default()
    }
}

fn group<'r>(r: &'r Report, app: &str) -> &'r GroupReport {
    r.groups.iter().find(|g| g.app == app).expect("group present")
}

const H: f64 = 3600.0;

#[test]
fn web_every_figure() {
    let r = compute(history(), &window());
    let w = r.window.as_ref().expect("window");
    assert_eq!((w.days, w.weeks), (14.0, 2));
    assert_eq!(r.groups.iter().map(|g| g.app.as_str()).collect::<Vec<_>>(), ["api", "web", "worker"]);

    let web = group(&r, "web");
    let c = &web.counts;
    // e1..e12 in the window; e7 is the only revert.
    assert_eq!(c.entries, 12);
    assert_eq!(c.attempts, 11);
    // e1 e3 e4 e5 e6 e9 e10 e11 e12 (the redeploy e5 and the no-commit e6 count).
    assert_eq!(c.deployments, 9);
    assert_eq!((c.rolled_back, c.failed, c.reverted), (1, 1, 1));
    assert_eq!(c.hotfix_deployments, 2);
    // e2 rolled back, e3 hotfixed, e6 reverted, e8 failed, e10 incident, e12 hotfixed later.
    assert_eq!(c.failed_deployments, 6);
    assert_eq!(c.unrecovered, 0);

    let m = &web.metrics;
    let f = m.deployment_frequency.value.as_ref().expect("frequency");
    assert_eq!(f.deployments, 9);
    assert_eq!(f.per_day, 9.0 / 14.0);
    assert_eq!(f.per_week, 9.0 / 14.0 * 7.0);
    assert_eq!((f.weeks_with_deployment, f.weeks), (2, 2));
    assert_eq!(f.share_of_weeks_with_deployment, 1.0);
    // 0.64/day: under once a day, at least once a week.
    assert_eq!(m.deployment_frequency.tier, Some(Tier::High));

    // Lead times (s), sorted: 5400 (h1), 5400 (k2), 7200 (a2), 7200 (b2), 10800 (n1),
    // 14400 (a1), 14400 (g1), 14400 (k1), 18000 (b1), 183600 (f1: 51h).
    // Median: h = 9·0.5 = 4.5 → 10800 + 0.5·3600 = 12600.
    // p90: h = 9·0.9 = 8.1 → 18000 + 0.1·165600 = 34560.
    let l = m.change_lead_time.value.as_ref().expect("lead time");
    assert_eq!(l.samples, 10);
    assert_eq!(l.median_seconds, 12_600.0);
    assert!((l.p90_seconds - 34_560.0).abs() < 1e-6, "{}", l.p90_seconds);
    assert_eq!(m.change_lead_time.tier, Some(Tier::Elite));

    let cfr = m.change_fail_rate.value.as_ref().expect("fail rate");
    assert_eq!((cfr.numerator, cfr.denominator), (6, 11));
    assert_eq!(cfr.rate, 6.0 / 11.0);
    assert_eq!(m.change_fail_rate.tier, Some(Tier::Low));

    // Recovery (s), sorted: 1200 (e8), 1800 (e2), 21900 (e6: 09:00 → revert end 15:05),
    // 30600 (e3: 13:00 → e4 21:30), 45000 (e12: 22:00 → e13 10:30), 88200 (e10: → e11 09:30).
    // Median: h = 2.5 → 21900 + 0.5·8700 = 26250. p90: h = 4.5 → 45000 + 0.5·43200 = 66600.
    let rec = m.failed_deployment_recovery_time.value.as_ref().expect("recovery");
    assert_eq!(rec.samples, 6);
    assert_eq!(rec.median_seconds, 26_250.0);
    assert_eq!(rec.p90_seconds, 66_600.0);
    assert_eq!(m.failed_deployment_recovery_time.tier, Some(Tier::High));

    let rw = m.deployment_rework_rate.value.as_ref().expect("rework");
    assert_eq!((rw.numerator, rw.denominator), (2, 9));
    assert_eq!(m.deployment_rework_rate.tier, None);
    assert!(m.deployment_rework_rate.no_data.is_none());

    // Weeks: 01-01 (e1 e2 e3 e4 e5 e6 e8) and 01-08 (e9 e10 e11 e12).
    let [w1, w2] = web.weekly.as_slice() else { panic!("two weeks") };
    assert_eq!(w1.week_start.to_string(), "2024-01-01");
    assert_eq!((w1.figures.deployments, w1.figures.attempts), (5, 7));
    assert_eq!(w1.figures.change_fail_rate, Some(4.0 / 7.0));
    assert_eq!(w1.figures.rework_rate, Some(0.2));
    // 5400 7200 7200 14400 18000 → 7200.
    assert_eq!(w1.figures.change_lead_time_median_seconds, Some(7200.0));
    // 1200 1800 21900 30600 → 1800 + 0.5·20100 = 11850.
    assert_eq!(w1.figures.recovery_time_median_seconds, Some(11_850.0));
    assert_eq!(w2.week_start.to_string(), "2024-01-08");
    assert_eq!((w2.figures.deployments, w2.figures.attempts), (4, 4));
    assert_eq!(w2.figures.change_fail_rate, Some(0.5));
    assert_eq!(w2.figures.rework_rate, Some(0.25));
    // 5400 10800 14400 14400 183600 → 14400.
    assert_eq!(w2.figures.change_lead_time_median_seconds, Some(14_400.0));
    // 45000 88200 → 66600.
    assert_eq!(w2.figures.recovery_time_median_seconds, Some(66_600.0));
    // Monday to Monday: both weeks whole.
    assert_eq!((w1.figures.coverage, w2.figures.coverage), (1.0, 1.0));

    // Days: 14 of them (a window of at most 31 days has a daily trend), all whole.
    assert_eq!(web.daily.len(), 14);
    assert!(web.daily.iter().all(|d| d.figures.coverage == 1.0));
    let day = |date: &str| &web.daily.iter().find(|d| d.day.to_string() == date).expect("the day").figures;
    // 01-01: e1 (lead 4h, 2h).
    let d = day("2024-01-01");
    assert_eq!((d.deployments, d.attempts, d.change_fail_rate, d.rework_rate), (1, 1, Some(0.0), Some(0.0)));
    assert_eq!((d.change_lead_time_median_seconds, d.recovery_time_median_seconds), (Some(10_800.0), None));
    // 01-02: e2 rolled back, e3 failed (hotfixed), e4 the hotfix. Lead 5400 7200 18000 → 7200;
    // recovery 1800 (e2) 30600 (e3) → 16200.
    let d = day("2024-01-02");
    assert_eq!((d.deployments, d.attempts), (2, 3));
    assert_eq!((d.change_fail_rate, d.rework_rate), (Some(2.0 / 3.0), Some(0.5)));
    assert_eq!((d.change_lead_time_median_seconds, d.recovery_time_median_seconds), (Some(7200.0), Some(16_200.0)));
    // 01-03: only worker's rollback; web has nothing, and says so with nulls.
    let d = day("2024-01-03");
    assert_eq!((d.deployments, d.attempts, d.change_fail_rate, d.rework_rate), (0, 0, None, None));
    assert_eq!((d.change_lead_time_median_seconds, d.recovery_time_median_seconds), (None, None));
    // 01-05: e6 (reverted the same day: recovery 21900 placed on its own day); the revert is no attempt.
    let d = day("2024-01-05");
    assert_eq!((d.deployments, d.attempts, d.change_fail_rate), (1, 1, Some(1.0)));
    assert_eq!((d.change_lead_time_median_seconds, d.recovery_time_median_seconds), (None, Some(21_900.0)));
    // 01-06: e8 failed (recovery 1200), no deployment, so no rework rate.
    let d = day("2024-01-06");
    assert_eq!((d.deployments, d.attempts, d.change_fail_rate, d.rework_rate), (0, 1, Some(1.0), None));
    assert_eq!(d.recovery_time_median_seconds, Some(1200.0));
    // 01-14: e12 (lead 3h; recovered by e13 after the window: 45000).
    let d = day("2024-01-14");
    assert_eq!((d.change_lead_time_median_seconds, d.recovery_time_median_seconds), (Some(10_800.0), Some(45_000.0)));
    // The days add up to the weeks.
    let days_of = |k: usize| &web.daily[k * 7..k * 7 + 7];
    for (k, w) in [w1, w2].into_iter().enumerate() {
        assert_eq!(days_of(k).iter().map(|d| d.figures.deployments).sum::<u64>(), w.figures.deployments);
        assert_eq!(days_of(k).iter().map(|d| d.figures.attempts).sum::<u64>(), w.figures.attempts);
    }
}

#[test]
fn partial_days_and_weeks_say_how_much_of_them_is_in_the_window() {
    // Wednesday 12:00 to the next Tuesday 06:00: the first day half in, the
    // last a quarter; the first week 4.5 of 7 days, the last 1.25.
    let opts = Options {
        filter: Filter {
            since: Some(ts("2024-01-03T12:00:00Z")),
            until: Some(ts("2024-01-09T06:00:00Z")),
            ..Filter::default()
        },
        ..Options::default()
    };
    let r = compute(history(), &opts);
    let web = group(&r, "web");
    let cover: Vec<f64> = web.daily.iter().map(|d| d.figures.coverage).collect();
    assert_eq!(cover, [0.5, 1.0, 1.0, 1.0, 1.0, 1.0, 0.25]);
    assert_eq!(web.daily[0].day.to_string(), "2024-01-03");
    let weeks: Vec<f64> = web.weekly.iter().map(|w| w.figures.coverage).collect();
    assert_eq!(weeks, [4.5 / 7.0, 1.25 / 7.0]);
    // A window longer than 31 days has no daily trend, only weeks.
    let long = Options {
        filter: Filter {
            since: Some(ts("2023-12-01T00:00:00Z")),
            until: Some(ts("2024-01-15T00:00:00Z")),
            ..Filter::default()
        },
        ..Options::default()
    };
    let r = compute(history(), &long);
    assert!(r.groups.iter().all(|g| g.daily.is_empty() && !g.weekly.is_empty()));
    assert!(r.environments.iter().all(|e| e.daily.is_empty() && !e.weekly.is_empty()));
}

#[test]
fn no_data_is_null_with_a_reason_never_zero() {
    let r = compute(history(), &window());

    // api: entries before the window only.
    let api = group(&r, "api");
    assert_eq!(api.counts.entries, 0);
    let m = &api.metrics;
    for reason in [
        &m.deployment_frequency.no_data,
        &m.change_lead_time.no_data,
        &m.change_fail_rate.no_data,
        &m.failed_deployment_recovery_time.no_data,
        &m.deployment_rework_rate.no_data,
    ] {
        assert_eq!(reason.as_deref(), Some("no ledger entries in the window"));
    }
    assert!(m.deployment_frequency.value.is_none() && m.deployment_frequency.tier.is_none());
    assert!(m.change_lead_time.value.is_none());
    assert!(m.change_fail_rate.value.is_none());
    assert!(m.failed_deployment_recovery_time.value.is_none());
    assert!(m.deployment_rework_rate.value.is_none());
    assert!(api.weekly.iter().all(|w| w.figures.change_fail_rate.is_none() && w.figures.rework_rate.is_none()));

    // worker: one rolled-back attempt. It deployed nothing (0/day is a
    // measurement), failed once, recovered in 15 minutes.
    let worker = group(&r, "worker");
    let m = &worker.metrics;
    let f = m.deployment_frequency.value.as_ref().expect("measured");
    assert_eq!((f.deployments, f.per_day, f.weeks_with_deployment), (0, 0.0, 0));
    assert_eq!(m.deployment_frequency.tier, Some(Tier::Low));
    assert_eq!(m.change_lead_time.value, None);
    assert_eq!(m.change_lead_time.no_data.as_deref(), Some("no promoted deployment in the window"));
    let cfr = m.change_fail_rate.value.as_ref().expect("one attempt");
    assert_eq!((cfr.numerator, cfr.denominator, cfr.rate), (1, 1, 1.0));
    let rec = m.failed_deployment_recovery_time.value.as_ref().expect("recovered");
    assert_eq!((rec.median_seconds, rec.p90_seconds), (900.0, 900.0));
    assert_eq!(m.failed_deployment_recovery_time.tier, Some(Tier::Elite));
    assert_eq!(m.deployment_rework_rate.value, None);
    assert_eq!(m.deployment_rework_rate.no_data.as_deref(), Some("no promoted deployment in the window"));
}

#[test]
fn a_window_with_deployments_but_no_commits_has_no_lead_time() {
    // Only e5 (redeploy of h1) and e6 (no commits) fall in 01-04 .. 01-05 12:00.
    let mut opts = window();
    opts.filter.since = Some(ts("2024-01-04T00:00:00Z"));
    opts.filter.until = Some(ts("2024-01-05T12:00:00Z"));
    let r = compute(history(), &opts);
    let m = &group(&r, "web").metrics;
    assert_eq!(m.deployment_frequency.value.as_ref().map(|f| f.deployments), Some(2));
    assert_eq!(m.change_lead_time.value, None);
    assert!(
        m.change_lead_time
            .no_data
            .as_deref()
            .is_some_and(|r| r.starts_with("no promoted deployment in the window brought a new commit")),
        "{:?}",
        m.change_lead_time.no_data
    );
    // e6 is reverted (at 15:05, after this window): it still failed.
    let cfr = m.change_fail_rate.value.as_ref().expect("two attempts");
    assert_eq!((cfr.numerator, cfr.denominator), (1, 2));
    let rec = m.failed_deployment_recovery_time.value.as_ref().expect("recovered");
    assert_eq!(rec.median_seconds, 6.0 * H + 300.0);
}

#[test]
fn environment_pools_apps_and_keeps_history() {
    let r = compute(history(), &window());
    let [prd] = r.environments.as_slice() else { panic!("one environment") };
    assert_eq!(prd.environment, "prd");
    assert_eq!(prd.apps, 3);
    assert_eq!(prd.counts.deployments, 9);
    assert_eq!(prd.counts.attempts, 12);
    let m = &prd.metrics;
    assert_eq!(m.change_fail_rate.value.as_ref().map(|c| (c.numerator, c.denominator)), Some((7, 12)));
    assert_eq!(m.change_fail_rate.tier, None, "pooled environments have no tier");
    // Recovery pooled: 900 1200 1800 21900 30600 45000 88200: median 21900,
    // p90 h = 5.4 → 45000 + 0.4·43200 = 62280.
    let rec = m.failed_deployment_recovery_time.value.as_ref().expect("recovery");
    assert_eq!(rec.median_seconds, 21_900.0);
    assert!((rec.p90_seconds - 62_280.0).abs() < 1e-6);
    let f = m.deployment_frequency.value.as_ref().expect("frequency");
    assert_eq!((f.weeks_with_deployment, f.weeks), (2, 2));
    // Weekly, pooled: worker's 900 s recovery (01-03) joins web's week 1.
    let [w1, w2] = prd.weekly.as_slice() else { panic!("two weeks") };
    assert_eq!((w1.figures.deployments, w1.figures.attempts, w2.figures.attempts), (5, 8, 4));
    assert_eq!(w1.figures.change_fail_rate, Some(5.0 / 8.0));
    // 900 1200 1800 21900 30600 → 1800; lead times as web's.
    assert_eq!(w1.figures.recovery_time_median_seconds, Some(1800.0));
    assert_eq!(w1.figures.change_lead_time_median_seconds, Some(7200.0));
    assert_eq!(w2.figures.change_lead_time_median_seconds, Some(14_400.0));
    assert_eq!(w2.figures.recovery_time_median_seconds, Some(66_600.0));

    // History: the 13 entries of prd in the window, newest first.
    let h = &prd.history;
    assert_eq!((h.total, h.left_out, h.rows.len()), (13, 0, 13));
    assert_eq!(h.rows[0].id, "e12");
    assert_eq!(h.rows[12].id, "e1");
    assert!(h.rows.windows(2).all(|p| p[0].started_at >= p[1].started_at));
    // 9 promoted of 12 attempts; durations of the attempts sum to 27900 s.
    assert_eq!(h.success_rate, Some(0.75));
    assert_eq!(h.average_duration_seconds, Some(27_900.0 / 12.0));
    let e2 = h.rows.iter().find(|r| r.id == "e2").expect("e2");
    assert_eq!(e2.reason.as_deref(), Some("error rate 5.0% > 1.0%"));
    assert_eq!(e2.duration_seconds, 1800.0);

    let mut opts = window();
    opts.history_limit = 5;
    let r = compute(history(), &opts);
    let h = &r.environments[0].history;
    assert_eq!((h.total, h.left_out), (13, 8));
    let ids: Vec<&str> = h.rows.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(ids, ["e12", "e11", "e10", "e9", "e8"]);
}

#[test]
fn hotfix_window_is_configurable() {
    // With a 6-hour window e4 (7h after e3) and e13 (11h after e12) no longer
    // mark anything; e11 (23h after e10) neither, but e10 fails by its incident.
    let mut opts = window();
    opts.hotfix_window = std::time::Duration::from_secs(6 * 3600);
    let r = compute(history(), &opts);
    let cfr = group(&r, "web").metrics.change_fail_rate.value.clone().expect("rate");
    // e2, e6, e8, e10.
    assert_eq!((cfr.numerator, cfr.denominator), (4, 11));
}

#[test]
fn empty_windows_say_so() {
    // After every entry.
    let mut opts = window();
    opts.filter.since = Some(ts("2024-02-01T00:00:00Z"));
    opts.filter.until = Some(ts("2024-03-01T00:00:00Z"));
    let r = compute(history(), &opts);
    assert_eq!(r.groups.len(), 3);
    for g in &r.groups {
        assert_eq!(g.metrics.deployment_frequency.value, None);
        assert_eq!(g.metrics.deployment_frequency.no_data.as_deref(), Some("no ledger entries in the window"));
        assert_eq!(g.metrics.change_fail_rate.value, None);
    }
    let h = &r.environments[0].history;
    assert_eq!((h.total, h.success_rate, h.average_duration_seconds), (0, None, None));

    // An inverted window.
    opts.filter.until = opts.filter.since;
    let r = compute(history(), &opts);
    assert_eq!(r.window.as_ref().map(|w| (w.days, w.weeks)), Some((0.0, 0)));
    assert!(r.notes.iter().any(|n| n.contains("the window is empty")));
    let g = &r.groups[0];
    assert_eq!(g.metrics.change_lead_time.no_data.as_deref(), Some("the window is empty"));
    assert!(g.weekly.is_empty());

    // No ledger at all.
    let r = compute(Vec::<LedgerEntry>::new(), &Options::default());
    assert!(r.window.is_none() && r.groups.is_empty() && r.environments.is_empty());
    assert!(!r.notes.is_empty());
}

#[test]
fn derived_window_covers_whole_days() {
    let r = compute(history(), &Options::default());
    let w = r.window.as_ref().expect("derived");
    // First entry finished 2023-12-20 10:10, last 2024-01-15 10:30.
    assert_eq!(w.since, ts("2023-12-20T00:00:00Z"));
    assert_eq!(w.until, ts("2024-01-16T00:00:00Z"));
    assert!(w.since_derived && w.until_derived);
    assert_eq!(w.days, 27.0);
    // Weeks of 12-18, 12-25, 01-01, 01-08, 01-15.
    assert_eq!(w.weeks, 5);
    let web = group(&r, "web");
    // e0 .. e13 but e7: 13 deployments of which 3 hotfixes... e4 e11 e13.
    assert_eq!(web.counts.deployments, 11);
    assert_eq!(web.counts.hotfix_deployments, 3);
}

#[test]
fn scope_filters_apps_and_environments() {
    let mut entries = history();
    entries.push(e("s1", "web", "stg", Promoted, "2024-01-03T10:00:00Z", "2024-01-03T10:05:00Z").done());
    let mut opts = window();
    opts.filter.environments = vec!["stg".to_owned()];
    let r = compute(&entries, &opts);
    assert_eq!(r.groups.len(), 1);
    assert_eq!(r.groups[0].counts.deployments, 1);

    opts.filter.environments.clear();
    opts.filter.apps = vec!["worker".to_owned()];
    let r = compute(&entries, &opts);
    assert_eq!(r.groups.iter().map(|g| g.app.as_str()).collect::<Vec<_>>(), ["worker"]);
    assert_eq!(r.environments[0].history.total, 1);
}

#[test]
fn order_of_the_ledger_does_not_matter() {
    let mut entries = history();
    let a = compute(&entries, &window());
    entries.reverse();
    let b = compute(&entries, &window());
    assert_eq!(a, b);
}

#[test]
fn environments_follow_the_promotion_order_when_given() {
    let entries: Vec<_> = ["dev", "tst", "prd", "qa"]
        .iter()
        .enumerate()
        .map(|(i, env)| {
            e(&format!("{env}-1"), "shop", env, Promoted, "2024-01-02T10:00:00Z", "2024-01-02T10:10:00Z")
                .sha(&format!("{i}abcdef"))
                .done()
        })
        .collect();
    let names = |r: &Report| r.environments.iter().map(|e| e.environment.clone()).collect::<Vec<_>>();
    assert_eq!(names(&compute(&entries, &window())), ["dev", "prd", "qa", "tst"]);
    let ordered = Options { environment_order: vec!["dev".into(), "tst".into(), "prd".into()], ..window() };
    let report = compute(&entries, &ordered);
    assert_eq!(names(&report), ["dev", "tst", "prd", "qa"]);
    let groups: Vec<&str> = report.groups.iter().map(|g| g.environment.as_str()).collect();
    assert_eq!(groups, ["dev", "tst", "prd", "qa"]);
}

/// Abandoned deployments (they never moved traffic) are not attempts: adding
/// them leaves every metric and every weekly point as it was; they are only
/// counted apart and listed in the history.
#[test]
fn abandoned_deployments_are_neither_deployments_nor_failures() {
    let mut entries = history();
    let w = |id, s, f| e(id, "web", "prd", Abandoned, s, f).reason("the router was down: no traffic moved");
    entries.extend([
        w("a1", "2024-01-03T09:00:00Z", "2024-01-03T09:01:00Z").commit("z1", "2024-01-03T08:00:00Z").done(),
        // A hotfix 1h50m after e5: an attempt would mark e5 failed.
        w("a2", "2024-01-04T12:00:00Z", "2024-01-04T12:01:00Z").hotfix().done(),
        // Linked to an incident: a planned deployment would fail by it.
        w("a3", "2024-01-09T10:00:00Z", "2024-01-09T10:05:00Z").incident("INC-9").done(),
        e("a4", "worker", "prd", Abandoned, "2024-01-12T10:00:00Z", "2024-01-12T10:00:30Z").done(),
    ]);
    let before = compute(history(), &window());
    let after = compute(&entries, &window());
    for (b, a) in before.groups.iter().zip(&after.groups) {
        assert_eq!((&a.app, &a.metrics, &a.weekly), (&b.app, &b.metrics, &b.weekly));
    }
    let (b, a) = (&before.environments[0], &after.environments[0]);
    assert_eq!((&a.metrics, &a.weekly), (&b.metrics, &b.weekly));
    assert_eq!((a.history.success_rate, a.history.average_duration_seconds), (Some(0.75), Some(27_900.0 / 12.0)));

    let web = group(&after, "web");
    let c = &web.counts;
    assert_eq!((c.entries, c.abandoned, c.attempts, c.deployments, c.failed_deployments), (15, 3, 11, 9, 6));
    assert_eq!(group(&after, "worker").counts.abandoned, 1);
    assert_eq!((a.counts.abandoned, a.history.total), (4, 17));
    let a2 = a.history.rows.iter().find(|r| r.id == "a2").expect("abandoned rows are history");
    assert_eq!((a2.outcome, a2.reason.as_deref()), (Abandoned, Some("the router was down: no traffic moved")));

    // The same entries as attempts that failed would count: the ledger is
    // what tells them apart.
    let rolled_back: Vec<_> = entries
        .iter()
        .cloned()
        .map(|mut x| {
            if x.outcome == Abandoned {
                x.outcome = RolledBack;
            }
            x
        })
        .collect();
    let r = compute(&rolled_back, &window());
    let cfr = group(&r, "web").metrics.change_fail_rate.value.clone().expect("rate");
    // 6/11 + a1 a2 a3 (failed attempts) + e5 (hotfix a2 started 1h50m after it).
    assert_eq!((cfr.numerator, cfr.denominator), (10, 14));
}

/// docs/dora.md's hotfix rule: a hotfix marks as failed the deployment that
/// was stable when the hotfix *started*. Two deployments overlap the hotfix
/// here; the one that finished while the hotfix ran is not what it fixes.
#[test]
fn a_hotfix_is_checked_against_what_was_stable_when_it_started() {
    let w = |id, o, s, f| e(id, "web", "prd", o, s, f);
    let failed = |entries: &[LedgerEntry]| {
        let r = compute(entries, &window());
        let c = group(&r, "web").counts.clone();
        (c.deployments, c.attempts, c.failed_deployments)
    };
    let base = vec![
        // d0 stable before the window; d1 promoted at 10:00.
        w("d0", Promoted, "2023-12-31T09:00:00Z", "2023-12-31T09:10:00Z").done(),
        w("d1", Promoted, "2024-01-03T09:30:00Z", "2024-01-03T10:00:00Z").done(),
        // d2 starts before the hotfix and finishes while it runs.
        w("d2", Promoted, "2024-01-03T10:30:00Z", "2024-01-03T11:30:00Z").done(),
    ];
    // h starts at 11:00, while d1 is stable, and finishes at 12:00, after d2.
    let hotfix = w("h", Promoted, "2024-01-03T11:00:00Z", "2024-01-03T12:00:00Z").hotfix().done();
    let mut entries = base.clone();
    entries.push(hotfix.clone());
    // d1 failed (the hotfix fixes it); d2 and h did not.
    assert_eq!(failed(&entries), (3, 3, 1));
    let r = compute(&entries, &window());
    let rec = group(&r, "web").metrics.failed_deployment_recovery_time.value.clone().expect("recovered");
    // d1 from 09:30 to the next promoted deployment, d2 at 11:30.
    assert_eq!(rec.median_seconds, 2.0 * H);

    // Which one: d1 marked, d2 not. Without d1 nothing is stable in the
    // window when h starts but d0, 2 days earlier: outside the 24 h window.
    let without_d1: Vec<_> = entries.iter().filter(|x| x.id != "d1").cloned().collect();
    assert_eq!(failed(&without_d1), (2, 2, 0));
    // The hotfix starting after d2 finished fixes d2 instead.
    let mut later = base.clone();
    later.push(w("h", Promoted, "2024-01-03T11:40:00Z", "2024-01-03T12:00:00Z").hotfix().done());
    let r = compute(&later, &window());
    let rec = group(&r, "web").metrics.failed_deployment_recovery_time.value.clone().expect("recovered");
    assert_eq!(failed(&later), (3, 3, 1));
    // d2 from 10:30 to h at 12:00.
    assert_eq!(rec.median_seconds, 1.5 * H);

    // A revert that ended before the hotfix started: what was stable then is
    // d0 again (d1 reverted), 2 days before: nothing more fails.
    let mut reverted = base.clone();
    reverted.push(w("r", Reverted, "2024-01-03T10:20:00Z", "2024-01-03T10:25:00Z").done());
    reverted.push(hotfix.clone());
    assert_eq!(failed(&reverted), (3, 3, 1));
    // But with d0 within its window, d0 is what the hotfix fixes (d0 is in
    // the report's window now too): d0 and d1 failed.
    let mut near = reverted.clone();
    near[0] = w("d0", Promoted, "2024-01-03T08:00:00Z", "2024-01-03T08:10:00Z").done();
    assert_eq!(failed(&near), (4, 4, 2));

    // Ledger order and a hotfix with no duration change nothing.
    let mut shuffled = entries.clone();
    shuffled.reverse();
    assert_eq!(failed(&shuffled), (3, 3, 1));
    let instant = w("h", Promoted, "2024-01-03T11:00:00Z", "2024-01-03T11:00:00Z").hotfix().done();
    let mut zero = base.clone();
    zero.push(instant);
    assert_eq!(failed(&zero), (3, 3, 1));
}
