//! The remote commands that find, copy and put back an app's data, built
//! with [`RemoteCommand::template`] so every value from the server (app
//! keys, volume names: checked with [`kastell_core::types::is_app_key`]
//! first) is shell-quoted. Credentials never pass through kastell: each
//! database tool runs inside its container with the container's own
//! environment (`POSTGRES_USER`, `MYSQL_ROOT_PASSWORD`, ...).

use kastell_core::types::AppDataKind;
use kastell_core::{RemoteCommand, Result};

use crate::settings::Settings;
use crate::spec::{AppContainers, PaasSpec};

/// Where Docker keeps a named volume's files (the default data root).
pub(crate) fn volume_dir(settings: &Settings, volume: &str) -> String {
    settings.path(&format!("/var/lib/docker/volumes/{volume}/_data"))
}

/// Prints the tables of the platform database's `public` schema, one per
/// line.
pub(crate) fn list_tables(spec: &PaasSpec, container: &str) -> Result<RemoteCommand> {
    RemoteCommand::template(
        "docker exec {} psql -At -U {} -d {} -c {}",
        &[
            container,
            spec.db_user,
            spec.db_name,
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1",
        ],
    )
}

/// Prints, as one JSON array, the rows `sql` (the union of the spec's app
/// queries) selects.
pub(crate) fn query_json(spec: &PaasSpec, container: &str, sql: &str) -> Result<RemoteCommand> {
    let wrapped = format!("SELECT coalesce(json_agg(t), '[]'::json) FROM ({sql}) t");
    RemoteCommand::template(
        "docker exec {} psql -At -v ON_ERROR_STOP=1 -U {} -d {} -c {}",
        &[container, spec.db_user, spec.db_name, &wrapped],
    )
}

/// Runs `sql` in the platform database as the platform's user, stopping at
/// the first error, printing only rows, unaligned (`psql -qAt`: no
/// command tags such as `INSERT 0 1`).
pub(crate) fn run_sql(spec: &PaasSpec, container: &str, sql: &str) -> Result<RemoteCommand> {
    RemoteCommand::template(
        "docker exec {} psql -qAt -v ON_ERROR_STOP=1 -U {} -d {} -c {}",
        &[container, spec.db_user, spec.db_name, sql],
    )
}

/// Prints the full id of a container, running or not (`all`), of the
/// database resource `key`, or (for a volume) one using the volume: what
/// tells a host where the platform already deployed the app from a fresh
/// one.
pub(crate) fn find_any_container(
    how: AppContainers,
    key: &str,
    volume: Option<&str>,
) -> Result<RemoteCommand> {
    let filter = match (volume, how) {
        (Some(v), _) => format!("volume={v}"),
        (None, AppContainers::Named) => format!("name={key}"),
        (None, AppContainers::SwarmService) => format!("label=com.docker.swarm.service.name={key}"),
    };
    RemoteCommand::template(
        "docker ps -a -q --no-trunc --filter {} | head -1",
        &[&filter],
    )
}

/// Prints the full id of a running container using the volume `volume`.
pub(crate) fn find_volume_user(volume: &str) -> Result<RemoteCommand> {
    RemoteCommand::template(
        "docker ps -q --no-trunc --filter {} | head -1",
        &[&format!("volume={volume}")],
    )
}

/// Asks the platform's API on the server's loopback: `curl` with the
/// header lines on stdin (`-H @-`: the credential never on a command
/// line), `body` as JSON when given, the answer's body on stdout followed
/// by a last line `kastell-http-status:<code>`.
pub(crate) fn api_request(
    method: &str,
    url: &str,
    body: Option<&str>,
    max_secs: u64,
) -> Result<RemoteCommand> {
    let secs = max_secs.to_string();
    let write_out = format!("\n{}%{{http_code}}", super::deploy::STATUS_MARK);
    match body {
        None => RemoteCommand::template(
            "curl -sS --max-time {} -X {} -H @- -o - -w {} {}",
            &[&secs, method, &write_out, url],
        ),
        Some(body) => RemoteCommand::template(
            "curl -sS --max-time {} -X {} -H @- -H {} --data-binary {} -o - -w {} {}",
            &[
                &secs,
                method,
                "Content-Type: application/json",
                body,
                &write_out,
                url,
            ],
        ),
    }
}

