//! Demo pieces for running sluice on one machine: an HTTP app whose error
//! ratio and latency can be set at start or at run time (`sluice-demo-app`),
//! a paced load generator that counts answers per pool and per body
//! (`sluice-loadgen`), and a real Prometheus server started for tests
//! ([`prometheus`]). The fault-injecting proxy (`sluice-faultproxy`) is in
//! `sluice-test-support`, with the rest of the test tooling.
//!
//! Test and demo tooling only: nothing in the delivery pipeline depends on it.

pub mod app;
pub mod cli;
pub mod loadgen;
pub mod prometheus;
