//! End-to-end tests across kastell's crates live in `tests/`; this library
//! is empty. The registry guard (`tests/registry_guard.rs`) links `kastell`
//! and checks that its cargo features and the link-time registry agree.
