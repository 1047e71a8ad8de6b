//! Integration tests of sluice-providers against real local parts: a real
//! Prometheus on 127.0.0.1, and the GitHub client and ledger against the local
//! GitHub fake.

mod github;
mod prometheus;
mod support;
