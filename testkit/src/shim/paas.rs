//! A fake Coolify or Dokploy host: `docker` and `curl` shims over a real
//! PostgreSQL cluster, a state file, Dokploy's Swarm secrets and service
//! environment, and a seeded fake filesystem root.

use std::fs;
use std::ops::Deref;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use kastell_core::{Error, Result};

use super::{ShimDir, give_to_sandbox_user, mkdir_mode, sh_quote, write_mode};
use crate::pg::PgCluster;

use kastell_ssh::sandbox::paas::{
    APPTOOL as APPTOOL_BODY, APPTOOLS, CURL as CURL_BODY, DOCKER as DOCKER_BODY,
    DOCKER_APPS as DOCKER_APPS_BODY,
};
const INSTALL_BODY: &str = include_str!("install.sh");

/// Which platform a [`PaasShim`] fakes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PaasFlavour {
    /// Coolify: `docker compose` in `/data/coolify/source`, container
    /// `coolify-db`, image `ghcr.io/coollabsio/coolify:<version>`.
    Coolify,
    /// Dokploy: Swarm services `dokploy` and `dokploy-postgres` (found by
    /// `docker ps -qf name=dokploy-postgres --no-trunc`, or by the label
    /// `com.docker.swarm.service.name`), image `dokploy/dokploy:<version>`.
    /// The `dokploy` service mounts the Swarm secret [`DOKPLOY_SECRET`]
    /// (a random value per host, as each install makes its own).
    Dokploy,
}

/// The Swarm secret a fake Dokploy host starts with, mounted by its
/// `dokploy` service at `/run/secrets/dokploy-auth-secret`.
pub const DOKPLOY_SECRET: &str = "dokploy-auth-secret";

/// What the fake host is doing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShimState {
    /// Whether the platform's application container runs.
    pub app_running: bool,
    /// Whether the database container runs (`docker exec` into it works).
    pub db_running: bool,
    /// The platform version (the image tag `docker inspect` reports).
    pub version: String,
}

/// A [`ShimDir`] faking Coolify or Dokploy (see the module docs of
/// [`crate::shim`]). It derefs to its [`ShimDir`] for `dir`, `root`,
/// `commands`, `fail_next` and `add_script`.
///
/// Starts with app and database running, version `4.0.0-beta.400`
/// (Coolify) or `v0.21.4` (Dokploy). A Dokploy host also starts with the
/// Swarm secret [`DOKPLOY_SECRET`] (random, so two hosts differ) mounted by
/// its `dokploy` service and a plain service environment; `docker secret
/// ls/create/rm/inspect`, `docker service inspect/update` (`--secret-add`,
/// `--secret-rm`, `--env-add`, `--env-rm`) and `docker exec <app task> cat`
/// work on that state as Docker does (a mounted secret cannot be removed,
/// one that exists cannot be created, `--env-add NAME` takes the value
/// from the CLI's environment), so a test can check the end state with
/// [`PaasShim::swarm_secret`], [`PaasShim::service_secrets`] and
/// [`PaasShim::service_env`]. Values are never logged: they travel on
/// stdin or in the environment.
#[derive(Debug)]
pub struct PaasShim {
    shim: ShimDir,
    flavour: PaasFlavour,
    db_container_id: String,
}

impl Deref for PaasShim {
    type Target = ShimDir;

    fn deref(&self) -> &ShimDir {
        &self.shim
    }
}

/// A fake 64-hex container id.
fn container_id() -> String {
    (0..4)
        .map(|_| format!("{:016x}", fastrand::u64(..)))
        .collect()
}

