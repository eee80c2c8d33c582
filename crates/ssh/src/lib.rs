//! # kastell-ssh: the SSH [`Transport`](kastell_core::Transport)
//!
//! [`SshTransport`] runs commands on a server over SSH with libssh2 (the
//! `ssh2` crate), from async code through `spawn_blocking`.
//!
//! - **Sessions**: one SSH session per concurrent job, kept in a small pool
//!   and reused; libssh2 serialises all channels of one session, so sharing a
//!   session between jobs would make them wait for each other.
//! - **Authentication**: a private key file (ed25519 or RSA), per-server user
//!   and port.
//! - **Host keys**: a SHA-256 fingerprint pinned in the server record wins;
//!   an unknown host is trusted on first use and its key handed to a pin
//!   callback, with a warning; with `strict_host_key` an unknown host is
//!   refused. A changed key is [`ErrorKind::HostKeyMismatch`](kastell_core::ErrorKind),
//!   never retried and never cleared.
//! - **Timeouts**: connect timeout, and per-command timeouts enforced on the
//!   server with `timeout(1)`, so a command that overruns leaves no process
//!   behind; a local deadline backs that up.
//! - **Streaming**: stdin from a reader and stdout into a writer flow at the
//!   same time in 256 KiB chunks, so dumps and restores of any size need no
//!   temporary files.
//!
//! With the `sandbox` feature, [`sandbox::LocalSshd`] runs a private OpenSSH
//! server on loopback for the sandbox and for tests.

mod config;
mod connect;
mod hostkey;
mod pool;
mod run;
#[cfg(feature = "sandbox")]
pub mod sandbox;
mod transport;

pub use config::{HostKeyPinner, SshConfig};
pub use connect::key_type_name;
pub use hostkey::fingerprint_sha256;
pub use transport::SshTransport;
