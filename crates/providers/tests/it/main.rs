//! Integration tests of sluice-providers against real local parts on
//! 127.0.0.1: a real Prometheus, the AWS providers against moto (with a fault
//! layer where moto cannot act), and the GitHub client and ledger against the
//! local GitHub fake.

mod alb;
mod cloudwatch;
mod codedeploy;
mod github;
mod prometheus;
mod support;
