//! The keep rules of `snapshot-rotate`, as pure logic: which of kastell's
//! snapshots a rule keeps, and whether the schedule the rules imply has
//! been keeping up.

use chrono::{DateTime, Datelike, TimeDelta, Utc};
use kastell_core::{Error, Result};

/// The keep rules; each kept snapshot says which rule kept it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct KeepRules {
    /// The newest N.
    pub last: Option<u32>,
    /// The newest of each of the last N days that have one (UTC).
    pub daily: Option<u32>,
    /// The newest of each of the last N ISO weeks that have one.
    pub weekly: Option<u32>,
    /// The newest of each of the last N months that have one.
    pub monthly: Option<u32>,
}

impl KeepRules {
    /// Refuses rules that keep nothing (none given, or a 0): rotation
    /// never deletes every snapshot.
    pub(crate) fn validate(&self) -> Result<()> {
        let given = [self.last, self.daily, self.weekly, self.monthly];
        if given.iter().all(Option::is_none) {
            return Err(Error::invalid_input(
                "no keep rule given: rotation would delete every kastell snapshot",
            )
            .with_hint("Name at least one of --keep-last, --keep-daily, --keep-weekly, --keep-monthly (e.g. --keep-daily 7 --keep-weekly 4)"));
        }
        if given.contains(&Some(0)) {
            return Err(Error::invalid_input("a keep rule of 0 keeps nothing")
                .with_hint("Give each keep rule at least 1, or leave it out"));
        }
        Ok(())
    }

    /// How old the newest snapshot may be for the finest calendar rule
    /// given: a day's slack over its period (daily 2 days, weekly 8,
    /// monthly 32); `None` when only `last` is given (it implies no
    /// schedule).
    pub(crate) fn freshest_needed(&self) -> Option<(TimeDelta, &'static str)> {
        if self.daily.is_some() {
            Some((TimeDelta::days(2), "--keep-daily"))
        } else if self.weekly.is_some() {
            Some((TimeDelta::days(8), "--keep-weekly"))
        } else if self.monthly.is_some() {
            Some((TimeDelta::days(32), "--keep-monthly"))
        } else {
            None
        }
    }
}

/// A snapshot as the rules see it: when kastell took it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Dated {
    /// Its index in the caller's list.
    pub index: usize,
    /// When it was taken.
    pub at: DateTime<Utc>,
}

/// For each of `snapshots` (any order), the rules that keep it (empty:
/// deleted). The newest of a day, week or month is the one kept for it.
pub(crate) fn apply(rules: &KeepRules, snapshots: &[Dated]) -> Vec<(usize, Vec<String>)> {
    let mut order: Vec<&Dated> = snapshots.iter().collect();
    order.sort_by(|a, b| b.at.cmp(&a.at).then(a.index.cmp(&b.index)));
    let mut reasons: Vec<Vec<String>> = vec![Vec::new(); order.len()];
    if let Some(n) = rules.last {
        for (k, _) in order.iter().enumerate().take(n as usize) {
            reasons[k].push(format!("last {}", k + 1));
        }
    }
    let mut bucketed = |n: Option<u32>, rule: &str, key: &dyn Fn(&DateTime<Utc>) -> String| {
        let Some(mut left) = n else {
            return;
        };
        let mut previous: Option<String> = None;
        for (k, snapshot) in order.iter().enumerate() {
            if left == 0 {
                break;
            }
            let bucket = key(&snapshot.at);
            if previous.as_deref() != Some(bucket.as_str()) {
                reasons[k].push(format!("{rule} {bucket}"));
                left -= 1;
                previous = Some(bucket);
            }
        }
    };
    bucketed(rules.daily, "daily", &|t: &DateTime<Utc>| {
        t.format("%Y-%m-%d").to_string()
    });
    bucketed(rules.weekly, "weekly", &|t: &DateTime<Utc>| {
        let week = t.iso_week();
        format!("{}-W{:02}", week.year(), week.week())
    });
    bucketed(rules.monthly, "monthly", &|t: &DateTime<Utc>| {
        t.format("%Y-%m").to_string()
    });
    order
        .iter()
        .zip(reasons)
        .map(|(s, r)| (s.index, r))
        .collect()
}

