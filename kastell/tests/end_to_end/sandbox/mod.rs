//! The sandbox fleet: what it starts, how signals tear it down, and that
//! nothing it makes is writable by other users under any umask.

mod fleet;
mod signals;
mod umask;
