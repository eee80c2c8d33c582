//! The users' apps on a fake Coolify or Dokploy host: database containers
//! (a real PostgreSQL database of the shim's cluster, or a MySQL or Redis
//! whose fake tools round-trip real bytes) and application containers
//! mounting Docker volumes under the fake root. See `docker_apps.sh` for
//! the state layout.

use std::fs;
use std::path::PathBuf;

use kastell_core::{Error, Result};

use super::paas::{PaasFlavour, PaasShim};
use super::{give_to_sandbox_user, mkdir_mode, write_mode};

/// What kind of container an app is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AppKind {
    /// A PostgreSQL database: `database` of the shim's cluster, reached as
    /// `user` (both in its environment as `POSTGRES_DB`/`POSTGRES_USER`).
    Postgres {
        /// The cluster database.
        database: &'static str,
        /// The login role.
        user: &'static str,
    },
    /// A MySQL database whose contents are the file `data/mysql.sql`.
    Mysql,
    /// A MariaDB database whose contents are the file `data/mysql.sql`
    /// (its root password in `MARIADB_ROOT_PASSWORD`).
    Mariadb,
    /// A MongoDB whose dump is the file `data/mongo.archive` (its root
    /// user in `MONGO_INITDB_ROOT_USERNAME`/`_PASSWORD`).
    Mongo,
    /// A Redis whose dataset is the file `data/memory`.
    Redis,
    /// An application (only its volumes matter).
    App,
}

/// One app container to add with [`PaasShim::add_app`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppContainer {
    /// The app's key: Coolify's uuid (the container is named after it, or
    /// `<key>-<n>` for an application), Dokploy's `appName` (the Swarm
    /// service; the container is `<key>.1.<task>`).
    pub key: String,
    /// What it runs.
    pub kind: AppKind,
    /// The Docker volumes it mounts (created empty under the fake root).
    pub volumes: Vec<String>,
}

/// The root password of every fake MySQL, in its environment as
/// `MYSQL_ROOT_PASSWORD` (the fake tools refuse another).
pub const MYSQL_ROOT_PASSWORD: &str = "shim-mysql-root";

/// The root password of every fake MongoDB, in its environment as
/// `MONGO_INITDB_ROOT_PASSWORD` (user `root`; the fake tools refuse
/// another).
pub const MONGO_ROOT_PASSWORD: &str = "shim-mongo-root";

/// The password every fake Redis requires, in its environment as
/// `REDIS_PASSWORD`.
pub const REDIS_PASSWORD: &str = "shim-redis-pass";

fn plain(word: &str) -> bool {
    !word.is_empty()
        && word
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        && !word.starts_with(['.', '-'])
}

impl PaasShim {
    fn apps_dir(&self) -> PathBuf {
        self.shim().state_dir().join("apps")
    }

