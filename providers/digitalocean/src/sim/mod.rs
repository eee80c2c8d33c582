//! A stateful simulator of the DigitalOcean v2 API on loopback (feature
//! `sim`), for tests, examples and the sandbox.
//!
//! What it models:
//! - the real paths, JSON shapes and int ids (string ids in `/v2/snapshots`);
//! - pagination with `page`/`per_page` (clamped to 200, default 20) and
//!   `links.pages` URLs pointing back at the simulator, absent on one page;
//! - droplets that stay `active` with `locked: true` while an action runs,
//!   and answer a second action with 422 "Droplet already has a pending
//!   event." (reads keep working);
//! - actions `in-progress` → `completed` on the virtual clock: reboot 10 s,
//!   power cycle 6 s, snapshot 30 s + 0.5 s per disk GB, rebuild 20 s
//!   (virtual); a reboot, power cycle or rebuild counts one boot when it
//!   completes;
//! - a snapshot appears in `/v2/droplets/{id}/snapshots` only once its action
//!   completes, with `created_at` = the action's start; restore is `rebuild`;
//!   `/v2/snapshots` shows each with its droplet (`resource_id`) and `tags`,
//!   which `POST /v2/tags` and `POST /v2/tags/{tag}/resources` set
//!   (droplets and images);
//! - `networks.v4` lists the private address first and the public one second;
//! - a droplet and a snapshot of another account, which our token gets 404
//!   for;
//! - droplets created with `POST /v2/droplets` (validated field by field:
//!   `name`, `size`, `image` required, sizes, images, regions, SSH keys and
//!   tag names checked, 422 `unprocessable_entity` otherwise), `new` without
//!   addresses for 20 s, then `active` with the next address of
//!   [`kastell_sim::AddressPool`] and one boot; `tag_name` filters the list;
//!   `DELETE /v2/droplets/{id}` removes them; SSH keys at
//!   `/v2/account/keys` and `/v2/account/keys/{id}` (GET, DELETE), a
//!   person's key `laptop` seeded; sizes with prices at `/v2/sizes`;
//! - `ratelimit-limit/-remaining/-reset` on every answer and `retry-after`
//!   on injected 429s; a read-only token writing gets 403 `forbidden`.

use std::sync::{Arc, Mutex};

use kastell_sim::{SimContext, SimOptions, SimServer, Simulator, Tokens};

use crate::ID;

mod create;
mod dialect;

pub use create::PROVISIONING;
mod routes;
mod state;
mod tags;

use state::{FIRST_DROPLET, FOREIGN_DROPLET, FOREIGN_IMAGE, MISSING_DROPLET, World};

/// A running DigitalOcean simulator. Dropping it stops the server.
#[derive(Debug)]
pub struct DigitalOceanSim {
    server: SimServer,
    context: SimContext,
    world: Arc<Mutex<World>>,
}

impl DigitalOceanSim {
    /// Seeds `options.servers` droplets (`web-0`... with ids from
    /// 310000000) and serves the API on a free loopback port on the current
    /// tokio runtime. Refuses when no port can be bound.
    pub async fn start(options: SimOptions) -> std::io::Result<Self> {
        let context = SimContext::new(
            Arc::new(dialect::DoDialect::new()),
            Tokens::for_provider(ID),
            options.scale,
        );
        let world = Arc::new(Mutex::new(World::seed(options.servers)));
        let app = routes::App {
            world: Arc::clone(&world),
            ctx: context.clone(),
        };
        let server = SimServer::start(context.layer(routes::router(app))).await?;
        world.lock().unwrap_or_else(|p| p.into_inner()).base = server.url("/v2");
        Ok(Self {
            server,
            context,
            world,
        })
    }

    /// The id of seeded droplet `index` (`web-<index>`).
    pub fn server_id(&self, index: usize) -> String {
        (FIRST_DROPLET + index as u64).to_string()
    }
}

/// Boots count completed reboots, power cycles and rebuilds; the foreign
/// droplet and snapshot belong to another account.
impl Simulator for DigitalOceanSim {
    fn provider_id(&self) -> &'static str {
        ID
    }

    fn endpoint(&self) -> String {
        self.server.url("/v2")
    }

    fn context(&self) -> &SimContext {
        &self.context
    }

    fn boots(&self, server_id: &str) -> u64 {
        let Ok(id) = server_id.parse::<u64>() else {
            return 0;
        };
        let mut world = self.world.lock().unwrap_or_else(|p| p.into_inner());
        world.advance(self.context.clock.now());
        world.droplet(id).map(|d| d.boots).unwrap_or(0)
    }

    fn server_ids(&self) -> Vec<String> {
        let world = self.world.lock().unwrap_or_else(|p| p.into_inner());
        world
            .our_droplets()
            .iter()
            .map(|d| d.id.to_string())
            .collect()
    }

    fn created_servers(&self) -> Vec<String> {
        let world = self.world.lock().unwrap_or_else(|p| p.into_inner());
        world
            .droplets
            .iter()
            .filter(|d| d.via_api)
            .map(|d| d.id.to_string())
            .collect()
    }

    fn ssh_keys(&self) -> Vec<String> {
        let world = self.world.lock().unwrap_or_else(|p| p.into_inner());
        world.keys.iter().map(|k| k.id.to_string()).collect()
    }

    fn person_ssh_key(&self) -> Option<String> {
        Some(create::PERSON_KEY.to_string())
    }

    fn refuses_duplicate_keys(&self) -> bool {
        true
    }

    fn missing_server_id(&self) -> String {
        MISSING_DROPLET.to_string()
    }

    fn foreign_server_id(&self) -> String {
        FOREIGN_DROPLET.to_string()
    }

    fn foreign_snapshot_id(&self) -> String {
        FOREIGN_IMAGE.to_string()
    }
}

kastell_sim::register_simulator!(ID, DigitalOceanSim);
