//! The public addresses a simulator gives the servers it creates.

use std::collections::VecDeque;
use std::net::Ipv4Addr;
use std::sync::{Arc, Mutex};

use crate::seed::public_ip;

/// Where the first address past the seeded ones starts when the pool is
/// empty (seeded servers use `public_ip(0..servers)`).
const FIRST_UNSEEDED: usize = 60_000;

/// The addresses a simulator hands to servers it creates, in order: the
/// ones added with [`AddressPool::add`] first (the sandbox adds fake hosts'
/// loopback addresses, so a created server can be reached over SSH), then
/// fresh addresses in 198.18.0.0/15 that no seeded server has. Shared by
/// clones; cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct AddressPool {
    inner: Arc<Mutex<Pool>>,
}

#[derive(Debug, Default)]
struct Pool {
    queued: VecDeque<Ipv4Addr>,
    handed_out: usize,
}

impl AddressPool {
    /// Queues `addresses` to be handed out before any fresh one.
    pub fn add(&self, addresses: impl IntoIterator<Item = Ipv4Addr>) {
        self.lock().queued.extend(addresses);
    }

    /// The next address for a created server.
    pub fn next(&self) -> Ipv4Addr {
        let mut pool = self.lock();
        pool.handed_out += 1;
        match pool.queued.pop_front() {
            Some(address) => address,
            None => public_ip(FIRST_UNSEEDED + pool.handed_out),
        }
    }

    /// How many queued addresses are left.
    pub fn remaining_queued(&self) -> usize {
        self.lock().queued.len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Pool> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queued_addresses_come_first_then_fresh_unseeded_ones() {
        let pool = AddressPool::default();
        let twin = pool.clone();
        twin.add([Ipv4Addr::new(127, 0, 0, 20)]);
        assert_eq!(pool.remaining_queued(), 1);
        assert_eq!(pool.next(), Ipv4Addr::new(127, 0, 0, 20));
        let fresh = pool.next();
        let other = pool.next();
        assert_ne!(fresh, other);
        assert!((0..200).all(|i| public_ip(i) != fresh));
    }
}
