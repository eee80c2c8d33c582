//! # kastell
//!
//! Keeps self-hosted servers safe: backups, snapshots, updates, reboots and
//! maintenance, over a CLI and MCP.
//!
//! This crate holds the local fleet store ([`store`]), the one policy table
//! that decides what may run where ([`policy`]), the security event log
//! ([`security_log`]), the operations both surfaces call ([`ops`]) and the
//! command-line surface ([`cli`]). The plugin
//! contract lives in `kastell-core`.

pub mod advice;
pub mod approval;
pub mod audit;
pub mod backup;
pub mod build;
pub mod cli;
#[cfg(feature = "sandbox")]
pub mod demo;
pub mod doctor;
pub mod drill;
pub mod env;
pub mod mcp;
pub mod ops;
pub mod paths;
pub mod policy;
pub mod remote;
pub mod repos;
#[cfg(feature = "sandbox")]
pub mod sandbox;
pub mod schedule;
pub mod security_log;
pub mod shutdown;
pub mod store;
pub mod verifications;

pub use env::Env;
pub use policy::{Decision, OpId, Policy, Surface};

#[doc(hidden)]
pub use inventory as __inventory;
pub use store::{FleetStore, ServerRecord};
