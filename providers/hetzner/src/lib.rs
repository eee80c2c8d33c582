//! # kastell-hetzner: Hetzner Cloud for kastell
//!
//! A [`CloudProvider`] over the Hetzner Cloud API
//! (`https://api.hetzner.cloud/v1`), registered under the id `hetzner`.
//!
//! ## What it supports
//! - token check (`GET /servers?per_page=1`; Hetzner cannot tell a
//!   read-only token from a read-write one until the first write, so
//!   `can_write` is `None`);
//! - servers: get, list (every page, 50 per page), find by public IPv4
//!   through `GET /primary_ips?ip=` (falling back to paging `/servers` when
//!   the lookup is not available);
//! - soft reboot (`/actions/reboot`) and hard reboot (`/actions/reset`),
//!   tracked through Hetzner actions;
//! - snapshots (images of type `snapshot`): create with the real image id
//!   known at once, list one server's snapshots (every page, matched on
//!   `created_from`), delete and restore (`/actions/rebuild`) only after
//!   checking the snapshot was taken from that server;
//! - snapshot cost from `GET /pricing` (gross price per GB-month) times the
//!   server type's disk;
//! - servers kastell creates (`POST /ssh_keys`, then `POST /servers`, never
//!   re-sent), both labelled `kastell-managed=true` and
//!   `kastell-role=<role>`, the server also `kastell-ssh-key=<key id>`;
//!   listed with `label_selector=kastell-managed=true`, priced from
//!   `GET /pricing` and deleted with their key only when labelled (default:
//!   `cx23` in `fsn1`, `ubuntu-24.04`).
//!
//! ## Configuration
//! [`ProviderConfig`]: the token (environment variable [`TOKEN_ENV`]), an
//! optional endpoint (default [`DEFAULT_ENDPOINT`]), request timeout
//! (default 30 s), retry policy and poll schedule (default: 500 ms growing to
//! 5 s, close to Hetzner's own 500 ms waiter while sparing the hourly rate
//! limit on long snapshots).
//!
//! Errors keep Hetzner's `code`: `locked` (423) is a retryable busy answer
//! that never took effect, `protected` (423) is not retryable, `conflict`
//! (409) is retried, `uniqueness_error` (409) is not, `token_readonly` (403)
//! says the token is read-only, and 429 waits as long as `Retry-After` (or
//! the `RateLimit-*` headers) ask.
//!
//! ## Simulator
//! With the `sim` feature, `sim::HetznerSim` serves a stateful Hetzner
//! API on loopback for tests, examples and the sandbox.

mod client;
mod error;
mod model;
mod provision;

#[cfg(feature = "sim")]
pub mod sim;

pub use client::Hetzner;

use kastell_core::CloudCapability;

kastell_core::provider_crate! {
    id: "hetzner",
    display_name: "Hetzner Cloud",
    token_env: "HETZNER_TOKEN",
    default_endpoint: "https://api.hetzner.cloud/v1",
    /// Everything this provider implements: every operation of the contract,
    /// hard reboots and the server-side IP lookup included.
    capability: CloudCapability::all(),
    /// Builds the Hetzner provider from `config`. Refuses an empty token and an
    /// endpoint that is not an http(s) URL.
    build: Hetzner::new,
}
