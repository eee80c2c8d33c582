//! Where a platform's files are and how it reaches the rights to change
//! them: the typed part of a [`crate::PlatformContext`].

use crate::error::{Error, Result};

/// The directory a platform treats as the server's `/`: every path it
/// reads or writes is resolved under it. The default is the server's own
/// `/`; the sandbox confines each platform to its fake host's root, and a
/// platform confined to a root touches nothing outside it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlatformRoot(String);

impl Default for PlatformRoot {
    /// The server's own `/`.
    fn default() -> Self {
        Self("/".to_owned())
    }
}

impl PlatformRoot {
    /// The root `path`, normalised (`//` and `.` collapsed, no trailing
    /// `/`). Refuses a path that is not absolute, has a `..` component, or
    /// holds a NUL or a line break.
    pub fn new(path: &str) -> Result<Self> {
        let parts = components(path).ok_or_else(|| {
            Error::config_invalid(format!(
                "platform root {path:?} must be an absolute path without `..`"
            ))
            .with_hint("Give the root as an absolute directory such as /srv/host")
        })?;
        Ok(Self(format!("/{}", parts.join("/"))))
    }

    /// The root as text (`/` for the server's own).
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The absolute `path` relative to `/`, normalised (`/etc//nginx/` →
    /// `etc/nginx`, `/` → the empty string); `None` for a relative path, a
    /// `..` component, a NUL or a line break.
    pub fn relative(path: &str) -> Option<String> {
        components(path).map(|parts| parts.join("/"))
    }

    /// Whether this is the server's own `/` (no confinement).
    pub fn is_server_root(&self) -> bool {
        self.0 == "/"
    }

    /// `path`, a path on the server (`/etc/crontab`; a leading `/` is
    /// optional), under this root (`/srv/host/etc/crontab`). The caller
    /// keeps `path` free of `..`.
    pub fn join(&self, path: &str) -> String {
        let relative = path.trim_start_matches('/');
        match (self.is_server_root(), relative.is_empty()) {
            (_, true) => self.0.clone(),
            (true, false) => format!("/{relative}"),
            (false, false) => format!("{}/{relative}", self.0),
        }
    }
}

impl std::fmt::Display for PlatformRoot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// The components of the absolute `path` without empty ones and `.`;
/// `None` for a relative path, a `..` component, a NUL or a line break.
fn components(path: &str) -> Option<Vec<&str>> {
    if !path.starts_with('/') || path.contains(['\0', '\n', '\r']) {
        return None;
    }
    let parts: Vec<&str> = path
        .split('/')
        .filter(|p| !p.is_empty() && *p != ".")
        .collect();
    (!parts.contains(&"..")).then_some(parts)
}

/// How a platform's privileged commands (backups, restores, upgrades) get
/// their rights on the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Privilege {
    /// Through `sudo -n` unless the login user is `root` (the default).
    #[default]
    Auto,
    /// Always through `sudo -n`.
    Sudo,
    /// Never through sudo: the login user has the rights itself (a root
    /// login, or the sandbox's user, who owns its fake root).
    LoginUser,
}

impl Privilege {
    /// The words of a server record's `sudo` platform option: `auto`,
    /// `always` or `never`.
    pub const WORDS: [(&'static str, Self); 3] = [
        ("auto", Self::Auto),
        ("always", Self::Sudo),
        ("never", Self::LoginUser),
    ];

    /// The privilege a `sudo` option word names. Refuses any other word.
    pub fn from_word(word: &str) -> Result<Self> {
        Self::WORDS
            .iter()
            .find(|(w, _)| *w == word)
            .map(|(_, p)| *p)
            .ok_or_else(|| {
                Error::config_invalid(format!(
                    "sudo option {word:?} must be auto, always or never"
                ))
                .with_hint(
                    "auto: sudo unless logging in as root; always: sudo -n; never: the login user has the rights",
                )
            })
    }

    /// The `sudo` option word of this privilege.
    pub fn word(self) -> &'static str {
        Self::WORDS
            .iter()
            .find(|(_, p)| *p == self)
            .map_or("auto", |(w, _)| w)
    }

    /// Whether commands run as `user` go through `sudo -n`.
    pub fn uses_sudo(self, user: &str) -> bool {
        match self {
            Self::Auto => user != "root",
            Self::Sudo => true,
            Self::LoginUser => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorKind;

    #[test]
    fn roots_are_normalised_and_joined() {
        let root = PlatformRoot::new("/home/x/fake//root/./").unwrap();
        assert_eq!(root.as_str(), "/home/x/fake/root");
        assert_eq!(root.join("/etc/crontab"), "/home/x/fake/root/etc/crontab");
        assert_eq!(root.join("etc/crontab"), "/home/x/fake/root/etc/crontab");
        assert_eq!(root.join("/"), "/home/x/fake/root");
        let server = PlatformRoot::default();
        assert!(server.is_server_root());
        assert_eq!(PlatformRoot::new("//").unwrap(), server);
        assert_eq!(server.join("etc/crontab"), "/etc/crontab");
        assert_eq!(server.join("/"), "/");
        assert_eq!(
            PlatformRoot::relative("/etc//./nginx/").as_deref(),
            Some("etc/nginx")
        );
        assert_eq!(PlatformRoot::relative("/").as_deref(), Some(""));
        assert_eq!(PlatformRoot::relative("/etc/../root"), None);
        for bad in ["relative", "/a/../b", "", "/a\nb", "/a\0"] {
            let err = PlatformRoot::new(bad).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::ConfigInvalid, "{bad:?}");
        }
    }

    #[test]
    fn privileges_read_the_sudo_words() {
        for (word, privilege) in Privilege::WORDS {
            assert_eq!(Privilege::from_word(word).unwrap(), privilege);
            assert_eq!(privilege.word(), word);
        }
        assert!(Privilege::from_word("true").is_err());
        assert!(Privilege::Auto.uses_sudo("deploy"));
        assert!(!Privilege::Auto.uses_sudo("root"));
        assert!(Privilege::Sudo.uses_sudo("root"));
        assert!(!Privilege::LoginUser.uses_sudo("deploy"));
    }
}
