//! Times as listings show them: when (`2026-01-01 03:00:00`, UTC, to the
//! second) and how long ago (`3 h ago`), from the timestamps kastell
//! records (RFC 3339, or a backup id's `YYYY-MM-DD_HH-MM-SS-mmm`).

use chrono::{DateTime, NaiveDateTime, Utc};

/// `text` as a time: RFC 3339 (any offset, any fraction) or a backup id's
/// form (UTC); `None` for anything else.
pub(crate) fn parse(text: &str) -> Option<DateTime<Utc>> {
    let text = text.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Some(t.with_timezone(&Utc));
    }
    NaiveDateTime::parse_from_str(text, "%Y-%m-%d_%H-%M-%S-%3f")
        .or_else(|_| NaiveDateTime::parse_from_str(text, "%Y-%m-%d_%H-%M-%S"))
        .ok()
        .map(|t| t.and_utc())
}

/// `time` to the second, in UTC: `2026-01-01 03:00:00`.
pub(crate) fn moment(time: DateTime<Utc>) -> String {
    time.format("%Y-%m-%d %H:%M:%S").to_string()
}

/// A recorded timestamp as [`moment`] shows it; as it is when it is no
/// time kastell knows.
pub(crate) fn moment_of(text: &str) -> String {
    parse(text).map_or_else(|| text.to_owned(), moment)
}

/// How long before `now` `time` was, in the largest whole unit: `just
/// now`, `42 s ago`, `5 min ago`, `3 h ago`, `12 d ago` (a time ahead of
/// `now`, from another machine's clock, is `just now`).
pub(crate) fn ago(time: DateTime<Utc>, now: DateTime<Utc>) -> String {
    let secs = (now - time).num_seconds();
    match secs {
        ..5 => "just now".to_owned(),
        5..60 => format!("{secs} s ago"),
        60..3_600 => format!("{} min ago", secs / 60),
        3_600..172_800 => format!("{} h ago", secs / 3_600),
        _ => format!("{} d ago", secs / 86_400),
    }
}

/// A recorded timestamp's age now ([`ago`]); empty when it is no time.
pub(crate) fn age_of(text: &str) -> String {
    parse(text).map_or_else(String::new, |t| ago(t, Utc::now()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recorded_times_read_and_show_to_the_second() {
        let id = parse("2026-01-02_03-04-05-678").unwrap();
        assert_eq!(moment(id), "2026-01-02 03:04:05");
        let nanos = parse("2026-01-02T04:04:05.123456789+01:00").unwrap();
        assert_eq!(moment(nanos), "2026-01-02 03:04:05");
        assert_eq!(moment_of("not a time"), "not a time");
        assert_eq!(age_of("not a time"), "");
    }

    #[test]
    fn ages_are_in_the_largest_whole_unit() {
        let now = parse("2026-01-10T12:00:00Z").unwrap();
        let at = |s: &str| ago(parse(s).unwrap(), now);
        assert_eq!(at("2026-01-10T12:00:03Z"), "just now");
        assert_eq!(at("2026-01-10T11:59:18Z"), "42 s ago");
        assert_eq!(at("2026-01-10T11:55:00Z"), "5 min ago");
        assert_eq!(at("2026-01-10T09:00:00Z"), "3 h ago");
        assert_eq!(at("2026-01-09T00:00:00Z"), "36 h ago");
        assert_eq!(at("2025-12-29T12:00:00Z"), "12 d ago");
    }
}
