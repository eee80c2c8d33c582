//! Every remote command a [`crate::PaasPlatform`] runs, built in one place
//! with [`RemoteCommand::template`] so each value is shell-quoted.

use kastell_core::{Error, RemoteCommand, Result};

use crate::settings::Settings;
use crate::spec::{Interpreter, PaasSpec};

/// Reads the image of the version container (`ghcr.io/x/coolify:4.0.0`).
pub fn version(spec: &PaasSpec) -> Result<RemoteCommand> {
    RemoteCommand::template(
        "docker inspect {} --format '{{.Config.Image}}'",
        &[spec.version_container],
    )
}

/// Prints the id of the first running container matching a name filter.
pub fn find_container(name_filter: &str) -> Result<RemoteCommand> {
    RemoteCommand::template(
        "docker ps -qf {} --no-trunc | head -1",
        &[&format!("name={name_filter}")],
    )
}

/// Streams a custom-format dump of the platform database to stdout,
/// uncompressed (`-Z0`): pg_dump's own zlib is several times slower than
/// zstd (see BENCHMARKS.md). The backup pipes it through `zstd -T0` on the
/// server when the link is the bottleneck, else the engine compresses it
/// locally. `pg_restore` reads either.
pub fn pg_dump(spec: &PaasSpec, container: &str) -> Result<RemoteCommand> {
    RemoteCommand::template(
        "docker exec {} pg_dump -Fc -Z0 -U {} -d {}",
        &[container, spec.db_user, spec.db_name],
    )
}

/// What a parallel dump needs to know, in one command inside the database
/// container: a psql line `size|version|recovery|free connections|big
/// tables`, then the container's cores, then the free KiB where `mktemp`
/// would put the dump's temporary directory. "Big" tables are those of at
/// least 8 MiB: only they gain from a job of their own. Sizes come from
/// the catalog (`relpages`, as of the last VACUUM or ANALYZE), which takes
/// no lock: a table locked by another session cannot stall the question.
pub fn pg_dump_facts(spec: &PaasSpec, container: &str) -> Result<RemoteCommand> {
    RemoteCommand::template(
        "docker exec {} sh -c {} sh {} {}",
        &[
            container,
            "psql -XAtq -U \"$1\" -d \"$2\" -c \"SELECT pg_database_size(current_database()), \
             current_setting('server_version_num')::int, pg_is_in_recovery(), \
             current_setting('max_connections')::int \
             - current_setting('superuser_reserved_connections')::int \
             - (SELECT count(*) FROM pg_stat_activity), \
             (SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE c.relkind IN ('r', 'm') \
             AND n.nspname NOT IN ('pg_catalog', 'information_schema') \
             AND c.relpages::bigint * current_setting('block_size')::bigint >= 8388608)\" \
             && nproc && df -Pk \"${TMPDIR:-/tmp}\" | awk 'NR == 2 { print $4 }'",
            spec.db_user,
            spec.db_name,
        ],
    )
}

/// The shell prelude of a command that keeps a private temporary directory
/// `$d` inside the database container for as long as it runs, removed
/// however it ends: when it exits or is signalled. Work it runs in the
/// background as `$p` (waited for, so a signal is acted on at once, not
/// after the work) and its watchdog `$w` are stopped first.
const PRIVATE_TEMP_DIR: &str = "d=$(mktemp -d \"${TMPDIR:-/tmp}/kastell-dump.XXXXXX\") || exit 1; \
     p=''; w=''; \
     cleanup() { if [ -n \"$w\" ]; then kill \"$w\" 2>/dev/null; fi; \
     if [ -n \"$p\" ]; then kill -TERM \"$p\" 2>/dev/null; wait \"$p\" 2>/dev/null; fi; \
     rm -rf \"$d\"; }; \
     trap cleanup EXIT; trap 'exit 129' HUP; trap 'exit 130' INT; trap 'exit 143' TERM; \
     trap 'exit 141' PIPE; ";

/// A watchdog (after [`PRIVATE_TEMP_DIR`]): a shell loop reading the
/// command's stdin, which kastell holds open and never writes to. End of
/// file means kastell or its connection went away: the command is told to
/// stop, and its cleanup runs. (A background job's own stdin is
/// `/dev/null`, hence the copy on descriptor 3.)
const STDIN_WATCHDOG: &str = "exec 3<&0; \
     { while IFS= read -r _ <&3; do :; done; kill -TERM $$; } >/dev/null 2>&1 & w=$!; ";

