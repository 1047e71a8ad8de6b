//! Exit codes: one table for every binary, documented in the README.
//!
//! | code | meaning |
//! |---|---|
//! | 0 | done / passed |
//! | 1 | a decision said no: gate blocked, health failed or inconclusive, a canary rolled back |
//! | 2 | bad input: flags, config or record; nothing was changed |
//! | 3 | a provider (router, metrics, ledger, AWS, GitHub) failed after retries |
//! | 130, 143 | cancelled by SIGINT or SIGTERM: stopped at a consistent point, recorded where traffic stands |

use std::fmt;

/// A process exit status with a documented meaning.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Exit(u8);

impl Exit {
    /// Done, or the decision was yes.
    pub const OK: Exit = Exit(0);
    /// A decision said no: gate blocked, health failed, a canary rolled back.
    pub const DECLINED: Exit = Exit(1);
    /// Bad input (flags, config, record); nothing was changed.
    pub const BAD_INPUT: Exit = Exit(2);
    /// A provider failed after retries.
    pub const PROVIDER: Exit = Exit(3);
    /// Cancelled by SIGINT (128 + 2), as a shell reports it.
    pub const INTERRUPTED: Exit = Exit(130);
    /// Cancelled by SIGTERM (128 + 15).
    pub const TERMINATED: Exit = Exit(143);

    pub fn code(self) -> u8 {
        self.0
    }
}

impl From<Exit> for std::process::ExitCode {
    fn from(exit: Exit) -> Self {
        std::process::ExitCode::from(exit.0)
    }
}

/// An error on its way to the process edge, with the exit code it maps to.
///
/// Library errors are plain `thiserror` types; the step that calls them
/// decides what class of failure they are with [`Classify`].
pub struct Failure {
    pub exit: Exit,
    pub error: anyhow::Error,
}

impl Failure {
    pub fn input(error: impl Into<anyhow::Error>) -> Self {
        Self { exit: Exit::BAD_INPUT, error: error.into() }
    }

    pub fn provider(error: impl Into<anyhow::Error>) -> Self {
        Self { exit: Exit::PROVIDER, error: error.into() }
    }
}

impl fmt::Debug for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "exit {}: {:#}", self.exit.0, self.error)
    }
}

/// Says what class of failure an error is, at the call site that knows.
pub trait Classify<T> {
    /// The error is the user's input (flags, config, record): exit 2.
    fn bad_input(self) -> Result<T, Failure>;
    /// The error is a provider's (router, metrics, ledger, cloud): exit 3.
    fn provider_failed(self) -> Result<T, Failure>;
}

impl<T, E: Into<anyhow::Error>> Classify<T> for Result<T, E> {
    fn bad_input(self) -> Result<T, Failure> {
        self.map_err(Failure::input)
    }

    fn provider_failed(self) -> Result<T, Failure> {
        self.map_err(Failure::provider)
    }
}
