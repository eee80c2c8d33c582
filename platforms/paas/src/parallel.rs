//! Whether a backup dumps the database in parallel (`pg_dump -Fd -j N`)
//! and with how many jobs, from what one command inside the database
//! container tells ([`crate::commands::pg_dump_facts`]).
//!
//! A parallel dump writes the whole dump into a temporary directory on the
//! server before any byte is sent, so it is chosen only where it pays and
//! where it fits: a large database with several large tables, spare
//! cores and connections, room for the dump, and a link fast enough that
//! one `pg_dump` is what holds the single stream back. Everything else
//! streams one dump straight from `pg_dump`, writing nothing on the server.
//!
//! When it pays: one stream of size S takes S / min(d, L), with d what one
//! dump job produces per second and L what the link carries; a parallel
//! dump with j jobs takes S / (j·d) to write and then S / L to send. It is
//! the faster only when L > d · j / (j − 1): never on a link slower than
//! one dump job (BENCHMARKS.md §2d measured it).

use kastell_core::wire::{DumpJobs, MAX_DUMP_JOBS};

/// The most jobs `auto` picks: beyond this a dump is bound by the disk
/// and the link, not by pg_dump.
const AUTO_MAX_JOBS: u16 = 8;

/// The first server version whose exported snapshots let the jobs of
/// `pg_dump -j` share one consistent view of the database (9.2).
const MIN_SERVER_VERSION: u32 = 90_200;

/// The first version that exports snapshots on a standby (10).
const MIN_STANDBY_VERSION: u32 = 100_000;

/// What the platform settings and the link bring to the decision.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Limits {
    /// `auto` parallelises only databases of at least this many bytes.
    pub auto_min_bytes: u64,
    /// What one dump job produces per second on this server (assumed).
    pub job_bytes_per_sec: f64,
    /// What the link sample measured, bytes per second, when one was taken.
    pub link_bytes_per_sec: Option<f64>,
}

/// What the database container reported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DbFacts {
    /// `pg_database_size` of the platform's database.
    pub size_bytes: u64,
    /// `server_version_num` (`150004`).
    pub server_version: u32,
    /// Whether the server is a standby.
    pub in_recovery: bool,
    /// Connections still free for this user (may be negative).
    pub free_connections: i64,
    /// Tables and materialized views of at least 8 MiB.
    pub big_tables: u32,
    /// Cores the container sees.
    pub cores: u32,
    /// Free bytes where the temporary directory would go.
    pub free_temp_bytes: u64,
}

impl DbFacts {
    /// Parses the three lines of [`crate::commands::pg_dump_facts`];
    /// `None` when they are not what it prints.
    pub(crate) fn parse(text: &str) -> Option<Self> {
        let mut lines = text.lines().map(str::trim).filter(|l| !l.is_empty());
        let fields: Vec<&str> = lines.next()?.split('|').collect();
        let [size, version, recovery, free, big] = fields.as_slice() else {
            return None;
        };
        let cores = lines.next()?.parse().ok()?;
        let free_kib: u64 = lines.next()?.parse().ok()?;
        Some(Self {
            size_bytes: size.parse().ok()?,
            server_version: version.parse().ok()?,
            in_recovery: match *recovery {
                "t" => true,
                "f" => false,
                _ => return None,
            },
            free_connections: free.parse().ok()?,
            big_tables: big.parse().ok()?,
            cores,
            free_temp_bytes: free_kib.saturating_mul(1024),
        })
    }

    /// The room a parallel dump needs: the database's size (its indexes
    /// are not dumped, so this is more than the dump) and a quarter more.
    fn room_needed(&self) -> u64 {
        self.size_bytes.saturating_add(self.size_bytes / 4)
    }
}

/// The decision for one backup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DumpPlan {
    /// Jobs for `pg_dump -j`; 1 is the single stream.
    pub jobs: u16,
    /// Why, in a sentence the backup result shows.
    pub reason: String,
    /// Set when the user asked for jobs the server cannot take.
    pub warning: Option<String>,
}

