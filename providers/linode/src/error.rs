//! Linode's failed answers mapped to the kastell [`Error`].
//!
//! Linode's error body is `{"errors": [{"reason": "...", "field": "..."}]}`
//! with `field` only for field errors.

use std::time::{Duration, SystemTime};

use kastell_core::{Error, ErrorKind};
use kastell_http::status::{busy, default_error};
use kastell_http::{ApiFailure, headers};

use crate::ID;

/// The `ErrorMapper` of the Linode client: busy answers, rate limits,
/// maintenance, token scopes, then the usual status table.
pub(crate) fn map_error(failure: &ApiFailure<'_>) -> Error {
    let status = failure.status;
    let json = failure.json();
    let message = match &json {
        Some(body) => reasons(body).unwrap_or_else(|| failure.body_text()),
        None => failure.body_text(),
    };
    let now = SystemTime::now();
    match status {
        400 if message.to_ascii_lowercase().contains("busy") => busy(ID, status, &message),
        // nginx in front of the API answers some 400s with an HTML page; the
        // request never reached the API, so it is safe to send again.
        400 if json.is_none() => Error::unavailable(format!("HTTP 400 from a proxy: {message}"))
            .never_applied()
            .with_provider(ID)
            .with_context("http_status", status),
        403 => default_error(ID, status, &message).with_hint(
            "The Linode API token lacks the scope for this: a read-only token (or one without \
             linodes:read_write and images:read_write) cannot reboot, snapshot or rebuild; \
             create a token with those scopes",
        ),
        429 => {
            let wait = headers::retry_after(failure.headers, now)
                .or_else(|| headers::reset_after(failure.headers, "x-ratelimit-reset", now))
                .unwrap_or(Duration::from_secs(1));
            default_error(ID, status, &message).with_retry_after(wait)
        }
        503 if failure.headers.contains_key("x-maintenance-mode") => Error::new(
            ErrorKind::Unavailable,
            format!("HTTP 503: Linode API under planned maintenance ({message})"),
        )
        .set_retryable(false)
        .never_applied()
        .with_provider(ID)
        .with_context("http_status", status)
        .with_hint("The Linode API is down for planned maintenance; see status.linode.com and try again later"),
        _ => default_error(ID, status, &message),
    }
}

/// The `reason`s of a Linode error body, with their `field`s, joined.
fn reasons(body: &serde_json::Value) -> Option<String> {
    let errors = body.get("errors")?.as_array()?;
    let parts: Vec<String> = errors
        .iter()
        .filter_map(|e| {
            let reason = e.get("reason")?.as_str()?;
            Some(match e.get("field").and_then(|f| f.as_str()) {
                Some(field) => format!("{field}: {reason}"),
                None => reason.to_owned(),
            })
        })
        .collect();
    (!parts.is_empty()).then(|| parts.join("; "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use kastell_core::ErrorKind;

    /// Maps a failure with `status`, `body` and `headers`. The header map's
    /// type is inferred from `ApiFailure`, so no HTTP crate is named here.
    fn map(status: u16, body: &str, headers: &[(&'static str, &str)]) -> Error {
        let mut map = Default::default();
        let _ = || ApiFailure {
            provider: ID,
            status,
            headers: &map,
            body: &[],
        };
        for (name, value) in headers {
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
    fn busy_is_retryable_and_never_applied() {
        let err = map(400, r#"{"errors":[{"reason":"Linode busy."}]}"#, &[]);
        assert_eq!(err.kind(), ErrorKind::InvalidState);
        assert!(err.is_retryable());
        assert!(!err.may_have_taken_effect());
        assert!(err.message().contains("Linode busy."));
    }

    #[test]
    fn field_errors_keep_their_field() {
        let body = r#"{"errors":[{"field":"root_pass","reason":"Password does not meet strength requirement."},{"reason":"second"}]}"#;
        let err = map(400, body, &[]);
        assert_eq!(err.kind(), ErrorKind::InvalidInput);
        assert!(!err.is_retryable());
        assert!(err.message().contains("root_pass: Password"));
        assert!(err.message().contains("; second"));
    }

    #[test]
    fn html_400_from_nginx_is_retried() {
        let err = map(400, "<html><body>400 Bad Request</body></html>", &[]);
        assert_eq!(err.kind(), ErrorKind::Unavailable);
        assert!(err.is_retryable());
        assert!(!err.may_have_taken_effect());
    }

    #[test]
    fn auth_and_lookup_statuses() {
        let err = map(401, r#"{"errors":[{"reason":"Invalid Token"}]}"#, &[]);
        assert_eq!(err.kind(), ErrorKind::Unauthenticated);
        assert!(err.hint().is_some());
        let err = map(403, r#"{"errors":[{"reason":"Unauthorized"}]}"#, &[]);
        assert_eq!(err.kind(), ErrorKind::PermissionDenied);
        assert!(err.hint().unwrap_or("").contains("token"));
        assert!(err.hint().unwrap_or("").contains("read-only"));
        let err = map(404, r#"{"errors":[{"reason":"Not found"}]}"#, &[]);
        assert_eq!(err.kind(), ErrorKind::NotFound);
        assert!(err.message().contains("Not found"));
    }

    #[test]
    fn rate_limits_wait_as_asked() {
        let body = r#"{"errors":[{"reason":"Too Many Requests"}]}"#;
        let err = map(
            429,
            body,
            &[("retry-after", "7"), ("x-ratelimit-remaining", "0")],
        );
        assert_eq!(err.kind(), ErrorKind::RateLimited);
        assert!(err.is_retryable());
        assert_eq!(err.retry_after(), Some(Duration::from_secs(7)));

        let reset = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .expect("clock")
            .as_secs()
            + 30;
        let err = map(429, body, &[("x-ratelimit-reset", &reset.to_string())]);
        let wait = err.retry_after().expect("from the reset header");
        assert!(wait > Duration::from_secs(25) && wait <= Duration::from_secs(30));

        let err = map(429, body, &[]);
        assert_eq!(err.retry_after(), Some(Duration::from_secs(1)));
    }

    #[test]
    fn maintenance_is_not_retried_but_plain_503_and_408_are() {
        let err = map(503, "", &[("x-maintenance-mode", "all")]);
        assert_eq!(err.kind(), ErrorKind::Unavailable);
        assert!(!err.is_retryable());
        assert!(err.hint().unwrap_or("").contains("maintenance"));
        for status in [408, 500, 502, 503, 504] {
            let err = map(status, "<html>gateway</html>", &[]);
            assert_eq!(err.kind(), ErrorKind::Unavailable, "{status}");
            assert!(err.is_retryable(), "{status}");
        }
    }

    #[test]
    fn non_json_bodies_are_tolerated() {
        let err = map(500, "Internal Server Error", &[]);
        assert!(err.message().contains("Internal Server Error"));
        let err = map(418, "", &[]);
        assert_eq!(err.kind(), ErrorKind::Unexpected);
        assert_eq!(err.provider(), Some(ID));
    }
}
