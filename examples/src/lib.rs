//! Runnable kastell examples. Each file in `examples/` is one program:
//!
//! - `custom_provider`: a complete third-party cloud provider in one file,
//!   registered at link time and driven through the registry exactly as
//!   kastell drives its own providers. Run it with
//!   `cargo run -p kastell-examples --example custom_provider`.
