//! The platform's own health check per server, in `checks.json`'s
//! `platform` object: where it asks (`url`, or `port` on the server's
//! address), how long a restore waits for it (`deadline`), how long a
//! refusing port is given to start listening (`refusedGrace`), and
//! `"webUi": false` for a server without a web UI, whose restore skips
//! the check.
//!
//! ```json
//! {"servers": {"web-1":    {"platform": {"port": 3000, "deadline": 300}},
//!              "worker-1": {"platform": {"webUi": false}}}}
//! ```
//!
//! Each field is the server's own entry's, else the first of its tags'
//! that sets it, else the fleet's, else the platform's default.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use kastell_core::types::HealthWait;
use kastell_core::{Error, Result};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::checks::{ChecksFile, HttpCheck, validate_http};
use super::store::ServerRecord;

/// The longest wait a `deadline` may set, in seconds.
const MAX_DEADLINE: u64 = 3600;
/// The longest `refusedGrace`, in seconds.
const MAX_GRACE: u64 = 600;

/// One entry's platform health settings (every field optional).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PlatformHealth {
    /// The http:// or https:// URL the platform's check asks instead of
    /// its default (asked from this machine).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// The port the check asks on the server's address (`http://IP:PORT`),
    /// when no `url` is set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    /// Seconds a restore waits for the platform to be healthy (1-3600;
    /// default 120).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deadline: Option<u64>,
    /// Seconds of refused connections (nothing listening) after which the
    /// wait ends with an error instead of the whole deadline (1-600;
    /// default 20).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refused_grace: Option<u64>,
    /// `false`: the server has no web UI, and a restore skips the
    /// platform's HTTP check.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub web_ui: Option<bool>,
}

impl PlatformHealth {
    /// Whether it sets nothing.
    pub fn is_empty(&self) -> bool {
        self == &Self::default()
    }

    /// Each field of `self`, else of the first of `others` that sets it.
    pub(crate) fn or_from<'a>(&self, others: impl IntoIterator<Item = &'a Self>) -> Self {
        let mut out = self.clone();
        for other in others {
            out.url = out.url.or_else(|| other.url.clone());
            out.port = out.port.or(other.port);
            out.deadline = out.deadline.or(other.deadline);
            out.refused_grace = out.refused_grace.or(other.refused_grace);
            out.web_ui = out.web_ui.or(other.web_ui);
        }
        out
    }

    /// Refuses a URL that is not http(s) with a host, port 0, and a
    /// deadline or grace out of range, naming `at` (`servers.web-1`).
    pub(crate) fn validate(&self, at: &str) -> Result<()> {
        if let Some(url) = &self.url {
            validate_http(&HttpCheck {
                url: url.clone(),
                status: 200,
            })
            .map_err(|e| {
                let message = format!("{at}.platform.url: {}", e.message());
                e.with_message(message)
            })?;
        }
        if self.port == Some(0) {
            return Err(
                Error::config_invalid(format!("{at}.platform.port: 0 is not a port"))
                    .with_hint("Give the port the platform's web UI listens on, e.g. 8000"),
            );
        }
        let out_of = |field: &str, value: Option<u64>, max: u64| match value {
            Some(v) if !(1..=max).contains(&v) => Err(Error::config_invalid(format!(
                "{at}.platform.{field}: {v} is not 1 to {max} seconds"
            ))
            .with_hint("Give a number of seconds, e.g. 120 for deadline or 20 for refusedGrace")),
            _ => Ok(()),
        };
        out_of("deadline", self.deadline, MAX_DEADLINE)?;
        out_of("refusedGrace", self.refused_grace, MAX_GRACE)
    }

    /// The URL the platform's check asks on `server` when this sets one:
    /// `url`, else `http://IP:port` (none for a port and an address that
    /// is not an IP).
    pub fn health_url(&self, server: &ServerRecord) -> Option<String> {
        if let Some(url) = &self.url {
            return Some(url.clone());
        }
        let port = self.port?;
        match server.ip.trim().parse::<std::net::IpAddr>().ok()? {
            std::net::IpAddr::V4(v4) => Some(format!("http://{v4}:{port}")),
            std::net::IpAddr::V6(v6) => Some(format!("http://[{v6}]:{port}")),
        }
    }

    /// How a restore waits for the platform: `deadline` (default
    /// `default_deadline`) ending after `refusedGrace` (default
    /// [`HealthWait::DEFAULT_REFUSED_GRACE`]) of refused connections;
    /// `None` when the server has no web UI (the check is skipped).
    pub fn wait(&self, default_deadline: Duration) -> Option<HealthWait> {
        if self.web_ui == Some(false) {
            return None;
        }
        Some(HealthWait {
            deadline: self.deadline.map_or(default_deadline, Duration::from_secs),
            refused_grace: Some(
                self.refused_grace
                    .map_or(HealthWait::DEFAULT_REFUSED_GRACE, Duration::from_secs),
            ),
        })
    }
}

