//! # kastell-paas: what Coolify and Dokploy share
//!
//! Both platforms are a web application with its PostgreSQL database in
//! Docker. Everything they have in common lives here, in [`PaasPlatform`];
//! a platform crate only declares a [`PaasSpec`] constant (names, ports,
//! containers, paths and commands) and registers it.
//!
//! ## What a [`PaasPlatform`] does
//! - **version**: `docker inspect <container> --format '{{.Config.Image}}'`
//!   reduced to the image tag; a failed command or empty output is
//!   `unknown`.
//! - **health**: an HTTP GET from the local machine (5 s timeout,
//!   redirects not followed) to the `health_url` option, else
//!   `https://<domain>`, else `http://<ip>:<port>`; healthy only on a 2xx or
//!   3xx answer.
//! - **update**: the platform's install script, downloaded into a private
//!   temporary directory that is removed on exit, checked (shebang, 100 B
//!   to 1 MiB) and run, with a long timeout. A dry run only reports it.
//! - **backup**: `pg_dump -Fc -Z0` streamed into the sink as `<id>-db.dump`,
//!   then a tar of the configuration entries that exist as
//!   `<id>-config.tar`. Each is one
//!   [`kastell_core::ArtifactSinkExt::stream`], compressed as the engine's
//!   plan on the sink says ([`kastell_core::wire::WirePlan`]; the engine
//!   probed the host and measured the link): zstd on the server at the
//!   plan's level, adapting to the link (`--adapt`) where the host's zstd
//!   can, when the link is slower than the host compresses (stored as sent),
//!   pigz or gzip when the host has no zstd, else raw (zstd locally).
//!   pg_dump's own zlib is never used: it made the dump several times
//!   slower. Nothing is written on the server. Then the platform's own
//!   secret ([`SecretSpec`], read before the dump so a host without it
//!   fails early): a Swarm secret as `<id>-platform-secret` and an
//!   override key as `<id>-platform-key`, byte for byte; a dotenv key
//!   travels in the configuration archive.
//! - **restore** (between the engine's `stop` and `start`): put the
//!   platform secret back first ([`STEP_RESTORE_SECRET`]: the Swarm secret
//!   replaced only when it differs, the dotenv key written with the
//!   server's former key kept among the previous ones), start the
//!   database, wait for `pg_isready` (a zstd artifact is sent as stored and
//!   decompressed on the server when the host has zstd), `pg_restore --clean --if-exists
//!   --single-transaction --exit-on-error` (legacy plain SQL: `psql` with
//!   `ON_ERROR_STOP` into a recreated `public` schema), extract the
//!   configuration. It stops at the first failed step and reports every step
//!   so far with that step's error, named after it
//!   (`Restore database failed: ...`).
//! - **stop / start**: the spec's service commands, exit status checked.
//!
//! Every command is built in [`commands`] with shell quoting; options are
//! described in [`settings`].

mod apps;
mod backup;
pub mod commands;
mod health;
mod parallel;
mod platform;
mod restore;
mod secret;
pub mod settings;
pub mod spec;
mod update;
mod version;

pub use apps::{
    STEP_CHECK_APP, STEP_DEPLOY_APP, STEP_MINT_TOKEN, STEP_RESTORE_APP, STEP_REVOKE_TOKEN,
    STEP_START_PLATFORM,
};
pub use health::HEALTH_TIMEOUT;
pub use platform::PaasPlatform;
pub use restore::{
    STEP_RESTORE_CONFIG, STEP_RESTORE_DB, STEP_RESTORE_SECRET, STEP_START_DB, STEP_WAIT_DB,
};
pub use settings::Settings;
pub use spec::{
    AppContainers, AppQuery, AppsSpec, CAPABILITY, ConfigSpec, DbContainer, DeployApi, Interpreter,
    LogSpec, PaasSpec, SecretSpec, ServiceSpec, UpdateSpec,
};
pub use version::{UNKNOWN_VERSION, image_tag};
