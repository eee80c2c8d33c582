//! Hetzner's error answers, mapped to the core [`Error`].
//!
//! Hetzner answers `{"error": {"code", "message", "details"}}`; the `code`
//! decides more than the status: 423 `locked` is a busy server (retry, it
//! never took effect) while 423 `protected` is permanent, 409 `conflict` is
//! retried while 409 `uniqueness_error` is not, and 403 `token_readonly`
//! names a read-only token.

use std::time::{Duration, SystemTime};

use kastell_core::{Error, ErrorKind};
use kastell_http::{ApiFailure, headers, status};
use serde_json::Value;

/// Maps one failed Hetzner answer to the core error.
pub(crate) fn map_error(failure: &ApiFailure<'_>) -> Error {
    let provider = failure.provider;
    let code_status = failure.status;
    let (code, message) = envelope(failure);
    let text = match (&code, message) {
        (Some(code), Some(message)) => format!("{code}: {message}"),
        (Some(code), None) => code.clone(),
        (None, Some(message)) => message,
        (None, None) => failure.body_text(),
    };
    let code_str = code.as_deref().unwrap_or("");
    let error = match (code_status, code_str) {
        (423, "protected") => Error::invalid_state(format!("HTTP 423: {text}"))
            .never_applied()
            .with_provider(provider)
            .with_context("http_status", 423)
            .with_hint("The resource has delete/rebuild protection: disable it in the Hetzner Cloud Console first"),
        (423, _) => status::busy(provider, code_status, &text),
        (409, "uniqueness_error") => Error::new(ErrorKind::AlreadyExists, format!("HTTP 409: {text}"))
            .never_applied()
            .with_provider(provider)
            .with_context("http_status", 409)
            .with_hint("Something with that name already exists; choose another name"),
        (409, _) => status::busy(provider, code_status, &text).with_hint(
            "The resource changed while Hetzner handled the request; kastell retries it",
        ),
        (429, _) => status::default_error(provider, code_status, &text)
            .with_retry_after(rate_limit_wait(failure, SystemTime::now())),
        (403, "token_readonly") => status::default_error(provider, code_status, &text).with_hint(
            "This Hetzner API token is read-only: create a Read & Write token in the \
             Cloud Console (Security > API tokens) and set HETZNER_TOKEN",
        ),
        (403, "resource_limit_exceeded") => status::default_error(provider, code_status, &text)
            .with_hint("The project reached a Hetzner resource limit; delete unused snapshots or ask Hetzner to raise it"),
        (503, "maintenance") => status::default_error(provider, code_status, &text)
            .with_hint("Hetzner Cloud is in maintenance; try again later"),
        _ => status::default_error(provider, code_status, &text),
    };
    let error = match code {
        Some(code) => error.with_context("hetzner_code", code),
        None => error,
    };
    match failure
        .headers
        .get("x-correlation-id")
        .and_then(|v| v.to_str().ok())
    {
        Some(id) => error.with_context("correlation_id", id),
        None => error,
    }
}

/// The `code` and `message` of Hetzner's error envelope, when the body is one.
fn envelope(failure: &ApiFailure<'_>) -> (Option<String>, Option<String>) {
    let Some(json) = failure.json() else {
        return (None, None);
    };
    let error = json.get("error").unwrap_or(&Value::Null);
    let field = |name: &str| {
        error
            .get(name)
            .and_then(Value::as_str)
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
    };
    (field("code"), field("message"))
}

/// How long a 429 asks us to wait.
///
/// `Retry-After` wins when present. Hetzner documents none: it sends
/// `RateLimit-Limit`, `RateLimit-Remaining` and `RateLimit-Reset`, the Unix
/// time at which the bucket is full again. The bucket refills evenly, so the
/// wait for one request is the time to full recovery divided by the missing
/// requests (one second at Hetzner's 3600/hour), never under one second.
fn rate_limit_wait(failure: &ApiFailure<'_>, now: SystemTime) -> Duration {
    const FLOOR: Duration = Duration::from_secs(1);
    if let Some(after) = headers::retry_after(failure.headers, now) {
        return after;
    }
    let Some(full) = headers::reset_after(failure.headers, "ratelimit-reset", now) else {
        return FLOOR;
    };
    let number = |name: &str| -> Option<u64> {
        failure
            .headers
            .get(name)?
            .to_str()
            .ok()?
            .trim()
            .parse()
            .ok()
    };
    let wait = match (number("ratelimit-limit"), number("ratelimit-remaining")) {
        (Some(limit), Some(remaining)) if limit > remaining => {
            full.div_f64((limit - remaining) as f64)
        }
        _ => full,
    };
    wait.max(FLOOR)
}

#[cfg(test)]
mod tests;
