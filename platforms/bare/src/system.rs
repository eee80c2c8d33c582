//! The operating system's name and the system manager's state.

use std::time::Duration;

use kastell_core::types::Health;
use kastell_core::{RemoteCommand, Result, Transport};

const TIMEOUT: Duration = Duration::from_secs(30);

/// Prints `<root>/etc/os-release` (when readable) and then `uname -sr`.
const VERSION_SCRIPT: &str = "cat -- {} 2>/dev/null || true; echo; \
     printf 'KASTELL_UNAME %s\\n' \"$(uname -sr 2>/dev/null)\"";

/// Runs anywhere: reports systemd's overall state and, when degraded, the
/// failed units. Its successful run also proves the host answers over SSH.
const HEALTH_SCRIPT: &str = "if command -v systemctl >/dev/null 2>&1; then \
     state=$(systemctl is-system-running 2>/dev/null) || true; \
     printf 'KASTELL_STATE %s\\n' \"$state\"; \
     if [ \"$state\" = degraded ]; then systemctl --failed --no-legend --plain 2>/dev/null || true; fi; \
     else echo KASTELL_NO_SYSTEMCTL; fi";

/// The OS name: `PRETTY_NAME` from `<root>/etc/os-release`, else
/// `uname -sr`, else `unknown`. Transport errors are returned.
pub(crate) async fn version(transport: &dyn Transport, os_release: &str) -> Result<String> {
    let command = RemoteCommand::template(VERSION_SCRIPT, &[os_release])?;
    let out = transport.exec(&command, TIMEOUT).await?;
    if !out.success() {
        return Ok("unknown".to_owned());
    }
    Ok(parse_version(&out.stdout_text()))
}

pub(crate) fn parse_version(output: &str) -> String {
    let pretty = output
        .lines()
        .find_map(|l| l.trim().strip_prefix("PRETTY_NAME="))
        .map(unquote)
        .filter(|v| !v.is_empty());
    if let Some(pretty) = pretty {
        return pretty;
    }
    output
        .lines()
        .find_map(|l| l.trim().strip_prefix("KASTELL_UNAME"))
        .map(|v| v.trim().to_owned())
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| "unknown".to_owned())
}

/// Removes one level of os-release quoting (`"..."` or `'...'`).
fn unquote(value: &str) -> String {
    let v = value.trim();
    for q in ['"', '\''] {
        if let Some(inner) = v.strip_prefix(q).and_then(|s| s.strip_suffix(q)) {
            return inner.replace("\\\"", "\"").replace("\\\\", "\\");
        }
    }
    v.to_owned()
}

/// SSH reachability plus `systemctl is-system-running`.
pub(crate) async fn health(transport: &dyn Transport) -> Result<Health> {
    let out = transport
        .exec(&RemoteCommand::fixed(HEALTH_SCRIPT), TIMEOUT)
        .await?;
    if !out.success() {
        return Ok(Health {
            healthy: false,
            detail: format!(
                "SSH reachable, but the health check exited with status {}: {}",
                out.status,
                out.stderr_text()
            ),
        });
    }
    Ok(parse_health(&out.stdout_text()))
}

pub(crate) fn parse_health(output: &str) -> Health {
    if output.lines().any(|l| l.trim() == "KASTELL_NO_SYSTEMCTL") {
        return Health {
            healthy: true,
            detail: "SSH reachable; no systemctl on this server, so no service state was checked"
                .to_owned(),
        };
    }
    let state = output
        .lines()
        .find_map(|l| l.trim().strip_prefix("KASTELL_STATE"))
        .map(str::trim)
        .unwrap_or("");
    match state {
        "running" => Health {
            healthy: true,
            detail: "SSH reachable; systemd: running".to_owned(),
        },
        "degraded" => {
            let failed: Vec<&str> = output
                .lines()
                .filter(|l| !l.trim().starts_with("KASTELL_STATE"))
                .filter_map(|l| l.split_whitespace().find(|w| *w != "●" && *w != "*"))
                .collect();
            let units = if failed.is_empty() {
                "the failed units could not be listed".to_owned()
            } else {
                format!("failed units: {}", failed.join(", "))
            };
            Health {
                healthy: false,
                detail: format!("SSH reachable; systemd: degraded; {units}"),
            }
        }
        "offline" => Health {
            healthy: true,
            detail:
                "SSH reachable; systemd is not running (offline), so no service state was checked"
                    .to_owned(),
        },
        "initializing" | "starting" => Health {
            healthy: false,
            detail: format!("SSH reachable; systemd: {state} (still booting)"),
        },
        "" => Health {
            healthy: false,
            detail: "SSH reachable; systemctl gave no system state".to_owned(),
        },
        other => Health {
            healthy: false,
            detail: format!("SSH reachable; systemd: {other}"),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_prefer_pretty_name_then_uname() {
        let out = "NAME=\"Debian\"\nPRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\n\nKASTELL_UNAME Linux 6.1.0\n";
        assert_eq!(parse_version(out), "Debian GNU/Linux 12 (bookworm)");
        assert_eq!(parse_version("PRETTY_NAME='Alpine'\n"), "Alpine");
        assert_eq!(parse_version("PRETTY_NAME=Plain\n"), "Plain");
        assert_eq!(
            parse_version("\nKASTELL_UNAME Linux 6.1.0\n"),
            "Linux 6.1.0"
        );
        assert_eq!(parse_version("\nKASTELL_UNAME \n"), "unknown");
        assert_eq!(parse_version(""), "unknown");
    }

    #[test]
    fn health_states() {
        assert!(parse_health("KASTELL_STATE running").healthy);
        assert!(parse_health("KASTELL_NO_SYSTEMCTL").healthy);
        assert!(parse_health("KASTELL_STATE offline").healthy);
        let h = parse_health(
            "KASTELL_STATE degraded\nnginx.service loaded failed failed nginx\n● x.service loaded failed failed X\n",
        );
        assert!(!h.healthy);
        assert!(
            h.detail.contains("nginx.service, x.service"),
            "{}",
            h.detail
        );
        let h = parse_health("KASTELL_STATE degraded\n");
        assert!(h.detail.contains("could not be listed"));
        assert!(!parse_health("KASTELL_STATE starting").healthy);
        assert!(!parse_health("KASTELL_STATE maintenance").healthy);
        assert!(!parse_health("").healthy);
    }
}