/// Prints the full id of the running container of the database resource
/// `key` (nothing when none runs): by name for Coolify (its standalone
/// databases' containers are named after their uuid), by the Swarm
/// service label for Dokploy.
pub(crate) fn find_app_container(how: AppContainers, key: &str) -> Result<RemoteCommand> {
    let filter = match how {
        AppContainers::Named => format!("name={key}"),
        AppContainers::SwarmService => format!("label=com.docker.swarm.service.name={key}"),
    };
    RemoteCommand::template("docker ps -q --no-trunc --filter {} | head -1", &[&filter])
}

/// The script that runs `tool` (`dump` or `restore`) of `kind` inside a
/// database container, with the container's own credentials.
fn db_script(kind: AppDataKind, dump: bool) -> &'static str {
    match (kind, dump) {
        (AppDataKind::Postgres, true) => {
            "u=${POSTGRES_USER:-postgres}; exec pg_dump -Fc -Z0 -U \"$u\" -d \"${POSTGRES_DB:-$u}\""
        }
        (AppDataKind::Postgres, false) => {
            "u=${POSTGRES_USER:-postgres}; exec pg_restore --clean --if-exists \
             --single-transaction --exit-on-error --no-owner -U \"$u\" -d \"${POSTGRES_DB:-$u}\""
        }
        (AppDataKind::Mysql, true) => {
            "export MYSQL_PWD=\"${MYSQL_ROOT_PASSWORD:-}\"; \
             if [ -n \"${MYSQL_DATABASE:-}\" ]; then set -- --databases \"$MYSQL_DATABASE\"; \
             else set -- --all-databases; fi; \
             exec mysqldump -uroot --single-transaction --routines --triggers --events \"$@\""
        }
        (AppDataKind::Mysql, false) => {
            "export MYSQL_PWD=\"${MYSQL_ROOT_PASSWORD:-}\"; exec mysql -uroot"
        }
        (AppDataKind::Mariadb, true) => {
            "export MYSQL_PWD=\"${MARIADB_ROOT_PASSWORD:-${MYSQL_ROOT_PASSWORD:-}}\"; \
             d=${MARIADB_DATABASE:-${MYSQL_DATABASE:-}}; \
             if [ -n \"$d\" ]; then set -- --databases \"$d\"; else set -- --all-databases; fi; \
             t=mariadb-dump; command -v \"$t\" >/dev/null 2>&1 || t=mysqldump; \
             exec \"$t\" -uroot --single-transaction --routines --triggers --events \"$@\""
        }
        (AppDataKind::Mariadb, false) => {
            "export MYSQL_PWD=\"${MARIADB_ROOT_PASSWORD:-${MYSQL_ROOT_PASSWORD:-}}\"; \
             t=mariadb; command -v \"$t\" >/dev/null 2>&1 || t=mysql; exec \"$t\" -uroot"
        }
        (AppDataKind::Mongo, true) => {
            "set --; if [ -n \"${MONGO_INITDB_ROOT_USERNAME:-}\" ]; then set -- --username \
             \"$MONGO_INITDB_ROOT_USERNAME\" --password \"${MONGO_INITDB_ROOT_PASSWORD:-}\" \
             --authenticationDatabase admin; fi; exec mongodump --archive --quiet \"$@\""
        }
        (AppDataKind::Mongo, false) => {
            "set --; if [ -n \"${MONGO_INITDB_ROOT_USERNAME:-}\" ]; then set -- --username \
             \"$MONGO_INITDB_ROOT_USERNAME\" --password \"${MONGO_INITDB_ROOT_PASSWORD:-}\" \
             --authenticationDatabase admin; fi; exec mongorestore --archive --drop --quiet \"$@\""
        }
        // BGSAVE, wait until it is done (LASTSAVE moves, at most ten
        // minutes), then the RDB file where the server says it is.
        (AppDataKind::Redis, true) => {
            "set -e; if [ -n \"${REDIS_PASSWORD:-}\" ]; then export REDISCLI_AUTH=\"$REDIS_PASSWORD\"; fi; \
             r() { redis-cli --no-auth-warning \"$@\"; }; \
             before=$(r LASTSAVE); r BGSAVE >/dev/null; i=0; \
             while [ \"$(r LASTSAVE)\" = \"$before\" ]; do i=$((i + 1)); \
             if [ \"$i\" -gt 600 ]; then echo 'redis BGSAVE did not finish within 10 minutes' >&2; exit 1; fi; \
             sleep 1; done; \
             if r INFO persistence | grep -q '^rdb_last_bgsave_status:err'; then \
             echo 'redis BGSAVE failed (see the redis log)' >&2; exit 1; fi; \
             dir=$(r CONFIG GET dir | sed -n 2p); file=$(r CONFIG GET dbfilename | sed -n 2p); \
             exec cat \"$dir/$file\""
        }
        // The RDB file replaces the server's (its append-only files go, or
        // they would win at start), then the server shuts down without
        // saving: its restart loads the file.
        (AppDataKind::Redis, false) => {
            "set -e; if [ -n \"${REDIS_PASSWORD:-}\" ]; then export REDISCLI_AUTH=\"$REDIS_PASSWORD\"; fi; \
             r() { redis-cli --no-auth-warning \"$@\"; }; \
             dir=$(r CONFIG GET dir | sed -n 2p); file=$(r CONFIG GET dbfilename | sed -n 2p); \
             [ -n \"$dir\" ] && [ -n \"$file\" ] || { echo 'redis did not say where its RDB file is' >&2; exit 1; }; \
             cat > \"$dir/$file.kastell-new\"; rm -rf \"$dir/appendonlydir\" \"$dir/appendonly.aof\"; \
             mv -f \"$dir/$file.kastell-new\" \"$dir/$file\"; r SHUTDOWN NOSAVE >/dev/null 2>&1 || true"
        }
        (AppDataKind::Volume, _) => "echo 'a volume is not a database' >&2; exit 2",
    }
}

