//! Dokploy's tests: the shared trials and a real round trip. One binary, one module per file.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod apps;
mod round_trip;
mod secret;
mod trials;
