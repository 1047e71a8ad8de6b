//! Writes sample SVG charts of realistic histories, to look at:
//! `chart_samples OUT_DIR` writes `demo-day.svg` (the demo's run: three
//! environments within minutes of one day), `week.svg` (a demo-like week:
//! dev, tst and prd, a few releases, one rollback recovered in ~3 minutes),
//! `30-days.svg` (by day), `90-days.svg` and `year.svg` (a team shipping
//! most working days), each window ending at 14:30 UTC (as `--since 7d`
//! would), so the first and last buckets are partial;
//! `many-environments.svg` (ten long names) and `empty.svg`. Deterministic.

use jiff::{SignedDuration, Timestamp};
use sluice_core::ledger::{ChangeKind, CommitInfo, LEDGER_SCHEMA, LedgerEntry, LedgerOutcome};
use sluice_dora::{Filter, Options, compute, to_svg};

const ENVS: [&str; 3] = ["dev", "tst", "prd"];

fn ts(s: &str) -> Timestamp {
    s.parse().expect("sample timestamps are valid")
}

fn entry(
    id: &str,
    env: &str,
    outcome: LedgerOutcome,
    started: Timestamp,
    minutes: i64,
    commits: &[Timestamp],
) -> LedgerEntry {
    LedgerEntry {
        schema: LEDGER_SCHEMA.to_owned(),
        id: format!("{id}-{env}"),
        app: "shop".to_owned(),
        environment: env.to_owned(),
        version: id.to_owned(),
        commit: None,
        commits: commits
            .iter()
            .enumerate()
            .map(|(k, t)| CommitInfo { sha: format!("{id}-c{k}"), time: *t, merge: false })
            .collect(),
        change: ChangeKind::Planned,
        incident: None,
        strategy: "canary".to_owned(),
        triggered_by: Some("github-actions[bot]".to_owned()),
        started_at: started,
        finished_at: started + SignedDuration::from_mins(minutes),
        outcome,
        reason: None,
        unanalysed: false,
        targets: Vec::new(),
    }
}

fn options(since: &str, until: &str) -> Options {
    Options {
        filter: Filter { since: Some(ts(since)), until: Some(ts(until)), ..Filter::default() },
        environment_order: ENVS.iter().map(|e| (*e).to_owned()).collect(),
        ..Options::default()
    }
}

/// The demo as `scripts/demo.sh` runs it: v2 through dev, tst and prd, v3
/// rolled back in dev, all within minutes; `--since all` to now.
fn demo_day() -> (Vec<LedgerEntry>, Options) {
    use LedgerOutcome::*;
    let c = [ts("2026-11-26T08:30:00Z"), ts("2026-11-27T11:30:00Z")];
    let v3 = [ts("2026-11-27T13:30:00Z")];
    let e = vec![
        entry("v2", "dev", Promoted, ts("2026-11-27T14:30:10Z"), 1, &c),
        entry("v2", "tst", Promoted, ts("2026-11-27T14:31:20Z"), 1, &c),
        entry("v2", "prd", Promoted, ts("2026-11-27T14:32:30Z"), 1, &c),
        entry("v3", "dev", RolledBack, ts("2026-11-27T14:33:40Z"), 3, &v3),
    ];
    let mut o = options("2026-11-27T00:00:00Z", "2026-11-27T14:40:00Z");
    o.filter.since = None;
    (e, o)
}

/// A week: three releases through dev, tst and prd, v3 rolled back in dev
/// after 3 minutes.
fn week() -> (Vec<LedgerEntry>, Options) {
    use LedgerOutcome::*;
    let v1 = [ts("2026-11-20T09:00:00Z"), ts("2026-11-20T12:10:00Z")];
    let v2 = [ts("2026-11-23T17:00:00Z"), ts("2026-11-24T08:20:00Z")];
    let v3 = [ts("2026-11-26T16:00:00Z"), ts("2026-11-27T08:00:00Z")];
    let v4 = [ts("2026-11-27T09:30:00Z")];
    let e = vec![
        entry("v1", "dev", Promoted, ts("2026-11-20T16:00:00Z"), 12, &v1),
        entry("v1", "tst", Promoted, ts("2026-11-21T10:00:00Z"), 14, &v1),
        entry("v1", "prd", Promoted, ts("2026-11-23T11:00:00Z"), 25, &v1),
        entry("v2", "dev", Promoted, ts("2026-11-24T10:00:00Z"), 11, &v2),
        entry("v2", "tst", Promoted, ts("2026-11-24T15:00:00Z"), 13, &v2),
        entry("v2", "prd", Promoted, ts("2026-11-25T10:00:00Z"), 26, &v2),
        entry("v3", "dev", RolledBack, ts("2026-11-27T09:00:00Z"), 3, &v3),
        entry("v4", "dev", Promoted, ts("2026-11-27T11:00:00Z"), 12, &v4),
    ];
    (e, options("2026-11-20T14:30:00Z", "2026-11-27T14:30:00Z"))
}

