//! The bare platform's tests: scripted transports, a real sshd, the shared trials. One binary, one module per file.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
mod memory;
mod sshd;
mod trials;
