//! End-to-end tests of sluice as users meet it.
//!
//! One test binary: the real binaries (found in the target directory, built
//! by `cargo build --workspace --bins`) against real routers, the demo app,
//! moto, Prometheus and the GitHub fake. Its tests run in parallel threads
//! of one process; `support` says what that asks of a test. One module per
//! area:
//!
//! - `pipeline`: the steps against the embedded router and demo apps
//!   (gates, notifications, Prometheus checks).
//! - `verdicts`: built-in checks, evidence counts, sample-ratio errors.
//! - `aws`: ALB, CloudWatch and CodeDeploy on moto; `aws_builtin`: their
//!   built-in checks when the config names none.
//! - `github`, `dora_github`: the GitHub ledger and environments, and
//!   `dora-report` reading GitHub, on the GitHub fake.
//! - `faults`: providers that fail, throttle, stall and drop connections.
//! - `crash`, `ledger_crash`: steps and ledger appends killed mid-way.
//! - `lease`: one promotion per environment at a time.
//! - `hostile`: hostile input exits 2 and changes nothing.
//! - `lifecycle`: random step sequences, in-process, against the lifecycle
//!   table.
//! - `waves`: one environment of several targets (embedded routers standing
//!   in for regions, ALBs on moto) promoted in waves, rolled back as one.
//!
//! `workflows`: the action and the shipped workflows run on a real workflow
//! engine (act, in host mode, offline) against the GitHub fake, the embedded
//! router and the demo app.
//!
//! `status_view`: snapshots of `sluice status` on the embedded router, an ALB
//! (moto) and the GitHub ledger (the fake).
//!
//! `docs`: every example in README.md and docs/ is loaded by what would
//! read it (the config loader and its JSON Schema, actionlint, zizmor).

mod docs;
mod workflows;

mod support;

mod aws;
mod aws_builtin;
mod crash;
mod dora_github;
mod faults;
mod github;
mod hostile;
mod lease;
mod ledger_crash;
mod lifecycle;
mod pipeline;
mod status_view;
mod verdicts;
mod waves;
