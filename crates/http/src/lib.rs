//! # kastell-http: the client every cloud provider crate shares
//!
//! [`ApiClient`] sends JSON requests with a bearer token to one provider's
//! API and runs them through the core [`RetryPolicy`](kastell_core::RetryPolicy).
//! What differs between vendors stays in the vendor crate: each passes one
//! [`ErrorMapper`] that turns a failed answer (status, headers, body) into the
//! core [`Error`](kastell_core::Error). Everything else is shared here:
//!
//! - transport failures: a refused connection is `Unavailable` and provably
//!   not applied; a timeout is `Timeout` and maybe applied;
//! - [`headers`]: `Retry-After` (seconds or HTTP date) and rate-limit reset
//!   headers;
//! - [`status`]: the default status-to-kind table vendors refine;
//! - [`paginate`]: collecting every page, with a guard against endless loops;
//! - [`path_segment`]: percent-encoding ids such as Linode's `private/123`.
//!
//! The token is held as a [`Secret`](kastell_core::Secret): it is sent in the
//! `Authorization` header and appears in no error, log line or `Debug` output.

mod client;
pub mod headers;
mod pages;
pub mod status;

pub use client::{
    ApiClient, ApiFailure, ApiRequest, ApiResponse, ClientConfig, DEFAULT_TIMEOUT, ErrorMapper,
};
pub use pages::{MAX_PAGES, paginate};

/// Percent-encodes one path segment (`private/123` becomes `private%2F123`).
pub fn path_segment(segment: &str) -> String {
    let mut out = String::with_capacity(segment.len());
    for byte in segment.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~') {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn path_segments_are_encoded() {
        assert_eq!(super::path_segment("private/123"), "private%2F123");
        assert_eq!(super::path_segment("a b?#"), "a%20b%3F%23");
        assert_eq!(super::path_segment("42"), "42");
    }
}
