//! The Streamable HTTP sessions of `kastell-mcp --http`: rmcp's
//! [`LocalSessionManager`] with an idle expiry and a cap on live sessions.
//!
//! rmcp keeps a session until its client sends `DELETE` (many never do) or
//! its worker sees no message for its keep-alive; nothing bounds how many
//! there are. Here:
//!
//! - a session is *busy* while one of its response streams is open (a
//!   tool call running, a client listening on `GET`), else *idle* since its
//!   last request or the last message streamed to it;
//! - a session idle for [`IDLE_VAR`] seconds (default [`DEFAULT_IDLE`]) is
//!   closed: by a sweep that runs every few seconds, or at once when a
//!   request names it (which then gets rmcp's `404 Session not found`, and
//!   the client initializes again, as the transport says it must);
//! - at most [`MAX_VAR`] sessions (default [`DEFAULT_MAX`]) live at once. A
//!   new `initialize` at the cap closes the session idle the longest; when
//!   every session is busy it is refused with `503` and `Retry-After`.
//!   Evicting rather than refusing keeps the server usable when clients
//!   leak sessions (each holds the same token, so a refusal would lock out
//!   everyone until the leaked ones expire), and a busy session, whose call
//!   is running, is never cut.
//!
//! rmcp's own keep-alive is turned off: it closes a session whose client
//! is only listening, and these rules cover what it was for.

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context as TaskContext, Poll};
use std::time::{Duration, Instant};

use futures_core::Stream;
use kastell_core::Error;
use rmcp::model::{ClientJsonRpcMessage, ServerJsonRpcMessage};
use rmcp::transport::streamable_http_server::SessionId;
use rmcp::transport::streamable_http_server::session::local::{
    LocalSessionManager, LocalSessionManagerError,
};
use rmcp::transport::streamable_http_server::session::{ServerSseMessage, SessionManager};

use crate::env::Env;

/// Seconds a session may stay idle before it is closed.
pub(crate) const IDLE_VAR: &str = "KASTELL_MCP_SESSION_IDLE";

/// The most sessions alive at once.
pub(crate) const MAX_VAR: &str = "KASTELL_MCP_MAX_SESSIONS";

/// How long a session may stay idle by default: 30 minutes.
pub(crate) const DEFAULT_IDLE: Duration = Duration::from_secs(30 * 60);

/// How many sessions may live at once by default.
pub(crate) const DEFAULT_MAX: usize = 1000;

/// The longest idle time accepted from [`IDLE_VAR`]: a week.
const MAX_IDLE_SECS: u64 = 7 * 24 * 60 * 60;

/// The largest cap accepted from [`MAX_VAR`].
const MAX_MAX: usize = 1_000_000;

/// How long an idle session may live and how many may live at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SessionLimits {
    /// Idle time after which a session is closed.
    pub idle: Duration,
    /// The most sessions alive at once.
    pub max: usize,
}

impl Default for SessionLimits {
    fn default() -> Self {
        Self {
            idle: DEFAULT_IDLE,
            max: DEFAULT_MAX,
        }
    }
}

/// Reads a whole number in `1..=most` from `var`, `None` when unset or
/// empty; refuses anything else, naming the variable.
fn whole(env: &Env, var: &str, most: u64) -> Result<Option<u64>, Error> {
    let Some(text) = env.get(var).filter(|v| !v.trim().is_empty()) else {
        return Ok(None);
    };
    match text.trim().parse::<u64>() {
        Ok(n) if (1..=most).contains(&n) => Ok(Some(n)),
        _ => Err(Error::invalid_input(format!(
            "{var} must be a whole number from 1 to {most}, not {}",
            crate::state::store::shown(&text)
        ))
        .with_hint(format!(
            "Set {var} to a number, or unset it for the default"
        ))),
    }
}

impl SessionLimits {
    /// The limits from [`IDLE_VAR`] and [`MAX_VAR`], each defaulting when
    /// unset. Refuses a value that is not a whole number in range (idle:
    /// 1 second to a week; cap: 1 to 1,000,000).
    pub(crate) fn from_env(env: &Env) -> Result<Self, Error> {
        let defaults = Self::default();
        let idle = whole(env, IDLE_VAR, MAX_IDLE_SECS)?.map_or(defaults.idle, Duration::from_secs);
        let max = whole(env, MAX_VAR, MAX_MAX as u64)?
            .and_then(|n| usize::try_from(n).ok())
            .unwrap_or(defaults.max);
        Ok(Self { idle, max })
    }

