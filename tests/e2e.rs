//! End-to-end tests of sluice as users meet it.
//!
//! `workflows`: the action and the shipped workflows run on a real workflow
//! engine (act, in host mode, offline) against the GitHub fake, the embedded
//! router and the demo app.
//!
//! `waves`: one environment of three targets (embedded routers standing in
//! for regions) promoted in two waves, rolled back as one.

mod waves;
mod workflows;
