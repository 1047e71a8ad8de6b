//! What the demo binaries share at the process edge: exit codes from
//! sluice's one table (`sluice_core::Exit`), and the words for a socket or a
//! file they could not use.
//!
//! Only the binaries' `main` functions use it (these, and
//! `sluice-faultproxy` in sluice-test-support); it never decides anything
//! about requests.

use std::io::ErrorKind;
use std::path::Path;
use std::process::ExitCode;

use sluice_core::{Exit, Failure};
use sluice_router::serve::BindError;

/// The exit codes every demo binary documents in its `--help`.
pub const EXIT_CODES: &str = "\
Exit codes (sluice's one table):
  0  done, or stopped by SIGTERM or SIGINT
  2  bad input: a flag, an address that cannot be used (a port another
     process listens on, an address this host does not have), or a file
     that cannot be written
  3  the system refused what the program needs (threads, the async runtime,
     file descriptors)";

/// Prints the failure as `<binary>: error: ...` and gives its exit code.
pub fn exit(binary: &str, result: Result<(), Failure>) -> ExitCode {
    match result {
        Ok(()) => Exit::OK.into(),
        Err(failure) => {
            eprintln!("{binary}: error: {:#}", failure.error);
            failure.exit.into()
        }
    }
}

/// A socket given with `flag` could not be bound: bad input when the
/// address is the reason (in use, not this host's, a privileged port),
/// the system's failure otherwise.
pub fn bind_failure(err: BindError, flag: &str) -> Failure {
    let hint = match err.source.kind() {
        ErrorKind::AddrInUse => {
            format!(
                "another process listens on {}: stop it, or choose another port with {flag} (0 picks one)",
                err.addr
            )
        }
        ErrorKind::AddrNotAvailable => format!("check {flag}: {} is not an address of this host", err.addr.ip()),
        ErrorKind::PermissionDenied => {
            format!("check {flag}: ports below 1024 need privileges (CAP_NET_BIND_SERVICE)")
        }
        ErrorKind::InvalidInput => format!("check {flag}"),
        _ => return Failure::provider(err),
    };
    Failure::input(with_hint(err, &hint))
}

/// `error: cause` on one line, what to do on the next.
fn with_hint(err: impl std::error::Error + Send + Sync + 'static, hint: &str) -> anyhow::Error {
    anyhow::anyhow!("{:#}\n  {hint}", anyhow::Error::new(err))
}

/// A file given with `flag` could not be written.
pub fn write_failure(err: std::io::Error, path: &Path, flag: &str) -> Failure {
    let what = anyhow::Error::new(err).context(format!("failed to write {}", path.display()));
    Failure::input(anyhow::anyhow!("{what:#}\n  check {flag}: its directory must exist and be writable"))
}

/// The async runtime could not be started.
pub fn runtime_failure(err: std::io::Error) -> Failure {
    Failure::provider(anyhow::Error::new(err).context("failed to start the async runtime"))
}
