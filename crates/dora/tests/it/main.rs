//! Integration tests of sluice-dora: hand-computed reports, properties,
//! reading, rendering.

mod chart;
mod common;
mod hand;
mod props;
mod read;
mod render;
mod targets;
