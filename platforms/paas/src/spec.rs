//! What distinguishes one PostgreSQL-in-Docker PaaS from another: a
//! [`PaasSpec`] constant per platform crate.

use std::sync::Arc;

use kastell_core::types::{BackupStyle, UpdateStyle};
use kastell_core::{Platform, PlatformCapability, PlatformContext, PlatformEntry, Result};

/// Everything a [`crate::PaasPlatform`] supports: version, health, update
/// (with dry run), backup, restore and stop/start.
pub const CAPABILITY: PlatformCapability = PlatformCapability::all();

/// How the PostgreSQL container is found on the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DbContainer {
    /// A container with a fixed name (`coolify-db`).
    Fixed(&'static str),
    /// The first container whose name matches this `docker ps` name filter
    /// (`dokploy-postgres`, a Swarm task with a generated suffix). Looking
    /// it up fails when no container matches.
    NameFilter(&'static str),
}

/// The program that runs a downloaded install script.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Interpreter {
    /// `bash <script>`.
    Bash,
    /// `sh <script>`.
    Sh,
}

/// How the platform updates itself: an install script fetched over HTTPS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UpdateSpec {
    /// The script's URL (`https://cdn.coollabs.io/coolify/install.sh`).
    pub url: &'static str,
    /// The program that runs it.
    pub interpreter: Interpreter,
    /// One argument for the script (Dokploy needs `update`, or it runs a
    /// fresh install that collides with ports 80/443).
    pub argument: Option<&'static str>,
}

/// The configuration archived next to the database: `entries`, relative to
/// `base`, are put into one tar file (`tar -C <root><base> ...`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConfigSpec {
    /// Absolute directory the entries are relative to (`/data/coolify`).
    pub base: &'static str,
    /// Files or directories under `base` (`source/.env`); `.` is `base`
    /// itself. Missing entries are skipped and reported.
    pub entries: &'static [&'static str],
}

/// Remote shell commands that control the platform's services. Each one is
/// run with `cd <root><dir>` first when `dir` is set (compose projects).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServiceSpec {
    /// Directory (absolute, under the context's root) to run commands in.
    pub dir: Option<&'static str>,
    /// Stops every service of the platform.
    pub stop: &'static str,
    /// Starts every service of the platform.
    pub start: &'static str,
    /// Starts only the database service (before a restore).
    pub start_db: &'static str,
}

/// Where the platform's own log is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogSpec {
    /// `docker logs` of this container (`coolify`).
    Container(&'static str),
    /// `docker service logs` of this Swarm service (`dokploy`, whose task
    /// container has a generated name that `docker logs` cannot find).
    SwarmService(&'static str),
}

/// The key a platform encrypts part of its database with (environment
/// variables, tokens, SSH keys), kept outside the database. A database
/// restored without it holds ciphertext nobody can read, so a backup
/// carries it and a restore puts it back first, before the database
/// (see [`crate::PaasPlatform`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecretSpec {
    /// The platform keeps no such key, or kastell knows of none: backups
    /// and restores do nothing more than the database and configuration.
    None,
    /// A Docker Swarm secret mounted into a service's task container
    /// (Dokploy's `dokploy-auth-secret`, at `/run/secrets/<name>`). Its
    /// value can only be read inside the running task (`docker secret
    /// inspect` never shows it), so a backup needs the service running.
    /// The backup stores it as the artifact [`PaasSpec::secret_artifact`].
    SwarmSecret {
        /// The Swarm service that mounts the secret (`dokploy`); its task
        /// container is found by the label `com.docker.swarm.service.name`.
        service: &'static str,
        /// The secret's name (`dokploy-auth-secret`).
        name: &'static str,
        /// An environment variable of the service that, when set, is the
        /// key instead of the secret (`ENCRYPTION_KEY`); its `<var>_FILE`
        /// form names a file in the container holding it. Captured as the
        /// artifact [`PaasSpec::secret_key_artifact`]. `None` when the
        /// platform has no such override.
        override_var: Option<&'static str>,
    },
    /// A key in a dotenv file of the configuration (Coolify's `APP_KEY` in
    /// `source/.env`), archived with the configuration. On restore the
    /// backup's key wins and a different key the server had is kept in
    /// `previous` (comma-separated, Laravel's `APP_PREVIOUS_KEYS`), so
    /// nothing encrypted with it is lost. The file must be one of the
    /// configuration entries ([`ConfigSpec::entries`]); a spec where it is
    /// not is refused by [`crate::PaasPlatform::new`].
    EnvKey {
        /// The dotenv file, relative to [`ConfigSpec::base`] (`source/.env`).
        file: &'static str,
        /// The key's variable (`APP_KEY`).
        key: &'static str,
        /// The variable listing previous keys, comma-separated
        /// (`APP_PREVIOUS_KEYS`).
        previous: &'static str,
    },
}

/// How the containers of an app (a database resource, or what uses a
/// volume) are found, stopped and started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AppContainers {
    /// Plain containers: a database resource's container is named after
    /// its key (Coolify names a standalone database's container after its
    /// uuid); those using a volume are stopped and started.
    Named,
    /// Docker Swarm services named after the key (Dokploy's `appName`):
    /// the task container carries the label
    /// `com.docker.swarm.service.name`; the service is scaled to zero and
    /// back instead of stopping its containers (Swarm would replace them).
    SwarmService,
}

