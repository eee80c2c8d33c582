//! # kastell-testkit: test support shared by every kastell crate
//!
//! - [`sshd`]: a private OpenSSH server on loopback (re-exported from
//!   `kastell-ssh`'s sandbox) and a ready-made [`sshd::SshdFixture`].
//! - [`transport`]: the conformance trials every [`kastell_core::Transport`]
//!   must pass, instantiated per implementation with [`transport_trials!`].
//! - [`cloud`]: the conformance trials every [`kastell_core::CloudProvider`]
//!   must pass, against its simulator (and against `MemoryCloud`), with
//!   [`cloud_trials!`].
//! - [`live`]: the same trials' read-only ones against a real API, with
//!   `KASTELL_TEST_LIVE=<provider id>` and the provider's token.
//! - [`pg`]: a private throwaway PostgreSQL cluster on a unix socket.
//! - [`shim`]: fake `docker`/`curl`/... programs for the sandbox sshd's
//!   `PATH`, faking Coolify or Dokploy over a [`pg::PgCluster`].
//! - [`mcp_sdk`]: the official TypeScript and Python MCP client SDKs,
//!   driving any MCP server binary a test built.
//! - [`data`]: deterministic pseudo-random streams and hashing writers for
//!   byte-exact transfer checks.
//! - [`memory`]: the memory transport, scripted for the trials;
//!   [`platform`]: the conformance trials every platform must pass;
//!   [`sim_cloud`]: a cloud fixture over any provider simulator;
//!   [`raw`]: one request to a simulator exactly as written, for checking
//!   its answers against the vendor's specification.
//! - [`s3`]: SeaweedFS, a real S3 server on loopback ([`s3_cluster`]: a
//!   cluster of several volume servers with per-server logins); [`tmpfs`]: a real
//!   full disk (root only); [`netns`]: a shaped link to a second sshd in a
//!   network namespace (root only); [`ci_cache`]: where `.ci/setup` installs
//!   SeaweedFS and the SDKs.
//!
//! Panicking on a broken harness is deliberate here: this crate only runs
//! inside tests.
#![allow(clippy::unwrap_used, clippy::expect_used)]

pub mod cloud;
pub mod data;
pub mod live;
pub mod mcp_sdk;
pub mod memory;
pub mod netns;
pub mod pg;
pub mod platform;
pub mod raw;
pub mod s3;
pub mod s3_cluster;
pub mod shim;
pub mod sim_cloud;
pub mod sshd;
pub mod tmpfs;
pub mod transport;

/// `.ci/cache/<name>` of the workspace, where `.ci/setup` installs the
/// real components the tests run (MCP SDKs, SeaweedFS).
pub fn ci_cache(name: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../.ci/cache")
        .join(name)
}
