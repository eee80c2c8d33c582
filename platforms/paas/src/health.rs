//! The HTTP health check, made from the local machine.

use std::net::IpAddr;
use std::time::Duration;

use kastell_core::types::{Health, HealthLook};
use kastell_core::{Error, Result};

use crate::platform::PaasPlatform;

/// Time allowed for one health request.
pub const HEALTH_TIMEOUT: Duration = Duration::from_secs(5);

impl PaasPlatform {
    /// The URL the health check asks: the `health_url` option, else
    /// `https://<domain>` when the server has a domain, else
    /// `http://<ip>:<health port>`. Refuses a server with neither a domain
    /// nor a valid IP address.
    pub fn health_url(&self) -> Result<String> {
        if let Some(url) = &self.settings.health_url {
            return Ok(url.clone());
        }
        let domain = self.target.domain.as_deref().map(str::trim).unwrap_or("");
        if !domain.is_empty() {
            let valid = domain
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-'));
            if !valid {
                return Err(Error::invalid_input(format!(
                    "the server's domain {domain:?} is not a host name"
                )));
            }
            return Ok(format!("https://{domain}"));
        }
        let ip: IpAddr = self.target.ip.trim().parse().map_err(|_| {
            Error::invalid_input(format!(
                "the server's IP address {:?} is not valid",
                self.target.ip
            ))
            .with_hint("Set the server's IP (or a domain) in the fleet store")
        })?;
        Ok(match ip {
            IpAddr::V4(v4) => format!("http://{v4}:{}", self.spec.health_port),
            IpAddr::V6(v6) => format!("http://[{v6}]:{}", self.spec.health_port),
        })
    }

    /// GET the health URL without following redirects. Healthy only on a
    /// 2xx or 3xx answer; a 4xx/5xx answer or a network failure is an
    /// unhealthy [`Health`], not an error, and a refused connection (no
    /// listener on the port) is said so ([`HealthLook::refused`]).
    pub(crate) async fn check_health(&self) -> Result<HealthLook> {
        let url = self.health_url()?;
        Ok(match self.http.get(&url).send().await {
            Ok(response) => {
                let status = response.status();
                let healthy = status.is_success() || status.is_redirection();
                HealthLook {
                    health: Health {
                        healthy,
                        detail: format!(
                            "GET {url} answered {status}{}",
                            if healthy {
                                ""
                            } else {
                                " (expected 2xx or 3xx)"
                            }
                        ),
                    },
                    refused: false,
                }
            }
            Err(e) => {
                let refused = connection_refused(&e);
                let why = if e.is_timeout() {
                    format!("no answer within {}s", HEALTH_TIMEOUT.as_secs())
                } else if refused {
                    "connection refused".to_owned()
                } else if e.is_connect() {
                    "connection failed".to_owned()
                } else {
                    "request failed".to_owned()
                };
                HealthLook {
                    health: Health {
                        healthy: false,
                        detail: format!("GET {url}: {why} ({e})"),
                    },
                    refused,
                }
            }
        })
    }
}

/// Whether `e` failed because the connection was refused (nothing listens
/// on the port), found as the I/O error among its causes.
fn connection_refused(e: &reqwest::Error) -> bool {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(e);
    while let Some(c) = cause {
        if c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::ConnectionRefused)
        {
            return true;
        }
        cause = c.source();
    }
    false
}
