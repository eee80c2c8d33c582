//! DigitalOcean's failed answers as kastell errors.
//!
//! The body is `{"id": "not_found", "message": "...", "request_id": "..."}`;
//! `id` is read case-insensitively (an incident once sent `Unauthorized`) and
//! a `text/plain` body is taken as the message.

use std::time::{Duration, SystemTime};

use kastell_core::{Error, ErrorKind};
use kastell_http::{ApiFailure, headers, status};

use crate::ID;

/// The message DigitalOcean sends while another action holds the droplet.
const PENDING_EVENT: &str = "pending event";

/// The vendor's error id (lower case), message and request id.
fn parse_body(failure: &ApiFailure<'_>) -> (Option<String>, String, Option<String>) {
    let text = |v: &serde_json::Value, key: &str| {
        v.get(key)
            .and_then(|x| x.as_str())
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
    };
    match failure.json().filter(|v| v.is_object()) {
        Some(json) => (
            text(&json, "id").map(|id| id.to_ascii_lowercase()),
            text(&json, "message").unwrap_or_else(|| failure.body_text()),
            text(&json, "request_id"),
        ),
        None => (None, failure.body_text(), None),
    }
}

/// How long a 429 asks us to wait: `retry-after` (sent on the per-minute
/// burst limit), else until `ratelimit-reset` (when the oldest counted
/// request expires).
fn rate_limit_wait(failure: &ApiFailure<'_>) -> Option<Duration> {
    let now = SystemTime::now();
    headers::retry_after(failure.headers, now)
        .or_else(|| headers::reset_after(failure.headers, "ratelimit-reset", now))
}

/// Maps a failed DigitalOcean answer to the kastell error.
pub(crate) fn map_error(failure: &ApiFailure<'_>) -> Error {
    let (code, message, request_id) = parse_body(failure);
    let code_is = |want: &str| code.as_deref() == Some(want);
    let busy = (failure.status == 422 || code_is("unprocessable_entity"))
        && message.to_ascii_lowercase().contains(PENDING_EVENT);
    let error = if busy {
        status::busy(ID, failure.status, &message)
    } else if failure.status == 429 || code_is("too_many_requests") {
        let error = status::default_error(ID, 429, &message).set_retryable(true);
        match rate_limit_wait(failure) {
            Some(wait) => error.with_retry_after(wait),
            None => error,
        }
    } else {
        let error = status::default_error(ID, failure.status, &message);
        match error.kind() {
            ErrorKind::PermissionDenied => error.with_hint(
                "The DigitalOcean token lacks the scope for this: a read-only token cannot \
                 reboot, snapshot or rebuild; create a token with write access (droplet:update, \
                 image:create, image:delete)",
            ),
            ErrorKind::NotFound => {
                error.or_hint("Check the id, or that the token belongs to the right team")
            }
            _ => error,
        }
    };
    let error = match code {
        Some(code) => error.with_context("error_id", code),
        None => error,
    };
    match request_id {
        Some(id) => error.with_context("request_id", id),
        None => error,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kastell_http::ApiFailure;

    fn map(status: u16, body: &str, pairs: &[(&'static str, &str)]) -> Error {
        // The header map is the HTTP client's type; it is named through the
        // shared helper's signature instead of a direct dependency.
        let mut map = Default::default();
        let _ = headers::retry_after(&map, SystemTime::now());
        for (name, value) in pairs {
            map.insert(*name, value.parse().expect("header value"));
        }
        map_error(&ApiFailure {
            provider: ID,
            status,
            headers: &map,
            body: body.as_bytes(),
        })
    }

    #[test]
    fn the_table() {
        let cases = [
            (
                400,
                r#"{"id":"bad_request","message":"nope"}"#,
                ErrorKind::InvalidInput,
                false,
            ),
            (
                401,
                r#"{"id":"Unauthorized","message":"Unable to authenticate you"}"#,
                ErrorKind::Unauthenticated,
                false,
            ),
            (
                401,
                "Unable to authenticate you",
                ErrorKind::Unauthenticated,
                false,
            ),
            (
                403,
                r#"{"id":"forbidden","message":"You do not have access"}"#,
                ErrorKind::PermissionDenied,
                false,
            ),
            (
                404,
                r#"{"id":"not_found","message":"The resource you requested could not be found."}"#,
                ErrorKind::NotFound,
                false,
            ),
            (
                422,
                r#"{"id":"unprocessable_entity","message":"Image too large"}"#,
                ErrorKind::InvalidInput,
                false,
            ),
            (
                500,
                r#"{"id":"server_error","message":"Server Error"}"#,
                ErrorKind::Unavailable,
                true,
            ),
            (
                502,
                "<html><h1>502 Bad Gateway</h1></html>",
                ErrorKind::Unavailable,
                true,
            ),
            (503, "", ErrorKind::Unavailable, true),
        ];
        for (code, body, kind, retryable) in cases {
            let err = map(code, body, &[]);
            assert_eq!(err.kind(), kind, "{code} {body}");
            assert_eq!(err.is_retryable(), retryable, "{code} {body}");
            assert_eq!(err.provider(), Some(ID));
        }
    }

    #[test]
    fn pending_event_is_busy_and_never_applied() {
        let err = map(
            422,
            r#"{"id":"unprocessable_entity","message":"Droplet already has a pending event.","request_id":"r-1"}"#,
            &[],
        );
        assert_eq!(err.kind(), ErrorKind::InvalidState);
        assert!(err.is_retryable());
        assert!(!err.may_have_taken_effect());
        assert!(
            err.context()
                .iter()
                .any(|(k, v)| *k == "request_id" && v == "r-1")
        );
    }

    #[test]
    fn rate_limits_wait_as_asked() {
        let body = r#"{"id":"too_many_requests","message":"API rate limit exceeded."}"#;
        let err = map(
            429,
            body,
            &[("retry-after", "7"), ("ratelimit-remaining", "0")],
        );
        assert_eq!(err.kind(), ErrorKind::RateLimited);
        assert!(err.is_retryable() && !err.may_have_taken_effect());
        assert_eq!(err.retry_after(), Some(Duration::from_secs(7)));

        let reset = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap()
            .as_secs()
            + 30;
        let err = map(429, body, &[("ratelimit-reset", &reset.to_string())]);
        let wait = err.retry_after().unwrap();
        assert!(
            wait > Duration::from_secs(25) && wait <= Duration::from_secs(30),
            "{wait:?}"
        );
        assert_eq!(map(429, "slow down", &[]).retry_after(), None);
    }

    #[test]
    fn read_only_tokens_get_a_scope_hint() {
        let err = map(403, r#"{"id":"forbidden","message":"no"}"#, &[]);
        assert!(err.hint().unwrap().contains("token"));
        let err = map(404, r#"{"id":"not_found","message":"gone"}"#, &[]);
        assert!(err.hint().is_some());
    }
}