/// Runs `pg_dump -Fd -j jobs -Z0` into a private temporary directory inside
/// the database container, then streams that directory to stdout as one
/// tar, uncompressed (the backup's wire codec compresses it, as for the
/// single stream). The directory goes however the command ends (see
/// [`PRIVATE_TEMP_DIR`]); kastell must hold the command's stdin open
/// ([`kastell_core::held_open_stdin`]), since its end means "stop"
/// ([`STDIN_WATCHDOG`]). The
/// tar holds `toc.dat` and one file per table, the layout `pg_restore`
/// reads once it is unpacked.
pub fn pg_dump_directory(spec: &PaasSpec, container: &str, jobs: u16) -> Result<RemoteCommand> {
    let script = format!(
        "{PRIVATE_TEMP_DIR}{STDIN_WATCHDOG}\
         pg_dump -Fd -j \"$3\" -Z0 -U \"$1\" -d \"$2\" -f \"$d/dump\" 3<&- & p=$!; \
         wait \"$p\" || exit 1; \
         tar -C \"$d/dump\" -cf - . 3<&- & p=$!; \
         wait \"$p\" || exit 1; p=''"
    );
    RemoteCommand::template(
        "docker exec -i {} sh -c {} sh {} {} {}",
        &[
            container,
            &script,
            spec.db_user,
            spec.db_name,
            &jobs.to_string(),
        ],
    )
}

/// Unpacks a [`pg_dump_directory`] tar from stdin into a private temporary
/// directory inside the database container and restores it in one
/// transaction, replacing existing objects and stopping at the first
/// error; the directory goes however the command ends. (`pg_restore -j`
/// cannot run in one transaction: the restore keeps the transaction.)
pub fn pg_restore_directory(spec: &PaasSpec, container: &str) -> Result<RemoteCommand> {
    let script = format!(
        "{PRIVATE_TEMP_DIR}\
         tar -C \"$d\" -xf - && pg_restore --clean --if-exists --single-transaction \
         --exit-on-error --no-owner -U \"$1\" -d \"$2\" \"$d\""
    );
    RemoteCommand::template(
        "docker exec -i {} sh -c {} sh {} {}",
        &[container, &script, spec.db_user, spec.db_name],
    )
}

/// Exits 0 once the database accepts connections.
pub fn pg_isready(spec: &PaasSpec, container: &str) -> Result<RemoteCommand> {
    RemoteCommand::template(
        "docker exec {} pg_isready -U {} -d {}",
        &[container, spec.db_user, spec.db_name],
    )
}

/// Restores a custom-format dump from stdin in one transaction, replacing
/// existing objects and stopping at the first error.
pub fn pg_restore(spec: &PaasSpec, container: &str) -> Result<RemoteCommand> {
    RemoteCommand::template(
        "docker exec -i {} pg_restore --clean --if-exists --single-transaction \
         --exit-on-error --no-owner -U {} -d {}",
        &[container, spec.db_user, spec.db_name],
    )
}

/// Replays plain SQL from stdin in one transaction, stopping at the first
/// error (legacy backups).
pub fn psql_restore(spec: &PaasSpec, container: &str) -> Result<RemoteCommand> {
    RemoteCommand::template(
        "docker exec -i {} psql -v ON_ERROR_STOP=1 --single-transaction -U {} -d {}",
        &[container, spec.db_user, spec.db_name],
    )
}

/// What a plain-SQL restore sends before the dump, so the dump replays into
/// an empty schema instead of colliding with existing tables.
pub const PLAIN_SQL_PRELUDE: &str = "DROP SCHEMA public CASCADE; CREATE SCHEMA public;\n";

/// The configuration directory under the root prefix.
pub fn config_dir(spec: &PaasSpec, settings: &Settings) -> String {
    settings.path(spec.config.base)
}

/// Prints, one per line, the configuration entries that exist.
pub fn list_config(spec: &PaasSpec, settings: &Settings) -> Result<RemoteCommand> {
    RemoteCommand::template(
        "d={}; printf '%s\\n' {} | while IFS= read -r e; do \
         if [ -e \"$d/$e\" ]; then printf '%s\\n' \"$e\"; fi; done",
        &[&config_dir(spec, settings), &spec.config.entries.join("\n")],
    )
}

