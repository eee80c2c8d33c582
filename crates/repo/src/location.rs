//! Where a repository lives, written as restic writes it: a directory path
//! (`/srv/backups` or `local:/srv/backups`) or
//! `s3:http(s)://host[:port]/bucket[/prefix]`.

use std::fmt;
use std::path::PathBuf;

use kastell_core::{Error, Result};
use serde::{Deserialize, Serialize};

/// A parsed repository location.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum RepoLocation {
    /// A directory on this machine.
    Local(PathBuf),
    /// A bucket (and optional key prefix) on S3-compatible storage.
    S3 {
        /// The endpoint, `http(s)://host[:port]`.
        endpoint: String,
        /// The bucket name.
        bucket: String,
        /// The key prefix inside the bucket, without slashes at either end
        /// (empty: the bucket's root).
        prefix: String,
    },
}

impl RepoLocation {
    /// Parses `text`. Refuses relative directories (they would depend on
    /// where kastell runs), S3 addresses without a bucket or with
    /// credentials in them (credentials come from `AWS_ACCESS_KEY_ID` and
    /// `AWS_SECRET_ACCESS_KEY`, as for restic), and unknown schemes.
    pub fn parse(text: &str) -> Result<Self> {
        let text = text.trim();
        if let Some(rest) = text.strip_prefix("s3:") {
            return parse_s3(rest);
        }
        let path = text.strip_prefix("local:").unwrap_or(text);
        if let Some((scheme, _)) = path.split_once(':') {
            if !scheme.contains('/') {
                return Err(
                    Error::invalid_input(format!("Unknown repository scheme '{scheme}:'"))
                        .with_hint(
                            "Use a directory (/srv/backups) or s3:http(s)://host/bucket/prefix",
                        ),
                );
            }
        }
        let path = PathBuf::from(path);
        if !path.is_absolute() {
            return Err(Error::invalid_input(format!(
                "Repository directory '{}' is not an absolute path",
                path.display()
            ))
            .with_hint("Give the full path, starting with /"));
        }
        Ok(Self::Local(path))
    }
}

fn parse_s3(rest: &str) -> Result<RepoLocation> {
    let hint = "Write it as s3:http(s)://host[:port]/bucket[/prefix]; credentials go in \
                AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY";
    let url = url::Url::parse(rest).map_err(|e| {
        Error::invalid_input(format!("S3 repository address is not a URL: {e}")).with_hint(hint)
    })?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(Error::invalid_input(format!(
            "S3 repository address must use http or https, not '{}'",
            url.scheme()
        ))
        .with_hint(hint));
    }
    if !url.username().is_empty() || url.password().is_some() || url.query().is_some() {
        return Err(Error::invalid_input(
            "S3 repository address must not carry credentials or a query",
        )
        .with_hint(hint));
    }
    let host = url
        .host_str()
        .ok_or_else(|| Error::invalid_input("S3 repository address has no host").with_hint(hint))?;
    let endpoint = match url.port() {
        Some(port) => format!("{}://{host}:{port}", url.scheme()),
        None => format!("{}://{host}", url.scheme()),
    };
    let path = url.path().trim_matches('/');
    let (bucket, prefix) = path.split_once('/').unwrap_or((path, ""));
    if bucket.is_empty() {
        return Err(Error::invalid_input("S3 repository address names no bucket").with_hint(hint));
    }
    Ok(RepoLocation::S3 {
        endpoint,
        bucket: bucket.to_owned(),
        prefix: prefix.trim_matches('/').to_owned(),
    })
}

impl fmt::Display for RepoLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Local(path) => write!(f, "{}", path.display()),
            Self::S3 {
                endpoint,
                bucket,
                prefix,
            } if prefix.is_empty() => write!(f, "s3:{endpoint}/{bucket}"),
            Self::S3 {
                endpoint,
                bucket,
                prefix,
            } => write!(f, "s3:{endpoint}/{bucket}/{prefix}"),
        }
    }
}

impl TryFrom<String> for RepoLocation {
    type Error = Error;
    fn try_from(text: String) -> Result<Self> {
        Self::parse(&text)
    }
}

impl From<RepoLocation> for String {
    fn from(location: RepoLocation) -> Self {
        location.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_parse_and_print_as_restic_writes_them() {
        for text in [
            "/srv/backups",
            "s3:http://127.0.0.1:18333/kastell",
            "s3:https://s3.example.com/bucket/fleet/prod",
        ] {
            assert_eq!(RepoLocation::parse(text).unwrap().to_string(), text);
        }
        assert_eq!(
            RepoLocation::parse("local:/srv/b").unwrap(),
            RepoLocation::Local("/srv/b".into())
        );
        let s3 = RepoLocation::parse("s3:http://h:9000/b/p/q/").unwrap();
        assert_eq!(
            s3,
            RepoLocation::S3 {
                endpoint: "http://h:9000".into(),
                bucket: "b".into(),
                prefix: "p/q".into()
            }
        );
    }

    #[test]
    fn bad_locations_are_refused_with_what_to_write() {
        for (text, says) in [
            ("backups", "not an absolute path"),
            ("sftp:host:/x", "Unknown repository scheme"),
            ("s3:http://key:secret@h/b", "credentials"),
            ("s3:http://h/b?token=x", "credentials"),
            ("s3:http://h/", "no bucket"),
            ("s3:ftp://h/b", "http or https"),
        ] {
            let err = RepoLocation::parse(text).unwrap_err();
            assert!(err.message().contains(says), "{text}: {err}");
            assert!(err.hint().is_some(), "{text}");
            assert!(!err.to_string().contains("secret"), "{err}");
        }
    }
}