    /// Adds the app container `app`, running, and returns its name.
    ///
    /// Refuses (`InvalidInput`) a key or volume that is not a plain name;
    /// fails when its state cannot be written.
    pub fn add_app(&self, app: &AppContainer) -> Result<String> {
        if !plain(&app.key) || !app.volumes.iter().all(|v| plain(v)) {
            return Err(Error::invalid_input(format!(
                "a shim app needs plain names, not {app:?}"
            )));
        }
        let task = format!("{:025x}", fastrand::u128(..) >> 28);
        let name = match (self.flavour(), app.kind) {
            (PaasFlavour::Dokploy, _) => format!("{}.1.{task}", app.key),
            (PaasFlavour::Coolify, AppKind::App) => format!("{}-{}", app.key, &task[..12]),
            (PaasFlavour::Coolify, _) => app.key.clone(),
        };
        let dir = self.apps_dir().join(&name);
        mkdir_mode(&self.apps_dir(), 0o777)?;
        mkdir_mode(&dir, 0o777)?;
        mkdir_mode(&dir.join("data"), 0o777)?;
        let id = format!(
            "{:016x}{:016x}{:016x}{:016x}",
            fastrand::u64(..),
            fastrand::u64(..),
            fastrand::u64(..),
            fastrand::u64(..)
        );
        let (kind, env) = match app.kind {
            AppKind::Postgres { database, user } => (
                "postgres",
                format!("POSTGRES_USER={user}\nPOSTGRES_DB={database}\n"),
            ),
            AppKind::Mysql => {
                write_mode(&dir.join("data/root-password"), MYSQL_ROOT_PASSWORD, 0o666)?;
                write_mode(&dir.join("data/mysql.sql"), "", 0o666)?;
                (
                    "mysql",
                    format!("MYSQL_ROOT_PASSWORD={MYSQL_ROOT_PASSWORD}\nMYSQL_DATABASE=app\n"),
                )
            }
            AppKind::Mariadb => {
                write_mode(&dir.join("data/root-password"), MYSQL_ROOT_PASSWORD, 0o666)?;
                write_mode(&dir.join("data/mysql.sql"), "", 0o666)?;
                (
                    "mariadb",
                    format!("MARIADB_ROOT_PASSWORD={MYSQL_ROOT_PASSWORD}\nMARIADB_DATABASE=app\n"),
                )
            }
            AppKind::Mongo => {
                write_mode(&dir.join("data/mongo-user"), "root", 0o666)?;
                write_mode(&dir.join("data/mongo-password"), MONGO_ROOT_PASSWORD, 0o666)?;
                write_mode(&dir.join("data/mongo.archive"), "", 0o666)?;
                (
                    "mongo",
                    format!(
                        "MONGO_INITDB_ROOT_USERNAME=root\nMONGO_INITDB_ROOT_PASSWORD={MONGO_ROOT_PASSWORD}\n"
                    ),
                )
            }
            AppKind::Redis => {
                write_mode(&dir.join("data/requirepass"), REDIS_PASSWORD, 0o666)?;
                write_mode(&dir.join("data/memory"), "", 0o666)?;
                write_mode(&dir.join("data/lastsave"), "1\n", 0o666)?;
                ("redis", format!("REDIS_PASSWORD={REDIS_PASSWORD}\n"))
            }
            AppKind::App => ("app", String::new()),
        };
        let swarm = if self.flavour() == PaasFlavour::Dokploy {
            "1"
        } else {
            "0"
        };
        let volumes: String = app.volumes.iter().map(|v| format!("{v}\n")).collect();
        for (file, text) in [
            ("id", format!("{id}\n")),
            ("kind", format!("{kind}\n")),
            ("state", "running\n".to_owned()),
            ("service", format!("{}\n", app.key)),
            ("swarm", format!("{swarm}\n")),
            ("env", env),
            ("volumes", volumes),
        ] {
            write_mode(&dir.join(file), &text, 0o666)?;
        }
        for volume in &app.volumes {
            mkdir_mode(&self.volume_path(volume), 0o777)?;
        }
        give_to_sandbox_user(&dir)?;
        give_to_sandbox_user(&self.shim().root())?;
        Ok(name)
    }

    /// Where the volume `name`'s files are (under the fake root, at
    /// Docker's `/var/lib/docker/volumes/<name>/_data`).
    pub fn volume_path(&self, name: &str) -> PathBuf {
        self.shim()
            .root()
            .join("var/lib/docker/volumes")
            .join(name)
            .join("_data")
    }

    fn app_file(&self, container: &str, file: &str) -> PathBuf {
        self.apps_dir().join(container).join(file)
    }

    /// The state (`running`, `paused`, `stopped`) of app container
    /// `container`.
    ///
    /// # Panics
    /// When there is no such container (a broken test).
    pub fn app_state(&self, container: &str) -> String {
        fs::read_to_string(self.app_file(container, "state"))
            .unwrap_or_else(|e| panic!("no shim app container {container}: {e}"))
            .trim()
            .to_owned()
    }

    /// Replaces a file of app container `container`'s data (`mysql.sql`
    /// of a MySQL or MariaDB, `mongo.archive` of a MongoDB, `memory` of a
    /// Redis: its live dataset).
    ///
    /// Fails when it cannot be written.
    pub fn set_app_data(&self, container: &str, file: &str, bytes: &[u8]) -> Result<()> {
        let path = self.app_file(container, &format!("data/{file}"));
        fs::write(&path, bytes).map_err(|e| Error::io(format!("writing {}", path.display()), e))
    }

    /// A file of app container `container`'s data (empty when missing).
    pub fn app_data(&self, container: &str, file: &str) -> Vec<u8> {
        fs::read(self.app_file(container, &format!("data/{file}"))).unwrap_or_default()
    }
}
