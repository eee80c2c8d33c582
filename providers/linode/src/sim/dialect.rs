//! How Linode shapes its errors, busy answers, 429s and rate-limit headers.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Json;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use kastell_sim::Dialect;
use serde_json::json;

/// Requests per window the simulator advertises (Linode's per-endpoint limit).
const LIMIT: u64 = 400;

/// Linode's answer shapes.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct LinodeDialect;

/// `{"errors": [{"reason": ..., "field": ...}]}` with `status`.
pub(crate) fn error(status: StatusCode, reason: &str, field: Option<&str>) -> Response {
    let mut entry = json!({"reason": reason});
    if let Some(field) = field {
        entry["field"] = json!(field);
    }
    (status, Json(json!({"errors": [entry]}))).into_response()
}

fn epoch_in(secs: u64) -> String {
    let at = SystemTime::now() + Duration::from_secs(secs);
    at.duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
        .to_string()
}

fn set(headers: &mut HeaderMap, name: &'static str, value: &str) {
    if let Ok(value) = HeaderValue::from_str(value) {
        headers.insert(name, value);
    }
}

impl Dialect for LinodeDialect {
    fn error(&self, status: StatusCode, _code: &str, message: &str) -> Response {
        error(status, message, None)
    }

    fn rate_limited(&self, retry_after_secs: u64) -> Response {
        let mut response = error(StatusCode::TOO_MANY_REQUESTS, "Too Many Requests", None);
        let headers = response.headers_mut();
        set(headers, "retry-after", &retry_after_secs.to_string());
        set(headers, "x-ratelimit-limit", &LIMIT.to_string());
        set(headers, "x-ratelimit-remaining", "0");
        set(headers, "x-ratelimit-reset", &epoch_in(retry_after_secs));
        response
    }

    fn busy(&self) -> Response {
        error(StatusCode::BAD_REQUEST, "Linode busy.", None)
    }

    fn read_only(&self) -> Response {
        error(StatusCode::FORBIDDEN, "Unauthorized", None)
    }

    fn unauthorized(&self) -> Response {
        error(StatusCode::UNAUTHORIZED, "Invalid Token", None)
    }

    fn decorate(&self, headers: &mut HeaderMap) {
        if !headers.contains_key("x-ratelimit-limit") {
            set(headers, "x-ratelimit-limit", &LIMIT.to_string());
            set(headers, "x-ratelimit-remaining", &(LIMIT - 1).to_string());
            set(headers, "x-ratelimit-reset", &epoch_in(60));
        }
    }
}
