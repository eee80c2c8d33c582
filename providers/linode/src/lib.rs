//! # kastell-linode: the Linode (Akamai) cloud provider
//!
//! A [`CloudProvider`] over the Linode API v4 (`https://api.linode.com/v4`).
//!
//! ## What it supports
//! - **Token check**: `GET /profile`; whether the token can write is read
//!   from the `X-OAuth-Scopes` answer header (`*` or `linodes:read_write`
//!   means it can).
//! - **Servers**: `GET /linode/instances/{id}` with the public IPv4 taken from
//!   `GET /linode/instances/{id}/ips` (`ipv4.public`), never from the mixed
//!   `ipv4` array, which also holds private addresses. Finding by IP uses the
//!   server-side lookup `GET /networking/ips/{address}` and accepts only
//!   public addresses. Lists read every page.
//! - **Reboot** (soft only: Linode has a single reboot endpoint, so
//!   [`RebootMode::Hard`](kastell_core::types::RebootMode::Hard) is refused
//!   before any request). The reboot answers `{}` without an event id; the
//!   `linode_reboot` event is found through `GET /account/events` with an
//!   `X-Filter` and polled at `GET /account/events/{id}`.
//! - **Snapshots** are private Images made from the instance's ext4 disk
//!   (never the swap disk). Images do not record their source Linode, so
//!   kastell labels them `kastell-<instance-id>-<name>` and describes them
//!   `kastell:<instance-id>`; listing, deleting and restoring act only on
//!   images that carry this instance's mark. A snapshot's action handle
//!   polls the image itself (`creating` → `available`).
//! - **Restore** rebuilds the instance from its own image
//!   (`POST /linode/instances/{id}/rebuild`) with a strong root password
//!   generated locally and never logged, then follows the `linode_rebuild`
//!   event.
//! - **Cost estimate**: ext4 disk size × $0.10 per GB-month, a commonly
//!   cited but unverified image storage price (the basis says so).
//! - **Servers kastell creates**: `POST /linode/instances` (never re-sent)
//!   with the key in `authorized_keys`, a random strong `root_pass` (never
//!   logged or stored) and the tags `kastell-managed` and the role's;
//!   listed with an `X-Filter` on `tags`, priced from `GET /linode/types`
//!   (region prices included) after checking `GET /regions`, and deleted
//!   only when tagged (default: `g6-standard-1` in `eu-central`,
//!   `linode/ubuntu24.04`).
//!
//! Errors: `400 "Linode busy."` is a retryable, never-applied
//! [`ErrorKind::InvalidState`](kastell_core::ErrorKind::InvalidState); 429
//! honours `Retry-After` (or `X-RateLimit-Reset`); a 503 with
//! `X-Maintenance-Mode` is planned maintenance and not retried.
//!
//! ## Configuration
//! [`ProviderConfig`]: `token` (from [`TOKEN_ENV`]), `endpoint` (default
//! [`DEFAULT_ENDPOINT`]), `timeout` (30 s), `retry`, `poll` (2 s growing to
//! 15 s), and the option `page_size` (25 to 500, default 500).
//!
//! ## The simulator
//! With the `sim` feature, `sim::LinodeSim` serves a stateful imitation of
//! the API on loopback: paginated instances, private-first `ipv4` arrays,
//! IP lookups, events searchable by `X-Filter`, images from disks, the
//! `Linode busy.` answer while a job runs, and resources of another account
//! that must stay invisible.

use kastell_core::CloudCapability;

mod client;
mod convention;
mod error;
mod model;
mod provider;
mod provision;

#[cfg(feature = "sim")]
pub mod sim;

pub use client::LinodeCloud;

kastell_core::provider_crate! {
    id: "linode",
    display_name: "Linode (Akamai)",
    token_env: "LINODE_TOKEN",
    default_endpoint: "https://api.linode.com/v4",
    /// What this provider implements: everything but hard reboots.
    capability: CloudCapability {
        reboot_hard: false,
        ..CloudCapability::all()
    },
    /// Builds a Linode provider from `config`. Refuses an empty token, an
    /// endpoint that is not an http(s) URL and a `page_size` option that is not
    /// a number from 25 to 500.
    build: LinodeCloud::new,
}
