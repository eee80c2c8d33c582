//! kastell's end-to-end tests, in one binary so the workspace links it
//! once instead of once per file: the real `kastell` and `kastell-mcp`
//! binaries against a real sshd, real PostgreSQL, the provider simulators
//! and the official MCP SDK clients. Each family is a module (`mcp::tasks`,
//! `faults::ssh`); shared helpers sit beside them.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod backup;
mod cli;
mod faults;
mod mcp;
mod sandbox;

mod paas_host;
mod sdk;
#[allow(dead_code)]
mod support;
