//! # kastell
//!
//! Keeps self-hosted servers safe: backups, snapshots, updates, reboots and
//! maintenance, over a CLI and MCP. The plugin contract (providers,
//! platforms, transports) lives in `kastell-core`; this crate is the
//! product, in four rooms:
//!
//! | room | what it owns |
//! |---|---|
//! | [`surfaces`] | the CLI and the MCP server (and the sandbox, demo and doctor): parsing, asking, presenting |
//! | [`ops`] and [`policy`] | every operation once ([`ops::Operation`], listed in [`ops::catalog`]) and what may run where |
//! | [`engine`] | backups and their wire plan, restore drills, repositories, schedules, reaching a server |
//! | [`state`] | the files in the kastell directory: the fleet, the audit log, approvals, proofs, locks |
//!
//! Dependencies point down the table: surfaces call operations, which
//! apply the policy and drive the engine, which reads and writes state.
//! On the ground: [`env`] (every environment lookup), [`build`] (what this
//! build links in), the advice wording and shutdown signals.

pub(crate) mod advice;
pub mod build;
pub mod engine;
pub mod env;
pub mod ops;
pub mod policy;
pub(crate) mod shutdown;
pub mod state;
pub mod surfaces;

pub use env::Env;
pub use policy::{Decision, OpId, Policy, Surface};
pub use state::store::{FleetStore, ServerRecord};

#[doc(hidden)]
pub use inventory as __inventory;
