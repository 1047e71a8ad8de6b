//! Test support for sluice, in one crate that is never published and that
//! nothing in the delivery pipeline depends on (only dev-dependencies and
//! the `sluice-faultproxy` test binary):
//!
//! - [`aws`]: the moto (AWS emulator) server for tests, fixtures made through
//!   the real SDK, and the AWS fault layer;
//! - [`faultproxy`]: `sluice-faultproxy`, the proxy that injects provider
//!   faults for the end-to-end tests.

pub mod aws;
pub mod faultproxy;
