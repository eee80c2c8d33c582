//! Synthetic action handles for Vultr, which returns none.
//!
//! A reboot (204) or restore (202) is followed by polling the instance. A
//! fast reboot may never look different from a running server, so an action
//! succeeds only when the instance is ready *and* either it was seen not
//! ready since the request or a minimum delay derived from the poll schedule
//! has passed.
//!
//! The action id carries the request time (`reboot-<unix-ms>-<n>`), so a
//! handle kept by another process still gets the minimum delay; what was
//! seen is remembered per id in this process.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use kastell_core::PollSchedule;
use kastell_core::types::{ActionKind, ActionRef, ActionState, ServerId};

/// What was seen of one synthetic action.
#[derive(Debug, Clone, Copy)]
struct Seen {
    requested: SystemTime,
    not_ready: bool,
}

/// Tracks the synthetic actions this provider started.
#[derive(Debug)]
pub(crate) struct Tracker {
    seen: Mutex<HashMap<String, Seen>>,
    next: AtomicU64,
    min_settle: Duration,
}

impl Tracker {
    /// A tracker whose minimum delay is derived from `poll`: four first
    /// waits, and at least one longest wait (3 s and 15 s give 15 s; a
    /// simulator's 5 ms and 40 ms give 40 ms).
    pub(crate) fn new(poll: &PollSchedule) -> Self {
        Self {
            seen: Mutex::new(HashMap::new()),
            next: AtomicU64::new(1),
            min_settle: (poll.initial * 4).max(poll.max),
        }
    }

    /// How long after the request a ready instance counts as done even if it
    /// never looked different.
    #[cfg(test)]
    pub(crate) fn min_settle(&self) -> Duration {
        self.min_settle
    }

    /// A handle for work just requested on `server`.
    pub(crate) fn start(
        &self,
        kind: ActionKind,
        server: &ServerId,
        resource: Option<String>,
    ) -> ActionRef {
        let now = SystemTime::now();
        let millis = now
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_millis();
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        let id = format!("{}-{millis}-{n}", prefix(kind));
        self.lock().insert(
            id.clone(),
            Seen {
                requested: now,
                not_ready: false,
            },
        );
        ActionRef {
            id,
            kind,
            server: server.clone(),
            resource,
        }
    }

    /// Records one look at the instance (`ready` or not) and says whether
    /// the action is done.
    pub(crate) fn observe(&self, action: &ActionRef, ready: bool) -> ActionState {
        let now = SystemTime::now();
        let mut seen = self.lock();
        let entry = seen.entry(action.id.clone()).or_insert_with(|| Seen {
            requested: requested_at(&action.id).unwrap_or(now),
            not_ready: false,
        });
        if !ready {
            entry.not_ready = true;
            return ActionState::Running;
        }
        let settled = now.duration_since(entry.requested).unwrap_or_default() >= self.min_settle;
        if entry.not_ready || settled {
            seen.remove(&action.id);
            ActionState::Succeeded
        } else {
            ActionState::Running
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Seen>> {
        self.seen.lock().unwrap_or_else(|p| p.into_inner())
    }
}

fn prefix(kind: ActionKind) -> &'static str {
    match kind {
        ActionKind::Reboot => "reboot",
        ActionKind::CreateSnapshot => "snapshot",
        ActionKind::RestoreSnapshot => "restore",
    }
}

/// The request time encoded in a synthetic id, `<kind>-<unix-ms>-<n>`.
fn requested_at(id: &str) -> Option<SystemTime> {
    let mut parts = id.split('-');
    let _kind = parts.next()?;
    let millis: u64 = parts.next()?.parse().ok()?;
    Some(UNIX_EPOCH + Duration::from_millis(millis))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tracker(min: u64) -> Tracker {
        Tracker::new(&PollSchedule::new(
            Duration::from_millis(1),
            Duration::from_millis(min),
        ))
    }

    fn server() -> ServerId {
        ServerId::new("14b3e7d6-ffb5-4994-8502-57fcd9db3b33").unwrap()
    }

    #[test]
    fn min_settle_follows_the_poll_schedule() {
        let t = Tracker::new(&PollSchedule::new(
            Duration::from_secs(3),
            Duration::from_secs(15),
        ));
        assert_eq!(t.min_settle(), Duration::from_secs(15));
        let t = Tracker::new(&PollSchedule::new(
            Duration::from_secs(5),
            Duration::from_secs(10),
        ));
        assert_eq!(t.min_settle(), Duration::from_secs(20));
    }

    #[test]
    fn ready_counts_only_after_a_visible_change() {
        let t = tracker(60_000);
        let a = t.start(ActionKind::Reboot, &server(), None);
        assert!(a.id.starts_with("reboot-"));
        assert_eq!(t.observe(&a, true), ActionState::Running, "no change yet");
        assert_eq!(t.observe(&a, false), ActionState::Running);
        assert_eq!(t.observe(&a, true), ActionState::Succeeded);
    }

    #[test]
    fn ready_counts_after_the_minimum_delay() {
        let t = tracker(20);
        let a = t.start(ActionKind::RestoreSnapshot, &server(), Some("s".into()));
        assert_eq!(t.observe(&a, true), ActionState::Running);
        std::thread::sleep(Duration::from_millis(25));
        assert_eq!(t.observe(&a, true), ActionState::Succeeded);
    }

    #[test]
    fn handles_from_elsewhere_use_the_time_in_their_id() {
        let t = tracker(60_000);
        let old = ActionRef {
            id: "reboot-1000-1".into(),
            kind: ActionKind::Reboot,
            server: server(),
            resource: None,
        };
        assert_eq!(t.observe(&old, true), ActionState::Succeeded);
        let odd = ActionRef {
            id: "whatever".into(),
            ..old
        };
        assert_eq!(t.observe(&odd, true), ActionState::Running);
        assert_eq!(
            requested_at("reboot-2000-7"),
            Some(UNIX_EPOCH + Duration::from_secs(2))
        );
    }
}
