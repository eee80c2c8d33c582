//! A stateful simulator of the Linode API v4 on loopback (feature `sim`).
//!
//! [`LinodeSim::start`] seeds `options.servers` instances of ours (ids from
//! 41000000, labels `web-0`, ..., public address
//! [`public_ip(i)`](kastell_sim::public_ip), private address
//! [`private_ip(i)`](kastell_sim::private_ip) listed *first* in the
//! instance's `ipv4` array), each with a swap disk listed before its ext4
//! disk. It also holds two public images, a private image of ours that
//! kastell did not make, and another account's instance and image (the
//! image marked as a snapshot of our first instance): lookups never see
//! them.
//!
//! Modelled: `GET /profile` with `X-OAuth-Scopes` (`*`, or read-only scopes
//! for the read-only token); paginated lists (`page`, `page_size` clamped to
//! 25..=500) with `X-Filter`; `GET /networking/ips/{address}` (private
//! addresses answer with `public: false`); reboots (`running` → `rebooting`
//! → `booting` → `running`, counting a boot) and rebuilds (`rebuilding` →
//! `booting` → `running`) answering `{}` / the instance, with
//! `linode_reboot` / `linode_rebuild` events (`scheduled` → `started` →
//! `finished`) searchable by `action`, `entity.id`, `entity.type` and
//! `created` `+gte`, ordered by `+order_by`/`+order`; images from a disk
//! (`creating` → `available`, size in MB, event `disk_imagize`), deleted
//! with `200 {}`; `400 "Linode busy."` for a second job on an instance; root
//! password strength checks; `X-RateLimit-*` headers on every answer and
//! `Retry-After` on 429s; instances created with `POST /linode/instances`
//! (checked as Linode does: `region` and `type` required, a strong
//! `root_pass` with an `image`, SSH public keys in `authorized_keys`, unique
//! labels of 3 to 64 characters, tags of 3 to 50; `{"errors": [...]}`
//! otherwise), `provisioning` then `booting` then `running` with one boot
//! and the next address of [`kastell_sim::AddressPool`], an `X-Filter` on
//! `tags`, `DELETE /linode/instances/{id}`, `GET /linode/types` with region
//! prices and `GET /regions`; image ids in the path both literal
//! (`/images/private/123`) and encoded (`private%2F123`), and every unknown
//! path answered with Linode's error envelope; planned maintenance (`503` with
//! `X-Maintenance-Mode`) through [`LinodeSim::set_maintenance`].

use std::sync::Arc;
use std::sync::atomic::Ordering;

use kastell_sim::{SimContext, SimOptions, SimServer, Simulator, Tokens};

mod dialect;
mod filter;
mod routes;
mod state;

use routes::Shared;
use state::{FIRST_INSTANCE, MISSING_INSTANCE, State};

/// A running Linode simulator. Dropping it stops the server.
#[derive(Debug)]
pub struct LinodeSim {
    server: SimServer,
    context: SimContext,
    shared: Arc<Shared>,
    servers: usize,
}

impl LinodeSim {
    /// Seeds the account per `options` and serves it on a free loopback
    /// port, on the current tokio runtime. Fails when no port can be bound.
    pub async fn start(options: SimOptions) -> std::io::Result<Self> {
        let context = SimContext::new(
            Arc::new(dialect::LinodeDialect),
            Tokens::for_provider(crate::ID),
            options.scale,
        );
        let shared = Arc::new(Shared {
            state: std::sync::Mutex::new(State::seed(&options)),
            clock: context.clock,
            maintenance: Default::default(),
            addresses: context.addresses.clone(),
        });
        let router = context.layer(routes::router(shared.clone()));
        let server = SimServer::start(router).await?;
        Ok(Self {
            server,
            context,
            shared,
            servers: options.servers,
        })
    }

    /// Switches planned maintenance on or off: while on, every request is
    /// answered `503` with `X-Maintenance-Mode`.
    pub fn set_maintenance(&self, on: bool) {
        self.shared.maintenance.store(on, Ordering::SeqCst);
    }
}

/// Boots count finished reboots and rebuilds; the foreign instance and its
/// image (`private/<id>`) belong to another account.
impl Simulator for LinodeSim {
    fn provider_id(&self) -> &'static str {
        crate::ID
    }

    fn endpoint(&self) -> String {
        self.server.url("/v4")
    }

    fn context(&self) -> &SimContext {
        &self.context
    }

    fn boots(&self, server_id: &str) -> u64 {
        let Ok(id) = server_id.parse::<u64>() else {
            return 0;
        };
        self.shared.with(|state, _| state.boots(id))
    }

    fn server_ids(&self) -> Vec<String> {
        (0..self.servers)
            .map(|i| (FIRST_INSTANCE + i as u64).to_string())
            .collect()
    }

    fn created_servers(&self) -> Vec<String> {
        self.shared.with(|state, _| {
            state
                .linodes()
                .filter(|l| l.via_api)
                .map(|l| l.id.to_string())
                .collect()
        })
    }

    fn missing_server_id(&self) -> String {
        MISSING_INSTANCE.to_string()
    }

    fn foreign_server_id(&self) -> String {
        state::FOREIGN.to_string()
    }

    fn foreign_snapshot_id(&self) -> String {
        format!("private/{}", state::FOREIGN)
    }
}

kastell_sim::register_simulator!(crate::ID, LinodeSim);
