//! How a provider call fails: [`ProviderError`], and [`error_chain`], the
//! one way an underlying error (reqwest, hyper, the AWS SDK, octocrab) is put
//! into its message.
//!
//! Every provider reports through these, so an operator reads the same shape
//! whatever failed: `<provider> failed to <operation>: <what went wrong>`.
//! Nothing here decides whether to retry (that is [`crate::retry`] and the
//! SDKs' own retry layers, reading [`ProviderError::transient`]), and nothing
//! here may put a secret into a message: callers scrub URLs and tokens
//! before or after, as `notify` and `github` do.

use std::fmt;

/// A provider call that failed (after retries, when it was retryable).
#[derive(Debug, thiserror::Error)]
pub struct ProviderError {
    /// `local router`, `probe`, `ledger`, ...
    pub provider: &'static str,
    /// What was being done: `set weight to 25`.
    pub operation: String,
    /// What went wrong, with the provider's own words.
    pub message: String,
    /// Worth trying again.
    pub transient: bool,
    /// Attempts made.
    pub attempts: u32,
}

impl fmt::Display for ProviderError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} failed to {}: {}", self.provider, self.operation, self.message)?;
        if self.attempts > 1 {
            write!(f, " (after {} attempts)", self.attempts)?;
        }
        Ok(())
    }
}

/// An error with its sources, on one line: `outer: inner: root`. A source
/// whose words the text already holds is left out (HTTP clients often repeat
/// their cause in their own message).
pub fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(s) = source {
        let next = s.to_string();
        if !text.contains(&next) {
            text.push_str(": ");
            text.push_str(&next);
        }
        source = s.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("{text}")]
    struct Layer {
        text: &'static str,
        #[source]
        source: Option<Box<Layer>>,
    }

    fn layers(texts: &[&'static str]) -> Layer {
        texts.iter().rev().fold(None, |source, text| Some(Layer { text, source: source.map(Box::new) })).expect("one")
    }

    #[test]
    fn sources_are_joined_and_repeats_left_out() {
        assert_eq!(error_chain(&layers(&["send failed", "connect", "refused"])), "send failed: connect: refused");
        assert_eq!(error_chain(&layers(&["timed out: deadline", "deadline"])), "timed out: deadline");
        assert_eq!(error_chain(&layers(&["alone"])), "alone");
    }

    #[test]
    fn the_message_names_provider_operation_and_attempts() {
        let mut err = ProviderError {
            provider: "local router",
            operation: "set weight to 25".into(),
            message: "HTTP 503".into(),
            transient: true,
            attempts: 1,
        };
        assert_eq!(err.to_string(), "local router failed to set weight to 25: HTTP 503");
        err.attempts = 3;
        assert_eq!(err.to_string(), "local router failed to set weight to 25: HTTP 503 (after 3 attempts)");
    }
}