    /// How often the sweep looks for idle sessions: a quarter of the idle
    /// time, between 1 and 60 seconds.
    pub(crate) fn sweep_every(&self) -> Duration {
        (self.idle / 4).clamp(Duration::from_secs(1), Duration::from_secs(60))
    }
}

/// A session's use: when it was last used and how many of its response
/// streams are open.
#[derive(Debug, Clone, Copy)]
struct Usage {
    last: Instant,
    streams: usize,
}

type UsageMap = Arc<Mutex<HashMap<SessionId, Usage>>>;

/// What a request naming a session finds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Standing {
    Live,
    Expired,
    Unknown,
}

fn lock(usage: &UsageMap) -> MutexGuard<'_, HashMap<SessionId, Usage>> {
    usage.lock().unwrap_or_else(|p| p.into_inner())
}

/// Why a session operation failed.
#[derive(Debug)]
pub(crate) enum SessionsError {
    /// From rmcp's session manager.
    Local(LocalSessionManagerError),
    /// The session expired, was evicted or never existed.
    NotFound,
    /// Every one of the `max` sessions is busy: no new one now.
    Full(usize),
}

impl std::fmt::Display for SessionsError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Local(e) => write!(f, "{e}"),
            Self::NotFound => write!(f, "session not found (expired or closed)"),
            Self::Full(max) => write!(
                f,
                "all {max} MCP sessions are busy ({MAX_VAR}); retry when a call ends"
            ),
        }
    }
}

impl std::error::Error for SessionsError {}

impl From<LocalSessionManagerError> for SessionsError {
    fn from(e: LocalSessionManagerError) -> Self {
        Self::Local(e)
    }
}

/// rmcp's in-memory sessions under [`SessionLimits`] (see the module
/// notes).
#[derive(Debug)]
pub(crate) struct Sessions {
    local: LocalSessionManager,
    limits: SessionLimits,
    usage: UsageMap,
    /// Serialises session creation, so the cap holds under a crowd.
    creating: tokio::sync::Mutex<()>,
}

impl Sessions {
    /// Sessions under `limits`.
    pub(crate) fn new(limits: SessionLimits) -> Self {
        let mut local = LocalSessionManager::default();
        local.session_config.keep_alive = None;
        Self {
            local,
            limits,
            usage: Arc::new(Mutex::new(HashMap::new())),
            creating: tokio::sync::Mutex::new(()),
        }
    }

    /// The limits in force.
    pub(crate) fn limits(&self) -> SessionLimits {
        self.limits
    }

    /// How many sessions are alive.
    #[cfg(test)]
    pub(crate) fn live(&self) -> usize {
        lock(&self.usage).len()
    }

    /// Whether a new session would be refused now: the cap is reached and
    /// every session is busy.
    pub(crate) fn full_of_busy(&self) -> bool {
        let usage = lock(&self.usage);
        usage.len() >= self.limits.max && usage.values().all(|u| u.streams > 0)
    }

    fn expired(&self, usage: &Usage, now: Instant) -> bool {
        usage.streams == 0 && now.saturating_duration_since(usage.last) >= self.limits.idle
    }

    /// Marks `id` used now, when it is live. An expired one is forgotten
    /// here; the caller closes it.
    fn touch(&self, id: &SessionId) -> Standing {
        let now = Instant::now();
        let mut usage = lock(&self.usage);
        let Some(u) = usage.get_mut(id) else {
            return Standing::Unknown;
        };
        if self.expired(u, now) {
            usage.remove(id);
            return Standing::Expired;
        }
        u.last = now;
        Standing::Live
    }

    /// Closes rmcp's side of `id` (its worker and channels), logging a
    /// failure: the session is gone from the count either way.
    async fn close_local(&self, id: &SessionId, why: &str) {
        tracing::info!(session = %id, "closed an MCP session: {why}");
        if let Err(e) = self.local.close_session(id).await {
            tracing::warn!(session = %id, error = %e, "closing an MCP session failed");
        }
    }

    /// Refuses (`NotFound`) a session that is unknown or expired, closing
    /// an expired one; else marks it used.
    async fn require(&self, id: &SessionId) -> Result<(), SessionsError> {
        match self.touch(id) {
            Standing::Live => return Ok(()),
            Standing::Expired => self.close_local(id, "idle too long").await,
            Standing::Unknown => {}
        }
        Err(SessionsError::NotFound)
    }