/// One query over the platform's own database that lists some of its
/// apps' data, run only when every table it reads exists (an older or
/// newer platform without them has none of those apps). It selects text
/// columns `kind` (`postgres`, `mysql`, `mariadb`, `mongo`, `redis` or
/// `volume`), `key` (the resource's uuid or `appName`), `name` (what the
/// platform shows) and `volume` (a volume's name, else null).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AppQuery {
    /// The tables it reads (all in the `public` schema).
    pub tables: &'static [&'static str],
    /// The `SELECT`.
    pub sql: &'static str,
}

/// How the platform is asked to deploy an app on a fresh host (one
/// recovered from a backup, where no app has a container until the
/// platform creates it), through its own HTTP API on the server's
/// 127.0.0.1 with a short-lived credential kastell writes into the
/// restored platform database and always deletes after (see
/// `kastell_paas::apps` deploy).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeployApi {
    /// kastell knows no API: an app without containers is refused, with
    /// the advice to deploy it in the platform, then restore it alone.
    None,
    /// Coolify's REST API v1 on port 8000 with a Laravel Sanctum personal
    /// access token of the root user (id 0) and root team (0):
    /// `GET /api/v1/databases/{uuid}/start`, `GET /api/v1/deploy?uuid=`.
    Coolify,
    /// Dokploy's API on port 3000 with a better-auth API key of the
    /// organization's owner (`x-api-key`): `POST /api/<kind>.deploy` with
    /// `{"<kind>Id": ...}`, the id looked up by the resource's `appName`.
    Dokploy,
}

/// Where a platform records its apps, and how their containers are found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AppsSpec {
    /// The queries that list the apps' databases and volumes.
    pub queries: &'static [AppQuery],
    /// How their containers are found.
    pub containers: AppContainers,
    /// How the platform is asked to deploy one on a fresh host.
    pub deploy: DeployApi,
}

impl AppsSpec {
    /// A platform kastell knows no apps of: backups hold only its own data.
    pub const NONE: Self = Self {
        queries: &[],
        containers: AppContainers::Named,
        deploy: DeployApi::None,
    };
}

/// One PostgreSQL-in-Docker PaaS: identity, ports, containers, paths and
/// commands. Platform crates declare one as a `const`; everything else is
/// shared in [`crate::PaasPlatform`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PaasSpec {
    /// Registry id (`coolify`).
    pub id: &'static str,
    /// Human name (`Coolify`).
    pub display_name: &'static str,
    /// Port the web UI answers on, checked over plain HTTP on the IP.
    pub health_port: u16,
    /// The container whose image tag is the platform version.
    pub version_container: &'static str,
    /// The PostgreSQL container.
    pub db_container: DbContainer,
    /// PostgreSQL user.
    pub db_user: &'static str,
    /// PostgreSQL database.
    pub db_name: &'static str,
    /// The configuration to archive.
    pub config: ConfigSpec,
    /// Service control.
    pub services: ServiceSpec,
    /// Self-update.
    pub update: UpdateSpec,
    /// Where its own log is read.
    pub log: LogSpec,
    /// The key its database is encrypted with, kept outside the database.
    pub secret: SecretSpec,
    /// Where it records its users' apps (databases and volumes), which a
    /// backup holds too.
    pub apps: AppsSpec,
}

impl PaasSpec {
    /// Artifact name of the database dump (`coolify-db.dump`).
    pub fn db_artifact(&self) -> String {
        format!("{}-db.dump", self.id)
    }

    /// Artifact name of a parallel dump: the tar of its `pg_dump -Fd`
    /// directory (`coolify-db.dir.tar`).
    pub fn db_directory_artifact(&self) -> String {
        format!("{}-db.dir.tar", self.id)
    }

    /// The registry entry for this platform, with `build` as its
    /// constructor (which should call [`crate::PaasPlatform::build`]);
    /// it detects nothing until given a marker with
    /// [`PlatformEntry::detected_by`].
    pub const fn entry(
        &self,
        build: fn(PlatformContext) -> Result<Arc<dyn Platform>>,
    ) -> PlatformEntry {
        PlatformEntry {
            id: self.id,
            display_name: self.display_name,
            capability: CAPABILITY,
            update: UpdateStyle::OWN_COMMAND,
            backup: if self.apps.queries.is_empty() {
                BackupStyle::DATABASE_AND_CONFIGURATION
            } else {
                BackupStyle::PLATFORM_AND_APPS
            },
            detect: None,
            build,
        }
    }

    /// Artifact name of the configuration archive (`coolify-config.tar`).
    pub fn config_artifact(&self) -> String {
        format!("{}-config.tar", self.id)
    }

    /// Artifact name of a [`SecretSpec::SwarmSecret`]'s value, byte for
    /// byte (`dokploy-platform-secret`).
    pub fn secret_artifact(&self) -> String {
        format!("{}-platform-secret", self.id)
    }

    /// Artifact name of the key a [`SecretSpec::SwarmSecret`]'s
    /// `override_var` held (its value, or the content of the file its
    /// `_FILE` form named), byte for byte (`dokploy-platform-key`).
    pub fn secret_key_artifact(&self) -> String {
        format!("{}-platform-key", self.id)
    }
}
