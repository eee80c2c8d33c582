//! The surfaces people and agents use: they parse, ask and present, and
//! call the operations ([`crate::ops`]) for everything else.
//!
//! - [`cli`]: the `kastell` command line, its subcommands derived from
//!   the operations plus the commands of their own (`server`, `repo`,
//!   `schedule`, `audit`, `approve`, `doctor`, `demo`, `sandbox`);
//! - [`mcp`]: `kastell-mcp`, the MCP server over stdio and Streamable
//!   HTTP, its four tools derived from the operations;
//! - [`sandbox`] and `demo` (feature `sandbox`): the real code against
//!   simulated clouds and fake hosts on this machine;
//! - `doctor`: what this build holds and whether the fleet is reachable.

pub mod cli;
#[cfg(feature = "sandbox")]
pub(crate) mod demo;
pub(crate) mod doctor;
pub(crate) mod doctor_fix;
pub(crate) mod leftovers;
pub mod mcp;
#[cfg(feature = "sandbox")]
pub mod sandbox;
pub(crate) mod token_check;
