//! Adaptive polling: how often to ask "is it done yet?" while waiting.

use std::time::Duration;

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

#[cfg(test)]
mod tests {
    use super::*;

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
}
