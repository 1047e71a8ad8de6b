//! The lifecycle as the steps live it: random sequences of steps (gate,
//! shift-traffic by plan, by one weight and up to a pause, verify-health,
//! promote, rollback, rollback --live), some cut short at a random moment
//! as a kill would (the step's future is dropped at an await point; saves are
//! atomic), some run again, against a real embedded router in-process.
//!
//! After every step the record must load, and its status must have moved
//! only by the moves the lifecycle table gives that step (several in one run
//! are fine: shift-traffic goes admitted → shifting → verified). Deployments
//! that ended never moved traffic they do not account for: an abandoned one
//! has no traffic event; a promoted one says on what evidence.

use clap::Parser;
use proptest::prelude::*;
use sluice_core::lifecycle::{Status, Step, moves};
use sluice_core::record::{EventDetail, Expect, Record};
use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

#[derive(Clone, Debug)]
enum Op {
    /// Gate a release into a new record (`true`) or the current one.
    Gate {
        fresh: bool,
        release: u8,
    },
    Plan,
    Weight(u8),
    PauseAt,
    Verify,
    Promote,
    Rollback,
    RollbackLive,
}

fn op() -> impl Strategy<Value = (Op, Option<u64>)> {
    let op = prop_oneof![
        3 => (any::<bool>(), 2u8..4).prop_map(|(fresh, release)| Op::Gate { fresh, release }),
        3 => Just(Op::Plan),
        1 => prop_oneof![Just(0u8), Just(30), Just(100)].prop_map(Op::Weight),
        1 => Just(Op::PauseAt),
        2 => Just(Op::Verify),
        2 => Just(Op::Promote),
        2 => Just(Op::Rollback),
        1 => Just(Op::RollbackLive),
    ];
    // One step in four is killed after 0-120 ms.
    (op, prop_oneof![3 => Just(None), 1 => (0u64..120).prop_map(Some)])
}

/// The statuses `step` may lead to from `from` in one run: its moves, and
/// their moves again.
fn reachable(step: Step, from: Option<Status>) -> BTreeSet<&'static str> {
    let mut seen = BTreeSet::new();
    let mut todo: Vec<Status> = moves(step, from).to_vec();
    while let Some(s) = todo.pop() {
        if seen.insert(s.as_str()) {
            todo.extend_from_slice(moves(step, Some(s)));
        }
    }
    seen
}

struct World {
    dir: tempfile::TempDir,
    _router: sluice_router::Router,
    record: usize,
}

impl World {
    fn path(&self) -> String {
        self.dir.path().join(format!("r{}.json", self.record)).display().to_string()
    }

    fn load(&self) -> Option<Record> {
        let path = self.path();
        if !Path::new(&path).exists() {
            return None;
        }
        Some(Record::load(Path::new(&path), &Expect::default()).unwrap_or_else(|e| panic!("record does not load: {e}")))
    }
}

async fn world() -> World {
    let stable = sluice_router::Upstream::parse("http://127.0.0.1:9").expect("url");
    let mut config = sluice_router::Config::new(stable);
    config.workers = 1;
    let router = sluice_router::Router::start(config).await.expect("router");
    let dir = tempfile::tempdir().expect("tempdir");
    let config = format!(
        "app = \"shop\"\n[ledger]\nkind = \"file\"\npath = \"ledger.jsonl\"\n[analysis]\ninterval = \"100ms\"\n\
         [defaults]\nstrategy = {{ kind = \"canary\", stages = [20, 50, 100], stage_duration = \"100ms\" }}\n\
         analysis = \"none\"\npause_timeout = \"1h\"\nlease_timeout = \"1h\"\n\
         [[environment]]\nname = \"dev\"\nrouter = {{ kind = \"local\", admin_url = \"http://{}\" }}\n",
        router.admin_addr()
    );
    std::fs::write(dir.path().join("sluice.toml"), config).expect("config");
    World { dir, _router: router, record: 0 }
}

/// Runs one step in-process; its exit code does not matter here, only where
/// it leaves the record.
async fn run(w: &World, op: &Op) {
    let config = w.dir.path().join("sluice.toml").display().to_string();
    let record = w.path();
    let mut args: Vec<String> = vec![String::new(), "-e".into(), "dev".into(), "--config".into(), config];
    if !matches!(op, Op::RollbackLive) {
        args.extend(["--record".into(), record]);
    }
    let extra: Vec<String> = match op {
        Op::Gate { release, .. } => {
            vec!["--release".into(), format!("v{release}"), "--candidate-upstream".into(), "http://127.0.0.1:10".into()]
        }
        Op::Weight(weight) => vec!["--weight".into(), weight.to_string()],
        Op::PauseAt => vec!["--pause-at".into(), "50".into()],
        Op::Verify => vec!["--duration".into(), "200ms".into()],
        Op::Rollback => vec!["--reason".into(), "property test".into()],
        Op::RollbackLive => vec!["--live".into()],
        Op::Plan | Op::Promote => vec![],
    };
    args.extend(extra);
    args[0] = step_of(op).name().to_owned();
    let result = match op {
        Op::Gate { .. } => sluice_cli::gate::run(sluice_cli::gate::Args::parse_from(args)).await,
        Op::Plan | Op::Weight(_) | Op::PauseAt => {
            sluice_cli::shift_traffic::run(sluice_cli::shift_traffic::Args::parse_from(args)).await
        }
        Op::Verify => sluice_cli::verify_health::run(sluice_cli::verify_health::Args::parse_from(args)).await,
        Op::Promote => sluice_cli::promote::run(sluice_cli::promote::Args::parse_from(args)).await,
        Op::Rollback | Op::RollbackLive => {
            sluice_cli::rollback::run(sluice_cli::rollback::Args::parse_from(args)).await
        }
    };
    if std::env::var_os("SLUICE_TEST_VERBOSE").is_some() {
        eprintln!("{op:?}: {:?}", result.as_ref().map(|o| (o.exit, o.decision().to_owned())));
    }
}

