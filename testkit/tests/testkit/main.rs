//! The test kit's own tests: the memory implementations, the PostgreSQL shim, the sshd transport. One binary, one module per file.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod memory_cloud;
mod memory_transport;
mod pg_shim;
mod sshd_transport;
