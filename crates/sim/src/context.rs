//! The per-simulator context and the middleware that records requests,
//! checks tokens and injects faults.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::middleware::{Next, from_fn_with_state};
use axum::response::{IntoResponse, Response};

use crate::addresses::AddressPool;
use crate::clock::SimClock;
use crate::faults::{Fault, Faults};

/// How one vendor shapes its answers. Implemented by each provider's
/// simulator.
pub trait Dialect: Send + Sync + 'static {
    /// An error in the vendor's envelope.
    fn error(&self, status: StatusCode, code: &str, message: &str) -> Response;

    /// The vendor's 429, with its rate-limit headers and `Retry-After`
    /// (if the vendor sends one) of `retry_after_secs`.
    fn rate_limited(&self, retry_after_secs: u64) -> Response;

    /// The vendor's answer when the server is busy with another action.
    fn busy(&self) -> Response;

    /// The vendor's answer to a write with a read-only token.
    fn read_only(&self) -> Response {
        self.error(
            StatusCode::FORBIDDEN,
            "forbidden",
            "This token is read-only",
        )
    }

    /// The vendor's answer to a missing or unknown token.
    fn unauthorized(&self) -> Response {
        self.error(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "Unable to authenticate you",
        )
    }

    /// Adds the vendor's rate-limit headers to every answer.
    fn decorate(&self, _headers: &mut HeaderMap) {}
}

/// Which token a request carried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenKind {
    /// May read and write.
    ReadWrite,
    /// May only read.
    ReadOnly,
}

/// The simulator's accepted tokens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tokens {
    /// The read-write token.
    pub read_write: String,
    /// The read-only token.
    pub read_only: String,
}

impl Tokens {
    /// Tokens derived from `prefix` (`<prefix>-rw-sim-token`, `<prefix>-ro-sim-token`).
    pub fn for_provider(prefix: &str) -> Self {
        Self {
            read_write: format!("{prefix}-rw-sim-token"),
            read_only: format!("{prefix}-ro-sim-token"),
        }
    }

    fn classify(&self, headers: &HeaderMap) -> Option<TokenKind> {
        let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
        let token = value.strip_prefix("Bearer ")?;
        if token == self.read_write {
            Some(TokenKind::ReadWrite)
        } else if token == self.read_only {
            Some(TokenKind::ReadOnly)
        } else {
            None
        }
    }
}

/// One recorded request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recorded {
    /// Method, upper case.
    pub method: String,
    /// Path.
    pub path: String,
    /// Raw query string.
    pub query: String,
    /// When it arrived (real time).
    pub at: Instant,
}

/// Every request a simulator received.
#[derive(Debug, Default)]
pub struct Recorder {
    requests: Mutex<Vec<Recorded>>,
}

impl Recorder {
    fn push(&self, request: Recorded) {
        self.requests
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(request);
    }

    /// All requests so far.
    pub fn all(&self) -> Vec<Recorded> {
        self.requests
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Requests with `method` (`"*"` for any) whose path contains `path`.
    pub fn matching(&self, method: &str, path: &str) -> Vec<Recorded> {
        self.all()
            .into_iter()
            .filter(|r| (method == "*" || r.method == method) && r.path.contains(path))
            .collect()
    }

    /// How many requests match, see [`Recorder::matching`].
    pub fn count(&self, method: &str, path: &str) -> usize {
        self.matching(method, path).len()
    }

    /// Forgets everything recorded.
    pub fn clear(&self) {
        self.requests
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clear();
    }

    /// How many requests changed something (anything but GET).
    pub fn writes(&self) -> usize {
        self.all().iter().filter(|r| r.method != "GET").count()
    }
}

/// What the middleware and a vendor's handlers share. Cheap to clone.
#[derive(Clone)]
pub struct SimContext {
    /// Virtual time.
    pub clock: SimClock,
    /// Armed faults.
    pub faults: Arc<Faults>,
    /// Request log.
    pub recorder: Arc<Recorder>,
    /// Accepted tokens.
    pub tokens: Tokens,
    /// The vendor's answer shapes.
    pub dialect: Arc<dyn Dialect>,
    /// The public addresses created servers get.
    pub addresses: AddressPool,
}

impl std::fmt::Debug for SimContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimContext")
            .field("clock", &self.clock)
            .finish_non_exhaustive()
    }
}

