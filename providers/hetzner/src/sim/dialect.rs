//! How Hetzner shapes errors, busy answers, 429s and rate-limit headers.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use axum::Json;
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use kastell_sim::Dialect;
use serde_json::json;

/// Hetzner's hourly request budget per project.
const LIMIT: u64 = 3600;

/// `{"error": {"code", "message", "details": {}}}` with `status`.
pub(crate) fn error(status: StatusCode, code: &str, message: &str) -> Response {
    let body = json!({"error": {"code": code, "message": message, "details": {}}});
    (status, Json(body)).into_response()
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn set(headers: &mut HeaderMap, name: &'static str, value: String) {
    if let Ok(value) = HeaderValue::from_str(&value) {
        headers.insert(HeaderName::from_static(name), value);
    }
}

/// Hetzner's answer shapes. Every answer carries `RateLimit-*` headers and
/// an `X-Correlation-Id`.
#[derive(Debug, Default)]
pub(crate) struct HetznerDialect {
    served: AtomicU64,
}

impl Dialect for HetznerDialect {
    fn error(&self, status: StatusCode, code: &str, message: &str) -> Response {
        error(status, code, message)
    }

    /// 429 `rate_limit_exceeded` with an empty bucket and
    /// `RateLimit-Reset` in `retry_after_secs`. Real Hetzner sends no
    /// `Retry-After`; the simulator adds one so the wait a client derives is
    /// exact (clients prefer it over the reset header).
    fn rate_limited(&self, retry_after_secs: u64) -> Response {
        let mut response = error(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limit_exceeded",
            "limit of 3600 requests per hour reached",
        );
        let headers = response.headers_mut();
        set(headers, "ratelimit-limit", LIMIT.to_string());
        set(headers, "ratelimit-remaining", "0".into());
        set(
            headers,
            "ratelimit-reset",
            (unix_now() + retry_after_secs).to_string(),
        );
        set(headers, "retry-after", retry_after_secs.to_string());
        response
    }

    fn busy(&self) -> Response {
        error(
            StatusCode::LOCKED,
            "locked",
            "cannot perform operation because server is locked",
        )
    }

    fn read_only(&self) -> Response {
        error(
            StatusCode::FORBIDDEN,
            "token_readonly",
            "The token you used is only allowed to perform GET requests",
        )
    }

    fn unauthorized(&self) -> Response {
        error(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "unable to authenticate",
        )
    }

    /// Adds the headers a 429 did not set already: a bucket that refills one
    /// request per second, never empty outside injected 429s.
    fn decorate(&self, headers: &mut HeaderMap) {
        let n = self.served.fetch_add(1, Ordering::Relaxed);
        if !headers.contains_key("ratelimit-limit") {
            set(headers, "ratelimit-limit", LIMIT.to_string());
            set(headers, "ratelimit-remaining", (LIMIT - 1).to_string());
            set(headers, "ratelimit-reset", (unix_now() + 1).to_string());
        }
        set(
            headers,
            "x-correlation-id",
            format!("{:016x}", 0x5eed_0000 + n),
        );
    }
}
