//! Vultr's failed answers as kastell errors.
//!
//! Vultr answers `{"error": "<message>", "status": <code>}`. Its "busy"
//! answer is a 500 whose message says the server is "currently locked";
//! every other 500 is an ordinary server-side failure whose outcome is
//! unknown. 429s carry no documented rate-limit header, but `Retry-After`
//! is honoured when present.

use std::time::SystemTime;

use kastell_core::{Error, ErrorKind};
use kastell_http::{ApiFailure, headers, status};

use crate::ID;

/// The [`kastell_http::ErrorMapper`] for Vultr.
pub(crate) fn map_error(failure: &ApiFailure<'_>) -> Error {
    let message = vultr_message(failure);
    let code = failure.status;
    match code {
        500 if is_locked(&message) => status::busy(ID, code, &message),
        429 => {
            let error = Error::new(ErrorKind::RateLimited, format!("HTTP 429: {message}"))
                .with_provider(ID)
                .with_context("http_status", code)
                .with_hint(
                    "Vultr allows about 30 requests per second per source IP; \
                     kastell waits and retries",
                );
            match headers::retry_after(failure.headers, SystemTime::now()) {
                Some(after) => error.with_retry_after(after),
                None => error,
            }
        }
        403 => status::default_error(ID, code, &message).with_hint(
            "The Vultr API token may not do this: its user lacks the subscriptions \
             permission (provisioning to create servers), or the calling IP is not in \
             the key's access control list. Use a token with those permissions.",
        ),
        404 => status::default_error(ID, code, &message).with_hint(
            "Check the id, and that the token belongs to the Vultr account that owns it",
        ),
        _ => status::default_error(ID, code, &message),
    }
}

/// The vendor's message: the `error` field of a JSON body, else the body
/// text, except for HTML pages (a gateway's), which say nothing useful.
fn vultr_message(failure: &ApiFailure<'_>) -> String {
    if let Some(json) = failure.json() {
        if let Some(text) = json.get("error").and_then(|e| e.as_str()) {
            return text.trim().to_owned();
        }
    }
    let text = failure.body_text();
    if text.starts_with('<') {
        String::new()
    } else {
        text
    }
}

/// Whether a message is Vultr's "server is locked" refusal.
fn is_locked(message: &str) -> bool {
    message.to_ascii_lowercase().contains("currently locked")
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    /// Maps an answer with `headers` (name, value pairs). The header map's
    /// type is inferred from `ApiFailure`, as this crate does not depend on
    /// the HTTP stack directly.
    fn map(status: u16, headers: &[(&'static str, &str)], body: &str) -> Error {
        let mut map = Default::default();
        let _ = ApiFailure {
            provider: ID,
            status,
            headers: &map,
            body: b"",
        };
        for (name, value) in headers {
            map.insert(*name, value.parse().unwrap());
        }
        map_error(&ApiFailure {
            provider: ID,
            status,
            headers: &map,
            body: body.as_bytes(),
        })
    }

    fn vultr(status: u16, message: &str) -> String {
        serde_json::json!({ "error": message, "status": status }).to_string()
    }

    #[test]
    fn status_table() {
        let cases = [
            (400, "invalid instance ID", ErrorKind::InvalidInput, false),
            (400, "Invalid UUID format.", ErrorKind::InvalidInput, false),
            (401, "Invalid API token.", ErrorKind::Unauthenticated, false),
            (
                403,
                "Unauthorized IP address",
                ErrorKind::PermissionDenied,
                false,
            ),
            (404, "instance not found", ErrorKind::NotFound, false),
            (429, "Rate limit reached", ErrorKind::RateLimited, true),
            (500, "Internal error", ErrorKind::Unavailable, true),
            (503, "Service unavailable", ErrorKind::Unavailable, true),
        ];
        for (status, message, kind, retryable) in cases {
            let err = map(status, &[], &vultr(status, message));
            assert_eq!(err.kind(), kind, "{status}");
            assert_eq!(err.is_retryable(), retryable, "{status}");
            assert!(err.message().contains(message), "{err}");
            assert_eq!(err.provider(), Some(ID));
        }
    }

    #[test]
    fn locked_500_is_busy_and_never_applied() {
        let err = map(
            500,
            &[],
            &vultr(500, "Unable to reboot server: Server is currently locked"),
        );
        assert_eq!(err.kind(), ErrorKind::InvalidState);
        assert!(err.is_retryable());
        assert!(!err.may_have_taken_effect());
        let plain = map(500, &[], &vultr(500, "Internal error"));
        assert!(plain.may_have_taken_effect(), "a plain 500 is ambiguous");
    }

    #[test]
    fn rate_limits_honour_retry_after() {
        let err = map(429, &[("retry-after", "7")], &vultr(429, "slow down"));
        assert_eq!(err.retry_after(), Some(Duration::from_secs(7)));
        assert!(!err.may_have_taken_effect());
        let bare = map(429, &[], "");
        assert_eq!(bare.kind(), ErrorKind::RateLimited);
        assert_eq!(bare.retry_after(), None, "the client adds its default");
    }

    #[test]
    fn read_only_hint_names_the_token() {
        let err = map(403, &[], &vultr(403, "Forbidden"));
        assert!(err.hint().unwrap().contains("token"));
        assert!(err.hint().unwrap().contains("subscriptions"));
    }

    #[test]
    fn bodies_that_are_not_vultr_json() {
        let html = map(
            502,
            &[],
            "<html><body><h1>502 Bad Gateway</h1></body></html>",
        );
        assert_eq!(html.kind(), ErrorKind::Unavailable);
        assert_eq!(html.message(), "HTTP 502");
        let text = map(503, &[], "Service temporarily unavailable");
        assert!(text.message().contains("temporarily"));
        let empty = map(404, &[], "");
        assert_eq!(empty.kind(), ErrorKind::NotFound);
        let other_json = map(400, &[], r#"{"message": "odd"}"#);
        assert_eq!(other_json.kind(), ErrorKind::InvalidInput);
    }
}
