//! A stateful simulator of the Hetzner Cloud API (feature `sim`).
//!
//! Serves `/v1` on loopback with Hetzner's paths, JSON shapes, int64 ids,
//! `page`/`per_page` pagination (clamped to 50) with `meta.pagination`,
//! `{"error": {...}}` bodies and `RateLimit-*` headers on every answer.
//!
//! The seeded project has [`SimOptions::servers`] servers `web-0`, `web-1`,
//! ... with ids from 42000001, public IPv4 [`kastell_sim::public_ip`] and
//! private IPv4 [`kastell_sim::private_ip`] (`private_net`), each also a
//! primary IP for `GET /primary_ips?ip=`; three system images; 61 snapshots
//! over two pages of `GET /images?type=snapshot` (the oldest is `web-0`'s,
//! the one of `web-2` is delete-protected); and, in another project, a
//! server and a snapshot the token never sees (404).
//!
//! Servers are created with `POST /v1/servers` (validated as Hetzner does:
//! `name`, `server_type`, `image` required, `location` and the SSH keys
//! must exist, names are unique; `invalid_input` with the fields, or
//! `uniqueness_error`): `initializing` for 15 s, then `starting` for 10 s
//! (locked, one `create_server` action), then `running` with one boot and
//! the next address of [`kastell_sim::AddressPool`]; they carry their
//! labels, `label_selector` filters them, and `DELETE /v1/servers/{id}`
//! removes them. SSH keys live at `/v1/ssh_keys` (a person's key
//! `laptop`, unlabelled by kastell, seeded), server types at
//! `/v1/server_types`, their prices in `/v1/pricing`. Every list carries a
//! `Link` header beside `meta.pagination`, as Hetzner documents.
//!
//! On the virtual clock: a soft reboot keeps `running` and `locked` for
//! 10 s; a reset shows `starting` for 8 s; a snapshot locks the server for
//! 40 s while its image is `creating`, then the image is `available` with
//! an `image_size`; a rebuild goes `off` → `rebuilding` (the action, 23 s)
//! → `starting` → `running`. Actions go `running` (progress ramping) →
//! `success` ([`HetznerSim::fail_next_action`] makes one end `error`
//! after its 201). While an action holds a server every write to it is answered
//! 423 `locked`; reads keep working. A finished reboot, reset or rebuild
//! counts a boot ([`HetznerSim::boots`]).

mod catalog;
mod dialect;
mod images;
mod render;
mod routes;
mod servers;
mod state;

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use kastell_sim::{SimContext, SimOptions, SimServer, Simulator, Tokens};

use self::routes::Shared;
use self::state::{FOREIGN_SERVER, FOREIGN_SNAPSHOT, MISSING_SERVER, World};

/// A running Hetzner simulator. Dropping it stops the server.
#[derive(Debug)]
pub struct HetznerSim {
    server: SimServer,
    context: SimContext,
    shared: Arc<Shared>,
}

impl HetznerSim {
    /// Seeds a project per `options` and serves it on a free loopback port
    /// of the current tokio runtime. Refuses when no port can be bound.
    pub async fn start(options: SimOptions) -> std::io::Result<Self> {
        let context = SimContext::new(
            Arc::new(dialect::HetznerDialect::default()),
            Tokens::for_provider(crate::ID),
            options.scale,
        );
        let origin = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64());
        let shared = Arc::new(Shared {
            world: std::sync::Mutex::new(World::seed(&options, origin)),
            clock: context.clock,
            origin,
            addresses: context.addresses.clone(),
        });
        let router = context.layer(routes::router(shared.clone()));
        let server = SimServer::start(router).await?;
        Ok(Self {
            server,
            context,
            shared,
        })
    }

    /// Makes the next action started fail after its 201, as Hetzner
    /// actions sometimes do: it ends `error` with code `action_failed`, a
    /// failed reboot counts no boot and a failed snapshot ends
    /// `unavailable`.
    pub fn fail_next_action(&self) {
        let mut world = self.shared.world(self.shared.now());
        world.fail_next = true;
    }
}

/// Boots count finished reboots, resets and rebuilds; listing order is by
/// id; the foreign server and snapshot belong to another project.
impl Simulator for HetznerSim {
    fn provider_id(&self) -> &'static str {
        crate::ID
    }

    fn endpoint(&self) -> String {
        self.server.url("/v1")
    }

    fn context(&self) -> &SimContext {
        &self.context
    }

    fn boots(&self, server_id: &str) -> u64 {
        let Ok(id) = server_id.parse::<i64>() else {
            return 0;
        };
        let world = self.shared.world(self.shared.now());
        world.servers.get(&id).map_or(0, |s| s.boots)
    }

    fn server_ids(&self) -> Vec<String> {
        let world = self.shared.world(self.shared.now());
        world
            .servers
            .values()
            .filter(|s| s.ours)
            .map(|s| s.id.to_string())
            .collect()
    }

    fn created_servers(&self) -> Vec<String> {
        let world = self.shared.world(self.shared.now());
        world
            .servers
            .values()
            .filter(|s| s.via_api)
            .map(|s| s.id.to_string())
            .collect()
    }

    fn ssh_keys(&self) -> Vec<String> {
        let world = self.shared.world(self.shared.now());
        world.ssh_keys.keys().map(i64::to_string).collect()
    }

    fn person_ssh_key(&self) -> Option<String> {
        Some(servers::PERSON_KEY.to_string())
    }

    fn refuses_duplicate_keys(&self) -> bool {
        true
    }

    fn missing_server_id(&self) -> String {
        MISSING_SERVER.to_string()
    }

    fn foreign_server_id(&self) -> String {
        FOREIGN_SERVER.to_string()
    }

    fn foreign_snapshot_id(&self) -> String {
        FOREIGN_SNAPSHOT.to_string()
    }
}

kastell_sim::register_simulator!(crate::ID, HetznerSim);
