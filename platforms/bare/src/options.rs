//! The bare platform's options and the paths it works on.

use std::collections::BTreeMap;
use std::time::Duration;

use kastell_core::{Error, Result};

/// Option key: the filesystem prefix every path is resolved under.
pub const OPTION_ROOT: &str = "root";
/// Option key: seconds allowed for each apt step of an update.
pub const OPTION_UPDATE_TIMEOUT: &str = "update_timeout_secs";
/// Option key: whether privileged commands run through `sudo -n`.
pub const OPTION_SUDO: &str = "sudo";

/// The paths backed up when the server record names none: what the
/// original tool archived for bare servers.
pub const DEFAULT_BACKUP_PATHS: &[&str] = &[
    "/etc/nginx",
    "/etc/ssh/sshd_config",
    "/etc/ufw",
    "/etc/fail2ban",
    "/etc/crontab",
    "/etc/apt/apt.conf.d/50unattended-upgrades",
];

/// Default for [`OPTION_UPDATE_TIMEOUT`]: one hour.
pub const DEFAULT_UPDATE_TIMEOUT: Duration = Duration::from_secs(3600);

/// When privileged commands (backup, restore, apt) are wrapped in
/// `sudo -n sh -c '...'`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SudoMode {
    /// Use `sudo -n` unless the login user is `root` (the default).
    #[default]
    Auto,
    /// Always use `sudo -n`.
    Always,
    /// Never use sudo: the login user must have the rights itself.
    Never,
}

impl SudoMode {
    /// Whether commands run as `user` go through sudo.
    pub fn applies_to(self, user: &str) -> bool {
        match self {
            Self::Auto => user != "root",
            Self::Always => true,
            Self::Never => false,
        }
    }
}

/// The parsed options of a bare platform.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BareOptions {
    /// Absolute filesystem prefix, without a trailing `/` (except `/`).
    pub root: String,
    /// Time allowed for each apt step (the longer of this and the
    /// caller's update timeout is used).
    pub update_timeout: Duration,
    /// When to use `sudo -n`.
    pub sudo: SudoMode,
}

impl Default for BareOptions {
    fn default() -> Self {
        Self {
            root: "/".to_owned(),
            update_timeout: DEFAULT_UPDATE_TIMEOUT,
            sudo: SudoMode::Auto,
        }
    }
}

fn invalid(message: String) -> Error {
    Error::config_invalid(message)
        .with_provider(crate::ID)
        .with_hint(format!(
            "The bare platform accepts the options {OPTION_ROOT} (an absolute path, default /), \
             {OPTION_UPDATE_TIMEOUT} (seconds, default 3600) and {OPTION_SUDO} (auto, always or never)"
        ))
}

impl BareOptions {
    /// Parses the platform options. Refuses unknown keys, a `root` that is
    /// not an absolute path free of `..`, a timeout that is not a positive
    /// number of seconds and an unknown sudo mode.
    pub fn from_map(options: &BTreeMap<String, String>) -> Result<Self> {
        let mut parsed = Self::default();
        for (key, value) in options {
            match key.as_str() {
                OPTION_ROOT => {
                    parsed.root = normalise_root(value).ok_or_else(|| {
                        invalid(format!(
                            "option {OPTION_ROOT}={value:?} must be an absolute path without `..`"
                        ))
                    })?;
                }
                OPTION_UPDATE_TIMEOUT => {
                    let secs = value.trim().parse::<u64>().ok().filter(|s| *s > 0);
                    let secs = secs.ok_or_else(|| {
                        invalid(format!(
                            "option {OPTION_UPDATE_TIMEOUT}={value:?} must be a positive number of seconds"
                        ))
                    })?;
                    parsed.update_timeout = Duration::from_secs(secs);
                }
                OPTION_SUDO => {
                    parsed.sudo = match value.as_str() {
                        "auto" => SudoMode::Auto,
                        "always" => SudoMode::Always,
                        "never" => SudoMode::Never,
                        _ => {
                            return Err(invalid(format!(
                                "option {OPTION_SUDO}={value:?} must be auto, always or never"
                            )));
                        }
                    };
                }
                _ => return Err(invalid(format!("unknown bare platform option {key:?}"))),
            }
        }
        Ok(parsed)
    }