/// The platform option naming the URL the platform's health check asks
/// (the PaaS platforms').
pub const HEALTH_URL_OPTION: &str = "health_url";

/// Sets the `health_url` platform option from the `checks.json` in `dir`
/// for `record` (its `url`, or `port` on its address) unless the record's
/// own options set one. Not for bare servers, whose health is their
/// services'. A checks.json that does not load adds nothing here: the
/// operations that rely on it (a restore, maintain) load it themselves
/// and refuse it.
pub(crate) fn add_health_url(
    dir: &Path,
    record: &ServerRecord,
    options: &mut BTreeMap<String, String>,
) {
    if record.is_bare() || options.contains_key(HEALTH_URL_OPTION) {
        return;
    }
    match ChecksFile::load(dir) {
        Ok(file) => {
            if let Some(url) = file.for_server(record).platform.health_url(record) {
                options.insert(HEALTH_URL_OPTION.to_owned(), url);
            }
        }
        Err(e) => tracing::debug!("checks.json not read for the health URL: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_wait_follows_the_settings_and_no_web_ui_skips_it() {
        let default = Duration::from_secs(120);
        let plain = PlatformHealth::default().wait(default).unwrap();
        assert_eq!(plain.deadline, default);
        assert_eq!(plain.refused_grace, Some(Duration::from_secs(20)));
        let set = PlatformHealth {
            deadline: Some(300),
            refused_grace: Some(5),
            ..PlatformHealth::default()
        }
        .wait(default)
        .unwrap();
        assert_eq!(set.deadline, Duration::from_secs(300));
        assert_eq!(set.refused_grace, Some(Duration::from_secs(5)));
        let none = PlatformHealth {
            web_ui: Some(false),
            ..PlatformHealth::default()
        };
        assert_eq!(none.wait(default), None);
    }

    #[test]
    fn the_url_is_the_given_one_or_the_port_on_the_servers_address() {
        let v4 = ServerRecord::new("1", "web-1", "203.0.113.5");
        let v6 = ServerRecord::new("2", "web-2", "2001:db8::1");
        let port = PlatformHealth {
            port: Some(3000),
            ..PlatformHealth::default()
        };
        assert_eq!(port.health_url(&v4).unwrap(), "http://203.0.113.5:3000");
        assert_eq!(port.health_url(&v6).unwrap(), "http://[2001:db8::1]:3000");
        let url = PlatformHealth {
            url: Some("https://app.example.com/up".into()),
            port: Some(3000),
            ..PlatformHealth::default()
        };
        assert_eq!(url.health_url(&v4).unwrap(), "https://app.example.com/up");
        assert_eq!(PlatformHealth::default().health_url(&v4), None);
    }

    #[test]
    fn out_of_range_settings_are_refused_saying_where() {
        for (bad, says) in [
            (
                PlatformHealth {
                    url: Some("ftp://x/".into()),
                    ..PlatformHealth::default()
                },
                "servers.web-1.platform.url",
            ),
            (
                PlatformHealth {
                    port: Some(0),
                    ..PlatformHealth::default()
                },
                "platform.port",
            ),
            (
                PlatformHealth {
                    deadline: Some(0),
                    ..PlatformHealth::default()
                },
                "platform.deadline",
            ),
            (
                PlatformHealth {
                    refused_grace: Some(601),
                    ..PlatformHealth::default()
                },
                "platform.refusedGrace",
            ),
        ] {
            let err = bad.validate("servers.web-1").unwrap_err();
            assert!(err.message().contains(says), "{err}");
        }
    }
}
