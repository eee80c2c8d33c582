//! Fault injection: cloud APIs, local disk and locks, platforms, SSH.

mod cloud;
pub(crate) mod common;
mod local;
mod platform;
mod ssh;
mod store;
