//! Faulty AWS: `sluice-faultproxy` between the steps and moto answers 500s,
//! AWS throttling errors, slow answers and dropped connections at set rates
//! while canaries run on an ALB. The listener's weights are read straight
//! from moto, past the proxy, so the test sees what the steps could not.

use crate::support::aws::{AlbWorld, aws_command};
use crate::support::{code, exe, ready, stderr};
use sluice_core::record::{EventDetail, Expect, Record, Status};
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// One ALB in moto's default account as environment dev's router, reached
/// by the steps through `sluice-faultproxy` only.
struct Env {
    world: AlbWorld,
    /// The proxy's URL.
    proxy: String,
    children: Vec<Child>,
}

impl Drop for Env {
    fn drop(&mut self) {
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Env {
    async fn start() -> Option<Env> {
        let world = AlbWorld::start().await?;
        let ready_file = world.path("proxy.json");
        let mut child = Command::new(exe("sluice-faultproxy"))
            .args(["--listen", "127.0.0.1:0", "--upstream", &world.moto.endpoint, "--throttle", "aws-query"])
            .args(["--slow", "1s", "--seed", "11", "--ready-file"])
            .arg(&ready_file)
            .stdout(Stdio::null())
            .spawn()
            .expect("spawn sluice-faultproxy");
        let v = ready(&ready_file, &mut child);
        let proxy = format!("http://{}", v["listen"].as_str().expect("listen"));
        world.write_config(&format!(
            "app = \"shop\"\n[ledger]\nkind = \"file\"\npath = \"ledger.jsonl\"\n\
             [defaults]\nstrategy = {{ kind = \"canary\", stages = [20, 100], stage_duration = \"500ms\" }}\nanalysis = \"none\"\n\
             [[environment]]\nname = \"dev\"\nrouter = {}\n",
            world.router()
        ));
        Some(Env { world, proxy, children: vec![child] })
    }

    fn command(&self, name: &str, record: &str, args: &[&str]) -> Command {
        let mut cmd = aws_command(self.world.dir.path(), &self.proxy, name);
        cmd.args(["--config", "sluice.toml", "-e", "dev", "--record", record]).args(args);
        cmd
    }

    fn step(&self, name: &str, record: &str, args: &[&str]) -> Output {
        self.command(name, record, args).output().expect("step runs")
    }

    fn path(&self, name: &str) -> PathBuf {
        self.world.path(name)
    }

    fn faults(&self, rates: &str) {
        super::set_faults(&self.proxy, rates);
    }

    /// The candidate's share of the listener as moto has it, in percent.
    async fn candidate_percent(&self) -> i64 {
        let weights = self.world.weights().await;
        let total: i64 = weights.iter().map(|(_, w)| i64::from(*w)).sum();
        let green: i64 =
            weights.iter().filter(|(arn, _)| *arn == self.world.fx.green).map(|(_, w)| i64::from(*w)).sum();
        assert!(total > 0, "no weight on the listener: {weights:?}");
        green * 100 / total
    }
}

fn last_error(record: &Record) -> Option<&str> {
    match record.events.last().map(|e| &e.detail) {
        Some(EventDetail::Error { message }) => Some(message),
        _ => None,
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn canaries_on_a_flaky_aws_api_end_completed_or_rolled_back() {
    let Some(env) = Env::start().await else { return };
    // A third of all calls go wrong; the SDK's standard retries absorb most.
    let flaky = r#"{"error_rate":0.1,"throttle_rate":0.1,"slow_rate":0.05,"drop_rate":0.1}"#;
    let mut exits = std::collections::BTreeMap::<i32, u32>::new();
    for run in 0..8 {
        let rec = format!("aws{run}.json");
        env.faults("{}");
        let gate = env.step("gate", &rec, &["--release", "v2", "--commit", "abcdef1"]);
        assert_eq!(code(&gate), 0, "run {run}: gate: {}", stderr(&gate));
        env.faults(flaky);
        let shift = env.step("shift-traffic", &rec, &[]);
        let exit = code(&shift);
        *exits.entry(exit).or_default() += 1;
        env.faults("{}");
        let record = Record::load(&env.path(&rec), &Expect::default()).expect("the record parses after every run");
        let percent = env.candidate_percent().await;
        let what = format!("run {run}: exit {exit}, status {:?}, listener at {percent}%", record.status());
        match exit {
            0 => {
                assert_eq!(record.status(), Status::Verified, "{what}");
                assert_eq!(percent, 100, "{what}");
            }
            3 => match (record.status(), last_error(&record)) {
                (Status::RolledBack, _) => assert_eq!(percent, 0, "{what}"),
                // The canary could not start: nothing moved, the
                // environment is given back.
                (Status::Abandoned, _) => {
                    assert_eq!(percent, 0, "{what}");
                    assert!(
                        !record.events.iter().any(|e| matches!(e.detail, EventDetail::Traffic { .. })),
                        "{what}: abandoned after moving traffic"
                    );
                }
                (_, Some(message)) if message.contains("no traffic was moved") => assert_eq!(percent, 0, "{what}"),
                (_, Some(message)) => {
                    assert!(message.contains("run `rollback`"), "{what}: {message}");
                    assert_eq!(percent, i64::from(record.candidate_weight), "{what}: the record says where traffic is");
                }
                (_, None) => panic!("{what}: exit 3 without an error event: {}", stderr(&shift)),
            },
            _ => panic!("{what}: {}", stderr(&shift)),
        }
        // Back to stable for the next run, through a healthy proxy.
        let rollback = env.step("rollback", &rec, &["--reason", "next run"]);
        assert_eq!(code(&rollback), 0, "{what}: rollback: {}", stderr(&rollback));
        assert_eq!(env.candidate_percent().await, 0, "{what}: after rollback");
    }
    let (report, injected) = super::fault_report(&env.proxy);
    eprintln!("aws faults: exits {exits:?}; proxy {report}");
    assert!(injected >= 8, "too few faults were injected to mean anything: {report}");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_aws_api_that_stays_down_exits_3_and_the_record_says_where_traffic_stands() {
    let Some(mut env) = Env::start().await else { return };
    // Long stages, so the first one is still running when AWS goes down.
    let config = std::fs::read_to_string(env.path("sluice.toml")).expect("config");
    std::fs::write(env.path("sluice.toml"), config.replace("stage_duration = \"500ms\"", "stage_duration = \"5s\""))
        .expect("config");
    let gate = env.step("gate", "down.json", &["--release", "v2", "--commit", "abcdef1"]);
    assert_eq!(code(&gate), 0, "{}", stderr(&gate));
    let child = env.command("shift-traffic", "down.json", &[]).stdout(Stdio::null()).spawn().expect("spawn");
    env.children.push(child);
    let deadline = Instant::now() + Duration::from_secs(30);
    while env.candidate_percent().await != 20 {
        assert!(Instant::now() < deadline, "the canary never reached its first stage");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    env.faults(r#"{"error_rate":1}"#);
    let down = Instant::now();
    let mut child = env.children.pop().expect("child");
    let status = child.wait().expect("wait");
    eprintln!("aws stays down: shift-traffic exited {:?} {:?} after AWS went down", status.code(), down.elapsed());
    assert_eq!(status.code(), Some(3), "a provider that stayed down is exit 3");
    let record = Record::load(&env.path("down.json"), &Expect::default()).expect("record loads");
    assert_eq!(record.status(), Status::Shifting, "nothing could be changed, so the record must not claim a rollback");
    assert_eq!(record.candidate_weight, 20);
    assert_eq!(env.candidate_percent().await, 20, "the listener is where the record says");
    let message = last_error(&record).expect("an error event ends the record");
    assert!(message.contains("the rollback failed too"), "{message}");
    assert!(message.contains("20% on the candidate"), "{message}");
    // AWS answers again: rollback restores stable.
    env.faults("{}");
    let rollback = env.step("rollback", "down.json", &["--reason", "aws back"]);
    assert_eq!(code(&rollback), 0, "{}", stderr(&rollback));
    assert_eq!(env.candidate_percent().await, 0);
}
