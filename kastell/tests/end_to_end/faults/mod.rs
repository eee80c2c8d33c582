//! Fault injection: cloud APIs, local disk and locks, platforms, SSH.

pub(crate) mod common;
mod cloud;
mod local;
mod platform;
mod ssh;