/// Seeded files of the fake root: (path relative to the root, content).
fn seed_files(flavour: PaasFlavour) -> Vec<(&'static str, &'static str)> {
    match flavour {
        PaasFlavour::Coolify => vec![
            (
                "data/coolify/source/.env",
                "# kastell-shim coolify .env\nAPP_ID=kastell-shim-app\nAPP_KEY=base64:a2FzdGVsbC1zaGltLWFwcC1rZXktMDAwMDAwMDA=\nDB_USERNAME=coolify\nDB_PASSWORD=kastell-shim-db-password\n",
            ),
            (
                "data/coolify/source/docker-compose.yml",
                "# kastell-shim coolify docker-compose.yml\nservices:\n  coolify:\n    image: ghcr.io/coollabsio/coolify\n  postgres:\n    image: postgres:15-alpine\n    container_name: coolify-db\n",
            ),
            (
                "data/coolify/source/docker-compose.prod.yml",
                "# kastell-shim coolify docker-compose.prod.yml\nservices:\n  coolify:\n    restart: always\n",
            ),
            (
                "data/coolify/ssh/keys/id.root@host.docker.internal",
                "-----BEGIN OPENSSH PRIVATE KEY-----\nkastell-shim coolify fake key\n-----END OPENSSH PRIVATE KEY-----\n",
            ),
        ],
        PaasFlavour::Dokploy => vec![
            (
                "etc/dokploy/dokploy.yml",
                "# kastell-shim dokploy dokploy.yml\nhttp:\n  routers:\n    dokploy-router-app:\n      rule: Host(`dokploy.example.test`)\n",
            ),
            (
                "etc/dokploy/traefik/traefik.yml",
                "# kastell-shim dokploy traefik.yml\nentryPoints:\n  web:\n    address: ':80'\n",
            ),
        ],
    }
}

impl PaasShim {
    /// A fake Coolify host over `pg` (database `coolify`, role `coolify`).
    ///
    /// Fails when the shim directory cannot be created.
    pub fn coolify(pg: &PgCluster) -> Result<Self> {
        Self::new(pg, PaasFlavour::Coolify)
    }

    /// A fake Dokploy host over `pg` (database `dokploy`, role `dokploy`).
    ///
    /// Fails when the shim directory cannot be created.
    pub fn dokploy(pg: &PgCluster) -> Result<Self> {
        Self::new(pg, PaasFlavour::Dokploy)
    }

    fn new(pg: &PgCluster, flavour: PaasFlavour) -> Result<Self> {
        let shim = ShimDir::new()?;
        let this = Self {
            shim,
            flavour,
            db_container_id: container_id(),
        };
        let version = match flavour {
            PaasFlavour::Coolify => "4.0.0-beta.400",
            PaasFlavour::Dokploy => "v0.21.4",
        };
        this.set_state(&ShimState {
            app_running: true,
            db_running: true,
            version: version.to_owned(),
        })?;
        this.write_scripts(pg)?;
        this.seed_root()?;
        this.seed_swarm()?;
        Ok(this)
    }

    /// The fake database tools of app containers (not on the session
    /// `PATH`: `docker exec` puts them first on a container's).
    fn apptools_dir(&self) -> PathBuf {
        self.shim.dir().with_file_name("apptools")
    }

    /// The Swarm state directory (see the docs of `docker.sh`).
    fn swarm_dir(&self) -> PathBuf {
        self.shim.state_dir().join("swarm")
    }

    fn seed_swarm(&self) -> Result<()> {
        let swarm = self.swarm_dir();
        mkdir_mode(&swarm, 0o777)?;
        mkdir_mode(&swarm.join("secrets"), 0o777)?;
        mkdir_mode(&swarm.join("fs"), 0o777)?;
        for file in ["service-secrets", "service-env"] {
            write_mode(&swarm.join(file), "", 0o666)?;
        }
        if self.flavour == PaasFlavour::Dokploy {
            self.set_service_env(&["NODE_ENV=production", "PORT=3000", "TZ=UTC"])?;
            let value = format!("{:016x}{:016x}", fastrand::u64(..), fastrand::u64(..));
            self.set_swarm_secret(DOKPLOY_SECRET, Some(value.as_bytes()))?;
        }
        give_to_sandbox_user(&swarm)
    }