impl DumpPlan {
    fn single(reason: impl Into<String>) -> Self {
        Self {
            jobs: 1,
            reason: reason.into(),
            warning: None,
        }
    }

    /// A single stream instead of the `asked` jobs, saying why; a warning
    /// when the user asked for a number.
    fn refused(asked: DumpJobs, why: String) -> Self {
        let mut plan = Self::single(format!("one stream: {why}"));
        if let DumpJobs::Exactly(n) = asked {
            plan.warning = Some(format!("--jobs {n} was not used: {why}"));
        }
        plan
    }
}

fn gib(bytes: u64) -> String {
    format!("{:.1} GiB", bytes as f64 / f64::from(1u32 << 30))
}

fn mb_per_sec(bytes_per_sec: f64) -> String {
    format!("{:.0} MB/s", bytes_per_sec / 1e6)
}

/// Decides from `facts` (`None`: the command failed or printed something
/// else) for what the user `asked`, within `limits`. `auto` also needs a
/// link sample that shows the parallel dump would pay; a number asked for
/// is used whatever the link.
pub(crate) fn plan(asked: DumpJobs, facts: Option<&DbFacts>, limits: Limits) -> DumpPlan {
    let auto_min_bytes = limits.auto_min_bytes;
    if asked == DumpJobs::ONE {
        return DumpPlan::single("one stream (--jobs 1)");
    }
    if asked == DumpJobs::Auto && limits.link_bytes_per_sec.is_none() {
        return DumpPlan::single(
            "one stream: no link sample was taken for this backup (--compress auto takes one \
             unless the server's last backup was small), so nothing shows that a parallel dump \
             would pay",
        );
    }
    let Some(facts) = facts else {
        return DumpPlan::refused(
            asked,
            "the database container did not say its size, cores and free space".to_owned(),
        );
    };
    if facts.server_version < MIN_SERVER_VERSION {
        return DumpPlan::refused(
            asked,
            "PostgreSQL before 9.2 cannot give parallel dump jobs one snapshot".to_owned(),
        );
    }
    if facts.in_recovery && facts.server_version < MIN_STANDBY_VERSION {
        return DumpPlan::refused(
            asked,
            "a standby before PostgreSQL 10 cannot give parallel dump jobs one snapshot".to_owned(),
        );
    }
    // pg_dump -j N holds N + 1 connections; leave one for everyone else.
    let by_connections = u16::try_from((facts.free_connections - 2).clamp(0, 1 << 15)).unwrap_or(0);
    let by_cores = u16::try_from(facts.cores.min(u32::from(MAX_DUMP_JOBS))).unwrap_or(1);
    let jobs = match asked {
        DumpJobs::Auto => {
            if facts.size_bytes < auto_min_bytes {
                return DumpPlan::single(format!(
                    "one stream: the database ({}) is below the {} where parallel jobs pay",
                    gib(facts.size_bytes),
                    gib(auto_min_bytes)
                ));
            }
            let by_tables = u16::try_from(facts.big_tables.min(u32::from(AUTO_MAX_JOBS)))
                .unwrap_or(AUTO_MAX_JOBS);
            by_cores.min(by_tables).min(AUTO_MAX_JOBS)
        }
        DumpJobs::Exactly(n) => n.min(MAX_DUMP_JOBS),
    }
    .min(by_connections);
    if jobs < 2 {
        let why = if by_connections < 2 {
            format!(
                "PostgreSQL has {} free connection(s), too few for parallel jobs",
                facts.free_connections.max(0)
            )
        } else if facts.cores < 2 {
            "the database container has one core".to_owned()
        } else {
            format!(
                "the database has {} table(s) of 8 MiB or more: nothing to dump in parallel",
                facts.big_tables
            )
        };
        return DumpPlan::refused(asked, why);
    }
    if facts.free_temp_bytes < facts.room_needed() {
        return DumpPlan::refused(
            asked,
            format!(
                "a parallel dump is written on the server first and needs up to {}, but only {} \
                 is free for the temporary directory",
                gib(facts.room_needed()),
                gib(facts.free_temp_bytes)
            ),
        );
    }
    if asked == DumpJobs::Auto {
        let needed = limits.job_bytes_per_sec * f64::from(jobs) / f64::from(jobs - 1);
        if let Some(link) = limits.link_bytes_per_sec.filter(|link| *link < needed) {
            return DumpPlan::single(format!(
                "one stream: the link ({}) is slower than {jobs} dump jobs would need to win \
                 ({}): one stream dumps and sends at once, a parallel dump writes everything \
                 on the server before it sends",
                mb_per_sec(link),
                mb_per_sec(needed)
            ));
        }
    }
    DumpPlan {
        jobs,
        reason: format!(
            "pg_dump -Fd -j {jobs}: {} over {} large table(s), {} core(s), {} free on the server",
            gib(facts.size_bytes),
            facts.big_tables,
            facts.cores,
            gib(facts.free_temp_bytes)
        ),
        warning: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GIB: u64 = 1 << 30;

    /// A fast link (1 GB/s) and one dump job at 150 MB/s.
    fn fast() -> Limits {
        Limits {
            auto_min_bytes: GIB,
            job_bytes_per_sec: 150e6,
            link_bytes_per_sec: Some(1e9),
        }
    }

    fn big_host() -> DbFacts {
        DbFacts {
            size_bytes: 4 * GIB,
            server_version: 150_004,
            in_recovery: false,
            free_connections: 90,
            big_tables: 6,
            cores: 4,
            free_temp_bytes: 40 * GIB,
        }
    }

    #[test]
    fn facts_parse_from_the_probe_and_refuse_anything_else() {
        let facts = DbFacts::parse("4294967296|150004|f|90|6\n4\n41943040\n").unwrap();
        assert_eq!(facts, big_host());
        assert!(DbFacts::parse("").is_none());
        assert!(DbFacts::parse("4294967296|150004|f|90\n4\n1\n").is_none());
        assert!(DbFacts::parse("4294967296|150004|x|90|6\n4\n1\n").is_none());
        assert!(DbFacts::parse("4294967296|150004|f|90|6\nfour\n1\n").is_none());
        assert!(DbFacts::parse("4294967296|150004|f|90|6\n4\n").is_none());
        let standby = DbFacts::parse("1|90600|t|-3|0\n1\n0\n").unwrap();
        assert!(standby.in_recovery);
        assert_eq!(standby.free_connections, -3);
    }

    #[test]
    fn auto_runs_as_many_jobs_as_cores_tables_and_connections_allow() {
        let plan = plan(DumpJobs::Auto, Some(&big_host()), fast());
        assert_eq!(plan.jobs, 4, "{plan:?}");
        assert!(
            plan.reason.starts_with("pg_dump -Fd -j 4"),
            "{}",
            plan.reason
        );
        assert_eq!(plan.warning, None);
        let few_tables = DbFacts {
            big_tables: 2,
            ..big_host()
        };
        assert_eq!(
            super::plan(DumpJobs::Auto, Some(&few_tables), fast()).jobs,
            2
        );
        let few_connections = DbFacts {
            free_connections: 5,
            ..big_host()
        };
        assert_eq!(
            super::plan(DumpJobs::Auto, Some(&few_connections), fast()).jobs,
            3
        );
        let many_cores = DbFacts {
            cores: 64,
            big_tables: 100,
            ..big_host()
        };
        assert_eq!(
            super::plan(DumpJobs::Auto, Some(&many_cores), fast()).jobs,
            AUTO_MAX_JOBS
        );
    }

    #[test]
    fn auto_streams_one_dump_when_parallel_jobs_do_not_pay_or_fit() {
        let cases = [
            (
                DbFacts {
                    size_bytes: GIB / 2,
                    ..big_host()
                },
                "below",
            ),
            (
                DbFacts {
                    big_tables: 1,
                    ..big_host()
                },
                "nothing to dump in parallel",
            ),
            (
                DbFacts {
                    cores: 1,
                    ..big_host()
                },
                "one core",
            ),
            (
                DbFacts {
                    free_connections: 2,
                    ..big_host()
                },
                "free connection",
            ),
            (
                DbFacts {
                    free_temp_bytes: 4 * GIB,
                    ..big_host()
                },
                "needs up to 5.0 GiB, but only 4.0 GiB is free",
            ),
            (
                DbFacts {
                    server_version: 90_100,
                    ..big_host()
                },
                "before 9.2",
            ),
            (
                DbFacts {
                    in_recovery: true,
                    server_version: 90_600,
                    ..big_host()
                },
                "standby",
            ),
        ];
        for (facts, why) in cases {
            let plan = plan(DumpJobs::Auto, Some(&facts), fast());
            assert_eq!(plan.jobs, 1, "{facts:?}");
            assert!(plan.reason.contains(why), "{why}: {}", plan.reason);
            assert_eq!(plan.warning, None, "auto never warns: {plan:?}");
        }
        let unknown = plan(DumpJobs::Auto, None, fast());
        assert_eq!(unknown.jobs, 1);
        assert_eq!(unknown.warning, None);
    }

    #[test]
    fn auto_dumps_in_parallel_only_on_a_link_faster_than_the_jobs_would_need() {
        // Four jobs at 150 MB/s each win only above 200 MB/s; two above 300.
        let at = |mb: f64| Limits {
            link_bytes_per_sec: Some(mb * 1e6),
            ..fast()
        };
        assert_eq!(plan(DumpJobs::Auto, Some(&big_host()), at(250.0)).jobs, 4);
        let gbit = plan(DumpJobs::Auto, Some(&big_host()), at(125.0));
        assert_eq!(gbit.jobs, 1);
        assert!(
            gbit.reason.contains(
                "the link (125 MB/s) is slower than 4 dump jobs would need to win (200 MB/s)"
            ),
            "{}",
            gbit.reason
        );
        let two = DbFacts {
            cores: 2,
            ..big_host()
        };
        assert_eq!(plan(DumpJobs::Auto, Some(&two), at(250.0)).jobs, 1);
        assert_eq!(plan(DumpJobs::Auto, Some(&two), at(310.0)).jobs, 2);
        let unmeasured = plan(
            DumpJobs::Auto,
            Some(&big_host()),
            Limits {
                link_bytes_per_sec: None,
                ..fast()
            },
        );
        assert_eq!(unmeasured.jobs, 1);
        assert!(
            unmeasured.reason.contains("no link sample"),
            "{}",
            unmeasured.reason
        );
        assert_eq!(unmeasured.warning, None);
    }

    #[test]
    fn a_number_asked_for_is_used_whatever_the_size_and_warned_about_when_refused() {
        let small = DbFacts {
            size_bytes: 1 << 20,
            big_tables: 0,
            cores: 1,
            ..big_host()
        };
        let slow = Limits {
            link_bytes_per_sec: Some(1e6),
            ..fast()
        };
        let plan = plan(DumpJobs::Exactly(3), Some(&small), slow);
        assert_eq!(plan.jobs, 3, "{plan:?}");
        let full = DbFacts {
            free_temp_bytes: 0,
            ..big_host()
        };
        let refused = super::plan(DumpJobs::Exactly(3), Some(&full), fast());
        assert_eq!(refused.jobs, 1);
        assert!(
            refused
                .warning
                .as_deref()
                .unwrap()
                .starts_with("--jobs 3 was not used"),
            "{refused:?}"
        );
        let unknown = super::plan(DumpJobs::Exactly(2), None, fast());
        assert!(unknown.warning.unwrap().contains("did not say"));
        let one = super::plan(DumpJobs::ONE, None, fast());
        assert_eq!(one.jobs, 1);
        assert_eq!(one.warning, None);
    }
}
