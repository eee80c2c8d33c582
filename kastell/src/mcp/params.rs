//! The tools' arguments, as JSON-schema'd types. Arguments arrive as a raw
//! JSON object and are parsed here, so a malformed call (unknown action,
//! wrong type, an oversized string) becomes an `isError` result with a
//! hint instead of a protocol error.

use kastell_core::{Error, ErrorKind};
use schemars::JsonSchema;
use serde::Deserialize;
use serde::de::DeserializeOwned;

use super::strict::{self, ActionArgs, ToolArgs};

/// The longest string any argument may hold.
pub(crate) const MAX_ARG_LEN: usize = 256;

/// The longest `planToken` accepted (a sealed token is about 350 bytes).
pub(crate) const MAX_TOKEN_LEN: usize = 1024;

/// What `server_backup` does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
#[schemars(inline)]
pub(crate) enum BackupAction {
    // Back the server up over SSH into the local store.
    BackupCreate,
    // List the server's local backups.
    BackupList,
    // Restore a backup (needs backupId).
    BackupRestore,
    // Take a provider snapshot (billable).
    SnapshotCreate,
    // List the server's provider snapshots.
    SnapshotList,
    // Delete a provider snapshot (needs snapshotId).
    SnapshotDelete,
    // Rebuild the server from a snapshot (needs snapshotId).
    SnapshotRestore,
}

/// `server_backup` arguments.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct BackupArgs {
    /// backup-create: back the server up over SSH (platform database and
    /// configuration, or the configured paths on bare servers) into the local
    /// store with checksums (and a repository, with repo). backup-list: list
    /// local backups (or a repository's), newest first.
    /// backup-restore: verify a backup, take a safety backup, then stop the
    /// platform, restore and start it again (needs backupId). snapshot-create:
    /// take a provider snapshot and wait until it is available (billable).
    /// snapshot-list: list the server's provider snapshots. snapshot-delete:
    /// delete one (needs snapshotId). snapshot-restore: rebuild the server from
    /// one (needs snapshotId; replaces the disk). SAFE_MODE blocks
    /// backup-restore, snapshot-create, snapshot-delete and snapshot-restore.
    /// Snapshot actions need a cloud server and its provider's API token.
    pub(crate) action: BackupAction,
    /// Server name or IP. Optional when exactly one server exists; an empty
    /// string counts as absent.
    #[serde(default)]
    #[schemars(length(max = 256))]
    pub(crate) server: Option<String>,
    /// Backup id for backup-restore, from backup-list (letters, digits, `-`
    /// and `_`).
    #[serde(default)]
    #[schemars(length(min = 1, max = 256), regex(pattern = r"^[A-Za-z0-9_-]+$"))]
    pub(crate) backup_id: Option<String>,
    /// Snapshot id for snapshot-delete and snapshot-restore, from
    /// snapshot-list (letters, digits, `-_./`; never a `..` segment).
    #[serde(default)]
    #[schemars(length(min = 1, max = 256), regex(pattern = r"^[A-Za-z0-9_./-]+$"))]
    pub(crate) snapshot_id: Option<String>,
    /// Backup repository (a name from `kastell repo list`; encrypted,
    /// deduplicated, off this machine). backup-create: also store the new
    /// backup there once it is complete (default: the server's default
    /// repository, if any). backup-list: list the backups held there.
    /// backup-restore: restore a backup held there (pulled and checked
    /// first). Absent: the local store.
    #[serde(default)]
    #[schemars(length(min = 1, max = 64), regex(pattern = r"^[A-Za-z0-9_-]+$"))]
    pub(crate) repo: Option<String>,
    /// backup-restore, snapshot-delete, snapshot-restore: change nothing;
    /// return the plan (what would be overwritten, the newest backup, what a
    /// snapshot first would cost) and who confirms the real call. Only with
    /// confirm: plan-token and a client that cannot ask its user, also a
    /// planToken for exactly these arguments, valid for a few minutes.
    /// Refused after the user said no to this call.
    #[serde(default)]
    pub(crate) dry_run: bool,
    /// backup-restore, snapshot-delete, snapshot-restore: the planToken a
    /// dryRun returned, to carry out that plan. Refused when the arguments
    /// or the server's state changed, when it expired, when used twice, or
    /// after the user said no; never replaces asking a user who can be
    /// asked.
    #[serde(default)]
    #[schemars(length(min = 1, max = 1024))]
    pub(crate) plan_token: Option<String>,
}

