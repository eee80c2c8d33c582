//! # kastell-vultr: the kastell cloud provider for Vultr
//!
//! Implements [`kastell_core::CloudProvider`] over the Vultr API v2
//! (`https://api.vultr.com/v2`) with the shared [`kastell_http::ApiClient`].
//!
//! ## What it supports
//! - token check through `GET /account`: a key whose account ACLs lack
//!   `subscriptions` (Vultr's permission to manage servers) is reported as
//!   not writable;
//! - instances: get, list (every cursor page), find by public IPv4 with the
//!   server-side `main_ip` filter; the status is normalised from Vultr's
//!   three fields (`status`, `power_status`, `server_status`), keeping them
//!   all in the raw status (`active/running/ok`);
//! - soft reboot. Vultr has no hard reboot call, so [`RebootMode::Hard`] is
//!   refused as unsupported before any request;
//! - snapshots: create, list, delete and restore, each scoped to one server;
//! - snapshot cost estimates at Vultr's documented $0.05 per GB-month;
//! - instances kastell creates (`POST /ssh-keys`, then `POST /instances`,
//!   never re-sent) tagged `kastell-managed`, the role's tag and
//!   `kastell-ssh-key:<key id>`, listed with `tag=kastell-managed`, priced
//!   from `GET /plans` and deleted with their key only when tagged
//!   (default: `vc2-1c-2gb` in `fra`, `os_id` 2284, Ubuntu 24.04).
//!
//! ## Vultr quirks handled here
//! - **No action handles.** Reboot (204) and restore (202) return no job
//!   object, so the [`ActionRef`](kastell_core::types::ActionRef)s are
//!   synthetic and `action_status` polls the instance itself. Because a fast
//!   reboot may never look different, the action only succeeds once the
//!   instance is ready *and* was seen not ready since the request, or a
//!   minimum delay derived from the poll schedule has passed.
//! - **Snapshots name no instance.** kastell creates them with the
//!   description `kastell:<instance-id>:<name>` and only lists, deletes or
//!   restores snapshots carrying the server's prefix; snapshots made outside
//!   kastell are therefore not listed for any server.
//! - **Busy answers are 500s** whose message says the server is "currently
//!   locked"; they are retried as never applied. Other 500s are ambiguous.
//! - Ids are UUIDs: a malformed instance or snapshot id is refused locally
//!   as invalid input, before any request.
//!
//! ## Configuration
//! [`build`] takes a [`ProviderConfig`]: the token (`VULTR_TOKEN`), an
//! optional endpoint (a simulator or proxy; the default is
//! [`DEFAULT_ENDPOINT`]), the request timeout (default 30 s), the retry
//! policy and the poll schedule (default: 3 s growing to 15 s, after the
//! terraform provider's timing).
//!
//! ## The simulator
//! With the `sim` feature, `sim::VultrSim` serves a stateful imitation of
//! the API on loopback (real paths, JSON shapes, UUID ids, cursor pages,
//! virtual time, locked answers, fault injection) for tests and the sandbox.
//!
//! [`RebootMode::Hard`]: kastell_core::types::RebootMode::Hard

use kastell_core::CloudCapability;

mod actions;
mod client;
mod error;
mod model;
mod provision;

#[cfg(feature = "sim")]
pub mod sim;

pub use client::VultrCloud;

kastell_core::provider_crate! {
    id: "vultr",
    display_name: "Vultr",
    token_env: "VULTR_TOKEN",
    default_endpoint: "https://api.vultr.com/v2",
    /// What this crate implements: everything but hard reboots, which Vultr's
    /// API does not offer.
    capability: CloudCapability {
        reboot_hard: false,
        ..CloudCapability::all()
    },
    /// Builds the Vultr provider from `config`. Refuses an empty token and an
    /// endpoint that is not an http(s) URL.
    build: VultrCloud::new,
}
