//! A rollout's plan: which servers form the canary, how the rest splits
//! into batches, and how many failures stop it. Pure: the same fleet and
//! settings give the same plan, which `--dry-run` prints.

use kastell_core::{Error, Result};

use crate::state::store::ServerRecord;

/// A count of servers, or a share of them (`5`, `25%`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Size {
    /// This many servers.
    Count(usize),
    /// This percentage (1 to 100) of the servers, rounded up.
    Percent(u8),
}

impl Size {
    /// Parses `5` or `25%`. Refuses zero, a percentage above 100 and
    /// anything else, saying which forms are accepted.
    pub fn parse(text: &str) -> std::result::Result<Self, String> {
        let bad = || format!("{text:?} is neither a count (5) nor a percentage (25%) above 0");
        let text = text.trim();
        if let Some(pct) = text.strip_suffix('%') {
            return match pct.trim().parse::<u8>() {
                Ok(p @ 1..=100) => Ok(Self::Percent(p)),
                _ => Err(bad()),
            };
        }
        match text.parse::<usize>() {
            Ok(n) if n > 0 => Ok(Self::Count(n)),
            _ => Err(bad()),
        }
    }

    /// How many of `total` servers this is: at least one (of a non-empty
    /// fleet), at most `total`; a percentage is rounded up.
    pub fn of(self, total: usize) -> usize {
        let n = match self {
            Self::Count(n) => n,
            Self::Percent(p) => (total * usize::from(p)).div_ceil(100),
        };
        n.clamp(usize::from(total > 0), total)
    }
}

impl std::fmt::Display for Size {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Count(n) => write!(f, "{n}"),
            Self::Percent(p) => write!(f, "{p}%"),
        }
    }
}

/// Which servers go first, alone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Canary {
    /// The first N servers of the fleet, in its order.
    Count(usize),
    /// Every server with this tag.
    Tag(String),
}

impl std::fmt::Display for Canary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Count(n) => write!(f, "{n}"),
            Self::Tag(tag) => write!(f, "tag {tag}"),
        }
    }
}

/// How a rollout goes: the canary, the batches, the failure budget, the
/// pause between batches and how many servers of a batch run at once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shape {
    /// The canary.
    pub canary: Canary,
    /// The size of each batch after the canary.
    pub batch: Size,
    /// How many failures (of the whole fleet) stop the rollout.
    pub max_failures: Size,
    /// Seconds to wait between two batches.
    pub pause_secs: u64,
    /// Servers of one batch worked on at once.
    pub concurrency: usize,
}

impl Default for Shape {
    /// What a careful operator wants: one canary, then a quarter of the
    /// fleet at a time, stopping at the first failure.
    fn default() -> Self {
        Self {
            canary: Canary::Count(1),
            batch: Size::Percent(25),
            max_failures: Size::Count(1),
            pause_secs: 0,
            concurrency: 32,
        }
    }
}

impl Shape {
    /// The stages of a rollout over `servers` (in fleet order): the canary
    /// first, then the rest in batches of [`Shape::batch`] of what is left.
    /// Refuses an empty fleet and a canary tag no server has.
    pub fn stages(&self, servers: &[ServerRecord]) -> Result<Vec<Vec<ServerRecord>>> {
        if servers.is_empty() {
            return Err(Error::not_found("No servers in the fleet")
                .with_hint("Add one with `kastell server add`"));
        }
        let (canary, rest): (Vec<ServerRecord>, Vec<ServerRecord>) = match &self.canary {
            Canary::Count(n) => {
                let n = (*n).clamp(1, servers.len());
                (servers[..n].to_vec(), servers[n..].to_vec())
            }
            Canary::Tag(tag) => {
                let (tagged, rest): (Vec<_>, Vec<_>) = servers
                    .iter()
                    .cloned()
                    .partition(|s| s.tags.iter().any(|t| t == tag));
                if tagged.is_empty() {
                    return Err(Error::invalid_input(format!(
                        "No server has the tag {}, so there is no canary",
                        crate::state::store::display_safe(tag)
                    ))
                    .with_hint("Tag a server with it in servers.json, or use --canary N"));
                }
                (tagged, rest)
            }
        };
        let mut stages = vec![canary];
        let size = self.batch.of(rest.len()).max(1);
        stages.extend(rest.chunks(size).map(<[ServerRecord]>::to_vec));
        Ok(stages)
    }