/// Streams a tar of `entries` (relative to the configuration directory).
pub fn tar_config(
    spec: &PaasSpec,
    settings: &Settings,
    entries: &[String],
) -> Result<RemoteCommand> {
    RemoteCommand::template(
        "printf '%s\\n' {} | tar -C {} -cf - -T -",
        &[&entries.join("\n"), &config_dir(spec, settings)],
    )
}

/// Extracts a tar from stdin into the configuration directory.
pub fn untar_config(spec: &PaasSpec, settings: &Settings) -> Result<RemoteCommand> {
    RemoteCommand::template("tar -C {} -xf -", &[&config_dir(spec, settings)])
}

/// Like [`untar_config`], but leaves the member `entry` (a path relative to
/// the configuration directory, as archived) alone: the restore wrote it
/// already (the dotenv file of a [`crate::SecretSpec::EnvKey`]).
pub fn untar_config_except(
    spec: &PaasSpec,
    settings: &Settings,
    entry: &str,
) -> Result<RemoteCommand> {
    RemoteCommand::template(
        "tar -C {} --exclude={} -xf -",
        &[&config_dir(spec, settings), entry],
    )
}

/// Prints the full id of the first running task container of the Swarm
/// service `service`, found by the label Swarm puts on its tasks (a name
/// filter `dokploy` would also match `dokploy-postgres`). Prints nothing
/// when none runs.
pub fn find_service_task(service: &str) -> Result<RemoteCommand> {
    RemoteCommand::template(
        "docker ps -q --no-trunc --filter {} | head -1",
        &[&format!("label=com.docker.swarm.service.name={service}")],
    )
}

/// Prints the file `path` inside the running container `container`. Used
/// for secrets: its output is never logged or put into an error.
pub fn container_cat(container: &str, path: &str) -> Result<RemoteCommand> {
    RemoteCommand::template("docker exec {} cat {}", &[container, path])
}

/// Prints the container spec of the Swarm service `service` as JSON (its
/// `Env` and `Secrets`). The output holds the service's environment, secrets
/// included: it is parsed, never logged.
pub fn service_container_spec(service: &str) -> Result<RemoteCommand> {
    RemoteCommand::template(
        "docker service inspect {} --format '{{json .Spec.TaskTemplate.ContainerSpec}}'",
        &[service],
    )
}

/// Prints the Swarm secrets, one `<id> <name>` per line (metadata only:
/// Docker never shows a secret's value).
pub fn secret_list() -> RemoteCommand {
    RemoteCommand::fixed("docker secret ls --format '{{.ID}} {{.Name}}'")
}

/// Creates the Swarm secret `name` from stdin (so the value is in no
/// command line); prints its id.
pub fn secret_create(name: &str) -> Result<RemoteCommand> {
    RemoteCommand::template("docker secret create {} -", &[name])
}

/// Removes the Swarm secret `name` (Docker refuses while a service uses it).
pub fn secret_rm(name: &str) -> Result<RemoteCommand> {
    RemoteCommand::template("docker secret rm {}", &[name])
}

/// Makes the Swarm service `service` stop mounting the secret `name`.
pub fn service_secret_rm(service: &str, name: &str) -> Result<RemoteCommand> {
    RemoteCommand::template("docker service update --secret-rm {} {}", &[name, service])
}

/// Makes the Swarm service `service` mount the secret `name` (at
/// `/run/secrets/<name>`).
pub fn service_secret_add(service: &str, name: &str) -> Result<RemoteCommand> {
    RemoteCommand::template("docker service update --secret-add {} {}", &[name, service])
}

/// Sets the environment variable `var` of the Swarm service `service` to
/// the bytes on stdin (trailing newlines kept), removing the variables in
/// `remove` in the same update. The value reaches `docker` through its
/// environment (`--env-add VAR` without `=` takes it from there), so it is
/// in no command line. Refuses more than one variable to remove.
pub fn service_env_set_from_stdin(
    service: &str,
    var: &str,
    remove: Option<&str>,
) -> Result<RemoteCommand> {
    match remove {
        None => RemoteCommand::template(
            "n={}; v=$(cat; printf x); v=${v%x}; export \"$n=$v\"; \
             docker service update --env-add \"$n\" {}",
            &[var, service],
        ),
        Some(other) => RemoteCommand::template(
            "n={}; v=$(cat; printf x); v=${v%x}; export \"$n=$v\"; \
             docker service update --env-add \"$n\" --env-rm {} {}",
            &[var, other, service],
        ),
    }
}

