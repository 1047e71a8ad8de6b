//! Integration tests of `sluice-analysis` through its public API only.

mod report;
mod simulation;
