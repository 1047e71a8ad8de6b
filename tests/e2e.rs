//! End-to-end tests of sluice as users meet it.
//!
//! `workflows`: the action and the shipped workflows run on a real workflow
//! engine (act, in host mode, offline) against the GitHub fake, the embedded
//! router and the demo app.
//!
//! `docs`: every example in README.md and docs/ is loaded by what would
//! read it (the config loader and its JSON Schema, actionlint, zizmor).

mod docs;
mod workflows;
