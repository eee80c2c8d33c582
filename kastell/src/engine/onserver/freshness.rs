//! How old each server's newest backup is, read from the repository
//! itself (never from this machine's state): any machine with read access
//! to the repositories can tell, on a schedule, that a server stopped
//! backing up, even when the operator's own machine was off.

use std::time::Duration;

use chrono::{DateTime, Utc};
use kastell_core::{Error, Result};
use kastell_repo::RepoSnapshot;
use serde::Serialize;

use super::files::COMPLETE_TAG;
use crate::engine::repos::{self, RepoConfig};
use crate::env::Env;

/// The default `--max-age`: a daily backup plus two hours' slack.
pub(crate) const DEFAULT_MAX_AGE: &str = "26h";

/// How far ahead of this machine's clock a backup's time may be before it
/// is not believed: clocks drift a little, but a snapshot's time is written
/// by the server itself, and one dated far ahead would otherwise keep a
/// server "fresh" long after it stopped backing up (a compromised server
/// silencing the alert with one forged record).
pub(crate) const CLOCK_SKEW_ALLOWED: Duration = Duration::from_secs(15 * 60);

/// Parses an age such as `26h`, `90m`, `2d`, `3600s` or `1d12h`. Refuses
/// anything else, and zero.
pub(crate) fn parse_age(text: &str) -> Result<Duration> {
    let refuse = || {
        Error::invalid_input(format!("{text:?} is not an age"))
            .with_hint("Give it as a number with a unit: 26h, 90m, 2d, 3600s, 1d12h")
    };
    let mut total: u64 = 0;
    let mut digits = String::new();
    for c in text.trim().chars() {
        if c.is_ascii_digit() {
            digits.push(c);
            continue;
        }
        let unit = match c {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            'd' => 86_400,
            _ => return Err(refuse()),
        };
        let n: u64 = digits.parse().map_err(|_| refuse())?;
        total = n
            .checked_mul(unit)
            .and_then(|v| total.checked_add(v))
            .ok_or_else(refuse)?;
        digits.clear();
    }
    if !digits.is_empty() || total == 0 {
        return Err(refuse());
    }
    Ok(Duration::from_secs(total))
}

/// The verdict on one server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Verdict {
    /// Its newest complete backup is within the maximum age.
    Fresh,
    /// Its newest complete backup is older.
    Stale,
    /// The repository holds no complete backup of it.
    Never,
    /// Its newest complete backup is dated ahead of this machine's clock by
    /// more than [`CLOCK_SKEW_ALLOWED`]: a wrong clock on the server or a
    /// forged record; nothing about its real backups is proven.
    Future,
    /// The repository could not be read: nothing is proven.
    Unreadable,
}

/// One server's freshness.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Freshness {
    /// The server.
    pub server: String,
    /// The repository read.
    pub repository: String,
    /// The verdict.
    pub verdict: Verdict,
    /// When its newest complete backup was stored (RFC 3339).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub newest: Option<String>,
    /// Its age in seconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub age_seconds: Option<i64>,
    /// Why the repository could not be read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl Freshness {
    /// Whether this server needs the operator's attention.
    pub(crate) fn is_alarming(&self) -> bool {
        self.verdict != Verdict::Fresh
    }

    /// One line for the alert.
    pub(crate) fn line(&self) -> String {
        match self.verdict {
            Verdict::Fresh | Verdict::Stale => format!(
                "{}: newest backup {} ({} ago)",
                self.server,
                self.newest.as_deref().unwrap_or("-"),
                age_words(self.age_seconds.unwrap_or(0))
            ),
            Verdict::Never => format!("{}: no complete backup in {}", self.server, self.repository),
            Verdict::Future => format!(
                "{}: newest backup dated {}, {} ahead of this machine's clock: the server's \
                 clock is wrong or the record is forged; its backups are not proven fresh",
                self.server,
                self.newest.as_deref().unwrap_or("-"),
                age_words(-self.age_seconds.unwrap_or(0))
            ),
            Verdict::Unreadable => format!(
                "{}: repository {} could not be read: {}",
                self.server,
                self.repository,
                self.error.as_deref().unwrap_or("unknown error")
            ),
        }
    }
}

/// `seconds` as `2d 3h`, `5h 10m` or `42m`.
pub(crate) fn age_words(seconds: i64) -> String {
    let s = seconds.max(0);
    let (d, h, m) = (s / 86_400, (s % 86_400) / 3600, (s % 3600) / 60);
    match (d, h) {
        (0, 0) => format!("{m}m"),
        (0, _) => format!("{h}h {m}m"),
        _ => format!("{d}d {h}h"),
    }
}

/// The time of `server`'s newest complete run among `snapshots` (the
/// closing snapshot of a run that stored every artifact).
pub(crate) fn newest_complete(snapshots: &[RepoSnapshot], server: &str) -> Option<DateTime<Utc>> {
    snapshots
        .iter()
        .filter(|s| s.host == server && s.tags.iter().any(|t| t == COMPLETE_TAG))
        .map(|s| s.time.with_timezone(&Utc))
        .max()
}

