//! The Hetzner client against its simulator, in one binary: the shared
//! cloud conformance trials (`trials`, whose live mode runs against the
//! real API) and Hetzner's own behaviour (`api`).

mod api;
mod trials;
