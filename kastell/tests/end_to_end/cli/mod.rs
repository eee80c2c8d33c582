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
mod onserver;
mod ops;
mod ops_fleet;
mod ops_sim;
pub(crate) mod original;
mod output;
mod prune;
mod recover;
mod recover_paas;
mod repository;
pub(crate) mod repository_append_only;
mod repository_restore;
mod repository_reuse;
mod restore_safety;
mod rollout;
pub(crate) mod schedule;
mod server_add;