/// xorshift64*.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> i64 {
        (self.next() % n.max(1)) as i64
    }
    fn pct(&mut self, p: u64) -> bool {
        self.next() % 100 < p
    }
}

/// A team releasing on most working days: each release goes to dev, then
/// tst hours later, then prd the next day; some canaries roll back within
/// minutes, some promoted releases are reverted hours later, and the team
/// gets faster over time.
fn team(days: i64, since: &str, until: &str, seed: u64) -> (Vec<LedgerEntry>, Options) {
    use LedgerOutcome::*;
    let mut rng = Rng(seed | 1);
    let start = ts(since) - SignedDuration::from_hours(24 * 3);
    let mut out = Vec::new();
    for day in 0..days + 3 {
        let midnight = start + SignedDuration::from_hours(24 * day);
        let weekday = (midnight.as_second().div_euclid(86_400) + 3).rem_euclid(7); // 0 = Monday
        if weekday >= 5 || !rng.pct(80) {
            continue;
        }
        // Lead time shrinks over the history: commits from ~3 days to ~6 hours before.
        let slow = 1.0 - day as f64 / (days + 3) as f64;
        let releases = 1 + rng.below(2);
        for r in 0..releases {
            let id = format!("r{day}-{r}");
            let at = midnight + SignedDuration::from_mins(9 * 60 + rng.below(6 * 60));
            let commits: Vec<Timestamp> = (0..1 + rng.below(4))
                .map(|_| at - SignedDuration::from_mins(60 * 4 + rng.below((60.0 * 66.0 * slow) as u64 + 60)))
                .collect();
            let mut t = at;
            for (k, env) in ENVS.iter().enumerate() {
                if k > 0 {
                    t += SignedDuration::from_mins(60 * (2 + rng.below(20)));
                }
                if rng.pct(8) {
                    // The canary rolls back within minutes; the release stops here.
                    out.push(entry(&id, env, RolledBack, t, 2 + rng.below(12), &commits));
                    break;
                }
                out.push(entry(&id, env, Promoted, t, 8 + rng.below(25), &commits));
                if k == 2 && rng.pct(5) {
                    // Reverted hours later.
                    let revert_at = t + SignedDuration::from_mins(60 + rng.below(60 * 8));
                    out.push(entry(&format!("{id}-revert"), env, Reverted, revert_at, 4, &[]));
                }
            }
        }
    }
    out.sort_by_key(|e| e.finished_at);
    (out, options(since, until))
}

/// Ten environments with long names over three weeks: the legend wraps, two
/// are left out.
fn many_environments() -> (Vec<LedgerEntry>, Options) {
    let (base, mut opts) = team(21, "2026-11-06T00:00:00Z", "2026-11-27T00:00:00Z", 5);
    opts.environment_order.clear();
    let mut out = Vec::new();
    for k in 0..10 {
        for e in &base {
            let mut e = e.clone();
            e.environment = format!("{}-eu-central-{k}-staging-canary", e.environment);
            e.id = format!("{}-{k}", e.id);
            out.push(e);
        }
    }
    (out, opts)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = std::env::args().nth(1).unwrap_or_else(|| "target/charts".to_owned());
    std::fs::create_dir_all(&dir)?;
    let samples = [
        ("demo-day", demo_day()),
        ("week", week()),
        ("30-days", team(30, "2026-10-28T14:30:00Z", "2026-11-27T14:30:00Z", 3)),
        ("90-days", team(90, "2026-08-29T14:30:00Z", "2026-11-27T14:30:00Z", 7)),
        ("year", team(365, "2025-11-27T14:30:00Z", "2026-11-27T14:30:00Z", 11)),
        ("many-environments", many_environments()),
        ("empty", (Vec::new(), options("2026-11-20T00:00:00Z", "2026-11-27T00:00:00Z"))),
    ];
    for (name, (entries, opts)) in samples {
        let report = compute(&entries, &opts);
        let svg = to_svg(&report);
        let path = format!("{dir}/{name}.svg");
        std::fs::write(&path, &svg)?;
        println!("{path}: {} entries, {} bytes", entries.len(), svg.len());
    }
    Ok(())
}
