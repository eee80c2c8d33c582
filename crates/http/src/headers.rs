//! Reading the rate-limit headers vendors send.

use std::time::{Duration, SystemTime};

use reqwest::header::HeaderMap;

/// `Retry-After` as a wait: delta seconds, or an HTTP date relative to
/// `now`. `None` when absent or unparsable; a date in the past is zero.
pub fn retry_after(headers: &HeaderMap, now: SystemTime) -> Option<Duration> {
    let value = headers.get("retry-after")?.to_str().ok()?.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let when = httpdate::parse_http_date(value).ok()?;
    Some(when.duration_since(now).unwrap_or(Duration::ZERO))
}

/// A reset header holding Unix seconds (`RateLimit-Reset`,
/// `X-RateLimit-Reset`), as a wait from `now`. A reset in the past is zero.
pub fn reset_after(headers: &HeaderMap, name: &str, now: SystemTime) -> Option<Duration> {
    let value = headers.get(name)?.to_str().ok()?.trim();
    let epoch: u64 = value.parse().ok()?;
    let at = SystemTime::UNIX_EPOCH + Duration::from_secs(epoch);
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    #[test]
    fn retry_after_seconds_and_dates() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        let mut h = HeaderMap::new();
        assert_eq!(retry_after(&h, now), None);
        h.insert("retry-after", HeaderValue::from_static("29"));
        assert_eq!(retry_after(&h, now), Some(Duration::from_secs(29)));
        let later = httpdate::fmt_http_date(now + Duration::from_secs(5));
        h.insert("retry-after", HeaderValue::from_str(&later).unwrap());
        assert_eq!(retry_after(&h, now), Some(Duration::from_secs(5)));
        let past = httpdate::fmt_http_date(now - Duration::from_secs(5));
        h.insert("retry-after", HeaderValue::from_str(&past).unwrap());
        assert_eq!(retry_after(&h, now), Some(Duration::ZERO));
        h.insert("retry-after", HeaderValue::from_static("soon"));
        assert_eq!(retry_after(&h, now), None);
    }

    #[test]
    fn reset_epochs() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000);
        let mut h = HeaderMap::new();
        h.insert("ratelimit-reset", HeaderValue::from_static("1003"));
        assert_eq!(
            reset_after(&h, "ratelimit-reset", now),
            Some(Duration::from_secs(3))
        );
        h.insert("ratelimit-reset", HeaderValue::from_static("10"));
        assert_eq!(
            reset_after(&h, "ratelimit-reset", now),
            Some(Duration::ZERO)
        );
        assert_eq!(reset_after(&h, "x-ratelimit-reset", now), None);
    }
}