/// Streams the dump of the database resource of `kind` in `container` to
/// stdout with its own tool (see [`AppDataKind`]).
pub(crate) fn db_dump(kind: AppDataKind, container: &str) -> Result<RemoteCommand> {
    RemoteCommand::template(
        "docker exec {} sh -c {}",
        &[container, db_script(kind, true)],
    )
}

/// Restores a dump of [`db_dump`] from stdin into `container`.
pub(crate) fn db_restore(kind: AppDataKind, container: &str) -> Result<RemoteCommand> {
    RemoteCommand::template(
        "docker exec -i {} sh -c {}",
        &[container, db_script(kind, false)],
    )
}

/// Exits 0 once the database resource in `container` answers.
pub(crate) fn db_ready(kind: AppDataKind, container: &str) -> Result<RemoteCommand> {
    let script = match kind {
        AppDataKind::Postgres => "pg_isready -U \"${POSTGRES_USER:-postgres}\"",
        AppDataKind::Mysql => {
            "export MYSQL_PWD=\"${MYSQL_ROOT_PASSWORD:-}\"; mysqladmin -uroot ping >/dev/null"
        }
        AppDataKind::Mariadb => {
            "export MYSQL_PWD=\"${MARIADB_ROOT_PASSWORD:-${MYSQL_ROOT_PASSWORD:-}}\"; \
             t=mariadb-admin; command -v \"$t\" >/dev/null 2>&1 || t=mysqladmin; \
             \"$t\" -uroot ping >/dev/null"
        }
        AppDataKind::Mongo => "mongosh --quiet --eval 'db.runCommand({ping: 1}).ok' >/dev/null",
        AppDataKind::Redis => {
            "if [ -n \"${REDIS_PASSWORD:-}\" ]; then export REDISCLI_AUTH=\"$REDIS_PASSWORD\"; fi; \
             [ \"$(redis-cli --no-auth-warning PING)\" = PONG ]"
        }
        AppDataKind::Volume => "true",
    };
    RemoteCommand::template("docker exec {} sh -c {}", &[container, script])
}

/// Prints the KiB the database resource's files take in `container` (its
/// data directory), for the size estimate.
pub(crate) fn db_size(kind: AppDataKind, container: &str) -> Result<RemoteCommand> {
    let dir = match kind {
        AppDataKind::Postgres => "${PGDATA:-/var/lib/postgresql/data}",
        AppDataKind::Mysql | AppDataKind::Mariadb => "/var/lib/mysql",
        AppDataKind::Mongo => "/data/db",
        AppDataKind::Redis | AppDataKind::Volume => "/data",
    };
    let script = format!("du -sk \"{dir}\" | cut -f1");
    RemoteCommand::template("docker exec {} sh -c {}", &[container, &script])
}

