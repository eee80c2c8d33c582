//! The bare platform's options and the paths it works on.

use std::collections::BTreeMap;
use std::time::Duration;

use kastell_core::types::{PlatformRoot, Privilege};
use kastell_core::{Error, PlatformContext, Result};

/// Option key: seconds allowed for each apt step of an update.
pub const OPTION_UPDATE_TIMEOUT: &str = "update_timeout_secs";

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

/// What the bare platform works with: the context's root and privilege
/// and its own parsed options.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BareOptions {
    /// Where every path is resolved ([`PlatformContext::root`]).
    pub root: PlatformRoot,
    /// Time allowed for each apt step (the longer of this and the
    /// caller's update timeout is used).
    pub update_timeout: Duration,
    /// How privileged commands get their rights
    /// ([`PlatformContext::privilege`]).
    pub privilege: Privilege,
}

impl Default for BareOptions {
    fn default() -> Self {
        Self {
            root: PlatformRoot::default(),
            update_timeout: DEFAULT_UPDATE_TIMEOUT,
            privilege: Privilege::Auto,
        }
    }
}

fn invalid(message: String) -> Error {
    Error::config_invalid(message)
        .with_provider(crate::ID)
        .with_hint(format!(
            "The bare platform accepts the option {OPTION_UPDATE_TIMEOUT} (seconds, default \
             3600); its root and privilege are the context's own fields"
        ))
}

impl BareOptions {
    /// The root and privilege of `ctx` with its options parsed. Refuses
    /// unknown option keys and a timeout that is not a positive number of
    /// seconds.
    pub fn from_context(ctx: &PlatformContext) -> Result<Self> {
        let mut parsed = Self::from_map(&ctx.options)?;
        parsed.root = ctx.root.clone();
        parsed.privilege = ctx.privilege;
        Ok(parsed)
    }

    /// Parses the platform options, with the default root and privilege.
    /// Refuses unknown keys and a timeout that is not a positive number of
    /// seconds.
    pub fn from_map(options: &BTreeMap<String, String>) -> Result<Self> {
        let mut parsed = Self::default();
        for (key, value) in options {
            match key.as_str() {
                OPTION_UPDATE_TIMEOUT => {
                    let secs = value.trim().parse::<u64>().ok().filter(|s| *s > 0);
                    let secs = secs.ok_or_else(|| {
                        invalid(format!(
                            "option {OPTION_UPDATE_TIMEOUT}={value:?} must be a positive number of seconds"
                        ))
                    })?;
                    parsed.update_timeout = Duration::from_secs(secs);
                }
                _ => return Err(invalid(format!("unknown bare platform option {key:?}"))),
            }
        }
        Ok(parsed)
    }

    /// `relative` (as returned by [`relative_path`]) under the root.
    pub fn under_root(&self, relative: &str) -> String {
        self.root.join(relative)
    }
}

/// The path `path` relative to the filesystem root (`/etc/nginx/` →
/// `etc/nginx`). Refuses paths that are not absolute, contain `..`, a NUL
/// or a newline, or name `/` itself.
pub fn relative_path(path: &str) -> Result<String> {
    match PlatformRoot::relative(path) {
        Some(relative) if !relative.is_empty() => Ok(relative),
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
        let o = BareOptions {
            root: PlatformRoot::new("/home/x/fake//root/").unwrap(),
            ..BareOptions::from_map(&map(&[("update_timeout_secs", "60")])).unwrap()
        };
        assert_eq!(o.under_root("etc/crontab"), "/home/x/fake/root/etc/crontab");
        assert_eq!(o.update_timeout, Duration::from_secs(60));
        for bad in [
            ("update_timeout_secs", "0"),
            ("update_timeout_secs", "soon"),
            ("root", "/srv"),
            ("sudo", "never"),
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