    /// Closes every session idle for longer than the limit. Returns how
    /// many were closed.
    pub(crate) async fn sweep(&self) -> usize {
        let now = Instant::now();
        let expired: Vec<SessionId> = {
            let mut usage = lock(&self.usage);
            let ids: Vec<SessionId> = usage
                .iter()
                .filter(|(_, u)| self.expired(u, now))
                .map(|(id, _)| id.clone())
                .collect();
            for id in &ids {
                usage.remove(id);
            }
            ids
        };
        for id in &expired {
            self.close_local(id, "idle too long").await;
        }
        expired.len()
    }

    /// At the cap, the idle session unused the longest, taken out of the
    /// count; `Full` when every session is busy; `None` below the cap.
    fn make_room(&self) -> Result<Option<SessionId>, SessionsError> {
        let mut usage = lock(&self.usage);
        if usage.len() < self.limits.max {
            return Ok(None);
        }
        let oldest = usage
            .iter()
            .filter(|(_, u)| u.streams == 0)
            .min_by_key(|(_, u)| u.last)
            .map(|(id, _)| id.clone());
        match oldest {
            Some(id) => {
                usage.remove(&id);
                Ok(Some(id))
            }
            None => Err(SessionsError::Full(self.limits.max)),
        }
    }

    /// `stream` counted as an open stream of `id` until it is dropped.
    fn tracked<S>(&self, id: &SessionId, stream: S) -> Tracked<S> {
        if let Some(u) = lock(&self.usage).get_mut(id) {
            u.streams += 1;
            u.last = Instant::now();
        }
        Tracked {
            inner: Box::pin(stream),
            usage: self.usage.clone(),
            id: id.clone(),
        }
    }
}

impl SessionManager for Sessions {
    type Error = SessionsError;
    type Transport = <LocalSessionManager as SessionManager>::Transport;

    async fn create_session(&self) -> Result<(SessionId, Self::Transport), Self::Error> {
        let _creating = self.creating.lock().await;
        self.sweep().await;
        if let Some(evicted) = self.make_room()? {
            self.close_local(
                &evicted,
                "the session cap was reached and it was idle the longest",
            )
            .await;
        }
        let (id, transport) = self.local.create_session().await?;
        lock(&self.usage).insert(
            id.clone(),
            Usage {
                last: Instant::now(),
                streams: 0,
            },
        );
        Ok((id, transport))
    }

    async fn initialize_session(
        &self,
        id: &SessionId,
        message: ClientJsonRpcMessage,
    ) -> Result<ServerJsonRpcMessage, Self::Error> {
        self.require(id).await?;
        Ok(self.local.initialize_session(id, message).await?)
    }

    async fn has_session(&self, id: &SessionId) -> Result<bool, Self::Error> {
        if self.require(id).await.is_err() {
            return Ok(false);
        }
        Ok(self.local.has_session(id).await?)
    }

    async fn close_session(&self, id: &SessionId) -> Result<(), Self::Error> {
        lock(&self.usage).remove(id);
        Ok(self.local.close_session(id).await?)
    }

    async fn create_stream(
        &self,
        id: &SessionId,
        message: ClientJsonRpcMessage,
    ) -> Result<impl Stream<Item = ServerSseMessage> + Send + Sync + 'static, Self::Error> {
        self.require(id).await?;
        let stream = self.local.create_stream(id, message).await?;
        Ok(self.tracked(id, stream))
    }

    async fn accept_message(
        &self,
        id: &SessionId,
        message: ClientJsonRpcMessage,
    ) -> Result<(), Self::Error> {
        self.require(id).await?;
        Ok(self.local.accept_message(id, message).await?)
    }

    async fn create_standalone_stream(
        &self,
        id: &SessionId,
    ) -> Result<impl Stream<Item = ServerSseMessage> + Send + Sync + 'static, Self::Error> {
        self.require(id).await?;
        let stream = self.local.create_standalone_stream(id).await?;
        Ok(self.tracked(id, stream))
    }

    async fn resume(
        &self,
        id: &SessionId,
        last_event_id: String,
    ) -> Result<impl Stream<Item = ServerSseMessage> + Send + Sync + 'static, Self::Error> {
        self.require(id).await?;
        let stream = self.local.resume(id, last_event_id).await?;
        Ok(self.tracked(id, stream))
    }
}

