//! Where a repository lives, written as restic writes it: a directory path
//! (`/srv/backups` or `local:/srv/backups`),
//! `s3:http(s)://host[:port]/bucket[/prefix]`, or a directory on an SSH
//! server, `sftp:user@host:/srv/backups` (or restic's URL form
//! `sftp://user@host[:port]//srv/backups`).

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
    /// A directory on an SSH server, reached over SFTP.
    Sftp {
        /// The login user.
        user: String,
        /// The host name or IP address (an IPv6 address without brackets).
        host: String,
        /// The SSH port (22 unless the address names another).
        port: u16,
        /// The absolute directory on the server, without a trailing slash.
        path: PathBuf,
    },
}

/// The SSH port an `sftp:` address without a port means.
pub const DEFAULT_SFTP_PORT: u16 = 22;

impl RepoLocation {
    /// Parses `text`. Refuses relative directories (they would depend on
    /// where kastell runs), S3 addresses without a bucket or with
    /// credentials in them (credentials come from `AWS_ACCESS_KEY_ID` and
    /// `AWS_SECRET_ACCESS_KEY`, as for restic), SFTP addresses without a
    /// user or host, with a password, or with a relative directory (restic
    /// would take it from the login's home), and unknown schemes.
    pub fn parse(text: &str) -> Result<Self> {
        let text = text.trim();
        if let Some(rest) = text.strip_prefix("s3:") {
            return parse_s3(rest);
        }
        if let Some(rest) = text.strip_prefix("sftp:") {
            return parse_sftp(rest);
        }
        let path = text.strip_prefix("local:").unwrap_or(text);
        if let Some((scheme, _)) = path.split_once(':') {
            if !scheme.contains('/') {
                return Err(
                    Error::invalid_input(format!("Unknown repository scheme '{scheme}:'"))
                        .with_hint(
                            "Use a directory (/srv/backups), s3:http(s)://host/bucket/prefix \
                             or sftp:user@host:/srv/backups",
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

/// How an SFTP address is written, for the hints of refused ones.
const SFTP_HINT: &str = "Write it as sftp:user@host:/absolute/path, or \
                         sftp://user@host:port//absolute/path for another port than 22; \
                         the login uses a key file, never a password";

/// Parses what follows `sftp:`: `user@host:/path`, or `//user@host[:port]//path`.
fn parse_sftp(rest: &str) -> Result<RepoLocation> {
    let refuse = |why: String| Err(Error::invalid_input(why).with_hint(SFTP_HINT));
    let (url_form, authority, path) = match rest.strip_prefix("//") {
        // restic's URL form: the path is what follows the authority's
        // slash, so `//srv` is `/srv` and `/srv` would be `srv`.
        Some(url) => {
            let (authority, path) = url.split_once('/').unwrap_or((url, ""));
            (true, authority, path)
        }
        None => {
            let (authority, path) = split_host_path(rest);
            (false, authority, path)
        }
    };
    // A user name never holds '/', so an '@' after one is in the path.
    let (userinfo, hostport) = match authority.split_once('@') {
        Some((userinfo, hostport)) if !userinfo.contains('/') => (userinfo, hostport),
        _ => return refuse("SFTP repository address names no user".to_owned()),
    };
    if userinfo.contains(':') {
        return refuse("SFTP repository address must not carry a password".to_owned());
    }
    if !is_user_name(userinfo) {
        return refuse(format!(
            "SFTP repository address names no valid user ('{userinfo}')"
        ));
    }
    let (host, port) = split_port(hostport, url_form).map_err(|why| {
        Error::invalid_input(format!("SFTP repository address: {why}")).with_hint(SFTP_HINT)
    })?;
    if host.is_empty() {
        return refuse("SFTP repository address names no host".to_owned());
    }
    if !is_host_name(host) {
        return refuse(format!(
            "SFTP repository host '{host}' is not a host name or IP address"
        ));
    }
    let path = if url_form {
        percent_decoded(path).map_err(|why| {
            Error::invalid_input(format!("SFTP repository path: {why}")).with_hint(SFTP_HINT)
        })?
    } else {
        path.to_owned()
    };
    if path.is_empty() {
        return refuse("SFTP repository address names no directory".to_owned());
    }
    if !path.starts_with('/') {
        return refuse(format!(
            "SFTP repository directory '{path}' is not an absolute path (restic would look for it in the login's home)"
        ));
    }
    if path.contains(['\0', '\n']) {
        return refuse("SFTP repository directory contains a control character".to_owned());
    }
    let trimmed = path.trim_end_matches('/');
    Ok(RepoLocation::Sftp {
        user: userinfo.to_owned(),
        host: host.to_owned(),
        port,
        path: PathBuf::from(if trimmed.is_empty() { "/" } else { trimmed }),
    })
}

/// Splits `user@host:path` at the colon after the host (after the closing
/// bracket of an IPv6 address); no colon: no path.
fn split_host_path(text: &str) -> (&str, &str) {
    let host_start = text.find('@').map_or(0, |at| at + 1);
    let search_from = match text[host_start..].strip_prefix('[') {
        Some(inner) => inner
            .find(']')
            .map_or(host_start, |end| host_start + end + 2),
        None => host_start,
    };
    match text[search_from..].find(':') {
        Some(colon) => (
            &text[..search_from + colon],
            &text[search_from + colon + 1..],
        ),
        None => (text, ""),
    }
}

/// Splits `host[:port]` (`[v6][:port]`). Only the URL form may name a port.
fn split_port(text: &str, url_form: bool) -> std::result::Result<(&str, u16), String> {
    let (host, port) = if let Some(inner) = text.strip_prefix('[') {
        let (host, after) = inner
            .split_once(']')
            .ok_or_else(|| format!("'{text}' opens an IPv6 bracket it does not close"))?;
        (host, after.strip_prefix(':'))
    } else {
        match text.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (text, None),
        }
    };
    match port {
        None | Some("") => Ok((host, DEFAULT_SFTP_PORT)),
        Some(_) if !url_form => Err("a port needs the sftp://user@host:port//path form".to_owned()),
        Some(port) => match port.parse::<u16>() {
            Ok(port) if port != 0 => Ok((host, port)),
            _ => Err(format!("'{port}' is not a port number")),
        },
    }
}

/// Whether `name` is a plain login name (letters, digits, `.`, `_`, `-`,
/// not starting with `-`).
fn is_user_name(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with('-')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// Whether `host` is a DNS name, an IPv4 address or an IPv6 address.
fn is_host_name(host: &str) -> bool {
    if host.parse::<std::net::Ipv6Addr>().is_ok() {
        return true;
    }
    !host.starts_with('-')
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'))
}

/// `text` with its `%XX` escapes decoded, as restic reads a URL's path.
fn percent_decoded(text: &str) -> std::result::Result<String, String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let digits = text
                .get(i + 1..i + 3)
                .and_then(|hex| u8::from_str_radix(hex, 16).ok())
                .ok_or_else(|| format!("'{text}' has a '%' that is not a %XX escape"))?;
            out.push(digits);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| format!("'{text}' decodes to bytes that are not UTF-8"))
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
            Self::Sftp {
                user,
                host,
                port,
                path,
            } => {
                let host = if host.contains(':') {
                    format!("[{host}]")
                } else {
                    host.clone()
                };
                let path = path.display().to_string();
                if *port == DEFAULT_SFTP_PORT {
                    write!(f, "sftp:{user}@{host}:{path}")
                } else {
                    // The URL form decodes %XX escapes; a literal '%' is one.
                    let path = path.replace('%', "%25");
                    write!(f, "sftp://{user}@{host}:{port}/{path}")
                }
            }
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
    fn sftp_locations_parse_in_both_of_restics_forms() {
        for text in [
            "sftp:backup@nas.example.com:/srv/restic",
            "sftp://backup@10.0.0.5:2222//srv/restic",
            "sftp:u@[2001:db8::1]:/srv",
            "sftp://u@[2001:db8::1]:2200//srv",
            "sftp:u@h:/",
        ] {
            assert_eq!(RepoLocation::parse(text).unwrap().to_string(), text);
        }
        let url = RepoLocation::parse("sftp://backup@nas:2222//srv/restic/").unwrap();
        assert_eq!(
            url,
            RepoLocation::Sftp {
                user: "backup".into(),
                host: "nas".into(),
                port: 2222,
                path: "/srv/restic".into(),
            }
        );
        // Port 22 prints in the short form; both forms name the same place.
        let default_port = RepoLocation::parse("sftp://backup@nas//srv/restic").unwrap();
        assert_eq!(default_port.to_string(), "sftp:backup@nas:/srv/restic");
        assert_eq!(
            RepoLocation::parse("sftp://backup@nas:22//srv/restic").unwrap(),
            default_port
        );
        let v6 = RepoLocation::parse("sftp:u@[::1]:/x").unwrap();
        assert!(matches!(&v6, RepoLocation::Sftp { host, port: 22, .. } if host == "::1"));
        // The URL form decodes escapes as restic does, and prints them back.
        let spaced = RepoLocation::parse("sftp://u@h:2200//srv/my%20repo%25").unwrap();
        assert!(
            matches!(&spaced, RepoLocation::Sftp { path, .. } if path.to_str() == Some("/srv/my repo%"))
        );
        assert_eq!(RepoLocation::parse(&spaced.to_string()).unwrap(), spaced);
        let at_in_path = RepoLocation::parse("sftp:u@h:/srv/a@b:c").unwrap();
        assert!(matches!(&at_in_path, RepoLocation::Sftp { user, path, .. }
            if user == "u" && path.to_str() == Some("/srv/a@b:c")));
    }

    #[test]
    fn bad_locations_are_refused_with_what_to_write() {
        for (text, says) in [
            ("backups", "not an absolute path"),
            ("ftp:host:/x", "Unknown repository scheme"),
            ("sftp:host:/x", "names no user"),
            ("sftp:/srv/x", "names no user"),
            ("sftp:u:secret@h:/x", "password"),
            ("sftp://u:secret@h:2222//x", "password"),
            ("sftp:u@h:srv/x", "not an absolute path"),
            ("sftp://u@h/srv/x", "not an absolute path"),
            ("sftp:u@h:2222/x", "not an absolute path"),
            ("sftp:u@:/x", "no host"),
            ("sftp://u@:2222//x", "no host"),
            ("sftp:u@h", "no directory"),
            ("sftp://u@h:99999//x", "not a port number"),
            ("sftp://u@h:2222//x%zz", "escape"),
            ("sftp:u h@h:/x", "no valid user"),
            ("sftp:u@h;rm:/x", "not a host name"),
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
