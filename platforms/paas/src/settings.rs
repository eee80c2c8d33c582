//! What a [`crate::PaasPlatform`] reads from its
//! [`kastell_core::PlatformContext`]: the root, and its options.

use std::collections::BTreeMap;
use std::time::Duration;

use kastell_core::types::PlatformRoot;
use kastell_core::{Error, PlatformContext, Result};

/// Option key: URL to check instead of the domain or `http://<ip>:<port>`.
pub const OPT_HEALTH_URL: &str = "health_url";
/// Option key: seconds allowed for the update script (default: the
/// [`kastell_core::types::UpdateOptions`] timeout, 30 minutes).
pub const OPT_UPDATE_TIMEOUT: &str = "update_timeout_secs";
/// Option key: seconds allowed for `pg_dump` and the config tar (default 6 h).
pub const OPT_DUMP_TIMEOUT: &str = "dump_timeout_secs";
/// Option key: seconds allowed for the database and config restores
/// (default 6 h).
pub const OPT_RESTORE_TIMEOUT: &str = "restore_timeout_secs";
/// Option key: seconds to wait for the database to accept connections
/// before a restore (default 180).
pub const OPT_DB_READY_TIMEOUT: &str = "db_ready_timeout_secs";
/// Option key: seconds allowed for stop/start commands (default 600).
pub const OPT_SERVICE_TIMEOUT: &str = "service_timeout_secs";
/// Option: the database size (MiB) from which `--jobs auto` dumps in
/// parallel (default 1024).
pub const OPT_PARALLEL_DUMP_MIN: &str = "parallel_dump_min_mib";
/// Option: what one `pg_dump` job produces on this server, MB/s (default
/// 150); `--jobs auto` dumps in parallel only on a link faster than
/// N / (N − 1) times that.
pub const OPT_DUMP_JOB_SPEED: &str = "dump_job_mb_per_sec";

const KNOWN: &[&str] = &[
    OPT_HEALTH_URL,
    OPT_UPDATE_TIMEOUT,
    OPT_DUMP_TIMEOUT,
    OPT_RESTORE_TIMEOUT,
    OPT_DB_READY_TIMEOUT,
    OPT_SERVICE_TIMEOUT,
    OPT_PARALLEL_DUMP_MIN,
    OPT_DUMP_JOB_SPEED,
];

const SIX_HOURS: u64 = 6 * 3600;

/// Parsed options with their defaults applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// Where configuration paths are resolved ([`PlatformContext::root`]).
    pub root: PlatformRoot,
    /// Health URL override.
    pub health_url: Option<String>,
    /// Update script timeout; `None` means the caller's `UpdateOptions`.
    pub update_timeout: Option<Duration>,
    /// `pg_dump` / config tar timeout.
    pub dump_timeout: Duration,
    /// Database and config restore timeout.
    pub restore_timeout: Duration,
    /// How long to wait for the database before a restore.
    pub db_ready_timeout: Duration,
    /// Stop/start timeout.
    pub service_timeout: Duration,
    /// Timeout of short read-only commands (version, listings, lookups).
    pub short_timeout: Duration,
    /// Database size from which `--jobs auto` dumps in parallel.
    pub parallel_dump_min_bytes: u64,
    /// What one dump job produces per second, in bytes.
    pub dump_job_bytes_per_sec: u64,
}

impl Settings {
    /// The root of `ctx` and its options read (see
    /// [`Settings::from_options`]). PaaS commands never use sudo, so the
    /// context's privilege is not read.
    pub fn from_context(ctx: &PlatformContext) -> Result<Self> {
        Ok(Self {
            root: ctx.root.clone(),
            ..Self::from_options(&ctx.options)?
        })
    }

