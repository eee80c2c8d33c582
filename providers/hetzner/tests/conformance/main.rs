//! The Hetzner client against its simulator, in one binary: the shared
//! cloud conformance trials (`trials`, whose live mode runs against the
//! real API), Hetzner's own behaviour (`api`) and the simulator against
//! Hetzner's specification (`spec`).

mod api;
mod spec;
mod trials;
