//! Virtual time for simulators.

use std::time::Instant;

/// Virtual seconds since the simulator started, running `scale` times
/// faster than real time. Scale 1 is real time; scale 1000 turns a
/// two-minute snapshot into 120 ms.
#[derive(Debug, Clone, Copy)]
pub struct SimClock {
    origin: Instant,
    scale: f64,
}

impl SimClock {
    /// A clock starting now. A scale below 1e-3 is raised to it.
    pub fn new(scale: f64) -> Self {
        Self {
            origin: Instant::now(),
            scale: scale.max(1e-3),
        }
    }

    /// Virtual seconds elapsed.
    pub fn now(&self) -> f64 {
        self.origin.elapsed().as_secs_f64() * self.scale
    }

    /// Virtual seconds per real second.
    pub fn scale(&self) -> f64 {
        self.scale
    }

    /// Real seconds for `virtual_secs` of virtual time (for headers such as
    /// `Retry-After`, which clients obey in real time).
    pub fn real_secs(&self, virtual_secs: f64) -> f64 {
        virtual_secs / self.scale
    }
}

/// A resource's states over virtual time: each step lasts its duration,
/// then the final state holds.
#[derive(Debug, Clone)]
pub struct Timeline {
    started: f64,
    steps: Vec<(String, f64)>,
    last: String,
}

impl Timeline {
    /// Starts at virtual time `now` with `steps` (state, duration in
    /// virtual seconds), ending in `last`.
    pub fn new(now: f64, steps: &[(&str, f64)], last: &str) -> Self {
        Self {
            started: now,
            steps: steps
                .iter()
                .map(|(s, d)| ((*s).to_owned(), d.max(0.0)))
                .collect(),
            last: last.to_owned(),
        }
    }

    /// Total virtual seconds until the final state.
    pub fn duration(&self) -> f64 {
        self.steps.iter().map(|(_, d)| d).sum()
    }

    /// The state at virtual time `now`.
    pub fn state(&self, now: f64) -> &str {
        let mut t = self.started;
        for (state, duration) in &self.steps {
            t += duration;
            if now < t {
                return state;
            }
        }
        &self.last
    }

    /// Whether the final state was reached by `now`.
    pub fn done(&self, now: f64) -> bool {
        now >= self.started + self.duration()
    }

    /// Percent done at `now`, 0 to 100.
    pub fn percent(&self, now: f64) -> u8 {
        let total = self.duration();
        if total <= 0.0 {
            return 100;
        }
        (((now - self.started) / total).clamp(0.0, 1.0) * 100.0).round() as u8
    }

    /// Virtual time at which it started.
    pub fn started(&self) -> f64 {
        self.started
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeline_walks_its_states() {
        let t = Timeline::new(10.0, &[("rebooting", 2.0), ("booting", 3.0)], "running");
        assert_eq!(t.state(10.5), "rebooting");
        assert_eq!(t.state(12.5), "booting");
        assert_eq!(t.state(15.0), "running");
        assert!(!t.done(14.9) && t.done(15.0));
        assert_eq!(t.percent(12.5), 50);
        assert_eq!(Timeline::new(0.0, &[], "x").percent(0.0), 100);
    }

    #[test]
    fn clock_scales() {
        let c = SimClock::new(1000.0);
        std::thread::sleep(std::time::Duration::from_millis(5));
        assert!(c.now() >= 5.0);
        assert_eq!(c.real_secs(2000.0), 2.0);
    }
}
