//! What platforms report: identity, health and updates.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Who a platform implementation is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PlatformInfo {
    /// Registry id (`coolify`, `dokploy`, `bare`).
    pub id: &'static str,
    /// Human name (`Coolify`).
    pub display_name: &'static str,
}

/// Whether the platform answers as it should.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Health {
    /// Healthy only on a definite good answer (2xx/3xx, service active).
    pub healthy: bool,
    /// What was checked and what it said.
    pub detail: String,
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
