//! Backups: streamed, checksummed, published atomically, restored only
//! after verification, with a guard that always starts a stopped platform
//! again.
//!
//! Layout: `<KASTELL_DIR>/backups/<server>/<backup-id>/` holding the
//! artifacts (zstd-compressed, 0600) and `manifest.json`, a superset of the
//! original tool's manifest. A backup is written into a hidden
//! `.staging-*` directory and renamed into place only when every artifact
//! is sealed, so a failed or interrupted backup is never listed and leaves
//! nothing behind. Inside a backup nothing is a link: a backup directory,
//! manifest or artifact that is a symbolic link (or not a directory /
//! regular file) is listed corrupt, fails verification and is never
//! followed when reading, restoring, pushing or pruning.

mod checked;
mod digest;
mod engine;
mod layout;
mod manifest;
mod nofollow;
pub mod orphans;
mod pipeline;
pub mod prune;
mod restore_steps;
mod staging;
mod stored;
mod tap;
mod transfer;
pub mod wire;

pub use crate::state::HostLock;
pub(crate) use checked::read_error;
pub(crate) use digest::Digesting;
pub use engine::{BackupEngine, BackupRequest, CreatedBackup, RestoreOutcome, RestoreRequest};
pub use layout::{BACKUPS_DIR, BackupLayout, LOCK_FILE, STAGING_PREFIX, check_component};
pub(crate) use manifest::is_plain_artifact_name;
pub use manifest::{ContentDigest, FORMAT_VERSION, MANIFEST_FILE, Manifest, stored_file};
pub(crate) use nofollow::BackupDir;
pub use restore_steps::RestoreHealth;
pub(crate) use restore_steps::nothing_changed;
pub use staging::{Staging, is_abandoned, sweep_abandoned};
pub use stored::{BackupStatus, StoredBackup, VerifiedSource};
pub use transfer::{Counted, REPORT_EVERY, TransferProgress};

#[cfg(test)]
mod restore_health_tests;
#[cfg(test)]
mod tests;
