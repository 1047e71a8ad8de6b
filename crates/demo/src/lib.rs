//! Demo pieces for running sluice on one machine: an HTTP app whose error
//! ratio and latency can be set at start or at run time (`sluice-demo-app`),
//! a paced load generator that counts answers per pool and per body
//! (`sluice-loadgen`), a proxy that injects provider faults for the tests
//! (`sluice-faultproxy`), and a real Prometheus server started for tests
//! ([`prometheus`]).
//!
//! Test and demo tooling only: nothing in the delivery pipeline depends on it.

pub mod app;
mod cli;
pub mod faultproxy;
pub mod loadgen;
pub mod prometheus;
