//! # kastell-dokploy: Dokploy for kastell
//!
//! A [`Platform`] for [Dokploy](https://dokploy.com), registered under the
//! id `dokploy`. All behaviour is shared with the other PostgreSQL-in-Docker
//! platforms in [`kastell_paas::PaasPlatform`]; this crate only says what is
//! particular to Dokploy ([`SPEC`]):
//!
//! - health: port 3000 (or HTTPS on the server's domain);
//! - version: the image tag of the `dokploy` container;
//! - database: the Swarm task container found with
//!   `docker ps -qf name=dokploy-postgres --no-trunc | head -1` (an error
//!   when none runs), user and database `dokploy`;
//! - configuration: all of `/etc/dokploy`;
//! - services (Docker Swarm): `docker service scale dokploy=0` / `=1`, and
//!   `docker service scale dokploy-postgres=1` to start only the database;
//! - update: `https://dokploy.com/install.sh`, run as `sh install.sh update`
//!   (without `update` the script runs a fresh install that collides with
//!   ports 80 and 443).
//!
//! Options (`root`, `health_url`, timeouts) are described in
//! [`kastell_paas::settings`].

use std::sync::Arc;

use kastell_core::{Platform, PlatformContext, PlatformEntry, Result};
use kastell_paas::{
    ConfigSpec, DbContainer, Interpreter, LogSpec, PaasPlatform, PaasSpec, ServiceSpec, UpdateSpec,
};

/// How Dokploy differs from the other PostgreSQL-in-Docker platforms.
pub const SPEC: PaasSpec = PaasSpec {
    id: "dokploy",
    display_name: "Dokploy",
    health_port: 3000,
    version_container: "dokploy",
    db_container: DbContainer::NameFilter("dokploy-postgres"),
    db_user: "dokploy",
    db_name: "dokploy",
    config: ConfigSpec {
        base: "/etc/dokploy",
        entries: &["."],
    },
    services: ServiceSpec {
        dir: None,
        stop: "docker service scale dokploy=0",
        start: "docker service scale dokploy=1",
        start_db: "docker service scale dokploy-postgres=1",
    },
    update: UpdateSpec {
        url: "https://dokploy.com/install.sh",
        interpreter: Interpreter::Sh,
        argument: Some("update"),
    },
    log: LogSpec::SwarmService("dokploy"),
};

/// Builds the Dokploy platform over `ctx`; refuses invalid options.
pub fn build(ctx: PlatformContext) -> Result<Arc<dyn Platform>> {
    PaasPlatform::build(&SPEC, ctx)
}

/// The registry entry for Dokploy.
pub const ENTRY: PlatformEntry = SPEC.entry(build);

kastell_core::register_platform!(ENTRY);