    /// The value of the Swarm secret `name` in the fake secret store
    /// (`None` when there is no such secret).
    pub fn swarm_secret(&self, name: &str) -> Option<Vec<u8>> {
        fs::read(
            self.swarm_dir()
                .join("secrets")
                .join(format!("{name}.value")),
        )
        .ok()
    }

    /// The id of the Swarm secret `name` (a new one each time it is
    /// created), `None` when there is no such secret.
    pub fn swarm_secret_id(&self, name: &str) -> Option<String> {
        fs::read_to_string(self.swarm_dir().join("secrets").join(format!("{name}.id")))
            .ok()
            .map(|id| id.trim().to_owned())
    }

    /// Replaces the Swarm secret `name` with `value` (a new id) and makes
    /// the application service mount it; `None` removes it and the mount
    /// (a Dokploy from before the secret).
    ///
    /// Refuses (`InvalidInput`) a name that is not a plain file name and an
    /// empty value; fails when the state cannot be written.
    pub fn set_swarm_secret(&self, name: &str, value: Option<&[u8]>) -> Result<()> {
        let plain = !name.is_empty()
            && !name.starts_with('.')
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
        if !plain || value.is_some_and(<[u8]>::is_empty) {
            return Err(Error::invalid_input(format!(
                "a shim Swarm secret needs a plain name and a non-empty value, not {name:?}"
            )));
        }
        let secrets = self.swarm_dir().join("secrets");
        let mut mounts: Vec<String> = self
            .read_lines("service-secrets")
            .into_iter()
            .filter(|l| l.split_whitespace().nth(1) != Some(name))
            .collect();
        match value {
            Some(value) => {
                let id = format!("{:025x}", fastrand::u128(..) >> 28);
                let path = secrets.join(format!("{name}.value"));
                fs::write(&path, value)
                    .map_err(|e| Error::io(format!("writing {}", path.display()), e))?;
                fs::set_permissions(&path, fs::Permissions::from_mode(0o666))
                    .map_err(|e| Error::io(format!("setting the mode of {}", path.display()), e))?;
                write_mode(
                    &secrets.join(format!("{name}.id")),
                    &format!("{id}\n"),
                    0o666,
                )?;
                mounts.push(format!("{id} {name}"));
            }
            None => {
                for ext in ["value", "id"] {
                    let _ = fs::remove_file(secrets.join(format!("{name}.{ext}")));
                }
            }
        }
        self.write_lines("service-secrets", &mounts)
    }

    /// The Swarm secrets the application service mounts, by name.
    pub fn service_secrets(&self) -> Vec<String> {
        self.read_lines("service-secrets")
            .iter()
            .filter_map(|l| l.split_whitespace().nth(1).map(str::to_owned))
            .collect()
    }

    /// The application service's environment (`KEY=VALUE` per entry).
    pub fn service_env(&self) -> Vec<String> {
        self.read_lines("service-env")
    }

    /// Replaces the application service's environment.
    ///
    /// Refuses (`InvalidInput`) an entry with a newline; fails when the
    /// state cannot be written.
    pub fn set_service_env(&self, entries: &[&str]) -> Result<()> {
        if entries.iter().any(|e| e.contains('\n')) {
            return Err(Error::invalid_input(
                "a shim environment entry must be one line",
            ));
        }
        let entries: Vec<String> = entries.iter().map(|e| (*e).to_owned()).collect();
        self.write_lines("service-env", &entries)
    }

    /// Puts a file at the absolute `path` of the application container
    /// (what `docker exec <app> cat <path>` prints).
    ///
    /// Refuses (`InvalidInput`) a relative path or one with `..`; fails
    /// when the file cannot be written.
    pub fn put_container_file(&self, path: &str, bytes: &[u8]) -> Result<()> {
        if !path.starts_with('/') || path.split('/').any(|p| p == "..") {
            return Err(Error::invalid_input(format!(
                "a container path must be absolute, without '..', not {path:?}"
            )));
        }
        let file = self.swarm_dir().join("fs").join(&path[1..]);
        if let Some(parent) = file.parent() {
            mkdir_mode(parent, 0o777)?;
        }
        fs::write(&file, bytes).map_err(|e| Error::io(format!("writing {}", file.display()), e))?;
        give_to_sandbox_user(&self.swarm_dir().join("fs"))
    }