/// Refuses when the calendar rules imply a schedule and the newest of
/// `snapshots` is older than it allows (a broken schedule must not delete
/// the last good ones), saying how old it is.
pub(crate) fn guard(rules: &KeepRules, snapshots: &[Dated], now: DateTime<Utc>) -> Result<()> {
    let (Some((limit, rule)), Some(newest)) = (
        rules.freshest_needed(),
        snapshots.iter().map(|s| s.at).max(),
    ) else {
        return Ok(());
    };
    let age = now - newest;
    if age <= limit {
        return Ok(());
    }
    Err(Error::invalid_state(format!(
        "the newest kastell snapshot is {} old, but {rule} implies one at least every {} days: \
         the schedule that takes them looks broken, so nothing is deleted",
        super::super::blast::age_in_words(age.num_seconds()),
        limit.num_days() - 1
    ))
    .with_hint(
        "Take a snapshot (`kastell snapshot create`) and fix the schedule that takes them, then \
         rotate again; `kastell snapshot delete` removes one by hand",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text).unwrap().to_utc()
    }

    fn dated(times: &[&str]) -> Vec<Dated> {
        times
            .iter()
            .enumerate()
            .map(|(index, t)| Dated { index, at: at(t) })
            .collect()
    }

    fn kept(rules: KeepRules, snapshots: &[Dated]) -> Vec<usize> {
        let mut kept: Vec<usize> = apply(&rules, snapshots)
            .into_iter()
            .filter(|(_, r)| !r.is_empty())
            .map(|(i, _)| i)
            .collect();
        kept.sort_unstable();
        kept
    }

    #[test]
    fn each_rule_keeps_the_newest_of_its_periods() {
        let snapshots = dated(&[
            "2026-12-07T03:00:00Z", // 0: today
            "2026-12-07T01:00:00Z", // 1: today, older
            "2026-12-06T03:00:00Z", // 2: yesterday, the week before
            "2026-12-05T03:00:00Z", // 3
            "2026-11-29T03:00:00Z", // 4: November (ISO week 48)
            "2026-11-02T03:00:00Z", // 5: November, older week
            "2026-10-15T03:00:00Z", // 6: October
        ]);
        let last = KeepRules {
            last: Some(2),
            ..KeepRules::default()
        };
        assert_eq!(kept(last, &snapshots), [0, 1]);
        let daily = KeepRules {
            daily: Some(3),
            ..KeepRules::default()
        };
        assert_eq!(kept(daily, &snapshots), [0, 2, 3], "one per day");
        let weekly = KeepRules {
            weekly: Some(2),
            ..KeepRules::default()
        };
        assert_eq!(kept(weekly, &snapshots), [0, 2], "2026-12-07 is a Monday");
        let monthly = KeepRules {
            monthly: Some(3),
            ..KeepRules::default()
        };
        assert_eq!(kept(monthly, &snapshots), [0, 4, 6]);
        let both = KeepRules {
            daily: Some(1),
            monthly: Some(2),
            ..KeepRules::default()
        };
        assert_eq!(kept(both, &snapshots), [0, 4], "the union of the rules");
        let reasons = apply(&both, &snapshots);
        let newest = reasons.iter().find(|(i, _)| *i == 0).unwrap();
        assert_eq!(newest.1, ["daily 2026-12-07", "monthly 2026-12"]);
    }

    #[test]
    fn rules_that_keep_nothing_are_refused() {
        assert!(KeepRules::default().validate().is_err());
        let zero = KeepRules {
            daily: Some(0),
            last: Some(3),
            ..KeepRules::default()
        };
        assert!(zero.validate().is_err());
        let fine = KeepRules {
            last: Some(1),
            ..KeepRules::default()
        };
        assert!(fine.validate().is_ok());
    }

    #[test]
    fn a_schedule_that_stopped_refuses_and_keep_last_implies_none() {
        let now = at("2026-12-07T12:00:00Z");
        let stale = dated(&["2026-12-04T12:00:00Z", "2026-12-03T12:00:00Z"]);
        let daily = KeepRules {
            daily: Some(7),
            ..KeepRules::default()
        };
        let err = guard(&daily, &stale, now).unwrap_err();
        assert!(err.message().contains("3 days old"), "{err}");
        assert!(err.message().contains("--keep-daily"), "{err}");
        let weekly = KeepRules {
            weekly: Some(4),
            ..KeepRules::default()
        };
        assert!(guard(&weekly, &stale, now).is_ok(), "a week allows 3 days");
        let last = KeepRules {
            last: Some(1),
            ..KeepRules::default()
        };
        assert!(guard(&last, &stale, now).is_ok());
        assert!(guard(&daily, &[], now).is_ok(), "nothing to delete");
        let fresh = dated(&["2026-12-06T13:00:00Z"]);
        assert!(guard(&daily, &fresh, now).is_ok());
    }
}