/// `server_backup`'s actions and the arguments each reads.
pub(crate) const BACKUP_TOOL: ToolArgs = ToolArgs {
    tool: "server_backup",
    actions: &[
        ActionArgs {
            action: "backup-create",
            args: &["server", "repo"],
        },
        ActionArgs {
            action: "backup-list",
            args: &["server", "repo"],
        },
        ActionArgs {
            action: "backup-restore",
            args: &["server", "backupId", "repo", "dryRun", "planToken"],
        },
        ActionArgs {
            action: "snapshot-create",
            args: &["server"],
        },
        ActionArgs {
            action: "snapshot-list",
            args: &["server"],
        },
        ActionArgs {
            action: "snapshot-delete",
            args: &["server", "snapshotId", "dryRun", "planToken"],
        },
        ActionArgs {
            action: "snapshot-restore",
            args: &["server", "snapshotId", "dryRun", "planToken"],
        },
    ],
};

/// What `server_maintain` does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
#[schemars(inline)]
pub(crate) enum MaintainAction {
    // Update the platform (package upgrade on bare servers).
    Update,
    // Reboot the server and prove it (boot id changed).
    Restart,
    // Status, update, health, reboot, final check.
    Maintain,
}

/// `server_maintain` arguments.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct MaintainArgs {
    /// update: update the platform (Coolify or Dokploy update script; a
    /// package upgrade on bare servers). restart: reboot through the provider
    /// (over SSH for manual servers), proven by a changed boot id, then wait
    /// for SSH and platform health. maintain: status check, update, health
    /// check, reboot, final check; a failed health check skips the reboot.
    /// SAFE_MODE blocks all three.
    pub(crate) action: MaintainAction,
    /// Server name or IP. Optional when exactly one server exists; an empty
    /// string counts as absent.
    #[serde(default)]
    #[schemars(length(max = 256))]
    pub(crate) server: Option<String>,
    /// maintain only: skip the reboot.
    #[serde(default)]
    pub(crate) skip_reboot: bool,
    /// maintain only: take a provider snapshot first and wait until it is
    /// available (billable; needs the provider's token).
    #[serde(default)]
    pub(crate) snapshot: bool,
    /// maintain only: reboot even when the health check after the update
    /// failed.
    #[serde(default)]
    pub(crate) reboot_even_if_unhealthy: bool,
}

/// `server_maintain`'s actions and the arguments each reads.
pub(crate) const MAINTAIN_TOOL: ToolArgs = ToolArgs {
    tool: "server_maintain",
    actions: &[
        ActionArgs {
            action: "update",
            args: &["server"],
        },
        ActionArgs {
            action: "restart",
            args: &["server"],
        },
        ActionArgs {
            action: "maintain",
            args: &["server", "skipReboot", "snapshot", "rebootEvenIfUnhealthy"],
        },
    ],
};

/// What `server_info` does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
#[schemars(inline)]
pub(crate) enum InfoAction {
    // List the fleet.
    List,
    // SSH reachability, boot id and the provider's status.
    Status,
    // The platform's health.
    Health,
}

/// `server_info` arguments.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct InfoArgs {
    /// list: every server in the local fleet store. status: SSH reachability,
    /// boot id and (with a token) the provider's status. health: the
    /// platform's health check.
    pub(crate) action: InfoAction,
    /// Server name or IP (status, health). Optional when exactly one server
    /// exists; an empty string counts as absent.
    #[serde(default)]
    #[schemars(length(max = 256))]
    pub(crate) server: Option<String>,
}

