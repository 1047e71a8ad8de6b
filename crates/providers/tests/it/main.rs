//! Integration tests of the providers against real servers on 127.0.0.1.

mod prometheus;
mod support;