    fn read_lines(&self, file: &str) -> Vec<String> {
        fs::read_to_string(self.swarm_dir().join(file))
            .unwrap_or_default()
            .lines()
            .filter(|l| !l.is_empty())
            .map(str::to_owned)
            .collect()
    }

    fn write_lines(&self, file: &str, lines: &[String]) -> Result<()> {
        let text: String = lines.iter().map(|l| format!("{l}\n")).collect();
        let dir = self.swarm_dir();
        let tmp = dir.join(format!(".{file}.rust.{}", fastrand::u64(..)));
        write_mode(&tmp, &text, 0o666)?;
        fs::rename(&tmp, dir.join(file))
            .map_err(|e| Error::io(format!("replacing the shim's {file}"), e))
    }

    fn write_scripts(&self, pg: &PgCluster) -> Result<()> {
        let task = format!("{:025x}", fastrand::u128(..) >> 28);
        let (app_name, app_service, db_name, db_service, app_image, db_image) = match self.flavour {
            PaasFlavour::Coolify => (
                "coolify".to_owned(),
                "coolify",
                "coolify-db".to_owned(),
                "postgres",
                "ghcr.io/coollabsio/coolify",
                "postgres:15-alpine",
            ),
            PaasFlavour::Dokploy => (
                format!("dokploy.1.{task}"),
                "dokploy",
                format!("dokploy-postgres.1.{task}"),
                "dokploy-postgres",
                "dokploy/dokploy",
                "postgres:16",
            ),
        };
        let app_id = container_id();
        let q = |s: &str| sh_quote(s);
        let vars = [
            ("FLAVOUR", q(self.flavour_name())),
            ("PG_BIN", q(&pg.bin_dir().to_string_lossy())),
            ("PG_SOCKET", q(&pg.socket_dir().to_string_lossy())),
            ("PG_PORT", q(&pg.port().to_string())),
            ("APP_ID", q(&app_id)),
            ("APP_SHORT", q(&app_id[..12])),
            ("APP_NAME", q(&app_name)),
            ("APP_SERVICE", q(app_service)),
            ("APP_IMAGE", q(app_image)),
            ("DB_ID", q(&self.db_container_id)),
            ("DB_SHORT", q(&self.db_container_id[..12])),
            ("DB_NAME", q(&db_name)),
            ("DB_SERVICE", q(db_service)),
            ("DB_IMAGE", q(db_image)),
            ("SHIM_APPTOOLS", q(&self.apptools_dir().to_string_lossy())),
        ]
        .iter()
        .map(|(k, v)| format!("{k}={v}\n"))
        .collect::<String>();
        let docker = self.shim.script_text(
            "docker",
            &vars,
            &format!("{DOCKER_APPS_BODY}\n{DOCKER_BODY}"),
        );
        mkdir_mode(&self.apptools_dir(), 0o755)?;
        for tool in APPTOOLS {
            let text = self.shim.script_text(tool, "", APPTOOL_BODY);
            write_mode(&self.apptools_dir().join(tool), &text, 0o755)?;
        }
        write_mode(&self.shim.dir().join("docker"), &docker, 0o755)?;
        let curl = self.shim.script_text("curl", "", CURL_BODY);
        write_mode(&self.shim.dir().join("curl"), &curl, 0o755)?;
        for (file, product, needs_update) in [
            ("coolify-install.sh", "Coolify", "0"),
            ("dokploy-install.sh", "Dokploy", "1"),
        ] {
            let vars = format!("PRODUCT={product}\nNEEDS_UPDATE_ARG={needs_update}\n");
            let text = self
                .shim
                .script_text("install.sh", &vars, INSTALL_BODY)
                .replacen("#!/bin/sh", "#!/bin/bash", 1);
            write_mode(&self.shim.state_dir().join(file), &text, 0o644)?;
        }
        Ok(())
    }

