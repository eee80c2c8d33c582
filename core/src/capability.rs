//! Capability descriptors: what an implementation can do, declared up front
//! so callers refuse unsupported operations before any I/O.
//!
//! The structs are deliberately exhaustive with `Default` (all `false`), so a
//! third-party crate can write `CloudCapability { reboot: true, ..Default::default() }`,
//! or `..CloudCapability::NONE` in a `const` registry entry.

use serde::Serialize;

use crate::error::Error;

/// What a [`crate::CloudProvider`] supports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct CloudCapability {
    /// Soft reboot.
    pub reboot: bool,
    /// Hard reboot (power cycle).
    pub reboot_hard: bool,
    /// Creating snapshots.
    pub snapshot_create: bool,
    /// Listing one server's snapshots.
    pub snapshot_list: bool,
    /// Deleting snapshots.
    pub snapshot_delete: bool,
    /// Rebuilding a server from its snapshot.
    pub snapshot_restore: bool,
    /// Snapshot cost estimates.
    pub cost_estimate: bool,
    /// Finding a server by IP without listing the whole account.
    pub find_by_ip_server_side: bool,
    /// Creating servers (and listing, pricing and deleting the ones kastell
    /// created).
    pub server_create: bool,
    /// Deleting servers kastell created.
    pub server_delete: bool,
}

impl CloudCapability {
    /// Everything off. Usable in `const` items, unlike `Default`:
    /// `CloudCapability { reboot: true, ..CloudCapability::NONE }`.
    pub const NONE: Self = Self {
        reboot: false,
        reboot_hard: false,
        snapshot_create: false,
        snapshot_list: false,
        snapshot_delete: false,
        snapshot_restore: false,
        cost_estimate: false,
        find_by_ip_server_side: false,
        server_create: false,
        server_delete: false,
    };

    /// Everything on; used by the memory reference implementation.
    pub const fn all() -> Self {
        Self {
            reboot: true,
            reboot_hard: true,
            snapshot_create: true,
            snapshot_list: true,
            snapshot_delete: true,
            snapshot_restore: true,
            cost_estimate: true,
            find_by_ip_server_side: true,
            server_create: true,
            server_delete: true,
        }
    }
}

/// What a [`crate::Platform`] supports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct PlatformCapability {
    /// Reading the platform version.
    pub version: bool,
    /// Health checks.
    pub health: bool,
    /// Updates.
    pub update: bool,
    /// Update dry runs that change nothing.
    pub update_dry_run: bool,
    /// Backups.
    pub backup: bool,
    /// Restoring backups.
    pub backup_restore: bool,
    /// Stopping and starting the platform's services.
    pub stop_start: bool,
}

impl PlatformCapability {
    /// Everything off. Usable in `const` items, unlike `Default`.
    pub const NONE: Self = Self {
        version: false,
        health: false,
        update: false,
        update_dry_run: false,
        backup: false,
        backup_restore: false,
        stop_start: false,
    };

    /// Everything on; used by the memory reference implementation.
    pub const fn all() -> Self {
        Self {
            version: true,
            health: true,
            update: true,
            update_dry_run: true,
            backup: true,
            backup_restore: true,
            stop_start: true,
        }
    }
}

/// The error every implementation returns for an operation its capability
/// does not declare, before doing any I/O.
pub fn unsupported(owner: &'static str, operation: &'static str) -> Error {
    Error::unsupported(format!("{owner} does not support {operation}"))
        .with_provider(owner)
        .with_operation(operation)
}
