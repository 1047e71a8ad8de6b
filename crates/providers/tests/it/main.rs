//! Integration tests of sluice-providers against real local parts: the
//! GitHub client and ledger against the local GitHub fake.

mod github;
