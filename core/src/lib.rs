//! # kastell-core: the plugin contract
//!
//! Everything a provider, platform or transport crate needs, and nothing
//! else:
//!
//! - the traits [`CloudProvider`], [`Platform`] and [`Transport`], with
//!   waiting and convenience helpers in [`CloudProviderExt`],
//!   [`PlatformExt`] and [`TransportExt`], and [`ArtifactSinkExt::stream`],
//!   which is all a platform's backup needs to write an artifact;
//! - the domain types in [`types`] and the capability descriptors in
//!   [`capability`];
//! - one [`Error`] type with a [`ErrorKind`], retryability and hints, and
//!   the shared [`RetryPolicy`];
//! - the link-time [`Registry`] with [`register_provider!`] and
//!   [`register_platform!`];
//! - reference implementations in [`memory`], used by unit tests and by the
//!   conformance suite as its own self-test;
//! - safe remote commands ([`shell`]) and child-process hygiene ([`env`]).

pub mod capability;
pub mod cloud;
pub mod detect;
pub mod env;
pub mod error;
pub mod memory;
pub mod platform;
pub mod poll;
pub mod registry;
pub mod retry;
pub mod secret;
pub mod shell;
pub mod time;
pub mod transport;
pub mod types;
pub mod wire;

pub use capability::{CloudCapability, PlatformCapability};
pub use cloud::{CloudProvider, CloudProviderExt, RebootOutcome};
pub use detect::PlatformDetection;
pub use error::{Advice, Error, ErrorKind, ErrorReport, Result};
pub use platform::{Platform, PlatformExt};
pub use poll::{Look, PollSchedule};
pub use registry::{
    PlatformContext, PlatformEntry, PlatformTarget, ProviderConfig, ProviderEntry,
    ProviderIdentity, Registry,
};
pub use retry::{Idempotency, RetryPolicy};
pub use secret::Secret;
pub use shell::{RemoteCommand, quote};
pub use transport::{
    BoxRead, BoxWrite, HostKeyInfo, HostKeyTrust, HostTarget, Output, StreamOutput, Transport,
    TransportExt, held_open_stdin,
};
pub use wire::ArtifactSinkExt;

/// Re-exports used by the registration macros; not part of the public API.
#[doc(hidden)]
pub mod __private {
    pub use inventory;
}