    fn seed_root(&self) -> Result<()> {
        let root = self.shim.root();
        for (relative, text) in seed_files(self.flavour) {
            let path = root.join(relative);
            if let Some(parent) = path.parent() {
                mkdir_mode(parent, 0o777)?;
            }
            write_mode(&path, text, 0o666)?;
        }
        give_to_sandbox_user(&root)
    }

    fn flavour_name(&self) -> &'static str {
        match self.flavour {
            PaasFlavour::Coolify => "coolify",
            PaasFlavour::Dokploy => "dokploy",
        }
    }

    /// Which platform this shim fakes.
    pub fn flavour(&self) -> PaasFlavour {
        self.flavour
    }

    /// The database container's `/tmp` (where a parallel dump's temporary
    /// directory goes); created by the first script run there.
    pub fn container_tmp(&self) -> PathBuf {
        self.state_dir().join("container-tmp")
    }

    /// What is left in [`PaasShim::container_tmp`], by name.
    pub fn container_tmp_entries(&self) -> Vec<String> {
        std::fs::read_dir(self.container_tmp())
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect()
    }

    /// The underlying generic shim directory.
    pub fn shim(&self) -> &ShimDir {
        &self.shim
    }

    /// The database container's full 64-hex id (what
    /// `docker ps -qf name=<db> --no-trunc` prints while it runs).
    pub fn db_container_id(&self) -> &str {
        &self.db_container_id
    }

    /// The files seeded into [`ShimDir::root`]: (path relative to the
    /// root, original content). Every content contains `kastell-shim`.
    pub fn seeded_files(&self) -> Vec<(PathBuf, String)> {
        seed_files(self.flavour)
            .into_iter()
            .map(|(p, t)| (PathBuf::from(p), t.to_owned()))
            .collect()
    }

    /// The current state.
    ///
    /// # Panics
    /// When the state file cannot be read or lacks a key (a broken harness).
    pub fn state(&self) -> ShimState {
        let path = self.shim.state_dir().join("state");
        let text = fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("cannot read the shim state {}: {e}", path.display()));
        let get = |key: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(key)?.strip_prefix('='))
                .unwrap_or_else(|| panic!("the shim state has no {key}: {text:?}"))
                .to_owned()
        };
        ShimState {
            app_running: get("app") == "running",
            db_running: get("db") == "running",
            version: get("version"),
        }
    }

    /// Replaces the state (atomically).
    ///
    /// Refuses (`InvalidInput`) a version that is empty or contains white
    /// space; fails when the file cannot be written.
    pub fn set_state(&self, state: &ShimState) -> Result<()> {
        if state.version.is_empty() || state.version.chars().any(char::is_whitespace) {
            return Err(Error::invalid_input(format!(
                "shim version {:?} must be one non-empty word",
                state.version
            )));
        }
        let word = |running: bool| if running { "running" } else { "stopped" };
        let text = format!(
            "app={}\ndb={}\nversion={}\n",
            word(state.app_running),
            word(state.db_running),
            state.version
        );
        let dir = self.shim.state_dir();
        let tmp = dir.join(format!(".state.rust.{}", fastrand::u64(..)));
        write_mode(&tmp, &text, 0o666)?;
        fs::rename(&tmp, dir.join("state")).map_err(|e| Error::io("replacing the shim state", e))
    }

    /// The fake root as a `&Path` joined with `relative` (convenience for
    /// reading seeded or restored files).
    pub fn root_path(&self, relative: impl AsRef<Path>) -> PathBuf {
        self.shim.root().join(relative)
    }
}
