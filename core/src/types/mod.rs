//! Domain types shared by every provider, platform, transport and surface.

mod action;
mod apps;
mod backup;
mod ids;
mod place;
mod platform;
mod provision;
mod server;
mod snapshot;
mod step;

pub use action::{ActionKind, ActionRef, ActionState, ActionStatus, RebootMode};
pub use apps::{AppBackup, AppData, AppDataKind, AppHealth, AppObserved, AppSelection, is_app_key};
pub use backup::{
    ArtifactFormat, ArtifactRecord, ArtifactSink, ArtifactSource, ArtifactSpec, BackupId,
    BackupReport, Compression, ScopedSource,
};
pub use ids::{ServerId, SnapshotId};
pub use place::{PlatformRoot, Privilege};
pub use platform::{
    BackupStyle, Health, HealthLook, HealthWait, PlatformInfo, RebootAfterUpdate, UpdateOptions,
    UpdateReport, UpdateStyle, tail,
};
pub use provision::{
    MANAGED_KEY_PREFIX, MANAGED_TAG, ManagedRole, ManagedServer, ManagedSshKey, SSH_KEY_TAG,
    ServerChoice, ServerPrice, ServerSpec, is_managed_key_name, orphan_keys, ssh_key_fingerprint,
    ssh_key_from_tags,
};
pub use server::{ProviderInfo, Server, ServerStatus, TokenInfo};
pub use snapshot::{CostEstimate, Snapshot, SnapshotStatus};
pub use step::{RestoreReport, StepReport, StepStatus, StepTimer};
