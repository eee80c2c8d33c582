//! The benchmarks' shaped link: testkit's [`ShapedLink`] (a network
//! namespace, a veth pair shaped with `tc tbf`, a second sshd inside), on
//! the subnet the reports name.

use std::net::Ipv4Addr;

use kastell_core::Result;
use kastell_ssh::sandbox::LocalSshd;
pub(crate) use kastell_testkit::netns::ShapedLink;

/// The subnet's third octet: `10.213.77.0/30`.
const SUBNET: u8 = 77;

/// The namespace's side, where the second sshd listens.
pub(crate) const NS_ADDR: Ipv4Addr = Ipv4Addr::new(10, 213, SUBNET, 2);

/// A link shaped to `mbit` Mbit/s to a copy of `sshd` at [`NS_ADDR`].
pub(crate) fn shaped(sshd: &LocalSshd, mbit: u32) -> Result<ShapedLink> {
    ShapedLink::create_at(sshd, mbit, SUBNET)
}