/// Removes the environment variables `vars` (one or two) of the Swarm
/// service `service`. Refuses an empty list or more than two.
pub fn service_env_rm(service: &str, vars: &[&str]) -> Result<RemoteCommand> {
    match vars {
        [a] => RemoteCommand::template("docker service update --env-rm {} {}", &[a, service]),
        [a, b] => RemoteCommand::template(
            "docker service update --env-rm {} --env-rm {} {}",
            &[a, b, service],
        ),
        _ => Err(Error::unexpected(format!(
            "service_env_rm takes one or two variables, not {}",
            vars.len()
        ))),
    }
}

/// Prints the file `path` when it exists (a missing file prints nothing and
/// exits 0, like an empty one).
pub fn read_file_if_exists(path: &str) -> Result<RemoteCommand> {
    RemoteCommand::template("f={}; if [ -e \"$f\" ]; then cat \"$f\"; fi", &[path])
}

/// Replaces the file `path` with stdin, atomically (a temporary file beside
/// it, renamed over it), with the octal `mode` (`600`); creates its
/// directory when missing.
pub fn write_file_from_stdin(path: &str, mode: &str) -> Result<RemoteCommand> {
    RemoteCommand::template(
        "f={}; t=\"$f.kastell-new\"; { mkdir -p \"$(dirname \"$f\")\" && (umask 077 && cat > \"$t\") \
         && chmod {} \"$t\" && mv -f \"$t\" \"$f\"; } || { rm -f \"$t\"; exit 1; }",
        &[path, mode],
    )
}

/// A service command of the spec, with its `{}` (if any) replaced by the
/// quoted service directory under the root prefix.
pub fn service(
    spec: &PaasSpec,
    settings: &Settings,
    script: &'static str,
) -> Result<RemoteCommand> {
    match spec.services.dir {
        Some(dir) => RemoteCommand::template(script, &[&settings.path(dir)]),
        None => RemoteCommand::template(script, &[]),
    }
    .map_err(|e| {
        Error::unexpected(format!(
            "the {} service command {script:?} does not match its directory setting: {}",
            spec.display_name,
            e.message()
        ))
    })
}

/// Downloads the install script into a private temporary directory (removed
/// on exit), checks that it looks like a script of sane size, and runs it.
macro_rules! fetch_and_check {
    () => {
        "set -eu; d=$(mktemp -d); trap 'rm -rf \"$d\"' EXIT; \
         curl -fsSL {} -o \"$d/install.sh\"; \
         head -c2 \"$d/install.sh\" | grep -q '#!' \
         || { echo 'the downloaded installer is not a script' >&2; exit 1; }; \
         s=$(wc -c < \"$d/install.sh\"); \
         if [ \"$s\" -lt 100 ] || [ \"$s\" -gt 1048576 ]; then \
         echo \"the downloaded installer has an unexpected size ($s bytes)\" >&2; exit 1; fi; "
    };
}

/// The update: fetch, check and run the platform's install script with
/// its update argument (Dokploy's `update`).
pub fn update(spec: &PaasSpec) -> Result<RemoteCommand> {
    installer(spec, spec.update.argument)
}

/// A fresh install on a new host: the same script, fetched and checked as
/// the update fetches it, without the update argument (Dokploy's script
/// without `update` is its fresh install; Coolify's has one mode).
pub fn install(spec: &PaasSpec) -> Result<RemoteCommand> {
    installer(spec, None)
}

/// Fetch, check and run the platform's install script with `argument`.
fn installer(spec: &PaasSpec, argument: Option<&'static str>) -> Result<RemoteCommand> {
    let u = &spec.update;
    match (u.interpreter, argument) {
        (Interpreter::Bash, None) => RemoteCommand::template(
            concat!(fetch_and_check!(), "bash \"$d/install.sh\""),
            &[u.url],
        ),
        (Interpreter::Bash, Some(arg)) => RemoteCommand::template(
            concat!(fetch_and_check!(), "bash \"$d/install.sh\" {}"),
            &[u.url, arg],
        ),
        (Interpreter::Sh, None) => RemoteCommand::template(
            concat!(fetch_and_check!(), "sh \"$d/install.sh\""),
            &[u.url],
        ),
        (Interpreter::Sh, Some(arg)) => RemoteCommand::template(
            concat!(fetch_and_check!(), "sh \"$d/install.sh\" {}"),
            &[u.url, arg],
        ),
    }
}
