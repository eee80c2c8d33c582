//! Adaptive polling: how often to ask "is it done yet?" while waiting,
//! and [`PollSchedule::poll_until`], the one loop every waiting helper
//! uses.

use std::future::Future;
use std::time::Duration;

use crate::error::{Error, Result};

/// What one look at the awaited thing found.
#[derive(Debug)]
pub enum Look<T, P> {
    /// It is done: stop polling with this value.
    Done(T),
    /// It will not get done (a failed action, an error waiting cannot
    /// fix): stop polling with this error.
    Failed(Error),
    /// Not yet; `P` is what was seen, for the timeout's message.
    Pending(P),
}

/// A polling schedule: the first wait, growth per poll and a ceiling.
///
/// Waiting on a provider action starts fast (most reboots finish in seconds)
/// and backs off so a long snapshot does not burn the rate limit.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PollSchedule {
    /// Wait before the second poll.
    pub initial: Duration,
    /// Growth factor per poll.
    pub factor: f64,
    /// Longest wait between polls.
    pub max: Duration,
}

impl Default for PollSchedule {
    fn default() -> Self {
        Self {
            initial: Duration::from_secs(1),
            factor: 1.5,
            max: Duration::from_secs(10),
        }
    }
}

impl PollSchedule {
    /// A schedule with the given first wait, growing by half up to `max`.
    pub fn new(initial: Duration, max: Duration) -> Self {
        Self {
            initial,
            factor: 1.5,
            max,
        }
    }

    /// This schedule with waits of at most `max` (a schedule already below
    /// it is unchanged).
    pub fn capped(self, max: Duration) -> Self {
        Self {
            max: self.max.min(max),
            ..self
        }
    }

    /// The sequence of waits, endless.
    pub fn waits(&self) -> impl Iterator<Item = Duration> + use<> {
        let schedule = *self;
        let mut next = schedule.initial.min(schedule.max);
        std::iter::repeat_with(move || {
            let current = next;
            next = Duration::from_secs_f64(
                (next.as_secs_f64() * schedule.factor.max(1.0)).min(schedule.max.as_secs_f64()),
            );
            current
        })
    }
}

impl PollSchedule {
    /// Looks with `look` until it is done or failed, waiting by this
    /// schedule between looks. When the next wait would end past
    /// `deadline` (from the first look), stops with `expired(last)`, the
    /// error for what the last look saw. The first look happens at once.
    pub async fn poll_until<T, P, F, Fut>(
        &self,
        deadline: Duration,
        mut look: F,
        expired: impl FnOnce(P) -> Error,
    ) -> Result<T>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Look<T, P>>,
    {
        let started = tokio::time::Instant::now();
        let mut waits = self.waits();
        loop {
            let last = match look().await {
                Look::Done(value) => return Ok(value),
                Look::Failed(error) => return Err(error),
                Look::Pending(seen) => seen,
            };
            let wait = waits.next().unwrap_or(self.max);
            if started.elapsed() + wait >= deadline {
                return Err(expired(last));
            }
            tokio::time::sleep(wait).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn poll_until_stops_when_done_failed_or_out_of_time() {
        let schedule = PollSchedule {
            initial: Duration::from_millis(100),
            factor: 2.0,
            max: Duration::from_millis(400),
        };
        let mut n = 0;
        let done = schedule
            .poll_until(
                Duration::from_secs(10),
                || {
                    n += 1;
                    let seen = n;
                    async move {
                        if seen == 3 {
                            Look::Done(seen)
                        } else {
                            Look::Pending(seen)
                        }
                    }
                },
                |_| Error::timeout("never"),
            )
            .await;
        assert_eq!(done.ok(), Some(3));

        let failed: Result<()> = schedule
            .poll_until(
                Duration::from_secs(10),
                || async { Look::<(), ()>::Failed(Error::invalid_state("broken")) },
                |_| Error::timeout("never"),
            )
            .await;
        assert_eq!(
            failed.map_err(|e| e.kind()).err(),
            Some(crate::ErrorKind::InvalidState)
        );

        let mut looks = 0;
        let expired: Result<()> = schedule
            .poll_until(
                Duration::from_millis(650),
                || {
                    looks += 1;
                    let seen = looks;
                    async move { Look::<(), u32>::Pending(seen) }
                },
                |last| Error::timeout(format!("last look {last}")),
            )
            .await;
        // Looks at 0, 100, 300 ms; the next wait (400) would end past 650.
        assert_eq!(
            expired.err().map(|e| e.message().to_owned()).as_deref(),
            Some("last look 3")
        );
    }

    #[test]
    fn grows_to_the_ceiling() {
        let schedule = PollSchedule {
            initial: Duration::from_millis(100),
            factor: 2.0,
            max: Duration::from_millis(500),
        };
        let waits: Vec<u128> = schedule.waits().take(5).map(|d| d.as_millis()).collect();
        assert_eq!(waits, vec![100, 200, 400, 500, 500]);
    }

    #[test]
    fn a_cap_lowers_the_ceiling_and_never_raises_it() {
        let schedule = PollSchedule::new(Duration::from_secs(2), Duration::from_secs(15));
        let capped = schedule.capped(Duration::from_secs(5));
        let waits: Vec<u64> = capped.waits().take(5).map(|d| d.as_secs()).collect();
        assert_eq!(waits, vec![2, 3, 4, 5, 5]);
        let quick = PollSchedule::new(Duration::from_millis(10), Duration::from_millis(50));
        assert_eq!(quick.capped(Duration::from_secs(5)), quick);
    }
}
