//! A stateful simulator of the Vultr API v2 (feature `sim`).
//!
//! [`VultrSim`] serves the routes kastell uses on loopback, under `/v2`:
//! `GET /account`, `GET /instances` (cursor pages, `per_page` clamped to
//! 500, `main_ip`/`label`/`region` filters), `GET /instances/{id}`,
//! `POST /instances/{id}/reboot` (204), `POST /instances/{id}/restore`
//! (202), `GET`/`POST /snapshots` and `GET`/`DELETE /snapshots/{id}`.
//!
//! What it models, on a virtual clock ([`SimOptions::scale`]):
//! - UUID ids; a malformed instance id is 400 `invalid instance ID`, a
//!   malformed snapshot id 400 `Invalid UUID format.`, an unknown one 404;
//! - a reboot goes `stopped/installingbooting` (3 s) →
//!   `running/installingbooting` (4 s) → `running/ok`, and counts a boot when
//!   it ends; a restore goes `running/locked` (8 s) →
//!   `running/installingbooting` (6 s) → `running/ok`, also counting a boot;
//! - while either runs, reboot, snapshot and restore of that instance are
//!   refused with 500 "Server is currently locked" (reads keep working);
//! - a snapshot is `pending` with size 0 for 30 s plus 0.5 s per disk GB,
//!   then `complete` with its size in bytes; its JSON names no instance;
//! - the read-write token's account has every ACL Vultr documents
//!   (`subscriptions`, `provisioning`, ...), the read-only token's only
//!   `subscriptions_view` and `billing`, and its writes are 403;
//! - another account's instance and snapshot exist and are never visible
//!   (404); the other account's snapshot even claims, in its description,
//!   to belong to the first seeded server;
//! - our account also holds a snapshot not taken by kastell
//!   (`manual backup`) and a kastell snapshot of the second server.
//!
//! It also creates instances (`POST /instances`, checked as Vultr does:
//! `region`, `plan` and an image source required, plans, regions, `os_id`s
//! and SSH keys must exist; 400 otherwise): `pending` with `main_ip`
//! `0.0.0.0` for 20 s, then `installingbooting` for 10 s, then ready with
//! one boot and the next address of [`kastell_sim::AddressPool`]; they
//! carry their tags, the `tag` filter finds them and
//! `DELETE /instances/{id}` removes them. SSH keys live at `/ssh-keys`
//! and `/ssh-keys/{id}` (a person's key `laptop` seeded),
//! plans with their prices at `/plans`.
//!
//! Vultr documents no rate-limit headers, so answers carry none; an
//! injected 429 carries `Retry-After`.

use std::sync::{Arc, Mutex};

use kastell_sim::{SimContext, SimOptions, SimServer, Simulator, Tokens};

mod create;
mod dialect;
mod routes;
mod state;
mod util;

use dialect::VultrDialect;
use routes::App;
use state::State;

/// A running Vultr simulator. Dropping it stops the server.
#[derive(Debug)]
pub struct VultrSim {
    server: SimServer,
    context: SimContext,
    state: Arc<Mutex<State>>,
}

impl VultrSim {
    /// Seeds `options.servers` instances (`web-0`, `web-1`, ... with
    /// [`kastell_sim::public_ip`] as `main_ip` and
    /// [`kastell_sim::private_ip`] as `internal_ip`) and serves them on a free
    /// loopback port. Refuses when no port can be bound.
    pub async fn start(options: SimOptions) -> std::io::Result<Self> {
        let context = SimContext::new(
            Arc::new(VultrDialect),
            Tokens::for_provider(crate::ID),
            options.scale,
        );
        let state = Arc::new(Mutex::new(State::seeded(options.servers)));
        let app = App {
            state: state.clone(),
            ctx: context.clone(),
        };
        let server = SimServer::start(context.layer(routes::router(app))).await?;
        Ok(Self {
            server,
            context,
            state,
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Ids are UUIDs; boots count finished reboots and restores; the foreign
/// instance and snapshot belong to another account.
impl Simulator for VultrSim {
    fn provider_id(&self) -> &'static str {
        crate::ID
    }

    fn endpoint(&self) -> String {
        self.server.url("/v2")
    }

    fn context(&self) -> &SimContext {
        &self.context
    }

    fn boots(&self, server_id: &str) -> u64 {
        let mut state = self.lock();
        state.settle(self.context.clock.now());
        state
            .instances
            .iter()
            .find(|i| i.id == server_id)
            .map_or(0, |i| i.boots)
    }

    fn server_ids(&self) -> Vec<String> {
        self.lock()
            .instances
            .iter()
            .filter(|i| i.is_mine())
            .map(|i| i.id.clone())
            .collect()
    }

    fn created_servers(&self) -> Vec<String> {
        self.lock()
            .instances
            .iter()
            .filter(|i| i.via_api)
            .map(|i| i.id.clone())
            .collect()
    }

    fn ssh_keys(&self) -> Vec<String> {
        self.lock().keys.iter().map(|k| k.id.clone()).collect()
    }

    fn person_ssh_key(&self) -> Option<String> {
        Some(create::person_key_id())
    }

    fn missing_server_id(&self) -> String {
        State::missing_id()
    }

    fn foreign_server_id(&self) -> String {
        State::foreign_ids().0
    }

    fn foreign_snapshot_id(&self) -> String {
        State::foreign_ids().1
    }
}

kastell_sim::register_simulator!(crate::ID, VultrSim);
