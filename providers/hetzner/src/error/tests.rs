//! The Hetzner error table.

use super::*;
use crate::ID;

fn with_failure<R>(
    status: u16,
    body: &str,
    pairs: &[(&str, String)],
    check: impl FnOnce(&ApiFailure<'_>) -> R,
) -> R {
    let headers = pairs
        .iter()
        .map(|(k, v)| (k.parse().unwrap(), v.parse().unwrap()))
        .collect();
    check(&ApiFailure {
        provider: ID,
        status,
        headers: &headers,
        body: body.as_bytes(),
    })
}

fn map(status: u16, body: &str) -> Error {
    with_failure(status, body, &[], map_error)
}

fn hetzner(code: &str, message: &str) -> String {
    format!(r#"{{"error": {{"code": "{code}", "message": "{message}", "details": {{}}}}}}"#)
}

#[test]
fn the_table() {
    // (status, code, kind, retryable, may have taken effect)
    let cases = [
        (400, "invalid_input", ErrorKind::InvalidInput, false, false),
        (
            401,
            "unauthorized",
            ErrorKind::Unauthenticated,
            false,
            false,
        ),
        (403, "forbidden", ErrorKind::PermissionDenied, false, false),
        (404, "not_found", ErrorKind::NotFound, false, false),
        (409, "conflict", ErrorKind::InvalidState, true, false),
        (
            409,
            "uniqueness_error",
            ErrorKind::AlreadyExists,
            false,
            false,
        ),
        (
            422,
            "unsupported_error",
            ErrorKind::InvalidInput,
            false,
            false,
        ),
        (423, "locked", ErrorKind::InvalidState, true, false),
        (423, "protected", ErrorKind::InvalidState, false, false),
        (
            429,
            "rate_limit_exceeded",
            ErrorKind::RateLimited,
            true,
            false,
        ),
        (500, "server_error", ErrorKind::Unavailable, true, true),
        (502, "bad_gateway", ErrorKind::Unavailable, true, true),
        (503, "unavailable", ErrorKind::Unavailable, true, true),
        (504, "timeout", ErrorKind::Unavailable, true, true),
    ];
    for (status, code, kind, retryable, applied) in cases {
        let err = map(status, &hetzner(code, "something"));
        assert_eq!(err.kind(), kind, "{status} {code}");
        assert_eq!(err.is_retryable(), retryable, "{status} {code}");
        assert_eq!(err.may_have_taken_effect(), applied, "{status} {code}");
        assert_eq!(err.provider(), Some(ID));
        assert!(err.message().contains(code), "{}", err.message());
        assert!(
            err.context()
                .iter()
                .any(|(k, v)| *k == "hetzner_code" && v == code)
        );
    }
}

#[test]
fn hints_name_the_cause() {
    let ro = map(
        403,
        &hetzner("token_readonly", "only allowed to perform GET requests"),
    );
    assert_eq!(ro.kind(), ErrorKind::PermissionDenied);
    assert!(ro.hint().unwrap().contains("read-only"));
    assert!(ro.hint().unwrap().contains("token"));
    assert!(map(401, &hetzner("unauthorized", "x")).hint().is_some());
    assert!(
        map(423, &hetzner("protected", "x"))
            .hint()
            .unwrap()
            .contains("protection")
    );
    assert!(
        map(423, &hetzner("locked", "x"))
            .hint()
            .unwrap()
            .contains("retries")
    );
}

#[test]
fn non_json_bodies_are_tolerated() {
    let err = map(502, "<html><body><h1>502 Bad Gateway</h1></body></html>");
    assert_eq!(err.kind(), ErrorKind::Unavailable);
    assert!(err.message().contains("502 Bad Gateway"));
    let err = map(504, "");
    assert_eq!(err.kind(), ErrorKind::Unavailable);
    assert_eq!(err.message(), "HTTP 504");
    let err = map(404, r#"{"unexpected": true}"#);
    assert_eq!(err.kind(), ErrorKind::NotFound);
    // A bare 423 without Hetzner's envelope is still the busy answer.
    assert!(map(423, "locked").is_retryable());
}

#[test]
fn correlation_ids_are_kept() {
    let err = with_failure(
        500,
        &hetzner("server_error", "x"),
        &[("x-correlation-id", "abc-123".into())],
        map_error,
    );
    assert!(
        err.context()
            .iter()
            .any(|(k, v)| *k == "correlation_id" && v == "abc-123")
    );
}

#[test]
fn rate_limit_waits() {
    let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
    let wait = |pairs: &[(&str, String)]| with_failure(429, "", pairs, |f| rate_limit_wait(f, now));
    // Retry-After wins (the conformance trial's injected 429).
    let both = [
        ("retry-after", "7".to_owned()),
        ("ratelimit-limit", "3600".to_owned()),
        ("ratelimit-remaining", "0".to_owned()),
        ("ratelimit-reset", "1000007".to_owned()),
    ];
    assert_eq!(wait(&both), Duration::from_secs(7));
    // Hetzner's documented answer: bucket empty, full again in an hour, so
    // one request is possible in a second.
    let empty = [
        ("ratelimit-limit", "3600".to_owned()),
        ("ratelimit-remaining", "0".to_owned()),
        ("ratelimit-reset", "1003600".to_owned()),
    ];
    assert_eq!(wait(&empty), Duration::from_secs(1));
    // A slower bucket: 10 missing, full in 50 s: 5 s per request.
    let slow = [
        ("ratelimit-limit", "10".to_owned()),
        ("ratelimit-remaining", "0".to_owned()),
        ("ratelimit-reset", "1000050".to_owned()),
    ];
    assert_eq!(wait(&slow), Duration::from_secs(5));
    // Only the reset: wait for it.
    assert_eq!(
        wait(&[("ratelimit-reset", "1000004".to_owned())]),
        Duration::from_secs(4)
    );
    // Nothing, or a reset in the past: the floor.
    assert_eq!(wait(&[]), Duration::from_secs(1));
    assert_eq!(
        wait(&[("ratelimit-reset", "10".to_owned())]),
        Duration::from_secs(1)
    );
    let mapped = with_failure(
        429,
        &hetzner("rate_limit_exceeded", "limit reached"),
        &both,
        map_error,
    );
    assert_eq!(mapped.kind(), ErrorKind::RateLimited);
    assert_eq!(mapped.retry_after(), Some(Duration::from_secs(7)));
}
