//! Retries with exponential backoff and jitter, for transient failures only.

use crate::ProviderError;
use std::future::Future;
use std::time::Duration;

/// How often and how patiently to retry.
#[derive(Clone, Copy, Debug)]
pub struct Backoff {
    pub attempts: u32,
    pub first: Duration,
    pub max: Duration,
}

impl Default for Backoff {
    /// Five attempts: about 0.2 + 0.4 + 0.8 + 1.6 s of waiting at most.
    fn default() -> Self {
        Self { attempts: 5, first: Duration::from_millis(200), max: Duration::from_secs(5) }
    }
}

impl Backoff {
    /// No retries (for calls whose caller retries by itself, or tests).
    pub const NONE: Backoff = Backoff { attempts: 1, first: Duration::ZERO, max: Duration::ZERO };

    /// Runs `op` until it succeeds, fails permanently, or attempts run out.
    pub async fn run<T, F, Fut>(&self, mut op: F) -> Result<T, ProviderError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, ProviderError>>,
    {
        let mut delay = self.first;
        let mut attempt = 1;
        loop {
            match op().await {
                Ok(value) => return Ok(value),
                Err(mut err) if !err.transient || attempt >= self.attempts => {
                    err.attempts = attempt;
                    return Err(err);
                }
                Err(_) => {
                    tokio::time::sleep(jitter(delay)).await;
                    delay = (delay * 2).min(self.max);
                    attempt += 1;
                }
            }
        }
    }
}

/// Full jitter between half and all of `delay`, from the clock's nanoseconds
/// (no RNG dependency needed for this).
fn jitter(delay: Duration) -> Duration {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
    let fraction = 0.5 + f64::from(nanos % 1000) / 2000.0;
    delay.mul_f64(fraction)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    fn err(transient: bool) -> ProviderError {
        ProviderError { provider: "test", operation: "do".into(), message: "boom".into(), transient, attempts: 0 }
    }

    #[tokio::test]
    async fn retries_transient_failures_then_succeeds() {
        let calls = AtomicU32::new(0);
        let backoff = Backoff { attempts: 4, first: Duration::from_millis(1), max: Duration::from_millis(2) };
        let result = backoff
            .run(|| async { if calls.fetch_add(1, Ordering::SeqCst) < 2 { Err(err(true)) } else { Ok(7) } })
            .await;
        assert_eq!(result.ok(), Some(7));
        assert_eq!(calls.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn gives_up_after_the_attempts_and_says_how_many() {
        let backoff = Backoff { attempts: 3, first: Duration::from_millis(1), max: Duration::from_millis(1) };
        let result: Result<(), _> = backoff.run(|| async { Err(err(true)) }).await;
        let e = result.expect_err("fails");
        assert_eq!(e.attempts, 3);
        assert!(e.to_string().ends_with("(after 3 attempts)"), "{e}");
    }

    #[tokio::test]
    async fn permanent_failures_are_not_retried() {
        let calls = AtomicU32::new(0);
        let result: Result<(), _> = Backoff::default()
            .run(|| async {
                calls.fetch_add(1, Ordering::SeqCst);
                Err(err(false))
            })
            .await;
        assert!(result.is_err());
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }
}
