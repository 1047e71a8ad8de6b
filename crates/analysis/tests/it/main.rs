//! Integration tests of `sluice-analysis` through its public API only.

mod canaries;
mod report;
mod simulation;