    /// `relative` (as returned by [`relative_path`]) under the root.
    pub fn under_root(&self, relative: &str) -> String {
        if self.root == "/" {
            format!("/{relative}")
        } else {
            format!("{}/{relative}", self.root)
        }
    }
}

/// Splits an absolute path into its components; `None` for a relative
/// path, a `..` component or a NUL or newline anywhere.
fn components(path: &str) -> Option<Vec<&str>> {
    if !path.starts_with('/') || path.contains(['\0', '\n', '\r']) {
        return None;
    }
    let parts: Vec<&str> = path
        .split('/')
        .filter(|p| !p.is_empty() && *p != ".")
        .collect();
    if parts.contains(&"..") {
        return None;
    }
    Some(parts)
}

fn normalise_root(root: &str) -> Option<String> {
    components(root).map(|parts| format!("/{}", parts.join("/")))
}

/// The path `path` relative to the filesystem root (`/etc/nginx/` →
/// `etc/nginx`). Refuses paths that are not absolute, contain `..`, a NUL
/// or a newline, or name `/` itself.
pub fn relative_path(path: &str) -> Result<String> {
    match components(path) {
        Some(parts) if !parts.is_empty() => Ok(parts.join("/")),
        _ => Err(Error::invalid_input(format!(
            "backup path {path:?} must be an absolute path below / without `..`"
        ))
        .with_provider(crate::ID)
        .with_hint("Set the server's backup paths to absolute paths such as /etc/nginx")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn defaults_and_parsing() {
        let o = BareOptions::from_map(&BTreeMap::new()).unwrap();
        assert_eq!(o, BareOptions::default());
        assert_eq!(o.under_root("etc/crontab"), "/etc/crontab");
        let o = BareOptions::from_map(&map(&[
            ("root", "/home/x/fake//root/"),
            ("update_timeout_secs", "60"),
            ("sudo", "never"),
        ]))
        .unwrap();
        assert_eq!(o.root, "/home/x/fake/root");
        assert_eq!(o.under_root("etc/crontab"), "/home/x/fake/root/etc/crontab");
        assert_eq!(o.update_timeout, Duration::from_secs(60));
        assert_eq!(o.sudo, SudoMode::Never);
        for bad in [
            ("root", "relative"),
            ("root", "/a/../b"),
            ("update_timeout_secs", "0"),
            ("update_timeout_secs", "soon"),
            ("sudo", "maybe"),
            ("colour", "blue"),
        ] {
            let err = BareOptions::from_map(&map(&[bad])).unwrap_err();
            assert_eq!(
                err.kind(),
                kastell_core::ErrorKind::ConfigInvalid,
                "{bad:?}"
            );
            assert!(err.hint().is_some());
        }
    }

    #[test]
    fn sudo_modes() {
        assert!(SudoMode::Auto.applies_to("deploy"));
        assert!(!SudoMode::Auto.applies_to("root"));
        assert!(SudoMode::Always.applies_to("root"));
        assert!(!SudoMode::Never.applies_to("deploy"));
    }

    #[test]
    fn relative_paths_refuse_traversal() {
        assert_eq!(relative_path("/etc/nginx/").unwrap(), "etc/nginx");
        assert_eq!(
            relative_path("/etc/./ssh//sshd_config").unwrap(),
            "etc/ssh/sshd_config"
        );
        assert_eq!(relative_path("/-odd").unwrap(), "-odd");
        for bad in [
            "etc/nginx",
            "/etc/../root",
            "/",
            "//",
            "",
            "/etc/a\nb",
            "/a\0",
        ] {
            let err = relative_path(bad).unwrap_err();
            assert_eq!(err.kind(), kastell_core::ErrorKind::InvalidInput, "{bad:?}");
        }
    }
}