impl SimContext {
    /// A context with a clock of `scale`, no faults and an empty log.
    pub fn new(dialect: Arc<dyn Dialect>, tokens: Tokens, scale: f64) -> Self {
        Self {
            clock: SimClock::new(scale),
            faults: Arc::default(),
            recorder: Arc::default(),
            tokens,
            dialect,
            addresses: AddressPool::default(),
        }
    }

    /// Wraps `router` with recording, token checks, fault injection and the
    /// vendor's rate-limit headers. Handlers find the caller's
    /// [`TokenKind`] in the request extensions.
    pub fn layer(&self, router: Router) -> Router {
        router.layer(from_fn_with_state(self.clone(), middleware))
    }

    fn render(&self, fault: &Fault) -> Response {
        match fault {
            Fault::RateLimited { retry_after_secs } => self.dialect.rate_limited(*retry_after_secs),
            Fault::Busy => self.dialect.busy(),
            Fault::ReadOnly => self.dialect.read_only(),
            Fault::Status(code) => {
                let status =
                    StatusCode::from_u16(*code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
                self.dialect
                    .error(status, "server_error", "Simulated failure")
            }
            Fault::Gateway(code) => {
                let status = StatusCode::from_u16(*code).unwrap_or(StatusCode::BAD_GATEWAY);
                let page = format!("<html><body><h1>{status}</h1></body></html>");
                (status, [(header::CONTENT_TYPE, "text/html")], page).into_response()
            }
            Fault::Malformed => (
                StatusCode::OK,
                [(header::CONTENT_TYPE, "application/json")],
                "{\"server\": {\"id\": 1, \"name\": \"trunc",
            )
                .into_response(),
            Fault::NotJson => (
                StatusCode::OK,
                [(header::CONTENT_TYPE, "text/plain")],
                "Service temporarily unavailable, please retry",
            )
                .into_response(),
            Fault::Hang | Fault::Delay(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
        }
    }
}

async fn middleware(State(ctx): State<SimContext>, mut request: Request, next: Next) -> Response {
    let method = request.method().as_str().to_owned();
    let path = request.uri().path().to_owned();
    ctx.recorder.push(Recorded {
        method: method.clone(),
        path: path.clone(),
        query: request.uri().query().unwrap_or("").to_owned(),
        at: Instant::now(),
    });
    let mut response = respond(&ctx, &mut request, next, &method, &path).await;
    ctx.dialect.decorate(response.headers_mut());
    response
}

async fn respond(
    ctx: &SimContext,
    request: &mut Request,
    next: Next,
    method: &str,
    path: &str,
) -> Response {
    let Some(kind) = ctx.tokens.classify(request.headers()) else {
        return ctx.dialect.unauthorized();
    };
    if kind == TokenKind::ReadOnly && request.method() != Method::GET {
        return ctx.dialect.read_only();
    }
    request.extensions_mut().insert(kind);
    let request = std::mem::replace(request, Request::new(Body::empty()));
    match ctx.faults.take(method, path) {
        None => next.run(request).await,
        Some((Fault::Delay(delay), _)) => {
            tokio::time::sleep(delay).await;
            next.run(request).await
        }
        Some((fault, after_effect)) => {
            if after_effect {
                // The work happens; only the answer is lost.
                let _ = next.run(request).await;
            }
            if fault == Fault::Hang {
                std::future::pending::<()>().await;
            }
            ctx.render(&fault)
        }
    }
}
