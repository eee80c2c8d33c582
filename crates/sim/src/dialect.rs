//! [`JsonDialect`]: a plain JSON error envelope for simulators of APIs
//! that have no peculiar one (a third-party provider's first simulator,
//! tests of the shared scaffolding).

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::context::Dialect;

/// Errors as `{"error": {"code": ..., "message": ...}}`, a 429 with
/// `Retry-After` in seconds, and busy as 409 `busy`.
#[derive(Debug, Clone, Copy, Default)]
pub struct JsonDialect;

impl Dialect for JsonDialect {
    fn error(&self, status: StatusCode, code: &str, message: &str) -> Response {
        let body = serde_json::json!({ "error": { "code": code, "message": message } });
        (status, Json(body)).into_response()
    }

    fn rate_limited(&self, retry_after_secs: u64) -> Response {
        let mut response = self.error(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
            "Too many requests",
        );
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(retry_after_secs));
        response
    }

    fn busy(&self) -> Response {
        self.error(
            StatusCode::CONFLICT,
            "busy",
            "Another action is running on this server",
        )
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[tokio::test]
    async fn errors_carry_code_and_message_and_429s_say_when_to_retry() {
        let response = JsonDialect.rate_limited(7);
        assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(response.headers()[header::RETRY_AFTER], "7");
        let body = axum::body::to_bytes(response.into_body(), 1024)
            .await
            .unwrap();
        let value: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(value["error"]["code"], "rate_limited");
        assert_eq!(JsonDialect.busy().status(), StatusCode::CONFLICT);
    }
}