    /// How many failures of `total` servers stop the rollout (at least
    /// one).
    pub fn budget(&self, total: usize) -> usize {
        self.max_failures.of(total).max(1)
    }
}

/// The name of stage `index` of `count` (`canary`, `batch 2/4`).
pub fn stage_name(index: usize, count: usize) -> String {
    if index == 0 {
        "canary".to_owned()
    } else {
        format!("batch {index}/{}", count.saturating_sub(1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fleet(n: usize) -> Vec<ServerRecord> {
        (0..n)
            .map(|i| {
                let mut r =
                    ServerRecord::new(format!("id-{i}"), format!("s{i}"), format!("10.0.0.{i}"));
                if i % 4 == 3 {
                    r.tags.push("canary".into());
                }
                r
            })
            .collect()
    }

    fn names(stages: &[Vec<ServerRecord>]) -> Vec<Vec<&str>> {
        stages
            .iter()
            .map(|s| s.iter().map(|r| r.name.as_str()).collect())
            .collect()
    }

    #[test]
    fn sizes_parse_as_counts_or_percentages_and_never_zero() {
        assert_eq!(Size::parse("5"), Ok(Size::Count(5)));
        assert_eq!(Size::parse("25%"), Ok(Size::Percent(25)));
        for bad in ["0", "0%", "101%", "-1", "x", "", "2.5"] {
            assert!(Size::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(Size::Percent(25).of(10), 3);
        assert_eq!(Size::Percent(5).of(100), 5);
        assert_eq!(Size::Percent(1).of(3), 1);
        assert_eq!(Size::Count(50).of(4), 4);
        assert_eq!(Size::Count(3).of(0), 0);
    }

    #[test]
    fn the_default_is_one_canary_then_quarters_stopping_at_the_first_failure() {
        let shape = Shape::default();
        let stages = shape.stages(&fleet(9)).unwrap();
        assert_eq!(
            names(&stages),
            [
                vec!["s0"],
                vec!["s1", "s2"],
                vec!["s3", "s4"],
                vec!["s5", "s6"],
                vec!["s7", "s8"]
            ]
        );
        assert_eq!(shape.budget(9), 1);
        assert_eq!(stage_name(0, 5), "canary");
        assert_eq!(stage_name(2, 5), "batch 2/4");
    }

    #[test]
    fn a_canary_tag_takes_every_tagged_server_and_an_unknown_tag_is_refused() {
        let shape = Shape {
            canary: Canary::Tag("canary".into()),
            batch: Size::Count(3),
            max_failures: Size::Percent(10),
            ..Shape::default()
        };
        let stages = shape.stages(&fleet(8)).unwrap();
        assert_eq!(
            names(&stages),
            [
                vec!["s3", "s7"],
                vec!["s0", "s1", "s2"],
                vec!["s4", "s5", "s6"]
            ]
        );
        assert_eq!(shape.budget(8), 1);
        assert_eq!(shape.budget(100), 10);
        let none = Shape {
            canary: Canary::Tag("nope".into()),
            ..Shape::default()
        };
        assert!(
            none.stages(&fleet(3))
                .unwrap_err()
                .message()
                .contains("nope")
        );
        assert!(Shape::default().stages(&[]).is_err());
    }

    #[test]
    fn a_fleet_of_one_is_its_own_canary() {
        let stages = Shape::default().stages(&fleet(1)).unwrap();
        assert_eq!(names(&stages), [vec!["s0"]]);
    }
}