/// Judges one server from its newest complete run: fresh within
/// `max_age`, stale past it, and not believed (future) when dated more
/// than [`CLOCK_SKEW_ALLOWED`] ahead of `now`.
pub(crate) fn judge(
    server: &str,
    repository: &str,
    newest: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
    max_age: Duration,
) -> Freshness {
    let (verdict, age) = match newest {
        None => (Verdict::Never, None),
        Some(time) => {
            let age = (now - time).num_seconds();
            let limit = i64::try_from(max_age.as_secs()).unwrap_or(i64::MAX);
            let skew = i64::try_from(CLOCK_SKEW_ALLOWED.as_secs()).unwrap_or(i64::MAX);
            let verdict = if age < -skew {
                Verdict::Future
            } else if age > limit {
                Verdict::Stale
            } else {
                Verdict::Fresh
            };
            (verdict, Some(age))
        }
    };
    Freshness {
        server: server.to_owned(),
        repository: repository.to_owned(),
        verdict,
        newest: newest.map(|t| t.to_rfc3339()),
        age_seconds: age,
        error: None,
    }
}

/// Reads `server`'s newest complete run from `config` (with the
/// agent-facing credential, which only lists) and judges it.
pub(crate) async fn check(
    server: &str,
    config: &RepoConfig,
    env: &Env,
    max_age: Duration,
) -> Freshness {
    let name = server.to_owned();
    let listed = repos::with_open(config, env, move |repo| {
        Ok(newest_complete(&repo.snapshots()?, &name))
    })
    .await;
    match listed {
        Ok(newest) => judge(server, &config.name, newest, Utc::now(), max_age),
        Err(e) => Freshness {
            server: server.to_owned(),
            repository: config.name.clone(),
            verdict: Verdict::Unreadable,
            newest: None,
            age_seconds: None,
            error: Some(e.to_string()),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages_parse_with_units_and_refuse_the_rest() {
        assert_eq!(parse_age("26h").unwrap(), Duration::from_secs(26 * 3600));
        assert_eq!(parse_age("1d12h").unwrap(), Duration::from_secs(36 * 3600));
        assert_eq!(parse_age("90m").unwrap(), Duration::from_secs(5400));
        assert_eq!(parse_age("5s").unwrap(), Duration::from_secs(5));
        for bad in [
            "",
            "26",
            "h",
            "0h",
            "-1h",
            "26x",
            "1.5h",
            "99999999999999999999d",
        ] {
            assert!(parse_age(bad).is_err(), "{bad}");
        }
    }

    fn snapshot(host: &str, time: &str, tags: &[&str]) -> RepoSnapshot {
        RepoSnapshot {
            id: "00".into(),
            time: DateTime::parse_from_rfc3339(time).unwrap(),
            host: host.into(),
            tags: tags.iter().map(|t| (*t).to_owned()).collect(),
            total_bytes: 1,
            added_bytes: 1,
            unchanged_files: 0,
        }
    }

    #[test]
    fn only_complete_runs_of_the_server_count() {
        let snaps = vec![
            snapshot("web", "2026-12-01T03:00:00Z", &["kastell", COMPLETE_TAG]),
            snapshot("web", "2026-12-02T03:00:00Z", &["kastell"]),
            snapshot("db", "2026-12-03T03:00:00Z", &["kastell", COMPLETE_TAG]),
        ];
        let newest = newest_complete(&snaps, "web").unwrap();
        assert_eq!(newest.to_rfc3339(), "2026-12-01T03:00:00+00:00");
        assert!(newest_complete(&snaps, "mail").is_none());
        let now = DateTime::parse_from_rfc3339("2026-12-02T04:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let day = Duration::from_secs(86_400);
        let web = judge("web", "r", Some(newest), now, day);
        assert_eq!(web.verdict, Verdict::Stale);
        assert!(web.is_alarming());
        assert!(web.line().contains("1d 1h ago"), "{}", web.line());
        let fresh = judge(
            "web",
            "r",
            Some(newest),
            now,
            Duration::from_secs(2 * 86_400),
        );
        assert_eq!(fresh.verdict, Verdict::Fresh);
        assert_eq!(judge("mail", "r", None, now, day).verdict, Verdict::Never);
    }

    #[test]
    fn a_backup_dated_ahead_of_the_clock_is_not_believed_beyond_the_skew() {
        let now = DateTime::parse_from_rfc3339("2026-12-02T04:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let day = Duration::from_secs(86_400);
        // A forged record next to a real, stale one: the forged one is
        // the newest, and it raises the alarm rather than hiding it.
        let snaps = vec![
            snapshot("web", "2026-11-20T03:00:00Z", &["kastell", COMPLETE_TAG]),
            snapshot("web", "2099-01-01T00:00:00Z", &["kastell", COMPLETE_TAG]),
        ];
        let newest = newest_complete(&snaps, "web");
        let forged = judge("web", "r", newest, now, day);
        assert_eq!(forged.verdict, Verdict::Future);
        assert!(forged.is_alarming());
        assert!(forged.line().contains("2099-01-01"), "{}", forged.line());
        assert!(forged.line().contains("forged"), "{}", forged.line());
        // A clock a few minutes fast is still fresh; past the skew it is not.
        let ahead = |secs: i64| now + chrono::Duration::seconds(secs);
        let skew = i64::try_from(CLOCK_SKEW_ALLOWED.as_secs()).unwrap();
        assert_eq!(
            judge("web", "r", Some(ahead(300)), now, day).verdict,
            Verdict::Fresh
        );
        assert_eq!(
            judge("web", "r", Some(ahead(skew)), now, day).verdict,
            Verdict::Fresh
        );
        assert_eq!(
            judge("web", "r", Some(ahead(skew + 1)), now, day).verdict,
            Verdict::Future
        );
    }
}
