//! Coolify's tests: the shared trials and a real round trip. One binary, one module per file.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod app_key;
mod apps;
mod round_trip;
mod trials;
