//! OpId logs for the client: MCP's `logging` capability.
//!
//! Long work tells the client what it does, one `notifications/message`
//! per step started, step finished and milestone (logger `kastell`), at
//! or above the level the client chose:
//! - with `logging/setLevel` (handshake-era protocol versions), for the
//!   rest of the session;
//! - with `_meta["io.modelcontextprotocol/logLevel"]` on the request
//!   (2026-07-28), for that request.
//!
//! A handshake-era session that never set a level gets `info` and above; a
//! 2026-07-28 request that did not opt in gets none, as that version asks.
//! MCP deprecates this capability in 2026-07-28 (SEP-2577) in favour of
//! progress and tasks, which kastell sends as well; rmcp marks the types
//! deprecated, hence the `allow` below.
#![allow(deprecated)]

use std::sync::{Arc, Mutex};

use rmcp::RoleServer;
use rmcp::model::{LoggingLevel, LoggingMessageNotificationParam};
use rmcp::service::{Peer, RequestContext};

/// The logger name on every message.
const LOGGER: &str = "kastell";

/// How a level ranks: debug lowest, emergency highest.
fn rank(level: LoggingLevel) -> u8 {
    match level {
        LoggingLevel::Debug => 0,
        LoggingLevel::Info => 1,
        LoggingLevel::Notice => 2,
        LoggingLevel::Warning => 3,
        LoggingLevel::Error => 4,
        LoggingLevel::Critical => 5,
        LoggingLevel::Alert => 6,
        LoggingLevel::Emergency => 7,
    }
}

/// The level a session chose with `logging/setLevel`, shared by all its
/// requests (and by the tasks they start).
#[derive(Debug, Clone, Default)]
pub(crate) struct SessionLevel(Arc<Mutex<Option<LoggingLevel>>>);

impl SessionLevel {
    /// Records the client's choice.
    pub(crate) fn set(&self, level: LoggingLevel) {
        if let Ok(mut chosen) = self.0.lock() {
            *chosen = Some(level);
        }
    }

    fn get(&self) -> Option<LoggingLevel> {
        self.0.lock().ok().and_then(|chosen| *chosen)
    }
}

/// Where one request's operation logs go.
#[derive(Debug, Clone)]
pub(crate) struct ClientLog {
    peer: Option<Peer<RoleServer>>,
    min: Option<LoggingLevel>,
}

/// The severity of an operation log line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Severity {
    /// A step started or finished, a milestone.
    Info,
    /// A step failed.
    Warning,
}

impl ClientLog {
    /// The logs of the request behind `rc` in a session whose chosen level
    /// is `session`.
    pub(crate) fn for_request(rc: &RequestContext<RoleServer>, session: &SessionLevel) -> Self {
        let handshake = rc.peer.peer_info().is_some();
        let min = rc
            .meta
            .log_level()
            .or_else(|| session.get())
            .or_else(|| handshake.then_some(LoggingLevel::Info));
        Self {
            peer: Some(rc.peer.clone()),
            min,
        }
    }

    /// Whether anything would be sent.
    pub(crate) fn is_on(&self) -> bool {
        self.peer.is_some() && self.min.is_some()
    }

    /// Sends `text` at `severity` when the client asked for that level; a
    /// failure to send is logged here, never fatal.
    pub(crate) async fn send(&self, severity: Severity, text: &str) {
        let (Some(peer), Some(min)) = (&self.peer, self.min) else {
            return;
        };
        let level = match severity {
            Severity::Info => LoggingLevel::Info,
            Severity::Warning => LoggingLevel::Warning,
        };
        if rank(level) < rank(min) {
            return;
        }
        let param = LoggingMessageNotificationParam::new(level, serde_json::json!(text))
            .with_logger(LOGGER);
        if let Err(e) = peer.notify_logging_message(param).await {
            tracing::debug!("log notification not sent: {e}");
        }
    }
}
