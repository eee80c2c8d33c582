//! The default mapping from an HTTP status to an error kind. Vendor mappers
//! recognise their own special answers (busy, locked, read-only tokens)
//! first and fall back to [`default_error`].

use kastell_core::{Advice, Error, ErrorKind};

use crate::ApiFailure;

/// The error for `status` with the vendor's `message`, by the usual
/// meaning of the status:
/// 400 `InvalidInput`, 401 `Unauthenticated`, 403 `PermissionDenied` (with a
/// token-scope hint), 404 `NotFound`, 409/423 `InvalidState` (retryable),
/// 422 `InvalidInput`, 429 `RateLimited`, 408/5xx `Unavailable` (retryable),
/// anything else `Unexpected`.
pub fn default_error(provider: &'static str, status: u16, message: &str) -> Error {
    let message = if message.trim().is_empty() {
        format!("HTTP {status}")
    } else {
        format!("HTTP {status}: {}", message.trim())
    };
    let error = match status {
        400 => Error::new(ErrorKind::InvalidInput, message),
        401 => Error::new(ErrorKind::Unauthenticated, message).with_hint(format!(
            "The {provider} API token was rejected: check that it is set, current and not revoked"
        )),
        403 => Error::new(ErrorKind::PermissionDenied, message).with_hint(format!(
            "The {provider} API token lacks the right to do this: use a read-write token with the needed scopes"
        )),
        404 => Error::new(ErrorKind::NotFound, message),
        408 => Error::unavailable(message),
        409 | 423 => Error::new(ErrorKind::InvalidState, message).set_retryable(true),
        422 => Error::new(ErrorKind::InvalidInput, message),
        429 => Error::new(ErrorKind::RateLimited, message)
            .with_hint(
                "The provider is rate limiting requests and the retries ran out: wait a few \
                 minutes, or work on fewer servers at once, then try again",
            )
            .with_advice(Advice::SlowDown),
        500..=599 => Error::unavailable(message)
            .with_hint("The provider reported a server-side problem; try again shortly"),
        _ => Error::unexpected(message),
    };
    error
        .with_provider(provider)
        .with_context("http_status", status)
}

/// The vendor "busy" answer: `InvalidState`, retryable, and provably not
/// applied (the vendor refused the request).
pub fn busy(provider: &'static str, status: u16, message: &str) -> Error {
    Error::new(
        ErrorKind::InvalidState,
        format!("HTTP {status}: {}", message.trim()),
    )
    .set_retryable(true)
    .never_applied()
    .with_provider(provider)
    .with_context("http_status", status)
    .with_hint(
        "Another operation was still running on this server when the retries ran out: \
         wait until it finishes, then try again",
    )
    .with_advice(Advice::WaitForOtherOperation)
}

/// An [`ErrorMapper`](crate::ErrorMapper) for an API with a plain JSON
/// error envelope (`{"error": {"message": ...}}`, `{"error": "..."}` or
/// `{"message": ...}`, as `kastell_sim::JsonDialect` answers): the
/// vendor's message, [`default_error`] for the status, a `409` `busy` as
/// [`busy`], and `Retry-After` honoured on a 429. A vendor with its own
/// envelope or special answers writes its own mapper instead.
pub fn plain_json(failure: &ApiFailure<'_>) -> Error {
    let json = failure.json();
    let field = |value: &serde_json::Value, key: &str| {
        value.get(key).and_then(|v| v.as_str()).map(str::to_owned)
    };
    let error = json.as_ref().and_then(|j| j.get("error"));
    let code = error.and_then(|e| field(e, "code"));
    let message = error
        .and_then(|e| field(e, "message").or_else(|| e.as_str().map(str::to_owned)))
        .or_else(|| json.as_ref().and_then(|j| field(j, "message")))
        .unwrap_or_else(|| failure.body_text());
    let (provider, status) = (failure.provider, failure.status);
    match status {
        409 if code.as_deref() == Some("busy") => busy(provider, status, &message),
        429 => {
            let error = default_error(provider, status, &message);
            match crate::headers::retry_after(failure.headers, std::time::SystemTime::now()) {
                Some(after) => error.with_retry_after(after),
                None => error,
            }
        }
        _ => default_error(provider, status, &message),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_json_reads_the_message_the_busy_code_and_retry_after() {
        let mut headers = reqwest::header::HeaderMap::new();
        let failure = |status, body: &'static [u8], headers: &reqwest::header::HeaderMap| {
            plain_json(&ApiFailure {
                provider: "acme",
                status,
                headers,
                body,
            })
        };
        let err = failure(
            404,
            br#"{"error":{"code":"not_found","message":"no server 7"}}"#,
            &headers,
        );
        assert_eq!(err.kind(), ErrorKind::NotFound);
        assert!(err.message().contains("no server 7"), "{err}");
        let err = failure(
            409,
            br#"{"error":{"code":"busy","message":"reboot running"}}"#,
            &headers,
        );
        assert!(err.is_retryable() && !err.may_have_taken_effect());
        headers.insert(
            "retry-after",
            reqwest::header::HeaderValue::from_static("4"),
        );
        let err = failure(429, br#"{"message":"slow down"}"#, &headers);
        assert_eq!(err.kind(), ErrorKind::RateLimited);
        assert_eq!(err.retry_after(), Some(std::time::Duration::from_secs(4)));
        let err = failure(500, b"<html>gateway</html>", &headers);
        assert_eq!(err.kind(), ErrorKind::Unavailable);
    }

    #[test]
    fn kinds_and_retryability() {
        let cases = [
            (400, ErrorKind::InvalidInput, false),
            (401, ErrorKind::Unauthenticated, false),
            (403, ErrorKind::PermissionDenied, false),
            (404, ErrorKind::NotFound, false),
            (409, ErrorKind::InvalidState, true),
            (422, ErrorKind::InvalidInput, false),
            (429, ErrorKind::RateLimited, true),
            (500, ErrorKind::Unavailable, true),
            (503, ErrorKind::Unavailable, true),
            (302, ErrorKind::Unexpected, false),
        ];
        for (status, kind, retryable) in cases {
            let err = default_error("acme", status, "boom");
            assert_eq!(err.kind(), kind, "{status}");
            assert_eq!(err.is_retryable(), retryable, "{status}");
            assert_eq!(err.provider(), Some("acme"));
        }
        assert!(
            default_error("acme", 403, "")
                .hint()
                .unwrap()
                .contains("scopes")
        );
        let b = busy("acme", 423, "locked");
        assert!(b.is_retryable() && !b.may_have_taken_effect());
    }
}