    /// Reads `options`, with the server's own `/` as the root. Refuses a
    /// `health_url` that is not `http://` or `https://`, and timeouts that
    /// are not positive whole seconds. Unknown keys are ignored (logged).
    pub fn from_options(options: &BTreeMap<String, String>) -> Result<Self> {
        for key in options.keys() {
            if !KNOWN.contains(&key.as_str()) {
                tracing::debug!(option = %key, "ignoring an option the PaaS platforms do not use");
            }
        }
        let health_url = match options.get(OPT_HEALTH_URL) {
            Some(url) if url.starts_with("http://") || url.starts_with("https://") => {
                Some(url.clone())
            }
            Some(url) => {
                return Err(Error::config_invalid(format!(
                    "option {OPT_HEALTH_URL} must be an http:// or https:// URL, not {url:?}"
                )));
            }
            None => None,
        };
        Ok(Self {
            root: PlatformRoot::default(),
            health_url,
            update_timeout: secs(options, OPT_UPDATE_TIMEOUT)?,
            dump_timeout: secs(options, OPT_DUMP_TIMEOUT)?
                .unwrap_or(Duration::from_secs(SIX_HOURS)),
            restore_timeout: secs(options, OPT_RESTORE_TIMEOUT)?
                .unwrap_or(Duration::from_secs(SIX_HOURS)),
            db_ready_timeout: secs(options, OPT_DB_READY_TIMEOUT)?
                .unwrap_or(Duration::from_secs(180)),
            service_timeout: secs(options, OPT_SERVICE_TIMEOUT)?
                .unwrap_or(Duration::from_secs(600)),
            short_timeout: Duration::from_secs(60),
            parallel_dump_min_bytes: mib(options, OPT_PARALLEL_DUMP_MIN)?.unwrap_or(1 << 30),
            dump_job_bytes_per_sec: mb_per_sec(options, OPT_DUMP_JOB_SPEED)?.unwrap_or(150_000_000),
        })
    }

    /// `path` (absolute) under the root.
    pub fn path(&self, path: &str) -> String {
        self.root.join(path)
    }
}

fn secs(options: &BTreeMap<String, String>, key: &str) -> Result<Option<Duration>> {
    match options.get(key) {
        None => Ok(None),
        Some(text) => match text.trim().parse::<u64>() {
            Ok(n) if n > 0 => Ok(Some(Duration::from_secs(n))),
            _ => Err(Error::config_invalid(format!(
                "option {key} must be a positive number of seconds, not {text:?}"
            ))),
        },
    }
}

/// The option `key` as a positive number of MB/s, in bytes per second.
fn mb_per_sec(options: &BTreeMap<String, String>, key: &str) -> Result<Option<u64>> {
    match options.get(key) {
        None => Ok(None),
        Some(text) => match text.trim().parse::<u32>() {
            Ok(n) if n > 0 => Ok(Some(u64::from(n) * 1_000_000)),
            _ => Err(Error::config_invalid(format!(
                "option {key} must be a positive whole number of MB/s, not {text:?}"
            ))),
        },
    }
}

/// The option `key` as a number of MiB (0 allowed), in bytes.
fn mib(options: &BTreeMap<String, String>, key: &str) -> Result<Option<u64>> {
    match options.get(key) {
        None => Ok(None),
        Some(text) => match text.trim().parse::<u64>() {
            Ok(n) if n <= u64::MAX >> 20 => Ok(Some(n << 20)),
            _ => Err(Error::config_invalid(format!(
                "option {key} must be a whole number of MiB, not {text:?}"
            ))),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn defaults_and_overrides() {
        let s = Settings::from_options(&BTreeMap::new()).unwrap();
        assert_eq!(s.path("/data/coolify"), "/data/coolify");
        assert_eq!(s.dump_timeout, Duration::from_secs(SIX_HOURS));
        assert_eq!(s.restore_timeout, Duration::from_secs(SIX_HOURS));
        assert_eq!(s.update_timeout, None);
        assert_eq!(s.parallel_dump_min_bytes, 1 << 30);
        let s = Settings {
            root: PlatformRoot::new("/tmp/fake/").unwrap(),
            ..Settings::from_options(&opts(&[
                ("update_timeout_secs", "90"),
                ("parallel_dump_min_mib", "0"),
                ("dump_job_mb_per_sec", "80"),
                ("health_url", "http://127.0.0.1:1"),
                ("something_else", "x"),
            ]))
            .unwrap()
        };
        assert_eq!(s.path("/etc/dokploy"), "/tmp/fake/etc/dokploy");
        assert_eq!(s.update_timeout, Some(Duration::from_secs(90)));
        assert_eq!(s.parallel_dump_min_bytes, 0);
        assert_eq!(s.dump_job_bytes_per_sec, 80_000_000);
    }

    #[test]
    fn bad_values_are_refused() {
        for bad in [
            ("health_url", "ftp://x"),
            ("dump_timeout_secs", "0"),
            ("restore_timeout_secs", "soon"),
            ("parallel_dump_min_mib", "-1"),
            ("parallel_dump_min_mib", "lots"),
            ("dump_job_mb_per_sec", "0"),
        ] {
            assert!(Settings::from_options(&opts(&[bad])).is_err(), "{bad:?}");
        }
    }
}
