//! Handles for asynchronous provider work (reboots, snapshots, restores).

use serde::{Deserialize, Serialize};

use super::ids::ServerId;

/// Soft (ACPI) or hard (power cycle) reboot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RebootMode {
    /// Ask the operating system to reboot.
    #[default]
    Soft,
    /// Cut power and start again.
    Hard,
}

/// What an action does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ActionKind {
    /// A reboot.
    Reboot,
    /// Taking a snapshot.
    CreateSnapshot,
    /// Rebuilding a server from a snapshot.
    RestoreSnapshot,
}

/// A handle to asynchronous work at a provider.
///
/// `id` is the provider's action or event id; providers without action
/// handles (Vultr) put a synthetic id here and resolve status by polling the
/// resource itself. `resource` names what the action produces when known
/// (the snapshot id of a snapshot action).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActionRef {
    /// Provider action/event id, or a synthetic one.
    pub id: String,
    /// What the action does.
    pub kind: ActionKind,
    /// The server it acts on.
    pub server: ServerId,
    /// The id of the resource it produces, when known up front.
    pub resource: Option<String>,
}

impl ActionRef {
    /// The action `id` of `kind` on `server`, producing no known resource.
    pub fn new(id: impl Into<String>, kind: ActionKind, server: ServerId) -> Self {
        Self {
            id: id.into(),
            kind,
            server,
            resource: None,
        }
    }
}

/// Progress of an action.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ActionState {
    /// Still running.
    Running,
    /// Finished successfully.
    Succeeded,
    /// Finished with an error.
    Failed,
}

/// The state of an action at one moment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActionStatus {
    /// Running, succeeded or failed.
    pub state: ActionState,
    /// Percent done, when the provider tells.
    pub progress: Option<u8>,
    /// The produced resource's id, once known (DigitalOcean snapshot ids
    /// are only known after the action completes).
    pub resource: Option<String>,
    /// The provider's message for a failure.
    pub message: Option<String>,
}

impl ActionStatus {
    /// The status `state`, with no progress, resource or message.
    pub fn of(state: ActionState) -> Self {
        Self {
            state,
            progress: None,
            resource: None,
            message: None,
        }
    }

    /// Whether the action has finished, one way or the other.
    pub fn is_finished(&self) -> bool {
        !matches!(self.state, ActionState::Running)
    }
}