/// `server_info`'s actions and the arguments each reads.
pub(crate) const INFO_TOOL: ToolArgs = ToolArgs {
    tool: "server_info",
    actions: &[
        ActionArgs {
            action: "list",
            args: &[],
        },
        ActionArgs {
            action: "status",
            args: &["server"],
        },
        ActionArgs {
            action: "health",
            args: &["server"],
        },
    ],
};

/// What `server_logs` does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
#[schemars(inline)]
pub(crate) enum LogsAction {
    // The last lines of a log.
    Logs,
    // CPU load, memory and disk use.
    Monitor,
}

/// Which log `server_logs` reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
#[schemars(inline)]
pub(crate) enum LogsSource {
    // The system journal.
    #[default]
    System,
    // The platform's container log (not on bare servers).
    Platform,
}

/// `server_logs` arguments.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct LogsArgs {
    /// logs: the last lines of the system journal (`journalctl`) or of the
    /// platform's container (`docker logs`). monitor: load averages, memory
    /// and root-disk use.
    pub(crate) action: LogsAction,
    /// Server name or IP. Optional when exactly one server exists; an empty
    /// string counts as absent.
    #[serde(default)]
    #[schemars(length(max = 256))]
    pub(crate) server: Option<String>,
    /// logs only: `system` (default) or `platform`.
    #[serde(default)]
    pub(crate) source: LogsSource,
    /// logs only: how many lines (default 100, at most 2000).
    #[serde(default)]
    #[schemars(range(min = 1, max = 2000))]
    pub(crate) lines: Option<u32>,
}

/// `server_logs`' actions and the arguments each reads.
pub(crate) const LOGS_TOOL: ToolArgs = ToolArgs {
    tool: "server_logs",
    actions: &[
        ActionArgs {
            action: "logs",
            args: &["server", "source", "lines"],
        },
        ActionArgs {
            action: "monitor",
            args: &["server"],
        },
    ],
};

/// A bad-arguments error with a hint.
fn invalid(message: impl Into<String>, hint: &str) -> Error {
    Error::new(ErrorKind::InvalidInput, message).with_hint(hint.to_owned())
}

fn check_lengths(value: &serde_json::Value) -> Result<(), Error> {
    let serde_json::Value::Object(map) = value else {
        return Ok(());
    };
    for (key, v) in map {
        if key.len() > MAX_ARG_LEN {
            return Err(invalid(
                "An argument name is too long",
                "Use the tool's schema",
            ));
        }
        let limit = if key == "planToken" {
            MAX_TOKEN_LEN
        } else {
            MAX_ARG_LEN
        };
        if let serde_json::Value::String(s) = v
            && s.len() > limit
        {
            return Err(invalid(
                format!("Argument {key} is too long ({} bytes)", s.len()),
                "Arguments are at most 256 characters; pass a server name or IP",
            ));
        }
    }
    Ok(())
}

/// Parses `arguments` into `T`, refusing strings over [`MAX_ARG_LEN`],
/// arguments `tool` does not know and arguments their action does not use
/// ([`strict::check`]), and naming what was wrong (never echoing the
/// whole value).
pub(super) fn parse<T: DeserializeOwned>(
    tool: &ToolArgs,
    arguments: serde_json::Map<String, serde_json::Value>,
) -> Result<T, Error> {
    let value = serde_json::Value::Object(arguments);
    check_lengths(&value)?;
    if let serde_json::Value::Object(arguments) = &value {
        strict::check(tool, arguments)?;
    }
    let tool = tool.tool;
    serde_json::from_value(value).map_err(|e| {
        let mut text = e.to_string();
        text.truncate(300);
        invalid(
            format!("Invalid arguments for {tool}: {text}"),
            "Check the tool's input schema: action must be one of its listed values",
        )
    })
}

/// `server`: empty or blank counts as absent.
pub(super) fn server(value: &Option<String>) -> Option<&str> {
    value.as_deref().filter(|s| !s.trim().is_empty())
}
