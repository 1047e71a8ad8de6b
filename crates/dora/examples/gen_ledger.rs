//! Writes a synthetic file ledger for benchmarks.
//!
//! `gen_ledger OUT [ENTRIES] [APPS] [SEED]`: ENTRIES lines (default
//! 1,000,000) across APPS apps (default 50) × dev/tst/prd, one year from
//! 2024-01-01, roughly in time order, with commits (some merges, some
//! redeploys without new commits), rollbacks, failures, reverts, hotfixes and
//! incidents. Deterministic for a seed.

use std::fs::File;
use std::io::{BufWriter, Write};

use jiff::{SignedDuration, Timestamp};
use sluice_core::ledger::{ChangeKind, CommitInfo, LEDGER_SCHEMA, LedgerEntry, LedgerOutcome};

const ENVS: [&str; 3] = ["dev", "tst", "prd"];
const STRATEGIES: [&str; 3] = ["canary", "blue_green", "all_at_once"];
const PEOPLE: [&str; 6] = ["alice", "bob", "carol", "dave", "erin", "github-actions[bot]"];

/// xorshift64*: small, fast, good enough for test data.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    /// True with probability `p` percent.
    fn pct(&mut self, p: u64) -> bool {
        self.below(100) < p
    }
}

fn sha(rng: &mut Rng) -> String {
    format!("{:016x}{:016x}{:08x}", rng.next(), rng.next(), rng.next() as u32)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let Some(out) = args.get(1) else {
        eprintln!("usage: gen_ledger OUT [ENTRIES] [APPS] [SEED]");
        std::process::exit(2);
    };
    let entries: u64 = args.get(2).map_or(Ok(1_000_000), |s| s.parse())?;
    let apps: u64 = args.get(3).map_or(Ok(50), |s| s.parse())?;
    let seed: u64 = args.get(4).map_or(Ok(0x5eed_d0a4), |s| s.parse())?;
    let mut rng = Rng(seed | 1);
    let groups = (apps * ENVS.len() as u64).max(1);
    // Per group: (last version number, whether something is stable, the last deployed sha).
    let mut state: Vec<(u64, bool, Option<String>)> = vec![(0, false, None); groups as usize];

    let start: Timestamp = "2024-01-01T00:00:00Z".parse()?;
    let year_ms: u64 = 365 * 24 * 3600 * 1000;
    let step_ms = (year_ms / entries.max(1)).max(1);
    let mut now = start;
    let mut w = BufWriter::with_capacity(1 << 20, File::create(out)?);
    let mut line = String::new();
    for n in 0..entries {
        now += SignedDuration::from_millis(rng.below(2 * step_ms) as i64);
        let g = rng.below(groups) as usize;
        let (app, env) = (g as u64 / ENVS.len() as u64, ENVS[g % ENVS.len()]);
        let st = &mut state[g];
        let duration = SignedDuration::from_secs(120 + rng.below(3600) as i64);
        let started = now;
        let finished = now + duration;

        let roll = rng.below(100);
        let outcome = if roll < 3 && st.1 {
            LedgerOutcome::Reverted
        } else if roll < 10 {
            LedgerOutcome::RolledBack
        } else if roll < 13 {
            LedgerOutcome::Failed
        } else {
            LedgerOutcome::Promoted
        };
        let hotfix = outcome != LedgerOutcome::Reverted && rng.pct(8);
        let redeploy = outcome == LedgerOutcome::Promoted && st.2.is_some() && rng.pct(5);
        let mut commits = Vec::new();
        let commit = if outcome == LedgerOutcome::Reverted || redeploy {
            st.2.clone()
        } else {
            for _ in 0..1 + rng.below(4) {
                let before =
                    SignedDuration::from_secs(60 + rng.below(if hotfix { 6 * 3600 } else { 5 * 86_400 }) as i64);
                commits.push(CommitInfo { sha: sha(&mut rng), time: started - before, merge: rng.pct(15) });
            }
            commits.last().map(|c| c.sha.clone())
        };
        if outcome != LedgerOutcome::Reverted && !redeploy {
            st.0 += 1;
        }
        let entry = LedgerEntry {
            schema: LEDGER_SCHEMA.to_owned(),
            id: format!("dep-{n:08}"),
            app: format!("app-{app:02}"),
            environment: env.to_owned(),
            version: format!("1.{}.{}", st.0 / 100, st.0 % 100),
            commit: commit.clone(),
            commits,
            change: if hotfix { ChangeKind::Hotfix } else { ChangeKind::Planned },
            incident: (rng.pct(2) || (hotfix && rng.pct(50))).then(|| format!("INC-{}", rng.below(10_000))),
            strategy: STRATEGIES[rng.below(3) as usize].to_owned(),
            triggered_by: Some(PEOPLE[rng.below(PEOPLE.len() as u64) as usize].to_owned()),
            started_at: started,
            finished_at: finished,
            outcome,
            reason: match outcome {
                LedgerOutcome::RolledBack => Some("error rate 2.4% > 1.0% (candidate) vs 0.1% (baseline)".to_owned()),
                LedgerOutcome::Failed => Some("target group did not become healthy in 5m".to_owned()),
                LedgerOutcome::Reverted => Some("p99 latency regression after promotion".to_owned()),
                LedgerOutcome::Promoted => None,
                LedgerOutcome::Abandoned => Some("the router did not answer before the first stage".to_owned()),
            },
            unanalysed: false,
            targets: Vec::new(),
        };
        match outcome {
            LedgerOutcome::Promoted => {
                st.1 = true;
                st.2 = commit;
            }
            LedgerOutcome::Reverted => st.1 = false,
            _ => {}
        }
        line.clear();
        line.push_str(&serde_json::to_string(&entry)?);
        line.push('\n');
        w.write_all(line.as_bytes())?;
    }
    w.flush()?;
    Ok(())
}
