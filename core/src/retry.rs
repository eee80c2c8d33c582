//! The shared retry policy: which failures are retried, how long to wait,
//! and when to give up.
//!
//! Rules, in order:
//! 1. Only errors marked retryable are retried ([`crate::Error::is_retryable`]).
//! 2. A non-idempotent operation (reboot, snapshot create, restore) is retried
//!    only when the failed attempt provably never took effect
//!    ([`crate::Error::may_have_taken_effect`] is `false`): a refused
//!    connection, a 429, a "locked" answer. After a timeout or a 5xx it is
//!    never sent twice.
//! 3. The wait is exponential with jitter, but never shorter than the
//!    `retry_after` the other side asked for.
//! 4. Attempts stop at `max_attempts` or when the next wait would pass the
//!    total deadline; the last error is returned with the attempt count.

use std::future::Future;
use std::time::Duration;

use tokio::time::Instant;

use crate::error::{Error, Result};

/// Whether repeating an operation is harmless.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Idempotency {
    /// Reads, deletes by id and other requests that can be repeated safely.
    Idempotent,
    /// Requests that act twice when sent twice (reboot, create, restore).
    NonIdempotent,
}

/// How failed requests are retried. See the module documentation for the rules.
#[derive(Debug, Clone, PartialEq)]
pub struct RetryPolicy {
    /// Attempts in total, the first one included. `1` disables retries.
    pub max_attempts: u32,
    /// Wait before the second attempt.
    pub initial_backoff: Duration,
    /// Upper bound for one wait computed by backoff (a longer `retry_after`
    /// is still honoured).
    pub max_backoff: Duration,
    /// Growth factor between waits.
    pub multiplier: f64,
    /// Fraction of each wait randomised, between 0.0 and 1.0.
    pub jitter: f64,
    /// Total time budget for all attempts and waits.
    pub deadline: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 5,
            initial_backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(30),
            multiplier: 2.0,
            jitter: 0.2,
            deadline: Duration::from_secs(120),
        }
    }
}

impl RetryPolicy {
    /// A policy that never retries.
    pub fn none() -> Self {
        Self {
            max_attempts: 1,
            ..Self::default()
        }
    }

    /// Whether `error` may be retried for an operation of `idempotency`.
    pub fn should_retry(&self, error: &Error, idempotency: Idempotency) -> bool {
        if !error.is_retryable() {
            return false;
        }
        match idempotency {
            Idempotency::Idempotent => true,
            Idempotency::NonIdempotent => !error.may_have_taken_effect(),
        }
    }

    /// The backoff before attempt `attempt + 1`, where `attempt` counts the
    /// attempts made so far (1 after the first failure), jitter included.
    pub fn backoff(&self, attempt: u32) -> Duration {
        let exponent = attempt.saturating_sub(1).min(32) as i32;
        let base = self.initial_backoff.as_secs_f64() * self.multiplier.max(1.0).powi(exponent);
        let capped = base.min(self.max_backoff.as_secs_f64());
        let jitter = self.jitter.clamp(0.0, 1.0);
        let factor = 1.0 - jitter + 2.0 * jitter * fastrand::f64();
        Duration::from_secs_f64((capped * factor).max(0.0))
    }

    /// The wait before the next attempt: the backoff, or the other side's
    /// `retry_after` when that is longer.
    pub fn delay_for(&self, attempt: u32, error: &Error) -> Duration {
        let backoff = self.backoff(attempt);
        match error.retry_after() {
            Some(after) if after > backoff => after,
            _ => backoff,
        }
    }