fn step_of(op: &Op) -> Step {
    match op {
        Op::Gate { .. } => Step::Gate,
        Op::Plan | Op::Weight(_) | Op::PauseAt => Step::ShiftTraffic,
        Op::Verify => Step::VerifyHealth,
        Op::Promote => Step::Promote,
        Op::Rollback | Op::RollbackLive => Step::Rollback,
    }
}

/// Runs `ops` on a fresh router and record folder, checking every step's
/// move against the table; returns the statuses reached.
fn check(ops: &[(Op, Option<u64>)]) -> BTreeSet<&'static str> {
    let mut reached = BTreeSet::new();
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    runtime.block_on(async {
        let mut w = world().await;
        let mut history = Vec::new();
        for (op, kill) in ops {
            if let Op::Gate { fresh: true, .. } = op {
                // A new deployment; the one before may still hold the
                // environment (then this one waits).
                w.record += 1;
            }
            let before = w.load().map(|r| r.status());
            let step = step_of(op);
            match kill {
                Some(ms) => {
                    let _ = tokio::time::timeout(Duration::from_millis(*ms), run(&w, op)).await;
                }
                None => run(&w, op).await,
            }
            let after = w.load();
            history.push(format!("{op:?} kill {kill:?}: {before:?} -> {:?}", after.as_ref().map(|r| r.status())));
            if std::env::var_os("SLUICE_TEST_VERBOSE").is_some() {
                eprintln!("  {}", history.last().map(String::as_str).unwrap_or_default());
            }
            let Some(after) = after else {
                assert!(before.is_none(), "{history:#?}: the record vanished");
                continue;
            };
            reached.insert(after.status().as_str());
            if Some(after.status()) != before {
                assert!(
                    reachable(step, before).contains(after.status().as_str()),
                    "{step} moved {before:?} to {} outside the table: {history:#?}",
                    after.status()
                );
            }
            let traffic = after.events.iter().any(|e| matches!(e.detail, EventDetail::Traffic { .. }));
            if after.status() == Status::Abandoned {
                assert!(!traffic, "an abandoned deployment moved traffic: {history:#?}");
            }
            if after.status() == Status::Promoted {
                assert!(
                    after.events.iter().any(|e| matches!(e.detail, EventDetail::Promote { unanalysed: true, .. })),
                    "promoted without saying on what evidence: {history:#?}"
                );
            }
        }
    });
    reached
}

#[test]
fn scripted_sequences_reach_every_status_by_the_table() {
    let _turn = crate::support::shared();
    use Op::*;
    let gate = |fresh| (Gate { fresh, release: 2 }, None);
    let scripts: [&[(Op, Option<u64>)]; 4] = [
        // admitted, shifting, verified, promoted; then a gate on the ended
        // record is refused.
        &[gate(false), (Weight(30), None), (Plan, None), (Promote, None), gate(false)],
        // paused, then rolled back; a second rollback only confirms.
        &[gate(false), (PauseAt, None), (Rollback, None), (Rollback, None)],
        // One holds the environment, the next waits and is given up
        // (abandoned); shifting it then is refused.
        &[gate(false), gate(true), (Rollback, None), (Plan, None)],
        // Given up before it moved (abandoned), the next is admitted and
        // promoted after an (unanalysed) verify-health.
        &[gate(false), (Rollback, None), gate(true), (Plan, None), (Verify, None), (Promote, None)],
    ];
    let mut reached = BTreeSet::new();
    for script in scripts {
        reached.extend(check(script));
    }
    for status in ["admitted", "waiting", "shifting", "paused", "verified", "promoted", "rolled_back", "abandoned"] {
        assert!(reached.contains(status), "no script reached {status}: {reached:?}");
    }
}

#[test]
fn random_steps_with_kills_and_reruns_move_only_by_the_table() {
    let _turn = crate::support::shared();
    let config =
        ProptestConfig { cases: 24, max_shrink_iters: 0, failure_persistence: None, ..ProptestConfig::default() };
    let mut runner = proptest::test_runner::TestRunner::new(config);
    let reached = std::cell::RefCell::new(BTreeSet::new());
    let result = runner.run(&prop::collection::vec(op(), 4..14), |ops| {
        reached.borrow_mut().extend(check(&ops));
        Ok(())
    });
    if let Err(e) = result {
        panic!("{e}");
    }
    eprintln!("statuses reached by random sequences: {:?}", reached.into_inner());
}
