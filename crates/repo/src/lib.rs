//! kastell's backup repository.
//!
//! A repository holds backups off the operator's machine: on a local
//! directory (a mounted disk), S3-compatible object storage, or a
//! directory on an SSH server over SFTP (its host key pinned in a
//! known_hosts file, the login a private key file). It is a
//! restic repository (format version 2), opened, read, checked and pruned
//! through `rustic_core` and written by kastell's own streaming writer
//! (`stream`, on every core, from streams of unknown length), so every
//! backup is
//! - encrypted at rest (AES-256-CTR with Poly1305, the key wrapped by a
//!   scrypt-derived key from the repository password),
//! - deduplicated (content-defined chunks shared across backups and servers),
//! - compressed (zstd),
//!
//! and stock `restic` can check it, list it and restore from it when kastell
//! is gone. kastell never runs restic's locks; a repository should not be
//! pruned by `restic prune` while kastell writes to it.
//!
//! A backup becomes visible ([`BackupRepository::snapshots`]) only when its
//! snapshot file is written, after every pack and index it refers to:
//! an interrupted upload leaves unreferenced packs, never a listed backup.
//!
//! The API is blocking (rustic_core's is); call it from a blocking thread.

pub mod append_only;
pub mod backend;
mod error;
mod gate;
pub mod location;
pub mod repository;
pub mod retention;
mod reuse;
mod store;
pub mod stream;

pub use location::RepoLocation;
pub use repository::{BackupRepository, CheckReport, RepoSnapshot};
pub use retention::{KeepPolicy, PruneDecision};
pub use store::StoredEntry;
pub use stream::{EntryWriter, StreamWriter};