    /// Runs `operation` until it succeeds or the policy gives up.
    ///
    /// The returned error is the last one seen, with `attempts` in its context
    /// when more than one attempt was made.
    pub async fn run<T, F, Fut>(&self, idempotency: Idempotency, mut operation: F) -> Result<T>
    where
        F: FnMut(u32) -> Fut,
        Fut: Future<Output = Result<T>>,
    {
        let started = Instant::now();
        let mut attempt: u32 = 0;
        loop {
            attempt += 1;
            let error = match operation(attempt).await {
                Ok(value) => return Ok(value),
                Err(error) => error,
            };
            let give_up = |error: Error, why: &str| {
                if attempt > 1 {
                    error
                        .with_context("attempts", attempt)
                        .with_context("gave_up", why)
                } else {
                    error
                }
            };
            if !self.should_retry(&error, idempotency) {
                let why = if error.is_retryable() {
                    "request may have taken effect; not repeated"
                } else {
                    "not retryable"
                };
                return Err(give_up(error, why));
            }
            if attempt >= self.max_attempts.max(1) {
                return Err(give_up(error, "attempts exhausted"));
            }
            let delay = self.delay_for(attempt, &error);
            if started.elapsed() + delay > self.deadline {
                return Err(give_up(error, "deadline reached"));
            }
            tracing::warn!(
                attempt,
                delay_ms = delay.as_millis() as u64,
                kind = %error.kind(),
                "retrying after error: {error}"
            );
            tokio::time::sleep(delay).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;
    use std::sync::atomic::{AtomicU32, Ordering};

    fn quick() -> RetryPolicy {
        RetryPolicy {
            max_attempts: 4,
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(1),
            multiplier: 2.0,
            jitter: 0.0,
            deadline: Duration::from_secs(60),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn retries_temporary_errors_until_success() {
        let calls = AtomicU32::new(0);
        let value = quick()
            .run(Idempotency::Idempotent, |_| async {
                if calls.fetch_add(1, Ordering::SeqCst) < 2 {
                    Err(Error::unavailable("503"))
                } else {
                    Ok(7)
                }
            })
            .await
            .unwrap();
        assert_eq!(value, 7);
        assert_eq!(calls.load(Ordering::SeqCst), 3);
    }

    #[tokio::test(start_paused = true)]
    async fn permanent_errors_are_not_retried() {
        let calls = AtomicU32::new(0);
        let err = quick()
            .run(Idempotency::Idempotent, |_| async {
                calls.fetch_add(1, Ordering::SeqCst);
                Err::<(), _>(Error::new(ErrorKind::Unauthenticated, "401"))
            })
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Unauthenticated);
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn non_idempotent_is_not_repeated_after_ambiguous_failure() {
        let calls = AtomicU32::new(0);
        let err = quick()
            .run(Idempotency::NonIdempotent, |_| async {
                calls.fetch_add(1, Ordering::SeqCst);
                Err::<(), _>(Error::unavailable("502 after the request was sent"))
            })
            .await
            .unwrap_err();
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        assert_eq!(err.kind(), ErrorKind::Unavailable);
    }

    #[tokio::test(start_paused = true)]
    async fn non_idempotent_is_repeated_when_never_applied() {
        let calls = AtomicU32::new(0);
        let result = quick()
            .run(Idempotency::NonIdempotent, |_| async {
                if calls.fetch_add(1, Ordering::SeqCst) == 0 {
                    Err(Error::new(ErrorKind::RateLimited, "429"))
                } else if calls.load(Ordering::SeqCst) == 2 {
                    Err(Error::unavailable("connection refused").never_applied())
                } else {
                    Ok("done")
                }
            })
            .await;
        assert_eq!(result.unwrap(), "done");
        assert_eq!(calls.load(Ordering::SeqCst), 3);
    }

    #[tokio::test(start_paused = true)]
    async fn honours_retry_after_and_counts_attempts() {
        let started = Instant::now();
        let calls = AtomicU32::new(0);
        let err = quick()
            .run(Idempotency::Idempotent, |_| async {
                calls.fetch_add(1, Ordering::SeqCst);
                Err::<(), _>(
                    Error::new(ErrorKind::RateLimited, "429")
                        .with_retry_after(Duration::from_secs(5)),
                )
            })
            .await
            .unwrap_err();
        assert_eq!(calls.load(Ordering::SeqCst), 4);
        // Three waits, each at least the five seconds the server asked for.
        assert!(started.elapsed() >= Duration::from_secs(15));
        assert!(err.to_string().contains("attempts: 4"));
    }

    #[tokio::test(start_paused = true)]
    async fn stops_before_the_deadline_would_pass() {
        let policy = RetryPolicy {
            deadline: Duration::from_secs(8),
            max_attempts: 100,
            ..quick()
        };
        let started = Instant::now();
        let calls = AtomicU32::new(0);
        let err = policy
            .run(Idempotency::Idempotent, |_| async {
                calls.fetch_add(1, Ordering::SeqCst);
                Err::<(), _>(
                    Error::new(ErrorKind::RateLimited, "429")
                        .with_retry_after(Duration::from_secs(3)),
                )
            })
            .await
            .unwrap_err();
        assert!(started.elapsed() <= Duration::from_secs(8));
        assert_eq!(calls.load(Ordering::SeqCst), 3);
        assert!(err.to_string().contains("deadline reached"));
    }

    #[test]
    fn backoff_grows_caps_and_jitters_within_bounds() {
        let policy = RetryPolicy {
            jitter: 0.0,
            ..quick()
        };
        assert_eq!(policy.backoff(1), Duration::from_millis(100));
        assert_eq!(policy.backoff(2), Duration::from_millis(200));
        assert_eq!(policy.backoff(3), Duration::from_millis(400));
        assert_eq!(policy.backoff(30), Duration::from_secs(1));
        let jittery = RetryPolicy {
            jitter: 0.5,
            ..quick()
        };
        for _ in 0..200 {
            let d = jittery.backoff(2);
            assert!(d >= Duration::from_millis(100) && d <= Duration::from_millis(300));
        }
    }
}
