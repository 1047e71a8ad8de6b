//! Integration tests of the providers against real servers on 127.0.0.1:
//! Prometheus, and the AWS providers against moto (with a fault layer where
//! moto cannot act).

mod alb;
mod cloudwatch;
mod codedeploy;
mod prometheus;
mod support;
