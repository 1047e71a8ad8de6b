//! Integration tests of sluice-providers against real parts: the AWS
//! providers against moto (with a fault layer where moto cannot act).

mod alb;
mod codedeploy;
