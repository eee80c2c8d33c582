//! # kastell-coolify: Coolify for kastell
//!
//! A [`Platform`] for [Coolify](https://coolify.io), registered under the
//! id `coolify`. All behaviour is shared with the other PostgreSQL-in-Docker
//! platforms in [`kastell_paas::PaasPlatform`]; this crate only says what is
//! particular to Coolify ([`SPEC`]):
//!
//! - health: port 8000 (or HTTPS on the server's domain);
//! - version: the image tag of the `coolify` container;
//! - database: container `coolify-db`, user and database `coolify`;
//! - configuration: under `/data/coolify`, the compose project
//!   (`source/.env`, `source/docker-compose.yml`,
//!   `source/docker-compose.prod.yml`) and the SSH keys Coolify uses to
//!   reach managed servers (`ssh/keys`); missing entries are skipped and
//!   reported;
//! - services: `docker compose -f docker-compose.yml -f
//!   docker-compose.prod.yml stop` / `up -d` / `up -d postgres`, run in
//!   `/data/coolify/source`;
//! - update: `https://cdn.coollabs.io/coolify/install.sh`, run with `bash`;
//! - platform secret: Laravel's `APP_KEY` in `source/.env`, which encrypts
//!   parts of the database, archived with the configuration. A restore
//!   writes the backup's `.env` first, before the database starts: the
//!   backup's `APP_KEY` wins (it decrypts the restored database) and a
//!   different key the server had is kept in `APP_PREVIOUS_KEYS`
//!   (comma-separated), so nothing encrypted with it is lost; the
//!   configuration extraction then leaves `.env` alone.
//!
//! - apps: each standalone database (PostgreSQL, MySQL, MariaDB, MongoDB,
//!   Redis) dumped by its own tool in its container (named after its
//!   uuid), and each application's Docker volume as a tar with its
//!   containers paused ([`APPS`]).
//!
//! The context's root and the options (`health_url`, timeouts) are described in
//! [`kastell_paas::settings`].

use std::sync::Arc;

use kastell_core::{Platform, PlatformContext, PlatformDetection, PlatformEntry, Result};
use kastell_paas::{
    AppContainers, AppQuery, AppsSpec, ConfigSpec, DbContainer, DeployApi, Interpreter, LogSpec,
    PaasPlatform, PaasSpec, SecretSpec, ServiceSpec, UpdateSpec,
};

/// A standalone database table of Coolify's: its resources' uuid and name.
macro_rules! standalone {
    ($kind:literal, $table:literal) => {
        AppQuery {
            tables: &[$table],
            sql: concat!(
                "SELECT '",
                $kind,
                "'::text AS kind, uuid::text AS key, name::text AS name, NULL::text AS volume FROM ",
                $table
            ),
        }
    };
}

/// Where Coolify records its users' apps: a table per kind of standalone
/// database (each runs in a container named after its uuid), and the
/// Docker volumes of its applications (`local_persistent_volumes` without
/// a host path, whose resource is an application).
pub const APPS: AppsSpec = AppsSpec {
    queries: &[
        standalone!("postgres", "standalone_postgresqls"),
        standalone!("mysql", "standalone_mysqls"),
        standalone!("mariadb", "standalone_mariadbs"),
        standalone!("mongo", "standalone_mongodbs"),
        standalone!("redis", "standalone_redis"),
        AppQuery {
            tables: &["applications", "local_persistent_volumes"],
            sql: "SELECT 'volume'::text AS kind, a.uuid::text AS key, a.name::text AS name, v.name::text AS volume \
                  FROM local_persistent_volumes v JOIN applications a ON v.resource_id = a.id \
                  WHERE v.resource_type = 'App\\Models\\Application' AND v.host_path IS NULL",
        },
    ],
    containers: AppContainers::Named,
    deploy: DeployApi::Coolify,
};

/// How Coolify differs from the other PostgreSQL-in-Docker platforms.
pub const SPEC: PaasSpec = PaasSpec {
    id: "coolify",
    display_name: "Coolify",
    health_port: 8000,
    version_container: "coolify",
    db_container: DbContainer::Fixed("coolify-db"),
    db_user: "coolify",
    db_name: "coolify",
    config: ConfigSpec {
        base: "/data/coolify",
        entries: &[
            "source/.env",
            "source/docker-compose.yml",
            "source/docker-compose.prod.yml",
            "ssh/keys",
        ],
    },
    services: ServiceSpec {
        dir: Some("/data/coolify/source"),
        stop: "cd {} && docker compose -f docker-compose.yml -f docker-compose.prod.yml stop",
        start: "cd {} && docker compose -f docker-compose.yml -f docker-compose.prod.yml up -d",
        start_db: "cd {} && docker compose -f docker-compose.yml -f docker-compose.prod.yml up -d postgres",
    },
    update: UpdateSpec {
        url: "https://cdn.coollabs.io/coolify/install.sh",
        interpreter: Interpreter::Bash,
        argument: None,
    },
    log: LogSpec::Container("coolify"),
    secret: SecretSpec::EnvKey {
        file: "source/.env",
        key: "APP_KEY",
        previous: "APP_PREVIOUS_KEYS",
    },
    apps: APPS,
};

/// Builds the Coolify platform over `ctx`; refuses invalid options.
pub fn build(ctx: PlatformContext) -> Result<Arc<dyn Platform>> {
    PaasPlatform::build(&SPEC, ctx)
}

/// The registry entry for Coolify, detected on a server by its compose
/// project's directory (after Dokploy, as the original tool checked).
pub const ENTRY: PlatformEntry = SPEC.entry(build).detected_by(PlatformDetection {
    marker_dir: "/data/coolify/source",
    order: 20,
});

kastell_core::register_platform!(ENTRY);