/// Prints the KiB a volume's files take on the host.
pub(crate) fn volume_size(settings: &Settings, volume: &str) -> Result<RemoteCommand> {
    RemoteCommand::template("du -sk {} | cut -f1", &[&volume_dir(settings, volume)])
}

/// Streams a tar of the volume `volume` with every running container that
/// uses it paused, and unpaused however the command ends (a failed tar,
/// a dropped connection: the trap runs on exit, hangup, interrupt and
/// termination). A volume with no files yet is a tar of its empty
/// directory.
pub(crate) fn volume_tar(settings: &Settings, volume: &str) -> Result<RemoteCommand> {
    const SCRIPT: &str = "v=$1; d=$2; ids=$(docker ps -q --no-trunc --filter \"volume=$v\") || exit 1; \
         if [ -n \"$ids\" ]; then trap 'docker unpause $ids >/dev/null' EXIT; \
         trap 'exit 1' HUP INT TERM PIPE; docker pause $ids >/dev/null || exit 1; fi; \
         tar --numeric-owner -C \"$d\" -cf - .";
    RemoteCommand::template(
        "sh -c {} sh {} {}",
        &[SCRIPT, volume, &volume_dir(settings, volume)],
    )
}

/// Stops what uses volume `$v` (service `$s`) until the script ends.
const STOP_NAMED: &str = "ids=$(docker ps -q --no-trunc --filter \"volume=$v\") || exit 1; \
     if [ -n \"$ids\" ]; then trap 'docker start $ids >/dev/null' EXIT; \
     docker stop $ids >/dev/null || exit 1; fi; ";

/// Scales the Swarm service `$s` to zero until the script ends, waiting
/// (two minutes at most) until no container uses volume `$v`.
const STOP_SWARM: &str = "r=$(docker service inspect --format '{{.Spec.Mode.Replicated.Replicas}}' \"$s\" 2>/dev/null) || r=''; \
     if [ -n \"$r\" ] && [ \"$r\" != 0 ]; then trap 'docker service scale -d \"$s=$r\" >/dev/null' EXIT; \
     docker service scale -d \"$s=0\" >/dev/null || exit 1; fi; i=0; \
     while [ -n \"$(docker ps -q --filter \"volume=$v\")\" ]; do i=$((i + 1)); \
     if [ \"$i\" -gt 120 ]; then echo \"the containers of $s did not stop\" >&2; exit 1; fi; \
     sleep 1; done; ";

/// Replaces the volume `volume`'s files with the tar on stdin: unpacked
/// beside them first (a broken tar changes nothing), then swapped in with
/// the containers using it stopped (Coolify: those containers; Dokploy:
/// the Swarm service `service` scaled to zero) and started again however
/// the command ends.
pub(crate) fn volume_untar(
    settings: &Settings,
    how: AppContainers,
    service: &str,
    volume: &str,
) -> Result<RemoteCommand> {
    let stop = match how {
        AppContainers::Named => STOP_NAMED,
        AppContainers::SwarmService => STOP_SWARM,
    };
    let script = format!(
        "v=$1; s=$2; d=$3; n=\"$d.kastell-new\"; o=\"$d.kastell-old\"; \
         rm -rf \"$n\" \"$o\"; mkdir -p \"$n\" || exit 1; \
         tar --numeric-owner -C \"$n\" -xpf - || {{ rm -rf \"$n\"; exit 1; }}; \
         trap 'exit 1' HUP INT TERM PIPE; {stop}\
         if [ -e \"$d\" ]; then mv \"$d\" \"$o\" || exit 1; fi; \
         mv \"$n\" \"$d\" || {{ mv \"$o\" \"$d\"; exit 1; }}; rm -rf \"$o\" || true"
    );
    RemoteCommand::template(
        "sh -c {} sh {} {} {}",
        &[&script, volume, service, &volume_dir(settings, volume)],
    )
}

/// Starts the container `name` if it is not running (a Coolify database
/// after its server shut down to load a restored file).
pub(crate) fn start_container(name: &str) -> Result<RemoteCommand> {
    RemoteCommand::template("docker start {} >/dev/null", &[name])
}
