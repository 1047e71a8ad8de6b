//! Gate checks that need no provider: freeze windows, security findings in a
//! SARIF report, and line coverage from lcov or Cobertura.
//!
//! Pure judgment like the rest of this crate: callers read the files and
//! resolve the time zones; these modules parse text and decide. The step
//! (`gate`) turns each result into a gate check with its evidence.

pub mod coverage;
pub mod freeze;
pub mod sarif;
