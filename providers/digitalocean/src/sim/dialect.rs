//! How DigitalOcean shapes its answers: `{"id","message","request_id"}`
//! errors, the "pending event" 422, and `ratelimit-*` headers on every
//! answer with `retry-after` on the burst 429.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use axum::Json;
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use kastell_sim::Dialect;
use serde_json::json;

/// The documented hourly request allowance per token.
const HOURLY_LIMIT: u64 = 5000;

/// DigitalOcean's answer shapes, with a running request count for the
/// `ratelimit-remaining` header.
#[derive(Debug)]
pub(crate) struct DoDialect {
    answered: AtomicU64,
    /// Unix seconds when the first counted request expires (one hour after
    /// the simulator started).
    reset_at: u64,
}

impl DoDialect {
    pub(crate) fn new() -> Self {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        Self {
            answered: AtomicU64::new(0),
            reset_at: now + 3600,
        }
    }

    fn request_id(&self) -> String {
        let n = self.answered.load(Ordering::Relaxed);
        format!(
            "{n:08x}-51a7-4d0c-8e5a-{:012x}",
            n.wrapping_mul(2_654_435_761)
        )
    }
}

fn set_if_absent(headers: &mut HeaderMap, name: &'static str, value: String) {
    let name = HeaderName::from_static(name);
    if headers.contains_key(&name) {
        return;
    }
    if let Ok(value) = HeaderValue::from_str(&value) {
        headers.insert(name, value);
    }
}

impl Dialect for DoDialect {
    fn error(&self, status: StatusCode, code: &str, message: &str) -> Response {
        let body = json!({ "id": code, "message": message, "request_id": self.request_id() });
        (status, Json(body)).into_response()
    }

    fn rate_limited(&self, retry_after_secs: u64) -> Response {
        let mut response = self.error(
            StatusCode::TOO_MANY_REQUESTS,
            "too_many_requests",
            "API rate limit exceeded.",
        );
        let headers = response.headers_mut();
        set_if_absent(headers, "retry-after", retry_after_secs.to_string());
        set_if_absent(headers, "ratelimit-remaining", "0".to_owned());
        response
    }

    fn busy(&self) -> Response {
        self.error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "unprocessable_entity",
            "Droplet already has a pending event.",
        )
    }

    fn read_only(&self) -> Response {
        self.error(
            StatusCode::FORBIDDEN,
            "forbidden",
            "You do not have access for the attempted action.",
        )
    }

    fn unauthorized(&self) -> Response {
        self.error(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "Unable to authenticate you",
        )
    }

    fn decorate(&self, headers: &mut HeaderMap) {
        let answered = self.answered.fetch_add(1, Ordering::Relaxed) + 1;
        set_if_absent(headers, "ratelimit-limit", HOURLY_LIMIT.to_string());
        set_if_absent(
            headers,
            "ratelimit-remaining",
            HOURLY_LIMIT.saturating_sub(answered).to_string(),
        );
        set_if_absent(headers, "ratelimit-reset", self.reset_at.to_string());
    }
}
