//! Unit tests of shift-traffic's step logic, run in-process against a real
//! embedded router (`sluice_router::Router` on 127.0.0.1) with a file
//! ledger in a temporary folder: the plan's stages, the rule that a plan
//! never backs down, a pause and the run that continues it, and refused
//! moves that leave the record and the router as they were. Nothing is
//! spawned and nothing judged (`analysis = "none"`, stages of 20 ms): each
//! test takes a fraction of a second; what they assert does not depend on
//! timing.

use super::plan::passed_stages;
use super::{Args, run};
use crate::Outcome;
use clap::Parser;
use sluice_core::Exit;
use sluice_core::record::{EventDetail, Expect, Record, Status};
use sluice_core::router_api::StateView;

/// Where the candidate is served (nothing needs to answer there: nothing
/// is judged).
const CANDIDATE: &str = "http://127.0.0.1:10";

struct World {
    dir: tempfile::TempDir,
    router: sluice_router::Router,
}

/// A router with a stable upstream and no candidate, and a config with one
/// environment on it: a canary of 20, 50 and 100%, nothing judged.
async fn world() -> World {
    let stable = sluice_router::Upstream::parse("http://127.0.0.1:9").expect("url");
    let mut config = sluice_router::Config::new(stable);
    config.workers = 1;
    let router = sluice_router::Router::start(config).await.expect("router");
    let dir = tempfile::tempdir().expect("tempdir");
    let config = format!(
        "app = \"shop\"\n[ledger]\nkind = \"file\"\npath = \"ledger.jsonl\"\n\
         [defaults]\nstrategy = {{ kind = \"canary\", stages = [20, 50, 100], stage_duration = \"20ms\" }}\n\
         analysis = \"none\"\npause_timeout = \"1h\"\nlease_timeout = \"1h\"\n\
         [[environment]]\nname = \"dev\"\nrouter = {{ kind = \"local\", admin_url = \"http://{}\" }}\n",
        router.admin_addr()
    );
    std::fs::write(dir.path().join("sluice.toml"), config).expect("config");
    World { dir, router }
}

impl World {
    /// A step's command line: its name, the environment, config and record, then `extra`.
    fn args(&self, step: &str, extra: &[&str]) -> Vec<String> {
        let config = self.dir.path().join("sluice.toml");
        let record = self.dir.path().join("r.json");
        let mut args: Vec<String> = vec![step.into(), "-e".into(), "dev".into()];
        args.extend(["--config".into(), config.display().to_string()]);
        args.extend(["--record".into(), record.display().to_string()]);
        args.extend(extra.iter().map(|a| a.to_string()));
        args
    }

    async fn gate(&self) {
        let args = self.args("gate", &["--release", "v2", "--candidate-upstream", CANDIDATE]);
        let outcome = crate::gate::run(crate::gate::Args::parse_from(args)).await.expect("gate runs");
        assert_eq!(outcome.exit, Exit::OK, "gate: {}", outcome.decision());
    }

    async fn shift(&self, extra: &[&str]) -> Outcome {
        match run(Args::parse_from(self.args("shift-traffic", extra))).await {
            Ok(outcome) => outcome,
            Err(failure) => panic!("shift-traffic {extra:?} failed (exit {:?}): {:#}", failure.exit, failure.error),
        }
    }

    fn record(&self) -> Record {
        Record::load(&self.dir.path().join("r.json"), &Expect::default()).expect("the record loads")
    }

    /// The record's and the ledger's bytes, and the router's state.
    fn everything(&self) -> (Vec<u8>, Vec<u8>, StateView) {
        let read = |name: &str| std::fs::read(self.dir.path().join(name)).unwrap_or_default();
        (read("r.json"), read("ledger.jsonl"), self.router.control().state())
    }
}

/// The record's traffic events: (from, to, stage).
fn traffic(record: &Record) -> Vec<(u8, u8, Option<usize>)> {
    record
        .events
        .iter()
        .filter_map(|e| match e.detail {
            EventDetail::Traffic { from, to, stage } => Some((from, to, stage)),
            _ => None,
        })
        .collect()
}

fn candidate(state: &StateView) -> Option<&str> {
    state.candidate.as_ref().map(|pool| pool.upstream.as_str())
}

#[tokio::test]
async fn a_plan_without_analysis_sets_every_stage_and_ends_verified_at_100() {
    let w = world().await;
    w.gate().await;
    let outcome = w.shift(&[]).await;
    assert_eq!((outcome.exit, outcome.decision()), (Exit::OK, "pass"));
    let record = w.record();
    assert_eq!(record.status(), Status::Verified);
    assert_eq!(traffic(&record), [(0, 20, Some(0)), (20, 50, Some(1)), (50, 100, Some(2))]);
    assert_eq!(record.candidate_weight, 100);
    assert_eq!(record.candidate.as_deref(), Some(CANDIDATE));
    assert!(record.router_before.as_ref().is_some_and(|before| before.candidate_weight == 0));
    assert!(
        !record.events.iter().any(|e| matches!(e.detail, EventDetail::Verdict { .. })),
        "analysis = \"none\" judges nothing"
    );
    let state = w.router.control().state();
    assert_eq!((state.candidate_weight, candidate(&state)), (100, Some(CANDIDATE)));
}

