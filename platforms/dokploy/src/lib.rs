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
//!   ports 80 and 443);
//! - platform secret: Dokploy encrypts environment variables, build
//!   arguments and secrets in its database (AES-256-GCM) with a key derived
//!   from the Swarm secret `dokploy-auth-secret`, or from `ENCRYPTION_KEY` /
//!   `ENCRYPTION_KEY_FILE` in the `dokploy` service's environment, which
//!   take precedence. A backup reads the secret inside the running
//!   `dokploy` task (`/run/secrets/dokploy-auth-secret`, the task found by
//!   the label `com.docker.swarm.service.name=dokploy`) into the artifact
//!   `dokploy-platform-secret`, and the key, when set, into
//!   `dokploy-platform-key`. It fails when Dokploy is not running or the
//!   secret cannot be read, except on a Dokploy from before the secret
//!   (neither the secret nor the variables: a warning). A restore puts
//!   them back first, before the database: the secret is replaced only when
//!   it differs (the service drops it, it is removed and created again from
//!   stdin, the service mounts it again).
//!
//! - apps: each database service (PostgreSQL, MySQL, MariaDB, MongoDB,
//!   Redis) dumped by its own tool in its task container, and each
//!   application's Docker volume as a tar with its containers paused; a
//!   volume restored in place scales its service to zero and back
//!   ([`APPS`]).
//!
//! The context's root and the options (`health_url`, timeouts) are described in
//! [`kastell_paas::settings`].

use std::sync::Arc;

use kastell_core::{Platform, PlatformContext, PlatformDetection, PlatformEntry, Result};
use kastell_paas::{
    AppContainers, AppQuery, AppsSpec, ConfigSpec, DbContainer, DeployApi, Interpreter, LogSpec,
    PaasPlatform, PaasSpec, SecretSpec, ServiceSpec, UpdateSpec,
};

/// A database table of Dokploy's: its services' `appName` and name.
macro_rules! database {
    ($kind:literal, $table:literal) => {
        AppQuery {
            tables: &[$table],
            sql: concat!(
                "SELECT '",
                $kind,
                "'::text AS kind, \"appName\"::text AS key, name::text AS name, NULL::text AS volume FROM ",
                $table
            ),
        }
    };
}

/// Where Dokploy records its users' apps: a table per kind of database
/// (each a Swarm service named by its `appName`), and the Docker volumes
/// its applications mount (`mount` rows of type `volume`).
pub const APPS: AppsSpec = AppsSpec {
    queries: &[
        database!("postgres", "postgres"),
        database!("mysql", "mysql"),
        database!("mariadb", "mariadb"),
        database!("mongo", "mongo"),
        database!("redis", "redis"),
        AppQuery {
            tables: &["application", "mount"],
            sql: "SELECT 'volume'::text AS kind, a.\"appName\"::text AS key, a.name::text AS name, m.\"volumeName\"::text AS volume \
                  FROM mount m JOIN application a ON m.\"applicationId\" = a.\"applicationId\" \
                  WHERE m.type = 'volume'",
        },
    ],
    containers: AppContainers::SwarmService,
    deploy: DeployApi::Dokploy,
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
    secret: SecretSpec::SwarmSecret {
        service: "dokploy",
        name: "dokploy-auth-secret",
        override_var: Some("ENCRYPTION_KEY"),
    },
    apps: APPS,
};

/// Builds the Dokploy platform over `ctx`; refuses invalid options.
pub fn build(ctx: PlatformContext) -> Result<Arc<dyn Platform>> {
    PaasPlatform::build(&SPEC, ctx)
}

/// The registry entry for Dokploy, detected on a server by its
/// configuration directory (before Coolify, as the original tool checked).
pub const ENTRY: PlatformEntry = SPEC.entry(build).detected_by(PlatformDetection {
    marker_dir: "/etc/dokploy",
    order: 10,
});

kastell_core::register_platform!(ENTRY);
