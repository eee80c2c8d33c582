//! # kastell-sim: what every provider simulator shares
//!
//! Each provider crate ships a stateful simulator of its vendor's API
//! (feature `sim`); this crate holds the parts that are the same for all:
//!
//! - [`SimServer`]: an axum app on `127.0.0.1` on a free port, stopped on drop;
//! - [`SimClock`]: virtual time running `scale` times faster than real time,
//!   so a two-minute snapshot takes milliseconds in a test;
//! - [`Timeline`]: a resource's states over virtual time (a reboot going
//!   `rebooting` → `booting` → `running`);
//! - [`Faults`]: injected failures per method and path, on the N-th call,
//!   before or after the request takes effect;
//! - [`Recorder`]: every request, so tests count what a client sent;
//! - [`Tokens`]: a read-write and a read-only token;
//! - [`Dialect`]: how the vendor shapes errors, busy answers, 429s and
//!   rate-limit headers, so injected faults look like the real thing
//!   ([`JsonDialect`] for an API with a plain JSON envelope).
//!
//! [`SimContext::layer`] wraps a vendor's router with recording, auth and
//! fault injection, in that order.
//!
//! Every simulator implements [`Simulator`] and registers a
//! [`SimulatorEntry`] with [`register_simulator!`]; [`simulators`] lists the
//! ones linked into a program, so the sandbox, the examples and the
//! conformance fixtures work with any provider's simulator, a third-party
//! one included, without naming it.

mod addresses;
mod clock;
mod context;
mod dialect;
mod faults;
mod keys;
mod seed;
mod server;
mod simulator;

pub use addresses::AddressPool;
pub use clock::{SimClock, Timeline};
pub use context::{Dialect, Recorded, Recorder, SimContext, TokenKind, Tokens};
pub use dialect::JsonDialect;
pub use faults::{Fault, FaultRule, Faults};
pub use keys::{PERSON_PUBLIC_KEY, same_public_key};
pub use seed::{SimOptions, private_ip, public_ip};
pub use server::SimServer;
pub use simulator::{
    DuplicateSimulator, Simulator, SimulatorEntry, SimulatorRegistration, StartFuture, simulators,
    start_boxed,
};

/// Re-exports used by [`register_simulator!`]; not part of the public API.
#[doc(hidden)]
pub mod __private {
    pub use inventory;
}

/// Items `page` (1-based) of `per_page` from `items`, and the page count
/// (at least 1).
pub fn page_of<T: Clone>(items: &[T], page: usize, per_page: usize) -> (Vec<T>, usize) {
    let per_page = per_page.max(1);
    let pages = items.len().div_ceil(per_page).max(1);
    let start = page.saturating_sub(1).saturating_mul(per_page);
    let slice = items.iter().skip(start).take(per_page).cloned().collect();
    (slice, pages)
}

#[cfg(test)]
mod tests {
    #[test]
    fn pages() {
        let items: Vec<u32> = (1..=120).collect();
        let (first, pages) = super::page_of(&items, 1, 50);
        assert_eq!((first.len(), pages), (50, 3));
        let (last, _) = super::page_of(&items, 3, 50);
        assert_eq!(last, (101..=120).collect::<Vec<_>>());
        let (none, _) = super::page_of(&items, 9, 50);
        assert!(none.is_empty());
        assert_eq!(super::page_of::<u32>(&[], 1, 50).1, 1);
    }
}
