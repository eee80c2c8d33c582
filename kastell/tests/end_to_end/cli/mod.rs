//! The real `kastell` binary: commands, operations, fleets, doctor.

mod audit;
mod auth;
mod checks;
mod commands;
mod doctor;
mod doctor_fix;
mod drill;
mod first_use;
mod fleet_sandbox;
mod levels;
mod ops;
mod ops_fleet;
mod ops_sim;
pub(crate) mod original;
mod output;
mod prune;
mod recover;
mod repository;
pub(crate) mod repository_append_only;
mod repository_restore;
mod repository_reuse;
mod rollout;
mod schedule;
mod server_add;
