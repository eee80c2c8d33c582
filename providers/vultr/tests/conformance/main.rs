//! The Vultr client against its simulator, in one binary: the shared cloud
//! conformance trials (`trials`, whose live mode runs against the real API)
//! and Vultr's own behaviour (`api`).

mod api;
mod trials;
