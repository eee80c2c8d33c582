//! What platforms report: identity, health and updates.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Who a platform implementation is, and how a maintenance treats its
/// update. Built from the platform's registry entry
/// ([`crate::PlatformEntry::info`]) so the two never disagree.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PlatformInfo {
    /// Registry id (`coolify`, `dokploy`, `bare`).
    pub id: &'static str,
    /// Human name (`Coolify`).
    pub display_name: &'static str,
    /// How its update is named, described and followed.
    pub update: UpdateStyle,
}

impl PlatformInfo {
    /// A platform `id` called `display_name` whose update is its own
    /// command followed by a reboot ([`UpdateStyle::OWN_COMMAND`]).
    pub const fn new(id: &'static str, display_name: &'static str) -> Self {
        Self {
            id,
            display_name,
            update: UpdateStyle::OWN_COMMAND,
        }
    }

    /// The update step's name in a maintenance: the style's own name, else
    /// `<display name> Update` (`Coolify Update`).
    pub fn update_step(&self) -> String {
        match self.update.step {
            Some(step) => step.to_owned(),
            None => format!("{} Update", self.display_name),
        }
    }
}

/// When a maintenance reboots the server after a successful update.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum RebootAfterUpdate {
    /// Always (unless the user skips it or the platform is unhealthy).
    Always,
    /// Only when the update reports that one is required (a package
    /// upgrade that replaced the kernel or libc).
    WhenRequired,
}

/// How a maintenance names, describes and follows a platform's update.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct UpdateStyle {
    /// The update step's name; `None` names it `<display name> Update`.
    pub step: Option<&'static str>,
    /// What the update runs, as a dry-run plan describes it
    /// (`the platform's own update command`).
    pub runs: &'static str,
    /// When a reboot follows it.
    pub reboot: RebootAfterUpdate,
}

impl UpdateStyle {
    /// The platform's own update command, then a reboot: the PaaS way.
    pub const OWN_COMMAND: Self = Self {
        step: None,
        runs: "the platform's own update command",
        reboot: RebootAfterUpdate::Always,
    };
}

impl Default for UpdateStyle {
    fn default() -> Self {
        Self::OWN_COMMAND
    }
}

/// What a platform's backup holds, in the words a dry-run plan and a
/// person asked to confirm a restore read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct BackupStyle {
    /// What a backup holds and a restore replaces, as a noun phrase
    /// (`the platform's database and configuration`).
    pub holds: &'static str,
}

impl BackupStyle {
    /// A PaaS's backup: its database and its configuration.
    pub const DATABASE_AND_CONFIGURATION: Self = Self {
        holds: "the platform's database and configuration",
    };

    /// A PaaS's backup with its users' apps: its database, its
    /// configuration, and each app's databases and volumes.
    pub const PLATFORM_AND_APPS: Self = Self {
        holds: "the platform's database and configuration and each app's databases and volumes",
    };
}

/// Whether the platform answers as it should.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Health {
    /// Healthy only on a definite good answer (2xx/3xx, service active).
    pub healthy: bool,
    /// What was checked and what it said.
    pub detail: String,
}

/// One look at a platform's health while waiting on it
/// ([`crate::Platform::health_look`]): the answer, and whether nothing
/// listened where the check asked (the connection was refused), which a
/// wait may end early on ([`HealthWait::refused_grace`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthLook {
    /// What the check said.
    pub health: Health,
    /// The check's connection was refused: nothing listens there (yet).
    /// A timeout, a 5xx or any other answer is not a refusal.
    pub refused: bool,
}

/// How long to wait for a platform to be healthy
/// ([`crate::PlatformExt::wait_healthy_with`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HealthWait {
    /// The longest wait.
    pub deadline: Duration,
    /// Ends the wait early when every look for this long after the first
    /// was refused (nothing listens where the check asks); `None` waits
    /// the whole deadline.
    pub refused_grace: Option<Duration>,
}

impl HealthWait {
    /// How long a refusing health port is given to start listening by
    /// default: a platform that was just started binds its port within
    /// seconds; one that refuses for this long is not coming up on it.
    pub const DEFAULT_REFUSED_GRACE: Duration = Duration::from_secs(20);

    /// A wait of at most `deadline` that ends after
    /// [`Self::DEFAULT_REFUSED_GRACE`] of refused connections.
    pub fn new(deadline: Duration) -> Self {
        Self {
            deadline,
            refused_grace: Some(Self::DEFAULT_REFUSED_GRACE),
        }
    }
}

/// How to run an update.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpdateOptions {
    /// Report the plan without changing anything.
    pub dry_run: bool,
    /// Time allowed for the update command.
    pub timeout: Duration,
}

impl Default for UpdateOptions {
    fn default() -> Self {
        Self {
            dry_run: false,
            timeout: Duration::from_secs(30 * 60),
        }
    }
}

/// What an update did (or, for a dry run, would do).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UpdateReport {
    /// Version before the update.
    pub version_before: Option<String>,
    /// Version after the update.
    pub version_after: Option<String>,
    /// Packages upgraded (bare servers).
    pub packages_upgraded: Vec<String>,
    /// Whether the server needs a reboot to finish the update.
    pub reboot_required: bool,
    /// The remote commands run, or planned in a dry run.
    pub commands: Vec<String>,
    /// The last part of the command output.
    pub output_tail: String,
    /// Advice for the reader.
    pub hint: Option<String>,
}

/// The last `max` bytes of `text`, moved forward to a character boundary
/// (so possibly fewer): what an [`UpdateReport::output_tail`] or an error
/// keeps of a command's long output.
pub fn tail(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_owned();
    }
    let mut start = text.len() - max;
    while !text.is_char_boundary(start) {
        start += 1;
    }
    text[start..].to_owned()
}

#[cfg(test)]
mod tests {
    use super::tail;

    #[test]
    fn tail_keeps_the_last_bytes_on_a_character_boundary() {
        assert_eq!(tail("héllo", 4), "llo");
        assert_eq!(tail("héllo", 5), "éllo");
        assert_eq!(tail("héllo", 6), "héllo");
        assert_eq!(tail("ab", 4), "ab");
        assert_eq!(tail("", 0), "");
    }
}
