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

/// The update: fetch, check and run the platform's install script.
pub fn update(spec: &PaasSpec) -> Result<RemoteCommand> {
    let u = &spec.update;
    match (u.interpreter, u.argument) {
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
