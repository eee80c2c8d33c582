//! Validated identifiers for provider resources.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

const MAX_ID_LEN: usize = 128;

/// A provider's id for a server (Hetzner and Linode numbers, Vultr UUIDs,
/// DigitalOcean numbers, `manual-<ms>` for servers with no provider id).
///
/// Refuses empty ids, ids over 128 bytes and anything but ASCII letters,
/// digits, `-`, `_` and `.`, so an id can be placed in a URL path as is.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ServerId(String);

impl ServerId {
    /// Validates and wraps a server id.
    pub fn new(id: impl Into<String>) -> Result<Self> {
        let id = id.into();
        if id.is_empty() || id.len() > MAX_ID_LEN {
            return Err(Error::invalid_input(format!(
                "invalid server id {id:?}: it must be 1 to {MAX_ID_LEN} characters"
            )));
        }
        if !id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        {
            return Err(Error::invalid_input(format!(
                "invalid server id {id:?}: only letters, digits, '-', '_' and '.' are allowed"
            )));
        }
        Ok(Self(id))
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether this is a manually added server with no provider id.
    pub fn is_manual(&self) -> bool {
        self.0.starts_with("manual-")
    }
}

impl fmt::Display for ServerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for ServerId {
    type Error = Error;
    fn try_from(value: String) -> Result<Self> {
        Self::new(value)
    }
}

impl From<ServerId> for String {
    fn from(id: ServerId) -> Self {
        id.0
    }
}

/// A provider's id for a snapshot or image (`12345`, a UUID, Linode's
/// `private/123`).
///
/// Allows ASCII letters, digits, `-`, `_`, `.` and `/`; refuses empty ids,
/// a leading `/`, empty segments and any `.` or `..` segment, so an id can
/// never walk a URL path.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct SnapshotId(String);

impl SnapshotId {
    /// Validates and wraps a snapshot id.
    pub fn new(id: impl Into<String>) -> Result<Self> {
        let id = id.into();
        let invalid = |why: &str| {
            Error::invalid_input(format!("invalid snapshot id {id:?}: {why}"))
                .with_hint("Use snapshot-list to see this server's snapshot ids")
        };
        if id.is_empty() || id.len() > MAX_ID_LEN {
            return Err(invalid("it must be 1 to 128 characters"));
        }
        if !id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'/'))
        {
            return Err(invalid(
                "only letters, digits, '-', '_', '.' and '/' are allowed",
            ));
        }
        if id
            .split('/')
            .any(|seg| seg.is_empty() || seg == "." || seg == "..")
        {
            return Err(invalid("empty, '.' and '..' path segments are not allowed"));
        }
        Ok(Self(id))
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for SnapshotId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for SnapshotId {
    type Error = Error;
    fn try_from(value: String) -> Result<Self> {
        Self::new(value)
    }
}

impl From<SnapshotId> for String {
    fn from(id: SnapshotId) -> Self {
        id.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_ids() {
        assert!(ServerId::new("123456").is_ok());
        assert!(ServerId::new("cb676a46-66fd-4dfb-b839-443f2e6c0b60").is_ok());
        assert!(ServerId::new("manual-1742050000000").unwrap().is_manual());
        for bad in ["", "../etc", "1 2", "a/b", "x;rm", &"9".repeat(129)] {
            assert!(ServerId::new(bad).is_err(), "{bad:?} accepted");
        }
        let parsed: std::result::Result<ServerId, _> = serde_json::from_str("\"a/b\"");
        assert!(parsed.is_err());
    }

    #[test]
    fn snapshot_ids_refuse_dot_segments() {
        for good in ["123", "private/123", "snap-1.2", "a_b"] {
            assert!(SnapshotId::new(good).is_ok(), "{good:?} refused");
        }
        for bad in [
            "", "..", "x/..", "../x", "/abs", "a//b", "a/./b", "a b", "a;b", "$(x)",
        ] {
            let err = SnapshotId::new(bad).unwrap_err();
            assert!(err.hint().is_some());
        }
    }
}
