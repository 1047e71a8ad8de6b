//! Integration tests: a real router in-process (and once as a binary) in front
//! of tiny real HTTP upstreams on 127.0.0.1.

mod support;

mod admin;
mod binary;
mod proxy;