/// A response stream of a session: the session is busy while it is open,
/// and each message it carries counts as use.
struct Tracked<S> {
    inner: Pin<Box<S>>,
    usage: UsageMap,
    id: SessionId,
}

impl<S: Stream> Stream for Tracked<S> {
    type Item = S::Item;

    fn poll_next(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Option<S::Item>> {
        let this = self.get_mut();
        let polled = this.inner.as_mut().poll_next(cx);
        if let Poll::Ready(Some(_)) = &polled {
            if let Some(u) = lock(&this.usage).get_mut(&this.id) {
                u.last = Instant::now();
            }
        }
        polled
    }
}

impl<S> Drop for Tracked<S> {
    fn drop(&mut self) {
        if let Some(u) = lock(&self.usage).get_mut(&self.id) {
            u.streams = u.streams.saturating_sub(1);
            u.last = Instant::now();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(vars: &[(&str, &str)]) -> Env {
        Env::from_pairs(vars.iter().copied())
    }

    #[test]
    fn limits_come_from_the_variables_and_bad_values_are_refused() {
        assert_eq!(
            SessionLimits::from_env(&env(&[])).unwrap(),
            SessionLimits::default()
        );
        let set = SessionLimits::from_env(&env(&[(IDLE_VAR, "90"), (MAX_VAR, "7")])).unwrap();
        assert_eq!(set.idle, Duration::from_secs(90));
        assert_eq!(set.max, 7);
        assert_eq!(
            set.sweep_every(),
            Duration::from_secs(22) + Duration::from_millis(500)
        );
        for (var, bad) in [
            (IDLE_VAR, "0"),
            (IDLE_VAR, "30m"),
            (MAX_VAR, "-1"),
            (MAX_VAR, "0"),
        ] {
            let err = SessionLimits::from_env(&env(&[(var, bad)])).unwrap_err();
            assert!(err.to_string().contains(var), "{err}");
        }
    }

    #[tokio::test]
    async fn the_cap_evicts_the_idle_session_unused_longest_and_never_a_busy_one() {
        let sessions = Sessions::new(SessionLimits {
            idle: DEFAULT_IDLE,
            max: 2,
        });
        let (first, _t1) = sessions.create_session().await.unwrap();
        let (second, _t2) = sessions.create_session().await.unwrap();
        // The first is busy (a stream is open): the second goes.
        let busy = sessions.tracked(&first, ended());
        let (third, _t3) = sessions.create_session().await.unwrap();
        assert_eq!(sessions.touch(&first), Standing::Live);
        assert_eq!(sessions.touch(&second), Standing::Unknown);
        assert_eq!(sessions.touch(&third), Standing::Live);
        assert_eq!(sessions.live(), 2);
        // Both busy: refused.
        let _also_busy = sessions.tracked(&third, ended());
        assert!(sessions.full_of_busy());
        assert!(matches!(
            sessions.create_session().await,
            Err(SessionsError::Full(2))
        ));
        drop(busy);
        assert!(!sessions.full_of_busy());
        let (_fourth, _t4) = sessions.create_session().await.unwrap();
        assert_eq!(sessions.touch(&first), Standing::Unknown);
    }

    #[tokio::test]
    async fn an_idle_session_expires_and_an_open_stream_keeps_it() {
        let sessions = Sessions::new(SessionLimits {
            idle: Duration::from_millis(50),
            max: 10,
        });
        let (idle, _t1) = sessions.create_session().await.unwrap();
        let (listening, _t2) = sessions.create_session().await.unwrap();
        let stream = sessions.tracked(&listening, ended());
        tokio::time::sleep(Duration::from_millis(80)).await;
        assert_eq!(sessions.sweep().await, 1);
        assert_eq!(sessions.touch(&idle), Standing::Unknown);
        assert_eq!(sessions.touch(&listening), Standing::Live);
        drop(stream);
        tokio::time::sleep(Duration::from_millis(80)).await;
        assert!(!sessions.has_session(&listening).await.unwrap());
        assert_eq!(sessions.live(), 0);
    }

    /// A stream that ends at once.
    fn ended() -> Empty {
        Empty
    }

    struct Empty;

    impl Stream for Empty {
        type Item = ();
        fn poll_next(self: Pin<&mut Self>, _: &mut TaskContext<'_>) -> Poll<Option<()>> {
            Poll::Ready(None)
        }
    }
}
