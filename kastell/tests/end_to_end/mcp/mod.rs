//! The real `kastell-mcp` binary, through rmcp and the official SDK clients.

mod approve;
mod bad_input;
mod bare;
mod clients;
pub(crate) mod common;
mod confirm;
mod confirm_final;
mod fuzz;
mod http;
mod levels;
mod paas;
mod pages;
mod registry_entry;
mod repository;
mod rollout;
mod safe_mode;
mod sandbox;
mod schema;
mod sdk_rollout;
mod sim;
mod spec;
mod stored_token;
mod strict;
mod tasks;
mod tools_list;
mod transfer_progress;
