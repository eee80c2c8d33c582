//! The sandbox fleet: what it starts, and how signals tear it down.

mod fleet;
mod signals;