#[tokio::test]
async fn a_plan_after_a_weight_set_by_hand_goes_on_from_there_and_never_backs_down() {
    let w = world().await;
    w.gate().await;
    let outcome = w.shift(&["--weight", "60"]).await;
    assert_eq!((outcome.exit, outcome.decision()), (Exit::OK, "shifted"));
    assert_eq!(w.record().status(), Status::Shifting);
    assert_eq!(w.router.control().state().candidate_weight, 60);

    let outcome = w.shift(&[]).await;
    assert_eq!((outcome.exit, outcome.decision()), (Exit::OK, "pass"));
    let record = w.record();
    // The stages at 20 and 50% are skipped: the candidate already took 60%.
    assert_eq!(traffic(&record), [(0, 60, None), (60, 100, Some(2))]);
    assert_eq!(record.status(), Status::Verified);
    assert_eq!(w.router.control().state().candidate_weight, 100);
}

#[tokio::test]
async fn a_paused_plan_continues_after_the_stage_it_paused_at() {
    let w = world().await;
    w.gate().await;
    let outcome = w.shift(&["--pause-at", "50"]).await;
    assert_eq!((outcome.exit, outcome.decision()), (Exit::OK, "paused"));
    let record = w.record();
    assert_eq!(record.status(), Status::Paused);
    assert_eq!(traffic(&record), [(0, 20, Some(0)), (20, 50, Some(1))]);
    assert_eq!(passed_stages(&record), [1]);
    assert_eq!(w.router.control().state().candidate_weight, 50);

    // Pausing again at a stage already passed is bad input, checked before anything moves.
    let before = w.everything();
    let err = run(Args::parse_from(w.args("shift-traffic", &["--pause-at", "20"]))).await.expect_err("refused");
    assert_eq!(err.exit, Exit::BAD_INPUT);
    assert!(format!("{:#}", err.error).contains("already past stage"), "{:#}", err.error);
    assert!(w.everything() == before, "a refused --pause-at changed the record, the ledger or the router");

    let outcome = w.shift(&[]).await;
    assert_eq!((outcome.exit, outcome.decision()), (Exit::OK, "pass"));
    let record = w.record();
    assert_eq!(traffic(&record), [(0, 20, Some(0)), (20, 50, Some(1)), (50, 100, Some(2))]);
    assert_eq!(record.status(), Status::Verified);
}

#[tokio::test]
async fn a_refused_move_leaves_the_record_and_the_router_as_they_were() {
    // Promoted: the deployment has ended, nothing may move its traffic.
    let w = world().await;
    w.gate().await;
    assert_eq!(w.shift(&[]).await.exit, Exit::OK);
    let promote = crate::promote::run(crate::promote::Args::parse_from(w.args("promote", &[]))).await;
    assert_eq!(promote.expect("promote runs").exit, Exit::OK);
    assert_eq!(w.record().status(), Status::Promoted);
    let state = w.router.control().state();
    assert_eq!((state.candidate_weight, state.stable.upstream.as_str()), (0, CANDIDATE));
    let before = w.everything();
    for extra in [&[][..], &["--weight", "30"], &["--weight", "0"], &["--candidate-upstream", "http://127.0.0.1:11"]] {
        let outcome = w.shift(extra).await;
        assert_eq!((outcome.exit, outcome.decision()), (Exit::DECLINED, "refused"), "{extra:?}");
        assert!(w.everything() == before, "a refused shift-traffic {extra:?} changed something");
    }

    // Rolled back: the same.
    let w = world().await;
    w.gate().await;
    assert_eq!(w.shift(&["--weight", "30"]).await.exit, Exit::OK);
    let rollback = crate::rollback::run(crate::rollback::Args::parse_from(w.args("rollback", &["--reason", "test"])));
    assert_eq!(rollback.await.expect("rollback runs").exit, Exit::OK);
    assert_eq!(w.record().status(), Status::RolledBack);
    assert_eq!(w.router.control().state().candidate_weight, 0);
    let before = w.everything();
    for extra in [&[][..], &["--weight", "50"]] {
        let outcome = w.shift(extra).await;
        assert_eq!((outcome.exit, outcome.decision()), (Exit::DECLINED, "refused"), "{extra:?}");
        assert!(w.everything() == before, "a refused shift-traffic {extra:?} changed something");
    }
}
