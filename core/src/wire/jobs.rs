//! How many parallel jobs a database dump may use (`--jobs`).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// The most jobs a dump is given, whatever is asked: each job is one more
/// database connection and one more core busy on the server.
pub const MAX_DUMP_JOBS: u16 = 16;

/// How many parallel jobs a database dump may use.
///
/// One job streams the dump straight from `pg_dump` and writes nothing on
/// the server. More than one runs `pg_dump -Fd -j N` into a private
/// temporary directory on the server (removed however the backup ends) and
/// streams that directory as one tar.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DumpJobs {
    /// The platform decides per backup from the database's size, its
    /// tables, its free connections, the host's cores and the free space
    /// for the temporary directory.
    #[default]
    Auto,
    /// Exactly this many (1 to [`MAX_DUMP_JOBS`]); still one stream when
    /// the server cannot take them, with a warning saying why.
    #[serde(untagged)]
    Exactly(u16),
}

impl DumpJobs {
    /// One job: the single streamed dump.
    pub const ONE: DumpJobs = DumpJobs::Exactly(1);
}

impl fmt::Display for DumpJobs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Auto => f.write_str("auto"),
            Self::Exactly(n) => write!(f, "{n}"),
        }
    }
}

impl FromStr for DumpJobs {
    type Err = Error;
    /// Parses `auto` or a number from 1 to [`MAX_DUMP_JOBS`]; refuses
    /// anything else with a hint.
    fn from_str(s: &str) -> Result<Self> {
        let text = s.trim();
        if text == "auto" {
            return Ok(Self::Auto);
        }
        match text.parse::<u16>() {
            Ok(n) if (1..=MAX_DUMP_JOBS).contains(&n) => Ok(Self::Exactly(n)),
            _ => Err(
                Error::invalid_input(format!("unknown number of dump jobs {s:?}")).with_hint(
                    format!("Use auto, or a number from 1 (one stream) to {MAX_DUMP_JOBS}"),
                ),
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jobs_parse_auto_and_bounded_numbers() {
        assert_eq!("auto".parse::<DumpJobs>().unwrap(), DumpJobs::Auto);
        assert_eq!(" 4 ".parse::<DumpJobs>().unwrap(), DumpJobs::Exactly(4));
        assert_eq!("1".parse::<DumpJobs>().unwrap(), DumpJobs::ONE);
        for bad in ["0", "17", "-1", "many", ""] {
            let err = bad.parse::<DumpJobs>().unwrap_err();
            assert_eq!(err.kind(), crate::ErrorKind::InvalidInput, "{bad}");
            assert!(err.hint().unwrap().contains("16"), "{bad}");
        }
        assert_eq!(DumpJobs::Exactly(3).to_string(), "3");
        assert_eq!(DumpJobs::default(), DumpJobs::Auto);
    }

    #[test]
    fn jobs_serialize_as_auto_or_a_number() {
        assert_eq!(serde_json::to_string(&DumpJobs::Auto).unwrap(), "\"auto\"");
        assert_eq!(serde_json::to_string(&DumpJobs::Exactly(2)).unwrap(), "2");
        let back: DumpJobs = serde_json::from_str("2").unwrap();
        assert_eq!(back, DumpJobs::Exactly(2));
    }
}
