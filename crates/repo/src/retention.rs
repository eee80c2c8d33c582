//! Retention: which backups a `keep-*` policy keeps, and why.
//!
//! The rules are restic's `forget --keep-*` ones, so a policy means the same
//! here and there: backups are taken newest first; `keep-last N` keeps the
//! N newest; `keep-daily N` keeps the newest backup of each of the N newest
//! days that have one (hourly, weekly by ISO week, monthly and yearly
//! alike), each in the backup's own local time. A backup is kept when any
//! rule keeps it. On top of restic's rules, kastell never lets a policy
//! remove the newest verified backup of a server.

use chrono::{DateTime, Datelike, FixedOffset, Offset, Timelike};
use kastell_core::{Error, Result};
use serde::{Deserialize, Serialize};

/// When a snapshot or backup was taken, in the time zone it was taken in.
pub type SnapshotTime = DateTime<FixedOffset>;

/// Converts rustic_core's time into a [`SnapshotTime`] (the same instant
/// and UTC offset).
pub(crate) fn time_of(zoned: &jiff::Zoned) -> SnapshotTime {
    let offset =
        FixedOffset::east_opt(zoned.offset().seconds()).unwrap_or_else(|| chrono::Utc.fix());
    let stamp = zoned.timestamp();
    DateTime::from_timestamp(stamp.as_second(), stamp.subsec_nanosecond().unsigned_abs())
        .unwrap_or_default()
        .with_timezone(&offset)
}

/// A retention policy: how many of each period's newest backup to keep.
/// A policy with no rule keeps everything.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct KeepPolicy {
    /// Keep the newest N backups.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keep_last: Option<u32>,
    /// Keep the newest backup of each of the newest N hours.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keep_hourly: Option<u32>,
    /// Keep the newest backup of each of the newest N days.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keep_daily: Option<u32>,
    /// Keep the newest backup of each of the newest N ISO weeks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keep_weekly: Option<u32>,
    /// Keep the newest backup of each of the newest N months.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keep_monthly: Option<u32>,
    /// Keep the newest backup of each of the newest N years.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keep_yearly: Option<u32>,
}

/// A backup a policy is applied to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    /// Its id (a backup id or a snapshot id).
    pub id: String,
    /// When it was taken.
    pub time: SnapshotTime,
    /// Whether it is known to restore (checked or drilled).
    pub verified: bool,
}

/// What a policy decided for one backup.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PruneDecision {
    /// The backup's id.
    pub id: String,
    /// When it was taken.
    pub time: SnapshotTime,
    /// Whether it stays.
    pub keep: bool,
    /// Why it stays (`daily snapshot`, …, `newest verified backup`), or
    /// why it goes.
    pub reasons: Vec<String>,
}

/// The reason kastell adds to restic's.
pub const NEWEST_VERIFIED: &str = "newest verified backup";

/// The reason given for a backup no rule keeps.
pub const NO_RULE_KEEPS: &str = "no rule keeps it";

impl KeepPolicy {
    /// Whether no rule is set (then nothing is ever removed).
    pub fn is_empty(&self) -> bool {
        self.rules().iter().all(|(count, _, _)| count.is_none())
    }

    /// Refuses a policy whose every count is zero: it would remove every
    /// backup but the newest verified one, which is never what was meant.
    pub fn validate(&self) -> Result<()> {
        let rules = self.rules();
        let set: Vec<_> = rules.iter().filter_map(|(count, _, _)| *count).collect();
        if !set.is_empty() && set.iter().all(|count| *count == 0) {
            return Err(Error::invalid_input(
                "every keep-* count of the policy is 0, which would remove every backup",
            )
            .with_hint("Give at least one keep-* rule a count of 1 or more"));
        }
        Ok(())
    }

    /// Decides, for every candidate, whether it is kept and why, newest
    /// first. A policy without rules keeps everything.
    pub fn plan(&self, candidates: &[Candidate]) -> Vec<PruneDecision> {
        let mut sorted: Vec<&Candidate> = candidates.iter().collect();
        sorted.sort_by(|a, b| b.time.cmp(&a.time).then_with(|| b.id.cmp(&a.id)));
        let newest_verified = sorted.iter().find(|c| c.verified).map(|c| c.id.clone());

        let mut buckets: Vec<Bucket> = self
            .rules()
            .into_iter()
            .filter_map(|(count, key, reason)| {
                count.map(|left| Bucket {
                    left,
                    key,
                    reason,
                    last: None,
                })
            })
            .collect();
        let empty = buckets.is_empty();

        sorted
            .into_iter()
            .enumerate()
            .map(|(position, candidate)| {
                let mut reasons = Vec::new();
                if empty {
                    reasons.push("no retention policy".to_owned());
                }
                for bucket in &mut buckets {
                    if bucket.left == 0 {
                        continue;
                    }
                    let value = (bucket.key)(&candidate.time, position);
                    if bucket.last != Some(value) {
                        bucket.last = Some(value);
                        bucket.left -= 1;
                        reasons.push(bucket.reason.to_owned());
                    }
                }
                if reasons.is_empty() && newest_verified.as_deref() == Some(candidate.id.as_str()) {
                    reasons.push(NEWEST_VERIFIED.to_owned());
                }
                let keep = !reasons.is_empty();
                if !keep {
                    reasons.push(NO_RULE_KEEPS.to_owned());
                }
                PruneDecision {
                    id: candidate.id.clone(),
                    time: candidate.time,
                    keep,
                    reasons,
                }
            })
            .collect()
    }

