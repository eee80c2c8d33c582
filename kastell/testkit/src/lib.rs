//! # kastell-testkit: test support shared by every kastell crate
//!
//! - [`sshd`]: a private OpenSSH server on loopback (re-exported from
//!   `kastell-ssh`'s sandbox) and a ready-made [`sshd::SshdFixture`].
//! - [`transport`]: the conformance trials every [`kastell_core::Transport`]
//!   must pass, instantiated per implementation with [`transport_trials!`].
//! - [`cloud`]: the conformance trials every [`kastell_core::CloudProvider`]
//!   must pass, against its simulator (and against `MemoryCloud`), with
//!   [`cloud_trials!`].
//! - [`data`]: deterministic pseudo-random streams and hashing writers for
//!   byte-exact transfer checks.
//!
//! Panicking on a broken harness is deliberate here: this crate only runs
//! inside tests.
#![allow(clippy::unwrap_used, clippy::expect_used)]

pub mod cloud;
pub mod data;
pub mod memory;
pub mod sim_cloud;
pub mod sshd;
pub mod transport;
