//! The sandbox fleet: what it starts, how signals tear it down, that
//! nothing it makes is writable by other users under any umask, and
//! `kastell sandbox` driving the CLI from another process.

mod cli;
mod demo;
mod fleet;
mod maintain_backup;
mod rollback;
mod rotation;
mod signals;
mod umask;
