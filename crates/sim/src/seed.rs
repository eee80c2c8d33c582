//! Seeding conventions every simulator follows, so fixtures and the
//! sandbox can rely on them.

use std::net::Ipv4Addr;

/// How a simulator starts.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SimOptions {
    /// Servers seeded in the caller's account (named `web-0`, `web-1`, ...).
    pub servers: usize,
    /// Virtual seconds per real second (see [`crate::SimClock`]).
    pub scale: f64,
}

impl Default for SimOptions {
    /// 130 servers (more than two pages everywhere) at 200× real time.
    fn default() -> Self {
        Self {
            servers: 130,
            scale: 200.0,
        }
    }
}

/// The public IPv4 of seeded server `index`: in 198.18.0.0/15, the range
/// reserved for benchmarks, so it never collides with a real address or
/// with 192.0.2.0/24, which tests use for "no such IP".
pub fn public_ip(index: usize) -> Ipv4Addr {
    let n = (index % 65_536) as u32;
    Ipv4Addr::from(0xC612_0000 | n)
}

/// The private (VPC) IPv4 of seeded server `index`, in 10.0.0.0/16.
pub fn private_ip(index: usize) -> Ipv4Addr {
    let n = (index % 65_536) as u32;
    Ipv4Addr::from(0x0A00_0000 | n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_distinct_and_in_range() {
        assert_eq!(public_ip(0), Ipv4Addr::new(198, 18, 0, 0));
        assert_eq!(public_ip(257), Ipv4Addr::new(198, 18, 1, 1));
        assert_eq!(private_ip(3), Ipv4Addr::new(10, 0, 0, 3));
        assert_ne!(public_ip(1), public_ip(2));
    }
}