    fn rules(&self) -> [(Option<u32>, BucketKey, &'static str); 6] {
        [
            (
                self.keep_last,
                |_, position| position as i64,
                "last snapshot",
            ),
            (self.keep_hourly, hour_of, "hourly snapshot"),
            (self.keep_daily, day_of, "daily snapshot"),
            (self.keep_weekly, week_of, "weekly snapshot"),
            (self.keep_monthly, month_of, "monthly snapshot"),
            (
                self.keep_yearly,
                |t, _| i64::from(t.year()),
                "yearly snapshot",
            ),
        ]
    }
}

/// The period a backup falls in, for one rule (its position in the
/// newest-first list for `keep-last`).
type BucketKey = fn(&SnapshotTime, usize) -> i64;

struct Bucket {
    left: u32,
    key: BucketKey,
    reason: &'static str,
    last: Option<i64>,
}

fn month_of(t: &SnapshotTime, _: usize) -> i64 {
    i64::from(t.year()) * 100 + i64::from(t.month())
}

fn day_of(t: &SnapshotTime, position: usize) -> i64 {
    month_of(t, position) * 100 + i64::from(t.day())
}

fn hour_of(t: &SnapshotTime, position: usize) -> i64 {
    day_of(t, position) * 100 + i64::from(t.hour())
}

fn week_of(t: &SnapshotTime, _: usize) -> i64 {
    let week = t.iso_week();
    i64::from(week.year()) * 100 + i64::from(week.week())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(day: &str, verified: bool) -> Candidate {
        Candidate {
            id: day.to_owned(),
            time: DateTime::parse_from_rfc3339(&format!("{day}T12:00:00+00:00")).unwrap(),
            verified,
        }
    }

    fn kept(decisions: &[PruneDecision]) -> Vec<&str> {
        decisions
            .iter()
            .filter(|d| d.keep)
            .map(|d| d.id.as_str())
            .collect()
    }

    #[test]
    fn daily_weekly_monthly_keep_the_newest_of_each_period() {
        let candidates: Vec<_> = [
            "2026-01-01",
            "2026-01-15",
            "2026-02-01",
            "2026-02-20",
            "2026-03-01",
            "2026-03-02",
            "2026-03-03",
        ]
        .iter()
        .map(|d| at(d, false))
        .collect();
        let policy = KeepPolicy {
            keep_daily: Some(2),
            keep_weekly: Some(1),
            keep_monthly: Some(2),
            ..KeepPolicy::default()
        };
        let plan = policy.plan(&candidates);
        assert_eq!(kept(&plan), ["2026-03-03", "2026-03-02", "2026-02-20"]);
        assert_eq!(
            plan[0].reasons,
            ["daily snapshot", "weekly snapshot", "monthly snapshot"]
        );
        assert_eq!(plan.last().unwrap().reasons, [NO_RULE_KEEPS]);
    }

    #[test]
    fn the_newest_verified_backup_is_never_removed() {
        let candidates = vec![
            at("2026-03-03", false),
            at("2026-03-02", false),
            at("2026-01-10", true),
            at("2026-01-09", true),
        ];
        let policy = KeepPolicy {
            keep_last: Some(1),
            ..KeepPolicy::default()
        };
        let plan = policy.plan(&candidates);
        assert_eq!(kept(&plan), ["2026-03-03", "2026-01-10"]);
        assert_eq!(plan[2].reasons, [NEWEST_VERIFIED]);
    }

    #[test]
    fn no_policy_keeps_everything_and_all_zero_is_refused() {
        let candidates = vec![at("2026-03-03", false), at("2026-03-02", false)];
        assert!(KeepPolicy::default().is_empty());
        assert_eq!(kept(&KeepPolicy::default().plan(&candidates)).len(), 2);
        let zero = KeepPolicy {
            keep_last: Some(0),
            keep_daily: Some(0),
            ..KeepPolicy::default()
        };
        assert!(zero.validate().is_err());
        assert!(
            KeepPolicy {
                keep_last: Some(3),
                ..KeepPolicy::default()
            }
            .validate()
            .is_ok()
        );
    }

    #[test]
    fn weeks_are_iso_weeks_across_a_year_end() {
        // 2026-12-31 (Thu) and 2027-01-01 (Fri) are in ISO week 2026-W53.
        let candidates = vec![at("2027-01-01", false), at("2026-12-31", false)];
        let policy = KeepPolicy {
            keep_weekly: Some(2),
            ..KeepPolicy::default()
        };
        assert_eq!(kept(&policy.plan(&candidates)), ["2027-01-01"]);
    }

    #[test]
    fn the_policy_reads_restics_option_names() {
        let policy: KeepPolicy =
            serde_json::from_str(r#"{"keep-daily": 7, "keep-weekly": 4}"#).unwrap();
        assert_eq!(policy.keep_daily, Some(7));
        assert!(serde_json::from_str::<KeepPolicy>(r#"{"keep-dayly": 7}"#).is_err());
    }
}
