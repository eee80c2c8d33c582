//! How Vultr shapes its error answers: `{"error": "...", "status": N}`,
//! busy servers as 500 "currently locked", 429s without rate-limit headers.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use kastell_sim::Dialect;
use serde_json::json;

/// Vultr's answer shapes.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct VultrDialect;

/// A Vultr error answer.
pub(crate) fn error(status: StatusCode, message: &str) -> Response {
    let body = json!({ "error": message, "status": status.as_u16() });
    (status, axum::Json(body)).into_response()
}

/// Vultr's refusal while the server is locked by other work: a 500.
pub(crate) fn locked(verb: &str) -> Response {
    error(
        StatusCode::INTERNAL_SERVER_ERROR,
        &format!("Unable to {verb} server: Server is currently locked"),
    )
}

impl Dialect for VultrDialect {
    fn error(&self, status: StatusCode, _code: &str, message: &str) -> Response {
        error(status, message)
    }

    /// Vultr documents no rate-limit headers; the simulator still sends
    /// `Retry-After` so clients that honour it can be tested.
    fn rate_limited(&self, retry_after_secs: u64) -> Response {
        let mut response = error(
            StatusCode::TOO_MANY_REQUESTS,
            "Rate limit reached - please try your request again later.",
        );
        if let Ok(value) = HeaderValue::from_str(&retry_after_secs.to_string()) {
            response.headers_mut().insert(header::RETRY_AFTER, value);
        }
        response
    }

    fn busy(&self) -> Response {
        locked("perform action on")
    }

    fn read_only(&self) -> Response {
        error(
            StatusCode::FORBIDDEN,
            "Unauthorized: this API key does not have the subscriptions permission.",
        )
    }

    fn unauthorized(&self) -> Response {
        error(StatusCode::UNAUTHORIZED, "Invalid API token.")
    }
}
