//! # kastell-digitalocean: DigitalOcean droplets and snapshots for kastell
//!
//! A [`CloudProvider`] over the DigitalOcean v2 API
//! (`https://api.digitalocean.com/v2`), registered as `digitalocean`.
//!
//! ## What it supports
//! - token check (`GET /account`; the API does not tell whether a token may
//!   write, so `can_write` is `None`);
//! - droplets with normalised status (`active` is running; in-flight work only
//!   shows as `locked`) and the public IPv4 (the `networks.v4` entry of type
//!   `public`, never a private one);
//! - listing and finding by IP across every page (`per_page=200`, following
//!   `links.pages.next`; DigitalOcean has no server-side IP filter);
//! - soft reboot (`reboot`) and hard reboot (`power_cycle`), action polling
//!   (`GET /actions/{id}`);
//! - snapshots of one droplet: create (the real id is reported once the
//!   action completes and the image carries kastell's tag
//!   `kastell-managed`), list (every page of the account's droplet
//!   snapshots, which show their tags, kept to this droplet's), delete and
//!   restore (a `rebuild` action), each delete or restore only after
//!   checking the snapshot is in that droplet's own list;
//! - a cost estimate at the documented $0.06 per GB-month on the droplet disk;
//! - droplets kastell creates (`POST /account/keys`, then `POST /droplets`,
//!   never re-sent) tagged `kastell-managed`, the role's tag and
//!   `kastell-ssh-key:<key id>`, listed with `tag_name=kastell-managed`,
//!   priced from `GET /sizes` and deleted with their key only when tagged
//!   (default: `s-1vcpu-2gb` in `fra1`, `ubuntu-24-04-x64`).
//!
//! Reboot, snapshot and rebuild are never re-sent after an ambiguous failure;
//! the "Droplet already has a pending event." answer and 429s (which wait for
//! `retry-after`) are retried.
//!
//! ## Configuration
//! [`ProviderConfig`]: the token (`DIGITALOCEAN_TOKEN`), an optional endpoint
//! (a simulator or proxy), timeout (default 30 s), retry policy and poll
//! schedule (default 2 s growing to 15 s).
//!
//! ## The simulator
//! With the `sim` feature, [`sim::DigitalOceanSim`] serves a stateful
//! simulation of the API on loopback for tests, examples and the sandbox.

use kastell_core::CloudCapability;

mod client;
mod error;
mod marker;
mod model;
mod pages;
mod provision;
#[cfg(feature = "sim")]
pub mod sim;

pub use client::DigitalOcean;

kastell_core::provider_crate! {
    id: "digitalocean",
    display_name: "DigitalOcean",
    token_env: "DIGITALOCEAN_TOKEN",
    default_endpoint: "https://api.digitalocean.com/v2",
    /// What this provider implements: everything but a server-side IP lookup.
    capability: CloudCapability {
        find_by_ip_server_side: false,
        ..CloudCapability::all()
    },
    /// Builds the provider from `config`. Refuses an empty token or an endpoint
    /// that is not an http(s) URL.
    build: DigitalOcean::new,
}

/// The documented snapshot price in US dollars per GB-month.
pub const SNAPSHOT_PRICE_PER_GB_MONTH: f64 = 0.06;
