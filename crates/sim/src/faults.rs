//! Injected failures.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// What an injected failure looks like. The vendor's [`crate::Dialect`]
/// renders the ones with a vendor shape.
#[derive(Debug, Clone, PartialEq)]
pub enum Fault {
    /// 429 with the vendor's headers and `Retry-After` (real seconds).
    RateLimited {
        /// Seconds the client is asked to wait.
        retry_after_secs: u64,
    },
    /// The vendor's "busy/locked" answer.
    Busy,
    /// An error status in the vendor's error shape (500, 503, 404, ...).
    Status(u16),
    /// A gateway error with an HTML body (502/504 from a proxy).
    Gateway(u16),
    /// Never answers.
    Hang,
    /// Answers normally, but only after this long.
    Delay(Duration),
    /// 200 with truncated JSON.
    Malformed,
    /// 200 with a `text/plain` body.
    NotJson,
    /// The vendor's answer to a read-only token attempting a write.
    ReadOnly,
}

/// When to inject a fault: method (any if `None`), a path fragment, which
/// matching calls (skip `skip`, then fire `times`), and whether the request
/// takes effect first (an answer lost after the work was done).
#[derive(Debug, Clone, PartialEq)]
pub struct FaultRule {
    /// HTTP method, upper case; `None` matches any.
    pub method: Option<String>,
    /// Matches when the request path contains this.
    pub path_contains: String,
    /// Matching calls to let through before firing.
    pub skip: u64,
    /// How many matching calls to fail (`u64::MAX`: all).
    pub times: u64,
    /// Run the request first, then replace its answer with the fault.
    pub after_effect: bool,
    /// The failure.
    pub fault: Fault,
}

impl FaultRule {
    /// Fails the next call of `method` (e.g. `"POST"`, or `"*"` for any) to a
    /// path containing `path_contains`, before it takes effect.
    pub fn new(method: &str, path_contains: &str, fault: Fault) -> Self {
        Self {
            method: (method != "*").then(|| method.to_ascii_uppercase()),
            path_contains: path_contains.to_owned(),
            skip: 0,
            times: 1,
            after_effect: false,
            fault,
        }
    }

    /// Fires `times` times.
    pub fn times(mut self, times: u64) -> Self {
        self.times = times;
        self
    }

    /// Fires on every matching call.
    pub fn always(self) -> Self {
        self.times(u64::MAX)
    }

    /// Lets `skip` matching calls through first (fire on the N-th call).
    pub fn skip(mut self, skip: u64) -> Self {
        self.skip = skip;
        self
    }

    /// Lets the request take effect, then fails its answer.
    pub fn after_effect(mut self) -> Self {
        self.after_effect = true;
        self
    }

    fn matches(&self, method: &str, path: &str) -> bool {
        self.method.as_deref().is_none_or(|m| m == method) && path.contains(&self.path_contains)
    }
}

#[derive(Debug)]
struct Armed {
    rule: FaultRule,
    seen: u64,
    fired: u64,
}

/// The faults armed on one simulator.
#[derive(Debug, Default)]
pub struct Faults {
    armed: Mutex<Vec<Armed>>,
    /// Faults injected so far, over every rule ever armed.
    fired: AtomicU64,
}

impl Faults {
    /// Arms `rule`.
    pub fn add(&self, rule: FaultRule) {
        self.armed
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(Armed {
                rule,
                seen: 0,
                fired: 0,
            });
    }

    /// Disarms everything (the count of faults fired is kept).
    pub fn clear(&self) {
        self.armed.lock().unwrap_or_else(|p| p.into_inner()).clear();
    }

    /// How many faults were injected so far, by every rule ever armed
    /// (including cleared ones): a test counts what it really injected
    /// rather than what it armed.
    pub fn fired(&self) -> u64 {
        self.fired.load(Ordering::Relaxed)
    }

    /// The fault to inject for this request, if any, and whether it comes
    /// after the request takes effect. Counts the call against every
    /// matching rule; the first rule that fires wins.
    pub fn take(&self, method: &str, path: &str) -> Option<(Fault, bool)> {
        let mut armed = self.armed.lock().unwrap_or_else(|p| p.into_inner());
        let mut chosen = None;
        for a in armed.iter_mut().filter(|a| a.rule.matches(method, path)) {
            a.seen += 1;
            if chosen.is_none() && a.seen > a.rule.skip && a.fired < a.rule.times {
                a.fired += 1;
                chosen = Some((a.rule.fault.clone(), a.rule.after_effect));
            }
        }
        if chosen.is_some() {
            self.fired.fetch_add(1, Ordering::Relaxed);
        }
        chosen
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_fire_on_the_nth_matching_call_for_n_times() {
        let faults = Faults::default();
        faults.add(
            FaultRule::new("POST", "/reboot", Fault::Busy)
                .skip(1)
                .times(2),
        );
        assert_eq!(faults.take("GET", "/servers/1/reboot"), None);
        assert_eq!(faults.take("POST", "/servers/1/reboot"), None);
        assert_eq!(
            faults.take("POST", "/servers/1/reboot"),
            Some((Fault::Busy, false))
        );
        assert_eq!(
            faults.take("POST", "/servers/1/reboot"),
            Some((Fault::Busy, false))
        );
        assert_eq!(faults.take("POST", "/servers/1/reboot"), None);
        faults.add(
            FaultRule::new("*", "/", Fault::Hang)
                .always()
                .after_effect(),
        );
        assert_eq!(
            faults.take("DELETE", "/images/1"),
            Some((Fault::Hang, true))
        );
        faults.clear();
        assert_eq!(faults.take("DELETE", "/images/1"), None);
        assert_eq!(faults.fired(), 3, "what fired stays counted after clear");
    }
}
